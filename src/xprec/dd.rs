//! Double-double arithmetic: a value is the unevaluated sum `hi + lo` of two f64 with
//! `|lo| ≤ ½ ulp(hi)`, about 106 significant bits (≈ 32 digits).
//!
//! Why our own and not a crate: `twofloat` (the maintained Rust double-double crate) documents
//! its mathematical functions as "preliminary" without error bounds, and we need stated
//! accuracy for exactly four operations beyond + − × ÷ √: atan2, expm1, log1p and a small-angle
//! series. The error-free transformations are the textbook ones (Knuth's TwoSum, Dekker's
//! FastTwoSum, TwoProd by one FMA; Ogita–Rump–Oishi `Dot2`), the arithmetic follows the QD
//! library (Hida, Li, Bailey 2001; "accurate" addition, division with two correction steps).
//! Relative error bounds (u_dd = 2⁻¹⁰⁴ ≈ 4.9e-32, "≲" = small integer multiple):
//! add/sub ≲ 2 u_dd, mul ≲ 4 u_dd, div ≲ 4 u_dd, sqrt ≲ 4 u_dd, atan2 ≲ 8 u_dd (one Newton
//! step from libm's f64 value, quadratic convergence), expm1/log1p ≲ 30 u_dd. The unit tests
//! below check these against exact rational identities; the end-to-end accuracy is checked
//! against mpmath in `tests/xprec_*.rs`.
//!
//! Range: like f64, but the low part underflows for |hi| ≲ 1e-292 (then a value carries only
//! its hi part's precision).

use std::cmp::Ordering;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A double-double number `hi + lo`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dd {
    pub hi: f64,
    pub lo: f64,
}

/// `(s, e)` with `s = fl(a + b)`, `s + e = a + b` exactly (Knuth).
#[inline(always)]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// [`two_sum`] assuming `|a| ≥ |b|` (or a = 0) (Dekker).
#[inline(always)]
pub fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// `(p, e)` with `p = fl(a·b)`, `p + e = a·b` exactly (one FMA).
#[inline(always)]
pub fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };
    pub const ONE: Dd = Dd { hi: 1.0, lo: 0.0 };
    /// π = 3.141592653589793116 + 1.2246467991473532e-16.
    pub const PI: Dd = Dd {
        hi: std::f64::consts::PI,
        lo: 1.2246467991473532e-16,
    };
    /// π/2.
    pub const FRAC_PI_2: Dd = Dd {
        hi: std::f64::consts::FRAC_PI_2,
        lo: 6.123233995736766e-17,
    };

    /// 2/π.
    pub const TWO_OVER_PI: Dd = Dd {
        hi: std::f64::consts::FRAC_2_PI,
        lo: -3.935735335036497e-17,
    };

    /// An exact f64.
    #[inline(always)]
    pub const fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    /// The exact sum `a + b` of two f64.
    #[inline(always)]
    pub fn sum(a: f64, b: f64) -> Dd {
        let (hi, lo) = two_sum(a, b);
        Dd { hi, lo }
    }

    /// The exact product `a·b` of two f64.
    #[inline(always)]
    pub fn prod(a: f64, b: f64) -> Dd {
        let (hi, lo) = two_prod(a, b);
        Dd { hi, lo }
    }

    /// Round to the nearest f64 (the normalised hi part; faithful in all cases).
    #[inline(always)]
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    #[inline(always)]
    fn norm(hi: f64, lo: f64) -> Dd {
        let (hi, lo) = fast_two_sum(hi, lo);
        Dd { hi, lo }
    }

    /// `self + b` for an f64 b.
    #[inline(always)]
    pub fn add_f64(self, b: f64) -> Dd {
        let (s, e) = two_sum(self.hi, b);
        Dd::norm(s, e + self.lo)
    }

    /// `self · b` for an f64 b.
    #[inline(always)]
    pub fn mul_f64(self, b: f64) -> Dd {
        let (p, e) = two_prod(self.hi, b);
        Dd::norm(p, self.lo.mul_add(b, e))
    }

    /// `self²`.
    #[inline(always)]
    pub fn sqr(self) -> Dd {
        let (p, e) = two_prod(self.hi, self.hi);
        Dd::norm(p, (2.0 * self.hi).mul_add(self.lo, e))
    }

    #[inline(always)]
    pub fn abs(self) -> Dd {
        if self.hi < 0.0 || (self.hi == 0.0 && self.lo < 0.0) {
            -self
        } else {
            self
        }
    }

    /// `max(self, 0)`.
    #[inline(always)]
    pub fn pos(self) -> Dd {
        if self.hi > 0.0 {
            self
        } else {
            Dd::ZERO
        }
    }

    pub fn is_zero(self) -> bool {
        self.hi == 0.0
    }

    pub fn is_finite(self) -> bool {
        self.hi.is_finite() && self.lo.is_finite()
    }

    /// `√self` (0 for self ≤ 0): Karp–Markstein, one Newton step from the f64 root.
    #[inline(always)]
    pub fn sqrt(self) -> Dd {
        if self.hi <= 0.0 {
            return Dd::ZERO;
        }
        let x = 1.0 / self.hi.sqrt();
        let ax = self.hi * x;
        let r = self - Dd::prod(ax, ax);
        Dd::sum(ax, r.hi * (x * 0.5)).refine_sqrt(self)
    }

    /// One more Newton step `s + (a − s²)/(2s)` (makes √ accurate to a few u_dd even when the
    /// first step's f64 correction is rounded).
    #[inline(always)]
    fn refine_sqrt(self, a: Dd) -> Dd {
        let r = a - self.sqr();
        self + Dd::from_f64(r.hi / (2.0 * self.hi))
    }

    /// `atan2(self, x)` for any signs (atan2(0, 0) = 0): libm's f64 angle z, then one Newton
    /// step `z + atan(δ)`, δ = (y cos z − x sin z)/(x cos z + y sin z) (|δ| ≲ 1e-16, so
    /// atan δ = δ to 1e-48), with cos z, sin z from [`sin_cos`]. Relative accuracy is kept for
    /// small angles (the numerator is then ≈ y·(angle error), every term carries relative error).
    #[inline(always)]
    pub fn atan2(self, x: Dd) -> Dd {
        let y = self;
        if y.is_zero() && x.is_zero() {
            return Dd::ZERO;
        }
        let z = y.hi.atan2(x.hi);
        let (s, c) = sin_cos(Dd::from_f64(z));
        let num = y * c - x * s;
        let den = x * c + y * s;
        Dd::from_f64(z) + num / den
    }
}

/// `(sin z, cos z)` for |z| ≤ π (all we need: angles from atan2): reduce by k·π/2, k ∈ {−2..2},
/// to |t| ≤ π/4, then t/8 (|t/8| ≤ 0.1) by Taylor series to 1e-35 relative, then three
/// double-angle steps.
#[inline(always)]
pub fn sin_cos(z: Dd) -> (Dd, Dd) {
    let k = (z.hi / std::f64::consts::FRAC_PI_2).round();
    let t = z - Dd::FRAC_PI_2.mul_f64(k);
    let u = t.mul_f64(0.125);
    let u2 = u.sqr();
    // sin u = u Σ (−u²)^j/(2j+1)!, cos u = Σ (−u²)^j/(2j)!, j ≤ 9.
    // Horner form with the DD coefficients (−1)^j/(2j+1)! and (−1)^j/(2j)!, computed once.
    static COEF: std::sync::OnceLock<([Dd; 10], [Dd; 10])> = std::sync::OnceLock::new();
    let (sc, cc) = COEF.get_or_init(|| {
        let (mut sc, mut cc) = ([Dd::ONE; 10], [Dd::ONE; 10]);
        for j in 1..10 {
            let j2 = 2.0 * j as f64;
            sc[j] = -sc[j - 1] / Dd::from_f64(j2 * (j2 + 1.0));
            cc[j] = -cc[j - 1] / Dd::from_f64(j2 * (j2 - 1.0));
        }
        (sc, cc)
    });
    let (mut s, mut c) = (sc[9], cc[9]);
    for j in (0..9).rev() {
        s = s * u2 + sc[j];
        c = c * u2 + cc[j];
    }
    let mut s = s * u;
    for _ in 0..3 {
        let s2 = (s * c).mul_f64(2.0);
        c = Dd::ONE - s.sqr().mul_f64(2.0);
        s = s2;
    }
    match (k as i64).rem_euclid(4) {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `e^x − 1` with relative accuracy for every x ≤ 0 (and moderate x > 0): halve x until
/// |x/2^k| < 2⁻¹⁰, Taylor series (8 terms, truncation < 1e-36 relative), then k doublings
/// `e(2y) − 1 = (e − 1)(e − 1 + 2)`.
pub fn expm1(x: Dd) -> Dd {
    if x.is_zero() {
        return Dd::ZERO;
    }
    if x.hi < -80.0 {
        // e^x < 1e-34: −1 + e^x, with e^x below the last digit of −1 in DD.
        return Dd::from_f64(-1.0);
    }
    let mut k = 0;
    let mut y = x;
    while y.hi.abs() >= 1.0 / 1024.0 {
        y = y.mul_f64(0.5);
        k += 1;
    }
    // Σ_{n=1}^{9} y^n/n!
    let mut term = y;
    let mut e = y;
    for n in 2..=9 {
        term = term * y / Dd::from_f64(n as f64);
        e = e + term;
    }
    for _ in 0..k {
        e = e * (e.add_f64(2.0));
    }
    e
}

/// `ln(1 + x)` for x > −1: Newton on [`expm1`] from libm's `ln_1p` (one step doubles the
/// digits): `y ← y − (e^y − 1 − x)/e^y`.
pub fn log1p(x: Dd) -> Dd {
    let y = Dd::from_f64(x.hi.ln_1p());
    let em = expm1(y);
    y - (em - x) / em.add_f64(1.0)
}

impl Add for Dd {
    type Output = Dd;
    /// QD's accurate ("IEEE") addition.
    #[inline(always)]
    fn add(self, b: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, b.hi);
        let (t1, t2) = two_sum(self.lo, b.lo);
        let (s1, s2) = fast_two_sum(s1, s2 + t1);
        Dd::norm(s1, s2 + t2)
    }
}

impl Sub for Dd {
    type Output = Dd;
    #[inline(always)]
    fn sub(self, b: Dd) -> Dd {
        self + (-b)
    }
}

impl Neg for Dd {
    type Output = Dd;
    #[inline(always)]
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Mul for Dd {
    type Output = Dd;
    #[inline(always)]
    fn mul(self, b: Dd) -> Dd {
        let (p, e) = two_prod(self.hi, b.hi);
        let e = self.hi.mul_add(b.lo, self.lo.mul_add(b.hi, e));
        Dd::norm(p, e)
    }
}

impl Div for Dd {
    type Output = Dd;
    /// QD's accurate division: three quotient digits.
    #[inline(always)]
    fn div(self, b: Dd) -> Dd {
        let q1 = self.hi / b.hi;
        let r = self - b.mul_f64(q1);
        let q2 = r.hi / b.hi;
        let r = r - b.mul_f64(q2);
        let q3 = r.hi / b.hi;
        Dd::norm(q1, q2).add_f64(q3)
    }
}

impl PartialOrd for Dd {
    fn partial_cmp(&self, o: &Dd) -> Option<Ordering> {
        match self.hi.partial_cmp(&o.hi) {
            Some(Ordering::Equal) => self.lo.partial_cmp(&o.lo),
            r => r,
        }
    }
}

/// `Σ x_i y_i` to double-double accuracy (Ogita–Rump–Oishi `Dot2`, eight independent lanes so
/// the loop vectorizes): error ≤ u_dd-level·|Σ| + γ²_n Σ|x_i y_i|, i.e. as if computed in twice
/// the working precision and then rounded to DD.
///
/// Without the `fma` target feature `f64::mul_add` is a libm call; on x86-64 CPUs with AVX2 and
/// FMA the same code is run compiled for them (hardware FMA, vectorized lanes). FMA is exactly
/// rounded either way, so both give the same bits.
pub fn dot2(x: &[f64], y: &[f64]) -> Dd {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { dot2_avx2(x, y) };
        }
    }
    dot2_generic(x, y)
}

/// [`dot2_generic`]'s eight lanes as two AVX2 vectors of four: the same operations on the same
/// lanes in the same order (FMA for the product error, Knuth's TwoSum), so the same bits; the
/// compiler does not vectorize the generic loop itself (measured: scalar `vmulsd`/`vaddsd` with
/// stack spills, 70 % of an extended Gram).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot2_avx2(x: &[f64], y: &[f64]) -> Dd {
    use std::arch::x86_64::*;
    const L: usize = 8;
    let chunks = x.len().min(y.len()) / L;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let mut s = [_mm256_setzero_pd(); 2];
    let mut c = [_mm256_setzero_pd(); 2];
    for k in 0..chunks {
        for h in 0..2 {
            let off = k * L + 4 * h;
            // SAFETY: off + 4 ≤ chunks·L ≤ len of both slices.
            let (a, b) = (_mm256_loadu_pd(xp.add(off)), _mm256_loadu_pd(yp.add(off)));
            let p = _mm256_mul_pd(a, b);
            let pe = _mm256_fmsub_pd(a, b, p);
            let t = _mm256_add_pd(s[h], p);
            let bb = _mm256_sub_pd(t, s[h]);
            let te = _mm256_add_pd(
                _mm256_sub_pd(s[h], _mm256_sub_pd(t, bb)),
                _mm256_sub_pd(p, bb),
            );
            s[h] = t;
            c[h] = _mm256_add_pd(c[h], _mm256_add_pd(pe, te));
        }
    }
    let (mut sl, mut cl) = ([0.0f64; L], [0.0f64; L]);
    for h in 0..2 {
        _mm256_storeu_pd(sl.as_mut_ptr().add(4 * h), s[h]);
        _mm256_storeu_pd(cl.as_mut_ptr().add(4 * h), c[h]);
    }
    dot2_finish(&sl, &cl, &x[chunks * L..], &y[chunks * L..])
}

#[inline(always)]
fn dot2_generic(x: &[f64], y: &[f64]) -> Dd {
    const L: usize = 8;
    let mut s = [0.0f64; L];
    let mut c = [0.0f64; L];
    let (xc, yc) = (x.chunks_exact(L), y.chunks_exact(L));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xa, ya) in xc.zip(yc) {
        let xa: &[f64; L] = xa.try_into().expect("chunk");
        let ya: &[f64; L] = ya.try_into().expect("chunk");
        for l in 0..L {
            let (p, pe) = two_prod(xa[l], ya[l]);
            let (t, te) = two_sum(s[l], p);
            s[l] = t;
            c[l] += pe + te;
        }
    }
    dot2_finish(&s, &c, xr, yr)
}

/// The lanes summed in DD in lane order, then the remainder products: shared by both paths.
#[inline(always)]
fn dot2_finish(s: &[f64; 8], c: &[f64; 8], xr: &[f64], yr: &[f64]) -> Dd {
    let mut acc = Dd::ZERO;
    for l in 0..8 {
        acc = acc + Dd::sum(s[l], c[l]);
    }
    for (&a, &b) in xr.iter().zip(yr) {
        acc = acc + Dd::prod(a, b);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: Dd, b: Dd) -> f64 {
        ((a - b).to_f64() / b.to_f64()).abs()
    }

    /// (1/3)·3 = 1, √2² = 2, 10/7·7 = 10 to u_dd-level; the 2/π constant is 2/π.
    #[test]
    fn arithmetic_identities() {
        assert!(rel(Dd::TWO_OVER_PI, Dd::from_f64(2.0) / Dd::PI) < 1e-31);
        let third = Dd::ONE / Dd::from_f64(3.0);
        assert!(rel(third * Dd::from_f64(3.0), Dd::ONE) < 1e-31);
        let r2 = Dd::from_f64(2.0).sqrt();
        assert!(rel(r2.sqr(), Dd::from_f64(2.0)) < 1e-31);
        let q = Dd::from_f64(10.0) / Dd::from_f64(7.0);
        assert!(rel(q * Dd::from_f64(7.0), Dd::from_f64(10.0)) < 1e-31);
        // √(1e-200) and √(x) for x with a low part.
        let x = Dd::sum(1.0, 1e-20);
        assert!(rel(x.sqrt().sqr(), x) < 1e-31);
    }

    /// atan2 against exact angles: atan2(1, 1) = π/4, atan2(√3, 1) = π/3, atan2(1, √3) = π/6,
    /// atan2(1, 0) = π/2, atan2(0, −1) = π, and tiny angles atan2(t, 1) = t − t³/3 + ….
    #[test]
    fn atan2_exact_angles() {
        let pi = Dd::PI;
        let one = Dd::ONE;
        let r3 = Dd::from_f64(3.0).sqrt();
        assert!(rel(one.atan2(one), pi.mul_f64(0.25)) < 1e-31);
        assert!(rel(r3.atan2(one), pi / Dd::from_f64(3.0)) < 1e-31);
        assert!(rel(one.atan2(r3), pi / Dd::from_f64(6.0)) < 1e-31);
        assert!(rel(one.atan2(Dd::ZERO), Dd::FRAC_PI_2) < 1e-31);
        assert!(rel(Dd::ZERO.atan2(-one), pi) < 1e-31);
        assert!(rel((-one).atan2(-one), pi.mul_f64(-0.75)) < 1e-31);
        let t = Dd::from_f64(1e-9);
        let want = t - t * t * t / Dd::from_f64(3.0);
        assert!(rel(t.atan2(one), want) < 1e-31);
    }

    /// expm1(ln 2) = 1 through log1p(1) = ln 2, expm1(−x) for tiny x, and e^{−1}·e = 1.
    #[test]
    fn expm1_log1p_roundtrip() {
        let ln2 = log1p(Dd::ONE);
        assert!(rel(expm1(ln2), Dd::ONE) < 1e-30);
        let x = Dd::from_f64(1e-20);
        let want = -x + x * x * Dd::from_f64(0.5);
        assert!(rel(expm1(-x), want) < 1e-31);
        let em = expm1(Dd::from_f64(-1.0)).add_f64(1.0);
        let ep = expm1(Dd::ONE).add_f64(1.0);
        assert!(rel(em * ep, Dd::ONE) < 1e-30);
        assert!(rel(log1p(Dd::from_f64(-0.5)), -ln2) < 1e-30);
    }

    /// The dispatched Dot2 (hardware FMA, vectorized) gives the generic path's bits.
    #[test]
    fn dot2_dispatch_same_bits() {
        let x: Vec<f64> = (0..1001)
            .map(|i| ((i * 7919) % 1013) as f64 / 17.0 - 29.0)
            .collect();
        let y: Vec<f64> = (0..1001)
            .map(|i| ((i * 104729) % 997) as f64 / 13.0 - 37.0)
            .collect();
        let (a, b) = (dot2(&x, &y), dot2_generic(&x, &y));
        assert_eq!(
            (a.hi.to_bits(), a.lo.to_bits()),
            (b.hi.to_bits(), b.lo.to_bits())
        );
    }

    /// The AVX2 intrinsics and the generic lanes agree bit for bit on every length (remainders
    /// 0–7, no full chunk, many chunks) and on entries spread over 60 binades of both signs.
    #[test]
    fn dot2_avx2_lanes_same_bits_as_generic() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let m = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            m * 2f64.powi((state % 61) as i32 - 30)
        };
        for n in (0..=41).chain([784, 1001]) {
            let x: Vec<f64> = (0..n).map(|_| next()).collect();
            let y: Vec<f64> = (0..n).map(|_| next()).collect();
            let (a, b) = (dot2(&x, &y), dot2_generic(&x, &y));
            assert_eq!(
                (a.hi.to_bits(), a.lo.to_bits()),
                (b.hi.to_bits(), b.lo.to_bits()),
                "n = {n}"
            );
        }
    }

    /// Dot2 is exact on a cancelling sum whose naive f64 value is 0.
    #[test]
    fn dot2_cancelling() {
        let x = [1e16, 1.0, -1e16, 3.0];
        let y = [1.0, 1.0, 1.0, 1.0 / 3.0];
        let d = dot2(&x, &y);
        assert_eq!(d.to_f64(), 2.0);
    }
}
