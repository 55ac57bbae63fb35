//! Architecture description shared by the analytic kernels and the finite networks.

use super::activation::Activation;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Parameterization of the dense layers (MATH.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Parameterization {
    /// `z = (σ_w/√n_in) W x + σ_b b`, all entries N(0,1). The kernels do not depend on widths.
    #[default]
    Ntk,
    /// `z = W x + b`, `W ~ N(0, σ_w²/n_in)`, `b ~ N(0, σ_b²)`: the NTK depends on the finite widths
    /// (as neural-tangents defines it), and a bias with σ_b = 0 still adds 1 per layer.
    Standard,
}

/// A fully-connected network: `depth` hidden layers, activation φ, linear readout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Number of hidden layers L ≥ 0 (L = 0 is a linear model).
    pub depth: usize,
    /// Activation φ of every hidden layer.
    pub activation: Activation,
    /// Weight scale σ_w > 0.
    pub sigma_w: f64,
    /// Bias scale σ_b ≥ 0, or `None` for no bias at all.
    pub sigma_b: Option<f64>,
    /// NTK (default) or standard parameterization.
    pub parameterization: Parameterization,
    /// Hidden widths n_1..n_L. Needed by finite networks and by the standard-parameterization
    /// NTK; may be empty for the NTK-parameterization kernels.
    pub widths: Vec<usize>,
}

impl Arch {
    /// `depth` hidden layers with activation φ, σ_w = 1, no bias, NTK parameterization.
    pub fn new(depth: usize, activation: Activation) -> Self {
        Arch {
            depth,
            activation,
            sigma_w: 1.0,
            sigma_b: None,
            parameterization: Parameterization::Ntk,
            widths: Vec::new(),
        }
    }

    /// Builder: weight scale.
    pub fn with_sigma_w(mut self, sigma_w: f64) -> Self {
        self.sigma_w = sigma_w;
        self
    }

    /// Builder: bias scale (`None` removes the bias).
    pub fn with_sigma_b(mut self, sigma_b: Option<f64>) -> Self {
        self.sigma_b = sigma_b;
        self
    }

    /// Builder: parameterization.
    pub fn with_parameterization(mut self, p: Parameterization) -> Self {
        self.parameterization = p;
        self
    }

    /// Builder: every hidden layer gets width `n`.
    pub fn with_width(mut self, n: usize) -> Self {
        self.widths = vec![n; self.depth];
        self
    }

    /// Builder: explicit hidden widths.
    pub fn with_widths(mut self, widths: Vec<usize>) -> Self {
        self.widths = widths;
        self
    }

    /// σ_b², 0 without bias.
    pub fn sigma_b2(&self) -> f64 {
        self.sigma_b.map_or(0.0, |b| b * b)
    }

    /// Check the description: finite positive σ_w, finite σ_b ≥ 0, valid activation, and widths
    /// (when given, or when the standard parameterization needs them) of length L, all ≥ 1.
    pub fn validate(&self) -> Result<()> {
        validate_scales(self.sigma_w, self.sigma_b)?;
        if self.depth > 1000 {
            return Err(Error::param(
                "depth",
                self.depth,
                "at most 1000 hidden layers",
            ));
        }
        self.activation.validate()?;
        let need_widths = self.parameterization == Parameterization::Standard;
        if need_widths || !self.widths.is_empty() {
            if self.widths.len() != self.depth {
                return Err(Error::param(
                    "widths",
                    format!("{:?}", self.widths),
                    format!("need one width per hidden layer ({} layers)", self.depth),
                ));
            }
            if self.widths.contains(&0) {
                return Err(Error::param(
                    "widths",
                    format!("{:?}", self.widths),
                    "widths must be >= 1",
                ));
            }
        }
        Ok(())
    }
}

/// σ_w finite and > 0, σ_b (when present) finite and ≥ 0: the scales of every architecture
/// description ([`Arch`], [`super::spec::Spec`]).
pub(crate) fn validate_scales(sigma_w: f64, sigma_b: Option<f64>) -> Result<()> {
    if !(sigma_w.is_finite() && sigma_w > 0.0) {
        return Err(Error::param("sigma_w", sigma_w, "must be finite and > 0"));
    }
    if let Some(b) = sigma_b {
        if !(b.is_finite() && b >= 0.0) {
            return Err(Error::param("sigma_b", b, "must be finite and >= 0"));
        }
    }
    Ok(())
}
