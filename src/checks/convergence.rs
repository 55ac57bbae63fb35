//! Claim family 1: kernel convergence at initialization (MATH.md §1, §3; Jacot et al. 2018,
//! Lee et al. 2019).
//!
//! - `convergence.ntk_slope`: the relative error ‖Θ̂ − Θ‖_F/‖Θ‖_F of the empirical NTK of a
//!   2-hidden-layer ReLU network (σ_w = √2, σ_b = 0.1) at initialization against the analytic NTK
//!   decays like width^(−1/2): the OLS log-log slope over all (width, seed) points has a 95% CI
//!   containing −½ or lies in [−0.65, −0.35] (see [`super::common::slope_claim`]).
//! - `convergence.mnk_slope`: the same for the empirical MNK Φ̂_0 = J_F J_Fᵀ of the sweep's
//!   1-hidden-layer networks ([`super::sweep`]) against the analytic MNK with the same discrete
//!   inner step.

use super::common::{
    rel_fro, slope_claim, slope_control, slope_resolution_detail, width_figure, SIGMA_W_OFF,
};
use super::sweep::{sweep, sweep_mnk};
use super::{CheckReport, Settings};
use crate::error::Result;
use crate::kernel::{self, Activation, Arch};
use crate::net::Mlp;

/// Theoretical exponent of the fluctuations.
pub const SLOPE: f64 = -0.5;
/// Acceptance band for the fitted slope (issue 5).
pub const BAND: (f64, f64) = (-0.65, -0.35);

/// Run claim family 1.
pub fn check_kernel_convergence(st: &Settings) -> Result<CheckReport> {
    let mut rep = CheckReport::new("convergence", 1, "Kernel convergence at initialization");
    let sw = sweep(st)?;
    let arch = Arch::new(2, Activation::Relu)
        .with_sigma_w(2f64.sqrt())
        .with_sigma_b(Some(0.1));
    let widths: Vec<usize> = st.pick(
        vec![64, 128, 256, 512, 1024],
        vec![64, 128, 256, 512, 1024, 2048, 4096],
        vec![64, 128, 256, 512, 1024, 2048, 4096],
    );
    let seeds = st.pick(3, 6, 10);
    let pts = sw.train.points();
    rep.param(
        "NTK network",
        "2 hidden layers, ReLU, σ_w = √2, σ_b = 0.1, NTK parameterization",
    );
    rep.param(
        "NTK points",
        format!(
            "{} inputs (the sweep's training tasks, d = {})",
            pts.nrows(),
            pts.ncols()
        ),
    );
    rep.param(
        "NTK sweep",
        format!("widths {widths:?}, {seeds} seeds each"),
    );
    rep.param(
        "MNK",
        format!(
            "sweep networks (1 hidden layer), λ = {}, τ = {}, widths {:?}, {} seeds",
            sw.maml_config().inner_lr(),
            sw.maml_config().inner_steps(),
            sw.widths,
            sw.seeds
        ),
    );
    let theta = kernel::ntk(&arch, pts.view(), None)?;
    let pb = st.bar((widths.len() * seeds) as u64, "empirical NTK at init");
    let (mut xs, mut es) = (Vec::new(), Vec::new());
    let mut emps = Vec::new();
    for &w in &widths {
        let mlp = Mlp::new(&arch.clone().with_width(w), pts.ncols(), 1)?;
        for s in 0..seeds {
            let th = mlp.init(st.seed.wrapping_add(7919 * (w * 100 + s) as u64));
            let emp = mlp.empirical_ntk(th.view(), pts.view(), None)?;
            xs.push(w as f64);
            es.push(rel_fro(emp.view(), theta.view()));
            if st.controls {
                emps.push(emp);
            }
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let (c, fit) = slope_claim(
        "convergence.ntk_slope",
        "empirical NTK error at init ∝ width^(−1/2)",
        &xs,
        &es,
        SLOPE,
        BAND,
    )?;
    let c = if st.controls {
        let off = arch.clone().with_sigma_w(arch.sigma_w * SIGMA_W_OFF);
        let mut c = c;
        let nngp = kernel::nngp(&arch, pts.view(), None)?;
        let e: Vec<f64> = emps
            .iter()
            .map(|m| rel_fro(m.view(), nngp.view()))
            .collect();
        c = slope_control(
            c,
            "nngp_for_ntk",
            "analytic NNGP Σ in place of the NTK Θ",
            &xs,
            &e,
            SLOPE,
            BAND,
        )?;
        let k = kernel::ntk(&off, pts.view(), None)?;
        let e: Vec<f64> = emps.iter().map(|m| rel_fro(m.view(), k.view())).collect();
        rep.detail(slope_resolution_detail(
            &c,
            "analytic NTK with σ_w off by 1%",
            &xs,
            &e,
            SLOPE,
            BAND,
        )?);
        c
    } else {
        c
    };
    rep.push(c);
    rep.figures.push(width_figure(
        "convergence_ntk_vs_width",
        "Empirical vs analytic NTK at initialization (2 hidden layers)",
        "‖Θ̂ − Θ‖_F / ‖Θ‖_F",
        &xs,
        &es,
        &fit,
        SLOPE,
    ));

    let (mut xm, mut em) = (Vec::new(), Vec::new());
    for r in &sw.runs {
        let phi0 = &r.mnk[0].1;
        xm.push(r.width as f64);
        em.push(rel_fro(phi0.view(), sw.phi.view()));
    }
    let (c, fit) = slope_claim(
        "convergence.mnk_slope",
        "empirical MNK error at init ∝ width^(−1/2)",
        &xm,
        &em,
        SLOPE,
        BAND,
    )?;
    let c = if st.controls {
        let mut c = c;
        let relu = sw.arch.clone();
        for (cid, desc, a) in [
            (
                "sigma_w_off_1pct",
                "analytic MNK with σ_w off by 1%",
                relu.clone().with_sigma_w(relu.sigma_w * SIGMA_W_OFF),
            ),
            (
                "erf_for_relu",
                "analytic MNK of an erf network in place of ReLU",
                Arch {
                    activation: Activation::Erf,
                    ..relu.clone()
                },
            ),
        ] {
            let phi = sweep_mnk(&a, sw.inner).phi(&sw.train)?;
            let e: Vec<f64> = sw
                .runs
                .iter()
                .map(|r| rel_fro(r.mnk[0].1.view(), phi.view()))
                .collect();
            if cid == "sigma_w_off_1pct" {
                rep.detail(slope_resolution_detail(&c, desc, &xm, &e, SLOPE, BAND)?);
            } else {
                c = slope_control(c, cid, desc, &xm, &e, SLOPE, BAND)?;
            }
        }
        c
    } else {
        c
    };
    rep.push(c);
    rep.figures.push(width_figure(
        "convergence_mnk_vs_width",
        "Empirical vs analytic MNK at initialization (1 hidden layer, τ = 1)",
        "‖Φ̂_0 − Φ‖_F / ‖Φ‖_F",
        &xm,
        &em,
        &fit,
        SLOPE,
    ));
    Ok(rep)
}
