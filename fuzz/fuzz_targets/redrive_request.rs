//! Fuzz target `redrive_request`: its property is `rollgate_fuzz::redrive_request::check` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzz::redrive_request::check(data));
