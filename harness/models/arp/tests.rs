//! Unit tests of the ARP model: each case is a behaviour measured on Linux 6.18 (see
//! ../shared/research/linux-oracle.md §1) or a rule of the RFC text, checked in isolation.

use super::*;

const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const OWN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const B_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const B_MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x22]);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn at(v: u64) -> Instant {
    Instant::from_millis(v)
}

fn params() -> ArpParams {
    ArpParams {
        reachable: ms(200),
        base_reachable: ms(200),
        retrans: ms(60),
        delay_probe: ms(100),
        locktime: ms(120),
        ucast_probes: 3,
        mcast_probes: 3,
        app_probes: 0,
        mcast_reprobes: 0,
        tick: ms(4),
        timer_floor: ms(8),
    }
}

fn host(accept: ArpAccept) -> ArpHost {
    ArpHost::new(
        HostConfig {
            mac: OWN_MAC,
            addr: A,
            prefix_len: 24,
            gateway: None,
            forwarding: false,
            policy: ArpPolicy {
                accept,
                ignore: ArpIgnore::Any,
            },
            params: params(),
            expiring: None,
            rfc4861: None,
            tick_nud: None,
        },
        ArpProfile::linux(),
    )
}

fn echo(n: u32, to: Ipv4Addr) -> Packet {
    Packet {
        id: PacketId::Local(n),
        src: A,
        dst: to,
    }
}

fn wire(out: &[Timed]) -> Vec<(u64, Output)> {
    out.iter()
        .filter(|t| t.output.on_wire())
        .map(|t| (t.at.total_millis(), t.output.clone()))
        .collect()
}

fn bcast_request(target: Ipv4Addr) -> Output {
    Output::Request {
        target,
        eth_dst: MacAddr::BROADCAST,
        sender_ip: A,
    }
}

fn unicast_reply(h: &mut ArpHost, now: u64, mac: MacAddr) -> Vec<Timed> {
    h.receive(
        at(now),
        Delivery::Unicast,
        &ArpIn::new(2, mac, B, OWN_MAC, A),
    )
}

fn state(h: &ArpHost, ip: Ipv4Addr) -> Option<(Nud, Option<MacAddr>)> {
    h.entry(ip).map(|e| (e.state, e.mac))
}

#[test]
fn unanswered_resolution_sends_three_broadcasts_then_fails() {
    let mut h = host(ArpAccept::Never);
    let out = h.send(at(10), echo(1, B));
    assert_eq!(wire(&out), vec![(10, bcast_request(B))]);
    assert_eq!(
        h.entry(B).map(|e| (e.state, e.probes)),
        Some((Nud::Incomplete, 4))
    );
    // Every retransmission: deadline = previous run + retrans, run one tick later.
    let out = h.advance(at(1_000));
    assert_eq!(
        wire(&out),
        vec![(74, bcast_request(B)), (138, bcast_request(B))]
    );
    assert_eq!(
        h.entry(B).map(|e| (e.state, e.probes)),
        Some((Nud::Failed, 6))
    );
    assert!(out.iter().any(|t| t.at == at(202)
        && matches!(&t.output, Output::Discarded { what } if what.contains("did not answer"))));
}

#[test]
fn answered_resolution_sends_the_queued_packet_and_becomes_reachable() {
    let mut h = host(ArpAccept::Never);
    h.send(at(0), echo(1, B));
    h.send(at(5), echo(2, B));
    let out = unicast_reply(&mut h, 7, B_MAC);
    let sent: Vec<_> = wire(&out)
        .into_iter()
        .map(|(_, o)| match o {
            Output::Transmit {
                packet, dst_mac, ..
            } => (packet.id, dst_mac),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        sent,
        vec![(PacketId::Local(1), B_MAC), (PacketId::Local(2), B_MAC)]
    );
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    // A cache hit: sent at once, no request.
    let out = h.send(at(50), echo(3, B));
    assert_eq!(wire(&out).len(), 1);
    assert!(matches!(wire(&out)[0].1, Output::Transmit { .. }));
}

#[test]
fn reachable_expires_to_stale_then_use_delays_then_probes_unicast() {
    let mut h = host(ArpAccept::Never);
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 2, B_MAC);
    // Reachable for 200 ms after the confirmation at 2, checked one tick late.
    h.advance(at(205));
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Reachable));
    h.advance(at(207));
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Stale));
    // Use while STALE: sent at once to the cached MAC, DELAY.
    let out = h.send(at(300), echo(2, B));
    assert!(matches!(wire(&out)[0].1, Output::Transmit { dst_mac, .. } if dst_mac == B_MAC));
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Delay));
    // No confirmation within delay_probe: PROBE with a unicast request at 404.
    let out = h.advance(at(404));
    assert_eq!(
        wire(&out),
        vec![(
            404,
            Output::Request {
                target: B,
                eth_dst: B_MAC,
                sender_ip: A
            }
        )]
    );
    assert_eq!(
        h.entry(B).map(|e| (e.state, e.probes)),
        Some((Nud::Probe, 1))
    );
    // Answered: REACHABLE again, no more probes.
    unicast_reply(&mut h, 410, B_MAC);
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Reachable));
}

#[test]
fn unanswered_probes_fail_after_ucast_probes() {
    let mut h = host(ArpAccept::Never);
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 2, B_MAC);
    h.advance(at(300));
    h.send(at(300), echo(2, B));
    let out = h.advance(at(1_000));
    let probes: Vec<u64> = wire(&out).iter().map(|(t, _)| *t).collect();
    assert_eq!(probes, vec![404, 468, 532]);
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Failed));
}

#[test]
fn reachable_entry_used_recently_goes_to_delay_not_stale() {
    let mut h = host(ArpAccept::Never);
    // Resolved by a reply with nothing queued: the cached header is not built yet, so the
    // next send goes through the neighbour code and marks the entry used.
    h.receive(
        at(0),
        Delivery::Broadcast,
        &ArpIn::new(1, B_MAC, B, MacAddr::ZERO, A),
    );
    unicast_reply(&mut h, 1, B_MAC);
    h.send(at(150), echo(1, B));
    h.advance(at(206));
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Delay));
}

/// research §1.2, first table: which frames create an entry under each `arp_accept`.
#[test]
fn creation_follows_arp_accept() {
    let garp_req = ArpIn::new(
        1,
        B_MAC,
        Ipv4Addr::new(10, 9, 0, 50),
        MacAddr::ZERO,
        Ipv4Addr::new(10, 9, 0, 50),
    );
    let garp_reply = ArpIn::new(
        2,
        B_MAC,
        Ipv4Addr::new(10, 9, 0, 50),
        B_MAC,
        Ipv4Addr::new(10, 9, 0, 50),
    );
    let off_subnet = Ipv4Addr::new(192, 0, 2, 50);
    let garp_off = ArpIn::new(1, B_MAC, off_subnet, MacAddr::ZERO, off_subnet);
    let unsolicited = ArpIn::new(2, B_MAC, Ipv4Addr::new(10, 9, 0, 51), OWN_MAC, A);
    let request_for_us = ArpIn::new(1, B_MAC, Ipv4Addr::new(10, 9, 0, 52), MacAddr::ZERO, A);
    let request_other = ArpIn::new(
        1,
        B_MAC,
        Ipv4Addr::new(10, 9, 0, 53),
        MacAddr::ZERO,
        Ipv4Addr::new(10, 9, 0, 77),
    );
    use ArpAccept::*;
    use Delivery::*;
    let cases: Vec<(&ArpIn, Delivery, [Option<Nud>; 3])> = vec![
        (
            &garp_req,
            Broadcast,
            [None, Some(Nud::Stale), Some(Nud::Stale)],
        ),
        (
            &garp_reply,
            Broadcast,
            [None, Some(Nud::Stale), Some(Nud::Stale)],
        ),
        (&garp_off, Broadcast, [None, Some(Nud::Stale), None]),
        (
            &unsolicited,
            Unicast,
            [None, Some(Nud::Reachable), Some(Nud::Reachable)],
        ),
        (
            &unsolicited,
            Broadcast,
            [None, Some(Nud::Stale), Some(Nud::Stale)],
        ),
        (&request_for_us, Broadcast, [Some(Nud::Stale); 3]),
        (&request_other, Broadcast, [None; 3]),
    ];
    for (arp, delivery, expected) in cases {
        for (accept, want) in [Never, Always, SameSubnet].into_iter().zip(expected) {
            let mut h = host(accept);
            h.receive(at(0), delivery, arp);
            assert_eq!(
                h.entry(arp.spa).map(|e| e.state),
                want,
                "{arp:?} {delivery:?} arp_accept {accept:?}"
            );
        }
    }
}

/// research §1.2, second table: an existing REACHABLE entry and a different MAC.
#[test]
fn existing_entry_follows_locktime_and_garp() {
    let other = Ipv4Addr::new(10, 9, 0, 77);
    let reachable = || {
        let mut h = host(ArpAccept::Never);
        h.send(at(0), echo(1, B));
        unicast_reply(&mut h, 1, B_MAC);
        h
    };
    // A request for someone else with a new MAC: ignored within locktime, taken after.
    let req = ArpIn::new(1, B_MAC2, B, MacAddr::ZERO, other);
    let mut h = reachable();
    h.receive(at(50), Delivery::Broadcast, &req);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    let mut h = reachable();
    h.receive(at(150), Delivery::Broadcast, &req);
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC2))));
    // A gratuitous request overrides at once, whatever arp_accept says.
    let mut h = reachable();
    h.receive(
        at(50),
        Delivery::Broadcast,
        &ArpIn::new(1, B_MAC2, B, MacAddr::ZERO, B),
    );
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC2))));
    // A unicast reply with a new MAC: ignored within locktime, REACHABLE after.
    let mut h = reachable();
    unicast_reply(&mut h, 50, B_MAC2);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    let mut h = reachable();
    unicast_reply(&mut h, 150, B_MAC2);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC2))));
    // The same MAC in a broadcast request keeps REACHABLE.
    let mut h = reachable();
    h.receive(
        at(50),
        Delivery::Broadcast,
        &ArpIn::new(1, B_MAC, B, MacAddr::ZERO, other),
    );
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    // A request for us always overrides.
    let mut h = reachable();
    let out = h.receive(
        at(50),
        Delivery::Broadcast,
        &ArpIn::new(1, B_MAC2, B, MacAddr::ZERO, A),
    );
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC2))));
    assert_eq!(
        wire(&out),
        vec![(
            50,
            Output::Reply {
                to_mac: B_MAC2,
                to_ip: B,
                for_ip: A
            }
        )]
    );
}

#[test]
fn the_rfc_profile_has_no_locktime_and_caches_unsolicited_replies_to_us() {
    let mut h = ArpHost::new(host(ArpAccept::Never).config().clone(), ArpProfile::rfc());
    unicast_reply(&mut h, 0, B_MAC);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    unicast_reply(&mut h, 10, B_MAC2);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC2))));
    let mut h = ArpHost::new(host(ArpAccept::Never).config().clone(), ArpProfile::rfc());
    h.receive(
        at(0),
        Delivery::Broadcast,
        &ArpIn::new(1, MacAddr::BROADCAST, B, MacAddr::ZERO, A),
    );
    assert_eq!(
        h.entry(B),
        None,
        "RFC 1812 §3.3.2: a broadcast hardware address is not believed"
    );
}

#[test]
fn malformed_and_foreign_arp_is_ignored() {
    let good = ArpIn::new(1, B_MAC, B, MacAddr::ZERO, A);
    let cases = [
        ArpIn {
            hw_len: 8,
            ..good.clone()
        },
        ArpIn {
            proto_len: 16,
            ..good.clone()
        },
        ArpIn {
            op: 3,
            ..good.clone()
        },
        ArpIn {
            hw_type: 7,
            ..good.clone()
        },
        ArpIn {
            proto_type: 0x86dd,
            ..good.clone()
        },
        ArpIn {
            truncated: true,
            ..good.clone()
        },
        ArpIn {
            spa: Ipv4Addr::BROADCAST,
            ..good.clone()
        },
        ArpIn {
            spa: A,
            ..good.clone()
        },
        ArpIn {
            tpa: Ipv4Addr::new(224, 0, 0, 1),
            ..good.clone()
        },
    ];
    for arp in &cases {
        let mut h = host(ArpAccept::Always);
        let out = h.receive(at(0), Delivery::Broadcast, arp);
        assert!(wire(&out).is_empty(), "{arp:?}: {out:?}");
        assert!(h.entries().is_empty(), "{arp:?}: {:?}", h.entries());
    }
    // Unicast to another station: not for us.
    let mut h = host(ArpAccept::Always);
    h.receive(at(0), Delivery::OtherHost, &good);
    assert!(h.entries().is_empty());
    // IEEE 802 hardware type is accepted like Ethernet.
    let mut h = host(ArpAccept::Never);
    h.receive(at(0), Delivery::Broadcast, &ArpIn { hw_type: 6, ..good });
    assert_eq!(state(&h, B).map(|s| s.0), Some(Nud::Stale));
}

#[test]
fn an_address_probe_is_answered_and_never_cached() {
    let mut h = host(ArpAccept::Always);
    let probe = ArpIn::new(1, B_MAC, Ipv4Addr::UNSPECIFIED, MacAddr::ZERO, A);
    let out = h.receive(at(0), Delivery::Broadcast, &probe);
    assert_eq!(
        wire(&out),
        vec![(
            0,
            Output::Reply {
                to_mac: B_MAC,
                to_ip: Ipv4Addr::UNSPECIFIED,
                for_ip: A
            }
        )]
    );
    assert!(h.entries().is_empty());
}

#[test]
fn arp_ignore_decides_which_requests_are_answered() {
    let off = Ipv4Addr::new(10, 7, 0, 1);
    for (ignore, from, answered) in [
        (ArpIgnore::Any, off, true),
        (ArpIgnore::OnInterface, off, true),
        (ArpIgnore::SameSubnet, off, false),
        (ArpIgnore::SameSubnet, B, true),
        (ArpIgnore::Never, B, false),
    ] {
        let mut h = host(ArpAccept::Never);
        h.config.policy.ignore = ignore;
        let out = h.receive(
            at(0),
            Delivery::Broadcast,
            &ArpIn::new(1, B_MAC, from, MacAddr::ZERO, A),
        );
        assert_eq!(!wire(&out).is_empty(), answered, "{ignore:?} from {from}");
        // An ignored request creates nothing either.
        assert_eq!(h.entry(from).is_some(), answered, "{ignore:?} from {from}");
    }
}

#[test]
fn off_link_traffic_resolves_the_gateway_and_no_route_is_silent() {
    let gw = Ipv4Addr::new(10, 9, 0, 254);
    let far = Ipv4Addr::new(198, 51, 100, 7);
    let mut h = host(ArpAccept::Never);
    let out = h.send(at(0), echo(1, far));
    assert!(wire(&out).is_empty(), "no gateway: {out:?}");
    h.config.gateway = Some(gw);
    let out = h.send(at(1), echo(2, far));
    assert_eq!(wire(&out), vec![(1, bcast_request(gw))]);
    assert!(h.entry(far).is_none());
}

#[test]
fn a_forwarded_packet_to_an_absent_neighbour_brings_host_unreachable() {
    let mut h = host(ArpAccept::Never);
    h.config.forwarding = true;
    // The sender B is known.
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 1, B_MAC);
    let absent = Ipv4Addr::new(10, 9, 0, 99);
    h.send(
        at(10),
        Packet {
            id: PacketId::Forwarded(7),
            src: B,
            dst: absent,
        },
    );
    let out = h.advance(at(1_000));
    let last = wire(&out).pop();
    assert_eq!(
        last,
        Some((
            202,
            Output::Transmit {
                packet: Packet {
                    id: PacketId::HostUnreachable(7),
                    src: A,
                    dst: B
                },
                next_hop: B,
                dst_mac: B_MAC
            }
        ))
    );
}

#[test]
fn critical_instants_name_the_timer_and_the_locktime_end() {
    let mut h = host(ArpAccept::Never);
    h.send(at(0), echo(1, B));
    let c = h.critical_instants(B);
    assert!(c.contains(&at(64)), "{c:?}");
    assert!(c.contains(&at(120)), "{c:?}");
    assert_eq!(h.next_timer(), Some(at(64)));
}

/// A timer that has just run stays an ambiguous instant: a REACHABLE entry that turned
/// STALE at its expiry shows no frame, and a stack whose timer runs a few ms after the
/// model's still says REACHABLE; a dump right after the model's instant must wait.
#[test]
fn a_timer_that_just_ran_is_still_an_ambiguous_instant() {
    let mut h = host(ArpAccept::Never);
    h.send(at(0), echo(1, B));
    let reply = ArpIn::new(2, B_MAC, B, h.config().mac, A);
    h.receive(at(5), Delivery::Unicast, &reply);
    let expiry = h.next_timer().expect("REACHABLE has a timer");
    h.advance(expiry + crate::time::Duration::from_millis(1));
    assert_eq!(h.entry(B).map(|e| e.state), Some(Nud::Stale));
    assert_eq!(h.next_timer(), None, "STALE has no timer");
    assert!(
        h.timer_instants().contains(&expiry),
        "{:?}",
        h.timer_instants()
    );
    assert!(h.critical_instants(B).contains(&expiry));
}

#[test]
fn linux_answers_a_request_from_the_subnet_broadcast_address() {
    let bcast = Ipv4Addr::new(10, 9, 0, 255);
    let req = ArpIn::new(1, B_MAC, bcast, MacAddr::ZERO, A);
    let mut h = host(ArpAccept::Always);
    let out = h.receive(at(0), Delivery::Broadcast, &req);
    assert_eq!(
        wire(&out),
        vec![(
            0,
            Output::Reply {
                to_mac: B_MAC,
                to_ip: bcast,
                for_ip: A
            }
        )]
    );
    assert!(h.entries().is_empty());
    let mut h = ArpHost::new(host(ArpAccept::Always).config().clone(), ArpProfile::rfc());
    assert!(wire(&h.receive(at(0), Delivery::Broadcast, &req)).is_empty());
    assert!(h.entries().is_empty());
}

/// A reachable time is drawn in [base/2, 3·base/2) (RFC 4861 §6.3.2), each bound widened by
/// a tick; outside it the stack did not draw from the base that was set.
#[test]
fn a_reachable_time_is_drawn_between_half_and_one_and_a_half_of_the_base() {
    assert_eq!(ArpParams::reachable_range(ms(160)), (ms(80), ms(240)));
    let drawn = |r| ArpParams::reachable_may_be_drawn(ms(160), ms(r), ms(4));
    for r in [80, 120, 160, 239, 243, 77] {
        assert!(drawn(r), "{r} ms may be drawn from 160 ms");
    }
    for r in [76, 244, 245, 1160, 30_000, 0] {
        assert!(!drawn(r), "{r} ms is not drawn from 160 ms");
    }
    // The base of a stack that ignored the setting (30 s) draws no time the set base can.
    assert!(!ArpParams::reachable_may_be_drawn(
        ms(160),
        ms(21_000),
        ms(4)
    ));
}

/// A time is kept to within the stack's tick (Linux rounds up to whole jiffies); a time
/// a tick or more away is not what was set.
#[test]
fn a_time_is_kept_to_within_a_tick() {
    let kept = |set, kept| ArpParams::time_kept(ms(set), ms(kept), ms(4));
    assert!(kept(60, 60));
    assert!(kept(1, 4), "1 ms rounded up to a 4 ms jiffy");
    assert!(kept(62, 64));
    assert!(kept(62, 59), "less than a tick below");
    assert!(!kept(60, 64), "a whole tick above");
    assert!(!kept(60, 56), "a whole tick below");
    assert!(!kept(160, 1160), "misreported");
    assert!(
        !kept(60, 1000),
        "the stack's default: the setting was ignored"
    );
}

// ---- an expiring cache (a stack's declared fixed behaviour: smoltcp) -------------------

const C: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 3);

/// smoltcp 0.14's cache (profiles/smoltcp.toml): 60 s lifetime refreshed by traffic, one
/// request per second on the whole interface, waiting packets dropped.
fn smoltcp_cache() -> ExpiringCache {
    ExpiringCache {
        lifetime: ms(60_000),
        refreshed_by_traffic: true,
        request_interval: ms(1_000),
        rate_limit_per_address: false,
        queue: false,
        timed: None,
    }
}

fn expiring(x: ExpiringCache) -> ArpHost {
    let mut h = host(ArpAccept::Never);
    h.config.expiring = Some(x);
    h
}

fn transmit(n: u32, to: Ipv4Addr, mac: MacAddr) -> Output {
    Output::Transmit {
        packet: echo(n, to),
        next_hop: to,
        dst_mac: mac,
    }
}

/// Resolves B at time 0 (request, B's reply) and returns the host.
fn resolved(x: ExpiringCache) -> ArpHost {
    let mut h = expiring(x);
    assert_eq!(
        wire(&h.send(at(0), echo(1, B))),
        vec![(0, bcast_request(B))]
    );
    unicast_reply(&mut h, 0, B_MAC);
    h
}

#[test]
fn an_expiring_entry_is_used_until_its_lifetime_ends_then_asked_for_again() {
    let mut h = resolved(smoltcp_cache());
    // Just before the lifetime ends: from the cache, no request (no unicast poll either).
    assert_eq!(
        wire(&h.send(at(59_999), echo(2, B))),
        vec![(59_999, transmit(2, B, B_MAC))]
    );
    assert_eq!(h.expires(B), Some(at(60_000)));
    // At its end: a broadcast request, as for an address never seen.
    assert_eq!(
        wire(&h.send(at(60_000), echo(3, B))),
        vec![(60_000, bcast_request(B))]
    );
    // Negative control: with a lifetime one millisecond longer the same send is a hit.
    let mut longer = resolved(ExpiringCache {
        lifetime: ms(60_001),
        ..smoltcp_cache()
    });
    assert_eq!(
        wire(&longer.send(at(60_000), echo(3, B))),
        vec![(60_000, transmit(3, B, B_MAC))]
    );
    // No timer runs: the model has nothing to do between inputs.
    assert_eq!(h.next_timer(), None);
}

#[test]
fn traffic_from_the_entrys_own_mac_refreshes_it_even_after_it_expired() {
    let mut h = resolved(smoltcp_cache());
    h.ip_received(at(70_000), B, B_MAC);
    assert_eq!(h.expires(B), Some(at(130_000)));
    assert_eq!(
        wire(&h.send(at(70_000), echo(2, B))),
        vec![(70_000, transmit(2, B, B_MAC))]
    );
    // Negative controls: another MAC refreshes nothing, and neither does a cache declared
    // not refreshed by traffic.
    let mut other = resolved(smoltcp_cache());
    other.ip_received(at(70_000), B, B_MAC2);
    assert_eq!(
        wire(&other.send(at(70_000), echo(2, B))),
        vec![(70_000, bcast_request(B))]
    );
    let mut fixed = resolved(ExpiringCache {
        refreshed_by_traffic: false,
        ..smoltcp_cache()
    });
    fixed.ip_received(at(70_000), B, B_MAC);
    assert_eq!(fixed.expires(B), Some(at(60_000)));
}

#[test]
fn requests_are_rate_limited_on_the_whole_interface_or_per_address() {
    let mut h = expiring(smoltcp_cache());
    assert_eq!(
        wire(&h.send(at(0), echo(1, B))),
        vec![(0, bcast_request(B))]
    );
    // Within the interval nothing is asked, for B or for C, and the packets are dropped.
    assert!(wire(&h.send(at(999), echo(2, B))).is_empty());
    assert!(wire(&h.send(at(999), echo(3, C))).is_empty());
    assert_eq!(h.critical_instants(C), vec![at(1_000)]);
    // From the end of the interval on, again.
    assert_eq!(
        wire(&h.send(at(1_000), echo(4, C))),
        vec![(1_000, bcast_request(C))]
    );
    // Negative control: per address, C may be asked for at once.
    let mut per = expiring(ExpiringCache {
        rate_limit_per_address: true,
        ..smoltcp_cache()
    });
    per.send(at(0), echo(1, B));
    assert_eq!(
        wire(&per.send(at(999), echo(3, C))),
        vec![(999, bcast_request(C))]
    );
    assert!(wire(&per.send(at(999), echo(4, B))).is_empty());
}

#[test]
fn a_waiting_packet_is_dropped_or_queued_as_declared() {
    let mut h = expiring(smoltcp_cache());
    h.send(at(0), echo(1, B));
    assert_eq!(h.dropped_waiting(), 1);
    assert!(wire(&unicast_reply(&mut h, 5, B_MAC)).is_empty());
    // Negative control: a queueing cache sends the packet once B answers.
    let mut q = expiring(ExpiringCache {
        queue: true,
        timed: None,
        ..smoltcp_cache()
    });
    q.send(at(0), echo(1, B));
    assert_eq!(q.dropped_waiting(), 0);
    assert_eq!(
        wire(&unicast_reply(&mut q, 5, B_MAC)),
        vec![(5, transmit(1, B, B_MAC))]
    );
}

#[test]
fn any_arp_for_the_host_fills_an_expiring_entry_with_no_locktime_under_the_rfc_profile() {
    let mut h = ArpHost::new(
        HostConfig {
            expiring: Some(smoltcp_cache()),
            ..host(ArpAccept::Never).config
        },
        ArpProfile::rfc(),
    );
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 0, B_MAC);
    // A reply from another MAC 10 ms later is taken at once and starts a new lifetime.
    unicast_reply(&mut h, 10, B_MAC2);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC2))));
    assert_eq!(h.expires(B), Some(at(60_010)));
    // Negative control: the Linux state machine keeps the first MAC within the locktime.
    let mut linux = host(ArpAccept::Never);
    linux.send(at(0), echo(1, B));
    unicast_reply(&mut linux, 0, B_MAC);
    unicast_reply(&mut linux, 10, B_MAC2);
    assert_eq!(state(&linux, B), Some((Nud::Reachable, Some(B_MAC))));
}

/// A host running RFC 4861's state machine for ARP (Netstack3's NUD): exact timers (tick
/// 1 ms), a 5 s delay before probing, a 1 s override lock.
fn rfc4861_host() -> ArpHost {
    let mut h = host(ArpAccept::Never);
    h.config.params.tick = ms(1);
    h.config.params.timer_floor = Duration::ZERO;
    h.config.params.delay_probe = ms(5_000);
    h.config.params.locktime = Duration::ZERO;
    h.config.rfc4861 = Some(Rfc4861Nud {
        override_lock: ms(1_000),
    });
    h.profile = ArpProfile::rfc();
    h
}

fn unicast_request(target: Ipv4Addr, mac: MacAddr) -> Output {
    Output::Request {
        target,
        eth_dst: mac,
        sender_ip: A,
    }
}

#[test]
fn rfc4861_reachable_turns_stale_then_a_use_waits_the_fixed_delay_and_polls() {
    let mut h = rfc4861_host();
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 1, B_MAC);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
    // REACHABLE runs out after the base reachable time (200 ms), used or not: STALE
    // (Linux would go to DELAY for an entry used within delay_probe).
    h.send(at(150), echo(2, B));
    h.advance(at(210));
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC))));
    // A packet to a STALE entry goes out at once and starts DELAY; 5 s later the first
    // unicast probe, then one per retransmission time.
    let out = h.send(at(300), echo(3, B));
    assert!(matches!(wire(&out)[..], [(300, Output::Transmit { .. })]));
    assert_eq!(state(&h, B), Some((Nud::Delay, Some(B_MAC))));
    let out = h.advance(at(5_340));
    assert_eq!(wire(&out), vec![(5_301, unicast_request(B, B_MAC))]);
    // Unanswered: 3 probes, then UNREACHABLE, its MAC kept (shown FAILED with the MAC).
    let out = h.advance(at(5_600));
    assert_eq!(
        wire(&out),
        vec![
            (5_362, unicast_request(B, B_MAC)),
            (5_423, unicast_request(B, B_MAC))
        ]
    );
    assert_eq!(state(&h, B), Some((Nud::Failed, Some(B_MAC))));
    // A packet to it still goes to the MAC and restarts broadcast requests (back-off).
    let out = h.send(at(6_000), echo(4, B));
    assert_eq!(wire(&out).len(), 2, "{out:?}");
    assert_eq!(wire(&out)[1], (6_000, bcast_request(B)));
}

/// The negative control: the Linux state machine with the same timers turns the used
/// REACHABLE entry to DELAY, not STALE, and keeps a failed resolution FAILED where RFC
/// 4861's removes it.
#[test]
fn rfc4861_differs_from_linux_where_declared() {
    let mut linux = rfc4861_host();
    linux.config.rfc4861 = None;
    linux.send(at(0), echo(1, B));
    unicast_reply(&mut linux, 1, B_MAC);
    linux.send(at(150), echo(2, B));
    linux.advance(at(210));
    assert_ne!(state(&linux, B), Some((Nud::Stale, Some(B_MAC))));
    let mut h = rfc4861_host();
    h.send(at(0), echo(1, B));
    let out = h.advance(at(1_000));
    assert_eq!(
        wire(&out),
        vec![(61, bcast_request(B)), (122, bcast_request(B))]
    );
    assert_eq!(state(&h, B), None, "RFC 4861: the entry is removed");
    let mut l = rfc4861_host();
    l.config.rfc4861 = None;
    l.send(at(0), echo(1, B));
    l.advance(at(1_000));
    assert_eq!(state(&l, B).map(|s| s.0), Some(Nud::Failed));
}

#[test]
fn rfc4861_a_new_mac_makes_an_entry_stale_and_the_lock_holds_only_confirmations() {
    let mut h = rfc4861_host();
    h.send(at(0), echo(1, B));
    unicast_reply(&mut h, 1, B_MAC);
    // The same MAC confirmed again within the lock: nothing moves (the timer keeps the
    // first confirmation).
    unicast_reply(&mut h, 100, B_MAC);
    h.advance(at(205));
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC))));
    // A request from a new MAC: STALE with it (RFC 826: the new information is taken).
    h.receive(
        at(300),
        Delivery::Broadcast,
        &ArpIn::new(1, B_MAC2, B, MacAddr::ZERO, A),
    );
    assert_eq!(state(&h, B), Some((Nud::Stale, Some(B_MAC2))));
    // A reply unicast from yet another MAC: REACHABLE with it.
    unicast_reply(&mut h, 400, B_MAC);
    assert_eq!(state(&h, B), Some((Nud::Reachable, Some(B_MAC))));
}

/// lwIP 2.1's etharp as Debian builds it (profiles/lwip.toml): 300 s lifetime, a pending
/// request again on every 1 s tick and the entry dropped on the 5th, 10 packets queued,
/// a used entry re-requested 30 s (unicast) and 15 s (broadcast) before it expires.
fn lwip_cache() -> ExpiringCache {
    ExpiringCache {
        lifetime: ms(300_000),
        refreshed_by_traffic: false,
        request_interval: ms(1_000),
        rate_limit_per_address: true,
        queue: true,
        timed: Some(TimedRequests {
            tick: ms(1_000),
            max_pending: 5,
            queue_len: 10,
            rerequest_unicast: Some(ms(30_000)),
            rerequest_broadcast: Some(ms(15_000)),
        }),
    }
}

fn lwip_timed() -> TimedRequests {
    lwip_cache().timed.expect("timed")
}

#[test]
fn a_pending_request_is_sent_again_every_tick_then_the_entry_and_its_queue_go() {
    let mut h = expiring(lwip_cache());
    assert_eq!(
        wire(&h.send(at(0), echo(1, B))),
        vec![(0, bcast_request(B))]
    );
    // A second packet waits without a request of its own.
    assert!(wire(&h.send(at(300), echo(2, B))).is_empty());
    assert_eq!(h.next_timer(), Some(at(1_000)));
    // Ticks 1 to 4 ask again; tick 5 drops the entry and both packets.
    assert_eq!(
        wire(&h.advance(at(10_000))),
        [1_000, 2_000, 3_000, 4_000]
            .map(|t| (t, bcast_request(B)))
            .to_vec()
    );
    assert_eq!(h.entry(B), None);
    assert_eq!(h.dropped_waiting(), 2);
    // The next packet starts over at once.
    assert_eq!(
        wire(&h.send(at(10_000), echo(3, B))),
        vec![(10_000, bcast_request(B))]
    );
    // Negative control: smoltcp's cache, queueing too, asks once and never again.
    let mut once = expiring(ExpiringCache {
        queue: true,
        ..smoltcp_cache()
    });
    once.send(at(0), echo(1, B));
    assert!(wire(&once.advance(at(10_000))).is_empty());
    assert_eq!(once.dropped_waiting(), 0);
}

#[test]
fn an_answer_while_pending_sends_the_queue_and_stops_the_requests() {
    let mut h = expiring(lwip_cache());
    h.send(at(0), echo(1, B));
    h.send(at(100), echo(2, B));
    assert_eq!(wire(&h.advance(at(1_500))), vec![(1_000, bcast_request(B))]);
    assert_eq!(
        wire(&unicast_reply(&mut h, 1_500, B_MAC)),
        vec![
            (1_500, transmit(1, B, B_MAC)),
            (1_500, transmit(2, B, B_MAC))
        ]
    );
    assert!(wire(&h.advance(at(20_000))).is_empty());
    assert_eq!(h.expires(B), Some(at(301_500)));
    // Negative control: unanswered, the same host goes on asking.
    let mut unanswered = expiring(lwip_cache());
    unanswered.send(at(0), echo(1, B));
    assert_eq!(wire(&unanswered.advance(at(2_500))).len(), 2);
}

#[test]
fn a_full_queue_drops_its_oldest_packet() {
    let mut h = expiring(lwip_cache());
    for n in 1..=11 {
        h.send(at(u64::from(n)), echo(n, B));
    }
    assert_eq!(h.dropped_waiting(), 1);
    let sent: Vec<(u64, Output)> = (2..=11).map(|n| (20, transmit(n, B, B_MAC))).collect();
    assert_eq!(wire(&unicast_reply(&mut h, 20, B_MAC)), sent);
    // Negative control: a queue of 11 keeps all of them.
    let mut roomy = expiring(ExpiringCache {
        timed: Some(TimedRequests {
            queue_len: 11,
            ..lwip_timed()
        }),
        ..lwip_cache()
    });
    for n in 1..=11 {
        roomy.send(at(u64::from(n)), echo(n, B));
    }
    assert_eq!(roomy.dropped_waiting(), 0);
    assert_eq!(wire(&unicast_reply(&mut roomy, 20, B_MAC)).len(), 11);
    // And one declared not to queue keeps none.
    let mut none = expiring(ExpiringCache {
        queue: false,
        ..lwip_cache()
    });
    none.send(at(0), echo(1, B));
    assert_eq!(none.dropped_waiting(), 1);
    assert!(wire(&unicast_reply(&mut none, 20, B_MAC)).is_empty());
}

#[test]
fn a_used_entry_is_asked_for_again_before_it_expires_then_removed() {
    let mut h = resolved(lwip_cache());
    assert_eq!(
        wire(&h.send(at(269_999), echo(2, B))),
        vec![(269_999, transmit(2, B, B_MAC))]
    );
    // 30 s before the end: a unicast request to the known MAC, then the packet.
    assert_eq!(
        wire(&h.send(at(270_000), echo(3, B))),
        vec![
            (270_000, unicast_request(B, B_MAC)),
            (270_000, transmit(3, B, B_MAC))
        ]
    );
    // At most one per two ticks.
    assert_eq!(
        wire(&h.send(at(271_000), echo(4, B))),
        vec![(271_000, transmit(4, B, B_MAC))]
    );
    assert_eq!(wire(&h.send(at(272_000), echo(5, B))).len(), 2);
    // 15 s before the end: by broadcast.
    assert_eq!(
        wire(&h.send(at(285_000), echo(6, B))),
        vec![
            (285_000, bcast_request(B)),
            (285_000, transmit(6, B, B_MAC))
        ]
    );
    // Unanswered, the entry is gone at its end: nothing is left for an ARP packet to
    // update, and the next packet asks as for a new address.
    h.advance(at(300_000));
    assert_eq!(h.entry(B), None);
    assert_eq!(
        wire(&h.send(at(300_000), echo(7, B))),
        vec![(300_000, bcast_request(B))]
    );
    // Negative controls: without re-requests the use at 270 s only sends; smoltcp's
    // expired entry stays stored.
    let mut quiet = resolved(ExpiringCache {
        timed: Some(TimedRequests {
            rerequest_unicast: None,
            rerequest_broadcast: None,
            ..lwip_timed()
        }),
        ..lwip_cache()
    });
    assert_eq!(
        wire(&quiet.send(at(270_000), echo(3, B))),
        vec![(270_000, transmit(3, B, B_MAC))]
    );
    let mut kept = resolved(smoltcp_cache());
    kept.advance(at(60_000));
    assert_eq!(state(&kept, B), Some((Nud::Stale, Some(B_MAC))));
}

#[test]
fn a_coarse_timer_may_run_a_tick_early_and_the_model_follows_the_one_seen() {
    let mut h = expiring(lwip_cache());
    assert_eq!(h.timing_window(), ms(1_000));
    assert_eq!(expiring(smoltcp_cache()).timing_window(), Duration::ZERO);
    h.send(at(0), echo(1, B));
    // The stack's first tick came at 400 ms: its next ones are at 1.4 s, 2.4 s...
    assert_eq!(wire(&h.advance(at(1_000))), vec![(1_000, bcast_request(B))]);
    h.solicitation_seen(B, at(1_000), at(400));
    assert_eq!(wire(&h.advance(at(1_400))), vec![(1_400, bcast_request(B))]);
    // Negative control: not told, the model keeps its own phase.
    let mut own = expiring(lwip_cache());
    own.send(at(0), echo(1, B));
    own.advance(at(1_000));
    assert!(wire(&own.advance(at(1_400))).is_empty());
}
