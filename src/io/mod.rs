//! Exchange formats (`.npy`, JSON manifests) and comparison against other implementations
//! (`docs/FORMAT.md`, `docs/compare.md`).
//!
//! * [`manifest`]: the versioned JSON manifest (strict parsing) naming a quantity, its inputs,
//!   a candidate output and the conventions.
//! * [`compare`]: recompute our reference, entrywise accuracy (LRE), verdict.
//! * [`tolerance`]: default tolerance table and per-implementation TOML overrides.
//! * [`diagnose`]: which alternative convention a mismatching candidate used.
//! * [`export`]: conformance packs (inputs + certified outputs, NIST StRD style).
//! * [`fuzz_targets`]: the bodies of the cargo-fuzz targets (also replayed by `cargo test`).

pub mod arrays;
pub mod compare;
pub mod diagnose;
pub mod export;
pub mod fuzz_targets;
pub mod manifest;
pub mod npy;
pub mod tolerance;
