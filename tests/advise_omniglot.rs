//! The Omniglot example of `gbml advise` (issue 15 item 6): on the same images, the verdict
//! "will meta-learning help?" is "helps" with a label-consistent class → label map and not
//! "helps" with the random label order of the standard N-way protocol
//! (`gbml_testbed::advise::examples`).
//!
//! Kernel and inner loop as the CLI's defaults: 1-hidden-layer ReLU NTK, σ_w = √2, σ_b = 1, one
//! inner step at half the largest stable inner rate; 5-way 1-shot, 1 query per class, images
//! scaled to norm √784; 2 characters per label (10 characters, each in about 10 of the 20 tasks).
//! CHANGED AFTER THE FIRST RUN: the first run used the CLI's default of 20 characters per label
//! and the standard protocol's own class draws for the random order; at N = 20 each character
//! then appears in about one task, and the consistent variant "hurt" too (−0.099 ± 0.048), as
//! there is nothing to transfer. The random order is now the consistent tasks with every task's
//! labels permuted (same images, `advise::examples`), and the test uses 2 characters per label so
//! that characters recur at this small N; at N = 100 and 20 per label the verdicts differ
//! (docs/notes/advise2.md). The random-order variant is the negative control of the same checker
//! (`advise::advise` → `cv::Verdict`): a wrong "helps" there has probability ≤ 2.5 % per seed
//! if meta-learning truly does not help (one side of the 95 % interval).

use gbml_testbed::advise::examples::{omniglot_tasks, LabelOrder, OmniglotExample};
use gbml_testbed::advise::{self, cv, rates, AdviseConfig};
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::data::{omniglot_fixture_path, Omniglot};
use gbml_testbed::mnk::{BaseKernel, Mnk, Schedule, TaskSet};

fn tasks(om: &Omniglot, n: usize, labels: LabelOrder, seed: u64) -> TaskSet {
    let ex = OmniglotExample {
        tasks: n,
        ways: 5,
        shots: 1,
        queries: 1,
        classes_per_label: 2,
        labels,
    };
    omniglot_tasks(om, &ex, seed).unwrap()
}

/// The CLI's default MNK: inner rate half the largest stable one on `set`.
fn mnk(set: &TaskSet) -> Mnk {
    let arch = Arch::new(1, Activation::Relu)
        .with_sigma_w(2f64.sqrt())
        .with_sigma_b(Some(1.0));
    let probe = Mnk::new(BaseKernel::Analytic(arch.clone()), Schedule::steps(0.0, 1));
    let lr = 0.5 * rates::inner_rates(&probe, set).unwrap().rates.critical;
    Mnk::new(BaseKernel::Analytic(arch), Schedule::steps(lr, 1))
}

fn verdict(set: &TaskSet) -> cv::Loto {
    let cfg = AdviseConfig {
        width: None,
        ..AdviseConfig::default()
    };
    advise::advise(&mnk(set), set, &cfg).unwrap().cv
}

/// One seed, 20 tasks: consistent helps, random order does not, and the gain is larger.
#[test]
fn label_consistent_omniglot_helps_random_label_order_does_not() {
    let om = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let cons = verdict(&tasks(&om, 20, LabelOrder::Consistent, 0));
    let rand = verdict(&tasks(&om, 20, LabelOrder::Random, 0));
    println!(
        "consistent {:?} {:?}\nrandom {:?} {:?}",
        cons.verdict, cons.gain, rand.verdict, rand.gain
    );
    assert_eq!(cons.verdict, cv::Verdict::Helps, "{:?}", cons.gain);
    assert_ne!(rand.verdict, cv::Verdict::Helps, "{:?}", rand.gain);
    assert!(cons.gain.mean > rand.gain.mean);
}

/// Power and false "helps" over seeds 1..=10 at N = 20. Acceptance, fixed before the first run:
/// the consistent variant is "helps" in ≥ 8 of 10 seeds and the random order in ≤ 1 of 10.
#[test]
fn omniglot_verdicts_over_ten_seeds() {
    let om = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let (mut power, mut false_helps) = (0, 0);
    for seed in 1..=10 {
        power += (verdict(&tasks(&om, 20, LabelOrder::Consistent, seed)).verdict
            == cv::Verdict::Helps) as usize;
        false_helps += (verdict(&tasks(&om, 20, LabelOrder::Random, seed)).verdict
            == cv::Verdict::Helps) as usize;
    }
    println!("consistent helps {power}/10, random order helps {false_helps}/10");
    assert!(power >= 8, "power {power}/10");
    assert!(false_helps <= 1, "random order 'helps' {false_helps}/10");
}
