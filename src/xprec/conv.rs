//! Convolutional NNGP / NTK Gram matrices in double-double (issue #13 item 2): the same
//! architectures, inputs and semantics as [`crate::kernel::conv`] (NHWC images, the layer words
//! of [`crate::kernel::Spec`], both parameterizations, Arora's normalization), every plane entry
//! a [`Dd`] (recursion in [`super::conv_plane`]), rounded to f64 once at the end.
//!
//! A fully-connected spec on 1×1 images goes through [`super::kernel`] (the FC extended path),
//! as the f64 conv path goes through the FC kernels.
//!
//! Accuracy: ≥ 15 digits on every entry of the 18 cases of `fixtures/conv` against 50-digit
//! mpmath, including average pooling followed by an activation on scaled images, where the f64
//! path has 9 digits (`tests/xprec_conv.rs`). Cost: a reference path. The planes are P² DD
//! entries per pair (P pixels) and every conv output entry re-reads its K² offsets with bounds
//! checks; measured in `docs/notes/convx.md` (small images: milliseconds per pair; 28×28 with
//! three 3×3 convs: seconds per pair).

use super::conv_plane::{self as plane, DdPlanes};
use super::dd::Dd;
use super::kernel::{kernels_dd as fc_kernels_dd, DdKernels};
use crate::error::{ensure_finite, Result};
use crate::kernel::{self, Kernels, Layer, Spec};
use ndarray::{s, Array2, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

/// NNGP and NTK Gram matrices between the images of X1 and X2 (`None`: X1 with itself,
/// exactly symmetric), every entry computed in double-double and rounded to f64.
///
/// ```
/// use gbml_testbed::kernel::Spec;
/// use gbml_testbed::xprec;
/// use ndarray::Array4;
/// let spec = Spec::parse("conv:3:same,relu,gap,dense").unwrap().with_sigma_w(1.5);
/// let x = Array4::from_shape_fn((2, 4, 4, 1), |(m, i, j, _)| (m + i * 4 + j) as f64 / 10.0);
/// let k = xprec::conv_kernels(&spec, x.view(), None).unwrap();
/// assert_eq!(k.ntk[[0, 1]], k.ntk[[1, 0]]);
/// ```
pub fn kernels<'a>(
    spec: &Spec,
    x1: ArrayView4<'a, f64>,
    x2: Option<ArrayView4<'a, f64>>,
) -> Result<Kernels> {
    Ok(kernels_dd(spec, x1, x2)?.to_f64())
}

/// [`kernels`] without the final rounding.
pub fn kernels_dd<'a>(
    spec: &Spec,
    x1: ArrayView4<'a, f64>,
    x2: Option<ArrayView4<'a, f64>>,
) -> Result<DdKernels> {
    validate(spec, x1, x2)?;
    if let Some(arch) = spec.as_fc().filter(|_| x1.dim().1 == 1 && x1.dim().2 == 1) {
        let flat = |x: ArrayView4<f64>| {
            let (m, _, _, c) = x.dim();
            Array2::from_shape_fn((m, c), |(i, k)| x[[i, 0, 0, k]])
        };
        let f2 = x2.map(flat);
        return fc_kernels_dd(&arch, flat(x1).view(), f2.as_ref().map(|a| a.view()));
    }
    let sym = x2.is_none();
    let x2v = x2.unwrap_or(x1);
    let own = |x: ArrayView4<f64>| -> Vec<Vec<Vec<Dd>>> {
        x.axis_iter(Axis(0))
            .into_par_iter()
            .map(|im| self_run(spec, im))
            .collect()
    };
    let d1 = own(x1);
    let d2 = if sym { Vec::new() } else { own(x2v) };
    let d2r = if sym { &d1 } else { &d2 };
    let (m, n) = (x1.dim().0, x2v.dim().0);
    let pairs: Vec<(usize, usize)> = (0..m)
        .flat_map(|i| (if sym { i } else { 0 }..n).map(move |j| (i, j)))
        .collect();
    let vals: Vec<(Dd, Dd)> = pairs
        .par_iter()
        .with_max_len(1)
        .map(|&(i, j)| {
            let (xa, xb) = (x1.index_axis(Axis(0), i), x2v.index_axis(Axis(0), j));
            pair_run(spec, xa, xb, &d1[i], &d2r[j], sym && i == j)
        })
        .collect();
    let mut nngp = Array2::from_elem((m, n), Dd::ZERO);
    let mut ntk = Array2::from_elem((m, n), Dd::ZERO);
    for (&(i, j), &(sv, tv)) in pairs.iter().zip(&vals) {
        nngp[[i, j]] = sv;
        ntk[[i, j]] = tv;
        if sym {
            nngp[[j, i]] = sv;
            ntk[[j, i]] = tv;
        }
    }
    ensure_finite(
        nngp.mapv(|v| v.hi).view(),
        "extended conv NNGP output (overflow)",
    )?;
    ensure_finite(
        ntk.mapv(|v| v.hi).view(),
        "extended conv NTK output (overflow)",
    )?;
    Ok(DdKernels { nngp, ntk })
}

/// The f64 path's own checks (architecture, shapes, finiteness, variance range): finiteness of
/// every pixel, the rest on the image holding the largest |pixel| of each set (the range check
/// depends only on that), so both paths reject the same inputs.
fn validate(spec: &Spec, x1: ArrayView4<f64>, x2: Option<ArrayView4<f64>>) -> Result<()> {
    ensure_finite(x1, "conv input X1")?;
    if let Some(x2) = x2 {
        ensure_finite(x2, "conv input X2")?;
    }
    let biggest = |x: ArrayView4<'_, f64>| {
        let m = x.dim().0;
        let k = (0..m)
            .max_by(|&a, &b| {
                let mx = |i| x.index_axis(Axis(0), i).fold(0.0f64, |s, v| s.max(v.abs()));
                mx(a).total_cmp(&mx(b))
            })
            .unwrap_or(0);
        x.slice(s![k..(k + 1).min(m), .., .., ..]).to_owned()
    };
    let b1 = biggest(x1);
    let b2 = x2.map(biggest);
    kernel::conv::kernels(spec, b1.view(), b2.as_ref().map(|b| b.view()))?;
    Ok(())
}

/// The own runs' per-layer variances of x and y (`None` in a self run).
type OwnDiags<'a> = (&'a [Vec<Dd>], &'a [Vec<Dd>]);

/// Layers after which D and Δ are recomputed from the new variances.
fn needs_refresh(l: &Layer) -> bool {
    matches!(l, Layer::AvgPool { .. } | Layer::Gap | Layer::Flatten)
}

/// One image's own run: its per-pixel variances before every layer and after the last.
fn self_run(spec: &Spec, x: ArrayView3<f64>) -> Vec<Vec<Dd>> {
    run(spec, x, x, None, true).1
}

/// (NNGP, NTK) of one pair of images from their own runs' variances.
fn pair_run(
    spec: &Spec,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    dx: &[Vec<Dd>],
    dy: &[Vec<Dd>],
    same: bool,
) -> (Dd, Dd) {
    run(spec, x, y, Some((dx, dy)), same).0
}

/// The recursion of one pair; `own = None`: a self run, whose variances are its own diagonal
/// (returned per layer). Compiled for AVX2 + FMA when the CPU has them (FMA is exactly rounded
/// either way: the same bits; without it every DD `mul_add` is a libm call).
fn run(
    spec: &Spec,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    own: Option<OwnDiags>,
    same: bool,
) -> ((Dd, Dd), Vec<Vec<Dd>>) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx2_allowed() && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { run_fma(spec, x, y, own, same) };
        }
    }
    run_generic(spec, x, y, own, same)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_fma(
    spec: &Spec,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    own: Option<OwnDiags>,
    same: bool,
) -> ((Dd, Dd), Vec<Vec<Dd>>) {
    run_generic(spec, x, y, own, same)
}

#[inline(always)]
fn run_generic(
    spec: &Spec,
    x: ArrayView3<f64>,
    y: ArrayView3<f64>,
    own: Option<OwnDiags>,
    same: bool,
) -> ((Dd, Dd), Vec<Vec<Dd>>) {
    let mut pl: DdPlanes = plane::input(spec, x, y, same);
    let mut diags = Vec::new();
    if own.is_none() {
        diags.push(pl.diag());
    }
    let nl = spec.layers.len();
    for (l, layer) in spec.layers.iter().enumerate() {
        let (k1, k2) = match own {
            Some((dx, dy)) => (&dx[l], &dy[l]),
            None => (&diags[l], &diags[l]),
        };
        pl = plane::layer(spec, layer, l + 1 == nl, pl, k1, k2);
        if own.is_none() {
            diags.push(pl.diag());
        }
        if needs_refresh(layer) {
            let (n1, n2) = match own {
                Some((dx, dy)) => (&dx[l + 1], &dy[l + 1]),
                None => (&diags[l + 1], &diags[l + 1]),
            };
            plane::refresh_naive(&mut pl, n1, n2);
        }
    }
    ((pl.c[0], pl.th[0]), diags)
}
