//! The comparison engine behind `gbml compare run`.
//!
//! For a candidate manifest: read the inputs and the candidate output, recompute our reference
//! under the manifest's conventions ([`reference`]), and report entrywise accuracy
//! ([`Stats`]): max absolute and relative error, the error in ε-units, the minimum and median LRE
//! and the worst entry's location, then a verdict against the tolerance table
//! ([`super::tolerance`]). A failing candidate is handed to [`super::diagnose`], which
//! recomputes the quantity under the usual alternative conventions and names the ones that match.
//!
//! Entrywise LRE with a floor (see [`super::tolerance`]):
//! `LRE_i = −log10(|c_i − r_i| / max(|r_i|, floor · max_j |r_j|))`, capped to `[0, LRE_MAX]`;
//! a non-finite candidate entry has LRE 0. `max_rel_err = max_i |c_i − r_i| / max(|r_i|, floor·scale)`
//! and `eps_units = max_rel_err / ε`.

use super::arrays;
use super::diagnose::{self, Diagnosis};
use super::manifest::{Layout, Loop, LossNorm, Manifest, Quantity, TaskShape, F0};
use super::tolerance::{Tolerance, ToleranceTable};
use crate::error::{Error, Result};
use crate::kernel;
use crate::mnk::{self, BaseKernel, Mnk, Task, TaskSet, Variant};
use crate::tol::{EPS, LRE_MAX};
use ndarray::{s, Array2, ArrayD, ArrayView2, ArrayViewD, Dimension, Ix2, IxDyn};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Entrywise accuracy of a candidate array against a reference array of the same shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Number of entries.
    pub len: usize,
    /// max |c − r|.
    pub max_abs_err: f64,
    /// max |c − r| / max(|r|, floor · max|r|).
    pub max_rel_err: f64,
    /// `max_rel_err / ε` (f64 machine epsilon).
    pub eps_units: f64,
    /// Minimum LRE over entries (correct digits of the worst entry).
    pub min_lre: f64,
    /// Median LRE over entries.
    pub median_lre: f64,
    /// Index of the entry with the smallest LRE (first one on ties).
    pub worst_index: Vec<usize>,
    /// Candidate value at the worst entry.
    pub worst_candidate: f64,
    /// Reference value at the worst entry.
    pub worst_reference: f64,
    /// Number of non-finite candidate entries.
    pub non_finite: usize,
}

/// Compare two arrays entrywise (see the module docs). Shapes must agree
/// ([`Error::Shape`] otherwise); the reference must be finite ([`Error::NonFinite`]).
pub fn compare_arrays(
    candidate: ArrayViewD<f64>,
    reference: ArrayViewD<f64>,
    floor: f64,
) -> Result<Stats> {
    if candidate.shape() != reference.shape() {
        return Err(Error::shape(
            "candidate output vs reference",
            format!("{:?}", reference.shape()),
            format!("{:?}", candidate.shape()),
        ));
    }
    crate::error::ensure_finite(reference.view(), "reference")?;
    let scale = reference.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    let den_floor = if scale == 0.0 { 1.0 } else { floor * scale };
    let mut lres = Vec::with_capacity(reference.len());
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut worst: Option<(f64, IxDyn, f64, f64)> = None;
    let mut non_finite = 0;
    for ((idx, &r), &c) in reference.indexed_iter().zip(candidate.iter()) {
        let (abs, rel, l) = if c.is_finite() {
            let abs = (c - r).abs();
            let rel = abs / r.abs().max(den_floor);
            let l = if abs == 0.0 {
                LRE_MAX
            } else {
                (-rel.log10()).clamp(0.0, LRE_MAX)
            };
            (abs, rel, l)
        } else {
            non_finite += 1;
            (f64::INFINITY, f64::INFINITY, 0.0)
        };
        max_abs = max_abs.max(abs);
        max_rel = max_rel.max(rel);
        if worst.as_ref().map_or(true, |w| l < w.0) {
            worst = Some((l, idx.clone(), c, r));
        }
        lres.push(l);
    }
    let len = lres.len();
    let (min_lre, worst_index, worst_candidate, worst_reference) = match worst {
        Some((l, idx, c, r)) => (l, idx.slice().to_vec(), c, r),
        None => (LRE_MAX, Vec::new(), 0.0, 0.0),
    };
    lres.sort_by(|a, b| a.total_cmp(b));
    let median_lre = if len == 0 {
        LRE_MAX
    } else if len % 2 == 1 {
        lres[len / 2]
    } else {
        0.5 * (lres[len / 2 - 1] + lres[len / 2])
    };
    Ok(Stats {
        len,
        max_abs_err: max_abs,
        max_rel_err: max_rel,
        eps_units: max_rel / EPS,
        min_lre,
        median_lre,
        worst_index,
        worst_candidate,
        worst_reference,
        non_finite,
    })
}

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
            "{v}  {}  [{}]  {}  shape {:?}",
            self.quantity, self.implementation, self.manifest, self.shape
        )?;
        if let Some(s) = &self.stats {
            writeln!(
                f,
                "  max abs err {:.3e}  max rel err {:.3e} ({:.1} eps)  LRE min {:.2} median {:.2}  (need {:.2}, {})",
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
        } else {
            writeln!(f, "  candidate shape does not match the reference")?;
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

/// Input arrays by role, as read from a manifest.
pub type Inputs = BTreeMap<String, ArrayD<f64>>;

/// Fetch an input as a matrix.
pub fn input2<'a>(inputs: &'a Inputs, role: &str) -> Result<ndarray::ArrayView2<'a, f64>> {
    let a = inputs
        .get(role)
        .ok_or_else(|| Error::Empty(format!("input `{role}` is missing")))?;
    a.view().into_dimensionality::<Ix2>().map_err(|_| {
        Error::shape(
            format!("input `{role}`"),
            "a 2-D array (points are rows)",
            format!("shape {:?}", a.shape()),
        )
    })
}

/// Our reference value of the manifest's quantity on the given inputs.
pub fn reference(m: &Manifest, inputs: &Inputs) -> Result<ArrayD<f64>> {
    let arch = m.conventions.arch()?;
    match m.quantity {
        Quantity::Nngp | Quantity::Ntk => {
            let x1 = input2(inputs, "x1")?;
            let x2 = match inputs.get("x2") {
                Some(_) => Some(input2(inputs, "x2")?),
                None => None,
            };
            let k = kernel::kernels(&arch, x1, x2)?;
            let out = if m.quantity == Quantity::Nngp {
                k.nngp
            } else {
                k.ntk
            };
            Ok(out.into_dyn())
        }
        Quantity::InnerOperatorT => {
            let xs = input2(inputs, "x_support")?;
            let ys = input2(inputs, "y_support")?;
            if ys.nrows() != xs.nrows() {
                return Err(Error::shape(
                    "input `y_support`",
                    format!("{} rows (one per support point)", xs.nrows()),
                    format!("{} rows", ys.nrows()),
                ));
            }
            let c = &m.conventions;
            let scale = loss_scale(c.loss_for(m.quantity)?, ys.len());
            let sched = c.inner_for(m.quantity)?.schedule(scale);
            let k = kernel::kernels(&arch, xs, None)?;
            let theta = match c.variant.unwrap_or_default() {
                Variant::Maml => k.ntk,
                Variant::Anil => k.nngp,
            };
            Ok(mnk::inner_operator(theta.view(), &sched)?.into_dyn())
        }
        Quantity::MnkGram | Quantity::MnkCross | Quantity::Predictions | Quantity::Complexity => {
            meta_reference(m, inputs, arch)
        }
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => maml_reference(m, inputs, arch),
    }
}

/// The manifest's layout, task shape and loss normalisation for its quantity, and the training
/// task set read from the `x`, `y` inputs in that layout.
fn training_tasks(m: &Manifest, inputs: &Inputs) -> Result<(Layout, TaskShape, LossNorm, TaskSet)> {
    let q = m.quantity;
    let c = &m.conventions;
    let layout = c.layout_for(q)?;
    let shape = c.task_shape_for(q)?;
    let loss = c.loss_for(q)?;
    let set = task_set(
        input2(inputs, "x")?,
        input2(inputs, "y")?,
        layout,
        shape,
        "x",
    )?;
    Ok((layout, shape, loss, set))
}

/// References of the finite-network quantities: the exact (or first-order) MAML meta-gradient
/// at `params` (flat θ in the order of [`crate::net::Mlp`]: per layer W (row-major, n_out × n_in)
/// then b), and the meta-loss after each of `outer.steps` full-batch outer steps from `params`.
/// Losses are sums (½‖·‖²); `loss: mean` divides the inner loss by m·k and the meta-loss by N·n·k.
fn maml_reference(m: &Manifest, inputs: &Inputs, arch: crate::kernel::Arch) -> Result<ArrayD<f64>> {
    use crate::maml::{self, Adapt, MamlConfig, MetaTask, TrainConfig};
    let q = m.quantity;
    let c = &m.conventions;
    let (_layout, shape, loss, set) = training_tasks(m, inputs)?;
    let k = set.k();
    let theta = inputs
        .get("params")
        .ok_or_else(|| Error::Empty("input `params` is missing".into()))?
        .view()
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| Error::shape("input `params`", "a 1-D array (flat θ)", "more dimensions"))?
        .to_owned();
    let mlp = crate::net::Mlp::new(&arch, set.d(), k)?;
    let Loop::Steps { lr, steps, .. } = c.inner_for(q)? else {
        return Err(Error::Unsupported(format!(
            "quantity `{q}` needs inner.kind = steps"
        )));
    };
    let inner_scale = loss_scale(loss, shape.support * k);
    let outer_scale = loss_scale(loss, set.n_query() * k);
    let adapt = match c.variant.unwrap_or_default() {
        Variant::Maml => Adapt::Full,
        Variant::Anil => Adapt::Head,
    };
    let cfg = MamlConfig::new(lr * inner_scale, steps)
        .with_order(c.order.unwrap_or_default())
        .with_adapt(adapt);
    let tasks: Vec<MetaTask> = set
        .tasks()
        .iter()
        .map(|t| MetaTask::new(t.xs.clone(), t.ys.clone(), t.xq.clone(), t.yq.clone()))
        .collect();
    match q {
        Quantity::MetaGradient => {
            let (_, g) = maml::meta_loss_grad(&mlp, theta.view(), &tasks, &cfg)?;
            Ok((g * outer_scale).into_dyn())
        }
        _ => {
            let Loop::Steps {
                lr: eta, steps: t, ..
            } = c.outer_for(q)?
            else {
                return Err(Error::Unsupported(format!(
                    "quantity `{q}` needs outer.kind = steps"
                )));
            };
            let res = maml::train(
                &mlp,
                theta.view(),
                &tasks,
                &cfg,
                &TrainConfig::new(eta * outer_scale, t),
                &mut |_, _| {},
            )?;
            let losses: Vec<f64> = res
                .records
                .iter()
                .map(|r| r.meta_loss * outer_scale)
                .collect();
            Ok(ndarray::Array1::from(losses).into_dyn())
        }
    }
}

/// Time scale of a loss normalisation: 1 for sums, 1/`size` (the number of label entries) for
/// means.
pub fn loss_scale(loss: LossNorm, size: usize) -> f64 {
    match loss {
        LossNorm::Sum => 1.0,
        LossNorm::Mean => 1.0 / size.max(1) as f64,
    }
}

/// Split a stacked task-set array (rows in `layout` order, every task with `shape.support`
/// support and `shape.query` query rows) into (supports stacked task by task, queries stacked
/// task by task).
pub fn unstack(
    a: ArrayView2<f64>,
    layout: Layout,
    shape: TaskShape,
    what: &str,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let (m, n) = (shape.support, shape.query);
    let per = m + n;
    if per == 0 || a.nrows() == 0 || a.nrows() % per != 0 {
        return Err(Error::shape(
            format!("stacked task-set array `{what}`"),
            format!("a positive multiple of support + query = {per} rows"),
            format!("{} rows", a.nrows()),
        ));
    }
    let nt = a.nrows() / per;
    let cols = a.ncols();
    let mut xs = Array2::zeros((nt * m, cols));
    let mut xq = Array2::zeros((nt * n, cols));
    for i in 0..nt {
        let (s0, q0) = match layout {
            Layout::PerTask => (i * per, i * per + m),
            Layout::QueriesFirst => (nt * n + i * m, i * n),
        };
        xs.slice_mut(s![i * m..(i + 1) * m, ..])
            .assign(&a.slice(s![s0..s0 + m, ..]));
        xq.slice_mut(s![i * n..(i + 1) * n, ..])
            .assign(&a.slice(s![q0..q0 + n, ..]));
    }
    Ok((xs, xq))
}

/// Build a task set from stacked `x`/`y` arrays.
pub fn task_set(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    layout: Layout,
    shape: TaskShape,
    what: &str,
) -> Result<TaskSet> {
    if y.nrows() != x.nrows() {
        return Err(Error::shape(
            format!("labels of `{what}`"),
            format!("{} rows (as the inputs)", x.nrows()),
            format!("{} rows", y.nrows()),
        ));
    }
    let (xs, xq) = unstack(x, layout, shape, what)?;
    let (ys, yq) = unstack(y, layout, shape, what)?;
    let (m, n) = (shape.support, shape.query);
    let tasks = (0..xs.nrows() / m)
        .map(|i| {
            Task::new(
                xs.slice(s![i * m..(i + 1) * m, ..]).to_owned(),
                ys.slice(s![i * m..(i + 1) * m, ..]).to_owned(),
                xq.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
                yq.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}

fn f0_of(inputs: &Inputs, role: &str, layout: Layout, shape: TaskShape) -> Result<mnk::F0> {
    let (support, query) = unstack(input2(inputs, role)?, layout, shape, role)?;
    Ok(mnk::F0 { query, support })
}

/// References of the task-set quantities (MNK Gram, cross kernel, predictions, complexity).
fn meta_reference(m: &Manifest, inputs: &Inputs, arch: crate::kernel::Arch) -> Result<ArrayD<f64>> {
    let q = m.quantity;
    let c = &m.conventions;
    let (layout, shape, loss, train) = training_tasks(m, inputs)?;
    let k = train.k();
    let inner = c
        .inner_for(q)?
        .schedule(loss_scale(loss, shape.support * k));
    let mk =
        Mnk::new(BaseKernel::Analytic(arch), inner).with_variant(c.variant.unwrap_or_default());
    let test = || -> Result<TaskSet> {
        task_set(
            input2(inputs, "test_x")?,
            input2(inputs, "test_y")?,
            layout,
            shape,
            "test_x",
        )
    };
    match q {
        Quantity::MnkGram => Ok(mk.phi(&train)?.into_dyn()),
        Quantity::MnkCross => Ok(mk.cross(&test()?, &train)?.into_dyn()),
        Quantity::Predictions => {
            let test = test()?;
            let outer = c
                .outer_for(q)?
                .schedule(loss_scale(loss, train.n_query() * k));
            let f0 = match c.f0_for(q)? {
                F0::Zero => None,
                F0::File => Some((
                    f0_of(inputs, "f0", layout, shape)?,
                    f0_of(inputs, "test_f0", layout, shape)?,
                )),
            };
            let p = mk.predict(&train, &test, &outer, f0.as_ref().map(|(a, b)| (a, b)))?;
            Ok(p.test.into_dyn())
        }
        Quantity::Complexity => {
            // C = √(tr(Ỹᵀ h(Φ) Ỹ) / N), Ỹ = Y − G, h = (Φ + ρI)⁻¹ (ρ = outer ridge, if given).
            let ridge = c.outer.map_or(0.0, |o| o.ridge());
            let ad = mk.adapters(&train)?;
            let g = mnk::g_term(&train, &ad, None)?;
            let resid = &train.query_y() - &g;
            let phi = mk.phi_with(&train, &ad)?;
            let sched = mnk::Schedule::infinite().with_ridge(ridge, mnk::RidgeMode::InverseOnly);
            let (hy, _, _, _) = mnk::predict::outer_apply(phi.view(), resid.view(), &sched)?;
            let quad: f64 = resid.iter().zip(hy.iter()).map(|(a, b)| a * b).sum();
            let cval = (quad.max(0.0) / train.len() as f64).sqrt();
            Ok(ndarray::arr0(cval).into_dyn())
        }
        _ => unreachable!("meta_reference called for {q}"),
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
    let reference = reference(m, inputs)?;
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
    let verdict = if stats.min_lre >= tol.min_digits {
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
        tolerance: tol,
        verdict,
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
