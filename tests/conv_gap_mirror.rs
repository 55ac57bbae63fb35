//! The GAP of a self pair (a Gram diagonal entry) sums the lower block triangle of its plane
//! and the MIRROR of it for the upper one (`kernel::plane`'s `GapAcc`, `mirror_sum`): block
//! (i₁, i₂) with i₁ < i₂ is summed, in plane order, from the entries Σ[(i₂, j₂), (i₁, j₁)] of
//! block (i₂, i₁). That is the plane-order sum itself wherever the plane is exactly
//! symmetric, so on such inputs the diagonal must be bit-equal to the same image paired with
//! a COPY of itself (a cross pair: every strip computed, every block summed from its own
//! entries). Checked on both engines (the strip engine skips a self pair's strips r < 0).
//!
//! Inputs: positive random images with no two pixels alike (as the CNTK benchmark's), whose
//! planes have no pixel pair whose D cancels off the diagonal — the one place where the
//! pair recursion is not bit-symmetric (the exact determinant's cross products are formed
//! in x, y order).
//!
//! Power: a mirror that sums the lower block in its own order (rows of the lower block
//! instead of its columns) changes the sum's rounding and fails this test (checked by hand
//! when it was written). On an exactly symmetric plane the two engines agree with or without
//! the plane engine's mirror, so that mirror is checked on an asymmetric plane by the unit
//! test `gap_mirror_tests` in `src/kernel/plane.rs`; `tests/conv_strip.rs` checks that both
//! engines give the same bits.

use gbml_testbed::kernel::{conv, Spec};
use ndarray::Array4;
use rand::{Rng, SeedableRng};

/// `force_planes` is process-global: the tests that flip it run one at a time.
static ENGINE_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn uniform(m: usize, (h, w): (usize, usize), seed: u64) -> Array4<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array4::from_shape_fn((m, h, w, 1), |_| rng.gen_range(0.0..1.0))
}

fn diag_bits(spec: &Spec, x: &Array4<f64>, copy: bool) -> Vec<u64> {
    let x2 = copy.then(|| x.clone());
    let k = conv::kernels(spec, x.view(), x2.as_ref().map(|a| a.view())).unwrap();
    let m = x.dim().0;
    (0..m)
        .flat_map(|i| [k.nngp[[i, i]].to_bits(), k.ntk[[i, i]].to_bits()])
        .collect()
}

fn check(layers: &str, x: &Array4<f64>) {
    let spec = Spec::parse(layers)
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1));
    let _guard = ENGINE_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    for planes in [false, true] {
        conv::force_planes(planes);
        let own = diag_bits(&spec, x, false);
        let cross = diag_bits(&spec, x, true);
        conv::force_planes(false);
        assert_eq!(
            own, cross,
            "{layers}, planes = {planes}: the self pair's mirrored GAP differs from the cross \
             pair with a copy"
        );
    }
}

#[test]
fn self_pair_gap_equals_the_copy_pair_gap_on_a_symmetric_plane() {
    let x = uniform(3, (12, 12), 1);
    check(
        "conv:3:same,relu,conv:3:same,relu,conv:3:same,relu,gap,dense",
        &x,
    );
    check("conv:5:same,relu,gap,dense", &x);
    check(
        "conv:2:same,relu,conv:3:same,relu,gap,dense",
        &uniform(2, (9, 11), 2),
    );
}
