//! The suites' registry: scenario files of every suite read back by their kind, old
//! kindless files, refusals, and the catalogue's ids.

use super::*;
use crate::engine::scenario::{Counterexample, Scenario};
use crate::engine::tests::FakeScenario;

/// The replay file of a real suite's counterexample is what `netconform replay` reads back:
/// the same scenario, with its kind and its peer port.
#[test]
fn a_tcp_counterexample_replay_file_loads_back_as_the_same_scenario() {
    use crate::suites::tcp::matrix::cell;
    use crate::suites::tcp::scenario::{PeerSegment, SegmentKind, TcpScenarioRun};
    let run = TcpScenarioRun {
        scenario: cell(
            crate::models::profile::ProfileName::Rfc,
            true,
            crate::models::tcp::State::Established,
            PeerSegment::next(SegmentKind::Rst),
        ),
        peer_port: 4321,
    };
    let c = Counterexample::scenario(Box::new(run.clone()));
    let text = c.replay_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["kind"], "tcp-scenario");
    assert_eq!(value["peer_port"], 4321);
    let loaded = load_scenario(&text).expect("the replay file loads");
    assert!(*loaded == *c.as_scenario().unwrap());
    assert_eq!(
        loaded.as_any().downcast_ref::<TcpScenarioRun>(),
        Some(&run),
        "{text}"
    );
}

#[test]
fn scenarios_are_equal_by_kind_and_content() {
    let a: Box<dyn Scenario> = Box::new(FakeScenario::new(&[1, 2]));
    assert!(*a == *a.clone());
    assert!(*a != *FakeScenario::new(&[1, 3]).clone_box());
    let switch: Box<dyn Scenario> = Box::new(crate::suites::switch::SwitchScenarioRun {
        scenario: crate::suites::switch::flooding_scenario(),
        nonce: 1,
    });
    assert!(*a != *switch);
}

// ---------------------------------------------------------------------------------------
// Scenario files of every suite.

fn fixture(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn first_file(dir: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    std::fs::read_to_string(files.first().expect("a saved regression")).unwrap()
}

/// Every suite with scenarios reads back what it writes: the file names the kind, and the
/// scenario comes back equal.
#[test]
fn load_scenario_reads_every_kind_back() {
    use crate::suites::arp::scenario::ArpScenario;
    use crate::suites::route::scenario::RouteScenario;
    use crate::suites::switch::SwitchScenarioRun;
    use crate::suites::tcp::scenario::{TcpScenario, TcpScenarioRun};
    let arp: ArpScenario = serde_json::from_str(&first_file("fixtures/arp-regressions")).unwrap();
    let tcp: TcpScenario = serde_json::from_str(&first_file("fixtures/tcp-regressions")).unwrap();
    let route: RouteScenario =
        serde_json::from_str(&first_file("fixtures/route-regressions")).unwrap();
    let fixed = route::fixed_scenario(&crate::dut::Endpoints {
        harness_mac: crate::wire::MacAddr([2, 0, 0, 0, 0, 2]),
        stack_mac: crate::wire::MacAddr([2, 0, 0, 0, 0, 1]),
        stack_ipv4: Some(("10.77.0.1".parse().unwrap(), 24)),
        peer_ipv4: Some("10.77.0.2".parse().unwrap()),
        stack_ipv6: Some(("fd00:77::1".parse().unwrap(), 64)),
        peer_ipv6: Some("fd00:77::2".parse().unwrap()),
        mtu: 1500,
    })
    .unwrap();
    let scenarios: Vec<Box<dyn Scenario>> = vec![
        Box::new(arp),
        Box::new(TcpScenarioRun {
            scenario: tcp,
            peer_port: 20_001,
        }),
        Box::new(SwitchScenarioRun {
            scenario: crate::suites::switch::station_move_scenario(),
            nonce: 3,
        }),
        Box::new(route),
        Box::new(fixed),
    ];
    let mut kinds = Vec::new();
    for s in &scenarios {
        let text = serde_json::to_string(&s.to_json()).unwrap();
        assert_eq!(s.to_json()["kind"], s.kind(), "{text}");
        let loaded = load_scenario(&text).unwrap_or_else(|e| panic!("{}: {e}", s.kind()));
        assert_eq!(loaded.kind(), s.kind());
        assert!(**s == *loaded, "{text}");
        assert_eq!(loaded.len(), s.len());
        kinds.push(loaded.kind());
    }
    assert_eq!(
        kinds,
        [
            "arp-scenario",
            "tcp-scenario",
            "switch-scenario",
            "route-scenario",
            "route-scenario"
        ]
    );
}

/// Regression files written before kinds existed name no kind and still load, each as its
/// own suite's scenario (the TCP ones with the replay port).
#[test]
fn a_kindless_old_file_loads_as_the_suite_it_fits() {
    use crate::suites::switch::SwitchScenarioRun;
    use crate::suites::tcp::scenario::{REPLAY_PEER_PORT, TcpScenarioRun};
    let tcp = load_scenario(&first_file("fixtures/tcp-regressions")).expect("an old TCP file");
    assert_eq!(tcp.kind(), "tcp-scenario");
    let tcp = tcp.as_any().downcast_ref::<TcpScenarioRun>().unwrap();
    assert_eq!(tcp.peer_port, REPLAY_PEER_PORT);
    assert!(!tcp.scenario.events.is_empty());

    let arp = load_scenario(&first_file("fixtures/arp-regressions")).expect("an old ARP file");
    assert_eq!(arp.kind(), "arp-scenario");

    let mut switch = SwitchScenarioRun {
        scenario: crate::suites::switch::flooding_scenario(),
        nonce: 1,
    }
    .to_json();
    switch.as_object_mut().unwrap().remove("kind");
    let loaded = load_scenario(&switch.to_string()).expect("a kindless switch file");
    assert_eq!(loaded.kind(), "switch-scenario");
}

#[test]
fn an_unknown_kind_names_the_kinds_the_suites_read() {
    match load_scenario(r#"{"kind": "udp-scenario", "name": "x"}"#) {
        Err(ScenarioFileError::UnknownKind { kind, known }) => {
            assert_eq!(kind, "udp-scenario");
            assert_eq!(
                known,
                "arp-scenario, tcp-scenario, switch-scenario, route-scenario"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_that_does_not_fit_its_kind_says_which_kind() {
    match load_scenario(r#"{"kind": "tcp-scenario", "name": "x"}"#) {
        Err(ScenarioFileError::Invalid { kind, source }) => {
            assert_eq!(kind, "tcp-scenario");
            assert!(source.to_string().contains("missing field"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_refused_with_what_was_tried() {
    assert!(matches!(
        load_scenario("not json {"),
        Err(ScenarioFileError::NotJson(_))
    ));
    assert!(matches!(
        load_scenario(""),
        Err(ScenarioFileError::NotJson(_))
    ));
    match load_scenario(r#"{"name": "kindless and nothing else"}"#) {
        Err(ScenarioFileError::NoSuiteFits { tried }) => {
            for kind in [
                "arp-scenario: ",
                "tcp-scenario: ",
                "switch-scenario: ",
                "route-scenario: ",
            ] {
                assert!(tried.contains(kind), "{tried}");
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load_scenario("[1, 2, 3]"),
        Err(ScenarioFileError::NoSuiteFits { .. })
    ));
}

/// A route regression saved before route tables were scenarios (no kind, no DUT) loads as
/// the route suite's scenario, on a router of three segments, and no other suite claims it.
#[test]
fn a_kindless_route_regression_loads_as_a_route_scenario() {
    use crate::suites::route::scenario::{RouteDut, RouteScenario};
    let text = fixture("fixtures/route-regressions/local-route-in-main-is-a-source.json");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value.get("kind").is_none() && value.get("dut").is_none());
    let loaded = load_scenario(&text).expect("an old route file");
    assert_eq!(loaded.kind(), "route-scenario");
    let route = loaded.as_any().downcast_ref::<RouteScenario>().unwrap();
    assert_eq!(route.name, "local-route-in-main-is-a-source");
    assert_eq!(route.dut, RouteDut::Router { segments: 3 });
    assert_eq!((route.routes.len(), route.queries.len()), (2, 6));
    assert_eq!(
        loaded.needs().router,
        Some(crate::dut::needs::RouterNeeds { segments: 3 })
    );
    for s in SUITES.iter().filter(|s| s.name != "route") {
        if let Some(load) = s.load_scenario {
            assert!(load(&value).is_err(), "{} reads a route file", s.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The catalogue.

/// `Suite::name` says every check id of a suite starts with it: `arp.`, `tcp.`, ...,
/// `forward.` (whose ids were `route.forward.*` until issue 16), with no exception.
#[test]
fn every_check_id_starts_with_its_suites_name() {
    let mut checked = 0;
    for s in SUITES {
        let prefix = format!("{}.", s.name);
        for c in s.checks.iter().flat_map(|c| c.iter()) {
            assert!(
                c.id.starts_with(&prefix) && c.id.len() > prefix.len(),
                "check {} of suite {} does not start with {prefix:?}",
                c.id,
                s.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, catalogue().len());
    assert!(
        forward::CHECKS.iter().all(|c| c.id.starts_with("forward.")),
        "the forward suite's ids"
    );
}

#[test]
fn check_ids_are_unique_and_every_suite_has_checks() {
    use crate::suites::{SUITES, catalogue, suite};
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for s in SUITES {
        assert_eq!(suite(s.name).map(|f| f.name), Some(s.name));
        let checks: Vec<_> = s.checks.iter().flat_map(|c| c.iter()).collect();
        assert!(!checks.is_empty(), "suite {} has no check", s.name);
        for c in checks {
            assert!(seen.insert(c.id), "{} twice", c.id);
            assert!(!c.title.is_empty(), "{} has no title", c.id);
            assert!(!c.clauses.is_empty(), "{} enforces no clause", c.id);
            total += 1;
        }
        assert_eq!(
            s.scenario_kind.is_some(),
            s.load_scenario.is_some(),
            "{}",
            s.name
        );
    }
    assert_eq!(catalogue().len(), total);
    assert_eq!(
        catalogue().iter().map(|c| c.id).collect::<Vec<_>>(),
        SUITES
            .iter()
            .flat_map(|s| s.checks.iter().flat_map(|c| c.iter().map(|c| c.id)))
            .collect::<Vec<_>>()
    );
    let names: std::collections::HashSet<_> = SUITES.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), SUITES.len());
    assert!(suite("udp").is_none());
}

/// Every suite states its deviations: none under the RFC profile, each Linux deviation
/// of the models it uses under Linux, and `certify` lists each model's once.
#[test]
fn every_suite_states_its_deviations_from_the_one_profile_name() {
    for s in SUITES {
        assert!((s.deviations)(ProfileName::Rfc).is_empty(), "{}", s.name);
    }
    let models = |name: &str| {
        let mut m: Vec<&str> = (suite(name).expect("suite").deviations)(ProfileName::Linux)
            .iter()
            .map(|l| l.model)
            .collect();
        m.dedup();
        m
    };
    assert_eq!(models("tcp"), ["tcp", "tcp timers"]);
    assert_eq!(models("arp"), ["arp"]);
    assert_eq!(models("switch"), ["switch"]);
    assert_eq!(models("route"), ["route"]);
    assert_eq!(models("forward"), ["route", "forward"]);
    assert_eq!(models("nat"), ["nat"]);
    assert!(models("tls").is_empty());

    let all = accepted_deviations(&catalogue(), ProfileName::Linux);
    assert_eq!(all.len(), 18 + 6 + 4 + 3 + 3 + 1 + 2, "{all:#?}");
    for (i, line) in all.iter().enumerate() {
        assert!(!all[..i].contains(line), "{line} twice");
        let text = line.to_string();
        assert!(
            text.contains(&format!("{} (RFC ", line.name))
                || text.contains(&format!("{} (IEEE ", line.name)),
            "{text}"
        );
    }
    assert!(accepted_deviations(&catalogue(), ProfileName::Rfc).is_empty());
}

/// Only the suites with a check in the run count.
#[test]
fn certify_lists_the_deviations_of_the_suites_it_runs() {
    let route: Vec<CheckSpec> = route::CHECKS.to_vec();
    let lines = accepted_deviations(&route, ProfileName::Linux);
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.model == "route"));
    let forward: Vec<CheckSpec> = forward::CHECKS.to_vec();
    let lines = accepted_deviations(&forward, ProfileName::Linux);
    assert_eq!(
        lines.iter().map(|l| l.model).collect::<Vec<_>>(),
        ["route", "route", "route", "forward"]
    );
}

/// Every check is born with its spoils: it names the planes it uses, so the mutation
/// analysis has something to spoil in it (a check with none could never be killed), and
/// its suite names its machinery.
#[test]
fn every_check_names_the_planes_it_uses_so_it_can_be_spoiled() {
    for check in catalogue() {
        assert!(!check.needs.uses.is_empty(), "{}: no plane", check.id);
        assert!(
            !crate::engine::mutate::spoils_for(&check.needs).is_empty(),
            "{}: no spoil",
            check.id
        );
        assert!(suite_of(check.id).is_some(), "{}: no suite", check.id);
    }
    // The host barrier's echo reply is machinery of the TCP and ARP suites; a TCP segment
    // is not.
    let reply = crate::wire::Frame::icmpv4(
        crate::wire::MacAddr([2, 0, 0, 0, 0, 2]),
        crate::wire::MacAddr([2, 0, 0, 0, 0, 1]),
        "10.0.0.2".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
        crate::wire::Icmpv4Message::echo_reply(
            crate::engine::barrier::HOST_ECHO_ID,
            1,
            b"barrier".to_vec(),
        ),
    )
    .emit();
    let spec = catalogue()
        .into_iter()
        .find(|c| c.id == "tcp.passive-open.active-close")
        .unwrap();
    assert!(machinery_of(&spec)(&reply));
    let other = crate::wire::Frame::icmpv4(
        crate::wire::MacAddr([2, 0, 0, 0, 0, 2]),
        crate::wire::MacAddr([2, 0, 0, 0, 0, 1]),
        "10.0.0.2".parse().unwrap(),
        "10.0.0.1".parse().unwrap(),
        crate::wire::Icmpv4Message::echo_reply(0x1234, 1, b"x".to_vec()),
    )
    .emit();
    assert!(!machinery_of(&spec)(&other));
}
