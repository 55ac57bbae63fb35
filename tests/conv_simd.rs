//! The conv plane loops (`kernel::plane`: the activation duals per plane row) are compiled for
//! AVX-512, AVX2 and the baseline target and picked at run time; the lanes are exact IEEE
//! operations with no FMA contraction, so every path must give the SAME BITS. This test
//! computes conv NNGP/NTK Grams with the best path of this CPU, then with the portable path
//! forced (and the AVX2 path on an AVX-512 CPU), for ReLU, erf, leaky ReLU and identity, on
//! random, identical, scaled, zero and sign-flipped images, and compares bit for bit.

use gbml_testbed::kernel::{conv, Kernels, Spec};
use gbml_testbed::simd::{active_path, force_avx2, force_portable};
use ndarray::Array4;
use rand::{Rng, SeedableRng};

fn bits_eq(a: &Kernels, b: &Kernels) -> bool {
    let eq = |x: &ndarray::Array2<f64>, y: &ndarray::Array2<f64>| {
        x.shape() == y.shape() && x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits())
    };
    eq(&a.nngp, &b.nngp) && eq(&a.ntk, &b.ntk)
}

/// Six 6×6×2 images: random, a copy, a scaled copy, zero, the negation, a near copy.
fn images() -> Array4<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut x = Array4::<f64>::zeros((6, 6, 6, 2));
    for v in x.slice_mut(ndarray::s![0, .., .., ..]).iter_mut() {
        *v = rng.gen_range(-1.0..1.0);
    }
    let x0 = x.slice(ndarray::s![0, .., .., ..]).to_owned();
    x.slice_mut(ndarray::s![1, .., .., ..]).assign(&x0);
    x.slice_mut(ndarray::s![2, .., .., ..]).assign(&(&x0 * 1e3));
    x.slice_mut(ndarray::s![4, .., .., ..]).assign(&(-&x0));
    x.slice_mut(ndarray::s![5, .., .., ..])
        .assign(&x0.mapv(|v| v * (1.0 + 1e-9)));
    x
}

/// The SIMD switch is process-global: the tests that flip it run one at a time.
static SIMD_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn conv_kernels_have_the_same_bits_on_every_simd_path() {
    let _one_at_a_time = SIMD_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let x = images();
    for layers in [
        "conv:3:same,relu,conv:3:same,relu,gap,dense",
        "conv:3:same,erf,conv:2:valid,relu,flatten,dense",
        "conv:3:same,leaky_relu:0.1,avgpool:2,identity,gap,dense",
    ] {
        same_bits_on_every_path(layers, x.view());
    }
}

/// The kernels of `layers` (σ_w = 1.4, σ_b = 0.1) on `x` with the dispatched path, forced
/// portable and forced AVX2: asserts finite values and identical bits; returns the spec and the
/// dispatched result.
fn same_bits_on_every_path(layers: &str, x: ndarray::ArrayView4<f64>) -> (Spec, Kernels) {
    let spec = Spec::parse(layers)
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1));
    let run = || conv::kernels(&spec, x, None).unwrap();
    let fast = run();
    let path = active_path();
    force_portable(true);
    assert_eq!(active_path(), "portable");
    let slow = run();
    force_avx2(true);
    let mid = run();
    force_portable(false);
    assert!(fast.nngp.iter().all(|v| v.is_finite()), "{layers}");
    assert!(bits_eq(&fast, &slow), "{layers}: {path} vs portable differ");
    assert!(bits_eq(&fast, &mid), "{layers}: {path} vs avx2 differ");
    (spec, fast)
}

/// One-channel images: the first SAME conv of a cross pair reads the input planes lazily from
/// the pixels (`plane::Img1`, its own dispatched row kernel); the same bits on every path, and
/// the same bits with X2 given as the symmetric Gram's entries above the diagonal (there both
/// compute the pair (x_i, x_j) in that order).
#[test]
fn one_channel_lazy_input_has_the_same_bits_on_every_simd_path() {
    let _one_at_a_time = SIMD_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let x2 = images();
    let x = x2.slice(ndarray::s![.., .., .., 0..1]).to_owned();
    for layers in [
        "conv:3:same,relu,conv:3:same,relu,conv:3:same,relu,gap,dense",
        "conv:2:same,erf,conv:3:same,relu,flatten,dense",
    ] {
        let (spec, fast) = same_bits_on_every_path(layers, x.view());
        let cross = conv::kernels(&spec, x.view(), Some(x.view())).unwrap();
        for i in 0..x.dim().0 {
            for j in i + 1..x.dim().0 {
                assert_eq!(
                    cross.ntk[[i, j]].to_bits(),
                    fast.ntk[[i, j]].to_bits(),
                    "{layers}: ({i}, {j})"
                );
            }
        }
    }
}
