//! # gbml-testbed
//!
//! Exact reference implementations and theorem checks for gradient-based meta-learning with
//! over-parameterized networks (Wang, Sun & Li, arXiv 2006.14606). The modules follow the chain
//! of mathematical objects; lower layers never import higher ones:
//!
//! `kernel` (NNGP/NTK recursion, MATH.md §1) → `mnk` (inner-loop operator T, Meta Neural Kernel,
//! kernel-regression predictor, §2, §3, §5) → `net` (finite MLP with hand-derived derivatives) →
//! `maml` (inner loop, second-order meta-gradient, outer training, §4) → `theory` (rates and
//! bounds, §4, §7) → `checks` (theorem checkers) → `io` (exchange formats, comparison) and
//! `report` (tables, plots).
//!
//! Conventions (MATH.md §0): points are rows, f64 everywhere, losses are sums with a factor ½,
//! NTK parameterization by default.

pub mod error;
pub mod linalg;
pub mod schedule;
pub mod simd;
pub mod task;
pub mod tol;

pub mod advise;
pub mod checks;
pub mod experiments;
pub mod io;
pub mod kernel;
pub mod maml;
pub mod mnk;
pub mod net;
pub mod report;
pub mod theory;
pub mod xprec;

pub use error::{Error, Result};
