//! Meta-outputs, meta-loss and the meta-gradient (MATH.md §4).
//!
//! Meta-output of task i: F_i(θ) = f(X_i; θ'_i) with θ'_i = θ_τ the inner-loop result on the
//! support (X'_i, Y'_i); meta-loss L(θ) = Σ_i ½‖F_i(θ) − Y_i‖².
//!
//! **Exact (second-order) meta-gradient.** With θ_{s+1} = θ_s − λ P ∇ℓ'(θ_s), the chain rule gives
//! ∂θ_{s+1}/∂θ_s = I − λ P H_s (H_s = ∇²ℓ'(θ_s), symmetric), hence
//!
//! ```text
//! g_τ = ∇ℓ_query(θ_τ) = J(X_i; θ_τ)ᵀ (f(X_i; θ_τ) − Y_i)
//! g_s = (I − λ P H_s)ᵀ g_{s+1} = g_{s+1} − λ H_s (P g_{s+1})      s = τ−1, …, 0
//! ∇L(θ) = Σ_i g_0^{(i)}
//! ```
//!
//! Each H_s · u is an exact Hessian-vector product (R-operator, [`crate::net::hvp`]) at the stored
//! iterate θ_s. Memory per task: the τ+1 iterates plus O(τ m width) activations; tasks are
//! processed one after another, so the peak is (τ+3)·P floats, never width² × τ × N.
//!
//! **First-order** ([`Order::First`]): g = g_τ (the Hessian terms are dropped).

use super::inner::inner_loop;
use super::task::{validate_tasks, Adapt, MamlConfig, Order};
use crate::error::Result;
use crate::net::Mlp;
use crate::task::Task;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};

/// Back-propagate a parameter cotangent `g` (at θ_τ) through the inner loop: g ← (I − λ H_s P) g.
pub(crate) fn backprop_inner(
    mlp: &Mlp,
    trace: &super::inner::InnerTrace,
    cfg: &MamlConfig,
    g: &mut Array1<f64>,
) {
    if cfg.order == Order::First || cfg.inner_lr() == 0.0 {
        return;
    }
    let head = mlp.head_range();
    for s in (0..cfg.inner_steps()).rev() {
        let th = trace.iterates[s].view();
        let cache = &trace.caches[s];
        let r = trace.resids[s].view();
        match cfg.adapt {
            Adapt::Full => {
                let u = g.clone();
                mlp.hvp_into(th, cache, r, u.view(), g, -cfg.inner_lr(), true);
            }
            Adapt::Head => {
                let mut u = Array1::zeros(g.len());
                u.slice_mut(s![head.clone()])
                    .assign(&g.slice(s![head.clone()]));
                mlp.hvp_into(th, cache, r, u.view(), g, -cfg.inner_lr(), true);
            }
        }
    }
}

/// Meta-loss and meta-gradient contribution of one task (inputs assumed checked).
pub fn task_meta_grad(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    task: &Task,
    cfg: &MamlConfig,
) -> (f64, Array1<f64>) {
    let trace = inner_loop(mlp, theta, task.xs.view(), task.ys.view(), cfg);
    let th_tau = trace.iterates[cfg.inner_steps()].view();
    let cq = mlp.forward_cache_unchecked(th_tau, task.xq.view());
    let rq = &cq.out - &task.yq;
    let loss = 0.5 * rq.iter().map(|v| v * v).sum::<f64>();
    let mut g = mlp.backward(th_tau, &cq, rq.view());
    backprop_inner(mlp, &trace, cfg, &mut g);
    (loss, g)
}

fn check(mlp: &Mlp, theta: ArrayView1<'_, f64>, tasks: &[Task], cfg: &MamlConfig) -> Result<()> {
    cfg.validate()?;
    mlp.check_theta(theta)?;
    validate_tasks(mlp, tasks)
}

/// Meta-loss L(θ) and its gradient (exact second-order, or first-order per `cfg.order`).
/// Full adaptation uses the factored, task-batched algorithm of [`super::lowrank`]; head-only
/// adaptation the dense reference ([`meta_loss_grad_dense`]).
pub fn meta_loss_grad(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<(f64, Array1<f64>)> {
    check(mlp, theta, tasks, cfg)?;
    Ok(meta_loss_grad_unchecked(mlp, theta, tasks, cfg))
}

pub(crate) fn meta_loss_grad_unchecked(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> (f64, Array1<f64>) {
    match cfg.adapt {
        Adapt::Full => super::lowrank::meta_loss_grad_lowrank(mlp, theta, tasks, cfg),
        Adapt::Head => meta_loss_grad_dense_unchecked(mlp, theta, tasks, cfg),
    }
}

/// The reference algorithm: per task, dense parameter iterates θ_0..θ_τ and dense HVPs
/// ([`task_meta_grad`]). [`meta_loss_grad`] computes the same quantity with the factored
/// algorithm of [`super::lowrank`] for full adaptation.
pub fn meta_loss_grad_dense(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<(f64, Array1<f64>)> {
    check(mlp, theta, tasks, cfg)?;
    Ok(meta_loss_grad_dense_unchecked(mlp, theta, tasks, cfg))
}

fn meta_loss_grad_dense_unchecked(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> (f64, Array1<f64>) {
    let mut total = 0.0;
    let mut grad = Array1::zeros(mlp.n_params());
    for t in tasks {
        let (l, g) = task_meta_grad(mlp, theta, t, cfg);
        total += l;
        grad += &g;
    }
    (total, grad)
}

/// Meta-outputs F_i(θ) = f(X_i; θ'_i) (n_i × k per task).
pub fn meta_outputs(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<Vec<Array2<f64>>> {
    check(mlp, theta, tasks, cfg)?;
    Ok(tasks
        .iter()
        .map(|t| {
            let th = super::inner::adapt_unchecked(mlp, theta, t.xs.view(), t.ys.view(), cfg);
            mlp.forward_unchecked(th.view(), t.xq.view())
        })
        .collect())
}

/// Meta-loss L(θ) = Σ_i ½‖F_i(θ) − Y_i‖².
pub fn meta_loss(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<f64> {
    let outs = meta_outputs(mlp, theta, tasks, cfg)?;
    Ok(outs
        .iter()
        .zip(tasks)
        .map(|(f, t)| sq_half(f.view(), t.yq.view()))
        .sum())
}

/// ½‖A − B‖²_F.
pub(crate) fn sq_half(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> f64 {
    0.5 * a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
}
