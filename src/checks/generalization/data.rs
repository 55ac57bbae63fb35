//! Task families of claim family 7: sine, the Gaussian-process family, the two Omniglot
//! families, label noise with common random numbers and the training/test sets of one setting.

use crate::error::{Error, Result};
use crate::kernel::{Activation, Arch};
use crate::mnk::data::{
    sine_tasks, DrawerSplit, Omniglot, OmniglotFixedSpec, OmniglotSpec, OmniglotSplit, SineSpec,
};
use crate::mnk::{self, Task, TaskSet};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Parameters of the Gaussian-process task family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpSpec {
    /// Number of tasks.
    pub tasks: usize,
    /// Support points per task.
    pub m: usize,
    /// Query points per task.
    pub n: usize,
    /// Input dimension d (inputs x ~ U[−1, 1]^d).
    pub d: usize,
    /// RBF lengthscale ℓ.
    pub lengthscale: f64,
    /// Prior standard deviation of the task functions.
    pub amplitude: f64,
    /// Task spread s ∈ [0, 1]: f_i = √(1−s) f̄ + √s g_i (s = 0: all tasks equal; 1: independent).
    pub spread: f64,
    /// Label-noise fraction p: a label is replaced by N(0, amplitude²) with probability p.
    pub noise: f64,
    /// Number of random Fourier features F.
    pub features: usize,
}

/// A function drawn from the random-Fourier-feature GP:
/// f(x) = σ √(2/F) Σ_j a_j cos(ω_j·x + b_j), a_j ~ N(0,1), ω_j ~ N(0, I/ℓ²), b_j ~ U[0, 2π].
/// Conditional on (ω, b) f is exactly Gaussian with covariance
/// σ² (2/F) Σ_j cos(ω_j·x + b_j) cos(ω_j·x' + b_j), which → σ² exp(−‖x − x'‖²/(2ℓ²)) as F → ∞.
struct RffFunction {
    omega: Array2<f64>,
    b: Array1<f64>,
    a: Array1<f64>,
    scale: f64,
}

impl RffFunction {
    fn draw(spec: &GpSpec, rng: &mut ChaCha8Rng) -> Self {
        let f = spec.features;
        let omega = Array2::from_shape_fn((f, spec.d), |_| {
            let z: f64 = StandardNormal.sample(rng);
            z / spec.lengthscale
        });
        let b = Array1::from_shape_fn(f, |_| rng.gen_range(0.0..std::f64::consts::TAU));
        let a = Array1::from_shape_fn(f, |_| StandardNormal.sample(rng));
        RffFunction {
            omega,
            b,
            a,
            scale: spec.amplitude * (2.0 / f as f64).sqrt(),
        }
    }
    fn eval(&self, x: ndarray::ArrayView1<f64>) -> f64 {
        let mut s = 0.0;
        for j in 0..self.a.len() {
            s += self.a[j] * (self.omega.row(j).dot(&x) + self.b[j]).cos();
        }
        self.scale * s
    }
}

/// Tasks drawn from a Gaussian process (see [`GpSpec`] and the module docs). The shared function
/// f̄ is drawn from `shared_seed` (so training and test tasks share it); everything else from
/// `seed`. k = 1.
pub fn gp_tasks(spec: GpSpec, shared_seed: u64, seed: u64) -> Result<TaskSet> {
    if spec.tasks == 0 || spec.m == 0 || spec.n == 0 || spec.d == 0 || spec.features == 0 {
        return Err(Error::param(
            "GP task sizes",
            format!(
                "N = {}, m = {}, n = {}, d = {}, F = {}",
                spec.tasks, spec.m, spec.n, spec.d, spec.features
            ),
            "all must be >= 1",
        ));
    }
    if !(0.0..=1.0).contains(&spec.spread) || !(0.0..=1.0).contains(&spec.noise) {
        return Err(Error::param(
            "spread / noise",
            format!("{} / {}", spec.spread, spec.noise),
            "must lie in [0, 1]",
        ));
    }
    if !(spec.lengthscale > 0.0 && spec.amplitude > 0.0) {
        return Err(Error::param(
            "lengthscale / amplitude",
            format!("{} / {}", spec.lengthscale, spec.amplitude),
            "must be > 0",
        ));
    }
    let shared = RffFunction::draw(&spec, &mut ChaCha8Rng::seed_from_u64(shared_seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (ws, wt) = ((1.0 - spec.spread).sqrt(), spec.spread.sqrt());
    let mut tasks = Vec::with_capacity(spec.tasks);
    for _ in 0..spec.tasks {
        let own = RffFunction::draw(&spec, &mut rng);
        let mut draw = |cnt: usize| {
            let x = Array2::from_shape_fn((cnt, spec.d), |_| rng.gen_range(-1.0..=1.0));
            let mut y = Array2::zeros((cnt, 1));
            for i in 0..cnt {
                y[[i, 0]] = if spec.noise > 0.0 && rng.gen_bool(spec.noise) {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    spec.amplitude * z
                } else {
                    ws * shared.eval(x.row(i)) + wt * own.eval(x.row(i))
                };
            }
            (x, y)
        };
        let (xs, ys) = draw(spec.m);
        let (xq, yq) = draw(spec.n);
        tasks.push(Task::new(xs, ys, xq, yq)?);
    }
    TaskSet::new(tasks)
}

/// The task families of the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Sine,
    Gp,
    /// Few-shot tasks with a random class → label order per task (accuracy report only).
    Omniglot,
    /// Label-consistent tasks: a fixed class → label map shared by all tasks (the claims).
    OmniglotFixed,
}

impl Family {
    pub(super) fn name(self) -> &'static str {
        match self {
            Family::Sine => "sine",
            Family::Gp => "gp",
            Family::Omniglot => "omniglot",
            Family::OmniglotFixed => "omniglot_fixed",
        }
    }
    /// How a corrupted label is drawn.
    pub(super) fn noise_kind(self) -> NoiseKind {
        match self {
            Family::Sine => NoiseKind::Uniform(1.0),
            Family::Gp => NoiseKind::Gaussian(0.5),
            Family::Omniglot | Family::OmniglotFixed => NoiseKind::Class,
        }
    }
    /// Seed stream of the family in the sweep.
    pub(super) fn stream(self) -> u64 {
        match self {
            Family::Sine => 1,
            Family::Gp => 2,
            Family::Omniglot => 3,
            Family::OmniglotFixed => 4,
        }
    }
    pub(super) fn is_classification(self) -> bool {
        matches!(self, Family::Omniglot | Family::OmniglotFixed)
    }
    pub(super) fn arch(self) -> Arch {
        match self {
            Family::Sine | Family::Gp => Arch::new(1, Activation::Relu)
                .with_sigma_w(2f64.sqrt())
                .with_sigma_b(Some(1.0)),
            Family::Omniglot | Family::OmniglotFixed => {
                Arch::new(2, Activation::Relu).with_sigma_w(2f64.sqrt())
            }
        }
    }
    /// Inner rate λ (one step).
    pub(super) fn inner_lr(self) -> f64 {
        match self {
            Family::Sine | Family::Gp => 0.02,
            Family::Omniglot | Family::OmniglotFixed => 0.05,
        }
    }
}

/// Scale every element of a task set (inputs by `sx`, labels by `sy`).
pub(super) fn scale_set(set: &TaskSet, sx: f64, sy: f64) -> Result<TaskSet> {
    TaskSet::new(
        set.tasks()
            .iter()
            .map(|t| Task::new(&t.xs * sx, &t.ys * sy, &t.xq * sx, &t.yq * sy))
            .collect::<Result<Vec<_>>>()?,
    )
}

/// Clean Omniglot tasks with every image scaled to norm √784 (so that the NTK's x·x'/d is the
/// cosine of the two images).
pub(super) fn omniglot_clean(data: &Omniglot, spec: OmniglotSpec, seed: u64) -> Result<TaskSet> {
    let (set, _) = data.tasks(spec, seed)?;
    crate::mnk::data::sqrt_d_inputs(&set)
}

/// How a corrupted label is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum NoiseKind {
    /// U[−a, a] (k = 1).
    Uniform(f64),
    /// N(0, σ²) (k = 1).
    Gaussian(f64),
    /// A uniformly random class, centred one-hot (k = number of classes).
    Class,
}

/// Label noise with **common random numbers**: for every support/query label (in task order,
/// support rows first) draw u ~ U[0, 1) and a replacement r from `kind`, always, from
/// `ChaCha8Rng::seed_from_u64(seed)`; the label is replaced by r iff u < p. Because the draws do
/// not depend on p, the corrupted sets are nested in p and the tasks' inputs and clean labels
/// are identical at every p: the sweep measures the effect of p alone. Marginally each label is
/// still independently replaced with probability p.
pub(super) fn add_label_noise(
    set: &TaskSet,
    p: f64,
    kind: NoiseKind,
    seed: u64,
) -> Result<TaskSet> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = set.k();
    let mut corrupt = |y: &Array2<f64>| -> Result<Array2<f64>> {
        let mut y = y.clone();
        for mut row in y.rows_mut() {
            let u: f64 = rng.gen();
            let r: Array2<f64> = match kind {
                NoiseKind::Uniform(a) => Array2::from_elem((1, 1), rng.gen_range(-a..=a)),
                NoiseKind::Gaussian(sd) => {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    Array2::from_elem((1, 1), sd * z)
                }
                NoiseKind::Class => mnk::centred_one_hot(&[rng.gen_range(0..k)], k)?,
            };
            if u < p {
                row.assign(&r.row(0));
            }
        }
        Ok(y)
    };
    TaskSet::new(
        set.tasks()
            .iter()
            .map(|t| {
                let ys = corrupt(&t.ys)?;
                let yq = corrupt(&t.yq)?;
                Task::new(t.xs.clone(), ys, t.xq.clone(), yq)
            })
            .collect::<Result<Vec<_>>>()?,
    )
}

/// Seed offset (XOR) of the test tasks of a setting relative to its training tasks.
pub(super) const TEST_SEED_XOR: u64 = 0x7e57_0000;
/// Seed offset (XOR) of the label-noise stream of a task set relative to its task seed.
pub(super) const NOISE_SEED_XOR: u64 = 0x0004_015e;

/// Clean sine tasks (m = 10 support points, `queries` query points per task), inputs and labels
/// divided by 5.
fn sine_clean(n_tasks: usize, queries: usize, seed: u64) -> Result<TaskSet> {
    let set = sine_tasks(
        SineSpec {
            tasks: n_tasks,
            m: 10,
            n: queries,
            noise: 0.0,
        },
        seed,
    )?;
    scale_set(&set, 0.2, 0.2)
}

/// As [`train_test`] for the sine family with `queries` query points per task (training and
/// test tasks; the sweep uses 10): training labels with noise fraction `noise`, clean test
/// labels, the same seeds and noise stream.
pub(super) fn sine_train_test(
    n_train: usize,
    n_test: usize,
    queries: usize,
    noise: f64,
    seed: u64,
) -> Result<(TaskSet, TaskSet)> {
    let kind = Family::Sine.noise_kind();
    let train = sine_clean(n_train, queries, seed)?;
    let test_seed = seed ^ TEST_SEED_XOR;
    let test = sine_clean(n_test, queries, test_seed)?;
    Ok((
        add_label_noise(&train, noise, kind, seed ^ NOISE_SEED_XOR)?,
        add_label_noise(&test, 0.0, kind, test_seed ^ NOISE_SEED_XOR)?,
    ))
}

/// Tasks of a family at noise level p: clean tasks from `seed` (identical for every p), then
/// [`add_label_noise`] with common random numbers from `seed ^` [`NOISE_SEED_XOR`].
/// The training and test task sets of one setting: training tasks from `seed` (Omniglot: the
/// training drawers) with label-noise fraction `noise`, test tasks from `seed ^` [`TEST_SEED_XOR`]
/// (Omniglot: the held-out drawers) with CLEAN labels (issue 11: the noise is on the training
/// labels only, so the test loss rises only if the learner fits the noise).
pub(super) fn train_test(
    fam: Family,
    n_train: usize,
    n_test: usize,
    noise: f64,
    seed: u64,
    omni: Option<&Omniglot>,
) -> Result<(TaskSet, TaskSet)> {
    Ok((
        generate(fam, n_train, noise, seed, omni, OmniglotSplit::Train)?,
        // clean test labels: the noise is on the training labels only (Arora et al. 2019)
        generate(
            fam,
            n_test,
            0.0,
            seed ^ TEST_SEED_XOR,
            omni,
            OmniglotSplit::Test,
        )?,
    ))
}

pub(super) fn generate(
    fam: Family,
    n_tasks: usize,
    noise: f64,
    seed: u64,
    omni: Option<&Omniglot>,
    split: OmniglotSplit,
) -> Result<TaskSet> {
    let clean = match fam {
        Family::Sine => sine_clean(n_tasks, 10, seed)?,
        Family::Gp => gp_tasks(
            GpSpec {
                tasks: n_tasks,
                m: 10,
                n: 10,
                d: 2,
                lengthscale: 0.5,
                amplitude: 0.5,
                spread: 0.5,
                noise: 0.0,
                features: 256,
            },
            0x6a9,
            seed,
        )?,
        Family::Omniglot => {
            let data = omni.ok_or_else(|| Error::Unsupported("Omniglot data not loaded".into()))?;
            let spec = OmniglotSpec {
                tasks: n_tasks,
                ways: 5,
                shots: 1,
                queries: match split {
                    OmniglotSplit::Train => 1,
                    OmniglotSplit::Test => 5,
                },
                split,
            };
            omniglot_clean(data, spec, seed)?
        }
        Family::OmniglotFixed => {
            let data = omni.ok_or_else(|| Error::Unsupported("Omniglot data not loaded".into()))?;
            let (set, _) = data.consistent_tasks(omniglot_fixed_spec(n_tasks, split), seed)?;
            crate::mnk::data::sqrt_d_inputs(&set)?
        }
    };
    add_label_noise(&clean, noise, fam.noise_kind(), seed ^ NOISE_SEED_XOR)
}

/// Classes per label of the label-consistent Omniglot family.
pub const OMNIGLOT_FIXED_CLASSES_PER_LABEL: usize = 20;

pub use crate::mnk::data::OMNIGLOT_POOL_SEED;

/// The label-consistent Omniglot family: 5 labels × 20 classes each (100 of the 170
/// training-split classes, fixed class → label map), 1 shot; training tasks: 1 query per label
/// from drawers 0–13; test tasks: 5 queries per label from the disjoint drawers 14–19 of the same
/// classes. The pool must be large: rank Φ ≤ the number of distinct images in the training tasks,
/// so with 4 classes per label (56 images per label) Φ was singular at N = 60 (300 query rows
/// from at most 280 images).
pub(super) fn omniglot_fixed_spec(n_tasks: usize, split: OmniglotSplit) -> OmniglotFixedSpec {
    OmniglotFixedSpec {
        tasks: n_tasks,
        ways: 5,
        classes_per_label: OMNIGLOT_FIXED_CLASSES_PER_LABEL,
        shots: 1,
        queries: match split {
            OmniglotSplit::Train => 1,
            OmniglotSplit::Test => 5,
        },
        drawers: match split {
            OmniglotSplit::Train => DrawerSplit::Train,
            OmniglotSplit::Test => DrawerSplit::Test,
        },
        pool_seed: OMNIGLOT_POOL_SEED,
    }
}
