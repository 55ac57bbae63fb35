//! The MNK on a base kernel given as a function of the inputs ([`KernelFn`], MATH.md §3, §5):
//! wrapping the analytic FC kernel in a function must give the analytic path's bits for Φ, its
//! row blocks, the cross kernel and the predictions (MAML and ANIL); a function that breaks the
//! contract (wrong shape, non-finite entry, asymmetric K(X, X)) is a typed error.

use gbml_testbed::kernel::{self, Activation, Arch};
use gbml_testbed::mnk::data::{sine_tasks, SineSpec};
use gbml_testbed::mnk::{BaseKernel, KernelFn, Mnk, RidgeMode, Schedule, Variant};
use gbml_testbed::{Error, Result};
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

fn arch() -> Arch {
    Arch::new(2, Activation::Relu).with_sigma_b(Some(0.5))
}

/// The FC kernel behind the function interface, optionally broken in one way.
#[derive(Debug)]
struct Fc {
    fault: Option<&'static str>,
}

impl KernelFn for Fc {
    fn kernels<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let k = kernel::kernels(&arch(), x1, x2)?;
        let (mut ntk, nngp) = (k.ntk, k.nngp);
        match self.fault {
            Some("shape") => ntk = Array2::zeros((ntk.nrows() + 1, ntk.ncols())),
            Some("nan") => ntk[[0, 0]] = f64::NAN,
            Some("asym") if x2.is_none() && ntk.nrows() > 1 => ntk[[1, 0]] += 1e-9,
            _ => {}
        }
        Ok((ntk, Some(nngp)))
    }
}

fn sets() -> (gbml_testbed::mnk::TaskSet, gbml_testbed::mnk::TaskSet) {
    let spec = SineSpec {
        tasks: 7,
        m: 4,
        n: 6,
        noise: 0.0,
    };
    let test = SineSpec { tasks: 3, ..spec };
    (sine_tasks(spec, 1).unwrap(), sine_tasks(test, 2).unwrap())
}

fn bits(a: &Array2<f64>) -> Vec<u64> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn kernel_function_gives_the_analytic_bits() {
    let (train, test) = sets();
    let inner = Schedule::flow(0.7).with_ridge(1e-6, RidgeMode::Both);
    let outer = Schedule::infinite().with_ridge(1e-6, RidgeMode::InverseOnly);
    for v in [Variant::Maml, Variant::Anil] {
        let a = Mnk::new(BaseKernel::Analytic(arch()), inner).with_variant(v);
        let f = Mnk::new(BaseKernel::Function(Arc::new(Fc { fault: None })), inner).with_variant(v);
        let phi = a.phi(&train).unwrap();
        assert_eq!(bits(&phi), bits(&f.phi(&train).unwrap()));
        assert_eq!(
            bits(&phi.slice(ndarray::s![5..23, ..]).to_owned()),
            bits(&f.phi_rows(&train, 5..23).unwrap())
        );
        assert_eq!(
            bits(&a.cross(&test, &train).unwrap()),
            bits(&f.cross(&test, &train).unwrap())
        );
        let pa = a.predict(&train, &test, &outer, None).unwrap();
        let pf = f.predict(&train, &test, &outer, None).unwrap();
        assert_eq!(bits(&pa.test), bits(&pf.test));
        assert_eq!(bits(&pa.g_test), bits(&pf.g_test));
    }
}

#[test]
fn broken_kernel_functions_are_typed_errors() {
    let (train, _) = sets();
    for fault in ["shape", "nan", "asym"] {
        let m = Mnk::new(
            BaseKernel::Function(Arc::new(Fc { fault: Some(fault) })),
            Schedule::flow(1.0),
        );
        match m.phi(&train) {
            Err(Error::Shape { .. }) if fault == "shape" => {}
            Err(Error::NonFinite { .. }) if fault == "nan" => {}
            Err(Error::Unsupported(msg)) if fault == "asym" => {
                assert!(msg.contains("symmetric"), "{msg}")
            }
            other => panic!("fault {fault}: unexpected {other:?}"),
        }
    }
}

/// The layer-list (conv) base kernel: the FC spec on 1×1×d images has the analytic FC bits
/// through the whole MNK; a conv spec keeps Φ's row blocks bit-exact; a wrong image shape is a
/// typed error.
#[test]
fn layer_kernel_plugs_into_the_mnk() {
    use gbml_testbed::kernel::Spec;
    use gbml_testbed::mnk::{LayerKernel, Task, TaskSet};
    let (train, test) = sets();
    let inner = Schedule::flow(0.7);
    let outer = Schedule::infinite().with_ridge(1e-6, RidgeMode::InverseOnly);
    let fc_spec = Spec::parse("dense,relu,dense,relu,dense")
        .unwrap()
        .with_sigma_w(arch().sigma_w)
        .with_sigma_b(Some(0.5));
    let lk = |spec: Spec, shape| BaseKernel::Function(Arc::new(LayerKernel { spec, shape }));
    let a = Mnk::new(BaseKernel::Analytic(arch()), inner);
    let f = Mnk::new(lk(fc_spec, (1, 1, 1)), inner);
    assert_eq!(bits(&a.phi(&train).unwrap()), bits(&f.phi(&train).unwrap()));
    let (pa, pf) = (
        a.predict(&train, &test, &outer, None).unwrap(),
        f.predict(&train, &test, &outer, None).unwrap(),
    );
    assert_eq!(bits(&pa.test), bits(&pf.test));

    // Conv on 3×3×1 images (d = 9): rows of Φ are exact slices.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut img = |n: usize| Array2::from_shape_fn((n, 9), |_| rng.gen_range(-1.0..1.0));
    let tasks: Vec<Task> = (0..4)
        .map(|_| {
            Task::new(
                img(3),
                img(3).slice(ndarray::s![.., ..1]).to_owned(),
                img(4),
                img(4).slice(ndarray::s![.., ..1]).to_owned(),
            )
            .unwrap()
        })
        .collect();
    let set = TaskSet::new(tasks).unwrap();
    let conv = Spec::parse("conv:2:same,relu,conv:2:valid,relu,gap,dense").unwrap();
    let m = Mnk::new(lk(conv.clone(), (3, 3, 1)), inner);
    let phi = m.phi(&set).unwrap();
    assert_eq!(phi.dim(), (16, 16));
    assert_eq!(
        bits(&phi.slice(ndarray::s![3..11, ..]).to_owned()),
        bits(&m.phi_rows(&set, 3..11).unwrap())
    );
    let bad = Mnk::new(lk(conv, (2, 2, 1)), inner);
    assert!(
        matches!(bad.phi(&set), Err(Error::Shape { .. })),
        "{:?}",
        bad.phi(&set)
    );
}
