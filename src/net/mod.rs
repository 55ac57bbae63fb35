//! Finite-width fully-connected networks with hand-derived gradients and Hessian-vector products
//! (MATH.md §1). (Being built: issue 4.)
