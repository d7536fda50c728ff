//! `model_route`: routes added to a [`RouteTable`] and lookups, against a brute-force
//! reference written from the module's documentation (the kernel's own routes, EEXIST, the
//! checks of `validate`, the longest-prefix match with its local/main table rule).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::fuzz::Outcome;
use crate::models::route::{
    AddError, AnswerKind, IPV4_DEFAULT_METRIC, IPV6_CONNECTED_METRIC, IPV6_DEFAULT_METRIC,
    Interface, Route, RouteDeviation, RouteError, RouteKind, RouteProfile, RouteTable,
};

const T: &str = "model_route";

/// Last octets (IPv4) and last groups (IPv6) addresses are made of: the interfaces'
/// addresses, a gateway, the broadcast, and a few others.
const V4_LAST: [u8; 8] = [0, 1, 2, 3, 7, 128, 200, 255];
const V4_LEN: [u8; 11] = [0, 8, 16, 22, 23, 24, 25, 28, 30, 31, 32];
const V6_LEN: [u8; 8] = [0, 16, 32, 48, 64, 96, 127, 128];
const METRICS: [u32; 5] = [0, 1, 256, 1024, 4096];

#[derive(Debug, Arbitrary)]
struct Addr {
    v6: bool,
    /// Selects the network (10.0.n / fd00:n, and one outside them).
    net: u8,
    last: u8,
}

impl Addr {
    fn ip(&self) -> IpAddr {
        let net = self.net % 5;
        let last = V4_LAST[usize::from(self.last) % V4_LAST.len()];
        if self.v6 {
            let hi = if net == 4 { 0x2001 } else { 0xfd00 };
            IpAddr::V6(Ipv6Addr::new(
                hi,
                u16::from(net),
                0,
                0,
                0,
                0,
                0,
                u16::from(last),
            ))
        } else if net == 4 {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, net, last))
        }
    }
}

#[derive(Debug, Arbitrary)]
enum KindSpec {
    Via(Addr, u8),
    Dev(u8),
    Local(u8),
    Broadcast(u8),
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

#[derive(Debug, Arbitrary)]
struct RouteSpec {
    dst: Addr,
    len: u8,
    kind: KindSpec,
    metric: Option<u8>,
    prefsrc: Option<Addr>,
}

#[derive(Debug, Arbitrary)]
enum Event {
    Add(RouteSpec),
    Lookup(Addr, Option<Addr>),
}

#[derive(Debug, Arbitrary)]
struct Setup {
    profile: [bool; 3],
    /// A second IPv4 address on interface 3 (a /30).
    second_v4: bool,
}

fn oif(n: u8) -> u32 {
    1 + u32::from(n % 4) // 1 is lo, 2 and 3 are ports, 4 does not exist
}

fn build(spec: &RouteSpec) -> Route {
    let ip = spec.dst.ip();
    let dst = match ip {
        IpAddr::V4(a) => IpNet::V4(
            Ipv4Net::new(a, V4_LEN[usize::from(spec.len) % V4_LEN.len()]).expect("length <= 32"),
        ),
        IpAddr::V6(a) => IpNet::V6(
            Ipv6Net::new(a, V6_LEN[usize::from(spec.len) % V6_LEN.len()]).expect("length <= 128"),
        ),
    };
    let kind = match &spec.kind {
        KindSpec::Via(g, o) => RouteKind::Unicast {
            gateway: Some(g.ip()),
            oif: oif(*o),
        },
        KindSpec::Dev(o) => RouteKind::Unicast {
            gateway: None,
            oif: oif(*o),
        },
        KindSpec::Local(o) => RouteKind::Local { oif: oif(*o) },
        KindSpec::Broadcast(o) => RouteKind::Broadcast { oif: oif(*o) },
        KindSpec::Blackhole => RouteKind::Blackhole,
        KindSpec::Unreachable => RouteKind::Unreachable,
        KindSpec::Prohibit => RouteKind::Prohibit,
        KindSpec::Throw => RouteKind::Throw,
    };
    Route {
        dst,
        kind,
        metric: spec.metric.map(|m| METRICS[usize::from(m) % METRICS.len()]),
        prefsrc: spec.prefsrc.as_ref().map(Addr::ip),
    }
}

fn interfaces(second_v4: bool) -> Vec<Interface> {
    let net = |s: &str| s.parse::<IpNet>().expect("prefix");
    let mut p1 = vec![net("10.0.2.1/24"), net("fd00:2::1/64")];
    if second_v4 {
        p1.push(net("10.0.3.1/30"));
    }
    vec![
        Interface {
            index: 1,
            name: "lo".into(),
            loopback: true,
            addrs: vec![net("127.0.0.1/8"), net("::1/128")],
        },
        Interface {
            index: 2,
            name: "p0".into(),
            loopback: false,
            addrs: vec![net("10.0.1.1/24"), net("fd00:1::1/64")],
        },
        Interface {
            index: 3,
            name: "p1".into(),
            loopback: false,
            addrs: p1,
        },
    ]
}

/// One route of the reference: the route, its effective metric, and whether it is in the
/// local table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefRoute {
    pub(crate) route: Route,
    pub(crate) metric: u32,
    pub(crate) local: bool,
}

/// The reference: every route in insertion order, and the model's inputs.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub(crate) profile: RouteProfile,
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) routes: Vec<RefRoute>,
}

impl Reference {
    /// The kernel's routes for `interfaces`, as the module doc lists them.
    pub(crate) fn new(profile: RouteProfile, interfaces: Vec<Interface>) -> Reference {
        let mut routes = Vec::new();
        let mut push = |dst: IpNet, kind, metric, prefsrc, local| {
            routes.push(RefRoute {
                route: Route {
                    dst,
                    kind,
                    metric: Some(metric),
                    prefsrc,
                },
                metric,
                local,
            })
        };
        for i in interfaces.iter().filter(|i| !i.loopback) {
            let oif = i.index;
            for net in &i.addrs {
                let a = net.addr();
                push(IpNet::from(a), RouteKind::Local { oif }, 0, Some(a), true);
                match net {
                    IpNet::V4(n) => {
                        if n.prefix_len() < 32 {
                            let kind = RouteKind::Unicast { gateway: None, oif };
                            push(net.trunc(), kind, 0, Some(a), false);
                        }
                        if n.prefix_len() < 31 {
                            let b = IpNet::from(IpAddr::V4(n.broadcast()));
                            push(b, RouteKind::Broadcast { oif }, 0, Some(a), true);
                        }
                    }
                    IpNet::V6(_) => {
                        let kind = RouteKind::Unicast { gateway: None, oif };
                        push(net.trunc(), kind, IPV6_CONNECTED_METRIC, None, false);
                    }
                }
            }
            if i.addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
                let ll = "fe80::/64".parse().expect("prefix");
                let kind = RouteKind::Unicast { gateway: None, oif };
                push(ll, kind, IPV6_CONNECTED_METRIC, None, false);
            }
        }
        Reference {
            profile,
            interfaces,
            routes,
        }
    }

    fn effective_metric(&self, r: &Route) -> u32 {
        match (r.dst, r.metric) {
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

    fn is_local_addr(&self, a: IpAddr) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.addrs.iter().any(|n| n.addr() == a))
    }

    /// What `RouteTable::add` must answer: the reason of an invalid route, EEXIST, or Ok.
    pub(crate) fn add(&mut self, r: &Route) -> Result<(), Option<&'static str>> {
        let v4 = r.dst.addr().is_ipv4();
        let iface = |oif: u32| self.interfaces.iter().find(|i| i.index == oif);
        if let Some(s) = r.prefsrc
            && (s.is_ipv4() != v4 || !self.is_local_addr(s))
        {
            return Err(Some("prefsrc is not an address of the stack"));
        }
        match r.kind {
            RouteKind::Broadcast { .. } => return Err(Some("broadcast routes are the kernel's")),
            RouteKind::Unicast { oif, .. } | RouteKind::Local { oif } if iface(oif).is_none() => {
                return Err(Some("no such interface"));
            }
            RouteKind::Unicast {
                gateway: Some(g),
                oif,
            } => {
                if g.is_ipv4() != v4 {
                    return Err(Some("gateway of the other family"));
                }
                if self.is_local_addr(g) {
                    return Err(Some("gateway is an address of the stack"));
                }
                if !iface(oif).is_some_and(|i| i.addrs.iter().any(|a| a.contains(&g))) {
                    return Err(Some("gateway is not on a connected subnet of oif"));
                }
            }
            _ => {}
        }
        let metric = self.effective_metric(r);
        let dst = r.dst.trunc();
        if self
            .routes
            .iter()
            .any(|e| !e.local && e.route.dst == dst && e.metric == metric)
        {
            return Err(None);
        }
        self.routes.push(RefRoute {
            route: Route { dst, ..*r },
            metric,
            local: false,
        });
        Ok(())
    }

    /// The best route of one table for `dst`: longest prefix, then lowest metric, then the
    /// first added.
    fn best(&self, dst: IpAddr, local: bool) -> Option<RefRoute> {
        let mut best: Option<RefRoute> = None;
        for r in self.routes.iter().filter(|r| r.local == local) {
            if !r.route.dst.contains(&dst) {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let (l, bl) = (r.route.dst.prefix_len(), b.route.dst.prefix_len());
                    l > bl || (l == bl && r.metric < b.metric)
                }
            };
            if better {
                best = Some(*r);
            }
        }
        best
    }

    /// The deciding route by brute force (see `RouteTable::matching_route`).
    pub(crate) fn matching_route(&self, dst: IpAddr) -> Option<(Route, bool)> {
        let l = self.best(dst, true);
        let m = self.best(dst, false);
        if self.profile.has(RouteDeviation::LocalTableFirst) && dst.is_ipv6() {
            return l.or(m).map(|r| (r.route, r.local));
        }
        match (l, m) {
            (Some(l), Some(m)) if m.route.dst.prefix_len() > l.route.dst.prefix_len() => {
                Some((m.route, false))
            }
            (Some(l), _) => Some((l.route, true)),
            (None, Some(m)) => Some((m.route, false)),
            (None, None) => None,
        }
    }
}

/// The module doc's scope rule: 0/8, 127/8, 224/3, ::/8, fe80::/10 and ff00::/8 are out.
fn in_scope(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !matches!(a.octets()[0], 0 | 127 | 224..=255),
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            s >> 8 != 0 && s & 0xffc0 != 0xfe80 && s >> 8 != 0xff
        }
    }
}

/// Checks a lookup's answer against the reference: the deciding route, the answer's kind,
/// interface and gateway, and the source address rules of the module doc.
pub(crate) fn check_lookup(
    reference: &Reference,
    dst: IpAddr,
    src: Option<IpAddr>,
    got: &Result<crate::models::route::RouteAnswer, RouteError>,
) -> Result<(), String> {
    let fail = |why: String| Err(format!("lookup {dst} from {src:?} = {got:?}: {why}"));
    if !in_scope(dst) || src.is_some_and(|s| s.is_ipv4() != dst.is_ipv4()) {
        return match got {
            Err(RouteError::OutOfScope) => Ok(()),
            _ => fail("expected out of scope".into()),
        };
    }
    if let Some(s) = src
        && s.is_ipv4()
        && !reference.is_local_addr(s)
        && !matches!(
            reference.matching_route(s),
            Some((
                Route {
                    kind: RouteKind::Local { .. },
                    ..
                },
                _
            ))
        )
    {
        return match got {
            Err(RouteError::NetUnreachable) => Ok(()),
            _ => fail("a source that is not local: expected ENETUNREACH".into()),
        };
    }
    let Some((route, _)) = reference.matching_route(dst) else {
        return match got {
            Err(RouteError::NetUnreachable) => Ok(()),
            _ => fail("no route in the reference: expected ENETUNREACH".into()),
        };
    };
    let loopback = reference
        .interfaces
        .iter()
        .find(|i| i.loopback)
        .map_or(1, |i| i.index);
    let (kind, oif, gateway) = match route.kind {
        RouteKind::Unicast { gateway, oif } => (AnswerKind::Unicast, oif, gateway),
        RouteKind::Local { .. } => (AnswerKind::Local, loopback, None),
        RouteKind::Broadcast { oif } => (AnswerKind::Broadcast, oif, None),
        other => {
            let want = match other {
                RouteKind::Blackhole => RouteError::Blackhole,
                RouteKind::Unreachable => RouteError::HostUnreachable,
                RouteKind::Prohibit => RouteError::Prohibited,
                _ => RouteError::NetUnreachable,
            };
            return if *got == Err(want) {
                Ok(())
            } else {
                fail(format!("route {route}: expected {want:?}"))
            };
        }
    };
    let Ok(answer) = got else {
        return fail(format!("route {route}: expected an answer"));
    };
    if (answer.kind, answer.oif, answer.gateway) != (kind, oif, gateway) {
        return fail(format!(
            "route {route}: expected {kind:?} oif {oif} via {gateway:?}"
        ));
    }
    // The source address.
    let v4 = dst.is_ipv4();
    let selected = !v4
        && (src.is_none()
            || reference
                .profile
                .has(RouteDeviation::Ipv6ReportsSelectedSource));
    let want_src = match (src, v4) {
        (Some(s), true) => Some(s),
        (Some(s), false) if !selected => Some(s),
        _ => route.prefsrc.or_else(|| {
            // IPv4 local answers name the destination; IPv6 picks it by RFC 6724 rule 1.
            let own = if v4 {
                kind == AnswerKind::Local
            } else {
                reference.is_local_addr(dst)
            };
            own.then_some(dst)
        }),
    };
    match want_src {
        Some(w) if answer.src != Some(w) => fail(format!("expected source {w}")),
        Some(_) => Ok(()),
        None => {
            let candidates: Vec<IpAddr> = reference
                .interfaces
                .iter()
                .flat_map(|i| i.addrs.iter().map(|a| a.addr()))
                .filter(|a| a.is_ipv4() == v4 && (v4 || in_scope(*a)))
                .collect();
            match answer.src {
                Some(s) if candidates.contains(&s) => Ok(()),
                None if candidates.is_empty() => Ok(()),
                _ => fail(format!("the source must be one of {candidates:?}")),
            }
        }
    }
}

/// Checks the answer of `RouteTable::add` against what the reference expects.
pub(crate) fn check_add(
    want: Result<(), Option<&'static str>>,
    got: &Result<(), AddError>,
) -> Result<(), String> {
    let ok = match (&want, got) {
        (Ok(()), Ok(())) => true,
        (Err(None), Err(AddError::Exists { .. })) => true,
        (Err(Some(r)), Err(AddError::Invalid { reason, .. })) => r == reason,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("add answered {got:?}, the reference {want:?}"))
    }
}

/// Checks the routes the table holds, read by walking it, against the reference's: the same
/// routes with the same effective metrics in the same tables, as many as `RouteTable::len`
/// counts. Once per input, at the end (routes are never removed, so the kernel's own routes
/// are still there to compare): a walk of the tries costs more than all the steps together.
pub(crate) fn check_contents(table: &RouteTable, reference: &Reference) -> Result<(), String> {
    let mut missing: Vec<RefRoute> = reference.routes.clone();
    let mut walked = 0;
    for (route, metric, local) in table.routes() {
        walked += 1;
        let found = RefRoute {
            route,
            metric,
            local,
        };
        match missing.iter().position(|r| *r == found) {
            Some(i) => {
                missing.swap_remove(i);
            }
            None => {
                let table = if local { "local" } else { "main" };
                return Err(format!(
                    "the {table} table holds {route} (metric {metric}), the reference does not"
                ));
            }
        }
    }
    if !missing.is_empty() || walked != table.len() {
        return Err(format!(
            "the tables hold {walked} routes (len {}), the reference {}; not in the tables: \
             {missing:?}",
            table.len(),
            reference.routes.len()
        ));
    }
    Ok(())
}

/// One step's answer, for the determinism check.
#[derive(Debug, PartialEq)]
enum Step {
    Add(Result<(), AddError>),
    Lookup(Result<crate::models::route::RouteAnswer, RouteError>),
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Step>, String> {
    let setup = Setup::arbitrary(u).map_err(|e| e.to_string())?;
    let mut profile = RouteProfile::rfc();
    for (on, d) in setup.profile.into_iter().zip([
        RouteDeviation::Ipv6MetricZeroIsDefault,
        RouteDeviation::Ipv6ReportsSelectedSource,
        RouteDeviation::LocalTableFirst,
    ]) {
        if on {
            profile = profile.with(d);
        }
    }
    let ifaces = interfaces(setup.second_v4);
    let mut table = RouteTable::new(profile.clone(), ifaces.clone());
    let mut reference = Reference::new(profile, ifaces);
    let mut out = Vec::new();
    if table.len() != reference.routes.len() {
        return Err(format!(
            "a new table holds {} routes, the reference {}",
            table.len(),
            reference.routes.len()
        ));
    }
    for ev in super::events::<Event>(u) {
        match ev {
            Event::Add(spec) => {
                let route = build(&spec);
                let (len, added) = (table.len(), table.added());
                let got = table.add(route);
                let want = reference.add(&route);
                check_add(want, &got)?;
                let grew = usize::from(got.is_ok());
                if table.len() != len + grew || table.added() != added + grew {
                    return Err(format!(
                        "add {route} = {got:?}: len {len} -> {}, added {added} -> {}",
                        table.len(),
                        table.added()
                    ));
                }
                out.push(Step::Add(got));
            }
            Event::Lookup(dst, src) => {
                let (dst, src) = (dst.ip(), src.as_ref().map(Addr::ip));
                let got = table.lookup(dst, src);
                check_lookup(&reference, dst, src, &got)?;
                let m = table.matching_route(dst);
                if in_scope(dst) && m != reference.matching_route(dst) {
                    return Err(format!(
                        "matching_route({dst}) = {m:?}, brute force {:?}",
                        reference.matching_route(dst)
                    ));
                }
                out.push(Step::Lookup(got));
            }
        }
    }
    check_contents(&table, &reference)?;
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
