//! One vocabulary for the CLI flags (src/bin/gbml/vocab.rs, issue #14 item 2): the canonical
//! spellings `--parameterization`, `--outer-steps`, `--sigma-b none` give exactly the output of
//! the old spellings `--param`, `--steps`, `--no-bias` (kept as hidden aliases), the old ones are
//! not advertised in `--help`, and bad values are refused with exit code 2.

use std::process::Command;

fn gbml(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const MAML: &[&str] = &[
    "maml",
    "--n-tasks",
    "2",
    "--m",
    "3",
    "--n",
    "3",
    "--width",
    "8",
    "--quiet",
    "--seed",
    "3",
];

fn maml(extra: &[&str]) -> String {
    let args: Vec<&str> = MAML.iter().chain(extra).copied().collect();
    let (code, out, err) = gbml(&args);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    out
}

#[test]
fn maml_new_and_old_spellings_agree() {
    let new = maml(&[
        "--outer-steps",
        "3",
        "--parameterization",
        "standard",
        "--sigma-b",
        "none",
    ]);
    let old = maml(&["--steps", "3", "--param", "standard", "--no-bias"]);
    assert_eq!(new, old);
    // The comparison can fail: a bias changes the trajectory.
    let biased = maml(&[
        "--outer-steps",
        "3",
        "--parameterization",
        "standard",
        "--sigma-b",
        "0.5",
    ]);
    assert_ne!(new, biased);
    assert_eq!(
        maml(&["--sigma-b", "1", "--outer-steps", "2"]),
        maml(&["--steps", "2"])
    );
}

#[test]
fn mnk_parameterization_spellings_agree() {
    let base = [
        "mnk",
        "--n-train",
        "3",
        "--n-test",
        "2",
        "--width",
        "64",
        "--sigma-b",
        "0.2",
    ];
    let run = |flag: &str, value: &str| {
        let args: Vec<&str> = base.iter().copied().chain([flag, value]).collect();
        let (code, out, err) = gbml(&args);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    assert_eq!(
        run("--parameterization", "standard"),
        run("--param", "standard")
    );
    assert_ne!(
        run("--parameterization", "standard"),
        run("--parameterization", "ntk")
    );
}

#[test]
fn old_spellings_are_hidden_and_bad_values_refused() {
    for cmd in ["maml", "mnk"] {
        let (_, help, _) = gbml(&[cmd, "--help"]);
        assert!(help.contains("--parameterization"), "{cmd}");
        assert!(!help.contains("--param "), "{cmd}: {help}");
    }
    let (_, help, _) = gbml(&["maml", "--help"]);
    assert!(
        help.contains("--outer-steps") && !help.contains("--steps ") && !help.contains("--no-bias")
    );

    let (code, _, err) = gbml(&["mnk", "--parameterization", "mup"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid parameter `parameterization` = mup: expected ntk or standard"),
        "{err}"
    );
    let (code, _, err) = gbml(&["maml", "--sigma-b", "lots"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected a number or `none`"), "{err}");
}
