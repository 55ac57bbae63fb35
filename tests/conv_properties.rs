//! Properties of the convolutional kernels and their architecture spec: typed errors for bad
//! specs and inputs, the FC special case keeps the FC kernels' bits, row slices and thread
//! counts give the same bits, exact symmetry, and the stax conventions that the golden test
//! alone would not pin (a counterfactual input kernel without 1/C is detected).

use gbml_testbed::kernel::{self, conv, Activation, Arch, Layer, Padding, Spec};
use gbml_testbed::Error;
use ndarray::{Array4, Axis};
use rand::{Rng, SeedableRng};

fn images(m: usize, h: usize, w: usize, c: usize, seed: u64) -> Array4<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array4::from_shape_fn((m, h, w, c), |_| rng.gen_range(-1.0..1.0))
}

fn is_param(e: &Error) -> bool {
    matches!(e, Error::InvalidParameter { .. })
}

#[test]
fn spec_parser_accepts_the_issue_words_and_round_trips() {
    let s = Spec::parse("conv:3:same, ReLU ,conv:3:valid,avgpool:2,leaky_relu:0.1,abrelu(0.2,1),erf,identity,gap,dense").unwrap();
    assert_eq!(
        s.layers[0],
        Layer::Conv {
            k: 3,
            padding: Padding::Same
        }
    );
    assert_eq!(s.layers[1], Layer::Act(Activation::Relu));
    assert_eq!(s.layers[3], Layer::AvgPool { k: 2 });
    assert_eq!(
        s.layers[5],
        Layer::Act(Activation::AbRelu { a: 0.2, b: 1.0 })
    );
    let again = Spec::parse(&s.layers_string()).unwrap();
    assert_eq!(again.layers, s.layers);
}

#[test]
fn bad_specs_get_typed_errors() {
    for bad in [
        "",
        "conv",
        "conv:3",
        "conv:0:same",
        "conv:3:full",
        "avgpool",
        "avgpool:x",
        "gap:2",
        "softmax",
        "conv:3:same:1",
    ] {
        let e = Spec::parse(bad).unwrap_err();
        assert!(is_param(&e), "{bad}: {e}");
    }
    // Spatial size too small for a VALID conv or a pool; output not one value per image.
    let x = images(2, 4, 4, 1, 1);
    for (spec, needle) in [
        ("conv:5:valid,relu,gap", "too small"),
        ("avgpool:5,gap", "too small"),
        ("conv:3:same,relu,dense", "not one value"),
    ] {
        let e = conv::kernels(&Spec::parse(spec).unwrap(), x.view(), None).unwrap_err();
        assert!(
            is_param(&e) && e.to_string().contains(needle),
            "{spec}: {e}"
        );
    }
    // Standard parameterization without a width; bad scales.
    let s = Spec::parse("conv:3:same,relu,gap").unwrap();
    assert!(is_param(
        &conv::kernels(&s.clone().with_standard(0), x.view(), None).unwrap_err()
    ));
    assert!(is_param(
        &conv::kernels(&s.clone().with_sigma_w(0.0), x.view(), None).unwrap_err()
    ));
    assert!(is_param(
        &conv::kernels(&s.clone().with_sigma_b(Some(-1.0)), x.view(), None).unwrap_err()
    ));
}

#[test]
fn bad_inputs_get_typed_errors() {
    let s = Spec::parse("conv:3:same,relu,gap,dense").unwrap();
    let mut x = images(3, 4, 4, 2, 2);
    let y = images(2, 4, 5, 2, 3);
    assert!(matches!(
        conv::kernels(&s, x.view(), Some(y.view())),
        Err(Error::Shape { .. })
    ));
    let z = Array4::<f64>::zeros((2, 4, 4, 0));
    assert!(matches!(
        conv::kernels(&s, z.view(), None),
        Err(Error::Empty(_))
    ));
    x[[1, 2, 3, 1]] = f64::NAN;
    assert!(matches!(
        conv::kernels(&s, x.view(), None),
        Err(Error::NonFinite { .. })
    ));
    x[[1, 2, 3, 1]] = 1e200;
    assert!(is_param(&conv::kernels(&s, x.view(), None).unwrap_err()));
    let x = images(3, 4, 4, 2, 2);
    assert!(is_param(
        &conv::kernels_rows(&s, x.view(), None, 2..5).unwrap_err()
    ));
}

#[test]
fn fc_special_case_keeps_the_fc_bits() {
    let x = images(5, 1, 1, 7, 4);
    let flat = x.to_shape((5, 7)).unwrap().to_owned();
    let spec = Spec::parse("dense,erf,dense,erf,dense")
        .unwrap()
        .with_sigma_w(1.3)
        .with_sigma_b(Some(0.2));
    let arch = Arch::new(2, Activation::Erf)
        .with_sigma_w(1.3)
        .with_sigma_b(Some(0.2));
    assert_eq!(spec.as_fc(), Some(arch.clone()));
    let a = conv::kernels(&spec, x.view(), None).unwrap();
    let b = kernel::kernels(&arch, flat.view(), None).unwrap();
    assert_eq!(a, b);
    // The plane path on the same 1×1 images agrees to rounding (a different code path).
    let plane = Spec::parse("dense,erf,dense,erf,flatten,dense")
        .unwrap()
        .with_sigma_w(1.3)
        .with_sigma_b(Some(0.2));
    assert!(plane.as_fc().is_none());
    let c = conv::kernels(&plane, x.view(), None).unwrap();
    for (u, v) in c.ntk.iter().zip(b.ntk.iter()) {
        assert!((u - v).abs() <= 1e-14 * v.abs(), "{u} vs {v}");
    }
}

#[test]
fn rows_and_threads_give_the_same_bits_and_k_is_symmetric() {
    let x = images(7, 5, 5, 2, 5);
    let spec = Spec::parse("conv:3:same,relu,avgpool:2,conv:2:valid,erf,flatten,dense")
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1));
    let full = conv::kernels(&spec, x.view(), None).unwrap();
    for i in 0..7 {
        for j in 0..7 {
            assert_eq!(full.ntk[[i, j]].to_bits(), full.ntk[[j, i]].to_bits());
            assert_eq!(full.nngp[[i, j]].to_bits(), full.nngp[[j, i]].to_bits());
        }
    }
    for r in [0..3, 3..7, 2..5, 6..7, 4..4] {
        let part = conv::kernels_rows(&spec, x.view(), None, r.clone()).unwrap();
        assert_eq!(part.ntk, full.ntk.slice(ndarray::s![r.clone(), ..]));
        assert_eq!(part.nngp, full.nngp.slice(ndarray::s![r, ..]));
    }
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let k1 = one.install(|| conv::kernels(&spec, x.view(), None).unwrap());
    assert_eq!(k1, full);
    // X1 vs X2 = the same images: the same values as the symmetric path, to rounding only
    // where the canonical order differs (here: the same bits, since every pair is computed
    // from (x_i, x_j) with i ≤ j in the symmetric case and (x_i, x_j) in the cross case).
    let cross = conv::kernels(&spec, x.view(), Some(x.view())).unwrap();
    for ((i, j), v) in cross.ntk.indexed_iter() {
        if i <= j {
            assert_eq!(v.to_bits(), full.ntk[[i, j]].to_bits());
        }
    }
    // Rows of a cross kernel are slices of it too.
    let y = images(4, 5, 5, 2, 6);
    let c = conv::kernels(&spec, x.view(), Some(y.view())).unwrap();
    let c2 = conv::kernels_rows(&spec, x.view(), Some(y.view()), 2..6).unwrap();
    assert_eq!(c2.ntk, c.ntk.slice(ndarray::s![2..6, ..]));
}

/// Homogeneity and PSD: bias-free ReLU CNTK-GAP is positively homogeneous of degree 1 in each
/// image; the Gram matrix has no eigenvalue below −n·ε·‖K‖.
#[test]
fn relu_homogeneity_and_psd() {
    let x = images(6, 4, 4, 1, 7);
    let spec = Spec::parse("conv:3:same,relu,conv:3:same,relu,gap,dense")
        .unwrap()
        .with_sigma_w(1.4);
    let k = conv::kernels(&spec, x.view(), None).unwrap();
    let mut xs = x.clone();
    xs.index_axis_mut(Axis(0), 2).mapv_inplace(|v| v * 4.0);
    let ks = conv::kernels(&spec, xs.view(), None).unwrap();
    for j in 0..6 {
        let f = if j == 2 { 16.0 } else { 4.0 };
        let want = k.ntk[[2, j]] * f;
        assert!((ks.ntk[[2, j]] - want).abs() <= 1e-14 * want.abs(), "j {j}");
    }
    let ev = gbml_testbed::linalg::sym_eigvals(k.ntk.view()).unwrap();
    let top = ev.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(ev.iter().all(|&v| v >= -6.0 * f64::EPSILON * top), "{ev:?}");
}

/// Counterfactual: the stax input kernel divides by the channel count C. Arora's
/// normalization (no 1/C, Θ before the readout term) gives different values, and for a
/// bias-free ReLU net the NNGP differs by exactly the factor C (homogeneity), so a golden
/// test against stax values would catch a missing 1/C.
#[test]
fn input_kernel_divides_by_channels_arora_does_not() {
    let x = images(3, 4, 4, 3, 8);
    let base = Spec::parse("conv:3:same,relu,gap,dense")
        .unwrap()
        .with_sigma_w(2f64.sqrt());
    let stax = conv::kernels(&base, x.view(), None).unwrap();
    let arora = conv::kernels(
        &base
            .clone()
            .with_normalization(kernel::Normalization::Arora),
        x.view(),
        None,
    )
    .unwrap();
    for (a, s) in arora.nngp.iter().zip(stax.nngp.iter()) {
        // stax: final dense multiplies by σ_w² = 2; Arora: readout unchanged, inputs ×C.
        assert!((a - s * 3.0 / 2.0).abs() <= 1e-13 * a.abs(), "{a} vs {s}");
    }
    // Arora's Θ excludes the readout's NNGP term: Θ_arora = C·(Θ_stax − Σ_stax)/σ_w².
    for ((a, t), s) in arora.ntk.iter().zip(stax.ntk.iter()).zip(stax.nngp.iter()) {
        let want = 3.0 * (t - s) / 2.0;
        assert!((a - want).abs() <= 1e-13 * a.abs(), "{a} vs {want}");
    }
}
