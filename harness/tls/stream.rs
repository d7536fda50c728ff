//! TCP conversations out of captured frames: the two byte streams of each connection,
//! reassembled the way the receiver would have seen them (RFC 9293 §3.4, §3.10.7), with
//! every gap, conflict and oddity of the capture written down rather than papered over.
//!
//! The frames come from [`crate::pcap`], netconform's one pcap module (pcap and pcapng,
//! Ethernet, Linux cooked, raw IP and loopback captures, all as Ethernet frames with
//! nanosecond timestamps).
//!
//! # Reassembly
//!
//! [`conversations_from_frames`] keys segments by their 4-tuple and works out:
//! - **who is the client**: the side that sent a SYN without ACK; failing that the receiver
//!   of a SYN-ACK; failing that (the capture started mid-connection) the side sending *to*
//!   the lower port (servers listen on well-known ports below the ephemeral range), and on
//!   equal ports the sender of the first segment seen. Each guess is written in
//!   [`TcpConversation::problems`];
//! - **stream offsets**: relative to the ISN (the SYN consumes one sequence number), or to
//!   the first sequence number seen when the SYN was not captured; 32-bit sequence numbers
//!   are unwrapped to 64 bits, so an ISN near 2^32 and streams over 4 GiB both work;
//! - **retransmissions and overlaps**: the first copy of every byte is kept; a later copy
//!   that carries different bytes is a problem note (a TCP stack must not do that);
//! - **out-of-order segments** are placed by offset;
//! - **holes**: data after the first hole is not delivered; each hole is a problem with its
//!   stream offset and size (bytes up to the next data received, or up to the FIN);
//! - **successive connections** on one 4-tuple: a SYN (without ACK) that is not a
//!   retransmission of the current connection's SYN starts a new conversation.
//!
//! Segments are taken as captured: checksums are not checked (captures on the sending host
//! see offloaded, not-yet-computed checksums), IP fragments are not reassembled (a
//! fragmented TCP segment shows as a hole), and frames that do not parse are skipped (a
//! snaplen-cut segment shows as a hole).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::wire::{Frame, TcpFlags, TcpSegment};

/// One TCP connection as captured: its two byte streams and what was wrong with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConversation {
    /// The side that opened the connection (see the module doc for the heuristics).
    pub client: SocketAddr,
    /// The other side.
    pub server: SocketAddr,
    /// Bytes from client to server, contiguous from stream offset 0 up to the first hole.
    pub client_data: Vec<u8>,
    /// Bytes from server to client, contiguous from stream offset 0 up to the first hole.
    pub server_data: Vec<u8>,
    /// SYN seen in both directions, both FINs (or a RST) seen, and no holes.
    pub complete: bool,
    /// Everything the capture got wrong or left open, one sentence each, in order of
    /// discovery: holes with their offset and size, conflicting retransmissions, a missing
    /// SYN, RSTs, data after FIN.
    pub problems: Vec<String>,
    /// Index in the capture of the conversation's first segment.
    pub first_frame: usize,
}

/// Direction within a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Client to server.
    Client = 0,
    /// Server to client.
    Server = 1,
}

impl Side {
    fn arrow(self) -> &'static str {
        match self {
            Side::Client => "client→server",
            Side::Server => "server→client",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One direction's bytes, as non-overlapping chunks keyed by stream offset.
#[derive(Debug, Default)]
struct Direction {
    /// The SYN's sequence number, when seen.
    isn: Option<u32>,
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Non-overlapping received chunks by start offset.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Highest stream offset reached, as the reference for unwrapping.
    high: u64,
    /// Stream offset of the FIN, when seen.
    fin: Option<u64>,
    /// A RST was sent in this direction.
    rst: bool,
}

impl Direction {
    /// The 64-bit stream offset of `seq`, nearest to what was seen so far; negative
    /// offsets (before the first byte) come back as `None` with how far before.
    fn offset_of(&self, seq: u32) -> Result<u64, u64> {
        let base = self.base.unwrap_or(seq);
        let rel = u64::from(seq.wrapping_sub(base));
        let high = self.high;
        let mut candidate = (high & !0xffff_ffff) | rel;
        // Pick the candidate within 2^31 of `high`.
        if candidate > high && candidate - high > 1 << 31 {
            match candidate.checked_sub(1 << 32) {
                Some(c) => candidate = c,
                None => return Err((1u64 << 32) - candidate),
            }
        } else if candidate < high && high - candidate > 1 << 31 {
            candidate += 1 << 32;
        }
        Ok(candidate)
    }

    /// Inserts data at `offset`, keeping the first copy of every byte; returns the ranges
    /// where the new copy differs from the kept one.
    fn insert(&mut self, offset: u64, data: &[u8]) -> Vec<(u64, u64)> {
        let end = offset + data.len() as u64;
        self.high = self.high.max(end);
        let mut conflicts = Vec::new();
        // Existing chunks overlapping [offset, end).
        let overlapping: Vec<(u64, u64)> = self
            .chunks
            .range(..end)
            .rev()
            .take_while(|(s, c)| *s + c.len() as u64 > offset)
            .map(|(s, c)| (*s, *s + c.len() as u64))
            .collect();
        let mut covered: Vec<(u64, u64)> = Vec::new();
        for (s, e) in overlapping.into_iter().rev() {
            let (from, to) = (s.max(offset), e.min(end));
            let kept = &self.chunks[&s][(from - s) as usize..(to - s) as usize];
            let new = &data[(from - offset) as usize..(to - offset) as usize];
            if kept != new {
                let first = kept.iter().zip(new).position(|(a, b)| a != b).unwrap_or(0) as u64;
                let last = kept.iter().zip(new).rposition(|(a, b)| a != b).unwrap_or(0) as u64;
                conflicts.push((from + first, from + last + 1));
            }
            covered.push((from, to));
        }
        // Insert the uncovered parts.
        let mut at = offset;
        for (from, to) in covered.into_iter().chain(std::iter::once((end, end))) {
            if from > at {
                let part = data[(at - offset) as usize..(from - offset) as usize].to_vec();
                self.chunks.insert(at, part);
            }
            at = at.max(to);
        }
        conflicts
    }

    /// The contiguous bytes from offset 0 and the holes: (offset, size).
    fn assemble(&self) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut data = Vec::new();
        let mut holes = Vec::new();
        let mut at = 0u64;
        for (&start, chunk) in &self.chunks {
            if start > at {
                holes.push((at, start - at));
            }
            if holes.is_empty() {
                data.extend_from_slice(chunk);
            }
            at = start + chunk.len() as u64;
        }
        if let Some(fin) = self.fin
            && fin > at
        {
            holes.push((at, fin - at));
        }
        (data, holes)
    }
}

/// A conversation being built.
#[derive(Debug)]
struct Builder {
    client: SocketAddr,
    server: SocketAddr,
    dirs: [Direction; 2],
    problems: Vec<String>,
    first_frame: usize,
    /// Problems of each kind already written, to keep the list readable.
    conflict_notes: usize,
}

const MAX_NOTES_PER_KIND: usize = 10;

impl Builder {
    fn new(index: usize, src: SocketAddr, dst: SocketAddr, seg: &TcpSegment) -> Builder {
        let syn = seg.flags.contains(TcpFlags::SYN);
        let ack = seg.flags.contains(TcpFlags::ACK);
        let mut problems = Vec::new();
        let (client, server) = if syn && !ack {
            (src, dst)
        } else if syn {
            problems.push("client's SYN not captured (conversation starts at the SYN-ACK)".into());
            (dst, src)
        } else {
            let (client, server) = if dst.port() < src.port() {
                (src, dst)
            } else if src.port() < dst.port() {
                (dst, src)
            } else {
                (src, dst)
            };
            problems.push(format!(
                "no SYN: capture started mid-connection; client guessed as {client} (the side sending to the lower port, or the first sender on equal ports)"
            ));
            (client, server)
        };
        Builder {
            client,
            server,
            dirs: [Direction::default(), Direction::default()],
            problems,
            first_frame: index,
            conflict_notes: 0,
        }
    }

    fn closed(&self) -> bool {
        self.dirs.iter().any(|d| d.rst) || self.dirs.iter().all(|d| d.fin.is_some())
    }

    fn handle(&mut self, side: Side, seg: &TcpSegment) {
        let d = &mut self.dirs[side as usize];
        let syn = seg.flags.contains(TcpFlags::SYN);
        if syn {
            match d.isn {
                None if d.base.is_none() => {
                    d.isn = Some(seg.seq);
                    d.base = Some(seg.seq.wrapping_add(1));
                }
                None => {
                    d.isn = Some(seg.seq);
                    self.problems.push(format!(
                        "{}: SYN seen after data (capture out of order); offsets stay relative to the first segment",
                        side.arrow()
                    ));
                }
                Some(isn) if isn != seg.seq => self.problems.push(format!(
                    "{}: second SYN with a different ISN ({} after {isn})",
                    side.arrow(),
                    seg.seq
                )),
                Some(_) => {}
            }
        }
        let d = &mut self.dirs[side as usize];
        let data_seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        if d.base.is_none() {
            d.base = Some(data_seq);
        }
        let offset = match d.offset_of(data_seq) {
            Ok(o) => o,
            Err(before) => {
                // Bytes from before the first captured byte: keep the part from offset 0.
                let skip = usize::try_from(before).unwrap_or(usize::MAX);
                if skip < seg.payload.len() {
                    self.problems.push(format!(
                        "{}: {} bytes before the first captured stream byte dropped",
                        side.arrow(),
                        skip
                    ));
                    let conflicts = self.dirs[side as usize].insert(0, &seg.payload[skip..]);
                    self.note_conflicts(side, &conflicts);
                }
                return;
            }
        };
        let conflicts = self.dirs[side as usize].insert(offset, &seg.payload);
        self.note_conflicts(side, &conflicts);
        let d = &mut self.dirs[side as usize];
        if seg.flags.contains(TcpFlags::FIN) {
            let fin = offset + seg.payload.len() as u64;
            match d.fin {
                Some(previous) if previous != fin => self.problems.push(format!(
                    "{}: FIN at stream offset {fin} after a FIN at {previous}",
                    side.arrow()
                )),
                Some(_) => {}
                None => d.fin = Some(fin),
            }
        }
        if seg.flags.contains(TcpFlags::RST) && !d.rst {
            d.rst = true;
            self.problems
                .push(format!("RST from {} at offset {offset}", side.name()));
        }
    }

    fn note_conflicts(&mut self, side: Side, conflicts: &[(u64, u64)]) {
        for (from, to) in conflicts {
            self.conflict_notes += 1;
            if self.conflict_notes <= MAX_NOTES_PER_KIND {
                self.problems.push(format!(
                    "{}: retransmission carries different bytes at stream offset {from}..{to} (first copy kept)",
                    side.arrow()
                ));
            } else if self.conflict_notes == MAX_NOTES_PER_KIND + 1 {
                self.problems
                    .push("more conflicting retransmissions not listed".into());
            }
        }
    }

    fn finish(mut self) -> TcpConversation {
        let mut out = [Vec::new(), Vec::new()];
        let mut holes_any = false;
        for side in [Side::Client, Side::Server] {
            let d = &self.dirs[side as usize];
            let (data, holes) = d.assemble();
            for (at, size) in &holes {
                holes_any = true;
                self.problems.push(format!(
                    "{}: {size} bytes missing at stream offset {at} (capture dropped a segment)",
                    side.arrow()
                ));
            }
            if let Some(fin) = d.fin {
                let end = d
                    .chunks
                    .last_key_value()
                    .map_or(0, |(s, c)| s + c.len() as u64);
                if end > fin {
                    self.problems.push(format!(
                        "{}: {} bytes after the FIN at stream offset {fin}",
                        side.arrow(),
                        end - fin
                    ));
                }
            }
            out[side as usize] = data;
        }
        let syns = self.dirs.iter().all(|d| d.isn.is_some());
        let [client_data, server_data] = out;
        TcpConversation {
            client: self.client,
            server: self.server,
            client_data,
            server_data,
            complete: syns && self.closed() && !holes_any,
            problems: self.problems,
            first_frame: self.first_frame,
        }
    }
}

fn endpoints(frame: &Frame) -> Option<(SocketAddr, SocketAddr, &TcpSegment)> {
    let seg = frame.as_tcp()?;
    let (src, dst): (IpAddr, IpAddr) = match (frame.as_ipv4(), frame.as_ipv6()) {
        (Some(p), _) => (p.src.into(), p.dst.into()),
        (_, Some(p)) => (p.src.into(), p.dst.into()),
        _ => return None,
    };
    Some((
        SocketAddr::new(src, seg.src_port),
        SocketAddr::new(dst, seg.dst_port),
        seg,
    ))
}

/// Reassembles every TCP conversation in the frames (Ethernet, any VLAN tags, IPv4 or
/// IPv6), in order of their first segment. See the module doc for the rules.
pub fn conversations_from_frames(frames: &[(u64, Vec<u8>)]) -> Vec<TcpConversation> {
    let mut done: Vec<TcpConversation> = Vec::new();
    let mut open: HashMap<(SocketAddr, SocketAddr), Builder> = HashMap::new();
    for (index, (_, bytes)) in frames.iter().enumerate() {
        let Ok(frame) = Frame::parse(bytes) else {
            continue;
        };
        let Some((src, dst, seg)) = endpoints(&frame) else {
            continue;
        };
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let new_syn = seg.flags.contains(TcpFlags::SYN) && !seg.flags.contains(TcpFlags::ACK);
        if new_syn && let Some(b) = open.get(&key) {
            let side = if src == b.client {
                Side::Client
            } else {
                Side::Server
            };
            let retransmitted =
                side == Side::Client && b.dirs[Side::Client as usize].isn == Some(seg.seq);
            if !retransmitted && let Some(b) = open.remove(&key) {
                let mut finished = b.finish();
                if !finished.complete && !finished.problems.iter().any(|p| p.contains("RST")) {
                    finished.problems.push(format!(
                        "superseded by a new SYN on the same 4-tuple at frame {index}"
                    ));
                }
                done.push(finished);
            }
        }
        let b = open
            .entry(key)
            .or_insert_with(|| Builder::new(index, src, dst, seg));
        let side = if src == b.client {
            Side::Client
        } else {
            Side::Server
        };
        b.handle(side, seg);
    }
    done.extend(open.into_values().map(Builder::finish));
    done.sort_by_key(|c| c.first_frame);
    done
}

impl fmt::Display for TcpConversation {
    /// `10.0.0.1:40000 > 10.0.0.2:443: 517 / 1380 bytes, complete`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {}: {} / {} bytes, {}",
            self.client,
            self.server,
            self.client_data.len(),
            self.server_data.len(),
            if self.complete {
                "complete"
            } else {
                "incomplete"
            }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_sequence_numbers_across_2_32() {
        let mut d = Direction {
            base: Some(u32::MAX - 10),
            ..Direction::default()
        };
        assert_eq!(d.offset_of(u32::MAX - 10), Ok(0));
        assert_eq!(d.offset_of(5), Ok(16));
        d.high = (1 << 32) - 100;
        assert_eq!(
            d.offset_of((u32::MAX - 10).wrapping_add(50)),
            Ok(1 << 32 | 50)
        );
        // A retransmission from before the base.
        let d = Direction {
            base: Some(1000),
            ..Direction::default()
        };
        assert_eq!(d.offset_of(990), Err(10));
    }

    #[test]
    fn insert_keeps_first_copy_and_reports_differences() {
        let mut d = Direction::default();
        assert!(d.insert(5, b"fghij").is_empty());
        assert!(d.insert(0, b"abcdefg").is_empty());
        assert_eq!(d.insert(3, b"dXfgZi"), vec![(4, 5), (7, 8)]);
        assert!(d.insert(8, b"ijkl").is_empty());
        let (data, holes) = d.assemble();
        assert_eq!(data, b"abcdefghijkl");
        assert!(holes.is_empty());
        d.insert(20, b"zz");
        d.fin = Some(30);
        let (data, holes) = d.assemble();
        assert_eq!(data.len(), 12);
        assert_eq!(holes, vec![(12, 8), (22, 8)]);
    }
}
