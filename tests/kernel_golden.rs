//! Golden test of the analytic kernels against `fixtures/kernels/kernels.json`: 50-digit mpmath
//! values of the same recursion (independent implementation, naive closed forms at high
//! precision) and neural-tangents 0.6.5 float64 values. Regenerate with
//! `fixtures/kernels/gen_kernels.py` (never by hand).
//!
//! Asserts, on EVERY case and every layer: LRE(ours, mpmath) ≥ `tol::KERNEL_MIN_DIGITS`, and
//! `|ours − NT| ≤ |mpmath − NT| + 10^{-13}|mpmath|` (we are never further from neural-tangents
//! than neural-tangents is from the truth, up to our own error budget). The per-case table is
//! printed with `cargo test --release --test kernel_golden -- --nocapture`.

use gbml_testbed::kernel::{kernels_per_layer, Arch};
use gbml_testbed::tol::{lre, KERNEL_MIN_DIGITS};
use ndarray::Array2;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    arch: Arch,
    input_set: String,
    x1: Vec<Vec<f64>>,
    x2: Option<Vec<Vec<f64>>>,
    nngp_layers: Vec<Vec<Vec<String>>>,
    ntk_layers: Vec<Vec<Vec<String>>>,
    nt_nngp: Vec<Vec<Option<f64>>>,
    nt_ntk: Vec<Vec<Option<f64>>>,
}

fn to_array(rows: &[Vec<f64>]) -> Array2<f64> {
    let n = rows.len();
    let d = rows[0].len();
    Array2::from_shape_fn((n, d), |(i, j)| rows[i][j])
}

fn parse(m: &[Vec<String>]) -> Vec<Vec<f64>> {
    m.iter()
        .map(|r| {
            r.iter()
                .map(|s| s.parse::<f64>().expect("reference value"))
                .collect()
        })
        .collect()
}

fn load() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kernels/kernels.json");
    let text = std::fs::read_to_string(path).expect("read fixture");
    serde_json::from_str(&text).expect("parse fixture")
}

/// Smallest LRE of one case over all layers and both kernels, and of NT on the final layer.
struct CaseResult {
    name: String,
    act: String,
    min_lre: f64,
    nt_min_lre: f64,
    nt_violation: Option<String>,
    worst: String,
}

fn run_case(c: &Case) -> CaseResult {
    let x1 = to_array(&c.x1);
    let x2 = c.x2.as_ref().map(|x| to_array(x));
    let layers = kernels_per_layer(&c.arch, x1.view(), x2.as_ref().map(|x| x.view()))
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert_eq!(layers.len(), c.arch.depth + 1, "{}: layer count", c.name);
    let mut min_lre = f64::INFINITY;
    let mut worst = String::new();
    for (h, k) in layers.iter().enumerate() {
        for (kind, ours, refs) in [
            ("nngp", &k.nngp, parse(&c.nngp_layers[h])),
            ("ntk", &k.ntk, parse(&c.ntk_layers[h])),
        ] {
            for (i, row) in refs.iter().enumerate() {
                for (j, &r) in row.iter().enumerate() {
                    let v = ours[[i, j]];
                    let l = lre(v, r);
                    if l < min_lre {
                        min_lre = l;
                        worst = format!("{kind} layer {} [{i},{j}]: ours {v:e} ref {r:e}", h + 1);
                    }
                }
            }
        }
    }
    // neural-tangents (final layer only)
    let last = layers.last().unwrap();
    let mut nt_min = f64::INFINITY;
    let mut nt_violation = None;
    for (kind, ours, refs, nt) in [
        (
            "nngp",
            &last.nngp,
            parse(c.nngp_layers.last().unwrap()),
            &c.nt_nngp,
        ),
        (
            "ntk",
            &last.ntk,
            parse(c.ntk_layers.last().unwrap()),
            &c.nt_ntk,
        ),
    ] {
        for (i, row) in refs.iter().enumerate() {
            for (j, &r) in row.iter().enumerate() {
                // null: neural-tangents returned a non-finite value (counts as 0 digits).
                let Some(t) = nt[i][j] else {
                    nt_min = 0.0;
                    continue;
                };
                let v = ours[[i, j]];
                nt_min = nt_min.min(lre(t, r));
                let bound = (r - t).abs() + 1e-13 * r.abs() + f64::MIN_POSITIVE;
                if (v - t).abs() > bound && nt_violation.is_none() {
                    nt_violation = Some(format!(
                        "{kind} [{i},{j}]: |ours-NT| = {:e} > |ref-NT| + 1e-13|ref| = {bound:e}",
                        (v - t).abs()
                    ));
                }
            }
        }
    }
    CaseResult {
        name: c.name.clone(),
        act: c.arch.activation.name(),
        min_lre,
        nt_min_lre: nt_min,
        nt_violation,
        worst,
    }
}

#[test]
fn golden_kernels_vs_mpmath_and_neural_tangents() {
    let fx = load();
    assert!(
        fx.cases.len() >= 200,
        "fixture has {} cases",
        fx.cases.len()
    );
    let results: Vec<(CaseResult, &Case)> = fx.cases.iter().map(|c| (run_case(c), c)).collect();

    println!("{:<44} {:>7} {:>7}  worst entry", "case", "LRE", "NT LRE");
    for (r, _) in &results {
        println!(
            "{:<44} {:>7.2} {:>7.2}  {}",
            r.name, r.min_lre, r.nt_min_lre, r.worst
        );
    }
    // Summary per activation and per input set.
    let mut by_act: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut by_set: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (r, c) in &results {
        let e = by_act.entry(r.act.clone()).or_default();
        e.0.push(r.min_lre);
        e.1.push(r.nt_min_lre);
        let e = by_set.entry(c.input_set.clone()).or_default();
        e.0.push(r.min_lre);
        e.1.push(r.nt_min_lre);
    }
    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        (s[0], s[s.len() / 2])
    };
    println!(
        "\n{:<20} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "group", "cases", "min LRE", "med LRE", "NT min", "NT med"
    );
    for (k, (o, n)) in by_act.iter().chain(by_set.iter()) {
        let (omin, omed) = stats(o);
        let (nmin, nmed) = stats(n);
        println!(
            "{k:<20} {:>5} {omin:>9.2} {omed:>9.2} {nmin:>9.2} {nmed:>9.2}",
            o.len()
        );
    }

    let failures: Vec<String> = results
        .iter()
        .filter(|(r, _)| r.min_lre < KERNEL_MIN_DIGITS)
        .map(|(r, _)| format!("{}: LRE {:.2} ({})", r.name, r.min_lre, r.worst))
        .collect();
    assert!(
        failures.is_empty(),
        "{} cases below {KERNEL_MIN_DIGITS} digits:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let nt_fail: Vec<String> = results
        .iter()
        .filter_map(|(r, _)| r.nt_violation.as_ref().map(|v| format!("{}: {v}", r.name)))
        .collect();
    assert!(
        nt_fail.is_empty(),
        "further from NT than NT from the truth:\n{}",
        nt_fail.join("\n")
    );
}
