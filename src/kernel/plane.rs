//! The per-pair plane recursion of the convolutional kernels (MATH.md §10, stax definitions).
//!
//! For a pair of images (x, y) with P₁, P₂ pixels the state is four P₁×P₂ planes, row-major
//! over (pixel of x, pixel of y): `c` = Σ(x, y)[p, q] (NNGP), `th` = Θ(x, y)[p, q] (NTK),
//! `d` = k11 k22 − k12² and `dl` = k11 + k22 − 2k12 of each pixel pair (carried exactly where
//! the layer allows, as in the FC recursion), with k11 = Σ(x, x)[p, p], k22 = Σ(y, y)[q, q]
//! taken from the images' own runs ([`SelfDiags`]).
//!
//! ```text
//! input:      Σ⁰[p,q] = Σ_c x[p,c] y[q,c] / C,  Θ⁰ = 0
//! conv K:     Σ' = σ_w² A(Σ) + σ_b²,   Θ' = Σ' + σ_w² A(Θ)          (NTK parameterization)
//!             Θ' = n_in K² A(Σ) + [bias] + σ_w² A(Θ)                 (standard)
//!             A(S)[p,q] = (1/K²) Σ_δ S[p+δ, q+δ]  (same offset δ on both sides; zero padding)
//! activation: Σ' = T_φ(k11, Σ[p,q], k22),  Θ' = Ṫ_φ(k11, Σ[p,q], k22) Θ[p,q]
//! avgpool K:  S'[P,Q] = mean over a ∈ window(P), b ∈ window(Q) of S[a,b]
//! gap:        S' = mean over all (p, q) (summed in the order of [`ZERO`]);   flatten: S' = mean over p of S[p,p]
//! dense:      a 1×1 conv (on one value per image: the FC layer, fan-in n_in)
//! ```
//!
//! The K×K shifted add runs as contiguous row slices of the planes (the innermost index is
//! the column of y's pixel), in a fixed order, so every entry's bits are independent of the
//! pair's position, the tile and the thread count.

// Index loops over several planes at once (p, q address 4 planes and 2 variance vectors).
#![allow(clippy::needless_range_loop)]

use super::activation::{
    erf_lane, pos, relu_angle_passes, relu_lane, relu_lane_post, Activation, Diag, ReluConsts,
};
use super::arch::Parameterization;
use super::pair::wedge2;
use super::spec::{Layer, Normalization, Padding, Spec};
use crate::simd::{level, Level};
use ndarray::{ArrayView1, ArrayView3};

/// The four planes of one pair and their geometry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Planes {
    pub h1: usize,
    pub w1: usize,
    pub h2: usize,
    pub w2: usize,
    /// Fan-in of a following conv / dense per spatial position (channels; P·N after flatten).
    pub n_in: f64,
    pub c: Vec<f64>,
    pub th: Vec<f64>,
    pub d: Vec<f64>,
    pub dl: Vec<f64>,
    /// Θ is +0 everywhere (the input planes): a conv's shifted sum of Θ is then +0 too and is
    /// not computed.
    pub th_zero: bool,
    /// The input planes of one-channel images, not stored ([`input_lazy`]): `c`, `d`, `dl`
    /// are empty and their entries are computed from the pixels where needed.
    pub img: Option<Img1>,
    /// x and y are the same image (a self pair): the GAP reads the lower block triangle only
    /// and mirrors it ([`GapAcc`]).
    pub own: bool,
}

/// The pixels of two one-channel images x (P₁) and y (P₂), standing for their input planes:
/// Σ⁰[p, q] = (0 + x_p y_q)/1, D⁰ = 0, Δ⁰ = (x_p − y_q)²/1 ([`input_row_c1`] with C = 1).
#[derive(Clone, Debug, Default)]
pub(crate) struct Img1 {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Planes {
    /// (Σ⁰, D⁰) of pixel pair (i1, i2) of stored or lazy ([`Img1`]) planes.
    fn cd(&self, i1: usize, i2: usize) -> (f64, f64) {
        match &self.img {
            // The one-channel input row's formulas with C = 1.
            Some(im) => ((0.0 + im.x[i1] * im.y[i2]) / 1.0, 0.0 / 1.0),
            None => {
                let e = i1 * self.p2() + i2;
                (self.c[e], self.d[e])
            }
        }
    }
}

/// Per image: k11 = Σ(x, x)[p, p] before every layer (index = layer), from the image's own
/// run; used as the per-pixel variances of the cross pairs.
pub(crate) type SelfDiags = Vec<Vec<f64>>;

impl Planes {
    fn p1(&self) -> usize {
        self.h1 * self.w1
    }
    fn p2(&self) -> usize {
        self.h2 * self.w2
    }
    /// Return the buffers to the pool.
    pub(crate) fn recycle(self) {
        for v in [self.c, self.th, self.d, self.dl] {
            give(v);
        }
    }
    /// Σ[p, p]-style diagonal (only meaningful for a self pair).
    pub(crate) fn diag(&self) -> Vec<f64> {
        let p = self.p1();
        (0..p).map(|i| self.c[i * p + i]).collect()
    }
}

/// `‖u‖²‖v‖² − (u·v)²` for short vectors by Lagrange's identity with each 2×2 minor by
/// Kahan's fma difference of products (few ulps, no cancellation); [`wedge2`] for long ones.
fn wedge_small(u: ArrayView1<f64>, v: ArrayView1<f64>, nu: f64, g: f64) -> f64 {
    let n = u.len();
    if n > 8 {
        return wedge2(u, v, nu, g);
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let w = u[j] * v[i];
            let e = (-u[j]).mul_add(v[i], w);
            let f = u[i].mul_add(v[j], -w);
            let m = f + e;
            s += m * m;
        }
    }
    s
}

/// The input planes of images x (H₁, W₁, C) and y (H₂, W₂, C): Σ⁰ = x_p·y_q / C (no 1/C for
/// Arora's normalization), Θ⁰ = 0, D and Δ of every pixel pair without cancellation
/// (`same`: x and y are the same image, so D = Δ = 0 on the diagonal pixel pairs exactly).
pub(crate) fn input(spec: &Spec, x: ArrayView3<f64>, y: ArrayView3<f64>, same: bool) -> Planes {
    let (h1, w1, ch) = x.dim();
    let (h2, w2, _) = y.dim();
    let div = input_div(spec, ch);
    let (xf, nx) = pixels(x);
    let (yf, ny) = pixels(y);
    let (p1, p2) = (h1 * w1, h2 * w2);
    let mut pl = Planes {
        h1,
        w1,
        h2,
        w2,
        n_in: ch as f64,
        c: take(p1 * p2),
        th: take(p1 * p2),
        d: take(p1 * p2),
        dl: take(p1 * p2),
        th_zero: true,
        img: None,
        own: same,
    };
    pl.th.fill(0.0);
    for p in 0..p1 {
        let r = p * p2..(p + 1) * p2;
        let (c, d, dl) = (&mut pl.c[r.clone()], &mut pl.d[r.clone()], &mut pl.dl[r]);
        let xr = (&xf[p * ch..(p + 1) * ch], nx[p]);
        input_row(xr, (&yf, &ny), ch, div, (same).then_some(p), (c, d, dl));
    }
    pl
}

/// The divisor of the input planes: C (1 for Arora's normalization).
pub(super) fn input_div(spec: &Spec, ch: usize) -> f64 {
    if spec.normalization == Normalization::Arora {
        1.0
    } else {
        ch as f64
    }
}

/// An image's pixels as P rows of C values (row-major) and their squared norms `x_p·x_p`.
pub(super) fn pixels(x: ArrayView3<f64>) -> (Vec<f64>, Vec<f64>) {
    let (h, w, ch) = x.dim();
    let xs = x.to_shape((h * w, ch)).expect("3-D view");
    let xs = xs.as_standard_layout();
    let n = xs.rows().into_iter().map(|r| r.dot(&r)).collect();
    (xs.as_slice().expect("standard layout").to_vec(), n)
}

/// The input planes of one-channel images x and y without storing them ([`Img1`]), for a
/// first layer that [`conv_lazy_ok`] accepts: the same entries as [`input`] (with C = 1 the
/// normalization divides by 1, and `same` changes no entry).
pub(crate) fn input_lazy(x: ArrayView3<f64>, y: ArrayView3<f64>) -> Planes {
    let ((h1, w1, _), (h2, w2, _)) = (x.dim(), y.dim());
    Planes {
        h1,
        w1,
        h2,
        w2,
        n_in: 1.0,
        th_zero: true,
        own: false,
        img: Some(Img1 {
            x: x.iter().copied().collect(),
            y: y.iter().copied().collect(),
        }),
        ..Default::default()
    }
}

/// Whether a first layer `l` on images with `ch` channels can read lazy input planes
/// ([`input_lazy`]): one channel and a conv whose y side keeps its grid (SAME or K = 1,
/// K ≤ the separable path's limit), so that only [`ColSums`] and [`avg_det`] read them.
pub(crate) fn conv_lazy_ok(l: &Layer, ch: usize) -> bool {
    match *l {
        Layer::Conv { k, padding } => ch == 1 && (padding == Padding::Same || k == 1) && k <= MAX_K,
        _ => false,
    }
}

/// Row p of [`input`]: x's pixel `xr` (with its squared norm) against every pixel of y (`yf`,
/// C values each, norms `ny`); `diag`: the entry of the same pixel of the same image.
pub(super) fn input_row(
    (xr, nxp): (&[f64], f64),
    (yf, ny): (&[f64], &[f64]),
    ch: usize,
    div: f64,
    diag: Option<usize>,
    (c, d, dl): (&mut [f64], &mut [f64], &mut [f64]),
) {
    if ch == 1 {
        return input_row_c1((xr[0], nxp), yf, div, diag, (c, d, dl));
    }
    let xv = ArrayView1::from(xr);
    for (q, yr) in yf.chunks_exact(ch).enumerate() {
        if diag == Some(q) {
            c[q] = nxp / div;
            d[q] = 0.0;
            dl[q] = 0.0;
            continue;
        }
        let yv = ArrayView1::from(yr);
        let g = xv.dot(&yv);
        // Project onto the longer vector (ties: the first), as the FC first layer does.
        let w = if nxp >= ny[q] {
            wedge_small(xv, yv, nxp, g)
        } else {
            wedge_small(yv, xv, ny[q], g)
        };
        let diff2: f64 = xr.iter().zip(yr).map(|(a, b)| (a - b) * (a - b)).sum();
        c[q] = g / div;
        d[q] = w / (div * div);
        dl[q] = diff2 / div;
    }
}

/// [`input_row`] for one channel, branch-free over the row, with the same values: ndarray's
/// dot of two 1-vectors is `0 + x y` (its unrolled sum starts from zero), the Lagrange
/// wedge of 1-vectors is the empty sum 0, and the sum of one squared difference is that
/// square.
fn input_row_c1(
    (x0, nxp): (f64, f64),
    yf: &[f64],
    div: f64,
    diag: Option<usize>,
    (c, d, dl): (&mut [f64], &mut [f64], &mut [f64]),
) {
    let n = c.len();
    let (yf, d, dl) = (&yf[..n], &mut d[..n], &mut dl[..n]);
    if div == 1.0 {
        // The same values without the divisions: v / 1 = v and 0 / 1 = 0 exactly.
        for q in 0..n {
            let y0 = yf[q];
            c[q] = 0.0 + x0 * y0;
            d[q] = 0.0;
            dl[q] = (x0 - y0) * (x0 - y0);
        }
    } else {
        for q in 0..n {
            let y0 = yf[q];
            c[q] = (0.0 + x0 * y0) / div;
            d[q] = 0.0 / (div * div);
            dl[q] = ((x0 - y0) * (x0 - y0)) / div;
        }
    }
    if let Some(q) = diag {
        c[q] = nxp / div;
        d[q] = 0.0;
        dl[q] = 0.0;
    }
}

/// One layer on the planes of a pair; `k1`, `k2` are the per-pixel variances of x and y
/// before this layer (their own runs' diagonals; for a self pair both are its own).
pub(crate) fn layer(
    spec: &Spec,
    l: &Layer,
    last: bool,
    pl: Planes,
    k1: &[f64],
    k2: &[f64],
) -> Planes {
    let out = match *l {
        Layer::Conv { k, padding } => conv(spec, &pl, k, padding, (k1, k2), None, false).0,
        Layer::Dense if spec.normalization == Normalization::Arora && last => return pl,
        Layer::Dense => conv(spec, &pl, 1, Padding::Valid, (k1, k2), None, false).0,
        Layer::Act(a) => return activation(a, pl, k1, k2),
        Layer::AvgPool { k } => pool(&pl, k),
        Layer::Gap => reduce(&pl, false),
        Layer::Flatten => reduce(&pl, true),
    };
    pl.recycle();
    out
}

/// The result of [`conv_act`]: the planes after the activation (after the GAP if fused), and
/// x's per-pixel variances after the conv and after the activation (for a self pair: the
/// diagonals of Σ between the layers, bit for bit).
pub(crate) struct Fused {
    pub pl: Planes,
    pub conv_var: Vec<f64>,
    pub act_var: Vec<f64>,
}

/// A conv (or dense, not the last) layer `l` fused with the activation `a` that follows it
/// and, if `gap`, with a global average pooling after that (the same bits as [`layer`] two
/// or three times, one row pass instead of two or three plane passes); `k1`, `k2` are the
/// variances before the conv.
pub(crate) fn conv_act(
    spec: &Spec,
    l: &Layer,
    a: Activation,
    gap: bool,
    pl: Planes,
    (k1, k2): (&[f64], &[f64]),
) -> Fused {
    let (k, padding) = match *l {
        Layer::Conv { k, padding } => (k, padding),
        _ => (1, Padding::Valid),
    };
    let (out, conv_var, gap_acc) = conv(spec, &pl, k, padding, (k1, k2), Some(a), gap);
    pl.recycle();
    match gap_acc {
        Some(acc) => Fused {
            pl: acc.planes(&out),
            conv_var,
            act_var: acc.diag,
        },
        None => Fused {
            act_var: out.diag(),
            pl: out,
            conv_var,
        },
    }
}

/// The GAP's sums of Σ and Θ over all pixel pairs, in one fixed order: per pair of pixel rows
/// (row i₁ of x, row i₂ of y) the block sum over (j₁, j₂) ascending ([`fold_block`]), then the
/// block sums over (i₁, i₂) ascending, each sum from [`ZERO`]; for a self pair the blocks
/// i₁ < i₂ are the mirrors of the lower ones ([`GapAcc`], [`mirror_sum`]). A row-by-row pass
/// over the planes ([`GapAcc`]) and a block-by-block pass over strips (`kernel::strip`) both
/// follow it, so both give the same bits.
pub(super) const ZERO: f64 = -0.0;

/// Continue the block sums `(Σ, Θ)` with entries `c`, `th` in order (two independent chains
/// of sequential adds in one loop).
#[inline(always)]
pub(super) fn fold_block((mut a, mut b): (f64, f64), c: &[f64], th: &[f64]) -> (f64, f64) {
    for (&u, &v) in c.iter().zip(th) {
        a += u;
        b += v;
    }
    (a, b)
}

/// The running GAP of [`conv_rows`] and [`reduce`] in [`ZERO`]'s order: the block sums per
/// pair of pixel rows (i₁, i₂), folded in (i₁, i₂) order at the end, and the diagonal entries
/// of Σ.
///
/// For a self pair (`own`), the GAP of the plane with its upper block triangle replaced by
/// the mirror of the lower one: the block sum of (i₁, i₂) with i₁ < i₂ is the sum, in the
/// same (j₁, j₂) order, of the entries Σ[(i₂, j₂), (i₁, j₁)] of block (i₂, i₁) — the value
/// the plane order gives wherever the plane is exactly symmetric (its exact value is), and
/// the strip engine skips the strips r < 0 of a self pair. [`mirror_sum`] forms it.
struct GapAcc {
    w1: usize,
    h2: usize,
    w2: usize,
    sums: Vec<(f64, f64)>,
    diag: Vec<f64>,
    /// Self pair: the current row i₁ of x (`w1` plane rows of Σ and Θ), for [`mirror_sum`].
    rows: Option<(Vec<f64>, Vec<f64>)>,
}

impl GapAcc {
    /// For output planes with x's grid `h1`×`w1` and y's grid `h2`×`w2`; `own`: a self pair.
    fn new((h1, w1, h2, w2): (usize, usize, usize, usize), own: bool) -> Self {
        let n = w1 * h2 * w2;
        GapAcc {
            w1,
            h2,
            w2,
            sums: vec![(ZERO, ZERO); h1 * h2],
            diag: Vec::new(),
            rows: own.then(|| (vec![0.0; n], vec![0.0; n])),
        }
    }

    /// Add one finished row p of the activation's output.
    fn row(&mut self, p: usize, c: &[f64], th: &[f64]) {
        let (w1, h2, w2) = (self.w1, self.h2, self.w2);
        let (i1, j1) = (p / w1, p % w1);
        // A self pair's blocks i₂ > i₁ come from the mirror (at the end of the row of x).
        let upto = if self.rows.is_some() { i1 + 1 } else { h2 };
        for i2 in 0..upto {
            let r = i2 * w2..(i2 + 1) * w2;
            let s = &mut self.sums[i1 * h2 + i2];
            *s = fold_block(*s, &c[r.clone()], &th[r]);
        }
        if p < c.len() {
            self.diag.push(c[p]);
        }
        let Some((rc, rt)) = self.rows.as_mut() else {
            return;
        };
        let n = h2 * w2;
        rc[j1 * n..(j1 + 1) * n].copy_from_slice(&c[..n]);
        rt[j1 * n..(j1 + 1) * n].copy_from_slice(&th[..n]);
        if j1 + 1 == w1 {
            for i2 in 0..i1 {
                let at = |v: &[f64], (a, b): (usize, usize)| v[b * n + i2 * w2 + a];
                self.sums[i2 * h2 + i1] = mirror_sum(w1, |e| (at(rc, e), at(rt, e)));
            }
        }
    }

    /// The sums of Σ and Θ ([`gap_totals`] of the block sums).
    fn totals(&self) -> (f64, f64) {
        gap_totals(&self.sums)
    }

    /// The 1×1 planes of the GAP ([`reduce`] with `diag = false`): the means, D = Δ = 0.
    fn planes(&self, rows: &Planes) -> Planes {
        gap_planes(self.totals(), rows.p1() * rows.p2(), rows.n_in)
    }
}

/// The GAP's sums of Σ and Θ from its block sums, listed in (i₁, i₂) order: added in that
/// order from [`ZERO`] (both engines).
pub(super) fn gap_totals(sums: &[(f64, f64)]) -> (f64, f64) {
    sums.iter()
        .fold((ZERO, ZERO), |(a, b), s| (a + s.0, b + s.1))
}

/// The block sum of the mirrored block (i₂, i₁) of a self pair from the lower block (i₁, i₂)
/// (i₁ > i₂), w×w: entry (a, b) of the mirrored block, in plane order (a, b ascending), is
/// entry (b, a) of the lower one, `at((a, b))` = (Σ, Θ) there.
#[inline]
pub(super) fn mirror_sum(w: usize, at: impl Fn((usize, usize)) -> (f64, f64)) -> (f64, f64) {
    let (mut a, mut b) = (ZERO, ZERO);
    for ja in 0..w {
        for jb in 0..w {
            let (u, v) = at((ja, jb));
            a += u;
            b += v;
        }
    }
    (a, b)
}

/// The 1×1 planes of a GAP from the sums of Σ and Θ over its m pixel pairs: the means,
/// D = Δ = 0 (recomputed by [`refresh_naive`]).
pub(crate) fn gap_planes((c, th): (f64, f64), m: usize, n_in: f64) -> Planes {
    let m = m as f64;
    unit_planes((c / m, th / m, 0.0), n_in)
}

/// 1×1 planes with Σ = c, Θ = th, Δ = dl and D = 0 (a GAP's or flatten's result).
fn unit_planes((c, th, dl): (f64, f64, f64), n_in: f64) -> Planes {
    Planes {
        h1: 1,
        w1: 1,
        h2: 1,
        w2: 1,
        n_in,
        c: vec![c],
        th: vec![th],
        d: vec![0.0],
        dl: vec![dl],
        th_zero: false,
        img: None,
        own: false,
    }
}

thread_local! {
    /// Per-thread pool of plane buffers: a pair's layers reuse the same memory (no page
    /// faults of fresh multi-MB allocations per layer). Buffers are always fully overwritten
    /// before being read, so their old contents never matter.
    static POOL: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of length n from the pool (contents unspecified).
pub(super) fn take(n: usize) -> Vec<f64> {
    if n < SMALL {
        return vec![0.0; n];
    }
    let mut v = POOL.with_borrow_mut(|p| p.pop()).unwrap_or_default();
    v.resize(n, 0.0);
    v
}

/// Buffers shorter than this are allocated directly, so that the pool's planes are never
/// shrunk (and zero-filled again on the next `take`) by a small layer such as the readout.
const SMALL: usize = 4096;

pub(super) fn give(v: Vec<f64>) {
    if v.len() < SMALL {
        return;
    }
    POOL.with_borrow_mut(|p| {
        if p.len() < 16 {
            p.push(v)
        }
    });
}

/// Geometry of one conv layer on a pair: input H₁×W₁ and H₂×W₂, kernel K, offset o (SAME:
/// (K−1)/2, VALID: 0), output Ho₁×Wo₁ and Ho₂×Wo₂; `flat`: y's output grid is its input
/// grid (SAME, or K = 1), so a δ-shift of a plane row is one contiguous add.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvGeom {
    pub h1: usize,
    pub w1: usize,
    pub h2: usize,
    pub w2: usize,
    pub k: usize,
    pub o: usize,
    pub ho1: usize,
    pub wo1: usize,
    pub ho2: usize,
    pub wo2: usize,
    pub flat: bool,
}

impl ConvGeom {
    pub(super) fn new(pl: &Planes, k: usize, padding: Padding) -> Self {
        let (o, (ho1, wo1, ho2, wo2)) = match padding {
            Padding::Same => ((k - 1) / 2, (pl.h1, pl.w1, pl.h2, pl.w2)),
            Padding::Valid => (
                0,
                (pl.h1 + 1 - k, pl.w1 + 1 - k, pl.h2 + 1 - k, pl.w2 + 1 - k),
            ),
        };
        let flat = ho2 == pl.h2 && wo2 == pl.w2;
        let (h1, w1, h2, w2) = (pl.h1, pl.w1, pl.h2, pl.w2);
        ConvGeom {
            h1,
            w1,
            h2,
            w2,
            k,
            o,
            ho1,
            wo1,
            ho2,
            wo2,
            flat,
        }
    }
}

/// Row p (output pixel (i1, j1) of x) of the K×K shifted sum, before its 1/K² scale:
/// `dst[(i2,j2)] = Σ_δ src[(i1+di−o, j1+dj−o), (i2+di−o, j2+dj−o)]` over the in-range
/// offsets, δ in ascending (di, dj) order, starting from 0 — for every entry the same
/// additions in the same order, whatever the row, tile or thread.
fn shift_row(
    src: &[f64],
    g: &ConvGeom,
    plan: &[FlatShift],
    p: usize,
    dst: &mut [f64],
    save: &mut Vec<f64>,
) {
    dst.fill(0.0);
    let (i1, j1) = (p / g.wo1, p % g.wo1);
    let p2 = g.h2 * g.w2;
    for di in 0..g.k {
        let a1 = i1 + di;
        if a1 < g.o || a1 - g.o >= g.h1 {
            continue;
        }
        for dj in 0..g.k {
            let b1 = j1 + dj;
            if b1 < g.o || b1 - g.o >= g.w1 {
                continue;
            }
            let s = ((a1 - g.o) * g.w1 + b1 - g.o) * p2;
            let srow = &src[s..s + p2];
            if g.flat {
                plan[di * g.k + dj].add(srow, dst, save);
            } else {
                add_segments(srow, g, (di, dj), dst);
            }
        }
    }
}

/// The separable form of the K×K shifted sum when y's output grid is its input grid (SAME or
/// K = 1): [`shift_row`] in 2K instead of K² adds per entry, each output row in two fused
/// passes ([`sum_terms`]). First the column sums
/// `V[(i1,b1),(i2,b2)] = Σ_di src[(i1+di−o, b1), (i2+di−o, b2)]`, then
/// `dst[(i1,j1),(i2,j2)] = Σ_dj V[(i1, j1+dj−o), (i2, j2+dj−o)]`; each sum from 0 over the
/// in-range offsets ascending, so every entry gets the same adds in the same order (whatever
/// the row, tile or thread). V is kept for the K columns b1 of x's grid that output row p
/// needs (slot b1 mod K): K·P₂ scratch, in L1 for 28×28 images.
struct ColSums {
    ring: Vec<f64>,
    /// The pixel (i1, b1) of x's grid (flat index) whose V each slot holds.
    tag: Vec<usize>,
}

impl ColSums {
    fn new(g: &ConvGeom) -> Self {
        ColSums {
            ring: vec![0.0; g.k * g.h2 * g.w2],
            tag: vec![usize::MAX; g.k],
        }
    }

    /// Output row p (pixel (i1, j1) of x) of the shifted sum of `src` into `dst`.
    fn row(&mut self, src: Src, g: &ConvGeom, p: usize, dst: &mut [f64]) {
        let (i1, j1) = (p / g.w1, p % g.w1);
        let p2 = g.h2 * g.w2;
        let mut slots = [None; MAX_K];
        for dj in 0..g.k {
            let b1 = j1 + dj;
            if b1 < g.o || b1 - g.o >= g.w1 {
                continue;
            }
            let slot = (b1 - g.o) % g.k;
            let at = i1 * g.w1 + b1 - g.o;
            if self.tag[slot] != at {
                let v = &mut self.ring[slot * p2..(slot + 1) * p2];
                match src {
                    Src::Plane(s) => col_sum(s, g, (i1, b1 - g.o), v),
                    Src::ImgC(im) => col_sum_img(im, false, g, (i1, b1 - g.o), v),
                    Src::ImgDl(im) => col_sum_img(im, true, g, (i1, b1 - g.o), v),
                }
                self.tag[slot] = at;
            }
            slots[dj] = Some(slot);
        }
        if let Src::Plane(s) = src {
            // The next output row needs one new column of x: fetch its source rows now.
            let b1 = j1 + 1 + g.k - 1;
            if j1 + 1 < g.w1 && b1 >= g.o && b1 - g.o < g.w1 {
                prefetch_col(s, g, (i1, b1 - g.o));
            }
        }
        let v = slots.map(|s| s.map(|s| &self.ring[s * p2..(s + 1) * p2]));
        row_sum(&v[..g.k], g, dst);
    }
}

/// Ask the cache for the source rows of [`col_sum`] at (i1, b1) ahead of their use (a hint:
/// no effect on any value).
fn prefetch_col(src: &[f64], g: &ConvGeom, (i1, b1): (usize, usize)) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let p2 = g.h2 * g.w2;
        for di in 0..g.k {
            let a1 = i1 + di;
            if a1 < g.o || a1 - g.o >= g.h1 {
                continue;
            }
            let row = &src[((a1 - g.o) * g.w1 + b1) * p2..][..p2];
            for line in row.chunks(8) {
                // SAFETY: a prefetch never faults; the address is inside `src`.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, g, i1, b1);
}

/// The largest K of the separable path (the rest use [`shift_row`]).
pub(super) const MAX_K: usize = 8;

/// The plane a [`ColSums`] sums: stored, or Σ⁰ / Δ⁰ of lazy input planes ([`Img1`]).
#[derive(Clone, Copy)]
enum Src<'a> {
    Plane(&'a [f64]),
    ImgC(&'a Img1),
    ImgDl(&'a Img1),
}

/// [`col_sum`] of the lazy input plane Σ⁰ (`dl`: Δ⁰): the same terms in the same order, each
/// `x_a y_b` (`(x_a − y_b)²`) formed on the fly, with the same bits — the stored Σ⁰ entry is
/// `(0 + x_a y_b)/1`, which differs from `x_a y_b` only by the sign of a zero, and adding ±0
/// to a sum that starts from +0 (never −0 in round-to-nearest) does not change it.
fn col_sum_img(im: &Img1, dl: bool, g: &ConvGeom, (i1, b1): (usize, usize), v: &mut [f64]) {
    let w2 = g.w2;
    let mut xs: [Option<f64>; MAX_K] = [None; MAX_K];
    for (di, xv) in xs.iter_mut().enumerate().take(g.k) {
        let a1 = i1 + di;
        if a1 >= g.o && a1 - g.o < g.h1 {
            *xv = Some(im.x[(a1 - g.o) * g.w1 + b1]);
        }
    }
    let mut terms: [(f64, &[f64]); MAX_K] = [(0.0, &[]); MAX_K];
    for (i2, e) in row_groups(g) {
        let m = in_range_di(g, |di| xs[di].is_some(), i2);
        let (q0, q1) = (i2 * w2, e * w2);
        let mut n = 0;
        for di in (0..g.k).filter(|di| m >> di & 1 == 1) {
            let (s0, s1) = ((q0 + di * w2) - g.o * w2, (q1 + di * w2) - g.o * w2);
            terms[n] = (xs[di].expect("in range"), &im.y[s0..s1]);
            n += 1;
        }
        img_terms(&mut v[q0..q1], &terms[..n], dl);
    }
}

/// The rows i2..e of y that have the same in-range row offsets di: the first o rows one by
/// one, the rows with every offset inside, the last K−1−o rows one by one.
fn row_groups(g: &ConvGeom) -> impl Iterator<Item = (usize, usize)> {
    let (h2, o) = (g.h2, g.o);
    let mid = (o.min(h2), (h2 + o + 1).saturating_sub(g.k).max(o).min(h2));
    let head = (0..mid.0).map(|i| (i, i + 1));
    let body = (mid.0 < mid.1).then_some(mid);
    let tail = (mid.1.max(mid.0)..h2).map(|i| (i, i + 1));
    head.chain(body).chain(tail)
}

/// The di (bit set) whose x row is in range (`x_ok`) and whose y row i2 + di − o is inside y.
fn in_range_di(g: &ConvGeom, x_ok: impl Fn(usize) -> bool, i2: usize) -> u32 {
    (0..g.k).fold(0u32, |m, di| {
        let a2 = i2 + di;
        let ok = x_ok(di) && a2 >= g.o && a2 - g.o < g.h2;
        m | ((ok as u32) << di)
    })
}

/// `dst[i] = ((0 + f(x₀, t₀[i])) + f(x₁, t₁[i])) + …` with `f(x, y) = x y` (`dl`:
/// `(x − y)(x − y)`), fused for up to three terms, dispatched on the SIMD level (exact per
/// lane, no FMA contraction: the same bits on every path).
fn img_terms(dst: &mut [f64], terms: &[(f64, &[f64])], dl: bool) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { img_terms_avx512(dst, terms, dl) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { img_terms_avx2(dst, terms, dl) },
        _ => img_terms_generic(dst, terms, dl),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn img_terms_avx512(dst: &mut [f64], terms: &[(f64, &[f64])], dl: bool) {
    img_terms_generic(dst, terms, dl)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn img_terms_avx2(dst: &mut [f64], terms: &[(f64, &[f64])], dl: bool) {
    img_terms_generic(dst, terms, dl)
}

#[inline(always)]
fn img_terms_generic(dst: &mut [f64], terms: &[(f64, &[f64])], dl: bool) {
    if dl {
        img_terms_with(dst, terms, |x, y| (x - y) * (x - y))
    } else {
        img_terms_with(dst, terms, |x, y| x * y)
    }
}

#[inline(always)]
fn img_terms_with(dst: &mut [f64], terms: &[(f64, &[f64])], f: impl Fn(f64, f64) -> f64) {
    let n = dst.len();
    match terms {
        [] => dst.fill(0.0),
        [(x0, a)] => {
            let a = &a[..n];
            for i in 0..n {
                dst[i] = 0.0 + f(*x0, a[i]);
            }
        }
        [(x0, a), (x1, b)] => {
            let (a, b) = (&a[..n], &b[..n]);
            for i in 0..n {
                dst[i] = (0.0 + f(*x0, a[i])) + f(*x1, b[i]);
            }
        }
        [(x0, a), (x1, b), (x2, c), rest @ ..] => {
            let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
            for i in 0..n {
                dst[i] = ((0.0 + f(*x0, a[i])) + f(*x1, b[i])) + f(*x2, c[i]);
            }
            for (xr, r) in rest {
                let r = &r[..n];
                for i in 0..n {
                    dst[i] += f(*xr, r[i]);
                }
            }
        }
    }
}

/// `v[(i2,b2)] = Σ_di src[(i1+di−o, b1), (i2+di−o, b2)]` over the in-range di ascending: the
/// y side is a shift by whole rows of y (no wrapped entries), so y's rows are grouped by
/// their set of in-range di and each group is one [`sum_terms`].
fn col_sum(src: &[f64], g: &ConvGeom, (i1, b1): (usize, usize), v: &mut [f64]) {
    let (p2, w2) = (g.h2 * g.w2, g.w2);
    let mut rows: [Option<&[f64]>; MAX_K] = [None; MAX_K];
    for (di, r) in rows.iter_mut().enumerate().take(g.k) {
        let a1 = i1 + di;
        if a1 >= g.o && a1 - g.o < g.h1 {
            let s = ((a1 - g.o) * g.w1 + b1) * p2;
            *r = Some(&src[s..s + p2]);
        }
    }
    let mut terms: [&[f64]; MAX_K] = [&[]; MAX_K];
    for (i2, e) in row_groups(g) {
        let m = in_range_di(g, |di| rows[di].is_some(), i2);
        let (q0, q1) = (i2 * w2, e * w2);
        let mut n = 0;
        for di in (0..g.k).filter(|di| m >> di & 1 == 1) {
            let (s0, s1) = ((q0 + di * w2) - g.o * w2, (q1 + di * w2) - g.o * w2);
            terms[n] = &rows[di].expect("in range")[s0..s1];
            n += 1;
        }
        sum_terms(&mut v[q0..q1], &terms[..n]);
    }
}

/// `dst[(i2,j2)] = Σ_dj v[dj][(i2, j2+dj−o)]` over the in-range dj ascending (`v[dj]`: `None`
/// when x's column is out of range): one [`sum_terms`] over the positions whose K columns are
/// all inside their row of y, then the first o and last K−1−o columns of every row of y
/// again with their in-range terms only (the fused pass read the neighbouring row there).
fn row_sum(v: &[Option<&[f64]>], g: &ConvGeom, dst: &mut [f64]) {
    let (p2, w2, k, o) = (g.h2 * g.w2, g.w2, g.k, g.o);
    let (lo, hi) = (o, (p2 + o + 1).saturating_sub(k));
    if lo < hi {
        let mut terms: [&[f64]; MAX_K] = [&[]; MAX_K];
        let mut n = 0;
        for (dj, s) in v.iter().enumerate() {
            if let Some(s) = s {
                terms[n] = &s[lo + dj - o..hi + dj - o];
                n += 1;
            }
        }
        sum_terms(&mut dst[lo..hi], &terms[..n]);
    }
    let edges = (0..o.min(w2)).chain((w2 + o + 1).saturating_sub(k).max(o)..w2);
    for j2 in edges {
        // The terms of column j2: dj with x's column and y's column j2 + dj − o in range.
        let mut terms: [(&[f64], usize); MAX_K] = [(&[], 0); MAX_K];
        let mut n = 0;
        for (dj, s) in v.iter().enumerate() {
            let b2 = j2 + dj;
            if let (Some(s), true) = (s, b2 >= o && b2 - o < w2) {
                terms[n] = (s, b2 - o);
                n += 1;
            }
        }
        match terms[..n] {
            // The common case (K = 3 has two terms at either edge).
            [(s, b), (t, c)] => {
                for row in (0..p2).step_by(w2) {
                    dst[row + j2] = (0.0 + s[row + b]) + t[row + c];
                }
            }
            _ => {
                for row in (0..p2).step_by(w2) {
                    dst[row + j2] = terms[..n].iter().fold(0.0, |acc, &(s, b)| acc + s[row + b]);
                }
            }
        }
    }
}

/// `dst[i] = ((0 + t₀[i]) + t₁[i]) + …` (0 with no terms): the sequential sum of the terms,
/// fused into one pass for up to three, dispatched on the SIMD level (exact per lane: the
/// same bits on every path and as a zero fill followed by one add per term).
pub(super) fn sum_terms(dst: &mut [f64], terms: &[&[f64]]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { sum_terms_avx512(dst, terms) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { sum_terms_avx2(dst, terms) },
        _ => sum_terms_generic(dst, terms),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn sum_terms_avx512(dst: &mut [f64], terms: &[&[f64]]) {
    sum_terms_generic(dst, terms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum_terms_avx2(dst: &mut [f64], terms: &[&[f64]]) {
    sum_terms_generic(dst, terms)
}

#[inline(always)]
fn sum_terms_generic(dst: &mut [f64], terms: &[&[f64]]) {
    let n = dst.len();
    match terms {
        [] => dst.fill(0.0),
        [a] => {
            for (d, &x) in dst.iter_mut().zip(&a[..n]) {
                *d = 0.0 + x;
            }
        }
        [a, b] => {
            let (a, b) = (&a[..n], &b[..n]);
            for i in 0..n {
                dst[i] = (0.0 + a[i]) + b[i];
            }
        }
        [a, b, c, rest @ ..] => {
            let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
            for i in 0..n {
                dst[i] = ((0.0 + a[i]) + b[i]) + c[i];
            }
            for r in rest {
                add_slice_generic(dst, r);
            }
        }
    }
}

/// One δ = (di, dj) of a shifted sum when y's output grid is its input grid:
/// `dst[(i2,j2)] += srow[(i2+di−o, j2+dj−o)]` over the in-range positions is one contiguous
/// add `dst[q0..q1] += srow[s0..]` (shift (di−o)·W₂ + dj−o) except at the `wraps` entries,
/// whose column wraps into the neighbouring row: saved before and restored after (exact).
#[derive(Clone, Debug, Default)]
struct FlatShift {
    q0: usize,
    q1: usize,
    s0: usize,
    wraps: Vec<usize>,
}

impl FlatShift {
    /// The plan of every δ (index di·K + dj) of a layer with a flat y side.
    fn plan(g: &ConvGeom) -> Vec<FlatShift> {
        if !g.flat {
            return Vec::new();
        }
        let (k, o, h2, w2) = (g.k, g.o, g.h2, g.w2);
        let one = |di: usize, dj: usize| {
            let (ilo, ihi) = (o.saturating_sub(di), (h2 + o).saturating_sub(di).min(h2));
            let (jlo, jhi) = (o.saturating_sub(dj), (w2 + o).saturating_sub(dj).min(w2));
            if ilo >= ihi || jlo >= jhi {
                return FlatShift::default();
            }
            let (q0, q1) = (ilo * w2 + jlo, (ihi - 1) * w2 + jhi);
            let wraps = (ilo..ihi)
                .flat_map(|i2| (0..jlo).chain(jhi..w2).map(move |j2| i2 * w2 + j2))
                .filter(|&q| q0 <= q && q < q1)
                .collect();
            let s0 = (ilo + di - o) * w2 + jlo + dj - o;
            FlatShift { q0, q1, s0, wraps }
        };
        (0..k * k).map(|i| one(i / k, i % k)).collect()
    }

    fn add(&self, srow: &[f64], dst: &mut [f64], save: &mut Vec<f64>) {
        let n = self.q1 - self.q0;
        if n == 0 {
            return;
        }
        save.clear();
        save.extend(self.wraps.iter().map(|&q| dst[q]));
        add_slice(&mut dst[self.q0..self.q1], &srow[self.s0..self.s0 + n]);
        for (&q, &v) in self.wraps.iter().zip(save.iter()) {
            dst[q] = v;
        }
    }
}

/// `dst[i] += src[i]`, dispatched on the SIMD level (exact per lane: the same bits on every
/// path).
fn add_slice(dst: &mut [f64], src: &[f64]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { add_slice_avx512(dst, src) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { add_slice_avx2(dst, src) },
        _ => add_slice_generic(dst, src),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn add_slice_avx512(dst: &mut [f64], src: &[f64]) {
    add_slice_generic(dst, src)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_slice_avx2(dst: &mut [f64], src: &[f64]) {
    add_slice_generic(dst, src)
}

#[inline(always)]
fn add_slice_generic(dst: &mut [f64], src: &[f64]) {
    for (dv, sv) in dst.iter_mut().zip(src) {
        *dv += *sv;
    }
}

/// [`add_flat`] for any output grid (VALID): one add per output row of y's pixels.
fn add_segments(srow: &[f64], g: &ConvGeom, (di, dj): (usize, usize), dst: &mut [f64]) {
    let (h2, w2, o, wo2) = (g.h2, g.w2, g.o, g.wo2);
    // j2 + dj − o ∈ [0, w2)
    let lo = o.saturating_sub(dj);
    let hi = (w2 + o).saturating_sub(dj).min(wo2);
    if lo >= hi {
        return;
    }
    for i2 in 0..g.ho2 {
        let a2 = i2 + di;
        if a2 < o || a2 - o >= h2 {
            continue;
        }
        let s0 = (a2 - o) * w2 + lo + dj - o;
        let drow = &mut dst[i2 * wo2 + lo..i2 * wo2 + hi];
        for (dv, sv) in drow.iter_mut().zip(&srow[s0..s0 + (hi - lo)]) {
            *dv += *sv;
        }
    }
}

/// `k1'` per output pixel: the diagonal of a conv applied to variances `k1` (H×W), summed in
/// the order of the plane's shifted sum (so that it is the self pair's diagonal bit for bit):
/// `sep` ([`ColSums`]): `Σ_dj (Σ_di k1[i+di−o, j+dj−o])`, each sum from 0; otherwise
/// ([`shift_row`]) one sum over δ = (di, dj) ascending; in-range offsets only.
pub(super) fn conv_diag(
    k1: &[f64],
    (h, w): (usize, usize),
    (k, o): (usize, usize),
    (ho, wo): (usize, usize),
    sep: bool,
) -> Vec<f64> {
    let at = |a: usize, b: usize| {
        (a >= o && b >= o && a - o < h && b - o < w).then(|| k1[(a - o) * w + b - o])
    };
    let mut out = vec![0.0; ho * wo];
    for i in 0..ho {
        for j in 0..wo {
            let mut s = 0.0;
            if sep {
                for b in (j..j + k).filter(|&b| b >= o && b - o < w) {
                    s += (i..i + k).filter_map(|a| at(a, b)).fold(0.0, |t, v| t + v);
                }
            } else {
                for a in i..i + k {
                    s = (j..j + k).filter_map(|b| at(a, b)).fold(s, |t, v| t + v);
                }
            }
            out[i * wo + j] = s;
        }
    }
    out
}

/// The constants of one conv layer's formulas (module docs): 1/K², σ_w², σ_b², the standard
/// parameterization's fan-in n_in K² and bias 1.
pub(super) struct ConvConsts {
    pub inv: f64,
    pub sw2: f64,
    pub sb2: f64,
    bias_one: f64,
    std: bool,
    fan: f64,
}

impl ConvConsts {
    pub(super) fn new(spec: &Spec, n_in: f64, k: usize) -> Self {
        ConvConsts {
            inv: 1.0 / (k * k) as f64,
            sw2: spec.sigma_w * spec.sigma_w,
            sb2: spec.sigma_b.map_or(0.0, |b| b * b),
            bias_one: if spec.sigma_b.is_some() { 1.0 } else { 0.0 },
            std: spec.parameterization == Parameterization::Standard,
            fan: n_in * (k * k) as f64,
        }
    }

    /// D' of a pixel pair from [`avg_det`]'s `det` of its input covariances and its Δ'
    /// (the matrix determinant lemma, [`det_row`]): `σ_w⁴ det/K⁴ + σ_w² σ_b² max(Δ'/σ_w², 0)`.
    #[inline]
    pub(super) fn exact_d(&self, det: f64, dl: f64) -> f64 {
        let det = det * self.inv * self.inv;
        self.sw2 * self.sw2 * det + self.sw2 * self.sb2 * (dl / self.sw2).max(0.0)
    }

    /// The output variances `σ_w² (conv_diag · 1/K²) + σ_b²` (= the diagonal of Σ' of a self
    /// pair, bit for bit: the same sum in the same order).
    pub(super) fn variances(&self, kd: &[f64]) -> Vec<f64> {
        kd.iter()
            .map(|&v| self.sw2 * (v * self.inv) + self.sb2)
            .collect()
    }
}

/// A conv layer (`act`: fused with the activation that follows it), row by row of the output
/// planes: per output pixel p of x the three K×K shifted sums of c, Θ, Δ ([`shift_row`]),
/// the conv formulas ([`conv_row`]), SAME's one-sided Δ ([`OneSided`]), the exact determinant
/// where D cancels ([`det_row`]) and the activation ([`act_row`]) run on the row while it is
/// in cache — each entry gets the same operations in the same order as the layer-by-layer
/// recursion. Also returns x's output variances (the activation's k11).
fn conv(
    spec: &Spec,
    pl: &Planes,
    k: usize,
    padding: Padding,
    (k1, k2): (&[f64], &[f64]),
    act: Option<Activation>,
    gap: bool,
) -> (Planes, Vec<f64>, Option<GapAcc>) {
    let g = ConvGeom::new(pl, k, padding);
    let cc = ConvConsts::new(spec, pl.n_in, k);
    let sep = g.flat && k <= MAX_K;
    let q1 = cc.variances(&conv_diag(k1, (g.h1, g.w1), (k, g.o), (g.ho1, g.wo1), sep));
    let q2 = cc.variances(&conv_diag(k2, (g.h2, g.w2), (k, g.o), (g.ho2, g.wo2), sep));
    // GAP fused: the rows go to one row of scratch (the planes' geometry is kept).
    let n = if gap {
        g.ho2 * g.wo2
    } else {
        g.ho1 * g.wo1 * g.ho2 * g.wo2
    };
    let mut out = Planes {
        h1: g.ho1,
        w1: g.wo1,
        h2: g.ho2,
        w2: g.wo2,
        n_in: spec.width as f64,
        c: take(n),
        th: take(n),
        d: take(n),
        dl: take(n),
        th_zero: false,
        img: None,
        own: pl.own,
    };
    let os = (padding == Padding::Same && k > 1).then(|| OneSided::new(&g, k2));
    let d2: Vec<Diag> = act.map_or(Vec::new(), |a| q2.iter().map(|&q| a.diag(q)).collect());
    let sq2: Vec<f64> = d2.iter().map(|d| d.sq).collect();
    let scratch = Default::default();
    let acx = act.map(|a| ActCx {
        a,
        relu: relu_consts(a),
        k2: &q2,
        d2: &d2,
        sq2: &sq2,
        scratch: &scratch,
        sigma_only: false,
    });
    let plan = FlatShift::plan(&g);
    let rc = RowCx {
        spec_g: g,
        plan: &plan,
        cc,
        pl,
        k1,
        k2,
        q1: &q1,
        q2: &q2,
        os: os.as_ref(),
        act: acx.as_ref(),
    };
    let mut acc = gap.then(|| GapAcc::new((g.ho1, g.wo1, g.ho2, g.wo2), pl.own));
    conv_rows(&rc, &mut out, acc.as_mut());
    (out, q1, acc)
}

/// Everything [`conv_rows`] reads.
struct RowCx<'a> {
    spec_g: ConvGeom,
    plan: &'a [FlatShift],
    cc: ConvConsts,
    pl: &'a Planes,
    k1: &'a [f64],
    k2: &'a [f64],
    q1: &'a [f64],
    q2: &'a [f64],
    os: Option<&'a OneSided>,
    act: Option<&'a ActCx<'a>>,
}

/// The row loop of [`conv`].
fn conv_rows(rc: &RowCx, out: &mut Planes, mut gap: Option<&mut GapAcc>) {
    let g = &rc.spec_g;
    let po2 = g.ho2 * g.wo2;
    let (mut a, mut at) = (vec![0.0; po2], vec![0.0; po2]);
    let mut ws = Vec::with_capacity(g.k * g.k);
    let mut sums = Shifts::new(rc);
    for p in 0..g.ho1 * g.wo1 {
        let r = if gap.is_some() {
            0..po2
        } else {
            p * po2..(p + 1) * po2
        };
        let (c, th) = (&mut out.c[r.clone()], &mut out.th[r.clone()]);
        let (d, dl) = (&mut out.d[r.clone()], &mut out.dl[r]);
        sums.row(rc, p, (&mut a, &mut at), dl);
        let cancel = conv_row(&rc.cc, rc.q1[p], rc.q2, (&a, &at), c, th, d, dl);
        if let Some(os) = rc.os {
            os.row(g, p, (rc.k1, rc.k2), rc.cc.sw2 * rc.cc.inv, dl);
        }
        if cancel {
            det_row(rc, p, d, dl, &mut ws);
        }
        if let Some(cx) = rc.act {
            act_row(cx, rc.q1[p], c, th, d, dl);
        }
        if let Some(acc) = gap.as_deref_mut() {
            acc.row(p, c, th);
        }
    }
}

/// The shifted sums of Σ, Θ (unless +0) and Δ of [`conv_rows`]: [`ColSums`] when y's output
/// grid is its input grid, else [`shift_row`].
struct Shifts {
    sep: Option<[ColSums; 3]>,
    save: Vec<f64>,
}

impl Shifts {
    fn new(rc: &RowCx) -> Self {
        let g = &rc.spec_g;
        let sep =
            (g.flat && g.k <= MAX_K).then(|| [ColSums::new(g), ColSums::new(g), ColSums::new(g)]);
        Shifts {
            sep,
            save: Vec::new(),
        }
    }

    /// Output row p: the sums of Σ into `a`, of Θ into `at`, of Δ into `dl`.
    fn row(&mut self, rc: &RowCx, p: usize, (a, at): (&mut [f64], &mut [f64]), dl: &mut [f64]) {
        let (g, pl, plan) = (&rc.spec_g, rc.pl, rc.plan);
        if let Some([sc, st, sd]) = self.sep.as_mut() {
            let (src_c, src_dl) = match &pl.img {
                Some(im) => (Src::ImgC(im), Src::ImgDl(im)),
                None => (Src::Plane(&pl.c), Src::Plane(&pl.dl)),
            };
            sc.row(src_c, g, p, a);
            if !pl.th_zero {
                st.row(Src::Plane(&pl.th), g, p, at);
            }
            sd.row(src_dl, g, p, dl);
            return;
        }
        let save = &mut self.save;
        shift_row(&pl.c, g, plan, p, a, save);
        if !pl.th_zero {
            shift_row(&pl.th, g, plan, p, at, save);
        }
        shift_row(&pl.dl, g, plan, p, dl, save);
    }
}

/// [`conv_row_generic`], dispatched on the SIMD level (exact IEEE lanes, no FMA contraction:
/// the same bits on every path).
#[allow(clippy::too_many_arguments)]
fn conv_row(
    cc: &ConvConsts,
    q1: f64,
    q2: &[f64],
    a: (&[f64], &[f64]),
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) -> bool {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { conv_row_avx512(cc, q1, q2, a, c, th, d, dl) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { conv_row_avx2(cc, q1, q2, a, c, th, d, dl) },
        _ => conv_row_generic(cc, q1, q2, a, c, th, d, dl),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv_row_avx512(
    cc: &ConvConsts,
    q1: f64,
    q2: &[f64],
    a: (&[f64], &[f64]),
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) -> bool {
    conv_row_generic(cc, q1, q2, a, c, th, d, dl)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv_row_avx2(
    cc: &ConvConsts,
    q1: f64,
    q2: &[f64],
    a: (&[f64], &[f64]),
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) -> bool {
    conv_row_generic(cc, q1, q2, a, c, th, d, dl)
}

/// The conv formulas on one output row from its shifted sums `a` (of Σ), `at` (of Θ) and `dl`
/// (of Δ, in place), with `an = a/K²`:
/// Σ' = σ_w² an + σ_b²; Θ' = Σ' + σ_w² (at/K²) (NTK) or n_in K² an + [bias] + σ_w² (at/K²)
/// (standard); Δ' = σ_w² (dl/K²); D' = max(q₁ q₂ − Σ'², 0) with the output variances q.
/// Returns whether some D' may cancel (the test of [`det_row`]: not D' > 10⁻² q₁ q₂).
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::neg_cmp_op_on_partial_ord)]
pub(super) fn conv_row_generic(
    cc: &ConvConsts,
    q1: f64,
    q2: &[f64],
    (a, at): (&[f64], &[f64]),
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) -> bool {
    let prod = RowProducts {
        q1,
        t: 1e-2 * q1,
        q2,
    };
    conv_lanes(cc, prod, (a, at), c, th, d, dl)
}

/// The variance products (q₁ q₂, 10⁻² q₁ · q₂) of the entries of [`conv_lanes`].
pub(super) trait Products: Copy {
    /// The same products for the first n entries only (slices cut to n, so that the loop
    /// needs no bounds checks).
    fn cut(self, n: usize) -> Self;
    fn at(&self, q: usize) -> (f64, f64);
}

/// One row: x's q₁ (and t = 10⁻² q₁) against y's q₂ per entry.
#[derive(Clone, Copy)]
struct RowProducts<'a> {
    q1: f64,
    t: f64,
    q2: &'a [f64],
}

impl Products for RowProducts<'_> {
    #[inline(always)]
    fn cut(self, n: usize) -> Self {
        RowProducts {
            q2: &self.q2[..n],
            ..self
        }
    }
    #[inline(always)]
    fn at(&self, q: usize) -> (f64, f64) {
        (self.q1 * self.q2[q], self.t * self.q2[q])
    }
}

/// Per entry from tables filled with the same products (`kernel::strip`).
impl Products for (&[f64], &[f64]) {
    #[inline(always)]
    fn cut(self, n: usize) -> Self {
        (&self.0[..n], &self.1[..n])
    }
    #[inline(always)]
    fn at(&self, q: usize) -> (f64, f64) {
        (self.0[q], self.1[q])
    }
}

/// The loop of [`conv_row_generic`] with the variance products of each entry from `prod`
/// (per row as there, or per entry from tables: the same products, the same bits).
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)]
pub(super) fn conv_lanes(
    cc: &ConvConsts,
    prod: impl Products,
    (a, at): (&[f64], &[f64]),
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) -> bool {
    let n = c.len();
    let (a, at, th, d, dl) = (&a[..n], &at[..n], &mut th[..n], &mut d[..n], &mut dl[..n]);
    let prod = prod.cut(n);
    let mut cancel = false;
    for q in 0..n {
        let (qq, tq) = prod.at(q);
        let an = a[q] * cc.inv;
        let cv = cc.sw2 * an + cc.sb2;
        c[q] = cv;
        th[q] = if cc.std {
            cc.fan * an + cc.bias_one + cc.sw2 * (at[q] * cc.inv)
        } else {
            cv + cc.sw2 * (at[q] * cc.inv)
        };
        dl[q] = cc.sw2 * (dl[q] * cc.inv);
        let dq = pos(qq - cv * cv);
        d[q] = dq;
        // Negated so that a NaN counts as a possible cancellation (as in `det_row`).
        cancel |= !(dq > tq);
    }
    cancel
}

/// Pixel pairs of output row p whose naive D cancels (D ≤ 10⁻² q₁ q₂): the exact determinant
/// of the averaged 2×2 covariances ([`avg_det`]) plus the bias term σ_w² σ_b² Δ̄ (matrix
/// determinant lemma): `D = σ_w⁴ det/K⁴ + σ_w² σ_b² max(Δ'/σ_w², 0)`.
#[inline(always)]
fn det_row(rc: &RowCx, p: usize, d: &mut [f64], dl: &[f64], ws: &mut Vec<(f64, f64)>) {
    let (g, cc, q1) = (&rc.spec_g, &rc.cc, rc.q1[p]);
    let t = 1e-2 * q1;
    const B: usize = 8;
    for b0 in (0..d.len()).step_by(B) {
        let e = (b0 + B).min(d.len());
        // A branch-free test of the block first: most blocks have no cancelling pair.
        let ok = d[b0..e]
            .iter()
            .zip(&rc.q2[b0..e])
            .fold(true, |ok, (&dv, &qv)| ok & (dv > t * qv));
        if ok {
            continue;
        }
        for q in b0..e {
            if d[q] > t * rc.q2[q] {
                continue;
            }
            let pq = ((p / g.wo1, p % g.wo1), (q / g.wo2, q % g.wo2));
            let pl = rc.pl;
            let dims = (pl.h1, pl.w1, pl.h2, pl.w2);
            let cd = |a: usize, b: usize| pl.cd(a, b);
            let det = avg_det(&cd, dims, (rc.k1, rc.k2), (g.k, g.o), pq, ws);
            d[q] = cc.exact_d(det, dl[q]);
        }
    }
}

/// SAME padding: Δ of a pixel pair also gets the variances of the offsets that fall inside one
/// image only (the other side is padding, C_δ = [[a, 0], [0, 0]] or [[0, 0], [0, b]]):
/// `dl += scale · (Σ_{δ: p only} a_δ + Σ_{δ: q only} b_δ)` (δ ascending), for the pairs with a
/// border pixel (pairs of interior pixels have no such offset). Precomputed per layer: y's
/// border pixels, and for each the offsets that leave y (the only terms when p is interior).
pub(super) struct OneSided {
    /// y's border pixels.
    border2: Vec<usize>,
    /// Per border pixel of y: index into `outs` of its list of offsets leaving y.
    class2: Vec<usize>,
    /// The distinct lists of offsets (di, dj), ascending, that leave y at a border pixel.
    outs: Vec<Vec<(usize, usize)>>,
    /// The distinct lists of offsets (di, dj), ascending, that leave x at a border pixel, each
    /// with its one-sided sums `Σ_{δ in list} k2[q+δ]` for every interior q of y (in the order
    /// of y's interior pixels): the only terms of a border p with an interior q.
    xouts: Vec<(Offsets, Vec<f64>)>,
    /// Per pixel q of y: its class (index into `outs`) if a border pixel, else its index among
    /// y's interior pixels (the lookups of [`OneSided::border_terms`]).
    at2: Vec<Result<usize, usize>>,
    /// Per border pixel p of x: index into `xouts`.
    xcls: Vec<usize>,
    /// Per pixel of x and of y: the offsets δ (bit di·K + dj) that stay inside its image, if
    /// K² ≤ 64 ([`border_extra_masked`]).
    masks: Option<(Vec<u64>, Vec<u64>)>,
}

/// A list of conv offsets (di, dj).
type Offsets = Vec<(usize, usize)>;

impl OneSided {
    pub(super) fn new(g: &ConvGeom, k2: &[f64]) -> Self {
        let (h2, w2) = (g.h2, g.w2);
        let interior2: Vec<bool> = (0..h2 * w2)
            .map(|q| interior(g, q / w2, q % w2, h2, w2))
            .collect();
        let border2: Vec<usize> = (0..h2 * w2).filter(|&q| !interior2[q]).collect();
        let mut outs: Vec<Vec<(usize, usize)>> = Vec::new();
        let class2 = border2
            .iter()
            .map(|&q| {
                let l = offsets(g, (q / w2, q % w2), (h2, w2), false);
                outs.iter().position(|o| *o == l).unwrap_or_else(|| {
                    outs.push(l);
                    outs.len() - 1
                })
            })
            .collect();
        let inner2: Vec<usize> = (0..h2 * w2).filter(|&q| interior2[q]).collect();
        let mut xouts: Vec<(Offsets, Vec<f64>)> = Vec::new();
        let mut xcls = vec![usize::MAX; g.h1 * g.w1];
        for p in 0..g.h1 * g.w1 {
            let (pi, pj) = (p / g.w1, p % g.w1);
            if interior(g, pi, pj, g.h1, g.w1) {
                continue;
            }
            let l = offsets(g, (pi, pj), (g.h1, g.w1), false);
            if let Some(i) = xouts.iter().position(|(o, _)| *o == l) {
                xcls[p] = i;
                continue;
            }
            xcls[p] = xouts.len();
            let sums = inner2
                .iter()
                .map(|&q| {
                    let (qi, qj) = (q / w2, q % w2);
                    l.iter().fold(0.0, |s, &(di, dj)| {
                        s + k2[(qi + di - g.o) * w2 + qj + dj - g.o]
                    })
                })
                .collect();
            xouts.push((l, sums));
        }
        let mut at2: Vec<Result<usize, usize>> = vec![Err(usize::MAX); h2 * w2];
        for (&q, &cl) in border2.iter().zip(&class2) {
            at2[q] = Ok(cl);
        }
        for (i, &q) in inner2.iter().enumerate() {
            at2[q] = Err(i);
        }
        let mask = |(h, w): (usize, usize)| -> Vec<u64> {
            (0..h * w)
                .map(|p| {
                    let mut m = 0u64;
                    for di in 0..g.k {
                        for dj in 0..g.k {
                            let inside = at(g, p / w + di, p % w + dj, h, w).is_some();
                            m |= (inside as u64) << (di * g.k + dj);
                        }
                    }
                    m
                })
                .collect()
        };
        let masks = (g.k * g.k <= 64).then(|| (mask((g.h1, g.w1)), mask((h2, w2))));
        OneSided {
            border2,
            class2,
            outs,
            xouts,
            at2,
            xcls,
            masks,
        }
    }

    /// [`border_extra`] of pixel pair (p, q) (flat indices), by the in-range masks if any.
    #[inline]
    fn border_pair(&self, g: &ConvGeom, (p, q): (usize, usize), (k1, k2): (&[f64], &[f64])) -> f64 {
        match &self.masks {
            Some((m1, m2)) => border_extra_masked(g, (p, q), (m1[p], m2[q]), (k1, k2)),
            None => border_extra(g, (p / g.w1, p % g.w1), (q / g.w2, q % g.w2), k1, k2),
        }
    }

    /// For an interior pixel p = (pi, pj) of x: per class of `outs`, `Σ_{δ in class} k1[p+δ]`
    /// (δ ascending, from 0): the one-sided sums of p with y's border pixels of that class.
    pub(super) fn interior_sums(
        &self,
        g: &ConvGeom,
        (pi, pj): (usize, usize),
        k1: &[f64],
    ) -> Vec<f64> {
        self.outs
            .iter()
            .map(|l| {
                l.iter().fold(0.0, |s, &(di, dj)| {
                    s + k1[(pi + di - g.o) * g.w1 + pj + dj - g.o]
                })
            })
            .collect()
    }

    /// The class of y's pixel q (index into the per-class sums of
    /// [`OneSided::interior_sums`]) if it is a border pixel.
    pub(super) fn class_of(&self, q: usize) -> Option<usize> {
        self.at2[q].ok()
    }

    /// The one-sided sums of a border pixel p of x with y's pixels `qs`, in order — the values
    /// [`OneSided::row`] scales and adds, looked up instead of looped over a plane row — each
    /// handed to `f`.
    #[inline]
    pub(super) fn border_terms(
        &self,
        g: &ConvGeom,
        p: usize,
        qs: std::ops::Range<usize>,
        ks: (&[f64], &[f64]),
        mut f: impl FnMut(usize, f64),
    ) {
        let xs: &[f64] = self.xouts.get(self.xcls[p]).map_or(&[], |x| &x.1);
        for q in qs {
            let v = match self.at2[q] {
                Err(i) => xs[i],
                Ok(_) => self.border_pair(g, (p, q), ks),
            };
            f(q, v);
        }
    }

    /// The number of classes of y's border pixels (the length of
    /// [`OneSided::interior_sums`]).
    pub(super) fn classes(&self) -> usize {
        self.outs.len()
    }

    /// The one-sided term of output row p (= pixel p of x) added to its Δ row `dl`.
    fn row(&self, g: &ConvGeom, p: usize, (k1, k2): (&[f64], &[f64]), scale: f64, dl: &mut [f64]) {
        let (pi, pj) = (p / g.w1, p % g.w1);
        if interior(g, pi, pj, g.h1, g.w1) {
            // Only offsets leaving y contribute: Σ k1[p+δ] over q's class of offsets.
            let sums = self.interior_sums(g, (pi, pj), k1);
            for (&q, &cl) in self.border2.iter().zip(&self.class2) {
                dl[q] += scale * sums[cl];
            }
            return;
        }
        // A border p: interior q by its class's precomputed sums, border q one by one.
        let qs = 0..g.h2 * g.w2;
        self.border_terms(g, p, qs, (k1, k2), |q, v| dl[q] += scale * v);
    }
}

/// Whether pixel (i, j) of an h×w image has all K×K offsets inside.
pub(super) fn interior(g: &ConvGeom, i: usize, j: usize, h: usize, w: usize) -> bool {
    i >= g.o && j >= g.o && i + g.k - g.o <= h && j + g.k - g.o <= w
}

/// Flat index of offset position (i − o, j − o) in an h×w image, if inside.
fn at(g: &ConvGeom, i: usize, j: usize, h: usize, w: usize) -> Option<usize> {
    (i >= g.o && j >= g.o && i - g.o < h && j - g.o < w).then(|| (i - g.o) * w + (j - g.o))
}

/// The offsets δ (ascending) with pixel + δ inside (`inside`) or outside the h×w image.
fn offsets(
    g: &ConvGeom,
    (i, j): (usize, usize),
    (h, w): (usize, usize),
    inside: bool,
) -> Vec<(usize, usize)> {
    (0..g.k)
        .flat_map(|di| (0..g.k).map(move |dj| (di, dj)))
        .filter(|&(di, dj)| at(g, i + di, j + dj, h, w).is_some() == inside)
        .collect()
}

/// The one-sided sum of a pair of border pixels, every offset tested (δ ascending).
fn border_extra(g: &ConvGeom, p: (usize, usize), q: (usize, usize), k1: &[f64], k2: &[f64]) -> f64 {
    let mut extra = 0.0;
    for di in 0..g.k {
        for dj in 0..g.k {
            let a = at(g, p.0 + di, p.1 + dj, g.h1, g.w1);
            let b = at(g, q.0 + di, q.1 + dj, g.h2, g.w2);
            match (a, b) {
                (Some(a), None) => extra += k1[a],
                (None, Some(b)) => extra += k2[b],
                _ => {}
            }
        }
    }
    extra
}

/// [`border_extra`] from the in-range offset masks `(m1, m2)` of p and q (bit di·K + dj): the
/// offsets inside exactly one image, ascending, each adding that image's variance — the same
/// terms in the same order.
#[inline]
fn border_extra_masked(
    g: &ConvGeom,
    (p, q): (usize, usize),
    (m1, m2): (u64, u64),
    (k1, k2): (&[f64], &[f64]),
) -> f64 {
    let (k, o) = (g.k, g.o);
    let (pi, pj, qi, qj) = (p / g.w1, p % g.w1, q / g.w2, q % g.w2);
    let mut extra = 0.0;
    let mut m = m1 ^ m2;
    while m != 0 {
        let b = m.trailing_zeros() as usize;
        m &= m - 1;
        let (di, dj) = (b / k, b % k);
        if m1 >> b & 1 == 1 {
            extra += k1[(pi + di - o) * g.w1 + pj + dj - o];
        } else {
            extra += k2[(qi + di - o) * g.w2 + qj + dj - o];
        }
    }
    extra
}

/// det(Σ_δ C_δ) for the 2×2 pixel-pair covariances C_δ = [[a, c], [c, b]] entering one conv
/// output pair, without cancellation: with w_δ = (√a, s√b), s = sign c, and
/// e_δ = D_δ/(√(ab) + |c|) (= √(ab) − |c| exactly), Σ C_δ = W Wᵀ − (Σ s e)(E₁₂ + E₂₁), so
/// `det = Σ_{δ<δ'} (w_δ × w_δ')² + E (2 c_w − E)` with c_w = Σ s√(ab), E = Σ s e. O(K⁴) per
/// pair: only for the pixel pairs whose naive determinant cancels.
///
/// `cd(i1, i2)`: (Σ, D) of input pixel pair (i1, i2) (flat indices into the H₁×W₁ and H₂×W₂
/// grids `dims`), wherever the planes are stored.
pub(super) fn avg_det(
    cd: &impl Fn(usize, usize) -> (f64, f64),
    (h1, w1, h2, w2): (usize, usize, usize, usize),
    (k1, k2): (&[f64], &[f64]),
    (k, o): (usize, usize),
    (p, q): ((usize, usize), (usize, usize)),
    ws: &mut Vec<(f64, f64)>,
) -> f64 {
    ws.clear();
    let (mut cw, mut ee) = (0.0, 0.0);
    for di in 0..k {
        for dj in 0..k {
            // An offset inside one image only still adds that image's variance (the other
            // side is zero padding): C_δ = [[a, 0], [0, 0]] or [[0, 0], [0, b]].
            let at = |i: usize, j: usize, h: usize, w: usize| {
                (i >= o && j >= o && i - o < h && j - o < w).then(|| (i - o) * w + (j - o))
            };
            let i1 = at(p.0 + di, p.1 + dj, h1, w1);
            let i2 = at(q.0 + di, q.1 + dj, h2, w2);
            let (a, b, c, d) = match (i1, i2) {
                (Some(i1), Some(i2)) => {
                    let (c, d) = cd(i1, i2);
                    (k1[i1], k2[i2], c, d)
                }
                (Some(i1), None) => (k1[i1], 0.0, 0.0, 0.0),
                (None, Some(i2)) => (0.0, k2[i2], 0.0, 0.0),
                (None, None) => continue,
            };
            let s = if c < 0.0 { -1.0 } else { 1.0 };
            let r = (a * b).sqrt();
            let den = r + c.abs();
            let ed = if den > 0.0 { d / den } else { 0.0 };
            ws.push((a.sqrt(), s * b.sqrt()));
            cw += s * r;
            ee += s * ed;
        }
    }
    let mut det = 0.0;
    for i in 0..ws.len() {
        for j in i + 1..ws.len() {
            let m = ws[i].0.mul_add(ws[j].1, -(ws[j].0 * ws[i].1));
            det += m * m;
        }
    }
    pos(det + ee * (2.0 * cw - ee))
}

/// The activation's dual on every pixel pair (the FC dual kernels, stable angles), in place,
/// one branch-free lane function per row of the plane (vectorisable; the same operations as
/// [`Activation::dual_pair`], hence the same bits).
fn activation(a: Activation, mut pl: Planes, k1: &[f64], k2: &[f64]) -> Planes {
    pl.th_zero = false;
    let p2 = pl.p2();
    let d2: Vec<Diag> = k2.iter().map(|&q| a.diag(q)).collect();
    let sq2: Vec<f64> = d2.iter().map(|d| d.sq).collect();
    let scratch = Default::default();
    let cx = ActCx {
        a,
        relu: relu_consts(a),
        k2,
        d2: &d2,
        sq2: &sq2,
        scratch: &scratch,
        sigma_only: false,
    };
    for (p, &q1) in k1.iter().enumerate() {
        let r = p * p2..(p + 1) * p2;
        let (c, th) = (&mut pl.c[r.clone()], &mut pl.th[r.clone()]);
        let (d, dl) = (&mut pl.d[r.clone()], &mut pl.dl[r]);
        act_row(&cx, q1, c, th, d, dl);
    }
    pl
}

/// The (a, b)-ReLU constants of an activation (plain ReLU: a = 0, b = 1; unused otherwise).
pub(super) fn relu_consts(a: Activation) -> ReluConsts {
    match a {
        Activation::AbRelu { a, b } => ReluConsts::new(a, b),
        _ => ReluConsts::new(0.0, 1.0),
    }
}

/// The per-plane constants of [`activation`].
pub(super) struct ActCx<'a> {
    pub a: Activation,
    pub relu: ReluConsts,
    pub k2: &'a [f64],
    pub d2: &'a [Diag],
    /// `d2[q].sq` contiguous (a vectorisable load in [`relu_row`]).
    pub sq2: &'a [f64],
    /// Per-row temporaries of [`relu_row`].
    pub scratch: &'a std::cell::RefCell<Vec<f64>>,
    /// Only Σ and Θ of the output are read (a last layer before the GAP): the ReLU family
    /// leaves D and Δ as they are instead of forming D' and Δ' (Σ and Θ keep their bits).
    pub sigma_only: bool,
}

/// One row of [`activation`], dispatched on the SIMD level (`crate::simd::level`): the same
/// scalar lane code compiled with AVX-512 / AVX2 enabled so that the loop vectorises; the
/// lanes are exact IEEE operations (no contraction into FMA; `mul_add` is a correctly
/// rounded fma on every path), hence identical bits on every path.
fn act_row(cx: &ActCx, q1: f64, c: &mut [f64], th: &mut [f64], d: &mut [f64], dl: &mut [f64]) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { act_row_avx512(cx, q1, c, th, d, dl) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { act_row_avx2(cx, q1, c, th, d, dl) },
        _ => act_row_generic(cx, q1, c, th, d, dl),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn act_row_avx512(
    cx: &ActCx,
    q1: f64,
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) {
    act_row_generic(cx, q1, c, th, d, dl)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn act_row_avx2(
    cx: &ActCx,
    q1: f64,
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) {
    act_row_generic(cx, q1, c, th, d, dl)
}

#[inline(always)]
fn act_row_generic(
    cx: &ActCx,
    q1: f64,
    c: &mut [f64],
    th: &mut [f64],
    d: &mut [f64],
    dl: &mut [f64],
) {
    act_rows_generic(cx, &[q1], c.len(), (c, th, d, dl))
}

/// [`act_row`] on consecutive rows of `stride` entries each (the y side: `cx`'s slices of
/// `stride` entries, the same for every row), row i with x's variance `q1[i]`: the ReLU
/// family's angle passes run over all rows at once (long vectorised loops), everything else
/// per row — per entry the same operations as [`act_row`].
#[inline(always)]
pub(super) fn act_rows_generic(
    cx: &ActCx,
    q1: &[f64],
    stride: usize,
    (c, th, d, dl): (&mut [f64], &mut [f64], &mut [f64], &mut [f64]),
) {
    if matches!(cx.a, Activation::Relu | Activation::AbRelu { .. }) {
        return relu_rows(cx, q1, stride, (c, th, d, dl));
    }
    let a = cx.a;
    let (k2, d2) = (&cx.k2[..stride], &cx.d2[..stride]);
    for (i, &q1) in q1.iter().enumerate() {
        let r = i * stride..(i + 1) * stride;
        let (c, th) = (&mut c[r.clone()], &mut th[r.clone()]);
        let (d, dl) = (&mut d[r.clone()], &mut dl[r]);
        let d1 = a.diag(q1);
        for q in 0..stride {
            let cz = if q1 == 0.0 || k2[q] == 0.0 { 0.0 } else { c[q] };
            let (t12, tdot, td, tdl) = match a {
                Activation::Identity => (cz, 1.0, d[q], dl[q]),
                Activation::Erf => erf_lane(q1 + k2[q], d[q], cz, d1.t, d2[q].t),
                _ => relu_lane(&cx.relu, cz, d[q], dl[q], d1.sq * d2[q].sq),
            };
            c[q] = t12;
            th[q] *= tdot;
            d[q] = td;
            dl[q] = tdl;
        }
    }
}

/// The (a, b)-ReLU dual of rows of pairs ([`relu_lane`] per entry) in passes — per row the
/// zeroed k12 and r = √(k11 k22); then over all rows at once √D, the reduced atan2 argument,
/// `atan_core`, the angle and `h_series`, and the rest ([`relu_lane_post`]) — so that each
/// pass has short dependency chains and independent iterations (as `kernel::batch`) and the
/// heavy ones run as long vectorised loops; the same operations in the same order per entry
/// as `relu_lane`, hence the same bits.
#[inline(always)]
fn relu_rows(
    cx: &ActCx,
    q1: &[f64],
    stride: usize,
    (c, th, d, dl): (&mut [f64], &mut [f64], &mut [f64], &mut [f64]),
) {
    let n = q1.len() * stride;
    let mut s = cx.scratch.borrow_mut();
    s.resize(5 * n, 0.0);
    let (cz, rest) = s.split_at_mut(n);
    let (rr, rest) = rest.split_at_mut(n);
    let (sd, rest) = rest.split_at_mut(n);
    let (t, hs) = rest.split_at_mut(n);
    let (c, th, d, dl, rr, hs) = (
        &mut c[..n],
        &mut th[..n],
        &mut d[..n],
        &mut dl[..n],
        &mut rr[..n],
        &mut hs[..n],
    );
    let (k2, sq2) = (&cx.k2[..stride], &cx.sq2[..stride]);
    // A local copy: `cx` holds a RefCell, so its fields could change under the scratch
    // stores as far as the compiler knows (no hoisting, no vectorising).
    let k = cx.relu;
    for (i, &q1) in q1.iter().enumerate() {
        let sq1 = cx.a.diag(q1).sq;
        let r = i * stride..(i + 1) * stride;
        let (czr, rrr, cr) = (&mut cz[r.clone()], &mut rr[r.clone()], &c[r]);
        for q in 0..stride {
            czr[q] = if q1 == 0.0 || k2[q] == 0.0 {
                0.0
            } else {
                cr[q]
            };
            rrr[q] = sq1 * sq2[q];
        }
    }
    relu_angle_passes(cz, d, sd, t, hs);
    let (cz, sd, t) = (&cz[..n], &sd[..n], &t[..n]);
    if cx.sigma_only {
        // The same lane; its unused D' and Δ' (and the Δ loads) are dead code here.
        for e in 0..n {
            let (t12, tdot, _, _) = relu_lane_post(&k, cz[e], d[e], 0.0, rr[e], sd[e], t[e], hs[e]);
            c[e] = t12;
            th[e] *= tdot;
        }
        return;
    }
    for e in 0..n {
        let (t12, tdot, td, tdl) =
            relu_lane_post(&k, cz[e], d[e], dl[e], rr[e], sd[e], t[e], hs[e]);
        c[e] = t12;
        th[e] *= tdot;
        d[e] = td;
        dl[e] = tdl;
    }
}

/// Average pooling (window = stride = K): the mean over all cross pairs of the two windows;
/// D and Δ recomputed from the pooled variances (naive).
fn pool(pl: &Planes, k: usize) -> Planes {
    let (ho1, wo1, ho2, wo2) = (pl.h1 / k, pl.w1 / k, pl.h2 / k, pl.w2 / k);
    let p2 = pl.p2();
    let po2 = ho2 * wo2;
    let n = ho1 * wo1 * po2;
    let inv = 1.0 / (k * k * k * k) as f64;
    let mut out = Planes {
        h1: ho1,
        w1: wo1,
        h2: ho2,
        w2: wo2,
        n_in: pl.n_in,
        c: vec![0.0; n],
        th: vec![0.0; n],
        d: vec![0.0; n],
        dl: vec![0.0; n],
        th_zero: false,
        img: None,
        own: pl.own,
    };
    for i1 in 0..ho1 {
        for j1 in 0..wo1 {
            for i2 in 0..ho2 {
                for j2 in 0..wo2 {
                    let (mut sc, mut st) = (0.0, 0.0);
                    for a in 0..k {
                        for b in 0..k {
                            let u = (i1 * k + a) * pl.w1 + j1 * k + b;
                            for a2 in 0..k {
                                let v0 = u * p2 + (i2 * k + a2) * pl.w2 + j2 * k;
                                for v in v0..v0 + k {
                                    sc += pl.c[v];
                                    st += pl.th[v];
                                }
                            }
                        }
                    }
                    let e = (i1 * wo1 + j1) * po2 + i2 * wo2 + j2;
                    out.c[e] = sc * inv;
                    out.th[e] = st * inv;
                }
            }
        }
    }
    out
}

/// GAP (`diag = false`: mean over all pixel pairs) or flatten (`true`: mean over equal
/// positions; a following layer has fan-in P·n). D and Δ of the result: naive (GAP), exact
/// averages of Δ and the cancellation-free determinant of averaged 2×2 matrices (flatten).
fn reduce(pl: &Planes, diag: bool) -> Planes {
    let (p1, p2) = (pl.p1(), pl.p2());
    let (c, th, dl, n_in) = if diag {
        let m = p1.min(p2) as f64;
        let s = |v: &[f64]| (0..p1.min(p2)).map(|p| v[p * p2 + p]).sum::<f64>() / m;
        (s(&pl.c), s(&pl.th), s(&pl.dl), pl.n_in * m)
    } else {
        let m = (p1 * p2) as f64;
        let mut acc = GapAcc::new((pl.h1, pl.w1, pl.h2, pl.w2), pl.own);
        for p in 0..p1 {
            let r = p * p2..(p + 1) * p2;
            acc.row(p, &pl.c[r.clone()], &pl.th[r]);
        }
        let (c, th) = acc.totals();
        (c / m, th / m, 0.0, pl.n_in)
    };
    unit_planes((c, th, dl), n_in)
}

/// Recompute D (and for GAP/pool Δ) of a plane from the variances of its own layer where the
/// layer could not carry them: naive `k11 k22 − k12²`, `k11 + k22 − 2k12`.
pub(crate) fn refresh_naive(pl: &mut Planes, k1: &[f64], k2: &[f64], delta_too: bool) {
    let p2 = pl.p2();
    for (p, &a) in k1.iter().enumerate() {
        for (q, &b) in k2.iter().enumerate() {
            let e = p * p2 + q;
            let c = pl.c[e];
            pl.d[e] = pos(a * b - c * c);
            if delta_too {
                pl.dl[e] = pos(a + b - 2.0 * c);
            }
        }
    }
}

#[cfg(test)]
mod gap_mirror_tests {
    use super::{GapAcc, ZERO};

    /// A self pair's GAP on an asymmetric 3×3-pixel plane (P = 9; blocks of 3×3 entries):
    /// the lower blocks (i₁ ≥ i₂) summed from their own entries, the upper ones from the
    /// mirror — against the definition written out entry by entry; and a cross pair's GAP
    /// (no mirror) reads the upper blocks' own entries.
    #[test]
    fn gap_acc_mirrors_the_lower_block_triangle_of_a_self_pair() {
        let (h, w) = (3, 3);
        let p = h * w;
        // Entries of very different sizes, so that the summation order shows in the bits.
        let v = |e: usize| {
            let m = (1 + e * 2654435761 % 997) as f64 * 10f64.powi(4 * (e % 5) as i32);
            if e % 3 == 1 {
                -m
            } else {
                m
            }
        };
        let c: Vec<f64> = (0..p * p).map(v).collect();
        let th: Vec<f64> = c.iter().map(|x| x * 0.3).collect();
        let run = |own: bool| {
            let mut acc = GapAcc::new((h, w, h, w), own);
            for q in 0..p {
                acc.row(q, &c[q * p..(q + 1) * p], &th[q * p..(q + 1) * p]);
            }
            acc.totals()
        };
        let at = |pp: usize, qq: usize| (c[pp * p + qq], th[pp * p + qq]);
        let reference = |own: bool| {
            let (mut tc, mut tt) = (ZERO, ZERO);
            for i1 in 0..h {
                for i2 in 0..h {
                    let (mut sc, mut st) = (ZERO, ZERO);
                    for j1 in 0..w {
                        for j2 in 0..w {
                            let (pp, qq) = (i1 * w + j1, i2 * w + j2);
                            let (x, y) = if own && i1 < i2 {
                                at(qq, pp)
                            } else {
                                at(pp, qq)
                            };
                            sc += x;
                            st += y;
                        }
                    }
                    tc += sc;
                    tt += st;
                }
            }
            (tc, tt)
        };
        for own in [true, false] {
            let (got, want) = (run(own), reference(own));
            assert_eq!(got.0.to_bits(), want.0.to_bits(), "own = {own}: Σ");
            assert_eq!(got.1.to_bits(), want.1.to_bits(), "own = {own}: Θ");
        }
        // The plane is asymmetric enough that the mirror changes the result.
        assert_ne!(run(true), run(false));
    }
}
