//! Spectral diagnostics of a Meta Neural Kernel Φ (MATH.md §4, exact in the linear model).
//!
//! Outer gradient descent with rate η on L = ½‖F − Y‖² moves the training residuals as
//! r_{t+1} = (I − ηΦ) r_t. With λ_min, λ_max the extreme eigenvalues of Φ:
//!
//! ```text
//! condition number      κ = λ_max / λ_min
//! critical rate         η* = 2 / (λ_min + λ_max)   (minimises the residual ratio below)
//! residual ratio        ρ(η) = max(|1 − ηλ_min|, |1 − ηλ_max|)   (per-step bound on ‖r_{t+1}‖/‖r_t‖)
//! asymptotic loss ratio (1 − ηλ_min)²                  (per step, slowest mode)
//! ```
//!
//! Gradient descent converges for η < 2/λ_max.

use crate::error::{Error, Result};
use crate::linalg;
use ndarray::{Array1, ArrayView2};
use serde::Serialize;

/// Extreme eigenvalues of a symmetric matrix and the derived rates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spectrum {
    /// Matrix size.
    pub size: usize,
    pub lambda_min: f64,
    pub lambda_max: f64,
    /// κ = λ_max/λ_min (∞ when λ_min ≤ 0).
    pub condition: f64,
    /// η* = 2/(λ_min + λ_max).
    pub eta_crit: f64,
}

impl Spectrum {
    /// Eigenvalues of the symmetric matrix `phi` (lower triangle read).
    pub fn of(phi: ArrayView2<f64>) -> Result<Spectrum> {
        if phi.nrows() == 0 {
            return Err(Error::Empty("spectrum of an empty matrix".into()));
        }
        if phi.nrows() != phi.ncols() {
            return Err(Error::shape("Φ", "square", format!("{:?}", phi.dim())));
        }
        Ok(Self::from_eigvals(&linalg::sym_eigvals(phi)?))
    }

    /// From ascending eigenvalues (non-empty).
    pub fn from_eigvals(w: &Array1<f64>) -> Spectrum {
        let (lmin, lmax) = (w[0], w[w.len() - 1]);
        Spectrum {
            size: w.len(),
            lambda_min: lmin,
            lambda_max: lmax,
            condition: if lmin > 0.0 {
                lmax / lmin
            } else {
                f64::INFINITY
            },
            eta_crit: 2.0 / (lmin + lmax),
        }
    }

    /// Largest rate for which outer gradient descent converges: 2/λ_max.
    pub fn eta_max(&self) -> f64 {
        2.0 / self.lambda_max
    }

    /// Asymptotic per-step loss ratio (1 − ηλ_min)².
    pub fn loss_ratio(&self, eta: f64) -> f64 {
        let q = 1.0 - eta * self.lambda_min;
        q * q
    }

    /// Per-step residual-norm ratio bound max(|1 − ηλ_min|, |1 − ηλ_max|).
    pub fn residual_ratio(&self, eta: f64) -> f64 {
        (1.0 - eta * self.lambda_min)
            .abs()
            .max((1.0 - eta * self.lambda_max).abs())
    }
}
