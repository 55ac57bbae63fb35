//! Second-order meta-gradients against Richardson-extrapolated central differences of the
//! meta-loss (only meta-loss evaluations are differenced: an independent method), τ ∈ {1, 2, 3},
//! MAML and ANIL; first- vs second-order behaviour.

mod maml_common;

use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{self, Adapt, MamlConfig, Order};
use gbml_testbed::mnk::Task;
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::tol::{self, METAGRAD_MIN_DIGITS};
use gbml_testbed::Error;
use maml_common::{accuracy, randn_vec, random_tasks, richardson};
use ndarray::{Array1, Array2};

fn fd_metagrad(
    net: &Mlp,
    theta: &Array1<f64>,
    tasks: &[Task],
    cfg: &MamlConfig,
    h: f64,
) -> Vec<f64> {
    // full gradient coordinate by coordinate
    (0..net.n_params())
        .map(|j| {
            richardson(
                |t| {
                    let mut th = theta.clone();
                    th[j] += t;
                    vec![maml::meta_loss(net, th.view(), tasks, cfg).unwrap()]
                },
                h,
                5,
            )[0]
        })
        .collect()
}

fn nets() -> Vec<Mlp> {
    vec![
        Mlp::from_parts(
            2,
            vec![5],
            1,
            NetActivation::Tanh,
            1.2,
            Some(0.3),
            Parameterization::Ntk,
        )
        .unwrap(),
        Mlp::from_parts(
            2,
            vec![4, 3],
            2,
            NetActivation::Erf,
            1.0,
            Some(0.2),
            Parameterization::Ntk,
        )
        .unwrap(),
        Mlp::from_parts(
            3,
            vec![4],
            1,
            NetActivation::Softplus,
            1.0,
            Some(0.5),
            Parameterization::Standard,
        )
        .unwrap(),
    ]
}

#[test]
fn second_order_metagrad_matches_richardson() {
    for net in nets() {
        let theta = net.init(9);
        let tasks = random_tasks(2, 3, 4, net.d_in, net.k_out, 50);
        for adapt in [Adapt::Full, Adapt::Head] {
            for tau in 1..=3 {
                let cfg = MamlConfig::new(0.1, tau).with_adapt(adapt);
                let (loss, g) = maml::meta_loss_grad(&net, theta.view(), &tasks, &cfg).unwrap();
                let l2 = maml::meta_loss(&net, theta.view(), &tasks, &cfg).unwrap();
                assert!(tol::lre(loss, l2) >= 14.0);
                let fd = fd_metagrad(&net, &theta, &tasks, &cfg, 0.02);
                let (comp, nw) = accuracy(g.as_slice().unwrap(), &fd);
                println!(
                    "meta-grad {} {:?} τ={tau}: min LRE {comp:.2}, normwise LRE {nw:.2}",
                    net.activation.name(),
                    adapt
                );
                assert!(comp >= METAGRAD_MIN_DIGITS && nw >= METAGRAD_MIN_DIGITS);
            }
        }
    }
}

/// First-order drops the Hessian terms: it differs measurably from the exact meta-gradient on a
/// network with curvature, and equals it at λ = 0 (then θ' = θ and both are ∇ℓ_query(θ)).
#[test]
fn first_vs_second_order() {
    let net = Mlp::from_parts(
        2,
        vec![6],
        1,
        NetActivation::Tanh,
        1.0,
        Some(0.3),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(4);
    let tasks = random_tasks(3, 4, 4, 2, 1, 70);
    for tau in 1..=3 {
        let so = MamlConfig::new(0.2, tau);
        let fo = so.with_order(Order::First);
        let (_, g2) = maml::meta_loss_grad(&net, theta.view(), &tasks, &so).unwrap();
        let (_, g1) = maml::meta_loss_grad(&net, theta.view(), &tasks, &fo).unwrap();
        let rel = tol::normwise_rel_err(g1.as_slice().unwrap(), g2.as_slice().unwrap());
        println!("τ={tau}: |g_FO − g_SO|/|g_SO| = {rel:.3e}");
        assert!(rel > 1e-2, "first and second order must differ measurably");
        let (_, z2) =
            maml::meta_loss_grad(&net, theta.view(), &tasks, &MamlConfig::new(0.0, tau)).unwrap();
        let (_, z1) = maml::meta_loss_grad(
            &net,
            theta.view(),
            &tasks,
            &MamlConfig::new(0.0, tau).with_order(Order::First),
        )
        .unwrap();
        assert_eq!(z1, z2, "λ = 0: identical");
        // and both equal the plain query-loss gradient
        let mut plain = Array1::zeros(net.n_params());
        for t in &tasks {
            plain += &net
                .loss_grad(theta.view(), t.xq.view(), t.yq.view())
                .unwrap()
                .1;
        }
        assert!(tol::normwise_rel_err(z2.as_slice().unwrap(), plain.as_slice().unwrap()) < 1e-15);
    }
}

/// Meta-Jacobian rows are directional derivatives of the meta-outputs (Richardson check), and
/// Jᵀ_F (F − Y) is the meta-gradient.
#[test]
fn meta_jacobian_matches_richardson() {
    let net = Mlp::from_parts(
        2,
        vec![4],
        2,
        NetActivation::Erf,
        1.0,
        Some(0.2),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(2);
    let tasks = random_tasks(2, 3, 2, 2, 2, 90);
    for tau in 1..=3 {
        let cfg = MamlConfig::new(0.15, tau);
        let jf = maml::meta_jacobian(&net, theta.view(), &tasks, &cfg).unwrap();
        let v = randn_vec(net.n_params(), 1.0, 91);
        let fd = richardson(
            |t| {
                let th = &theta + &(&v * t);
                maml::meta_outputs(&net, th.view(), &tasks, &cfg)
                    .unwrap()
                    .iter()
                    .flat_map(|f| f.iter().copied().collect::<Vec<_>>())
                    .collect()
            },
            0.02,
            5,
        );
        let jv = jf.dot(&v);
        let (comp, nw) = accuracy(jv.as_slice().unwrap(), &fd);
        println!("J_F v τ={tau}: min LRE {comp:.2}, normwise {nw:.2}");
        assert!(comp >= METAGRAD_MIN_DIGITS && nw >= METAGRAD_MIN_DIGITS);
        let outs = maml::meta_outputs(&net, theta.view(), &tasks, &cfg).unwrap();
        let r: Vec<f64> = outs
            .iter()
            .zip(&tasks)
            .flat_map(|(f, t)| (f - &t.yq).iter().copied().collect::<Vec<_>>())
            .collect();
        let g = jf.t().dot(&Array1::from(r));
        let (_, g2) = maml::meta_loss_grad(&net, theta.view(), &tasks, &cfg).unwrap();
        assert!(tol::normwise_rel_err(g.as_slice().unwrap(), g2.as_slice().unwrap()) < 1e-13);
        let phi = maml::empirical_mnk(&net, theta.view(), &tasks, &cfg).unwrap();
        assert_eq!(phi.dim(), (2 * 2 * 2, 2 * 2 * 2));
    }
}

#[test]
fn bad_tasks_are_typed_errors() {
    let net = Mlp::from_parts(
        2,
        vec![3],
        1,
        NetActivation::Tanh,
        1.0,
        None,
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(0);
    let cfg = MamlConfig::new(0.1, 1);
    assert!(matches!(
        maml::meta_loss_grad(&net, theta.view(), &[], &cfg),
        Err(Error::Empty(_))
    ));
    let mut t = random_tasks(1, 2, 2, 2, 1, 1);
    t[0].xs = Array2::zeros((0, 2));
    t[0].ys = Array2::zeros((0, 1));
    assert!(matches!(
        maml::meta_loss_grad(&net, theta.view(), &t, &cfg),
        Err(Error::Empty(_))
    ));
    let mut t = random_tasks(1, 2, 2, 2, 1, 1);
    t[0].yq[[0, 0]] = f64::NAN;
    assert!(matches!(
        maml::meta_loss_grad(&net, theta.view(), &t, &cfg),
        Err(Error::NonFinite { .. })
    ));
    let mut t = random_tasks(1, 2, 2, 2, 1, 1);
    t[0].xq = Array2::zeros((2, 3));
    assert!(matches!(
        maml::meta_loss_grad(&net, theta.view(), &t, &cfg),
        Err(Error::Shape { .. })
    ));
    let t = random_tasks(1, 2, 2, 2, 1, 1);
    assert!(matches!(
        maml::meta_loss_grad(&net, theta.view(), &t, &MamlConfig::new(-0.1, 1)),
        Err(Error::InvalidParameter { .. })
    ));
}
