//! NNGP / NTK Gram matrices in double-double (MATH.md §1), rounded to f64 at the end.
//!
//! The same recursion as [`crate::kernel`] (Σ¹ = σ_w² x·x'/d + σ_b², Θ¹ = Σ¹ or, standard
//! parameterization, x·x' + [bias]; Σ^{h+1} = σ_w² T_φ(Σ^h) + σ_b²,
//! Θ^{h+1} = Σ^{h+1} + σ_w² Ṫ_φ(Σ^h) Θ^h, resp. n_h T_φ + [bias] + σ_w² Ṫ_φ Θ^h), carrying the
//! pair state (k11, k22, k12, D = k11 k22 − k12², Δ = k11 + k22 − 2k12) in [`Dd`] and
//! evaluating the duals of [`crate::kernel::Activation::dual`] (ReLU family through the angle
//! ψ = atan2(√D, |k12|) and E = √(k11 k22)(sin ψ − ψ cos ψ), erf through
//! atan2(2k12, √P), P = 1 + 2(k11 + k22) + 4D) with double-double atan2.
//!
//! First layer, exactly for the given f64 inputs: x·x', ‖x‖² by `Dot2`; when the Gram-entry
//! formulas for D or Δ cancel (nearly collinear rows, in either direction) they are recomputed
//! as `Δ = σ_w²‖x − x'‖²/d` (differences exact, squares in DD) and
//! `D = (σ_w²/d)² (‖x‖²‖x'‖² − (x·x')²) + (σ_w²σ_b²/d)‖x − x'‖²`, the wedge term from
//! r = x' − μx with μ an f64 (μ·x_i exact by TwoProd, so r is exact to 1e-48‖x'‖), a second such
//! step, and the invariant `‖x‖²‖r‖² − (x·r)²`.
//!
//! Accuracy: every operation carries ~1e-31 relative error, so an entry is faithful after
//! rounding unless the recursion amplifies rounding by more than ~1e14; the f64 path's ceiling
//! (1e-4-relative LeakyReLU entries of rows with norms 10 and 1e3: 12.4 digits) is far from
//! that. Measured against 50-digit mpmath: `tests/xprec_kernels.rs`. Not covered: inputs so small
//! that ‖x‖²‖x'‖² underflows (|x| ≲ 1e-75; the f64 path rescales them, this one does not, and
//! then reports what the f64 path would: such inputs are best rescaled by the caller).

use super::dd::{dot2, Dd};
use crate::error::{ensure_finite, Result};
use crate::kernel::{self, Activation, Arch, Kernels, Parameterization};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// Double-double NNGP and NTK Gram matrices.
#[derive(Clone, Debug)]
pub struct DdKernels {
    pub nngp: Array2<Dd>,
    pub ntk: Array2<Dd>,
}

impl DdKernels {
    /// Rounded to f64.
    pub fn to_f64(&self) -> Kernels {
        Kernels {
            nngp: self.nngp.mapv(Dd::to_f64),
            ntk: self.ntk.mapv(Dd::to_f64),
        }
    }
}

/// NNGP and NTK Gram matrices `K[i][j] = k(x1_i, x2_j)` (x2 = x1 when `None`): the same shape
/// and semantics as [`crate::kernel::kernels`], every value computed in double-double and rounded
/// to the nearest f64 (see the module docs for accuracy).
pub fn kernels(arch: &Arch, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>) -> Result<Kernels> {
    Ok(kernels_dd(arch, x1, x2)?.to_f64())
}

/// [`kernels`] without the final rounding (for the extended-precision MNK).
pub fn kernels_dd(
    arch: &Arch,
    x1: ArrayView2<f64>,
    x2: Option<ArrayView2<f64>>,
) -> Result<DdKernels> {
    validate(arch, x1, x2)?;
    // Row-major copies so that every row is a contiguous slice (no per-pair copies).
    let x1c = x1.as_standard_layout();
    let x2c = x2.as_ref().map(|x| x.as_standard_layout());
    let (x1, x2) = (x1c.view(), x2c.as_ref().map(|x| x.view()));
    let c = Consts::new(arch);
    let pts1 = Point::all(&c, arch, x1);
    let pts2 = x2.map(|x| Point::all(&c, arch, x));
    let sym = x2.is_none();
    let (n1, n2) = (x1.nrows(), x2.map_or(x1.nrows(), |x| x.nrows()));
    let job = Job {
        c: &c,
        arch,
        x1,
        x2,
        pts1: &pts1,
        pts2: pts2.as_deref(),
    };
    let rows: Vec<Vec<(Dd, Dd)>> = (0..n1)
        .into_par_iter()
        .map(|i| job.row(i, if sym { i + 1 } else { n2 }))
        .collect();
    let mut nngp = Array2::from_elem((n1, n2), Dd::ZERO);
    let mut ntk = Array2::from_elem((n1, n2), Dd::ZERO);
    for (i, r) in rows.into_iter().enumerate() {
        for (j, (s, t)) in r.into_iter().enumerate() {
            nngp[[i, j]] = s;
            ntk[[i, j]] = t;
            if sym {
                nngp[[j, i]] = s;
                ntk[[j, i]] = t;
            }
        }
    }
    ensure_finite(
        nngp.mapv(|v| v.hi).view(),
        "extended NNGP output (overflow)",
    )?;
    ensure_finite(ntk.mapv(|v| v.hi).view(), "extended NTK output (overflow)")?;
    Ok(DdKernels { nngp, ntk })
}

/// Everything the per-row evaluation needs.
struct Job<'a> {
    c: &'a Consts,
    arch: &'a Arch,
    x1: ArrayView2<'a, f64>,
    x2: Option<ArrayView2<'a, f64>>,
    pts1: &'a [Point],
    pts2: Option<&'a [Point]>,
}

impl Job<'_> {
    /// Entries (i, 0..ncol). Without the `fma` target feature every DD operation's
    /// `f64::mul_add` is a libm call; on x86-64 CPUs with AVX2 and FMA the same code runs compiled
    /// for them (FMA is exactly rounded either way: the same bits).
    fn row(&self, i: usize, ncol: usize) -> Vec<(Dd, Dd)> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the function is compiled for.
                return unsafe { self.row_fma(i, ncol) };
            }
        }
        self.row_generic(i, ncol)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_fma(&self, i: usize, ncol: usize) -> Vec<(Dd, Dd)> {
        self.row_generic(i, ncol)
    }

    /// A plain loop, not an iterator closure: a closure is its own function and does not inherit
    /// `row_fma`'s target features (measured: 20 % of an extended ReLU Gram in libm `fma` calls
    /// from the closure).
    #[inline(always)]
    fn row_generic(&self, i: usize, ncol: usize) -> Vec<(Dd, Dd)> {
        let same_input = self.x2.is_none();
        let mut out = Vec::with_capacity(ncol);
        for j in 0..ncol {
            let (pj, xj) = match (self.pts2, &self.x2) {
                (Some(p), Some(x)) => (&p[j], x.row(j)),
                _ => (&self.pts1[j], self.x1.row(j)),
            };
            out.push(pair(
                self.c,
                self.arch,
                self.x1.row(i),
                xj,
                &self.pts1[i],
                pj,
                same_input && i == j,
            ));
        }
        out
    }
}

/// Shapes, finiteness and range: the f64 path's own checks (architecture, d ≥ 1, equal d,
/// finiteness, variance range) run on the largest-norm row of each input, so both paths reject
/// the same inputs with the same messages.
fn validate(arch: &Arch, x1: ArrayView2<f64>, x2: Option<ArrayView2<f64>>) -> Result<()> {
    ensure_finite(x1, "kernel input X1")?;
    if let Some(x2) = x2 {
        ensure_finite(x2, "kernel input X2")?;
    }
    let biggest = |x: ArrayView2<f64>| {
        let k = (0..x.nrows())
            .max_by(|&a, &b| x.row(a).dot(&x.row(a)).total_cmp(&x.row(b).dot(&x.row(b))))
            .unwrap_or(0);
        x.slice(ndarray::s![k..(k + 1).min(x.nrows()), ..])
            .to_owned()
    };
    let b1 = biggest(x1);
    let b2 = x2.map(biggest);
    kernel::kernels(arch, b1.view(), b2.as_ref().map(|b| b.view()))?;
    Ok(())
}

/// Architecture constants in DD: σ_w², σ_b² (exact squares), and the ReLU-family A, B, ab
/// (also used per activation layer by the conv kernels, [`super::conv`]).
pub(crate) struct Consts {
    pub(crate) sw2: Dd,
    pub(crate) sb2: Dd,
    pub(crate) bias_one: f64,
    relu: Option<(Dd, Dd, Dd)>,
}

impl Consts {
    fn new(arch: &Arch) -> Consts {
        Consts::for_act(arch.sigma_w, arch.sigma_b, arch.activation)
    }

    /// The constants of weight/bias scales σ_w, σ_b and activation `act`.
    pub(crate) fn for_act(sigma_w: f64, sigma_b: Option<f64>, act: Activation) -> Consts {
        let ab = match act {
            Activation::Relu => Some((0.0, 1.0)),
            Activation::AbRelu { a, b } => Some((a, b)),
            _ => None,
        };
        Consts {
            sw2: Dd::prod(sigma_w, sigma_w),
            sb2: sigma_b.map_or(Dd::ZERO, |b| Dd::prod(b, b)),
            bias_one: if sigma_b.is_some() { 1.0 } else { 0.0 },
            relu: ab.map(|(a, b)| {
                let big_a = (Dd::prod(a, a) + Dd::prod(b, b)).mul_f64(0.5);
                let big_b = Dd::sum(a, -b).sqr() / Dd::PI.mul_f64(2.0);
                (big_a, big_b, Dd::prod(a, b))
            }),
        }
    }
}

/// Per-point layer quantities `(k11, T(k11, k11), √k11)` for h = 1..L, and ‖x‖².
struct Point {
    n2: Dd,
    chain: Vec<(Dd, Dd, Dd)>,
}

impl Point {
    fn all(c: &Consts, arch: &Arch, x: ArrayView2<f64>) -> Vec<Point> {
        let d = x.ncols() as f64;
        x.axis_iter(Axis(0))
            .into_par_iter()
            .map(|r| {
                let v = r.to_vec();
                let n2 = dot2(&v, &v);
                let mut q = c.sw2 * n2 / Dd::from_f64(d) + c.sb2;
                let chain = (0..arch.depth)
                    .map(|_| {
                        let t = diag_t(c, arch.activation, q);
                        let out = (q, t, q.sqrt());
                        q = c.sw2 * t + c.sb2;
                        out
                    })
                    .collect();
                Point { n2, chain }
            })
            .collect()
    }
}

/// `T(q, q)`: ReLU family A·q, erf (2/π) atan2(2q, √(1 + 4q)), identity q.
#[inline(always)]
pub(crate) fn diag_t(c: &Consts, act: Activation, q: Dd) -> Dd {
    match act {
        Activation::Identity => q,
        Activation::Relu | Activation::AbRelu { .. } => c.relu.expect("relu consts").0 * q,
        Activation::Erf => {
            let sp = q.mul_f64(4.0).add_f64(1.0).sqrt();
            two_over_pi() * q.mul_f64(2.0).atan2(sp)
        }
    }
}

/// 2/π in DD (0.6366197723675814 − 3.935735335036497e-17).
fn two_over_pi() -> Dd {
    Dd::TWO_OVER_PI
}

/// Pair state (k11, k22, k12, D, Δ) in DD.
#[derive(Clone, Copy)]
pub(crate) struct State {
    pub(crate) q1: Dd,
    pub(crate) q2: Dd,
    pub(crate) c: Dd,
    pub(crate) d: Dd,
    pub(crate) delta: Dd,
}

/// (NNGP, NTK) of one pair.
#[inline(always)]
fn pair(
    c: &Consts,
    arch: &Arch,
    x: ArrayView1<f64>,
    y: ArrayView1<f64>,
    px: &Point,
    py: &Point,
    same: bool,
) -> (Dd, Dd) {
    let (mut st, g) = first_layer(c, x, y, px.n2, py.n2, same);
    let mut theta = if arch.parameterization == Parameterization::Standard {
        g.add_f64(c.bias_one)
    } else {
        st.c
    };
    for h in 0..arch.depth {
        let (q1, t1, s1) = px.chain[h];
        let (_, t2, s2) = py.chain[h];
        debug_assert!(q1 == st.q1);
        let (t12, tdot, td, tdelta) = dual(c, arch.activation, &st, t1, t2, s1 * s2);
        let c_new = c.sw2 * t12 + c.sb2;
        theta = if arch.parameterization == Parameterization::Standard {
            t12.mul_f64(arch.widths[h] as f64).add_f64(c.bias_one) + c.sw2 * tdot * theta
        } else {
            c_new + c.sw2 * tdot * theta
        };
        st = State {
            q1: c.sw2 * t1 + c.sb2,
            q2: c.sw2 * t2 + c.sb2,
            c: c_new,
            d: (c.sw2.sqr() * td + c.sw2 * c.sb2 * tdelta).pos(),
            delta: (c.sw2 * tdelta).pos(),
        };
    }
    (st.c, theta)
}

/// First-layer state and the raw inner product x·x' (module docs).
#[inline(always)]
fn first_layer(
    c: &Consts,
    x: ArrayView1<f64>,
    y: ArrayView1<f64>,
    nx: Dd,
    ny: Dd,
    same: bool,
) -> (State, Dd) {
    let dim = Dd::from_f64(x.len() as f64);
    let (xs, ys) = (
        x.to_slice().expect("standard layout"),
        y.to_slice().expect("standard layout"),
    );
    let g = if same { nx } else { dot2(xs, ys) };
    let q1 = c.sw2 * nx / dim + c.sb2;
    let q2 = c.sw2 * ny / dim + c.sb2;
    if same {
        let st = State {
            q1,
            q2: q1,
            c: q1,
            d: Dd::ZERO,
            delta: Dd::ZERO,
        };
        return (st, g);
    }
    // A zero variance (zero row, no bias) forces k12 = 0, as in the f64 path.
    let cc = if q1.is_zero() || q2.is_zero() {
        Dd::ZERO
    } else {
        c.sw2 * g / dim + c.sb2
    };
    let mut st = State {
        q1,
        q2,
        c: cc,
        d: (q1 * q2 - cc.sqr()).pos(),
        delta: (q1 + q2 - cc.mul_f64(2.0)).pos(),
    };
    let cancels = st.d.hi <= 1e-2 * q1.hi * q2.hi || st.delta.hi <= 1e-2 * (q1.hi + q2.hi);
    if cancels {
        let diff2 = xs
            .iter()
            .zip(ys)
            .fold(Dd::ZERO, |a, (&u, &v)| a + Dd::sum(u, -v).sqr());
        let w = if nx >= ny {
            wedge(xs, ys, nx)
        } else {
            wedge(ys, xs, ny)
        };
        let s = c.sw2 / dim;
        st.d = (s.sqr() * w + s * c.sb2 * diff2).pos();
        st.delta = s * diff2;
    }
    (st, g)
}

/// `‖x‖²‖y‖² − (x·y)²` to DD relative accuracy for any angle (module docs).
#[inline(always)]
pub(crate) fn wedge(x: &[f64], y: &[f64], nx2: Dd) -> Dd {
    if nx2.is_zero() {
        return Dd::ZERO;
    }
    let mut r: Vec<Dd> = y.iter().map(|&v| Dd::from_f64(v)).collect();
    for _ in 0..2 {
        let xr = x
            .iter()
            .zip(&r)
            .fold(Dd::ZERO, |a, (&u, &v)| a + v.mul_f64(u));
        let mu = xr.hi / nx2.hi;
        for (ri, &u) in r.iter_mut().zip(x) {
            *ri = *ri - Dd::prod(mu, u);
        }
    }
    let xr = x
        .iter()
        .zip(&r)
        .fold(Dd::ZERO, |a, (&u, &v)| a + v.mul_f64(u));
    let rr = r.iter().fold(Dd::ZERO, |a, v| a + v.sqr());
    (nx2 * rr - xr.sqr()).pos()
}

/// `(T(k11,k12,k22), Ṫ, t1 t2 − t12², t1 + t2 − 2 t12)`; `r = √(k11 k22)`.
#[inline(always)]
pub(crate) fn dual(
    c: &Consts,
    act: Activation,
    s: &State,
    t1: Dd,
    t2: Dd,
    r: Dd,
) -> (Dd, Dd, Dd, Dd) {
    match act {
        Activation::Identity => (s.c, Dd::ONE, s.d, s.delta),
        Activation::Erf => {
            let p = (s.q1 + s.q2).mul_f64(2.0).add_f64(1.0) + s.d.mul_f64(4.0);
            let sp = p.sqrt();
            let t12 = two_over_pi() * s.c.mul_f64(2.0).atan2(sp);
            let tdot = two_over_pi().mul_f64(2.0) / sp;
            (
                t12,
                tdot,
                (t1 * t2 - t12.sqr()).pos(),
                (t1 + t2 - t12.mul_f64(2.0)).pos(),
            )
        }
        Activation::Relu | Activation::AbRelu { .. } => {
            relu_dual(c.relu.expect("relu consts"), s, r)
        }
    }
}

/// ReLU family, [`crate::kernel::Activation::dual`]'s formulas with ψ = atan2(√D, |k12|):
/// k12 ≥ 0: t12 = A k12 + B rh, Ṫ = A − Bψ, E = rh; k12 < 0: t12 = ab k12 + B rh,
/// Ṫ = ab + Bψ, E = rh − π k12; rh = r h(ψ) (series for ψ < ½) or √D − ψ|k12|;
/// `t1 t2 − t12² = A² D − 2AB k12 E − B² E²`, `t1 + t2 − 2t12 = A Δ − 2BE`.
#[inline(always)]
fn relu_dual((a, b, ab): (Dd, Dd, Dd), s: &State, r: Dd) -> (Dd, Dd, Dd, Dd) {
    let sd = s.d.sqrt();
    if sd.is_zero() && s.c.is_zero() {
        // k11 k22 = 0: θ = π/2.
        return (
            Dd::ZERO,
            a - b * Dd::FRAC_PI_2,
            Dd::ZERO,
            (a * s.delta).pos(),
        );
    }
    let neg = s.c.hi < 0.0;
    let ac = s.c.abs();
    let psi = sd.atan2(ac);
    let rh = if psi.hi < 0.5 {
        r * h_series(psi)
    } else {
        sd - psi * ac
    };
    let (t12, tdot, e) = if neg {
        (ab * s.c + b * rh, ab + b * psi, rh - Dd::PI * s.c)
    } else {
        (a * s.c + b * rh, a - b * psi, rh)
    };
    let td = a.sqr() * s.d - (a * b).mul_f64(2.0) * s.c * e - b.sqr() * e.sqr();
    let tdelta = a * s.delta - b.mul_f64(2.0) * e;
    (t12, tdot, td.pos(), tdelta.pos())
}

/// `sin ψ − ψ cos ψ = Σ_{k≥1} (−1)^{k+1} 2k ψ^{2k+1}/(2k+1)!` for 0 ≤ ψ < ½, 17 terms
/// (truncation < 1e-40 relative), Horner form in ψ²; coefficients computed once in DD by the
/// ratio c_{k+1}/c_k = −1/(2k(2k+3)), c_1 = 1/3.
#[inline(always)]
fn h_series(psi: Dd) -> Dd {
    static COEF: std::sync::OnceLock<[Dd; 17]> = std::sync::OnceLock::new();
    let coef = COEF.get_or_init(|| {
        let mut c = [Dd::ZERO; 17];
        c[0] = Dd::ONE / Dd::from_f64(3.0);
        for k in 1..17 {
            let kk = k as f64;
            c[k] = -c[k - 1] / Dd::from_f64(2.0 * kk * (2.0 * kk + 3.0));
        }
        c
    });
    let p2 = psi.sqr();
    let mut acc = coef[16];
    for &ck in coef[..16].iter().rev() {
        acc = acc * p2 + ck;
    }
    acc * p2 * psi
}
