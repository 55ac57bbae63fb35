//! `gbml advise` on the command line: the Omniglot example's JSON verdicts, typed errors (too few
//! tasks, unknown task source) exit 2.

#[path = "common/cli.rs"]
mod cli;
use cli::gbml;

fn verdict(tasks: &str) -> String {
    let (code, out, err) = gbml(&[
        "advise",
        "--tasks",
        tasks,
        "--n-train",
        "20",
        "--classes-per-label",
        "2",
        "--no-width",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON advice");
    assert_eq!(v["n_tasks"], 20);
    v["cv"]["verdict"].as_str().expect("verdict").to_string()
}

#[test]
fn omniglot_example_verdicts_differ_in_json() {
    assert_eq!(verdict("omniglot-consistent"), "helps");
    assert_ne!(verdict("omniglot"), "helps");
}

#[test]
fn too_few_tasks_and_unknown_source_exit_2() {
    let (code, _, err) = gbml(&[
        "advise",
        "--tasks",
        "omniglot",
        "--n-train",
        "4",
        "--no-width",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 5 tasks"), "{err}");
    let (code, _, err) = gbml(&["advise", "--tasks", "mnist"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("omniglot-consistent"), "{err}");
}

/// `--layers dense,relu,dense` is the 1-hidden-layer FC net: the same advice as the analytic
/// kernel (to rounding), and the width study says it is not computed for layer kernels.
#[test]
fn layers_fc_list_equals_the_analytic_kernel() {
    let run = |extra: &[&str]| {
        let mut args = vec!["advise", "--tasks", "sine", "--n-train", "12", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = gbml(&args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("JSON advice")
    };
    let analytic = run(&["--no-width"]);
    let layers = run(&["--layers", "dense,relu,dense", "--sigma-b", "1"]);
    for key in ["critical", "lambda_min", "lambda_max"] {
        let (a, b) = (
            analytic["outer"][key].as_f64().unwrap(),
            layers["outer"][key].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-9 * a.abs(), "{key}: {a} vs {b}");
    }
    let (a, b) = (
        analytic["cv"]["gain"]["mean"].as_f64().unwrap(),
        layers["cv"]["gain"]["mean"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-9 * a.abs(), "gain {a} vs {b}");
    assert!(layers["width"].is_null());
    let note = layers["width_note"].as_str().unwrap();
    assert!(note.contains("fully-connected"), "{note}");
}

/// A task with no positive affinity to any other is reported as an isolated outlier, not as a
/// family (100 GP tasks of one family, spread 0.1, seed 0: task 46 is such a task).
#[test]
fn isolated_task_is_reported_as_an_outlier() {
    let (code, out, err) = gbml(&[
        "advise",
        "--tasks",
        "gp",
        "--spread",
        "0.1",
        "--n-train",
        "100",
        "--no-width",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("group 1:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("tasks 46;") && line.contains("isolated"),
        "{line}"
    );
}
