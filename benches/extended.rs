//! Cost of the extended-precision (double-double) path relative to the f64 path:
//! the NTK Gram matrix at M = 1000 points, d = 784, and the MNK Φ at N = 50 tasks (m = 5 supports,
//! n = 15 queries, d = 784: 1000 points, Φ 750 × 750), ReLU, depth 2, σ_w = √2 (the shapes of
//! `benches/kernel_gram.rs` / `benches/mnk_gram.rs`). Goal (issue #12): ≤ 30×.
//!
//! `cargo bench --bench extended` (criterion, 10 samples each); the ratios are printed at the
//! end from direct timings (criterion's own means are in its output; both are needed because the
//! shared machine's load changes during a run). Measured 2026-12-06 after the AVX2 Dot2 lanes and
//! the closure-free row loop (2 cores, load 1.1–2.0, two runs): Gram 395 / 730 ms vs 17.6 / 29.8 ms
//! (criterion means: 22.4× / 24.5×; direct: 29.1× / 22.5×), Φ 412 / 723 ms vs 22.4 / 34.0 ms
//! (18.4× / 21.2×; direct 20.8× / 17.9×): the 30× goal is met, the Gram with little margin. Before
//! (same machine, quiet): Gram 55×, Φ 58×; under load 5–10: 73–87× and 49–62× (docs/notes/xperf.md).

use criterion::{criterion_group, criterion_main, Criterion};
use gbml_testbed::kernel::{self, Activation, Arch};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
use gbml_testbed::xprec;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const D: usize = 784;

fn points(n: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, D), |_| rng.gen_range(0.0..1.0))
}

fn tasks(n_tasks: usize, seed: u64) -> TaskSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mk = |r: usize, c: usize| Array2::from_shape_fn((r, c), |_| rng.gen_range(0.0..1.0));
    let ts = (0..n_tasks)
        .map(|_| {
            let (xs, ys, xq, yq) = (mk(5, D), mk(5, 5), mk(15, D), mk(15, 5));
            Task::new(xs, ys, xq, yq).unwrap()
        })
        .collect();
    TaskSet::new(ts).unwrap()
}

/// Mean wall time of `f` over `reps` runs (after one warm-up run).
fn mean_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn bench(c: &mut Criterion) {
    let arch = Arch::new(2, Activation::Relu).with_sigma_w(2f64.sqrt());
    let x = points(1000, 1);
    let set = tasks(50, 50);
    let mnk = Mnk::new(BaseKernel::Analytic(arch.clone()), Schedule::flow(1.0));
    let mut g = c.benchmark_group("extended");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("ntk_gram_f64/1000", |b| {
        b.iter(|| kernel::kernels(&arch, x.view(), None).unwrap())
    });
    g.bench_function("ntk_gram_extended/1000", |b| {
        b.iter(|| xprec::kernels(&arch, x.view(), None).unwrap())
    });
    g.bench_function("mnk_phi_f64/50", |b| b.iter(|| mnk.phi(&set).unwrap()));
    g.bench_function("mnk_phi_extended/50", |b| {
        b.iter(|| xprec::phi(&mnk, &set).unwrap())
    });
    g.finish();
    // The ratios, from a few direct timings (same work as above).
    let kf = mean_secs(3, || {
        kernel::kernels(&arch, x.view(), None).unwrap();
    });
    let ke = mean_secs(2, || {
        xprec::kernels(&arch, x.view(), None).unwrap();
    });
    let pf = mean_secs(3, || {
        mnk.phi(&set).unwrap();
    });
    let pe = mean_secs(2, || {
        xprec::phi(&mnk, &set).unwrap();
    });
    println!(
        "extended/f64 cost ratio: NNGP+NTK Gram M = 1000, d = {D}: {:.1}× ({:.3} s vs {:.3} s); \
         MNK Φ N = 50: {:.1}× ({:.3} s vs {:.3} s)",
        ke / kf,
        ke,
        kf,
        pe / pf,
        pe,
        pf
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
