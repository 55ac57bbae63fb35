//! Exact Hessian-vector products of the sum loss ℓ(θ) = ½‖f(X; θ) − Y‖²_F by Pearlmutter's
//! R-operator: R{·} = d/dε (·)(θ + εv) at ε = 0, applied to the forward pass and then to the
//! backward pass of [`super::backward`]. This is the full Hessian (activation curvature φ'' and
//! the residual term included), not the Gauss–Newton part.
//!
//! R-forward (RA^0 = 0, V^h, v_b^h the blocks of v):
//!
//! ```text
//! RZ^h = s_h (RA^{h−1} (W^h)ᵀ + A^{h−1} (V^h)ᵀ) + β 1 (v_b^h)ᵀ
//! RA^h = φ'(Z^h) ⊙ RZ^h,          Rf = RZ^{L+1}
//! ```
//!
//! R-backward, with Δ^{L+1} = f − Y and RΔ^{L+1} = Rf:
//!
//! ```text
//! (Hv)_{W^h} = s_h ((RΔ^h)ᵀ A^{h−1} + (Δ^h)ᵀ RA^{h−1})
//! (Hv)_{b^h} = β 1ᵀ RΔ^h
//! D = s_h Δ^h W^h,   RD = s_h (RΔ^h W^h + Δ^h V^h)
//! Δ^{h−1} = D ⊙ φ'(Z^{h−1}),   RΔ^{h−1} = RD ⊙ φ'(Z^{h−1}) + D ⊙ φ''(Z^{h−1}) ⊙ RZ^{h−1}
//! ```
//!
//! Cost: about three times a gradient; all batched work is GEMMs.

use super::backward::gemm_w_into;
use super::forward::ForwardCache;
use super::mlp::Mlp;
use crate::error::{Error, Result};
use crate::linalg::gemm_into;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};

impl Mlp {
    /// R-forward: the directional derivatives `RA^h` (h = 0..L, RA^0 = 0) and `Rf`.
    fn r_forward(
        &self,
        theta: ArrayView1<'_, f64>,
        v: ArrayView1<'_, f64>,
        cache: &ForwardCache,
    ) -> (Vec<Array2<f64>>, Vec<Array2<f64>>, Array2<f64>) {
        let depth = self.depth();
        let n = cache.out.nrows();
        let mut ra: Vec<Array2<f64>> = Vec::with_capacity(depth + 1);
        let mut rz: Vec<Array2<f64>> = Vec::with_capacity(depth);
        ra.push(Array2::zeros((n, 0))); // RA^0 = 0 (placeholder, never read)
        let mut rf = None;
        for h in 1..=depth + 1 {
            let l = &self.layers()[h - 1];
            let mut z = Array2::zeros((n, l.n_out));
            // A^{h−1} (V^h)ᵀ
            gemm_into(
                &mut z,
                false,
                cache.a[h - 1].view(),
                false,
                self.w(v, h),
                true,
                l.w_scale,
            );
            if h > 1 {
                gemm_into(
                    &mut z,
                    true,
                    ra[h - 1].view(),
                    false,
                    self.w(theta, h),
                    true,
                    l.w_scale,
                );
            }
            if let Some(vb) = self.b(v, h) {
                let bb = &vb * l.b_scale;
                z += &bb.view().insert_axis(Axis(0));
            }
            if h <= depth {
                ra.push(&z * &cache.dphi[h - 1]);
                rz.push(z);
            } else {
                rf = Some(z);
            }
        }
        (ra, rz, rf.expect("output layer"))
    }

    /// `H v` for the loss whose residual at the cached forward pass is `resid = f(X) − Y`.
    pub fn hvp_cached(
        &self,
        theta: ArrayView1<'_, f64>,
        cache: &ForwardCache,
        resid: ArrayView2<'_, f64>,
        v: ArrayView1<'_, f64>,
    ) -> Array1<f64> {
        let mut out = Array1::zeros(self.n_params());
        self.hvp_into(theta, cache, resid, v, &mut out, 1.0, false);
        out
    }

    /// `out ← alpha · H v (+ out if accumulate)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hvp_into(
        &self,
        theta: ArrayView1<'_, f64>,
        cache: &ForwardCache,
        resid: ArrayView2<'_, f64>,
        v: ArrayView1<'_, f64>,
        out: &mut Array1<f64>,
        alpha: f64,
        accumulate: bool,
    ) {
        let depth = self.depth();
        let act = self.activation;
        let curved = act.has_curvature();
        let (ra, rz, rf) = self.r_forward(theta, v, cache);
        let mut delta = resid.to_owned();
        let mut rdelta = rf;
        for h in (1..=depth + 1).rev() {
            let l = &self.layers()[h - 1];
            {
                let gw = out.slice_mut(s![l.w_range()]);
                let mut gw = gw
                    .into_shape_with_order((l.n_out, l.n_in))
                    .expect("contiguous");
                gemm_w_into(
                    &mut gw,
                    accumulate,
                    rdelta.view(),
                    cache.a[h - 1].view(),
                    alpha * l.w_scale,
                );
                if h > 1 {
                    gemm_w_into(
                        &mut gw,
                        true,
                        delta.view(),
                        ra[h - 1].view(),
                        alpha * l.w_scale,
                    );
                }
            }
            if let Some(r) = l.b_range() {
                super::backward::bias_grad_into(
                    out.slice_mut(s![r]),
                    rdelta.view(),
                    alpha * l.b_scale,
                    accumulate,
                );
            }
            if h > 1 {
                let w = self.w(theta, h);
                let vw = self.w(v, h);
                let n = delta.nrows();
                let mut d = Array2::zeros((n, l.n_in));
                gemm_into(&mut d, false, delta.view(), false, w, false, l.w_scale);
                let mut rd = Array2::zeros((n, l.n_in));
                gemm_into(&mut rd, false, rdelta.view(), false, w, false, l.w_scale);
                gemm_into(&mut rd, true, delta.view(), false, vw, false, l.w_scale);
                let dp = &cache.dphi[h - 2];
                rd *= dp;
                if curved {
                    let zc = &cache.z[h - 2];
                    let rzc = &rz[h - 2];
                    ndarray::Zip::from(&mut rd)
                        .and(&d)
                        .and(zc)
                        .and(rzc)
                        .for_each(|r, &dd, &zz, &rr| *r += dd * act.d2phi(zz) * rr);
                }
                d *= dp;
                delta = d;
                rdelta = rd;
            }
        }
    }

    /// Hessian-vector product `∇²_θ ½‖f(X; θ) − Y‖² · v`.
    pub fn loss_hvp(
        &self,
        theta: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        v: ArrayView1<'_, f64>,
    ) -> Result<Array1<f64>> {
        self.check_theta(theta)?;
        self.check_input(x, "network input")?;
        self.check_labels(x, y)?;
        if v.len() != self.n_params() {
            return Err(Error::shape(
                "HVP direction",
                format!("{} entries", self.n_params()),
                format!("{} entries", v.len()),
            ));
        }
        crate::error::ensure_finite(v, "HVP direction")?;
        let cache = self.forward_cache_unchecked(theta, x);
        let r = &cache.out - &y;
        Ok(self.hvp_cached(theta, &cache, r.view(), v))
    }
}
