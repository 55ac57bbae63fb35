//! The outer-rate advice on a finite network (issue 15 item 5): second-order MAML (width 512,
//! centred network, seed 0) trained at the advised best rate 2/(λ_min + λ_max) of the analytic Φ
//! lowers the meta-loss without ever rising above L(θ_0); at 1.2 × the critical rate 2/λ_max the
//! meta-loss rises more than 10× above L(θ_0) (instability), and at 2 × it diverges.
//! **Changed after the first run:** the issue asked for divergence at 1.2 × critical; the first
//! run showed a catapult instead (L rose from 1.0 to 71, then fell back to 0.07 by step 60), so
//! the 1.2 × check asserts the instability and divergence is asserted at 2 ×. Deterministic on
//! fixed seeds (no statistical false-positive rate: one fixed configuration).

use gbml_testbed::advise::rates;
use gbml_testbed::checks::generalization::{gp_tasks, GpSpec};
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::maml::{train, MamlConfig, TrainConfig};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule};
use gbml_testbed::net::Mlp;
use gbml_testbed::Error;

#[test]
fn maml_converges_at_the_advised_rate_and_diverges_above_critical() {
    let set = gp_tasks(
        GpSpec {
            tasks: 5,
            m: 4,
            n: 4,
            d: 2,
            lengthscale: 0.5,
            amplitude: 0.5,
            spread: 0.3,
            noise: 0.0,
            features: 64,
        },
        1,
        2,
    )
    .unwrap();
    let arch = Arch::new(1, Activation::Relu)
        .with_sigma_w(2f64.sqrt())
        .with_sigma_b(Some(1.0));
    let lr = 0.05;
    let mnk = Mnk::new(BaseKernel::Analytic(arch.clone()), Schedule::steps(lr, 1));
    let outer = rates::outer_rates(mnk.phi(&set).unwrap().view()).unwrap();
    let mlp = Mlp::new(&arch.with_widths(vec![512]), 2, 1).unwrap();
    let th = mlp.init(0);
    let tasks = set.tasks().to_vec();
    let cfg = MamlConfig::new(lr, 1);
    let run = |eta: f64| {
        let tc = TrainConfig {
            divergence_factor: 1e4,
            ..TrainConfig::new(eta, 60).with_centred(true)
        };
        train(&mlp, th.view(), &tasks, &cfg, &tc, &mut |_, _| {})
    };
    let ok = run(outer.best).unwrap();
    let (l0, lt) = (
        ok.records[0].meta_loss,
        ok.records.last().unwrap().meta_loss,
    );
    println!("best rate {:.4e}: L0 {l0:.4e} → L60 {lt:.4e}", outer.best);
    assert!(
        lt < 0.5 * l0,
        "no convergence at the advised rate: {l0} → {lt}"
    );
    let max_ok = ok.records.iter().map(|r| r.meta_loss).fold(0.0, f64::max);
    assert!(
        max_ok <= l0,
        "the meta-loss rose above L0 at the advised rate: {max_ok} > {l0}"
    );
    // Above the critical rate the linear prediction (divergence) shows as an instability: the
    // meta-loss leaves L0 by more than 10×. At 1.2× this finite network then recovers (catapult
    // dynamics, Lewkowycz et al. 2020); at 2× it diverges.
    let unstable = run(1.2 * outer.critical).unwrap();
    let peak = unstable
        .records
        .iter()
        .map(|r| r.meta_loss)
        .fold(0.0, f64::max);
    println!("1.2 x critical: peak meta-loss {peak:.4e} (L0 {l0:.4e})");
    assert!(
        peak > 10.0 * l0,
        "no instability at 1.2 × critical: peak {peak}"
    );
    assert!(
        matches!(run(2.0 * outer.critical), Err(Error::Diverged { .. })),
        "2 × critical did not diverge"
    );
}
