//! The manifest JSON Schema (`docs/schema/manifest.schema.json`, draft 2020-12) validated in
//! `cargo test` with the `boon` validator (dev-dependency): every example manifest
//! (`docs/tests/valid_*.json`, the example in `docs/FORMAT.md`, each loop form of FORMAT.md) and
//! every manifest of an exported conformance pack must pass; the invalid examples must be
//! rejected by the schema, except those whose defect only the Rust parser can see (listed and
//! justified below); mutations of a valid manifest must be rejected (the test can fail).

use gbml_testbed::io::compare::find_manifests;
use gbml_testbed::io::manifest::Manifest;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMA_URL: &str = "https://gbml-testbed/schema/manifest.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Self {
        let text =
            std::fs::read_to_string(root().join("docs/schema/manifest.schema.json")).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(schema["$id"], SCHEMA_URL);
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        // the schema itself is checked against the draft 2020-12 metaschema here
        compiler.add_resource(SCHEMA_URL, schema).unwrap();
        let index = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
        Validator { schemas, index }
    }
    fn check(&self, v: &Value) -> Result<(), String> {
        self.schemas
            .validate(v, self.index)
            .map_err(|e| format!("{e:#}"))
    }
}

fn load(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn docs_tests(prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("docs/tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().unwrap().to_string_lossy().starts_with(prefix)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn valid_examples_pass_the_schema_and_the_parser() {
    let val = Validator::new();
    let files = docs_tests("valid_");
    assert!(
        files.len() >= 8,
        "expected the valid examples, found {}",
        files.len()
    );
    for f in &files {
        val.check(&load(f))
            .unwrap_or_else(|e| panic!("{} fails the schema: {e}", f.display()));
        Manifest::parse_str(
            &std::fs::read_to_string(f).unwrap(),
            &f.display().to_string(),
        )
        .unwrap_or_else(|e| panic!("{} fails the parser: {e}", f.display()));
    }
}

/// Invalid examples whose defect the schema cannot express (per-quantity rules enforced by the
/// Rust parser, `docs/FORMAT.md`): the layer-spec grammar of `layers` and the one-width rule of
/// conv `widths`, which inputs a quantity requires, that task-set quantities
/// need `conventions.inner` / `task_shape`, that `f0: "file"` needs the `f0` inputs, and numeric
/// ranges the schema leaves to the parser.
const PARSER_ONLY: &[&str] = &[
    "invalid_conv_spec__layers.json",
    "invalid_conv_widths__widths.json",
    "invalid_f0__inputs.f0.json",
    "invalid_missing_field__conventions.inner.json",
    "invalid_missing_field__conventions.task_shape.json",
    "invalid_missing_input__inputs.x1.json",
];

#[test]
fn invalid_examples_are_rejected() {
    let val = Validator::new();
    let files = docs_tests("invalid_");
    assert!(files.len() >= 10);
    let mut accepted = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        // every invalid example is rejected by the (normative) parser
        assert!(
            Manifest::parse_str(&text, &name).is_err(),
            "{name} accepted by the parser"
        );
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue; // not JSON at all (invalid_syntax)
        };
        if val.check(&v).is_ok() {
            accepted.push(name);
        }
    }
    assert_eq!(
        accepted, PARSER_ONLY,
        "invalid examples the schema accepts (only per-quantity parser rules may be missing)"
    );
}

#[test]
fn format_md_examples_pass() {
    let val = Validator::new();
    let md = std::fs::read_to_string(root().join("docs/FORMAT.md")).unwrap();
    let blocks: Vec<&str> = md
        .split("```json")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2);
    val.check(&serde_json::from_str(blocks[0]).unwrap())
        .unwrap_or_else(|e| panic!("FORMAT.md manifest example: {e}"));
    // each loop form, put into a valid task-set manifest as the inner loop
    let base = load(&root().join("docs/tests/valid_mnk_gram.json"));
    let mut n = 0;
    for line in blocks[1]
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
    {
        let lp: Value = serde_json::from_str(line).unwrap();
        let mut m = base.clone();
        m["conventions"]["inner"] = lp;
        val.check(&m)
            .unwrap_or_else(|e| panic!("FORMAT.md loop {line}: {e}"));
        n += 1;
    }
    assert_eq!(n, 3, "steps, flow, infinite");
}

/// Mutations of a valid manifest that the schema must reject (strictness: unknown and missing
/// fields, wrong constants and types).
#[test]
fn schema_rejects_mutations() {
    let val = Validator::new();
    let base = load(&root().join("docs/tests/valid_mnk_gram.json"));
    val.check(&base).unwrap();
    let mutations: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
        (
            "unknown top-level field",
            Box::new(|m| m["bogus"] = 1.into()),
        ),
        (
            "unknown convention",
            Box::new(|m| m["conventions"]["tau"] = 3.into()),
        ),
        (
            "unknown loop field",
            Box::new(|m| m["conventions"]["inner"]["eta"] = 0.1.into()),
        ),
        (
            "missing format",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("format");
            }),
        ),
        (
            "missing sigma_b",
            Box::new(|m| {
                m["conventions"].as_object_mut().unwrap().remove("sigma_b");
            }),
        ),
        ("wrong format", Box::new(|m| m["format"] = "gbml".into())),
        ("wrong version", Box::new(|m| m["version"] = 2.into())),
        (
            "unknown quantity",
            Box::new(|m| m["quantity"] = "ntk_gram".into()),
        ),
        (
            "depth not an integer",
            Box::new(|m| m["conventions"]["depth"] = "2".into()),
        ),
        (
            "unknown loop kind",
            Box::new(|m| m["conventions"]["inner"]["kind"] = "adam".into()),
        ),
    ];
    for (what, f) in mutations {
        let mut m = base.clone();
        f(&mut m);
        assert!(
            val.check(&m).is_err(),
            "schema accepts a manifest with {what}"
        );
    }
}

/// Every manifest of a conformance pack written by `gbml compare export`.
#[test]
fn exported_conformance_pack_passes() {
    let val = Validator::new();
    let dir = std::env::temp_dir().join(format!("gbml-schema-pack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(["compare", "export", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifests = find_manifests(&dir).unwrap();
    assert!(
        manifests.len() >= 5,
        "pack has {} manifests",
        manifests.len()
    );
    for m in &manifests {
        val.check(&load(m))
            .unwrap_or_else(|e| panic!("{} fails the schema: {e}", m.display()));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
