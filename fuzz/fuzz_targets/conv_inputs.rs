#![no_main]
//! cargo-fuzz target `conv_inputs`: see `gbml_testbed::kernel::conv::fuzz_conv_inputs`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gbml_testbed::kernel::conv::fuzz_conv_inputs(data);
});
