//! Generated route tables (proptest) installed in a router namespace through netlink and
//! compared with the route model, lookup by lookup (`RTM_GETROUTE`, what `ip route get`
//! does), and the replay of every saved regression.
//!
//! A table mixes IPv4 and IPv6 routes of every type the model knows (via a gateway on one of
//! three links, on-link, local, blackhole, unreachable, prohibit, throw), nested around a few
//! anchor prefixes, with default routes and equal prefixes under different metrics; the
//! destinations are the edges of every prefix (first and last address, the addresses just
//! outside) plus random ones, some with a source address. Routes the model predicts the
//! kernel would refuse (the same prefix and metric twice) are left out of both.
//!
//! One router lab serves every case: the routes of the previous case are flushed. A failure
//! shrinks to a minimal table (proptest for small tables; for tables of 10,000 routes the
//! routes that cannot decide the failing lookup are cut first), then to the first lookup
//! that disagrees and the fewest routes that still make it disagree; it is saved under
//! `fixtures/route-regressions/` when it fails again on each of three fresh router labs, and
//! every saved one runs again here (`common::regressions`, through `RouteRegression`). The seed is fixed
//! (`NETCONFORM_PROPTEST_SEED` explores others, `NETCONFORM_PROPTEST_CASES` sets the number
//! of tables).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::{Deserialize, Serialize};

#[macro_use]
mod common;
use common::regressions::{self, Replay};

use netconform::models::route::{Route, RouteKind, RouteProfile, RouteTable};
use netconform::sandbox::{PIPELINE_WINDOW, RouterConfig, RouterLab, router_v4, router_v6};
use netconform::suites::route::table::{
    Query, TableMismatch, accepted_routes, edge_destinations, install, verify,
};

const LINKS: usize = 3;

/// One generated route, before it is made valid for the lab (shrinks field by field).
#[derive(Debug, Clone)]
struct RouteGen {
    v6: bool,
    anchor: usize,
    keep: u8,
    len: u8,
    bits: u128,
    kind: u8,
    link: usize,
    host: u8,
    metric: Option<u32>,
    prefsrc: Option<usize>,
}

const V4_ANCHORS: [[u8; 4]; 6] = [
    [20, 0, 0, 0],
    [45, 1, 0, 0],
    [100, 64, 0, 0],
    [172, 16, 5, 0],
    [192, 168, 0, 0],
    [198, 18, 0, 0],
];

const V6_ANCHORS: [[u16; 2]; 4] = [
    [0x2001, 0xdb8],
    [0xfd10, 0],
    [0x2a00, 0x1450],
    [0xfdaa, 0xbb],
];

fn mask(bits: u32, len: u8) -> u128 {
    let len = u32::from(len).min(bits);
    if len == 0 {
        0
    } else {
        (u128::MAX << (128 - len)) >> (128 - bits)
    }
}

fn link_subnets() -> Vec<IpNet> {
    (0..LINKS)
        .flat_map(|i| [router_v4(i).trunc(), router_v6(i).trunc()])
        .collect()
}

impl RouteGen {
    /// The route, or None when it would sit inside a link subnet (it would change which
    /// interface a gateway resolves to, which the model does not follow).
    fn route(&self) -> Option<Route> {
        let (dst, gw, src) = if self.v6 {
            let a = V6_ANCHORS[self.anchor % V6_ANCHORS.len()];
            let anchor = (u128::from(a[0]) << 112) | (u128::from(a[1]) << 96);
            let keep = mask(128, 16 + self.keep % 100);
            let addr = (anchor & keep) | (self.bits & !keep);
            let dst = IpNet::new(IpAddr::V6(Ipv6Addr::from(addr)), self.len.min(128)).ok()?;
            let gw = Ipv6Addr::new(
                0xfd00,
                0x200,
                self.link as u16,
                0,
                0,
                0,
                0,
                u16::from(self.host),
            );
            let src = self.prefsrc.map(|i| router_v6(i % LINKS).addr());
            (dst.trunc(), IpAddr::V6(gw), src)
        } else {
            let anchor = u32::from_be_bytes(V4_ANCHORS[self.anchor % V4_ANCHORS.len()]);
            let keep = mask(32, 4 + self.keep % 24) as u32;
            let addr = (anchor & keep) | (self.bits as u32 & !keep);
            let dst = IpNet::new(IpAddr::V4(Ipv4Addr::from(addr)), self.len.min(32)).ok()?;
            let gw = Ipv4Addr::new(10, 200, self.link as u8, self.host);
            let src = self.prefsrc.map(|i| router_v4(i % LINKS).addr());
            (dst.trunc(), IpAddr::V4(gw), src)
        };
        if link_subnets()
            .iter()
            .any(|s| dst.prefix_len() >= s.prefix_len() && s.contains(&dst.network()))
        {
            return None;
        }
        let oif = self.link as u32; // a link number here; the lab's index is filled in later
        let kind = match self.kind {
            0..=59 => RouteKind::Unicast {
                gateway: Some(gw),
                oif,
            },
            60..=69 => RouteKind::Unicast { gateway: None, oif },
            70..=75 => RouteKind::Blackhole,
            76..=81 => RouteKind::Unreachable,
            82..=87 => RouteKind::Prohibit,
            88..=91 => RouteKind::Throw,
            _ => RouteKind::Local { oif },
        };
        // IPv6 `local` routes get a prefsrc: without one the source comes from RFC 6724
        // among every interface, where the model's rule-8 tie order is not pinned.
        let prefsrc = match (kind, self.v6) {
            (RouteKind::Local { .. }, true) => src.or(Some(router_v6(self.link).addr())),
            _ => src,
        };
        Some(Route {
            dst,
            kind,
            metric: self.metric,
            prefsrc,
        })
    }
}

fn route_gen() -> impl Strategy<Value = RouteGen> {
    (
        proptest::bool::weighted(0.4),
        0usize..8,
        0u8..=128,
        prop_oneof![
            1 => Just(0u8),
            3 => 1u8..=16,
            12 => 17u8..=32,
            10 => 33u8..=64,
            5 => 65u8..=128,
        ],
        any::<u128>(),
        0u8..100,
        0usize..LINKS,
        2u8..=254,
        prop_oneof![
            3 => Just(None),
            7 => proptest::sample::select(vec![0u32, 1, 2, 5, 10, 20, 50, 100, 256, 1023, 1024, 4096]).prop_map(Some),
        ],
        proptest::option::weighted(0.15, 0usize..LINKS),
    )
        .prop_map(
            |(v6, anchor, keep, len, bits, kind, link, host, metric, prefsrc)| RouteGen {
                v6,
                anchor,
                keep,
                len: if v6 { len } else { len.min(32) },
                bits,
                kind,
                link,
                host,
                metric,
                prefsrc,
            },
        )
}

/// A generated case: routes and extra random destinations (bits, with or without a source).
#[derive(Debug, Clone)]
struct CaseGen {
    routes: Vec<RouteGen>,
    randoms: Vec<(bool, u128, u8)>,
}

fn case_gen(
    routes: std::ops::RangeInclusive<usize>,
    randoms: usize,
) -> impl Strategy<Value = CaseGen> {
    (
        proptest::collection::vec(route_gen(), routes),
        proptest::collection::vec((any::<bool>(), any::<u128>(), any::<u8>()), randoms),
    )
        .prop_map(|(routes, randoms)| CaseGen { routes, randoms })
}

/// A concrete case: what is installed and what is looked up (saved as a regression).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Case {
    name: String,
    /// Routes; `oif` holds the link number (0, 1, 2), not an interface index.
    routes: Vec<Route>,
    queries: Vec<Query>,
}

fn source_for(dst: IpAddr, pick: u8) -> Option<IpAddr> {
    let link = usize::from(pick) % LINKS;
    match (pick % 8, dst) {
        (0, IpAddr::V4(_)) => Some(router_v4(link).addr()),
        (0, IpAddr::V6(_)) => Some(router_v6(link).addr()),
        (1, IpAddr::V4(_)) => Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, pick))),
        (1, IpAddr::V6(_)) => Some(IpAddr::V6(Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 1))),
        _ => None,
    }
}

fn concretise(g: &CaseGen, max_edge_routes: usize) -> Case {
    let routes: Vec<Route> = g.routes.iter().filter_map(RouteGen::route).collect();
    let mut dsts = edge_destinations(&routes[..routes.len().min(max_edge_routes)]);
    for s in link_subnets() {
        dsts.extend(netconform::suites::route::table::prefix_edges(s));
        dsts.push(s.addr());
    }
    for r in (0..LINKS).flat_map(|i| [router_v4(i), router_v6(i)]) {
        dsts.push(r.addr());
    }
    for &(v6, bits, _) in &g.randoms {
        dsts.push(if v6 {
            IpAddr::V6(Ipv6Addr::from(bits))
        } else {
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        });
    }
    let picks: Vec<u8> = g.randoms.iter().map(|r| r.2).chain(0..=255).collect();
    let queries = dsts
        .into_iter()
        .filter(|d| RouteTable::in_scope(*d))
        .enumerate()
        .map(|(i, d)| (d, source_for(d, picks[i % picks.len()])))
        .collect();
    Case {
        name: "generated".into(),
        routes,
        queries,
    }
}

/// The routes with link numbers turned into the lab's interface indexes.
fn with_indexes(lab: &RouterLab, routes: &[Route]) -> Vec<Route> {
    let index = |link: u32| lab.segments()[link as usize % LINKS].router_link.index;
    routes
        .iter()
        .map(|r| {
            let kind = match r.kind {
                RouteKind::Unicast { gateway, oif } => RouteKind::Unicast {
                    gateway,
                    oif: index(oif),
                },
                RouteKind::Local { oif } => RouteKind::Local { oif: index(oif) },
                k => k,
            };
            Route { kind, ..*r }
        })
        .collect()
}

/// Turns the model's view of a route into a deliberately wrong one (negative test).
type Distort = fn(&RouteTable, Route) -> Route;

fn faithful(_: &RouteTable, r: Route) -> Route {
    r
}

/// The highest metric wins instead of the lowest: metrics inverted for the model only.
fn highest_metric_wins(model: &RouteTable, r: Route) -> Route {
    Route {
        metric: Some(u32::MAX - model.effective_metric(&r)),
        ..r
    }
}

struct Stats {
    routes: usize,
    lookups: usize,
}

/// Why a case failed: the kernel disagreed with the model, or the harness could not run it
/// (netlink failed, the model refused a route): only the first is a finding.
#[derive(Debug)]
enum Failed {
    Disagrees(String),
    Harness(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Disagrees(e) => write!(f, "{e}"),
            Failed::Harness(e) => write!(f, "harness: {e}"),
        }
    }
}

/// Runs one case: the model decides which routes are installable, the kernel gets those,
/// and every query is compared.
fn run_case(lab: &mut RouterLab, case: &Case, distort: Distort) -> Result<Stats, Failed> {
    let harness = |e: &dyn std::fmt::Display| Failed::Harness(e.to_string());
    let routes = with_indexes(lab, &case.routes);
    let mut model = lab.model(RouteProfile::linux());
    let accepted = accepted_routes(&mut model, &routes);
    let mut wrong = lab.model(RouteProfile::linux());
    for r in &accepted {
        let d = distort(&wrong, *r);
        wrong
            .add(d)
            .map_err(|e| Failed::Harness(format!("distorted model: {e}")))?;
    }
    match install(lab.router_rtnl(), &accepted).map_err(|e| harness(&e))? {
        Ok(()) => {}
        Err(m) => return Err(Failed::Disagrees(m.to_string())),
    }
    match verify(lab.router_rtnl(), &wrong, &case.queries, PIPELINE_WINDOW)
        .map_err(|e| harness(&e))?
    {
        Ok(lookups) => Ok(Stats {
            routes: accepted.len(),
            lookups,
        }),
        Err(m) => Err(Failed::Disagrees(m.to_string())),
    }
}

/// The lookup a failing case disagrees on first, if the failure is a lookup.
fn first_failing_query(lab: &mut RouterLab, case: &Case, distort: Distort) -> Option<Query> {
    let routes = with_indexes(lab, &case.routes);
    let mut model = lab.model(RouteProfile::linux());
    let accepted = accepted_routes(&mut model, &routes);
    let mut wrong = lab.model(RouteProfile::linux());
    for r in &accepted {
        wrong.add(distort(&wrong, *r)).ok()?;
    }
    install(lab.router_rtnl(), &accepted).ok()?.ok()?;
    match verify(lab.router_rtnl(), &wrong, &case.queries, PIPELINE_WINDOW).ok()? {
        Err(TableMismatch::Lookup { dst, src, .. }) => Some((dst, src)),
        _ => None,
    }
}

/// Shrinks a failing concrete case further: drop queries to the first failing one, then
/// drop routes one at a time while it still fails.
fn minimise(lab: &mut RouterLab, mut case: Case, distort: Distort) -> Case {
    if let Some(query) = first_failing_query(lab, &case, distort) {
        case.queries = vec![query];
        // Only routes whose prefix holds the destination (or the source) can decide the
        // lookup: try that cut first, which makes a table of 10,000 routes small at once.
        let (dst, src) = case.queries[0];
        let relevant = Case {
            routes: case
                .routes
                .iter()
                .filter(|r| r.dst.contains(&dst) || src.is_some_and(|s| r.dst.contains(&s)))
                .copied()
                .collect(),
            ..case.clone()
        };
        if matches!(run_case(lab, &relevant, distort), Err(Failed::Disagrees(_))) {
            case = relevant;
        }
    }
    let mut i = 0;
    while i < case.routes.len() {
        let mut smaller = case.clone();
        smaller.routes.remove(i);
        if matches!(run_case(lab, &smaller, distort), Err(Failed::Disagrees(_))) {
            case = smaller;
        } else {
            i += 1;
        }
    }
    case
}

/// Runs `n` generated cases; on failure returns the minimal case and the reason.
fn run_generated(
    lab: &mut RouterLab,
    strategy: impl Strategy<Value = CaseGen>,
    n: u32,
    max_edge_routes: usize,
    shrink_iters: u32,
    distort: Distort,
) -> Result<(usize, usize), (Case, String)> {
    let config = Config {
        cases: n,
        max_shrink_iters: shrink_iters,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let lab_cell = RefCell::new(lab);
    let totals = RefCell::new((0usize, 0usize));
    let result = regressions::generate(config, 0x726f_7574_6573, &strategy, |g| {
        let case = concretise(&g, max_edge_routes);
        let mut lab = lab_cell.borrow_mut();
        let s = run_case(&mut lab, &case, distort).map_err(|e| e.to_string())?;
        let mut t = totals.borrow_mut();
        t.0 += s.routes;
        t.1 += s.lookups;
        Ok(())
    });
    let lab = lab_cell.into_inner();
    match result {
        Ok(()) => Ok(totals.into_inner()),
        Err(found) => {
            let case = minimise(lab, concretise(&found.minimal, max_edge_routes), distort);
            let reason = match run_case(lab, &case, distort) {
                Err(e) => e.to_string(),
                Ok(_) => "the minimal case passes when run alone".into(),
            };
            Err((case, reason))
        }
    }
}

/// A route case as the regression kit saves and replays it (route cases are no engine
/// `Scenario`: they run on a router lab's netlink socket, not in a session). Replay: a fresh
/// router lab, every saved route installed and every saved lookup compared.
#[derive(Debug, Clone)]
struct RouteRegression(Case);

impl regressions::Regression for RouteRegression {
    fn load(text: &str) -> Result<Self, String> {
        serde_json::from_str(text)
            .map(RouteRegression)
            .map_err(|e| e.to_string())
    }
    fn kind(&self) -> &str {
        regressions::ROUTE.kind
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).expect("a case serialises")
    }
    fn name(&self) -> String {
        self.0.name.clone()
    }
    fn set_name(&mut self, name: String) {
        self.0.name = name;
    }
    fn steps(&self) -> usize {
        self.0.routes.len()
    }
    fn replay(&self) -> Replay {
        let case = &self.0;
        let mut lab = match RouterLab::build(RouterConfig::dual_stack(LINKS)) {
            Ok(lab) => lab,
            Err(e) => return Replay::Broken(format!("router lab: {e}")),
        };
        match run_case(&mut lab, case, faithful) {
            Err(Failed::Disagrees(e)) => Replay::Disagreed(e),
            Err(Failed::Harness(e)) => Replay::Broken(e),
            // Every saved route installed and every saved lookup compared: a regression
            // that no longer exercises anything is a failure too.
            Ok(stats)
                if (stats.routes, stats.lookups) != (case.routes.len(), case.queries.len()) =>
            {
                Replay::Disagreed(format!(
                    "{} of {} routes installed, {} of {} lookups compared",
                    stats.routes,
                    case.routes.len(),
                    stats.lookups,
                    case.queries.len()
                ))
            }
            Ok(stats) => Replay::Agreed(format!(
                "{} routes installed, {} lookups compared",
                stats.routes, stats.lookups
            )),
        }
    }
}

/// Saves a generated table's failure (when it reproduces on fresh router labs) and panics.
fn save_and_panic(case: Case, reason: String) -> ! {
    let failure = format!(
        "shrunk to {} routes and {} lookups:\n{reason}\nroutes (oif = link number):\n{}",
        case.routes.len(),
        case.queries.len(),
        case.routes
            .iter()
            .map(|r| format!("  {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    regressions::save_if_it_reproduces(&regressions::ROUTE, RouteRegression(case), &failure)
}

#[test]
fn generated_small_tables_agree_with_the_kernel() {
    require_netns!();
    let mut lab = RouterLab::build(RouterConfig::dual_stack(LINKS)).expect("router lab");
    let started = std::time::Instant::now();
    let n = common::cases(1000);
    match run_generated(
        &mut lab,
        case_gen(1..=40, 20),
        n,
        usize::MAX,
        1000,
        faithful,
    ) {
        Ok((routes, lookups)) => {
            println!(
                "{n} small tables agreed: {routes} routes installed, {lookups} lookups compared in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert!(lookups > 0, "nothing was compared");
        }
        Err((case, reason)) => save_and_panic(case, reason),
    }
}

#[test]
fn generated_large_tables_agree_with_the_kernel() {
    require_netns!();
    let mut lab = RouterLab::build(RouterConfig::dual_stack(LINKS)).expect("router lab");
    let started = std::time::Instant::now();
    let n = common::cases(6);
    match run_generated(
        &mut lab,
        case_gen(10_000..=10_000, 1000),
        n,
        800,
        0,
        faithful,
    ) {
        Ok((routes, lookups)) => {
            println!(
                "{n} tables of 10,000 generated routes agreed: {routes} routes installed, {lookups} lookups compared in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert!(lookups > 0, "nothing was compared");
        }
        Err((case, reason)) => save_and_panic(case, reason),
    }
}

/// The comparison bites: a model whose tie-break prefers the highest metric is caught, and
/// the failure shrinks to a couple of routes on one prefix.
#[test]
fn a_wrong_metric_tie_break_is_caught_and_shrunk() {
    require_netns!();
    let mut lab = RouterLab::build(RouterConfig::dual_stack(LINKS)).expect("router lab");
    match run_generated(
        &mut lab,
        case_gen(1..=40, 0),
        200,
        usize::MAX,
        1000,
        highest_metric_wins,
    ) {
        Ok(_) => panic!("a model with the wrong tie-break agreed with the kernel"),
        Err((case, reason)) => {
            println!("caught, shrunk to {} routes: {reason}", case.routes.len());
            assert!(reason.contains("route get"), "{reason}");
            assert!(case.queries.len() == 1, "{case:?}");
            assert!(case.routes.len() <= 3, "{case:?}");
        }
    }
}

#[test]
fn saved_route_regressions_replay() {
    require_netns!();
    regressions::replay_saved::<RouteRegression>(&regressions::ROUTE);
}

/// Bad input gives a clear error: a route the kernel refuses comes back as its errno.
#[test]
fn a_refused_route_is_a_typed_error() {
    require_netns!();
    let mut lab = RouterLab::build(RouterConfig::dual_stack(1)).expect("router lab");
    let oif = lab.segments()[0].router_link.index;
    let bad = Route {
        dst: "20.0.0.0/8".parse().unwrap(),
        kind: RouteKind::Unicast {
            gateway: Some("10.99.0.1".parse().unwrap()),
            oif,
        },
        metric: None,
        prefsrc: None,
    };
    let outcomes = lab
        .router_rtnl()
        .install_routes(&[bad])
        .expect("netlink works");
    assert!(outcomes[0].is_err(), "{outcomes:?}");
    let e = lab.router_rtnl().add_typed_route(&bad).unwrap_err();
    assert!(
        e.to_string().contains("add route 20.0.0.0/8 via 10.99.0.1"),
        "{e}"
    );
    match install(lab.router_rtnl(), &[bad]).expect("netlink works") {
        Err(TableMismatch::Refused { .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// The certify check passes against the kernel.
#[test]
fn the_fixed_table_check_passes_on_linux() {
    require_netns!();
    let report = run_check(false);
    assert_eq!(
        report.verdict,
        netconform::engine::Verdict::Pass,
        "trace:\n{}",
        report.trace_text()
    );
    assert!(report.trace_text().matches("route get").count() > 50);
}

/// The check bites: a stack that silently ignores `prohibit` routes fails it, and the
/// differences name the lookups the missing route decides.
#[test]
fn the_fixed_table_check_fails_on_a_stack_without_prohibit_routes() {
    require_netns!();
    let report = run_check(true);
    match &report.verdict {
        netconform::engine::Verdict::Fail { differences, .. } => {
            assert!(
                differences
                    .iter()
                    .any(|d| d.contains("expected administratively prohibited")),
                "{differences:?}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A Linux stack that drops every `prohibit` route it is asked to add (and says ok).
struct NoProhibit(netconform::dut::linux::LinuxHost);

impl netconform::dut::Dut for NoProhibit {
    fn name(&self) -> &str {
        "linux-without-prohibit"
    }

    fn endpoints(&self) -> &netconform::dut::Endpoints {
        self.0.endpoints()
    }

    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn netconform::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl netconform::dut::Link for NoProhibit {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), netconform::dut::DutError> {
        self.0.send_frame(frame)
    }

    fn recv_frame(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, netconform::dut::DutError> {
        self.0.recv_frame(deadline)
    }
}

impl netconform::dut::Sockets for NoProhibit {
    fn call(
        &mut self,
        call: &netconform::dut::SocketCall,
    ) -> Result<netconform::dut::CallOutcome, netconform::dut::DutError> {
        self.0.call(call)
    }
}

impl netconform::dut::Tables for NoProhibit {
    fn query(
        &mut self,
        query: &netconform::dut::StateQuery,
    ) -> Result<netconform::dut::StateAnswer, netconform::dut::DutError> {
        self.0.query(query)
    }

    fn control(
        &mut self,
        control: &netconform::dut::Control,
    ) -> Result<(), netconform::dut::DutError> {
        match control {
            netconform::dut::Control::AddRoute(Route {
                kind: RouteKind::Prohibit,
                ..
            }) => Ok(()),
            other => self.0.control(other),
        }
    }
}

fn run_check(without_prohibit: bool) -> netconform::engine::CheckReport {
    use netconform::dut::linux::{LinuxHost, lab_config_for};
    use netconform::dut::{Dut, DutError};
    use netconform::engine::CheckSpec;
    let spec = netconform::suites::catalogue()
        .into_iter()
        .find(|c| c.id == "route.lookup.fixed-table")
        .expect("the route check is in the catalogue");
    let factory = move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        let t = LinuxHost::new(lab_config_for(&spec.needs))?;
        Ok(if without_prohibit {
            Box::new(NoProhibit(t))
        } else {
            Box::new(t)
        })
    };
    netconform::engine::runner::run_one(
        &spec,
        &factory,
        netconform::suites::tcp::scenario::ProfileName::Linux,
    )
}

/// A failure in a table of 10,000 routes shrinks to a handful of routes and one lookup.
#[test]
fn a_large_table_failure_shrinks_to_a_few_routes() {
    require_netns!();
    let mut lab = RouterLab::build(RouterConfig::dual_stack(LINKS)).expect("router lab");
    let started = std::time::Instant::now();
    match run_generated(
        &mut lab,
        case_gen(10_000..=10_000, 200),
        1,
        200,
        0,
        highest_metric_wins,
    ) {
        Ok(_) => panic!("a model with the wrong tie-break agreed with the kernel"),
        Err((case, reason)) => {
            println!(
                "caught in a table of 10,000 generated routes, shrunk in {:.1} s to {} routes: {reason}",
                started.elapsed().as_secs_f64(),
                case.routes.len()
            );
            assert_eq!(case.queries.len(), 1, "{case:?}");
            assert!(case.routes.len() <= 4, "{case:?}");
        }
    }
}
