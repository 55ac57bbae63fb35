//! Bad input everywhere (docs/bad_input.md): every entry point answers with a typed error (the
//! right variant, a message naming what is wrong) or a mismatch verdict, and the CLI with the
//! documented exit code; never a panic, never a silent NaN.

use gbml_testbed::io::arrays;
use gbml_testbed::io::compare::{compare_arrays, compare_values, reference, task_set, Verdict};
use gbml_testbed::io::export::cases;
use gbml_testbed::io::manifest::{Layout, Manifest, Quantity, TaskShape};
use gbml_testbed::io::tolerance::ToleranceTable;
use gbml_testbed::kernel::{self, Activation, Arch, Parameterization};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
use gbml_testbed::Error;
use ndarray::{array, Array2};
use std::process::Command;

fn relu() -> Arch {
    Arch::new(2, Activation::Relu)
}

#[test]
fn kernel_inputs() {
    let x = array![[1.0, f64::NAN], [0.0, 1.0]];
    let e = kernel::kernels(&relu(), x.view(), None).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    assert!(e.to_string().contains("[0, 1]"), "names the entry: {e}");
    let inf = array![[f64::INFINITY]];
    assert!(matches!(
        kernel::kernels(&relu(), inf.view(), None).unwrap_err(),
        Error::NonFinite { .. }
    ));
    let empty_d = Array2::<f64>::zeros((3, 0));
    assert!(matches!(
        kernel::kernels(&relu(), empty_d.view(), None).unwrap_err(),
        Error::Empty(_)
    ));
    let a = array![[1.0, 2.0]];
    let b = array![[1.0, 2.0, 3.0]];
    assert!(matches!(
        kernel::kernels(&relu(), a.view(), Some(b.view())).unwrap_err(),
        Error::Shape { .. }
    ));
    for arch in [
        relu().with_sigma_w(0.0),
        relu().with_sigma_w(f64::NAN),
        relu().with_sigma_b(Some(-1.0)),
        relu().with_parameterization(Parameterization::Standard),
        relu().with_widths(vec![3]),
        Arch::new(
            2,
            Activation::AbRelu {
                a: f64::NAN,
                b: 1.0,
            },
        ),
    ] {
        let e = kernel::kernels(&arch, a.view(), None).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { .. }), "{arch:?}: {e}");
        assert_eq!(e.exit_code(), 2);
    }
    // Zero inputs are valid and give finite values (the limit), not NaN.
    let z = array![[0.0, 0.0], [1.0, 0.0]];
    let k = kernel::kernels(&relu(), z.view(), None).unwrap();
    assert!(k.ntk.iter().chain(k.nngp.iter()).all(|v| v.is_finite()));
}

fn task(xs: Array2<f64>, xq: Array2<f64>) -> Task {
    let m = xs.nrows();
    let n = xq.nrows();
    Task::new(xs, Array2::ones((m, 1)), xq, Array2::zeros((n, 1))).unwrap()
}

#[test]
fn task_sets_and_singular_kernels() {
    assert!(matches!(TaskSet::new(vec![]).unwrap_err(), Error::Empty(_)));
    let e = Task::new(
        Array2::zeros((0, 2)),
        Array2::zeros((0, 1)),
        array![[1.0, 0.0]],
        array![[0.0]],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Empty(_)), "{e}");
    let e = Task::new(
        array![[1.0, 0.0]],
        array![[1.0], [2.0]],
        array![[1.0, 0.0]],
        array![[0.0]],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "ragged labels: {e}");
    let t1 = task(array![[1.0, 0.0]], array![[0.0, 1.0]]);
    let t2 = task(array![[1.0, 0.0, 0.0]], array![[0.0, 1.0, 0.0]]);
    assert!(
        matches!(TaskSet::new(vec![t1, t2]).unwrap_err(), Error::Shape { .. }),
        "ragged d"
    );
    // Duplicate support points: singular support kernel at infinite time without ridge.
    let set = TaskSet::new(vec![task(
        array![[1.0, 0.5], [1.0, 0.5]],
        array![[0.0, 1.0]],
    )])
    .unwrap();
    let mk = Mnk::new(BaseKernel::Analytic(relu()), Schedule::infinite());
    match mk.phi(&set).unwrap_err() {
        e @ Error::Singular {
            lambda_min,
            suggested_ridge,
            ..
        } => {
            assert!(lambda_min.abs() < 1e-10 && suggested_ridge > 0.0, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("smallest eigenvalue") && msg.contains("ridge"),
                "{msg}"
            );
            assert_eq!(e.exit_code(), 3);
        }
        e => panic!("expected Singular, got {e}"),
    }
    // The suggested ridge makes it usable.
    let mk = Mnk::new(
        BaseKernel::Analytic(relu()),
        Schedule::infinite().with_ridge(1e-6, gbml_testbed::mnk::RidgeMode::InverseOnly),
    );
    assert!(mk.phi(&set).unwrap().iter().all(|v| v.is_finite()));
    // Negative inner rate.
    let mk = Mnk::new(BaseKernel::Analytic(relu()), Schedule::steps(-0.1, 3));
    assert!(matches!(
        mk.phi(&set).unwrap_err(),
        Error::InvalidParameter { .. }
    ));
}

#[test]
fn stacked_task_set_arrays() {
    let shape = TaskShape {
        support: 2,
        query: 1,
    };
    let x = Array2::<f64>::zeros((7, 2));
    let y = Array2::<f64>::zeros((7, 1));
    let e = task_set(x.view(), y.view(), Layout::PerTask, shape, "x").unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("multiple of"),
        "{e}"
    );
    let x = Array2::<f64>::zeros((6, 2));
    let e = task_set(x.view(), y.view(), Layout::PerTask, shape, "x").unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let e = task_set(
        Array2::<f64>::zeros((0, 2)).view(),
        Array2::<f64>::zeros((0, 1)).view(),
        Layout::QueriesFirst,
        shape,
        "x",
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

#[test]
fn compare_engine() {
    let c = cases()
        .into_iter()
        .find(|c| c.manifest.quantity == Quantity::Ntk)
        .unwrap();
    let tols = ToleranceTable::defaults();
    // Candidate with a NaN: a mismatch (exit 1) at that entry, never a pass.
    let mut cand = reference(&c.manifest, &c.inputs).unwrap();
    cand[[1, 2]] = f64::NAN;
    let rep = compare_values(&c.manifest, &c.inputs, &cand, &tols, "t").unwrap();
    assert_eq!(rep.verdict, Verdict::Mismatch);
    let s = rep.stats.unwrap();
    assert_eq!(
        (s.non_finite, s.min_lre, s.worst_index.clone()),
        (1, 0.0, vec![1, 2])
    );
    // Wrong shape (not a transpose): unusable input.
    let wrong = ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 3, 1]));
    let e = compare_values(&c.manifest, &c.inputs, &wrong, &tols, "t").unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.exit_code() == 2,
        "{e}"
    );
    // Non-finite input in the manifest's inputs.
    let mut inputs = c.inputs.clone();
    inputs.get_mut("x1").unwrap()[[0, 0]] = f64::NEG_INFINITY;
    assert!(matches!(
        reference(&c.manifest, &inputs).unwrap_err(),
        Error::NonFinite { .. }
    ));
    // Non-finite reference array in the bare engine.
    let r = ndarray::arr1(&[1.0, f64::NAN]).into_dyn();
    assert!(matches!(
        compare_arrays(r.view(), r.view(), 0.0).unwrap_err(),
        Error::NonFinite { .. }
    ));
    // A task-set quantity without its conventions: Parse naming the field, exit 2.
    let mut m = c.manifest.clone();
    m.quantity = Quantity::MetaGradient;
    let e = reference(&m, &c.inputs).unwrap_err();
    assert!(
        e.exit_code() == 2 && e.to_string().contains("conventions.layout"),
        "{e}"
    );
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("gbml-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn files() {
    let dir = tmpdir("files");
    // Missing file: Io (exit 4).
    let e = arrays::read(&dir.join("nope.npy")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.exit_code() == 4, "{e}");
    // Not an .npy file / truncated / header longer than the file: Parse (exit 2).
    for (name, bytes) in [
        ("text.npy", b"hello world, not numpy".to_vec()),
        ("trunc.npy", b"\x93NUMPY\x01\x00".to_vec()),
        (
            "hdr.npy",
            b"\x93NUMPY\x03\x00v\n\x85\xd8\x9bz\"\x00(g=b(\nhaUM".to_vec(),
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = arrays::read(&p).unwrap_err();
        assert!(
            matches!(e, Error::Parse { .. }) && e.exit_code() == 2,
            "{name}: {e}"
        );
        assert!(e.to_string().contains(name), "names the file: {e}");
    }
    // Data shorter than the header's shape.
    let p = dir.join("short.npy");
    arrays::write(&p, &Array2::<f64>::ones((4, 4))).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    b.truncate(b.len() - 8);
    std::fs::write(&p, b).unwrap();
    assert!(matches!(arrays::read(&p).unwrap_err(), Error::Parse { .. }));
    // Manifest: not JSON, missing field.
    let e = Manifest::parse_str("{", "m.json").unwrap_err();
    assert!(matches!(e, Error::Parse { .. }), "{e}");
}

fn gbml(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn cli_exit_codes() {
    let dir = tmpdir("cli");
    let d = dir.to_str().unwrap();
    // Nothing there: I/O error 4.
    let (code, text) = gbml(&["compare", "run", &format!("{d}/missing.json")]);
    assert_eq!(code, 4, "{text}");
    // Empty directory: no manifest, unusable input 2.
    let (code, text) = gbml(&["compare", "run", d]);
    assert_eq!(code, 2, "{text}");
    // Usage errors (clap): 2.
    assert_eq!(gbml(&["compare"]).0, 2);
    assert_eq!(gbml(&["compare", "run"]).0, 2);
    // A pack case with a NaN candidate: mismatch 1; with a malformed output file: 2.
    let pack = dir.join("pack");
    assert_eq!(gbml(&["compare", "export", pack.to_str().unwrap()]).0, 0);
    let case = pack.join("easy-relu_d2-nngp");
    let m = Manifest::load(&case.join("manifest.json")).unwrap();
    let mut r = arrays::read(&case.join(&m.output)).unwrap();
    r[[0, 0]] = f64::NAN;
    arrays::write(&case.join(&m.output), &r).unwrap();
    let mp = case.join("manifest.json");
    let (code, text) = gbml(&["compare", "run", mp.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("non-finite"), "{text}");
    std::fs::write(case.join(&m.output), b"garbage").unwrap();
    let (code, text) = gbml(&["compare", "run", mp.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    // Singular support kernel in a candidate's task set: numerical failure of the reference, 3,
    // with the smallest eigenvalue and a suggested ridge.
    let case = pack.join("ill_conditioned-erf_d2_flow_ridge-mnk_gram");
    let mut m = Manifest::load(&case.join("manifest.json")).unwrap();
    m.conventions.inner = Some(gbml_testbed::io::manifest::Loop::Infinite {
        ridge: 0.0,
        ridge_mode: gbml_testbed::io::manifest::RidgeMode::InverseOnly,
    });
    let x = arrays::read(&case.join("x.npy")).unwrap();
    let mut x = x.into_dimensionality::<ndarray::Ix2>().unwrap();
    // queries-first layout, 4 tasks × (2 queries): supports start at row 8; duplicate a support.
    let dup = x.row(8).to_owned();
    x.row_mut(9).assign(&dup);
    arrays::write(&case.join("x_dup.npy"), &x).unwrap();
    m.inputs.insert("x".into(), "x_dup.npy".into());
    let mp = case.join("singular.json");
    m.save(&mp).unwrap();
    let (code, text) = gbml(&["compare", "run", mp.to_str().unwrap()]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("smallest eigenvalue") && text.contains("ridge"),
        "{text}"
    );
}

#[test]
fn divergent_training_reports_the_critical_rate() {
    use gbml_testbed::maml::{train, MamlConfig, TrainConfig};
    use gbml_testbed::mnk::Task;
    use gbml_testbed::net::Mlp;
    let arch = Arch::new(1, Activation::Relu).with_width(16);
    let mlp = Mlp::new(&arch, 2, 1).unwrap();
    let theta = mlp.init(3);
    let tasks: Vec<Task> = (0..3)
        .map(|i| {
            let a = i as f64 * 0.3;
            Task::new(
                array![[1.0, a], [a, -1.0]],
                array![[a], [1.0]],
                array![[0.5, a], [-a, 0.2]],
                array![[0.3], [a]],
            )
            .unwrap()
        })
        .collect();
    let maml = MamlConfig::new(0.05, 1);
    let cfg = TrainConfig::new(1e3, 200).with_mnk_every(Some(1000));
    match train(&mlp, theta.view(), &tasks, &maml, &cfg, &mut |_, _| {}) {
        Err(
            e @ Error::Diverged {
                rate,
                critical_rate,
                ..
            },
        ) => {
            assert!(
                critical_rate.is_finite() && critical_rate > 0.0 && rate > critical_rate,
                "{e}"
            );
            assert!(e.to_string().contains("critical rate"), "{e}");
            assert_eq!(e.exit_code(), 3);
        }
        other => panic!(
            "expected divergence, got {:?}",
            other.map(|r| r.records.len())
        ),
    }
    // A negative rate is invalid input, not a divergence.
    let e = train(
        &mlp,
        theta.view(),
        &tasks,
        &maml,
        &TrainConfig::new(-0.1, 5),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
}

/// Finite MAML runs gradient steps: an inner or outer schedule with flow time, infinite time or
/// a ridge (valid for the infinite-width MNK, which shares the `Schedule` type) is a typed error
/// naming the schedule, never a silent λ = NaN; the same schedules as `Time::Steps` train.
#[test]
fn maml_rejects_schedules_it_cannot_run() {
    use gbml_testbed::maml::{train, MamlConfig, TrainConfig};
    use gbml_testbed::mnk::RidgeMode;
    use gbml_testbed::net::Mlp;
    let mlp = Mlp::new(&Arch::new(1, Activation::Relu).with_width(8), 2, 1).unwrap();
    let theta = mlp.init(5);
    let tasks = vec![task(array![[1.0, 0.5], [0.2, -1.0]], array![[0.5, 0.1]])];
    let steps = Schedule::steps(0.05, 1);
    let bad = [
        (Schedule::flow(0.05), "inner"),
        (Schedule::infinite(), "inner"),
        (steps.with_ridge(1e-3, RidgeMode::Both), "inner ridge"),
    ];
    for (s, name) in bad {
        let e = train(
            &mlp,
            theta.view(),
            &tasks,
            &MamlConfig::from_schedule(s),
            &TrainConfig::new(0.01, 2),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidParameter { name: n, .. } if n == name),
            "{e}"
        );
        let outer_name = name.replace("inner", "outer");
        let e = train(
            &mlp,
            theta.view(),
            &tasks,
            &MamlConfig::from_schedule(steps),
            &TrainConfig::from_schedule(s),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidParameter { name: n, .. } if *n == outer_name),
            "{e}"
        );
    }
    let ok = train(
        &mlp,
        theta.view(),
        &tasks,
        &MamlConfig::from_schedule(steps),
        &TrainConfig::from_schedule(Schedule::steps(0.01, 2)),
        &mut |_, _| {},
    );
    assert_eq!(ok.unwrap().records.len(), 3);
}

/// Inputs whose layer variances would overflow the pair products (|x| ~ 1e100, and 1e140 as
/// found by the fuzzer) are a typed error naming the limit, never an infinite kernel; the largest
/// accepted scale (|x| = 1e70, d = 2) still gives finite values.
#[test]
fn kernel_overflow_is_a_typed_error() {
    let arch = Arch::new(2, Activation::Relu).with_sigma_b(Some(0.1));
    for scale in [1e100, 1e140, 1e300] {
        let x = ndarray::array![[scale, 1.0], [1.0, -scale]];
        match kernel::kernels(&arch, x.view(), None) {
            Err(gbml_testbed::Error::InvalidParameter { name, reason, .. }) => {
                assert_eq!(name, "inputs");
                assert!(reason.contains("overflow"), "{reason}");
            }
            other => panic!("scale {scale:e}: expected InvalidParameter, got {other:?}"),
        }
    }
    let x = ndarray::array![[1e70, 1.0], [1.0, -1e70]];
    let k = kernel::kernels(&arch, x.view(), None).expect("1e70 is within range");
    assert!(k.ntk.iter().chain(k.nngp.iter()).all(|v| v.is_finite()));
}
