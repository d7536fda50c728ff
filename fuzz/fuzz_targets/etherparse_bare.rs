//! The speed baseline of `ci/fuzz-bench`: etherparse's strict slicer and nothing else.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("etherparse_bare", data));
