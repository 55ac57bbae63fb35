//! The one-pair recursion (MATH.md §1): first-layer pair state (with the cancellation-free
//! D and Δ of nearly collinear pairs), the per-point diagonal chains, one layer step, and the
//! whole recursion for one pair; plus the per-point quantities shared by every pair (row
//! norms, the power-of-two rescaling of tiny inputs).
//!
//! ```text
//! Σ¹ = σ_w² x·x'/d + σ_b²,                Θ¹ = Σ¹
//! Σ^{h+1} = σ_w² T_φ(Σ^h) + σ_b²,         Θ^{h+1} = Σ^{h+1} + σ_w² Ṫ_φ(Σ^h) Θ^h
//! ```

use super::activation::{self, Activation, Diag, PairState};
use super::arch::{Arch, Parameterization};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

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
pub(crate) fn first_layer_naive(arch: &Arch, d: f64, n1: f64, n2: f64, g: f64) -> PairState {
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
pub(crate) fn first_layer(
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
pub(crate) fn theta1(arch: &Arch, st: &PairState, g_raw: f64) -> f64 {
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
pub(crate) fn step(
    arch: &Arch,
    h: usize,
    st: &mut PairState,
    theta: &mut f64,
    s: f64,
    d1: &Diag,
    d2: &Diag,
) {
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
pub(crate) fn recurse_with(
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

/// `‖x_j‖²` of every row (ndarray's `dot`), rows in parallel: the same bits as a serial loop.
pub(crate) fn row_norms2(x: ArrayView2<f64>) -> Vec<f64> {
    let mut v = vec![0.0; x.nrows()];
    v.par_iter_mut()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(o, r)| *o = r.dot(&r));
    v
}
