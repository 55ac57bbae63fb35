//! Dense double-double linear algebra for the extended-precision MNK: products and the
//! symmetric eigendecomposition `K = U diag(w) Uᵀ`.
//!
//! Eigendecomposition (why Jacobi): the f64 eigenvectors U₀ of fl(K) ([`crate::linalg::sym_eig`])
//! are re-orthonormalised in DD (modified Gram–Schmidt, twice), B = Qᵀ K Q is formed in DD
//! (a similarity, off-diagonal entries O(ε‖K‖)), and cyclic Jacobi in DD diagonalises B in a
//! few sweeps (quadratic convergence from a nearly diagonal start). Jacobi with the relative
//! threshold |b_pq| ≤ u_dd·√(b_pp b_qq) computes the eigenvalues of a PSD matrix to high
//! *relative* accuracy (Demmel–Veselić), so g(K) = U diag(g(w)) Uᵀ is accurate also where
//! g(w) = 1/w is large: the error of T = g(K) is O(cond(K)·u_dd) relative in norm, i.e.
//! faithful in f64 for cond(K) ≲ 1e14 (the f64 path's own singularity limit is 1e14/m).

use super::dd::Dd;
use crate::error::Result;
use crate::linalg;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// A double-double matrix.
pub type Mat = Array2<Dd>;

/// Exact conversion of an f64 matrix.
pub fn from_f64(a: ArrayView2<f64>) -> Mat {
    a.mapv(Dd::from_f64)
}

/// Rounded to f64.
pub fn to_f64(a: &Mat) -> Array2<f64> {
    a.mapv(Dd::to_f64)
}

/// The f64 hi parts (for the f64 starting points).
fn hi(a: &Mat) -> Array2<f64> {
    a.mapv(|v| v.hi)
}

/// `A·B` in DD (rows in parallel).
pub fn matmul(a: &Mat, b: &Mat) -> Mat {
    let (n, k) = a.dim();
    assert_eq!(k, b.nrows(), "matmul: inner dimensions");
    let m = b.ncols();
    let rows: Vec<Vec<Dd>> = (0..n).into_par_iter().map(|i| row(a, b, i)).collect();
    Array2::from_shape_fn((n, m), |(i, j)| rows[i][j])
}

/// Row i of `A·B`. Without the `fma` target feature every DD product's `f64::mul_add` is a libm
/// call; on x86-64 CPUs with AVX2 and FMA the same code runs compiled for them (FMA is exactly
/// rounded either way: the same bits).
fn row(a: &Mat, b: &Mat, i: usize) -> Vec<Dd> {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { row_fma(a, b, i) };
        }
    }
    row_generic(a, b, i)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_fma(a: &Mat, b: &Mat, i: usize) -> Vec<Dd> {
    row_generic(a, b, i)
}

#[inline(always)]
fn row_generic(a: &Mat, b: &Mat, i: usize) -> Vec<Dd> {
    let k = a.ncols();
    (0..b.ncols())
        .map(|j| (0..k).fold(Dd::ZERO, |acc, l| acc + a[[i, l]] * b[[l, j]]))
        .collect()
}

/// `A·Bᵀ` in DD.
pub fn matmul_t(a: &Mat, b: &Mat) -> Mat {
    matmul(a, &b.t().to_owned())
}

/// Symmetric eigendecomposition of a DD matrix (lower triangle used): ascending eigenvalues w
/// and orthonormal eigenvectors U (columns), see the module docs.
pub fn sym_eig(k: &Mat) -> Result<(Vec<Dd>, Mat)> {
    let n = k.nrows();
    if n == 0 {
        return Ok((Vec::new(), Mat::from_elem((0, 0), Dd::ZERO)));
    }
    let ks = Array2::from_shape_fn((n, n), |(i, j)| if i >= j { k[[i, j]] } else { k[[j, i]] });
    let (_, u0) = linalg::sym_eig(hi(&ks).view())?;
    let q = orthonormalise(from_f64(u0.view()));
    let mut b = matmul(&q.t().to_owned(), &matmul(&ks, &q));
    let mut v = Mat::from_elem((n, n), Dd::ZERO);
    for i in 0..n {
        v[[i, i]] = Dd::ONE;
    }
    jacobi(&mut b, &mut v);
    let u = matmul(&q, &v);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &c| {
        b[[a, a]]
            .partial_cmp(&b[[c, c]])
            .expect("finite eigenvalues")
    });
    let w = order.iter().map(|&i| b[[i, i]]).collect();
    let us = Array2::from_shape_fn((n, n), |(r, c)| u[[r, order[c]]]);
    Ok((w, us))
}

/// Modified Gram–Schmidt on the columns, applied twice ("twice is enough").
fn orthonormalise(mut q: Mat) -> Mat {
    let n = q.ncols();
    for _ in 0..2 {
        for j in 0..n {
            for i in 0..j {
                let dot = (0..q.nrows()).fold(Dd::ZERO, |a, r| a + q[[r, i]] * q[[r, j]]);
                for r in 0..q.nrows() {
                    q[[r, j]] = q[[r, j]] - dot * q[[r, i]];
                }
            }
            let nrm = (0..q.nrows())
                .fold(Dd::ZERO, |a, r| a + q[[r, j]].sqr())
                .sqrt();
            for r in 0..q.nrows() {
                q[[r, j]] = q[[r, j]] / nrm;
            }
        }
    }
    q
}

/// Cyclic Jacobi on the symmetric B, accumulating the rotations in V, until every off-diagonal
/// entry satisfies |b_pq| ≤ 1e-33·√|b_pp b_qq| (or 30 sweeps).
fn jacobi(b: &mut Mat, v: &mut Mat) {
    let n = b.nrows();
    for _ in 0..30 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let bpq = b[[p, q]];
                let scale = (b[[p, p]] * b[[q, q]]).abs().sqrt().hi;
                if bpq.hi.abs() <= 1e-33 * scale || bpq.is_zero() {
                    continue;
                }
                rotated = true;
                let theta = (b[[q, q]] - b[[p, p]]) / bpq.mul_f64(2.0);
                let t = Dd::ONE / (theta.abs() + (theta.sqr().add_f64(1.0)).sqrt());
                let t = if theta.hi < 0.0 { -t } else { t };
                let c = Dd::ONE / t.sqr().add_f64(1.0).sqrt();
                let s = t * c;
                rotate(b, v, p, q, c, s, t);
            }
        }
        if !rotated {
            return;
        }
    }
}

/// Apply the Jacobi rotation (c, s) in the (p, q) plane: B ← JᵀBJ, V ← VJ.
fn rotate(b: &mut Mat, v: &mut Mat, p: usize, q: usize, c: Dd, s: Dd, t: Dd) {
    let n = b.nrows();
    let bpq = b[[p, q]];
    let (bpp, bqq) = (b[[p, p]], b[[q, q]]);
    for r in 0..n {
        if r != p && r != q {
            let (brp, brq) = (b[[r, p]], b[[r, q]]);
            let np = c * brp - s * brq;
            let nq = s * brp + c * brq;
            b[[r, p]] = np;
            b[[p, r]] = np;
            b[[r, q]] = nq;
            b[[q, r]] = nq;
        }
    }
    b[[p, p]] = bpp - t * bpq;
    b[[q, q]] = bqq + t * bpq;
    b[[p, q]] = Dd::ZERO;
    b[[q, p]] = Dd::ZERO;
    for r in 0..n {
        let (vp, vq) = (v[[r, p]], v[[r, q]]);
        v[[r, p]] = c * vp - s * vq;
        v[[r, q]] = s * vp + c * vq;
    }
}

/// `U diag(f(w)) Uᵀ`, exactly symmetric.
pub fn spectral_apply(w: &[Dd], u: &Mat, f: impl Fn(Dd) -> Dd) -> Mat {
    let fw: Vec<Dd> = w.iter().map(|&x| f(x)).collect();
    let n = u.nrows();
    let mut out = Mat::from_elem((n, n), Dd::ZERO);
    for i in 0..n {
        for j in 0..=i {
            let v = (0..n).fold(Dd::ZERO, |a, l| a + u[[i, l]] * fw[l] * u[[j, l]]);
            out[[i, j]] = v;
            out[[j, i]] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eigenvalues of K = Q diag(25, 25e-10) Qᵀ, Q = [[3, −4], [4, 3]]/5 (entries exact in DD:
    /// [[9a + 16b, 12(a − b)], [12(a − b), 16a + 9b]]), cond 1e10, to DD relative accuracy.
    #[test]
    fn eig_of_ill_conditioned_rotation() {
        let (a, b) = (Dd::ONE, Dd::from_f64(1e-10));
        let off = (a - b).mul_f64(12.0);
        let k = Array2::from_shape_vec(
            (2, 2),
            vec![
                a.mul_f64(9.0) + b.mul_f64(16.0),
                off,
                off,
                a.mul_f64(16.0) + b.mul_f64(9.0),
            ],
        )
        .unwrap();
        let (a, b) = (a.mul_f64(25.0), b.mul_f64(25.0));
        let (w, u) = sym_eig(&k).unwrap();
        let rel = |x: Dd, y: Dd| ((x - y).to_f64() / y.to_f64()).abs();
        // Absolute accuracy u_dd·‖K‖: relative cond·u_dd ≈ 1e-21 on the small eigenvalue.
        assert!(
            rel(w[0], b) < 1e-20,
            "{:?} vs {:?}: {:e}",
            w[0],
            b,
            rel(w[0], b)
        );
        assert!(rel(w[1], a) < 1e-30);
        let r = spectral_apply(&w, &u, |x| x);
        for i in 0..2 {
            for j in 0..2 {
                // Reconstruction to a few u_dd·‖K‖ (‖K‖ = 25, u_dd = 2⁻¹⁰⁴ ≈ 4.9e-32).
                let e = (r[[i, j]] - k[[i, j]]).abs().hi;
                assert!(e < 8.0 * 4.9e-32 * 25.0, "reconstruction error {e:e}");
            }
        }
    }
}
