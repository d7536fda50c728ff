//! Each invariant check of the model targets fails on a hand-built bad state: the checks
//! can catch what they claim to.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use crate::models::nat::{Flow, Mapping, NatProfile};
use crate::models::route::{AddError, AnswerKind, Route, RouteAnswer, RouteKind, RouteProfile};
use crate::models::switch::{Decision, Forwarding, Learning};
use crate::models::tcp::{Call, Flags, OptionsOut, Output, SegmentOut, SeqFrom, State};
use crate::time::{Duration, Instant};

use super::{arp, forward, nat, route, switch, tcp, tls};

fn snap(state: State, snd_una: u32, snd_nxt: u32, rcv_nxt: u32) -> tcp::Snapshot {
    tcp::Snapshot {
        state,
        snd_una,
        snd_nxt,
        rcv_nxt,
        unread: 0,
    }
}

fn seg(flags: Flags, seq: u32, ack: u32, len: u32) -> Output {
    Output::Segment(SegmentOut {
        flags,
        seq,
        seq_from: SeqFrom::Iss,
        delayable: false,
        ack,
        len,
        options: OptionsOut::default(),
        reason: "test",
    })
}

#[test]
fn tcp_checks_catch_bad_steps() {
    let est = snap(State::Established, 1, 1, 100);
    assert!(tcp::check_step(est, est, None, &[]).is_ok());
    // Not an edge of the diagram.
    assert!(tcp::check_step(est, snap(State::SynSent, 1, 1, 100), None, &[]).is_err());
    assert!(!tcp::transition_allowed(
        State::TimeWait,
        State::Established
    ));
    assert!(tcp::transition_allowed(State::SynReceived, State::Closing));
    // SND.UNA beyond SND.NXT; RCV.NXT going back.
    assert!(tcp::check_step(est, snap(State::Established, 5, 1, 100), None, &[]).is_err());
    assert!(tcp::check_step(est, snap(State::Established, 1, 1, 99), None, &[]).is_err());
    // A SYN in ESTABLISHED; text before ESTABLISHED; an ACK beyond RCV.NXT.
    assert!(tcp::check_step(est, est, None, &[seg(Flags::SYN_ACK, 0, 100, 0)]).is_err());
    let sent = snap(State::SynSent, 0, 1, 0);
    let data = snap(State::Established, 1, 11, 100);
    assert!(tcp::check_step(sent, data, None, &[seg(Flags::PSH_ACK, 1, 100, 10)]).is_err());
    assert!(tcp::check_step(est, data, None, &[seg(Flags::PSH_ACK, 1, 100, 10)]).is_ok());
    assert!(tcp::check_step(est, est, None, &[seg(Flags::ACK, 1, 101, 0)]).is_err());
    // Delivering more than asked.
    let unread = tcp::Snapshot { unread: 10, ..est };
    let call = Some(Call::Receive(5));
    assert!(tcp::check_step(unread, est, call, &[Output::Deliver(10)]).is_err());
}

#[test]
fn route_checks_catch_wrong_answers() {
    let ifaces = vec![
        crate::models::route::Interface {
            index: 1,
            name: "lo".into(),
            loopback: true,
            addrs: vec!["127.0.0.1/8".parse().unwrap()],
        },
        crate::models::route::Interface {
            index: 2,
            name: "p0".into(),
            loopback: false,
            addrs: vec!["10.0.1.1/24".parse().unwrap()],
        },
    ];
    let mut r = route::Reference::new(RouteProfile::linux(), ifaces);
    let gw = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 9));
    let default = Route {
        dst: "0.0.0.0/0".parse().unwrap(),
        kind: RouteKind::Unicast {
            gateway: Some(gw),
            oif: 2,
        },
        metric: None,
        prefsrc: None,
    };
    assert_eq!(r.add(&default), Ok(()));
    assert_eq!(r.add(&default), Err(None), "EEXIST the second time");
    let err = AddError::Exists { route: default };
    assert!(route::check_add(Ok(()), &Err(err)).is_err());
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let right = RouteAnswer {
        kind: AnswerKind::Unicast,
        oif: 2,
        gateway: Some(gw),
        src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))),
    };
    assert!(route::check_lookup(&r, dst, None, &Ok(right)).is_ok());
    // The longest match is the connected /24, not the default route.
    let on_link = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 7));
    assert!(route::check_lookup(&r, on_link, None, &Ok(right)).is_err());
    // A source that is not the stack's.
    let bad_src = RouteAnswer {
        src: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 200))),
        ..right
    };
    assert!(route::check_lookup(&r, dst, None, &Ok(bad_src)).is_err());
}

#[test]
fn switch_checks_catch_bad_forwarding() {
    let want = (
        BTreeSet::from([1]),
        Learning::Created,
        Decision::Forwarded { port: 1 },
    );
    let mut got = Forwarding {
        decision: Decision::Forwarded { port: 1 },
        egress: BTreeSet::from([1]),
        alternative: None,
        learning: Learning::Created,
    };
    assert!(switch::check_frame(0, Duration::ZERO, &want, &got).is_ok());
    got.egress = BTreeSet::from([0, 1]);
    assert!(
        switch::check_frame(0, Duration::ZERO, &want, &got).is_err(),
        "ingress"
    );
    got.egress = BTreeSet::from([1]);
    got.alternative = Some(BTreeSet::from([2]));
    assert!(
        switch::check_frame(0, Duration::ZERO, &want, &got).is_err(),
        "no tolerance"
    );
    // The database against a reference that saw a station the switch did not learn.
    let sw = crate::models::switch::Switch::new(2, Duration::from_millis(10));
    let mut reference = switch::Reference {
        ports: 2,
        ageing: Duration::from_millis(10),
        ..Default::default()
    };
    let mac = crate::wire::MacAddr([2, 0, 0, 0, 0, 1]);
    assert!(switch::check_fdb(&sw, &reference, Instant::ZERO).is_ok());
    reference.frame(Instant::ZERO, 1, mac, crate::wire::MacAddr::BROADCAST);
    assert!(switch::check_fdb(&sw, &reference, Instant::ZERO).is_err());
    // Aged out in the reference too: equal again.
    assert!(switch::check_fdb(&sw, &reference, Instant::from_millis(10)).is_ok());
}

#[test]
fn nat_checks_catch_clashing_mappings() {
    let ext = Ipv4Addr::new(198, 51, 100, 1);
    let remote = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 53);
    let a = Flow::udp(
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 1000),
        remote,
    );
    let b = Flow::udp(
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 3), 1000),
        remote,
    );
    let m = |flow, port| Mapping {
        flow,
        external: SocketAddrV4::new(ext, port),
    };
    assert!(nat::check_table(&NatProfile::linux(), &[m(a, 1000), m(b, 1001)]).is_ok());
    // Two flows with one reply tuple.
    assert!(nat::check_table(&NatProfile::linux(), &[m(a, 1000), m(b, 1000)]).is_err());
    // RFC 4787: one inside endpoint, two external ports.
    let a2 = Flow {
        dst: SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 2), 53),
        ..a
    };
    assert!(nat::check_table(&NatProfile::linux(), &[m(a, 1000), m(a2, 1001)]).is_ok());
    assert!(nat::check_table(&NatProfile::rfc(), &[m(a, 1000), m(a2, 1001)]).is_err());
    // An external address that is not the NAT's.
    let elsewhere = Mapping {
        flow: a,
        external: SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 1000),
    };
    assert!(nat::check_table(&NatProfile::linux(), &[elsewhere]).is_err());
}

#[test]
fn tls_checks_catch_wrong_expansions_and_records() {
    use crate::models::tls::{
        Aead, HashAlg, RecordProtection13, TlsModelError, TrafficKeys, try_hkdf_expand_label,
    };
    let secret = [7u8; 32];
    let got = try_hkdf_expand_label(HashAlg::Sha256, &secret, "key", b"", 16);
    assert!(tls::check_expand(HashAlg::Sha256, &secret, "key", b"", 16, &got).is_ok());
    let mut wrong = got.clone().unwrap();
    wrong[0] ^= 1;
    assert!(tls::check_expand(HashAlg::Sha256, &secret, "key", b"", 16, &Ok(wrong)).is_err());
    let refused = Err(TlsModelError::LabelTooLong { len: 3 });
    assert!(tls::check_expand(HashAlg::Sha256, &secret, "key", b"", 16, &refused).is_err());
    // A receiver under another key cannot open: the round trip check fails.
    let keys = |b| TrafficKeys {
        key: vec![b; 16],
        iv: vec![b; 12],
    };
    let mut seal = RecordProtection13::new(Aead::Aes128Gcm, &keys(1)).unwrap();
    let mut open = RecordProtection13::new(Aead::Aes128Gcm, &keys(2)).unwrap();
    assert!(tls::check_record13(&mut seal, &mut open, 23, b"hi", 0, None).is_err());
    let mut seal = RecordProtection13::new(Aead::Aes128Gcm, &keys(1)).unwrap();
    let mut open = RecordProtection13::new(Aead::Aes128Gcm, &keys(1)).unwrap();
    assert!(tls::check_record13(&mut seal, &mut open, 23, b"hi", 0, Some((9, 3))).is_ok());
}

#[test]
fn forward_checks_catch_wrong_decisions() {
    use crate::models::forward::{Decision as D, DiscardReason};
    use crate::wire::{Frame, MacAddr, UdpDatagram};
    let r = forward_router();
    let mut f = Frame::udp_v4(
        MacAddr([2, 0, 0, 0, 0, 0x20]),
        MacAddr([2, 0, 0, 0, 0, 0x10]),
        Ipv4Addr::new(10, 0, 1, 2),
        Ipv4Addr::new(10, 0, 2, 2),
        UdpDatagram::new(1, 2, vec![0; 4]),
    );
    if let crate::wire::Network::Ipv4(p) = &mut f.network {
        p.ttl = 1;
    }
    f.fill_computed();
    let bytes = f.emit();
    let d = r.receive(0, &bytes);
    assert!(forward::check_decision(&r, 0, &bytes, &d).is_ok(), "{d:?}");
    assert!(matches!(d, D::Error { .. }), "{d:?}");
    // Forwarding a TTL-1 packet, or dropping it as not for us, is caught.
    let mut bad = d.clone();
    if let D::Error { emission, .. } = &d {
        bad = D::Forward(emission.clone());
    }
    assert!(forward::check_decision(&r, 0, &bytes, &bad).is_err());
    let not_for_us = D::Discard(DiscardReason::NotForUs);
    assert!(forward::check_decision(&r, 0, &bytes, &not_for_us).is_err());
    assert!(forward::check_decision(&r, 0, &bytes, &D::Local).is_err());
}

fn forward_router() -> crate::models::forward::Router {
    use crate::models::forward::{ForwardProfile, Router, RouterPort};
    use crate::models::route::{Interface, RouteTable};
    use crate::wire::MacAddr;
    let iface = |index, addr: &str| Interface {
        index,
        name: format!("if{index}"),
        loopback: index == 1,
        addrs: vec![addr.parse().unwrap()],
    };
    let table = RouteTable::new(
        RouteProfile::linux(),
        vec![
            iface(1, "127.0.0.1/8"),
            iface(2, "10.0.1.1/24"),
            iface(3, "10.0.2.1/24"),
        ],
    );
    Router::new(
        ForwardProfile::linux(),
        table,
        vec![
            RouterPort {
                ifindex: 2,
                mac: MacAddr([2, 0, 0, 0, 0, 0x10]),
            },
            RouterPort {
                ifindex: 3,
                mac: MacAddr([2, 0, 0, 0, 0, 0x11]),
            },
        ],
    )
}

#[test]
fn arp_checks_catch_bad_outputs() {
    use crate::models::arp::{
        ArpHost, ArpParams, ArpPolicy, ArpProfile, HostConfig, Output, Packet, PacketId, Timed,
    };
    use crate::wire::MacAddr;
    let ms = Duration::from_millis;
    let cfg = HostConfig {
        mac: MacAddr([2, 0, 0, 0, 0, 0x10]),
        addr: Ipv4Addr::new(10, 0, 0, 1),
        prefix_len: 24,
        gateway: None,
        forwarding: false,
        policy: ArpPolicy::default(),
        params: ArpParams {
            reachable: ms(30),
            base_reachable: ms(30),
            retrans: ms(10),
            delay_probe: ms(5),
            locktime: ms(10),
            ucast_probes: 3,
            mcast_probes: 3,
            app_probes: 0,
            mcast_reprobes: 0,
            tick: ms(4),
            timer_floor: ms(8),
        },
        expiring: None,
        rfc4861: None,
        tick_nud: None,
    };
    let mut host = ArpHost::new(cfg, ArpProfile::linux());
    let nb = Ipv4Addr::new(10, 0, 0, 2);
    let packet = Packet {
        id: PacketId::Local(1),
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: nb,
    };
    let mut history = arp::History::default();
    history.sent.insert(packet.id, packet);
    // The entry is for an address nothing asked for.
    let out = host.send(Instant::ZERO, packet);
    assert!(arp::check_host(&host, &out, &mut arp::History::default()).is_err());
    history.known.insert(nb);
    assert!(arp::check_host(&host, &out, &mut history).is_ok());
    // A request to the zero MAC; an output from the future; a packet sent twice.
    let at = |t: u64, output| Timed {
        at: Instant::from_millis(t),
        output,
    };
    let zero = Output::Request {
        target: nb,
        eth_dst: MacAddr::ZERO,
        sender_ip: Ipv4Addr::new(10, 0, 0, 1),
    };
    assert!(arp::check_host(&host, &[at(0, zero.clone())], &mut history).is_err());
    let mut bcast = zero;
    if let Output::Request { eth_dst, .. } = &mut bcast {
        *eth_dst = MacAddr::BROADCAST;
    }
    assert!(arp::check_host(&host, &[at(0, bcast.clone())], &mut history).is_ok());
    assert!(arp::check_host(&host, &[at(5, bcast)], &mut history).is_err());
    let tx = Output::Transmit {
        packet,
        next_hop: nb,
        dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
    };
    assert!(arp::check_host(&host, &[at(0, tx.clone())], &mut history).is_ok());
    assert!(arp::check_host(&host, &[at(0, tx)], &mut history).is_err());
    // A timer left due.
    history.now = Instant::from_millis(1000);
    assert!(arp::check_host(&host, &[], &mut history).is_err());
}

#[test]
fn route_contents_check_catches_a_table_that_differs_from_the_reference() {
    use crate::models::route::{Interface, RouteTable};
    let ifaces = vec![
        Interface {
            index: 1,
            name: "lo".into(),
            loopback: true,
            addrs: vec!["127.0.0.1/8".parse().unwrap()],
        },
        Interface {
            index: 2,
            name: "p0".into(),
            loopback: false,
            addrs: vec![
                "10.0.1.1/24".parse().unwrap(),
                "fd00:1::1/64".parse().unwrap(),
            ],
        },
    ];
    let mut table = RouteTable::new(RouteProfile::linux(), ifaces.clone());
    let mut r = route::Reference::new(RouteProfile::linux(), ifaces);
    assert_eq!(route::check_contents(&table, &r), Ok(()));
    let default = Route {
        dst: "0.0.0.0/0".parse().unwrap(),
        kind: RouteKind::Unicast {
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 9))),
            oif: 2,
        },
        metric: Some(7),
        prefsrc: None,
    };
    assert!(table.add(default).is_ok());
    // The table holds a route the reference does not.
    assert!(route::check_contents(&table, &r).is_err());
    assert_eq!(r.add(&default), Ok(()));
    assert_eq!(route::check_contents(&table, &r), Ok(()));
    assert_eq!(table.len(), table.routes().count());
    // The reference holds one with another metric, another table, or one more route.
    let mut wrong = r.clone();
    wrong.routes.last_mut().unwrap().metric = 8;
    assert!(route::check_contents(&table, &wrong).is_err());
    let mut wrong = r.clone();
    wrong.routes.last_mut().unwrap().local = true;
    assert!(route::check_contents(&table, &wrong).is_err());
    let mut wrong = r.clone();
    wrong.routes.push(*r.routes.last().unwrap());
    assert!(route::check_contents(&table, &wrong).is_err());
}

#[test]
fn determinism_check_compares_every_output() {
    use super::same_transcripts;
    assert!(same_transcripts("model_x", &[1, 2], &[1, 2]).is_ok());
    assert!(same_transcripts("model_x", &[1, 2], &[1, 3]).is_err());
    assert!(same_transcripts("model_x", &[1, 2], &[1]).is_err());
    // A difference deep inside an output (one byte of a segment's option) is one.
    let a = vec![seg(Flags::ACK, 1, 100, 0)];
    let mut b = a.clone();
    if let Output::Segment(s) = &mut b[0] {
        s.options.mss = Some(1460);
    }
    let same = std::slice::from_ref(&a);
    assert!(same_transcripts("model_tcp", same, same).is_ok());
    assert!(same_transcripts("model_tcp", &[a], &[b]).is_err());
}

#[test]
fn tls_expand_check_reads_every_block() {
    use crate::models::tls::{HashAlg, try_hkdf_expand_label};
    // A secret of Hash.length goes through the hkdf crate, a shorter one through the
    // model's own HMAC chain: both against the reference written from RFC 5869.
    for (alg, secret_len) in [
        (HashAlg::Sha256, 32),
        (HashAlg::Sha384, 48),
        (HashAlg::Sha256, 5),
        (HashAlg::Sha384, 0),
    ] {
        let secret = vec![0x42; secret_len];
        let len = 255 * alg.output_len();
        let got = try_hkdf_expand_label(alg, &secret, "fuzz", b"ctx", len);
        assert!(tls::check_expand(alg, &secret, "fuzz", b"ctx", len, &got).is_ok());
        // One bit wrong in the last block of 255 is found.
        let mut wrong = got.clone().unwrap();
        wrong[len - 1] ^= 1;
        assert!(tls::check_expand(alg, &secret, "fuzz", b"ctx", len, &Ok(wrong)).is_err());
        // One byte more than 255 blocks must be refused.
        let over = try_hkdf_expand_label(alg, &secret, "fuzz", b"ctx", len + 1);
        assert!(over.is_err());
        assert!(tls::check_expand(alg, &secret, "fuzz", b"ctx", len + 1, &over).is_ok());
    }
}

/// The lengths model_tls asks for still reach RFC 5869's limit and the first length past
/// it, for both hashes, and every short length up to three SHA-256 blocks; the PRF's reach
/// every multiple of both block sizes up to five SHA-256 blocks.
#[test]
fn tls_lengths_reach_the_limits() {
    use crate::models::tls::HashAlg;
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        let max = 255 * alg.output_len();
        let lens: std::collections::BTreeSet<usize> = (0..=u16::MAX)
            .map(|raw| tls::expand_len(alg, raw))
            .collect();
        assert!(lens.contains(&max) && lens.contains(&(max + 1)), "{alg:?}");
        assert!((0..=96).all(|l| lens.contains(&l)), "{alg:?}");
        // Long lengths are rare: one raw value in 256 at most.
        let long = (0..=u16::MAX)
            .filter(|&raw| tls::expand_len(alg, raw) > 96)
            .count();
        assert_eq!(long, 256, "{alg:?}");
    }
    let prf: std::collections::BTreeSet<usize> = (0..=u16::MAX).map(tls::prf_len).collect();
    assert!(
        [0, 31, 32, 33, 47, 48, 49, 96, 144, 159]
            .iter()
            .all(|l| prf.contains(l))
    );
}
