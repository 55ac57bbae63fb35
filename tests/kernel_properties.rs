//! Property tests of the analytic kernels (MATH.md §1, "Properties [derived]"): exact symmetry,
//! positive semidefinite Gram matrices, closed-form diagonals, positive homogeneity of bias-free
//! ReLU kernels, the identity activation as an explicit polynomial in x·x', bit-exact row blocks
//! and bit-identical results for any thread count.

mod common;

use gbml_testbed::kernel::{
    kernels, kernels_per_layer, kernels_rows, nngp, ntk, Activation, Arch, Parameterization,
};
use gbml_testbed::linalg::sym_eigvals;
use gbml_testbed::tol::{lre, EPS, KERNEL_MIN_DIGITS};
use ndarray::{s, Array2};
use proptest::prelude::*;
use std::f64::consts::PI;

fn pool(k: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(k)
        .build()
        .unwrap()
}

/// Bitwise equality of two matrices (NaN-safe).
fn bits_eq(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// K(X, X) is exactly symmetric and positive semidefinite:
    /// λ_min ≥ −c·n·ε·‖K‖₂ with c = 16 (eigensolver backward error + kernel rounding).
    #[test]
    fn single_kind_entry_points_match_kernels(
        x in common::matrix(1..20, 1..7, 3.0),
        y in common::matrix(1..5, 1..7, 3.0),
        arch in common::arch(5),
    ) {
        // ntk()/nngp() skip the other matrix internally; they must return the same bits.
        let k = kernels(&arch, x.view(), None).unwrap();
        prop_assert!(bits_eq(&ntk(&arch, x.view(), None).unwrap(), &k.ntk));
        prop_assert!(bits_eq(&nngp(&arch, x.view(), None).unwrap(), &k.nngp));
        if y.ncols() == x.ncols() {
            let k = kernels(&arch, x.view(), Some(y.view())).unwrap();
            prop_assert!(bits_eq(&ntk(&arch, x.view(), Some(y.view())).unwrap(), &k.ntk));
            prop_assert!(bits_eq(&nngp(&arch, x.view(), Some(y.view())).unwrap(), &k.nngp));
        }
    }

    #[test]
    fn symmetric_and_psd(x in common::matrix(2..24, 1..9, 3.0), arch in common::arch(5)) {
        let k = kernels(&arch, x.view(), None).unwrap();
        for m in [&k.nngp, &k.ntk] {
            prop_assert!(bits_eq(m, &m.t().to_owned()), "not exactly symmetric");
            let ev = sym_eigvals(m.view()).unwrap();
            let n = m.nrows() as f64;
            let norm = ev.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
            let lmin = ev.iter().cloned().fold(f64::INFINITY, f64::min);
            prop_assert!(lmin >= -16.0 * n * EPS * norm, "λ_min = {lmin:e}, ‖K‖ = {norm:e}");
        }
    }

    /// Rows a..b of the symmetric Gram matrix are a bit-exact slice of the full matrix, also
    /// across the 192-row tiles of the Gram product.
    #[test]
    fn row_block_is_exact_slice(x in common::matrix(1..420, 1..20, 2.0), arch in common::arch(3),
                                a in 0usize..420, len in 0usize..420) {
        let n = x.nrows();
        let a = a % n;
        let b = (a + len).min(n);
        let full = kernels(&arch, x.view(), None).unwrap();
        let blk = kernels_rows(&arch, x.view(), a..b).unwrap();
        prop_assert!(bits_eq(&blk.ntk, &full.ntk.slice(s![a..b, ..]).to_owned()));
        prop_assert!(bits_eq(&blk.nngp, &full.nngp.slice(s![a..b, ..]).to_owned()));
    }

    /// Bias-free ReLU kernels are positively homogeneous: Θ(cx, c'x') = c c' Θ(x, x'), same for
    /// the NNGP (both parameterizations).
    #[test]
    fn relu_positive_homogeneity(x in common::matrix(2..8, 1..7, 2.0), depth in 0usize..5,
                                 sw in 0.5..2.0f64, e1 in -20i32..20, e2 in -20i32..20,
                                 m1 in 1.0..2.0f64, m2 in 1.0..2.0f64, standard in any::<bool>()) {
        let mut arch = Arch::new(depth, Activation::Relu).with_sigma_w(sw);
        if standard {
            arch = arch.with_parameterization(Parameterization::Standard).with_width(37);
        }
        let (c1, c2) = (m1 * 2f64.powi(e1), m2 * 2f64.powi(e2));
        let base = kernels(&arch, x.view(), None).unwrap();
        let mut y1 = x.clone();
        y1.mapv_inplace(|v| v * c1);
        let mut y2 = x.clone();
        y2.mapv_inplace(|v| v * c2);
        let k = kernels(&arch, y1.view(), Some(y2.view())).unwrap();
        for (m, b) in [(&k.ntk, &base.ntk), (&k.nngp, &base.nngp)] {
            for ((i, j), &v) in m.indexed_iter() {
                let want = c1 * c2 * b[[i, j]];
                // Scaling rounds the inputs (relative 2ε per entry); allow 1e-13 of the scale.
                let scale = c1 * c2 * (b[[i, i]] * b[[j, j]]).sqrt();
                prop_assert!((v - want).abs() <= 1e-13 * scale, "[{i},{j}] {v:e} vs {want:e}");
            }
        }
    }

    /// Identity activation: Σ^{h} = σ_w^{2h} x·x'/d + σ_b² Σ_{k<h} σ_w^{2k} and
    /// Θ^{L+1} = Σ_{h=1}^{L+1} σ_w^{2(L+1−h)} Σ^h (NTK parameterization); standard:
    /// Θ¹ = x·x' + [b], Θ^{h+1} = n_h Σ^h + [b] + σ_w² Θ^h.
    #[test]
    fn identity_is_polynomial(x in common::matrix(2..7, 1..6, 2.0), depth in 0usize..6,
                              sw in 0.5..2.0f64, sb in proptest::option::of(0.0..1.5f64),
                              standard in any::<bool>(), width in 1usize..300) {
        let mut arch = Arch::new(depth, Activation::Identity).with_sigma_w(sw).with_sigma_b(sb);
        if standard {
            arch = arch.with_parameterization(Parameterization::Standard).with_width(width);
        }
        let k = kernels(&arch, x.view(), None).unwrap();
        let d = x.ncols() as f64;
        let (w2, b2) = (sw * sw, sb.map_or(0.0, |b| b * b));
        let bias_one = if sb.is_some() { 1.0 } else { 0.0 };
        for i in 0..x.nrows() {
            for j in 0..x.nrows() {
                let g: f64 = x.row(i).dot(&x.row(j));
                let sigma = |h: i32| w2.powi(h) * g / d + b2 * (0..h).map(|k| w2.powi(k)).sum::<f64>();
                let l = depth as i32;
                let nngp = sigma(l + 1);
                let ntk = if standard {
                    let mut t = g + bias_one;
                    for h in 1..=l {
                        t = width as f64 * sigma(h) + bias_one + w2 * t;
                    }
                    t
                } else {
                    (1..=l + 1).map(|h| w2.powi(l + 1 - h) * sigma(h)).sum()
                };
                // Scale of the terms (no cancellation in the bound's own terms).
                let gs = (x.row(i).dot(&x.row(i)) * x.row(j).dot(&x.row(j))).sqrt();
                let sc_n = w2.powi(l + 1) * gs / d + b2 * (l as f64 + 1.0) * w2.max(1.0).powi(l);
                prop_assert!((k.nngp[[i, j]] - nngp).abs() <= 1e-13 * sc_n);
                let sc_t = (l as f64 + 2.0) * (width as f64 + 1.0) * sc_n.max(gs + 1.0) * w2.max(1.0).powi(l + 1);
                prop_assert!((k.ntk[[i, j]] - ntk).abs() <= 1e-13 * sc_t, "{} vs {ntk}", k.ntk[[i, j]]);
            }
        }
    }

    /// Results do not depend on the number of threads (bit-identical with 1 and 2 threads).
    #[test]
    fn thread_count_invariant(x in common::matrix(1..400, 1..20, 2.0), arch in common::arch(4)) {
        let k1 = pool(1).install(|| kernels(&arch, x.view(), None).unwrap());
        let k2 = pool(2).install(|| kernels(&arch, x.view(), None).unwrap());
        prop_assert!(bits_eq(&k1.ntk, &k2.ntk) && bits_eq(&k1.nngp, &k2.nngp));
        let y = x.slice(s![..x.nrows() / 2 + 1, ..]).to_owned();
        let k1 = pool(1).install(|| kernels(&arch, x.view(), Some(y.view())).unwrap());
        let k2 = pool(2).install(|| kernels(&arch, x.view(), Some(y.view())).unwrap());
        prop_assert!(bits_eq(&k1.ntk, &k2.ntk) && bits_eq(&k1.nngp, &k2.nngp));
    }
}

/// Diagonal closed forms, per layer, to ≥ 13 digits:
/// ReLU without bias: Σ^{h+1} = σ_w² Σ^h/2, Θ^{h+1} = Σ^{h+1} + σ_w² Θ^h/2;
/// ABReLU with bias: Σ^{h+1} = σ_w² (a²+b²)/2 Σ^h + σ_b², Ṫ = (a²+b²)/2;
/// erf: Σ^{h+1} = σ_w² (2/π) asin(2q/(1+2q)) + σ_b², Ṫ = (4/π)/√(1+4q) (q = Σ^h).
#[test]
fn diagonal_closed_forms() {
    let x = ndarray::array![
        [0.3, -1.2, 2.0],
        [1e-3, 4.0, -0.5],
        [0.0, 0.0, 0.0],
        [1e5, -3e4, 7e3]
    ];
    let cases: Vec<(Activation, Option<f64>)> = vec![
        (Activation::Relu, None),
        (Activation::Relu, Some(0.7)),
        (Activation::leaky_relu(0.1), Some(0.0)),
        (Activation::AbRelu { a: -0.5, b: 2.0 }, Some(1.0)),
        (Activation::Erf, None),
        (Activation::Erf, Some(0.3)),
    ];
    for (act, sb) in cases {
        for sw in [1.0, 2f64.sqrt(), 1.5] {
            let arch = Arch::new(5, act).with_sigma_w(sw).with_sigma_b(sb);
            let layers = kernels_per_layer(&arch, x.view(), None).unwrap();
            let (w2, b2) = (sw * sw, sb.map_or(0.0, |b| b * b));
            for i in 0..x.nrows() {
                let mut q = w2 * x.row(i).dot(&x.row(i)) / 3.0 + b2;
                let mut t = q;
                for (h, k) in layers.iter().enumerate() {
                    let (ln, lt) = (lre(k.nngp[[i, i]], q), lre(k.ntk[[i, i]], t));
                    assert!(
                        ln >= KERNEL_MIN_DIGITS && lt >= KERNEL_MIN_DIGITS,
                        "{act:?} σ_b {sb:?} σ_w {sw} point {i} layer {}: LRE {ln:.2}/{lt:.2}",
                        h + 1
                    );
                    let (tq, tdot) = match act {
                        Activation::Relu => (q / 2.0, 0.5),
                        Activation::AbRelu { a, b } => {
                            ((a * a + b * b) / 2.0 * q, (a * a + b * b) / 2.0)
                        }
                        // asin(2q/(1+2q)) = acos(√(1+4q)/(1+2q)) (well conditioned for large q).
                        Activation::Erf => (
                            2.0 / PI * ((1.0 + 4.0 * q).sqrt() / (1.0 + 2.0 * q)).acos(),
                            4.0 / PI / (1.0 + 4.0 * q).sqrt(),
                        ),
                        Activation::Identity => (q, 1.0),
                    };
                    q = w2 * tq + b2;
                    t = q + w2 * tdot * t;
                }
            }
        }
    }
}

/// quickcheck: swapping the two input sets transposes the cross Gram matrix exactly.
#[test]
fn quickcheck_cross_transpose() {
    fn prop(vals: Vec<i16>, depth: u8, act: u8) -> bool {
        let d = 3;
        let n = vals.len() / d;
        if n < 2 {
            return true;
        }
        let x = Array2::from_shape_fn((n, d), |(i, j)| vals[i * d + j] as f64 / 97.0);
        let (a, b) = (x.slice(s![..n / 2, ..]), x.slice(s![n / 2.., ..]));
        let act = [
            Activation::Relu,
            Activation::Erf,
            Activation::Identity,
            Activation::leaky_relu(0.2),
        ][act as usize % 4];
        let arch = Arch::new(depth as usize % 6, act).with_sigma_b(Some(0.5));
        let k_ab = kernels(&arch, a, Some(b)).unwrap();
        let k_ba = kernels(&arch, b, Some(a)).unwrap();
        bits_eq(&k_ab.ntk, &k_ba.ntk.t().to_owned())
            && bits_eq(&k_ab.nngp, &k_ba.nngp.t().to_owned())
    }
    quickcheck::QuickCheck::new()
        .tests(200)
        .quickcheck(prop as fn(Vec<i16>, u8, u8) -> bool);
}
