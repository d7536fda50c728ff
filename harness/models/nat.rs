//! Source NAT (NAPT, "masquerade"): the translation table of a router that rewrites every
//! flow leaving by one interface to its own address there, as a pure model.
//!
//! Read first: RFC 3022 §2 (Traditional NAT, NAPT); RFC 4787 §4.1 (mapping behaviour,
//! REQ-1) and §4.2 (port assignment: REQ-3 and its port ranges, REQ-4 parity); RFC 5382 §8
//! (the same for TCP); RFC 5508 §7 (ICMP error translation, REQ-4); Linux
//! `net/netfilter/nf_nat_core.c` (`get_unique_tuple`, `find_appropriate_src`,
//! `nf_nat_l4proto_unique_tuple`) and `nf_nat_proto.c` (`nf_nat_icmp_reply_translation`).
//!
//! # The table
//!
//! A [`Mapping`] is what conntrack holds for one NATed flow: the original tuple (protocol,
//! inside source, remote destination, as the inside host sent it) and the external endpoint
//! it was given (the NAT's address and a port). Replies come back from the remote to that
//! external endpoint, so the reply tuple is `remote > external`; two mappings may never share
//! a reply tuple (the NAT could not tell their replies apart). For ICMP echo the identifier
//! is the port: it stands for both ports of the tuple, and the remote is an address only.
//!
//! # Predicting a new mapping ([`NatTable::predict`])
//!
//! Linux picks a moved port at random, so a prediction is a *set*: [`PortChoice`] is either
//! one exact port or "any port of this class except these". The caller observes the port the
//! NAT chose (on the wire, and in the conntrack table), checks it against the prediction and
//! hands it back to the model ([`NatTable::learn`]), which from then on is exact again.
//!
//! Linux ([`NatDeviation::EndpointDependentAfterClash`] on, `get_unique_tuple` for a source NAT without `random`), for
//! a flow with no mapping yet, in this order:
//! 1. the newest mapping of the same inside endpoint (protocol, address, port), if its
//!    external port is free towards this remote ("free": no other mapping has the reply
//!    tuple `remote > external:port`): reuse it (`find_appropriate_src`, newest first
//!    because `nf_nat_setup_info` adds to the head of the by-source hash chain);
//! 2. else the inside port itself, if free: the port is kept;
//! 3. else a port picked pseudo-randomly *inside the class of the original port*
//!    (`nf_nat_l4proto_unique_tuple` with no port range given): 1–511 for ports below 512,
//!    600–1023 for 512–1023 (the kernel's comment: "Loose convention: >> 512 is credential
//!    passing", so 512–599 are never handed out), 1024–65535 above; for ICMP any identifier
//!    0–65535. The kernel tries at most 128 + 64 + 32 + 16 candidates; a class that full is
//!    not modelled.
//!
//! The RFC (the RFC profile, no [`NatDeviation`]) asks for endpoint-independent mapping (REQ-1): once an
//! inside endpoint has an external endpoint, every flow from it uses that one, whatever the
//! destination. A first mapping may take any port of the RFC's range for the original port
//! (REQ-3 a: 0–1023 or 1024–65535) that no other inside endpoint holds, towards any remote
//! (no port overloading, REQ-3: "the same external port for different internal endpoints"
//! is overloading even when their destinations differ). Port preservation is not required
//! by the RFC and not predicted.
//!
//! # Where Linux and the RFC part ([`NatDeviation`])
//!
//! * **Endpoint-dependent mapping after a clash** (RFC 4787 REQ-1, RFC 5382 REQ-1): step 1
//!   gives up on the old mapping when its port is taken towards the new remote (another
//!   inside host got the same port for a different remote first, because Linux keeps the
//!   port whenever the reply tuple is unique), and the flow gets a second external port.
//! * **Port parity** (RFC 4787 REQ-4, a RECOMMENDED): a moved port is random, its parity
//!   is not preserved. The model does not predict parity at all (no clause is checked).
//!
//! # Reverse translation ([`NatTable::inbound`])
//!
//! A packet from outside to an external endpoint is a reply when it matches a mapping's
//! reply tuple: its destination becomes the inside endpoint again (address and port, or the
//! original ICMP identifier). An ICMP error (destination unreachable, time exceeded,
//! parameter problem) quotes the packet that provoked it, which left the NAT translated:
//! the quoted source is the external endpoint. RFC 5508 REQ-4 wants the quoted IP and
//! transport headers reverted to the original form and the outer destination set to the
//! quoted source after translation; the outer source (the remote, or a router on the way)
//! stays. Every rewritten field's checksum is updated: the outer IPv4 header and transport
//! checksum are simply recomputed (the model's packets are emitted with correct checksums),
//! the quoted IPv4 header checksum and the quoted transport checksum are updated
//! incrementally (RFC 1624, eqn. 3), as Linux does, because the quote may be cut short of
//! the data the checksum covers. Linux only updates a quoted TCP checksum when the quote
//! holds the whole 20-byte TCP header (`tcp_manip_pkt`), a quoted UDP checksum when it is
//! not zero, and writes `0xffff` for a UDP result of zero (`CSUM_MANGLED_0`).
//!
//! Forwarding itself (TTL minus one, MAC rewrite) is the forwarding model's business; the
//! packets here carry the TTL the router forwards them with, nothing about Ethernet.
//!
//! Nothing here panics on any input: packets the model cannot translate give a
//! [`NatError`].

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use crate::models::profile::{Deviation, Profile};
use crate::wire::{Icmpv4Message, Ipv4Packet, Transport};

/// The protocols the NAT translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NatProtocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP echo (1): the identifier is the port.
    Icmp,
}

impl NatProtocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            NatProtocol::Tcp => 6,
            NatProtocol::Udp => 17,
            NatProtocol::Icmp => 1,
        }
    }

    /// The protocol of an IP protocol number, if the NAT translates it.
    pub fn from_number(n: u8) -> Option<NatProtocol> {
        match n {
            6 => Some(NatProtocol::Tcp),
            17 => Some(NatProtocol::Udp),
            1 => Some(NatProtocol::Icmp),
            _ => None,
        }
    }
}

impl fmt::Display for NatProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatProtocol::Tcp => "tcp",
            NatProtocol::Udp => "udp",
            NatProtocol::Icmp => "icmp",
        })
    }
}

/// A flow as the inside host sends it (conntrack's original tuple).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Flow {
    /// The protocol.
    pub protocol: NatProtocol,
    /// The inside endpoint (for ICMP echo: the address and the identifier).
    pub src: SocketAddrV4,
    /// The remote endpoint (for ICMP echo: the address and the identifier again).
    pub dst: SocketAddrV4,
}

impl Flow {
    /// A UDP flow.
    pub fn udp(src: SocketAddrV4, dst: SocketAddrV4) -> Flow {
        Flow {
            protocol: NatProtocol::Udp,
            src,
            dst,
        }
    }

    /// A TCP flow.
    pub fn tcp(src: SocketAddrV4, dst: SocketAddrV4) -> Flow {
        Flow {
            protocol: NatProtocol::Tcp,
            src,
            dst,
        }
    }

    /// An ICMP echo flow with identifier `id`.
    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Flow {
        Flow {
            protocol: NatProtocol::Icmp,
            src: SocketAddrV4::new(src, id),
            dst: SocketAddrV4::new(dst, id),
        }
    }

    /// Whether `other` talks to the same remote endpoint over the same protocol (for ICMP
    /// the remote is its address alone).
    fn same_remote(&self, other: &Flow) -> bool {
        self.protocol == other.protocol
            && match self.protocol {
                NatProtocol::Icmp => self.dst.ip() == other.dst.ip(),
                _ => self.dst == other.dst,
            }
    }

    /// Whether `other` comes from the same inside endpoint over the same protocol.
    fn same_source(&self, other: &Flow) -> bool {
        self.protocol == other.protocol && self.src == other.src
    }

    /// The flow an outbound packet belongs to: UDP, TCP, or an ICMP echo request.
    pub fn of_packet(p: &Ipv4Packet) -> Result<Flow, NatError> {
        match &p.transport {
            Transport::Udp(u) => Ok(Flow::udp(
                SocketAddrV4::new(p.src, u.src_port),
                SocketAddrV4::new(p.dst, u.dst_port),
            )),
            Transport::Tcp(t) => Ok(Flow::tcp(
                SocketAddrV4::new(p.src, t.src_port),
                SocketAddrV4::new(p.dst, t.dst_port),
            )),
            Transport::Icmpv4(m) if m.icmp_type == 8 && m.code == 0 => {
                Ok(Flow::icmp(p.src, p.dst, echo_id(m)))
            }
            other => Err(NatError::NotTranslatable {
                what: format!("an outbound packet of protocol {}", other.protocol()),
            }),
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            NatProtocol::Icmp => write!(
                f,
                "icmp {} > {} id {}",
                self.src.ip(),
                self.dst.ip(),
                self.src.port()
            ),
            p => write!(f, "{p} {} > {}", self.src, self.dst),
        }
    }
}

/// One NATed flow: its original tuple and the external endpoint it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mapping {
    /// The flow as the inside host sends it.
    pub flow: Flow,
    /// The NAT's address and the port (ICMP identifier) the flow leaves with.
    pub external: SocketAddrV4,
}

impl Mapping {
    /// The reply tuple: what the remote sends back (source, destination).
    pub fn reply(&self) -> (SocketAddrV4, SocketAddrV4) {
        match self.flow.protocol {
            NatProtocol::Icmp => (
                SocketAddrV4::new(*self.flow.dst.ip(), self.external.port()),
                self.external,
            ),
            _ => (self.flow.dst, self.external),
        }
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {}", self.flow, self.external)
    }
}

/// A range of ports, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortClass {
    /// The lowest port.
    pub first: u16,
    /// The highest port.
    pub last: u16,
}

impl PortClass {
    /// Whether `port` is in the class.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The class Linux moves a clashing `port` into (`nf_nat_l4proto_unique_tuple` without
    /// a port range): 1–511, 600–1023, 1024–65535; ICMP identifiers anywhere in 0–65535.
    pub fn linux(protocol: NatProtocol, port: u16) -> PortClass {
        let (first, last) = match (protocol, port) {
            (NatProtocol::Icmp, _) => (0, 65535),
            (_, 0..=511) => (1, 511),
            (_, 512..=1023) => (600, 1023),
            _ => (1024, 65535),
        };
        PortClass { first, last }
    }

    /// The range RFC 4787 REQ-3 a) recommends for `port`: 0–1023 or 1024–65535 (ICMP
    /// identifiers: any).
    pub fn rfc4787(protocol: NatProtocol, port: u16) -> PortClass {
        let (first, last) = match (protocol, port) {
            (NatProtocol::Icmp, _) => (0, 65535),
            (_, 0..=1023) => (0, 1023),
            _ => (1024, 65535),
        };
        PortClass { first, last }
    }
}

impl fmt::Display for PortClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Which rules the model follows: the one profile type ([`Profile`]) over
/// [`NatDeviation`]. Under the RFC text the model predicts RFC 4787's port choice, under
/// Linux `get_unique_tuple`'s (see the module doc).
pub type NatProfile = Profile<NatDeviation>;

/// One place where Linux's NAT departs from RFC 4787.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NatDeviation {
    /// RFC 4787 §4.1 REQ-1 (and RFC 5382 REQ-1): an inside endpoint whose external port is
    /// taken towards a new remote (by another inside host that got the same port for a
    /// different remote first) gets a second, different external port for that remote:
    /// endpoint-dependent mapping. This is the switch between the two port choices of the
    /// module doc: with it the model predicts Linux's `get_unique_tuple` (the newest
    /// mapping of the endpoint if free towards the remote, else the inside port if free,
    /// else a port of its Linux class), without it RFC 4787's (the endpoint's external port
    /// again, else a port of the REQ-3 range that no other inside endpoint holds).
    EndpointDependentAfterClash,
    /// RFC 4787 §4.2.2 REQ-4 (RECOMMENDED): a moved port is random, its parity is not
    /// preserved. The model predicts no parity under either profile, so this switch changes
    /// no prediction; it documents the deviation.
    NoParityPreservation,
}

impl Deviation for NatDeviation {
    const MODEL: &'static str = "nat";
    const ALL: &'static [NatDeviation] = &[
        NatDeviation::EndpointDependentAfterClash,
        NatDeviation::NoParityPreservation,
    ];
    /// Linux's masquerade: every deviation.
    const LINUX: &'static [NatDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            NatDeviation::EndpointDependentAfterClash => "RFC 4787 §4.1 REQ-1",
            NatDeviation::NoParityPreservation => "RFC 4787 §4.2.2 REQ-4",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            NatDeviation::EndpointDependentAfterClash => {
                "an endpoint whose port is taken towards a new remote gets a second external port"
            }
            NatDeviation::NoParityPreservation => "a moved port is random, whatever its parity",
        }
    }
}

/// How the external port of a flow is predicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortChoice {
    /// The flow is mapped already: the same port again.
    Existing(u16),
    /// A new mapping keeps the inside port (it is free towards the remote).
    Kept(u16),
    /// A new mapping reuses the external port of another flow from the same inside endpoint
    /// (endpoint-independent mapping).
    Reused {
        /// The port.
        port: u16,
        /// The flow whose mapping is reused.
        from: Flow,
    },
    /// A new mapping takes some port of `class` that no other mapping uses towards the same
    /// remote (`taken`).
    Within {
        /// Where the port must be.
        class: PortClass,
        /// Ports of other flows to the same remote: never these.
        taken: BTreeSet<u16>,
    },
}

/// What the model expects for one outbound flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prediction {
    /// The flow.
    pub flow: Flow,
    /// The external port it may get.
    pub choice: PortChoice,
}

impl Prediction {
    /// Whether the NAT may give the flow external port `port`.
    pub fn admits(&self, port: u16) -> bool {
        match &self.choice {
            PortChoice::Existing(p) | PortChoice::Kept(p) | PortChoice::Reused { port: p, .. } => {
                *p == port
            }
            PortChoice::Within { class, taken } => class.contains(port) && !taken.contains(&port),
        }
    }

    /// The one port predicted, when there is one.
    pub fn exact(&self) -> Option<u16> {
        match &self.choice {
            PortChoice::Existing(p) | PortChoice::Kept(p) | PortChoice::Reused { port: p, .. } => {
                Some(*p)
            }
            PortChoice::Within { .. } => None,
        }
    }

    /// Whether the flow is new (not mapped yet).
    pub fn is_new(&self) -> bool {
        !matches!(self.choice, PortChoice::Existing(_))
    }
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.choice {
            PortChoice::Existing(p) => write!(f, "port {p} (mapped already)"),
            PortChoice::Kept(p) => write!(f, "port {p} kept (free towards the remote)"),
            PortChoice::Reused { port, from } => {
                write!(f, "port {port} reused (the mapping of {from})")
            }
            PortChoice::Within { class, taken } => {
                write!(f, "a port in {class}")?;
                if !taken.is_empty() {
                    let t: Vec<String> = taken.iter().map(u16::to_string).collect();
                    write!(f, " other than {}", t.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// Why the model cannot translate a packet, or refuses an observed port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NatError {
    /// The packet is not one the NAT translates (a protocol without ports, an ICMP message
    /// that is neither an echo nor an error, a quote too short to read).
    #[error("not translatable: {what}")]
    NotTranslatable {
        /// What the packet is.
        what: String,
    },
    /// No mapping matches the packet (an outbound packet of an unmapped flow, a reply or an
    /// error about a flow the NAT never saw).
    #[error("no mapping for {what}")]
    NoMapping {
        /// What was looked up.
        what: String,
    },
    /// The NAT gave a flow an external port outside the prediction.
    #[error("{flow}: expected {expected}, observed port {observed}")]
    PortNotPredicted {
        /// The flow.
        flow: Flow,
        /// The prediction, rendered.
        expected: String,
        /// The port observed.
        observed: u16,
    },
    /// The packet's TTL is too small to be forwarded.
    #[error("TTL {ttl}: the router would not forward it")]
    TtlExpired {
        /// The TTL.
        ttl: u8,
    },
}

/// The translation table of a masquerading router with one external address.
///
/// Call order: for each outbound packet, [`NatTable::predict`] (or
/// [`NatTable::predict_packet`]) says which external port it may get; once the port is
/// observed, [`NatTable::learn`] checks it against the prediction and records the mapping;
/// [`NatTable::outbound`] then gives the packet as it must leave. [`NatTable::inbound`]
/// gives a reply or an ICMP error as it must reach the inside host. [`NatTable::forget`]
/// drops a mapping (conntrack forgot the flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatTable {
    profile: NatProfile,
    external: Ipv4Addr,
    /// In the order they were made (the newest last).
    mappings: Vec<Mapping>,
}

impl NatTable {
    /// An empty table for a NAT whose external address is `external`.
    pub fn new(profile: NatProfile, external: Ipv4Addr) -> NatTable {
        NatTable {
            profile,
            external,
            mappings: Vec::new(),
        }
    }

    /// The profile.
    pub fn profile(&self) -> &NatProfile {
        &self.profile
    }

    /// The external address.
    pub fn external(&self) -> Ipv4Addr {
        self.external
    }

    /// Every mapping, oldest first.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// The mapping of `flow`, if any.
    pub fn mapping(&self, flow: &Flow) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.flow == *flow)
    }

    /// Ports that other flows to the same remote use (their replies would clash).
    fn taken_towards(&self, flow: &Flow) -> BTreeSet<u16> {
        self.mappings
            .iter()
            .filter(|m| m.flow != *flow && m.flow.same_remote(flow))
            .map(|m| m.external.port())
            .collect()
    }

    /// Ports that mappings of other inside endpoints hold, towards any remote.
    fn held_by_other_endpoints(&self, flow: &Flow) -> BTreeSet<u16> {
        self.mappings
            .iter()
            .filter(|m| m.flow.protocol == flow.protocol && !m.flow.same_source(flow))
            .map(|m| m.external.port())
            .collect()
    }

    /// The newest mapping of another flow from the same inside endpoint.
    fn newest_of_source(&self, flow: &Flow) -> Option<&Mapping> {
        self.mappings
            .iter()
            .rev()
            .find(|m| m.flow != *flow && m.flow.same_source(flow))
    }

    /// Which external port `flow` may get.
    pub fn predict(&self, flow: &Flow) -> Prediction {
        let choice = if let Some(m) = self.mapping(flow) {
            PortChoice::Existing(m.external.port())
        } else {
            let taken = self.taken_towards(flow);
            let sport = flow.src.port();
            if self.profile.has(NatDeviation::EndpointDependentAfterClash) {
                match self.newest_of_source(flow) {
                    Some(m) if !taken.contains(&m.external.port()) => PortChoice::Reused {
                        port: m.external.port(),
                        from: m.flow,
                    },
                    _ if !taken.contains(&sport) => PortChoice::Kept(sport),
                    _ => PortChoice::Within {
                        class: PortClass::linux(flow.protocol, sport),
                        taken,
                    },
                }
            } else {
                match self.newest_of_source(flow) {
                    Some(m) => PortChoice::Reused {
                        port: m.external.port(),
                        from: m.flow,
                    },
                    // REQ-3, no port overloading: a port another inside endpoint holds is
                    // taken whatever its remote (with REQ-1 it would reuse it towards every
                    // remote, so two flows could share a reply tuple).
                    None => PortChoice::Within {
                        class: PortClass::rfc4787(flow.protocol, sport),
                        taken: self.held_by_other_endpoints(flow),
                    },
                }
            }
        };
        Prediction {
            flow: *flow,
            choice,
        }
    }

    /// The prediction for an outbound packet's flow.
    pub fn predict_packet(&self, packet: &Ipv4Packet) -> Result<Prediction, NatError> {
        Ok(self.predict(&Flow::of_packet(packet)?))
    }

    /// Records that the NAT gave `flow` external port `port`, after checking it against the
    /// prediction. Returns the mapping (the existing one for a mapped flow).
    pub fn learn(&mut self, flow: Flow, port: u16) -> Result<Mapping, NatError> {
        let prediction = self.predict(&flow);
        if !prediction.admits(port) {
            return Err(NatError::PortNotPredicted {
                flow,
                expected: prediction.to_string(),
                observed: port,
            });
        }
        if let Some(m) = self.mapping(&flow) {
            return Ok(*m);
        }
        let m = Mapping {
            flow,
            external: SocketAddrV4::new(self.external, port),
        };
        self.mappings.push(m);
        Ok(m)
    }

    /// Records a mapping without checking it (a mapping read from the NAT's table).
    pub fn insert(&mut self, mapping: Mapping) {
        self.mappings.retain(|m| m.flow != mapping.flow);
        self.mappings.push(mapping);
    }

    /// Drops the mapping of `flow` (the NAT forgot it); true when there was one.
    pub fn forget(&mut self, flow: &Flow) -> bool {
        let before = self.mappings.len();
        self.mappings.retain(|m| m.flow != *flow);
        before != self.mappings.len()
    }

    /// Drops every mapping.
    pub fn clear(&mut self) {
        self.mappings.clear();
    }

    /// An outbound packet of a mapped flow as it leaves the NAT: source address and port
    /// (ICMP identifier) translated, TTL minus one.
    pub fn outbound(&self, packet: &Ipv4Packet) -> Result<Ipv4Packet, NatError> {
        let flow = Flow::of_packet(packet)?;
        let m = self.mapping(&flow).ok_or_else(|| NatError::NoMapping {
            what: flow.to_string(),
        })?;
        let mut out = forwarded(packet)?;
        out.src = *m.external.ip();
        set_src_port(&mut out.transport, m.external.port());
        Ok(out)
    }

    /// The mapping a packet from outside answers: a reply whose source and destination
    /// match a mapping's reply tuple (an echo reply by identifier).
    fn mapping_of_reply(
        &self,
        protocol: NatProtocol,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|m| m.flow.protocol == protocol && m.reply() == (src, dst))
    }

    /// A packet from outside as it reaches the inside host: a reply to a mapped flow, or
    /// an ICMP error quoting a packet of a mapped flow (see the module doc).
    pub fn inbound(&self, packet: &Ipv4Packet) -> Result<Ipv4Packet, NatError> {
        let mut out = forwarded(packet)?;
        let no_mapping = |what: String| NatError::NoMapping { what };
        match &packet.transport {
            Transport::Udp(_) | Transport::Tcp(_) => {
                // The reply's own tuple: the remote endpoint to the external one.
                let reply = Flow::of_packet(packet)?;
                let m = self
                    .mapping_of_reply(reply.protocol, reply.src, reply.dst)
                    .ok_or_else(|| no_mapping(reply.to_string()))?;
                out.dst = *m.flow.src.ip();
                set_dst_port(&mut out.transport, m.flow.src.port());
            }
            Transport::Icmpv4(msg) if msg.icmp_type == 0 && msg.code == 0 => {
                let id = echo_id(msg);
                let (src, dst) = (
                    SocketAddrV4::new(packet.src, id),
                    SocketAddrV4::new(packet.dst, id),
                );
                let m = self
                    .mapping_of_reply(NatProtocol::Icmp, src, dst)
                    .ok_or_else(|| {
                        no_mapping(format!(
                            "echo reply {} > {} id {id}",
                            packet.src, packet.dst
                        ))
                    })?;
                out.dst = *m.flow.src.ip();
                set_src_port(&mut out.transport, m.flow.src.port());
            }
            Transport::Icmpv4(msg) if is_icmp_error(msg.icmp_type) => {
                let (quoted, m) = self.quoted_mapping(&msg.payload)?;
                let reverted = revert_quote(&msg.payload, &quoted, m);
                out.dst = *m.flow.src.ip();
                if let Transport::Icmpv4(o) = &mut out.transport {
                    o.payload = reverted;
                }
            }
            other => {
                return Err(NatError::NotTranslatable {
                    what: format!("an inbound packet of protocol {}", other.protocol()),
                });
            }
        }
        Ok(out)
    }

    /// The mapping a quoted (outbound, translated) packet belongs to.
    fn quoted_mapping(&self, quote: &[u8]) -> Result<(Quote, &Mapping), NatError> {
        let q = Quote::parse(quote)?;
        let m = self
            .mappings
            .iter()
            .find(|m| {
                m.flow.protocol == q.protocol
                    && m.external == q.src
                    && match q.protocol {
                        NatProtocol::Icmp => m.flow.dst.ip() == q.dst.ip(),
                        _ => m.flow.dst == q.dst,
                    }
            })
            .ok_or_else(|| NatError::NoMapping {
                what: format!("the quoted {} {} > {}", q.protocol, q.src, q.dst),
            })?;
        Ok((q, m))
    }
}

fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 11 | 12)
}

fn echo_id(m: &Icmpv4Message) -> u16 {
    u16::from_be_bytes([m.rest_of_header[0], m.rest_of_header[1]])
}

/// The packet as the router forwards it: TTL minus one, checksums to be recomputed.
fn forwarded(packet: &Ipv4Packet) -> Result<Ipv4Packet, NatError> {
    if packet.ttl <= 1 {
        return Err(NatError::TtlExpired { ttl: packet.ttl });
    }
    let mut out = packet.clone();
    out.ttl -= 1;
    Ok(out)
}

fn set_src_port(t: &mut Transport, port: u16) {
    match t {
        Transport::Udp(u) => u.src_port = port,
        Transport::Tcp(s) => s.src_port = port,
        Transport::Icmpv4(m) => m.rest_of_header[..2].copy_from_slice(&port.to_be_bytes()),
        _ => {}
    }
}

fn set_dst_port(t: &mut Transport, port: u16) {
    match t {
        Transport::Udp(u) => u.dst_port = port,
        Transport::Tcp(s) => s.dst_port = port,
        _ => {}
    }
}

/// The parts of a quoted packet (an ICMP error's body) the NAT reads.
#[derive(Debug, Clone, Copy)]
struct Quote {
    protocol: NatProtocol,
    /// IPv4 header length.
    ihl: usize,
    src: SocketAddrV4,
    dst: SocketAddrV4,
}

impl Quote {
    fn parse(q: &[u8]) -> Result<Quote, NatError> {
        let short = |what: &str| NatError::NotTranslatable {
            what: format!("an ICMP error whose quote is too short for {what}"),
        };
        let first = *q.first().ok_or_else(|| short("an IPv4 header"))?;
        if first >> 4 != 4 {
            return Err(NatError::NotTranslatable {
                what: "an ICMP error quoting something other than IPv4".into(),
            });
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 || q.len() < ihl + 8 {
            return Err(short("an IPv4 header and 8 bytes"));
        }
        let addr = |o: usize| Ipv4Addr::new(q[o], q[o + 1], q[o + 2], q[o + 3]);
        let word = |o: usize| u16::from_be_bytes([q[o], q[o + 1]]);
        let protocol = NatProtocol::from_number(q[9]).ok_or_else(|| NatError::NotTranslatable {
            what: format!("an ICMP error quoting protocol {}", q[9]),
        })?;
        let (sport, dport) = match protocol {
            NatProtocol::Icmp => (word(ihl + 4), word(ihl + 4)),
            _ => (word(ihl), word(ihl + 2)),
        };
        Ok(Quote {
            protocol,
            ihl,
            src: SocketAddrV4::new(addr(12), sport),
            dst: SocketAddrV4::new(addr(16), dport),
        })
    }
}

/// One's complement checksum update (RFC 1624 eqn. 3): `check` after 16-bit words `old`
/// became `new`.
pub fn checksum_update(check: u16, old: &[u16], new: &[u16]) -> u16 {
    let mut sum = u32::from(!check);
    for w in old {
        sum += u32::from(!*w);
    }
    for w in new {
        sum += u32::from(*w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn words(a: Ipv4Addr) -> [u16; 2] {
    let o = a.octets();
    [
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    ]
}

/// The quote with its source reverted to the mapping's inside endpoint: address, port (or
/// ICMP identifier), the quoted IPv4 header checksum and the quoted transport checksum
/// (where Linux updates it), incrementally.
fn revert_quote(quote: &[u8], q: &Quote, m: &Mapping) -> Vec<u8> {
    let mut out = quote.to_vec();
    let (old_ip, new_ip) = (*q.src.ip(), *m.flow.src.ip());
    let (old_port, new_port) = (q.src.port(), m.flow.src.port());
    let get = |b: &[u8], o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    // The quoted IPv4 header: source address and header checksum.
    out[12..16].copy_from_slice(&new_ip.octets());
    let ip_check = checksum_update(get(&out, 10), &words(old_ip), &words(new_ip));
    out[10..12].copy_from_slice(&ip_check.to_be_bytes());
    let l4 = q.ihl;
    match q.protocol {
        NatProtocol::Udp => {
            out[l4..l4 + 2].copy_from_slice(&new_port.to_be_bytes());
            let check = get(&out, l4 + 6);
            if check != 0 {
                let [o1, o2] = words(old_ip);
                let [n1, n2] = words(new_ip);
                let c = checksum_update(check, &[o1, o2, old_port], &[n1, n2, new_port]);
                let c = if c == 0 { 0xffff } else { c };
                out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
            }
        }
        NatProtocol::Tcp => {
            out[l4..l4 + 2].copy_from_slice(&new_port.to_be_bytes());
            if out.len() >= l4 + 20 {
                let [o1, o2] = words(old_ip);
                let [n1, n2] = words(new_ip);
                let c =
                    checksum_update(get(&out, l4 + 16), &[o1, o2, old_port], &[n1, n2, new_port]);
                out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
            }
        }
        NatProtocol::Icmp => {
            // The echo identifier; the ICMP checksum has no pseudo-header.
            out[l4 + 4..l4 + 6].copy_from_slice(&new_port.to_be_bytes());
            let c = checksum_update(get(&out, l4 + 2), &[old_port], &[new_port]);
            out[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests;
