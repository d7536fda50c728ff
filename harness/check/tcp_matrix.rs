//! The TCP state × segment matrix (after the FreeBSD tcp-testsuite): every state, every
//! segment kind, the boundary sequence and acknowledgment numbers, as [`TcpScenario`]s.

use crate::check::tcp_scenario::{
    AckAt, PeerSegment, ProfileName, SegmentKind, SeqAt, TcpEvent, TcpScenario,
};
use crate::models::tcp::State;

/// The states a scenario can drive the stack into before its probe, with the path there.
pub const STATES: [State; 11] = [
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

/// The events that take a fresh stack into `state` (each one checked on the way).
pub fn path_to(state: State) -> Vec<TcpEvent> {
    use SegmentKind::*;
    let next = |k| TcpEvent::Peer(PeerSegment::next(k));
    let established = vec![TcpEvent::Listen, next(Syn), next(Ack)];
    let fin_wait_1 = [established.clone(), vec![TcpEvent::Close]].concat();
    let close_wait = [established.clone(), vec![next(FinAck)]].concat();
    match state {
        State::Closed => Vec::new(),
        State::Listen => vec![TcpEvent::Listen],
        State::SynSent => vec![TcpEvent::Connect],
        State::SynReceived => vec![TcpEvent::Listen, next(Syn)],
        State::Established => established,
        State::FinWait1 => fin_wait_1,
        State::FinWait2 => [fin_wait_1, vec![next(Ack)]].concat(),
        State::CloseWait => close_wait,
        State::Closing => {
            // The peer's FIN crosses ours: it acknowledges SND.UNA, not our FIN.
            let fin = PeerSegment {
                ack: AckAt::Una,
                ..PeerSegment::next(FinAck)
            };
            [fin_wait_1, vec![TcpEvent::Peer(fin)]].concat()
        }
        State::LastAck => [close_wait, vec![TcpEvent::Close]].concat(),
        State::TimeWait => [fin_wait_1, vec![next(Ack), next(FinAck)]].concat(),
    }
}

/// One cell of the matrix: the path to `state`, then `probe`.
pub fn cell(profile: ProfileName, ipv6: bool, state: State, probe: PeerSegment) -> TcpScenario {
    let mut events = path_to(state);
    events.push(TcpEvent::Peer(probe));
    let ack = if probe.kind.flags().ack {
        format!(" ack {:?}", probe.ack)
    } else {
        String::new()
    };
    TcpScenario {
        name: format!(
            "{} {state} {:?} seq {:?}{ack}",
            if ipv6 { "v6" } else { "v4" },
            probe.kind,
            probe.seq
        ),
        profile,
        ipv6,
        peer_mss: Some(1460),
        events,
    }
}

/// The whole matrix for one IP version: 11 states × 9 segment kinds × 4 sequence numbers ×
/// (4 acknowledgment numbers when the kind carries ACK, else 1).
pub fn matrix(profile: ProfileName, ipv6: bool) -> Vec<TcpScenario> {
    let mut out = Vec::new();
    for state in STATES {
        for kind in SegmentKind::ALL {
            for seq in SeqAt::BOUNDARIES {
                let acks: &[AckAt] = if kind.flags().ack {
                    &AckAt::BOUNDARIES
                } else {
                    &[AckAt::Nxt]
                };
                for &ack in acks {
                    let len = if kind == SegmentKind::Data { 10 } else { 0 };
                    out.push(cell(
                        profile,
                        ipv6,
                        state,
                        PeerSegment {
                            kind,
                            seq,
                            ack,
                            len,
                        },
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_every_cell_once() {
        let m = matrix(ProfileName::Linux, false);
        // 4 kinds without ACK × 4 seq + 5 kinds with ACK × 4 seq × 4 ack = 96 per state.
        assert_eq!(m.len(), 11 * 96);
        let names: std::collections::HashSet<_> = m.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names.len(), m.len());
    }
}
