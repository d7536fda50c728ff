//! Frames on the wire: parse untrusted bytes into owned representations, and emit them
//! again, correct or deliberately broken.
//!
//! One file per protocol, etherparse underneath for the header layouts and length checks;
//! the representations ([`Frame`], [`Ipv4Packet`], [`TcpSegment`], ...) are ours, owned, and
//! serialisable.
//!
//! # What may panic
//!
//! Nothing in this module panics on untrusted input: [`Frame::parse`] returns a
//! [`ParseError`] naming the layer, the byte offset where its header starts, and either the
//! bytes needed vs present or the impossible value found. Emitting never panics either,
//! whatever a representation holds: values wider than their field are masked or capped
//! (documented on each field).
//!
//! # Checksums
//!
//! Parsing does **not** reject bad checksums: each representation carries the checksum as
//! seen and `checksum_valid`, so the harness can observe and report what a stack sent.
//! [`Frame::emit`] ignores the stored checksums and computes correct ones;
//! [`Frame::emit_with`] breaks them on request ([`Faults`]). [`Frame::fill_computed`] sets
//! the stored values to what emit writes, so `parse(emit(f)) == f` after it.
//!
//! # Lengths
//!
//! Emit computes every length field (IPv4 total length, IPv6 payload length, TCP data
//! offset, UDP length, ether types of the last tag). Bytes beyond the network packet's
//! own length (Ethernet padding) are kept in [`Frame::trailer`].

pub(crate) mod arp;
mod builder;
pub mod dns;
mod error;
pub(crate) mod ethernet;
pub mod http;
pub(crate) mod icmpv4;
pub(crate) mod icmpv6;
pub(crate) mod ipv4;
pub(crate) mod ipv6;
pub mod plan;
pub(crate) mod tcp;
pub mod tls;
pub(crate) mod udp;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use arp::{ArpOperation, ArpRaw, ArpRepr};
pub use builder::{ChecksumFault, Faults};
pub use error::{ErrorKind, Layer, ParseError};
pub use ethernet::{EthernetRepr, MacAddr, MacAddrParseError, VlanTag, ether_type};
pub use icmpv4::{Icmpv4Kind, Icmpv4Message};
pub use icmpv6::{Icmpv6Kind, Icmpv6Message};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6ExtHeader, Ipv6Packet};
pub use tcp::{TcpFlags, TcpOption, TcpSegment, decode_options, encode_options};
pub use udp::UdpDatagram;

/// An Ethernet frame, parsed down to the transport layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// The Ethernet header.
    pub ethernet: EthernetRepr,
    /// VLAN tags, outermost first.
    pub vlans: Vec<VlanTag>,
    /// The network layer.
    pub network: Network,
    /// Bytes after the network packet's own length (Ethernet padding, or what a short IP
    /// length left out); emitted verbatim.
    pub trailer: Vec<u8>,
}

/// The network layer of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Network {
    /// ARP with 6-byte hardware and 4-byte protocol addresses.
    Arp(ArpRepr),
    /// ARP with other address lengths, addresses kept raw.
    ArpRaw(ArpRaw),
    /// IPv4.
    Ipv4(Ipv4Packet),
    /// IPv6.
    Ipv6(Ipv6Packet),
    /// Any other ether type, payload kept whole.
    Unknown {
        /// The ether type.
        ether_type: u16,
        /// Everything after the Ethernet header and tags.
        payload: Vec<u8>,
    },
}

impl Network {
    /// The ether type that announces this layer.
    pub fn ether_type(&self) -> u16 {
        match self {
            Network::Arp(_) | Network::ArpRaw(_) => ether_type::ARP,
            Network::Ipv4(_) => ether_type::IPV4,
            Network::Ipv6(_) => ether_type::IPV6,
            Network::Unknown { ether_type, .. } => *ether_type,
        }
    }
}

/// The transport layer of an IP packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    /// TCP (6).
    Tcp(TcpSegment),
    /// UDP (17).
    Udp(UdpDatagram),
    /// ICMPv4 (1).
    Icmpv4(Icmpv4Message),
    /// ICMPv6 (58).
    Icmpv6(Icmpv6Message),
    /// A fragment of a fragmented packet (not reassembled).
    Fragment {
        /// The protocol number of the fragmented payload.
        protocol: u8,
        /// The fragment's bytes.
        payload: Vec<u8>,
    },
    /// Any other protocol.
    Unknown {
        /// The protocol number.
        protocol: u8,
        /// The payload.
        payload: Vec<u8>,
    },
}

impl Transport {
    /// The IP protocol number.
    pub fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => 6,
            Transport::Udp(_) => 17,
            Transport::Icmpv4(_) => 1,
            Transport::Icmpv6(_) => 58,
            Transport::Fragment { protocol, .. } | Transport::Unknown { protocol, .. } => *protocol,
        }
    }

    pub(crate) fn emit(&self, pseudo: &Pseudo, faults: &Faults) -> Vec<u8> {
        match self {
            Transport::Tcp(t) => t.emit(pseudo, faults),
            Transport::Udp(u) => u.emit(pseudo, faults),
            Transport::Icmpv4(m) => m.emit(faults),
            Transport::Icmpv6(m) => m.emit(pseudo, faults),
            Transport::Fragment { payload, .. } | Transport::Unknown { payload, .. } => {
                payload.clone()
            }
        }
    }

    pub(crate) fn parse(
        protocol: u8,
        bytes: &[u8],
        offset: usize,
        pseudo: &Pseudo,
        fragment: bool,
    ) -> Result<Transport, ParseError> {
        Ok(match protocol {
            _ if fragment => Transport::Fragment {
                protocol,
                payload: bytes.to_vec(),
            },
            6 => Transport::Tcp(tcp::parse(bytes, offset, pseudo)?),
            17 => Transport::Udp(udp::parse(bytes, offset, pseudo)?),
            1 => Transport::Icmpv4(icmpv4::parse(bytes, offset)?),
            58 => Transport::Icmpv6(icmpv6::parse(bytes, offset, pseudo)?),
            _ => Transport::Unknown {
                protocol,
                payload: bytes.to_vec(),
            },
        })
    }

    /// Sets the stored checksum to what emit writes, and marks it valid.
    pub(crate) fn fill_computed(&mut self, pseudo: &Pseudo) {
        let bytes = self.emit(pseudo, &Faults::default());
        let at = |i: usize| {
            bytes
                .get(i..i + 2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
        };
        match self {
            Transport::Tcp(t) => (t.checksum, t.checksum_valid) = (at(16), Some(true)),
            Transport::Udp(u) => (u.checksum, u.checksum_valid) = (at(6), Some(true)),
            Transport::Icmpv4(m) => (m.checksum, m.checksum_valid) = (at(2), true),
            Transport::Icmpv6(m) => (m.checksum, m.checksum_valid) = (at(2), true),
            Transport::Fragment { .. } | Transport::Unknown { .. } => {}
        }
    }
}

/// The pseudo-header an upper-layer checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pseudo {
    /// None (ICMPv4, the IPv4 header itself).
    None,
    /// IPv4 addresses.
    V4 { src: [u8; 4], dst: [u8; 4] },
    /// IPv6 addresses.
    V6 { src: [u8; 16], dst: [u8; 16] },
}

/// The one's-complement checksum over `pseudo` (with `protocol` and the length of `bytes`)
/// and `bytes`: the value to write when the checksum field in `bytes` is zero, and zero when
/// `bytes` carries a correct checksum.
pub(crate) fn transport_checksum(pseudo: &Pseudo, protocol: u8, bytes: &[u8]) -> u16 {
    let len = bytes.len();
    let sum = match pseudo {
        Pseudo::None => 0,
        Pseudo::V4 { src, dst } => {
            let len = u16::try_from(len).unwrap_or(u16::MAX);
            sum_words(sum_words(sum_words(0, src), dst), &[0, protocol]) + u64::from(len)
        }
        Pseudo::V6 { src, dst } => {
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            sum_words(sum_words(0, src), dst) + u64::from(len) + u64::from(protocol)
        }
    };
    !fold(sum_words(sum, bytes))
}

/// Adds `bytes`, as big-endian 16-bit words (a last odd byte padded with zero), to `sum`
/// without folding the carries (RFC 1071 §2 (B), deferred carries): 32 bytes at a time as
/// eight 32-bit words, which a `u64` absorbs for any slice shorter than 2^34 bytes. One loop
/// step per 32 bytes, not per word, keeps the fuzz targets' comparison tracing out of the
/// checksum (docs/PERFORMANCE.md, "Fuzz targets").
pub(crate) fn sum_words(mut sum: u64, bytes: &[u8]) -> u64 {
    let word = |w: &[u8; 4]| u64::from(u32::from_be_bytes(*w));
    let (blocks, rest) = bytes.as_chunks::<32>();
    for b in blocks {
        let (w, _) = b.as_chunks::<4>();
        sum += word(&w[0]) + word(&w[1]) + word(&w[2]) + word(&w[3]);
        sum += word(&w[4]) + word(&w[5]) + word(&w[6]) + word(&w[7]);
    }
    let (pairs, last) = rest.as_chunks::<2>();
    for p in pairs {
        sum += u64::from(u16::from_be_bytes(*p));
    }
    if let [b] = last {
        sum += u64::from(*b) << 8;
    }
    sum
}

/// Folds a [`sum_words`] sum into 16 bits with end-around carries.
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

impl Frame {
    /// Parses a whole Ethernet frame. Never panics; bad checksums are recorded, not rejected.
    pub fn parse(bytes: &[u8]) -> Result<Frame, ParseError> {
        let (ethernet, vlans, next, offset) = ethernet::parse(bytes)?;
        let rest = bytes.get(offset..).unwrap_or_default();
        let (network, used) = match next {
            ether_type::ARP => match arp::parse(rest, offset)? {
                (arp::Parsed::Eth(a), used) => (Network::Arp(a), used),
                (arp::Parsed::Raw(a), used) => (Network::ArpRaw(a), used),
            },
            ether_type::IPV4 => {
                let (p, used) = ipv4::parse(rest, offset)?;
                (Network::Ipv4(p), used)
            }
            ether_type::IPV6 => {
                let (p, used) = ipv6::parse(rest, offset)?;
                (Network::Ipv6(p), used)
            }
            ether_type => (
                Network::Unknown {
                    ether_type,
                    payload: rest.to_vec(),
                },
                rest.len(),
            ),
        };
        Ok(Frame {
            ethernet,
            vlans,
            network,
            trailer: rest.get(used..).unwrap_or_default().to_vec(),
        })
    }

    /// The frame's bytes with correct lengths and checksums.
    pub fn emit(&self) -> Vec<u8> {
        self.emit_with(&Faults::default())
    }

    /// The frame's bytes with `faults` injected.
    pub fn emit_with(&self, faults: &Faults) -> Vec<u8> {
        let this = self.with_ether_types();
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&this.ethernet.dst.0);
        out.extend_from_slice(&this.ethernet.src.0);
        out.extend_from_slice(&this.ethernet.ether_type.to_be_bytes());
        for tag in &this.vlans {
            tag.emit(tag.ether_type, &mut out);
        }
        match &this.network {
            Network::Arp(a) => a.emit(&mut out),
            Network::ArpRaw(a) => a.emit(&mut out),
            Network::Ipv4(p) => p.emit(faults, &mut out),
            Network::Ipv6(p) => p.emit(faults, &mut out),
            Network::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
        out.extend_from_slice(&this.trailer);
        if let Some(len) = faults.truncate {
            out.truncate(len);
        }
        out
    }

    /// A copy whose ether types chain correctly: a VLAN TPID before each tag (0x8100 unless
    /// one is already set), the network's ether type last.
    fn with_ether_types(&self) -> Frame {
        let mut f = self.clone();
        let last = f.network.ether_type();
        let mut previous = &mut f.ethernet.ether_type;
        for tag in &mut f.vlans {
            if !ether_type::is_vlan(*previous) {
                *previous = ether_type::VLAN;
            }
            previous = &mut tag.ether_type;
        }
        *previous = last;
        f
    }

    /// Sets every computed field (ether types, checksums and their validity) to what
    /// [`Frame::emit`] writes, so that `Frame::parse(&f.emit()) == Ok(f)`.
    pub fn fill_computed(&mut self) {
        *self = self.with_ether_types();
        match &mut self.network {
            Network::Ipv4(p) => p.fill_computed(),
            Network::Ipv6(p) => p.fill_computed(),
            Network::Arp(_) | Network::ArpRaw(_) | Network::Unknown { .. } => {}
        }
    }

    /// The IPv4 packet, if any.
    pub fn as_ipv4(&self) -> Option<&Ipv4Packet> {
        match &self.network {
            Network::Ipv4(p) => Some(p),
            _ => None,
        }
    }

    /// The IPv6 packet, if any.
    pub fn as_ipv6(&self) -> Option<&Ipv6Packet> {
        match &self.network {
            Network::Ipv6(p) => Some(p),
            _ => None,
        }
    }

    /// The transport layer of an IP frame.
    pub fn transport(&self) -> Option<&Transport> {
        match &self.network {
            Network::Ipv4(p) => Some(&p.transport),
            Network::Ipv6(p) => Some(&p.transport),
            _ => None,
        }
    }

    /// The transport layer of an IP frame, mutably.
    pub fn transport_mut(&mut self) -> Option<&mut Transport> {
        match &mut self.network {
            Network::Ipv4(p) => Some(&mut p.transport),
            Network::Ipv6(p) => Some(&mut p.transport),
            _ => None,
        }
    }

    /// The TCP segment, if any.
    pub fn as_tcp(&self) -> Option<&TcpSegment> {
        match self.transport() {
            Some(Transport::Tcp(t)) => Some(t),
            _ => None,
        }
    }

    /// A one-line human summary with raw addresses (the trace renders names instead).
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(t) => write!(f, "TCP {t}"),
            Transport::Udp(u) => write!(f, "{u}"),
            Transport::Icmpv4(m) => write!(f, "{m}"),
            Transport::Icmpv6(m) => write!(f, "{m}"),
            Transport::Fragment { protocol, payload } => {
                write!(f, "fragment of proto {protocol}, length {}", payload.len())
            }
            Transport::Unknown { protocol, payload } => {
                write!(f, "proto {protocol}, length {}", payload.len())
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Arp(a) => write!(f, "{a}"),
            Network::ArpRaw(a) => write!(f, "{a}"),
            Network::Ipv4(p) => write!(f, "{p}"),
            Network::Ipv6(p) => write!(f, "{p}"),
            Network::Unknown {
                ether_type,
                payload,
            } => {
                write!(f, "ethertype 0x{ether_type:04x}, length {}", payload.len())
            }
        }
    }
}

impl fmt::Display for Frame {
    /// `02:00:00:00:00:01 > 02:00:00:00:00:02, vlan 10, p 0, IP 10.0.0.1 > ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {}", self.ethernet.src, self.ethernet.dst)?;
        for tag in &self.vlans {
            write!(f, ", {tag}")?;
        }
        write!(f, ", {}", self.network)
    }
}

#[cfg(test)]
mod tests;
