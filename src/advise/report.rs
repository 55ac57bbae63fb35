//! The text report of [`super::Advice`]: every number with how it was obtained.

use super::cv::{Verdict, LEVEL};
use super::rates::{LoopRates, REDUCTION};
use super::Advice;
use std::fmt::Write;

fn steps(r: &LoopRates) -> String {
    match r.steps {
        Some(s) => format!("{s}"),
        None => "∞ (λ_min ≤ 0: no linear convergence predicted)".into(),
    }
}

fn list(v: &[usize]) -> String {
    let s: Vec<String> = v.iter().map(|i| i.to_string()).collect();
    s.join(", ")
}

/// Section 1: learning rates.
fn rates_text(a: &Advice, o: &mut String) {
    let (r, i) = (&a.outer, &a.inner.rates);
    let _ = writeln!(
        o,
        "1. Learning rates (infinite-width predictions, MATH.md §2, §4)"
    );
    let _ = writeln!(
        o,
        "   outer: Φ ({0}×{0}, {1} tasks) has λ_min = {2:.4e}, λ_max = {3:.4e}",
        a.n_query, a.n_tasks, r.lambda_min, r.lambda_max
    );
    let _ = writeln!(
        o,
        "     critical rate 2/λ_max = {:.4e} (outer GD diverges above it)",
        r.critical
    );
    let _ = writeln!(o, "     best rate 2/(λ_min+λ_max) = {:.4e}: per-step meta-loss factor (1 − ηλ_min)² = {:.6}, steps to reduce the meta-loss by {REDUCTION:e}: {}", r.best, r.loss_factor, steps(r));
    let _ = writeln!(
        o,
        "   inner: support kernels Θ'_i have μ_min ≥ {:.4e}, μ_max ≤ {:.4e} over the tasks",
        i.lambda_min, i.lambda_max
    );
    let _ = writeln!(
        o,
        "     largest stable inner rate 2/max_i μ_max = {:.4e}, constrained by task(s) {}",
        i.critical,
        list(&a.inner.constraining)
    );
    let _ = writeln!(o, "     best shared inner rate 2/(min μ_min + max μ_max) = {:.4e}: per-step support-loss factor {:.6}, steps to {REDUCTION:e}: {}", i.best, i.loss_factor, steps(i));
    let _ = writeln!(
        o,
        "   (the MNK below uses the inner schedule {:?})",
        a.inner_schedule.time
    );
}

/// Section 2: width.
fn width_text(a: &Advice, o: &mut String) {
    let _ = writeln!(
        o,
        "2. Width (empirical MNK of finite networks vs the analytic Φ)"
    );
    match &a.width {
        None => {
            let _ = writeln!(
                o,
                "   not computed: {}",
                a.width_note.as_deref().unwrap_or("")
            );
        }
        Some(w) => {
            let mut per: Vec<String> = Vec::new();
            for &(wd, s, e) in &w.measurements {
                per.push(format!("w={wd} s={s}: {e:.4}"));
            }
            let _ = writeln!(
                o,
                "   relative error ‖Φ̂ − Φ‖_F/‖Φ‖_F on the first {} tasks: {}",
                w.tasks,
                per.join("; ")
            );
            let _ = writeln!(o, "   fit ε = c·width^(−½): c = {:.3} ({:.0}% CI {:.3} … {:.3}); free log-log slope {:.2} (−0.5 expected)", w.c, LEVEL * 100.0, w.c_lo, w.c_hi, w.slope);
            let _ = writeln!(
                o,
                "   width for a {:.0}% MNK error: (c/tol)² = {:.0} (CI {:.0} … {:.0})",
                w.tol * 100.0,
                w.width,
                w.width_lo,
                w.width_hi
            );
        }
    }
}

/// Section 3: will meta-learning help.
fn cv_text(a: &Advice, o: &mut String) {
    let c = &a.cv;
    let mg = c.loss_g.iter().sum::<f64>() / c.loss_g.len() as f64;
    let mm = c.loss_mnk.iter().sum::<f64>() / c.loss_mnk.len() as f64;
    let _ = writeln!(
        o,
        "3. Will meta-learning help? (leave-one-task-out CV, closed form, ridge ρ = {:.3e})",
        c.ridge
    );
    let _ = writeln!(o, "   held-out query loss ½‖·‖²/n per task, mean over {} tasks: base learner G {:.4e}, MNK predictor {:.4e}", c.gain.n, mg, mm);
    let v = match c.verdict {
        Verdict::Helps => format!("meta-learning lowers held-out query loss by {:.3e} ± {:.3e} ({:.0}% of G's loss; {:.0}% CI, paired t over tasks)", c.gain.mean, c.gain.half_width, 100.0 * c.relative_gain, LEVEL * 100.0),
        Verdict::DoesNotHelp => format!("meta-learning does not help on these tasks: gain {:.3e} ± {:.3e} ({:.0}% CI contains 0)", c.gain.mean, c.gain.half_width, LEVEL * 100.0),
        Verdict::Hurts => format!("meta-learning hurts on these tasks: held-out loss rises by {:.3e} ± {:.3e} ({:.0}% CI)", -c.gain.mean, c.gain.half_width, LEVEL * 100.0),
    };
    let _ = writeln!(o, "   verdict: {v}");
    let x = &a.complexity;
    let _ = writeln!(o, "   complexity C = √(Ỹᵀ(Φ+ρI)⁻¹Ỹ/N) = {:.4}; if every label were noise of the same mean square ({:.3e}): √E[C²] = {:.4} (ratio {:.2}; < 1: labels carry structure Φ can use)", x.c, x.label_mean_square, x.c_noise, x.c / x.c_noise);
}

/// Section 4: groups.
fn groups_text(a: &Advice, o: &mut String) {
    let c = &a.clustering;
    let eig: Vec<String> = c.laplacian_eigs.iter().map(|v| format!("{v:.3}")).collect();
    let _ = writeln!(o, "4. Which tasks belong together (affinity a_ij = ½(t_ij + t_ji), t_ij = share of task i's held-out residual explained by the MNK meta-trained on task j alone)");
    let _ = writeln!(
        o,
        "   normalized-Laplacian eigenvalues {}; eigengap criterion → {} group(s) (gap {:.3})",
        eig.join(", "),
        c.k,
        c.eigengap
    );
    for (g, gr) in a.groups.iter().enumerate() {
        let mem = if gr.members.len() > 12 {
            format!("{} tasks ({} …)", gr.members.len(), list(&gr.members[..12]))
        } else {
            format!("tasks {}", list(&gr.members))
        };
        let _ = write!(
            o,
            "   group {g}: {mem}; mean affinity {:.3}",
            gr.mean_affinity
        );
        if let [i] = gr.members[..] {
            if (0..a.n_tasks).all(|j| j == i || a.affinity[i][j] <= 0.0) {
                let _ = write!(o, " (isolated: no positive transfer to or from any other task, an outlier rather than a family)");
            }
        }
        match (&gr.gain, &gr.note) {
            (Some(gg), _) => {
                let d = &gg.within_minus_pooled;
                let _ = writeln!(o, "; gain over G within the group {:.3e} vs pooled {:.3e}; pooled − within loss {:.3e} ± {:.3e} ({})", gg.gain_within, gg.gain_pooled, d.mean, d.half_width,
                    if d.lower() > 0.0 { "train this group alone" } else if d.upper() < 0.0 { "pooling is better" } else { "no significant difference" });
            }
            (None, Some(n)) => {
                let _ = writeln!(o, "; not judged: {n}");
            }
            _ => {
                let _ = writeln!(o);
            }
        }
    }
    let inf = &a.influence;
    if inf.hurting.is_empty() {
        let _ = writeln!(
            o,
            "   no task hurts the others (leave-two-out influence, Bonferroni over tasks, 5%)"
        );
    } else {
        let _ = writeln!(o, "   tasks that hurt the others (leaving them out lowers the others' held-out loss; Bonferroni 5%): {}", list(&inf.hurting));
    }
}

/// The whole report.
pub fn text(a: &Advice) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "gbml advise: {} tasks, {} query points",
        a.n_tasks, a.n_query
    );
    rates_text(a, &mut o);
    width_text(a, &mut o);
    cv_text(a, &mut o);
    groups_text(a, &mut o);
    o
}
