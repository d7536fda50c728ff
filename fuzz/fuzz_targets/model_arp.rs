//! Model target: the ARP neighbour cache model (harness/models/arp.rs) driven by sends, ARP frames and time; cache invariants after every event (see `netconform::fuzz`, module `models`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| netconform::fuzz::run("model_arp", data));
