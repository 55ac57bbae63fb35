//! NTK Gram matrix Θ(X, X) of M points in d = 784 (N(0,1) entries, ChaCha8 seed 0) for
//! M ∈ {500, 2000, 4000}, L ∈ {1, 3, 10} hidden layers, ReLU and erf (σ_w = 1, σ_b = 0.1, NTK
//! parameterization). Peer: `benches/peers/nt_kernel.py` (neural-tangents kernel_fn, jit,
//! float64, same shapes). Results: docs/kernels.md.
//!
//! `cargo bench --bench kernel_gram` (all; M = 4000 is slow), or filter, e.g.
//! `cargo bench --bench kernel_gram -- 'ntk_gram/relu/L3/M2000'`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gbml_testbed::kernel::{ntk, Activation, Arch};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::time::Duration;

fn inputs(m: usize, d: usize) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    Array2::from_shape_simple_fn((m, d), || StandardNormal.sample(&mut rng))
}

fn bench(c: &mut Criterion) {
    let d = 784;
    let mut g = c.benchmark_group("ntk_gram");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(5));
    for m in [500usize, 2000, 4000] {
        let x = inputs(m, d);
        for (name, act) in [("relu", Activation::Relu), ("erf", Activation::Erf)] {
            for depth in [1usize, 3, 10] {
                let arch = Arch::new(depth, act).with_sigma_b(Some(0.1));
                g.bench_function(
                    BenchmarkId::new(format!("{name}/L{depth}"), format!("M{m}")),
                    |b| b.iter(|| ntk(&arch, x.view(), None).unwrap()),
                );
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
