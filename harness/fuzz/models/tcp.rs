//! `model_tcp`: application calls, peer segments and window updates into a [`Tcp`], with
//! RFC 9293's invariants after every event.

use arbitrary::{Arbitrary, Unstructured};

use crate::fuzz::Outcome;
use crate::models::seq;
use crate::models::tcp::{
    AppError, Call, Config, Flags, Output, SegmentIn, SeqFrom, State, Tcp, TcpProfile,
};

const T: &str = "model_tcp";

#[derive(Debug, Arbitrary)]
enum CallSpec {
    Listen,
    Connect,
    Send(u16),
    Receive(u16),
    ShutdownWrite,
    Close,
    Abort,
}

/// A sequence number relative to what the model expects, so that segments hit the window.
#[derive(Debug, Arbitrary)]
enum SeqSpec {
    Irs,
    RcvNxt(i8),
    Raw(u32),
}

#[derive(Debug, Arbitrary)]
enum AckSpec {
    SndNxt(i8),
    SndUna(i8),
    Raw(u32),
}

#[derive(Debug, Arbitrary)]
struct SegSpec {
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    psh: bool,
    seq: SeqSpec,
    ack_no: AckSpec,
    len: u8,
    window: u16,
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack_permitted: bool,
    timestamps: bool,
}

#[derive(Debug, Arbitrary)]
enum Event {
    Call(CallSpec),
    Segment(SegSpec),
    Window(u16),
}

/// The edges of RFC 9293's Figure 5, with the documented deviations: a passive SYN-RECEIVED
/// returns to LISTEN on a reset, TIME-WAIT reopens through LISTEN (RFC 6191,
/// `TimeWaitSynReopens`), and every state can be reset or aborted to CLOSED.
fn edge(from: State, to: State) -> bool {
    use State::*;
    to == Closed
        || matches!(
            (from, to),
            (Closed, Listen | SynSent)
                | (Listen, SynReceived)
                | (SynSent, SynReceived | Established)
                | (SynReceived, Established | FinWait1 | Listen)
                | (Established, FinWait1 | CloseWait)
                | (FinWait1, FinWait2 | Closing | TimeWait)
                | (FinWait2, TimeWait)
                | (CloseWait, LastAck)
                | (Closing, TimeWait)
                | (TimeWait, Listen)
        )
}

/// Whether one event may take the model from `from` to `to`: a path of at most three edges
/// (one segment can complete the handshake, send a queued FIN and bring the peer's FIN),
/// none of them through CLOSED.
pub(crate) fn transition_allowed(from: State, to: State) -> bool {
    if from == to || edge(from, to) {
        return true;
    }
    // Nothing goes on after CLOSED within one event, and a SYN that reaches LISTEN (a
    // reopened TIME-WAIT) goes no further than SYN-RECEIVED.
    let last = |a: State, b: State| a != State::Closed && edge(a, b);
    let via = |a: State, b: State| last(a, b) && a != State::Listen;
    State::ALL.iter().any(|&a| {
        edge(from, a) && (last(a, to) || State::ALL.iter().any(|&b| via(a, b) && last(b, to)))
    })
}

/// What the checks read of the model before and after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) state: State,
    pub(crate) snd_una: u32,
    pub(crate) snd_nxt: u32,
    pub(crate) rcv_nxt: u32,
    pub(crate) unread: u32,
}

impl Snapshot {
    fn of(t: &Tcp) -> Snapshot {
        Snapshot {
            state: t.state(),
            snd_una: t.snd_una(),
            snd_nxt: t.snd_nxt(),
            rcv_nxt: t.rcv_nxt(),
            unread: t.unread(),
        }
    }
}

/// The invariants of one step: the transition is along the diagram; SND.UNA <= SND.NXT
/// (within 2^31); while synchronized SND.UNA, SND.NXT and RCV.NXT only move forward; a
/// segment the model emits fits its state (SYN only when the step ends in SYN-SENT or
/// SYN-RECEIVED, text only in ESTABLISHED or CLOSE-WAIT and inside SND.NXT, a FIN as the
/// last sequence number, no ACK beyond RCV.NXT); reads deliver at most what was asked and
/// what was unread; "connection refused" only from SYN-SENT.
pub(crate) fn check_step(
    before: Snapshot,
    after: Snapshot,
    call: Option<Call>,
    outputs: &[Output],
) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "{before:?} -> {after:?} ({call:?}, {outputs:?}): {why}"
        ))
    };
    if !transition_allowed(before.state, after.state) {
        return fail(format!(
            "{} -> {} is not an edge",
            before.state, after.state
        ));
    }
    if !seq::le(after.snd_una, after.snd_nxt) {
        return fail("SND.UNA > SND.NXT".into());
    }
    let stays = before.state.is_synchronized() && after.state.is_synchronized();
    if stays
        && !(seq::ge(after.snd_una, before.snd_una)
            && seq::ge(after.snd_nxt, before.snd_nxt)
            && seq::ge(after.rcv_nxt, before.rcv_nxt))
    {
        return fail("a sequence variable moved back".into());
    }
    let mut delivered = 0u32;
    for o in outputs {
        match o {
            Output::Segment(s) => {
                if s.flags.syn && !s.flags.rst {
                    if !matches!(after.state, State::SynSent | State::SynReceived) {
                        return fail(format!("a SYN ({}) into {}", s.flags, after.state));
                    }
                    if s.len != 0 {
                        return fail("a SYN with text".into());
                    }
                }
                if s.len > 0 {
                    if s.flags.syn || s.flags.rst {
                        return fail(format!("text on a {} segment", s.flags));
                    }
                    if !matches!(before.state, State::Established | State::CloseWait)
                        || before.state != after.state
                    {
                        return fail("text outside ESTABLISHED and CLOSE-WAIT".into());
                    }
                    if s.seq_from != SeqFrom::Iss
                        || !seq::le(s.seq.wrapping_add(s.len), after.snd_nxt)
                        || !seq::ge(s.seq, before.snd_nxt)
                    {
                        return fail(format!("text at {}+{} beyond the new data", s.seq, s.len));
                    }
                }
                if s.flags.fin
                    && after.state != State::Closed
                    && s.seq.wrapping_add(1) != after.snd_nxt
                {
                    return fail(format!("a FIN at {}, SND.NXT {}", s.seq, after.snd_nxt));
                }
                if s.flags.ack
                    && !s.flags.rst
                    && after.state != State::Closed
                    && !seq::le(s.ack, after.rcv_nxt)
                {
                    return fail(format!("ACK {} beyond RCV.NXT {}", s.ack, after.rcv_nxt));
                }
            }
            Output::Deliver(n) => {
                delivered += n;
                // Only a RECEIVE delivers, at most what it asked for (nothing for a
                // zero-length read, which is not an end of stream).
                let asked = matches!(call, Some(Call::Receive(max)) if delivered <= max);
                if !asked || (*n == 0 && call != Some(Call::Receive(0))) {
                    return fail(format!("delivered {n}"));
                }
            }
            Output::Error(AppError::ConnectionRefused)
                if before.state != State::SynSent || after.state != State::Closed =>
            {
                return fail("connection refused outside SYN-SENT".into());
            }
            _ => {}
        }
    }
    if delivered > before.unread || (delivered > 0 && after.unread != before.unread - delivered) {
        return fail(format!("delivered {delivered} of {} unread", before.unread));
    }
    Ok(())
}

fn segment(spec: &SegSpec, tcp: &Tcp, irs: u32) -> SegmentIn {
    let seq = match spec.seq {
        SeqSpec::Irs => irs,
        SeqSpec::RcvNxt(d) => tcp.rcv_nxt().wrapping_add_signed(i32::from(d)),
        SeqSpec::Raw(r) => r,
    };
    let ack = match spec.ack_no {
        AckSpec::SndNxt(d) => tcp.snd_nxt().wrapping_add_signed(i32::from(d)),
        AckSpec::SndUna(d) => tcp.snd_una().wrapping_add_signed(i32::from(d)),
        AckSpec::Raw(r) => r,
    };
    let flags = Flags {
        syn: spec.syn,
        ack: spec.ack,
        fin: spec.fin,
        rst: spec.rst,
        psh: spec.psh,
    };
    SegmentIn {
        window: spec.window,
        mss: spec.mss,
        window_scale: spec.window_scale,
        sack_permitted: spec.sack_permitted,
        timestamps: spec.timestamps,
        ..SegmentIn::new(flags, seq, ack, u32::from(spec.len % 64) * 8)
    }
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Vec<Output>>, String> {
    let linux = bool::arbitrary(u).map_err(|e| e.to_string())?;
    // The peer's ISN: small, or just below the wrap of the sequence space.
    let irs = if bool::arbitrary(u).map_err(|e| e.to_string())? {
        u32::MAX - 100
    } else {
        1000
    };
    let profile = if linux {
        TcpProfile::linux()
    } else {
        TcpProfile::rfc()
    };
    let mut tcp = Tcp::new(Config::ipv4(profile));
    let mut out = Vec::new();
    for ev in super::events::<Event>(u) {
        let before = Snapshot::of(&tcp);
        let (call, outputs) = match ev {
            Event::Call(c) => {
                let call = match c {
                    CallSpec::Listen => Call::Listen,
                    CallSpec::Connect => Call::Connect,
                    CallSpec::Send(n) => Call::Send(u32::from(n % 4000)),
                    CallSpec::Receive(n) => Call::Receive(u32::from(n)),
                    CallSpec::ShutdownWrite => Call::ShutdownWrite,
                    CallSpec::Close => Call::Close,
                    CallSpec::Abort => Call::Abort,
                };
                (Some(call), tcp.handle_call(call))
            }
            Event::Segment(spec) => {
                let seg = segment(&spec, &tcp, irs);
                (None, tcp.handle_segment(&seg))
            }
            Event::Window(w) => {
                tcp.observe_window(u32::from(w) * 4);
                (None, Vec::new())
            }
        };
        check_step(before, Snapshot::of(&tcp), call, &outputs)?;
        out.push(outputs);
    }
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
