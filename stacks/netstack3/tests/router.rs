//! The netstack3 router (several devices in one FakeCtx, IPv4 forwarding, masquerade):
//! exact verdicts of the forward.* and nat.* checks on the fixed seed, and the negative
//! controls that show the forwarding, the masquerade, the conntrack read and the panic
//! guard are real. Run it with `cargo test -p netconform-netstack3 --ignore-rust-version
//! --test router`; in-process, no namespace, no privilege.

use std::net::{IpAddr, Ipv4Addr};

use netconform::dut::{Control, Dut, DutError, Link, StateAnswer, StateQuery, Tables};
use netconform::engine::runner::{Quiet, run_checks, run_one};
use netconform::engine::{CheckReport, CheckSpec, Verdict};
use netconform::models::profile::ProfileName;
use netconform::wire::{Frame, UdpDatagram};
use netconform_netstack3::build_for;
use netconform_netstack3::router::{Netstack3Router, RouterConfig, router_ip, router_mac};

fn spec(id: &str) -> CheckSpec {
    netconform::suites::catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn netstack3(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    build_for(&spec.needs)
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

fn router() -> Netstack3Router {
    Netstack3Router::new(RouterConfig {
        segments: 2,
        mtu: 1500,
        random_seed: netconform_netstack3::DEFAULT_RANDOM_SEED,
        fixed: netconform_netstack3::netstack3_profile(),
    })
    .expect("a router")
}

/// Every forward.* and nat.* check, with the verdict it must get on the fixed seed.
#[test]
fn router_checks_get_exact_verdicts() {
    let checks: Vec<CheckSpec> = netconform::suites::catalogue()
        .into_iter()
        .filter(|c| c.id.starts_with("forward.") || c.id.starts_with("nat."))
        .collect();
    assert_eq!(checks.len(), 10);
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
        "forward.next-hop",
        "nat.masquerade.port-kept",
        "nat.masquerade.clash-same-class",
        "nat.reply-translated",
        "nat.icmp-error-translated",
    ] {
        let r = by_id(id);
        assert_eq!(r.verdict, Verdict::Pass, "{}", show(r));
    }
    // Netstack3's ICMP errors leave with TOS 0, where RFC 1812 §4.3.2.5 (SHOULD) and
    // Linux give precedence 6 (0xc0); nothing else in them differs.
    let r = by_id("forward.time-exceeded");
    let d = differences(r);
    assert_eq!(
        d,
        vec!["ip.tos: expected 0xc0, observed 0x00".to_string()],
        "{d:?}"
    );
    // ... and so it breaks that SHOULD alone (a policy choice nobody reviewed), not the
    // check's first clause, RFC 1812 §5.2.7.3's MUST, which the error met.
    let broken: Vec<&str> = r.broken_clauses().iter().map(|c| c.id).collect();
    assert_eq!(broken, ["rfc1812-4.3.2.5-error-precedence"], "{}", show(r));
    assert_eq!(
        netconform::report::deviations::classify(&r.broken_clauses()),
        netconform::report::deviations::Classification::PolicyChoiceUnreviewed
    );
    let held = r
        .clause_tallies
        .iter()
        .find(|t| t.clause.id == "rfc1812-5.2.7.3-time-exceeded")
        .expect("the time exceeded clause tallied");
    assert!(held.ran > 0 && held.failing.is_empty(), "{held:?}");
    // A unicast packet that came in a link-layer broadcast is forwarded (the router ARPs
    // for its destination on the other port).
    let d = differences(by_id("forward.discards"));
    assert!(
        d.iter()
            .any(|d| d.contains("expected no frame, observed port 1")
                && d.contains("ff:ff:ff:ff:ff:ff, ARP who-has")),
        "{d:?}"
    );
    // Netstack3's route table has no unreachable, prohibit or blackhole route.
    let r = by_id("forward.unreachable");
    assert!(
        matches!(&r.verdict, Verdict::Unsupported { reason } if reason.contains("unreachable")),
        "{}",
        show(r)
    );
    // Endpoint-dependent mapping (RFC 4787 REQ-1): a second flow from the same source
    // port keeps the source port (free towards the new destination) instead of the
    // mapping the first flow got.
    let d = differences(by_id("nat.masquerade.mapping-reused"));
    assert!(
        d.iter()
            .any(|d| d.contains("expected port 64320 reused") && d.contains("observed port 5000")),
        "{d:?}"
    );
    let d = differences(by_id("nat.masquerade.endpoint-dependent-after-clash"));
    assert!(
        d.iter()
            .any(|d| d.contains("other than 6000") && d.contains("observed port 6000")),
        "{d:?}"
    );
}

/// The negative control of the forwarding: with forwarding off, forward.next-hop fails
/// (the packet is not forwarded), so its PASS comes from Netstack3 forwarding.
#[test]
fn forwarding_off_fails_next_hop() {
    fn no_forwarding(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
        assert!(spec.needs.router.is_some());
        let mut r = router();
        r.control(&Control::Forwarding(false))?;
        Ok(Box::new(r))
    }
    let r = run_one(&spec("forward.next-hop"), &no_forwarding, ProfileName::Rfc);
    // The forwarded datagram never comes.
    let d = differences(&r);
    assert_eq!(
        d,
        vec!["nothing arrived within 2000.000 ms".to_string()],
        "{d:?}"
    );
}

/// A UDP datagram from inside host 10.78.1.10 to outside host 10.78.2.2 (sent into port
/// 0), the ARP for 10.78.2.2 answered on port 1.
fn one_flow(r: &mut Netstack3Router) {
    let (a, s) = (Ipv4Addr::new(10, 78, 1, 10), Ipv4Addr::new(10, 78, 2, 2));
    let a_mac = netconform::wire::plan::nat_host(0, 1);
    let s_mac = netconform::wire::plan::nat_host(1, 3);
    let frame = Frame::udp_v4(
        a_mac,
        router_mac(0),
        a,
        s,
        UdpDatagram::new(4000, 7000, vec![1]),
    );
    r.send_frame_on(0, &frame.emit()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let (port, arp) = r.recv_frame_any(deadline).unwrap().expect("an ARP request");
    assert_eq!((port, &arp[12..14]), (1, &[0x08, 0x06][..]), "{arp:?}");
    let reply = Frame::arp_reply(s_mac, s, router_mac(1), router_ip(1));
    r.send_frame_on(1, &reply.emit()).unwrap();
    let (port, out) = r
        .recv_frame_any(deadline)
        .unwrap()
        .expect("the forwarded datagram");
    assert_eq!((port, &out[12..14]), (1, &[0x08, 0x00][..]), "{out:?}");
}

fn conntrack(r: &mut Netstack3Router) -> Vec<netconform::sandbox::ConntrackEntry> {
    match r.query(&StateQuery::Conntrack).unwrap() {
        StateAnswer::Conntrack(e) => e,
        other => panic!("{other:?}"),
    }
}

/// The conntrack read comes from Netstack3's table: empty before any traffic, one entry
/// per flow; with masquerade its reply goes to the router's external address, without it
/// to the inside host (the negative control of the masquerade).
#[test]
fn conntrack_follows_netstack3() {
    let a = IpAddr::V4(Ipv4Addr::new(10, 78, 1, 10));
    let mut plain = router();
    assert!(conntrack(&mut plain).is_empty());
    one_flow(&mut plain);
    let e = conntrack(&mut plain);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].protocol, e[0].original.src, e[0].reply.dst),
        (17, a, a),
        "{e:?}"
    );

    let mut nat = router();
    nat.control(&Control::Masquerade { port: 1 }).unwrap();
    one_flow(&mut nat);
    let e = conntrack(&mut nat);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].original.src, a, "{e:?}");
    assert_eq!(e[0].reply.dst, IpAddr::V4(router_ip(1)), "{e:?}");
    // What netstack3-filter cannot do is unsupported, with the reason.
    assert!(matches!(
        nat.control(&Control::FlushConntrack),
        Err(DutError::NotSupported { .. })
    ));
}

/// A panic inside Netstack3 kills the router with the message; later calls say the same.
#[test]
fn a_panic_inside_the_router_is_caught() {
    let mut r = router();
    let out = r.with_netstack3(|_| panic!("injected for the test"));
    let what = match out {
        Err(DutError::Gone { what }) => what,
        other => panic!("expected the target gone, got {other:?}"),
    };
    assert!(
        what.contains("netstack3 panicked: injected for the test"),
        "{what}"
    );
    assert!(matches!(
        r.send_frame_on(1, &[0u8; 60]),
        Err(DutError::Gone { .. })
    ));
    assert!(matches!(
        r.query(&StateQuery::Ports),
        Err(DutError::Gone { .. })
    ));
    drop(r);
}

/// Why the masquerade rule matches by destination: a NAT rule that names the outgoing
/// interface panics inside the test bindings on the first packet
/// (`MonotonicIdentifier::name_matches` is `unimplemented!()`), and the guard turns that
/// into the target's death. netstack3-ip's debug-only drop check
/// (`IpLayerPacketMetadataDropCheck`) would panic again while unwinding and abort the
/// process, which no `catch_unwind` can stop; the workspace builds netstack3-ip without
/// debug assertions (Cargo.toml) so that a debug build completes its run as a release
/// build does. The body runs in a child process (this test binary again), so an abort
/// would show as the child's failure.
#[test]
fn an_interface_matcher_panics_in_the_test_bindings() {
    const CHILD: &str = "NETCONFORM_NS3_INTERFACE_MATCHER_CHILD";
    const NAME: &str = "an_interface_matcher_panics_in_the_test_bindings";
    if std::env::var_os(CHILD).is_some() {
        interface_matcher_child();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("socket.rs") && stderr.contains("not implemented"),
        "{stderr}"
    );
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
}

fn interface_matcher_child() {
    use net_types::ip::{Ipv4, Ipv6};
    use netstack3_core::filter::{
        Action, Hook, NatRoutines, PacketMatcher, Routine, Routines, Rule,
    };
    use netstack3_core::testutil::{CtxPairExt as _, FakeBindingsCtx};
    let mut r = router();
    r.with_netstack3(|ctx| {
        let rule = Rule {
            matcher: PacketMatcher {
                out_interface: Some(netstack3_base::InterfaceMatcher::Name("ns3eth1".into())),
                ..Default::default()
            },
            action: Action::Masquerade { src_port: None },
            validation_info: (),
        };
        let v4: Routines<Ipv4, FakeBindingsCtx, ()> = Routines {
            nat: NatRoutines {
                egress: Hook {
                    routines: vec![Routine { rules: vec![rule] }],
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let v6: Routines<Ipv6, FakeBindingsCtx, ()> = Routines::default();
        ctx.core_api()
            .filter()
            .set_filter_state(v4, v6)
            .expect("a valid rule");
    })
    .expect("installing the rule is fine");
    let (a, s) = (Ipv4Addr::new(10, 78, 1, 10), Ipv4Addr::new(10, 78, 2, 2));
    let frame = Frame::udp_v4(
        netconform::wire::plan::nat_host(0, 1),
        router_mac(0),
        a,
        s,
        UdpDatagram::new(4000, 7000, vec![1]),
    );
    let out = r.send_frame_on(0, &frame.emit());
    assert!(
        matches!(&out, Err(DutError::Gone { what }) if what.contains("not implemented")),
        "{out:?}"
    );
}

/// Masquerade matched by destination is exact only while nothing for another prefix
/// leaves by the other port: such a route, before or after, is refused with the reason.
#[test]
fn masquerade_refuses_what_it_cannot_tell_apart() {
    let via0 = Control::Route {
        dst: Ipv4Addr::new(192, 0, 2, 0),
        prefix_len: 24,
        via: Ipv4Addr::new(10, 78, 1, 7),
    };
    let mut r = router();
    r.control(&Control::Masquerade { port: 1 }).unwrap();
    assert!(matches!(
        r.control(&via0),
        Err(DutError::NotSupported { .. })
    ));
    let mut r = router();
    r.control(&via0).unwrap();
    assert!(matches!(
        r.control(&Control::Masquerade { port: 1 }),
        Err(DutError::NotSupported { .. })
    ));
    // A route out of the masquerading port is fine.
    let mut r = router();
    r.control(&Control::Masquerade { port: 1 }).unwrap();
    r.control(&Control::Route {
        dst: Ipv4Addr::new(192, 0, 2, 0),
        prefix_len: 24,
        via: Ipv4Addr::new(10, 78, 2, 254),
    })
    .unwrap();
}
