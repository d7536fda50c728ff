//! NAT checks: a router masquerading out of its port 1, driven frame by frame from both
//! sides and compared with the translation model ([`crate::models::nat`]) on the wire and in
//! its connection tracking table.
//!
//! Read first: RFC 3022 §2 (NAPT), RFC 4787 §4.1 and §4.2 (mapping and port assignment),
//! RFC 5382 §8, RFC 5508 §7 (ICMP errors); the model's module doc for Linux's order of
//! choices and the deviations.
//!
//! # How a check runs
//!
//! The harness plays every host: inside hosts `A` (`10.78.1.10`) and `B` (`.11`) behind port
//! 0, servers `S` (`10.78.2.2`) and `S2` (`.3`) and a router on the way, `T` (`.254`), behind
//! port 1; it answers the router's ARP requests for them. The check asks the target for its
//! ports ([`StateQuery::Ports`]: a target that is not a router says unsupported), turns
//! masquerade on out of port 1 ([`Control::Masquerade`]), then for every packet:
//!
//! 1. an outbound packet from an inside host: the model predicts the external port (one
//!    port, or a class minus the ports taken), the harness sends the packet into port 0 and
//!    requires the next frame (ARP aside) to be it, translated, on port 1: the port must be
//!    admitted by the prediction (then the model learns it), and every other field is
//!    compared with the model's translation (source address, TTL minus one, the IPv4 and
//!    transport checksums, the router's MAC and the server's);
//! 2. an inbound packet (a reply, an ICMP error) from outside to the router's external
//!    address: sent into port 1, required on port 0 exactly as the model translates it back;
//! 3. after each step, the router's conntrack table ([`StateQuery::Conntrack`]) must hold
//!    exactly the model's mappings (original and reply tuples);
//! 4. after the last step, a **barrier on every port** (`NatRun::silence`): an echo request
//!    from a barrier host of the harness (`.250` on each side) to the router's address
//!    there, whose reply leaves behind everything the router sent out of that port before
//!    it; any other frame before it fails the check. Each step reads the one frame it
//!    expects, so without it a frame more out of either port after the last step was
//!    never read.
//!
//! Every payload carries a number of its own (`ncnat <n>`), TCP segments and echo requests
//! a sequence number of their own, so a frame is never mistaken for another.

use crate::engine::Uses;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::dut::{Control, DutError, PortInfo, StateAnswer, StateQuery};
use crate::engine::barrier::{self, Class, Echo, EchoIps, Ended, Entry, Plan, Seen};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, RouterNeeds, Session};
use crate::models::diff::packet_differences;
use crate::models::nat::{Flow, Mapping, NatDeviation, NatTable, Prediction};
use crate::models::profile::Deviation as _;
use crate::sandbox::ConntrackEntry;
use crate::time::Duration;
use crate::wire::{
    ArpOperation, Frame, Icmpv4Message, Ipv4Packet, MacAddr, Network, TcpFlags, TcpSegment,
    Transport, UdpDatagram,
};

/// RFC 4787 §4.1, REQ-1.
pub const EIM: Clause = Clause {
    id: "rfc4787-4.1-req1-endpoint-independent-mapping",
    source: "RFC 4787 §4.1 (REQ-1)",
    url: "https://www.rfc-editor.org/rfc/rfc4787#section-4.1",
    text: "REQ-1: A NAT MUST have an \"Endpoint-Independent Mapping\" behavior.",
};

/// RFC 4787 §4.2.1, REQ-3.
pub const NO_OVERLOADING: Clause = Clause {
    id: "rfc4787-4.2.1-req3-no-port-overloading",
    source: "RFC 4787 §4.2.1 (REQ-3)",
    url: "https://www.rfc-editor.org/rfc/rfc4787#section-4.2.1",
    text: "REQ-3: A NAT MUST NOT have a \"Port assignment\" behavior of \"Port overloading\".",
};

/// RFC 4787 §4.2.1, REQ-3 a): the port ranges.
pub const PORT_RANGES: Clause = Clause {
    id: "rfc4787-4.2.1-req3a-port-ranges",
    source: "RFC 4787 §4.2.1 (REQ-3 a)",
    url: "https://www.rfc-editor.org/rfc/rfc4787#section-4.2.1",
    text: "a) If the host's source port was in the range 0-1023, it is RECOMMENDED the NAT's \
           source port be in the same range. If the host's source port was in the range \
           1024-65535, it is RECOMMENDED that the NAT's source port be in that range.",
};

/// RFC 3022's definition of NAPT.
pub const NAPT: Clause = Clause {
    id: "rfc3022-napt",
    source: "RFC 3022 (Abstract)",
    url: "https://www.rfc-editor.org/rfc/rfc3022",
    text: "Network Address Port Translation, or NAPT is a method by which many network \
           addresses and their TCP/UDP (Transmission Control Protocol/User Datagram Protocol) \
           ports are translated into a single network address and its TCP/UDP ports.",
};

/// RFC 5508 §3.1, REQ-1: ICMP queries pass.
pub const ICMP_QUERY: Clause = Clause {
    id: "rfc5508-req1-icmp-query",
    source: "RFC 5508 (REQ-1)",
    url: "https://www.rfc-editor.org/rfc/rfc5508",
    text: "REQ-1: Unless explicitly overridden by local policy, a NAT device MUST permit ICMP \
           Queries and their associated responses, when the Query is initiated from a private \
           host to the external hosts.",
};

/// RFC 5508 §4.1, REQ-4: ICMP errors from outside.
pub const ICMP_ERROR: Clause = Clause {
    id: "rfc5508-req4-icmp-error-translation",
    source: "RFC 5508 (REQ-4)",
    url: "https://www.rfc-editor.org/rfc/rfc5508",
    text: "If a NAT device receives an ICMP Error packet from an external realm, and the NAT \
           device does not have an active mapping for the embedded payload, the NAT SHOULD \
           silently drop the ICMP Error packet. If the NAT has active mapping for the embedded \
           payload, then the NAT MUST do the following prior to forwarding the packet, unless \
           explicitly overridden by local policy: a) Revert the IP and transport headers of the \
           embedded IP packet to their original form, using the matching mapping; and b) Leave \
           the ICMP Error type and code unchanged; and c) Modify the destination IP address of \
           the outer IP header to be the same as the source IP address of the embedded packet \
           after translation.",
};

/// RFC 5382 §8, REQ-9.
pub const TCP_ICMP: Clause = Clause {
    id: "rfc5382-req9-translate-icmp-for-tcp",
    source: "RFC 5382 (REQ-9)",
    url: "https://www.rfc-editor.org/rfc/rfc5382",
    text: "REQ-9: If a NAT translates TCP, it SHOULD translate ICMP Destination Unreachable \
           (Type 3) messages.",
};

/// Linux's own rule for keeping a port (`get_unique_tuple`, step 3), paraphrased from the
/// kernel source; the quoted words are the source's comment.
pub const LINUX_KEEP_PORT: Clause = Clause {
    id: "linux-nf-nat-keep-port",
    source: "Linux net/netfilter/nf_nat_core.c (get_unique_tuple), paraphrased",
    url: "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/net/netfilter/nf_nat_core.c",
    text: "A source NAT first reuses the current mapping of the same source address, protocol \
           and port when that still gives a unique tuple, else keeps the original port when the \
           tuple with the new address is unique (\"Only bother mapping if it's not already in \
           range and unique\"), and only then looks for another port.",
};

/// Linux's port classes (`nf_nat_l4proto_unique_tuple`), paraphrased from the kernel source.
pub const LINUX_PORT_CLASS: Clause = Clause {
    id: "linux-nf-nat-port-class",
    source: "Linux net/netfilter/nf_nat_core.c (nf_nat_l4proto_unique_tuple), paraphrased",
    url: "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/net/netfilter/nf_nat_core.c",
    text: "With no port range given, a port that must change is moved within its class: a port \
           below 512 to 1-511, a port from 512 to 1023 to 600-1023 (the comment: \"Loose \
           convention: >> 512 is credential passing\"), any other to 1024-65535; ICMP \
           identifiers anywhere in 0-65535.",
};

const NEEDS: Needs = Needs {
    ipv6: false,
    peer_preresolved: false,
    settings: &[],
    switch: None,
    router: Some(RouterNeeds { segments: 2 }),
    uses: &[Uses::Link, Uses::Tables],
};

/// The NAT checks.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "nat.masquerade.port-kept",
        title: "masquerade: a new UDP, TCP and ICMP echo flow keeps its port (identifier) when it is free, source rewritten to the outside address",
        clauses: &[NAPT, LINUX_KEEP_PORT, PORT_RANGES],
        needs: NEEDS,
        run: port_kept,
    },
    CheckSpec {
        id: "nat.masquerade.clash-same-class",
        title: "masquerade: two inside hosts, same source port, same server: the second is moved inside the port's class (53, 520, 700, 40000), never onto the first's port, and replies reach each host",
        clauses: &[NO_OVERLOADING, PORT_RANGES, LINUX_PORT_CLASS, NAPT],
        needs: NEEDS,
        run: clash_same_class,
    },
    CheckSpec {
        id: "nat.masquerade.mapping-reused",
        title: "masquerade: an inside endpoint keeps its external port (moved or kept) towards other servers and ports (endpoint-independent mapping)",
        clauses: &[EIM],
        needs: NEEDS,
        run: mapping_reused,
    },
    CheckSpec {
        id: "nat.masquerade.endpoint-dependent-after-clash",
        title: "masquerade (Linux deviation): an inside endpoint whose port another host holds towards a server gets a second external port for that server",
        clauses: &[EIM],
        needs: NEEDS,
        run: endpoint_dependent_after_clash,
    },
    CheckSpec {
        id: "nat.reply-translated",
        title: "masquerade: UDP replies, a TCP SYN-ACK and an ICMP echo reply to the outside address come back to the inside host, destination and checksums translated",
        clauses: &[NAPT, ICMP_QUERY],
        needs: NEEDS,
        run: reply_translated,
    },
    CheckSpec {
        id: "nat.icmp-error-translated",
        title: "masquerade: port unreachable and time exceeded from outside about UDP, TCP and echo reach the inside host with the outer destination and the quoted headers and checksums reverted",
        clauses: &[ICMP_ERROR, TCP_ICMP],
        needs: NEEDS,
        run: icmp_error_translated,
    },
];

/// How long a frame may take through the router.
const FRAME_TIMEOUT: Duration = Duration::from_millis(2000);
/// The host octet of the barrier host on each side.
const BARRIER_OCTET: u8 = 250;
/// The echo identifier of the barrier's probes ("nb").
const BARRIER_ID: u16 = 0x6e62;

/// The harness's machinery among the frames the NAT router sends: replies to its barrier
/// probes and its ARP requests for the barrier hosts (what a spoiler must leave alone,
/// [`crate::dut::spoil`]).
pub fn machinery(bytes: &[u8]) -> bool {
    barrier::is_echo_reply(bytes, BARRIER_ID)
        || matches!(Frame::parse(bytes).map(|f| f.network),
            Ok(Network::Arp(a)) if a.operation == ArpOperation::Request
                && a.target_ip.octets()[3] == BARRIER_OCTET)
}

/// The NAT barrier's probe: an echo from the barrier host on one port to the router's
/// address there. Its reply on that port is the evidence; the router's ARP request for the
/// barrier host is answered; any other frame, out of any port, fails the step.
struct SilenceProbe<'a> {
    echo: Echo,
    /// The barrier host's address and MAC.
    me: (Ipv4Addr, MacAddr),
    port: usize,
    step: &'a str,
}

impl barrier::Probe for SilenceProbe<'_> {
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
            && a.operation == ArpOperation::Request
            && a.target_ip == self.me.0
            && seen.port == self.port
        {
            let (ip, mac) = self.me;
            return Ok(Class::Answer(
                Frame::arp_reply(mac, ip, a.sender_mac, a.sender_ip).emit(),
            ));
        }
        Ok(Class::Fail(CheckError::Unexpected {
            step: self.step.into(),
            observed: format!("p{}: {}", seen.port, seen.summary()),
        }))
    }
}

/// One host the harness plays.
#[derive(Debug, Clone, Copy)]
struct Host {
    name: &'static str,
    port: usize,
    ip: Ipv4Addr,
    mac: MacAddr,
}

/// A check's run: the session, the router's ports, the hosts and the model.
struct NatRun<'a, 't> {
    s: &'a mut Session<'t>,
    ports: Vec<PortInfo>,
    hosts: Vec<Host>,
    model: NatTable,
    next_tag: u32,
}

/// Inside host `A`.
const A: usize = 0;
/// Inside host `B`.
const B: usize = 1;
/// Server `S`.
const S: usize = 2;
/// Server `S2`.
const S2: usize = 3;
/// Router `T` on the outside.
const T: usize = 4;
/// The hosts' names in step texts, by index.
const HOST_NAMES: [&str; 5] = ["A", "B", "S", "S2", "T"];

fn host_ip(port: &PortInfo, octet: u8) -> Option<Ipv4Addr> {
    let (a, _) = port.ipv4?;
    let o = a.octets();
    Some(Ipv4Addr::new(o[0], o[1], o[2], octet))
}

fn unsupported(step: &str, what: &str) -> CheckError {
    CheckError::Dut {
        step: step.into(),
        source: DutError::NotSupported { what: what.into() },
    }
}

impl<'a, 't> NatRun<'a, 't> {
    /// What the model's NAT sends out for `packet`, which the check sent before (the
    /// packet an ICMP error from the outside quotes).
    fn translated(&mut self, packet: &Ipv4Packet) -> Result<Ipv4Packet, CheckError> {
        self.model
            .outbound(packet)
            .map_err(|e| CheckError::WrongAnswer {
                step: "model".into(),
                expected: "a translation".into(),
                observed: e.to_string(),
            })
    }

    /// Reads the ports, names the hosts and turns masquerade on out of port 1.
    fn start(s: &'a mut Session<'t>) -> Result<NatRun<'a, 't>, CheckError> {
        let step = "the router's ports";
        let ports = match s.query(step, StateQuery::Ports)? {
            StateAnswer::Ports(p) => p,
            other => {
                return Err(CheckError::WrongAnswer {
                    step: step.into(),
                    expected: "the router's ports".into(),
                    observed: format!("{other:?}"),
                });
            }
        };
        if ports.len() < 2 {
            return Err(unsupported(
                step,
                "a NAT check needs a router with two ports",
            ));
        }
        let (Some(external), _) = (ports[1].ipv4.map(|(a, _)| a), ports[0].ipv4) else {
            return Err(unsupported(step, "port 1 has no IPv4 address"));
        };
        let plan: [(&'static str, usize, u8); 5] = [
            ("A", 0, 10),
            ("B", 0, 11),
            ("S", 1, 2),
            ("S2", 1, 3),
            ("T", 1, 254),
        ];
        let mut hosts = Vec::new();
        for (i, (name, port, octet)) in plan.into_iter().enumerate() {
            let ip = host_ip(&ports[port], octet)
                .ok_or_else(|| unsupported(step, "a port without an IPv4 address"))?;
            let mac = crate::wire::plan::nat_host(port as u8, i as u8 + 1);
            hosts.push(Host {
                name,
                port,
                ip,
                mac,
            });
        }
        for h in &hosts {
            s.name_host(Some(h.mac), Some(h.ip.into()), h.name);
        }
        s.name_host(
            Some(ports[0].mac),
            ports[0].ipv4.map(|(a, _)| a.into()),
            "nat0",
        );
        s.name_host(Some(ports[1].mac), Some(external.into()), "nat");
        s.control("masquerade", &Control::Masquerade { port: 1 })?;
        let model = NatTable::new(NatDeviation::profile(s.profile()), external);
        Ok(NatRun {
            s,
            ports,
            hosts,
            model,
            next_tag: 0,
        })
    }

    fn tag(&mut self) -> u32 {
        self.next_tag += 1;
        self.next_tag
    }

    fn payload(&mut self) -> Vec<u8> {
        format!("ncnat {}", self.tag()).into_bytes()
    }

    /// A packet from host `from` to `dst`.
    fn packet(&mut self, from: usize, dst: Ipv4Addr, transport: Transport) -> Ipv4Packet {
        let mut p = Ipv4Packet::new(self.hosts[from].ip, dst, transport);
        p.identification = 0x4e00 | (self.next_tag as u16 & 0xff);
        p
    }

    fn udp(&mut self, from: usize, sport: u16, to: usize, dport: u16) -> Ipv4Packet {
        let data = self.payload();
        let dst = self.hosts[to].ip;
        self.packet(
            from,
            dst,
            Transport::Udp(UdpDatagram::new(sport, dport, data)),
        )
    }

    fn syn(&mut self, from: usize, sport: u16, to: usize, dport: u16) -> Ipv4Packet {
        let seq = 1000 * self.tag();
        let dst = self.hosts[to].ip;
        self.packet(
            from,
            dst,
            Transport::Tcp(TcpSegment::new(sport, dport, seq, 0, TcpFlags::SYN)),
        )
    }

    fn echo(&mut self, from: usize, id: u16, to: usize) -> Ipv4Packet {
        let seq = self.tag() as u16;
        let data = self.payload();
        let dst = self.hosts[to].ip;
        self.packet(
            from,
            dst,
            Transport::Icmpv4(Icmpv4Message::echo_request(id, seq, data)),
        )
    }

    fn external(&self) -> Ipv4Addr {
        self.model.external()
    }

    /// Sends `packet` from host `from` into its port, to the router's MAC there.
    fn send(&mut self, step: &str, from: usize, packet: &Ipv4Packet) -> Result<(), CheckError> {
        let h = self.hosts[from];
        let frame = Frame::new(h.mac, self.ports[h.port].mac, Network::Ipv4(packet.clone()));
        self.s.send_on(step, h.port, &frame.emit())
    }

    /// The next frame out of any port that is not ARP (answering the router's requests for
    /// the hosts on the way).
    fn next_frame(&mut self, step: &str) -> Result<(usize, Frame), CheckError> {
        let deadline = self.s.deadline_after(FRAME_TIMEOUT);
        loop {
            let Some((port, bytes, at)) = self.s.recv_any_unrecorded(step, deadline)? else {
                return Err(CheckError::NothingObserved {
                    step: step.into(),
                    waited: FRAME_TIMEOUT,
                });
            };
            self.s.record_received_on(at, port, bytes.clone());
            let frame = Frame::parse(&bytes).map_err(|e| CheckError::Mismatch {
                step: step.into(),
                differences: vec![format!("p{port}: malformed frame: {e}")],
            })?;
            if let Network::Arp(a) = &frame.network {
                if a.operation == ArpOperation::Request
                    && let Some(h) = self
                        .hosts
                        .iter()
                        .find(|h| h.port == port && h.ip == a.target_ip)
                        .copied()
                {
                    let reply = Frame::arp_reply(h.mac, h.ip, a.sender_mac, a.sender_ip);
                    self.s.send_on(step, port, &reply.emit())?;
                }
                continue;
            }
            return Ok((port, frame));
        }
    }

    /// Requires the next frame to be `expected` on `port`, from the router's MAC there to
    /// `to`'s.
    fn expect_packet(
        &mut self,
        step: &str,
        port: usize,
        to: usize,
        expected: &Ipv4Packet,
    ) -> Result<Ipv4Packet, CheckError> {
        let (got_port, frame) = self.next_frame(step)?;
        let mut differences = Vec::new();
        if got_port != port {
            differences.push(format!(
                "port: expected p{port}, observed p{got_port} ({})",
                frame.summary()
            ));
        }
        let (src_mac, dst_mac) = (self.ports[port].mac, self.hosts[to].mac);
        if frame.ethernet.src != src_mac {
            differences.push(format!(
                "eth.source: expected {src_mac} (the router on p{port}), observed {}",
                frame.ethernet.src
            ));
        }
        if frame.ethernet.dst != dst_mac {
            differences.push(format!(
                "eth.destination: expected {dst_mac} ({}), observed {}",
                self.hosts[to].name, frame.ethernet.dst
            ));
        }
        let observed = match &frame.network {
            Network::Ipv4(p) => p.clone(),
            _ => {
                differences.push(format!("expected IPv4, observed {}", frame.summary()));
                return Err(CheckError::Mismatch {
                    step: step.into(),
                    differences,
                });
            }
        };
        differences.extend(packet_differences(expected, &observed, true));
        if differences.is_empty() {
            Ok(observed)
        } else {
            Err(CheckError::Mismatch {
                step: step.into(),
                differences,
            })
        }
    }

    /// Step 1 of the module doc: `packet` from inside host `from` to outside host `to`.
    /// Returns the external port (identifier) it left with.
    /// A UDP datagram from `from:sport` to `to:dport` sent out through the NAT and checked
    /// as [`NatRun::outbound`] does; the step is named after the flow, then `note`.
    fn udp_out(
        &mut self,
        (from, sport): (usize, u16),
        (to, dport): (usize, u16),
        note: &str,
        clause: &Clause,
    ) -> Result<u16, CheckError> {
        let packet = self.udp(from, sport, to, dport);
        let step = format!(
            "{}:{sport} > {}:{dport}{note}",
            HOST_NAMES[from], HOST_NAMES[to]
        );
        self.outbound(&step, from, to, &packet, clause)
    }

    fn outbound(
        &mut self,
        step: &str,
        from: usize,
        to: usize,
        packet: &Ipv4Packet,
        clause: &Clause,
    ) -> Result<u16, CheckError> {
        let prediction: Prediction =
            self.model
                .predict_packet(packet)
                .map_err(|e| CheckError::WrongAnswer {
                    step: step.into(),
                    expected: "a packet the NAT model translates".into(),
                    observed: e.to_string(),
                })?;
        self.s.note(format!("{step}: expect {prediction}"));
        self.send(step, from, packet)?;
        let (port, frame) = self.next_frame(step)?;
        let observed_port = match (port, frame.as_ipv4().map(|p| &p.transport)) {
            (1, Some(Transport::Udp(u))) => u.src_port,
            (1, Some(Transport::Tcp(t))) => t.src_port,
            (1, Some(Transport::Icmpv4(m))) if m.icmp_type == 8 => {
                u16::from_be_bytes([m.rest_of_header[0], m.rest_of_header[1]])
            }
            _ => {
                return Err(CheckError::Mismatch {
                    step: step.into(),
                    differences: vec![format!(
                        "expected {} translated on p1, observed on p{port}: {}",
                        prediction.flow,
                        frame.summary()
                    )],
                });
            }
        };
        let mapping = self
            .model
            .learn(prediction.flow, observed_port)
            .map_err(|e| CheckError::Mismatch {
                step: step.into(),
                differences: vec![format!("{e} ({})", clause.source)],
            })?;
        let expected = self
            .model
            .outbound(packet)
            .map_err(|e| CheckError::WrongAnswer {
                step: step.into(),
                expected: "the model's translation".into(),
                observed: e.to_string(),
            })?;
        let mut differences = Vec::new();
        let (src_mac, dst_mac) = (self.ports[1].mac, self.hosts[to].mac);
        if frame.ethernet.src != src_mac {
            differences.push(format!(
                "eth.source: expected {src_mac} (the router on p1), observed {}",
                frame.ethernet.src
            ));
        }
        if frame.ethernet.dst != dst_mac {
            differences.push(format!(
                "eth.destination: expected {dst_mac} ({}), observed {}",
                self.hosts[to].name, frame.ethernet.dst
            ));
        }
        if let Some(observed) = frame.as_ipv4() {
            differences.extend(packet_differences(&expected, observed, true));
        }
        if !differences.is_empty() {
            return Err(CheckError::Mismatch {
                step: step.into(),
                differences,
            });
        }
        self.compare_conntrack(step)?;
        Ok(mapping.external.port())
    }

    /// Step 2: `packet` from outside host `from` to the external address comes back to
    /// inside host `to`, as the model translates it.
    fn inbound(
        &mut self,
        step: &str,
        from: usize,
        to: usize,
        packet: &Ipv4Packet,
    ) -> Result<(), CheckError> {
        let expected = self
            .model
            .inbound(packet)
            .map_err(|e| CheckError::WrongAnswer {
                step: step.into(),
                expected: "a packet the NAT model translates back".into(),
                observed: e.to_string(),
            })?;
        if expected.dst != self.hosts[to].ip {
            return Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: format!("a packet for {}", self.hosts[to].name),
                observed: format!("the model sends it to {}", expected.dst),
            });
        }
        self.send(step, from, packet)?;
        self.expect_packet(step, 0, to, &expected)?;
        self.compare_conntrack(step)
    }

    /// Step 4 of the module doc: after the last step, a barrier on every port, each failing
    /// on any frame but its own machinery, so nothing else left the router on any side.
    fn silence(&mut self) -> Result<(), CheckError> {
        for port in 0..self.ports.len() {
            let step =
                format!("after the last step: nothing else out of any port (barrier on p{port})");
            let info = &self.ports[port];
            let (Some((router_ip, _)), Some(me)) = (info.ipv4, host_ip(info, BARRIER_OCTET)) else {
                return Err(unsupported(&step, "a port without an IPv4 address"));
            };
            let mac = crate::wire::plan::nat_host(port as u8, BARRIER_OCTET);
            let mut probe = SilenceProbe {
                echo: Echo {
                    src_mac: mac,
                    dst_mac: info.mac,
                    ips: EchoIps::V4(me, router_ip),
                    id: BARRIER_ID,
                    seq: port as u16 + 1,
                },
                me: (me, mac),
                port,
                step: &step,
            };
            let plan = Plan {
                entry: Entry::Port(port),
                awaited: [port].into(),
                timeout: FRAME_TIMEOUT,
                drain: false,
                record: true,
                retry: false,
            };
            if let Ended::TimedOut { .. } = self.s.run_barrier(&step, &plan, &mut probe)? {
                return Err(CheckError::NothingObserved {
                    step: format!("{step}: the barrier (an echo request to {router_ip})"),
                    waited: FRAME_TIMEOUT,
                });
            }
        }
        Ok(())
    }

    /// Step 3: the conntrack table holds exactly the model's mappings.
    fn compare_conntrack(&mut self, step: &str) -> Result<(), CheckError> {
        let step = format!("{step}: conntrack");
        let entries = match self.s.query(&step, StateQuery::Conntrack)? {
            StateAnswer::Conntrack(e) => e,
            other => {
                return Err(CheckError::WrongAnswer {
                    step,
                    expected: "the conntrack table".into(),
                    observed: format!("{other:?}"),
                });
            }
        };
        let differences = conntrack_differences(self.model.mappings(), &entries);
        if differences.is_empty() {
            let n = entries.len();
            self.s.note(format!(
                "conntrack: {n} {}, as the model",
                if n == 1 { "entry" } else { "entries" }
            ));
            Ok(())
        } else {
            Err(CheckError::Mismatch { step, differences })
        }
    }
}

/// The entry conntrack holds for a mapping: (protocol, original, reply) as address:port
/// pairs (ICMP: the identifier for both ports).
fn expected_entry(m: &Mapping) -> (u8, [SocketAddrV4; 2], [SocketAddrV4; 2]) {
    let (rs, rd) = m.reply();
    (m.flow.protocol.number(), [m.flow.src, m.flow.dst], [rs, rd])
}

fn observed_entry(e: &ConntrackEntry) -> Option<(u8, [SocketAddrV4; 2], [SocketAddrV4; 2])> {
    let v4 = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => Some(a),
        std::net::IpAddr::V6(_) => None,
    };
    let t = |t: &crate::sandbox::ConntrackTuple| -> Option<[SocketAddrV4; 2]> {
        Some([
            SocketAddrV4::new(v4(t.src)?, t.sport),
            SocketAddrV4::new(v4(t.dst)?, t.dport),
        ])
    };
    Some((e.protocol, t(&e.original)?, t(&e.reply)?))
}

/// Every mapping the model has and the table lacks, and every table entry the model does
/// not have.
pub fn conntrack_differences(mappings: &[Mapping], entries: &[ConntrackEntry]) -> Vec<String> {
    let observed: Vec<_> = entries.iter().map(|e| (e, observed_entry(e))).collect();
    let mut differences = Vec::new();
    for m in mappings {
        let want = expected_entry(m);
        if !observed.iter().any(|(_, o)| *o == Some(want)) {
            let same_flow = observed
                .iter()
                .find(|(_, o)| o.is_some_and(|o| o.0 == want.0 && o.1 == want.1));
            differences.push(match same_flow {
                Some((e, _)) => format!(
                    "conntrack {}: expected reply {} > {}, observed {e}",
                    m.flow, want.2[0], want.2[1]
                ),
                None => format!("conntrack: expected an entry for {m}, none"),
            });
        }
    }
    for (e, o) in &observed {
        let known = o.is_some_and(|o| mappings.iter().any(|m| expected_entry(m).1 == o.1));
        if !known {
            differences.push(format!("conntrack: unexpected entry {e}"));
        }
    }
    differences
}

/// A reply from outside host `from` to the external endpoint of `mapping`: UDP with a new
/// payload.
fn udp_reply(run: &mut NatRun<'_, '_>, from: usize, mapping: &Mapping) -> Ipv4Packet {
    let data = run.payload();
    let dst = run.external();
    let mut p = Ipv4Packet::new(
        run.hosts[from].ip,
        dst,
        Transport::Udp(UdpDatagram::new(
            mapping.flow.dst.port(),
            mapping.external.port(),
            data,
        )),
    );
    p.identification = 0x5200 | (run.next_tag as u16 & 0xff);
    p
}

/// An ICMP error from `from` (type, code) about `left` (the packet as it left the NAT),
/// quoting `len` bytes of it (all when `None`).
fn icmp_error(
    run: &mut NatRun<'_, '_>,
    from: usize,
    icmp_type: u8,
    code: u8,
    left: &Ipv4Packet,
    len: Option<usize>,
) -> Ipv4Packet {
    let mut quote =
        Frame::new(MacAddr::ZERO, MacAddr::ZERO, Network::Ipv4(left.clone())).emit()[14..].to_vec();
    if let Some(n) = len {
        quote.truncate(n);
    }
    let msg = match icmp_type {
        11 => Icmpv4Message::time_exceeded(code, quote),
        _ => Icmpv4Message::dest_unreachable(code, quote),
    };
    let dst = run.external();
    let tag = run.tag();
    let mut p = Ipv4Packet::new(run.hosts[from].ip, dst, Transport::Icmpv4(msg));
    p.identification = 0x4500 | (tag as u16 & 0xff);
    p
}

fn mapping_of(run: &NatRun<'_, '_>, packet: &Ipv4Packet) -> Result<Mapping, CheckError> {
    let flow = Flow::of_packet(packet).map_err(|e| CheckError::WrongAnswer {
        step: "model".into(),
        expected: "a translatable packet".into(),
        observed: e.to_string(),
    })?;
    run.model
        .mapping(&flow)
        .copied()
        .ok_or_else(|| CheckError::WrongAnswer {
            step: "model".into(),
            expected: format!("a mapping for {flow}"),
            observed: "none".into(),
        })
}

fn port_kept(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    for (sport, dport) in [(40000, 7000), (700, 53), (53, 53)] {
        run.udp_out((A, sport), (S, dport), "", &LINUX_KEEP_PORT)?;
    }
    let p = run.syn(A, 40001, S, 80);
    run.outbound("A:40001 > S:80 SYN", A, S, &p, &LINUX_KEEP_PORT)?;
    let p = run.echo(A, 0x1234, S);
    run.outbound("A echo id 4660 > S", A, S, &p, &LINUX_KEEP_PORT)?;
    run.silence()
}

fn clash_same_class(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    for sport in [53u16, 520, 700, 40000] {
        let pa = run.udp(A, sport, S, 7000);
        run.outbound(&format!("A:{sport} > S:7000"), A, S, &pa, &NO_OVERLOADING)?;
        let pb = run.udp(B, sport, S, 7000);
        run.outbound(
            &format!("B:{sport} > S:7000 (clash)"),
            B,
            S,
            &pb,
            &PORT_RANGES,
        )?;
        // Replies to both external ports reach the right host.
        for (host, p) in [(B, &pb), (A, &pa)] {
            let m = mapping_of(&run, p)?;
            let reply = udp_reply(&mut run, S, &m);
            let step = format!(
                "S:7000 > nat:{} (reply to {})",
                m.external.port(),
                run.hosts[host].name
            );
            run.inbound(&step, S, host, &reply)?;
        }
    }
    run.silence()
}

fn mapping_reused(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    run.udp_out((A, 5000), (S, 7000), "", &EIM)?;
    let moved = run.udp_out((B, 5000), (S, 7000), " (clash)", &EIM)?;
    let reuses = format!(" (reuses {moved})");
    run.udp_out((B, 5000), (S, 7001), &reuses, &EIM)?;
    run.udp_out((B, 5000), (S2, 7000), &reuses, &EIM)?;
    run.udp_out((A, 5000), (S2, 7000), " (reuses 5000)", &EIM)?;
    run.silence()
}

fn endpoint_dependent_after_clash(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    run.udp_out((A, 6000), (S, 7000), "", &EIM)?;
    run.udp_out((B, 6000), (S2, 7000), " (6000 is free towards S2)", &EIM)?;
    run.udp_out((B, 6000), (S, 7000), " (6000 is A's towards S)", &EIM)?;
    run.silence()
}

fn reply_translated(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    let p = run.udp(A, 40000, S, 7000);
    run.outbound("A:40000 > S:7000", A, S, &p, &NAPT)?;
    let m = mapping_of(&run, &p)?;
    for i in 1..=2 {
        let reply = udp_reply(&mut run, S, &m);
        run.inbound(&format!("S:7000 > nat:40000 (reply {i})"), S, A, &reply)?;
    }
    let syn = run.syn(A, 40001, S, 80);
    run.outbound("A:40001 > S:80 SYN", A, S, &syn, &NAPT)?;
    let Transport::Tcp(seg) = &syn.transport else {
        unreachable!("built as TCP")
    };
    let synack = Ipv4Packet::new(
        run.hosts[S].ip,
        run.external(),
        Transport::Tcp(TcpSegment::new(
            80,
            40001,
            77_000,
            seg.seq.wrapping_add(1),
            TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
        )),
    );
    run.inbound("S:80 > nat:40001 SYN-ACK", S, A, &synack)?;
    let echo = run.echo(A, 0x1234, S);
    run.outbound("A echo id 4660 > S", A, S, &echo, &ICMP_QUERY)?;
    let Transport::Icmpv4(req) = &echo.transport else {
        unreachable!("built as ICMP")
    };
    let m = mapping_of(&run, &echo)?;
    let seq = u16::from_be_bytes([req.rest_of_header[2], req.rest_of_header[3]]);
    let reply = Ipv4Packet::new(
        run.hosts[S].ip,
        run.external(),
        Transport::Icmpv4(Icmpv4Message::echo_reply(
            m.external.port(),
            seq,
            req.payload.clone(),
        )),
    );
    run.inbound("S > nat echo reply", S, A, &reply)?;
    run.silence()
}

fn icmp_error_translated(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut run = NatRun::start(s)?;
    // UDP to a closed port: port unreachable from the server, quoting 8 bytes of UDP.
    let p = run.udp(A, 40000, S, 9);
    run.outbound("A:40000 > S:9", A, S, &p, &ICMP_ERROR)?;
    let left = run.translated(&p)?;
    let err = icmp_error(&mut run, S, 3, 3, &left, Some(28));
    run.inbound("S > nat: port unreachable for nat:40000 > S:9", S, A, &err)?;
    // The same quoting the whole datagram.
    let err = icmp_error(&mut run, S, 3, 3, &left, None);
    run.inbound(
        "S > nat: port unreachable, whole datagram quoted",
        S,
        A,
        &err,
    )?;
    // TCP: time exceeded from a router on the way, quoting the whole TCP header.
    let syn = run.syn(A, 40001, S, 80);
    run.outbound("A:40001 > S:80 SYN", A, S, &syn, &TCP_ICMP)?;
    let left = run.translated(&syn)?;
    let err = icmp_error(&mut run, T, 11, 0, &left, None);
    run.inbound("T > nat: time exceeded for the SYN", T, A, &err)?;
    // TCP: host unreachable from the server, 8 bytes of TCP quoted.
    let err = icmp_error(&mut run, S, 3, 1, &left, Some(28));
    run.inbound("S > nat: host unreachable for the SYN", S, A, &err)?;
    // Echo: time exceeded from the router on the way.
    let echo = run.echo(A, 0x1234, S);
    run.outbound("A echo id 4660 > S", A, S, &echo, &ICMP_ERROR)?;
    let left = run.translated(&echo)?;
    let err = icmp_error(&mut run, T, 11, 0, &left, None);
    run.inbound("T > nat: time exceeded for the echo request", T, A, &err)?;
    run.silence()
}
