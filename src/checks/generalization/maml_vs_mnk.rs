//! Finite-width MAML against the same-schedule MNK: the helper shared with the Omniglot report
//! and the claim `generalization.maml_follows_mnk` (sine).

use super::data::{sine_train_test, Family};
use super::noise_model::student_t_quantile;
use super::sweep::{seed_of, Sizes};
use super::{bounded_loss, MAML_GAP, NOISE};
use crate::checks::common::stack;
use crate::checks::{fmt_num, CheckReport, ClaimResult, Settings, Verdict};
use crate::error::{Error, Result};
use crate::kernel::{Activation, Arch};
use crate::maml::{self, MamlConfig, TrainConfig};
use crate::mnk::{self, BaseKernel, Mnk, Schedule, TaskSet};
use crate::net::Mlp;
use ndarray::Array2;

/// Query points per task of the sine tasks of `maml_follows_mnk` (training and test; m = 10
/// support points). Chosen from the MNK side alone, before any MAML run (docs/checks.md): with
/// the sweep's 10 queries per task the same-schedule MNK's test loss does not respond to
/// training-label noise at T = 200 (κ(Φ) ≈ 3.5e5, slope 0.026 ± 0.010 over 4 replicates at
/// seed 20200630); with 2 queries per task (κ ≈ 3e3–1e4) its slope is 0.06–0.15, resolved at
/// 99% on each of the 5 seeds.
pub const MAML_QUERIES: usize = 2;
/// Activation of the networks of `maml_follows_mnk` (the MNK is that of the same architecture:
/// 1 hidden layer, σ_w = √2, σ_b = 1, NTK parameterization; [`maml_arch`]).
///
/// **Chosen after a run, said here.** Until session 8 the claim used the sine family's ReLU
/// network. On the default profile it was PASS on 2 of 5 seeds and INCONCLUSIVE on 3 (never
/// FAIL): finite ReLU MAML at width 512 responded to the training-label noise 20–53% less than
/// the MNK, and the gap closed only like width^(−¼) (c/b = −0.28, −0.22, −0.13 at widths 512,
/// 2048, 8192; docs/checks.md). Theorem 1's width statements (MATH.md §4, following Lee et al.
/// 2019, Thm G.1) assume an activation whose derivative is Lipschitz; ReLU's is not, and
/// second-order MAML differentiates through φ′. With erf (φ′ smooth) the same diagnosis gave
/// c/b = −0.06 at width 512 and a gap closing like width^(−½). So the claim is checked in the
/// theorem's regime; the ReLU result stays in the report as the INFO
/// `generalization.maml_follows_mnk_relu` (full profile) and in docs/checks.md.
pub const MAML_ACTIVATION: Activation = Activation::Erf;

/// The architecture of `maml_follows_mnk`: the sine family's (1 hidden layer, σ_w = √2,
/// σ_b = 1) with the activation `act`.
pub fn maml_arch(act: Activation) -> Arch {
    Arch {
        activation: act,
        ..Family::Sine.arch()
    }
}

/// Replicates (independent task draws and network initializations) of `maml_follows_mnk`
/// (quick, default, full).
pub const MAML_REPS: (usize, usize, usize) = (3, 4, 4);
/// Two-sided confidence level of the slopes of `maml_follows_mnk`.
pub const MAML_SLOPE_CONF: f64 = 0.99;

/// Bounded test losses of one finite-MAML replicate at every noise level.
pub(super) struct MamlCurve {
    /// Finite MAML.
    pub(super) maml: Vec<f64>,
    /// MNK predictor with the same inner step and outer schedule.
    pub(super) mnk: Vec<f64>,
    /// The base learner G (the MNK at T = 0; control).
    pub(super) g: Vec<f64>,
}

/// Test-set predictions of finite-width MAML and of the MNK with the same schedule.
pub(super) struct MamlCmp {
    /// Finite MAML (centred network, f − f(·; θ_0)).
    pub(super) maml: Array2<f64>,
    /// MNK predictor, same inner step, outer GD at the same (η, T), f0 = 0.
    pub(super) mnk: Array2<f64>,
    /// The same MNK predictor at T = 0: the one-step base learner G (where both start).
    pub(super) base: Array2<f64>,
    /// Outer rate η = ½ η*(Φ).
    pub(super) eta: f64,
}

/// Finite-width MAML (centred, second order, τ = 1 at the family's λ) of architecture `arch`
/// on `train` at η = ½η*(Φ) for `steps` outer steps, evaluated on `test`, and the MNK predictor
/// with the same architecture, inner step and outer schedule (and at T = 0).
pub(super) fn maml_vs_mnk(
    fam: Family,
    arch: &Arch,
    train: &TaskSet,
    test: &TaskSet,
    width: usize,
    steps: usize,
    seed: u64,
) -> Result<MamlCmp> {
    let inner = Schedule::steps(fam.inner_lr(), 1);
    let mnk = Mnk::new(BaseKernel::Analytic(arch.clone()), inner);
    let phi = mnk.phi(train)?;
    let spec = mnk::Spectrum::of(phi.view())?;
    let eta = 0.5 * spec.eta_crit;
    let outer = Schedule::steps(eta, steps);
    let pred = mnk.predict(train, test, &outer, None)?;
    let base = mnk::g_term(test, &mnk.adapters(test)?, None)?;
    let mlp = Mlp::new(&arch.clone().with_width(width), train.d(), train.k())?;
    let theta0 = mlp.init(seed);
    let cfg = MamlConfig::from_schedule(inner);
    let tc = TrainConfig::from_schedule(outer).with_centred(true);
    let res = maml::train(
        &mlp,
        theta0.view(),
        train.tasks(),
        &cfg,
        &tc,
        &mut |_, _| {},
    )?;
    let out = maml::predict(
        &mlp,
        res.theta.view(),
        Some(res.theta0.view()),
        test.tasks(),
        &cfg,
    )?;
    Ok(MamlCmp {
        maml: stack(&out),
        mnk: pred.test,
        base,
        eta,
    })
}

/// Slope b of y_rp = a_r + b·p (one intercept per replicate r, common slope over the noise
/// levels p = [`NOISE`]) by least squares: (b, standard error, residual dof = R·P − R − 1).
pub(super) fn within_slope(y: &[Vec<f64>]) -> (f64, f64, usize) {
    let np = NOISE.len() as f64;
    let pm = NOISE.iter().sum::<f64>() / np;
    let sxx: f64 = NOISE.iter().map(|p| (p - pm) * (p - pm)).sum::<f64>() * y.len() as f64;
    let centred = |row: &Vec<f64>| -> Vec<f64> {
        let m = row.iter().sum::<f64>() / np;
        row.iter().map(|v| v - m).collect()
    };
    let b = y
        .iter()
        .flat_map(|row| {
            centred(row)
                .into_iter()
                .zip(NOISE)
                .map(|(v, p)| (p - pm) * v)
        })
        .sum::<f64>()
        / sxx;
    let ss: f64 = y
        .iter()
        .flat_map(|row| {
            centred(row)
                .into_iter()
                .zip(NOISE)
                .map(|(v, p)| (v - b * (p - pm)).powi(2))
        })
        .sum();
    let dof = (y.len() * NOISE.len()).saturating_sub(y.len() + 1);
    (b, (ss / dof.max(1) as f64 / sxx).sqrt(), dof)
}

/// The checker of `generalization.maml_follows_mnk` (paired slope equivalence; issue 11, replaced
/// a rank test after seed 20200630): `maml[r][i]` and `reference[r][i]` are the bounded test
/// losses of replicate r at noise level p_i. With c the within-replicate slope in p of
/// d = maml − reference and b that of the reference ([`within_slope`]), and the two-sided
/// [`MAML_SLOPE_CONF`] interval c ± h of c:
/// FAIL if the interval lies entirely outside the band ±½|b| or max |d| > [`MAML_GAP`];
/// PASS if it lies inside the band (and max |d| ≤ [`MAML_GAP`]); otherwise INCONCLUSIVE.
pub(super) fn follows_claim(maml: &[Vec<f64>], reference: &[Vec<f64>]) -> Result<ClaimResult> {
    if maml.is_empty() || maml.len() != reference.len() {
        return Err(Error::Empty("maml_follows_mnk: no replicate".into()));
    }
    let d: Vec<Vec<f64>> = maml
        .iter()
        .zip(reference)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
        .collect();
    let (b, se_b, _) = within_slope(reference);
    let (c, se_c, dof) = within_slope(&d);
    let h = student_t_quantile(0.5 + MAML_SLOPE_CONF / 2.0, dof)? * se_c;
    let band = 0.5 * b.abs();
    let gap = d.iter().flatten().map(|x| x.abs()).fold(0.0f64, f64::max);
    let verdict = if c - h > band || c + h < -band || gap > MAML_GAP {
        Verdict::Fail
    } else if c.abs() + h <= band {
        Verdict::Pass
    } else {
        Verdict::Inconclusive
    };
    Ok(ClaimResult::new(
        "generalization.maml_follows_mnk",
        "finite-width MAML's test loss follows the MNK's across training-label noise levels \
         (slope in p of MAML − MNK within ±½ the MNK's slope; erf networks)",
        c,
        format!(
            "slope of MAML − MNK c = {} [{}, {}]; MNK slope b = {} ± {} (band ±{}); max |Δ| = {}",
            fmt_num(c),
            fmt_num(c - h),
            fmt_num(c + h),
            fmt_num(b),
            fmt_num(se_b),
            fmt_num(band),
            fmt_num(gap)
        ),
        format!(
            "{}% CI of c inside ±½|b|, max |Δ| ≤ {MAML_GAP}",
            MAML_SLOPE_CONF * 100.0
        ),
        (band - c.abs() - h).min(MAML_GAP - gap),
        verdict,
        format!(
            "{} replicates × {} noise levels; c, b: least-squares slopes in p with one intercept \
             per replicate, {dof} residual dof, Student-t interval. FAIL if the interval of c \
             lies entirely outside ±½|b| (false-FAIL rate ≤ {}% when the true c is inside the \
             band, b taken as given) or max |Δ| > {MAML_GAP}; PASS if it lies entirely inside \
             (an equivalence test: false-PASS rate ≤ {}% when |true c| ≥ ½|b|); INCONCLUSIVE \
             otherwise (e.g. when the reference's own slope is not resolved). Rule adopted after \
             seed 20200630 failed the earlier rank test (ρ ≥ 0.9 across 6 levels, one replicate) \
             because the MNK's loss did not respond to the noise at the sweep's 10 queries per \
             task; the queries per task were chosen from the MNK side first. Networks and MNK are \
             erf since session 8, switched from ReLU after ReLU was INCONCLUSIVE on 3 of 5 seeds \
             (Theorem 1 assumes a Lipschitz φ′; ReLU's gap closed like width^(−¼)). margin = \
             min(½|b| − |c| − h, {MAML_GAP} − max |Δ|)",
            maml.len(),
            NOISE.len(),
            (1.0 - MAML_SLOPE_CONF) * 50.0,
            (1.0 - MAML_SLOPE_CONF) * 50.0,
        ),
    ))
}

/// What the sine MAML run leaves for the figure: width, T and the replicate-mean loss curves.
pub(super) struct SineMaml {
    pub(super) width: usize,
    pub(super) steps: usize,
    /// Finite MAML, replicate means per noise level.
    pub(super) a: Vec<f64>,
    /// Same-schedule MNK, replicate means per noise level.
    pub(super) b: Vec<f64>,
}

/// One replicate of the sine MAML experiment with activation `act`: MAML, MNK and G losses at
/// every noise level.
fn sine_replicate(
    st: &Settings,
    sizes: &Sizes,
    (r, act): (usize, Activation),
    (width, steps): (usize, usize),
    rep: &mut CheckReport,
) -> Result<MamlCurve> {
    let n_maml = sizes.sine_n[0];
    let base = seed_of(st.seed, Family::Sine, 0, r);
    let arch = maml_arch(act);
    let mut curve = MamlCurve {
        maml: Vec::new(),
        mnk: Vec::new(),
        g: Vec::new(),
    };
    for &p in NOISE.iter() {
        let (train, test) = sine_train_test(n_maml, sizes.test_tasks, MAML_QUERIES, p, base)?;
        let cmp = maml_vs_mnk(
            Family::Sine,
            &arch,
            &train,
            &test,
            width,
            steps,
            base ^ 0x0a11,
        )?;
        let yt = test.query_y();
        let loss = |a: &Array2<f64>| bounded_loss(a.view(), yt.view());
        curve.maml.push(loss(&cmp.maml));
        curve.mnk.push(loss(&cmp.mnk));
        curve.g.push(loss(&cmp.base));
        rep.detail(format!(
            "MAML ({}) sine N={n_maml} replicate {r} p={p:.1}: MAML test loss = {}, MNK (same \
             η = {}, T = {steps}) = {}, G = {}",
            act.name(),
            fmt_num(curve.maml[curve.maml.len() - 1]),
            fmt_num(cmp.eta),
            fmt_num(curve.mnk[curve.mnk.len() - 1]),
            fmt_num(curve.g[curve.g.len() - 1])
        ));
    }
    Ok(curve)
}

/// The replicate curves of the sine MAML experiment with activation `act`.
fn sine_curves(
    st: &Settings,
    sizes: &Sizes,
    act: Activation,
    (width, steps): (usize, usize),
    rep: &mut CheckReport,
) -> Result<Vec<MamlCurve>> {
    let reps = st.pick(MAML_REPS.0, MAML_REPS.1, MAML_REPS.2);
    rep.param(
        &format!("MAML ({})", act.name()),
        format!(
            "sine, N = {}, m = 10, n = {MAML_QUERIES} queries per task, {reps} replicates, 1 \
             hidden {} layer width {width}, σ_w = √2, σ_b = 1, NTK param., centred, second \
             order, λ = {}, τ = 1, η = ½η*(Φ), T = {steps} outer steps; MNK predictor of the same \
             architecture with the same (η, T)",
            sizes.sine_n[0],
            act.name(),
            Family::Sine.inner_lr()
        ),
    );
    let pb = st.bar((reps * NOISE.len()) as u64, "finite MAML on sine");
    let mut curves = Vec::new();
    for r in 0..reps {
        curves.push(sine_replicate(st, sizes, (r, act), (width, steps), rep)?);
        pb.inc(NOISE.len() as u64);
    }
    pb.finish_and_clear();
    Ok(curves)
}

/// `y[r][i]` of one learner (MAML, MNK or G) over the replicates.
fn pick(curves: &[MamlCurve], f: fn(&MamlCurve) -> &Vec<f64>) -> Vec<Vec<f64>> {
    curves.iter().map(|c| f(c).clone()).collect()
}

/// `generalization.maml_follows_mnk` (sine, smallest N, [`MAML_QUERIES`] queries per task,
/// [`MAML_REPS`] replicates, activation [`MAML_ACTIVATION`]) with its control `base_learner_g`;
/// on the full profile also the INFO `generalization.maml_follows_mnk_relu` (the same test with
/// ReLU, outside the theorem's smoothness assumption).
pub(super) fn push_follows_claim(
    st: &Settings,
    sizes: &Sizes,
    rep: &mut CheckReport,
) -> Result<SineMaml> {
    let width = st.pick(256, 512, 1024);
    let steps = st.pick(100, 200, 500);
    let curves = sine_curves(st, sizes, MAML_ACTIVATION, (width, steps), rep)?;
    let (a, b, g) = (
        pick(&curves, |c| &c.maml),
        pick(&curves, |c| &c.mnk),
        pick(&curves, |c| &c.g),
    );
    let mut c = follows_claim(&a, &b)?;
    if st.controls {
        c = c.with_control(
            "base_learner_g",
            "the base learner G (the MNK's start, T = 0; ignores the training tasks) in place of \
             the trained MNK",
            &follows_claim(&a, &g)?,
        );
    }
    rep.push(c);
    if st.pick(false, false, true) {
        let relu = sine_curves(st, sizes, Activation::Relu, (width, steps), rep)?;
        let k = follows_claim(&pick(&relu, |c| &c.maml), &pick(&relu, |c| &c.mnk))?;
        let verdict = k.verdict.as_str();
        let mut k = k.as_info().with_note(format!(
            "the same test with ReLU networks (verdict by the claim's rule: {verdict}); ReLU's \
             derivative is not Lipschitz, outside Theorem 1's assumption (MAML_ACTIVATION)"
        ));
        k.id = "generalization.maml_follows_mnk_relu".into();
        rep.push(k);
    }
    let mean = |y: &[Vec<f64>]| -> Vec<f64> {
        (0..NOISE.len())
            .map(|i| y.iter().map(|row| row[i]).sum::<f64>() / y.len() as f64)
            .collect()
    };
    Ok(SineMaml {
        width,
        steps,
        a: mean(&a),
        b: mean(&b),
    })
}

#[cfg(test)]
mod tests {
    use super::{follows_claim, within_slope, NOISE};
    use crate::checks::Verdict;

    /// `y[r][i] = f(r, p_i)` for `reps` replicates.
    fn curves(reps: usize, f: impl Fn(usize, f64) -> f64) -> Vec<Vec<f64>> {
        (0..reps)
            .map(|r| NOISE.iter().map(|&p| f(r, p)).collect())
            .collect()
    }

    /// A residual pattern orthogonal to p and to the intercept: s = (1, −1, −1, −1, −1, 1)
    /// minus its mean −1/3 (Σ (p − p̄) s_p = 0).
    fn s(p: f64) -> f64 {
        if p == 0.0 || p == 1.0 {
            1.0
        } else {
            -1.0
        }
    }

    /// The slope with one intercept per replicate is exact on lines with different intercepts,
    /// and its standard error matches the hand value for a known residual pattern:
    /// SS = R·(16/3)δ², dof = 5R − 1, Σ(p − p̄)² = 0.7R.
    #[test]
    fn within_slope_hand_values() {
        let (b, se, dof) = within_slope(&curves(3, |r, p| 10.0 * r as f64 + 0.3 * p));
        assert!(
            (b - 0.3).abs() < 1e-12 && se < 1e-12 && dof == 14,
            "{b} {se} {dof}"
        );
        let delta = 0.01;
        let (b, se, dof) = within_slope(&curves(2, |r, p| r as f64 + 0.3 * p + delta * s(p)));
        assert_eq!(dof, 9);
        assert!((b - 0.3).abs() < 1e-12, "{b}");
        let want = delta * (2.0 * 16.0 / 3.0 / 9.0 / 1.4f64).sqrt();
        assert!((se - want).abs() < 1e-12 * want.max(1.0), "{se} vs {want}");
    }

    /// The three verdicts of the paired slope-equivalence rule, and the gap criterion.
    #[test]
    fn follows_claim_verdicts() {
        // reference rises by 0.2 over p with replicate offsets and a small wiggle
        let mnk = curves(4, |r, p| 0.3 + 0.01 * r as f64 + 0.2 * p + 0.005 * s(p));
        // MAML = MNK + a constant offset and a tiny wiggle: c ≈ 0, CI inside ±0.1 → PASS
        let maml = curves(4, |r, p| {
            mnk[r][(p * 5.0).round() as usize] + 0.02 + 1e-3 * s(p)
        });
        let c = follows_claim(&maml, &mnk).unwrap();
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        // a learner constant in p (the G control): c = −0.2, outside the band → FAIL
        let g = curves(4, |r, _| 0.35 + 0.01 * r as f64);
        let k = follows_claim(&g, &mnk).unwrap();
        assert_eq!(k.verdict, Verdict::Fail, "{k:?}");
        assert!(k.margin < 0.0);
        // ... and with G as the reference (b = 0, band 0) MAML's resolved slope fails too
        let k = follows_claim(&maml, &g).unwrap();
        assert_eq!(k.verdict, Verdict::Fail, "{k:?}");
        // a flat reference and a MAML whose noisy difference straddles the (empty) band
        let flat = curves(4, |r, _| 0.3 + 0.01 * r as f64);
        let noisy = curves(4, |r, p| {
            flat[r][0] + 0.02 * s(p) * if r % 2 == 0 { 1.0 } else { -1.0 } + 0.003 * p
        });
        let k = follows_claim(&noisy, &flat).unwrap();
        assert_eq!(k.verdict, Verdict::Inconclusive, "{k:?}");
        // slopes equal but a level differs by more than MAML_GAP = 0.1 → FAIL
        let far = curves(4, |r, p| mnk[r][(p * 5.0).round() as usize] + 0.15);
        assert_eq!(follows_claim(&far, &mnk).unwrap().verdict, Verdict::Fail);
        assert!(follows_claim(&[], &[]).is_err());
    }
}
