//! Claim family 7 (issue 5): the §7 generalization bound and complexity C vs measured test error
//! of the MNK predictor and finite-width MAML (see `gbml_testbed::checks::generalization`).
//!
//! The quick test runs the checker with the CI profile and asserts the verdicts measured on the
//! fixed seeds: rank correlation of C and test loss on sine and GP tasks (Spearman ρ ≥ 0.9,
//! p < 0.01; false-positive rate < 1% each), the bound above the measured bounded loss in every
//! setting, and finite MAML following the MNK. The Omniglot rank claim and "C grows with noise"
//! are not asserted to pass: on the fixed seeds they are INCONCLUSIVE because the order of C over
//! the top noise levels is not resolved by the replicates (explained in the report details); the
//! test asserts they are not FAIL and that the explanation is present.
//!
//! The thorough version (`--ignored`) runs the full profile:
//! `cargo test --release --test generalization_bound -- --ignored`.
use gbml_testbed::checks::generalization::{bounded_loss, check_generalization, gp_tasks, GpSpec};
use gbml_testbed::checks::{Settings, Verdict};
use ndarray::array;

fn verdict(r: &gbml_testbed::checks::CheckReport, id: &str) -> Verdict {
    r.claim(id)
        .unwrap_or_else(|| panic!("claim {id} missing"))
        .verdict
}

#[test]
fn generalization_bound_quick() {
    let r = check_generalization(&Settings::quick()).unwrap();
    assert_eq!(r.claims.len(), 6);
    for id in [
        "generalization.rank_sine",
        "generalization.rank_gp",
        "generalization.bound_above_error",
        "generalization.maml_follows_mnk",
    ] {
        assert_eq!(verdict(&r, id), Verdict::Pass, "{id}: {:?}", r.claim(id));
    }
    // measured: the bound exceeds the error everywhere (ratio ≤ 1) and is vacuous (> 1).
    let b = r.claim("generalization.bound_above_error").unwrap();
    assert!(b.measured > 0.0 && b.measured <= 1.0, "{b:?}");
    assert!(r.details.iter().any(|d| d.contains("vacuous")));
    for id in [
        "generalization.rank_omniglot",
        "generalization.c_grows_with_noise",
    ] {
        assert_ne!(verdict(&r, id), Verdict::Fail, "{id}: {:?}", r.claim(id));
        if verdict(&r, id) != Verdict::Pass {
            assert!(r
                .details
                .iter()
                .any(|d| d.contains("C not increasing in p")));
        }
    }
    assert_eq!(r.figures.len(), 4);
}

#[test]
#[ignore = "thorough: full profile (several minutes)"]
fn generalization_bound_full() {
    let r = check_generalization(&Settings::new(gbml_testbed::checks::Profile::Full)).unwrap();
    for id in [
        "generalization.rank_sine",
        "generalization.rank_gp",
        "generalization.bound_above_error",
        "generalization.maml_follows_mnk",
    ] {
        assert_eq!(verdict(&r, id), Verdict::Pass, "{id}: {:?}", r.claim(id));
    }
    // Measured on the full profile (16 replicates): "C grows with noise" FAILS, resolvedly, on the
    // GP curves, where C peaks at p = 0.8 (the replacement-label variance equals the prior
    // amplitude, so E[Q]'s slope at p = 1, σ_r² tr M − S_f, can be negative; see the docs). The
    // rank claims are unaffected. Assert that the failure is this one and is explained.
    if verdict(&r, "generalization.c_grows_with_noise") == Verdict::Fail {
        assert!(
            r.details
                .iter()
                .any(|d| d.contains("C not increasing in p for gp") && d.contains("S_f")),
            "{:#?}",
            r.details
        );
    }
    assert_ne!(verdict(&r, "generalization.rank_omniglot"), Verdict::Fail);
}

/// The bounded loss against hand values: min(1, ‖ŷ − y‖₂) averaged over rows.
#[test]
fn bounded_loss_hand_values() {
    let pred = array![[0.0, 0.0], [3.0, 4.0], [0.3, 0.4]];
    let y = array![[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]];
    // rows: 0, min(1, 5) = 1, 0.5 → mean 0.5
    assert!((bounded_loss(pred.view(), y.view()) - 0.5).abs() < 1e-15);
}

/// GP tasks: same seeds give the same bits; bad input is a typed error.
#[test]
fn gp_tasks_spread_and_errors() {
    let spec = GpSpec {
        tasks: 2,
        m: 3,
        n: 2,
        d: 2,
        lengthscale: 0.5,
        amplitude: 0.5,
        spread: 0.0,
        noise: 0.0,
        features: 64,
    };
    let set = gp_tasks(spec, 1, 2).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.k(), 1);
    assert_eq!(set, gp_tasks(spec, 1, 2).unwrap());
    assert!(gp_tasks(
        GpSpec {
            spread: 1.5,
            ..spec
        },
        1,
        2
    )
    .is_err());
    assert!(gp_tasks(GpSpec { tasks: 0, ..spec }, 1, 2).is_err());
    assert!(gp_tasks(
        GpSpec {
            lengthscale: 0.0,
            ..spec
        },
        1,
        2
    )
    .is_err());
}
