//! ARP: the harness parser vs etherparse and smoltcp (`ArpRepr`), and byte-exact re-emit.
//! Known differences: `netconform::fuzz::differences`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("arp", data));
