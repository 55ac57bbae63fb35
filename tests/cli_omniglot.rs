//! `gbml omniglot`: writes the plot and the JSON report, prints the claims; bad input exits 2.

use std::process::Command;

fn gbml(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .expect("run gbml");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn small_run_writes_plot_and_json() {
    let dir = std::env::temp_dir().join(format!("gbml_cli_omniglot_{}", std::process::id()));
    let json = dir.join("r.json");
    let (code, out, err) = gbml(&[
        "omniglot",
        "--no-maml",
        "--train-chars",
        "5,10",
        "--test-tasks",
        "20",
        "--out",
        dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 1, "{code} {err}");
    assert!(
        out.contains("with label embeddings the MNK beats G"),
        "{out}"
    );
    let svg = std::fs::read_to_string(dir.join("omniglot.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..40]
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 2);
    // Without MAML its claim is not made.
    assert!(!out.contains("beats finite MAML"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_2() {
    let (code, _, err) = gbml(&["omniglot", "--no-maml", "--train-chars", "3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("train_chars"), "{err}");
    let (code, _, err) = gbml(&["omniglot", "--omniglot", "/nonexistent/o.npy"]);
    assert_eq!(code, 4, "{err}");
}
