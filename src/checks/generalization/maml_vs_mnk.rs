//! Finite-width MAML against the same-schedule MNK: the helper shared with the Omniglot report
//! and the claim `generalization.maml_follows_mnk` (sine).

use super::data::{train_test, Family};
use super::sweep::Sizes;
use super::{bounded_loss, MAML_GAP, NOISE};
use crate::checks::common::stack;
use crate::checks::stats::spearman;
use crate::checks::{fmt_num, CheckReport, ClaimResult, Settings, Verdict};
use crate::error::Result;
use crate::maml::{self, MamlConfig, TrainConfig};
use crate::mnk::{self, BaseKernel, Mnk, Schedule, TaskSet};
use crate::net::Mlp;
use ndarray::Array2;

/// Result of one finite-MAML run vs the finite-time MNK predictor.
pub(super) struct MamlPoint {
    pub(super) noise: f64,
    pub(super) maml_err: f64,
    pub(super) mnk_err: f64,
    /// Bounded test loss of the base learner G (control).
    pub(super) g_err: f64,
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

/// Finite-width MAML (centred, second order, τ = 1 at the family's λ) on `train` at η = ½η*(Φ)
/// for `steps` outer steps, evaluated on `test`, and the MNK predictor with the same inner step
/// and outer schedule (and at T = 0).
pub(super) fn maml_vs_mnk(
    fam: Family,
    train: &TaskSet,
    test: &TaskSet,
    width: usize,
    steps: usize,
    seed: u64,
) -> Result<MamlCmp> {
    let inner = Schedule::steps(fam.inner_lr(), 1);
    let mnk = Mnk::new(BaseKernel::Analytic(fam.arch()), inner);
    let phi = mnk.phi(train)?;
    let spec = mnk::Spectrum::of(phi.view())?;
    let eta = 0.5 * spec.eta_crit;
    let outer = Schedule::steps(eta, steps);
    let pred = mnk.predict(train, test, &outer, None)?;
    let base = mnk::g_term(test, &mnk.adapters(test)?, None)?;
    let mlp = Mlp::new(&fam.arch().with_width(width), train.d(), train.k())?;
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

/// The checker of `generalization.maml_follows_mnk`: the finite-MAML test losses `a` and the
/// reference predictor's `b` over the noise levels: Spearman ρ ≥ 0.9 with p < 0.01 and
/// max |a − b| ≤ [`MAML_GAP`].
pub(super) fn follows_claim(a: &[f64], b: &[f64]) -> Result<ClaimResult> {
    let s = spearman(a, b)?;
    let gap = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f64, f64::max);
    let ok = s.rho >= 0.9 && s.p_value < 0.01 && gap <= MAML_GAP;
    Ok(ClaimResult::new(
        "generalization.maml_follows_mnk",
        "finite-width MAML's test loss follows the MNK's across training-label noise levels",
        s.rho,
        format!(
            "ρ = {:.3} (p = {:.2e}), max |Δ| = {}",
            s.rho,
            s.p_value,
            fmt_num(gap)
        ),
        format!("ρ ≥ 0.9, p < 0.01, max |Δ| ≤ {MAML_GAP}"),
        (s.rho - 0.9).min(MAML_GAP - gap),
        Verdict::from_bool(ok),
        format!(
            "Spearman over {} noise levels (exact p; false-positive rate < 1%) and the largest \
             absolute difference of the bounded test loss; margin = min(ρ − 0.9, {MAML_GAP} − \
             max|Δ|)",
            a.len()
        ),
    ))
}

/// What the sine MAML run leaves for the figure: width, T, the points and the two loss curves.
pub(super) struct SineMaml {
    pub(super) width: usize,
    pub(super) steps: usize,
    pub(super) mp: Vec<MamlPoint>,
    pub(super) a: Vec<f64>,
    pub(super) b: Vec<f64>,
}

/// `generalization.maml_follows_mnk` (sine, smallest N) with its control `base_learner_g`.
pub(super) fn push_follows_claim(
    st: &Settings,
    sizes: &Sizes,
    rep: &mut CheckReport,
) -> Result<SineMaml> {
    // (c) finite-width MAML follows the MNK (sine, smallest N).
    let width = st.pick(256, 512, 1024);
    let steps = st.pick(100, 200, 500);
    let n_maml = sizes.sine_n[0];
    rep.param(
        "MAML",
        format!(
            "sine, N = {n_maml}, 1 hidden ReLU layer width {width}, NTK param., σ_b = 1, centred, \
             second order, λ = 0.02, τ = 1, η = ½η*(Φ), T = {steps} outer steps; MNK predictor with \
             the same (η, T)"
        ),
    );
    let pb = st.bar(NOISE.len() as u64, "finite MAML on sine");
    let mut mp = Vec::new();
    for &p in NOISE.iter() {
        let base = st.seed.wrapping_add(1_000_003);
        let (train, test) = train_test(Family::Sine, n_maml, sizes.test_tasks, p, base, None)?;
        let cmp = maml_vs_mnk(Family::Sine, &train, &test, width, steps, base ^ 0x0a11)?;
        let yt = test.query_y();
        let (maml_err, mnk_err, eta) = (
            bounded_loss(cmp.maml.view(), yt.view()),
            bounded_loss(cmp.mnk.view(), yt.view()),
            cmp.eta,
        );
        let g_err = bounded_loss(cmp.base.view(), yt.view());
        rep.detail(format!(
            "MAML sine N={n_maml} p={p:.1}: MAML test loss = {}, MNK (same η = {}, T = {steps}) = {}",
            fmt_num(maml_err),
            fmt_num(eta),
            fmt_num(mnk_err)
        ));
        mp.push(MamlPoint {
            noise: p,
            maml_err,
            mnk_err,
            g_err,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    let a: Vec<f64> = mp.iter().map(|m| m.maml_err).collect();
    let b: Vec<f64> = mp.iter().map(|m| m.mnk_err).collect();
    let mut c = follows_claim(&a, &b)?;
    if st.controls {
        let g: Vec<f64> = mp.iter().map(|m| m.g_err).collect();
        c = c.with_control(
            "base_learner_g",
            "the base learner G (the MNK's start, T = 0; ignores the training tasks) in place of \
             the trained MNK",
            &follows_claim(&a, &g)?,
        );
    }
    rep.push(c);
    Ok(SineMaml {
        width,
        steps,
        mp,
        a,
        b,
    })
}
