//! Claim family 6 (issue 5): exact identities of a model linear in θ hold to machine precision.
//! The checker (`checks::linear`) does the work; this test asserts its verdicts and measured
//! errors against the tolerances in `gbml_testbed::tol`.
use gbml_testbed::checks::{linear::check_linear_identities, Settings, Verdict};

#[test]
fn linear_model_identities_hold_to_machine_precision() {
    let rep = check_linear_identities(&Settings::quick()).unwrap();
    for c in &rep.claims {
        println!(
            "{} {:?} measured {:e} ({})",
            c.id, c.verdict, c.measured, c.predicted
        );
    }
    assert_eq!(rep.claims.len(), 6);
    for c in &rep.claims {
        assert_eq!(
            c.verdict,
            Verdict::Pass,
            "{}: measured {} vs {}",
            c.id,
            c.measured,
            c.predicted
        );
    }
    // the static identities are exact up to rounding
    for id in [
        "linear.ntk_exact",
        "linear.inner_closed_form",
        "linear.phi_equals_jf",
    ] {
        assert!(rep.claim(id).unwrap().measured <= gbml_testbed::tol::LINEAR_IDENTITY_REL);
    }
}
