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
//!    outcome, then the TCP state read from the stack.
//!
//! A mismatch ends the scenario with the expected and the observed exchange side by side.
//! Segments the model did not predict but that repeat one the stack already sent are its
//! retransmission timers at work: they are noted, not failed, in this immediate tier.

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
use crate::time::Duration;
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

/// Runs scenarios on one session; one connection (one peer port) per scenario.
pub struct ScenarioRunner<'s, 't> {
    session: &'s mut Session<'t>,
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
    /// Segments the stack sent so far (flags, seq, len) to recognise retransmissions.
    sent_by_stack: Vec<(TcpFlags, u32, usize)>,
    /// The exchange so far, as (expected, observed) lines, for the failure message.
    ladder: Vec<(String, String)>,
}

impl<'s, 't> ScenarioRunner<'s, 't> {
    /// A runner for `scenario` on `session`. `port` is used for both ends (the peer's and
    /// the stack's), so scenarios that share one target never meet.
    pub fn new(
        session: &'s mut Session<'t>,
        scenario: TcpScenario,
        port: u16,
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
        let config = Config {
            mss: u16::try_from(mss).unwrap_or(u16::MAX),
            ipv6: scenario.ipv6,
            sack: true,
            timestamps: true,
            window_scaling: true,
            profile: TcpDeviation::profile(scenario.profile),
        };
        Ok(ScenarioRunner {
            session,
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
            sent_by_stack: Vec::new(),
            ladder: Vec::new(),
        })
    }

    /// Runs every event; the first difference ends the scenario. The sockets the scenario
    /// opened are closed afterwards either way.
    pub fn run(mut self) -> Result<(), CheckError> {
        let events = self.scenario.events.clone();
        profile::scenario(events.len());
        let mut result = Ok(());
        for (i, event) in events.iter().enumerate() {
            let step = format!("event {} of {} ({event:?})", i + 1, events.len());
            self.session
                .note(format!("scenario {}: {step}", self.scenario.name));
            result = self.event(&step, *event);
            if result.is_err() {
                break;
            }
        }
        let since = self.session.now();
        let cleanup = self.close_everything();
        self.spent(Phase::Cleanup, since);
        result.and(cleanup)
    }

    /// Closes what the scenario left open: the connection with SO_LINGER 0 (a RST, no
    /// lingering state), then the listener.
    fn close_everything(&mut self) -> Result<(), CheckError> {
        let step = "closing the scenario's sockets";
        if let Some(sock) = self.conn.take() {
            self.session.call(
                step,
                SocketCall::SetOption {
                    sock,
                    option: SocketOption::Linger(Some(0)),
                },
            )?;
            self.session.call(step, SocketCall::Close { sock })?;
        }
        if std::mem::take(&mut self.listener_open) {
            self.session
                .call(step, SocketCall::Close { sock: LISTENER })?;
        }
        // Collect the resets those closes sent, so they stay in this scenario's trace.
        self.session
            .barrier(step, self.scenario.ipv6, BARRIER_TIMEOUT)?;
        Ok(())
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
        if self.scenario.ipv6 {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }

    fn mismatch(&self, step: &str, mut differences: Vec<String>) -> CheckError {
        differences.push(format!(
            "scenario: {}",
            serde_json::to_string(&self.scenario).unwrap_or_default()
        ));
        differences.push(side_by_side(&self.ladder));
        CheckError::Mismatch {
            step: step.to_string(),
            differences,
        }
    }

    fn event(&mut self, step: &str, event: TcpEvent) -> Result<(), CheckError> {
        let outputs: Vec<Output>;
        let mut call_outcome: Option<CallOutcome> = None;
        let since = self.session.now();
        match event {
            TcpEvent::Listen => {
                outputs = self.model.handle_call(Call::Listen);
                let call = SocketCall::Listen {
                    sock: LISTENER,
                    family: self.family(),
                    addr: Some(self.stack_ip),
                    port: self.stack_port,
                    backlog: 16,
                };
                call_outcome = Some(self.session.call(step, call)?);
                self.listener_open = true;
                self.ladder.push(("listen".into(), "listen".into()));
            }
            TcpEvent::Connect => {
                outputs = self.model.handle_call(Call::Connect);
                let family = self.family();
                self.session.call(
                    step,
                    SocketCall::Socket {
                        sock: CLIENT,
                        family,
                    },
                )?;
                self.session.call(
                    step,
                    SocketCall::Bind {
                        sock: CLIENT,
                        addr: self.stack_ip,
                        port: self.stack_port,
                    },
                )?;
                call_outcome = Some(self.session.call(
                    step,
                    SocketCall::Connect {
                        sock: CLIENT,
                        family,
                        addr: self.peer_ip,
                        port: self.peer_port,
                    },
                )?);
                self.conn = Some(CLIENT);
                self.ladder.push(("connect".into(), "connect".into()));
            }
            TcpEvent::Peer(p) => {
                if self.model.state() == State::Closed && self.listener_open {
                    // The connection is gone but the listener is still there: the next
                    // segment meets a fresh TCB in LISTEN (RFC 9293 §3.10.7.2).
                    self.model = Tcp::new(self.config.clone());
                    self.model.handle_call(Call::Listen);
                    self.iss = None;
                }
                let (seg_in, segment) = self.peer_segment(p);
                outputs = self.model.handle_segment(&seg_in);
                let line = render_segment(&segment, PEER_ISN, self.iss);
                self.ladder.push((format!("> {line}"), format!("> {line}")));
                self.session.send(step, &self.frame(segment))?;
            }
            TcpEvent::Send(_) | TcpEvent::Receive(_) if self.conn.is_none() => {
                self.ladder.push((
                    format!("{event:?}: no connection socket, skipped"),
                    String::new(),
                ));
                return Ok(());
            }
            TcpEvent::Send(n) => {
                outputs = self.model.handle_call(Call::Send(u32::from(n)));
                let sock = self.conn.unwrap_or(CLIENT);
                call_outcome = Some(self.session.call(
                    step,
                    SocketCall::Send {
                        sock,
                        data: vec![b'x'; usize::from(n)],
                    },
                )?);
            }
            TcpEvent::Receive(n) => {
                outputs = self.model.handle_call(Call::Receive(u32::from(n)));
                let sock = self.conn.unwrap_or(CLIENT);
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
                let sock = match (self.conn, self.model.state()) {
                    (Some(s), _) => s,
                    (None, State::Listen) if call != Call::ShutdownWrite => LISTENER,
                    (None, _) => {
                        self.ladder
                            .push((format!("{event:?}: no socket, skipped"), String::new()));
                        return Ok(());
                    }
                };
                outputs = self.model.handle_call(call);
                if call == Call::Abort {
                    self.session.call(
                        step,
                        SocketCall::SetOption {
                            sock,
                            option: SocketOption::Linger(Some(0)),
                        },
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
                    if sock == LISTENER {
                        self.listener_open = false;
                    } else {
                        self.conn = None;
                    }
                }
                self.ladder
                    .push((format!("{event:?}"), format!("{event:?}")));
            }
        }
        let phase = if matches!(event, TcpEvent::Peer(_)) {
            Phase::Send
        } else {
            Phase::Call
        };
        self.spent(phase, since);
        let since = self.session.now();
        let mut observed = self
            .session
            .barrier(step, self.scenario.ipv6, BARRIER_TIMEOUT)?;
        self.spent(Phase::Barrier, since);
        self.wait_for_delayed(step, &outputs, &mut observed)?;
        let since = self.session.now();
        self.compare_segments(step, &outputs, &observed)?;
        self.compare_call(step, event, &outputs, call_outcome.as_ref())?;
        self.spent(Phase::Compare, since);
        let since = self.session.now();
        if outputs.contains(&Output::Established) && (self.conn.is_none() || self.listener_open) {
            if let Some(old) = self.conn.take().filter(|_| self.listener_open) {
                // The application still held the previous, dead connection: it closes it
                // before taking the new one.
                self.session.call(step, SocketCall::Close { sock: old })?;
            }
            let outcome = self.session.call(
                step,
                SocketCall::Accept {
                    listener: LISTENER,
                    timeout_ms: 1000,
                },
            )?;
            match outcome {
                CallOutcome::NewSocket(id) => self.conn = Some(id),
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
    /// 0.5 s MUST-40 allows, then collects anything else with another barrier.
    fn wait_for_delayed(
        &mut self,
        step: &str,
        outputs: &[Output],
        observed: &mut Vec<Observed>,
    ) -> Result<(), CheckError> {
        let predicted = tcp::segments(outputs);
        let seen = |o: &[Observed], this: &Self| {
            this.flow_segments(o).map(|v| v.len()).unwrap_or(usize::MAX)
        };
        let have = seen(observed, self);
        if have >= predicted.len() || !predicted[have..].iter().all(|p| p.delayable) {
            return Ok(());
        }
        let since = self.session.now();
        let limit = since + Duration::from_millis(MAX_ACK_DELAY_MS);
        while seen(observed, self) < predicted.len() {
            let left = limit.saturating_since(self.session.now());
            if left == Duration::ZERO {
                break;
            }
            match self.session.next_frame(step, left)? {
                Some(frame) => observed.push(frame),
                None => break,
            }
        }
        self.spent(Phase::DelayedAck, since);
        let since = self.session.now();
        observed.extend(
            self.session
                .barrier(step, self.scenario.ipv6, BARRIER_TIMEOUT)?,
        );
        self.spent(Phase::SecondBarrier, since);
        Ok(())
    }

    /// The peer's segment for `p` at the model's current numbers, as the model sees it and
    /// as it goes on the wire.
    fn peer_segment(&mut self, p: PeerSegment) -> (SegmentIn, TcpSegment) {
        let flags = p.kind.flags();
        let synchronized =
            self.model.state().is_synchronized() || self.model.state() == State::SynReceived;
        let rcv_nxt = if synchronized {
            self.model.rcv_nxt()
        } else {
            PEER_ISN
        };
        let wnd = self.model.rcv_wnd();
        let seq = match p.seq {
            SeqAt::RcvNxtMinus1 => rcv_nxt.wrapping_sub(1),
            SeqAt::RcvNxt => rcv_nxt,
            SeqAt::WindowEndMinus1 => rcv_nxt.wrapping_add(wnd).wrapping_sub(1),
            SeqAt::WindowEnd => rcv_nxt.wrapping_add(wnd),
            SeqAt::Isn => PEER_ISN,
        };
        let ack_rel = match p.ack {
            AckAt::BelowUna => self.model.snd_una().wrapping_sub(1),
            AckAt::Una => self.model.snd_una(),
            AckAt::Nxt => self.model.snd_nxt(),
            AckAt::BeyondNxt => self.model.snd_nxt().wrapping_add(1),
        };
        let ack_rel = if flags.ack { ack_rel } else { 0 };
        let iss = self.iss.unwrap_or(0);
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
            ..TcpSegment::new(self.peer_port, self.stack_port, seq, ack_abs, wire_flags)
        };
        if flags.syn {
            // The peer's SYN offers MSS (as configured), SACK and window scaling; no
            // timestamps, so that every later segment is valid without them.
            if let Some(mss) = self.scenario.peer_mss {
                segment.options.push(TcpOption::Mss(mss));
            }
            segment.options.extend([
                TcpOption::SackPermitted,
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ]);
            seg_in.mss = self.scenario.peer_mss;
            seg_in.sack_permitted = true;
            seg_in.window_scale = Some(7);
            self.peer_offered_wscale = true;
        }
        (seg_in, segment)
    }

    fn frame(&self, segment: TcpSegment) -> Frame {
        let e = self.session.endpoints();
        match (self.peer_ip, self.stack_ip) {
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

    /// The TCP segments of this connection among the observed frames; anything malformed or
    /// foreign that was addressed to the peer is reported as an observation.
    fn flow_segments(&self, observed: &[Observed]) -> Result<Vec<TcpSegment>, Vec<String>> {
        let mut segments = Vec::new();
        let mut problems = Vec::new();
        for o in observed {
            match &o.parsed {
                Err(e) => problems.push(format!("malformed frame from the stack: {e}")),
                Ok(frame) => {
                    let ips = match &frame.network {
                        Network::Ipv4(p) => Some((IpAddr::V4(p.src), IpAddr::V4(p.dst))),
                        Network::Ipv6(p) => Some((IpAddr::V6(p.src), IpAddr::V6(p.dst))),
                        _ => None,
                    };
                    match (ips, frame.transport()) {
                        (Some((src, dst)), Some(Transport::Tcp(seg)))
                            if SocketAddr::new(src, seg.src_port)
                                == SocketAddr::new(self.stack_ip, self.stack_port)
                                && SocketAddr::new(dst, seg.dst_port)
                                    == SocketAddr::new(self.peer_ip, self.peer_port) =>
                        {
                            if seg.checksum_valid == Some(false) {
                                problems.push(format!(
                                    "segment with a bad checksum: {}",
                                    frame.summary()
                                ));
                            }
                            segments.push(seg.clone());
                        }
                        // Neighbour discovery and ARP traffic of the stack is not this flow's.
                        _ => {}
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
        observed: &[Observed],
    ) -> Result<(), CheckError> {
        let predicted = tcp::segments(outputs);
        let mut segments = self
            .flow_segments(observed)
            .map_err(|p| self.mismatch(step, p))?;
        // Retransmissions of what the stack already sent are its timers, not an answer:
        // of an earlier step's segment, or of one it sent earlier in this very answer (a
        // loaded machine can take longer between a call and its barrier than a tail loss
        // probe's 2-tick timer: the FIN then comes twice). Only segments that occupy
        // sequence space (SYN, FIN, data) are retransmitted; a pure ACK that repeats an
        // earlier one is an answer (a duplicate or challenge ACK).
        let mut in_this_answer = std::collections::HashSet::new();
        segments.retain(|s| {
            let occupies = s.flags.contains(TcpFlags::SYN)
                || s.flags.contains(TcpFlags::FIN)
                || !s.payload.is_empty();
            let key = (s.flags, s.seq, s.payload.len());
            let expected_syn = predicted
                .iter()
                .any(|p| p.flags.syn && s.flags.contains(TcpFlags::SYN));
            let again = self.sent_by_stack.contains(&key) || !in_this_answer.insert(key);
            !(occupies && again && !expected_syn)
        });
        let mut differences = Vec::new();
        for i in 0..predicted.len().max(segments.len()) {
            let expected = predicted.get(i).copied();
            let actual = segments.get(i);
            if let (Some(p), Some(s)) = (expected, actual)
                && p.flags.syn
                && s.flags.contains(TcpFlags::SYN)
                && self.iss.is_none()
            {
                // Learn the stack's ISS from its SYN or SYN-ACK (RFC 6528: unpredictable).
                self.iss = Some(s.seq.wrapping_sub(p.seq));
            }
            let expected_line = expected
                .map(|p| self.render_expected(p))
                .unwrap_or_default();
            let observed_line = actual
                .map(|s| {
                    format!(
                        "< {}",
                        render_segment(s, self.iss.unwrap_or(0), Some(PEER_ISN))
                    )
                })
                .unwrap_or_default();
            self.ladder
                .push((expected_line.clone(), observed_line.clone()));
            match (expected, actual) {
                (Some(p), Some(s)) => differences.extend(self.segment_differences(p, s)),
                (Some(_), None) => differences.push(format!(
                    "expected {}, the stack sent nothing",
                    expected_line.trim_start_matches("< ")
                )),
                (None, Some(_)) => differences.push(format!(
                    "the stack sent {}, the model expected nothing",
                    observed_line.trim_start_matches("< ")
                )),
                (None, None) => {}
            }
        }
        for s in &segments {
            self.sent_by_stack.push((s.flags, s.seq, s.payload.len()));
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
            self.stack_wscale = match ws {
                Some(w) if self.peer_offered_wscale => w.min(14),
                _ => 0,
            };
            self.model.observe_window(u32::from(s.window));
        } else if !s.flags.contains(TcpFlags::RST) {
            self.model
                .observe_window(u32::from(s.window) << self.stack_wscale);
        }
    }

    fn render_expected(&self, p: &SegmentOut) -> String {
        let iss = self.iss.unwrap_or(0);
        let seq = match p.seq_from {
            SeqFrom::Iss => p.seq.wrapping_add(iss),
            SeqFrom::Literal => p.seq,
        };
        let flags = model_flags_to_wire(p.flags);
        let mut seg = TcpSegment {
            payload: vec![0; p.len as usize],
            ..TcpSegment::new(self.stack_port, self.peer_port, seq, p.ack, flags)
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
        let iss = self.iss.unwrap_or(0);
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

    fn compare_call(
        &mut self,
        step: &str,
        event: TcpEvent,
        outputs: &[Output],
        outcome: Option<&CallOutcome>,
    ) -> Result<(), CheckError> {
        let Some(outcome) = outcome else {
            return Ok(());
        };
        let expected: Option<String> = match event {
            TcpEvent::Receive(_) => Some(
                outputs
                    .iter()
                    .find_map(|o| match o {
                        Output::Deliver(n) => Some(format!("data {n} bytes")),
                        Output::EndOfStream => Some("eof".into()),
                        Output::Error(tcp::AppError::ConnectionReset) => Some("ECONNRESET".into()),
                        Output::Error(tcp::AppError::BrokenPipe) => Some("EPIPE".into()),
                        Output::Error(tcp::AppError::ConnectionRefused) => {
                            Some("ECONNREFUSED".into())
                        }
                        // RFC 9293 §3.10.3: "error: connection does not exist".
                        Output::Error(tcp::AppError::InvalidState) => Some("ENOTCONN".into()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "timed out".into()),
            ),
            TcpEvent::Send(n) => Some(if outputs.iter().any(|o| matches!(o, Output::Error(_))) {
                "an error".into()
            } else {
                format!("sent {n}")
            }),
            _ => None,
        };
        let observed = match outcome {
            CallOutcome::Errno { name, .. } => name.clone(),
            other => other.to_string(),
        };
        self.ladder.push((
            format!(
                "* {event:?} = {}",
                expected.as_deref().unwrap_or("(not compared)")
            ),
            format!("* {event:?} = {observed}"),
        ));
        match expected {
            Some(e) if e == "an error" && matches!(outcome, CallOutcome::Errno { .. }) => Ok(()),
            Some(e) if e != observed => Err(self.mismatch(
                step,
                vec![format!("{event:?}: expected {e}, observed {observed}")],
            )),
            _ => Ok(()),
        }
    }

    fn compare_state(&mut self, step: &str) -> Result<(), CheckError> {
        let since = self.session.now();
        let socket = self.session.tcp_connection(
            step,
            SocketAddr::new(self.stack_ip, self.stack_port),
            SocketAddr::new(self.peer_ip, self.peer_port),
        )?;
        self.spent(Phase::StateRead, since);
        let observed = socket.map(|s| s.state);
        let expected = expected_socket_state(self.model.state());
        let name =
            |s: Option<TcpState>| s.map_or("no socket (CLOSED)".to_string(), |s| s.to_string());
        self.ladder.push((
            format!("# {}", name(expected)),
            format!("# {}", name(observed)),
        ));
        self.session.note(format!(
            "state: model {}, stack {}",
            self.model.state(),
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

/// Runs one scenario on `session` with `peer_port` as the peer's port.
pub fn run_scenario(
    session: &mut Session<'_>,
    scenario: &TcpScenario,
    peer_port: u16,
) -> Result<(), CheckError> {
    let result = ScenarioRunner::new(session, scenario.clone(), peer_port)?.run();
    if let Err(e) = &result
        && !matches!(e, CheckError::Dut { .. })
    {
        session.offer_counterexample(Counterexample::scenario(Box::new(TcpScenarioRun {
            scenario: scenario.clone(),
            peer_port,
        })));
    }
    result
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
