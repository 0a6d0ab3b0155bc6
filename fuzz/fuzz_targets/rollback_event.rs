//! Fuzz target `rollback_event`: its property is `rollgate_fuzz::rollback_event::check` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzz::rollback_event::check(data));
