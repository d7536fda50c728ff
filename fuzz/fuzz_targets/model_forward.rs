//! Model target: the IPv4 forwarding model (harness/models/forward.rs): RFC 1812 rules on every decision (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_forward", data));
