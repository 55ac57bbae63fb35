//! Gradients, Hessian-vector products, Jacobian rows and the empirical NTK of the finite network,
//! checked against Richardson-extrapolated central differences in f64 (an independent method:
//! only loss/gradient evaluations are differenced). Smooth activations (erf, tanh, softplus,
//! identity) anywhere; the ReLU family only where no pre-activation changes sign within the
//! largest finite-difference step (checked, not assumed).

mod maml_common;

use gbml_testbed::kernel::{Activation, Parameterization};
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::tol::{self, GRAD_MIN_DIGITS};
use gbml_testbed::Error;
use maml_common::{accuracy, randn, randn_vec, richardson};
use ndarray::{Array1, Array2, ArrayView1};

fn nets() -> Vec<(String, Mlp)> {
    let acts = [
        NetActivation::Erf,
        NetActivation::Tanh,
        NetActivation::Softplus,
        NetActivation::Identity,
        NetActivation::Relu,
        NetActivation::AbRelu { a: 0.2, b: 1.0 },
    ];
    let mut out = Vec::new();
    for act in acts {
        for (pname, p) in [
            ("ntk", Parameterization::Ntk),
            ("std", Parameterization::Standard),
        ] {
            let net = Mlp::from_parts(3, vec![6, 5], 2, act, 1.3, Some(0.4), p).unwrap();
            out.push((format!("{}-{}", act.name(), pname), net));
        }
    }
    // no-bias, one hidden layer
    out.push((
        "tanh-nobias-L1".into(),
        Mlp::from_parts(
            4,
            vec![7],
            1,
            NetActivation::Tanh,
            1.0,
            None,
            Parameterization::Ntk,
        )
        .unwrap(),
    ));
    out
}

/// ReLU family: is the activation pattern the same at θ + t v for |t| ≤ h as at θ?
fn pattern_stable(
    net: &Mlp,
    theta: &Array1<f64>,
    v: &Array1<f64>,
    x: &Array2<f64>,
    h: f64,
) -> bool {
    if net.activation.has_curvature() || net.activation == NetActivation::Identity {
        return true;
    }
    let sig = |th: &Array1<f64>| -> Vec<bool> {
        let c = net.forward_cache(th.view(), x.view()).unwrap();
        c.z.iter()
            .flat_map(|z| z.iter().map(|&v| v > 0.0).collect::<Vec<_>>())
            .collect()
    };
    let base = sig(theta);
    [h, -h].iter().all(|&t| {
        let th = theta + &(v * t);
        sig(&th) == base
    })
}

const H_SMOOTH: f64 = 0.02;
const LEVELS: usize = 5;

fn step(net: &Mlp) -> f64 {
    if net.activation.has_curvature() {
        H_SMOOTH
    } else {
        1e-3
    }
}

#[test]
fn gradient_matches_richardson() {
    for (name, net) in nets() {
        let theta = net.init(7);
        let x = randn(5, net.d_in, 1.0, 11);
        let y = randn(5, net.k_out, 1.0, 12);
        let (_, g) = net.loss_grad(theta.view(), x.view(), y.view()).unwrap();
        let h = step(&net);
        let mut fd = vec![0.0; net.n_params()];
        for j in 0..net.n_params() {
            let mut e = Array1::zeros(net.n_params());
            e[j] = 1.0;
            assert!(
                pattern_stable(&net, &theta, &e, &x, h),
                "{name}: kink within FD step"
            );
            fd[j] = richardson(
                |t| {
                    let th = &theta + &(&e * t);
                    vec![net.loss(th.view(), x.view(), y.view()).unwrap()]
                },
                h,
                LEVELS,
            )[0];
        }
        let (comp, nw) = accuracy(g.as_slice().unwrap(), &fd);
        println!("gradient {name}: min LRE {comp:.2}, normwise LRE {nw:.2}");
        assert!(
            comp >= GRAD_MIN_DIGITS && nw >= GRAD_MIN_DIGITS,
            "{name}: {comp} {nw}"
        );
    }
}

#[test]
fn hvp_matches_richardson() {
    for (name, net) in nets() {
        let theta = net.init(3);
        let x = randn(6, net.d_in, 1.0, 21);
        let y = randn(6, net.k_out, 1.0, 22);
        let v = randn_vec(net.n_params(), 1.0, 23);
        let hv = net
            .loss_hvp(theta.view(), x.view(), y.view(), v.view())
            .unwrap();
        let h = step(&net);
        assert!(
            pattern_stable(&net, &theta, &v, &x, h),
            "{name}: kink within FD step"
        );
        let fd = richardson(
            |t| {
                let th = &theta + &(&v * t);
                net.loss_grad(th.view(), x.view(), y.view())
                    .unwrap()
                    .1
                    .to_vec()
            },
            h,
            LEVELS,
        );
        let (comp, nw) = accuracy(hv.as_slice().unwrap(), &fd);
        println!("HVP {name}: min LRE {comp:.2}, normwise LRE {nw:.2}");
        assert!(
            comp >= GRAD_MIN_DIGITS && nw >= GRAD_MIN_DIGITS,
            "{name}: {comp} {nw}"
        );
        // symmetry u·Hv = v·Hu (exact Hessian is symmetric)
        let u = randn_vec(net.n_params(), 1.0, 24);
        let hu = net
            .loss_hvp(theta.view(), x.view(), y.view(), u.view())
            .unwrap();
        let (a, b) = (u.dot(&hv), v.dot(&hu));
        assert!(tol::lre(a, b) >= 12.0, "{name}: HVP not symmetric {a} {b}");
    }
}

/// The HVP includes the activation curvature: with tanh it differs from the Gauss–Newton product
/// JᵀJv, and for the identity network with zero residual it equals it.
#[test]
fn hvp_is_not_gauss_newton_with_curvature() {
    for (act, expect_equal) in [
        (NetActivation::Tanh, false),
        (NetActivation::Identity, true),
    ] {
        let net =
            Mlp::from_parts(3, vec![4], 1, act, 1.0, Some(0.3), Parameterization::Ntk).unwrap();
        let theta = net.init(1);
        let x = randn(4, 3, 1.0, 2);
        // zero residual: labels = outputs, so H = JᵀJ + Σ r·∇²f = JᵀJ only when f is ... linear
        let y = net.forward(theta.view(), x.view()).unwrap();
        let v = randn_vec(net.n_params(), 1.0, 3);
        let hv = net
            .loss_hvp(theta.view(), x.view(), y.view(), v.view())
            .unwrap();
        let j = net.jacobian(theta.view(), x.view()).unwrap();
        let gn = j.t().dot(&j.dot(&v));
        let rel = tol::normwise_rel_err(hv.as_slice().unwrap(), gn.as_slice().unwrap());
        println!(
            "{}: |Hv − JᵀJv|/|JᵀJv| at zero residual = {rel:.2e}",
            act.name()
        );
        // At zero residual H = JᵀJ for every network; curvature shows at non-zero residual.
        assert!(
            rel < 1e-12,
            "{}: zero-residual Hessian must be Gauss–Newton",
            act.name()
        );
        let y2 = &y + 1.0;
        let hv2 = net
            .loss_hvp(theta.view(), x.view(), y2.view(), v.view())
            .unwrap();
        let rel2 = tol::normwise_rel_err(hv2.as_slice().unwrap(), gn.as_slice().unwrap());
        println!(
            "{}: |Hv − JᵀJv|/|JᵀJv| at residual −1 = {rel2:.2e}",
            act.name()
        );
        if expect_equal {
            // identity, depth 1: f is bilinear in (W¹, W²) so the residual term is non-zero
            // even without activation curvature; only depth 0 is exactly Gauss–Newton.
            assert!(rel2 > 1e-6);
        } else {
            assert!(rel2 > 1e-3, "tanh: residual + curvature terms must show");
        }
    }
}

#[test]
fn jacobian_and_empirical_ntk_are_consistent() {
    for (name, net) in nets() {
        let theta = net.init(5);
        let x1 = randn(4, net.d_in, 1.0, 31);
        let x2 = randn(3, net.d_in, 1.0, 32);
        let j1 = net.jacobian(theta.view(), x1.view()).unwrap();
        let j2 = net.jacobian(theta.view(), x2.view()).unwrap();
        // Jacobian rows against Richardson differences of the outputs
        let v = randn_vec(net.n_params(), 1.0, 33);
        let h = step(&net);
        assert!(pattern_stable(&net, &theta, &v, &x1, h));
        let fd = richardson(
            |t| {
                let th = &theta + &(&v * t);
                net.forward(th.view(), x1.view())
                    .unwrap()
                    .iter()
                    .copied()
                    .collect()
            },
            h,
            LEVELS,
        );
        let jv = j1.dot(&v);
        let (comp, nw) = accuracy(jv.as_slice().unwrap(), &fd);
        println!("Jv {name}: min LRE {comp:.2}, normwise {nw:.2}");
        assert!(comp >= GRAD_MIN_DIGITS && nw >= GRAD_MIN_DIGITS);
        // Θ̂ = J Jᵀ
        let ntk = net
            .empirical_ntk(theta.view(), x1.view(), Some(x2.view()))
            .unwrap();
        let jj = j1.dot(&j2.t());
        let rel = tol::normwise_rel_err(ntk.as_slice().unwrap(), jj.as_slice().unwrap());
        assert!(rel < 1e-13, "{name}: NTK vs JJᵀ {rel:.2e}");
        let ntk11 = net.empirical_ntk(theta.view(), x1.view(), None).unwrap();
        let jj11 = j1.dot(&j1.t());
        assert!(tol::normwise_rel_err(ntk11.as_slice().unwrap(), jj11.as_slice().unwrap()) < 1e-13);
    }
}

/// Depth 0, identity: Θ̂(x, x') = s² x·x' + β² exactly (= the analytic NTK of a linear model).
#[test]
fn linear_model_ntk_closed_form() {
    let net = Mlp::from_parts(
        3,
        vec![],
        1,
        NetActivation::Identity,
        1.5,
        Some(0.5),
        Parameterization::Ntk,
    )
    .unwrap();
    let x = randn(4, 3, 1.0, 41);
    let ntk = net
        .empirical_ntk(net.init(0).view(), x.view(), None)
        .unwrap();
    let s2 = 1.5 * 1.5 / 3.0;
    for i in 0..4 {
        for j in 0..4 {
            let r = s2 * x.row(i).dot(&x.row(j)) + 0.25;
            assert!(tol::lre(ntk[[i, j]], r) >= 14.0);
        }
    }
    // and it equals the kernel module's analytic NTK
    let arch = gbml_testbed::kernel::Arch::new(0, Activation::Identity)
        .with_sigma_w(1.5)
        .with_sigma_b(Some(0.5));
    let k = gbml_testbed::kernel::ntk(&arch, x.view(), None).unwrap();
    assert!(tol::normwise_rel_err(ntk.as_slice().unwrap(), k.as_slice().unwrap()) < 1e-14);
}

#[test]
fn init_is_reproducible_and_layout_documented() {
    let net = Mlp::from_parts(
        3,
        vec![4, 2],
        2,
        NetActivation::Erf,
        1.0,
        Some(0.1),
        Parameterization::Ntk,
    )
    .unwrap();
    let a = net.init(42);
    let b = net.init(42);
    let c = net.init(43);
    assert_eq!(
        a.as_slice()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        b.as_slice()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
    assert_ne!(a, c);
    assert_eq!(net.n_params(), 3 * 4 + 4 + 4 * 2 + 2 + 2 * 2 + 2);
    // W^2[1, 3] lives at offset 16 + 1·4 + 3
    let w2 = net.w(a.view(), 2);
    assert_eq!(w2.dim(), (2, 4));
    assert_eq!(w2[[1, 3]], a[16 + 4 + 3]);
    assert_eq!(net.b(a.view(), 1).unwrap()[2], a[12 + 2]);
    assert_eq!(net.head_range(), 26..32);
    // standard parameterization: W ~ N(0, σ_w²/n_in) from the same stream
    let std = Mlp::from_parts(
        3,
        vec![4, 2],
        2,
        NetActivation::Erf,
        2.0,
        Some(0.1),
        Parameterization::Standard,
    )
    .unwrap();
    let s = std.init(42);
    assert_eq!(s[0], a[0] * (2.0 / 3f64.sqrt()));
    assert_eq!(s[12], a[12] * 0.1);
}

#[test]
fn bad_input_is_a_typed_error() {
    let net = Mlp::from_parts(
        3,
        vec![4],
        1,
        NetActivation::Tanh,
        1.0,
        None,
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(0);
    let short: Array1<f64> = Array1::zeros(3);
    let x = Array2::<f64>::zeros((2, 3));
    assert!(matches!(
        net.forward(short.view(), x.view()),
        Err(Error::Shape { .. })
    ));
    let xbad = Array2::<f64>::zeros((2, 4));
    assert!(matches!(
        net.forward(theta.view(), xbad.view()),
        Err(Error::Shape { .. })
    ));
    let ybad = Array2::<f64>::zeros((3, 1));
    assert!(matches!(
        net.loss_grad(theta.view(), x.view(), ybad.view()),
        Err(Error::Shape { .. })
    ));
    let v: ArrayView1<f64> = short.view();
    assert!(net
        .loss_hvp(theta.view(), x.view(), Array2::zeros((2, 1)).view(), v)
        .is_err());
    assert!(Mlp::from_parts(
        0,
        vec![4],
        1,
        NetActivation::Tanh,
        1.0,
        None,
        Parameterization::Ntk
    )
    .is_err());
    assert!(Mlp::from_parts(
        3,
        vec![0],
        1,
        NetActivation::Tanh,
        1.0,
        None,
        Parameterization::Ntk
    )
    .is_err());
    assert!(Mlp::from_parts(
        3,
        vec![2],
        1,
        NetActivation::Tanh,
        -1.0,
        None,
        Parameterization::Ntk
    )
    .is_err());
    let arch_no_width = gbml_testbed::kernel::Arch::new(2, Activation::Relu);
    assert!(Mlp::new(&arch_no_width, 3, 1).is_err());
}

#[test]
fn non_finite_input_is_a_typed_error() {
    let net = Mlp::from_parts(
        2,
        vec![3],
        1,
        NetActivation::Erf,
        1.0,
        None,
        Parameterization::Ntk,
    )
    .unwrap();
    let mut theta = net.init(0);
    let x = Array2::<f64>::ones((2, 2));
    let mut xn = x.clone();
    xn[[1, 0]] = f64::INFINITY;
    assert!(matches!(
        net.forward(theta.view(), xn.view()),
        Err(Error::NonFinite { .. })
    ));
    let mut yn = Array2::<f64>::zeros((2, 1));
    yn[[0, 0]] = f64::NAN;
    assert!(matches!(
        net.loss_grad(theta.view(), x.view(), yn.view()),
        Err(Error::NonFinite { .. })
    ));
    theta[0] = f64::NAN;
    assert!(matches!(
        net.forward(theta.view(), x.view()),
        Err(Error::NonFinite { .. })
    ));
}
