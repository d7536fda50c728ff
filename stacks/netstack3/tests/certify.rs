//! The netstack3 target: a small, fast certification on a fixed seed that asserts exact
//! verdicts (what passes, what fails and with which difference, what Netstack3 cannot do),
//! and the negative control of the panic guard. Run it with
//! `cargo test -p netconform-netstack3 --ignore-rust-version`; no namespace and no
//! privilege are needed (everything runs in-process on Netstack3's fake clock).

use netconform::dut::{CallOutcome, Dut, DutError, Family, Link, SocketCall, SocketId, Sockets};
use netconform::engine::runner::{Quiet, run_checks, run_one};
use netconform::engine::{CheckReport, CheckSpec, Verdict};
use netconform::models::profile::ProfileName;
use netconform_netstack3::{Netstack3Host, build_for, netstack3_config_for};

fn spec(id: &str) -> CheckSpec {
    netconform::suites::catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn netstack3(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    build_for(&spec.needs)
}

fn run(id: &str) -> CheckReport {
    run_one(&spec(id), &netstack3, ProfileName::Rfc)
}

fn show(r: &CheckReport) -> String {
    format!("{}: {:?}\n{}", r.id, r.verdict, r.trace.render(&r.names))
}

fn differences(r: &CheckReport) -> Vec<String> {
    match &r.verdict {
        Verdict::Fail { differences, .. } => differences.clone(),
        _ => panic!("expected FAIL, got {}", show(r)),
    }
}

/// The subset CI runs, with the verdict each check must get on the fixed seed.
#[test]
fn fixed_seed_subset_gets_exact_verdicts() {
    let ids = [
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.closed-port.syn",
        "tcp.timer.syn-retransmission",
        "tcp.timer.user-timeout",
        "tcp.timer.synack-retransmission",
        "tcp.timer.data-retransmission",
        "tcp.matrix.v4.closed",
        "tcp.matrix.v4.established",
        "arp.unicast-poll",
        "arp.unsolicited-reply",
        "route.lookup.fixed-table",
        "switch.ageing",
    ];
    let checks: Vec<CheckSpec> = ids.iter().map(|id| spec(id)).collect();
    let summary = run_checks(
        "netstack3",
        &checks,
        &netstack3,
        2,
        ProfileName::Rfc,
        &Quiet,
    );
    let by_id = |id: &str| {
        summary
            .checks
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no report for {id}"))
    };
    for id in [
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.closed-port.syn",
        "tcp.timer.syn-retransmission",
        "tcp.timer.user-timeout",
        // Against the declared SYN-ACK retries (5) and the declared NUD (profiles/netstack3.toml).
        "tcp.timer.synack-retransmission",
        "arp.unicast-poll",
    ] {
        let r = by_id(id);
        assert_eq!(r.verdict, Verdict::Pass, "{}", show(r));
    }
    let r = by_id("arp.unicast-poll");
    let trace = r.trace.render(&r.names);
    assert!(
        trace.contains("ran against netstack3-core 0.1.0's fixed ARP behaviour"),
        "{trace}"
    );
    // The unicast poll after the declared 5 s in DELAY, to the cached MAC.
    assert!(
        trace.contains(" 5320.000 < ARP who-has p0 tell dut"),
        "{trace}"
    );
    // RFC 826: a reply to the stack adds its sender; Netstack3 discards a confirmation of
    // no entry (RFC 4861 §7.2.5).
    let d = differences(by_id("arp.unsolicited-reply"));
    assert!(
        d.iter()
            .any(|d| d.contains("expected REACHABLE") && d.contains("observed no entry")),
        "{d:?}"
    );
    // The routes it can hold agree but for the directed broadcast of an on-link prefix.
    let d = differences(by_id("route.lookup.fixed-table"));
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].starts_with("route get 198.51.100.255: expected Unicast")
            && d[0].contains("observed Broadcast"),
        "{d:?}"
    );
    // Netstack3's RTO floor is 200 ms (Linux's), where RFC 6298 (2.4) rounds up to 1 s.
    let d = differences(by_id("tcp.timer.data-retransmission"));
    assert!(
        d.iter()
            .any(|d| d.contains("expected at 1000 ms") && d.contains("observed at 200 ms")),
        "{d:?}"
    );
    // A SYN+FIN to a closed port draws no RST (RFC 9293 §3.10.7.1).
    let d = differences(by_id("tcp.matrix.v4.closed"));
    assert_eq!(d[0], "4 of 96 cells disagree with the Rfc profile", "{d:?}");
    assert!(
        d.iter().skip(1).take(4).all(|d| d.contains("SynFin")),
        "{d:?}"
    );
    // An in-window SYN in ESTABLISHED draws a RST, not RFC 5961's challenge ACK.
    let d = differences(by_id("tcp.matrix.v4.established"));
    assert_eq!(
        d[0], "21 of 96 cells disagree with the Rfc profile",
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.contains("Syn seq RcvNxt:") && d.contains("flags expected ., observed R")),
        "{d:?}"
    );
    let r = by_id("switch.ageing");
    assert!(
        matches!(r.verdict, Verdict::Unsupported { .. }),
        "{}",
        show(r)
    );
}

/// The same check twice gives the same trace: the clock is virtual and the seed fixed.
#[test]
fn traces_are_deterministic() {
    let a = run("tcp.passive-open.active-close");
    let b = run("tcp.passive-open.active-close");
    assert_eq!(a.trace.render(&a.names), b.trace.render(&b.names));
}

/// The negative control of the panic guard: a real assertion inside netstack3-tcp
/// (`do_send` on a socket that is not connected) kills the target with the message, every
/// later call says the same, and dropping it does not take the process down.
#[test]
fn a_panic_inside_netstack3_is_caught() {
    let mut host = Netstack3Host::new(netstack3_config_for(&spec("tcp.closed-port.syn").needs))
        .expect("a stack");
    let out = host.with_netstack3(|ctx| {
        use netstack3_core::testutil::CtxPairExt as _;
        let mut api = ctx.core_api().tcp::<net_types::ip::Ipv4>();
        let id = api.create(Default::default());
        api.do_send(&id);
    });
    let what = match out {
        Err(DutError::Gone { what }) => what,
        other => panic!("expected the target gone, got {other:?}"),
    };
    assert!(what.starts_with("netstack3 panicked: "), "{what}");
    let again = host.send_frame(&[0u8; 60]);
    assert!(
        matches!(&again, Err(DutError::Gone { what: w }) if *w == what),
        "{again:?}"
    );
    let call = host.call(&SocketCall::Socket {
        sock: SocketId(1),
        family: Family::Ipv4,
    });
    assert!(matches!(call, Err(DutError::Gone { .. })), "{call:?}");
    drop(host);
}

/// A check whose DUT dies mid-run gets ERROR with Netstack3's message; the run goes on.
#[test]
fn a_dead_stack_gives_the_check_an_error() {
    fn dying(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
        let mut host = Netstack3Host::new(netstack3_config_for(&spec.needs))?;
        let _ = host.with_netstack3(|_| panic!("injected for the test"));
        Ok(Box::new(host))
    }
    let checks = vec![
        spec("tcp.passive-open.active-close"),
        spec("tcp.closed-port.syn"),
    ];
    let summary = run_checks("netstack3", &checks, &dying, 1, ProfileName::Rfc, &Quiet);
    assert_eq!(summary.checks.len(), 2);
    for r in &summary.checks {
        assert!(
            matches!(&r.verdict, Verdict::Error { reason } if reason.contains("netstack3 panicked: injected for the test")),
            "{}",
            show(r)
        );
    }
}

/// Calls mean what they mean on Linux: a connect to a closed port is refused (the
/// harness answers the SYN with a RST), and a second socket on a taken id is refused.
#[test]
fn socket_calls_report_netstack3_errors() {
    let mut host = Netstack3Host::new(netstack3_config_for(&spec("tcp.closed-port.syn").needs))
        .expect("a stack");
    let s = SocketId(1);
    assert!(matches!(
        host.call(&SocketCall::Socket {
            sock: s,
            family: Family::Ipv4
        }),
        Ok(CallOutcome::Ok)
    ));
    assert!(matches!(
        host.call(&SocketCall::Socket {
            sock: s,
            family: Family::Ipv4
        }),
        Err(DutError::SocketExists(_))
    ));
    let out = host.call(&SocketCall::WaitConnected {
        sock: s,
        timeout_ms: 10,
    });
    assert!(matches!(out, Ok(CallOutcome::Errno { .. })), "{out:?}");
}

/// The tables read Netstack3's own state: a route lookup answers through its route
/// resolution (on-link, local through the loopback, through a gateway once a route is
/// set, none before), the neighbour table follows its neighbour events, and a route type
/// it does not have is unsupported.
#[test]
fn tables_answer_from_netstack3() {
    use netconform::dut::{Control, StateAnswer, StateQuery, Tables};
    use netconform::models::route::{Route, RouteError, RouteKind};
    use netconform::sandbox::NudState;
    use netconform::wire::{Frame, Icmpv4Message};
    let mut host = Netstack3Host::new(netstack3_config_for(&spec("tcp.closed-port.syn").needs))
        .expect("a stack");
    let e = host.endpoints().clone();
    let (stack, peer) = (e.stack_ipv4.unwrap().0, e.peer_ipv4.unwrap());
    let lookup = |host: &mut Netstack3Host, dst: &str| {
        host.query(&StateQuery::RouteGet(dst.parse().unwrap()))
            .unwrap()
    };
    match lookup(&mut host, &peer.to_string()) {
        StateAnswer::Route { lookup, dev } => {
            assert_eq!((lookup.kind.as_str(), lookup.gateway), ("Unicast", None));
            assert_eq!(lookup.src, Some(stack.into()));
            assert_eq!(dev.as_deref(), Some("ns3eth0"));
        }
        other => panic!("{other:?}"),
    }
    match lookup(&mut host, &stack.to_string()) {
        StateAnswer::Route { lookup, dev } => {
            assert_eq!(lookup.kind, "Local");
            assert_eq!(dev.as_deref(), Some("lo"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        lookup(&mut host, "198.51.100.1"),
        StateAnswer::NoRoute {
            failure: RouteError::NetUnreachable,
            ..
        }
    ));
    host.control(&Control::Route {
        dst: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        via: peer,
    })
    .unwrap();
    match lookup(&mut host, "198.51.100.1") {
        StateAnswer::Route { lookup, .. } => assert_eq!(lookup.gateway, Some(peer.into())),
        other => panic!("{other:?}"),
    }
    let unreachable = Route {
        dst: "203.0.113.0/24".parse().unwrap(),
        kind: RouteKind::Unreachable,
        metric: None,
        prefsrc: None,
    };
    assert!(matches!(
        host.control(&Control::AddRoute(unreachable)),
        Err(DutError::NotSupported { .. })
    ));
    // A ping from the peer: Netstack3 learns the peer (an ARP request first).
    let ping = Frame::icmpv4(
        e.harness_mac,
        e.stack_mac,
        peer,
        stack,
        Icmpv4Message::echo_request(1, 1, b"x".to_vec()),
    );
    host.send_frame(&ping.emit()).unwrap();
    let StateAnswer::Neighbours(table) = host.query(&StateQuery::Neighbours).unwrap() else {
        panic!("neighbours")
    };
    let entry = table
        .iter()
        .find(|n| n.dst == std::net::IpAddr::V4(peer))
        .unwrap_or_else(|| panic!("the peer in {table:?}"));
    assert_eq!(entry.state, NudState::Incomplete, "{table:?}");
    host.control(&Control::FlushNeighbours).unwrap();
    let StateAnswer::Neighbours(table) = host.query(&StateQuery::Neighbours).unwrap() else {
        panic!("neighbours")
    };
    assert!(table.is_empty(), "{table:?}");
}

/// A wrong declaration fails on the wire: Netstack3's delay before probing is not 3 s,
/// its SYN-ACK retries are not 4. The negative controls of profiles/netstack3.toml.
#[test]
fn a_wrong_declaration_fails_on_the_wire() {
    use netconform::dut::fixed::FixedBehaviour;
    use netconform_netstack3::{NETSTACK3_PROFILE, with_fixed};
    use std::sync::Arc;
    let wrong = |edit: &'static (dyn Fn(&mut FixedBehaviour) + Sync)| {
        move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
            let mut f = FixedBehaviour::parse(NETSTACK3_PROFILE, "profiles/netstack3.toml")
                .expect("the shipped profile parses");
            edit(&mut f);
            Ok(Box::new(Netstack3Host::new(with_fixed(
                &spec.needs,
                Ok(Some(Arc::new(f))),
            ))?))
        }
    };
    let delay = wrong(&|f| {
        if let Some(n) = f.arp.as_mut().and_then(|a| a.nud.as_mut()) {
            n.delay_probe_ms = 3_000;
        }
    });
    let r = run_one(&spec("arp.unicast-poll"), &delay, ProfileName::Rfc);
    let d = differences(&r);
    assert!(
        d.iter()
            .any(|d| d.contains("expected PROBE") && d.contains("observed DELAY")),
        "{d:?}"
    );
    let retries = wrong(&|f| {
        if let Some(t) = f.tcp.as_mut() {
            t.synack_retries = Some(4);
        }
    });
    let r = run_one(
        &spec("tcp.timer.synack-retransmission"),
        &retries,
        ProfileName::Rfc,
    );
    assert!(matches!(r.verdict, Verdict::Fail { .. }), "{}", show(&r));
    // Nothing declared: the check is unsupported again, naming what to declare.
    let none = |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(Netstack3Host::new(with_fixed(
            &spec.needs,
            Ok(None),
        ))?))
    };
    let r = run_one(
        &spec("tcp.timer.synack-retransmission"),
        &none,
        ProfileName::Rfc,
    );
    assert!(
        matches!(&r.verdict, Verdict::Unsupported { reason } if reason.contains("tcp_synack_retries")),
        "{}",
        show(&r)
    );
}
