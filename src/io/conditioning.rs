//! How sensitive each entry of a reference quantity is to f64 rounding, and therefore how many
//! digits a candidate must reach on it (docs/compare.md, "Conditioning-aware verdicts").
//!
//! Entry i of the reference r has an absolute **sensitivity scale** S_i: the magnitude an f64
//! evaluation's rounding error is proportional to (a backward-stable evaluation has error
//! ≈ c·ε·S_i). With d_i = max(|r_i|, floor·max|r|) the denominator of its LRE, the entry's
//! condition number is κ_i = max(1, S_i / d_i) and the candidate passes entry i iff
//!
//! ```text
//! LRE_i ≥ need_i = clamp(min(min_digits, BUDGET_DIGITS − log10 κ_i), 0, ·),
//! BUDGET_DIGITS = −log10(ULP_BUDGET · ε) ≈ 13.65,
//! ```
//!
//! i.e. `|c_i − r_i| ≤ max(10^−min_digits · d_i, ULP_BUDGET · ε · S_i)`: the tolerance table's
//! digits where the entry is well conditioned, and ULP_BUDGET ε-units of the entry's
//! sensitivity where it is not. S_i per quantity:
//!
//! | quantity | S_i | reported κ |
//! |---|---|---|
//! | nngp, ntk | √(K(x_i,x_i) K(x'_j,x'_j)) (Cauchy–Schwarz scale of the entry) | max_i κ_i |
//! | inner_operator_t | κ_T · max\|T\|, κ_T = ‖Θ'‖₂‖T‖₂ = λ_max(Θ')·max_k g(λ_k) | κ_T |
//! | mnk_gram, mnk_cross | max Θ(x,x) over the query points · (1 + max_tasks κ_T) | κ_Φ = S / max\|Φ\| |
//! | predictions, complexity | κ_Φ · (1 + κ_h) · max\|r\|, κ_h = ‖Φ‖₂‖h(Φ)‖₂ | κ_Φ (1 + κ_h) |
//! | meta_gradient, meta_loss_trajectory | d_i (no conditioning model: κ = 1) | 1 |

use super::manifest::{Manifest, Quantity};
use super::reference::{input2, input4, loss_scale, test_tasks, Inputs, MetaSetup};
use crate::error::Result;
use crate::kernel::{self, Arch, Layer, Parameterization, Spec};
use crate::linalg;
use crate::mnk::{BaseKernel, Mnk, Schedule, TaskSet, Variant};
use crate::tol::EPS;
use ndarray::{s, Array1, Array4, ArrayD, ArrayView2, Dimension};
use serde::Serialize;

/// ε-units of an entry's sensitivity an f64 evaluation (ours or the candidate's) may be off.
pub const ULP_BUDGET: f64 = 100.0;

/// `−log10(ULP_BUDGET · ε)`: the digits required of an entry with κ_i = 1 when the tolerance
/// table asks for more.
pub fn budget_digits() -> f64 {
    -(ULP_BUDGET * EPS).log10()
}

/// The sensitivity scales of a reference quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conditioning {
    /// The quantity's condition number (see the module table for its definition).
    pub kappa: f64,
    /// What `kappa` is, for the report.
    pub what: String,
    /// S_i per entry (`None`: the same S for every entry, `uniform`).
    #[serde(skip)]
    entrywise: Option<ArrayD<f64>>,
    #[serde(skip)]
    uniform: f64,
}

impl Conditioning {
    /// No conditioning model: S_i = d_i (κ_i = 1).
    pub fn unit(what: &str) -> Self {
        Conditioning {
            kappa: 1.0,
            what: what.into(),
            entrywise: None,
            uniform: 0.0,
        }
    }

    /// κ_i of entry `flat` (row-major index) with LRE denominator `den`.
    pub fn kappa_at(&self, flat: usize, den: f64) -> f64 {
        let s = match &self.entrywise {
            Some(a) => a.as_slice_memory_order().map_or(0.0, |v| v[flat]),
            None => self.uniform,
        };
        if den > 0.0 {
            (s / den).max(1.0)
        } else {
            1.0
        }
    }

    /// Digits required of entry `flat` (see the module docs).
    pub fn need_at(&self, flat: usize, den: f64, min_digits: f64) -> f64 {
        let k = self.kappa_at(flat, den);
        min_digits.min(budget_digits() - k.log10()).max(0.0)
    }
}

/// max_i K(x_i, x_i) of `which` (NNGP or NTK), row by row (1 × 1 Grams).
fn diag(arch: &Arch, x: ArrayView2<f64>, ntk: bool) -> Result<Array1<f64>> {
    (0..x.nrows())
        .map(|r| {
            let k = kernel::kernels(arch, x.slice(s![r..r + 1, ..]), None)?;
            Ok(if ntk { k.ntk[[0, 0]] } else { k.nngp[[0, 0]] })
        })
        .collect()
}

/// ‖K‖₂ · ‖g(K)‖₂ = λ_max(K) · max_k g(λ_k) of a PSD matrix and a schedule.
fn kappa_g(k: ArrayView2<f64>, g: &Schedule) -> Result<f64> {
    let w = linalg::sym_eigvals(k)?;
    let lmax = w.iter().fold(0.0f64, |m, &v| m.max(v));
    let gmax = w.iter().fold(0.0f64, |m, &v| m.max(g.g(v)));
    Ok(lmax * gmax)
}

fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// The conditioning of `reference`, the manifest's quantity on `inputs`.
pub fn conditioning(
    m: &Manifest,
    inputs: &Inputs,
    reference: &ArrayD<f64>,
) -> Result<Conditioning> {
    if let (Quantity::Nngp | Quantity::Ntk, Some(spec)) = (m.quantity, m.conventions.spec()?) {
        return conv_conditioning(m, inputs, &spec);
    }
    let arch = m.conventions.arch()?;
    match m.quantity {
        Quantity::Nngp | Quantity::Ntk => kernel_conditioning(m, inputs, &arch),
        Quantity::InnerOperatorT => {
            let xs = input2(inputs, "x_support")?;
            let c = &m.conventions;
            let scale = loss_scale(c.loss_for(m.quantity)?, input2(inputs, "y_support")?.len());
            let sched = c.inner_for(m.quantity)?.schedule(scale);
            let k = kernel::kernels(&arch, xs, None)?;
            let theta = match c.variant.unwrap_or_default() {
                Variant::Maml => k.ntk,
                Variant::Anil => k.nngp,
            };
            let kt = kappa_g(theta.view(), &sched)?;
            Ok(Conditioning {
                kappa: kt,
                what: "κ_T = ‖Θ'‖₂‖T‖₂".into(),
                entrywise: None,
                uniform: kt * max_abs(reference),
            })
        }
        Quantity::MnkGram | Quantity::MnkCross | Quantity::Predictions | Quantity::Complexity => {
            meta_conditioning(m, inputs, &arch, reference)
        }
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => Ok(Conditioning::unit(
            "no conditioning model for finite-network quantities: κ = 1",
        )),
    }
}

fn kernel_conditioning(m: &Manifest, inputs: &Inputs, arch: &Arch) -> Result<Conditioning> {
    let ntk = m.quantity == Quantity::Ntk;
    let x1 = input2(inputs, "x1")?;
    let d1 = diag(arch, x1, ntk)?;
    let d2 = match inputs.get("x2") {
        Some(_) => diag(arch, input2(inputs, "x2")?, ntk)?,
        None => d1.clone(),
    };
    let s = ndarray::Array2::from_shape_fn((d1.len(), d2.len()), |(i, j)| {
        (d1[i].abs() * d2[j].abs()).sqrt()
    });
    Ok(Conditioning {
        kappa: 1.0,
        what: "κ_ij = √(K_ii K'_jj) / |K_ij| (largest over entries)".into(),
        entrywise: Some(s.into_dyn()),
        uniform: 0.0,
    })
}

/// K(x_i, x_i) of every image of `x` under a conv spec (1 × 1 Grams).
fn conv_diag(spec: &Spec, x: &Array4<f64>, ntk: bool) -> Result<Array1<f64>> {
    (0..x.dim().0)
        .map(|r| {
            let k = kernel::conv::kernels(spec, x.slice(s![r..r + 1, .., .., ..]), None)?;
            Ok(if ntk { k.ntk[[0, 0]] } else { k.nngp[[0, 0]] })
        })
        .collect()
}

/// The sensitivity scales of a conv-kernel entry (docs/compare.md, "Conv kernels"):
/// S_ij = max(√(K_ii K'_jj), p · √(F_ii F'_jj)) · Π_avgpool K².
///
/// Conv layers, activations, dense layers and `flatten` combine pixel pairs at equal offsets,
/// where Cauchy–Schwarz bounds every term by √(k_pp k'_qq), so √(K_ii K'_jj) is the FC scale
/// again. `gap` averages *all* pixel pairs, which can cancel: its rounding scale is
/// mean_pq √(k_pp k'_qq) ≤ √(mean_p k_pp · mean_q k'_qq) (Jensen), i.e. the scale F of the same
/// spec with `gap` replaced by `flatten` (p = 1 in the NTK parameterization; p = the pixels
/// entering `gap` in the standard one, whose flatten readout has fan-in P·N instead of N). An
/// `avgpool:K` window on a nonnegative (ReLU-family) kernel satisfies pooled K_ii ≥ mean_p k_pp / K²,
/// hence the factor K² per pool (for a kernel with negative entries before a pool this factor is
/// an estimate, not a bound).
fn conv_conditioning(m: &Manifest, inputs: &Inputs, spec: &Spec) -> Result<Conditioning> {
    let ntk = m.quantity == Quantity::Ntk;
    let x1 = input4(inputs, "x1")?;
    let x2 = inputs.get("x2").map(|_| input4(inputs, "x2")).transpose()?;
    let scale = |spec: &Spec| -> Result<(Array1<f64>, Array1<f64>)> {
        let d1 = conv_diag(spec, &x1, ntk)?;
        let d2 = match &x2 {
            Some(x) => conv_diag(spec, x, ntk)?,
            None => d1.clone(),
        };
        Ok((d1, d2))
    };
    let (d1, d2) = scale(spec)?;
    let mut gap_scale = None;
    if let Some(g) = spec.layers.iter().position(|l| *l == Layer::Gap) {
        let (h, w) = (x1.dim().1, x1.dim().2);
        let pixels = match g {
            0 => h * w,
            _ => spec.shapes(h, w)?.get(g - 1).map_or(1, |(a, b)| a * b),
        };
        let mut flat = spec.clone();
        flat.layers[g] = Layer::Flatten;
        let p = match spec.parameterization {
            Parameterization::Ntk => 1.0,
            Parameterization::Standard => pixels as f64,
        };
        gap_scale = Some((scale(&flat)?, p));
    }
    let pools: f64 = spec
        .layers
        .iter()
        .map(|l| match l {
            Layer::AvgPool { k } => (k * k) as f64,
            _ => 1.0,
        })
        .product();
    let s = ndarray::Array2::from_shape_fn((d1.len(), d2.len()), |(i, j)| {
        let cs = (d1[i].abs() * d2[j].abs()).sqrt();
        let g = gap_scale
            .as_ref()
            .map_or(0.0, |((f1, f2), p)| p * (f1[i].abs() * f2[j].abs()).sqrt());
        cs.max(g) * pools
    });
    Ok(Conditioning {
        kappa: 1.0,
        what: "κ_ij = S_ij / |K_ij|, S_ij = max(√(K_ii K'_jj), p√(F_ii F'_jj)) · Π K²_pool \
               (conv scale, docs/compare.md)"
            .into(),
        entrywise: Some(s.into_dyn()),
        uniform: 0.0,
    })
}

/// max over tasks of κ_T and max Θ(x, x) over their query points.
fn task_scales(
    inner_ntk: bool,
    arch: &Arch,
    set: &TaskSet,
    inner: &Schedule,
) -> Result<(f64, f64)> {
    let mut kt = 0.0f64;
    let mut theta = 0.0f64;
    for t in set.tasks() {
        let k = kernel::kernels(arch, t.xs.view(), None)?;
        let ks = if inner_ntk { k.ntk } else { k.nngp };
        kt = kt.max(kappa_g(ks.view(), inner)?);
        theta = theta.max(diag(arch, t.xq.view(), true)?.fold(0.0f64, |a, &v| a.max(v)));
    }
    Ok((kt, theta))
}

fn meta_conditioning(
    m: &Manifest,
    inputs: &Inputs,
    arch: &Arch,
    reference: &ArrayD<f64>,
) -> Result<Conditioning> {
    let q = m.quantity;
    let c = &m.conventions;
    let setup = MetaSetup::new(m, inputs)?;
    let (layout, shape, inner, train) = (setup.layout, setup.shape, setup.inner, &setup.train);
    let variant = c.variant.unwrap_or_default();
    let inner_ntk = variant == Variant::Maml;
    let (mut kt, mut theta) = task_scales(inner_ntk, arch, train, &inner)?;
    if q == Quantity::MnkCross {
        let (kt2, th2) = task_scales(inner_ntk, arch, &test_tasks(inputs, layout, shape)?, &inner)?;
        kt = kt.max(kt2);
        theta = theta.max(th2);
    }
    let s_phi = theta * (1.0 + kt);
    if matches!(q, Quantity::MnkGram | Quantity::MnkCross) {
        let kappa = s_phi / max_abs(reference).max(f64::MIN_POSITIVE);
        return Ok(Conditioning {
            kappa,
            what: format!("κ_Φ = max Θ(x,x)·(1 + κ_T) / max|Φ| (κ_T = {kt:.2e})"),
            entrywise: None,
            uniform: s_phi,
        });
    }
    let mk = Mnk::new(BaseKernel::Analytic(arch.clone()), inner).with_variant(variant);
    let phi = mk.phi(train)?;
    let kappa_phi = (s_phi / phi.iter().fold(0.0f64, |a, v| a.max(v.abs()))).max(1.0);
    let outer = setup.outer(m)?;
    let kh = kappa_g(phi.view(), &outer)?;
    let kappa = kappa_phi * (1.0 + kh);
    Ok(Conditioning {
        kappa,
        what: format!("κ_Φ·(1 + κ_h), κ_Φ = {kappa_phi:.2e}, κ_h = ‖Φ‖₂‖h(Φ)‖₂ = {kh:.2e}"),
        entrywise: None,
        uniform: kappa * max_abs(reference),
    })
}

/// The entry closest to failing under the conditioning-aware rule, and the verdict's inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Requirement {
    /// The quantity's conditioning (κ and what it is).
    pub conditioning: Conditioning,
    /// Entry with the smallest margin LRE_i − need_i.
    pub index: Vec<usize>,
    /// Its LRE.
    pub lre: f64,
    /// Digits required of it.
    pub need: f64,
    /// Its κ_i.
    pub entry_kappa: f64,
    /// Every entry meets its requirement (and every candidate entry is finite).
    pub met: bool,
}

/// Judge `candidate` against `reference` entry by entry (shapes must agree; see the module
/// docs for the rule).
pub fn requirement(
    candidate: ndarray::ArrayViewD<f64>,
    reference: ndarray::ArrayViewD<f64>,
    floor: f64,
    min_digits: f64,
    mut cond: Conditioning,
) -> Requirement {
    use super::accuracy::{den_floor, entry_den, entry_lre};
    let fl = den_floor(reference.view(), floor);
    let mut worst: Option<(f64, Vec<usize>, f64, f64, f64)> = None;
    let mut max_kappa = 1.0f64;
    for (flat, ((idx, &r), &c)) in reference.indexed_iter().zip(candidate.iter()).enumerate() {
        let den = entry_den(r, fl);
        let lre = entry_lre(c, r, fl);
        let need = cond.need_at(flat, den, min_digits);
        max_kappa = max_kappa.max(cond.kappa_at(flat, den));
        // The margin uses the unclamped LRE and need, so that `met` is exactly
        // |c − r| ≤ max(10^−min_digits · d, ULP_BUDGET · ε · S) even where κ_i > 10^13.65
        // (there the clamped need is 0 and the clamped LRE ≥ 0 would accept any finite value).
        let margin = if c.is_finite() {
            let err = (c - r).abs();
            let raw_lre = if err == 0.0 {
                crate::tol::LRE_MAX
            } else {
                -(err / den).log10()
            };
            let raw_need = min_digits.min(budget_digits() - cond.kappa_at(flat, den).log10());
            raw_lre - raw_need
        } else {
            f64::NEG_INFINITY
        };
        if worst.as_ref().is_none_or(|w| margin < w.0) {
            worst = Some((
                margin,
                idx.slice().to_vec(),
                lre,
                need,
                cond.kappa_at(flat, den),
            ));
        }
    }
    if cond.entrywise.is_some() {
        // Entrywise scales: the reported κ is the largest κ_i.
        cond.kappa = max_kappa;
    }
    let (margin, index, lre, need, entry_kappa) =
        worst.unwrap_or((0.0, Vec::new(), crate::tol::LRE_MAX, 0.0, 1.0));
    Requirement {
        conditioning: cond,
        index,
        lre,
        need,
        entry_kappa,
        met: margin >= 0.0,
    }
}
