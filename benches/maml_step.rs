//! One exact second-order MAML meta-gradient (meta-loss + ∇L over all tasks), the issue's
//! benchmark: 2 hidden layers of width ∈ {256, 1024, 4096}, ReLU, NTK parameterization with
//! biases (σ_w = √2, σ_b = 0.1), d = 784 inputs in [0, 1], k = 5 outputs (5-way, centred one-hot
//! labels), N = 25 tasks with m = 5 support and n = 15 query points, inner rate λ = 0.01,
//! τ ∈ {1, 5}. Peer: `benches/peers/jax_maml.py` (same sizes, JAX jit, float64, CPU).
//!
//! `cargo bench --bench maml_step -- w1024` runs one width.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gbml_testbed::kernel::Parameterization;
use gbml_testbed::maml::{meta_loss_grad, MamlConfig};
use gbml_testbed::mnk::Task;
use gbml_testbed::net::{Mlp, NetActivation};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

pub const D: usize = 784;
pub const K: usize = 5;
pub const N_TASKS: usize = 25;
pub const M: usize = 5;
pub const N: usize = 15;

fn tasks(seed: u64) -> Vec<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // centred one-hot labels, point i in class i mod K
    let onehot = |rows: usize| {
        Array2::from_shape_fn((rows, K), |(i, c)| {
            if i % K == c {
                1.0 - 1.0 / K as f64
            } else {
                -1.0 / K as f64
            }
        })
    };
    (0..N_TASKS)
        .map(|_| {
            let xs = Array2::from_shape_fn((M, D), |_| rng.gen::<f64>());
            let xq = Array2::from_shape_fn((N, D), |_| rng.gen::<f64>());
            let ys = onehot(M);
            let yq = onehot(N);
            Task::new(xs, ys, xq, yq).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("maml_metagrad");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(5));
    let ts = tasks(1);
    for width in [256usize, 1024, 4096] {
        for tau in [1usize, 5] {
            let cfg = MamlConfig::new(0.01, tau);
            let id = BenchmarkId::new(format!("w{width}"), format!("tau{tau}"));
            g.bench_with_input(id, &cfg, |b, cfg| {
                // built here so that a filtered-out size allocates nothing (peak-memory runs)
                let net = Mlp::from_parts(
                    D,
                    vec![width, width],
                    K,
                    NetActivation::Relu,
                    2f64.sqrt(),
                    Some(0.1),
                    Parameterization::Ntk,
                )
                .unwrap();
                let theta = net.init(0);
                b.iter(|| meta_loss_grad(&net, theta.view(), &ts, cfg).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
