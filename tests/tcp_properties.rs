//! Generated TCP scenarios (proptest) against the model and the Linux kernel, and the
//! replay of every saved regression.
//!
//! A failing scenario is shrunk by proptest to a minimal event sequence, saved under
//! `fixtures/tcp-regressions/` (replay it with `netconform replay FILE`), and reported with
//! the expected and observed exchange side by side. Every saved regression runs again here,
//! so a behaviour once seen wrong stays checked.

#[macro_use]
mod common;
use common::cases;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use netconform::dut::linux::LinuxTarget;
use netconform::engine::Session;
use netconform::sandbox::LabConfig;
use netconform::suites::tcp::matrix::{STATES, path_to};
use netconform::suites::tcp::scenario::{
    AckAt, PeerSegment, ProfileName, SegmentKind, SeqAt, TcpEvent, TcpScenario, run_scenario,
};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp-regressions")
}

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
    let target = std::cell::RefCell::new(LinuxTarget::new(lab(ipv6)).expect("lab"));
    let port = std::cell::Cell::new(30_000u16);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 400,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, common::rng(0x6e63_7463_7030));
    let result = runner.run(&scenario(ipv6), |s| {
        // A fresh port pair per case: cases never meet each other's connections.
        port.set(if port.get() >= 60_000 {
            30_000
        } else {
            port.get() + 1
        });
        let mut target = target.borrow_mut();
        let mut session = Session::new(&mut *target);
        run_scenario(&mut session, &s, port.get()).map_err(|e| TestCaseError::fail(e.to_string()))
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, mut minimal)) => {
            minimal.name = format!("regression {}", short_hash(&minimal));
            let path = regressions_dir().join(format!("{}.json", minimal.name.replace(' ', "-")));
            let failure = format!(
                "shrunk to {} events:\n{}",
                minimal.events.len(),
                reason.message().replace("; ", "\n")
            );
            common::save_regression_if_it_reproduces("scenario", &minimal, &path, &failure, || {
                let mut target = LinuxTarget::new(lab(minimal.ipv6)).map_err(|e| e.to_string())?;
                let mut session = Session::with_profile(&mut target, minimal.profile);
                run_scenario(&mut session, &minimal, 29_000).map_err(|e| e.to_string())
            });
        }
        Err(e) => panic!("{e}"),
    }
}

fn short_hash(s: &TcpScenario) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.events.hash(&mut h);
    s.ipv6.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
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
    require_netns!();
    let mut files: Vec<_> = std::fs::read_dir(regressions_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).expect("read regression");
        let scenario: TcpScenario =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut target = LinuxTarget::new(lab(scenario.ipv6)).expect("lab");
        let mut session = Session::with_profile(&mut target, scenario.profile);
        if let Err(e) = run_scenario(&mut session, &scenario, 20_000 + i as u16) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} regressions fail again:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
