//! Unit tests of the runner: verdicts of errors, where a failure is in a trace, the kind of
//! a failure the shrink compares, the generic shrink on the fake DUT, and `run_one`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::dut::DutError;
use crate::engine::tests::{ANSWERED, FakeScenario, FakeStack};
use crate::time::{Duration, Instant};
use crate::trace::{Direction, EventKind, TraceEvent};

fn mismatch(first: &str) -> CheckError {
    CheckError::Mismatch {
        step: "s".into(),
        differences: vec![first.into(), "other: expected 1, observed 2".into()],
    }
}

fn nothing() -> CheckError {
    CheckError::NothingObserved {
        step: "s".into(),
        waited: Duration::from_millis(5),
    }
}

fn unexpected() -> CheckError {
    CheckError::Unexpected {
        step: "s".into(),
        observed: "a frame".into(),
    }
}

fn wrong_answer() -> CheckError {
    CheckError::WrongAnswer {
        step: "s".into(),
        expected: "ok".into(),
        observed: "EPERM".into(),
    }
}

fn target_error(source: DutError) -> CheckError {
    CheckError::Dut {
        step: "s".into(),
        source,
    }
}

fn not_supported() -> DutError {
    DutError::NotSupported {
        what: "calls".into(),
    }
}

fn malformed() -> DutError {
    DutError::Malformed {
        detail: "gone".into(),
    }
}

// ---------------------------------------------------------------------------------------
// verdict_of

#[test]
fn every_error_has_its_verdict() {
    let fail = |differences: &[&str]| Verdict::Fail {
        step: "s".into(),
        differences: differences.iter().map(|d| d.to_string()).collect(),
    };
    assert_eq!(
        verdict_of(&mismatch("a: expected 1, observed 2")),
        fail(&["a: expected 1, observed 2", "other: expected 1, observed 2"])
    );
    assert_eq!(
        verdict_of(&nothing()),
        fail(&["nothing arrived within 5.000 ms"])
    );
    assert_eq!(
        verdict_of(&unexpected()),
        fail(&["expected no frame, observed a frame"])
    );
    assert_eq!(
        verdict_of(&wrong_answer()),
        fail(&["expected ok, observed EPERM"])
    );
    assert_eq!(
        verdict_of(&target_error(not_supported())),
        Verdict::Unsupported {
            reason: "s: calls".into()
        }
    );
    match verdict_of(&target_error(malformed())) {
        Verdict::Error { reason } => assert!(reason.starts_with("s: ") && reason.contains("gone")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// failure_index

fn trace(events: &[&str]) -> Trace {
    Trace {
        events: events
            .iter()
            .enumerate()
            .map(|(i, e)| TraceEvent {
                at: Instant::ZERO + Duration::from_millis(i as u64),
                kind: match *e {
                    ">" => EventKind::Frame {
                        direction: Direction::Sent,
                        bytes: vec![0; 14],
                        port: None,
                    },
                    "<" => EventKind::Frame {
                        direction: Direction::Received,
                        bytes: vec![1; 14],
                        port: None,
                    },
                    "call" => EventKind::Call {
                        text: "close()".into(),
                        result: "ok".into(),
                    },
                    note => EventKind::Note(note.into()),
                },
            })
            .collect(),
    }
}

#[test]
fn a_wrong_frame_is_the_stacks_last_frame_after_the_harnesss_last() {
    let m = mismatch("a: x");
    assert_eq!(failure_index(&trace(&[">", "<"]), &m), 1);
    assert_eq!(failure_index(&trace(&[">", "<", "note", "call"]), &m), 1);
    assert_eq!(failure_index(&trace(&[">", "<", ">", "<", "<"]), &m), 4);
    assert_eq!(failure_index(&trace(&["<"]), &unexpected()), 0);
    assert_eq!(failure_index(&trace(&[">", "<", "note"]), &unexpected()), 1);
}

#[test]
fn a_failure_without_a_wrong_frame_is_at_the_end() {
    // The stack's last frame came before the harness's last: it answered nothing to it.
    assert_eq!(
        failure_index(&trace(&[">", "<", ">"]), &mismatch("a: x")),
        3
    );
    // No frame from the stack at all.
    assert_eq!(failure_index(&trace(&[">", "call"]), &mismatch("a: x")), 2);
    assert_eq!(failure_index(&trace(&[]), &unexpected()), 0);
    // Errors about no frame, or about calls, are at the end.
    for e in [nothing(), wrong_answer(), target_error(malformed())] {
        assert_eq!(failure_index(&trace(&[">", "<"]), &e), 2, "{e:?}");
    }
}

// ---------------------------------------------------------------------------------------
// failure_signature

#[test]
fn a_failures_signature_is_its_kind_and_first_field() {
    let sig = |e: &CheckError| failure_signature(e);
    assert_eq!(
        sig(&mismatch("tcp.flags: expected S., observed R.")).as_deref(),
        Some("mismatch tcp.flags")
    );
    // The same field with other values is the same failure; another field is not.
    assert_eq!(
        sig(&mismatch("tcp.flags: expected S., observed R.")),
        sig(&mismatch("tcp.flags: expected A, observed F"))
    );
    assert_ne!(
        sig(&mismatch("tcp.flags: expected S., observed R.")),
        sig(&mismatch("tcp.seq: expected 1, observed 2"))
    );
    let empty = CheckError::Mismatch {
        step: "s".into(),
        differences: Vec::new(),
    };
    assert_eq!(sig(&empty).as_deref(), Some("mismatch "));
    assert_eq!(sig(&nothing()).as_deref(), Some("nothing observed"));
    assert_eq!(sig(&unexpected()).as_deref(), Some("unexpected frame"));
    assert_eq!(sig(&wrong_answer()).as_deref(), Some("wrong answer"));
    // The target's errors never count as the failure.
    assert_eq!(sig(&target_error(not_supported())), None);
    assert_eq!(sig(&target_error(malformed())), None);
}

// ---------------------------------------------------------------------------------------
// shrink, on the fake DUT

fn spec() -> CheckSpec {
    CheckSpec {
        id: "fake.scenario",
        title: "a fake scenario",
        clauses: &[],
        needs: crate::dut::needs::Needs::IPV4,
        run: |_| Ok(()),
    }
}

/// A factory of fake stacks that counts the stacks it built.
fn counting(
    built: &AtomicUsize,
    answers_seven: bool,
) -> impl Fn(&CheckSpec) -> Result<Box<dyn Dut>, DutError> + Sync + '_ {
    move |_: &CheckSpec| {
        built.fetch_add(1, Ordering::SeqCst);
        let mut stack = FakeStack::new();
        stack.answers_seven = answers_seven;
        Ok(Box::new(stack) as Box<dyn Dut>)
    }
}

fn shrunk_steps(c: &Counterexample) -> Vec<u8> {
    c.as_scenario()
        .and_then(|s| s.as_any().downcast_ref::<FakeScenario>())
        .expect("a fake scenario")
        .steps
        .clone()
}

#[test]
fn shrink_keeps_only_the_step_the_failure_depends_on() {
    let built = AtomicUsize::new(0);
    let factory = counting(&built, true);
    let scenario = FakeScenario::new(&[1, 2, ANSWERED, 3, 4]);
    let (c, run) = shrink(&spec(), &factory, ProfileName::Linux, &scenario);
    assert_eq!(shrunk_steps(&c), vec![ANSWERED]);
    let Counterexample::Scenario {
        scenario: shrunk,
        shrunk: was_shrunk,
        original_steps,
    } = &c
    else {
        panic!("{c:?}")
    };
    assert!(was_shrunk);
    assert_eq!(*original_steps, 5);
    assert_eq!(shrunk.name(), "fake (shrunk to 1 of 5 steps)");
    // The last failing run: one frame sent, the stack's answer the failing observation.
    let run = run.expect("the failure came back");
    let frames: Vec<_> = run.trace.frames().map(|(_, d, _)| d).collect();
    assert_eq!(frames, vec![Direction::Sent, Direction::Received]);
    assert!(matches!(
        &run.trace.events[run.failed_at].kind,
        EventKind::Frame {
            direction: Direction::Received,
            ..
        }
    ));
    assert_eq!(run.expected.as_deref(), Some("no frame for 1.000 ms"));
    assert_eq!(run.differences.len(), 1);
    assert!(
        run.differences[0].starts_with("expected no frame, observed"),
        "{:?}",
        run.differences
    );
    // A fresh stack per run: the first run, five trials in the first pass (the 7 stays,
    // the four others go), one in the second (the 7 alone stays), and no third pass.
    assert_eq!(built.load(Ordering::SeqCst), 1 + 5 + 1);
}

/// A smaller scenario counts only when it fails the same way: `[8, 9]` fails with a
/// mismatch (its last step is 9); without the 9 it fails too, but with a wrong answer, so
/// the 9 stays and the 8 goes.
#[test]
fn shrink_keeps_a_failure_of_the_same_kind_only() {
    let built = AtomicUsize::new(0);
    let factory = counting(&built, true);
    let (c, run) = shrink(
        &spec(),
        &factory,
        ProfileName::Linux,
        &FakeScenario::new(&[8, 9]),
    );
    assert_eq!(shrunk_steps(&c), vec![9]);
    assert_eq!(
        run.unwrap().differences,
        vec!["f9: expected 0, observed 9".to_string()]
    );
}

#[test]
fn a_failure_that_does_not_come_back_is_not_shrunk() {
    let built = AtomicUsize::new(0);
    // Fresh stacks that never answer: the scenario agrees on every one.
    let factory = counting(&built, false);
    let scenario = FakeScenario::new(&[1, ANSWERED, 2]);
    let (c, run) = shrink(&spec(), &factory, ProfileName::Linux, &scenario);
    assert!(run.is_none());
    assert_eq!(
        c,
        Counterexample::Scenario {
            scenario: Box::new(scenario),
            shrunk: false,
            original_steps: 3
        }
    );
    assert_eq!(built.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dut_that_cannot_be_built_or_a_panic_is_no_failure() {
    let failing = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> { Err(malformed()) };
    let (c, run) = shrink(
        &spec(),
        &failing,
        ProfileName::Linux,
        &FakeScenario::new(&[ANSWERED]),
    );
    assert!(run.is_none());
    assert_eq!(shrunk_steps(&c), vec![ANSWERED]);

    // Without the 0xff step the scenario panics no more, but agrees: the panic was no
    // failure, so nothing is kept from it.
    let built = AtomicUsize::new(0);
    let factory = counting(&built, true);
    let (c, run) = shrink(
        &spec(),
        &factory,
        ProfileName::Linux,
        &FakeScenario::new(&[1, 0xff]),
    );
    assert!(run.is_none());
    assert_eq!(shrunk_steps(&c), vec![1, 0xff]);
}

#[test]
fn shrink_stops_after_its_trials() {
    let built = AtomicUsize::new(0);
    let factory = counting(&built, true);
    let mut steps = vec![ANSWERED];
    steps.extend(std::iter::repeat_n(1, 59));
    let (c, run) = shrink(
        &spec(),
        &factory,
        ProfileName::Linux,
        &FakeScenario::new(&steps),
    );
    assert!(run.is_some());
    assert_eq!(built.load(Ordering::SeqCst), SHRINK_TRIALS);
    // Every trial after the first removed one trailing step.
    let left = shrunk_steps(&c);
    assert_eq!(left.len(), 60 - (SHRINK_TRIALS - 1));
    assert_eq!(left[0], ANSWERED);
}

// ---------------------------------------------------------------------------------------
// run_one

fn fake_factory(_: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    Ok(Box::new(FakeStack::new()))
}

fn check(run: fn(&mut Session<'_>) -> Result<(), CheckError>) -> CheckSpec {
    CheckSpec { run, ..spec() }
}

/// A check that saw nothing wrong but left a clause not checked does not pass: it is an
/// error naming the clause, and its report lists the clause with why.
#[test]
fn a_check_that_leaves_a_clause_not_checked_does_not_pass() {
    let report = run_one(
        &check(|s| {
            s.not_checked("rfc-1-clause", "the KeyUpdate was not in the capture");
            Ok(())
        }),
        &fake_factory,
        ProfileName::Linux,
    );
    match &report.verdict {
        Verdict::Error { reason } => assert_eq!(
            reason,
            "not checked (1 clause(s) no observation checked): rfc-1-clause: the KeyUpdate was not in the capture"
        ),
        other => panic!("a clause not checked must not pass: {other:?}"),
    }
    assert_eq!(
        report.not_checked,
        vec![crate::engine::NotChecked {
            clause: "rfc-1-clause",
            reason: "the KeyUpdate was not in the capture".into()
        }]
    );
    // The trace says so too.
    assert!(
        report
            .trace_text()
            .contains("not checked: rfc-1-clause: the KeyUpdate was not in the capture"),
        "{}",
        report.trace_text()
    );
    let json = serde_json::to_value(&report).expect("JSON");
    assert_eq!(json["not_checked"][0]["clause"], "rfc-1-clause", "{json}");

    // A check that fails keeps its failure, and still lists what it did not check.
    let report = run_one(
        &check(|s| {
            s.not_checked("rfc-1-clause", "not seen");
            Err(CheckError::Mismatch {
                step: "s".into(),
                differences: vec!["a: expected 1, observed 2".into()],
            })
        }),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(report.verdict.label(), "FAIL");
    assert_eq!(report.not_checked.len(), 1);

    // Negative control: nothing left unchecked, a pass, and no `not_checked` in the JSON.
    let report = run_one(&check(|_| Ok(())), &fake_factory, ProfileName::Linux);
    assert_eq!(report.verdict, Verdict::Pass);
    let json = serde_json::to_value(&report).expect("JSON");
    assert!(json.get("not_checked").is_none(), "{json}");
}

#[test]
fn a_check_that_panics_is_an_error_that_says_so() {
    let report = run_one(
        &check(|_| panic!("boom")),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(
        report.verdict,
        Verdict::Error {
            reason: "harness bug: the check panicked: boom".into()
        }
    );
    assert!(report.counterexample.is_none());
}

#[test]
fn a_target_that_cannot_be_built_is_an_error() {
    let factory = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> { Err(malformed()) };
    let report = run_one(&check(|_| Ok(())), &factory, ProfileName::Linux);
    match &report.verdict {
        Verdict::Error { reason } => {
            assert!(reason.starts_with("setting up the target: "), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_the_target_cannot_perform_is_unsupported_with_no_counterexample() {
    let report = run_one(
        &check(|s| {
            s.query("sockets", crate::dut::StateQuery::TcpSockets)?;
            Ok(())
        }),
        &fake_factory,
        ProfileName::Linux,
    );
    assert!(
        matches!(&report.verdict, Verdict::Unsupported { reason } if reason.starts_with("sockets: ")),
        "{:?}",
        report.verdict
    );
    assert!(report.counterexample.is_none());
    assert_eq!(report.failed_at, Some(report.trace.events.len()));
}

/// A fixed check that fails gets its script as counterexample: what the harness sent, up
/// to the stack's frame that failed it.
#[test]
fn a_failing_fixed_check_gets_its_script() {
    let report = run_one(
        &check(|s| {
            let e = s.endpoints().clone();
            for step in [1, ANSWERED, 2] {
                s.send_bytes("send", &FakeStack::frame(e.harness_mac, e.stack_mac, step))?;
                s.expect_silence("quiet", Duration::from_millis(1))?;
            }
            Ok(())
        }),
        &fake_factory,
        ProfileName::Linux,
    );
    let (step, differences) = match &report.verdict {
        Verdict::Fail { step, differences } => (step, differences),
        other => panic!("{other:?}"),
    };
    assert_eq!(step, "quiet");
    assert!(
        differences[0].starts_with("expected no frame, observed"),
        "{differences:?}"
    );
    assert_eq!(report.failed_at, Some(2));
    assert_eq!(report.expected.as_deref(), Some("no frame for 1.000 ms"));
    let Some(Counterexample::Script { steps }) = &report.counterexample else {
        panic!("{:?}", report.counterexample)
    };
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps.iter().all(|s| s.contains("send ")), "{steps:?}");
    assert!(report.counterexample_run.is_none());
}

/// A scenario check that fails has its counterexample shrunk on fresh targets, with the
/// shrunk run's trace beside it.
#[test]
fn a_failing_scenario_check_gets_its_shrunk_scenario() {
    let report = run_one(
        &check(|s| {
            let scenario = FakeScenario::new(&[1, 2, ANSWERED, 3]);
            let result = scenario.run(s);
            if result.is_err() {
                s.offer_counterexample(Counterexample::scenario(Box::new(scenario)));
            }
            result.map(|_| ())
        }),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(report.verdict.label(), "FAIL");
    let c = report.counterexample.as_ref().expect("a counterexample");
    assert_eq!(shrunk_steps(c), vec![ANSWERED]);
    assert!(matches!(
        c,
        Counterexample::Scenario {
            shrunk: true,
            original_steps: 4,
            ..
        }
    ));
    let run = report.counterexample_run.as_ref().expect("the shrunk run");
    assert_eq!(run.trace.frames().count(), 2);
    // The check's own trace holds the whole scenario up to the failure.
    assert_eq!(report.trace.frames().count(), 4);
}

// ---------------------------------------------------------------------------------------
// run_one: the planes a check uses against those the DUT has

fn using(uses: &'static [Uses], switch: Option<crate::dut::needs::SwitchNeeds>) -> CheckSpec {
    CheckSpec {
        needs: crate::dut::needs::Needs {
            uses,
            switch,
            ..crate::dut::needs::Needs::IPV4
        },
        ..check(|_| panic!("a check whose DUT lacks a plane it uses must not run"))
    }
}

fn unsupported_reason(report: &CheckReport) -> &str {
    match &report.verdict {
        Verdict::Unsupported { reason } => reason,
        other => panic!("expected unsupported, got {other:?}"),
    }
}

use crate::dut::needs::Uses;

/// The fake stack has a one-port link, TCP sockets and tables: a check that uses UDP, a
/// service or three ports is unsupported before it runs, with the plane it lacks.
#[test]
fn a_check_that_uses_a_plane_the_dut_lacks_is_unsupported_before_it_runs() {
    let report = run_one(
        &using(&[Uses::Link, Uses::UdpSockets], None),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(
        unsupported_reason(&report),
        "an IP host on an Ethernet link: the DUT has TCP sockets only, the check needs UDP sockets"
    );
    assert!(report.trace.events.is_empty(), "{:?}", report.trace);
    assert!(report.counterexample.is_none());

    let report = run_one(
        &using(
            &[Uses::Service(crate::dut::service::ServiceKind::Tls)],
            None,
        ),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(
        unsupported_reason(&report),
        "a TLS service: the DUT serves no TLS"
    );

    let three = crate::dut::needs::SwitchNeeds {
        ports: 3,
        ageing_ms: 300_000,
    };
    let report = run_one(
        &using(&[Uses::Link, Uses::Tables], Some(three)),
        &fake_factory,
        ProfileName::Linux,
    );
    assert_eq!(
        unsupported_reason(&report),
        "a switch with 3 ports: the DUT has a link of 1 port(s), the check needs 3"
    );
}

/// The negative control: the same refusal does not touch a check whose planes the DUT has.
#[test]
fn a_check_whose_planes_the_dut_has_runs() {
    let spec = CheckSpec {
        run: |_| Ok(()),
        ..using(&[Uses::Link, Uses::TcpSockets, Uses::Tables], None)
    };
    let report = run_one(&spec, &fake_factory, ProfileName::Linux);
    assert_eq!(report.verdict, Verdict::Pass);
}
