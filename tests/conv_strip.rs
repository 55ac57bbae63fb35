//! The strip engine (`kernel::strip`) against the plane engine (`kernel::plane`): for every
//! architecture whose layers before a GAP are `conv, activation` pairs, the conv kernels run on
//! strips of equal row displacement instead of whole P₁×P₂ planes, with the plane engine's
//! additions in the plane engine's order — so both must give the SAME BITS, on self pairs
//! (the Gram diagonal and the variances every cross pair uses), cross pairs, X1 against X2
//! and row slices; for every activation, K = 1…5 (odd and even SAME), dense layers inside the
//! prefix, layers after the GAP, both parameterizations and Arora's normalization; on
//! random, copied, scaled, zero, negated and near-copied images, non-square images, images
//! smaller than the kernel, and 28×28 Omniglot-like images (zero background: many exact
//! cancellations, so the exact-determinant path runs). A test that the engines differ where
//! they must not would need either engine changed; `uses_strips` guards against comparing
//! the plane engine with itself.

use gbml_testbed::kernel::{conv, Kernels, Spec};
use ndarray::{s, Array4};
use rand::{Rng, SeedableRng};

/// `force_planes` is process-global: the tests that flip it run one at a time.
static ENGINE_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn bits(k: &Kernels) -> Vec<u64> {
    k.nngp
        .iter()
        .chain(k.ntk.iter())
        .map(|v| v.to_bits())
        .collect()
}

/// Six 6×6×2 images: random, a copy, a scaled copy, zero, the negation, a near copy.
fn six(seed: u64) -> Array4<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x = Array4::<f64>::zeros((6, 6, 6, 2));
    for v in x.slice_mut(s![0, .., .., ..]).iter_mut() {
        *v = rng.gen_range(-1.0..1.0);
    }
    let x0 = x.slice(s![0, .., .., ..]).to_owned();
    x.slice_mut(s![1, .., .., ..]).assign(&x0);
    x.slice_mut(s![2, .., .., ..]).assign(&(&x0 * 1e3));
    x.slice_mut(s![4, .., .., ..]).assign(&(-&x0));
    x.slice_mut(s![5, .., .., ..])
        .assign(&x0.mapv(|v| v * (1.0 + 1e-9)));
    x
}

/// M one-channel h×w images with values in [0, 1) and a zero border (stroke-like).
fn positive(m: usize, (h, w): (usize, usize), seed: u64) -> Array4<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Array4::from_shape_fn((m, h, w, 1), |(_, i, j, _)| {
        let edge = i < 2 || j < 2 || i + 2 >= h || j + 2 >= w;
        if edge || rng.gen_bool(0.6) {
            0.0
        } else {
            rng.gen_range(0.0..1.0)
        }
    })
}

/// The kernels of `spec` on (x1, x2) and rows `rows` with both engines: asserts that the strip
/// engine applies and that the bits agree.
fn same_bits(spec: &Spec, x1: &Array4<f64>, x2: Option<&Array4<f64>>) {
    assert!(
        conv::uses_strips(spec),
        "{spec:?} does not use the strip engine"
    );
    let m = x1.dim().0;
    let run = |rows: std::ops::Range<usize>| {
        conv::kernels_rows(spec, x1.view(), x2.map(|x| x.view()), rows).unwrap()
    };
    let strip = run(0..m);
    let strip_rows = run(m / 2..m);
    conv::force_planes(true);
    let planes = run(0..m);
    let planes_rows = run(m / 2..m);
    conv::force_planes(false);
    assert!(strip.ntk.iter().all(|v| v.is_finite()));
    assert_eq!(bits(&strip), bits(&planes), "{spec:?}: full Gram");
    assert_eq!(bits(&strip_rows), bits(&planes_rows), "{spec:?}: rows");
}

fn spec(layers: &str) -> Spec {
    Spec::parse(layers)
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1))
}

#[test]
fn strip_engine_gives_the_plane_engines_bits_for_every_activation_and_kernel_size() {
    let _one = ENGINE_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let x = six(3);
    for layers in [
        "conv:3:same,relu,conv:3:same,relu,gap,dense",
        "conv:3:same,erf,conv:3:same,relu,gap,dense",
        "conv:3:same,leaky_relu(0.1),conv:3:same,identity,gap,dense",
        "conv:3:same,abrelu(0.3,1.2),conv:1:same,relu,gap,dense",
        "conv:2:same,relu,gap,dense",
        "conv:4:same,relu,conv:5:same,erf,gap,dense",
        "conv:1:valid,relu,conv:3:same,relu,gap,dense",
        "conv:5:same,relu,dense,relu,gap,dense",
        "conv:3:same,relu,gap,dense,relu,dense",
    ] {
        same_bits(&spec(layers), &x, None);
    }
}

#[test]
fn strip_engine_gives_the_plane_engines_bits_across_inputs_and_conventions() {
    let _one = ENGINE_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let deep = "conv:3:same,relu,conv:3:same,relu,conv:3:same,relu,gap,dense";
    // Non-square one-channel images (the lazy first layer of the plane engine), X1 vs X2.
    let a = positive(5, (9, 7), 1);
    let b = positive(3, (9, 7), 2);
    same_bits(&spec(deep), &a, None);
    same_bits(&spec(deep), &a, Some(&b));
    // Images smaller than the kernel: every pixel is a border pixel.
    same_bits(
        &spec("conv:5:same,relu,conv:3:same,erf,gap,dense"),
        &positive(3, (2, 3), 4),
        None,
    );
    // 28×28 Omniglot-like images: the benchmark architecture.
    same_bits(&spec(deep), &positive(3, (28, 28), 5), None);
    // The standard parameterization and Arora's normalization.
    let std = spec("conv:3:same,relu,conv:3:same,relu,gap,dense").with_standard(7);
    same_bits(&std, &six(9), None);
    let mut arora = spec("conv:3:same,relu,conv:3:same,relu,gap,dense");
    arora.normalization = gbml_testbed::kernel::Normalization::Arora;
    same_bits(&arora, &six(10), None);
    // Without a bias (σ_b = None: no D' bias term where D cancels).
    let nobias = Spec::parse(deep)
        .unwrap()
        .with_sigma_w(1.2)
        .with_sigma_b(None);
    same_bits(&nobias, &positive(4, (6, 6), 11), None);
}

#[test]
fn strip_engine_applies_exactly_to_conv_activation_pairs_before_a_gap() {
    for (layers, strips) in [
        ("conv:3:same,relu,conv:3:same,relu,gap,dense", true),
        ("conv:3:same,relu,dense,erf,gap,dense", true),
        ("conv:3:valid,relu,gap,dense", false),
        ("conv:3:same,relu,avgpool:2,gap,dense", false),
        ("conv:3:same,relu,conv:3:same,gap,dense", false),
        ("relu,conv:3:same,gap,dense", false),
        ("conv:3:same,relu,flatten,dense", false),
        ("conv:9:same,relu,gap,dense", false),
    ] {
        assert_eq!(conv::uses_strips(&spec(layers)), strips, "{layers}");
    }
}
