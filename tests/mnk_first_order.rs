//! The first-order MNK Φ_FO = K_qq − P K_sq (`Mnk::phi_first_order`, MATH.md §3–§4) and its slow
//! mode (`mnk::SlowMode`):
//!
//! * depth 0 (f = w·x, exactly linear in θ): Φ_FO equals J_F J_qᵀ of the network's meta-Jacobian
//!   (second order) and its un-adapted query Jacobian, and one first-order MAML outer step moves
//!   the meta-residual exactly by r ← (I − ηΦ_FO) r; the symmetric Φ does NOT (the control:
//!   first-order dynamics are not the second-order kernel's);
//! * a wide ReLU net (width 4096): the analytic Φ_FO against the empirical J_F J_qᵀ at θ_0;
//! * SlowMode: equals (1 − ηλ_min)² on a symmetric matrix, |1 − ημ|² on a rotation-scaling block.
use gbml_testbed::kernel::{Activation, Arch, Parameterization};
use gbml_testbed::maml::{meta_jacobian, meta_loss_grad, meta_outputs, MamlConfig, Order};
use gbml_testbed::mnk::{
    BaseKernel, Mnk, Precomputed, Schedule, SlowMode, Spectrum, Task, TaskSet,
};
use gbml_testbed::net::{Mlp, NetActivation};
use ndarray::{array, Array1, Array2};

fn tasks(d: usize) -> Vec<Task> {
    let f =
        |n: usize, s: f64| Array2::from_shape_fn((n, d), |(i, j)| ((i * d + j) as f64 * s).sin());
    let g = |n: usize, s: f64| Array2::from_shape_fn((n, 1), |(i, _)| (i as f64 * s + 0.3).cos());
    vec![
        Task::new(f(4, 0.7), g(4, 0.3), f(3, 1.1), g(3, 0.9)).unwrap(),
        Task::new(f(5, 1.9), g(5, 0.5), f(2, 0.4), g(2, 1.3)).unwrap(),
        Task::new(f(3, 0.23), g(3, 1.7), f(4, 2.9), g(4, 0.2)).unwrap(),
    ]
}

fn flat(parts: &[Array2<f64>]) -> Array1<f64> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs())) / scale
}

#[test]
fn depth0_phi_fo_is_exact_first_order_kernel() {
    let d = 4;
    let net = Mlp::from_parts(
        d,
        vec![],
        1,
        NetActivation::Identity,
        1.0,
        None,
        Parameterization::Standard,
    )
    .unwrap();
    let ts = tasks(d);
    let set = TaskSet::new(ts.clone()).unwrap();
    let z = set.points();
    let k = z.dot(&z.t()); // Θ(x, x') = xᵀx' for f = w·x
    let (lr, tau) = (0.15, 3);
    let mnk = Mnk::new(
        BaseKernel::Precomputed(Precomputed { ntk: k, nngp: None }),
        Schedule::steps(lr, tau),
    );
    let idx = gbml_testbed::mnk::layout::index_tasks(&set, 0).unwrap();
    let fo = mnk.phi_first_order(&idx).unwrap();
    let phi = mnk.phi(&idx).unwrap();
    // against the network's own Jacobians: J_F (second order) and J_q (λ = 0: un-adapted)
    let theta = net.init(3);
    let jf = meta_jacobian(&net, theta.view(), &ts, &MamlConfig::new(lr, tau)).unwrap();
    let jq = meta_jacobian(&net, theta.view(), &ts, &MamlConfig::new(0.0, tau)).unwrap();
    let emp = jf.dot(&jq.t());
    assert!(
        max_rel(&fo, &emp) < 1e-12,
        "Φ_FO vs J_F J_qᵀ: {}",
        max_rel(&fo, &emp)
    );
    // Φ_FO is not Φ at λ > 0 (else nothing below would tell the orders apart)
    assert!(max_rel(&phi, &fo) > 1e-2);
    // one first-order outer step: r ← (I − ηΦ_FO) r exactly; the second-order step follows Φ
    let eta = 0.05;
    let y = flat(&ts.iter().map(|t| t.yq.clone()).collect::<Vec<_>>());
    for (order, kern, other) in [(Order::First, &fo, &phi), (Order::Second, &phi, &fo)] {
        let cfg = MamlConfig::new(lr, tau).with_order(order);
        let r0 = flat(&meta_outputs(&net, theta.view(), &ts, &cfg).unwrap()) - &y;
        let (_, g) = meta_loss_grad(&net, theta.view(), &ts, &cfg).unwrap();
        let th1 = &theta - &(&g * eta);
        let r1 = flat(&meta_outputs(&net, th1.view(), &ts, &cfg).unwrap()) - &y;
        let pred = &r0 - &(kern.dot(&r0) * eta);
        let wrong = &r0 - &(other.dot(&r0) * eta);
        let err = (&r1 - &pred).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err_wrong = (&r1 - &wrong).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = r0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            err < 1e-12 * scale,
            "{order:?}: step error {err} (scale {scale})"
        );
        assert!(
            err_wrong > 1e-4 * scale,
            "{order:?}: the other kernel also fits ({err_wrong})"
        );
    }
}

#[test]
fn wide_relu_phi_fo_matches_empirical_kernel() {
    let d = 3;
    let arch = Arch::new(1, Activation::Relu).with_sigma_w(2f64.sqrt());
    let ts = tasks(d);
    let set = TaskSet::new(ts.clone()).unwrap();
    let (lr, tau) = (0.3, 2);
    let mnk = Mnk::new(BaseKernel::Analytic(arch.clone()), Schedule::steps(lr, tau));
    let fo = mnk.phi_first_order(&set).unwrap();
    let phi = mnk.phi(&set).unwrap();
    let net = Mlp::new(&arch.clone().with_width(4096), d, 1).unwrap();
    let theta = net.init(11);
    let jf = meta_jacobian(&net, theta.view(), &ts, &MamlConfig::new(lr, tau)).unwrap();
    let jq = meta_jacobian(&net, theta.view(), &ts, &MamlConfig::new(0.0, tau)).unwrap();
    let emp = jf.dot(&jq.t());
    let e = max_rel(&fo, &emp);
    assert!(e < 0.05, "analytic Φ_FO vs empirical at width 4096: {e}");
    // the empirical first-order kernel is closer to Φ_FO than to Φ
    assert!(
        max_rel(&phi, &emp) > 2.0 * e,
        "Φ: {} vs Φ_FO: {e}",
        max_rel(&phi, &emp)
    );
}

#[test]
fn slow_mode_symmetric_and_complex() {
    let m = array![[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]];
    let sp = Spectrum::of(m.view()).unwrap();
    let eta = 0.5 * sp.eta_crit;
    let sm = SlowMode::of(m.view(), eta).unwrap();
    assert!((sm.loss_ratio - sp.loss_ratio(eta)).abs() < 1e-13);
    assert!((sm.mu_re - sp.lambda_min).abs() < 1e-12 && sm.mu_im == 0.0);
    // a·I + b·J (J rotation): eigenvalues a ± ib, next to a larger real eigenvalue 5
    let m = array![[1.0, -0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 5.0]];
    let sm = SlowMode::of(m.view(), 0.2).unwrap();
    let want = (1.0f64 - 0.2).powi(2) + (0.2f64 * 0.5).powi(2);
    assert!(
        (sm.loss_ratio - want).abs() < 1e-13,
        "{} vs {want}",
        sm.loss_ratio
    );
    assert!((sm.mu_im.abs() - 0.5).abs() < 1e-13);
    // typed errors
    assert!(SlowMode::of(m.view(), f64::NAN).is_err());
    assert!(SlowMode::of(Array2::<f64>::zeros((2, 3)).view(), 0.1).is_err());
}

#[test]
fn phi_fo_zero_inner_rate_is_phi() {
    let arch = Arch::new(1, Activation::Relu);
    let set = TaskSet::new(tasks(3)).unwrap();
    let mnk = Mnk::new(BaseKernel::Analytic(arch), Schedule::steps(0.0, 2));
    assert_eq!(mnk.phi_first_order(&set).unwrap(), mnk.phi(&set).unwrap());
}
