//! `model_nat`: flows through a [`NatTable`]: predictions, learned ports, replies and ICMP
//! errors, with the table's invariants after every event.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use arbitrary::{Arbitrary, Unstructured};

use super::ones_sum;
use crate::fuzz::Outcome;
use crate::models::nat::{
    Flow, Mapping, NatDeviation, NatError, NatProfile, NatProtocol, NatTable, PortChoice, PortClass,
};
use crate::wire::{
    Faults, Icmpv4Message, Ipv4Packet, TcpFlags, TcpSegment, Transport, UdpDatagram,
};

const T: &str = "model_nat";

const EXTERNAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
const SPORTS: [u16; 8] = [1000, 1001, 80, 511, 600, 1023, 1024, 40000];
const DPORTS: [u16; 2] = [53, 80];

#[derive(Debug, Clone, Copy, Arbitrary)]
struct FlowSpec {
    proto: u8,
    inside: u8,
    sport: u8,
    remote: u8,
    dport: u8,
}

impl FlowSpec {
    fn flow(self) -> Flow {
        let src = Ipv4Addr::new(192, 168, 1, 2 + self.inside % 2);
        let dst = Ipv4Addr::new(203, 0, 113, 1 + self.remote % 2);
        let sport = SPORTS[usize::from(self.sport) % SPORTS.len()];
        let dport = DPORTS[usize::from(self.dport) % DPORTS.len()];
        match self.proto % 3 {
            0 => Flow::udp(SocketAddrV4::new(src, sport), SocketAddrV4::new(dst, dport)),
            1 => Flow::tcp(SocketAddrV4::new(src, sport), SocketAddrV4::new(dst, dport)),
            _ => Flow::icmp(src, dst, sport),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Event {
    /// A new or known flow leaves; the NAT picks a port the prediction admits.
    Out { flow: FlowSpec, pick: u16 },
    /// The NAT is said to have picked `port`: refused unless the prediction admits it.
    Bogus { flow: FlowSpec, port: u16 },
    /// Conntrack forgets a mapping.
    Forget { which: u8 },
    /// A packet of a mapped flow goes out, and its reply comes back.
    Reply { which: u8, data: u8 },
    /// A packet of a mapped flow goes out, and an ICMP error about it comes back.
    Error {
        which: u8,
        whole: bool,
        time_exceeded: bool,
        from_router: bool,
    },
}

/// Ports of other flows to the same remote (the reply tuples a new port must not repeat).
fn taken_towards(nat: &NatTable, flow: &Flow) -> BTreeSet<u16> {
    nat.mappings()
        .iter()
        .filter(|m| {
            m.flow != *flow
                && m.flow.protocol == flow.protocol
                && match flow.protocol {
                    NatProtocol::Icmp => m.flow.dst.ip() == flow.dst.ip(),
                    _ => m.flow.dst == flow.dst,
                }
        })
        .map(|m| m.external.port())
        .collect()
}

/// The table's invariants: one mapping per flow, all on the external address, no two
/// mappings with the same reply tuple (replies map back to exactly one flow); under RFC 4787
/// endpoint-independent mapping (REQ-1: one external port per inside endpoint) and no port
/// overloading (REQ-3: no external port shared by two inside endpoints).
pub(crate) fn check_table(profile: &NatProfile, mappings: &[Mapping]) -> Result<(), String> {
    let rfc4787 = !profile.has(NatDeviation::EndpointDependentAfterClash);
    for (i, a) in mappings.iter().enumerate() {
        if *a.external.ip() != EXTERNAL {
            return Err(format!("{a}: not on the external address {EXTERNAL}"));
        }
        for b in &mappings[i + 1..] {
            if a.flow == b.flow {
                return Err(format!("two mappings of one flow: {a} and {b}"));
            }
            if a.flow.protocol == b.flow.protocol && a.reply() == b.reply() {
                return Err(format!("{a} and {b} share the reply tuple {:?}", a.reply()));
            }
            if rfc4787 && a.flow.protocol == b.flow.protocol {
                let same_source = a.flow.src == b.flow.src;
                let same_port = a.external.port() == b.external.port();
                if same_source && !same_port {
                    return Err(format!("{a} and {b}: endpoint-dependent mapping (REQ-1)"));
                }
                if !same_source && same_port {
                    return Err(format!("{a} and {b}: port overloading (REQ-3)"));
                }
            }
        }
    }
    Ok(())
}

/// Checks a prediction against the module doc's steps (Linux) or rules (RFC 4787).
fn check_prediction(nat: &NatTable, flow: &Flow, choice: &PortChoice) -> Result<(), String> {
    let fail = |why: &str| Err(format!("predict({flow}) = {choice:?}: {why}"));
    if let Some(m) = nat.mapping(flow) {
        return match choice {
            PortChoice::Existing(p) if *p == m.external.port() => Ok(()),
            _ => fail("the flow is mapped"),
        };
    }
    let taken = taken_towards(nat, flow);
    let newest = nat
        .mappings()
        .iter()
        .rev()
        .find(|m| m.flow.protocol == flow.protocol && m.flow.src == flow.src);
    let sport = flow.src.port();
    if nat.profile().has(NatDeviation::EndpointDependentAfterClash) {
        match (newest, choice) {
            (Some(m), PortChoice::Reused { port, from }) if !taken.contains(&m.external.port()) => {
                if (*port, *from) == (m.external.port(), m.flow) {
                    Ok(())
                } else {
                    fail("not the newest mapping of the inside endpoint")
                }
            }
            (Some(m), _) if !taken.contains(&m.external.port()) => {
                fail("step 1: the newest mapping of the endpoint is free towards the remote")
            }
            (_, PortChoice::Kept(p)) if !taken.contains(&sport) => {
                if *p == sport {
                    Ok(())
                } else {
                    fail("kept port is not the inside port")
                }
            }
            (_, _) if !taken.contains(&sport) => fail("step 2: the inside port is free"),
            (_, PortChoice::Within { class, taken: t }) => {
                if *class == PortClass::linux(flow.protocol, sport) && *t == taken {
                    Ok(())
                } else {
                    fail("step 3: the class of the inside port, minus the taken ports")
                }
            }
            _ => fail("step 3 expected"),
        }
    } else {
        match (newest, choice) {
            (Some(m), PortChoice::Reused { port, .. }) if *port == m.external.port() => Ok(()),
            (Some(_), _) => fail("REQ-1: the endpoint's external port again"),
            (None, PortChoice::Within { class, .. })
                if *class == PortClass::rfc4787(flow.protocol, sport) =>
            {
                Ok(())
            }
            (None, _) => fail("a port of the REQ-3 range"),
        }
    }
}

/// A port the prediction admits, chosen with `pick`.
fn choose(choice: &PortChoice, pick: u16) -> Option<u16> {
    match choice {
        PortChoice::Existing(p) | PortChoice::Kept(p) | PortChoice::Reused { port: p, .. } => {
            Some(*p)
        }
        PortChoice::Within { class, taken } => {
            let len = u32::from(class.last - class.first) + 1;
            let start = u32::from(pick) % len;
            (0..len)
                .map(|k| class.first + ((start + k) % len) as u16)
                .find(|p| !taken.contains(p))
        }
    }
}

/// A packet of `flow` as the inside host sends it.
fn packet_of(flow: &Flow, data: u8) -> Ipv4Packet {
    let transport = match flow.protocol {
        NatProtocol::Udp => Transport::Udp(UdpDatagram::new(
            flow.src.port(),
            flow.dst.port(),
            vec![data; usize::from(data % 8)],
        )),
        NatProtocol::Tcp => {
            let mut s = TcpSegment::new(
                flow.src.port(),
                flow.dst.port(),
                u32::from(data),
                0,
                TcpFlags::SYN,
            );
            s.payload = vec![data; usize::from(data % 4)];
            Transport::Tcp(s)
        }
        NatProtocol::Icmp => Transport::Icmpv4(Icmpv4Message::echo_request(
            flow.src.port(),
            u16::from(data),
            vec![data; 4],
        )),
    };
    let mut p = Ipv4Packet::new(*flow.src.ip(), *flow.dst.ip(), transport);
    p.identification = u16::from(data) * 7;
    p
}

fn emit(p: &Ipv4Packet) -> Vec<u8> {
    let mut v = Vec::new();
    p.emit(&Faults::default(), &mut v);
    v
}

fn src_port(t: &Transport) -> Option<u16> {
    match t {
        Transport::Udp(u) => Some(u.src_port),
        Transport::Tcp(s) => Some(s.src_port),
        Transport::Icmpv4(m) => Some(u16::from_be_bytes([
            m.rest_of_header[0],
            m.rest_of_header[1],
        ])),
        _ => None,
    }
}

fn dst_port(t: &Transport) -> Option<u16> {
    match t {
        Transport::Udp(u) => Some(u.dst_port),
        Transport::Tcp(s) => Some(s.dst_port),
        Transport::Icmpv4(m) => Some(u16::from_be_bytes([
            m.rest_of_header[0],
            m.rest_of_header[1],
        ])),
        _ => None,
    }
}

/// The packet of `m`'s flow goes out: translated to the external endpoint, TTL minus one,
/// nothing else changed.
fn check_outbound(
    nat: &NatTable,
    m: &Mapping,
    original: &Ipv4Packet,
) -> Result<Ipv4Packet, String> {
    let out = nat
        .outbound(original)
        .map_err(|e| format!("outbound of mapped {m}: {e}"))?;
    let mut want = original.clone();
    want.ttl -= 1;
    want.src = *m.external.ip();
    match &mut want.transport {
        Transport::Udp(u) => u.src_port = m.external.port(),
        Transport::Tcp(s) => s.src_port = m.external.port(),
        Transport::Icmpv4(i) => {
            i.rest_of_header[..2].copy_from_slice(&m.external.port().to_be_bytes())
        }
        _ => {}
    }
    if out != want {
        return Err(format!("outbound of {m}: {out:?}, expected {want:?}"));
    }
    Ok(out)
}

/// The reply to a translated packet comes back to the inside endpoint.
pub(crate) fn check_reply(nat: &NatTable, m: &Mapping, sent: &Ipv4Packet) -> Result<(), String> {
    let transport = match &sent.transport {
        Transport::Udp(u) => Transport::Udp(UdpDatagram::new(u.dst_port, u.src_port, vec![1])),
        Transport::Tcp(s) => Transport::Tcp(TcpSegment::new(
            s.dst_port,
            s.src_port,
            7,
            s.seq.wrapping_add(1),
            TcpFlags::SYN_ACK,
        )),
        Transport::Icmpv4(i) => {
            let id = u16::from_be_bytes([i.rest_of_header[0], i.rest_of_header[1]]);
            Transport::Icmpv4(Icmpv4Message::echo_reply(id, 1, i.payload.clone()))
        }
        other => return Err(format!("a packet of {other:?} went out")),
    };
    let reply = Ipv4Packet::new(sent.dst, sent.src, transport);
    let back = nat
        .inbound(&reply)
        .map_err(|e| format!("the reply to {m}: {e}"))?;
    let ok = back.src == reply.src
        && back.dst == *m.flow.src.ip()
        && back.ttl == reply.ttl - 1
        && match m.flow.protocol {
            NatProtocol::Icmp => src_port(&back.transport) == Some(m.flow.src.port()),
            _ => {
                dst_port(&back.transport) == Some(m.flow.src.port())
                    && src_port(&back.transport) == src_port(&reply.transport)
            }
        };
    if ok {
        Ok(())
    } else {
        Err(format!("the reply to {m} reaches the inside as {back:?}"))
    }
}

/// An ICMP error quoting the translated packet `sent` (the first `len` bytes of it) comes
/// back: to the inside host, with the quote reverted to what the inside host sent (TTL
/// minus one) and its checksums valid.
pub(crate) fn check_error(
    nat: &NatTable,
    m: &Mapping,
    original: &Ipv4Packet,
    sent: &Ipv4Packet,
    whole: bool,
    time_exceeded: bool,
    from: Ipv4Addr,
) -> Result<(), String> {
    let bytes = emit(sent);
    let len = if whole {
        bytes.len()
    } else {
        28.min(bytes.len())
    };
    let quote = bytes[..len].to_vec();
    let msg = if time_exceeded {
        Icmpv4Message::time_exceeded(0, quote)
    } else {
        Icmpv4Message::dest_unreachable(3, quote)
    };
    let error = Ipv4Packet::new(from, sent.src, Transport::Icmpv4(msg));
    let back = nat
        .inbound(&error)
        .map_err(|e| format!("an error about {m}: {e}"))?;
    if back.dst != *m.flow.src.ip() || back.src != from {
        return Err(format!(
            "an error about {m} goes {} > {}",
            back.src, back.dst
        ));
    }
    let Transport::Icmpv4(reverted) = &back.transport else {
        return Err(format!("an error about {m} became {:?}", back.transport));
    };
    let mut forwarded = original.clone();
    forwarded.ttl -= 1;
    let want = emit(&forwarded);
    if reverted.payload != want[..len] {
        return Err(format!(
            "the quote about {m} reverts to {:02x?}, the inside host sent {:02x?}",
            reverted.payload,
            &want[..len]
        ));
    }
    let q = &reverted.payload;
    if ones_sum(0, &q[..20]) != 0xffff {
        return Err(format!(
            "quoted IPv4 header checksum wrong: {:02x?}",
            &q[..20]
        ));
    }
    if whole {
        let l4 = &q[20..];
        let sum = match m.flow.protocol {
            NatProtocol::Icmp => ones_sum(0, l4),
            p => {
                let mut pseudo = Vec::with_capacity(12);
                pseudo.extend_from_slice(&q[12..20]);
                pseudo.extend_from_slice(&[0, p.number()]);
                pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                ones_sum(ones_sum(0, &pseudo), l4)
            }
        };
        if sum != 0xffff {
            return Err(format!(
                "quoted {} checksum wrong: {l4:02x?}",
                m.flow.protocol
            ));
        }
    }
    Ok(())
}

/// One entry of the transcript, for the determinism check.
#[derive(Debug, PartialEq)]
enum Step {
    Learned(Mapping),
    Refused(u16),
    Forgot(crate::models::nat::Flow),
    Reply(Ipv4Packet),
    ErrorAbout(Mapping),
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Step>, String> {
    let profile = if bool::arbitrary(u).map_err(|e| e.to_string())? {
        NatProfile::rfc()
    } else {
        NatProfile::linux()
    };
    let mut nat = NatTable::new(profile.clone(), EXTERNAL);
    let mut out = Vec::new();
    for ev in super::events::<Event>(u) {
        match ev {
            Event::Out { flow, pick } => {
                let flow = flow.flow();
                let prediction = nat.predict(&flow);
                check_prediction(&nat, &flow, &prediction.choice)?;
                let Some(port) = choose(&prediction.choice, pick) else {
                    return Err(format!("{prediction}: no port left"));
                };
                let m = nat
                    .learn(flow, port)
                    .map_err(|e| format!("learn({flow}, {port}) after {prediction}: {e}"))?;
                if m.flow != flow || m.external != SocketAddrV4::new(EXTERNAL, port) {
                    return Err(format!("learn({flow}, {port}) = {m}"));
                }
                out.push(Step::Learned(m));
            }
            Event::Bogus { flow, port } => {
                let flow = flow.flow();
                let prediction = nat.predict(&flow);
                if !prediction.admits(port) {
                    let before = nat.clone();
                    let got = nat.learn(flow, port);
                    if !matches!(got, Err(NatError::PortNotPredicted { .. })) || nat != before {
                        return Err(format!(
                            "learn({flow}, {port}) outside {prediction} = {got:?}"
                        ));
                    }
                    out.push(Step::Refused(port));
                }
            }
            Event::Forget { which } => {
                let n = nat.mappings().len();
                if n > 0 {
                    let flow = nat.mappings()[usize::from(which) % n].flow;
                    if !nat.forget(&flow) || nat.mapping(&flow).is_some() {
                        return Err(format!("forget({flow}) left it, or said it was not there"));
                    }
                    if nat.mappings().len() != n - 1 {
                        return Err(format!("forget({flow}) dropped more than one mapping"));
                    }
                    out.push(Step::Forgot(flow));
                }
            }
            Event::Reply { which, data } => {
                let n = nat.mappings().len();
                if n > 0 {
                    let m = nat.mappings()[usize::from(which) % n];
                    let original = packet_of(&m.flow, data);
                    let sent = check_outbound(&nat, &m, &original)?;
                    check_reply(&nat, &m, &sent)?;
                    out.push(Step::Reply(sent));
                }
            }
            Event::Error {
                which,
                whole,
                time_exceeded,
                from_router,
            } => {
                let n = nat.mappings().len();
                if n > 0 {
                    let m = nat.mappings()[usize::from(which) % n];
                    let original = packet_of(&m.flow, which);
                    let sent = check_outbound(&nat, &m, &original)?;
                    let from = if from_router {
                        ROUTER
                    } else {
                        *m.flow.dst.ip()
                    };
                    check_error(&nat, &m, &original, &sent, whole, time_exceeded, from)?;
                    out.push(Step::ErrorAbout(m));
                }
            }
        }
        check_table(&profile, nat.mappings())?;
    }
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
