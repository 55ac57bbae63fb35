//! Entrywise accuracy of a candidate array against a reference array: errors, LRE (correct
//! significant digits, NIST StRD) with a floor, the worst entry.
//!
//! `LRE_i = −log10(|c_i − r_i| / max(|r_i|, floor · max_j |r_j|))`, capped to `[0, LRE_MAX]`;
//! a non-finite candidate entry has LRE 0. `max_rel_err = max_i |c_i − r_i| / max(|r_i|, floor·scale)`
//! and `eps_units = max_rel_err / ε`.

use crate::error::{Error, Result};
use crate::tol::{EPS, LRE_MAX};
use ndarray::{ArrayViewD, Dimension, IxDyn};
use serde::Serialize;

/// Entrywise accuracy of a candidate array against a reference array of the same shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Number of entries.
    pub len: usize,
    /// max |c − r|.
    pub max_abs_err: f64,
    /// max |c − r| / max(|r|, floor · max|r|).
    pub max_rel_err: f64,
    /// `max_rel_err / ε` (f64 machine epsilon).
    pub eps_units: f64,
    /// Minimum LRE over entries (correct digits of the worst entry).
    pub min_lre: f64,
    /// Median LRE over entries.
    pub median_lre: f64,
    /// Index of the entry with the smallest LRE (first one on ties).
    pub worst_index: Vec<usize>,
    /// Candidate value at the worst entry.
    pub worst_candidate: f64,
    /// Reference value at the worst entry.
    pub worst_reference: f64,
    /// Number of non-finite candidate entries.
    pub non_finite: usize,
}

/// The floor of the LRE denominators: `floor · max|r|` (1 for an all-zero reference).
pub fn den_floor(reference: ArrayViewD<f64>, floor: f64) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    if scale == 0.0 {
        1.0
    } else {
        floor * scale
    }
}

/// The LRE denominator of a reference entry: `max(|r|, den_floor)`.
pub fn entry_den(r: f64, den_floor: f64) -> f64 {
    r.abs().max(den_floor)
}

/// LRE of one candidate entry: `−log10(|c − r| / max(|r|, den_floor))` in `[0, LRE_MAX]`
/// (0 for a non-finite candidate).
pub fn entry_lre(c: f64, r: f64, den_floor: f64) -> f64 {
    if !c.is_finite() {
        return 0.0;
    }
    let abs = (c - r).abs();
    if abs == 0.0 {
        LRE_MAX
    } else {
        (-(abs / entry_den(r, den_floor)).log10()).clamp(0.0, LRE_MAX)
    }
}

/// Compare two arrays entrywise (see the module docs). Shapes must agree
/// ([`Error::Shape`] otherwise); the reference must be finite ([`Error::NonFinite`]).
pub fn compare_arrays(
    candidate: ArrayViewD<f64>,
    reference: ArrayViewD<f64>,
    floor: f64,
) -> Result<Stats> {
    if candidate.shape() != reference.shape() {
        return Err(Error::shape(
            "candidate output vs reference",
            format!("{:?}", reference.shape()),
            format!("{:?}", candidate.shape()),
        ));
    }
    crate::error::ensure_finite(reference.view(), "reference")?;
    let den_floor = den_floor(reference.view(), floor);
    let mut lres = Vec::with_capacity(reference.len());
    let mut max_abs = 0.0f64;
    let mut max_rel = 0.0f64;
    let mut worst: Option<(f64, IxDyn, f64, f64)> = None;
    let mut non_finite = 0;
    for ((idx, &r), &c) in reference.indexed_iter().zip(candidate.iter()) {
        let (abs, rel, l) = if c.is_finite() {
            let abs = (c - r).abs();
            (
                abs,
                abs / r.abs().max(den_floor),
                entry_lre(c, r, den_floor),
            )
        } else {
            non_finite += 1;
            (f64::INFINITY, f64::INFINITY, 0.0)
        };
        max_abs = max_abs.max(abs);
        max_rel = max_rel.max(rel);
        if worst.as_ref().is_none_or(|w| l < w.0) {
            worst = Some((l, idx.clone(), c, r));
        }
        lres.push(l);
    }
    let len = lres.len();
    let (min_lre, worst_index, worst_candidate, worst_reference) = match worst {
        Some((l, idx, c, r)) => (l, idx.slice().to_vec(), c, r),
        None => (LRE_MAX, Vec::new(), 0.0, 0.0),
    };
    lres.sort_by(|a, b| a.total_cmp(b));
    let median_lre = if len == 0 {
        LRE_MAX
    } else if len % 2 == 1 {
        lres[len / 2]
    } else {
        0.5 * (lres[len / 2 - 1] + lres[len / 2])
    };
    Ok(Stats {
        len,
        max_abs_err: max_abs,
        max_rel_err: max_rel,
        eps_units: max_rel / EPS,
        min_lre,
        median_lre,
        worst_index,
        worst_candidate,
        worst_reference,
        non_finite,
    })
}
