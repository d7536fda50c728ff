//! The TCP state × segment matrix as certify checks: one check per state and IP version,
//! each running its 96 cells (segment kind × sequence number × acknowledgment number)
//! against the model and the stack side by side.
//!
//! Read first: RFC 9293 §3.10.7 (SEGMENT ARRIVES, in its order of checks), RFC 5961 §3–§5.

use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::models::tcp::State;
use crate::suites::tcp::matrix;
use crate::suites::tcp::scenario::run_scenario;

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

const SYNCHRONIZED: &[Clause] = &[SEQUENCE, RST, SYN, ACK, TEXT_AND_FIN];

/// Runs every cell of the matrix row for `state`; each cell is its own connection on the
/// same stack. All cells run; the verdict lists every disagreement.
fn run_row(session: &mut Session<'_>, state: State, ipv6: bool) -> Result<(), CheckError> {
    let profile = session.profile();
    let cells: Vec<_> = matrix::matrix(profile, ipv6)
        .into_iter()
        .filter(|c| c.name.split(' ').nth(1) == Some(&state.to_string()))
        .collect();
    let mut failures = Vec::new();
    let mut first_detail = None;
    for (i, cell) in cells.iter().enumerate() {
        let port = 10_000 + i as u16;
        if let Err(e) = run_scenario(session, cell, port) {
            if let CheckError::Dut { .. } = e {
                return Err(e);
            }
            let text = e.to_string();
            failures.push(format!(
                "{}: {}",
                cell.name,
                text.split("; scenario:").next().unwrap_or(&text)
            ));
            if first_detail.is_none() {
                first_detail = Some(text);
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let total = cells.len();
    failures.insert(
        0,
        format!(
            "{} of {total} cells disagree with the {profile:?} profile",
            failures.len()
        ),
    );
    if let Some(detail) = first_detail {
        failures.push(format!("first disagreement in full: {detail}"));
    }
    Err(CheckError::Mismatch {
        step: format!("{state} row of the matrix"),
        differences: failures,
    })
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
    v4_listen: "tcp.matrix.v4.listen", State::Listen, false, &[LISTEN];
    v4_syn_sent: "tcp.matrix.v4.syn-sent", State::SynSent, false, &[SYN_SENT];
    v4_syn_received: "tcp.matrix.v4.syn-received", State::SynReceived, false, SYNCHRONIZED;
    v4_established: "tcp.matrix.v4.established", State::Established, false, SYNCHRONIZED;
    v4_fin_wait_1: "tcp.matrix.v4.fin-wait-1", State::FinWait1, false, SYNCHRONIZED;
    v4_fin_wait_2: "tcp.matrix.v4.fin-wait-2", State::FinWait2, false, SYNCHRONIZED;
    v4_close_wait: "tcp.matrix.v4.close-wait", State::CloseWait, false, SYNCHRONIZED;
    v4_closing: "tcp.matrix.v4.closing", State::Closing, false, SYNCHRONIZED;
    v4_last_ack: "tcp.matrix.v4.last-ack", State::LastAck, false, SYNCHRONIZED;
    v4_time_wait: "tcp.matrix.v4.time-wait", State::TimeWait, false, SYNCHRONIZED;
    v6_closed: "tcp.matrix.v6.closed", State::Closed, true, &[CLOSED];
    v6_listen: "tcp.matrix.v6.listen", State::Listen, true, &[LISTEN];
    v6_syn_sent: "tcp.matrix.v6.syn-sent", State::SynSent, true, &[SYN_SENT];
    v6_syn_received: "tcp.matrix.v6.syn-received", State::SynReceived, true, SYNCHRONIZED;
    v6_established: "tcp.matrix.v6.established", State::Established, true, SYNCHRONIZED;
    v6_fin_wait_1: "tcp.matrix.v6.fin-wait-1", State::FinWait1, true, SYNCHRONIZED;
    v6_fin_wait_2: "tcp.matrix.v6.fin-wait-2", State::FinWait2, true, SYNCHRONIZED;
    v6_close_wait: "tcp.matrix.v6.close-wait", State::CloseWait, true, SYNCHRONIZED;
    v6_closing: "tcp.matrix.v6.closing", State::Closing, true, SYNCHRONIZED;
    v6_last_ack: "tcp.matrix.v6.last-ack", State::LastAck, true, SYNCHRONIZED;
    v6_time_wait: "tcp.matrix.v6.time-wait", State::TimeWait, true, SYNCHRONIZED;
}

/// Every state has its row, for both IP versions.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::tcp::matrix::STATES;

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
}
