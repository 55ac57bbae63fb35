//! Library behaviour on the inputs of fuzz findings (docs/fuzzing.md), beyond "the fuzz target
//! does not panic" (which `tests/fuzz_corpus_replay.rs` checks).

use gbml_testbed::kernel::{Activation, Arch};
use gbml_testbed::mnk::inner::Schedule;
use gbml_testbed::mnk::tasks::{Task, TaskSet};
use gbml_testbed::mnk::{BaseKernel, Mnk, RidgeMode};
use gbml_testbed::Error;
use ndarray::array;

/// `mnk_task_sets/crash-7099…`: one support point x' = 8.85e-159 (d = 1) whose squared norm
/// underflows to a subnormal, so the support kernel is [Θ(x', x')] with Θ ≈ 1e-316 and its
/// inverse (infinite inner time, no ridge) overflows to +∞; Φ was returned with non-finite
/// entries. Now a `Singular` error naming λ_min and a usable ridge; with that ridge Φ is finite.
#[test]
fn subnormal_support_kernel_is_singular_not_infinite() {
    let task = Task::new(
        array![[8.854494587438971e-159]],
        array![[-3.03125, -3.03125]],
        array![[-3.0625], [-3.03125], [0.0], [-3.03125]],
        array![
            [-0.96875, 1.0],
            [0.5, -3.03125],
            [-3.03125, -3.96875],
            [0.0, 0.0]
        ],
    )
    .unwrap();
    let set = TaskSet::new(vec![task]).unwrap();
    let arch = Arch::new(2, Activation::Erf);
    let mk = Mnk::new(BaseKernel::Analytic(arch.clone()), Schedule::infinite());
    let ridge = match mk.phi(&set) {
        Err(Error::Singular {
            lambda_min,
            lambda_max,
            suggested_ridge,
            ..
        }) => {
            assert!(
                lambda_min > 0.0 && lambda_min < f64::MIN_POSITIVE,
                "{lambda_min:e}"
            );
            assert!(lambda_max >= lambda_min);
            assert!(suggested_ridge.is_finite() && suggested_ridge > 0.0);
            assert!((1.0 / (lambda_min + suggested_ridge)).is_finite());
            suggested_ridge
        }
        other => panic!("expected Error::Singular, got {other:?}"),
    };
    let mk = Mnk::new(
        BaseKernel::Analytic(arch),
        Schedule::infinite().with_ridge(ridge, RidgeMode::InverseOnly),
    );
    let phi = mk.phi(&set).unwrap();
    assert!(phi.iter().all(|v| v.is_finite()), "{phi}");
}
