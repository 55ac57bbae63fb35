//! Tasks and MAML options.

use crate::error::{ensure_finite, Error, Result};
use crate::net::Mlp;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// One meta-learning task: support set (X', Y') with m points (adaptation) and query set (X, Y)
/// with n points (evaluation), points as rows, labels n × k (MATH.md §0).
#[derive(Clone, Debug, PartialEq)]
pub struct MetaTask {
    /// Support inputs X' (m × d).
    pub xs: Array2<f64>,
    /// Support labels Y' (m × k).
    pub ys: Array2<f64>,
    /// Query inputs X (n × d).
    pub xq: Array2<f64>,
    /// Query labels Y (n × k).
    pub yq: Array2<f64>,
}

impl MetaTask {
    /// Build a task (no checks; see [`MetaTask::validate`]).
    pub fn new(xs: Array2<f64>, ys: Array2<f64>, xq: Array2<f64>, yq: Array2<f64>) -> Self {
        MetaTask { xs, ys, xq, yq }
    }

    /// Shapes against the network, non-empty support and query, finite entries.
    pub fn validate(&self, mlp: &Mlp, index: usize) -> Result<()> {
        if self.xs.nrows() == 0 {
            return Err(Error::Empty(format!("support set of task {index}")));
        }
        if self.xq.nrows() == 0 {
            return Err(Error::Empty(format!("query set of task {index}")));
        }
        mlp.check_input(self.xs.view(), &format!("support inputs of task {index}"))?;
        mlp.check_input(self.xq.view(), &format!("query inputs of task {index}"))?;
        mlp.check_labels(self.xs.view(), self.ys.view())
            .map_err(|e| relabel(e, &format!("support labels of task {index}")))?;
        mlp.check_labels(self.xq.view(), self.yq.view())
            .map_err(|e| relabel(e, &format!("query labels of task {index}")))?;
        ensure_finite(&self.xs, &format!("support inputs of task {index}"))?;
        ensure_finite(&self.ys, &format!("support labels of task {index}"))?;
        ensure_finite(&self.xq, &format!("query inputs of task {index}"))?;
        ensure_finite(&self.yq, &format!("query labels of task {index}"))?;
        Ok(())
    }
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
pub fn validate_tasks(mlp: &Mlp, tasks: &[MetaTask]) -> Result<()> {
    if tasks.is_empty() {
        return Err(Error::Empty("task set".into()));
    }
    for (i, t) in tasks.iter().enumerate() {
        t.validate(mlp, i)?;
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

/// Inner-loop and meta-gradient options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MamlConfig {
    /// Inner rate λ ≥ 0.
    pub inner_lr: f64,
    /// Inner steps τ ≥ 0.
    pub inner_steps: usize,
    /// Second-order (exact) or first-order meta-gradient.
    pub order: Order,
    /// Full (MAML) or head-only (ANIL) adaptation.
    pub adapt: Adapt,
}

impl MamlConfig {
    /// Second-order, full adaptation, τ steps at rate λ.
    pub fn new(inner_lr: f64, inner_steps: usize) -> Self {
        MamlConfig {
            inner_lr,
            inner_steps,
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
    /// λ finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.inner_lr.is_finite() && self.inner_lr >= 0.0) {
            return Err(Error::param(
                "inner_lr",
                self.inner_lr,
                "inner rate must be finite and >= 0",
            ));
        }
        Ok(())
    }
}
