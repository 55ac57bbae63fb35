//! Public entry points of the convolutional kernels (CNTK / CNN-GP with neural-tangents'
//! `stax` definitions, MATH.md §10) on NHWC inputs X ∈ R^{M×H×W×C}. The layer recursion is in
//! [`super::plane`] (formulas in its module docs), the architecture in [`super::spec`]; the
//! layers before a GAP, if they are `conv, activation` pairs, run on `super::strip` (the same
//! bits, a working set of one row-displacement strip instead of whole planes).
//!
//! Every pair (i, j) is computed by the same sequential code from the two images and their own
//! runs (per-pixel variances per layer), pairs in parallel with rayon; in the symmetric case the
//! pair is ordered canonically, so K is exactly symmetric and [`kernels_rows`] is a bit-exact
//! slice of [`kernels`] for any row range, tile and thread count. Memory: the outputs plus
//! O(threads · P²) plane scratch (O(threads · H W²) strip rings on the strip engine), never
//! O(M² P²).

use super::activation::Activation;
use super::output::{ensure_finite_output, Kernels};
use super::plane::{self, Planes, SelfDiags};
use super::spec::{Layer, Spec};
use super::strip;
use crate::error::{ensure_finite, Error, Result};
use ndarray::{Array2, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;
use std::ops::Range;

/// NNGP and NTK Gram matrices between the images of X1 and X2 (`None`: X1 with itself,
/// exactly symmetric).
///
/// ```
/// use gbml_testbed::kernel::{conv, Spec};
/// use ndarray::Array4;
/// let spec = Spec::parse("conv:3:same,relu,gap,dense").unwrap().with_sigma_w(1.5);
/// let x = Array4::from_shape_fn((2, 4, 4, 1), |(m, i, j, _)| (m + i * 4 + j) as f64 / 10.0);
/// let k = conv::kernels(&spec, x.view(), None).unwrap();
/// assert_eq!(k.ntk.dim(), (2, 2));
/// assert_eq!(k.ntk[[0, 1]], k.ntk[[1, 0]]);
/// ```
pub fn kernels<'a>(
    spec: &Spec,
    x1: ArrayView4<'a, f64>,
    x2: Option<ArrayView4<'a, f64>>,
) -> Result<Kernels> {
    kernels_rows(spec, x1, x2, 0..x1.dim().0)
}

/// Rows `rows` of [`kernels`]: a bit-exact slice of the full matrices (for `--rows` sharding).
pub fn kernels_rows<'a>(
    spec: &Spec,
    x1: ArrayView4<'a, f64>,
    x2: Option<ArrayView4<'a, f64>>,
    rows: Range<usize>,
) -> Result<Kernels> {
    validate(spec, &x1, x2.as_ref())?;
    let m1 = x1.dim().0;
    super::check_rows(&rows, m1)?;
    if let Some(arch) = spec.as_fc().filter(|_| x1.dim().1 == 1 && x1.dim().2 == 1) {
        // The FC special case: the FC kernels on the flattened 1×1 images (same bits).
        let flat = |x: ArrayView4<f64>| {
            let (m, _, _, c) = x.dim();
            x.to_shape((m, c)).map(|a| a.to_owned())
        };
        let f1 = flat(x1).map_err(|e| Error::shape("conv input", "M×1×1×C", e))?;
        let f2 = match x2 {
            Some(x) => Some(flat(x).map_err(|e| Error::shape("conv input", "M×1×1×C", e))?),
            None => None,
        };
        return super::kernels_rows_between(&arch, f1.view(), f2.as_ref().map(|a| a.view()), rows);
    }
    let sym = x2.is_none();
    let x2v = x2.unwrap_or(x1);
    let (d1, own): (Vec<Own>, Vec<(f64, f64)>) = x1
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|x| self_run(spec, x))
        .unzip();
    let d2: Vec<Own> = if sym {
        Vec::new()
    } else {
        x2v.axis_iter(Axis(0))
            .into_par_iter()
            .map(|x| self_run(spec, x).0)
            .collect()
    };
    let d2r = if sym { &d1 } else { &d2 };
    let n = x2v.dim().0;
    let m = rows.len();
    let mut nngp = Array2::<f64>::zeros((m, n));
    let mut ntk = Array2::<f64>::zeros((m, n));
    // Each unordered pair once (canonical order in the symmetric case), then scattered.
    let (r0, r1) = (rows.start, rows.end);
    let pairs: Vec<(usize, usize)> = (0..m)
        .flat_map(|li| {
            let i = r0 + li;
            (0..n).filter_map(move |j| {
                let (a, b) = if sym && j < i { (j, i) } else { (i, j) };
                (!sym || (a, b) == (i, j) || !(r0..r1).contains(&j)).then_some((a, b))
            })
        })
        .collect();
    let vals: Vec<(f64, f64)> = pairs
        .par_iter()
        .with_max_len(1)
        .map(|&(a, b)| {
            if sym && a == b {
                // The self pair is the image's own run (same code, same inputs): its result.
                return own[a];
            }
            let xa = x1.index_axis(Axis(0), a);
            let xb = x2v.index_axis(Axis(0), b);
            pair_run(spec, xa, xb, (&d1[a], &d2r[b]), sym && a == b)
        })
        .collect();
    for (&(a, b), &(s, t)) in pairs.iter().zip(&vals) {
        for (i, j) in [(a, b), (b, a)] {
            if rows.contains(&i) && (i, j) == (a, b) || sym && rows.contains(&i) {
                nngp[[i - rows.start, j]] = s;
                ntk[[i - rows.start, j]] = t;
            }
        }
    }
    let k = Kernels { nngp, ntk };
    ensure_finite_output(&k)?;
    Ok(k)
}

/// Shapes, finiteness and range of the inputs and the architecture.
fn validate<'a>(
    spec: &Spec,
    x1: &ArrayView4<'a, f64>,
    x2: Option<&ArrayView4<'a, f64>>,
) -> Result<()> {
    spec.validate()?;
    let (_, h, w, c) = x1.dim();
    if h == 0 || w == 0 || c == 0 {
        return Err(Error::Empty(format!(
            "conv input images of shape {h}×{w}×{c}"
        )));
    }
    if let Some(x2) = x2 {
        let (_, h2, w2, c2) = x2.dim();
        if (h2, w2, c2) != (h, w, c) {
            return Err(Error::shape(
                "conv kernel inputs X1, X2 (M, H, W, C)",
                format!("H×W×C = {h}×{w}×{c}"),
                format!("{h2}×{w2}×{c2}"),
            ));
        }
    }
    spec.shapes(h, w)?;
    let mut n2max = 0.0f64;
    for (x, name) in [(Some(x1), "conv input X1"), (x2, "conv input X2")] {
        let Some(x) = x else { continue };
        if !x.iter().all(|v| v.is_finite()) {
            let flat = x
                .to_shape((x.len(), 1))
                .map_err(|e| Error::shape(name, "4-D", e))?;
            ensure_finite(flat.view(), name)?;
        }
        n2max = x.iter().fold(n2max, |a, v| a.max(v * v));
    }
    check_range(spec, n2max)
}

/// Reject inputs whose layer variances would overflow the pixel-pair products: the largest
/// per-pixel variance is bounded by C·max x² / C through every conv (averages) and grows
/// through the activations like their diagonal duals.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn check_range(spec: &Spec, x2max: f64) -> Result<()> {
    let sw2 = spec.sigma_w * spec.sigma_w;
    let sb2 = spec.sigma_b.map_or(0.0, |b| b * b);
    let mut q = x2max;
    let mut worst = q;
    for l in &spec.layers {
        match l {
            Layer::Conv { .. } | Layer::Dense => q = sw2 * q + sb2,
            Layer::Act(a) => q = a.diag(q).t.abs().max(q),
            _ => {}
        }
        worst = worst.max(q);
    }
    if !(worst <= super::MAX_VARIANCE) {
        return Err(Error::param(
            "inputs",
            format!("max x² = {x2max:.3e}"),
            format!("layer variances reach {worst:.3e}: kernel products would overflow f64; rescale the inputs"),
        ));
    }
    Ok(())
}

/// What an image's own run leaves for its pairs: the per-pixel variances before every layer
/// and after the last, and on the strip engine its per-layer [`strip::Side`]s.
struct Own {
    diags: SelfDiags,
    sides: Vec<strip::Side>,
}

/// One image's own run: the per-pixel variances Σ(x, x)[p, p] before every layer and after
/// the last (`diags[l]`, l = 0..=L), and its (NNGP, NTK) with itself — bit for bit what
/// [`pair_run`] of the image with itself gives (the same calls on the same inputs: there
/// `dx[l + 1]` is this run's `pl.diag()`), so the Gram diagonal is not computed twice.
fn self_run(spec: &Spec, x: ArrayView3<f64>) -> (Own, (f64, f64)) {
    let mut sides = Vec::new();
    let (mut pl, mut diags, mut l) = match strip_gap(spec) {
        Some(g) => {
            let s = strip::run(spec, g, x, x, None);
            let (mut pl, mut diags) = (s.gap, s.diags);
            sides = s.sides;
            let nd = pl.diag();
            plane::refresh_naive(&mut pl, &nd, &nd, true);
            diags.push(nd);
            (pl, diags, g + 1)
        }
        None => {
            let pl = plane::input(spec, x, x, true);
            let diags = vec![pl.diag()];
            (pl, diags, 0)
        }
    };
    let nl = spec.layers.len();
    while l < nl {
        let k = diags[l].clone();
        let layer = &spec.layers[l];
        if let Some((a, gap)) = fused_act(spec, l) {
            let f = plane::conv_act(spec, layer, a, gap, pl, (&k, &k));
            pl = f.pl;
            diags.push(f.conv_var);
            diags.push(f.act_var);
            l += 2;
            if gap {
                let nd = pl.diag();
                plane::refresh_naive(&mut pl, &nd, &nd, true);
                diags.push(nd);
                l += 1;
            }
            continue;
        }
        pl = plane::layer(spec, layer, l + 1 == nl, pl, &k, &k);
        let nd = pl.diag();
        if needs_refresh(layer) {
            plane::refresh_naive(&mut pl, &nd, &nd, true);
        }
        diags.push(nd);
        l += 1;
    }
    let out = (pl.c[0], pl.th[0]);
    pl.recycle();
    (Own { diags, sides }, out)
}

/// The GAP index if the strip engine ([`strip`]) runs the layers before it: an architecture it
/// admits ([`strip::gap_prefix`]) and the engine not forced to the planes
/// (`GBML_CONV_ENGINE=planes`, or [`force_planes`]; the same bits either way).
fn strip_gap(spec: &Spec) -> Option<usize> {
    use std::sync::atomic::Ordering;
    static ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let env = *ENV.get_or_init(|| {
        std::env::var("GBML_CONV_ENGINE").is_ok_and(|v| v.eq_ignore_ascii_case("planes"))
    });
    if env || FORCE_PLANES.load(Ordering::Relaxed) {
        return None;
    }
    strip::gap_prefix(spec)
}

/// Whether [`kernels`] runs the layers of `spec` before its GAP on the strip engine (test
/// hook: the engines are compared only where this holds).
#[doc(hidden)]
pub fn uses_strips(spec: &Spec) -> bool {
    strip_gap(spec).is_some()
}

static FORCE_PLANES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Test/benchmark hook: `true` runs every later conv kernel of this process on the plane
/// engine alone (`kernel::plane`), `false` restores the strip engine where it applies. The
/// results are the same bits either way (`tests/conv_strip.rs` checks that).
#[doc(hidden)]
pub fn force_planes(on: bool) {
    FORCE_PLANES.store(on, std::sync::atomic::Ordering::SeqCst);
}

fn needs_refresh(l: &Layer) -> bool {
    matches!(l, Layer::AvgPool { .. } | Layer::Gap | Layer::Flatten)
}

/// The activation after layer `l` if `l` is a conv or a non-final dense layer followed by an
/// activation, and whether a GAP follows that: they run fused ([`plane::conv_act`], same
/// bits as one after the other).
fn fused_act(spec: &Spec, l: usize) -> Option<(Activation, bool)> {
    match (&spec.layers[l], spec.layers.get(l + 1)) {
        (Layer::Conv { .. } | Layer::Dense, Some(&Layer::Act(a))) => {
            Some((a, spec.layers.get(l + 2) == Some(&Layer::Gap)))
        }
        _ => None,
    }
}

/// (NNGP, NTK) of one pair of images from their own runs' variances.
fn pair_run(
    spec: &Spec,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    (ox, oy): (&Own, &Own),
    same: bool,
) -> (f64, f64) {
    let (dx, dy) = (&ox.diags, &oy.diags);
    let lazy = !same
        && spec
            .layers
            .first()
            .is_some_and(|l| plane::conv_lazy_ok(l, x.dim().2));
    let (mut pl, mut l): (Planes, usize) = match strip_gap(spec) {
        Some(g) => {
            let mut pl = strip::run(spec, g, x, y, Some((&ox.sides, &oy.sides))).gap;
            plane::refresh_naive(&mut pl, &dx[g + 1], &dy[g + 1], true);
            (pl, g + 1)
        }
        None if lazy => (plane::input_lazy(x, y), 0),
        None => (plane::input(spec, x, y, same), 0),
    };
    let nl = spec.layers.len();
    while l < nl {
        let layer = &spec.layers[l];
        if let Some((a, gap)) = fused_act(spec, l) {
            pl = plane::conv_act(spec, layer, a, gap, pl, (&dx[l], &dy[l])).pl;
            l += 2;
            if gap {
                plane::refresh_naive(&mut pl, &dx[l + 1], &dy[l + 1], true);
                l += 1;
            }
            continue;
        }
        pl = plane::layer(spec, layer, l + 1 == nl, pl, &dx[l], &dy[l]);
        if needs_refresh(layer) {
            plane::refresh_naive(&mut pl, &dx[l + 1], &dy[l + 1], true);
        }
        l += 1;
    }
    let out = (pl.c[0], pl.th[0]);
    pl.recycle();
    out
}

/// Fuzz-target body `conv_inputs` (`fuzz/fuzz_targets/conv_inputs.rs`, replayed by
/// `tests/fuzz_conv_replay.rs`): bytes → a layer spec (text up to the first `\n`), scales,
/// shapes (M ≤ 3, H, W ≤ 6, C ≤ 2) and pixel values (raw f64 bits, so NaN/Inf/subnormal/huge
/// all occur). Invariants: never a panic; `Ok` only with finite, exactly symmetric matrices,
/// a non-negative NNGP diagonal, and row slices that are bit-exact slices.
#[doc(hidden)]
pub fn fuzz_conv_inputs(data: &[u8]) {
    let cut = data
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(data.len().min(80));
    let text = String::from_utf8_lossy(&data[..cut]).into_owned();
    let rest = data.get(cut + 1..).unwrap_or(&[]);
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0) as usize;
    let Ok(spec) = Spec::parse(&text) else { return };
    let spec = spec
        .with_sigma_w(0.25 + byte(0) as f64 / 64.0)
        .with_sigma_b((byte(1) % 2 == 1).then(|| byte(1) as f64 / 256.0));
    let spec = if byte(2) % 4 == 3 {
        spec.with_standard(1 + byte(2) / 4)
    } else {
        spec
    };
    let (m, h, w, c) = (
        1 + byte(3) % 3,
        1 + byte(4) % 6,
        1 + byte(5) % 6,
        1 + byte(6) % 2,
    );
    let vals = rest.get(7..).unwrap_or(&[]);
    let x = ndarray::Array4::from_shape_fn((m, h, w, c), |(a, i, j, k)| {
        let idx = ((a * h + i) * w + j) * c + k;
        let mut b = [0u8; 8];
        for (t, bt) in b.iter_mut().enumerate() {
            *bt = vals
                .get((idx * 8 + t) % vals.len().max(1))
                .copied()
                .unwrap_or(0);
        }
        let v = f64::from_le_bytes(b);
        if vals.len() < 64 {
            (v.to_bits() % 17) as f64 / 8.0 - 1.0
        } else {
            v
        }
    });
    let Ok(k) = kernels(&spec, x.view(), None) else {
        return;
    };
    for i in 0..m {
        assert!(k.nngp[[i, i]] >= 0.0, "negative NNGP diagonal");
        for j in 0..m {
            assert!(k.ntk[[i, j]].is_finite() && k.nngp[[i, j]].is_finite());
            assert_eq!(
                k.ntk[[i, j]].to_bits(),
                k.ntk[[j, i]].to_bits(),
                "asymmetric"
            );
        }
    }
    let r = kernels_rows(&spec, x.view(), None, m / 2..m).expect("rows of a valid input");
    assert_eq!(
        r.ntk,
        k.ntk.slice(ndarray::s![m / 2..m, ..]),
        "row slice bits"
    );
}
