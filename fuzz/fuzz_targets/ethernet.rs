//! Ethernet II and 802.1Q/802.1ad tags: the harness parser vs etherparse and smoltcp, and
//! emit(parse(x)) == x for the header and tags.
//! Known differences: `netconform::fuzz::differences`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("ethernet", data));
