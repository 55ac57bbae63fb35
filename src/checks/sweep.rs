//! The shared width × seed training sweep of claim families 2, 3 and 4 (computed once per
//! settings and cached, so `gbml check` trains each network only once).
//!
//! Setup (every number is reported in the checks' parameters):
//! - tasks: random linear tasks (`mnk::data::linear_tasks`), d = 16, N = 5 training tasks and 5
//!   test tasks with m = 5, n = 3, spread 1: a *well-conditioned* MNK (κ(Φ) ≈ 9, reported), the
//!   regime in which Theorem 1's width threshold is reachable (MATH.md §9), with a clear gap
//!   λ_2/λ_1 ≈ 1.3 so the slowest mode dominates the late loss within T steps;
//! - network: 1 hidden layer, ReLU, σ_w = √2, no bias, NTK parameterization, k = 1
//!   (the theorem is for any depth; one hidden layer keeps training at width 8192 cheap);
//! - inner loop: τ = 1 step at λ = 0.1 (second-order MAML), the MNK with the same discrete T;
//! - outer loop: full-batch GD at η = ½ η*, η* = 2/(λ_min + λ_max) of the analytic Φ, T steps;
//!   Φ̂_t recorded every T/10 steps; both the plain network and the centred one (f − f(·; θ_0)).

use super::common::stack;
use super::{Profile, Settings};
use crate::error::Result;
use crate::kernel::{Activation, Arch};
use crate::maml::{self, MamlConfig, StepRecord, TrainConfig};
use crate::mnk::{self, data::LinearSpec, BaseKernel, Mnk, Schedule, Spectrum, TaskSet, F0};
use crate::net::Mlp;
use ndarray::Array2;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One trained network.
#[derive(Clone, Debug)]
pub struct Run {
    /// Hidden width.
    pub width: usize,
    /// Seed index.
    pub seed: usize,
    /// Records t = 0..=T of the plain network.
    pub records: Vec<StepRecord>,
    /// (t, Φ̂_t) of the plain network.
    pub mnk: Vec<(usize, Array2<f64>)>,
    /// Meta-residuals r_t = F(θ_t) − Y of the plain network, t = 0..=T (recorded at the largest
    /// width only, empty otherwise; used by the late-ratio window of family 2).
    pub residuals: Vec<Array2<f64>>,
    /// Test-task predictions of the trained plain network (Σn̂ × k).
    pub test_pred: Array2<f64>,
    /// Test-task predictions of the trained centred network.
    pub test_pred_centred: Array2<f64>,
    /// Network outputs at θ_0 on (train, test) points.
    pub f0: (F0, F0),
}

/// The sweep's task family (training and test tasks): 5 random linear tasks, m = 5, n = 3,
/// d = 16, spread 1 (module docs).
pub const SWEEP_TASKS: LinearSpec = LinearSpec {
    tasks: 5,
    m: 5,
    n: 3,
    d: 16,
    spread: 1.0,
};

/// The training tasks are `linear_tasks(SWEEP_TASKS, seed + TRAIN_SEED_OFFSET)` (the test tasks
/// use seed + 202).
pub const TRAIN_SEED_OFFSET: u64 = 101;

/// The whole sweep.
#[derive(Debug)]
pub struct Sweep {
    /// Architecture (widths set per run).
    pub arch: Arch,
    /// Training tasks.
    pub train: TaskSet,
    /// Test tasks.
    pub test: TaskSet,
    /// Inner schedule (λ, τ steps), the same for the finite nets and the analytic MNK.
    pub inner: Schedule,
    /// Analytic MNK Φ on the training tasks.
    pub phi: Array2<f64>,
    /// Its spectrum.
    pub spectrum: Spectrum,
    /// Outer rate η = `eta_factor` · η*.
    pub eta: f64,
    /// η / η*.
    pub eta_factor: f64,
    /// Outer steps T.
    pub steps: usize,
    /// Widths.
    pub widths: Vec<usize>,
    /// Seeds per width.
    pub seeds: usize,
    /// All runs (width-major).
    pub runs: Vec<Run>,
    /// MNK predictor on the test tasks with the network's f0, per run (same order as runs).
    pub mnk_pred: Vec<Array2<f64>>,
    /// MNK predictor with f0 = 0 (centred network).
    pub mnk_pred_centred: Array2<f64>,
}

/// The MNK used by the sweep (analytic base kernel, discrete inner schedule).
pub fn sweep_mnk(arch: &Arch, inner: Schedule) -> Mnk {
    Mnk::new(BaseKernel::Analytic(arch.clone()), inner)
}

impl Sweep {
    /// The finite nets' MAML options: second order, full adaptation, the sweep's inner schedule.
    pub fn maml_config(&self) -> MamlConfig {
        MamlConfig::from_schedule(self.inner)
    }
    /// The outer schedule (η, T steps) of the finite nets and of the MNK predictor.
    pub fn outer(&self) -> Schedule {
        Schedule::steps(self.eta, self.steps)
    }
}

fn cache() -> &'static Mutex<HashMap<(u8, u64), Arc<Sweep>>> {
    static C: OnceLock<Mutex<HashMap<(u8, u64), Arc<Sweep>>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The sweep for these settings (computed on first use, then cached).
pub fn sweep(st: &Settings) -> Result<Arc<Sweep>> {
    let key = (
        match st.profile {
            Profile::Quick => 0,
            Profile::Default => 1,
            Profile::Full => 2,
        },
        st.seed,
    );
    if let Some(s) = cache().lock().unwrap().get(&key) {
        return Ok(s.clone());
    }
    let s = Arc::new(compute(st)?);
    cache().lock().unwrap().insert(key, s.clone());
    Ok(s)
}

/// The initialisation seed of the run (width `w`, seed index `s`) under the settings' seed.
pub fn init_seed(seed: u64, w: usize, s: usize) -> u64 {
    seed.wrapping_mul(31).wrapping_add((w * 1000 + s) as u64)
}

fn compute(st: &Settings) -> Result<Sweep> {
    let arch = Arch::new(1, Activation::Relu).with_sigma_w(2f64.sqrt());
    let spec = SWEEP_TASKS;
    let train = mnk::data::linear_tasks(spec, st.seed.wrapping_add(TRAIN_SEED_OFFSET))?;
    let test = mnk::data::linear_tasks(spec, st.seed.wrapping_add(202))?;
    let inner = Schedule::steps(0.1, 1);
    let mnk_k = sweep_mnk(&arch, inner);
    let phi = mnk_k.phi(&train)?;
    let spectrum = Spectrum::of(phi.view())?;
    let eta_factor = 0.5;
    let eta = eta_factor * spectrum.eta_crit;
    let steps = st.pick(150, 200, 300);
    let widths: Vec<usize> = st.pick(
        vec![64, 256, 1024, 4096],
        vec![64, 128, 256, 512, 1024, 2048, 4096],
        vec![64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    );
    let seeds = st.pick(3, 6, 10);
    let outer = Schedule::steps(eta, steps);
    let cfg = MamlConfig::from_schedule(inner);
    let (tasks, test_tasks) = (train.tasks(), test.tasks());
    let pb = st.bar(
        (widths.len() * seeds) as u64,
        "training sweep (widths × seeds)",
    );
    let mut runs = Vec::new();
    let mut mnk_pred = Vec::new();
    for &w in &widths {
        let a = arch.clone().with_width(w);
        let mlp = Mlp::new(&a, spec.d, 1)?;
        for s in 0..seeds {
            let theta0 = mlp.init(init_seed(st.seed, w, s));
            let tc = TrainConfig::from_schedule(outer)
                .with_mnk_every(Some((steps / 10).max(1)))
                .with_residuals(w == *widths.last().expect("widths"));
            let res = maml::train(&mlp, theta0.view(), tasks, &cfg, &tc, &mut |_, _| {})?;
            let tcc = TrainConfig::from_schedule(outer).with_centred(true);
            let resc = maml::train(&mlp, theta0.view(), tasks, &cfg, &tcc, &mut |_, _| {})?;
            let test_pred = stack(&maml::predict(
                &mlp,
                res.theta.view(),
                None,
                test_tasks,
                &cfg,
            )?);
            let test_pred_centred = stack(&maml::predict(
                &mlp,
                resc.theta.view(),
                Some(theta0.view()),
                test_tasks,
                &cfg,
            )?);
            let f0_of = |set: &TaskSet| -> Result<F0> {
                Ok(F0 {
                    query: mlp.forward(theta0.view(), set.query_x().view())?,
                    support: mlp.forward(theta0.view(), set.support_x().view())?,
                })
            };
            let f0 = (f0_of(&train)?, f0_of(&test)?);
            let p = mnk_k.predict(&train, &test, &outer, Some((&f0.0, &f0.1)))?;
            mnk_pred.push(p.test);
            runs.push(Run {
                width: w,
                seed: s,
                records: res.records,
                mnk: res.mnk,
                residuals: res.residuals,
                test_pred,
                test_pred_centred,
                f0,
            });
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let mnk_pred_centred = mnk_k.predict(&train, &test, &outer, None)?.test;
    Ok(Sweep {
        arch,
        train,
        test,
        inner,
        phi,
        spectrum,
        eta,
        eta_factor,
        steps,
        widths,
        seeds,
        runs,
        mnk_pred,
        mnk_pred_centred,
    })
}
