//! Closed-form MAML on the linear model f(x) = w·x (depth 0, identity, no bias, k = 1).
//!
//! Derivation (single task, labels 0, loss ½(w·x)², inner rate λ, τ inner steps):
//!
//! * inner step: ∇_w ½(w·x')² = (w·x') x', so w_{s+1} = w_s − λ (w_s·x') x' = (I − λ x'x'ᵀ) w_s,
//!   hence w_τ = A^τ w with the symmetric A = I − λ x'x'ᵀ;
//! * meta-loss L(w) = ½ (w_τ·x_q)² = ½ (xᵀ_q A^τ w)²;
//! * second-order meta-gradient ∇L = (A^τ)ᵀ x_q (x_q·w_τ) = A^τ x_q (x_q·w_τ);
//! * first-order meta-gradient (Hessian terms dropped) = x_q (x_q·w_τ).
//!
//! Exact rational arithmetic: with λ = 1/2, B = 2A = 2I − x'x'ᵀ is an integer matrix, so
//! w_τ = B^τ w / 2^τ, ∇L = B^τ x_q (x_q·B^τ w) / 4^τ and the first-order gradient is
//! x_q (x_q·B^τ w) / 2^τ, all computed here with i128 integers (independent of the library).
//!
//! τ = 1 (the published case): x'·w = 23, w_1 = [−9.5, −20, −29.5], x_q·w_1 = −315,
//! A x_q = x_q − ½·32·x' = [−12, −27, −42]; second-order −315·[−12, −27, −42] =
//! [3780, 8505, 13230]; first-order −315·[4, 5, 6] = [−1260, −1575, −1890].

use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{self, MamlConfig, Order};
use gbml_testbed::mnk::Task;
use gbml_testbed::net::{Mlp, NetActivation};
use ndarray::{array, Array1};

const W: [i128; 3] = [2, 3, 5];
const XS: [i128; 3] = [1, 2, 3];
const XQ: [i128; 3] = [4, 5, 6];

fn b_apply(v: [i128; 3]) -> [i128; 3] {
    // B v = 2v − x'(x'·v)
    let d: i128 = XS.iter().zip(&v).map(|(a, b)| a * b).sum();
    [
        2 * v[0] - XS[0] * d,
        2 * v[1] - XS[1] * d,
        2 * v[2] - XS[2] * d,
    ]
}

fn b_pow(mut v: [i128; 3], tau: u32) -> [i128; 3] {
    for _ in 0..tau {
        v = b_apply(v);
    }
    v
}

/// (second-order gradient, first-order gradient, meta-loss) as exact rationals turned to f64.
fn exact(tau: u32) -> ([f64; 3], [f64; 3], f64) {
    let bw = b_pow(W, tau); // 2^τ w_τ
    let q: i128 = XQ.iter().zip(&bw).map(|(a, b)| a * b).sum(); // 2^τ (x_q·w_τ)
    let bq = b_pow(XQ, tau); // 2^τ A^τ x_q
    let two_t = 2f64.powi(tau as i32);
    let so = [0, 1, 2].map(|i| (bq[i] * q) as f64 / (two_t * two_t));
    let fo = [0, 1, 2].map(|i| (XQ[i] * q) as f64 / two_t);
    let loss = (q * q) as f64 / (2.0 * two_t * two_t);
    (so, fo, loss)
}

fn nets() -> Vec<Mlp> {
    vec![
        // standard parameterization: f = W x exactly
        Mlp::from_parts(
            3,
            vec![],
            1,
            NetActivation::Identity,
            1.0,
            None,
            Parameterization::Standard,
        )
        .unwrap(),
        // NTK parameterization with σ_w = √d: the multiplier √3/√3 is exactly 1.0
        Mlp::from_parts(
            3,
            vec![],
            1,
            NetActivation::Identity,
            3f64.sqrt(),
            None,
            Parameterization::Ntk,
        )
        .unwrap(),
    ]
}

fn task() -> Task {
    Task::new(
        array![[1.0, 2.0, 3.0]],
        array![[0.0]],
        array![[4.0, 5.0, 6.0]],
        array![[0.0]],
    )
    .unwrap()
}

fn assert_close(c: &Array1<f64>, r: &[f64; 3], what: &str) {
    for i in 0..3 {
        let err = (c[i] - r[i]).abs() / r[i].abs();
        assert!(
            err <= 1e-12,
            "{what}[{i}]: {} vs {} (rel {err:.2e})",
            c[i],
            r[i]
        );
    }
}

#[test]
fn published_case_tau_1() {
    let (so, fo, _) = exact(1);
    assert_eq!(so, [3780.0, 8505.0, 13230.0]);
    assert_eq!(fo, [-1260.0, -1575.0, -1890.0]);
    for net in nets() {
        let w = array![2.0, 3.0, 5.0];
        let cfg = MamlConfig::new(0.5, 1);
        let (loss, g2) = maml::meta_loss_grad(&net, w.view(), &[task()], &cfg).unwrap();
        let (_, g1) =
            maml::meta_loss_grad(&net, w.view(), &[task()], &cfg.with_order(Order::First)).unwrap();
        assert_close(&g2, &[3780.0, 8505.0, 13230.0], "second order");
        assert_close(&g1, &[-1260.0, -1575.0, -1890.0], "first order");
        assert!((loss - 0.5 * 315.0 * 315.0).abs() <= 1e-12 * loss);
    }
}

#[test]
fn several_inner_steps() {
    for tau in 0..=4u32 {
        let (so, fo, l) = exact(tau);
        println!("τ={tau}: SO {so:?} FO {fo:?} L {l}");
        for net in nets() {
            let w = array![2.0, 3.0, 5.0];
            let cfg = MamlConfig::new(0.5, tau as usize);
            let (loss, g2) = maml::meta_loss_grad(&net, w.view(), &[task()], &cfg).unwrap();
            let (_, g1) =
                maml::meta_loss_grad(&net, w.view(), &[task()], &cfg.with_order(Order::First))
                    .unwrap();
            assert_close(&g2, &so, &format!("second order τ={tau}"));
            assert_close(&g1, &fo, &format!("first order τ={tau}"));
            assert!((loss - l).abs() <= 1e-12 * l);
        }
    }
}
