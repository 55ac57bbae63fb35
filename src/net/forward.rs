//! Forward pass on a batch (points are rows), as one GEMM per layer.
//!
//! With A^0 = X (n × d): `Z^h = s_h A^{h−1} (W^h)ᵀ + β 1 (b^h)ᵀ`, `A^h = φ(Z^h)` for h ≤ L,
//! and the output `f(X) = Z^{L+1}` (n × k).

use super::mlp::Mlp;
use crate::error::Result;
use crate::linalg::gemm_into;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

/// Everything the backward and R-passes need from a forward pass.
#[derive(Clone, Debug)]
pub struct ForwardCache {
    /// `a[0] = X`, `a[h] = φ(Z^h)` for h = 1..L (layer inputs).
    pub a: Vec<Array2<f64>>,
    /// `z[h−1] = Z^h` for h = 1..L (hidden pre-activations).
    pub z: Vec<Array2<f64>>,
    /// `dphi[h−1] = φ'(Z^h)`.
    pub dphi: Vec<Array2<f64>>,
    /// Output f(X) (n × k).
    pub out: Array2<f64>,
}

impl Mlp {
    /// `Z = s A Wᵀ + β 1 bᵀ` for layer h (1-based).
    pub(crate) fn affine(
        &self,
        theta: ArrayView1<'_, f64>,
        h: usize,
        a: ArrayView2<'_, f64>,
    ) -> Array2<f64> {
        let l = &self.layers()[h - 1];
        let w = self.w(theta, h);
        let mut z = Array2::zeros((a.nrows(), l.n_out));
        gemm_into(&mut z, false, a, false, w, true, l.w_scale);
        if let Some(b) = self.b(theta, h) {
            let bb = &b * l.b_scale;
            z += &bb.view().insert_axis(Axis(0));
        }
        z
    }

    /// Network output f(X) (n × k).
    pub fn forward(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        self.check_theta(theta)?;
        self.check_input(x, "network input")?;
        Ok(self.forward_unchecked(theta, x))
    }

    /// [`Mlp::forward`] without shape checks (internal hot path).
    pub(crate) fn forward_unchecked(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> Array2<f64> {
        let act = self.activation;
        let mut a = x.to_owned();
        for h in 1..=self.depth() {
            let mut z = self.affine(theta, h, a.view());
            z.mapv_inplace(|v| act.phi(v));
            a = z;
        }
        self.affine(theta, self.depth() + 1, a.view())
    }

    /// Forward pass keeping the activations for [`Mlp::backward`] and [`Mlp::hvp_cached`].
    pub fn forward_cache(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> Result<ForwardCache> {
        self.check_theta(theta)?;
        self.check_input(x, "network input")?;
        Ok(self.forward_cache_unchecked(theta, x))
    }

    pub(crate) fn forward_cache_unchecked(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> ForwardCache {
        let act = self.activation;
        let depth = self.depth();
        let mut a = Vec::with_capacity(depth + 1);
        let mut z = Vec::with_capacity(depth);
        let mut dphi = Vec::with_capacity(depth);
        a.push(x.to_owned());
        for h in 1..=depth {
            let zh = self.affine(theta, h, a[h - 1].view());
            a.push(zh.mapv(|v| act.phi(v)));
            dphi.push(zh.mapv(|v| act.dphi(v)));
            z.push(zh);
        }
        let out = self.affine(theta, depth + 1, a[depth].view());
        ForwardCache { a, z, dphi, out }
    }
}
