//! Our reference value of a manifest's quantity under the manifest's conventions, used by
//! [`super::compare`] (the verdict) and [`super::diagnose`] (the same computation under
//! alternative conventions). Also the stacked task-set layout helpers ([`unstack`], [`task_set`]).

use super::manifest::{Layout, Loop, LossNorm, Manifest, Quantity, TaskShape, F0};
use crate::error::{Error, Result};
use crate::kernel;
use crate::mnk::{self, BaseKernel, Mnk, Task, TaskSet, Variant};
use ndarray::{s, Array2, Array4, ArrayD, ArrayView2, Ix2};
use std::collections::BTreeMap;

/// Input arrays by role, as read from a manifest.
pub type Inputs = BTreeMap<String, ArrayD<f64>>;

/// Fetch an input as a matrix.
pub fn input2<'a>(inputs: &'a Inputs, role: &str) -> Result<ndarray::ArrayView2<'a, f64>> {
    let a = inputs
        .get(role)
        .ok_or_else(|| Error::Empty(format!("input `{role}` is missing")))?;
    a.view().into_dimensionality::<Ix2>().map_err(|_| {
        Error::shape(
            format!("input `{role}`"),
            "a 2-D array (points are rows)",
            format!("shape {:?}", a.shape()),
        )
    })
}

/// The arithmetic of a reference computation: [`Precision::F64`] is the fast library path,
/// [`Precision::Extended`] the double-double path of [`crate::xprec`] (faithful f64 results) for
/// the kernels, T, Φ, Φ×, predictions and C; the finite-network quantities have no extended path
/// and use f64 either way.
pub use crate::xprec::Precision;

/// Our most accurate reference value of the manifest's quantity on the given inputs
/// ([`Precision::Extended`]).
pub fn reference(m: &Manifest, inputs: &Inputs) -> Result<ArrayD<f64>> {
    reference_with(m, inputs, Precision::Extended)
}

/// Our reference value of the manifest's quantity on the given inputs, in `precision`.
pub fn reference_with(m: &Manifest, inputs: &Inputs, precision: Precision) -> Result<ArrayD<f64>> {
    if let Some(k) = conv_kernels(m, inputs, precision)? {
        return Ok(k.into_dyn());
    }
    let arch = m.conventions.arch()?;
    let ext = precision == Precision::Extended;
    match m.quantity {
        Quantity::Nngp | Quantity::Ntk => {
            let x1 = input2(inputs, "x1")?;
            let x2 = match inputs.get("x2") {
                Some(_) => Some(input2(inputs, "x2")?),
                None => None,
            };
            let k = if ext {
                crate::xprec::kernels(&arch, x1, x2)?
            } else {
                kernel::kernels(&arch, x1, x2)?
            };
            let out = if m.quantity == Quantity::Nngp {
                k.nngp
            } else {
                k.ntk
            };
            Ok(out.into_dyn())
        }
        Quantity::InnerOperatorT => {
            let xs = input2(inputs, "x_support")?;
            let ys = input2(inputs, "y_support")?;
            if ys.nrows() != xs.nrows() {
                return Err(Error::shape(
                    "input `y_support`",
                    format!("{} rows (one per support point)", xs.nrows()),
                    format!("{} rows", ys.nrows()),
                ));
            }
            let c = &m.conventions;
            let scale = loss_scale(c.loss_for(m.quantity)?, ys.len());
            let sched = c.inner_for(m.quantity)?.schedule(scale);
            if ext {
                return extended_t(&arch, xs, ys, sched, c.variant.unwrap_or_default());
            }
            let k = kernel::kernels(&arch, xs, None)?;
            let theta = match c.variant.unwrap_or_default() {
                Variant::Maml => k.ntk,
                Variant::Anil => k.nngp,
            };
            Ok(mnk::inner_operator(theta.view(), &sched)?.into_dyn())
        }
        Quantity::MnkGram | Quantity::MnkCross | Quantity::Predictions | Quantity::Complexity => {
            meta_reference(m, inputs, arch, ext)
        }
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => maml_reference(m, inputs, arch),
    }
}

/// An NHWC image stack (M, H, W, C) from a 4-D array; a matrix (M, d) is M images 1×1×d. The
/// one reader of conv-kernel inputs (manifests, `gbml kernel --layers`, the Python package).
pub fn images(a: ndarray::ArrayViewD<f64>, what: &str) -> Result<Array4<f64>> {
    let sh = a.shape();
    let s4 = match *sh {
        [m, h, w, c] => (m, h, w, c),
        [m, d] => (m, 1, 1, d),
        _ => {
            return Err(Error::shape(
                what.to_string(),
                "(M, H, W, C) NHWC images, or (M, d)",
                format!("shape {sh:?}"),
            ))
        }
    };
    Array4::from_shape_vec(s4, a.iter().copied().collect())
        .map_err(|e| Error::shape(what.to_string(), "NHWC", e))
}

/// Fetch an input as an NHWC image stack ([`images`]).
pub fn input4(inputs: &Inputs, role: &str) -> Result<Array4<f64>> {
    let a = inputs
        .get(role)
        .ok_or_else(|| Error::Empty(format!("input `{role}` is missing")))?;
    images(a.view(), &format!("input `{role}`"))
}

/// The NNGP or NTK Gram of a manifest whose conventions give `layers` (the conv kernels of
/// [`kernel::conv`] in f64, or of [`crate::xprec::conv_kernels`] in double-double for
/// [`Precision::Extended`]), or `None` when the manifest describes a fully-connected net by
/// `depth`/`activation` or its quantity is not a kernel.
pub fn conv_kernels(
    m: &Manifest,
    inputs: &Inputs,
    precision: Precision,
) -> Result<Option<Array2<f64>>> {
    let ntk = match m.quantity {
        Quantity::Nngp => false,
        Quantity::Ntk => true,
        _ => return Ok(None),
    };
    let Some(spec) = m.conventions.spec()? else {
        return Ok(None);
    };
    let x1 = input4(inputs, "x1")?;
    let x2 = inputs.get("x2").map(|_| input4(inputs, "x2")).transpose()?;
    let x2v = x2.as_ref().map(|x| x.view());
    let k = match precision {
        Precision::Extended => crate::xprec::conv_kernels(&spec, x1.view(), x2v)?,
        Precision::F64 => kernel::conv::kernels(&spec, x1.view(), x2v)?,
    };
    Ok(Some(if ntk { k.ntk } else { k.nngp }))
}

/// T of one support set in double-double (through a one-task set whose query is the first
/// support point: [`crate::xprec::inner_operators`] takes task sets).
fn extended_t(
    arch: &crate::kernel::Arch,
    xs: ArrayView2<f64>,
    ys: ArrayView2<f64>,
    sched: mnk::Schedule,
    variant: Variant,
) -> Result<ArrayD<f64>> {
    let task = Task::new(
        xs.to_owned(),
        ys.to_owned(),
        xs.slice(s![0..1, ..]).to_owned(),
        ys.slice(s![0..1, ..]).to_owned(),
    )?;
    let set = TaskSet::new(vec![task])?;
    let mk = Mnk::new(BaseKernel::Analytic(arch.clone()), sched).with_variant(variant);
    let mut ts = crate::xprec::inner_operators(&mk, &set)?;
    Ok(ts.remove(0).into_dyn())
}

/// The manifest's layout, task shape and loss normalisation for its quantity, and the training
/// task set read from the `x`, `y` inputs in that layout.
pub(crate) fn training_tasks(
    m: &Manifest,
    inputs: &Inputs,
) -> Result<(Layout, TaskShape, LossNorm, TaskSet)> {
    let q = m.quantity;
    let c = &m.conventions;
    let layout = c.layout_for(q)?;
    let shape = c.task_shape_for(q)?;
    let loss = c.loss_for(q)?;
    let set = task_set(
        input2(inputs, "x")?,
        input2(inputs, "y")?,
        layout,
        shape,
        "x",
    )?;
    Ok((layout, shape, loss, set))
}

/// References of the finite-network quantities: the exact (or first-order) MAML meta-gradient
/// at `params` (flat θ in the order of [`crate::net::Mlp`]: per layer W (row-major, n_out × n_in)
/// then b), and the meta-loss after each of `outer.steps` full-batch outer steps from `params`.
/// Losses are sums (½‖·‖²); `loss: mean` divides the inner loss by m·k and the meta-loss by N·n·k.
fn maml_reference(m: &Manifest, inputs: &Inputs, arch: crate::kernel::Arch) -> Result<ArrayD<f64>> {
    use crate::maml::{self, Adapt, MamlConfig, TrainConfig};
    use crate::net::NetActivation;
    let q = m.quantity;
    let c = &m.conventions;
    let (_layout, shape, loss, set) = training_tasks(m, inputs)?;
    let k = set.k();
    let theta = inputs
        .get("params")
        .ok_or_else(|| Error::Empty("input `params` is missing".into()))?
        .view()
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| Error::shape("input `params`", "a 1-D array (flat θ)", "more dimensions"))?
        .to_owned();
    let mut mlp = crate::net::Mlp::new(&arch, set.d(), k)?;
    if c.relu_prime_zero_half && mlp.activation == NetActivation::Relu {
        mlp.activation = NetActivation::ReluHalfAtZero;
    }
    let Loop::Steps { lr, steps, .. } = c.inner_for(q)? else {
        return Err(Error::Unsupported(format!(
            "quantity `{q}` needs inner.kind = steps"
        )));
    };
    let inner_scale = loss_scale(loss, shape.support * k);
    let outer_scale = loss_scale(loss, set.n_query() * k);
    let adapt = match c.variant.unwrap_or_default() {
        Variant::Maml => Adapt::Full,
        Variant::Anil => Adapt::Head,
    };
    let cfg = MamlConfig::new(lr * inner_scale, steps)
        .with_order(c.order.unwrap_or_default())
        .with_adapt(adapt);
    let tasks = set.tasks();
    match q {
        Quantity::MetaGradient => {
            let (_, g) = maml::meta_loss_grad(&mlp, theta.view(), tasks, &cfg)?;
            Ok((g * outer_scale).into_dyn())
        }
        _ => {
            let Loop::Steps {
                lr: eta, steps: t, ..
            } = c.outer_for(q)?
            else {
                return Err(Error::Unsupported(format!(
                    "quantity `{q}` needs outer.kind = steps"
                )));
            };
            let res = maml::train(
                &mlp,
                theta.view(),
                tasks,
                &cfg,
                &TrainConfig::new(eta * outer_scale, t),
                &mut |_, _| {},
            )?;
            let losses: Vec<f64> = res
                .records
                .iter()
                .map(|r| r.meta_loss * outer_scale)
                .collect();
            Ok(ndarray::Array1::from(losses).into_dyn())
        }
    }
}

/// Time scale of a loss normalisation: 1 for sums, 1/`size` (the number of label entries) for
/// means.
pub fn loss_scale(loss: LossNorm, size: usize) -> f64 {
    match loss {
        LossNorm::Sum => 1.0,
        LossNorm::Mean => 1.0 / size.max(1) as f64,
    }
}

/// Split a stacked task-set array (rows in `layout` order, every task with `shape.support`
/// support and `shape.query` query rows) into (supports stacked task by task, queries stacked
/// task by task).
pub fn unstack(
    a: ArrayView2<f64>,
    layout: Layout,
    shape: TaskShape,
    what: &str,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let (m, n) = (shape.support, shape.query);
    let per = m + n;
    if per == 0 || a.nrows() == 0 || !a.nrows().is_multiple_of(per) {
        return Err(Error::shape(
            format!("stacked task-set array `{what}`"),
            format!("a positive multiple of support + query = {per} rows"),
            format!("{} rows", a.nrows()),
        ));
    }
    let nt = a.nrows() / per;
    let cols = a.ncols();
    let mut xs = Array2::zeros((nt * m, cols));
    let mut xq = Array2::zeros((nt * n, cols));
    for i in 0..nt {
        let (s0, q0) = match layout {
            Layout::PerTask => (i * per, i * per + m),
            Layout::QueriesFirst => (nt * n + i * m, i * n),
        };
        xs.slice_mut(s![i * m..(i + 1) * m, ..])
            .assign(&a.slice(s![s0..s0 + m, ..]));
        xq.slice_mut(s![i * n..(i + 1) * n, ..])
            .assign(&a.slice(s![q0..q0 + n, ..]));
    }
    Ok((xs, xq))
}

/// Build a task set from stacked `x`/`y` arrays.
pub fn task_set(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    layout: Layout,
    shape: TaskShape,
    what: &str,
) -> Result<TaskSet> {
    if y.nrows() != x.nrows() {
        return Err(Error::shape(
            format!("labels of `{what}`"),
            format!("{} rows (as the inputs)", x.nrows()),
            format!("{} rows", y.nrows()),
        ));
    }
    let (xs, xq) = unstack(x, layout, shape, what)?;
    let (ys, yq) = unstack(y, layout, shape, what)?;
    let (m, n) = (shape.support, shape.query);
    let tasks = (0..xs.nrows() / m)
        .map(|i| {
            Task::new(
                xs.slice(s![i * m..(i + 1) * m, ..]).to_owned(),
                ys.slice(s![i * m..(i + 1) * m, ..]).to_owned(),
                xq.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
                yq.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}

/// The test task set read from the `test_x`, `test_y` inputs.
pub(crate) fn test_tasks(inputs: &Inputs, layout: Layout, shape: TaskShape) -> Result<TaskSet> {
    task_set(
        input2(inputs, "test_x")?,
        input2(inputs, "test_y")?,
        layout,
        shape,
        "test_x",
    )
}

fn f0_of(inputs: &Inputs, role: &str, layout: Layout, shape: TaskShape) -> Result<mnk::F0> {
    let (support, query) = unstack(input2(inputs, role)?, layout, shape, role)?;
    Ok(mnk::F0 { query, support })
}

/// The training task set of a task-set quantity with the conventions it is read and adapted
/// with: layout, task shape, loss normalisation and the inner schedule (time × loss scale).
pub(crate) struct MetaSetup {
    pub layout: Layout,
    pub shape: TaskShape,
    pub loss: LossNorm,
    pub train: TaskSet,
    pub inner: mnk::Schedule,
}

impl MetaSetup {
    pub(crate) fn new(m: &Manifest, inputs: &Inputs) -> Result<Self> {
        let (layout, shape, loss, train) = training_tasks(m, inputs)?;
        let inner = m
            .conventions
            .inner_for(m.quantity)?
            .schedule(loss_scale(loss, shape.support * train.k()));
        Ok(MetaSetup {
            layout,
            shape,
            loss,
            train,
            inner,
        })
    }

    /// The outer schedule: the manifest's outer loop for predictions (time × 1/(N·n·k) for mean
    /// losses), infinite time with the outer ridge (if any) for the complexity.
    pub(crate) fn outer(&self, m: &Manifest) -> Result<mnk::Schedule> {
        let c = &m.conventions;
        Ok(match m.quantity {
            Quantity::Complexity => mnk::Schedule::infinite().with_ridge(
                c.outer.map_or(0.0, |o| o.ridge()),
                mnk::RidgeMode::InverseOnly,
            ),
            q => c
                .outer_for(q)?
                .schedule(loss_scale(self.loss, self.train.n_query() * self.train.k())),
        })
    }
}

/// References of the task-set quantities (MNK Gram, cross kernel, predictions, complexity).
fn meta_reference(
    m: &Manifest,
    inputs: &Inputs,
    arch: crate::kernel::Arch,
    ext: bool,
) -> Result<ArrayD<f64>> {
    let q = m.quantity;
    let c = &m.conventions;
    let setup = MetaSetup::new(m, inputs)?;
    let (layout, shape, train) = (setup.layout, setup.shape, &setup.train);
    let mk = Mnk::new(BaseKernel::Analytic(arch), setup.inner)
        .with_variant(c.variant.unwrap_or_default());
    let test = || test_tasks(inputs, layout, shape);
    match q {
        Quantity::MnkGram if ext => Ok(crate::xprec::phi(&mk, train)?.into_dyn()),
        Quantity::MnkGram => Ok(mk.phi(train)?.into_dyn()),
        Quantity::MnkCross if ext => Ok(crate::xprec::cross(&mk, &test()?, train)?.into_dyn()),
        Quantity::MnkCross => Ok(mk.cross(&test()?, train)?.into_dyn()),
        Quantity::Predictions => {
            let test = test()?;
            let outer = setup.outer(m)?;
            let f0 = match c.f0_for(q)? {
                F0::Zero => None,
                F0::File => Some((
                    f0_of(inputs, "f0", layout, shape)?,
                    f0_of(inputs, "test_f0", layout, shape)?,
                )),
            };
            let f0 = f0.as_ref().map(|(a, b)| (a, b));
            let p = if ext {
                crate::xprec::predict(&mk, train, &test, &outer, f0)?
            } else {
                mk.predict(train, &test, &outer, f0)?
            };
            Ok(p.test.into_dyn())
        }
        Quantity::Complexity => {
            // C = √(tr(Ỹᵀ h(Φ) Ỹ) / N), Ỹ = Y − G, h = (Φ + ρI)⁻¹ (ρ = outer ridge, if given).
            let sched = setup.outer(m)?;
            let (phi, g) = if ext {
                // Faithful Φ and G (G from the extended predictor on the training tasks).
                let p = crate::xprec::predict(&mk, train, train, &sched, None)?;
                (crate::xprec::phi(&mk, train)?, p.g_train)
            } else {
                let ad = mk.adapters(train)?;
                (mk.phi_with(train, &ad)?, mnk::g_term(train, &ad, None)?)
            };
            let resid = &train.query_y() - &g;
            if ext && sched.ridge == 0.0 {
                let cval = crate::xprec::complexity(phi.view(), resid.view(), train.len())?;
                return Ok(ndarray::arr0(cval).into_dyn());
            }
            let (hy, _, _, _) = mnk::predict::outer_apply(phi.view(), resid.view(), &sched)?;
            let quad: f64 = resid.iter().zip(hy.iter()).map(|(a, b)| a * b).sum();
            let cval = (quad.max(0.0) / train.len() as f64).sqrt();
            Ok(ndarray::arr0(cval).into_dyn())
        }
        _ => unreachable!("meta_reference called for {q}"),
    }
}
