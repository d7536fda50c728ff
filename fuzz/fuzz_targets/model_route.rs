//! Model target: the route model (harness/models/route.rs): added routes and lookups against a brute-force longest-prefix match (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_route", data));
