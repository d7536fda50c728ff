use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::models::route::{Interface, Route, RouteKind, RouteProfile};
use crate::wire::{Faults, Icmpv4Message, UdpDatagram};

const R0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const R1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

fn route(dst: &str, kind: RouteKind) -> Route {
    Route {
        dst: dst.parse().expect("prefix"),
        kind,
        metric: None,
        prefsrc: None,
    }
}

/// lo (1), port 0 = ifindex 2 (10.78.1.1/24), port 1 = ifindex 3 (10.78.2.1/24), and routes
/// of every type.
fn router() -> Router {
    router_with(ForwardProfile::linux(), &[])
}

/// [`router`] under `profile`, with `extra` routes.
fn router_with(profile: ForwardProfile, extra: &[Route]) -> Router {
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
            iface(2, "p0", "10.78.1.1/24"),
            iface(3, "p1", "10.78.2.1/24"),
        ],
    );
    for r in [
        route(
            "10.99.0.0/16",
            RouteKind::Unicast {
                gateway: Some(IpAddr::V4(ip("10.78.2.7"))),
                oif: 3,
            },
        ),
        route("10.66.0.0/16", RouteKind::Unreachable),
        route("10.67.0.0/16", RouteKind::Prohibit),
        route("10.68.0.0/16", RouteKind::Blackhole),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        table.add(r).expect("valid route");
    }
    let port = |ifindex, mac| RouterPort { ifindex, mac };
    Router::new(profile, table, vec![port(2, R0), port(3, R1)])
}

fn udp(src: &str, dst: &str, ttl: u8, len: usize) -> Frame {
    let mut f = Frame::udp_v4(
        HOST,
        R0,
        ip(src),
        ip(dst),
        UdpDatagram::new(4000, 5000, vec![0x5a; len]),
    );
    if let Network::Ipv4(p) = &mut f.network {
        p.ttl = ttl;
        p.identification = 0x1234;
    }
    f.fill_computed();
    f
}

#[test]
fn forwards_on_link_with_ttl_minus_one_and_learns_the_next_hop() {
    let mut r = router();
    let f = udp("10.78.1.2", "10.78.2.2", 64, 10);
    let Decision::Forward(e) = r.receive(0, &f.emit()) else {
        panic!("forwarded")
    };
    assert_eq!(
        (e.port, e.next_hop, e.src_mac, e.dst_mac),
        (1, ip("10.78.2.2"), R1, None)
    );
    assert_eq!(e.packet.ttl, 63);
    assert_eq!(e.packet.identification, 0x1234);
    assert_eq!(e.packet.transport, f.as_ipv4().expect("ipv4").transport);
    r.learn(1, ip("10.78.2.2"), HOST);
    let Decision::Forward(e) = r.receive(0, &f.emit()) else {
        panic!("forwarded")
    };
    assert_eq!(e.dst_mac, Some(HOST));
    // The emitted frame parses back to a valid checksum.
    let mut out = Frame::new(e.src_mac, HOST, Network::Ipv4(e.packet.clone()));
    out.fill_computed();
    let out = Frame::parse(&out.emit()).expect("parse");
    assert!(out.as_ipv4().expect("ipv4").checksum_valid);
}

#[test]
fn a_gateway_route_sends_to_the_gateway_with_the_destination_unchanged() {
    let Decision::Forward(e) = router().receive(0, &udp("10.78.1.2", "10.99.3.4", 9, 1).emit())
    else {
        panic!("forwarded")
    };
    assert_eq!((e.port, e.next_hop), (1, ip("10.78.2.7")));
    assert_eq!((e.packet.dst, e.packet.ttl), (ip("10.99.3.4"), 8));
}

#[test]
fn ttl_one_and_zero_bring_time_exceeded_quoting_the_packet_as_received() {
    for ttl in [0, 1] {
        let f = udp("10.78.1.2", "10.78.2.2", ttl, 10);
        let bytes = f.emit();
        let Decision::Error { error, emission } = router().receive(0, &bytes) else {
            panic!("error")
        };
        assert_eq!(error, IcmpError::TimeExceeded);
        assert_eq!((emission.port, emission.next_hop), (0, ip("10.78.1.2")));
        let p = &emission.packet;
        assert_eq!(
            (p.src, p.dst, p.ttl, p.dont_fragment),
            (ip("10.78.1.1"), ip("10.78.1.2"), 64, false)
        );
        assert_eq!((p.dscp << 2) | p.ecn, 0xc0);
        let Transport::Icmpv4(m) = &p.transport else {
            panic!("icmp")
        };
        assert_eq!((m.icmp_type, m.code), (11, 0));
        assert_eq!(
            m.payload,
            bytes[14..].to_vec(),
            "TTL {ttl} quoted as received"
        );
    }
}

#[test]
fn route_errors_come_before_the_ttl_test_and_map_to_their_codes() {
    let r = router();
    let cases = [
        ("192.0.2.9", Some(IcmpError::NetUnreachable)),
        ("10.66.1.1", Some(IcmpError::HostUnreachable)),
        ("10.67.1.1", Some(IcmpError::AdministrativelyProhibited)),
        ("10.68.1.1", None),
    ];
    for (dst, want) in cases {
        for ttl in [1, 64] {
            let d = r.receive(0, &udp("10.78.1.2", dst, ttl, 4).emit());
            match (want, d) {
                (Some(w), Decision::Error { error, .. }) => assert_eq!(error, w, "{dst} ttl {ttl}"),
                (None, Decision::Discard(DiscardReason::Blackhole)) => {}
                (w, d) => panic!("{dst} ttl {ttl}: expected {w:?}, got {d:?}"),
            }
        }
    }
    let (_, code) = IcmpError::AdministrativelyProhibited.type_code();
    assert_eq!(code, 13);
}

#[test]
fn the_quote_stops_at_576_bytes_and_tos_bits_are_kept_under_precedence_6() {
    let mut f = udp("10.78.1.2", "192.0.2.1", 64, 1200);
    if let Network::Ipv4(p) = &mut f.network {
        p.dscp = 0x3f;
        p.ecn = 3;
    }
    let bytes = f.emit();
    let Decision::Error { emission, .. } = router().receive(0, &bytes) else {
        panic!("error")
    };
    let p = &emission.packet;
    assert_eq!((p.dscp << 2) | p.ecn, 0xde, "0xff & 0x1e | 0xc0");
    let mut wire = Vec::new();
    p.emit(&Faults::default(), &mut wire);
    assert_eq!(wire.len(), ICMP_ERROR_MAX);
    let Transport::Icmpv4(m) = &p.transport else {
        panic!("icmp")
    };
    assert_eq!(m.payload, bytes[14..14 + 548].to_vec());
}

#[test]
fn local_not_for_us_bad_checksum_and_errors_about_errors() {
    let r = router();
    for dst in ["10.78.2.1", "10.78.1.1", "10.78.2.255"] {
        assert_eq!(
            r.receive(0, &udp("10.78.1.2", dst, 1, 4).emit()),
            Decision::Local,
            "{dst}"
        );
    }
    let mut bcast = udp("10.78.1.2", "10.78.2.2", 64, 4);
    bcast.ethernet.dst = MacAddr::BROADCAST;
    assert_eq!(
        r.receive(0, &bcast.emit()),
        Decision::Discard(DiscardReason::LinkBroadcast)
    );
    let mut bcast = udp("10.78.1.2", "192.0.2.1", 64, 4);
    bcast.ethernet.dst = MacAddr::BROADCAST;
    assert_eq!(
        r.receive(0, &bcast.emit()),
        Decision::Discard(DiscardReason::NoErrorAboutThis(IcmpError::NetUnreachable))
    );
    let mut other = udp("10.78.1.2", "10.78.2.2", 64, 4);
    other.ethernet.dst = MacAddr([0x02, 9, 9, 9, 9, 9]);
    assert_eq!(
        r.receive(0, &other.emit()),
        Decision::Discard(DiscardReason::NotForUs)
    );
    let bad =
        udp("10.78.1.2", "10.78.2.2", 64, 4).emit_with(&Faults::default().wrong_ipv4_checksum());
    assert_eq!(
        r.receive(0, &bad),
        Decision::Discard(DiscardReason::BadChecksum)
    );
    let quoted = udp("10.78.2.2", "10.78.1.2", 64, 4).emit()[14..].to_vec();
    let mut err = Frame::icmpv4(
        HOST,
        R0,
        ip("10.78.1.2"),
        ip("10.78.2.2"),
        Icmpv4Message::dest_unreachable(3, quoted),
    );
    if let Network::Ipv4(p) = &mut err.network {
        p.ttl = 1;
    }
    assert_eq!(
        r.receive(0, &err.emit()),
        Decision::Discard(DiscardReason::NoErrorAboutThis(IcmpError::TimeExceeded))
    );
}

#[test]
fn differences_name_the_field() {
    use crate::models::diff::packet_differences;
    // As observed: off the wire, with the checksums it carried.
    let f = Frame::parse(&udp("10.78.1.2", "10.78.2.2", 64, 4).emit()).expect("parses");
    let e = f.as_ipv4().expect("ipv4").clone();
    let mut o = e.clone();
    o.ttl = 64;
    let mut e2 = e.clone();
    e2.ttl = 63;
    let d = packet_differences(&e2, &o, true);
    assert_eq!(d, vec!["ip.ttl: expected 63, observed 64".to_string()]);
    assert!(packet_differences(&e, &e, true).is_empty());
}

/// RFC 1812 §4.3.2.4 against Linux ([`ForwardDeviation::ErrorSourceFromRouteBack`]): when
/// the route back to the sender prefers the router's address on the *other* port, Linux
/// sends the error from that address; the RFC profile from the address of the port the
/// error leaves by. Where the route back has no such preference, both agree.
#[test]
fn the_error_source_follows_the_route_back_under_linux_and_the_port_under_the_rfc() {
    let back = Route {
        prefsrc: Some(IpAddr::V4(ip("10.78.2.1"))),
        ..route(
            "10.78.1.128/25",
            RouteKind::Unicast {
                gateway: None,
                oif: 2,
            },
        )
    };
    let linux = router_with(ForwardProfile::linux(), &[back]);
    let rfc = router_with(ForwardProfile::rfc(), &[back]);
    let source = |r: &Router, from: &str| match r.receive(0, &udp(from, "10.78.2.2", 1, 8).emit()) {
        Decision::Error {
            error: IcmpError::TimeExceeded,
            emission,
        } => {
            assert_eq!(emission.port, 0, "the error leaves by the sender's port");
            emission.packet.src
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(source(&linux, "10.78.1.200"), ip("10.78.2.1"));
    assert_eq!(source(&rfc, "10.78.1.200"), ip("10.78.1.1"));
    assert_eq!(source(&linux, "10.78.1.2"), ip("10.78.1.1"));
    assert_eq!(source(&rfc, "10.78.1.2"), ip("10.78.1.1"));
    // Forwarding itself does not depend on the profile.
    assert_eq!(
        linux.receive(0, &udp("10.78.1.200", "10.78.2.2", 64, 8).emit()),
        rfc.receive(0, &udp("10.78.1.200", "10.78.2.2", 64, 8).emit())
    );
}
