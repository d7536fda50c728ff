//! The scenario runner on smoltcp (in-process, on its virtual clock) and on small fakes
//! around it: what comes late is compared (the quiet period), a segment the stack sends
//! again is judged with the model (retransmission or not), and every call outcome the
//! model has an opinion on is compared. Each test has a DUT that the runner must fail, and
//! most a control that it must pass.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::dut::build::DutKind;
use crate::dut::spoil::{Spoil, Spoiled};
use crate::dut::{Dut, DutError, Endpoints, Link, Sockets, StateAnswer, StateQuery, Tables};
use crate::models::tcp::State;
use crate::suites::tcp::matrix::{cell, path_to};
use crate::wire::Icmpv4Kind;

use SegmentKind::*;

fn smoltcp() -> Box<dyn Dut> {
    DutKind::Smoltcp
        .build(&Needs::scenario(false))
        .expect("smoltcp")
}

fn spoiled(spoil: Spoil) -> Box<dyn Dut> {
    Box::new(Spoiled::new(
        smoltcp(),
        spoil,
        crate::engine::barrier::host_machinery,
        Arc::new(AtomicUsize::new(0)),
    ))
}

fn scenario(events: Vec<TcpEvent>) -> TcpScenario {
    TcpScenario {
        name: "unit".into(),
        profile: ProfileName::Rfc,
        ipv6: false,
        peer_mss: Some(1460),
        events,
    }
}

fn peer(kind: SegmentKind, seq: SeqAt, ack: AckAt) -> TcpEvent {
    let len = if kind == Data { 10 } else { 0 };
    TcpEvent::Peer(PeerSegment {
        kind,
        seq,
        ack,
        len,
    })
}

/// Runs `s` on `dut`: the result and the rendered trace.
fn run(dut: &mut dyn Dut, s: &TcpScenario) -> (Result<(), CheckError>, String) {
    let mut session = Session::with_profile(dut, s.profile);
    let result = run_scenario(&mut session, s, 5000);
    let text = session.trace().render(session.host_names());
    (result, text)
}

/// The step and the differences of a mismatch.
fn mismatch(result: Result<(), CheckError>, trace: &str) -> (String, Vec<String>) {
    match result {
        Err(CheckError::Mismatch { step, differences }) => (step, differences),
        other => panic!("expected a mismatch, got {other:?}\n{trace}"),
    }
}

fn passes(dut: &mut dyn Dut, s: &TcpScenario) -> String {
    let (result, trace) = run(dut, s);
    if let Err(e) = result {
        panic!("{e}\n{trace}");
    }
    trace
}

// --- The quiet period ---------------------------------------------------------------

/// smoltcp acknowledges text the peer sends after its FIN (RFC 9293 §3.10.7.4, seventh:
/// in CLOSE-WAIT "ignore the segment text"), and does so 10 ms later, its ACK delay: the
/// runner used to close the sockets before the virtual clock got there, and passed it.
#[test]
fn a_late_answer_fails_in_the_quiet_period() {
    let s = cell(
        ProfileName::Rfc,
        false,
        State::CloseWait,
        PeerSegment::next(Data),
    );
    let (result, trace) = run(smoltcp().as_mut(), &s);
    let (step, differences) = mismatch(result, &trace);
    assert_eq!(step, "quiet period after the last event");
    assert!(
        differences[0].starts_with(
            "the stack sent . 1:1(0) ack 12 10.000 ms after the last event, in the quiet \
             period of 500.000 ms the model expected nothing"
        ),
        "{differences:?}"
    );
    // The ladder shows it against the quiet period.
    assert!(
        differences
            .iter()
            .any(|d| d.contains("(quiet for 500.000 ms: nothing)")),
        "{differences:?}"
    );
}

/// The quiet period is the stack's time: on the virtual clock the sockets are closed
/// 500 ms after the last event, and the run costs no real time.
#[test]
fn the_quiet_period_is_virtual_time_on_smoltcp() {
    let s = cell(
        ProfileName::Rfc,
        false,
        State::Established,
        PeerSegment::next(Ack),
    );
    let started = std::time::Instant::now();
    let trace = passes(smoltcp().as_mut(), &s);
    assert!(started.elapsed() < std::time::Duration::from_millis(400));
    let close = trace
        .lines()
        .find(|l| l.contains("setsockopt"))
        .expect("the clean-up");
    assert!(close.trim_start().starts_with("500.000"), "{trace}");
}

/// A copy of the stack's first segment (its SYN-ACK) that arrives once the stack has gone
/// quiet, after the peer acknowledged it: the spoiler's `ExtraLate`. It used to pass.
#[test]
fn a_late_copy_of_an_acknowledged_segment_fails() {
    let s = cell(
        ProfileName::Rfc,
        false,
        State::Established,
        PeerSegment::next(Ack),
    );
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(spoiled(Spoil::ExtraLate).as_mut(), &s);
    let (step, differences) = mismatch(result, &trace);
    assert_eq!(step, "quiet period after the last event");
    assert!(
        differences[0].starts_with("the stack sent S. 0:0(0) ack 1"),
        "{differences:?}"
    );
    assert!(
        differences[0].contains(
            "(a repeat, but no retransmission: the peer acknowledged all of it (SND.UNA 1, \
             the segment ends at 1))"
        ),
        "{differences:?}"
    );
}

// --- Segments sent again ------------------------------------------------------------

/// What [`Resender`] does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Sends its last FIN again in answer to every segment of the peer's.
    FinInAnswer,
    /// Sends every FIN twice at once.
    FinTwice,
}

/// smoltcp that sends its FIN again where it should not (or where a timer could have).
struct Resender {
    inner: Box<dyn Dut>,
    how: Resend,
    /// The last FIN the stack sent.
    fin: Option<Vec<u8>>,
    /// Frames to hand over before anything else.
    queue: VecDeque<Vec<u8>>,
    /// A FIN to send once the stack has answered the peer's segment.
    pending: Option<Vec<u8>>,
}

impl Resender {
    fn new(how: Resend) -> Resender {
        Resender {
            inner: smoltcp(),
            how,
            fin: None,
            queue: VecDeque::new(),
            pending: None,
        }
    }

    /// Takes note of a frame the stack sent; returns the frames to hand over for it.
    fn seen(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let fin = Frame::parse(&bytes)
            .ok()
            .and_then(|f| f.as_tcp().map(|s| s.flags.contains(TcpFlags::FIN)))
            .unwrap_or(false);
        if !fin {
            return vec![bytes];
        }
        self.fin = Some(bytes.clone());
        if self.how == Resend::FinTwice {
            vec![bytes.clone(), bytes]
        } else {
            vec![bytes]
        }
    }
}

impl Dut for Resender {
    fn name(&self) -> &str {
        "resender"
    }

    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }

    fn virtual_now(&self) -> Option<Instant> {
        self.inner.virtual_now()
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for Resender {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        let parsed = Frame::parse(frame).ok();
        let echo = parsed.as_ref().is_some_and(|f| {
            matches!(f.transport(), Some(Transport::Icmpv4(m))
                if matches!(m.kind(), Icmpv4Kind::EchoRequest { .. }))
        });
        if echo {
            // The barrier: what the stack said so far, then the FIN sent again, then the
            // echo reply.
            while let Some(bytes) = self.inner.recv_frame(std::time::Instant::now())? {
                let out = self.seen(bytes);
                self.queue.extend(out);
            }
            if let Some(fin) = self.pending.take() {
                self.queue.push_back(fin);
            }
        } else if self.how == Resend::FinInAnswer
            && parsed.as_ref().is_some_and(|f| f.as_tcp().is_some())
        {
            self.pending = self.fin.clone();
        }
        self.inner.send_frame(frame)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        if let Some(bytes) = self.queue.pop_front() {
            return Ok(Some(bytes));
        }
        let Some(bytes) = self.inner.recv_frame(deadline)? else {
            return Ok(None);
        };
        let mut out: VecDeque<_> = self.seen(bytes).into();
        let first = out.pop_front();
        self.queue.extend(out);
        Ok(first)
    }
}

impl Sockets for Resender {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.inner.call(call)
    }
}

impl Tables for Resender {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.inner.query(query)
    }
}

/// ESTABLISHED, SHUT_WR (FIN-WAIT-1, the FIN out), 20 ms of a RECEIVE that times out
/// (virtual time passes), then `probe`.
fn fin_then(probe: TcpEvent) -> TcpScenario {
    let mut events = path_to(State::Established);
    events.extend([TcpEvent::ShutdownWrite, TcpEvent::Receive(10), probe]);
    scenario(events)
}

/// The FIN sent again in answer to a duplicate ACK while it is outstanding: a timer could
/// have sent it then, so it is a retransmission, and it is noted (not silently dropped).
#[test]
fn a_fin_sent_again_while_outstanding_is_a_noted_retransmission() {
    let s = fin_then(peer(Ack, SeqAt::RcvNxt, AckAt::Una));
    let control = passes(smoltcp().as_mut(), &s);
    assert!(!control.contains("retransmission"), "{control}");
    let trace = passes(&mut Resender::new(Resend::FinInAnswer), &s);
    assert!(
        trace.contains(
            "# F. 1:1(0) ack 1 taken as a retransmission: the same sequence space went out \
             20.000 ms before and is still unacknowledged (SND.UNA 1)"
        ),
        "{trace}"
    );
}

/// The FIN sent again in answer to the ACK of that very FIN, where the model predicts
/// silence: the peer has it, no timer sends it. It used to be dropped as a retransmission.
#[test]
fn a_fin_sent_again_after_its_acknowledgment_fails() {
    let s = fin_then(peer(Ack, SeqAt::RcvNxt, AckAt::Nxt));
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(&mut Resender::new(Resend::FinInAnswer), &s);
    let (step, differences) = mismatch(result, &trace);
    assert!(step.starts_with("event 6 of 6"), "{step}");
    assert_eq!(
        differences[0],
        "the stack sent F. 1:1(0) ack 1, the model expected nothing (a repeat, but no \
         retransmission: the peer acknowledged all of it (SND.UNA 2, the segment ends at 2))"
    );
}

/// The same where the model predicts an acknowledgment (of the peer's data): the FIN sent
/// again is compared as part of the answer, and named.
#[test]
fn a_fin_sent_again_where_an_ack_is_due_fails_named() {
    let s = fin_then(peer(Data, SeqAt::RcvNxt, AckAt::Nxt));
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(&mut Resender::new(Resend::FinInAnswer), &s);
    let (_, differences) = mismatch(result, &trace);
    assert!(
        differences[0].starts_with("ACK of data: flags expected ., observed F.")
            && differences[0].ends_with("(SND.UNA 2, the segment ends at 2))"),
        "{differences:?}"
    );
    // While the FIN is outstanding, the same answer is a retransmission and the ACK due.
    let s = fin_then(peer(Data, SeqAt::RcvNxt, AckAt::Una));
    let trace = passes(&mut Resender::new(Resend::FinInAnswer), &s);
    assert!(trace.contains("taken as a retransmission"), "{trace}");
}

/// A FIN sent twice at once is no retransmission: no timer fires that soon. It used to be
/// dropped like one.
#[test]
fn a_fin_sent_twice_at_once_fails() {
    let mut events = path_to(State::Established);
    events.push(TcpEvent::ShutdownWrite);
    let s = scenario(events);
    let (result, trace) = run(&mut Resender::new(Resend::FinTwice), &s);
    let (step, differences) = mismatch(result, &trace);
    assert!(step.starts_with("event 4 of 4 (ShutdownWrite)"), "{step}");
    assert_eq!(
        differences[0],
        "the stack sent F. 1:1(0) ack 1, the model expected nothing (a repeat, but no \
         retransmission: it left 0.000 ms after the copy it repeats, sooner than any \
         retransmission timer (1.000 ms))"
    );
}

// --- Call outcomes ------------------------------------------------------------------

/// The first call's outcome misreported (the spoiler's `CallOutcome`): LISTEN answers
/// EINVAL where the model says it succeeds. It used to be "not compared".
#[test]
fn a_misreported_listen_fails() {
    let s = scenario(path_to(State::Established));
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(spoiled(Spoil::CallOutcome).as_mut(), &s);
    let (step, differences) = mismatch(result, &trace);
    assert!(step.starts_with("event 1 of 3 (Listen)"), "{step}");
    assert_eq!(differences[0], "Listen: expected ok, observed EINVAL");
}

/// The harness's own calls are held to what they were asked: a socket that was not made
/// (the first call of an active open, misreported) ends the scenario.
#[test]
fn a_misreported_setup_call_fails() {
    let s = scenario(path_to(State::SynSent));
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(spoiled(Spoil::CallOutcome).as_mut(), &s);
    let (_, differences) = mismatch(result, &trace);
    assert!(
        differences[0].ends_with(": expected ok, observed EINVAL (22)"),
        "{differences:?}"
    );
}

/// smoltcp whose RECEIVE hands over the right number of bytes, the first one wrong.
struct WrongByte(Box<dyn Dut>);

impl Dut for WrongByte {
    fn name(&self) -> &str {
        "wrong byte"
    }

    fn endpoints(&self) -> &Endpoints {
        self.0.endpoints()
    }

    fn virtual_now(&self) -> Option<Instant> {
        self.0.virtual_now()
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        self.0.link()
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        self.0.tables()
    }
}

impl Sockets for WrongByte {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        Ok(match self.0.call(call)? {
            CallOutcome::Data(mut d) if !d.is_empty() => {
                d[0] = b'q';
                CallOutcome::Data(d)
            }
            other => other,
        })
    }
}

/// RECEIVE is compared byte for byte (the peer's data), not by its length alone.
#[test]
fn received_data_is_compared_byte_for_byte() {
    let mut events = path_to(State::Established);
    events.extend([
        TcpEvent::Peer(PeerSegment::next(Data)),
        TcpEvent::Receive(10),
    ]);
    let s = scenario(events);
    passes(smoltcp().as_mut(), &s);
    let (result, trace) = run(&mut WrongByte(smoltcp()), &s);
    let (_, differences) = mismatch(result, &trace);
    assert_eq!(
        differences[0],
        "Receive(10): expected data 10 bytes (\"pppppppppp\"), observed data 10 bytes \
         (\"qppppppppp\")"
    );
}

/// SHUT_WR on a connection that is gone draws ENOTCONN (RFC 9293 §3.10.4: "connection
/// does not exist"); on an open one, `ok`.
#[test]
fn shutdown_outcomes_follow_the_model() {
    let mut m = Tcp::new(Config::ipv4(TcpDeviation::profile(ProfileName::Rfc)));
    assert_eq!(
        m.handle_call(Call::ShutdownWrite),
        vec![Output::Error(tcp::AppError::InvalidState)]
    );
    let mut events = path_to(State::Established);
    events.push(TcpEvent::ShutdownWrite);
    passes(smoltcp().as_mut(), &scenario(events));
}
