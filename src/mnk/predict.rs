//! The kernel-regression meta-learner (MATH.md §5) and classification helpers.
//!
//! Trained for outer time t on the training tasks, the infinite-width meta-learner predicts on
//! test tasks
//!
//! ```text
//! F_t = G(X̂, X̂', Ŷ') + Φ(test, train) h(Φ) (Y − G(X, X', Y')),
//! G_i = f0(X_i) + A_i (Y'_i − f0(X'_i)),      A_i = Θ_in(X_i, X'_i) T_i   (per task)
//! ```
//!
//! with h the outer schedule's spectral function ([`Schedule::g`]):
//! flow `h(λ) = (1 − e^{−ηtλ})/λ`, steps `h(λ) = η Σ_{s<t}(1 − ηλ)^s`, infinite `1/λ`
//! (optionally with a ridge). h(Φ)v is computed as U(h(w) ⊙ Uᵀv) from the eigendecomposition
//! Φ = U diag(w) Uᵀ; no inverse is formed. On the training queries the same formula gives
//! F_t(train) = G + Φ h(Φ)(Y − G), i.e. residual (I − Φh(Φ))(Y − G).
//!
//! f0 (network outputs at initialization) defaults to 0, the authors' centred network.

use super::gram::{Adapters, Mnk};
use super::inner::OuterTime;
use super::spectral::Spectrum;
use super::tasks::TaskSet;
use crate::error::{ensure_finite, Error, Result};
use crate::linalg;
use ndarray::{s, Array1, Array2, ArrayView2};

/// Network outputs at initialization on the stacked query and support points of one task set
/// (queries Σn × k, supports Σm × k).
#[derive(Clone, Debug, PartialEq)]
pub struct F0 {
    pub query: Array2<f64>,
    pub support: Array2<f64>,
}

/// Everything the predictor computes.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// F_t on the test queries (Σn̂ × k).
    pub test: Array2<f64>,
    /// G on the test queries (the base learner: inner loop from initialization).
    pub g_test: Array2<f64>,
    /// G on the training queries.
    pub g_train: Array2<f64>,
    /// F_t on the training queries.
    pub train: Array2<f64>,
    /// Spectrum of Φ.
    pub spectrum: Spectrum,
}

fn check_f0(f0: Option<&F0>, set: &TaskSet, what: &str) -> Result<()> {
    if let Some(f) = f0 {
        let k = set.k();
        if f.query.dim() != (set.n_query(), k) {
            return Err(Error::shape(
                format!("f0 on {what} queries"),
                format!("{}×{}", set.n_query(), k),
                format!("{:?}", f.query.dim()),
            ));
        }
        if f.support.dim() != (set.n_support(), k) {
            return Err(Error::shape(
                format!("f0 on {what} supports"),
                format!("{}×{}", set.n_support(), k),
                format!("{:?}", f.support.dim()),
            ));
        }
        ensure_finite(f.query.view(), &format!("f0 on {what} queries"))?;
        ensure_finite(f.support.view(), &format!("f0 on {what} supports"))?;
    }
    Ok(())
}

/// The G term on every query of a task set: `G_i = f0(X_i) + A_i (Y'_i − f0(X'_i))`.
pub fn g_term(set: &TaskSet, ad: &Adapters, f0: Option<&F0>) -> Result<Array2<f64>> {
    check_f0(f0, set, "task set")?;
    let qo = set.query_offsets();
    let so = set.support_offsets();
    let mut g = Array2::zeros((set.n_query(), set.k()));
    for (i, t) in set.tasks().iter().enumerate() {
        let mut r = t.ys.clone();
        if let Some(f) = f0 {
            r -= &f.support.slice(s![so[i]..so[i + 1], ..]);
        }
        let mut gi = linalg::matmul(ad.a[i].view(), r.view());
        if let Some(f) = f0 {
            gi += &f.query.slice(s![qo[i]..qo[i + 1], ..]);
        }
        g.slice_mut(s![qo[i]..qo[i + 1], ..]).assign(&gi);
    }
    Ok(g)
}

/// `h(Φ) R` for the outer schedule, from the eigendecomposition of Φ; also returns Φ's spectrum.
pub fn outer_apply(
    phi: ArrayView2<f64>,
    rhs: ArrayView2<f64>,
    outer: &OuterTime,
) -> Result<(Array2<f64>, Spectrum, Array1<f64>, Array2<f64>)> {
    outer.validate()?;
    if phi.nrows() != phi.ncols() || phi.nrows() != rhs.nrows() {
        return Err(Error::shape(
            "Φ and the training residual",
            format!("Φ square with {} rows", rhs.nrows()),
            format!("{:?}", phi.dim()),
        ));
    }
    let (w, u) = linalg::sym_eig(phi)?;
    let spec = Spectrum::from_eigvals(&w);
    if outer.is_zero() {
        return Ok((Array2::zeros(rhs.dim()), spec, w, u));
    }
    outer.check_spectrum(&w, "MNK Φ (training tasks)")?;
    let mut c = linalg::t_matmul(u.view(), rhs);
    for (mut row, &wi) in c.rows_mut().into_iter().zip(w.iter()) {
        row *= outer.g(wi);
    }
    Ok((linalg::matmul(u.view(), c.view()), spec, w, u))
}

/// The predictor from precomputed pieces: `F = G_test + Φ_× h(Φ)(Y − G_train)`; also returns
/// the training predictions `G_train + Φ h(Φ)(Y − G_train)` and Φ's spectrum.
pub fn predict_from(
    phi: ArrayView2<f64>,
    cross: ArrayView2<f64>,
    y_train: ArrayView2<f64>,
    g_train: ArrayView2<f64>,
    g_test: ArrayView2<f64>,
    outer: &OuterTime,
) -> Result<(Array2<f64>, Array2<f64>, Spectrum)> {
    if cross.ncols() != phi.nrows() || cross.nrows() != g_test.nrows() {
        return Err(Error::shape(
            "cross kernel Φ(test, train)",
            format!("{}×{}", g_test.nrows(), phi.nrows()),
            format!("{:?}", cross.dim()),
        ));
    }
    if y_train.dim() != g_train.dim() {
        return Err(Error::shape(
            "training labels vs G",
            format!("{:?}", g_train.dim()),
            format!("{:?}", y_train.dim()),
        ));
    }
    ensure_finite(phi, "Φ")?;
    ensure_finite(cross, "Φ(test, train)")?;
    let resid = &y_train - &g_train;
    let (coef, spec, _, _) = outer_apply(phi, resid.view(), outer)?;
    let test = &g_test + &linalg::matmul(cross, coef.view());
    let train = &g_train + &linalg::matmul(phi, coef.view());
    Ok((test, train, spec))
}

/// The inputs of the §5 predictor agree: the test tasks have the training tasks' number of
/// outputs k, and the outer schedule is valid (shared by the f64 and the extended predictor).
pub(crate) fn check_predict_inputs(
    train: &TaskSet,
    test: &TaskSet,
    outer: &OuterTime,
) -> Result<()> {
    if train.k() != test.k() {
        return Err(Error::shape(
            "test tasks vs training tasks",
            format!("k = {}", train.k()),
            format!("k = {}", test.k()),
        ));
    }
    outer.validate()
}

impl Mnk {
    /// Predictions of the meta-learner trained on `train` for the outer schedule, evaluated on
    /// the queries of `test` (their labels `yq` are not used). `f0`: network outputs at
    /// initialization on (train, test) points; default 0.
    pub fn predict(
        &self,
        train: &TaskSet,
        test: &TaskSet,
        outer: &OuterTime,
        f0: Option<(&F0, &F0)>,
    ) -> Result<Prediction> {
        check_predict_inputs(train, test, outer)?;
        let ar = self.adapters(train)?;
        let at = self.adapters(test)?;
        let g_train = g_term(train, &ar, f0.map(|f| f.0))?;
        let g_test = g_term(test, &at, f0.map(|f| f.1))?;
        let phi = self.phi_with(train, &ar)?;
        let cross = self.cross_with(test, &at, train, &ar)?;
        let y = train.query_y();
        let (test_pred, train_pred, spectrum) = predict_from(
            phi.view(),
            cross.view(),
            y.view(),
            g_train.view(),
            g_test.view(),
            outer,
        )?;
        Ok(Prediction {
            test: test_pred,
            g_test,
            g_train,
            train: train_pred,
            spectrum,
        })
    }
}

/// Centred one-hot labels for C classes: 1 − 1/C on the true class, −1/C elsewhere.
pub fn centred_one_hot(labels: &[usize], classes: usize) -> Result<Array2<f64>> {
    if classes < 2 {
        return Err(Error::param("classes", classes, "need at least 2 classes"));
    }
    let mut y = Array2::from_elem((labels.len(), classes), -1.0 / classes as f64);
    for (i, &l) in labels.iter().enumerate() {
        if l >= classes {
            return Err(Error::param("label", l, format!("must be < {classes}")));
        }
        y[[i, l]] = 1.0 - 1.0 / classes as f64;
    }
    Ok(y)
}

/// Argmax decoding per row (first maximum on ties).
pub fn argmax_rows(pred: ArrayView2<f64>) -> Vec<usize> {
    pred.rows()
        .into_iter()
        .map(|r| {
            let mut best = 0;
            for (j, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Fraction of rows whose argmax equals the argmax of the label row.
pub fn accuracy(pred: ArrayView2<f64>, labels: ArrayView2<f64>) -> f64 {
    let p = argmax_rows(pred);
    let l = argmax_rows(labels);
    let hits = p.iter().zip(&l).filter(|(a, b)| a == b).count();
    hits as f64 / p.len().max(1) as f64
}
