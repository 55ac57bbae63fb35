//! `gbml omniglot`: the paper's Omniglot experiment at this machine's scale (MATH.md §10; the
//! protocol is documented in `gbml_testbed::experiments::omniglot`). Prints the accuracy table
//! (Wilson intervals) and the claims with their negative controls, writes an SVG plot and
//! optionally JSON; exits 1 if a claim is not established or a control does not fail.

use gbml_testbed::checks::{Figure, Series, Style};
use gbml_testbed::experiments::omniglot::{
    names, run, CntkKernel, FcKernel, NamedKernel, OmniglotConfig, OmniglotReport,
};
use gbml_testbed::kernel::{Activation, Arch, Spec};
use gbml_testbed::mnk::data::{omniglot_fixture_path, Omniglot};
use gbml_testbed::mnk::{RidgeMode, Schedule};
use gbml_testbed::report::svg;
use gbml_testbed::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `gbml omniglot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CI variant (seconds): C ∈ {5, 10}, 20 test tasks with 3 queries per class, a smaller and
    /// shorter MAML, the CNTK on 4×4 images with one conv layer.
    #[arg(long)]
    quick: bool,
    /// CNTK-GAP base kernel (the paper's): layer list (neural-tangents `stax` conventions, NTK
    /// parameterization, σ_w = --sigma-w, no bias); default
    /// 'conv:3:same,relu,conv:3:same,relu,gap,dense', quick 'conv:3:same,relu,gap,dense'.
    #[arg(long)]
    cntk_layers: Option<String>,
    /// CNTK-GAP base kernel: image side after block-mean downsampling of the 28×28 images
    /// (must divide 28: 28, 14, 7, 4; default 7, quick 4). Cost per image pair grows like
    /// side⁴ (≈ 0.4 ms at 7×7 with two conv layers, ≈ 30× that at 14×14).
    #[arg(long)]
    cntk_size: Option<usize>,
    /// Skip the CNTK-GAP row (FC kernel only; its claims are then not made).
    #[arg(long)]
    no_cntk: bool,
    /// Numbers of training characters (comma-separated; default 5,10,20,40, quick 5,10).
    #[arg(long, value_delimiter = ',')]
    train_chars: Option<Vec<usize>>,
    /// Training tasks per training character.
    #[arg(long)]
    tasks_per_char: Option<usize>,
    /// Test tasks (fixed, on unseen characters).
    #[arg(long)]
    test_tasks: Option<usize>,
    /// Query images per class in training tasks.
    #[arg(long)]
    queries: Option<usize>,
    /// Query images per class in test tasks.
    #[arg(long)]
    test_queries: Option<usize>,
    /// PCA dimensions of the label embedding.
    #[arg(long)]
    embed_dim: Option<usize>,
    /// Ridge of the inner loop (infinite inner time).
    #[arg(long, default_value_t = 1e-5)]
    inner_ridge: f64,
    /// Ridge of the outer loop (infinite outer time).
    #[arg(long, default_value_t = 1e-5)]
    outer_ridge: f64,
    /// Do not cosine-normalise the base Gram matrices.
    #[arg(long)]
    no_cosine: bool,
    /// FC base kernel: hidden layers.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// FC base kernel: σ_w (ReLU, no bias).
    #[arg(long, default_value_t = std::f64::consts::SQRT_2)]
    sigma_w: f64,
    /// Skip the finite MAML baseline (its claim is then not made).
    #[arg(long)]
    no_maml: bool,
    /// MAML outer steps.
    #[arg(long)]
    maml_steps: Option<usize>,
    /// MAML outer rate per training query point (η = this / number of training queries).
    #[arg(long)]
    maml_outer_rate: Option<f64>,
    /// MAML inner rate λ (5 inner steps).
    #[arg(long)]
    maml_inner_lr: Option<f64>,
    /// MAML hidden width.
    #[arg(long)]
    maml_width: Option<usize>,
    /// Seed of characters and tasks.
    #[arg(long)]
    seed: Option<u64>,
    /// Path of omniglot28.npy (default: the fixture in the source tree).
    #[arg(long)]
    omniglot: Option<PathBuf>,
    /// Directory of the SVG plot.
    #[arg(long, default_value = "out/omniglot")]
    out: PathBuf,
    /// Write the full report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn config(a: &Args, fc: &Arch) -> OmniglotConfig {
    let mut c = if a.quick {
        OmniglotConfig::quick(fc.clone())
    } else {
        OmniglotConfig::default_run(fc.clone())
    };
    let set = |dst: &mut usize, v: Option<usize>| *dst = v.unwrap_or(*dst);
    if let Some(v) = &a.train_chars {
        c.train_chars = v.clone();
    }
    set(&mut c.tasks_per_char, a.tasks_per_char);
    set(&mut c.test_tasks, a.test_tasks);
    set(&mut c.queries, a.queries);
    set(&mut c.test_queries, a.test_queries);
    set(&mut c.embed_dim, a.embed_dim);
    c.inner = Schedule::infinite().with_ridge(a.inner_ridge, RidgeMode::InverseOnly);
    c.outer = Schedule::infinite().with_ridge(a.outer_ridge, RidgeMode::InverseOnly);
    c.cosine = !a.no_cosine;
    c.seed = a.seed.unwrap_or(c.seed);
    if a.no_maml {
        c.maml = None;
    }
    if let Some(m) = c.maml.as_mut() {
        set(&mut m.steps, a.maml_steps);
        m.outer_rate = a.maml_outer_rate.unwrap_or(m.outer_rate);
        m.inner_lr = a.maml_inner_lr.unwrap_or(m.inner_lr);
        if let Some(w) = a.maml_width {
            m.arch = m.arch.clone().with_width(w);
        }
    }
    c
}

/// Run `gbml omniglot`.
pub fn run_cmd(a: Args) -> Result<i32> {
    let fc = Arch::new(a.depth, Activation::Relu).with_sigma_w(a.sigma_w);
    let cfg = config(&a, &fc);
    let path = a.omniglot.clone().unwrap_or_else(omniglot_fixture_path);
    let data = Omniglot::load(&path)?;
    let mut kernels = Vec::new();
    if !a.no_cntk {
        let side = (data.images.dim().2 as f64).sqrt().round() as usize;
        kernels.push(cntk(&a, side)?);
    }
    kernels.push(NamedKernel::new(
        format!("FC NTK, {} hidden", a.depth),
        Arc::new(FcKernel(fc)),
    ));
    for k in kernels.iter().filter(|k| !k.note.is_empty()) {
        println!("{}: {}", k.name, k.note);
    }
    let rep = run(&data, &cfg, &kernels, &mut |s| eprintln!("{s}"))?;
    print_table(&rep);
    write_outputs(&rep, &a)?;
    Ok(if rep.claims.iter().all(|c| c.ok()) {
        0
    } else {
        1
    })
}

/// The CNTK-GAP row's kernel (evaluated only on the pool images the tasks use).
fn cntk(a: &Args, side: usize) -> Result<NamedKernel> {
    let (layers, size) = if a.quick {
        (CntkKernel::QUICK_LAYERS, CntkKernel::QUICK_SIZE)
    } else {
        (CntkKernel::DEFAULT_LAYERS, CntkKernel::DEFAULT_SIZE)
    };
    let spec = Spec::parse(a.cntk_layers.as_deref().unwrap_or(layers))?.with_sigma_w(a.sigma_w);
    let k = CntkKernel::new(spec, side, a.cntk_size.unwrap_or(size))?;
    let note = k.note();
    Ok(NamedKernel::new("CNTK-GAP", Arc::new(k))
        .on_used_images()
        .with_note(note))
}

fn print_table(rep: &OmniglotReport) {
    for (k, n) in rep.kernels.iter().zip(&rep.kernel_images) {
        println!(
            "base kernel {k}: Gram on {n} of {} pool images",
            rep.pool_size
        );
    }
    for p in &rep.points {
        println!(
            "\nC = {} training characters ({} training tasks, {:.1} s){}",
            p.chars,
            p.train_tasks,
            p.seconds,
            p.maml_outer_lr
                .map_or(String::new(), |l| format!(", MAML outer rate {l:.3e}"))
        );
        for m in &p.methods {
            println!(
                "  {:<52} {:.3}  [{:.3}, {:.3}]",
                m.method, m.accuracy, m.ci.0, m.ci.1
            );
        }
    }
    println!("\nclaim | C | A − B (mean per-task accuracy) | 95% lower bound | verdict");
    for c in &rep.claims {
        let what = if c.control {
            "control (must fail)"
        } else {
            "claim"
        };
        let verdict = match (c.control, c.established) {
            (false, true) => "PASS",
            (false, false) => "FAIL (not established)",
            (true, false) => "PASS (control fails)",
            (true, true) => "FAIL (control established)",
        };
        println!(
            "{what}: {} [{} vs {}] | {} | {:+.3} | {:+.3} | {verdict}",
            c.claim, c.a, c.b, c.chars, c.diff.mean, c.diff.lower
        );
    }
}

fn write_outputs(rep: &OmniglotReport, a: &Args) -> Result<()> {
    let io = |p: &PathBuf, e: std::io::Error| Error::Io {
        path: p.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(&a.out).map_err(|e| io(&a.out, e))?;
    let f = a.out.join("omniglot.svg");
    std::fs::write(&f, svg::render(&figure(rep))).map_err(|e| io(&f, e))?;
    eprintln!("wrote {}", f.display());
    if let Some(j) = &a.json {
        let s = serde_json::to_string_pretty(rep).expect("serialisable");
        std::fs::write(j, s).map_err(|e| io(j, e))?;
    }
    Ok(())
}

/// Accuracy against the number of training characters, one line per method (controls and
/// one-hot rows are in the table, not the plot), chance level dashed.
fn figure(rep: &OmniglotReport) -> Figure {
    let x: Vec<f64> = rep.points.iter().map(|p| p.chars as f64).collect();
    let mut wanted: Vec<String> = Vec::new();
    for k in &rep.kernels {
        wanted.push(names::mnk(k));
        wanted.push(names::g(k));
    }
    wanted.push(names::MAML.to_string());
    let mut series: Vec<Series> = wanted
        .iter()
        .filter_map(|name| {
            let y: Option<Vec<f64>> = rep
                .points
                .iter()
                .map(|p| {
                    p.methods
                        .iter()
                        .find(|m| &m.method == name)
                        .map(|m| m.accuracy)
                })
                .collect();
            y.map(|y| Series::new(name.clone(), x.clone(), y, Style::LineMarkers))
        })
        .collect();
    let chance = 1.0 / rep.config.ways as f64;
    series.push(Series::new(
        "chance",
        x.clone(),
        vec![chance; x.len()],
        Style::Dashed,
    ));
    Figure {
        id: "omniglot".into(),
        title: format!(
            "Omniglot {}-way {}-shot, {} test tasks on unseen characters",
            rep.config.ways, rep.config.shots, rep.config.test_tasks
        ),
        x_label: "training characters".into(),
        y_label: "test accuracy (nearest centroid)".into(),
        log_x: true,
        log_y: false,
        series,
    }
}
