//! The cases of `fixtures/conv/conv.json` (50-digit mpmath values of the conv kernels,
//! `fixtures/conv/gen_conv.py`, with neural-tangents 0.6.5's digits beside them), shared by the
//! tests that read them (`conv_golden`, `compare_conv`): `#[path]`-included by each.

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Fixture {
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // each including test reads a different subset of the fields
pub struct Case {
    pub spec: String,
    pub sigma_w: f64,
    pub sigma_b: Option<f64>,
    pub parameterization: String,
    pub width: usize,
    pub inputs: String,
    pub shape: Vec<usize>,
    pub x: Vec<f64>,
    pub nngp: Vec<Vec<String>>,
    pub ntk: Vec<Vec<String>>,
    pub nt_min_digits: f64,
}

/// The parsed fixture file.
pub fn fixture() -> Fixture {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conv/conv.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}
