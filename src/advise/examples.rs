//! The Omniglot example of `gbml advise` (issue 15 item 6): the same N-way K-shot tasks with a
//! label-consistent class → label map vs the random label order of the standard protocol.
//!
//! Both variants draw the same tasks: a fixed class pool of `ways × classes_per_label`
//! training-split classes (label j ↔ group j, pool seed [`OMNIGLOT_POOL_SEED`]), per task and
//! label one class of group j and `shots + queries` drawers ([`Omniglot::consistent_tasks`]).
//!
//! * [`LabelOrder::Consistent`]: labels as drawn, so a character has the same label in every task
//!   it appears in: the predicted verdict is "helps" when characters recur across tasks (each
//!   character appears in about N / classes_per_label tasks).
//! * [`LabelOrder::Random`]: the same images with the label columns of every task permuted by an
//!   independent uniformly random permutation (seeded), i.e. the random label order of the
//!   standard N-way protocol. A character's label then carries no information across tasks, so a
//!   meta-learned initialization has nothing to transfer beyond what the base learner G gets from
//!   the support set: the predicted verdict is "does not help" (or "hurts": the pooled fit adds
//!   variance). The two variants differ only in the label order, so the difference of the
//!   verdicts is attributable to it.
//!
//! Both variants scale every image to norm √784 ([`crate::mnk::data::sqrt_d_inputs`]), as the
//! claims of family 7 do.

use crate::error::Result;
use crate::mnk::data::{
    sqrt_d_inputs, DrawerSplit, Omniglot, OmniglotFixedSpec, OMNIGLOT_POOL_SEED,
};
use crate::mnk::{Task, TaskSet};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// How the classes of a task are mapped to its labels (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelOrder {
    /// Random label order per task (the standard N-way protocol).
    Random,
    /// A fixed class → label map shared by all tasks.
    Consistent,
}

/// Sizes of the Omniglot example.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OmniglotExample {
    pub tasks: usize,
    /// N-way.
    pub ways: usize,
    /// K-shot.
    pub shots: usize,
    /// Query images per class.
    pub queries: usize,
    /// Classes per label of the class pool.
    pub classes_per_label: usize,
    pub labels: LabelOrder,
}

/// The tasks of the example (module docs), seeded.
pub fn omniglot_tasks(om: &Omniglot, ex: &OmniglotExample, seed: u64) -> Result<TaskSet> {
    let spec = OmniglotFixedSpec {
        tasks: ex.tasks,
        ways: ex.ways,
        classes_per_label: ex.classes_per_label,
        shots: ex.shots,
        queries: ex.queries,
        drawers: DrawerSplit::Train,
        pool_seed: OMNIGLOT_POOL_SEED,
    };
    let (set, _) = om.consistent_tasks(spec, seed)?;
    let set = match ex.labels {
        LabelOrder::Consistent => set,
        LabelOrder::Random => permute_labels(&set, seed ^ PERMUTATION_STREAM)?,
    };
    sqrt_d_inputs(&set)
}

/// Seed stream of the per-task label permutations (xor-ed with the task seed).
const PERMUTATION_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;

/// Every task's label columns (support and query alike) permuted by its own uniformly random
/// permutation π: new column π(j) = old column j.
fn permute_labels(set: &TaskSet, seed: u64) -> Result<TaskSet> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tasks = set
        .tasks()
        .iter()
        .map(|t| {
            let mut pi: Vec<usize> = (0..t.ys.ncols()).collect();
            pi.shuffle(&mut rng);
            let perm = |y: &Array2<f64>| {
                let mut out = Array2::zeros(y.raw_dim());
                for (j, &pj) in pi.iter().enumerate() {
                    out.column_mut(pj).assign(&y.column(j));
                }
                out
            };
            Task::new(t.xs.clone(), perm(&t.ys), t.xq.clone(), perm(&t.yq))
        })
        .collect::<Result<Vec<_>>>()?;
    TaskSet::new(tasks)
}
