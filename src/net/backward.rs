//! Reverse mode: vector–Jacobian products and the gradient of the sum loss.
//!
//! For an output cotangent C (n × k), the vector–Jacobian product `Jᵀ vec(C) = ∇_θ Σ C ⊙ f(X)` is
//! (derived by hand from the forward pass of [`super::forward`]):
//!
//! ```text
//! Δ^{L+1} = C
//! ∇_{W^h} = s_h (Δ^h)ᵀ A^{h−1}            (n_h × n_{h−1}, one GEMM)
//! ∇_{b^h} = β 1ᵀ Δ^h                        (column sums)
//! Δ^{h−1} = (s_h Δ^h W^h) ⊙ φ'(Z^{h−1})      (h ≥ 2)
//! ```
//!
//! The gradient of ℓ = ½‖f(X) − Y‖²_F (sum, factor ½) is the product with C = f(X) − Y.

use super::forward::ForwardCache;
use super::mlp::Mlp;
use crate::error::{Error, Result};
use crate::linalg::gemm_into;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

impl Mlp {
    /// `Jᵀ vec(C)`: gradient of Σ C ⊙ f(X) at the cached forward pass.
    pub fn backward(
        &self,
        theta: ArrayView1<'_, f64>,
        cache: &ForwardCache,
        cot: ArrayView2<'_, f64>,
    ) -> Array1<f64> {
        let mut g = Array1::zeros(self.n_params());
        self.backward_into(theta, cache, cot, &mut g, 1.0, false);
        g
    }

    /// `g ← alpha · Jᵀ vec(C) (+ g if accumulate)`.
    pub(crate) fn backward_into(
        &self,
        theta: ArrayView1<'_, f64>,
        cache: &ForwardCache,
        cot: ArrayView2<'_, f64>,
        g: &mut Array1<f64>,
        alpha: f64,
        accumulate: bool,
    ) {
        let depth = self.depth();
        let mut delta = cot.to_owned();
        for h in (1..=depth + 1).rev() {
            let l = &self.layers()[h - 1];
            let a_prev = &cache.a[h - 1];
            {
                let gw = g.slice_mut(s![l.w_range()]);
                let mut gw = gw
                    .into_shape_with_order((l.n_out, l.n_in))
                    .expect("contiguous");
                gemm_w_into(
                    &mut gw,
                    accumulate,
                    delta.view(),
                    a_prev.view(),
                    alpha * l.w_scale,
                );
            }
            if let Some(r) = l.b_range() {
                bias_grad_into(
                    g.slice_mut(s![r]),
                    delta.view(),
                    alpha * l.b_scale,
                    accumulate,
                );
            }
            if h > 1 {
                let w = self.w(theta, h);
                let mut da = Array2::zeros((delta.nrows(), l.n_in));
                gemm_into(&mut da, false, delta.view(), false, w, false, l.w_scale);
                da *= &cache.dphi[h - 2];
                delta = da;
            }
        }
    }

    /// Loss ½‖f(X) − Y‖²_F and its gradient with respect to θ.
    pub fn loss_grad(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
    ) -> Result<(f64, Array1<f64>)> {
        self.check_theta(theta)?;
        self.check_input(x, "network input")?;
        self.check_labels(x, y)?;
        let cache = self.forward_cache_unchecked(theta, x);
        let r = &cache.out - &y;
        let loss = 0.5 * r.iter().map(|v| v * v).sum::<f64>();
        Ok((loss, self.backward(theta, &cache, r.view())))
    }

    /// Loss ½‖f(X) − Y‖²_F.
    pub fn loss(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
    ) -> Result<f64> {
        self.check_labels(x, y)?;
        let f = self.forward(theta, x)?;
        Ok(0.5 * (&f - &y).iter().map(|v| v * v).sum::<f64>())
    }

    /// Y must be n × k for X with n rows, with finite entries.
    pub fn check_labels(&self, x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<()> {
        if y.dim() != (x.nrows(), self.k_out) {
            return Err(Error::shape(
                "labels",
                format!("{} × {} (points × outputs)", x.nrows(), self.k_out),
                format!("{} × {}", y.nrows(), y.ncols()),
            ));
        }
        crate::error::ensure_finite(y, "labels")
    }
}

/// `G ← alpha · Δᵀ A (+ G)` into a mutable view (faer GEMM).
pub(crate) fn gemm_w_into(
    gw: &mut ndarray::ArrayViewMut2<'_, f64>,
    accumulate: bool,
    delta: ArrayView2<'_, f64>,
    a: ArrayView2<'_, f64>,
    alpha: f64,
) {
    use crate::linalg::{as_faer, as_faer_mut};
    if a.nrows() == 0 {
        if !accumulate {
            gw.fill(0.0);
        }
        return;
    }
    let dt = delta.t();
    let cf = as_faer_mut(gw);
    let acc = if accumulate {
        faer::Accum::Add
    } else {
        faer::Accum::Replace
    };
    faer::linalg::matmul::matmul(cf, acc, as_faer(&dt), as_faer(&a), alpha, par());
}

pub(crate) fn par() -> faer::Par {
    if rayon::current_num_threads() > 1 {
        faer::Par::rayon(0)
    } else {
        faer::Par::Seq
    }
}

/// Bias block of a layer's gradient: `g_b (+)= scale · Σ_rows δ` (the bias enters every row of
/// the batch with the same multiplier), written or accumulated.
pub(super) fn bias_grad_into(
    mut gb: ndarray::ArrayViewMut1<'_, f64>,
    delta: ArrayView2<'_, f64>,
    scale: f64,
    accumulate: bool,
) {
    let cs = delta.sum_axis(Axis(0));
    if accumulate {
        gb.scaled_add(scale, &cs);
    } else {
        gb.assign(&(&cs * scale));
    }
}
