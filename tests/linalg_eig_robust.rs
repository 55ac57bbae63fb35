//! `linalg::sym_eig` / `sym_eigvals` robustness (fuzz finding `kernel_inputs/crash-146e…`,
//! docs/fuzzing.md) and the cyclic Jacobi fallback `linalg::sym_eig_jacobi`.
//!
//! Reference values: backward-error bounds (reconstruction ‖A − UΛUᵀ‖_F ≤ c·n·ε·‖A‖_F and
//! orthogonality ‖UᵀU − I‖_F ≤ c·n·ε, both properties of a backward-stable solver), Weyl's
//! inequality between two independent solvers (faer's tridiagonal QR / divide and conquer vs
//! Jacobi), and closed forms (diagonal matrices; exact power-of-two scaling).

use gbml_testbed::kernel::{self, Activation, Arch, Parameterization};
use gbml_testbed::linalg::{self, sym_eig, sym_eig_jacobi, sym_eigvals};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPS: f64 = f64::EPSILON;
/// Constant c of the c·n·ε bounds (LAPACK's test suite uses thresholds of this order).
const C: f64 = 4.0;

fn fro(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn random_sym(rng: &mut ChaCha8Rng, n: usize) -> Array2<f64> {
    let mut a = Array2::from_shape_fn((n, n), |_| rng.gen_range(-1.0..1.0));
    linalg::symmetrize(&mut a);
    a
}

/// A PSD Gram matrix with eigenvalues spread over `decades` decades (graded spectrum).
fn graded_psd(rng: &mut ChaCha8Rng, n: usize, decades: f64) -> Array2<f64> {
    let q = random_orthogonal(rng, n);
    let lam = Array1::from_shape_fn(n, |i| {
        10f64.powf(-decades * i as f64 / (n.max(2) - 1) as f64)
    });
    let mut a = linalg::sym_apply(&lam, &q, |x| x);
    linalg::symmetrize(&mut a);
    a
}

fn random_orthogonal(rng: &mut ChaCha8Rng, n: usize) -> Array2<f64> {
    let a = random_sym(rng, n);
    sym_eig(a.view()).unwrap().1
}

/// (‖A − UΛUᵀ‖_F / ‖A‖_F, ‖UᵀU − I‖_F), both in units of n·ε.
fn residuals(a: &Array2<f64>, w: &Array1<f64>, u: &Array2<f64>) -> (f64, f64) {
    let n = a.nrows();
    let rec = linalg::sym_apply(w, u, |x| x);
    let r = fro(&(a - &rec)) / fro(a).max(f64::MIN_POSITIVE);
    let o = fro(&(linalg::t_matmul(u.view(), u.view()) - Array2::<f64>::eye(n)));
    let ne = n as f64 * EPS;
    (r / ne, o / ne)
}

fn assert_ascending(w: &Array1<f64>) {
    assert!(
        w.iter().zip(w.iter().skip(1)).all(|(a, b)| a <= b),
        "not ascending: {w}"
    );
}

#[test]
fn jacobi_is_backward_stable_and_agrees_with_faer() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261128);
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for &n in &[1usize, 2, 3, 5, 8, 17, 40, 90] {
        for kind in 0..3 {
            let a = match kind {
                0 => random_sym(&mut rng, n),
                1 => graded_psd(&mut rng, n, 12.0),
                _ => {
                    // repeated eigenvalues: a rank-2 matrix plus a multiple of I
                    let x = Array2::from_shape_fn((n, 2), |_| rng.gen_range(-1.0..1.0));
                    let mut a = linalg::matmul_t(x.view(), x.view()) + Array2::<f64>::eye(n);
                    linalg::symmetrize(&mut a);
                    a
                }
            };
            let (wj, uj) = sym_eig_jacobi(a.view()).unwrap();
            let (wf, uf) = sym_eig(a.view()).unwrap();
            assert_ascending(&wj);
            let (rj, oj) = residuals(&a, &wj, &uj);
            let (rf, of) = residuals(&a, &wf, &uf);
            assert!(
                rj <= C && oj <= C,
                "Jacobi n={n} kind={kind}: residual {rj:.2} nε, orthogonality {oj:.2} nε"
            );
            assert!(
                rf <= C && of <= C,
                "faer n={n} kind={kind}: residual {rf:.2} nε, orthogonality {of:.2} nε"
            );
            // Weyl: both are exact eigenvalues of A + E with ‖E‖₂ ≤ C·n·ε·‖A‖_F.
            let d = (&wj - &wf).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let dn = d / (n as f64 * EPS * fro(&a));
            assert!(
                dn <= 2.0 * C,
                "n={n} kind={kind}: |w_Jacobi − w_faer| = {dn:.2} nε‖A‖"
            );
            // eigenvalues-only paths agree with the decompositions
            let wvals = sym_eigvals(a.view()).unwrap();
            assert_eq!(wvals.len(), n);
            assert!((&wvals - &wf)
                .iter()
                .all(|v| v.abs() <= 2.0 * C * n as f64 * EPS * fro(&a)));
            worst = (worst.0.max(rj), worst.1.max(oj), worst.2.max(dn));
        }
    }
    println!(
        "Jacobi worst: residual {:.3} nε‖A‖, orthogonality {:.3} nε; max |w_J − w_faer| {:.3} nε‖A‖",
        worst.0, worst.1, worst.2
    );
}

/// Jacobi keeps small eigenvalues of a graded PD matrix to high relative accuracy
/// (Demmel–Veselić): A = D·B·D with B well conditioned, D = diag(10^{-k}).
#[test]
fn jacobi_relative_accuracy_on_graded_pd() {
    let n = 6;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = Array2::from_shape_fn((n, n), |_| rng.gen_range(-1.0..1.0));
    let mut b = linalg::matmul_t(x.view(), x.view()) + 3.0 * Array2::<f64>::eye(n);
    linalg::symmetrize(&mut b);
    // D = diag(2^{-10k}): D·B·D is exact in floating point.
    let d: Vec<f64> = (0..n).map(|k| 2f64.powi(-10 * k as i32)).collect();
    let a = Array2::from_shape_fn((n, n), |(i, j)| d[i] * b[[i, j]] * d[j]);
    let (w, u) = sym_eig_jacobi(a.view()).unwrap();
    // Each eigenpair's Rayleigh quotient / det check: product of eigenvalues = det(A) =
    // det(B)·Π d_k², with det(B) = Π eig(B) (B well conditioned, faer is accurate there).
    let wb = sym_eigvals(b.view()).unwrap();
    let log_det_a: f64 =
        wb.iter().map(|v| v.ln()).sum::<f64>() + d.iter().map(|v| 2.0 * v.ln()).sum::<f64>();
    let log_det_j: f64 = w.iter().map(|v| v.ln()).sum();
    assert!(
        w.iter().all(|&v| v > 0.0),
        "PD matrix got a non-positive eigenvalue: {w}"
    );
    assert!(
        (log_det_a - log_det_j).abs() <= 1e3 * EPS * n as f64,
        "log det: {log_det_a} vs {log_det_j}"
    );
    let (r, o) = residuals(&a, &w, &u);
    assert!(r <= C && o <= C, "residual {r}, orthogonality {o}");
}

/// The fuzz reproducer: ABReLU, depth 0, standard parameterization (width 64), 3 points in d = 4
/// with one entry −2.14e-159 and the rest 0. Its NNGP and NTK Grams are diag(a, 0, 0) with a
/// subnormal (a ≈ 1.1e-318 and 4.6e-318), on which faer 0.22 reports NoConvergence.
#[test]
fn fuzz_reproducer_subnormal_gram() {
    let bytes = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "fuzz/artifacts-regressions/kernel_inputs/crash-146e11461127d5656c70316720d8188eb518ad7c",
    ))
    .unwrap();
    let v = f64::from_le_bytes(bytes[11..19].try_into().unwrap());
    assert!(
        (v + 2.1441556181912298e-159).abs() < 1e-170,
        "decoded input {v:e}"
    );
    let mut x = Array2::<f64>::zeros((3, 4));
    x[[0, 0]] = v;
    let arch = Arch::new(0, Activation::AbRelu { a: -0.5, b: 2.0 })
        .with_sigma_w(1.0)
        .with_sigma_b(None)
        .with_parameterization(Parameterization::Standard)
        .with_width(64);
    let k = kernel::kernels(&arch, x.view(), None).unwrap();
    for m in [&k.nngp, &k.ntk] {
        let a = m[[0, 0]];
        assert!(
            a > 0.0 && a < f64::MIN_POSITIVE,
            "expected a subnormal Gram entry, got {a:e}"
        );
        assert!(
            m.iter().enumerate().all(|(i, &x)| i == 0 || x == 0.0),
            "{m:e}"
        );
        // closed form: eigenvalues {0, 0, a}, exactly
        let w = sym_eigvals(m.view()).unwrap();
        assert_eq!(w.to_vec(), vec![0.0, 0.0, a]);
        let (w2, u) = sym_eig(m.view()).unwrap();
        assert_eq!(w2.to_vec(), vec![0.0, 0.0, a]);
        let o = fro(&(linalg::t_matmul(u.view(), u.view()) - Array2::<f64>::eye(3)));
        assert!(o <= C * 3.0 * EPS, "orthogonality {o:e}");
        assert_eq!(u[[0, 2]].abs(), 1.0, "eigenvector of a must be ±e_0: {u}");
    }
    // and the fuzz target itself (PSD invariant) accepts it
    gbml_testbed::io::fuzz_targets::run("kernel_inputs", &bytes);
}

/// Every matrix with all entries subnormal (faer 0.22 alone: `NoConvergence` for n ≥ 3 and,
/// for n = 2, eigenvalues (−0.090, −0.090)·2^{−1060} instead of (−0.64, 0.46)·2^{−1060}): eigenvalues equal 2^{−1060}·eig(B) up to the
/// rounding of the entries into subnormals (each |δa_ij| ≤ 2^{−1075}, so by Weyl
/// |δλ| ≤ ‖δA‖_F ≤ n·2^{−1075}) plus the solver's backward error.
#[test]
fn all_subnormal_matrices() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let scale = 2f64.powi(-530) * 2f64.powi(-530); // 2^-1060, a subnormal
    for &n in &[2usize, 3, 6, 25, 70] {
        let b = random_sym(&mut rng, n);
        let a = b.mapv(|v| v * scale);
        assert!(a.iter().all(|v| v.abs() < f64::MIN_POSITIVE));
        let wb = sym_eigvals(b.view()).unwrap();
        let bound = n as f64 * 2f64.powi(-1074) + 2.0 * C * n as f64 * EPS * fro(&b) * scale;
        for w in [sym_eigvals(a.view()).unwrap(), sym_eig(a.view()).unwrap().0] {
            let d = (&w - &wb.mapv(|v| v * scale))
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(d <= bound, "n={n}: eigenvalue error {d:e} > {bound:e}");
        }
        let (_, u) = sym_eig(a.view()).unwrap();
        let o = fro(&(linalg::t_matmul(u.view(), u.view()) - Array2::<f64>::eye(n)));
        assert!(o <= C * n as f64 * EPS, "n={n}: orthogonality {o:e}");
    }
    // diagonal closed forms, including the smallest subnormal and a multiple of I
    for s in [f64::MIN_POSITIVE / 2.0, 1e-310, 5e-324] {
        let mut a = Array2::<f64>::zeros((4, 4));
        a[[2, 2]] = s;
        a[[0, 0]] = -s;
        assert_eq!(
            sym_eigvals(a.view()).unwrap().to_vec(),
            vec![-s, 0.0, 0.0, s]
        );
        let a = Array2::<f64>::eye(3) * s;
        assert_eq!(sym_eig(a.view()).unwrap().0.to_vec(), vec![s; 3]);
    }
}

/// Huge entries (up to 1e307): the result is still finite and correct (power-of-two scaling).
#[test]
fn huge_entries() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for &n in &[3usize, 10, 40] {
        let b = random_sym(&mut rng, n);
        let s = 2f64.powi(1018);
        let a = b.mapv(|v| v * s);
        let wb = sym_eigvals(b.view()).unwrap();
        let bound = 2.0 * C * n as f64 * EPS * fro(&b);
        let (w, u) = sym_eig(a.view()).unwrap();
        for w in [sym_eigvals(a.view()).unwrap(), w] {
            assert!(w.iter().all(|v| v.is_finite()));
            let d = (&w.mapv(|v| v / s) - &wb)
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(d <= bound, "n={n}: {d:e} > {bound:e}");
        }
        let o = fro(&(linalg::t_matmul(u.view(), u.view()) - Array2::<f64>::eye(n)));
        assert!(o <= C * n as f64 * EPS, "n={n}: orthogonality {o:e}");
    }
}

/// The fast path is unchanged: on an ordinary matrix `sym_eig` returns faer's result bit for bit.
#[test]
fn normal_input_takes_the_faer_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for &n in &[1usize, 4, 33, 150] {
        let a = random_sym(&mut rng, n);
        let fa = linalg::as_faer(&a.view());
        let evd = fa.self_adjoint_eigen(faer::Side::Lower).unwrap();
        let (w, u) = sym_eig(a.view()).unwrap();
        for i in 0..n {
            assert_eq!(w[i].to_bits(), evd.S().column_vector()[i].to_bits());
            for j in 0..n {
                assert_eq!(u[[i, j]].to_bits(), evd.U()[(i, j)].to_bits());
            }
        }
        let mut wv = fa.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        wv.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert_eq!(sym_eigvals(a.view()).unwrap().to_vec(), wv);
    }
}

/// Eigenvalues beyond the f64 range: a typed error, never ±∞ (here λ = 2·f64::MAX·(1 ± ...)).
#[test]
fn eigenvalue_overflow_is_an_error() {
    let a = Array2::from_elem((2, 2), f64::MAX);
    assert!(matches!(
        sym_eig(a.view()),
        Err(gbml_testbed::Error::LinAlg(_))
    ));
    assert!(matches!(
        sym_eigvals(a.view()),
        Err(gbml_testbed::Error::LinAlg(_))
    ));
    assert!(matches!(
        sym_eig_jacobi(a.view()),
        Err(gbml_testbed::Error::LinAlg(_))
    ));
    // but a matrix of huge entries whose eigenvalues fit is fine: diag(MAX, −MAX)
    let mut b = Array2::<f64>::zeros((2, 2));
    b[[0, 0]] = f64::MAX;
    b[[1, 1]] = -f64::MAX;
    assert_eq!(
        sym_eigvals(b.view()).unwrap().to_vec(),
        vec![-f64::MAX, f64::MAX]
    );
}

#[test]
fn degenerate_and_bad_shapes() {
    let z = Array2::<f64>::zeros((3, 3));
    let (w, u) = sym_eig_jacobi(z.view()).unwrap();
    assert_eq!(w.to_vec(), vec![0.0; 3]);
    assert_eq!(u, Array2::<f64>::eye(3));
    let one = Array2::from_elem((1, 1), -2.5);
    assert_eq!(sym_eig_jacobi(one.view()).unwrap().0.to_vec(), vec![-2.5]);
    let rect = Array2::<f64>::zeros((2, 3));
    assert!(sym_eig_jacobi(rect.view()).is_err());
    assert!(sym_eigvals(rect.view()).is_err());
    let mut nan = Array2::<f64>::eye(2);
    nan[[1, 0]] = f64::NAN;
    assert!(matches!(
        sym_eig_jacobi(nan.view()),
        Err(gbml_testbed::Error::NonFinite { .. })
    ));
}
