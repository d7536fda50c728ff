//! Route scenarios on an in-process DUT that answers from a route model of its own (no
//! privilege, no namespace): steps, files, the comparison, and the engine's shrink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::dut::{Dut, Endpoints, PortInfo};
use crate::engine::runner::{run_one, shrink};
use crate::engine::{CheckSpec, Verdict};
use crate::models::route::RouteProfile;
use crate::sandbox::{MacAddr, RouteLookup};

/// What the in-process DUT gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing: it answers as the model does.
    None,
    /// It says ok to a `prohibit` route and drops it.
    DropsProhibit,
    /// It refuses every blackhole route (EEXIST).
    RefusesBlackholes,
}

/// A host (one interface, index 2, as the Linux lab is addressed) or a router of three
/// ports (indexes 2, 3, 4; `10.78.<i+1>.1/24`, `fd00:78:<i+1>::1/64`) whose FIB is a route
/// model; the loopback is index 1.
struct ModelDut {
    host: bool,
    fault: Fault,
    table: RouteTable,
    endpoints: Endpoints,
    ports: Vec<PortInfo>,
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a prefix")
}

impl ModelDut {
    fn host(fault: Fault) -> ModelDut {
        let interfaces = vec![
            loopback(1),
            Interface {
                index: 2,
                name: "stack".into(),
                loopback: false,
                addrs: vec![net("10.77.0.1/24"), net("fd00:77::1/64")],
            },
        ];
        ModelDut {
            host: true,
            fault,
            table: RouteTable::new(RouteProfile::linux(), interfaces),
            endpoints: Endpoints {
                harness_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                stack_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                stack_ipv4: Some((Ipv4Addr::new(10, 77, 0, 1), 24)),
                peer_ipv4: Some(Ipv4Addr::new(10, 77, 0, 2)),
                stack_ipv6: Some(("fd00:77::1".parse().expect("address"), 64)),
                peer_ipv6: Some("fd00:77::2".parse().expect("address")),
                mtu: 1500,
            },
            ports: Vec::new(),
        }
    }

    fn router(fault: Fault) -> ModelDut {
        let ports: Vec<PortInfo> = (0..3u8)
            .map(|i| PortInfo {
                ifindex: 2 + u32::from(i),
                name: format!("r{i}"),
                mac: MacAddr([2, 0, 0, 0, 1, i]),
                harness_mac: MacAddr([2, 0, 0, 0, 2, i]),
                ipv4: Some((Ipv4Addr::new(10, 78, i + 1, 1), 24)),
                ipv6: Some((
                    Ipv6Addr::new(0xfd00, 0x78, u16::from(i) + 1, 0, 0, 0, 0, 1),
                    64,
                )),
                mtu: 1500,
            })
            .collect();
        let mut interfaces = vec![loopback(1)];
        for p in &ports {
            let (v4, l4) = p.ipv4.expect("v4");
            let (v6, l6) = p.ipv6.expect("v6");
            interfaces.push(Interface {
                index: p.ifindex,
                name: p.name.clone(),
                loopback: false,
                addrs: vec![
                    IpNet::new(IpAddr::V4(v4), l4).expect("prefix"),
                    IpNet::new(IpAddr::V6(v6), l6).expect("prefix"),
                ],
            });
        }
        ModelDut {
            host: false,
            fault,
            table: RouteTable::new(RouteProfile::linux(), interfaces),
            endpoints: Endpoints {
                harness_mac: MacAddr([2, 0, 0, 0, 2, 0]),
                stack_mac: MacAddr([2, 0, 0, 0, 1, 0]),
                stack_ipv4: Some((Ipv4Addr::new(10, 78, 1, 1), 24)),
                peer_ipv4: Some(Ipv4Addr::new(10, 78, 1, 2)),
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
            ports,
        }
    }

    fn answer(&self, dst: IpAddr, src: Option<IpAddr>) -> StateAnswer {
        match self.table.lookup(dst, src) {
            Ok(a) => StateAnswer::Route {
                lookup: RouteLookup {
                    dst,
                    oif: Some(a.oif),
                    gateway: a.gateway,
                    src: a.src,
                    kind: format!("{:?}", a.kind),
                },
                dev: None,
            },
            Err(failure) => StateAnswer::NoRoute { dst, failure },
        }
    }
}

impl Dut for ModelDut {
    fn name(&self) -> &str {
        "model-dut"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Tables for ModelDut {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::RouteGet(dst) => Ok(self.answer(*dst, None)),
            StateQuery::RouteGetFrom { dst, src } => Ok(self.answer(*dst, Some(*src))),
            StateQuery::Ports if !self.host => Ok(StateAnswer::Ports(self.ports.clone())),
            other => Err(DutError::NotSupported {
                what: format!("{other:?}"),
            }),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        let Control::AddRoute(route) = control else {
            return Err(DutError::NotSupported {
                what: control.to_string(),
            });
        };
        match (self.fault, route.kind) {
            (Fault::DropsProhibit, RouteKind::Prohibit) => Ok(()),
            (Fault::RefusesBlackholes, RouteKind::Blackhole) => {
                Err(DutError::Sandbox(SandboxError::Netlink {
                    namespace: "model".into(),
                    op: format!("add route {route}"),
                    errno: nix::errno::Errno::EEXIST,
                }))
            }
            _ => self.table.add(*route).map_err(|e| DutError::Malformed {
                detail: e.to_string(),
            }),
        }
    }
}

fn route(dst: &str, kind: RouteKind) -> Route {
    Route {
        dst: net(dst),
        kind,
        metric: None,
        prefsrc: None,
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// A router scenario: a default route on port 0, a prohibit, an unreachable and a blackhole
/// prefix, and a lookup into each (one from a source).
fn router_scenario() -> RouteScenario {
    RouteScenario {
        name: "four routes".into(),
        dut: RouteDut::Router { segments: 3 },
        profile: None,
        routes: vec![
            route(
                "0.0.0.0/0",
                RouteKind::Unicast {
                    gateway: Some(addr("10.78.1.2")),
                    oif: 0,
                },
            ),
            route("203.0.113.0/24", RouteKind::Prohibit),
            route("198.51.100.0/24", RouteKind::Unreachable),
            route("2001:db8::/32", RouteKind::Blackhole),
        ],
        queries: vec![
            (addr("198.51.100.1"), None),
            (addr("203.0.113.5"), Some(addr("10.78.2.1"))),
            (addr("203.0.113.0"), None),
            (addr("2001:db8::1"), None),
        ],
    }
}

fn run_on(
    dut: &mut ModelDut,
    scenario: &RouteScenario,
) -> (Result<ScenarioOutcome, CheckError>, Option<Counterexample>) {
    let mut session = Session::new(dut);
    let result = scenario.run(&mut session);
    (result, session.counterexample().cloned())
}

#[test]
fn its_steps_are_its_routes_then_its_lookups() {
    let s = router_scenario();
    assert_eq!(s.len(), 8);
    let lines = s.step_lines();
    assert_eq!(lines[0], "route 0.0.0.0/0 via 10.78.1.2 oif 0");
    assert_eq!(lines[1], "route prohibit 203.0.113.0/24");
    assert_eq!(lines[5], "lookup 203.0.113.5 from 10.78.2.1");
    assert_eq!(lines[7], "lookup 2001:db8::1");
    let without_route = s.without_step(1);
    let without_route = without_route
        .as_any()
        .downcast_ref::<RouteScenario>()
        .expect("a route scenario");
    assert_eq!(without_route.routes.len(), 3);
    assert_eq!(without_route.queries, s.queries);
    let without_lookup = s.without_step(5);
    let without_lookup = without_lookup
        .as_any()
        .downcast_ref::<RouteScenario>()
        .expect("a route scenario");
    assert_eq!(without_lookup.routes, s.routes);
    assert_eq!(
        without_lookup.queries,
        [s.queries[0], s.queries[2], s.queries[3]]
    );
    assert_eq!(
        s.without_step(8).as_any().downcast_ref::<RouteScenario>(),
        Some(&s)
    );
    assert_eq!(
        s.needs(),
        Needs {
            ipv6: true,
            router: Some(RouterNeeds { segments: 3 }),
            uses: &[crate::dut::needs::Uses::Tables],
            ..Needs::IPV4
        }
    );
    let host = RouteScenario {
        dut: RouteDut::Host,
        ..s
    };
    assert_eq!(host.needs().router, None);
    assert!(host.needs().ipv6);
}

/// The file names its kind and reads back equal; a file of the generated tests saved before
/// route tables were scenarios (no kind, no DUT, no profile) is a router of three segments.
#[test]
fn its_file_reads_back_and_an_old_file_is_a_router_of_three_segments() {
    let mut s = router_scenario();
    s.set_profile(ProfileName::Rfc);
    let json = s.to_json();
    assert_eq!(json["kind"], "route-scenario");
    assert_eq!(json["dut"], serde_json::json!({"router": {"segments": 3}}));
    assert_eq!(json["profile"], "Rfc");
    assert_eq!(RouteScenario::from_json(&json).expect("reads back"), s);
    let old = serde_json::json!({
        "name": "old",
        "routes": [{"dst": "10.99.0.0/24", "kind": {"Local": {"oif": 0}}, "metric": null, "prefsrc": null}],
        "queries": [["10.99.0.7", null], ["10.78.1.9", "10.99.0.7"]]
    });
    let old = RouteScenario::from_json(&old).expect("an old file reads");
    assert_eq!(old.dut, RouteDut::Router { segments: 3 });
    assert_eq!(old.profile, None);
    assert_eq!(old.len(), 3);
    assert!(old.to_json().get("profile").is_none());
}

#[test]
fn a_dut_that_agrees_passes_and_every_route_and_lookup_counts() {
    let s = router_scenario();
    let (result, offered) = run_on(&mut ModelDut::router(Fault::None), &s);
    assert_eq!(
        result.expect("agrees"),
        ScenarioOutcome::Agreed {
            summary: "4 routes installed, 4 lookups compared".into()
        }
    );
    assert!(offered.is_none());
    let mut dut = ModelDut::router(Fault::None);
    let mut session = Session::new(&mut dut);
    let run = compare(&mut session, &s).expect("runs");
    assert_eq!((run.routes, run.lookups), (4, 4));
    assert!(run.disagreements.is_empty());
    // Every route went through the DUT's control plane, on the DUT's interface index.
    let trace = session.trace().render(session.host_names());
    assert!(
        trace.contains("add route 0.0.0.0/0 via 10.78.1.2 oif 2"),
        "{trace}"
    );
    assert!(
        trace.contains("route get 203.0.113.5 from 10.78.2.1: administratively prohibited"),
        "{trace}"
    );
}

/// A DUT that drops prohibit routes disagrees on the lookups the prohibit route decides,
/// each named with what the model expected, and offers the scenario as its counterexample.
#[test]
fn a_dut_that_drops_prohibit_routes_fails_on_the_lookups_they_decide() {
    let s = router_scenario();
    let (result, offered) = run_on(&mut ModelDut::router(Fault::DropsProhibit), &s);
    match result {
        Err(CheckError::Mismatch { step, differences }) => {
            assert_eq!(step, "route lookups");
            assert_eq!(differences.len(), 2, "{differences:?}");
            assert!(
                differences[0].starts_with(
                    "route get 203.0.113.5 from 10.78.2.1: expected administratively prohibited (EACCES), observed Unicast"
                ),
                "{differences:?}"
            );
            assert!(
                differences[1].ends_with("(deciding route: prohibit 203.0.113.0/24)"),
                "{differences:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let offered = offered.expect("a counterexample");
    assert_eq!(offered.kind(), "route-scenario");
    assert_eq!(
        offered
            .as_scenario()
            .and_then(|o| o.as_any().downcast_ref::<RouteScenario>()),
        Some(&s)
    );
}

/// A refused route the model accepts is a wrong answer; a route the model refuses, a lookup
/// out of its scope and a port the DUT lacks are the scenario's fault, never a failure.
#[test]
fn refusals_and_invalid_scenarios_are_told_apart() {
    let s = router_scenario();
    match run_on(&mut ModelDut::router(Fault::RefusesBlackholes), &s).0 {
        Err(CheckError::WrongAnswer { step, observed, .. }) => {
            assert_eq!(step, "add blackhole 2001:db8::/32");
            assert!(observed.starts_with("refused: EEXIST"), "{observed}");
        }
        other => panic!("{other:?}"),
    }
    let twice = RouteScenario {
        routes: vec![s.routes[1], s.routes[1]],
        ..s.clone()
    };
    let out_of_scope = RouteScenario {
        queries: vec![(addr("127.0.0.1"), None)],
        ..s.clone()
    };
    let far_port = RouteScenario {
        routes: vec![route(
            "192.0.2.0/24",
            RouteKind::Unicast {
                gateway: None,
                oif: 7,
            },
        )],
        ..s.clone()
    };
    for (bad, what) in [
        (twice, "the scenario holds a route the model refuses"),
        (
            out_of_scope,
            "route get 127.0.0.1 is out of the model's scope",
        ),
        (far_port, "port 7, the DUT has 3"),
    ] {
        let (result, offered) = run_on(&mut ModelDut::router(Fault::None), &bad);
        match result {
            Err(CheckError::Dut { source, .. }) => {
                assert!(source.to_string().contains(what), "{source}")
            }
            other => panic!("{other:?}"),
        }
        assert!(offered.is_none());
    }
}

fn spec_for(scenario: &RouteScenario) -> CheckSpec {
    CheckSpec {
        id: "route.scenario",
        title: "a route scenario",
        clauses: &[],
        needs: scenario.needs(),
        run: |_| Ok(()),
    }
}

/// The engine's shrink deletes routes and lookups while the first disagreeing lookup stays
/// the same: what is left is the one lookup and the one route that decides it.
#[test]
fn the_engines_shrink_leaves_the_failing_lookup_and_its_route() {
    let s = router_scenario();
    let factory = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(ModelDut::router(Fault::DropsProhibit)))
    };
    let (counterexample, run) = shrink(&spec_for(&s), &factory, ProfileName::Linux, &s);
    let Counterexample::Scenario {
        scenario,
        shrunk,
        original_steps,
    } = counterexample
    else {
        panic!("a scenario");
    };
    assert!(shrunk);
    assert_eq!(original_steps, 8);
    let shrunk = scenario
        .as_any()
        .downcast_ref::<RouteScenario>()
        .expect("a route scenario");
    assert_eq!(shrunk.routes, [s.routes[1]]);
    assert_eq!(shrunk.queries, [s.queries[1]]);
    assert_eq!(shrunk.name, "four routes (shrunk to 2 of 8 steps)");
    let run = run.expect("its last failing run");
    assert!(
        run.differences[0].contains("203.0.113.5"),
        "{:?}",
        run.differences
    );
}

/// `certify`'s fixed table on a host that drops prohibit routes fails, and its counterexample
/// is the table as a route scenario, shrunk by the runner.
#[test]
fn the_fixed_table_fails_on_a_host_without_prohibit_routes_with_a_shrunk_table() {
    let spec = super::super::CHECKS[0];
    let factory = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(ModelDut::host(Fault::DropsProhibit)))
    };
    let report = run_one(&spec, &factory, ProfileName::Linux);
    match &report.verdict {
        Verdict::Fail { differences, .. } => assert!(
            differences
                .iter()
                .any(|d| d.contains("expected administratively prohibited")),
            "{differences:?}"
        ),
        other => panic!("{other:?}"),
    }
    let Some(Counterexample::Scenario {
        scenario,
        shrunk,
        original_steps,
    }) = &report.counterexample
    else {
        panic!("{:?}", report.counterexample);
    };
    assert!(*shrunk);
    assert!(scenario.len() < *original_steps);
    let table = scenario
        .as_any()
        .downcast_ref::<RouteScenario>()
        .expect("a route scenario");
    assert_eq!(table.dut, RouteDut::Host);
    assert_eq!(table.profile, Some(ProfileName::Linux));
    assert!(
        table
            .name
            .starts_with("route.lookup.fixed-table (shrunk to")
    );

    let passes = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(ModelDut::host(Fault::None)))
    };
    assert_eq!(
        run_one(&spec, &passes, ProfileName::Linux).verdict,
        Verdict::Pass
    );
}
