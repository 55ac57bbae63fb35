//! Each convention mistake `gbml compare` diagnoses: fabricate a candidate with that mistake
//! (our own library evaluated under the wrong convention), compare it against the manifest that
//! states the right convention, and assert the mismatch is reported with that diagnosis.

use gbml_testbed::io::compare::{compare_values, reference, Inputs, Verdict};
use gbml_testbed::io::export::{cases, Case};
use gbml_testbed::io::manifest::{Layout, Loop, LossNorm, Manifest, Quantity, RidgeMode, F0};
use gbml_testbed::io::tolerance::ToleranceTable;
use gbml_testbed::kernel::Parameterization;
use gbml_testbed::mnk::Variant;
use ndarray::Array2;

fn case(name_part: &str, q: Quantity) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name.contains(name_part) && c.manifest.quantity == q)
        .unwrap_or_else(|| panic!("no pack case {name_part} / {q}"))
}

/// Fabricate with `wrong`, compare against `right`, assert a mismatch naming `expect`.
fn assert_diagnosed(
    right: &Manifest,
    inputs: &Inputs,
    wrong: &Manifest,
    wrong_inputs: &Inputs,
    expect: &str,
) {
    let cand = reference(wrong, wrong_inputs).expect("candidate under the wrong convention");
    let rep = compare_values(right, inputs, &cand, &ToleranceTable::defaults(), "test").unwrap();
    assert_eq!(
        rep.verdict,
        Verdict::Mismatch,
        "{expect}: the mistake went unnoticed\n{rep}"
    );
    let names: Vec<&str> = rep.diagnoses.iter().map(|d| d.name.as_str()).collect();
    assert!(
        names.contains(&expect),
        "expected diagnosis {expect}, got {names:?}\n{rep}"
    );
    // The named alternative matches to (nearly) full precision: it is the same computation.
    let d = rep.diagnoses.iter().find(|d| d.name == expect).unwrap();
    assert!(d.min_lre >= 12.0, "{expect}: only {:.2} digits", d.min_lre);
}

fn edited(m: &Manifest, f: impl FnOnce(&mut Manifest)) -> Manifest {
    let mut m2 = m.clone();
    f(&mut m2);
    m2
}

#[test]
fn correct_candidate_passes_without_diagnosis() {
    for c in cases() {
        let r = reference(&c.manifest, &c.inputs).unwrap();
        let rep =
            compare_values(&c.manifest, &c.inputs, &r, &ToleranceTable::defaults(), "t").unwrap();
        assert_eq!(rep.verdict, Verdict::Pass, "{}", c.name);
        assert!(rep.diagnoses.is_empty());
    }
}

#[test]
fn standard_instead_of_ntk_parameterization() {
    let c = case("easy-relu_d2-", Quantity::Ntk);
    let right = edited(&c.manifest, |m| m.conventions.widths = Some(vec![64, 32]));
    let wrong = edited(&right, |m| {
        m.conventions.parameterization = Parameterization::Standard
    });
    assert_diagnosed(
        &right,
        &c.inputs,
        &wrong,
        &c.inputs,
        "standard_parameterization",
    );
}

#[test]
fn ntk_instead_of_standard_parameterization() {
    let c = case("relu_d2_standard", Quantity::Ntk);
    let wrong = edited(&c.manifest, |m| {
        m.conventions.parameterization = Parameterization::Ntk
    });
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "ntk_parameterization",
    );
}

#[test]
fn missing_one_over_d_input_scaling() {
    for q in [Quantity::Ntk, Quantity::MnkGram] {
        let c = case(
            if q == Quantity::Ntk {
                "easy-erf_d3_cross"
            } else {
                "relu_d1_steps"
            },
            q,
        );
        // Without the 1/d the first layer sees σ_w² x·x' = σ_w² (√d x)·(√d x)/d.
        let mut scaled = c.inputs.clone();
        for (role, a) in scaled.iter_mut() {
            if role.starts_with('x') || role.starts_with("test_x") {
                let d = *a.shape().last().unwrap() as f64;
                a.mapv_inplace(|v| v * d.sqrt());
            }
        }
        assert_diagnosed(
            &c.manifest,
            &c.inputs,
            &c.manifest,
            &scaled,
            "missing_input_scaling_1_over_d",
        );
    }
}

#[test]
fn nngp_written_for_ntk() {
    let c = case("easy-relu_d2-", Quantity::Ntk);
    let wrong = edited(&c.manifest, |m| m.quantity = Quantity::Nngp);
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "nngp_instead_of_ntk",
    );
}

#[test]
fn zero_bias_versus_no_bias_in_standard_parameterization() {
    let c = case("relu_d2_standard", Quantity::Ntk);
    // The case has σ_b = 0 (a trainable bias); a candidate without bias differs by 1 per layer.
    let wrong = edited(&c.manifest, |m| m.conventions.sigma_b = None);
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "no_bias_instead_of_zero_bias",
    );
    let right = wrong.clone();
    assert_diagnosed(
        &right,
        &c.inputs,
        &c.manifest,
        &c.inputs,
        "zero_bias_instead_of_no_bias",
    );
}

#[test]
fn transposed_cross_kernel() {
    for (part, q) in [
        ("easy-erf_d3_cross", Quantity::Ntk),
        ("relu_d1_steps", Quantity::MnkCross),
    ] {
        let c = case(part, q);
        let r = reference(&c.manifest, &c.inputs).unwrap();
        let r2 = r.into_dimensionality::<ndarray::Ix2>().unwrap();
        assert_ne!(
            r2.nrows(),
            r2.ncols(),
            "non-square: detected from the shape"
        );
        let cand = r2.t().to_owned().into_dyn();
        let rep = compare_values(
            &c.manifest,
            &c.inputs,
            &cand,
            &ToleranceTable::defaults(),
            "t",
        )
        .unwrap();
        assert_eq!(rep.verdict, Verdict::Mismatch);
        assert_eq!(rep.diagnoses[0].name, "transposed", "{rep}");
    }
    // Square, non-symmetric cross kernel: detected from the values.
    let c = case("easy-erf_d3_cross", Quantity::Ntk);
    let mut inputs = c.inputs.clone();
    let x2 = inputs["x1"].clone();
    let mut x2 = x2.into_dimensionality::<ndarray::Ix2>().unwrap();
    x2.mapv_inplace(|v| 0.7 * v + 0.1);
    inputs.insert("x2".into(), x2.into_dyn());
    let r = reference(&c.manifest, &inputs)
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let cand = r.t().to_owned().into_dyn();
    let rep = compare_values(
        &c.manifest,
        &inputs,
        &cand,
        &ToleranceTable::defaults(),
        "t",
    )
    .unwrap();
    assert!(
        rep.diagnoses.iter().any(|d| d.name == "transposed"),
        "{rep}"
    );
}

#[test]
fn mean_loss_instead_of_sum() {
    for q in [
        Quantity::InnerOperatorT,
        Quantity::MnkGram,
        Quantity::Predictions,
    ] {
        let c = case("relu_d1_steps", q);
        let wrong = edited(&c.manifest, |m| m.conventions.loss = Some(LossNorm::Mean));
        assert_diagnosed(
            &c.manifest,
            &c.inputs,
            &wrong,
            &c.inputs,
            "mean_loss_instead_of_sum",
        );
    }
}

#[test]
fn queries_first_versus_per_task_layout() {
    let c = case("relu_d1_steps", Quantity::MnkGram);
    assert_eq!(c.manifest.conventions.layout, Some(Layout::PerTask));
    let wrong = edited(&c.manifest, |m| {
        m.conventions.layout = Some(Layout::QueriesFirst)
    });
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "queries_first_layout",
    );
    let c = case("erf_d2_flow_ridge", Quantity::Predictions);
    let wrong = edited(&c.manifest, |m| {
        m.conventions.layout = Some(Layout::PerTask)
    });
    assert_diagnosed(&c.manifest, &c.inputs, &wrong, &c.inputs, "per_task_layout");
}

#[test]
fn ridge_in_the_exponent() {
    let c = case("erf_d2_flow_ridge", Quantity::MnkGram);
    let Some(Loop::Flow { time, ridge, .. }) = c.manifest.conventions.inner else {
        panic!("flow inner loop expected")
    };
    assert!(ridge > 0.0);
    let wrong = edited(&c.manifest, |m| {
        m.conventions.inner = Some(Loop::Flow {
            time,
            ridge,
            ridge_mode: RidgeMode::InverseAndExponent,
        })
    });
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "ridge_in_exponent",
    );
    assert_diagnosed(
        &wrong,
        &c.inputs,
        &c.manifest,
        &c.inputs,
        "ridge_not_in_exponent",
    );
}

#[test]
fn inner_time_lambda_instead_of_lambda_tau() {
    let c = case("relu_d1_steps", Quantity::MnkGram);
    let Some(Loop::Steps { lr, .. }) = c.manifest.conventions.inner else {
        panic!()
    };
    let wrong = edited(&c.manifest, |m| {
        m.conventions.inner = Some(Loop::Flow {
            time: lr,
            ridge: 0.0,
            ridge_mode: RidgeMode::InverseOnly,
        })
    });
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "inner_time_lambda_instead_of_lambda_tau",
    );
}

#[test]
fn gradient_flow_instead_of_discrete_steps() {
    let c = case("relu_d1_steps", Quantity::InnerOperatorT);
    let Some(Loop::Steps { lr, steps, .. }) = c.manifest.conventions.inner else {
        panic!()
    };
    let wrong = edited(&c.manifest, |m| {
        m.conventions.inner = Some(Loop::Flow {
            time: lr * steps as f64,
            ridge: 0.0,
            ridge_mode: RidgeMode::InverseOnly,
        })
    });
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "gradient_flow_instead_of_steps",
    );
}

#[test]
fn anil_instead_of_maml() {
    let c = case("relu_d1_steps", Quantity::MnkGram);
    let wrong = edited(&c.manifest, |m| m.conventions.variant = Some(Variant::Anil));
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "anil_instead_of_maml",
    );
}

#[test]
fn f0_taken_as_zero() {
    let c = case("relu_d1_steps", Quantity::Predictions);
    let mut right = c.manifest.clone();
    let mut inputs = c.inputs.clone();
    right.conventions.f0 = Some(F0::File);
    for (role, src) in [("f0", "y"), ("test_f0", "test_y")] {
        let y = inputs[src]
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let f0 = Array2::from_shape_fn(y.dim(), |(i, j)| 0.1 * ((i * 7 + j) as f64).sin());
        inputs.insert(role.into(), f0.into_dyn());
        right.inputs.insert(role.into(), format!("{role}.npy"));
    }
    right.validate().unwrap();
    assert_diagnosed(
        &right,
        &inputs,
        &c.manifest,
        &c.inputs,
        "f0_zero_instead_of_file",
    );
}

#[test]
fn unrelated_error_gets_no_diagnosis() {
    let c = case("easy-relu_d2-", Quantity::Ntk);
    let mut cand = reference(&c.manifest, &c.inputs).unwrap();
    cand[[2, 3]] *= 1.0 + 1e-6;
    cand[[3, 2]] *= 1.0 + 1e-6;
    let rep = compare_values(
        &c.manifest,
        &c.inputs,
        &cand,
        &ToleranceTable::defaults(),
        "t",
    )
    .unwrap();
    assert_eq!(rep.verdict, Verdict::Mismatch);
    assert!(rep.diagnoses.is_empty(), "{rep}");
    let s = rep.stats.unwrap();
    assert!(s.worst_index == vec![2, 3] || s.worst_index == vec![3, 2]);
    assert!((s.min_lre - 6.0).abs() < 0.05, "{}", s.min_lre);
}

#[test]
fn first_order_instead_of_second_order_meta_gradient() {
    use gbml_testbed::maml::Order;
    for q in [Quantity::MetaGradient, Quantity::MetaLossTrajectory] {
        let c = case("maml", q);
        let wrong = edited(&c.manifest, |m| m.conventions.order = Some(Order::First));
        assert_diagnosed(
            &c.manifest,
            &c.inputs,
            &wrong,
            &c.inputs,
            "first_order_instead_of_second_order",
        );
    }
}

#[test]
fn mean_loss_in_the_meta_gradient() {
    let c = case("maml", Quantity::MetaGradient);
    let wrong = edited(&c.manifest, |m| m.conventions.loss = Some(LossNorm::Mean));
    assert_diagnosed(
        &c.manifest,
        &c.inputs,
        &wrong,
        &c.inputs,
        "mean_loss_instead_of_sum",
    );
}

#[test]
fn sum_loss_instead_of_mean() {
    for q in [
        Quantity::InnerOperatorT,
        Quantity::MnkGram,
        Quantity::Predictions,
    ] {
        let c = case("relu_d1_steps", q);
        assert_eq!(c.manifest.conventions.loss, Some(LossNorm::Sum));
        // The manifest says mean; the candidate used the sum (the case's own convention).
        let right = edited(&c.manifest, |m| m.conventions.loss = Some(LossNorm::Mean));
        assert_diagnosed(
            &right,
            &c.inputs,
            &c.manifest,
            &c.inputs,
            "sum_loss_instead_of_mean",
        );
    }
}

#[test]
fn maml_instead_of_anil() {
    for q in [Quantity::MnkGram, Quantity::Predictions] {
        let c = case("relu_d1_steps", q);
        let right = edited(&c.manifest, |m| m.conventions.variant = Some(Variant::Anil));
        let wrong = edited(&c.manifest, |m| m.conventions.variant = Some(Variant::Maml));
        assert_diagnosed(&right, &c.inputs, &wrong, &c.inputs, "maml_instead_of_anil");
    }
}

#[test]
fn second_order_instead_of_first_order_meta_gradient() {
    use gbml_testbed::maml::Order;
    for q in [Quantity::MetaGradient, Quantity::MetaLossTrajectory] {
        let c = case("maml", q);
        assert_eq!(c.manifest.conventions.order, Some(Order::Second));
        let right = edited(&c.manifest, |m| m.conventions.order = Some(Order::First));
        assert_diagnosed(
            &right,
            &c.inputs,
            &c.manifest,
            &c.inputs,
            "second_order_instead_of_first_order",
        );
    }
}

#[test]
fn outer_ridge_mode_swapped() {
    // The pack's outer loops have no ridge in a finite-time loop; give the flow outer loop one.
    let c = case("relu_d1_steps", Quantity::Predictions);
    let Some(Loop::Flow { time, .. }) = c.manifest.conventions.outer else {
        panic!("flow outer loop expected")
    };
    let with_mode = |mode| {
        edited(&c.manifest, |m| {
            m.conventions.outer = Some(Loop::Flow {
                time,
                ridge: 0.1,
                ridge_mode: mode,
            })
        })
    };
    let inverse_only = with_mode(RidgeMode::InverseOnly);
    let both = with_mode(RidgeMode::InverseAndExponent);
    assert_diagnosed(
        &inverse_only,
        &c.inputs,
        &both,
        &c.inputs,
        "outer_ridge_mode_swapped",
    );
    assert_diagnosed(
        &both,
        &c.inputs,
        &inverse_only,
        &c.inputs,
        "outer_ridge_mode_swapped",
    );
}

#[test]
fn ntk_written_for_nngp() {
    let c = case("easy-relu_d2-", Quantity::Ntk);
    let right = edited(&c.manifest, |m| m.quantity = Quantity::Nngp);
    assert_diagnosed(
        &right,
        &c.inputs,
        &c.manifest,
        &c.inputs,
        "ntk_instead_of_nngp",
    );
}
