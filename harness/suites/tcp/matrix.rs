//! The TCP state × segment matrix (after the FreeBSD tcp-testsuite): every state, every
//! segment kind, the boundary sequence and acknowledgment numbers, as [`TcpScenario`]s.

use crate::models::tcp::State;
use crate::suites::tcp::scenario::{
    AckAt, PeerSegment, ProfileName, SegmentKind, SeqAt, TcpEvent, TcpScenario,
};

/// The states a scenario can drive the stack into before its probe, with the path there.
pub const STATES: [State; 11] = State::ALL;

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

/// Makes a fresh target for a batch of cells (`true`: with IPv6).
pub type CellTargetFactory<'a> =
    dyn Fn(bool) -> Result<Box<dyn crate::dut::Dut>, crate::dut::DutError> + Sync + 'a;

/// Runs `cells` on `workers` targets at once (each worker takes every `workers`-th cell,
/// IPv4 cells on one target and IPv6 cells on another), each cell on its own port pair.
/// Returns one line per disagreement.
pub fn run_parallel(
    cells: &[TcpScenario],
    workers: usize,
    factory: &CellTargetFactory<'_>,
) -> Result<Vec<String>, crate::dut::DutError> {
    use crate::engine::Session;
    use crate::suites::tcp::scenario::run_scenarios;
    let workers = workers.max(1);
    let run_batch = |batch: Vec<(usize, &TcpScenario)>,
                     ipv6: bool|
     -> Result<Vec<String>, crate::dut::DutError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut target = factory(ipv6)?;
        let mut failures = Vec::new();
        // One session for the batch: the cells' quiet periods overlap (see
        // `run_scenarios`), so the batch costs one quiet period.
        let profile = batch[0].1.profile;
        let mut session = Session::with_profile(target.as_mut(), profile);
        let runs: Vec<_> = batch
            .iter()
            .map(|(i, cell)| ((*cell).clone(), 10_000 + (i % 50_000) as u16))
            .collect();
        let results = match run_scenarios(&mut session, &runs) {
            Ok(r) => r,
            Err(crate::engine::CheckError::Dut { source, .. }) => return Err(source),
            Err(e) => {
                return Err(crate::dut::DutError::Gone {
                    what: format!("a batch of cells ended: {e}"),
                });
            }
        };
        for ((_, cell), result) in batch.iter().zip(results) {
            if let Err(e) = result {
                let text = e.to_string();
                failures.push(format!(
                    "{}: {}",
                    cell.name,
                    text.split("; scenario:").next().unwrap_or(&text)
                ));
            }
        }
        Ok(failures)
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine: Vec<(usize, &TcpScenario)> =
                    cells.iter().enumerate().skip(w).step_by(workers).collect();
                let run_batch = &run_batch;
                s.spawn(move || -> Result<Vec<String>, crate::dut::DutError> {
                    let (v6, v4): (Vec<_>, Vec<_>) = mine.into_iter().partition(|(_, c)| c.ipv6);
                    let mut failures = run_batch(v4, false)?;
                    failures.extend(run_batch(v6, true)?);
                    Ok(failures)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(_) => {
                    return Err(crate::dut::DutError::Gone {
                        what: "a matrix worker panicked".into(),
                    });
                }
            }
        }
        Ok(all)
    })
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
