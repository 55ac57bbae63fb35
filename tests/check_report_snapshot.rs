//! Snapshot of the structure of the `gbml check --quick` report: every family, claim id, claim
//! text, acceptance criterion and verdict (measured numbers are left out, so the snapshot changes
//! only when a claim is added/renamed or a verdict flips). Review changes with `cargo insta review`.
use gbml_testbed::checks::{self, Settings, Verdict};
use gbml_testbed::report;

#[test]
fn check_report_snapshot_quick() {
    let st = Settings::quick();
    let reports: Vec<_> = checks::all_checkers()
        .into_iter()
        .map(|(_, f)| checks::timed(f, &st).unwrap())
        .collect();
    // the table and JSON render without losing claims
    let table = report::table(&reports, true);
    let json = report::to_json(&reports).unwrap();
    for r in &reports {
        for c in &r.claims {
            assert!(table.contains(&c.id) && json.contains(&c.id), "{}", c.id);
        }
        for f in &r.figures {
            let svg = report::svg::render(f);
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
    }
    assert!(
        reports.iter().all(|r| r.verdict != Verdict::Fail),
        "{table}"
    );
    insta::assert_json_snapshot!("check_quick_structure", report::snapshot_view(&reports));
}

/// The CLI: `--json` is machine-readable, exit 0 when nothing fails, 2 for an unknown family.
#[test]
fn gbml_check_cli_json_and_exit_codes() {
    let exe = env!("CARGO_BIN_EXE_gbml");
    let out = std::process::Command::new(exe)
        .args([
            "check",
            "--quick",
            "--only",
            "linear",
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
    let claims = v[0]["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 6);
    assert!(claims.iter().all(|c| c["verdict"] == "Pass"));
    let bad = std::process::Command::new(exe)
        .args(["check", "--quick", "--only", "no-such-family", "--no-plots"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
