//! Model target: the TCP endpoint model (harness/models/tcp.rs) driven by application calls, peer segments and window updates; RFC 9293 invariants after every event (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_tcp", data));
