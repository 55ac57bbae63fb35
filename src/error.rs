//! The crate-wide typed error. Every bad input (NaN, shape mismatch, empty task, singular kernel,
//! negative rate, malformed file) ends here with a message that names what was wrong; the CLI maps
//! each variant to an exit code with [`Error::exit_code`].

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// All failures of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two arrays whose shapes must agree do not.
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        context: String,
        expected: String,
        got: String,
    },
    /// A NaN or infinity where a finite number is required.
    #[error("non-finite value {value} in {context} at {location}")]
    NonFinite {
        context: String,
        location: String,
        value: f64,
    },
    /// A parameter outside its domain (negative rate, zero width, depth too large, ...).
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        name: String,
        value: String,
        reason: String,
    },
    /// An empty task, task set or input where at least one item is required.
    #[error("empty input: {0}")]
    Empty(String),
    /// A kernel matrix that must be positive definite is singular or indefinite.
    #[error(
        "{context} is singular or indefinite: smallest eigenvalue {lambda_min:.3e} (largest {lambda_max:.3e}); \
         add a ridge of at least {suggested_ridge:.3e}"
    )]
    Singular {
        context: String,
        lambda_min: f64,
        lambda_max: f64,
        suggested_ridge: f64,
    },
    /// Training diverged (outer rate above the critical rate, or non-finite loss).
    #[error("training diverged at step {step}: {reason} (rate {rate:.4e}, {})", critical_text(*critical_rate))]
    Diverged {
        step: usize,
        reason: String,
        rate: f64,
        critical_rate: f64,
    },
    /// A factorization failed to converge.
    #[error("linear algebra failure in {0}")]
    LinAlg(String),
    /// A file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is malformed.
    #[error("malformed {what} in {path}: {reason}")]
    Parse {
        what: String,
        path: String,
        reason: String,
    },
    /// A combination of options this version does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// Convenience constructor for [`Error::Shape`].
    pub fn shape(
        context: impl Into<String>,
        expected: impl fmt::Display,
        got: impl fmt::Display,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// Convenience constructor for [`Error::InvalidParameter`].
    pub fn param(
        name: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Process exit code used by the `gbml` binary: 2 for unusable input, 3 for numerical failure
    /// (singular kernel, divergence, factorization failure), 4 for I/O.
    /// (Exit code 1 is reserved for "ran fine, but a check or comparison failed".)
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Shape { .. }
            | Error::NonFinite { .. }
            | Error::InvalidParameter { .. }
            | Error::Empty(_)
            | Error::Parse { .. }
            | Error::Unsupported(_) => 2,
            Error::Singular { .. } | Error::Diverged { .. } | Error::LinAlg(_) => 3,
            Error::Io { .. } => 4,
        }
    }
}

/// The critical rate of a divergence message; NaN stands for "not known" (Φ̂_0 not recorded).
fn critical_text(rate: f64) -> String {
    if rate.is_finite() {
        format!("critical rate {rate:.4e}")
    } else {
        "critical rate unknown: Φ̂_0 was not recorded".into()
    }
}

/// Check that every entry of an array is finite; the error names the first offending index.
pub fn ensure_finite<'a, D: ndarray::Dimension>(
    a: impl Into<ndarray::ArrayView<'a, f64, D>>,
    context: &str,
) -> Result<()> {
    let a = a.into();
    for (idx, &v) in a.indexed_iter() {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                context: context.to_string(),
                // `[i, j]` for every dimension (the pattern of IxDyn debug-prints its internals).
                location: format!("{:?}", ndarray::IntoDimension::into_dimension(idx).slice()),
                value: v,
            });
        }
    }
    Ok(())
}
