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
//! Φ = K_qq − P K_sq − K_qs Pᵀ + P K_ss Pᵀ = K_qq − (W + Wᵀ),
//! W = P C,   C = Dᵀ = K_sq − ½ K_ss Pᵀ       (Σm × Σn),   D = K_qs − ½ P K_ss
//! ```
//!
//! (a symmetric rank-2k update: P Dᵀ + D Pᵀ = P K_sq + K_qs Pᵀ − P K_ss Pᵀ). Cost
//! Σn·Σm·m̄ for C and D and (Σn)²·m̄ for W — far below the Gram matrix K itself, which costs
//! (Σn + Σm)²·d for the first layer alone. The full matrix is assembled in tiles over task
//! blocks (upper block triangle, each tile also written to its mirror; see `assemble_full`),
//! the row blocks row by row; both evaluate every entry of C, D and W as the same fixed-order
//! sum over the m̄ support points of one task (no blocked GEMM whose summation order could
//! depend on the requested block), and Φ_rc = K_rc − (W_rc + W_cr) is exactly symmetric because
//! floating-point addition is commutative. Hence [`Mnk::phi_rows`] returns **bit-identical**
//! rows of [`Mnk::phi`], whatever the number of threads (given an exactly symmetric K and a base
//! kernel whose row blocks are exact, which [`crate::kernel::kernels_rows`] and precomputed
//! kernels are).
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
use crate::linalg::{stream_copy, stream_fence, SharedOut};
use ndarray::{s, Array2, ArrayView2, Axis};
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
        check_adapters(set, ad)?;
        let z = set.points();
        let k = self.kernel.outer_gram(z.view())?;
        assemble_full(set, &ad.a, k.view())
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
        Ok(assemble_rows(
            set,
            &ad.a,
            kq.view(),
            kss.view(),
            rows,
            i0,
            i1,
        ))
    }

    /// The outer-kernel (NTK) Gram matrix Θ(Z, Z) over the task set's stacked points
    /// Z = [X; X'] (all queries, then all supports: the layout of a precomputed kernel), the
    /// matrix Φ is assembled from.
    pub fn ntk_gram(&self, set: &TaskSet) -> Result<Array2<f64>> {
        self.validate()?;
        let z = set.points();
        Ok(self.kernel.outer_gram(z.view())?.into_owned())
    }

    /// Rows `rows` (of the Σn + Σm stacked points) of [`Mnk::ntk_gram`], bit-identical to the
    /// same rows of the full matrix (for sharding its computation).
    pub fn ntk_gram_rows(&self, set: &TaskSet, rows: Range<usize>) -> Result<Array2<f64>> {
        self.validate()?;
        let p = set.n_query() + set.n_support();
        if rows.start > rows.end || rows.end > p {
            return Err(Error::param(
                "rows",
                format!("{}..{}", rows.start, rows.end),
                format!("must lie within 0..{p} (number of query and support points)"),
            ));
        }
        let z = set.points();
        Ok(self.kernel.blocks_rows(z.view(), rows)?.ntk)
    }

    /// The **first-order** MNK Φ_FO (Σn × Σn, not symmetric): the kernel of first-order MAML's
    /// outer step in the kernel regime (MATH.md §3, §4; MAML variant only).
    ///
    /// Derivation. Meta-output F_i(θ) = f_{θ'_i}(X_i), θ'_i = θ after τ inner steps at rate λ on
    /// (X'_i, Y'_i); linearised, F_i(θ) = f_θ(X_i) − Θ(X_i, X'_i) T_i (f_θ(X'_i) − Y'_i), so its
    /// Jacobian is J_F,i = J(X_i) − A_i J(X'_i), A_i = Θ(X_i, X'_i) T_i (T_i of the (λ, τ)
    /// schedule, [`Schedule`]). Second-order MAML steps θ ← θ − η Σ_j J_F,jᵀ r_j, r_j = F_j − Y_j;
    /// first-order MAML drops the Hessian terms of the inner loop, i.e. takes ∂θ'_j/∂θ = I, so
    /// its step is θ ← θ − η Σ_j J(X_j; θ'_j)ᵀ r_j, and in the kernel regime J(X_j; θ'_j) = J(X_j)
    /// (the un-adapted query Jacobian). The meta-outputs then move by
    /// ΔF_i = J_F,i Δθ = −η Σ_j J_F,i J(X_j)ᵀ r_j, i.e. r ← (I − η Φ_FO) r with
    ///
    /// ```text
    /// Φ_FO,ij = J_F,i J(X_j)ᵀ = Θ(X_i, X_j) − A_i Θ(X'_i, X_j)      Φ_FO = K_qq − P K_sq
    /// ```
    ///
    /// (the inner-step factor E_i = [I, −A_i] on the left side only; compare Φ_ij = E_i K E_jᵀ).
    /// Exact for a model linear in θ (depth 0); for wide networks up to the O(width^(−½)) motion
    /// of the kernel. λ = 0 or τ = 0 gives Φ_FO = Φ = K_qq. Its slow mode:
    /// [`super::SlowMode`].
    pub fn phi_first_order(&self, set: &TaskSet) -> Result<Array2<f64>> {
        if self.variant != Variant::Maml {
            return Err(Error::param(
                "variant",
                format!("{:?}", self.variant),
                "the first-order MNK is implemented for the MAML variant only",
            ));
        }
        let ad = self.adapters(set)?;
        let k = self.kernel.outer_gram(set.points().view())?;
        let (nq, qo, so) = (set.n_query(), set.query_offsets(), set.support_offsets());
        let mut out = k.slice(s![..nq, ..nq]).to_owned();
        for (i, a) in ad.a.iter().enumerate() {
            let ksq = k.slice(s![nq + so[i]..nq + so[i + 1], ..nq]);
            let pk = small_matmul(a.view(), ksq);
            let mut rows = out.slice_mut(s![qo[i]..qo[i + 1], ..]);
            rows -= &pk;
        }
        Ok(out)
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
    check_adapters(set, ad)?;
    assemble_full(set, &ad.a, k)
}

/// Adapters of the right number and shapes for `set`.
fn check_adapters(set: &TaskSet, ad: &Adapters) -> Result<()> {
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
    Ok(())
}

/// A_i and A_iᵀ of every task as flat row-major buffers (the hot loops index plain slices).
struct Flat {
    /// A_i, n_i × m_i.
    a: Vec<Vec<f64>>,
    /// A_iᵀ, m_i × n_i.
    at: Vec<Vec<f64>>,
}

impl Flat {
    fn new(a: &[Array2<f64>]) -> Flat {
        Flat {
            a: a.iter().map(|x| x.iter().copied().collect()).collect(),
            at: a.iter().map(|x| x.t().iter().copied().collect()).collect(),
        }
    }
    /// Row `rp` of A_i (length m_i).
    fn a_row(&self, set: &TaskSet, i: usize, rp: usize) -> &[f64] {
        let m = set.tasks()[i].m();
        &self.a[i][rp * m..(rp + 1) * m]
    }
    /// Row `k` of A_jᵀ (length n_j).
    fn at_row(&self, set: &TaskSet, j: usize, k: usize) -> &[f64] {
        let n = set.tasks()[j].n();
        &self.at[j][k * n..(k + 1) * n]
    }
}

/// Entries `qo[tasks.start]..qo[tasks.end]` of row `s` (a support index) of
/// C = Dᵀ = K_sq − ½ K_ss Pᵀ: `krow` is the whole K row of that support point (length Σn + Σm),
/// `out` the segment. Entry c (query of task j): `K[s,c] − ½ Σ_k A_j[c',k] K[s, nq+so_j+k]`, the
/// sum accumulated from 0 in k order (axpy over k with the rows of A_jᵀ, vectorised across c').
#[inline(always)]
fn dt_seg(set: &TaskSet, fl: &Flat, krow: &[f64], tasks: Range<usize>, out: &mut [f64]) {
    let nq = set.n_query();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let base = qo[tasks.start];
    for j in tasks {
        let kv = &krow[nq + so[j]..nq + so[j + 1]];
        let o = &mut out[qo[j] - base..qo[j + 1] - base];
        o.iter_mut().for_each(|v| *v = 0.0);
        for (kk, &kval) in kv.iter().enumerate() {
            for (ov, &av) in o.iter_mut().zip(fl.at_row(set, j, kk)) {
                *ov += av * kval;
            }
        }
        for (ov, &kc) in o.iter_mut().zip(&krow[qo[j]..qo[j + 1]]) {
            *ov = kc - 0.5 * *ov;
        }
    }
}

/// Entries (a range of support columns) of row r (query of task i, local row r') of
/// D = K_qs − ½ P K_ss: `D[r, s] = K[r, nq+s] − ½ Σ_k A_i[r',k] K[nq+so_i+k, nq+s]`; `a_r` is
/// row r' of A_i, `kq` the segment of K's row r, `ksup(k)` the same segment of the K row of the
/// k-th support point of task i. Same per-entry operation sequence as [`dt_seg`] (so D and Dᵀ
/// agree bit for bit when K is exactly symmetric).
#[inline(always)]
fn d_row<'k>(a_r: &[f64], kq: &[f64], ksup: impl Fn(usize) -> &'k [f64], out: &mut [f64]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    for (kk, &coef) in a_r.iter().enumerate() {
        for (o, &kv) in out.iter_mut().zip(ksup(kk)) {
            *o += coef * kv;
        }
    }
    for (o, &kv) in out.iter_mut().zip(kq) {
        *o = kv - 0.5 * *o;
    }
}

/// Row r (query of task i, local row r') of Φ, the reference row path:
/// `Φ[r, c] = K[r, c] − (W[r, c] + W[c, r])` with `W[r, c] = Σ_k A_i[r',k] C[so_i+k, c]`
/// (axpy over the m_i rows `c_i` of C) and `W[c, r] = Σ_k A_j[c',k] D[r, so_j+k]` (c in task j),
/// both sums from 0 in k order.
#[allow(clippy::too_many_arguments)]
fn phi_row(
    set: &TaskSet,
    fl: &Flat,
    i: usize,
    rp: usize,
    c_i: &[&[f64]],
    d_r: &[f64],
    k_row: &[f64],
    tmp: &mut Vec<f64>,
    out: &mut [f64],
) {
    let qo = set.query_offsets();
    let so = set.support_offsets();
    out.iter_mut().for_each(|v| *v = 0.0);
    for (&coef, cr) in fl.a_row(set, i, rp).iter().zip(c_i) {
        for (o, &cv) in out.iter_mut().zip(cr.iter()) {
            *o += coef * cv;
        }
    }
    for j in 0..set.len() {
        tmp.clear();
        tmp.resize(qo[j + 1] - qo[j], 0.0);
        for kk in 0..so[j + 1] - so[j] {
            let v = d_r[so[j] + kk];
            for (t, &av) in tmp.iter_mut().zip(fl.at_row(set, j, kk)) {
                *t += av * v;
            }
        }
        let o = &mut out[qo[j]..qo[j + 1]];
        let kr = &k_row[qo[j]..qo[j + 1]];
        for ((ov, &t), &kv) in o.iter_mut().zip(tmp.iter()).zip(kr) {
            *ov = kv - (*ov + t);
        }
    }
}

/// Query rows per tile of the full assembly: consecutive whole tasks are grouped into blocks of
/// at least this many query rows (the tiling never changes an entry's bits, only the memory
/// access order).
const TILE_ROWS: usize = 120;

/// Task blocks of the tiled assembly: ranges of consecutive tasks holding ≥ `TILE_ROWS` query
/// rows each (the last one possibly fewer). Depends on the task sizes only.
fn task_blocks(set: &TaskSet) -> Vec<Range<usize>> {
    let qo = set.query_offsets();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..set.len() {
        if qo[i + 1] - qo[start] >= TILE_ROWS {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < set.len() {
        out.push(start..set.len());
    }
    out
}

/// Scratch buffers of one worker of the tiled pass.
#[derive(Default)]
struct TileScratch {
    /// C block (supports of I × queries of J).
    c: Vec<f64>,
    /// D block (queries of I × supports of J), then its transpose.
    d: Vec<f64>,
    dt: Vec<f64>,
    /// W[I, J] (rows × cols), then Φ[I, J].
    phi: Vec<f64>,
    /// W[J, I] (cols × rows), i.e. the second term transposed.
    w2t: Vec<f64>,
}

/// One tile of the full assembly: rows of task block `ib`, columns of task block `jb`
/// (`ib.start <= jb.start`), computed into `sc.phi` (|rows| × |cols|, row-major) with the same
/// per-entry operation sequence as the row path ([`dt_seg`], [`d_row`], [`phi_row`]):
///
/// ```text
/// C[s, c] = K[s, c] − ½ Σ_k A_J[c',k] K[s, s_J+k]        s ∈ supports(ib), c ∈ queries(jb)
/// D[r, s] = K[r, s] − ½ Σ_k A_I[r',k] K[s_I+k, s]        r ∈ queries(ib), s ∈ supports(jb)
/// Φ[r, c] = K[r, c] − (Σ_k A_I[r',k] C[s_I+k, c] + Σ_k A_J[c',k] D[r, s_J+k])
/// ```
///
/// (the first sum as axpys along the rows of C, the second along the rows of Dᵀ, i.e. for
/// all r of the tile at once). It reads only the K blocks (q_ib, q_jb), (s_ib, q_jb),
/// (q_ib, s_jb), (s_ib, s_jb). Returns false iff a computed entry is not finite.
fn phi_tile(
    set: &TaskSet,
    fl: &Flat,
    k: &[f64],
    ib: Range<usize>,
    jb: Range<usize>,
    sc: &mut TileScratch,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2_allowed() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { phi_tile_avx2(set, fl, k, ib, jb, sc) };
    }
    phi_tile_impl(set, fl, k, ib, jb, sc)
}

/// [`phi_tile_impl`] compiled with 4-wide AVX2 vectors. The same IEEE operations on every
/// entry (no fused multiply-add: Rust never contracts a·b + c), so the same bits as the
/// baseline build and as the row path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn phi_tile_avx2(
    set: &TaskSet,
    fl: &Flat,
    k: &[f64],
    ib: Range<usize>,
    jb: Range<usize>,
    sc: &mut TileScratch,
) -> bool {
    phi_tile_impl(set, fl, k, ib, jb, sc)
}

#[inline(always)]
fn phi_tile_impl(
    set: &TaskSet,
    fl: &Flat,
    k: &[f64],
    ib: Range<usize>,
    jb: Range<usize>,
    sc: &mut TileScratch,
) -> bool {
    let nq = set.n_query();
    let p = nq + set.n_support();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let (r0, r1) = (qo[ib.start], qo[ib.end]);
    let (c0, c1) = (qo[jb.start], qo[jb.end]);
    let (sr0, sr1) = (so[ib.start], so[ib.end]);
    let (sc0, sc1) = (so[jb.start], so[jb.end]);
    let (nr, nc, nsr, nsc) = (r1 - r0, c1 - c0, sr1 - sr0, sc1 - sc0);
    let krow = |g: usize| &k[g * p..(g + 1) * p];
    // C block.
    // (Scratch is only grown, never cleared: every entry used below is written first.)
    grow(&mut sc.c, nsr * nc);
    // While C is computed, the K rows of the next C row and (spread evenly over the C rows)
    // the K_qq block of the tile are prefetched: the tile's K reads are short row segments
    // with a stride of a whole K row, which the hardware prefetchers do not anticipate.
    for (l, crow) in sc.c[..nsr * nc].chunks_exact_mut(nc).enumerate() {
        if l + 1 < nsr {
            let kn = krow(nq + sr0 + l + 1);
            prefetch(&kn[c0..c1]);
            prefetch(&kn[nq + sc0..nq + sc1]);
        }
        for lr in l * nr / nsr..(l + 1) * nr / nsr {
            prefetch(&krow(r0 + lr)[c0..c1]);
        }
        dt_seg(set, fl, krow(nq + sr0 + l), jb.clone(), crow);
    }
    // D block, then Dᵀ.
    grow(&mut sc.d, nr * nsc);
    for i in ib.clone() {
        for (rp, drow) in sc.d[(qo[i] - r0) * nsc..(qo[i + 1] - r0) * nsc]
            .chunks_exact_mut(nsc)
            .enumerate()
        {
            if qo[i] + rp + 1 < r1 {
                prefetch(&krow(qo[i] + rp + 1)[nq + sc0..nq + sc1]);
            }
            d_row(
                fl.a_row(set, i, rp),
                &krow(qo[i] + rp)[nq + sc0..nq + sc1],
                |kk| &krow(nq + so[i] + kk)[nq + sc0..nq + sc1],
                drow,
            );
        }
    }
    grow(&mut sc.dt, nsc * nr);
    for (lr, drow) in sc.d[..nr * nsc].chunks_exact(nsc).enumerate() {
        for (ls, &v) in drow.iter().enumerate() {
            sc.dt[ls * nr + lr] = v;
        }
    }
    // W[I, J] = A_I C (rows of the tile).
    // The sums start from 0.0 (the first term is added to 0.0, as in the row path), without
    // a separate zeroing pass.
    grow(&mut sc.phi, nr * nc);
    for i in ib.clone() {
        for rp in 0..qo[i + 1] - qo[i] {
            let lr = qo[i] - r0 + rp;
            let out = &mut sc.phi[lr * nc..(lr + 1) * nc];
            accumulate_rows(out, fl.a_row(set, i, rp), &sc.c, so[i] - sr0);
        }
    }
    // W[J, I] = A_J Dᵀ (rows = the tile's columns).
    grow(&mut sc.w2t, nc * nr);
    for j in jb.clone() {
        for cp in 0..qo[j + 1] - qo[j] {
            let lc = qo[j] - c0 + cp;
            let out = &mut sc.w2t[lc * nr..(lc + 1) * nr];
            accumulate_rows(out, fl.a_row(set, j, cp), &sc.dt, so[j] - sc0);
        }
    }
    combine_tile(&k[r0 * p + c0..], p, nr, nc, &mut sc.phi, &mut sc.w2t)
}

/// `out = Σ_k a_r[k] · row(base + k)`, the rows taken from `src` with width `out.len()`, summed
/// in the order k = 0, 1, … starting from 0.0 (the row path's operation sequence, so the bits
/// match it); `out = 0` for an empty `a_r`. One row of W[I, J] = A_I C or W[J, I] = A_J Dᵀ.
#[inline(always)]
fn accumulate_rows(out: &mut [f64], a_r: &[f64], src: &[f64], base: usize) {
    let w = out.len();
    if a_r.is_empty() {
        out.fill(0.0);
    }
    for (kk, &coef) in a_r.iter().enumerate() {
        let row = &src[(base + kk) * w..(base + kk + 1) * w];
        if kk == 0 {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = 0.0 + coef * v;
            }
        } else {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += coef * v;
            }
        }
    }
}

/// The last step of a tile: Φ = K − (W[I, J] + W[J, I]ᵀ) into `phi` (rows × cols, holding
/// W[I, J] on entry) and, transposed, into `w2t` (cols × rows, holding W[J, I] on entry), with
/// a fused finiteness check (x·0 is ±0 for finite x, NaN otherwise); `k` starts at the tile's
/// K entry (r0, c0), `p` is K's row stride. Returns false iff an entry is not finite. The same
/// two IEEE operations per entry on every path (`k − (w1 + w2)`), so the same bits.
fn combine_tile(
    k: &[f64],
    p: usize,
    nr: usize,
    nc: usize,
    phi: &mut [f64],
    w2t: &mut [f64],
) -> bool {
    assert!(phi.len() >= nr * nc && w2t.len() >= nr * nc);
    assert!(nr == 0 || nc == 0 || k.len() >= (nr - 1) * p + nc);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx2_allowed() {
        // SAFETY: AVX2 checked above; the slice bounds were asserted above.
        return unsafe { combine_tile_avx2(k, p, nr, nc, phi, w2t) };
    }
    combine_scalar(k, p, 0..nr, 0..nc, nr, nc, phi, w2t)
}

/// Scalar [`combine_tile`] on the sub-rectangle `rows × cols` of the tile.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn combine_scalar(
    k: &[f64],
    p: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    nr: usize,
    nc: usize,
    phi: &mut [f64],
    w2t: &mut [f64],
) -> bool {
    let mut acc = [0.0f64; 8];
    const B: usize = 8;
    for lr0 in rows.clone().step_by(B) {
        let lr1 = (lr0 + B).min(rows.end);
        for lc in cols.clone() {
            let w2 = &mut w2t[lc * nr + lr0..lc * nr + lr1];
            for (l, w) in w2.iter_mut().enumerate() {
                let lr = lr0 + l;
                let kv = k[lr * p + lc];
                let o = &mut phi[lr * nc + lc];
                *o = kv - (*o + *w);
                *w = *o;
                acc[l] += *o * 0.0;
            }
        }
    }
    acc.iter().all(|x| !x.is_nan())
}

/// [`combine_tile`] in 4 × 4 register blocks (AVX2: the W[J, I] block and the result are
/// transposed in registers, so K and Φ are read and written along rows); the edges scalar.
///
/// # Safety
/// AVX2 available; `phi`, `w2t` hold ≥ nr·nc entries and `k` ≥ (nr − 1)·p + nc.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn combine_tile_avx2(
    k: &[f64],
    p: usize,
    nr: usize,
    nc: usize,
    phi: &mut [f64],
    w2t: &mut [f64],
) -> bool {
    use crate::linalg::tr4;
    use std::arch::x86_64::*;
    let (nr4, nc4) = (nr / 4 * 4, nc / 4 * 4);
    let (kp, pp, wp) = (k.as_ptr(), phi.as_mut_ptr(), w2t.as_mut_ptr());
    let zero = _mm256_setzero_pd();
    let mut acc = zero;
    for lr in (0..nr4).step_by(4) {
        for lc in (0..nc4).step_by(4) {
            let mut w = [zero; 4];
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = _mm256_loadu_pd(wp.add((lc + j) * nr + lr));
            }
            let w = tr4(w);
            let mut res = [zero; 4];
            for i in 0..4 {
                let kv = _mm256_loadu_pd(kp.add((lr + i) * p + lc));
                let o = _mm256_loadu_pd(pp.add((lr + i) * nc + lc));
                let r = _mm256_sub_pd(kv, _mm256_add_pd(o, w[i]));
                _mm256_storeu_pd(pp.add((lr + i) * nc + lc), r);
                acc = _mm256_add_pd(acc, _mm256_mul_pd(r, zero));
                res[i] = r;
            }
            let rt = tr4(res);
            for (j, v) in rt.iter().enumerate() {
                _mm256_storeu_pd(wp.add((lc + j) * nr + lr), *v);
            }
        }
    }
    let mut a = [0.0f64; 4];
    _mm256_storeu_pd(a.as_mut_ptr(), acc);
    let ok_body = a.iter().all(|x| !x.is_nan());
    let ok_right = combine_scalar(k, p, 0..nr4, nc4..nc, nr, nc, phi, w2t);
    let ok_bottom = combine_scalar(k, p, nr4..nr, 0..nc, nr, nc, phi, w2t);
    ok_body && ok_right && ok_bottom
}

/// Make `v` at least `n` long (new entries 0.0; existing entries are left as they are).
#[inline]
fn grow(v: &mut Vec<f64>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Prefetch the cache lines of `s` (a hint only: no effect on any value).
#[inline(always)]
fn prefetch(s: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ptr = s.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(s);
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetching an address inside `s` (prefetches never fault anyway).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.add(off)) };
            off += 64;
        }
        if bytes > 0 {
            // The last line when `s` does not start on a line boundary.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.add(bytes - 1)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// Φ over the whole task set from the full outer-kernel Gram matrix K (standard layout), tiled:
/// the task blocks of [`task_blocks`] define block pairs (I, J), I ≤ J; each pair is one job
/// ([`phi_tile`]) that writes Φ[I, J] and its mirror Φ[J, I] (for I = J the lower triangle is
/// the mirror of the upper one). So K's upper block triangle is read once, Φ is written once,
/// no intermediate (Σm × Σn) matrix is stored, and every entry has the same bits as the row
/// path (hence as [`Mnk::phi_rows`]) whatever the number of threads.
fn assemble_full(set: &TaskSet, a: &[Array2<f64>], k: ArrayView2<f64>) -> Result<Array2<f64>> {
    let nq = set.n_query();
    if set.tasks().iter().any(|t| t.n() > MAX_TILE_ROWS) {
        return assemble_full_by_rows(set, a, k);
    }
    let k = k.as_standard_layout();
    let ks = k.as_slice().expect("standard layout");
    let fl = Flat::new(a);
    let blocks = task_blocks(set);
    let pairs: Vec<(usize, usize)> = (0..blocks.len())
        .flat_map(|bi| (bi..blocks.len()).map(move |bj| (bi, bj)))
        .collect();
    let mut phi = crate::linalg::zeros_huge(nq, nq);
    let out = SharedOut(phi.as_mut_ptr());
    let finite = pairs
        .par_iter()
        .with_max_len(1)
        .map(|&(bi, bj)| {
            TILE_SCRATCH.with_borrow_mut(|sc| write_tile(set, &fl, ks, &blocks, bi, bj, out, sc))
        })
        .reduce(|| true, |x, y| x && y);
    if !finite {
        crate::error::ensure_finite(k.view(), "outer Gram matrix")?;
        crate::error::ensure_finite(phi.view(), "Φ (overflow in the assembly)")?;
    }
    Ok(phi)
}

thread_local! {
    /// Per-thread scratch of the tiled pass (kept between calls: no re-allocation per tile).
    static TILE_SCRATCH: std::cell::RefCell<TileScratch> = Default::default();
}

/// Compute tile (bi, bj) ([`phi_tile`]) and write it and its mirror into Φ (`out`, nq × nq).
#[allow(clippy::too_many_arguments)]
fn write_tile(
    set: &TaskSet,
    fl: &Flat,
    ks: &[f64],
    blocks: &[Range<usize>],
    bi: usize,
    bj: usize,
    out: SharedOut,
    sc: &mut TileScratch,
) -> bool {
    let nq = set.n_query();
    let qo = set.query_offsets();
    let (ib, jb) = (blocks[bi].clone(), blocks[bj].clone());
    let ok = phi_tile(set, fl, ks, ib.clone(), jb.clone(), sc);
    let (r0, r1) = (qo[ib.start], qo[ib.end]);
    let (c0, c1) = (qo[jb.start], qo[jb.end]);
    let o = out;
    let diag = bi == bj;
    let (nr, nc) = (r1 - r0, c1 - c0);
    // SAFETY (all writes below): (r, c) with r in block bi and c in block bj, and its
    // mirror (c, r), belong to this block pair only; r, c < nq.
    // Upper part (c ≥ r), row by row.
    for lr in 0..nr {
        let lc0 = if diag { lr } else { 0 };
        unsafe {
            stream_copy(
                o.0.add((r0 + lr) * nq + c0 + lc0),
                &sc.phi[lr * nc + lc0..(lr + 1) * nc],
            );
        }
    }
    // Strict lower part: Φ[c, r] = Φ[r, c], from the transposed tile.
    for lc in 0..nc {
        let hi = if diag { lc } else { nr };
        unsafe {
            stream_copy(o.0.add((c0 + lc) * nq + r0), &sc.w2t[lc * nr..lc * nr + hi]);
        }
    }
    stream_fence();
    ok
}

/// Tasks with more query rows than this make whole-task tiles too large (two n × n scratch
/// buffers per thread); such sets are assembled by the row path instead.
const MAX_TILE_ROWS: usize = 1024;

/// Φ by the row path ([`assemble_rows`] over all rows; no tile scratch), the upper triangle
/// mirrored onto the lower one: the same bits as the tiled pass (for an exactly symmetric K),
/// used when a single task is too large for whole-task tiles.
fn assemble_full_by_rows(
    set: &TaskSet,
    a: &[Array2<f64>],
    k: ArrayView2<f64>,
) -> Result<Array2<f64>> {
    let nq = set.n_query();
    let k = k.as_standard_layout();
    let mut phi = assemble_rows(
        set,
        a,
        k.slice(s![..nq, ..]),
        k.slice(s![nq.., ..]),
        0..nq,
        0,
        set.len() - 1,
    );
    const B: usize = 64;
    let buf = phi.as_slice_mut().expect("standard layout");
    for r0 in (0..nq).step_by(B) {
        for c0 in (0..=r0).step_by(B) {
            for r in r0..(r0 + B).min(nq) {
                for c in c0..(c0 + B).min(r) {
                    buf[r * nq + c] = buf[c * nq + r];
                }
            }
        }
    }
    if !crate::linalg::all_finite(phi.view()) {
        crate::error::ensure_finite(k.view(), "outer Gram matrix")?;
        crate::error::ensure_finite(phi.view(), "Φ (overflow in the assembly)")?;
    }
    Ok(phi)
}

fn assemble_rows(
    set: &TaskSet,
    a: &[Array2<f64>],
    kq: ArrayView2<f64>,
    kss: ArrayView2<f64>,
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
    let fl = Flat::new(a);
    // Rows of C = Dᵀ for the touched tasks' supports.
    let mut c_t = Array2::<f64>::zeros((so[i1 + 1] - s_base, nq));
    c_t.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut row)| {
            dt_seg(
                set,
                &fl,
                kss.row(l).to_slice().unwrap(),
                0..set.len(),
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
            let kr = kq.row(lr).to_slice().unwrap();
            let mut d_r = vec![0.0; ns];
            d_row(
                fl.a_row(set, i, r - qo[i]),
                &kr[nq..],
                |kk| &kss.row(so[i] + kk - s_base).to_slice().unwrap()[nq..],
                &mut d_r,
            );
            let c_i: Vec<&[f64]> = (so[i]..so[i + 1])
                .map(|sidx| c_t.row(sidx - s_base).to_slice().unwrap())
                .collect();
            phi_row(
                set,
                &fl,
                i,
                r - qo[i],
                &c_i,
                &d_r,
                &kr[..nq],
                tmp,
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
