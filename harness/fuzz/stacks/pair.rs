//! Two stacks on the same input, where the model leaves the answer open.
//!
//! A [`PairTarget`] runs one input ([`super::input`]) on two stacks, each on a fresh DUT
//! against the TCP model as its own stack target does ([`super::run_scenario`]). When both
//! agree with the model to the end of the quiet period, their exchanges are compared with
//! each other, step by step (each event, then the quiet period), in what the model does
//! not pin or pins only loosely:
//!
//! - the outcome of every call, the harness's own included (`shutdown` in FIN-WAIT, which
//!   RFC 9293 §3.10.4 lets answer `ok` or "connection closing"; the errno of a refused
//!   call, where the model asks only for an error), by its name and its result with the
//!   numbers taken out;
//! - every segment the stack sent on the connection: how many, whether it repeats one sent
//!   before (a retransmission, which the runner sets aside), their flags with PSH (a
//!   sender's choice, RFC 9293 §3.9.1.2), length, whether the window is zero, and the kinds
//!   of its options as a set (not their values or order: the window size, ISN, timestamps
//!   and option layout differ between any two stacks and say nothing).
//!
//! The first step where they part is a [`PairDifference`], filed like a stack target's
//! disagreement ([`super::findings`]) under a [`Group`] of its own kind: the clause of the
//! event in the model's state before it, that state, and `pair: ` what differed, with
//! the two stacks' answers in kind (`pair: flags of the answer: smoltcp [.], netstack3
//! []`), never their numbers, so that a choice hit a million times is one group (the
//! same kinds sent a different number of times, a retransmission more within the wait,
//! say which stack sent fewer: `pair: how many segments: smoltcp fewer than netstack3,
//! all of [P. again]`). When
//! either stack disagrees with the model, or refuses an event, there is nothing to
//! compare (its own stack target files that); the second stack is not run when the first
//! did not agree (half the cost of most inputs). A crash of either stack it runs is a
//! crash here too.

use crate::dut::DutError;
use crate::engine::scenario::Scenario;
use crate::engine::{CheckError, Session};
use crate::suites::tcp::checks::clause_in_state;
use crate::suites::tcp::scenario::{
    FRESH_TCB_NOTE, PEER_ISN, QUIET_PERIOD, REPLAY_PEER_PORT, TcpScenario, TcpScenarioRun,
};
use crate::trace::{Direction, EventKind, Trace};
use crate::wire::{Frame, TcpFlags, TcpOption, Transport};

use super::{Group, StackTarget, Verdict, state_before};

/// Two stacks compared on the same input.
#[derive(Debug, Clone, Copy)]
pub struct PairTarget {
    /// The fuzz target's name (`stack_<a>_<b>`).
    pub name: &'static str,
    /// The first stack.
    pub a: &'static StackTarget,
    /// The second stack.
    pub b: &'static StackTarget,
}

/// Where two stacks that both agree with the model answered differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairDifference {
    /// Its group (`what` starts with `pair: `).
    pub group: Group,
    /// The step where they part (`event 3 of 4 (Peer(...))`, `quiet period`).
    pub step: String,
    /// The step from 0 (an event's index; the number of events for the quiet period).
    pub event: usize,
    /// The two answers at that step, one line each (`smoltcp: ...`, `netstack3: ...`).
    pub differences: Vec<String>,
}

/// What one input gave on two stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairVerdict {
    /// Both agreed with the model and answered alike where it leaves the answer open.
    Same,
    /// Both agreed with the model and parted where it leaves the answer open.
    Differ(PairDifference),
    /// Not both agreed with the model (what each said): nothing to compare.
    NotCompared(String),
    /// A stack panicked or died, or the harness failed.
    Crashed(String),
}

impl PairVerdict {
    /// One line, as [`Verdict::line`].
    pub fn line(&self) -> String {
        match self {
            PairVerdict::Same => "both agreed with the model, and answered alike".into(),
            PairVerdict::Differ(d) => format!("FINDING {}", d.group.key()),
            PairVerdict::NotCompared(why) => format!("not compared: {why}"),
            PairVerdict::Crashed(what) => format!("CRASH {what}"),
        }
    }
}

/// Runs `scenario` on both stacks of `pair` and compares them.
pub fn judge_pair(pair: &PairTarget, scenario: &TcpScenario) -> PairVerdict {
    let (va, ta) = super::run_scenario(pair.a, scenario);
    match &va {
        Verdict::Agreed => {}
        Verdict::Crashed(what) => {
            return PairVerdict::Crashed(format!("{}: {what}", pair.a.stack));
        }
        // Nothing to compare, whatever b does: b is not run (its own target runs it).
        _ => return PairVerdict::NotCompared(format!("{} {}", pair.a.stack, va.line())),
    }
    let (vb, tb) = super::run_scenario(pair.b, scenario);
    match &vb {
        Verdict::Agreed => {}
        Verdict::Crashed(what) => {
            return PairVerdict::Crashed(format!("{}: {what}", pair.b.stack));
        }
        _ => return PairVerdict::NotCompared(format!("{} {}", pair.b.stack, vb.line())),
    }
    match compare_traces(scenario, (pair.a.stack, &ta), (pair.b.stack, &tb)) {
        Some(d) => PairVerdict::Differ(d),
        None => PairVerdict::Same,
    }
}

/// Shrinks `scenario`, on which the two stacks of `pair` part in `group`, by deleting
/// events while they still part in the same group (the engine's step shrink); the result
/// is what `netconform replay --target <stack>` replays on each of the two.
pub fn shrink_pair(pair: &PairTarget, scenario: &TcpScenario, group: &Group) -> TcpScenarioRun {
    let mut best = super::shrink_events(
        scenario,
        1000,
        |c| matches!(judge_pair(pair, c), PairVerdict::Differ(d) if d.group == *group),
    );
    best.scenario.name = format!(
        "{} on {} and {}: {} (shrunk to {} of {} events)",
        scenario.name,
        pair.a.stack,
        pair.b.stack,
        group.key(),
        best.scenario.events.len(),
        scenario.events.len()
    );
    best
}

/// A fresh DUT of `target` runs `scenario`: what the session recorded, and how the run
/// ended (`Ok` or the check's error).
pub(super) fn traced_run(
    target: &StackTarget,
    scenario: &TcpScenario,
    known: &'static [super::KnownPanic],
) -> Result<(Result<(), CheckError>, Trace), DutError> {
    let run = TcpScenarioRun {
        scenario: scenario.clone(),
        peer_port: REPLAY_PEER_PORT,
    };
    let mut dut = (target.build)(&run.needs())?;
    let mut session = Session::with_profile(dut.as_mut(), target.profile);
    let result = super::IN_STACK_TARGET.with(|flag| {
        flag.set(Some(known));
        let result = run.run(&mut session);
        flag.set(None);
        result
    });
    Ok((result.map(|_| ()), session.trace().clone()))
}

/// One step of a run as the comparison sees it: the step's name, the calls (name, result
/// without numbers) and the stack's segments on the connection, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Step {
    name: String,
    calls: Vec<(String, String)>,
    segments: Vec<Segment>,
}

/// A segment from the stack, normalised ([module doc](self)). Its sequence and
/// acknowledgment numbers are shown, not compared: the model pins both on every segment it
/// judges, so between two stacks that agree with it they differ only in how they are made
/// relative (a RST's sequence number is the peer's acknowledgment, not the stack's ISS plus
/// something).
#[derive(Debug, Clone)]
struct Segment {
    /// It repeats a segment sent before (a retransmission, which the runner set aside).
    again: bool,
    flags: TcpFlags,
    seq: u32,
    ack: Option<u32>,
    len: usize,
    zero_window: bool,
    options: Vec<&'static str>,
}

impl PartialEq for Segment {
    fn eq(&self, other: &Segment) -> bool {
        (
            self.again,
            self.flags,
            self.len,
            self.zero_window,
            &self.options,
        ) == (
            other.again,
            other.flags,
            other.len,
            other.zero_window,
            &other.options,
        )
    }
}

impl Eq for Segment {}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] seq {}", self.flags, self.seq)?;
        if self.again {
            f.write_str(" (again)")?;
        }
        if let Some(ack) = self.ack {
            write!(f, " ack {ack}")?;
        }
        write!(
            f,
            " len {} win {} <{}>",
            self.len,
            if self.zero_window { "0" } else { "open" },
            self.options.join(",")
        )
    }
}

fn option_kind(o: &TcpOption) -> Option<&'static str> {
    Some(match o {
        TcpOption::Mss(_) => "mss",
        TcpOption::WindowScale(_) => "wscale",
        TcpOption::SackPermitted => "sackOK",
        TcpOption::Sack(_) => "sack",
        TcpOption::Timestamps { .. } => "TS",
        TcpOption::Nop | TcpOption::Eol => return None,
        TcpOption::Unknown { .. } => "unknown",
        TcpOption::Malformed(_) => "malformed",
    })
}

/// `text` with every run of digits one `N`.
fn without_numbers(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The steps of a scenario's run, from its trace: a step begins at the runner's note
/// `scenario NAME: event K of N (...)`; what comes after the last event (the quiet period,
/// the clean-up) is a step of its own.
///
/// The scenario's clean-up (SO_LINGER 0 and CLOSE of its sockets, after the verdict, whose
/// outcomes the model does not judge) is left out: it begins with the first call at least
/// [`QUIET_PERIOD`] after the last event began (the quiet period ends that long after the
/// last event's action), and everything from there on is cut.
fn steps(trace: &Trace) -> Vec<Step> {
    let last_event = trace
        .events
        .iter()
        .rposition(|e| matches!(&e.kind, EventKind::Note(text) if text.starts_with("scenario ")));
    let cleanup = last_event.and_then(|i| {
        let quiet_ends = trace.events[i].at + QUIET_PERIOD;
        trace.events[i..]
            .iter()
            .position(|e| matches!(e.kind, EventKind::Call { .. }) && e.at >= quiet_ends)
            .map(|k| i + k)
    });
    let judged = &trace.events[..cleanup.unwrap_or(trace.events.len())];
    let mut steps: Vec<Step> = Vec::new();
    let mut iss: Option<u32> = None;
    // What the stack sent so far (raw seq, flags, length): a segment that occupies
    // sequence space and repeats one of them is sent again.
    let mut sent: Vec<(u32, TcpFlags, usize)> = Vec::new();
    for e in judged {
        match &e.kind {
            EventKind::Note(text) if text.starts_with("scenario ") => {
                let name = text.split_once(": ").map_or(text.as_str(), |(_, s)| s);
                steps.push(Step {
                    name: name.to_string(),
                    ..Step::default()
                });
            }
            // A fresh incarnation: nothing it sends repeats the old one's.
            EventKind::Note(text) if text == FRESH_TCB_NOTE => sent.clear(),
            EventKind::Note(_) => {}
            EventKind::Call { text, result } => {
                let Some(step) = steps.last_mut() else {
                    continue;
                };
                let name = text.split('(').next().unwrap_or(text).to_string();
                step.calls.push((name, without_numbers(result)));
            }
            EventKind::Frame {
                direction: Direction::Received,
                bytes,
                ..
            } => {
                let Ok(frame) = Frame::parse(bytes) else {
                    continue;
                };
                let Some(Transport::Tcp(s)) = frame.transport() else {
                    continue;
                };
                if s.dst_port != REPLAY_PEER_PORT {
                    continue;
                }
                // Every SYN names the ISS of its incarnation (a fresh TCB has a fresh one).
                if s.flags.0 & TcpFlags::SYN.0 != 0 {
                    iss = Some(s.seq);
                }
                let ack = (s.flags.0 & TcpFlags::ACK.0 != 0).then(|| s.ack.wrapping_sub(PEER_ISN));
                // The kinds as a set: their order on the wire is no one's business.
                let mut options: Vec<&'static str> =
                    s.options.iter().filter_map(option_kind).collect();
                options.sort_unstable();
                let occupies = |flags: TcpFlags, len: usize| {
                    len > 0 || flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0) != 0
                };
                let again = occupies(s.flags, s.payload.len())
                    && sent.iter().any(|(seq, flags, len)| {
                        (*seq, *flags, *len) == (s.seq, s.flags, s.payload.len())
                    });
                sent.push((s.seq, s.flags, s.payload.len()));
                let segment = Segment {
                    again,
                    flags: s.flags,
                    seq: s.seq.wrapping_sub(iss.unwrap_or(0)),
                    ack,
                    len: s.payload.len(),
                    zero_window: s.window == 0,
                    options,
                };
                if steps.is_empty() {
                    steps.push(Step::default());
                }
                if let Some(step) = steps.last_mut() {
                    step.segments.push(segment);
                }
            }
            EventKind::Frame { .. } => {}
        }
    }
    steps
}

/// The first step where the run of `a` and the run of `b` (each a stack's name and its
/// run's trace) of `scenario` part, or `None` when they answered alike.
pub fn compare_traces(
    scenario: &TcpScenario,
    a: (&str, &Trace),
    b: (&str, &Trace),
) -> Option<PairDifference> {
    let (sa, sb) = (steps(a.1), steps(b.1));
    let events = scenario.events.len();
    let mut event_index = 0usize;
    for i in 0..sa.len().max(sb.len()) {
        let empty = Step::default();
        let (x, y) = (sa.get(i).unwrap_or(&empty), sb.get(i).unwrap_or(&empty));
        let name = if x.name.is_empty() { &y.name } else { &x.name };
        let is_event = name.starts_with("event ");
        let index = if is_event {
            event_index
        } else {
            events.saturating_sub(1)
        };
        if x != y {
            let state = state_before(a.1, index);
            let clause = scenario
                .events
                .get(index)
                .map_or("rfc9293-3.10.1", |e| clause_in_state(state, e).id);
            let (what, differences) = differ(x, y, (a.0, b.0));
            let step = if is_event {
                name.clone()
            } else {
                "quiet period after the last event".to_string()
            };
            return Some(PairDifference {
                group: Group {
                    clause,
                    state,
                    what: format!("pair: {what}"),
                },
                step,
                event: if is_event { index } else { events },
                differences,
            });
        }
        if is_event {
            event_index += 1;
        }
    }
    None
}

/// What differed between two steps (in kind, for the group) and the two answers in full.
fn differ(x: &Step, y: &Step, (a, b): (&str, &str)) -> (String, Vec<String>) {
    let render = |s: &Step| {
        let calls: Vec<String> = s.calls.iter().map(|(c, r)| format!("{c} = {r}")).collect();
        let segments: Vec<String> = s.segments.iter().map(ToString::to_string).collect();
        format!(
            "calls [{}], segments [{}]",
            calls.join("; "),
            segments.join("; ")
        )
    };
    let differences = vec![format!("{a}: {}", render(x)), format!("{b}: {}", render(y))];
    // The distinct kinds of segment, in the order first sent: how many times a stack sent
    // one again within a step is the length of the wait, not a new group.
    let flags = |s: &Step| {
        let mut kinds: Vec<String> = Vec::new();
        for g in &s.segments {
            let again = if g.again { " again" } else { "" };
            let kind = format!("{}{again}", g.flags);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        kinds.join(" ")
    };
    // A call first: its outcome is what the application sees.
    let calls = x.calls.iter().zip(&y.calls).find(|(p, q)| p != q);
    let what = if let Some(((cx, rx), (cy, ry))) = calls {
        if cx == cy {
            format!("outcome of {cx}: {a} {rx}, {b} {ry}")
        } else {
            format!("calls: {a} {cx}, {b} {cy}")
        }
    } else if x.calls.len() != y.calls.len() {
        format!(
            "number of calls: {a} {}, {b} {}",
            x.calls.len(),
            y.calls.len()
        )
    } else if x.segments.len() != y.segments.len() && flags(x) == flags(y) {
        // The same kinds, a different number of them (a retransmission more): which stack
        // sent fewer is the group, not the counts.
        let fewer = if x.segments.len() < y.segments.len() {
            "fewer"
        } else {
            "more"
        };
        format!(
            "how many segments: {a} {fewer} than {b}, all of [{}]",
            flags(x)
        )
    } else if x.segments.len() != y.segments.len() {
        format!("segments sent: {a} [{}], {b} [{}]", flags(x), flags(y))
    } else {
        let (p, q) = x
            .segments
            .iter()
            .zip(&y.segments)
            .find(|(p, q)| p != q)
            .expect("two different steps differ in a segment");
        let field = if p.again != q.again {
            "a segment sent again"
        } else if p.flags != q.flags {
            let psh = TcpFlags::PSH.0;
            if p.flags.0 & !psh == q.flags.0 & !psh {
                "PSH"
            } else {
                "flags"
            }
        } else if p.len != q.len {
            "length"
        } else if p.zero_window != q.zero_window {
            "zero window"
        } else {
            "option kinds"
        };
        let show = |s: &Segment| match field {
            "zero window" => (if s.zero_window { "zero" } else { "open" }).to_string(),
            "option kinds" => format!("<{}>", s.options.join(",")),
            "a segment sent again" => {
                format!("[{}]{}", s.flags, if s.again { " again" } else { "" })
            }
            _ => format!("[{}]", s.flags),
        };
        format!("{field} of a segment: {a} {}, {b} {}", show(p), show(q))
    };
    (what, differences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::stacks::{SMOLTCP, input};
    use crate::models::profile::ProfileName;
    use crate::trace::TraceEvent;

    /// Listen, SYN, ACK: ESTABLISHED (`path_to(Established)`), encoded.
    const ESTABLISHED: &[u8] = &[0x00, 0x01, 0x80, 0x00, 0x02, 0x03, 0x02];

    static SMOLTCP_TWICE: PairTarget = PairTarget {
        name: "stack_smoltcp_smoltcp",
        a: &SMOLTCP,
        b: &SMOLTCP,
    };

    fn agreed_trace(data: &[u8]) -> (TcpScenario, Trace) {
        let scenario = input::decode(data, ProfileName::Rfc);
        let (verdict, trace) = super::super::run_scenario(&SMOLTCP, &scenario);
        assert_eq!(verdict, Verdict::Agreed, "{scenario:?}");
        (scenario, trace)
    }

    /// The trace with the frame from the stack numbered `n` (from 0) changed by `f`.
    fn edited(trace: &Trace, n: usize, f: impl Fn(&mut crate::wire::TcpSegment)) -> Trace {
        let mut out = trace.clone();
        let frame = out
            .events
            .iter_mut()
            .filter_map(|e: &mut TraceEvent| match &mut e.kind {
                EventKind::Frame {
                    direction: Direction::Received,
                    bytes,
                    ..
                } => Some(bytes),
                _ => None,
            })
            .filter(|b| {
                Frame::parse(b).is_ok_and(|f| matches!(f.transport(), Some(Transport::Tcp(_))))
            })
            .nth(n)
            .expect("the stack sent that many segments");
        let mut parsed = Frame::parse(frame).expect("parses");
        if let Some(Transport::Tcp(s)) = parsed.transport_mut() {
            f(s);
        }
        *frame = parsed.emit();
        out
    }

    #[test]
    fn the_same_stack_twice_answers_alike() {
        // The negative control of every difference below: two runs of one stack.
        for data in [
            ESTABLISHED,
            // ESTABLISHED, then 10 bytes, a RECEIVE, a CLOSE and the peer's FIN.
            &[
                0x00, 0x01, 0x80, 0x00, 0x02, 0x03, 0x02, 0x04, 0x06, 0x83, 0x64, 0x00, 0x85,
            ][..],
        ] {
            let scenario = input::decode(data, ProfileName::Rfc);
            assert_eq!(judge_pair(&SMOLTCP_TWICE, &scenario), PairVerdict::Same);
        }
    }

    #[test]
    fn a_psh_bit_the_model_leaves_open_is_a_difference_grouped_without_numbers() {
        let (scenario, trace) = agreed_trace(ESTABLISHED);
        assert_eq!(
            compare_traces(&scenario, ("a", &trace), ("b", &trace)),
            None
        );
        // The SYN-ACK with PSH set: the same flags otherwise.
        let other = edited(&trace, 0, |s| {
            s.flags = TcpFlags(s.flags.0 | TcpFlags::PSH.0)
        });
        let d = compare_traces(&scenario, ("a", &trace), ("b", &other)).expect("differs");
        assert_eq!(d.event, 1, "{d:?}");
        assert_eq!(d.group.state, crate::models::tcp::State::Listen);
        assert!(
            d.group
                .what
                .starts_with("pair: PSH of a segment: a [S.], b [SP.]")
                || d.group.what.starts_with("pair: PSH of a segment"),
            "{}",
            d.group.what
        );
        assert!(d.differences[1].starts_with("b: "), "{:?}", d.differences);
        // A zero window instead: another group.
        let zero = edited(&trace, 0, |s| s.window = 0);
        let z = compare_traces(&scenario, ("a", &trace), ("b", &zero)).expect("differs");
        assert_eq!(
            z.group.what,
            "pair: zero window of a segment: a open, b zero"
        );
        // An option's value is no difference; its kind is.
        let ts = edited(&trace, 0, |s| {
            s.options.retain(|o| !matches!(o, TcpOption::Nop));
            s.options.push(TcpOption::Timestamps { val: 1, ecr: 0 });
        });
        let t = compare_traces(&scenario, ("a", &trace), ("b", &ts)).expect("differs");
        assert!(
            t.group.what.starts_with("pair: option kinds"),
            "{}",
            t.group.what
        );
    }

    #[test]
    fn a_missing_answer_and_a_call_outcome_are_differences() {
        let (scenario, trace) = agreed_trace(ESTABLISHED);
        // The SYN-ACK dropped from b's trace.
        let mut silent = trace.clone();
        let at = silent
            .events
            .iter()
            .position(|e| {
                matches!(
                    e.kind,
                    EventKind::Frame {
                        direction: Direction::Received,
                        ..
                    }
                )
            })
            .expect("a frame from the stack");
        silent.events.remove(at);
        let d = compare_traces(&scenario, ("a", &trace), ("b", &silent)).expect("differs");
        assert!(
            d.group
                .what
                .starts_with("pair: segments sent: a [S.], b []"),
            "{}",
            d.group.what
        );
        // The SYN-ACK sent again once by a and twice by b: the same kinds, a different
        // number; the group says which sent fewer, not how many (a negative control: a
        // and b each against itself do not differ).
        let again = |n: usize| {
            let mut t = trace.clone();
            for _ in 0..n {
                t.events.insert(at + 1, t.events[at].clone());
            }
            t
        };
        let (once, twice) = (again(1), again(2));
        assert!(compare_traces(&scenario, ("a", &once), ("b", &once)).is_none());
        let d = compare_traces(&scenario, ("a", &once), ("b", &twice)).expect("differs");
        assert!(
            d.group
                .what
                .starts_with("pair: how many segments: a fewer than b, all of [S. S. again]"),
            "{}",
            d.group.what
        );
        let d = compare_traces(&scenario, ("a", &twice), ("b", &once)).expect("differs");
        assert!(
            d.group.what.contains("how many segments: a more than b"),
            "{}",
            d.group.what
        );
        // A call's result, numbers aside.
        let mut refused = trace.clone();
        for e in &mut refused.events {
            if let EventKind::Call { text, result } = &mut e.kind
                && text.starts_with("listen")
            {
                *result = "EADDRINUSE (98)".into();
            }
        }
        assert_ne!(refused, trace, "the scenario's listen is traced");
        let d = compare_traces(&scenario, ("a", &trace), ("b", &refused)).expect("differs");
        assert!(
            d.group.what.contains("outcome of listen"),
            "{}",
            d.group.what
        );
        assert!(
            d.group.what.ends_with("b EADDRINUSE (N)"),
            "{}",
            d.group.what
        );
    }

    #[test]
    fn a_stack_that_disagrees_with_the_model_is_not_compared() {
        // A SYN in ESTABLISHED: smoltcp sends no challenge ACK (its own target files it).
        let scenario = input::decode(&[ESTABLISHED, &[0x00, 0x02]].concat(), ProfileName::Rfc);
        assert!(matches!(
            judge_pair(&SMOLTCP_TWICE, &scenario),
            PairVerdict::NotCompared(_)
        ));
    }
}
