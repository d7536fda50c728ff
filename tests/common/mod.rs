//! Helpers shared by the namespace tests.
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
