//! Fuzz target `hook_event`: its property is `rollgate_fuzz::hook_event::check` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rollgate_fuzz::hook_event::check(data));
