//! `gbml advise`: design guidance from the theory on a task set (issue 15; the library module
//! `gbml_testbed::advise` computes, this file parses flags and writes the outputs).
//!
//! Tasks: `--tasks sine|gp` (built-in, seeded; `gp` with `--spread`), `--tasks
//! omniglot|omniglot-consistent` (the Omniglot example, `gbml_testbed::advise::examples`: random
//! label order per task vs a fixed class → label map; `--ways --shots --queries
//! --classes-per-label`) or `--tasks npy --npy-dir DIR` (the task folder of `gbml maml`:
//! xs/ys/xq/yq.npy). Kernel: the analytic NTK of a
//! fully-connected network (`--depth --activation --sigma-w --sigma-b --parameterization`, the
//! shared vocabulary of `vocab.rs`), or of a layer list (`--layers`, conv or FC, as `gbml mnk`;
//! the width study is then reported as not computed: it is fully-connected only). Inner loop: `--inner-steps` steps at `--inner-lr` (default:
//! 1/max_i μ_max(Θ'_i), half the largest stable inner rate). `--json` prints JSON instead of
//! text; `--out DIR` writes report.txt, advice.json and gain_vs_affinity.svg.

use gbml_testbed::advise::examples::{omniglot_tasks, LabelOrder, OmniglotExample};
use gbml_testbed::advise::{self, rates, AdviseConfig};
use gbml_testbed::checks::generalization::{gp_tasks, GpSpec};
use gbml_testbed::checks::{Figure, Series, Style};
use gbml_testbed::io::task_folder::read_tasks;
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::data::{omniglot_fixture_path, sine_tasks, Omniglot, SineSpec};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
use gbml_testbed::{Error, Result};
use std::path::PathBuf;

/// Arguments of `gbml advise`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Task source: sine, gp, omniglot (random label order per task), omniglot-consistent
    /// (fixed class → label map) or npy.
    #[arg(long, default_value = "sine")]
    tasks: String,
    /// Task folder (with --tasks npy).
    #[arg(long)]
    npy_dir: Option<PathBuf>,
    /// Number of tasks N (built-in families).
    #[arg(long, default_value_t = 100)]
    n_train: usize,
    /// Support points per task (built-in families).
    #[arg(long, default_value_t = 5)]
    m: usize,
    /// Query points per task (built-in families).
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Seed of the built-in families.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// GP family: task spread s (0 shared function, 1 independent).
    #[arg(long, default_value_t = 0.5)]
    spread: f64,
    /// Omniglot: classes per task (N-way).
    #[arg(long, default_value_t = 5)]
    ways: usize,
    /// Omniglot: support images per class (K-shot).
    #[arg(long, default_value_t = 1)]
    shots: usize,
    /// Omniglot: query images per class.
    #[arg(long, default_value_t = 1)]
    queries: usize,
    /// Omniglot (label-consistent): training-split classes per label.
    #[arg(long, default_value_t = 20)]
    classes_per_label: usize,
    /// Omniglot: path of omniglot28.npy (default: the fixture in the source tree).
    #[arg(long)]
    omniglot: Option<PathBuf>,
    /// Hidden layers L.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Activation.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Weight scale σ_w.
    #[arg(long, default_value_t = std::f64::consts::SQRT_2)]
    sigma_w: f64,
    /// Bias scale σ_b, or `none`.
    #[arg(long, default_value = "1", value_parser = crate::vocab::bias_scale, allow_negative_numbers = true)]
    sigma_b: crate::vocab::BiasScale,
    /// Base kernel of a layer list (e.g. `conv:3:same,relu,gap,dense`, the words of `gbml kernel
    /// --layers`) instead of --depth/--activation, with --sigma-w, --sigma-b, --parameterization,
    /// --width; task input rows are images flattened in H, W, C order (--image-shape). The width
    /// study is then skipped (it is fully-connected only).
    #[arg(long)]
    layers: Option<String>,
    /// Image shape H,W,C of the task input rows for --layers (default: 28,28,1 for the Omniglot
    /// tasks, else 1,1,d).
    #[arg(long, value_delimiter = ',')]
    image_shape: Option<Vec<usize>>,
    /// Width of the standard parameterization (hidden width of the FC net, channel width N of
    /// --layers).
    #[arg(long)]
    width: Option<usize>,
    /// Parameterization: ntk or standard.
    #[arg(long = "parameterization", alias = "param", default_value = "ntk")]
    param: String,
    /// Inner rate λ (default: half the largest stable inner rate).
    #[arg(long)]
    inner_lr: Option<f64>,
    /// Inner steps τ.
    #[arg(long, default_value_t = 1)]
    inner_steps: usize,
    /// Ridge of the cross-validated predictor relative to the mean diagonal of Φ.
    #[arg(long, default_value_t = advise::RIDGE_REL)]
    ridge_rel: f64,
    /// Force this number of groups (default: eigengap criterion).
    #[arg(long)]
    groups: Option<usize>,
    /// Skip the finite-width study.
    #[arg(long)]
    no_width: bool,
    /// Tolerance of the width advice (relative MNK error).
    #[arg(long, default_value_t = 0.05)]
    tol: f64,
    /// Print JSON instead of the text report.
    #[arg(long)]
    json: bool,
    /// Write report.txt, advice.json and gain_vs_affinity.svg into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn load(args: &Args) -> Result<TaskSet> {
    match args.tasks.as_str() {
        "sine" => sine_tasks(
            SineSpec {
                tasks: args.n_train,
                m: args.m,
                n: args.n,
                noise: 0.0,
            },
            args.seed,
        ),
        "gp" => gp_tasks(
            GpSpec {
                tasks: args.n_train,
                m: args.m,
                n: args.n,
                d: 2,
                lengthscale: 0.5,
                amplitude: 0.5,
                spread: args.spread,
                noise: 0.0,
                features: 64,
            },
            args.seed,
            args.seed + 1,
        ),
        "omniglot" | "omniglot-consistent" => {
            let path = args.omniglot.clone().unwrap_or_else(omniglot_fixture_path);
            let ex = OmniglotExample {
                tasks: args.n_train,
                ways: args.ways,
                shots: args.shots,
                queries: args.queries,
                classes_per_label: args.classes_per_label,
                labels: if args.tasks == "omniglot" {
                    LabelOrder::Random
                } else {
                    LabelOrder::Consistent
                },
            };
            omniglot_tasks(&Omniglot::load(&path)?, &ex, args.seed)
        }
        "npy" => {
            let dir = args
                .npy_dir
                .as_ref()
                .ok_or_else(|| Error::param("npy-dir", "(none)", "required with --tasks npy"))?;
            let tasks = read_tasks(dir, "")?.ok_or_else(|| {
                Error::Empty(format!(
                    "no task files (xs/ys/xq/yq.npy) in {}",
                    dir.display()
                ))
            })?;
            TaskSet::new(
                tasks
                    .into_iter()
                    .map(|t| Task::new(t.xs, t.ys, t.xq, t.yq))
                    .collect::<Result<Vec<_>>>()?,
            )
        }
        other => Err(Error::param(
            "tasks",
            other,
            "expected sine, gp, omniglot, omniglot-consistent or npy",
        )),
    }
}

fn write(path: PathBuf, text: &str) -> Result<()> {
    std::fs::write(&path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Run the command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let set = load(&args)?;
    let mut arch = Arch::new(args.depth, Activation::parse(&args.activation)?)
        .with_sigma_w(args.sigma_w)
        .with_sigma_b(args.sigma_b.0)
        .with_parameterization(crate::vocab::parameterization(&args.param)?);
    if let Some(w) = args.width {
        arch = arch.with_width(w);
    }
    let kernel = match &args.layers {
        None => BaseKernel::Analytic(arch),
        Some(l) => {
            let default_shape = if args.tasks.starts_with("omniglot") {
                (28, 28, 1)
            } else {
                (1, 1, set.d())
            };
            crate::vocab::layer_kernel(
                l,
                args.sigma_w,
                args.sigma_b.0,
                crate::vocab::parameterization(&args.param)?,
                args.width,
                args.image_shape.as_deref(),
                default_shape,
            )?
        }
    };
    let lr = match args.inner_lr {
        Some(l) => l,
        None => rates::default_inner_lr(&kernel, Default::default(), &set)?,
    };
    let mnk = Mnk::new(kernel, Schedule::steps(lr, args.inner_steps));
    let cfg = AdviseConfig {
        ridge_rel: args.ridge_rel,
        groups: args.groups,
        width: (!args.no_width).then(|| advise::width::WidthConfig {
            tol: args.tol,
            ..Default::default()
        }),
    };
    let adv = advise::advise(&mnk, &set, &cfg)?;
    let text = advise::report::text(&adv);
    let json = serde_json::to_string_pretty(&adv).expect("serializable");
    if args.json {
        println!("{json}");
    } else {
        print!("{text}");
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        write(dir.join("report.txt"), &text)?;
        write(dir.join("advice.json"), &json)?;
        let gain: Vec<f64> = adv
            .cv
            .loss_g
            .iter()
            .zip(&adv.cv.loss_mnk)
            .map(|(g, m)| g - m)
            .collect();
        let fig = Figure {
            id: "gain_vs_affinity".into(),
            title: "held-out gain vs task similarity".into(),
            x_label: "mean held-out transfer affinity to the other tasks".into(),
            y_label: "held-out loss of G − of the MNK predictor".into(),
            log_x: false,
            log_y: false,
            series: vec![Series::new(
                "tasks",
                adv.mean_affinity.clone(),
                gain,
                Style::Markers,
            )],
        };
        write(
            dir.join("gain_vs_affinity.svg"),
            &gbml_testbed::report::svg::render(&fig),
        )?;
    }
    Ok(0)
}
