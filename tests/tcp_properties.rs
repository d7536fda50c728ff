//! Generated TCP scenarios (proptest) against the model and the Linux kernel, and the
//! replay of every saved regression.
//!
//! A failing scenario is shrunk by proptest to a minimal event sequence, then step by step
//! on fresh namespaces (the engine's shrink), saved under `fixtures/tcp-regressions/` when
//! it fails again on each of three replays (replay it with `netconform replay FILE`), and
//! reported with the exchange that shows it. Every saved regression runs again here, so a
//! behaviour once seen wrong stays checked (`common::regressions` does all of this).

#[macro_use]
mod common;
use common::{cases, regressions};

use proptest::prelude::*;
use proptest::test_runner::Config;

use netconform::dut::linux::LinuxHost;
use netconform::engine::{Scenario, Session};
use netconform::sandbox::LabConfig;
use netconform::suites::tcp::matrix::{STATES, path_to};
use netconform::suites::tcp::scenario::{
    AckAt, PeerSegment, ProfileName, REPLAY_PEER_PORT, SegmentKind, SeqAt, TcpEvent, TcpScenario,
    TcpScenarioRun, run_scenario,
};

fn lab(ipv6: bool) -> LabConfig {
    netconform::dut::linux::lab_config_for(&netconform::engine::Needs::scenario(ipv6))
}

fn peer_segment() -> impl Strategy<Value = PeerSegment> {
    (
        proptest::sample::select(SegmentKind::ALL.to_vec()),
        proptest::sample::select(vec![
            SeqAt::RcvNxt,
            SeqAt::RcvNxtMinus1,
            SeqAt::WindowEndMinus1,
            SeqAt::WindowEnd,
            SeqAt::Isn,
        ]),
        proptest::sample::select(vec![
            AckAt::Nxt,
            AckAt::Una,
            AckAt::BelowUna,
            AckAt::BeyondNxt,
        ]),
        prop_oneof![3 => Just(0u16), 1 => 1u16..1500],
    )
        .prop_map(|(kind, seq, ack, len)| {
            let len = match kind {
                SegmentKind::Data => len.max(1),
                SegmentKind::FinAck => len,
                _ => 0,
            };
            PeerSegment {
                kind,
                seq,
                ack,
                len,
            }
        })
}

fn event() -> impl Strategy<Value = TcpEvent> {
    prop_oneof![
        6 => peer_segment().prop_map(TcpEvent::Peer),
        1 => (1u16..4000).prop_map(TcpEvent::Send),
        1 => (1u16..2000).prop_map(TcpEvent::Receive),
        1 => Just(TcpEvent::Close),
        1 => Just(TcpEvent::ShutdownWrite),
        1 => Just(TcpEvent::Abort),
    ]
}

/// A scenario: the path to a random state, then a few random events.
fn scenario(ipv6: bool) -> impl Strategy<Value = TcpScenario> {
    (
        proptest::sample::select(STATES.to_vec()),
        proptest::collection::vec(event(), 1..5),
    )
        .prop_map(move |(state, tail)| {
            let mut events = path_to(state);
            events.extend(tail);
            TcpScenario {
                name: format!("generated from {state}"),
                profile: ProfileName::Linux,
                ipv6,
                peer_mss: Some(1460),
                events,
            }
        })
}

/// Runs `cases` generated scenarios; a failure is shrunk, saved and reported.
fn generated(ipv6: bool, cases: u32) {
    let target = std::cell::RefCell::new(LinuxHost::new(lab(ipv6)).expect("lab"));
    let port = std::cell::Cell::new(30_000u16);
    let config = Config {
        cases,
        max_shrink_iters: 400,
        ..Config::default()
    };
    let result = regressions::generate(config, 0x6e63_7463_7030, &scenario(ipv6), |s| {
        // A fresh port pair per case: cases never meet each other's connections.
        port.set(if port.get() >= 60_000 {
            30_000
        } else {
            port.get() + 1
        });
        let mut target = target.borrow_mut();
        let mut session = Session::new(&mut *target);
        run_scenario(&mut session, &s, port.get()).map_err(|e| e.to_string())
    });
    if let Err(found) = result {
        let run = TcpScenarioRun {
            scenario: found.minimal,
            peer_port: REPLAY_PEER_PORT,
        };
        regressions::save_shrunk_scenario(&regressions::TCP, Box::new(run), &found.reason);
    }
}

#[test]
fn generated_scenarios_ipv4() {
    require_netns!();
    generated(false, cases(96));
}

#[test]
fn generated_scenarios_ipv6() {
    require_netns!();
    generated(true, cases(48));
}

/// Every saved regression replays and now agrees.
#[test]
fn saved_regressions_replay() {
    // The files are there, exactly as many as were saved, with or without namespaces.
    regressions::TCP.files();
    require_netns!();
    assert_eq!(
        regressions::replay_saved::<Box<dyn Scenario>>(&regressions::TCP),
        regressions::TCP.saved
    );
}

/// The kit end to end on the kernel: a scenario the kernel fails for real (SYN+FIN to
/// LISTEN under the RFC profile: Linux drops it, a documented deviation), with events after
/// the failure that do not matter, is shrunk on fresh namespaces, fails each of its replays,
/// and is saved with its kind; the file loads back as the shrunk scenario.
#[test]
fn a_failure_that_reproduces_is_shrunk_and_saved() {
    use netconform::models::tcp::State;
    require_netns!();
    let mut scenario = netconform::suites::tcp::matrix::cell(
        ProfileName::Rfc,
        false,
        State::Listen,
        PeerSegment::next(SegmentKind::SynFin),
    );
    scenario
        .events
        .extend([TcpEvent::Send(10), TcpEvent::Close]);
    let dir = std::env::temp_dir().join(format!("ncf-kit-tcp-{}", std::process::id()));
    let fixtures = regressions::Fixtures {
        dir: Box::leak(dir.to_string_lossy().into_owned().into_boxed_str()),
        ..regressions::TCP
    };
    let run = TcpScenarioRun {
        scenario,
        peer_port: REPLAY_PEER_PORT,
    };
    let panic = std::panic::catch_unwind(|| {
        regressions::save_shrunk_scenario(&fixtures, Box::new(run), "SYN+FIN to LISTEN")
    })
    .expect_err("it panics");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("saved as"), "{text}");
    assert!(
        text.contains("4 steps as proptest shrank it, 2 after"),
        "{text}"
    );
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("saved")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let saved = netconform::suites::load_scenario(&std::fs::read_to_string(&files[0]).unwrap())
        .expect("the saved file loads");
    assert_eq!(saved.kind(), regressions::TCP.kind);
    let saved = saved
        .as_any()
        .downcast_ref::<TcpScenarioRun>()
        .expect("a TCP scenario");
    assert_eq!(saved.scenario.profile, ProfileName::Rfc);
    assert_eq!(
        saved.scenario.events,
        vec![
            TcpEvent::Listen,
            TcpEvent::Peer(PeerSegment::next(SegmentKind::SynFin))
        ]
    );
    assert_eq!(
        files[0].file_stem().unwrap().to_string_lossy(),
        saved.scenario.name
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
