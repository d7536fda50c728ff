//! IPv4 with options: the harness parser vs smoltcp (`Ipv4Packet`, `Ipv4Repr`), the header
//! checksum vs smoltcp's, and parse → emit → parse identity.
//! Known differences: `netconform::fuzz::differences`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("ipv4", data));
