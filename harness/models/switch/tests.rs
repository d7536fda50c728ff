//! Script-like tests of the switch model, and proptest invariants over random frame
//! sequences.

use proptest::prelude::*;

use super::*;

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
const C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc]);
const GROUP: MacAddr = MacAddr([3, 0, 0, 0, 0, 1]);

const SECOND: Duration = Duration::from_millis(1000);

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

fn h(src: MacAddr, dst: MacAddr) -> FrameHeader {
    FrameHeader { src, dst }
}

fn ports(p: &[Port]) -> BTreeSet<Port> {
    p.iter().copied().collect()
}

fn three() -> Switch {
    Switch::new(3, SECOND)
}

/// Where a frame goes, for tests that only look at that.
fn send(sw: &mut Switch, t: u64, port: Port, src: MacAddr, dst: MacAddr) -> BTreeSet<Port> {
    sw.receive(ms(t), port, &h(src, dst))
        .expect("valid port")
        .egress
}

#[test]
fn learns_both_hosts_and_stops_flooding() {
    let mut sw = three();
    let f = sw.receive(ms(0), 0, &h(A, B)).unwrap();
    assert_eq!(f.decision, Decision::FloodedUnknown);
    assert_eq!(f.egress, ports(&[1, 2]));
    assert_eq!(f.learning, Learning::Created);
    let f = sw.receive(ms(1), 1, &h(B, A)).unwrap();
    assert_eq!(f.decision, Decision::Forwarded { port: 0 });
    assert_eq!(f.egress, ports(&[0]));
    assert_eq!(send(&mut sw, 2, 0, A, B), ports(&[1]));
    let fdb: Vec<_> = sw.fdb(ms(3)).iter().map(|e| (e.mac, e.port)).collect();
    assert_eq!(fdb, vec![(A, 0), (B, 1)]);
}

#[test]
fn broadcast_and_groups_flood_to_every_other_port() {
    let mut sw = three();
    assert_eq!(send(&mut sw, 0, 2, A, MacAddr::BROADCAST), ports(&[0, 1]));
    assert_eq!(send(&mut sw, 0, 1, B, GROUP), ports(&[0, 2]));
}

#[test]
fn a_station_that_moves_is_followed() {
    let mut sw = three();
    send(&mut sw, 0, 0, A, B);
    send(&mut sw, 1, 1, B, A);
    let f = sw.receive(ms(2), 2, &h(A, C)).unwrap();
    assert_eq!(f.learning, Learning::Moved { from: 0 });
    assert_eq!(sw.lookup(ms(2), A), Some(2));
    assert_eq!(send(&mut sw, 3, 1, B, A), ports(&[2]));
}

#[test]
fn never_back_out_of_the_ingress_port() {
    let mut sw = three();
    send(&mut sw, 0, 0, A, MacAddr::BROADCAST);
    send(&mut sw, 0, 0, C, MacAddr::BROADCAST);
    let f = sw.receive(ms(1), 0, &h(C, A)).unwrap();
    assert_eq!(f.decision, Decision::FilteredSamePort);
    assert!(f.egress.is_empty());
    // Source and destination the same station: it is learned on the ingress port first.
    send(&mut sw, 2, 1, B, MacAddr::BROADCAST);
    let f = sw.receive(ms(3), 1, &h(B, B)).unwrap();
    assert_eq!(f.decision, Decision::FilteredSamePort);
}

#[test]
fn entries_age_out_and_refreshing_restarts_the_age() {
    let mut sw = three();
    send(&mut sw, 0, 0, A, B);
    send(&mut sw, 0, 1, B, A);
    assert_eq!(sw.next_ageing(ms(0)), Some(ms(1000)));
    send(&mut sw, 600, 0, A, B); // A refreshed at 600
    assert_eq!(sw.lookup(ms(999), B), Some(1));
    assert_eq!(
        sw.lookup(ms(1000), B),
        None,
        "gone at exactly the ageing time"
    );
    assert_eq!(sw.lookup(ms(1500), A), Some(0));
    // A frame to B after B aged out is flooded again.
    assert_eq!(send(&mut sw, 1100, 2, C, B), ports(&[0, 1]));
    // Forwarding to A does not refresh A: only A's own frames do.
    send(&mut sw, 1200, 1, B, A);
    assert_eq!(sw.lookup(ms(1600), A), None);
    let macs: Vec<_> = sw.fdb(ms(1700)).iter().map(|e| e.mac).collect();
    assert_eq!(macs, vec![B, C]);
}

#[test]
fn ageing_time_zero_is_a_hub() {
    let mut sw = Switch::new(3, Duration::ZERO);
    send(&mut sw, 0, 0, A, B);
    assert_eq!(send(&mut sw, 1, 1, B, A), ports(&[0, 2]));
    assert!(sw.fdb(ms(1)).is_empty());
}

#[test]
fn near_the_ageing_instant_either_outcome_is_accepted() {
    let mut sw = three().with_tolerance(Duration::from_millis(100));
    send(&mut sw, 0, 0, A, C);
    // Well before: certain, unicast.
    let f = sw.receive(ms(800), 1, &h(B, A)).unwrap();
    assert_eq!(
        (f.egress.clone(), f.alternative.clone()),
        (ports(&[0]), None)
    );
    // Just before the ageing instant: unicast predicted, flooding accepted.
    let f = sw.receive(ms(950), 1, &h(B, A)).unwrap();
    assert_eq!(f.egress, ports(&[0]));
    assert_eq!(f.alternative, Some(ports(&[0, 2])));
    assert!(f.accepts(&ports(&[0, 2])) && !f.accepts(&ports(&[2])));
    // Just after: flooding predicted, unicast accepted; the FDB entry is uncertain.
    let f = sw.receive(ms(1050), 1, &h(B, A)).unwrap();
    assert_eq!(f.egress, ports(&[0, 2]));
    assert_eq!(f.alternative, Some(ports(&[0])));
    let a = sw.fdb(ms(1050)).into_iter().find(|e| e.mac == A).unwrap();
    assert_eq!(a.presence, Presence::Uncertain);
    // Well after: certain, flooded, gone.
    let f = sw.receive(ms(1200), 1, &h(B, A)).unwrap();
    assert_eq!((f.egress, f.alternative), (ports(&[0, 2]), None));
    assert!(sw.fdb(ms(1200)).iter().all(|e| e.mac != A));
}

#[test]
fn group_source_is_never_learned() {
    // 802.1D: not learned, relayed by destination.
    let mut sw = three();
    let f = sw.receive(ms(0), 0, &h(GROUP, B)).unwrap();
    assert_eq!(f.learning, Learning::GroupSource);
    assert_eq!(f.egress, ports(&[1, 2]));
    assert!(sw.fdb(ms(0)).is_empty());
    // Linux: dropped, and an all-zero source too.
    let mut sw = three().with_profile(SwitchProfile::linux());
    for src in [GROUP, MacAddr::ZERO] {
        let f = sw.receive(ms(0), 0, &h(src, B)).unwrap();
        assert_eq!(f.decision, Decision::Dropped(DropReason::InvalidSource));
        assert!(f.egress.is_empty());
    }
    assert!(sw.fdb(ms(0)).is_empty());
}

#[test]
fn reserved_addresses_standard_and_linux() {
    let reserved = |last: u8| MacAddr([0x01, 0x80, 0xc2, 0, 0, last]);
    let mut std = three();
    for last in [0x00, 0x01, 0x02, 0x0e, 0x0f] {
        let f = std.receive(ms(0), 0, &h(A, reserved(last))).unwrap();
        assert_eq!(f.decision, Decision::Reserved, "{last:#x}");
        assert!(f.egress.is_empty());
    }
    assert_eq!(
        std.lookup(ms(0), A),
        Some(0),
        "learned from reserved frames"
    );
    // Not reserved: 01-80-C2-00-00-10 is an ordinary group address.
    assert_eq!(send(&mut std, 0, 0, A, reserved(0x10)), ports(&[1, 2]));

    let mut linux = three().with_profile(SwitchProfile::linux());
    assert_eq!(send(&mut linux, 0, 0, A, reserved(0x00)), ports(&[1, 2]));
    let f = linux.receive(ms(0), 1, &h(B, reserved(0x01))).unwrap();
    assert_eq!(f.decision, Decision::Dropped(DropReason::MacControl));
    assert_eq!(
        linux.lookup(ms(0), B),
        None,
        "MAC Control frames are not learned"
    );
    let f = linux.receive(ms(0), 2, &h(C, reserved(0x0e))).unwrap();
    assert_eq!(f.decision, Decision::Reserved);
    assert_eq!(linux.lookup(ms(0), C), Some(2), "LLDP frames are learned");
}

#[test]
fn a_port_out_of_range_is_an_error() {
    let mut sw = three();
    assert_eq!(
        sw.receive(ms(0), 3, &h(A, B)),
        Err(SwitchError::NoSuchPort { port: 3, ports: 3 })
    );
}

/// One random frame or a pause, for the invariants.
#[derive(Debug, Clone)]
enum Step {
    Frame {
        port: Port,
        src: MacAddr,
        dst: MacAddr,
    },
    Wait(u64),
}

fn station() -> impl Strategy<Value = MacAddr> {
    (0u8..5).prop_map(|i| MacAddr([2, 0, 0, 0, 0, i]))
}

fn step(ports: usize) -> impl Strategy<Value = Step> {
    let dst = prop_oneof![
        6 => station(),
        1 => Just(MacAddr::BROADCAST),
        1 => Just(GROUP),
        1 => (0u8..0x11).prop_map(|l| MacAddr([0x01, 0x80, 0xc2, 0, 0, l])),
    ];
    let src = prop_oneof![8 => station(), 1 => Just(GROUP), 1 => Just(MacAddr::ZERO)];
    prop_oneof![
        8 => (0..ports, src, dst).prop_map(|(port, src, dst)| Step::Frame { port, src, dst }),
        1 => (0u64..1500).prop_map(Step::Wait),
    ]
}

fn profile() -> impl Strategy<Value = SwitchProfile> {
    prop_oneof![Just(SwitchProfile::rfc()), Just(SwitchProfile::linux())]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_frame_sequence(
        ports in 2usize..6,
        tolerance in prop_oneof![Just(0u64), Just(50u64)],
        profile in profile(),
        steps in (2usize..6).prop_flat_map(|p| proptest::collection::vec(step(p), 1..40)),
    ) {
        let mut sw = Switch::new(ports, SECOND)
            .with_profile(profile.clone())
            .with_tolerance(Duration::from_millis(tolerance));
        let mut now = 0u64;
        for s in steps {
            let Step::Frame { port, src, dst } = s else {
                if let Step::Wait(d) = s { now += d; }
                continue;
            };
            let port = port % ports;
            let known_before = sw.lookup(ms(now), dst);
            let f = sw.receive(ms(now), port, &FrameHeader { src, dst }).unwrap();
            // Never back out of the ingress port, never a port that does not exist.
            prop_assert!(!f.egress.contains(&port));
            prop_assert!(f.egress.iter().all(|p| *p < ports));
            if let Some(alt) = &f.alternative {
                prop_assert!(!alt.contains(&port));
            }
            // A known unicast goes to exactly one port (or nowhere when it is the ingress).
            if let Decision::Forwarded { port: to } = f.decision {
                prop_assert_eq!(&f.egress, &BTreeSet::from([to]));
            }
            // Flooding means every port but the ingress.
            if matches!(f.decision, Decision::FloodedUnknown | Decision::FloodedGroup) {
                prop_assert_eq!(f.egress.len(), ports - 1);
            }
            // A valid source is on the ingress port afterwards; a group source never is.
            let dropped = matches!(f.decision, Decision::Dropped(_));
            if src.is_multicast() {
                prop_assert!(sw.fdb(ms(now)).iter().all(|e| e.mac != src));
            } else if !dropped {
                prop_assert_eq!(sw.lookup(ms(now), src), Some(port));
            }
            // After learning, no flooding for that destination until it ages out.
            if !dst.is_multicast() && dst != src && known_before.is_some() {
                prop_assert!(
                    matches!(f.decision, Decision::Forwarded { .. } | Decision::FilteredSamePort)
                        || dropped,
                    "{:?} to a known {} ", f.decision, dst
                );
            }
            // The model's own alternative never equals its prediction.
            prop_assert!(f.alternative.as_ref() != Some(&f.egress));
            now += 1;
        }
        // Every entry listed has a port and ages out after it was learned.
        for e in sw.fdb(ms(now)) {
            prop_assert!(e.port < ports);
            prop_assert!(e.ages_out + Duration::from_millis(tolerance) >= ms(now));
        }
    }
}

#[test]
fn an_interval_of_arrival_widens_the_window() {
    let mut sw = three().with_tolerance(Duration::from_millis(100));
    send(&mut sw, 0, 0, A, C);
    // Sent between 700 and 850: still 150 ms clear of the ageing instant at 1000.
    let f = sw.receive_within(ms(700), ms(850), 1, &h(B, A)).unwrap();
    assert_eq!((f.egress, f.alternative), (ports(&[0]), None));
    // Sent between 700 and 950: the frame may have arrived within 100 ms of it.
    let f = sw.receive_within(ms(700), ms(950), 1, &h(B, A)).unwrap();
    assert_eq!(f.alternative, Some(ports(&[0, 2])));
    // Read between 1150 and 1300: gone for sure; between 800 and 920: present for sure;
    // between 800 and 950: uncertain.
    let presence = |from, to| {
        sw.fdb_within(ms(from), ms(to))
            .into_iter()
            .find(|e| e.mac == A)
            .map(|e| e.presence)
    };
    assert_eq!(presence(1150, 1300), None);
    assert_eq!(presence(800, 890), Some(Presence::Present));
    assert_eq!(presence(800, 950), Some(Presence::Uncertain));
}
