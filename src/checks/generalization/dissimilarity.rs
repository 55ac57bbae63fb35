//! `generalization.c_grows_with_dissimilarity` (MATH.md §7): C grows with the task spread s of
//! the GP family, and C and the test loss rise together.

use super::data::{gp_tasks, Family, GpSpec, TEST_SEED_XOR};
use super::sweep::{aggregate, measure, Sizes, INNER_TIME};
use crate::checks::stats::spearman;
use crate::checks::{fmt_num, CheckReport, ClaimResult, Settings, Verdict};
use crate::error::Result;
use crate::mnk::Schedule;
use crate::theory::BoundConstants;

/// GP task spreads s of the dissimilarity sweep (f_i = √(1−s) f̄ + √s g_i).
pub const SPREADS: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];

/// The checker of `generalization.c_grows_with_dissimilarity`: over the spreads, Spearman
/// ρ(s, C) ≥ 0.9 with p < 0.01 (C grows with dissimilarity) AND ρ(C, test loss) ≥ 0.9 with
/// p < 0.01 (C and the test error rise together). `err` are the replicate-mean test losses of
/// the learner checked (`who`).
pub(super) fn spread_claim(c: &[f64], err: &[f64], who: &str) -> Result<ClaimResult> {
    let s1 = spearman(&SPREADS, c)?;
    let s2 = spearman(c, err)?;
    let ok = s1.rho >= 0.9 && s1.p_value < 0.01 && s2.rho >= 0.9 && s2.p_value < 0.01;
    Ok(ClaimResult::new(
        "generalization.c_grows_with_dissimilarity",
        "gp: C grows with the task spread s, and C and the test loss rise together",
        s1.rho.min(s2.rho),
        format!(
            "ρ(s, C) = {:.3} (p = {:.2e}); ρ(C, loss of {who}) = {:.3} (p = {:.2e})",
            s1.rho, s1.p_value, s2.rho, s2.p_value
        ),
        "both ρ ≥ 0.9, p < 0.01",
        s1.rho.min(s2.rho) - 0.9,
        Verdict::from_bool(ok),
        "",
    ))
}

/// The spread sweep: per s, replicate means of C, the MNK test loss, G's test loss and the
/// constant predictor's; returns the claim on the MNK and the curves (C, MNK, G, zero).
#[allow(clippy::type_complexity)]
pub(super) fn spread_sweep(
    st: &Settings,
    n: usize,
    n_test: usize,
    reps: usize,
    consts: &BoundConstants,
    rep: &mut CheckReport,
) -> Result<(ClaimResult, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (mut cs, mut es, mut gs, mut zs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &spread in SPREADS.iter() {
        let mut pts = Vec::new();
        for r in 0..reps {
            let seed = st
                .seed
                .wrapping_add(0x5_9e_ad)
                .wrapping_add(7_919 * r as u64);
            let spec = |tasks| GpSpec {
                tasks,
                m: 10,
                n: 10,
                d: 2,
                lengthscale: 0.5,
                amplitude: 0.5,
                spread,
                noise: 0.0,
                features: 256,
            };
            let train = gp_tasks(spec(n), 0x6a9, seed)?;
            let test = gp_tasks(spec(n_test), 0x6a9, seed ^ TEST_SEED_XOR)?;
            pts.push(measure(
                Family::Gp,
                Schedule::flow(INNER_TIME),
                &train,
                &test,
                consts,
                false,
            )?);
        }
        let a = aggregate(&pts);
        rep.detail(format!(
            "gp spread s = {spread}: C = {}, MNK test loss = {}, G alone = {}, constant 0 = {} \
             (N = {n}, clean labels, means over {reps} replicates)",
            fmt_num(a.complexity),
            fmt_num(a.test_err),
            fmt_num(a.base_err),
            fmt_num(a.zero_err)
        ));
        cs.push(a.complexity);
        es.push(a.test_err);
        gs.push(a.base_err);
        zs.push(a.zero_err);
    }
    let c = spread_claim(&cs, &es, "the MNK predictor")?;
    Ok((c, cs, gs, es, zs))
}

/// The claim with its controls `base_learner_g` and `constant_predictor`.
pub(super) fn push_spread_claim(
    st: &Settings,
    sizes: &Sizes,
    reps: usize,
    consts: &BoundConstants,
    rep: &mut CheckReport,
) -> Result<()> {
    // (e) the missing claim of MATH.md §7: C grows with task dissimilarity (GP spread s).
    let n_spread = sizes.gp_n[0];
    let mut c = spread_sweep(st, n_spread, sizes.test_tasks, reps, consts, rep)?;
    c.0 = c.0.with_note(format!(
        "GP family, N = {n_spread}, clean labels, spreads {SPREADS:?}, {reps} replicates (common \
         random numbers: the same shared draw f̄ and task draws g_i at every s); Spearman over \
         the spreads of replicate means, exact one-sided p; margin = min of the two ρ − 0.9"
    ));
    if st.controls {
        let base = spread_claim(&c.1, &c.2, "the base learner G alone");
        let zero = spread_claim(&c.1, &c.4, "the constant predictor 0");
        c.0 =
            c.0.with_control(
                "base_learner_g",
                "test loss of the base learner G alone (ignores the training tasks)",
                &base?,
            )
            .with_control(
                "constant_predictor",
                "test loss of the constant predictor 0",
                &zero?,
            );
    }
    rep.push(c.0);
    Ok(())
}
