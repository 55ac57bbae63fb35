#![no_main]
//! cargo-fuzz target `manifest_parse`: see `gbml_testbed::io::fuzz_targets::manifest_parse`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbml_testbed::io::fuzz_targets::manifest_parse(data);
});
