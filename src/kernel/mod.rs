//! Infinite-width NNGP and NTK kernels of deep fully-connected networks (MATH.md §1).
//!
//! Recursion (NTK parameterization), for inputs x, x' ∈ R^d:
//!
//! ```text
//! Σ¹ = σ_w² x·x'/d + σ_b²,                Θ¹ = Σ¹
//! Σ^{h+1} = σ_w² T_φ(Σ^h) + σ_b²,         Θ^{h+1} = Σ^{h+1} + σ_w² Ṫ_φ(Σ^h) Θ^h
//! ```
//!
//! NNGP = Σ^{L+1}, NTK = Θ^{L+1}. Standard parameterization (neural-tangents' definition):
//! Σ is the same, `Θ¹ = x·x' + [bias]`, `Θ^{h+1} = n_h T_φ(Σ^h) + [bias] + σ_w² Ṫ_φ(Σ^h) Θ^h`,
//! where `[bias]` is 1 whenever the layer has a bias (even with σ_b = 0) and n_h is the width.
//!
//! Accuracy: the pair state carries `D = k11 k22 − k12²` and `Δ = k11 + k22 − 2k12` exactly
//! (see [`activation::Activation::dual`]); at the first layer they are recomputed from
//! `x − x'` and a re-orthogonalised residual ([`wedge2`]) whenever the Gram-matrix difference
//! would cancel.
//!
//! Cost: the lower block triangle of one M×M×d product (our own register-blocked tile product,
//! `kernel/gram_tile.rs`, every entry an ascending FMA chain) plus O(M² L) elementwise work, run per
//! 192×192 tile in SIMD batches ([`batch`]); both with run-time AVX-512/AVX2 dispatch and the
//! same bits as the portable path, parallel over tiles with rayon; every entry is computed by
//! the same code whatever the thread count.

//! Files by role: [`pair`] (the one-pair recursion), `gram` (the Gram drivers: fused
//! symmetric tiles, row blocks, per layer), [`batch`] (the SIMD pair batches), `gram_tile`
//! (the Gram product), [`output`] (result types), and this file, the public API (validation and
//! entry points). SIMD level and streaming stores: [`crate::simd`]. Convolutional kernels:
//! [`conv`] (public API, Gram driver), `spec` (architectures), `plane` (the per-pair plane
//! recursion) and `strip` (the same recursion by row-displacement strips, for conv/activation
//! stacks before a GAP).

pub mod activation;
pub mod arch;
#[doc(hidden)]
pub mod batch;
pub mod conv;
mod gram;
mod gram_tile;
pub mod output;
pub mod pair;
mod plane;
pub mod spec;
mod strip;

pub use activation::{Activation, Diag, Dual, PairState};
pub use arch::{Arch, Parameterization};
#[doc(hidden)]
pub use gram::bench_gram_tiles;
pub use output::{KernelKind, Kernels};
pub use pair::{diag_chain, recurse_pair, wedge2, TINY_INPUT};
pub use spec::{Layer, Normalization, Padding, Spec};

use crate::error::{ensure_finite, Error, Result};
use gram::{compute, gram_sym, mirror_lower, Want};
use ndarray::{Array2, ArrayView2, Axis};
use output::ensure_finite_output;
use pair::row_norms2;
use rayon::prelude::*;
use std::ops::Range;

/// NNGP and NTK of one pair of inputs (slices of equal length d ≥ 1).
///
/// ```
/// use gbml_testbed::kernel::{pair, Activation, Arch};
/// // One hidden ReLU layer, σ_w = 1, no bias, x = x' = e₁ (d = 1): Σ¹ = 1, Σ² = 1/2,
/// // Θ² = Σ² + Ṫ Θ¹ = 1/2 + 1/2 = 1.
/// let (nngp, ntk) = pair(&Arch::new(1, Activation::Relu), &[1.0], &[1.0]).unwrap();
/// assert_eq!((nngp, ntk), (0.5, 1.0));
/// ```
pub fn pair(arch: &Arch, x: &[f64], y: &[f64]) -> Result<(f64, f64)> {
    let x1 = ArrayView2::from_shape((1, x.len()), x).map_err(|e| Error::shape("pair", "1×d", e))?;
    let x2 = ArrayView2::from_shape((1, y.len()), y).map_err(|e| Error::shape("pair", "1×d", e))?;
    let k = kernels(arch, x1, Some(x2))?;
    Ok((k.nngp[[0, 0]], k.ntk[[0, 0]]))
}

/// Whether every entry is finite: a vectorizable fold (no early exit, no index bookkeeping);
/// [`ensure_finite`] then locates the first bad entry for the error message.
fn all_finite(x: &ArrayView2<f64>) -> bool {
    x.axis_chunks_iter(Axis(0), 64)
        .into_par_iter()
        .all(|c| match c.as_slice_memory_order() {
            Some(v) => v.iter().fold(true, |a, t| a & t.is_finite()),
            None => c.iter().fold(true, |a, t| a & t.is_finite()),
        })
}

/// Architecture, shapes, finiteness and range of the inputs. One pass over each input: its
/// row norms ‖x_j‖² are finite iff every entry is finite or an entry is so large that its
/// square overflows; only then is the input scanned again, to report the first non-finite
/// entry or the range error.
fn validate_inputs(arch: &Arch, x1: &ArrayView2<f64>, x2: Option<&ArrayView2<f64>>) -> Result<()> {
    arch.validate()?;
    if x1.ncols() == 0 {
        return Err(Error::Empty("inputs have dimension d = 0".into()));
    }
    if let Some(x2) = x2 {
        if x2.ncols() != x1.ncols() {
            return Err(Error::shape(
                "kernel inputs X1, X2",
                format!("d = {}", x1.ncols()),
                format!("d = {}", x2.ncols()),
            ));
        }
    }
    let mut n2max = 0.0f64;
    let inputs = [Some(x1.view()), x2.map(|x| x.view())];
    for (x, name) in inputs.iter().zip(["kernel input X1", "kernel input X2"]) {
        let Some(x) = x else { continue };
        let norms = row_norms2(x.view());
        if !norms.iter().fold(true, |a, v| a & v.is_finite()) {
            if !all_finite(x) {
                ensure_finite(x.view(), name)?;
            }
            n2max = f64::INFINITY;
        }
        n2max = norms.iter().fold(n2max, |a, &v| a.max(v));
    }
    check_range(arch, x1.ncols(), n2max)
}

/// Largest layer variance the recursion accepts. Pair products such as k11·k22 must stay below
/// f64::MAX ≈ 1.8e308, so every variance Σ^h(x, x) must stay below ~1e154; the guard keeps a
/// margin for the NTK's growth with depth.
pub const MAX_VARIANCE: f64 = 1e150;

/// Reject inputs whose layer variances would overflow the pair products (inputs with
/// ‖x‖ ≳ 1e75·√d): a typed error instead of an infinite or silently wrong kernel. The
/// diagonal chain Σ^h(x, x) is monotone in ‖x‖, so the largest-norm input bounds every layer.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(x <= max)` also rejects NaN
fn check_range(arch: &Arch, dim: usize, n2: f64) -> Result<()> {
    let d = dim as f64;
    let sw2 = arch.sigma_w * arch.sigma_w;
    let q1 = sw2 * n2 / d + arch.sigma_b2();
    let sb2 = arch.sigma_b2();
    let chain_max = diag_chain(arch, q1)
        .iter()
        .map(|dg| sw2 * dg.t + sb2)
        .fold(q1, f64::max);
    if !(chain_max <= MAX_VARIANCE) {
        return Err(Error::param(
            "inputs",
            format!("max ‖x‖² = {n2:.3e} (d = {dim})"),
            format!(
                "layer variances reach {chain_max:.3e} > {MAX_VARIANCE:.0e}: kernel products would overflow f64; \
                 rescale the inputs (bias-free ReLU kernels are positively homogeneous)"
            ),
        ));
    }
    Ok(())
}

/// NNGP and NTK Gram matrices between the rows of X1 and X2 (`None`: X1 with itself, exactly
/// symmetric; only the lower triangle is computed).
pub fn kernels<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Kernels> {
    kernels_want(arch, x1, x2, Want::Both)
}

/// [`kernels`] materialising only the matrices in `want` (the other is 0×0).
fn kernels_want<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
    want: Want,
) -> Result<Kernels> {
    validate_inputs(arch, &x1, x2.as_ref())?;
    let k = match x2 {
        None => {
            let (k, finite) = gram_sym(arch, x1, want);
            if finite {
                return Ok(k);
            }
            k
        }
        Some(x2v) => compute(arch, x1, x2v, false, 0..x1.nrows(), false, false, want).0,
    };
    ensure_finite_output(&k)?;
    Ok(k)
}

/// Rows `rows` of the symmetric Gram matrices K(X, X): a bit-exact slice of
/// [`kernels`]`(X, None)`, so a large Gram matrix can be computed by independent jobs and
/// stitched back (the Gram product is exactly symmetric by construction, and every pair is
/// evaluated in canonical order).
pub fn kernels_rows(arch: &Arch, x: ArrayView2<f64>, rows: Range<usize>) -> Result<Kernels> {
    validate_inputs(arch, &x, None)?;
    check_rows(&rows, x.nrows())?;
    let (k, _) = compute(arch, x, x, true, rows, false, false, Want::Both);
    ensure_finite_output(&k)?;
    Ok(k)
}

/// Rows `rows` of K(X1, X2) (`None`: X1 with itself): a bit-exact slice of [`kernels`] in both
/// cases.
pub fn kernels_rows_between<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
    rows: Range<usize>,
) -> Result<Kernels> {
    match x2 {
        None => kernels_rows(arch, x1, rows),
        Some(x2) => {
            validate_inputs(arch, &x1, Some(&x2))?;
            check_rows(&rows, x1.nrows())?;
            let k = compute(arch, x1, x2, false, rows, false, false, Want::Both).0;
            ensure_finite_output(&k)?;
            Ok(k)
        }
    }
}

/// Per-layer values: `result[h-1]` holds (Σ^h, Θ^h) for h = 1..=L+1 (the last is NNGP/NTK).
pub fn kernels_per_layer<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Vec<Kernels>> {
    validate_inputs(arch, &x1, x2.as_ref())?;
    let sym = x2.is_none();
    let x2v = x2.unwrap_or(x1);
    let (_, mut layers) = compute(arch, x1, x2v, sym, 0..x1.nrows(), true, sym, Want::Both);
    if sym {
        for k in &mut layers {
            mirror_lower(&mut k.nngp);
            mirror_lower(&mut k.ntk);
        }
    }
    for k in &layers {
        ensure_finite_output(k)?;
    }
    Ok(layers)
}

/// NTK Gram matrix Θ(X1, X2).
pub fn ntk<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Array2<f64>> {
    Ok(kernels_want(arch, x1, x2, Want::Ntk)?.ntk)
}

/// NNGP Gram matrix Σ(X1, X2).
pub fn nngp<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Array2<f64>> {
    Ok(kernels_want(arch, x1, x2, Want::Nngp)?.nngp)
}

/// A row range `a..b` of an n-row input: `a ≤ b ≤ n`, else the typed error.
pub(crate) fn check_rows(rows: &Range<usize>, n: usize) -> Result<()> {
    if rows.start > rows.end || rows.end > n {
        return Err(Error::param(
            "rows",
            format!("{}..{}", rows.start, rows.end),
            format!("must lie within 0..{n}"),
        ));
    }
    Ok(())
}
