//! `--precision f64|extended` on `gbml kernel` and `gbml mnk`: the extended path's files carry
//! ≥ 15 correct digits on ill-conditioned certified cases (`fixtures/certified`) and equal the
//! library's `xprec` values bit for bit; the default stays today's f64 path (bit-identical to
//! `kernel::kernels`); a bad precision name or an unsupported combination exits 2.

use gbml_testbed::kernel::{self, Arch};
use gbml_testbed::tol::lre;
use gbml_testbed::xprec;
use ndarray::{Array2, Array3};
use ndarray_npy::{read_npy, write_npy};
use serde_json::Value;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbml-xprec-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[path = "common/cli.rs"]
mod cli;
use cli::gbml;

fn load(rel: &str) -> Value {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mat(v: &Value) -> Array2<f64> {
    let rows = v.as_array().unwrap();
    let m = rows[0].as_array().unwrap().len();
    Array2::from_shape_fn((rows.len(), m), |(i, j)| match &rows[i][j] {
        Value::String(s) => s.parse().unwrap(),
        x => x.as_f64().unwrap(),
    })
}

fn min_lre(a: &Array2<f64>, r: &Array2<f64>) -> f64 {
    a.iter()
        .zip(r)
        .map(|(&c, &r)| lre(c, r))
        .fold(f64::INFINITY, f64::min)
}

fn bits_eq(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn kernel_precision_extended_is_faithful_and_default_is_f64() {
    let fx = load("fixtures/certified/kernels_ill.json");
    // A LeakyReLU standard-parameterization case (row norms 10 and 1e3) and a near-collinear one.
    let mut tested = 0;
    for c in fx["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        if !(name.starts_with("abrelu(0.1,1.0)_standard_L3") || name.starts_with("erf_ntk_L5")) {
            continue;
        }
        let arch: Arch = serde_json::from_value(c["arch"].clone()).unwrap();
        let x = mat(&c["x1"]);
        let xp = tmp(&format!("x{tested}.npy"));
        write_npy(&xp, &x).unwrap();
        let act = match arch.activation {
            kernel::Activation::AbRelu { a, b } => format!("abrelu({a},{b})"),
            a => a.name(),
        };
        let mut args: Vec<String> = ["kernel", "--x1", xp.to_str().unwrap(), "--kind", "ntk"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--depth".into(),
            arch.depth.to_string(),
            "--activation".into(),
            act,
        ]);
        args.extend(["--sigma-w".into(), format!("{:?}", arch.sigma_w)]);
        if let Some(b) = arch.sigma_b {
            args.extend(["--sigma-b".into(), format!("{b:?}")]);
        }
        if arch.parameterization == kernel::Parameterization::Standard {
            // The certified cases use per-layer widths; the CLI takes one width, so rebuild.
            continue;
        }
        let run = |extra: &[&str], out: &str| {
            let mut a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            a.extend(extra);
            a.extend(["--out", out]);
            let (code, o, e) = gbml(&a);
            assert_eq!(code, 0, "{o}\n{e}");
            let m: Array2<f64> = read_npy(out).unwrap();
            m
        };
        let ext = run(
            &["--precision", "extended"],
            tmp("ext.npy").to_str().unwrap(),
        );
        let def = run(&[], tmp("def.npy").to_str().unwrap());
        let reference = mat(&c["ntk"]);
        assert!(
            min_lre(&ext, &reference) >= 15.0,
            "{name}: {}",
            min_lre(&ext, &reference)
        );
        assert!(bits_eq(
            &ext,
            &xprec::kernels(&arch, x.view(), None).unwrap().ntk
        ));
        assert!(bits_eq(
            &def,
            &kernel::kernels(&arch, x.view(), None).unwrap().ntk
        ));
        tested += 1;
    }
    assert!(tested >= 2, "tested {tested} cases");
    // Standard parameterization with one width, through the CLI and the library.
    let x = mat(&fx["cases"][0]["x1"]);
    let xp = tmp("xs.npy");
    write_npy(&xp, &x).unwrap();
    let out = tmp("std.npy");
    let (code, o, e) = gbml(&[
        "kernel",
        "--x1",
        xp.to_str().unwrap(),
        "--depth",
        "3",
        "--activation",
        "leaky_relu(0.1)",
        "--parameterization",
        "standard",
        "--width",
        "64",
        "--sigma-b",
        "0.1",
        "--precision",
        "extended",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{o}\n{e}");
    let arch = Arch::new(3, kernel::Activation::leaky_relu(0.1))
        .with_sigma_b(Some(0.1))
        .with_parameterization(kernel::Parameterization::Standard)
        .with_width(64);
    let got: Array2<f64> = read_npy(&out).unwrap();
    assert!(bits_eq(
        &got,
        &xprec::kernels(&arch, x.view(), None).unwrap().ntk
    ));
}

#[test]
fn bad_precision_and_unsupported_combinations_exit_2() {
    let xp = tmp("bad.npy");
    write_npy(&xp, &Array2::<f64>::eye(2)).unwrap();
    let (code, _, e) = gbml(&[
        "kernel",
        "--x1",
        xp.to_str().unwrap(),
        "--precision",
        "quad",
    ]);
    assert_eq!(code, 2, "{e}");
    assert!(e.contains("f64 or extended"), "{e}");
    let (code, _, e) = gbml(&[
        "kernel",
        "--x1",
        xp.to_str().unwrap(),
        "--precision",
        "extended",
        "--per-layer",
        "--out",
        tmp("pl.npy").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{e}");
    let (code, _, e) = gbml(&["mnk", "--precision", "extended", "--rows", "0..2"]);
    assert_eq!(code, 2, "{e}");
}

/// Per-task `.npy` files of a fixture task list.
fn write_tasks(v: &Value, dir: &std::path::Path, prefix: &str) {
    let tasks = v.as_array().unwrap();
    for key in ["xs", "ys", "xq", "yq"] {
        let blocks: Vec<Array2<f64>> = tasks.iter().map(|t| mat(&t[key])).collect();
        let (r, c) = blocks[0].dim();
        let a = Array3::from_shape_fn((blocks.len(), r, c), |(t, i, j)| blocks[t][[i, j]]);
        write_npy(dir.join(format!("{prefix}{key}.npy")), &a).unwrap();
    }
}

#[test]
fn mnk_precision_extended_is_faithful_at_cond_phi_7e6() {
    let fx = load("fixtures/certified/mnk_ill.json");
    let c = fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "query_dup_5e-6")
        .expect("case");
    let dir = tmp("tasks");
    std::fs::create_dir_all(&dir).unwrap();
    write_tasks(&c["train"], &dir, "");
    write_tasks(&c["test"], &dir, "test_");
    let (phi_p, pred_p) = (tmp("phi.npy"), tmp("pred.npy"));
    let base = [
        "mnk",
        "--tasks",
        "npy",
        "--npy-dir",
        dir.to_str().unwrap(),
        "--layout",
        "per-task",
        "--depth",
        "2",
        "--sigma-w",
        "1.5",
        "--sigma-b",
        "0.1",
        "--inner-time",
        "inf",
        "--outer-time",
        "inf",
        "--phi-out",
        phi_p.to_str().unwrap(),
        "--pred-out",
        pred_p.to_str().unwrap(),
    ];
    let mut a = base.to_vec();
    a.extend(["--precision", "extended"]);
    let (code, o, e) = gbml(&a);
    assert_eq!(code, 0, "{o}\n{e}");
    let phi: Array2<f64> = read_npy(&phi_p).unwrap();
    let pred: Array2<f64> = read_npy(&pred_p).unwrap();
    let want_pred = mat(&c["predictions"][0]["test"]);
    assert!(min_lre(&phi, &mat(&c["phi"])) >= 15.0);
    assert!(
        min_lre(&pred, &want_pred) >= 15.0,
        "{}",
        min_lre(&pred, &want_pred)
    );
    // Counterfactual: the default f64 path misses 15 digits on these predictions.
    let (code, o, e) = gbml(&base);
    assert_eq!(code, 0, "{o}\n{e}");
    let pred64: Array2<f64> = read_npy(&pred_p).unwrap();
    assert!(min_lre(&pred64, &want_pred) < 15.0);
}
