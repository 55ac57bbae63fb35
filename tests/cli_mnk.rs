//! `gbml mnk` through the binary: outputs agree with the library, row blocks are exact slices,
//! .npy task input in both layouts, and bad input gives the documented non-zero exit codes.

use gbml_testbed::io::arrays;
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::data::{sine_tasks, SineSpec};
use gbml_testbed::mnk::layout::{to_per_task, to_queries_first};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule};
use ndarray::{Array2, Ix2};
use std::path::PathBuf;

#[path = "common/cli.rs"]
mod cli;

/// Run `gbml mnk ARGS…`: (exit code, stdout, stderr).
fn gbml(args: &[&str]) -> (i32, String, String) {
    cli::gbml(&[&["mnk"], args].concat())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbml-cli-mnk-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn read2(p: &PathBuf) -> Array2<f64> {
    arrays::read(p)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap()
}

const SINE: &[&str] = &[
    "--tasks",
    "sine",
    "--n-train",
    "6",
    "--n-test",
    "3",
    "--m",
    "4",
    "--n",
    "5",
    "--seed",
    "3",
    "--depth",
    "2",
    "--sigma-b",
    "0.5",
    "--inner-time",
    "0.5",
    "--outer-time",
    "2",
];

#[test]
fn sine_run_matches_library_and_rows_are_exact() {
    let phi_p = tmp("phi.npy");
    let pred_p = tmp("pred.npy");
    let json_p = tmp("out.json");
    let mut a: Vec<&str> = SINE.to_vec();
    let (ps, pp, js) = (
        phi_p.to_str().unwrap(),
        pred_p.to_str().unwrap(),
        json_p.to_str().unwrap(),
    );
    a.extend(["--phi-out", ps, "--pred-out", pp, "--json", js]);
    let (code, out, err) = gbml(&a);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("λ_min") && out.contains("η*"), "{out}");
    // The library on the same tasks.
    let (train, test, mnk) = sine_sets();
    let phi = mnk.phi(&train).unwrap();
    assert_eq!(read2(&phi_p), phi);
    let p = mnk
        .predict(&train, &test, &Schedule::flow(2.0), None)
        .unwrap();
    assert_eq!(read2(&pred_p), p.test);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_p).unwrap()).unwrap();
    let lmin = j["spectrum"]["lambda_min"].as_f64().unwrap();
    assert!((lmin - p.spectrum.lambda_min).abs() <= 1e-12 * p.spectrum.lambda_max);
    // Row block: exact slice.
    let rows_p = tmp("rows.npy");
    let mut a: Vec<&str> = SINE.to_vec();
    a.extend(["--rows", "7..19", "--phi-out", rows_p.to_str().unwrap()]);
    let (code, _, err) = gbml(&a);
    assert_eq!(code, 0, "{err}");
    let r = read2(&rows_p);
    assert_eq!(r, phi.slice(ndarray::s![7..19, ..]).to_owned());
}

#[test]
fn npy_tasks_in_both_layouts() {
    let spec = |tasks| SineSpec {
        tasks,
        m: 3,
        n: 4,
        noise: 0.0,
    };
    let train = sine_tasks(spec(5), 8).unwrap();
    let test = sine_tasks(spec(2), 9).unwrap();
    let dir = tmp("npy");
    std::fs::create_dir_all(&dir).unwrap();
    let pt = to_per_task(&train).unwrap();
    let tt = to_per_task(&test).unwrap();
    for (pre, a) in [("", &pt), ("test_", &tt)] {
        arrays::write(&dir.join(format!("{pre}xs.npy")), &a.xs).unwrap();
        arrays::write(&dir.join(format!("{pre}ys.npy")), &a.ys).unwrap();
        arrays::write(&dir.join(format!("{pre}xq.npy")), &a.xq).unwrap();
        arrays::write(&dir.join(format!("{pre}yq.npy")), &a.yq).unwrap();
    }
    let (x, y) = to_queries_first(&train);
    arrays::write(&dir.join("x.npy"), &x).unwrap();
    arrays::write(&dir.join("y.npy"), &y).unwrap();
    let (x, y) = to_queries_first(&test);
    arrays::write(&dir.join("test_x.npy"), &x).unwrap();
    arrays::write(&dir.join("test_y.npy"), &y).unwrap();
    let d = dir.to_str().unwrap();
    let mut preds = vec![];
    for layout in ["per-task", "queries-first"] {
        let pp = tmp(&format!("pred-{layout}.npy"));
        let (code, _, err) = gbml(&[
            "--tasks",
            "npy",
            "--npy-dir",
            d,
            "--layout",
            layout,
            "--n-train",
            "5",
            "--n-test",
            "2",
            "--m",
            "3",
            "--n",
            "4",
            "--sigma-b",
            "1",
            "--pred-out",
            pp.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{layout}: {err}");
        preds.push(read2(&pp));
    }
    assert_eq!(preds[0], preds[1]);
    assert_eq!(preds[0].dim(), (8, 1));
}

#[test]
fn omniglot_prints_accuracy() {
    let (code, out, err) = gbml(&[
        "--tasks",
        "omniglot",
        "--n-train",
        "5",
        "--n-test",
        "5",
        "--depth",
        "1",
        "--unit-norm",
        "--inner-time",
        "inf",
        "--inner-ridge",
        "1e-4",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("test accuracy"), "{out}");
}

#[test]
fn bad_inputs_exit_nonzero() {
    // Invalid parameters: exit 2.
    for a in [
        vec!["--inner-time=-1"],
        vec!["--inner-lr", "-0.1", "--inner-steps", "3"],
        vec!["--inner-lr", "0.1"],
        vec!["--outer-time", "abc"],
        vec!["--tasks", "nope"],
        vec!["--rows", "5..2"],
        vec!["--rows", "0..100000"],
        vec!["--activation", "sigmoid"],
        vec!["--tasks", "npy"],
    ] {
        let (code, _, err) = gbml(&a);
        assert_eq!(code, 2, "{a:?}: {err}");
        assert!(err.contains("error"), "{a:?}: {err}");
    }
    // Missing file: exit 4.
    let (code, _, err) = gbml(&["--tasks", "npy", "--npy-dir", "/nonexistent-gbml-dir"]);
    assert_eq!(code, 4, "{err}");
    // Malformed .npy: exit 2.
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["xs.npy", "ys.npy", "xq.npy", "yq.npy"] {
        std::fs::write(dir.join(f), b"not an npy file").unwrap();
    }
    let (code, _, err) = gbml(&["--tasks", "npy", "--npy-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    // Singular Φ with infinite outer time and no ridge on duplicated tasks: exit 3.
    let (code, _, err) = gbml(&[
        "--tasks",
        "linear",
        "--dim",
        "1",
        "--n-train",
        "4",
        "--m",
        "2",
        "--n",
        "6",
        "--depth",
        "0",
        "--activation",
        "identity",
        "--outer-time",
        "inf",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ridge"), "{err}");
}

/// The SINE task sets, as the library builds them.
fn sine_sets() -> (gbml_testbed::mnk::TaskSet, gbml_testbed::mnk::TaskSet, Mnk) {
    let spec = |tasks| SineSpec {
        tasks,
        m: 4,
        n: 5,
        noise: 0.0,
    };
    let train = sine_tasks(spec(6), 3).unwrap();
    let test = sine_tasks(spec(3), 4).unwrap();
    let arch = Arch::new(2, Activation::Relu).with_sigma_b(Some(0.5));
    (
        train,
        test,
        Mnk::new(BaseKernel::Analytic(arch), Schedule::flow(0.5)),
    )
}

/// f0 from .npy files (stacked 2-d and per-task 3-d) gives the library's predictions with the
/// same f0, bit for bit; it changes the predictions; bad f0 input exits 2 with a message.
#[test]
fn f0_input_matches_library() {
    use gbml_testbed::mnk::F0;
    use rand::{Rng, SeedableRng};
    let (train, test, mnk) = sine_sets();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut rand2 = |r: usize| Array2::from_shape_fn((r, 1), |_| rng.gen_range(-0.5..0.5));
    let f0_train = F0 {
        query: rand2(train.n_query()),
        support: rand2(train.n_support()),
    };
    let f0_test = F0 {
        query: rand2(test.n_query()),
        support: rand2(test.n_support()),
    };
    let paths: Vec<PathBuf> = ["f0_tq", "f0_ts", "f0_eq", "f0_es"]
        .iter()
        .map(|n| tmp(&format!("{n}.npy")))
        .collect();
    arrays::write(&paths[0], &f0_train.query).unwrap();
    // Training supports per task (6 tasks × 4 supports × 1): flattened in task order.
    let ts3 = f0_train
        .support
        .clone()
        .into_shape_with_order((6, 4, 1))
        .unwrap();
    arrays::write(&paths[1], &ts3).unwrap();
    arrays::write(&paths[2], &f0_test.query).unwrap();
    arrays::write(&paths[3], &f0_test.support).unwrap();
    let ps: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let pred_p = tmp("pred_f0.npy");
    let mut a: Vec<&str> = SINE.to_vec();
    a.extend([
        "--f0-train-query",
        ps[0],
        "--f0-train-support",
        ps[1],
        "--f0-test-query",
        ps[2],
        "--f0-test-support",
        ps[3],
        "--pred-out",
        pred_p.to_str().unwrap(),
    ]);
    let (code, out, err) = gbml(&a);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let want = mnk
        .predict(
            &train,
            &test,
            &Schedule::flow(2.0),
            Some((&f0_train, &f0_test)),
        )
        .unwrap();
    let got = read2(&pred_p);
    assert_eq!(got, want.test);
    let zero = mnk
        .predict(&train, &test, &Schedule::flow(2.0), None)
        .unwrap();
    let diff = got
        .iter()
        .zip(&zero.test)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff > 1e-3, "f0 had no effect ({diff:e})");
    // Wrong shape (k = 2 instead of 1): typed shape error, exit 2.
    let bad = tmp("f0_bad.npy");
    arrays::write(&bad, &Array2::<f64>::zeros((train.n_query(), 2))).unwrap();
    let mut b = a.clone();
    b[SINE.len() + 1] = bad.to_str().unwrap();
    let (code, _, err) = gbml(&b);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("f0 on"), "{err}");
    // Only some of the four files: exit 2.
    let mut c: Vec<&str> = SINE.to_vec();
    c.extend(["--f0-train-query", ps[0]]);
    let (code, _, err) = gbml(&c);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("f0"), "{err}");
    // Not a 2-d or 3-d array: exit 2.
    let one = tmp("f0_1d.npy");
    arrays::write(&one, &ndarray::Array1::<f64>::zeros(3)).unwrap();
    let mut d = a.clone();
    d[SINE.len() + 3] = one.to_str().unwrap();
    let (code, _, err) = gbml(&d);
    assert_eq!(code, 2, "{err}");
}

/// `--ntk-out` writes the outer NTK Gram over the training points [X; X'] (the library's
/// matrix, bit for bit); with `--rows` its row shards stitch back to it bit for bit.
#[test]
fn ntk_gram_rows_stitch_exactly() {
    let (train, _, mnk) = sine_sets();
    let p = train.n_query() + train.n_support();
    let full_p = tmp("ntk_full.npy");
    let mut a: Vec<&str> = SINE.to_vec();
    a.extend(["--ntk-out", full_p.to_str().unwrap()]);
    let (code, _, err) = gbml(&a);
    assert_eq!(code, 0, "{err}");
    let full = read2(&full_p);
    let lib = mnk.ntk_gram(&train).unwrap();
    assert_eq!(full.dim(), (p, p));
    assert!(full
        .iter()
        .zip(&lib)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    let cuts = [0, 7, 31, 32, p];
    let mut stitched = Array2::<f64>::zeros((0, p));
    for w in cuts.windows(2) {
        let sp = tmp(&format!("ntk_{}_{}.npy", w[0], w[1]));
        let r = format!("{}..{}", w[0], w[1]);
        let mut a: Vec<&str> = SINE.to_vec();
        a.extend(["--rows", &r, "--ntk-out", sp.to_str().unwrap()]);
        let (code, out, err) = gbml(&a);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("NTK Gram rows"), "{out}");
        stitched
            .append(ndarray::Axis(0), read2(&sp).view())
            .unwrap();
    }
    assert!(stitched
        .iter()
        .zip(&full)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    // Rows beyond Σn + Σm: exit 2.
    let r = format!("0..{}", p + 1);
    let sp = tmp("ntk_bad.npy");
    let mut a: Vec<&str> = SINE.to_vec();
    a.extend(["--rows", &r, "--ntk-out", sp.to_str().unwrap()]);
    assert_eq!(gbml(&a).0, 2);
}
