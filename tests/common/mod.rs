//! Helpers shared by the namespace tests and the property tests.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netconform::sandbox::{MacAddr, PacketSocket};

/// A 42-byte ARP request (Ethernet broadcast) asking who has `target_ip`.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&sender_ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target_ip.octets());
    f
}

/// An ARP reply parsed from a frame: (sender MAC, sender IP, target MAC, target IP).
pub fn parse_arp_reply(f: &[u8]) -> Option<(MacAddr, Ipv4Addr, MacAddr, Ipv4Addr)> {
    if f.len() < 42 || f[12..14] != [0x08, 0x06] || f[20..22] != [0, 2] {
        return None;
    }
    let mac = |o: usize| MacAddr(f[o..o + 6].try_into().unwrap());
    let ip = |o: usize| Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
    Some((mac(22), ip(28), mac(32), ip(38)))
}

/// Frames received until `deadline` that `keep` accepts.
pub fn collect(
    sock: &PacketSocket,
    within: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while let Some(f) = sock.recv(deadline).unwrap() {
        if keep(&f) {
            out.push(f);
        }
    }
    out
}

/// The first frame `keep` accepts before `within` passes.
pub fn first(
    sock: &PacketSocket,
    within: Duration,
    keep: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while let Some(f) = sock.recv(deadline).unwrap() {
        if keep(&f) {
            return Some(f);
        }
    }
    None
}

/// Names of host-namespace interfaces that carry the harness prefix (must stay empty).
pub fn host_ncf_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("ncf"))
                .collect()
        })
        .unwrap_or_default()
}

/// The random source of a property test: seeded from `default_seed`, so that `cargo test`
/// runs the same cases every time and a failure in CI reproduces;
/// `NETCONFORM_PROPTEST_SEED=<number>` explores others (e.g. in a nightly run).
pub fn rng(default_seed: u64) -> proptest::test_runner::TestRng {
    use proptest::test_runner::{RngAlgorithm, TestRng};
    let seed: u64 = std::env::var("NETCONFORM_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_mul(i as u64 + 1)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// How many cases a property test runs: `default`, or `NETCONFORM_PROPTEST_CASES=<n>`.
pub fn cases(default: u32) -> u32 {
    std::env::var("NETCONFORM_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Locks a rendered trace as an insta snapshot; times differ from run to run and are masked,
/// everything else is locked (for the test crates that declare `#[macro_use] mod common`).
#[allow(unused_macros)]
macro_rules! assert_trace_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({ filters => vec![(r"(?m)^ *\d+\.\d{3}", "[ms]")] }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}
