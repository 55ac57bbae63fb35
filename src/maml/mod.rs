//! MAML on finite networks (MATH.md §2, §4): inner loop, meta-loss, exact second-order
//! meta-gradient (back-propagation through the inner loop with Hessian-vector products),
//! first-order MAML and ANIL options, meta-Jacobian and empirical MNK Φ̂ = J_F J_Fᵀ, outer
//! full-batch gradient-descent trainer.
//!
//! * [`task`]: [`validate_task`] (the crate's one [`Task`] type, support X', Y'; query X, Y,
//!   checked against a network) and [`MamlConfig`] (its inner schedule is the crate's one
//!   [`Schedule`], restricted to `Time::Steps` without ridge).
//! * [`inner`]: the inner loop θ_{s+1} = θ_s − λ ∇ℓ_support(θ_s).
//! * [`metagrad`]: meta-loss, meta-outputs, meta-gradient (dense reference algorithm).
//! * [`lowrank`]: the same meta-gradient without per-task parameter vectors (fast path).
//! * [`mnk_empirical`]: meta-Jacobian rows and Φ̂.
//! * [`mod@train`]: outer training, diagnostics, predictions on test tasks, centred network.
//!
//! The closed-form linear case (f = w·x, loss ½(w·x)², λ = 1/2, one inner step):
//!
//! ```
//! use gbml_testbed::kernel::Parameterization;
//! use gbml_testbed::maml::{meta_loss_grad, MamlConfig, Order};
//! use gbml_testbed::mnk::Task;
//! use gbml_testbed::net::{Mlp, NetActivation};
//! use ndarray::array;
//! let net = Mlp::from_parts(3, vec![], 1, NetActivation::Identity, 1.0, None, Parameterization::Standard).unwrap();
//! let task = Task::new(array![[1.0, 2.0, 3.0]], array![[0.0]], array![[4.0, 5.0, 6.0]], array![[0.0]]).unwrap();
//! let w = array![2.0, 3.0, 5.0];
//! let (_, g) = meta_loss_grad(&net, w.view(), &[task.clone()], &MamlConfig::new(0.5, 1)).unwrap();
//! assert_eq!(g.to_vec(), vec![3780.0, 8505.0, 13230.0]);
//! let fo = MamlConfig::new(0.5, 1).with_order(Order::First);
//! let (_, g1) = meta_loss_grad(&net, w.view(), &[task], &fo).unwrap();
//! assert_eq!(g1.to_vec(), vec![-1260.0, -1575.0, -1890.0]);
//! ```

pub mod inner;
pub mod lowrank;
pub mod metagrad;
pub mod mnk_empirical;
pub mod task;
pub mod train;

pub use crate::schedule::Schedule;
pub use crate::task::Task;
pub use inner::{adapt, inner_loop, InnerTrace};
pub use metagrad::{meta_loss, meta_loss_grad, meta_loss_grad_dense, meta_outputs, task_meta_grad};
pub use mnk_empirical::{empirical_mnk, empirical_mnk_dense, meta_jacobian};
pub use task::{steps_of, validate_task, validate_tasks, Adapt, MamlConfig, Order};
pub use train::{centre_tasks, predict, train, StepRecord, TrainConfig, TrainResult};
