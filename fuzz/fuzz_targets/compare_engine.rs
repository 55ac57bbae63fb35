#![no_main]
//! cargo-fuzz target `compare_engine`: see `gbml_testbed::io::fuzz_targets::compare_engine`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbml_testbed::io::fuzz_targets::compare_engine(data);
});
