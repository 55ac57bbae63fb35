//! Validated few-shot task sets (MATH.md §0, §3), the one task type of both towers: the Meta
//! Neural Kernel (`mnk`, infinite width) and MAML on finite networks (`maml`, which checks a task
//! against its network with `maml::validate_task`). Re-exported as `mnk::Task`, `mnk::TaskSet`.
//!
//! Task i has a support set (X'_i, Y'_i) with m_i points and a query set (X_i, Y_i) with n_i
//! points, all with the same input dimension d and the same number k of label columns. Points
//! are rows. Different tasks may have different m_i and n_i (the Meta Neural Kernel only needs
//! per-task blocks); the published stacked layouts (`mnk::layout`) need equal sizes.
//!
//! Stacked order used everywhere in the MNK ("queries first", the MetaNTK-NAS order):
//! `Z = [X_1; …; X_N; X'_1; …; X'_N]`, i.e. all query points, then all support points. Query
//! row `r` of the stack belongs to the task `i` with `q_off[i] ≤ r < q_off[i+1]`.

use crate::error::{ensure_finite, Error, Result};
use ndarray::{s, Array2, ArrayView2, Axis};

/// One few-shot task: support (X', Y') and query (X, Y).
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Support inputs X' (m × d).
    pub xs: Array2<f64>,
    /// Support labels Y' (m × k).
    pub ys: Array2<f64>,
    /// Query inputs X (n × d).
    pub xq: Array2<f64>,
    /// Query labels Y (n × k). For test tasks whose query labels are unknown, pass zeros: they
    /// are only used to score predictions.
    pub yq: Array2<f64>,
}

impl Task {
    /// A validated task: m ≥ 1, n ≥ 1, k ≥ 1, consistent shapes, finite entries.
    ///
    /// ```
    /// use gbml_testbed::mnk::Task;
    /// use ndarray::array;
    /// let t = Task::new(array![[0.0], [1.0]], array![[0.0], [1.0]], array![[0.5]], array![[0.5]]);
    /// assert!(t.is_ok());
    /// let bad = Task::new(array![[0.0], [1.0]], array![[0.0]], array![[0.5]], array![[0.5]]);
    /// assert!(bad.is_err());
    /// ```
    pub fn new(xs: Array2<f64>, ys: Array2<f64>, xq: Array2<f64>, yq: Array2<f64>) -> Result<Task> {
        let t = Task { xs, ys, xq, yq };
        t.validate("task")?;
        Ok(t)
    }

    /// Support size m.
    pub fn m(&self) -> usize {
        self.xs.nrows()
    }
    /// Query size n.
    pub fn n(&self) -> usize {
        self.xq.nrows()
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.xs.ncols()
    }
    /// Label columns k.
    pub fn k(&self) -> usize {
        self.ys.ncols()
    }

    fn validate(&self, ctx: &str) -> Result<()> {
        if self.xs.nrows() == 0 {
            return Err(Error::Empty(format!("{ctx}: support set has no points")));
        }
        if self.xq.nrows() == 0 {
            return Err(Error::Empty(format!("{ctx}: query set has no points")));
        }
        if self.ys.ncols() == 0 {
            return Err(Error::Empty(format!("{ctx}: labels have k = 0 columns")));
        }
        if self.xq.ncols() != self.xs.ncols() {
            return Err(Error::shape(
                format!("{ctx}: query inputs"),
                format!("d = {} (as the support)", self.xs.ncols()),
                format!("d = {}", self.xq.ncols()),
            ));
        }
        if self.ys.nrows() != self.xs.nrows() {
            return Err(Error::shape(
                format!("{ctx}: support labels"),
                format!("{} rows (one per support point)", self.xs.nrows()),
                format!("{} rows", self.ys.nrows()),
            ));
        }
        if self.yq.dim() != (self.xq.nrows(), self.ys.ncols()) {
            return Err(Error::shape(
                format!("{ctx}: query labels"),
                format!("{}×{}", self.xq.nrows(), self.ys.ncols()),
                format!("{}×{}", self.yq.nrows(), self.yq.ncols()),
            ));
        }
        ensure_finite(self.xs.view(), &format!("{ctx}: support inputs"))?;
        ensure_finite(self.ys.view(), &format!("{ctx}: support labels"))?;
        ensure_finite(self.xq.view(), &format!("{ctx}: query inputs"))?;
        ensure_finite(self.yq.view(), &format!("{ctx}: query labels"))?;
        Ok(())
    }
}

/// A non-empty set of tasks with common d and k, plus the offsets of each task in the stacks.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSet {
    tasks: Vec<Task>,
    d: usize,
    k: usize,
    q_off: Vec<usize>,
    s_off: Vec<usize>,
}

impl TaskSet {
    /// Validate and wrap: at least one task, every task valid, all with the same d and k.
    pub fn new(tasks: Vec<Task>) -> Result<TaskSet> {
        if tasks.is_empty() {
            return Err(Error::Empty("task set has no tasks".into()));
        }
        let d = tasks[0].d();
        let k = tasks[0].k();
        let mut q_off = vec![0];
        let mut s_off = vec![0];
        for (i, t) in tasks.iter().enumerate() {
            t.validate(&format!("task {i}"))?;
            if t.d() != d {
                return Err(Error::shape(
                    format!("task {i} inputs"),
                    format!("d = {d} (as task 0)"),
                    format!("d = {}", t.d()),
                ));
            }
            if t.k() != k {
                return Err(Error::shape(
                    format!("task {i} labels"),
                    format!("k = {k} (as task 0)"),
                    format!("k = {}", t.k()),
                ));
            }
            q_off.push(q_off[i] + t.n());
            s_off.push(s_off[i] + t.m());
        }
        Ok(TaskSet {
            tasks,
            d,
            k,
            q_off,
            s_off,
        })
    }

    /// The tasks.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }
    /// The tasks, by value.
    pub fn into_tasks(self) -> Vec<Task> {
        self.tasks
    }
    /// Number of tasks N.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }
    /// Always false (a task set is never empty); for clippy.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.d
    }
    /// Label columns k.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Total number of query points Σ n_i (the size of Φ).
    pub fn n_query(&self) -> usize {
        *self.q_off.last().unwrap()
    }
    /// Total number of support points Σ m_i.
    pub fn n_support(&self) -> usize {
        *self.s_off.last().unwrap()
    }
    /// Query offsets: task i owns stacked query rows `q_off[i]..q_off[i+1]` (length N + 1).
    pub fn query_offsets(&self) -> &[usize] {
        &self.q_off
    }
    /// Support offsets: task i owns stacked support rows `s_off[i]..s_off[i+1]` (length N + 1).
    pub fn support_offsets(&self) -> &[usize] {
        &self.s_off
    }
    /// The task owning stacked query row `r`.
    pub fn task_of_query(&self, r: usize) -> usize {
        self.q_off.partition_point(|&o| o <= r) - 1
    }
    /// Equal sizes (m, n) across tasks, if they are equal.
    pub fn uniform_sizes(&self) -> Option<(usize, usize)> {
        let (m, n) = (self.tasks[0].m(), self.tasks[0].n());
        self.tasks
            .iter()
            .all(|t| t.m() == m && t.n() == n)
            .then_some((m, n))
    }

    fn stack(&self, f: impl Fn(&Task) -> ArrayView2<f64>, rows: usize, cols: usize) -> Array2<f64> {
        let mut out = Array2::zeros((rows, cols));
        let mut r = 0;
        for t in &self.tasks {
            let a = f(t);
            out.slice_mut(s![r..r + a.nrows(), ..]).assign(&a);
            r += a.nrows();
        }
        out
    }

    /// Stacked query inputs X = [X_1; …; X_N] (Σn × d).
    pub fn query_x(&self) -> Array2<f64> {
        self.stack(|t| t.xq.view(), self.n_query(), self.d)
    }
    /// Stacked query labels Y (Σn × k).
    pub fn query_y(&self) -> Array2<f64> {
        self.stack(|t| t.yq.view(), self.n_query(), self.k)
    }
    /// Stacked support inputs X' (Σm × d).
    pub fn support_x(&self) -> Array2<f64> {
        self.stack(|t| t.xs.view(), self.n_support(), self.d)
    }
    /// Stacked support labels Y' (Σm × k).
    pub fn support_y(&self) -> Array2<f64> {
        self.stack(|t| t.ys.view(), self.n_support(), self.k)
    }
    /// All points, queries first: Z = [X; X'] ((Σn + Σm) × d).
    pub fn points(&self) -> Array2<f64> {
        ndarray::concatenate(Axis(0), &[self.query_x().view(), self.support_x().view()])
            .expect("same number of columns")
    }
}
