//! Captures in and out: the one place netconform reads and writes pcap and pcapng.
//!
//! `netconform trace show` ([`crate::trace`]), `netconform tls verify` ([`crate::tls`]) and
//! the report writer ([`crate::report`], through [`Trace::write_pcap`](crate::trace::Trace))
//! all go through this module. It is pure: bytes in, packets out ([`parse`]), frames in,
//! bytes out ([`write()`]), plus two thin file helpers ([`read`], [`write_file`]). It never
//! panics, whatever the bytes.
//!
//! # Reading
//!
//! - **pcap** in either byte order, with microsecond or nanosecond timestamps;
//! - **pcapng** with any number of sections and interfaces, each interface with its own
//!   link type and timestamp resolution (`if_tsresol`, decimal or binary; microseconds when
//!   absent) and offset (`if_tsoffset`); enhanced, simple and obsolete packet blocks.
//!
//! Whatever the link type, a packet comes out as an **Ethernet frame** with a timestamp in
//! nanoseconds ([`Packet`]):
//!
//! | link type | number | frame |
//! |---|---|---|
//! | Ethernet | 1 | as captured |
//! | Linux cooked SLL (`tcpdump -i any`) | 113 | synthetic 14-byte header: protocol field as ether type, link-layer address as source MAC |
//! | Linux cooked SLL2 | 276 | the same |
//! | raw IP | 101, 228 (IPv4), 229 (IPv6), 12 and 14 (old BSD numbers) | synthetic header, ether type from the IP version |
//! | BSD loopback / null | 0 (host order), 108 (network order) | 4-byte address family dropped, synthetic header, ether type from the IP version |
//!
//! The synthetic header has an all-zero destination MAC (and an all-zero source when the
//! link has no address). A packet's [`PacketDirection`] comes from the pcapng EPB flags, or
//! failing those from the Linux cooked packet type (`PACKET_OUTGOING` is outbound); pcap has
//! none.
//!
//! Two modes ([`ReadMode`]): **strict** stops at the first problem and returns it as the
//! error; **lenient** keeps what it can read and lists each problem in
//! [`Capture::problems`] (a packet cut by the snap length is kept as captured, a packet of
//! an unsupported link type is skipped, a torn last record ends the capture). Both fail at
//! once on what is not a capture at all ([`CaptureError::UnknownFormat`]) or a file header
//! cut short.
//!
//! # Writing
//!
//! [`write()`] writes Ethernet frames as a pcap: LINKTYPE_ETHERNET, nanosecond timestamps
//! (big-endian, magic `a1 b2 3c 4d`), which Wireshark, tshark and tcpdump open as they are.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::wire::ether_type;

/// Which way a packet went, as the capture says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PacketDirection {
    /// The capture does not say (pcap, or pcapng without direction flags).
    #[default]
    Unknown,
    /// Received by the capturing host.
    Inbound,
    /// Sent by the capturing host.
    Outbound,
}

/// One captured packet, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Timestamp in nanoseconds since the Unix epoch (or since whatever origin the capture
    /// used: netconform's own captures start at 0).
    pub ts_ns: u64,
    /// The packet as an Ethernet frame (see the module doc for the synthetic header).
    pub frame: Vec<u8>,
    /// Which way it went, when the capture says.
    pub direction: PacketDirection,
}

/// What [`parse`] read, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    /// The packets, in capture order.
    pub packets: Vec<Packet>,
    /// In [`ReadMode::Lenient`]: cut packets, a truncated tail, skipped packets of
    /// unsupported link types, unreadable blocks, one sentence each. Always empty in
    /// [`ReadMode::Strict`].
    pub problems: Vec<String>,
}

impl Capture {
    /// The frames with their timestamps in nanoseconds (copied).
    pub fn frames(&self) -> Vec<(u64, Vec<u8>)> {
        self.packets
            .iter()
            .map(|p| (p.ts_ns, p.frame.clone()))
            .collect()
    }

    /// The frames with their timestamps in nanoseconds.
    pub fn into_frames(self) -> Vec<(u64, Vec<u8>)> {
        self.packets
            .into_iter()
            .map(|p| (p.ts_ns, p.frame))
            .collect()
    }
}

/// How [`parse`] treats a damaged capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// The first problem is the error: a truncated file, a packet cut by the snap length,
    /// an unsupported link type, an unreadable block.
    Strict,
    /// Keep what can be read and list the problems in [`Capture::problems`].
    Lenient,
}

/// A capture could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
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
    /// The file header or a block could not be read.
    #[error("capture format: {0}")]
    Format(String),
    /// The file ends inside its header, a packet or a block.
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
    /// A link type this module cannot turn into Ethernet.
    #[error(
        "unsupported link type {name} ({number}): netconform reads Ethernet (1), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 228, 229, 12, 14) and loopback (0, 108)"
    )]
    LinkType {
        /// The LINKTYPE number.
        number: u32,
        /// Its name (`USB_LINUX`), or `unknown`.
        name: String,
    },
    /// Writing failed.
    #[error("cannot write the capture: {0}")]
    Write(String),
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAP_MAGICS: [u32; 4] = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1];
/// No capture tool writes a packet record larger than this (libpcap's largest snap length
/// is 256 KiB; D-Bus and USB captures go up to 128 MiB); a record claiming more is corrupt.
const MAX_RECORD: usize = 128 << 20;
const SECTION_HEADER_BLOCK: u32 = 0x0a0d0d0a;
const INTERFACE_DESCRIPTION_BLOCK: u32 = 1;

/// Reads a pcap or pcapng file (see [`parse`]).
pub fn read(path: &Path, mode: ReadMode) -> Result<Capture, CaptureError> {
    let bytes = std::fs::read(path).map_err(|source| CaptureError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes, mode)
}

/// Reads a pcap or pcapng capture (detected by its magic number) from memory.
///
/// In [`ReadMode::Strict`] the first problem is the error; in [`ReadMode::Lenient`] only a
/// capture that is none (wrong magic) or whose file header is unreadable is an error, and
/// every other problem is listed in [`Capture::problems`].
pub fn parse(bytes: &[u8], mode: ReadMode) -> Result<Capture, CaptureError> {
    let magic = bytes.get(..4).unwrap_or(bytes);
    let mut reader = Reader {
        mode,
        capture: Capture::default(),
        error: None,
    };
    if magic == PCAPNG_MAGIC {
        parse_pcapng(bytes, &mut reader)?;
    } else if let Ok(m) = <[u8; 4]>::try_from(magic)
        && PCAP_MAGICS.contains(&u32::from_le_bytes(m))
    {
        parse_pcap(bytes, &mut reader)?;
    } else {
        return Err(CaptureError::UnknownFormat(magic.to_vec()));
    }
    match reader.error {
        Some(e) => Err(e),
        None => Ok(reader.capture),
    }
}

/// Writes Ethernet frames (timestamps in nanoseconds) as a pcap: LINKTYPE_ETHERNET,
/// nanosecond resolution.
pub fn write<'a>(
    writer: impl Write,
    frames: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> Result<(), CaptureError> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(writer, header)
        .map_err(|e| CaptureError::Write(format!("file header: {e}")))?;
    for (index, (ts, data)) in frames.into_iter().enumerate() {
        let len = u32::try_from(data.len())
            .map_err(|_| CaptureError::Write(format!("frame {index}: over 4 GiB")))?;
        w.write_packet(&PcapPacket::new(Duration::from_nanos(ts), len, data))
            .map_err(|e| CaptureError::Write(format!("frame {index}: {e}")))?;
    }
    w.into_writer()
        .flush()
        .map_err(|e| CaptureError::Write(e.to_string()))
}

/// [`write()`] into a file at `path`.
pub fn write_file(path: &Path, frames: &[(u64, Vec<u8>)]) -> Result<(), CaptureError> {
    let file = std::fs::File::create(path)
        .map_err(|e| CaptureError::Write(format!("{}: {e}", path.display())))?;
    write(
        std::io::BufWriter::new(file),
        frames.iter().map(|(ts, f)| (*ts, f.as_slice())),
    )
    .map_err(|e| match e {
        CaptureError::Write(m) => CaptureError::Write(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// The packets read so far and what to do with a problem.
struct Reader {
    mode: ReadMode,
    capture: Capture,
    /// The error of a strict read.
    error: Option<CaptureError>,
}

impl Reader {
    /// Notes a problem; returns whether to go on reading.
    fn problem(&mut self, e: CaptureError) -> bool {
        match self.mode {
            ReadMode::Strict => {
                self.error.get_or_insert(e);
                false
            }
            ReadMode::Lenient => {
                self.capture.problems.push(e.to_string());
                true
            }
        }
    }

    /// Converts and keeps one packet; returns whether to go on reading.
    fn packet(
        &mut self,
        index: usize,
        link: DataLink,
        ts_ns: u64,
        data: &[u8],
        original: usize,
        flags: PacketDirection,
    ) -> bool {
        if original > data.len()
            && !self.problem(CaptureError::PacketCut {
                index,
                captured: data.len(),
                original,
            })
        {
            return false;
        }
        match to_ethernet(link, data) {
            Ok((frame, link_direction)) => {
                let direction = match flags {
                    PacketDirection::Unknown => link_direction,
                    known => known,
                };
                self.capture.packets.push(Packet {
                    ts_ns,
                    frame,
                    direction,
                });
                true
            }
            Err(e) => self.problem(e),
        }
    }
}

fn parse_pcap(bytes: &[u8], reader: &mut Reader) -> Result<(), CaptureError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| match e {
        PcapError::IncompleteBuffer => CaptureError::Truncated {
            packets: 0,
            detail: format!(
                "inside the file header ({} of 24 bytes)",
                bytes.len().min(24)
            ),
        },
        e => CaptureError::Format(format!("file header: {e}")),
    })?;
    let header = parser.header();
    // One link type for the whole file: when it is not readable, no packet is.
    if !supported(header.datalink) {
        return Err(link_type_error(header.datalink));
    }
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let mut packets = 0;
    while !rest.is_empty() {
        // Raw packets: pcap-file's checked packets reject orig_len > snaplen, which is
        // exactly what a snaplen-cut packet has.
        let (next, raw) = match parser.next_raw_packet(rest) {
            Ok(r) => r,
            Err(_) => {
                reader.problem(pcap_record_problem(rest, header.endianness, packets));
                break;
            }
        };
        rest = next;
        let index = packets;
        packets += 1;
        let frac = u64::from(raw.ts_frac);
        let ts_ns = u64::from(raw.ts_sec) * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let original = usize::try_from(raw.orig_len).unwrap_or(usize::MAX);
        if !reader.packet(
            index,
            header.datalink,
            ts_ns,
            &raw.data,
            original,
            PacketDirection::Unknown,
        ) {
            break;
        }
    }
    Ok(())
}

/// Why the pcap record at the start of `rest` could not be read: the file ends inside it,
/// or its header claims an impossible length.
fn pcap_record_problem(rest: &[u8], endianness: Endianness, packets: usize) -> CaptureError {
    let Some(len) = rest.get(8..12) else {
        return CaptureError::Truncated {
            packets,
            detail: format!(
                "{} bytes of a partial packet record header (16 bytes)",
                rest.len()
            ),
        };
    };
    let len = [len[0], len[1], len[2], len[3]];
    let incl_len = usize::try_from(match endianness {
        Endianness::Big => u32::from_be_bytes(len),
        Endianness::Little => u32::from_le_bytes(len),
    })
    .unwrap_or(usize::MAX);
    if incl_len > MAX_RECORD {
        return CaptureError::Format(format!(
            "packet {packets}: record header claims {incl_len} bytes, more than any capture holds (corrupt file)"
        ));
    }
    CaptureError::Truncated {
        packets,
        detail: format!(
            "{} bytes of a partial packet record of {} bytes",
            rest.len(),
            incl_len + 16
        ),
    }
}

/// One pcapng interface: what its packets need.
struct Interface {
    /// `None` when its description block could not be read (lenient mode).
    link: Option<DataLink>,
    /// `if_tsresol`.
    tsresol: u8,
    /// `if_tsoffset`, seconds.
    tsoffset: u64,
    /// Its link type is unsupported and that was said.
    skipped: bool,
}

impl Interface {
    fn new(idb: &InterfaceDescriptionBlock<'_>) -> Interface {
        let mut interface = Interface {
            link: Some(idb.linktype),
            tsresol: 6,
            tsoffset: 0,
            skipped: false,
        };
        for o in &idb.options {
            match o {
                InterfaceDescriptionOption::IfTsResol(r) => interface.tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(s) => interface.tsoffset = *s,
                _ => {}
            }
        }
        interface
    }

    /// A raw pcapng timestamp in nanoseconds.
    fn nanos(&self, raw: u64) -> u64 {
        let exp = u32::from(self.tsresol & 0x7f);
        let ns = if self.tsresol & 0x80 == 0 {
            // Units of 10^-exp seconds.
            if exp <= 9 {
                raw.saturating_mul(10u64.pow(9 - exp))
            } else {
                10u64.checked_pow(exp - 9).map_or(0, |d| raw / d)
            }
        } else {
            // Units of 2^-exp seconds.
            let ns = (u128::from(raw) * 1_000_000_000) >> exp;
            u64::try_from(ns).unwrap_or(u64::MAX)
        };
        ns.saturating_add(self.tsoffset.saturating_mul(1_000_000_000))
    }
}

fn parse_pcapng(bytes: &[u8], reader: &mut Reader) -> Result<(), CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| match e {
        PcapError::IncompleteBuffer => CaptureError::Truncated {
            packets: 0,
            detail: "inside the section header block".into(),
        },
        e => CaptureError::Format(format!("section header block: {e}")),
    })?;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut last_ts = 0;
    let mut index = 0;
    while !rest.is_empty() {
        let (next, block) = match parser.next_block(rest) {
            Ok(b) => b,
            Err(e) => {
                let endianness = parser.section().endianness;
                match unreadable_block(rest, endianness, index, e) {
                    // A whole block that does not parse: skip it and go on (lenient).
                    (problem, Some((len, kind))) => {
                        if !reader.problem(problem) || kind == SECTION_HEADER_BLOCK {
                            break;
                        }
                        if kind == INTERFACE_DESCRIPTION_BLOCK {
                            interfaces.push(Interface {
                                link: None,
                                tsresol: 6,
                                tsoffset: 0,
                                skipped: false,
                            });
                        }
                        rest = &rest[len..];
                        continue;
                    }
                    (problem, None) => {
                        reader.problem(problem);
                        break;
                    }
                }
            }
        };
        rest = next;
        let (interface_id, raw_ts, data, original, flags) = match block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                interfaces.push(Interface::new(&idb));
                continue;
            }
            Block::EnhancedPacket(epb) => {
                let flags = epb
                    .options
                    .iter()
                    .find_map(|o| match o {
                        EnhancedPacketOption::Flags(f) => Some(match f & 0b11 {
                            0b01 => PacketDirection::Inbound,
                            0b10 => PacketDirection::Outbound,
                            _ => PacketDirection::Unknown,
                        }),
                        _ => None,
                    })
                    .unwrap_or_default();
                // pcap-file hands the raw 64-bit timestamp over as nanoseconds, whatever
                // the interface's resolution: take the raw value back.
                let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                (
                    u64::from(epb.interface_id),
                    Some(raw),
                    epb.data,
                    epb.original_len,
                    flags,
                )
            }
            Block::Packet(pb) => (
                u64::from(pb.interface_id),
                Some(pb.timestamp),
                pb.data,
                pb.original_len,
                PacketDirection::Unknown,
            ),
            Block::SimplePacket(spb) => {
                // The block's data is padded to 32 bits: the packet is the first
                // min(original length, snap length) bytes.
                let keep = usize::try_from(spb.original_len)
                    .unwrap_or(usize::MAX)
                    .min(spb.data.len());
                let data = match spb.data {
                    Cow::Borrowed(d) => Cow::Borrowed(&d[..keep]),
                    Cow::Owned(d) => Cow::Owned(d[..keep].to_vec()),
                };
                (0, None, data, spb.original_len, PacketDirection::Unknown)
            }
            _ => continue,
        };
        let this = index;
        index += 1;
        let Some(interface) = usize::try_from(interface_id)
            .ok()
            .and_then(|i| interfaces.get_mut(i))
        else {
            if reader.problem(CaptureError::Format(format!(
                "packet {this}: interface {interface_id} has no interface description block"
            ))) {
                continue;
            }
            break;
        };
        let Some(link) = interface.link else {
            if reader.problem(CaptureError::Format(format!(
                "packet {this}: the description of its interface {interface_id} could not be read"
            ))) {
                continue;
            }
            break;
        };
        if !supported(link) {
            // Said once per interface; its packets are skipped (lenient).
            let skipped = std::mem::replace(&mut interface.skipped, true);
            if !skipped && !reader.problem(link_type_error(link)) {
                break;
            }
            continue;
        }
        let ts_ns = raw_ts.map_or(last_ts, |raw| interface.nanos(raw));
        last_ts = ts_ns;
        let original = usize::try_from(original).unwrap_or(usize::MAX);
        if !reader.packet(this, link, ts_ns, &data, original, flags) {
            break;
        }
    }
    Ok(())
}

/// Why the pcapng block at the start of `rest` could not be read, and, when the block is
/// whole (only its content is wrong), its length and type so that a lenient read can skip
/// it.
fn unreadable_block(
    rest: &[u8],
    endianness: Endianness,
    packets: usize,
    e: PcapError,
) -> (CaptureError, Option<(usize, u32)>) {
    let word = |at: usize, big: bool| {
        rest.get(at..at + 4).map(|b| {
            let b = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
    };
    let big = endianness == Endianness::Big;
    let kind = word(0, big);
    // A section header announces its own byte order (its magic, after the length).
    let big = if kind == Some(SECTION_HEADER_BLOCK) {
        word(8, true) != Some(0x4d3c_2b1a)
    } else {
        big
    };
    let declared = word(4, big).and_then(|l| usize::try_from(l).ok());
    let (Some(kind), Some(declared)) = (kind, declared) else {
        return (
            CaptureError::Truncated {
                packets,
                detail: format!("{} bytes of a partial block header", rest.len()),
            },
            None,
        );
    };
    let sane = declared >= 12 && declared % 4 == 0;
    if sane && declared > rest.len() {
        return (
            CaptureError::Truncated {
                packets,
                detail: format!(
                    "{} bytes of a partial {} of {declared} bytes",
                    rest.len(),
                    block_name(kind)
                ),
            },
            None,
        );
    }
    let reason = match e {
        PcapError::IncompleteBuffer => "a field runs past the end of the block".to_string(),
        e => e.to_string(),
    };
    let problem = CaptureError::Format(format!(
        "after {packets} packets: unreadable {} ({declared} bytes): {reason}",
        block_name(kind)
    ));
    (problem, sane.then_some((declared, kind)))
}

fn block_name(kind: u32) -> String {
    match kind {
        SECTION_HEADER_BLOCK => "section header block".into(),
        INTERFACE_DESCRIPTION_BLOCK => "interface description block".into(),
        2 => "packet block".into(),
        3 => "simple packet block".into(),
        4 => "name resolution block".into(),
        5 => "interface statistics block".into(),
        6 => "enhanced packet block".into(),
        other => format!("block of type {other:#010x}"),
    }
}

/// The packet as Ethernet, and the direction its link-layer header tells: unchanged for
/// Ethernet, a synthesised 14-byte header otherwise.
fn to_ethernet(link: DataLink, data: &[u8]) -> Result<(Vec<u8>, PacketDirection), CaptureError> {
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
    // Linux's packet types (linux/if_packet.h): 0-3 to this host, its broadcast,
    // multicast or another host; 4 PACKET_OUTGOING.
    let cooked_direction = |packet_type: u16| match packet_type {
        0..=3 => PacketDirection::Inbound,
        4 => PacketDirection::Outbound,
        _ => PacketDirection::Unknown,
    };
    let short = |what: &str, need: usize| {
        CaptureError::Format(format!(
            "{what} packet of {} bytes, its header needs {need}",
            data.len()
        ))
    };
    match link {
        DataLink::ETHERNET => Ok((data.to_vec(), PacketDirection::Unknown)),
        DataLink::LINUX_SLL => {
            // Packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
            let header = data
                .get(..16)
                .ok_or_else(|| short("Linux cooked SLL", 16))?;
            let packet_type = u16::from_be_bytes([header[0], header[1]]);
            let addr_len = usize::from(u16::from_be_bytes([header[4], header[5]])).min(8);
            let proto = u16::from_be_bytes([header[14], header[15]]);
            Ok((
                synthesise(&header[6..6 + addr_len], proto, &data[16..]),
                cooked_direction(packet_type),
            ))
        }
        DataLink::LINUX_SLL2 => {
            // Protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8).
            let header = data
                .get(..20)
                .ok_or_else(|| short("Linux cooked SLL2", 20))?;
            let proto = u16::from_be_bytes([header[0], header[1]]);
            let addr_len = usize::from(header[11]).min(8);
            Ok((
                synthesise(&header[12..12 + addr_len], proto, &data[20..]),
                cooked_direction(u16::from(header[10])),
            ))
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 | DataLink::Unknown(12 | 14) => Ok((
            synthesise(&[], by_version(data), data),
            PacketDirection::Unknown,
        )),
        DataLink::NULL | DataLink::LOOP => {
            // A 4-byte address family in host (NULL) or network (LOOP) order.
            let payload = data.get(4..).ok_or_else(|| short("loopback", 4))?;
            Ok((
                synthesise(&[], by_version(payload), payload),
                PacketDirection::Unknown,
            ))
        }
        other => Err(link_type_error(other)),
    }
}

/// Whether [`to_ethernet`] converts packets of this link type.
fn supported(link: DataLink) -> bool {
    matches!(
        link,
        DataLink::ETHERNET
            | DataLink::LINUX_SLL
            | DataLink::LINUX_SLL2
            | DataLink::RAW
            | DataLink::IPV4
            | DataLink::IPV6
            | DataLink::Unknown(12 | 14)
            | DataLink::NULL
            | DataLink::LOOP
    )
}

/// The error for a link type that is not [`supported`], naming it.
fn link_type_error(link: DataLink) -> CaptureError {
    CaptureError::LinkType {
        number: u32::from(link),
        name: match link {
            DataLink::Unknown(_) => "unknown".into(),
            known => format!("{known:?}"),
        },
    }
}

#[cfg(test)]
mod tests;
