//! `gbml mnk`: the Meta Neural Kernel Φ, the kernel-regression meta-learner's predictions and
//! the spectral diagnostics (MATH.md §2, §3, §5), on built-in task families or `.npy` tasks.
//!
//! Tasks (`--tasks`):
//! * `sine` / `linear` / `omniglot`: built-in generators (`gbml_testbed::mnk::data`), seeded.
//! * `npy` with `--npy-dir DIR` and `--layout`:
//!   - `per-task` (MNK v1): `xs.npy` (N×m×d), `ys.npy` (N×m×k), `xq.npy` (N×n×d), `yq.npy`
//!     (N×n×k), test tasks `test_xs.npy` … `test_yq.npy` (optional);
//!   - `queries-first` (MetaNTK-NAS): `x.npy` ((Nn+Nm)×d: all queries, then all supports),
//!     `y.npy` likewise, sizes from `--n-train --m --n`; test tasks `test_x.npy`, `test_y.npy`
//!     with `--n-test`.
//!
//! Kernel: analytic NTK (`--depth --activation --sigma-w --sigma-b --parameterization --width`),
//! a layer list (`--layers`, conv or FC), or a
//! precomputed Gram matrix of any base kernel, `--kernel-npy G.npy` (alias `--precomputed`),
//! over [train queries; train supports; test queries; test supports], each block in task order
//! (and `--precomputed-nngp` for `--anil`).
//!
//! Inner loop: `--inner-lr λ --inner-steps τ` (steps) or `--inner-time s|inf` (flow/infinite),
//! `--inner-ridge ρ --ridge-mode inverse-only|both`. Outer: `--outer-lr η --outer-steps t` or
//! `--outer-time ηt|inf`, `--outer-ridge`.
//!
//! `--rows a..b` computes only those rows of Φ (an exact slice of the full matrix, for sharding
//! across jobs) and writes them with `--phi-out`; with `--ntk-out` it writes rows a..b of the
//! outer NTK Gram matrix over the training points [X; X'] instead (or as well, if `--phi-out` is
//! also given), an exact slice too.
//!
//! `--precision extended` computes Φ, the cross kernel, G and the predictions in double-double
//! (`gbml_testbed::xprec`): faithful f64 values whatever the conditioning (not with `--rows`).
//!
//! f0 (network outputs at initialization, default 0): `--f0-train-query --f0-train-support
//! --f0-test-query --f0-test-support`, `.npy` files stacked in task order (points × k) or per
//! task (tasks × points × k); shapes are checked against the task sets (typed errors).

use gbml_testbed::io::arrays;
use gbml_testbed::kernel::{Activation, Arch, Parameterization};
use gbml_testbed::mnk::data::{
    linear_tasks, omniglot_fixture_path, sine_tasks, unit_norm_inputs, LinearSpec, Omniglot,
    OmniglotSpec, OmniglotSplit, SineSpec,
};
use gbml_testbed::mnk::layout::{from_per_task, from_queries_first, index_tasks};
use gbml_testbed::mnk::{
    accuracy, BaseKernel, Mnk, Precomputed, RidgeMode, Schedule, Spectrum, TaskSet, Variant, F0,
};
use gbml_testbed::xprec::{self, Precision};
use gbml_testbed::{Error, Result};
use ndarray::{Array2, Array3, Ix2, Ix3};
use std::path::{Path, PathBuf};

/// Arguments of `gbml mnk`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Task source: sine, linear, omniglot or npy.
    #[arg(long, default_value = "sine")]
    tasks: String,
    /// Directory of .npy task files (with `--tasks npy`).
    #[arg(long)]
    npy_dir: Option<PathBuf>,
    /// Layout of the .npy files: per-task or queries-first.
    #[arg(long, default_value = "per-task")]
    layout: String,
    /// Number of training tasks N.
    #[arg(long, default_value_t = 10)]
    n_train: usize,
    /// Number of test tasks.
    #[arg(long, default_value_t = 5)]
    n_test: usize,
    /// Support points per task m (sine, linear, queries-first .npy).
    #[arg(long, default_value_t = 5)]
    m: usize,
    /// Query points per task n (sine, linear, queries-first .npy).
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Seed of the task generators (test tasks use seed + 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sine: label-noise fraction p.
    #[arg(long, default_value_t = 0.0)]
    noise: f64,
    /// Linear: input dimension d.
    #[arg(long, default_value_t = 8)]
    dim: usize,
    /// Linear: task spread s around the shared weight.
    #[arg(long, default_value_t = 0.5)]
    spread: f64,
    /// Omniglot: classes per task (N-way).
    #[arg(long, default_value_t = 5)]
    ways: usize,
    /// Omniglot: support images per class (K-shot).
    #[arg(long, default_value_t = 1)]
    shots: usize,
    /// Omniglot: query images per class.
    #[arg(long, default_value_t = 3)]
    queries: usize,
    /// Omniglot: path of omniglot28.npy (default: the fixture in the source tree).
    #[arg(long)]
    omniglot: Option<PathBuf>,
    /// Scale every input to unit norm (cosine-normalised kernel for bias-free ReLU).
    #[arg(long)]
    unit_norm: bool,
    /// Hidden layers L.
    #[arg(long, default_value_t = 2)]
    depth: usize,
    /// Activation: relu, leaky_relu(a), abrelu(a,b), erf, identity.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Weight scale σ_w.
    #[arg(long, default_value_t = 1.0)]
    sigma_w: f64,
    /// Bias scale σ_b (omit for no bias).
    #[arg(long)]
    sigma_b: Option<f64>,
    /// Parameterization: ntk or standard (`--param` is the old spelling).
    #[arg(long = "parameterization", alias = "param", default_value = "ntk")]
    param: String,
    /// Hidden width (needed by the standard parameterization).
    #[arg(long)]
    width: Option<usize>,
    /// Precomputed base-kernel (NTK) Gram matrix (.npy, P × P, any kernel: CNTK, empirical, ...)
    /// over the points in the order [train queries; train supports; test queries; test
    /// supports], each block in task order; the task inputs are then ignored.
    #[arg(long, visible_alias = "kernel-npy")]
    precomputed: Option<PathBuf>,
    /// Precomputed NNGP Gram matrix (.npy), same points (for --anil).
    #[arg(long)]
    precomputed_nngp: Option<PathBuf>,
    /// Base kernel of a layer list (e.g. `conv:3:same,relu,conv:3:same,relu,gap,dense`, the words
    /// of `gbml kernel --layers`), with --sigma-w, --sigma-b, --param, --width; task input rows
    /// are images flattened in H, W, C order, shape given by --image-shape.
    #[arg(long)]
    layers: Option<String>,
    /// Image shape H,W,C of the task input rows for --layers (default: 28,28,1 for
    /// `--tasks omniglot`, else 1,1,d).
    #[arg(long, value_delimiter = ',')]
    image_shape: Option<Vec<usize>>,
    /// ANIL: the NNGP kernel is the inner-loop kernel.
    #[arg(long)]
    anil: bool,
    /// Inner rate λ (with --inner-steps).
    #[arg(long)]
    inner_lr: Option<f64>,
    /// Inner steps τ (with --inner-lr).
    #[arg(long)]
    inner_steps: Option<usize>,
    /// Inner gradient-flow time λτ, or `inf`.
    #[arg(long, default_value = "1")]
    inner_time: String,
    /// Inner ridge ρ.
    #[arg(long, default_value_t = 0.0)]
    inner_ridge: f64,
    /// Where the ridges enter: inverse-only (authors' code) or both.
    #[arg(long, default_value = "inverse-only")]
    ridge_mode: String,
    /// Outer rate η (with --outer-steps).
    #[arg(long)]
    outer_lr: Option<f64>,
    /// Outer steps t (with --outer-lr).
    #[arg(long)]
    outer_steps: Option<usize>,
    /// Outer gradient-flow time ηt, or `inf`.
    #[arg(long, default_value = "1")]
    outer_time: String,
    /// Outer ridge ρ.
    #[arg(long, default_value_t = 0.0)]
    outer_ridge: f64,
    /// Only compute rows a..b of Φ (exact slice); writes them to --phi-out.
    #[arg(long)]
    rows: Option<String>,
    /// Write Φ (training tasks) as .npy.
    #[arg(long)]
    phi_out: Option<PathBuf>,
    /// Write the outer-kernel (NTK) Gram matrix over the training points [X; X'] (all queries,
    /// then all supports) as .npy; with --rows a..b only those rows (of Σn + Σm), an exact
    /// slice of the full matrix.
    #[arg(long)]
    ntk_out: Option<PathBuf>,
    /// f0, network outputs at initialization on the training queries (.npy: Σn × k stacked in
    /// task order, or N × n × k per task). Give all four --f0-* files or none (default f0 = 0).
    #[arg(long)]
    f0_train_query: Option<PathBuf>,
    /// f0 on the training supports (Σm × k or N × m × k).
    #[arg(long)]
    f0_train_support: Option<PathBuf>,
    /// f0 on the test queries (Σn̂ × k or N̂ × n × k).
    #[arg(long)]
    f0_test_query: Option<PathBuf>,
    /// f0 on the test supports (Σm̂ × k or N̂ × m × k).
    #[arg(long)]
    f0_test_support: Option<PathBuf>,
    /// Write the cross kernel Φ(test, train) as .npy.
    #[arg(long)]
    cross_out: Option<PathBuf>,
    /// Write the test predictions (Σn̂ × k) as .npy.
    #[arg(long)]
    pred_out: Option<PathBuf>,
    /// f64 (fast, default) or extended (double-double: Φ, cross kernel, predictions faithful
    /// to ≤ 1 ulp whatever the conditioning; not with --rows).
    #[arg(long, default_value = "f64")]
    precision: Precision,
    /// Write a JSON summary (configuration, spectrum, errors/accuracies).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_time(s: &str, name: &str) -> Result<Option<f64>> {
    let t = s.trim().to_ascii_lowercase();
    if t == "inf" || t == "infinite" || t == "∞" {
        return Ok(None);
    }
    t.parse::<f64>()
        .map(Some)
        .map_err(|_| Error::param(name, s, "expected a number or `inf`"))
}

fn schedule(
    lr: Option<f64>,
    steps: Option<usize>,
    time: &str,
    ridge: f64,
    mode: RidgeMode,
    name: &str,
) -> Result<Schedule> {
    let s = match (lr, steps) {
        (Some(lr), Some(st)) => Schedule::steps(lr, st),
        (None, None) => match parse_time(time, &format!("{name}-time"))? {
            Some(t) => Schedule::flow(t),
            None => Schedule::infinite(),
        },
        _ => {
            return Err(Error::param(
                format!("{name}-lr/{name}-steps"),
                format!("{lr:?}/{steps:?}"),
                "give both or neither",
            ))
        }
    };
    let s = s.with_ridge(ridge, mode);
    s.validate()?;
    Ok(s)
}

fn read2(path: &Path) -> Result<Array2<f64>> {
    arrays::read(path)?
        .into_dimensionality::<Ix2>()
        .map_err(|e| Error::Parse {
            what: "2-d .npy array".into(),
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

fn read3(path: &Path) -> Result<Array3<f64>> {
    arrays::read(path)?
        .into_dimensionality::<Ix3>()
        .map_err(|e| Error::Parse {
            what: "3-d .npy array (tasks × points × columns)".into(),
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// An f0 block: 2-d (points × k, stacked in task order) or 3-d (tasks × points × k, flattened
/// to the stacked order).
fn read_f0(path: &Path) -> Result<Array2<f64>> {
    let a = arrays::read(path)?;
    let bad = |reason: String| Error::Parse {
        what: "f0 .npy array (points × k, or tasks × points × k)".into(),
        path: path.display().to_string(),
        reason,
    };
    match a.ndim() {
        2 => a
            .into_dimensionality::<Ix2>()
            .map_err(|e| bad(e.to_string())),
        3 => {
            let a = a
                .into_dimensionality::<Ix3>()
                .map_err(|e| bad(e.to_string()))?;
            let (t, n, k) = a.dim();
            a.as_standard_layout()
                .to_owned()
                .into_shape_with_order((t * n, k))
                .map_err(|e| bad(e.to_string()))
        }
        d => Err(bad(format!("{d}-d array"))),
    }
}

/// The `--layers` base kernel on flattened images of shape `--image-shape` (default 28,28,1 for
/// `--tasks omniglot`, else 1,1,d).
fn layer_kernel(
    args: &Args,
    layers: &str,
    param: Parameterization,
    d: usize,
) -> Result<BaseKernel> {
    let default_shape = if args.tasks == "omniglot" {
        (28, 28, 1)
    } else {
        (1, 1, d)
    };
    crate::vocab::layer_kernel(
        layers,
        args.sigma_w,
        args.sigma_b,
        param,
        args.width,
        args.image_shape.as_deref(),
        default_shape,
    )
}

/// The f0 blocks (training, test) if given: all four files or none.
fn read_f0_all(args: &Args) -> Result<Option<(F0, F0)>> {
    match (
        &args.f0_train_query,
        &args.f0_train_support,
        &args.f0_test_query,
        &args.f0_test_support,
    ) {
        (None, None, None, None) => Ok(None),
        (Some(a), Some(b), Some(c), Some(d)) => Ok(Some((
            F0 {
                query: read_f0(a)?,
                support: read_f0(b)?,
            },
            F0 {
                query: read_f0(c)?,
                support: read_f0(d)?,
            },
        ))),
        _ => Err(Error::param(
            "f0-train-query/f0-train-support/f0-test-query/f0-test-support",
            "partly given",
            "give all four f0 files or none",
        )),
    }
}

fn npy_tasks(args: &Args) -> Result<(TaskSet, Option<TaskSet>)> {
    let dir = args
        .npy_dir
        .as_ref()
        .ok_or_else(|| Error::param("npy-dir", "(none)", "required with --tasks npy"))?;
    let p = |f: &str| dir.join(f);
    match args.layout.as_str() {
        "per-task" => {
            let load = |pre: &str| -> Result<TaskSet> {
                let (xs, ys) = (
                    read3(&p(&format!("{pre}xs.npy")))?,
                    read3(&p(&format!("{pre}ys.npy")))?,
                );
                let (xq, yq) = (
                    read3(&p(&format!("{pre}xq.npy")))?,
                    read3(&p(&format!("{pre}yq.npy")))?,
                );
                from_per_task(xs.view(), ys.view(), xq.view(), yq.view())
            };
            let train = load("")?;
            let test = if p("test_xs.npy").exists() {
                Some(load("test_")?)
            } else {
                None
            };
            Ok((train, test))
        }
        "queries-first" => {
            let train = from_queries_first(
                read2(&p("x.npy"))?.view(),
                read2(&p("y.npy"))?.view(),
                args.n_train,
                args.m,
                args.n,
            )?;
            let test = if p("test_x.npy").exists() {
                Some(from_queries_first(
                    read2(&p("test_x.npy"))?.view(),
                    read2(&p("test_y.npy"))?.view(),
                    args.n_test,
                    args.m,
                    args.n,
                )?)
            } else {
                None
            };
            Ok((train, test))
        }
        other => Err(Error::param(
            "layout",
            other,
            "expected per-task or queries-first",
        )),
    }
}

/// Training tasks, test tasks, and whether labels are one-hot classes.
fn build_tasks(args: &Args) -> Result<(TaskSet, Option<TaskSet>, bool)> {
    let (train, test, classify) = match args.tasks.as_str() {
        "sine" => {
            let spec = |tasks| SineSpec {
                tasks,
                m: args.m,
                n: args.n,
                noise: args.noise,
            };
            (
                sine_tasks(spec(args.n_train), args.seed)?,
                Some(sine_tasks(spec(args.n_test), args.seed + 1)?),
                false,
            )
        }
        "linear" => {
            let spec = |tasks| LinearSpec {
                tasks,
                m: args.m,
                n: args.n,
                d: args.dim,
                spread: args.spread,
            };
            (
                linear_tasks(spec(args.n_train), args.seed)?,
                Some(linear_tasks(spec(args.n_test), args.seed + 1)?),
                false,
            )
        }
        "omniglot" => {
            let path = args.omniglot.clone().unwrap_or_else(omniglot_fixture_path);
            let om = Omniglot::load(&path)?;
            let spec = |tasks, split| OmniglotSpec {
                tasks,
                ways: args.ways,
                shots: args.shots,
                queries: args.queries,
                split,
            };
            let (tr, _) = om.tasks(spec(args.n_train, OmniglotSplit::Train), args.seed)?;
            let (te, _) = om.tasks(spec(args.n_test, OmniglotSplit::Test), args.seed + 1)?;
            (tr, Some(te), true)
        }
        "npy" => {
            let (tr, te) = npy_tasks(args)?;
            (tr, te, false)
        }
        other => {
            return Err(Error::param(
                "tasks",
                other,
                "expected sine, linear, omniglot or npy",
            ))
        }
    };
    if args.unit_norm {
        let te = match test {
            Some(t) => Some(unit_norm_inputs(&t)?),
            None => None,
        };
        return Ok((unit_norm_inputs(&train)?, te, classify));
    }
    Ok((train, test, classify))
}

fn parse_rows(s: &str) -> Result<std::ops::Range<usize>> {
    let bad = || Error::param("rows", s, "expected a..b with integers a <= b");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: usize = a.trim().parse().map_err(|_| bad())?;
    let b: usize = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(a..b)
}

fn sq_err(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>()
}

/// Run the command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let mode = match args.ridge_mode.as_str() {
        "inverse-only" => RidgeMode::InverseOnly,
        "both" => RidgeMode::Both,
        other => {
            return Err(Error::param(
                "ridge-mode",
                other,
                "expected inverse-only or both",
            ))
        }
    };
    let inner = schedule(
        args.inner_lr,
        args.inner_steps,
        &args.inner_time,
        args.inner_ridge,
        mode,
        "inner",
    )?;
    let outer = schedule(
        args.outer_lr,
        args.outer_steps,
        &args.outer_time,
        args.outer_ridge,
        mode,
        "outer",
    )?;
    let rows = args.rows.as_deref().map(parse_rows).transpose()?;
    let f0 = read_f0_all(&args)?;
    let (mut train, mut test, classify) = build_tasks(&args)?;

    let kernel = if let Some(pp) = &args.precomputed {
        let ntk = read2(pp)?;
        let nngp = args.precomputed_nngp.as_deref().map(read2).transpose()?;
        let total = train.n_query() + train.n_support();
        train = index_tasks(&train, 0)?;
        test = test.map(|t| index_tasks(&t, total)).transpose()?;
        BaseKernel::Precomputed(Precomputed { ntk, nngp })
    } else {
        let param = crate::vocab::parameterization(&args.param)?;
        let mut arch = Arch::new(args.depth, Activation::parse(&args.activation)?)
            .with_sigma_w(args.sigma_w)
            .with_sigma_b(args.sigma_b)
            .with_parameterization(param);
        if let Some(w) = args.width {
            arch = arch.with_width(w);
        }
        match &args.layers {
            Some(l) => layer_kernel(&args, l, param, train.d())?,
            None => BaseKernel::Analytic(arch),
        }
    };
    let variant = if args.anil {
        Variant::Anil
    } else {
        Variant::Maml
    };
    let mnk = Mnk::new(kernel, inner).with_variant(variant);
    println!(
        "gbml mnk: {} training tasks ({} query rows, {} support rows), {} test tasks; inner {:?}, outer {:?}, {:?}",
        train.len(),
        train.n_query(),
        train.n_support(),
        test.as_ref().map_or(0, |t| t.len()),
        inner,
        outer,
        variant
    );

    let ext = args.precision == Precision::Extended;
    if ext && rows.is_some() {
        return Err(Error::Unsupported(
            "--rows with --precision extended (compute the full matrix instead)".into(),
        ));
    }
    if let Some(r) = rows {
        if let Some(p) = &args.ntk_out {
            let block = mnk.ntk_gram_rows(&train, r.clone())?;
            println!(
                "NTK Gram rows {}..{} of {} computed ({}×{})",
                r.start,
                r.end,
                train.n_query() + train.n_support(),
                block.nrows(),
                block.ncols()
            );
            arrays::write(p, &block)?;
            if args.phi_out.is_none() {
                return Ok(0);
            }
        }
        let block = mnk.phi_rows(&train, r.clone())?;
        println!(
            "Φ rows {}..{} of {} computed ({}×{})",
            r.start,
            r.end,
            train.n_query(),
            block.nrows(),
            block.ncols()
        );
        if let Some(p) = &args.phi_out {
            arrays::write(p, &block)?;
        }
        return Ok(0);
    }

    let ad = mnk.adapters(&train)?;
    let phi = if ext {
        xprec::phi(&mnk, &train)?
    } else {
        mnk.phi_with(&train, &ad)?
    };
    let spec = Spectrum::of(phi.view())?;
    println!(
        "Φ spectrum: λ_min = {:.6e}, λ_max = {:.6e}, condition = {:.3e}, η* = 2/(λ_min+λ_max) = {:.6e}, divergence above η = {:.6e}",
        spec.lambda_min,
        spec.lambda_max,
        spec.condition,
        spec.eta_crit,
        spec.eta_max()
    );
    let eta = args.outer_lr.unwrap_or(spec.eta_crit);
    println!(
        "at outer rate η = {eta:.6e}: predicted per-step residual ratio {:.6}, asymptotic loss ratio (1 − ηλ_min)² = {:.6}",
        spec.residual_ratio(eta),
        spec.loss_ratio(eta)
    );
    if let Some(p) = &args.phi_out {
        arrays::write(p, &phi)?;
    }
    if let Some(p) = &args.ntk_out {
        let k = match (&mnk.kernel, ext) {
            (BaseKernel::Analytic(a), true) => xprec::kernels(a, train.points().view(), None)?.ntk,
            _ => mnk.ntk_gram(&train)?,
        };
        arrays::write(p, &k)?;
    }
    let f0_text = if f0.is_some() {
        "f0 from the --f0-* files"
    } else {
        "f0 = 0"
    };
    let mut summary = serde_json::json!({
        "convention": format!("losses are sums with factor 1/2; {f0_text}; MNK Gram Φ over training query points in task order"),
        "inner": inner, "outer": outer, "variant": variant,
        "precision": if ext { "extended" } else { "f64" },
        "n_train_tasks": train.len(), "spectrum": spec,
        "eta": eta, "residual_ratio": spec.residual_ratio(eta), "loss_ratio": spec.loss_ratio(eta),
    });
    if let Some(test) = &test {
        if test.d() != train.d() || test.k() != train.k() {
            return Err(Error::shape(
                "test tasks vs training tasks",
                format!("d = {}, k = {}", train.d(), train.k()),
                format!("d = {}, k = {}", test.d(), test.k()),
            ));
        }
        let y = train.query_y();
        let (cross, g_test, pred, pred_train) = if ext {
            let f0r = f0.as_ref().map(|f| (&f.0, &f.1));
            let pr = xprec::predict(&mnk, &train, test, &outer, f0r)?;
            (
                xprec::cross(&mnk, test, &train)?,
                pr.g_test,
                pr.test,
                pr.train,
            )
        } else {
            let at = mnk.adapters(test)?;
            let cross = mnk.cross_with(test, &at, &train, &ad)?;
            let g_train = gbml_testbed::mnk::g_term(&train, &ad, f0.as_ref().map(|f| &f.0))?;
            let g_test = gbml_testbed::mnk::g_term(test, &at, f0.as_ref().map(|f| &f.1))?;
            let (pred, pred_train, _) = gbml_testbed::mnk::predict_from(
                phi.view(),
                cross.view(),
                y.view(),
                g_train.view(),
                g_test.view(),
                &outer,
            )?;
            (cross, g_test, pred, pred_train)
        };
        let yt = test.query_y();
        let (lg, lf) = (sq_err(&g_test, &yt), sq_err(&pred, &yt));
        let ltr = sq_err(&pred_train, &y);
        println!("test loss ½‖F − Y‖²: base learner G {lg:.6e}, meta-learner {lf:.6e}; training meta-loss {ltr:.6e}");
        summary["test_loss_g"] = lg.into();
        summary["test_loss_mnk"] = lf.into();
        summary["train_loss_mnk"] = ltr.into();
        if classify {
            let (ag, af) = (
                accuracy(g_test.view(), yt.view()),
                accuracy(pred.view(), yt.view()),
            );
            println!(
                "test accuracy: base learner G {ag:.4}, meta-learner {af:.4} (chance {:.4})",
                1.0 / train.k() as f64
            );
            summary["accuracy_g"] = ag.into();
            summary["accuracy_mnk"] = af.into();
        }
        if let Some(p) = &args.cross_out {
            arrays::write(p, &cross)?;
        }
        if let Some(p) = &args.pred_out {
            arrays::write(p, &pred)?;
        }
    } else if args.cross_out.is_some() || args.pred_out.is_some() || f0.is_some() {
        return Err(Error::param(
            "cross-out/pred-out/f0",
            "given",
            "no test tasks to predict on",
        ));
    }
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&summary).expect("serializable");
        std::fs::write(p, text).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })?;
    }
    Ok(0)
}
