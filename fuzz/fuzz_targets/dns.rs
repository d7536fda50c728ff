//! DNS messages: arbitrary bytes read by `netconform::wire::dns` never panic, agree with
//! hickory-proto's `Message::from_vec` (acceptance and a normalised field tuple) up to the
//! listed differences, and re-emit, with and without compression, to the same message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("dns", data));
