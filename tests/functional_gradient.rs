//! Claim family 5 (issue 5): one inner and one outer step of a finite network, seen in function
//! space, are the kernel updates of MATH.md §6 up to O(λ²), O(η²) and O(width^(−1/2)); for the
//! linear model, meta-learner − base learner = the projected functional-gradient term exactly.
//! The checker (`checks::functional`) does the work.
use gbml_testbed::checks::{functional::check_functional_gd, Settings, Verdict};

#[test]
fn functional_gradient_quick() {
    let rep = check_functional_gd(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!("{} {:?} {}", c.id, c.verdict, c.measured_text);
        // the Taylor-order checks hold for any smooth model: labelled SANITY (issue 11)
        let want = if c.id.ends_with("_step_order") {
            Verdict::Sanity
        } else {
            Verdict::Pass
        };
        assert_eq!(c.verdict, want, "{}: {}", c.id, c.measured_text);
    }
    assert_eq!(rep.claims.len(), 4);
    let m = rep.claim("functional.meta_minus_base").unwrap().measured;
    assert!(m <= gbml_testbed::tol::LINEAR_TRAJECTORY_REL, "{m}");
}
