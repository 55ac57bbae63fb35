//! Shared proptest strategies for the integration tests (nalgebra style). Each test file that
//! needs them declares `mod common;`.
#![allow(dead_code)]

use gbml_testbed::kernel::{Activation, Arch, Parameterization};
use ndarray::Array2;
use proptest::prelude::*;

/// An n×d input matrix (points are rows) with entries in [-scale, scale].
pub fn matrix(
    n: std::ops::Range<usize>,
    d: std::ops::Range<usize>,
    scale: f64,
) -> impl Strategy<Value = Array2<f64>> {
    (n, d).prop_flat_map(move |(n, d)| {
        proptest::collection::vec(-scale..scale, n * d)
            .prop_map(move |v| Array2::from_shape_vec((n, d), v).unwrap())
    })
}

/// Any supported activation (ABReLU slopes in [-1, 2]).
pub fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Relu),
        Just(Activation::Erf),
        Just(Activation::Identity),
        (-1.0..1.0f64).prop_map(Activation::leaky_relu),
        (-1.0..2.0f64, -1.0..2.0f64).prop_map(|(a, b)| Activation::AbRelu { a, b }),
    ]
}

/// A valid architecture: depth 0..=max_depth, σ_w ∈ [0.5, 2], σ_b ∈ {none} ∪ [0, 1.5], either
/// parameterization (standard with widths 1..=500).
pub fn arch(max_depth: usize) -> impl Strategy<Value = Arch> {
    (
        0..=max_depth,
        activation(),
        0.5..2.0f64,
        proptest::option::of(0.0..1.5f64),
        any::<bool>(),
        1usize..=500,
    )
        .prop_map(|(depth, act, sw, sb, standard, width)| {
            let a = Arch::new(depth, act).with_sigma_w(sw).with_sigma_b(sb);
            if standard {
                a.with_parameterization(Parameterization::Standard)
                    .with_width(width)
            } else {
                a
            }
        })
}
