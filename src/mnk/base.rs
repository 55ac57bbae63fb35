//! The base kernel Θ the Meta Neural Kernel is built from (MATH.md §3), pluggable.
//!
//! * [`BaseKernel::Analytic`]: the infinite-width NTK (and NNGP) of a fully-connected network,
//!   computed by [`crate::kernel`] from the input coordinates.
//! * [`BaseKernel::Precomputed`]: a user-supplied Gram matrix over a fixed list of points. The
//!   task inputs are then **point indices**: every input row is a single column holding the
//!   integer index of the point in the precomputed matrix (d = 1). This lets any kernel (a
//!   convolutional NTK, an empirical NTK, a cosine-normalised kernel, ...) be plugged in.
//!
//! * [`BaseKernel::Function`]: any kernel function of the input coordinates ([`KernelFn`]), e.g.
//!   a convolutional NTK whose inputs are flattened images: the MNK, its cross kernel, the inner
//!   operator and the predictor only ever ask the base kernel for blocks K(X1, X2) and row blocks.
//!
//! [`Variant::Anil`] uses the NNGP kernel Σ as the *inner-loop* kernel (ANIL adapts only the
//! linear readout; in the NTK parameterization the readout layer's contribution to the NTK is
//! exactly Σ^{L+1}), while the outer (meta) Jacobian still involves all parameters, so the outer
//! kernel blocks stay the NTK Θ:
//! `J_F,i = J(X_i) − Σ(X_i, X'_i) T_i^Σ J(X'_i)`, `T_i^Σ = g(Σ(X'_i, X'_i))`, and
//! `Φ_ij = Θ_ij − A_i Θ(X'_i, X_j) − Θ(X_i, X'_j) A_jᵀ + A_i Θ(X'_i, X'_j) A_jᵀ` with
//! `A_i = Σ(X_i, X'_i) T_i^Σ`. The G term of the predictor uses the same A_i.

use crate::error::{Error, Result};
use crate::kernel::{self, Arch};
use ndarray::{Array2, ArrayView2};
use std::ops::Range;

/// The entries `g[i1[a], i2[b]]` of a precomputed matrix, checked for finiteness (a non-finite
/// entry is reported at its position in `g`).
fn pick(g: &Array2<f64>, i1: &[usize], i2: &[usize], what: &str) -> Result<Array2<f64>> {
    let mut out = Array2::zeros((i1.len(), i2.len()));
    for (mut row, &i) in out.rows_mut().into_iter().zip(i1) {
        let src = g.row(i);
        for (o, &j) in row.iter_mut().zip(i2) {
            *o = src[j];
        }
    }
    if !crate::linalg::all_finite(out.view()) {
        for (a, &i) in i1.iter().enumerate() {
            for (b, &j) in i2.iter().enumerate() {
                if !out[[a, b]].is_finite() {
                    return Err(Error::NonFinite {
                        context: what.to_string(),
                        location: format!("({i}, {j})"),
                        value: out[[a, b]],
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A kernel function's block must have the requested shape and finite entries.
fn check_block(k: &Array2<f64>, want: (usize, usize), what: &str) -> Result<()> {
    if k.dim() != want {
        return Err(Error::shape(
            format!("kernel function's {what} block"),
            format!("{}×{}", want.0, want.1),
            format!("{:?}", k.dim()),
        ));
    }
    crate::error::ensure_finite(k.view(), &format!("kernel function's {what} block"))
}

/// A kernel function's K(X, X) must be exactly symmetric (the Φ assembly reads only its upper
/// block triangle).
fn check_symmetric(k: &Array2<f64>, what: &str) -> Result<()> {
    for i in 0..k.nrows() {
        for j in 0..i {
            if k[[i, j]] != k[[j, i]] {
                return Err(Error::Unsupported(format!(
                    "kernel function's {what} K(X, X) is not exactly symmetric: \
                     K[{i}, {j}] = {:e} but K[{j}, {i}] = {:e}",
                    k[[i, j]],
                    k[[j, i]]
                )));
            }
        }
    }
    Ok(())
}

/// Which kernel adapts in the inner loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// MAML: all parameters adapt; inner kernel = outer kernel = NTK Θ.
    #[default]
    Maml,
    /// ANIL: only the readout adapts; inner kernel = NNGP Σ, outer kernel = NTK Θ.
    Anil,
}

/// A Gram matrix over a fixed point list, addressed by index (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Precomputed {
    /// The outer kernel Θ (P × P, symmetric).
    pub ntk: Array2<f64>,
    /// The ANIL inner kernel Σ (P × P, symmetric), if ANIL is used.
    pub nngp: Option<Array2<f64>>,
}

/// A base kernel given as a function of the input coordinates (points are rows).
///
/// Contract (what the MNK's guarantees rest on): `kernels(x1, None)` is K(X1, X1), exactly
/// symmetric; `kernels(x1[rows], Some(x1))` gives the same bits as those rows of
/// `kernels(x1, None)` (so `Mnk::phi_rows` shards stitch back to `Mnk::phi`); every returned
/// entry is finite or the call is an error. `nngp` is needed only by ANIL.
pub trait KernelFn: Send + Sync + std::fmt::Debug {
    /// Outer kernel Θ(X1, X2) and, if available, the NNGP Σ(X1, X2) (`None`: X2 = X1).
    fn kernels<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)>;
    /// Rows `rows` of K(X, X) (and of Σ), bit-identical to those rows of `kernels(x, None)`.
    /// The default evaluates `kernels(x[rows], Some(x))`; override it when the cross path of the
    /// kernel does not give the symmetric path's bits.
    fn kernels_rows(
        &self,
        x: ArrayView2<f64>,
        rows: Range<usize>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let xr = x.slice_move(ndarray::s![rows, ..]);
        self.kernels(xr, Some(x))
    }
    /// Check the description (called by [`BaseKernel::validate`]).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The base kernel.
#[derive(Clone, Debug)]
pub enum BaseKernel {
    /// Analytic infinite-width kernels of this architecture.
    Analytic(Arch),
    /// A precomputed Gram matrix; task inputs are point indices.
    Precomputed(Precomputed),
    /// Any kernel function of the input coordinates (shared, so the MNK stays cheap to clone).
    Function(std::sync::Arc<dyn KernelFn>),
}

impl PartialEq for BaseKernel {
    /// Architectures and matrices compare by value, kernel functions by identity.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (BaseKernel::Analytic(a), BaseKernel::Analytic(b)) => a == b,
            (BaseKernel::Precomputed(a), BaseKernel::Precomputed(b)) => a == b,
            (BaseKernel::Function(a), BaseKernel::Function(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Kernel blocks between two point lists: outer kernel Θ and (when available) the NNGP Σ.
#[derive(Clone, Debug)]
pub(crate) struct Blocks {
    pub ntk: Array2<f64>,
    pub nngp: Option<Array2<f64>>,
}

impl Blocks {
    /// The inner-loop kernel of `variant`.
    pub fn inner(&self, variant: Variant) -> Result<&Array2<f64>> {
        match variant {
            Variant::Maml => Ok(&self.ntk),
            Variant::Anil => self.nngp.as_ref().ok_or_else(|| {
                Error::Unsupported(
                    "ANIL needs the NNGP kernel; the precomputed kernel has none".into(),
                )
            }),
        }
    }
}

impl BaseKernel {
    /// Check the kernel description (architecture, or shapes of the precomputed matrices; their
    /// entries are checked for finiteness where they are used: [`BaseKernel::blocks`] checks
    /// every picked entry, and the Φ assembly checks its output, so no pass over the whole
    /// matrix is spent on unused entries).
    pub fn validate(&self) -> Result<()> {
        match self {
            BaseKernel::Analytic(a) => a.validate(),
            BaseKernel::Function(f) => f.validate(),
            BaseKernel::Precomputed(p) => {
                let n = p.ntk.nrows();
                if p.ntk.ncols() != n {
                    return Err(Error::shape(
                        "precomputed NTK",
                        "square",
                        format!("{:?}", p.ntk.dim()),
                    ));
                }
                if let Some(s) = &p.nngp {
                    if s.dim() != (n, n) {
                        return Err(Error::shape(
                            "precomputed NNGP",
                            format!("{n}×{n}"),
                            format!("{:?}", s.dim()),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn indices(&self, x: ArrayView2<f64>, what: &str) -> Result<Vec<usize>> {
        let BaseKernel::Precomputed(p) = self else {
            unreachable!()
        };
        if x.ncols() != 1 {
            return Err(Error::shape(
                format!("{what} (precomputed kernel: inputs are point indices)"),
                "d = 1",
                format!("d = {}", x.ncols()),
            ));
        }
        let n = p.ntk.nrows();
        x.column(0)
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < n {
                    Ok(v as usize)
                } else {
                    Err(Error::param(
                        "point index",
                        v,
                        format!("{what}: must be an integer in 0..{n} (precomputed kernel size)"),
                    ))
                }
            })
            .collect()
    }

    /// Blocks K(X1, X2) (`None`: K(X1, X1), exactly symmetric).
    pub(crate) fn blocks<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<Blocks> {
        match self {
            BaseKernel::Analytic(arch) => {
                let k = kernel::kernels(arch, x1, x2)?;
                Ok(Blocks {
                    ntk: k.ntk,
                    nngp: Some(k.nngp),
                })
            }
            BaseKernel::Function(f) => {
                let (ntk, nngp) = f.kernels(x1, x2)?;
                let want = (x1.nrows(), x2.map_or(x1.nrows(), |x| x.nrows()));
                for (k, what) in
                    std::iter::once((&ntk, "NTK")).chain(nngp.iter().map(|s| (s, "NNGP")))
                {
                    check_block(k, want, what)?;
                    if x2.is_none() {
                        check_symmetric(k, what)?;
                    }
                }
                Ok(Blocks { ntk, nngp })
            }
            BaseKernel::Precomputed(p) => {
                let i1 = self.indices(x1, "inputs")?;
                let i2 = match x2 {
                    Some(x2) => self.indices(x2, "inputs")?,
                    None => i1.clone(),
                };
                Ok(Blocks {
                    ntk: pick(&p.ntk, &i1, &i2, "precomputed NTK")?,
                    nngp: p
                        .nngp
                        .as_ref()
                        .map(|g| pick(g, &i1, &i2, "precomputed NNGP"))
                        .transpose()?,
                })
            }
        }
    }

    /// The outer kernel Θ(X, X) alone (the NNGP is not materialised): the same bits as
    /// `blocks(x, None).ntk`. A precomputed matrix addressed by the identity index list
    /// 0..P is borrowed, not copied (its finiteness is then checked by the caller's output
    /// check, see [`BaseKernel::validate`]).
    pub(crate) fn outer_gram<'k>(
        &'k self,
        x: ArrayView2<f64>,
    ) -> Result<std::borrow::Cow<'k, Array2<f64>>> {
        use std::borrow::Cow;
        match self {
            BaseKernel::Analytic(arch) => Ok(Cow::Owned(kernel::ntk(arch, x, None)?)),
            BaseKernel::Function(_) => Ok(Cow::Owned(self.blocks(x, None)?.ntk)),
            BaseKernel::Precomputed(p) => {
                let idx = self.indices(x, "inputs")?;
                if idx.len() == p.ntk.nrows() && idx.iter().enumerate().all(|(a, &i)| a == i) {
                    Ok(Cow::Borrowed(&p.ntk))
                } else {
                    Ok(Cow::Owned(pick(&p.ntk, &idx, &idx, "precomputed NTK")?))
                }
            }
        }
    }

    /// Rows `rows` of K(X, X): bit-identical to the same rows of `blocks(x, None)`.
    pub(crate) fn blocks_rows(&self, x: ArrayView2<f64>, rows: Range<usize>) -> Result<Blocks> {
        match self {
            BaseKernel::Analytic(arch) => {
                let k = kernel::kernels_rows(arch, x, rows)?;
                Ok(Blocks {
                    ntk: k.ntk,
                    nngp: Some(k.nngp),
                })
            }
            BaseKernel::Function(f) => {
                let want = (rows.len(), x.nrows());
                let (ntk, nngp) = f.kernels_rows(x, rows)?;
                for (k, what) in
                    std::iter::once((&ntk, "NTK")).chain(nngp.iter().map(|s| (s, "NNGP")))
                {
                    check_block(k, want, what)?;
                }
                Ok(Blocks { ntk, nngp })
            }
            BaseKernel::Precomputed(_) => {
                let xr = x.slice_move(ndarray::s![rows, ..]);
                self.blocks(xr, Some(x))
            }
        }
    }
}

/// A convolutional (or any layer-list) base kernel on task inputs whose rows are images
/// flattened in H, W, C order (row-major NHWC): each row is viewed as an (H, W, C) image and
/// the kernel is [`crate::kernel::conv::kernels`] of the [`crate::kernel::Spec`]. Use it as
/// `BaseKernel::Function(Arc::new(LayerKernel { .. }))`. An FC spec (`dense(,φ,dense)*`) is
/// evaluated by the FC kernels on the flattened rows (the analytic path's bits); row blocks are exact
/// (`conv::kernels` of a row slice gives the bits of those rows, as the conv module guarantees).
#[derive(Clone, Debug)]
pub struct LayerKernel {
    /// The architecture (layer list, σ_w, σ_b, parameterization, normalization).
    pub spec: crate::kernel::Spec,
    /// Image height, width, channels (H · W · C = d).
    pub shape: (usize, usize, usize),
}

impl LayerKernel {
    fn images<'a>(&self, x: ArrayView2<'a, f64>) -> Result<ndarray::ArrayView4<'a, f64>> {
        let (h, w, c) = self.shape;
        if x.ncols() != h * w * c {
            return Err(Error::shape(
                "task inputs (flattened images)",
                format!("d = H·W·C = {h}·{w}·{c} = {}", h * w * c),
                format!("d = {}", x.ncols()),
            ));
        }
        let m = x.nrows();
        if x.is_standard_layout() {
            return Ok(x.into_shape_with_order((m, h, w, c)).expect("checked size"));
        }
        Err(Error::Unsupported(
            "layer kernel: task inputs must be in standard (row-major) layout".into(),
        ))
    }
}

impl KernelFn for LayerKernel {
    fn kernels<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let a = self.images(x1)?;
        let b = x2.map(|x| self.images(x)).transpose()?;
        // The FC special case (`dense(,φ,dense)*`) goes through the FC kernels on the
        // flattened rows: the analytic path's bits.
        if let Some(arch) = self.spec.as_fc() {
            let k = kernel::kernels(&arch, x1, x2)?;
            return Ok((k.ntk, Some(k.nngp)));
        }
        let k = kernel::conv::kernels(&self.spec, a, b)?;
        Ok((k.ntk, Some(k.nngp)))
    }
    fn kernels_rows(
        &self,
        x: ArrayView2<f64>,
        rows: Range<usize>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        if let Some(arch) = self.spec.as_fc() {
            let k = kernel::kernels_rows(&arch, x, rows)?;
            return Ok((k.ntk, Some(k.nngp)));
        }
        let k = kernel::conv::kernels_rows(&self.spec, self.images(x)?, None, rows)?;
        Ok((k.ntk, Some(k.nngp)))
    }
    fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        self.spec.shapes(self.shape.0, self.shape.1).map(|_| ())
    }
}
