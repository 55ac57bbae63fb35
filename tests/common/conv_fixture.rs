//! The cases of `fixtures/conv/conv.json` (50-digit mpmath values of the conv kernels,
//! `fixtures/conv/gen_conv.py`, with neural-tangents 0.6.5's digits beside them), shared by the
//! tests that read them (`conv_golden`, `compare_conv`): `#[path]`-included by each.

use gbml_testbed::kernel::{Kernels, Parameterization, Spec};
use gbml_testbed::tol::lre;
use ndarray::Array4;
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

#[allow(dead_code)] // each including test uses a different subset
impl Case {
    /// The architecture of the case (σ_w, σ_b, parameterization and width applied).
    pub fn spec(&self) -> Spec {
        let s = Spec::parse(&self.spec)
            .unwrap()
            .with_sigma_w(self.sigma_w)
            .with_sigma_b(self.sigma_b);
        if self.parameterization == "standard" {
            s.with_standard(self.width)
        } else {
            assert_eq!(s.parameterization, Parameterization::Ntk);
            s
        }
    }

    /// The input images, NHWC.
    pub fn images(&self) -> Array4<f64> {
        let sh = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        Array4::from_shape_vec(sh, self.x.clone()).unwrap()
    }

    /// Min LRE (capped at 15.95 by `lre`) of `k` against the mpmath values, both kernels, all
    /// entries.
    pub fn min_digits(&self, k: &Kernels) -> f64 {
        let m = self.shape[0];
        let mut worst = f64::INFINITY;
        for i in 0..m {
            for j in 0..m {
                let rn: f64 = self.nngp[i][j].parse().unwrap();
                let rt: f64 = self.ntk[i][j].parse().unwrap();
                worst = worst
                    .min(lre(k.nngp[[i, j]], rn))
                    .min(lre(k.ntk[[i, j]], rt));
            }
        }
        worst
    }
}
