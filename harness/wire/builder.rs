//! Building frames, including deliberately broken ones.
//!
//! [`Frame::emit`] always writes correct lengths and checksums. [`Frame::emit_with`] takes
//! [`Faults`]: each field, when set, breaks one thing on the wire and leaves the rest correct,
//! so a check can see exactly how a stack reacts to that one fault. Nothing here panics,
//! whatever the representation holds.
//!
//! ```
//! use netconform::wire::{Faults, Frame, MacAddr, TcpFlags, TcpSegment};
//! let seg = TcpSegment::new(40000, 80, 1, 0, TcpFlags::SYN);
//! let frame = Frame::tcp_v4(MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]),
//!     [10, 0, 0, 1].into(), [10, 0, 0, 2].into(), seg);
//! let bytes = frame.emit_with(&Faults::default().wrong_transport_checksum());
//! let parsed = Frame::parse(&bytes).unwrap();
//! assert_eq!(parsed.as_tcp().unwrap().checksum_valid, Some(false));
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::{
    ArpRepr, EthernetRepr, Frame, Icmpv4Message, Icmpv6Message, Ipv4Packet, Ipv6Packet, MacAddr,
    Network, TcpSegment, Transport, UdpDatagram,
};

/// How to break a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumFault {
    /// The correct value with its low byte inverted: always wrong, never the equivalent
    /// one's-complement zero, never zero for UDP.
    Wrong,
    /// Exactly this value.
    Value(u16),
}

impl ChecksumFault {
    /// The value to write given the correct one.
    pub fn apply(fault: Option<ChecksumFault>, correct: u16) -> u16 {
        match fault {
            None => correct,
            Some(ChecksumFault::Wrong) => correct ^ 0x00ff,
            Some(ChecksumFault::Value(v)) => v,
        }
    }
}

/// Faults to inject on emit; `Faults::default()` injects none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Break the IPv4 header checksum.
    pub ipv4_checksum: Option<ChecksumFault>,
    /// Break the TCP, UDP or ICMP checksum.
    pub transport_checksum: Option<ChecksumFault>,
    /// Write this IPv4 total length instead of the real one.
    pub ipv4_total_len: Option<u16>,
    /// Write this IPv6 payload length instead of the real one.
    pub ipv6_payload_len: Option<u16>,
    /// Write this TCP data offset (in 32-bit words, 4 bits) instead of the real one.
    pub tcp_data_offset: Option<u8>,
    /// Write these bytes as the TCP options area (zero-padded to a multiple of 4, at most
    /// 40 bytes) instead of encoding the segment's options.
    pub tcp_options_raw: Option<Vec<u8>>,
    /// Write this UDP length instead of the real one.
    pub udp_len: Option<u16>,
    /// Cut the emitted frame to this many bytes.
    pub truncate: Option<usize>,
}

impl Faults {
    /// Break the IPv4 header checksum.
    pub fn wrong_ipv4_checksum(mut self) -> Self {
        self.ipv4_checksum = Some(ChecksumFault::Wrong);
        self
    }

    /// Break the TCP, UDP or ICMP checksum.
    pub fn wrong_transport_checksum(mut self) -> Self {
        self.transport_checksum = Some(ChecksumFault::Wrong);
        self
    }

    /// Lie in the IPv4 total length.
    pub fn ipv4_total_len(mut self, len: u16) -> Self {
        self.ipv4_total_len = Some(len);
        self
    }

    /// Lie in the IPv6 payload length.
    pub fn ipv6_payload_len(mut self, len: u16) -> Self {
        self.ipv6_payload_len = Some(len);
        self
    }

    /// Lie in the TCP data offset (4 bits).
    pub fn tcp_data_offset(mut self, words: u8) -> Self {
        self.tcp_data_offset = Some(words & 0x0f);
        self
    }

    /// Send these raw TCP option bytes.
    pub fn tcp_options_raw(mut self, bytes: Vec<u8>) -> Self {
        self.tcp_options_raw = Some(bytes);
        self
    }

    /// Lie in the UDP length.
    pub fn udp_len(mut self, len: u16) -> Self {
        self.udp_len = Some(len);
        self
    }

    /// Cut the frame to `len` bytes.
    pub fn truncate(mut self, len: usize) -> Self {
        self.truncate = Some(len);
        self
    }
}

impl Frame {
    /// A frame carrying `network` from `src` to `dst`, without VLAN tags.
    pub fn new(src: MacAddr, dst: MacAddr, network: Network) -> Self {
        let ether_type = network.ether_type();
        Frame {
            ethernet: EthernetRepr {
                src,
                dst,
                ether_type,
            },
            vlans: Vec::new(),
            network,
            trailer: Vec::new(),
        }
    }

    /// An IPv4 frame (TTL 64, DF).
    pub fn ipv4(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        transport: Transport,
    ) -> Self {
        Frame::new(
            src_mac,
            dst_mac,
            Network::Ipv4(Ipv4Packet::new(src, dst, transport)),
        )
    }

    /// An IPv6 frame (hop limit 64).
    pub fn ipv6(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        transport: Transport,
    ) -> Self {
        Frame::new(
            src_mac,
            dst_mac,
            Network::Ipv6(Ipv6Packet::new(src, dst, transport)),
        )
    }

    /// A TCP segment over IPv4.
    pub fn tcp_v4(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: TcpSegment,
    ) -> Self {
        Frame::ipv4(src_mac, dst_mac, src, dst, Transport::Tcp(segment))
    }

    /// A TCP segment over IPv6.
    pub fn tcp_v6(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        segment: TcpSegment,
    ) -> Self {
        Frame::ipv6(src_mac, dst_mac, src, dst, Transport::Tcp(segment))
    }

    /// A UDP datagram over IPv4.
    pub fn udp_v4(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        datagram: UdpDatagram,
    ) -> Self {
        Frame::ipv4(src_mac, dst_mac, src, dst, Transport::Udp(datagram))
    }

    /// A UDP datagram over IPv6.
    pub fn udp_v6(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        datagram: UdpDatagram,
    ) -> Self {
        Frame::ipv6(src_mac, dst_mac, src, dst, Transport::Udp(datagram))
    }

    /// An ICMPv4 message.
    pub fn icmpv4(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        message: Icmpv4Message,
    ) -> Self {
        Frame::ipv4(src_mac, dst_mac, src, dst, Transport::Icmpv4(message))
    }

    /// An ICMPv6 message (hop limit 255, as neighbour discovery requires).
    pub fn icmpv6(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        message: Icmpv6Message,
    ) -> Self {
        let mut f = Frame::ipv6(src_mac, dst_mac, src, dst, Transport::Icmpv6(message));
        if let Network::Ipv6(p) = &mut f.network {
            p.hop_limit = 255;
        }
        f
    }

    /// A broadcast ARP request: who has `target_ip`? tell `sender_ip` at `sender_mac`.
    pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        Frame::new(
            sender_mac,
            MacAddr::BROADCAST,
            Network::Arp(ArpRepr::request(sender_mac, sender_ip, target_ip)),
        )
    }

    /// A unicast ARP reply: `sender_ip` is at `sender_mac`, sent to `target_mac`.
    pub fn arp_reply(
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target_mac: MacAddr,
        target_ip: Ipv4Addr,
    ) -> Self {
        Frame::new(
            sender_mac,
            target_mac,
            Network::Arp(ArpRepr::reply(sender_mac, sender_ip, target_mac, target_ip)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ErrorKind, Layer, ParseError, TcpFlags, TcpOption};

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn syn() -> Frame {
        let mut seg = TcpSegment::new(40000, 80, 1000, 0, TcpFlags::SYN);
        seg.options = vec![TcpOption::Mss(1460)];
        seg.payload = b"abcd".to_vec();
        Frame::tcp_v4(A, B, IP_A, IP_B, seg)
    }

    fn v6() -> Frame {
        Frame::udp_v6(
            A,
            B,
            "fe80::1".parse().unwrap(),
            "fe80::2".parse().unwrap(),
            UdpDatagram::new(1, 2, vec![1, 2, 3]),
        )
    }

    #[test]
    fn no_fault_is_plain_emit() {
        let f = syn();
        assert_eq!(f.emit_with(&Faults::default()), f.emit());
        let p = Frame::parse(&f.emit()).unwrap();
        assert_eq!(p.as_ipv4().map(|i| i.checksum_valid), Some(true));
        assert_eq!(p.as_tcp().and_then(|t| t.checksum_valid), Some(true));
    }

    #[test]
    fn wrong_ipv4_checksum() {
        let good = syn().emit();
        let bad = syn().emit_with(&Faults::default().wrong_ipv4_checksum());
        assert_eq!(good[25] ^ 0xff, bad[25]);
        assert_eq!(good[..25], bad[..25]);
        assert_eq!(good[26..], bad[26..]);
        let p = Frame::parse(&bad).unwrap();
        assert_eq!(p.as_ipv4().map(|i| i.checksum_valid), Some(false));
        assert_eq!(p.as_tcp().and_then(|t| t.checksum_valid), Some(true));
    }

    #[test]
    fn wrong_transport_checksums() {
        let faults = Faults::default().wrong_transport_checksum();
        let p = Frame::parse(&syn().emit_with(&faults)).unwrap();
        assert_eq!(p.as_tcp().and_then(|t| t.checksum_valid), Some(false));
        assert_eq!(p.as_ipv4().map(|i| i.checksum_valid), Some(true));
        let p = Frame::parse(&v6().emit_with(&faults)).unwrap();
        match p.transport() {
            Some(Transport::Udp(u)) => assert_eq!(u.checksum_valid, Some(false)),
            other => panic!("expected UDP, got {other:?}"),
        }
        let exact = Faults {
            transport_checksum: Some(ChecksumFault::Value(0x1234)),
            ..Faults::default()
        };
        let p = Frame::parse(&syn().emit_with(&exact)).unwrap();
        assert_eq!(p.as_tcp().map(|t| t.checksum), Some(0x1234));
        let ping = Frame::icmpv4(A, B, IP_A, IP_B, Icmpv4Message::echo_request(1, 1, vec![]));
        match Frame::parse(&ping.emit_with(&faults)).unwrap().transport() {
            Some(Transport::Icmpv4(m)) => assert!(!m.checksum_valid),
            other => panic!("expected ICMP, got {other:?}"),
        }
    }

    #[test]
    fn lying_ipv4_total_length() {
        let bytes = syn().emit_with(&Faults::default().ipv4_total_len(1000));
        assert_eq!(
            Frame::parse(&bytes),
            Err(ParseError::length(Layer::Ipv4, 14, 1000, bytes.len() - 14))
        );
        // Shorter than the packet: the TCP segment is cut, the rest becomes the trailer.
        let bytes = syn().emit_with(&Faults::default().ipv4_total_len(20 + 24 + 2));
        let p = Frame::parse(&bytes).unwrap();
        assert_eq!(p.as_tcp().map(|t| t.payload.len()), Some(2));
        assert_eq!(p.as_tcp().and_then(|t| t.checksum_valid), Some(false));
        assert_eq!(p.trailer.len(), 2);
        let bytes = syn().emit_with(&Faults::default().ipv4_total_len(10));
        assert!(matches!(
            Frame::parse(&bytes).unwrap_err().kind,
            ErrorKind::Content(_)
        ));
    }

    #[test]
    fn lying_ipv6_payload_length() {
        let bytes = v6().emit_with(&Faults::default().ipv6_payload_len(200));
        assert_eq!(
            Frame::parse(&bytes),
            Err(ParseError::length(Layer::Ipv6, 14, 240, 51))
        );
    }

    #[test]
    fn lying_tcp_data_offset() {
        let bytes = syn().emit_with(&Faults::default().tcp_data_offset(15));
        assert_eq!(bytes[14 + 20 + 12] >> 4, 15);
        assert_eq!(
            Frame::parse(&bytes),
            Err(ParseError::length(Layer::Tcp, 34, 60, 28))
        );
        let bytes = syn().emit_with(&Faults::default().tcp_data_offset(2));
        let e = Frame::parse(&bytes).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::Tcp, 34));
        assert!(matches!(e.kind, ErrorKind::Content(_)));
        // Claiming 6 words swallows the payload's first 4 bytes as options.
        let mut f = syn();
        if let Some(Transport::Tcp(t)) = f.transport_mut() {
            t.options.clear();
        }
        let p = Frame::parse(&f.emit_with(&Faults::default().tcp_data_offset(6))).unwrap();
        assert_eq!(p.as_tcp().map(|t| t.payload.len()), Some(0));
        assert_eq!(
            p.as_tcp().map(|t| t.options.clone()),
            Some(vec![TcpOption::Malformed(b"abcd".to_vec())])
        );
    }

    #[test]
    fn raw_tcp_options() {
        let bytes = syn().emit_with(&Faults::default().tcp_options_raw(vec![2, 4, 5]));
        assert_eq!(&bytes[54..58], &[2, 4, 5, 0]);
        let p = Frame::parse(&bytes).unwrap();
        let t = p.as_tcp().unwrap();
        assert_eq!(t.checksum_valid, Some(true));
        assert_eq!(t.options, vec![TcpOption::Mss(0x0500)]);
        let p =
            Frame::parse(&syn().emit_with(&Faults::default().tcp_options_raw(vec![3, 9, 1, 1])))
                .unwrap();
        assert_eq!(
            p.as_tcp().unwrap().options,
            vec![TcpOption::Malformed(vec![3, 9, 1, 1])]
        );
    }

    #[test]
    fn lying_udp_length() {
        let bytes = v6().emit_with(&Faults::default().udp_len(100));
        assert_eq!(
            Frame::parse(&bytes),
            Err(ParseError::length(Layer::Udp, 54, 100, 11))
        );
    }

    #[test]
    fn truncation() {
        let full = syn().emit();
        let bytes = syn().emit_with(&Faults::default().truncate(40));
        assert_eq!(bytes, full[..40]);
        assert_eq!(
            Frame::parse(&bytes),
            Err(ParseError::length(Layer::Ipv4, 14, full.len() - 14, 26))
        );
    }

    #[test]
    fn arp_constructors() {
        let req = Frame::arp_request(A, IP_A, IP_B);
        assert_eq!(req.ethernet.dst, MacAddr::BROADCAST);
        let bytes = req.emit();
        assert_eq!(bytes.len(), 42);
        assert_eq!(Frame::parse(&bytes), Ok(req));
        let rep = Frame::arp_reply(B, IP_B, A, IP_A);
        assert_eq!(Frame::parse(&rep.emit()), Ok(rep));
    }
}
