//! The batched kernel evaluator (`kernel::batch`) is compiled for AVX-512, AVX2 and the baseline
//! target and picked at run time. Vector IEEE operations are exact per lane and nothing is
//! contracted into an FMA, so every path must give the SAME BITS. This test computes the Gram
//! matrices with the best path of this CPU and again with the portable path forced
//! (`kernel::batch::force_portable`; on an AVX-512 CPU also the AVX2 path,
//! `kernel::batch::force_avx2`), on inputs that exercise every branch of the recursion
//! (identical, near-identical, collinear, antipodal, nearly antipodal, zero, tiny and huge
//! inputs, rows crossing the 64-lane batches and the Gram tiles), and compares bit for bit.
//! It also checks that the per-layer path (scalar `recurse_with`, one pair at a time) ends
//! with the same bits as the batched path.

mod common;

use gbml_testbed::kernel::{
    batch, kernels, kernels_per_layer, kernels_rows, Activation, Arch, Kernels,
};
use ndarray::{s, Array2};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;

/// The forcing hook is process-global: tests of this file that use it run one at a time.
static HOOK: Mutex<()> = Mutex::new(());

fn bits_eq(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

fn same(a: &Kernels, b: &Kernels) -> bool {
    bits_eq(&a.nngp, &b.nngp) && bits_eq(&a.ntk, &b.ntk)
}

/// `f` with the run-time dispatch, then with the portable path forced; and, on a CPU with
/// AVX-512, also with the AVX2 path forced (checked against the dispatched result here).
fn both_paths(f: impl Fn() -> Kernels) -> (Kernels, Kernels) {
    let _g = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let fast = f();
    if batch::active_path() == "avx512" {
        batch::force_avx2(true);
        assert_eq!(batch::active_path(), "avx2");
        let mid = f();
        batch::force_avx2(false);
        assert!(same(&mid, &fast), "AVX2 path differs from the AVX-512 path");
    }
    batch::force_portable(true);
    assert_eq!(batch::active_path(), "portable");
    let port = f();
    batch::force_portable(false);
    (fast, port)
}

/// 150 points in d = 7 covering the edge cases of the recursion.
fn edge_inputs(seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let d = 7;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    while rows.len() < 150 {
        let x: Vec<f64> = (0..d).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let k = rows.len() % 10;
        let v: Vec<f64> = match k {
            0..=2 => x.clone(),
            3 => x.iter().map(|v| v * (1.0 + 1e-9)).collect(),
            4 => x.iter().map(|v| -v).collect(),
            5 => x
                .iter()
                .enumerate()
                .map(|(i, v)| -v * (1.0 + if i == 0 { 1e-11 } else { 0.0 }))
                .collect(),
            6 => vec![0.0; d],
            7 => x.iter().map(|v| v * 1e-8).collect(),
            8 => x.iter().map(|v| v * 1e8).collect(),
            _ => x.iter().map(|v| 3.0 * v).collect(),
        };
        rows.push(v.clone());
        if k == 0 {
            // An exact duplicate and a near-duplicate of this row later on.
            rows.push(v.clone());
            rows.push(
                v.iter()
                    .map(|a| a + 1e-13 * rng.gen_range(-1.0..1.0))
                    .collect(),
            );
        }
    }
    rows.truncate(150);
    Array2::from_shape_fn((150, d), |(i, j)| rows[i][j])
}

#[test]
fn simd_and_portable_paths_give_identical_bits_on_edge_inputs() {
    println!("dispatched path on this CPU: {}", batch::active_path());
    let x = edge_inputs(1);
    let y = edge_inputs(2).slice(s![..70, ..]).to_owned();
    let acts = [
        Activation::Relu,
        Activation::Erf,
        Activation::Identity,
        Activation::leaky_relu(0.1),
        Activation::AbRelu { a: -0.5, b: 2.0 },
    ];
    for act in acts {
        for (depth, sb) in [(0, None), (1, Some(0.1)), (3, None), (10, Some(1.0))] {
            let archs = [
                Arch::new(depth, act).with_sigma_w(1.5).with_sigma_b(sb),
                Arch::new(depth, act)
                    .with_sigma_b(sb)
                    .with_parameterization(gbml_testbed::kernel::Parameterization::Standard)
                    .with_width(37),
            ];
            for arch in archs {
                let (a, b) = both_paths(|| kernels(&arch, x.view(), None).unwrap());
                assert!(
                    same(&a, &b),
                    "{act:?} L{depth} σ_b {sb:?}: symmetric Gram differs"
                );
                let (a, b) = both_paths(|| kernels(&arch, x.view(), Some(y.view())).unwrap());
                assert!(
                    same(&a, &b),
                    "{act:?} L{depth} σ_b {sb:?}: cross Gram differs"
                );
                let (a, b) = both_paths(|| kernels_rows(&arch, x.view(), 40..110).unwrap());
                assert!(
                    same(&a, &b),
                    "{act:?} L{depth} σ_b {sb:?}: row block differs"
                );
                // Per-layer path (scalar, pair by pair) ends with the batched path's bits.
                let full = kernels(&arch, x.view(), None).unwrap();
                let layers = kernels_per_layer(&arch, x.view(), None).unwrap();
                assert!(
                    same(layers.last().unwrap(), &full),
                    "{act:?} L{depth}: per-layer path"
                );
                assert!(full.ntk.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// Several Gram tiles (192 rows each) with ragged edges: symmetric, cross and row-block
/// results agree on every path.
#[test]
fn paths_agree_across_gram_tiles() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let x = Array2::from_shape_fn((437, 11), |_| rng.gen_range(-1.0..1.0));
    let y = x.slice(s![100..331, ..]).to_owned();
    for act in [Activation::Relu, Activation::Erf] {
        let arch = Arch::new(2, act).with_sigma_b(Some(0.2));
        let (a, b) = both_paths(|| kernels(&arch, x.view(), None).unwrap());
        assert!(same(&a, &b), "{act:?}: symmetric Gram differs");
        let (c, d) = both_paths(|| kernels(&arch, x.view(), Some(y.view())).unwrap());
        assert!(same(&c, &d), "{act:?}: cross Gram differs");
        // The cross Gram against a subset of the rows is the same bits as those columns
        // (the Gram entries and the pair recursion do not depend on the position or order
        // of the pair), except on the pairs of a point with itself, which only the
        // symmetric path knows to be exact diagonal entries.
        for ((i, j), v) in c.ntk.indexed_iter() {
            if i != j + 100 {
                assert_eq!(
                    v.to_bits(),
                    a.ntk[[i, j + 100]].to_bits(),
                    "{act:?} ({i}, {j})"
                );
            }
        }
        let (e, f) = both_paths(|| kernels_rows(&arch, x.view(), 150..400).unwrap());
        assert!(same(&e, &f), "{act:?}: row block differs");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn simd_and_portable_paths_give_identical_bits(
        x in common::matrix(1..140, 1..9, 3.0),
        arch in common::arch(6),
    ) {
        let (a, b) = both_paths(|| kernels(&arch, x.view(), None).unwrap());
        prop_assert!(same(&a, &b));
        let y = x.slice(s![..x.nrows() / 2 + 1, ..]).to_owned();
        let (a, b) = both_paths(|| kernels(&arch, x.view(), Some(y.view())).unwrap());
        prop_assert!(same(&a, &b));
    }
}
