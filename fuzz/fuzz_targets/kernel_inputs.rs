#![no_main]
//! cargo-fuzz target `kernel_inputs`: see `gbml_testbed::io::fuzz_targets::kernel_inputs`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbml_testbed::io::fuzz_targets::kernel_inputs(data);
});
