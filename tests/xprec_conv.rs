//! The extended-precision (double-double) conv kernels `xprec::conv_kernels` against the
//! 50-digit mpmath values of `fixtures/conv/conv.json` (`fixtures/conv/gen_conv.py`): ≥ 15
//! digits on every entry of every case, including average pooling followed by an activation on
//! scaled images, where the f64 path has ~9 digits (asserted below 13 here as the
//! counterfactual, so the case keeps testing what it was added for). Table:
//! `cargo test --release --test xprec_conv -- --nocapture`.

use gbml_testbed::kernel::{conv, Normalization, Spec};
use gbml_testbed::tol::lre;
use gbml_testbed::xprec;
use ndarray::{s, Array4};

#[path = "common/conv_fixture.rs"]
mod conv_fixture;
use conv_fixture::fixture;

#[test]
fn extended_conv_kernels_have_15_digits_on_every_fixture_entry() {
    let fx = fixture();
    assert!(fx.cases.len() >= 18);
    let mut failures = Vec::new();
    let mut gap_seen = false;
    println!(
        "{:62} {:9} {:13} {:>6} {:>6}",
        "layers", "param.", "inputs", "ext", "f64"
    );
    for c in &fx.cases {
        let x = c.images();
        let spec = c.spec();
        let ext = c.min_digits(&xprec::conv_kernels(&spec, x.view(), None).unwrap());
        let f64d = c.min_digits(&conv::kernels(&spec, x.view(), None).unwrap());
        println!(
            "{:62} {:9} {:13} {:6.2} {:6.2}",
            c.spec, c.parameterization, c.inputs, ext, f64d
        );
        if c.spec.contains("avgpool:2,conv") && c.inputs == "scaled" {
            // The case the extended path exists for: the f64 path is far below 13 there.
            assert!(f64d < 10.0, "f64 path on the pool gap case: {f64d:.2}");
            gap_seen = true;
        }
        if !(ext >= 15.0) {
            failures.push(format!(
                "{} / {} / {}: {ext:.2}",
                c.spec, c.parameterization, c.inputs
            ));
        }
    }
    assert!(
        gap_seen,
        "the avgpool → activation scaled case is in the fixture"
    );
    assert!(failures.is_empty(), "below 15 digits: {failures:#?}");
}

/// Cross kernels K(X1, X2) equal the corresponding block of K(X1 ∪ X2) (same DD recursion,
/// faithful rounding), and the FC special case is the FC extended path.
#[test]
fn extended_conv_cross_blocks_and_fc_case() {
    let c = &fixture().cases[1];
    let x = c.images();
    let spec = c.spec();
    let full = xprec::conv_kernels(&spec, x.view(), None).unwrap();
    let cross = xprec::conv_kernels(
        &spec,
        x.slice(s![0..1, .., .., ..]),
        Some(x.slice(s![1..3, .., .., ..])),
    )
    .unwrap();
    for j in 0..2 {
        assert!(lre(cross.ntk[[0, j]], full.ntk[[0, j + 1]]) >= 15.5);
        assert!(lre(cross.nngp[[0, j]], full.nngp[[0, j + 1]]) >= 15.5);
    }
    // dense,relu,dense on 1×1×d images = the FC extended kernels, bit for bit.
    let fc = Spec::parse("dense,relu,dense")
        .unwrap()
        .with_sigma_w(1.3)
        .with_sigma_b(Some(0.2));
    let xf = Array4::from_shape_fn((3, 1, 1, 4), |(m, _, _, k)| {
        ((m * 4 + k) as f64 * 0.37).sin()
    });
    let a = xprec::conv_kernels(&fc, xf.view(), None).unwrap();
    let arch = fc.as_fc().unwrap();
    let flat = xf.to_shape((3, 4)).unwrap().to_owned();
    let b = xprec::kernels(&arch, flat.view(), None).unwrap();
    assert_eq!(a.ntk, b.ntk);
    assert_eq!(a.nngp, b.nngp);
}

/// Arora's normalization (no fixture case): input kernel without 1/C and the final dense
/// returning its input, so on C-channel images with σ_w = 1, σ_b = none and a positively
/// homogeneous ReLU net Arora's NNGP is C × stax's (the readout multiplies by σ_w² = 1); and
/// the extended values agree with the f64 path.
#[test]
fn extended_conv_arora_normalization() {
    let x = Array4::from_shape_fn((3, 4, 4, 2), |(m, i, j, k)| {
        ((m * 32 + i * 8 + j * 2 + k) as f64 * 0.731).sin()
    });
    let base = Spec::parse("conv:3:same,relu,conv:3:same,relu,gap,dense")
        .unwrap()
        .with_sigma_w(1.0);
    let stax = xprec::conv_kernels(&base, x.view(), None).unwrap();
    let arora_spec = base.clone().with_normalization(Normalization::Arora);
    let arora = xprec::conv_kernels(&arora_spec, x.view(), None).unwrap();
    let f64a = conv::kernels(&arora_spec, x.view(), None).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert!(lre(arora.nngp[[i, j]], 2.0 * stax.nngp[[i, j]]) >= 15.0);
            assert!(lre(arora.ntk[[i, j]], f64a.ntk[[i, j]]) >= 12.0);
            assert!(lre(arora.nngp[[i, j]], f64a.nngp[[i, j]]) >= 12.0);
        }
    }
}

/// Bad input: the f64 path's typed errors, no panic.
#[test]
fn extended_conv_bad_input_is_typed() {
    let spec = Spec::parse("conv:5:valid,relu,gap,dense").unwrap();
    let x = Array4::<f64>::zeros((2, 3, 3, 1));
    assert!(xprec::conv_kernels(&spec, x.view(), None).is_err());
    let spec = Spec::parse("conv:3:same,relu,gap,dense").unwrap();
    let mut x = Array4::<f64>::zeros((2, 3, 3, 1));
    x[[1, 1, 1, 0]] = f64::NAN;
    assert!(matches!(
        xprec::conv_kernels(&spec, x.view(), None),
        Err(gbml_testbed::Error::NonFinite { .. })
    ));
}
