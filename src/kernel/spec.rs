//! One architecture type for the analytic kernels: a list of layers (MATH.md §10), as
//! neural-tangents' `stax` defines them on NHWC inputs. A fully-connected net is the special
//! case `dense, φ, dense, …, φ, dense` on 1×1 images ([`Spec::as_fc`]; it keeps the bits of
//! [`super::kernels`]).
//!
//! Layer words (comma-separated, [`Spec::parse_layers`]): `conv:K:same|valid` (K×K, stride 1),
//! `avgpool:K` (window = stride = K, VALID), `gap` (global average pooling), `flatten`,
//! `dense`, and the activation names of `--activation` (`relu`, `erf`, `identity`,
//! `leaky_relu:α`, `abrelu:a:b` or `abrelu(a,b)`).

use super::activation::Activation;
use super::arch::{Arch, Parameterization};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Zero padding, output size = input size (pad before = (K − 1)/2, rounded down).
    Same,
    /// No padding, output size = input size − K + 1.
    Valid,
}

/// One layer of an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layer", rename_all = "lowercase")]
pub enum Layer {
    /// K×K convolution, stride 1, infinitely many output channels.
    Conv { k: usize, padding: Padding },
    /// Average pooling, window = stride = K, VALID.
    AvgPool { k: usize },
    /// Global average pooling (all pixel pairs).
    Gap,
    /// Flatten (equal positions).
    Flatten,
    /// Dense layer (per pixel on a plane, i.e. a 1×1 convolution).
    Dense,
    /// Pointwise activation (its dual kernel acts on every pixel pair).
    Act(Activation),
}

/// The kernel normalization convention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// neural-tangents' `stax` (the default): input kernel Σ_c x y / C.
    #[default]
    Stax,
    /// Arora et al. (2019) CNTK code (MATH.md §10): input kernel Σ_c x y (no 1/C), and a
    /// final `dense` readout returns (Σ, Θ) of its input unchanged (Θ before the readout term,
    /// i.e. NT's NTK − NNGP at a final Dense(σ_w = 1, no bias)). Use σ_w = √2 and no bias for
    /// their c_σ = 2.
    Arora,
}

/// An architecture: layers, weight and bias scales of every `conv` / `dense`,
/// parameterization, channel width (standard parameterization) and normalization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub layers: Vec<Layer>,
    pub sigma_w: f64,
    /// `None`: no bias at all.
    pub sigma_b: Option<f64>,
    pub parameterization: Parameterization,
    /// Channels of every conv and units of every hidden dense layer (standard
    /// parameterization only; 0 = not given).
    pub width: usize,
    pub normalization: Normalization,
}

impl Spec {
    /// Parse the layer words, σ_w = 1, no bias, NTK parameterization.
    pub fn parse(layers: &str) -> Result<Self> {
        Ok(Spec {
            layers: Self::parse_layers(layers)?,
            sigma_w: 1.0,
            sigma_b: None,
            parameterization: Parameterization::Ntk,
            width: 0,
            normalization: Normalization::Stax,
        })
    }

    /// Builder: weight scale.
    pub fn with_sigma_w(mut self, s: f64) -> Self {
        self.sigma_w = s;
        self
    }

    /// Builder: bias scale (`None`: no bias).
    pub fn with_sigma_b(mut self, s: Option<f64>) -> Self {
        self.sigma_b = s;
        self
    }

    /// Builder: standard parameterization with `width` channels / units.
    pub fn with_standard(mut self, width: usize) -> Self {
        self.parameterization = Parameterization::Standard;
        self.width = width;
        self
    }

    /// Builder: normalization convention.
    pub fn with_normalization(mut self, n: Normalization) -> Self {
        self.normalization = n;
        self
    }

    /// The layer words, e.g. `conv:3:same,relu,conv:3:same,relu,gap,dense`.
    pub fn parse_layers(s: &str) -> Result<Vec<Layer>> {
        let bad = |w: &str, why: &str| Error::param("layers", w, why.to_string());
        let words = split_words(s);
        if words.is_empty() {
            return Err(bad(s, "empty architecture"));
        }
        words
            .iter()
            .map(|w| {
                let f: Vec<&str> = w.split(':').collect();
                let size = |t: Option<&&str>| -> Result<usize> {
                    match t.and_then(|t| t.parse::<usize>().ok()) {
                        Some(k) if (1..=64).contains(&k) => Ok(k),
                        _ => Err(bad(w, "expected a window size K in 1..=64")),
                    }
                };
                Ok(match f[0] {
                    "conv" => {
                        let k = size(f.get(1))?;
                        let padding = match f.get(2).copied() {
                            Some("same") => Padding::Same,
                            Some("valid") => Padding::Valid,
                            _ => return Err(bad(w, "expected conv:K:same or conv:K:valid")),
                        };
                        if f.len() > 3 {
                            return Err(bad(w, "expected conv:K:same or conv:K:valid"));
                        }
                        Layer::Conv { k, padding }
                    }
                    "avgpool" if f.len() == 2 => Layer::AvgPool { k: size(f.get(1))? },
                    "avgpool" => return Err(bad(w, "expected avgpool:K")),
                    "gap" | "flatten" | "dense" if f.len() > 1 => {
                        return Err(bad(w, "takes no arguments"))
                    }
                    "gap" => Layer::Gap,
                    "flatten" => Layer::Flatten,
                    "dense" => Layer::Dense,
                    "abrelu" if f.len() == 3 => {
                        Layer::Act(Activation::parse(&format!("abrelu({},{})", f[1], f[2]))?)
                    }
                    _ => Layer::Act(Activation::parse(w).map_err(|_| {
                        bad(
                            w,
                            "unknown layer; expected conv:K:same|valid, avgpool:K, gap, flatten, \
                             dense, relu, leaky_relu:α, abrelu:a:b, erf or identity",
                        )
                    })?),
                })
            })
            .collect()
    }

    /// The layer words back ([`Spec::parse_layers`] of it gives the same layers).
    pub fn layers_string(&self) -> String {
        let word = |l: &Layer| match l {
            Layer::Conv { k, padding } => format!(
                "conv:{k}:{}",
                if *padding == Padding::Same {
                    "same"
                } else {
                    "valid"
                }
            ),
            Layer::AvgPool { k } => format!("avgpool:{k}"),
            Layer::Gap => "gap".into(),
            Layer::Flatten => "flatten".into(),
            Layer::Dense => "dense".into(),
            Layer::Act(Activation::AbRelu { a, b }) => format!("abrelu:{a}:{b}"),
            Layer::Act(a) => a.name(),
        };
        self.layers.iter().map(word).collect::<Vec<_>>().join(",")
    }

    /// σ_w > 0 finite, σ_b ≥ 0 finite, activations valid, a width in the standard
    /// parameterization, at most 1000 layers.
    pub fn validate(&self) -> Result<()> {
        if !(self.sigma_w.is_finite() && self.sigma_w > 0.0) {
            return Err(Error::param(
                "sigma_w",
                self.sigma_w,
                "must be finite and > 0",
            ));
        }
        if let Some(b) = self.sigma_b {
            if !(b.is_finite() && b >= 0.0) {
                return Err(Error::param("sigma_b", b, "must be finite and >= 0"));
            }
        }
        if self.layers.is_empty() || self.layers.len() > 1000 {
            return Err(Error::param(
                "layers",
                self.layers.len(),
                "need 1..=1000 layers",
            ));
        }
        for l in &self.layers {
            if let Layer::Act(a) = l {
                a.validate()?;
            }
        }
        if self.parameterization == Parameterization::Standard && self.width == 0 {
            return Err(Error::param(
                "width",
                0,
                "the standard parameterization needs the channel width (--width N)",
            ));
        }
        Ok(())
    }

    /// The spatial size (H, W) after every layer for an H×W input, or the typed error for a
    /// VALID conv or a pool larger than its input, and for an architecture whose output is
    /// not one value per image (the last spatial size must be 1×1: end with `gap` or
    /// `flatten`, then optional dense layers).
    pub fn shapes(&self, h: usize, w: usize) -> Result<Vec<(usize, usize)>> {
        let mut s = (h, w);
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            let small = |k: usize, what: &str| {
                Error::param(
                    "layers",
                    format!("layer {} ({what}:{k}) on {}×{}", i + 1, s.0, s.1),
                    "spatial size too small for this window",
                )
            };
            s = match *l {
                Layer::Conv {
                    k,
                    padding: Padding::Valid,
                } => {
                    if s.0 < k || s.1 < k {
                        return Err(small(k, "conv"));
                    }
                    (s.0 - k + 1, s.1 - k + 1)
                }
                Layer::AvgPool { k } => {
                    if s.0 < k || s.1 < k {
                        return Err(small(k, "avgpool"));
                    }
                    (s.0 / k, s.1 / k)
                }
                Layer::Gap | Layer::Flatten => (1, 1),
                _ => s,
            };
            out.push(s);
        }
        if s != (1, 1) {
            return Err(Error::param(
                "layers",
                self.layers_string(),
                format!(
                    "the output is {}×{} per image, not one value: add gap or flatten before the readout",
                    s.0, s.1
                ),
            ));
        }
        Ok(out)
    }

    /// The fully-connected special case: `dense (φ dense)*` with one activation φ, as an
    /// [`Arch`] with L = number of activations (the FC kernels on the flattened 1×1 inputs).
    pub fn as_fc(&self) -> Option<Arch> {
        let mut act = None;
        for (i, l) in self.layers.iter().enumerate() {
            match (i % 2, l) {
                (0, Layer::Dense) => {}
                (1, Layer::Act(a)) if act.is_none_or(|b| b == *a) => act = Some(*a),
                _ => return None,
            }
        }
        if self.layers.len() % 2 == 0 || self.normalization != Normalization::Stax {
            return None;
        }
        let depth = self.layers.len() / 2;
        let arch = Arch::new(depth, act.unwrap_or(Activation::Identity))
            .with_sigma_w(self.sigma_w)
            .with_sigma_b(self.sigma_b)
            .with_parameterization(self.parameterization);
        Some(if self.parameterization == Parameterization::Standard {
            arch.with_width(self.width)
        } else {
            arch
        })
    }
}

/// Split at commas outside parentheses (`abrelu(a,b)` stays one word), trimmed, lower case.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0i32, String::new());
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth <= 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    out.push(cur);
    out.iter()
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}
