//! Route lookup of one host or router: longest-prefix match over IPv4 and IPv6 tables, route
//! types, metrics, and the source address the stack would use. For a destination (and
//! optionally a source) it predicts what `ip route get` answers: the output interface, the
//! gateway, the source address, or the error.
//!
//! Read first:
//! - RFC 1812 §5.2.4.3 (next-hop selection: longest match, then the route's metric),
//! - RFC 4632 §5.1 (longest match over classless prefixes),
//! - RFC 6724 §5 (source address selection, rules 1, 2, 5 and 8 are what this model uses),
//! - RFC 4861 / RFC 4291 only for the link-local and multicast ranges the model leaves out.
//!
//! # What the model holds
//!
//! A [`RouteTable`] is built from the stack's interfaces ([`Interface`]: index, name,
//! addresses with their prefix length) and the routes added to it ([`Route`]). Like the
//! kernel, it adds routes of its own for every address: the connected prefix in the *main*
//! table, and in the *local* table a `local` route for the address (plus, for IPv4, a
//! `broadcast` route for the subnet's broadcast address when the prefix is shorter than 31).
//! IPv6 interfaces also get `fe80::/64` (metric 256). Routes added by [`RouteTable::add`] go
//! to the main table, whatever their type (iproute2 would put a `local` route into the local
//! table; the harness names the main table explicitly).
//!
//! # Lookup
//!
//! Policy rules are Linux's defaults: the local table first, then main (the `default`
//! table is empty); for IPv4 the two are one merged trie (see
//! [`RouteDeviation::LocalTableFirst`]). In the first table with a matching prefix, the
//! longest prefix wins; among routes of that prefix, the lowest metric. The route's type decides the answer:
//!
//! | route type | answer |
//! |---|---|
//! | unicast via a gateway | `oif`, `gateway`, source |
//! | unicast on-link (device route) | `oif`, source |
//! | local | the loopback interface, source (IPv4: the route's `prefsrc`, else the destination) |
//! | broadcast (kernel-made, IPv4) | `oif`, source |
//! | blackhole | [`RouteError::Blackhole`] (EINVAL) |
//! | unreachable | [`RouteError::HostUnreachable`] (EHOSTUNREACH) |
//! | prohibit | [`RouteError::Prohibited`] (EACCES) |
//! | throw | [`RouteError::NetUnreachable`]: the lookup leaves main for the empty default table |
//! | no route | [`RouteError::NetUnreachable`] (ENETUNREACH) |
//!
//! The two families differ in ways the kernel documents or that were measured; each is a
//! named switch of [`RouteProfile`] (see [`RouteDeviation`]).
//!
//! # Source address
//!
//! IPv4 (Linux `inet_select_addr`): the route's `prefsrc`; else the first address of the
//! output interface whose subnet holds the gateway, else its first address; else the first
//! address of any interface. A source given by the caller must be local (one of the stack's
//! IPv4 addresses, or covered by a `local` route; otherwise ENETUNREACH, measured) and is
//! then the answer's source.
//!
//! IPv6: the route's `prefsrc`; else RFC 6724 §5 over every global address of the stack:
//! rule 1 (the destination itself), rule 2 (link-local and loopback addresses lose against a
//! global destination: they are simply not candidates), rule 5 (an address of the outgoing
//! interface), rule 8 (longest prefix shared with the destination), and then the first
//! candidate in interface order. Rules 3 (deprecated), 4 (home), 5.5, 6 (labels) and 7
//! (temporary) are not modelled: the lab's address plan (one or two ULA addresses per
//! interface, none deprecated or temporary, all with the same label) never lets them decide.
//!
//! # Out of scope
//!
//! ECMP routes (several next hops) are not modelled: the kernel's choice depends on a hash
//! with a per-namespace seed. Destinations in `0.0.0.0/8`, `127.0.0.0/8`, `224.0.0.0/3`
//! (multicast, reserved, limited broadcast), `::/8`, `fe80::/10` and `ff00::/8` are answered
//! with [`RouteError::OutOfScope`]; so is a lookup with an input interface (forwarding
//! decision). The IPv6 kernel's neighbour-reachability scoring of same-metric routes never
//! matters because two routes can never share a prefix and a metric here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use serde::{Deserialize, Serialize};

use crate::models::profile::{Deviation, Profile};

/// One interface of the stack: its addresses decide the connected and local routes and the
/// source addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface index.
    pub index: u32,
    /// Interface name (for messages only).
    pub name: String,
    /// The loopback interface (`lo`): no connected routes are made for it, and `local`
    /// answers name it.
    pub loopback: bool,
    /// Addresses with their prefix length, in the order they were added.
    pub addrs: Vec<IpNet>,
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RouteKind {
    /// Forward: via `gateway` (on a connected subnet of `oif`), or on-link out of `oif`.
    Unicast {
        /// Next hop; `None` for a device (on-link) route.
        gateway: Option<IpAddr>,
        /// Output interface index.
        oif: u32,
    },
    /// Deliver locally (`ip route add local P dev D`).
    Local {
        /// Interface the route names (the answer names the loopback interface).
        oif: u32,
    },
    /// Broadcast (the kernel makes these for subnet broadcast addresses; not addable).
    Broadcast {
        /// Interface of the subnet.
        oif: u32,
    },
    /// Drop silently (EINVAL to a local sender).
    Blackhole,
    /// Drop with host unreachable (EHOSTUNREACH).
    Unreachable,
    /// Drop with administratively prohibited (EACCES).
    Prohibit,
    /// Leave this table: the lookup goes on with the next policy rule.
    Throw,
}

impl RouteKind {
    /// The output interface the route names, if any.
    pub fn oif(&self) -> Option<u32> {
        match *self {
            RouteKind::Unicast { oif, .. }
            | RouteKind::Local { oif }
            | RouteKind::Broadcast { oif } => Some(oif),
            _ => None,
        }
    }
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// Destination prefix (host bits are ignored).
    pub dst: IpNet,
    /// What the route does.
    pub kind: RouteKind,
    /// Metric (`RTA_PRIORITY`); `None`: the family's default (IPv4 0, IPv6 1024).
    pub metric: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`).
    pub prefsrc: Option<IpAddr>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RouteKind::Unicast {
                gateway: Some(g),
                oif,
            } => write!(f, "{} via {g} oif {oif}", self.dst.trunc())?,
            RouteKind::Unicast { gateway: None, oif } => {
                write!(f, "{} dev-oif {oif}", self.dst.trunc())?
            }
            RouteKind::Local { oif } => write!(f, "local {} oif {oif}", self.dst.trunc())?,
            RouteKind::Broadcast { oif } => write!(f, "broadcast {} oif {oif}", self.dst.trunc())?,
            RouteKind::Blackhole => write!(f, "blackhole {}", self.dst.trunc())?,
            RouteKind::Unreachable => write!(f, "unreachable {}", self.dst.trunc())?,
            RouteKind::Prohibit => write!(f, "prohibit {}", self.dst.trunc())?,
            RouteKind::Throw => write!(f, "throw {}", self.dst.trunc())?,
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(s) = self.prefsrc {
            write!(f, " src {s}")?;
        }
        Ok(())
    }
}

/// The type of a successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnswerKind {
    /// Sent out of an interface.
    Unicast,
    /// Delivered locally.
    Local,
    /// A broadcast address of a connected subnet.
    Broadcast,
}

/// What `ip route get` answers when a route is usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteAnswer {
    /// The answer's type.
    pub kind: AnswerKind,
    /// Output interface index (the loopback interface for local answers).
    pub oif: u32,
    /// Gateway, when the route has one.
    pub gateway: Option<IpAddr>,
    /// The source address the stack reports.
    pub src: Option<IpAddr>,
}

impl fmt::Display for RouteAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} oif {}", self.kind, self.oif)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        Ok(())
    }
}

/// Why a lookup gives no usable route (the errno `route get` returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// ENETUNREACH: no route (or a `throw` route, or an IPv4 source that is not local).
    #[error("network unreachable (ENETUNREACH)")]
    NetUnreachable,
    /// EHOSTUNREACH: an `unreachable` route.
    #[error("no route to host (EHOSTUNREACH)")]
    HostUnreachable,
    /// EACCES: a `prohibit` route.
    #[error("administratively prohibited (EACCES)")]
    Prohibited,
    /// EINVAL: a `blackhole` route.
    #[error("blackhole (EINVAL)")]
    Blackhole,
    /// Another errno (never predicted by the model; a kernel answer the model has no name for).
    #[error("errno {0}")]
    Other(i32),
    /// The model does not predict this lookup (see the module doc, "Out of scope").
    #[error("not modelled")]
    OutOfScope,
}

/// One documented difference between the families (or from the RFC text), switched by
/// [`RouteProfile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RouteDeviation {
    /// IPv6: a route added with metric 0 gets metric 1024, the user default
    /// (`IP6_RT_PRIO_USER`), so metric 0 and 1024 are the same route and the second add
    /// fails with EEXIST. IPv4 keeps 0, which is also its default.
    Ipv6MetricZeroIsDefault,
    /// IPv6: `route get … from S` reports the source the stack would select (prefsrc or RFC
    /// 6724), not `S`; IPv4 reports `S` (measured).
    Ipv6ReportsSelectedSource,
    /// IPv6: the local table is consulted before main, so a `local` route there wins over
    /// any main-table prefix, even a longer one (Linux policy rule 0). IPv4 is not affected:
    /// while no policy rule was added Linux merges its local and main tables into one trie
    /// (one longest-prefix match; on an equal prefix the local entry first), which is also
    /// what RFC 1812 §5.2.4.3 describes. Because of that merge a `local` route in main makes
    /// its whole prefix count as local addresses, e.g. for the source of `route get … from S`
    /// (measured).
    LocalTableFirst,
}

impl Deviation for RouteDeviation {
    const MODEL: &'static str = "route";
    const ALL: &'static [RouteDeviation] = &[
        RouteDeviation::Ipv6MetricZeroIsDefault,
        RouteDeviation::Ipv6ReportsSelectedSource,
        RouteDeviation::LocalTableFirst,
    ];
    /// Linux (measured on 6.18): every deviation.
    const LINUX: &'static [RouteDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            RouteDeviation::Ipv6MetricZeroIsDefault => "RFC 1812 §5.2.4.3, Best Metric",
            RouteDeviation::Ipv6ReportsSelectedSource => "RFC 6724 §1",
            RouteDeviation::LocalTableFirst => "RFC 1812 §5.2.4.3, Longest Match",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            RouteDeviation::Ipv6MetricZeroIsDefault => {
                "IPv6: a route added with metric 0 gets metric 1024, and competes as such"
            }
            RouteDeviation::Ipv6ReportsSelectedSource => {
                "IPv6: route get from S answers the source it would select, not S"
            }
            RouteDeviation::LocalTableFirst => {
                "IPv6: a local-table route wins over a longer prefix in main"
            }
        }
    }
}

/// Which deviations are on: the one profile type ([`Profile`]) over [`RouteDeviation`].
///
/// Under the RFC text ([`ProfileName::Rfc`](crate::models::profile::ProfileName)) IPv6
/// works as IPv4 does: a metric is the metric asked for, a source given is the source
/// answered, and the local and main tables are one longest-prefix match.
pub type RouteProfile = Profile<RouteDeviation>;

/// IPv4 default metric.
pub const IPV4_DEFAULT_METRIC: u32 = 0;
/// IPv6 default metric for routes a user adds (`IP6_RT_PRIO_USER`).
pub const IPV6_DEFAULT_METRIC: u32 = 1024;
/// IPv6 metric of the kernel's connected routes (`IP6_RT_PRIO_ADDRCONF`).
pub const IPV6_CONNECTED_METRIC: u32 = 256;

/// Why a route cannot be added (what the kernel would refuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// EEXIST: a route with this prefix and metric is already there.
    #[error("{route}: a route with this prefix and metric exists (EEXIST)")]
    Exists {
        /// The route refused.
        route: Route,
    },
    /// The route is invalid (EINVAL/ENETUNREACH/ENODEV in the kernel): the reason says why.
    #[error("{route}: {reason}")]
    Invalid {
        /// The route refused.
        route: Route,
        /// Why.
        reason: &'static str,
    },
}

/// A table entry: the route and its effective metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    route: Route,
    metric: u32,
}

/// The routes of one family in one table, by prefix; each prefix's entries sorted by metric.
#[derive(Debug, Clone, Default)]
struct FamilyTable {
    v4: PrefixMap<Ipv4Net, Vec<Entry>>,
    v6: PrefixMap<Ipv6Net, Vec<Entry>>,
    /// How many entries [`FamilyTable::insert`] has put in (entries are never removed): the
    /// length without a walk of both tries.
    count: usize,
}

impl FamilyTable {
    fn entries_mut(&mut self, dst: IpNet) -> &mut Vec<Entry> {
        match dst.trunc() {
            IpNet::V4(n) => self.v4.entry(n).or_default(),
            IpNet::V6(n) => self.v6.entry(n).or_default(),
        }
    }

    fn entries(&self, dst: IpNet) -> Option<&Vec<Entry>> {
        match dst.trunc() {
            IpNet::V4(n) => self.v4.get(&n),
            IpNet::V6(n) => self.v6.get(&n),
        }
    }

    fn lpm(&self, dst: IpAddr) -> Option<&[Entry]> {
        let v = match dst {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, v)| v),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, v)| v),
        }?;
        if v.is_empty() { None } else { Some(v) }
    }

    fn insert(&mut self, entry: Entry) {
        let v = self.entries_mut(entry.route.dst);
        let at = v.partition_point(|e| e.metric <= entry.metric);
        v.insert(at, entry);
        self.count += 1;
    }

    fn len(&self) -> usize {
        self.count
    }

    /// Every entry, walking both tries (IPv4 first; by prefix, then metric).
    fn iter(&self) -> impl Iterator<Item = &Entry> {
        let v4 = self.v4.iter().flat_map(|(_, v)| v);
        v4.chain(self.v6.iter().flat_map(|(_, v)| v))
    }
}

/// The routing state of one stack: interfaces, the kernel's own routes and the added ones.
#[derive(Debug, Clone)]
pub struct RouteTable {
    profile: RouteProfile,
    interfaces: Vec<Interface>,
    loopback: u32,
    local: FamilyTable,
    main: FamilyTable,
    added: usize,
}

fn prefix_of(addr: IpNet) -> IpNet {
    addr.trunc()
}

fn common_prefix_len(a: Ipv6Addr, b: Ipv6Addr) -> u32 {
    (u128::from(a) ^ u128::from(b)).leading_zeros()
}

impl RouteTable {
    /// A table for a stack with these interfaces: the kernel's connected, local and
    /// broadcast routes are made from their addresses. One interface must be the loopback.
    pub fn new(profile: RouteProfile, interfaces: Vec<Interface>) -> RouteTable {
        let loopback = interfaces
            .iter()
            .find(|i| i.loopback)
            .map(|i| i.index)
            .unwrap_or(1);
        let mut t = RouteTable {
            profile,
            interfaces,
            loopback,
            local: FamilyTable::default(),
            main: FamilyTable::default(),
            added: 0,
        };
        let ifaces = t.interfaces.clone();
        for iface in &ifaces {
            if iface.loopback {
                continue;
            }
            let mut has_v6 = false;
            for &net in &iface.addrs {
                let addr = net.addr();
                t.local.insert(Entry {
                    route: Route {
                        dst: IpNet::from(addr),
                        kind: RouteKind::Local { oif: iface.index },
                        metric: Some(0),
                        prefsrc: Some(addr),
                    },
                    metric: 0,
                });
                match net {
                    IpNet::V4(n) => {
                        if n.prefix_len() < 32 {
                            t.main.insert(Entry {
                                route: Route {
                                    dst: prefix_of(net),
                                    kind: RouteKind::Unicast {
                                        gateway: None,
                                        oif: iface.index,
                                    },
                                    metric: Some(0),
                                    prefsrc: Some(addr),
                                },
                                metric: 0,
                            });
                        }
                        if n.prefix_len() < 31 {
                            t.local.insert(Entry {
                                route: Route {
                                    dst: IpNet::from(IpAddr::V4(n.broadcast())),
                                    kind: RouteKind::Broadcast { oif: iface.index },
                                    metric: Some(0),
                                    prefsrc: Some(addr),
                                },
                                metric: 0,
                            });
                        }
                    }
                    IpNet::V6(_) => {
                        has_v6 = true;
                        t.main.insert(Entry {
                            route: Route {
                                dst: prefix_of(net),
                                kind: RouteKind::Unicast {
                                    gateway: None,
                                    oif: iface.index,
                                },
                                metric: Some(IPV6_CONNECTED_METRIC),
                                prefsrc: None,
                            },
                            metric: IPV6_CONNECTED_METRIC,
                        });
                    }
                }
            }
            if has_v6 {
                let ll = IpNet::V6(
                    Ipv6Net::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64)
                        .expect("64 <= 128"),
                );
                t.main.insert(Entry {
                    route: Route {
                        dst: ll,
                        kind: RouteKind::Unicast {
                            gateway: None,
                            oif: iface.index,
                        },
                        metric: Some(IPV6_CONNECTED_METRIC),
                        prefsrc: None,
                    },
                    metric: IPV6_CONNECTED_METRIC,
                });
            }
        }
        t
    }

    /// The profile.
    pub fn profile(&self) -> &RouteProfile {
        &self.profile
    }

    /// The interfaces.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Routes added with [`RouteTable::add`].
    pub fn added(&self) -> usize {
        self.added
    }

    /// Every route in both tables (kernel-made ones included). Counted as routes go in, not
    /// walked: [`RouteTable::routes`] walks the tables.
    pub fn len(&self) -> usize {
        self.local.len() + self.main.len()
    }

    /// Every route in both tables, read from the tables themselves: the route (its prefix
    /// truncated), its effective metric, and whether it is in the local table. The local
    /// table first; within a table IPv4 first, by prefix, then by metric.
    pub fn routes(&self) -> impl Iterator<Item = (Route, u32, bool)> + '_ {
        let local = self.local.iter().map(|e| (e.route, e.metric, true));
        local.chain(self.main.iter().map(|e| (e.route, e.metric, false)))
    }

    /// True when there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The metric a route gets in the stack.
    pub fn effective_metric(&self, route: &Route) -> u32 {
        match (route.dst, route.metric) {
            (IpNet::V4(_), m) => m.unwrap_or(IPV4_DEFAULT_METRIC),
            (IpNet::V6(_), None) => IPV6_DEFAULT_METRIC,
            (IpNet::V6(_), Some(0))
                if self.profile.has(RouteDeviation::Ipv6MetricZeroIsDefault) =>
            {
                IPV6_DEFAULT_METRIC
            }
            (IpNet::V6(_), Some(m)) => m,
        }
    }

    fn is_local_addr(&self, addr: IpAddr) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.addrs.iter().any(|a| a.addr() == addr))
    }

    fn interface(&self, index: u32) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.index == index)
    }

    /// Whether the stack would accept `route`, and why not (the checks the generator relies
    /// on, not every check the kernel makes).
    pub fn validate(&self, route: &Route) -> Result<(), AddError> {
        let invalid = |reason| AddError::Invalid {
            route: *route,
            reason,
        };
        let v4 = matches!(route.dst, IpNet::V4(_));
        let same_family = |a: IpAddr| a.is_ipv4() == v4;
        if let Some(src) = route.prefsrc
            && (!same_family(src) || !self.is_local_addr(src))
        {
            return Err(invalid("prefsrc is not an address of the stack"));
        }
        match route.kind {
            RouteKind::Broadcast { .. } => {
                return Err(invalid("broadcast routes are the kernel's"));
            }
            RouteKind::Unicast { oif, .. } | RouteKind::Local { oif }
                if self.interface(oif).is_none() =>
            {
                return Err(invalid("no such interface"));
            }
            RouteKind::Unicast {
                gateway: Some(gw),
                oif,
            } => {
                if !same_family(gw) {
                    return Err(invalid("gateway of the other family"));
                }
                if self.is_local_addr(gw) {
                    return Err(invalid("gateway is an address of the stack"));
                }
                let on_link = self
                    .interface(oif)
                    .is_some_and(|i| i.addrs.iter().any(|a| a.contains(&gw)));
                if !on_link {
                    return Err(invalid("gateway is not on a connected subnet of oif"));
                }
            }
            _ => {}
        }
        let metric = self.effective_metric(route);
        if self
            .main
            .entries(route.dst)
            .is_some_and(|v| v.iter().any(|e| e.metric == metric))
        {
            return Err(AddError::Exists { route: *route });
        }
        Ok(())
    }

    /// Adds a route to the main table, or says why the stack would refuse it.
    pub fn add(&mut self, route: Route) -> Result<(), AddError> {
        self.validate(&route)?;
        let metric = self.effective_metric(&route);
        self.main.insert(Entry {
            route: Route {
                dst: route.dst.trunc(),
                ..route
            },
            metric,
        });
        self.added += 1;
        Ok(())
    }

    /// True for the destinations the model predicts (see the module doc, "Out of scope").
    pub fn in_scope(dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(a) => {
                let o = a.octets()[0];
                o != 0 && o != 127 && o < 224
            }
            IpAddr::V6(a) => {
                let s = a.segments()[0];
                (s >> 8) != 0 && (s & 0xffc0) != 0xfe80 && (s >> 8) != 0xff
            }
        }
    }

    /// The route that decides a lookup for `dst`, if any (what `ip route get fibmatch`
    /// shows), and the table it is in (`true`: local).
    pub fn matching_route(&self, dst: IpAddr) -> Option<(Route, bool)> {
        if self.profile.has(RouteDeviation::LocalTableFirst) && dst.is_ipv6() {
            if let Some(v) = self.local.lpm(dst) {
                return Some((v[0].route, true));
            }
            return self.main.lpm(dst).map(|v| (v[0].route, false));
        }
        // One table: the longer prefix of the two wins; the local route on a tie.
        let l = self.local.lpm(dst).map(|v| v[0].route);
        let m = self.main.lpm(dst).map(|v| v[0].route);
        match (l, m) {
            (Some(l), Some(m)) if m.dst.prefix_len() > l.dst.prefix_len() => Some((m, false)),
            (Some(l), _) => Some((l, true)),
            (None, Some(m)) => Some((m, false)),
            (None, None) => None,
        }
    }

    /// What `ip route get dst [from src]` answers.
    pub fn lookup(&self, dst: IpAddr, src: Option<IpAddr>) -> Result<RouteAnswer, RouteError> {
        if !Self::in_scope(dst) || src.is_some_and(|s| s.is_ipv4() != dst.is_ipv4()) {
            return Err(RouteError::OutOfScope);
        }
        if let Some(s) = src
            && s.is_ipv4()
            && !self.is_local_addr(s)
            && !matches!(
                self.matching_route(s),
                Some((
                    Route {
                        kind: RouteKind::Local { .. },
                        ..
                    },
                    _
                ))
            )
        {
            return Err(RouteError::NetUnreachable);
        }
        let (route, _) = self.matching_route(dst).ok_or(RouteError::NetUnreachable)?;
        let (kind, oif, gateway) = match route.kind {
            RouteKind::Unicast { gateway, oif } => (AnswerKind::Unicast, oif, gateway),
            RouteKind::Local { .. } => (AnswerKind::Local, self.loopback, None),
            RouteKind::Broadcast { oif } => (AnswerKind::Broadcast, oif, None),
            RouteKind::Blackhole => return Err(RouteError::Blackhole),
            RouteKind::Unreachable => return Err(RouteError::HostUnreachable),
            RouteKind::Prohibit => return Err(RouteError::Prohibited),
            RouteKind::Throw => return Err(RouteError::NetUnreachable),
        };
        let src = match dst {
            IpAddr::V4(d) => match src {
                Some(s) => Some(s),
                None => self.select_v4(&route, d, kind, oif, gateway),
            },
            IpAddr::V6(d) => {
                if src.is_some() && !self.profile.has(RouteDeviation::Ipv6ReportsSelectedSource) {
                    src
                } else {
                    self.select_v6(&route, d, oif)
                }
            }
        };
        Ok(RouteAnswer {
            kind,
            oif,
            gateway,
            src,
        })
    }

    fn select_v4(
        &self,
        route: &Route,
        dst: Ipv4Addr,
        kind: AnswerKind,
        oif: u32,
        gateway: Option<IpAddr>,
    ) -> Option<IpAddr> {
        if let Some(p) = route.prefsrc {
            return Some(p);
        }
        if kind == AnswerKind::Local {
            return Some(IpAddr::V4(dst));
        }
        let v4 = |i: &Interface| -> Vec<Ipv4Net> {
            i.addrs
                .iter()
                .filter_map(|a| match a {
                    IpNet::V4(n) => Some(*n),
                    _ => None,
                })
                .collect()
        };
        if let Some(iface) = self.interface(oif) {
            let addrs = v4(iface);
            if let Some(IpAddr::V4(gw)) = gateway
                && let Some(a) = addrs.iter().find(|a| a.contains(&gw))
            {
                return Some(IpAddr::V4(a.addr()));
            }
            if let Some(a) = addrs.first() {
                return Some(IpAddr::V4(a.addr()));
            }
        }
        self.interfaces
            .iter()
            .filter(|i| !i.loopback)
            .find_map(|i| v4(i).first().map(|a| IpAddr::V4(a.addr())))
    }

    fn select_v6(&self, route: &Route, dst: Ipv6Addr, oif: u32) -> Option<IpAddr> {
        if let Some(p) = route.prefsrc {
            return Some(p);
        }
        // (rule 1, rule 5, rule 8) as a key, larger is better; ties keep the first.
        let mut best: Option<((bool, bool, u32), Ipv6Addr)> = None;
        for iface in &self.interfaces {
            for a in &iface.addrs {
                let IpNet::V6(n) = a else { continue };
                let addr = n.addr();
                if !Self::in_scope(IpAddr::V6(addr)) {
                    continue; // rule 2: link-local, loopback
                }
                // Linux caps rule 8's common prefix at the address's prefix length.
                let key = (
                    addr == dst,
                    iface.index == oif,
                    common_prefix_len(addr, dst).min(u32::from(n.prefix_len())),
                );
                if best.is_none_or(|(k, _)| key > k) {
                    best = Some((key, addr));
                }
            }
        }
        best.map(|(_, a)| IpAddr::V6(a))
    }
}

#[cfg(test)]
mod tests;
