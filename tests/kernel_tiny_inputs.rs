//! Kernels of tiny inputs (fuzz finding `kernel_inputs/crash-490a…`, `crash-0d3c…`): for two
//! inputs with ‖x‖·‖y‖ ≲ 1e-154 the absolute pair state D = k11 k22 − k12² underflowed to 0 and
//! non-parallel pairs were treated as parallel, giving an indefinite NTK. Bias-free ReLU-family
//! kernels are positively homogeneous, Σ(αx, βy) = αβ Σ(x, y) and Θ likewise (NTK
//! parameterization, or standard without bias), so the Gram matrix of tiny inputs must equal the
//! Gram matrix of the same inputs scaled up by exact powers of two 2^{m_i}, times
//! 2^{−m_i}·2^{−m_j}, to 13 digits, and be PSD.
//!
//! The architectures that are NOT rescaled (erf, identity, ReLU family with a bias) are checked
//! against mpmath instead (`fixtures/kernels/tiny.json`, `fixtures/kernels/gen_tiny.py`: inputs
//! of norm ~1e-150, so pair products ~1e-300 are still normal numbers).

use gbml_testbed::kernel::{kernels, Activation, Arch, Kernels, Parameterization};
use gbml_testbed::linalg::sym_eigvals;
use gbml_testbed::tol::{lre, EPS, KERNEL_MIN_DIGITS};
use ndarray::{array, Array2};

fn archs() -> Vec<Arch> {
    vec![
        Arch::new(3, Activation::Relu),
        Arch::new(4, Activation::leaky_relu(0.1)).with_sigma_b(Some(0.0)),
        Arch::new(2, Activation::AbRelu { a: -0.5, b: 2.0 })
            .with_sigma_w(1.5)
            .with_parameterization(Parameterization::Standard)
            .with_width(5),
    ]
}

/// Directions (O(1) rows): two nearly parallel (angle 1.25e-4, as in the fuzz reproducer),
/// the rest generic.
fn dirs() -> Array2<f64> {
    array![
        [1.0, 1.0, 1.0],
        [1.0, 1.000125, 1.0],
        [0.3, -1.2, 0.7],
        [-0.4, 0.5, 2.0],
        [1.0, 0.2, -0.3],
    ]
}

/// Rows `scale[i]·u_i` (rounded) and the exact power-of-two exponents m_i scaling them up to
/// about 8 (deliberately not to the library's own normalisation).
fn tiny(u: &Array2<f64>, scale: &[f64]) -> (Array2<f64>, Vec<i32>) {
    let mut x = u.clone();
    let mut m = Vec::new();
    for (i, mut r) in x.rows_mut().into_iter().enumerate() {
        r.mapv_inplace(|v| v * scale[i]);
        m.push(-(scale[i].log2().floor() as i32) + 3);
    }
    (x, m)
}

fn up(x: &Array2<f64>, m: &[i32]) -> Array2<f64> {
    let mut y = x.clone();
    for (i, mut r) in y.rows_mut().into_iter().enumerate() {
        // m_i ≤ 1000 here: one exact factor.
        r.mapv_inplace(|v| v * 2f64.powi(m[i]));
    }
    y
}

/// K_tiny[i, j] against K_up[i, j]·2^{−m_i}·2^{−m_j}: 13 digits where that is a normal number.
fn check_homogeneous(kt: &Kernels, ku: &Kernels, m1: &[i32], m2: &[i32], what: &str) -> usize {
    let mut checked = 0;
    for (name, a, b) in [("NNGP", &kt.nngp, &ku.nngp), ("NTK", &kt.ntk, &ku.ntk)] {
        for ((i, j), &got) in a.indexed_iter() {
            let want = b[[i, j]] * 2f64.powi(-m1[i]) * 2f64.powi(-m2[j]);
            if want.abs() >= f64::MIN_POSITIVE {
                let l = lre(got, want);
                assert!(
                    l >= KERNEL_MIN_DIGITS,
                    "{what} {name}[{i},{j}]: {got:e} vs {want:e} (LRE {l:.2})"
                );
                checked += 1;
            } else {
                assert!((got - want).abs() <= 4.0 * f64::MIN_POSITIVE * EPS);
            }
        }
    }
    checked
}

#[test]
fn tiny_inputs_gram_is_homogeneous_and_psd() {
    let u = dirs();
    // All pair products αβ ≥ 1e-270 (normal kernel values), but ≤ 1e-154 for most pairs (the
    // old absolute D underflowed).
    let scale = [1e-105, 1e-105, 1e-140, 1e-130, 1e-95];
    let (x, m) = tiny(&u, &scale);
    let xu = up(&x, &m);
    for arch in archs() {
        let kt = kernels(&arch, x.view(), None).unwrap();
        let ku = kernels(&arch, xu.view(), None).unwrap();
        let n = check_homogeneous(&kt, &ku, &m, &m, &format!("{arch:?}"));
        assert_eq!(n, 2 * 25);
        // PSD of the tiny Gram matrix ⇔ PSD of 2^{m_i} K 2^{m_j} (exact rescaling).
        for (name, k) in [("NNGP", &kt.nngp), ("NTK", &kt.ntk)] {
            let mut kh = k.clone();
            for ((i, j), v) in kh.indexed_iter_mut() {
                *v *= 2f64.powi(m[i]) * 2f64.powi(m[j]);
            }
            let w = sym_eigvals(kh.view()).unwrap();
            let (lo, hi) = (w[0], w[w.len() - 1]);
            assert!(
                lo >= -1e3 * 5.0 * EPS * hi,
                "{arch:?} {name}: λ_min = {lo:e}, λ_max = {hi:e}"
            );
        }
    }
}

/// The scales of the brief: inputs at 1e-160 and 1e-200 against inputs at 1e-120…1e-95 (the
/// cross kernel; entries down to 1e-295 are normal numbers and checked to 13 digits).
#[test]
fn inputs_at_1e160_and_1e200() {
    let u = dirs();
    let (x1, m1) = tiny(
        &u.slice(ndarray::s![2..4, ..]).to_owned(),
        &[1e-160, 1e-200],
    );
    let (x2, m2) = tiny(
        &u.slice(ndarray::s![0..3, ..]).to_owned(),
        &[1e-120, 1e-95, 1e-100],
    );
    let (x1u, x2u) = (up(&x1, &m1), up(&x2, &m2));
    for arch in archs() {
        let kt = kernels(&arch, x1.view(), Some(x2.view())).unwrap();
        let ku = kernels(&arch, x1u.view(), Some(x2u.view())).unwrap();
        let n = check_homogeneous(&kt, &ku, &m1, &m2, &format!("{arch:?}"));
        assert!(n >= 2 * 4, "only {n} normal entries checked");
        // The same pairs from the symmetric Gram matrix of all five points.
        let all = ndarray::concatenate![ndarray::Axis(0), x1, x2];
        let ks = kernels(&arch, all.view(), None).unwrap();
        for i in 0..2 {
            for j in 0..3 {
                let (a, b) = (kt.ntk[[i, j]], ks.ntk[[i, 2 + j]]);
                if a.abs() >= f64::MIN_POSITIVE {
                    assert!(
                        lre(a, b) >= KERNEL_MIN_DIGITS,
                        "{arch:?} sym vs cross NTK[{i},{j}]"
                    );
                }
            }
        }
    }
}

fn bits_eq(a: &Kernels, b: &Kernels) -> bool {
    let eq = |x: &Array2<f64>, y: &Array2<f64>| {
        x.shape() == y.shape() && x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits())
    };
    eq(&a.nngp, &b.nngp) && eq(&a.ntk, &b.ntk)
}

/// Rescaled pairs give the same bits on every path: SIMD dispatch vs portable, 1 vs 2 threads,
/// row blocks (`kernels_rows`), the per-layer path, and the cross kernel K(X, X) vs K(X).
/// 150 rows (tiny, ordinary, zero, mixed) cross the 64-lane batches.
#[test]
fn tiny_inputs_bit_identical_across_paths() {
    use gbml_testbed::kernel::{batch, kernels_per_layer, kernels_rows};
    let u = dirs();
    let scales = [
        1e-105, 1e-300, 1.0, 1e-140, 0.0, 3e-170, 2.0, 1e-40, 5e-320, 1e-95,
    ];
    let mut x = Array2::<f64>::zeros((150, 3));
    for i in 0..150 {
        for l in 0..3 {
            x[[i, l]] = u[[i % 5, l]] * scales[i % 10] * (1.0 + (i / 10) as f64 * 1e-3);
        }
    }
    for arch in archs() {
        let full = kernels(&arch, x.view(), None).unwrap();
        batch::force_portable(true);
        let port = kernels(&arch, x.view(), None).unwrap();
        batch::force_portable(false);
        assert!(bits_eq(&full, &port), "{arch:?}: SIMD vs portable");
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| kernels(&arch, x.view(), None).unwrap());
        assert!(bits_eq(&full, &one), "{arch:?}: thread count");
        let rows = kernels_rows(&arch, x.view(), 37..101).unwrap();
        let sl = Kernels {
            nngp: full.nngp.slice(ndarray::s![37..101, ..]).to_owned(),
            ntk: full.ntk.slice(ndarray::s![37..101, ..]).to_owned(),
        };
        assert!(bits_eq(&rows, &sl), "{arch:?}: row block");
        let layers = kernels_per_layer(&arch, x.view(), None).unwrap();
        assert!(
            bits_eq(layers.last().unwrap(), &full),
            "{arch:?}: per-layer"
        );
        assert!(full.ntk.iter().all(|v| v.is_finite()));
    }
}

#[derive(serde::Deserialize)]
struct TinyFixture {
    cases: Vec<TinyCase>,
}

#[derive(serde::Deserialize)]
struct TinyCase {
    name: String,
    arch: Arch,
    x1: Vec<Vec<f64>>,
    nngp_layers: Vec<Vec<Vec<String>>>,
    ntk_layers: Vec<Vec<Vec<String>>>,
}

/// Every layer of every case (per-layer path) and the final layer of the fused path, against
/// mpmath: ≥ 13 digits on every entry that is a normal number (all but a few of the bias-free
/// ReLU case, which are subnormal and checked to a few subnormal spacings).
#[test]
fn unrescaled_architectures_vs_mpmath_at_1e150() {
    use gbml_testbed::kernel::kernels_per_layer;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kernels/tiny.json");
    let fx: TinyFixture =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read tiny.json")).unwrap();
    assert_eq!(fx.cases.len(), 18);
    let mut worst = f64::INFINITY;
    let mut subnormal = 0;
    for c in &fx.cases {
        let n = c.x1.len();
        let x = Array2::from_shape_fn((n, c.x1[0].len()), |(i, j)| c.x1[i][j]);
        let layers = kernels_per_layer(&c.arch, x.view(), None).unwrap();
        let full = kernels(&c.arch, x.view(), None).unwrap();
        let last = c.arch.depth;
        let mut checks: Vec<(String, &Array2<f64>, &Vec<Vec<String>>)> = Vec::new();
        for (h, k) in layers.iter().enumerate() {
            checks.push((format!("NNGP layer {}", h + 1), &k.nngp, &c.nngp_layers[h]));
            checks.push((format!("NTK layer {}", h + 1), &k.ntk, &c.ntk_layers[h]));
        }
        checks.push(("NNGP fused".into(), &full.nngp, &c.nngp_layers[last]));
        checks.push(("NTK fused".into(), &full.ntk, &c.ntk_layers[last]));
        for (what, ours, refs) in checks {
            for i in 0..n {
                for j in 0..n {
                    let r: f64 = refs[i][j].parse().unwrap();
                    if r.abs() < f64::MIN_POSITIVE {
                        // Subnormal (a nearly antipodal bias-free ReLU NNGP, O(φ³)·1e-300):
                        // within a few subnormal spacings.
                        assert!(
                            (ours[[i, j]] - r).abs() <= 4.0 * f64::MIN_POSITIVE * EPS,
                            "{} {what} [{i},{j}]: {:e} vs subnormal {r:e}",
                            c.name,
                            ours[[i, j]]
                        );
                        subnormal += 1;
                        continue;
                    }
                    let l = lre(ours[[i, j]], r);
                    worst = worst.min(l);
                    assert!(
                        l >= KERNEL_MIN_DIGITS,
                        "{} {what} [{i},{j}]: {:e} vs {r:e} (LRE {l:.2})",
                        c.name,
                        ours[[i, j]]
                    );
                }
            }
        }
    }
    println!("tiny inputs vs mpmath: min LRE {worst:.2}; {subnormal} subnormal entries");
    // Only the bias-free ReLU case has subnormal entries; all others are checked to 13 digits.
    assert!(subnormal < 20, "{subnormal} subnormal reference entries");
}
