//! Diagnosis of convention mistakes: when a candidate does not match our reference, recompute the
//! quantity under the usual alternative conventions and name those under which it matches.
//!
//! An alternative *explains* the candidate when the candidate's minimum LRE against it is at least
//! `min(tolerance.min_digits, DIAGNOSIS_MIN_DIGITS)` and at least [`DIAGNOSIS_MARGIN`] digits
//! better than against the stated convention. Alternatives that coincide with the reference (e.g.
//! "no bias" vs "σ_b = 0" in the NTK parameterization) cannot be told apart and are skipped.
//!
//! Alternatives tried (identifier: what the candidate did):
//!
//! | identifier | quantities | the candidate's convention |
//! |---|---|---|
//! | `standard_parameterization` / `ntk_parameterization` | all | the other parameterization (standard needs `widths`) |
//! | `missing_input_scaling_1_over_d` | all | first layer `σ_w² x·x'` without the 1/d (our value on inputs √d·x) |
//! | `nngp_instead_of_ntk` / `ntk_instead_of_nngp` | nngp, ntk | the other kernel |
//! | `zero_bias_instead_of_no_bias` / `no_bias_instead_of_zero_bias` | all | a trainable bias with σ_b = 0 vs no bias (differs in the standard parameterization) |
//! | `transposed` | 2-D outputs | the output stored transposed (e.g. Φ(train, test)); T itself is symmetric |
//! | `mean_loss_instead_of_sum` / `sum_loss_instead_of_mean` | task-set quantities | the other loss normalisation (time × 1/y.size) |
//! | `queries_first_layout` / `per_task_layout` | stacked task sets | the stacked arrays read in the other order |
//! | `ridge_in_exponent` / `ridge_not_in_exponent` | finite inner time with ridge | ridge also in (or not in) the exponent |
//! | `outer_ridge_mode_swapped` | predictions | the same for the outer loop |
//! | `inner_time_lambda_instead_of_lambda_tau` | inner steps, τ > 1 | inner time λ instead of λτ |
//! | `gradient_flow_instead_of_steps` | inner steps | gradient flow for λτ instead of τ discrete steps |
//! | `anil_instead_of_maml` / `maml_instead_of_anil` | task-set quantities | the other inner kernel |
//! | `f0_zero_instead_of_file` | predictions with f0 files | f0 ≡ 0 |
//! | `first_order_instead_of_second_order` / `second_order_instead_of_first_order` | meta_gradient, meta_loss_trajectory | the other meta-gradient order |

use super::accuracy::{compare_arrays, Stats};
use super::manifest::{Layout, Loop, LossNorm, Manifest, Quantity, RidgeMode, F0};
use super::reference::{reference, Inputs};
use super::tolerance::Tolerance;
use crate::error::Result;
use crate::kernel::Parameterization;
use crate::maml::Order;
use crate::mnk::Variant;
use ndarray::{ArrayD, Ix2};
use serde::Serialize;

/// Minimum digits an alternative must reach to explain a candidate (capped by the tolerance).
pub const DIAGNOSIS_MIN_DIGITS: f64 = 6.0;
/// How many digits better than the stated convention an alternative must be.
pub const DIAGNOSIS_MARGIN: f64 = 2.0;

/// One alternative convention under which the candidate matches.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Stable identifier (see the module table).
    pub name: String,
    /// Human-readable explanation.
    pub explanation: String,
    /// The candidate's minimum LRE against our value under this alternative.
    pub min_lre: f64,
}

/// Our value under an alternative convention.
pub struct Alternative {
    /// Stable identifier.
    pub name: &'static str,
    /// What the candidate did.
    pub explanation: String,
    /// Our value under that convention.
    pub value: ArrayD<f64>,
}

/// Recompute under a modified manifest / inputs; `None` if that alternative cannot be computed.
fn alt_with(
    m: &Manifest,
    inputs: &Inputs,
    edit: impl FnOnce(&mut Manifest, &mut Inputs),
) -> Option<ArrayD<f64>> {
    let mut m2 = m.clone();
    let mut i2 = inputs.clone();
    edit(&mut m2, &mut i2);
    reference(&m2, &i2).ok()
}

/// Every input array holding points (rows), by role.
fn point_roles(q: Quantity) -> &'static [&'static str] {
    match q {
        Quantity::Nngp | Quantity::Ntk => &["x1", "x2"],
        _ => &["x", "test_x", "x_support"],
    }
}

/// Our values under the alternative conventions that apply to the manifest's quantity.
pub fn alternatives(m: &Manifest, inputs: &Inputs) -> Vec<Alternative> {
    let mut out = Vec::new();
    let c = &m.conventions;
    // Parameterization.
    match c.parameterization {
        Parameterization::Ntk => {
            if let Some(v) = alt_with(m, inputs, |m2, _| {
                m2.conventions.parameterization = Parameterization::Standard
            }) {
                out.push(Alternative {
                    name: "standard_parameterization",
                    explanation: "computed in the standard parameterization, the manifest says ntk"
                        .into(),
                    value: v,
                });
            }
        }
        Parameterization::Standard => {
            if let Some(v) = alt_with(m, inputs, |m2, _| {
                m2.conventions.parameterization = Parameterization::Ntk
            }) {
                out.push(Alternative {
                    name: "ntk_parameterization",
                    explanation: "computed in the NTK parameterization, the manifest says standard"
                        .into(),
                    value: v,
                });
            }
        }
    }
    // Missing 1/d: σ_w² x·x' instead of σ_w² x·x'/d equals our kernel on √d·x.
    if let Some(v) = alt_with(m, inputs, |_, i2| {
        for role in point_roles(m.quantity) {
            if let Some(a) = i2.get_mut(*role) {
                let d = a.shape().last().copied().unwrap_or(1) as f64;
                a.mapv_inplace(|x| x * d.sqrt());
            }
        }
    }) {
        out.push(Alternative {
            name: "missing_input_scaling_1_over_d",
            explanation: "first layer uses σ_w² x·x' without the 1/d input scaling".into(),
            value: v,
        });
    }
    // The other kernel.
    match m.quantity {
        Quantity::Ntk => {
            if let Some(v) = alt_with(m, inputs, |m2, _| m2.quantity = Quantity::Nngp) {
                out.push(Alternative {
                    name: "nngp_instead_of_ntk",
                    explanation: "the NNGP kernel Σ was written where the NTK Θ was asked for"
                        .into(),
                    value: v,
                });
            }
        }
        Quantity::Nngp => {
            if let Some(v) = alt_with(m, inputs, |m2, _| m2.quantity = Quantity::Ntk) {
                out.push(Alternative {
                    name: "ntk_instead_of_nngp",
                    explanation: "the NTK Θ was written where the NNGP kernel Σ was asked for"
                        .into(),
                    value: v,
                });
            }
        }
        _ => {}
    }
    // Bias convention.
    match c.sigma_b {
        None => {
            if let Some(v) = alt_with(m, inputs, |m2, _| m2.conventions.sigma_b = Some(0.0)) {
                out.push(Alternative {
                    name: "zero_bias_instead_of_no_bias",
                    explanation: "layers have a trainable bias with σ_b = 0 (neural-tangents \
                                  b_std=0), the manifest says no bias (sigma_b: null)"
                        .into(),
                    value: v,
                });
            }
        }
        Some(b) if b == 0.0 => {
            if let Some(v) = alt_with(m, inputs, |m2, _| m2.conventions.sigma_b = None) {
                out.push(Alternative {
                    name: "no_bias_instead_of_zero_bias",
                    explanation: "layers have no bias at all (b_std=None), the manifest says \
                                  sigma_b = 0 (a trainable zero-variance bias)"
                        .into(),
                    value: v,
                });
            }
        }
        _ => {}
    }
    if m.quantity.is_meta() {
        meta_alternatives(m, inputs, &mut out);
    }
    out
}

fn flip_ridge_mode(l: &mut Loop) -> bool {
    match l {
        Loop::Steps {
            ridge, ridge_mode, ..
        }
        | Loop::Flow {
            ridge, ridge_mode, ..
        } if *ridge > 0.0 => {
            *ridge_mode = match *ridge_mode {
                RidgeMode::InverseOnly => RidgeMode::InverseAndExponent,
                RidgeMode::InverseAndExponent => RidgeMode::InverseOnly,
            };
            true
        }
        _ => false,
    }
}

/// Alternatives of the task-set quantities.
fn meta_alternatives(m: &Manifest, inputs: &Inputs, out: &mut Vec<Alternative>) {
    let c = &m.conventions;
    let mut push = |name: &'static str, explanation: String, v: Option<ArrayD<f64>>| {
        if let Some(value) = v {
            out.push(Alternative {
                name,
                explanation,
                value,
            });
        }
    };
    // Loss normalisation.
    match c.loss {
        Some(LossNorm::Sum) => push(
            "mean_loss_instead_of_sum",
            "the loss is a mean over label entries (time scaled by 1/y.size, as in \
             neural-tangents' predict), the manifest says sum"
                .into(),
            alt_with(m, inputs, |m2, _| {
                m2.conventions.loss = Some(LossNorm::Mean)
            }),
        ),
        Some(LossNorm::Mean) => push(
            "sum_loss_instead_of_mean",
            "the loss is a sum (½‖f − y‖²), the manifest says mean".into(),
            alt_with(m, inputs, |m2, _| m2.conventions.loss = Some(LossNorm::Sum)),
        ),
        None => {}
    }
    // Layout of the stacked arrays.
    match c.layout {
        Some(Layout::PerTask) => push(
            "queries_first_layout",
            "the stacked arrays were read queries-first ([X_1; …; X_N; X'_1; …; X'_N], the \
             MetaNTK-NAS order), the manifest says per_task"
                .into(),
            alt_with(m, inputs, |m2, _| {
                m2.conventions.layout = Some(Layout::QueriesFirst)
            }),
        ),
        Some(Layout::QueriesFirst) => push(
            "per_task_layout",
            "the stacked arrays were read per task ([X'_1; X_1; X'_2; X_2; …]), the manifest \
             says queries_first"
                .into(),
            alt_with(m, inputs, |m2, _| {
                m2.conventions.layout = Some(Layout::PerTask)
            }),
        ),
        None => {}
    }
    // Ridge in the exponent (inner or outer loop).
    if let Some(mut inner) = c.inner {
        let was = match inner {
            Loop::Steps { ridge_mode, .. } | Loop::Flow { ridge_mode, .. } => Some(ridge_mode),
            Loop::Infinite { .. } => None,
        };
        if flip_ridge_mode(&mut inner) {
            let (name, expl) = if was == Some(RidgeMode::InverseOnly) {
                (
                    "ridge_in_exponent",
                    "the inner-loop ridge was applied in the exponent too ((Θ'+ρI)⁻¹(I − e^{−s(Θ'+ρI)})), the manifest says inverse only",
                )
            } else {
                (
                    "ridge_not_in_exponent",
                    "the inner-loop ridge was applied in the inverse only ((Θ'+ρI)⁻¹(I − e^{−sΘ'}), the authors' code), the manifest says inverse and exponent",
                )
            };
            push(
                name,
                expl.into(),
                alt_with(m, inputs, |m2, _| m2.conventions.inner = Some(inner)),
            );
        }
        // Inner time λ instead of λτ.
        if let Loop::Steps {
            lr,
            steps,
            ridge,
            ridge_mode,
        } = inner
        {
            if steps > 1 {
                push(
                    "inner_time_lambda_instead_of_lambda_tau",
                    format!(
                        "the inner loop ran for time λ = {lr} instead of λτ = {} (the rate was passed where the authors' code expects the time λτ)",
                        lr * steps as f64
                    ),
                    alt_with(m, inputs, |m2, _| {
                        m2.conventions.inner = Some(Loop::Flow {
                            time: lr,
                            ridge,
                            ridge_mode,
                        })
                    }),
                );
            }
            push(
                "gradient_flow_instead_of_steps",
                format!(
                    "the inner loop is gradient flow for time λτ = {} instead of {steps} discrete steps",
                    lr * steps as f64
                ),
                alt_with(m, inputs, |m2, _| {
                    m2.conventions.inner = Some(Loop::Flow {
                        time: lr * steps as f64,
                        ridge,
                        ridge_mode,
                    })
                }),
            );
        }
    }
    if let Some(mut outer) = c.outer {
        if flip_ridge_mode(&mut outer) {
            push(
                "outer_ridge_mode_swapped",
                "the outer-loop ridge was applied in the other place (exponent vs inverse only)"
                    .into(),
                alt_with(m, inputs, |m2, _| m2.conventions.outer = Some(outer)),
            );
        }
    }
    // Variant.
    match c.variant.unwrap_or_default() {
        Variant::Maml => push(
            "anil_instead_of_maml",
            "the inner loop adapts only the readout (ANIL: inner kernel = NNGP), the manifest says MAML".into(),
            alt_with(m, inputs, |m2, _| m2.conventions.variant = Some(Variant::Anil)),
        ),
        Variant::Anil => push(
            "maml_instead_of_anil",
            "the inner loop adapts all parameters (MAML: inner kernel = NTK), the manifest says ANIL".into(),
            alt_with(m, inputs, |m2, _| m2.conventions.variant = Some(Variant::Maml)),
        ),
    }
    // Meta-gradient order.
    if matches!(
        m.quantity,
        Quantity::MetaGradient | Quantity::MetaLossTrajectory
    ) {
        match c.order.unwrap_or_default() {
            Order::Second => push(
                "first_order_instead_of_second_order",
                "a first-order meta-gradient (FOMAML: the inner loop's Hessian terms dropped), the manifest says second order".into(),
                alt_with(m, inputs, |m2, _| m2.conventions.order = Some(Order::First)),
            ),
            Order::First => push(
                "second_order_instead_of_first_order",
                "the exact second-order meta-gradient, the manifest says first order".into(),
                alt_with(m, inputs, |m2, _| m2.conventions.order = Some(Order::Second)),
            ),
        }
    }
    // f0.
    if c.f0 == Some(F0::File) {
        push(
            "f0_zero_instead_of_file",
            "the network output at initialization was taken as 0 (centred network), the manifest gives f0 files".into(),
            alt_with(m, inputs, |m2, i2| {
                m2.conventions.f0 = Some(F0::Zero);
                i2.remove("f0");
                i2.remove("test_f0");
                m2.inputs.remove("f0");
                m2.inputs.remove("test_f0");
            }),
        );
    }
}

/// The diagnoses of a mismatching candidate (see the module docs for the rule).
pub fn diagnose(
    m: &Manifest,
    inputs: &Inputs,
    candidate: &ArrayD<f64>,
    reference: &ArrayD<f64>,
    stats: &Stats,
    tol: &Tolerance,
) -> Result<Vec<Diagnosis>> {
    let need = tol.min_digits.min(DIAGNOSIS_MIN_DIGITS);
    let mut out = Vec::new();
    let mut alts = alternatives(m, inputs);
    // Transposed square output (non-square is handled by the shape check).
    if let Ok(r2) = reference.view().into_dimensionality::<Ix2>() {
        if r2.is_square() && r2 != r2.t() {
            alts.push(Alternative {
                name: "transposed",
                explanation: "the output is stored transposed".into(),
                value: r2.t().to_owned().into_dyn(),
            });
        }
    }
    for alt in alts {
        if alt.value.shape() != reference.shape() {
            continue;
        }
        // Indistinguishable from the stated convention on these inputs: skip.
        let same = compare_arrays(alt.value.view(), reference.view(), tol.floor)?;
        if same.min_lre >= need {
            continue;
        }
        let s = compare_arrays(candidate.view(), alt.value.view(), tol.floor)?;
        if s.min_lre >= need && s.min_lre >= stats.min_lre + DIAGNOSIS_MARGIN {
            out.push(Diagnosis {
                name: alt.name.into(),
                explanation: alt.explanation,
                min_lre: s.min_lre,
            });
        }
    }
    out.sort_by(|a, b| b.min_lre.total_cmp(&a.min_lre));
    Ok(out)
}

/// Diagnosis for a candidate whose shape is the transpose of the reference's.
pub fn transposed(
    candidate: &ArrayD<f64>,
    reference: &ArrayD<f64>,
    tol: &Tolerance,
) -> Result<Option<Diagnosis>> {
    let r2 = reference.view().into_dimensionality::<Ix2>().ok();
    let Some(r2) = r2 else { return Ok(None) };
    let rt = r2.t().to_owned().into_dyn();
    let s = compare_arrays(candidate.view(), rt.view(), tol.floor)?;
    let need = tol.min_digits.min(DIAGNOSIS_MIN_DIGITS);
    Ok((s.min_lre >= need).then(|| Diagnosis {
        name: "transposed".into(),
        explanation: format!(
            "the output has shape {:?}, the transpose of the expected {:?}, and matches the transposed reference",
            candidate.shape(),
            reference.shape()
        ),
        min_lre: s.min_lre,
    }))
}
