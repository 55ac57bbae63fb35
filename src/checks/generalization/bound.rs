//! `generalization.bound_value` (INFO): the §7 bound, vacuous for a loss capped at 1.

use super::sweep::Point;
use crate::checks::{fmt_num, CheckReport, ClaimResult};
use crate::theory::BoundConstants;

/// The §7 bound B over every setting, reported as INFO.
pub(super) fn push_bound_value(points: &[Point], rep: &mut CheckReport) {
    // (b) bound above the measured error.
    let ratio = points.iter().map(|p| p.max_ratio).fold(0.0f64, f64::max);
    let vacuous = points.iter().filter(|p| p.bound.total > 1.0).count();
    let min_bound = points
        .iter()
        .map(|p| p.bound.total)
        .fold(f64::INFINITY, f64::min);
    let consts = BoundConstants::default();
    rep.push(
        ClaimResult::at_most(
            "generalization.bound_value",
            "§7 bound B = √(aQ/N) + c√(log(N/(λ_min δ))/N), reported (INFO: vacuous when B > 1, \
             the bounded loss's range)",
            ratio,
            1.0,
        )
        .with_measured_text(format!(
            "B > 1 in {vacuous}/{} settings; min B = {}; max error/B = {}",
            points.len(),
            fmt_num(min_bound),
            fmt_num(ratio)
        ))
        .with_predicted("none (no honest non-vacuous form)")
        .with_note(format!(
            "INFO, not a claim: the loss is capped at 1 and B > 1 in every setting, so \
             'B ≥ error' cannot fail. Constants [reconstructed] a = {}, c = {}, δ = {} \
             (theory::BoundConstants); only Q, N and λ_min are measured. margin = log10(1/max \
             error/B) over every replicate",
            consts.complexity_factor, consts.c, consts.delta
        ))
        .as_info(),
    );
    if vacuous > 0 {
        rep.detail(format!(
            "The §7 bound exceeds 1 in {vacuous} of {} settings, i.e. it is vacuous for a loss \
             bounded by 1 there (it still lies above the error, trivially).",
            points.len()
        ));
    }
}
