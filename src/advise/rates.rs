//! Learning-rate advice (MATH.md §2, §4), infinite-width predictions.
//!
//! Outer loop: gradient descent on the meta-loss moves the training residuals as
//! r_{t+1} = (I − ηΦ) r_t ([`crate::mnk::Spectrum`]), so
//!
//! ```text
//! critical outer rate     η_c = 2/λ_max(Φ)                (diverges above)
//! best outer rate         η* = 2/(λ_min + λ_max)           (minimises max|1 − ηλ|)
//! per-step loss factor    q(η) = (1 − ηλ_min)²             (asymptotic, slowest mode)
//! steps to reduce by r    ⌈ln r / ln q⌉                    ([`steps_to_reduce`])
//! ```
//!
//! Inner loop: on task i's support the residual moves as (I − λΘ'_i)^s (MATH.md §2), with
//! Θ'_i = Θ_in(X'_i, X'_i) (Θ for MAML, Σ for ANIL). One inner rate λ is shared by all tasks, so
//! the relevant spectrum is the union of the tasks' spectra: λ_c = 2/max_i μ_max(Θ'_i) (the
//! tasks attaining that maximum constrain it) and λ* = 2/(min_i μ_min + max_i μ_max).

use crate::error::Result;
use crate::linalg;
use crate::mnk::{Mnk, Spectrum, TaskSet};
use ndarray::ArrayView2;
use serde::Serialize;

/// The meta-loss (or support-loss) reduction the step counts are quoted for.
pub const REDUCTION: f64 = 1e-3;

/// A task is reported as constraining the inner rate when its 2/μ_max is within this factor of
/// the smallest one.
pub const CONSTRAINT_SLACK: f64 = 1.05;

/// Rates of one gradient-descent loop from a spectrum [λ_min, λ_max].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopRates {
    /// Smallest eigenvalue of the loop's kernel.
    pub lambda_min: f64,
    /// Largest eigenvalue of the loop's kernel.
    pub lambda_max: f64,
    /// Divergence threshold 2/λ_max.
    pub critical: f64,
    /// Rate minimising the worst-case contraction, 2/(λ_min + λ_max).
    pub best: f64,
    /// Predicted asymptotic per-step loss factor (1 − η λ_min)² at the best rate.
    pub loss_factor: f64,
    /// Steps to reduce the loss by [`REDUCTION`] at the best rate (None: λ_min ≤ 0, no linear
    /// convergence predicted).
    pub steps: Option<u64>,
}

impl LoopRates {
    /// The rates of a loop whose kernel has extreme eigenvalues `lmin ≤ lmax` (lmax > 0).
    pub fn from_extremes(lmin: f64, lmax: f64) -> LoopRates {
        let s = Spectrum::from_eigvals(&ndarray::array![lmin, lmax]);
        let best = s.eta_crit;
        let q = s.loss_ratio(best);
        LoopRates {
            lambda_min: lmin,
            lambda_max: lmax,
            critical: s.eta_max(),
            best,
            loss_factor: q,
            steps: steps_to_reduce(q, REDUCTION),
        }
    }
}

/// Steps t with q^t ≤ r: ⌈ln r / ln q⌉ for 0 ≤ q < 1 (0 steps when q = 0), None for q ≥ 1.
pub fn steps_to_reduce(q: f64, r: f64) -> Option<u64> {
    if !(0.0..1.0).contains(&q) {
        return None;
    }
    if q == 0.0 {
        return Some(1);
    }
    Some((r.ln() / q.ln()).ceil().max(1.0) as u64)
}

/// Inner-rate advice: the shared rates plus the per-task largest support-kernel eigenvalues.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InnerRates {
    /// Rates from the union spectrum [min_i μ_min, max_i μ_max].
    pub rates: LoopRates,
    /// μ_max(Θ'_i) per task.
    pub mu_max: Vec<f64>,
    /// μ_min(Θ'_i) per task.
    pub mu_min: Vec<f64>,
    /// Tasks whose own critical rate 2/μ_max is within [`CONSTRAINT_SLACK`] of the shared one,
    /// largest μ_max first (at most 5).
    pub constraining: Vec<usize>,
}

/// Outer-rate advice from Φ's extreme eigenvalues.
pub fn outer_rates(phi: ArrayView2<f64>) -> Result<LoopRates> {
    let s = Spectrum::of(phi)?;
    Ok(LoopRates::from_extremes(s.lambda_min, s.lambda_max))
}

/// Inner-rate advice from every task's support kernel Θ_in(X'_i, X'_i).
pub fn inner_rates(mnk: &Mnk, set: &TaskSet) -> Result<InnerRates> {
    let mut mu_min = Vec::with_capacity(set.len());
    let mut mu_max = Vec::with_capacity(set.len());
    for t in set.tasks() {
        let b = mnk.kernel.blocks(t.xs.view(), None)?;
        let w = linalg::sym_eigvals(b.inner(mnk.variant)?.view())?;
        mu_min.push(w[0].max(0.0));
        mu_max.push(w[w.len() - 1]);
    }
    let lo = mu_min.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = mu_max.iter().copied().fold(0.0, f64::max);
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.sort_by(|&a, &b| mu_max[b].total_cmp(&mu_max[a]));
    let constraining = order
        .into_iter()
        .take_while(|&i| hi / mu_max[i] <= CONSTRAINT_SLACK)
        .take(5)
        .collect();
    Ok(InnerRates {
        rates: LoopRates::from_extremes(lo, hi),
        mu_max,
        mu_min,
        constraining,
    })
}

/// The inner rate `gbml advise` uses unless told otherwise: half the largest stable shared
/// inner rate, λ = ½ · 2/max_i μ_max(Θ'_i) = 1/max_i μ_max(Θ'_i) (of `kernel` and its MAML/ANIL
/// `variant` on the support sets of `set`).
pub fn default_inner_lr(
    kernel: &crate::mnk::BaseKernel,
    variant: crate::mnk::Variant,
    set: &TaskSet,
) -> Result<f64> {
    let probe = Mnk::new(kernel.clone(), crate::mnk::Schedule::steps(0.0, 1)).with_variant(variant);
    Ok(0.5 * inner_rates(&probe, set)?.rates.critical)
}
