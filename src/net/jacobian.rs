//! Per-example Jacobian rows and the empirical NTK Θ̂ = J Jᵀ.
//!
//! **Layout for k outputs:** row `i·k + c` of J (and of Θ̂) belongs to point i, output c
//! (point-major). For k = 1 this is the scalar layout of the kernels. The infinite-width NTK is
//! Θ ⊗ I_k in this layout; the finite network also has (small) cross-output entries.
//!
//! Backpropagating the cotangent E_c (ones in column c) gives, for every point i separately,
//! `Δ^h_c[i] = ∂f_c(x_i)/∂Z^h[i]` (back-propagation acts row by row). Then
//! `∂f_c(x_i)/∂W^h = s_h Δ^h_c[i] ⊗ A^{h−1}[i]` and `∂f_c(x_i)/∂b^h = β Δ^h_c[i]`, so
//!
//! ```text
//! Θ̂[(i,c), (j,c')] = Σ_h (Δ^h_c Δ'^h_{c'}ᵀ)[i,j] · (s_h² (A^{h−1} A'^{h−1}ᵀ)[i,j] + β² [biases])
//! ```
//!
//! computed with 2(L+1) GEMMs per output pair, never forming J.

use super::forward::ForwardCache;
use super::mlp::Mlp;
use crate::error::Result;
use crate::linalg::{gemm_into, matmul_t};
use ndarray::{Array2, ArrayView1, ArrayView2};

impl Mlp {
    /// Δ^h_c for h = 1..L+1 (index h−1): back-propagated cotangent E_c.
    pub(crate) fn output_deltas(
        &self,
        theta: ArrayView1<'_, f64>,
        cache: &ForwardCache,
        c: usize,
    ) -> Vec<Array2<f64>> {
        let depth = self.depth();
        let n = cache.out.nrows();
        let mut out = vec![Array2::zeros((0, 0)); depth + 1];
        let mut delta = Array2::zeros((n, self.k_out));
        delta.column_mut(c).fill(1.0);
        for h in (1..=depth + 1).rev() {
            let l = &self.layers()[h - 1];
            if h > 1 {
                let mut da = Array2::zeros((n, l.n_in));
                gemm_into(
                    &mut da,
                    false,
                    delta.view(),
                    false,
                    self.w(theta, h),
                    false,
                    l.w_scale,
                );
                da *= &cache.dphi[h - 2];
                out[h - 1] = std::mem::replace(&mut delta, da);
            } else {
                out[0] = delta.clone();
            }
        }
        out
    }

    /// Per-example Jacobian J (n·k × P), row `i·k + c` = ∇_θ f_c(x_i). Dense: for small P.
    pub fn jacobian(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        let cache = self.forward_cache(theta, x)?;
        let n = x.nrows();
        let k = self.k_out;
        let mut j = Array2::zeros((n * k, self.n_params()));
        for c in 0..k {
            let deltas = self.output_deltas(theta, &cache, c);
            for (hi, l) in self.layers().iter().enumerate() {
                let d = &deltas[hi];
                let a = &cache.a[hi];
                for i in 0..n {
                    let mut row = j.row_mut(i * k + c);
                    for o in 0..l.n_out {
                        let dv = l.w_scale * d[[i, o]];
                        let base = l.w_offset + o * l.n_in;
                        for q in 0..l.n_in {
                            row[base + q] = dv * a[[i, q]];
                        }
                    }
                    if let Some(bo) = l.b_offset {
                        for o in 0..l.n_out {
                            row[bo + o] = l.b_scale * d[[i, o]];
                        }
                    }
                }
            }
        }
        Ok(j)
    }

    /// Empirical NTK Θ̂(X1, X2) = J(X1) J(X2)ᵀ ((n1·k) × (n2·k), point-major), without forming J.
    /// `x2 = None` means X2 = X1.
    pub fn empirical_ntk(
        &self,
        theta: ArrayView1<'_, f64>,
        x1: ArrayView2<'_, f64>,
        x2: Option<ArrayView2<'_, f64>>,
    ) -> Result<Array2<f64>> {
        let c1 = self.forward_cache(theta, x1)?;
        let c2 = match x2 {
            Some(x2) => Some(self.forward_cache(theta, x2)?),
            None => None,
        };
        let c2r = c2.as_ref().unwrap_or(&c1);
        let k = self.k_out;
        let (n1, n2) = (x1.nrows(), c2r.out.nrows());
        let has_b = self.sigma_b.is_some();
        // Feature Gram matrices per layer: s_h² A A'ᵀ + β².
        let grams: Vec<Array2<f64>> = self
            .layers()
            .iter()
            .enumerate()
            .map(|(hi, l)| {
                let mut g = matmul_t(c1.a[hi].view(), c2r.a[hi].view());
                let s2 = l.w_scale * l.w_scale;
                let b2 = if has_b { l.b_scale * l.b_scale } else { 0.0 };
                g.mapv_inplace(|v| s2 * v + b2);
                g
            })
            .collect();
        let d1: Vec<Vec<Array2<f64>>> = (0..k).map(|c| self.output_deltas(theta, &c1, c)).collect();
        let d2: Vec<Vec<Array2<f64>>> = if c2.is_some() {
            (0..k).map(|c| self.output_deltas(theta, c2r, c)).collect()
        } else {
            d1.clone()
        };
        let mut out = Array2::zeros((n1 * k, n2 * k));
        for c in 0..k {
            for cp in 0..k {
                let mut blk = Array2::<f64>::zeros((n1, n2));
                for (hi, g) in grams.iter().enumerate() {
                    let dd = matmul_t(d1[c][hi].view(), d2[cp][hi].view());
                    blk.zip_mut_with(&(&dd * g), |b, &v| *b += v);
                }
                for i in 0..n1 {
                    for j in 0..n2 {
                        out[[i * k + c, j * k + cp]] = blk[[i, j]];
                    }
                }
            }
        }
        Ok(out)
    }
}
