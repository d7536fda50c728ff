//! Model target: the TLS model (harness/models/tls/): record protection, KeyUpdate, PRF, HKDF-Expand-Label, transcript (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_tls", data));
