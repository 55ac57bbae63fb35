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
//! gap:        S' = mean over all (p, q);   flatten: S' = mean over p of S[p,p]
//! dense:      a 1×1 conv (on one value per image: the FC layer, fan-in n_in)
//! ```
//!
//! The K×K shifted add runs as contiguous row slices of the planes (the innermost index is
//! the column of y's pixel), in a fixed order, so every entry's bits are independent of the
//! pair's position, the tile and the thread count.

// Index loops over several planes at once (p, q address 4 planes and 2 variance vectors).
#![allow(clippy::needless_range_loop)]

use super::activation::{erf_lane, relu_lane, Activation, Diag, ReluConsts};
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
    let div = if spec.normalization == Normalization::Arora {
        1.0
    } else {
        ch as f64
    };
    let xs = x.to_shape((h1 * w1, ch)).expect("3-D view");
    let ys = y.to_shape((h2 * w2, ch)).expect("3-D view");
    let (p1, p2) = (h1 * w1, h2 * w2);
    let nx: Vec<f64> = xs.rows().into_iter().map(|r| r.dot(&r)).collect();
    let ny: Vec<f64> = ys.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mut pl = Planes {
        h1,
        w1,
        h2,
        w2,
        n_in: ch as f64,
        c: vec![0.0; p1 * p2],
        th: vec![0.0; p1 * p2],
        d: vec![0.0; p1 * p2],
        dl: vec![0.0; p1 * p2],
    };
    for p in 0..p1 {
        let xr = xs.row(p);
        for q in 0..p2 {
            let yr = ys.row(q);
            let k = p * p2 + q;
            if same && p == q {
                pl.c[k] = nx[p] / div;
                continue;
            }
            let g = xr.dot(&yr);
            // Project onto the longer vector (ties: the first), as the FC first layer does.
            let w = if nx[p] >= ny[q] {
                wedge_small(xr, yr, nx[p], g)
            } else {
                wedge_small(yr, xr, ny[q], g)
            };
            let diff2: f64 = xr
                .iter()
                .zip(yr.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            pl.c[k] = g / div;
            pl.d[k] = w / (div * div);
            pl.dl[k] = diff2 / div;
        }
    }
    pl
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
        Layer::Conv { k, padding } => conv(spec, &pl, k, padding, k1, k2),
        Layer::Dense if spec.normalization == Normalization::Arora && last => return pl,
        Layer::Dense => conv(spec, &pl, 1, Padding::Valid, k1, k2),
        Layer::Act(a) => return activation(a, pl, k1, k2),
        Layer::AvgPool { k } => pool(&pl, k),
        Layer::Gap => reduce(&pl, false),
        Layer::Flatten => reduce(&pl, true),
    };
    pl.recycle();
    out
}

thread_local! {
    /// Per-thread pool of plane buffers: a pair's layers reuse the same memory (no page
    /// faults of fresh multi-MB allocations per layer). Buffers are always fully overwritten
    /// before being read, so their old contents never matter.
    static POOL: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of length n from the pool (contents unspecified).
fn take(n: usize) -> Vec<f64> {
    let mut v = POOL.with_borrow_mut(|p| p.pop()).unwrap_or_default();
    v.resize(n, 0.0);
    v
}

fn give(v: Vec<f64>) {
    POOL.with_borrow_mut(|p| {
        if p.len() < 16 {
            p.push(v)
        }
    });
}

/// `dst[(i1,j1),(i2,j2)] = Σ_δ src[(i1+di−o, j1+dj−o), (i2+di−o, j2+dj−o)]` over the
/// in-range offsets, δ in ascending (di, dj) order, as row slices over j2.
#[allow(clippy::too_many_arguments)]
fn shift_sum(
    src: &[f64],
    h1: usize,
    w1: usize,
    h2: usize,
    w2: usize,
    k: usize,
    o: usize,
    out: (usize, usize, usize, usize),
    dst: &mut [f64],
) {
    let (ho1, wo1, ho2, wo2) = out;
    let p2 = h2 * w2;
    let po2 = ho2 * wo2;
    dst.fill(0.0);
    for i1 in 0..ho1 {
        for j1 in 0..wo1 {
            let r = (i1 * wo1 + j1) * po2;
            for i2 in 0..ho2 {
                let drow = &mut dst[r + i2 * wo2..r + (i2 + 1) * wo2];
                for di in 0..k {
                    let (a1, a2) = (i1 + di, i2 + di);
                    if a1 < o || a2 < o || a1 - o >= h1 || a2 - o >= h2 {
                        continue;
                    }
                    let (a1, a2) = (a1 - o, a2 - o);
                    for dj in 0..k {
                        let b1 = j1 + dj;
                        if b1 < o || b1 - o >= w1 {
                            continue;
                        }
                        let b1 = b1 - o;
                        // j2 + dj − o ∈ [0, w2)
                        let lo = o.saturating_sub(dj);
                        let hi = (w2 + o).saturating_sub(dj).min(wo2);
                        if lo >= hi {
                            continue;
                        }
                        let s0 = (a1 * w1 + b1) * p2 + a2 * w2 + lo + dj - o;
                        let srow = &src[s0..s0 + (hi - lo)];
                        for (dv, sv) in drow[lo..hi].iter_mut().zip(srow) {
                            *dv += *sv;
                        }
                    }
                }
            }
        }
    }
}

/// `k1'` per output pixel: the diagonal of a conv applied to variances `k1` (H×W).
fn conv_diag(k1: &[f64], h: usize, w: usize, k: usize, o: usize, ho: usize, wo: usize) -> Vec<f64> {
    let mut out = vec![0.0; ho * wo];
    for i in 0..ho {
        for j in 0..wo {
            let mut s = 0.0;
            for di in 0..k {
                for dj in 0..k {
                    let (a, b) = (i + di, j + dj);
                    if a >= o && b >= o && a - o < h && b - o < w {
                        s += k1[(a - o) * w + (b - o)];
                    }
                }
            }
            out[i * wo + j] = s;
        }
    }
    out
}

fn conv(spec: &Spec, pl: &Planes, k: usize, padding: Padding, k1: &[f64], k2: &[f64]) -> Planes {
    let (o, (ho1, wo1, ho2, wo2)) = match padding {
        Padding::Same => ((k - 1) / 2, (pl.h1, pl.w1, pl.h2, pl.w2)),
        Padding::Valid => (
            0,
            (pl.h1 + 1 - k, pl.w1 + 1 - k, pl.h2 + 1 - k, pl.w2 + 1 - k),
        ),
    };
    let n = ho1 * wo1 * ho2 * wo2;
    let inv = 1.0 / (k * k) as f64;
    let sw2 = spec.sigma_w * spec.sigma_w;
    let sb2 = spec.sigma_b.map_or(0.0, |b| b * b);
    let bias_one = if spec.sigma_b.is_some() { 1.0 } else { 0.0 };
    let std = spec.parameterization == Parameterization::Standard;
    let mut out = Planes {
        h1: ho1,
        w1: wo1,
        h2: ho2,
        w2: wo2,
        n_in: spec.width as f64,
        c: take(n),
        th: take(n),
        d: take(n),
        dl: take(n),
    };
    let g = (ho1, wo1, ho2, wo2);
    let mut a = take(n);
    shift_sum(&pl.c, pl.h1, pl.w1, pl.h2, pl.w2, k, o, g, &mut a);
    let mut at = take(n);
    shift_sum(&pl.th, pl.h1, pl.w1, pl.h2, pl.w2, k, o, g, &mut at);
    shift_sum(&pl.dl, pl.h1, pl.w1, pl.h2, pl.w2, k, o, g, &mut out.dl);
    let kd1 = conv_diag(k1, pl.h1, pl.w1, k, o, ho1, wo1);
    let kd2 = conv_diag(k2, pl.h2, pl.w2, k, o, ho2, wo2);
    let fan = pl.n_in * (k * k) as f64;
    let po2 = ho2 * wo2;
    for p in 0..ho1 * wo1 {
        let q1 = sw2 * (kd1[p] * inv) + sb2;
        for q in 0..po2 {
            let e = p * po2 + q;
            let an = a[e] * inv;
            let c = sw2 * an + sb2;
            out.c[e] = c;
            out.th[e] = if std {
                fan * an + bias_one + sw2 * (at[e] * inv)
            } else {
                c + sw2 * (at[e] * inv)
            };
            let dl = out.dl[e] * inv;
            out.dl[e] = sw2 * dl;
            let q2 = sw2 * (kd2[q] * inv) + sb2;
            out.d[e] = pos(q1 * q2 - c * c);
        }
    }
    if padding == Padding::Same && k > 1 {
        one_sided_delta(&mut out.dl, pl, k1, k2, k, o, sw2 * inv);
    }
    // Pixel pairs whose naive D cancels: the exact determinant of the averaged 2×2 covariances
    // (below), plus the bias term σ_w² σ_b² Δ̄ (matrix determinant lemma).
    let mut ws = Vec::with_capacity(k * k);
    for p in 0..ho1 * wo1 {
        let q1 = sw2 * (kd1[p] * inv) + sb2;
        for q in 0..po2 {
            let e = p * po2 + q;
            let q2 = sw2 * (kd2[q] * inv) + sb2;
            if out.d[e] > 1e-2 * q1 * q2 {
                continue;
            }
            let det = avg_det(
                pl,
                k1,
                k2,
                k,
                o,
                (p / wo1, p % wo1),
                (q / wo2, q % wo2),
                &mut ws,
            ) * inv
                * inv;
            out.d[e] = sw2 * sw2 * det + sw2 * sb2 * (out.dl[e] / sw2).max(0.0);
        }
    }
    give(a);
    give(at);
    out
}

/// SAME padding: Δ of a pixel pair also gets the variances of the offsets that fall inside one
/// image only (the other side is padding, C_δ = [[a, 0], [0, 0]] or [[0, 0], [0, b]]):
/// `dl += scale · (Σ_{δ: p only} a_δ + Σ_{δ: q only} b_δ)`, for the border pairs (pairs of
/// interior pixels have no such offset).
fn one_sided_delta(
    dl: &mut [f64],
    pl: &Planes,
    k1: &[f64],
    k2: &[f64],
    k: usize,
    o: usize,
    scale: f64,
) {
    let (h1, w1, h2, w2) = (pl.h1, pl.w1, pl.h2, pl.w2);
    let at = |i: usize, j: usize, h: usize, w: usize| {
        (i >= o && j >= o && i - o < h && j - o < w).then(|| (i - o) * w + (j - o))
    };
    let interior = |i: usize, j: usize, h: usize, w: usize| {
        i >= o && j >= o && i + k - o <= h && j + k - o <= w
    };
    let p2 = h2 * w2;
    // The border pixels of y: the only partners of an interior pixel of x with an extra term.
    let border2: Vec<usize> = (0..p2)
        .filter(|&q| !interior(q / w2, q % w2, h2, w2))
        .collect();
    let all2: Vec<usize> = (0..p2).collect();
    for p in 0..h1 * w1 {
        let (pi, pj) = (p / w1, p % w1);
        let qs = if interior(pi, pj, h1, w1) {
            &border2
        } else {
            &all2
        };
        for &q in qs {
            let (qi, qj) = (q / w2, q % w2);
            let mut extra = 0.0;
            for di in 0..k {
                for dj in 0..k {
                    match (at(pi + di, pj + dj, h1, w1), at(qi + di, qj + dj, h2, w2)) {
                        (Some(a), None) => extra += k1[a],
                        (None, Some(b)) => extra += k2[b],
                        _ => {}
                    }
                }
            }
            dl[p * p2 + q] += scale * extra;
        }
    }
}

/// det(Σ_δ C_δ) for the 2×2 pixel-pair covariances C_δ = [[a, c], [c, b]] entering one conv
/// output pair, without cancellation: with w_δ = (√a, s√b), s = sign c, and
/// e_δ = D_δ/(√(ab) + |c|) (= √(ab) − |c| exactly), Σ C_δ = W Wᵀ − (Σ s e)(E₁₂ + E₂₁), so
/// `det = Σ_{δ<δ'} (w_δ × w_δ')² + E (2 c_w − E)` with c_w = Σ s√(ab), E = Σ s e. O(K⁴) per
/// pair: only for the pixel pairs whose naive determinant cancels.
#[allow(clippy::too_many_arguments)]
fn avg_det(
    pl: &Planes,
    k1: &[f64],
    k2: &[f64],
    k: usize,
    o: usize,
    p: (usize, usize),
    q: (usize, usize),
    ws: &mut Vec<(f64, f64)>,
) -> f64 {
    let p2 = pl.h2 * pl.w2;
    ws.clear();
    let (mut cw, mut ee) = (0.0, 0.0);
    for di in 0..k {
        for dj in 0..k {
            // An offset inside one image only still adds that image's variance (the other
            // side is zero padding): C_δ = [[a, 0], [0, 0]] or [[0, 0], [0, b]].
            let at = |i: usize, j: usize, h: usize, w: usize| {
                (i >= o && j >= o && i - o < h && j - o < w).then(|| (i - o) * w + (j - o))
            };
            let i1 = at(p.0 + di, p.1 + dj, pl.h1, pl.w1);
            let i2 = at(q.0 + di, q.1 + dj, pl.h2, pl.w2);
            let (a, b, c, d) = match (i1, i2) {
                (Some(i1), Some(i2)) => {
                    let e = i1 * p2 + i2;
                    (k1[i1], k2[i2], pl.c[e], pl.d[e])
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

fn pos(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// The activation's dual on every pixel pair (the FC dual kernels, stable angles), in place,
/// one branch-free lane function per row of the plane (vectorisable; the same operations as
/// [`Activation::dual_pair`], hence the same bits).
fn activation(a: Activation, mut pl: Planes, k1: &[f64], k2: &[f64]) -> Planes {
    let p2 = pl.p2();
    let d2: Vec<Diag> = k2.iter().map(|&q| a.diag(q)).collect();
    let relu = match a {
        Activation::AbRelu { a, b } => ReluConsts::new(a, b),
        _ => ReluConsts::new(0.0, 1.0),
    };
    let cx = ActCx {
        a,
        relu,
        k2,
        d2: &d2,
    };
    for (p, &q1) in k1.iter().enumerate() {
        let r = p * p2..(p + 1) * p2;
        let (c, th) = (&mut pl.c[r.clone()], &mut pl.th[r.clone()]);
        let (d, dl) = (&mut pl.d[r.clone()], &mut pl.dl[r]);
        act_row(&cx, q1, c, th, d, dl);
    }
    pl
}

/// The per-plane constants of [`activation`].
struct ActCx<'a> {
    a: Activation,
    relu: ReluConsts,
    k2: &'a [f64],
    d2: &'a [Diag],
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
    let (a, k2) = (cx.a, cx.k2);
    let d1 = a.diag(q1);
    let n = c.len();
    let (th, d, dl, k2, d2) = (
        &mut th[..n],
        &mut d[..n],
        &mut dl[..n],
        &k2[..n],
        &cx.d2[..n],
    );
    for q in 0..n {
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
        (
            pl.c.iter().sum::<f64>() / m,
            pl.th.iter().sum::<f64>() / m,
            0.0,
            pl.n_in,
        )
    };
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
    }
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
