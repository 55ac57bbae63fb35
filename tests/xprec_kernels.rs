//! The extended-precision kernels (`gbml_testbed::xprec::kernels`) against 50-digit mpmath:
//! every final-layer NNGP and NTK entry of `fixtures/kernels/kernels.json` (240 cases: depth 0–5,
//! five activations, both parameterizations, identical / near-identical / antipodal / zero /
//! badly scaled rows) and of `fixtures/certified/kernels_ill.json` (near-collinear rows with very
//! different norms, LeakyReLU standard parameterization with row norms 10 and 1e3) must carry
//! ≥ 15 correct digits (LRE; `−log10|c|` where the reference is 0).
//!
//! The f64 path is run on the same certified cases to show the assertion can fail: it misses 15
//! digits there (the inputs are ill-conditioned for f64 evaluation).

use gbml_testbed::kernel::{self, Arch};
use gbml_testbed::tol::lre;
use gbml_testbed::xprec;
use ndarray::Array2;
use serde::Deserialize;

const MIN_DIGITS: f64 = 15.0;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    arch: Arch,
    x1: Vec<Vec<f64>>,
    x2: Option<Vec<Vec<f64>>>,
    nngp: Vec<Vec<String>>,
    ntk: Vec<Vec<String>>,
}

fn load(rel: &str) -> Fixture {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("parse fixture")
}

fn to_array(rows: &[Vec<f64>]) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

/// Smallest LRE over both kernels of one case, with the worst entry.
fn case_min_lre(
    c: &Case,
    f: impl Fn(&Arch, &Array2<f64>, Option<&Array2<f64>>) -> kernel::Kernels,
) -> (f64, String) {
    let x1 = to_array(&c.x1);
    let x2 = c.x2.as_ref().map(|x| to_array(x));
    let k = f(&c.arch, &x1, x2.as_ref());
    let mut worst = (f64::INFINITY, String::new());
    for (kind, ours, refs) in [("nngp", &k.nngp, &c.nngp), ("ntk", &k.ntk, &c.ntk)] {
        for (i, row) in refs.iter().enumerate() {
            for (j, s) in row.iter().enumerate() {
                let r: f64 = s.parse().expect("reference");
                let l = lre(ours[[i, j]], r);
                if l < worst.0 {
                    worst = (l, format!("{kind}[{i},{j}] = {:e} vs {s}", ours[[i, j]]));
                }
            }
        }
    }
    worst
}

fn extended(a: &Arch, x1: &Array2<f64>, x2: Option<&Array2<f64>>) -> kernel::Kernels {
    xprec::kernels(a, x1.view(), x2.map(|x| x.view())).expect("extended kernels")
}

fn f64_path(a: &Arch, x1: &Array2<f64>, x2: Option<&Array2<f64>>) -> kernel::Kernels {
    kernel::kernels(a, x1.view(), x2.map(|x| x.view())).expect("f64 kernels")
}

fn check_all(fx: &Fixture) -> f64 {
    let mut overall = f64::INFINITY;
    let mut bad = Vec::new();
    for c in &fx.cases {
        let (l, w) = case_min_lre(c, extended);
        overall = overall.min(l);
        if l < MIN_DIGITS {
            bad.push(format!("{}: {l:.2} digits at {w}", c.name));
        }
    }
    assert!(
        bad.is_empty(),
        "{} cases below {MIN_DIGITS} digits:\n{}",
        bad.len(),
        bad.join("\n")
    );
    overall
}

#[test]
fn extended_kernels_match_mpmath_on_kernel_fixtures() {
    let fx = load("fixtures/kernels/kernels.json");
    assert_eq!(fx.cases.len(), 240);
    let m = check_all(&fx);
    println!(
        "fixtures/kernels: min LRE {m:.2} over {} cases",
        fx.cases.len()
    );
}

#[test]
fn extended_kernels_match_mpmath_on_ill_conditioned_cases() {
    let fx = load("fixtures/certified/kernels_ill.json");
    assert!(fx.cases.len() >= 10);
    let m = check_all(&fx);
    // Counterfactual: the f64 path on the same cases does not reach 15 digits everywhere.
    let f64_min = fx
        .cases
        .iter()
        .map(|c| case_min_lre(c, f64_path).0)
        .fold(f64::INFINITY, f64::min);
    println!("fixtures/certified kernels: extended min LRE {m:.2}, f64 path {f64_min:.2}");
    assert!(
        f64_min < MIN_DIGITS,
        "the ill-conditioned cases do not separate the paths"
    );
}

/// Bad input gives the f64 path's typed errors, never a panic or a NaN: non-finite entries,
/// mismatched dimensions, d = 0, invalid architecture.
#[test]
fn extended_kernels_reject_bad_input() {
    use gbml_testbed::kernel::Activation;
    use gbml_testbed::Error;
    let arch = Arch::new(2, Activation::Relu);
    let mut x = Array2::from_elem((3, 2), 1.0);
    x[[1, 0]] = f64::NAN;
    assert!(matches!(
        xprec::kernels(&arch, x.view(), None),
        Err(Error::NonFinite { .. })
    ));
    let (a, b) = (Array2::<f64>::ones((2, 3)), Array2::<f64>::ones((2, 4)));
    assert!(matches!(
        xprec::kernels(&arch, a.view(), Some(b.view())),
        Err(Error::Shape { .. })
    ));
    let e = Array2::<f64>::zeros((2, 0));
    assert!(matches!(
        xprec::kernels(&arch, e.view(), None),
        Err(Error::Empty(_))
    ));
    let bad = Arch::new(1, Activation::Relu).with_sigma_w(-1.0);
    assert!(matches!(
        xprec::kernels(&bad, a.view(), None),
        Err(Error::InvalidParameter { .. })
    ));
    // Zero rows and identical rows give finite values equal to the f64 path's exact ones.
    let z = ndarray::array![[0.0, 0.0], [1.0, 2.0], [1.0, 2.0]];
    let k = xprec::kernels(&arch, z.view(), None).unwrap();
    assert!(k.ntk.iter().all(|v| v.is_finite()));
    assert_eq!(k.ntk[[1, 2]], k.ntk[[1, 1]]);
}
