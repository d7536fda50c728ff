//! `model_forward`: frames into a [`Router`] with routes of every type, and what RFC 1812
//! and RFC 792 say a decision must look like.

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::{Arbitrary, Unstructured};

use crate::fuzz::Outcome;
use crate::models::forward::{
    DEFAULT_TTL, Decision, DiscardReason, ForwardProfile, ICMP_ERROR_MAX, IcmpError, Router,
    RouterPort,
};
use crate::models::route::{Interface, Route, RouteKind, RouteProfile, RouteTable};
use crate::wire::{
    Frame, Icmpv4Message, MacAddr, Network, TcpFlags, TcpSegment, Transport, UdpDatagram,
};

const T: &str = "model_forward";

const MACS: [MacAddr; 2] = [
    MacAddr([2, 0, 0, 0, 0, 0x10]),
    MacAddr([2, 0, 0, 0, 0, 0x11]),
];
const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);
/// The router's own addresses and its subnets' broadcasts.
const LOCAL: [Ipv4Addr; 4] = [
    Ipv4Addr::new(10, 0, 1, 1),
    Ipv4Addr::new(10, 0, 2, 1),
    Ipv4Addr::new(10, 0, 1, 255),
    Ipv4Addr::new(10, 0, 2, 255),
];
const IPS: [Ipv4Addr; 10] = [
    Ipv4Addr::new(10, 0, 1, 2),
    Ipv4Addr::new(10, 0, 2, 2),
    Ipv4Addr::new(10, 0, 2, 7),
    Ipv4Addr::new(10, 9, 0, 1),
    Ipv4Addr::new(10, 66, 0, 1),
    Ipv4Addr::new(192, 0, 2, 1),
    LOCAL[0],
    LOCAL[1],
    LOCAL[2],
    Ipv4Addr::new(224, 0, 0, 5),
];
const PREFIXES: [&str; 6] = [
    "10.9.0.0/16",
    "10.66.0.0/16",
    "0.0.0.0/0",
    "192.0.2.0/24",
    "10.0.2.0/25",
    "10.9.0.1/32",
];

#[derive(Debug, Arbitrary)]
struct RouteSpec {
    prefix: u8,
    kind: u8,
    metric: u8,
}

#[derive(Debug, Arbitrary)]
struct FrameSpec {
    port: u8,
    /// 0: the router's MAC on the port, 1: broadcast, 2: another station.
    eth_dst: u8,
    src: u8,
    dst: u8,
    ttl: u8,
    tos: u8,
    /// 0 UDP, 1 TCP, 2 echo request, 3 an ICMP error, 4 another ICMP.
    proto: u8,
    icmp_type: u8,
    len: u16,
    fragment_offset: u16,
    more_fragments: bool,
    bad_checksum: bool,
}

#[derive(Debug, Arbitrary)]
enum Event {
    Frame(FrameSpec),
    Learn { port: u8, ip: u8, mac: u8 },
}

fn router(routes: &[RouteSpec]) -> Router {
    let iface = |index, name: &str, addr: &str| Interface {
        index,
        name: name.into(),
        loopback: index == 1,
        addrs: vec![addr.parse().expect("prefix")],
    };
    let mut table = RouteTable::new(
        RouteProfile::linux(),
        vec![
            iface(1, "lo", "127.0.0.1/8"),
            iface(2, "p0", "10.0.1.1/24"),
            iface(3, "p1", "10.0.2.1/24"),
        ],
    );
    for r in routes {
        let kind = match r.kind % 6 {
            0 => RouteKind::Unicast {
                gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 7))),
                oif: 3,
            },
            1 => RouteKind::Unicast {
                gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2))),
                oif: 2,
            },
            2 => RouteKind::Unreachable,
            3 => RouteKind::Prohibit,
            4 => RouteKind::Blackhole,
            _ => RouteKind::Throw,
        };
        // Refused routes (EEXIST) are simply not there.
        let _ = table.add(Route {
            dst: PREFIXES[usize::from(r.prefix) % PREFIXES.len()]
                .parse()
                .expect("prefix"),
            kind,
            metric: Some(u32::from(r.metric % 3)),
            prefsrc: None,
        });
    }
    let ports = MACS
        .iter()
        .enumerate()
        .map(|(i, mac)| RouterPort {
            ifindex: 2 + i as u32,
            mac: *mac,
        })
        .collect();
    Router::new(ForwardProfile::linux(), table, ports)
}

fn frame(spec: &FrameSpec) -> (usize, Vec<u8>) {
    let port = usize::from(spec.port % 2);
    let eth_dst = [MACS[port], MacAddr::BROADCAST, HOST][usize::from(spec.eth_dst % 3)];
    let src = IPS[usize::from(spec.src) % IPS.len()];
    let dst = IPS[usize::from(spec.dst) % IPS.len()];
    let payload = vec![0xa5; usize::from(spec.len % 700)];
    let transport = match spec.proto % 5 {
        0 => Transport::Udp(UdpDatagram::new(4000, 53, payload)),
        1 => {
            let mut s = TcpSegment::new(4000, 80, 1, 0, TcpFlags::SYN);
            s.payload = payload;
            Transport::Tcp(s)
        }
        2 => Transport::Icmpv4(Icmpv4Message::echo_request(7, 1, payload)),
        3 => {
            let mut quote = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
            quote.extend_from_slice(&dst.octets());
            quote.extend_from_slice(&src.octets());
            quote.extend_from_slice(&[0; 8]);
            let mut m = if spec.icmp_type.is_multiple_of(2) {
                Icmpv4Message::dest_unreachable(spec.icmp_type % 16, quote)
            } else {
                Icmpv4Message::time_exceeded(0, quote)
            };
            m.icmp_type = [3, 4, 5, 11, 12][usize::from(spec.icmp_type % 5)];
            Transport::Icmpv4(m)
        }
        _ => {
            let mut m = Icmpv4Message::echo_reply(7, 1, payload);
            m.icmp_type = [0, 8, 13, 14, 9, 10][usize::from(spec.icmp_type % 6)];
            Transport::Icmpv4(m)
        }
    };
    let mut f = Frame::ipv4(HOST, eth_dst, src, dst, transport);
    if let Network::Ipv4(p) = &mut f.network {
        p.ttl = spec.ttl % 4;
        if spec.ttl >= 4 {
            p.ttl = spec.ttl;
        }
        p.dscp = spec.tos >> 2;
        p.ecn = spec.tos & 3;
        p.identification = 0x1234;
        p.fragment_offset = spec.fragment_offset % 3;
        p.more_fragments = spec.more_fragments;
    }
    f.fill_computed();
    let mut bytes = f.emit();
    if spec.bad_checksum {
        bytes[14 + 10] ^= 0x40;
    }
    (port, bytes)
}

/// What a decision about `bytes`, received on `port`, must look like (RFC 1812 §5.2,
/// §4.3.2; RFC 792): the tests the module doc orders, the TTL rule, the forwarded packet
/// unchanged but for TTL and checksum, and the ICMP error's rules.
pub(crate) fn check_decision(
    router: &Router,
    port: usize,
    bytes: &[u8],
    decision: &Decision,
) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{decision:?}: {why}"));
    let Ok(frame) = Frame::parse(bytes) else {
        return match decision {
            Decision::OutOfScope(_) => Ok(()),
            _ => fail("a frame the parser refuses"),
        };
    };
    let Network::Ipv4(orig) = &frame.network else {
        return fail("not IPv4");
    };
    let ingress = MACS[port];
    let link_broadcast = frame.ethernet.dst == MacAddr::BROADCAST;
    let for_us = frame.ethernet.dst == ingress || link_broadcast;
    if !for_us {
        return match decision {
            Decision::Discard(DiscardReason::NotForUs) => Ok(()),
            _ => fail("the frame is for another station"),
        };
    }
    if !orig.checksum_valid {
        return match decision {
            Decision::Discard(DiscardReason::BadChecksum) => Ok(()),
            _ => fail("the header checksum is wrong"),
        };
    }
    if orig.dst.is_multicast() {
        return match decision {
            Decision::OutOfScope(_) => Ok(()),
            _ => fail("a multicast destination"),
        };
    }
    let local = LOCAL.contains(&orig.dst);
    if local != matches!(decision, Decision::Local) {
        return fail("Local exactly for the router's addresses and subnet broadcasts");
    }
    let is_icmp_error = matches!(&orig.transport,
        Transport::Icmpv4(m) if matches!(m.icmp_type, 3 | 4 | 5 | 11 | 12));
    match decision {
        Decision::Forward(e) => {
            if link_broadcast || orig.ttl <= 1 {
                return fail("forwarded a link-layer broadcast or a packet with TTL <= 1");
            }
            let mut want = orig.clone();
            want.ttl -= 1;
            want.checksum = want.computed_checksum();
            if e.packet != want {
                return fail("the forwarded packet differs from TTL minus one");
            }
            if e.src_mac != MACS[e.port] || e.dst_mac != router.neighbour(e.port, e.next_hop) {
                return fail("the MACs of the emission");
            }
        }
        Decision::Error { error, emission } => {
            if link_broadcast || is_icmp_error || orig.fragment_offset != 0 {
                return fail("an ICMP error about an ICMP error, a fragment or a broadcast");
            }
            if *error == IcmpError::TimeExceeded && orig.ttl > 1 {
                return fail("time exceeded with TTL > 1");
            }
            let p = &emission.packet;
            let Transport::Icmpv4(m) = &p.transport else {
                return fail("an error that is not ICMP");
            };
            let ip = &bytes[14..];
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
            let mut emitted = Vec::new();
            p.emit(&crate::wire::Faults::default(), &mut emitted);
            let tos = ((orig.dscp << 2) | orig.ecn) & 0x1e | 0xc0;
            let ok = p.dst == orig.src
                && LOCAL[..2].contains(&p.src)
                && p.ttl == DEFAULT_TTL
                && !p.dont_fragment
                && (p.dscp << 2 | p.ecn) == tos
                && (m.icmp_type, m.code) == error.type_code()
                && ip[..total].starts_with(&m.payload)
                && m.payload.len() == total.min(ICMP_ERROR_MAX - 28)
                && emitted.len() <= ICMP_ERROR_MAX
                && emission.src_mac == MACS[emission.port];
            if !ok {
                return fail("the ICMP error's fields (RFC 1812 §4.3.2, RFC 792)");
            }
        }
        Decision::Discard(DiscardReason::NoErrorAboutThis(e)) => {
            if !(link_broadcast || is_icmp_error || orig.fragment_offset != 0) {
                return fail("an error suppressed for a packet that deserves one");
            }
            if *e == IcmpError::TimeExceeded && orig.ttl > 1 {
                return fail("time exceeded with TTL > 1");
            }
        }
        Decision::Discard(DiscardReason::LinkBroadcast) if !link_broadcast => {
            return fail("not a link-layer broadcast");
        }
        Decision::Discard(DiscardReason::NotForUs | DiscardReason::BadChecksum) => {
            return fail("the frame is for us and its checksum is right");
        }
        _ => {}
    }
    Ok(())
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Decision>, String> {
    let n = usize::from(u8::arbitrary(u).map_err(|e| e.to_string())? % 8);
    let mut routes = Vec::new();
    for _ in 0..n {
        routes.push(RouteSpec::arbitrary(u).map_err(|e| e.to_string())?);
    }
    let mut r = router(&routes);
    let mut out = Vec::new();
    for ev in super::events::<Event>(u) {
        match ev {
            Event::Learn { port, ip, mac } => {
                let (port, ip) = (usize::from(port % 2), IPS[usize::from(ip) % IPS.len()]);
                let mac = MacAddr([2, 0, 0, 0, 1, mac % 4]);
                r.learn(port, ip, mac);
                if r.neighbour(port, ip) != Some(mac) {
                    return Err(format!("learned {ip} at {mac} on {port}, forgot it"));
                }
            }
            Event::Frame(spec) => {
                let (port, bytes) = frame(&spec);
                let d = r.receive(port, &bytes);
                check_decision(&r, port, &bytes, &d)?;
                if r.receive(port, &bytes) != d {
                    return Err(format!("{spec:?}: a second look decides otherwise"));
                }
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
