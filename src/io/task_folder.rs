//! The `.npy` task folders of `gbml maml --npy-dir` (docs/FORMAT.md): `xs.npy` (N × m × d),
//! `ys.npy` (N × m × k), `xq.npy` (N × n × d), `yq.npy` (N × n × k), optionally the same with a
//! `test_` prefix. Read through [`super::npy::read_array3_npy`] (the size and header guards of the
//! one `.npy` parser, finite entries).

use super::npy::read_array3_npy;
use crate::error::{Error, Result};
use crate::task::Task;
use ndarray::{s, Array2, Array3};
use std::path::Path;

/// The four file names of a task folder with `prefix` (`""` or `"test_"`).
pub fn file_names(prefix: &str) -> [String; 4] {
    ["xs", "ys", "xq", "yq"].map(|n| format!("{prefix}{n}.npy"))
}

/// Read the tasks with `prefix` from `dir`: `None` when none of the four files exists, an
/// [`Error::Io`] naming the missing file when only some exist, [`Error::Shape`] when the task
/// counts or per-task shapes disagree.
pub fn read_tasks(dir: &Path, prefix: &str) -> Result<Option<Vec<Task>>> {
    let names = file_names(prefix);
    if names.iter().all(|n| !dir.join(n).exists()) {
        return Ok(None);
    }
    let mut full: Vec<Array3<f64>> = Vec::with_capacity(4);
    for n in &names {
        let p = dir.join(n);
        if !p.exists() {
            return Err(Error::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing task file"),
            });
        }
        full.push(read_array3_npy(&p)?);
    }
    let count = full[0].shape()[0];
    if full.iter().any(|a| a.shape()[0] != count) {
        return Err(Error::shape(
            format!("{prefix}task files in {}", dir.display()),
            format!("{count} tasks in every file"),
            format!(
                "{:?}",
                full.iter().map(|a| a.shape()[0]).collect::<Vec<_>>()
            ),
        ));
    }
    let sh = |i: usize| full[i].shape().to_vec();
    let (xs, ys, xq, yq) = (sh(0), sh(1), sh(2), sh(3));
    if xs[1] != ys[1] || xq[1] != yq[1] || xs[2] != xq[2] || ys[2] != yq[2] {
        return Err(Error::shape(
            format!("{prefix}task files in {}", dir.display()),
            "xs N×m×d, ys N×m×k, xq N×n×d, yq N×n×k",
            format!("xs {xs:?}, ys {ys:?}, xq {xq:?}, yq {yq:?}"),
        ));
    }
    let tasks = (0..count)
        .map(|i| {
            let g = |a: &Array3<f64>| -> Array2<f64> { a.slice(s![i, .., ..]).to_owned() };
            // checked against the network by `maml` (maml::validate_task)
            Task {
                xs: g(&full[0]),
                ys: g(&full[1]),
                xq: g(&full[2]),
                yq: g(&full[3]),
            }
        })
        .collect();
    Ok(Some(tasks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gbml-taskdir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_all(d: &Path, n: usize) {
        for (name, rows, cols) in [("xs", 3, 2), ("ys", 3, 1), ("xq", 4, 2), ("yq", 4, 1)] {
            let a = Array3::from_shape_fn((n, rows, cols), |(i, j, k)| (i + j + k) as f64);
            ndarray_npy::write_npy(d.join(format!("{name}.npy")), &a).unwrap();
        }
    }

    #[test]
    fn reads_a_task_folder_and_none_when_absent() {
        let d = dir("ok");
        assert!(read_tasks(&d, "test_").unwrap().is_none());
        write_all(&d, 2);
        let t = read_tasks(&d, "").unwrap().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].xq[[3, 1]], 5.0);
    }

    #[test]
    fn oversized_header_is_a_parse_error_not_an_allocation() {
        // The fuzzer's finding: a tiny file declaring a 3.6 GB header (format 2.0, u32 length).
        let d = dir("hdr");
        write_all(&d, 1);
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&3_600_000_000u32.to_le_bytes());
        bytes.extend_from_slice(b"{'descr'");
        std::fs::write(d.join("xs.npy"), &bytes).unwrap();
        let e = read_tasks(&d, "").unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{e}");
        assert!(e.to_string().contains("header declares"), "{e}");
    }

    #[test]
    fn missing_file_and_inconsistent_shapes_are_typed_errors() {
        let d = dir("bad");
        write_all(&d, 2);
        std::fs::remove_file(d.join("yq.npy")).unwrap();
        assert!(matches!(read_tasks(&d, ""), Err(Error::Io { .. })));
        let a = Array3::<f64>::zeros((2, 5, 1));
        ndarray_npy::write_npy(d.join("yq.npy"), &a).unwrap();
        assert!(matches!(read_tasks(&d, ""), Err(Error::Shape { .. })));
        let a = Array3::<f64>::from_elem((2, 4, 1), f64::NAN);
        ndarray_npy::write_npy(d.join("yq.npy"), &a).unwrap();
        assert!(matches!(read_tasks(&d, ""), Err(Error::NonFinite { .. })));
    }
}
