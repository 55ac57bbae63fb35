//! `gbml maml`: meta-train a finite network with MAML (exact second-order by default) on a
//! built-in task family (sine regression, MATH.md §9 style) or on tasks from `.npy` files; print a
//! summary of the loss trajectory; write the trajectory as CSV and/or JSON.
//!
//! `.npy` tasks (`--npy-dir DIR`): `xs.npy` (N × m × d), `ys.npy` (N × m × k), `xq.npy`
//! (N × n × d), `yq.npy` (N × n × k), float64; optional test tasks `test_xs.npy` … `test_yq.npy`.

use gbml_testbed::io::task_folder::read_tasks;
use gbml_testbed::maml::{self, Adapt, MamlConfig, Order, TrainConfig};
use gbml_testbed::mnk::data::{sine_tasks, SineSpec};
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::{Error, Result};
use std::path::{Path, PathBuf};

/// Arguments of `gbml maml`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Read tasks from this directory of .npy files instead of the sine family.
    #[arg(long)]
    npy_dir: Option<PathBuf>,
    /// Sine family: number of training tasks N.
    #[arg(long, default_value_t = 10)]
    n_tasks: usize,
    /// Sine family: number of test tasks.
    #[arg(long, default_value_t = 5)]
    test_tasks: usize,
    /// Sine family: support points per task m.
    #[arg(long, default_value_t = 5)]
    m: usize,
    /// Sine family: query points per task n.
    #[arg(long, default_value_t = 10)]
    n: usize,
    /// Seed of the task generator and of the network initialization.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hidden layers L.
    #[arg(long, default_value_t = 2)]
    depth: usize,
    /// Width of every hidden layer.
    #[arg(long, default_value_t = 256)]
    width: usize,
    /// Activation: relu, leaky_relu(a), abrelu(a,b), erf, identity, tanh, softplus.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Parameterization: ntk or standard (`--param` is the old spelling).
    #[arg(long = "parameterization", alias = "param", default_value = "ntk")]
    param: String,
    /// Weight scale σ_w.
    #[arg(long, default_value_t = 1.0)]
    sigma_w: f64,
    /// Bias scale σ_b. (Without bias a ReLU network on 1-d inputs is positively homogeneous,
    /// f(x) = x·f(±1), so its kernels on sine tasks are rank 2.)
    /// `none` for no bias parameters at all.
    #[arg(long, default_value = "1", value_parser = crate::vocab::bias_scale, allow_negative_numbers = true)]
    sigma_b: crate::vocab::BiasScale,
    /// Old spelling of `--sigma-b none`.
    #[arg(long, hide = true)]
    no_bias: bool,
    /// Inner rate λ.
    #[arg(long, default_value_t = 0.02)]
    inner_lr: f64,
    /// Inner steps τ.
    #[arg(long, default_value_t = 1)]
    inner_steps: usize,
    /// First-order MAML (drop the Hessian terms).
    #[arg(long)]
    first_order: bool,
    /// ANIL: only the readout layer adapts in the inner loop.
    #[arg(long)]
    anil: bool,
    /// Outer rate η.
    #[arg(long, default_value_t = 0.01)]
    outer_lr: f64,
    /// Outer steps T (`--steps` is the old spelling).
    #[arg(long = "outer-steps", alias = "steps", default_value_t = 100)]
    steps: usize,
    /// Train the centred network f(·; θ) − f(·; θ_0).
    #[arg(long)]
    centred: bool,
    /// Record the empirical MNK Φ̂_t every this many steps (and at T): spectrum and drift.
    #[arg(long)]
    mnk_every: Option<usize>,
    /// Write the trajectory (step, meta-loss, ‖θ_t − θ_0‖, per-layer relative change) as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the configuration, trajectory and test losses as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Run the command; returns the process exit code.
pub fn run(args: Args) -> Result<i32> {
    let (train_tasks, test_tasks) = match &args.npy_dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::Io {
                    path: dir.display().to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
                });
            }
            let tr = read_tasks(dir, "")?.ok_or_else(|| {
                Error::Empty(format!(
                    "no xs.npy/ys.npy/xq.npy/yq.npy in {}",
                    dir.display()
                ))
            })?;
            let te = read_tasks(dir, "test_")?.unwrap_or_default();
            (tr, te)
        }
        None => {
            let spec = SineSpec {
                tasks: args.n_tasks,
                m: args.m,
                n: args.n,
                noise: 0.0,
            };
            let tr = sine_tasks(spec, args.seed)?.into_tasks();
            let te = if args.test_tasks > 0 {
                let spec = SineSpec {
                    tasks: args.test_tasks,
                    ..spec
                };
                sine_tasks(spec, args.seed.wrapping_add(1_000_003))?.into_tasks()
            } else {
                Vec::new()
            };
            (tr, te)
        }
    };
    let first = train_tasks
        .first()
        .ok_or_else(|| Error::Empty("training task set".into()))?;
    let (d, k) = (first.xs.ncols(), first.ys.ncols());
    let param = crate::vocab::parameterization(&args.param)?;
    let act = NetActivation::parse(&args.activation)?;
    let sigma_b = if args.no_bias { None } else { args.sigma_b.0 };
    let net = Mlp::from_parts(
        d,
        vec![args.width; args.depth],
        k,
        act,
        args.sigma_w,
        sigma_b,
        param,
    )?;
    let cfg = MamlConfig::new(args.inner_lr, args.inner_steps)
        .with_order(if args.first_order {
            Order::First
        } else {
            Order::Second
        })
        .with_adapt(if args.anil { Adapt::Head } else { Adapt::Full });
    cfg.validate()?;
    let tc = TrainConfig::new(args.outer_lr, args.steps)
        .with_centred(args.centred)
        .with_mnk_every(args.mnk_every);
    tc.validate()?;
    let theta0 = net.init(args.seed);

    let bar = if args.quiet || args.steps < 20 {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(args.steps as u64 + 1);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} steps, {msg} [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let res = maml::train(&net, theta0.view(), &train_tasks, &cfg, &tc, &mut |_, l| {
        bar.inc(1);
        bar.set_message(format!("meta-loss {l:.4e}"));
    });
    bar.finish_and_clear();
    let res = res?;

    let centre = if args.centred {
        Some(res.theta0.view())
    } else {
        None
    };
    let test_loss = |theta: ndarray::ArrayView1<f64>| -> Result<Option<f64>> {
        if test_tasks.is_empty() {
            return Ok(None);
        }
        let preds = maml::predict(&net, theta, centre, &test_tasks, &cfg)?;
        Ok(Some(
            preds
                .iter()
                .zip(&test_tasks)
                .map(|(p, t)| 0.5 * (p - &t.yq).mapv(|v| v * v).sum())
                .sum(),
        ))
    };
    let test0 = test_loss(res.theta0.view())?;
    let test1 = test_loss(res.theta.view())?;

    let recs = &res.records;
    let l0 = recs[0].meta_loss;
    let lt = recs[recs.len() - 1].meta_loss;
    println!(
        "gbml maml: {} tasks (d = {d}, k = {k}), {} hidden layers × {} ({}, {:?}), P = {}",
        train_tasks.len(),
        args.depth,
        args.width,
        act.name(),
        param,
        net.n_params()
    );
    println!(
        "inner: λ = {}, τ = {}, {:?}, {:?}; outer: η = {}, T = {}{}",
        cfg.inner_lr(),
        cfg.inner_steps(),
        cfg.order,
        cfg.adapt,
        tc.outer_lr(),
        tc.steps(),
        if tc.centred { ", centred network" } else { "" }
    );
    println!("step        meta-loss   ‖θ_t − θ_0‖");
    let marks: Vec<usize> = {
        let t = recs.len() - 1;
        let mut v = vec![0, t / 4, t / 2, 3 * t / 4, t];
        v.dedup();
        v
    };
    for &i in &marks {
        println!(
            "{:>5}  {:>14.6e}  {:>12.4e}",
            recs[i].step, recs[i].meta_loss, recs[i].dist_from_init
        );
    }
    if recs.len() > 1 && l0 > 0.0 && lt > 0.0 {
        let rate = (lt / l0).powf(1.0 / (recs.len() - 1) as f64);
        println!("geometric mean loss ratio per step: {rate:.6}");
    }
    let last = &recs[recs.len() - 1];
    println!(
        "relative weight change per layer: [{}]",
        last.rel_weight_change
            .iter()
            .map(|v| format!("{v:.3e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let (Some(a), Some(b)) = (test0, test1) {
        println!(
            "test tasks ({}): loss after adaptation {a:.6e} at θ_0 → {b:.6e} at θ_T",
            test_tasks.len()
        );
    }

    // Φ̂_t diagnostics: extreme eigenvalues, critical rate 2/λ_max(Φ̂_0), relative drift.
    let mut mnk_rows = Vec::new();
    if let Some((_, phi0)) = res.mnk.first() {
        let n0 = phi0.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (t, phi) in &res.mnk {
            let w = gbml_testbed::linalg::sym_eigvals(phi.view())?;
            let drift = (phi - phi0).iter().map(|v| v * v).sum::<f64>().sqrt() / n0;
            mnk_rows.push(serde_json::json!({
                "step": t, "lambda_min": w[0], "lambda_max": w[w.len() - 1], "rel_drift_fro": drift
            }));
        }
        let first = &mnk_rows[0];
        let lmax = first["lambda_max"].as_f64().unwrap_or(f64::NAN);
        println!(
            "empirical MNK Φ̂_0: λ_min = {:.4e}, λ_max = {lmax:.4e}, critical rate 2/λ_max = {:.4e}",
            first["lambda_min"].as_f64().unwrap_or(f64::NAN),
            2.0 / lmax
        );
        if let Some(last) = mnk_rows.last() {
            println!(
                "‖Φ̂_t − Φ̂_0‖_F/‖Φ̂_0‖_F at step {}: {:.4e}",
                last["step"],
                last["rel_drift_fro"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }

    if let Some(path) = &args.csv {
        let mut s = String::from("step,meta_loss,dist_from_init");
        for h in 1..=net.layers().len() {
            s.push_str(&format!(",rel_change_w{h}"));
        }
        s.push('\n');
        for r in recs {
            s.push_str(&format!(
                "{},{:e},{:e}",
                r.step, r.meta_loss, r.dist_from_init
            ));
            for v in &r.rel_weight_change {
                s.push_str(&format!(",{v:e}"));
            }
            s.push('\n');
        }
        write(path, &s)?;
    }
    if let Some(path) = &args.json {
        let v = serde_json::json!({
            "loss_convention": "sum, factor 1/2",
            "network": {"d": d, "k": k, "depth": args.depth, "width": args.width,
                        "activation": act, "parameterization": param, "sigma_w": args.sigma_w,
                        "sigma_b": sigma_b, "n_params": net.n_params(), "seed": args.seed},
            "maml": cfg,
            "train": tc,
            "n_train_tasks": train_tasks.len(),
            "n_test_tasks": test_tasks.len(),
            "test_loss_initial": test0,
            "test_loss_final": test1,
            "records": recs,
            "mnk": mnk_rows,
        });
        let text = serde_json::to_string_pretty(&v).map_err(|e| Error::Parse {
            what: "JSON output".into(),
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        write(path, &text)?;
    }
    Ok(0)
}

fn write(path: &Path, s: &str) -> Result<()> {
    std::fs::write(path, s).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })
}
