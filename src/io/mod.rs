//! Exchange formats (`.npy`, JSON manifests) and comparison against other implementations
//! (`docs/FORMAT.md`, `docs/compare.md`).
//!
//! * [`manifest`]: the versioned JSON manifest (strict parsing) naming a quantity, its inputs,
//!   a candidate output and the conventions.
//! * [`compare`]: read a manifest's files, judge the candidate, report (the verdict).
//! * [`reference`]: our value of a manifest's quantity under its conventions.
//! * [`accuracy`]: entrywise errors and LRE of a candidate against a reference.
//! * [`npy`]: the one `.npy` parser (size and header guards) and matrix files; [`arrays`]
//!   re-exports its any-dimension reader/writer; [`task_folder`]: the 3-D task folders.
//!
//! Imports go one way: npy ← arrays, task_folder; accuracy, reference ← diagnose ← compare ←
//! export.
//! * [`tolerance`]: default tolerance table and per-implementation TOML overrides.
//! * [`diagnose`]: which alternative convention a mismatching candidate used.
//! * [`export`]: conformance packs (inputs + certified outputs, NIST StRD style).
//! * [`fuzz_targets`]: the bodies of the cargo-fuzz targets (also replayed by `cargo test`).

pub mod accuracy;
pub mod arrays;
pub mod compare;
pub mod conditioning;
pub mod diagnose;
pub mod export;
pub mod fuzz_targets;
pub mod manifest;
pub mod npy;
pub mod reference;
pub mod task_folder;
pub mod tolerance;
