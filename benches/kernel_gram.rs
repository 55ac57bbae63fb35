//! NTK Gram matrix Θ(X, X) of M points in d = 784 (N(0,1) entries, ChaCha8 seed 0) for
//! M ∈ {500, 2000, 4000}, L ∈ {1, 3, 10} hidden layers, ReLU and erf (σ_w = 1, σ_b = 0.1, NTK
//! parameterization). Peer: `benches/peers/nt_kernel.py` (neural-tangents kernel_fn, jit,
//! float64, same shapes). Results: docs/kernels.md.
//!
//! `cargo bench --bench kernel_gram` (all; M = 4000 is slow), or filter, e.g.
//! `cargo bench --bench kernel_gram -- 'ntk_gram/relu/L3/M2000'`.

use criterion::{criterion_group, BenchmarkId, Criterion};
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

/// CPU time (ns) of all threads of this process so far, from /proc (Linux); 0 elsewhere.
fn cpu_ns() -> u128 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u128>().ok())
        .sum()
}

/// One-shot mode for A/B comparisons on a loaded machine: `KERNEL_GRAM_ONCE=relu:3:2000,erf:1:4000`
/// (activation:L:M, comma-separated; `KERNEL_GRAM_REPS`, default 3) prints, per case, the
/// minimum and median wall time and the median CPU time of all threads (robust to
/// time-slicing by other processes), instead of running criterion.
fn once(spec: &str) {
    let reps: usize = std::env::var("KERNEL_GRAM_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for case in spec.split(',') {
        let f: Vec<&str> = case.split(':').collect();
        if [
            "gemm", "tiles", "panels", "tilesca", "tilescb", "tilescab", "tilesp", "ours",
        ]
        .contains(&f[0])
        {
            gemm_floor(
                f[0],
                f[1].parse().expect("tile"),
                f[2].parse().expect("M"),
                reps,
            );
            continue;
        }
        let act = Activation::parse(f[0]).expect("activation");
        let depth: usize = f[1].parse().expect("depth");
        let m: usize = f[2].parse().expect("M");
        let x = inputs(m, 784);
        let arch = Arch::new(depth, act).with_sigma_b(Some(0.1));
        let mut wall = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..reps {
            let (t0, c0) = (std::time::Instant::now(), cpu_ns());
            let k = ntk(&arch, x.view(), None).unwrap();
            wall.push(t0.elapsed().as_secs_f64() * 1e3);
            cpu.push((cpu_ns() - c0) as f64 * 1e-6);
            std::hint::black_box(k);
        }
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "ntk_gram/{}/L{depth}/M{m}: wall min {:.1} med {:.1} ms, cpu med {:.1} ms",
            f[0],
            wall[0],
            wall[reps / 2],
            cpu[reps / 2]
        );
    }
}

/// The Gram product alone for M × 784 inputs: `gram:192:M` = what the kernel does (packing
/// plus the lower-triangle 192 × 192 tiles of `kernel::gram_tile`, rayon; the flop count
/// printed is that of full diagonal tiles, ≈ 1.5 % more than computed); for comparison with
/// faer: `gemm:0:M` = one full parallel faer product `X Xᵀ` (2M²d flop), `tiles:T:M` = the
/// lower-triangle T×T tiles, each a sequential faer product (the kernel's Gram product up to
/// session 3), `panels:T:M`, `tilesca|tilescb|tilescab:T:M` = row panels and column-major
/// operands (slower). Prints time and GFLOP/s.
fn gemm_floor(kind: &str, tile: usize, m: usize, reps: usize) {
    use rayon::prelude::*;
    let d = 784;
    let x = inputs(m, d);
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut flop = 0.0;
    for _ in 0..reps {
        let (t0, c0) = (std::time::Instant::now(), cpu_ns());
        if kind == "gemm" {
            let g = gbml_testbed::linalg::matmul_t(x.view(), x.view());
            std::hint::black_box(g);
            flop = 2.0 * (m * m * d) as f64;
        } else if kind == "panels" {
            // Row panel I against all rows 0..end(I): one sequential product per panel.
            let nt = m.div_ceil(tile);
            let tr = |t: usize| t * tile..((t + 1) * tile).min(m);
            flop = (0..nt)
                .map(|i| 2.0 * (tr(i).len() * tr(i).end * d) as f64)
                .sum();
            (0..nt).into_par_iter().rev().for_each(|i| {
                let ri = tr(i);
                let xa = x.slice(ndarray::s![ri.clone(), ..]);
                let xb = x.slice(ndarray::s![..ri.end, ..]);
                let mut out = ndarray::Array2::<f64>::zeros((ri.len(), ri.end));
                let mut ov = out.view_mut();
                faer::linalg::matmul::matmul(
                    gbml_testbed::linalg::as_faer_mut(&mut ov),
                    faer::Accum::Replace,
                    gbml_testbed::linalg::as_faer(&xa),
                    gbml_testbed::linalg::as_faer(&xb.t()),
                    1.0,
                    faer::Par::Seq,
                );
                std::hint::black_box(out);
            });
        } else if kind == "gram" {
            let (_, f) = lower_tiles(m, tile, d);
            flop = f;
            gbml_testbed::kernel::bench_gram_tiles(x.view());
        } else if kind.starts_with("tilesc") {
            // Tiles with column-major operands (from a transposed copy of X).
            let xt = x.t().as_standard_layout().to_owned(); // d × M, row-major
            let (blocks, f) = lower_tiles(m, tile, d);
            flop = f;
            let ca = kind == "tilesca" || kind == "tilescab";
            let cb = kind.ends_with('b');
            blocks.par_iter().for_each_init(
                || vec![0.0; tile * tile],
                |buf, (i, j)| {
                    let (ri, rj) = (i.clone(), j.clone());
                    let xa = if ca {
                        xt.slice(ndarray::s![.., ri.clone()]).reversed_axes()
                    } else {
                        x.slice(ndarray::s![ri.clone(), ..])
                    };
                    let xbt = if cb {
                        xt.slice(ndarray::s![.., rj.clone()])
                    } else {
                        x.slice(ndarray::s![rj.clone(), ..]).reversed_axes()
                    };
                    tile_product(buf, xa, xbt);
                },
            );
        } else {
            let (blocks, f) = lower_tiles(m, tile, d);
            flop = f;
            blocks.par_iter().for_each_init(
                || vec![0.0; tile * tile],
                |buf, (i, j)| {
                    let (ri, rj) = (i.clone(), j.clone());
                    let xa = x.slice(ndarray::s![ri.clone(), ..]);
                    let xb = x.slice(ndarray::s![rj.clone(), ..]);
                    tile_product(buf, xa, xb.t());
                },
            );
        }
        wall.push(t0.elapsed().as_secs_f64());
        cpu.push((cpu_ns() - c0) as f64 * 1e-9);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{kind}/T{tile}/M{m}: wall min {:.1} med {:.1} ms, {:.1} GFLOP/s (wall min); cpu med {:.1} ms, {:.1} GFLOP/s per busy core",
        wall[0] * 1e3,
        wall[reps / 2] * 1e3,
        flop / wall[0] * 1e-9,
        cpu[reps / 2] * 1e3,
        flop / cpu[reps / 2] * 1e-9
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("KERNEL_GRAM_ONCE") {
        once(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// One Gram tile `buf[..a·b] = xa · xbt` (a × d times d × b), sequential faer GEMM.
fn tile_product(buf: &mut [f64], xa: ndarray::ArrayView2<f64>, xbt: ndarray::ArrayView2<f64>) {
    let (a, b) = (xa.nrows(), xbt.ncols());
    let mut ov = ndarray::ArrayViewMut2::from_shape((a, b), &mut buf[..a * b]).unwrap();
    faer::linalg::matmul::matmul(
        gbml_testbed::linalg::as_faer_mut(&mut ov),
        faer::Accum::Replace,
        gbml_testbed::linalg::as_faer(&xa),
        gbml_testbed::linalg::as_faer(&xbt),
        1.0,
        faer::Par::Seq,
    );
}

/// The lower-triangle tiles (row range, column range) of an M × M Gram with T × T tiles, and the
/// GEMM flops they cost (2·|rows|·|cols|·d each).
fn lower_tiles(
    m: usize,
    tile: usize,
    d: usize,
) -> (Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>, f64) {
    let tr = |t: usize| t * tile..((t + 1) * tile).min(m);
    let nt = m.div_ceil(tile);
    let blocks: Vec<_> = (0..nt)
        .flat_map(|i| (0..=i).map(move |j| (tr(i), tr(j))))
        .collect();
    let flop = blocks
        .iter()
        .map(|(i, j)| 2.0 * (i.len() * j.len() * d) as f64)
        .sum();
    (blocks, flop)
}
