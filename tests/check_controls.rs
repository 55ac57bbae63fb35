//! Issue 11: every verdict of `gbml check` can fail. On the quick profile, with the negative
//! controls on, every claim is PASS (or labelled SANITY/INFO) and every control — a documented
//! counterfactual fed to the claim's own checker — is FAIL. A control that passed would mean
//! the claim cannot tell the real system from a broken one.
use gbml_testbed::checks::{self, Settings, Verdict};
use gbml_testbed::report;

#[test]
fn every_claim_passes_and_every_control_fails_quick() {
    let st = Settings::quick().with_controls(true);
    let reports: Vec<_> = checks::all_checkers()
        .into_iter()
        .map(|(_, f)| checks::timed(f, &st).unwrap())
        .collect();
    let table = report::table(&reports, false);
    println!("{table}");
    let mut n_controls = 0;
    for c in reports.iter().flat_map(|r| &r.claims) {
        assert!(
            matches!(c.verdict, Verdict::Pass | Verdict::Sanity | Verdict::Info),
            "{}: {:?} ({})",
            c.id,
            c.verdict,
            c.measured_text
        );
        // a PASS claim must carry at least one control (else it would be SANITY or INFO)
        if c.verdict == Verdict::Pass {
            assert!(!c.controls.is_empty(), "{} has no control", c.id);
        }
        for k in &c.controls {
            n_controls += 1;
            assert_eq!(
                k.verdict,
                Verdict::Fail,
                "control {} of {}: {} (margin {})",
                k.id,
                c.id,
                k.measured_text,
                k.margin
            );
            assert!(k.margin < 0.0 || k.margin.is_nan(), "{} {}", c.id, k.id);
        }
    }
    let sum = report::Summary::of(&reports);
    assert_eq!(sum.controls, n_controls);
    assert_eq!(sum.controls_fail, n_controls);
    assert!(table.contains("controls:"), "{table}");
}

/// The terminal table never cuts a number: every claim's measured text appears whole (the cells
/// wrap at spaces, so the words of the measured text appear in order).
#[test]
fn table_wraps_without_cutting() {
    let long = "slope -0.504712345 [-0.651812345, -0.357612345] and more words to wrap";
    let lines = report::wrap(long, 12);
    assert!(lines.len() > 1);
    assert_eq!(lines.join(" "), long);
    assert!(lines.iter().all(|l| !l.contains('…')));
}

/// The CLI: `--controls --seeds 2 --json` prints one report per fixed seed with the controls of
/// every claim; `--seeds` out of range is a usage error.
#[test]
fn gbml_check_cli_controls_and_seeds() {
    let exe = env!("CARGO_BIN_EXE_gbml");
    let out = std::process::Command::new(exe)
        .args([
            "check",
            "--quick",
            "--only",
            "linear",
            "--controls",
            "--seeds",
            "2",
            "--json",
            "--no-plots",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["seed"], checks::SEEDS[0]);
    assert_eq!(runs[1]["seed"], checks::SEEDS[1]);
    for run in runs {
        for c in run["families"][0]["claims"].as_array().unwrap() {
            assert_eq!(c["verdict"], "Pass", "{c}");
            let ks = c["controls"].as_array().unwrap();
            assert!(!ks.is_empty(), "{c}");
            assert!(ks.iter().all(|k| k["verdict"] == "Fail"), "{c}");
        }
    }
    let table = std::process::Command::new(exe)
        .args([
            "check",
            "--quick",
            "--only",
            "linear",
            "--controls",
            "--seeds",
            "2",
            "--no-plots",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("2/2 pass") && text.contains("2/2 fail"),
        "{text}"
    );
    let bad = std::process::Command::new(exe)
        .args(["check", "--quick", "--seeds", "0", "--no-plots"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
