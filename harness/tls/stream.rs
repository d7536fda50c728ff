//! TCP conversations out of captured frames: the two byte streams of each connection,
//! reassembled the way the receiver would have seen them (RFC 9293 §3.4, §3.10.7), with
//! every gap, conflict and oddity of the capture written down rather than papered over.
//!
//! # Reading captures
//!
//! [`read_pcap`] reads pcap (either byte order, micro- or nanosecond timestamps) and pcapng
//! (detected by magic) and returns Ethernet frames. Other link types are converted to
//! Ethernet by synthesising a 14-byte header, so `tcpdump -i any` captures work: Linux
//! cooked SLL (113) and SLL2 (276) keep their protocol field as ether type and the link-layer
//! address as source MAC; raw IP (101, 228, 229) and BSD loopback (0, 108) take the ether
//! type from the IP version. It is strict: a truncated file or a packet cut by the snap
//! length is an error. [`read_capture`] is the lenient variant that keeps what it could read
//! and lists the problems. Neither panics on any input.
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
use std::path::Path;

use pcap_file::DataLink;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};

use crate::wire::{Frame, TcpFlags, TcpSegment, ether_type};

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

/// A capture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be read.
    #[error("capture {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The first four bytes are neither pcap nor pcapng magic.
    #[error("not a pcap or pcapng file (magic {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// The file headers or a block could not be read.
    #[error("capture format: {0}")]
    Format(String),
    /// The file ends inside a packet or block.
    #[error("capture truncated after {packets} packets: {detail}")]
    Truncated {
        /// Packets read whole before the cut.
        packets: usize,
        /// Where the file ends.
        detail: String,
    },
    /// A packet was captured shorter than it was on the wire (snap length).
    #[error("packet {index}: captured {captured} of {original} bytes (snap length)")]
    PacketCut {
        /// 0-based packet index.
        index: usize,
        /// Bytes in the file.
        captured: usize,
        /// Bytes on the wire.
        original: usize,
    },
    /// A link type this reader cannot turn into Ethernet.
    #[error("unsupported link type {0}")]
    LinkType(String),
}

/// What [`read_capture`] could read, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    /// Frames as Ethernet, with timestamps in nanoseconds.
    pub frames: Vec<(u64, Vec<u8>)>,
    /// Cut packets, a truncated tail, skipped packets of unsupported link types.
    pub problems: Vec<String>,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads a pcap or pcapng file as Ethernet frames with nanosecond timestamps, strictly:
/// a truncated file, a snaplen-cut packet or an unsupported link type is an error.
pub fn read_pcap(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, CaptureError> {
    let bytes = read_file(path)?;
    let mut problems = Vec::new();
    let frames = parse_capture(&bytes, &mut |p| {
        problems.push(p);
        false
    })?;
    match problems.into_iter().next() {
        Some(p) => Err(p),
        None => Ok(frames),
    }
}

/// Reads a pcap or pcapng file leniently: what can be read is returned, cut packets are
/// kept as captured, and each problem is listed. Errors only when the file cannot be
/// opened or its headers are unreadable.
pub fn read_capture(path: &Path) -> Result<Capture, CaptureError> {
    let bytes = read_file(path)?;
    parse_capture_bytes(&bytes)
}

/// [`read_capture`] on bytes in memory.
pub fn parse_capture_bytes(bytes: &[u8]) -> Result<Capture, CaptureError> {
    let mut problems = Vec::new();
    let frames = parse_capture(bytes, &mut |p| {
        problems.push(p.to_string());
        true
    })?;
    Ok(Capture { frames, problems })
}

/// Writes Ethernet frames as a pcap file (LINKTYPE_ETHERNET, nanosecond timestamps).
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) -> Result<(), CaptureError> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let io = |source| CaptureError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let format = |e: pcap_file::PcapError| CaptureError::Format(e.to_string());
    let mut w = PcapWriter::with_header(std::io::BufWriter::new(file), header).map_err(format)?;
    for (ts, data) in frames {
        let len = u32::try_from(data.len())
            .map_err(|_| CaptureError::Format("frame over 4 GiB".into()))?;
        let ts = std::time::Duration::from_nanos(*ts);
        w.write_packet(&PcapPacket::new(ts, len, data))
            .map_err(format)?;
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, CaptureError> {
    std::fs::read(path).map_err(|source| CaptureError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Parses a capture; `problem` is told each recoverable problem and returns whether to go
/// on (true) or stop with what was read (false).
fn parse_capture(
    bytes: &[u8],
    problem: &mut dyn FnMut(CaptureError) -> bool,
) -> Result<Vec<(u64, Vec<u8>)>, CaptureError> {
    let magic = bytes.get(..4).unwrap_or(bytes);
    if magic == PCAPNG_MAGIC {
        parse_pcapng(bytes, problem)
    } else if magic.len() == 4
        && matches!(
            u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]),
            0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1
        )
    {
        parse_pcap(bytes, problem)
    } else {
        Err(CaptureError::UnknownFormat(magic.to_vec()))
    }
}

fn parse_pcap(
    bytes: &[u8],
    problem: &mut dyn FnMut(CaptureError) -> bool,
) -> Result<Vec<(u64, Vec<u8>)>, CaptureError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| match e {
        pcap_file::PcapError::IncompleteBuffer => CaptureError::Truncated {
            packets: 0,
            detail: "inside the file header".into(),
        },
        e => CaptureError::Format(e.to_string()),
    })?;
    let header = parser.header();
    let nanos = header.ts_resolution == pcap_file::TsResolution::NanoSecond;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let index = out.len();
        // Raw packets: pcap-file's checked packets reject orig_len > snaplen, which is
        // exactly what a snaplen-cut packet has.
        let (next, raw) = match parser.next_raw_packet(rest) {
            Ok(r) => r,
            Err(e) => {
                problem(truncated(e, index, rest.len(), "packet record"));
                break;
            }
        };
        rest = next;
        let frac = u64::from(raw.ts_frac);
        let ts = u64::from(raw.ts_sec) * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let (captured, original) = (raw.data.len(), raw.orig_len as usize);
        if original > captured
            && !problem(CaptureError::PacketCut {
                index,
                captured,
                original,
            })
        {
            break;
        }
        match to_ethernet(header.datalink, &raw.data) {
            Ok(frame) => out.push((ts, frame)),
            Err(e) => {
                if !problem(e) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn parse_pcapng(
    bytes: &[u8],
    problem: &mut dyn FnMut(CaptureError) -> bool,
) -> Result<Vec<(u64, Vec<u8>)>, CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| match e {
        pcap_file::PcapError::IncompleteBuffer => CaptureError::Truncated {
            packets: 0,
            detail: "inside the section header".into(),
        },
        e => CaptureError::Format(e.to_string()),
    })?;
    let mut out = Vec::new();
    let mut links: Vec<DataLink> = Vec::new();
    let mut last_ts = 0;
    let mut index = 0;
    while !rest.is_empty() {
        let (next, block) = match parser.next_block(rest) {
            Ok(b) => b,
            Err(e) => {
                problem(truncated(e, index, rest.len(), "block"));
                break;
            }
        };
        rest = next;
        let (ts, link, data, original) = match block {
            Block::SectionHeader(_) => {
                links.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                links.push(idb.linktype);
                continue;
            }
            Block::EnhancedPacket(epb) => {
                let link = usize::try_from(epb.interface_id)
                    .ok()
                    .and_then(|i| links.get(i).copied());
                let ts = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                (ts, link, epb.data, epb.original_len as usize)
            }
            Block::SimplePacket(spb) => (
                last_ts,
                links.first().copied(),
                spb.data,
                spb.original_len as usize,
            ),
            _ => continue,
        };
        last_ts = ts;
        let this = index;
        index += 1;
        if original > data.len()
            && !problem(CaptureError::PacketCut {
                index: this,
                captured: data.len(),
                original,
            })
        {
            break;
        }
        let Some(link) = link else {
            if problem(CaptureError::Format(format!(
                "packet {this}: no interface description for it"
            ))) {
                continue;
            }
            break;
        };
        match to_ethernet(link, &data) {
            Ok(frame) => out.push((ts, frame)),
            Err(e) => {
                if !problem(e) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The frame as Ethernet: unchanged for Ethernet, a synthesised 14-byte header otherwise.
fn to_ethernet(link: DataLink, data: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let synthesise = |src: &[u8], ether_type: u16, payload: &[u8]| {
        let mut out = Vec::with_capacity(14 + payload.len());
        out.extend_from_slice(&[0; 6]);
        let mut mac = [0u8; 6];
        let n = src.len().min(6);
        mac[..n].copy_from_slice(&src[..n]);
        out.extend_from_slice(&mac);
        out.extend_from_slice(&ether_type.to_be_bytes());
        out.extend_from_slice(payload);
        out
    };
    let by_version = |payload: &[u8]| match payload.first().map(|b| b >> 4) {
        Some(6) => ether_type::IPV6,
        _ => ether_type::IPV4,
    };
    let short = |what: &str, need: usize| {
        CaptureError::Format(format!(
            "{what} packet of {} bytes, header needs {need}",
            data.len()
        ))
    };
    match link {
        DataLink::ETHERNET => Ok(data.to_vec()),
        DataLink::LINUX_SLL => {
            // Packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
            let header = data.get(..16).ok_or_else(|| short("SLL", 16))?;
            let addr_len = usize::from(u16::from_be_bytes([header[4], header[5]])).min(8);
            let proto = u16::from_be_bytes([header[14], header[15]]);
            Ok(synthesise(&header[6..6 + addr_len], proto, &data[16..]))
        }
        DataLink::LINUX_SLL2 => {
            // Protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8).
            let header = data.get(..20).ok_or_else(|| short("SLL2", 20))?;
            let proto = u16::from_be_bytes([header[0], header[1]]);
            let addr_len = usize::from(header[11]).min(8);
            Ok(synthesise(&header[12..12 + addr_len], proto, &data[20..]))
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => {
            Ok(synthesise(&[], by_version(data), data))
        }
        DataLink::NULL | DataLink::LOOP => {
            // A 4-byte address family in host (NULL) or network (LOOP) order.
            let payload = data.get(4..).ok_or_else(|| short("loopback", 4))?;
            Ok(synthesise(&[], by_version(payload), payload))
        }
        other => Err(CaptureError::LinkType(format!(
            "{other:?} ({})",
            u32::from(other)
        ))),
    }
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

/// The capture ends (or breaks) after `packets` packets, with `left` bytes unread.
fn truncated(e: pcap_file::PcapError, packets: usize, left: usize, unit: &str) -> CaptureError {
    let detail = match e {
        pcap_file::PcapError::IncompleteBuffer => format!("{left} bytes of a partial {unit}"),
        e => e.to_string(),
    };
    CaptureError::Truncated { packets, detail }
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

    #[test]
    fn link_types_become_ethernet() {
        let ip = [0x45, 0, 0, 20];
        let raw = to_ethernet(DataLink::RAW, &ip).unwrap();
        assert_eq!(&raw[12..14], &[8, 0]);
        assert_eq!(&raw[14..], &ip);
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 4, 6, 2, 0, 0, 0, 0, 9, 0, 0,
        ];
        sll2.push(0x60);
        let e = to_ethernet(DataLink::LINUX_SLL2, &sll2).unwrap();
        assert_eq!(&e[6..12], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(&e[12..], &[0x86, 0xdd, 0x60]);
        assert!(to_ethernet(DataLink::LINUX_SLL, &[0; 15]).is_err());
        assert!(matches!(
            to_ethernet(DataLink::USB_LINUX, &[]),
            Err(CaptureError::LinkType(_))
        ));
    }

    #[test]
    fn garbage_capture_is_an_error() {
        assert!(matches!(
            parse_capture_bytes(b"hello world"),
            Err(CaptureError::UnknownFormat(_))
        ));
        assert!(parse_capture_bytes(&[]).is_err());
        assert!(matches!(
            parse_capture_bytes(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
            Err(CaptureError::Truncated { packets: 0, .. })
        ));
    }
}
