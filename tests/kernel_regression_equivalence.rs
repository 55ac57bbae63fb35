//! Claim family 4 (issue 5): a meta-trained finite network's test-task predictions approach the
//! MNK kernel-regression predictor (same f0, η, T, λ, τ) like width^(−1/2); also for the centred
//! network against f0 = 0. The checker (`checks::equivalence`) does the work.
use gbml_testbed::checks::{equivalence::check_kernel_regression, Profile, Settings, Verdict};

#[test]
fn kernel_regression_equivalence_quick() {
    let rep = check_kernel_regression(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!("{} {:?} {}", c.id, c.verdict, c.measured_text);
        assert_eq!(c.verdict, Verdict::Pass, "{}: {}", c.id, c.measured_text);
        assert!(c.measured < -0.3);
    }
    assert_eq!(rep.claims.len(), 2);
}

/// `cargo test --release --test kernel_regression_equivalence -- --ignored`.
#[test]
#[ignore]
fn kernel_regression_equivalence_full() {
    let rep = check_kernel_regression(&Settings::new(Profile::Full)).unwrap();
    assert_eq!(rep.verdict, Verdict::Pass, "{:#?}", rep.claims);
}
