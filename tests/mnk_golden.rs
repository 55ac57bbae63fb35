//! The Meta Neural Kernel against independent references (fixtures/mnk/gen_mnk.py): mpmath at
//! 40 digits evaluating the published per-task-pair block formula from its own closed-form ReLU
//! NTK and matrix functions (expm, inverse, power series). Asserts normwise relative error
//! ≤ tol::MNK_NORMWISE_REL and reports the entrywise LRE (and, for comparison, the accuracy of a
//! float64 NumPy evaluation in the authors' style).

use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::{BaseKernel, Mnk, RidgeMode, Schedule, Task, TaskSet, Variant};
use gbml_testbed::tol;
use ndarray::Array2;
use serde_json::Value;

fn mat(v: &Value) -> Array2<f64> {
    let rows = v.as_array().unwrap();
    let nr = rows.len();
    let nc = rows[0].as_array().unwrap().len();
    Array2::from_shape_fn((nr, nc), |(i, j)| {
        let e = &rows[i][j];
        match e {
            Value::String(s) => s.parse::<f64>().unwrap(),
            _ => e.as_f64().unwrap(),
        }
    })
}

fn tasks(v: &Value) -> TaskSet {
    TaskSet::new(
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| Task::new(mat(&t["xs"]), mat(&t["ys"]), mat(&t["xq"]), mat(&t["yq"])).unwrap())
            .collect(),
    )
    .unwrap()
}

fn schedule(v: &Value) -> Schedule {
    let ridge = v.get("ridge").and_then(|r| r.as_f64()).unwrap_or(0.0);
    let s = match v["kind"].as_str().unwrap() {
        "flow" => Schedule::flow(v["time"].as_f64().unwrap()),
        "steps" => Schedule::steps(
            v["lr"].as_f64().unwrap(),
            v["steps"].as_u64().unwrap() as usize,
        ),
        "infinite" => Schedule::infinite(),
        k => panic!("unknown schedule {k}"),
    };
    // The fixture puts the ridge in the inverse only (the authors' convention).
    s.with_ridge(ridge, RidgeMode::InverseOnly)
}

struct Acc {
    worst_norm: f64,
    worst_lre: f64,
    np_worst_norm: f64,
}

fn compare(name: &str, what: &str, ours: &Array2<f64>, refm: &Array2<f64>, acc: &mut Acc) {
    assert_eq!(ours.dim(), refm.dim(), "{name} {what}: shape");
    let (o, r) = (ours.as_slice().unwrap(), refm.as_slice().unwrap());
    let e = tol::normwise_rel_err(o, r);
    let l = tol::min_lre(o, r);
    // Entry with the smallest LRE and its size relative to the largest entry.
    let (mut wi, mut wl) = (0, f64::INFINITY);
    for (i, (&a, &b)) in o.iter().zip(r).enumerate() {
        let li = tol::lre(a, b);
        if li < wl {
            wl = li;
            wi = i;
        }
    }
    let maxr = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    println!(
        "{name:40} {what:12} normwise {e:9.2e}  min LRE {l:5.2} (entry |{:.2e}| vs max {:.2e})",
        r[wi].abs(),
        maxr
    );
    acc.worst_norm = acc.worst_norm.max(e);
    acc.worst_lre = acc.worst_lre.min(l);
    assert!(
        e <= tol::MNK_NORMWISE_REL,
        "{name} {what}: normwise relative error {e:e}"
    );
}

#[test]
fn mnk_matches_mpmath() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/mnk/mnk_golden.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut acc = Acc {
        worst_norm: 0.0,
        worst_lre: f64::INFINITY,
        np_worst_norm: 0.0,
    };
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let a = &c["arch"];
        assert_eq!(c["activation"], "relu");
        let arch = Arch::new(a["depth"].as_u64().unwrap() as usize, Activation::Relu)
            .with_sigma_w(a["sigma_w"].as_f64().unwrap())
            .with_sigma_b(a["sigma_b"].as_f64());
        let variant = match c["variant"].as_str().unwrap() {
            "maml" => Variant::Maml,
            _ => Variant::Anil,
        };
        let mnk = Mnk::new(BaseKernel::Analytic(arch), schedule(&c["inner"])).with_variant(variant);
        let train = tasks(&c["train"]);
        let test = tasks(&c["test"]);
        let r = &c["mpmath"];
        let ad = mnk.adapters(&train).unwrap();
        for (i, t) in ad.t.iter().enumerate() {
            compare(name, &format!("T_{i}"), t, &mat(&r["T"][i]), &mut acc);
        }
        let phi = mnk.phi(&train).unwrap();
        compare(name, "phi", &phi, &mat(&r["phi"]), &mut acc);
        compare(
            name,
            "cross",
            &mnk.cross(&test, &train).unwrap(),
            &mat(&r["cross"]),
            &mut acc,
        );
        compare(
            name,
            "test_block",
            &mnk.test_block(&test).unwrap(),
            &mat(&r["test_block"]),
            &mut acc,
        );
        let np_phi = mat(&c["numpy"]["phi"]);
        acc.np_worst_norm = acc.np_worst_norm.max(tol::normwise_rel_err(
            np_phi.as_slice().unwrap(),
            mat(&r["phi"]).as_slice().unwrap(),
        ));
        for (k, o) in c["outers"].as_array().unwrap().iter().enumerate() {
            let p = mnk.predict(&train, &test, &schedule(o), None).unwrap();
            let pr = &r["predictions"][k];
            if k == 0 {
                compare(name, "g_train", &p.g_train, &mat(&r["g_train"]), &mut acc);
                compare(name, "g_test", &p.g_test, &mat(&r["g_test"]), &mut acc);
                let lmin: f64 = r["phi_lambda_min"].as_str().unwrap().parse().unwrap();
                let lmax: f64 = r["phi_lambda_max"].as_str().unwrap().parse().unwrap();
                assert!(
                    (p.spectrum.lambda_max - lmax).abs() <= 1e-12 * lmax,
                    "{name}: λ_max"
                );
                assert!(
                    (p.spectrum.lambda_min - lmin).abs() <= 1e-12 * lmax,
                    "{name}: λ_min"
                );
            }
            let what = format!("pred[{}]", o["kind"].as_str().unwrap());
            compare(name, &what, &p.test, &mat(&pr["test"]), &mut acc);
            compare(
                name,
                &format!("{what}/tr"),
                &p.train,
                &mat(&pr["train"]),
                &mut acc,
            );
        }
    }
    println!(
        "worst normwise relative error {:.2e} (tolerance {:.0e}); worst entrywise LRE {:.2}; \
         NumPy float64 (authors' style) worst normwise error on Φ {:.2e}",
        acc.worst_norm,
        tol::MNK_NORMWISE_REL,
        acc.worst_lre,
        acc.np_worst_norm
    );
}
