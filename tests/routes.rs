//! Generated route tables (proptest) installed on a router and compared with the route
//! model, lookup by lookup (`RTM_GETROUTE`, what `ip route get` does), and the replay of every
//! saved regression.
//!
//! A table mixes IPv4 and IPv6 routes of every type the model knows (via a gateway on one of
//! three links, on-link, local, blackhole, unreachable, prohibit, throw), nested around a few
//! anchor prefixes, with default routes and equal prefixes under different metrics; the
//! destinations are the edges of every prefix (first and last address, the addresses just
//! outside) plus random ones, some with a source address. Routes the model predicts the
//! kernel would refuse (the same prefix and metric twice) are left out of both.
//!
//! Every table is a route scenario of the route suite ([`RouteScenario`], on a router of
//! three segments): it runs in a session on the Linux router DUT (`Control::AddRoute`,
//! `StateQuery::RouteGet`/`RouteGetFrom`), as `netconform replay` runs it. One router serves
//! every case: the routes of the previous case are flushed. A failure shrinks to a minimal
//! table (proptest for small tables; for tables of 10,000 routes the routes that cannot
//! decide the failing lookup are cut first), then to the first lookup that disagrees and the
//! fewest routes that still make it disagree, then with the engine's shrink on fresh
//! routers; it is saved under `fixtures/route-regressions/` when it fails again on each of
//! three fresh routers, and every saved one runs again here (`common::regressions`). The
//! seed is fixed (`NETCONFORM_PROPTEST_SEED` explores others, `NETCONFORM_PROPTEST_CASES`
//! sets the number of tables).

use netconform::dut::Tables;
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use proptest::test_runner::Config;

#[macro_use]
mod common;
use common::regressions::{self, Replay};

use netconform::dut::router::{LinuxRouter, router_config_for};
use netconform::dut::{Control, Dut, DutError, Endpoints, StateAnswer, StateQuery};
use netconform::engine::{CheckError, Scenario, Session};
use netconform::models::route::{Route, RouteKind, RouteProfile, RouteTable};
use netconform::sandbox::{RouterConfig, RouterLab, router_v4, router_v6};
use netconform::suites::route::scenario::{
    DEFAULT_SEGMENTS, RouteDut, RouteRun, RouteScenario, compare,
};
use netconform::suites::route::table::{Query, TableMismatch, edge_destinations, install};

/// The router's segments: port `i` is link `i`.
const LINKS: usize = DEFAULT_SEGMENTS;

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
            // Host `host` of the link's subnet (the router is ::1).
            let gw = match router_v6(self.link % LINKS).network() {
                IpAddr::V6(net) => Ipv6Addr::from(u128::from(net) | u128::from(self.host)),
                IpAddr::V4(_) => unreachable!("router_v6 is IPv6"),
            };
            let src = self.prefsrc.map(|i| router_v6(i % LINKS).addr());
            (dst.trunc(), IpAddr::V6(gw), src)
        } else {
            let anchor = u32::from_be_bytes(V4_ANCHORS[self.anchor % V4_ANCHORS.len()]);
            let keep = mask(32, 4 + self.keep % 24) as u32;
            let addr = (anchor & keep) | (self.bits as u32 & !keep);
            let dst = IpNet::new(IpAddr::V4(Ipv4Addr::from(addr)), self.len.min(32)).ok()?;
            // Host `host` of the link's subnet (the router is .1).
            let gw = match router_v4(self.link % LINKS).network() {
                IpAddr::V4(net) => Ipv4Addr::from(u32::from(net) | u32::from(self.host)),
                IpAddr::V6(_) => unreachable!("router_v4 is IPv4"),
            };
            let src = self.prefsrc.map(|i| router_v4(i % LINKS).addr());
            (dst.trunc(), IpAddr::V4(gw), src)
        };
        if link_subnets()
            .iter()
            .any(|s| dst.prefix_len() >= s.prefix_len() && s.contains(&dst.network()))
        {
            return None;
        }
        let oif = self.link as u32; // a port number: the scenario's run maps it to the index
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

/// The routes with port numbers turned into the lab's interface indexes.
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

/// The concrete case, a route scenario: the generated routes the model accepts on the lab's
/// router (the others, e.g. the same prefix and metric twice, the kernel would refuse), and
/// the lookups: the edges of the first `max_edge_routes` generated routes and of every link,
/// the router's addresses and the random destinations, some from a source.
fn concretise(g: &CaseGen, max_edge_routes: usize, lab: &RouterLab) -> RouteScenario {
    let generated: Vec<Route> = g.routes.iter().filter_map(RouteGen::route).collect();
    let mut dsts = edge_destinations(&generated[..generated.len().min(max_edge_routes)]);
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
    let mut model = lab.model(RouteProfile::linux());
    let routes = generated
        .iter()
        .zip(with_indexes(lab, &generated))
        .filter(|(_, indexed)| model.add(*indexed).is_ok())
        .map(|(r, _)| *r)
        .collect();
    RouteScenario {
        name: "generated".into(),
        dut: RouteDut::default(),
        profile: None,
        routes,
        queries,
    }
}

/// The router every generated case of a test runs on: the Linux router DUT the scenarios
/// need, built once. With `highest_metric_wins` it is a negative control: every route it is
/// given is installed with its metric inverted, so the highest metric wins a tie instead
/// of the lowest.
struct SharedRouter {
    router: LinuxRouter,
    highest_metric_wins: bool,
    /// Effective metrics, as the kernel counts them (IPv6 metric 0 is 1024).
    metrics: RouteTable,
}

impl SharedRouter {
    fn new(highest_metric_wins: bool) -> SharedRouter {
        let needs = RouteScenario {
            name: String::new(),
            dut: RouteDut::default(),
            profile: None,
            routes: Vec::new(),
            queries: Vec::new(),
        }
        .needs();
        let config = router_config_for(&needs).expect("a router scenario needs a router");
        assert_eq!(config, RouterConfig::dual_stack(LINKS));
        let router = LinuxRouter::new(config).expect("router");
        let metrics = router.lab().model(RouteProfile::linux());
        SharedRouter {
            router,
            highest_metric_wins,
            metrics,
        }
    }

    fn lab(&self) -> &RouterLab {
        self.router.lab()
    }
}

impl Dut for SharedRouter {
    fn name(&self) -> &str {
        if self.highest_metric_wins {
            "linux-router-highest-metric-wins"
        } else {
            self.router.name()
        }
    }

    fn endpoints(&self) -> &Endpoints {
        self.router.endpoints()
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl netconform::dut::Tables for SharedRouter {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.router.query(query)
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::AddRoute(r) if self.highest_metric_wins => {
                self.router.control(&Control::AddRoute(Route {
                    metric: Some(u32::MAX - self.metrics.effective_metric(r)),
                    ..*r
                }))
            }
            other => self.router.control(other),
        }
    }
}

/// Why a case failed: the kernel disagreed with the model (a lookup, or a route the model
/// accepts refused), or the harness could not run it: only the first is a finding.
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

/// Runs one case in a fresh session on the shared router, after flushing the previous
/// case's routes: every route installed, every lookup compared.
fn compare_case(dut: &mut SharedRouter, case: &RouteScenario) -> Result<RouteRun, Failed> {
    dut.router
        .lab_mut()
        .router_rtnl()
        .flush_static_routes()
        .map_err(|e| Failed::Harness(e.to_string()))?;
    let mut session = Session::new(dut);
    match compare(&mut session, case) {
        Ok(run) => Ok(run),
        Err(e @ CheckError::Dut { .. }) => Err(Failed::Harness(e.to_string())),
        Err(e) => Err(Failed::Disagrees(e.to_string())),
    }
}

/// [`compare_case`], failing at the first lookup that disagrees.
fn run_case(dut: &mut SharedRouter, case: &RouteScenario) -> Result<RouteRun, Failed> {
    let run = compare_case(dut, case)?;
    match run.disagreements.first() {
        None => Ok(run),
        Some(d) => Err(Failed::Disagrees(d.to_string())),
    }
}

/// The lookup a failing case disagrees on first, if the failure is a lookup.
fn first_failing_query(dut: &mut SharedRouter, case: &RouteScenario) -> Option<Query> {
    compare_case(dut, case)
        .ok()?
        .disagreements
        .first()
        .map(|d| d.query)
}

/// Shrinks a failing concrete case further: drop queries to the first failing one, then
/// drop routes one at a time while it still fails.
fn minimise(dut: &mut SharedRouter, mut case: RouteScenario) -> RouteScenario {
    if let Some(query) = first_failing_query(dut, &case) {
        case.queries = vec![query];
        // Only routes whose prefix holds the destination (or the source) can decide the
        // lookup: try that cut first, which makes a table of 10,000 routes small at once.
        let (dst, src) = case.queries[0];
        let relevant = RouteScenario {
            routes: case
                .routes
                .iter()
                .filter(|r| r.dst.contains(&dst) || src.is_some_and(|s| r.dst.contains(&s)))
                .copied()
                .collect(),
            ..case.clone()
        };
        if matches!(run_case(dut, &relevant), Err(Failed::Disagrees(_))) {
            case = relevant;
        }
    }
    let mut i = 0;
    while i < case.routes.len() {
        let mut smaller = case.clone();
        smaller.routes.remove(i);
        if matches!(run_case(dut, &smaller), Err(Failed::Disagrees(_))) {
            case = smaller;
        } else {
            i += 1;
        }
    }
    case
}

/// Runs `n` generated cases on `dut`; on failure returns the minimal case and the reason.
fn run_generated(
    dut: &mut SharedRouter,
    strategy: impl Strategy<Value = CaseGen>,
    n: u32,
    max_edge_routes: usize,
    shrink_iters: u32,
) -> Result<(usize, usize), (RouteScenario, String)> {
    let config = Config {
        cases: n,
        max_shrink_iters: shrink_iters,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let dut_cell = RefCell::new(dut);
    let totals = RefCell::new((0usize, 0usize));
    let result = regressions::generate(config, 0x726f_7574_6573, &strategy, |g| {
        let mut dut = dut_cell.borrow_mut();
        let case = concretise(&g, max_edge_routes, dut.lab());
        let run = run_case(&mut dut, &case).map_err(|e| e.to_string())?;
        let mut t = totals.borrow_mut();
        t.0 += run.routes;
        t.1 += run.lookups;
        Ok(())
    });
    let dut = dut_cell.into_inner();
    match result {
        Ok(()) => Ok(totals.into_inner()),
        Err(found) => {
            let case = concretise(&found.minimal, max_edge_routes, dut.lab());
            let case = minimise(dut, case);
            let reason = match run_case(dut, &case) {
                Err(e) => e.to_string(),
                Ok(_) => "the minimal case passes when run alone".into(),
            };
            Err((case, reason))
        }
    }
}

/// Saves a generated table's failure (shrunk again by the engine on fresh routers, saved
/// when it reproduces on each of three) and panics.
fn save_and_panic(case: RouteScenario, reason: String) -> ! {
    let failure = format!(
        "shrunk to {} routes and {} lookups:\n{reason}\nroutes (oif = port number):\n{}",
        case.routes.len(),
        case.queries.len(),
        case.routes
            .iter()
            .map(|r| format!("  {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    regressions::save_shrunk_scenario(&regressions::ROUTE, Box::new(case), &failure)
}

#[test]
fn generated_small_tables_agree_with_the_kernel() {
    require_netns!();
    let mut router = SharedRouter::new(false);
    let started = std::time::Instant::now();
    let n = common::cases(1000);
    match run_generated(&mut router, case_gen(1..=40, 20), n, usize::MAX, 1000) {
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
    let mut router = SharedRouter::new(false);
    let started = std::time::Instant::now();
    let n = common::cases(6);
    match run_generated(&mut router, case_gen(10_000..=10_000, 1000), n, 800, 0) {
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

/// The comparison bites: a router whose tie-break prefers the highest metric is caught, and
/// the failure shrinks to a couple of routes on one prefix.
#[test]
fn a_wrong_metric_tie_break_is_caught_and_shrunk() {
    require_netns!();
    let mut router = SharedRouter::new(true);
    match run_generated(&mut router, case_gen(1..=40, 0), 200, usize::MAX, 1000) {
        Ok(_) => panic!("a router with the wrong tie-break agreed with the model"),
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
    // The files are there, exactly as many as were saved, with or without namespaces.
    regressions::ROUTE.files();
    require_netns!();
    // Each one runs as `netconform replay` runs it; its run fails unless every saved route
    // is installed and every saved lookup compared (a route the model refuses or a lookup
    // out of its scope is a replay that cannot run), so a regression that no longer
    // exercises anything fails too.
    assert_eq!(
        regressions::replay_saved::<Box<dyn Scenario>>(&regressions::ROUTE),
        regressions::ROUTE.saved
    );
}

/// A small router table: IPv4 via a gateway on port 1 and on-link on port 2, an IPv6 route
/// of metric 0 (1024 on Linux) beside a prohibit route of metric 512, a blackhole; lookups
/// into each, two from a source address.
fn replay_scenario_file() -> RouteScenario {
    let route = |dst: &str, kind, metric| Route {
        dst: dst.parse().unwrap(),
        kind,
        metric,
        prefsrc: None,
    };
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    RouteScenario {
        name: "replayed".into(),
        dut: RouteDut::Router { segments: LINKS },
        profile: None,
        routes: vec![
            route(
                "198.51.100.0/24",
                RouteKind::Unicast {
                    gateway: Some(a("10.78.2.2")),
                    oif: 1,
                },
                None,
            ),
            route(
                "198.51.100.128/25",
                RouteKind::Unicast {
                    gateway: None,
                    oif: 2,
                },
                Some(10),
            ),
            route(
                "2001:db8:1::/48",
                RouteKind::Unicast {
                    gateway: Some(a("fd00:78:1::2")),
                    oif: 0,
                },
                Some(0),
            ),
            route("2001:db8:1::/48", RouteKind::Prohibit, Some(512)),
            route("203.0.113.0/24", RouteKind::Blackhole, None),
        ],
        queries: vec![
            (a("198.51.100.7"), None),
            (a("198.51.100.7"), Some(a("10.78.3.1"))),
            (a("198.51.100.200"), None),
            (a("2001:db8:1::1"), None),
            (a("2001:db8:1::1"), Some(a("fd00:78:2::1"))),
            (a("203.0.113.9"), None),
        ],
    }
}

/// A route scenario's file reads back through the suites' registry as the same scenario and
/// replays on a fresh router: every route installed, every lookup (from a source too)
/// compared.
#[test]
fn a_route_scenario_file_replays_through_load_scenario() {
    require_netns!();
    let scenario = replay_scenario_file();
    let dir = std::env::temp_dir().join(format!("ncf-route-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("replayed.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&scenario.to_json()).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let loaded = netconform::suites::load_scenario(&text).expect("the file loads");
    assert_eq!(loaded.kind(), RouteScenario::KIND);
    assert_eq!(
        loaded.as_any().downcast_ref::<RouteScenario>(),
        Some(&scenario)
    );
    assert_eq!(
        regressions::replay_scenario(loaded.as_ref()),
        Replay::Agreed("5 routes installed, 6 lookups compared".into())
    );
}

/// `netconform replay FILE --target linux` runs a route scenario on a fresh router: it
/// passes under the Linux profile and fails under `--profile rfc`, where IPv6 metric 0
/// stays 0 and beats the prohibit route of metric 512.
#[test]
fn netconform_replay_runs_a_route_scenario_file() {
    require_netns!();
    let dir = std::env::temp_dir().join(format!("ncf-route-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("replayed.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&replay_scenario_file().to_json()).unwrap(),
    )
    .unwrap();
    let replay = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_netconform"))
            .args(["replay", "--target", "linux"])
            .args(extra)
            .arg(&file)
            .output()
            .expect("run replay")
    };
    let out = replay(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("route-scenario replayed (Linux profile, 11 steps)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "PASS: the stack agrees with the model (5 routes installed, 6 lookups compared)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("route get 198.51.100.7 from 10.78.3.1: Unicast"),
        "{stdout}"
    );
    let out = replay(&["--profile", "rfc"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("route get 2001:db8:1::1: expected Unicast oif")
            && stdout.contains("observed administratively prohibited"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
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
    // Through the router DUT the refusal keeps its errno: what a route scenario reports as
    // the stack refusing a route (a wrong answer), not as the harness failing.
    let mut router = LinuxRouter::new(RouterConfig::dual_stack(1)).expect("router");
    let oif = router.lab().segments()[0].router_link.index;
    let bad = Route {
        kind: RouteKind::Unicast {
            gateway: Some("10.99.0.1".parse().unwrap()),
            oif,
        },
        ..bad
    };
    match router.control(&Control::AddRoute(bad)) {
        Err(DutError::Sandbox(netconform::sandbox::SandboxError::Netlink { .. })) => {}
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
    // The failing table is the check's counterexample, a route scenario the engine shrank
    // on fresh stacks without prohibit routes.
    match &report.counterexample {
        Some(netconform::engine::Counterexample::Scenario {
            scenario,
            shrunk,
            original_steps,
        }) => {
            assert_eq!(scenario.kind(), RouteScenario::KIND);
            assert!(*shrunk && scenario.len() < *original_steps, "{scenario:?}");
            let table = scenario.as_any().downcast_ref::<RouteScenario>().unwrap();
            assert_eq!(table.dut, RouteDut::Host);
            assert!(
                table.routes.iter().any(|r| r.kind == RouteKind::Prohibit),
                "{table:?}"
            );
        }
        other => panic!("expected a route scenario, got {other:?}"),
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
    let mut router = SharedRouter::new(true);
    let started = std::time::Instant::now();
    match run_generated(&mut router, case_gen(10_000..=10_000, 200), 1, 200, 0) {
        Ok(_) => panic!("a router with the wrong tie-break agreed with the model"),
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
