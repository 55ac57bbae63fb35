//! "Will meta-learning help?": leave-one-task-out cross-validation of the MNK predictor against
//! the base learner G, in closed form (MATH.md §5, §7).
//!
//! The infinite-time MNK predictor with ridge ρ (outer schedule `Schedule::infinite()` with
//! ridge ρ, MATH.md §5) trained on every task but B predicts B's queries as
//! F_B = G_B + Φ_{B,−B} K_{−B}⁻¹ r_{−B}, with K = Φ + ρI and r = Y − G the effective labels.
//! Its held-out residual has the closed form (the block version of the leave-one-out identity of
//! kernel ridge regression; K's off-diagonal blocks are Φ's):
//!
//! ```text
//! e_B = r_B − Φ_{B,−B} K_{−B}⁻¹ r_{−B} = ((K⁻¹)_BB)⁻¹ (K⁻¹ r)_B
//! ```
//!
//! so one eigendecomposition of Φ gives every task's held-out residual (no refitting; the test
//! `advise_cv` compares it with N refits through [`crate::mnk::Mnk::predict`]).
//!
//! Per task, the held-out query losses are ½‖r_B‖²/n_B (G alone: the inner loop from the
//! initialization) and ½‖e_B‖²/n_B (meta-learned); the gain d_B is their difference and the
//! verdict comes from the two-sided t interval of the mean gain at [`LEVEL`] over the N tasks:
//! "helps" when the interval lies above 0, "hurts" when below, "does not help" otherwise.
//!
//! Beside it: the complexity C = √(tr(Ỹᵀ K⁻¹ Ỹ)/N) ([`crate::theory::complexity`] on K) and its
//! noise-model expectation C_noise = √(e·k·tr M / N): the value E[C²] takes when every support
//! and query label is replaced by independent noise of the labels' mean square e, with
//! tr M = tr K⁻¹ + Σ_i tr(A_iᵀ (K⁻¹)_ii A_i) (the p = 1 term of the noise model of claim family 7,
//! `checks::generalization::expected_q`). C well below C_noise: the labels carry structure Φ
//! can use; C ≈ C_noise: they look like noise to the MNK.

use crate::error::{Error, Result};
use crate::linalg;
use crate::mnk::{Adapters, TaskSet};
use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Two-sided confidence level of every interval of the advice.
pub const LEVEL: f64 = 0.95;

/// Fewest tasks the cross-validation (and a t interval over tasks) accepts.
pub const MIN_TASKS: usize = 5;

/// Mean of paired per-task differences with its two-sided t interval at [`LEVEL`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub mean: f64,
    /// t_{(1+LEVEL)/2, n−1} · s/√n.
    pub half_width: f64,
    pub n: usize,
}

impl Interval {
    /// The interval of the mean of `d` (n ≥ 2).
    pub fn of(d: &[f64]) -> Interval {
        let (mean, se) = mean_se(d);
        Interval {
            mean,
            half_width: t_quantile((1.0 + LEVEL) / 2.0, d.len()) * se,
            n: d.len(),
        }
    }
    pub fn lower(&self) -> f64 {
        self.mean - self.half_width
    }
    pub fn upper(&self) -> f64 {
        self.mean + self.half_width
    }
}

/// Sample mean and its standard error s/√n (n ≥ 2; s with the n − 1 divisor).
pub fn mean_se(d: &[f64]) -> (f64, f64) {
    let nf = d.len() as f64;
    let mean = d.iter().sum::<f64>() / nf;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0).max(1.0);
    (mean, (var / nf).sqrt())
}

/// Quantile p of Student's t with n − 1 degrees of freedom (n ≥ 2).
pub fn t_quantile(p: f64, n: usize) -> f64 {
    StudentsT::new(0.0, 1.0, (n.max(2) - 1) as f64)
        .expect("dof >= 1")
        .inverse_cdf(p)
}

/// The verdict on a gain interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval lies above 0.
    Helps,
    /// The interval contains 0.
    DoesNotHelp,
    /// The interval lies below 0.
    Hurts,
}

impl Verdict {
    pub fn of(gain: &Interval) -> Verdict {
        if gain.lower() > 0.0 {
            Verdict::Helps
        } else if gain.upper() < 0.0 {
            Verdict::Hurts
        } else {
            Verdict::DoesNotHelp
        }
    }
}

/// K⁻¹ = (Φ + ρI)⁻¹, α = K⁻¹ r and the effective labels r of one task set (the closed-form
/// cross-validation's pieces).
#[derive(Clone, Debug)]
pub struct Fit {
    pub ridge: f64,
    /// K⁻¹ (Σn × Σn).
    pub kinv: Array2<f64>,
    /// α = K⁻¹ r (Σn × k).
    pub alpha: Array2<f64>,
    /// r = Y − G (Σn × k).
    pub r: Array2<f64>,
    /// Query offsets of the tasks.
    pub qo: Vec<usize>,
}

impl Fit {
    /// Factor K = Φ + ρI; [`Error::Singular`] when K is not numerically positive definite.
    pub fn new(phi: ArrayView2<f64>, r: Array2<f64>, ridge: f64, qo: Vec<usize>) -> Result<Fit> {
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::param("ridge", ridge, "must be finite and >= 0"));
        }
        let (w, u) = linalg::sym_eig(phi)?;
        let (lmin, lmax) = (w[0] + ridge, w[w.len() - 1] + ridge);
        if !(lmin > 1e-13 * lmax.abs().max(f64::MIN_POSITIVE)) {
            return Err(Error::Singular {
                context: "MNK Φ + ρI in the leave-one-task-out cross-validation".into(),
                lambda_min: lmin,
                lambda_max: lmax,
                suggested_ridge: 1e-6 * lmax.abs().max(f64::MIN_POSITIVE),
            });
        }
        let kinv = linalg::sym_apply(&w, &u, |x| 1.0 / (x + ridge));
        let alpha = linalg::matmul(kinv.view(), r.view());
        Ok(Fit {
            ridge,
            kinv,
            alpha,
            r,
            qo,
        })
    }

    /// Number of tasks.
    pub fn tasks(&self) -> usize {
        self.qo.len() - 1
    }

    /// Rows of task i.
    pub fn rows(&self, i: usize) -> std::ops::Range<usize> {
        self.qo[i]..self.qo[i + 1]
    }

    /// The block (K⁻¹)_ij.
    pub fn block(&self, i: usize, j: usize) -> ArrayView2<'_, f64> {
        self.kinv.slice(s![self.rows(i), self.rows(j)])
    }

    /// Held-out residual e_B = ((K⁻¹)_BB)⁻¹ α_B of task B.
    pub fn held_out(&self, b: usize) -> Result<Array2<f64>> {
        spd_solve(self.block(b, b), self.alpha.slice(s![self.rows(b), ..]))
    }
}

/// Solve S x = rhs for a small symmetric positive-definite S (eigendecomposition; typed error
/// when S is not numerically positive definite).
pub fn spd_solve(sm: ArrayView2<f64>, rhs: ArrayView2<f64>) -> Result<Array2<f64>> {
    let (w, u) = linalg::sym_eig(sm)?;
    let lmax = w[w.len() - 1];
    if !(w[0] > 1e-14 * lmax.abs().max(f64::MIN_POSITIVE)) {
        return Err(Error::Singular {
            context: "diagonal block of (Φ + ρI)⁻¹".into(),
            lambda_min: w[0],
            lambda_max: lmax,
            suggested_ridge: 1e-6,
        });
    }
    let mut c = linalg::t_matmul(u.view(), rhs);
    for (mut row, &wi) in c.rows_mut().into_iter().zip(w.iter()) {
        row /= wi;
    }
    Ok(linalg::matmul(u.view(), c.view()))
}

/// Per-query loss ½‖e‖²_F / rows.
pub fn query_loss(e: ArrayView2<f64>) -> f64 {
    0.5 * e.iter().map(|v| v * v).sum::<f64>() / e.nrows().max(1) as f64
}

/// The cross-validation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Loto {
    /// Ridge ρ of K = Φ + ρI.
    pub ridge: f64,
    /// Held-out per-query loss of G alone, per task.
    pub loss_g: Vec<f64>,
    /// Held-out per-query loss of the MNK predictor, per task.
    pub loss_mnk: Vec<f64>,
    /// Mean gain (loss_g − loss_mnk) with its interval.
    pub gain: Interval,
    /// Mean gain / mean loss_g.
    pub relative_gain: f64,
    pub verdict: Verdict,
}

/// Leave-one-task-out losses and verdict from a fit.
pub fn loto(fit: &Fit) -> Result<Loto> {
    let n = fit.tasks();
    if n < MIN_TASKS {
        return Err(too_few(n, "cross-validate"));
    }
    let mut loss_g = Vec::with_capacity(n);
    let mut loss_mnk = Vec::with_capacity(n);
    for b in 0..n {
        loss_g.push(query_loss(fit.r.slice(s![fit.rows(b), ..])));
        loss_mnk.push(query_loss(fit.held_out(b)?.view()));
    }
    let d: Vec<f64> = loss_g.iter().zip(&loss_mnk).map(|(a, b)| a - b).collect();
    let gain = Interval::of(&d);
    let mean_g = loss_g.iter().sum::<f64>() / n as f64;
    Ok(Loto {
        ridge: fit.ridge,
        relative_gain: if mean_g > 0.0 {
            gain.mean / mean_g
        } else {
            0.0
        },
        verdict: Verdict::of(&gain),
        gain,
        loss_g,
        loss_mnk,
    })
}

/// The typed error for a task set too small to judge.
pub fn too_few(n: usize, what: &str) -> Error {
    Error::param(
        "number of tasks",
        n,
        format!("need at least {MIN_TASKS} tasks to {what}"),
    )
}

/// The complexity C and its noise-model expectation (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Complexity {
    /// C = √(tr(Ỹᵀ K⁻¹ Ỹ)/N).
    pub c: f64,
    /// √(E[C²]) when every label is replaced by noise of the labels' mean square.
    pub c_noise: f64,
    /// Mean square e of the labels (support and query entries).
    pub label_mean_square: f64,
}

/// C and C_noise of a fit on `set` with adapters `ad`.
pub fn complexity(
    fit: &Fit,
    phi: ArrayView2<f64>,
    set: &TaskSet,
    ad: &Adapters,
) -> Result<Complexity> {
    let n = set.len();
    let mut k = phi.to_owned();
    k.diag_mut().mapv_inplace(|v| v + fit.ridge);
    let c = crate::theory::complexity(k.view(), fit.r.view(), n)?;
    let mut tr_m = fit.kinv.diag().sum();
    for (i, a) in ad.a.iter().enumerate() {
        let sa = linalg::matmul(fit.block(i, i), a.view());
        tr_m += a.iter().zip(sa.iter()).map(|(x, y)| x * y).sum::<f64>();
    }
    let (yq, ys) = (set.query_y(), set.support_y());
    let cnt = (yq.len() + ys.len()) as f64;
    let e = (yq.iter().chain(ys.iter()).map(|v| v * v).sum::<f64>()) / cnt;
    Ok(Complexity {
        c,
        c_noise: (e * set.k() as f64 * tr_m / n as f64).sqrt(),
        label_mean_square: e,
    })
}
