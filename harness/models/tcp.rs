//! A reference model of one TCP connection endpoint (the stack under test), as RFC 9293
//! §3.10 describes it, with the RFC 5961 hardening and a Linux profile.
//!
//! Read first: RFC 9293 §3.3.2 (states), §3.4 (sequence numbers), §3.5 (opening), §3.6
//! (closing), §3.10 (event processing); RFC 5961 §3–§5 (RST, SYN and ACK validation);
//! RFC 7323 §2.2, §3.2 (options on SYN segments); RFC 6691 (MSS); RFC 1122 §4.2.2.13
//! (close with unread data).
//!
//! # Call order
//!
//! The model is sans-IO. Feed it what happens to the stack, in order:
//! [`Tcp::handle_call`] for an application call, [`Tcp::handle_segment`] for a segment
//! from the peer, [`Tcp::observe_window`] when the stack advertises a receive window (the
//! window is an implementation choice, so the model learns it instead of predicting it).
//! Each returns the [`Output`]s the stack must produce: segments to send, data or end of
//! stream for the application, errors. [`Tcp::state`] is the state it must then be in.
//!
//! # Sequence spaces
//!
//! The peer's sequence numbers are absolute: the peer's ISN is an input. The stack's own
//! initial sequence number is chosen by the stack and is unpredictable by design (RFC
//! 6528), so the model counts the stack's sequence space **relative to its ISS** (ISS = 0);
//! the comparison with a real stack learns the ISS from its SYN or SYN-ACK and subtracts it.
//!
//! # Profiles
//!
//! The model takes a [`TcpProfile`], the one profile type of every model
//! ([`crate::models::profile`]): [`Profile::rfc`] follows the RFC text; [`Profile::linux`]
//! switches on the [`TcpDeviation`]s where Linux departs from it, each documented with the clause and the kernel function
//! (Linux 6.18 `net/ipv4/`: `tcp_input.c`, `tcp_minisocks.c`, `tcp_ipv4.c`) that does it.
//! Under Linux a half-open passive connection is a request socket and an orphaned
//! FIN-WAIT-2 or a TIME-WAIT connection a time-wait minisocket, each with its own rules.
//!
//! Timers (retransmission, keepalive, TIME-WAIT expiry) are not modelled here yet.

use std::fmt;

use crate::models::profile::{self, Profile};
use crate::models::seq;

/// The eleven states of RFC 9293 §3.3.2 (CLOSED included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a connection request.
    Listen,
    /// A SYN was sent, waiting for the matching SYN.
    SynSent,
    /// A SYN was received and one sent, waiting for its acknowledgment.
    SynReceived,
    /// An open connection.
    Established,
    /// Our FIN was sent, not yet acknowledged.
    FinWait1,
    /// Our FIN is acknowledged, waiting for the peer's.
    FinWait2,
    /// The peer's FIN arrived, waiting for the local close.
    CloseWait,
    /// Both FINs sent, ours not yet acknowledged.
    Closing,
    /// The peer closed first; our FIN is waiting for its acknowledgment.
    LastAck,
    /// Both sides closed; waiting for old duplicates to die out.
    TimeWait,
}

impl State {
    /// All eleven, in RFC 9293's order.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    /// Whether the connection is synchronized (RFC 9293 §3.5.2, group 3).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        })
    }
}

/// TCP control flags as the model sees them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Flags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

impl Flags {
    /// No flag at all.
    pub const NONE: Flags = Flags {
        syn: false,
        ack: false,
        fin: false,
        rst: false,
        psh: false,
    };
    /// SYN.
    pub const SYN: Flags = Flags {
        syn: true,
        ..Flags::NONE
    };
    /// SYN and ACK.
    pub const SYN_ACK: Flags = Flags {
        syn: true,
        ack: true,
        ..Flags::NONE
    };
    /// ACK.
    pub const ACK: Flags = Flags {
        ack: true,
        ..Flags::NONE
    };
    /// FIN and ACK.
    pub const FIN_ACK: Flags = Flags {
        fin: true,
        ack: true,
        ..Flags::NONE
    };
    /// PSH and ACK.
    pub const PSH_ACK: Flags = Flags {
        psh: true,
        ack: true,
        ..Flags::NONE
    };
    /// RST.
    pub const RST: Flags = Flags {
        rst: true,
        ..Flags::NONE
    };
    /// RST and ACK.
    pub const RST_ACK: Flags = Flags {
        rst: true,
        ack: true,
        ..Flags::NONE
    };
}

impl fmt::Display for Flags {
    /// tcpdump style: `S`, `S.`, `F.`, `R`, `P.`, `.`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if self.syn {
            s.push('S');
        }
        if self.fin {
            s.push('F');
        }
        if self.rst {
            s.push('R');
        }
        if self.psh {
            s.push('P');
        }
        if self.ack {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        f.write_str(&s)
    }
}

/// A segment from the peer, reduced to what the state machine reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentIn {
    /// Control flags.
    pub flags: Flags,
    /// SEG.SEQ (peer's space, absolute).
    pub seq: u32,
    /// SEG.ACK (stack's space, relative to its ISS).
    pub ack: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// SEG.WND as sent (unscaled: the receiver applies the peer's window scale once it is
    /// negotiated; a SYN's window is never scaled, RFC 7323 §2.2).
    pub window: u16,
    /// The MSS option, if any.
    pub mss: Option<u16>,
    /// The window-scale option, if any.
    pub window_scale: Option<u8>,
    /// Whether SACK-permitted is present.
    pub sack_permitted: bool,
    /// Whether the timestamps option is present.
    pub timestamps: bool,
}

impl SegmentIn {
    /// A segment with `flags`, `seq`, `ack` and `len`, a zero window and no options.
    pub fn new(flags: Flags, seq: u32, ack: u32, len: u32) -> Self {
        SegmentIn {
            flags,
            seq,
            ack,
            len,
            window: 0,
            mss: None,
            window_scale: None,
            sack_permitted: false,
            timestamps: false,
        }
    }

    /// SEG.LEN: the payload plus one for SYN and one for FIN.
    pub fn seg_len(&self) -> u32 {
        self.len + u32::from(self.flags.syn) + u32::from(self.flags.fin)
    }

    /// The sequence number just after the segment (SEG.SEQ + SEG.LEN; Linux's `end_seq`).
    pub fn end_seq(&self) -> u32 {
        self.seq.wrapping_add(self.seg_len())
    }
}

/// Options the stack must put on a segment it sends.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OptionsOut {
    /// MSS option with this value (SYN segments only, RFC 9293 MUST-65).
    pub mss: Option<u16>,
    /// Window scale present (its value follows the receive buffer: not predicted).
    pub window_scale: bool,
    /// SACK-permitted present.
    pub sack_permitted: bool,
    /// Timestamps present.
    pub timestamps: bool,
    /// SACK blocks (peer's space, absolute), when SACK was negotiated.
    pub sack_blocks: Vec<(u32, u32)>,
}

/// What a predicted sequence number is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum SeqFrom {
    /// The stack's ISS (the usual case: the value is relative).
    #[default]
    Iss,
    /// Nothing: the value is literal, as in the `<SEQ=0>` of a RST to a SYN (RFC 9293 §3.10.7.1).
    Literal,
}

/// A segment the stack must send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentOut {
    /// Control flags.
    pub flags: Flags,
    /// SEG.SEQ in the stack's space, counted from `seq_from`.
    pub seq: u32,
    /// What `seq` is counted from.
    pub seq_from: SeqFrom,
    /// Whether the stack may delay this segment (an acknowledgment of in-order data or of
    /// a FIN: RFC 9293 §3.8.6.3, SHLD-18, at most 0.5 s by MUST-40); every other segment
    /// answers at once.
    pub delayable: bool,
    /// SEG.ACK in the peer's space (absolute), meaningful when ACK is set.
    pub ack: u32,
    /// Payload length.
    pub len: u32,
    /// Options it must carry.
    pub options: OptionsOut,
    /// Why the stack sends it, in RFC terms (`challenge ACK`, `ACK of data`).
    pub reason: &'static str,
}

/// What an application asks of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Call {
    /// Passive OPEN.
    Listen,
    /// Active OPEN.
    Connect,
    /// SEND of `len` bytes.
    Send(u32),
    /// RECEIVE of up to `max` bytes.
    Receive(u32),
    /// Half-close: no more sending (shutdown(SHUT_WR)).
    ShutdownWrite,
    /// CLOSE.
    Close,
    /// ABORT (close with SO_LINGER zero).
    Abort,
}

/// An error the application sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AppError {
    /// The peer refused the connection (RST in SYN-SENT).
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The call is not valid in this state ("connection does not exist", "closing").
    InvalidState,
    /// The connection was reset after the peer had closed its side (Linux reports EPIPE).
    BrokenPipe,
}

/// What the stack must do after an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Output {
    /// Send this segment.
    Segment(SegmentOut),
    /// Deliver `n` bytes to the application.
    Deliver(u32),
    /// The application reads end of stream.
    EndOfStream,
    /// The connection is established (connect returns, or accept can return).
    Established,
    /// The application sees this error.
    Error(AppError),
}

/// The segments among `outputs`, in order.
pub fn segments(outputs: &[Output]) -> Vec<&SegmentOut> {
    outputs
        .iter()
        .filter_map(|o| {
            if let Output::Segment(s) = o {
                Some(s)
            } else {
                None
            }
        })
        .collect()
}

/// One place where Linux departs from the RFC text. Each variant names the clause and the
/// kernel function (Linux 6.18, `net/ipv4/`) where the behaviour lives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum TcpDeviation {
    /// RFC 9293 §3.10.7.2: a SYN with FIN in LISTEN would be processed as a SYN; Linux drops
    /// it (CVE-2012-6638 fix, `tcp_rcv_state_process`).
    DropSynFinInListen,
    /// RFC 9293 §3.10.7.4 in SYN-RECEIVED (a passive open): Linux keeps the half-open
    /// connection in a request socket and `tcp_check_req` (tcp_minisocks.c) runs its own
    /// checks, in this order: a pure SYN carrying the IRS gets the SYN-ACK again; a RST
    /// with SEG.SEQ = RCV.NXT drops the request (back to LISTEN), one elsewhere in the
    /// window (`tcp_in_window`, which admits an empty segment at RCV.NXT+RCV.WND) draws an
    /// ACK, any other is ignored (measured on 6.18.44; the 6.18.y `tcp_check_req` text drops
    /// every in-window RST, so this kernel carries a later change); an ACK other than ISS+1
    /// is answered by the listener with `<SEQ=SEG.ACK><CTL=RST>` *before* the sequence
    /// number is looked at (RFC: sequence first); a segment outside the window draws an
    /// ACK; a SYN in the window is an "embryonic reset": the request is dropped and the
    /// segment answered as `tcp_v4_send_reset` does (RFC: back to LISTEN silently, RFC 5961
    /// §4: challenge ACK); a segment without ACK is dropped.
    SynReceivedIsRequestSocket,
    /// RFC 5961 §3.2: only RCV.NXT resets; Linux also accepts RCV.NXT−1 in CLOSE-WAIT,
    /// CLOSING and LAST-ACK (`tcp_reset_check`).
    RstAtRcvNxtMinusOneAfterFin,
    /// RFC 9293 §3.10.5 ABORT sends `<SEQ=SND.NXT><CTL=RST>`; Linux sets ACK too
    /// (`<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>`), for close with unread data and SO_LINGER 0.
    AbortRstCarriesAck,
    /// RFC 9293 §3.10.7.2: text on a SYN "should be queued for later processing"; Linux
    /// (no Fast Open cookie) discards it and acknowledges only the SYN.
    DiscardSynData,
    /// RFC 9293 §3.6.1 MAY-2 / RFC 6191: Linux accepts a SYN (no ACK, no RST) with
    /// SEG.SEQ > RCV.NXT in TIME-WAIT as a new connection when a listener is there
    /// (`tcp_timewait_state_process` returns `TCP_TW_SYN`), with ISS = the old SND.NXT +
    /// 65537. RFC 5961 §4 would answer it with a challenge ACK.
    TimeWaitSynReopens,
    /// RFC 9293 §3.10.7.4 (eighth) leaves the answer to out-of-order data to the ACK policy
    /// (SHLD-31, MAY-13); Linux acknowledges it at once with SACK blocks (RFC 2018) and
    /// old data with a D-SACK block (RFC 2883).
    ImmediateDupAckWithSack,
    /// RFC 9293 §3.10.7.4 (second check): after a RST, "any outstanding RECEIVEs and SEND
    /// should receive 'reset' responses"; Linux reports EPIPE instead of ECONNRESET when the
    /// reset arrives in CLOSE-WAIT (`tcp_reset`).
    ResetInCloseWaitIsBrokenPipe,
    /// RFC 9293 §3.10.7.4 first check (the four-case acceptability table): Linux's
    /// `tcp_sequence` (tcp_input.c) rejects a segment only when it ends before RCV.NXT
    /// (`end_seq < rcv_wup`) or starts after RCV.NXT+RCV.WND; one that starts inside but
    /// ends beyond the window is accepted while the receive queue is empty, and always when
    /// only its FIN lies beyond ("some stacks are known to handle FIN incorrectly"). So an
    /// empty segment at RCV.NXT+RCV.WND and a FIN ending at RCV.NXT pass (RFC:
    /// unacceptable): a RST there then draws a challenge ACK, and `tcp_data_queue`
    /// acknowledges a duplicate or out-of-window text at once. A rejected SYN draws a
    /// challenge ACK (`tcp_validate_incoming`, `syn_challenge`).
    LinuxSequenceCheck,
    /// RFC 9293 §3.10.7.4: a segment is checked for sequence number before anything else, so
    /// an unacceptable one is acknowledged whatever its flags; Linux discards a segment with
    /// none of ACK, RST and SYN before that check (`tcp_rcv_state_process`,
    /// `tcp_rcv_established`: `SKB_DROP_REASON_TCP_FLAGS`), silently.
    DropSegmentsWithoutAckRstSyn,
    /// RFC 5961 §5.2: an ACK is too old (challenge ACK) below SND.UNA − MAX.SND.WND; Linux
    /// bounds MAX.SND.WND by the bytes acknowledged so far (`tcp_ack`: "do not accept ACK
    /// for bytes we never sent", `min(max_window, bytes_acked)`), so on a connection where
    /// nothing was acknowledged yet every ACK below SND.UNA is too old.
    OldAckBoundByBytesAcked,
    /// RFC 1122 §4.2.2.13 (SHLD: new data after CLOSE draws a RST) and RFC 9293 §3.10.7.4
    /// seventh (CLOSE-WAIT, CLOSING, LAST-ACK ignore the text): in Linux, when the socket
    /// can no longer receive (`RCV_SHUTDOWN`: closed by the application, or the peer's FIN
    /// came), text beyond RCV.NXT in FIN-WAIT-1/2, or starting before RCV.NXT in CLOSE-WAIT,
    /// CLOSING, LAST-ACK, resets the connection (`tcp_reset`) and is answered as
    /// `tcp_v4_send_reset` answers a segment (`<SEQ=SEG.ACK><CTL=RST>`), as is an orphaned
    /// FIN-WAIT-1 whose FIN is acknowledged by a segment bringing new data
    /// (`tcp_rcv_state_process`, TCP_FIN_WAIT1); a segment starting at or after RCV.NXT in
    /// CLOSE-WAIT, CLOSING, LAST-ACK is ignored, FIN included (the `break` before
    /// `tcp_data_queue`). An ACK that completes CLOSING or LAST-ACK ends processing there
    /// (`goto consume`).
    ResetOnDataAfterShutdown,
    /// RFC 9293 §3.10.7.4 in FIN-WAIT-2: once the application has closed, Linux replaces
    /// the socket by a time-wait minisocket in substate FIN-WAIT-2 (`tcp_time_wait`), which
    /// `tcp_timewait_state_process` runs: a segment outside the window (`tcp_in_window`)
    /// draws an ACK, RST included; a RST in it ends the connection; a SYN at or after
    /// RCV.NXT, or anything bringing new text other than the FIN at RCV.NXT, is answered by
    /// `tcp_v4_send_reset` and ends it; a segment without ACK or new sequence space is
    /// absorbed silently; the FIN at RCV.NXT moves to TIME-WAIT with an ACK. The ACK number
    /// is never checked.
    OrphanedFinWait2IsMinisocket,
    /// RFC 9293 §3.10.7.4 in TIME-WAIT: Linux keeps only a time-wait minisocket
    /// (`tcp_timewait_state_process`): a RST at RCV.NXT kills it (`tcp_rfc1337=0`), an empty
    /// ACK at RCV.NXT is absorbed silently, a RST anywhere else is ignored, and every other
    /// segment (old FIN, SYN, data, out-of-window ACK) draws `<SEQ=SND.NXT><ACK=RCV.NXT>`
    /// (RFC: RFC 5961 challenge ACK for SYN, acceptability test for the rest).
    TimeWaitMinisocket,
    /// RFC 7323 §2.2 and §3.2: a `<SYN,ACK>` may carry the window-scale and timestamps options
    /// only if the `<SYN>` it answers had them (TSopt: MUST NOT); in a simultaneous open
    /// Linux's `<SYN,ACK>` from SYN-SENT is its own SYN sent again (`tcp_send_synack`), with
    /// every option its SYN carried (`tcp_syn_options` reads the sysctls, not the peer's
    /// SYN).
    SimultaneousOpenSynAckRepeatsSynOptions,
    /// RFC 9293 §3.10.7.4 and RFC 5961 §4: in SYN-RECEIVED a SYN-ACK at RCV.NXT−1 is outside
    /// the window (an ACK answers it) and its SYN draws a challenge ACK; after a
    /// simultaneous open Linux accepts the peer's SYN-ACK (SEG.SEQ+1 = RCV.NXT, SEG.ACK =
    /// SND.NXT) as the acknowledgment that completes the handshake
    /// (`tcp_validate_incoming`, "goto pass").
    SimultaneousOpenSynAckCompletes,
    /// RFC 9293 §3.10.4 CLOSE in SYN-RECEIVED: "If no SENDs have been issued and there is no
    /// pending data to send, then form a FIN segment and send it, and enter FIN-WAIT-1
    /// state"; after a simultaneous open Linux stays in SYN-RECEIVED and holds the FIN until
    /// the peer acknowledges its SYN, then sends it and enters FIN-WAIT-1.
    FinQueuedUntilHandshakeCompletes,
    /// RFC 9293 §3.10.4/§3.10.3: after CLOSE deleted the TCB in SYN-SENT, a RECEIVE gets
    /// "error: connection does not exist"; Linux reports ECONNRESET (`tcp_disconnect` sets
    /// `sk_err`).
    ShutdownInSynSentReportsReset,
}

/// Which reading of the RFCs the model follows: the one profile type
/// ([`crate::models::profile::Profile`]) over [`TcpDeviation`].
pub type TcpProfile = Profile<TcpDeviation>;

impl profile::Deviation for TcpDeviation {
    const MODEL: &'static str = "tcp";
    const ALL: &'static [TcpDeviation] = &[
        TcpDeviation::DropSynFinInListen,
        TcpDeviation::SynReceivedIsRequestSocket,
        TcpDeviation::RstAtRcvNxtMinusOneAfterFin,
        TcpDeviation::AbortRstCarriesAck,
        TcpDeviation::DiscardSynData,
        TcpDeviation::TimeWaitSynReopens,
        TcpDeviation::ImmediateDupAckWithSack,
        TcpDeviation::ResetInCloseWaitIsBrokenPipe,
        TcpDeviation::LinuxSequenceCheck,
        TcpDeviation::DropSegmentsWithoutAckRstSyn,
        TcpDeviation::OldAckBoundByBytesAcked,
        TcpDeviation::ResetOnDataAfterShutdown,
        TcpDeviation::OrphanedFinWait2IsMinisocket,
        TcpDeviation::TimeWaitMinisocket,
        TcpDeviation::SimultaneousOpenSynAckRepeatsSynOptions,
        TcpDeviation::SimultaneousOpenSynAckCompletes,
        TcpDeviation::FinQueuedUntilHandshakeCompletes,
        TcpDeviation::ShutdownInSynSentReportsReset,
    ];
    /// Linux 6.x with the sysctls netconform pins (`tcp_invalid_ratelimit=0`,
    /// `tcp_rfc1337=0`, SACK, timestamps and window scaling on): every deviation.
    const LINUX: &'static [TcpDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            TcpDeviation::DropSynFinInListen | TcpDeviation::DiscardSynData => "RFC 9293 §3.10.7.2",
            TcpDeviation::RstAtRcvNxtMinusOneAfterFin => "RFC 5961 §3.2",
            TcpDeviation::AbortRstCarriesAck => "RFC 9293 §3.10.5",
            TcpDeviation::TimeWaitSynReopens => "RFC 5961 §4",
            TcpDeviation::OldAckBoundByBytesAcked => "RFC 5961 §5.2",
            TcpDeviation::SimultaneousOpenSynAckRepeatsSynOptions => "RFC 7323 §2.2, §3.2",
            TcpDeviation::FinQueuedUntilHandshakeCompletes
            | TcpDeviation::ShutdownInSynSentReportsReset => "RFC 9293 §3.10.4",
            TcpDeviation::SynReceivedIsRequestSocket
            | TcpDeviation::ImmediateDupAckWithSack
            | TcpDeviation::ResetInCloseWaitIsBrokenPipe
            | TcpDeviation::LinuxSequenceCheck
            | TcpDeviation::DropSegmentsWithoutAckRstSyn
            | TcpDeviation::ResetOnDataAfterShutdown
            | TcpDeviation::OrphanedFinWait2IsMinisocket
            | TcpDeviation::TimeWaitMinisocket
            | TcpDeviation::SimultaneousOpenSynAckCompletes => "RFC 9293 §3.10.7.4",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            TcpDeviation::DropSynFinInListen => "drops a SYN that carries FIN in LISTEN",
            TcpDeviation::SynReceivedIsRequestSocket => {
                "a passive SYN-RECEIVED is a request socket with checks of its own (tcp_check_req)"
            }
            TcpDeviation::RstAtRcvNxtMinusOneAfterFin => {
                "a RST at RCV.NXT-1 also resets in CLOSE-WAIT, CLOSING and LAST-ACK"
            }
            TcpDeviation::AbortRstCarriesAck => "the RST of an abort carries ACK=RCV.NXT",
            TcpDeviation::DiscardSynData => "discards text on a SYN and acknowledges only the SYN",
            TcpDeviation::TimeWaitSynReopens => {
                "a SYN above RCV.NXT in TIME-WAIT opens a new connection when a listener is there"
            }
            TcpDeviation::ImmediateDupAckWithSack => {
                "acknowledges out-of-order data at once, with SACK and D-SACK blocks"
            }
            TcpDeviation::ResetInCloseWaitIsBrokenPipe => {
                "a reset in CLOSE-WAIT is reported as EPIPE, not ECONNRESET"
            }
            TcpDeviation::LinuxSequenceCheck => {
                "tcp_sequence's acceptability test instead of the four-case table"
            }
            TcpDeviation::DropSegmentsWithoutAckRstSyn => {
                "drops a segment with none of ACK, RST and SYN before the sequence check"
            }
            TcpDeviation::OldAckBoundByBytesAcked => {
                "bounds MAX.SND.WND by the bytes acknowledged so far when judging old ACKs"
            }
            TcpDeviation::ResetOnDataAfterShutdown => {
                "text that arrives after the receive side is shut down resets the connection"
            }
            TcpDeviation::OrphanedFinWait2IsMinisocket => {
                "an orphaned FIN-WAIT-2 is a time-wait minisocket with rules of its own"
            }
            TcpDeviation::TimeWaitMinisocket => {
                "TIME-WAIT is a minisocket: most segments draw <SEQ=SND.NXT><ACK=RCV.NXT>"
            }
            TcpDeviation::SimultaneousOpenSynAckRepeatsSynOptions => {
                "the SYN-ACK of a simultaneous open repeats every option of its own SYN"
            }
            TcpDeviation::SimultaneousOpenSynAckCompletes => {
                "the peer's SYN-ACK at RCV.NXT-1 completes a simultaneous open"
            }
            TcpDeviation::FinQueuedUntilHandshakeCompletes => {
                "CLOSE in SYN-RECEIVED holds the FIN until the peer acknowledges the SYN"
            }
            TcpDeviation::ShutdownInSynSentReportsReset => {
                "a RECEIVE after CLOSE in SYN-SENT reports ECONNRESET"
            }
        }
    }
}

/// What the stack is configured to do (inputs, not choices of the model).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// The MSS the stack announces: the interface MTU less 40 (IPv4) or 60 (IPv6).
    pub mss: u16,
    /// Whether the stack is IPv6 (the default send MSS is 1220 instead of 536).
    pub ipv6: bool,
    /// SACK enabled (`tcp_sack`).
    pub sack: bool,
    /// Timestamps enabled (`tcp_timestamps`).
    pub timestamps: bool,
    /// Window scaling enabled (`tcp_window_scaling`).
    pub window_scaling: bool,
    /// The deviations from the RFC text.
    pub profile: TcpProfile,
}

impl Config {
    /// A stack on an MTU 1500 IPv4 link with everything on, under `profile`.
    pub fn ipv4(profile: TcpProfile) -> Self {
        Config {
            mss: 1460,
            ipv6: false,
            sack: true,
            timestamps: true,
            window_scaling: true,
            profile,
        }
    }
}

/// The model of one endpoint: the stack's TCB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcp {
    config: Config,
    state: State,
    /// Whether the connection was opened passively (SYN-RECEIVED returns to LISTEN; the
    /// listener is taken to be still listening, e.g. for a SYN that reopens TIME-WAIT).
    passive: bool,
    /// ISS, relative to the ISS of the first incarnation (0, unless TIME-WAIT was reopened).
    iss: u32,
    /// SND.UNA, relative to ISS.
    snd_una: u32,
    /// SND.NXT, relative to ISS.
    snd_nxt: u32,
    /// Whether our FIN has been sent (its sequence number is `snd_nxt - 1` once sent).
    fin_sent: bool,
    /// The largest window the peer offered (MAX.SND.WND, RFC 5961 §5.2), in bytes (scaled).
    max_snd_wnd: u32,
    /// The peer's window scale, once both SYNs offered one (RFC 7323 §2.2), else 0.
    snd_wscale: u8,
    /// Bytes of the stack's sequence space acknowledged so far (Linux `bytes_acked`).
    bytes_acked: u32,
    /// IRS, the peer's ISN.
    irs: u32,
    /// RCV.NXT (peer's space).
    rcv_nxt: u32,
    /// RCV.WND as last advertised by the stack (learned).
    rcv_wnd: u32,
    /// Out-of-order data held, as (start, end) in the peer's space, sorted.
    out_of_order: Vec<(u32, u32)>,
    /// Bytes received but not yet read by the application.
    unread: u32,
    /// The peer's FIN has been received.
    fin_received: bool,
    /// A FIN the application asked for before the handshake completed (Linux queues it).
    fin_pending: bool,
    /// The sequence number of a FIN that arrived out of order (held with its data, and
    /// reported in SACK blocks, until the hole before it fills).
    fin_out_of_order: Option<u32>,
    /// The peer's FIN waits in the receive queue for the application (it reads it as end of
    /// stream; a close purges it). With `unread`, whether the receive queue is empty.
    fin_queued: bool,
    /// The connection lives in a Linux time-wait minisocket (FIN-WAIT-2 after close,
    /// TIME-WAIT): see [`TcpDeviation::OrphanedFinWait2IsMinisocket`].
    minisocket: bool,
    /// The application closed the socket (it can no longer read).
    orphaned: bool,
    /// An error the application has not read yet (a reset by the peer).
    pending_error: Option<AppError>,
    /// Send MSS in use (from the peer's MSS option, or the default).
    send_mss: u32,
    /// Options negotiated on the handshake.
    sack_ok: bool,
    timestamps_ok: bool,
}

impl Tcp {
    /// A stack socket in CLOSED with `config`.
    pub fn new(config: Config) -> Self {
        Tcp {
            config,
            state: State::Closed,
            passive: false,
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            fin_sent: false,
            max_snd_wnd: 0,
            snd_wscale: 0,
            bytes_acked: 0,
            irs: 0,
            rcv_nxt: 0,
            rcv_wnd: 65_535,
            out_of_order: Vec::new(),
            unread: 0,
            fin_received: false,
            fin_queued: false,
            fin_pending: false,
            fin_out_of_order: None,
            minisocket: false,
            orphaned: false,
            pending_error: None,
            send_mss: 536,
            sack_ok: false,
            timestamps_ok: false,
        }
    }

    /// The state the stack must be in.
    pub fn state(&self) -> State {
        self.state
    }

    /// RCV.NXT (peer's space).
    pub fn rcv_nxt(&self) -> u32 {
        self.rcv_nxt
    }

    /// RCV.WND as last learned.
    pub fn rcv_wnd(&self) -> u32 {
        self.rcv_wnd
    }

    /// SND.NXT relative to the stack's ISS.
    pub fn snd_nxt(&self) -> u32 {
        self.snd_nxt
    }

    /// SND.UNA relative to the stack's ISS.
    pub fn snd_una(&self) -> u32 {
        self.snd_una
    }

    /// The send MSS the stack must use for data (options it carries on every segment
    /// already subtracted). A peer's MSS option smaller than those options leaves no room:
    /// 0 here, and SEND then puts one byte in each segment. (Linux floors the MSS at
    /// `tcp_min_snd_mss`, 48 by default, which the model does not do.)
    pub fn send_mss(&self) -> u32 {
        self.send_mss
            .saturating_sub(if self.timestamps_ok { 12 } else { 0 })
    }

    /// Bytes received and not yet read.
    pub fn unread(&self) -> u32 {
        self.unread
    }

    /// The stack advertised a receive window of `window` bytes (already scaled).
    pub fn observe_window(&mut self, window: u32) {
        self.rcv_wnd = window;
    }

    fn profile(&self, deviation: TcpDeviation) -> bool {
        self.config.profile.has(deviation)
    }

    fn segment(&self, flags: Flags, seq: u32, ack: u32, len: u32, reason: &'static str) -> Output {
        Output::Segment(SegmentOut {
            flags,
            seq,
            seq_from: SeqFrom::Iss,
            delayable: false,
            ack,
            len,
            options: OptionsOut::default(),
            reason,
        })
    }

    /// `<SEQ=0><ACK=ack><CTL=RST,ACK>`: the reset that answers a segment without ACK.
    fn reset_literal_zero(&self, ack: u32, reason: &'static str) -> Output {
        Output::Segment(SegmentOut {
            flags: Flags::RST_ACK,
            seq: 0,
            seq_from: SeqFrom::Literal,
            delayable: false,
            ack,
            len: 0,
            options: OptionsOut::default(),
            reason,
        })
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`, with SACK blocks when SACK was negotiated and
    /// there is out-of-order data.
    fn ack_now(&self, reason: &'static str) -> Output {
        let mut out = SegmentOut {
            flags: Flags::ACK,
            seq: self.snd_nxt,
            seq_from: SeqFrom::Iss,
            delayable: false,
            ack: self.rcv_nxt,
            len: 0,
            options: OptionsOut {
                timestamps: self.timestamps_ok,
                ..OptionsOut::default()
            },
            reason,
        };
        if self.sack_ok && self.profile(TcpDeviation::ImmediateDupAckWithSack) {
            out.options.sack_blocks = self.out_of_order.clone();
        }
        Output::Segment(out)
    }

    /// The SYN or SYN-ACK the stack sends, with the options RFC 7323 §2.2/§3.2 and RFC
    /// 2018 allow it (the SYN-ACK only echoes what the SYN offered).
    fn syn_options(&self, offered: Option<&SegmentIn>) -> OptionsOut {
        let c = &self.config;
        match offered {
            None => OptionsOut {
                mss: Some(c.mss),
                window_scale: c.window_scaling,
                sack_permitted: c.sack,
                timestamps: c.timestamps,
                sack_blocks: Vec::new(),
            },
            Some(syn) => OptionsOut {
                mss: Some(c.mss),
                window_scale: c.window_scaling && syn.window_scale.is_some(),
                sack_permitted: c.sack && syn.sack_permitted,
                timestamps: c.timestamps && syn.timestamps,
                sack_blocks: Vec::new(),
            },
        }
    }

    fn learn_syn(&mut self, syn: &SegmentIn) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq.wrapping_add(1);
        let default_mss = if self.config.ipv6 { 1220 } else { 536 };
        self.send_mss = u32::from(syn.mss.unwrap_or(default_mss)).min(u32::from(self.config.mss));
        self.sack_ok = self.config.sack && syn.sack_permitted;
        self.timestamps_ok = self.config.timestamps && syn.timestamps;
        // RFC 7323 §2.2/§2.3: scaling applies once both SYNs offered it; at most 14.
        self.snd_wscale = match syn.window_scale {
            Some(w) if self.config.window_scaling => w.min(14),
            _ => 0,
        };
    }

    /// `<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>` with the options the SYN `offered` allows.
    fn syn_ack(&self, offered: Option<&SegmentIn>, reason: &'static str) -> Output {
        Output::Segment(SegmentOut {
            flags: Flags::SYN_ACK,
            seq: self.iss,
            seq_from: SeqFrom::Iss,
            delayable: false,
            ack: self.rcv_nxt,
            len: 0,
            options: self.syn_options(offered),
            reason,
        })
    }

    /// What Linux's `tcp_v4_send_reset` (tcp_ipv4.c) sends in answer to `seg`, as RFC 9293
    /// §3.10.7.1 does for CLOSED: `<SEQ=SEG.ACK><CTL=RST>` when it carries ACK, else
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. Never an answer to a RST.
    fn reset_answering(&self, seg: &SegmentIn, reason: &'static str) -> Option<Output> {
        if seg.flags.rst {
            None
        } else if seg.flags.ack {
            Some(self.segment(Flags::RST, seg.ack, 0, 0, reason))
        } else {
            Some(self.reset_literal_zero(seg.end_seq(), reason))
        }
    }

    /// Whether the receive queue holds nothing: no unread text, no unread FIN.
    fn receive_queue_empty(&self) -> bool {
        self.unread == 0 && !self.fin_queued
    }

    /// An application call.
    pub fn handle_call(&mut self, call: Call) -> Vec<Output> {
        let mut out = Vec::new();
        match (call, self.state) {
            (Call::Listen, State::Closed) => {
                self.state = State::Listen;
                self.passive = true;
            }
            (Call::Connect, State::Closed) => {
                // RFC 9293 §3.10.1: send <SEQ=ISS><CTL=SYN>, SND.UNA = ISS, SND.NXT = ISS+1.
                self.snd_una = self.iss;
                self.snd_nxt = self.iss.wrapping_add(1);
                self.state = State::SynSent;
                out.push(Output::Segment(SegmentOut {
                    flags: Flags::SYN,
                    seq: self.iss,
                    seq_from: SeqFrom::Iss,
                    delayable: false,
                    ack: 0,
                    len: 0,
                    options: self.syn_options(None),
                    reason: "active OPEN",
                }));
            }
            (Call::Send(len), State::Established | State::CloseWait) if !self.fin_sent => {
                // §3.10.2: segmentize and send with a piggybacked ACK; PSH on the last one.
                let mss = self.send_mss().max(1);
                let mut left = len;
                while left > 0 {
                    let n = left.min(mss);
                    left -= n;
                    let flags = if left == 0 {
                        Flags::PSH_ACK
                    } else {
                        Flags::ACK
                    };
                    out.push(Output::Segment(SegmentOut {
                        flags,
                        seq: self.snd_nxt,
                        seq_from: SeqFrom::Iss,
                        delayable: false,
                        ack: self.rcv_nxt,
                        len: n,
                        options: OptionsOut {
                            timestamps: self.timestamps_ok,
                            ..OptionsOut::default()
                        },
                        reason: "SEND",
                    }));
                    self.snd_nxt = self.snd_nxt.wrapping_add(n);
                }
            }
            (Call::Send(_), _) => out.push(Output::Error(AppError::InvalidState)),
            (Call::Receive(max), _) => {
                if let Some(error) = self.pending_error.take() {
                    // A reset is reported once; later reads see end of stream.
                    self.fin_received = true;
                    self.unread = 0;
                    out.push(Output::Error(error));
                } else if self.unread > 0 {
                    let n = self.unread.min(max);
                    self.unread -= n;
                    out.push(Output::Deliver(n));
                } else if self.fin_received {
                    // Reading the end of stream consumes the FIN from the receive queue.
                    self.fin_queued = false;
                    out.push(Output::EndOfStream);
                } else if self.state == State::Closed {
                    // §3.10.3 CLOSED: "error: connection does not exist". In LISTEN, SYN-SENT
                    // and SYN-RECEIVED the RECEIVE is queued until ESTABLISHED (it waits).
                    out.push(Output::Error(AppError::InvalidState));
                }
            }
            (Call::ShutdownWrite, State::SynReceived)
                if !self.passive
                    && self.profile(TcpDeviation::FinQueuedUntilHandshakeCompletes) =>
            {
                // The FIN is only queued (the socket stays in SYN-RECEIVED, as sock_diag
                // shows); it goes out, and FIN-WAIT-1 begins, once our SYN is acknowledged.
                self.fin_pending = true;
            }
            (Call::ShutdownWrite, State::Established | State::SynReceived) => {
                self.send_fin(State::FinWait1, &mut out)
            }
            (Call::ShutdownWrite, State::CloseWait) => self.send_fin(State::LastAck, &mut out),
            // RFC 9293 §3.10.4 CLOSE in SYN-SENT: "Delete the TCB"; Linux's tcp_shutdown
            // moves SYN-SENT to CLOSE the same way (tcp_close_state), sending nothing.
            (Call::ShutdownWrite, State::SynSent) => {
                self.state = State::Closed;
                if self.profile(TcpDeviation::ShutdownInSynSentReportsReset) {
                    self.pending_error = Some(AppError::ConnectionReset);
                }
            }
            // §3.10.4 CLOSE in CLOSED: "error: connection does not exist"; in TIME-WAIT:
            // "error: connection closing" (Linux: the application's socket is closed once
            // a time-wait minisocket holds the connection, ENOTCONN either way).
            (Call::ShutdownWrite, State::Closed | State::TimeWait) => {
                out.push(Output::Error(AppError::InvalidState))
            }
            (Call::ShutdownWrite, _) => {}
            (Call::Close, State::Listen | State::SynSent) => self.state = State::Closed,
            (Call::Close | Call::Abort, State::Closed) => {}
            (Call::Close, State::Established | State::SynReceived | State::CloseWait)
                if self.unread > 0 =>
            {
                // RFC 1122 §4.2.2.13, RFC 9293 SHLD-3: closing with unread data resets.
                self.abort(&mut out, "close with unread data");
            }
            (Call::Close, State::Established | State::SynReceived) => {
                self.orphaned = true;
                self.send_fin(State::FinWait1, &mut out);
            }
            (Call::Close, State::CloseWait) => {
                self.orphaned = true;
                self.send_fin(State::LastAck, &mut out);
            }
            (Call::Close, State::FinWait2) => {
                // `tcp_close` hands an orphaned FIN-WAIT-2 to a minisocket (`tcp_time_wait`).
                self.orphaned = true;
                self.minisocket = self.profile(TcpDeviation::OrphanedFinWait2IsMinisocket);
            }
            (Call::Close, _) => self.orphaned = true,
            (Call::Abort, State::Listen | State::SynSent | State::TimeWait) => {
                self.state = State::Closed
            }
            (Call::Abort, _) => self.abort(&mut out, "ABORT"),
            (Call::Listen | Call::Connect, _) => out.push(Output::Error(AppError::InvalidState)),
        }
        if call == Call::Close {
            // CLOSE discards whatever the application did not read (`tcp_close` purges the
            // receive queue), the peer's FIN included.
            self.fin_queued = false;
        }
        out
    }

    fn send_fin(&mut self, next: State, out: &mut Vec<Output>) {
        if self.fin_sent {
            return;
        }
        out.push(Output::Segment(SegmentOut {
            flags: Flags::FIN_ACK,
            seq: self.snd_nxt,
            seq_from: SeqFrom::Iss,
            delayable: false,
            ack: self.rcv_nxt,
            len: 0,
            options: OptionsOut {
                timestamps: self.timestamps_ok,
                ..OptionsOut::default()
            },
            reason: "CLOSE",
        }));
        self.snd_nxt = self.snd_nxt.wrapping_add(1);
        self.fin_sent = true;
        self.state = next;
    }

    fn abort(&mut self, out: &mut Vec<Output>, reason: &'static str) {
        let flags = if self.profile(TcpDeviation::AbortRstCarriesAck) {
            Flags::RST_ACK
        } else {
            Flags::RST
        };
        let ack = if flags.ack { self.rcv_nxt } else { 0 };
        out.push(self.segment(flags, self.snd_nxt, ack, 0, reason));
        self.state = State::Closed;
    }

    /// A segment from the peer arrives (RFC 9293 §3.10.7).
    pub fn handle_segment(&mut self, seg: &SegmentIn) -> Vec<Output> {
        let mut out = Vec::new();
        match self.state {
            State::Closed => self.closed(seg, &mut out),
            State::Listen => self.listen(seg, &mut out),
            State::SynSent => self.syn_sent(seg, &mut out),
            State::SynReceived
                if self.passive && self.profile(TcpDeviation::SynReceivedIsRequestSocket) =>
            {
                self.request_socket(seg, &mut out)
            }
            State::FinWait2 if self.minisocket => self.fin_wait_2_minisocket(seg, &mut out),
            State::TimeWait if self.profile(TcpDeviation::TimeWaitMinisocket) => {
                self.time_wait_minisocket(seg, &mut out)
            }
            _ => self.otherwise(seg, &mut out),
        }
        out
    }

    /// §3.10.7.1: CLOSED. Also what a stack does for a segment to a port nobody uses.
    fn closed(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        out.extend(self.reset_answering(seg, "segment to CLOSED"));
    }

    /// §3.10.7.2: LISTEN.
    fn listen(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        if seg.flags.rst {
            return;
        }
        if seg.flags.ack {
            out.push(self.segment(Flags::RST, seg.ack, 0, 0, "ACK to LISTEN"));
            return;
        }
        if !seg.flags.syn {
            return;
        }
        if seg.flags.fin && self.profile(TcpDeviation::DropSynFinInListen) {
            return;
        }
        self.learn_syn(seg);
        if !self.profile(TcpDeviation::DiscardSynData) && seg.len > 0 {
            // Queued for processing once established: the model counts it as received
            // data the SYN-ACK does not yet acknowledge (RFC 9293 keeps RCV.NXT at SEQ+1).
            self.out_of_order
                .push((self.rcv_nxt, self.rcv_nxt.wrapping_add(seg.len)));
        }
        self.snd_una = self.iss;
        self.snd_nxt = self.iss.wrapping_add(1);
        self.state = State::SynReceived;
        out.push(self.syn_ack(Some(seg), "SYN to LISTEN"));
    }

    /// §3.10.7.3: SYN-SENT.
    fn syn_sent(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        // First: the ACK bit. Acceptable when ISS < SEG.ACK =< SND.NXT.
        let ack_ok = seg.flags.ack && seq::lt(self.iss, seg.ack) && seq::le(seg.ack, self.snd_nxt);
        if seg.flags.ack && !ack_ok {
            if !seg.flags.rst {
                out.push(self.segment(Flags::RST, seg.ack, 0, 0, "unacceptable ACK in SYN-SENT"));
            }
            return;
        }
        // Second: RST.
        if seg.flags.rst {
            if ack_ok {
                self.state = State::Closed;
                out.push(Output::Error(AppError::ConnectionRefused));
            }
            return;
        }
        // Fourth: SYN.
        if !seg.flags.syn {
            return;
        }
        self.learn_syn(seg);
        if ack_ok {
            // `tcp_rcv_synsent_state_process` runs `tcp_ack`: the SYN counts in bytes_acked.
            self.bytes_acked = self
                .bytes_acked
                .wrapping_add(seg.ack.wrapping_sub(self.snd_una));
            self.snd_una = seg.ack;
            // A SYN's window is never scaled (RFC 7323 §2.2).
            self.max_snd_wnd = self.max_snd_wnd.max(u32::from(seg.window));
            self.state = State::Established;
            out.push(Output::Established);
            out.push(self.ack_now("SYN-ACK in SYN-SENT"));
        } else {
            // Simultaneous open: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
            self.state = State::SynReceived;
            let offered = if self.profile(TcpDeviation::SimultaneousOpenSynAckRepeatsSynOptions) {
                None
            } else {
                Some(seg)
            };
            out.push(self.syn_ack(offered, "SYN in SYN-SENT (simultaneous open)"));
        }
    }

    /// §3.10.7.4 first check: is the segment acceptable (the four cases of the table)?
    fn acceptable(&self, seg: &SegmentIn) -> bool {
        let len = seg.seg_len();
        let wnd = self.rcv_wnd;
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seq::in_window(seg.seq, self.rcv_nxt, wnd),
            (_, 0) => false,
            (_, _) => {
                let last = seg.seq.wrapping_add(len - 1);
                seq::in_window(seg.seq, self.rcv_nxt, wnd)
                    || seq::in_window(last, self.rcv_nxt, wnd)
            }
        }
    }

    /// The first check as Linux's `tcp_sequence` makes it ([`TcpDeviation::LinuxSequenceCheck`]).
    /// Linux compares the end with `rcv_wup`, RCV.NXT when the last ACK went out; the model
    /// takes it as RCV.NXT (every ACK it predicts goes out at once or within MUST-40).
    fn linux_acceptable(&self, seg: &SegmentIn) -> bool {
        let end = seg.end_seq();
        let edge = self.rcv_nxt.wrapping_add(self.rcv_wnd);
        if seq::lt(end, self.rcv_nxt) {
            return false;
        }
        if seq::gt(end, edge) {
            if seq::le(end.wrapping_sub(u32::from(seg.flags.fin)), edge) {
                // "Some stacks are known to handle FIN incorrectly": only the FIN is beyond.
                return true;
            }
            if seq::gt(seg.seq, edge) {
                return false;
            }
            return self.receive_queue_empty();
        }
        true
    }

    /// Linux's `tcp_in_window` (tcp_minisocks.c), the acceptability test of the request and
    /// time-wait minisockets: the segment starts at RCV.NXT, or overlaps the window, or is
    /// empty and sits exactly at its right edge.
    fn minisocket_in_window(&self, seg: &SegmentIn) -> bool {
        let (seq, end) = (seg.seq, seg.end_seq());
        let edge = self.rcv_nxt.wrapping_add(self.rcv_wnd);
        seq == self.rcv_nxt
            || (seq::gt(end, self.rcv_nxt) && seq::lt(seq, edge))
            || (seq == edge && seq == end)
    }

    /// SYN-RECEIVED of a passive open under Linux: the request socket
    /// ([`TcpDeviation::SynReceivedIsRequestSocket`], `tcp_check_req`). A segment that passes
    /// every check turns the request into a full socket, which processes it again from the
    /// first check (`tcp_child_process` → `tcp_rcv_state_process`).
    fn request_socket(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        let f = seg.flags;
        if f.syn && !f.ack && !f.rst && seg.seq == self.irs {
            out.push(self.syn_ack(Some(seg), "retransmitted SYN in SYN-RECEIVED"));
            return;
        }
        if f.rst {
            if seg.seq == self.rcv_nxt {
                // The request is dropped; the listener goes on.
                self.state = State::Listen;
            } else if self.minisocket_in_window(seg) {
                out.push(self.ack_now("challenge ACK (RST in window, SYN-RECEIVED)"));
            }
            return;
        }
        if f.ack && seg.ack != self.snd_nxt {
            // `tcp_check_req` returns the listener, which answers any ACK with a reset.
            out.push(self.segment(
                Flags::RST,
                seg.ack,
                0,
                0,
                "unacceptable ACK in SYN-RECEIVED",
            ));
            return;
        }
        if !self.minisocket_in_window(seg) {
            out.push(self.ack_now("segment outside the window in SYN-RECEIVED"));
            return;
        }
        if f.syn && seg.seq != self.irs {
            // "Embryonic reset": the SYN (a SYN at the IRS is truncated to nothing instead).
            out.extend(self.reset_answering(seg, "SYN in the window in SYN-RECEIVED"));
            self.state = State::Listen;
            return;
        }
        if !f.ack {
            return;
        }
        self.otherwise(seg, out);
    }

    /// §3.10.7.4: SYN-RECEIVED and the synchronized states.
    fn otherwise(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        if self.state == State::SynReceived
            && !self.passive
            && seg.flags.syn
            && seg.flags.ack
            && seg.seq.wrapping_add(1) == self.rcv_nxt
            && seg.ack == self.snd_nxt
            && self.profile(TcpDeviation::SimultaneousOpenSynAckCompletes)
        {
            // The peer's SYN-ACK of a simultaneous open acknowledges our SYN: it completes
            // the handshake like an ACK would.
            let as_ack = SegmentIn {
                flags: Flags {
                    syn: false,
                    ..seg.flags
                },
                seq: self.rcv_nxt,
                ..seg.clone()
            };
            self.otherwise(&as_ack, out);
            // Its SYN is old news: `tcp_data_queue` acknowledges it as a duplicate, with a
            // D-SACK block for it when SACK was negotiated (RFC 2883).
            let mut dup = self.ack_now("duplicate SYN of a simultaneous open");
            if let Output::Segment(d) = &mut dup
                && self.sack_ok
                && self.profile(TcpDeviation::ImmediateDupAckWithSack)
            {
                d.options.sack_blocks = vec![(seg.seq, seg.seq.wrapping_add(1))];
            }
            out.push(dup);
            return;
        }
        if !seg.flags.ack
            && !seg.flags.rst
            && !seg.flags.syn
            && self.profile(TcpDeviation::DropSegmentsWithoutAckRstSyn)
        {
            return;
        }
        // First: sequence number.
        let acceptable = if self.profile(TcpDeviation::LinuxSequenceCheck) {
            self.linux_acceptable(seg)
        } else {
            self.acceptable(seg)
        };
        if !acceptable {
            if seg.flags.rst {
                let after_fin = matches!(
                    self.state,
                    State::CloseWait | State::Closing | State::LastAck
                );
                if after_fin
                    && self.profile(TcpDeviation::RstAtRcvNxtMinusOneAfterFin)
                    && seg.seq == self.rcv_nxt.wrapping_sub(1)
                {
                    self.reset_by_peer(out);
                }
                return;
            }
            out.push(self.duplicate_ack(seg, "unacceptable segment"));
            return;
        }
        // Second: RST (RFC 5961 §3.2).
        if seg.flags.rst {
            if seg.seq == self.rcv_nxt {
                if self.state == State::SynReceived && self.passive {
                    // Return to LISTEN (the listener goes on; this request is gone).
                    self.state = State::Listen;
                    return;
                }
                self.reset_by_peer(out);
            } else {
                out.push(self.ack_now("challenge ACK (RST in window)"));
            }
            return;
        }
        // Fourth: SYN (RFC 5961 §4).
        if seg.flags.syn {
            if self.state == State::TimeWait
                && !seg.flags.ack
                && seq::gt(seg.seq, self.rcv_nxt)
                && self.passive
                && self.profile(TcpDeviation::TimeWaitSynReopens)
            {
                return self.reopen_from_time_wait(seg, out);
            }
            if self.state == State::SynReceived && self.passive {
                // RFC 9293: a passively opened connection returns to LISTEN.
                self.state = State::Listen;
                return;
            }
            out.push(self.ack_now("challenge ACK (SYN in a synchronized state)"));
            return;
        }
        // Fifth: ACK.
        if !seg.flags.ack {
            return;
        }
        if self.state == State::SynReceived {
            if seq::lt(self.snd_una, seg.ack) && seq::le(seg.ack, self.snd_nxt) {
                self.state = State::Established;
                out.push(Output::Established);
                if self.passive && self.profile(TcpDeviation::SynReceivedIsRequestSocket) {
                    // The child socket starts at SND.UNA = ISS+1 (`tcp_create_openreq_child`):
                    // the SYN does not count in bytes_acked.
                    self.snd_una = seg.ack;
                }
            } else {
                out.push(self.segment(
                    Flags::RST,
                    seg.ack,
                    0,
                    0,
                    "unacceptable ACK in SYN-RECEIVED",
                ));
                return;
            }
        }
        if seq::gt(seg.ack, self.snd_nxt) {
            out.push(self.ack_now("ACK of unsent data"));
            return;
        }
        let max_wnd = if self.profile(TcpDeviation::OldAckBoundByBytesAcked) {
            self.max_snd_wnd.min(self.bytes_acked)
        } else {
            self.max_snd_wnd
        };
        if seq::lt(seg.ack, self.snd_una.wrapping_sub(max_wnd)) {
            out.push(self.ack_now("challenge ACK (ACK too old)"));
            return;
        }
        if seq::ge(seg.ack, self.snd_una) {
            // SND.UNA =< SEG.ACK =< SND.NXT: the window is updated (MAX.SND.WND follows).
            let wnd = u32::from(seg.window) << self.snd_wscale;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.bytes_acked = self
                .bytes_acked
                .wrapping_add(seg.ack.wrapping_sub(self.snd_una));
            self.snd_una = seg.ack;
        }
        // An older ACK is a duplicate: it is ignored and processing goes on.
        if self.fin_pending && self.snd_una == self.snd_nxt {
            // The handshake is complete: the FIN queued in SYN-RECEIVED goes out now.
            self.fin_pending = false;
            self.send_fin(State::FinWait1, out);
        }
        let fin_acked = self.fin_sent && self.snd_una == self.snd_nxt;
        match self.state {
            State::FinWait1 if fin_acked => {
                self.state = State::FinWait2;
                if self.orphaned && !self.orphaned_fin_wait_2(seg, out) {
                    return;
                }
            }
            State::Closing if fin_acked => {
                self.state = State::TimeWait;
                if self.profile(TcpDeviation::ResetOnDataAfterShutdown) {
                    // `tcp_time_wait`, then `goto consume`.
                    return;
                }
            }
            State::LastAck if fin_acked => {
                self.state = State::Closed;
                return;
            }
            _ => {}
        }
        // Seventh: segment text.
        if self.profile(TcpDeviation::ResetOnDataAfterShutdown)
            && !self.text_after_shutdown(seg, out)
        {
            return;
        }
        if self.profile(TcpDeviation::LinuxSequenceCheck) && seg.seg_len() > 0 {
            // `tcp_data_queue`: text `tcp_sequence` let through that is a duplicate or lies
            // beyond the window is acknowledged at once.
            let edge = self.rcv_nxt.wrapping_add(self.rcv_wnd);
            if seq::le(seg.end_seq(), self.rcv_nxt) {
                out.push(self.duplicate_ack(seg, "duplicate segment"));
                return;
            }
            if seq::ge(seg.seq, edge) {
                out.push(self.ack_now("segment beyond the window"));
                return;
            }
        }
        let had_holes = !self.out_of_order.is_empty();
        let mut need_ack = false;
        if seg.len > 0 {
            need_ack |= self.segment_text(seg, out);
            if self.state == State::Closed {
                return;
            }
        }
        // Eighth: FIN.
        if seg.flags.fin {
            let fin_seq = seg.seq.wrapping_add(seg.len);
            if fin_seq == self.rcv_nxt && !self.fin_received {
                self.take_fin(fin_acked);
                need_ack = true;
            } else if seq::gt(fin_seq, self.rcv_nxt) {
                if matches!(
                    self.state,
                    State::Established | State::FinWait1 | State::FinWait2
                ) {
                    // Held with the out-of-order data; the SACK block covers it.
                    self.insert_out_of_order(fin_seq, fin_seq.wrapping_add(1));
                    self.fin_out_of_order = Some(fin_seq);
                }
                need_ack = true;
            }
        }
        // A hole just filled up to a FIN held out of order: the FIN now counts.
        if self.fin_out_of_order == Some(self.rcv_nxt) && !self.fin_received {
            self.fin_out_of_order = None;
            self.take_fin(fin_acked);
            need_ack = true;
        }
        if need_ack {
            let mut ack = self.ack_now(if seg.flags.fin {
                "ACK of FIN"
            } else {
                "ACK of data"
            });
            if let Output::Segment(a) = &mut ack {
                // In order: the ACK may wait for more data or the application's reply.
                a.delayable = !had_holes && self.out_of_order.is_empty();
            }
            out.push(ack);
        }
    }

    /// The FIN at RCV.NXT is accepted: advance over it and move on (RFC 9293 §3.10.7.4,
    /// eighth).
    fn take_fin(&mut self, fin_acked: bool) {
        self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        self.fin_received = true;
        self.fin_queued = true;
        self.state = match self.state {
            State::SynReceived | State::Established => State::CloseWait,
            State::FinWait1 if fin_acked => State::TimeWait,
            State::FinWait1 => State::Closing,
            State::FinWait2 => State::TimeWait,
            other => other,
        };
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` for a segment that brought nothing new, with a
    /// D-SACK block (RFC 2883) for the duplicate text it carried (`tcp_send_dupack`).
    fn duplicate_ack(&self, seg: &SegmentIn, reason: &'static str) -> Output {
        let mut ack = self.ack_now(reason);
        let end = seg.seq.wrapping_add(seg.len);
        if let Output::Segment(out_seg) = &mut ack
            && seg.len > 0
            && seq::le(end, self.rcv_nxt)
            && self.sack_ok
            && self.profile(TcpDeviation::ImmediateDupAckWithSack)
        {
            // RFC 2883: a duplicate segment is reported in the first SACK block (D-SACK).
            out_seg.options.sack_blocks.insert(0, (seg.seq, end));
        }
        ack
    }

    /// An orphaned FIN-WAIT-1 has just had its FIN acknowledged (`tcp_rcv_state_process`,
    /// TCP_FIN_WAIT1, `SOCK_DEAD`). Returns whether processing goes on.
    fn orphaned_fin_wait_2(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) -> bool {
        let new_text = seg.seg_len() > 0
            && seq::gt(
                seg.end_seq().wrapping_sub(u32::from(seg.flags.fin)),
                self.rcv_nxt,
            );
        if new_text && self.profile(TcpDeviation::ResetOnDataAfterShutdown) {
            // "Receive out of order FIN after close()": `tcp_done`, then a reset.
            out.extend(self.reset_answering(seg, "text after close (FIN-WAIT-1)"));
            self.state = State::Closed;
            return false;
        }
        if !seg.flags.fin && self.profile(TcpDeviation::OrphanedFinWait2IsMinisocket) {
            // `tcp_time_wait(sk, TCP_FIN_WAIT2, ...)`, then `goto consume`.
            self.minisocket = true;
            return false;
        }
        true
    }

    /// The seventh step under [`TcpDeviation::ResetOnDataAfterShutdown`]. Returns whether
    /// processing goes on to `tcp_data_queue`.
    fn text_after_shutdown(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) -> bool {
        let after_fin = matches!(
            self.state,
            State::CloseWait | State::Closing | State::LastAck
        );
        if after_fin && seq::ge(seg.seq, self.rcv_nxt) {
            // The `break` before `tcp_data_queue`: text and FIN are ignored.
            return false;
        }
        let receiving_shut = self.orphaned || self.fin_received;
        let may_reset = after_fin || matches!(self.state, State::FinWait1 | State::FinWait2);
        let new_text = seg.seg_len() > 0
            && seq::gt(
                seg.end_seq().wrapping_sub(u32::from(seg.flags.fin)),
                self.rcv_nxt,
            );
        if may_reset && receiving_shut && new_text {
            // "RFC 1122 says we MUST send a reset": `tcp_reset`, then `tcp_v4_send_reset`.
            out.extend(self.reset_answering(seg, "text after the receiving side shut down"));
            if self.orphaned {
                self.state = State::Closed;
            } else {
                self.reset_by_peer(out);
            }
            return false;
        }
        true
    }

    /// §3.10.7.4 seventh: data in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2. Returns whether an
    /// ACK is due.
    fn segment_text(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) -> bool {
        match self.state {
            State::Established | State::FinWait1 | State::FinWait2 => {}
            // "This should not occur since a FIN has been received ... Ignore the segment text."
            _ => return false,
        }
        let start = seg.seq;
        let end = seg.seq.wrapping_add(seg.len);
        if self.orphaned && seq::gt(end, self.rcv_nxt) {
            // RFC 1122 §4.2.2.13: new data after the application closed draws a RST.
            let flags = if self.profile(TcpDeviation::AbortRstCarriesAck) {
                Flags::RST_ACK
            } else {
                Flags::RST
            };
            out.push(self.segment(
                flags,
                self.snd_nxt,
                if flags.ack { self.rcv_nxt } else { 0 },
                0,
                "data after close",
            ));
            self.state = State::Closed;
            return false;
        }
        if seq::le(start, self.rcv_nxt) {
            // In order (an old prefix is trimmed): advance RCV.NXT over it, then over every
            // held block that now touches RCV.NXT.
            self.unread += end.wrapping_sub(self.rcv_nxt);
            self.rcv_nxt = end;
            while let Some(i) = self
                .out_of_order
                .iter()
                .position(|&(s, _)| seq::le(s, self.rcv_nxt))
            {
                let (_, mut e) = self.out_of_order.remove(i);
                if let Some(fin) = self.fin_out_of_order
                    && seq::lt(fin, e)
                {
                    // The block ends with the FIN: data stops before it (the eighth step
                    // takes the FIN itself).
                    e = fin;
                }
                if seq::gt(e, self.rcv_nxt) {
                    self.unread += e.wrapping_sub(self.rcv_nxt);
                    self.rcv_nxt = e;
                }
            }
        } else {
            // A FIN on out-of-order data is held with it (the eighth step records where).
            self.insert_out_of_order(start, end.wrapping_add(u32::from(seg.flags.fin)));
        }
        true
    }

    fn insert_out_of_order(&mut self, start: u32, end: u32) {
        let mut merged = (start, end);
        self.out_of_order.retain(|&(s, e)| {
            let overlaps = seq::le(s, merged.1) && seq::ge(e, merged.0);
            if overlaps {
                if seq::lt(s, merged.0) {
                    merged.0 = s;
                }
                if seq::gt(e, merged.1) {
                    merged.1 = e;
                }
            }
            !overlaps
        });
        // Most recent block first, as RFC 2018 §4 asks.
        self.out_of_order.insert(0, merged);
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` from a time-wait minisocket
    /// (`tcp_v4_timewait_ack`): no SACK blocks.
    fn minisocket_ack(&self, reason: &'static str) -> Output {
        let mut ack = self.ack_now(reason);
        if let Output::Segment(s) = &mut ack {
            s.options.sack_blocks.clear();
        }
        ack
    }

    /// FIN-WAIT-2 after close under Linux: the minisocket in substate FIN-WAIT-2
    /// ([`TcpDeviation::OrphanedFinWait2IsMinisocket`], `tcp_timewait_state_process`).
    fn fin_wait_2_minisocket(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        let f = seg.flags;
        if !self.minisocket_in_window(seg) {
            out.push(self.minisocket_ack("segment outside the window (FIN-WAIT-2)"));
            return;
        }
        if f.rst {
            self.state = State::Closed;
            return;
        }
        if f.syn && seq::ge(seg.seq, self.rcv_nxt) {
            out.extend(self.reset_answering(seg, "SYN in the window (FIN-WAIT-2)"));
            self.state = State::Closed;
            return;
        }
        let end = seg.end_seq();
        if !f.ack || seq::le(end, self.rcv_nxt) || seg.seg_len() == 0 {
            // "Dup ACK?": absorbed.
            return;
        }
        if !f.fin || end != self.rcv_nxt.wrapping_add(1) {
            // "If new data arrive after half-duplex close, reset."
            out.extend(self.reset_answering(seg, "text after close (FIN-WAIT-2)"));
            self.state = State::Closed;
            return;
        }
        self.rcv_nxt = end;
        self.fin_received = true;
        self.minisocket = false;
        self.state = State::TimeWait;
        out.push(self.minisocket_ack("ACK of FIN"));
    }

    /// TIME-WAIT under Linux: the time-wait minisocket ([`TcpDeviation::TimeWaitMinisocket`],
    /// `tcp_timewait_state_process`).
    fn time_wait_minisocket(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        let f = seg.flags;
        if seg.seq == self.rcv_nxt && (seg.seg_len() == 0 || f.rst) {
            // "In window segment, it may be only reset or bare ack."
            if f.rst {
                // TIME-WAIT assassination (`tcp_rfc1337=0`).
                self.state = State::Closed;
            }
            return;
        }
        if f.syn
            && !f.rst
            && !f.ack
            && seq::gt(seg.seq, self.rcv_nxt)
            && self.passive
            && self.profile(TcpDeviation::TimeWaitSynReopens)
        {
            return self.reopen_from_time_wait(seg, out);
        }
        if !f.rst {
            out.push(self.minisocket_ack(if f.fin {
                "ACK of retransmitted FIN in TIME-WAIT"
            } else {
                "segment in TIME-WAIT"
            }));
        }
    }

    /// `TCP_TW_SYN`: the TIME-WAIT connection goes and the listener takes the SYN, with ISS =
    /// the old SND.NXT + 65537 (`tcp_timewait_state_process`: `tw_snd_nxt + 65535 + 2`).
    fn reopen_from_time_wait(&mut self, seg: &SegmentIn, out: &mut Vec<Output>) {
        let mut fresh = Tcp::new(self.config.clone());
        fresh.state = State::Listen;
        fresh.passive = true;
        fresh.iss = self.snd_nxt.wrapping_add(65_537);
        *self = fresh;
        out.append(&mut self.handle_segment(seg));
    }

    fn reset_by_peer(&mut self, out: &mut Vec<Output>) {
        let was = self.state;
        self.state = State::Closed;
        let error = if was == State::CloseWait
            && self.profile(TcpDeviation::ResetInCloseWaitIsBrokenPipe)
        {
            AppError::BrokenPipe
        } else {
            AppError::ConnectionReset
        };
        if matches!(
            was,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.pending_error = Some(error);
            out.push(Output::Error(error));
        }
    }
}

#[cfg(test)]
mod tests;
