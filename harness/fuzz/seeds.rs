//! Seed corpora from recorded traces: every frame of a trace the harness recorded against a
//! stack (`netconform certify --out DIR` writes one pcap per check) is cut at each layer
//! into the input of that layer's target, one input per distinct shape (so a corpus holds a
//! SYN, a SYN-ACK with options, an ARP reply, ... once each, not a thousand ACKs).
//!
//! Transport inputs get their checksum recomputed for the fixed pseudo-header the transport
//! targets use, so the seeds are valid segments and the fuzzer starts from accepted inputs.

use std::collections::BTreeMap;

use super::receive;
use crate::tls::stream::conversations_from_frames;
use crate::wire::{Frame, Network, Pseudo, Transport, ether_type, transport_checksum};

/// Seeds per target: shape key → input.
#[derive(Debug, Default)]
pub struct Seeds {
    by_target: BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>,
}

impl Seeds {
    /// No seeds yet.
    pub fn new() -> Self {
        Seeds::default()
    }

    fn add(&mut self, target: &'static str, shape: String, bytes: Vec<u8>) {
        self.by_target
            .entry(target)
            .or_default()
            .entry(shape)
            .or_insert(bytes);
    }

    /// Adds the seeds of one recorded trace (`frames` in capture order, with capture
    /// timestamps in microseconds).
    pub fn add_trace(&mut self, frames: &[(u64, Vec<u8>)]) {
        for (_, bytes) in frames {
            self.add_frame(bytes);
        }
        // The receive path: the whole exchange, as the answers of a scripted stack (the state
        // selector taken from the exchange's length, so traces spread over the states).
        let all: Vec<Vec<u8>> = frames.iter().take(24).map(|(_, b)| b.clone()).collect();
        if !all.is_empty() {
            let shape = format!("{}", all.len() / 6);
            let selector = u8::try_from(all.len() % 251).unwrap_or(0);
            self.add("receive", shape, receive::encode(selector, &all));
        }
        // TLS: each direction of each TCP conversation that carries TLS records.
        for c in conversations_from_frames(frames) {
            for data in [&c.client_data, &c.server_data] {
                if data.first().is_some_and(|t| (20..=24).contains(t)) {
                    let shape = format!("{:02x?}", &data[..data.len().min(6)]);
                    self.add("tls", shape, data.clone());
                }
            }
        }
    }

    /// Adds the layer inputs of one frame.
    pub fn add_frame(&mut self, bytes: &[u8]) {
        let Ok(frame) = Frame::parse(bytes) else {
            return;
        };
        let tags = frame.vlans.len();
        let network_at = 14 + 4 * tags;
        let network = &bytes[network_at.min(bytes.len())..];
        self.add(
            "ethernet",
            format!("{:04x} {tags}", frame.ethernet.ether_type),
            bytes.to_vec(),
        );
        self.add(
            "etherparse_bare",
            format!("{:04x} {tags}", frame.ethernet.ether_type),
            bytes.to_vec(),
        );
        if tags == 0 {
            self.add_derived(&frame);
        }
        let (transport, ip_payload) = match &frame.network {
            Network::Arp(a) => {
                self.add(
                    "arp",
                    format!("{:?}", a.operation),
                    network[..28.min(network.len())].to_vec(),
                );
                return;
            }
            Network::ArpRaw(_) | Network::Unknown { .. } => return,
            Network::Ipv4(p) => {
                let header = 20 + p.options.len();
                let total = bytes.len() - network_at - frame.trailer.len();
                self.add(
                    "ipv4",
                    format!(
                        "{} {} {}",
                        p.transport.protocol(),
                        p.options.len(),
                        p.dont_fragment
                    ),
                    network[..total].to_vec(),
                );
                (&p.transport, network[header..total].to_vec())
            }
            Network::Ipv6(p) => {
                let total = bytes.len() - network_at - frame.trailer.len();
                let chain: Vec<u8> = p.extensions.iter().map(|e| e.protocol).collect();
                self.add(
                    "ipv6",
                    format!("{chain:?} {}", p.transport.protocol()),
                    network[..total].to_vec(),
                );
                let ext_len: usize = p.extensions.iter().map(|e| e.data.len() + 2).sum();
                (&p.transport, network[40 + ext_len..total].to_vec())
            }
        };
        let v4 = Pseudo::V4 {
            src: [192, 0, 2, 1],
            dst: [192, 0, 2, 2],
        };
        let v6 = Pseudo::V6 {
            src: std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets(),
            dst: std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets(),
        };
        let mut seg = ip_payload;
        match transport {
            Transport::Tcp(t) => {
                let kinds: Vec<String> = t.options.iter().map(|o| o.to_string()).collect();
                let kinds: Vec<&str> = kinds.iter().filter_map(|k| k.split(' ').next()).collect();
                fix_checksum(&mut seg, 16, &v4, 6);
                let shape = format!("{} {kinds:?} {}", t.flags, t.payload.is_empty());
                self.add("tcp", shape, seg);
            }
            Transport::Udp(u) => {
                fix_checksum(&mut seg, 6, &v4, 17);
                self.add(
                    "udp",
                    format!("{} {}", u.dst_port.min(1024), u.payload.len() / 64),
                    seg,
                );
            }
            Transport::Icmpv4(m) => {
                fix_checksum(&mut seg, 2, &Pseudo::None, 1);
                self.add("icmpv4", format!("{} {}", m.icmp_type, m.code), seg);
            }
            Transport::Icmpv6(m) => {
                fix_checksum(&mut seg, 2, &v6, 58);
                self.add("icmpv6", format!("{} {}", m.icmp_type, m.code), seg);
            }
            Transport::Fragment { .. } | Transport::Unknown { .. } => {}
        }
    }

    /// Variants the kernel traces do not hold, made from a recorded frame with the harness's
    /// emitter: 802.1Q and 802.1ad+802.1Q tags, an IPv4 router-alert option (RFC 2113), an
    /// IPv6 hop-by-hop router alert (RFC 2711) and a fragment header.
    fn add_derived(&mut self, frame: &Frame) {
        let t = frame.ethernet.ether_type;
        let mut tagged = frame.clone();
        tagged.vlans = vec![crate::wire::VlanTag::new(77)];
        self.add("ethernet", format!("{t:04x} 1"), tagged.emit());
        let mut qinq = frame.clone();
        let mut outer = crate::wire::VlanTag::new(100);
        outer.pcp = 5;
        qinq.ethernet.ether_type = ether_type::QINQ;
        qinq.vlans = vec![outer, crate::wire::VlanTag::new(77)];
        self.add("ethernet", format!("{t:04x} 2"), qinq.emit());
        match &frame.network {
            Network::Ipv4(p) if p.options.is_empty() => {
                let mut p = p.clone();
                p.options = vec![0x94, 0x04, 0x00, 0x00];
                let bytes = emit_network(&Network::Ipv4(p.clone()));
                self.add("ipv4", format!("{} ra", p.transport.protocol()), bytes);
            }
            Network::Ipv6(p) if p.extensions.is_empty() => {
                let mut p = p.clone();
                p.extensions = vec![
                    crate::wire::Ipv6ExtHeader {
                        protocol: 0,
                        data: vec![5, 2, 0, 0, 1, 0],
                    },
                    crate::wire::Ipv6ExtHeader::fragment(0, false, 7),
                ];
                let bytes = emit_network(&Network::Ipv6(p.clone()));
                self.add(
                    "ipv6",
                    format!("hbh frag {}", p.transport.protocol()),
                    bytes,
                );
            }
            _ => {}
        }
    }

    /// The seeds: (target, file name, bytes), the file name `<target>-<n>` in shape order.
    pub fn files(&self) -> Vec<(&'static str, String, &[u8])> {
        let mut out = Vec::new();
        for (target, shapes) in &self.by_target {
            for (i, bytes) in shapes.values().enumerate() {
                out.push((*target, format!("kernel-{i:03}"), bytes.as_slice()));
            }
        }
        out
    }
}

/// Rewrites the checksum at `at` so that it verifies under `pseudo`.
fn fix_checksum(bytes: &mut [u8], at: usize, pseudo: &Pseudo, protocol: u8) {
    if let Some(c) = bytes.get_mut(at..at + 2) {
        c.copy_from_slice(&[0, 0]);
    } else {
        return;
    }
    let sum = transport_checksum(pseudo, protocol, bytes);
    let sum = if protocol == 17 && sum == 0 {
        0xffff
    } else {
        sum
    };
    bytes[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The network-layer bytes of `network` as the harness emits them.
fn emit_network(network: &Network) -> Vec<u8> {
    let frame = Frame {
        ethernet: crate::wire::EthernetRepr {
            src: crate::wire::MacAddr([2, 0, 0, 0, 0, 1]),
            dst: crate::wire::MacAddr([2, 0, 0, 0, 0, 2]),
            ether_type: network.ether_type(),
        },
        vlans: Vec::new(),
        network: network.clone(),
        trailer: Vec::new(),
    };
    frame.emit().split_off(14)
}
