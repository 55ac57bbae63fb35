//! The exchange manifest (`docs/FORMAT.md`, JSON Schema `docs/schema/manifest.schema.json`).
//!
//! A manifest names one quantity, its inputs (`.npy` files, paths relative to the manifest), the
//! candidate's output (`.npy`) and every convention needed to recompute the quantity:
//!
//! ```json
//! { "format": "gbml-exchange", "version": 1, "implementation": "my-ntk 0.1",
//!   "quantity": "ntk", "inputs": { "x1": "x.npy" }, "output": "ntk.npy",
//!   "conventions": { "parameterization": "ntk", "sigma_w": 1.0, "sigma_b": null,
//!                    "depth": 2, "activation": "relu", "widths": null } }
//! ```
//!
//! Parsing is strict: unknown fields and missing required fields are [`Error::Parse`] errors
//! naming the field; fields that may be "nothing" (`sigma_b`, `widths`) must be written as
//! `null`, never omitted. The meta-learning fields of the conventions block (`loss`, `inner`,
//! `outer`, `layout`, `f0`) may be omitted for the kernel quantities and are required (the error
//! names `conventions.<field>`) for quantities that depend on them.

use crate::error::{Error, Result};
use crate::kernel::{Activation, Arch, Parameterization, Spec};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The value of the `format` field.
pub const FORMAT_NAME: &str = "gbml-exchange";
/// The only manifest version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A quantity that can be exchanged and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// NNGP Gram matrix Σ^{L+1}(X1, X2) (MATH.md §1).
    Nngp,
    /// NTK Gram matrix Θ^{L+1}(X1, X2) (MATH.md §1).
    Ntk,
    /// Meta Neural Kernel Φ on the training tasks, Nn × Nn (MATH.md §3).
    MnkGram,
    /// Cross kernel Φ(test tasks, training tasks) (MATH.md §3).
    MnkCross,
    /// Inner-loop operator T of one support set, m × m (MATH.md §2).
    InnerOperatorT,
    /// Kernel-regression meta-predictions on test tasks (MATH.md §5).
    Predictions,
    /// Meta-gradient ∇_θ L of a finite network (MATH.md §4).
    MetaGradient,
    /// Meta-loss after each outer step (MATH.md §4).
    MetaLossTrajectory,
    /// Data-dependent complexity C = √(Ỹᵀ Φ⁻¹ Ỹ / N) (MATH.md §7).
    Complexity,
}

impl Quantity {
    /// Every quantity, in manifest order.
    pub const ALL: [Quantity; 9] = [
        Quantity::Nngp,
        Quantity::Ntk,
        Quantity::MnkGram,
        Quantity::MnkCross,
        Quantity::InnerOperatorT,
        Quantity::Predictions,
        Quantity::MetaGradient,
        Quantity::MetaLossTrajectory,
        Quantity::Complexity,
    ];

    /// The name used in manifests and tolerance files.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Nngp => "nngp",
            Quantity::Ntk => "ntk",
            Quantity::MnkGram => "mnk_gram",
            Quantity::MnkCross => "mnk_cross",
            Quantity::InnerOperatorT => "inner_operator_t",
            Quantity::Predictions => "predictions",
            Quantity::MetaGradient => "meta_gradient",
            Quantity::MetaLossTrajectory => "meta_loss_trajectory",
            Quantity::Complexity => "complexity",
        }
    }

    /// Whether the quantity depends on the meta-learning conventions (loss, loops, layout, f0).
    pub fn is_meta(self) -> bool {
        !matches!(self, Quantity::Nngp | Quantity::Ntk)
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Loss normalisation: the project's convention is `sum` (½‖f − y‖²); `mean` divides by the
/// number of label entries (neural-tangents' `predict`), i.e. scales time by 1/`y.size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossNorm {
    Sum,
    Mean,
}

/// Where a ridge ρ applies: only in the inverse (the authors' code:
/// `(Θ + ρI)⁻¹ (I − e^{−sΘ})`) or in both the inverse and the exponent
/// (`(Θ + ρI)⁻¹ (I − e^{−s(Θ + ρI)})`, gradient descent on Θ + ρI). Irrelevant for infinite time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RidgeMode {
    InverseOnly,
    InverseAndExponent,
}

impl RidgeMode {
    /// The library's ridge mode.
    pub fn to_mnk(self) -> crate::mnk::RidgeMode {
        match self {
            RidgeMode::InverseOnly => crate::mnk::RidgeMode::InverseOnly,
            RidgeMode::InverseAndExponent => crate::mnk::RidgeMode::Both,
        }
    }
}

/// An inner or outer loop (every field required; write `"ridge": 0` for none).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loop {
    /// `steps` steps of gradient descent at rate `lr` (λ, τ inner; η, t outer).
    Steps {
        lr: f64,
        steps: usize,
        ridge: f64,
        ridge_mode: RidgeMode,
    },
    /// Gradient flow for time `time` (= λτ or ηt).
    Flow {
        time: f64,
        ridge: f64,
        ridge_mode: RidgeMode,
    },
    /// Infinite time: `(K + ρI)⁻¹`.
    Infinite { ridge: f64, ridge_mode: RidgeMode },
}

impl Loop {
    /// The ridge ρ.
    pub fn ridge(&self) -> f64 {
        match *self {
            Loop::Steps { ridge, .. } | Loop::Flow { ridge, .. } | Loop::Infinite { ridge, .. } => {
                ridge
            }
        }
    }

    /// The library schedule, with the rate / time multiplied by `scale` (1 for sum losses,
    /// 1/`y.size` for mean losses).
    pub fn schedule(&self, scale: f64) -> crate::mnk::Schedule {
        use crate::mnk::Schedule;
        match *self {
            Loop::Steps {
                lr,
                steps,
                ridge,
                ridge_mode,
            } => Schedule::steps(lr * scale, steps).with_ridge(ridge, ridge_mode.to_mnk()),
            Loop::Flow {
                time,
                ridge,
                ridge_mode,
            } => Schedule::flow(time * scale).with_ridge(ridge, ridge_mode.to_mnk()),
            Loop::Infinite { ridge, ridge_mode } => {
                Schedule::infinite().with_ridge(ridge, ridge_mode.to_mnk())
            }
        }
    }

    /// Validate the numbers of the loop (`name` is `conventions.inner` or `conventions.outer`).
    pub fn validate(&self, name: &str) -> Result<()> {
        let ridge = self.ridge();
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::param(
                format!("{name}.ridge"),
                ridge,
                "must be finite and >= 0",
            ));
        }
        match *self {
            Loop::Steps { lr, .. } => {
                if !(lr.is_finite() && lr >= 0.0) {
                    return Err(Error::param(
                        format!("{name}.lr"),
                        lr,
                        "must be finite and >= 0",
                    ));
                }
            }
            Loop::Flow { time, .. } => {
                if !(time.is_finite() && time >= 0.0) {
                    return Err(Error::param(
                        format!("{name}.time"),
                        time,
                        "must be finite and >= 0",
                    ));
                }
            }
            Loop::Infinite { .. } => {}
        }
        Ok(())
    }
}

/// Sizes of every task in a stacked task-set array: `support` points m and `query` points n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskShape {
    pub support: usize,
    pub query: usize,
}

/// Order of the stacked points of a task set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Task by task, support before query: `[X'_1; X_1; X'_2; X_2; …]`.
    PerTask,
    /// All query sets first, then all support sets (MetaNTK-NAS code):
    /// `[X_1; …; X_N; X'_1; …; X'_N]`.
    QueriesFirst,
}

/// The network output at initialization used by the predictor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum F0 {
    /// f₀ ≡ 0 (centred network, the authors' code).
    Zero,
    /// f₀ given by the `f0_*` input files.
    File,
}

/// Deserialize a nullable field that must be present (`null` is allowed, omission is not).
fn required_nullable<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// The conventions block as written in the file: `depth` and `activation` are required for a
/// fully-connected net and must be omitted when `layers` describes the architecture (see
/// [`Conventions`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConventionsFile {
    parameterization: Parameterization,
    sigma_w: f64,
    #[serde(deserialize_with = "required_nullable")]
    sigma_b: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    depth: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation: Option<String>,
    #[serde(deserialize_with = "required_nullable")]
    widths: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    normalization: Option<ConvNormalization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loss: Option<LossNorm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inner: Option<Loop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outer: Option<Loop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<Layout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f0: Option<F0>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_shape: Option<TaskShape>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<crate::mnk::Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<crate::maml::Order>,
}

/// The conv-kernel normalization of a `layers` architecture (`stax`, the default, or `arora`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvNormalization {
    /// neural-tangents' `stax` conventions (MATH.md §10).
    Stax,
    /// Arora et al.'s CNTK code: no 1/C on the input kernel, Θ before the readout term.
    Arora,
}

impl ConvNormalization {
    /// The kernel library's value.
    pub fn to_kernel(self) -> crate::kernel::Normalization {
        match self {
            ConvNormalization::Stax => crate::kernel::Normalization::Stax,
            ConvNormalization::Arora => crate::kernel::Normalization::Arora,
        }
    }
}

impl TryFrom<ConventionsFile> for Conventions {
    type Error = String;
    fn try_from(f: ConventionsFile) -> std::result::Result<Self, String> {
        let (depth, activation) = match (&f.layers, f.depth, f.activation) {
            (None, Some(d), Some(a)) => (d, a),
            (None, None, _) => return Err("missing field `depth`".into()),
            (None, _, None) => return Err("missing field `activation`".into()),
            (Some(_), None, None) => (0, String::new()),
            (Some(_), _, _) => {
                return Err(
                    "fields `depth` and `activation` must be omitted when `layers` \
                            describes the architecture"
                        .into(),
                )
            }
        };
        if f.normalization.is_some() && f.layers.is_none() {
            return Err(
                "field `normalization` needs `layers` (it is a conv-kernel convention)".into(),
            );
        }
        Ok(Conventions {
            parameterization: f.parameterization,
            sigma_w: f.sigma_w,
            sigma_b: f.sigma_b,
            depth,
            activation,
            widths: f.widths,
            layers: f.layers,
            normalization: f.normalization,
            loss: f.loss,
            inner: f.inner,
            outer: f.outer,
            layout: f.layout,
            f0: f.f0,
            task_shape: f.task_shape,
            variant: f.variant,
            order: f.order,
            // Never read from a file: only the diagnosis sets it (an alternative, not an input).
            relu_prime_zero_half: false,
        })
    }
}

impl From<Conventions> for ConventionsFile {
    fn from(c: Conventions) -> Self {
        let fc = c.layers.is_none();
        ConventionsFile {
            parameterization: c.parameterization,
            sigma_w: c.sigma_w,
            sigma_b: c.sigma_b,
            depth: fc.then_some(c.depth),
            activation: fc.then_some(c.activation),
            widths: c.widths,
            layers: c.layers,
            normalization: c.normalization,
            loss: c.loss,
            inner: c.inner,
            outer: c.outer,
            layout: c.layout,
            f0: c.f0,
            task_shape: c.task_shape,
            variant: c.variant,
            order: c.order,
        }
    }
}

/// The conventions block. A fully-connected net is described by `depth` and `activation`; a
/// convolutional one by `layers` (the layer-spec string of `gbml kernel --layers`, e.g.
/// `conv:3:same,relu,gap,dense`) and optionally `normalization`, with `depth` and `activation`
/// omitted from the file (here they are then 0 and empty, and unused).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConventionsFile", into = "ConventionsFile")]
pub struct Conventions {
    /// `ntk` or `standard`.
    pub parameterization: Parameterization,
    /// σ_w > 0.
    pub sigma_w: f64,
    /// σ_b ≥ 0, or `null` for no bias at all (a bias with σ_b = 0 is not the same in the standard
    /// parameterization).
    pub sigma_b: Option<f64>,
    /// Number of hidden layers L.
    pub depth: usize,
    /// `relu`, `erf`, `identity`, `leaky_relu(α)`, `abrelu(a,b)`.
    pub activation: String,
    /// Hidden widths (required by the standard parameterization), or `null`; with `layers`, one
    /// width N (the channels of every conv and units of every hidden dense).
    pub widths: Option<Vec<usize>>,
    /// The conv architecture (layer-spec string), or absent for a fully-connected net.
    pub layers: Option<String>,
    /// Conv-kernel normalization (only with `layers`; absent = `stax`).
    pub normalization: Option<ConvNormalization>,
    /// Loss normalisation (meta quantities).
    pub loss: Option<LossNorm>,
    /// Inner loop (meta quantities).
    pub inner: Option<Loop>,
    /// Outer loop (predictions, trajectories).
    pub outer: Option<Loop>,
    /// Layout of stacked task sets (meta quantities).
    pub layout: Option<Layout>,
    /// f₀ (predictions).
    pub f0: Option<F0>,
    /// Sizes of each task in the stacked `x`/`y` arrays (task-set quantities).
    pub task_shape: Option<TaskShape>,
    /// `maml` (default when omitted) or `anil` (inner loop adapts the readout only: inner kernel
    /// = NNGP).
    pub variant: Option<crate::mnk::Variant>,
    /// `second` (default when omitted: exact MAML) or `first` (first-order MAML); for
    /// `meta_gradient` and `meta_loss_trajectory`.
    pub order: Option<crate::maml::Order>,
    /// Not a manifest field (a manifest naming it is rejected): the finite network's ReLU'(0) is
    /// 0 (docs/FORMAT.md). The diagnosis sets this to recompute a finite-network quantity with
    /// ReLU'(0) = ½ ([`crate::net::NetActivation::ReluHalfAtZero`], neural-tangents' `stax.Relu`).
    #[serde(skip)]
    pub relu_prime_zero_half: bool,
}

impl Conventions {
    /// Kernel conventions only (no meta-learning fields).
    pub fn from_arch(arch: &Arch) -> Self {
        Conventions {
            parameterization: arch.parameterization,
            sigma_w: arch.sigma_w,
            sigma_b: arch.sigma_b,
            depth: arch.depth,
            activation: arch.activation.name(),
            widths: if arch.widths.is_empty() {
                None
            } else {
                Some(arch.widths.clone())
            },
            layers: None,
            normalization: None,
            loss: None,
            inner: None,
            outer: None,
            layout: None,
            f0: None,
            task_shape: None,
            variant: None,
            order: None,
            relu_prime_zero_half: false,
        }
    }

    /// Kernel conventions of a conv architecture (no meta-learning fields).
    pub fn from_spec(spec: &Spec) -> Self {
        let mut c = Conventions::from_arch(&Arch::new(0, Activation::Identity));
        c.parameterization = spec.parameterization;
        c.sigma_w = spec.sigma_w;
        c.sigma_b = spec.sigma_b;
        c.activation = String::new();
        c.widths = (spec.parameterization == Parameterization::Standard).then(|| vec![spec.width]);
        c.layers = Some(spec.layers_string());
        c.normalization = match spec.normalization {
            crate::kernel::Normalization::Stax => None,
            crate::kernel::Normalization::Arora => Some(ConvNormalization::Arora),
        };
        c
    }

    /// The conv architecture of `layers` (validated), or `None` for a fully-connected net.
    pub fn spec(&self) -> Result<Option<Spec>> {
        let Some(layers) = &self.layers else {
            return Ok(None);
        };
        let mut spec = Spec::parse(layers)?
            .with_sigma_w(self.sigma_w)
            .with_sigma_b(self.sigma_b)
            .with_normalization(self.normalization.map_or(
                crate::kernel::Normalization::Stax,
                ConvNormalization::to_kernel,
            ));
        match (self.parameterization, self.widths.as_deref()) {
            (Parameterization::Standard, Some([n])) => spec = spec.with_standard(*n),
            (Parameterization::Ntk, None) => {}
            (_, w) => {
                return Err(Error::param(
                    "conventions.widths",
                    format!("{w:?}"),
                    "with `layers`: [N] (one channel width) for the standard parameterization, \
                     null for ntk",
                ))
            }
        }
        spec.validate()?;
        Ok(Some(spec))
    }

    /// The architecture these conventions describe (validated): the fully-connected net of
    /// `depth`/`activation`, or of `layers` when that spec is a fully-connected one (`Spec::as_fc`);
    /// a conv `layers` spec is [`Error::Unsupported`] here (use [`Conventions::spec`]).
    pub fn arch(&self) -> Result<Arch> {
        if let Some(spec) = self.spec()? {
            return spec.as_fc().ok_or_else(|| {
                Error::Unsupported(format!(
                    "a convolutional architecture (`conventions.layers` = {:?}) for this quantity",
                    self.layers.as_deref().unwrap_or("")
                ))
            });
        }
        let act = Activation::parse(&self.activation)?;
        let arch = Arch::new(self.depth, act)
            .with_sigma_w(self.sigma_w)
            .with_sigma_b(self.sigma_b)
            .with_parameterization(self.parameterization)
            .with_widths(self.widths.clone().unwrap_or_default());
        arch.validate()?;
        Ok(arch)
    }

    fn missing(field: &str, q: Quantity) -> Error {
        Error::Parse {
            what: "manifest".into(),
            path: String::new(),
            reason: format!("missing field `conventions.{field}` (required for quantity `{q}`)"),
        }
    }

    /// Loss normalisation, required.
    pub fn loss_for(&self, q: Quantity) -> Result<LossNorm> {
        self.loss.ok_or_else(|| Self::missing("loss", q))
    }
    /// Inner loop, required.
    pub fn inner_for(&self, q: Quantity) -> Result<Loop> {
        self.inner.ok_or_else(|| Self::missing("inner", q))
    }
    /// Outer loop, required.
    pub fn outer_for(&self, q: Quantity) -> Result<Loop> {
        self.outer.ok_or_else(|| Self::missing("outer", q))
    }
    /// Layout, required.
    pub fn layout_for(&self, q: Quantity) -> Result<Layout> {
        self.layout.ok_or_else(|| Self::missing("layout", q))
    }
    /// Task shape, required.
    pub fn task_shape_for(&self, q: Quantity) -> Result<TaskShape> {
        self.task_shape
            .ok_or_else(|| Self::missing("task_shape", q))
    }
    /// f₀, required.
    pub fn f0_for(&self, q: Quantity) -> Result<F0> {
        self.f0.ok_or_else(|| Self::missing("f0", q))
    }
}

/// A parsed manifest. See the module docs and `docs/FORMAT.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `"gbml-exchange"`.
    pub format: String,
    /// Always 1.
    pub version: u32,
    /// Free text naming the implementation that produced `output` (e.g. `neural-tangents 0.6.5`).
    pub implementation: String,
    /// The quantity.
    pub quantity: Quantity,
    /// Input arrays: role name → `.npy` path relative to the manifest.
    pub inputs: BTreeMap<String, String>,
    /// The candidate's output `.npy`, relative to the manifest.
    pub output: String,
    /// Conventions.
    pub conventions: Conventions,
    /// Digits certified by the producer (conformance packs), or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certified_digits: Option<f64>,
    /// Free-text notes, or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The input roles each quantity requires and accepts (required, optional).
pub fn input_roles(q: Quantity) -> (&'static [&'static str], &'static [&'static str]) {
    match q {
        Quantity::Nngp | Quantity::Ntk => (&["x1"], &["x2"]),
        Quantity::InnerOperatorT => (&["x_support", "y_support"], &[]),
        Quantity::MnkGram | Quantity::Complexity => (&["x", "y"], &[]),
        Quantity::MnkCross => (&["x", "y", "test_x", "test_y"], &[]),
        Quantity::Predictions => (&["x", "y", "test_x", "test_y"], &["f0", "test_f0"]),
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => (&["params", "x", "y"], &[]),
    }
}

impl Manifest {
    /// A manifest with the current format name and version.
    pub fn new(
        implementation: impl Into<String>,
        quantity: Quantity,
        inputs: BTreeMap<String, String>,
        output: impl Into<String>,
        conventions: Conventions,
    ) -> Self {
        Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            implementation: implementation.into(),
            quantity,
            inputs,
            output: output.into(),
            conventions,
            certified_digits: None,
            notes: None,
        }
    }

    /// Parse and validate manifest text; `path` is only used in error messages.
    pub fn parse_str(text: &str, path: &str) -> Result<Self> {
        let parse_err = |reason: String| Error::Parse {
            what: "manifest".into(),
            path: path.to_string(),
            reason,
        };
        let m: Manifest = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        m.validate().map_err(|e| match e {
            Error::Parse { what, reason, .. } => Error::Parse {
                what,
                path: path.to_string(),
                reason,
            },
            other => other,
        })?;
        Ok(m)
    }

    /// Read, parse and validate a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_str(&text, &path.display().to_string())
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }

    /// Write the manifest as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json() + "\n").map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Semantic checks after parsing: format and version, input roles, conventions.
    pub fn validate(&self) -> Result<()> {
        let perr = |reason: String| Error::Parse {
            what: "manifest".into(),
            path: String::new(),
            reason,
        };
        if self.format != FORMAT_NAME {
            return Err(perr(format!(
                "field `format` is {:?}, expected {FORMAT_NAME:?}",
                self.format
            )));
        }
        if self.version != FORMAT_VERSION {
            return Err(perr(format!(
                "field `version` is {}, this build reads version {FORMAT_VERSION}",
                self.version
            )));
        }
        let (req, opt) = input_roles(self.quantity);
        for r in req {
            if !self.inputs.contains_key(*r) {
                return Err(perr(format!(
                    "missing field `inputs.{r}` (required for quantity `{}`)",
                    self.quantity
                )));
            }
        }
        for k in self.inputs.keys() {
            if !req.contains(&k.as_str()) && !opt.contains(&k.as_str()) {
                return Err(perr(format!(
                    "unknown field `inputs.{k}` for quantity `{}`, expected one of {:?}",
                    self.quantity,
                    req.iter().chain(opt.iter()).collect::<Vec<_>>()
                )));
            }
        }
        for (k, v) in self
            .inputs
            .iter()
            .map(|(k, v)| (format!("inputs.{k}"), v))
            .chain([("output".to_string(), &self.output)])
        {
            if v.is_empty() {
                return Err(perr(format!("field `{k}` is an empty path")));
            }
        }
        if let Some(c) = self.certified_digits {
            if !(c.is_finite() && (0.0..=16.0).contains(&c)) {
                return Err(perr(format!(
                    "field `certified_digits` is {c}, expected a number in [0, 16]"
                )));
            }
        }
        let c = &self.conventions;
        let q = self.quantity;
        match c.spec()? {
            Some(spec) if q.is_meta() && spec.as_fc().is_none() => {
                return Err(Error::Unsupported(format!(
                    "a convolutional architecture (`conventions.layers`) for quantity `{q}` \
                     (conv manifests describe the kernel quantities `nngp` and `ntk`)"
                )))
            }
            Some(_) => {}
            None => {
                c.arch()?;
            }
        }
        if q.is_meta() {
            c.loss_for(q)?;
            if q != Quantity::InnerOperatorT {
                c.layout_for(q)?;
                let ts = c.task_shape_for(q)?;
                if ts.support == 0 || ts.query == 0 {
                    return Err(Error::Empty(format!(
                        "`conventions.task_shape` has support = {}, query = {}: both must be >= 1",
                        ts.support, ts.query
                    )));
                }
            }
            let inner = c.inner_for(q)?;
            inner.validate("conventions.inner")?;
            if matches!(q, Quantity::MetaGradient | Quantity::MetaLossTrajectory)
                && !matches!(c.inner_for(q)?, Loop::Steps { .. })
            {
                return Err(Error::Unsupported(format!(
                    "quantity `{q}` needs a discrete inner loop (`conventions.inner.kind` = \"steps\")"
                )));
            }
            if q == Quantity::MetaLossTrajectory && !matches!(c.outer_for(q)?, Loop::Steps { .. }) {
                return Err(Error::Unsupported(format!(
                    "quantity `{q}` needs a discrete outer loop (`conventions.outer.kind` = \"steps\")"
                )));
            }
            if matches!(q, Quantity::Predictions | Quantity::MetaLossTrajectory) {
                c.outer_for(q)?.validate("conventions.outer")?;
            }
            if q == Quantity::Predictions {
                let f0 = c.f0_for(q)?;
                let has_f0 = self.inputs.contains_key("f0") && self.inputs.contains_key("test_f0");
                if f0 == F0::File && !has_f0 {
                    return Err(perr(
                        "`conventions.f0` is \"file\" but `inputs.f0` and `inputs.test_f0` are not both given".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolve a path of the manifest relative to the manifest's directory.
    pub fn resolve(base: &Path, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    }
}
