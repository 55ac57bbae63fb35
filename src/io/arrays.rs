//! Reading and writing the `.npy` arrays of exchange files.
//!
//! Reading checks the declared header length against the file size, then parses with
//! [`super::npy::parse_npy_any`] (float64, float32 or integers, converted to f64; a bounded view
//! of the file), so a malformed header is a typed [`Error::Parse`], never a huge allocation.

use crate::error::{Error, Result};
use ndarray::ArrayD;
use std::path::Path;

/// Largest `.npy` file accepted (1 GiB).
pub const MAX_BYTES: usize = 1 << 30;

/// Parse an in-memory `.npy` file of f64 (`path` names it in errors).
pub fn parse_bytes(bytes: &[u8], path: &str) -> Result<ArrayD<f64>> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::Parse {
            what: ".npy file".into(),
            path: path.into(),
            reason: format!("{} bytes is above the limit of {MAX_BYTES}", bytes.len()),
        });
    }
    check_header_len(bytes, path)?;
    super::npy::parse_npy_any(bytes, Path::new(path))
}

/// Reject a header whose declared length exceeds the file before any parser allocates it
/// (`ndarray_npy` allocates the declared header length up front: a 26-byte file declaring a 3.6 GB
/// header ran the fuzzer out of memory; reproducer in `fuzz/artifacts-regressions/manifest_parse/`).
pub(crate) fn check_header_len(bytes: &[u8], path: &str) -> Result<()> {
    let perr = |reason: String| Error::Parse {
        what: ".npy file".into(),
        path: path.into(),
        reason,
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(perr("missing the .npy magic string \\x93NUMPY".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(perr(format!("unsupported .npy format version {v}"))),
    };
    if start + len > bytes.len() {
        return Err(perr(format!(
            "header declares {len} bytes but the file has only {} after the preamble",
            bytes.len() - start
        )));
    }
    Ok(())
}

/// Read a `.npy` file of f64.
pub fn read(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_bytes(&bytes, &path.display().to_string())
}

/// Write an f64 array as `.npy` (C order).
pub fn write<D: ndarray::Dimension>(path: &Path, a: &ndarray::Array<f64, D>) -> Result<()> {
    let a = a.as_standard_layout().to_owned();
    ndarray_npy::write_npy(path, &a).map_err(|e| match e {
        ndarray_npy::WriteNpyError::Io(source) => Error::Io {
            path: path.display().to_string(),
            source,
        },
        other => Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}
