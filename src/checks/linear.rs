//! Claim family 6: exact identities of a model linear in θ (MATH.md §2–§5, [derived]).
//!
//! Model: depth 0 (no hidden layer), f(x) = (σ_w/√d) W x + σ_b b, so J(X) is constant and every
//! kernel statement is exact:
//!
//! - `linear.ntk_exact`: the empirical NTK J Jᵀ equals the analytic NTK σ_w² x·x'/d + σ_b².
//! - `linear.inner_closed_form`: τ inner GD steps give f_θ'(X) = f_θ(X) − Θ(X, X') T (f_θ(X') − Y')
//!   with T = λ Σ_{s<τ} (I − λΘ')^s (from `mnk::inner_operator`).
//! - `linear.phi_equals_jf`: Φ̂ = J_F J_Fᵀ (`maml::empirical_mnk`) equals the MNK formula
//!   (`mnk::Mnk::phi`) with the same discrete inner schedule.
//! - `linear.outer_closed_form`: the meta-loss of t outer GD steps equals ½‖(I − ηΦ)^t r_0‖².
//! - `linear.predictor_equivalence`: the trained model's test-task predictions equal the MNK
//!   predictor with outer schedule (η, t) and f0 = the model's outputs at θ_0 (§5).
//! - `linear.residual_ratio_bound`: every per-step residual ratio ‖r_{t+1}‖/‖r_t‖ is at most
//!   max(|1 − ηλ_min|, |1 − ηλ_max|) (§4).
//!
//! Tolerance: [`crate::tol::LINEAR_IDENTITY_REL`] (normwise relative, static identities) and
//! [`crate::tol::LINEAR_TRAJECTORY_REL`] (after t outer steps; rounding grows ~linearly in t).

use super::common::{rel_fro, stack, SIGMA_W_OFF};
use super::{fmt_num, CheckReport, ClaimResult, Figure, Series, Settings, Style};
use crate::error::Result;
use crate::kernel::{self, Activation, Arch};
use crate::maml::{self, MamlConfig, TrainConfig};
use crate::mnk::{self, data::LinearSpec, BaseKernel, Mnk, Schedule, F0};
use crate::net::Mlp;
use crate::theory;
use crate::tol::{LINEAR_IDENTITY_REL, LINEAR_TRAJECTORY_REL};

/// Run `claim` on the real architecture `archs[0]`; if a second one is given (σ_w off by 1%),
/// attach the same checker's output on it as the control `sigma_w_off_1pct`.
fn with_sigma_control(
    archs: &[&Arch],
    claim: impl Fn(&Arch) -> Result<ClaimResult>,
) -> Result<ClaimResult> {
    let mut c = claim(archs[0])?;
    for a in &archs[1..] {
        let k = claim(a)?;
        c = c.with_control(
            "sigma_w_off_1pct",
            "analytic side computed with σ_w off by 1%",
            &k,
        );
    }
    Ok(c)
}

/// Run claim family 6.
pub fn check_linear_identities(st: &Settings) -> Result<CheckReport> {
    let mut rep = CheckReport::new("linear", 6, "Exact linear-model identities (depth 0)");
    let d = 24;
    let (n_tasks, m, n) = (4, 5, 5);
    let (lr, tau) = (0.3, 3);
    let steps = st.pick(60, 100, 300);
    let arch = Arch::new(0, Activation::Identity)
        .with_sigma_w(1.3)
        .with_sigma_b(Some(0.5));
    let spec = |seed| {
        mnk::data::linear_tasks(
            LinearSpec {
                tasks: n_tasks,
                m,
                n,
                d,
                spread: 0.7,
            },
            seed,
        )
    };
    let train_set = spec(st.seed)?;
    let test_set = spec(st.seed + 1)?;
    rep.param(
        "model",
        "f(x) = (σ_w/√d) W x + σ_b b, σ_w = 1.3, σ_b = 0.5, d = 24, k = 1",
    );
    rep.param(
        "tasks",
        format!("random linear, N = {n_tasks}, m = {m}, n = {n}, spread 0.7"),
    );
    rep.param("inner", format!("λ = {lr}, τ = {tau}"));

    let mlp = Mlp::new(&arch, d, 1)?;
    let theta0 = mlp.init(st.seed ^ 0x6c696e);
    // one inner schedule for the finite net and the analytic MNK
    let inner = Schedule::steps(lr, tau);
    let cfg = MamlConfig::from_schedule(inner);
    let (tasks, test_tasks) = (train_set.tasks(), test_set.tasks());
    let pts = train_set.points();

    // 6a: empirical NTK = analytic NTK.
    let ntk_emp = mlp.empirical_ntk(theta0.view(), pts.view(), None)?;
    // The controls feed every identity's checker the analytic side of a model with σ_w off by
    // 1% (SIGMA_W_OFF): the same tolerance must then fail by many decades.
    let off = arch.clone().with_sigma_w(arch.sigma_w * SIGMA_W_OFF);
    let archs: Vec<&Arch> = if st.controls {
        vec![&arch, &off]
    } else {
        vec![&arch]
    };
    let ntk_claim = |a: &Arch| -> Result<ClaimResult> {
        let ntk_an = kernel::ntk(a, pts.view(), None)?;
        Ok(ClaimResult::at_most(
            "linear.ntk_exact",
            "empirical NTK J Jᵀ = analytic NTK (depth 0)",
            rel_fro(ntk_emp.view(), ntk_an.view()),
            LINEAR_IDENTITY_REL,
        ))
    };
    rep.push(with_sigma_control(&archs, ntk_claim)?);

    // 6b: inner loop in closed form.
    let outs = maml::meta_outputs(&mlp, theta0.view(), tasks, &cfg)?;
    let inner_claim = |a: &Arch| -> Result<ClaimResult> {
        let mut worst: f64 = 0.0;
        for (t, f_net) in train_set.tasks().iter().zip(&outs) {
            let k_ss = kernel::ntk(a, t.xs.view(), None)?;
            let k_qs = kernel::ntk(a, t.xq.view(), Some(t.xs.view()))?;
            let tt = mnk::inner_operator(k_ss.view(), &inner)?;
            let r0 = &mlp.forward(theta0.view(), t.xs.view())? - &t.ys;
            let a = crate::linalg::matmul(k_qs.view(), tt.view());
            let pred = &mlp.forward(theta0.view(), t.xq.view())?
                - &crate::linalg::matmul(a.view(), r0.view());
            worst = worst.max(rel_fro(f_net.view(), pred.view()));
        }
        Ok(ClaimResult::at_most(
            "linear.inner_closed_form",
            "τ inner steps = f − Θ(X,X') T (f(X') − Y') (discrete T)",
            worst,
            LINEAR_IDENTITY_REL,
        ))
    };
    rep.push(with_sigma_control(&archs, inner_claim)?);

    // 6c: Φ̂ = J_F J_Fᵀ = MNK formula.
    let mnk_of = |a: &Arch| Mnk::new(BaseKernel::Analytic(a.clone()), inner);
    let mnk_k = mnk_of(&arch);
    let phi = mnk_k.phi(&train_set)?;
    let phi_emp = maml::empirical_mnk(&mlp, theta0.view(), tasks, &cfg)?;
    let phi_claim = |a: &Arch| -> Result<ClaimResult> {
        Ok(ClaimResult::at_most(
            "linear.phi_equals_jf",
            "Φ̂ = J_F J_Fᵀ equals the MNK block formula",
            rel_fro(phi_emp.view(), mnk_of(a).phi(&train_set)?.view()),
            LINEAR_IDENTITY_REL,
        ))
    };
    rep.push(with_sigma_control(&archs, phi_claim)?);

    // 6d: outer loop in closed form.
    let spec_phi = mnk::Spectrum::of(phi.view())?;
    let eta = 0.9 * spec_phi.eta_crit;
    // one outer schedule for the trained net and the MNK predictor
    let outer = Schedule::steps(eta, steps);
    rep.param(
        "outer",
        format!(
            "η = 0.9 η* = {}, t = {steps}; λ_min(Φ) = {}, λ_max(Φ) = {}, κ = {}",
            fmt_num(eta),
            fmt_num(spec_phi.lambda_min),
            fmt_num(spec_phi.lambda_max),
            fmt_num(spec_phi.condition)
        ),
    );
    let res = maml::train(
        &mlp,
        theta0.view(),
        tasks,
        &cfg,
        &TrainConfig::from_schedule(outer),
        &mut |_, _| {},
    )?;
    let measured: Vec<f64> = res.records.iter().map(|r| r.meta_loss).collect();
    let r0 = &stack(&outs) - &train_set.query_y();
    // ½‖(I − ηΦ)^t r_0‖² for t = 0..=steps, Φ the analytic MNK of `a`
    let exact_of = |a: &Arch| -> Result<Vec<f64>> {
        let (w, u) = crate::linalg::sym_eig(mnk_of(a).phi(&train_set)?.view())?;
        let coords = crate::linalg::t_matmul(u.view(), r0.view());
        Ok(theory::linear_loss_trajectory(
            eta,
            w.as_slice().unwrap(),
            coords.column(0).to_vec().as_slice(),
            steps,
        ))
    };
    let outer_claim = |a: &Arch| -> Result<ClaimResult> {
        let worst = measured
            .iter()
            .zip(&exact_of(a)?)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0, f64::max);
        Ok(ClaimResult::at_most(
            "linear.outer_closed_form",
            "meta-loss L_t = ½‖(I − ηΦ)^t r_0‖² for every t",
            worst,
            LINEAR_TRAJECTORY_REL,
        ))
    };
    rep.push(with_sigma_control(&archs, outer_claim)?);
    let exact = exact_of(&arch)?;

    // 6e: predictions = MNK predictor with the model's f0.
    let f0_of = |set: &mnk::TaskSet| -> Result<F0> {
        Ok(F0 {
            query: mlp.forward(theta0.view(), set.query_x().view())?,
            support: mlp.forward(theta0.view(), set.support_x().view())?,
        })
    };
    let (f0_tr, f0_te) = (f0_of(&train_set)?, f0_of(&test_set)?);
    let net_pred = stack(&maml::predict(
        &mlp,
        res.theta.view(),
        None,
        test_tasks,
        &cfg,
    )?);
    let pred_claim = |a: &Arch| -> Result<ClaimResult> {
        let pred = mnk_of(a).predict(&train_set, &test_set, &outer, Some((&f0_tr, &f0_te)))?;
        Ok(ClaimResult::at_most(
            "linear.predictor_equivalence",
            "trained model on test tasks = MNK predictor (η, t, f0)",
            rel_fro(net_pred.view(), pred.test.view()),
            LINEAR_TRAJECTORY_REL,
        ))
    };
    rep.push(with_sigma_control(&archs, pred_claim)?);

    // 6f: residual ratio bound.
    let rho = theory::linear_residual_ratio_bound(eta, spec_phi.lambda_min, spec_phi.lambda_max)?;
    let ratio_claim = |losses: &[f64]| {
        let max_ratio = losses
            .windows(2)
            .map(|p| (p[1] / p[0]).sqrt())
            .fold(0.0, f64::max);
        ClaimResult::at_most(
            "linear.residual_ratio_bound",
            "‖r_{t+1}‖/‖r_t‖ ≤ max(|1−ηλ_min|, |1−ηλ_max|) every step",
            max_ratio,
            rho * (1.0 + LINEAR_IDENTITY_REL),
        )
        .with_predicted(format!("≤ {}", fmt_num(rho)))
    };
    let mut c = ratio_claim(&measured);
    if st.controls {
        // control: the model trained with the outer step doubled, checked against ρ(η)
        let r2 = maml::train(
            &mlp,
            theta0.view(),
            tasks,
            &cfg,
            &TrainConfig::new(2.0 * eta, steps),
            &mut |_, _| {},
        );
        let l2: Vec<f64> = match r2 {
            Ok(r) => r.records.iter().map(|r| r.meta_loss).collect(),
            Err(crate::error::Error::Diverged { .. }) => vec![1.0, f64::INFINITY],
            Err(e) => return Err(e),
        };
        c = c.with_control(
            "outer_step_x2",
            "losses of a run with the outer step doubled (2η), bound still ρ(η)",
            &ratio_claim(&l2),
        );
    }
    rep.push(c);
    let t: Vec<f64> = (0..=steps).map(|t| t as f64).collect();
    rep.figures.push(Figure {
        id: "linear_loss_vs_step".into(),
        title: "Linear model: meta-loss vs closed form (I − ηΦ)^t".into(),
        x_label: "outer step t".into(),
        y_label: "meta-loss L(θ_t)".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::new(
                "MAML training (depth 0)",
                t.clone(),
                measured.clone(),
                Style::Markers,
            ),
            Series::new("½‖(I − ηΦ)^t r_0‖²", t.clone(), exact, Style::Line),
            Series::new(
                "ρ(η)^{2t} L_0 (residual-ratio bound)",
                t.clone(),
                t.iter().map(|&s| rho.powf(2.0 * s) * measured[0]).collect(),
                Style::Dashed,
            ),
        ],
    });
    Ok(rep)
}
