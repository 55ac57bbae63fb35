//! The two published data layouts, for import and export.
//!
//! * [`Layout::PerTask`] (MNK v1 code, AI-secure/Meta-Neural-Kernel): four 3-d arrays
//!   `X_spt (N, m, d)`, `Y_spt (N, m, k)`, `X_qry (N, n, d)`, `Y_qry (N, n, k)`.
//! * [`Layout::QueriesFirst`] (MetaNTK-NAS code): one stacked point array
//!   `X = [X_1; …; X_N; X'_1; …; X'_N]` ((Nn + Nm) × d) and labels Y likewise: all queries, then
//!   all supports — the stacked order used by this module ([`TaskSet::points`]); a precomputed
//!   Gram matrix over these points can be used directly with [`index_tasks`].
//!
//! In both, Φ and the predictions are indexed by the query points in task order (Nn rows).
//! Stacked arrays need equal (m, n) across tasks.

use super::tasks::{Task, TaskSet};
use crate::error::{Error, Result};
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

/// A published data layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Per-task 3-d blocks (MNK v1).
    PerTask,
    /// All queries, then all supports (MetaNTK-NAS).
    QueriesFirst,
}

/// The four per-task arrays of the MNK v1 layout.
#[derive(Clone, Debug, PartialEq)]
pub struct PerTaskArrays {
    /// (N, m, d)
    pub xs: Array3<f64>,
    /// (N, m, k)
    pub ys: Array3<f64>,
    /// (N, n, d)
    pub xq: Array3<f64>,
    /// (N, n, k)
    pub yq: Array3<f64>,
}

/// Tasks from per-task arrays (`xs (N,m,d)`, `ys (N,m,k)`, `xq (N,n,d)`, `yq (N,n,k)`).
pub fn from_per_task(
    xs: ArrayView3<f64>,
    ys: ArrayView3<f64>,
    xq: ArrayView3<f64>,
    yq: ArrayView3<f64>,
) -> Result<TaskSet> {
    let n_tasks = xs.len_of(Axis(0));
    let counts = [
        ("Y_spt", ys.len_of(Axis(0))),
        ("X_qry", xq.len_of(Axis(0))),
        ("Y_qry", yq.len_of(Axis(0))),
    ];
    for (name, cnt) in counts {
        if cnt != n_tasks {
            return Err(Error::shape(
                format!("{name} (per-task layout)"),
                format!("{n_tasks} tasks (as X_spt)"),
                format!("{cnt} tasks"),
            ));
        }
    }
    let tasks = (0..n_tasks)
        .map(|i| {
            Task::new(
                xs.index_axis(Axis(0), i).to_owned(),
                ys.index_axis(Axis(0), i).to_owned(),
                xq.index_axis(Axis(0), i).to_owned(),
                yq.index_axis(Axis(0), i).to_owned(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}

fn uniform(set: &TaskSet) -> Result<(usize, usize)> {
    set.uniform_sizes().ok_or_else(|| {
        Error::Unsupported("stacked layouts need the same (m, n) in every task".into())
    })
}

/// Per-task arrays of a task set with equal (m, n).
pub fn to_per_task(set: &TaskSet) -> Result<PerTaskArrays> {
    let (m, n) = uniform(set)?;
    let (nt, d, k) = (set.len(), set.d(), set.k());
    let mut out = PerTaskArrays {
        xs: Array3::zeros((nt, m, d)),
        ys: Array3::zeros((nt, m, k)),
        xq: Array3::zeros((nt, n, d)),
        yq: Array3::zeros((nt, n, k)),
    };
    for (i, t) in set.tasks().iter().enumerate() {
        out.xs.index_axis_mut(Axis(0), i).assign(&t.xs);
        out.ys.index_axis_mut(Axis(0), i).assign(&t.ys);
        out.xq.index_axis_mut(Axis(0), i).assign(&t.xq);
        out.yq.index_axis_mut(Axis(0), i).assign(&t.yq);
    }
    Ok(out)
}

/// Tasks from the queries-first stack: `x` ((N n + N m) × d), `y` ((N n + N m) × k).
pub fn from_queries_first(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    n_tasks: usize,
    m: usize,
    n: usize,
) -> Result<TaskSet> {
    if n_tasks == 0 || m == 0 || n == 0 {
        return Err(Error::param(
            "task sizes",
            format!("N = {n_tasks}, m = {m}, n = {n}"),
            "all must be >= 1",
        ));
    }
    let total = n_tasks * (m + n);
    if x.nrows() != total || y.nrows() != total {
        return Err(Error::shape(
            "queries-first stack",
            format!("{total} rows (N(n + m) = {n_tasks}·({n} + {m}))"),
            format!("X: {} rows, Y: {} rows", x.nrows(), y.nrows()),
        ));
    }
    let nq = n_tasks * n;
    let tasks = (0..n_tasks)
        .map(|i| {
            Task::new(
                x.slice(s![nq + i * m..nq + (i + 1) * m, ..]).to_owned(),
                y.slice(s![nq + i * m..nq + (i + 1) * m, ..]).to_owned(),
                x.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
                y.slice(s![i * n..(i + 1) * n, ..]).to_owned(),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}

/// The queries-first stack (X, Y) of any task set.
pub fn to_queries_first(set: &TaskSet) -> (Array2<f64>, Array2<f64>) {
    let y = ndarray::concatenate(Axis(0), &[set.query_y().view(), set.support_y().view()])
        .expect("same k");
    (set.points(), y)
}

/// The same tasks with every input replaced by its index in the queries-first stack plus
/// `offset` (d = 1), for use with a [`super::BaseKernel::Precomputed`] Gram matrix over
/// [earlier points (offset of them); this set's queries; this set's supports; …]. E.g. for a
/// Gram over [train queries; train supports; test queries; test supports] (MNK v1's
/// `all_idxes` order), use offset 0 for the training set and Σ(n + m) of the training set for
/// the test set.
pub fn index_tasks(set: &TaskSet, offset: usize) -> Result<TaskSet> {
    let nq = set.n_query();
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let tasks = set
        .tasks()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let xq = Array2::from_shape_fn((t.n(), 1), |(r, _)| (offset + qo[i] + r) as f64);
            let xs = Array2::from_shape_fn((t.m(), 1), |(r, _)| (offset + nq + so[i] + r) as f64);
            Task::new(xs, t.ys.clone(), xq, t.yq.clone())
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}
