//! CNTK-GAP Gram matrix of M images 28×28×1 (uniform [0, 1), ChaCha8 seed 0),
//! 3 × [conv 3×3 SAME, ReLU], GAP, dense, σ_w = 1.4, σ_b = 0.1, NNGP and NTK (issue #13 item 3).
//!
//! `cargo bench --bench conv_gram` (M = 16, 10 samples; the strip engine, then the plane engine
//! alone via `conv::force_planes`). The peer is
//! `benches/peers/nt_conv.py` (neural-tangents 0.6.5 `kernel_fn`, jit, float64, CPU; run it in
//! the same session: `JAX_ENABLE_X64=1 python benches/peers/nt_conv.py 16 3`). With
//! `GBML_BENCH_LARGE=1` also M = 200 (one timed run, printed).

use criterion::{criterion_group, criterion_main, Criterion};
use gbml_testbed::kernel::{conv, Spec};
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

fn images(m: usize) -> Array4<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    Array4::from_shape_fn((m, 28, 28, 1), |_| rng.gen_range(0.0..1.0))
}

fn spec() -> Spec {
    Spec::parse("conv:3:same,relu,conv:3:same,relu,conv:3:same,relu,gap,dense")
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1))
}

fn bench(c: &mut Criterion) {
    let s = spec();
    let x = images(16);
    let mut g = c.benchmark_group("conv_gram");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    g.bench_function("cntk_gap_m16_28x28_3conv", |b| {
        b.iter(|| conv::kernels(&s, x.view(), None).unwrap())
    });
    // The same Gram on the plane engine alone (the strip engine's predecessor; same bits).
    conv::force_planes(true);
    g.bench_function("cntk_gap_m16_28x28_3conv_planes", |b| {
        b.iter(|| conv::kernels(&s, x.view(), None).unwrap())
    });
    conv::force_planes(false);
    g.finish();
    if std::env::var("GBML_BENCH_LARGE").is_ok() {
        let x = images(200);
        let t = Instant::now();
        let k = conv::kernels(&s, x.view(), None).unwrap();
        println!(
            "conv_gram M = 200: {:.1} s (K[0,1] = {:e})",
            t.elapsed().as_secs_f64(),
            k.ntk[[0, 1]]
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
