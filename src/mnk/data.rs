//! Built-in task generators, all seeded with `ChaCha8Rng::seed_from_u64` (same seed, same bits).
//!
//! * [`sine_tasks`]: 1-d regression y = A sin(x − φ), A ~ U[0.1, 5], φ ~ U[0, π],
//!   x ~ U[−5, 5] (support and query drawn independently); with label-noise fraction p each
//!   label is independently replaced, with probability p, by a random label ~ U[−5, 5].
//! * [`linear_tasks`]: y = w_i·x with w_i = w̄ + s·ε_i, w̄ ~ N(0, I_d/d) drawn once per seed,
//!   ε_i ~ N(0, I_d/d), x ~ N(0, I_d): s controls how much the tasks share (s = 0: one task).
//! * [`omniglot_tasks`]: N-way K-shot classification from the Omniglot subset in
//!   `fixtures/omniglot/` (242 classes × 20 drawers, 28×28); images flattened to 784 and scaled
//!   to [0, 1]; labels are centred one-hot ([`super::centred_one_hot`]).
//! * [`Omniglot::consistent_tasks`]: a label-consistent variant — a fixed class → label map
//!   shared by all tasks (training and test tasks differ in drawers), i.e. shared structure
//!   across tasks that label noise can destroy.

use super::predict::centred_one_hot;
use super::tasks::{Task, TaskSet};
use crate::error::{Error, Result};
use ndarray::{Array2, Array4, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Parameters of the sine-regression family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SineSpec {
    /// Number of tasks N.
    pub tasks: usize,
    /// Support points per task m.
    pub m: usize,
    /// Query points per task n.
    pub n: usize,
    /// Label-noise fraction p ∈ [0, 1].
    pub noise: f64,
}

fn check_sizes(tasks: usize, m: usize, n: usize) -> Result<()> {
    if tasks == 0 || m == 0 || n == 0 {
        return Err(Error::param(
            "task sizes",
            format!("N = {tasks}, m = {m}, n = {n}"),
            "all must be >= 1",
        ));
    }
    Ok(())
}

/// Sine-regression tasks (see the module docs); d = k = 1.
pub fn sine_tasks(spec: SineSpec, seed: u64) -> Result<TaskSet> {
    check_sizes(spec.tasks, spec.m, spec.n)?;
    if !(0.0..=1.0).contains(&spec.noise) {
        return Err(Error::param(
            "noise",
            spec.noise,
            "fraction must lie in [0, 1]",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tasks = Vec::with_capacity(spec.tasks);
    for _ in 0..spec.tasks {
        let amp: f64 = rng.gen_range(0.1..=5.0);
        let phase: f64 = rng.gen_range(0.0..=std::f64::consts::PI);
        let draw = |cnt: usize, rng: &mut ChaCha8Rng| {
            let x = Array2::from_shape_fn((cnt, 1), |_| rng.gen_range(-5.0..=5.0));
            let y = Array2::from_shape_fn((cnt, 1), |(i, _)| {
                let clean = amp * (x[[i, 0]] - phase).sin();
                if spec.noise > 0.0 && rng.gen_bool(spec.noise) {
                    rng.gen_range(-5.0..=5.0)
                } else {
                    clean
                }
            });
            (x, y)
        };
        let (xs, ys) = draw(spec.m, &mut rng);
        let (xq, yq) = draw(spec.n, &mut rng);
        tasks.push(Task::new(xs, ys, xq, yq)?);
    }
    TaskSet::new(tasks)
}

/// Parameters of the random linear family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSpec {
    pub tasks: usize,
    pub m: usize,
    pub n: usize,
    /// Input dimension d.
    pub d: usize,
    /// Task spread s ≥ 0 around the shared weight w̄.
    pub spread: f64,
}

/// Random linear tasks (see the module docs); k = 1.
pub fn linear_tasks(spec: LinearSpec, seed: u64) -> Result<TaskSet> {
    check_sizes(spec.tasks, spec.m, spec.n)?;
    if spec.d == 0 {
        return Err(Error::param("d", 0, "input dimension must be >= 1"));
    }
    if !(spec.spread.is_finite() && spec.spread >= 0.0) {
        return Err(Error::param(
            "spread",
            spec.spread,
            "must be finite and >= 0",
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = spec.d;
    let sd = 1.0 / (d as f64).sqrt();
    let normal = |rng: &mut ChaCha8Rng| -> f64 { StandardNormal.sample(rng) };
    let wbar: Vec<f64> = (0..d).map(|_| sd * normal(&mut rng)).collect();
    let mut tasks = Vec::with_capacity(spec.tasks);
    for _ in 0..spec.tasks {
        let w: Vec<f64> = wbar
            .iter()
            .map(|&wb| wb + spec.spread * sd * normal(&mut rng))
            .collect();
        let draw = |cnt: usize, rng: &mut ChaCha8Rng| {
            let x = Array2::from_shape_fn((cnt, d), |_| normal(rng));
            let y = Array2::from_shape_fn((cnt, 1), |(i, _)| {
                x.row(i).iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            });
            (x, y)
        };
        let (xs, ys) = draw(spec.m, &mut rng);
        let (xq, yq) = draw(spec.n, &mut rng);
        tasks.push(Task::new(xs, ys, xq, yq)?);
    }
    TaskSet::new(tasks)
}

/// The Omniglot image array: `images[class][drawer]` flattened to 784 values in [0, 1].
#[derive(Clone, Debug)]
pub struct Omniglot {
    /// classes × drawers × 784.
    pub images: ndarray::Array3<f64>,
}

/// Which classes a task may draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OmniglotSplit {
    /// Classes 0..[`Omniglot::n_train_classes`] (alphabets Balinese … Korean, Latin, part of
    /// Sanskrit in the fixture's order).
    Train,
    /// The remaining classes (disjoint from the training classes).
    Test,
}

/// Parameters of an Omniglot few-shot family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OmniglotSpec {
    pub tasks: usize,
    /// N-way.
    pub ways: usize,
    /// K-shot (support images per class).
    pub shots: usize,
    /// Query images per class.
    pub queries: usize,
    pub split: OmniglotSplit,
}

impl Omniglot {
    /// Load `omniglot28.npy` (uint8, [classes, drawers, 28, 28]).
    pub fn load(path: &std::path::Path) -> Result<Omniglot> {
        let f = std::fs::File::open(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let raw: Array4<u8> = ndarray_npy::ReadNpyExt::read_npy(f).map_err(|e| Error::Parse {
            what: "Omniglot .npy (expected uint8 [classes, drawers, 28, 28])".into(),
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let (c, dr, h, w) = raw.dim();
        if c < 2 || dr < 2 || h * w == 0 {
            return Err(Error::Parse {
                what: "Omniglot .npy".into(),
                path: path.display().to_string(),
                reason: format!("shape {:?} too small", raw.dim()),
            });
        }
        let images = raw
            .mapv(|v| v as f64 / 255.0)
            .into_shape_with_order((c, dr, h * w))
            .expect("contiguous");
        Ok(Omniglot { images })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.images.len_of(Axis(0))
    }

    /// Training classes: the first ⌊0.7·C⌋ (170 of 242), the rest are test classes.
    pub fn n_train_classes(&self) -> usize {
        self.classes() * 7 / 10
    }

    /// N-way K-shot tasks: per task, `ways` distinct classes from the split in random order
    /// (task label j = j-th drawn class), and per class `shots + queries` distinct drawers.
    /// Returns the tasks and, per task, the query class labels (0..ways).
    pub fn tasks(&self, spec: OmniglotSpec, seed: u64) -> Result<(TaskSet, Vec<Vec<usize>>)> {
        check_sizes(spec.tasks, spec.shots, spec.queries)?;
        let drawers = self.images.len_of(Axis(1));
        let pool: Vec<usize> = match spec.split {
            OmniglotSplit::Train => (0..self.n_train_classes()).collect(),
            OmniglotSplit::Test => (self.n_train_classes()..self.classes()).collect(),
        };
        if spec.ways < 2 || spec.ways > pool.len() {
            return Err(Error::param(
                "ways",
                spec.ways,
                format!("must lie in 2..={}", pool.len()),
            ));
        }
        if spec.shots + spec.queries > drawers {
            return Err(Error::param(
                "shots + queries",
                spec.shots + spec.queries,
                format!("at most {drawers} images per class"),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tasks = Vec::with_capacity(spec.tasks);
        let mut labels = Vec::with_capacity(spec.tasks);
        for _ in 0..spec.tasks {
            let classes: Vec<usize> = pool.choose_multiple(&mut rng, spec.ways).copied().collect();
            let mut picks = Vec::with_capacity(spec.ways);
            for &c in &classes {
                let mut idx: Vec<usize> = (0..drawers).collect();
                idx.shuffle(&mut rng);
                picks.push((c, idx));
            }
            let (task, lq) = self.task_from_picks(spec.shots, spec.queries, &picks)?;
            tasks.push(task);
            labels.push(lq);
        }
        Ok((TaskSet::new(tasks)?, labels))
    }
}

/// Path of the Omniglot fixture in this source tree.
pub fn omniglot_fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/omniglot/omniglot28.npy")
}

/// The same tasks with every input row scaled to unit Euclidean norm (zero rows stay zero).
/// For a ReLU network without bias the NTK is positively homogeneous, so this equals the
/// cosine-normalised kernel the authors' experiments use.
pub fn unit_norm_inputs(set: &TaskSet) -> Result<TaskSet> {
    let f = |x: &Array2<f64>| {
        let mut x = x.clone();
        for mut r in x.rows_mut() {
            let n = r.dot(&r).sqrt();
            if n > 0.0 {
                r /= n;
            }
        }
        x
    };
    TaskSet::new(
        set.tasks()
            .iter()
            .map(|t| Task::new(f(&t.xs), t.ys.clone(), f(&t.xq), t.yq.clone()))
            .collect::<Result<Vec<_>>>()?,
    )
}

/// The same tasks with every input row scaled to Euclidean norm √d (zero rows stay zero), so
/// that the fully-connected NTK's first-layer x·x'/d is the cosine of the two inputs (the
/// Omniglot preprocessing of the claims and of `gbml advise`).
pub fn sqrt_d_inputs(set: &TaskSet) -> Result<TaskSet> {
    let f = |x: &Array2<f64>| {
        let d = x.ncols() as f64;
        let mut x = x.clone();
        for mut r in x.rows_mut() {
            let n = r.dot(&r).sqrt();
            if n > 0.0 {
                r *= d.sqrt() / n;
            }
        }
        x
    };
    TaskSet::new(
        set.tasks()
            .iter()
            .map(|t| Task::new(f(&t.xs), t.ys.clone(), f(&t.xq), t.yq.clone()))
            .collect::<Result<Vec<_>>>()?,
    )
}

/// Which drawers (image instances) of each class a label-consistent task may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawerSplit {
    /// Drawers 0..⌊0.7·D⌋ (14 of 20).
    Train,
    /// The remaining drawers (6 of 20), disjoint from the training drawers.
    Test,
}

/// Seed of the class pool of the label-consistent Omniglot family (the same for every replicate,
/// training and test tasks: the class → label map is part of the family).
pub const OMNIGLOT_POOL_SEED: u64 = 0x0_b1_9107;

/// Parameters of the label-consistent Omniglot family ([`Omniglot::consistent_tasks`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OmniglotFixedSpec {
    /// Number of tasks.
    pub tasks: usize,
    /// Number of labels (N-way).
    pub ways: usize,
    /// Classes per label: the pool holds `ways · classes_per_label` classes.
    pub classes_per_label: usize,
    /// Support images per label (K-shot).
    pub shots: usize,
    /// Query images per label.
    pub queries: usize,
    /// Which drawers the images come from.
    pub drawers: DrawerSplit,
    /// Seed of the class pool (use the same for training and test tasks).
    pub pool_seed: u64,
}

impl Omniglot {
    /// The class pool of the label-consistent family: `ways` groups of `classes_per_label`
    /// distinct training-split classes (drawn without replacement from `pool_seed`); group j holds
    /// the classes whose label is j.
    pub fn label_groups(&self, spec: &OmniglotFixedSpec) -> Result<Vec<Vec<usize>>> {
        let pool = self.n_train_classes();
        if spec.ways < 2 || spec.classes_per_label == 0 || spec.ways * spec.classes_per_label > pool
        {
            return Err(Error::param(
                "ways × classes_per_label",
                format!("{} × {}", spec.ways, spec.classes_per_label),
                format!("need ways >= 2, classes_per_label >= 1 and at most {pool} classes"),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.pool_seed);
        let all: Vec<usize> = (0..pool).collect();
        let chosen: Vec<usize> = all
            .choose_multiple(&mut rng, spec.ways * spec.classes_per_label)
            .copied()
            .collect();
        Ok(chosen
            .chunks(spec.classes_per_label)
            .map(|c| c.to_vec())
            .collect())
    }

    /// The drawer indices of a split.
    pub fn drawer_range(&self, split: DrawerSplit) -> std::ops::Range<usize> {
        let d = self.images.len_of(Axis(1));
        let cut = d * 7 / 10;
        match split {
            DrawerSplit::Train => 0..cut,
            DrawerSplit::Test => cut..d,
        }
    }

    /// Label-consistent N-way K-shot tasks: a **fixed class → label map** shared by all tasks
    /// ([`Self::label_groups`]: label j ↔ group j of the class pool). Per task and label j, one
    /// class of group j is drawn uniformly, then `shots + queries` distinct drawers from the
    /// drawer split; support and query rows are ordered by label, labels are centred one-hot.
    /// Training and test tasks use the same classes (same `pool_seed`) and disjoint drawers, so
    /// the class → label structure learned from training tasks transfers to test tasks; label
    /// noise destroys it. (Contrast [`Self::tasks`], whose label order is random per task.)
    /// Returns the tasks and, per task, the query labels.
    pub fn consistent_tasks(
        &self,
        spec: OmniglotFixedSpec,
        seed: u64,
    ) -> Result<(TaskSet, Vec<Vec<usize>>)> {
        check_sizes(spec.tasks, spec.shots, spec.queries)?;
        let groups = self.label_groups(&spec)?;
        let drawers: Vec<usize> = self.drawer_range(spec.drawers).collect();
        if spec.shots + spec.queries > drawers.len() {
            return Err(Error::param(
                "shots + queries",
                spec.shots + spec.queries,
                format!("at most {} drawers in this split", drawers.len()),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tasks = Vec::with_capacity(spec.tasks);
        let mut labels = Vec::with_capacity(spec.tasks);
        for _ in 0..spec.tasks {
            let mut picks = Vec::with_capacity(spec.ways);
            for group in &groups {
                let c = *group.choose(&mut rng).expect("non-empty group");
                let idx: Vec<usize> = drawers
                    .choose_multiple(&mut rng, spec.shots + spec.queries)
                    .copied()
                    .collect();
                picks.push((c, idx));
            }
            let (task, lq) = self.task_from_picks(spec.shots, spec.queries, &picks)?;
            tasks.push(task);
            labels.push(lq);
        }
        Ok((TaskSet::new(tasks)?, labels))
    }

    /// One few-shot task from `picks[j] = (class, drawer order)` for label j: the first
    /// `shots` drawers of the order are label j's support images, the next `queries` its query
    /// images; labels are centred one-hot over the `picks.len()` ways. Returns the task and its
    /// query labels.
    fn task_from_picks(
        &self,
        shots: usize,
        queries: usize,
        picks: &[(usize, Vec<usize>)],
    ) -> Result<(Task, Vec<usize>)> {
        let d = self.images.len_of(Axis(2));
        let ways = picks.len();
        let (m, n) = (ways * shots, ways * queries);
        let mut xs = Array2::zeros((m, d));
        let mut xq = Array2::zeros((n, d));
        let mut ls = Vec::with_capacity(m);
        let mut lq = Vec::with_capacity(n);
        for (j, (c, idx)) in picks.iter().enumerate() {
            for s in 0..shots {
                xs.row_mut(j * shots + s)
                    .assign(&self.images.slice(ndarray::s![*c, idx[s], ..]));
                ls.push(j);
            }
            for q in 0..queries {
                xq.row_mut(j * queries + q)
                    .assign(&self.images.slice(ndarray::s![*c, idx[shots + q], ..]));
                lq.push(j);
            }
        }
        let ys = centred_one_hot(&ls, ways)?;
        let yq = centred_one_hot(&lq, ways)?;
        Ok((Task::new(xs, ys, xq, yq)?, lq))
    }
}
