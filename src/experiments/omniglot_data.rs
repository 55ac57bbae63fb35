//! Data of the Omniglot protocol (MATH.md §10): the image pool the base kernel is computed on
//! once, the training characters, the fixed test tasks on unseen characters and the label
//! embeddings (PCA of the training characters' pixels; the substitution for the authors'
//! pretrained CNN features).
//!
//! Task inputs are **pool indices** (one column, d = 1), for the MNK on a precomputed Gram
//! matrix over the pool ([`crate::mnk::BaseKernel::Precomputed`]); [`Pool::pixels`] turns them
//! back into images for the finite network.

use crate::error::{Error, Result};
use crate::linalg;
use crate::mnk::data::Omniglot;
use crate::mnk::{Task, TaskSet};
use ndarray::{s, Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The images the kernels are evaluated on: all images of the (at most `max_train`) training
/// characters, then all images of the test characters; rows scaled to unit norm (the cosine
/// normalisation of the inputs).
#[derive(Clone, Debug)]
pub struct Pool {
    /// P × 784, unit-norm rows.
    pub x: Array2<f64>,
    /// Dataset class of every pool row.
    pub class: Vec<usize>,
    /// Training characters in the order they are added (the first C are "C training characters").
    pub train_chars: Vec<usize>,
    /// Pool row of image `drawer` of the i-th training character: `i * drawers + drawer`.
    pub drawers: usize,
    /// Pool row of the first test-character image.
    pub test_start: usize,
}

impl Pool {
    /// Training characters: a seeded permutation of the dataset's training classes, the first
    /// `max_train` kept (so the sets for C = 5, 10, 20, 40 are nested); test characters: all
    /// test classes (disjoint).
    pub fn new(data: &Omniglot, max_train: usize, seed: u64) -> Result<Pool> {
        let n_train = data.n_train_classes();
        if max_train > n_train {
            return Err(Error::param(
                "training characters",
                max_train,
                format!("at most {n_train} training classes"),
            ));
        }
        let mut perm: Vec<usize> = (0..n_train).collect();
        perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        perm.truncate(max_train);
        let drawers = data.images.len_of(Axis(1));
        let classes: Vec<usize> = perm
            .iter()
            .copied()
            .chain(n_train..data.classes())
            .collect();
        let d = data.images.len_of(Axis(2));
        let mut x = Array2::zeros((classes.len() * drawers, d));
        let mut class = Vec::with_capacity(x.nrows());
        for (i, &c) in classes.iter().enumerate() {
            for dr in 0..drawers {
                let img = data.images.slice(s![c, dr, ..]);
                let norm = img.dot(&img).sqrt();
                let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                x.row_mut(i * drawers + dr).assign(&img.mapv(|v| v * scale));
                class.push(c);
            }
        }
        Ok(Pool {
            x,
            class,
            train_chars: perm,
            drawers,
            test_start: max_train * drawers,
        })
    }

    /// Number of pool images.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// True if the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }

    /// Pool rows of the images of the first `c` training characters.
    pub fn train_rows(&self, c: usize) -> std::ops::Range<usize> {
        0..c * self.drawers
    }

    /// The images of index tasks (pool indices → pixels).
    pub fn pixels(&self, idx: &Array2<f64>) -> Array2<f64> {
        self.x.select(Axis(0), &cols(idx))
    }
}

fn cols(idx: &Array2<f64>) -> Vec<usize> {
    idx.column(0).iter().map(|&v| v as usize).collect()
}

/// One N-way task as pool indices: `classes[j]` lists pool rows of class j; the first `shots`
/// are the support, the next `queries` the queries. Labels are filled in later.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexTask {
    /// Support pool rows, class-major (class j: rows j·shots..(j+1)·shots).
    pub support: Vec<usize>,
    /// Query pool rows, class-major.
    pub query: Vec<usize>,
    /// Class (0..ways) of every query.
    pub query_class: Vec<usize>,
    /// Class (0..ways) of every support image.
    pub support_class: Vec<usize>,
}

/// N-way K-shot index tasks over `chars` (each given as its first pool row; `drawers` images
/// per character), seeded.
pub fn index_tasks(
    chars: &[usize],
    drawers: usize,
    (tasks, ways, shots, queries): (usize, usize, usize, usize),
    seed: u64,
) -> Result<Vec<IndexTask>> {
    if ways < 2 || ways > chars.len() || shots == 0 || queries == 0 || shots + queries > drawers {
        return Err(Error::param(
            "ways/shots/queries",
            format!("{ways}/{shots}/{queries}"),
            format!(
                "need 2 ≤ ways ≤ {} characters, shots, queries ≥ 1, shots + queries ≤ {drawers}",
                chars.len()
            ),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let picked: Vec<usize> = chars.choose_multiple(&mut rng, ways).copied().collect();
        let mut t = IndexTask {
            support: vec![],
            query: vec![],
            query_class: vec![],
            support_class: vec![],
        };
        for (j, &first) in picked.iter().enumerate() {
            let mut dr: Vec<usize> = (0..drawers).collect();
            dr.shuffle(&mut rng);
            t.support.extend(dr[..shots].iter().map(|d| first + d));
            t.support_class.extend(std::iter::repeat_n(j, shots));
            t.query
                .extend(dr[shots..shots + queries].iter().map(|d| first + d));
            t.query_class.extend(std::iter::repeat_n(j, queries));
        }
        out.push(t);
    }
    Ok(out)
}

/// PCA label embedding fitted on the training images only: e(x) = Vᵀ(x − μ) with V the top
/// `dim` principal directions of the training images (unit vectors; computed from the
/// eigendecomposition of the centred n × n Gram matrix, v_k = X_cᵀ u_k / √λ_k).
#[derive(Clone, Debug)]
pub struct Embedding {
    mean: Array1<f64>,
    /// d × dim.
    dirs: Array2<f64>,
}

impl Embedding {
    /// Fit on the rows of `x` (the training characters' images).
    pub fn fit(x: &Array2<f64>, dim: usize) -> Result<Embedding> {
        let mean = x
            .mean_axis(Axis(0))
            .ok_or(Error::Empty("training images".into()))?;
        let xc = x - &mean;
        let (w, u) = linalg::sym_eig(linalg::matmul_t(xc.view(), xc.view()).view())?;
        let n = w.len();
        let top = w[n - 1];
        let keep: Vec<usize> = (0..n)
            .rev()
            .filter(|&i| w[i] > 1e-10 * top)
            .take(dim)
            .collect();
        if keep.is_empty() {
            return Err(Error::param(
                "embedding",
                dim,
                "training images have no variance",
            ));
        }
        let mut dirs = Array2::zeros((x.ncols(), keep.len()));
        for (k, &i) in keep.iter().enumerate() {
            let v = xc.t().dot(&u.column(i)) / w[i].sqrt();
            dirs.column_mut(k).assign(&v);
        }
        Ok(Embedding { mean, dirs })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dirs.ncols()
    }

    /// e(x) for every row of `x`.
    pub fn apply(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean).dot(&self.dirs)
    }
}

/// Labels of index tasks: `label(task, pool_row, class_in_task)` gives each point's label row.
pub fn labelled(
    tasks: &[IndexTask],
    k: usize,
    label: &mut dyn FnMut(usize, usize, usize) -> Array1<f64>,
) -> Result<TaskSet> {
    let mut set = Vec::with_capacity(tasks.len());
    for (ti, t) in tasks.iter().enumerate() {
        let block =
            |rows: &[usize],
             cls: &[usize],
             label: &mut dyn FnMut(usize, usize, usize) -> Array1<f64>| {
                let x = Array2::from_shape_fn((rows.len(), 1), |(i, _)| rows[i] as f64);
                let mut y = Array2::zeros((rows.len(), k));
                for (i, (&r, &c)) in rows.iter().zip(cls).enumerate() {
                    y.row_mut(i).assign(&label(ti, r, c));
                }
                (x, y)
            };
        let (xs, ys) = block(&t.support, &t.support_class, label);
        let (xq, yq) = block(&t.query, &t.query_class, label);
        set.push(Task::new(xs, ys, xq, yq)?);
    }
    TaskSet::new(set)
}

/// Nearest-centroid decoding: for every query prediction of task i, the class whose support
/// label (the class centroid of the task's support labels) is nearest in Euclidean distance.
/// Returns the number of correct queries per task.
pub fn nearest_centroid_hits(pred: &Array2<f64>, set: &TaskSet, tasks: &[IndexTask]) -> Vec<usize> {
    let qo = set.query_offsets();
    let mut hits = Vec::with_capacity(tasks.len());
    for (i, (task, t)) in set.tasks().iter().zip(tasks).enumerate() {
        let ways = t.support_class.iter().max().map_or(0, |m| m + 1);
        let mut cent = Array2::<f64>::zeros((ways, set.k()));
        let mut cnt = vec![0.0f64; ways];
        for (r, &c) in t.support_class.iter().enumerate() {
            cent.row_mut(c).scaled_add(1.0, &task.ys.row(r));
            cnt[c] += 1.0;
        }
        for (c, &n) in cnt.iter().enumerate() {
            cent.row_mut(c).mapv_inplace(|v| v / n.max(1.0));
        }
        let p = pred.slice(s![qo[i]..qo[i + 1], ..]);
        let mut h = 0;
        for (row, &truth) in p.rows().into_iter().zip(&t.query_class) {
            let dist = |c: usize| (&row - &cent.row(c)).mapv(|v| v * v).sum();
            let best = (0..ways)
                .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                .unwrap_or(0);
            h += usize::from(best == truth);
        }
        hits.push(h);
    }
    hits
}
