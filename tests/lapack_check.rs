//! Cross-check of `gbml_testbed::linalg` (faer, plus the power-of-two rescue and the Jacobi
//! fallback) and of the MNK inverses/solves against LAPACK (system OpenBLAS via ndarray-linalg).
//! Compiled only with the optional feature:
//!
//! ```text
//! apt-get install libopenblas-dev
//! OPENBLAS_CORETYPE=Haswell cargo test --release --features lapack-check --test lapack_check
//! ```
//!
//! Both sides are backward stable, so the bounds are the classical ones: eigenvalues agree to
//! c·n·ε·‖A‖_F (Weyl), eigenvectors of an eigenvalue with gap δ to c·n·ε·‖A‖_F/δ (Davis–Kahan),
//! solutions of SPD systems to c·n·ε·κ₂(A) relative (normwise).
#![cfg(feature = "lapack-check")]

use gbml_testbed::kernel::{self, Activation, Arch};
use gbml_testbed::linalg::{self, sym_eig, sym_eig_jacobi, sym_eigvals};
use gbml_testbed::mnk::data::{sine_tasks, SineSpec};
use gbml_testbed::mnk::inner::{inner_operator, RidgeMode, Schedule};
use gbml_testbed::mnk::predict::outer_apply;
use gbml_testbed::mnk::{BaseKernel, Mnk};
use ndarray::{Array1, Array2};
use ndarray_linalg::cholesky::{FactorizeC, InverseC, SolveC};
use ndarray_linalg::{EigValsh, Eigh, UPLO};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPS: f64 = f64::EPSILON;
/// The c of the c·n·ε bounds.
const C: f64 = 8.0;

/// Frobenius norm, scaled so that squares neither overflow (2^1018 entries) nor underflow
/// (subnormal entries).
fn fro(a: &Array2<f64>) -> f64 {
    let m = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if m == 0.0 {
        return 0.0;
    }
    // 1/m overflows for subnormal m: scale by the power of two 2^{-ilogb(m)} instead (exact).
    let e = libm::ilogb(m);
    let s: f64 = a.iter().map(|v| libm::scalbn(*v, -e).powi(2)).sum();
    libm::scalbn(s.sqrt(), e)
}

fn max_abs_diff(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn random_sym(rng: &mut ChaCha8Rng, n: usize) -> Array2<f64> {
    let mut a = Array2::from_shape_fn((n, n), |_| rng.gen_range(-1.0..1.0));
    linalg::symmetrize(&mut a);
    a
}

fn ntk_gram(rng: &mut ChaCha8Rng, n: usize, d: usize, depth: usize) -> Array2<f64> {
    let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-1.0..1.0));
    kernel::kernels(&Arch::new(depth, Activation::Relu), x.view(), None)
        .unwrap()
        .ntk
}

/// The test matrices: (name, A, extra absolute eigenvalue slack from rounding of the entries).
fn cases() -> Vec<(String, Array2<f64>, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1a9ac);
    let mut v = Vec::new();
    for n in [1usize, 2, 7, 60, 200] {
        v.push((format!("random n={n}"), random_sym(&mut rng, n), 0.0));
    }
    v.push((
        "NTK ReLU L=3, 80 points d=5".into(),
        ntk_gram(&mut rng, 80, 5, 3),
        0.0,
    ));
    v.push((
        "NTK ReLU L=1, 40 points d=2".into(),
        ntk_gram(&mut rng, 40, 2, 1),
        0.0,
    ));
    for n in [2usize, 3, 30] {
        let s = 2f64.powi(-530) * 2f64.powi(-530);
        let a = random_sym(&mut rng, n).mapv(|x| x * s);
        // entries rounded to subnormals: |δλ| ≤ ‖δA‖_F ≤ n·2^{−1075}
        v.push((
            format!("all-subnormal n={n}"),
            a,
            n as f64 * 2f64.powi(-1074),
        ));
    }
    v.push((
        "huge 2^1018 n=20".into(),
        random_sym(&mut rng, 20).mapv(|x| x * 2f64.powi(1018)),
        0.0,
    ));
    v
}

#[test]
fn eigenvalues_match_lapack() {
    for (name, a, slack) in cases() {
        let n = a.nrows();
        let wl = a.eigvalsh(UPLO::Lower).expect("LAPACK dsyevd");
        let bound = C * n as f64 * EPS * fro(&a) + slack;
        let ours = [
            ("sym_eigvals", sym_eigvals(a.view()).unwrap()),
            ("sym_eig", sym_eig(a.view()).unwrap().0),
            ("sym_eig_jacobi", sym_eig_jacobi(a.view()).unwrap().0),
        ];
        for (which, w) in ours {
            let d = max_abs_diff(&w, &wl);
            println!(
                "{name}: {which} vs LAPACK: max |Δλ| = {d:.3e} = {:.3} nε‖A‖_F",
                d / (n as f64 * EPS * fro(&a)).max(f64::MIN_POSITIVE)
            );
            assert!(d <= bound, "{name}: {which}: {d:e} > {bound:e}");
        }
    }
}

#[test]
fn eigenvectors_match_lapack() {
    for (name, a, slack) in cases() {
        let n = a.nrows();
        let (wl, ul) = a.eigh(UPLO::Lower).expect("LAPACK dsyevd");
        let (_, u) = sym_eig(a.view()).unwrap();
        let (_, uj) = sym_eig_jacobi(a.view()).unwrap();
        let err = C * n as f64 * EPS * fro(&a) + slack;
        let mut checked = 0;
        for i in 0..n {
            let gap = (0..n)
                .filter(|&j| j != i)
                .map(|j| (wl[i] - wl[j]).abs())
                .fold(f64::INFINITY, f64::min);
            // Davis–Kahan: only meaningful for a well separated eigenvalue.
            if gap < 1e3 * err {
                continue;
            }
            checked += 1;
            for (which, uu) in [("faer", &u), ("Jacobi", &uj)] {
                let dot: f64 = (0..n).map(|r| uu[[r, i]] * ul[[r, i]]).sum();
                let sgn = dot.signum();
                let dist = (0..n)
                    .map(|r| (uu[[r, i]] - sgn * ul[[r, i]]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let bound = 2.0 * err / gap + C * n as f64 * EPS;
                assert!(
                    dist <= bound,
                    "{name}: {which} eigenvector {i}: {dist:e} > {bound:e}"
                );
            }
        }
        println!("{name}: {checked} of {n} eigenvectors well separated and checked");
    }
}

/// `inner_operator` at infinite time with a ridge, (Θ_s + ρI)⁻¹ computed from our
/// eigendecomposition, against LAPACK's Cholesky inverse (dpotrf + dpotri) and solves (dpotrs).
#[test]
fn ridge_inverse_matches_cholesky() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    for (m, rho) in [(10usize, 1e-3), (40, 1e-6), (120, 1e-2)] {
        let k = ntk_gram(&mut rng, m, 3, 2);
        for mode in [RidgeMode::InverseOnly, RidgeMode::Both] {
            let t = inner_operator(k.view(), &Schedule::infinite().with_ridge(rho, mode)).unwrap();
            let kr = &k + &(Array2::<f64>::eye(m) * rho);
            let w = sym_eigvals(kr.view()).unwrap();
            let kappa = w[m - 1] / w[0];
            let tl = kr.invc().expect("LAPACK Cholesky inverse");
            let rel = fro(&(&t - &tl)) / fro(&tl);
            let bound = C * m as f64 * EPS * kappa;
            println!("m={m} ρ={rho:e} {mode:?}: κ = {kappa:.3e}, ‖T − T_LAPACK‖/‖T‖ = {rel:.3e} (bound {bound:.3e})");
            assert!(rel <= bound, "m={m}: {rel:e} > {bound:e}");
            // and the solve with one right-hand side
            let b = Array1::from_shape_fn(m, |_| rng.gen_range(-1.0..1.0));
            let xl = kr.factorizec(UPLO::Lower).unwrap().solvec(&b).unwrap();
            let x = t.dot(&b);
            let rel = (&x - &xl).iter().map(|v| v * v).sum::<f64>().sqrt()
                / xl.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(rel <= bound, "solve m={m}: {rel:e} > {bound:e}");
        }
    }
}

/// The outer infinite-time solve h(Φ)R = (Φ + ρI)⁻¹R of the MNK predictor on a real MNK Gram Φ
/// (sine tasks, ReLU NTK, inner gradient flow), against LAPACK's Cholesky solve.
#[test]
fn mnk_outer_solve_matches_cholesky() {
    let set = sine_tasks(
        SineSpec {
            tasks: 12,
            m: 5,
            n: 5,
            noise: 0.0,
        },
        9,
    )
    .unwrap();
    let mk = Mnk::new(
        BaseKernel::Analytic(Arch::new(2, Activation::Relu)),
        Schedule::flow(0.5),
    );
    let phi = mk.phi(&set).unwrap();
    let p = phi.nrows();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let r = Array2::from_shape_fn((p, 2), |_| rng.gen_range(-1.0..1.0));
    let rho = 1e-4;
    let (h, _, w, _) = outer_apply(
        phi.view(),
        r.view(),
        &Schedule::infinite().with_ridge(rho, RidgeMode::InverseOnly),
    )
    .unwrap();
    let pr = &phi + &(Array2::<f64>::eye(p) * rho);
    let kappa = (w[p - 1] + rho) / (w[0] + rho);
    let f = pr.factorizec(UPLO::Lower).expect("Φ + ρI is SPD");
    let bound = C * p as f64 * EPS * kappa;
    for c in 0..r.ncols() {
        let xl = f.solvec(&r.column(c).to_owned()).unwrap();
        let x = h.column(c).to_owned();
        let rel = (&x - &xl).iter().map(|v| v * v).sum::<f64>().sqrt()
            / xl.iter().map(|v| v * v).sum::<f64>().sqrt();
        println!("MNK Φ (P = {p}), κ(Φ+ρI) = {kappa:.3e}: column {c}: rel. diff {rel:.3e} (bound {bound:.3e})");
        assert!(rel <= bound, "column {c}: {rel:e} > {bound:e}");
    }
}
