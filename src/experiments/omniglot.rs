//! The paper's Omniglot experiment at this machine's scale (MATH.md §10).
//!
//! Protocol, per number C of training characters (the paper's x-axis, default 5, 10, 20, 40):
//! * **Training tasks:** `tasks_per_char · C` resampled 5-way 1-shot tasks over the first C
//!   characters of a seeded permutation of the dataset's training classes (nested sets), with
//!   `queries` query images per class (the authors: 20 characters → 60 tasks, 19 queries).
//! * **Test tasks:** one fixed set of 5-way 1-shot tasks on the unseen test characters, the same
//!   for every C and every method (so comparisons are paired by task).
//! * **Base kernels** are evaluated once on a pool of images (unit-norm pixels, then optionally
//!   cosine-normalised Gram: K_ij / √(K_ii K_jj), a named option); the MNK runs on that
//!   precomputed Gram matrix with kernel interpolation in both loops (infinite inner and outer
//!   time, ridge 1e-5 in both: the authors' settings, all named options). A cheap kernel (the FC
//!   NTK) is evaluated on the whole pool; an expensive one (the CNTK-GAP, [`CntkKernel`], the
//!   paper's base kernel) only on the pool images the tasks of the run use ([`Setup::used`],
//!   [`PoolImages::Used`]), its other entries are NaN and never read (a read would be a typed
//!   error: the MNK checks every picked entry).
//! * **Labels:** the authors label each class by the centroid of 250-d features of a CNN
//!   pretrained on the training characters; that network is not available, so the features here
//!   are the top `embed_dim` principal components of the **training characters' pixels only**
//!   ([`Embedding`]): a training class is labelled by the centroid of its images' embeddings, a
//!   test support image by its own embedding; predictions are decoded by the nearest support
//!   centroid. Centred one-hot labels are run beside them for reference.
//! * **Methods:** the MNK on each base kernel, the base learner G alone (the inner loop from
//!   f0 = 0, same kernel), and finite-width second-order MAML with the project's MLP on the same
//!   tasks, inputs and embedding labels.
//! * **Statistics:** accuracy with the Wilson 95 % interval over all test queries (queries of a
//!   task are not independent, so the interval is optimistic); claims are paired one-sided t
//!   bounds over test tasks ([`PairedDiff`]): "A beats B" holds iff the 95 % lower bound of
//!   the mean per-task accuracy difference is above 0.
//! * **Claims and negative controls** (made for every base kernel of the run, the kernel in
//!   [`ClaimResult::kernel`] and in the method names): "with few training characters (C ≤ `few`) the MNK beats
//!   finite MAML" (control: the MNK given test supports of *other* tasks, so it has no
//!   information about the query classes, must not beat MAML); "with label embeddings the MNK
//!   beats G" (control: the MNK trained on training labels shuffled across points, so past tasks
//!   carry no information, must not beat G).

use super::omniglot_data::{
    index_tasks, labelled, nearest_centroid_hits, Embedding, IndexTask, Pool,
};
use super::stats::{wilson, PairedDiff};
use crate::error::{Error, Result};
use crate::kernel::{self, Arch, Spec};
use crate::maml::{self, MamlConfig, TrainConfig};
use crate::mnk::data::Omniglot;
use crate::mnk::predict::centred_one_hot;
use crate::mnk::{BaseKernel, KernelFn, LayerKernel, Mnk, Precomputed, Schedule, Task, TaskSet};
use crate::net::Mlp;
use ndarray::{concatenate, Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

/// Finite-width MAML baseline settings (second-order, full-batch outer GD).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MamlSettings {
    /// The network (depth, activation, σ_w, σ_b, width).
    pub arch: Arch,
    /// Inner rate λ and steps τ (the `higher` example: 0.1 × 5).
    pub inner_lr: f64,
    pub inner_steps: usize,
    /// Outer rate η = `outer_rate` / (number of training query points) (the meta-loss is a sum).
    pub outer_rate: f64,
    /// Outer steps.
    pub steps: usize,
    /// Initialization seed.
    pub seed: u64,
}

/// The experiment's configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OmniglotConfig {
    /// Numbers of training characters C.
    pub train_chars: Vec<usize>,
    /// Training tasks per training character.
    pub tasks_per_char: usize,
    /// N-way, K-shot, queries per class (training tasks).
    pub ways: usize,
    pub shots: usize,
    pub queries: usize,
    /// Test tasks and queries per class.
    pub test_tasks: usize,
    pub test_queries: usize,
    /// PCA dimensions of the label embedding.
    pub embed_dim: usize,
    /// Inner and outer schedules of the MNK.
    pub inner: Schedule,
    pub outer: Schedule,
    /// Cosine-normalise the base Gram matrix.
    pub cosine: bool,
    /// "Few" training characters: the MAML claim is made for C ≤ `few`.
    pub few: usize,
    /// The finite MAML baseline (None: skipped, its claim is not made).
    pub maml: Option<MamlSettings>,
    /// Confidence level.
    pub level: f64,
    /// Seed of characters and tasks.
    pub seed: u64,
}

/// A base kernel of the comparison: a name and a kernel function of unit-norm pixel rows.
#[derive(Clone, Debug)]
pub struct NamedKernel {
    pub name: String,
    pub kernel: Arc<dyn KernelFn>,
    /// Which pool images its Gram matrix is evaluated on.
    pub images: PoolImages,
    /// What the kernel substitutes for (printed with the run, kept in the report).
    pub note: String,
}

/// Which pool images a base kernel's Gram matrix is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum PoolImages {
    /// Every pool image.
    All,
    /// Only the images some task of the run uses ([`Setup::used`]).
    Used,
}

impl NamedKernel {
    /// A kernel evaluated on the whole pool, without a note.
    pub fn new(name: impl Into<String>, kernel: Arc<dyn KernelFn>) -> NamedKernel {
        NamedKernel {
            name: name.into(),
            kernel,
            images: PoolImages::All,
            note: String::new(),
        }
    }

    /// Evaluate the Gram matrix only on the images the tasks use.
    pub fn on_used_images(mut self) -> NamedKernel {
        self.images = PoolImages::Used;
        self
    }

    /// Attach a note (substitutions) to the kernel.
    pub fn with_note(mut self, note: impl Into<String>) -> NamedKernel {
        self.note = note.into();
        self
    }
}

/// The paper's base kernel at this machine's scale: the CNTK with global average pooling
/// ([`kernel::conv::kernels`], neural-tangents' `stax` conventions) of the pool's unit-norm
/// `side`×`side` images, block-mean downsampled to `size`×`size` first:
/// x̃[a, b] = (1/f²) Σ_{u,v < f} x[f·a + u, f·b + v], f = side / size. This equals an
/// `avgpool:f` first layer (the input kernel x[p]·x'[q] averaged over all cross pairs of the
/// two windows is x̃[P]·x̃'[Q]), computed once per image instead of on the P² plane.
#[derive(Clone, Debug)]
pub struct CntkKernel {
    layer: LayerKernel,
    side: usize,
}

impl CntkKernel {
    /// The default architecture: 2 × [conv 3×3 SAME, ReLU], GAP, dense (on 7×7 images).
    pub const DEFAULT_LAYERS: &'static str = "conv:3:same,relu,conv:3:same,relu,gap,dense";
    /// The default image side after downsampling.
    pub const DEFAULT_SIZE: usize = 7;
    /// The `--quick` architecture: 1 × [conv 3×3 SAME, ReLU], GAP, dense (on 4×4 images).
    pub const QUICK_LAYERS: &'static str = "conv:3:same,relu,gap,dense";
    /// The `--quick` image side.
    pub const QUICK_SIZE: usize = 4;

    /// `spec` on `side`×`side` single-channel images downsampled to `size`×`size`; `size` must
    /// divide `side` and the architecture must fit the downsampled image (typed errors).
    pub fn new(spec: Spec, side: usize, size: usize) -> Result<CntkKernel> {
        if size == 0 || side % size != 0 {
            return Err(Error::param(
                "cntk image size",
                size,
                format!("must divide the image side {side} (e.g. 28, 14, 7, 4)"),
            ));
        }
        let k = CntkKernel {
            layer: LayerKernel {
                spec,
                shape: (size, size, 1),
            },
            side,
        };
        k.layer.validate()?;
        Ok(k)
    }

    /// The architecture.
    pub fn spec(&self) -> &Spec {
        &self.layer.spec
    }

    /// The image side after downsampling.
    pub fn size(&self) -> usize {
        self.layer.shape.0
    }

    /// The downsampled images, one flattened `size`×`size` image per row (row-major).
    pub fn images(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let (side, size) = (self.side, self.size());
        if x.ncols() != side * side {
            return Err(Error::shape(
                "CNTK input rows",
                format!("{side}·{side} = {} pixels", side * side),
                format!("{} pixels", x.ncols()),
            ));
        }
        let f = side / size;
        let inv = 1.0 / (f * f) as f64;
        Ok(Array2::from_shape_fn((x.nrows(), size * size), |(m, q)| {
            let (a, b) = (q / size, q % size);
            let mut s = 0.0;
            for u in 0..f {
                for v in 0..f {
                    s += x[[m, (f * a + u) * side + f * b + v]];
                }
            }
            s * inv
        }))
    }

    /// What this kernel substitutes for the paper's (printed with the run, kept in the report).
    pub fn note(&self) -> String {
        let s = self.size();
        format!(
            "CNTK-GAP substitution: the paper's base kernel is the CNTK with global average \
             pooling of depth ~20 on 32×32 padded images, precomputed in about 1,000 GPU-hours; \
             here '{}' (NTK parameterization, σ_w = {:.4}, {}) on {s}×{s} images (28×28 \
             block-mean downsampled by {}, = an avgpool:{} first layer), exact in float64 on 2 \
             CPU cores, only on the pool images the tasks use",
            self.spec().layers_string(),
            self.spec().sigma_w,
            self.spec()
                .sigma_b
                .map_or("no bias".to_string(), |b| format!("σ_b = {b}")),
            self.side / s,
            self.side / s,
        )
    }
}

impl KernelFn for CntkKernel {
    fn kernels<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let a = self.images(x1)?;
        let b = x2.map(|x| self.images(x)).transpose()?;
        self.layer.kernels(a.view(), b.as_ref().map(|b| b.view()))
    }
    fn kernels_rows(
        &self,
        x: ArrayView2<f64>,
        rows: Range<usize>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        self.layer.kernels_rows(self.images(x)?.view(), rows)
    }
    fn validate(&self) -> Result<()> {
        self.layer.validate()
    }
}

/// The fully-connected NTK/NNGP ([`crate::kernel`]) as a [`KernelFn`].
#[derive(Clone, Debug)]
pub struct FcKernel(pub Arch);

impl KernelFn for FcKernel {
    fn kernels<'a>(
        &self,
        x1: ArrayView2<'a, f64>,
        x2: Option<ArrayView2<'a, f64>>,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>)> {
        let k = kernel::kernels(&self.0, x1, x2)?;
        Ok((k.ntk, Some(k.nngp)))
    }
    fn validate(&self) -> Result<()> {
        self.0.validate()
    }
}

/// One method's accuracy at one C.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MethodResult {
    /// e.g. `MNK (fc)`, `G (fc)`, `MAML (MLP)`, with labels and controls in the name.
    pub method: String,
    /// Correct queries per test task.
    pub hits: Vec<usize>,
    /// Queries per test task.
    pub per_task: usize,
    pub accuracy: f64,
    /// Wilson interval at the configured level.
    pub ci: (f64, f64),
}

impl MethodResult {
    fn new(method: String, hits: Vec<usize>, per_task: usize, level: f64) -> MethodResult {
        let k: usize = hits.iter().sum();
        let n = hits.len() * per_task;
        MethodResult {
            method,
            accuracy: k as f64 / n.max(1) as f64,
            ci: wilson(k, n, level),
            hits,
            per_task,
        }
    }
    fn per_task_accuracy(&self) -> Vec<f64> {
        self.hits
            .iter()
            .map(|&h| h as f64 / self.per_task as f64)
            .collect()
    }
}

/// All methods at one number of training characters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PointResult {
    pub chars: usize,
    pub train_tasks: usize,
    pub methods: Vec<MethodResult>,
    /// Outer rate MAML used (after halving on divergence), if run.
    pub maml_outer_lr: Option<f64>,
    pub seconds: f64,
}

impl PointResult {
    fn get(&self, name: &str) -> Option<&MethodResult> {
        self.methods.iter().find(|m| m.method == name)
    }
}

/// One claim "a beats b" at one C, or its negative control.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClaimResult {
    pub claim: String,
    /// The base kernel of the MNK the claim is made for.
    pub kernel: String,
    pub chars: usize,
    pub a: String,
    pub b: String,
    pub diff: PairedDiff,
    /// True for a negative control (it must not be established).
    pub control: bool,
    /// Whether "a beats b" is established.
    pub established: bool,
}

impl ClaimResult {
    /// A claim passes when established; a control passes when it is *not* established.
    pub fn ok(&self) -> bool {
        self.established != self.control
    }
}

/// The whole experiment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OmniglotReport {
    pub config: OmniglotConfig,
    pub kernels: Vec<String>,
    /// Per kernel: its note (substitutions) and the number of pool images its Gram matrix was
    /// evaluated on (of `pool_size`).
    pub kernel_notes: Vec<String>,
    pub kernel_images: Vec<usize>,
    pub pool_size: usize,
    pub points: Vec<PointResult>,
    pub claims: Vec<ClaimResult>,
}

/// Method names (one place, used by the runner, the claims and the CLI).
pub mod names {
    pub fn mnk(k: &str) -> String {
        format!("MNK ({k}, embedding)")
    }
    pub fn g(k: &str) -> String {
        format!("G ({k}, embedding)")
    }
    pub fn mnk_onehot(k: &str) -> String {
        format!("MNK ({k}, one-hot)")
    }
    pub fn g_onehot(k: &str) -> String {
        format!("G ({k}, one-hot)")
    }
    pub fn ctl_shuffled(k: &str) -> String {
        format!("control: MNK ({k}), shuffled training labels")
    }
    pub fn ctl_unrelated(k: &str) -> String {
        format!("control: MNK ({k}), supports of other tasks")
    }
    pub const MAML: &str = "MAML (finite MLP, embedding)";
}

impl OmniglotConfig {
    /// The default run (MATH.md §10 at this machine's scale).
    pub fn default_run(fc: Arch) -> OmniglotConfig {
        OmniglotConfig {
            train_chars: vec![5, 10, 20, 40],
            tasks_per_char: 3,
            ways: 5,
            shots: 1,
            queries: 3,
            test_tasks: 100,
            test_queries: 5,
            embed_dim: 16,
            inner: Schedule::infinite().with_ridge(1e-5, crate::mnk::RidgeMode::InverseOnly),
            outer: Schedule::infinite().with_ridge(1e-5, crate::mnk::RidgeMode::InverseOnly),
            cosine: true,
            few: 10,
            maml: Some(MamlSettings {
                arch: fc.with_width(64),
                inner_lr: 0.1,
                inner_steps: 5,
                outer_rate: 8.0,
                steps: 100,
                seed: 1,
            }),
            level: 0.95,
            seed: 20200626,
        }
    }

    /// The CI variant: C ∈ {5, 10}, 20 test tasks with 3 queries per class, fewer MAML steps
    /// (so the pool images the tasks use, ~500, keep the CNTK row at seconds).
    pub fn quick(fc: Arch) -> OmniglotConfig {
        let mut c = Self::default_run(fc);
        c.train_chars = vec![5, 10];
        c.test_tasks = 20;
        c.test_queries = 3;
        if let Some(m) = c.maml.as_mut() {
            m.steps = 30;
            m.arch = m.arch.clone().with_width(32);
        }
        c
    }
}

/// The tasks of a run and the pool images they use.
#[derive(Clone, Debug)]
pub struct Setup {
    pub pool: Pool,
    /// The fixed test tasks (the same for every C and method).
    pub test: Vec<IndexTask>,
    /// The training tasks at each C of `cfg.train_chars` (same order).
    pub train: Vec<Vec<IndexTask>>,
    /// Sorted pool rows some test or training task uses.
    pub used: Vec<usize>,
}

impl Setup {
    /// Pool, test tasks and training tasks of `cfg` (seeded).
    pub fn new(data: &Omniglot, cfg: &OmniglotConfig) -> Result<Setup> {
        let max_c = *cfg
            .train_chars
            .iter()
            .max()
            .ok_or(Error::Empty("train_chars".into()))?;
        let pool = Pool::new(data, max_c, cfg.seed)?;
        let test_firsts: Vec<usize> = (pool.test_start..pool.len())
            .step_by(pool.drawers)
            .collect();
        let test = index_tasks(
            &test_firsts,
            pool.drawers,
            (cfg.test_tasks, cfg.ways, cfg.shots, cfg.test_queries),
            cfg.seed ^ 0x7e57,
        )?;
        let train = cfg
            .train_chars
            .iter()
            .map(|&c| {
                let firsts: Vec<usize> = (0..c).map(|i| i * pool.drawers).collect();
                index_tasks(
                    &firsts,
                    pool.drawers,
                    (cfg.tasks_per_char * c, cfg.ways, cfg.shots, cfg.queries),
                    cfg.seed.wrapping_add(c as u64),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let used: BTreeSet<usize> = test
            .iter()
            .chain(train.iter().flatten())
            .flat_map(|t| t.support.iter().chain(&t.query).copied())
            .collect();
        Ok(Setup {
            pool,
            test,
            train,
            used: used.into_iter().collect(),
        })
    }
}

/// Run the experiment on `data` with the base kernels `kernels` (the claims are made for each).
pub fn run(
    data: &Omniglot,
    cfg: &OmniglotConfig,
    kernels: &[NamedKernel],
    progress: &mut dyn FnMut(&str),
) -> Result<OmniglotReport> {
    validate(cfg, kernels)?;
    let setup = Setup::new(data, cfg)?;
    let grams = kernels
        .iter()
        .map(|k| {
            let m = rows_of(k, &setup).len();
            progress(&format!(
                "base kernel {} on {m} of {} pool images ({} pairs)",
                k.name,
                setup.pool.len(),
                m * (m + 1) / 2
            ));
            base_gram(k, &setup, cfg.cosine)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut points = Vec::new();
    for (&c, train) in cfg.train_chars.iter().zip(&setup.train) {
        progress(&format!("C = {c} training characters"));
        let start = std::time::Instant::now();
        let mut p = run_point(&setup, cfg, kernels, &grams, train, c, progress)?;
        p.seconds = start.elapsed().as_secs_f64();
        points.push(p);
    }
    let claims = kernels
        .iter()
        .flat_map(|k| claims(cfg, &k.name, &points))
        .collect();
    Ok(OmniglotReport {
        config: cfg.clone(),
        kernels: kernels.iter().map(|k| k.name.clone()).collect(),
        kernel_notes: kernels.iter().map(|k| k.note.clone()).collect(),
        kernel_images: kernels.iter().map(|k| rows_of(k, &setup).len()).collect(),
        pool_size: setup.pool.len(),
        points,
        claims,
    })
}

/// The pool rows a kernel's Gram matrix is evaluated on (ascending).
fn rows_of(k: &NamedKernel, setup: &Setup) -> Vec<usize> {
    match k.images {
        PoolImages::All => (0..setup.pool.len()).collect(),
        PoolImages::Used => setup.used.clone(),
    }
}

fn validate(cfg: &OmniglotConfig, kernels: &[NamedKernel]) -> Result<()> {
    if kernels.is_empty() {
        return Err(Error::Empty("base kernels".into()));
    }
    if cfg.train_chars.is_empty() || cfg.train_chars.iter().any(|&c| c < cfg.ways) {
        return Err(Error::param(
            "train_chars",
            format!("{:?}", cfg.train_chars),
            format!("non-empty, each ≥ ways = {}", cfg.ways),
        ));
    }
    if cfg.tasks_per_char == 0 || cfg.test_tasks < 2 || cfg.embed_dim == 0 {
        return Err(Error::param(
            "tasks_per_char/test_tasks/embed_dim",
            format!(
                "{}/{}/{}",
                cfg.tasks_per_char, cfg.test_tasks, cfg.embed_dim
            ),
            "need ≥ 1 training task per character, ≥ 2 test tasks, embedding dimension ≥ 1",
        ));
    }
    if !(cfg.level > 0.5 && cfg.level < 1.0) {
        return Err(Error::param("level", cfg.level, "must lie in (0.5, 1)"));
    }
    cfg.inner.validate()?;
    cfg.outer.validate()
}

/// The base kernel's pool × pool Gram matrix, evaluated once by `k.kernel.kernels(X, None)`
/// on the pool rows X of [`PoolImages`] (ascending), optionally cosine-normalised on those rows
/// (K_ij / √(K_ii K_jj); a zero diagonal entry is an error); entries of rows not evaluated are
/// NaN (never read by the run; a read would be a typed error).
pub fn base_gram(k: &NamedKernel, setup: &Setup, cosine: bool) -> Result<Array2<f64>> {
    k.kernel.validate()?;
    let rows = rows_of(k, setup);
    let x = setup.pool.x.select(Axis(0), &rows);
    let mut g = k.kernel.kernels(x.view(), None)?.0;
    crate::error::ensure_finite(g.view(), "base kernel on the Omniglot pool")?;
    if cosine {
        cosine_normalise(&mut g)?;
    }
    let n = setup.pool.len();
    if rows.len() == n {
        return Ok(g);
    }
    let mut full = Array2::from_elem((n, n), f64::NAN);
    for (a, &i) in rows.iter().enumerate() {
        for (b, &j) in rows.iter().enumerate() {
            full[[i, j]] = g[[a, b]];
        }
    }
    Ok(full)
}

/// K_ij ← K_ij / √(K_ii K_jj) (a diagonal entry ≤ 0 is an error).
fn cosine_normalise(g: &mut Array2<f64>) -> Result<()> {
    let d: Vec<f64> = g.diag().iter().map(|v| v.sqrt()).collect();
    if let Some(i) = d.iter().position(|&v| v.is_nan() || v <= 0.0) {
        return Err(Error::param(
            "cosine normalisation",
            g[[i, i]],
            format!("K[{i},{i}] must be > 0"),
        ));
    }
    for ((i, j), v) in g.indexed_iter_mut() {
        *v /= d[i] * d[j];
    }
    Ok(())
}

/// Everything at one C: tasks, labels, every method.
fn run_point(
    setup: &Setup,
    cfg: &OmniglotConfig,
    kernels: &[NamedKernel],
    grams: &[Array2<f64>],
    train: &[IndexTask],
    c: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<PointResult> {
    let (pool, test) = (&setup.pool, &setup.test[..]);
    let n_tasks = train.len();
    let labels = Labels::new(pool, c, cfg.embed_dim)?;
    let train_emb = labelled(train, labels.k(), &mut |_, r, _| labels.train(r))?;
    let test_emb = labelled(test, labels.k(), &mut |_, r, _| labels.test(r))?;
    let train_1h = labelled(train, cfg.ways, &mut |_, _, j| one_hot(j, cfg.ways))?;
    let test_1h = labelled(test, cfg.ways, &mut |_, _, j| one_hot(j, cfg.ways))?;
    let shuffled = shuffle_labels(&train_emb, cfg.seed ^ c as u64)?;
    let unrelated = rotate_supports(test);
    let test_unrel = labelled(&unrelated, labels.k(), &mut |_, r, _| labels.test(r))?;
    let per_task = cfg.ways * cfg.test_queries;
    let mut methods = Vec::new();
    let mut add = |name: String, hits: Vec<usize>| {
        methods.push(MethodResult::new(name, hits, per_task, cfg.level));
    };
    for (nk, g) in kernels.iter().zip(grams) {
        progress(&format!("  MNK on {} (C = {c}, {n_tasks} tasks)", nk.name));
        let mnk = Mnk::new(
            BaseKernel::Precomputed(Precomputed {
                ntk: g.clone(),
                nngp: None,
            }),
            cfg.inner,
        );
        let pe = mnk.predict(&train_emb, &test_emb, &cfg.outer, None)?;
        add(
            names::mnk(&nk.name),
            nearest_centroid_hits(&pe.test, &test_emb, test),
        );
        add(
            names::g(&nk.name),
            nearest_centroid_hits(&pe.g_test, &test_emb, test),
        );
        let p1 = mnk.predict(&train_1h, &test_1h, &cfg.outer, None)?;
        add(
            names::mnk_onehot(&nk.name),
            nearest_centroid_hits(&p1.test, &test_1h, test),
        );
        add(
            names::g_onehot(&nk.name),
            nearest_centroid_hits(&p1.g_test, &test_1h, test),
        );
        let ps = mnk.predict(&shuffled, &test_emb, &cfg.outer, None)?;
        add(
            names::ctl_shuffled(&nk.name),
            nearest_centroid_hits(&ps.test, &test_emb, test),
        );
        let pu = mnk.predict(&train_emb, &test_unrel, &cfg.outer, None)?;
        add(
            names::ctl_unrelated(&nk.name),
            nearest_centroid_hits(&pu.test, &test_unrel, &unrelated),
        );
    }
    let mut maml_outer_lr = None;
    if let Some(ms) = &cfg.maml {
        progress(&format!("  finite MAML (C = {c})"));
        let (hits, lr) = run_maml(pool, ms, &train_emb, &test_emb, test)?;
        add(names::MAML.to_string(), hits);
        maml_outer_lr = Some(lr);
    }
    Ok(PointResult {
        chars: c,
        train_tasks: n_tasks,
        methods,
        maml_outer_lr,
        seconds: 0.0,
    })
}

fn one_hot(j: usize, ways: usize) -> Array1<f64> {
    centred_one_hot(&[j], ways)
        .expect("j < ways")
        .row(0)
        .to_owned()
}

/// Label embeddings of one C: PCA of the first C training characters' images; a training image
/// is labelled by its character's centroid, a test image by its own embedding.
struct Labels {
    centroids: Array2<f64>,
    drawers: usize,
    test: Array2<f64>,
    test_start: usize,
}

impl Labels {
    fn new(pool: &Pool, c: usize, dim: usize) -> Result<Labels> {
        let xtr = pool.x.slice(ndarray::s![pool.train_rows(c), ..]).to_owned();
        let emb = Embedding::fit(&xtr, dim)?;
        let etr = emb.apply(&xtr);
        let mut centroids = Array2::zeros((c, emb.dim()));
        for i in 0..c {
            let rows = etr.slice(ndarray::s![i * pool.drawers..(i + 1) * pool.drawers, ..]);
            centroids
                .row_mut(i)
                .assign(&rows.mean_axis(Axis(0)).expect("drawers ≥ 1"));
        }
        // One global scale: the RMS norm of the training centroids becomes 1 (the MNK and the
        // nearest-centroid decoding are invariant to it; the finite network's f0 is O(1)).
        let rms = (centroids.mapv(|v| v * v).sum() / c as f64).sqrt();
        let scale = if rms > 0.0 { 1.0 / rms } else { 1.0 };
        centroids.mapv_inplace(|v| v * scale);
        let xte = pool.x.slice(ndarray::s![pool.test_start.., ..]).to_owned();
        Ok(Labels {
            centroids,
            drawers: pool.drawers,
            test: emb.apply(&xte) * scale,
            test_start: pool.test_start,
        })
    }
    fn k(&self) -> usize {
        self.centroids.ncols()
    }
    fn train(&self, row: usize) -> Array1<f64> {
        self.centroids.row(row / self.drawers).to_owned()
    }
    fn test(&self, row: usize) -> Array1<f64> {
        self.test.row(row - self.test_start).to_owned()
    }
}

/// Negative control: the training labels (queries and supports together) permuted across points.
fn shuffle_labels(set: &TaskSet, seed: u64) -> Result<TaskSet> {
    let y = concatenate(Axis(0), &[set.query_y().view(), set.support_y().view()]).expect("same k");
    let mut perm: Vec<usize> = (0..y.nrows()).collect();
    perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (nq, qo, so) = (set.n_query(), set.query_offsets(), set.support_offsets());
    let tasks = set
        .tasks()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let pick = |r: std::ops::Range<usize>| y.select(Axis(0), &perm[r]);
            crate::mnk::Task::new(
                t.xs.clone(),
                pick(nq + so[i]..nq + so[i + 1]),
                t.xq.clone(),
                pick(qo[i]..qo[i + 1]),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}

/// Negative control: every test task gets the support images of the next task (so its
/// supports show other characters than its queries).
fn rotate_supports(test: &[IndexTask]) -> Vec<IndexTask> {
    (0..test.len())
        .map(|i| {
            let next = &test[(i + 1) % test.len()];
            IndexTask {
                support: next.support.clone(),
                support_class: next.support_class.clone(),
                ..test[i].clone()
            }
        })
        .collect()
}

/// Finite second-order MAML on pixel inputs (unit norm × √d) and the embedding labels; the outer rate is halved
/// (at most 4 times) if training diverges. Returns the hits per test task and the rate used.
fn run_maml(
    pool: &Pool,
    ms: &MamlSettings,
    train: &TaskSet,
    test: &TaskSet,
    test_idx: &[IndexTask],
) -> Result<(Vec<usize>, f64)> {
    // Unit-norm pixels times √d: the input kernel x·x'/d of the network (MATH.md §0) is then
    // the cosine, as in the MNK's cosine-normalised base kernel.
    let root_d = (pool.x.ncols() as f64).sqrt();
    let px = |idx: &Array2<f64>| pool.pixels(idx) * root_d;
    let to_meta = |set: &TaskSet| -> Vec<Task> {
        set.tasks()
            .iter()
            .map(|t| Task {
                xs: px(&t.xs),
                ys: t.ys.clone(),
                xq: px(&t.xq),
                yq: t.yq.clone(),
            })
            .collect()
    };
    let (tr, te) = (to_meta(train), to_meta(test));
    let mlp = Mlp::new(&ms.arch, pool.x.ncols(), train.k())?;
    let theta0 = mlp.init(ms.seed);
    let mcfg = MamlConfig::new(ms.inner_lr, ms.inner_steps);
    let mut lr = ms.outer_rate / train.n_query() as f64;
    for attempt in 0..5 {
        match maml::train(
            &mlp,
            theta0.view(),
            &tr,
            &mcfg,
            &TrainConfig::new(lr, ms.steps),
            &mut |_, _| {},
        ) {
            Ok(res) => {
                let out = maml::train::predict(&mlp, res.theta.view(), None, &te, &mcfg)?;
                let views: Vec<_> = out.iter().map(|a| a.view()).collect();
                let pred = concatenate(Axis(0), &views).expect("same k");
                return Ok((nearest_centroid_hits(&pred, test, test_idx), lr));
            }
            Err(Error::Diverged { .. }) if attempt < 4 => lr /= 2.0,
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// The claims and their controls at every C, for the MNK on base kernel `primary`.
fn claims(cfg: &OmniglotConfig, primary: &str, points: &[PointResult]) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    for p in points {
        let mut push = |claim: &str, a: String, b: String, control: bool| {
            if let (Some(ra), Some(rb)) = (p.get(&a), p.get(&b)) {
                let diff =
                    PairedDiff::of(&ra.per_task_accuracy(), &rb.per_task_accuracy(), cfg.level);
                out.push(ClaimResult {
                    claim: claim.to_string(),
                    kernel: primary.to_string(),
                    chars: p.chars,
                    established: diff.established(),
                    a,
                    b,
                    diff,
                    control,
                });
            }
        };
        if p.chars <= cfg.few {
            let c = "with few training characters the MNK beats finite MAML";
            push(c, names::mnk(primary), names::MAML.into(), false);
            push(c, names::ctl_unrelated(primary), names::MAML.into(), true);
        }
        let c = "with label embeddings the MNK beats G";
        push(c, names::mnk(primary), names::g(primary), false);
        push(c, names::ctl_shuffled(primary), names::g(primary), true);
    }
    out
}
