//! The result types of the kernel entry points: which kernel, and the NNGP/NTK matrices.

use crate::error::{ensure_finite, Result};
use ndarray::Array2;

/// Which kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// Σ^{L+1}: the output covariance at initialization (GP prior).
    Nngp,
    /// Θ^{L+1}: the neural tangent kernel.
    Ntk,
}

/// NNGP and NTK Gram matrices.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernels {
    pub nngp: Array2<f64>,
    pub ntk: Array2<f64>,
}

impl Kernels {
    /// The matrix of the given kind.
    pub fn get(&self, kind: KernelKind) -> &Array2<f64> {
        match kind {
            KernelKind::Nngp => &self.nngp,
            KernelKind::Ntk => &self.ntk,
        }
    }
}

/// Post-condition of every public entry point: a non-finite kernel value is an error, never a
/// silent NaN or infinity.
pub(crate) fn ensure_finite_output(k: &Kernels) -> Result<()> {
    ensure_finite(k.nngp.view(), "NNGP output (overflow)")?;
    ensure_finite(k.ntk.view(), "NTK output (overflow)")
}
