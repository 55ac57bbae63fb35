//! The Omniglot protocol (MATH.md §10, `gbml omniglot --quick`): the claims' verdicts are
//! computed at every C, the negative controls fail, the unrelated-support control sits at chance,
//! and bad configurations are typed errors.

use gbml_testbed::experiments::omniglot::{names, run, FcKernel, NamedKernel, OmniglotConfig};
use gbml_testbed::experiments::stats::wilson;
use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::data::{omniglot_fixture_path, Omniglot};
use gbml_testbed::Error;
use std::sync::Arc;

fn fc() -> Arch {
    Arch::new(1, Activation::Relu).with_sigma_w(std::f64::consts::SQRT_2)
}

fn kernels() -> Vec<NamedKernel> {
    vec![NamedKernel {
        name: "fc".into(),
        kernel: Arc::new(FcKernel(fc())),
    }]
}

#[test]
fn quick_run_computes_the_claims_and_the_controls_fail() {
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let cfg = OmniglotConfig::quick(fc());
    let rep = run(&data, &cfg, &kernels(), &mut |_| {}).unwrap();
    assert_eq!(rep.points.len(), cfg.train_chars.len());
    for p in &rep.points {
        let few = p.chars <= cfg.few;
        let at_c: Vec<_> = rep.claims.iter().filter(|c| c.chars == p.chars).collect();
        // MNK vs G and its control at every C; MNK vs MAML and its control where C is few.
        assert_eq!(at_c.len(), if few { 4 } else { 2 }, "C = {}", p.chars);
        for c in &at_c {
            assert!(c.diff.mean.is_finite() && c.diff.lower.is_finite(), "{c:?}");
            assert_eq!(c.diff.n, cfg.test_tasks);
            if c.control {
                assert!(!c.established, "control established: {c:?}");
            }
        }
        // Supports of other tasks: no information about the query classes, so chance (1/5).
        let ctl = p
            .methods
            .iter()
            .find(|m| m.method == names::ctl_unrelated("fc"))
            .unwrap();
        assert!(ctl.ci.0 < 0.2 && 0.2 < ctl.ci.1, "{ctl:?}");
        for m in &p.methods {
            let k: usize = m.hits.iter().sum();
            assert_eq!(m.ci, wilson(k, m.hits.len() * m.per_task, cfg.level));
        }
    }
}

#[test]
fn bad_configurations_are_typed_errors() {
    let data = Omniglot::load(&omniglot_fixture_path()).unwrap();
    let mut cfg = OmniglotConfig::quick(fc());
    cfg.maml = None;
    cfg.train_chars = vec![3];
    assert!(matches!(
        run(&data, &cfg, &kernels(), &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
    cfg.train_chars = vec![500];
    assert!(matches!(
        run(&data, &cfg, &kernels(), &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
    cfg.train_chars = vec![5];
    assert!(matches!(
        run(&data, &cfg, &[], &mut |_| {}),
        Err(Error::Empty(_))
    ));
    cfg.level = 1.5;
    assert!(matches!(
        run(&data, &cfg, &kernels(), &mut |_| {}),
        Err(Error::InvalidParameter { .. })
    ));
}
