//! The finite fully-connected network: architecture, flat parameter vector, typed views, seeded
//! initialization (MATH.md §1).
//!
//! Layers h = 1..L+1 (L = `depth` hidden layers, layer L+1 the linear readout with k outputs),
//! layer h maps width n_{h−1} to n_h (n_0 = d, n_{L+1} = k):
//!
//! * NTK parameterization: `z^h = (σ_w/√n_{h−1}) W^h x^{h−1} + σ_b b^h`, W, b entries N(0,1) at init.
//! * Standard parameterization: `z^h = W^h x^{h−1} + b^h`, `W ~ N(0, σ_w²/n_{h−1})`, `b ~ N(0, σ_b²)`.
//!
//! In both cases `z^h = s_h W^h x^{h−1} + β b^h` with a weight multiplier `s_h` and a bias
//! multiplier `β` ([`Layer::w_scale`], [`Layer::b_scale`]). `σ_b = None` means no bias parameters
//! at all; `σ_b = Some(0)` keeps trainable biases (they start at 0 in the standard
//! parameterization and, with β = 0, are inert in the NTK parameterization).
//!
//! **Parameter order** (the flat vector θ): for h = 1, …, L+1: `W^h` (n_h × n_{h−1}, row-major,
//! i.e. `W^h[i, j]` at offset `w_offset + i·n_{h−1} + j`), then `b^h` (n_h entries) if the network
//! has biases. [`Mlp::init`] draws all entries in this order from one ChaCha8 stream (standard
//! normals via `rand_distr::StandardNormal`), then multiplies each standard-parameterization
//! weight block by σ_w/√n_{h−1} and bias block by σ_b: the same seed gives the same bits.

use super::activation::NetActivation;
use crate::error::{Error, Result};
use crate::kernel::{Arch, Parameterization};
use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::ops::Range;

/// Layout and multipliers of one dense layer inside the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Input width n_{h−1}.
    pub n_in: usize,
    /// Output width n_h.
    pub n_out: usize,
    /// Offset of `W^h` (n_out × n_in, row-major).
    pub w_offset: usize,
    /// Offset of `b^h` (n_out), if the network has biases.
    pub b_offset: Option<usize>,
    /// Weight multiplier s_h: σ_w/√n_in (NTK) or 1 (standard).
    pub w_scale: f64,
    /// Bias multiplier β: σ_b (NTK) or 1 (standard).
    pub b_scale: f64,
}

impl Layer {
    /// Range of `W^h` in θ.
    pub fn w_range(&self) -> Range<usize> {
        self.w_offset..self.w_offset + self.n_in * self.n_out
    }
    /// Range of `b^h` in θ, if any.
    pub fn b_range(&self) -> Option<Range<usize>> {
        self.b_offset.map(|o| o..o + self.n_out)
    }
    /// Range of all of this layer's parameters.
    pub fn range(&self) -> Range<usize> {
        let end = self.b_range().map_or(self.w_range().end, |r| r.end);
        self.w_offset..end
    }
}

/// A finite fully-connected network (architecture only; parameters are a separate flat vector).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Input dimension d.
    pub d_in: usize,
    /// Hidden widths n_1..n_L.
    pub widths: Vec<usize>,
    /// Number of outputs k.
    pub k_out: usize,
    /// Hidden activation.
    pub activation: NetActivation,
    /// σ_w.
    pub sigma_w: f64,
    /// σ_b (`None`: no biases).
    pub sigma_b: Option<f64>,
    /// NTK or standard parameterization.
    pub parameterization: Parameterization,
    layers: Vec<Layer>,
    n_params: usize,
}

impl Mlp {
    /// Network with the architecture of `arch` (its `widths` must have one entry per hidden
    /// layer), input dimension `d_in` and `k_out` outputs.
    pub fn new(arch: &Arch, d_in: usize, k_out: usize) -> Result<Self> {
        arch.validate()?;
        if arch.widths.len() != arch.depth {
            return Err(Error::param(
                "widths",
                format!("{:?}", arch.widths),
                format!(
                    "a finite network needs one width per hidden layer ({} layers)",
                    arch.depth
                ),
            ));
        }
        Self::from_parts(
            d_in,
            arch.widths.clone(),
            k_out,
            arch.activation.into(),
            arch.sigma_w,
            arch.sigma_b,
            arch.parameterization,
        )
    }

    /// Network from its parts (use this for the activations without a dual kernel).
    pub fn from_parts(
        d_in: usize,
        widths: Vec<usize>,
        k_out: usize,
        activation: NetActivation,
        sigma_w: f64,
        sigma_b: Option<f64>,
        parameterization: Parameterization,
    ) -> Result<Self> {
        if d_in == 0 {
            return Err(Error::param("d_in", d_in, "input dimension must be >= 1"));
        }
        if k_out == 0 {
            return Err(Error::param("k_out", k_out, "need at least one output"));
        }
        if widths.contains(&0) {
            return Err(Error::param(
                "widths",
                format!("{widths:?}"),
                "widths must be >= 1",
            ));
        }
        if !(sigma_w.is_finite() && sigma_w > 0.0) {
            return Err(Error::param("sigma_w", sigma_w, "must be finite and > 0"));
        }
        if let Some(b) = sigma_b {
            if !(b.is_finite() && b >= 0.0) {
                return Err(Error::param("sigma_b", b, "must be finite and >= 0"));
            }
        }
        activation.validate()?;
        let mut dims = vec![d_in];
        dims.extend_from_slice(&widths);
        dims.push(k_out);
        let mut layers = Vec::with_capacity(dims.len() - 1);
        let mut off = 0usize;
        for w in dims.windows(2) {
            let (n_in, n_out) = (w[0], w[1]);
            let w_offset = off;
            off += n_in * n_out;
            let b_offset = sigma_b.map(|_| {
                let o = off;
                off += n_out;
                o
            });
            let (w_scale, b_scale) = match parameterization {
                Parameterization::Ntk => (sigma_w / (n_in as f64).sqrt(), sigma_b.unwrap_or(0.0)),
                Parameterization::Standard => (1.0, 1.0),
            };
            layers.push(Layer {
                n_in,
                n_out,
                w_offset,
                b_offset,
                w_scale,
                b_scale,
            });
        }
        Ok(Mlp {
            d_in,
            widths,
            k_out,
            activation,
            sigma_w,
            sigma_b,
            parameterization,
            layers,
            n_params: off,
        })
    }

    /// Number of hidden layers L.
    pub fn depth(&self) -> usize {
        self.widths.len()
    }

    /// Total number of parameters P.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The L+1 dense layers, input to output.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Parameter range of the readout layer (W^{L+1}, b^{L+1}): what ANIL adapts.
    pub fn head_range(&self) -> Range<usize> {
        self.layers.last().expect("at least one layer").range()
    }

    /// Seeded initialization (see the module docs for the order and scaling).
    pub fn init(&self, seed: u64) -> Array1<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut theta = Array1::from_shape_fn(self.n_params, |_| StandardNormal.sample(&mut rng));
        if self.parameterization == Parameterization::Standard {
            let sb = self.sigma_b.unwrap_or(0.0);
            for l in &self.layers {
                let sw = self.sigma_w / (l.n_in as f64).sqrt();
                theta
                    .slice_mut(ndarray::s![l.w_range()])
                    .mapv_inplace(|v| v * sw);
                if let Some(r) = l.b_range() {
                    theta.slice_mut(ndarray::s![r]).mapv_inplace(|v| v * sb);
                }
            }
        }
        theta
    }

    /// Check that θ has P entries, all finite.
    pub fn check_theta(&self, theta: ArrayView1<'_, f64>) -> Result<()> {
        if theta.len() != self.n_params {
            return Err(Error::shape(
                "network parameters",
                format!("{} entries", self.n_params),
                format!("{} entries", theta.len()),
            ));
        }
        crate::error::ensure_finite(theta, "network parameters")
    }

    /// Check that X has d columns and finite entries.
    pub fn check_input(&self, x: ArrayView2<'_, f64>, context: &str) -> Result<()> {
        if x.ncols() != self.d_in {
            return Err(Error::shape(
                context,
                format!("{} columns (input dimension)", self.d_in),
                format!("{} columns", x.ncols()),
            ));
        }
        crate::error::ensure_finite(x, context)
    }

    /// View of `W^h` (h = 1..=L+1) inside θ, shape n_h × n_{h−1}.
    pub fn w<'a>(&self, theta: ArrayView1<'a, f64>, h: usize) -> ArrayView2<'a, f64> {
        let l = &self.layers[h - 1];
        theta
            .slice_move(ndarray::s![l.w_range()])
            .into_shape_with_order((l.n_out, l.n_in))
            .expect("contiguous weight block")
    }

    /// Mutable view of `W^h` inside θ.
    pub fn w_mut<'a>(
        &self,
        theta: &'a mut ndarray::ArrayViewMut1<'_, f64>,
        h: usize,
    ) -> ArrayViewMut2<'a, f64> {
        let l = &self.layers[h - 1];
        theta
            .slice_mut(ndarray::s![l.w_range()])
            .into_shape_with_order((l.n_out, l.n_in))
            .expect("contiguous weight block")
    }

    /// View of `b^h` inside θ (None without biases).
    pub fn b<'a>(&self, theta: ArrayView1<'a, f64>, h: usize) -> Option<ArrayView1<'a, f64>> {
        let l = &self.layers[h - 1];
        l.b_range().map(|r| theta.slice_move(ndarray::s![r]))
    }
}
