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
//! | `depth_plus_one` / `depth_minus_one` | all | one hidden layer more / fewer (e.g. counting the readout as a layer) |
//! | `query_before_support_within_task` | stacked task sets, per_task layout | each task's rows read queries first, then support ([X_i; X'_i]) |
//! | `relu_prime_zero_half` | meta_gradient, meta_loss_trajectory, ReLU | ReLU'(0) = ½ (neural-tangents' `stax.Relu`, `jnp.maximum` at a tie) instead of 0 at exact zero pre-activations |
//! | `outer_gradient_flow_instead_of_steps` | predictions | the outer loop as gradient flow for ηt instead of t discrete steps (what the authors' formulas do) |
//!
//! **Two slips at once.** When no single alternative explains the candidate, every pair of
//! alternatives that edit different conventions is tried; a pair is named `a+b` only when it
//! explains the candidate and neither of its halves alone comes within the required digits of the
//! pair (otherwise the two cannot be told apart and nothing is named).
//!
//! **Diverging reference.** When our reference under the stated conventions diverges
//! ([`crate::Error::Diverged`], e.g. a mean-loss trajectory declared `sum` at a rate stable only
//! for the mean), [`explain_without_reference`] names the alternatives that reproduce the
//! candidate (at least the required digits; no margin can be measured).

use super::accuracy::{compare_arrays, Stats};
use super::manifest::{Layout, Loop, LossNorm, Manifest, Quantity, RidgeMode, F0};
use super::reference::{reference_with, Inputs, Precision};
use super::tolerance::Tolerance;
use crate::error::Result;
use crate::kernel::Parameterization;
use crate::maml::Order;
use crate::mnk::Variant;
use ndarray::{concatenate, s, ArrayD, Axis, Ix2};
use serde::Serialize;

/// Minimum digits an alternative must reach to explain a candidate (capped by the tolerance).
pub const DIAGNOSIS_MIN_DIGITS: f64 = 6.0;
/// How many digits better than the stated convention an alternative must be.
pub const DIAGNOSIS_MARGIN: f64 = 2.0;

/// One alternative convention under which the candidate matches.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Stable identifier (see the module table; `a+b` for two slips at once).
    pub name: String,
    /// Human-readable explanation.
    pub explanation: String,
    /// The candidate's minimum LRE against our value under this alternative.
    pub min_lre: f64,
}

/// Our value under an alternative convention.
pub struct Alternative {
    /// Stable identifier.
    pub name: String,
    /// What the candidate did.
    pub explanation: String,
    /// Our value under that convention.
    pub value: ArrayD<f64>,
}

type Apply = Box<dyn Fn(&mut Manifest, &mut Inputs)>;

/// One convention slip: how to restate the manifest / inputs so that our reference computes
/// what the candidate did.
pub struct Edit {
    /// Stable identifier.
    pub name: &'static str,
    /// What the candidate did.
    pub explanation: String,
    /// The convention it changes (two edits of the same convention are never combined).
    group: &'static str,
    apply: Apply,
}

impl Edit {
    fn new(
        name: &'static str,
        group: &'static str,
        explanation: impl Into<String>,
        apply: impl Fn(&mut Manifest, &mut Inputs) + 'static,
    ) -> Self {
        Edit {
            name,
            explanation: explanation.into(),
            group,
            apply: Box::new(apply),
        }
    }
}

/// Our value after applying `edits` in order; `None` if that alternative cannot be computed.
fn value_under(m: &Manifest, inputs: &Inputs, edits: &[&Edit]) -> Option<ArrayD<f64>> {
    let mut m2 = m.clone();
    let mut i2 = inputs.clone();
    for e in edits {
        (e.apply)(&mut m2, &mut i2);
    }
    // The f64 path: an alternative only has to be matched to DIAGNOSIS_MIN_DIGITS.
    reference_with(&m2, &i2, Precision::F64).ok()
}

/// Every input array holding points (rows), by role.
fn point_roles(q: Quantity) -> &'static [&'static str] {
    match q {
        Quantity::Nngp | Quantity::Ntk => &["x1", "x2"],
        _ => &["x", "test_x", "x_support"],
    }
}

/// Stacked per-task arrays whose rows follow the task layout.
const STACKED_ROLES: [&str; 6] = ["x", "y", "test_x", "test_y", "f0", "test_f0"];

/// Rows of every task block `[n queries; m support]` reordered to `[m support; n queries]`, so
/// that reading the result support-first reproduces a reader that took the queries first.
fn queries_first_within_task(a: &ArrayD<f64>, m: usize, n: usize) -> Option<ArrayD<f64>> {
    let a2 = a.view().into_dimensionality::<Ix2>().ok()?;
    let per = m + n;
    if per == 0 || !a2.nrows().is_multiple_of(per) {
        return None;
    }
    let mut blocks = Vec::new();
    for t in 0..a2.nrows() / per {
        let b = t * per;
        blocks.push(a2.slice(s![b + n..b + per, ..]));
        blocks.push(a2.slice(s![b..b + n, ..]));
    }
    concatenate(Axis(0), &blocks).ok().map(|r| r.into_dyn())
}

/// The slips of the architecture / kernel conventions (every quantity).
fn arch_edits(m: &Manifest, out: &mut Vec<Edit>) {
    let c = &m.conventions;
    match c.parameterization {
        Parameterization::Ntk => out.push(Edit::new(
            "standard_parameterization",
            "param",
            "computed in the standard parameterization, the manifest says ntk",
            |m2, _| m2.conventions.parameterization = Parameterization::Standard,
        )),
        Parameterization::Standard => out.push(Edit::new(
            "ntk_parameterization",
            "param",
            "computed in the NTK parameterization, the manifest says standard",
            |m2, _| m2.conventions.parameterization = Parameterization::Ntk,
        )),
    }
    // Missing 1/d: σ_w² x·x' instead of σ_w² x·x'/d equals our kernel on √d·x.
    let q = m.quantity;
    out.push(Edit::new(
        "missing_input_scaling_1_over_d",
        "input_scale",
        "first layer uses σ_w² x·x' without the 1/d input scaling",
        move |_, i2| {
            for role in point_roles(q) {
                if let Some(a) = i2.get_mut(*role) {
                    let d = a.shape().last().copied().unwrap_or(1) as f64;
                    a.mapv_inplace(|x| x * d.sqrt());
                }
            }
        },
    ));
    match q {
        Quantity::Ntk => out.push(Edit::new(
            "nngp_instead_of_ntk",
            "kind",
            "the NNGP kernel Σ was written where the NTK Θ was asked for",
            |m2, _| m2.quantity = Quantity::Nngp,
        )),
        Quantity::Nngp => out.push(Edit::new(
            "ntk_instead_of_nngp",
            "kind",
            "the NTK Θ was written where the NNGP kernel Σ was asked for",
            |m2, _| m2.quantity = Quantity::Ntk,
        )),
        _ => {}
    }
    match c.sigma_b {
        None => out.push(Edit::new(
            "zero_bias_instead_of_no_bias",
            "bias",
            "layers have a trainable bias with σ_b = 0 (neural-tangents b_std=0), the manifest \
             says no bias (sigma_b: null)",
            |m2, _| m2.conventions.sigma_b = Some(0.0),
        )),
        Some(0.0) => out.push(Edit::new(
            "no_bias_instead_of_zero_bias",
            "bias",
            "layers have no bias at all (b_std=None), the manifest says sigma_b = 0 (a trainable \
             zero-variance bias)",
            |m2, _| m2.conventions.sigma_b = None,
        )),
        _ => {}
    }
    // Depth off by one (a widths list follows: the last width repeated / dropped).
    out.push(Edit::new(
        "depth_plus_one",
        "depth",
        format!(
            "the network has {} hidden layers, the manifest says {} (depth off by one, e.g. the \
             readout counted as a hidden layer)",
            c.depth + 1,
            c.depth
        ),
        |m2, _| {
            let c2 = &mut m2.conventions;
            c2.depth += 1;
            if let Some(w) = c2.widths.as_mut() {
                if let Some(&l) = w.last() {
                    w.push(l);
                }
            }
        },
    ));
    if c.depth >= 1 {
        out.push(Edit::new(
            "depth_minus_one",
            "depth",
            format!(
                "the network has {} hidden layers, the manifest says {} (depth off by one)",
                c.depth - 1,
                c.depth
            ),
            |m2, _| {
                let c2 = &mut m2.conventions;
                c2.depth -= 1;
                if let Some(w) = c2.widths.as_mut() {
                    w.pop();
                }
            },
        ));
    }
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

/// Slips of the loss normalisation and of the stacked layout.
fn data_edits(m: &Manifest, out: &mut Vec<Edit>) {
    let c = &m.conventions;
    match c.loss {
        Some(LossNorm::Sum) => out.push(Edit::new(
            "mean_loss_instead_of_sum",
            "loss",
            "the loss is a mean over label entries (time scaled by 1/y.size, as in \
             neural-tangents' predict), the manifest says sum",
            |m2, _| m2.conventions.loss = Some(LossNorm::Mean),
        )),
        Some(LossNorm::Mean) => out.push(Edit::new(
            "sum_loss_instead_of_mean",
            "loss",
            "the loss is a sum (½‖f − y‖²), the manifest says mean",
            |m2, _| m2.conventions.loss = Some(LossNorm::Sum),
        )),
        None => {}
    }
    match c.layout {
        Some(Layout::PerTask) => {
            out.push(Edit::new(
                "queries_first_layout",
                "layout",
                "the stacked arrays were read queries-first ([X_1; …; X_N; X'_1; …; X'_N], the \
                 MetaNTK-NAS order), the manifest says per_task",
                |m2, _| m2.conventions.layout = Some(Layout::QueriesFirst),
            ));
            if let Some(shape) = c.task_shape {
                let (ms, nq) = (shape.support, shape.query);
                out.push(Edit::new(
                    "query_before_support_within_task",
                    "layout",
                    "within each task the query rows were read before the support rows ([X_i; \
                     X'_i]), the manifest says support first",
                    move |_, i2| {
                        for role in STACKED_ROLES {
                            if let Some(a) = i2.get(role) {
                                if let Some(p) = queries_first_within_task(a, ms, nq) {
                                    i2.insert(role.to_string(), p);
                                }
                            }
                        }
                    },
                ));
            }
        }
        Some(Layout::QueriesFirst) => out.push(Edit::new(
            "per_task_layout",
            "layout",
            "the stacked arrays were read per task ([X'_1; X_1; X'_2; X_2; …]), the manifest \
             says queries_first",
            |m2, _| m2.conventions.layout = Some(Layout::PerTask),
        )),
        None => {}
    }
}

/// Slips of the inner loop.
fn inner_edits(m: &Manifest, out: &mut Vec<Edit>) {
    let Some(inner) = m.conventions.inner else {
        return;
    };
    let mut flipped = inner;
    if flip_ridge_mode(&mut flipped) {
        let was_inverse_only = matches!(
            inner,
            Loop::Steps {
                ridge_mode: RidgeMode::InverseOnly,
                ..
            } | Loop::Flow {
                ridge_mode: RidgeMode::InverseOnly,
                ..
            }
        );
        let (name, expl) = if was_inverse_only {
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
        out.push(Edit::new(name, "inner", expl, move |m2, _| {
            m2.conventions.inner = Some(flipped)
        }));
    }
    if let Loop::Steps {
        lr,
        steps,
        ridge,
        ridge_mode,
    } = inner
    {
        if steps > 1 {
            out.push(Edit::new(
                "inner_time_lambda_instead_of_lambda_tau",
                "inner",
                format!(
                    "the inner loop ran for time λ = {lr} instead of λτ = {} (the rate was passed where the authors' code expects the time λτ)",
                    lr * steps as f64
                ),
                move |m2, _| {
                    m2.conventions.inner = Some(Loop::Flow {
                        time: lr,
                        ridge,
                        ridge_mode,
                    })
                },
            ));
        }
    }
    if let Some((flow, time, steps)) = steps_as_flow(inner) {
        out.push(Edit::new(
            "gradient_flow_instead_of_steps",
            "inner",
            format!(
                "the inner loop is gradient flow for time λτ = {time} instead of {steps} discrete steps"
            ),
            move |m2, _| m2.conventions.inner = Some(flow),
        ));
    }
}

/// A `steps` loop as gradient flow for the same total time (λτ or ηt): (flow, time, steps).
fn steps_as_flow(l: Loop) -> Option<(Loop, f64, usize)> {
    let Loop::Steps {
        lr,
        steps,
        ridge,
        ridge_mode,
    } = l
    else {
        return None;
    };
    let time = lr * steps as f64;
    Some((
        Loop::Flow {
            time,
            ridge,
            ridge_mode,
        },
        time,
        steps,
    ))
}

/// Slips of the outer loop.
fn outer_edits(m: &Manifest, out: &mut Vec<Edit>) {
    let Some(outer) = m.conventions.outer else {
        return;
    };
    let mut flipped = outer;
    if flip_ridge_mode(&mut flipped) {
        out.push(Edit::new(
            "outer_ridge_mode_swapped",
            "outer",
            "the outer-loop ridge was applied in the other place (exponent vs inverse only)",
            move |m2, _| m2.conventions.outer = Some(flipped),
        ));
    }
    if let Some((flow, time, steps)) = steps_as_flow(outer) {
        out.push(Edit::new(
            "outer_gradient_flow_instead_of_steps",
            "outer",
            format!(
                "the outer loop is gradient flow for time ηt = {time} instead of {steps} discrete steps (the authors' formulas)"
            ),
            move |m2, _| m2.conventions.outer = Some(flow),
        ));
    }
}

/// Slips of the meta-learning conventions (variant, order, f0).
fn meta_edits(m: &Manifest, out: &mut Vec<Edit>) {
    let c = &m.conventions;
    match c.variant.unwrap_or_default() {
        Variant::Maml => out.push(Edit::new(
            "anil_instead_of_maml",
            "variant",
            "the inner loop adapts only the readout (ANIL: inner kernel = NNGP), the manifest says MAML",
            |m2, _| m2.conventions.variant = Some(Variant::Anil),
        )),
        Variant::Anil => out.push(Edit::new(
            "maml_instead_of_anil",
            "variant",
            "the inner loop adapts all parameters (MAML: inner kernel = NTK), the manifest says ANIL",
            |m2, _| m2.conventions.variant = Some(Variant::Maml),
        )),
    }
    if matches!(
        m.quantity,
        Quantity::MetaGradient | Quantity::MetaLossTrajectory
    ) {
        match c.order.unwrap_or_default() {
            Order::Second => out.push(Edit::new(
                "first_order_instead_of_second_order",
                "order",
                "a first-order meta-gradient (FOMAML: the inner loop's Hessian terms dropped), the manifest says second order",
                |m2, _| m2.conventions.order = Some(Order::First),
            )),
            Order::First => out.push(Edit::new(
                "second_order_instead_of_first_order",
                "order",
                "the exact second-order meta-gradient, the manifest says first order",
                |m2, _| m2.conventions.order = Some(Order::Second),
            )),
        }
    }
    if matches!(
        m.quantity,
        Quantity::MetaGradient | Quantity::MetaLossTrajectory
    ) && c.activation.trim().eq_ignore_ascii_case("relu")
    {
        out.push(Edit::new(
            "relu_prime_zero_half",
            "relu_prime_zero",
            "ReLU'(0) = ½ at exact zero pre-activations (neural-tangents' stax.Relu, jnp.maximum \
             at a tie), the stated convention is ReLU'(0) = 0 (jax.nn.relu)",
            |m2, _| m2.conventions.relu_prime_zero_half = true,
        ));
    }
    if c.f0 == Some(F0::File) {
        out.push(Edit::new(
            "f0_zero_instead_of_file",
            "f0",
            "the network output at initialization was taken as 0 (centred network), the manifest gives f0 files",
            |m2, i2| {
                m2.conventions.f0 = Some(F0::Zero);
                i2.remove("f0");
                i2.remove("test_f0");
                m2.inputs.remove("f0");
                m2.inputs.remove("test_f0");
            },
        ));
    }
}

/// The convention slips that apply to the manifest's quantity.
pub fn edits(m: &Manifest) -> Vec<Edit> {
    let mut out = Vec::new();
    arch_edits(m, &mut out);
    if m.quantity.is_meta() {
        data_edits(m, &mut out);
        inner_edits(m, &mut out);
        outer_edits(m, &mut out);
        meta_edits(m, &mut out);
    }
    out
}

/// Our values under the single alternative conventions that apply to the manifest's quantity.
pub fn alternatives(m: &Manifest, inputs: &Inputs) -> Vec<Alternative> {
    edits(m)
        .iter()
        .filter_map(|e| {
            value_under(m, inputs, &[e]).map(|value| Alternative {
                name: e.name.into(),
                explanation: e.explanation.clone(),
                value,
            })
        })
        .collect()
}

/// Does `value` explain the candidate (≥ `need` digits and, when the stated convention's
/// digits are known, ≥ DIAGNOSIS_MARGIN better)?
fn explains(
    candidate: &ArrayD<f64>,
    value: &ArrayD<f64>,
    stated: Option<f64>,
    need: f64,
    floor: f64,
) -> Result<Option<f64>> {
    if value.shape() != candidate.shape() {
        return Ok(None);
    }
    let s = compare_arrays(candidate.view(), value.view(), floor)?;
    let better = stated.is_none_or(|l| s.min_lre >= l + DIAGNOSIS_MARGIN);
    Ok((s.min_lre >= need && better).then_some(s.min_lre))
}

/// Do two values coincide to `need` digits (the slips cannot be told apart on these inputs)?
fn coincide(a: &ArrayD<f64>, b: &ArrayD<f64>, need: f64, floor: f64) -> Result<bool> {
    Ok(a.shape() == b.shape() && compare_arrays(a.view(), b.view(), floor)?.min_lre >= need)
}

/// Pairs of slips of different conventions that explain the candidate, each distinguishable
/// from the reference and from both of its halves.
fn pair_diagnoses(
    m: &Manifest,
    inputs: &Inputs,
    candidate: &ArrayD<f64>,
    reference: Option<&ArrayD<f64>>,
    stated: Option<f64>,
    tol: &Tolerance,
) -> Result<Vec<Diagnosis>> {
    let need = tol.min_digits.min(DIAGNOSIS_MIN_DIGITS);
    let es = edits(m);
    let singles: Vec<Option<ArrayD<f64>>> =
        es.iter().map(|e| value_under(m, inputs, &[e])).collect();
    let mut out = Vec::new();
    for i in 0..es.len() {
        for j in i + 1..es.len() {
            if es[i].group == es[j].group {
                continue;
            }
            let Some(v) = value_under(m, inputs, &[&es[i], &es[j]]) else {
                continue;
            };
            let Some(lre) = explains(candidate, &v, stated, need, tol.floor)? else {
                continue;
            };
            let mut distinct = match reference {
                Some(r) => !coincide(&v, r, need, tol.floor)?,
                None => true,
            };
            for h in [&singles[i], &singles[j]].into_iter().flatten() {
                distinct &= !coincide(&v, h, need, tol.floor)?;
            }
            if distinct {
                out.push(Diagnosis {
                    name: format!("{}+{}", es[i].name, es[j].name),
                    explanation: format!(
                        "two slips at once: {}; and {}",
                        es[i].explanation, es[j].explanation
                    ),
                    min_lre: lre,
                });
            }
        }
    }
    Ok(out)
}

/// The alternatives that explain the candidate (skipping those that coincide with `reference`,
/// when known), else the pairs of slips that do, best first.
fn explained_by(
    m: &Manifest,
    inputs: &Inputs,
    alts: Vec<Alternative>,
    candidate: &ArrayD<f64>,
    reference: Option<&ArrayD<f64>>,
    stated: Option<f64>,
    tol: &Tolerance,
) -> Result<Vec<Diagnosis>> {
    let need = tol.min_digits.min(DIAGNOSIS_MIN_DIGITS);
    let mut out = Vec::new();
    for alt in alts {
        // Indistinguishable from the stated convention on these inputs: skip.
        if let Some(r) = reference {
            if coincide(&alt.value, r, need, tol.floor)? {
                continue;
            }
        }
        if let Some(l) = explains(candidate, &alt.value, stated, need, tol.floor)? {
            out.push(Diagnosis {
                name: alt.name,
                explanation: alt.explanation,
                min_lre: l,
            });
        }
    }
    if out.is_empty() {
        out = pair_diagnoses(m, inputs, candidate, reference, stated, tol)?;
    }
    out.sort_by(|a, b| b.min_lre.total_cmp(&a.min_lre));
    Ok(out)
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
    let mut alts = alternatives(m, inputs);
    // Transposed square output (non-square is handled by the shape check).
    if let Ok(r2) = reference.view().into_dimensionality::<Ix2>() {
        if r2.is_square() && r2 != r2.t() {
            alts.push(Alternative {
                name: "transposed".into(),
                explanation: "the output is stored transposed".into(),
                value: r2.t().to_owned().into_dyn(),
            });
        }
    }
    explained_by(
        m,
        inputs,
        alts,
        candidate,
        Some(reference),
        Some(stats.min_lre),
        tol,
    )
}

/// Diagnoses when our reference under the stated conventions could not be computed (it
/// diverged): the single slips, else the pairs, that reproduce the candidate to the required
/// digits.
pub fn explain_without_reference(
    m: &Manifest,
    inputs: &Inputs,
    candidate: &ArrayD<f64>,
    tol: &Tolerance,
) -> Result<Vec<Diagnosis>> {
    explained_by(
        m,
        inputs,
        alternatives(m, inputs),
        candidate,
        None,
        None,
        tol,
    )
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
