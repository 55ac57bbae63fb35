//! `gbml_testbed._core`: the thin PyO3 layer under the Python package `gbml_testbed`.
//!
//! It only converts: numpy arrays in (zero-copy read-only views, checked for dtype, layout and
//! rank), the library's results out (owned arrays handed to numpy without a copy), and the
//! crate's typed [`Error`] raised as the matching class of `gbml_testbed.errors` with the same
//! message. Every computation runs with the GIL released (`py.allow_threads`). The architecture
//! and the conventions arrive as JSON text in the exchange manifest's `conventions` schema, so
//! the package and `gbml compare` share one parser (`io::manifest::Conventions`).
//!
//! Library entry points used: `kernel::{kernels, nngp, ntk, kernels_rows_between}`,
//! `io::manifest::{Conventions, Manifest::parse_str}`, `io::compare::{reference, compare_values,
//! Inputs, Report}`, `io::tolerance::ToleranceTable::{defaults, parse_toml}`,
//! `advise::{advise, rates::default_inner_lr}`.

use gbml_testbed::advise as gb_advise;
use gbml_testbed::io::compare::{self as engine, Inputs};
use gbml_testbed::io::manifest::{Conventions, Manifest};
use gbml_testbed::io::tolerance::ToleranceTable;
use gbml_testbed::kernel::{self, Arch};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, Task, TaskSet};
use gbml_testbed::Error;
use ndarray::{ArrayD, ArrayView2, ArrayViewD, Axis, Ix2, Ix3};
use numpy::{
    dtype, IntoPyArray, PyArray2, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

/// Where the inputs of an in-memory manifest "live" (never opened).
const MEMORY: &str = "<memory>";

/// The `gbml_testbed.errors` class of a crate error.
fn error_class(e: &Error) -> &'static str {
    match e {
        Error::Shape { .. } => "ShapeError",
        Error::NonFinite { .. } => "NonFiniteError",
        Error::InvalidParameter { .. } => "InvalidParameterError",
        Error::Empty(_) => "EmptyInputError",
        Error::Singular { .. } => "SingularKernelError",
        Error::Diverged { .. } => "DivergedError",
        Error::LinAlg(_) => "LinAlgError",
        Error::Io { .. } => "GbmlIOError",
        Error::Parse { .. } => "ParseError",
        Error::Unsupported(_) => "UnsupportedError",
    }
}

/// The crate error as the Python exception of the same kind and message.
fn py_err(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let class = py
        .import("gbml_testbed.errors")
        .and_then(|m| m.getattr(error_class(&e)))
        .and_then(|c| Ok(c.downcast_into::<PyType>()?));
    match class {
        Ok(c) => PyErr::from_type(c, msg),
        Err(import_err) => import_err,
    }
}

/// A numpy float64, C-contiguous array argument as a read-only view (no copy).
fn array_arg<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<std::result::Result<PyReadonlyArrayDyn<'py, f64>, Error>> {
    let py = obj.py();
    let Ok(arr) = obj.downcast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a numpy.ndarray of float64, got {}",
            obj.get_type().name()?
        )));
    };
    if !arr.dtype().is_equiv_to(&dtype::<f64>(py)) {
        return Ok(Err(Error::param(
            name,
            format!("an array of dtype {}", arr.dtype()),
            "must be float64 (numpy.asarray(x, dtype=numpy.float64))",
        )));
    }
    if !arr.is_c_contiguous() {
        return Ok(Err(Error::param(
            name,
            "a non-C-contiguous (strided or Fortran-order) array",
            "must be C-contiguous (numpy.ascontiguousarray(x))",
        )));
    }
    Ok(Ok(arr.downcast::<PyArrayDyn<f64>>()?.readonly()))
}

/// [`array_arg`] with the crate error raised.
fn array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArrayDyn<'py, f64>> {
    array_arg(obj, name)?.map_err(|e| py_err(obj.py(), e))
}

/// A matrix view (points are rows) of a checked array.
fn matrix<'a>(a: ArrayViewD<'a, f64>, name: &str) -> Result<ArrayView2<'a, f64>, Error> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>().map_err(|_| {
        Error::shape(
            format!("`{name}`"),
            "a 2-D array (points are rows)",
            format!("shape {shape:?}"),
        )
    })
}

/// The conventions block from its JSON text.
fn conventions_from_json(text: &str) -> Result<Conventions, Error> {
    serde_json::from_str(text).map_err(|e| Error::Parse {
        what: "architecture".into(),
        path: "<python>".into(),
        reason: e.to_string(),
    })
}

/// The architecture from the JSON text of a manifest `conventions` block.
fn arch_from_json(text: &str) -> Result<Arch, Error> {
    conventions_from_json(text)?.arch()
}

/// The conv kernels (`layers=`): the library call of `gbml kernel --layers`, so the same bits.
fn conv_kernels(
    spec: &kernel::Spec,
    d1: ArrayViewD<'_, f64>,
    d2: Option<ArrayViewD<'_, f64>>,
    rows: Option<(usize, usize)>,
) -> Result<kernel::Kernels, Error> {
    use gbml_testbed::io::reference::images;
    let x1 = images(d1, "`x1` (NHWC images for layers=)")?;
    let x2 = d2
        .map(|a| images(a, "`x2` (NHWC images for layers=)"))
        .transpose()?;
    let rows = rows.map_or(0..x1.dim().0, |(a, b)| a..b);
    kernel::conv::kernels_rows(spec, x1.view(), x2.as_ref().map(|x| x.view()), rows)
}

/// NNGP and NTK Gram matrices (`want`: "nngp", "ntk" or "both"; the other entry of the pair is
/// `None`), optionally only rows `rows` (a bit-exact slice of the full matrix).
#[pyfunction]
#[pyo3(signature = (x1, x2, arch, want, rows=None))]
#[allow(clippy::type_complexity)]
fn kernels<'py>(
    py: Python<'py>,
    x1: &Bound<'py, PyAny>,
    x2: Option<&Bound<'py, PyAny>>,
    arch: &str,
    want: &str,
    rows: Option<(usize, usize)>,
) -> PyResult<(
    Option<Bound<'py, PyArray2<f64>>>,
    Option<Bound<'py, PyArray2<f64>>>,
)> {
    let a1 = array(x1, "x1")?;
    let a2 = x2.map(|x| array(x, "x2")).transpose()?;
    let (d1, d2) = (a1.as_array(), a2.as_ref().map(|a| a.as_array()));
    let run = || -> Result<(Option<_>, Option<_>), Error> {
        let conv = conventions_from_json(arch)?;
        if let Some(spec) = conv.spec()? {
            if !matches!(want, "nngp" | "ntk" | "both") {
                return Err(Error::param("kind", want, "expected ntk, nngp or both"));
            }
            let k = conv_kernels(&spec, d1, d2, rows)?;
            return Ok((
                (want != "ntk").then_some(k.nngp),
                (want != "nngp").then_some(k.ntk),
            ));
        }
        let arch = conv.arch()?;
        let v1 = matrix(d1, "x1")?;
        let v2 = d2.map(|a| matrix(a, "x2")).transpose()?;
        Ok(match (want, rows) {
            (_, Some((a, b))) => {
                let k = kernel::kernels_rows_between(&arch, v1, v2, a..b)?;
                (Some(k.nngp), Some(k.ntk))
            }
            ("nngp", None) => (Some(kernel::nngp(&arch, v1, v2)?), None),
            ("ntk", None) => (None, Some(kernel::ntk(&arch, v1, v2)?)),
            ("both", None) => {
                let k = kernel::kernels(&arch, v1, v2)?;
                (Some(k.nngp), Some(k.ntk))
            }
            (other, None) => return Err(Error::param("kind", other, "expected ntk, nngp or both")),
        })
    };
    let (n, t) = py.allow_threads(run).map_err(|e| py_err(py, e))?;
    Ok((n.map(|m| m.into_pyarray(py)), t.map(|m| m.into_pyarray(py))))
}

/// Seconds per call of the library's kernel computation alone (no Python in the loop), the
/// median of `repeats` calls on the same inputs: the baseline of python/bench/call_overhead.py.
#[pyfunction]
fn time_kernels(
    py: Python<'_>,
    x1: &Bound<'_, PyAny>,
    arch: &str,
    want: &str,
    repeats: usize,
) -> PyResult<f64> {
    let a1 = array(x1, "x1")?;
    let d1 = a1.as_array();
    let run = || -> Result<f64, Error> {
        let arch = arch_from_json(arch)?;
        let v1 = matrix(d1, "x1")?;
        let mut times = Vec::with_capacity(repeats.max(1));
        for _ in 0..repeats.max(1) {
            let t0 = std::time::Instant::now();
            let k = match want {
                "nngp" => kernel::nngp(&arch, v1, None)?,
                _ => kernel::ntk(&arch, v1, None)?,
            };
            times.push(t0.elapsed().as_secs_f64());
            drop(k);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    };
    py.allow_threads(run).map_err(|e| py_err(py, e))
}

/// An in-memory manifest: `quantity`, the roles of `inputs`, and the conventions JSON.
fn manifest(
    quantity: &str,
    roles: &[String],
    conventions: &str,
    implementation: &str,
) -> Result<Manifest, Error> {
    let conv: serde_json::Value = serde_json::from_str(conventions).map_err(|e| Error::Parse {
        what: "conventions".into(),
        path: "<python>".into(),
        reason: e.to_string(),
    })?;
    let inputs: serde_json::Map<String, serde_json::Value> =
        roles.iter().map(|r| (r.clone(), MEMORY.into())).collect();
    let m = serde_json::json!({
        "format": gbml_testbed::io::manifest::FORMAT_NAME,
        "version": gbml_testbed::io::manifest::FORMAT_VERSION,
        "implementation": implementation,
        "quantity": quantity,
        "inputs": inputs,
        "output": MEMORY,
        "conventions": conv,
    });
    Manifest::parse_str(&m.to_string(), "<python>")
}

/// Owned copies of the input arrays (finite, as `gbml compare` requires of inputs).
fn inputs_from(dict: &Bound<'_, PyDict>) -> PyResult<Result<Inputs, Error>> {
    let mut out = Inputs::new();
    for (k, v) in dict.iter() {
        let role: String = k.extract()?;
        let a = match array_arg(&v, &role)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let a: ArrayD<f64> = a.as_array().to_owned();
        if let Err(e) = gbml_testbed::error::ensure_finite(a.view(), &format!("input `{role}`")) {
            return Ok(Err(e));
        }
        out.insert(role, a);
    }
    Ok(Ok(out))
}

/// Our reference value of `quantity` (a manifest quantity name) on `inputs` under the
/// `conventions` JSON: the value `gbml compare` judges candidates against.
/// `precision`: "f64" (the fast path, bit-identical to the CLI's default and to `Mnk::phi_rows`
/// tiles) or "extended" (double-double; what `compare` judges against).
#[pyfunction]
#[pyo3(signature = (quantity, inputs, conventions, precision="f64"))]
fn reference<'py>(
    py: Python<'py>,
    quantity: &str,
    inputs: &Bound<'py, PyDict>,
    conventions: &str,
    precision: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let inputs = inputs_from(inputs)?.map_err(|e| py_err(py, e))?;
    let roles: Vec<String> = inputs.keys().cloned().collect();
    let precision: engine::Precision = precision
        .parse()
        .map_err(|e: String| py_err(py, gbml_testbed::Error::param("precision", precision, e)))?;
    let run = || {
        let m = manifest(quantity, &roles, conventions, "gbml_testbed (python)")?;
        engine::reference_with(&m, &inputs, precision)
    };
    let r = py.allow_threads(run).map_err(|e| py_err(py, e))?;
    Ok(r.into_pyarray(py))
}

/// Compare an in-memory candidate (`gbml compare` without files): returns the report as JSON
/// text and as the CLI's readable text.
#[pyfunction]
#[pyo3(signature = (quantity, inputs, candidate, conventions, tolerances=None, implementation="python"))]
fn compare<'py>(
    py: Python<'py>,
    quantity: &str,
    inputs: &Bound<'py, PyDict>,
    candidate: &Bound<'py, PyAny>,
    conventions: &str,
    tolerances: Option<&str>,
    implementation: &str,
) -> PyResult<(String, String)> {
    let inputs = inputs_from(inputs)?.map_err(|e| py_err(py, e))?;
    let cand = array(candidate, "candidate")?;
    let cand = cand.as_array();
    let roles: Vec<String> = inputs.keys().cloned().collect();
    let run = || {
        let m = manifest(quantity, &roles, conventions, implementation)?;
        let tols = match tolerances {
            Some(t) => ToleranceTable::parse_toml(t, "<tolerances>")?,
            None => ToleranceTable::defaults(),
        };
        let c = cand.to_owned();
        let report = engine::compare_values(&m, &inputs, &c, &tols, "<python>")?;
        let json = serde_json::to_string(&report)
            .map_err(|e| Error::Unsupported(format!("report as JSON: {e}")))?;
        Ok::<_, Error>((json, report.to_string()))
    };
    py.allow_threads(run).map_err(|e| py_err(py, e))
}

/// Rows `rows` of the MNK Gram matrix Φ of the training tasks stacked in `x`, `y` (the
/// conventions of quantity `mnk_gram`): a bit-identical slice of `Mnk::phi` (`Mnk::phi_rows`),
/// the tile `gbml_testbed.dask.mnk` computes on a worker.
#[pyfunction]
fn mnk_phi_rows<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    conventions: &str,
    rows: (usize, usize),
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (ax, ay) = (array(x, "x")?, array(y, "y")?);
    let (dx, dy) = (ax.as_array(), ay.as_array());
    let run = || -> Result<_, Error> {
        let roles = ["x".to_string(), "y".to_string()];
        let m = manifest("mnk_gram", &roles, conventions, "gbml_testbed (python)")?;
        let (q, c) = (m.quantity, &m.conventions);
        let (xv, yv) = (matrix(dx, "x")?, matrix(dy, "y")?);
        gbml_testbed::error::ensure_finite(xv, "input `x`")?;
        gbml_testbed::error::ensure_finite(yv, "input `y`")?;
        let shape = c.task_shape_for(q)?;
        let set = engine::task_set(xv, yv, c.layout_for(q)?, shape, "x")?;
        let scale = engine::loss_scale(c.loss_for(q)?, shape.support * set.k());
        let mk = Mnk::new(
            BaseKernel::Analytic(c.arch()?),
            c.inner_for(q)?.schedule(scale),
        )
        .with_variant(c.variant.unwrap_or_default());
        mk.phi_rows(&set, rows.0..rows.1)
    };
    let phi = py.allow_threads(run).map_err(|e| py_err(py, e))?;
    Ok(phi.into_pyarray(py))
}

/// Tasks from stacked per-task arrays `xs` (N × m × d), `ys` (N × m × k), `xq` (N × n × d),
/// `yq` (N × n × k): the task folder of `gbml advise --tasks npy`.
fn task_set_3d(arrays: [(ArrayViewD<'_, f64>, &str); 4]) -> Result<TaskSet, Error> {
    let mut a3 = Vec::with_capacity(4);
    for (a, name) in arrays {
        let shape = a.shape().to_vec();
        gbml_testbed::error::ensure_finite(a.view(), &format!("input `{name}`"))?;
        a3.push(a.into_dimensionality::<Ix3>().map_err(|_| {
            Error::shape(
                format!("`{name}`"),
                "a 3-D array (tasks × points × features)",
                format!("shape {shape:?}"),
            )
        })?);
    }
    let n = a3[0].dim().0;
    if let Some(i) = (1..4).find(|&i| a3[i].dim().0 != n) {
        return Err(Error::shape(
            "number of tasks (first axis)",
            format!("{n} (xs)"),
            format!("{} ({})", a3[i].dim().0, ["xs", "ys", "xq", "yq"][i]),
        ));
    }
    let task = |i: usize| {
        let m = |j: usize| a3[j].index_axis(Axis(0), i).to_owned();
        Task::new(m(0), m(1), m(2), m(3))
    };
    TaskSet::new((0..n).map(task).collect::<Result<Vec<_>, Error>>()?)
}

/// `gbml advise` on in-memory tasks (`task_set_3d`): the advice as the JSON text `gbml advise
/// --json` prints. `inner_lr = None`: the CLI's default (`rates::default_inner_lr`);
/// `width_study`: run the finite-width study (FC kernels only).
#[pyfunction]
#[pyo3(signature = (xs, ys, xq, yq, arch, inner_lr, inner_steps, ridge_rel, groups, width_study, tol))]
#[allow(clippy::too_many_arguments)]
fn advise(
    py: Python<'_>,
    xs: &Bound<'_, PyAny>,
    ys: &Bound<'_, PyAny>,
    xq: &Bound<'_, PyAny>,
    yq: &Bound<'_, PyAny>,
    arch: &str,
    inner_lr: Option<f64>,
    inner_steps: usize,
    ridge_rel: f64,
    groups: Option<usize>,
    width_study: bool,
    tol: f64,
) -> PyResult<String> {
    let (a, b, c, d) = (
        array(xs, "xs")?,
        array(ys, "ys")?,
        array(xq, "xq")?,
        array(yq, "yq")?,
    );
    let views = [
        (a.as_array(), "xs"),
        (b.as_array(), "ys"),
        (c.as_array(), "xq"),
        (d.as_array(), "yq"),
    ];
    let run = || -> Result<String, Error> {
        let set = task_set_3d(views)?;
        let conv = conventions_from_json(arch)?;
        if conv.spec()?.is_some() {
            return Err(Error::Unsupported(
                "advise with layers= (conv kernels): fully-connected architectures only".into(),
            ));
        }
        let kernel = BaseKernel::Analytic(conv.arch()?);
        let variant = conv.variant.unwrap_or_default();
        let lr = match inner_lr {
            Some(l) => l,
            None => gb_advise::rates::default_inner_lr(&kernel, variant, &set)?,
        };
        let mnk = Mnk::new(kernel, Schedule::steps(lr, inner_steps)).with_variant(variant);
        let cfg = gb_advise::AdviseConfig {
            ridge_rel,
            groups,
            width: width_study.then(|| gb_advise::width::WidthConfig {
                tol,
                ..Default::default()
            }),
        };
        let adv = gb_advise::advise(&mnk, &set, &cfg)?;
        serde_json::to_string(&adv).map_err(|e| Error::Unsupported(format!("advice as JSON: {e}")))
    };
    py.allow_threads(run).map_err(|e| py_err(py, e))
}

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    m.add_function(wrap_pyfunction!(reference, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(time_kernels, m)?)?;
    m.add_function(wrap_pyfunction!(mnk_phi_rows, m)?)?;
    m.add_function(wrap_pyfunction!(advise, m)?)?;
    Ok(())
}
