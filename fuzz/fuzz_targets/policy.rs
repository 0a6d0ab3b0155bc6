//! Fuzz target `policy`: its property is `rollgate_fuzz::policy::check` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzz::policy::check(data));
