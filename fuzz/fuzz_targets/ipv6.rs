//! IPv6 with extension headers: the harness parser vs smoltcp (`Ipv6Packet`) and etherparse's
//! extension chain, and parse → emit → parse identity.
//! Known differences: `netconform::fuzz::differences`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("ipv6", data));
