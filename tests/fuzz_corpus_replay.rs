//! Replays every seed-corpus file (`fuzz/corpus/<target>/`) and every past crash
//! (`fuzz/artifacts-regressions/<target>/`) through the fuzz targets' bodies, without the fuzzer.
//! A target panics on a violated invariant, so this test fails if any old crash comes back.

use gbml_testbed::io::fuzz_targets::{run, TARGETS};
use std::path::Path;

fn replay_dir(target: &str, dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let res = std::panic::catch_unwind(|| run(target, &data));
        assert!(res.is_ok(), "fuzz target {target} fails on {}", f.display());
    }
    files.len()
}

#[test]
fn replay_corpora_and_regressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for t in TARGETS {
        let n_corpus = replay_dir(t, &root.join("corpus").join(t));
        assert!(n_corpus > 0, "no seed corpus committed for target {t}");
        total += n_corpus + replay_dir(t, &root.join("artifacts-regressions").join(t));
    }
    assert!(total >= 4 * 5);
}

#[test]
fn targets_reject_nothing_on_empty_input() {
    for t in TARGETS {
        run(t, &[]);
    }
}
