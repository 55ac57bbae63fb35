//! `gbml maml` end to end: a tiny sine run writing CSV and JSON, .npy tasks, and bad inputs that
//! must give the documented non-zero exit codes (2 unusable input, 3 divergence, 4 I/O).

use std::process::Command;

fn gbml() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gbml"))
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gbml_cli_maml_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tiny_sine_run_writes_trajectory() {
    let dir = tmpdir("sine");
    let csv = dir.join("traj.csv");
    let json = dir.join("traj.json");
    let out = gbml()
        .args([
            "maml",
            "--n-tasks",
            "3",
            "--m",
            "3",
            "--n",
            "4",
            "--width",
            "16",
            "--steps",
            "5",
        ])
        .args([
            "--activation",
            "tanh",
            "--inner-steps",
            "2",
            "--quiet",
            "--mnk-every",
            "5",
        ])
        .arg("--csv")
        .arg(&csv)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("meta-loss"));
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 6, "header + T+1 records");
    assert!(lines[0].starts_with("step,meta_loss,dist_from_init,rel_change_w1"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 6);
    let l0 = recs[0]["meta_loss"].as_f64().unwrap();
    let l5 = recs[5]["meta_loss"].as_f64().unwrap();
    assert!(
        l0.is_finite() && l5.is_finite() && l5 < l0,
        "loss must decrease: {l0} → {l5}"
    );
    let mnk = v["mnk"].as_array().unwrap();
    assert_eq!(mnk.len(), 2, "Φ̂ at steps 0 and 5");
    assert!(mnk[0]["lambda_min"].as_f64().unwrap() <= mnk[0]["lambda_max"].as_f64().unwrap());
    assert_eq!(mnk[0]["rel_drift_fro"].as_f64().unwrap(), 0.0);
    assert!(stdout.contains("critical rate"));
    std::fs::remove_dir_all(&dir).ok();
}

fn write_tasks(dir: &std::path::Path, poison: bool) {
    use ndarray::Array3;
    let mut xs =
        Array3::<f64>::from_shape_fn((2, 3, 2), |(i, j, c)| (i + j + c) as f64 * 0.3 - 0.5);
    let ys = Array3::<f64>::from_shape_fn((2, 3, 1), |(i, j, _)| (i as f64 - j as f64) * 0.2);
    let xq = Array3::<f64>::from_shape_fn((2, 4, 2), |(i, j, c)| (i * 2 + j + c) as f64 * 0.1);
    let yq = Array3::<f64>::from_shape_fn((2, 4, 1), |(i, j, _)| (i + j) as f64 * 0.1);
    if poison {
        xs[[1, 2, 0]] = f64::NAN;
    }
    ndarray_npy::write_npy(dir.join("xs.npy"), &xs).unwrap();
    ndarray_npy::write_npy(dir.join("ys.npy"), &ys).unwrap();
    ndarray_npy::write_npy(dir.join("xq.npy"), &xq).unwrap();
    ndarray_npy::write_npy(dir.join("yq.npy"), &yq).unwrap();
}

#[test]
fn npy_tasks_and_bad_inputs() {
    let dir = tmpdir("npy");
    write_tasks(&dir, false);
    let ok = gbml()
        .args([
            "maml",
            "--width",
            "8",
            "--steps",
            "3",
            "--quiet",
            "--npy-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&ok.stdout));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // NaN in an input file: typed error, exit 2, message names the problem
    let bad = tmpdir("npy_nan");
    write_tasks(&bad, true);
    let out = gbml()
        .args(["maml", "--width", "8", "--steps", "3", "--npy-dir"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("non-finite"), "{err}");

    // negative inner rate: exit 2
    let out = gbml()
        .args(["maml", "--steps", "2", "--inner-lr", "-0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // missing directory: exit 4
    let out = gbml()
        .args(["maml", "--npy-dir", "/nonexistent/gbml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    // malformed .npy file: exit 2
    let mal = tmpdir("npy_mal");
    write_tasks(&mal, false);
    std::fs::write(mal.join("yq.npy"), b"not an npy file").unwrap();
    let out = gbml()
        .args(["maml", "--npy-dir"])
        .arg(&mal)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // divergence (huge outer rate): exit 3
    let out = gbml()
        .args([
            "maml",
            "--n-tasks",
            "3",
            "--width",
            "16",
            "--steps",
            "200",
            "--outer-lr",
            "1e3",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for d in [dir, bad, mal] {
        std::fs::remove_dir_all(d).ok();
    }
}
