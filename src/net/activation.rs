//! Activations of the finite network with their first and second derivatives.
//!
//! [`NetActivation`] wraps the kernel activations ([`crate::kernel::Activation`]: ReLU, ABReLU /
//! leaky ReLU, erf, identity) and adds smooth activations with curvature that have no closed-form
//! dual kernel here (tanh, softplus). They exist only for the finite network (gradient, HVP and
//! meta-gradient checks); the analytic kernels do not accept them.
//!
//! Derivatives (all derived by hand):
//!
//! | φ | φ(x) | φ'(x) | φ''(x) |
//! |---|---|---|---|
//! | ReLU | max(x, 0) | 1 if x > 0 else 0 | 0 |
//! | ReLU, ½ at 0 | max(x, 0) | 1 if x > 0, ½ if x = 0, else 0 | 0 |
//! | ABReLU(a, b) | a·min(x,0) + b·max(x,0) | b if x > 0 else a | 0 |
//! | erf | erf(x) | (2/√π) e^{−x²} | −2x · φ'(x) |
//! | identity | x | 1 | 0 |
//! | tanh | tanh x | 1 − tanh² x | −2 tanh x (1 − tanh² x) |
//! | softplus | ln(1 + eˣ) | σ(x) = 1/(1 + e^{−x}) | σ(x)(1 − σ(x)) |
//!
//! **Convention at the kink:** ReLU'(0) = 0 and, generally, ABReLU'(0) = a (the left slope), the
//! choice of `jax.nn.relu`. The second derivative of the ReLU family is taken as 0 everywhere
//! (it is 0 almost everywhere; the Dirac mass at 0 is ignored, as in every autodiff system).
//! [`NetActivation::ReluHalfAtZero`] is the same function with ReLU'(0) = ½, what JAX's
//! `jnp.maximum(x, 0)` (hence neural-tangents' `stax.Relu`) gives at a tie; it differs from
//! [`NetActivation::Relu`] only where a pre-activation is exactly 0. The compare guard's diagnosis
//! uses it to name that convention (it is not a manifest or CLI activation).

use crate::error::Result;
use crate::kernel::Activation;
use serde::{Deserialize, Serialize};

/// Activation of the hidden layers of a finite network.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum NetActivation {
    /// max(x, 0), with ReLU'(0) = 0.
    Relu,
    /// max(x, 0), with ReLU'(0) = ½ (neural-tangents' `stax.Relu` / `jnp.maximum` at a tie).
    #[serde(rename = "relu_half_at_zero")]
    ReluHalfAtZero,
    /// a·min(x,0) + b·max(x,0); derivative at 0 is a.
    #[serde(rename = "abrelu")]
    AbRelu { a: f64, b: f64 },
    /// erf(x).
    Erf,
    /// x.
    Identity,
    /// tanh(x) (finite network only: no dual kernel in `kernel`).
    Tanh,
    /// ln(1 + eˣ) (finite network only: no dual kernel in `kernel`).
    Softplus,
}

impl From<Activation> for NetActivation {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => NetActivation::Relu,
            Activation::AbRelu { a, b } => NetActivation::AbRelu { a, b },
            Activation::Erf => NetActivation::Erf,
            Activation::Identity => NetActivation::Identity,
        }
    }
}

const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

impl NetActivation {
    /// The kernel activation this corresponds to, if it has a dual kernel.
    pub fn kernel_activation(&self) -> Option<Activation> {
        match *self {
            // The dual kernel ignores the value at one point: ReLU's.
            NetActivation::Relu | NetActivation::ReluHalfAtZero => Some(Activation::Relu),
            NetActivation::AbRelu { a, b } => Some(Activation::AbRelu { a, b }),
            NetActivation::Erf => Some(Activation::Erf),
            NetActivation::Identity => Some(Activation::Identity),
            NetActivation::Tanh | NetActivation::Softplus => None,
        }
    }

    /// Short name (CLI, exchange files).
    pub fn name(&self) -> String {
        match self {
            NetActivation::Tanh => "tanh".into(),
            NetActivation::Softplus => "softplus".into(),
            NetActivation::ReluHalfAtZero => "relu_half_at_zero".into(),
            other => other
                .kernel_activation()
                .map(|a| a.name())
                .unwrap_or_default(),
        }
    }

    /// Parse the kernel names (see [`Activation::parse`]) plus `tanh` and `softplus`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tanh" => Ok(NetActivation::Tanh),
            "softplus" => Ok(NetActivation::Softplus),
            _ => Activation::parse(s).map(Into::into),
        }
    }

    /// Finite slopes for ABReLU.
    pub fn validate(&self) -> Result<()> {
        match self.kernel_activation() {
            Some(a) => a.validate(),
            None => Ok(()),
        }
    }

    /// True when φ'' ≠ 0 somewhere (erf, tanh, softplus).
    pub fn has_curvature(&self) -> bool {
        matches!(
            self,
            NetActivation::Erf | NetActivation::Tanh | NetActivation::Softplus
        )
    }

    /// φ(x).
    #[inline]
    pub fn phi(&self, x: f64) -> f64 {
        match *self {
            NetActivation::Relu | NetActivation::ReluHalfAtZero => x.max(0.0),
            NetActivation::AbRelu { a, b } => {
                if x > 0.0 {
                    b * x
                } else {
                    a * x
                }
            }
            NetActivation::Erf => libm::erf(x),
            NetActivation::Identity => x,
            NetActivation::Tanh => x.tanh(),
            // ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|}), no overflow.
            NetActivation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// φ'(x).
    #[inline]
    pub fn dphi(&self, x: f64) -> f64 {
        match *self {
            NetActivation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            // ½ exactly at 0 (a tie of max(x, 0)), else ReLU's.
            NetActivation::ReluHalfAtZero => {
                if x > 0.0 {
                    1.0
                } else if x == 0.0 {
                    0.5
                } else {
                    0.0
                }
            }
            NetActivation::AbRelu { a, b } => {
                if x > 0.0 {
                    b
                } else {
                    a
                }
            }
            NetActivation::Erf => TWO_OVER_SQRT_PI * (-x * x).exp(),
            NetActivation::Identity => 1.0,
            NetActivation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            NetActivation::Softplus => sigmoid(x),
        }
    }

    /// φ''(x).
    #[inline]
    pub fn d2phi(&self, x: f64) -> f64 {
        match *self {
            NetActivation::Relu
            | NetActivation::ReluHalfAtZero
            | NetActivation::AbRelu { .. }
            | NetActivation::Identity => 0.0,
            NetActivation::Erf => -2.0 * x * TWO_OVER_SQRT_PI * (-x * x).exp(),
            NetActivation::Tanh => {
                let t = x.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            NetActivation::Softplus => {
                let s = sigmoid(x);
                s * sigmoid(-x)
            }
        }
    }
}

/// Logistic function 1/(1 + e^{−x}), without overflow for large |x|.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::NetActivation::{Relu, ReluHalfAtZero};

    #[test]
    fn relu_half_at_zero_differs_from_relu_only_at_zero() {
        assert_eq!(Relu.dphi(0.0), 0.0);
        assert_eq!(ReluHalfAtZero.dphi(0.0), 0.5);
        assert_eq!(ReluHalfAtZero.dphi(-0.0), 0.5);
        for x in [-2.0, -1e-300, 1e-300, 3.0] {
            assert_eq!(ReluHalfAtZero.dphi(x), Relu.dphi(x), "x = {x}");
            assert_eq!(ReluHalfAtZero.phi(x), Relu.phi(x), "x = {x}");
            assert_eq!(ReluHalfAtZero.d2phi(x), 0.0);
        }
        assert_eq!(ReluHalfAtZero.kernel_activation(), Relu.kernel_activation());
        assert_eq!(ReluHalfAtZero.name(), "relu_half_at_zero");
        // Not an input activation: the CLI / manifest spelling stays strict.
        assert!(super::NetActivation::parse("relu_half_at_zero").is_err());
    }
}
