#![no_main]
//! cargo-fuzz target `mnk_task_sets`: see `gbml_testbed::io::fuzz_targets::mnk_task_sets`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbml_testbed::io::fuzz_targets::mnk_task_sets(data);
});
