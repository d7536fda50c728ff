//! TCP scenarios: a sequence of events run against the [`Tcp`]
//! model and a real stack side by side, every answer compared.
//!
//! A [`TcpScenario`] is plain data (serde), so a failing one — shrunk by proptest — is saved
//! as a regression file and replayed by `netconform replay FILE` against any target.
//!
//! For each event the runner
//! 1. asks the model what the stack must do (segments, data for the application, state);
//! 2. makes it happen on the target (sends the peer's segment, or makes the call);
//! 3. collects what the stack sent with a [barrier](Session::barrier), so that "nothing"
//!    is proven without waiting on a clock;
//! 4. compares segment by segment (flags, sequence and acknowledgment numbers relative to
//!    the initial sequence numbers, length, the options the clause pins), then the call's
//!    outcome (see [Call outcomes](#call-outcomes)), then the TCP state read from the
//!    stack.
//!
//! After the last event the stack gets the time an answer may be delayed
//! ([`QUIET_PERIOD`], RFC 9293 MUST-40's 0.5 s, in the stack's own time), and what it sent
//! on the connection meanwhile is compared with what the model predicts for a period
//! without events: nothing but retransmissions. A segment there is a failure that names
//! it and how late it came. Only then are the scenario's sockets closed. On a stack on a
//! real clock the quiet periods of a batch of scenarios overlap ([`run_scenarios`]).
//!
//! A mismatch ends the scenario with the expected and the observed exchange side by side.
//!
//! # Segments sent again
//!
//! A segment that repeats sequence space the stack already sent is judged with the model.
//! It is a **retransmission** when it is timer-driven (it left at least
//! [`RETRANSMIT_MIN_GAP`] after the last copy of that sequence space), the same bytes
//! (every sequence number it occupies, its SYN and its FIN went out before: nothing in it
//! is new) and still unacknowledged (the model has part of it outstanding, after the event
//! or, for a segment that left the stack before the event began, before it). A
//! retransmission is noted in the trace (`... taken as a retransmission: why`) and set
//! aside; any other repeat (of what the peer acknowledged, in a closed connection, or sent
//! twice at once) is part of the answer and compared like one, its failure saying why it
//! is no retransmission. A segment sent again in answer to the peer's segment while its
//! timer could have fired cannot be told by the frames from a retransmission: it is taken
//! as one, and noted.
//!
//! # Call outcomes
//!
//! Compared with the model: LISTEN and CONNECT (`ok`, or an error where the model refuses
//! the call); SEND (`sent N`, or an error); RECEIVE (the bytes delivered, byte for byte:
//! the peer's, end of stream, the error the model reports, or nothing before the timeout);
//! CLOSE and ABORT (`ok`: the model never refuses them, and `close(2)` always returns 0);
//! SHUTDOWN(SHUT_WR) where the connection is open or opening (`ok`) or gone (CLOSED,
//! TIME-WAIT: `ENOTCONN`, RFC 9293 §3.10.4 "connection does not exist" / "connection
//! closing"). The harness's own calls, which the model does not see, must do what they
//! were asked (the socket and bind of an active open, SO_LINGER 0 before an abort, the
//! close of a dead connection before the next accept: `ok`, the option as set), and ACCEPT
//! must hand over a connection.
//!
//! Not compared, and why:
//! - SHUTDOWN(SHUT_WR) in FIN-WAIT-1, FIN-WAIT-2, CLOSING and LAST-ACK: RFC 9293 §3.10.4
//!   lets FIN-WAIT answer `ok` or "connection closing" and asks "connection closing" in
//!   CLOSING and LAST-ACK, where Linux's `shutdown(2)` returns 0; the model takes no side
//!   (the segments are compared: no second FIN);
//! - SHUTDOWN(SHUT_WR) on a socket the model sees in LISTEN (the old connection's socket
//!   after the listener's fresh incarnation took over): the model follows the listener,
//!   not that socket;
//! - the calls that close the scenario's sockets after its quiet period: they come after
//!   the verdict.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::dut::{CallOutcome, Family, ShutdownHow, SocketCall, SocketId, SocketOption, TcpState};
use crate::engine::expect::Observed;
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome, with_kind};
use crate::engine::{CheckError, Needs, Session};
use crate::models::tcp::{
    self, Call, Config, Flags, Output, SegmentIn, SegmentOut, SeqFrom, State, Tcp, TcpDeviation,
};
use crate::suites::tcp::profile::{self, Phase};
use crate::time::{Duration, Instant};
use crate::wire::{Frame, Network, TcpFlags, TcpOption, TcpSegment, Transport};

use crate::models::profile::Deviation as _;
pub use crate::models::profile::ProfileName;

/// The kinds of segment the peer sends (the FreeBSD tcp-testsuite's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SegmentKind {
    /// SYN.
    Syn,
    /// SYN and ACK.
    SynAck,
    /// SYN and FIN.
    SynFin,
    /// ACK alone.
    Ack,
    /// Data (PSH, ACK).
    Data,
    /// FIN without ACK.
    Fin,
    /// FIN and ACK.
    FinAck,
    /// RST.
    Rst,
    /// RST and ACK.
    RstAck,
}

impl SegmentKind {
    /// Every kind.
    pub const ALL: [SegmentKind; 9] = [
        SegmentKind::Syn,
        SegmentKind::SynAck,
        SegmentKind::SynFin,
        SegmentKind::Ack,
        SegmentKind::Data,
        SegmentKind::Fin,
        SegmentKind::FinAck,
        SegmentKind::Rst,
        SegmentKind::RstAck,
    ];

    /// The control flags of this kind.
    pub fn flags(self) -> Flags {
        let f = Flags::NONE;
        match self {
            SegmentKind::Syn => Flags::SYN,
            SegmentKind::SynAck => Flags::SYN_ACK,
            SegmentKind::SynFin => Flags {
                syn: true,
                fin: true,
                ..f
            },
            SegmentKind::Ack => Flags::ACK,
            SegmentKind::Data => Flags::PSH_ACK,
            SegmentKind::Fin => Flags { fin: true, ..f },
            SegmentKind::FinAck => Flags::FIN_ACK,
            SegmentKind::Rst => Flags::RST,
            SegmentKind::RstAck => Flags::RST_ACK,
        }
    }
}

/// Where the peer puts its sequence number, relative to what the stack expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeqAt {
    /// RCV.NXT − 1 (just before the window).
    RcvNxtMinus1,
    /// RCV.NXT (the left edge).
    RcvNxt,
    /// RCV.NXT + RCV.WND − 1 (the last octet in the window).
    WindowEndMinus1,
    /// RCV.NXT + RCV.WND (just past the window).
    WindowEnd,
    /// The peer's initial sequence number (a retransmitted SYN).
    Isn,
}

impl SeqAt {
    /// The four boundaries of the matrix.
    pub const BOUNDARIES: [SeqAt; 4] = [
        SeqAt::RcvNxtMinus1,
        SeqAt::RcvNxt,
        SeqAt::WindowEndMinus1,
        SeqAt::WindowEnd,
    ];
}

/// Where the peer puts its acknowledgment number, relative to the stack's send space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AckAt {
    /// SND.UNA − 1 (below SND.UNA).
    BelowUna,
    /// SND.UNA.
    Una,
    /// SND.NXT.
    Nxt,
    /// SND.NXT + 1 (beyond what was sent).
    BeyondNxt,
}

impl AckAt {
    /// The four boundaries of the matrix.
    pub const BOUNDARIES: [AckAt; 4] = [AckAt::BelowUna, AckAt::Una, AckAt::Nxt, AckAt::BeyondNxt];
}

/// One segment from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerSegment {
    /// Its flags.
    pub kind: SegmentKind,
    /// Its sequence number.
    pub seq: SeqAt,
    /// Its acknowledgment number (sent as zero when ACK is off).
    pub ack: AckAt,
    /// Payload bytes.
    pub len: u16,
}

impl PeerSegment {
    /// A segment of `kind` at RCV.NXT acknowledging SND.NXT: the in-order case.
    pub const fn next(kind: SegmentKind) -> Self {
        let len = if matches!(kind, SegmentKind::Data) {
            10
        } else {
            0
        };
        PeerSegment {
            kind,
            seq: SeqAt::RcvNxt,
            ack: AckAt::Nxt,
            len,
        }
    }
}

/// One event of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpEvent {
    /// The stack's application listens (passive OPEN).
    Listen,
    /// The stack's application connects to the peer (active OPEN).
    Connect,
    /// The peer sends a segment.
    Peer(PeerSegment),
    /// The stack's application sends this many bytes.
    Send(u16),
    /// The stack's application reads up to this many bytes.
    Receive(u16),
    /// The stack's application shuts down its sending side.
    ShutdownWrite,
    /// The stack's application closes the socket.
    Close,
    /// The stack's application aborts (SO_LINGER 0, then close).
    Abort,
}

/// A scenario: the model's profile, the IP version, and the events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpScenario {
    /// A name for reports and regression files.
    pub name: String,
    /// The profile the model follows.
    pub profile: ProfileName,
    /// Whether the connection runs over IPv6.
    pub ipv6: bool,
    /// The MSS the peer announces on its SYNs (`None`: no MSS option).
    pub peer_mss: Option<u16>,
    /// The events, in order.
    pub events: Vec<TcpEvent>,
}

/// The peer's initial sequence number in scenarios.
pub const PEER_ISN: u32 = 0x4000_0000;
/// The window the peer offers on every segment (scaled by 2^7 once window scaling is on).
pub const PEER_WINDOW: u16 = 64_240;
/// How long a barrier waits before it calls the stack unresponsive.
const BARRIER_TIMEOUT: Duration = Duration::from_millis(2000);
/// RFC 9293 MUST-40: an ACK must not be delayed by more than 0.5 s.
const MAX_ACK_DELAY_MS: u64 = 500;
/// How long the stack is given after a scenario's last event to say anything late: the
/// longest an answer may be delayed (MUST-40), in the stack's own time (on a virtual clock
/// it costs nothing).
pub const QUIET_PERIOD: Duration = Duration::from_millis(MAX_ACK_DELAY_MS);
/// The least time between a transmission and a retransmission of the same sequence space
/// that a retransmission timer can make: Linux's shortest timer is `TCP_TIMEOUT_MIN`, two
/// jiffies (more than a millisecond): the tail loss probe's, and the one an unacceptable
/// ACK in SYN-SENT arms to send the SYN again at once (`tcp_rcv_synsent_state_process`);
/// the RTO (RFC 6298 §2.4) is far longer. A copy sent sooner is a duplicate, not a
/// retransmission.
pub const RETRANSMIT_MIN_GAP: Duration = Duration::from_millis(1);
/// The note a scenario's trace carries when a peer's segment meets a fresh TCB in LISTEN
/// (the connection gone, the listener still open): the model's state before that event is
/// LISTEN, whatever the state note before it says (`fuzz::stacks` reads it).
pub const FRESH_TCB_NOTE: &str =
    "the connection is gone and the listener open: a fresh TCB in LISTEN";
/// The sockets of scenario slot 0 (a scenario run on its own): the listener and the
/// actively opened socket. Slot `k` uses `2k + 1` and `2k + 2`, so that scenarios whose
/// quiet periods overlap on one stack never share a socket id.
const LISTENER: SocketId = SocketId(1);
const CLIENT: SocketId = SocketId(2);

/// The state the stack's socket must show, as the target reports it: `None` when the model
/// says no connection exists (CLOSED, or back to LISTEN on the listener).
fn expected_socket_state(state: State) -> Option<TcpState> {
    match state {
        State::Closed | State::Listen => None,
        State::SynSent => Some(TcpState::SynSent),
        State::SynReceived => Some(TcpState::SynReceived),
        State::Established => Some(TcpState::Established),
        State::FinWait1 => Some(TcpState::FinWait1),
        State::FinWait2 => Some(TcpState::FinWait2),
        State::CloseWait => Some(TcpState::CloseWait),
        State::Closing => Some(TcpState::Closing),
        State::LastAck => Some(TcpState::LastAck),
        State::TimeWait => Some(TcpState::TimeWait),
    }
}

/// A frame the stack sent, with the scenario time it left the stack by the stack's own
/// stamp ([`Session::last_left`]), or when it was read.
type Timed = (Instant, Observed);

/// One segment the stack sent on the scenario's connection: what it occupies and when.
#[derive(Debug, Clone, Copy)]
struct Sent {
    flags: TcpFlags,
    seq: u32,
    len: usize,
    at: Instant,
}

impl Sent {
    fn of(s: &TcpSegment, at: Instant) -> Sent {
        Sent {
            flags: s.flags,
            seq: s.seq,
            len: s.payload.len(),
            at,
        }
    }

    /// Sequence numbers it occupies: its SYN, its data, its FIN.
    fn occupies(&self) -> u32 {
        self.len as u32
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }
}

/// What the model said before an event, and when the event began: its state and SND.UNA,
/// against which a segment the stack sent before that moment is judged (a retransmission
/// whose timer fired just before the event's segment reached the stack, read with the
/// answer to it).
type Before = Option<(State, u32, Instant)>;

/// A segment of the stack's that repeats sequence space it sent before, judged with the
/// model ([`ScenarioRunner::judge_repeat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Repeat {
    /// A retransmission: timer-driven, the same bytes, still unacknowledged. Why.
    Retransmission(String),
    /// A repeat that is no retransmission: why not.
    Not(String),
}

/// Everything of one scenario's run but the session: what a scenario waiting out its quiet
/// period keeps while other scenarios use the session ([`run_scenarios`]).
struct ScenarioState {
    scenario: TcpScenario,
    model: Tcp,
    /// The model's configuration (a new incarnation after a reset starts from it).
    config: Config,
    peer_port: u16,
    stack_port: u16,
    peer_ip: IpAddr,
    stack_ip: IpAddr,
    /// The stack's ISS, once its SYN or SYN-ACK was seen.
    iss: Option<u32>,
    /// The stack's window scale (0 until negotiated).
    stack_wscale: u8,
    /// Whether the peer offered window scaling on its SYN.
    peer_offered_wscale: bool,
    /// The stack's connection socket, once accepted or connected.
    conn: Option<SocketId>,
    /// Whether the listening socket is open.
    listener_open: bool,
    /// The slot of the scenario's socket ids (see [`LISTENER`]).
    slot: u32,
    /// Segments the stack sent so far, to recognise what repeats.
    sent_by_stack: Vec<Sent>,
    /// The exchange so far, as (expected, observed) lines, for the failure message.
    ladder: Vec<(String, String)>,
    /// When the last event was made (its segment sent, or its call returned).
    last_event_at: Option<Instant>,
    /// Frames of other scenarios' connections this one read, for [`run_scenarios`] to
    /// hand over.
    others: Vec<Timed>,
}

impl ScenarioState {
    fn listener(&self) -> SocketId {
        SocketId(LISTENER.0 + 2 * self.slot)
    }

    fn client(&self) -> SocketId {
        SocketId(CLIENT.0 + 2 * self.slot)
    }

    /// Whether `frame` is a segment of this scenario's connection, from the stack.
    fn is_mine(&self, frame: &Frame) -> bool {
        let ips = match &frame.network {
            Network::Ipv4(p) => Some((IpAddr::V4(p.src), IpAddr::V4(p.dst))),
            Network::Ipv6(p) => Some((IpAddr::V6(p.src), IpAddr::V6(p.dst))),
            _ => None,
        };
        matches!(
            (ips, frame.transport()),
            (Some((src, dst)), Some(Transport::Tcp(seg)))
                if SocketAddr::new(src, seg.src_port) == SocketAddr::new(self.stack_ip, self.stack_port)
                    && SocketAddr::new(dst, seg.dst_port) == SocketAddr::new(self.peer_ip, self.peer_port)
        )
    }

    /// When its quiet period ends (`None`: it made no event).
    fn quiet_until(&self) -> Option<Instant> {
        self.last_event_at.map(|at| at + QUIET_PERIOD)
    }
}

/// Whether `frame` is a TCP segment (of any connection).
fn is_tcp(frame: &Frame) -> bool {
    matches!(frame.transport(), Some(Transport::Tcp(_)))
}

/// Runs scenarios on one session; one connection (one peer port) per scenario.
pub struct ScenarioRunner<'s, 't> {
    session: &'s mut Session<'t>,
    st: ScenarioState,
}

impl<'s, 't> ScenarioRunner<'s, 't> {
    /// A runner for `scenario` on `session`. `port` is used for both ends (the peer's and
    /// the stack's), so scenarios that share one target never meet.
    pub fn new(
        session: &'s mut Session<'t>,
        scenario: TcpScenario,
        port: u16,
    ) -> Result<Self, CheckError> {
        Self::in_slot(session, scenario, port, 0)
    }

    /// [`ScenarioRunner::new`] with the socket ids of `slot`.
    fn in_slot(
        session: &'s mut Session<'t>,
        scenario: TcpScenario,
        port: u16,
        slot: u32,
    ) -> Result<Self, CheckError> {
        let peer_port = port;
        let stack_port = port;
        let e = session.endpoints().clone();
        let unsupported = |what: &str| CheckError::Dut {
            step: "addressing".into(),
            source: crate::dut::DutError::NotSupported {
                what: format!("the target has no {what} address"),
            },
        };
        let (peer_ip, stack_ip, mss) = if scenario.ipv6 {
            match (e.peer_ipv6, e.stack_ipv6) {
                (Some(p), Some((s, _))) => (IpAddr::V6(p), IpAddr::V6(s), e.mtu.saturating_sub(60)),
                _ => return Err(unsupported("IPv6")),
            }
        } else {
            match (e.peer_ipv4, e.stack_ipv4) {
                (Some(p), Some((s, _))) => (IpAddr::V4(p), IpAddr::V4(s), e.mtu.saturating_sub(40)),
                _ => return Err(unsupported("IPv4")),
            }
        };
        let features = session.tcp_config();
        let config = Config {
            mss: u16::try_from(mss).unwrap_or(u16::MAX),
            ipv6: scenario.ipv6,
            sack: features.sack,
            timestamps: features.timestamps,
            window_scaling: features.window_scaling,
            profile: TcpDeviation::profile(scenario.profile),
        };
        Ok(ScenarioRunner {
            session,
            st: ScenarioState {
                scenario,
                model: Tcp::new(config.clone()),
                config,
                peer_port,
                stack_port,
                peer_ip,
                stack_ip,
                iss: None,
                stack_wscale: 0,
                peer_offered_wscale: false,
                conn: None,
                listener_open: false,
                slot,
                sent_by_stack: Vec::new(),
                ladder: Vec::new(),
                last_event_at: None,
                others: Vec::new(),
            },
        })
    }

    /// Runs every event, then the quiet period; the first difference ends the scenario.
    /// The sockets the scenario opened are closed afterwards either way.
    pub fn run(mut self) -> Result<(), CheckError> {
        let result = self
            .run_events()
            .and_then(|()| self.quiet_period(Vec::new()));
        let cleanup = self.cleanup();
        result.and(cleanup)
    }

    /// Runs every event; the first difference ends the scenario.
    fn run_events(&mut self) -> Result<(), CheckError> {
        let events = self.st.scenario.events.clone();
        profile::scenario(events.len());
        for (i, event) in events.iter().enumerate() {
            let step = format!("event {} of {} ({event:?})", i + 1, events.len());
            self.session
                .note(format!("scenario {}: {step}", self.st.scenario.name));
            self.event(&step, *event)?;
        }
        Ok(())
    }

    /// Closes the scenario's sockets (timed as the clean-up).
    fn cleanup(&mut self) -> Result<(), CheckError> {
        let since = self.session.now();
        let cleanup = self.close_everything();
        self.spent(Phase::Cleanup, since);
        cleanup
    }

    /// The runner's state, the session let go (a scenario waiting out its quiet period).
    fn park(self) -> ScenarioState {
        self.st
    }

    /// Closes what the scenario left open: the connection with SO_LINGER 0 (a RST, no
    /// lingering state), then the listener. These calls come after the verdict and their
    /// outcomes are not compared.
    fn close_everything(&mut self) -> Result<(), CheckError> {
        let step = "closing the scenario's sockets";
        if let Some(sock) = self.st.conn.take() {
            self.session.call(
                step,
                SocketCall::SetOption {
                    sock,
                    option: SocketOption::Linger(Some(0)),
                },
            )?;
            self.session.call(step, SocketCall::Close { sock })?;
        }
        if std::mem::take(&mut self.st.listener_open) {
            let sock = self.st.listener();
            self.session.call(step, SocketCall::Close { sock })?;
        }
        // Collect the resets those closes sent, so they stay in this scenario's trace
        // (segments of other scenarios' connections go to them).
        self.collect(step)?;
        Ok(())
    }

    /// A barrier: what the stack sent until now, each frame with its time. Segments of
    /// other connections (scenarios waiting out their quiet periods) are set aside for
    /// them; everything else is returned.
    fn collect(&mut self, step: &str) -> Result<Vec<Timed>, CheckError> {
        let frames = self
            .session
            .barrier_timed(step, self.st.scenario.ipv6, BARRIER_TIMEOUT)?;
        Ok(self.keep_mine(frames))
    }

    /// `frames` less the TCP segments of other connections, which go to `others`.
    fn keep_mine(&mut self, frames: Vec<Timed>) -> Vec<Timed> {
        let mut mine = Vec::new();
        for (at, o) in frames {
            match &o.parsed {
                Ok(frame) if is_tcp(frame) && !self.st.is_mine(frame) => {
                    self.st.others.push((at, o))
                }
                _ => mine.push((at, o)),
            }
        }
        mine
    }

    /// Adds the scenario time since `since` to `phase` of the profile (when it is on).
    fn spent(&self, phase: Phase, since: crate::time::Instant) {
        if profile::enabled() {
            profile::add(
                phase,
                self.session.now().saturating_since(since).total_micros(),
            );
        }
    }

    fn family(&self) -> Family {
        if self.st.scenario.ipv6 {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }

    fn mismatch(&self, step: &str, mut differences: Vec<String>) -> CheckError {
        differences.push(format!(
            "scenario: {}",
            serde_json::to_string(&self.st.scenario).unwrap_or_default()
        ));
        differences.push(side_by_side(&self.st.ladder));
        CheckError::Mismatch {
            step: step.to_string(),
            differences,
        }
    }

    /// A call the harness makes to set the scenario up (a socket made and bound before a
    /// connect, SO_LINGER 0 before an abort, the dead connection closed before the next
    /// accept): the model sees none of them, but each must do what it was asked, or what
    /// follows rests on nothing. Its outcome must be `want`.
    fn setup_call(
        &mut self,
        step: &str,
        call: SocketCall,
        want: CallOutcome,
    ) -> Result<(), CheckError> {
        let what = call.to_string();
        let outcome = self.session.call(step, call)?;
        if outcome == want {
            return Ok(());
        }
        self.st.ladder.push((
            format!("* {what} = {want}"),
            format!("* {what} = {outcome}"),
        ));
        Err(self.mismatch(
            step,
            vec![format!("{what}: expected {want}, observed {outcome}")],
        ))
    }

    fn event(&mut self, step: &str, event: TcpEvent) -> Result<(), CheckError> {
        let outputs: Vec<Output>;
        let mut call_outcome: Option<CallOutcome> = None;
        let since = self.session.now();
        let incarnation = self.st.iss;
        let before: Before = Some((self.st.model.state(), self.st.model.snd_una(), since));
        // The state the call met (what its outcome depends on).
        let state_before = self.st.model.state();
        match event {
            TcpEvent::Listen => {
                outputs = self.st.model.handle_call(Call::Listen);
                let call = SocketCall::Listen {
                    sock: self.st.listener(),
                    family: self.family(),
                    addr: Some(self.st.stack_ip),
                    port: self.st.stack_port,
                    backlog: 16,
                };
                call_outcome = Some(self.session.call(step, call)?);
                self.st.listener_open = true;
                self.st.ladder.push(("listen".into(), "listen".into()));
            }
            TcpEvent::Connect => {
                outputs = self.st.model.handle_call(Call::Connect);
                let family = self.family();
                let client = self.st.client();
                self.setup_call(
                    step,
                    SocketCall::Socket {
                        sock: client,
                        family,
                    },
                    CallOutcome::Ok,
                )?;
                self.setup_call(
                    step,
                    SocketCall::Bind {
                        sock: client,
                        addr: self.st.stack_ip,
                        port: self.st.stack_port,
                    },
                    CallOutcome::Ok,
                )?;
                call_outcome = Some(self.session.call(
                    step,
                    SocketCall::Connect {
                        sock: client,
                        family,
                        addr: self.st.peer_ip,
                        port: self.st.peer_port,
                    },
                )?);
                self.st.conn = Some(client);
                self.st.ladder.push(("connect".into(), "connect".into()));
            }
            TcpEvent::Peer(p) => {
                if self.st.model.state() == State::Closed && self.st.listener_open {
                    // The connection is gone but the listener is still there: the next
                    // segment meets a fresh TCB in LISTEN (RFC 9293 §3.10.7.2).
                    self.st.model = Tcp::new(self.st.config.clone());
                    self.st.model.handle_call(Call::Listen);
                    self.st.iss = None;
                    self.session.note(FRESH_TCB_NOTE);
                }
                let (seg_in, segment) = self.peer_segment(p);
                outputs = self.st.model.handle_segment(&seg_in);
                let line = render_segment(&segment, PEER_ISN, self.st.iss);
                self.st
                    .ladder
                    .push((format!("> {line}"), format!("> {line}")));
                self.session.send(step, &self.frame(segment))?;
            }
            TcpEvent::Send(_) | TcpEvent::Receive(_) if self.st.conn.is_none() => {
                self.st.ladder.push((
                    format!("{event:?}: no connection socket, skipped"),
                    String::new(),
                ));
                return Ok(());
            }
            TcpEvent::Send(n) => {
                outputs = self.st.model.handle_call(Call::Send(u32::from(n)));
                let sock = self.st.conn.unwrap_or(self.st.client());
                call_outcome = Some(self.session.call(
                    step,
                    SocketCall::Send {
                        sock,
                        data: vec![b'x'; usize::from(n)],
                    },
                )?);
            }
            TcpEvent::Receive(n) => {
                outputs = self.st.model.handle_call(Call::Receive(u32::from(n)));
                let sock = self.st.conn.unwrap_or(self.st.client());
                call_outcome = Some(self.session.call(
                    step,
                    SocketCall::Recv {
                        sock,
                        max: usize::from(n),
                        timeout_ms: 20,
                    },
                )?);
            }
            TcpEvent::ShutdownWrite | TcpEvent::Close | TcpEvent::Abort => {
                let call = match event {
                    TcpEvent::ShutdownWrite => Call::ShutdownWrite,
                    TcpEvent::Close => Call::Close,
                    _ => Call::Abort,
                };
                let listener = self.st.listener();
                let sock = match (self.st.conn, self.st.model.state()) {
                    (Some(s), _) => s,
                    (None, State::Listen) if call != Call::ShutdownWrite => listener,
                    (None, _) => {
                        self.st
                            .ladder
                            .push((format!("{event:?}: no socket, skipped"), String::new()));
                        return Ok(());
                    }
                };
                outputs = self.st.model.handle_call(call);
                if call == Call::Abort {
                    self.setup_call(
                        step,
                        SocketCall::SetOption {
                            sock,
                            option: SocketOption::Linger(Some(0)),
                        },
                        CallOutcome::OptionValue(SocketOption::Linger(Some(0))),
                    )?;
                }
                call_outcome = Some(if call == Call::ShutdownWrite {
                    self.session.call(
                        step,
                        SocketCall::Shutdown {
                            sock,
                            how: ShutdownHow::Write,
                        },
                    )?
                } else {
                    self.session.call(step, SocketCall::Close { sock })?
                });
                if call != Call::ShutdownWrite {
                    if sock == listener {
                        self.st.listener_open = false;
                    } else {
                        self.st.conn = None;
                    }
                }
                self.st
                    .ladder
                    .push((format!("{event:?}"), format!("{event:?}")));
            }
        }
        self.st.last_event_at = Some(self.session.now());
        // A reset model is a new incarnation: what the old one had outstanding is gone.
        let before = before.filter(|_| self.st.iss.is_some() && self.st.iss == incarnation);
        let phase = if matches!(event, TcpEvent::Peer(_)) {
            Phase::Send
        } else {
            Phase::Call
        };
        self.spent(phase, since);
        let since = self.session.now();
        let mut observed = self.collect(step)?;
        self.spent(Phase::Barrier, since);
        self.wait_for_delayed(step, &outputs, &mut observed, before)?;
        let since = self.session.now();
        self.compare_segments(step, &outputs, &observed, before)?;
        self.compare_call(step, event, state_before, &outputs, call_outcome.as_ref())?;
        self.spent(Phase::Compare, since);
        let since = self.session.now();
        if outputs.contains(&Output::Established)
            && (self.st.conn.is_none() || self.st.listener_open)
        {
            if let Some(old) = self.st.conn.take().filter(|_| self.st.listener_open) {
                // The application still held the previous, dead connection: it closes it
                // before taking the new one.
                self.setup_call(step, SocketCall::Close { sock: old }, CallOutcome::Ok)?;
            }
            let outcome = self.session.call(
                step,
                SocketCall::Accept {
                    listener: self.st.listener(),
                    timeout_ms: 1000,
                },
            )?;
            match outcome {
                CallOutcome::NewSocket(id) => self.st.conn = Some(id),
                other => {
                    return Err(self.mismatch(
                        step,
                        vec![format!("accept: expected a connection, observed {other}")],
                    ));
                }
            }
            self.spent(Phase::Accept, since);
        }
        self.compare_state(step)
    }

    /// When the model's last predicted segments are acknowledgments the stack may delay
    /// (RFC 9293 §3.8.6.3) and the barrier did not see them, waits for them, at most the
    /// 0.5 s MUST-40 allows, then collects anything else with another barrier. A
    /// retransmission the stack sent meanwhile is not the answer waited for.
    fn wait_for_delayed(
        &mut self,
        step: &str,
        outputs: &[Output],
        observed: &mut Vec<Timed>,
        before: Before,
    ) -> Result<(), CheckError> {
        let predicted = tcp::segments(outputs);
        let seen = |o: &[Timed], this: &Self| {
            this.sort_answer(o, &predicted, before)
                .map(|(answer, _)| answer.len())
                .unwrap_or(usize::MAX)
        };
        let have = seen(observed, self);
        // A translator's answers wait for its host side (see
        // `Sockets::answers_wait_for_host`): they are waited for as a delayed ACK is.
        let host_waits = self.session.answers_wait_for_host();
        let may_wait = |p: &&SegmentOut| p.delayable || host_waits;
        if have >= predicted.len() || !predicted[have..].iter().all(may_wait) {
            return Ok(());
        }
        // A translator whose loop makes a barrier a signal: its host-side answers are out
        // after that many more barriers; only an acknowledgment the stack may delay is then
        // still waited for.
        let barriers = if host_waits {
            self.session.host_answers_within_barriers()
        } else {
            0
        };
        if barriers > 0 {
            let since = self.session.now();
            for _ in 0..barriers {
                if seen(observed, self) >= predicted.len() {
                    break;
                }
                let more = self.collect(step)?;
                observed.extend(more);
            }
            self.spent(Phase::SecondBarrier, since);
            let have = seen(observed, self);
            if have >= predicted.len() || !predicted[have..].iter().all(|p| p.delayable) {
                return Ok(());
            }
        }
        let since = self.session.now();
        let limit = since + Duration::from_millis(MAX_ACK_DELAY_MS);
        while seen(observed, self) < predicted.len() {
            match self.session.next_any_frame(step, limit)? {
                Some((_, frame)) => {
                    let left = self.session.last_left();
                    let mine = self.keep_mine(vec![(left, frame)]);
                    observed.extend(mine);
                }
                None => break,
            }
        }
        self.spent(Phase::DelayedAck, since);
        let since = self.session.now();
        let more = self.collect(step)?;
        observed.extend(more);
        self.spent(Phase::SecondBarrier, since);
        Ok(())
    }

    /// After the last event: everything the stack sends on the connection until
    /// [`QUIET_PERIOD`] after that event (in the stack's time), then a barrier, compared
    /// with what the model predicts for a period with no event: nothing. A segment that
    /// repeats what the stack sent and is still outstanding is its retransmission timer
    /// at work ([`ScenarioRunner::judge_repeat`]): noted, not failed. Anything else (an
    /// answer that came late, a repeat of what the peer acknowledged) fails, named.
    /// `inbox` holds the connection's segments other scenarios read meanwhile.
    fn quiet_period(&mut self, inbox: Vec<Timed>) -> Result<(), CheckError> {
        let (Some(last), Some(until)) = (self.st.last_event_at, self.st.quiet_until()) else {
            return Ok(());
        };
        let step = "quiet period after the last event";
        let since = self.session.now();
        let mut observed = inbox;
        while let Some((_, frame)) = self.session.next_any_frame(step, until)? {
            let left = self.session.last_left();
            let mine = self.keep_mine(vec![(left, frame)]);
            observed.extend(mine);
        }
        let more = self.collect(step)?;
        observed.extend(more);
        self.spent(Phase::Quiet, since);
        let segments = self
            .flow_segments(&observed)
            .map_err(|p| self.mismatch(step, p))?;
        let mut differences = Vec::new();
        for (at, s) in segments {
            let line = format!(
                "< {}",
                render_segment(&s, self.st.iss.unwrap_or(0), Some(PEER_ISN))
            );
            let late = at.saturating_since(last);
            match self.judge_repeat(&s, at, &self.st.sent_by_stack, None) {
                Some(Repeat::Retransmission(why)) => {
                    self.session.note(format!(
                        "{step}: {} taken as a retransmission: {why}",
                        line.trim_start_matches("< ")
                    ));
                    self.st
                        .ladder
                        .push((format!("(quiet: a retransmission, {why})"), line));
                }
                judged => {
                    let why = match judged {
                        Some(Repeat::Not(why)) => {
                            format!(" (a repeat, but no retransmission: {why})")
                        }
                        _ => String::new(),
                    };
                    differences.push(format!(
                        "the stack sent {} {late} after the last event, in the quiet period \
                         of {QUIET_PERIOD} the model expected nothing{why}",
                        line.trim_start_matches("< ")
                    ));
                    self.st
                        .ladder
                        .push((format!("(quiet for {QUIET_PERIOD}: nothing)"), line));
                }
            }
            self.st.sent_by_stack.push(Sent::of(&s, at));
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(self.mismatch(step, differences))
        }
    }

    /// Whether `s`, which left the stack at `at`, repeats sequence space the stack sent
    /// before (`earlier`), and if so whether it is a retransmission by the rules of the
    /// [module doc](self#segments-sent-again). `None`: it occupies no sequence space, or
    /// some of it is new: an answer, compared as one.
    fn judge_repeat(
        &self,
        s: &TcpSegment,
        at: Instant,
        earlier: &[Sent],
        before: Before,
    ) -> Option<Repeat> {
        let this = Sent::of(s, at);
        let occupies = this.occupies();
        if occupies == 0 {
            return None;
        }
        // Offsets from this segment's first sequence number (wrapping, signed).
        let offset = |seq: u32| i64::from(seq.wrapping_sub(s.seq) as i32);
        let mut spans: Vec<(i64, i64)> = Vec::new();
        let mut syn_before = false;
        let mut fin_before = false;
        let mut last_copy: Option<Instant> = None;
        let end = i64::from(occupies);
        for e in earlier {
            let start = offset(e.seq);
            let stop = start + i64::from(e.occupies());
            if stop <= 0 || start >= end {
                continue;
            }
            spans.push((start.max(0), stop.min(end)));
            last_copy = Some(last_copy.map_or(e.at, |l| l.max(e.at)));
            syn_before |= e.flags.contains(TcpFlags::SYN) && start == 0;
            fin_before |= e.flags.contains(TcpFlags::FIN) && stop == end;
        }
        spans.sort_unstable();
        let mut covered = 0;
        for (start, stop) in spans {
            if start > covered {
                break;
            }
            covered = covered.max(stop);
        }
        let syn = s.flags.contains(TcpFlags::SYN);
        let fin = s.flags.contains(TcpFlags::FIN);
        if covered < end || (syn && !syn_before) || (fin && !fin_before) {
            return None;
        }
        let last_copy = last_copy?;
        let Some(iss) = self.st.iss else {
            return Some(Repeat::Not("the stack's ISS is not known".into()));
        };
        let end_rel = s.seq.wrapping_add(occupies).wrapping_sub(iss);
        let outstanding = |(state, una): (State, u32)| {
            !matches!(state, State::Closed | State::Listen)
                && (end_rel.wrapping_sub(una) as i32) > 0
        };
        let now = (self.st.model.state(), self.st.model.snd_una());
        let sent_before_the_event =
            before.is_some_and(|(state, una, start)| at < start && outstanding((state, una)));
        if !outstanding(now) && !sent_before_the_event {
            let why = if matches!(now.0, State::Closed | State::Listen) {
                format!("the model has no connection ({})", now.0)
            } else {
                format!(
                    "the peer acknowledged all of it (SND.UNA {}, the segment ends at {})",
                    now.1, end_rel
                )
            };
            return Some(Repeat::Not(why));
        }
        let gap = at.saturating_since(last_copy);
        if gap < RETRANSMIT_MIN_GAP {
            return Some(Repeat::Not(format!(
                "it left {gap} after the copy it repeats, sooner than any retransmission \
                 timer ({RETRANSMIT_MIN_GAP})"
            )));
        }
        Some(Repeat::Retransmission(format!(
            "the same sequence space went out {gap} before and is still unacknowledged \
             (SND.UNA {})",
            now.1
        )))
    }

    /// The connection's segments among `observed`, in order, split into the answer (to be
    /// compared with the model's prediction, each with why it is no retransmission when it
    /// repeats something) and the legitimate retransmissions (with why they are).
    #[allow(clippy::type_complexity)]
    fn sort_answer(
        &self,
        observed: &[Timed],
        predicted: &[&SegmentOut],
        before: Before,
    ) -> Result<
        (
            Vec<(Instant, TcpSegment, Option<String>)>,
            Vec<(Instant, TcpSegment, String)>,
        ),
        Vec<String>,
    > {
        let segments = self.flow_segments(observed)?;
        let syn_expected = predicted.iter().any(|p| p.flags.syn);
        let mut earlier = self.st.sent_by_stack.clone();
        let mut answer = Vec::new();
        let mut retransmissions = Vec::new();
        for (at, s) in segments {
            // A SYN the model predicts is the answer, whatever it repeats (a SYN-ACK sent
            // again for a retransmitted SYN).
            let judged = if syn_expected && s.flags.contains(TcpFlags::SYN) {
                None
            } else {
                self.judge_repeat(&s, at, &earlier, before)
            };
            earlier.push(Sent::of(&s, at));
            match judged {
                Some(Repeat::Retransmission(why)) => retransmissions.push((at, s, why)),
                Some(Repeat::Not(why)) => answer.push((at, s, Some(why))),
                None => answer.push((at, s, None)),
            }
        }
        Ok((answer, retransmissions))
    }

    /// The peer's segment for `p` at the model's current numbers, as the model sees it and
    /// as it goes on the wire.
    fn peer_segment(&mut self, p: PeerSegment) -> (SegmentIn, TcpSegment) {
        let flags = p.kind.flags();
        let synchronized =
            self.st.model.state().is_synchronized() || self.st.model.state() == State::SynReceived;
        let rcv_nxt = if synchronized {
            self.st.model.rcv_nxt()
        } else {
            PEER_ISN
        };
        let wnd = self.st.model.rcv_wnd();
        let seq = match p.seq {
            SeqAt::RcvNxtMinus1 => rcv_nxt.wrapping_sub(1),
            SeqAt::RcvNxt => rcv_nxt,
            SeqAt::WindowEndMinus1 => rcv_nxt.wrapping_add(wnd).wrapping_sub(1),
            SeqAt::WindowEnd => rcv_nxt.wrapping_add(wnd),
            SeqAt::Isn => PEER_ISN,
        };
        let ack_rel = match p.ack {
            AckAt::BelowUna => self.st.model.snd_una().wrapping_sub(1),
            AckAt::Una => self.st.model.snd_una(),
            AckAt::Nxt => self.st.model.snd_nxt(),
            AckAt::BeyondNxt => self.st.model.snd_nxt().wrapping_add(1),
        };
        let ack_rel = if flags.ack { ack_rel } else { 0 };
        let iss = self.st.iss.unwrap_or(0);
        let mut seg_in = SegmentIn {
            window: PEER_WINDOW,
            ..SegmentIn::new(flags, seq, ack_rel, u32::from(p.len))
        };
        let wire_flags = model_flags_to_wire(flags);
        let ack_abs = if flags.ack {
            ack_rel.wrapping_add(iss)
        } else {
            0
        };
        let mut segment = TcpSegment {
            window: PEER_WINDOW,
            payload: vec![b'p'; usize::from(p.len)],
            ..TcpSegment::new(
                self.st.peer_port,
                self.st.stack_port,
                seq,
                ack_abs,
                wire_flags,
            )
        };
        if flags.syn {
            // The peer's SYN offers MSS (as configured), SACK and window scaling; no
            // timestamps, so that every later segment is valid without them.
            if let Some(mss) = self.st.scenario.peer_mss {
                segment.options.push(TcpOption::Mss(mss));
            }
            segment.options.extend([
                TcpOption::SackPermitted,
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ]);
            seg_in.mss = self.st.scenario.peer_mss;
            seg_in.sack_permitted = true;
            seg_in.window_scale = Some(7);
            self.st.peer_offered_wscale = true;
        }
        (seg_in, segment)
    }

    fn frame(&self, segment: TcpSegment) -> Frame {
        let e = self.session.endpoints();
        match (self.st.peer_ip, self.st.stack_ip) {
            (IpAddr::V4(p), IpAddr::V4(s)) => {
                Frame::tcp_v4(e.harness_mac, e.stack_mac, p, s, segment)
            }
            (IpAddr::V6(p), IpAddr::V6(s)) => {
                Frame::tcp_v6(e.harness_mac, e.stack_mac, p, s, segment)
            }
            // The constructor never mixes families.
            _ => Frame::tcp_v4(
                e.harness_mac,
                e.stack_mac,
                std::net::Ipv4Addr::UNSPECIFIED,
                std::net::Ipv4Addr::UNSPECIFIED,
                segment,
            ),
        }
    }

    /// The TCP segments of this connection among the observed frames, each with its time;
    /// anything malformed that was addressed to the peer is reported as an observation.
    fn flow_segments(&self, observed: &[Timed]) -> Result<Vec<(Instant, TcpSegment)>, Vec<String>> {
        let mut segments = Vec::new();
        let mut problems = Vec::new();
        for (at, o) in observed {
            match &o.parsed {
                Err(e) => problems.push(format!("malformed frame from the stack: {e}")),
                Ok(frame) => {
                    // Neighbour discovery and ARP traffic of the stack is not this flow's.
                    if let (true, Some(Transport::Tcp(seg))) =
                        (self.st.is_mine(frame), frame.transport())
                    {
                        if seg.checksum_valid == Some(false) {
                            problems
                                .push(format!("segment with a bad checksum: {}", frame.summary()));
                        }
                        segments.push((*at, seg.clone()));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(segments)
        } else {
            Err(problems)
        }
    }

    fn compare_segments(
        &mut self,
        step: &str,
        outputs: &[Output],
        observed: &[Timed],
        before: Before,
    ) -> Result<(), CheckError> {
        let mut predicted = tcp::segments(outputs);
        // Retransmissions of what the stack already sent are its timers, not an answer:
        // of an earlier step's segment, or of one it sent earlier in this very answer (a
        // loaded machine can take longer between a call and its barrier than a tail loss
        // probe's 2-tick timer: the FIN then comes twice). The model decides which repeats
        // are retransmissions (`judge_repeat`); each is noted and set aside. Every other
        // segment is the answer, compared with the prediction: a repeat that is no
        // retransmission (of what the peer acknowledged, or sent twice at once) included.
        let (answer, retransmissions) = self
            .sort_answer(observed, &predicted, before)
            .map_err(|p| self.mismatch(step, p))?;
        for (_, s, why) in &retransmissions {
            let line = render_segment(s, self.st.iss.unwrap_or(0), Some(PEER_ISN));
            self.session
                .note(format!("{line} taken as a retransmission: {why}"));
        }
        // An acknowledgment the stack may delay rides on a retransmission that carries it
        // (sending any segment sends the acknowledgment pending).
        while predicted.len() > answer.len()
            && predicted.last().is_some_and(|p| {
                p.delayable
                    && p.flags == Flags::ACK
                    && p.len == 0
                    && retransmissions
                        .iter()
                        .any(|(_, r, _)| r.flags.contains(TcpFlags::ACK) && r.ack == p.ack)
            })
        {
            if let Some(p) = predicted.pop() {
                let line = self.render_expected(p);
                self.session.note(format!(
                    "{} carried by a retransmission",
                    line.trim_start_matches("< ")
                ));
                self.st
                    .ladder
                    .push((line, "(carried by the retransmission)".into()));
            }
        }
        let mut differences = Vec::new();
        for i in 0..predicted.len().max(answer.len()) {
            let expected = predicted.get(i).copied();
            let actual = answer.get(i).map(|(_, s, why)| (s, why));
            if let (Some(p), Some((s, _))) = (expected, actual)
                && p.flags.syn
                && s.flags.contains(TcpFlags::SYN)
                && self.st.iss.is_none()
            {
                // Learn the stack's ISS from its SYN or SYN-ACK (RFC 6528: unpredictable).
                self.st.iss = Some(s.seq.wrapping_sub(p.seq));
            }
            let expected_line = expected
                .map(|p| self.render_expected(p))
                .unwrap_or_default();
            let observed_line = actual
                .map(|(s, _)| {
                    format!(
                        "< {}",
                        render_segment(s, self.st.iss.unwrap_or(0), Some(PEER_ISN))
                    )
                })
                .unwrap_or_default();
            self.st
                .ladder
                .push((expected_line.clone(), observed_line.clone()));
            let not_a_retransmission = |why: &Option<String>| {
                why.as_ref()
                    .map(|w| format!(" (a repeat, but no retransmission: {w})"))
                    .unwrap_or_default()
            };
            match (expected, actual) {
                (Some(p), Some((s, why))) => {
                    let d = self.segment_differences(p, s);
                    let repeat = not_a_retransmission(why);
                    differences.extend(d.into_iter().map(|d| format!("{d}{repeat}")));
                }
                (Some(_), None) => differences.push(format!(
                    "expected {}, the stack sent nothing",
                    expected_line.trim_start_matches("< ")
                )),
                (None, Some((_, why))) => differences.push(format!(
                    "the stack sent {}, the model expected nothing{}",
                    observed_line.trim_start_matches("< "),
                    not_a_retransmission(why)
                )),
                (None, None) => {}
            }
        }
        for (_, s, why) in &retransmissions {
            self.st.ladder.push((
                format!("(a retransmission: {why})"),
                format!(
                    "< {}",
                    render_segment(s, self.st.iss.unwrap_or(0), Some(PEER_ISN))
                ),
            ));
        }
        let mut all: Vec<(Instant, &TcpSegment)> = answer
            .iter()
            .map(|(at, s, _)| (*at, s))
            .chain(retransmissions.iter().map(|(at, s, _)| (*at, s)))
            .collect();
        all.sort_by_key(|(at, _)| *at);
        for (at, s) in all {
            self.st.sent_by_stack.push(Sent::of(s, at));
            self.learn_window(s);
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(self.mismatch(step, differences))
        }
    }

    fn learn_window(&mut self, s: &TcpSegment) {
        if s.flags.contains(TcpFlags::SYN) {
            let ws = s.options.iter().find_map(|o| {
                if let TcpOption::WindowScale(w) = o {
                    Some(*w)
                } else {
                    None
                }
            });
            self.st.stack_wscale = match ws {
                Some(w) if self.st.peer_offered_wscale => w.min(14),
                _ => 0,
            };
            self.st.model.observe_window(u32::from(s.window));
        } else if !s.flags.contains(TcpFlags::RST) {
            self.st
                .model
                .observe_window(u32::from(s.window) << self.st.stack_wscale);
        }
    }

    fn render_expected(&self, p: &SegmentOut) -> String {
        let iss = self.st.iss.unwrap_or(0);
        let seq = match p.seq_from {
            SeqFrom::Iss => p.seq.wrapping_add(iss),
            SeqFrom::Literal => p.seq,
        };
        let flags = model_flags_to_wire(p.flags);
        let mut seg = TcpSegment {
            payload: vec![0; p.len as usize],
            ..TcpSegment::new(self.st.stack_port, self.st.peer_port, seq, p.ack, flags)
        };
        if let Some(mss) = p.options.mss {
            seg.options.push(TcpOption::Mss(mss));
        }
        if p.options.sack_permitted {
            seg.options.push(TcpOption::SackPermitted);
        }
        if p.options.timestamps {
            seg.options.push(TcpOption::Timestamps { val: 0, ecr: 0 });
        }
        if p.options.window_scale {
            seg.options.push(TcpOption::WindowScale(0));
        }
        if !p.options.sack_blocks.is_empty() {
            seg.options
                .push(TcpOption::Sack(p.options.sack_blocks.clone()));
        }
        format!(
            "< {} [{}]",
            render_segment(&seg, iss, Some(PEER_ISN)),
            p.reason
        )
    }

    fn segment_differences(&self, p: &SegmentOut, s: &TcpSegment) -> Vec<String> {
        let mut d = Vec::new();
        let what = p.reason;
        let flags = model_flags_to_wire(p.flags);
        // PSH is a sender's choice (RFC 9293 §3.9.1.2): compared only where the model sets it.
        let observed_flags = if p.flags.psh {
            s.flags
        } else {
            TcpFlags(s.flags.0 & !TcpFlags::PSH.0)
        };
        if flags != observed_flags {
            d.push(format!(
                "{what}: flags expected {flags}, observed {}",
                s.flags
            ));
        }
        let iss = self.st.iss.unwrap_or(0);
        let expected_seq = match p.seq_from {
            SeqFrom::Iss => p.seq.wrapping_add(iss),
            SeqFrom::Literal => p.seq,
        };
        if !p.flags.syn && expected_seq != s.seq {
            d.push(format!(
                "{what}: seq expected {} observed {} (relative to the stack's ISS)",
                expected_seq.wrapping_sub(iss),
                s.seq.wrapping_sub(iss)
            ));
        }
        if p.flags.ack && p.ack != s.ack {
            d.push(format!(
                "{what}: ack expected {} observed {} (relative to the peer's ISN)",
                p.ack.wrapping_sub(PEER_ISN),
                s.ack.wrapping_sub(PEER_ISN)
            ));
        }
        if p.len as usize != s.payload.len() {
            d.push(format!(
                "{what}: length expected {} observed {}",
                p.len,
                s.payload.len()
            ));
        }
        let has = |f: &dyn Fn(&TcpOption) -> bool| s.options.iter().any(f);
        if p.flags.syn {
            let mss = s.options.iter().find_map(|o| {
                if let TcpOption::Mss(m) = o {
                    Some(*m)
                } else {
                    None
                }
            });
            if p.options.mss != mss {
                d.push(format!(
                    "{what}: MSS option expected {:?} observed {mss:?}",
                    p.options.mss
                ));
            }
            for (name, want, got) in [
                (
                    "SACK-permitted",
                    p.options.sack_permitted,
                    has(&|o| matches!(o, TcpOption::SackPermitted)),
                ),
                (
                    "window scale",
                    p.options.window_scale,
                    has(&|o| matches!(o, TcpOption::WindowScale(_))),
                ),
                (
                    "timestamps",
                    p.options.timestamps,
                    has(&|o| matches!(o, TcpOption::Timestamps { .. })),
                ),
            ] {
                if want != got {
                    d.push(format!(
                        "{what}: {name} option expected {} observed {}",
                        presence(want),
                        presence(got)
                    ));
                }
            }
        } else if has(&|o| matches!(o, TcpOption::Mss(_))) {
            d.push(format!(
                "{what}: an MSS option on a segment without SYN (RFC 9293 MUST-65)"
            ));
        }
        if !p.options.sack_blocks.is_empty() {
            let got = s.options.iter().find_map(|o| {
                if let TcpOption::Sack(b) = o {
                    Some(b.clone())
                } else {
                    None
                }
            });
            if got.as_ref() != Some(&p.options.sack_blocks) {
                d.push(format!(
                    "{what}: SACK blocks expected {:?} observed {:?} (relative to the peer's ISN)",
                    rel_blocks(&p.options.sack_blocks),
                    got.as_deref().map(rel_blocks)
                ));
            }
        }
        d
    }

    /// Compares the outcome of the event's socket call with the model's: what is
    /// compared, and what is not and why, is in the [module doc](self#call-outcomes).
    fn compare_call(
        &mut self,
        step: &str,
        event: TcpEvent,
        state_before: State,
        outputs: &[Output],
        outcome: Option<&CallOutcome>,
    ) -> Result<(), CheckError> {
        let Some(outcome) = outcome else {
            return Ok(());
        };
        /// What the model says a call returns.
        enum Want {
            /// This outcome.
            Is(CallOutcome),
            /// An error, whichever.
            AnError,
            /// This errno, by name.
            Errno(&'static str),
            /// No opinion.
            Open,
        }
        let error = outputs.iter().find_map(|o| match o {
            Output::Error(e) => Some(*e),
            _ => None,
        });
        let errno = |e: tcp::AppError| match e {
            tcp::AppError::ConnectionReset => "ECONNRESET",
            tcp::AppError::BrokenPipe => "EPIPE",
            tcp::AppError::ConnectionRefused => "ECONNREFUSED",
            // RFC 9293 §3.10.3, §3.10.4: "error: connection does not exist".
            tcp::AppError::InvalidState => "ENOTCONN",
        };
        let want = match event {
            TcpEvent::Listen | TcpEvent::Connect => match error {
                Some(_) => Want::AnError,
                None => Want::Is(CallOutcome::Ok),
            },
            TcpEvent::Send(n) => match error {
                Some(_) => Want::AnError,
                None => Want::Is(CallOutcome::Sent(usize::from(n))),
            },
            TcpEvent::Receive(_) => outputs
                .iter()
                .find_map(|o| match o {
                    // The peer's data is `p` bytes throughout.
                    Output::Deliver(n) => {
                        Some(Want::Is(CallOutcome::Data(vec![b'p'; *n as usize])))
                    }
                    Output::EndOfStream => Some(Want::Is(CallOutcome::Eof)),
                    Output::Error(e) => Some(Want::Errno(errno(*e))),
                    _ => None,
                })
                .unwrap_or(Want::Is(CallOutcome::TimedOut)),
            TcpEvent::Close | TcpEvent::Abort => Want::Is(CallOutcome::Ok),
            TcpEvent::ShutdownWrite => match (error, state_before) {
                (Some(e), _) => Want::Errno(errno(e)),
                (
                    None,
                    State::Established | State::CloseWait | State::SynReceived | State::SynSent,
                ) => Want::Is(CallOutcome::Ok),
                (None, _) => Want::Open,
            },
            TcpEvent::Peer(_) => Want::Open,
        };
        let name = |o: &CallOutcome| match o {
            CallOutcome::Errno { name, .. } => name.clone(),
            other => other.to_string(),
        };
        let observed = name(outcome);
        let expected = match &want {
            Want::Is(o) => name(o),
            Want::AnError => "an error".into(),
            Want::Errno(e) => (*e).to_string(),
            Want::Open => "(not compared)".into(),
        };
        self.st.ladder.push((
            format!("* {event:?} = {expected}"),
            format!("* {event:?} = {observed}"),
        ));
        let agrees = match &want {
            Want::Is(o) => o == outcome,
            Want::AnError => matches!(outcome, CallOutcome::Errno { .. }),
            Want::Errno(e) => matches!(outcome, CallOutcome::Errno { name, .. } if name == e),
            Want::Open => true,
        };
        if agrees {
            return Ok(());
        }
        let detail = |o: &CallOutcome| match o {
            CallOutcome::Data(d) => format!(
                " ({:?})",
                String::from_utf8_lossy(&d.escape_ascii().collect::<Vec<u8>>())
            ),
            _ => String::new(),
        };
        let (expected, observed) = match &want {
            Want::Is(o) if expected == observed => (
                format!("{expected}{}", detail(o)),
                format!("{observed}{}", detail(outcome)),
            ),
            _ => (expected, observed),
        };
        Err(self.mismatch(
            step,
            vec![format!(
                "{event:?}: expected {expected}, observed {observed}"
            )],
        ))
    }

    fn compare_state(&mut self, step: &str) -> Result<(), CheckError> {
        if let Some(why) = self.session.tcp_states_hidden() {
            self.session.note(format!(
                "state: model {}, stack not read ({why})",
                self.st.model.state()
            ));
            return Ok(());
        }
        let since = self.session.now();
        let socket = self.session.tcp_connection(
            step,
            SocketAddr::new(self.st.stack_ip, self.st.stack_port),
            SocketAddr::new(self.st.peer_ip, self.st.peer_port),
        )?;
        self.spent(Phase::StateRead, since);
        let observed = socket.map(|s| s.state);
        let expected = expected_socket_state(self.st.model.state());
        let name =
            |s: Option<TcpState>| s.map_or("no socket (CLOSED)".to_string(), |s| s.to_string());
        self.st.ladder.push((
            format!("# {}", name(expected)),
            format!("# {}", name(observed)),
        ));
        self.session.note(format!(
            "state: model {}, stack {}",
            self.st.model.state(),
            name(observed)
        ));
        if expected == observed {
            Ok(())
        } else {
            Err(self.mismatch(
                step,
                vec![format!(
                    "state: expected {}, observed {}",
                    name(expected),
                    name(observed)
                )],
            ))
        }
    }
}

fn presence(b: bool) -> &'static str {
    if b { "present" } else { "absent" }
}

fn rel_blocks(blocks: &[(u32, u32)]) -> Vec<(u32, u32)> {
    blocks
        .iter()
        .map(|(a, b)| (a.wrapping_sub(PEER_ISN), b.wrapping_sub(PEER_ISN)))
        .collect()
}

fn model_flags_to_wire(f: Flags) -> TcpFlags {
    let mut out = TcpFlags(0);
    for (on, bit) in [
        (f.syn, TcpFlags::SYN),
        (f.ack, TcpFlags::ACK),
        (f.fin, TcpFlags::FIN),
        (f.rst, TcpFlags::RST),
        (f.psh, TcpFlags::PSH),
    ] {
        if on {
            out = out | bit;
        }
    }
    out
}

/// One segment, tcpdump style, sequence numbers relative to `seq_base` and the
/// acknowledgment relative to `ack_base` (absolute when unknown).
fn render_segment(s: &TcpSegment, seq_base: u32, ack_base: Option<u32>) -> String {
    let rel = s.seq.wrapping_sub(seq_base);
    let len = s.payload.len() as u32;
    let mut line = format!("{} {}:{}({len})", s.flags, rel, rel.wrapping_add(len));
    if s.flags.contains(TcpFlags::ACK) {
        match ack_base {
            Some(b) => line.push_str(&format!(" ack {}", s.ack.wrapping_sub(b))),
            None => line.push_str(&format!(" ack {}", s.ack)),
        }
    }
    let opts: Vec<String> = s
        .options
        .iter()
        .filter_map(|o| match o {
            TcpOption::Mss(m) => Some(format!("mss {m}")),
            TcpOption::SackPermitted => Some("sackOK".into()),
            TcpOption::WindowScale(_) => Some("wscale".into()),
            TcpOption::Timestamps { .. } => Some("TS".into()),
            TcpOption::Sack(b) => Some(format!("sack {:?}", rel_blocks(b))),
            _ => None,
        })
        .collect();
    if !opts.is_empty() {
        line.push_str(&format!(" <{}>", opts.join(",")));
    }
    line
}

/// Whether a ladder row shows a difference: the model's reason in parentheses and calls
/// whose outcome is not compared do not count.
fn differs(expected: &str, observed: &str) -> bool {
    // A retransmission set aside, or an acknowledgment it carried: no difference.
    if expected.starts_with("(a retransmission")
        || expected.starts_with("(quiet: a retransmission")
        || observed == "(carried by the retransmission)"
    {
        return false;
    }
    if expected.is_empty() || observed.is_empty() {
        return !(expected.contains("skipped") || expected.is_empty() && observed.is_empty());
    }
    if let Some(call) = expected.strip_suffix(" = (not compared)") {
        return !observed.starts_with(call);
    }
    // A predicted segment carries the model's reason in brackets at the end.
    let core = if expected.starts_with("< ") {
        expected
            .rsplit_once(" [")
            .filter(|(_, tail)| tail.ends_with(']'))
            .map_or(expected, |(head, _)| head)
    } else {
        expected
    };
    core != observed
}

/// Two columns, `expected | observed`, one exchange per line; `!` marks a difference.
pub fn side_by_side(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(e, _)| e.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 90);
    let mut out = format!(
        "{:<width$} | {}\n{}-+-{}\n",
        "expected (model)",
        "observed (stack)",
        "-".repeat(width),
        "-".repeat(width)
    );
    for (e, o) in rows {
        let mark = if differs(e, o) { '!' } else { ' ' };
        out.push_str(&format!("{e:<width$} |{mark}{o}\n"));
    }
    out
}

/// Runs one scenario on `session` with `peer_port` as the peer's port: its events, its
/// quiet period ([`QUIET_PERIOD`] after its last event) and its clean-up. A failing
/// scenario is offered as the session's counterexample.
pub fn run_scenario(
    session: &mut Session<'_>,
    scenario: &TcpScenario,
    peer_port: u16,
) -> Result<(), CheckError> {
    let mut results = run_scenarios(session, &[(scenario.clone(), peer_port)])?;
    results.pop().unwrap_or(Ok(()))
}

/// Runs `runs` (each a scenario and its peer port, all different) one after another on
/// `session` and returns each one's result, in order; the first failing one is offered as
/// the session's counterexample. A DUT error ends the batch: it is the batch's error
/// ([`run_batch`] keeps every result instead).
pub fn run_scenarios(
    session: &mut Session<'_>,
    runs: &[(TcpScenario, u16)],
) -> Result<Vec<Result<(), CheckError>>, CheckError> {
    let mut results = run_batch(session, runs);
    if let Some(i) = results
        .iter()
        .position(|r| matches!(r, Some(Err(CheckError::Dut { .. }))))
        && let Some(Err(e)) = results[i].take()
    {
        return Err(e);
    }
    Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
}

/// Runs `runs` as [`run_scenarios`] does and returns every result, in order: `None` for a
/// scenario never finished because the DUT failed (a DUT error other than a refusal ends
/// the batch; a refusal, `NotSupported`, is that scenario's result and the batch goes on).
///
/// Every scenario is compared to its end, quiet period included. On a stack on a real
/// clock the quiet periods overlap the next scenarios: a scenario whose events all agreed
/// waits out its quiet period while the next ones run, each on its own port pair and
/// socket ids (slot `k` uses ids `2k + 1` and `2k + 2`), whatever the stack sends on its
/// connection meanwhile kept for it; it is compared and closed once the period is over.
/// So a batch of 96 matrix cells costs one quiet period, not 96. On a virtual clock
/// (smoltcp) waiting is free and each scenario ends before the next begins.
pub fn run_batch(
    session: &mut Session<'_>,
    runs: &[(TcpScenario, u16)],
) -> Vec<Option<Result<(), CheckError>>> {
    let overlap = runs.len() > 1 && !session.virtual_clock();
    let mut results: Vec<Option<Result<(), CheckError>>> = runs.iter().map(|_| None).collect();
    let mut waiting: std::collections::VecDeque<(usize, ScenarioState, Vec<Timed>)> =
        std::collections::VecDeque::new();
    let mut stopped = false;
    for (i, (scenario, port)) in runs.iter().enumerate() {
        if finish_waiting(session, &mut waiting, &mut results, false) {
            stopped = true;
            break;
        }
        let slot = (0..)
            .find(|k| !waiting.iter().any(|(_, w, _)| w.slot == *k))
            .unwrap_or(0);
        let mut runner = match ScenarioRunner::in_slot(session, scenario.clone(), *port, slot) {
            Ok(runner) => runner,
            Err(e) => {
                results[i] = Some(Err(e));
                if dut_failed(&results[i]) {
                    stopped = true;
                    break;
                }
                continue;
            }
        };
        let result = runner.run_events();
        if result.is_ok() && overlap {
            let mut state = runner.park();
            hand_over(std::mem::take(&mut state.others), &mut waiting);
            waiting.push_back((i, state, Vec::new()));
            continue;
        }
        let result = result.and_then(|()| runner.quiet_period(Vec::new()));
        let cleanup = runner.cleanup();
        let mut state = runner.park();
        hand_over(std::mem::take(&mut state.others), &mut waiting);
        results[i] = Some(result.and(cleanup));
        if dut_failed(&results[i]) {
            stopped = true;
            break;
        }
    }
    if !stopped {
        finish_waiting(session, &mut waiting, &mut results, true);
    }
    // The first failure, in the order of `runs`, is the counterexample.
    let first = results
        .iter()
        .position(|r| matches!(r, Some(Err(e)) if !matches!(e, CheckError::Dut { .. })));
    if let Some(i) = first {
        session.offer_counterexample(Counterexample::scenario(Box::new(TcpScenarioRun {
            scenario: runs[i].0.clone(),
            peer_port: runs[i].1,
        })));
    }
    results
}

/// Whether `result` is a failure of the DUT itself (gone, timed out, nonsense), after
/// which nothing else it is asked means anything; a refusal (`NotSupported`) is not.
fn dut_failed(result: &Option<Result<(), CheckError>>) -> bool {
    matches!(
        result,
        Some(Err(CheckError::Dut { source, .. }))
            if !matches!(source, crate::dut::DutError::NotSupported { .. })
    )
}

/// Hands `frames` (segments of other connections, read by one scenario) to the waiting
/// scenarios they belong to; a segment of no waiting scenario's connection is dropped (it
/// is in the trace).
fn hand_over(
    frames: Vec<Timed>,
    waiting: &mut std::collections::VecDeque<(usize, ScenarioState, Vec<Timed>)>,
) {
    for (at, o) in frames {
        let owner = o
            .parsed
            .as_ref()
            .ok()
            .and_then(|f| waiting.iter_mut().find(|(_, w, _)| w.is_mine(f)));
        if let Some((_, _, inbox)) = owner {
            inbox.push((at, o));
        }
    }
}

/// Finishes the waiting scenarios whose quiet period is over (`all`: every one, waiting
/// for each in turn): each is compared with what its connection carried in the period,
/// then closed. True when the DUT failed in one of them (the batch stops there).
fn finish_waiting(
    session: &mut Session<'_>,
    waiting: &mut std::collections::VecDeque<(usize, ScenarioState, Vec<Timed>)>,
    results: &mut [Option<Result<(), CheckError>>],
    all: bool,
) -> bool {
    while let Some((_, state, _)) = waiting.front() {
        if !all
            && state
                .quiet_until()
                .is_some_and(|until| until > session.now())
        {
            break;
        }
        let Some((i, state, inbox)) = waiting.pop_front() else {
            break;
        };
        session.note(format!(
            "scenario {}: its quiet period, then closing its sockets",
            state.scenario.name
        ));
        let mut runner = ScenarioRunner { session, st: state };
        let result = runner.quiet_period(inbox);
        let cleanup = runner.cleanup();
        let mut state = runner.park();
        hand_over(std::mem::take(&mut state.others), waiting);
        results[i] = Some(result.and(cleanup));
        if dut_failed(&results[i]) {
            return true;
        }
    }
    false
}

/// The peer port a replayed scenario uses when its file names none.
pub const REPLAY_PEER_PORT: u16 = 10_000;

/// A TCP scenario with the peer port it ran with: what the engine keeps as a
/// counterexample, shrinks and replays. Its file is the scenario's JSON with
/// `"kind": "tcp-scenario"` and `"peer_port"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpScenarioRun {
    /// The scenario.
    pub scenario: TcpScenario,
    /// The peer's port.
    pub peer_port: u16,
}

impl TcpScenarioRun {
    /// The kind in files and reports.
    pub const KIND: &'static str = "tcp-scenario";

    /// Reads a scenario file (with or without `kind` and `peer_port`: the regression files
    /// of `fixtures/tcp-regressions/` have neither).
    pub fn from_json(value: &serde_json::Value) -> Result<TcpScenarioRun, serde_json::Error> {
        let scenario: TcpScenario = serde_json::from_value(value.clone())?;
        let peer_port = value
            .get("peer_port")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(REPLAY_PEER_PORT);
        Ok(TcpScenarioRun {
            scenario,
            peer_port,
        })
    }
}

impl Scenario for TcpScenarioRun {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn name(&self) -> &str {
        &self.scenario.name
    }

    fn set_name(&mut self, name: String) {
        self.scenario.name = name;
    }

    fn needs(&self) -> Needs {
        Needs::scenario(self.scenario.ipv6)
    }

    fn step_lines(&self) -> Vec<String> {
        self.scenario
            .events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_else(|e| format!("<{e}>")))
            .collect()
    }

    fn len(&self) -> usize {
        self.scenario.events.len()
    }

    fn without_step(&self, index: usize) -> Box<dyn Scenario> {
        let mut copy = self.clone();
        if index < copy.scenario.events.len() {
            copy.scenario.events.remove(index);
        }
        Box::new(copy)
    }

    fn profile(&self) -> Option<ProfileName> {
        Some(self.scenario.profile)
    }

    fn set_profile(&mut self, profile: ProfileName) {
        self.scenario.profile = profile;
    }

    fn run(&self, session: &mut Session<'_>) -> Result<ScenarioOutcome, CheckError> {
        run_scenario(session, &self.scenario, self.peer_port)?;
        Ok(ScenarioOutcome::Agreed {
            summary: format!(
                "{} events, every segment and state as the model says",
                self.scenario.events.len()
            ),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        let mut value = with_kind(
            Self::KIND,
            serde_json::to_value(&self.scenario).unwrap_or_default(),
        );
        if let Some(fields) = value.as_object_mut() {
            fields.insert("peer_port".into(), self.peer_port.into());
        }
        value
    }

    fn clone_box(&self) -> Box<dyn Scenario> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
