//! Router forwarding checks: the harness plays every host on every segment of a router, sends
//! packets into one side, and compares what comes out of *every* side with the forwarding
//! model ([`crate::models::forward`]), frame by frame.
//!
//! # How a probe runs
//!
//! 1. The check installs its routes (typed routes, [`Control::AddRoute`]) and gives the model
//!    the same table, built on the router's own interfaces ([`StateQuery::Ports`]; the
//!    loopback's index comes from a `route get` of one of the router's addresses).
//! 2. Each probe is a frame from a host of its own (Linux limits these errors per source
//!    host: see the model's module doc) into one port. The model says what must come out:
//!    a forwarded packet (with an ARP request first when the next hop is new), an ICMP error
//!    (with an ARP request for the sender first when the router does not know it yet), or
//!    nothing.
//! 3. The runner reads every port. It answers the router's ARP requests for the hosts it
//!    plays (and the model learns the answer); an ARP request the model did not predict,
//!    or for a host the harness does not play, is a failure. The expected packet must come
//!    out of the predicted port, to the predicted MAC, equal field by field.
//! 4. Then a **barrier**: an echo request from a host of the harness to the router's
//!    address on the ingress port. The router handles one port's frames in order, so once
//!    the echo reply is back, anything the probe provoked has come out: "nothing" and
//!    "nothing else" are proven without a timed window. The barrier's own frames are not
//!    recorded.
//! 5. After the last probe, a barrier on **every** port (`Run::silence`): the probe's own
//!    barrier awaits its reply on the ingress port only, and the harness's reads of
//!    several ports keep no order between them, so a frame out of another port (sent
//!    before that reply, or after it) could be left unread when the check ended. Each
//!    port's reply leaves behind everything the router sent out of that port before it.

use crate::engine::Uses;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::dut::{Control, DutError, PortInfo, StateAnswer, StateQuery};
use crate::engine::barrier::{self, Class, Echo, EchoIps, Ended, Entry, Plan, Seen};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, RouterNeeds, Session};
use crate::models::diff::packet_differences;
use crate::models::forward::{Decision, Emission, ForwardDeviation, IcmpError, Router, RouterPort};
use crate::models::profile::Deviation as _;
use crate::models::route::{AnswerKind, Interface, Route, RouteDeviation, RouteKind, RouteTable};
use crate::time::Duration;
use crate::wire::{
    ArpOperation, ArpRepr, Faults, Frame, Icmpv4Message, MacAddr, Network, Transport, UdpDatagram,
};

/// How long the runner waits for a predicted frame, and for the barrier's echo reply.
const WAIT: Duration = Duration::from_millis(2000);
/// The host octet of the barrier host on every segment.
const BARRIER_OCTET: u8 = 250;
/// The echo identifier of barrier probes.
const BARRIER_ID: u16 = 0xba77;

const RFC1812: &str = "https://www.rfc-editor.org/rfc/rfc1812";
const RFC792: &str = "https://www.rfc-editor.org/rfc/rfc792";
const RFC791: &str = "https://www.rfc-editor.org/rfc/rfc791";

/// RFC 1812 §4.2.2.9: TTL on forwarding.
pub const TTL: Clause = Clause {
    id: "rfc1812-4.2.2.9-ttl",
    source: "RFC 1812 §4.2.2.9",
    url: RFC1812,
    text: "A router MUST NOT originate or forward a datagram with a Time-to-Live (TTL) value \
           of zero. ... each router is required to reduce the TTL field by at least one.",
};

/// RFC 791 §3.1: the header checksum is recomputed when the header changes.
pub const CHECKSUM: Clause = Clause {
    id: "rfc791-3.1-header-checksum",
    source: "RFC 791 §3.1",
    url: RFC791,
    text: "The internet header checksum is recomputed if the internet header is changed. For \
           example, a reduction of the time to live, additions or changes to internet \
           options, or due to fragmentation.",
};

/// RFC 1812 §5.2.7.3: time exceeded in transit.
pub const TIME_EXCEEDED: Clause = Clause {
    id: "rfc1812-5.2.7.3-time-exceeded",
    source: "RFC 1812 §5.2.7.3",
    url: RFC1812,
    text: "A router MUST generate a Time Exceeded message Code 0 (In Transit) when it discards \
           a packet due to an expired TTL field.",
};

/// RFC 1812 §4.3.2.3: what an ICMP error quotes.
pub const ORIGINAL_HEADER: Clause = Clause {
    id: "rfc1812-4.3.2.3-original-header",
    source: "RFC 1812 §4.3.2.3",
    url: RFC1812,
    text: "the ICMP datagram SHOULD contain as much of the original datagram as possible \
           without the length of the ICMP datagram exceeding 576 bytes. The returned IP \
           header (and user data) MUST be identical to that which was received, except that \
           the router is not required to undo any modifications to the IP header that are \
           normally performed in forwarding that were performed before the error was \
           detected (e.g., decrementing the TTL, or updating options).",
};

/// RFC 1812 §4.3.2.7: when no ICMP error is sent.
pub const WHEN_NOT: Clause = Clause {
    id: "rfc1812-4.3.2.7-when-not-to-send",
    source: "RFC 1812 §4.3.2.7",
    url: RFC1812,
    text: "An ICMP error message MUST NOT be sent as the result of receiving: - An ICMP error \
           message, or ... - A packet sent as a Link Layer broadcast or multicast, or ... \
           Furthermore, an ICMP error message MUST NOT be sent in any case where this memo \
           states that a packet is to be silently discarded.",
};

/// RFC 1812 §4.3.2.5: the precedence of an ICMP error.
pub const ERROR_PRECEDENCE: Clause = Clause {
    id: "rfc1812-4.3.2.5-error-precedence",
    source: "RFC 1812 §4.3.2.5",
    url: RFC1812,
    text: "... All other ICMP error messages (Destination Unreachable, Redirect, Time \
           Exceeded, and Parameter Problem) SHOULD have their precedence value set to 6 \
           (INTERNETWORK CONTROL) or 7 (NETWORK CONTROL).",
};

/// RFC 792, Destination Unreachable: a gateway's unreachable network.
pub const NET_UNREACHABLE: Clause = Clause {
    id: "rfc792-destination-unreachable",
    source: "RFC 792, Destination Unreachable Message",
    url: RFC792,
    text: "If, according to the information in the gateway's routing tables, the network \
           specified in the internet destination field of a datagram is unreachable, e.g., \
           the distance to the network is infinity, the gateway may send a destination \
           unreachable message to the internet source host of the datagram.",
};

/// RFC 1812 §5.2.7.1: the administratively prohibited code.
pub const PROHIBITED: Clause = Clause {
    id: "rfc1812-5.2.7.1-code-13",
    source: "RFC 1812 §5.2.7.1",
    url: RFC1812,
    text: "13 = Communication Administratively Prohibited - generated if a router cannot \
           forward a packet due to administrative filtering;",
};

/// RFC 1812 §4.2.1: what "silently discard" means.
pub const SILENT_DISCARD: Clause = Clause {
    id: "rfc1812-4.2.1-silently-discard",
    source: "RFC 1812 §4.2.1",
    url: RFC1812,
    text: "In the following, the action specified in certain cases is to silently discard a \
           received datagram. This means that the datagram will be discarded without further \
           processing and that the router will not send any ICMP error message (see Section \
           [4.3]) as a result.",
};

const NEEDS: Needs = Needs {
    router: Some(RouterNeeds { segments: 2 }),
    uses: &[Uses::Link, Uses::Tables],
    ..Needs::IPV4
};

/// Every forwarding check.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "forward.next-hop",
        title: "forwarded packets leave with TTL-1, the egress MAC, the next hop's MAC (by ARP) \
                and a valid checksum; on-link and via a gateway, both directions",
        clauses: &[TTL, CHECKSUM, crate::suites::route::LONGEST_MATCH],
        needs: NEEDS,
        run: next_hop,
    },
    CheckSpec {
        id: "forward.time-exceeded",
        title: "TTL 1 and 0 bring ICMP time exceeded from the router's address, quoting the \
                packet as received up to 576 bytes; never about an ICMP error",
        clauses: &[
            TIME_EXCEEDED,
            TTL,
            ORIGINAL_HEADER,
            WHEN_NOT,
            ERROR_PRECEDENCE,
        ],
        needs: NEEDS,
        run: time_exceeded,
    },
    CheckSpec {
        id: "forward.unreachable",
        title: "no route brings net unreachable, an unreachable route host unreachable, a \
                prohibit route code 13, a blackhole nothing; the route test comes first",
        clauses: &[
            NET_UNREACHABLE,
            PROHIBITED,
            SILENT_DISCARD,
            ORIGINAL_HEADER,
            ERROR_PRECEDENCE,
        ],
        needs: NEEDS,
        run: unreachable,
    },
    CheckSpec {
        id: "forward.discards",
        title: "frames for another MAC, bad header checksums and unicast packets in a \
                link-layer broadcast are neither forwarded nor answered",
        clauses: &[SILENT_DISCARD, WHEN_NOT],
        needs: NEEDS,
        run: discards,
    },
];

/// Classifies an ICMP error the router sent by the clauses it exercised: its own (time
/// exceeded, unreachable, prohibited) and RFC 1812 §4.3.2.5's precedence, so that an error
/// that differs only in its TOS byte breaks that SHOULD alone and not the check's first
/// clause, a MUST it met. A forwarded packet tallies nothing: its failure keeps the check's
/// clauses.
fn tally_error(s: &mut Session<'_>, decision: &Decision, differences: &[String]) {
    let Decision::Error { error, .. } = decision else {
        return;
    };
    let own = match error {
        IcmpError::TimeExceeded => TIME_EXCEEDED,
        IcmpError::AdministrativelyProhibited => PROHIBITED,
        IcmpError::NetUnreachable | IcmpError::HostUnreachable => NET_UNREACHABLE,
    };
    let (tos, rest): (Vec<&String>, Vec<&String>) =
        differences.iter().partition(|d| d.starts_with("ip.tos:"));
    let line = |lines: &[&String]| {
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    s.tally(own, line(&rest));
    s.tally(ERROR_PRECEDENCE, line(&tos));
}

/// A route of a check, in lab terms.
#[derive(Debug, Clone, Copy)]
pub enum RouteSpec {
    /// `dst via` host `octet` of segment `port`.
    Via(&'static str, usize, u8),
    /// `unreachable dst`.
    Unreachable(&'static str),
    /// `prohibit dst`.
    Prohibit(&'static str),
    /// `blackhole dst`.
    Blackhole(&'static str),
}

/// Where a probe goes.
#[derive(Debug, Clone, Copy)]
pub enum Dst {
    /// Host `octet` of segment `port` (played by the harness).
    Host(usize, u8),
    /// Any address.
    Addr(Ipv4Addr),
}

/// What a probe carries.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// UDP 40000 → 9 with this many payload bytes.
    Udp(usize),
    /// An ICMP echo request.
    Echo,
    /// An ICMP port unreachable (an error message in transit).
    IcmpError,
}

/// How a probe's frame is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tweak {
    /// A well-formed frame to the router's MAC.
    None,
    /// To a MAC that is not the router's.
    ForeignMac,
    /// To the link-layer broadcast address.
    LinkBroadcast,
    /// A wrong IPv4 header checksum.
    BadChecksum,
    /// This TOS byte.
    Tos(u8),
}

/// One probe: a frame from a fresh host on segment `port`.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// What the probe shows (trace notes and failure messages).
    pub what: &'static str,
    /// Ingress segment.
    pub port: usize,
    /// Destination.
    pub dst: Dst,
    /// TTL as sent.
    pub ttl: u8,
    /// Payload.
    pub body: Body,
    /// Spoiled how.
    pub tweak: Tweak,
    /// From the host of the previous probe instead of a fresh one (a second packet of the
    /// same flow: the router knows both ends by then).
    pub same_host: bool,
}

impl Probe {
    const fn new(what: &'static str, port: usize, dst: Dst, ttl: u8, body: Body) -> Probe {
        Probe {
            what,
            port,
            dst,
            ttl,
            body,
            tweak: Tweak::None,
            same_host: false,
        }
    }
    const fn tweak(self, tweak: Tweak) -> Probe {
        Probe { tweak, ..self }
    }
    const fn again(self) -> Probe {
        Probe {
            same_host: true,
            ..self
        }
    }
}

/// The MAC of host `octet` on segment `port` (played by the harness).
pub fn host_mac(port: usize, octet: u8) -> MacAddr {
    crate::wire::plan::forward_host(port as u8, octet)
}

fn host_ip(info: &PortInfo, octet: u8) -> Result<Ipv4Addr, CheckError> {
    let (a, _) = info
        .ipv4
        .ok_or_else(|| unsupported("a port without an IPv4 address"))?;
    let o = a.octets();
    Ok(Ipv4Addr::new(o[0], o[1], o[2], octet))
}

/// Port `i` of the router, or unsupported when it has fewer.
fn port_info(ports: &[PortInfo], i: usize) -> Result<&PortInfo, CheckError> {
    ports
        .get(i)
        .ok_or_else(|| unsupported(&format!("port {i}: the router has {}", ports.len())))
}

fn unsupported(what: &str) -> CheckError {
    CheckError::Dut {
        step: "set-up".into(),
        source: DutError::NotSupported { what: what.into() },
    }
}

/// A forwarding run: the model beside the target, the hosts the harness plays.
struct Run<'s, 't> {
    s: &'s mut Session<'t>,
    model: Router,
    ports: Vec<PortInfo>,
    /// `(port, ip)` → MAC of every host the harness plays.
    hosts: BTreeMap<(usize, Ipv4Addr), MacAddr>,
    next_octet: u8,
    barriers: u16,
    /// Destinations off every segment, named `far1`, `far2`, ... in the trace.
    far: u32,
}

impl<'s, 't> Run<'s, 't> {
    fn new(s: &'s mut Session<'t>, routes: &[RouteSpec]) -> Result<Run<'s, 't>, CheckError> {
        let ports = match s.query("read the router's ports", StateQuery::Ports)? {
            StateAnswer::Ports(p) if p.len() >= 2 => p,
            other => {
                return Err(CheckError::WrongAnswer {
                    step: "read the router's ports".into(),
                    expected: "at least two ports with IPv4 addresses".into(),
                    observed: format!("{other:?}"),
                });
            }
        };
        let mut model_ports = Vec::new();
        let mut interfaces = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let (addr, len) = p.ipv4.ok_or_else(|| unsupported("a port without IPv4"))?;
            model_ports.push(RouterPort {
                ifindex: p.ifindex,
                mac: p.mac,
            });
            interfaces.push(Interface {
                index: p.ifindex,
                name: p.name.clone(),
                loopback: false,
                addrs: vec![
                    IpNet::new(IpAddr::V4(addr), len)
                        .map_err(|_| unsupported("a bad prefix length"))?,
                ],
            });
            s.name_host(Some(p.mac), Some(IpAddr::V4(addr)), &format!("router.{i}"));
        }
        let own = interfaces[0].addrs[0].addr();
        let step = "learn the router's loopback";
        let loopback = match crate::suites::route::lookup(s, step, own)? {
            Ok(a) if a.kind == AnswerKind::Local => a.oif,
            other => {
                return Err(CheckError::WrongAnswer {
                    step: step.into(),
                    expected: format!("a local answer for the router's own {own}"),
                    observed: format!("{other:?}"),
                });
            }
        };
        interfaces.insert(
            0,
            Interface {
                index: loopback,
                name: "lo".into(),
                loopback: true,
                addrs: vec!["127.0.0.1/8".parse().expect("a valid prefix")],
            },
        );
        let profile = s.profile();
        let mut table = RouteTable::new(RouteDeviation::profile(profile), interfaces);
        let mut run_hosts = BTreeMap::new();
        for spec in routes {
            let (dst, kind) = match *spec {
                RouteSpec::Via(dst, port, octet) => {
                    let info = port_info(&ports, port)?;
                    let gw = host_ip(info, octet)?;
                    run_hosts.insert((port, gw), host_mac(port, octet));
                    s.name_host(
                        Some(host_mac(port, octet)),
                        Some(IpAddr::V4(gw)),
                        &format!("gateway{port}"),
                    );
                    (
                        dst,
                        RouteKind::Unicast {
                            gateway: Some(IpAddr::V4(gw)),
                            oif: info.ifindex,
                        },
                    )
                }
                RouteSpec::Unreachable(dst) => (dst, RouteKind::Unreachable),
                RouteSpec::Prohibit(dst) => (dst, RouteKind::Prohibit),
                RouteSpec::Blackhole(dst) => (dst, RouteKind::Blackhole),
            };
            let route = Route {
                dst: dst.parse().map_err(|_| unsupported("a bad route prefix"))?,
                kind,
                metric: None,
                prefsrc: None,
            };
            table.add(route).map_err(|e| CheckError::WrongAnswer {
                step: format!("add {route} to the model"),
                expected: "a valid route".into(),
                observed: e.to_string(),
            })?;
            s.control(&format!("add {route}"), &Control::AddRoute(route))?;
        }
        for (i, p) in ports.iter().enumerate() {
            let b = host_ip(p, BARRIER_OCTET)?;
            run_hosts.insert((i, b), host_mac(i, BARRIER_OCTET));
        }
        Ok(Run {
            s,
            model: Router::new(ForwardDeviation::profile(profile), table, model_ports),
            ports,
            hosts: run_hosts,
            next_octet: 10,
            barriers: 0,
            far: 0,
        })
    }

    /// Plays a host (answers ARP for it) and names it in the trace.
    fn play(&mut self, port: usize, ip: Ipv4Addr, name: &str) -> MacAddr {
        let mac = host_mac(port, ip.octets()[3]);
        self.hosts.insert((port, ip), mac);
        self.s.name_host(Some(mac), Some(IpAddr::V4(ip)), name);
        mac
    }

    fn dst_ip(&mut self, dst: Dst) -> Result<Ipv4Addr, CheckError> {
        match dst {
            Dst::Addr(a) => {
                self.far += 1;
                self.s
                    .name_host(None, Some(IpAddr::V4(a)), &format!("far{}", self.far));
                Ok(a)
            }
            Dst::Host(port, octet) => {
                let info = port_info(&self.ports, port)?;
                let ip = host_ip(info, octet)?;
                self.play(port, ip, &format!("seg{port}-{octet}"));
                Ok(ip)
            }
        }
    }

    /// The probe's frame.
    fn build(&mut self, probe: &Probe) -> Result<Vec<u8>, CheckError> {
        if !probe.same_host || self.next_octet == 10 {
            self.next_octet += 1;
        }
        let info = port_info(&self.ports, probe.port)?;
        let (router_mac, src) = (info.mac, host_ip(info, self.next_octet)?);
        let src_mac = self.play(
            probe.port,
            src,
            &format!("seg{}-{}", probe.port, self.next_octet),
        );
        let dst = self.dst_ip(probe.dst)?;
        let transport = match probe.body {
            Body::Udp(n) => Transport::Udp(UdpDatagram::new(40000, 9, vec![0x6e; n])),
            Body::Echo => Transport::Icmpv4(Icmpv4Message::echo_request(
                0x0f0f,
                u16::from(self.next_octet),
                b"netconform forwarding".to_vec(),
            )),
            Body::IcmpError => {
                let inner = Frame::udp_v4(
                    MacAddr::ZERO,
                    MacAddr::ZERO,
                    dst,
                    src,
                    UdpDatagram::new(9, 40000, vec![1, 2, 3, 4]),
                )
                .emit();
                Transport::Icmpv4(Icmpv4Message::dest_unreachable(
                    3,
                    inner.get(14..).unwrap_or_default().to_vec(),
                ))
            }
        };
        let mut frame = Frame::new(
            src_mac,
            router_mac,
            Network::Ipv4(crate::wire::Ipv4Packet::new(src, dst, transport)),
        );
        if let Network::Ipv4(p) = &mut frame.network {
            p.ttl = probe.ttl;
            p.identification = 0x4e00 | u16::from(self.next_octet);
            if let Tweak::Tos(tos) = probe.tweak {
                p.dscp = tos >> 2;
                p.ecn = tos & 3;
            }
        }
        match probe.tweak {
            Tweak::ForeignMac => frame.ethernet.dst = crate::wire::plan::foreign(),
            Tweak::LinkBroadcast => frame.ethernet.dst = MacAddr::BROADCAST,
            _ => {}
        }
        frame.fill_computed();
        Ok(match probe.tweak {
            Tweak::BadChecksum => frame.emit_with(&Faults::default().wrong_ipv4_checksum()),
            _ => frame.emit(),
        })
    }

    /// Sends one probe and compares everything that comes out with the model.
    fn probe(&mut self, probe: &Probe) -> Result<(), CheckError> {
        let bytes = self.build(probe)?;
        let decision = self.model.receive(probe.port, &bytes);
        let step = probe.what.to_string();
        let expected = match &decision {
            Decision::Forward(e) => {
                self.s.note(format!(
                    "{}: the model forwards it out of port {} to {}",
                    probe.what, e.port, e.next_hop
                ));
                Some(e.clone())
            }
            Decision::Error { error, emission } => {
                self.s.note(format!(
                    "{}: the model answers {error:?} {:?} from {}",
                    probe.what,
                    error.type_code(),
                    emission.packet.src
                ));
                Some(emission.clone())
            }
            Decision::Discard(why) => {
                self.s
                    .note(format!("{}: the model discards it ({why:?})", probe.what));
                None
            }
            Decision::Local => {
                return Err(CheckError::WrongAnswer {
                    step,
                    expected: "a probe through the router".into(),
                    observed: "a probe the model delivers to the router itself".into(),
                });
            }
            Decision::OutOfScope(why) => return Err(unsupported(why)),
        };
        self.s.send_on(&step, probe.port, &bytes)?;
        if let Some(e) = &expected {
            self.await_emission(&step, e, &decision)?;
        }
        self.barrier(&step, probe.port)
    }

    /// Answers an ARP request of the router if it asks for a host the harness plays, and
    /// teaches the model; `Ok(None)` when the frame is not an ARP request.
    fn answer_arp(
        &mut self,
        step: &str,
        port: usize,
        frame: &Frame,
    ) -> Result<Option<Ipv4Addr>, CheckError> {
        let Network::Arp(a) = &frame.network else {
            return Ok(None);
        };
        if a.operation != ArpOperation::Request {
            return Ok(None);
        }
        let (mac, reply) = arp_reply(&self.hosts, step, port, a)?;
        if a.target_ip.octets()[3] == BARRIER_OCTET {
            self.s.send_on_unrecorded(step, port, &reply)?;
        } else {
            self.s.send_on(step, port, &reply)?;
        }
        self.model.learn(port, a.target_ip, mac);
        Ok(Some(a.target_ip))
    }

    /// Waits for the predicted packet (and the ARP request before it when the model says
    /// the next hop is unknown), comparing it field by field.
    fn await_emission(
        &mut self,
        step: &str,
        e: &Emission,
        decision: &Decision,
    ) -> Result<(), CheckError> {
        let deadline = self.s.deadline_after(WAIT);
        let mut resolved = e.dst_mac.is_some();
        while let Some((port, bytes, at)) = self.s.recv_any_unrecorded(step, deadline)? {
            let Ok(frame) = Frame::parse(&bytes) else {
                self.s.record_received_on(at, port, bytes.clone());
                return Err(CheckError::Unexpected {
                    step: step.into(),
                    observed: format!(
                        "port {port}: a frame that does not parse ({} bytes)",
                        bytes.len()
                    ),
                });
            };
            let barrier_arp = matches!(&frame.network,
                Network::Arp(a) if a.target_ip.octets()[3] == BARRIER_OCTET);
            if !barrier_arp {
                self.s.record_received_on(at, port, bytes.clone());
            }
            if let Some(target) = self.answer_arp(step, port, &frame)? {
                if !resolved && port == e.port && target == e.next_hop {
                    resolved = true;
                    continue;
                }
                if barrier_arp {
                    continue;
                }
                return Err(CheckError::Unexpected {
                    step: step.into(),
                    observed: format!(
                        "port {port}: an ARP request for {target}; the model expects {}",
                        if resolved {
                            "no resolution".to_string()
                        } else {
                            format!("a request for {} on port {}", e.next_hop, e.port)
                        }
                    ),
                });
            }
            let Some(p) = frame.as_ipv4() else {
                return Err(CheckError::Unexpected {
                    step: step.into(),
                    observed: format!("port {port}: {}", frame.summary()),
                });
            };
            if port != e.port || p.dst != e.packet.dst {
                return Err(CheckError::Unexpected {
                    step: step.into(),
                    observed: format!(
                        "port {port}: {}; the model expects a packet to {} on port {}",
                        frame.summary(),
                        e.packet.dst,
                        e.port
                    ),
                });
            }
            let mut differences = Vec::new();
            if !resolved {
                differences.push(format!(
                    "ARP: the router sent the packet without resolving {} first",
                    e.next_hop
                ));
            }
            let want_mac = self.model.neighbour(e.port, e.next_hop);
            if frame.ethernet.src != e.src_mac {
                differences.push(format!(
                    "eth.source: expected {} (the router's on port {}), observed {}",
                    e.src_mac, e.port, frame.ethernet.src
                ));
            }
            if Some(frame.ethernet.dst) != want_mac {
                differences.push(format!(
                    "eth.destination: expected {} (next hop {}), observed {}",
                    want_mac.map_or("unknown".to_string(), |m| m.to_string()),
                    e.next_hop,
                    frame.ethernet.dst
                ));
            }
            differences.extend(packet_differences(
                &e.packet,
                p,
                decision.predicts_identification(),
            ));
            tally_error(self.s, decision, &differences);
            return if differences.is_empty() {
                self.s.note(format!(
                    "checked on port {port}: TTL {}, TOS {:#04x}, DF {}, {} bytes, checksums \
                     valid, every field as the model predicts",
                    p.ttl,
                    (p.dscp << 2) | p.ecn,
                    p.dont_fragment,
                    bytes.len()
                ));
                Ok(())
            } else {
                Err(CheckError::Mismatch {
                    step: step.into(),
                    differences,
                })
            };
        }
        Err(CheckError::NothingObserved {
            step: format!(
                "{step}: expected a packet to {} out of port {}",
                e.packet.dst, e.port
            ),
            waited: WAIT,
        })
    }

    /// After the last probe: a barrier on every port, each failing on any frame but its
    /// own machinery (see the module doc, step 5), so nothing else left the router on any
    /// side.
    fn silence(&mut self) -> Result<(), CheckError> {
        for port in 0..self.ports.len() {
            let step = format!(
                "after the last probe: nothing else out of any port (barrier on port {port})"
            );
            self.barrier(&step, port)?;
        }
        Ok(())
    }

    /// An echo request from the barrier host to the router's address on `port`; every frame
    /// before its reply (but the barrier's own ARP) is something the model did not predict.
    fn barrier(&mut self, step: &str, port: usize) -> Result<(), CheckError> {
        self.barriers += 1;
        let info = port_info(&self.ports, port)?;
        let (router_ip, _) = info
            .ipv4
            .ok_or_else(|| unsupported("a port without IPv4"))?;
        let me = host_ip(info, BARRIER_OCTET)?;
        let mut probe = BarrierProbe {
            echo: Echo {
                src_mac: host_mac(port, BARRIER_OCTET),
                dst_mac: info.mac,
                ips: EchoIps::V4(me, router_ip),
                id: BARRIER_ID,
                seq: self.barriers,
            },
            me,
            step,
            port,
            hosts: &self.hosts,
            model: &mut self.model,
        };
        let plan = Plan {
            entry: Entry::Port(port),
            awaited: [port].into(),
            timeout: WAIT,
            drain: false,
            record: true,
            retry: false,
        };
        match self.s.run_barrier(step, &plan, &mut probe)? {
            Ended::Complete(_) => Ok(()),
            Ended::TimedOut { .. } => Err(CheckError::NothingObserved {
                step: format!("{step}: the barrier (an echo request to {router_ip})"),
                waited: WAIT,
            }),
        }
    }
}

/// The forwarding barrier's probe: an echo from the barrier host on the ingress port. Its
/// reply there is the evidence; the router's ARP requests for the barrier host are
/// answered (and the model learns the host); any other frame before the reply fails the
/// probe's step.
struct BarrierProbe<'r> {
    echo: Echo,
    /// The barrier host's address (the echo's source).
    me: Ipv4Addr,
    step: &'r str,
    port: usize,
    hosts: &'r BTreeMap<(usize, Ipv4Addr), MacAddr>,
    model: &'r mut Router,
}

impl barrier::Probe for BarrierProbe<'_> {
    fn frame(&self) -> Vec<u8> {
        self.echo.request().emit()
    }

    fn classify(&mut self, seen: &Seen<'_>) -> Result<Class, CheckError> {
        let frame = seen.parsed.as_ref().ok();
        if seen.port == self.port && frame.is_some_and(|f| self.echo.is_reply(f)) {
            return Ok(Class::Evidence);
        }
        if let Some(f) = frame
            && let Network::Arp(a) = &f.network
            && a.target_ip == self.me
            && seen.port == self.port
        {
            if a.operation != ArpOperation::Request {
                return Ok(Class::Machinery);
            }
            let (mac, reply) = arp_reply(self.hosts, self.step, self.port, a)?;
            self.model.learn(self.port, a.target_ip, mac);
            return Ok(Class::Answer(reply));
        }
        Ok(Class::Fail(CheckError::Unexpected {
            step: self.step.into(),
            observed: format!("port {}: {}", seen.port, seen.summary()),
        }))
    }
}

/// The harness's answer to an ARP request of the router out of `port`, as the host it
/// plays there (its MAC, the reply's bytes); a request for a host nobody plays is a
/// failure.
fn arp_reply(
    hosts: &BTreeMap<(usize, Ipv4Addr), MacAddr>,
    step: &str,
    port: usize,
    a: &ArpRepr,
) -> Result<(MacAddr, Vec<u8>), CheckError> {
    let Some(&mac) = hosts.get(&(port, a.target_ip)) else {
        return Err(CheckError::Unexpected {
            step: step.into(),
            observed: format!(
                "port {port}: an ARP request for {}, a host nobody plays",
                a.target_ip
            ),
        });
    };
    let reply = Frame::arp_reply(mac, a.target_ip, a.sender_mac, a.sender_ip).emit();
    Ok((mac, reply))
}

/// The harness's machinery among the frames a router sends: replies to its barrier
/// probes and its ARP requests for the barrier host (what a spoiler must leave alone,
/// [`crate::dut::spoil`]).
pub fn machinery(bytes: &[u8]) -> bool {
    barrier::is_echo_reply(bytes, BARRIER_ID)
        || matches!(Frame::parse(bytes).map(|f| f.network),
            Ok(Network::Arp(a)) if a.operation == ArpOperation::Request
                && a.target_ip.octets()[3] == BARRIER_OCTET)
}

/// Runs `probes` after installing `routes`, then proves that nothing else came out of any
/// port (`Run::silence`).
pub fn run_probes(
    s: &mut Session<'_>,
    routes: &[RouteSpec],
    probes: &[Probe],
) -> Result<(), CheckError> {
    let mut run = Run::new(s, routes)?;
    for p in probes {
        run.probe(p)?;
    }
    run.silence()
}

const GATEWAY: RouteSpec = RouteSpec::Via("10.99.0.0/16", 1, 7);

/// The next-hop check's probes (also the routed-exchange snapshot).
pub const NEXT_HOP: &[Probe] = &[
    Probe::new(
        "UDP to a new neighbour",
        0,
        Dst::Host(1, 2),
        64,
        Body::Udp(32),
    ),
    Probe::new(
        "the same flow again (no ARP)",
        0,
        Dst::Host(1, 2),
        64,
        Body::Udp(32),
    )
    .again(),
    Probe::new("echo with TTL 2", 0, Dst::Host(1, 3), 2, Body::Echo),
    Probe::new(
        "via the gateway",
        0,
        Dst::Addr(Ipv4Addr::new(10, 99, 1, 2)),
        30,
        Body::Udp(8),
    ),
    Probe::new(
        "the other direction",
        1,
        Dst::Host(0, 4),
        255,
        Body::Udp(100),
    ),
];

fn next_hop(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_probes(s, &[GATEWAY], NEXT_HOP)
}

fn time_exceeded(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_probes(
        s,
        &[GATEWAY],
        &[
            Probe::new("UDP with TTL 1", 0, Dst::Host(1, 2), 1, Body::Udp(16)),
            Probe::new(
                "echo with TTL 0",
                0,
                Dst::Addr(Ipv4Addr::new(10, 99, 0, 9)),
                0,
                Body::Echo,
            ),
            Probe::new(
                "1,200 bytes with TTL 1 and TOS 0xb9",
                0,
                Dst::Host(1, 2),
                1,
                Body::Udp(1200),
            )
            .tweak(Tweak::Tos(0xb9)),
            Probe::new(
                "TTL 1 from the far side",
                1,
                Dst::Host(0, 5),
                1,
                Body::Udp(4),
            ),
            Probe::new(
                "an ICMP error with TTL 1",
                0,
                Dst::Host(1, 2),
                1,
                Body::IcmpError,
            ),
        ],
    )
}

fn unreachable(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_probes(
        s,
        &[
            GATEWAY,
            RouteSpec::Unreachable("10.66.0.0/16"),
            RouteSpec::Prohibit("10.67.0.0/16"),
            RouteSpec::Blackhole("10.68.0.0/16"),
            // Nested: the longer prefix decides.
            RouteSpec::Unreachable("10.99.66.0/24"),
        ],
        &[
            Probe::new(
                "no route",
                0,
                Dst::Addr(Ipv4Addr::new(192, 0, 2, 9)),
                64,
                Body::Udp(8),
            ),
            Probe::new(
                "no route, TTL 1",
                0,
                Dst::Addr(Ipv4Addr::new(192, 0, 2, 10)),
                1,
                Body::Udp(8),
            ),
            Probe::new(
                "an unreachable route",
                0,
                Dst::Addr(Ipv4Addr::new(10, 66, 1, 1)),
                64,
                Body::Echo,
            ),
            Probe::new(
                "a prohibit route",
                0,
                Dst::Addr(Ipv4Addr::new(10, 67, 1, 1)),
                64,
                Body::Udp(8),
            ),
            Probe::new(
                "a blackhole route",
                0,
                Dst::Addr(Ipv4Addr::new(10, 68, 1, 1)),
                64,
                Body::Udp(8),
            ),
            Probe::new(
                "an unreachable /24 inside a gateway /16",
                0,
                Dst::Addr(Ipv4Addr::new(10, 99, 66, 1)),
                64,
                Body::Udp(8),
            ),
            Probe::new(
                "no route from the far side",
                1,
                Dst::Addr(Ipv4Addr::new(198, 51, 100, 1)),
                64,
                Body::Udp(8),
            ),
        ],
    )
}

fn discards(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_probes(
        s,
        &[GATEWAY],
        &[
            Probe::new(
                "to another host's MAC",
                0,
                Dst::Host(1, 2),
                64,
                Body::Udp(8),
            )
            .tweak(Tweak::ForeignMac),
            Probe::new(
                "a bad header checksum",
                0,
                Dst::Host(1, 2),
                64,
                Body::Udp(8),
            )
            .tweak(Tweak::BadChecksum),
            Probe::new(
                "unicast IP in a link-layer broadcast",
                0,
                Dst::Host(1, 2),
                64,
                Body::Udp(8),
            )
            .tweak(Tweak::LinkBroadcast),
            Probe::new(
                "no route, in a link-layer broadcast",
                0,
                Dst::Addr(Ipv4Addr::new(192, 0, 2, 11)),
                64,
                Body::Udp(8),
            )
            .tweak(Tweak::LinkBroadcast),
            Probe::new(
                "TTL 1 with a bad header checksum",
                0,
                Dst::Host(1, 2),
                1,
                Body::Udp(8),
            )
            .tweak(Tweak::BadChecksum),
            // And a good one, so that the check also shows the path works.
            Probe::new("a well-formed packet", 0, Dst::Host(1, 2), 64, Body::Udp(8)),
        ],
    )
}
