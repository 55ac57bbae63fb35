//! The inner-loop operator T, the Meta Neural Kernel Φ and the kernel-regression meta-learner
//! (MATH.md §2, §3, §5).
//!
//! * [`tasks`]: validated task sets ([`Task`], [`TaskSet`]); stacked order "queries first".
//! * [`inner`]: time schedules as spectral functions ([`Schedule`], [`Time`], [`RidgeMode`]) and
//!   the inner operator T = g(Θ').
//! * [`base`]: the pluggable base kernel ([`BaseKernel`]: analytic NTK, precomputed Gram matrix or
//!   any kernel function [`KernelFn`]) and the
//!   MAML/ANIL [`Variant`].
//! * [`gram`]: Φ (training Gram), exact row blocks, cross kernel, test block ([`Mnk`]).
//! * [`predict`]: the meta-learner's predictions and classification helpers.
//! * [`spectral`]: λ_min, λ_max, condition number, η*, predicted rates ([`Spectrum`]).
//!
//! ```
//! use gbml_testbed::kernel::{Activation, Arch};
//! use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
//! use ndarray::array;
//! let t = |a: f64| Task::new(array![[a, 1.0], [1.0, a]], array![[a], [-a]],
//!                            array![[0.5, a]], array![[0.0]]).unwrap();
//! let set = TaskSet::new(vec![t(0.3), t(-0.7)]).unwrap();
//! let mnk = Mnk::new(BaseKernel::Analytic(Arch::new(1, Activation::Relu)), Schedule::flow(1.0));
//! let phi = mnk.phi(&set).unwrap();
//! assert_eq!(phi.dim(), (2, 2));
//! assert_eq!(phi[[0, 1]], phi[[1, 0]]);
//! ```

pub mod base;
pub mod data;
pub mod gram;
pub mod inner;
pub mod layout;
pub mod predict;
pub mod spectral;
pub mod tasks;

pub use base::{BaseKernel, KernelFn, LayerKernel, Precomputed, Variant};
pub use gram::{assemble_phi, Adapters, Mnk};
pub use inner::{inner_operator, InnerTime, OuterTime, RidgeMode, Schedule, Time};
pub use predict::{accuracy, argmax_rows, centred_one_hot, g_term, predict_from, Prediction, F0};
pub use spectral::{SlowMode, Spectrum};
pub use tasks::{Task, TaskSet};
