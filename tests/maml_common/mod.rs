//! Shared helpers of the net_* / maml_* integration tests: Richardson-extrapolated central
//! differences and accuracy summaries.
#![allow(dead_code)]

use gbml_testbed::mnk::Task;
use gbml_testbed::tol;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Derivative at t = 0 of a vector-valued `f(t)` by central differences with steps
/// h0, h0/2, …, h0/2^{levels−1} and Richardson extrapolation (Neville table, error orders
/// h², h⁴, …, h^{2·levels}).
pub fn richardson(f: impl Fn(f64) -> Vec<f64>, h0: f64, levels: usize) -> Vec<f64> {
    let mut table: Vec<Vec<Vec<f64>>> = Vec::new();
    for i in 0..levels {
        let h = h0 / 2f64.powi(i as i32);
        let fp = f(h);
        let fm = f(-h);
        let d0: Vec<f64> = fp
            .iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect();
        let mut row = vec![d0];
        for j in 1..=i {
            let c = 4f64.powi(j as i32);
            let prev = &row[j - 1];
            let up = &table[i - 1][j - 1];
            row.push(
                prev.iter()
                    .zip(up)
                    .map(|(p, u)| p + (p - u) / (c - 1.0))
                    .collect(),
            );
        }
        table.push(row);
    }
    table[levels - 1][levels - 1].clone()
}

/// Accuracy of `c` against `r`: (minimum component LRE over components with |r| ≥ 1e-3·max|r|,
/// normwise LRE −log10(max|c − r| / max|r|)).
pub fn accuracy(c: &[f64], r: &[f64]) -> (f64, f64) {
    let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let comp = c
        .iter()
        .zip(r)
        .filter(|(_, r)| r.abs() >= 1e-3 * scale)
        .map(|(&c, &r)| tol::lre(c, r))
        .fold(tol::LRE_MAX, f64::min);
    let nw = tol::normwise_rel_err(c, r);
    let nw_lre = if nw == 0.0 {
        tol::LRE_MAX
    } else {
        (-nw.log10()).clamp(0.0, tol::LRE_MAX)
    };
    (comp, nw_lre)
}

/// Standard-normal matrix from a seeded ChaCha8 stream, scaled.
pub fn randn(rows: usize, cols: usize, scale: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        scale * z
    })
}

/// Standard-normal vector.
pub fn randn_vec(n: usize, scale: f64, seed: u64) -> Array1<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array1::from_shape_fn(n, |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        scale * z
    })
}

/// `n_tasks` random regression tasks (inputs N(0,1), labels N(0,1)).
pub fn random_tasks(
    n_tasks: usize,
    m: usize,
    n: usize,
    d: usize,
    k: usize,
    seed: u64,
) -> Vec<Task> {
    (0..n_tasks)
        .map(|i| {
            let s = seed + 100 * i as u64;
            Task::new(
                randn(m, d, 1.0, s),
                randn(m, k, 1.0, s + 1),
                randn(n, d, 1.0, s + 2),
                randn(n, k, 1.0, s + 3),
            )
            .unwrap()
        })
        .collect()
}
