//! Batched (structure-of-arrays) evaluation of the kernel recursion for a block of rows of
//! pairs ([`Block`]), with runtime SIMD dispatch.
//!
//! A row is the pairs (x_i, x_j), j ∈ j0..j0+n, whose Gram entries `x_i·x_j` are given. The
//! pair states `k12 = c`, `D`, `Δ`, Θ live in arrays of [`CH`] lanes; every layer is one
//! branch-free loop over the lanes (selects only, [`super::activation::relu_lane`] /
//! [`super::activation::erf_lane`]), so LLVM vectorizes it. The per-point diagonal chains
//! (`k11`, `T(k11, k11)`, `√k11` per layer, [`super::diag_chain`]) are stored layer-major, so
//! the column points of a row are contiguous.
//!
//! The same generic code is compiled three times: with AVX-512 (f, dq, vl), with AVX2 + FMA,
//! and for the baseline target; [`eval_block`] picks the best one the CPU supports at run time
//! (`is_x86_feature_detected!`). No operation is contracted into an FMA (Rust never does that
//! implicitly) and vector IEEE operations (+, −, ×, ÷, √, compares, selects) are exact per lane,
//! so all three give the same bits; `tests/kernel_simd.rs` checks it on the full Gram
//! matrices with [`force_portable`].

use super::activation::Activation;
use super::activation::{
    atan2_finish, atan2_reduce, atan_core, erf_lane_post, erf_sp, pos, relu_angle_passes,
    relu_lane_post, ReluConsts,
};
use super::arch::{Arch, Parameterization};
use super::pair::{diag_chain, first_layer, point_scales, row_norms2, scaled_first};
#[doc(hidden)]
pub use crate::simd::{active_path, force_avx2, force_portable};
use crate::simd::{level, Level};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

/// Lanes per batch (state arrays of this length stay in L1).
pub(crate) const CH: usize = 64;

/// Per-point data of one input set: first-layer variances and layer-major diagonal chains.
pub(crate) struct Side<'a> {
    pub x: ArrayView2<'a, f64>,
    /// Rows rescaled by powers of two ([`point_scales`]; `None`: none is) and the factor `p_j`
    /// per row (x_j = p_j x̃_j; 1.0 for rows left alone). Everything below is of x̃_j.
    pub xs: Option<Array2<f64>>,
    pub p: Vec<f64>,
    /// ‖x_j‖².
    pub norms: Vec<f64>,
    /// Σ¹(x_j, x_j) = σ_w²‖x_j‖²/d + σ_b².
    pub q0: Vec<f64>,
    /// `q[h n + j]`, `t[h n + j]`, `sq[h n + j]`: Σ^{h+1}(x_j, x_j), T of it, its square root,
    /// h = 0..L−1 ([`diag_chain`]).
    pub q: Vec<f64>,
    pub t: Vec<f64>,
    pub sq: Vec<f64>,
}

impl<'a> Side<'a> {
    pub(crate) fn new(arch: &Arch, x: ArrayView2<'a, f64>) -> Self {
        let n = x.nrows();
        let dim = x.ncols() as f64;
        let sw2 = arch.sigma_w * arch.sigma_w;
        let sb2 = arch.sigma_b2();
        let (xs, p) = point_scales(arch, x);
        let norms = match &xs {
            Some(a) => row_norms2(a.view()),
            None => row_norms2(x),
        };
        // The same expression as the pair state's k11 (`first_layer_naive`).
        let q0: Vec<f64> = norms.iter().map(|&nn| sw2 * nn / dim + sb2).collect();
        let l = arch.depth;
        let (mut q, mut t, mut sq) = (vec![0.0; l * n], vec![0.0; l * n], vec![0.0; l * n]);
        let chains: Vec<Vec<super::Diag>> = if l == 0 {
            Vec::new()
        } else {
            q0.par_iter()
                .with_min_len(64)
                .map(|&q1| diag_chain(arch, q1))
                .collect()
        };
        for (j, chain) in chains.into_iter().enumerate() {
            for (h, dg) in chain.into_iter().enumerate() {
                q[h * n + j] = dg.q;
                t[h * n + j] = dg.t;
                sq[h * n + j] = dg.sq;
            }
        }
        Side {
            x,
            xs,
            p,
            norms,
            q0,
            q,
            t,
            sq,
        }
    }

    /// Row j as used by the recursion (x̃_j).
    pub(crate) fn row(&self, j: usize) -> ArrayView1<'_, f64> {
        match &self.xs {
            Some(a) => a.row(j),
            None => self.x.row(j),
        }
    }
}

/// Everything a row evaluation needs: the architecture's constants and both input sets
/// (`s2 = None`: X with itself, pairs (i, j) and (j, i) are the same pair).
pub(crate) struct Ctx<'a> {
    pub arch: &'a Arch,
    pub s1: Side<'a>,
    pub s2: Option<Side<'a>>,
    sw2: f64,
    sb2: f64,
    sw4: f64,
    sw2sb2: f64,
    dim: f64,
    bias_one: f64,
    widths: Vec<f64>,
    relu: ReluConsts,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        arch: &'a Arch,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Self {
        let sw2 = arch.sigma_w * arch.sigma_w;
        let sb2 = arch.sigma_b2();
        let relu = match arch.activation {
            Activation::AbRelu { a, b } => ReluConsts::new(a, b),
            _ => ReluConsts::new(0.0, 1.0),
        };
        Ctx {
            arch,
            s1: Side::new(arch, x1),
            s2: x2.map(|x| Side::new(arch, x)),
            sw2,
            sb2,
            sw4: sw2 * sw2,
            sw2sb2: sw2 * sb2,
            dim: x1.ncols() as f64,
            bias_one: if arch.sigma_b.is_some() { 1.0 } else { 0.0 },
            widths: if arch.parameterization == Parameterization::Standard {
                arch.widths.iter().map(|&w| w as f64).collect()
            } else {
                vec![0.0; arch.depth]
            },
            relu,
        }
    }

    pub(crate) fn sym(&self) -> bool {
        self.s2.is_none()
    }

    pub(crate) fn s2(&self) -> &Side<'a> {
        self.s2.as_ref().unwrap_or(&self.s1)
    }
}

/// Pair states of one batch, and the per-layer temporaries of the layer loops. Kept per
/// thread ([`SCRATCH`]) so that no batch pays for zero-initialising ~4 KiB of arrays.
struct Lanes {
    c: [f64; CH],
    d: [f64; CH],
    dl: [f64; CH],
    th: [f64; CH],
    /// Pair scale factor `p_i p_j` (1.0 for ordinary pairs).
    sc: [f64; CH],
    /// Temporaries: √D (ReLU) or √P (erf); the reduced angle; h(ψ) (ReLU).
    sd: [f64; CH],
    t: [f64; CH],
    hs: [f64; CH],
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Box<Lanes>> = std::cell::RefCell::new(Box::new(Lanes {
        c: [0.0; CH],
        d: [0.0; CH],
        dl: [0.0; CH],
        th: [0.0; CH],
        sc: [1.0; CH],
        sd: [0.0; CH],
        t: [0.0; CH],
        hs: [0.0; CH],
    }));
}

/// A block of rows of pairs to evaluate: row li (point i = rows.start + li of side 1) holds
/// the pairs (x_i, x_{j0+k}), k < `ncols` (k ≤ li on a diagonal block, `lower`), whose Gram
/// entries are `g[li·ld + k]`. The NNGP and NTK values go to `out_c` / `out_t` at the same
/// index, or, for an output that is not kept, every row to the first row of its buffer (a
/// scratch row).
pub(crate) struct Block<'a> {
    pub rows: std::ops::Range<usize>,
    pub j0: usize,
    pub ncols: usize,
    pub ld: usize,
    pub lower: bool,
    pub g: &'a [f64],
    pub out_c: &'a mut [f64],
    pub out_t: &'a mut [f64],
    pub keep_c: bool,
    pub keep_t: bool,
}

/// NNGP and NTK of the pairs of a [`Block`], from their Gram entries. Every pair is computed
/// by the same lane code whatever its position, so a pair's bits do not depend on the batch,
/// the block, the row split or the thread count. Returns how many kept NNGP and NTK values are
/// not finite. One dispatch (SIMD level, per-thread scratch) per block.
pub(crate) fn eval_block(cx: &Ctx, b: Block) -> (usize, usize) {
    SCRATCH.with_borrow_mut(|ln| match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { eval_block_avx512(cx, b, ln) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { eval_block_avx2(cx, b, ln) },
        _ => eval_block_generic(cx, b, ln),
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn eval_block_avx512(cx: &Ctx, b: Block, ln: &mut Lanes) -> (usize, usize) {
    eval_block_generic(cx, b, ln)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn eval_block_avx2(cx: &Ctx, b: Block, ln: &mut Lanes) -> (usize, usize) {
    eval_block_generic(cx, b, ln)
}

#[inline(always)]
fn eval_block_generic(cx: &Ctx, b: Block, ln: &mut Lanes) -> (usize, usize) {
    let (mut bad_c, mut bad_t) = (0, 0);
    for (li, i) in b.rows.clone().enumerate() {
        let len = if b.lower { li + 1 } else { b.ncols };
        let row = li * b.ld..li * b.ld + len;
        let rc = if b.keep_c { row.clone() } else { 0..len };
        let rt = if b.keep_t { row.clone() } else { 0..len };
        let (c, t) = eval_row_generic(
            cx,
            i,
            b.j0,
            &b.g[row],
            &mut b.out_c[rc],
            &mut b.out_t[rt],
            ln,
        );
        bad_c += if b.keep_c { c } else { 0 };
        bad_t += if b.keep_t { t } else { 0 };
    }
    (bad_c, bad_t)
}

#[inline(always)]
fn eval_row_generic(
    cx: &Ctx,
    i: usize,
    j0: usize,
    g: &[f64],
    out_c: &mut [f64],
    out_t: &mut [f64],
    ln: &mut Lanes,
) -> (usize, usize) {
    let std_param = cx.arch.parameterization == Parameterization::Standard;
    // Whether any input point was rescaled ([`point_scales`]); else every pair factor is 1.
    let scaled = cx.s1.xs.is_some() || cx.s2().xs.is_some();
    let (mut bad_c, mut bad_t) = (0usize, 0usize);
    let mut k0 = 0;
    while k0 < g.len() {
        let n = CH.min(g.len() - k0);
        // (The layers read the factors in the standard parameterization: always reset.)
        ln.sc[..n].fill(1.0);
        first(cx, i, j0 + k0, &g[k0..k0 + n], ln, std_param, scaled);
        match (cx.arch.activation, std_param) {
            (Activation::Erf, false) => layers::<ErfLayer, false>(cx, i, j0 + k0, n, ln),
            (Activation::Erf, true) => layers::<ErfLayer, true>(cx, i, j0 + k0, n, ln),
            (Activation::Identity, false) => layers::<IdLayer, false>(cx, i, j0 + k0, n, ln),
            (Activation::Identity, true) => layers::<IdLayer, true>(cx, i, j0 + k0, n, ln),
            (_, false) => layers::<ReluLayer, false>(cx, i, j0 + k0, n, ln),
            (_, true) => layers::<ReluLayer, true>(cx, i, j0 + k0, n, ln),
        }
        // Back to absolute units (exact powers of two; ×1.0 for ordinary pairs). Θ is already
        // absolute in the standard parameterization. Non-finite values are counted here
        // (an integer sum, so the loop stays vectorized).
        // Without rescaled inputs every factor is 1.0 and the products are skipped (x·1 = x).
        let (oc, ot) = (&mut out_c[k0..k0 + n], &mut out_t[k0..k0 + n]);
        if scaled {
            for k in 0..n {
                let c = ln.c[k] * ln.sc[k];
                let t = if std_param {
                    ln.th[k]
                } else {
                    ln.th[k] * ln.sc[k]
                };
                oc[k] = c;
                ot[k] = t;
                bad_c += usize::from(!c.is_finite());
                bad_t += usize::from(!t.is_finite());
            }
        } else {
            for k in 0..n {
                let (c, t) = (ln.c[k], ln.th[k]);
                oc[k] = c;
                ot[k] = t;
                bad_c += usize::from(!c.is_finite());
                bad_t += usize::from(!t.is_finite());
            }
        }
        k0 += n;
    }
    (bad_c, bad_t)
}

/// First layer of a batch: the naive Gram-entry formulas (vectorized), then the rare pairs
/// whose D or Δ would cancel (and exact diagonal entries) are redone by [`first_layer`].
#[inline(always)]
fn first(cx: &Ctx, i: usize, j0: usize, g: &[f64], ln: &mut Lanes, std_param: bool, scaled: bool) {
    let n = g.len();
    let s2 = cx.s2();
    let q1 = cx.s1.q0[i];
    let q2s = &s2.q0[j0..j0 + n];
    let (sw2, sb2, dim, b1) = (cx.sw2, cx.sb2, cx.dim, cx.bias_one);
    let p1 = cx.s1.p[i];
    let p2s = &s2.p[j0..j0 + n];
    let mut any = false;
    for k in 0..n {
        let q2 = q2s[k];
        let gk = g[k];
        // Same expressions as `first_layer_naive`.
        let c = if q1 == 0.0 || q2 == 0.0 {
            0.0
        } else {
            sw2 * gk / dim + sb2
        };
        ln.c[k] = c;
        ln.d[k] = pos(q1 * q2 - c * c);
        ln.dl[k] = pos(q1 + q2 - 2.0 * c);
        ln.th[k] = if std_param { gk + b1 } else { c };
        any |= ln.d[k] <= 1e-2 * q1 * q2 || ln.dl[k] <= 1e-2 * (q1 + q2);
    }
    if scaled {
        any |= p1 != 1.0 || p2s.iter().any(|&p| p != 1.0);
    }
    let sym = cx.sym();
    // The scalar scan only where a pair needs it (a cancelling pair or the diagonal entry).
    if !(any || sym && (j0..j0 + n).contains(&i)) {
        return;
    }
    for k in 0..n {
        let j = j0 + k;
        let q2 = q2s[k];
        let same = sym && i == j;
        // Canonical order (smaller index first) in the symmetric case.
        let (a, b) = if sym && j < i { (j, i) } else { (i, j) };
        if p1 != 1.0 || p2s[k] != 1.0 {
            let sc = cx.s1.p[a] * s2.p[b];
            let (st, g_raw) = scaled_first(
                cx.arch,
                cx.s1.row(a),
                s2.row(b),
                cx.s1.norms[a],
                s2.norms[b],
                sc,
                same,
            );
            ln.c[k] = st.c;
            ln.d[k] = st.d;
            ln.dl[k] = st.delta;
            ln.th[k] = if std_param { g_raw + b1 } else { st.c };
            ln.sc[k] = sc;
        } else if same || ln.d[k] <= 1e-2 * q1 * q2 || ln.dl[k] <= 1e-2 * (q1 + q2) {
            let st = first_layer(
                cx.arch,
                cx.s1.row(a),
                s2.row(b),
                cx.s1.norms[a],
                s2.norms[b],
                g[k],
                same,
            );
            ln.c[k] = st.c;
            ln.d[k] = st.d;
            ln.dl[k] = st.delta;
            if !std_param {
                ln.th[k] = st.c;
            }
        }
    }
}

/// The state update of one layer from the dual `(t12, Ṫ, td, tdelta)` (module docs of
/// `kernel`): `k12' = σ_w² t12 + σ_b²`, `D' = σ_w⁴ td + σ_w²σ_b² tdelta`, `Δ' = σ_w² tdelta`,
/// `Θ' = k12' + σ_w² Ṫ Θ` (NTK) or `n_h t12 + [b] + σ_w² Ṫ Θ` (standard). In the `LAST`
/// layer D' and Δ' are not needed (no later angle) and not computed: td and tdelta are then
/// dead, and the compiler drops their arithmetic from the lane loop. The outputs (k12', Θ')
/// are the same bits either way.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update<const STD: bool, const LAST: bool>(
    cx: &Ctx,
    w: f64,
    sc: f64,
    du: (f64, f64, f64, f64),
    c: &mut f64,
    d: &mut f64,
    dl: &mut f64,
    th: &mut f64,
) {
    let (t12, tdot, td, tdl) = du;
    let c_new = cx.sw2 * t12 + cx.sb2;
    *th = if STD {
        w * t12 * sc + cx.bias_one + cx.sw2 * tdot * *th
    } else {
        c_new + cx.sw2 * tdot * *th
    };
    *c = c_new;
    if !LAST {
        *d = cx.sw4 * td + cx.sw2sb2 * tdl;
        *dl = cx.sw2 * tdl;
    }
}

// The layer loops run each lane function in three passes over the batch (reduce the atan2
// argument; atan_core; the rest): every pass has short dependency chains and independent
// iterations, so the out-of-order core overlaps many lanes instead of waiting on one long
// sqrt → div → polynomial → div chain. Same operations in the same order per lane as
// `relu_lane` / `erf_lane`, hence the same bits.

/// The batch state and temporaries as slices of the batch length, for one layer.
struct LayerLanes<'a> {
    c: &'a mut [f64],
    d: &'a mut [f64],
    dl: &'a mut [f64],
    th: &'a mut [f64],
    sc: &'a [f64],
    sd: &'a mut [f64],
    t: &'a mut [f64],
    hs: &'a mut [f64],
}

impl Lanes {
    fn split(&mut self, n: usize) -> LayerLanes<'_> {
        LayerLanes {
            c: &mut self.c[..n],
            d: &mut self.d[..n],
            dl: &mut self.dl[..n],
            th: &mut self.th[..n],
            sc: &self.sc[..n],
            sd: &mut self.sd[..n],
            t: &mut self.t[..n],
            hs: &mut self.hs[..n],
        }
    }
}

/// One hidden layer of an activation family over a batch: pairs (x_i, x_{j0+m}), m < n.
trait LayerKind {
    fn layer<const STD: bool, const LAST: bool>(
        cx: &Ctx,
        h: usize,
        i: usize,
        j0: usize,
        n: usize,
        ln: &mut Lanes,
    );
}

/// All L layers, the last one without D and Δ ([`update`]).
#[inline(always)]
fn layers<K: LayerKind, const STD: bool>(cx: &Ctx, i: usize, j0: usize, n: usize, ln: &mut Lanes) {
    let l = cx.arch.depth;
    for h in 0..l {
        if h + 1 < l {
            K::layer::<STD, false>(cx, h, i, j0, n, ln);
        } else {
            K::layer::<STD, true>(cx, h, i, j0, n, ln);
        }
    }
}

struct ReluLayer;
struct ErfLayer;
struct IdLayer;

impl LayerKind for ReluLayer {
    #[inline(always)]
    fn layer<const STD: bool, const LAST: bool>(
        cx: &Ctx,
        h: usize,
        i: usize,
        j0: usize,
        n: usize,
        ln: &mut Lanes,
    ) {
        let (s1, s2) = (&cx.s1, cx.s2());
        let (n1, n2) = (s1.x.nrows(), s2.x.nrows());
        let k = cx.relu;
        let sq1 = s1.sq[h * n1 + i];
        let sq2 = &s2.sq[h * n2 + j0..h * n2 + j0 + n];
        let w = cx.widths[h];
        let LayerLanes {
            c,
            d,
            dl,
            th,
            sc,
            sd,
            t,
            hs,
        } = ln.split(n);
        relu_angle_passes(c, d, sd, t, hs);
        for m in 0..n {
            let du = relu_lane_post(&k, c[m], d[m], dl[m], sq1 * sq2[m], sd[m], t[m], hs[m]);
            update::<STD, LAST>(
                cx, w, sc[m], du, &mut c[m], &mut d[m], &mut dl[m], &mut th[m],
            );
        }
    }
}

impl LayerKind for ErfLayer {
    #[inline(always)]
    fn layer<const STD: bool, const LAST: bool>(
        cx: &Ctx,
        h: usize,
        i: usize,
        j0: usize,
        n: usize,
        ln: &mut Lanes,
    ) {
        let (s1, s2) = (&cx.s1, cx.s2());
        let (n1, n2) = (s1.x.nrows(), s2.x.nrows());
        let (q1, t1) = (s1.q[h * n1 + i], s1.t[h * n1 + i]);
        let q2 = &s2.q[h * n2 + j0..h * n2 + j0 + n];
        let t2 = &s2.t[h * n2 + j0..h * n2 + j0 + n];
        let w = cx.widths[h];
        // `sd` holds √P here.
        let LayerLanes {
            c,
            d,
            dl,
            th,
            sc,
            sd: sp,
            t,
            ..
        } = ln.split(n);
        for m in 0..n {
            sp[m] = erf_sp(q1 + q2[m], d[m]);
        }
        for m in 0..n {
            let y = 2.0 * c[m];
            let ay = if y < 0.0 { -y } else { y };
            t[m] = atan2_reduce(ay, sp[m]);
        }
        for tm in t.iter_mut() {
            *tm = atan_core(*tm);
        }
        for m in 0..n {
            let y = 2.0 * c[m];
            let ay = if y < 0.0 { -y } else { y };
            let a = atan2_finish(ay, sp[m], t[m]);
            let du = erf_lane_post(c[m], t1, t2[m], sp[m], a);
            update::<STD, LAST>(
                cx, w, sc[m], du, &mut c[m], &mut d[m], &mut dl[m], &mut th[m],
            );
        }
    }
}

impl LayerKind for IdLayer {
    #[inline(always)]
    fn layer<const STD: bool, const LAST: bool>(
        cx: &Ctx,
        h: usize,
        _i: usize,
        _j0: usize,
        n: usize,
        ln: &mut Lanes,
    ) {
        let w = cx.widths[h];
        let LayerLanes {
            c, d, dl, th, sc, ..
        } = ln.split(n);
        for m in 0..n {
            let du = (c[m], 1.0, d[m], dl[m]);
            update::<STD, LAST>(
                cx, w, sc[m], du, &mut c[m], &mut d[m], &mut dl[m], &mut th[m],
            );
        }
    }
}
