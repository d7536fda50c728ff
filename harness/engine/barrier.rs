//! The one barrier: everything the DUT sent in answer to what came before, proven by a
//! probe of the harness's own instead of a clock.
//!
//! A barrier sends a **probe** (a frame of the harness's machinery, never recorded) and
//! reads what the DUT sends until the probe's **evidence** is complete: the DUT handles a
//! link's frames in order, so once the evidence is back (the echo reply of a host or a
//! router, the copies of a broadcast out of every other port of a switch) everything the
//! DUT did before the probe has come out. Each frame read is classed by the probe
//! ([`Probe::classify`], [`Class`]):
//!
//! - evidence of the probe out of a port: not recorded; the barrier is complete once
//!   evidence came out of every port it awaits ([`Plan::awaited`]);
//! - other machinery (a copy of an earlier probe): dropped, not recorded;
//! - machinery to answer (the router's ARP request for the barrier's own host): not
//!   recorded, and the answer goes back, not recorded either, into the port it came from;
//! - a frame of the conversation: recorded and kept, in the order read;
//! - a frame that ends the barrier (a router owes nothing before the reply): recorded, and
//!   the barrier fails with the probe's error.
//!
//! A frame that does not parse is classed by the probe too: a host keeps it as
//! conversation, the forwarding suite fails on it, the switch suite keeps it and names it.
//!
//! When the evidence is not complete in time, the one retry the harness allows itself
//! applies ([`Plan::retry`]): only when the DUT's receive counter
//! ([`Link::frames_delivered`](crate::dut::Link::frames_delivered)) provably did not move,
//! that is the probe never reached the DUT, is a fresh probe sent, at most
//! [`Session::MAX_RETRIES`] times per session, each retry noted in the trace and counted
//! in [`Session::retries`]. A probe the DUT received and left unanswered ends the barrier
//! ([`Ended::TimedOut`]) and its user says what that means for the check.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dut::DutError;
use crate::dut::recorder::Recorder;
use crate::engine::expect::Observed;
use crate::engine::session::{CheckError, Session};
use crate::time::{Duration, Instant};
use crate::wire::{
    Frame, Icmpv4Kind, Icmpv4Message, Icmpv6Kind, Icmpv6Message, MacAddr, ParseError, Transport,
};

/// Where a barrier's probe goes in, and how its frames are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A host stack's one link (`Link::send_frame`, `Link::recv_frame`): frames are port 0,
    /// recorded without a port and stamped by the recorder (the kernel's timestamp where
    /// the DUT has one).
    Host,
    /// Into this port of a DUT with several (`Link::send_frame_on`); frames are read from
    /// every port (`Link::recv_frame_any`) and recorded with their port and the time they
    /// were read.
    Port(usize),
}

/// How one barrier runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where the probe goes in.
    pub entry: Entry,
    /// The ports the probe's evidence must come out of (`{0}` for a host).
    pub awaited: BTreeSet<usize>,
    /// How long one probe waits for its evidence.
    pub timeout: Duration,
    /// After the evidence is complete, read whatever is already queued behind it too
    /// (without waiting): a switch's copies of one frame out of several ports.
    pub drain: bool,
    /// Record the conversation's frames as they are read; `false`: the caller records the
    /// frames it gets back itself (a switch's trace reads port by port).
    pub record: bool,
    /// Send a fresh probe when this one provably never reached the DUT (its receive
    /// counter did not move); `false`: never retried.
    pub retry: bool,
}

/// One frame read during a barrier, as the probe sees it.
#[derive(Debug)]
pub struct Seen<'a> {
    /// The port it came out of (0 on a host's link).
    pub port: usize,
    /// The frame as read.
    pub bytes: &'a [u8],
    /// The frame parsed, or why it does not parse.
    pub parsed: &'a Result<Frame, ParseError>,
    /// Read after the evidence was complete (see [`Plan::drain`]).
    pub draining: bool,
}

impl Seen<'_> {
    /// The frame in one line (its summary, or how long it is when it does not parse).
    pub fn summary(&self) -> String {
        self.parsed.as_ref().map_or_else(
            |_| format!("{} bytes that do not parse", self.bytes.len()),
            Frame::summary,
        )
    }
}

/// What a frame read during a barrier is.
#[derive(Debug)]
pub enum Class {
    /// Evidence of the probe out of this port (its reply, a copy of it): not recorded.
    Evidence,
    /// Harness machinery that is no evidence (a copy of an earlier probe): dropped, not
    /// recorded.
    Machinery,
    /// Harness machinery to answer (the DUT resolving the barrier's own host): not
    /// recorded; these bytes are sent back, not recorded either, into the port it came
    /// out of.
    Answer(Vec<u8>),
    /// A frame of the conversation: recorded (see [`Plan::record`]) and kept.
    Conversation,
    /// A frame that ends the barrier: recorded (see [`Plan::record`]), and the barrier
    /// fails with this error.
    Fail(CheckError),
}

/// The probe of one barrier: what it sends and how it reads what comes back.
pub trait Probe {
    /// The probe's frame (after [`Probe::renew`], the fresh one).
    fn frame(&self) -> Vec<u8>;
    /// What `seen` is; an error ends the barrier at once, the frame unrecorded.
    fn classify(&mut self, seen: &Seen<'_>) -> Result<Class, CheckError>;
    /// The probe in a few words, for the note of a retry (`the barrier probe (echo 3)`).
    fn describe(&self) -> String {
        "the barrier probe".into()
    }
    /// Makes the next probe after this one was lost (a fresh number, so that a late
    /// answer to the lost one is never taken for the new one's).
    fn renew(&mut self) {}
}

/// A frame of the conversation read during a barrier.
#[derive(Debug, Clone)]
pub struct Received {
    /// The port it came out of (0 on a host's link).
    pub port: usize,
    /// When: the time it was recorded with, or, when the barrier does not record, when it
    /// was read.
    pub at: Instant,
    /// When it left the DUT by the DUT's own stamp where it has one (else `at`): unlike
    /// `at`, never moved after a harness event recorded before the frame was read.
    pub left: Instant,
    /// The frame as read.
    pub bytes: Vec<u8>,
    /// The frame parsed, or why it does not parse.
    pub parsed: Result<Frame, ParseError>,
}

/// How a barrier ended (a DUT error or a [`Class::Fail`] is a [`CheckError`] instead).
#[derive(Debug)]
pub enum Ended {
    /// The evidence is complete: the conversation's frames read before it (and, with
    /// [`Plan::drain`], queued behind it), in the order read.
    Complete(Vec<Received>),
    /// The evidence did not come (and no retry applied).
    TimedOut {
        /// The conversation's frames read meanwhile, in the order read.
        frames: Vec<Received>,
        /// The awaited ports the evidence never came out of.
        missing: BTreeSet<usize>,
    },
}

/// The echo identifier of a host stack's barrier probe ("nc").
pub const HOST_ECHO_ID: u16 = 0x6e63;

/// Whether `bytes` is an ICMP (v4 or v6) echo reply with identifier `id`: the answer to
/// an [`Echo`] probe with that identifier, whatever its number.
pub fn is_echo_reply(bytes: &[u8], id: u16) -> bool {
    match Frame::parse(bytes).as_ref().ok().and_then(Frame::transport) {
        Some(Transport::Icmpv4(m)) => {
            matches!(m.kind(), Icmpv4Kind::EchoReply { id: i, .. } if i == id)
        }
        Some(Transport::Icmpv6(m)) => {
            matches!(m.kind(), Icmpv6Kind::EchoReply { id: i, .. } if i == id)
        }
        _ => false,
    }
}

/// The harness's machinery among the frames a host stack sends: the replies to its
/// barrier probes (what a spoiler must leave alone, [`crate::dut::spoil`]).
pub fn host_machinery(bytes: &[u8]) -> bool {
    is_echo_reply(bytes, HOST_ECHO_ID)
}

/// An ICMP echo request of the harness's machinery (payload `barrier`), and the test for
/// its reply: the barrier probe of a host stack and of a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// The harness's end (the Ethernet source).
    pub src_mac: MacAddr,
    /// The DUT's end.
    pub dst_mac: MacAddr,
    /// The addresses, source and destination.
    pub ips: EchoIps,
    /// The echo identifier.
    pub id: u16,
    /// The echo sequence number.
    pub seq: u16,
}

/// The addresses of an [`Echo`], of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoIps {
    /// ICMPv4: from, to.
    V4(Ipv4Addr, Ipv4Addr),
    /// ICMPv6: from, to.
    V6(Ipv6Addr, Ipv6Addr),
}

impl Echo {
    /// The echo request.
    pub fn request(&self) -> Frame {
        let data = b"barrier".to_vec();
        match self.ips {
            EchoIps::V4(src, dst) => Frame::icmpv4(
                self.src_mac,
                self.dst_mac,
                src,
                dst,
                Icmpv4Message::echo_request(self.id, self.seq, data),
            ),
            EchoIps::V6(src, dst) => Frame::icmpv6(
                self.src_mac,
                self.dst_mac,
                src,
                dst,
                Icmpv6Message::echo_request(self.id, self.seq, data),
            ),
        }
    }

    /// Whether `frame` is the echo reply to this request (its identifier and number).
    pub fn is_reply(&self, frame: &Frame) -> bool {
        let (id, seq) = (self.id, self.seq);
        match frame.transport() {
            Some(Transport::Icmpv4(m)) => m.kind() == Icmpv4Kind::EchoReply { id, seq },
            Some(Transport::Icmpv6(m)) => m.kind() == Icmpv6Kind::EchoReply { id, seq },
            _ => false,
        }
    }
}

/// A host stack's barrier: the echo reply is the evidence, every other frame the
/// conversation; a lost echo is renewed with the next sequence number.
impl Probe for Echo {
    fn frame(&self) -> Vec<u8> {
        self.request().emit()
    }

    fn classify(&mut self, seen: &Seen<'_>) -> Result<Class, CheckError> {
        Ok(match seen.parsed {
            Ok(frame) if self.is_reply(frame) => Class::Evidence,
            _ => Class::Conversation,
        })
    }

    fn describe(&self) -> String {
        format!("the barrier probe (echo {})", self.seq)
    }

    fn renew(&mut self) {
        self.seq = self.seq.wrapping_add(1);
    }
}

impl Session<'_> {
    /// Everything the stack sent in answer to what came before, with no clock involved.
    ///
    /// The harness sends an ICMP echo request and reads frames until the echo reply comes
    /// back. The stack handles frames from one link in order and answers a segment while it
    /// handles them, so whatever it sent in answer to the earlier frames (and calls) arrives
    /// before the reply: an empty list proves silence without waiting for a timeout.
    /// The probe and its reply are harness machinery and are not recorded; every other frame
    /// is. `timeout` bounds the wait for a stack that does not answer pings at all. A probe
    /// that provably never reached the stack is sent again (see [`crate::engine::barrier`]).
    pub fn barrier(
        &mut self,
        step: &str,
        ipv6: bool,
        timeout: Duration,
    ) -> Result<Vec<Observed>, CheckError> {
        Ok(self
            .barrier_timed(step, ipv6, timeout)?
            .into_iter()
            .map(|(_, o)| o)
            .collect())
    }

    /// [`Session::barrier`], each frame with the scenario time it left the stack by the
    /// target's own stamp (virtual clock, kernel timestamp), else when it was read: not
    /// moved after the harness's own events as the trace's times are
    /// ([`Session::last_left`]).
    pub fn barrier_timed(
        &mut self,
        step: &str,
        ipv6: bool,
        timeout: Duration,
    ) -> Result<Vec<(Instant, Observed)>, CheckError> {
        let e = self.endpoints();
        let not_supported = |what: &str| CheckError::Dut {
            step: step.into(),
            source: DutError::NotSupported {
                what: format!("barrier: the target has no {what} address"),
            },
        };
        let ips = if ipv6 {
            let (Some(peer), Some((stack, _))) = (e.peer_ipv6, e.stack_ipv6) else {
                return Err(not_supported("IPv6"));
            };
            EchoIps::V6(peer, stack)
        } else {
            let (Some(peer), Some((stack, _))) = (e.peer_ipv4, e.stack_ipv4) else {
                return Err(not_supported("IPv4"));
            };
            EchoIps::V4(peer, stack)
        };
        let mut probe = Echo {
            src_mac: e.harness_mac,
            dst_mac: e.stack_mac,
            ips,
            id: HOST_ECHO_ID,
            seq: self.barrier_seq_mut().wrapping_add(1),
        };
        let plan = Plan {
            entry: Entry::Host,
            awaited: [0].into(),
            timeout,
            drain: false,
            record: true,
            retry: true,
        };
        let ended = self.run_barrier(step, &plan, &mut probe);
        *self.barrier_seq_mut() = probe.seq;
        match ended? {
            Ended::Complete(frames) => Ok(frames
                .into_iter()
                .filter(|f| !matches!(&f.parsed, Ok(frame) if !self.is_relevant(frame)))
                .map(|f| {
                    (
                        f.left,
                        Observed {
                            bytes: f.bytes,
                            parsed: f.parsed,
                        },
                    )
                })
                .collect()),
            Ended::TimedOut { .. } => Err(CheckError::NothingObserved {
                step: format!("{step} (echo reply to the barrier probe)"),
                waited: timeout,
            }),
        }
    }

    /// Runs one barrier: sends `probe` as `plan` says and reads until its evidence is
    /// complete (see the [module doc](self)). `step` names the step in errors and notes.
    pub fn run_barrier(
        &mut self,
        step: &str,
        plan: &Plan,
        probe: &mut dyn Probe,
    ) -> Result<Ended, CheckError> {
        let (recorder, retries) = self.barrier_parts();
        Run {
            recorder,
            step,
            plan,
        }
        .run(probe, retries)
    }
}

/// What reading one frame came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// No frame came by the deadline.
    Nothing,
    /// Evidence of the probe out of this port.
    Evidence(usize),
    /// Anything else (handled).
    Other,
}

/// One barrier running on a session's recorder.
struct Run<'r, 't, 'p> {
    recorder: &'r mut Recorder<'t>,
    step: &'p str,
    plan: &'p Plan,
}

impl Run<'_, '_, '_> {
    fn dut_error(&self, source: crate::dut::DutError) -> CheckError {
        CheckError::Dut {
            step: self.step.into(),
            source,
        }
    }

    fn run(
        mut self,
        probe: &mut dyn Probe,
        retries: &mut Vec<String>,
    ) -> Result<Ended, CheckError> {
        let mut frames = Vec::new();
        loop {
            let before = if self.plan.retry {
                self.recorder.frames_delivered()
            } else {
                None
            };
            let ingress = match self.plan.entry {
                Entry::Host => 0,
                Entry::Port(port) => port,
            };
            self.send(ingress, &probe.frame())?;
            let deadline = self.recorder.deadline_after(self.plan.timeout);
            let mut missing = self.plan.awaited.clone();
            while !missing.is_empty() {
                match self.read(probe, deadline, false, &mut frames)? {
                    Read::Nothing => break,
                    Read::Evidence(port) => {
                        missing.remove(&port);
                    }
                    Read::Other => {}
                }
            }
            if missing.is_empty() {
                let lag = self.recorder.answer_lag();
                if self.plan.entry == Entry::Host && lag.total_micros() > 0 {
                    // A stack that answers some frames later than the echo
                    // (`Dut::answer_lag`): what it says within its lag still answers what
                    // came before the probe.
                    let until = self.recorder.deadline_after(lag);
                    while self.read(probe, until, true, &mut frames)? != Read::Nothing {}
                }
                while self.plan.drain {
                    // Only what is queued already: the deadline is now.
                    let now = self.recorder.deadline_after(Duration::ZERO);
                    if self.read(probe, now, true, &mut frames)? == Read::Nothing {
                        break;
                    }
                }
                return Ok(Ended::Complete(frames));
            }
            // No evidence. Only when the DUT's interface provably never received the probe
            // (its receive counter did not move) is that the harness's own loss, and a
            // fresh probe is sent, each retry counted and noted; a DUT that got the probe
            // and did not answer ends the barrier as it is.
            if self.plan.retry {
                let after = self.recorder.frames_delivered();
                let lost = matches!((before, after), (Some(b), Some(a)) if a == b);
                if lost && retries.len() < Session::MAX_RETRIES {
                    let what = format!(
                        "{}: {} never reached the stack's interface (its receive counter stayed at {}): sent again",
                        self.step,
                        probe.describe(),
                        after.unwrap_or_default()
                    );
                    self.recorder.note(format!("harness retry: {what}"));
                    retries.push(what);
                    probe.renew();
                    continue;
                }
            }
            return Ok(Ended::TimedOut { frames, missing });
        }
    }

    /// Sends machinery (a probe, an answer) into `port`, unrecorded.
    fn send(&mut self, port: usize, bytes: &[u8]) -> Result<(), CheckError> {
        match self.plan.entry {
            Entry::Host => self.recorder.send_unrecorded(bytes),
            Entry::Port(_) => self.recorder.send_unrecorded_on(port, bytes),
        }
        .map_err(|e| self.dut_error(e))
    }

    /// Reads and handles one frame (by `deadline`).
    fn read(
        &mut self,
        probe: &mut dyn Probe,
        deadline: std::time::Instant,
        draining: bool,
        frames: &mut Vec<Received>,
    ) -> Result<Read, CheckError> {
        let read = match self.plan.entry {
            Entry::Host => self
                .recorder
                .recv_unrecorded(deadline)
                .map(|f| f.map(|bytes| (0, bytes, None))),
            Entry::Port(_) => self
                .recorder
                .recv_any_unrecorded(deadline)
                .map(|f| f.map(|(port, bytes, at)| (port, bytes, Some(at)))),
        }
        .map_err(|e| self.dut_error(e))?;
        let Some((port, bytes, at)) = read else {
            return Ok(Read::Nothing);
        };
        let parsed = Frame::parse(&bytes);
        let seen = Seen {
            port,
            bytes: &bytes,
            parsed: &parsed,
            draining,
        };
        match probe.classify(&seen)? {
            // Evidence read while draining proves nothing more: dropped like machinery.
            Class::Evidence if !draining => return Ok(Read::Evidence(port)),
            Class::Evidence | Class::Machinery => {}
            Class::Answer(reply) => self.send(port, &reply)?,
            Class::Conversation => {
                let recorded = self.record(port, at, &bytes);
                let left = match (self.plan.record, at) {
                    (true, None) => self.recorder.last_left(),
                    _ => recorded,
                };
                frames.push(Received {
                    port,
                    at: recorded,
                    left,
                    bytes,
                    parsed,
                });
            }
            Class::Fail(error) => {
                self.record(port, at, &bytes);
                return Err(error);
            }
        }
        Ok(Read::Other)
    }

    /// Records a frame of the conversation (when the plan says so); returns its time.
    fn record(&mut self, port: usize, read_at: Option<Instant>, bytes: &[u8]) -> Instant {
        match (self.plan.record, read_at) {
            (true, None) => {
                self.recorder.record_received(bytes.to_vec());
                self.recorder.last_received()
            }
            (true, Some(at)) => {
                self.recorder.record_received_on(at, port, bytes.to_vec());
                at
            }
            (false, at) => at.unwrap_or_else(|| self.recorder.now()),
        }
    }
}

#[cfg(test)]
mod tests;
