//! The comparison engine behind `gbml compare run`.
//!
//! For a candidate manifest: read the inputs and the candidate output, recompute our reference
//! under the manifest's conventions ([`reference`]: extended precision where [`crate::xprec`]
//! has a path), and report entrywise accuracy ([`Stats`]): max absolute and relative error, the
//! error in ε-units, the minimum and median LRE and the worst entry's location, then a verdict:
//! every entry must reach the tolerance table's digits ([`super::tolerance`]) capped by its
//! conditioning ([`super::conditioning`]). A failing candidate is handed to
//! [`super::diagnose`], which recomputes the quantity under the usual alternative conventions and
//! names the ones that match; a reference that diverges under the stated conventions is handed
//! to it too, and stays an error only when no slip explains the candidate.
//!
//! The accuracy measures live in [`super::accuracy`], the reference computation in
//! [`super::reference`] (both re-exported here under their old names); this module only reads
//! files, judges and reports.

pub use super::accuracy::{compare_arrays, Stats};
use super::arrays;
use super::conditioning::{self, Requirement};
use super::diagnose::{self, Diagnosis};
use super::manifest::{Manifest, Quantity};
pub use super::reference::{
    input2, loss_scale, reference, reference_with, task_set, unstack, Inputs, Precision,
};
use super::tolerance::{Tolerance, ToleranceTable};
use crate::error::{Error, Result};
use ndarray::ArrayD;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Pass or mismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Mismatch,
}

/// The result of comparing one manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The manifest file (or `<memory>`).
    pub manifest: String,
    /// The candidate implementation named in the manifest.
    pub implementation: String,
    /// The quantity.
    pub quantity: Quantity,
    /// Reference shape.
    pub shape: Vec<usize>,
    /// Accuracy of the candidate under the stated conventions (`None` when the candidate's shape
    /// does not match the reference but matches an alternative, e.g. a transposed output).
    pub stats: Option<Stats>,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The conditioning-aware requirement the verdict applied (`None` for a shape mismatch).
    pub requirement: Option<Requirement>,
    /// Why our reference under the stated conventions could not be computed (a diverging
    /// trajectory explained by a convention slip; `None` otherwise).
    pub reference_error: Option<String>,
    /// The arithmetic of the reference the candidate was judged against (`f64` or `extended`).
    #[serde(serialize_with = "precision_name")]
    pub precision: Precision,
    /// The verdict.
    pub verdict: Verdict,
    /// Alternative conventions under which the candidate matches (only for mismatches).
    pub diagnoses: Vec<Diagnosis>,
}

impl Report {
    /// Exit code contribution: 0 pass, 1 mismatch.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Pass => 0,
            Verdict::Mismatch => 1,
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Mismatch => "MISMATCH",
        };
        writeln!(
            f,
            "{v}  {}  [{}]  {}  shape {:?}  (reference: {})",
            self.quantity,
            self.implementation,
            self.manifest,
            self.shape,
            match self.precision {
                Precision::F64 => "f64",
                Precision::Extended => "extended precision",
            }
        )?;
        if let Some(s) = &self.stats {
            writeln!(
                f,
                "  max abs err {:.3e}  max rel err {:.3e} ({:.1} eps)  LRE min {:.2} median {:.2}  (table {:.2} digits, {})",
                s.max_abs_err,
                s.max_rel_err,
                s.eps_units,
                s.min_lre,
                s.median_lre,
                self.tolerance.min_digits,
                self.tolerance.source
            )?;
            writeln!(
                f,
                "  worst entry {:?}: candidate {:.17e}, reference {:.17e}{}",
                s.worst_index,
                s.worst_candidate,
                s.worst_reference,
                if s.non_finite > 0 {
                    format!("  ({} non-finite candidate entries)", s.non_finite)
                } else {
                    String::new()
                }
            )?;
        } else if let Some(e) = &self.reference_error {
            writeln!(
                f,
                "  our reference under the stated conventions fails ({e}); the candidate is finite"
            )?;
        } else {
            writeln!(f, "  candidate shape does not match the reference")?;
        }
        if let Some(r) = &self.requirement {
            writeln!(
                f,
                "  conditioning: κ = {:.2e} ({}); need min({:.2}, {:.2} − log10 κ_i) digits per entry; \
                 closest entry {:?}: LRE {:.2} vs need {:.2} (κ_i {:.2e})",
                r.conditioning.kappa,
                r.conditioning.what,
                self.tolerance.min_digits,
                conditioning::budget_digits(),
                r.index,
                r.lre,
                r.need,
                r.entry_kappa
            )?;
        }
        for d in &self.diagnoses {
            writeln!(
                f,
                "  diagnosis: matches under `{}` ({:.2} digits): {}",
                d.name, d.min_lre, d.explanation
            )?;
        }
        if self.verdict == Verdict::Mismatch && self.diagnoses.is_empty() {
            writeln!(
                f,
                "  diagnosis: no alternative convention tried explains the difference"
            )?;
        }
        Ok(())
    }
}

/// Read every input of a manifest (paths relative to `base`).
pub fn read_inputs(m: &Manifest, base: &Path) -> Result<Inputs> {
    let mut out = Inputs::new();
    for (role, rel) in &m.inputs {
        let p = Manifest::resolve(base, rel);
        let a = arrays::read(&p)?;
        crate::error::ensure_finite(a.view(), &format!("input `{role}` ({})", p.display()))?;
        out.insert(role.clone(), a);
    }
    Ok(out)
}

/// Compare an in-memory candidate against our reference (the engine without files).
pub fn compare_values(
    m: &Manifest,
    inputs: &Inputs,
    candidate: &ArrayD<f64>,
    tols: &ToleranceTable,
    label: &str,
) -> Result<Report> {
    let tol = tols.get(m.quantity);
    let reference = match reference(m, inputs) {
        Ok(r) => r,
        Err(e @ Error::Diverged { .. }) => return diverged(m, inputs, candidate, tol, label, e),
        Err(e) => return Err(e),
    };
    let shape = reference.shape().to_vec();
    if candidate.shape() != reference.shape() {
        // A transposed 2-D output is a diagnosable convention mistake; anything else is unusable.
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        if shape.len() == 2 && candidate.shape() == rev.as_slice() {
            let d = diagnose::transposed(candidate, &reference, &tol)?;
            return Ok(Report {
                manifest: label.into(),
                implementation: m.implementation.clone(),
                quantity: m.quantity,
                shape,
                stats: None,
                requirement: None,
                reference_error: None,
                precision: precision_of(m),
                tolerance: tol,
                verdict: Verdict::Mismatch,
                diagnoses: d.into_iter().collect(),
            });
        }
        return Err(Error::shape(
            format!("candidate output of `{}` ({label})", m.quantity),
            format!("{:?}", shape),
            format!("{:?}", candidate.shape()),
        ));
    }
    let stats = compare_arrays(candidate.view(), reference.view(), tol.floor)?;
    let cond = conditioning::conditioning(m, inputs, &reference)?;
    let req = conditioning::requirement(
        candidate.view(),
        reference.view(),
        tol.floor,
        tol.min_digits,
        cond,
    );
    let verdict = if req.met {
        Verdict::Pass
    } else {
        Verdict::Mismatch
    };
    let diagnoses = if verdict == Verdict::Mismatch {
        diagnose::diagnose(m, inputs, candidate, &reference, &stats, &tol)?
    } else {
        Vec::new()
    };
    Ok(Report {
        manifest: label.into(),
        implementation: m.implementation.clone(),
        quantity: m.quantity,
        shape,
        stats: Some(stats),
        requirement: Some(req),
        reference_error: None,
        precision: precision_of(m),
        tolerance: tol,
        verdict,
        diagnoses,
    })
}

/// `f64` or `extended`, for JSON reports.
fn precision_name<S: serde::Serializer>(
    p: &Precision,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(match p {
        Precision::F64 => "f64",
        Precision::Extended => "extended",
    })
}

/// The arithmetic [`reference`] uses for a manifest (no extended path for finite networks;
/// conv architectures given by `conventions.layers` use the double-double conv kernels).
fn precision_of(m: &Manifest) -> Precision {
    match m.quantity {
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => Precision::F64,
        _ => Precision::Extended,
    }
}

/// The report when our reference diverges under the stated conventions: a mismatch when a
/// convention slip reproduces the candidate, else the divergence error itself.
fn diverged(
    m: &Manifest,
    inputs: &Inputs,
    candidate: &ArrayD<f64>,
    tol: Tolerance,
    label: &str,
    err: Error,
) -> Result<Report> {
    let diagnoses = diagnose::explain_without_reference(m, inputs, candidate, &tol)?;
    if diagnoses.is_empty() {
        return Err(err);
    }
    Ok(Report {
        manifest: label.into(),
        implementation: m.implementation.clone(),
        quantity: m.quantity,
        shape: candidate.shape().to_vec(),
        stats: None,
        requirement: None,
        reference_error: Some(err.to_string()),
        precision: precision_of(m),
        tolerance: tol,
        verdict: Verdict::Mismatch,
        diagnoses,
    })
}

/// Compare one manifest file: the whole `gbml compare run` for one manifest.
pub fn compare_manifest(path: &Path, tols: &ToleranceTable) -> Result<Report> {
    let m = Manifest::load(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let inputs = read_inputs(&m, base)?;
    let out_path = Manifest::resolve(base, &m.output);
    let candidate = arrays::read(&out_path)?;
    compare_values(&m, &inputs, &candidate, tols, &path.display().to_string())
}

/// The manifests named by a path: the file itself, or every `manifest.json` below a directory
/// (sorted).
pub fn find_manifests(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io_err = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        for e in rd {
            let e = e.map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?;
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "manifest.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::Empty(format!(
            "no manifest.json found under {}",
            path.display()
        )));
    }
    Ok(out)
}
