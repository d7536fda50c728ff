//! Route lookup checks: a fixed table installed on the stack under test and in the route
//! model ([`crate::models::route`]), then `route get` for every edge of every prefix, each
//! answer compared with the model's.
//!
//! The table covers every route type the model knows (via a gateway, on-link, local,
//! blackhole, unreachable, prohibit, throw), nested prefixes, equal prefixes under different
//! metrics, default routes, IPv4 and IPv6. Every gateway is the peer the harness speaks for,
//! so the table installs on a stack with one interface.
//!
//! The table is a route scenario ([`scenario::RouteScenario`], [`fixed_scenario`]): the check
//! runs it like any other, and a failing table is its counterexample, which the engine
//! shrinks to the routes and the lookup that still disagree and `netconform replay` runs.
//! The generated tables of `tests/routes.rs` are route scenarios too, on a router.

pub mod scenario;
pub mod table;
pub mod wire;

use crate::engine::Uses;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::dut::{DutError, Endpoints, StateAnswer, StateQuery};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::models::route::{AnswerKind, Route, RouteAnswer, RouteError, RouteKind, RouteTable};
use crate::suites::route::scenario::{RouteDut, RouteScenario, run_route_scenario};
use crate::suites::route::table::edge_destinations;

/// RFC 1812 §5.2.4.3: the pruning rules, longest match.
pub const LONGEST_MATCH: Clause = Clause {
    id: "rfc1812-5.2.4.3-longest-match",
    source: "RFC 1812 §5.2.4.3",
    url: "https://www.rfc-editor.org/rfc/rfc1812#section-5.2.4.3",
    text: "Conceptually, any route lookup algorithm starts out with a set of candidate routes that \
           consists of the entire contents of the FIB. The algorithm consists of a series of steps \
           that discard routes from the set. These steps are referred to as Pruning Rules. ... (2) \
           Longest Match: Longest Match is a refinement of Basic Match ... the algorithm examines \
           the remaining routes to determine which among them have the largest route.length \
           values. All except these are discarded.",
};

/// RFC 6724 §5, rule 1.
pub const SOURCE_RULE_1: Clause = Clause {
    id: "rfc6724-5-rule1-same-address",
    source: "RFC 6724 §5 (Rule 1)",
    url: "https://www.rfc-editor.org/rfc/rfc6724#section-5",
    text: "Rule 1: Prefer same address. If SA = D, then prefer SA. Similarly, if SB = D, then \
           prefer SB.",
};

/// RFC 6724 §5, rule 5.
pub const SOURCE_RULE_5: Clause = Clause {
    id: "rfc6724-5-rule5-outgoing-interface",
    source: "RFC 6724 §5 (Rule 5)",
    url: "https://www.rfc-editor.org/rfc/rfc6724#section-5",
    text: "Rule 5: Prefer outgoing interface. If SA is assigned to the interface that will be used \
           to send to D and SB is assigned to a different interface, then prefer SA. Similarly, if \
           SB is assigned to the interface that will be used to send to D and SA is assigned to a \
           different interface, then prefer SB.",
};

/// RFC 6724 §5, rule 8.
pub const SOURCE_RULE_8: Clause = Clause {
    id: "rfc6724-5-rule8-longest-prefix",
    source: "RFC 6724 §5 (Rule 8)",
    url: "https://www.rfc-editor.org/rfc/rfc6724#section-5",
    text: "Rule 8: Use longest matching prefix. If CommonPrefixLen(SA, D) > CommonPrefixLen(SB, D), \
           then prefer SA. Similarly, if CommonPrefixLen(SB, D) > CommonPrefixLen(SA, D), then \
           prefer SB.",
};

/// The route checks.
pub const CHECKS: &[CheckSpec] = &[CheckSpec {
    id: "route.lookup.fixed-table",
    title: "a fixed IPv4+IPv6 table of every route type: route get at every prefix edge agrees with the route model",
    clauses: &[LONGEST_MATCH, SOURCE_RULE_1, SOURCE_RULE_5, SOURCE_RULE_8],
    needs: Needs {
        ipv6: true,
        peer_preresolved: false,
        settings: &[],
        switch: None,
        router: None,
        uses: &[Uses::Tables],
    },
    run: fixed_table,
}];

fn net(s: &str) -> IpNet {
    s.parse().expect("a valid prefix in the fixed table")
}

/// The fixed table: `oif` is the stack's interface (port 0 in [`fixed_scenario`]), `gw4`/`gw6`
/// the peer.
pub fn fixed_routes(oif: u32, gw4: IpAddr, gw6: IpAddr, src6: IpAddr) -> Vec<Route> {
    let route = |dst: &str, kind, metric| Route {
        dst: net(dst),
        kind,
        metric,
        prefsrc: None,
    };
    let via4 = RouteKind::Unicast {
        gateway: Some(gw4),
        oif,
    };
    let via6 = RouteKind::Unicast {
        gateway: Some(gw6),
        oif,
    };
    let onlink = RouteKind::Unicast { gateway: None, oif };
    vec![
        // IPv4: a default route, nested prefixes of every type, equal prefixes.
        route("0.0.0.0/0", via4, None),
        route("0.0.0.0/0", RouteKind::Unreachable, Some(10)),
        route("203.0.113.0/24", RouteKind::Unreachable, None),
        route("203.0.113.128/25", via4, Some(20)),
        route("203.0.113.128/25", RouteKind::Prohibit, Some(10)),
        route("203.0.113.192/26", RouteKind::Blackhole, None),
        route("203.0.113.224/27", via4, Some(5)),
        route("198.51.100.0/24", onlink, None),
        route("198.51.100.64/26", RouteKind::Throw, None),
        route("192.0.2.0/24", RouteKind::Local { oif }, None),
        route("100.64.0.0/10", RouteKind::Blackhole, Some(100)),
        route("100.64.0.0/10", via4, Some(50)),
        // IPv6: metric 0 is 1024, so the prohibit route (512) wins its prefix.
        route("::/0", via6, None),
        route("2001:db8::/32", RouteKind::Unreachable, None),
        route("2001:db8:1::/48", via6, Some(0)),
        route("2001:db8:1::/48", RouteKind::Prohibit, Some(512)),
        route("2001:db8:1:8000::/49", via6, Some(2000)),
        route("2001:db8:2::/48", RouteKind::Blackhole, None),
        route("2001:db8:3::/48", onlink, None),
        route("2001:db8:4::/48", RouteKind::Throw, None),
        Route {
            prefsrc: Some(src6),
            ..route("2001:db8:5::/48", RouteKind::Local { oif }, None)
        },
    ]
}

/// The model's terms for a target's `route get` answer.
fn observed(answer: &StateAnswer) -> Option<Result<RouteAnswer, RouteError>> {
    match answer {
        StateAnswer::Route { lookup, .. } => {
            let kind = match lookup.kind.as_str() {
                "Unicast" => AnswerKind::Unicast,
                "Local" => AnswerKind::Local,
                "Broadcast" => AnswerKind::Broadcast,
                _ => return None,
            };
            Some(Ok(RouteAnswer {
                kind,
                oif: lookup.oif?,
                gateway: lookup.gateway,
                src: lookup.src,
            }))
        }
        StateAnswer::NoRoute { failure, .. } => Some(Err(*failure)),
        _ => None,
    }
}

pub(crate) fn show(r: &Result<RouteAnswer, RouteError>) -> String {
    match r {
        Ok(a) => a.to_string(),
        Err(e) => e.to_string(),
    }
}

pub(crate) fn unsupported(what: &str) -> CheckError {
    CheckError::Dut {
        step: "addressing".into(),
        source: DutError::NotSupported { what: what.into() },
    }
}

/// `route get dst` on the target, in the route model's terms.
pub(crate) fn lookup(
    s: &mut Session<'_>,
    step: &str,
    dst: IpAddr,
) -> Result<Result<RouteAnswer, RouteError>, CheckError> {
    lookup_from(s, step, dst, None)
}

/// `route get dst [from src]` on the target ([`StateQuery::RouteGet`], or
/// [`StateQuery::RouteGetFrom`] with a source), in the route model's terms.
pub(crate) fn lookup_from(
    s: &mut Session<'_>,
    step: &str,
    dst: IpAddr,
    src: Option<IpAddr>,
) -> Result<Result<RouteAnswer, RouteError>, CheckError> {
    let query = match src {
        Some(src) => StateQuery::RouteGetFrom { dst, src },
        None => StateQuery::RouteGet(dst),
    };
    let answer = s.query(step, query)?;
    observed(&answer).ok_or_else(|| CheckError::WrongAnswer {
        step: step.into(),
        expected: "a route or a route error".into(),
        observed: format!("{answer:?}"),
    })
}

/// The fixed table as a route scenario on a host: [`fixed_routes`] on port 0 (gateways the
/// peer's addresses, the IPv6 local route's source the stack's), then `route get` at every
/// edge of every prefix and of the stack's and the peer's addresses (those in the model's
/// scope). Unsupported on a target without an IPv4 or an IPv6 address.
pub fn fixed_scenario(e: &Endpoints) -> Result<RouteScenario, CheckError> {
    let (Some((stack4, _)), Some(peer4)) = (e.stack_ipv4, e.peer_ipv4) else {
        return Err(unsupported("the target has no IPv4 address"));
    };
    let (Some((stack6, _)), Some(peer6)) = (e.stack_ipv6, e.peer_ipv6) else {
        return Err(unsupported("the target has no IPv6 address"));
    };
    let routes = fixed_routes(0, IpAddr::V4(peer4), IpAddr::V6(peer6), IpAddr::V6(stack6));
    let mut dsts = edge_destinations(&routes);
    dsts.extend([
        IpAddr::V4(stack4),
        IpAddr::V6(stack6),
        IpAddr::V4(peer4),
        IpAddr::V6(peer6),
    ]);
    Ok(RouteScenario {
        name: CHECKS[0].id.into(),
        dut: RouteDut::Host,
        profile: None,
        routes,
        queries: dsts
            .into_iter()
            .filter(|d| RouteTable::in_scope(*d))
            .map(|d| (d, None))
            .collect(),
    })
}

fn fixed_table(s: &mut Session<'_>) -> Result<(), CheckError> {
    let fixed = s.fixed_behaviour();
    // A stack whose lookup is no API (declared in its profile): the routes it can hold,
    // the lookups observed on the wire.
    if let Some(fixed) = &fixed
        && let Some(r) = &fixed.route
        && !r.lookup_api
    {
        return wire::fixed_table_on_wire(s, fixed, r);
    }
    let mut scenario = RouteScenario {
        profile: Some(s.profile()),
        ..fixed_scenario(s.endpoints())?
    };
    if let Some(fixed) = &fixed
        && let Some(r) = &fixed.route
    {
        // A stack with a lookup API that holds only some kinds of route: the routes it
        // can hold, looked up at every edge of the full table, against the model of the
        // table it holds.
        let (routes, left_out) = wire::held_routes(&scenario.routes, r);
        s.note(format!(
            "ran against {}'s declared route table ({}): kinds {:?}, at most {} routes, metrics {}, IPv6 {}; {} of the fixed table's {} routes held, lookups through its API at every edge of the full table",
            fixed.stack,
            fixed.file,
            r.kinds,
            r.max_routes,
            r.metrics,
            r.ipv6,
            routes.len(),
            scenario.routes.len()
        ));
        for line in &left_out {
            s.note(format!("left out: {line}"));
        }
        scenario.routes = routes;
    }
    run_route_scenario(s, &scenario).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::profile::{Deviation as _, ProfileName};
    use crate::models::route::{Interface, RouteDeviation};

    /// The fixed table's model under `profile`, on a stack like the lab's.
    fn model(profile: ProfileName) -> (RouteTable, Vec<Route>) {
        let interfaces = vec![
            Interface {
                index: 1,
                name: "lo".into(),
                loopback: true,
                addrs: vec![net("127.0.0.1/8"), net("::1/128")],
            },
            Interface {
                index: 2,
                name: "stack".into(),
                loopback: false,
                addrs: vec![net("10.77.0.1/24"), net("fd00:77::1/64")],
            },
        ];
        let routes = fixed_routes(
            2,
            "10.77.0.2".parse().expect("address"),
            "fd00:77::2".parse().expect("address"),
            "fd00:77::1".parse().expect("address"),
        );
        let mut t = RouteTable::new(RouteDeviation::profile(profile), interfaces);
        for r in &routes {
            t.add(*r)
                .expect("the fixed table is valid under either profile");
        }
        (t, routes)
    }

    /// `--profile rfc` changes what `route.lookup.fixed-table` expects exactly where Linux
    /// deviates: IPv6 metric 0 stays 0 ([`RouteDeviation::Ipv6MetricZeroIsDefault`] off),
    /// so the gateway route of 2001:db8:1::/48 beats the prohibit route of metric 512.
    #[test]
    fn the_rfc_profile_changes_the_fixed_tables_expectations_where_linux_deviates() {
        let (linux, routes) = model(ProfileName::Linux);
        let (rfc, _) = model(ProfileName::Rfc);
        let dst: IpAddr = "2001:db8:1::1".parse().expect("address");
        assert_eq!(linux.lookup(dst, None), Err(RouteError::Prohibited));
        assert_eq!(
            rfc.lookup(dst, None),
            Ok(RouteAnswer {
                kind: AnswerKind::Unicast,
                oif: 2,
                gateway: Some("fd00:77::2".parse().expect("address")),
                src: Some("fd00:77::1".parse().expect("address")),
            })
        );
        let differing: Vec<IpAddr> = edge_destinations(&routes)
            .into_iter()
            .filter(|d| linux.lookup(*d, None) != rfc.lookup(*d, None))
            .collect();
        assert!(!differing.is_empty());
        // Only IPv6 differs: every Linux route deviation is IPv6's.
        assert!(differing.iter().all(IpAddr::is_ipv6), "{differing:?}");
    }
}
