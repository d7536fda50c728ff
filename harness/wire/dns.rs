//! DNS messages as they cross the wire (RFC 1035 §4, RFC 3596 for AAAA, RFC 6891 for the
//! OPT pseudo-record, RFC 2136 §2.4 for the empty RDATA of UPDATE messages).
//!
//! [`DnsMessage::parse`] reads one whole message (a UDP payload, or a TCP message without its
//! two-byte length prefix) into an owned [`DnsMessage`]; [`DnsMessage::emit`] writes it back
//! without name compression and [`DnsMessage::emit_compressed`] with it, and both read back
//! to the same value. Names keep their case ([`DnsName`] compares case-sensitively; use
//! [`DnsName::eq_ignore_case`] for DNS equality).
//!
//! # Rules enforced
//!
//! - Labels are at most 63 bytes and a name at most 255 bytes in its uncompressed wire form
//!   (RFC 1035 §2.3.4); label types 01 and 10 (RFC 6891 §5 deprecated extended labels) are
//!   errors.
//! - A compression pointer (RFC 1035 §4.1.4) must point to a *prior occurrence*: strictly
//!   before the start of the labels that contain it, and the labels it leads to must end
//!   before that start. Every jump therefore goes strictly backwards, so loops and forward
//!   pointers are errors and the work per name is bounded by the message length.
//! - RDATA of A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and OPT is read by type and must fill
//!   RDLENGTH exactly; other types are kept raw ([`RData::Raw`]). RDLENGTH 0 is
//!   [`RData::Empty`] for those typed types in UPDATE messages only (RFC 2136 §2.4, §2.5).
//! - OPT (RFC 6891 §6.1.1) only in the additional section, at most once, with the root as
//!   owner name; its options must fill the RDATA exactly.
//! - Bytes after the last record are an error ([`DnsParseError::TrailingBytes`]).
//!
//! # What may panic
//!
//! Nothing here panics on any input, and no allocation is sized by a header count before
//! the bytes for it are known to be there: a count that the remaining bytes cannot hold
//! fails with [`DnsParseError::CountTooLarge`]. Emitting never panics either: a value that
//! does not fit its field (a section of more than 65535 records, RDATA over 65535 bytes, a
//! label over 63 bytes) is written truncated, and then does not read back the same.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// The names (label suffixes) a compressed emit has written, and where: borrowed from the
/// message, so remembering one costs no copy of its labels.
type Written<'a> = HashMap<&'a [Vec<u8>], usize>;

/// The fixed header is 12 bytes.
pub const HEADER_LEN: usize = 12;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name in uncompressed wire form, length octets and root included.
pub const MAX_NAME_LEN: usize = 255;

/// Record and query types read by this module (RFC 1035 §3.2.2, RFC 3596, RFC 6891).
pub mod rtype {
    /// A host address.
    pub const A: u16 = 1;
    /// An authoritative name server.
    pub const NS: u16 = 2;
    /// The canonical name for an alias.
    pub const CNAME: u16 = 5;
    /// Start of a zone of authority.
    pub const SOA: u16 = 6;
    /// A domain name pointer.
    pub const PTR: u16 = 12;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// Text strings.
    pub const TXT: u16 = 16;
    /// An IPv6 address (RFC 3596).
    pub const AAAA: u16 = 28;
    /// Server selection (RFC 2782; kept raw).
    pub const SRV: u16 = 33;
    /// The EDNS(0) pseudo-record (RFC 6891).
    pub const OPT: u16 = 41;
    /// Request for all records (QTYPE only).
    pub const ANY: u16 = 255;

    /// The mnemonic of a type, or `TYPEn` (RFC 3597 §5).
    pub fn name(t: u16) -> String {
        match t {
            A => "A".into(),
            NS => "NS".into(),
            CNAME => "CNAME".into(),
            SOA => "SOA".into(),
            PTR => "PTR".into(),
            MX => "MX".into(),
            TXT => "TXT".into(),
            AAAA => "AAAA".into(),
            SRV => "SRV".into(),
            OPT => "OPT".into(),
            ANY => "ANY".into(),
            other => format!("TYPE{other}"),
        }
    }

    /// Whether this module reads RDATA of type `t` into a typed [`RData`](super::RData).
    pub fn is_typed(t: u16) -> bool {
        matches!(t, A | NS | CNAME | SOA | PTR | MX | TXT | AAAA | OPT)
    }
}

/// Classes (RFC 1035 §3.2.4, RFC 2136 §1.3 for NONE).
pub mod class {
    /// The Internet.
    pub const IN: u16 = 1;
    /// Chaos.
    pub const CH: u16 = 3;
    /// Hesiod.
    pub const HS: u16 = 4;
    /// NONE (RFC 2136).
    pub const NONE: u16 = 254;
    /// ANY (QCLASS only, and RFC 2136 prerequisites).
    pub const ANY: u16 = 255;

    /// The mnemonic of a class, or `CLASSn` (RFC 3597 §5).
    pub fn name(c: u16) -> String {
        match c {
            IN => "IN".into(),
            CH => "CH".into(),
            HS => "HS".into(),
            NONE => "NONE".into(),
            ANY => "ANY".into(),
            other => format!("CLASS{other}"),
        }
    }
}

/// Opcodes (RFC 1035 §4.1.1, RFC 1996, RFC 2136).
pub mod opcode {
    /// A standard query.
    pub const QUERY: u8 = 0;
    /// An inverse query (obsolete).
    pub const IQUERY: u8 = 1;
    /// A server status request.
    pub const STATUS: u8 = 2;
    /// NOTIFY (RFC 1996).
    pub const NOTIFY: u8 = 4;
    /// UPDATE (RFC 2136).
    pub const UPDATE: u8 = 5;
}

/// Response codes of the header's 4 bits (RFC 1035 §4.1.1).
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused.
    pub const REFUSED: u8 = 5;

    /// The mnemonic of a (possibly extended) response code, or `RCODEn`.
    pub fn name(r: u16) -> String {
        match r {
            0 => "NOERROR".into(),
            1 => "FORMERR".into(),
            2 => "SERVFAIL".into(),
            3 => "NXDOMAIN".into(),
            4 => "NOTIMP".into(),
            5 => "REFUSED".into(),
            16 => "BADVERS".into(),
            other => format!("RCODE{other}"),
        }
    }
}

/// A DNS message could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsParseError {
    /// The message ended inside a structure: `what` needs `needed` bytes from `offset`, only
    /// `present` are there.
    #[error("DNS {what} at offset {offset}: needs {needed} bytes, {present} present")]
    Length {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// A section count that the rest of the message cannot hold even with the smallest
    /// possible entries (5 bytes per question, 11 per record).
    #[error(
        "DNS {section} count {count} at offset {offset}: {remaining} bytes left can hold at most {max}"
    )]
    CountTooLarge {
        /// The section.
        section: &'static str,
        /// The count from the header.
        count: u16,
        /// Where the section starts.
        offset: usize,
        /// Bytes left in the message there.
        remaining: usize,
        /// The most entries they could hold.
        max: usize,
    },
    /// A label length octet with the reserved top bits 01 or 10 (RFC 1035 §4.1.4,
    /// RFC 6891 §5).
    #[error("DNS name at offset {offset}: label type 0x{byte:02x} is reserved")]
    LabelType {
        /// Offset of the length octet.
        offset: usize,
        /// The octet.
        byte: u8,
    },
    /// A compression pointer that does not point to a prior occurrence.
    #[error("DNS name at offset {offset}: pointer to {target} {reason}")]
    BadPointer {
        /// Offset of the pointer (or of the label that ran past the limit).
        offset: usize,
        /// Where it points.
        target: usize,
        /// `is not before the labels that contain it` or `leads past the labels it came from`.
        reason: &'static str,
    },
    /// A name longer than 255 bytes in uncompressed wire form (RFC 1035 §2.3.4).
    #[error("DNS name at offset {offset}: {len} bytes, over the limit of 255")]
    NameTooLong {
        /// Where the name starts.
        offset: usize,
        /// Its length so far.
        len: usize,
    },
    /// RDATA whose typed content does not fill RDLENGTH exactly.
    #[error("DNS {rtype} RDATA at offset {offset}: {reason}")]
    Rdata {
        /// The record type's mnemonic.
        rtype: String,
        /// Where the RDATA starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// An OPT record where RFC 6891 §6.1.1 forbids it.
    #[error("DNS OPT record at offset {offset}: {reason}")]
    Opt {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes after the last record.
    #[error("DNS message: {extra} bytes after the last record at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        extra: usize,
    },
}

/// The flag bits and codes of the header's second 16-bit word (RFC 1035 §4.1.1,
/// RFC 4035 §3.2 for AD and CD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct DnsFlags {
    /// QR: a response.
    pub qr: bool,
    /// OPCODE (4 bits; wider values are masked on emit).
    pub opcode: u8,
    /// AA: authoritative answer.
    pub aa: bool,
    /// TC: truncated.
    pub tc: bool,
    /// RD: recursion desired.
    pub rd: bool,
    /// RA: recursion available.
    pub ra: bool,
    /// Z: the reserved bit, kept as seen.
    pub z: bool,
    /// AD: authentic data (RFC 4035).
    pub ad: bool,
    /// CD: checking disabled (RFC 4035).
    pub cd: bool,
    /// RCODE's low 4 bits (the rest is in the OPT record; see [`DnsMessage::rcode`]).
    pub rcode: u8,
}

impl DnsFlags {
    /// Reads the 16-bit word.
    pub fn from_word(w: u16) -> Self {
        let bit = |n: u16| w & (1 << n) != 0;
        DnsFlags {
            qr: bit(15),
            opcode: ((w >> 11) & 0xf) as u8,
            aa: bit(10),
            tc: bit(9),
            rd: bit(8),
            ra: bit(7),
            z: bit(6),
            ad: bit(5),
            cd: bit(4),
            rcode: (w & 0xf) as u8,
        }
    }

    /// The 16-bit word (opcode and rcode masked to 4 bits).
    pub fn to_word(self) -> u16 {
        let b = |v: bool, n: u16| u16::from(v) << n;
        b(self.qr, 15)
            | (u16::from(self.opcode) & 0xf) << 11
            | b(self.aa, 10)
            | b(self.tc, 9)
            | b(self.rd, 8)
            | b(self.ra, 7)
            | b(self.z, 6)
            | b(self.ad, 5)
            | b(self.cd, 4)
            | u16::from(self.rcode) & 0xf
    }
}

/// A domain name: its labels, case preserved, without the root label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct DnsName {
    /// The labels, leftmost first; empty for the root.
    pub labels: Vec<Vec<u8>>,
}

impl DnsName {
    /// The root name `.`.
    pub fn root() -> Self {
        DnsName::default()
    }

    /// A name from dotted text (`www.example.com`, trailing dot optional, no escapes).
    pub fn from_dotted(text: &str) -> Self {
        DnsName {
            labels: text
                .split('.')
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.labels.is_empty()
    }

    /// Length of the uncompressed wire form, length octets and root included.
    pub fn wire_len(&self) -> usize {
        1 + self.labels.iter().map(|l| 1 + l.len()).sum::<usize>()
    }

    /// DNS name equality: ASCII letters compare without case (RFC 4343).
    pub fn eq_ignore_case(&self, other: &DnsName) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// The labels lowercased (ASCII), for comparisons.
    pub fn to_lowercase(&self) -> Vec<Vec<u8>> {
        self.labels.iter().map(|l| l.to_ascii_lowercase()).collect()
    }

    /// Reads the name at `start` of `message`, following compression pointers. Returns the
    /// name and the offset where what follows it starts: after its first pointer, or after
    /// its root label when it has no pointer.
    pub fn parse(message: &[u8], start: usize) -> Result<(DnsName, usize), DnsParseError> {
        let mut labels = Vec::new();
        let mut pos = start;
        // Start of the run of labels being read; a pointer must point before it.
        let mut run_start = start;
        // After a jump, the labels read must stay before the run the pointer was in.
        let mut limit: Option<usize> = None;
        let mut end = None;
        let mut len = 1;
        loop {
            if let Some(limit) = limit
                && pos >= limit
            {
                return Err(DnsParseError::BadPointer {
                    offset: pos,
                    target: run_start,
                    reason: "leads past the labels it came from",
                });
            }
            let &byte = message.get(pos).ok_or(DnsParseError::Length {
                what: "name",
                offset: pos,
                needed: 1,
                present: 0,
            })?;
            match byte >> 6 {
                0 if byte == 0 => {
                    end.get_or_insert(pos + 1);
                    break;
                }
                0 => {
                    let n = usize::from(byte);
                    let label = message
                        .get(pos + 1..pos + 1 + n)
                        .ok_or(DnsParseError::Length {
                            what: "label",
                            offset: pos,
                            needed: 1 + n,
                            present: message.len() - pos,
                        })?;
                    len += 1 + n;
                    if len > MAX_NAME_LEN {
                        return Err(DnsParseError::NameTooLong { offset: start, len });
                    }
                    labels.push(label.to_vec());
                    pos += 1 + n;
                }
                3 => {
                    let &low = message.get(pos + 1).ok_or(DnsParseError::Length {
                        what: "compression pointer",
                        offset: pos,
                        needed: 2,
                        present: 1,
                    })?;
                    let target = usize::from(byte & 0x3f) << 8 | usize::from(low);
                    if target >= run_start {
                        return Err(DnsParseError::BadPointer {
                            offset: pos,
                            target,
                            reason: "is not before the labels that contain it",
                        });
                    }
                    end.get_or_insert(pos + 2);
                    limit = Some(run_start);
                    run_start = target;
                    pos = target;
                }
                _ => return Err(DnsParseError::LabelType { offset: pos, byte }),
            }
        }
        // `end` is always set when the loop breaks.
        Ok((DnsName { labels }, end.unwrap_or(pos + 1)))
    }

    /// Appends the uncompressed wire form (a label over 63 bytes is cut to 63).
    pub fn emit(&self, out: &mut Vec<u8>) {
        for label in &self.labels {
            let label = &label[..label.len().min(MAX_LABEL_LEN)];
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }

    /// Appends the wire form, ending in a pointer to the longest suffix already in
    /// `written` (suffixes written below offset 0x4000 are remembered there). Only suffixes
    /// with identical bytes are shared, so case survives.
    fn emit_compressed<'a>(&'a self, out: &mut Vec<u8>, written: &mut Written<'a>) {
        for i in 0..self.labels.len() {
            let suffix = &self.labels[i..];
            if let Some(&at) = written.get(suffix) {
                out.extend_from_slice(&(0xc000 | at as u16).to_be_bytes());
                return;
            }
            if out.len() < 0x4000 {
                written.insert(suffix, out.len());
            }
            let label = &self.labels[i][..self.labels[i].len().min(MAX_LABEL_LEN)];
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }
}

impl fmt::Display for DnsName {
    /// Presentation form (RFC 1035 §5.1): `www.example.com.`, `.` for the root, with `.`
    /// and `\` escaped and other bytes outside printable ASCII as `\DDD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for label in &self.labels {
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                        write!(f, "\\{}", b as char)?
                    }
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DnsQuestion {
    /// QNAME.
    pub name: DnsName,
    /// QTYPE ([`rtype`]).
    pub qtype: u16,
    /// QCLASS ([`class`]).
    pub qclass: u16,
}

/// SOA RDATA (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Soa {
    /// MNAME: the primary name server.
    pub mname: DnsName,
    /// RNAME: the mailbox of the person responsible.
    pub rname: DnsName,
    /// SERIAL.
    pub serial: u32,
    /// REFRESH.
    pub refresh: u32,
    /// RETRY.
    pub retry: u32,
    /// EXPIRE.
    pub expire: u32,
    /// MINIMUM (the negative-caching TTL, RFC 2308).
    pub minimum: u32,
}

/// One EDNS option of an OPT record (RFC 6891 §6.1.2), kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EdnsOption {
    /// OPTION-CODE.
    pub code: u16,
    /// OPTION-DATA.
    pub data: Vec<u8>,
}

/// Record data, read by type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum RData {
    /// A: an IPv4 address.
    A(Ipv4Addr),
    /// AAAA: an IPv6 address.
    Aaaa(Ipv6Addr),
    /// NS: a name server.
    Ns(DnsName),
    /// CNAME: the canonical name.
    Cname(DnsName),
    /// PTR: the name pointed to.
    Ptr(DnsName),
    /// MX: preference and exchange.
    Mx {
        /// PREFERENCE.
        preference: u16,
        /// EXCHANGE.
        exchange: DnsName,
    },
    /// TXT: one or more character-strings.
    Txt(Vec<Vec<u8>>),
    /// SOA.
    Soa(Soa),
    /// OPT: the options.
    Opt(Vec<EdnsOption>),
    /// RDLENGTH 0 for a typed type in an UPDATE message (RFC 2136 §2.4, §2.5).
    Empty,
    /// Any other type, RDATA as on the wire (compression pointers inside it, which RFC 3597
    /// §4 forbids for new types, are not followed).
    Raw(Vec<u8>),
}

/// A resource record (RFC 1035 §4.1.3).
///
/// For OPT (RFC 6891 §6.1.2) `class` is the requestor's UDP payload size and `ttl` holds
/// the extended RCODE, version and flags; see [`Edns`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DnsRecord {
    /// NAME: the owner.
    pub name: DnsName,
    /// TYPE ([`rtype`]); emitted as is, whatever `data` holds.
    pub rtype: u16,
    /// CLASS ([`class`]).
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA.
    pub data: RData,
}

/// The EDNS(0) view of an OPT record (RFC 6891 §6.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edns {
    /// The requestor's UDP payload size (the CLASS field).
    pub udp_payload_size: u16,
    /// The upper 8 bits of the 12-bit RCODE.
    pub extended_rcode: u8,
    /// VERSION.
    pub version: u8,
    /// DO: DNSSEC answer OK.
    pub dnssec_ok: bool,
    /// The other 15 flag bits (Z), as seen.
    pub z: u16,
    /// The options.
    pub options: Vec<EdnsOption>,
}

/// A whole DNS message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DnsMessage {
    /// ID.
    pub id: u16,
    /// The flags and codes.
    pub flags: DnsFlags,
    /// The question section.
    pub questions: Vec<DnsQuestion>,
    /// The answer section.
    pub answers: Vec<DnsRecord>,
    /// The authority section.
    pub authorities: Vec<DnsRecord>,
    /// The additional section (the OPT record, if any, is here).
    pub additionals: Vec<DnsRecord>,
}

/// A bounds-checked reader over the whole message (names need all of it for pointers).
struct Reader<'a> {
    message: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DnsParseError> {
        let bytes = self
            .message
            .get(self.pos..self.pos + n)
            .ok_or(DnsParseError::Length {
                what,
                offset: self.pos,
                needed: n,
                present: self.message.len().saturating_sub(self.pos),
            })?;
        self.pos += n;
        Ok(bytes)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DnsParseError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DnsParseError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<DnsName, DnsParseError> {
        let (name, end) = DnsName::parse(self.message, self.pos)?;
        self.pos = end;
        Ok(name)
    }

    fn remaining(&self) -> usize {
        self.message.len().saturating_sub(self.pos)
    }

    /// Capacity for `count` entries of at least `min` bytes, or an error when they cannot
    /// fit.
    fn capacity(
        &self,
        section: &'static str,
        count: u16,
        min: usize,
    ) -> Result<usize, DnsParseError> {
        let max = self.remaining() / min;
        if usize::from(count) > max {
            return Err(DnsParseError::CountTooLarge {
                section,
                count,
                offset: self.pos,
                remaining: self.remaining(),
                max,
            });
        }
        Ok(usize::from(count))
    }
}

/// Smallest question: root name, type, class.
const MIN_QUESTION_LEN: usize = 5;
/// Smallest record: root name, type, class, TTL, RDLENGTH.
const MIN_RECORD_LEN: usize = 11;

impl DnsMessage {
    /// Reads one whole message; `message` must hold exactly it.
    pub fn parse(message: &[u8]) -> Result<DnsMessage, DnsParseError> {
        let mut r = Reader { message, pos: 0 };
        let header = r.take(HEADER_LEN, "header")?;
        let word = |i: usize| u16::from_be_bytes([header[2 * i], header[2 * i + 1]]);
        let id = word(0);
        let flags = DnsFlags::from_word(word(1));
        let counts = [word(2), word(3), word(4), word(5)];
        let n = r.capacity("question", counts[0], MIN_QUESTION_LEN)?;
        let mut questions = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.name()?;
            let qtype = r.u16("question")?;
            let qclass = r.u16("question")?;
            questions.push(DnsQuestion {
                name,
                qtype,
                qclass,
            });
        }
        let answers = read_section(&mut r, "answer", counts[1], flags.opcode)?;
        let authorities = read_section(&mut r, "authority", counts[2], flags.opcode)?;
        let additionals = read_section(&mut r, "additional", counts[3], flags.opcode)?;
        if r.remaining() > 0 {
            return Err(DnsParseError::TrailingBytes {
                offset: r.pos,
                extra: r.remaining(),
            });
        }
        Ok(DnsMessage {
            id,
            flags,
            questions,
            answers,
            authorities,
            additionals,
        })
    }

    /// The message without name compression.
    pub fn emit(&self) -> Vec<u8> {
        self.emit_with(None)
    }

    /// The message with owner names, question names and the names inside NS, CNAME, PTR,
    /// MX and SOA RDATA compressed (RFC 1035 §4.1.4; RFC 3597 §4 allows it for these
    /// types).
    pub fn emit_compressed(&self) -> Vec<u8> {
        self.emit_with(Some(HashMap::new()))
    }

    fn emit_with<'a>(&'a self, mut written: Option<Written<'a>>) -> Vec<u8> {
        let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags.to_word().to_be_bytes());
        for n in [
            self.questions.len(),
            self.answers.len(),
            self.authorities.len(),
            self.additionals.len(),
        ] {
            out.extend_from_slice(&count(n).to_be_bytes());
        }
        let mut name = |out: &mut Vec<u8>, name: &'a DnsName| match &mut written {
            Some(written) => name.emit_compressed(out, written),
            None => name.emit(out),
        };
        for q in self.questions.iter().take(usize::from(u16::MAX)) {
            name(&mut out, &q.name);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        for section in [&self.answers, &self.authorities, &self.additionals] {
            for rr in section.iter().take(usize::from(u16::MAX)) {
                name(&mut out, &rr.name);
                out.extend_from_slice(&rr.rtype.to_be_bytes());
                out.extend_from_slice(&rr.class.to_be_bytes());
                out.extend_from_slice(&rr.ttl.to_be_bytes());
                let len_at = out.len();
                out.extend_from_slice(&[0, 0]);
                match &rr.data {
                    RData::A(a) => out.extend_from_slice(&a.octets()),
                    RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
                    RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => name(&mut out, n),
                    RData::Mx {
                        preference,
                        exchange,
                    } => {
                        out.extend_from_slice(&preference.to_be_bytes());
                        name(&mut out, exchange);
                    }
                    RData::Txt(strings) => {
                        for s in strings {
                            let s = &s[..s.len().min(255)];
                            out.push(s.len() as u8);
                            out.extend_from_slice(s);
                        }
                    }
                    RData::Soa(soa) => {
                        name(&mut out, &soa.mname);
                        name(&mut out, &soa.rname);
                        for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                            out.extend_from_slice(&v.to_be_bytes());
                        }
                    }
                    RData::Opt(options) => {
                        for o in options {
                            let data = &o.data[..o.data.len().min(usize::from(u16::MAX))];
                            out.extend_from_slice(&o.code.to_be_bytes());
                            out.extend_from_slice(&count(data.len()).to_be_bytes());
                            out.extend_from_slice(data);
                        }
                    }
                    RData::Empty => {}
                    RData::Raw(raw) => out.extend_from_slice(raw),
                }
                let len = count(out.len() - len_at - 2);
                out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
            }
        }
        out
    }

    /// The OPT record's EDNS view, if the additional section has one.
    pub fn edns(&self) -> Option<Edns> {
        self.additionals.iter().find_map(|rr| match &rr.data {
            RData::Opt(options) if rr.rtype == rtype::OPT => Some(Edns {
                udp_payload_size: rr.class,
                extended_rcode: (rr.ttl >> 24) as u8,
                version: (rr.ttl >> 16) as u8,
                dnssec_ok: rr.ttl & 0x8000 != 0,
                z: (rr.ttl & 0x7fff) as u16,
                options: options.clone(),
            }),
            _ => None,
        })
    }

    /// The 12-bit RCODE: the header's 4 bits and the OPT record's upper 8 (RFC 6891
    /// §6.1.3).
    pub fn rcode(&self) -> u16 {
        let high = self.edns().map_or(0, |e| u16::from(e.extended_rcode));
        high << 4 | u16::from(self.flags.rcode & 0xf)
    }
}

fn read_section(
    r: &mut Reader<'_>,
    section: &'static str,
    count: u16,
    opcode: u8,
) -> Result<Vec<DnsRecord>, DnsParseError> {
    let n = r.capacity(section, count, MIN_RECORD_LEN)?;
    let mut records = Vec::with_capacity(n);
    let mut seen_opt = false;
    for _ in 0..n {
        let start = r.pos;
        let name = r.name()?;
        let rtype = r.u16("record")?;
        let class = r.u16("record")?;
        let ttl = r.u32("record")?;
        let rdlength = usize::from(r.u16("record")?);
        let rdata_at = r.pos;
        let rdata = r.take(rdlength, "RDATA")?;
        if rtype == rtype::OPT {
            let reason = if section != "additional" {
                Some("not in the additional section")
            } else if seen_opt {
                Some("a second OPT record")
            } else if !name.is_root() {
                Some("owner name is not the root")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(DnsParseError::Opt {
                    offset: start,
                    reason,
                });
            }
            seen_opt = true;
        }
        let data = read_rdata(r.message, rdata_at, rdata, rtype, opcode)?;
        records.push(DnsRecord {
            name,
            rtype,
            class,
            ttl,
            data,
        });
    }
    Ok(records)
}

fn read_rdata(
    message: &[u8],
    at: usize,
    rdata: &[u8],
    t: u16,
    opcode: u8,
) -> Result<RData, DnsParseError> {
    let end = at + rdata.len();
    if !rtype::is_typed(t) {
        return Ok(RData::Raw(rdata.to_vec()));
    }
    if rdata.is_empty() && t != rtype::OPT {
        if opcode == opcode::UPDATE {
            return Ok(RData::Empty);
        }
        return Err(DnsParseError::Rdata {
            rtype: rtype::name(t),
            offset: at,
            reason: "RDLENGTH 0 outside an UPDATE message".into(),
        });
    }
    let bad = |reason: String| DnsParseError::Rdata {
        rtype: rtype::name(t),
        offset: at,
        reason,
    };
    // Names in RDATA may point anywhere before them, but must end inside the RDATA.
    let r = &mut Reader {
        message: &message[..end],
        pos: at,
    };
    let data = match t {
        rtype::A => {
            let b: [u8; 4] = rdata
                .try_into()
                .map_err(|_| bad(format!("RDLENGTH {} is not 4", rdata.len())))?;
            r.pos = end;
            RData::A(Ipv4Addr::from(b))
        }
        rtype::AAAA => {
            let b: [u8; 16] = rdata
                .try_into()
                .map_err(|_| bad(format!("RDLENGTH {} is not 16", rdata.len())))?;
            r.pos = end;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        rtype::NS => RData::Ns(r.name()?),
        rtype::CNAME => RData::Cname(r.name()?),
        rtype::PTR => RData::Ptr(r.name()?),
        rtype::MX => RData::Mx {
            preference: r.u16("MX preference")?,
            exchange: r.name()?,
        },
        rtype::TXT => {
            let mut strings = Vec::new();
            while r.remaining() > 0 {
                let n = usize::from(r.take(1, "TXT string")?[0]);
                strings.push(r.take(n, "TXT string")?.to_vec());
            }
            RData::Txt(strings)
        }
        rtype::SOA => RData::Soa(Soa {
            mname: r.name()?,
            rname: r.name()?,
            serial: r.u32("SOA")?,
            refresh: r.u32("SOA")?,
            retry: r.u32("SOA")?,
            expire: r.u32("SOA")?,
            minimum: r.u32("SOA")?,
        }),
        _ => {
            // OPT
            let mut options = Vec::new();
            while r.remaining() > 0 {
                let code = r.u16("EDNS option")?;
                let len = usize::from(r.u16("EDNS option")?);
                options.push(EdnsOption {
                    code,
                    data: r.take(len, "EDNS option data")?.to_vec(),
                });
            }
            RData::Opt(options)
        }
    };
    if r.pos != end {
        return Err(bad(format!(
            "{} of {} bytes left over",
            end - r.pos,
            rdata.len()
        )));
    }
    Ok(data)
}

impl fmt::Display for RData {
    /// Presentation form of the RDATA (RFC 3597 `\# len hex` for raw types).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Ns(n) | RData::Cname(n) | RData::Ptr(n) => write!(f, "{n}"),
            RData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            RData::Txt(strings) => {
                for (i, s) in strings.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "\"{}\"", s.escape_ascii())?;
                }
                Ok(())
            }
            RData::Soa(s) => write!(
                f,
                "{} {} {} {} {} {} {}",
                s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
            RData::Opt(options) => {
                for (i, o) in options.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "option{}={}", o.code, hex::encode(&o.data))?;
                }
                Ok(())
            }
            RData::Empty => f.write_str("(empty)"),
            RData::Raw(raw) => write!(f, "\\# {} {}", raw.len(), hex::encode(raw)),
        }
    }
}

impl fmt::Display for DnsRecord {
    /// `example.com. 300 IN A 192.0.2.1`; OPT as `OPT udp 1232 ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rtype == rtype::OPT {
            return write!(
                f,
                "OPT udp {} ttl 0x{:08x} {}",
                self.class, self.ttl, self.data
            );
        }
        write!(
            f,
            "{} {} {} {} {}",
            self.name,
            self.ttl,
            class::name(self.class),
            rtype::name(self.rtype),
            self.data
        )
    }
}

impl fmt::Display for DnsMessage {
    /// One dig-like line: `id 4660 response QUERY NOERROR rd ra; question example.com. IN A;
    /// answer example.com. 300 IN A 192.0.2.1; ...` (empty sections left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fl = self.flags;
        let op = match fl.opcode {
            opcode::QUERY => "QUERY".to_string(),
            opcode::IQUERY => "IQUERY".to_string(),
            opcode::STATUS => "STATUS".to_string(),
            opcode::NOTIFY => "NOTIFY".to_string(),
            opcode::UPDATE => "UPDATE".to_string(),
            other => format!("OPCODE{other}"),
        };
        write!(
            f,
            "id {} {} {} {}",
            self.id,
            if fl.qr { "response" } else { "query" },
            op,
            rcode::name(self.rcode())
        )?;
        for (set, name) in [
            (fl.aa, "aa"),
            (fl.tc, "tc"),
            (fl.rd, "rd"),
            (fl.ra, "ra"),
            (fl.z, "z"),
            (fl.ad, "ad"),
            (fl.cd, "cd"),
        ] {
            if set {
                write!(f, " {name}")?;
            }
        }
        for q in &self.questions {
            write!(
                f,
                "; question {} {} {}",
                q.name,
                class::name(q.qclass),
                rtype::name(q.qtype)
            )?;
        }
        for (name, section) in [
            ("answer", &self.answers),
            ("authority", &self.authorities),
            ("additional", &self.additionals),
        ] {
            for rr in section {
                write!(f, "; {name} {rr}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_word_round_trips() {
        for w in [0u16, 0x8180, 0x0100, 0xffff, 0x8403, 0x2840] {
            assert_eq!(DnsFlags::from_word(w).to_word(), w);
        }
    }

    #[test]
    fn a_name_through_two_pointers() {
        // 0: "\x03com\0"; 5: "\x07example" + ptr 0; 15: "\x03www" + ptr 5.
        let mut m = b"\x03com\x00\x07example\xc0\x00\x03www\xc0\x05".to_vec();
        m.push(0xff);
        let (name, end) = DnsName::parse(&m, 15).expect("name");
        assert_eq!(name.to_string(), "www.example.com.");
        assert_eq!(end, 21);
    }
}
