//! The empirical MNK Φ̂ = J_F J_Fᵀ against the MNK formula of MATH.md §3, built here (independently
//! of `mnk`) from the network's empirical NTK Θ̂, in the cases where the model is exactly linear in
//! the adapted parameters so the formula is exact:
//!
//! * depth 0 (identity, with bias, k ∈ {1, 2}): f is linear in θ, J is constant, and the inner
//!   loop gives f_{θ'}(X) = f_θ(X) − Θ(X, X') T (f_θ(X') − Y') with T = λ Σ_{s<τ} (I − λΘ')^s,
//!   hence J_F,i = J(X_i) − Θ(X_i, X'_i) T_i J(X'_i) and
//!   Φ_ij = Θ_ij − A_i Θ(X'_i, X_j) − Θ(X_i, X'_j) A_jᵀ + A_i Θ(X'_i, X'_j) A_jᵀ, A_i = Θ(X_i, X'_i) T_i;
//! * ANIL (head-only inner loop) on a deep tanh network, restricted to the readout columns: f is
//!   linear in the readout parameters and the inner loop moves only those, so the same formula
//!   holds exactly with the readout kernel Θ_head (the head block of J Jᵀ).
//!
//! For k outputs everything is in the point-major layout (row i·k + c) and Θ' is the full
//! (m k × m k) matrix, T computed on it.

mod maml_common;

use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{self, Adapt, MamlConfig};
use gbml_testbed::mnk::Task;
use gbml_testbed::net::{Mlp, NetActivation};
use gbml_testbed::tol;
use maml_common::random_tasks;
use ndarray::{s, Array2};

/// T = λ Σ_{s<τ} (I − λ Θ')^s, by the sum of powers (no eigendecomposition).
fn t_op(theta_s: &Array2<f64>, lr: f64, tau: usize) -> Array2<f64> {
    let n = theta_s.nrows();
    let eye = Array2::<f64>::eye(n);
    let step = &eye - &(theta_s * lr);
    let mut pow = eye.clone();
    let mut sum = Array2::<f64>::zeros((n, n));
    for _ in 0..tau {
        sum += &pow;
        pow = pow.dot(&step);
    }
    sum * lr
}

type Kern<'a> = dyn Fn(&Array2<f64>, &Array2<f64>) -> Array2<f64> + 'a;

/// The MNK formula from a kernel function `kern(X1, X2)` (point-major, k outputs).
fn mnk_formula(kern: &Kern<'_>, tasks: &[Task], lr: f64, tau: usize) -> Array2<f64> {
    let a: Vec<Array2<f64>> = tasks
        .iter()
        .map(|t| kern(&t.xq, &t.xs).dot(&t_op(&kern(&t.xs, &t.xs), lr, tau)))
        .collect();
    let blocks: Vec<Vec<Array2<f64>>> = tasks
        .iter()
        .enumerate()
        .map(|(i, ti)| {
            tasks
                .iter()
                .enumerate()
                .map(|(j, tj)| {
                    kern(&ti.xq, &tj.xq)
                        - a[i].dot(&kern(&ti.xs, &tj.xq))
                        - kern(&ti.xq, &tj.xs).dot(&a[j].t())
                        + a[i].dot(&kern(&ti.xs, &tj.xs)).dot(&a[j].t())
                })
                .collect()
        })
        .collect();
    let sizes: Vec<usize> = blocks.iter().map(|r| r[0].nrows()).collect();
    let total: usize = sizes.iter().sum();
    let mut phi = Array2::zeros((total, total));
    let mut oi = 0;
    for (i, row) in blocks.iter().enumerate() {
        let mut oj = 0;
        for (j, b) in row.iter().enumerate() {
            phi.slice_mut(s![oi..oi + sizes[i], oj..oj + sizes[j]])
                .assign(b);
            oj += sizes[j];
        }
        oi += sizes[i];
    }
    phi
}

#[test]
fn depth0_identity_phi_equals_formula() {
    for k in [1, 2] {
        for (param, sw) in [
            (Parameterization::Ntk, 1.3),
            (Parameterization::Standard, 1.0),
        ] {
            let net = Mlp::from_parts(3, vec![], k, NetActivation::Identity, sw, Some(0.7), param)
                .unwrap();
            let theta = net.init(1);
            let tasks = random_tasks(3, 4, 3, 3, k, 10);
            for tau in [1, 2, 5] {
                let lr = 0.05;
                let cfg = MamlConfig::new(lr, tau);
                let phi_hat = maml::empirical_mnk(&net, theta.view(), &tasks, &cfg).unwrap();
                let kern = |a: &Array2<f64>, b: &Array2<f64>| {
                    net.empirical_ntk(theta.view(), a.view(), Some(b.view()))
                        .unwrap()
                };
                let phi = mnk_formula(&kern, &tasks, lr, tau);
                let err =
                    tol::normwise_rel_err(phi_hat.as_slice().unwrap(), phi.as_slice().unwrap());
                println!("depth 0, k={k}, {param:?}, τ={tau}: normwise rel. err {err:.2e}");
                assert!(err <= 1e-12);
            }
        }
    }
}

#[test]
fn anil_head_block_equals_formula() {
    let net = Mlp::from_parts(
        2,
        vec![6, 5],
        1,
        NetActivation::Tanh,
        1.2,
        Some(0.3),
        Parameterization::Ntk,
    )
    .unwrap();
    let theta = net.init(3);
    let tasks = random_tasks(3, 4, 3, 2, 1, 20);
    let head = net.head_range();
    for tau in [1, 3] {
        let lr = 0.1;
        let cfg = MamlConfig::new(lr, tau).with_adapt(Adapt::Head);
        let jf = maml::meta_jacobian(&net, theta.view(), &tasks, &cfg).unwrap();
        let jh = jf.slice(s![.., head.clone()]).to_owned();
        let phi_hat = jh.dot(&jh.t());
        // readout kernel: the head columns of the network Jacobian
        let kern = |a: &Array2<f64>, b: &Array2<f64>| {
            let ja = net.jacobian(theta.view(), a.view()).unwrap();
            let jb = net.jacobian(theta.view(), b.view()).unwrap();
            ja.slice(s![.., head.clone()])
                .dot(&jb.slice(s![.., head.clone()]).t())
        };
        let phi = mnk_formula(&kern, &tasks, lr, tau);
        let err = tol::normwise_rel_err(phi_hat.as_slice().unwrap(), phi.as_slice().unwrap());
        println!("ANIL head block, τ={tau}: normwise rel. err {err:.2e}");
        assert!(err <= 1e-12);
    }
}
