//! Meta-Jacobian rows and the empirical Meta Neural Kernel Φ̂ = J_F J_Fᵀ (MATH.md §3) of a finite
//! network at any θ.
//!
//! Row layout: tasks in order, then query points, then outputs: row `o_i + j·k + c` is
//! ∇_θ F_i(θ)[j, c], with o_i = k Σ_{i'<i} n_{i'} (the stacking X = [X_1; …; X_N] of MATH.md §0).
//!
//! Each row is computed by reverse mode through the inner loop: the cotangent E_{j,c} (one-hot)
//! at θ_τ gives J(X_i; θ_τ)ᵀ e_{j,c}, then g ← (I − λ H_s P) g for s = τ−1..0 exactly as in
//! [`super::metagrad`]. With [`super::Order::First`] the rows are the Jacobian at θ_τ only
//! (the first-order approximation of the meta-Jacobian).

use super::inner::inner_loop;
use super::metagrad::backprop_inner;
use super::task::{validate_tasks, Adapt, MamlConfig};
use crate::error::Result;
use crate::linalg::matmul_t;
use crate::net::Mlp;
use crate::task::Task;
use ndarray::{Array2, ArrayView1};

/// Meta-Jacobian J_F ((Σ_i n_i k) × P).
pub fn meta_jacobian(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<Array2<f64>> {
    cfg.validate()?;
    mlp.check_theta(theta)?;
    validate_tasks(mlp, tasks)?;
    let k = mlp.k_out;
    let rows: usize = tasks.iter().map(|t| t.xq.nrows() * k).sum();
    let mut jf = Array2::zeros((rows, mlp.n_params()));
    let mut off = 0;
    for t in tasks {
        let trace = inner_loop(mlp, theta, t.xs.view(), t.ys.view(), cfg);
        let th_tau = trace.iterates[cfg.inner_steps()].view();
        let cq = mlp.forward_cache_unchecked(th_tau, t.xq.view());
        let n = t.xq.nrows();
        for j in 0..n {
            for c in 0..k {
                let mut cot = Array2::zeros((n, k));
                cot[[j, c]] = 1.0;
                let mut g = mlp.backward(th_tau, &cq, cot.view());
                backprop_inner(mlp, &trace, cfg, &mut g);
                jf.row_mut(off + j * k + c).assign(&g);
            }
        }
        off += n * k;
    }
    Ok(jf)
}

/// Empirical MNK Φ̂ = J_F J_Fᵀ ((Σ_i n_i k) square, layout of [`meta_jacobian`]). Full
/// adaptation: computed from the factored meta-Jacobian rows without forming J_F
/// ([`super::lowrank`]); head-only: from the explicit J_F ([`empirical_mnk_dense`]).
pub fn empirical_mnk(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<Array2<f64>> {
    if cfg.adapt == Adapt::Full {
        cfg.validate()?;
        mlp.check_theta(theta)?;
        validate_tasks(mlp, tasks)?;
        return Ok(super::lowrank::empirical_mnk_lowrank(
            mlp, theta, tasks, cfg,
        ));
    }
    empirical_mnk_dense(mlp, theta, tasks, cfg)
}

/// Φ̂ = J_F J_Fᵀ from the explicit meta-Jacobian (reference; memory rows × P).
pub fn empirical_mnk_dense(
    mlp: &Mlp,
    theta: ArrayView1<'_, f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
) -> Result<Array2<f64>> {
    let jf = meta_jacobian(mlp, theta, tasks, cfg)?;
    let mut phi = matmul_t(jf.view(), jf.view());
    crate::linalg::symmetrize(&mut phi);
    Ok(phi)
}
