//! Conformance packs (`gbml compare export <dir>`): inputs plus our certified outputs for a graded
//! set of cases, so that another implementation can test itself without this tool (NIST StRD
//! style: each case states the digits we certify).
//!
//! Layout of a pack:
//!
//! ```text
//! <dir>/README.md                  how to use the pack
//! <dir>/index.json                 [{case, grade, quantity, certified_digits, description}, ...]
//! <dir>/<case>/manifest.json       a gbml-exchange manifest whose `output` is reference.npy
//! <dir>/<case>/<input>.npy         inputs (points are rows, float64)
//! <dir>/<case>/reference.npy       our certified output
//! ```
//!
//! A candidate writes its own output next to the inputs, copies the manifest with `output` and
//! `implementation` changed, and runs `gbml compare run <manifest>` (or compares against
//! `reference.npy` itself to the certified digits).
//!
//! Grades: `easy` (generic inputs), `near_degenerate` (near-duplicate, antipodal, collinear and
//! zero inputs: where the arc-cosine angle loses half its digits if computed naively),
//! `ill_conditioned` (inputs scaled over 8 orders of magnitude; near-singular Gram matrices),
//! `deep` (20 and 50 hidden layers).
//!
//! Certified digits: 13 for the kernels ([`crate::tol::KERNEL_MIN_DIGITS`]), the floor measured by
//! the golden tests against 50-digit mpmath and re-checked on every pack case by
//! `tests/compare_pack.rs` against `fixtures/conformance/` (generated with mpmath by
//! `fixtures/conformance/gen_kernel_refs.py`).

use super::arrays;
use super::compare::{reference, Inputs};
use super::manifest::{Conventions, Manifest, Quantity};
use super::tolerance::default_tolerance;
use crate::error::{Error, Result};
use crate::kernel::{Activation, Arch, Parameterization};
use ndarray::{Array2, ArrayD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Difficulty grade of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Easy,
    NearDegenerate,
    IllConditioned,
    Deep,
}

/// One case of a pack.
#[derive(Clone, Debug)]
pub struct Case {
    /// Directory name.
    pub name: String,
    /// Grade.
    pub grade: Grade,
    /// What the case exercises.
    pub description: String,
    /// The manifest (output = `reference.npy`).
    pub manifest: Manifest,
    /// Inputs by role.
    pub inputs: Inputs,
}

/// Index entry of a pack.
#[derive(Clone, Debug, Serialize)]
pub struct IndexEntry {
    pub case: String,
    pub grade: Grade,
    pub quantity: Quantity,
    pub certified_digits: f64,
    pub description: String,
}

fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(rng))
}

/// Rows around a base point: duplicates up to 1e-12, near-duplicates, antipodal, collinear,
/// orthogonal and zero rows.
fn near_degenerate_points(rng: &mut ChaCha8Rng, d: usize) -> Array2<f64> {
    let x = gaussian(rng, 1, d).row(0).to_owned();
    let delta = gaussian(rng, 1, d).row(0).to_owned();
    let mut rows: Vec<ndarray::Array1<f64>> = vec![
        x.clone(),
        &x + &(&delta * 1e-12),
        &x + &(&delta * 1e-8),
        &x + &(&delta * 1e-4),
        &x * 3.0,
        -&x,
    ];
    // A vector orthogonal to x (Gram–Schmidt on delta).
    let proj = delta.dot(&x) / x.dot(&x);
    rows.push(&delta - &(&x * proj));
    rows.push(ndarray::Array1::zeros(d));
    let n = rows.len();
    Array2::from_shape_fn((n, d), |(i, j)| rows[i][j])
}

fn kernel_manifest(q: Quantity, arch: &Arch, cross: bool) -> Manifest {
    let mut inputs = BTreeMap::new();
    inputs.insert("x1".to_string(), "x1.npy".to_string());
    if cross {
        inputs.insert("x2".to_string(), "x2.npy".to_string());
    }
    let mut m = Manifest::new(
        format!("gbml-testbed {}", env!("CARGO_PKG_VERSION")),
        q,
        inputs,
        "reference.npy",
        Conventions::from_arch(arch),
    );
    m.certified_digits = Some(default_tolerance(q).min_digits);
    m
}

/// The kernel cases of the pack (NNGP and NTK of each architecture/input set).
pub fn kernel_cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_601);
    let relu = Activation::Relu;
    let mut specs: Vec<(
        String,
        Grade,
        String,
        Arch,
        Array2<f64>,
        Option<Array2<f64>>,
    )> = Vec::new();
    // easy
    let x = gaussian(&mut rng, 6, 4);
    specs.push((
        "relu_d2".into(),
        Grade::Easy,
        "ReLU, 2 hidden layers, σ_w = √2, σ_b = 0.1, 6 Gaussian points in R⁴ (symmetric Gram, diagonals included)".into(),
        Arch::new(2, relu).with_sigma_w(2f64.sqrt()).with_sigma_b(Some(0.1)),
        x,
        None,
    ));
    let (x, x2) = (gaussian(&mut rng, 5, 3), gaussian(&mut rng, 4, 3));
    specs.push((
        "erf_d3_cross".into(),
        Grade::Easy,
        "erf, 3 hidden layers, σ_w = 1.5, σ_b = 0.5, cross kernel 5×4 in R³".into(),
        Arch::new(3, Activation::Erf)
            .with_sigma_w(1.5)
            .with_sigma_b(Some(0.5)),
        x,
        Some(x2),
    ));
    let x = gaussian(&mut rng, 6, 5);
    specs.push((
        "relu_d2_standard".into(),
        Grade::Easy,
        "ReLU, 2 hidden layers of widths 512 and 256, standard parameterization, σ_w = 1.3, trainable bias with σ_b = 0 (adds 1 per layer to the NTK)".into(),
        Arch::new(2, relu)
            .with_sigma_w(1.3)
            .with_sigma_b(Some(0.0))
            .with_parameterization(Parameterization::Standard)
            .with_widths(vec![512, 256]),
        x,
        None,
    ));
    // near-degenerate
    let x = near_degenerate_points(&mut rng, 4);
    specs.push((
        "relu_d3_near_duplicates".into(),
        Grade::NearDegenerate,
        "ReLU, 3 hidden layers, no bias: a point, its perturbations by 1e-12, 1e-8, 1e-4, a collinear multiple, the antipode, an orthogonal point and the zero vector".into(),
        Arch::new(3, relu),
        x.clone(),
        None,
    ));
    specs.push((
        "leaky_relu_d2_near_duplicates".into(),
        Grade::NearDegenerate,
        "leaky ReLU (α = 0.1), 2 hidden layers, σ_b = 0.2, the same near-degenerate points".into(),
        Arch::new(2, Activation::leaky_relu(0.1)).with_sigma_b(Some(0.2)),
        x,
        None,
    ));
    // ill-conditioned
    let mut x = gaussian(&mut rng, 8, 3);
    for (i, mut row) in x.rows_mut().into_iter().enumerate() {
        let s = 10f64.powi(i as i32 - 4);
        row.mapv_inplace(|v| v * s);
    }
    specs.push((
        "relu_d2_badly_scaled".into(),
        Grade::IllConditioned,
        "ReLU, 2 hidden layers, σ_b = 0.05, 8 points with norms from 1e-4 to 1e3".into(),
        Arch::new(2, relu).with_sigma_b(Some(0.05)),
        x,
        None,
    ));
    let base = gaussian(&mut rng, 3, 4);
    let pert = gaussian(&mut rng, 9, 4);
    let x = Array2::from_shape_fn((9, 4), |(i, j)| base[[i % 3, j]] + 1e-6 * pert[[i, j]]);
    specs.push((
        "erf_d2_near_singular_gram".into(),
        Grade::IllConditioned,
        "erf, 2 hidden layers, σ_b = 0.3: 9 points in three clusters of radius 1e-6 (Gram matrix condition number ~1e12)".into(),
        Arch::new(2, Activation::Erf).with_sigma_b(Some(0.3)),
        x,
        None,
    ));
    // deep
    let x = gaussian(&mut rng, 6, 4);
    specs.push((
        "relu_d20".into(),
        Grade::Deep,
        "ReLU, 20 hidden layers, σ_w = √2, no bias (correlations converge towards 1)".into(),
        Arch::new(20, relu).with_sigma_w(2f64.sqrt()),
        x.clone(),
        None,
    ));
    specs.push((
        "erf_d50".into(),
        Grade::Deep,
        "erf, 50 hidden layers, σ_w = 1.2, σ_b = 0.1".into(),
        Arch::new(50, Activation::Erf)
            .with_sigma_w(1.2)
            .with_sigma_b(Some(0.1)),
        x,
        None,
    ));
    let mut out = Vec::new();
    for (slug, grade, desc, arch, x1, x2) in specs {
        for q in [Quantity::Nngp, Quantity::Ntk] {
            let mut inputs = Inputs::new();
            inputs.insert("x1".into(), x1.clone().into_dyn());
            if let Some(x2) = &x2 {
                inputs.insert("x2".into(), x2.clone().into_dyn());
            }
            let mut manifest = kernel_manifest(q, &arch, x2.is_some());
            manifest.notes = Some(desc.clone());
            out.push(Case {
                name: format!("{}-{}-{}", grade_name(grade), slug, q),
                grade,
                description: desc.clone(),
                manifest,
                inputs,
            });
        }
    }
    out
}

fn grade_name(g: Grade) -> &'static str {
    match g {
        Grade::Easy => "easy",
        Grade::NearDegenerate => "near_degenerate",
        Grade::IllConditioned => "ill_conditioned",
        Grade::Deep => "deep",
    }
}

/// Every case of the pack.
pub fn cases() -> Vec<Case> {
    kernel_cases()
}

const README: &str = include_str!("pack_readme.md");

/// Write a conformance pack to `dir` (created if needed). Returns the index.
pub fn export_pack(dir: &Path) -> Result<Vec<IndexEntry>> {
    let mk = |p: &Path| {
        std::fs::create_dir_all(p).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })
    };
    mk(dir)?;
    let mut index = Vec::new();
    for case in cases() {
        let cdir = dir.join(&case.name);
        mk(&cdir)?;
        for (role, a) in &case.inputs {
            let rel = &case.manifest.inputs[role];
            arrays::write(&cdir.join(rel), a)?;
        }
        let r: ArrayD<f64> = reference(&case.manifest, &case.inputs)?;
        arrays::write(&cdir.join(&case.manifest.output), &r)?;
        case.manifest.save(&cdir.join("manifest.json"))?;
        index.push(IndexEntry {
            case: case.name.clone(),
            grade: case.grade,
            quantity: case.manifest.quantity,
            certified_digits: case.manifest.certified_digits.unwrap_or(0.0),
            description: case.description.clone(),
        });
    }
    let idx = serde_json::to_string_pretty(&index).expect("index serialises");
    let w = |p: &Path, s: &str| {
        std::fs::write(p, s).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })
    };
    w(&dir.join("index.json"), &(idx + "\n"))?;
    w(&dir.join("README.md"), README)?;
    Ok(index)
}
