//! Unit tests of the engine on an in-process fake DUT (no privilege, no namespace):
//! counterexamples and their JSON, scenario files of every suite, the catalogue, and the
//! session's barrier with its one retry. The runner's own helpers and its shrink are tested
//! in `runner/tests.rs` with the fakes defined here.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant as WallInstant;

use crate::dut::needs::Needs;
use crate::dut::{CallOutcome, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery};
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome, with_kind};
use crate::engine::{CheckError, Session};
use crate::time::Duration;
use crate::wire::{Frame, Icmpv4Kind, Icmpv4Message, MacAddr, Network, Transport};

// ---------------------------------------------------------------------------------------
// The fakes.

/// The ether type of the fake scenario's frames (IEEE local experimental).
const FAKE_ETHER_TYPE: [u8; 2] = [0x88, 0xb5];

/// The step a [`FakeStack`] answers when it must stay silent.
pub(super) const ANSWERED: u8 = 7;

/// An in-process stack on a wall clock: it answers ICMPv4 echo requests to its address,
/// answers a fake-scenario frame carrying [`ANSWERED`] (with `answers_seven`), counts the
/// frames that reach it, and loses frames on request.
pub(super) struct FakeStack {
    endpoints: Endpoints,
    out: VecDeque<Vec<u8>>,
    delivered: u64,
    /// The next this many frames the harness sends never reach the stack (the counter does
    /// not move).
    pub(super) lose_sent: usize,
    /// The next this many echo replies the stack sends are lost on the way out (the probe
    /// reached it: the counter moved).
    pub(super) lose_replies: usize,
    /// Whether the stack can count received frames (`Link::frames_delivered`).
    pub(super) counts: bool,
    /// Whether a fake-scenario frame carrying [`ANSWERED`] is answered.
    pub(super) answers_seven: bool,
    /// A frame the stack sends to the peer before each echo reply.
    pub(super) chatter: Option<Vec<u8>>,
    /// Every frame the harness sent that reached the stack.
    pub(super) received: Vec<Vec<u8>>,
}

impl FakeStack {
    pub(super) fn new() -> FakeStack {
        FakeStack {
            endpoints: Endpoints {
                harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                stack_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                stack_ipv4: Some((Ipv4Addr::new(10, 9, 0, 2), 24)),
                peer_ipv4: Some(Ipv4Addr::new(10, 9, 0, 1)),
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
            out: VecDeque::new(),
            delivered: 0,
            lose_sent: 0,
            lose_replies: 0,
            counts: true,
            answers_seven: true,
            chatter: None,
            received: Vec::new(),
        }
    }

    /// A fake-scenario frame carrying `step`, from `src` to `dst`.
    pub(super) fn frame(src: MacAddr, dst: MacAddr, step: u8) -> Vec<u8> {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&FAKE_ETHER_TYPE);
        f.push(step);
        f.resize(60, 0);
        f
    }

    /// How many echo requests reached the stack.
    pub(super) fn echo_requests(&self) -> usize {
        self.received
            .iter()
            .filter(|f| {
                Frame::parse(f).ok().and_then(|f| f.transport().cloned()).is_some_and(
                    |t| matches!(t, Transport::Icmpv4(m) if matches!(m.kind(), Icmpv4Kind::EchoRequest { .. })),
                )
            })
            .count()
    }
}

impl Dut for FakeStack {
    fn name(&self) -> &str {
        "fake"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn crate::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Link for FakeStack {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        if self.lose_sent > 0 {
            self.lose_sent -= 1;
            return Ok(());
        }
        self.delivered += 1;
        self.received.push(frame.to_vec());
        let e = self.endpoints.clone();
        if frame.len() > 14 && frame[12..14] == FAKE_ETHER_TYPE {
            if self.answers_seven && frame[14] == ANSWERED {
                self.out
                    .push_back(Self::frame(e.stack_mac, e.harness_mac, frame[14]));
            }
            return Ok(());
        }
        let Ok(parsed) = Frame::parse(frame) else {
            return Ok(());
        };
        if let Network::Ipv4(p) = &parsed.network
            && let Transport::Icmpv4(m) = &p.transport
            && let Icmpv4Kind::EchoRequest { id, seq } = m.kind()
            && Some(p.dst) == e.stack_ipv4.map(|(a, _)| a)
        {
            if let Some(chatter) = &self.chatter {
                self.out.push_back(chatter.clone());
            }
            if self.lose_replies > 0 {
                self.lose_replies -= 1;
                return Ok(());
            }
            let reply = Frame::icmpv4(
                e.stack_mac,
                e.harness_mac,
                p.dst,
                p.src,
                Icmpv4Message::echo_reply(id, seq, m.payload.clone()),
            );
            self.out.push_back(reply.emit());
        }
        Ok(())
    }

    fn recv_frame(&mut self, deadline: WallInstant) -> Result<Option<Vec<u8>>, DutError> {
        if let Some(f) = self.out.pop_front() {
            return Ok(Some(f));
        }
        std::thread::sleep(deadline.saturating_duration_since(WallInstant::now()));
        Ok(None)
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        self.counts.then_some(self.delivered)
    }
}

impl crate::dut::Sockets for FakeStack {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        Err(DutError::NotSupported {
            what: format!("{call:?}"),
        })
    }
}

impl crate::dut::Tables for FakeStack {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        Err(DutError::NotSupported {
            what: format!("{query:?}"),
        })
    }
}

/// A scenario of numbered steps. Each step sends a frame carrying its number to the stack
/// and requires silence for a millisecond: a [`FakeStack`] answers [`ANSWERED`], so a
/// scenario fails on that step and on no other. The last step fails the scenario without
/// the stack when it is 8 (a wrong answer) or 9 (a mismatch of field `f9`), and a step
/// 0xff panics: enough to show which smaller scenarios the shrink keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FakeScenario {
    pub(super) name: String,
    pub(super) steps: Vec<u8>,
}

impl FakeScenario {
    pub(super) const KIND: &'static str = "fake-scenario";

    pub(crate) fn new(steps: &[u8]) -> FakeScenario {
        FakeScenario {
            name: "fake".into(),
            steps: steps.to_vec(),
        }
    }
}

impl Scenario for FakeScenario {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn needs(&self) -> Needs {
        Needs::IPV4
    }
    fn step_lines(&self) -> Vec<String> {
        self.steps.iter().map(|s| format!("send {s}")).collect()
    }
    fn len(&self) -> usize {
        self.steps.len()
    }
    fn without_step(&self, index: usize) -> Box<dyn Scenario> {
        let mut copy = self.clone();
        copy.steps.remove(index);
        Box::new(copy)
    }
    fn run(&self, session: &mut Session<'_>) -> Result<ScenarioOutcome, CheckError> {
        let e = session.endpoints().clone();
        for (i, &step) in self.steps.iter().enumerate() {
            let name = format!("step {i}");
            assert_ne!(step, 0xff, "step 0xff panics");
            session.send_bytes(&name, &FakeStack::frame(e.harness_mac, e.stack_mac, step))?;
            session.expect_silence(&name, Duration::from_millis(1))?;
            let last = i + 1 == self.steps.len();
            match step {
                8 if last => {
                    return Err(CheckError::WrongAnswer {
                        step: name,
                        expected: "7".into(),
                        observed: "8".into(),
                    });
                }
                9 if last => {
                    return Err(CheckError::Mismatch {
                        step: name,
                        differences: vec!["f9: expected 0, observed 9".into()],
                    });
                }
                _ => {}
            }
        }
        Ok(ScenarioOutcome::Agreed {
            summary: format!("{} steps", self.steps.len()),
        })
    }
    fn to_json(&self) -> serde_json::Value {
        with_kind(Self::KIND, serde_json::to_value(self).unwrap_or_default())
    }
    fn clone_box(&self) -> Box<dyn Scenario> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---------------------------------------------------------------------------------------
// Counterexamples and their JSON.

#[test]
fn a_script_counterexample_serialises_its_steps_and_has_no_replay_file() {
    let c = Counterexample::Script {
        steps: vec!["0 ms: send a".into(), "1 ms: close() -> ok".into()],
    };
    assert_eq!(c.kind(), "script");
    assert!(c.as_scenario().is_none());
    assert_eq!(c.replay_json(), None);
    assert_eq!(c.event_lines(), vec!["0 ms: send a", "1 ms: close() -> ok"]);
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        serde_json::json!({"kind": "script", "steps": ["0 ms: send a", "1 ms: close() -> ok"]})
    );
}

#[test]
fn a_scenario_counterexample_serialises_the_scenario_with_its_kind() {
    let c = Counterexample::scenario(Box::new(FakeScenario::new(&[1, 7, 2])));
    assert_eq!(c.kind(), FakeScenario::KIND);
    assert_eq!(c.event_lines(), vec!["send 1", "send 7", "send 2"]);
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        serde_json::json!({
            "kind": "fake-scenario",
            "scenario": {"kind": "fake-scenario", "name": "fake", "steps": [1, 7, 2]},
            "shrunk": false,
            "original_steps": 3,
        })
    );
    let file: serde_json::Value =
        serde_json::from_str(&c.replay_json().expect("a scenario has a replay file")).unwrap();
    assert_eq!(
        file,
        serde_json::json!({"kind": "fake-scenario", "name": "fake", "steps": [1, 7, 2]})
    );
}

/// `with_kind` adds the kind to an object and replaces an old one (serde_json keeps an
/// object's keys sorted in this build, so the kind is not "first" in a file, whatever its
/// doc says); anything else passes through.
#[test]
fn with_kind_adds_the_kind_and_replaces_an_old_one() {
    let v = with_kind("k", serde_json::json!({"a": 1, "kind": "old", "b": 2}));
    assert_eq!(v, serde_json::json!({"kind": "k", "a": 1, "b": 2}));
    assert_eq!(
        with_kind("k", serde_json::json!([1])),
        serde_json::json!([1])
    );
}

// ---------------------------------------------------------------------------------------
// The session's barrier and its one retry.

const BARRIER_WAIT: Duration = Duration::from_millis(20);

#[test]
fn a_barrier_the_stack_answers_returns_what_came_before_the_reply() {
    let mut stack = FakeStack::new();
    let chatter = FakeStack::frame(stack.endpoints.stack_mac, stack.endpoints.harness_mac, 3);
    stack.chatter = Some(chatter.clone());
    let mut session = Session::new(&mut stack);
    let observed = session
        .barrier("barrier", false, BARRIER_WAIT)
        .expect("answered");
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].bytes, chatter);
    assert!(session.retries().is_empty());
    // The probe and its reply are machinery: only the chatter is in the trace.
    let frames: Vec<_> = session.trace().frames().collect();
    assert_eq!(frames.len(), 1, "{frames:?}");
    drop(session);
    assert_eq!(stack.echo_requests(), 1);
}

#[test]
fn a_probe_that_never_reached_the_stack_is_sent_again_and_noted() {
    let mut stack = FakeStack::new();
    stack.lose_sent = 1;
    let mut session = Session::new(&mut stack);
    let observed = session
        .barrier("barrier", false, BARRIER_WAIT)
        .expect("the second probe is answered");
    assert!(observed.is_empty());
    assert_eq!(session.retries().len(), 1);
    assert!(
        session.retries()[0].contains("never reached the stack's interface"),
        "{:?}",
        session.retries()
    );
    let text = session.trace().render(session.host_names());
    assert!(
        text.contains("harness retry: barrier: the barrier probe (echo 1)"),
        "{text}"
    );
    drop(session);
    assert_eq!(stack.echo_requests(), 1);
}

#[test]
fn a_probe_the_stack_received_is_never_retried() {
    let mut stack = FakeStack::new();
    stack.lose_replies = 1;
    let mut session = Session::new(&mut stack);
    let err = session
        .barrier("barrier", false, BARRIER_WAIT)
        .expect_err("no reply came");
    assert!(
        matches!(&err, CheckError::NothingObserved { step, .. } if step.contains("echo reply to the barrier probe")),
        "{err:?}"
    );
    assert!(session.retries().is_empty());
    drop(session);
    assert_eq!(stack.echo_requests(), 1);
}

#[test]
fn a_loss_is_never_assumed_when_the_stack_cannot_count() {
    let mut stack = FakeStack::new();
    stack.lose_sent = 1;
    stack.counts = false;
    let mut session = Session::new(&mut stack);
    let err = session
        .barrier("barrier", false, BARRIER_WAIT)
        .expect_err("no reply came");
    assert!(matches!(err, CheckError::NothingObserved { .. }), "{err:?}");
    assert!(session.retries().is_empty());
}

#[test]
fn barrier_retries_are_bounded_per_session() {
    let mut stack = FakeStack::new();
    stack.lose_sent = 100;
    let mut session = Session::new(&mut stack);
    let err = session
        .barrier("barrier", false, BARRIER_WAIT)
        .expect_err("every probe is lost");
    assert!(matches!(err, CheckError::NothingObserved { .. }), "{err:?}");
    assert_eq!(session.retries().len(), Session::MAX_RETRIES);
    // The bound is per session: a later barrier whose probe is lost is not retried.
    let err = session.barrier("again", false, BARRIER_WAIT).unwrap_err();
    assert!(matches!(err, CheckError::NothingObserved { .. }), "{err:?}");
    assert_eq!(session.retries().len(), Session::MAX_RETRIES);
    drop(session);
    assert_eq!(stack.lose_sent, 100 - (Session::MAX_RETRIES + 2));
}

#[test]
fn a_barrier_without_the_address_family_is_unsupported() {
    let mut stack = FakeStack::new();
    let mut session = Session::new(&mut stack);
    match session.barrier("barrier", true, BARRIER_WAIT) {
        Err(CheckError::Dut {
            source: DutError::NotSupported { what },
            ..
        }) => assert!(what.contains("no IPv6 address"), "{what}"),
        other => panic!("{other:?}"),
    }
}

/// `replay` refuses a DUT that lacks a plane the scenario uses before anything runs, as
/// `run_one` refuses one for a check; the fake stack, which has them, runs it.
#[test]
fn replay_refuses_a_dut_without_the_planes_the_scenario_uses() {
    struct NoLink(Endpoints);
    impl Dut for NoLink {
        fn name(&self) -> &str {
            "no-link"
        }
        fn endpoints(&self) -> &Endpoints {
            &self.0
        }
    }
    let scenario = FakeScenario::new(&[1]);
    let mut bare = NoLink(FakeStack::new().endpoints().clone());
    let replayed = crate::engine::scenario::replay(
        &scenario,
        &mut bare,
        crate::models::profile::ProfileName::Linux,
    );
    match replayed.result {
        Err(CheckError::Dut {
            step,
            source: DutError::NotSupported { what },
        }) => {
            assert_eq!(step, "set-up");
            assert_eq!(
                what,
                "an IP host on an Ethernet link: the DUT has no link of its own"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(replayed.trace.is_empty());
    let mut stack = FakeStack::new();
    let replayed = crate::engine::scenario::replay(
        &scenario,
        &mut stack,
        crate::models::profile::ProfileName::Linux,
    );
    assert!(replayed.result.is_ok(), "{:?}", replayed.result);
}
