//! The Linux target: socket options, sock_diag states, TCP_INFO, neighbours, route lookups
//! and a SYN on the wire. Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (SKIPPED otherwise).

#[macro_use]
mod common;

use netconform::dut::{Link, Sockets, Tables};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use netconform::dut::linux::LinuxHost;
use netconform::dut::{
    CallOutcome, Dut, DutError, Family, SocketCall, SocketId, SocketOption, StateAnswer,
    StateQuery, TcpState,
};
use netconform::sandbox::{LabConfig, RouteFailure};

fn v4_target() -> LinuxHost {
    LinuxHost::new(LabConfig {
        ipv6: None,
        ..LabConfig::default()
    })
    .unwrap()
}

fn sockets(t: &mut LinuxHost) -> Vec<netconform::dut::TcpSocketState> {
    match t.query(&StateQuery::TcpSockets).unwrap() {
        StateAnswer::TcpSockets(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn endpoints_describe_the_lab() {
    require_netns!();
    let t = LinuxHost::new(LabConfig::default()).unwrap();
    let e = t.endpoints();
    assert_eq!(t.name(), "linux");
    assert_eq!(e.stack_ipv4, Some((Ipv4Addr::new(10, 77, 0, 2), 24)));
    assert_eq!(e.peer_ipv4, Some(Ipv4Addr::new(10, 77, 0, 1)));
    assert_eq!(e.stack_ipv6.map(|v| v.0), Some("fd77::2".parse().unwrap()));
    assert_eq!(e.mtu, 1500);
    assert_eq!(e.harness_mac, t.lab().harness_mac());
    assert_eq!(e.stack_mac, t.lab().target_mac());
    let json = serde_json::to_string(e).unwrap();
    assert!(json.contains("stack_mac"));
}

#[test]
fn every_socket_option_is_applied_and_read_back() {
    require_netns!();
    let mut t = v4_target();
    let s = SocketId(1);
    assert_eq!(
        t.call(&SocketCall::Socket {
            sock: s,
            family: Family::Ipv4
        })
        .unwrap(),
        CallOutcome::Ok
    );
    let cases = [
        (SocketOption::KeepAlive(true), SocketOption::KeepAlive(true)),
        (SocketOption::KeepIdle(7), SocketOption::KeepIdle(7)),
        (SocketOption::KeepInterval(3), SocketOption::KeepInterval(3)),
        (SocketOption::KeepCount(2), SocketOption::KeepCount(2)),
        (SocketOption::NoDelay(true), SocketOption::NoDelay(true)),
        (SocketOption::Linger(Some(0)), SocketOption::Linger(Some(0))),
        (SocketOption::Linger(None), SocketOption::Linger(None)),
        (
            SocketOption::MaxSegment(1000),
            SocketOption::MaxSegment(1000),
        ),
        (
            SocketOption::UserTimeout(1500),
            SocketOption::UserTimeout(1500),
        ),
        (SocketOption::SynCount(1), SocketOption::SynCount(1)),
        // The kernel doubles SO_RCVBUF for its bookkeeping.
        (
            SocketOption::RecvBuffer(65536),
            SocketOption::RecvBuffer(131072),
        ),
    ];
    for (set, want) in cases {
        let got = t
            .call(&SocketCall::SetOption {
                sock: s,
                option: set,
            })
            .unwrap();
        assert_eq!(got, CallOutcome::OptionValue(want), "{set:?}");
    }
    // QUICKACK reads back whatever mode the socket is in now; it must be accepted.
    let got = t
        .call(&SocketCall::SetOption {
            sock: s,
            option: SocketOption::QuickAck(true),
        })
        .unwrap();
    assert!(
        matches!(got, CallOutcome::OptionValue(SocketOption::QuickAck(_))),
        "{got:?}"
    );
    // Out-of-range values are the kernel's errno, not a target error.
    let got = t
        .call(&SocketCall::SetOption {
            sock: s,
            option: SocketOption::SynCount(1000),
        })
        .unwrap();
    assert!(
        matches!(got, CallOutcome::Errno { ref name, .. } if name == "EINVAL"),
        "{got:?}"
    );
    // Unknown sockets are a target error.
    let err = t
        .call(&SocketCall::Close { sock: SocketId(99) })
        .unwrap_err();
    assert!(matches!(err, DutError::UnknownSocket(SocketId(99))));
    assert_eq!(
        t.call(&SocketCall::Close { sock: s }).unwrap(),
        CallOutcome::Ok
    );
}

#[test]
fn listen_shows_in_sock_diag_and_tcp_info() {
    require_netns!();
    let mut t = LinuxHost::new(LabConfig::default()).unwrap();
    let l4 = SocketId(1);
    let l6 = SocketId(2);
    let call = |sock, family, port| SocketCall::Listen {
        sock,
        family,
        addr: None,
        port,
        backlog: 8,
    };
    assert_eq!(
        t.call(&call(l4, Family::Ipv4, 8080)).unwrap(),
        CallOutcome::Ok
    );
    assert_eq!(
        t.call(&call(l6, Family::Ipv6, 8081)).unwrap(),
        CallOutcome::Ok
    );
    // The same port twice is the kernel's EADDRINUSE.
    let again = t.call(&call(SocketId(3), Family::Ipv4, 8080)).unwrap();
    assert!(
        matches!(again, CallOutcome::Errno { ref name, .. } if name == "EADDRINUSE"),
        "{again:?}"
    );
    let all = sockets(&mut t);
    let s4 = all
        .iter()
        .find(|s| s.local.port() == 8080)
        .expect("listener 8080");
    assert_eq!(s4.state, TcpState::Listen);
    assert_eq!(s4.state.to_string(), "LISTEN");
    assert_eq!(s4.sock, Some(l4));
    assert_eq!(
        s4.local,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080)
    );
    assert_eq!(s4.send_queue, 8, "backlog");
    let s6 = all
        .iter()
        .find(|s| s.local.port() == 8081)
        .expect("listener 8081");
    assert_eq!((s6.state, s6.sock), (TcpState::Listen, Some(l6)));
    assert!(s6.local.is_ipv6());
    match t.query(&StateQuery::TcpInfo(l4)).unwrap() {
        StateAnswer::TcpInfo(i) => assert_eq!(i.state, Some(TcpState::Listen)),
        other => panic!("{other:?}"),
    }
    // Accept with nobody connecting times out.
    let t0 = Instant::now();
    let r = t
        .call(&SocketCall::Accept {
            listener: l4,
            timeout_ms: 100,
        })
        .unwrap();
    assert_eq!(r, CallOutcome::TimedOut);
    assert!(t0.elapsed() >= Duration::from_millis(100));
    t.call(&SocketCall::Close { sock: l4 }).unwrap();
    assert!(sockets(&mut t).iter().all(|s| s.local.port() != 8080));
}

#[test]
fn connect_sends_a_syn_and_shows_syn_sent() {
    require_netns!();
    let mut t = LinuxHost::new(LabConfig {
        ipv6: None,
        static_neighbours: true,
        ..LabConfig::default()
    })
    .unwrap();
    let s = SocketId(5);
    t.call(&SocketCall::Socket {
        sock: s,
        family: Family::Ipv4,
    })
    .unwrap();
    t.call(&SocketCall::SetOption {
        sock: s,
        option: SocketOption::MaxSegment(1000),
    })
    .unwrap();
    let r = t
        .call(&SocketCall::Connect {
            sock: s,
            family: Family::Ipv4,
            addr: "10.77.0.1".parse().unwrap(),
            port: 9,
        })
        .unwrap();
    assert_eq!(r, CallOutcome::Ok, "non-blocking connect returns at once");
    let deadline = Instant::now() + Duration::from_secs(1);
    let syn = loop {
        let f = t
            .recv_frame(deadline)
            .unwrap()
            .expect("a SYN before the deadline");
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(&f) else {
            continue;
        };
        if let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport {
            break (
                tcp.syn(),
                tcp.ack(),
                tcp.destination_port(),
                f.len(),
                f[0..6].to_vec(),
            );
        }
    };
    assert!(syn.0 && !syn.1, "SYN without ACK");
    assert_eq!(syn.2, 9);
    assert!(syn.3 <= 1514, "no super-frames with offloads off");
    assert_eq!(
        syn.4,
        t.endpoints().harness_mac.0,
        "sent to the harness MAC (static neighbour)"
    );
    let st = sockets(&mut t);
    let mine = st
        .iter()
        .find(|x| x.sock == Some(s))
        .expect("held socket in sock_diag");
    assert_eq!(mine.state, TcpState::SynSent);
    assert_eq!(mine.remote, "10.77.0.1:9".parse().unwrap());
    let r = t
        .call(&SocketCall::WaitConnected {
            sock: s,
            timeout_ms: 50,
        })
        .unwrap();
    assert_eq!(r, CallOutcome::TimedOut, "nobody answered the SYN");
}

#[test]
fn neighbours_and_routes_through_the_target() {
    require_netns!();
    let mut t = v4_target();
    let e = t.endpoints().clone();
    let (stack, _) = e.stack_ipv4.unwrap();
    let peer = e.peer_ipv4.unwrap();
    t.drain_frames().unwrap();
    t.send_frame(&arp_request(e.harness_mac, peer, stack))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    let reply = loop {
        let f = t.recv_frame(deadline).unwrap().expect("ARP reply");
        if let Some(r) = parse_arp_reply(&f) {
            break r;
        }
    };
    assert_eq!(reply.0, e.stack_mac);
    match t.query(&StateQuery::Neighbours).unwrap() {
        StateAnswer::Neighbours(n) => {
            let entry = n
                .iter()
                .find(|n| n.dst == IpAddr::V4(peer))
                .expect("entry for the peer");
            assert_eq!(entry.lladdr, Some(e.harness_mac));
        }
        other => panic!("{other:?}"),
    }
    match t.query(&StateQuery::RouteGet(IpAddr::V4(peer))).unwrap() {
        StateAnswer::Route { lookup, dev } => {
            assert_eq!(dev.as_deref(), Some(t.lab().target_link().name.as_str()));
            assert_eq!(lookup.src, Some(IpAddr::V4(stack)));
        }
        other => panic!("{other:?}"),
    }
    let dst: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(
        t.query(&StateQuery::RouteGet(dst)).unwrap(),
        StateAnswer::NoRoute {
            dst,
            failure: RouteFailure::NetUnreachable
        }
    );
    match t.query(&StateQuery::Routes).unwrap() {
        StateAnswer::Routes(r) => {
            assert!(
                r.iter()
                    .any(|r| r.dst == Some("10.77.0.0".parse().unwrap()) && r.dst_len == 24)
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn target_is_removed_on_drop() {
    require_netns!();
    let t0 = Instant::now();
    let mut t = v4_target();
    let built = t0.elapsed();
    t.call(&SocketCall::Listen {
        sock: SocketId(1),
        family: Family::Ipv4,
        addr: None,
        port: 80,
        backlog: 1,
    })
    .unwrap();
    // Empty for anonymous namespaces (under `unshare -rn`): they die with their last fd.
    let paths: Vec<_> = [t.lab().harness(), t.lab().target()]
        .iter()
        .filter_map(|n| n.path().map(|p| p.to_path_buf()))
        .collect();
    let t1 = Instant::now();
    drop(t);
    let dropped = t1.elapsed();
    assert!(paths.iter().all(|p| !p.exists()));
    assert!(host_ncf_links().is_empty());
    eprintln!("FIGURE LinuxHost new {built:?}, drop {dropped:?}");
}

/// The harness's side of one IPv4 TCP connection, frame by frame.
struct Peer {
    harness_mac: [u8; 6],
    stack_mac: [u8; 6],
    peer_ip: [u8; 4],
    stack_ip: [u8; 4],
    peer_port: u16,
    stack_port: u16,
}

/// One TCP segment the stack sent: (seq, ack, SYN, ACK, FIN, RST, payload).
type Seg = (u32, u32, bool, bool, bool, bool, Vec<u8>);

impl Peer {
    fn segment(&self, seq: u32, ack: Option<u32>, syn: bool, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut b = etherparse::PacketBuilder::ethernet2(self.harness_mac, self.stack_mac)
            .ipv4(self.peer_ip, self.stack_ip, 64)
            .tcp(self.peer_port, self.stack_port, seq, 64240);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn next(&self, t: &mut LinuxHost, within: Duration) -> Option<Seg> {
        let deadline = Instant::now() + within;
        while let Some(f) = t.recv_frame(deadline).unwrap() {
            let Ok(p) = etherparse::SlicedPacket::from_ethernet(&f) else {
                continue;
            };
            if let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport {
                if tcp.destination_port() != self.peer_port {
                    continue;
                }
                return Some((
                    tcp.sequence_number(),
                    tcp.acknowledgment_number(),
                    tcp.syn(),
                    tcp.ack(),
                    tcp.fin(),
                    tcp.rst(),
                    tcp.payload().to_vec(),
                ));
            }
        }
        None
    }
}

fn state_of(t: &mut LinuxHost, peer_port: u16) -> Option<(TcpState, Option<SocketId>)> {
    sockets(t)
        .into_iter()
        .find(|s| s.remote.port() == peer_port)
        .map(|s| (s.state, s.sock))
}

#[test]
fn passive_open_data_and_active_close_down_to_time_wait() {
    require_netns!();
    let mut t = LinuxHost::new(LabConfig {
        ipv6: None,
        static_neighbours: true,
        ..LabConfig::default()
    })
    .unwrap();
    let e = t.endpoints().clone();
    let p = Peer {
        harness_mac: e.harness_mac.0,
        stack_mac: e.stack_mac.0,
        peer_ip: e.peer_ipv4.unwrap().octets(),
        stack_ip: e.stack_ipv4.unwrap().0.octets(),
        peer_port: 40000,
        stack_port: 80,
    };
    let wait = Duration::from_secs(1);
    let l = SocketId(1);
    t.call(&SocketCall::Listen {
        sock: l,
        family: Family::Ipv4,
        addr: None,
        port: 80,
        backlog: 4,
    })
    .unwrap();

    // SYN -> SYN-ACK (the request socket shows as SYN-RECEIVED, held by nobody).
    t.send_frame(&p.segment(1000, None, true, false, b""))
        .unwrap();
    let (iss, ack, syn, is_ack, ..) = p.next(&mut t, wait).expect("SYN-ACK");
    assert!(syn && is_ack);
    assert_eq!(ack, 1001);
    assert_eq!(state_of(&mut t, 40000), Some((TcpState::SynReceived, None)));

    // ACK -> ESTABLISHED, accept hands out a target-chosen id.
    t.send_frame(&p.segment(1001, Some(iss + 1), false, false, b""))
        .unwrap();
    let CallOutcome::NewSocket(c) = t
        .call(&SocketCall::Accept {
            listener: l,
            timeout_ms: 1000,
        })
        .unwrap()
    else {
        panic!("accept failed");
    };
    assert!(c.0 >= SocketId::ACCEPTED_BASE);
    assert_eq!(
        state_of(&mut t, 40000),
        Some((TcpState::Established, Some(c)))
    );

    // Data both ways.
    t.send_frame(&p.segment(1001, Some(iss + 1), false, false, b"hello"))
        .unwrap();
    let (_, ack, ..) = p.next(&mut t, wait).expect("ACK of our data");
    assert_eq!(ack, 1006);
    let got = t
        .call(&SocketCall::Recv {
            sock: c,
            max: 100,
            timeout_ms: 1000,
        })
        .unwrap();
    assert_eq!(got, CallOutcome::Data(b"hello".to_vec()));
    assert_eq!(
        t.call(&SocketCall::Send {
            sock: c,
            data: b"world".to_vec()
        })
        .unwrap(),
        CallOutcome::Sent(5)
    );
    let (seq, _, _, _, _, _, payload) = p.next(&mut t, wait).expect("data from the stack");
    assert_eq!((seq, payload.as_slice()), (iss + 1, &b"world"[..]));
    match t.query(&StateQuery::TcpInfo(c)).unwrap() {
        StateAnswer::TcpInfo(i) => {
            assert_eq!(i.state, Some(TcpState::Established));
            assert!(
                !i.timestamps && !i.sack && !i.window_scaling,
                "our SYN offered no options"
            );
            assert_eq!(i.snd_mss, 536, "no MSS option: RFC 9293 default 536");
        }
        other => panic!("{other:?}"),
    }

    // Close from the stack: FIN-WAIT-1 (the socket is no longer held), then TIME-WAIT.
    t.call(&SocketCall::Close { sock: c }).unwrap();
    let fin = loop {
        let s = p.next(&mut t, wait).expect("FIN");
        if s.4 {
            break s;
        }
    };
    assert_eq!(fin.0, iss + 6);
    assert_eq!(state_of(&mut t, 40000), Some((TcpState::FinWait1, None)));
    t.send_frame(&p.segment(1006, Some(iss + 7), false, true, b""))
        .unwrap();
    let (_, ack, ..) = p.next(&mut t, wait).expect("ACK of our FIN");
    assert_eq!(ack, 1007);
    assert_eq!(state_of(&mut t, 40000), Some((TcpState::TimeWait, None)));
    assert_eq!(TcpState::TimeWait.to_string(), "TIME-WAIT");
}
