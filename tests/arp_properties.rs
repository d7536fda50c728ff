//! Generated ARP scenarios (proptest) against the model and the Linux kernel, and the replay
//! of every saved regression.
//!
//! Each case builds a fresh stack, gives it an ARP policy (`arp_accept`, `arp_ignore`),
//! forwarding on or off, maybe a default gateway, and plays two to four peers that ping it,
//! send packets through it, and send ARP of every kind (requests for it or for someone
//! else, gratuitous requests and replies, unsolicited replies, RFC 5227 probes, from their
//! own or a conflicting MAC, within and outside the locktime), with time passing between.
//! Every frame and the whole neighbour table after each step are compared with the model.
//! A failure is shrunk to a minimal scenario, saved under `fixtures/arp-regressions/` when it
//! fails again on each of three fresh stacks (replay: `netconform replay FILE`), and every
//! saved one runs again here (`common::regressions`).

#[macro_use]
mod common;
use common::{cases, regressions};

use proptest::prelude::*;
use proptest::test_runner::Config;

use netconform::dut::linux::{LinuxHost, lab_config_for};
use netconform::engine::{Scenario, Session};
use netconform::models::arp::{ArpAccept, ArpIgnore, ArpPolicy, ArpProfile};
use netconform::suites::arp::scenario::{
    ArpKind, ArpScenario, PeerSpec, ScenarioOutcome, Step, Timers, run_arp_scenario,
};

fn step(peers: usize) -> impl Strategy<Value = Step> {
    let kind = proptest::sample::select(vec![
        ArpKind::RequestForStack,
        ArpKind::RequestForOther,
        ArpKind::GratuitousRequest,
        ArpKind::GratuitousReply,
        ArpKind::Reply,
        ArpKind::Probe,
    ]);
    prop_oneof![
        4 => (0..peers).prop_map(|from| Step::Ping { from }),
        1 => (0..peers, 0..peers).prop_map(|(from, to)| Step::Forward { from, to }),
        4 => (0..peers, kind, proptest::bool::weighted(0.3), proptest::bool::weighted(0.3))
            .prop_map(|(from, kind, alt_mac, unicast)| Step::Arp { from, kind, alt_mac, unicast }),
        4 => proptest::sample::select(vec![10u64, 40, 80, 150, 300]).prop_map(|ms| Step::Wait { ms }),
    ]
}

fn policy() -> impl Strategy<Value = ArpPolicy> {
    (
        proptest::sample::select(vec![
            ArpAccept::Never,
            ArpAccept::Always,
            ArpAccept::SameSubnet,
        ]),
        prop_oneof![
            4 => Just(ArpIgnore::Any),
            1 => Just(ArpIgnore::OnInterface),
            1 => Just(ArpIgnore::SameSubnet),
            1 => Just(ArpIgnore::Never),
        ],
    )
        .prop_map(|(accept, ignore)| ArpPolicy { accept, ignore })
}

/// Peer 0 answers and may be the gateway; the last peer may sit behind it.
fn scenario() -> impl Strategy<Value = ArpScenario> {
    (
        2usize..=4,
        policy(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(n, policy, forwarding, gateway, far)| {
            let answers = proptest::collection::vec(proptest::bool::weighted(0.7), n);
            (
                Just((n, policy, forwarding, gateway, far)),
                answers,
                proptest::collection::vec(step(n), 2..10),
            )
        })
        .prop_map(|((n, policy, forwarding, gateway, far), answers, steps)| {
            let peers = (0..n)
                .map(|i| PeerSpec {
                    octet: [1, 3, 4, 5][i], // .2 is the stack
                    answers: i == 0 || answers[i],
                    off_link: gateway && far && i == n - 1 && n > 2,
                })
                .collect();
            ArpScenario {
                name: "generated".into(),
                policy,
                forwarding,
                gateway: gateway.then_some(0),
                peers,
                steps,
                timers: Timers::FAST,
            }
        })
}

/// Runs one scenario on a fresh stack; a new reachable time drawn mid-run repeats it once.
fn run(s: &ArpScenario) -> Result<ScenarioOutcome, String> {
    for _ in 0..2 {
        let mut target = LinuxHost::new(lab_config_for(&netconform::engine::Needs::IPV4))
            .map_err(|e| format!("lab: {e}"))?;
        let mut session = Session::new(&mut target);
        let result = run_arp_scenario(&mut session, s, &ArpProfile::linux());
        let names = session.host_names().clone();
        let trace = session.into_trace().render(&names);
        match result {
            Ok(ScenarioOutcome::Redrawn) => continue,
            Ok(outcome) => return Ok(outcome),
            Err(e) => return Err(format!("{e}\ntrace:\n{trace}")),
        }
    }
    Err("the stack drew a new reachable time twice in a row".into())
}

#[test]
fn generated_arp_scenarios() {
    require_netns!();
    let config = Config {
        cases: cases(24),
        max_shrink_iters: 64,
        max_shrink_time: 180_000,
        ..Config::default()
    };
    let frames = std::cell::Cell::new(0usize);
    let entries = std::cell::Cell::new(0usize);
    let result = regressions::generate(config, 0x6e63_6172_7030, &scenario(), |s| match run(&s)? {
        ScenarioOutcome::Agreed {
            frames: f,
            entries: e,
            ..
        } => {
            frames.set(frames.get() + f);
            entries.set(entries.get() + e);
            Ok(())
        }
        ScenarioOutcome::Redrawn => Ok(()),
    });
    if let Err(found) = result {
        regressions::save_shrunk_scenario(
            &regressions::ARP,
            Box::new(found.minimal),
            &found.reason,
        );
    }
    println!(
        "{} scenarios agreed: {} frames and {} neighbour entries compared",
        cases(24),
        frames.get(),
        entries.get()
    );
    assert!(
        frames.get() > 0 && entries.get() > 0,
        "nothing was compared"
    );
}

#[test]
fn saved_arp_regressions_replay() {
    // The files are there, exactly as many as were saved, with or without namespaces.
    regressions::ARP.files();
    require_netns!();
    assert_eq!(
        regressions::replay_saved::<Box<dyn Scenario>>(&regressions::ARP),
        regressions::ARP.saved
    );
}

/// A failure that does not come back on replay is never saved; one that does is.
#[test]
fn a_failure_that_does_not_reproduce_is_not_saved() {
    let dir = std::env::temp_dir().join(format!("ncf-regressions-{}", std::process::id()));
    let path = dir.join("flaky.json");
    let mut calls = 0;
    let flaky = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::save_regression_if_it_reproduces("test", &"scenario", &path, "boom", || {
            calls += 1;
            if calls == 2 {
                Ok(())
            } else {
                Err("late".into())
            }
        })
    }));
    let message = flaky.expect_err("it panics");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("NOT saved"), "{text}");
    assert!(text.contains("agrees on 1 of 3"), "{text}");
    assert!(!path.exists(), "a flaky failure was saved");

    let real = std::panic::catch_unwind(|| {
        common::save_regression_if_it_reproduces("test", &"scenario", &path, "boom", || {
            Err("wrong".into())
        })
    });
    let text = real
        .expect_err("it panics")
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("saved as"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("saved"),
        "\"scenario\"\n"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
