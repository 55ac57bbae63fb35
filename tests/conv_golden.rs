//! Golden test of the convolutional kernels against `fixtures/conv/conv.json`: 50-digit mpmath
//! values of an independent per-pixel-pair implementation of neural-tangents' `stax`
//! definitions (`fixtures/conv/gen_conv.py`, pinned in `requirements.txt`), with
//! neural-tangents 0.6.5's float64 values beside them. Every layer type (SAME/VALID conv with
//! K = 2, 3, avgpool, GAP, flatten, dense on planes and on scalars, ReLU / leaky ReLU / erf /
//! identity), both parameterizations, on random, identical, scaled, zero, very differently
//! scaled and border-only images of 3×3 to 6×6 pixels with 1–2 channels.
//!
//! Asserts LRE(ours, mpmath) ≥ `tol::KERNEL_MIN_DIGITS` (13) on every entry of every case but
//! the known gap below, which is asserted at its own documented floor and must stay below 13
//! (so the list cannot go stale). Table:
//! `cargo test --release --test conv_golden -- --nocapture`.

use gbml_testbed::kernel::conv;
use gbml_testbed::tol::KERNEL_MIN_DIGITS;

#[path = "common/conv_fixture.rs"]
mod conv_fixture;
use conv_fixture::{fixture, Case};

/// Min LRE of ours vs mpmath per case, both kernels.
fn case_digits(c: &Case) -> f64 {
    c.min_digits(&conv::kernels(&c.spec(), c.images().view(), None).unwrap())
}

/// Known gap: average pooling followed by an activation on nearly parallel pixel pairs
/// (scaled images). The pooled 2×2 covariance is not an average of pixel-pair covariances, so
/// its D = k11 k22 − k12² is recomputed naively (absolute error ~ε k11 k22) and the next
/// angle carries √ε: ~9 digits, about neural-tangents' own (9.84). Floor asserted: 8.5.
const KNOWN_GAPS: &[(&str, &str, f64)] = &[(
    "conv:2:same,relu,avgpool:2,conv:3:same,relu,gap,dense",
    "scaled",
    8.5,
)];

#[test]
fn conv_kernels_match_mpmath_to_13_digits() {
    let fx = fixture();
    assert!(fx.cases.len() >= 15);
    let mut failures = Vec::new();
    println!(
        "{:62} {:9} {:13} {:>6} {:>6}",
        "layers", "param.", "inputs", "ours", "NT"
    );
    for c in &fx.cases {
        let d = case_digits(c);
        println!(
            "{:62} {:9} {:13} {:6.2} {:6.2}",
            c.spec, c.parameterization, c.inputs, d, c.nt_min_digits
        );
        if let Some(&(_, _, floor)) = KNOWN_GAPS.iter().find(|g| g.0 == c.spec && g.1 == c.inputs) {
            assert!(
                d >= floor && d < KERNEL_MIN_DIGITS,
                "known gap {} / {}: {d:.2}",
                c.spec,
                c.inputs
            );
            continue;
        }
        if !(d >= KERNEL_MIN_DIGITS) {
            failures.push(format!(
                "{} / {} / {}: {d:.2} digits",
                c.spec, c.parameterization, c.inputs
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "below {KERNEL_MIN_DIGITS} digits: {failures:#?}"
    );
}
