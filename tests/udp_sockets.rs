//! UDP sockets on every device under test that has sockets: smoltcp in-process (on its
//! virtual clock), the Linux kernel in a namespace, and the kernel through the reference
//! agent (`netconform-agent-linux`, agent protocol 1.1).
//!
//! The harness speaks for the peer frame by frame, as the checks do: it sends datagrams to a
//! bound socket and the stack's `RecvFrom` must return exactly them with their source; the
//! stack's `SendTo` must put a frame on the wire with the right addresses, ports, payload and a
//! valid checksum; `RecvFrom` with nothing queued times out; a datagram to a port nobody is
//! bound to draws ICMP port unreachable (RFC 1122 §4.1.3.1, a SHOULD, which all three do;
//! RFC 792 and RFC 4443 §3.1 for the message). The namespace tests need CAP_NET_ADMIN and
//! CAP_SYS_ADMIN (SKIPPED otherwise).

#[macro_use]
mod common;

use netconform::dut::Sockets;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use netconform::dut::build::DutKind;
use netconform::dut::external::{ExternalConfig, ExternalStack, InterfaceKind};
use netconform::dut::smoltcp::{SmoltcpHost, smoltcp_config_for};
use netconform::dut::{CallOutcome, Dut, DutError, Endpoints, SocketCall, SocketId};
use netconform::engine::{Needs, Session};
use netconform::time::Duration;
use netconform::wire::{Frame, Icmpv4Kind, Icmpv6Kind, Network, Transport, UdpDatagram};

const AGENT: &str = env!("CARGO_BIN_EXE_netconform-agent-linux");

/// How long any answer of the stack may take (a bound; the virtual clock makes it free).
const WAIT: Duration = Duration::from_millis(2000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Smoltcp,
    Linux,
    External,
}

/// The external target's configuration: the kernel through the reference agent.
fn reference_agent() -> ExternalConfig {
    agent_config("linux-agent", vec![AGENT.to_string()])
}

fn agent_config(stack: &str, command: Vec<String>) -> ExternalConfig {
    ExternalConfig {
        path: PathBuf::from(file!()),
        stack: stack.into(),
        slow: Vec::new(),
        jobs: None,
        command,
        env: BTreeMap::new(),
        timeout: StdDuration::from_secs(5),
        answer_lag: StdDuration::ZERO,
        interface: InterfaceKind::Veth,
        kernel_addresses: true,
        fixed: None,
    }
}

/// A fresh host of kind `dut` with the peer pre-resolved (no ARP or ND before the first
/// datagram), IPv6 when `ipv6`.
fn build(dut: Host, ipv6: bool) -> Box<dyn Dut> {
    let kind = match dut {
        Host::Smoltcp => DutKind::Smoltcp,
        Host::Linux => DutKind::Linux,
        Host::External => DutKind::External(Box::new(reference_agent())),
    };
    kind.build(&Needs::scenario(ipv6))
        .unwrap_or_else(|e| panic!("building {dut:?}: {e}"))
}

/// Runs `scenario` on a fresh `dut` (the namespace targets only when privileged).
fn run(dut: Host, test: &str, ipv6: bool, scenario: fn(&mut Session<'_>, bool, Host)) {
    if dut != Host::Smoltcp && !netconform::sandbox::require_netns(&format!("{test}::{dut:?}")) {
        return;
    }
    let mut target = build(dut, ipv6);
    let mut session = Session::new(target.as_mut());
    scenario(&mut session, ipv6, dut);
    // Dropping the target removes its namespaces (and ends the agent).
}

/// One test per device under test for `scenario`, in a module named after it.
macro_rules! on_every_dut {
    ($name:ident, $ipv6:expr, $scenario:path) => {
        mod $name {
            use super::*;

            #[test]
            fn smoltcp() {
                run(Host::Smoltcp, stringify!($name), $ipv6, $scenario);
            }

            #[test]
            fn linux() {
                run(Host::Linux, stringify!($name), $ipv6, $scenario);
            }

            #[test]
            fn external_agent() {
                run(Host::External, stringify!($name), $ipv6, $scenario);
            }
        }
    };
}

/// The peer's and the stack's address in the family of the test.
fn addresses(e: &Endpoints, ipv6: bool) -> (IpAddr, IpAddr) {
    if ipv6 {
        (
            IpAddr::V6(e.peer_ipv6.expect("peer IPv6")),
            IpAddr::V6(e.stack_ipv6.expect("stack IPv6").0),
        )
    } else {
        (
            IpAddr::V4(e.peer_ipv4.expect("peer IPv4")),
            IpAddr::V4(e.stack_ipv4.expect("stack IPv4").0),
        )
    }
}

fn unspecified(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// A datagram from the peer's `src_port` to the stack's `dst_port`.
fn from_peer(e: &Endpoints, ipv6: bool, src_port: u16, dst_port: u16, payload: &[u8]) -> Frame {
    let datagram = UdpDatagram::new(src_port, dst_port, payload.to_vec());
    match addresses(e, ipv6) {
        (IpAddr::V4(peer), IpAddr::V4(stack)) => {
            Frame::udp_v4(e.harness_mac, e.stack_mac, peer, stack, datagram)
        }
        (IpAddr::V6(peer), IpAddr::V6(stack)) => {
            Frame::udp_v6(e.harness_mac, e.stack_mac, peer, stack, datagram)
        }
        _ => unreachable!("one family"),
    }
}

/// The IP packet inside `frame` as the stack received it (no Ethernet header or padding).
fn ip_bytes(frame: &Frame, ipv6: bool, payload_len: usize) -> Vec<u8> {
    let header = if ipv6 { 40 } else { 20 };
    frame.emit()[14..14 + header + 8 + payload_len].to_vec()
}

fn call(s: &mut Session<'_>, call: SocketCall) -> CallOutcome {
    let text = call.to_string();
    s.call(&text, call)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn udp_bind(s: &mut Session<'_>, sock: u32, addr: IpAddr, port: u16) -> CallOutcome {
    call(
        s,
        SocketCall::UdpBind {
            sock: SocketId(sock),
            addr,
            port,
        },
    )
}

fn recv_from(s: &mut Session<'_>, sock: u32, max: usize, timeout_ms: u64) -> CallOutcome {
    call(
        s,
        SocketCall::RecvFrom {
            sock: SocketId(sock),
            max,
            timeout_ms,
        },
    )
}

fn send_to(s: &mut Session<'_>, sock: u32, to: SocketAddr, data: &[u8]) -> CallOutcome {
    call(
        s,
        SocketCall::SendTo {
            sock: SocketId(sock),
            addr: to.ip(),
            port: to.port(),
            data: data.to_vec(),
        },
    )
}

fn errno(name: &str) -> impl Fn(&CallOutcome) -> bool + '_ {
    move |o| matches!(o, CallOutcome::Errno { name: n, .. } if n == name)
}

/// The next frame the stack sends to the peer, parsed; panics when none comes.
fn next(s: &mut Session<'_>, step: &str) -> Frame {
    let observed = s
        .next_frame(step, WAIT)
        .unwrap()
        .unwrap_or_else(|| panic!("{step}: the stack sent nothing within {WAIT}"));
    observed
        .parsed
        .unwrap_or_else(|e| panic!("{step}: a malformed frame: {e}"))
}

/// The IP source, destination and UDP datagram of `frame`, with the IPv4 header checksum
/// checked; panics when it is not UDP.
fn udp_of(frame: &Frame) -> (IpAddr, IpAddr, &UdpDatagram) {
    match &frame.network {
        Network::Ipv4(p) => {
            assert!(
                p.checksum_valid,
                "IPv4 header checksum: {}",
                frame.summary()
            );
            match &p.transport {
                Transport::Udp(d) => (IpAddr::V4(p.src), IpAddr::V4(p.dst), d),
                _ => panic!("not UDP: {}", frame.summary()),
            }
        }
        Network::Ipv6(p) => match &p.transport {
            Transport::Udp(d) => (IpAddr::V6(p.src), IpAddr::V6(p.dst), d),
            _ => panic!("not UDP: {}", frame.summary()),
        },
        _ => panic!("not IP: {}", frame.summary()),
    }
}

/// The datagram the peer sends to a bound socket comes out of `RecvFrom` exactly, with its
/// source; so does one of length 0 (a datagram, not an end of stream); one longer than `max`
/// gives its first `max` bytes and the rest is gone. Nothing is sent in answer.
fn recv_from_returns_the_peers_datagram(s: &mut Session<'_>, ipv6: bool, _: Host) {
    let e = s.endpoints().clone();
    let (peer, stack) = addresses(&e, ipv6);
    assert_eq!(udp_bind(s, 1, stack, 5353), CallOutcome::Ok);

    s.send("datagram", &from_peer(&e, ipv6, 40000, 5353, b"hello, dut"))
        .unwrap();
    assert_eq!(
        recv_from(s, 1, 1500, 2000),
        CallOutcome::Datagram {
            from: SocketAddr::new(peer, 40000),
            data: b"hello, dut".to_vec(),
        }
    );

    s.send("empty datagram", &from_peer(&e, ipv6, 40001, 5353, b""))
        .unwrap();
    assert_eq!(
        recv_from(s, 1, 1500, 2000),
        CallOutcome::Datagram {
            from: SocketAddr::new(peer, 40001),
            data: Vec::new(),
        }
    );

    let long: Vec<u8> = (0..100).collect();
    s.send("long datagram", &from_peer(&e, ipv6, 40002, 5353, &long))
        .unwrap();
    assert_eq!(
        recv_from(s, 1, 10, 2000),
        CallOutcome::Datagram {
            from: SocketAddr::new(peer, 40002),
            data: long[..10].to_vec(),
        }
    );
    assert_eq!(recv_from(s, 1, 1500, 100), CallOutcome::TimedOut);

    let answered = s.barrier("barrier", ipv6, WAIT).unwrap();
    assert!(
        answered.is_empty(),
        "datagrams to a bound port drew {:?}",
        answered.iter().map(|o| o.summary()).collect::<Vec<_>>()
    );
    assert_eq!(
        call(s, SocketCall::Close { sock: SocketId(1) }),
        CallOutcome::Ok
    );
}

/// `SendTo` puts one frame on the wire: the stack's MAC, address and port to the peer's,
/// the payload, a valid checksum (and a valid IPv4 header checksum); an empty payload is a
/// datagram of length 0. A socket bound to any address and port 0 sends from the stack's
/// address and a port the stack picked, and receives the answer sent there.
fn send_to_puts_the_datagram_on_the_wire(s: &mut Session<'_>, ipv6: bool, _: Host) {
    let e = s.endpoints().clone();
    let (peer, stack) = addresses(&e, ipv6);
    assert_eq!(udp_bind(s, 1, stack, 5353), CallOutcome::Ok);

    let to = SocketAddr::new(peer, 40000);
    assert_eq!(send_to(s, 1, to, b"from the dut"), CallOutcome::Sent(12));
    let frame = next(s, "the datagram");
    assert_eq!(
        (frame.ethernet.src, frame.ethernet.dst),
        (e.stack_mac, e.harness_mac)
    );
    let (src, dst, d) = udp_of(&frame);
    assert_eq!((src, dst), (stack, peer));
    assert_eq!((d.src_port, d.dst_port), (5353, 40000));
    assert_eq!(d.payload, b"from the dut");
    assert_eq!(d.checksum_valid, Some(true), "{}", frame.summary());

    assert_eq!(send_to(s, 1, to, b""), CallOutcome::Sent(0));
    let frame = next(s, "the empty datagram");
    let (_, _, d) = udp_of(&frame);
    assert_eq!((d.src_port, d.dst_port), (5353, 40000));
    assert!(d.payload.is_empty());
    assert_eq!(d.checksum_valid, Some(true));

    assert_eq!(udp_bind(s, 2, unspecified(ipv6), 0), CallOutcome::Ok);
    assert_eq!(
        send_to(s, 2, SocketAddr::new(peer, 53), b"query"),
        CallOutcome::Sent(5)
    );
    let frame = next(s, "the datagram from a port the stack picked");
    let (src, dst, d) = udp_of(&frame);
    assert_eq!((src, dst), (stack, peer));
    let picked = d.src_port;
    assert!(picked != 0 && picked != 5353, "source port {picked}");
    assert_eq!((d.dst_port, d.payload.as_slice()), (53, &b"query"[..]));
    assert_eq!(d.checksum_valid, Some(true));

    s.send("answer", &from_peer(&e, ipv6, 53, picked, b"answer"))
        .unwrap();
    assert_eq!(
        recv_from(s, 2, 1500, 2000),
        CallOutcome::Datagram {
            from: SocketAddr::new(peer, 53),
            data: b"answer".to_vec(),
        }
    );
}

/// `RecvFrom` with nothing queued waits its whole timeout (on smoltcp's virtual clock, the
/// virtual time), then answers `TimedOut`; a datagram for another socket does not wake it.
fn recv_from_with_nothing_queued_times_out(s: &mut Session<'_>, ipv6: bool, _: Host) {
    let e = s.endpoints().clone();
    let (_, stack) = addresses(&e, ipv6);
    assert_eq!(udp_bind(s, 1, stack, 5353), CallOutcome::Ok);
    assert_eq!(udp_bind(s, 2, stack, 5354), CallOutcome::Ok);
    s.send("datagram for s2", &from_peer(&e, ipv6, 40000, 5354, b"x"))
        .unwrap();
    let before = s.now();
    assert_eq!(recv_from(s, 1, 1500, 300), CallOutcome::TimedOut);
    let waited = s.now().saturating_since(before);
    assert!(
        waited >= Duration::from_millis(300),
        "answered TimedOut after {waited}"
    );
    assert!(matches!(
        recv_from(s, 2, 1500, 2000),
        CallOutcome::Datagram { .. }
    ));
}

/// The ICMP error a datagram to an unbound port draws: from the stack to the peer, port
/// unreachable, with a valid checksum, quoting the datagram's IP header and at least its
/// first 8 octets (RFC 792; RFC 1122 §3.2.2), enough for the peer to find its socket.
/// Returns the quote.
fn port_unreachable(s: &mut Session<'_>, ipv6: bool, probe: &Frame) -> Vec<u8> {
    let e = s.endpoints().clone();
    let (peer, stack) = addresses(&e, ipv6);
    let frame = next(s, "the port unreachable");
    let sent = ip_bytes(probe, ipv6, udp_payload_len(probe));
    let quote = match &frame.network {
        Network::Ipv4(p) if !ipv6 => {
            assert_eq!((IpAddr::V4(p.src), IpAddr::V4(p.dst)), (stack, peer));
            let Transport::Icmpv4(m) = &p.transport else {
                panic!("not ICMP: {}", frame.summary());
            };
            assert!(
                matches!(m.kind(), Icmpv4Kind::DestUnreachable { code: 3, .. }),
                "{}",
                frame.summary()
            );
            assert!(m.checksum_valid);
            m.payload.clone()
        }
        Network::Ipv6(p) if ipv6 => {
            assert_eq!((IpAddr::V6(p.src), IpAddr::V6(p.dst)), (stack, peer));
            let Transport::Icmpv6(m) = &p.transport else {
                panic!("not ICMPv6: {}", frame.summary());
            };
            assert_eq!(
                m.kind(),
                Icmpv6Kind::DestUnreachable { code: 4 },
                "{}",
                frame.summary()
            );
            assert!(m.checksum_valid);
            m.payload.clone()
        }
        _ => panic!("not an ICMP error: {}", frame.summary()),
    };
    let header = if ipv6 { 40 } else { 20 };
    assert!(quote.len() >= header + 8, "quote of {} bytes", quote.len());
    // The quoted header names the same hosts and protocol; the quoted UDP header is the one
    // sent, byte for byte (ports, length, checksum).
    if ipv6 {
        assert_eq!(quote[6], 17, "next header");
        assert_eq!(quote[8..40], sent[8..40], "addresses");
    } else {
        assert_eq!(quote[9], 17, "protocol");
        assert_eq!(quote[12..20], sent[12..20], "addresses");
    }
    assert_eq!(
        quote[header..header + 8],
        sent[header..header + 8],
        "UDP header"
    );
    quote
}

fn udp_payload_len(frame: &Frame) -> usize {
    match frame.transport() {
        Some(Transport::Udp(d)) => d.payload.len(),
        _ => 0,
    }
}

/// A datagram to a port nobody is bound to draws ICMP port unreachable, and so does one to a
/// port whose socket was closed (`Close` frees it).
fn a_datagram_to_an_unbound_port_draws_port_unreachable(
    s: &mut Session<'_>,
    ipv6: bool,
    dut: Host,
) {
    let e = s.endpoints().clone();
    let (_, stack) = addresses(&e, ipv6);
    // A header with fields a stack could not rebuild: an identification and no DF (IPv4), a
    // flow label (IPv6).
    let mut probe = from_peer(&e, ipv6, 40000, 9, b"anyone on port 9?");
    match &mut probe.network {
        Network::Ipv4(p) => {
            p.identification = 0x4e43;
            p.dont_fragment = false;
        }
        Network::Ipv6(p) => p.flow_label = 0x4e43,
        _ => unreachable!(),
    }
    s.send("to an unbound port", &probe).unwrap();
    let quote = port_unreachable(s, ipv6, &probe);
    let sent = ip_bytes(&probe, ipv6, udp_payload_len(&probe));
    if dut == Host::Smoltcp {
        // smoltcp rebuilds the quoted header from what it parsed: identification 0 and DF
        // (IPv4), flow label 0 (IPv6), the rest as received. Not quite RFC 792's "internet
        // header" of the original, but all the peer needs to find its socket is intact.
        let mut rebuilt = probe.clone();
        match &mut rebuilt.network {
            Network::Ipv4(p) => {
                p.identification = 0;
                p.dont_fragment = true;
            }
            Network::Ipv6(p) => p.flow_label = 0,
            _ => unreachable!(),
        }
        let rebuilt = ip_bytes(&rebuilt, ipv6, udp_payload_len(&probe));
        assert_eq!(quote, rebuilt, "smoltcp's quote");
    } else {
        // Linux quotes the datagram as it arrived, whole (up to 576 bytes in all for IPv4,
        // the minimum MTU of 1280 for IPv6).
        assert_eq!(quote, sent, "Linux's quote");
    }

    assert_eq!(udp_bind(s, 1, stack, 5354), CallOutcome::Ok);
    assert_eq!(
        call(s, SocketCall::Close { sock: SocketId(1) }),
        CallOutcome::Ok
    );
    let probe = from_peer(&e, ipv6, 40001, 5354, b"still there?");
    s.send("to a closed socket's port", &probe).unwrap();
    port_unreachable(s, ipv6, &probe);
}

/// The bind rules every stack answers the same: one socket per port and address (a wildcard
/// overlaps every address), only the stack's own addresses, and a failed `UdpBind` leaves the
/// id free; `Close` frees the port.
fn bind_rules(s: &mut Session<'_>, ipv6: bool, _: Host) {
    let e = s.endpoints().clone();
    let (_, stack) = addresses(&e, ipv6);
    assert_eq!(udp_bind(s, 1, stack, 5353), CallOutcome::Ok);
    let again = s.call(
        "the same id again",
        SocketCall::UdpBind {
            sock: SocketId(1),
            addr: stack,
            port: 5354,
        },
    );
    assert!(again.is_err(), "{again:?}");
    let taken = udp_bind(s, 2, stack, 5353);
    assert!(errno("EADDRINUSE")(&taken), "{taken:?}");
    let wildcard = udp_bind(s, 2, unspecified(ipv6), 5353);
    assert!(errno("EADDRINUSE")(&wildcard), "{wildcard:?}");
    let elsewhere: IpAddr = if ipv6 {
        "fd77::99".parse().unwrap()
    } else {
        "10.77.0.99".parse().unwrap()
    };
    let foreign = udp_bind(s, 2, elsewhere, 5353);
    assert!(errno("EADDRNOTAVAIL")(&foreign), "{foreign:?}");
    assert_eq!(
        call(s, SocketCall::Close { sock: SocketId(1) }),
        CallOutcome::Ok
    );
    assert_eq!(udp_bind(s, 2, stack, 5353), CallOutcome::Ok);
}

on_every_dut!(recv_from_v4, false, recv_from_returns_the_peers_datagram);
on_every_dut!(recv_from_v6, true, recv_from_returns_the_peers_datagram);
on_every_dut!(send_to_v4, false, send_to_puts_the_datagram_on_the_wire);
on_every_dut!(send_to_v6, true, send_to_puts_the_datagram_on_the_wire);
on_every_dut!(
    recv_from_times_out,
    false,
    recv_from_with_nothing_queued_times_out
);
on_every_dut!(
    port_unreachable_v4,
    false,
    a_datagram_to_an_unbound_port_draws_port_unreachable
);
on_every_dut!(
    port_unreachable_v6,
    true,
    a_datagram_to_an_unbound_port_draws_port_unreachable
);
on_every_dut!(bind_rules_v4, false, bind_rules);

/// The trace shows the UDP calls and their outcomes in their deterministic form.
#[test]
fn the_trace_reads_the_udp_calls() {
    let mut target = SmoltcpHost::new(smoltcp_config_for(&Needs::scenario(false))).unwrap();
    let mut s = Session::new(&mut target);
    let e = s.endpoints().clone();
    let (peer, stack) = addresses(&e, false);
    udp_bind(&mut s, 1, stack, 5353);
    s.send("datagram", &from_peer(&e, false, 40000, 5353, b"hi"))
        .unwrap();
    recv_from(&mut s, 1, 512, 100);
    send_to(&mut s, 1, SocketAddr::new(peer, 40000), b"ho");
    let text = s.trace().render(s.host_names());
    for line in [
        "* udp_bind(s1, 10.77.0.2:5353) = ok",
        "* recvfrom(s1, 512, 100 ms) = datagram 2 bytes from 10.77.0.1:40000",
        "* sendto(s1, 10.77.0.1:40000, 2 bytes) = sent 2",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}

/// What smoltcp cannot do with a UDP socket is unsupported, with the reason: a datagram
/// larger than one frame (it has no IP fragmentation), a TCP call on a UDP socket, a UDP call
/// on a TCP socket.
#[test]
fn smoltcp_says_what_it_cannot_do() {
    let mut t = SmoltcpHost::new(smoltcp_config_for(&Needs::scenario(false))).unwrap();
    let stack = IpAddr::V4(t.endpoints().stack_ipv4.unwrap().0);
    let peer = IpAddr::V4(t.endpoints().peer_ipv4.unwrap());
    let bind = SocketCall::UdpBind {
        sock: SocketId(1),
        addr: stack,
        port: 5353,
    };
    assert_eq!(t.call(&bind).unwrap(), CallOutcome::Ok);
    let unsupported = |r: Result<CallOutcome, DutError>, says: &str| match r {
        Err(DutError::NotSupported { what }) => assert!(what.contains(says), "{what}"),
        other => panic!("{other:?}"),
    };
    let big = SocketCall::SendTo {
        sock: SocketId(1),
        addr: peer,
        port: 40000,
        data: vec![0; 1500 - 28 + 1],
    };
    unsupported(t.call(&big), "without IP fragmentation");
    let fits = SocketCall::SendTo {
        sock: SocketId(1),
        addr: peer,
        port: 40000,
        data: vec![0; 1500 - 28],
    };
    assert_eq!(t.call(&fits).unwrap(), CallOutcome::Sent(1472));
    let listen = SocketCall::Listen {
        sock: SocketId(1),
        family: netconform::dut::Family::Ipv4,
        addr: None,
        port: 5353,
        backlog: 1,
    };
    unsupported(t.call(&listen), "s1 is a UDP socket");
    let tcp = SocketCall::Socket {
        sock: SocketId(2),
        family: netconform::dut::Family::Ipv4,
    };
    assert_eq!(t.call(&tcp).unwrap(), CallOutcome::Ok);
    let recv = SocketCall::RecvFrom {
        sock: SocketId(2),
        max: 10,
        timeout_ms: 10,
    };
    unsupported(t.call(&recv), "s2 is a TCP socket");
}

/// An agent whose hello says minor 0 is never sent a UDP call: the harness answers it
/// unsupported itself, naming both versions, while the other calls still go to the agent.
#[test]
fn an_agent_of_protocol_1_0_is_never_sent_a_udp_call() {
    require_netns!();
    let minimal = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agents/minimal.py");
    let config = agent_config(
        "minimal",
        vec!["python3".into(), minimal.display().to_string()],
    );
    let mut t = ExternalStack::new(&config, &Needs::IPV4).unwrap();
    assert_eq!(t.hello().minor, 0);
    let bind = SocketCall::UdpBind {
        sock: SocketId(1),
        addr: "10.77.0.2".parse().unwrap(),
        port: 5353,
    };
    match t.call(&bind) {
        Err(DutError::NotSupported { what }) => assert!(
            what.starts_with("udp_bind(s1, 10.77.0.2:5353): agent `python3` speaks netconform-agent/1.0; UDP socket calls need netconform-agent/1.1"),
            "{what}"
        ),
        other => panic!("{other:?}"),
    }
    // A TCP call reaches the agent, which answers it unsupported in its own words.
    let close = SocketCall::Close { sock: SocketId(1) };
    match t.call(&close) {
        Err(DutError::NotSupported { what }) => {
            assert_eq!(what, "call: this agent drives no stack yet")
        }
        other => panic!("{other:?}"),
    }
}
