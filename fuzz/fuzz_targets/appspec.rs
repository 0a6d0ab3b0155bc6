//! Fuzz target `appspec`: its property is `rollgate_fuzz::appspec::check` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzz::appspec::check(data));
