//! The noise sweep of claim family 7: per (family, N, p) and replicate, C, the §7 bound and the
//! test losses of the infinite-time MNK predictor, of G alone and of the constant predictor.

use super::data::{train_test, Family};
use super::noise_model::{expected_q, family_k, label_moments, replacement_energy};
use super::{bounded_loss, NOISE};
use crate::checks::stats::spearman;
use crate::checks::{fmt_num, CheckReport, Settings};
use crate::error::{Error, Result};
use crate::mnk::data::Omniglot;
use crate::mnk::{self, predict_from, BaseKernel, Mnk, Schedule, TaskSet};
use crate::theory::{self, BoundConstants};
use ndarray::Array2;

/// Everything measured in one setting.
#[derive(Clone, Debug)]
pub(super) struct Point {
    pub(super) family: Family,
    pub(super) n_tasks: usize,
    pub(super) noise: f64,
    pub(super) complexity: f64,
    pub(super) bound: theory::BoundValue,
    pub(super) lambda_min: f64,
    pub(super) condition: f64,
    pub(super) test_err: f64,
    /// 0-1 error (classification only).
    pub(super) test_err01: Option<f64>,
    /// Bounded test loss of the base learner G alone (inner loop from f0 = 0, no meta-training).
    pub(super) base_err: f64,
    /// 0-1 error of G alone (classification only).
    pub(super) base_err01: Option<f64>,
    /// Per-replicate bounded test loss of G alone (aggregated points).
    pub(super) base_reps: Vec<f64>,
    /// Bounded test loss of the constant predictor 0 (control).
    pub(super) zero_err: f64,
    /// Per-replicate loss of the constant predictor (aggregated points).
    pub(super) zero_reps: Vec<f64>,
    /// Largest error/bound ratio over the replicates (for aggregated points).
    pub(super) max_ratio: f64,
    /// Number of replicate draws averaged.
    pub(super) reps: usize,
    /// Per-replicate C (aggregated points).
    pub(super) c_reps: Vec<f64>,
    /// Per-replicate test loss (aggregated points).
    pub(super) err_reps: Vec<f64>,
    /// Q = tr(Ỹᵀ Φ⁻¹ Ỹ).
    pub(super) q: f64,
    /// (S_f, tr M) of the clean labels (measured at p = 0 only, else NaN).
    pub(super) moments: (f64, f64),
    /// E[Q | inputs, clean labels] at this p ([`expected_q`]; filled in after the p = 0 point).
    pub(super) q_pred: f64,
    /// Per-replicate √(E[Q]/N) (aggregated points: their mean is the predicted C curve).
    pub(super) c_pred: f64,
}

/// Mean of the replicate points of one setting (C, bound terms, errors, λ_min, κ are averaged;
/// `max_ratio` is the maximum over the replicates).
pub(super) fn aggregate(raw: &[Point]) -> Point {
    let r = raw.len() as f64;
    let mean = |f: &dyn Fn(&Point) -> f64| raw.iter().map(f).sum::<f64>() / r;
    let opt = |f: &dyn Fn(&Point) -> Option<f64>| {
        raw[0]
            .test_err01
            .map(|_| raw.iter().map(|p| f(p).unwrap_or(f64::NAN)).sum::<f64>() / r)
    };
    Point {
        family: raw[0].family,
        n_tasks: raw[0].n_tasks,
        noise: raw[0].noise,
        complexity: mean(&|p| p.complexity),
        bound: theory::BoundValue {
            complexity_term: mean(&|p| p.bound.complexity_term),
            confidence_term: mean(&|p| p.bound.confidence_term),
            total: mean(&|p| p.bound.total),
        },
        lambda_min: mean(&|p| p.lambda_min),
        condition: mean(&|p| p.condition),
        test_err: mean(&|p| p.test_err),
        test_err01: opt(&|p| p.test_err01),
        base_err: mean(&|p| p.base_err),
        base_err01: opt(&|p| p.base_err01),
        base_reps: raw.iter().map(|p| p.base_err).collect(),
        zero_err: mean(&|p| p.zero_err),
        zero_reps: raw.iter().map(|p| p.zero_err).collect(),
        max_ratio: raw
            .iter()
            .map(|p| p.test_err / p.bound.total)
            .fold(0.0f64, f64::max),
        reps: raw.len(),
        c_reps: raw.iter().map(|p| p.complexity).collect(),
        err_reps: raw.iter().map(|p| p.test_err).collect(),
        q: mean(&|p| p.q),
        moments: (mean(&|p| p.moments.0), mean(&|p| p.moments.1)),
        q_pred: mean(&|p| p.q_pred),
        c_pred: mean(&|p| (p.q_pred / p.n_tasks as f64).sqrt()),
    }
}

pub(super) struct Sizes {
    pub(super) sine_n: Vec<usize>,
    pub(super) gp_n: Vec<usize>,
    pub(super) omni_n: Vec<usize>,
    pub(super) omni_fixed_n: Vec<usize>,
    pub(super) test_tasks: usize,
}

/// Inner-loop time λτ (gradient flow) of the main experiment: long enough for the inner loop to
/// fit each task's support (see the module docs for why).
pub const INNER_TIME: f64 = 10.0;

/// The MNK of a family with inner schedule `inner`.
pub(super) fn family_mnk(fam: Family, inner: Schedule) -> Mnk {
    Mnk::new(BaseKernel::Analytic(fam.arch()), inner)
}

/// One setting: C, bound, test error of the infinite-time MNK predictor.
pub(super) fn measure(
    fam: Family,
    inner: Schedule,
    train: &TaskSet,
    test: &TaskSet,
    consts: &BoundConstants,
    want_moments: bool,
) -> Result<Point> {
    let mnk = family_mnk(fam, inner);
    let ar = mnk.adapters(train)?;
    let at = mnk.adapters(test)?;
    let g_train = mnk::g_term(train, &ar, None)?;
    let g_test = mnk::g_term(test, &at, None)?;
    let phi = mnk.phi_with(train, &ar)?;
    let cross = mnk.cross_with(test, &at, train, &ar)?;
    let y = train.query_y();
    let y_eff = &y - &g_train;
    let q = theory::quadratic_form_inv(phi.view(), y_eff.view())?;
    let n = train.len();
    let (pred, _, spec) = predict_from(
        phi.view(),
        cross.view(),
        y.view(),
        g_train.view(),
        g_test.view(),
        &Schedule::infinite(),
    )?;
    let yt = test.query_y();
    let test_err = bounded_loss(pred.view(), yt.view());
    let test_err01 = fam
        .is_classification()
        .then(|| 1.0 - mnk::accuracy(pred.view(), yt.view()));
    let base_err = bounded_loss(g_test.view(), yt.view());
    let base_err01 = fam
        .is_classification()
        .then(|| 1.0 - mnk::accuracy(g_test.view(), yt.view()));
    let moments = if want_moments {
        label_moments(phi.view(), &ar, train)?
    } else {
        (f64::NAN, f64::NAN)
    };
    Ok(Point {
        family: fam,
        n_tasks: n,
        noise: 0.0,
        complexity: (q / n as f64).sqrt(),
        bound: theory::generalization_bound(q, n, spec.lambda_min, consts)?,
        lambda_min: spec.lambda_min,
        condition: spec.condition,
        test_err,
        test_err01,
        base_err,
        base_err01,
        base_reps: Vec::new(),
        zero_err: bounded_loss(Array2::<f64>::zeros(yt.raw_dim()).view(), yt.view()),
        zero_reps: Vec::new(),
        max_ratio: 0.0,
        reps: 1,
        c_reps: Vec::new(),
        err_reps: Vec::new(),
        q,
        moments,
        q_pred: f64::NAN,
        c_pred: f64::NAN,
    })
}

/// Base seed of replicate `r` of the `ni`-th N of a family.
pub(super) fn seed_of(seed: u64, fam: Family, ni: usize, r: usize) -> u64 {
    seed.wrapping_add(1_000_003 * fam.stream())
        .wrapping_add(10_007 * ni as u64)
        .wrapping_add(7_919 * r as u64)
}

/// The sweep: replicate-mean points of every (family, N, p), the weak-inner-loop diagnostic
/// points and the random-order Omniglot accuracy points (clean labels).
#[allow(clippy::type_complexity)]
pub(super) fn run(
    st: &Settings,
    sizes: &Sizes,
    fams: &[(Family, &Vec<usize>)],
    reps: usize,
    consts: &BoundConstants,
    omni: &Omniglot,
) -> Result<(Vec<Point>, Vec<Point>, Vec<Point>)> {
    let total: usize = (fams
        .iter()
        .map(|(_, v)| v.len() * NOISE.len())
        .sum::<usize>()
        + sizes.omni_n.len())
        * reps;
    let pb = st.bar(total as u64, "MNK: C, bound, test error");
    let mut points: Vec<Point> = Vec::new();
    // Diagnostic: the same sweep with a weak inner loop (one step at the family's λ).
    let mut weak: Vec<Point> = Vec::new();
    for (fam, ns) in fams.iter() {
        let e_r = replacement_energy(fam.noise_kind(), family_k(*fam));
        for (ni, &n) in ns.iter().enumerate() {
            let mut raw: Vec<Vec<Point>> = vec![Vec::new(); NOISE.len()];
            let mut raw_weak: Vec<Vec<Point>> = vec![Vec::new(); NOISE.len()];
            let with_weak = ni == 0 && !fam.is_classification();
            for r in 0..reps {
                let base = seed_of(st.seed, *fam, ni, r);
                let mut clean: Option<(f64, (f64, f64))> = None;
                for (pi, &p) in NOISE.iter().enumerate() {
                    let (train, test) = train_test(*fam, n, sizes.test_tasks, p, base, Some(omni))?;
                    let mut pt = measure(
                        *fam,
                        Schedule::flow(INNER_TIME),
                        &train,
                        &test,
                        consts,
                        p == 0.0,
                    )?;
                    pt.noise = p;
                    if p == 0.0 {
                        clean = Some((pt.q, pt.moments));
                    }
                    let (q_f, (s_f, tr_m)) = clean.ok_or_else(|| {
                        Error::Unsupported("the noise levels must start at p = 0".into())
                    })?;
                    pt.q_pred = expected_q(p, q_f, s_f, tr_m, e_r);
                    raw[pi].push(pt);
                    if with_weak {
                        let mut pw = measure(
                            *fam,
                            Schedule::steps(fam.inner_lr(), 1),
                            &train,
                            &test,
                            consts,
                            false,
                        )?;
                        pw.noise = p;
                        raw_weak[pi].push(pw);
                    }
                    pb.inc(1);
                }
            }
            points.extend(raw.iter().map(|v| aggregate(v)));
            if with_weak {
                weak.extend(raw_weak.iter().map(|v| aggregate(v)));
            }
        }
    }
    // The few-shot Omniglot family with a random class → label order per task: clean labels
    // only, for the accuracy-vs-N report (MNK, G, finite MAML).
    let mut acc_points: Vec<Point> = Vec::new();
    for (ni, &n) in sizes.omni_n.iter().enumerate() {
        let mut raw = Vec::new();
        for r in 0..reps {
            let base = seed_of(st.seed, Family::Omniglot, ni, r);
            let (train, test) =
                train_test(Family::Omniglot, n, sizes.test_tasks, 0.0, base, Some(omni))?;
            raw.push(measure(
                Family::Omniglot,
                Schedule::flow(INNER_TIME),
                &train,
                &test,
                consts,
                false,
            )?);
            pb.inc(1);
        }
        acc_points.push(aggregate(&raw));
    }
    pb.finish_and_clear();
    Ok((points, weak, acc_points))
}

/// Details of every point and the weak-inner-loop diagnostic.
pub(super) fn report_points(
    points: &[Point],
    weak: &[Point],
    fams: &[(Family, &Vec<usize>)],
    rep: &mut CheckReport,
) -> Result<()> {
    for pt in points {
        rep.detail(format!(
            "{} N={} p={:.1}: C = {}, bound = {} (complexity term {} + confidence term {}), \
             test loss = {}{}; base learner G alone: {}{}; λ_min(Φ) = {}, κ(Φ) = {} \
             (means over {} replicates)",
            pt.family.name(),
            pt.n_tasks,
            pt.noise,
            fmt_num(pt.complexity),
            fmt_num(pt.bound.total),
            fmt_num(pt.bound.complexity_term),
            fmt_num(pt.bound.confidence_term),
            fmt_num(pt.test_err),
            pt.test_err01
                .map(|e| format!(", 0-1 error = {}", fmt_num(e)))
                .unwrap_or_default(),
            fmt_num(pt.base_err),
            pt.base_err01
                .map(|e| format!(", 0-1 error = {}", fmt_num(e)))
                .unwrap_or_default(),
            fmt_num(pt.lambda_min),
            fmt_num(pt.condition),
            pt.reps,
        ));
    }
    for (fam, ns) in fams.iter().filter(|(f, _)| !f.is_classification()) {
        let sel: Vec<&Point> = weak.iter().filter(|p| p.family == *fam).collect();
        let c: Vec<f64> = sel.iter().map(|p| p.complexity).collect();
        let e: Vec<f64> = sel.iter().map(|p| p.test_err).collect();
        let sp = spearman(&c, &e)?;
        rep.detail(format!(
            "diagnostic, weak inner loop (one step at λ = {}, N = {}): Spearman ρ(C, test loss) = \
             {:.3} (p = {:.2e}); C = {:?}, test loss = {:?} (same tasks and replicates as the main \
             sweep, which uses the inner time λτ = {INNER_TIME}).",
            fam.inner_lr(),
            ns[0],
            sp.rho,
            sp.p_value,
            c.iter().map(|v| fmt_num(*v)).collect::<Vec<_>>(),
            e.iter().map(|v| fmt_num(*v)).collect::<Vec<_>>(),
        ));
    }
    Ok(())
}
