//! Route model unit tests: one small lab (lo, two links with one IPv4 and one IPv6 address
//! each), a route added, a lookup, the answer expected.

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn lab() -> RouteTable {
    RouteTable::new(
        RouteProfile::linux(),
        vec![
            Interface {
                index: 1,
                name: "lo".into(),
                loopback: true,
                addrs: vec![net("127.0.0.1/8"), net("::1/128")],
            },
            Interface {
                index: 2,
                name: "r0".into(),
                loopback: false,
                addrs: vec![net("10.200.0.1/24"), net("fd00:200:0::1/64")],
            },
            Interface {
                index: 3,
                name: "r1".into(),
                loopback: false,
                addrs: vec![net("10.200.1.1/24"), net("fd00:200:1::1/64")],
            },
        ],
    )
}

fn via(dst: &str, gw: &str, oif: u32, metric: Option<u32>) -> Route {
    Route {
        dst: net(dst),
        kind: RouteKind::Unicast {
            gateway: Some(ip(gw)),
            oif,
        },
        metric,
        prefsrc: None,
    }
}

fn typed(dst: &str, kind: RouteKind, metric: Option<u32>) -> Route {
    Route {
        dst: net(dst),
        kind,
        metric,
        prefsrc: None,
    }
}

fn unicast(oif: u32, gw: Option<&str>, src: &str) -> Result<RouteAnswer, RouteError> {
    Ok(RouteAnswer {
        kind: AnswerKind::Unicast,
        oif,
        gateway: gw.map(ip),
        src: Some(ip(src)),
    })
}

#[test]
fn connected_local_and_broadcast_routes_are_the_kernels() {
    let t = lab();
    assert_eq!(
        t.lookup(ip("10.200.0.9"), None),
        unicast(2, None, "10.200.0.1")
    );
    assert_eq!(
        t.lookup(ip("10.200.1.1"), None),
        Ok(RouteAnswer {
            kind: AnswerKind::Local,
            oif: 1,
            gateway: None,
            src: Some(ip("10.200.1.1")),
        })
    );
    assert_eq!(
        t.lookup(ip("10.200.1.255"), None),
        Ok(RouteAnswer {
            kind: AnswerKind::Broadcast,
            oif: 3,
            gateway: None,
            src: Some(ip("10.200.1.1")),
        })
    );
    assert_eq!(
        t.lookup(ip("fd00:200:1::7"), None),
        unicast(3, None, "fd00:200:1::1")
    );
    assert_eq!(
        t.lookup(ip("10.9.9.9"), None),
        Err(RouteError::NetUnreachable)
    );
    assert_eq!(
        t.lookup(ip("fd09::1"), None),
        Err(RouteError::NetUnreachable)
    );
}

#[test]
fn longest_prefix_wins_then_lowest_metric() {
    let mut t = lab();
    t.add(via("0.0.0.0/0", "10.200.0.2", 2, None)).unwrap();
    t.add(via("20.0.0.0/8", "10.200.1.2", 3, Some(10))).unwrap();
    t.add(via("20.0.0.0/8", "10.200.0.3", 2, Some(5))).unwrap();
    t.add(via("20.1.0.0/16", "10.200.1.3", 3, Some(50)))
        .unwrap();
    assert_eq!(
        t.lookup(ip("20.2.0.1"), None),
        unicast(2, Some("10.200.0.3"), "10.200.0.1")
    );
    // Nested: the /16 wins over a lower metric on the /8.
    assert_eq!(
        t.lookup(ip("20.1.255.255"), None),
        unicast(3, Some("10.200.1.3"), "10.200.1.1")
    );
    // Just outside the /8: the default route.
    assert_eq!(
        t.lookup(ip("21.0.0.0"), None),
        unicast(2, Some("10.200.0.2"), "10.200.0.1")
    );
    assert_eq!(
        t.lookup(ip("19.255.255.255"), None),
        unicast(2, Some("10.200.0.2"), "10.200.0.1")
    );
}

#[test]
fn route_types_map_to_errors() {
    let mut t = lab();
    t.add(typed("30.0.0.0/8", RouteKind::Blackhole, None))
        .unwrap();
    t.add(typed("30.1.0.0/16", RouteKind::Unreachable, None))
        .unwrap();
    t.add(typed("30.2.0.0/16", RouteKind::Prohibit, None))
        .unwrap();
    t.add(typed("30.3.0.0/16", RouteKind::Throw, None)).unwrap();
    t.add(typed("30.4.0.0/16", RouteKind::Local { oif: 2 }, None))
        .unwrap();
    assert_eq!(t.lookup(ip("30.9.0.1"), None), Err(RouteError::Blackhole));
    assert_eq!(
        t.lookup(ip("30.1.0.1"), None),
        Err(RouteError::HostUnreachable)
    );
    assert_eq!(t.lookup(ip("30.2.0.1"), None), Err(RouteError::Prohibited));
    assert_eq!(
        t.lookup(ip("30.3.0.1"), None),
        Err(RouteError::NetUnreachable)
    );
    assert_eq!(
        t.lookup(ip("30.4.0.1"), None),
        Ok(RouteAnswer {
            kind: AnswerKind::Local,
            oif: 1,
            gateway: None,
            src: Some(ip("30.4.0.1")),
        })
    );
}

#[test]
fn ipv6_metric_zero_is_the_user_default() {
    let mut t = lab();
    t.add(via("fd10::/32", "fd00:200::2", 2, Some(0))).unwrap();
    assert!(matches!(
        t.add(via("fd10::/32", "fd00:200:1::2", 3, None)),
        Err(AddError::Exists { .. })
    ));
    t.add(via("fd10::/32", "fd00:200:1::2", 3, Some(1023)))
        .unwrap();
    assert_eq!(
        t.lookup(ip("fd10::1"), None),
        unicast(3, Some("fd00:200:1::2"), "fd00:200:1::1")
    );
    // IPv4 keeps metric 0 apart from 1024.
    t.add(via("40.0.0.0/8", "10.200.0.2", 2, Some(0))).unwrap();
    t.add(via("40.0.0.0/8", "10.200.0.3", 2, Some(1024)))
        .unwrap();
}

#[test]
fn sources() {
    let mut t = lab();
    let mut r = via("50.0.0.0/8", "10.200.0.2", 2, None);
    r.prefsrc = Some(ip("10.200.1.1"));
    t.add(r).unwrap();
    assert_eq!(
        t.lookup(ip("50.0.0.1"), None),
        unicast(2, Some("10.200.0.2"), "10.200.1.1")
    );
    // A given local source is reported; a foreign one is refused (IPv4).
    assert_eq!(
        t.lookup(ip("50.0.0.1"), Some(ip("10.200.0.1"))),
        unicast(2, Some("10.200.0.2"), "10.200.0.1")
    );
    assert_eq!(
        t.lookup(ip("50.0.0.1"), Some(ip("10.1.1.1"))),
        Err(RouteError::NetUnreachable)
    );
    // IPv6: rule 5, the outgoing interface's address; a given source is not reported.
    t.add(via("fd50::/16", "fd00:200:1::2", 3, None)).unwrap();
    assert_eq!(
        t.lookup(ip("fd50::1"), Some(ip("fd00:200::1"))),
        unicast(3, Some("fd00:200:1::2"), "fd00:200:1::1")
    );
    // A local route (IPv6) from lo: rule 8, longest common prefix.
    let mut l = typed("fd00:200:1:8000::/49", RouteKind::Local { oif: 2 }, None);
    t.add(l).unwrap();
    assert_eq!(
        t.lookup(ip("fd00:200:1:8000::5"), None).map(|a| a.src),
        Ok(Some(ip("fd00:200:1::1")))
    );
    l.dst = net("fd61::/16");
    l.prefsrc = Some(ip("fd00:200::1"));
    t.add(l).unwrap();
    assert_eq!(
        t.lookup(ip("fd61::5"), None).map(|a| a.src),
        Ok(Some(ip("fd00:200::1")))
    );
}

#[test]
fn invalid_routes_are_refused_with_a_reason() {
    let mut t = lab();
    for r in [
        via("60.0.0.0/8", "10.200.9.2", 2, None),
        via("60.0.0.0/8", "10.200.0.1", 2, None),
        via("60.0.0.0/8", "10.200.1.2", 2, None),
        via("60.0.0.0/8", "10.200.0.2", 9, None),
        via("60.0.0.0/8", "fd00:200::2", 2, None),
    ] {
        let e = t.add(r).unwrap_err();
        assert!(matches!(e, AddError::Invalid { .. }), "{e}");
    }
    t.add(via("60.0.0.0/8", "10.200.0.2", 2, None)).unwrap();
    assert!(matches!(
        t.add(typed("60.0.0.0/8", RouteKind::Blackhole, Some(0))),
        Err(AddError::Exists { .. })
    ));
}

#[test]
fn out_of_scope_destinations() {
    let t = lab();
    for d in [
        "127.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "0.1.2.3",
        "fe80::1",
        "ff02::1",
        "::1",
    ] {
        assert_eq!(t.lookup(ip(d), None), Err(RouteError::OutOfScope), "{d}");
    }
}

#[test]
fn without_local_table_first_a_longer_main_prefix_wins() {
    let p = RouteProfile::linux().without(RouteDeviation::LocalTableFirst);
    let mut t = RouteTable::new(p.clone(), lab().interfaces().to_vec());
    t.add(typed("10.200.1.0/25", RouteKind::Blackhole, None))
        .unwrap();
    // 10.200.1.1 is local (/32 in the local table) and still wins: longer.
    assert_eq!(
        t.lookup(ip("10.200.1.1"), None).map(|a| a.kind),
        Ok(AnswerKind::Local)
    );
    assert_eq!(t.lookup(ip("10.200.1.2"), None), Err(RouteError::Blackhole));
    assert_eq!(p.deviations().count(), 2);
}
