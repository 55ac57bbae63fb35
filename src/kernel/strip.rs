//! The displacement-strip engine of the convolutional kernels (MATH.md §10): for architectures
//! whose layers before a GAP are `conv, activation` pairs (convs that keep y's grid — SAME or
//! K = 1, K ≤ 8 — or dense layers), the same entries as [`super::plane`]'s recursion, bit for
//! bit, with a working set of one strip instead of whole P₁×P₂ planes.
//!
//! ```text
//! conv:        S'[(i₁,j₁),(i₂,j₂)] = Σ_δ S[(i₁+di−o, j₁+dj−o), (i₂+di−o, j₂+dj−o)] …   (same δ on both sides)
//! activation:  S'[p,q] = T(k11[p], S[p,q], k22[q])                                     (per entry)
//! ⇒ every entry of every layer depends only on entries with the same row displacement
//!    r = i₁ − i₂ ("strip r": the W×W blocks (i₁, i₁ − r), i₁ ∈ [max(0, r), min(H, H + r)))
//! ```
//!
//! So a strip runs through all layers on its own: block by block in a wavefront (layer t
//! computes its block as soon as the input blocks it reads exist), each layer's input in a
//! ring of K blocks, ≈ 0.4 MB in all for 28×28 images and 3 layers — in L2, where the plane
//! engine streams four 4.9 MB planes per layer through memory. The GAP folds the last layer's
//! blocks into block sums and adds those up in the fixed order of [`super::plane::ZERO`], which
//! the plane engine follows too. A self pair (x = y) runs the strips r ≥ 0 only: the GAP of a
//! self pair sums its upper blocks as the mirror of its lower ones (`plane::GapAcc`'s
//! convention, both engines), so its strips r < 0 are never read.
//!
//! Blocks carry zero padding — L = max o blocks and rows before, R = max (K − 1 − o) after,
//! and max(L, R) columns shared by consecutive rows — so a K×K shifted sum is K whole-block
//! adds (the column sums over di) and K shifted adds within the block (the row sums over dj)
//! with no edge cases. Adding a padded +0 leaves a sum that started from +0 unchanged (such a
//! sum is never −0), so every entry gets the plane engine's additions in the plane engine's
//! order; the conv formulas, SAME's one-sided Δ, the exact determinant where D cancels and the
//! activation are the plane engine's lane functions, run over whole blocks. Same bits as the
//! plane engine (`tests/conv_strip.rs`), hence on every SIMD path, row tile and thread count.

// Index loops over several blocks at once (rows j₁ address the block and x's variances).
#![allow(clippy::needless_range_loop)]

use super::activation::{Activation, Diag, ReluConsts};
use super::plane::{
    act_rows_generic, avg_det, conv_diag, conv_lanes, fold_block, gap_planes, gap_totals,
    input_div, input_row, interior, mirror_sum, pixels, relu_consts, sum_terms, ActCx, ConvConsts,
    ConvGeom, OneSided, Planes, SelfDiags, MAX_K, ZERO,
};
use super::spec::{Layer, Padding, Spec};
use crate::simd::{level, Level};
use ndarray::ArrayView3;
use std::cell::RefCell;

/// The index of the GAP if the layers before it are `conv, activation` pairs the strip engine
/// runs (a conv that keeps y's grid with K ≤ 8, or a dense layer; then an activation).
pub(crate) fn gap_prefix(spec: &Spec) -> Option<usize> {
    let g = spec.layers.iter().position(|l| *l == Layer::Gap)?;
    if g == 0 || g % 2 == 1 {
        return None;
    }
    let ok = spec.layers[..g].chunks(2).all(|pair| {
        let conv = match pair[0] {
            Layer::Conv { k, padding } => (padding == Padding::Same || k == 1) && k <= MAX_K,
            Layer::Dense => true,
            _ => false,
        };
        conv && matches!(pair[1], Layer::Act(_))
    });
    ok.then_some(g)
}

/// What [`run`] returns: the 1×1 planes after the GAP, and for a self run the per-pixel
/// variances before every layer up to the GAP (index = layer, as [`SelfDiags`]) and the
/// image's [`Side`] of every strip layer.
pub(crate) struct StripOut {
    pub gap: Planes,
    pub diags: SelfDiags,
    pub sides: Vec<Side>,
}

/// The layers `0..gap` (see [`gap_prefix`]) and the GAP on the pair (x, y): `sides = Some((sx,
/// sy))` with the images' [`Side`]s from their own runs, or `None` for an image with itself
/// (x = y, whose variances and sides this run computes: the strip r = 0 goes first through
/// every layer).
pub(crate) fn run(
    spec: &Spec,
    gap: usize,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    sides: Option<(&[Side], &[Side])>,
) -> StripOut {
    let (h, w, ch) = x.dim();
    let lay = Layout::new(spec, gap, h, w);
    let (xf, nx) = pixels(x);
    let (yf, ny) = pixels(y);
    let div = input_div(spec, ch);
    let img = Images {
        x: (&xf, &nx),
        y: (&yf, &ny),
        ch,
        div,
        same: sides.is_none(),
    };
    let nt = gap / 2;
    let mut work = Work::new(&lay);
    // Block sums of the GAP per pair of pixel rows (i₁, i₂).
    let mut sums = vec![(ZERO, ZERO); h * h];
    let mut out = StripOut {
        gap: Planes::default(),
        diags: Vec::new(),
        sides: Vec::new(),
    };
    let first_strip = match sides {
        Some(_) => 0,
        None => {
            own_strip0((spec, nt), &lay, &img, (&mut work, &mut sums), &mut out);
            1
        }
    };
    let (sx, sy) = sides.unwrap_or((&out.sides, &out.sides));
    let cxs: Vec<LayerCx> = sx.iter().zip(sy).map(|(a, b)| LayerCx::new(a, b)).collect();
    // The other strips: all layers at once, block by block (a wavefront), on rings of K blocks.
    let mut rings: Vec<Ring> = cxs
        .iter()
        .map(|cx| Ring::new(&lay, cx.g.k))
        .chain(std::iter::once(Ring::new(&lay, 1)))
        .collect();
    // A self pair's strips r < 0 are the mirror of its strips r > 0 (`GapAcc`'s convention).
    let own = img.same;
    let strips = std::iter::once(0).chain((1..h as isize).flat_map(|r| [r, -r]));
    for r in strips.skip(first_strip).filter(|&r| !own || r > 0) {
        wavefront(&lay, &img, &cxs, (&mut rings, &mut work), r, &mut sums);
    }
    out.gap = gap_planes(gap_totals(&sums), h * w * h * w, spec.width as f64);
    out
}

/// Strip 0 of an image with itself, layer by layer on whole-strip rings: layer t + 1's
/// variances are the diagonal of layer t's output, which lies in this strip, so the image's
/// [`Side`] of layer t + 1 exists only after layer t has run here. Fills `out.diags` and
/// `out.sides`, and the GAP's block sums of the strip.
fn own_strip0(
    (spec, nt): (&Spec, usize),
    lay: &Layout,
    img: &Images,
    (work, sums): (&mut Work, &mut [(f64, f64)]),
    out: &mut StripOut,
) {
    out.diags
        .push(img.x.1.iter().map(|&n| n / img.div).collect());
    let mut rings: Vec<Ring> = (0..=nt).map(|_| Ring::new(lay, lay.nb())).collect();
    let n = lay.rows(0).len();
    for b in 0..n {
        rings[0].input(lay, img, 0, b);
    }
    for t in 0..nt {
        let n_in = if t == 0 {
            img.ch as f64
        } else {
            spec.width as f64
        };
        let pair = &spec.layers[2 * t..2 * t + 2];
        let side = Side::new(spec, lay, pair, n_in, out.diags[2 * t].clone());
        let cx = LayerCx::new(&side, &side);
        let (src, dst) = rings.split_at_mut(t + 1);
        for b in 0..n {
            let stage = (t == 0, t + 1 == nt);
            work.block(lay, &cx, (&src[t], &mut dst[0]), 0, b, stage);
        }
        out.diags.push(side.q.clone());
        out.diags.push(rings[t + 1].diag(lay));
        out.sides.push(side);
    }
    for b in 0..n {
        rings[nt].block_sums(lay, (0, b), true, sums);
    }
}

/// (K, o) of a strip layer's conv (a dense layer: K = 1).
fn conv_ko(l: &Layer) -> (usize, usize) {
    match *l {
        Layer::Conv {
            k,
            padding: Padding::Same,
        } => (k, (k - 1) / 2),
        _ => (1, 0),
    }
}

/// Strip r through every layer in one pass over its blocks: at step s the input block s is
/// formed and layer t computes its block s − lag_t (lag_t = Σ_{u ≤ t} (K_u − 1 − o_u), the
/// furthest input block it reads having just been made), so each layer's input lives in a ring
/// of K_t blocks; blocks past the strip's end are zero (padding). The last layer's blocks go
/// straight into the GAP's block sums.
fn wavefront(
    lay: &Layout,
    img: &Images,
    cxs: &[LayerCx],
    (rings, work): (&mut [Ring], &mut Work),
    r: isize,
    sums: &mut [(f64, f64)],
) {
    let n = lay.rows(r).len() as isize;
    for ring in rings.iter_mut() {
        ring.clear_leading(lay);
    }
    let reach = |t: usize| (cxs[t].g.k - 1 - cxs[t].g.o) as isize;
    let nt = cxs.len();
    let lag: Vec<isize> = (0..nt)
        .scan(0, |acc, t| {
            *acc += reach(t);
            Some(*acc)
        })
        .collect();
    for s in 0..n + lag[nt - 1] {
        if s < n {
            rings[0].input(lay, img, r, s as usize);
        } else if s < n + reach(0) {
            rings[0].zero(lay, s);
        }
        for t in 0..nt {
            let b = s - lag[t];
            // Layer t + 1 reads this layer's blocks up to its own block + its reach.
            let next_reach = if t + 1 < nt { reach(t + 1) } else { 0 };
            if b < 0 || b >= n + next_reach {
                continue;
            }
            let (src, dst) = rings.split_at_mut(t + 1);
            if b < n {
                let stage = (t == 0, t + 1 == nt);
                work.block(lay, &cxs[t], (&src[t], &mut dst[0]), r, b as usize, stage);
            } else {
                dst[0].zero(lay, b);
            }
            if t + 1 == nt && b < n {
                rings[nt].block_sums(lay, (r, b as usize), img.same, sums);
            }
        }
    }
}

/// The two images' pixels (P×C rows and squared norms), the input divisor, and whether they
/// are the same image.
struct Images<'a> {
    x: (&'a [f64], &'a [f64]),
    y: (&'a [f64], &'a [f64]),
    ch: usize,
    div: f64,
    same: bool,
}

/// The padded block geometry: images H×W; blocks of W + L + R rows (x's column j₁,
/// padded) by `wp` = W + max(L, R) columns (y's column j₂: the padding columns after one row
/// are also the ones before the next, which is all a shift by at most L left or R right reads
/// from a valid entry), entry (j₁, j₂) at `(l + j₁)·wp + l + j₂`; a strip of up to H + L + R
/// blocks.
struct Layout {
    h: usize,
    w: usize,
    l: usize,
    r: usize,
    wp: usize,
}

impl Layout {
    fn new(spec: &Spec, gap: usize, h: usize, w: usize) -> Self {
        let (mut l, mut r) = (0, 0);
        for layer in spec.layers[..gap].iter().step_by(2) {
            let (k, o) = conv_ko(layer);
            l = l.max(o);
            r = r.max(k - 1 - o);
        }
        Layout {
            h,
            w,
            l,
            r,
            wp: w + l.max(r),
        }
    }
    /// Entries of one block (W + L + R rows).
    fn bs(&self) -> usize {
        (self.w + self.l + self.r) * self.wp
    }
    /// Blocks of the longest strip, padding included.
    fn nb(&self) -> usize {
        self.h + self.l + self.r
    }
    /// The rows i₁ of x in strip r.
    fn rows(&self, r: isize) -> std::ops::Range<usize> {
        let h = self.h as isize;
        (r.max(0) as usize)..((h + r).min(h) as usize)
    }
    /// Offset of valid row j₁ of a block.
    fn row(&self, j1: usize) -> usize {
        (self.l + j1) * self.wp
    }
}

/// One image's constants of one `conv, activation` pair, for either role in a pair: the
/// layer's geometry and conv constants; the image's variances before (k) and after (q) the
/// conv; as x, the one-sided sums of its interior pixels; as y, its q rows padded (pads 1),
/// their Diags and square roots, the one-sided tables and per row its border pixels' columns
/// and classes. Computed once per image ([`run`] of the image with itself) and shared by all
/// its pairs.
pub(crate) struct Side {
    g: ConvGeom,
    cc: ConvConsts,
    act: Activation,
    k: Vec<f64>,
    q: Vec<f64>,
    /// Per pixel p: [`OneSided::interior_sums`] (zeros for border pixels), flat.
    psums: Vec<f64>,
    qp: Vec<Vec<f64>>,
    dp: Vec<Vec<Diag>>,
    sqp: Vec<Vec<f64>>,
    os: Option<OneSided>,
    border: Vec<Vec<(usize, usize)>>,
}

impl Side {
    fn new(spec: &Spec, lay: &Layout, pair: &[Layer], n_in: f64, k_in: Vec<f64>) -> Self {
        let (k, padding) = match pair[0] {
            Layer::Conv { k, padding } => (k, padding),
            _ => (1, Padding::Valid),
        };
        let Layer::Act(act) = pair[1] else {
            unreachable!("gap_prefix admits conv, activation pairs only")
        };
        let (h, w) = (lay.h, lay.w);
        let grid = Planes {
            h1: h,
            w1: w,
            h2: h,
            w2: w,
            ..Default::default()
        };
        let g = ConvGeom::new(&grid, k, padding);
        let cc = ConvConsts::new(spec, n_in, k);
        let q = cc.variances(&conv_diag(&k_in, (h, w), (k, g.o), (h, w), true));
        let pad = |row: &[f64]| {
            let mut v = vec![1.0; lay.wp];
            v[lay.l..lay.l + w].copy_from_slice(row);
            v
        };
        let qp: Vec<Vec<f64>> = q.chunks(w).map(pad).collect();
        let dp: Vec<Vec<Diag>> = qp
            .iter()
            .map(|r| r.iter().map(|&q| act.diag(q)).collect())
            .collect();
        let sqp = dp
            .iter()
            .map(|r| r.iter().map(|d| d.sq).collect())
            .collect();
        let os = (padding == Padding::Same && k > 1).then(|| OneSided::new(&g, &k_in));
        let is_in = |p: usize| interior(&g, p / w, p % w, h, w);
        let psums = match &os {
            Some(os) => (0..h * w)
                .flat_map(|p| match is_in(p) {
                    true => os.interior_sums(&g, (p / w, p % w), &k_in),
                    false => vec![0.0; os.classes()],
                })
                .collect(),
            None => Vec::new(),
        };
        let border = (0..h)
            .map(|i2| match &os {
                Some(os) => (0..w)
                    .filter_map(|j2| os.class_of(i2 * w + j2).map(|cl| (j2, cl)))
                    .collect(),
                None => Vec::new(),
            })
            .collect();
        Side {
            g,
            cc,
            act,
            k: k_in,
            q,
            psums,
            qp,
            dp,
            sqp,
            os,
            border,
        }
    }
}

/// A layer's constants for the pair (x, y): x's and y's [`Side`]s of it.
#[derive(Clone, Copy)]
struct LayerCx<'a> {
    g: &'a ConvGeom,
    cc: &'a ConvConsts,
    act: Activation,
    relu: ReluConsts,
    k1: &'a [f64],
    k2: &'a [f64],
    q1: &'a [f64],
    q2p: &'a [Vec<f64>],
    d2p: &'a [Vec<Diag>],
    sq2p: &'a [Vec<f64>],
    os: Option<&'a OneSided>,
    psums: &'a [f64],
    border2: &'a [Vec<(usize, usize)>],
}

impl<'a> LayerCx<'a> {
    fn new(x: &'a Side, y: &'a Side) -> Self {
        LayerCx {
            g: &x.g,
            cc: &x.cc,
            act: x.act,
            relu: relu_consts(x.act),
            k1: &x.k,
            k2: &y.k,
            q1: &x.q,
            q2p: &y.qp,
            d2p: &y.dp,
            sq2p: &y.sqp,
            os: y.os.as_ref(),
            psums: &x.psums,
            border2: &y.border,
        }
    }
}

/// One layer's input or output on a strip: the four planes (Σ, Θ, D, Δ) of `slots` blocks, block
/// b (0 = x's first row in the strip; −L.. are the leading padding) in slot (b + L) mod
/// `slots`. Invariant: every entry outside the valid rows and columns of the valid blocks
/// held is +0 (the padding), but D's padding columns (D is read at valid entries only) and
/// the padding columns of the last layer's output ring (read at valid entries only).
struct Ring {
    planes: [Vec<f64>; 4],
    slots: usize,
}

const C: usize = 0;
const TH: usize = 1;
const D: usize = 2;
const DL: usize = 3;

impl Ring {
    fn new(lay: &Layout, slots: usize) -> Self {
        Ring {
            planes: std::array::from_fn(|_| vec![0.0; slots * lay.bs()]),
            slots,
        }
    }

    /// The offset of block b (b ≥ −L).
    fn off(&self, lay: &Layout, b: isize) -> usize {
        ((b + lay.l as isize) as usize % self.slots) * lay.bs()
    }

    /// Zero the leading padding blocks −L..−1 (their slots may hold an earlier strip's
    /// blocks; with K slots per ring they are not reused before the layer has read them).
    fn clear_leading(&mut self, lay: &Layout) {
        for b in -(lay.l as isize)..0 {
            self.zero(lay, b);
        }
    }

    /// Block b is padding (before or past the strip's ends).
    fn zero(&mut self, lay: &Layout, b: isize) {
        let o = self.off(lay, b);
        for pl in self.planes.iter_mut() {
            pl[o..o + lay.bs()].fill(0.0);
        }
    }

    /// The input planes of block b of strip r ([`input_row`] on each row; Θ⁰ = +0 is not
    /// stored: the first layer does not read it).
    fn input(&mut self, lay: &Layout, img: &Images, r: isize, b: usize) {
        let (w, ch) = (lay.w, img.ch);
        let i1 = lay.rows(r).start + b;
        let i2 = (i1 as isize - r) as usize;
        let base = self.off(lay, b as isize);
        let yrow = (
            &img.y.0[i2 * w * ch..(i2 + 1) * w * ch],
            &img.y.1[i2 * w..(i2 + 1) * w],
        );
        let [c, _, d, dl] = &mut self.planes;
        for j1 in 0..w {
            let p = i1 * w + j1;
            let e = base + lay.row(j1) + lay.l;
            let diag = (img.same && r == 0).then_some(j1);
            input_row(
                (&img.x.0[p * ch..(p + 1) * ch], img.x.1[p]),
                yrow,
                ch,
                img.div,
                diag,
                (&mut c[e..e + w], &mut d[e..e + w], &mut dl[e..e + w]),
            );
        }
    }

    /// The diagonal entries Σ[p, p] of strip 0 (a whole-strip ring).
    fn diag(&self, lay: &Layout) -> Vec<f64> {
        let (w, l) = (lay.w, lay.l);
        (0..lay.h * w)
            .map(|p| {
                let (i, j) = (p / w, p % w);
                self.planes[C][self.off(lay, i as isize) + lay.row(j) + l + j]
            })
            .collect()
    }

    /// The GAP's block sums of Σ and Θ of block b of strip r (entries (j₁, j₂) ascending),
    /// into `sums[i₁·H + i₂]`; for a self pair (`own`) and r > 0 also the mirrored block's
    /// ([`mirror_sum`]) into `sums[i₂·H + i₁]`.
    fn block_sums(&self, lay: &Layout, (r, b): (isize, usize), own: bool, sums: &mut [(f64, f64)]) {
        let (w, l) = (lay.w, lay.l);
        let i1 = lay.rows(r).start + b;
        let i2 = (i1 as isize - r) as usize;
        let base = self.off(lay, b as isize);
        let mut s = (ZERO, ZERO);
        for j1 in 0..w {
            let e = base + lay.row(j1) + l;
            s = fold_block(s, &self.planes[C][e..e + w], &self.planes[TH][e..e + w]);
        }
        sums[i1 * lay.h + i2] = s;
        if own && r > 0 {
            let at = |(a, b): (usize, usize)| {
                let e = base + lay.row(b) + l + a;
                (self.planes[C][e], self.planes[TH][e])
            };
            sums[i2 * lay.h + i1] = mirror_sum(w, at);
        }
    }
}

/// The per-block scratch: the column sums `v` (with a margin of one block row on either side),
/// the shifted sums of Σ and Θ (`a`, `at`), the conv's variance products, and the scratch of
/// the activation and of [`avg_det`].
struct Work {
    v: Vec<f64>,
    a: Vec<f64>,
    at: Vec<f64>,
    scratch: RefCell<Vec<f64>>,
    ws: Vec<(f64, f64)>,
    /// Per entry of the valid rows: the variance products of [`conv_block`].
    prod: [Vec<f64>; 2],
}

impl Work {
    fn new(lay: &Layout) -> Self {
        let n = lay.row(lay.w) - lay.row(0);
        Work {
            v: vec![0.0; lay.bs() + 2 * lay.wp],
            a: vec![0.0; lay.bs()],
            at: vec![0.0; lay.bs()],
            scratch: RefCell::default(),
            ws: Vec::new(),
            prod: [vec![0.0; n], vec![0.0; n]],
        }
    }

    /// Output block b (rows i₁ of x, i₂ = i₁ − r of y) of one `conv, activation` pair from
    /// the input ring `src` into the output ring `dst`: the shifted sums, the conv formulas,
    /// the one-sided Δ, the exact D where it cancels, the activation, the padding. `first`: Θ
    /// of the input is +0 and not summed; `last`: only Σ and Θ of the output are used (by the
    /// GAP), so Δ' is formed only where an exact D needs it ([`Work::dl_at`]) and the output's
    /// D and Δ are left unspecified.
    fn block(
        &mut self,
        lay: &Layout,
        cx: &LayerCx,
        (src, dst): (&Ring, &mut Ring),
        r: isize,
        b: usize,
        (first, last): (bool, bool),
    ) {
        let (bs, wp, w) = (lay.bs(), lay.wp, lay.w);
        let lo = lay.rows(r).start;
        let (i1, i2) = (lo + b, (lo + b) as isize - r);
        let i2 = i2 as usize;
        let o = dst.off(lay, b as isize);
        let out = o..o + bs;
        let valid = lay.row(0)..lay.row(w);
        self.shifted(lay, cx, src, (C, b), None);
        if first {
            self.at[valid.clone()].fill(0.0);
        } else {
            self.shifted(lay, cx, src, (TH, b), None);
        }
        let [c, th, d, dl] = &mut dst.planes;
        let (c, th) = (&mut c[out.clone()], &mut th[out.clone()]);
        let (d, dl) = (&mut d[out.clone()], &mut dl[out]);
        if !last {
            self.shifted(lay, cx, src, (DL, b), Some(&mut dl[valid.clone()]));
        }
        let q1 = &cx.q1[i1 * w..(i1 + 1) * w];
        let rowcx = BlockRows {
            cc: cx.cc,
            q1,
            q2: &cx.q2p[i2],
            wp,
            valid: valid.clone(),
        };
        let cancel = conv_block(&rowcx, (&self.a, &self.at), (c, th, d, dl), &mut self.prod);
        if let (Some(os), false) = (&cx.os, last) {
            one_sided(lay, cx, os, (i1, i2), dl);
        }
        if cancel {
            let rows = ((i1, i2), (lo, b));
            self.exact_d(lay, cx, src, rows, (d, dl), last);
        }
        let acx = ActCx {
            a: cx.act,
            relu: cx.relu,
            k2: &cx.q2p[i2],
            d2: &cx.d2p[i2],
            sq2: &cx.sq2p[i2],
            scratch: &self.scratch,
            sigma_only: last,
        };
        act_block(&acx, &rowcx, (c, th, d, dl));
        // Restore the padding columns of the valid rows (written by the row passes) where
        // the next layer sums them (D is read at valid entries only; the last layer's output
        // is read at valid entries only).
        if !last {
            for pl in [c, th, dl] {
                zero_pads(pl, lay);
            }
        }
    }

    /// The exact D' ([`avg_det`], [`ConvConsts::exact_d`]) of the pixel pairs of block b (rows
    /// i₁, i₂; the strip's first row `lo`) whose naive D' cancels (D' ≤ 10⁻² q₁ q₂); Δ' from
    /// `dl`, or on the last layer from [`dl_at`].
    fn exact_d(
        &mut self,
        lay: &Layout,
        cx: &LayerCx,
        src: &Ring,
        ((i1, i2), (lo, b)): ((usize, usize), (usize, usize)),
        (d, dl): (&mut [f64], &[f64]),
        last: bool,
    ) {
        let (w, l) = (lay.w, lay.l);
        // x's pixel row ai of this strip is its block ai − lo (y's row is ai − r).
        let cd = |a: usize, bq: usize| {
            let (ai, aj, bj) = (a / w, a % w, bq % w);
            let e = src.off(lay, (ai - lo) as isize) + lay.row(aj) + l + bj;
            (src.planes[C][e], src.planes[D][e])
        };
        let (g, q1) = (cx.g, &cx.q1[i1 * w..(i1 + 1) * w]);
        let q2 = &cx.q2p[i2][l..l + w];
        for j1 in 0..w {
            let t = 1e-2 * q1[j1];
            let row = lay.row(j1) + l;
            // A branch-free test of the row first: most rows have no cancelling pair.
            let dr = &d[row..row + w];
            let ok = dr
                .iter()
                .zip(q2)
                .fold(true, |ok, (&dv, &qv)| ok & (dv > t * qv));
            if ok {
                continue;
            }
            for j2 in 0..w {
                let e = row + j2;
                if d[e] > t * q2[j2] {
                    continue;
                }
                let pq = ((i1, j1), (i2, j2));
                let dims = (lay.h, w, lay.h, w);
                let det = avg_det(&cd, dims, (cx.k1, cx.k2), (g.k, g.o), pq, &mut self.ws);
                let dle = match last {
                    true => dl_at(lay, cx, src, b, pq),
                    false => dl[e],
                };
                d[e] = cx.cc.exact_d(det, dle);
            }
        }
    }

    /// The K×K shifted sum of plane `which` of `src` for output block b: the column sums
    /// `v = Σ_di src[block b + di − o]` (whole padded blocks), then the row sums
    /// `Σ_dj v[e + (dj − o)(wp + 1)]` over the valid rows, into `a` (Σ), `at` (Θ) or `into`
    /// (Δ: the valid rows of the output block). Each sum from +0 over δ ascending.
    fn shifted(
        &mut self,
        lay: &Layout,
        cx: &LayerCx,
        src: &Ring,
        (which, b): (usize, usize),
        into: Option<&mut [f64]>,
    ) {
        let (bs, wp) = (lay.bs(), lay.wp);
        let (k, o) = (cx.g.k, cx.g.o);
        let pl = &src.planes[which];
        let mut terms: [&[f64]; MAX_K] = [&[]; MAX_K];
        for (di, t) in terms.iter_mut().enumerate().take(k) {
            let s = src.off(lay, b as isize + di as isize - o as isize);
            *t = &pl[s..s + bs];
        }
        let v = &mut self.v[wp..wp + bs];
        sum_terms(v, &terms[..k]);
        let rows = lay.row(0)..lay.row(lay.w);
        let n = rows.len();
        let mut rterms: [&[f64]; MAX_K] = [&[]; MAX_K];
        for (dj, t) in rterms.iter_mut().enumerate().take(k) {
            // v's index of entry e + (dj − o)(wp + 1), with v's margin of wp.
            let s = wp + rows.start + dj * (wp + 1) - o * (wp + 1);
            *t = &self.v[s..s + n];
        }
        let dst: &mut [f64] = match (which, into) {
            (C, _) => &mut self.a[rows],
            (TH, _) => &mut self.at[rows],
            (_, Some(out)) => out,
            _ => unreachable!("Δ is summed into the output block"),
        };
        sum_terms(dst, &rterms[..k]);
    }
}

/// Zero the padding columns of a block's valid rows (column by column: strided stores, not
/// one tiny `memset` call per row).
fn zero_pads(pl: &mut [f64], lay: &Layout) {
    let (l, w, wp) = (lay.l, lay.w, lay.wp);
    for col in (0..l).chain(l + w..wp) {
        for j1 in 0..w {
            pl[lay.row(j1) + col] = 0.0;
        }
    }
}

/// Δ' of one pixel pair ((i₁, j₁), (i₂, j₂)) of block b (x's row i₁ at block b of the
/// strip): the K×K shifted sum of the input Δ (column sums over di, then over dj, each from +0
/// with the padding's +0 terms), the conv formula and SAME's one-sided term — the operations
/// [`Work::shifted`], [`conv_lanes`] and [`one_sided`] apply to this entry, in their order.
fn dl_at(
    lay: &Layout,
    cx: &LayerCx,
    src: &Ring,
    b: usize,
    ((i1, j1), (i2, j2)): ((usize, usize), (usize, usize)),
) -> f64 {
    let (wp, w, bs) = (lay.wp, lay.w, lay.bs());
    let (k, o) = (cx.g.k, cx.g.o);
    let e = (lay.row(j1) + lay.l + j2) as isize;
    let mut sum = 0.0;
    for dj in 0..k {
        // The column sum at entry e + (dj − o)(wp + 1): +0 outside the block (v's margin).
        let f = e + (dj as isize - o as isize) * (wp as isize + 1);
        let mut v = 0.0;
        if (0..bs as isize).contains(&f) {
            for di in 0..k {
                let blk = src.off(lay, b as isize + di as isize - o as isize);
                v += src.planes[DL][blk + f as usize];
            }
        }
        sum += v;
    }
    let cc = &cx.cc;
    let mut dl = cc.sw2 * (sum * cc.inv);
    if let Some(os) = &cx.os {
        let (p, q) = (i1 * w + j1, i2 * w + j2);
        let scale = cc.sw2 * cc.inv;
        if interior(cx.g, i1, j1, lay.h, w) {
            let nc = os.classes();
            if let Some(cl) = os.class_of(q) {
                dl += scale * cx.psums[p * nc + cl];
            }
        } else {
            os.border_terms(cx.g, p, q..q + 1, (cx.k1, cx.k2), |_, t| dl += scale * t);
        }
    }
    dl
}

/// SAME's one-sided Δ terms of block (i₁, i₂): `dl += σ_w²/K² · term(p, q)` for the pixel
/// pairs with a border pixel (the plane engine's values: [`OneSided::interior_sums`] of an
/// interior p, [`OneSided::border_terms`] of a border p).
fn one_sided(lay: &Layout, cx: &LayerCx, os: &OneSided, (i1, i2): (usize, usize), dl: &mut [f64]) {
    let (w, l, g) = (lay.w, lay.l, &cx.g);
    let scale = cx.cc.sw2 * cx.cc.inv;
    let ks = (cx.k1, cx.k2);
    for j1 in 0..w {
        let p = i1 * w + j1;
        let row = lay.row(j1) + l;
        if interior(g, i1, j1, lay.h, w) {
            // Only y's border pixels have one-sided offsets: their class's sum.
            let nc = os.classes();
            let sums = &cx.psums[p * nc..(p + 1) * nc];
            for &(j2, cl) in &cx.border2[i2] {
                dl[row + j2] += scale * sums[cl];
            }
        } else {
            let q0 = i2 * w;
            let dl = &mut dl[row..row + w];
            os.border_terms(g, p, q0..q0 + w, ks, |q, v| dl[q - q0] += scale * v);
        }
    }
}

/// The per-row inputs of a block's conv formulas and activation: x's variance per row (q1),
/// y's padded variances (q2), the row stride and the valid rows.
struct BlockRows<'a> {
    cc: &'a ConvConsts,
    q1: &'a [f64],
    q2: &'a [f64],
    wp: usize,
    valid: std::ops::Range<usize>,
}

type Four<'a> = (&'a mut [f64], &'a mut [f64], &'a mut [f64], &'a mut [f64]);

/// The conv formulas ([`conv_lanes`]) on the valid rows of a block as one loop, with the
/// variance products q₁ q₂ and 10⁻² q₁ · q₂ of each entry from `prod` (filled per row first:
/// the same products as per row, the same bits); dispatched once per block on the SIMD level;
/// whether some D may cancel.
fn conv_block(rc: &BlockRows, a: (&[f64], &[f64]), out: Four, prod: &mut [Vec<f64>; 2]) -> bool {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { conv_block_avx512(rc, a, out, prod) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { conv_block_avx2(rc, a, out, prod) },
        _ => conv_block_generic(rc, a, out, prod),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn conv_block_avx512(
    rc: &BlockRows,
    a: (&[f64], &[f64]),
    out: Four,
    prod: &mut [Vec<f64>; 2],
) -> bool {
    conv_block_generic(rc, a, out, prod)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn conv_block_avx2(
    rc: &BlockRows,
    a: (&[f64], &[f64]),
    out: Four,
    prod: &mut [Vec<f64>; 2],
) -> bool {
    conv_block_generic(rc, a, out, prod)
}

#[inline(always)]
fn conv_block_generic(
    rc: &BlockRows,
    (a, at): (&[f64], &[f64]),
    (c, th, d, dl): Four,
    prod: &mut [Vec<f64>; 2],
) -> bool {
    let v = rc.valid.clone();
    let (wp, q2) = (rc.wp, &rc.q2[..rc.wp]);
    let [qq, tq] = prod;
    let (qq, tq) = (&mut qq[..v.len()], &mut tq[..v.len()]);
    for (j1, (qr, tr)) in qq
        .chunks_exact_mut(wp)
        .zip(tq.chunks_exact_mut(wp))
        .enumerate()
    {
        let (q1, t) = (rc.q1[j1], 1e-2 * rc.q1[j1]);
        for q in 0..wp {
            qr[q] = q1 * q2[q];
            tr[q] = t * q2[q];
        }
    }
    let (qq, tq) = (&qq[..], &tq[..]);
    let (a, at) = (&a[v.clone()], &at[v.clone()]);
    let (c, th) = (&mut c[v.clone()], &mut th[v.clone()]);
    conv_lanes(
        rc.cc,
        (qq, tq),
        (a, at),
        c,
        th,
        &mut d[v.clone()],
        &mut dl[v],
    )
}

/// [`act_rows_generic`] on the valid rows of a block, dispatched once per block.
fn act_block(cx: &ActCx, rc: &BlockRows, out: Four) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports the enabled features (checked by `level`).
        Level::Avx512 => unsafe { act_block_avx512(cx, rc, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe { act_block_avx2(cx, rc, out) },
        _ => act_block_generic(cx, rc, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn act_block_avx512(cx: &ActCx, rc: &BlockRows, out: Four) {
    act_block_generic(cx, rc, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn act_block_avx2(cx: &ActCx, rc: &BlockRows, out: Four) {
    act_block_generic(cx, rc, out)
}

#[inline(always)]
fn act_block_generic(cx: &ActCx, rc: &BlockRows, (c, th, d, dl): Four) {
    let v = rc.valid.clone();
    let out = (
        &mut c[v.clone()],
        &mut th[v.clone()],
        &mut d[v.clone()],
        &mut dl[v],
    );
    act_rows_generic(cx, rc.q1, rc.wp, out);
}
