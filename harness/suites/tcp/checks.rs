//! The TCP state × segment matrix as certify checks: one check per state and IP version,
//! each running its 96 cells (segment kind × sequence number × acknowledgment number)
//! against the model and the stack side by side.
//!
//! Read first: RFC 9293 §3.10.7 (SEGMENT ARRIVES, in its order of checks), RFC 5961 §3–§5.

use crate::dut::DutError;
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::models::tcp::State;
use crate::suites::tcp::matrix;
use crate::suites::tcp::scenario::{TcpEvent, TcpScenario, run_batch};

/// RFC 9293 §3.10.7.1, shared with the end-to-end checks.
pub const CLOSED: Clause = Clause {
    id: "rfc9293-3.10.7.1",
    source: "RFC 9293 §3.10.7.1",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.1",
    text: "If the state is CLOSED (i.e., TCB does not exist), then all data in the incoming segment is \
           discarded. An incoming segment containing a RST is discarded. An incoming segment not containing a \
           RST causes a RST to be sent in response.",
};
const LISTEN: Clause = Clause {
    id: "rfc9293-3.10.7.2",
    source: "RFC 9293 §3.10.7.2",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.2",
    text: "If the state is LISTEN, then first check for an RST (ignore it); second, check for an ACK \
           (<SEQ=SEG.ACK><CTL=RST>); third, check for a SYN (<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>).",
};
const SYN_SENT: Clause = Clause {
    id: "rfc9293-3.10.7.3",
    source: "RFC 9293 §3.10.7.3",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.3",
    text: "If the state is SYN-SENT, then first check the ACK bit (if SEG.ACK =< ISS or SEG.ACK > SND.NXT, \
           send a reset <SEQ=SEG.ACK><CTL=RST>), second the RST bit, fourth the SYN bit.",
};
const SEQUENCE: Clause = Clause {
    id: "rfc9293-3.10.7.4-seq",
    source: "RFC 9293 §3.10.7.4 (first)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.4",
    text: "Segments are processed in sequence ... If an incoming segment is not acceptable, an acknowledgment \
           should be sent in reply (unless the RST bit is set, if so drop the segment and return): \
           <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.",
};
const RST: Clause = Clause {
    id: "rfc5961-3.2",
    source: "RFC 9293 §3.10.7.4 (second), RFC 5961 §3.2",
    url: "https://www.rfc-editor.org/rfc/rfc5961#section-3.2",
    text: "If the RST bit is set and the sequence number exactly matches the next expected sequence number \
           (RCV.NXT), then TCP MUST reset the connection ... Otherwise (in window), TCP MUST send an ACK \
           (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. If the sequence number is outside the \
           window, TCP MUST silently drop the segment.",
};
const SYN: Clause = Clause {
    id: "rfc5961-4.2",
    source: "RFC 9293 §3.10.7.4 (fourth), RFC 5961 §4.2",
    url: "https://www.rfc-editor.org/rfc/rfc5961#section-4.2",
    text: "If the SYN bit is set, irrespective of the sequence number, TCP MUST send an ACK (also referred to \
           as challenge ACK) to the remote peer: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.",
};
const ACK: Clause = Clause {
    id: "rfc5961-5.2",
    source: "RFC 9293 §3.10.7.4 (fifth), RFC 5961 §5.2",
    url: "https://www.rfc-editor.org/rfc/rfc5961#section-5.2",
    text: "If the ACK bit is off, drop the segment and return. ... The ACK value is acceptable only if it is in \
           the range of ((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT). All incoming segments whose ACK value \
           doesn't satisfy the above condition MUST be discarded and an ACK sent back.",
};
const TEXT_AND_FIN: Clause = Clause {
    id: "rfc9293-3.10.7.4-text-fin",
    source: "RFC 9293 §3.10.7.4 (seventh, eighth)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.4",
    text: "Once in the ESTABLISHED state, it is possible to deliver segment data ... advance RCV.NXT over the \
           data accepted ... Send an acknowledgment. If the FIN bit is set, signal the user \"connection \
           closing\" ... advance RCV.NXT over the FIN, and send an acknowledgment for the FIN.",
};

/// RFC 9293 §3.10.7.4, fifth check, the state processing of an acceptable ACK.
const ACK_STATES: Clause = Clause {
    id: "rfc9293-3.10.7.4-ack-states",
    source: "RFC 9293 §3.10.7.4 (fifth, state processing)",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.4",
    text: "SYN-RECEIVED STATE: If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state ... If the \
           segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it. \
           ... FIN-WAIT-1 STATE: In addition to the processing for the ESTABLISHED state, if the FIN segment is \
           now acknowledged, then enter FIN-WAIT-2 and continue processing in that state. ... CLOSING STATE: \
           ... if the ACK acknowledges our FIN, then enter the TIME-WAIT state; otherwise, ignore the segment. \
           LAST-ACK STATE: The only thing that can arrive in this state is an acknowledgment of our FIN. If \
           our FIN is now acknowledged, delete the TCB, enter the CLOSED state, and return.",
};
/// RFC 9293 §3.10.1: the OPEN call (the path of a row: listen, or connect).
const OPEN: Clause = Clause {
    id: "rfc9293-3.10.1",
    source: "RFC 9293 §3.10.1",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.1",
    text: "CLOSED STATE (i.e., TCB does not exist): Create a new transmission control block (TCB) ... If \
           passive, enter the LISTEN state and return. If active ... An initial send sequence number (ISS) \
           is selected. A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent. Set SND.UNA to ISS, SND.NXT to \
           ISS+1, enter SYN-SENT state, and return.",
};
/// RFC 9293 §3.10.4: the CLOSE call (the path to the closing states).
const CLOSE: Clause = Clause {
    id: "rfc9293-3.10.4",
    source: "RFC 9293 §3.10.4",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.4",
    text: "ESTABLISHED STATE: Queue this until all preceding SENDs have been segmentized, then form a FIN \
           segment and send it. In any case, enter FIN-WAIT-1 state. ... CLOSE-WAIT STATE: Queue this \
           request until all preceding SENDs have been segmentized; then send a FIN segment, enter LAST-ACK \
           state.",
};

/// The rows of the synchronized states reached without a CLOSE call.
const SYNCHRONIZED: &[Clause] = &[
    SEQUENCE,
    RST,
    SYN,
    ACK,
    ACK_STATES,
    TEXT_AND_FIN,
    OPEN,
    LISTEN,
];
/// The rows of the states the path reaches through a CLOSE call.
const SYNCHRONIZED_CLOSED: &[Clause] = &[
    SEQUENCE,
    RST,
    SYN,
    ACK,
    ACK_STATES,
    TEXT_AND_FIN,
    OPEN,
    LISTEN,
    CLOSE,
];

/// The clause event `index` of a matrix cell of the row of `row` exercises: for the probe
/// (the last event) the first rule of RFC 9293 §3.10.7 that decides it in `row`, in the
/// order of its checks (RFC 5961 for RST, SYN and ACK); for an event of the path there, the
/// rule of that step (the call, or the in-order segment's processing in the state the path
/// has reached). Pure: it reads only the cell's symbolic numbers, so it names the clause the
/// text makes responsible whatever the stack did.
fn clause_of_event(row: State, cell: &TcpScenario, index: usize) -> Clause {
    let index = index.min(cell.events.len().saturating_sub(1));
    let Some(event) = cell.events.get(index) else {
        return OPEN;
    };
    let state = if index + 1 == cell.events.len() {
        row
    } else {
        state_before(&cell.events[..index])
    };
    clause_in_state(state, event)
}

/// The clause `event` exercises when it meets a connection the model has in `state`: for
/// a call, the call's section; for a peer's segment, the first rule of RFC 9293 §3.10.7
/// that decides it in `state`, in the order of its checks (RFC 5961 for RST, SYN and ACK),
/// judged on the segment's symbolic numbers with the window wide open. What the matrix
/// classifies its cells with, and the fuzz targets of `fuzz::stacks` their findings (the
/// state there is the model's before the failing event).
pub fn clause_in_state(state: State, event: &TcpEvent) -> Clause {
    use crate::suites::tcp::scenario::{AckAt, SegmentKind as K, SeqAt};
    let seg = match event {
        TcpEvent::Listen | TcpEvent::Connect => return OPEN,
        TcpEvent::Close | TcpEvent::ShutdownWrite | TcpEvent::Abort => return CLOSE,
        TcpEvent::Send(_) | TcpEvent::Receive(_) => return TEXT_AND_FIN,
        TcpEvent::Peer(seg) => seg,
    };
    match state {
        State::Closed => return CLOSED,
        State::Listen => return LISTEN,
        State::SynSent => return SYN_SENT,
        _ => {}
    }
    let f = seg.kind.flags();
    // First check: the four cases of the acceptability table, the window being wide open.
    let seg_len = u32::from(seg.len) + u32::from(f.syn) + u32::from(f.fin);
    let acceptable = match seg.seq {
        SeqAt::RcvNxt | SeqAt::WindowEndMinus1 => true,
        // The last octet is in the window when the segment is longer than one.
        SeqAt::RcvNxtMinus1 => seg_len > 1,
        SeqAt::WindowEnd | SeqAt::Isn => false,
    };
    // A RST is judged by RFC 5961 §3.2 in or out of the window.
    if f.rst {
        return RST;
    }
    if !acceptable {
        return SEQUENCE;
    }
    if f.syn {
        return SYN;
    }
    if !f.ack {
        return ACK;
    }
    match (state, seg.ack) {
        (_, AckAt::BeyondNxt) => ACK,
        // In SYN-RECEIVED only SND.UNA < SEG.ACK =< SND.NXT is acceptable (a RST answers).
        (State::SynReceived, AckAt::BelowUna | AckAt::Una) => ACK_STATES,
        _ if seg.kind == K::Ack => ACK_STATES,
        _ => TEXT_AND_FIN,
    }
}

/// The state a fresh stack is in after `path`, a prefix of a row's path (see
/// [`matrix::path_to`]: listen or connect, then in-order segments and closes).
fn state_before(path: &[TcpEvent]) -> State {
    use crate::suites::tcp::scenario::SegmentKind as K;
    path.iter()
        .fold(State::Closed, |state, e| match (state, e) {
            (State::Closed, TcpEvent::Listen) => State::Listen,
            (State::Closed, TcpEvent::Connect) => State::SynSent,
            (State::Listen, TcpEvent::Peer(_)) => State::SynReceived,
            (State::SynReceived, TcpEvent::Peer(_)) => State::Established,
            (State::Established, TcpEvent::Close) => State::FinWait1,
            (State::Established, TcpEvent::Peer(p)) if p.kind == K::FinAck => State::CloseWait,
            (State::CloseWait, TcpEvent::Close) => State::LastAck,
            (State::FinWait1, TcpEvent::Peer(p)) if p.kind == K::Ack => State::FinWait2,
            (State::FinWait1, TcpEvent::Peer(_)) => State::Closing,
            (State::FinWait2, TcpEvent::Peer(_)) => State::TimeWait,
            (s, _) => s,
        })
}

/// Which event of a cell a failure of `step` is about: `event K of N (...)` is event K (from
/// 1); a failure after the events (the quiet period, the clean-up) is about the last one.
fn failing_event(step: &str, events: usize) -> usize {
    step.strip_prefix("event ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|k| (1..=events).contains(k))
        .map_or(events.saturating_sub(1), |k| k - 1)
}

/// Runs every cell of the matrix row for `state`; each cell is its own connection on the
/// same stack, compared to the end of its quiet period. All cells run; the verdict lists
/// every disagreement.
fn run_row(session: &mut Session<'_>, state: State, ipv6: bool) -> Result<(), CheckError> {
    let cells: Vec<_> = matrix::matrix(session.profile(), ipv6)
        .into_iter()
        .filter(|c| c.name.split(' ').nth(1) == Some(&state.to_string()))
        .collect();
    let runs: Vec<_> = cells
        .iter()
        .enumerate()
        .map(|(i, cell)| (cell.clone(), 10_000 + i as u16))
        .collect();
    // One batch, so the cells' quiet periods overlap; then each cell's result is judged in
    // turn. A cell the batch never finished (the DUT failed in a later cell before its
    // quiet period was over) could not be run.
    let mut results = run_batch(session, &runs).into_iter();
    run_cells(session, state, &cells, |_, cell, _| {
        results.next().flatten().unwrap_or_else(|| {
            Err(CheckError::Dut {
                step: cell.name.clone(),
                source: DutError::NotSupported {
                    what: "not finished: the DUT failed in a later cell before this one's quiet period was over".into(),
                },
            })
        })
    })
}

/// Runs `cells` (the row of `state`) with `run`, every one unless the DUT fails, and gives
/// the row's verdict:
/// - a row with at least one disagreeing cell fails, with every disagreement, and one line
///   for each cell the DUT could not run (`cell: could not run: why`). A cell the DUT
///   refuses (`NotSupported`, one event it cannot do) does not stop the row; any other DUT
///   error does (the DUT failed: it is gone, timed out, answered nonsense, and every later
///   cell would wait on it in turn), and one line says how many cells were not started;
/// - a row whose only problem is cells the DUT could not run is the DUT's failure that
///   stopped it (an error), else the first refusal (unsupported);
/// - a row with no cells is a harness bug (an error), never a pass.
fn run_cells(
    session: &mut Session<'_>,
    state: State,
    cells: &[TcpScenario],
    mut run: impl FnMut(&mut Session<'_>, &TcpScenario, u16) -> Result<(), CheckError>,
) -> Result<(), CheckError> {
    let profile = session.profile();
    let step = format!("{state} row of the matrix");
    if cells.is_empty() {
        return Err(CheckError::Harness {
            step,
            bug: format!(
                "the matrix has no cells for {state} (profile {profile:?}): nothing was checked"
            ),
        });
    }
    let mut failures = Vec::new();
    let mut could_not_run = Vec::new();
    // How many cells did not run: those the DUT could not run and those never started
    // because it had failed (listed together in one line).
    let mut unrun = 0;
    let mut dut_error = None;
    let mut first_detail = None;
    for (i, cell) in cells.iter().enumerate() {
        let port = 10_000 + i as u16;
        let result = run(session, cell, port);
        tally_cell(session, state, cell, result.as_ref().err());
        match result {
            Ok(()) => {}
            Err(e) if !e.is_disagreement() => {
                unrun += 1;
                could_not_run.push(format!("{}: could not run: {e}", cell.name));
                let refused = matches!(
                    e,
                    CheckError::Dut {
                        source: DutError::NotSupported { .. },
                        ..
                    }
                );
                if refused {
                    dut_error.get_or_insert(e);
                } else {
                    // A failure of the DUT outweighs the refusals before it.
                    dut_error = Some(e);
                }
                if !refused && i + 1 < cells.len() {
                    // The DUT failed: the later cells are not started, one line says so.
                    let left = cells.len() - i - 1;
                    unrun += left;
                    could_not_run.push(format!(
                        "the {left} cells after {} were not run: the DUT failed there",
                        cell.name
                    ));
                    break;
                }
            }
            Err(e) => {
                let text = e.to_string();
                failures.push(cell_line(cell, &e));
                if first_detail.is_none() {
                    first_detail = Some(text);
                }
            }
        }
    }
    if failures.is_empty() {
        return match dut_error {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    let total = cells.len();
    failures.insert(
        0,
        match unrun {
            0 => format!(
                "{} of {total} cells disagree with the {profile:?} profile",
                failures.len()
            ),
            n => format!(
                "{} of {total} cells disagree with the {profile:?} profile; {n} could not run",
                failures.len()
            ),
        },
    );
    failures.extend(could_not_run);
    if let Some(detail) = first_detail {
        failures.push(format!("first disagreement in full: {detail}"));
    }
    Err(CheckError::Mismatch {
        step,
        differences: failures,
    })
}

/// The line a disagreeing cell gets in the row's failure: its name and the difference,
/// without the scenario and the ladder the error also carries.
fn cell_line(cell: &TcpScenario, e: &CheckError) -> String {
    let text = e.to_string();
    format!(
        "{}: {}",
        cell.name,
        text.split("; scenario:").next().unwrap_or(&text)
    )
}

/// Tallies one cell ([`Session::tally`]): each clause its events exercised, once, up to the
/// event it disagreed at, and the clause it broke there. A cell the DUT could not run
/// exercised nothing.
fn tally_cell(
    session: &mut Session<'_>,
    row: State,
    cell: &TcpScenario,
    error: Option<&CheckError>,
) {
    let events = cell.events.len();
    let (last, broken) = match error {
        None => (events, None),
        Some(e) if e.is_disagreement() => {
            let at = failing_event(e.step(), events);
            (
                at + 1,
                Some((clause_of_event(row, cell, at), cell_line(cell, e))),
            )
        }
        Some(_) => return,
    };
    let mut seen: Vec<&'static str> = Vec::new();
    for i in 0..last {
        let clause = clause_of_event(row, cell, i);
        if broken.as_ref().is_some_and(|(b, _)| b.id == clause.id) || seen.contains(&clause.id) {
            continue;
        }
        seen.push(clause.id);
        session.tally(clause, None);
    }
    if let Some((clause, line)) = broken {
        session.tally(clause, Some(line));
    }
}

macro_rules! matrix_checks {
    ($( $name:ident: $id:literal, $state:expr, $ipv6:expr, $clauses:expr; )*) => {
        $(
            fn $name(session: &mut Session<'_>) -> Result<(), CheckError> {
                run_row(session, $state, $ipv6)
            }
        )*
        /// The matrix checks, one per state and IP version.
        pub const CHECKS: &[CheckSpec] = &[
            $(
                CheckSpec {
                    id: $id,
                    title: concat!("TCP matrix row: every segment kind at the boundary numbers, in ", stringify!($state)),
                    clauses: $clauses,
                    needs: Needs::scenario($ipv6),
                    run: $name,
                },
            )*
        ];
    };
}

matrix_checks! {
    v4_closed: "tcp.matrix.v4.closed", State::Closed, false, &[CLOSED];
    v4_listen: "tcp.matrix.v4.listen", State::Listen, false, &[LISTEN, OPEN];
    v4_syn_sent: "tcp.matrix.v4.syn-sent", State::SynSent, false, &[SYN_SENT, OPEN];
    v4_syn_received: "tcp.matrix.v4.syn-received", State::SynReceived, false, SYNCHRONIZED;
    v4_established: "tcp.matrix.v4.established", State::Established, false, SYNCHRONIZED;
    v4_fin_wait_1: "tcp.matrix.v4.fin-wait-1", State::FinWait1, false, SYNCHRONIZED_CLOSED;
    v4_fin_wait_2: "tcp.matrix.v4.fin-wait-2", State::FinWait2, false, SYNCHRONIZED_CLOSED;
    v4_close_wait: "tcp.matrix.v4.close-wait", State::CloseWait, false, SYNCHRONIZED;
    v4_closing: "tcp.matrix.v4.closing", State::Closing, false, SYNCHRONIZED_CLOSED;
    v4_last_ack: "tcp.matrix.v4.last-ack", State::LastAck, false, SYNCHRONIZED_CLOSED;
    v4_time_wait: "tcp.matrix.v4.time-wait", State::TimeWait, false, SYNCHRONIZED_CLOSED;
    v6_closed: "tcp.matrix.v6.closed", State::Closed, true, &[CLOSED];
    v6_listen: "tcp.matrix.v6.listen", State::Listen, true, &[LISTEN, OPEN];
    v6_syn_sent: "tcp.matrix.v6.syn-sent", State::SynSent, true, &[SYN_SENT, OPEN];
    v6_syn_received: "tcp.matrix.v6.syn-received", State::SynReceived, true, SYNCHRONIZED;
    v6_established: "tcp.matrix.v6.established", State::Established, true, SYNCHRONIZED;
    v6_fin_wait_1: "tcp.matrix.v6.fin-wait-1", State::FinWait1, true, SYNCHRONIZED_CLOSED;
    v6_fin_wait_2: "tcp.matrix.v6.fin-wait-2", State::FinWait2, true, SYNCHRONIZED_CLOSED;
    v6_close_wait: "tcp.matrix.v6.close-wait", State::CloseWait, true, SYNCHRONIZED;
    v6_closing: "tcp.matrix.v6.closing", State::Closing, true, SYNCHRONIZED_CLOSED;
    v6_last_ack: "tcp.matrix.v6.last-ack", State::LastAck, true, SYNCHRONIZED_CLOSED;
    v6_time_wait: "tcp.matrix.v6.time-wait", State::TimeWait, true, SYNCHRONIZED_CLOSED;
}

/// Every state has its row, for both IP versions; a row's verdict from its cells' outcomes.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::{Dut, DutError, Endpoints};
    use crate::engine::Verdict;
    use crate::engine::runner::verdict_of;
    use crate::models::profile::ProfileName;
    use crate::suites::tcp::matrix::STATES;
    use crate::wire::MacAddr;

    /// A DUT with no planes: the row logic is driven by a scripted cell runner, so the
    /// session only needs endpoints.
    struct NoPlanes(Endpoints);

    impl Dut for NoPlanes {
        fn name(&self) -> &str {
            "no-planes"
        }
        fn endpoints(&self) -> &Endpoints {
            &self.0
        }
    }

    fn dut() -> NoPlanes {
        NoPlanes(Endpoints {
            harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            stack_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            stack_ipv4: Some((std::net::Ipv4Addr::new(10, 9, 0, 2), 24)),
            peer_ipv4: Some(std::net::Ipv4Addr::new(10, 9, 0, 1)),
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
        })
    }

    fn row(state: State) -> Vec<TcpScenario> {
        matrix::matrix(ProfileName::Linux, false)
            .into_iter()
            .filter(|c| c.name.split(' ').nth(1) == Some(&state.to_string()))
            .collect()
    }

    fn mismatch(cell: usize) -> CheckError {
        CheckError::Mismatch {
            step: format!("event {cell}"),
            differences: vec![
                "tcp.flags: expected R., observed .".to_string(),
                format!("cell {cell}"),
            ],
        }
    }

    /// How a cell's DUT error reads.
    #[derive(Clone, Copy)]
    enum Cause {
        Unsupported,
        Timeout,
        Gone,
    }

    fn dut_error(cell: usize, cause: Cause) -> CheckError {
        CheckError::Dut {
            step: format!("event {cell}"),
            source: match cause {
                Cause::Unsupported => DutError::NotSupported {
                    what: "SO_LINGER".into(),
                },
                Cause::Timeout => DutError::Timeout {
                    what: "the agent's answer".into(),
                },
                Cause::Gone => DutError::Gone {
                    what: "the agent".into(),
                },
            },
        }
    }

    /// The verdict of the Established row whose cell `i` answers `outcome(i)`, and how many
    /// cells ran.
    fn row_verdict(outcome: impl Fn(usize) -> Result<(), CheckError>) -> (Verdict, usize) {
        let cells = row(State::Established);
        let mut dut = dut();
        let mut session = Session::new(&mut dut);
        let mut ran = 0;
        let result = run_cells(&mut session, State::Established, &cells, |_, _, port| {
            ran += 1;
            outcome(usize::from(port - 10_000))
        });
        (
            result.map_or_else(|e| verdict_of(&e), |()| Verdict::Pass),
            ran,
        )
    }

    #[test]
    fn a_disagreement_is_not_lost_to_a_later_dut_error() {
        let cells = row(State::Established);
        let (verdict, ran) = row_verdict(|i| match i {
            2 => Err(mismatch(2)),
            5 => Err(dut_error(5, Cause::Unsupported)),
            7 => Err(dut_error(7, Cause::Unsupported)),
            9 => Err(mismatch(9)),
            _ => Ok(()),
        });
        assert_eq!(ran, cells.len(), "every cell runs, also after a DUT error");
        let Verdict::Fail { step, differences } = verdict else {
            panic!("a row with disagreeing cells must fail, got {verdict:?}");
        };
        assert_eq!(step, "ESTABLISHED row of the matrix");
        let total = cells.len();
        assert_eq!(
            differences,
            vec![
                format!("2 of {total} cells disagree with the Linux profile; 2 could not run"),
                format!(
                    "{}: event 2: tcp.flags: expected R., observed .; cell 2",
                    cells[2].name
                ),
                format!(
                    "{}: event 9: tcp.flags: expected R., observed .; cell 9",
                    cells[9].name
                ),
                format!(
                    "{}: could not run: event 5: not supported by this target: SO_LINGER",
                    cells[5].name
                ),
                format!(
                    "{}: could not run: event 7: not supported by this target: SO_LINGER",
                    cells[7].name
                ),
                "first disagreement in full: event 2: tcp.flags: expected R., observed .; cell 2"
                    .to_string(),
            ]
        );
    }

    /// Once the DUT failed (gone, timed out), the later cells are not started; one line says
    /// how many, and the disagreements found before stay.
    #[test]
    fn a_failed_dut_ends_the_row_and_keeps_its_disagreements() {
        let cells = row(State::Established);
        let (verdict, ran) = row_verdict(|i| match i {
            2 => Err(mismatch(2)),
            5 => Err(dut_error(5, Cause::Gone)),
            _ => Ok(()),
        });
        assert_eq!(ran, 6, "cells 0 to 5 ran, none after the DUT was gone");
        let total = cells.len();
        let left = total - 6;
        assert_eq!(
            verdict,
            Verdict::Fail {
                step: "ESTABLISHED row of the matrix".into(),
                differences: vec![
                    format!(
                        "1 of {total} cells disagree with the Linux profile; {} could not run",
                        left + 1
                    ),
                    format!(
                        "{}: event 2: tcp.flags: expected R., observed .; cell 2",
                        cells[2].name
                    ),
                    format!(
                        "{}: could not run: event 5: target gone: the agent",
                        cells[5].name
                    ),
                    format!(
                        "the {left} cells after {} were not run: the DUT failed there",
                        cells[5].name
                    ),
                    "first disagreement in full: event 2: tcp.flags: expected R., observed .; \
                     cell 2"
                        .to_string(),
                ],
            }
        );
    }

    #[test]
    fn a_row_whose_only_problem_is_a_dut_error_is_that_error() {
        let (verdict, ran) = row_verdict(|i| match i {
            3 => Err(dut_error(3, Cause::Unsupported)),
            4 => Err(dut_error(4, Cause::Timeout)),
            _ => Ok(()),
        });
        assert_eq!(ran, 5, "a timeout stops the row");
        assert_eq!(
            verdict,
            Verdict::Error {
                reason: "event 4: target timed out: the agent's answer".into()
            },
            "the DUT's failure outweighs the refusal before it"
        );
        let (verdict, ran) = row_verdict(|i| match i {
            4 => Err(dut_error(4, Cause::Unsupported)),
            _ => Ok(()),
        });
        assert_eq!(ran, row(State::Established).len(), "a refusal does not");
        assert_eq!(
            verdict,
            Verdict::Unsupported {
                reason: "event 4: SO_LINGER".into()
            }
        );
        let (verdict, _) = row_verdict(|i| match i {
            4 => Err(dut_error(4, Cause::Gone)),
            _ => Ok(()),
        });
        assert_eq!(
            verdict,
            Verdict::Error {
                reason: "event 4: target gone: the agent".into()
            }
        );
    }

    /// The text of a row that fails today (no DUT error) is what it was.
    #[test]
    fn a_failing_row_reads_as_before() {
        let cells = row(State::Established);
        let (verdict, _) = row_verdict(|i| if i == 1 { Err(mismatch(1)) } else { Ok(()) });
        let total = cells.len();
        assert_eq!(
            verdict,
            Verdict::Fail {
                step: "ESTABLISHED row of the matrix".into(),
                differences: vec![
                    format!("1 of {total} cells disagree with the Linux profile"),
                    format!("{}: event 1: tcp.flags: expected R., observed .; cell 1", cells[1].name),
                    "first disagreement in full: event 1: tcp.flags: expected R., observed .; cell 1"
                        .to_string(),
                ],
            }
        );
        assert_eq!(row_verdict(|_| Ok(())).0, Verdict::Pass);
    }

    #[test]
    fn a_row_with_no_cells_is_a_harness_error_not_a_pass() {
        let mut dut = dut();
        let mut session = Session::new(&mut dut);
        let result = run_cells(&mut session, State::Closing, &[], |_, _, _| Ok(()));
        let verdict = result.map_or_else(|e| verdict_of(&e), |()| Verdict::Pass);
        assert_eq!(
            verdict,
            Verdict::Error {
                reason:
                    "CLOSING row of the matrix: harness bug: the matrix has no cells for CLOSING \
                         (profile Linux): nothing was checked"
                        .into()
            }
        );
    }

    /// Every state's row has cells, under both profiles and IP versions.
    #[test]
    fn every_row_has_cells() {
        for profile in [ProfileName::Rfc, ProfileName::Linux] {
            for ipv6 in [false, true] {
                let cells = matrix::matrix(profile, ipv6);
                for state in STATES {
                    let n = cells
                        .iter()
                        .filter(|c| c.name.split(' ').nth(1) == Some(&state.to_string()))
                        .count();
                    assert!(n > 0, "{state} {profile:?} ipv6 {ipv6}: no cells");
                }
            }
        }
    }

    #[test]
    fn one_check_per_state_and_family() {
        assert_eq!(CHECKS.len(), STATES.len() * 2);
        for state in STATES {
            let slug = state.to_string().to_lowercase();
            assert!(
                CHECKS
                    .iter()
                    .any(|c| c.id == format!("tcp.matrix.v4.{slug}")),
                "{slug}"
            );
            assert!(
                CHECKS
                    .iter()
                    .any(|c| c.id == format!("tcp.matrix.v6.{slug}")),
                "{slug}"
            );
        }
    }

    fn probe_clause(state: State, name_part: &str) -> &'static str {
        let cells = row(state);
        let cell = cells
            .iter()
            .find(|c| c.name.ends_with(name_part))
            .unwrap_or_else(|| panic!("no cell {name_part} in {state}"));
        clause_of_event(state, cell, cell.events.len() - 1).id
    }

    /// Each probe is classified by the first rule of §3.10.7.4 that decides it.
    #[test]
    fn each_cell_names_the_rule_that_decides_it() {
        use State::*;
        // Unacceptable (below or beyond the window): the first check.
        assert_eq!(
            probe_clause(Established, " Ack seq RcvNxtMinus1 ack Nxt"),
            SEQUENCE.id
        );
        assert_eq!(
            probe_clause(Established, " FinAck seq WindowEnd ack Nxt"),
            SEQUENCE.id
        );
        // Data overlapping the left edge is acceptable: it is about the text.
        assert_eq!(
            probe_clause(Established, " Data seq RcvNxtMinus1 ack Nxt"),
            TEXT_AND_FIN.id
        );
        // A RST in or out of the window: RFC 5961 §3.2.
        assert_eq!(probe_clause(Established, " Rst seq WindowEnd"), RST.id);
        assert_eq!(
            probe_clause(CloseWait, " RstAck seq RcvNxt ack Una"),
            RST.id
        );
        // A SYN in the window: RFC 5961 §4.2; a FIN without ACK: the fifth check.
        assert_eq!(probe_clause(FinWait2, " Syn seq RcvNxt"), SYN.id);
        assert_eq!(probe_clause(Established, " Fin seq RcvNxt"), ACK.id);
        // An ACK of unsent data: RFC 5961 §5.2; in SYN-RECEIVED an ACK =< SND.UNA draws a RST.
        assert_eq!(
            probe_clause(Established, " Ack seq RcvNxt ack BeyondNxt"),
            ACK.id
        );
        assert_eq!(
            probe_clause(SynReceived, " Ack seq RcvNxt ack Una"),
            ACK_STATES.id
        );
        // An acceptable ACK, FIN or data.
        assert_eq!(
            probe_clause(Closing, " Ack seq RcvNxt ack Nxt"),
            ACK_STATES.id
        );
        assert_eq!(
            probe_clause(Established, " FinAck seq RcvNxt ack Nxt"),
            TEXT_AND_FIN.id
        );
        // The unsynchronized states have one rule each.
        assert_eq!(probe_clause(Closed, " Data seq RcvNxt ack Nxt"), CLOSED.id);
        assert_eq!(probe_clause(Listen, " Rst seq RcvNxt"), LISTEN.id);
        assert_eq!(
            probe_clause(SynSent, " SynAck seq RcvNxt ack Una"),
            SYN_SENT.id
        );
    }

    /// The path's events are classified by their own step, in the state the path is in.
    #[test]
    fn a_path_event_names_its_own_rule() {
        let cell = &row(State::TimeWait)[0];
        // Listen, Syn, Ack, Close, Ack, FinAck, probe.
        let ids: Vec<_> = (0..cell.events.len() - 1)
            .map(|i| clause_of_event(State::TimeWait, cell, i).id)
            .collect();
        assert_eq!(
            ids,
            vec![
                OPEN.id,
                LISTEN.id,
                ACK_STATES.id,
                CLOSE.id,
                ACK_STATES.id,
                TEXT_AND_FIN.id
            ]
        );
        assert_eq!(failing_event("event 3 of 7 (Peer(..))", 7), 2);
        assert_eq!(failing_event("quiet period after the last event", 7), 6);
        assert_eq!(
            failing_event("event 9 of 7", 7),
            6,
            "out of range: the probe"
        );
    }

    /// Every clause a row's cells tally is one the row's check lists, and every clause it
    /// lists is exercised by some cell.
    #[test]
    fn each_row_lists_exactly_the_clauses_its_cells_exercise() {
        for spec in CHECKS.iter().filter(|c| c.id.starts_with("tcp.matrix.v4.")) {
            let state = STATES
                .into_iter()
                .find(|s| {
                    spec.id
                        .ends_with(&format!(".{}", s.to_string().to_lowercase()))
                })
                .expect("a state");
            let mut exercised: Vec<&str> = Vec::new();
            for cell in row(state) {
                for i in 0..cell.events.len() {
                    let id = clause_of_event(state, &cell, i).id;
                    if !exercised.contains(&id) {
                        exercised.push(id);
                    }
                }
            }
            let mut listed: Vec<&str> = spec.clauses.iter().map(|c| c.id).collect();
            exercised.sort_unstable();
            listed.sort_unstable();
            assert_eq!(exercised, listed, "{}", spec.id);
        }
    }

    /// A row whose cells disagree on one clause only fails that clause: the session's
    /// tallies hold the others (negative control: the same row with no failing cell tallies
    /// no failure at all).
    #[test]
    fn a_failing_row_tallies_its_cells_by_clause() {
        let cells = row(State::Established);
        let syn_cells: Vec<usize> = (0..cells.len())
            .filter(|&i| {
                clause_of_event(State::Established, &cells[i], cells[i].events.len() - 1).id
                    == SYN.id
            })
            .collect();
        assert!(!syn_cells.is_empty());
        let probe_step = |i: usize| format!("event {n} of {n} (probe)", n = cells[i].events.len());
        let run_row = |fail: &dyn Fn(usize) -> bool| {
            let mut dut = dut();
            let mut session = Session::new(&mut dut);
            let _ = run_cells(&mut session, State::Established, &cells, |_, _, port| {
                let i = usize::from(port - 10_000);
                if fail(i) {
                    Err(CheckError::Mismatch {
                        step: probe_step(i),
                        differences: vec!["no challenge ACK".into()],
                    })
                } else {
                    Ok(())
                }
            });
            session.clause_tallies().to_vec()
        };
        let tallies = run_row(&|i| syn_cells.contains(&i));
        for t in &tallies {
            if t.clause.id == SYN.id {
                assert_eq!(t.failing.len(), syn_cells.len());
                assert_eq!(t.ran, syn_cells.len());
            } else {
                assert!(t.failing.is_empty(), "{} has failures", t.clause.id);
                assert!(t.ran > 0);
            }
        }
        // Every cell's path exercised OPEN, LISTEN and the handshake's ACK.
        let open = tallies
            .iter()
            .find(|t| t.clause.id == OPEN.id)
            .expect("OPEN");
        assert_eq!(open.ran, cells.len());
        let clean = run_row(&|_| false);
        assert!(clean.iter().all(|t| t.failing.is_empty()));
    }
}
