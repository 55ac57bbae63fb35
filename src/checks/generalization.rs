//! Family 7 — generalization bound vs test error (being built).
