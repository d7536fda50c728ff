//! The receive path: an arbitrary frame, as a stack under test might send it, through
//! everything the harness does with such a frame (parse, trace, compare, report) without a
//! panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("receive", data));
