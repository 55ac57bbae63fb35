//! MAML on finite networks (MATH.md §2, §4): inner loop, meta-loss, exact second-order
//! meta-gradient (back-propagation through the inner loop with Hessian-vector products),
//! first-order MAML and ANIL options, meta-Jacobian and empirical MNK Φ̂ = J_F J_Fᵀ, outer
//! full-batch gradient-descent trainer.
//!
//! * [`task`]: [`MetaTask`] (support X', Y'; query X, Y) and [`MamlConfig`].
//! * [`inner`]: the inner loop θ_{s+1} = θ_s − λ ∇ℓ_support(θ_s).
//! * [`metagrad`]: meta-loss, meta-outputs, meta-gradient (dense reference algorithm).
//! * [`lowrank`]: the same meta-gradient without per-task parameter vectors (fast path).
//! * [`mnk_empirical`]: meta-Jacobian rows and Φ̂.
//! * [`train`]: outer training, diagnostics, predictions on test tasks, centred network.

pub mod inner;
pub mod lowrank;
pub mod metagrad;
pub mod mnk_empirical;
pub mod task;
pub mod train;

pub use inner::{adapt, inner_loop, InnerTrace};
pub use metagrad::{meta_loss, meta_loss_grad, meta_loss_grad_dense, meta_outputs, task_meta_grad};
pub use mnk_empirical::{empirical_mnk, empirical_mnk_dense, meta_jacobian};
pub use task::{Adapt, MamlConfig, MetaTask, Order};
pub use train::{centre_tasks, predict, train, StepRecord, TrainConfig, TrainResult};
