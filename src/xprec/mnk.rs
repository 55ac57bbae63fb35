//! Extended-precision inner operator T (MATH.md §2), MNK Φ and cross kernel (§3), predictor
//! (§5) and complexity C (§7): the f64 signatures of [`crate::mnk`] / [`crate::theory`], every
//! intermediate in double-double, results rounded to f64 once.
//!
//! * T = g(Θ') = U diag(g(μ)) Uᵀ from the DD eigendecomposition ([`super::dense::sym_eig`]),
//!   with the spectral functions of [`crate::mnk::inner`] in DD:
//!   steps `λ(1 − (1 − λμ)^τ)/(λμ)` with `1 − (1 − x)^τ = −expm1(τ log1p(−x))`,
//!   flow `−expm1(−sμ)/μ`, infinite `1/(μ + ρ)`, both ridge modes; μ = 0 takes the limit.
//! * Φ_ij = E_i K([X_i; X'_i], [X_j; X'_j]) E_jᵀ, E_i = [I, −A_i], A_i = Θ_in(X_i, X'_i) T_i,
//!   per task pair; the cross kernel is the same formula with the test task's blocks.
//! * F = G_test + Φ(test, train) h(Φ)(Y − G_train), G_i = f0(X_i) + A_i(Y'_i − f0(X'_i)),
//!   h the outer schedule's spectral function on the DD eigendecomposition of Φ.
//! * C = √(Ỹᵀ Φ⁻¹ Ỹ / N) from the DD eigendecomposition of the given Φ.
//!
//! Conditioning: eigenvalues carry absolute error O(n u_dd ‖K‖), so T and h(Φ) (and C) are
//! faithful in f64 for cond ≲ 1e13/n (tested up to cond(Θ') = 3e8, cond(Φ) = 7e6); the singularity and divergence checks are those of the f64 path
//! ([`crate::mnk::Schedule::check_spectrum`]) on the rounded spectrum, so both paths accept the
//! same inputs.

use super::dd::{expm1, log1p, Dd};
use super::dense::{self, Mat};
use super::kernel::kernels_dd;
use crate::error::{ensure_finite, Error, Result};
use crate::mnk::{
    BaseKernel, InnerTime, Mnk, OuterTime, Prediction, RidgeMode, Schedule, Spectrum, TaskSet,
    Time, Variant, F0,
};
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// `1 − (1 − x)^τ` in DD, relatively accurate for small x ≥ 0.
fn one_minus_pow(x: Dd, steps: usize) -> Dd {
    if steps == 0 {
        return Dd::ZERO;
    }
    if x.hi < 1.0 {
        -expm1(log1p(-x).mul_f64(steps as f64))
    } else {
        let base = Dd::ONE - x;
        let mut p = Dd::ONE;
        let (mut b, mut e) = (base, steps);
        while e > 0 {
            if e & 1 == 1 {
                p = p * b;
            }
            b = b.sqr();
            e >>= 1;
        }
        Dd::ONE - p
    }
}

/// `(1 − e^{−sμ})/μ`, limit s at μ = 0.
fn flow_g(s: f64, mu: Dd) -> Dd {
    let x = mu.mul_f64(s);
    if x.is_zero() {
        Dd::from_f64(s)
    } else {
        -expm1(-x) / mu
    }
}

/// `λ(1 − (1 − λμ)^τ)/(λμ) = (1 − (1 − λμ)^τ)/μ`, limit λτ at μ = 0.
fn steps_g(lr: f64, steps: usize, mu: Dd) -> Dd {
    let x = mu.mul_f64(lr);
    if x.is_zero() {
        Dd::prod(lr, steps as f64)
    } else {
        one_minus_pow(x, steps) / mu
    }
}

/// The spectral function g(μ) of a schedule in DD (the formulas of [`Schedule::g`]).
pub fn g_dd(sched: &Schedule, mu: Dd) -> Dd {
    let mu = mu.pos();
    let rho = Dd::from_f64(sched.ridge);
    match (sched.time, sched.ridge_mode) {
        (Time::Infinite, _) => Dd::ONE / (mu + rho),
        (Time::Flow { time }, RidgeMode::Both) => flow_g(time, mu + rho),
        (Time::Steps { lr, steps }, RidgeMode::Both) => steps_g(lr, steps, mu + rho),
        (Time::Flow { time }, RidgeMode::InverseOnly) => {
            if sched.ridge == 0.0 {
                flow_g(time, mu)
            } else {
                -expm1(-mu.mul_f64(time)) / (mu + rho)
            }
        }
        (Time::Steps { lr, steps }, RidgeMode::InverseOnly) => {
            if sched.ridge == 0.0 {
                steps_g(lr, steps, mu)
            } else {
                one_minus_pow(mu.mul_f64(lr), steps) / (mu + rho)
            }
        }
    }
}

/// g(K) for a DD symmetric K, with the f64 path's parameter and spectrum checks.
fn apply_dd(sched: &Schedule, k: &Mat, context: &str) -> Result<Mat> {
    sched.validate()?;
    let m = k.nrows();
    if sched.is_zero() {
        return Ok(Mat::from_elem((m, m), Dd::ZERO));
    }
    let (w, u) = dense::sym_eig(k)?;
    let wf: Array1<f64> = w.iter().map(|v| v.to_f64()).collect();
    sched.check_spectrum(&wf, context)?;
    let t = dense::spectral_apply(&w, &u, |mu| g_dd(sched, mu));
    if t.iter().any(|v| !v.is_finite()) {
        return Err(Error::Singular {
            context: format!("{context} (its inverse overflows)"),
            lambda_min: wf[0],
            lambda_max: wf[m - 1],
            suggested_ridge: (1e-8 * wf[m - 1].abs()).max(f64::MIN_POSITIVE),
        });
    }
    Ok(t)
}

/// The inner-loop operator T = g(Θ') of one support kernel, in DD, rounded (same signature and
/// errors as [`crate::mnk::inner_operator`]).
pub fn inner_operator(theta_s: ArrayView2<f64>, inner: &InnerTime) -> Result<Array2<f64>> {
    let context = "support kernel Θ(X', X')";
    if theta_s.nrows() != theta_s.ncols() {
        return Err(Error::shape(
            context,
            "square matrix",
            format!("{:?}", theta_s.dim()),
        ));
    }
    ensure_finite(theta_s, context)?;
    Ok(dense::to_f64(&apply_dd(
        inner,
        &dense::from_f64(theta_s),
        context,
    )?))
}

/// Outer (NTK) and inner (Θ or Σ) DD kernels over a list of points.
struct KernelDd {
    outer: Mat,
    inner: Mat,
}

fn kernel_dd(mnk: &Mnk, z: ArrayView2<f64>) -> Result<KernelDd> {
    match &mnk.kernel {
        BaseKernel::Analytic(arch) => {
            let k = kernels_dd(arch, z, None)?;
            let inner = match mnk.variant {
                Variant::Maml => k.ntk.clone(),
                Variant::Anil => k.nngp,
            };
            Ok(KernelDd {
                outer: k.ntk,
                inner,
            })
        }
        BaseKernel::Precomputed(_) => {
            // Precomputed entries are exact f64 inputs: pick them with the f64 path.
            let b = mnk.kernel.blocks(z, None)?;
            let inner = dense::from_f64(b.inner(mnk.variant)?.view());
            Ok(KernelDd {
                outer: dense::from_f64(b.ntk.view()),
                inner,
            })
        }
        // A kernel function (e.g. a conv layer list) is evaluated in f64 only: an extended Φ on
        // top of its rounded values would not be faithful for the given inputs.
        BaseKernel::Function(_) => Err(crate::Error::Unsupported(
            "--precision extended with a kernel function (layer list): the extended path covers \
             the analytic fully-connected kernels and precomputed Gram matrices"
                .into(),
        )),
    }
}

/// One task inside a stacked point list: query and support point indices, its adapter A_i.
struct TaskDd {
    q: Vec<usize>,
    s: Vec<usize>,
    a: Mat,
}

/// T_i and A_i of every task of `set`, whose points start at `base` in the point list of `k`
/// (queries of the set first, then its supports).
fn adapters_dd(mnk: &Mnk, set: &TaskSet, k: &KernelDd, base: usize) -> Result<Vec<TaskDd>> {
    let (qo, so, nq) = (set.query_offsets(), set.support_offsets(), set.n_query());
    (0..set.len())
        .into_par_iter()
        .map(|i| {
            let q: Vec<usize> = (base + qo[i]..base + qo[i + 1]).collect();
            let s: Vec<usize> = (base + nq + so[i]..base + nq + so[i + 1]).collect();
            let ks = pick(&k.inner, &s, &s);
            let t = apply_dd(
                &mnk.inner,
                &ks,
                &format!("task {i}: inner kernel on the support"),
            )?;
            let a = dense::matmul(&pick(&k.inner, &q, &s), &t);
            Ok(TaskDd { q, s, a })
        })
        .collect()
}

fn pick(k: &Mat, r: &[usize], c: &[usize]) -> Mat {
    Array2::from_shape_fn((r.len(), c.len()), |(i, j)| k[[r[i], c[j]]])
}

/// Φ block `E_i K([q_i; s_i], [q_j; s_j]) E_jᵀ` = K_qq − A_i K_sq − K_qs A_jᵀ + A_i K_ss A_jᵀ.
fn phi_block(k: &Mat, ti: &TaskDd, tj: &TaskDd) -> Mat {
    let cols: Vec<usize> = tj.q.iter().chain(&tj.s).copied().collect();
    // L = E_i K(·, [q_j; s_j]) = K(q_i, ·) − A_i K(s_i, ·).
    let l = pick(k, &ti.q, &cols) - &dense::matmul(&ti.a, &pick(k, &ti.s, &cols));
    let nj = tj.q.len();
    let lq = l.slice(s![.., ..nj]).to_owned();
    let ls = l.slice(s![.., nj..]).to_owned();
    lq - &dense::matmul_t(&ls, &tj.a)
}

/// The full matrix of blocks Φ(rows tasks, cols tasks); `sym` mirrors the upper block triangle.
fn assemble(k: &Mat, rows: &[TaskDd], cols: &[TaskDd], sym: bool) -> Mat {
    let nr: usize = rows.iter().map(|t| t.q.len()).sum();
    let nc: usize = cols.iter().map(|t| t.q.len()).sum();
    let pairs: Vec<(usize, usize)> = (0..rows.len())
        .flat_map(|i| (if sym { i } else { 0 }..cols.len()).map(move |j| (i, j)))
        .collect();
    let blocks: Vec<Mat> = pairs
        .par_iter()
        .map(|&(i, j)| phi_block(k, &rows[i], &cols[j]))
        .collect();
    let off = |ts: &[TaskDd]| {
        let mut o = vec![0];
        for t in ts {
            o.push(o.last().unwrap() + t.q.len());
        }
        o
    };
    let (ro, co) = (off(rows), off(cols));
    let mut out = Mat::from_elem((nr, nc), Dd::ZERO);
    for (&(i, j), b) in pairs.iter().zip(&blocks) {
        out.slice_mut(s![ro[i]..ro[i + 1], co[j]..co[j + 1]])
            .assign(b);
        if sym && i != j {
            out.slice_mut(s![ro[j]..ro[j + 1], co[i]..co[i + 1]])
                .assign(&b.t());
        }
    }
    out
}

/// Everything of one (train, optional test) evaluation in DD.
struct Pieces {
    k: KernelDd,
    train: Vec<TaskDd>,
    test: Vec<TaskDd>,
}

fn pieces(mnk: &Mnk, train: &TaskSet, test: Option<&TaskSet>) -> Result<Pieces> {
    mnk.kernel.validate()?;
    mnk.inner.validate()?;
    let mut z = train.points();
    if let Some(t) = test {
        if t.d() != train.d() {
            return Err(Error::shape(
                "test tasks vs training tasks",
                format!("d = {}", train.d()),
                format!("d = {}", t.d()),
            ));
        }
        z = ndarray::concatenate(Axis(0), &[z.view(), t.points().view()]).expect("same d");
    }
    let k = kernel_dd(mnk, z.view())?;
    let tr = adapters_dd(mnk, train, &k, 0)?;
    let te = match test {
        Some(t) => adapters_dd(mnk, t, &k, train.n_query() + train.n_support())?,
        None => Vec::new(),
    };
    Ok(Pieces {
        k,
        train: tr,
        test: te,
    })
}

/// The inner operators T_i of every task of `set`, in DD, rounded (the `t` of
/// [`Mnk::adapters`]).
pub fn inner_operators(mnk: &Mnk, set: &TaskSet) -> Result<Vec<Array2<f64>>> {
    mnk.kernel.validate()?;
    let k = kernel_dd(mnk, set.points().view())?;
    let (so, nq) = (set.support_offsets(), set.n_query());
    (0..set.len())
        .map(|i| {
            let s: Vec<usize> = (nq + so[i]..nq + so[i + 1]).collect();
            let t = apply_dd(
                &mnk.inner,
                &pick(&k.inner, &s, &s),
                &format!("task {i}: inner kernel on the support"),
            )?;
            Ok(dense::to_f64(&t))
        })
        .collect()
}

/// The training MNK Φ (Σn × Σn) in DD, rounded, exactly symmetric (as [`Mnk::phi`]).
pub fn phi(mnk: &Mnk, set: &TaskSet) -> Result<Array2<f64>> {
    let p = pieces(mnk, set, None)?;
    Ok(dense::to_f64(&assemble(
        &p.k.outer, &p.train, &p.train, true,
    )))
}

/// The cross kernel Φ(test, train) (Σn̂ × Σn) in DD, rounded (as [`Mnk::cross`]).
pub fn cross(mnk: &Mnk, test: &TaskSet, train: &TaskSet) -> Result<Array2<f64>> {
    let p = pieces(mnk, train, Some(test))?;
    Ok(dense::to_f64(&assemble(
        &p.k.outer, &p.test, &p.train, false,
    )))
}

/// G on every query: `G_i = f0(X_i) + A_i (Y'_i − f0(X'_i))` in DD.
fn g_term_dd(set: &TaskSet, tasks: &[TaskDd], f0: Option<&F0>) -> Result<Mat> {
    if let Some(f) = f0 {
        let want = [(set.n_query(), set.k()), (set.n_support(), set.k())];
        for (a, w) in [&f.query, &f.support].iter().zip(want) {
            if a.dim() != w {
                return Err(Error::shape(
                    "f0",
                    format!("{w:?}"),
                    format!("{:?}", a.dim()),
                ));
            }
            ensure_finite(a.view(), "f0")?;
        }
    }
    let (qo, so) = (set.query_offsets(), set.support_offsets());
    let mut g = Mat::from_elem((set.n_query(), set.k()), Dd::ZERO);
    for (i, (t, td)) in set.tasks().iter().zip(tasks).enumerate() {
        let mut r = dense::from_f64(t.ys.view());
        if let Some(f) = f0 {
            r = r - &dense::from_f64(f.support.slice(s![so[i]..so[i + 1], ..]));
        }
        let mut gi = dense::matmul(&td.a, &r);
        if let Some(f) = f0 {
            gi = gi + &dense::from_f64(f.query.slice(s![qo[i]..qo[i + 1], ..]));
        }
        g.slice_mut(s![qo[i]..qo[i + 1], ..]).assign(&gi);
    }
    Ok(g)
}

/// `(F_test, F_train, spectrum)` from DD pieces: `coef = h(Φ)(Y − G_train)`.
fn predict_dd(
    phi: &Mat,
    cross: &Mat,
    y: &Mat,
    g_train: &Mat,
    g_test: &Mat,
    outer: &OuterTime,
) -> Result<(Mat, Mat, Spectrum)> {
    outer.validate()?;
    let (w, u) = dense::sym_eig(phi)?;
    let wf: Array1<f64> = w.iter().map(|v| v.to_f64()).collect();
    let spec = Spectrum::from_eigvals(&wf);
    let resid = y - g_train;
    if outer.is_zero() {
        return Ok((g_test.clone(), g_train.clone(), spec));
    }
    outer.check_spectrum(&wf, "MNK Φ (training tasks)")?;
    let mut c = dense::matmul(&u.t().to_owned(), &resid);
    for (mut row, &wi) in c.rows_mut().into_iter().zip(&w) {
        let h = g_dd(outer, wi);
        row.mapv_inplace(|v| v * h);
    }
    let coef = dense::matmul(&u, &c);
    let test = g_test + &dense::matmul(cross, &coef);
    let train = g_train + &dense::matmul(phi, &coef);
    Ok((test, train, spec))
}

/// The predictor of MATH.md §5 in DD (as [`Mnk::predict`]): trained on `train` for the outer
/// schedule, evaluated on the queries of `test`; `f0` defaults to 0.
pub fn predict(
    mnk: &Mnk,
    train: &TaskSet,
    test: &TaskSet,
    outer: &OuterTime,
    f0: Option<(&F0, &F0)>,
) -> Result<Prediction> {
    crate::mnk::predict::check_predict_inputs(train, test, outer)?;
    let p = pieces(mnk, train, Some(test))?;
    let g_train = g_term_dd(train, &p.train, f0.map(|f| f.0))?;
    let g_test = g_term_dd(test, &p.test, f0.map(|f| f.1))?;
    let phi = assemble(&p.k.outer, &p.train, &p.train, true);
    let cross = assemble(&p.k.outer, &p.test, &p.train, false);
    let y = dense::from_f64(train.query_y().view());
    let (t, tr, spectrum) = predict_dd(&phi, &cross, &y, &g_train, &g_test, outer)?;
    Ok(Prediction {
        test: dense::to_f64(&t),
        g_test: dense::to_f64(&g_test),
        g_train: dense::to_f64(&g_train),
        train: dense::to_f64(&tr),
        spectrum,
    })
}

/// [`crate::mnk::predict_from`] in DD: `F = G_test + Φ_× h(Φ)(Y − G_train)` from given f64
/// pieces (taken as exact), with the training predictions and Φ's spectrum.
pub fn predict_from(
    phi: ArrayView2<f64>,
    cross: ArrayView2<f64>,
    y_train: ArrayView2<f64>,
    g_train: ArrayView2<f64>,
    g_test: ArrayView2<f64>,
    outer: &OuterTime,
) -> Result<(Array2<f64>, Array2<f64>, Spectrum)> {
    if phi.nrows() != phi.ncols()
        || cross.ncols() != phi.nrows()
        || cross.nrows() != g_test.nrows()
        || y_train.dim() != g_train.dim()
        || g_train.nrows() != phi.nrows()
    {
        return Err(Error::shape(
            "predict_from: Φ (n×n), Φ× (n̂×n), Y and G_train (n×k), G_test (n̂×k)",
            format!("n = {}", phi.nrows()),
            format!(
                "Φ {:?}, Φ× {:?}, Y {:?}, G_train {:?}, G_test {:?}",
                phi.dim(),
                cross.dim(),
                y_train.dim(),
                g_train.dim(),
                g_test.dim()
            ),
        ));
    }
    ensure_finite(phi, "Φ")?;
    ensure_finite(cross, "Φ(test, train)")?;
    ensure_finite(y_train, "Y")?;
    ensure_finite(g_train, "G_train")?;
    ensure_finite(g_test, "G_test")?;
    let (t, tr, spec) = predict_dd(
        &dense::from_f64(phi),
        &dense::from_f64(cross),
        &dense::from_f64(y_train),
        &dense::from_f64(g_train),
        &dense::from_f64(g_test),
        outer,
    )?;
    Ok((dense::to_f64(&t), dense::to_f64(&tr), spec))
}

/// The complexity C = √(tr(Ỹᵀ Φ⁻¹ Ỹ)/N) of MATH.md §7 (as [`crate::theory::complexity`]) from the
/// DD eigendecomposition of the given Φ (taken as exact); the same singularity rule
/// (λ_min ≤ 1e-14 λ_max is an error).
pub fn complexity(phi: ArrayView2<f64>, y_eff: ArrayView2<f64>, n_tasks: usize) -> Result<f64> {
    if n_tasks == 0 {
        return Err(Error::Empty("complexity: N = 0 training tasks".into()));
    }
    let n = phi.nrows();
    if phi.ncols() != n || y_eff.nrows() != n {
        return Err(Error::shape(
            "complexity: Φ (n×n) and Ỹ (n×k)",
            format!("{n}×{n} and {n}×k"),
            format!("{:?} and {:?}", phi.dim(), y_eff.dim()),
        ));
    }
    if n == 0 {
        return Err(Error::Empty("complexity: no training points".into()));
    }
    ensure_finite(phi, "MNK Φ")?;
    ensure_finite(y_eff, "effective labels Ỹ")?;
    let (w, u) = dense::sym_eig(&dense::from_f64(phi))?;
    let (lmin, lmax) = (w[0].to_f64(), w[n - 1].to_f64());
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(x > y)` also rejects NaN
    if !(lmin > 1e-14 * lmax.abs().max(f64::MIN_POSITIVE)) {
        return Err(Error::Singular {
            context: "MNK Φ in the complexity Ỹᵀ Φ⁻¹ Ỹ".into(),
            lambda_min: lmin,
            lambda_max: lmax,
            suggested_ridge: 1e-10 * lmax.abs().max(1.0),
        });
    }
    let c = dense::matmul(&u.t().to_owned(), &dense::from_f64(y_eff));
    let mut q = Dd::ZERO;
    for (row, &wk) in c.rows().into_iter().zip(&w) {
        q = q + row.iter().fold(Dd::ZERO, |a, v| a + v.sqr()) / wk;
    }
    Ok((q / Dd::from_f64(n_tasks as f64)).sqrt().to_f64())
}
