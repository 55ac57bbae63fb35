//! Reading and writing the f64 matrices (points are rows) and vectors of the CLI as `.npy`
//! (NumPy format 1.0–3.0 via `ndarray-npy`) or JSON (an array of arrays of numbers).
//!
//! `.npy` input may be float64, float32 or a (signed/unsigned) integer array in native
//! (little-endian) byte order, C or Fortran order; every value is converted to f64 (exactly for
//! f32 and for integers up to 2⁵³). Every failure is a typed [`Error`]: [`Error::Io`] when the
//! file cannot be read or written, [`Error::Parse`] (naming the path) when its content is not a
//! matrix, [`Error::NonFinite`] for NaN/inf entries.
//!
//! This is the one module that parses `.npy` bytes: every reader (matrices, vectors, arrays of
//! any dimension for manifests, the 3-D task folders of `gbml maml`) goes through
//! [`parse_npy_any`], which checks the size limit and the declared header length before
//! `ndarray-npy` sees the bytes. [`super::arrays`] only re-exports names of this module.

use crate::error::{ensure_finite, Error, Result};
use ndarray::{Array1, Array2, Array3, ArrayD, ArrayViewD, Ix1, Ix2, Ix3};
use ndarray_npy::{ViewElement, ViewNpyExt};
use std::path::Path;

fn parse_err(path: &Path, what: &str, reason: impl Into<String>) -> Error {
    Error::Parse {
        what: what.into(),
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Largest `.npy` file accepted (1 GiB).
pub const MAX_BYTES: usize = 1 << 30;

/// Reject a header whose declared length exceeds the file before any parser allocates it
/// (`ndarray_npy` allocates the declared header length up front: a 26-byte file declaring a 3.6 GB
/// header ran the fuzzer out of memory; reproducer in `fuzz/artifacts-regressions/manifest_parse/`).
fn check_header_len(bytes: &[u8], path: &Path) -> Result<()> {
    let perr = |reason: String| parse_err(path, ".npy file", reason);
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

/// View `bytes` (8-byte aligned) as an `.npy` array of element type `T` and convert to f64.
fn view_as<T: ViewElement + Copy>(bytes: &[u8], conv: impl Fn(T) -> f64) -> Option<ArrayD<f64>> {
    ArrayViewD::<T>::view_npy(bytes).ok().map(|v| v.mapv(conv))
}

/// Parse an in-memory `.npy` file into an f64 array of any dimension (`path` names it in errors).
pub fn parse_npy_any(bytes: &[u8], path: &Path) -> Result<ArrayD<f64>> {
    if bytes.len() > MAX_BYTES {
        return Err(parse_err(
            path,
            ".npy file",
            format!("{} bytes is above the limit of {MAX_BYTES}", bytes.len()),
        ));
    }
    // The declared header length must fit in the file before ndarray-npy allocates it.
    check_header_len(bytes, path)?;
    // Copy to an 8-byte aligned buffer so the payload can be viewed in place (bounded by the
    // file size: a header claiming more data than present is an error, not an allocation).
    let mut buf = vec![0u8; bytes.len() + 8];
    let off = buf.as_ptr().align_offset(8).min(8);
    buf[off..off + bytes.len()].copy_from_slice(bytes);
    let b: &[u8] = &buf[off..off + bytes.len()];
    let got = view_as::<f64>(b, |v| v)
        .or_else(|| view_as::<f32>(b, f64::from))
        .or_else(|| view_as::<i64>(b, |v| v as f64))
        .or_else(|| view_as::<i32>(b, f64::from))
        .or_else(|| view_as::<i16>(b, f64::from))
        .or_else(|| view_as::<i8>(b, f64::from))
        .or_else(|| view_as::<u64>(b, |v| v as f64))
        .or_else(|| view_as::<u32>(b, f64::from))
        .or_else(|| view_as::<u16>(b, f64::from))
        .or_else(|| view_as::<u8>(b, f64::from));
    match got {
        Some(a) => Ok(a),
        None => {
            // Report the f64 reader's own message (dtype, truncated data, bad header, ...).
            let e = ArrayViewD::<f64>::view_npy(b).err().map(|e| e.to_string());
            Err(parse_err(
                path,
                ".npy file",
                format!(
                    "{} (expected a native-endian float64, float32 or integer array)",
                    e.unwrap_or_else(|| "unsupported array".into())
                ),
            ))
        }
    }
}

/// [`parse_npy_any`] with the path given as a string (for in-memory bytes).
pub fn parse_npy_any_named(bytes: &[u8], path: &str) -> Result<ArrayD<f64>> {
    parse_npy_any(bytes, Path::new(path))
}

/// Read a `.npy` file as an f64 array of any dimension.
pub fn read_npy_any(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    parse_npy_any(&bytes, path)
}

/// Read a `.npy` file of dimension `D` as f64; entries must be finite (`what` names the kind
/// of array in errors).
fn read_npy_dim<D: ndarray::Dimension>(path: &Path, what: &str) -> Result<ndarray::Array<f64, D>> {
    let a = read_npy_any(path)?;
    let shape = a.shape().to_vec();
    let n = D::NDIM.unwrap_or(0);
    let t = a.into_dimensionality::<D>().map_err(|_| {
        parse_err(
            path,
            &format!(".npy {what}"),
            format!("expected a {n}-D array, got shape {shape:?}"),
        )
    })?;
    ensure_finite(t.view(), &format!("{what} {}", path.display()))?;
    Ok(t)
}

/// Read a 2-D `.npy` file (points are rows) as f64; entries must be finite.
pub fn read_matrix_npy(path: &Path) -> Result<Array2<f64>> {
    read_npy_dim::<Ix2>(path, "matrix")
}

/// Read a 1-D `.npy` file as an f64 vector; entries must be finite.
pub fn read_vector_npy(path: &Path) -> Result<Array1<f64>> {
    read_npy_dim::<Ix1>(path, "vector")
}

/// Read a 3-D `.npy` file (e.g. N tasks × rows × columns) as f64; entries must be finite.
pub fn read_array3_npy(path: &Path) -> Result<Array3<f64>> {
    read_npy_dim::<Ix3>(path, "array")
}

/// Write an f64 array of any dimension as `.npy` (float64, C order).
pub fn write_npy_any<D: ndarray::Dimension>(path: &Path, a: &ndarray::Array<f64, D>) -> Result<()> {
    let a = a.as_standard_layout().to_owned();
    ndarray_npy::write_npy(path, &a).map_err(|e| match e {
        ndarray_npy::WriteNpyError::Io(source) => io_err(path, source),
        other => io_err(path, std::io::Error::other(other.to_string())),
    })
}

/// Write an f64 matrix as `.npy` (float64, C order).
pub fn write_matrix_npy(path: &Path, a: &Array2<f64>) -> Result<()> {
    write_npy_any(path, a)
}

/// Write an f64 vector as `.npy` (float64).
pub fn write_vector_npy(path: &Path, a: &Array1<f64>) -> Result<()> {
    write_npy_any(path, a)
}

/// Parse a JSON matrix: an array of equally long arrays of finite numbers (at least 1×1).
pub fn parse_matrix_json(text: &str, path: &Path) -> Result<Array2<f64>> {
    let rows: Vec<Vec<f64>> = serde_json::from_str(text).map_err(|e| {
        parse_err(
            path,
            "JSON matrix",
            format!("{e} (expected an array of arrays of numbers)"),
        )
    })?;
    if rows.is_empty() || rows[0].is_empty() {
        return Err(parse_err(path, "JSON matrix", "no rows or no columns"));
    }
    let d = rows[0].len();
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != d) {
        return Err(parse_err(
            path,
            "JSON matrix",
            format!("row {i} has {} entries, row 0 has {d}", r.len()),
        ));
    }
    let n = rows.len();
    let m = Array2::from_shape_vec((n, d), rows.into_iter().flatten().collect())
        .map_err(|e| parse_err(path, "JSON matrix", e.to_string()))?;
    ensure_finite(m.view(), &format!("matrix {}", path.display()))?;
    Ok(m)
}

/// Read a JSON matrix file (see [`parse_matrix_json`]).
pub fn read_matrix_json(path: &Path) -> Result<Array2<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    parse_matrix_json(&text, path)
}

/// Write a matrix as JSON (array of arrays; shortest round-trip decimal representation).
/// Non-finite entries are an error (JSON cannot represent them).
pub fn write_matrix_json(path: &Path, a: &Array2<f64>) -> Result<()> {
    ensure_finite(a.view(), &format!("matrix to write to {}", path.display()))?;
    let rows: Vec<Vec<f64>> = a.rows().into_iter().map(|r| r.to_vec()).collect();
    let text = serde_json::to_string(&rows).map_err(|e| io_err(path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| io_err(path, e))
}

/// Read a matrix from `.npy` or `.json` (chosen by the extension; anything else is tried as
/// `.npy` when it starts with the NumPy magic string, else as JSON).
pub fn read_matrix(path: &Path) -> Result<Array2<f64>> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(e) if e == "npy" => read_matrix_npy(path),
        Some(e) if e == "json" => read_matrix_json(path),
        _ => {
            let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
            if bytes.starts_with(b"\x93NUMPY") {
                read_matrix_npy(path)
            } else {
                let text = String::from_utf8(bytes)
                    .map_err(|_| parse_err(path, "matrix file", "neither .npy nor UTF-8 JSON"))?;
                parse_matrix_json(&text, path)
            }
        }
    }
}

/// Write a matrix as `.json` when the extension is `json`, else as `.npy`.
pub fn write_matrix(path: &Path, a: &Array2<f64>) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => write_matrix_json(path, a),
        _ => write_matrix_npy(path, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gbml-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn npy_and_json_round_trip_bits() {
        let a = array![[0.1, -2.5e-300, 3.0], [f64::MAX, 1.0 / 3.0, -0.0]];
        for name in ["m.npy", "m.json"] {
            let p = tmp(name);
            write_matrix(&p, &a).unwrap();
            let b = read_matrix(&p).unwrap();
            assert!(
                a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name}"
            );
        }
    }

    #[test]
    fn f32_and_int_npy_convert() {
        let p = tmp("f32.npy");
        ndarray_npy::write_npy(&p, &array![[1.5f32, -2.0], [0.25, 8.0]]).unwrap();
        assert_eq!(read_matrix(&p).unwrap(), array![[1.5, -2.0], [0.25, 8.0]]);
        let p = tmp("i64.npy");
        ndarray_npy::write_npy(&p, &array![[1i64, -2], [3, 4]]).unwrap();
        assert_eq!(read_matrix(&p).unwrap(), array![[1.0, -2.0], [3.0, 4.0]]);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let p = tmp("v.npy");
        write_vector_npy(&p, &array![1.0, 2.0]).unwrap();
        assert!(matches!(read_matrix(&p), Err(Error::Parse { .. })));
        assert_eq!(read_vector_npy(&p).unwrap(), array![1.0, 2.0]);
        let p = tmp("nan.npy");
        write_matrix_npy(&p, &array![[1.0, f64::NAN]]).unwrap();
        assert!(matches!(read_matrix(&p), Err(Error::NonFinite { .. })));
        let p = tmp("trunc.npy");
        write_matrix_npy(&p, &array![[1.0, 2.0], [3.0, 4.0]]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(read_matrix(&p), Err(Error::Parse { .. })));
        let p = tmp("ragged.json");
        std::fs::write(&p, "[[1, 2], [3]]").unwrap();
        assert!(matches!(read_matrix(&p), Err(Error::Parse { .. })));
        std::fs::write(&p, "[[1, \"a\"]]").unwrap();
        assert!(matches!(read_matrix(&p), Err(Error::Parse { .. })));
        assert!(matches!(
            read_matrix(&tmp("missing.npy")),
            Err(Error::Io { .. })
        ));
    }
}
