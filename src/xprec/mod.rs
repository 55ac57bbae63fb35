//! Extended-precision (double-double) reference path (issue #12 item 1).
//!
//! Every quantity is evaluated in double-double ([`dd::Dd`], ≈ 32 digits) from the given f64
//! inputs and rounded to f64 once at the end, so that reference values are faithful whatever
//! the conditioning of the f64 computation (limits are stated per function):
//!
//! * [`kernels`]: NNGP / NTK Gram matrices (MATH.md §1), same semantics as
//!   [`crate::kernel::kernels`].
//! * [`conv_kernels`]: convolutional NNGP / NTK (MATH.md §10), same semantics as
//!   [`crate::kernel::conv::kernels`].
//! * [`inner_operator`] (T, MATH.md §2), [`phi`] and [`cross`] (Φ, §3), [`predict`] /
//!   [`predict_from`] (§5) and [`complexity`] (§7): the signatures of their f64 counterparts in
//!   `mnk` / `theory`, with `Mnk` passed explicitly.
//!
//! Layering: uses `kernel` and `mnk` types only; neither imports this module.

pub mod conv;
mod conv_plane;
pub mod dd;
pub mod dense;
pub mod kernel;
pub mod mnk;

pub use conv::{kernels as conv_kernels, kernels_dd as conv_kernels_dd};
pub use dd::Dd;
pub use kernel::{kernels, kernels_dd, DdKernels};
pub use mnk::{complexity, cross, inner_operator, inner_operators, phi, predict, predict_from};

/// Which evaluation path a command uses: `f64` (the fast default) or `extended` (this module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    F64,
    Extended,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f64" => Ok(Precision::F64),
            "extended" | "dd" | "double-double" => Ok(Precision::Extended),
            _ => Err(format!("expected f64 or extended, got `{s}`")),
        }
    }
}
