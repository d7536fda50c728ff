//! TCP segments (RFC 9293) and their options (RFC 7323, RFC 2018).
//!
//! Parsing never panics. A segment whose header does not fit gives a [`ParseError`] with
//! [`Layer::Tcp`]; a bad checksum is not an error but `checksum_valid == Some(false)`;
//! options etherparse cannot read are kept as [`TcpOption::Unknown`] (unknown kind with a
//! sane length) or [`TcpOption::Malformed`] (the unreadable rest), never dropped silently.
//! The NS bit (RFC 3540, historic) is not represented and emitted as zero.

use std::fmt;
use std::str::FromStr;

use etherparse::{TcpHeader, TcpOptionElement, TcpOptionReadError, TcpOptionsIterator};
use serde::{Deserialize, Serialize};

use super::builder::{ChecksumFault, Faults};
use super::error::{ErrorKind, Layer, ParseError};
use super::{Pseudo, transport_checksum};

/// The eight TCP flag bits, in their wire positions (byte 13 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// SYN and ACK.
    pub const SYN_ACK: TcpFlags = TcpFlags(0x12);
    /// PSH and ACK.
    pub const PSH_ACK: TcpFlags = TcpFlags(0x18);
    /// FIN and ACK.
    pub const FIN_ACK: TcpFlags = TcpFlags(0x11);
    /// RST and ACK.
    pub const RST_ACK: TcpFlags = TcpFlags(0x14);

    /// tcpdump's letters, in bit order (`.` is ACK, `W` is CWR).
    const LETTERS: [(TcpFlags, char); 8] = [
        (TcpFlags::FIN, 'F'),
        (TcpFlags::SYN, 'S'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::ACK, '.'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ECE, 'E'),
        (TcpFlags::CWR, 'W'),
    ];

    /// True when every bit of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// Like tcpdump: `S`, `S.`, `.`, `P.`, `F.`, `R`, `R.`; `none` when no bit is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (flag, letter) in TcpFlags::LETTERS {
            if self.contains(flag) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for TcpFlags {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(TcpFlags(0));
        }
        s.chars().try_fold(TcpFlags(0), |acc, c| {
            TcpFlags::LETTERS
                .iter()
                .find(|(_, l)| *l == c)
                .map(|(flag, _)| acc | *flag)
                .ok_or_else(|| format!("unknown TCP flag letter {c:?} in {s:?}"))
        })
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One TCP option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpOption {
    /// Kind 2: maximum segment size.
    Mss(u16),
    /// Kind 3: window scale shift count.
    WindowScale(u8),
    /// Kind 4: SACK permitted.
    SackPermitted,
    /// Kind 5: SACK blocks (left edge, right edge), 1 to 4 of them.
    Sack(Vec<(u32, u32)>),
    /// Kind 8: timestamps.
    Timestamps {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// Kind 1: no operation.
    Nop,
    /// Kind 0: end of option list; the rest of the options area is padding.
    Eol,
    /// Any other kind with a plausible length byte: `kind`, `2 + data.len()`, `data`.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data (after the kind and length bytes).
        data: Vec<u8>,
    },
    /// Bytes that could not be read as options (bad length byte, known kind with the wrong
    /// size, or non-zero bytes after EOL); emitted verbatim.
    Malformed(Vec<u8>),
}

impl TcpOption {
    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            TcpOption::Mss(v) => {
                out.extend_from_slice(&[2, 4]);
                out.extend_from_slice(&v.to_be_bytes());
            }
            TcpOption::WindowScale(v) => out.extend_from_slice(&[3, 3, *v]),
            TcpOption::SackPermitted => out.extend_from_slice(&[4, 2]),
            TcpOption::Sack(blocks) => {
                let blocks = &blocks[..blocks.len().min(4)];
                out.extend_from_slice(&[5, 2 + 8 * blocks.len() as u8]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOption::Timestamps { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOption::Nop => out.push(1),
            TcpOption::Eol => out.push(0),
            TcpOption::Unknown { kind, data } => {
                let data = &data[..data.len().min(253)];
                out.extend_from_slice(&[*kind, 2 + data.len() as u8]);
                out.extend_from_slice(data);
            }
            TcpOption::Malformed(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Encodes options, zero-padded (EOL) to a multiple of 4 and cut at 40 bytes.
///
/// Hand-written rather than etherparse's `TcpOptions::try_from_elements` because that one
/// cannot carry unknown kinds or malformed bytes, which a fuzzing peer must send.
pub fn encode_options(options: &[TcpOption]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in options {
        o.emit(&mut out);
    }
    out.truncate(40);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

/// Decodes an options area with etherparse's iterator, keeping what it cannot read.
pub fn decode_options(mut bytes: &[u8]) -> Vec<TcpOption> {
    let mut out = Vec::new();
    loop {
        let mut it = TcpOptionsIterator::from_slice(bytes);
        let before = bytes;
        match it.next() {
            None if before.is_empty() => break,
            None => {
                // etherparse stops at EOL: what follows is padding, zero when well formed.
                out.push(TcpOption::Eol);
                let rest = before.get(1..).unwrap_or_default();
                if rest.iter().any(|b| *b != 0) {
                    out.push(TcpOption::Malformed(rest.to_vec()));
                }
                break;
            }
            Some(Ok(element)) => {
                out.push(match element {
                    TcpOptionElement::Noop => TcpOption::Nop,
                    TcpOptionElement::MaximumSegmentSize(v) => TcpOption::Mss(v),
                    TcpOptionElement::WindowScale(v) => TcpOption::WindowScale(v),
                    TcpOptionElement::SelectiveAcknowledgementPermitted => TcpOption::SackPermitted,
                    TcpOptionElement::SelectiveAcknowledgement(first, rest) => TcpOption::Sack(
                        std::iter::once(first)
                            .chain(rest.into_iter().flatten())
                            .collect(),
                    ),
                    TcpOptionElement::Timestamp(val, ecr) => TcpOption::Timestamps { val, ecr },
                });
                bytes = it.rest();
            }
            Some(Err(TcpOptionReadError::UnknownId(kind))) => {
                let len = before.get(1).map_or(0, |l| usize::from(*l));
                match before.get(2..len) {
                    Some(data) if len >= 2 => {
                        out.push(TcpOption::Unknown {
                            kind,
                            data: data.to_vec(),
                        });
                        bytes = before.get(len..).unwrap_or_default();
                    }
                    _ => {
                        out.push(TcpOption::Malformed(before.to_vec()));
                        break;
                    }
                }
            }
            Some(Err(_)) => {
                out.push(TcpOption::Malformed(before.to_vec()));
                break;
            }
        }
    }
    out
}

impl fmt::Display for TcpOption {
    /// tcpdump's spelling: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `nop`, `wscale 7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOption::Mss(v) => write!(f, "mss {v}"),
            TcpOption::WindowScale(v) => write!(f, "wscale {v}"),
            TcpOption::SackPermitted => f.write_str("sackOK"),
            TcpOption::Sack(blocks) => {
                write!(f, "sack {}", blocks.len())?;
                for (l, r) in blocks {
                    write!(f, " {{{l}:{r}}}")?;
                }
                Ok(())
            }
            TcpOption::Timestamps { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOption::Nop => f.write_str("nop"),
            TcpOption::Eol => f.write_str("eol"),
            TcpOption::Unknown { kind, data } => write!(f, "opt-{kind} {}", hex(data)),
            TcpOption::Malformed(bytes) => write!(f, "malformed {}", hex(bytes)),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcpSegment {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (unscaled, as on the wire).
    pub window: u16,
    /// Urgent pointer.
    pub urgent_ptr: u16,
    /// Options in wire order.
    pub options: Vec<TcpOption>,
    /// Payload.
    pub payload: Vec<u8>,
    /// The checksum as on the wire; [`Frame::emit`](super::Frame::emit) computes its own.
    pub checksum: u16,
    /// Whether `checksum` was correct (`None` when it was not checked).
    pub checksum_valid: Option<bool>,
}

impl TcpSegment {
    /// Minimum header length.
    pub const MIN_HEADER_LEN: usize = 20;

    /// A segment between two ports with the given numbers and flags, window 64240.
    pub fn new(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: TcpFlags) -> Self {
        TcpSegment {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window: 64240,
            ..TcpSegment::default()
        }
    }

    /// Sequence space used: payload length plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        len.saturating_add(u32::from(self.flags.contains(TcpFlags::SYN)))
            .saturating_add(u32::from(self.flags.contains(TcpFlags::FIN)))
    }

    /// The wire bytes, with the checksum computed for `pseudo` and `faults` applied.
    pub(crate) fn emit(&self, pseudo: &Pseudo, faults: &Faults) -> Vec<u8> {
        let mut h = TcpHeader::new(self.src_port, self.dst_port, self.seq, self.window);
        h.acknowledgment_number = self.ack;
        let f = self.flags;
        (h.fin, h.syn, h.rst, h.psh) = (
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::RST),
            f.contains(TcpFlags::PSH),
        );
        (h.ack, h.urg, h.ece, h.cwr) = (
            f.contains(TcpFlags::ACK),
            f.contains(TcpFlags::URG),
            f.contains(TcpFlags::ECE),
            f.contains(TcpFlags::CWR),
        );
        h.urgent_pointer = self.urgent_ptr;
        let mut options = match &faults.tcp_options_raw {
            Some(raw) => raw.clone(),
            None => encode_options(&self.options),
        };
        options.truncate(40);
        // At most 40 bytes: etherparse pads to a multiple of 4 and cannot fail.
        let _ = h.set_options_raw(&options);
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&self.payload);
        if let (Some(d), Some(b)) = (faults.tcp_data_offset, bytes.get_mut(12)) {
            *b = (d << 4) | (*b & 0x0f);
        }
        let sum = transport_checksum(pseudo, 6, &bytes);
        let sum = ChecksumFault::apply(faults.transport_checksum, sum);
        if let Some(c) = bytes.get_mut(16..18) {
            c.copy_from_slice(&sum.to_be_bytes());
        }
        bytes
    }
}

/// Parses the TCP segment that fills `bytes` (the IP payload), starting at `offset`.
pub(crate) fn parse(
    bytes: &[u8],
    offset: usize,
    pseudo: &Pseudo,
) -> Result<TcpSegment, ParseError> {
    use etherparse::err::tcp::HeaderSliceError;
    let (h, payload) = TcpHeader::from_slice(bytes).map_err(|e| match e {
        HeaderSliceError::Len(l) => ParseError::from_len(Layer::Tcp, offset, &l),
        HeaderSliceError::Content(c) => ParseError {
            layer: Layer::Tcp,
            offset,
            kind: ErrorKind::Content(match c {
                etherparse::err::tcp::HeaderError::DataOffsetTooSmall { data_offset } => {
                    format!("data offset {data_offset} is below the minimum of 5")
                }
            }),
        },
    })?;
    let flag = |set: bool, f: TcpFlags| if set { f.0 } else { 0 };
    let flags = TcpFlags(
        flag(h.fin, TcpFlags::FIN)
            | flag(h.syn, TcpFlags::SYN)
            | flag(h.rst, TcpFlags::RST)
            | flag(h.psh, TcpFlags::PSH)
            | flag(h.ack, TcpFlags::ACK)
            | flag(h.urg, TcpFlags::URG)
            | flag(h.ece, TcpFlags::ECE)
            | flag(h.cwr, TcpFlags::CWR),
    );
    Ok(TcpSegment {
        src_port: h.source_port,
        dst_port: h.destination_port,
        seq: h.sequence_number,
        ack: h.acknowledgment_number,
        flags,
        window: h.window_size,
        urgent_ptr: h.urgent_pointer,
        options: decode_options(h.options.as_slice()),
        payload: payload.to_vec(),
        checksum: h.checksum,
        checksum_valid: Some(transport_checksum(pseudo, 6, bytes) == 0),
    })
}

impl fmt::Display for TcpSegment {
    /// `40000 > 80: S 1000:1000(0) ack 0 win 64240 <mss 1460>`, tcpdump-like, absolute numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {}: {}", self.src_port, self.dst_port, self.flags)?;
        let end = self.seq.wrapping_add(self.payload.len() as u32);
        write!(f, " {}:{}({})", self.seq, end, self.payload.len())?;
        if self.flags.contains(TcpFlags::ACK) {
            write!(f, " ack {}", self.ack)?;
        }
        write!(f, " win {}", self.window)?;
        if !self.options.is_empty() {
            let opts: Vec<String> = self.options.iter().map(ToString::to_string).collect();
            write!(f, " <{}>", opts.join(","))?;
        }
        if self.checksum_valid == Some(false) {
            write!(f, " [bad tcp cksum {:04x}]", self.checksum)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_display_like_tcpdump() {
        assert_eq!(TcpFlags::SYN.to_string(), "S");
        assert_eq!(TcpFlags::SYN_ACK.to_string(), "S.");
        assert_eq!(TcpFlags::ACK.to_string(), ".");
        assert_eq!(TcpFlags::PSH_ACK.to_string(), "P.");
        assert_eq!(TcpFlags::FIN_ACK.to_string(), "F.");
        assert_eq!(TcpFlags::RST.to_string(), "R");
        assert_eq!(TcpFlags::RST_ACK.to_string(), "R.");
        assert_eq!(TcpFlags(0).to_string(), "none");
        assert_eq!("FSRP.UEW".parse::<TcpFlags>(), Ok(TcpFlags(0xff)));
        assert!("X".parse::<TcpFlags>().is_err());
    }

    #[test]
    fn options_round_trip_with_unknown_and_padding() {
        let opts = vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps { val: 7, ecr: 0 },
            TcpOption::Nop,
            TcpOption::WindowScale(7),
        ];
        let bytes = encode_options(&opts);
        assert_eq!(bytes.len(), 20);
        assert_eq!(decode_options(&bytes), opts);
        let odd = [
            TcpOption::Unknown {
                kind: 30,
                data: vec![1, 2],
            },
            TcpOption::Nop,
        ];
        assert_eq!(
            decode_options(&encode_options(&odd)),
            vec![odd[0].clone(), TcpOption::Nop, TcpOption::Eol]
        );
        assert_eq!(
            decode_options(&[2, 5, 0, 0]),
            vec![TcpOption::Malformed(vec![2, 5, 0, 0])]
        );
        assert_eq!(
            decode_options(&[99, 0, 0, 0]),
            vec![TcpOption::Malformed(vec![99, 0, 0, 0])]
        );
        assert_eq!(
            decode_options(&[0, 0, 1, 0]),
            vec![TcpOption::Eol, TcpOption::Malformed(vec![0, 1, 0])]
        );
        assert_eq!(
            TcpOption::Sack(vec![(1, 2), (3, 4)]).to_string(),
            "sack 2 {1:2} {3:4}"
        );
    }

    #[test]
    fn short_header_and_bad_offset() {
        let pseudo = Pseudo::None;
        let seg = TcpSegment::new(1, 2, 3, 4, TcpFlags::SYN).emit(&pseudo, &Faults::default());
        assert_eq!(
            parse(&seg[..12], 34, &pseudo),
            Err(ParseError::length(Layer::Tcp, 34, 20, 12))
        );
        let mut bad = seg.clone();
        bad[12] = 0x40;
        let e = parse(&bad, 34, &pseudo).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Content(_)), "{e}");
        assert_eq!(
            parse(&seg, 34, &pseudo).map(|s| s.checksum_valid),
            Ok(Some(true))
        );
    }
}
