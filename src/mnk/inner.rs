//! The inner-loop operator T = g(Θ') (MATH.md §2), with g the spectral function of a
//! [`Schedule`] (defined in [`crate::schedule`], re-exported here; the same type is the outer
//! schedule of the predictor, §5, and the inner/outer schedule of finite MAML).

use crate::error::Result;
use ndarray::{Array2, ArrayView2};

pub use crate::schedule::{RidgeMode, Schedule, Time};

/// The inner-loop schedule (λ, τ / λτ / ∞) that defines T (MATH.md §2).
pub type InnerTime = Schedule;
/// The outer-loop schedule (η, t / ηt / ∞) of the predictor (MATH.md §5).
pub type OuterTime = Schedule;

/// The inner-loop operator T = g(Θ') of one support set (MATH.md §2): m × m, symmetric, with
/// eigenvalues in [0, g_max].
pub fn inner_operator(theta_s: ArrayView2<f64>, inner: &InnerTime) -> Result<Array2<f64>> {
    inner.apply(theta_s, "support kernel Θ(X', X')")
}
