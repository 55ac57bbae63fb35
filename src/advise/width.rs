//! "How wide must the network be?": empirical Meta Neural Kernels of finite networks at a few
//! small widths on the user's own inputs, against the analytic Φ (MATH.md §3, §4).
//!
//! For every width w and seed s (initialization θ_0 = `Mlp::init(s)`, exact second-order
//! meta-Jacobian, [`crate::maml::empirical_mnk`]) on the first `tasks` tasks, with the same
//! inner steps (λ, τ) as the analytic MNK:
//!
//! ```text
//! relative error   ε(w, s) = ‖Φ̂_w,s − Φ‖_F / ‖Φ‖_F
//! model            ε ≈ c · w^(−½)          (Theorem 1's O(width^(−½)), exponent fixed)
//! estimate         c_(w,s) = ε(w, s) √w,   ĉ = mean, interval ĉ ± t_{0.975, S−1} sd/√S
//! width for tol    w_tol = (ĉ / tol)²,     interval [(c_lo/tol)², (c_hi/tol)²]
//! ```
//!
//! over the S = widths × seeds measurements. The free log-log slope of ε against w is reported
//! beside it as a check of the −½ model. Only for the analytic fully-connected base kernel and a
//! gradient-descent inner schedule (the finite network needs (λ, τ)); one label column is used
//! (Φ is label-free in the limit).

use super::cv::{mean_se, t_quantile, LEVEL};
use crate::error::{Error, Result};
use crate::kernel::Arch;
use crate::maml::{empirical_mnk, Adapt, MamlConfig};
use crate::mnk::{BaseKernel, Mnk, TaskSet, Time, Variant};
use crate::net::Mlp;
use crate::task::Task;
use ndarray::s;
use serde::Serialize;

/// Options of the width study.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidthConfig {
    /// Widths of every hidden layer.
    pub widths: Vec<usize>,
    /// Initialization seeds per width.
    pub seeds: Vec<u64>,
    /// Tasks used (the first ones of the set).
    pub tasks: usize,
    /// Requested relative MNK error.
    pub tol: f64,
}

impl Default for WidthConfig {
    fn default() -> Self {
        WidthConfig {
            widths: vec![64, 128, 256],
            seeds: vec![0, 1, 2],
            tasks: 6,
            tol: 0.05,
        }
    }
}

/// Result of the width study.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WidthAdvice {
    /// (width, seed, relative error) per measurement.
    pub measurements: Vec<(usize, u64, f64)>,
    /// ĉ and its interval.
    pub c: f64,
    pub c_lo: f64,
    pub c_hi: f64,
    /// Free log-log slope of ε against w (−½ expected).
    pub slope: f64,
    /// Requested tolerance.
    pub tol: f64,
    /// (ĉ/tol)² and its interval.
    pub width: f64,
    pub width_lo: f64,
    pub width_hi: f64,
    /// Tasks used.
    pub tasks: usize,
}

/// The width study (module docs).
pub fn width_advice(mnk: &Mnk, set: &TaskSet, cfg: &WidthConfig) -> Result<WidthAdvice> {
    let BaseKernel::Analytic(arch) = &mnk.kernel else {
        return Err(Error::Unsupported(
            "width advice needs the analytic fully-connected kernel (not a precomputed or layer kernel)".into(),
        ));
    };
    let Time::Steps { lr, steps } = mnk.inner.time else {
        return Err(Error::Unsupported(
            "width advice needs a gradient-descent inner schedule (λ, τ)".into(),
        ));
    };
    if mnk.inner.ridge != 0.0 {
        return Err(Error::Unsupported(
            "width advice with an inner ridge".into(),
        ));
    }
    if cfg.widths.len() < 2 || cfg.seeds.is_empty() || !(cfg.tol > 0.0) {
        return Err(Error::param(
            "width study",
            format!(
                "widths {:?}, seeds {:?}, tol {}",
                cfg.widths, cfg.seeds, cfg.tol
            ),
            "need at least 2 widths, 1 seed and tol > 0",
        ));
    }
    let sub = TaskSet::new(set.tasks()[..cfg.tasks.min(set.len())].to_vec())?;
    let phi = mnk.phi(&sub)?;
    let norm = phi.iter().map(|v| v * v).sum::<f64>().sqrt();
    let tasks: Vec<Task> = sub
        .tasks()
        .iter()
        .map(|t| Task {
            xs: t.xs.clone(),
            ys: t.ys.slice(s![.., ..1]).to_owned(),
            xq: t.xq.clone(),
            yq: t.yq.slice(s![.., ..1]).to_owned(),
        })
        .collect();
    let adapt = match mnk.variant {
        Variant::Maml => Adapt::Full,
        Variant::Anil => Adapt::Head,
    };
    let mcfg = MamlConfig::new(lr, steps).with_adapt(adapt);
    let mut measurements = Vec::new();
    for &w in &cfg.widths {
        let a: Arch = arch.clone().with_widths(vec![w; arch.depth]);
        let mlp = Mlp::new(&a, set.d(), 1)?;
        for &seed in &cfg.seeds {
            let th = mlp.init(seed);
            let ph = empirical_mnk(&mlp, th.view(), &tasks, &mcfg)?;
            let err = (&ph - &phi).iter().map(|v| v * v).sum::<f64>().sqrt() / norm;
            measurements.push((w, seed, err));
        }
    }
    let cs: Vec<f64> = measurements
        .iter()
        .map(|&(w, _, e)| e * (w as f64).sqrt())
        .collect();
    let (c, se) = mean_se(&cs);
    let half = t_quantile((1.0 + LEVEL) / 2.0, cs.len()) * se;
    let (c_lo, c_hi) = ((c - half).max(0.0), c + half);
    let sq = |v: f64| (v / cfg.tol).powi(2);
    Ok(WidthAdvice {
        slope: loglog_slope(&measurements),
        c,
        c_lo,
        c_hi,
        tol: cfg.tol,
        width: sq(c),
        width_lo: sq(c_lo),
        width_hi: sq(c_hi),
        tasks: sub.len(),
        measurements,
    })
}

/// Least-squares slope of ln ε against ln w.
fn loglog_slope(m: &[(usize, u64, f64)]) -> f64 {
    let xs: Vec<f64> = m.iter().map(|&(w, _, _)| (w as f64).ln()).collect();
    let ys: Vec<f64> = m.iter().map(|&(_, _, e)| e.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    sxy / sxx
}
