//! Outer training (MATH.md §4): full-batch gradient descent on the meta-loss,
//! θ_{t+1} = θ_t − η ∇L(θ_t), with the diagnostics Theorem 1 talks about.
//!
//! Recorded at every step t = 0..=T (step t is the state *before* update t+1; record T is the
//! final state): L(θ_t), ‖θ_t − θ_0‖₂, and per layer h the relative weight change
//! ‖W^h_t − W^h_0‖_F / ‖W^h_0‖_F; optionally Φ̂_t every `mnk_every` steps (and at t = T).
//!
//! **Divergence:** a non-finite meta-loss or gradient, or L(θ_t) > `divergence_factor` · max(L(θ_0),
//! 1e-300), stops training with [`Error::Diverged`] naming the step. When Φ̂_0 was recorded the
//! error reports the critical rate 2/λ_max(Φ̂_0); otherwise it reports NaN (unknown).
//!
//! **Centred network** (`centred = true`): f_c(x; θ) = f(x; θ) − f(x; θ_0) with θ_0 frozen, so
//! f_c ≡ 0 at initialization and ∇f_c = ∇f. Because the offset does not depend on θ,
//! ½‖f_c(X) − Y‖² = ½‖f(X) − (Y + f(X; θ_0))‖²: training the centred network is exactly training
//! f on labels shifted by f(·; θ_0) ([`centre_tasks`]); predictions subtract f(X; θ_0) again.

use super::metagrad::meta_loss_grad_unchecked;
use super::mnk_empirical::empirical_mnk;
use super::task::{steps_of, validate_tasks, MamlConfig};
use crate::error::{Error, Result};
use crate::net::Mlp;
use crate::schedule::Schedule;
use crate::task::Task;
use ndarray::{s, Array1, Array2, ArrayView1};
use serde::{Deserialize, Serialize};

/// Outer-loop options. JSON shape (unchanged): `{"outer_lr": η, "steps": T, "mnk_every": …,
/// "centred": …, "divergence_factor": …, "record_residuals": …}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "TrainConfigJson")]
pub struct TrainConfig {
    /// Outer schedule: T steps at rate η > 0 (`Time::Steps`, no ridge; see [`steps_of`]). The
    /// same value is the outer schedule of the Meta Neural Kernel predictor it is compared with.
    pub outer: Schedule,
    /// Record Φ̂_t every this many steps (None: never).
    pub mnk_every: Option<usize>,
    /// Train the centred network f(·; θ) − f(·; θ_0).
    pub centred: bool,
    /// Divergence threshold on L(θ_t)/L(θ_0).
    pub divergence_factor: f64,
    /// Record the stacked meta-residual r_t = F(θ_t) − Y (Σn × k) at every step
    /// ([`TrainResult::residuals`]); costs one extra inner loop + query forward pass per step.
    pub record_residuals: bool,
}

/// The serde shape of [`TrainConfig`].
#[derive(Serialize, Deserialize)]
struct TrainConfigJson {
    outer_lr: f64,
    steps: usize,
    mnk_every: Option<usize>,
    centred: bool,
    divergence_factor: f64,
    #[serde(default)]
    record_residuals: bool,
}

impl From<TrainConfigJson> for TrainConfig {
    fn from(j: TrainConfigJson) -> Self {
        TrainConfig {
            outer: Schedule::steps(j.outer_lr, j.steps),
            mnk_every: j.mnk_every,
            centred: j.centred,
            divergence_factor: j.divergence_factor,
            record_residuals: j.record_residuals,
        }
    }
}

impl Serialize for TrainConfig {
    /// The JSON shape above; a schedule other than ridge-free `Time::Steps` is an error.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (outer_lr, steps) =
            steps_of(&self.outer, "outer").map_err(serde::ser::Error::custom)?;
        let j = TrainConfigJson {
            outer_lr,
            steps,
            mnk_every: self.mnk_every,
            centred: self.centred,
            divergence_factor: self.divergence_factor,
            record_residuals: self.record_residuals,
        };
        j.serialize(s)
    }
}

impl TrainConfig {
    /// η, T; no Φ̂ recording, uncentred, divergence at 1e8 × L(θ_0).
    pub fn new(outer_lr: f64, steps: usize) -> Self {
        Self::from_schedule(Schedule::steps(outer_lr, steps))
    }
    /// The given outer schedule (checked by [`Self::validate`]); defaults as [`Self::new`].
    pub fn from_schedule(outer: Schedule) -> Self {
        TrainConfig {
            outer,
            mnk_every: None,
            centred: false,
            divergence_factor: 1e8,
            record_residuals: false,
        }
    }
    /// Builder: record Φ̂ every `k` steps.
    pub fn with_mnk_every(mut self, k: Option<usize>) -> Self {
        self.mnk_every = k;
        self
    }
    /// Builder: centred network.
    pub fn with_centred(mut self, c: bool) -> Self {
        self.centred = c;
        self
    }
    /// Builder: record the meta-residuals r_t at every step.
    pub fn with_residuals(mut self, r: bool) -> Self {
        self.record_residuals = r;
        self
    }
    /// Outer rate η (NaN unless the schedule is `Time::Steps`, which [`Self::validate`] demands).
    pub fn outer_lr(&self) -> f64 {
        self.outer.as_steps().map_or(f64::NAN, |(lr, _)| lr)
    }
    /// Outer steps T (0 unless the schedule is `Time::Steps`, which [`Self::validate`] demands).
    pub fn steps(&self) -> usize {
        self.outer.as_steps().map_or(0, |(_, steps)| steps)
    }
    /// `Time::Steps` without ridge, η finite > 0, `mnk_every` ≥ 1, divergence factor > 1.
    pub fn validate(&self) -> Result<()> {
        let (outer_lr, _) = steps_of(&self.outer, "outer")?;
        if !(outer_lr.is_finite() && outer_lr > 0.0) {
            return Err(Error::param(
                "outer_lr",
                outer_lr,
                "outer rate must be finite and > 0",
            ));
        }
        if self.mnk_every == Some(0) {
            return Err(Error::param("mnk_every", 0, "must be >= 1"));
        }
        if self.divergence_factor.is_nan() || self.divergence_factor <= 1.0 {
            return Err(Error::param(
                "divergence_factor",
                self.divergence_factor,
                "must be > 1",
            ));
        }
        Ok(())
    }
}

/// Diagnostics of one outer step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Outer step t.
    pub step: usize,
    /// L(θ_t).
    pub meta_loss: f64,
    /// ‖θ_t − θ_0‖₂.
    pub dist_from_init: f64,
    /// ‖W^h_t − W^h_0‖_F / ‖W^h_0‖_F for h = 1..L+1.
    pub rel_weight_change: Vec<f64>,
}

/// Result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainResult {
    /// θ_0.
    pub theta0: Array1<f64>,
    /// θ_T.
    pub theta: Array1<f64>,
    /// Records for t = 0..=T.
    pub records: Vec<StepRecord>,
    /// (t, Φ̂_t) when requested (layout of [`super::meta_jacobian`]).
    pub mnk: Vec<(usize, Array2<f64>)>,
    /// Whether the centred network was trained (predict with `Some(&theta0)`).
    pub centred: bool,
    /// r_t = F(θ_t) − Y stacked over the tasks (Σn × k), t = 0..=T, when
    /// [`TrainConfig::record_residuals`] (else empty); ½‖r_t‖²_F = L(θ_t) up to rounding (the loss
    /// comes from the factored gradient, r_t from the dense inner loop). For the centred network
    /// r_t = f_c − Y.
    pub residuals: Vec<Array2<f64>>,
}

/// Tasks with labels shifted by f(·; θ_0) (support and query): training f on them is training the
/// centred network on the original tasks (see the module docs).
pub fn centre_tasks(mlp: &Mlp, theta0: ArrayView1<'_, f64>, tasks: &[Task]) -> Result<Vec<Task>> {
    mlp.check_theta(theta0)?;
    validate_tasks(mlp, tasks)?;
    Ok(tasks
        .iter()
        .map(|t| Task {
            xs: t.xs.clone(),
            ys: &t.ys + &mlp.forward_unchecked(theta0, t.xs.view()),
            xq: t.xq.clone(),
            yq: &t.yq + &mlp.forward_unchecked(theta0, t.xq.view()),
        })
        .collect())
}

fn record(
    mlp: &Mlp,
    step: usize,
    loss: f64,
    theta: &Array1<f64>,
    theta0: &Array1<f64>,
) -> StepRecord {
    let diff = theta - theta0;
    let dist = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
    let rel = mlp
        .layers()
        .iter()
        .map(|l| {
            let r = l.w_range();
            let num = diff
                .slice(s![r.clone()])
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            let den = theta0
                .slice(s![r])
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            if den == 0.0 {
                f64::INFINITY
            } else {
                num / den
            }
        })
        .collect();
    StepRecord {
        step,
        meta_loss: loss,
        dist_from_init: dist,
        rel_weight_change: rel,
    }
}

/// Meta-train from θ_0 with full-batch GD. `progress(t, L(θ_t))` is called after every step.
pub fn train(
    mlp: &Mlp,
    theta0: ArrayView1<'_, f64>,
    tasks: &[Task],
    maml: &MamlConfig,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<TrainResult> {
    maml.validate()?;
    cfg.validate()?;
    mlp.check_theta(theta0)?;
    crate::error::ensure_finite(theta0, "initial parameters")?;
    validate_tasks(mlp, tasks)?;
    let shifted;
    let tasks = if cfg.centred {
        shifted = centre_tasks(mlp, theta0, tasks)?;
        &shifted[..]
    } else {
        tasks
    };
    let theta0 = theta0.to_owned();
    let mut theta = theta0.clone();
    let mut records = Vec::with_capacity(cfg.steps() + 1);
    let mut mnk = Vec::new();
    let mut critical = f64::NAN;
    let mut loss0 = f64::NAN;
    let mut residuals = Vec::new();
    for t in 0..=cfg.steps() {
        let want_mnk = cfg
            .mnk_every
            .is_some_and(|k| t % k == 0 || t == cfg.steps());
        if want_mnk {
            let phi = empirical_mnk(mlp, theta.view(), tasks, maml)?;
            if t == 0 {
                if let Ok(w) = crate::linalg::sym_eigvals(phi.view()) {
                    if let Some(&lmax) = w.last() {
                        critical = 2.0 / lmax;
                    }
                }
            }
            mnk.push((t, phi));
        }
        let (loss, grad) = meta_loss_grad_unchecked(mlp, theta.view(), tasks, maml);
        if t == 0 {
            loss0 = loss;
        }
        let diverged = |reason: String| Error::Diverged {
            step: t,
            reason,
            rate: cfg.outer_lr(),
            critical_rate: critical,
        };
        if !loss.is_finite() {
            return Err(diverged(format!("meta-loss is {loss}")));
        }
        if loss > cfg.divergence_factor * loss0.max(1e-300) {
            return Err(diverged(format!(
                "meta-loss {loss:.3e} exceeds {:.1e} × initial {loss0:.3e}",
                cfg.divergence_factor
            )));
        }
        if grad.iter().any(|v| !v.is_finite()) {
            return Err(diverged("non-finite meta-gradient".into()));
        }
        records.push(record(mlp, t, loss, &theta, &theta0));
        if cfg.record_residuals {
            let parts: Vec<Array2<f64>> = tasks
                .iter()
                .map(|tk| {
                    let th = super::inner::adapt_unchecked(
                        mlp,
                        theta.view(),
                        tk.xs.view(),
                        tk.ys.view(),
                        maml,
                    );
                    mlp.forward_unchecked(th.view(), tk.xq.view()) - &tk.yq
                })
                .collect();
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            residuals.push(ndarray::concatenate(ndarray::Axis(0), &views).expect("same k"));
        }
        if t < cfg.steps() {
            theta.scaled_add(-cfg.outer_lr(), &grad);
        }
        progress(t, loss);
    }
    Ok(TrainResult {
        theta0,
        theta,
        records,
        mnk,
        centred: cfg.centred,
        residuals,
    })
}

/// Predictions on (test) tasks: adapt from θ on each support, evaluate on the query.
/// With `centre = Some(θ_0)` the centred network f(·; θ) − f(·; θ_0) is used (labels of the
/// support shifted, output shifted back).
pub fn predict(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    centre: Option<ArrayView1<'_, f64>>,
    tasks: &[Task],
    maml: &MamlConfig,
) -> Result<Vec<Array2<f64>>> {
    match centre {
        None => super::metagrad::meta_outputs(mlp, theta, tasks, maml),
        Some(th0) => {
            let shifted = centre_tasks(mlp, th0, tasks)?;
            let outs = super::metagrad::meta_outputs(mlp, theta, &shifted, maml)?;
            Ok(outs
                .into_iter()
                .zip(tasks)
                .map(|(f, t)| f - &mlp.forward_unchecked(th0, t.xq.view()))
                .collect())
        }
    }
}
