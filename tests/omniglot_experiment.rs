//! The Omniglot protocol (MATH.md §10, `gbml omniglot --quick`): the claims' verdicts are
//! computed at every C for every base kernel (the CNTK-GAP row and the FC row), the negative
//! controls fail, the unrelated-support control sits at chance, the CNTK pool Gram is
//! `kernel::conv::kernels` on the images the tasks use (bit for bit), and bad configurations
//! are typed errors.

use gbml_testbed::experiments::omniglot::{
    base_gram, names, run, CntkKernel, FcKernel, NamedKernel, OmniglotConfig, Setup,
};
use gbml_testbed::experiments::stats::wilson;
use gbml_testbed::kernel::{conv, Activation, Arch, Spec};
use gbml_testbed::mnk::data::{omniglot_fixture_path, Omniglot};
use gbml_testbed::Error;
use ndarray::{Array2, Axis};
use std::sync::Arc;

const SQRT2: f64 = std::f64::consts::SQRT_2;

fn fc() -> Arch {
    Arch::new(1, Activation::Relu).with_sigma_w(SQRT2)
}

fn fc_kernel() -> NamedKernel {
    NamedKernel::new("fc", Arc::new(FcKernel(fc())))
}

fn quick_cntk() -> CntkKernel {
    let spec = Spec::parse(CntkKernel::QUICK_LAYERS)
        .unwrap()
        .with_sigma_w(SQRT2);
    CntkKernel::new(spec, 28, CntkKernel::QUICK_SIZE).unwrap()
}

fn cntk_kernel() -> NamedKernel {
    NamedKernel::new("cntk", Arc::new(quick_cntk())).on_used_images()
}

#[test]
fn quick_run_computes_the_claims_and_the_controls_fail() {
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let cfg = OmniglotConfig::quick(fc());
    let rep = run(&data, &cfg, &[cntk_kernel(), fc_kernel()], &mut |_| {}).unwrap();
    assert_eq!(rep.points.len(), cfg.train_chars.len());
    // The CNTK Gram is evaluated on the used images only, the FC one on the whole pool.
    let setup = Setup::new(&data, &cfg).unwrap();
    assert_eq!(rep.kernel_images, vec![setup.used.len(), rep.pool_size]);
    assert!(setup.used.len() < rep.pool_size / 2, "{}", setup.used.len());
    for p in &rep.points {
        let few = p.chars <= cfg.few;
        for k in ["cntk", "fc"] {
            let at_c: Vec<_> = rep
                .claims
                .iter()
                .filter(|c| c.chars == p.chars && c.kernel == k)
                .collect();
            // MNK vs G and its control at every C; MNK vs MAML and its control where C is few.
            assert_eq!(at_c.len(), if few { 4 } else { 2 }, "{k}, C = {}", p.chars);
            for c in &at_c {
                assert!(c.diff.mean.is_finite() && c.diff.lower.is_finite(), "{c:?}");
                assert_eq!(c.diff.n, cfg.test_tasks);
                assert!(c.a.contains(k), "{c:?}");
                if c.control {
                    assert!(!c.established, "control established: {c:?}");
                }
            }
            // Supports of other tasks: no information about the query classes, so chance (1/5).
            let ctl = p
                .methods
                .iter()
                .find(|m| m.method == names::ctl_unrelated(k))
                .unwrap();
            assert!(ctl.ci.0 < 0.2 && 0.2 < ctl.ci.1, "{ctl:?}");
        }
        for m in &p.methods {
            let k: usize = m.hits.iter().sum();
            assert_eq!(m.ci, wilson(k, m.hits.len() * m.per_task, cfg.level));
        }
    }
}

/// Rows `rows` of the images the CNTK sees, as an NHWC array.
fn nhwc(k: &CntkKernel, x: &Array2<f64>) -> ndarray::Array4<f64> {
    let s = k.size();
    let img = k.images(x.view()).unwrap();
    img.into_shape_with_order((x.nrows(), s, s, 1)).unwrap()
}

#[test]
fn cntk_pool_gram_is_conv_kernels_on_the_used_images_bit_for_bit() {
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let cfg = OmniglotConfig::quick(fc());
    let setup = Setup::new(&data, &cfg).unwrap();
    let k = quick_cntk();
    // One evaluation (the run's: cosine-normalised), checked against the raw conv kernels.
    let g = base_gram(&cntk_kernel(), &setup, true).unwrap();
    // A subset of the used rows, ascending (so the symmetric path orders every pair alike).
    let rows: Vec<usize> = setup.used.iter().step_by(37).copied().collect();
    assert!(rows.len() >= 10);
    let x = setup.pool.x.select(Axis(0), &rows);
    let raw = conv::kernels(k.spec(), nhwc(&k, &x).view(), None)
        .unwrap()
        .ntk;
    // Cosine normalisation K_ij / (√K_ii √K_jj) of the same entries: the same bits, unless the
    // pool Gram is not conv::kernels on these images.
    for (a, &i) in rows.iter().enumerate() {
        for (b, &j) in rows.iter().enumerate() {
            let want = raw[[a, b]] / (raw[[a, a]].sqrt() * raw[[b, b]].sqrt());
            assert_eq!(want.to_bits(), g[[i, j]].to_bits(), "({i}, {j})");
        }
    }
    // Rows no task uses are not evaluated (NaN: a read would be a typed error).
    let unused = (0..setup.pool.len())
        .find(|r| setup.used.binary_search(r).is_err())
        .unwrap();
    assert!(g[[unused, rows[0]]].is_nan());
}

#[test]
fn downsampling_is_an_average_pooling_first_layer() {
    // Block means of 7×7 windows (checked against a direct sum), and the CNTK on them equals
    // the kernel of the same net with an `avgpool:7` first layer on the 28×28 images.
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let x = data
        .images
        .index_axis(Axis(1), 0)
        .slice(ndarray::s![..3, ..])
        .to_owned();
    let k = quick_cntk();
    let img = k.images(x.view()).unwrap();
    let mut direct = 0.0;
    for u in 0..7 {
        for v in 0..7 {
            direct += x[[1, (7 + u) * 28 + 14 + v]];
        }
    }
    assert!((img[[1, 4 + 2]] - direct / 49.0).abs() < 1e-15);
    let small = conv::kernels(k.spec(), nhwc(&k, &x).view(), None).unwrap();
    let pooled = Spec::parse(&format!("avgpool:7,{}", CntkKernel::QUICK_LAYERS))
        .unwrap()
        .with_sigma_w(SQRT2);
    let big = x.clone().into_shape_with_order((3, 28, 28, 1)).unwrap();
    let full = conv::kernels(&pooled, big.view(), None).unwrap();
    for (a, b) in small.ntk.iter().zip(full.ntk.iter()) {
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
    }
}

#[test]
fn bad_cntk_specs_are_typed_errors() {
    let spec = |s: &str| Spec::parse(s).map(|sp| sp.with_sigma_w(SQRT2));
    assert!(matches!(
        spec("conv:3:same,bogus,gap,dense"),
        Err(Error::InvalidParameter { .. })
    ));
    let ok = spec(CntkKernel::QUICK_LAYERS).unwrap();
    // 5 does not divide 28.
    assert!(matches!(
        CntkKernel::new(ok.clone(), 28, 5),
        Err(Error::InvalidParameter { .. })
    ));
    // A VALID 5×5 conv does not fit a 4×4 image; no readout to one value without gap.
    for bad in ["conv:5:valid,relu,gap,dense", "conv:3:same,relu,dense"] {
        assert!(matches!(
            CntkKernel::new(spec(bad).unwrap(), 28, 4),
            Err(Error::InvalidParameter { .. })
        ));
    }
    // Rows that are not 28×28 images.
    let k = CntkKernel::new(ok, 28, 4).unwrap();
    assert!(matches!(
        k.images(Array2::<f64>::zeros((2, 100)).view()),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn bad_configurations_are_typed_errors() {
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let mut cfg = OmniglotConfig::quick(fc());
    cfg.maml = None;
    let kernels = [fc_kernel()];
    cfg.train_chars = vec![3];
    assert!(matches!(
        run(&data, &cfg, &kernels, &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
    cfg.train_chars = vec![500];
    assert!(matches!(
        run(&data, &cfg, &kernels, &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
    cfg.train_chars = vec![5];
    assert!(matches!(
        run(&data, &cfg, &[], &mut |_| {}),
        Err(Error::Empty(_))
    ));
    cfg.level = 1.5;
    assert!(matches!(
        run(&data, &cfg, &kernels, &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
}
