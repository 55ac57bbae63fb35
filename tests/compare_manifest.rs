//! The manifest format: every example in docs/tests is checked against the Rust parser
//! (valid_* parse; invalid_<what>__<field>.json fail with an error that names <field>), the JSON
//! Schema's property lists match the Rust structs, and the CLI reports unusable manifests with
//! exit code 2.

use gbml_testbed::io::manifest::{
    Conventions, Layout, Loop, LossNorm, Manifest, RidgeMode, TaskShape, F0,
};
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::Error;
use std::collections::BTreeSet;
use std::path::Path;

fn docs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

#[test]
fn examples_in_docs_tests_against_the_parser() {
    let mut n_valid = 0;
    let mut n_invalid = 0;
    for e in std::fs::read_dir(docs().join("tests")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        let res = Manifest::parse_str(&text, &p.display().to_string());
        if name.starts_with("valid_") {
            let m = res.unwrap_or_else(|e| panic!("{name}: {e}"));
            // Round trip.
            assert_eq!(Manifest::parse_str(&m.to_json(), "rt").unwrap(), m);
            n_valid += 1;
        } else if let Some(rest) = name.strip_prefix("invalid_") {
            let field = rest
                .split("__")
                .nth(1)
                .expect("invalid_<what>__<field>.json");
            let err = res.expect_err(&name);
            assert_eq!(err.exit_code(), 2, "{name}: {err}");
            assert!(
                matches!(
                    err,
                    Error::Parse { .. } | Error::InvalidParameter { .. } | Error::Empty(_)
                ),
                "{name}: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(field),
                "{name}: message does not name `{field}`: {msg}"
            );
            n_invalid += 1;
        }
    }
    assert!(
        n_valid >= 8 && n_invalid >= 15,
        "{n_valid} valid, {n_invalid} invalid examples"
    );
}

fn schema() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(docs().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap()
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn schema_properties_match_the_rust_structs() {
    let s = schema();
    let arch = Arch::new(2, Activation::Relu).with_width(8);
    let mut c = Conventions::from_arch(&arch);
    c.loss = Some(LossNorm::Sum);
    c.inner = Some(Loop::Flow {
        time: 1.0,
        ridge: 0.0,
        ridge_mode: RidgeMode::InverseOnly,
    });
    c.outer = Some(Loop::Infinite {
        ridge: 0.0,
        ridge_mode: RidgeMode::InverseOnly,
    });
    c.layout = Some(Layout::PerTask);
    c.f0 = Some(F0::Zero);
    c.task_shape = Some(TaskShape {
        support: 1,
        query: 1,
    });
    c.variant = Some(gbml_testbed::mnk::Variant::Maml);
    c.order = Some(gbml_testbed::maml::Order::Second);
    let mut m = Manifest::new(
        "x",
        gbml_testbed::io::manifest::Quantity::Ntk,
        Default::default(),
        "o.npy",
        c,
    );
    m.certified_digits = Some(13.0);
    m.notes = Some("n".into());
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(keys(&v), keys(&s["properties"]));
    // A fully-connected manifest has every convention but the conv ones (`layers`,
    // `normalization`, which replace `depth` and `activation`).
    let mut conv_keys = keys(&v["conventions"]);
    conv_keys.extend(["layers".to_string(), "normalization".to_string()]);
    assert_eq!(
        conv_keys,
        keys(&s["properties"]["conventions"]["properties"])
    );
    // Required lists: exactly the fields serde requires.
    let req: BTreeSet<String> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        req,
        keys(&v)
            .into_iter()
            .filter(|k| k != "certified_digits" && k != "notes")
            .collect()
    );
    let creq: BTreeSet<String> = s["properties"]["conventions"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let expect: BTreeSet<String> = ["parameterization", "sigma_w", "sigma_b", "widths"]
        .map(String::from)
        .into();
    assert_eq!(creq, expect);
    // Either `depth` + `activation` (FC) or `layers` (conv).
    let branches: Vec<Vec<&str>> = s["properties"]["conventions"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(branches, vec![vec!["depth", "activation"], vec!["layers"]]);
    // Quantity enum.
    let qs: BTreeSet<String> = s["properties"]["quantity"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let ours: BTreeSet<String> = gbml_testbed::io::manifest::Quantity::ALL
        .iter()
        .map(|q| q.name().to_string())
        .collect();
    assert_eq!(qs, ours);
}

#[test]
fn required_nullable_fields_must_be_present() {
    let text = std::fs::read_to_string(docs().join("tests/valid_ntk.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // null is fine ...
    v["conventions"]["sigma_b"] = serde_json::Value::Null;
    Manifest::parse_str(&v.to_string(), "t").unwrap();
    // ... omission is not.
    v["conventions"].as_object_mut().unwrap().remove("sigma_b");
    let e = Manifest::parse_str(&v.to_string(), "t").unwrap_err();
    assert!(e.to_string().contains("missing field `sigma_b`"), "{e}");
}

#[test]
fn cli_unusable_manifest_exits_2_and_names_the_field() {
    let p = docs().join("tests/invalid_unknown_field__bogus.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(["compare", "run", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `bogus`"), "{err}");
}
