//! Activations and their closed-form dual kernels (MATH.md §1).
//!
//! For a centred Gaussian pair (u, v) with covariance [[k11, k12], [k12, k22]]:
//! `T = E[φ(u)φ(v)]`, `Ṫ = E[φ'(u)φ'(v)]`.
//!
//! * ReLU / ABReLU φ(x) = a·min(x,0) + b·max(x,0) (ReLU: a = 0, b = 1; leaky ReLU: a = α, b = 1),
//!   with cos θ = k12/√(k11 k22):
//!   `Ṫ = (a² + b²)/2 − (a − b)² θ/(2π)`, `T = (a − b)² √(k11 k22 − k12²)/(2π) + Ṫ k12`.
//! * Erf: `T = (2/π) asin(2 k12/√((1 + 2k11)(1 + 2k22)))`,
//!   `Ṫ = (4/π)/√((1 + 2k11)(1 + 2k22) − 4 k12²)`.
//! * Identity: `T = k12`, `Ṫ = 1`.
//!
//! The recursion does not carry cos θ (which loses half the digits near θ = 0) but the exact
//! quantities `D = k11 k22 − k12²` and `Δ = k11 + k22 − 2 k12`, updated by formulas without
//! cancellation; see [`Activation::dual`].

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Activation of the hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// a·min(x,0) + b·max(x,0); leaky ReLU with slope α is `AbRelu { a: α, b: 1 }`.
    #[serde(rename = "abrelu")]
    AbRelu { a: f64, b: f64 },
    /// erf(x).
    Erf,
    /// x (the network is linear in its input).
    Identity,
}

/// The second-moment state of a pair of pre-activations at one layer, carried without
/// cancellation: `q1 = k11`, `q2 = k22`, `c = k12`, `d = k11 k22 − k12² ≥ 0`,
/// `delta = k11 + k22 − 2 k12 ≥ 0`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct PairState {
    pub q1: f64,
    pub q2: f64,
    pub c: f64,
    pub d: f64,
    pub delta: f64,
}

/// The dual of one activation applied to a [`PairState`]: `t1 = T(k11,k11)`, `t2 = T(k22,k22)`,
/// `t12 = T(k11,k12,k22)`, `tdot = Ṫ(k11,k12,k22)`, plus the exact combinations
/// `td = t1 t2 − t12²` and `tdelta = t1 + t2 − 2 t12` that the next layer needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dual {
    pub t1: f64,
    pub t2: f64,
    pub t12: f64,
    pub tdot: f64,
    pub td: f64,
    pub tdelta: f64,
}

/// `h(θ) = sin θ − θ cos θ`, by its Taylor series `Σ_k (−1)^{k+1} 2k θ^{2k+1}/(2k+1)!` for
/// |θ| < 0.5 (where the difference cancels; ten terms in Horner form with fused
/// multiply-adds, truncation < 1e-22 relative) and directly otherwise.
#[inline]
pub fn sin_minus_theta_cos(theta: f64) -> f64 {
    if theta.abs() < 0.5 {
        h_series(theta)
    } else {
        theta.sin() - theta * theta.cos()
    }
}

/// The Taylor series of [`sin_minus_theta_cos`] (valid for |θ| < 0.5), branch-free.
#[inline(always)]
pub(crate) fn h_series(theta: f64) -> f64 {
    const C: [f64; 10] = [
        2.0 / 6.0,
        -4.0 / 120.0,
        6.0 / 5040.0,
        -8.0 / 362880.0,
        10.0 / 39916800.0,
        -12.0 / 6227020800.0,
        14.0 / 1307674368000.0,
        -16.0 / 355687428096000.0,
        18.0 / 121645100408832000.0,
        -20.0 / 51090942171709440000.0,
    ];
    let t2 = theta * theta;
    let mut p = C[9];
    for &c in C[..9].iter().rev() {
        p = p.mul_add(t2, c);
    }
    theta * t2 * p
}

/// π/2 − fl(π/2): the low part of π/2.
const PIO2_LO: f64 = 6.123233995736766e-17;

/// atan(t) for |t| ≤ 0.66: the Cephes rational approximation `t + t z P(z)/Q(z)`, z = t²
/// (relative error ≈ 1e-16), P and Q by Horner steps as fused multiply-adds (`mul_add`: one
/// rounding per step, correctly rounded on every SIMD path, hence the same bits).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants, verbatim
pub(crate) fn atan_core(t: f64) -> f64 {
    const P: [f64; 5] = [
        -8.750608600031904122785e-1,
        -1.615753718733365076637e1,
        -7.500855792314704667340e1,
        -1.228866684490136173410e2,
        -6.485021904942025371773e1,
    ];
    const Q: [f64; 5] = [
        2.485846490142306297962e1,
        1.650270098316988542046e2,
        4.328810604912902668951e2,
        4.853903996359136964868e2,
        1.945506571482613964425e2,
    ];
    let z = t * t;
    let p = P[0]
        .mul_add(z, P[1])
        .mul_add(z, P[2])
        .mul_add(z, P[3])
        .mul_add(z, P[4]);
    let q = (z + Q[0])
        .mul_add(z, Q[1])
        .mul_add(z, Q[2])
        .mul_add(z, Q[3])
        .mul_add(z, Q[4]);
    t + t * (z * p / q)
}

/// `atan2(y, x)` for `y ≥ 0`, `x ≥ 0` (0 for (0, 0)), in [0, π/2], within ~2 ulp: several times
/// faster than libm's atan2, which dominated the Gram-matrix loop. Ratios near 1 are reduced
/// with `(y − x)/(y + x)` formed from the arguments themselves, not from a rounded ratio:
///
/// ```text
/// y ≤ 0.66x:           atan(y/x)
/// x ≤ 0.66y:           π/2 − atan(x/y)
/// otherwise:           π/4 + atan((y − x)/(y + x))
/// ```
///
/// Branch-free (all three reductions share one division and one [`atan_core`], the case is a
/// select), so that the batched pair loop vectorizes; vector IEEE operations are exact per lane,
/// so a SIMD lane gives the same bits as this scalar code.
#[inline(always)]
pub fn atan2_nonneg(y: f64, x: f64) -> f64 {
    atan2_finish(y, x, atan_core(atan2_reduce(y, x)))
}

/// First stage of [`atan2_nonneg`]: the reduced argument `y/x`, `x/y` or `(y − x)/(y + x)`
/// (0 for (0, 0)). Split out so the batched loops can run the stages as separate passes
/// (short dependency chains; the same operations, hence the same bits).
#[inline(always)]
pub(crate) fn atan2_reduce(y: f64, x: f64) -> f64 {
    let lo = y <= 0.66 * x;
    let hi = x <= 0.66 * y;
    let num = if lo {
        y
    } else if hi {
        x
    } else {
        y - x
    };
    let den = if lo {
        x
    } else if hi {
        y
    } else {
        y + x
    };
    // (0, 0): lo with 0/0; divide by 1 instead (atan(0) = 0).
    let den = if den == 0.0 { 1.0 } else { den };
    num / den
}

/// Last stage of [`atan2_nonneg`]: from `a = atan_core(atan2_reduce(y, x))` to the angle.
#[inline(always)]
pub(crate) fn atan2_finish(y: f64, x: f64, a: f64) -> f64 {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
    let lo = y <= 0.66 * x;
    let hi = x <= 0.66 * y;
    let r_hi = FRAC_PI_2 + (PIO2_LO - a);
    let r_mid = FRAC_PI_4 + (a + 0.5 * PIO2_LO);
    if lo {
        a
    } else if hi {
        r_hi
    } else {
        r_mid
    }
}

/// `atan2(y, x)` for `x ≥ 0` and any sign of y (odd in y), via [`atan2_nonneg`] (branch-free).
#[inline(always)]
pub fn atan2_right(y: f64, x: f64) -> f64 {
    let neg = y < 0.0;
    let a = atan2_nonneg(if neg { -y } else { y }, x);
    if neg {
        -a
    } else {
        a
    }
}

/// Per-point quantities of one layer, shared by every pair that contains the point:
/// `q = k11`, `t = T(k11, k11)` and `sq = √k11`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diag {
    pub q: f64,
    pub t: f64,
    pub sq: f64,
}

impl Activation {
    /// Leaky ReLU with negative slope α.
    pub fn leaky_relu(alpha: f64) -> Self {
        Activation::AbRelu { a: alpha, b: 1.0 }
    }

    /// Short name used in the CLI and exchange files.
    pub fn name(&self) -> String {
        match self {
            Activation::Relu => "relu".into(),
            Activation::AbRelu { a, b } => format!("abrelu({a},{b})"),
            Activation::Erf => "erf".into(),
            Activation::Identity => "identity".into(),
        }
    }

    /// Parse `relu`, `erf`, `identity`, `leaky_relu(α)` / `leaky-relu:α`, `abrelu(a,b)`.
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        let args = |t: &str| -> Option<Vec<f64>> {
            let open = t.find(['(', ':'])?;
            let inner = t[open + 1..].trim_end_matches(')');
            inner
                .split(',')
                .map(|p| p.trim().parse::<f64>().ok())
                .collect()
        };
        let act = match t.as_str() {
            "relu" => Activation::Relu,
            "erf" => Activation::Erf,
            "identity" | "linear" => Activation::Identity,
            _ if t.starts_with("leaky") => match args(&t).as_deref() {
                Some([alpha]) => Activation::leaky_relu(*alpha),
                _ => return Err(Error::param("activation", s, "expected leaky_relu(alpha)")),
            },
            _ if t.starts_with("abrelu") => match args(&t).as_deref() {
                Some([a, b]) => Activation::AbRelu { a: *a, b: *b },
                _ => return Err(Error::param("activation", s, "expected abrelu(a,b)")),
            },
            _ => {
                return Err(Error::param(
                    "activation",
                    s,
                    "unknown; expected relu, leaky_relu(alpha), abrelu(a,b), erf or identity",
                ))
            }
        };
        act.validate()?;
        Ok(act)
    }

    /// Finite parameters.
    pub fn validate(&self) -> Result<()> {
        if let Activation::AbRelu { a, b } = self {
            if !(a.is_finite() && b.is_finite()) {
                return Err(Error::param(
                    "activation",
                    self.name(),
                    "slopes must be finite",
                ));
            }
        }
        Ok(())
    }

    /// Pointwise value φ(x).
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Activation::Relu => x.max(0.0),
            Activation::AbRelu { a, b } => {
                if x < 0.0 {
                    a * x
                } else {
                    b * x
                }
            }
            Activation::Erf => statrs::function::erf::erf(x),
            Activation::Identity => x,
        }
    }

    /// The dual kernels on a pair state (see the module docs for the formulas).
    ///
    /// ReLU family, with A = (a² + b²)/2, B = (a − b)²/(2π), θ = atan2(√D, k12) (θ = π/2 when
    /// k11 k22 = 0, i.e. φ'(0) = (a + b)/2 as in neural-tangents; for k12 < 0 the recursion works
    /// with φ = π − θ = atan2(√D, −k12) instead) and
    /// E = √D − θ k12 = √(k11 k22)·(sin θ − θ cos θ) (series for small θ):
    /// `t12 = A k12 + B E`, `Ṫ = A − B θ`, `t1 t2 − t12² = A² D − 2AB k12 E − B² E²`,
    /// `t1 + t2 − 2 t12 = A Δ − 2 B E`.
    ///
    /// Erf, with P = (1 + 2k11)(1 + 2k22) − 4k12² = 1 + 2(k11 + k22) + 4D (no cancellation):
    /// `t12 = (2/π) atan2(2 k12, √P)`, `Ṫ = (4/π)/√P`. Its outputs lie in [−1, 1] so the next
    /// layer's P ≥ 1 absorbs the rounding of `t1 t2 − t12²`.
    pub fn dual(&self, s: &PairState) -> Dual {
        self.dual_pair(s, &self.diag(s.q1), &self.diag(s.q2))
    }

    /// The per-point part of the dual: `T(q, q)` (ReLU family `(a² + b²)/2 · q`; erf
    /// `(2/π) atan2(2q, √(1 + 4q))`; identity `q`) and `√q`.
    #[inline]
    pub fn diag(&self, q: f64) -> Diag {
        let t = match *self {
            Activation::Identity => q,
            Activation::Relu => 0.5 * q,
            Activation::AbRelu { a, b } => 0.5 * (a * a + b * b) * q,
            Activation::Erf => (2.0 / PI) * atan2_nonneg(2.0 * q, (1.0 + 4.0 * q).sqrt()),
        };
        Diag { q, t, sq: q.sqrt() }
    }

    /// [`Activation::dual`] with the per-point parts precomputed (`d1 = diag(s.q1)`,
    /// `d2 = diag(s.q2)`): the form used by the Gram-matrix loop.
    #[inline]
    pub fn dual_pair(&self, s: &PairState, d1: &Diag, d2: &Diag) -> Dual {
        match *self {
            Activation::Identity => Dual {
                t1: s.q1,
                t2: s.q2,
                t12: s.c,
                tdot: 1.0,
                td: s.d,
                tdelta: s.delta,
            },
            Activation::Relu => relu_family(0.0, 1.0, s, d1, d2),
            Activation::AbRelu { a, b } => relu_family(a, b, s, d1, d2),
            Activation::Erf => {
                let (t1, t2) = (d1.t, d2.t);
                let (t12, tdot, td, tdelta) = erf_lane(s.q1 + s.q2, s.d, s.c, t1, t2);
                Dual {
                    t1,
                    t2,
                    t12,
                    tdot,
                    td,
                    tdelta,
                }
            }
        }
    }
}

#[inline(always)]
fn relu_family(a: f64, b: f64, s: &PairState, d1: &Diag, d2: &Diag) -> Dual {
    let (t12, tdot, td, tdelta) =
        relu_lane(&ReluConsts::new(a, b), s.c, s.d, s.delta, d1.sq * d2.sq);
    Dual {
        t1: d1.t,
        t2: d2.t,
        t12,
        tdot,
        td,
        tdelta,
    }
}

/// The angle passes of the ReLU dual over a row of pairs with correlations `c` and determinants
/// `d`: sd = √max(D, 0), then ψ = atan2(sd, |c|) by [`atan2_reduce`] → [`atan_core`] →
/// [`atan2_finish`] and hs = [`h_series`](ψ), written to `t` (ψ) and `hs`. Each stage is its own
/// pass over the row so that it vectorises; shared by the FC batch lanes and the conv plane rows
/// (`relu_lane_post` finishes both).
#[inline(always)]
pub(crate) fn relu_angle_passes(
    c: &[f64],
    d: &[f64],
    sd: &mut [f64],
    t: &mut [f64],
    hs: &mut [f64],
) {
    let n = c.len();
    let (d, sd, t, hs) = (&d[..n], &mut sd[..n], &mut t[..n], &mut hs[..n]);
    for m in 0..n {
        sd[m] = pos(d[m]).sqrt();
    }
    for m in 0..n {
        let ac = if c[m] < 0.0 { -c[m] } else { c[m] };
        t[m] = atan2_reduce(sd[m], ac);
    }
    for tm in t.iter_mut() {
        *tm = atan_core(*tm);
    }
    for m in 0..n {
        let ac = if c[m] < 0.0 { -c[m] } else { c[m] };
        let psi = atan2_finish(sd[m], ac, t[m]);
        t[m] = psi;
        hs[m] = h_series(psi);
    }
}

/// `max(x, 0)` as a select (NaN → 0, −0 → +0): the same bits in scalar and SIMD code.
#[inline(always)]
pub(crate) fn pos(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Constants of the ReLU-family dual for φ = a·min(x,0) + b·max(x,0):
/// A = (a² + b²)/2, B = (a − b)²/(2π), ab, and the products used by `t1 t2 − t12²`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReluConsts {
    pub a: f64,
    pub b: f64,
    pub ab: f64,
    pub aa: f64,
    pub two_ab: f64,
    pub bb: f64,
    pub two_b: f64,
    pub tdot0: f64,
}

impl ReluConsts {
    pub(crate) fn new(a: f64, b: f64) -> Self {
        let big_a = 0.5 * (a * a + b * b);
        let big_b = (a - b) * (a - b) / (2.0 * PI);
        ReluConsts {
            a: big_a,
            b: big_b,
            ab: a * b,
            aa: big_a * big_a,
            two_ab: 2.0 * big_a * big_b,
            bb: big_b * big_b,
            two_b: 2.0 * big_b,
            tdot0: big_a - big_b * (PI / 2.0),
        }
    }
}

/// ReLU-family dual of one pair, branch-free (selects only, so the batched loop vectorizes):
/// `(t12, Ṫ, t1 t2 − t12², t1 + t2 − 2 t12)` from `k12 = c`, `D = d`, `Δ = delta` and
/// `r = √(k11 k22)` (formulas: [`Activation::dual`]). With ψ = atan2(√D, |k12|) (= θ for
/// k12 ≥ 0, = φ = π − θ for k12 < 0) and `rh = r h(ψ)` (series for ψ < 0.5, else √D − ψ|k12|):
/// k12 ≥ 0: `t12 = A k12 + B rh`, `Ṫ = A − Bψ`, `E = rh`;
/// k12 < 0: `t12 = ab k12 + B rh`, `Ṫ = ab + Bψ`, `E = rh − π k12`;
/// k11 k22 = 0 (√D = k12 = 0): `t12 = 0`, `Ṫ = A − Bπ/2`, `E = 0`.
#[inline(always)]
pub(crate) fn relu_lane(
    k: &ReluConsts,
    c: f64,
    d: f64,
    delta: f64,
    r: f64,
) -> (f64, f64, f64, f64) {
    let sd = pos(d).sqrt();
    let ac = if c < 0.0 { -c } else { c };
    let psi = atan2_nonneg(sd, ac);
    relu_lane_post(k, c, d, delta, r, sd, psi, h_series(psi))
}

/// [`relu_lane`] after its angle: `sd = √max(D, 0)`, `psi = atan2(sd, |k12|)`,
/// `hs = h_series(psi)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn relu_lane_post(
    k: &ReluConsts,
    c: f64,
    d: f64,
    delta: f64,
    r: f64,
    sd: f64,
    psi: f64,
    hs: f64,
) -> (f64, f64, f64, f64) {
    let neg = c < 0.0;
    let ac = if neg { -c } else { c };
    let series = r * hs;
    let direct = sd - psi * ac;
    let rh = if psi < 0.5 { series } else { direct };
    let zero = sd == 0.0 && c == 0.0;
    let t12 = if neg {
        k.ab * c + k.b * rh
    } else {
        k.a * c + k.b * rh
    };
    let tdot = if neg {
        k.ab + k.b * psi
    } else {
        k.a - k.b * psi
    };
    let e = if neg { rh - PI * c } else { rh };
    let (t12, tdot, e) = if zero {
        (0.0, k.tdot0, 0.0)
    } else {
        (t12, tdot, e)
    };
    let td = k.aa * d - k.two_ab * c * e - k.bb * e * e;
    let tdelta = k.a * delta - k.two_b * e;
    (t12, tdot, pos(td), pos(tdelta))
}

/// Erf dual of one pair, branch-free: with `qsum = k11 + k22`, P = 1 + 2 qsum + 4D,
/// `t12 = (2/π) atan2(2 k12, √P)`, `Ṫ = (4/π)/√P`, and `t1 t2 − t12²`, `t1 + t2 − 2 t12`
/// (clamped at 0) from the per-point `t1 = T(k11, k11)`, `t2 = T(k22, k22)`.
#[inline(always)]
pub(crate) fn erf_lane(qsum: f64, d: f64, c: f64, t1: f64, t2: f64) -> (f64, f64, f64, f64) {
    let sp = erf_sp(qsum, d);
    let y = 2.0 * c;
    let ay = if y < 0.0 { -y } else { y };
    let a = atan2_nonneg(ay, sp);
    erf_lane_post(c, t1, t2, sp, a)
}

/// `√P`, P = 1 + 2 qsum + 4D (first stage of [`erf_lane`]).
#[inline(always)]
pub(crate) fn erf_sp(qsum: f64, d: f64) -> f64 {
    (1.0 + 2.0 * qsum + 4.0 * d).sqrt()
}

/// [`erf_lane`] after its angle `a = atan2(|2 k12|, √P)`.
#[inline(always)]
pub(crate) fn erf_lane_post(c: f64, t1: f64, t2: f64, sp: f64, a: f64) -> (f64, f64, f64, f64) {
    let two_over_pi = 2.0 / PI;
    let t12 = two_over_pi * (if 2.0 * c < 0.0 { -a } else { a });
    let tdot = (4.0 / PI) / sp;
    (
        t12,
        tdot,
        pos(t1 * t2 - t12 * t12),
        pos(t1 + t2 - 2.0 * t12),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The fast atan2 agrees with libm's to 2 ulp of the result over random magnitudes and
    /// ratios (including tiny, huge and nearly equal arguments).
    #[test]
    fn fast_atan2_matches_libm() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut worst = 0.0f64;
        for k in 0..200_000 {
            let y: f64 = 10f64.powf(rng.gen_range(-30.0..30.0));
            let x: f64 = match k % 3 {
                0 => 10f64.powf(rng.gen_range(-30.0..30.0)),
                1 => y * rng.gen_range(0.5..2.0),
                _ => y * 10f64.powf(rng.gen_range(-8.0..8.0)),
            };
            for (a, b) in [(y, x), (x, y)] {
                let want = a.atan2(b);
                let got = atan2_nonneg(a, b);
                let ulp = (want.abs() * f64::EPSILON).max(f64::MIN_POSITIVE);
                worst = worst.max((got - want).abs() / ulp);
                assert_eq!(atan2_right(-a, b), -got);
            }
        }
        assert_eq!(atan2_nonneg(0.0, 0.0), 0.0);
        assert_eq!(atan2_nonneg(0.0, 3.0), 0.0);
        assert_eq!(atan2_nonneg(3.0, 0.0), std::f64::consts::FRAC_PI_2);
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }

    /// The branchy atan2 of session 1 (reference for the branch-free rewrite).
    fn atan2_nonneg_branchy(y: f64, x: f64) -> f64 {
        use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
        if y <= x {
            if x == 0.0 {
                0.0
            } else if y <= 0.66 * x {
                atan_core(y / x)
            } else {
                FRAC_PI_4 + (atan_core((y - x) / (y + x)) + 0.5 * PIO2_LO)
            }
        } else if x <= 0.66 * y {
            FRAC_PI_2 + (PIO2_LO - atan_core(x / y))
        } else {
            FRAC_PI_4 + (atan_core((y - x) / (y + x)) + 0.5 * PIO2_LO)
        }
    }

    /// The ReLU-family dual of session 1, with branches (reference for `relu_lane`).
    fn relu_family_branchy(a: f64, b: f64, s: &PairState, r: f64) -> (f64, f64, f64, f64) {
        let big_a = 0.5 * (a * a + b * b);
        let big_b = (a - b) * (a - b) / (2.0 * PI);
        let sd = s.d.max(0.0).sqrt();
        let (t12, tdot, e) = if sd == 0.0 && s.c == 0.0 {
            (0.0, big_a - big_b * (PI / 2.0), 0.0)
        } else if s.c >= 0.0 {
            let theta = atan2_nonneg_branchy(sd, s.c);
            let e = if theta < 0.5 {
                r * sin_minus_theta_cos(theta)
            } else {
                sd - theta * s.c
            };
            (big_a * s.c + big_b * e, big_a - big_b * theta, e)
        } else {
            let phi = atan2_nonneg_branchy(sd, -s.c);
            let rh = if phi < 0.5 {
                r * sin_minus_theta_cos(phi)
            } else {
                sd + phi * s.c
            };
            (a * b * s.c + big_b * rh, a * b + big_b * phi, rh - PI * s.c)
        };
        let td = big_a * big_a * s.d - 2.0 * big_a * big_b * s.c * e - big_b * big_b * e * e;
        let tdelta = big_a * s.delta - 2.0 * big_b * e;
        (t12, tdot, td.max(0.0), tdelta.max(0.0))
    }

    /// The branch-free atan2 and ReLU dual are the same functions as the branchy originals,
    /// bit for bit (up to the sign of a zero), over random magnitudes, ratios near 1, zeros,
    /// both signs of k12 and every angle regime.
    #[test]
    fn branch_free_forms_match_branchy_originals() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let same = |u: f64, v: f64| u.to_bits() == v.to_bits() || (u == 0.0 && v == 0.0);
        for k in 0..300_000 {
            let y: f64 = if k % 17 == 0 {
                0.0
            } else {
                10f64.powf(rng.gen_range(-20.0..20.0))
            };
            let x: f64 = match k % 4 {
                0 => 10f64.powf(rng.gen_range(-20.0..20.0)),
                1 => y * rng.gen_range(0.6..0.7),
                2 => y * rng.gen_range(1.0 / 0.7..1.0 / 0.6),
                _ => {
                    if k % 8 == 3 {
                        0.0
                    } else {
                        y * rng.gen_range(0.5..2.0)
                    }
                }
            };
            assert!(
                same(atan2_nonneg(y, x), atan2_nonneg_branchy(y, x)),
                "atan2({y:e}, {x:e})"
            );
            // A pair state with k12 = ±x, D = y², consistent k11, k22.
            let c = if k % 2 == 0 { x } else { -x };
            let ratio = 10f64.powf(rng.gen_range(-3.0..3.0));
            let r = (c * c + y * y).sqrt();
            let (q1, q2) = (r * ratio, r / ratio);
            let s = PairState {
                q1,
                q2,
                c,
                d: y * y,
                delta: (q1 + q2 - 2.0 * c).max(0.0),
            };
            for (a, b) in [(0.0, 1.0), (0.1, 1.0), (-0.5, 2.0), (1.0, 1.0)] {
                let got = relu_lane(&ReluConsts::new(a, b), s.c, s.d, s.delta, r);
                let want = relu_family_branchy(a, b, &s, r);
                assert!(
                    same(got.0, want.0)
                        && same(got.1, want.1)
                        && same(got.2, want.2)
                        && same(got.3, want.3),
                    "relu dual ({a}, {b}) at {s:?}: {got:?} vs {want:?}"
                );
            }
        }
    }
}
