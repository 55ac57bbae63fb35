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

/// The slow mode of outer gradient descent r ← (I − ηM) r with a **non-symmetric** kernel M,
/// e.g. the first-order MNK Φ_FO ([`super::Mnk::phi_first_order`]).
///
/// With the (complex) eigenvalues μ of M, I − ηM has eigenvalues 1 − ημ; for an initial residual
/// with a component along every right eigenvector the residual norm decays asymptotically like
/// the spectral radius max_μ |1 − ημ|, so the asymptotic per-step loss ratio is
///
/// ```text
/// μ_slow = argmax_μ |1 − ημ|,      loss ratio = |1 − ημ_slow|²
/// ```
///
/// (for a symmetric M this is [`Spectrum::loss_ratio`] when η < η*: μ_slow = λ_min). For a
/// complex pair the loss oscillates around that rate; a ratio over a window of many steps still
/// tends to it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlowMode {
    /// Re μ_slow.
    pub mu_re: f64,
    /// Im μ_slow (0 for a real eigenvalue).
    pub mu_im: f64,
    /// The smallest real part over all eigenvalues of M.
    pub min_re: f64,
    /// The outer rate η.
    pub eta: f64,
    /// |1 − ημ_slow|².
    pub loss_ratio: f64,
}

impl SlowMode {
    /// Eigenvalues of the square matrix `m` (general, non-symmetric; faer's QR algorithm) and
    /// the slow mode at rate `eta`.
    pub fn of(m: ArrayView2<f64>, eta: f64) -> Result<SlowMode> {
        if m.nrows() == 0 || m.nrows() != m.ncols() {
            return Err(Error::shape(
                "M",
                "non-empty square",
                format!("{:?}", m.dim()),
            ));
        }
        if !(eta.is_finite() && eta > 0.0) {
            return Err(Error::param(
                "eta",
                eta,
                "outer rate must be finite and > 0",
            ));
        }
        crate::error::ensure_finite(m, "slow-mode eigenvalues input")?;
        let ev = linalg::as_faer(&m)
            .eigenvalues()
            .map_err(|e| Error::LinAlg(format!("non-symmetric eigenvalues: {e:?}")))?;
        let radius = |re: f64, im: f64| ((1.0 - eta * re).powi(2) + (eta * im).powi(2)).sqrt();
        let slow = ev
            .iter()
            .copied()
            .max_by(|a, b| radius(a.re, a.im).total_cmp(&radius(b.re, b.im)))
            .expect("non-empty");
        let min_re = ev.iter().map(|z| z.re).fold(f64::INFINITY, f64::min);
        Ok(SlowMode {
            mu_re: slow.re,
            mu_im: slow.im,
            min_re,
            eta,
            loss_ratio: radius(slow.re, slow.im).powi(2),
        })
    }
}
