//! Tolerance tables for `gbml compare` (Boost.Math style expected-error tables).
//!
//! A candidate entry `c` is judged against our reference `r` by its LRE (correct significant
//! digits, NIST StRD) with a floor: `LRE = −log10(|c − r| / max(|r|, floor · max|R|))`, so that
//! entries that are tiny compared with the whole array (cancellation-prone, e.g. off-diagonal
//! MNK entries) are judged relative to the array's scale. A quantity **passes** when its minimum
//! LRE is at least `min_digits`, where each entry is well conditioned: the verdict caps each
//! entry's requirement by its conditioning ([`super::conditioning`]).
//!
//! The defaults ([`default_tolerance`]) are the digits the project certifies for each quantity
//! (justified by the golden tests' measured LREs); an implementation that knowingly computes fewer
//! digits ships a TOML file that overrides them, with a reason:
//!
//! ```toml
//! implementation = "neural-tangents 0.6.5"   # optional, informational
//! [ntk]
//! min_digits = 7.0
//! reason = "NT computes the ReLU arc-cosine angle with arccos: half the digits on the diagonal"
//! [nngp]
//! min_digits = 7.0
//! floor = 1e-3         # optional, defaults to the quantity's default floor
//! ```
//! Unknown keys and unknown quantity names are errors.

use super::manifest::Quantity;
use crate::error::{Error, Result};
use crate::tol;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Tolerance of one quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tolerance {
    /// Minimum correct digits (min LRE) required to pass.
    pub min_digits: f64,
    /// Relative floor of the LRE denominator (fraction of max |reference|).
    pub floor: f64,
    /// Where the numbers come from (`default` or the override's reason).
    pub source: String,
}

/// Default floor of the LRE denominator, as a fraction of the largest reference entry.
pub const DEFAULT_FLOOR: f64 = 1e-3;

/// Default tolerance of a quantity: the digits this project certifies for it.
///
/// | quantity | min digits | justification |
/// |---|---|---|
/// | nngp, ntk | 13 | [`tol::KERNEL_MIN_DIGITS`]: golden tests vs 50-digit mpmath |
/// | mnk_gram, mnk_cross, inner_operator_t | 12 | [`tol::MNK_NORMWISE_REL`] = 1e-12 |
/// | predictions, complexity | 10 | a solve with Φ; ill-conditioned entries need fewer ([`super::conditioning`]) |
/// | meta_gradient | 10 | [`tol::JAX_MIN_DIGITS`] (JAX float64 fixtures) |
/// | meta_loss_trajectory | 10 | [`tol::JAX_MIN_DIGITS`] |
pub fn default_tolerance(q: Quantity) -> Tolerance {
    let min_digits = match q {
        Quantity::Nngp | Quantity::Ntk => tol::KERNEL_MIN_DIGITS,
        Quantity::MnkGram | Quantity::MnkCross | Quantity::InnerOperatorT => {
            -tol::MNK_NORMWISE_REL.log10()
        }
        Quantity::Predictions | Quantity::Complexity => 10.0,
        Quantity::MetaGradient | Quantity::MetaLossTrajectory => tol::JAX_MIN_DIGITS,
    };
    Tolerance {
        min_digits,
        floor: DEFAULT_FLOOR,
        source: "default".into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    min_digits: f64,
    #[serde(default)]
    floor: Option<f64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Defaults plus per-implementation overrides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToleranceTable {
    /// Name of the implementation the overrides are for (informational).
    pub implementation: Option<String>,
    overrides: BTreeMap<Quantity, Tolerance>,
}

impl ToleranceTable {
    /// Defaults only.
    pub fn defaults() -> Self {
        Self::default()
    }

    /// The tolerance that applies to `q`.
    pub fn get(&self, q: Quantity) -> Tolerance {
        self.overrides
            .get(&q)
            .cloned()
            .unwrap_or_else(|| default_tolerance(q))
    }

    /// Override one quantity.
    pub fn set(&mut self, q: Quantity, t: Tolerance) {
        self.overrides.insert(q, t);
    }

    /// Parse a TOML override file's text (`path` for messages).
    pub fn parse_toml(text: &str, path: &str) -> Result<Self> {
        let perr = |reason: String| Error::Parse {
            what: "tolerance table".into(),
            path: path.to_string(),
            reason,
        };
        let value: toml::Table = toml::from_str(text).map_err(|e| perr(e.to_string()))?;
        let mut table = ToleranceTable::default();
        for (key, v) in value {
            if key == "implementation" {
                match v {
                    toml::Value::String(s) => table.implementation = Some(s),
                    _ => return Err(perr("field `implementation` must be a string".into())),
                }
                continue;
            }
            let q = Quantity::ALL
                .iter()
                .copied()
                .find(|q| q.name() == key)
                .ok_or_else(|| {
                    perr(format!(
                        "unknown field `{key}`, expected `implementation` or a quantity name ({})",
                        Quantity::ALL.map(|q| q.name()).join(", ")
                    ))
                })?;
            let e: Entry = v
                .try_into()
                .map_err(|e: toml::de::Error| perr(format!("in [{key}]: {e}")))?;
            if !(e.min_digits.is_finite() && (0.0..=16.0).contains(&e.min_digits)) {
                return Err(perr(format!(
                    "[{key}] min_digits = {} must lie in [0, 16]",
                    e.min_digits
                )));
            }
            let floor = e.floor.unwrap_or(DEFAULT_FLOOR);
            if !(floor.is_finite() && (0.0..=1.0).contains(&floor)) {
                return Err(perr(format!("[{key}] floor = {floor} must lie in [0, 1]")));
            }
            table.overrides.insert(
                q,
                Tolerance {
                    min_digits: e.min_digits,
                    floor,
                    source: format!(
                        "{path}{}",
                        e.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                },
            );
        }
        Ok(table)
    }

    /// Read a TOML override file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_toml(&text, &path.display().to_string())
    }
}
