//! An IPv4 router's forwarding decision (RFC 1812 §5.2, RFC 792): what one received frame
//! makes the router send, built on the route model ([`RouteTable`]) for the lookup.
//!
//! For a frame received on port `p` the model answers a [`Decision`]:
//! - [`Decision::Forward`]: the packet leaves with its TTL decremented and its header
//!   checksum recomputed, every other IP field and the payload unchanged, from the egress
//!   interface's MAC to the next hop's (the gateway of the route, or the destination itself
//!   on a connected subnet). When the router does not know the next hop's MAC yet, an ARP
//!   request comes first ([`Emission::dst_mac`] is `None`): the ARP model
//!   ([`crate::models::arp`]) describes that exchange in detail; here a next hop is either
//!   known or resolved on demand, which holds while a check runs well inside the reachable
//!   time.
//! - [`Decision::Error`]: an ICMP error back to the sender, routed like any packet the
//!   router sends (the route model's answer for the sender's address gives the interface,
//!   the next hop and the source address).
//! - [`Decision::Local`]: addressed to the router (one of its addresses, or a subnet
//!   broadcast): received, not forwarded.
//! - [`Decision::Discard`]: dropped without a word, and why.
//!
//! # The order of the tests (Linux, and what RFC 1812 leaves open)
//!
//! 1. A frame whose destination MAC is neither the router's on that port nor broadcast is
//!    not for it (`PACKET_OTHERHOST`): discarded before IP looks at it.
//! 2. A bad header checksum: discarded (RFC 1812 §5.2.2).
//! 3. The route lookup (`ip_route_input`): local and broadcast destinations are received;
//!    no route gives net unreachable (3/0), an `unreachable` route host unreachable (3/1),
//!    a `prohibit` route communication administratively prohibited (3/13), a `blackhole`
//!    route nothing (Linux's `ip_error` maps `EINVAL` to a silent drop).
//! 4. Only then the TTL (`ip_forward`): a packet that would leave with TTL 0 (received with
//!    TTL 0 or 1) is discarded with time exceeded in transit (11/0). So a TTL-1 packet to a
//!    destination without a route gets net unreachable, not time exceeded.
//!
//! An error is never sent about an ICMP error message, a packet that came as a link-layer
//! broadcast, or a fragment other than the first (RFC 1812 §4.3.2.7); the packet is then
//! discarded silently. A unicast packet in a link-layer broadcast is not forwarded either.
//!
//! # The ICMP error (Linux's `icmp_send`)
//!
//! - Source: the address the route back to the sender selects (Linux, with
//!   `icmp_errors_use_inbound_ifaddr` 0); on a connected subnet that is the router's address
//!   on it. When that route's preferred source (`prefsrc`) is an address of another
//!   interface, Linux still takes it, where RFC 1812 §4.3.2.4 wants an address of the
//!   interface the error leaves by ([`ForwardDeviation::ErrorSourceFromRouteBack`]); under
//!   the RFC profile the model keeps the route's source when it is one, else takes that
//!   interface's first IPv4 address.
//! - Type of service: the original's TOS bits (`& 0x1e`) with precedence 6, internetwork
//!   control (`| 0xc0`); TTL: the namespace's default (64); DF clear; the identification is
//!   the router's own and is not predicted.
//! - The quoted datagram: the original IP packet as received (TTL not yet decremented), as
//!   much as fits in 576 bytes with the new IP header and the ICMP header (RFC 1812
//!   §4.3.2.3): at most 548 bytes.
//!
//! # Profile
//!
//! The router takes a [`ForwardProfile`] (the one profile type,
//! [`crate::models::profile`]); its route table takes its own ([`crate::models::route`]),
//! whose deviations are IPv6's and so never change an IPv4 forwarding decision.
//!
//! # What is not modelled
//!
//! IP options (Linux updates record-route and timestamp options when it forwards),
//! fragmentation and "fragmentation needed" (every port of the lab has the same MTU), the
//! per-source limit Linux puts on these errors (`ip_error`'s token bucket on the sender's
//! `inet_peer`: checks send every error from a host of its own), redirects (off in the lab),
//! multicast and IPv6 forwarding.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::models::profile::{Deviation, Profile};
use crate::models::route::{AnswerKind, RouteError, RouteTable};
use crate::wire::{Frame, Icmpv4Message, Ipv4Packet, MacAddr, Network, Transport};

/// The largest ICMP error datagram, IP header included (RFC 1812 §4.3.2.3).
pub const ICMP_ERROR_MAX: usize = 576;
/// The TTL of a datagram the router originates (Linux: `net.ipv4.ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

/// One place where Linux's forwarding departs from RFC 1812.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ForwardDeviation {
    /// RFC 1812 §4.3.2.4: "the IP source address in an ICMP message originated by the router
    /// MUST be one of the IP addresses associated with the physical interface over which the
    /// ICMP message is transmitted". Linux (`icmp_send`, `icmp_errors_use_inbound_ifaddr` 0)
    /// leaves the source to the route back to the sender: its preferred source (`prefsrc`)
    /// when it has one, whichever interface holds that address, else an address of the
    /// interface (`inet_select_addr`). Without this deviation the model keeps the route's
    /// source when it is an address of the interface the error leaves by, else takes that
    /// interface's first IPv4 address.
    ErrorSourceFromRouteBack,
}

impl Deviation for ForwardDeviation {
    const MODEL: &'static str = "forward";
    const ALL: &'static [ForwardDeviation] = &[ForwardDeviation::ErrorSourceFromRouteBack];
    /// Linux 6.x with `icmp_errors_use_inbound_ifaddr` 0 (the default the lab keeps).
    const LINUX: &'static [ForwardDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            ForwardDeviation::ErrorSourceFromRouteBack => "RFC 1812 §4.3.2.4",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            ForwardDeviation::ErrorSourceFromRouteBack => {
                "an ICMP error's source is the route back's prefsrc, even one of another interface"
            }
        }
    }
}

/// Which reading of RFC 1812 the router follows: the one profile type ([`Profile`]) over
/// [`ForwardDeviation`].
pub type ForwardProfile = Profile<ForwardDeviation>;

/// One interface of the router: a port of the target. Its addresses are the route table's
/// (the interfaces the [`RouteTable`] was built on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterPort {
    /// Interface index (what routes name).
    pub ifindex: u32,
    /// The router's MAC on this port.
    pub mac: MacAddr,
}

/// An ICMP error the router owes the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum IcmpError {
    /// 3/0: no route to the destination's network.
    NetUnreachable,
    /// 3/1: an `unreachable` route.
    HostUnreachable,
    /// 3/13: a `prohibit` route.
    AdministrativelyProhibited,
    /// 11/0: the TTL ran out in transit.
    TimeExceeded,
}

impl IcmpError {
    /// ICMP type and code.
    pub fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::NetUnreachable => (3, 0),
            IcmpError::HostUnreachable => (3, 1),
            IcmpError::AdministrativelyProhibited => (3, 13),
            IcmpError::TimeExceeded => (11, 0),
        }
    }
}

/// Why a packet is dropped without a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DiscardReason {
    /// The frame's destination MAC is not the router's (nor broadcast).
    NotForUs,
    /// The IPv4 header checksum is wrong.
    BadChecksum,
    /// A `blackhole` route.
    Blackhole,
    /// A unicast packet that came as a link-layer broadcast: not forwarded (Linux:
    /// `ip_forward` forwards `PACKET_HOST` frames only).
    LinkBroadcast,
    /// An error would be due, but the packet is itself an ICMP error or a non-first
    /// fragment (RFC 1812 §4.3.2.7).
    NoErrorAboutThis(IcmpError),
}

/// One packet the router sends out of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    /// Port it leaves from.
    pub port: usize,
    /// The next hop it is sent to (the link-layer destination's IP address).
    pub next_hop: Ipv4Addr,
    /// The router's MAC on that port.
    pub src_mac: MacAddr,
    /// The next hop's MAC; `None`: unknown, the router resolves it first (ARP).
    pub dst_mac: Option<MacAddr>,
    /// The packet. For an error, `identification` is not predicted (see
    /// [`Decision::predicts_identification`]).
    pub packet: Ipv4Packet,
}

/// What a received frame makes the router do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded.
    Forward(Emission),
    /// Dropped, with an ICMP error to the sender.
    Error {
        /// Which error.
        error: IcmpError,
        /// The error datagram.
        emission: Emission,
    },
    /// Addressed to the router itself.
    Local,
    /// Dropped silently.
    Discard(DiscardReason),
    /// Outside what the model predicts (named).
    OutOfScope(&'static str),
}

impl Decision {
    /// Whether the emitted packet's identification is predicted: a forwarded packet keeps
    /// the sender's, an error carries the router's own.
    pub fn predicts_identification(&self) -> bool {
        matches!(self, Decision::Forward(_))
    }
}

/// The router: its ports, its routes, the neighbours it knows.
#[derive(Debug, Clone)]
pub struct Router {
    profile: ForwardProfile,
    routes: RouteTable,
    ports: Vec<RouterPort>,
    neighbours: BTreeMap<(usize, Ipv4Addr), MacAddr>,
}

impl Router {
    /// A router following `profile`, with these ports (in port order) and routes; no
    /// neighbour known yet.
    pub fn new(profile: ForwardProfile, routes: RouteTable, ports: Vec<RouterPort>) -> Router {
        Router {
            profile,
            routes,
            ports,
            neighbours: BTreeMap::new(),
        }
    }

    /// The router now knows `ip`'s MAC on `port` (it resolved it, or a check told it).
    pub fn learn(&mut self, port: usize, ip: Ipv4Addr, mac: MacAddr) {
        self.neighbours.insert((port, ip), mac);
    }

    /// The profile.
    pub fn profile(&self) -> &ForwardProfile {
        &self.profile
    }

    /// The MAC the router knows for `ip` on `port`.
    pub fn neighbour(&self, port: usize, ip: Ipv4Addr) -> Option<MacAddr> {
        self.neighbours.get(&(port, ip)).copied()
    }

    fn port_of(&self, ifindex: u32) -> Option<usize> {
        self.ports.iter().position(|p| p.ifindex == ifindex)
    }

    /// What the router does with `bytes`, received on `port`.
    pub fn receive(&self, port: usize, bytes: &[u8]) -> Decision {
        let Some(ingress) = self.ports.get(port) else {
            return Decision::OutOfScope("no such port");
        };
        let Ok(frame) = Frame::parse(bytes) else {
            return Decision::OutOfScope("a frame the wire parser refuses");
        };
        if !frame.vlans.is_empty() {
            return Decision::OutOfScope("VLAN-tagged frames");
        }
        let Network::Ipv4(packet) = &frame.network else {
            return Decision::OutOfScope("not IPv4");
        };
        let link_broadcast = frame.ethernet.dst == MacAddr::BROADCAST;
        if frame.ethernet.dst != ingress.mac && !link_broadcast {
            return Decision::Discard(DiscardReason::NotForUs);
        }
        if !packet.checksum_valid {
            return Decision::Discard(DiscardReason::BadChecksum);
        }
        if !packet.options.is_empty() {
            return Decision::OutOfScope("IP options");
        }
        if !RouteTable::in_scope(IpAddr::V4(packet.dst)) {
            return Decision::OutOfScope("multicast, loopback or zero destinations");
        }
        let error = |e| {
            if link_broadcast {
                Decision::Discard(DiscardReason::NoErrorAboutThis(e))
            } else {
                self.error(e, packet, bytes)
            }
        };
        let answer = match self.routes.lookup(IpAddr::V4(packet.dst), None) {
            Ok(a) => a,
            Err(RouteError::Blackhole) => return Decision::Discard(DiscardReason::Blackhole),
            Err(RouteError::NetUnreachable) => return error(IcmpError::NetUnreachable),
            Err(RouteError::HostUnreachable) => return error(IcmpError::HostUnreachable),
            Err(RouteError::Prohibited) => {
                return error(IcmpError::AdministrativelyProhibited);
            }
            Err(_) => return Decision::OutOfScope("a lookup the route model does not predict"),
        };
        match answer.kind {
            AnswerKind::Local | AnswerKind::Broadcast => return Decision::Local,
            AnswerKind::Unicast => {}
        }
        if link_broadcast {
            return Decision::Discard(DiscardReason::LinkBroadcast);
        }
        if packet.ttl <= 1 {
            return error(IcmpError::TimeExceeded);
        }
        let Some(out) = self.port_of(answer.oif) else {
            return Decision::OutOfScope("a route out of an interface that is not a port");
        };
        let next_hop = match answer.gateway {
            Some(IpAddr::V4(g)) => g,
            Some(IpAddr::V6(_)) => return Decision::OutOfScope("an IPv6 gateway"),
            None => packet.dst,
        };
        let mut forwarded = packet.clone();
        forwarded.ttl -= 1;
        forwarded.checksum = forwarded.computed_checksum();
        forwarded.checksum_valid = true;
        Decision::Forward(Emission {
            port: out,
            next_hop,
            src_mac: self.ports[out].mac,
            dst_mac: self.neighbour(out, next_hop),
            packet: forwarded,
        })
    }

    /// The ICMP error `error` about `original` (whose IP bytes start at offset 14 of
    /// `frame_bytes`), or a silent discard when no error may be sent about it.
    fn error(&self, error: IcmpError, original: &Ipv4Packet, frame_bytes: &[u8]) -> Decision {
        let is_error = matches!(&original.transport,
            Transport::Icmpv4(m) if matches!(m.icmp_type, 3 | 4 | 5 | 11 | 12));
        if is_error || original.fragment_offset != 0 {
            return Decision::Discard(DiscardReason::NoErrorAboutThis(error));
        }
        let back = match self.routes.lookup(IpAddr::V4(original.src), None) {
            Ok(a) if a.kind == AnswerKind::Unicast => a,
            _ => return Decision::OutOfScope("an error to a sender the router cannot reach"),
        };
        let (Some(port), Some(IpAddr::V4(selected))) = (self.port_of(back.oif), back.src) else {
            return Decision::OutOfScope("an error routed out of an interface that is not a port");
        };
        let src = if self.profile.has(ForwardDeviation::ErrorSourceFromRouteBack) {
            selected
        } else {
            let own: Vec<Ipv4Addr> = self
                .routes
                .interfaces()
                .iter()
                .filter(|i| i.index == back.oif)
                .flat_map(|i| &i.addrs)
                .filter_map(|a| match a.addr() {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect();
            match own.first() {
                _ if own.contains(&selected) => selected,
                Some(&first) => first,
                None => {
                    return Decision::OutOfScope("an error out of a port without an IPv4 address");
                }
            }
        };
        let next_hop = match back.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => original.src,
        };
        let ip = frame_bytes.get(14..).unwrap_or_default();
        let total = usize::from(u16::from_be_bytes([
            ip.get(2).copied().unwrap_or(0),
            ip.get(3).copied().unwrap_or(0),
        ]))
        .min(ip.len());
        let room = ICMP_ERROR_MAX - Ipv4Packet::MIN_HEADER_LEN - 8;
        let quote = ip[..total.min(room)].to_vec();
        let (icmp_type, code) = error.type_code();
        let message = match icmp_type {
            11 => Icmpv4Message::time_exceeded(code, quote),
            _ => Icmpv4Message::dest_unreachable(code, quote),
        };
        let tos = ((original.dscp << 2) | original.ecn) & 0x1e | 0xc0;
        let mut packet = Ipv4Packet::new(src, original.src, Transport::Icmpv4(message));
        packet.dscp = tos >> 2;
        packet.ecn = tos & 0x3;
        packet.ttl = DEFAULT_TTL;
        packet.dont_fragment = false;
        Decision::Error {
            error,
            emission: Emission {
                port,
                next_hop,
                src_mac: self.ports[port].mac,
                dst_mac: self.neighbour(port, next_hop),
                packet,
            },
        }
    }
}

#[cfg(test)]
mod tests;
