//! ICMPv6: the harness parser vs smoltcp, the checksum (with the pseudo-header) vs
//! smoltcp's, and round trip.
//! Known differences: `netconform::fuzz::differences`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("icmpv6", data));
