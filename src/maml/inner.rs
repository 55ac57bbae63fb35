//! The inner loop (MATH.md §2): τ steps of gradient descent at rate λ on the support loss
//! ℓ'(θ) = ½‖f(X'; θ) − Y'‖², starting from the meta-parameters θ:
//!
//! ```text
//! θ_0 = θ,   θ_{s+1} = θ_s − λ P ∇ℓ'(θ_s)      (s = 0..τ−1)
//! ```
//!
//! with P = I (MAML) or P the projection onto the readout layer (ANIL, [`Adapt::Head`]).

use super::task::{Adapt, MamlConfig};
use crate::error::Result;
use crate::net::{ForwardCache, Mlp};
use crate::task::Task;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};

/// Everything the backward pass through the inner loop needs: the iterates θ_0..θ_τ and the
/// support forward caches and residuals at θ_0..θ_{τ−1}. Memory: (τ+1)·P + O(τ·m·width).
#[derive(Clone, Debug)]
pub struct InnerTrace {
    /// θ_0, …, θ_τ.
    pub iterates: Vec<Array1<f64>>,
    /// Support forward caches at θ_0..θ_{τ−1}.
    pub caches: Vec<ForwardCache>,
    /// Support residuals f(X'; θ_s) − Y' at θ_0..θ_{τ−1}.
    pub resids: Vec<Array2<f64>>,
}

/// `P ∇ℓ'` into `g` for the cached support pass (full gradient or readout only).
pub(crate) fn support_grad(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    cache: &ForwardCache,
    resid: ArrayView2<'_, f64>,
    adapt: Adapt,
) -> Array1<f64> {
    match adapt {
        Adapt::Full => mlp.backward(theta, cache, resid),
        Adapt::Head => {
            let mut g = Array1::zeros(mlp.n_params());
            let h = mlp.depth() + 1;
            let l = &mlp.layers()[h - 1];
            let a = &cache.a[h - 1];
            {
                let gw = g.slice_mut(s![l.w_range()]);
                let mut gw = gw
                    .into_shape_with_order((l.n_out, l.n_in))
                    .expect("contiguous");
                crate::net::backward::gemm_w_into(&mut gw, false, resid, a.view(), l.w_scale);
            }
            if let Some(r) = l.b_range() {
                let cs = resid.sum_axis(ndarray::Axis(0));
                g.slice_mut(s![r]).assign(&(&cs * l.b_scale));
            }
            g
        }
    }
}

/// Run the inner loop from θ on the support (X', Y'), keeping the trace. Inputs are assumed
/// checked (see [`super::task::validate_task`]).
pub fn inner_loop(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    xs: ArrayView2<'_, f64>,
    ys: ArrayView2<'_, f64>,
    cfg: &MamlConfig,
) -> InnerTrace {
    let tau = cfg.inner_steps();
    let mut iterates = Vec::with_capacity(tau + 1);
    let mut caches = Vec::with_capacity(tau);
    let mut resids = Vec::with_capacity(tau);
    iterates.push(theta.to_owned());
    for s in 0..tau {
        let th = &iterates[s];
        let cache = mlp.forward_cache_unchecked(th.view(), xs);
        let r = &cache.out - &ys;
        let g = support_grad(mlp, th.view(), &cache, r.view(), cfg.adapt);
        let mut next = th.clone();
        next.scaled_add(-cfg.inner_lr(), &g);
        iterates.push(next);
        caches.push(cache);
        resids.push(r);
    }
    InnerTrace {
        iterates,
        caches,
        resids,
    }
}

/// Adapted parameters θ'_i = θ_τ on the support of `task` (checked inputs).
pub fn adapt(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    task: &Task,
    cfg: &MamlConfig,
) -> Result<Array1<f64>> {
    cfg.validate()?;
    mlp.check_theta(theta)?;
    super::task::validate_task(mlp, task, 0)?;
    Ok(adapt_unchecked(
        mlp,
        theta,
        task.xs.view(),
        task.ys.view(),
        cfg,
    ))
}

/// [`adapt`] without checks (no trace kept: memory 2P).
pub(crate) fn adapt_unchecked(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    xs: ArrayView2<'_, f64>,
    ys: ArrayView2<'_, f64>,
    cfg: &MamlConfig,
) -> Array1<f64> {
    let mut th = theta.to_owned();
    for _ in 0..cfg.inner_steps() {
        let cache = mlp.forward_cache_unchecked(th.view(), xs);
        let r = &cache.out - &ys;
        let g = support_grad(mlp, th.view(), &cache, r.view(), cfg.adapt);
        th.scaled_add(-cfg.inner_lr(), &g);
    }
    th
}
