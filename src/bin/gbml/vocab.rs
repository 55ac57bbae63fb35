//! The CLI's one vocabulary for architecture flags, shared by the commands (and matching the
//! Python package's keywords, `python/gbml_testbed`):
//!
//! | flag | Python keyword | values |
//! |---|---|---|
//! | `--parameterization` (old `--param`, hidden alias) | `parameterization=` | `ntk` (default), `standard` |
//! | `--sigma-b` | `sigma_b=` | a number ≥ 0, or `none` (no bias; `gbml maml`'s old `--no-bias`) |
//! | `--inner-steps`, `--outer-steps` (old `--steps` of `gbml maml`) | `inner_steps=`, `outer_steps=` | counts |
//!
//! Without `--sigma-b`, `gbml kernel` and `gbml mnk` have no bias (Python: `sigma_b=None`);
//! `gbml maml` trains a finite network whose default is `--sigma-b 1`.

use gbml_testbed::kernel::{Parameterization, Spec};
use gbml_testbed::mnk::{BaseKernel, LayerKernel};
use gbml_testbed::{Error, Result};

/// `--parameterization ntk|standard` (case-insensitive; `std` is accepted for `standard`).
pub fn parameterization(s: &str) -> Result<Parameterization> {
    match s.to_ascii_lowercase().as_str() {
        "ntk" => Ok(Parameterization::Ntk),
        "standard" | "std" => Ok(Parameterization::Standard),
        other => Err(Error::param(
            "parameterization",
            other,
            "expected ntk or standard",
        )),
    }
}

/// A `--sigma-b` value: a bias scale, or `None` for no bias at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiasScale(pub Option<f64>);

/// clap value parser of `--sigma-b`: a number, or `none`.
pub fn bias_scale(s: &str) -> std::result::Result<BiasScale, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(BiasScale(None));
    }
    s.trim()
        .parse::<f64>()
        .map(|v| BiasScale(Some(v)))
        .map_err(|_| format!("expected a number or `none`, got {s:?}"))
}

/// The `--layers` base kernel (the words of `gbml kernel --layers`) on task input rows that are
/// images flattened in H, W, C order: `--image-shape` H,W,C if given, else `default_shape`; the
/// standard parameterization needs `--width`. Shared by `gbml mnk` and `gbml advise`.
pub fn layer_kernel(
    layers: &str,
    sigma_w: f64,
    sigma_b: Option<f64>,
    param: Parameterization,
    width: Option<usize>,
    image_shape: Option<&[usize]>,
    default_shape: (usize, usize, usize),
) -> Result<BaseKernel> {
    let mut spec = Spec::parse(layers)?
        .with_sigma_w(sigma_w)
        .with_sigma_b(sigma_b);
    if param == Parameterization::Standard {
        let w = width.ok_or_else(|| {
            Error::param(
                "width",
                "missing",
                "the standard parameterization needs --width",
            )
        })?;
        spec = spec.with_standard(w);
    }
    let shape = match image_shape {
        Some([h, w, c]) => (*h, *w, *c),
        Some(v) => {
            return Err(Error::param(
                "image-shape",
                format!("{v:?}"),
                "expected H,W,C",
            ))
        }
        None => default_shape,
    };
    let lk = LayerKernel { spec, shape };
    gbml_testbed::mnk::KernelFn::validate(&lk)?;
    Ok(BaseKernel::Function(std::sync::Arc::new(lk)))
}
