//! Diagnosis tested with independent wrong code: every candidate of
//! `fixtures/diagnosis/wrong_candidates.json` was computed by NumPy / JAX code
//! (`fixtures/diagnosis/gen_wrong.py`, not by gbml) with one convention slip, two slips at
//! once, or an unlisted bug. The guard must reject each, name the slip — and only it — and
//! name nothing for the unlisted bugs; the same script's value of the case under the stated
//! conventions (`correct`) must pass with no diagnosis. The mean-loss trajectory declared `sum` diverges under
//! the stated convention: it must get a diagnosis, not exit 3. ReLU'(0) = 0 is checked: a JAX
//! meta-gradient through exact zero pre-activations passes with `jax.nn.relu` and is rejected
//! with neural-tangents' ReLU'(0) = ½, named `relu_prime_zero_half` alone; ½ on inputs without
//! exact zeros passes.

use gbml_testbed::io::compare::{compare_values, Inputs, Verdict};
use gbml_testbed::io::manifest::Manifest;
use gbml_testbed::io::tolerance::ToleranceTable;
use ndarray::{Array1, Array2, ArrayD};
use serde_json::Value;

fn array(v: &Value) -> ArrayD<f64> {
    let a = v.as_array().unwrap();
    if a.first().is_some_and(|r| r.is_array()) {
        let nc = a[0].as_array().unwrap().len();
        Array2::from_shape_fn((a.len(), nc), |(i, j)| a[i][j].as_f64().unwrap()).into_dyn()
    } else {
        a.iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Array1<f64>>()
            .into_dyn()
    }
}

fn cases() -> Vec<Value> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/diagnosis/wrong_candidates.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn each_independent_slip_is_named_alone_and_unlisted_bugs_get_no_name() {
    let all = cases();
    assert!(all.len() >= 37, "{} cases", all.len());
    let mut problems = Vec::new();
    let mut corrects = 0;
    for c in &all {
        let name = c["name"].as_str().unwrap();
        let m = Manifest::parse_str(&c["manifest"].to_string(), name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let inputs: Inputs = c["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), array(v)))
            .collect();
        let cand = array(&c["candidate"]);
        let rep = compare_values(&m, &inputs, &cand, &ToleranceTable::defaults(), name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(right) = c.get("correct") {
            // The script's value of the same case under the stated conventions must pass.
            let ok = compare_values(
                &m,
                &inputs,
                &array(right),
                &ToleranceTable::defaults(),
                name,
            )
            .unwrap_or_else(|e| panic!("{name} (correct): {e}"));
            if ok.verdict != Verdict::Pass || !ok.diagnoses.is_empty() {
                problems.push(format!("{name}: the stated convention's value fails\n{ok}"));
            }
            corrects += 1;
        }
        let names: Vec<&str> = rep.diagnoses.iter().map(|d| d.name.as_str()).collect();
        if c["expect"] == "pass" {
            // A correct candidate by independent code (e.g. ReLU'(0) = 0 at exact zeros).
            if rep.verdict != Verdict::Pass || !rep.diagnoses.is_empty() {
                problems.push(format!("{name}: expected a pass\n{rep}"));
            }
            continue;
        }
        let expect: Vec<&str> = c["expect"].as_str().into_iter().collect();
        let text = format!("{rep}");
        assert!(!text.contains("NaN"), "{name}: {text}");
        if name.contains("trajectory_mean_loss_declared_sum") {
            // Our reference under the stated `sum` diverges: a diagnosis instead of exit 3.
            let e = rep.reference_error.as_deref().unwrap_or_default();
            assert!(e.contains("diverged"), "{name}: {text}");
            println!("{text}");
        }
        if rep.verdict != Verdict::Mismatch || names != expect {
            problems.push(format!(
                "{name}: expected {expect:?}, got {names:?}\n{text}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every case carries its stated-convention value except the three ReLU'(0) cases (the ½
    // one's stated value is the `relu_prime_zero_is_0` case) and the diverging trajectory.
    assert!(
        corrects >= 33,
        "{corrects} correct-convention values checked"
    );
}

#[test]
fn cli_diagnoses_a_diverging_trajectory_with_exit_1() {
    // The same mean-loss trajectory declared `sum`, as files through `gbml compare run`.
    let c = cases()
        .into_iter()
        .find(|c| c["name"] == "trajectory_mean_loss_declared_sum")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gbml-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (role, v) in c["inputs"].as_object().unwrap() {
        gbml_testbed::io::arrays::write(&dir.join(format!("{role}.npy")), &array(v)).unwrap();
    }
    gbml_testbed::io::arrays::write(&dir.join("candidate.npy"), &array(&c["candidate"])).unwrap();
    std::fs::write(dir.join("manifest.json"), c["manifest"].to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args([
            "compare",
            "run",
            dir.join("manifest.json").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("`mean_loss_instead_of_sum`"), "{text}");
    assert!(text.contains("training diverged"), "{text}");
    assert!(!text.contains("NaN"), "{text}");
}
