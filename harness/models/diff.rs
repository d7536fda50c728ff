//! How an observed IPv4 packet differs from the one a model expects, in the one vocabulary
//! of every report: one line per field, `field: expected X, observed Y`, the field named
//! dotted and layer first (`ip.ttl`, `udp.destination_port`, `icmp.type`,
//! `quoted.ip.source` for the packet an ICMP error quotes), as
//! [`crate::engine::expect::field`] writes the differences of a frame. The forwarding and
//! NAT checks compare through [`packet_differences`].
//!
//! Every field is compared on its own (addresses, TTL, TOS, flags, fragment offset,
//! options, protocol; the transport's ports, sequence numbers, flags, window, options,
//! ICMP type, code and rest of header; payloads byte for byte), the identification when
//! the model predicts it. A checksum must be the correct one for the packet observed: its
//! expected value follows from the fields compared one by one, so a wrong field is
//! reported once, not again as a wrong checksum; a wrong, missing (UDP zero) or unchecked
//! checksum that is not the correct one is reported with the value it should have had.

use std::fmt::Display;
use std::net::Ipv4Addr;

use crate::wire::{Faults, Icmpv4Message, Ipv4Packet, TcpSegment, Transport, UdpDatagram};

/// Notes `name: expected X, observed Y` in `d` when the two differ.
fn field<T: PartialEq + Display>(d: &mut Vec<String>, name: &str, expected: T, observed: T) {
    if expected != observed {
        d.push(format!("{name}: expected {expected}, observed {observed}"));
    }
}

/// `name: expected N bytes, observed M; first difference at byte K (...)` when the two
/// byte strings differ.
fn bytes(d: &mut Vec<String>, name: &str, e: &[u8], o: &[u8]) {
    if e == o {
        return;
    }
    let at = e
        .iter()
        .zip(o)
        .position(|(a, b)| a != b)
        .unwrap_or(e.len().min(o.len()));
    d.push(format!(
        "{name}: expected {} bytes, observed {}; first difference at byte {at} \
         (expected {:02x?}, observed {:02x?})",
        e.len(),
        o.len(),
        e.get(at..(at + 8).min(e.len())).unwrap_or_default(),
        o.get(at..(at + 8).min(o.len())).unwrap_or_default(),
    ));
}

/// A checksum line when `observed` is not `correct` (called only when the parser did not
/// find the observed checksum valid).
fn checksum(d: &mut Vec<String>, name: &str, correct: u16, observed: u16) {
    field(
        d,
        name,
        format!("{correct:#06x}"),
        format!("{observed:#06x}"),
    );
}

/// Field-by-field differences between the packet a model expects and the one observed
/// (`identification` compared only when `with_id`: a packet the router originates carries
/// an identification of its own); empty when they agree.
pub fn packet_differences(
    expected: &Ipv4Packet,
    observed: &Ipv4Packet,
    with_id: bool,
) -> Vec<String> {
    let mut d = Vec::new();
    // The checksums the observed packet should carry, for its own contents.
    let mut correct = observed.clone();
    correct.fill_computed();
    field(&mut d, "ip.source", expected.src, observed.src);
    field(&mut d, "ip.destination", expected.dst, observed.dst);
    field(&mut d, "ip.ttl", expected.ttl, observed.ttl);
    let tos = |p: &Ipv4Packet| format!("{:#04x}", (p.dscp << 2) | p.ecn);
    field(&mut d, "ip.tos", tos(expected), tos(observed));
    field(
        &mut d,
        "ip.df",
        expected.dont_fragment,
        observed.dont_fragment,
    );
    field(
        &mut d,
        "ip.mf",
        expected.more_fragments,
        observed.more_fragments,
    );
    field(
        &mut d,
        "ip.fragment_offset",
        expected.fragment_offset,
        observed.fragment_offset,
    );
    if with_id {
        field(
            &mut d,
            "ip.identification",
            format!("{:#06x}", expected.identification),
            format!("{:#06x}", observed.identification),
        );
    }
    field(
        &mut d,
        "ip.options",
        format!("{:02x?}", expected.options),
        format!("{:02x?}", observed.options),
    );
    if !observed.checksum_valid {
        checksum(&mut d, "ip.checksum", correct.checksum, observed.checksum);
    }
    let before = d.len();
    match (&expected.transport, &observed.transport, &correct.transport) {
        (Transport::Udp(e), Transport::Udp(o), Transport::Udp(c)) => udp(&mut d, e, o, c),
        (Transport::Tcp(e), Transport::Tcp(o), Transport::Tcp(c)) => tcp(&mut d, e, o, c),
        (Transport::Icmpv4(e), Transport::Icmpv4(o), Transport::Icmpv4(c)) => {
            icmp(&mut d, e, o, c);
        }
        (e, o, _) => field(&mut d, "ip.protocol", e.protocol(), o.protocol()),
    }
    // Whatever the lines above do not name (a field of a transport they do not break down,
    // the variant of a payload of the same protocol): the transport's bytes, both emitted
    // for the observed addresses (an address that differs is named above already).
    if d.len() == before {
        let pseudo = observed.pseudo();
        bytes(
            &mut d,
            "ip.payload",
            &expected.transport.emit(&pseudo, &Faults::default()),
            &observed.transport.emit(&pseudo, &Faults::default()),
        );
    }
    d
}

fn udp(d: &mut Vec<String>, e: &UdpDatagram, o: &UdpDatagram, c: &UdpDatagram) {
    field(d, "udp.source_port", e.src_port, o.src_port);
    field(d, "udp.destination_port", e.dst_port, o.dst_port);
    bytes(d, "udp.payload", &e.payload, &o.payload);
    if o.checksum_valid != Some(true) {
        checksum(d, "udp.checksum", c.checksum, o.checksum);
    }
}

fn tcp(d: &mut Vec<String>, e: &TcpSegment, o: &TcpSegment, c: &TcpSegment) {
    field(d, "tcp.source_port", e.src_port, o.src_port);
    field(d, "tcp.destination_port", e.dst_port, o.dst_port);
    field(d, "tcp.seq", e.seq, o.seq);
    field(d, "tcp.ack", e.ack, o.ack);
    field(d, "tcp.flags", e.flags, o.flags);
    field(d, "tcp.window", e.window, o.window);
    field(d, "tcp.urgent_ptr", e.urgent_ptr, o.urgent_ptr);
    field(
        d,
        "tcp.options",
        format!("{:?}", e.options),
        format!("{:?}", o.options),
    );
    bytes(d, "tcp.payload", &e.payload, &o.payload);
    if o.checksum_valid != Some(true) {
        checksum(d, "tcp.checksum", c.checksum, o.checksum);
    }
}

fn icmp(d: &mut Vec<String>, e: &Icmpv4Message, o: &Icmpv4Message, c: &Icmpv4Message) {
    field(d, "icmp.type", e.icmp_type, o.icmp_type);
    field(d, "icmp.code", e.code, o.code);
    field(
        d,
        "icmp.rest",
        format!("{:02x?}", e.rest_of_header),
        format!("{:02x?}", o.rest_of_header),
    );
    if !o.checksum_valid {
        checksum(d, "icmp.checksum", c.checksum, o.checksum);
    }
    if e.payload != o.payload {
        // An error's quote, field by field where the fields differ; else its bytes.
        let before = d.len();
        if matches!(e.icmp_type, 3 | 11 | 12) {
            for ((name, a), (_, b)) in quote_fields(&e.payload)
                .iter()
                .zip(quote_fields(&o.payload).iter())
            {
                field(d, name, a, b);
            }
        }
        if d.len() == before {
            bytes(d, "icmp.payload", &e.payload, &o.payload);
        }
    }
}

/// The fields of a quoted packet (an ICMP error's body), named, for a readable difference.
fn quote_fields(q: &[u8]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Some(first) = q.first() else {
        return out;
    };
    let ihl = usize::from(first & 0x0f) * 4;
    let word = |o: usize| {
        q.get(o..o + 2)
            .map(|b| format!("{}", u16::from_be_bytes([b[0], b[1]])))
            .unwrap_or_else(|| "(cut)".into())
    };
    let addr = |o: usize| {
        q.get(o..o + 4)
            .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
            .unwrap_or_else(|| "(cut)".into())
    };
    out.push(("quoted.ip.source", addr(12)));
    out.push(("quoted.ip.destination", addr(16)));
    out.push(("quoted.ip.checksum", word(10)));
    match q.get(9) {
        Some(17) => {
            out.push(("quoted.udp.source_port", word(ihl)));
            out.push(("quoted.udp.destination_port", word(ihl + 2)));
            out.push(("quoted.udp.checksum", word(ihl + 6)));
        }
        Some(6) => {
            out.push(("quoted.tcp.source_port", word(ihl)));
            out.push(("quoted.tcp.destination_port", word(ihl + 2)));
            out.push(("quoted.tcp.checksum", word(ihl + 16)));
        }
        Some(1) => {
            out.push(("quoted.icmp.checksum", word(ihl + 2)));
            out.push(("quoted.icmp.identifier", word(ihl + 4)));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, MacAddr, Network};

    fn udp_packet(ttl: u8) -> Ipv4Packet {
        let mut f = Frame::udp_v4(
            MacAddr::ZERO,
            MacAddr::ZERO,
            Ipv4Addr::new(10, 78, 1, 2),
            Ipv4Addr::new(10, 78, 2, 2),
            UdpDatagram::new(40000, 9, vec![0x6e; 8]),
        );
        if let Network::Ipv4(p) = &mut f.network {
            p.ttl = ttl;
        }
        let bytes = f.emit();
        Frame::parse(&bytes)
            .expect("parses")
            .as_ipv4()
            .expect("ipv4")
            .clone()
    }

    #[test]
    fn one_line_per_field_in_the_dotted_vocabulary() {
        let e = udp_packet(63);
        let o = udp_packet(64);
        assert_eq!(
            packet_differences(&e, &o, true),
            vec!["ip.ttl: expected 63, observed 64".to_string()]
        );
        assert!(packet_differences(&e, &e, true).is_empty());
    }

    #[test]
    fn identification_only_when_predicted() {
        let e = udp_packet(64);
        let mut o = e.clone();
        o.identification = 0x1234;
        o.fill_computed();
        assert!(packet_differences(&e, &o, false).is_empty());
        assert_eq!(
            packet_differences(&e, &o, true),
            vec!["ip.identification: expected 0x0000, observed 0x1234".to_string()]
        );
    }

    #[test]
    fn a_wrong_checksum_is_named_with_the_right_one() {
        let e = udp_packet(64);
        let mut o = e.clone();
        o.checksum ^= 0xffff;
        o.checksum_valid = false;
        let d = packet_differences(&e, &o, true);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with(&format!("ip.checksum: expected {:#06x}, ", e.checksum)),
            "{d:?}"
        );
        let Transport::Udp(u) = &mut o.transport else {
            unreachable!()
        };
        (u.checksum, u.checksum_valid) = (0, None);
        let d = packet_differences(&e, &o, true);
        assert!(
            d.iter()
                .any(|l| l.starts_with("udp.checksum: expected 0x") && l.ends_with("0x0000")),
            "{d:?}"
        );
    }

    #[test]
    fn transports_and_quotes_are_named_by_layer() {
        let e = udp_packet(64);
        let mut o = e.clone();
        let Transport::Udp(u) = &mut o.transport else {
            unreachable!()
        };
        u.dst_port = 10;
        o.fill_computed();
        assert_eq!(
            packet_differences(&e, &o, true),
            vec!["udp.destination_port: expected 9, observed 10".to_string()]
        );
        let quote = |p: &Ipv4Packet| {
            let f = Frame::new(MacAddr::ZERO, MacAddr::ZERO, Network::Ipv4(p.clone())).emit();
            f[14..].to_vec()
        };
        let error = |q: Vec<u8>| {
            let mut p = Ipv4Packet::new(
                Ipv4Addr::new(10, 78, 2, 2),
                Ipv4Addr::new(10, 78, 1, 2),
                Transport::Icmpv4(Icmpv4Message::dest_unreachable(3, q)),
            );
            p.fill_computed();
            p
        };
        let d = packet_differences(&error(quote(&e)), &error(quote(&o)), true);
        assert_eq!(
            d,
            vec![
                "quoted.udp.destination_port: expected 9, observed 10".to_string(),
                format!(
                    "quoted.udp.checksum: expected {}, observed {}",
                    match &e.transport {
                        Transport::Udp(u) => u.checksum,
                        _ => 0,
                    },
                    match &o.transport {
                        Transport::Udp(u) => u.checksum,
                        _ => 0,
                    }
                ),
            ]
        );
    }

    #[test]
    fn another_protocol_is_one_line() {
        let e = udp_packet(64);
        let mut o = e.clone();
        o.transport = Transport::Icmpv4(Icmpv4Message::echo_request(1, 1, vec![]));
        o.fill_computed();
        assert_eq!(
            packet_differences(&e, &o, true),
            vec!["ip.protocol: expected 17, observed 1".to_string()]
        );
    }
}
