//! Meta Neural Kernel cost, separated into the base NTK Gram matrix over all points
//! (N(n + m) points, d = 784) and the MNK assembly (per-task T_i, A_i plus the factorised
//! tiled Φ = K_qq − (W + Wᵀ)), for N ∈ {50, 200, 1000} tasks, m = 5, n = 15 (the Omniglot shape).
//!
//! `cargo bench --bench mnk_gram`. N = 1000 (20 000 points: a 3.2 GB Gram matrix and a 1.8 GB
//! Φ) only runs with `GBML_BENCH_LARGE=1`; its NTK Gram is timed once (see below). The peer is
//! `benches/peers/mnk_per_pair.py` (the authors' per-task-pair formulation in NumPy on a
//! precomputed Gram matrix of the same shape).
//!
//! The assembly is measured on the precomputed-kernel path (adapters picked from K, as the
//! authors' code does with its precomputed kernel), so both sides start from the same K.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gbml_testbed::kernel::{self, Activation, Arch};
use gbml_testbed::mnk::layout::index_tasks;
use gbml_testbed::mnk::{assemble_phi, BaseKernel, Mnk, Precomputed, Schedule, Task, TaskSet};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const M: usize = 5;
const N_Q: usize = 15;
const D: usize = 784;

fn tasks(n_tasks: usize, seed: u64) -> TaskSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mk = |r: usize, c: usize| Array2::from_shape_fn((r, c), |_| rng.gen_range(0.0..1.0));
    TaskSet::new(
        (0..n_tasks)
            .map(|_| {
                let (xs, ys, xq, yq) = (mk(M, D), mk(M, 5), mk(N_Q, D), mk(N_Q, 5));
                Task::new(xs, ys, xq, yq).unwrap()
            })
            .collect(),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let arch = Arch::new(2, Activation::Relu).with_sigma_w(2f64.sqrt());
    let large = std::env::var("GBML_BENCH_LARGE").is_ok_and(|v| v == "1");
    let sizes: Vec<usize> = if large {
        vec![50, 200, 1000]
    } else {
        vec![50, 200]
    };
    let mut g = c.benchmark_group("mnk_gram");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &n in &sizes {
        let set = tasks(n, n as u64);
        let z = set.points();
        // The NTK Gram matrix alone (the NNGP is not materialised; Φ needs only Θ).
        let k = if n <= 200 {
            g.bench_with_input(BenchmarkId::new("ntk_gram", n), &n, |b, _| {
                b.iter(|| kernel::ntk(&arch, z.view(), None).unwrap())
            });
            kernel::ntk(&arch, z.view(), None).unwrap()
        } else {
            // 20 000 points: one timed run (criterion's minimum of 10 samples would take
            // ~10 minutes on 2 cores); reported as a single measurement.
            let t = Instant::now();
            let k = kernel::ntk(&arch, z.view(), None).unwrap();
            println!(
                "mnk_gram/ntk_gram/{n}: single run {:.2} s",
                t.elapsed().as_secs_f64()
            );
            k
        };
        drop(z);
        let iset = index_tasks(&set, 0).unwrap();
        // The precomputed kernel owns K (no copy); Φ is assembled from the same matrix.
        let mnk = Mnk::new(
            BaseKernel::Precomputed(Precomputed { ntk: k, nngp: None }),
            Schedule::flow(1.0),
        );
        let BaseKernel::Precomputed(pre) = &mnk.kernel else {
            unreachable!()
        };
        g.bench_with_input(BenchmarkId::new("mnk_assembly", n), &n, |b, _| {
            b.iter(|| {
                let ad = mnk.adapters(&iset).unwrap();
                assemble_phi(&iset, &ad, pre.ntk.view()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
