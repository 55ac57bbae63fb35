//! Dense linear algebra on `ndarray` arrays, computed by **faer** through zero-copy views.
//!
//! Everything numerical that is a factorization (symmetric eigendecomposition, Cholesky) or a
//! large product goes through here, so the rest of the crate stays in `ndarray` and one file
//! decides how faer is called. Products use faer's rayon parallelism; the partition of the output
//! is fixed by the shapes, so results are identical run to run on the same machine.

use crate::error::{Error, Result};
use faer::linalg::matmul::matmul as faer_matmul;
use faer::{Accum, MatMut, MatRef, Par, Side};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};

/// True iff every entry is finite. One pass with 8 independent lanes (x·0 is ±0 for finite x and
/// NaN for ±∞/NaN), so it vectorises and runs at memory speed on large Gram matrices.
pub(crate) fn all_finite(a: ArrayView2<f64>) -> bool {
    let Some(v) = a.as_slice_memory_order() else {
        return a.iter().all(|x| x.is_finite());
    };
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l] * 0.0;
        }
    }
    acc.iter().all(|x| !x.is_nan()) && rest.iter().all(|x| x.is_finite())
}

/// Zero-copy faer view of an ndarray matrix (any strides).
pub fn as_faer<'a>(a: &ArrayView2<'a, f64>) -> MatRef<'a, f64> {
    let (r, c) = a.dim();
    let s = a.strides();
    // SAFETY: the view is valid for the lifetime 'a with these shape and strides.
    unsafe { MatRef::from_raw_parts(a.as_ptr(), r, c, s[0], s[1]) }
}

/// Zero-copy mutable faer view of an ndarray matrix.
pub fn as_faer_mut<'a>(a: &'a mut ArrayViewMut2<'_, f64>) -> MatMut<'a, f64> {
    let (r, c) = a.dim();
    let s = a.strides().to_vec();
    // SAFETY: unique borrow of a valid view.
    unsafe { MatMut::from_raw_parts_mut(a.as_mut_ptr(), r, c, s[0], s[1]) }
}

/// Copy a faer matrix into a new row-major ndarray.
pub fn to_ndarray(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

fn par() -> Par {
    if rayon::current_num_threads() > 1 {
        Par::rayon(0)
    } else {
        Par::Seq
    }
}

/// `C = alpha · op(A) · op(B) (+ C if accumulate)`; `op` transposes when the flag is set.
pub fn gemm_into(
    c: &mut Array2<f64>,
    accumulate: bool,
    a: ArrayView2<'_, f64>,
    ta: bool,
    b: ArrayView2<'_, f64>,
    tb: bool,
    alpha: f64,
) {
    let a = if ta { a.reversed_axes() } else { a };
    let b = if tb { b.reversed_axes() } else { b };
    assert_eq!(a.ncols(), b.nrows(), "gemm: inner dimensions differ");
    assert_eq!((a.nrows(), b.ncols()), c.dim(), "gemm: output shape");
    if a.ncols() == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let mut cv = c.view_mut();
    let cf = as_faer_mut(&mut cv);
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer_matmul(cf, acc, as_faer(&a), as_faer(&b), alpha, par());
}

/// A zero `rows × cols` matrix for a large output. Large ones (≥ 4 MiB) are marked for
/// transparent huge pages on Linux (`madvise(MADV_HUGEPAGE)` before the first write): an
/// M × M output otherwise costs one first-touch page fault per 4 KiB page (32768 for a
/// 4000 × 4000 kernel matrix, 17580 for the 3000 × 3000 Φ of 200 tasks), a measurable share
/// of the time. Purely a performance hint; the contents are the same.
pub fn zeros_huge(rows: usize, cols: usize) -> Array2<f64> {
    let len = rows * cols;
    if len * std::mem::size_of::<f64>() < HUGE_MIN {
        return Array2::zeros((rows, cols));
    }
    // Over-allocate by one huge page and start the matrix on a 2 MiB boundary: every huge
    // page of it can then be backed by one transparent huge page, and every row whose
    // length is a multiple of 8 starts on a 64-byte cache line (whole-line streaming
    // stores, [`stream_copy`]). The extra pages are never touched (no memory used).
    let v = vec![0.0f64; len + HUGE_PAD];
    let off = huge_start(v.as_ptr(), len);
    Array1::from(v)
        .slice_move(ndarray::s![off..off + len])
        .into_shape_with_order((rows, cols))
        .expect("contiguous")
}

/// Arrays from this size (bytes) on are allocated by [`zeros_huge`] / [`huge_uninit`].
const HUGE_MIN: usize = 4 << 20;
/// One transparent huge page (2 MiB) in f64.
const HUGE_PAD: usize = (2 << 20) / std::mem::size_of::<f64>();

/// The index of the first 2 MiB boundary at or after `ptr` (at most [`HUGE_PAD`]), with the
/// `len` values from there marked for transparent huge pages (Linux `madvise`; a hint only,
/// the return value is ignored: without THP support nothing changes).
fn huge_start(ptr: *const f64, len: usize) -> usize {
    const HUGE: usize = 2 << 20;
    let addr = ptr as usize;
    let off = (addr.div_ceil(HUGE) * HUGE - addr) / std::mem::size_of::<f64>();
    #[cfg(target_os = "linux")]
    // SAFETY: the caller's allocation holds `off + len` values from `ptr`; MADV_HUGEPAGE only
    // changes how its pages are backed, not their contents.
    unsafe {
        libc::madvise(
            ptr.add(off) as *mut libc::c_void,
            (len * std::mem::size_of::<f64>()).div_ceil(4096) * 4096,
            libc::MADV_HUGEPAGE,
        );
    }
    off
}

/// An uninitialised scratch buffer of `len` values for large per-call arrays, and the
/// index where the values start (2 MiB-aligned and marked for huge pages when the buffer is
/// large, as in [`zeros_huge`]; 0 otherwise). Nothing is written here: the pages are
/// zeroed once, by the kernel, when first written.
pub(crate) fn huge_uninit(len: usize) -> (Vec<std::mem::MaybeUninit<f64>>, usize) {
    if len * std::mem::size_of::<f64>() < HUGE_MIN {
        let mut v = Vec::with_capacity(len);
        // SAFETY: MaybeUninit values need no initialisation.
        unsafe { v.set_len(len) };
        return (v, 0);
    }
    let mut v = Vec::with_capacity(len + HUGE_PAD);
    let off = huge_start(v.as_ptr() as *const f64, len);
    // SAFETY: as above; off + len ≤ capacity.
    unsafe { v.set_len(off + len) };
    (v, off)
}

/// The base pointer of a matrix written by several worker threads at once, each to its own
/// disjoint set of entries (the callers' tile partitions guarantee it; see their SAFETY
/// comments). Only a pointer: the matrix must outlive the parallel pass.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub *mut f64);
// SAFETY: the users (kernel Gram tiles, MNK Φ tiles) write disjoint entries from different
// threads and join before the matrix is read.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

pub(crate) use crate::simd::{stream_copy, stream_fence, stream_transposed, tr4};

/// `A · B`.
pub fn matmul(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm_into(&mut c, false, a, false, b, false, 1.0);
    c
}

/// `A · Bᵀ` (Gram-type product: rows of A against rows of B).
pub fn matmul_t(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut c = Array2::zeros((a.nrows(), b.nrows()));
    gemm_into(&mut c, false, a, false, b, true, 1.0);
    c
}

/// `Aᵀ · B`.
pub fn t_matmul(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut c = Array2::zeros((a.ncols(), b.ncols()));
    gemm_into(&mut c, false, a, true, b, false, 1.0);
    c
}

/// Symmetric eigendecomposition `A = U diag(w) Uᵀ` with eigenvalues ascending.
/// Only the lower triangle of `A` is read.
///
/// Computed by faer's self-adjoint eigensolver (Householder tridiagonalization + implicit QR or
/// divide and conquer) on `A` itself whenever `2^{−500} ≤ max|a_ij| < 2^{500}` (every ordinary
/// input: this path is exactly faer's result). Outside that range, or if faer fails or returns
/// non-finite values, the matrix is rescaled by a power of two, `A_s = 2^{−e} A` with `2^e` the
/// largest power of two ≤ max|a_ij| (exact: eigenvectors unchanged, eigenvalues `w = 2^e w_s`,
/// rounded once), and faer is run on `A_s`; if that fails too, [`sym_eig_jacobi`] decomposes
/// `A_s`. The rescaling is needed for tiny matrices: when every entry is below 2^{−1024}
/// (subnormal), faer 0.22's tridiagonal QR step scales by `1/max|·|`, which overflows to ∞ and
/// turns zeros into NaN (`NoConvergence`, fuzz finding `kernel_inputs/crash-146e…`), and for
/// n = 2 it returned eigenvalues wrong in the first digit (subnormal arithmetic in the
/// reduction). Huge matrices (max|a_ij| ≥ 2^{500}) are rescaled too, as a precaution against
/// overflowing intermediate squares (faer 0.22 was measured correct up to 2^{1018}). A zero
/// matrix gives `w = 0`, `U = I`; an eigenvalue beyond the f64 range (possible only when
/// max|a_ij| > f64::MAX/n) is an `Error::LinAlg`, never ±∞.
pub fn sym_eig(a: ArrayView2<'_, f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(Error::shape(
            "sym_eig",
            format!("square matrix"),
            format!("{:?}", a.dim()),
        ));
    }
    if n == 0 {
        return Ok((Array1::zeros(0), Array2::zeros((0, 0))));
    }
    crate::error::ensure_finite(a, "symmetric eigendecomposition input")?;
    let (w, u) = eig_rescued(a, true, "symmetric eigendecomposition")?;
    Ok((w, u.expect("vectors requested")))
}

/// Eigenvalues only (ascending) of a symmetric matrix (lower triangle read), with the same
/// range check and rescue as [`sym_eig`] (power-of-two rescaling, then [`sym_eig_jacobi`]).
pub fn sym_eigvals(a: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
    let n = a.nrows();
    if n == 0 {
        return Ok(Array1::zeros(0));
    }
    if a.ncols() != n {
        return Err(Error::shape(
            "sym_eigvals",
            format!("square matrix"),
            format!("{:?}", a.dim()),
        ));
    }
    crate::error::ensure_finite(a, "symmetric eigenvalue input")?;
    Ok(eig_rescued(a, false, "symmetric eigenvalues")?.0)
}

/// The solver path shared by [`sym_eig`] and [`sym_eigvals`] (eigenvectors only if `vectors`)
/// on a square, finite, non-empty `a`: faer directly when max|a_ij| is in the safe range;
/// otherwise, or if faer fails, faer on the power-of-two rescaled matrix, then the cyclic
/// Jacobi iteration on it; eigenvalues scaled back exactly. `what` names the operation in
/// errors.
fn eig_rescued(
    a: ArrayView2<'_, f64>,
    vectors: bool,
    what: &str,
) -> Result<(Array1<f64>, Option<Array2<f64>>)> {
    let n = a.nrows();
    let fast = |m: ArrayView2<'_, f64>| -> Result<(Array1<f64>, Option<Array2<f64>>)> {
        if vectors {
            faer_sym_eig(m).map(|(w, u)| (w, Some(u)))
        } else {
            faer_sym_eigvals(m).map(|w| (w, None))
        }
    };
    let first = if in_safe_range(a) {
        match fast(a) {
            Ok(r) => return Ok(r),
            Err(e) => e.to_string(),
        }
    } else {
        "skipped (entries out of range)".to_string()
    };
    let Some((e, s)) = pow2_scaled_lower(a) else {
        return Ok((Array1::zeros(n), vectors.then(|| Array2::eye(n))));
    };
    let (ws, u) = match fast(s.view()) {
        Ok(r) => r,
        Err(_) => jacobi(s.view(), vectors).map_err(|j| {
            Error::LinAlg(format!(
                "{what}: faer: {first}; after rescaling by 2^{}: {j}",
                -e
            ))
        })?,
    };
    let w = ws.mapv(|x| libm::scalbn(x, e));
    if !w.iter().all(|v| v.is_finite()) {
        return Err(Error::LinAlg(format!(
            "{what}: an eigenvalue exceeds the f64 range"
        )));
    }
    Ok((w, u))
}

/// faer's self-adjoint eigendecomposition; an error also when the output is not finite.
fn faer_sym_eig(a: ArrayView2<'_, f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let n = a.nrows();
    let evd = as_faer(&a)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::LinAlg(format!("symmetric eigendecomposition: {e:?}")))?;
    let s = evd.S().column_vector();
    let w = Array1::from_shape_fn(n, |i| s[i]);
    let u = to_ndarray(evd.U());
    if !w.iter().chain(u.iter()).all(|v| v.is_finite()) {
        return Err(Error::LinAlg(
            "symmetric eigendecomposition: non-finite output".into(),
        ));
    }
    Ok((w, u))
}

/// faer's self-adjoint eigenvalues, sorted ascending; an error also when not finite.
fn faer_sym_eigvals(a: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
    let mut w = as_faer(&a)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| Error::LinAlg(format!("symmetric eigenvalues: {e:?}")))?;
    if !w.iter().all(|v| v.is_finite()) {
        return Err(Error::LinAlg(
            "symmetric eigenvalues: non-finite output".into(),
        ));
    }
    w.sort_by(|x, y| x.partial_cmp(y).unwrap());
    Ok(Array1::from(w))
}

/// Range of max|a_ij| (lower triangle) in which faer runs on `A` unscaled: [2^{−500}, 2^{500}).
fn in_safe_range(a: ArrayView2<'_, f64>) -> bool {
    let amax = lower_max_abs(a);
    (2f64.powi(-500)..2f64.powi(500)).contains(&amax)
}

fn lower_max_abs(a: ArrayView2<'_, f64>) -> f64 {
    let mut amax = 0.0f64;
    for i in 0..a.nrows() {
        for j in 0..=i {
            amax = amax.max(a[[i, j]].abs());
        }
    }
    amax
}

/// The full symmetric matrix `2^{−e}·A` built from the lower triangle of `A`, with `2^e` the
/// largest power of two ≤ max_{i≥j}|a_ij| (so the scaled entries lie in [−2, 2) and at least one
/// has magnitude in [1, 2)). Exact: multiplying by a power of two only shifts the exponent, and
/// the result is normal wherever it matters. `None` for the zero matrix.
fn pow2_scaled_lower(a: ArrayView2<'_, f64>) -> Option<(i32, Array2<f64>)> {
    let n = a.nrows();
    let amax = lower_max_abs(a);
    if amax == 0.0 {
        return None;
    }
    let e = libm::ilogb(amax);
    let mut s = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let v = libm::scalbn(a[[i, j]], -e);
            s[[i, j]] = v;
            s[[j, i]] = v;
        }
    }
    Some((e, s))
}

/// Maximum number of sweeps of [`sym_eig_jacobi`] (it converges quadratically; 6–10 sweeps are
/// typical for n ≤ 1000).
pub const JACOBI_MAX_SWEEPS: usize = 100;

/// Symmetric eigendecomposition `A = U diag(w) Uᵀ` (eigenvalues ascending, lower triangle read)
/// by the **cyclic Jacobi method** (Golub & Van Loan, *Matrix Computations* 4th ed., Alg. 8.5.3;
/// Rutishauser's update). Slow (O(n³) per sweep) but robust and accurate; the last resort of
/// [`sym_eig`] / [`sym_eigvals`].
///
/// A sweep visits every pair p < q in row order. When the pair is not yet negligible, i.e.
/// `|a_pq| > max(ε·√(|a_pp|·|a_qq|), 2^{−1022})` (the Demmel–Veselić threshold, which keeps
/// small eigenvalues of definite matrices to high relative accuracy), the rotation
/// `J = [[c, s], [−s, c]]` in the (p, q) plane with
///
/// `θ = (a_qq − a_pp)/(2 a_pq)`, `t = sign(θ)/(|θ| + √(1 + θ²))` (sign(0) = 1), `c = 1/√(1 + t²)`, `s = t·c`
///
/// annihilates `a_pq` in `A ← JᵀAJ`:
/// `a_pp ← a_pp − t·a_pq`, `a_qq ← a_qq + t·a_pq`, `a_pq = a_qp ← 0`, and for r ≠ p, q:
/// `a_rp ← c·a_rp − s·a_rq`, `a_rq ← s·a_rp + c·a_rq`; the eigenvectors accumulate `U ← U·J`
/// (same column update). Each rotation lowers off(A)² = Σ_{i≠j} a_ij² by exactly 2·a_pq², and the
/// method stops after the first sweep without a rotation; then `w = diag(A)`. `√(1 + θ²)` is
/// computed as `hypot(1, θ)` so that |θ| up to f64::MAX does not overflow.
///
/// The input is first rescaled exactly by a power of two as in [`sym_eig`] (so θ and the
/// updates cannot overflow), and the eigenvalues scaled back.
///
/// Errors: non-square or non-finite input; no convergence within [`JACOBI_MAX_SWEEPS`] sweeps;
/// an eigenvalue beyond the f64 range.
pub fn sym_eig_jacobi(a: ArrayView2<'_, f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(Error::shape(
            "sym_eig_jacobi",
            format!("square matrix"),
            format!("{:?}", a.dim()),
        ));
    }
    crate::error::ensure_finite(a, "Jacobi eigensolver input")?;
    let Some((e, s)) = pow2_scaled_lower(a) else {
        return Ok((Array1::zeros(n), Array2::eye(n)));
    };
    let (w, u) = jacobi(s.view(), true)?;
    let w = w.mapv(|x| libm::scalbn(x, e));
    if !w.iter().all(|v| v.is_finite()) {
        return Err(Error::LinAlg(
            "Jacobi eigensolver: an eigenvalue exceeds the f64 range".into(),
        ));
    }
    Ok((w, u.expect("vectors requested")))
}

/// The cyclic Jacobi iteration of [`sym_eig_jacobi`]; eigenvectors only if `vectors`.
fn jacobi(a: ArrayView2<'_, f64>, vectors: bool) -> Result<(Array1<f64>, Option<Array2<f64>>)> {
    let n = a.nrows();
    let mut m = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            m[[i, j]] = a[[i, j]];
            m[[j, i]] = a[[i, j]];
        }
    }
    let mut u = vectors.then(|| Array2::<f64>::eye(n));
    let mut converged = n <= 1;
    for _sweep in 0..JACOBI_MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[[p, q]];
                let (app, aqq) = (m[[p, p]], m[[q, q]]);
                let thresh =
                    (f64::EPSILON * (app.abs().sqrt() * aqq.abs().sqrt())).max(f64::MIN_POSITIVE);
                if apq.abs() <= thresh {
                    continue;
                }
                rotated = true;
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta.is_finite() {
                    let sgn = if theta < 0.0 { -1.0 } else { 1.0 };
                    sgn / (theta.abs() + 1f64.hypot(theta))
                } else {
                    0.0 // |θ| overflowed: the rotation is the identity to working precision
                };
                let c = 1.0 / 1f64.hypot(t);
                let s = t * c;
                m[[p, p]] = app - t * apq;
                m[[q, q]] = aqq + t * apq;
                m[[p, q]] = 0.0;
                m[[q, p]] = 0.0;
                for r in 0..n {
                    if r == p || r == q {
                        continue;
                    }
                    let (arp, arq) = (m[[r, p]], m[[r, q]]);
                    let np = c * arp - s * arq;
                    let nq = s * arp + c * arq;
                    m[[r, p]] = np;
                    m[[p, r]] = np;
                    m[[r, q]] = nq;
                    m[[q, r]] = nq;
                }
                if let Some(u) = u.as_mut() {
                    for r in 0..n {
                        let (urp, urq) = (u[[r, p]], u[[r, q]]);
                        u[[r, p]] = c * urp - s * urq;
                        u[[r, q]] = s * urp + c * urq;
                    }
                }
            }
        }
        if !rotated {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::LinAlg(format!(
            "Jacobi eigensolver: no convergence in {JACOBI_MAX_SWEEPS} sweeps (n = {n})"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[[i, i]].total_cmp(&m[[j, j]]));
    let w = Array1::from_shape_fn(n, |k| m[[order[k], order[k]]]);
    let u = u.map(|u| Array2::from_shape_fn((n, n), |(r, k)| u[[r, order[k]]]));
    if !w.iter().all(|v| v.is_finite()) {
        return Err(Error::LinAlg(
            "Jacobi eigensolver: non-finite eigenvalues".into(),
        ));
    }
    Ok((w, u))
}

/// Apply a spectral function to a symmetric matrix: `U diag(g(w)) Uᵀ`.
pub fn sym_apply(w: &Array1<f64>, u: &Array2<f64>, g: impl Fn(f64) -> f64) -> Array2<f64> {
    let gw = w.mapv(g);
    let mut ug = u.clone();
    for (mut col, &s) in ug.columns_mut().into_iter().zip(gw.iter()) {
        col *= s;
    }
    matmul_t(ug.view(), u.view())
}

/// Symmetrize in place: `A ← (A + Aᵀ)/2`.
pub fn symmetrize(a: &mut Array2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = v;
            a[[j, i]] = v;
        }
    }
}
