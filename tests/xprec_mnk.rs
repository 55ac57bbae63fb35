//! The extended-precision T, Φ, cross kernel, predictions and complexity (`gbml_testbed::xprec`)
//! against mpmath references: `fixtures/certified/t_ill.json` (T of f64 SPD matrices with cond
//! 1e4–1e8, five schedules), `fixtures/certified/mnk_ill.json` (task sets with cond(Θ') up to
//! 3e8 and cond(Φ) up to 7e6) and every case of `fixtures/mnk/mnk_golden.json`.
//!
//! Asserted on every matrix: normwise relative error ≤ 1e-15 and ≥ 15 correct digits on every
//! entry that is not itself below 1e-15 of its row's largest entry. The f64 path is run on the
//! same ill-conditioned cases to show that the assertion can fail.
//! `t_ill.json` also covers both ridge modes for flow and steps.

use gbml_testbed::kernel::Arch;
use gbml_testbed::mnk::{self, BaseKernel, Mnk, Schedule, Task, TaskSet};
use gbml_testbed::tol::lre;
use gbml_testbed::xprec;
use ndarray::Array2;
use serde::Deserialize;
use serde_json::Value;

const NORMWISE: f64 = 1e-15;
const DIGITS: f64 = 15.0;

fn load(rel: &str) -> Value {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(rel)).expect("parse")
}

fn mat(v: &Value) -> Array2<f64> {
    let rows = v.as_array().expect("matrix");
    let n = rows.len();
    let m = rows.first().map_or(0, |r| r.as_array().unwrap().len());
    Array2::from_shape_fn((n, m), |(i, j)| match &rows[i][j] {
        Value::String(s) => s.parse().expect("number"),
        x => x.as_f64().expect("number"),
    })
}

/// (normwise relative error, min LRE over the entries at least 1e-15 of their row scale).
fn accuracy(ours: &Array2<f64>, reference: &Array2<f64>) -> (f64, f64) {
    assert_eq!(ours.dim(), reference.dim());
    let scale = reference.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let err = ours
        .iter()
        .zip(reference)
        .fold(0.0f64, |a, (c, r)| a.max((c - r).abs()));
    let mut digits = f64::INFINITY;
    for (oc, rr) in ours.rows().into_iter().zip(reference.rows()) {
        let row_scale = rr.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (&c, &r) in oc.iter().zip(rr) {
            if r.abs() >= 1e-15 * row_scale {
                digits = digits.min(lre(c, r));
            }
        }
    }
    (if scale > 0.0 { err / scale } else { err }, digits)
}

fn passes(acc: (f64, f64)) -> bool {
    acc.0 <= NORMWISE && acc.1 >= DIGITS
}

fn schedule(v: &Value) -> Schedule {
    let s = match v["kind"].as_str().unwrap() {
        "infinite" => Schedule::infinite(),
        "flow" => Schedule::flow(v["time"].as_f64().unwrap()),
        "steps" => Schedule::steps(
            v["lr"].as_f64().unwrap(),
            v["steps"].as_u64().unwrap() as usize,
        ),
        k => panic!("schedule kind {k}"),
    };
    let mode = match v.get("ridge_mode").and_then(Value::as_str) {
        Some("both") => mnk::RidgeMode::Both,
        Some("inverse_only") | None => mnk::RidgeMode::InverseOnly,
        Some(m) => panic!("ridge mode {m}"),
    };
    match v.get("ridge").and_then(Value::as_f64) {
        Some(r) => s.with_ridge(r, mode),
        None => s,
    }
}

fn tasks(v: &Value) -> TaskSet {
    let ts = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Task::new(mat(&t["xs"]), mat(&t["ys"]), mat(&t["xq"]), mat(&t["yq"])).unwrap())
        .collect();
    TaskSet::new(ts).unwrap()
}

fn arch(v: &Value) -> Arch {
    let mut a = v.clone();
    let o = a.as_object_mut().unwrap();
    o.entry("activation")
        .or_insert(serde_json::json!({"name": "relu"}));
    o.entry("parameterization")
        .or_insert(serde_json::json!("ntk"));
    o.entry("widths").or_insert(serde_json::json!([]));
    Arch::deserialize(a).expect("arch")
}

struct Report {
    worst_norm: f64,
    worst_digits: f64,
    failures: Vec<String>,
}

impl Report {
    fn new() -> Self {
        Report {
            worst_norm: 0.0,
            worst_digits: f64::INFINITY,
            failures: Vec::new(),
        }
    }
    fn add(&mut self, what: String, ours: &Array2<f64>, reference: &Array2<f64>) {
        let acc = accuracy(ours, reference);
        self.worst_norm = self.worst_norm.max(acc.0);
        self.worst_digits = self.worst_digits.min(acc.1);
        if !passes(acc) {
            self.failures.push(format!(
                "{what}: normwise {:.2e}, min {:.2} digits",
                acc.0, acc.1
            ));
        }
    }
    fn assert_ok(&self, what: &str) {
        println!(
            "{what}: worst normwise {:.2e}, min {:.2} digits",
            self.worst_norm, self.worst_digits
        );
        assert!(
            self.failures.is_empty(),
            "{what}:\n{}",
            self.failures.join("\n")
        );
    }
}

#[test]
fn extended_t_matches_mpmath_up_to_cond_1e8() {
    let fx = load("fixtures/certified/t_ill.json");
    let mut rep = Report::new();
    let mut f64_fails = 0;
    for c in fx["cases"].as_array().unwrap() {
        let k = mat(&c["kernel"]);
        let s = schedule(&c["schedule"]);
        let reference = mat(&c["T"]);
        let ours = xprec::inner_operator(k.view(), &s).expect("extended T");
        rep.add(
            format!("{} (cond {})", c["name"], c["cond"]),
            &ours,
            &reference,
        );
        let f = mnk::inner_operator(k.view(), &s).expect("f64 T");
        f64_fails += !passes(accuracy(&f, &reference)) as usize;
    }
    assert_eq!(fx["cases"].as_array().unwrap().len(), 24);
    rep.assert_ok("T, cond 1e4–1e8");
    // Counterfactual: the f64 path misses the bound on the ill-conditioned cases.
    assert!(f64_fails >= 5, "f64 path fails only {f64_fails} T cases");
}

fn check_mnk_case(c: &Value, rep: &mut Report, f64_rep: Option<&mut Report>) {
    let name = c["name"].as_str().unwrap().to_string();
    let mnk = Mnk::new(
        BaseKernel::Analytic(arch(&c["arch"])),
        schedule(&c["inner"]),
    );
    let mnk = if c["variant"].as_str() == Some("anil") {
        mnk.with_variant(mnk::Variant::Anil)
    } else {
        mnk
    };
    let (train, test) = (tasks(&c["train"]), tasks(&c["test"]));
    let refs = if c.get("mpmath").is_some() {
        &c["mpmath"]
    } else {
        c
    };
    let ts = xprec::inner_operators(&mnk, &train).expect("T");
    for (i, (t, r)) in ts.iter().zip(refs["T"].as_array().unwrap()).enumerate() {
        rep.add(format!("{name} T_{i}"), t, &mat(r));
    }
    rep.add(
        format!("{name} Φ"),
        &xprec::phi(&mnk, &train).unwrap(),
        &mat(&refs["phi"]),
    );
    rep.add(
        format!("{name} cross"),
        &xprec::cross(&mnk, &test, &train).unwrap(),
        &mat(&refs["cross"]),
    );
    if refs.get("test_block").is_some() {
        rep.add(
            format!("{name} test block"),
            &xprec::phi(&mnk, &test).unwrap(),
            &mat(&refs["test_block"]),
        );
    }
    let outers: Vec<&Value> = match c.get("outers") {
        Some(o) => o.as_array().unwrap().iter().collect(),
        None => Vec::new(),
    };
    for (o, p) in outers.iter().zip(refs["predictions"].as_array().unwrap()) {
        let pred = xprec::predict(&mnk, &train, &test, &schedule(o), None).expect("predict");
        rep.add(
            format!("{name} predictions {o}"),
            &pred.test,
            &mat(&p["test"]),
        );
        rep.add(
            format!("{name} train predictions {o}"),
            &pred.train,
            &mat(&p["train"]),
        );
    }
    if let Some(f) = f64_rep {
        f.add(
            format!("{name} Φ (f64)"),
            &mnk.phi(&train).unwrap(),
            &mat(&refs["phi"]),
        );
        for (o, p) in outers.iter().zip(refs["predictions"].as_array().unwrap()) {
            let pred = mnk
                .predict(&train, &test, &schedule(o), None)
                .expect("f64 predict");
            f.add(
                format!("{name} predictions (f64) {o}"),
                &pred.test,
                &mat(&p["test"]),
            );
        }
    }
}

#[test]
fn extended_mnk_matches_mpmath_on_ill_conditioned_task_sets() {
    let fx = load("fixtures/certified/mnk_ill.json");
    let mut rep = Report::new();
    let mut f64_rep = Report::new();
    for c in fx["cases"].as_array().unwrap() {
        check_mnk_case(c, &mut rep, Some(&mut f64_rep));
        let cx = &c["complexity"];
        let got = xprec::complexity(
            mat(&cx["phi"]).view(),
            mat(&cx["y_eff"]).view(),
            cx["n_tasks"].as_u64().unwrap() as usize,
        )
        .expect("complexity");
        let want: f64 = cx["c"].as_str().unwrap().parse().unwrap();
        rep.add(
            format!("{} complexity", c["name"]),
            &Array2::from_elem((1, 1), got),
            &Array2::from_elem((1, 1), want),
        );
    }
    rep.assert_ok("MNK, cond(Θ') ≤ 3e8, cond(Φ) ≤ 7e6");
    println!(
        "f64 path on the same cases: {} failures, worst normwise {:.2e}",
        f64_rep.failures.len(),
        f64_rep.worst_norm
    );
    assert!(
        !f64_rep.failures.is_empty(),
        "counterfactual: the f64 path should miss the bound here"
    );
}

#[test]
fn extended_mnk_matches_mpmath_on_mnk_golden() {
    let fx = load("fixtures/mnk/mnk_golden.json");
    let mut rep = Report::new();
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for c in cases {
        check_mnk_case(c, &mut rep, None);
    }
    rep.assert_ok("fixtures/mnk (14 cases)");
}

/// A singular support kernel at infinite time without ridge, a non-square kernel, a NaN and a
/// diverging step size give the f64 path's typed errors.
#[test]
fn extended_t_rejects_bad_input() {
    use gbml_testbed::Error;
    let k = ndarray::array![[1.0, 1.0], [1.0, 1.0]];
    assert!(matches!(
        xprec::inner_operator(k.view(), &Schedule::infinite()),
        Err(Error::Singular { .. })
    ));
    let r = Array2::<f64>::ones((2, 3));
    assert!(matches!(
        xprec::inner_operator(r.view(), &Schedule::flow(1.0)),
        Err(Error::Shape { .. })
    ));
    let mut n = Array2::<f64>::eye(2);
    n[[0, 1]] = f64::NAN;
    assert!(matches!(
        xprec::inner_operator(n.view(), &Schedule::flow(1.0)),
        Err(Error::NonFinite { .. })
    ));
    let e = Array2::<f64>::eye(2);
    assert!(matches!(
        xprec::inner_operator(e.view(), &Schedule::steps(3.0, 2)),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        xprec::complexity(k.view(), Array2::<f64>::ones((2, 1)).view(), 1),
        Err(Error::Singular { .. })
    ));
}
