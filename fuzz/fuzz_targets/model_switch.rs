//! Model target: the learning switch model (harness/models/switch.rs) against a reference filtering database (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_switch", data));
