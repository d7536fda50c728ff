//! The input of a stack target: bytes to a [`TcpScenario`] and back.
//!
//! The input is the scenario vocabulary itself (`suites::tcp::scenario`), so that what a
//! stack target runs is what `netconform replay` runs, on any stack, and every scenario the
//! harness already has (the matrix cells, `fixtures/tcp-regressions/`) is a seed
//! ([`encode`]). Every byte string decodes to a scenario (possibly with no events); the
//! format is small and positional so that libFuzzer's byte mutations move one field:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | bit 0: IPv6; the other bits are ignored |
//! | 1 | the MSS the peer announces on its SYNs: 0 none, else [`MSS_CHOICES`]`[(b - 1) % 8]` |
//! | then | events, at most [`MAX_EVENTS`], each an opcode byte and its operands |
//!
//! Opcodes: `op < 0x80` is a peer segment. `op % 90 < 45`: kind `op % 9` of
//! [`SegmentKind::ALL`], sequence number `op / 9 % 5` of [`SEQ_AT`], then one byte `p`:
//! acknowledgment number `p & 3` of [`AckAt::BOUNDARIES`], payload length
//! [`LENGTHS`]`[p >> 2 & 7]`. `op % 90 >= 45`: the same with `op - 45`, and the payload
//! length in two more bytes (little-endian, at most [`MAX_PAYLOAD`]). `op >= 0x80` is an
//! application call, `op & 7`: 0 LISTEN, 1 CONNECT, 2 SEND (two bytes, little-endian, at
//! most [`MAX_SEND`]), 3 RECEIVE (two bytes), 4 SHUTDOWN(SHUT_WR), 5 CLOSE, 6 ABORT, 7
//! LISTEN. A truncated operand ends the input. A scenario opens once (the runner has one
//! listening and one client socket): a LISTEN or CONNECT after the first open is skipped.

use crate::models::profile::ProfileName;
use crate::suites::tcp::scenario::{AckAt, PeerSegment, SegmentKind, SeqAt, TcpEvent, TcpScenario};

/// The most events one input holds.
pub const MAX_EVENTS: usize = 24;
/// The MSS values byte 1 chooses from.
pub const MSS_CHOICES: [u16; 8] = [1460, 536, 1440, 1220, 100, 1, 9000, 65_535];
/// The sequence numbers, by their index in the input.
pub const SEQ_AT: [SeqAt; 5] = [
    SeqAt::RcvNxt,
    SeqAt::RcvNxtMinus1,
    SeqAt::WindowEndMinus1,
    SeqAt::WindowEnd,
    SeqAt::Isn,
];
/// The payload lengths of the short form of a peer segment.
pub const LENGTHS: [u16; 8] = [0, 10, 1, 2, 100, 536, 1000, 1400];
/// The longest payload of a peer segment: it fits one 1500-byte frame with the SYN's
/// options over IPv6 (a longer one is no segment a link of the stack's MTU carries).
pub const MAX_PAYLOAD: u16 = 1400;
/// The most bytes one SEND asks for (within the stack's send buffer, which the model does
/// not know).
pub const MAX_SEND: u16 = 4095;

const CALL: u8 = 0x80;
const LONG: u8 = 45;

/// The scenario `data` stands for, its models following `profile`; its name carries a hash
/// of the input.
pub fn decode(data: &[u8], profile: ProfileName) -> TcpScenario {
    let mut bytes = data.iter().copied();
    let flags = bytes.next().unwrap_or(0);
    let peer_mss = match bytes.next().unwrap_or(0) {
        0 => None,
        b => Some(MSS_CHOICES[usize::from(b - 1) % MSS_CHOICES.len()]),
    };
    let mut events = Vec::new();
    let mut opened = false;
    while events.len() < MAX_EVENTS {
        let Some(op) = bytes.next() else { break };
        let Some(event) = decode_event(op, &mut bytes) else {
            break;
        };
        // One open per scenario: the runner has one listener and one client socket.
        if matches!(event, TcpEvent::Listen | TcpEvent::Connect) {
            if opened {
                continue;
            }
            opened = true;
        }
        events.push(event);
    }
    TcpScenario {
        name: format!("fuzz input {:016x}", fnv1a(data)),
        profile,
        ipv6: flags & 1 == 1,
        peer_mss,
        events,
    }
}

fn decode_event(op: u8, bytes: &mut impl Iterator<Item = u8>) -> Option<TcpEvent> {
    let u16_operand = |bytes: &mut dyn Iterator<Item = u8>| -> Option<u16> {
        Some(u16::from_le_bytes([bytes.next()?, bytes.next()?]))
    };
    if op & CALL != 0 {
        return Some(match op & 7 {
            0 | 7 => TcpEvent::Listen,
            1 => TcpEvent::Connect,
            2 => TcpEvent::Send(u16_operand(bytes)? % (MAX_SEND + 1)),
            3 => TcpEvent::Receive(u16_operand(bytes)?),
            4 => TcpEvent::ShutdownWrite,
            5 => TcpEvent::Close,
            _ => TcpEvent::Abort,
        });
    }
    let op = op % (2 * LONG);
    let long = op >= LONG;
    let op = op % LONG;
    let kind = SegmentKind::ALL[usize::from(op % 9)];
    let seq = SEQ_AT[usize::from(op / 9 % 5)];
    let p = bytes.next()?;
    let ack = AckAt::BOUNDARIES[usize::from(p & 3)];
    let len = if long {
        u16_operand(bytes)? % (MAX_PAYLOAD + 1)
    } else {
        LENGTHS[usize::from(p >> 2 & 7)]
    };
    Some(TcpEvent::Peer(PeerSegment {
        kind,
        seq,
        ack,
        len,
    }))
}

/// The bytes of `scenario`, which [`decode`] turns back into it (its name and profile
/// aside); `None` when the format cannot hold it (an MSS or SEND size it has no code for,
/// a payload above [`MAX_PAYLOAD`], more than [`MAX_EVENTS`] events).
pub fn encode(scenario: &TcpScenario) -> Option<Vec<u8>> {
    let mut out = vec![u8::from(scenario.ipv6)];
    out.push(match scenario.peer_mss {
        None => 0,
        Some(mss) => MSS_CHOICES.iter().position(|m| *m == mss)? as u8 + 1,
    });
    if scenario.events.len() > MAX_EVENTS {
        return None;
    }
    for event in &scenario.events {
        match *event {
            TcpEvent::Listen => out.push(CALL),
            TcpEvent::Connect => out.push(CALL | 1),
            TcpEvent::Send(n) if n <= MAX_SEND => {
                out.push(CALL | 2);
                out.extend(n.to_le_bytes());
            }
            TcpEvent::Send(_) => return None,
            TcpEvent::Receive(n) => {
                out.push(CALL | 3);
                out.extend(n.to_le_bytes());
            }
            TcpEvent::ShutdownWrite => out.push(CALL | 4),
            TcpEvent::Close => out.push(CALL | 5),
            TcpEvent::Abort => out.push(CALL | 6),
            TcpEvent::Peer(p) => {
                let kind = SegmentKind::ALL.iter().position(|k| *k == p.kind)? as u8;
                let seq = SEQ_AT.iter().position(|s| *s == p.seq)? as u8;
                let ack = AckAt::BOUNDARIES.iter().position(|a| *a == p.ack)? as u8;
                let op = kind + 9 * seq;
                match LENGTHS.iter().position(|l| *l == p.len) {
                    Some(len) => out.extend([op, ack | (len as u8) << 2]),
                    None if p.len <= MAX_PAYLOAD => {
                        out.extend([op + LONG, ack]);
                        out.extend(p.len.to_le_bytes());
                    }
                    None => return None,
                }
            }
        }
    }
    Some(out)
}

/// FNV-1a over `data`: a stable name for an input.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::tcp::matrix;

    fn same(a: &TcpScenario, b: &TcpScenario) -> bool {
        (a.ipv6, a.peer_mss, &a.events) == (b.ipv6, b.peer_mss, &b.events)
    }

    #[test]
    fn every_matrix_cell_encodes_and_decodes_to_itself() {
        for ipv6 in [false, true] {
            for cell in matrix::matrix(ProfileName::Rfc, ipv6) {
                let bytes = encode(&cell).expect("a matrix cell encodes");
                assert!(same(&decode(&bytes, ProfileName::Rfc), &cell), "{cell:?}");
            }
        }
    }

    #[test]
    fn a_long_payload_and_calls_round_trip() {
        // (One open only: a second one is skipped, `a_second_open_is_skipped`.)
        let s = TcpScenario {
            name: String::new(),
            profile: ProfileName::Rfc,
            ipv6: true,
            peer_mss: None,
            events: vec![
                TcpEvent::Connect,
                TcpEvent::Peer(PeerSegment {
                    kind: SegmentKind::FinAck,
                    seq: SeqAt::Isn,
                    ack: AckAt::BeyondNxt,
                    len: 1234,
                }),
                TcpEvent::Send(4095),
                TcpEvent::Receive(65_535),
                TcpEvent::ShutdownWrite,
                TcpEvent::Abort,
                TcpEvent::Close,
            ],
        };
        let bytes = encode(&s).expect("encodes");
        assert!(same(&decode(&bytes, ProfileName::Rfc), &s));
    }

    #[test]
    fn a_second_open_is_skipped() {
        let s = decode(
            &[0, 0, CALL | 1, CALL | 1, CALL, CALL | 5],
            ProfileName::Rfc,
        );
        assert_eq!(s.events, vec![TcpEvent::Connect, TcpEvent::Close]);
    }

    #[test]
    fn any_bytes_decode_within_the_bounds() {
        let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        for start in 0..64 {
            let s = decode(&data[start..], ProfileName::Rfc);
            assert!(s.events.len() <= MAX_EVENTS);
            for e in &s.events {
                match e {
                    TcpEvent::Peer(p) => assert!(p.len <= MAX_PAYLOAD),
                    TcpEvent::Send(n) => assert!(*n <= MAX_SEND),
                    _ => {}
                }
            }
        }
        assert!(decode(&[], ProfileName::Rfc).events.is_empty());
    }
}
