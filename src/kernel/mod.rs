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
//! Cost: one M×M×d product (faer) plus O(M² L) elementwise work, parallel over rows with rayon;
//! every entry is computed by the same sequential code whatever the thread count.

pub mod activation;
pub mod arch;

pub use activation::{Activation, Dual, PairState};
pub use arch::{Arch, Parameterization};

use crate::error::{ensure_finite, Error, Result};
use crate::linalg;
use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use std::ops::Range;

/// Which kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// Σ^{L+1}: the output covariance at initialization (GP prior).
    Nngp,
    /// Θ^{L+1}: the neural tangent kernel.
    Ntk,
}

/// NNGP and NTK Gram matrices.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernels {
    pub nngp: Array2<f64>,
    pub ntk: Array2<f64>,
}

impl Kernels {
    /// The matrix of the given kind.
    pub fn get(&self, kind: KernelKind) -> &Array2<f64> {
        match kind {
            KernelKind::Nngp => &self.nngp,
            KernelKind::Ntk => &self.ntk,
        }
    }
}

/// Scalar first-layer pair state from the inner products (no cancellation handling).
#[inline]
fn first_layer_naive(arch: &Arch, d: f64, n1: f64, n2: f64, g: f64) -> PairState {
    let sw2 = arch.sigma_w * arch.sigma_w;
    let sb2 = arch.sigma_b2();
    let q1 = sw2 * n1 / d + sb2;
    let q2 = sw2 * n2 / d + sb2;
    let c = sw2 * g / d + sb2;
    PairState {
        q1,
        q2,
        c,
        d: (q1 * q2 - c * c).max(0.0),
        delta: (q1 + q2 - 2.0 * c).max(0.0),
    }
}

/// `‖x‖²‖y‖² − (x·y)²` to a few ulps of relative accuracy for ANY angle, in O(d): with
/// μ = x·y/‖x‖², r = y − μx (one fma per entry), one re-orthogonalisation step
/// r ← r − ((x·r)/‖x‖²) x, and the identity ‖x‖²‖y − μx‖² = ‖x‖²‖y‖² − (x·y)² (an error δ in μ
/// only adds δ²‖x‖⁴, second order; after the second step δ = O(dε‖r‖/‖x‖)).
pub fn wedge2(x: ArrayView1<f64>, y: ArrayView1<f64>, nx2: f64, g: f64) -> f64 {
    if nx2 == 0.0 {
        return 0.0;
    }
    let mu = g / nx2;
    let mut r: Vec<f64> = x
        .iter()
        .zip(y.iter())
        .map(|(&a, &b)| (-mu).mul_add(a, b))
        .collect();
    let xr: f64 = x.iter().zip(&r).map(|(a, b)| a * b).sum();
    let dmu = xr / nx2;
    for (ri, &a) in r.iter_mut().zip(x.iter()) {
        *ri = (-dmu).mul_add(a, *ri);
    }
    nx2 * r.iter().map(|v| v * v).sum::<f64>()
}

/// First-layer pair state. When the Gram-entry formulas for D and Δ would cancel (nearly
/// collinear pairs, either direction), recompute them without cancellation:
/// `Δ = σ_w²‖x − x'‖²/d`, `D = (σ_w²/d)² (‖x‖²‖x'‖² − (x·x')²) + (σ_w² σ_b²/d) ‖x − x'‖²`, the
/// wedge term by [`wedge2`]. O(d) per such pair; ordinary pairs never take this path.
/// `same` marks an exact diagonal entry (x and x' are the same row).
#[inline]
fn first_layer(
    arch: &Arch,
    x: ArrayView1<f64>,
    y: ArrayView1<f64>,
    n1: f64,
    n2: f64,
    g: f64,
    same: bool,
) -> PairState {
    let dim = x.len() as f64;
    let mut st = first_layer_naive(arch, dim, n1, n2, g);
    if same {
        st.c = st.q1;
        st.q2 = st.q1;
        st.d = 0.0;
        st.delta = 0.0;
        return st;
    }
    let cancels = st.d <= 1e-2 * st.q1 * st.q2 || st.delta <= 1e-2 * (st.q1 + st.q2);
    if cancels {
        let sw2 = arch.sigma_w * arch.sigma_w;
        let sb2 = arch.sigma_b2();
        let diff2: f64 = x.iter().zip(y.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
        let w2 = if n1 >= n2 {
            wedge2(x, y, n1, g)
        } else {
            wedge2(y, x, n2, g)
        };
        st.d = (sw2 / dim) * (sw2 / dim) * w2 + sw2 * sb2 / dim * diff2;
        st.delta = sw2 * diff2 / dim;
    }
    st
}

/// Run the recursion for one pair from its first-layer state. `g_over` is `x·x'` (for the
/// standard parameterization's Θ¹). Calls `layer(h, Σ^h, Θ^h)` for h = 1..=L+1 and returns
/// (NNGP, NTK) = (Σ^{L+1}, Θ^{L+1}).
#[inline]
pub fn recurse_pair(
    arch: &Arch,
    mut st: PairState,
    g_raw: f64,
    mut layer: impl FnMut(usize, f64, f64),
) -> (f64, f64) {
    let sw2 = arch.sigma_w * arch.sigma_w;
    let sb2 = arch.sigma_b2();
    let bias_one = if arch.sigma_b.is_some() { 1.0 } else { 0.0 };
    let standard = arch.parameterization == Parameterization::Standard;
    let mut theta = if standard { g_raw + bias_one } else { st.c };
    layer(1, st.c, theta);
    for h in 0..arch.depth {
        let du = arch.activation.dual(&st);
        let c_new = sw2 * du.t12 + sb2;
        theta = if standard {
            arch.widths[h] as f64 * du.t12 + bias_one + sw2 * du.tdot * theta
        } else {
            c_new + sw2 * du.tdot * theta
        };
        st = PairState {
            q1: sw2 * du.t1 + sb2,
            q2: sw2 * du.t2 + sb2,
            c: c_new,
            d: sw2 * sw2 * du.td + sw2 * sb2 * du.tdelta,
            delta: sw2 * du.tdelta,
        };
        layer(h + 2, st.c, theta);
    }
    (st.c, theta)
}

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

fn validate_inputs(arch: &Arch, x1: &ArrayView2<f64>, x2: Option<&ArrayView2<f64>>) -> Result<()> {
    arch.validate()?;
    if x1.ncols() == 0 {
        return Err(Error::Empty("inputs have dimension d = 0".into()));
    }
    ensure_finite(x1.view(), "kernel input X1")?;
    if let Some(x2) = x2 {
        if x2.ncols() != x1.ncols() {
            return Err(Error::shape(
                "kernel inputs X1, X2",
                format!("d = {}", x1.ncols()),
                format!("d = {}", x2.ncols()),
            ));
        }
        ensure_finite(x2.view(), "kernel input X2")?;
    }
    Ok(())
}

/// Rows per tile of the Gram product; fixed so that a row block computes the same bits as the
/// full matrix.
const TILE: usize = 64;

/// `X1[rows] · X2ᵀ` computed tile by tile (fixed tiles of [`TILE`] rows, each a sequential faer
/// product over all columns), so that an entry's bits do not depend on which rows were asked for.
fn gram_rows(x1: ArrayView2<f64>, x2: ArrayView2<f64>, rows: Range<usize>) -> Array2<f64> {
    let t0 = rows.start / TILE * TILE;
    let t1 = rows.end.div_ceil(TILE) * TILE;
    let t1 = t1.min(x1.nrows());
    let mut out = Array2::<f64>::zeros((t1 - t0, x2.nrows()));
    out.axis_chunks_iter_mut(Axis(0), TILE)
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut chunk)| {
            let r0 = t0 + k * TILE;
            let xa = x1.slice(s![r0..r0 + chunk.nrows(), ..]);
            let mut cv = chunk.view_mut();
            let cf = linalg::as_faer_mut(&mut cv);
            faer::linalg::matmul::matmul(
                cf,
                faer::Accum::Replace,
                linalg::as_faer(&xa),
                linalg::as_faer(&x2.t()),
                1.0,
                faer::Par::Seq,
            );
        });
    out.slice(s![rows.start - t0..rows.end - t0, ..]).to_owned()
}

/// Core: rows `rows` of the kernel matrices between X1 and X2 (X2 = X1 when `sym`), with an
/// optional per-layer sink.
fn compute(
    arch: &Arch,
    x1: ArrayView2<f64>,
    x2: ArrayView2<f64>,
    sym: bool,
    rows: Range<usize>,
    per_layer: bool,
) -> (Kernels, Vec<Kernels>) {
    let g = gram_rows(x1, x2, rows.clone());
    let n1: Vec<f64> = x1.rows().into_iter().map(|r| r.dot(&r)).collect();
    let n2: Vec<f64> = x2.rows().into_iter().map(|r| r.dot(&r)).collect();
    let m = rows.len();
    let n = x2.nrows();
    let nl = arch.depth + 1;
    let mut nngp = Array2::<f64>::zeros((m, n));
    let mut ntk = Array2::<f64>::zeros((m, n));
    let mut layers: Vec<(Array2<f64>, Array2<f64>)> = if per_layer {
        (0..nl)
            .map(|_| (Array2::zeros((m, n)), Array2::zeros((m, n))))
            .collect()
    } else {
        Vec::new()
    };
    // Each entry (i, j) is computed from its own data only; in the symmetric case the pair is
    // ordered canonically (smaller index first) so K[i, j] and K[j, i] are the same bits.
    let row_results: Vec<(Vec<f64>, Vec<f64>, Vec<Vec<(f64, f64)>>)> = (0..m)
        .into_par_iter()
        .map(|li| {
            let i = rows.start + li;
            let mut rn = vec![0.0; n];
            let mut rt = vec![0.0; n];
            let mut rl = if per_layer {
                vec![vec![(0.0, 0.0); n]; nl]
            } else {
                Vec::new()
            };
            for j in 0..n {
                let (a, b) = if sym && j < i { (j, i) } else { (i, j) };
                // Inner product: for the symmetric lower part use the Gram entry of the
                // canonical pair when available in this block, else the mirrored one
                // (fma-symmetric dot products make them equal; see tests).
                let gij = g[[li, j]];
                let st = first_layer(
                    arch,
                    x1.row(a),
                    x2.row(b),
                    n1[a],
                    if sym { n1[b] } else { n2[b] },
                    gij,
                    sym && a == b,
                );
                let (kn, kt) = recurse_pair(arch, st, gij, |h, s, t| {
                    if per_layer {
                        rl[h - 1][j] = (s, t);
                    }
                });
                rn[j] = kn;
                rt[j] = kt;
            }
            (rn, rt, rl)
        })
        .collect();
    for (li, (rn, rt, rl)) in row_results.into_iter().enumerate() {
        nngp.row_mut(li).assign(&ArrayView1::from(&rn[..]));
        ntk.row_mut(li).assign(&ArrayView1::from(&rt[..]));
        for (h, v) in rl.into_iter().enumerate() {
            for (j, (s, t)) in v.into_iter().enumerate() {
                layers[h].0[[li, j]] = s;
                layers[h].1[[li, j]] = t;
            }
        }
    }
    let layers = layers
        .into_iter()
        .map(|(nngp, ntk)| Kernels { nngp, ntk })
        .collect();
    (Kernels { nngp, ntk }, layers)
}

/// NNGP and NTK Gram matrices between the rows of X1 and X2 (`None`: X1 with itself, exactly
/// symmetric).
pub fn kernels<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Kernels> {
    validate_inputs(arch, &x1, x2.as_ref())?;
    let sym = x2.is_none();
    let x2v = x2.unwrap_or(x1);
    let (mut k, _) = compute(arch, x1, x2v, sym, 0..x1.nrows(), false);
    if sym {
        // Exact symmetry: mirror the lower triangle.
        for mat in [&mut k.nngp, &mut k.ntk] {
            let n = mat.nrows();
            for i in 0..n {
                for j in 0..i {
                    mat[[j, i]] = mat[[i, j]];
                }
            }
        }
    }
    Ok(k)
}

/// Rows `rows` of the symmetric Gram matrices K(X, X): an exact slice of [`kernels`]`(X, None)`,
/// so a large Gram matrix can be computed by independent jobs and stitched back.
pub fn kernels_rows(arch: &Arch, x: ArrayView2<f64>, rows: Range<usize>) -> Result<Kernels> {
    validate_inputs(arch, &x, None)?;
    if rows.start > rows.end || rows.end > x.nrows() {
        return Err(Error::param(
            "rows",
            format!("{}..{}", rows.start, rows.end),
            format!("must lie within 0..{}", x.nrows()),
        ));
    }
    // Entries above the diagonal are mirrored from below in the full matrix; the pair is ordered
    // canonically inside `compute`, so these are the same bits as long as the tiled Gram product
    // is symmetric (checked by the row-block tests).
    let (k, _) = compute(arch, x, x, true, rows, false);
    Ok(k)
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
    let (_, layers) = compute(arch, x1, x2v, sym, 0..x1.nrows(), true);
    Ok(layers)
}

/// NTK Gram matrix Θ(X1, X2).
pub fn ntk<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Array2<f64>> {
    Ok(kernels(arch, x1, x2)?.ntk)
}

/// NNGP Gram matrix Σ(X1, X2).
pub fn nngp<'a>(
    arch: &Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
) -> Result<Array2<f64>> {
    Ok(kernels(arch, x1, x2)?.nngp)
}
