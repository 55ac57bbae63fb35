//! Gradient-descent time schedules (λ, τ) as spectral functions (MATH.md §2, §5): the one
//! schedule type of both towers. The Meta Neural Kernel (`mnk`, infinite width) uses it for the
//! inner operator T = g(Θ') and for the outer loop of the predictor; MAML on finite networks
//! (`maml::MamlConfig`, `maml::TrainConfig`) holds the same type and accepts `Time::Steps`
//! without ridge, so a finite-vs-infinite check states its schedule once. Re-exported as
//! `mnk::Schedule`, `mnk::Time`, `mnk::RidgeMode`.
//!
//! For a symmetric PSD kernel matrix K = U diag(μ) Uᵀ, running gradient descent on
//! ½‖f(X) − Y‖² in the kernel's function space for a schedule leaves the residual multiplied by
//! I − K g(K), with the spectral function
//!
//! ```text
//! Steps { lr: λ, steps: τ }:  g(μ) = λ Σ_{s=0}^{τ−1} (1 − λμ)^s = (1 − (1 − λμ)^τ)/μ,   g(0) = λτ
//! Flow  { time: s }:          g(μ) = (1 − e^{−sμ})/μ,                                g(0) = s
//! Infinite:                   g(μ) = 1/μ
//! ```
//!
//! and T = g(K) = U diag(g(μ)) Uᵀ. Evaluation is stable for every μ ≥ 0: with x = λμ,
//! `1 − (1 − x)^τ = −expm1(τ·log1p(−x))` (relative accuracy when x is tiny), and
//! `1 − e^{−sμ} = −expm1(−sμ)`; division by μ happens only when the numerator is exact to
//! relative accuracy, and μ = 0 takes the limit. Eigenvalues μ < 0 of a PSD matrix are rounding
//! noise (|μ| ≲ mε‖K‖) and are treated as 0.
//!
//! Ridge ρ ≥ 0 ([`RidgeMode`]): `InverseOnly` (the authors' code, `reg_coef`) replaces the
//! division by μ with division by μ + ρ but keeps the unregularised numerator:
//! `g(μ) = (1 − e^{−sμ})/(μ + ρ)` (flow), `λ(1 − (1 − λμ)^τ)/(λμ + λρ)` (steps), `1/(μ + ρ)`
//! (infinite); `Both` runs the schedule on K + ρI, i.e. evaluates the unregularised g at μ + ρ.
//! For infinite time both modes give (K + ρI)⁻¹.
//!
//! With zero ridge and infinite time, a numerically singular K (λ_min ≤ 10·m·ε·λ_max) is
//! rejected with [`Error::Singular`] (suggesting a ridge of 1e-8·λ_max); no explicit inverse is
//! ever formed.

use crate::error::{Error, Result};
use crate::linalg;
use crate::tol;
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// How long gradient descent runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Time {
    /// `steps` steps of gradient descent with rate `lr` (λ, τ for the inner loop; η, t outer).
    Steps { lr: f64, steps: usize },
    /// Gradient flow for `time` = rate × steps (λτ inner, ηt outer).
    Flow { time: f64 },
    /// Run to convergence: the (ridge-regularised) inverse.
    Infinite,
}

/// Where a ridge ρ enters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RidgeMode {
    /// `(1 − e^{−sK})` unregularised, inverse `(K + ρI)⁻¹` (as in the authors' code).
    #[default]
    InverseOnly,
    /// Gradient descent on K + ρI: ridge in the inverse and in the exponent.
    Both,
}

/// A time schedule plus an optional ridge: the spectral function g of the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub time: Time,
    /// Ridge ρ ≥ 0 (0 = none).
    pub ridge: f64,
    pub ridge_mode: RidgeMode,
}

impl Schedule {
    /// τ steps of gradient descent at rate λ.
    pub fn steps(lr: f64, steps: usize) -> Self {
        Self::from_time(Time::Steps { lr, steps })
    }
    /// Gradient flow for time s = λτ.
    pub fn flow(time: f64) -> Self {
        Self::from_time(Time::Flow { time })
    }
    /// Infinite time (exact inverse unless a ridge is set).
    pub fn infinite() -> Self {
        Self::from_time(Time::Infinite)
    }
    fn from_time(time: Time) -> Self {
        Schedule {
            time,
            ridge: 0.0,
            ridge_mode: RidgeMode::InverseOnly,
        }
    }
    /// Builder: ridge ρ and where it enters.
    pub fn with_ridge(mut self, ridge: f64, mode: RidgeMode) -> Self {
        self.ridge = ridge;
        self.ridge_mode = mode;
        self
    }

    /// (λ, τ) of a `Time::Steps` schedule (whatever its ridge); `None` for flow or infinite time.
    pub fn as_steps(&self) -> Option<(f64, usize)> {
        match self.time {
            Time::Steps { lr, steps } => Some((lr, steps)),
            _ => None,
        }
    }

    /// Check the parameters: finite λ ≥ 0, s ≥ 0, ρ ≥ 0.
    pub fn validate(&self) -> Result<()> {
        match self.time {
            Time::Steps { lr, .. } => {
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(Error::param(
                        "lr",
                        lr,
                        "learning rate must be finite and >= 0",
                    ));
                }
            }
            Time::Flow { time } => {
                if !(time.is_finite() && time >= 0.0) {
                    return Err(Error::param(
                        "time",
                        time,
                        "gradient-flow time must be finite and >= 0 (use Infinite for ∞)",
                    ));
                }
            }
            Time::Infinite => {}
        }
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            return Err(Error::param("ridge", self.ridge, "must be finite and >= 0"));
        }
        Ok(())
    }

    /// True when g ≡ 0 (λ = 0, τ = 0 or s = 0): the schedule does nothing.
    pub fn is_zero(&self) -> bool {
        match self.time {
            Time::Steps { lr, steps } => lr == 0.0 || steps == 0,
            Time::Flow { time } => time == 0.0,
            Time::Infinite => false,
        }
    }

    /// The largest value g can take on μ ≥ 0 (g(0)): λτ, s, or 1/ρ (∞ without ridge).
    pub fn g_max(&self) -> f64 {
        match self.time {
            Time::Steps { lr, steps } => lr * steps as f64,
            Time::Flow { time } => time,
            Time::Infinite => 1.0 / self.ridge,
        }
    }

    /// The spectral function g(μ) of the module docs (μ < 0 is treated as 0).
    ///
    /// ```
    /// use gbml_testbed::mnk::Schedule;
    /// let g = Schedule::flow(2.0);
    /// assert_eq!(g.g(0.0), 2.0);
    /// assert!((g.g(1.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-15);
    /// assert!((Schedule::steps(0.1, 3).g(1.0) - 0.1 * (1.0 + 0.9 + 0.81)).abs() < 1e-15);
    /// ```
    pub fn g(&self, mu: f64) -> f64 {
        let mu = mu.max(0.0);
        let rho = self.ridge;
        match (self.time, self.ridge_mode) {
            (Time::Infinite, _) => 1.0 / (mu + rho),
            (Time::Flow { time }, RidgeMode::Both) => flow_g(time, mu + rho),
            (Time::Steps { lr, steps }, RidgeMode::Both) => steps_g(lr, steps, mu + rho),
            (Time::Flow { time }, RidgeMode::InverseOnly) => {
                if rho == 0.0 {
                    flow_g(time, mu)
                } else {
                    -(-time * mu).exp_m1() / (mu + rho)
                }
            }
            (Time::Steps { lr, steps }, RidgeMode::InverseOnly) => {
                if rho == 0.0 {
                    steps_g(lr, steps, mu)
                } else {
                    one_minus_pow(lr * mu, steps) / (mu + rho)
                }
            }
        }
    }

    /// `g(K)` for a symmetric PSD K (lower triangle read), exactly symmetric.
    ///
    /// Errors: invalid parameters; with infinite time and zero ridge, [`Error::Singular`] when
    /// λ_min(K) ≤ 10·m·ε·λ_max(K); with `Steps`, [`Error::InvalidParameter`] when
    /// λ·λ_max(K) > 2 (the iteration diverges).
    pub fn apply(&self, k: ArrayView2<f64>, context: &str) -> Result<Array2<f64>> {
        self.validate()?;
        let m = k.nrows();
        if k.ncols() != m {
            return Err(Error::shape(
                context,
                "square matrix",
                format!("{:?}", k.dim()),
            ));
        }
        if self.is_zero() {
            crate::error::ensure_finite(k, context)?;
            return Ok(Array2::zeros((m, m)));
        }
        let (w, u) = linalg::sym_eig(k)?;
        self.check_spectrum(&w, context)?;
        let mut t = if m <= 32 {
            // Small (per-task) matrices: plain loops, no thread dispatch.
            let gw: Vec<f64> = w.iter().map(|&mu| self.g(mu)).collect();
            Array2::from_shape_fn((m, m), |(i, j)| {
                let mut acc = 0.0;
                for (l, &gl) in gw.iter().enumerate() {
                    acc += u[[i, l]] * gl * u[[j, l]];
                }
                acc
            })
        } else {
            linalg::sym_apply(&w, &u, |mu| self.g(mu))
        };
        linalg::symmetrize(&mut t);
        if !linalg::all_finite(t.view()) {
            // g(K) overflows (only possible at infinite time with a ridge too small to help).
            let lmax = w[m - 1];
            return Err(Error::Singular {
                context: format!("{context} (its inverse overflows)"),
                lambda_min: w[0],
                lambda_max: lmax,
                suggested_ridge: (1e-8 * lmax.abs()).max(f64::MIN_POSITIVE),
            });
        }
        Ok(t)
    }

    /// The checks of [`Schedule::apply`] on a given ascending spectrum.
    pub fn check_spectrum(&self, w: &Array1<f64>, context: &str) -> Result<()> {
        let m = w.len();
        if m == 0 {
            return Ok(());
        }
        let (lmin, lmax) = (w[0], w[m - 1]);
        match self.time {
            Time::Infinite if self.ridge == 0.0 => {
                // Also singular when 1/λ_min overflows (λ_min < 1/f64::MAX ≈ 5.6e-309, e.g. the
                // subnormal kernel of an input whose ‖x‖² underflows; fuzz mnk_task_sets
                // crash-7099…): the inverse is not representable.
                if lmin <= tol::n_eps(10.0, m) * lmax.abs()
                    || lmax <= 0.0
                    || !(1.0 / lmin).is_finite()
                {
                    return Err(Error::Singular {
                        context: context.to_string(),
                        lambda_min: lmin,
                        lambda_max: lmax,
                        suggested_ridge: (1e-8 * lmax.abs()).max(f64::MIN_POSITIVE),
                    });
                }
            }
            Time::Steps { lr, .. } => {
                let shift = if self.ridge_mode == RidgeMode::Both {
                    self.ridge
                } else {
                    0.0
                };
                if lr * (lmax + shift) > 2.0 {
                    return Err(Error::param(
                        "lr",
                        lr,
                        format!(
                            "{context}: gradient descent diverges for lr > 2/λ_max = {:.6e}",
                            2.0 / (lmax + shift)
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `(1 − e^{−sμ})/μ` with the limit s at μ = 0 (μ ≥ 0).
fn flow_g(s: f64, mu: f64) -> f64 {
    let x = s * mu;
    if x == 0.0 {
        s
    } else {
        -(-x).exp_m1() / mu
    }
}

/// `1 − (1 − x)^τ`, accurate to relative precision for small x > 0.
fn one_minus_pow(x: f64, steps: usize) -> f64 {
    if steps == 0 {
        return 0.0;
    }
    if x < 1.0 {
        -((steps as f64) * (-x).ln_1p()).exp_m1()
    } else if steps <= i32::MAX as usize {
        1.0 - (1.0 - x).powi(steps as i32)
    } else {
        let p = (x - 1.0).powf(steps as f64);
        1.0 - if steps % 2 == 0 { p } else { -p }
    }
}

/// `λ Σ_{s<τ} (1 − λμ)^s = λ(1 − (1 − λμ)^τ)/(λμ)` with the limit λτ at μ = 0 (μ ≥ 0).
fn steps_g(lr: f64, steps: usize, mu: f64) -> f64 {
    let x = lr * mu;
    if x == 0.0 {
        lr * steps as f64
    } else {
        lr * (one_minus_pow(x, steps) / x)
    }
}
