//! Model target: the NAT model (harness/models/nat.rs): the table stays a bijection, translations round-trip (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_nat", data));
