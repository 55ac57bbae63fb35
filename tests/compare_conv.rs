//! The compare guard on convolutional architectures (`conventions.layers`, NHWC inputs):
//! candidates taken from an independent source — the 50-digit mpmath values of
//! `fixtures/conv/conv.json` (`fixtures/conv/gen_conv.py`) rounded to f64 — pass; the same
//! candidates with one entry perturbed by a relative 1e-9 fail; bad conv conventions are typed
//! errors; the report says the reference was computed in extended precision (the double-double
//! conv kernels, `xprec::conv_kernels`); and the CLI runs a conv manifest end to end.

use gbml_testbed::io::arrays;
use gbml_testbed::io::compare::{compare_manifest, compare_values, Verdict};
use gbml_testbed::io::manifest::{Manifest, Quantity};
use gbml_testbed::io::reference::{Inputs, Precision};
use gbml_testbed::io::tolerance::ToleranceTable;
use gbml_testbed::Error;
use ndarray::{Array2, ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/conv_fixture.rs"]
mod conv_fixture;
use conv_fixture::{fixture, Case};

/// The manifest text of a fixture case (the conventions block a stax user would write).
fn manifest_json(c: &Case, q: Quantity) -> String {
    let widths = if c.parameterization == "standard" {
        format!("[{}]", c.width)
    } else {
        "null".into()
    };
    let sigma_b = c.sigma_b.map_or("null".into(), |b| format!("{b:?}"));
    format!(
        r#"{{ "format": "gbml-exchange", "version": 1, "implementation": "mpmath 50 digits",
  "quantity": "{q}", "inputs": {{ "x1": "x1.npy" }}, "output": "out.npy",
  "conventions": {{ "parameterization": "{}", "sigma_w": {:?}, "sigma_b": {sigma_b},
                    "widths": {widths}, "layers": "{}" }} }}"#,
        c.parameterization, c.sigma_w, c.spec
    )
}

fn inputs_of(c: &Case) -> Inputs {
    let mut i = Inputs::new();
    i.insert(
        "x1".into(),
        ArrayD::from_shape_vec(IxDyn(&c.shape), c.x.clone()).unwrap(),
    );
    i
}

fn mpmath(v: &[Vec<String>]) -> ArrayD<f64> {
    let n = v.len();
    Array2::from_shape_fn((n, n), |(i, j)| v[i][j].parse::<f64>().unwrap()).into_dyn()
}

/// Cases of the known accuracy gap of the f64 conv kernels (tests/conv_golden: avgpool followed
/// by an activation on scaled images, ≈ 9 digits). With the extended reference they must pass.
fn known_gap(c: &Case) -> bool {
    c.spec.contains("avgpool") && c.inputs.contains("scaled")
}

#[test]
fn independent_conv_candidates_pass_and_perturbed_ones_fail() {
    let tols = ToleranceTable::defaults();
    let (mut passed, mut caught, mut gap) = (0, 0, 0);
    for c in fixture().cases {
        for q in [Quantity::Nngp, Quantity::Ntk] {
            let m = Manifest::parse_str(&manifest_json(&c, q), "mem").unwrap();
            let inputs = inputs_of(&c);
            let cand = mpmath(if q == Quantity::Nngp { &c.nngp } else { &c.ntk });
            let rep = compare_values(&m, &inputs, &cand, &tols, "mem").unwrap();
            assert_eq!(
                rep.precision,
                Precision::Extended,
                "conv references are extended"
            );
            let label = format!("{} {} ({q})", c.spec, c.inputs);
            assert_eq!(rep.verdict, Verdict::Pass, "{label}: {:?}", rep.requirement);
            if known_gap(&c) {
                gap += 1;
            }
            passed += 1;
            // Perturb the largest entry by a relative 1e-9 (9 digits < the 13 required).
            let mut bad = cand.clone();
            let imax = bad
                .iter()
                .enumerate()
                .fold(
                    (0, 0.0f64),
                    |b, (i, v)| if v.abs() > b.1 { (i, v.abs()) } else { b },
                )
                .0;
            if bad.iter().nth(imax).copied().unwrap_or(0.0) == 0.0 {
                continue; // an all-zero kernel (zero images, no bias) has no relative perturbation
            }
            *bad.iter_mut().nth(imax).unwrap() *= 1.0 + 1e-9;
            let rep = compare_values(&m, &inputs, &bad, &tols, "mem").unwrap();
            assert_eq!(rep.verdict, Verdict::Mismatch, "{label}: perturbed passes");
            caught += 1;
        }
    }
    assert!(passed >= 30, "{passed} cases passed");
    assert!(caught >= 28, "{caught} perturbations caught");
    assert!(
        gap >= 2,
        "{gap} cases of the f64 gap passed against the extended reference"
    );
}

fn case_manifest(layers: &str, extra: &str) -> String {
    format!(
        r#"{{ "format": "gbml-exchange", "version": 1, "implementation": "t", "quantity": "ntk",
  "inputs": {{ "x1": "x1.npy" }}, "output": "o.npy",
  "conventions": {{ "parameterization": "ntk", "sigma_w": 1.0, "sigma_b": null, "widths": null,
                    "layers": "{layers}"{extra} }} }}"#
    )
}

#[test]
fn bad_conv_conventions_are_typed_errors() {
    let err = |t: &str| Manifest::parse_str(t, "mem").unwrap_err();
    // Unknown layer word: the spec parser's typed error, naming `layers`.
    let e = err(&case_manifest("conv:3:same,relu,maxpool:2,gap,dense", ""));
    assert!(
        matches!(e, Error::InvalidParameter { .. }) && e.to_string().contains("layers"),
        "{e:?}"
    );
    // depth/activation next to layers: ambiguous, a parse error.
    let e = err(&case_manifest(
        "conv:3:same,relu,gap,dense",
        r#", "depth": 1, "activation": "relu""#,
    ));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    // Unknown normalization name.
    let e = err(&case_manifest(
        "conv:3:same,relu,gap,dense",
        r#", "normalization": "cntk""#,
    ));
    assert!(matches!(e, Error::Parse { .. }), "{e:?}");
    // Standard parameterization with two widths.
    let t = case_manifest("conv:3:same,relu,gap,dense", "")
        .replace(r#""ntk", "sigma_w""#, r#""standard", "sigma_w""#)
        .replace(r#""widths": null"#, r#""widths": [8, 8]"#);
    let e = err(&t);
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e:?}");
    // A conv architecture for an MNK quantity is not supported (yet): typed, not a panic.
    let t = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tests/valid_mnk_gram.json"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&t).unwrap();
    let c = v["conventions"].as_object_mut().unwrap();
    c.remove("depth");
    c.remove("activation");
    c.insert("layers".into(), "conv:3:same,relu,gap,dense".into());
    let e = err(&v.to_string());
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    // Inputs that are not images: a shape error at compare time.
    let m = Manifest::parse_str(&case_manifest("conv:3:same,relu,gap,dense", ""), "mem").unwrap();
    let mut inputs = Inputs::new();
    inputs.insert("x1".into(), ArrayD::zeros(IxDyn(&[2, 3, 3])));
    let e = compare_values(
        &m,
        &inputs,
        &ArrayD::zeros(IxDyn(&[2, 2])),
        &ToleranceTable::defaults(),
        "mem",
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    // A VALID conv larger than the images: the spec's typed error.
    let m = Manifest::parse_str(&case_manifest("conv:5:valid,relu,gap,dense", ""), "mem").unwrap();
    let mut inputs = Inputs::new();
    inputs.insert("x1".into(), ArrayD::zeros(IxDyn(&[2, 3, 3, 1])));
    let e = compare_values(
        &m,
        &inputs,
        &ArrayD::zeros(IxDyn(&[2, 2])),
        &ToleranceTable::defaults(),
        "mem",
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { .. }), "{e:?}");
}

/// A conv manifest round-trips through its JSON without `depth`/`activation`.
#[test]
fn conv_manifest_round_trips() {
    let t = case_manifest(
        "conv:3:same,relu,gap,dense",
        r#", "normalization": "arora""#,
    );
    let m = Manifest::parse_str(&t, "mem").unwrap();
    let json = m.to_json();
    assert!(
        !json.contains("depth") && !json.contains("activation"),
        "{json}"
    );
    assert_eq!(Manifest::parse_str(&json, "rt").unwrap(), m);
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gbml-compare-conv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `gbml compare run` on a conv manifest written to disk (NHWC `.npy`): exit 0 for the
/// mpmath candidate, exit 1 for the perturbed one; the JSON report says `precision: extended`.
#[test]
fn cli_compare_run_on_a_conv_manifest() {
    let f = fixture();
    let c = f
        .cases
        .iter()
        .find(|c| c.spec.contains("gap") && c.inputs == "random")
        .unwrap();
    let dir = tmp("cli");
    let inputs = inputs_of(c);
    arrays::write(&dir.join("x1.npy"), &inputs["x1"]).unwrap();
    let good = mpmath(&c.ntk);
    let text = manifest_json(c, Quantity::Ntk);
    std::fs::write(dir.join("manifest.json"), &text).unwrap();
    let run = |out: &ArrayD<f64>| {
        arrays::write(&dir.join("out.npy"), out).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_gbml"))
            .args([
                "compare",
                "run",
                dir.join("manifest.json").to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, out) = run(&good);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"precision\": \"extended\"") || out.contains("\"precision\":\"extended\""),
        "{out}"
    );
    let mut bad = good.clone();
    bad[[0, 1]] *= 1.0 + 1e-8;
    let (code, out) = run(&bad);
    assert_eq!(code, Some(1), "{out}");
    // The library entry point agrees with the CLI.
    let rep = compare_manifest(&dir.join("manifest.json"), &ToleranceTable::defaults()).unwrap();
    assert_eq!(rep.verdict, Verdict::Mismatch);
    let _ = std::fs::remove_dir_all(&dir);
}

/// TwoSum: the exact rounding error of `a + b` (a double).
fn two_sum_err(a: f64, b: f64) -> f64 {
    let s = a + b;
    let bv = s - a;
    (a - (s - bv)) + (b - bv)
}

/// The conv sensitivity scale is needed: `gap` of images whose pixels sum to (almost) zero
/// cancels, and an exact candidate (closed form) differs from any f64 pixel-pair evaluation by
/// far more than 100 ε √(K_ii K'_jj) — the FC scale would reject it (asserted below as the
/// counterfactual) — while the conv scale (gap → flatten) accepts it; a candidate off by 1e-6 of
/// the pixel scale is still rejected.
#[test]
fn gap_cancellation_needs_the_conv_scale() {
    // Image i has pixels (a, b, −fl(a + b)): exact pixel sum e_i = a + b − fl(a + b) (TwoSum).
    let imgs = [(0.1, 0.2), (0.7, 0.1)];
    let mut x = ArrayD::zeros(IxDyn(&[2, 1, 3, 1]));
    let mut e = [0.0; 2];
    for (i, &(a, b)) in imgs.iter().enumerate() {
        x[[i, 0, 0, 0]] = a;
        x[[i, 0, 1, 0]] = b;
        x[[i, 0, 2, 0]] = -(a + b);
        e[i] = two_sum_err(a, b);
        assert!(e[i] != 0.0);
    }
    // `gap,dense`, σ_w = 1, no bias: NNGP_ij = mean_pq x_p x'_q / C = e_i e_j / 9 (C = 1).
    let exact = Array2::from_shape_fn((2, 2), |(i, j)| e[i] * e[j] / 9.0).into_dyn();
    let t = r#"{ "format": "gbml-exchange", "version": 1, "implementation": "closed form",
      "quantity": "nngp", "inputs": { "x1": "x1.npy" }, "output": "o.npy",
      "conventions": { "parameterization": "ntk", "sigma_w": 1.0, "sigma_b": null,
                       "widths": null, "layers": "gap,dense" } }"#;
    let m = Manifest::parse_str(t, "mem").unwrap();
    let mut inputs = Inputs::new();
    inputs.insert("x1".into(), x);
    let tols = ToleranceTable::defaults();
    let r = gbml_testbed::io::reference::reference(&m, &inputs).unwrap();
    // Counterfactual: the FC rule |c − r| ≤ max(1e-13 d, 100 ε √(r_ii r_jj)) fails somewhere.
    let fc_rejects = (0..2).any(|i| {
        (0..2).any(|j| {
            let d = r[[i, j]]
                .abs()
                .max(1e-3 * r.iter().fold(0.0f64, |a, v| a.max(v.abs())));
            let s = (r[[i, i]].abs() * r[[j, j]].abs()).sqrt();
            (exact[[i, j]] - r[[i, j]]).abs() > (1e-13 * d).max(100.0 * f64::EPSILON * s)
        })
    });
    assert!(
        fc_rejects,
        "reference {r:?} vs exact {exact:?}: no cancellation to show"
    );
    let rep = compare_values(&m, &inputs, &exact, &tols, "mem").unwrap();
    assert_eq!(rep.verdict, Verdict::Pass, "{:?}", rep.requirement);
    // Still a guard: off by 1e-6 of the pixel scale (mean_p x_p² ≈ 0.05) is rejected.
    let mut bad = exact.clone();
    bad[[0, 1]] += 1e-7;
    bad[[1, 0]] += 1e-7;
    let rep = compare_values(&m, &inputs, &bad, &tols, "mem").unwrap();
    assert_eq!(rep.verdict, Verdict::Mismatch);
}
