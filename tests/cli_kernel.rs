//! End-to-end tests of `gbml kernel`: the binary's output files equal the library's matrices
//! bit for bit, and bad input gives exit code 2 with a message (never a panic).

use gbml_testbed::io::npy;
use gbml_testbed::kernel::{kernels, kernels_rows, Activation, Arch, Parameterization};
use ndarray::{array, s, Array2};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbml-cli-kernel-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gbml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gbml"))
        .arg("kernel")
        .args(args)
        .output()
        .expect("run gbml")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn bits_eq(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn inputs() -> (Array2<f64>, Array2<f64>) {
    let x1 = array![
        [1.0, 0.0, 0.5],
        [0.6, 0.8, -1.0],
        [-1.0, 0.5, 2.0],
        [0.0, 0.0, 0.0]
    ];
    let x2 = array![[0.3, -0.2, 0.1], [2.0, 1.0, -3.0]];
    (x1, x2)
}

#[test]
fn cross_kernel_both_kinds_match_library() {
    let d = dir("cross");
    let (x1, x2) = inputs();
    let (f1, f2) = (d.join("x1.npy"), d.join("x2.json"));
    npy::write_matrix(&f1, &x1).unwrap();
    npy::write_matrix(&f2, &x2).unwrap();
    let out = d.join("k.npy");
    let o = gbml(&[
        "--x1",
        p(&f1),
        "--x2",
        p(&f2),
        "--kind",
        "both",
        "--depth",
        "3",
        "--activation",
        "leaky_relu(0.1)",
        "--sigma-w",
        "1.5",
        "--sigma-b",
        "0.1",
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arch = Arch::new(3, Activation::leaky_relu(0.1))
        .with_sigma_w(1.5)
        .with_sigma_b(Some(0.1));
    let k = kernels(&arch, x1.view(), Some(x2.view())).unwrap();
    assert!(bits_eq(
        &npy::read_matrix(&d.join("k.nngp.npy")).unwrap(),
        &k.nngp
    ));
    assert!(bits_eq(
        &npy::read_matrix(&d.join("k.ntk.npy")).unwrap(),
        &k.ntk
    ));
}

#[test]
fn symmetric_rows_standard_json_match_library() {
    let d = dir("rows");
    let (x1, _) = inputs();
    let f1 = d.join("x1.json");
    npy::write_matrix(&f1, &x1).unwrap();
    let out = d.join("k.json");
    let o = gbml(&[
        "--x1",
        p(&f1),
        "--kind",
        "ntk",
        "--depth",
        "2",
        "--activation",
        "erf",
        "--sigma-b",
        "0",
        "--parameterization",
        "standard",
        "--width",
        "50",
        "--rows",
        "1..3",
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arch = Arch::new(2, Activation::Erf)
        .with_sigma_b(Some(0.0))
        .with_parameterization(Parameterization::Standard)
        .with_width(50);
    let got = npy::read_matrix(&out).unwrap();
    assert!(bits_eq(
        &got,
        &kernels_rows(&arch, x1.view(), 1..3).unwrap().ntk
    ));
    let full = kernels(&arch, x1.view(), None).unwrap().ntk;
    assert!(bits_eq(&got, &full.slice(s![1..3, ..]).to_owned()));
}

#[test]
fn per_layer_files_and_stdout_json() {
    let d = dir("layers");
    let (x1, _) = inputs();
    let f1 = d.join("x1.npy");
    npy::write_matrix(&f1, &x1).unwrap();
    let out = d.join("k.npy");
    let o = gbml(&[
        "--x1",
        p(&f1),
        "--kind",
        "nngp",
        "--depth",
        "2",
        "--per-layer",
        "--out",
        p(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arch = Arch::new(2, Activation::Relu);
    let layers = gbml_testbed::kernel::kernels_per_layer(&arch, x1.view(), None).unwrap();
    for h in 1..=3 {
        let m = npy::read_matrix(&d.join(format!("k.nngp.layer{h}.npy"))).unwrap();
        assert!(bits_eq(&m, &layers[h - 1].nngp), "layer {h}");
    }
    // stdout JSON (round-trip exact).
    let o = gbml(&["--x1", p(&f1), "--kind", "ntk", "--depth", "2"]);
    assert!(o.status.success());
    let v: Vec<Vec<f64>> = serde_json::from_slice(&o.stdout).unwrap();
    let want = kernels(&arch, x1.view(), None).unwrap().ntk;
    for (i, row) in v.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            assert_eq!(x.to_bits(), want[[i, j]].to_bits());
        }
    }
}

#[test]
fn bad_input_exits_2_with_message() {
    let d = dir("bad");
    let (x1, x2) = inputs();
    let good = d.join("x1.npy");
    npy::write_matrix(&good, &x1).unwrap();
    let nan = d.join("nan.npy");
    let mut xn = x1.clone();
    xn[[2, 1]] = f64::NAN;
    npy::write_matrix(&nan, &xn).unwrap();
    let wide = d.join("wide.npy");
    npy::write_matrix(&wide, &Array2::<f64>::zeros((2, 5))).unwrap();
    let garbage = d.join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY not really").unwrap();
    let ragged = d.join("ragged.json");
    std::fs::write(&ragged, "[[1, 2, 3], [4, 5]]").unwrap();
    let _ = x2;
    let g = p(&good);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--x1", p(&nan)], "non-finite"),
        (vec!["--x1", g, "--x2", p(&wide)], "shape mismatch"),
        (vec!["--x1", p(&garbage)], "malformed"),
        (vec!["--x1", p(&ragged)], "malformed"),
        (vec!["--x1", g, "--sigma-w", "-1"], "sigma_w"),
        (vec!["--x1", g, "--sigma-b", "nan"], "sigma_b"),
        (vec!["--x1", g, "--sigma-b", "-0.5"], "sigma_b"),
        (vec!["--x1", g, "--activation", "tanhh"], "activation"),
        (vec!["--x1", g, "--activation", "abrelu(1)"], "activation"),
        (
            vec!["--x1", g, "--parameterization", "standard", "--depth", "2"],
            "width",
        ),
        (
            vec!["--x1", g, "--parameterization", "mean-field"],
            "parameterization",
        ),
        (vec!["--x1", g, "--width", "0"], "widths"),
        (vec!["--x1", g, "--rows", "3..9"], "rows"),
        (vec!["--x1", g, "--rows", "x"], "rows"),
        (vec!["--x1", g, "--kind", "gp"], "kind"),
        (vec!["--x1", g, "--depth", "100000"], "depth"),
    ];
    for (args, needle) in cases {
        let o = gbml(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: message {err:?} lacks {needle:?}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}
