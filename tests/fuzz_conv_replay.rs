//! Replays the seed corpus (`fuzz/corpus/conv_inputs/`) and past crashes
//! (`fuzz/artifacts-regressions/conv_inputs/`) of the `conv_inputs` fuzz target through its
//! body, without the fuzzer (the target panics on a violated invariant).

use gbml_testbed::kernel::conv::fuzz_conv_inputs;
use std::path::Path;

#[test]
fn replay_conv_inputs_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus/conv_inputs", "artifacts-regressions/conv_inputs"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let res = std::panic::catch_unwind(|| fuzz_conv_inputs(&data));
            assert!(res.is_ok(), "conv_inputs fails on {}", f.display());
            n += 1;
        }
    }
    assert!(n >= 8, "seed corpus missing ({n} files)");
    fuzz_conv_inputs(&[]);
}
