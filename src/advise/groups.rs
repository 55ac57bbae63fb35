//! "Which tasks belong together": task affinity, spectral clustering, within-group vs pooled
//! held-out gain, and tasks that hurt the others (MATH.md §3, §5, §6).
//!
//! **Affinity (pairwise held-out transfer).** With r = Y − G the effective query labels, ρ the
//! ridge of the cross-validation and β_j = (Φ_jj + ρI)⁻¹ r_j, the MNK predictor meta-trained on
//! task j *alone* predicts task i's residual as ê_{i←j} = Φ_ij β_j (the infinite-time ridge
//! predictor of MATH.md §5 with the one task j as training set). The transfer from j to i is the
//! fraction of i's held-out residual it explains,
//!
//! ```text
//! t_ij = 1 − ‖r_i − Φ_ij β_j‖²_F / ‖r_i‖²_F        (≤ 1; < 0 when j's data misleads on i)
//! a_ij = ½ (t_ij + t_ji),   a_ii = 1
//! ```
//!
//! Task i's own residual is never used to fit, so a_ij is a held-out quantity. Unlike the
//! cosine of the two tasks' infinite-width meta-gradients (⟨r_i, Φ_ij r_j⟩ normalised, kept as
//! [`gradient_cosine`] for comparison), which is dominated by Φ's top (nearly constant) mode and
//! so mostly compares the residuals' means, t_ij asks whether j's whole function carries over to
//! i: one n_j × n_j solve per task and one Φ_ij β_j product per pair.
//!
//! **Clustering.** Graph W_ij = max(a_ij, 0) (i ≠ j), normalized Laplacian
//! L = I − D^{−½} W D^{−½} with eigenvalues 0 = ν_1 ≤ ν_2 ≤ …; the number of groups is the
//! eigengap choice k = argmax_{1 ≤ k ≤ k_max} (ν_{k+1} − ν_k), k_max = min(8, N − 1) (von
//! Luxburg 2007, §8.3); then k-means (Lloyd, farthest-point initialization from task 0,
//! deterministic) on the row-normalized eigenvectors of the k smallest ν (Ng, Jordan & Weiss).
//!
//! **Within vs pooled.** For every group of at least [`super::cv::MIN_TASKS`] tasks the
//! leave-one-task-out loss of the MNK trained on the group alone vs on all tasks, same ridge;
//! the paired interval of (pooled − within) > 0 says grouping helps. Smaller groups are reported
//! as too small to judge ([`within_vs_pooled`] returns a typed error).
//!
//! **Tasks that hurt.** Influence of task j on task i: the change of i's leave-one-task-out loss
//! when j is also left out, Δ_ij = loss_i(without i, j) − loss_i(without i), in closed form from
//! K⁻¹ = S by the block downdate S' = S − S_{·j} S_jj⁻¹ S_{j·}:
//! (K_{−j}⁻¹)_ii = S_ii − S_ij S_jj⁻¹ S_ji, α'_i = α_i − S_ij S_jj⁻¹ α_j, e'_i = ((K_{−j}⁻¹)_ii)⁻¹ α'_i.
//! Δ_ij < 0: the others predict better without j. Task j is flagged when the upper bound of the
//! one-sided t interval of mean_i Δ_ij at level 1 − 0.05/N (Bonferroni over the N tasks, so the
//! chance of flagging any task whose true mean effect is ≥ 0 is at most 5 %) is below 0.

use super::cv::{
    loto, mean_se, query_loss, spd_solve, t_quantile, too_few, Fit, Interval, MIN_TASKS,
};
use crate::error::Result;
use crate::linalg;
use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;

/// Largest number of groups the eigengap criterion considers.
pub const MAX_GROUPS: usize = 8;

/// The held-out transfer affinity a (N × N, module docs) of effective labels `r` (Σn × k) under
/// Φ with ridge ρ; typed error when a block Φ_jj + ρI is not numerically positive definite.
pub fn affinity(
    phi: ArrayView2<f64>,
    r: ArrayView2<f64>,
    qo: &[usize],
    ridge: f64,
) -> Result<Array2<f64>> {
    let n = qo.len() - 1;
    let rows = |i: usize| qo[i]..qo[i + 1];
    let beta = (0..n)
        .map(|j| {
            let mut k = phi.slice(s![rows(j), rows(j)]).to_owned();
            k.diag_mut().mapv_inplace(|v| v + ridge);
            spd_solve(k.view(), r.slice(s![rows(j), ..]))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut t = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        let ri = r.slice(s![rows(i), ..]);
        let norm2 = ri.iter().map(|v| v * v).sum::<f64>();
        for j in (0..n).filter(|&j| j != i) {
            let pred = linalg::matmul(phi.slice(s![rows(i), rows(j)]), beta[j].view());
            let miss = ri
                .iter()
                .zip(pred.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>();
            t[[i, j]] = if norm2 > 0.0 { 1.0 - miss / norm2 } else { 0.0 };
        }
    }
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        if i == j {
            1.0
        } else {
            0.5 * (t[[i, j]] + t[[j, i]])
        }
    }))
}

/// The meta-gradient cosine ⟨r_i, Φ_ij r_j⟩ / √(⟨r_i, Φ_ii r_i⟩⟨r_j, Φ_jj r_j⟩) (Frobenius
/// products over the k label columns; N × N): the cosine between tasks i and j's infinite-width
/// meta-gradients J_F,iᵀ r_i (Φ = J_F J_Fᵀ, MATH.md §3). Not the clustering's affinity
/// (module docs).
pub fn gradient_cosine(phi: ArrayView2<f64>, r: ArrayView2<f64>, qo: &[usize]) -> Array2<f64> {
    let n = qo.len() - 1;
    let mut inner = Array2::zeros((n, n));
    for i in 0..n {
        let ri = r.slice(s![qo[i]..qo[i + 1], ..]);
        for j in 0..n {
            // ⟨r_i, Φ_ij r_j⟩ = Σ r_i ∘ (Φ_ij r_j).
            let pij = linalg::matmul(
                phi.slice(s![qo[i]..qo[i + 1], qo[j]..qo[j + 1]]),
                r.slice(s![qo[j]..qo[j + 1], ..]),
            );
            inner[[i, j]] = ri.iter().zip(pij.iter()).map(|(a, b)| a * b).sum::<f64>();
        }
    }
    let mut a = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            let den = (inner[[i, i]] * inner[[j, j]]).sqrt();
            a[[i, j]] = if den > 0.0 { inner[[i, j]] / den } else { 0.0 };
        }
    }
    a
}

/// Spectral clustering of an affinity matrix.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Clustering {
    /// Group of every task (0-based, numbered by first occurrence).
    pub labels: Vec<usize>,
    /// Number of groups k.
    pub k: usize,
    /// Smallest eigenvalues ν_1..ν_{k_max+1} of the normalized Laplacian.
    pub laplacian_eigs: Vec<f64>,
    /// The chosen eigengap ν_{k+1} − ν_k.
    pub eigengap: f64,
}

/// Spectral clustering with the eigengap criterion (module docs); `force_k` overrides it.
pub fn cluster(a: ArrayView2<f64>, force_k: Option<usize>) -> Result<Clustering> {
    let n = a.nrows();
    if n < MIN_TASKS {
        return Err(too_few(n, "cluster"));
    }
    let w = Array2::from_shape_fn(
        (n, n),
        |(i, j)| if i == j { 0.0 } else { a[[i, j]].max(0.0) },
    );
    let dinv: Vec<f64> = w
        .rows()
        .into_iter()
        .map(|r| {
            let d = r.sum();
            if d > 0.0 {
                1.0 / d.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    // L = I − D^{−½} W D^{−½}; isolated tasks (d = 0) get L_ii = 1 … treated as their own
    // component by setting L_ii = 0 (a zero row of W is a connected component of size 1).
    let mut l = Array2::from_shape_fn((n, n), |(i, j)| -dinv[i] * w[[i, j]] * dinv[j]);
    for i in 0..n {
        l[[i, i]] = if dinv[i] > 0.0 { 1.0 } else { 0.0 };
    }
    let (nu, u) = linalg::sym_eig(l.view())?;
    let kmax = MAX_GROUPS.min(n - 1);
    let (mut k, mut gap) = (1, f64::NEG_INFINITY);
    for kk in 1..=kmax {
        let g = nu[kk] - nu[kk - 1];
        if g > gap {
            gap = g;
            k = kk;
        }
    }
    if let Some(f) = force_k {
        if f == 0 || f > n {
            return Err(crate::error::Error::param(
                "groups",
                f,
                format!("must lie in 1..={n}"),
            ));
        }
        k = f;
        gap = nu.get(k).copied().unwrap_or(f64::NAN) - nu[k - 1];
    }
    let mut emb = u.slice(s![.., ..k]).to_owned();
    for mut r in emb.rows_mut() {
        let nr = r.dot(&r).sqrt();
        if nr > 0.0 {
            r /= nr;
        }
    }
    Ok(Clustering {
        labels: kmeans(emb.view(), k),
        k,
        laplacian_eigs: nu.iter().take(kmax + 1).copied().collect(),
        eigengap: gap,
    })
}

fn dist2(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Lloyd's k-means with farthest-point initialization from row 0 (deterministic); labels
/// renumbered by first occurrence.
pub fn kmeans(x: ArrayView2<f64>, k: usize) -> Vec<usize> {
    let n = x.nrows();
    let mut centres = vec![x.row(0).to_owned()];
    while centres.len() < k {
        let far = (0..n)
            .max_by(|&a, &b| {
                let da = centres
                    .iter()
                    .map(|c| dist2(x.row(a), c.view()))
                    .fold(f64::INFINITY, f64::min);
                let db = centres
                    .iter()
                    .map(|c| dist2(x.row(b), c.view()))
                    .fold(f64::INFINITY, f64::min);
                da.total_cmp(&db).then(b.cmp(&a))
            })
            .expect("n >= 1");
        centres.push(x.row(far).to_owned());
    }
    let mut labels = vec![0; n];
    for _ in 0..100 {
        let new: Vec<usize> = (0..n)
            .map(|i| {
                (0..k)
                    .min_by(|&a, &b| {
                        dist2(x.row(i), centres[a].view())
                            .total_cmp(&dist2(x.row(i), centres[b].view()))
                    })
                    .expect("k >= 1")
            })
            .collect();
        let changed = new != labels;
        labels = new;
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
            if !members.is_empty() {
                centre.fill(0.0);
                for &i in &members {
                    *centre += &x.row(i);
                }
                *centre /= members.len() as f64;
            }
        }
        if !changed {
            break;
        }
    }
    let mut map = vec![usize::MAX; k];
    let mut next = 0;
    labels
        .iter()
        .map(|&l| {
            if map[l] == usize::MAX {
                map[l] = next;
                next += 1;
            }
            map[l]
        })
        .collect()
}

/// One group's within vs pooled comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupGain {
    /// Tasks of the group.
    pub members: Vec<usize>,
    /// Mean held-out gain over G when meta-trained on the group alone.
    pub gain_within: f64,
    /// Mean held-out gain over G of the same tasks when meta-trained on all tasks.
    pub gain_pooled: f64,
    /// Paired interval of loss_pooled − loss_within (> 0: the group alone is better).
    pub within_minus_pooled: Interval,
}

/// Within-group vs pooled leave-one-task-out losses of `members` (ascending task indices);
/// `pooled_loss_mnk` and `loss_g` from the pooled [`loto`]. Typed error for fewer than
/// [`MIN_TASKS`] members.
pub fn within_vs_pooled(
    phi: ArrayView2<f64>,
    pooled: &Fit,
    members: &[usize],
    loss_g: &[f64],
    pooled_loss_mnk: &[f64],
) -> Result<GroupGain> {
    if members.len() < MIN_TASKS {
        return Err(too_few(members.len(), "judge a group"));
    }
    let rows: Vec<usize> = members.iter().flat_map(|&i| pooled.rows(i)).collect();
    let sub = Array2::from_shape_fn((rows.len(), rows.len()), |(a, b)| phi[[rows[a], rows[b]]]);
    let r = Array2::from_shape_fn((rows.len(), pooled.r.ncols()), |(a, c)| {
        pooled.r[[rows[a], c]]
    });
    let mut qo = vec![0];
    for &i in members {
        qo.push(qo.last().unwrap() + pooled.rows(i).len());
    }
    let fit = Fit::new(sub.view(), r, pooled.ridge, qo)?;
    let within = loto(&fit)?;
    let d: Vec<f64> = members
        .iter()
        .zip(&within.loss_mnk)
        .map(|(&i, &w)| pooled_loss_mnk[i] - w)
        .collect();
    let mean = |f: &dyn Fn(usize) -> f64| {
        members.iter().map(|&i| f(i)).sum::<f64>() / members.len() as f64
    };
    let gw = members
        .iter()
        .zip(&within.loss_mnk)
        .map(|(&i, &w)| loss_g[i] - w)
        .sum::<f64>()
        / members.len() as f64;
    Ok(GroupGain {
        members: members.to_vec(),
        gain_within: gw,
        gain_pooled: mean(&|i| loss_g[i] - pooled_loss_mnk[i]),
        within_minus_pooled: Interval::of(&d),
    })
}

/// Influence of every task on the others (module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Influence {
    /// mean_{i ≠ j} Δ_ij per task j (> 0: task j helps the others).
    pub mean_effect: Vec<f64>,
    /// Upper one-sided bound at level 1 − 0.05/N of the mean effect, per task.
    pub upper: Vec<f64>,
    /// Tasks whose upper bound is below 0.
    pub hurting: Vec<usize>,
}

/// Leave-two-out influences from the pooled fit and its per-task held-out losses.
pub fn influence(fit: &Fit, loss_mnk: &[f64]) -> Result<Influence> {
    let n = fit.tasks();
    if n < MIN_TASKS {
        return Err(too_few(n, "measure influence"));
    }
    let tq = t_quantile(1.0 - 0.05 / n as f64, n - 1);
    let mut mean_effect = Vec::with_capacity(n);
    let mut upper = Vec::with_capacity(n);
    for j in 0..n {
        let sjj = fit.block(j, j);
        let aj = fit.alpha.slice(s![fit.rows(j), ..]);
        let mut d = Vec::with_capacity(n - 1);
        for i in (0..n).filter(|&i| i != j) {
            let sij = fit.block(i, j);
            // X = S_jj⁻¹ [S_ji, α_j]
            let rhs = ndarray::concatenate(ndarray::Axis(1), &[fit.block(j, i), aj]).expect("rows");
            let x = spd_solve(sjj, rhs.view())?;
            let ni = fit.rows(i).len();
            let corr = linalg::matmul(sij, x.view());
            let bii = &fit.block(i, i) - &corr.slice(s![.., ..ni]);
            let ai = &fit.alpha.slice(s![fit.rows(i), ..]) - &corr.slice(s![.., ni..]);
            let e = spd_solve(bii.view(), ai.view())?;
            d.push(query_loss(e.view()) - loss_mnk[i]);
        }
        let (mean, se) = mean_se(&d);
        mean_effect.push(mean);
        upper.push(mean + tq * se);
    }
    let hurting = (0..n).filter(|&j| upper[j] < 0.0).collect();
    Ok(Influence {
        mean_effect,
        upper,
        hurting,
    })
}
