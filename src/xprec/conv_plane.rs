//! The per-pair plane recursion of the convolutional kernels in double-double: the layer
//! semantics of [`crate::kernel::plane`] (stax definitions, MATH.md §10; formulas there), every
//! plane entry a [`Dd`].
//!
//! The state of a pair of images (x, y) is four P₁×P₂ planes, row-major over (pixel of x,
//! pixel of y): `c` = Σ(x, y)[p, q], `th` = Θ(x, y)[p, q], `d` = k11 k22 − k12² and
//! `dl` = k11 + k22 − 2k12 of each pixel pair, with k11, k22 the per-pixel variances from the
//! images' own runs. D and Δ are carried exactly where the layer allows, as in the f64 path:
//!
//! * input: x_p·y_q by `Dot2`, D by Lagrange's identity with each 2×2 minor from two exact
//!   products (C ≤ 8 channels; the projected wedge of [`super::kernel`] beyond), Δ from exact
//!   differences;
//! * activations: the DD duals of the fully-connected path ([`super::kernel::dual`]), which
//!   return D and Δ of the image of the pair;
//! * conv: Δ' = σ_w² (Σ_δ Δ_δ + one-sided border terms)/K²; D' = the cancellation-free
//!   determinant of the averaged 2×2 covariances (see [`avg_det`]) for the pixel pairs whose
//!   naive determinant cancels, plus σ_w²σ_b² Δ̄ (matrix determinant lemma);
//! * avgpool, gap, flatten: D and Δ recomputed naively from the pooled variances (in DD the
//!   naive D has absolute error ~1e-31 k11 k22, so a following ReLU angle carries ~3e-16
//!   absolute: the f64 path's 9-digit gap becomes ≥ 15 digits).

// Index loops over several planes at once (p, q address 4 planes and 2 variance vectors).
#![allow(clippy::needless_range_loop)]

use super::dd::{dot2, Dd};
use super::kernel::{diag_t, dual, wedge, Consts, State};
use crate::kernel::{Activation, Layer, Normalization, Padding, Parameterization, Spec};
use ndarray::ArrayView3;

/// The four DD planes of one pair and their geometry.
pub(crate) struct DdPlanes {
    pub h1: usize,
    pub w1: usize,
    pub h2: usize,
    pub w2: usize,
    /// Fan-in of a following conv / dense per spatial position (channels; P·N after flatten).
    pub n_in: f64,
    pub c: Vec<Dd>,
    pub th: Vec<Dd>,
    pub d: Vec<Dd>,
    pub dl: Vec<Dd>,
}

impl DdPlanes {
    fn p2(&self) -> usize {
        self.h2 * self.w2
    }

    /// Σ[p, p] (only meaningful for a self pair).
    pub(crate) fn diag(&self) -> Vec<Dd> {
        let p = self.h1 * self.w1;
        (0..p).map(|i| self.c[i * p + i]).collect()
    }

    fn zeros(h1: usize, w1: usize, h2: usize, w2: usize, n_in: f64) -> DdPlanes {
        let n = h1 * w1 * h2 * w2;
        DdPlanes {
            h1,
            w1,
            h2,
            w2,
            n_in,
            c: vec![Dd::ZERO; n],
            th: vec![Dd::ZERO; n],
            d: vec![Dd::ZERO; n],
            dl: vec![Dd::ZERO; n],
        }
    }
}

/// `‖u‖²‖v‖² − (u·v)²`: Lagrange's identity Σ_{i<j} (u_i v_j − u_j v_i)² with exact products
/// (C ≤ 8), else the projected wedge of the FC path (onto the longer vector).
#[inline(always)]
fn wedge_dd(u: &[f64], v: &[f64], nu: Dd, nv: Dd) -> Dd {
    let n = u.len();
    if n > 8 {
        return if nu >= nv {
            wedge(u, v, nu)
        } else {
            wedge(v, u, nv)
        };
    }
    let mut s = Dd::ZERO;
    for i in 0..n {
        for j in i + 1..n {
            s = s + (Dd::prod(u[i], v[j]) - Dd::prod(u[j], v[i])).sqr();
        }
    }
    s
}

/// The input planes of images x (H₁, W₁, C), y (H₂, W₂, C): Σ⁰ = x_p·y_q / C (no 1/C for
/// Arora's normalization), Θ⁰ = 0, D and Δ exact (`same`: the same image, D = Δ = 0 on the
/// diagonal pixel pairs).
#[inline(always)]
pub(crate) fn input(spec: &Spec, x: ArrayView3<f64>, y: ArrayView3<f64>, same: bool) -> DdPlanes {
    let (h1, w1, ch) = x.dim();
    let (h2, w2, _) = y.dim();
    let div = Dd::from_f64(if spec.normalization == Normalization::Arora {
        1.0
    } else {
        ch as f64
    });
    let pix = |a: ArrayView3<f64>| -> Vec<Vec<f64>> {
        let (h, w, _) = a.dim();
        (0..h * w)
            .map(|p| a.slice(ndarray::s![p / w, p % w, ..]).to_vec())
            .collect()
    };
    let (xs, ys) = (pix(x), pix(y));
    let nx: Vec<Dd> = xs.iter().map(|r| dot2(r, r)).collect();
    let ny: Vec<Dd> = ys.iter().map(|r| dot2(r, r)).collect();
    let mut pl = DdPlanes::zeros(h1, w1, h2, w2, ch as f64);
    let p2 = h2 * w2;
    for (p, xr) in xs.iter().enumerate() {
        for (q, yr) in ys.iter().enumerate() {
            let k = p * p2 + q;
            if same && p == q {
                pl.c[k] = nx[p] / div;
                continue;
            }
            let diff2 = xr
                .iter()
                .zip(yr)
                .fold(Dd::ZERO, |a, (&u, &v)| a + Dd::sum(u, -v).sqr());
            pl.c[k] = dot2(xr, yr) / div;
            pl.d[k] = wedge_dd(xr, yr, nx[p], ny[q]) / div.sqr();
            pl.dl[k] = diff2 / div;
        }
    }
    pl
}

/// One layer on the planes of a pair; `k1`, `k2` are the per-pixel variances of x and y before
/// this layer (their own runs' diagonals).
#[inline(always)]
pub(crate) fn layer(
    spec: &Spec,
    l: &Layer,
    last: bool,
    pl: DdPlanes,
    k1: &[Dd],
    k2: &[Dd],
) -> DdPlanes {
    match *l {
        Layer::Conv { k, padding } => conv(spec, &pl, k, padding, k1, k2),
        Layer::Dense if spec.normalization == Normalization::Arora && last => pl,
        Layer::Dense => conv(spec, &pl, 1, Padding::Valid, k1, k2),
        Layer::Act(a) => activation(spec, a, pl, k1, k2),
        Layer::AvgPool { k } => pool(&pl, k),
        Layer::Gap => reduce(&pl, false),
        Layer::Flatten => reduce(&pl, true),
    }
}

/// The in-image index of padded position (i, j) shifted back by o, if inside an h×w image.
#[inline(always)]
fn at(i: usize, j: usize, h: usize, w: usize, o: usize) -> Option<usize> {
    (i >= o && j >= o && i - o < h && j - o < w).then(|| (i - o) * w + (j - o))
}

/// Σ_δ src[p + δ, q + δ] over the offsets inside both images, δ in ascending (di, dj) order.
#[inline(always)]
fn shift_sum(
    src: &[Dd],
    pl: &DdPlanes,
    k: usize,
    o: usize,
    p: (usize, usize),
    q: (usize, usize),
) -> Dd {
    let p2 = pl.p2();
    let mut s = Dd::ZERO;
    for di in 0..k {
        for dj in 0..k {
            let a = at(p.0 + di, p.1 + dj, pl.h1, pl.w1, o);
            let b = at(q.0 + di, q.1 + dj, pl.h2, pl.w2, o);
            if let (Some(a), Some(b)) = (a, b) {
                s = s + src[a * p2 + b];
            }
        }
    }
    s
}

/// SAME padding: the variances of the offsets inside one image only (the other side is
/// padding, C_δ = [[a, 0], [0, 0]] or [[0, 0], [0, b]]), which add to Δ (and D) of the pair.
#[inline(always)]
fn one_sided(
    pl: &DdPlanes,
    k1: &[Dd],
    k2: &[Dd],
    k: usize,
    o: usize,
    p: (usize, usize),
    q: (usize, usize),
) -> Dd {
    let mut s = Dd::ZERO;
    for di in 0..k {
        for dj in 0..k {
            match (
                at(p.0 + di, p.1 + dj, pl.h1, pl.w1, o),
                at(q.0 + di, q.1 + dj, pl.h2, pl.w2, o),
            ) {
                (Some(a), None) => s = s + k1[a],
                (None, Some(b)) => s = s + k2[b],
                _ => {}
            }
        }
    }
    s
}

/// The variance of a conv output pixel: Σ_δ k[p + δ] over the in-image offsets.
fn conv_diag(k1: &[Dd], h: usize, w: usize, k: usize, o: usize, ho: usize, wo: usize) -> Vec<Dd> {
    (0..ho * wo)
        .map(|p| {
            let mut s = Dd::ZERO;
            for di in 0..k {
                for dj in 0..k {
                    if let Some(a) = at(p / wo + di, p % wo + dj, h, w, o) {
                        s = s + k1[a];
                    }
                }
            }
            s
        })
        .collect()
}

/// conv K (stride 1): Σ' = σ_w² A(Σ) + σ_b², Θ' = Σ' + σ_w² A(Θ) (NTK parameterization) or
/// n_in K² A(Σ) + [bias] + σ_w² A(Θ) (standard), A = (1/K²) Σ_δ; Δ' = σ_w² Δ̄ with
/// Δ̄ = (Σ_δ Δ_δ + one-sided terms)/K²; D' naive, or for cancelling pairs
/// σ_w⁴ det(Σ_δ C_δ)/K⁴ + σ_w² σ_b² Δ̄.
#[inline(always)]
fn conv(spec: &Spec, pl: &DdPlanes, k: usize, padding: Padding, k1: &[Dd], k2: &[Dd]) -> DdPlanes {
    let (o, (ho1, wo1, ho2, wo2)) = match padding {
        Padding::Same => ((k - 1) / 2, (pl.h1, pl.w1, pl.h2, pl.w2)),
        Padding::Valid => (
            0,
            (pl.h1 + 1 - k, pl.w1 + 1 - k, pl.h2 + 1 - k, pl.w2 + 1 - k),
        ),
    };
    let cx = Consts::for_act(spec.sigma_w, spec.sigma_b, Activation::Identity);
    let (sw2, sb2) = (cx.sw2, cx.sb2);
    let inv = Dd::ONE / Dd::from_f64((k * k) as f64);
    let std = spec.parameterization == Parameterization::Standard;
    let fan = pl.n_in * (k * k) as f64;
    let kd1 = conv_diag(k1, pl.h1, pl.w1, k, o, ho1, wo1);
    let kd2 = conv_diag(k2, pl.h2, pl.w2, k, o, ho2, wo2);
    let mut out = DdPlanes::zeros(ho1, wo1, ho2, wo2, spec.width as f64);
    let po2 = ho2 * wo2;
    for p in 0..ho1 * wo1 {
        let pp = (p / wo1, p % wo1);
        let q1 = sw2 * (kd1[p] * inv) + sb2;
        for q in 0..po2 {
            let qq = (q / wo2, q % wo2);
            let e = p * po2 + q;
            let an = shift_sum(&pl.c, pl, k, o, pp, qq) * inv;
            let at_ = shift_sum(&pl.th, pl, k, o, pp, qq) * inv;
            let mut dsum = shift_sum(&pl.dl, pl, k, o, pp, qq);
            if padding == Padding::Same && k > 1 {
                dsum = dsum + one_sided(pl, k1, k2, k, o, pp, qq);
            }
            let dbar = dsum * inv;
            let c = sw2 * an + sb2;
            out.c[e] = c;
            out.th[e] = if std {
                an.mul_f64(fan).add_f64(cx.bias_one) + sw2 * at_
            } else {
                c + sw2 * at_
            };
            out.dl[e] = sw2 * dbar;
            let q2 = sw2 * (kd2[q] * inv) + sb2;
            let naive = (q1 * q2 - c.sqr()).pos();
            out.d[e] = if naive.hi > 1e-2 * q1.hi * q2.hi {
                naive
            } else {
                let det = avg_det(pl, k1, k2, k, o, pp, qq) * inv.sqr();
                (sw2.sqr() * det + sw2 * sb2 * dbar.pos()).pos()
            };
        }
    }
    out
}

/// det(Σ_δ C_δ) for the 2×2 pixel-pair covariances C_δ = [[a, c], [c, b]] entering one conv
/// output pair, without cancellation (the f64 path's identity, in DD): with w_δ = (√a, s√b),
/// s = sign c, and e_δ = D_δ/(√(ab) + |c|) (= √(ab) − |c| exactly), Σ C_δ = W Wᵀ −
/// (Σ s e)(E₁₂ + E₂₁), so `det = Σ_{δ<δ'} (w_δ × w_δ')² + E (2 c_w − E)` with
/// c_w = Σ s√(ab), E = Σ s e.
#[inline(always)]
fn avg_det(
    pl: &DdPlanes,
    k1: &[Dd],
    k2: &[Dd],
    k: usize,
    o: usize,
    p: (usize, usize),
    q: (usize, usize),
) -> Dd {
    let p2 = pl.p2();
    let mut ws: Vec<(Dd, Dd)> = Vec::with_capacity(k * k);
    let (mut cw, mut ee) = (Dd::ZERO, Dd::ZERO);
    for di in 0..k {
        for dj in 0..k {
            let i1 = at(p.0 + di, p.1 + dj, pl.h1, pl.w1, o);
            let i2 = at(q.0 + di, q.1 + dj, pl.h2, pl.w2, o);
            let (a, b, c, d) = match (i1, i2) {
                (Some(i1), Some(i2)) => {
                    let e = i1 * p2 + i2;
                    (k1[i1], k2[i2], pl.c[e], pl.d[e])
                }
                (Some(i1), None) => (k1[i1], Dd::ZERO, Dd::ZERO, Dd::ZERO),
                (None, Some(i2)) => (Dd::ZERO, k2[i2], Dd::ZERO, Dd::ZERO),
                (None, None) => continue,
            };
            let neg = c.hi < 0.0;
            let r = (a * b).sqrt();
            let den = r + c.abs();
            let ed = if den.hi > 0.0 { d / den } else { Dd::ZERO };
            let (sb, sr, se) = if neg {
                (-b.sqrt(), -r, -ed)
            } else {
                (b.sqrt(), r, ed)
            };
            ws.push((a.sqrt(), sb));
            cw = cw + sr;
            ee = ee + se;
        }
    }
    let mut det = Dd::ZERO;
    for i in 0..ws.len() {
        for j in i + 1..ws.len() {
            det = det + (ws[i].0 * ws[j].1 - ws[j].0 * ws[i].1).sqr();
        }
    }
    (det + ee * (cw.mul_f64(2.0) - ee)).pos()
}

/// The activation's dual on every pixel pair ([`super::kernel::dual`]): Σ' = T_φ, Θ' = Ṫ_φ Θ,
/// and D, Δ of the pair's image. A zero variance forces k12 = 0, as in the f64 path.
#[inline(always)]
fn activation(spec: &Spec, a: Activation, mut pl: DdPlanes, k1: &[Dd], k2: &[Dd]) -> DdPlanes {
    let cx = Consts::for_act(spec.sigma_w, spec.sigma_b, a);
    let per =
        |k: &[Dd]| -> Vec<(Dd, Dd)> { k.iter().map(|&q| (diag_t(&cx, a, q), q.sqrt())).collect() };
    let (t1s, t2s) = (per(k1), per(k2));
    let p2 = pl.p2();
    for (p, &q1) in k1.iter().enumerate() {
        for (q, &q2) in k2.iter().enumerate() {
            let e = p * p2 + q;
            let zero = q1.is_zero() || q2.is_zero();
            let st = State {
                q1,
                q2,
                c: if zero { Dd::ZERO } else { pl.c[e] },
                d: if zero { Dd::ZERO } else { pl.d[e] },
                delta: pl.dl[e],
            };
            let (t12, tdot, td, tdl) = dual(&cx, a, &st, t1s[p].0, t2s[q].0, t1s[p].1 * t2s[q].1);
            pl.c[e] = t12;
            pl.th[e] = tdot * pl.th[e];
            pl.d[e] = td;
            pl.dl[e] = tdl;
        }
    }
    pl
}

/// Average pooling (window = stride = K): the mean over all cross pairs of the two windows.
fn pool(pl: &DdPlanes, k: usize) -> DdPlanes {
    let (ho1, wo1, ho2, wo2) = (pl.h1 / k, pl.w1 / k, pl.h2 / k, pl.w2 / k);
    let p2 = pl.p2();
    let po2 = ho2 * wo2;
    let k4 = Dd::from_f64((k * k * k * k) as f64);
    let mut out = DdPlanes::zeros(ho1, wo1, ho2, wo2, pl.n_in);
    for p in 0..ho1 * wo1 {
        let (i1, j1) = (p / wo1, p % wo1);
        for q in 0..po2 {
            let (i2, j2) = (q / wo2, q % wo2);
            let (mut sc, mut st) = (Dd::ZERO, Dd::ZERO);
            for a in 0..k * k {
                let u = (i1 * k + a / k) * pl.w1 + j1 * k + a % k;
                for b in 0..k * k {
                    let v = u * p2 + (i2 * k + b / k) * pl.w2 + j2 * k + b % k;
                    sc = sc + pl.c[v];
                    st = st + pl.th[v];
                }
            }
            out.c[p * po2 + q] = sc / k4;
            out.th[p * po2 + q] = st / k4;
        }
    }
    out
}

/// GAP (`diag = false`: mean over all pixel pairs) or flatten (`true`: mean over equal
/// positions; a following layer has fan-in P·n).
fn reduce(pl: &DdPlanes, diag: bool) -> DdPlanes {
    let (p1, p2) = (pl.h1 * pl.w1, pl.p2());
    let sum = |v: &[Dd], idx: &mut dyn Iterator<Item = usize>| idx.fold(Dd::ZERO, |a, i| a + v[i]);
    let (c, th, n_in) = if diag {
        let m = p1.min(p2);
        let md = Dd::from_f64(m as f64);
        (
            sum(&pl.c, &mut (0..m).map(|p| p * p2 + p)) / md,
            sum(&pl.th, &mut (0..m).map(|p| p * p2 + p)) / md,
            pl.n_in * m as f64,
        )
    } else {
        let m = Dd::from_f64((p1 * p2) as f64);
        (
            sum(&pl.c, &mut (0..p1 * p2)) / m,
            sum(&pl.th, &mut (0..p1 * p2)) / m,
            pl.n_in,
        )
    };
    let mut out = DdPlanes::zeros(1, 1, 1, 1, n_in);
    out.c[0] = c;
    out.th[0] = th;
    out
}

/// After avgpool / gap / flatten: D = k11 k22 − k12² and Δ = k11 + k22 − 2k12 of every pixel
/// pair from the variances of the new layer (naive, in DD).
pub(crate) fn refresh_naive(pl: &mut DdPlanes, k1: &[Dd], k2: &[Dd]) {
    let p2 = pl.p2();
    for (p, &a) in k1.iter().enumerate() {
        for (q, &b) in k2.iter().enumerate() {
            let e = p * p2 + q;
            let c = pl.c[e];
            pl.d[e] = (a * b - c.sqr()).pos();
            pl.dl[e] = (a + b - c.mul_f64(2.0)).pos();
        }
    }
}
