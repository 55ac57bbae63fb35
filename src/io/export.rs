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
use super::manifest::{
    Conventions, Layout, Loop, LossNorm, Manifest, Quantity, RidgeMode, TaskShape, F0 as ManifestF0,
};
use super::reference::{reference, Inputs};
use super::tolerance::default_tolerance;
use crate::error::{Error, Result};
use crate::kernel::{Activation, Arch, Parameterization};
use ndarray::{Array2, ArrayD};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
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

/// One pack case: the manifest names every input as `<role>.npy` and the output
/// `reference.npy`, certifies the quantity's default digits and carries the description.
fn make_case(
    name: String,
    grade: Grade,
    desc: &str,
    q: Quantity,
    conv: Conventions,
    inputs: Inputs,
) -> Case {
    let files = inputs
        .keys()
        .map(|k| (k.clone(), format!("{k}.npy")))
        .collect();
    let mut manifest = Manifest::new(
        format!("gbml-testbed {}", env!("CARGO_PKG_VERSION")),
        q,
        files,
        "reference.npy",
        conv,
    );
    manifest.certified_digits = Some(default_tolerance(q).min_digits);
    manifest.notes = Some(desc.to_string());
    Case {
        name,
        grade,
        description: desc.to_string(),
        manifest,
        inputs,
    }
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
            out.push(make_case(
                format!("{}-{}-{}", grade_name(grade), slug, q),
                grade,
                &desc,
                q,
                Conventions::from_arch(&arch),
                inputs,
            ));
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

/// Stack per-task blocks (supports `s`, queries `q`, task-by-task) in `layout` order.
fn stack(s: &Array2<f64>, q: &Array2<f64>, shape: TaskShape, layout: Layout) -> Array2<f64> {
    let (m, n) = (shape.support, shape.query);
    let nt = s.nrows() / m;
    let mut blocks: Vec<ndarray::ArrayView2<f64>> = Vec::new();
    match layout {
        Layout::PerTask => {
            for i in 0..nt {
                blocks.push(s.slice(ndarray::s![i * m..(i + 1) * m, ..]));
                blocks.push(q.slice(ndarray::s![i * n..(i + 1) * n, ..]));
            }
        }
        Layout::QueriesFirst => {
            blocks.push(q.view());
            blocks.push(s.view());
        }
    }
    ndarray::concatenate(ndarray::Axis(0), &blocks).expect("same columns")
}

/// Random regression tasks: inputs Gaussian in R^d, labels a·sin(w·x + b) per task.
fn regression_tasks(
    rng: &mut ChaCha8Rng,
    nt: usize,
    shape: TaskShape,
    d: usize,
    layout: Layout,
) -> (Array2<f64>, Array2<f64>) {
    let xs = gaussian(rng, nt * shape.support, d);
    let xq = gaussian(rng, nt * shape.query, d);
    let w = gaussian(rng, nt, d);
    let amp: Vec<f64> = (0..nt)
        .map(|_| {
            0.5 + {
                let v: f64 = StandardNormal.sample(rng);
                v.abs()
            }
        })
        .collect();
    let label = |x: &Array2<f64>, per: usize| {
        Array2::from_shape_fn((x.nrows(), 1), |(r, _)| {
            let t = r / per;
            amp[t] * (x.row(r).dot(&w.row(t)) + 0.3).sin()
        })
    };
    let ys = label(&xs, shape.support);
    let yq = label(&xq, shape.query);
    (
        stack(&xs, &xq, shape, layout),
        stack(&ys, &yq, shape, layout),
    )
}

/// The task-set cases (MNK Gram and cross kernel, inner operator T, predictions, complexity).
pub fn meta_cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_602);
    let mut out = Vec::new();
    let setups: Vec<(&str, Grade, &str, Arch, Conventions)> = {
        let relu = Arch::new(1, Activation::Relu).with_sigma_b(Some(0.1));
        let mut c1 = Conventions::from_arch(&relu);
        c1.loss = Some(LossNorm::Sum);
        c1.inner = Some(Loop::Steps {
            lr: 0.1,
            steps: 3,
            ridge: 0.0,
            ridge_mode: RidgeMode::InverseOnly,
        });
        c1.outer = Some(Loop::Flow {
            time: 10.0,
            ridge: 0.0,
            ridge_mode: RidgeMode::InverseOnly,
        });
        c1.layout = Some(Layout::PerTask);
        c1.f0 = Some(ManifestF0::Zero);
        c1.task_shape = Some(TaskShape {
            support: 4,
            query: 3,
        });
        let erf = Arch::new(2, Activation::Erf)
            .with_sigma_w(1.3)
            .with_sigma_b(Some(0.2));
        let mut c2 = Conventions::from_arch(&erf);
        c2.loss = Some(LossNorm::Sum);
        c2.inner = Some(Loop::Flow {
            time: 2.0,
            ridge: 1e-2,
            ridge_mode: RidgeMode::InverseOnly,
        });
        c2.outer = Some(Loop::Infinite {
            ridge: 1e-4,
            ridge_mode: RidgeMode::InverseOnly,
        });
        c2.layout = Some(Layout::QueriesFirst);
        c2.f0 = Some(ManifestF0::Zero);
        c2.task_shape = Some(TaskShape {
            support: 5,
            query: 2,
        });
        vec![
            (
                "relu_d1_steps",
                Grade::Easy,
                "ReLU, 1 hidden layer, σ_b = 0.1; 3 training and 2 test sine tasks in R², m = 4, n = 3, per-task layout; inner: 3 steps at λ = 0.1; outer: flow for ηt = 10",
                relu,
                c1,
            ),
            (
                "erf_d2_flow_ridge",
                Grade::IllConditioned,
                "erf, 2 hidden layers; 4 training and 2 test tasks in R³, m = 5, n = 2, queries-first layout; inner: flow λτ = 2 with ridge 1e-2 in the inverse only (authors' convention); outer: infinite time with ridge 1e-4",
                erf,
                c2,
            ),
        ]
    };
    for (slug, grade, desc, _arch, conv) in setups {
        let shape = conv.task_shape.expect("set");
        let layout = conv.layout.expect("set");
        let (nt, d) = if slug.starts_with("relu") {
            (3, 2)
        } else {
            (4, 3)
        };
        let (x, y) = regression_tasks(&mut rng, nt, shape, d, layout);
        let (tx, ty) = regression_tasks(&mut rng, 2, shape, d, layout);
        for q in [
            Quantity::InnerOperatorT,
            Quantity::MnkGram,
            Quantity::MnkCross,
            Quantity::Predictions,
            Quantity::Complexity,
        ] {
            let mut inputs = Inputs::new();
            let mut conv = conv.clone();
            if q == Quantity::InnerOperatorT {
                // The support set of the first training task.
                let (xs, _) =
                    super::reference::unstack(x.view(), layout, shape, "x").expect("valid");
                let (ys, _) =
                    super::reference::unstack(y.view(), layout, shape, "y").expect("valid");
                let m = shape.support;
                inputs.insert(
                    "x_support".into(),
                    xs.slice(ndarray::s![0..m, ..]).to_owned().into_dyn(),
                );
                inputs.insert(
                    "y_support".into(),
                    ys.slice(ndarray::s![0..m, ..]).to_owned().into_dyn(),
                );
                conv.outer = None;
                conv.layout = None;
                conv.task_shape = None;
                conv.f0 = None;
            } else {
                inputs.insert("x".into(), x.clone().into_dyn());
                inputs.insert("y".into(), y.clone().into_dyn());
                if matches!(q, Quantity::MnkCross | Quantity::Predictions) {
                    inputs.insert("test_x".into(), tx.clone().into_dyn());
                    inputs.insert("test_y".into(), ty.clone().into_dyn());
                }
                if !matches!(q, Quantity::Predictions | Quantity::Complexity) {
                    conv.outer = None;
                }
                if q != Quantity::Predictions {
                    conv.f0 = None;
                }
            }
            out.push(make_case(
                format!("{}-{}-{}", grade_name(grade), slug, q),
                grade,
                desc,
                q,
                conv,
                inputs,
            ));
        }
    }
    out
}

/// Finite-network MAML cases (meta-gradient at θ₀, meta-loss trajectory).
pub fn maml_cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(20_260_603);
    let arch = Arch::new(1, Activation::Relu)
        .with_sigma_b(Some(0.1))
        .with_width(32);
    let shape = TaskShape {
        support: 4,
        query: 3,
    };
    let layout = Layout::PerTask;
    let (x, y) = regression_tasks(&mut rng, 3, shape, 2, layout);
    let mlp = crate::net::Mlp::new(&arch, 2, 1).expect("valid network");
    let theta = mlp.init(7);
    let mut conv = Conventions::from_arch(&arch);
    conv.loss = Some(LossNorm::Sum);
    conv.inner = Some(Loop::Steps {
        lr: 0.1,
        steps: 2,
        ridge: 0.0,
        ridge_mode: RidgeMode::InverseOnly,
    });
    conv.layout = Some(layout);
    conv.task_shape = Some(shape);
    conv.order = Some(crate::maml::Order::Second);
    let desc = "finite ReLU network, 1 hidden layer of width 32, NTK parameterization, σ_b = 0.1, θ₀ from seed 7 (params.npy, flat: per layer W row-major then b); 3 sine tasks in R², m = 4, n = 3; inner: 2 steps at λ = 0.1; second-order MAML";
    let mut out = Vec::new();
    for q in [Quantity::MetaGradient, Quantity::MetaLossTrajectory] {
        let mut conv = conv.clone();
        if q == Quantity::MetaLossTrajectory {
            conv.outer = Some(Loop::Steps {
                lr: 0.05,
                steps: 5,
                ridge: 0.0,
                ridge_mode: RidgeMode::InverseOnly,
            });
        }
        let mut inputs = Inputs::new();
        inputs.insert("params".into(), theta.clone().into_dyn());
        inputs.insert("x".into(), x.clone().into_dyn());
        inputs.insert("y".into(), y.clone().into_dyn());
        out.push(make_case(
            format!("easy-relu_d1_w32_maml-{q}"),
            Grade::Easy,
            desc,
            q,
            conv,
            inputs,
        ));
    }
    out
}

/// The conv-kernel cases of the pack (`conventions.layers`; NHWC image inputs). Certified 13
/// digits (the table's): outputs from the reference, i.e. the double-double conv kernels, which
/// `tests/xprec_conv` measures at ≥ 15.9 digits against 50-digit mpmath on every layer type.
pub fn conv_cases() -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(0xC0_4E);
    let img = |rng: &mut ChaCha8Rng, m: usize| {
        ndarray::Array4::from_shape_fn((m, 5, 5, 2), |_| StandardNormal.sample(rng))
    };
    let x1: ndarray::Array4<f64> = img(&mut rng, 4);
    let x2: ndarray::Array4<f64> = img(&mut rng, 3);
    let spec = crate::kernel::Spec::parse("conv:3:same,relu,conv:3:valid,relu,gap,dense")
        .expect("valid spec")
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1));
    let desc = "CNTK: conv 3×3 SAME, ReLU, conv 3×3 VALID, ReLU, global average pooling, dense \
                readout (neural-tangents stax conventions), σ_w = 1.4, σ_b = 0.1, 4 × 3 cross \
                kernel of Gaussian 5×5×2 NHWC images";
    [Quantity::Nngp, Quantity::Ntk]
        .into_iter()
        .map(|q| {
            let mut inputs = Inputs::new();
            inputs.insert("x1".into(), x1.clone().into_dyn());
            inputs.insert("x2".into(), x2.clone().into_dyn());
            make_case(
                format!("easy-conv_relu_gap_cross-{q}"),
                Grade::Easy,
                desc,
                q,
                Conventions::from_spec(&spec),
                inputs,
            )
        })
        .collect()
}

/// Every case of the pack.
pub fn cases() -> Vec<Case> {
    let mut c = kernel_cases();
    c.extend(conv_cases());
    c.extend(meta_cases());
    c.extend(maml_cases());
    c
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
