//! Claim family 2 (issue 5): Theorem 1 — linear convergence of second-order MAML on wide
//! networks at η = ½η*, the late per-step loss ratio (1 − ηλ_min(Φ̂))², and detection of
//! divergence / bound violation above 2/λ_max. The checker (`checks::theorem1`) does the work.
use gbml_testbed::checks::{theorem1::check_theorem1, Settings, Verdict};

#[test]
fn theorem1_linear_rate_quick() {
    let rep = check_theorem1(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!(
            "{} {:?} {} ({})",
            c.id, c.verdict, c.measured_text, c.predicted
        );
    }
    for d in &rep.details {
        println!("- {d}");
    }
    for id in [
        "theorem1.envelope",
        "theorem1.asymptotic_ratio",
        "theorem1.divergence_detected",
        "theorem1.violation_reported",
    ] {
        let c = rep
            .claim(id)
            .unwrap_or_else(|| panic!("missing claim {id}"));
        assert_eq!(
            c.verdict,
            Verdict::Pass,
            "{id}: {} vs {}",
            c.measured_text,
            c.predicted
        );
    }
    // the divergent run really grew by more than 1000x
    assert!(rep.claim("theorem1.divergence_detected").unwrap().measured > 1e3);
}

/// Thorough version (widths to 8192, 8 seeds, T = 300):
/// `cargo test --release --test theorem1_linear_rate -- --ignored`.
#[test]
#[ignore]
fn theorem1_linear_rate_full() {
    let rep = check_theorem1(&Settings::new(gbml_testbed::checks::Profile::Full)).unwrap();
    assert_eq!(rep.verdict, Verdict::Pass, "{:#?}", rep.claims);
}
