//! The Meta Neural Kernel Φ: training Gram matrix, exact row blocks, cross kernel and test block
//! (MATH.md §3).
//!
//! Per task i, with the inner kernel Θ_in (Θ for MAML, Σ for ANIL, see [`Variant`]):
//!
//! ```text
//! T_i = g(Θ_in(X'_i, X'_i))                 (inner operator, [`Schedule`])
//! A_i = Θ_in(X_i, X'_i) T_i                 (n_i × m_i, the "adapter")
//! Φ_ij = Θ(X_i, X_j) − A_i Θ(X'_i, X_j) − Θ(X_i, X'_j) A_jᵀ + A_i Θ(X'_i, X'_j) A_jᵀ
//! ```
//!
//! Whole matrix at once, with K the outer-kernel Gram over all query (q) and support (s) points
//! and P = blockdiag(A_i):
//!
//! ```text
//! Φ = K_qq − P K_sq − K_qs Pᵀ + P K_ss Pᵀ = K_qq − (S + Sᵀ),
//! S = P Dᵀ,   Dᵀ = K_sq − ½ K_ss Pᵀ          (Σm × Σn)
//! ```
//!
//! (a symmetric rank-2k update: P Dᵀ + D Pᵀ = P K_sq + K_qs Pᵀ − P K_ss Pᵀ). Cost
//! Σn·Σm·m̄ for Dᵀ and (Σn)²·m̄ for S — far below the Gram matrix K itself, which costs
//! (Σn + Σm)²·d for the first layer alone. Every entry of Dᵀ and S is a fixed-order sum over the
//! m̄ support points of one task (no blocked GEMM whose summation order could depend on the
//! requested block), and Φ_rc = K_rc − (S_rc + S_cr) is exactly symmetric because floating-point
//! addition is commutative. Hence [`Mnk::phi_rows`] returns **bit-identical** rows of
//! [`Mnk::phi`] (given a base kernel whose row blocks are exact, which
//! [`crate::kernel::kernels_rows`] and precomputed kernels are).
//!
//! The adapters A_i are computed per task from a per-task kernel evaluation on [X_i; X'_i], so
//! they do not depend on which rows are requested either.
//!
//! Cross kernel (test tasks t̂ against training tasks), with P̂ = blockdiag(Â_i):
//! `Φ(test, train) = U_q − U_s Pᵀ`, `U_q = K_q̂q − P̂ K_ŝq`, `U_s = K_q̂s − P̂ K_ŝs`.

use super::base::{BaseKernel, Blocks, Variant};
use super::inner::{InnerTime, Schedule};
use super::tasks::TaskSet;
use crate::error::{Error, Result};
use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use std::ops::Range;

/// A Meta Neural Kernel: base kernel, inner-loop schedule and variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Mnk {
    /// Base (outer) kernel Θ.
    pub kernel: BaseKernel,
    /// Inner-loop schedule (defines T).
    pub inner: InnerTime,
    /// MAML (inner kernel Θ) or ANIL (inner kernel Σ).
    pub variant: Variant,
}

/// Per-task inner quantities of a task set.
#[derive(Clone, Debug)]
pub struct Adapters {
    /// T_i (m_i × m_i).
    pub t: Vec<Array2<f64>>,
    /// A_i = Θ_in(X_i, X'_i) T_i (n_i × m_i).
    pub a: Vec<Array2<f64>>,
}

/// `A·B` by plain fixed-order loops (small per-task products; deterministic bits).
fn small_matmul(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let (n, k) = a.dim();
    let m = b.ncols();
    let mut c = Array2::zeros((n, m));
    for i in 0..n {
        for j in 0..m {
            let mut acc = 0.0;
            for l in 0..k {
                acc += a[[i, l]] * b[[l, j]];
            }
            c[[i, j]] = acc;
        }
    }
    c
}

impl Mnk {
    /// MAML MNK with base kernel and inner schedule.
    pub fn new(kernel: BaseKernel, inner: Schedule) -> Self {
        Mnk {
            kernel,
            inner,
            variant: Variant::Maml,
        }
    }

    /// Builder: variant.
    pub fn with_variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }

    fn validate(&self) -> Result<()> {
        self.kernel.validate()?;
        self.inner.validate()
    }

    /// Outer-kernel blocks between the stacked points of a task set (queries first).
    fn task_kernel(&self, set: &TaskSet, i: usize) -> Result<Blocks> {
        let t = &set.tasks()[i];
        let z = ndarray::concatenate(Axis(0), &[t.xq.view(), t.xs.view()]).expect("same d");
        self.kernel.blocks(z.view(), None)
    }

    /// T_i and A_i for every task (computed per task from Θ_in on [X_i; X'_i]).
    pub fn adapters(&self, set: &TaskSet) -> Result<Adapters> {
        self.validate()?;
        let res: Vec<Result<(Array2<f64>, Array2<f64>)>> = (0..set.len())
            .into_par_iter()
            .map(|i| {
                let n = set.tasks()[i].n();
                let b = self.task_kernel(set, i)?;
                let kin = b.inner(self.variant)?;
                let ks = kin.slice(s![n.., n..]);
                let kqs = kin.slice(s![..n, n..]);
                let t = self
                    .inner
                    .apply(ks, &format!("task {i}: inner kernel on the support"))?;
                let a = small_matmul(kqs, t.view());
                Ok((t, a))
            })
            .collect();
        let mut out = Adapters {
            t: Vec::with_capacity(set.len()),
            a: Vec::with_capacity(set.len()),
        };
        for r in res {
            let (t, a) = r?;
            out.t.push(t);
            out.a.push(a);
        }
        Ok(out)
    }

    /// The training Gram matrix Φ (Σn × Σn), exactly symmetric.
    pub fn phi(&self, set: &TaskSet) -> Result<Array2<f64>> {
        let ad = self.adapters(set)?;
        self.phi_with(set, &ad)
    }

    /// Φ given precomputed adapters (see [`Mnk::adapters`]).
    pub fn phi_with(&self, set: &TaskSet, ad: &Adapters) -> Result<Array2<f64>> {
        self.validate()?;
        let z = set.points();
        let k = self.kernel.blocks(z.view(), None)?.ntk;
        Ok(assemble_full(set, &ad.a, k.view()))
    }

    /// Rows `rows` (of the Σn query rows) of Φ, bit-identical to the same rows of [`Mnk::phi`].
    /// Needs the base kernel only on the requested query rows and the support rows of the tasks
    /// they touch.
    pub fn phi_rows(&self, set: &TaskSet, rows: Range<usize>) -> Result<Array2<f64>> {
        let nq = set.n_query();
        if rows.start > rows.end || rows.end > nq {
            return Err(Error::param(
                "rows",
                format!("{}..{}", rows.start, rows.end),
                format!("must lie within 0..{nq} (number of query points)"),
            ));
        }
        let ad = self.adapters(set)?;
        if rows.is_empty() {
            return Ok(Array2::zeros((0, nq)));
        }
        let z = set.points();
        let i0 = set.task_of_query(rows.start);
        let i1 = set.task_of_query(rows.end - 1);
        let so = set.support_offsets();
        let kq = self.kernel.blocks_rows(z.view(), rows.clone())?.ntk;
        let kss = self
            .kernel
            .blocks_rows(z.view(), nq + so[i0]..nq + so[i1 + 1])?
            .ntk;
        Ok(assemble_rows(set, &ad.a, &kq, &kss, rows, i0, i1))
    }

    /// The cross kernel Φ(test, train) (Σn̂ × Σn).
    pub fn cross(&self, test: &TaskSet, train: &TaskSet) -> Result<Array2<f64>> {
        let at = self.adapters(test)?;
        let ar = self.adapters(train)?;
        self.cross_with(test, &at, train, &ar)
    }

    /// Cross kernel given both sets' adapters.
    pub fn cross_with(
        &self,
        test: &TaskSet,
        at: &Adapters,
        train: &TaskSet,
        ar: &Adapters,
    ) -> Result<Array2<f64>> {
        self.validate()?;
        if test.d() != train.d() {
            return Err(Error::shape(
                "test tasks vs training tasks",
                format!("d = {}", train.d()),
                format!("d = {}", test.d()),
            ));
        }
        let zt = test.points();
        let zr = train.points();
        let k = self.kernel.blocks(zt.view(), Some(zr.view()))?.ntk;
        Ok(assemble_cross(test, &at.a, train, &ar.a, &k))
    }

    /// The test × test block Φ(test, test) (same formula as [`Mnk::phi`] on the test set).
    pub fn test_block(&self, test: &TaskSet) -> Result<Array2<f64>> {
        self.phi(test)
    }
}

/// Φ from adapters and a given outer-kernel Gram matrix K over the stacked points
/// `set.points()` = [X; X'] (queries first): the assembly step alone (no kernel evaluation).
pub fn assemble_phi(set: &TaskSet, ad: &Adapters, k: ArrayView2<f64>) -> Result<Array2<f64>> {
    let p = set.n_query() + set.n_support();
    if k.dim() != (p, p) {
        return Err(Error::shape(
            "outer Gram matrix over [X; X']",
            format!("{p}×{p}"),
            format!("{:?}", k.dim()),
        ));
    }
    if ad.a.len() != set.len() {
        return Err(Error::shape(
            "adapters",
            format!("{} tasks", set.len()),
            format!("{}", ad.a.len()),
        ));
    }
    for (i, (a, t)) in ad.a.iter().zip(set.tasks()).enumerate() {
        if a.dim() != (t.n(), t.m()) {
            return Err(Error::shape(
                format!("adapter A_{i}"),
                format!("{}×{}", t.n(), t.m()),
                format!("{:?}", a.dim()),
            ));
        }
    }
    if !super::base::all_finite(k) {
        crate::error::ensure_finite(k, "outer Gram matrix")?;
    }
    Ok(assemble_full(set, &ad.a, k))
}

/// Row `s` (a support index) of Dᵀ = K_sq − ½ K_ss Pᵀ: `krow` is the K row of that support
/// point (length Σn + Σm). Entry c (query of task j): `K[s,c] − ½ Σ_k A_j[c',k] K[s, nq+so_j+k]`,
/// the sum accumulated from 0 in k order (`at[j]` = A_jᵀ; axpy over k, vectorised across c').
fn dt_row(set: &TaskSet, at: &[Array2<f64>], krow: &[f64], out: &mut [f64]) {
    let nq = set.n_query();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    for (j, atj) in at.iter().enumerate() {
        let kv = &krow[nq + so[j]..nq + so[j + 1]];
        let o = &mut out[qo[j]..qo[j + 1]];
        o.iter_mut().for_each(|v| *v = 0.0);
        for (kk, &kval) in kv.iter().enumerate() {
            for (ov, &av) in o.iter_mut().zip(atj.row(kk).iter()) {
                *ov += av * kval;
            }
        }
        for (ov, &kc) in o.iter_mut().zip(&krow[qo[j]..qo[j + 1]]) {
            *ov = kc - 0.5 * *ov;
        }
    }
}

/// Row r (query of task i, local row `rp`) of D = K_qs − ½ P K_ss (length Σm):
/// `D[r, s] = K[r, nq+s] − ½ Σ_k A_i[rp,k] K[nq+so_i+k, nq+s]`; `ksup[k]` is the K row of the
/// k-th support point of task i. Same per-entry operation sequence as [`dt_row`] (so D and Dᵀ
/// agree bit for bit when K is exactly symmetric).
fn d_row(a_r: ArrayView1<f64>, kq_row: &[f64], ksup: &[&[f64]], nq: usize, out: &mut [f64]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    for (kk, kr) in ksup.iter().enumerate() {
        let coef = a_r[kk];
        for (o, &kv) in out.iter_mut().zip(&kr[nq..]) {
            *o += coef * kv;
        }
    }
    for (o, &kv) in out.iter_mut().zip(&kq_row[nq..]) {
        *o = kv - 0.5 * *o;
    }
}

/// Row r of Φ, fused: `Φ[r, c] = K[r, c] − (S[r, c] + S[c, r])` with
/// `S[r, c] = Σ_k A_i[rp,k] Dᵀ[so_i+k, c]` (axpy over the m_i rows `dt_i` of Dᵀ) and
/// `S[c, r] = Σ_k A_j[c',k] D[r, so_j+k]` (c in task j; `at[j]` = A_jᵀ).
#[allow(clippy::too_many_arguments)]
fn phi_row(
    set: &TaskSet,
    a_r: ArrayView1<f64>,
    at: &[Array2<f64>],
    dt_i: &[&[f64]],
    d_r: &[f64],
    k_row: &[f64],
    tmp: &mut Vec<f64>,
    c_start: usize,
    out: &mut [f64],
) {
    let qo = set.query_offsets();
    let so = set.support_offsets();
    out[c_start..].iter_mut().for_each(|v| *v = 0.0);
    for (kk, dr) in dt_i.iter().enumerate() {
        let coef = a_r[kk];
        for (o, &dv) in out[c_start..].iter_mut().zip(dr[c_start..].iter()) {
            *o += coef * dv;
        }
    }
    let j0 = if c_start < set.n_query() {
        set.task_of_query(c_start)
    } else {
        at.len()
    };
    for (j, atj) in at.iter().enumerate().skip(j0) {
        let nj = qo[j + 1] - qo[j];
        tmp.clear();
        tmp.resize(nj, 0.0);
        for kk in 0..atj.nrows() {
            let v = d_r[so[j] + kk];
            let col = atj.row(kk);
            for (t, &av) in tmp.iter_mut().zip(col.iter()) {
                *t += av * v;
            }
        }
        let lo = qo[j].max(c_start);
        let o = &mut out[lo..qo[j + 1]];
        let kr = &k_row[lo..qo[j + 1]];
        for ((ov, &t), &kv) in o.iter_mut().zip(&tmp[lo - qo[j]..]).zip(kr) {
            *ov = kv - (*ov + t);
        }
    }
}

fn transposes(a: &[Array2<f64>]) -> Vec<Array2<f64>> {
    a.iter()
        .map(|x| x.t().as_standard_layout().to_owned())
        .collect()
}

fn assemble_full(set: &TaskSet, a: &[Array2<f64>], k: ArrayView2<f64>) -> Array2<f64> {
    let nq = set.n_query();
    let ns = set.n_support();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let k = k.as_standard_layout();
    let at = transposes(a);
    // Dᵀ (Σm × Σn), one support row at a time (the same per-entry operation sequence as the
    // rows of D, see `d_row`); D's row r is recomputed on the fly in the Φ pass (Σm·m̄ flops per
    // row), so D itself is never stored or transposed.
    let mut dt = Array2::<f64>::zeros((ns, nq));
    dt.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(sidx, mut row)| {
            dt_row(
                set,
                &at,
                k.row(nq + sidx).to_slice().unwrap(),
                row.as_slice_mut().unwrap(),
            );
        });
    let mut phi = Array2::<f64>::zeros((nq, nq));
    phi.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(
            || (Vec::new(), vec![0.0; ns]),
            |(tmp, d_r), (r, mut row)| {
                let i = set.task_of_query(r);
                let ksup: Vec<&[f64]> = (so[i]..so[i + 1])
                    .map(|sidx| k.row(nq + sidx).to_slice().unwrap())
                    .collect();
                let k_r = k.row(r).to_slice().unwrap();
                d_row(a[i].row(r - qo[i]), k_r, &ksup, nq, d_r);
                let dt_i: Vec<&[f64]> = (so[i]..so[i + 1])
                    .map(|sidx| dt.row(sidx).to_slice().unwrap())
                    .collect();
                phi_row(
                    set,
                    a[i].row(r - qo[i]),
                    &at,
                    &dt_i,
                    d_r,
                    &k_r[..nq],
                    tmp,
                    r,
                    row.as_slice_mut().unwrap(),
                );
            },
        );
    // Lower triangle = mirror of the upper one (the rows path computes K[r,c] − (S[r,c] + S[c,r])
    // there, the same bits since K is exactly symmetric and + is commutative).
    const TILE: usize = 64;
    let buf = phi.as_slice_mut().unwrap();
    for r0 in (0..nq).step_by(TILE) {
        for c0 in (0..=r0).step_by(TILE) {
            for r in r0..(r0 + TILE).min(nq) {
                for c in c0..(c0 + TILE).min(r) {
                    buf[r * nq + c] = buf[c * nq + r];
                }
            }
        }
    }
    phi
}

fn assemble_rows(
    set: &TaskSet,
    a: &[Array2<f64>],
    kq: &Array2<f64>,
    kss: &Array2<f64>,
    rows: Range<usize>,
    i0: usize,
    i1: usize,
) -> Array2<f64> {
    let nq = set.n_query();
    let ns = set.n_support();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let s_base = so[i0];
    let kq = kq.as_standard_layout();
    let kss = kss.as_standard_layout();
    let at = transposes(a);
    // Dᵀ rows of the touched tasks' supports (entrywise, same bits as the transposed D).
    let mut dt_t = Array2::<f64>::zeros((so[i1 + 1] - s_base, nq));
    dt_t.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut row)| {
            dt_row(
                set,
                &at,
                kss.row(l).to_slice().unwrap(),
                row.as_slice_mut().unwrap(),
            );
        });
    let mut phi = Array2::zeros((rows.len(), nq));
    phi.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |tmp, (lr, mut row)| {
            let r = rows.start + lr;
            let i = set.task_of_query(r);
            let ksup: Vec<&[f64]> = (so[i]..so[i + 1])
                .map(|sidx| kss.row(sidx - s_base).to_slice().unwrap())
                .collect();
            let mut d_r = vec![0.0; ns];
            d_row(
                a[i].row(r - qo[i]),
                kq.row(lr).to_slice().unwrap(),
                &ksup,
                nq,
                &mut d_r,
            );
            let dt_i: Vec<&[f64]> = (so[i]..so[i + 1])
                .map(|sidx| dt_t.row(sidx - s_base).to_slice().unwrap())
                .collect();
            phi_row(
                set,
                a[i].row(r - qo[i]),
                &at,
                &dt_i,
                &d_r,
                &kq.row(lr).to_slice().unwrap()[..nq],
                tmp,
                0,
                row.as_slice_mut().unwrap(),
            );
        });
    phi
}

fn assemble_cross(
    test: &TaskSet,
    at: &[Array2<f64>],
    train: &TaskSet,
    ar: &[Array2<f64>],
    k: &Array2<f64>,
) -> Array2<f64> {
    let nqt = test.n_query();
    let nq = train.n_query();
    let ncol = k.ncols();
    let qot = test.query_offsets();
    let sot = test.support_offsets();
    let qo = train.query_offsets();
    let so = train.support_offsets();
    let mut out = Array2::<f64>::zeros((nqt, nq));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut row)| {
            let i = test.task_of_query(r);
            let rp = r - qot[i];
            let ai = &at[i];
            // U[r, ·] = K[q̂_r, ·] − Σ_k Â_i[rp,k] K[ŝ_{so_i+k}, ·] over all train points.
            let mut u = k.row(r).to_vec();
            for kk in 0..ai.ncols() {
                let coef = ai[[rp, kk]];
                let kr = k.row(nqt + sot[i] + kk);
                for (uv, &kv) in u.iter_mut().zip(kr.iter()) {
                    *uv -= coef * kv;
                }
            }
            debug_assert_eq!(u.len(), ncol);
            for (j, aj) in ar.iter().enumerate() {
                for cp in 0..aj.nrows() {
                    let c = qo[j] + cp;
                    let mut acc = 0.0;
                    for kk in 0..aj.ncols() {
                        acc += aj[[cp, kk]] * u[nq + so[j] + kk];
                    }
                    row[c] = u[c] - acc;
                }
            }
        });
    out
}
