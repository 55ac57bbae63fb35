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

pub mod activation;
pub mod arch;
#[doc(hidden)]
pub mod batch;
mod gram_tile;

pub use activation::{Activation, Diag, Dual, PairState};
pub use arch::{Arch, Parameterization};

use crate::error::{ensure_finite, Error, Result};
use crate::linalg::{self, SharedOut};
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

/// Inputs whose largest |entry| is below this are rescaled by a power of two before the
/// first layer when the kernel is positively homogeneous ([`point_scales`]).
pub const TINY_INPUT: f64 = 7.888609052210118e-31; // 2^-100

/// Scale-free angle state for tiny inputs. The pair state carries `D = k11 k22 − k12²` in
/// absolute units, so for two inputs with ‖x‖·‖y‖ ≲ 1e-154 the product underflows to 0 and a
/// non-parallel pair would be treated as parallel (θ = 0), an inconsistent, indefinite kernel.
/// For the bias-free ReLU family (σ_b² = 0; a standard-parameterization bias of zero variance
/// is allowed) the recursion is positively homogeneous in each input:
/// `Σ^h(αx, βy) = αβ Σ^h(x, y)`, `Ṫ` depends on the angle only. So every input with
/// max|x_l| < [`TINY_INPUT`] is replaced by `x̃ = 2^−e x` (2^e ≤ max|x_l| < 2^(e+1); exact,
/// only scaling up), the pair recursion runs on (x̃, ỹ) with the Gram entry `x̃·ỹ`, and
/// `Σ = s Σ̃`, `Θ = s Θ̃` (NTK parameterization) with the exact pair factor `s = p_x p_y`,
/// `p = 2^e`; in the standard parameterization Θ is carried in absolute units with
/// `Θ¹ = s x̃·ỹ + [bias]` and `n_h s T̃₁₂` per layer. Returns the scaled copy (`None` if no
/// input is rescaled) and `p` per row (1.0 for rows left alone, so ordinary inputs give the
/// same bits as without this step).
pub(crate) fn point_scales(arch: &Arch, x: ArrayView2<f64>) -> (Option<Array2<f64>>, Vec<f64>) {
    let homogeneous = matches!(
        arch.activation,
        Activation::Relu | Activation::AbRelu { .. }
    ) && arch.sigma_b2() == 0.0;
    let mut p = vec![1.0; x.nrows()];
    if !homogeneous {
        return (None, p);
    }
    let mut xs: Option<Array2<f64>> = None;
    for (j, r) in x.rows().into_iter().enumerate() {
        let m = r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if !(m > 0.0 && m < TINY_INPUT) {
            continue;
        }
        // e = floor(log2 m), also for subnormal m.
        let e = if m >= f64::MIN_POSITIVE {
            ((m.to_bits() >> 52) & 0x7ff) as i32 - 1023
        } else {
            (((m * 2f64.powi(64)).to_bits() >> 52) & 0x7ff) as i32 - 1023 - 64
        };
        p[j] = 2f64.powi(e);
        // 2^−e in two exact factors (−e can exceed 1023).
        let (u1, u2) = (2f64.powi((-e).min(1000)), 2f64.powi(-e - (-e).min(1000)));
        let xs = xs.get_or_insert_with(|| x.to_owned());
        xs.row_mut(j).mapv_inplace(|v| v * u1 * u2);
    }
    (xs, p)
}

/// Scalar first-layer pair state from the inner products (no cancellation handling).
#[inline]
fn first_layer_naive(arch: &Arch, d: f64, n1: f64, n2: f64, g: f64) -> PairState {
    let sw2 = arch.sigma_w * arch.sigma_w;
    let sb2 = arch.sigma_b2();
    let q1 = sw2 * n1 / d + sb2;
    let q2 = sw2 * n2 / d + sb2;
    // Cauchy–Schwarz: |k12| ≤ √(k11 k22). A zero variance with a non-zero x·x' only arises when
    // ‖x‖² underflows (x ~ 1e-300); treat such an input as the zero input it rounds to, so the
    // kernel stays a consistent (PSD) function of its inputs.
    let c = if q1 == 0.0 || q2 == 0.0 {
        0.0
    } else {
        sw2 * g / d + sb2
    };
    PairState {
        q1,
        q2,
        c,
        d: activation::pos(q1 * q2 - c * c),
        delta: activation::pos(q1 + q2 - 2.0 * c),
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
        // Project onto the longer vector; ties are broken by the lexicographic order of the
        // entries so that k(x, y) and k(y, x) are the same bits.
        let x_first = match n1.total_cmp(&n2) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => x
                .iter()
                .zip(y.iter())
                .map(|(a, b)| a.total_cmp(b))
                .find(|o| o.is_ne())
                .map_or(true, |o| o.is_gt()),
        };
        let w2 = if x_first {
            wedge2(x, y, n1, g)
        } else {
            wedge2(y, x, n2, g)
        };
        st.d = (sw2 / dim) * (sw2 / dim) * w2 + sw2 * sb2 / dim * diff2;
        st.delta = sw2 * diff2 / dim;
    }
    st
}

/// First-layer state of a rescaled pair ([`point_scales`]) from the scaled rows and their
/// squared norms, with its own Gram entry `x̃·ỹ` (the Gram-tile entry of the unscaled rows may have
/// underflowed), and the absolute `x·y = s x̃·ỹ` for the standard parameterization's Θ¹.
#[inline]
pub(crate) fn scaled_first(
    arch: &Arch,
    xa: ArrayView1<f64>,
    xb: ArrayView1<f64>,
    na: f64,
    nb: f64,
    s: f64,
    same: bool,
) -> (PairState, f64) {
    let g = if same { na } else { xa.dot(&xb) };
    (first_layer(arch, xa, xb, na, nb, g, same), s * g)
}

/// Per-point diagonal chain: `chain[h] = diag(Σ^{h+1}(x, x))` for h = 0..L−1, from the
/// first-layer variance `q1 = σ_w²‖x‖²/d + σ_b²` (the same expressions as the pair recursion,
/// so the bits agree with a pair's own k11).
pub fn diag_chain(arch: &Arch, q1: f64) -> Vec<Diag> {
    let sw2 = arch.sigma_w * arch.sigma_w;
    let sb2 = arch.sigma_b2();
    let mut q = q1;
    (0..arch.depth)
        .map(|_| {
            let dg = arch.activation.diag(q);
            q = sw2 * dg.t + sb2;
            dg
        })
        .collect()
}

/// Run the recursion for one pair from its first-layer state. `g_raw` is `x·x'` (for the
/// standard parameterization's Θ¹). Calls `layer(h, Σ^h, Θ^h)` for h = 1..=L+1 and returns
/// (NNGP, NTK) = (Σ^{L+1}, Θ^{L+1}).
pub fn recurse_pair(
    arch: &Arch,
    st: PairState,
    g_raw: f64,
    layer: impl FnMut(usize, f64, f64),
) -> (f64, f64) {
    let c1 = diag_chain(arch, st.q1);
    let c2 = diag_chain(arch, st.q2);
    recurse_with(arch, st, g_raw, 1.0, &c1, &c2, layer)
}

/// Θ¹: `Σ¹` (NTK parameterization) or `x·x' + [bias]` (standard).
#[inline]
fn theta1(arch: &Arch, st: &PairState, g_raw: f64) -> f64 {
    if arch.parameterization == Parameterization::Standard {
        g_raw + if arch.sigma_b.is_some() { 1.0 } else { 0.0 }
    } else {
        st.c
    }
}

/// One layer h → h+1 of the recursion for one pair (module docs), in place.
/// `s` is the pair's scale factor ([`point_scales`]; 1.0 for unscaled pairs): the state is in
/// scaled units, Θ in absolute units in the standard parameterization.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step(arch: &Arch, h: usize, st: &mut PairState, theta: &mut f64, s: f64, d1: &Diag, d2: &Diag) {
    let sw2 = arch.sigma_w * arch.sigma_w;
    let sb2 = arch.sigma_b2();
    let du = arch.activation.dual_pair(st, d1, d2);
    let c_new = sw2 * du.t12 + sb2;
    *theta = if arch.parameterization == Parameterization::Standard {
        let bias_one = if arch.sigma_b.is_some() { 1.0 } else { 0.0 };
        arch.widths[h] as f64 * du.t12 * s + bias_one + sw2 * du.tdot * *theta
    } else {
        c_new + sw2 * du.tdot * *theta
    };
    *st = PairState {
        q1: sw2 * du.t1 + sb2,
        q2: sw2 * du.t2 + sb2,
        c: c_new,
        d: sw2 * sw2 * du.td + sw2 * sb2 * du.tdelta,
        delta: sw2 * du.tdelta,
    };
}

/// [`recurse_pair`] with the per-point chains ([`diag_chain`]) of both points precomputed, for
/// a pair with scale factor `s` ([`point_scales`]; `g_raw` is then `s x̃·ỹ`): reports
/// absolute values.
#[inline]
fn recurse_with(
    arch: &Arch,
    mut st: PairState,
    g_raw: f64,
    s: f64,
    c1: &[Diag],
    c2: &[Diag],
    mut layer: impl FnMut(usize, f64, f64),
) -> (f64, f64) {
    let std_param = arch.parameterization == Parameterization::Standard;
    let abs_t = |t: f64| if std_param { t } else { t * s };
    let mut theta = theta1(arch, &st, g_raw);
    layer(1, st.c * s, abs_t(theta));
    for h in 0..arch.depth {
        step(arch, h, &mut st, &mut theta, s, &c1[h], &c2[h]);
        layer(h + 2, st.c * s, abs_t(theta));
    }
    (st.c * s, abs_t(theta))
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

/// `‖x_j‖²` of every row (ndarray's `dot`), rows in parallel: the same bits as a serial loop.
pub(crate) fn row_norms2(x: ArrayView2<f64>) -> Vec<f64> {
    let mut v = vec![0.0; x.nrows()];
    v.par_iter_mut()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(o, r)| *o = r.dot(&r));
    v
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

/// Post-condition of every public entry point: a non-finite kernel value is an error, never a
/// silent NaN or infinity.
fn ensure_finite_output(k: &Kernels) -> Result<()> {
    ensure_finite(k.nngp.view(), "NNGP output (overflow)")?;
    ensure_finite(k.ntk.view(), "NTK output (overflow)")
}

/// Rows (and columns) per Gram tile: the unit of parallel work and of the fused recursion
/// (a 192 × 192 tile and its kernel values stay in L2). A multiple of [`gram_tile::NR`].
const TILE: usize = 192;

/// `X1[rows] · X2ᵀ`, computed by [`gram_tile`] in tiles of [`TILE`] rows and columns, in
/// parallel. Every entry is the ascending FMA chain of its two rows, so its bits do not
/// depend on which rows were asked for, on the thread count, or on the order of X1 and X2:
/// with X2 = X1 the result is exactly symmetric (the row-block API, [`kernels_rows`], needs
/// exactly that).
fn gram_rows(x1: ArrayView2<f64>, x2: ArrayView2<f64>, rows: Range<usize>) -> Array2<f64> {
    let pa = gram_tile::Packed::new(x1.slice(s![rows.clone(), ..]));
    let pb = gram_tile::Packed::new(x2);
    let (m, n) = (rows.len(), x2.nrows());
    let mut out = Array2::<f64>::zeros((m, n));
    out.axis_chunks_iter_mut(Axis(0), TILE)
        .into_par_iter()
        .with_max_len(1)
        .enumerate()
        .for_each(|(t, mut chunk)| {
            let r = t * TILE..t * TILE + chunk.nrows();
            let o = chunk.as_slice_mut().expect("row-major");
            for c0 in (0..n).step_by(TILE) {
                let c = c0..(c0 + TILE).min(n);
                gram_tile::tile_product(&pa, &pb, r.clone(), c, false, &mut o[c0..], n);
            }
        });
    out
}

/// Rows of Gram tile `t` of an n-row input.
fn tile_range(t: usize, n: usize) -> Range<usize> {
    t * TILE..((t + 1) * TILE).min(n)
}

/// The tiles (I, J), I ≥ J, of the lower block triangle of an n × n Gram matrix.
fn lower_tiles(n: usize) -> Vec<(usize, usize)> {
    let nt = n.div_ceil(TILE);
    (0..nt).flat_map(|i| (0..=i).map(move |j| (i, j))).collect()
}

/// Benchmark hook: the Gram product part of [`gram_sym`] alone (packing, then every
/// lower-triangle tile into the per-thread buffer; nothing is evaluated or written).
#[doc(hidden)]
pub fn bench_gram_tiles(x: ArrayView2<f64>) {
    let n = x.nrows();
    let px = gram_tile::Packed::new(x);
    lower_tiles(n)
        .par_iter()
        .with_max_len(1)
        .for_each(|&(bi, bj)| {
            TILE_BUFS.with_borrow_mut(|(gbuf, _, _)| {
                let (ri, rj) = (tile_range(bi, n), tile_range(bj, n));
                let mj = rj.len();
                gram_tile::tile_product(&px, &px, ri, rj, bi == bj, gbuf, mj);
            })
        });
}

/// The full symmetric kernel matrices K(X, X), fused per Gram tile: for every [`TILE`]×[`TILE`]
/// block (I, J), I ≥ J, the Gram tile `X_I X_Jᵀ` ([`gram_tile`]; lower half only on diagonal
/// blocks; the same bits as [`gram_rows`]) into a per-thread buffer, then the whole recursion for the
/// pairs of that block while its Gram entries are in cache ([`batch::eval_block`], j ≤ i in the
/// diagonal blocks) into per-thread tile buffers, which are written to K[I, J] and, transposed
/// in registers, to K[J, I] with streaming stores (each output cache line is written once and
/// never read: no read-for-ownership traffic). No M×M Gram matrix, no mirror pass; the
/// finiteness check is folded into the tile loop. Returns the matrices in `want` (the other
/// is 0×0) and whether every computed value is finite.
fn gram_sym(arch: &Arch, x: ArrayView2<f64>, want: Want) -> (Kernels, bool) {
    let n = x.nrows();
    let cx = batch::Ctx::new(arch, x.view(), None);
    let px = gram_tile::Packed::new(x);
    let blocks = lower_tiles(n);
    let alloc = |on: bool| {
        if on {
            linalg::zeros_huge(n, n)
        } else {
            Array2::<f64>::zeros((0, 0))
        }
    };
    let mut nngp = alloc(want != Want::Ntk);
    let mut ntk = alloc(want != Want::Nngp);
    let pn = SharedOut(nngp.as_mut_ptr());
    let pt = SharedOut(ntk.as_mut_ptr());
    let (wn, wt) = (want != Want::Ntk, want != Want::Nngp);
    let finite = std::sync::atomic::AtomicBool::new(true);
    // One tile per rayon job: with the default adaptive split a thread may run out of work
    // while the other still holds a long sequential run of tiles (measured: up to 9 ms of one
    // idle core at M = 4000).
    blocks.par_iter().with_max_len(1).for_each(|&(bi, bj)| {
        TILE_BUFS.with_borrow_mut(|(gbuf, kc, kt)| {
            let (ri, rj) = (tile_range(bi, n), tile_range(bj, n));
            let mj = rj.len();
            let diag = bi == bj;
            gram_tile::tile_product(&px, &px, ri.clone(), rj.clone(), diag, gbuf, mj);
            let (bad_c, bad_t) = batch::eval_block(
                &cx,
                batch::Block {
                    rows: ri.clone(),
                    j0: rj.start,
                    ncols: mj,
                    ld: mj,
                    lower: diag,
                    g: gbuf,
                    out_c: kc,
                    out_t: kt,
                    keep_c: wn,
                    keep_t: wt,
                },
            );
            let ok = bad_c == 0 && bad_t == 0;
            for (on, p, vals) in [(wn, pn, &mut *kc), (wt, pt, &mut *kt)] {
                if on {
                    write_tile(p, n, ri.clone(), rj.clone(), diag, vals);
                }
            }
            linalg::stream_fence();
            if !ok {
                finite.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    (Kernels { nngp, ntk }, finite.into_inner())
}

thread_local! {
    /// Per-thread tile buffers of [`gram_sym`] (Gram tile; NNGP and NTK values), kept
    /// between tiles and calls: 3 × 288 KiB that are not re-zeroed.
    static TILE_BUFS: std::cell::RefCell<(Vec<f64>, Vec<f64>, Vec<f64>)> = std::cell::RefCell::new(
        (vec![0.0; TILE * TILE], vec![0.0; TILE * TILE], vec![0.0; TILE * TILE]),
    );
}

/// Write a computed tile (`vals`, |ri| × |rj| row-major; on a diagonal block only j ≤ i is
/// computed, the rest is filled here from it) to K[ri, rj] and its transpose to K[rj, ri]
/// with streaming stores (the transpose in registers, [`linalg::stream_transposed`]).
fn write_tile(
    p: SharedOut,
    n: usize,
    ri: Range<usize>,
    rj: Range<usize>,
    diag: bool,
    vals: &mut [f64],
) {
    let (mi, mj) = (ri.len(), rj.len());
    if diag {
        for li in 0..mi {
            for lj in li + 1..mj {
                vals[li * mj + lj] = vals[lj * mj + li];
            }
        }
    }
    // SAFETY (all writes below): rows ri × columns rj and rows rj × columns ri lie in the
    // n×n matrix, and each entry belongs to exactly one block (I, J) with I ≥ J, processed
    // by one worker.
    for (li, i) in ri.clone().enumerate() {
        unsafe { linalg::stream_copy(p.0.add(i * n + rj.start), &vals[li * mj..(li + 1) * mj]) };
    }
    if !diag {
        unsafe { linalg::stream_transposed(p.0.add(rj.start * n + ri.start), n, vals, mi, mj) };
    }
}

/// Which Gram matrices [`compute`] materialises (the per-layer path always computes both).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Both,
    Nngp,
    Ntk,
}

/// Core: rows `rows` of the kernel matrices between X1 and X2 (X2 = X1 when `sym`), with an
/// optional per-layer sink. With `lower_only` (symmetric full matrix) only entries j ≤ i are
/// computed; the caller mirrors them.
#[allow(clippy::too_many_arguments)]
fn compute(
    arch: &Arch,
    x1: ArrayView2<f64>,
    x2: ArrayView2<f64>,
    sym: bool,
    rows: Range<usize>,
    per_layer: bool,
    lower_only: bool,
    want: Want,
) -> (Kernels, Vec<Kernels>) {
    let g = if sym {
        gram_rows(x1, x1, rows.clone())
    } else {
        gram_rows(x1, x2, rows.clone())
    };
    let m = rows.len();
    let n = x2.nrows();
    if !per_layer {
        let cx = batch::Ctx::new(arch, x1.view(), if sym { None } else { Some(x2.view()) });
        // One row of pairs: `rn[j]`, `rt[j]` = (NNGP, NTK) of pair (i, j), j < jmax, by the
        // batched SIMD evaluator (the same code as the fused symmetric path, [`gram_sym`]).
        let row = |li: usize, rn: &mut [f64], rt: &mut [f64]| {
            let jmax = if lower_only { rows.start + li + 1 } else { n };
            let gr = g.row(li);
            let gs = gr.as_slice().expect("row-major Gram rows");
            batch::eval_block(
                &cx,
                batch::Block {
                    rows: rows.start + li..rows.start + li + 1,
                    j0: 0,
                    ncols: jmax,
                    ld: jmax,
                    lower: false,
                    g: &gs[..jmax],
                    out_c: &mut rn[..jmax],
                    out_t: &mut rt[..jmax],
                    keep_c: true,
                    keep_t: true,
                },
            );
        };
        // A kind that was not asked for is written to a per-thread scratch row and returned
        // as a 0×0 matrix: no M×M allocation, page faults or mirroring for it.
        let empty = || Array2::<f64>::zeros((0, 0));
        let scratch = || vec![0.0; n];
        let (nngp, ntk) = match want {
            Want::Both => {
                let mut nngp = linalg::zeros_huge(m, n);
                let mut ntk = linalg::zeros_huge(m, n);
                nngp.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .zip(ntk.axis_iter_mut(Axis(0)).into_par_iter())
                    .enumerate()
                    .for_each(|(li, (mut rn, mut rt))| {
                        row(
                            li,
                            rn.as_slice_mut().expect("row-major"),
                            rt.as_slice_mut().expect("row-major"),
                        )
                    });
                (nngp, ntk)
            }
            Want::Ntk => {
                let mut ntk = linalg::zeros_huge(m, n);
                ntk.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each_init(scratch, |sc, (li, mut rt)| {
                        row(li, sc, rt.as_slice_mut().expect("row-major"))
                    });
                (empty(), ntk)
            }
            Want::Nngp => {
                let mut nngp = linalg::zeros_huge(m, n);
                nngp.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each_init(scratch, |sc, (li, mut rn)| {
                        row(li, rn.as_slice_mut().expect("row-major"), sc)
                    });
                (nngp, empty())
            }
        };
        return (Kernels { nngp, ntk }, Vec::new());
    }
    // Tiny inputs rescaled by powers of two ([`point_scales`]); ordinary rows are unchanged.
    let (xs1, p1) = point_scales(arch, x1);
    let (xs2, p2) = if sym {
        (None, p1.clone())
    } else {
        point_scales(arch, x2)
    };
    let x1 = match &xs1 {
        Some(a) => a.view(),
        None => x1.view(),
    };
    let x2 = if sym {
        x1
    } else {
        match &xs2 {
            Some(a) => a.view(),
            None => x2.view(),
        }
    };
    let n1 = row_norms2(x1);
    let n2 = if sym { n1.clone() } else { row_norms2(x2) };
    let nl = arch.depth + 1;
    // Per-point diagonal chains (O((n1 + n2) L)), shared by all pairs.
    let dim = x1.ncols() as f64;
    let chains = |norms: &[f64]| -> Vec<Vec<Diag>> {
        norms
            .iter()
            .map(|&nn| diag_chain(arch, first_layer_naive(arch, dim, nn, nn, nn).q1))
            .collect()
    };
    let ch1 = chains(&n1);
    let ch2 = if sym { ch1.clone() } else { chains(&n2) };
    // Each entry (i, j) is computed from its own data only; in the symmetric case the pair is
    // ordered canonically (smaller index first) and the Gram matrix is exactly symmetric, so
    // K[i, j] and K[j, i] are the same bits.
    let entry = |li: usize, j: usize| -> (PairState, f64, f64, usize, usize) {
        let i = rows.start + li;
        let (a, b) = if sym && j < i { (j, i) } else { (i, j) };
        let same = sym && a == b;
        if p1[a] != 1.0 || p2[b] != 1.0 {
            let sc = p1[a] * p2[b];
            let (st, g_raw) = scaled_first(arch, x1.row(a), x2.row(b), n1[a], n2[b], sc, same);
            return (st, g_raw, sc, a, b);
        }
        let gij = g[[li, j]];
        let st = first_layer(arch, x1.row(a), x2.row(b), n1[a], n2[b], gij, same);
        (st, gij, 1.0, a, b)
    };
    let mut nngp = Array2::<f64>::zeros((m, n));
    let mut ntk = Array2::<f64>::zeros((m, n));
    let row_results: Vec<Vec<Vec<(f64, f64)>>> = (0..m)
        .into_par_iter()
        .map(|li| {
            let mut rl = vec![vec![(0.0, 0.0); n]; nl];
            let jmax = if lower_only { rows.start + li + 1 } else { n };
            for j in 0..jmax {
                let (st, gij, sc, a, b) = entry(li, j);
                recurse_with(arch, st, gij, sc, &ch1[a], &ch2[b], |h, s, t| {
                    rl[h - 1][j] = (s, t)
                });
            }
            rl
        })
        .collect();
    let mut layers: Vec<Kernels> = (0..nl)
        .map(|_| Kernels {
            nngp: Array2::zeros((m, n)),
            ntk: Array2::zeros((m, n)),
        })
        .collect();
    for (li, rl) in row_results.into_iter().enumerate() {
        for (h, v) in rl.into_iter().enumerate() {
            for (j, (s, t)) in v.into_iter().enumerate() {
                layers[h].nngp[[li, j]] = s;
                layers[h].ntk[[li, j]] = t;
            }
        }
    }
    if let Some(last) = layers.last() {
        nngp.assign(&last.nngp);
        ntk.assign(&last.ntk);
    }
    (Kernels { nngp, ntk }, layers)
}

/// Copy the lower triangle of a square matrix onto its upper triangle (in 64×64 blocks, so
/// that the transposed writes stay in cache; an empty matrix is left alone).
fn mirror_lower(mat: &mut Array2<f64>) {
    const B: usize = 64;
    let n = mat.nrows();
    for ib in (0..n).step_by(B) {
        for jb in (0..=ib).step_by(B) {
            for i in ib..(ib + B).min(n) {
                for j in jb..(jb + B).min(i) {
                    mat[[j, i]] = mat[[i, j]];
                }
            }
        }
    }
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
    if rows.start > rows.end || rows.end > x.nrows() {
        return Err(Error::param(
            "rows",
            format!("{}..{}", rows.start, rows.end),
            format!("must lie within 0..{}", x.nrows()),
        ));
    }
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
            if rows.start > rows.end || rows.end > x1.nrows() {
                return Err(Error::param(
                    "rows",
                    format!("{}..{}", rows.start, rows.end),
                    format!("must lie within 0..{}", x1.nrows()),
                ));
            }
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
