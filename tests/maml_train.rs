//! Outer trainer: exact linear-model dynamics, divergence detection, centred network, records.

mod maml_common;

use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{self, MamlConfig, TrainConfig};
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::{tol, Error};
use maml_common::random_tasks;
use ndarray::{Array1, Array2};

/// For a model linear in θ the meta-outputs are affine in θ, so outer GD gives exactly
/// r_t = (I − ηΦ)^t r_0 with the (constant) MNK Φ = J_F J_Fᵀ (MATH.md §4), and
/// L(θ_t) = ½‖r_t‖². Checked step by step for 30 steps.
#[test]
fn linear_model_follows_kernel_dynamics() {
    let net = Mlp::from_parts(
        3,
        vec![],
        1,
        NetActivation::Identity,
        1.0,
        Some(0.5),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta0 = net.init(5);
    let tasks = random_tasks(4, 3, 2, 3, 1, 30);
    let cfg = MamlConfig::new(0.1, 2);
    let phi = maml::empirical_mnk(&net, theta0.view(), &tasks, &cfg).unwrap();
    let lmax = gbml_testbed::linalg::sym_eigvals(phi.view()).unwrap()[phi.nrows() - 1];
    let eta = 1.0 / lmax;
    let outs = maml::meta_outputs(&net, theta0.view(), &tasks, &cfg).unwrap();
    let r0: Array1<f64> = outs
        .iter()
        .zip(&tasks)
        .flat_map(|(f, t)| (f - &t.yq).iter().copied().collect::<Vec<_>>())
        .collect();
    let steps = 30;
    let res = maml::train(
        &net,
        theta0.view(),
        &tasks,
        &cfg,
        &TrainConfig::new(eta, steps),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(res.records.len(), steps + 1);
    let step = Array2::<f64>::eye(phi.nrows()) - &(&phi * eta);
    let mut r = r0.clone();
    let mut worst = f64::INFINITY;
    for rec in &res.records {
        let l = 0.5 * r.dot(&r);
        worst = worst.min(tol::lre(rec.meta_loss, l));
        r = step.dot(&r);
    }
    println!(
        "linear model: min LRE of L(θ_t) vs ½‖(I − ηΦ)^t r_0‖² over {steps} steps: {worst:.2}"
    );
    assert!(worst >= 11.0);
    // records: distance and per-layer change are consistent with the final parameters
    let last = res.records.last().unwrap();
    let d = (&res.theta - &theta0).mapv(|v| v * v).sum().sqrt();
    assert!(tol::lre(last.dist_from_init, d) >= 14.0);
    assert_eq!(last.rel_weight_change.len(), 1);
    assert!(res.records[0].dist_from_init == 0.0);
}

#[test]
fn divergence_is_detected_with_step() {
    let net = Mlp::from_parts(
        2,
        vec![8],
        1,
        NetActivation::Tanh,
        1.0,
        Some(0.1),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta0 = net.init(1);
    let tasks = random_tasks(3, 3, 3, 2, 1, 40);
    let cfg = MamlConfig::new(0.05, 1);
    let phi = maml::empirical_mnk(&net, theta0.view(), &tasks, &cfg).unwrap();
    let lmax = gbml_testbed::linalg::sym_eigvals(phi.view()).unwrap()[phi.nrows() - 1];
    let tc = TrainConfig::new(20.0 / lmax, 200).with_mnk_every(Some(1000));
    let err = maml::train(&net, theta0.view(), &tasks, &cfg, &tc, &mut |_, _| {}).unwrap_err();
    match err {
        Error::Diverged {
            step,
            critical_rate,
            ..
        } => {
            println!(
                "diverged at step {step}, critical rate {critical_rate:.3e} (2/λmax = {:.3e})",
                2.0 / lmax
            );
            assert!((1..200).contains(&step));
            assert!(tol::lre(critical_rate, 2.0 / lmax) >= 10.0);
        }
        other => panic!("expected Diverged, got {other:?}"),
    }
    assert!(matches!(
        maml::train(
            &net,
            theta0.view(),
            &tasks,
            &cfg,
            &TrainConfig::new(-1.0, 3),
            &mut |_, _| {}
        ),
        Err(Error::InvalidParameter { .. })
    ));
}

/// Centred network: f_c(·; θ_0) ≡ 0, so with λ = 0 the initial meta-loss is ½‖Y‖², predictions at
/// θ_0 are exactly 0, and Φ̂ snapshots are recorded at the requested steps.
#[test]
fn centred_network_starts_at_zero() {
    let net = Mlp::from_parts(
        2,
        vec![16],
        1,
        NetActivation::Erf,
        1.0,
        Some(0.2),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta0 = net.init(2);
    let tasks = random_tasks(2, 3, 4, 2, 1, 50);
    let cfg = MamlConfig::new(0.0, 1);
    let tc = TrainConfig::new(0.01, 4)
        .with_centred(true)
        .with_mnk_every(Some(2));
    let res = maml::train(&net, theta0.view(), &tasks, &cfg, &tc, &mut |_, _| {}).unwrap();
    let y2: f64 = tasks.iter().map(|t| 0.5 * t.yq.mapv(|v| v * v).sum()).sum();
    assert!(tol::lre(res.records[0].meta_loss, y2) >= 14.0);
    assert!(res.records[4].meta_loss < res.records[0].meta_loss);
    assert_eq!(
        res.mnk.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
    let p = maml::predict(
        &net,
        theta0.view(),
        Some(theta0.view()),
        &tasks,
        &MamlConfig::new(0.1, 2),
    )
    .unwrap();
    // at θ_0 the centred network adapts from 0 towards the support labels; with λ = 0: exactly 0
    let p0 = maml::predict(&net, theta0.view(), Some(theta0.view()), &tasks, &cfg).unwrap();
    assert!(p0.iter().all(|m| m.iter().all(|&v| v == 0.0)));
    assert!(p.iter().any(|m| m.iter().any(|&v| v != 0.0)));
}
