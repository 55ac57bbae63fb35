//! Conformance packs: export a pack, compare our certified outputs against themselves (must
//! pass, through the library and through `gbml compare run`), then perturb single entries (must
//! fail at exactly that location, exit code 1), and check the CLI's exit codes for unusable input.

use gbml_testbed::io::arrays;
use gbml_testbed::io::compare::{compare_manifest, find_manifests, Verdict};
use gbml_testbed::io::manifest::Manifest;
use gbml_testbed::io::tolerance::ToleranceTable;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("gbml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn gbml(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

fn export(name: &str) -> PathBuf {
    let dir = tmp(name);
    let (code, text) = gbml(&["compare", "export", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    dir
}

#[test]
fn pack_layout_and_grades() {
    let dir = export("pack-layout");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let entries = index.as_array().unwrap();
    let manifests = find_manifests(&dir).unwrap();
    assert_eq!(entries.len(), manifests.len());
    for g in ["easy", "near_degenerate", "ill_conditioned", "deep"] {
        assert!(entries.iter().any(|e| e["grade"] == g), "grade {g} missing");
    }
    for q in [
        "nngp",
        "ntk",
        "mnk_gram",
        "mnk_cross",
        "inner_operator_t",
        "predictions",
        "complexity",
    ] {
        assert!(
            entries.iter().any(|e| e["quantity"] == q),
            "quantity {q} missing"
        );
    }
    for e in entries {
        let c = e["certified_digits"].as_f64().unwrap();
        assert!((10.0..=13.0).contains(&c), "{e}");
    }
    assert!(std::fs::read_to_string(dir.join("README.md"))
        .unwrap()
        .contains("certified_digits"));
}

#[test]
fn certified_outputs_pass_and_perturbed_ones_fail_at_the_perturbed_entry() {
    let dir = export("pack-perturb");
    // Self-comparison through the CLI: every manifest passes, exit 0.
    let (code, text) = gbml(&["compare", "run", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    // And through the library, at full precision.
    for m in find_manifests(&dir).unwrap() {
        let r = compare_manifest(&m, &ToleranceTable::defaults()).unwrap();
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.stats.unwrap().min_lre, gbml_testbed::tol::LRE_MAX);
    }
    // Perturb one entry of several cases by a relative 1e-9 (9 digits < certified 12/13).
    for (case, idx) in [
        ("easy-relu_d2-ntk", vec![2usize, 1]),
        ("deep-erf_d50-nngp", vec![5, 0]),
        ("ill_conditioned-erf_d2_flow_ridge-mnk_gram", vec![3, 6]),
        ("easy-relu_d1_steps-predictions", vec![4, 0]),
        ("easy-relu_d1_w32_maml-meta_gradient", vec![17]),
        ("easy-relu_d1_w32_maml-meta_loss_trajectory", vec![3]),
    ] {
        let cdir = dir.join(case);
        let mut m = Manifest::load(&cdir.join("manifest.json")).unwrap();
        let mut r = arrays::read(&cdir.join(&m.output)).unwrap();
        r[idx.as_slice()] *= 1.0 + 1e-9;
        arrays::write(&cdir.join("perturbed.npy"), &r).unwrap();
        m.output = "perturbed.npy".into();
        m.implementation = "perturbed".into();
        let sub = cdir.join("perturbed");
        std::fs::create_dir_all(&sub).unwrap();
        for v in m.inputs.values_mut() {
            *v = format!("../{v}");
        }
        m.output = "../perturbed.npy".into();
        let mp = sub.join("manifest.json");
        m.save(&mp).unwrap();
        let rep = compare_manifest(&mp, &ToleranceTable::defaults()).unwrap();
        assert_eq!(rep.verdict, Verdict::Mismatch, "{case}");
        let s = rep.stats.as_ref().unwrap();
        assert_eq!(s.worst_index, idx, "{case}: wrong location\n{rep}");
        assert!((s.min_lre - 9.0).abs() < 0.1, "{case}: {}", s.min_lre);
        let (code, text) = gbml(&["compare", "run", mp.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(&format!("worst entry {idx:?}")), "{text}");
    }
    // The whole directory now has mismatches: exit 1.
    assert_eq!(gbml(&["compare", "run", dir.to_str().unwrap()]).0, 1);
}

#[test]
fn tolerance_file_overrides_defaults() {
    let dir = export("pack-tol");
    let case = dir.join("easy-relu_d2-ntk");
    let m = Manifest::load(&case.join("manifest.json")).unwrap();
    let mut r = arrays::read(&case.join(&m.output)).unwrap();
    r[[0, 0]] *= 1.0 + 1e-9;
    arrays::write(&case.join("reference.npy"), &r).unwrap();
    let mp = case.join("manifest.json");
    assert_eq!(gbml(&["compare", "run", mp.to_str().unwrap()]).0, 1);
    let toml = dir.join("loose.toml");
    std::fs::write(
        &toml,
        "implementation = \"x\"\n[ntk]\nmin_digits = 8.5\nreason = \"test\"\n",
    )
    .unwrap();
    let (code, text) = gbml(&[
        "compare",
        "run",
        mp.to_str().unwrap(),
        "--tolerances",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("need 8.50"), "{text}");
    // A bad tolerance file is unusable input (exit 2), naming the bad key.
    std::fs::write(&toml, "[ntk]\nmin_digit = 8.5\n").unwrap();
    let (code, text) = gbml(&[
        "compare",
        "run",
        mp.to_str().unwrap(),
        "--tolerances",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("min_digit"), "{text}");
    std::fs::write(&toml, "[ntkk]\nmin_digits = 8.5\n").unwrap();
    let (code, text) = gbml(&[
        "compare",
        "run",
        mp.to_str().unwrap(),
        "--tolerances",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ntkk"), "{text}");
}

#[test]
fn json_output_is_machine_readable() {
    let dir = export("pack-json");
    let mp = dir.join("easy-relu_d2-nngp/manifest.json");
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(["compare", "run", "--json", mp.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["verdict"], "pass");
    assert_eq!(v[0]["quantity"], "nngp");
    assert!(v[0]["stats"]["min_lre"].as_f64().unwrap() > 15.0);
}

/// The pack's kernel references against the 50-digit mpmath evaluation of the same cases
/// (`fixtures/conformance/gen_kernel_refs.py`): the certified digits are earned on every case.
#[test]
fn certified_digits_hold_against_mpmath() {
    let fix = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
    let dir = export("pack-mpmath");
    let mut checked = 0;
    for m in find_manifests(&dir).unwrap() {
        let man = Manifest::load(&m).unwrap();
        let case = m
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let f = fix.join(format!("{case}.npy"));
        if !f.exists() {
            continue;
        }
        let ours = arrays::read(&m.parent().unwrap().join(&man.output)).unwrap();
        let refv = arrays::read(&f).unwrap();
        let s = gbml_testbed::io::compare::compare_arrays(ours.view(), refv.view(), 1e-3).unwrap();
        let cert = man.certified_digits.unwrap();
        assert!(
            s.min_lre >= cert,
            "{case}: {:.2} digits < certified {cert}",
            s.min_lre
        );
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} cases have mpmath fixtures");
}
