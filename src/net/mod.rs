//! Finite-width fully-connected networks with hand-derived gradients and Hessian-vector products
//! (MATH.md §1). No autodiff: every derivative is written out in the doc comment of the file that
//! implements it and checked against Richardson-extrapolated finite differences
//! (`tests/net_gradients.rs`).
//!
//! * [`mlp`]: architecture, flat parameter vector (order documented there), typed views, seeded init.
//! * [`activation`]: φ, φ', φ'' (ReLU'(0) = 0).
//! * [`forward`]: batched forward pass. * [`backward`]: VJPs and the loss gradient.
//! * [`hvp`]: exact Hessian-vector products (Pearlmutter R-operator).
//! * [`jacobian`]: per-example Jacobian rows and the empirical NTK.
//!
//! ```
//! use gbml_testbed::kernel::{Activation, Arch};
//! use gbml_testbed::net::Mlp;
//! let net = Mlp::new(&Arch::new(1, Activation::Erf).with_width(8), 3, 1).unwrap();
//! let theta = net.init(0);
//! assert_eq!(theta.len(), net.n_params());
//! let x = ndarray::Array2::<f64>::ones((4, 3));
//! assert_eq!(net.forward(theta.view(), x.view()).unwrap().dim(), (4, 1));
//! ```

pub mod activation;
pub mod backward;
pub mod forward;
pub mod hvp;
pub mod jacobian;
pub mod mlp;

pub use activation::NetActivation;
pub use forward::ForwardCache;
pub use mlp::{Layer, Mlp};
