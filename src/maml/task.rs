//! Tasks against a network, and MAML options.
//!
//! The task type is the crate's one [`Task`] (support X', Y'; query X, Y; shared with the Meta
//! Neural Kernel); [`validate_task`] checks it against a network. The inner schedule is the
//! crate's one [`Schedule`]; finite MAML runs gradient steps, so it accepts `Time::Steps` without
//! ridge ([`steps_of`]).

use crate::error::{ensure_finite, Error, Result};
use crate::net::Mlp;
use crate::schedule::Schedule;
use crate::task::Task;
use serde::{Deserialize, Serialize};

/// Check task `index` against the network: non-empty support and query, input widths d and
/// label widths k as the network's, one label row per point, finite entries.
pub fn validate_task(mlp: &Mlp, task: &Task, index: usize) -> Result<()> {
    if task.xs.nrows() == 0 {
        return Err(Error::Empty(format!("support set of task {index}")));
    }
    if task.xq.nrows() == 0 {
        return Err(Error::Empty(format!("query set of task {index}")));
    }
    mlp.check_input(task.xs.view(), &format!("support inputs of task {index}"))?;
    mlp.check_input(task.xq.view(), &format!("query inputs of task {index}"))?;
    mlp.check_labels(task.xs.view(), task.ys.view())
        .map_err(|e| relabel(e, &format!("support labels of task {index}")))?;
    mlp.check_labels(task.xq.view(), task.yq.view())
        .map_err(|e| relabel(e, &format!("query labels of task {index}")))?;
    ensure_finite(&task.xs, &format!("support inputs of task {index}"))?;
    ensure_finite(&task.ys, &format!("support labels of task {index}"))?;
    ensure_finite(&task.xq, &format!("query inputs of task {index}"))?;
    ensure_finite(&task.yq, &format!("query labels of task {index}"))?;
    Ok(())
}

fn relabel(e: Error, ctx: &str) -> Error {
    match e {
        Error::Shape { expected, got, .. } => Error::Shape {
            context: ctx.to_string(),
            expected,
            got,
        },
        other => other,
    }
}

/// Validate a whole task set (non-empty, every task valid).
pub fn validate_tasks(mlp: &Mlp, tasks: &[Task]) -> Result<()> {
    if tasks.is_empty() {
        return Err(Error::Empty("task set".into()));
    }
    for (i, t) in tasks.iter().enumerate() {
        validate_task(mlp, t, i)?;
    }
    Ok(())
}

/// Exact (second-order) or first-order meta-gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Back-propagate through the inner loop: g ← (I − λ H_s) g (exact).
    #[default]
    Second,
    /// First-order MAML: drop the Hessian terms, g = ∇ℓ_query(θ_τ).
    First,
}

/// Which parameters the inner loop adapts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Adapt {
    /// All parameters (MAML).
    #[default]
    Full,
    /// Only the readout layer W^{L+1}, b^{L+1} (ANIL); the outer loop still trains everything.
    Head,
}

/// (λ, τ) of a schedule that finite gradient descent runs: `Time::Steps` with zero ridge. Flow
/// time, infinite time or a ridge (schedules of the infinite-width kernel only) are rejected with
/// [`Error::InvalidParameter`] naming `name`.
pub fn steps_of(schedule: &Schedule, name: &str) -> Result<(f64, usize)> {
    let Some(steps) = schedule.as_steps() else {
        return Err(Error::param(
            name,
            format!("{:?}", schedule.time),
            "finite networks run gradient steps: the schedule must be Time::Steps { lr, steps }",
        ));
    };
    if schedule.ridge != 0.0 {
        return Err(Error::param(
            format!("{name} ridge"),
            schedule.ridge,
            "finite networks train without ridge: must be 0",
        ));
    }
    Ok(steps)
}

/// Inner-loop and meta-gradient options. JSON shape (unchanged):
/// `{"inner_lr": λ, "inner_steps": τ, "order": …, "adapt": …}`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(from = "MamlConfigJson")]
pub struct MamlConfig {
    /// Inner schedule: τ steps at rate λ ≥ 0 (`Time::Steps`, no ridge; see [`steps_of`]). The
    /// same value is the inner schedule of the Meta Neural Kernel this MAML is compared with.
    pub inner: Schedule,
    /// Second-order (exact) or first-order meta-gradient.
    pub order: Order,
    /// Full (MAML) or head-only (ANIL) adaptation.
    pub adapt: Adapt,
}

/// The serde shape of [`MamlConfig`].
#[derive(Serialize, Deserialize)]
struct MamlConfigJson {
    inner_lr: f64,
    inner_steps: usize,
    order: Order,
    adapt: Adapt,
}

impl From<MamlConfigJson> for MamlConfig {
    fn from(j: MamlConfigJson) -> Self {
        MamlConfig::new(j.inner_lr, j.inner_steps)
            .with_order(j.order)
            .with_adapt(j.adapt)
    }
}

impl Serialize for MamlConfig {
    /// The JSON shape above; a schedule other than ridge-free `Time::Steps` is an error.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (inner_lr, inner_steps) =
            steps_of(&self.inner, "inner").map_err(serde::ser::Error::custom)?;
        let j = MamlConfigJson {
            inner_lr,
            inner_steps,
            order: self.order,
            adapt: self.adapt,
        };
        j.serialize(s)
    }
}

impl MamlConfig {
    /// Second-order, full adaptation, τ steps at rate λ.
    pub fn new(inner_lr: f64, inner_steps: usize) -> Self {
        Self::from_schedule(Schedule::steps(inner_lr, inner_steps))
    }
    /// Second-order, full adaptation, the given inner schedule (checked by [`Self::validate`]).
    pub fn from_schedule(inner: Schedule) -> Self {
        MamlConfig {
            inner,
            order: Order::Second,
            adapt: Adapt::Full,
        }
    }
    /// Builder: order.
    pub fn with_order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }
    /// Builder: adaptation.
    pub fn with_adapt(mut self, adapt: Adapt) -> Self {
        self.adapt = adapt;
        self
    }
    /// Inner rate λ (NaN unless the schedule is `Time::Steps`, which [`Self::validate`] demands).
    pub fn inner_lr(&self) -> f64 {
        self.inner.as_steps().map_or(f64::NAN, |(lr, _)| lr)
    }
    /// Inner steps τ (0 unless the schedule is `Time::Steps`, which [`Self::validate`] demands).
    pub fn inner_steps(&self) -> usize {
        self.inner.as_steps().map_or(0, |(_, steps)| steps)
    }
    /// `Time::Steps` without ridge, λ finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        let (inner_lr, _) = steps_of(&self.inner, "inner")?;
        if !(inner_lr.is_finite() && inner_lr >= 0.0) {
            return Err(Error::param(
                "inner_lr",
                inner_lr,
                "inner rate must be finite and >= 0",
            ));
        }
        Ok(())
    }
}
