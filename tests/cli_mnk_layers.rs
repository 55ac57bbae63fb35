//! `gbml mnk --layers`: an FC layer list gives the `--depth` path's Φ bit for bit, a conv layer
//! list runs on images, bad specs and shapes exit 2.

#[path = "common/cli.rs"]
mod cli;
use cli::gbml;

fn read(p: &std::path::Path) -> Vec<u64> {
    let a: ndarray::Array2<f64> =
        ndarray_npy::ReadNpyExt::read_npy(std::fs::File::open(p).unwrap()).unwrap();
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn fc_layer_list_equals_depth_path_and_conv_runs() {
    let dir = std::env::temp_dir().join(format!("gbml_cli_mnk_layers_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    let common = [
        "mnk",
        "--tasks",
        "sine",
        "--n-train",
        "6",
        "--sigma-w",
        "1.3",
        "--sigma-b",
        "0.2",
    ];
    let (c1, _, e1) = gbml(
        &[
            &common[..],
            &["--depth", "2", "--phi-out", a.to_str().unwrap()],
        ]
        .concat(),
    );
    let (c2, _, e2) = gbml(
        &[
            &common[..],
            &[
                "--layers",
                "dense,relu,dense,relu,dense",
                "--phi-out",
                b.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!((c1, c2), (0, 0), "{e1} {e2}");
    assert_eq!(read(&a), read(&b));
    // A conv list on 2×2×2 "images" of the linear family (d = 8).
    let (c, out, err) = gbml(&[
        "mnk",
        "--tasks",
        "linear",
        "--dim",
        "8",
        "--n-train",
        "3",
        "--n-test",
        "1",
        "--m",
        "2",
        "--n",
        "2",
        "--layers",
        "conv:2:same,relu,gap,dense",
        "--image-shape",
        "2,2,2",
    ]);
    assert_eq!(c, 0, "{err}");
    assert!(out.contains("Φ spectrum"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_layer_specs_exit_2() {
    let lin = ["mnk", "--tasks", "linear", "--dim", "8", "--layers"];
    for (layers, shape) in [
        ("conv:3:same,bogus,gap,dense", "2,2,2"), // unknown word
        ("conv:2:same,relu,gap,dense", "3,3,1"),  // H·W·C ≠ d
        ("conv:2:same,relu,gap,dense", "2,4"),    // not H,W,C
        ("conv:3:valid,relu,gap,dense", "2,2,2"), // image too small for a VALID 3×3
    ] {
        let (c, _, err) = gbml(&[&lin[..], &[layers, "--image-shape", shape]].concat());
        assert_eq!(c, 2, "{layers} {shape}: {err}");
    }
}
