//! The barrier abstraction on in-process DUTs: the engine's own echo probe on the fake
//! host stack of `engine/tests.rs`, and a test probe on a scripted DUT with ports.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant as WallInstant;

use super::{Class, Echo, EchoIps, Ended, Entry, Plan, Probe, Seen};
use crate::dut::{Dut, DutError, Endpoints, Link};
use crate::engine::tests::FakeStack;
use crate::engine::{CheckError, Session};
use crate::time::Duration;
use crate::trace::{Direction, EventKind};
use crate::wire::MacAddr;

const WAIT: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// A scripted DUT with ports, and a probe that classes frames by a marker byte.

/// The ether type of the test frames (IEEE local experimental).
const ETHER_TYPE: [u8; 2] = [0x88, 0xb5];

/// A test frame: `kind` then `number` after the Ethernet header.
///
/// Kinds: `P` a probe (evidence when its number is the current probe's, machinery
/// otherwise), `Q` machinery to answer (with `R` and the same number), `F` a frame that
/// ends the barrier, anything else the conversation.
fn tagged(kind: u8, number: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&MacAddr::BROADCAST.0);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
    f.extend_from_slice(&ETHER_TYPE);
    f.extend_from_slice(&[kind, number]);
    f.resize(60, 0);
    f
}

/// The kind and number of a test frame.
fn tag(bytes: &[u8]) -> Option<(u8, u8)> {
    (bytes.get(12..14) == Some(&ETHER_TYPE[..])).then(|| (bytes[14], bytes[15]))
}

/// What the scripted DUT sends when a frame reaches it: (port, bytes) in order.
type Script = Box<dyn FnMut(usize, &[u8]) -> Vec<(usize, Vec<u8>)>>;

/// A DUT with `ports` ports that sends what is queued (`out`, the conversation before the
/// probe), then what `script` makes of each frame that reaches it; it counts the frames
/// that reach it and loses the next `lose` frames the harness sends.
struct Scripted {
    ports: usize,
    endpoints: Endpoints,
    out: VecDeque<(usize, Vec<u8>)>,
    script: Script,
    lose: usize,
    counts: bool,
    delivered: u64,
    /// Every frame the harness sent, lost or not: (port, bytes).
    sent: Vec<(usize, Vec<u8>)>,
}

impl Scripted {
    fn new(ports: usize, script: Script) -> Scripted {
        Scripted {
            ports,
            endpoints: FakeStack::new().endpoints().clone(),
            out: VecDeque::new(),
            script,
            lose: 0,
            counts: true,
            delivered: 0,
            sent: Vec::new(),
        }
    }

    /// A switch: a probe into one port comes out of every other port.
    fn switch(ports: usize) -> Scripted {
        Scripted::new(
            ports,
            Box::new(move |ingress, bytes| {
                (0..ports)
                    .filter(|p| *p != ingress)
                    .map(|p| (p, bytes.to_vec()))
                    .collect()
            }),
        )
    }
}

impl Dut for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(self)
    }
}

impl crate::dut::Link for Scripted {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.send_frame_on(0, frame)
    }

    fn recv_frame(&mut self, deadline: WallInstant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.recv_frame_any(deadline)?.map(|(_, f)| f))
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        self.counts.then_some(self.delivered)
    }

    fn ports(&self) -> usize {
        self.ports
    }

    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        self.sent.push((port, frame.to_vec()));
        if self.lose > 0 {
            self.lose -= 1;
            return Ok(());
        }
        self.delivered += 1;
        let out = (self.script)(port, frame);
        self.out.extend(out);
        Ok(())
    }

    fn recv_frame_any(
        &mut self,
        deadline: WallInstant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        if let Some(f) = self.out.pop_front() {
            return Ok(Some(f));
        }
        std::thread::sleep(deadline.saturating_duration_since(WallInstant::now()));
        Ok(None)
    }
}

/// The test probe: `P` + its number; classes frames by their marker (see [`tagged`]) and
/// remembers what it was shown.
struct Tagged {
    number: u8,
    /// (port, kind, number, draining) of every frame classed.
    seen: Vec<(usize, u8, u8, bool)>,
}

impl Tagged {
    fn new() -> Tagged {
        Tagged {
            number: 1,
            seen: Vec::new(),
        }
    }
}

impl Probe for Tagged {
    fn frame(&self) -> Vec<u8> {
        tagged(b'P', self.number)
    }
    fn classify(&mut self, seen: &Seen<'_>) -> Result<Class, CheckError> {
        let Some((kind, n)) = tag(seen.bytes) else {
            return Ok(Class::Conversation);
        };
        self.seen.push((seen.port, kind, n, seen.draining));
        Ok(match kind {
            b'P' if n == self.number => Class::Evidence,
            b'P' => Class::Machinery,
            b'Q' => Class::Answer(tagged(b'R', n)),
            b'F' => Class::Fail(CheckError::Unexpected {
                step: "test".into(),
                observed: format!("p{}: F{n}", seen.port),
            }),
            _ => Class::Conversation,
        })
    }
    fn describe(&self) -> String {
        format!("test probe {}", self.number)
    }
    fn renew(&mut self) {
        self.number += 1;
    }
}

fn plan(entry: Entry, awaited: &[usize]) -> Plan {
    Plan {
        entry,
        awaited: awaited.iter().copied().collect(),
        timeout: WAIT,
        drain: false,
        record: true,
        retry: false,
    }
}

/// The frames of a trace: (port, direction, bytes).
fn recorded(session: &Session<'_>) -> Vec<(Option<usize>, Direction, Vec<u8>)> {
    session
        .trace()
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Frame {
                direction,
                bytes,
                port,
            } => Some((*port, *direction, bytes.clone())),
            _ => None,
        })
        .collect()
}

/// The notes of a trace.
fn notes(session: &Session<'_>) -> Vec<String> {
    session
        .trace()
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn complete(ended: Ended) -> Vec<super::Received> {
    match ended {
        Ended::Complete(frames) => frames,
        other => panic!("not complete: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn an_echo_barrier_completes_on_the_reply_and_records_none_of_its_machinery() {
    let mut stack = FakeStack::new();
    let e = stack.endpoints().clone();
    let mut probe = Echo {
        src_mac: e.harness_mac,
        dst_mac: e.stack_mac,
        ips: EchoIps::V4(e.peer_ipv4.unwrap(), e.stack_ipv4.unwrap().0),
        id: 0x1234,
        seq: 5,
    };
    let mut session = Session::new(&mut stack);
    let ended = session
        .run_barrier("b", &plan(Entry::Host, &[0]), &mut probe)
        .expect("no DUT error");
    assert!(complete(ended).is_empty());
    assert_eq!(recorded(&session), vec![]);
    assert_eq!(probe.seq, 5, "no retry, no renewal");
    drop(session);
    assert_eq!(stack.echo_requests(), 1);
    assert_eq!(stack.received, vec![probe.request().emit()]);
}

#[test]
fn an_echo_reply_with_another_number_is_no_evidence() {
    let mut stack = FakeStack::new();
    let e = stack.endpoints().clone();
    let mut probe = Echo {
        src_mac: e.harness_mac,
        dst_mac: e.stack_mac,
        ips: EchoIps::V4(e.peer_ipv4.unwrap(), e.stack_ipv4.unwrap().0),
        id: 0x1234,
        seq: 5,
    };
    let mut other = probe.clone();
    other.seq = 4;
    // The stack answers the earlier echo, whose reply is then read as the conversation.
    stack.send_frame(&other.request().emit()).unwrap();
    let mut session = Session::new(&mut stack);
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Host, &[0]), &mut probe)
            .unwrap(),
    );
    assert_eq!(frames.len(), 1);
    let reply = frames[0].parsed.as_ref().expect("parses");
    assert!(other.is_reply(reply) && !probe.is_reply(reply));
    assert_eq!(recorded(&session).len(), 1);
}

#[test]
fn conversation_frames_are_kept_and_recorded_in_the_order_read() {
    let mut dut = Scripted::switch(3);
    dut.out = VecDeque::from([
        (1, tagged(b'C', 1)),
        (0, tagged(b'C', 2)),
        (2, vec![1, 2, 3]), // does not parse: the test probe keeps it
        (1, tagged(b'C', 3)),
    ]);
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Port(0), &[1, 2]), &mut probe)
            .unwrap(),
    );
    let kept: Vec<(usize, Vec<u8>)> = frames.iter().map(|f| (f.port, f.bytes.clone())).collect();
    let expected = vec![
        (1, tagged(b'C', 1)),
        (0, tagged(b'C', 2)),
        (2, vec![1, 2, 3]),
        (1, tagged(b'C', 3)),
    ];
    assert_eq!(kept, expected);
    assert!(frames[2].parsed.is_err());
    let trace: Vec<_> = expected
        .into_iter()
        .map(|(p, b)| (Some(p), Direction::Received, b))
        .collect();
    assert_eq!(recorded(&session), trace, "probe copies are not recorded");
    // Times are the reading times, in order.
    assert!(frames.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn on_a_host_link_frames_are_recorded_without_a_port() {
    let mut dut = Scripted::new(1, Box::new(|_, bytes| vec![(0, bytes.to_vec())]));
    dut.out = VecDeque::from([(0, tagged(b'C', 7))]);
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Host, &[0]), &mut probe)
            .unwrap(),
    );
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].at, session.last_received());
    assert_eq!(
        recorded(&session),
        vec![(None, Direction::Received, tagged(b'C', 7))]
    );
}

#[test]
fn machinery_is_answered_into_its_port_and_never_recorded() {
    // A router that must resolve the barrier host before it answers: a `Q` first, the
    // evidence only once the answer `R` has reached it; copies of an old probe too.
    let mut dut = Scripted::new(
        2,
        Box::new(|port, bytes| match tag(bytes) {
            Some((b'P', n)) => vec![(1, tagged(b'P', 0)), (port, tagged(b'Q', n))],
            Some((b'R', n)) => vec![(port, tagged(b'P', n))],
            _ => vec![],
        }),
    );
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Port(1), &[1]), &mut probe)
            .unwrap(),
    );
    assert!(frames.is_empty());
    assert_eq!(recorded(&session), vec![]);
    drop(session);
    assert_eq!(dut.sent, vec![(1, tagged(b'P', 1)), (1, tagged(b'R', 1))]);
    assert_eq!(
        probe.seen,
        vec![
            (1, b'P', 0, false),
            (1, b'Q', 1, false),
            (1, b'P', 1, false)
        ]
    );
}

#[test]
fn a_frame_that_fails_is_recorded_and_ends_the_barrier_at_once() {
    let mut dut = Scripted::switch(2);
    dut.out = VecDeque::from([
        (1, tagged(b'C', 1)),
        (1, tagged(b'F', 2)),
        (1, tagged(b'C', 3)),
    ]);
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let err = session
        .run_barrier("b", &plan(Entry::Port(0), &[1]), &mut probe)
        .expect_err("F fails");
    assert_eq!(err.to_string(), "test: expected no frame, observed p1: F2");
    assert_eq!(
        recorded(&session),
        vec![
            (Some(1), Direction::Received, tagged(b'C', 1)),
            (Some(1), Direction::Received, tagged(b'F', 2)),
        ]
    );
    drop(session);
    // Nothing was read after it: the third frame and the probe's copy are still queued.
    assert_eq!(
        dut.out,
        VecDeque::from([(1, tagged(b'C', 3)), (1, tagged(b'P', 1))])
    );
}

#[test]
fn nothing_coming_times_out_with_the_awaited_port_missing() {
    let mut dut = Scripted::new(1, Box::new(|_, _| vec![]));
    dut.out = VecDeque::from([(0, tagged(b'C', 1))]);
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let started = WallInstant::now();
    let ended = session
        .run_barrier("b", &plan(Entry::Host, &[0]), &mut probe)
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from(WAIT));
    match ended {
        Ended::TimedOut { frames, missing } => {
            assert_eq!(missing, BTreeSet::from([0]));
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].bytes, tagged(b'C', 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(session.retries().is_empty());
}

#[test]
fn the_host_barrier_fails_with_nothing_observed_when_no_reply_comes() {
    let mut stack = FakeStack::new();
    stack.lose_replies = 1;
    let mut session = Session::new(&mut stack);
    match session.barrier("step 3", false, WAIT) {
        Err(CheckError::NothingObserved { step, waited }) => {
            assert_eq!(step, "step 3 (echo reply to the barrier probe)");
            assert_eq!(waited, WAIT);
        }
        other => panic!("{other:?}"),
    }
    assert!(session.retries().is_empty(), "the stack got the probe");
}

#[test]
fn a_lost_probe_is_renewed_noted_and_counted_then_completes() {
    let mut dut = Scripted::switch(3);
    dut.lose = 1;
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let retry = Plan {
        retry: true,
        ..plan(Entry::Port(2), &[0, 1])
    };
    let frames = complete(session.run_barrier("b", &retry, &mut probe).unwrap());
    assert!(frames.is_empty());
    let what = "b: test probe 1 never reached the stack's interface (its receive counter stayed at 0): sent again";
    assert_eq!(session.retries(), [what.to_string()]);
    assert_eq!(notes(&session), vec![format!("harness retry: {what}")]);
    drop(session);
    assert_eq!(probe.number, 2);
    assert_eq!(dut.sent, vec![(2, tagged(b'P', 1)), (2, tagged(b'P', 2))]);
}

#[test]
fn retries_stop_at_the_session_bound() {
    let mut dut = Scripted::switch(2);
    dut.lose = 100;
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let retry = Plan {
        retry: true,
        ..plan(Entry::Port(0), &[1])
    };
    let ended = session.run_barrier("b", &retry, &mut probe).unwrap();
    assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
    assert_eq!(session.retries().len(), Session::MAX_RETRIES);
    assert_eq!(notes(&session).len(), Session::MAX_RETRIES);
    // The bound is the session's: the next barrier's lost probe is not sent again.
    let ended = session.run_barrier("c", &retry, &mut probe).unwrap();
    assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
    assert_eq!(session.retries().len(), Session::MAX_RETRIES);
    drop(session);
    assert_eq!(dut.sent.len(), Session::MAX_RETRIES + 2);
    assert_eq!(dut.lose, 100 - (Session::MAX_RETRIES + 2));
}

#[test]
fn no_retry_without_proof_of_the_harness_s_own_loss() {
    // The DUT got the probe and stayed silent: its counter moved.
    let mut silent = Scripted::new(2, Box::new(|_, _| vec![]));
    let retry = Plan {
        retry: true,
        ..plan(Entry::Port(0), &[1])
    };
    let mut session = Session::new(&mut silent);
    let ended = session
        .run_barrier("b", &retry, &mut Tagged::new())
        .unwrap();
    assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
    assert!(session.retries().is_empty());
    drop(session);
    assert_eq!(silent.sent.len(), 1);
    // The probe was lost, but the DUT cannot count: a loss is never assumed.
    let mut uncounted = Scripted::switch(2);
    uncounted.lose = 1;
    uncounted.counts = false;
    let mut session = Session::new(&mut uncounted);
    let ended = session
        .run_barrier("b", &retry, &mut Tagged::new())
        .unwrap();
    assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
    assert!(session.retries().is_empty());
    drop(session);
    assert_eq!(uncounted.sent.len(), 1);
    // The probe was provably lost, but the plan does not retry.
    let mut lossy = Scripted::switch(2);
    lossy.lose = 1;
    let mut session = Session::new(&mut lossy);
    let ended = session
        .run_barrier("b", &plan(Entry::Port(0), &[1]), &mut Tagged::new())
        .unwrap();
    assert!(matches!(ended, Ended::TimedOut { .. }), "{ended:?}");
    assert!(session.retries().is_empty());
    drop(session);
    assert_eq!(lossy.sent.len(), 1);
}

#[test]
fn a_multi_port_barrier_completes_only_once_the_probe_came_out_of_every_awaited_port() {
    // The probe comes out of p1, p2 and back out of its ingress p0, never out of p3.
    let script: Script = Box::new(|_, bytes| {
        vec![
            (1, bytes.to_vec()),
            (0, bytes.to_vec()),
            (2, bytes.to_vec()),
        ]
    });
    let mut dut = Scripted::new(4, script);
    let mut session = Session::new(&mut dut);
    let ended = session
        .run_barrier("b", &plan(Entry::Port(0), &[1, 2, 3]), &mut Tagged::new())
        .unwrap();
    match ended {
        Ended::TimedOut { frames, missing } => {
            assert_eq!(missing, BTreeSet::from([3]));
            assert!(frames.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // The same probe out of every other port completes it.
    let mut dut = Scripted::switch(4);
    let mut session = Session::new(&mut dut);
    let mut probe = Tagged::new();
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Port(0), &[1, 2, 3]), &mut probe)
            .unwrap(),
    );
    assert!(frames.is_empty());
    assert_eq!(
        probe.seen,
        vec![
            (1, b'P', 1, false),
            (2, b'P', 1, false),
            (3, b'P', 1, false)
        ]
    );
}

#[test]
fn draining_reads_what_is_queued_behind_the_evidence() {
    // Behind the probe's copies: a late conversation frame and a copy out of the ingress.
    let script: Script = Box::new(|_, bytes| {
        vec![
            (1, bytes.to_vec()),
            (2, bytes.to_vec()),
            (1, tagged(b'C', 9)),
            (0, bytes.to_vec()),
        ]
    });
    let mut dut = Scripted::new(3, script);
    let mut probe = Tagged::new();
    let mut session = Session::new(&mut dut);
    let drain = Plan {
        drain: true,
        record: false,
        ..plan(Entry::Port(0), &[1, 2])
    };
    let frames = complete(session.run_barrier("b", &drain, &mut probe).unwrap());
    let kept: Vec<_> = frames.iter().map(|f| (f.port, f.bytes.clone())).collect();
    assert_eq!(kept, vec![(1, tagged(b'C', 9))]);
    assert_eq!(
        probe.seen,
        vec![
            (1, b'P', 1, false),
            (2, b'P', 1, false),
            (1, b'C', 9, true),
            (0, b'P', 1, true)
        ]
    );
    // `record: false`: the caller records.
    assert_eq!(recorded(&session), vec![]);
    drop(session);
    assert!(dut.out.is_empty());
    // Without draining, what is behind the evidence stays queued.
    let script: Script = Box::new(|_, bytes| vec![(1, bytes.to_vec()), (1, tagged(b'C', 9))]);
    let mut dut = Scripted::new(2, script);
    let mut session = Session::new(&mut dut);
    let frames = complete(
        session
            .run_barrier("b", &plan(Entry::Port(0), &[1]), &mut Tagged::new())
            .unwrap(),
    );
    assert!(frames.is_empty());
    drop(session);
    assert_eq!(dut.out, VecDeque::from([(1, tagged(b'C', 9))]));
}
