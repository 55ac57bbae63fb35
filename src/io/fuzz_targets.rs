//! Bodies of the cargo-fuzz targets in `fuzz/` (`docs/fuzzing.md`). Each function takes the
//! fuzzer's raw bytes, must never panic on any input, and panics (= a fuzzer crash) only when an
//! invariant is violated: a non-finite output returned as `Ok` (a silent NaN), an asymmetric or
//! clearly indefinite Gram matrix on valid bounded input, or an inconsistent comparison report.
//!
//! `tests/fuzz_corpus_replay.rs` calls the same functions on every file of `fuzz/corpus/<target>/`
//! and `fuzz/artifacts-regressions/<target>/`, so every past crash stays a regression test.

use super::arrays;
use super::compare::{compare_arrays, compare_values, Inputs};
use super::manifest::{Conventions, Manifest, Quantity};
use super::tolerance::ToleranceTable;
use crate::error::Error;
use crate::kernel::{self, Activation, Arch, Parameterization};
use crate::linalg;
use crate::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
use crate::tol::LRE_MAX;
use ndarray::{Array2, ArrayD, IxDyn};

/// A byte reader that yields defaults once exhausted.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn below(&mut self, n: usize) -> usize {
        self.u8() as usize % n.max(1)
    }
    /// A value from a palette of hard cases or raw bits.
    fn value(&mut self) -> f64 {
        match self.u8() % 16 {
            0 => 0.0,
            1 => -0.0,
            2 => f64::NAN,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => f64::MIN_POSITIVE / 4.0, // subnormal
            6 => 1e300,
            7 => -1e-300,
            8 => 1e-8,
            9 => 1.0 + f64::EPSILON,
            10 => {
                let mut b = [0u8; 8];
                for x in b.iter_mut() {
                    *x = self.u8();
                }
                f64::from_le_bytes(b)
            }
            _ => (self.u8() as f64 - 128.0) / 32.0,
        }
    }
    fn matrix(&mut self, n: usize, d: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |_| self.value())
    }
    fn arch(&mut self) -> Arch {
        let act = match self.u8() % 5 {
            0 => Activation::Relu,
            1 => Activation::Erf,
            2 => Activation::Identity,
            3 => Activation::leaky_relu(0.1),
            _ => Activation::AbRelu { a: -0.5, b: 2.0 },
        };
        let depth = self.below(5);
        let sigma_w = match self.u8() % 4 {
            0 => 1.0,
            1 => 2f64.sqrt(),
            2 => 0.0, // invalid: must be an error
            _ => 1.7,
        };
        let sigma_b = match self.u8() % 4 {
            0 => None,
            1 => Some(0.0),
            2 => Some(0.3),
            _ => Some(-1.0), // invalid
        };
        let mut arch = Arch::new(depth, act)
            .with_sigma_w(sigma_w)
            .with_sigma_b(sigma_b);
        if self.u8().is_multiple_of(4) {
            arch = arch
                .with_parameterization(Parameterization::Standard)
                .with_width(1 + self.below(64));
        }
        arch
    }
}

fn all_finite(a: &Array2<f64>) -> bool {
    a.iter().all(|v| v.is_finite())
}

/// Largest |entry| of the inputs for which the invariants are asserted ("bounded input").
pub const BOUNDED: f64 = 1e6;

fn bounded(a: &Array2<f64>) -> bool {
    a.iter().all(|v| v.is_finite() && v.abs() <= BOUNDED)
}

/// PSD within tolerance: λ_min ≥ −tol with `tol = 1e3·n·ε·scale`, where `scale` bounds the
/// magnitude of the terms the matrix was computed from (at least λ_max of the matrix itself).
fn assert_psd(k: &Array2<f64>, scale: f64, what: &str) {
    if k.nrows() == 0 {
        return;
    }
    let w = linalg::sym_eigvals(k.view()).expect("eigenvalues of a finite symmetric matrix");
    let lmax = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let lmin = w.iter().copied().fold(f64::INFINITY, f64::min);
    let tol = 1e3 * k.nrows() as f64 * f64::EPSILON * lmax.max(scale);
    assert!(
        lmin >= -tol,
        "{what} is indefinite: λ_min = {lmin:e}, λ_max = {lmax:e}, tolerance {tol:e}"
    );
}

/// Max-row-sum norm.
fn norm_inf(a: &Array2<f64>) -> f64 {
    a.rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Target `kernel_inputs`: arbitrary shapes (0–7 points, d = 0–5), values including NaN, ±Inf,
/// subnormals and 1e±300, random architectures (some invalid). Invalid input must give a typed
/// error; `Ok` output must be finite; on valid bounded input the symmetric Gram matrices must be
/// exactly symmetric and PSD within 1e3·n·ε·λ_max, and `kernels_rows` must equal the full rows.
pub fn kernel_inputs(data: &[u8]) {
    let mut b = Bytes::new(data);
    let arch = b.arch();
    let n1 = b.below(8);
    let n2 = b.below(8);
    let d = b.below(6);
    let cross = b.u8().is_multiple_of(2);
    let x1 = b.matrix(n1, d);
    let x2 = b.matrix(n2, d);
    let res = kernel::kernels(&arch, x1.view(), cross.then_some(x2.view()));
    let valid_arch = arch.validate().is_ok();
    let valid_inputs = d > 0 && all_finite(&x1) && (!cross || all_finite(&x2));
    match res {
        Err(e) => {
            // Valid bounded input must succeed.
            assert!(
                !(valid_arch && valid_inputs && bounded(&x1) && (!cross || bounded(&x2))),
                "kernels failed on valid bounded input: {e}"
            );
        }
        Ok(k) => {
            assert!(valid_arch, "invalid architecture accepted: {arch:?}");
            assert!(valid_inputs, "invalid inputs accepted");
            for (name, m) in [("nngp", &k.nngp), ("ntk", &k.ntk)] {
                assert!(
                    all_finite(m),
                    "silent non-finite {name} output (max |x| = {:e}, arch {arch:?}) for inputs x1 = {x1:?}, x2 = {x2:?}",
                    x1.iter().chain(x2.iter()).fold(0.0f64, |m, v| m.max(v.abs()))
                );
                if !cross {
                    assert_eq!(m, &m.t(), "{name} Gram matrix is not exactly symmetric");
                    if bounded(&x1) {
                        assert_psd(m, 0.0, name);
                    }
                }
            }
            if !cross && n1 > 1 {
                let r = kernel::kernels_rows(&arch, x1.view(), 1..n1).expect("rows of valid input");
                assert_eq!(
                    r.ntk,
                    k.ntk.slice(ndarray::s![1..n1, ..]),
                    "kernels_rows differs from the full matrix"
                );
            }
        }
    }
}

/// Target `mnk_task_sets`: task sets with 0–3 tasks, ragged sizes (0–4 support / query points,
/// mismatched d or k), duplicate points (singular support kernels), hard values; inner schedules
/// steps / flow / infinite (with and without ridge). Invalid sets must be typed errors; a
/// singular support kernel at infinite time without ridge must be [`Error::Singular`] with a
/// positive suggested ridge; `Ok` Φ must be finite, exactly symmetric and (bounded input) PSD.
pub fn mnk_task_sets(data: &[u8]) {
    let mut b = Bytes::new(data);
    let arch = Arch::new(b.below(3), [Activation::Relu, Activation::Erf][b.below(2)]);
    let nt = b.below(4);
    let d = 1 + b.below(3);
    let k = 1 + b.below(2);
    let dup = b.u8().is_multiple_of(2);
    let mut tasks = Vec::new();
    let mut construct_err = false;
    for _ in 0..nt {
        let m = b.below(5);
        let n = b.below(5);
        let dd = if b.u8().is_multiple_of(8) { d + 1 } else { d };
        let kk = if b.u8().is_multiple_of(8) { k + 1 } else { k };
        let mut xs = b.matrix(m, dd);
        if dup && m > 1 {
            let r0 = xs.row(0).to_owned();
            xs.row_mut(m - 1).assign(&r0);
        }
        let ys = b.matrix(m, kk);
        let xq = b.matrix(n, dd);
        let yq = b.matrix(n, kk);
        match Task::new(xs, ys, xq, yq) {
            Ok(t) => tasks.push(t),
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        Error::Empty(_) | Error::Shape { .. } | Error::NonFinite { .. }
                    ),
                    "unexpected error variant for a bad task: {e:?}"
                );
                construct_err = true;
            }
        }
    }
    let set = match TaskSet::new(tasks) {
        Ok(s) => s,
        Err(e) => {
            assert!(matches!(e, Error::Empty(_) | Error::Shape { .. }), "{e:?}");
            return;
        }
    };
    let _ = construct_err;
    let sched = match b.u8() % 4 {
        0 => Schedule::steps(0.05 * (1 + b.below(10)) as f64, b.below(5)),
        1 => Schedule::flow(b.below(20) as f64 * 0.25),
        2 => Schedule::infinite(),
        _ => Schedule::infinite().with_ridge(1e-3, crate::mnk::RidgeMode::InverseOnly),
    };
    let arch_copy = arch.clone();
    let mk = Mnk::new(BaseKernel::Analytic(arch.clone()), sched);
    let bounded_set = set
        .tasks()
        .iter()
        .all(|t| bounded(&t.xs) && bounded(&t.xq) && bounded(&t.ys) && bounded(&t.yq));
    match mk.phi(&set) {
        Ok(phi) => {
            assert!(
                all_finite(&phi),
                "silent non-finite Φ (bounded input: {bounded_set}, schedule {sched:?}) for tasks {:?}",
                set.tasks()
            );
            assert_eq!(phi, phi.t(), "Φ is not exactly symmetric");
            if bounded_set {
                // Φ = K_qq − P K_sq − K_qs Pᵀ + P K_ss Pᵀ cancels: its rounding error scales with
                // ‖K‖ (1 + ‖K‖ max‖T_i‖)², not with Φ itself (which may be ~0).
                let pts: Vec<_> = set
                    .tasks()
                    .iter()
                    .flat_map(|t| [t.xs.view(), t.xq.view()])
                    .collect();
                let all = ndarray::concatenate(ndarray::Axis(0), &pts).expect("same d");
                let kn = kernel::ntk(&arch_copy, all.view(), None).expect("valid kernel input");
                let kmax = kn.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let tmax = mk
                    .adapters(&set)
                    .map(|ad| ad.t.iter().map(norm_inf).fold(0.0, f64::max))
                    .unwrap_or(0.0);
                let amp = 1.0 + kmax * tmax;
                assert_psd(&phi, kmax * amp * amp, "Φ");
            }
        }
        Err(Error::Singular {
            suggested_ridge,
            lambda_min,
            lambda_max,
            ..
        }) => {
            assert!(
                suggested_ridge > 0.0 && suggested_ridge.is_finite(),
                "Singular error without a usable suggested ridge"
            );
            assert!(!lambda_min.is_nan() && !lambda_max.is_nan());
        }
        Err(e) => {
            // Only unbounded inputs (1e300 overflow) may fail otherwise, and never by panicking.
            assert!(
                !bounded_set
                    || matches!(e, Error::LinAlg(_))
                    // an inner rate above the stable limit 2/λ_max of a support kernel
                    || matches!(&e, Error::InvalidParameter { name, .. } if name == "lr"),
                "Φ failed on bounded input: {e:?}"
            );
        }
    }
}

/// Target `manifest_parse`: the bytes as manifest text (must parse or give [`Error::Parse`] /
/// a typed validation error; a parsed manifest must round-trip through JSON), then as a `.npy`
/// file (must parse or give [`Error::Parse`]; a parsed array must round-trip bit-exactly).
pub fn manifest_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match Manifest::parse_str(text, "<fuzz>") {
            Ok(m) => {
                let again = Manifest::parse_str(&m.to_json(), "<fuzz>").expect("round trip");
                assert_eq!(again, m, "manifest JSON round trip changed it");
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::Parse { .. } | Error::InvalidParameter { .. } | Error::Empty(_)
                ),
                "unexpected error variant: {e:?}"
            ),
        }
    }
    match arrays::parse_bytes(data, "<fuzz>") {
        Ok(a) => {
            let dir = std::env::temp_dir();
            let p = dir.join(format!("gbml-fuzz-{}.npy", std::process::id()));
            if arrays::write(&p, &a).is_ok() {
                let b = arrays::read(&p).expect("re-read written array");
                let _ = std::fs::remove_file(&p);
                assert_eq!(a.shape(), b.shape());
                assert!(
                    a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    ".npy round trip changed bits"
                );
            }
        }
        Err(e) => assert!(matches!(e, Error::Parse { .. }), "{e:?}"),
    }
}

/// Target `compare_engine`: random reference / candidate arrays (shape mismatches, NaN, zeros,
/// huge and tiny values) through [`compare_arrays`], and a random NTK manifest through
/// [`compare_values`]. Invariants: LREs in [0, LRE_MAX], median ≥ min, identical arrays give
/// LRE_MAX, the worst index is in range, a non-finite candidate entry gives min LRE 0, and our
/// own reference passes its own comparison.
pub fn compare_engine(data: &[u8]) {
    let mut b = Bytes::new(data);
    let dims: Vec<usize> = (0..b.below(4)).map(|_| b.below(5)).collect();
    let len: usize = dims.iter().product();
    let r = ArrayD::from_shape_fn(IxDyn(&dims), |_| b.value());
    let same_shape = !b.u8().is_multiple_of(8);
    let cdims: Vec<usize> = if same_shape {
        dims.clone()
    } else {
        (0..b.below(4)).map(|_| b.below(5)).collect()
    };
    let c = ArrayD::from_shape_fn(IxDyn(&cdims), |_| b.value());
    let floor = [0.0, 1e-3, 1.0][b.below(3)];
    match compare_arrays(c.view(), r.view(), floor) {
        Ok(s) => {
            assert_eq!(c.shape(), r.shape());
            assert!(r.iter().all(|v| v.is_finite()));
            assert!((0.0..=LRE_MAX).contains(&s.min_lre), "{s:?}");
            assert!((0.0..=LRE_MAX).contains(&s.median_lre), "{s:?}");
            assert!(s.median_lre >= s.min_lre, "{s:?}");
            assert_eq!(s.len, len);
            if len > 0 {
                assert_eq!(s.worst_index.len(), dims.len());
                for (i, d) in s.worst_index.iter().zip(&dims) {
                    assert!(i < d);
                }
            }
            if c.iter().any(|v| !v.is_finite()) {
                assert_eq!(s.min_lre, 0.0);
                assert!(s.non_finite > 0);
            }
        }
        Err(e) => assert!(
            matches!(e, Error::Shape { .. } | Error::NonFinite { .. }),
            "{e:?}"
        ),
    }
    if r.iter().all(|v| v.is_finite()) {
        let s = compare_arrays(r.view(), r.view(), floor).expect("self comparison");
        assert_eq!(s.min_lre, LRE_MAX);
    }
    // Whole engine on a small NTK manifest.
    let arch = b.arch();
    let n = b.below(4);
    let d = b.below(4);
    let x = b.matrix(n, d);
    let mut inputs = Inputs::new();
    inputs.insert("x1".into(), x.clone().into_dyn());
    let mut files = std::collections::BTreeMap::new();
    files.insert("x1".to_string(), "x1.npy".to_string());
    let m = Manifest::new(
        "fuzz",
        Quantity::Ntk,
        files,
        "out.npy",
        Conventions::from_arch(&arch),
    );
    let tols = ToleranceTable::defaults();
    if let Ok(reference) = kernel::kernels(&arch, x.view(), None) {
        let cand = reference.ntk.clone().into_dyn();
        match compare_values(&m, &inputs, &cand, &tols, "<fuzz>") {
            Ok(rep) => assert_eq!(
                rep.verdict,
                super::compare::Verdict::Pass,
                "our own value fails its comparison"
            ),
            Err(e) => assert!(e.exit_code() >= 2, "{e:?}"),
        }
        // A perturbed candidate: must not panic, verdict must be consistent with the stats.
        let mut pert = cand.clone();
        if let Some(v) = pert.iter_mut().next() {
            *v = b.value();
        }
        if let Ok(rep) = compare_values(&m, &inputs, &pert, &tols, "<fuzz>") {
            if let Some(s) = &rep.stats {
                assert_eq!(
                    rep.verdict == super::compare::Verdict::Pass,
                    s.min_lre >= rep.tolerance.min_digits
                );
            }
        }
    }
}

/// The names of all targets, for the replay test.
pub const TARGETS: [&str; 4] = [
    "kernel_inputs",
    "mnk_task_sets",
    "manifest_parse",
    "compare_engine",
];

/// Run a target by name.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "kernel_inputs" => kernel_inputs(data),
        "mnk_task_sets" => mnk_task_sets(data),
        "manifest_parse" => manifest_parse(data),
        "compare_engine" => compare_engine(data),
        other => panic!("unknown fuzz target {other}"),
    }
}
