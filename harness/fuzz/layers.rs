//! Parser targets for the link, network and transport layers: the harness's parsers
//! (`crate::wire`) against etherparse and smoltcp::wire, and parse → emit → parse.
//!
//! Each target takes the bytes of one layer (an Ethernet frame, an ARP packet, an IPv4
//! packet, ...), so the fuzzer spends its mutations where that parser reads. The harness's
//! parsers use etherparse for header layouts, so the etherparse side checks how the harness
//! builds its representation on top (lengths, options, extension chains); smoltcp::wire is
//! an independent implementation. Checksums are compared against `smoltcp::wire::checksum`,
//! which stays on under `cfg(fuzzing)` (the packet-level `verify_checksum` does not).
//!
//! Every comparison that may legitimately differ names its [`Difference`].

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire as sm;

use super::{Allowed, Difference, FuzzTarget, Kind, Outcome, ensure};
use crate::wire::{
    Faults, Icmpv4Message, Layer, Network, ParseError, Pseudo, TcpFlags, TcpOption, Transport, arp,
    ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp,
};

pub(super) static TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "etherparse_bare",
        kind: Kind::Bare,
        about: "etherparse's SlicedPacket::from_ethernet alone (the speed baseline)",
        run: etherparse_bare,
    },
    FuzzTarget {
        name: "ethernet",
        kind: Kind::Parser,
        about: "Ethernet II and 802.1Q/802.1ad tags vs etherparse and smoltcp; round trip",
        run: ethernet,
    },
    FuzzTarget {
        name: "arp",
        kind: Kind::Parser,
        about: "ARP vs etherparse and smoltcp; round trip",
        run: arp,
    },
    FuzzTarget {
        name: "ipv4",
        kind: Kind::Parser,
        about: "IPv4 with options vs etherparse and smoltcp, header checksum; round trip",
        run: ipv4,
    },
    FuzzTarget {
        name: "ipv6",
        kind: Kind::Parser,
        about: "IPv6 with extension headers vs etherparse and smoltcp; round trip",
        run: ipv6,
    },
    FuzzTarget {
        name: "icmpv4",
        kind: Kind::Parser,
        about: "ICMPv4 vs etherparse and smoltcp, checksum; round trip",
        run: icmpv4,
    },
    FuzzTarget {
        name: "icmpv6",
        kind: Kind::Parser,
        about: "ICMPv6 vs etherparse and smoltcp, checksum with the pseudo-header; round trip",
        run: icmpv6,
    },
    FuzzTarget {
        name: "tcp",
        kind: Kind::Parser,
        about: "TCP with options vs etherparse and smoltcp, checksum; round trip",
        run: tcp,
    },
    FuzzTarget {
        name: "udp",
        kind: Kind::Parser,
        about: "UDP vs etherparse and smoltcp, checksum; round trip",
        run: udp,
    },
    FuzzTarget {
        name: "receive",
        kind: Kind::ReceivePath,
        about: "a frame a stack sent, through parse, trace, compare and report: never panics",
        run: super::receive::receive,
    },
];

/// The speed baseline: etherparse's strict slicer, nothing else.
fn etherparse_bare(data: &[u8]) -> Outcome {
    let _ = std::hint::black_box(etherparse::SlicedPacket::from_ethernet(data));
    Ok(Allowed::NONE)
}

/// The addresses of the pseudo-header the transport targets use (TEST-NET-1, documentation
/// IPv6 prefix).
const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

fn pseudo4() -> Pseudo {
    Pseudo::V4 {
        src: SRC4.octets(),
        dst: DST4.octets(),
    }
}

fn pseudo6() -> Pseudo {
    Pseudo::V6 {
        src: SRC6.octets(),
        dst: DST6.octets(),
    }
}

/// Whether an upper-layer checksum over `bytes` (with the pseudo-header of `protocol` from
/// SRC to DST, or none) verifies, computed by smoltcp.
fn smoltcp_sum_ok(pseudo: &Pseudo, protocol: u8, bytes: &[u8]) -> bool {
    use sm::checksum::{combine, data, pseudo_header_v4, pseudo_header_v6};
    let len = bytes.len() as u32;
    let header = match pseudo {
        Pseudo::None => 0,
        Pseudo::V4 { src, dst } => {
            pseudo_header_v4(&(*src).into(), &(*dst).into(), protocol.into(), len)
        }
        Pseudo::V6 { src, dst } => {
            pseudo_header_v6(&(*src).into(), &(*dst).into(), protocol.into(), len)
        }
    };
    combine(&[header, data(bytes)]) == 0xffff
}

/// Round trip of an IPv4 or IPv6 packet: fill the computed fields, emit, parse again.
fn round_trip(target: &'static str, network: Network) -> Outcome {
    let mut out = Vec::with_capacity(64);
    let (again, filled) = match network {
        Network::Ipv4(mut p) => {
            p.fill_computed();
            p.emit(&Faults::default(), &mut out);
            (
                ipv4::parse(&out, 0).map(|(q, _)| Network::Ipv4(q)),
                Network::Ipv4(p),
            )
        }
        Network::Ipv6(mut p) => {
            p.fill_computed();
            p.emit(&Faults::default(), &mut out);
            (
                ipv6::parse(&out, 0).map(|(q, _)| Network::Ipv6(q)),
                Network::Ipv6(p),
            )
        }
        _ => return Ok(Allowed::NONE),
    };
    ensure!(
        again.as_ref() == Ok(&filled),
        target,
        "parse(emit(x)) = {again:?}\n        x  = {filled:?}"
    );
    Ok(Allowed::NONE)
}

/// Round trip of a transport message under `pseudo`: emit (with a correct checksum), parse
/// again, and compare with the original once its checksum is the one emit computed.
fn transport_round_trip(target: &'static str, mut t: Transport, pseudo: &Pseudo) -> Outcome {
    let bytes = t.emit(pseudo, &Faults::default());
    let again = Transport::parse(t.protocol(), &bytes, 0, pseudo, false);
    // The checksum emit wrote, and its validity as parse saw it (it must verify).
    let verified = match (&mut t, &again) {
        (Transport::Tcp(a), Ok(Transport::Tcp(b))) => {
            (a.checksum, a.checksum_valid) = (b.checksum, Some(true));
            b.checksum_valid == Some(true)
        }
        (Transport::Udp(a), Ok(Transport::Udp(b))) => {
            (a.checksum, a.checksum_valid) = (b.checksum, b.checksum_valid);
            b.checksum_valid != Some(false)
        }
        (Transport::Icmpv4(a), Ok(Transport::Icmpv4(b))) => {
            (a.checksum, a.checksum_valid) = (b.checksum, true);
            b.checksum_valid
        }
        (Transport::Icmpv6(a), Ok(Transport::Icmpv6(b))) => {
            (a.checksum, a.checksum_valid) = (b.checksum, true);
            b.checksum_valid
        }
        _ => false,
    };
    ensure!(
        verified && again.as_ref() == Ok(&t),
        target,
        "parse(emit(x)) = {again:?}\n        x  = {t:?}"
    );
    Ok(Allowed::NONE)
}

/// Both parsers accept, or both refuse.
fn same_acceptance<R: std::fmt::Debug>(
    target: &'static str,
    smoltcp_accepts: bool,
    ours: &Result<R, ParseError>,
) -> Result<(), super::Finding> {
    ensure!(
        ours.is_ok() == smoltcp_accepts,
        target,
        "smoltcp accepts: {smoltcp_accepts}, ours: {ours:?}"
    );
    Ok(())
}

/// smoltcp's checksum and ours give the same verdict.
fn same_checksum_verdict<V: PartialEq + std::fmt::Debug>(
    target: &'static str,
    smoltcp: V,
    ours: V,
) -> Result<(), super::Finding> {
    ensure!(
        smoltcp == ours,
        target,
        "checksum valid: smoltcp says {smoltcp:?}, ours {ours:?}"
    );
    Ok(())
}

/// The layer of a parse error, or `None` for success.
fn failed_at<T>(r: &Result<T, ParseError>) -> Option<Layer> {
    r.as_ref().err().map(|e| e.layer)
}

// --- Ethernet and VLAN tags ---------------------------------------------------------

fn ethernet(data: &[u8]) -> Outcome {
    const T: &str = "ethernet";
    let mut allowed = Allowed::NONE;
    let ours = ethernet::parse(data);
    let theirs = etherparse::LaxSlicedPacket::from_ethernet(data);
    let smol = sm::EthernetFrame::new_checked(data);
    ensure!(
        ours.is_ok() == smol.is_ok() || failed_at(&ours) == Some(Layer::Vlan),
        T,
        "smoltcp accepts the Ethernet header: {}, ours: {ours:?}",
        smol.is_ok()
    );
    let Ok((eth, vlans, next, offset)) = ours else {
        ensure!(
            theirs.is_err() || failed_at(&ours) == Some(Layer::Vlan),
            T,
            "etherparse accepts what we reject: {ours:?}"
        );
        return Ok(allowed);
    };
    let Ok(theirs) = theirs else {
        return Err(super::Finding::new(
            T,
            format!("etherparse rejects {data:02x?}"),
        ));
    };
    if let Ok(f) = smol {
        ensure!(
            f.src_addr().0 == eth.src.0
                && f.dst_addr().0 == eth.dst.0
                && u16::from(f.ethertype()) == eth.ether_type,
            T,
            "smoltcp reads {} > {} type {:04x}, ours {eth}",
            f.src_addr(),
            f.dst_addr(),
            u16::from(f.ethertype())
        );
    }
    // etherparse's link extensions: VLAN tags (and MACsec, which we leave as payload).
    let mut i = 0;
    for ext in &theirs.link_exts {
        match ext {
            etherparse::LaxLinkExtSlice::Vlan(v) => {
                let Some(ours) = vlans.get(i) else {
                    return Err(super::Finding::new(
                        T,
                        format!("etherparse reads VLAN tag {i} we do not have: {v:?}"),
                    ));
                };
                ensure!(
                    v.vlan_identifier().value() == ours.vid
                        && v.priority_code_point().value() == ours.pcp
                        && v.drop_eligible_indicator() == ours.dei
                        && v.ether_type().0 == ours.ether_type,
                    T,
                    "VLAN tag {i}: etherparse {v:?}, ours {ours:?}"
                );
                i += 1;
            }
            etherparse::LaxLinkExtSlice::Macsec(_) => {
                allowed = allowed.with(Difference::MacsecNotParsed);
                break;
            }
        }
    }
    if i < vlans.len() {
        let stopped = theirs.link_exts.len() == etherparse::LaxSlicedPacket::LINK_EXTS_CAP
            || theirs.stop_err.is_some();
        ensure!(
            stopped || allowed.contains(Difference::MacsecNotParsed),
            T,
            "we read {} VLAN tags, etherparse {i}",
            vlans.len()
        );
        allowed = allowed.with(Difference::EtherparseLinkExtLimit);
    }
    // Round trip: header and tags re-emitted before the same payload.
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&eth.dst.0);
    out.extend_from_slice(&eth.src.0);
    out.extend_from_slice(&eth.ether_type.to_be_bytes());
    for tag in &vlans {
        tag.emit(tag.ether_type, &mut out);
    }
    ensure!(
        out.len() == offset && data.get(..offset) == Some(out.as_slice()),
        T,
        "emit(parse(x)) = {out:02x?}, x = {:02x?}",
        data.get(..offset)
    );
    ensure!(
        next == vlans.last().map_or(eth.ether_type, |t| t.ether_type),
        T,
        "next ether type {next:04x} is not the last one read"
    );
    Ok(allowed)
}

// --- ARP ----------------------------------------------------------------------------

fn arp(data: &[u8]) -> Outcome {
    const T: &str = "arp";
    let mut allowed = Allowed::NONE;
    let ours = arp::parse(data, 0);
    let smol = sm::ArpPacket::new_checked(data);
    ensure!(
        ours.is_ok() == smol.is_ok(),
        T,
        "smoltcp check_len {:?}, ours {:?}",
        smol.as_ref().err(),
        ours.as_ref().err()
    );
    let Ok((parsed, len)) = ours else {
        return Ok(allowed);
    };
    let network = match parsed {
        arp::Parsed::Eth(a) => {
            let smol_repr = smol.as_ref().ok().map(sm::ArpRepr::parse);
            match smol_repr {
                Some(Ok(sm::ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_hardware_addr,
                    target_protocol_addr,
                })) => {
                    ensure!(
                        u16::from(operation) == u16::from(a.operation)
                            && source_hardware_addr.0 == a.sender_mac.0
                            && source_protocol_addr == a.sender_ip
                            && target_hardware_addr.0 == a.target_mac.0
                            && target_protocol_addr == a.target_ip,
                        T,
                        "smoltcp reads {smol_repr:?}, ours {a:?}"
                    );
                }
                _ => {
                    ensure!(
                        (a.hw_type, a.proto_type) != (1, 0x0800),
                        T,
                        "smoltcp rejects an Ethernet/IPv4 ARP packet we read as {a:?}"
                    );
                    allowed = allowed.with(Difference::ArpSmoltcpEthernetIpv4Only);
                }
            }
            Network::Arp(a)
        }
        arp::Parsed::Raw(a) => Network::ArpRaw(a),
    };
    let mut out = Vec::with_capacity(len);
    match &network {
        Network::Arp(a) => a.emit(&mut out),
        Network::ArpRaw(a) => a.emit(&mut out),
        _ => {}
    }
    ensure!(
        data.get(..len) == Some(out.as_slice()),
        T,
        "emit(parse(x)) = {out:02x?}, x = {:02x?}",
        data.get(..len)
    );
    Ok(allowed)
}

// --- IPv4 ---------------------------------------------------------------------------

fn ipv4(data: &[u8]) -> Outcome {
    const T: &str = "ipv4";
    let mut allowed = Allowed::NONE;
    let ours = ipv4::parse(data, 0);
    let smol = sm::Ipv4Packet::new_checked(data);
    let smol_ok = smol.as_ref().is_ok_and(|p| p.version() == 4);
    let ours_ok = failed_at(&ours) != Some(Layer::Ipv4);
    ensure!(
        ours_ok == smol_ok,
        T,
        "smoltcp accepts the IPv4 header: {smol_ok}, ours: {:?}",
        ours.as_ref().err()
    );
    let Ok((packet, total)) = ours else {
        return Ok(allowed);
    };
    let Ok(p) = smol else {
        return Ok(allowed);
    };
    let header_len = usize::from(p.header_len());
    ensure!(
        p.src_addr() == packet.src
            && p.dst_addr() == packet.dst
            && p.hop_limit() == packet.ttl
            && u8::from(p.next_header()) == packet.transport.protocol()
            && p.ident() == packet.identification
            && p.dont_frag() == packet.dont_fragment
            && p.more_frags() == packet.more_fragments
            && p.frag_offset() == packet.fragment_offset * 8
            && p.dscp() == packet.dscp
            && p.ecn() == packet.ecn
            && usize::from(p.total_len()) == total
            && data.get(20..header_len) == Some(packet.options.as_slice()),
        T,
        "smoltcp reads {p}, ours {packet:?}"
    );
    let sum_ok = data
        .get(..header_len)
        .is_some_and(|h| smoltcp_sum_ok(&Pseudo::None, 0, h));
    same_checksum_verdict(T, sum_ok, packet.checksum_valid)?;
    if sm::Ipv4Repr::parse(&p, &ChecksumCapabilities::ignored()).is_err() {
        ensure!(
            packet.more_fragments || packet.fragment_offset != 0,
            T,
            "smoltcp's Ipv4Repr rejects an unfragmented packet we read as {packet:?}"
        );
        allowed = allowed.with(Difference::Ipv4SmoltcpNoFragments);
    }
    Ok(allowed.union(round_trip(T, Network::Ipv4(packet))?))
}

// --- IPv6 ---------------------------------------------------------------------------

fn ipv6(data: &[u8]) -> Outcome {
    const T: &str = "ipv6";
    let mut allowed = Allowed::NONE;
    let ours = ipv6::parse(data, 0);
    let smol = sm::Ipv6Packet::new_checked(data);
    let smol_ok = smol.as_ref().is_ok_and(|p| p.version() == 6);
    let ours_ok = failed_at(&ours) != Some(Layer::Ipv6);
    ensure!(
        ours_ok == smol_ok,
        T,
        "smoltcp accepts the IPv6 header: {smol_ok}, ours: {:?}",
        ours.as_ref().err()
    );
    // The extension chain, against etherparse's slicer.
    let theirs = etherparse::Ipv6Slice::from_slice(data);
    if failed_at(&ours) == Some(Layer::Ipv6Ext) && theirs.is_ok() {
        // etherparse takes payload length 0 as a jumbogram: the rest of the slice.
        let jumbo = data.get(4..6) == Some(&[0, 0][..]);
        ensure!(
            jumbo,
            T,
            "etherparse reads the extension headers we reject: {:?}",
            ours.as_ref().err()
        );
        allowed = allowed.with(Difference::Ipv6Jumbogram);
    }
    let Ok((packet, total)) = ours else {
        return Ok(allowed);
    };
    if let Ok(p) = smol {
        ensure!(
            p.src_addr() == packet.src
                && p.dst_addr() == packet.dst
                && p.hop_limit() == packet.hop_limit
                && p.traffic_class() == packet.traffic_class
                && p.flow_label() == packet.flow_label
                && u8::from(p.next_header())
                    == packet
                        .extensions
                        .first()
                        .map_or(packet.transport.protocol(), |e| e.protocol)
                && p.total_len() == total,
            T,
            "smoltcp reads {p}, ours {packet:?}"
        );
    }
    match theirs {
        Ok(s) => {
            // Both read the same chain: etherparse and the harness take the same protocol
            // numbers as extensions, and a late hop-by-hop makes etherparse fail instead.
            let chain: Vec<_> = s.extensions().clone().into_iter().collect();
            ensure!(
                chain.len() == packet.extensions.len(),
                T,
                "etherparse reads {} extension headers, we read {}: {chain:?} vs {:?}",
                chain.len(),
                packet.extensions.len(),
                packet.extensions
            );
            for (i, (e, ext)) in chain.iter().zip(&packet.extensions).enumerate() {
                use etherparse::Ipv6ExtensionSlice as X;
                let (protocol, bytes) = match e {
                    X::HopByHop(h) => (0, h.slice()),
                    X::Routing(h) => (43, h.slice()),
                    X::Fragment(h) => (44, h.slice()),
                    X::DestinationOptions(h) => (60, h.slice()),
                    X::Authentication(h) => (51, h.slice()),
                };
                ensure!(
                    protocol == ext.protocol && bytes.get(2..) == Some(ext.data.as_slice()),
                    T,
                    "extension {i}: etherparse {e:?}, ours {ext:?}"
                );
            }
        }
        Err(e) => {
            // etherparse refuses a hop-by-hop header after the first place (RFC 8200 §4.1).
            let late_hop_by_hop = packet.extensions.iter().skip(1).any(|x| x.protocol == 0);
            ensure!(
                late_hop_by_hop,
                T,
                "etherparse rejects ({e}) what we read as {packet:?}"
            );
            allowed = allowed.with(Difference::Ipv6HopByHopNotFirst);
        }
    }
    Ok(allowed.union(round_trip(T, Network::Ipv6(packet))?))
}

// --- ICMP ---------------------------------------------------------------------------

fn icmpv4(data: &[u8]) -> Outcome {
    const T: &str = "icmpv4";
    let mut allowed = Allowed::NONE;
    let ours = icmpv4::parse(data, 0);
    let smol = sm::Icmpv4Packet::new_checked(data);
    let timestamp = matches!(data, [13 | 14, 0, ..]);
    if ours.is_err() && smol.is_ok() && timestamp && data.len() != 20 {
        // A timestamp (reply) that is not its 20 bytes.
        allowed = allowed.with(Difference::Icmpv4TimestampLength);
    } else {
        same_acceptance(T, smol.is_ok(), &ours)?;
    }
    let Ok(message) = ours else {
        return Ok(allowed);
    };
    if let Ok(p) = smol {
        ensure!(
            u8::from(p.msg_type()) == message.icmp_type
                && p.msg_code() == message.code
                && p.checksum() == message.checksum
                && data.get(4..8) == Some(&message.rest_of_header[..])
                && data.get(Icmpv4Message::HEADER_LEN..) == Some(message.payload.as_slice()),
            T,
            "smoltcp reads {p:?}, ours {message:?}"
        );
    }
    let sum_ok = smoltcp_sum_ok(&Pseudo::None, 1, data);
    same_checksum_verdict(T, sum_ok, message.checksum_valid)?;
    Ok(allowed.union(transport_round_trip(
        T,
        Transport::Icmpv4(message),
        &Pseudo::None,
    )?))
}

fn icmpv6(data: &[u8]) -> Outcome {
    const T: &str = "icmpv6";
    let mut allowed = Allowed::NONE;
    let ours = icmpv6::parse(data, 0, &pseudo6());
    let smol = sm::Icmpv6Packet::new_checked(data);
    // smoltcp refuses the types it does not know and wants the fixed part of those it knows
    // (both readable once our parser has accepted the 8-byte header).
    let refused_by_type = ours.is_ok() && {
        let p = sm::Icmpv6Packet::new_unchecked(data);
        // RPL control (155) is unknown to a smoltcp built without proto-rpl, as here.
        matches!(
            p.msg_type(),
            sm::Icmpv6Message::Unknown(_) | sm::Icmpv6Message::RplControl
        ) || p.header_len() > data.len()
    };
    if ours.is_ok() && smol.is_err() && refused_by_type {
        allowed = allowed.with(Difference::Icmpv6SmoltcpFixedPart);
    } else {
        same_acceptance(T, smol.is_ok(), &ours)?;
    }
    let Ok(message) = ours else {
        return Ok(allowed);
    };
    if let Ok(p) = smol {
        ensure!(
            u8::from(p.msg_type()) == message.icmp_type
                && p.msg_code() == message.code
                && p.checksum() == message.checksum
                && data.get(4..8) == Some(&message.rest_of_header[..]),
            T,
            "smoltcp reads {p:?}, ours {message:?}"
        );
    }
    let sum_ok = smoltcp_sum_ok(&pseudo6(), 58, data);
    same_checksum_verdict(T, sum_ok, message.checksum_valid)?;
    Ok(allowed.union(transport_round_trip(
        T,
        Transport::Icmpv6(message),
        &pseudo6(),
    )?))
}

// --- TCP ----------------------------------------------------------------------------

/// smoltcp's reading of an options area: the options up to the first it cannot read, and
/// whether it stopped on an error.
fn smoltcp_options(mut bytes: &[u8]) -> (Vec<sm::TcpOption<'_>>, bool) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match sm::TcpOption::parse(bytes) {
            Ok((rest, option)) => {
                out.push(option);
                if option == sm::TcpOption::EndOfList {
                    break;
                }
                bytes = rest;
            }
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

/// Compares one option read by both; `Err` with a reason when they differ.
fn same_option(
    ours: &TcpOption,
    theirs: &sm::TcpOption<'_>,
    allowed: &mut Allowed,
) -> Result<(), ()> {
    use sm::TcpOption as S;
    let same = match (ours, *theirs) {
        (TcpOption::Eol, S::EndOfList) | (TcpOption::Nop, S::NoOperation) => true,
        (TcpOption::Mss(a), S::MaxSegmentSize(b)) => *a == b,
        (TcpOption::WindowScale(a), S::WindowScale(b)) => *a == b,
        (TcpOption::SackPermitted, S::SackPermitted) => true,
        (TcpOption::Timestamps { val, ecr }, S::TimeStamp { tsval, tsecr }) => {
            (*val, *ecr) == (tsval, tsecr)
        }
        (TcpOption::Sack(blocks), S::SackRange(ranges)) => {
            let theirs: Vec<(u32, u32)> = ranges.iter().flatten().copied().collect();
            if blocks.len() > 3 {
                *allowed = allowed.with(Difference::TcpSmoltcpSackThreeBlocks);
            }
            blocks.iter().take(3).copied().eq(theirs)
        }
        (TcpOption::Unknown { kind, data }, S::Unknown { kind: k, data: d }) => {
            *kind == k && data.as_slice() == d
        }
        (TcpOption::Malformed(bytes), S::Unknown { kind: 8, data }) => {
            // A timestamps option of the wrong length.
            *allowed = allowed.with(Difference::TcpTimestampsLength);
            bytes.first() == Some(&8) && bytes.get(2..).is_some_and(|b| b.starts_with(data))
        }
        _ => false,
    };
    if same { Ok(()) } else { Err(()) }
}

fn tcp(data: &[u8]) -> Outcome {
    const T: &str = "tcp";
    let mut allowed = Allowed::NONE;
    let ours = tcp::parse(data, 0, &pseudo4());
    let smol = sm::TcpPacket::new_checked(data);
    same_acceptance(T, smol.is_ok(), &ours)?;
    let (Ok(segment), Ok(p)) = (ours, smol) else {
        return Ok(allowed);
    };
    let flags = TcpFlags(data.get(13).copied().unwrap_or(0));
    ensure!(
        p.src_port() == segment.src_port
            && p.dst_port() == segment.dst_port
            && p.seq_number().0 as u32 == segment.seq
            && p.ack_number().0 as u32 == segment.ack
            && p.window_len() == segment.window
            && p.urgent_at() == segment.urgent_ptr
            && p.checksum() == segment.checksum
            && flags == segment.flags
            && p.payload() == segment.payload.as_slice(),
        T,
        "smoltcp reads {p}, ours {segment}"
    );
    // Options, one by one, as far as smoltcp reads them.
    let (theirs, stopped) = smoltcp_options(p.options());
    let mut ours_iter = segment.options.iter();
    for (i, t) in theirs.iter().enumerate() {
        let Some(o) = ours_iter.next() else {
            return Err(super::Finding::new(
                T,
                format!("smoltcp reads option {i} {t:?} we do not have"),
            ));
        };
        if same_option(o, t, &mut allowed).is_err() {
            return Err(super::Finding::new(
                T,
                format!("option {i}: smoltcp {t:?}, ours {o}"),
            ));
        }
        if matches!(o, TcpOption::Malformed(_)) {
            break;
        }
    }
    if stopped {
        ensure!(
            segment
                .options
                .iter()
                .any(|o| matches!(o, TcpOption::Malformed(_))),
            T,
            "smoltcp cannot read the options {:02x?}, we read {:?}",
            p.options(),
            segment.options
        );
    }
    let sum_ok = smoltcp_sum_ok(&pseudo4(), 6, data);
    same_checksum_verdict(T, Some(sum_ok), segment.checksum_valid)?;
    // smoltcp's Repr is a receiver's view: it refuses what a host would drop.
    let repr = sm::TcpRepr::parse(
        &p,
        &SRC4.into(),
        &DST4.into(),
        &ChecksumCapabilities::ignored(),
    );
    match repr {
        Ok(r) => {
            if let Some(ws) = r.window_scale {
                // Like smoltcp, the last window scale option counts.
                let ours = segment.options.iter().rev().find_map(|o| match o {
                    TcpOption::WindowScale(w) => Some(*w),
                    _ => None,
                });
                // Past a timestamps option of the wrong length only smoltcp reads on.
                let read_past = allowed.contains(Difference::TcpTimestampsLength);
                if ours != Some(ws) && !read_past {
                    ensure!(
                        ours.is_some_and(|w| w > 14 && ws == 14),
                        T,
                        "window scale: smoltcp {ws}, ours {ours:?}"
                    );
                    allowed = allowed.with(Difference::TcpSmoltcpClampsWindowScale);
                }
            }
        }
        Err(_) => {
            let control = [TcpFlags::SYN, TcpFlags::FIN, TcpFlags::RST]
                .iter()
                .filter(|f| segment.flags.contains(**f))
                .count();
            if segment.src_port == 0 || segment.dst_port == 0 {
                allowed = allowed.with(Difference::SmoltcpRejectsPortZero);
            } else if control > 1 {
                allowed = allowed.with(Difference::TcpSmoltcpRejectsFlagCombination);
            } else {
                ensure!(
                    stopped,
                    T,
                    "smoltcp's TcpRepr rejects a segment we read as {segment}"
                );
                allowed = allowed.with(Difference::TcpSmoltcpRejectsMalformedOptions);
            }
        }
    }
    Ok(allowed.union(transport_round_trip(
        T,
        Transport::Tcp(segment),
        &pseudo4(),
    )?))
}

// --- UDP ----------------------------------------------------------------------------

fn udp(data: &[u8]) -> Outcome {
    const T: &str = "udp";
    let mut allowed = Allowed::NONE;
    let ours = udp::parse(data, 0, &pseudo4());
    let smol = sm::UdpPacket::new_checked(data);
    same_acceptance(T, smol.is_ok(), &ours)?;
    let (Ok(datagram), Ok(p)) = (ours, smol) else {
        return Ok(allowed);
    };
    ensure!(
        p.src_port() == datagram.src_port
            && p.dst_port() == datagram.dst_port
            && p.checksum() == datagram.checksum
            && p.payload() == datagram.payload.as_slice(),
        T,
        "smoltcp reads {p}, ours {datagram}"
    );
    let len = usize::from(p.len());
    let sum = match datagram.checksum {
        0 => None,
        _ => Some(
            data.get(..len)
                .is_some_and(|d| smoltcp_sum_ok(&pseudo4(), 17, d)),
        ),
    };
    same_checksum_verdict(T, sum, datagram.checksum_valid)?;
    if sm::UdpRepr::parse(
        &p,
        &SRC4.into(),
        &DST4.into(),
        &ChecksumCapabilities::ignored(),
    )
    .is_err()
    {
        ensure!(
            datagram.dst_port == 0,
            T,
            "smoltcp's UdpRepr rejects a datagram we read as {datagram}"
        );
        allowed = allowed.with(Difference::SmoltcpRejectsPortZero);
    }
    Ok(allowed.union(transport_round_trip(
        T,
        Transport::Udp(datagram),
        &pseudo4(),
    )?))
}
