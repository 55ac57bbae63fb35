//! Figures of claim family 7: bound, C, the noise model's C and the test loss vs p.

use super::data::Family;
use super::maml_vs_mnk::{SineMaml, MAML_ACTIVATION};
use super::sweep::Point;
use super::NOISE;
use crate::checks::{CheckReport, Figure, Series, Style};

/// Per family at its smallest N: B, C, √(E[Q]/N) and the test loss vs p (sine also finite MAML
/// and the same-schedule MNK).
pub(super) fn noise_figures(
    fams: &[(Family, &Vec<usize>)],
    points: &[Point],
    sine: &SineMaml,
    rep: &mut CheckReport,
) {
    let SineMaml { width, steps, a, b } = sine;
    // Figures: per family, bound / C / error vs p (smallest N of the family, the MAML N).
    for (fam, ns) in fams {
        let n = ns[0];
        let sel: Vec<&Point> = points
            .iter()
            .filter(|p| p.family == *fam && p.n_tasks == n)
            .collect();
        let x: Vec<f64> = sel.iter().map(|p| p.noise).collect();
        let mut series = vec![
            Series::new(
                "§7 bound B",
                x.clone(),
                sel.iter().map(|p| p.bound.total).collect(),
                Style::Dashed,
            ),
            Series::new(
                "C = √(Q/N)",
                x.clone(),
                sel.iter().map(|p| p.complexity).collect(),
                Style::LineMarkers,
            ),
            Series::new(
                "C of the noise model, √(E[Q]/N)",
                x.clone(),
                sel.iter().map(|p| p.c_pred).collect(),
                Style::Dashed,
            ),
            Series::new(
                "test loss, MNK",
                x.clone(),
                sel.iter().map(|p| p.test_err).collect(),
                Style::LineMarkers,
            ),
        ];
        if fam.is_classification() {
            series.push(Series::new(
                "0-1 error, MNK",
                x.clone(),
                sel.iter()
                    .map(|p| p.test_err01.unwrap_or(f64::NAN))
                    .collect(),
                Style::LineMarkers,
            ));
        }
        if *fam == Family::Sine {
            series.push(Series::new(
                format!("test loss, {} MAML w = {width}", MAML_ACTIVATION.name()),
                NOISE.to_vec(),
                a.clone(),
                Style::Markers,
            ));
            series.push(Series::new(
                format!(
                    "test loss, {} MNK same η, T = {steps}",
                    MAML_ACTIVATION.name()
                ),
                NOISE.to_vec(),
                b.clone(),
                Style::Dashed,
            ));
        }
        rep.figures.push(Figure {
            id: format!("generalization_{}", fam.name()),
            title: format!(
                "Bound B, C and test loss vs label noise ({}, N = {n})",
                fam.name()
            ),
            x_label: "label-noise fraction p".into(),
            y_label: "B, C and test loss (loss = min(1, ‖ŷ − y‖))".into(),
            log_x: false,
            log_y: true,
            series,
        });
    }
}
