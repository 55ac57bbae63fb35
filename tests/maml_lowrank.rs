//! The factored, task-batched meta-gradient (`maml::lowrank`, used by `meta_loss_grad` for full
//! adaptation) against the dense reference algorithm (`meta_loss_grad_dense`: per-task parameter
//! iterates and dense HVPs). Same chain rule, reassociated: agreement to rounding is required
//! (normwise relative difference ≤ 1e-12) across activations, parameterizations, biases, k, τ,
//! orders and unequal task sizes.

mod maml_common;

use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{self, MamlConfig, Order};
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::tol;
use maml_common::random_tasks;

#[test]
fn lowrank_equals_dense() {
    let acts = [
        NetActivation::Relu,
        NetActivation::AbRelu { a: 0.1, b: 1.0 },
        NetActivation::Erf,
        NetActivation::Identity,
        NetActivation::Tanh,
        NetActivation::Softplus,
    ];
    let mut worst: f64 = 0.0;
    for act in acts {
        for (param, sb) in [
            (Parameterization::Ntk, Some(0.3)),
            (Parameterization::Ntk, None),
            (Parameterization::Standard, Some(0.2)),
        ] {
            for (widths, k) in [(vec![7, 5], 2usize), (vec![6], 1), (vec![], 1)] {
                let net = Mlp::from_parts(3, widths.clone(), k, act, 1.2, sb, param).unwrap();
                let theta = net.init(11);
                let mut tasks = random_tasks(3, 4, 5, 3, k, 60);
                // unequal sizes
                tasks[1] = random_tasks(1, 2, 3, 3, k, 61).remove(0);
                for tau in [0usize, 1, 2, 4] {
                    for order in [Order::Second, Order::First] {
                        let cfg = MamlConfig::new(0.07, tau).with_order(order);
                        let (l1, g1) =
                            maml::meta_loss_grad(&net, theta.view(), &tasks, &cfg).unwrap();
                        let (l2, g2) =
                            maml::meta_loss_grad_dense(&net, theta.view(), &tasks, &cfg).unwrap();
                        let e =
                            tol::normwise_rel_err(g1.as_slice().unwrap(), g2.as_slice().unwrap());
                        worst = worst.max(e);
                        assert!(
                            tol::lre(l1, l2) >= 13.0,
                            "{} τ={tau}: loss {l1} vs {l2}",
                            act.name()
                        );
                        assert!(
                            e <= 1e-12,
                            "{} {param:?} {widths:?} τ={tau} {order:?}: {e:.2e}",
                            act.name()
                        );
                    }
                }
            }
        }
    }
    println!("worst normwise relative difference lowrank vs dense: {worst:.2e}");
}

/// Factored Φ̂ (Gram of factored meta-Jacobian rows, never forming J_F) against J_F J_Fᵀ from the
/// explicit meta-Jacobian.
#[test]
fn factored_mnk_equals_dense() {
    let mut worst: f64 = 0.0;
    for act in [
        NetActivation::Tanh,
        NetActivation::Relu,
        NetActivation::Erf,
        NetActivation::Identity,
    ] {
        for (param, sb, widths, k) in [
            (Parameterization::Ntk, Some(0.3), vec![6, 5], 2usize),
            (Parameterization::Standard, None, vec![7], 1),
            (Parameterization::Ntk, Some(0.5), vec![], 1),
        ] {
            let net = Mlp::from_parts(2, widths.clone(), k, act, 1.1, sb, param).unwrap();
            let theta = net.init(5);
            let mut tasks = random_tasks(3, 3, 2, 2, k, 80);
            tasks[2] = random_tasks(1, 4, 3, 2, k, 81).remove(0);
            for tau in [0usize, 1, 3] {
                for order in [Order::Second, Order::First] {
                    let cfg = MamlConfig::new(0.1, tau).with_order(order);
                    let a = maml::empirical_mnk(&net, theta.view(), &tasks, &cfg).unwrap();
                    let b = maml::empirical_mnk_dense(&net, theta.view(), &tasks, &cfg).unwrap();
                    assert_eq!(a.dim(), b.dim());
                    let e = tol::normwise_rel_err(a.as_slice().unwrap(), b.as_slice().unwrap());
                    worst = worst.max(e);
                    assert!(
                        e <= 1e-12,
                        "{} {widths:?} τ={tau} {order:?}: {e:.2e}",
                        act.name()
                    );
                    assert!((0..a.nrows()).all(|i| (0..i).all(|j| a[[i, j]] == a[[j, i]])));
                }
            }
        }
    }
    println!("worst normwise relative difference, factored vs dense Φ̂: {worst:.2e}");
}

/// A wider case (hidden widths 64, 48; d = 10; 5 tasks; τ = 3), where the low-rank factors are
/// far from full rank, for both the meta-gradient and Φ̂.
#[test]
fn lowrank_equals_dense_wider() {
    let net = Mlp::from_parts(
        10,
        vec![64, 48],
        3,
        NetActivation::Softplus,
        1.4,
        Some(0.2),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(21);
    let tasks = random_tasks(5, 5, 7, 10, 3, 90);
    let cfg = MamlConfig::new(0.05, 3);
    let (l1, g1) = maml::meta_loss_grad(&net, theta.view(), &tasks, &cfg).unwrap();
    let (l2, g2) = maml::meta_loss_grad_dense(&net, theta.view(), &tasks, &cfg).unwrap();
    let e = tol::normwise_rel_err(g1.as_slice().unwrap(), g2.as_slice().unwrap());
    println!("wider: meta-gradient normwise rel. diff {e:.2e}");
    assert!(tol::lre(l1, l2) >= 13.0 && e <= 1e-12);
    let a = maml::empirical_mnk(&net, theta.view(), &tasks, &cfg).unwrap();
    let b = maml::empirical_mnk_dense(&net, theta.view(), &tasks, &cfg).unwrap();
    let e = tol::normwise_rel_err(a.as_slice().unwrap(), b.as_slice().unwrap());
    println!("wider: Φ̂ normwise rel. diff {e:.2e}");
    assert!(e <= 1e-12);
}
