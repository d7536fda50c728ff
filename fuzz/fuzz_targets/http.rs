//! HTTP/1.x: arbitrary bytes read as a request and as a response by
//! `netconform::wire::http` never panic, agree with httparse on the head up to the listed
//! differences, and every message (pipelined requests too) re-emits to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("http", data));
