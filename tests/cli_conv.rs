//! `gbml kernel --layers`: NHWC `.npy` in, the library's conv kernels out (same bits), typed
//! errors as exit code 2 (bad spec, rank mismatch, too-small image).

use gbml_testbed::kernel::{conv, Spec};
use ndarray::Array4;
use std::path::Path;
use std::process::Command;

/// A little-endian f64 C-order `.npy` of any shape.
fn write_npy(path: &Path, shape: &[usize], data: &[f64]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shp = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shp}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

fn gbml(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gbml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_layers_matches_library_and_rejects_bad_input() {
    let dir = std::env::temp_dir().join(format!("gbml_cli_conv_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = Array4::from_shape_fn((3, 5, 5, 2), |(m, i, j, c)| {
        ((m * 7 + i * 3 + j * 5 + c) % 11) as f64 / 7.0 - 0.6
    });
    let xp = dir.join("x.npy");
    write_npy(&xp, &[3, 5, 5, 2], x.as_slice().unwrap());
    let out = dir.join("k.npy");
    let layers = "conv:3:same,relu,avgpool:2,conv:2:valid,relu,gap,dense";
    let (code, err) = gbml(&[
        "kernel",
        "--x1",
        xp.to_str().unwrap(),
        "--layers",
        layers,
        "--sigma-w",
        "1.4",
        "--sigma-b",
        "0.1",
        "--kind",
        "ntk",
        "--rows",
        "1..3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got = gbml_testbed::io::npy::read_matrix(&out).unwrap();
    let spec = Spec::parse(layers)
        .unwrap()
        .with_sigma_w(1.4)
        .with_sigma_b(Some(0.1));
    let want = conv::kernels(&spec, x.view(), None).unwrap();
    assert_eq!(got, want.ntk.slice(ndarray::s![1..3, ..]));
    for bad in [
        vec!["--layers", "conv:3:same,softmax,gap"],
        vec!["--layers", "conv:9:valid,relu,gap"],
        vec![
            "--layers",
            "conv:3:same,relu,gap",
            "--parameterization",
            "standard",
        ],
    ] {
        let mut args = vec![
            "kernel",
            "--x1",
            xp.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(bad.iter().copied());
        let (code, err) = gbml(&args);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    let x3 = dir.join("x3.npy");
    write_npy(&x3, &[3, 5, 10], &vec![0.5; 150]);
    let (code, err) = gbml(&[
        "kernel",
        "--x1",
        x3.to_str().unwrap(),
        "--layers",
        "conv:3:same,relu,gap",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NHWC"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--precision extended --layers`: the double-double conv kernels (the library's
/// `xprec::conv_kernels` bits, full matrix and `--rows`), within 1e-12 of the f64 path here.
#[test]
fn cli_layers_precision_extended_is_the_extended_library_path() {
    let dir = std::env::temp_dir().join(format!("gbml_cli_conv_x_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = Array4::from_shape_fn((3, 4, 4, 1), |(m, i, j, _)| {
        ((m * 5 + i * 3 + j * 7) % 13) as f64 / 9.0 - 0.5
    });
    let xp = dir.join("x.npy");
    write_npy(&xp, &[3, 4, 4, 1], x.as_slice().unwrap());
    let layers = "conv:3:same,relu,avgpool:2,conv:2:same,relu,gap,dense";
    let spec = Spec::parse(layers).unwrap().with_sigma_w(1.3);
    let want = gbml_testbed::xprec::conv_kernels(&spec, x.view(), None).unwrap();
    let f64k = conv::kernels(&spec, x.view(), None).unwrap();
    for (rows, r) in [(None, 0..3), (Some("1..3"), 1..3)] {
        let out = dir.join("k.npy");
        let mut args = vec![
            "kernel",
            "--x1",
            xp.to_str().unwrap(),
            "--layers",
            layers,
            "--sigma-w",
            "1.3",
            "--kind",
            "nngp",
            "--precision",
            "extended",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(rr) = rows {
            args.extend(["--rows", rr]);
        }
        let (code, err) = gbml(&args);
        assert_eq!(code, 0, "{err}");
        let got = gbml_testbed::io::npy::read_matrix(&out).unwrap();
        assert_eq!(got, want.nngp.slice(ndarray::s![r.clone(), ..]));
        for (a, b) in got.iter().zip(f64k.nngp.slice(ndarray::s![r, ..]).iter()) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
