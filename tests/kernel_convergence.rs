//! Claim family 1 (issue 5): empirical NTK and empirical MNK at initialization converge to the
//! analytic kernels like width^(−1/2) (slope test: 95% CI ∋ −½ or slope ∈ [−0.65, −0.35];
//! false-positive discussion in `checks::stats`). The checker (`checks::convergence`) does the work.
use gbml_testbed::checks::{convergence::check_kernel_convergence, Profile, Settings, Verdict};

#[test]
fn kernel_convergence_quick() {
    let rep = check_kernel_convergence(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!("{} {:?} {}", c.id, c.verdict, c.measured_text);
        assert_eq!(c.verdict, Verdict::Pass, "{}: {}", c.id, c.measured_text);
        // a slope is a measured number: it must be clearly negative whatever the band says
        assert!(c.measured < -0.3, "{}: {}", c.id, c.measured);
    }
    assert_eq!(rep.claims.len(), 2);
}

/// Widths 64…4096, 8 seeds: `cargo test --release --test kernel_convergence -- --ignored`.
#[test]
#[ignore]
fn kernel_convergence_full() {
    let rep = check_kernel_convergence(&Settings::new(Profile::Full)).unwrap();
    assert_eq!(rep.verdict, Verdict::Pass, "{:#?}", rep.claims);
}
