//! The switch: the model against the Linux bridge in a namespace (every port, the
//! forwarding database over netlink), the checks `certify` runs, the seed snapshot, generated
//! scenarios, and the runner against in-process switches that misbehave on purpose.
//!
//! Namespace tests start with `require_netns!()` (SKIPPED, or fatal with
//! NETCONFORM_REQUIRE_NETNS=1); the in-process tests need no privilege.

#[macro_use]
mod common;
use common::{assert_pass, cases, failure, regressions, spec};
use netconform::dut::Tables;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use proptest::prelude::*;
use proptest::test_runner::Config;

use netconform::dut::bridge::{LinuxBridge, bridge_config_for};
use netconform::dut::linux::LinuxHost;
use netconform::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, FdbEntry, FdbState, SocketCall, StateAnswer,
    StateQuery,
};
use netconform::engine::runner::run_one;
use netconform::engine::{CheckReport, CheckSpec, Session, Verdict};
use netconform::models::switch::{FrameHeader, Presence, Switch, SwitchProfile};
use netconform::sandbox::{BridgeConfig, BridgeLab, LabConfig, MacAddr};
use netconform::suites::switch::{
    self, AGEING_TOLERANCE, Destination, Source, Station, SwitchEvent, SwitchScenario,
    run_switch_scenario,
};
use netconform::suites::tcp::scenario::ProfileName;
use netconform::time::{Duration, Instant};

/// Runs check `id` on a Linux bridge built as the check needs, with `ageing_cs` instead of
/// the check's ageing time when given.
fn run_on_bridge(id: &str, ageing_cs: Option<u32>, profile: ProfileName) -> CheckReport {
    let spec = spec(id);
    let mut config = bridge_config_for(&spec.needs).expect("a switch check");
    if let Some(cs) = ageing_cs {
        config.ageing_centiseconds = cs;
    }
    let factory = move |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LinuxBridge::new(config.clone())?))
    };
    run_one(&spec, &factory, profile)
}

// ---------------------------------------------------------------------------------------
// The sandbox: the bridge lab is built as asked, read back over netlink, and removed.

#[test]
fn bridge_lab_is_built_as_asked_and_removed_on_drop() {
    require_netns!();
    let lab = BridgeLab::build(BridgeConfig {
        ports: 4,
        ageing_centiseconds: 150,
        mtu: 1500,
    })
    .unwrap();
    let s = lab.settings();
    assert!(!s.stp, "STP off");
    assert_eq!(s.ageing_centiseconds, 150);
    assert!(!s.multicast_snooping);
    assert_eq!(s.group_forward_mask, 0);
    assert_eq!(lab.ports().len(), 4);
    for p in lab.ports() {
        for l in [&p.harness_link, &p.switch_link] {
            assert!(
                l.name.starts_with("ncf") && l.name.len() <= 15,
                "{}",
                l.name
            );
            assert!(l.is_up(), "{} is up", l.name);
        }
        assert!(!p.harness_offloads.tso && !p.switch_offloads.gro);
    }
    let paths: Vec<_> = [lab.harness(), lab.switch()]
        .iter()
        .filter_map(|ns| ns.path().map(|p| p.to_path_buf()))
        .collect();
    for p in &paths {
        assert!(p.exists());
    }
    assert!(
        common::host_ncf_links().is_empty(),
        "the host namespace never holds our interfaces"
    );
    drop(lab);
    for p in &paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn bridge_lab_is_removed_after_a_panic() {
    require_netns!();
    let seen = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let lab = BridgeLab::build(BridgeConfig::default()).unwrap();
        for ns in [lab.harness(), lab.switch()] {
            if let Some(p) = ns.path() {
                seen.lock().unwrap().push(p.to_path_buf());
            }
        }
        panic!("deliberate panic with a live bridge lab");
    });
    assert!(r.is_err());
    for p in seen.lock().unwrap().iter() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

/// The forwarding database read over netlink is what iproute2's `bridge fdb show` reads,
/// entry for entry; flush empties it; the ageing time changes and reads back.
#[test]
fn fdb_over_netlink_agrees_with_iproute2() {
    require_netns!();
    let mut bridge = LinuxBridge::new(BridgeConfig::default()).unwrap();
    assert_eq!(bridge.link().expect("a link").ports(), 3);
    let a = MacAddr([2, 0x6e, 0x63, 0x42, 0, 1]);
    let b = MacAddr([2, 0x6e, 0x63, 0x42, 0, 2]);
    let frame = |src: MacAddr, dst: MacAddr| {
        let mut f = dst.0.to_vec();
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&[0x88, 0xb5]);
        f.resize(60, 0);
        f
    };
    bridge
        .link()
        .expect("a link")
        .send_frame_on(0, &frame(a, b))
        .unwrap();
    bridge
        .link()
        .expect("a link")
        .send_frame_on(2, &frame(b, a))
        .unwrap();
    // b's frame goes to a's port only.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut out = Vec::new();
    while let Some((port, f)) = bridge
        .link()
        .expect("a link")
        .recv_frame_any(deadline)
        .unwrap()
    {
        out.push((port, f[6..12] == b.0));
    }
    out.sort();
    assert_eq!(
        out,
        vec![(0, true), (1, false), (2, false)],
        "a→b flooded to p1 p2, b→a to p0 only"
    );

    let StateAnswer::Fdb(entries) = bridge.query(&StateQuery::Fdb).unwrap() else {
        panic!("not an fdb answer");
    };
    let ours: Vec<FdbEntry> = entries
        .iter()
        .copied()
        .filter(|e| e.mac == a || e.mac == b)
        .collect();
    assert_eq!(
        ours,
        vec![
            FdbEntry {
                mac: a,
                port: 0,
                state: FdbState::Fresh
            },
            FdbEntry {
                mac: b,
                port: 2,
                state: FdbState::Fresh
            },
        ]
    );
    // iproute2 sees the same learned entries (mac, port device).
    let lab = bridge.lab();
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.switch().name(),
            "bridge",
            "-j",
            "fdb",
            "show",
            "br",
        ])
        .arg(&lab.bridge().name)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bridge -j output");
    let mut theirs: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["state"].as_str() != Some("permanent")
                && e["flags"]
                    .as_array()
                    .is_none_or(|f| !f.iter().any(|x| x == "self"))
        })
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_string(),
                e["ifname"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    theirs.sort();
    let mut mine: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.mac.to_string(),
                lab.ports()[e.port].switch_link.name.clone(),
            )
        })
        .collect();
    mine.sort();
    assert_eq!(mine, theirs);

    bridge.control(&Control::FlushFdb).unwrap();
    let StateAnswer::Fdb(entries) = bridge.query(&StateQuery::Fdb).unwrap() else {
        panic!("not an fdb answer");
    };
    assert!(entries.is_empty(), "flushed: {entries:?}");
    bridge
        .control(&Control::SetAgeing(Duration::from_millis(2500)))
        .unwrap();
    assert_eq!(bridge.lab().settings().ageing_centiseconds, 250);
    // A host query is not something a bridge answers.
    assert!(matches!(
        bridge.query(&StateQuery::Neighbours),
        Err(DutError::NotSupported { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// The checks certify runs, on the Linux bridge.

/// The seed scenario passes and its normalised trace is locked.
#[test]
fn a_switch_learns_both_hosts_and_stops_flooding() {
    require_netns!();
    let report = run_on_bridge("switch.learning.known-unicast", None, ProfileName::Linux);
    assert_pass(&report);
    assert_trace_snapshot!("learns_both_hosts_and_stops_flooding", report.trace_text());
}

/// Every switch check of the catalogue passes on the Linux bridge with the Linux profile.
#[test]
fn every_switch_check_passes_on_the_linux_bridge() {
    require_netns!();
    let started = std::time::Instant::now();
    let ids: Vec<&str> = switch::CHECKS.iter().map(|c| c.id).collect();
    assert!(ids.len() >= 6);
    for id in ids {
        let report = run_on_bridge(id, None, ProfileName::Linux);
        assert_pass(&report);
        assert!(
            report
                .environment
                .iter()
                .any(|l| l.starts_with("bridge ageing_time")),
            "{id}: the environment names the ageing time"
        );
    }
    eprintln!(
        "FIGURE {} switch checks in {:?}",
        switch::CHECKS.len(),
        started.elapsed()
    );
}

/// The comparison bites: with `ageing_time 0` the bridge learns nothing and floods every
/// unicast (a hub), and the learning check fails, naming the port the copy should not have
/// reached and the database entries that are missing.
#[test]
fn a_hub_fails_the_learning_check() {
    require_netns!();
    let report = run_on_bridge("switch.learning.known-unicast", Some(0), ProfileName::Linux);
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!(
            "expected a failure, got {:?}\n{}",
            report.verdict,
            report.trace_text()
        );
    };
    // Step 1 (A > B, B unknown) floods either way; its database read finds no A.
    assert!(
        step.contains("step 1") && step.contains("filtering database"),
        "{step}"
    );
    assert!(
        differences
            .iter()
            .any(|d| d.contains("fdb A: expected on p0") && d.contains("not in the database")),
        "{differences:?}"
    );
}

/// Under the standard's profile the Linux bridge fails exactly where Linux deviates: it
/// drops a frame with a group source (802.1D relays it) and floods the Bridge Group Address.
#[test]
fn the_standard_profile_sees_the_linux_deviations() {
    require_netns!();
    let report = run_on_bridge("switch.learning.group-source", None, ProfileName::Rfc);
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!(
            "expected a failure: {:?}\n{}",
            report.verdict,
            report.trace_text()
        );
    };
    assert!(step.contains("step 1"), "{step}");
    assert!(
        differences
            .iter()
            .any(|d| d.contains("p1: expected a copy, none came out")),
        "{differences:?}"
    );
    let report = run_on_bridge("switch.reserved-addresses", None, ProfileName::Rfc);
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!(
            "expected a failure: {:?}\n{}",
            report.verdict,
            report.trace_text()
        );
    };
    assert!(
        step.contains("step 1") && step.contains("reserved-00"),
        "{step}"
    );
    assert!(
        differences
            .iter()
            .any(|d| d.contains("p1: a copy came out, none expected")),
        "{differences:?}"
    );
}

/// A host stack is not a switch: the check is unsupported, not failed.
#[test]
fn a_host_target_is_unsupported_for_switch_checks() {
    require_netns!();
    let spec = spec("switch.learning.known-unicast");
    let factory = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LinuxHost::new(LabConfig {
            ipv6: None,
            ..LabConfig::default()
        })?))
    };
    let report = run_one(&spec, &factory, ProfileName::Linux);
    let Verdict::Unsupported { reason } = &report.verdict else {
        panic!("expected unsupported, got {:?}", report.verdict);
    };
    assert!(reason.contains("a switch with 3 ports"), "{reason}");
}

// ---------------------------------------------------------------------------------------
// Generated scenarios against the bridge.

const GENERATED_PORTS: usize = 4;
/// Short, so that pauses of under a second see entries age out.
const GENERATED_AGEING_MS: u32 = 600;

fn station() -> impl Strategy<Value = Station> {
    (0u8..4).prop_map(Station)
}

fn event() -> impl Strategy<Value = SwitchEvent> {
    let src = prop_oneof![
        12 => station().prop_map(Source::Station),
        1 => Just(Source::Group),
        1 => Just(Source::Zero),
    ];
    let dst = prop_oneof![
        10 => station().prop_map(Destination::Station),
        2 => Just(Destination::Broadcast),
        1 => Just(Destination::Group),
        1 => proptest::sample::select(vec![0x00u8, 0x01, 0x02, 0x0e]).prop_map(Destination::Reserved),
    ];
    prop_oneof![
        10 => (0..GENERATED_PORTS, src, dst).prop_map(|(port, src, dst)| SwitchEvent::Frame { port, src, dst }),
        1 => prop_oneof![(20u32..300), (450u32..900)].prop_map(|ms| SwitchEvent::Wait { ms }),
    ]
}

fn scenario() -> impl Strategy<Value = SwitchScenario> {
    proptest::collection::vec(event(), 1..14).prop_map(|events| SwitchScenario {
        name: "generated".into(),
        ports: GENERATED_PORTS,
        ageing_ms: GENERATED_AGEING_MS,
        events,
    })
}

/// Random frames between four stations on four ports (moves, broadcast, groups, group and
/// zero sources, reserved addresses, pauses that age entries out), compared step by step with
/// the model on every port and in the database. A failure shrinks to a minimal scenario,
/// saved under `fixtures/switch-regressions/` when it fails again on fresh bridges
/// (`common::regressions`).
#[test]
fn generated_scenarios_agree_with_the_bridge() {
    require_netns!();
    let started = std::time::Instant::now();
    let bridge = RefCell::new(
        LinuxBridge::new(BridgeConfig {
            ports: GENERATED_PORTS,
            ageing_centiseconds: GENERATED_AGEING_MS / 10,
            mtu: 1500,
        })
        .expect("bridge lab"),
    );
    let nonce = Cell::new(0u8);
    let totals = RefCell::new(switch::ScenarioStats::default());
    let config = Config {
        cases: cases(24),
        max_shrink_iters: 200,
        ..Config::default()
    };
    let result = regressions::generate(config, 0x6e63_7377_6974, &scenario(), |s| {
        // Fresh addresses per case, and an empty database: cases never meet.
        nonce.set(if nonce.get() >= 0xfe {
            1
        } else {
            nonce.get() + 1
        });
        let mut bridge = bridge.borrow_mut();
        let mut session = Session::new(&mut *bridge);
        session
            .control("flush", &Control::FlushFdb)
            .map_err(|e| e.to_string())?;
        let stats = run_switch_scenario(&mut session, &s, nonce.get()).map_err(|e| {
            format!(
                "{e}\ntrace:\n{}",
                session.trace().render(session.host_names())
            )
        })?;
        let mut t = totals.borrow_mut();
        t.frames += stats.frames;
        t.copies += stats.copies;
        t.fdb_reads += stats.fdb_reads;
        t.uncertain += stats.uncertain;
        Ok(())
    });
    if let Err(found) = result {
        let run = switch::SwitchScenarioRun {
            scenario: found.minimal,
            nonce: 1,
        };
        regressions::save_shrunk_scenario(&regressions::SWITCH, Box::new(run), &found.reason);
    }
    let t = *totals.borrow();
    eprintln!(
        "FIGURE generated switch scenarios: {} cases, {} frames, {} copies, {} fdb reads, {} uncertain (within {AGEING_TOLERANCE}), {:?}",
        cases(24),
        t.frames,
        t.copies,
        t.fdb_reads,
        t.uncertain,
        started.elapsed()
    );
    assert!(
        t.frames > 100 && t.copies > 100,
        "the scenarios did something"
    );
}

// ---------------------------------------------------------------------------------------
// The runner against in-process switches (no namespace, no privilege).

/// A switch made of the model itself, on the wall clock, with faults on request.
struct ModelSwitch {
    ports: usize,
    /// Frames handed out before anything the model sends (garbage on purpose).
    inject: VecDeque<(usize, Vec<u8>)>,
    model: Switch,
    start: std::time::Instant,
    out: VecDeque<(usize, Vec<u8>)>,
    endpoints: Endpoints,
    fault: Fault,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Every copy cut to 10 bytes.
    Truncate,
    /// Every copy cut just after the ether type.
    CutTag,
    /// Flood every frame (and still report what it learned).
    Hub,
    /// Also send every frame back out of its ingress port.
    Echo,
    /// Answer the database query with something else.
    WrongAnswer,
}

impl ModelSwitch {
    fn new(fault: Fault) -> Self {
        Self::with_ports(3, fault)
    }

    fn with_ports(ports: usize, fault: Fault) -> Self {
        ModelSwitch {
            ports,
            inject: VecDeque::new(),
            model: Switch::new(ports, Duration::from_millis(300_000))
                .with_profile(SwitchProfile::linux()),
            start: std::time::Instant::now(),
            out: VecDeque::new(),
            endpoints: Endpoints {
                harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                stack_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                stack_ipv4: None,
                peer_ipv4: None,
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
            fault,
        }
    }

    fn now(&self) -> Instant {
        Instant::ZERO + Duration::from(self.start.elapsed())
    }
}

impl Dut for ModelSwitch {
    fn name(&self) -> &str {
        "model-switch"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
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

impl netconform::dut::Link for ModelSwitch {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.send_frame_on(0, frame)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.recv_frame_any(deadline)?.map(|(_, f)| f))
    }

    fn ports(&self) -> usize {
        self.ports
    }

    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        let mac = |o: usize| MacAddr(frame[o..o + 6].try_into().unwrap());
        let header = FrameHeader {
            dst: mac(0),
            src: mac(6),
        };
        let now = self.now();
        let mut egress = self
            .model
            .receive(now, port, &header)
            .map_err(|e| DutError::Malformed {
                detail: e.to_string(),
            })?
            .egress;
        if self.fault == Fault::Hub {
            egress = (0..self.ports).filter(|p| *p != port).collect();
        }
        if self.fault == Fault::Echo {
            egress.insert(port);
        }
        for p in egress {
            let copy = match self.fault {
                Fault::Truncate => frame[..10].to_vec(),
                Fault::CutTag => frame[..16].to_vec(),
                _ => frame.to_vec(),
            };
            self.out.push_back((p, copy));
        }
        Ok(())
    }

    fn recv_frame_any(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        if let Some(f) = self.inject.pop_front().or_else(|| self.out.pop_front()) {
            return Ok(Some(f));
        }
        std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
        Ok(None)
    }
}

impl netconform::dut::Sockets for ModelSwitch {
    fn call(&mut self, _: &SocketCall) -> Result<CallOutcome, DutError> {
        Err(DutError::NotSupported {
            what: "calls".into(),
        })
    }
}

impl netconform::dut::Tables for ModelSwitch {
    fn query(&mut self, _: &StateQuery) -> Result<StateAnswer, DutError> {
        if self.fault == Fault::WrongAnswer {
            return Ok(StateAnswer::TcpSockets(Vec::new()));
        }
        let now = self.now();
        let mut v: Vec<FdbEntry> = self
            .model
            .fdb(now)
            .into_iter()
            .filter(|e| e.presence == Presence::Present)
            .map(|e| FdbEntry {
                mac: e.mac,
                port: e.port,
                state: FdbState::Fresh,
            })
            .collect();
        v.sort();
        Ok(StateAnswer::Fdb(v))
    }

    fn control(&mut self, _: &Control) -> Result<(), DutError> {
        Ok(())
    }
}

fn run_on_model(id: &str, fault: Fault) -> CheckReport {
    let factory = move |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(ModelSwitch::new(fault)))
    };
    run_one(&spec(id), &factory, ProfileName::Linux)
}

#[test]
fn the_runner_passes_a_switch_that_behaves_like_the_model() {
    for id in [
        "switch.learning.known-unicast",
        "switch.flooding.unknown-and-broadcast",
        "switch.learning.station-move",
        "switch.filtering.not-back-out",
        "switch.learning.group-source",
        "switch.reserved-addresses",
    ] {
        assert_pass(&run_on_model(id, Fault::None));
    }
}

/// A switch with more ports than a scenario names floods to all of them, and passes.
#[test]
fn a_scenario_runs_on_a_switch_with_more_ports() {
    let mut sw = ModelSwitch::with_ports(5, Fault::None);
    let mut session = Session::new(&mut sw);
    let stats = run_switch_scenario(&mut session, &switch::flooding_scenario(), 1)
        .unwrap_or_else(|e| panic!("{e}\n{}", session.trace().render(session.host_names())));
    // Seven frames, each flooded to the four other ports.
    assert_eq!((stats.frames, stats.copies), (7, 28));
    let text = session.trace().render(session.host_names());
    assert!(text.contains("< p4 A > D"), "{text}");
}

#[test]
fn malformed_frames_from_a_switch_are_a_failure_that_says_so() {
    let (_, d) = failure(&run_on_model(
        "switch.learning.known-unicast",
        Fault::Truncate,
    ));
    assert!(
        d.iter().any(|d| d.contains("malformed frame (10 bytes)")),
        "{d:?}"
    );
    let (_, d) = failure(&run_on_model(
        "switch.learning.known-unicast",
        Fault::CutTag,
    ));
    assert!(
        d.iter()
            .any(|d| d.contains("malformed harness frame (16 bytes)")),
        "{d:?}"
    );
}

#[test]
fn a_hub_and_an_echoing_switch_fail() {
    let (step, d) = failure(&run_on_model("switch.learning.known-unicast", Fault::Hub));
    assert!(step.contains("step 2"), "{step}");
    assert!(
        d.iter().any(|d| d == "p2: a copy came out, none expected"),
        "{d:?}"
    );
    let (_, d) = failure(&run_on_model(
        "switch.flooding.unknown-and-broadcast",
        Fault::Echo,
    ));
    assert!(
        d.iter().any(|d| d.contains("back out of its ingress port")),
        "{d:?}"
    );
}

#[test]
fn a_wrong_answer_to_the_database_query_is_named() {
    let report = run_on_model("switch.learning.known-unicast", Fault::WrongAnswer);
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!("{:?}", report.verdict);
    };
    assert!(step.contains("filtering database"), "{step}");
    assert!(
        differences[0].contains("expected the filtering database"),
        "{differences:?}"
    );
}

/// What a switch may send back: arbitrary bytes, or a harness frame (scenario frame or
/// probe, any number) cut or corrupted anywhere.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let tagged = (
        any::<bool>(),
        any::<u32>(),
        0usize..70,
        proptest::option::of((0usize..60, any::<u8>())),
    )
        .prop_map(|(probe, n, len, flip)| {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[2, 0x6e, 0x63, 1, 0, 1, 0x88, 0xb5]);
            f.extend_from_slice(if probe { b"ncpb" } else { b"ncsw" });
            f.extend_from_slice(&n.to_be_bytes());
            f.resize(60, 0);
            if let Some((i, b)) = flip {
                f[i] = b;
            }
            f.truncate(len);
            f
        });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..80), tagged]
}

proptest! {
    #![proptest_config(Config { cases: 64, failure_persistence: None, ..Config::default() })]
    /// Whatever a switch sends back, on whatever port, the check ends in a verdict that
    /// names it: pass (stray frames are ignored) or fail, never an error or a panic.
    #[test]
    fn arbitrary_answers_from_a_switch_end_in_a_verdict(
        injected in proptest::collection::vec((0usize..5, garbage()), 1..6)
    ) {
        let factory = move |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
            let mut sw = ModelSwitch::new(Fault::None);
            sw.inject = injected.iter().cloned().collect();
            Ok(Box::new(sw))
        };
        let report = run_one(&spec("switch.learning.known-unicast"), &factory, ProfileName::Linux);
        prop_assert!(
            matches!(report.verdict, Verdict::Pass | Verdict::Fail { .. }),
            "{:?}\n{}", report.verdict, report.trace_text()
        );
    }
}

/// A scenario naming a port the switch does not have is refused before anything is sent.
#[test]
fn a_scenario_with_a_port_out_of_range_is_refused() {
    let mut sw = ModelSwitch::new(Fault::None);
    let mut session = Session::new(&mut sw);
    let s = SwitchScenario {
        name: "bad".into(),
        ports: 3,
        ageing_ms: 1000,
        events: vec![SwitchEvent::Frame {
            port: 5,
            src: Source::Station(Station(0)),
            dst: Destination::Broadcast,
        }],
    };
    let e = run_switch_scenario(&mut session, &s, 1).unwrap_err();
    assert!(e.to_string().contains("sends into p5"), "{e}");
    assert!(session.trace().frames().next().is_none());
}

// ---------------------------------------------------------------------------------------
// Clean-up of a killed run.

fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("ncf-{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A certify run of the switch checks killed with SIGKILL leaves its bridge lab behind;
/// `netconform clean` removes it (the bridge and the veth pairs go with the namespaces).
#[test]
fn clean_removes_the_bridge_lab_of_a_killed_run() {
    require_netns!();
    let dir = std::env::temp_dir().join(format!("netconform-switch-{}", std::process::id()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_netconform"))
        .args(["certify", "-j", "1", "--only", "switch.ageing", "--out"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn certify");
    let pid = child.id();
    let started = std::time::Instant::now();
    // The switch namespace exists once the bridge lab is being built.
    while !namespaces_of(pid).iter().any(|n| n.ends_with("-sw"))
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Child::kill sends SIGKILL to the child this test started.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let left = namespaces_of(pid);
    assert!(
        left.iter().any(|n| n.ends_with("-sw")),
        "the run was not caught with its bridge lab: {left:?}"
    );
    // This run's leftovers only: a general clean would race the other clean tests.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netconform"))
        .args(["clean", "--pid", &pid.to_string()])
        .output()
        .expect("run clean");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in &left {
        assert!(
            text.contains(name.as_str()),
            "clean did not report {name}:\n{text}"
        );
    }
    assert!(
        namespaces_of(pid).is_empty(),
        "left: {:?}",
        namespaces_of(pid)
    );
    assert!(common::host_ncf_links().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
