//! Extended-precision (double-double) reference path (issue #12 item 1).
//!
//! Every quantity is evaluated in double-double ([`dd::Dd`], ≈ 32 digits) from the given f64
//! inputs and rounded to f64 once at the end, so that reference values are faithful whatever
//! the conditioning of the f64 computation (limits are stated per function):
//!
//! * [`kernels`]: NNGP / NTK Gram matrices (MATH.md §1), same semantics as
//!   [`crate::kernel::kernels`].
//!
//! Layering: uses `kernel` and `mnk` types only; neither imports this module.

pub mod dd;
pub mod kernel;

pub use dd::Dd;
pub use kernel::{kernels, kernels_dd, DdKernels};
