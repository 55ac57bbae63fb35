//! `gbml advise`: design guidance from the theory on a user's own task set (issue 15).
//!
//! Above `mnk`, `maml` and `theory`, at the level of `experiments`, below `report`. One file per
//! section; [`advise`] runs them all on one task set and one MNK:
//!
//! * [`rates`]: outer rates from Φ's spectrum, inner rates from every task's Θ'.
//! * [`cv`]: "will meta-learning help?" — closed-form leave-one-task-out cross-validation of the
//!   MNK predictor vs the base learner G, paired interval, verdict; the complexity C beside it.
//! * [`groups`]: task affinity (pairwise held-out transfer through Φ), spectral clustering with the eigengap
//!   criterion, within-group vs pooled gain, tasks that hurt the others.
//! * [`examples`]: the Omniglot example (label-consistent vs random label order).
//! * [`width`]: empirical MNKs at small widths, c·width^(−½) fit, width for a tolerance.
//! * [`report`]: the text report (every number with how it was obtained).
//!
//! Everything except the width study is an infinite-width prediction.

pub mod cv;
pub mod examples;
pub mod groups;
pub mod rates;
pub mod report;
pub mod width;

use crate::error::Result;
use crate::mnk::{g_term, Mnk, TaskSet};
use serde::Serialize;

/// Options of [`advise`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdviseConfig {
    /// Ridge of the cross-validated predictor relative to the mean diagonal of Φ:
    /// ρ = ridge_rel · tr(Φ)/Σn.
    pub ridge_rel: f64,
    /// Force this number of groups instead of the eigengap choice.
    pub groups: Option<usize>,
    /// The width study (None: skipped).
    pub width: Option<width::WidthConfig>,
}

/// Default relative ridge of the cross-validation.
pub const RIDGE_REL: f64 = 1e-2;

impl Default for AdviseConfig {
    fn default() -> Self {
        AdviseConfig {
            ridge_rel: RIDGE_REL,
            groups: None,
            width: Some(width::WidthConfig::default()),
        }
    }
}

/// One group of the clustering with its within vs pooled comparison (or why there is none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub members: Vec<usize>,
    /// Mean affinity between the members (off-diagonal).
    pub mean_affinity: f64,
    pub gain: Option<groups::GroupGain>,
    /// Why `gain` is missing (e.g. too small to judge).
    pub note: Option<String>,
}

/// The whole advice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    pub n_tasks: usize,
    pub n_query: usize,
    pub outer: rates::LoopRates,
    pub inner: rates::InnerRates,
    /// The inner schedule of the MNK the advice was computed with.
    pub inner_schedule: crate::mnk::Schedule,
    pub cv: cv::Loto,
    pub complexity: cv::Complexity,
    /// Held-out transfer affinities a_ij ([`groups::affinity`]).
    pub affinity: Vec<Vec<f64>>,
    /// mean_{j ≠ i} a_ij per task.
    pub mean_affinity: Vec<f64>,
    pub clustering: groups::Clustering,
    pub groups: Vec<Group>,
    pub influence: groups::Influence,
    pub width: Option<width::WidthAdvice>,
    /// Why the width study is missing.
    pub width_note: Option<String>,
}

/// Run every section on `set` with `mnk` (module docs). Typed errors: fewer than
/// [`cv::MIN_TASKS`] tasks; a singular Φ + ρI; an unstable inner schedule.
pub fn advise(mnk: &Mnk, set: &TaskSet, cfg: &AdviseConfig) -> Result<Advice> {
    if set.len() < cv::MIN_TASKS {
        return Err(cv::too_few(set.len(), "cross-validate"));
    }
    let inner = rates::inner_rates(mnk, set)?;
    let ad = mnk.adapters(set)?;
    let phi = mnk.phi_with(set, &ad)?;
    let outer = rates::outer_rates(phi.view())?;
    let r = &set.query_y() - &g_term(set, &ad, None)?;
    let ridge = cfg.ridge_rel * phi.diag().sum() / phi.nrows() as f64;
    let qo = set.query_offsets().to_vec();
    let fit = cv::Fit::new(phi.view(), r, ridge, qo.clone())?;
    let loto = cv::loto(&fit)?;
    let complexity = cv::complexity(&fit, phi.view(), set, &ad)?;
    let a = groups::affinity(phi.view(), fit.r.view(), &qo, ridge)?;
    let n = set.len();
    let mean_aff = |m: &[usize], i: usize| {
        let o: Vec<f64> = m.iter().filter(|&&j| j != i).map(|&j| a[[i, j]]).collect();
        o.iter().sum::<f64>() / o.len().max(1) as f64
    };
    let all: Vec<usize> = (0..n).collect();
    let mean_affinity = (0..n).map(|i| mean_aff(&all, i)).collect();
    let clustering = groups::cluster(a.view(), cfg.groups)?;
    let groups = (0..clustering.k)
        .map(|g| {
            let members: Vec<usize> = (0..n).filter(|&i| clustering.labels[i] == g).collect();
            let ma =
                members.iter().map(|&i| mean_aff(&members, i)).sum::<f64>() / members.len() as f64;
            let res =
                groups::within_vs_pooled(phi.view(), &fit, &members, &loto.loss_g, &loto.loss_mnk);
            let (gain, note) = match res {
                Ok(gg) => (Some(gg), None),
                Err(e) => (None, Some(e.to_string())),
            };
            Group {
                members,
                mean_affinity: ma,
                gain,
                note,
            }
        })
        .collect();
    let influence = groups::influence(&fit, &loto.loss_mnk)?;
    let (width, width_note) = match &cfg.width {
        None => (None, Some("skipped".to_string())),
        Some(wc) => match width::width_advice(mnk, set, wc) {
            Ok(w) => (Some(w), None),
            Err(crate::Error::Unsupported(m)) => (None, Some(m)),
            Err(e) => return Err(e),
        },
    };
    Ok(Advice {
        n_tasks: n,
        n_query: set.n_query(),
        outer,
        inner,
        inner_schedule: mnk.inner,
        cv: loto,
        complexity,
        affinity: a.rows().into_iter().map(|r| r.to_vec()).collect(),
        mean_affinity,
        clustering,
        groups,
        influence,
        width,
        width_note,
    })
}
