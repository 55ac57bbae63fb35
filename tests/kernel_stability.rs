//! Claim family 3 (issue 5): during meta-training the MNK moves O(width^(−1/2)), each layer's
//! relative weight change decays like width^(−1/2), and ‖θ_T − θ_0‖ stays bounded.
//! The checker (`checks::stability`) does the work.
use gbml_testbed::checks::{stability::check_kernel_stability, Profile, Settings, Verdict};

#[test]
fn kernel_stability_quick() {
    let rep = check_kernel_stability(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!("{} {:?} {}", c.id, c.verdict, c.measured_text);
        assert_eq!(c.verdict, Verdict::Pass, "{}: {}", c.id, c.measured_text);
    }
    assert!(rep.claim("stability.mnk_slope").unwrap().measured < -0.35);
    assert!(rep.claim("stability.dist_bounded").unwrap().measured < 0.1);
}

/// `cargo test --release --test kernel_stability -- --ignored`.
#[test]
#[ignore]
fn kernel_stability_full() {
    let rep = check_kernel_stability(&Settings::new(Profile::Full)).unwrap();
    assert_eq!(rep.verdict, Verdict::Pass, "{:#?}", rep.claims);
}
