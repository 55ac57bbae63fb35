//! `gbml omniglot`: writes the plot and the JSON report, prints the claims; bad input exits 2.

#[path = "common/cli.rs"]
mod cli;
use cli::gbml;

#[test]
fn quick_run_writes_the_cntk_row_to_plot_and_json() {
    let dir = std::env::temp_dir().join(format!("gbml_cli_omniglot_{}", std::process::id()));
    let json = dir.join("r.json");
    let (code, out, err) = gbml(&[
        "omniglot",
        "--quick",
        "--no-maml",
        "--out",
        dir.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 1, "{code} {err}");
    assert!(
        out.contains("with label embeddings the MNK beats G [MNK (CNTK-GAP, embedding)"),
        "{out}"
    );
    // The substitution is stated in the run's own output.
    assert!(
        out.contains("1,000 GPU-hours") && out.contains("4×4"),
        "{out}"
    );
    let svg = std::fs::read_to_string(dir.join("omniglot.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..40]
    );
    assert!(
        svg.contains("MNK (CNTK-GAP, embedding)"),
        "CNTK series not in the plot"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 2);
    assert_eq!(v["kernels"][0], "CNTK-GAP");
    let cntk_claims = v["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kernel"] == "CNTK-GAP")
        .count();
    // MNK vs G and its control at C = 5 and 10 (no MAML claim without MAML).
    assert_eq!(cntk_claims, 4);
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
    for bad in [
        &["--cntk-layers", "conv:3:same,bogus,gap,dense"][..],
        &["--cntk-size", "5"],
        &[
            "--cntk-layers",
            "conv:9:valid,relu,gap,dense",
            "--cntk-size",
            "7",
        ],
    ] {
        let mut args = vec!["omniglot", "--quick", "--no-maml"];
        args.extend_from_slice(bad);
        let (code, _, err) = gbml(&args);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("layers") || err.contains("size"), "{err}");
    }
}
