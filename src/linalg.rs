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
    let evd = as_faer(&a)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::LinAlg(format!("symmetric eigendecomposition: {e:?}")))?;
    let s = evd.S().column_vector();
    let w = Array1::from_shape_fn(n, |i| s[i]);
    let u = to_ndarray(evd.U());
    Ok((w, u))
}

/// Eigenvalues only (ascending) of a symmetric matrix (lower triangle read).
pub fn sym_eigvals(a: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
    let n = a.nrows();
    if n == 0 {
        return Ok(Array1::zeros(0));
    }
    crate::error::ensure_finite(a, "symmetric eigenvalue input")?;
    let mut w = as_faer(&a)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| Error::LinAlg(format!("symmetric eigenvalues: {e:?}")))?;
    w.sort_by(|x, y| x.partial_cmp(y).unwrap());
    Ok(Array1::from(w))
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
