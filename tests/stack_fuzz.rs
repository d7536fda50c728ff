//! The stack targets' recorded inputs (`fuzz/regressions/stack_*/`), each replayed through
//! the library function the fuzzer runs and held to the verdict it gave when it was
//! recorded: an agreement stays one, a finding stays in its group (clause, the model's
//! state before the failing event, what differed), the documented smoltcp panic stays
//! filed, and the harness bugs the fuzzer found (a second open crashed the runner; the
//! smoltcp adapter answered SHUT_WR on a reset connection with ok) stay fixed. `tests/fuzz_replay.rs` replays them too, for crashes only.

use std::path::PathBuf;

use netconform::fuzz::stacks::{self, Verdict};

/// Each recorded input of `stack_smoltcp` and the verdict line it must give.
const SMOLTCP: &[(&str, &str)] = &[
    ("established", "agreed with the model"),
    (
        "syn-in-established",
        "FINDING rfc5961-4.2 in ESTABLISHED: no segment where the model sends challenge ACK \
         (SYN in a synchronized state)",
    ),
    (
        "second-connect",
        "FINDING rfc9293-3.10.7.3 in SYN-SENT: no segment where the model sends SYN in \
         SYN-SENT (simultaneous open)",
    ),
    ("shutdown-after-reset", "agreed with the model"),
    (
        "close-in-simultaneous-syn-received",
        "FINDING rfc9293-3.10.4 in SYN-RECEIVED: no segment where the model sends CLOSE",
    ),
    (
        "ipv6-default-mss",
        "FINDING rfc9293-3.10.7.4-text-fin in ESTABLISHED: length of SEND",
    ),
    (
        "text-on-syn",
        "FINDING rfc9293-3.10.7.4-text-fin in ESTABLISHED: no segment where the model sends \
         ACK of FIN",
    ),
    (
        "window-edge-panic",
        "FINDING known panic: smoltcp panicked: assertion failed: len_written == payload_len",
    ),
];

fn input(target: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_recorded_smoltcp_input_gives_its_verdict() {
    let target = stacks::stack("stack_smoltcp").expect("the smoltcp stack target");
    let mut wrong = Vec::new();
    for (name, want) in SMOLTCP {
        let (_, verdict) = stacks::judge(target, &input("stack_smoltcp", name));
        let mut got = verdict.line();
        if !cfg!(debug_assertions) && *name == "window-edge-panic" {
            // The assertion is a debug_assert: a release build runs on past it.
            continue;
        }
        if got != *want {
            got = format!("{name}: expected {want:?}, got {got:?}");
            wrong.push(got);
        }
        // Never a crash: the fuzzer goes on after each of them.
        assert!(!matches!(verdict, Verdict::Crashed(_)), "{name}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_finding_shrinks_to_a_scenario_that_replays_the_same_way() {
    use netconform::engine::scenario::{Scenario, replay};
    let target = stacks::stack("stack_smoltcp").expect("the smoltcp stack target");
    let (scenario, verdict) = stacks::judge(target, &input("stack_smoltcp", "syn-in-established"));
    let Verdict::Disagreed(d) = verdict else {
        panic!("expected a finding, got {verdict:?}");
    };
    let shrunk = stacks::shrink(target, &scenario, &d.group);
    // Listen, SYN, ACK, SYN: nothing to take away.
    assert_eq!(shrunk.scenario.events.len(), 4);
    // What `netconform replay --target smoltcp FILE` does with the file.
    let text = serde_json::to_string(&shrunk.to_json()).expect("json");
    let loaded = netconform::suites::load_scenario(&text).expect("a scenario file");
    let mut dut = netconform::dut::build::DutKind::Smoltcp
        .build(&loaded.needs())
        .expect("smoltcp");
    let replayed = replay(
        loaded.as_ref(),
        dut.as_mut(),
        netconform::models::profile::ProfileName::Linux,
    );
    let error = replayed
        .result
        .expect_err("the replay fails as the finding did");
    assert!(
        error
            .to_string()
            .contains("challenge ACK (SYN in a synchronized state)"),
        "{error}"
    );
}
