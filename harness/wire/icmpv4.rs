//! ICMPv4 messages (RFC 792).
//!
//! The representation keeps the wire fields (type, code, the four "rest of header" bytes,
//! the body) so every message round-trips, and [`Icmpv4Message::kind`] gives the typed
//! reading. Parsing never panics: fewer than 8 bytes (20 for timestamps) give a
//! [`ParseError`] with [`Layer::Icmpv4`]; a bad checksum gives `checksum_valid == false`.

use std::fmt;
use std::net::Ipv4Addr;

use etherparse::Icmpv4Slice;
use serde::{Deserialize, Serialize};

use super::builder::{ChecksumFault, Faults};
use super::error::{Layer, ParseError};
use super::{Pseudo, transport_checksum};

/// An ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Icmpv4Message {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Bytes 4..8 (identifier and sequence, next-hop MTU, gateway, pointer, ...).
    pub rest_of_header: [u8; 4],
    /// The body after the 8-byte header (echo data, or the offending datagram for errors).
    pub payload: Vec<u8>,
    /// The checksum as on the wire; emit computes its own.
    pub checksum: u16,
    /// Whether it was correct.
    pub checksum_valid: bool,
}

/// The typed reading of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Icmpv4Kind {
    /// Type 8.
    EchoRequest {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Type 0.
    EchoReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Type 3 with its code (3 = port unreachable, 4 = fragmentation needed).
    DestUnreachable {
        /// Code.
        code: u8,
        /// Next-hop MTU (RFC 1191), meaningful for code 4.
        next_hop_mtu: u16,
    },
    /// Type 5.
    Redirect {
        /// Code.
        code: u8,
        /// Gateway address.
        gateway: Ipv4Addr,
    },
    /// Type 11 (0 = TTL exceeded in transit, 1 = reassembly time exceeded).
    TimeExceeded {
        /// Code.
        code: u8,
    },
    /// Type 12.
    ParameterProblem {
        /// Code.
        code: u8,
        /// Pointer to the offending octet.
        pointer: u8,
    },
    /// Any other type.
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
}

impl Icmpv4Message {
    /// Header length.
    pub const HEADER_LEN: usize = 8;

    fn new(icmp_type: u8, code: u8, rest_of_header: [u8; 4], payload: Vec<u8>) -> Self {
        Icmpv4Message {
            icmp_type,
            code,
            rest_of_header,
            payload,
            checksum: 0,
            checksum_valid: true,
        }
    }

    /// An echo request.
    pub fn echo_request(id: u16, seq: u16, data: Vec<u8>) -> Self {
        Self::new(8, 0, echo_rest(id, seq), data)
    }

    /// An echo reply.
    pub fn echo_reply(id: u16, seq: u16, data: Vec<u8>) -> Self {
        Self::new(0, 0, echo_rest(id, seq), data)
    }

    /// A destination unreachable error quoting `original` (IP header + 8 bytes at least).
    pub fn dest_unreachable(code: u8, original: Vec<u8>) -> Self {
        Self::new(3, code, [0; 4], original)
    }

    /// A time exceeded error quoting `original`.
    pub fn time_exceeded(code: u8, original: Vec<u8>) -> Self {
        Self::new(11, code, [0; 4], original)
    }

    /// The typed reading.
    pub fn kind(&self) -> Icmpv4Kind {
        let r = self.rest_of_header;
        let hi = u16::from_be_bytes([r[0], r[1]]);
        let lo = u16::from_be_bytes([r[2], r[3]]);
        match (self.icmp_type, self.code) {
            (8, 0) => Icmpv4Kind::EchoRequest { id: hi, seq: lo },
            (0, 0) => Icmpv4Kind::EchoReply { id: hi, seq: lo },
            (3, code) => Icmpv4Kind::DestUnreachable {
                code,
                next_hop_mtu: lo,
            },
            (5, code) => Icmpv4Kind::Redirect {
                code,
                gateway: Ipv4Addr::from(r),
            },
            (11, code) => Icmpv4Kind::TimeExceeded { code },
            (12, code) => Icmpv4Kind::ParameterProblem {
                code,
                pointer: r[0],
            },
            (icmp_type, code) => Icmpv4Kind::Other { icmp_type, code },
        }
    }

    pub(crate) fn emit(&self, faults: &Faults) -> Vec<u8> {
        let mut bytes = vec![self.icmp_type, self.code, 0, 0];
        bytes.extend_from_slice(&self.rest_of_header);
        bytes.extend_from_slice(&self.payload);
        let sum = transport_checksum(&Pseudo::None, 1, &bytes);
        let sum = ChecksumFault::apply(faults.transport_checksum, sum);
        if let Some(c) = bytes.get_mut(2..4) {
            c.copy_from_slice(&sum.to_be_bytes());
        }
        bytes
    }
}

fn echo_rest(id: u16, seq: u16) -> [u8; 4] {
    let [a, b] = id.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    [a, b, c, d]
}

/// Parses the ICMPv4 message that fills `bytes`, at `offset`.
pub(crate) fn parse(bytes: &[u8], offset: usize) -> Result<Icmpv4Message, ParseError> {
    let s = Icmpv4Slice::from_slice(bytes).map_err(|e| {
        // etherparse wants a timestamp (reply) of exactly 20 bytes (RFC 792); say so when it
        // is longer rather than "needs 20 bytes, 40 present".
        if e.len > e.required_len {
            ParseError::content(
                Layer::Icmpv4,
                offset,
                format!(
                    "a timestamp message is {} bytes (RFC 792), this one is {}",
                    e.required_len, e.len
                ),
            )
        } else {
            ParseError::from_len(Layer::Icmpv4, offset, &e)
        }
    })?;
    Ok(Icmpv4Message {
        icmp_type: s.type_u8(),
        code: s.code_u8(),
        rest_of_header: s.bytes5to8(),
        payload: bytes
            .get(Icmpv4Message::HEADER_LEN..)
            .unwrap_or_default()
            .to_vec(),
        checksum: s.checksum(),
        checksum_valid: transport_checksum(&Pseudo::None, 1, bytes) == 0,
    })
}

fn unreachable_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "net",
        1 => "host",
        2 => "protocol",
        3 => "port",
        4 => "need to frag",
        5 => "source route failed",
        9 => "net prohibited",
        10 => "host prohibited",
        13 => "administratively prohibited",
        _ => return None,
    })
}

impl fmt::Display for Icmpv4Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Icmpv4Kind::EchoRequest { id, seq } => write!(f, "echo request, id {id}, seq {seq}"),
            Icmpv4Kind::EchoReply { id, seq } => write!(f, "echo reply, id {id}, seq {seq}"),
            Icmpv4Kind::DestUnreachable {
                code: 4,
                next_hop_mtu,
            } => {
                write!(f, "unreachable need to frag (mtu {next_hop_mtu})")
            }
            Icmpv4Kind::DestUnreachable { code, .. } => match unreachable_name(code) {
                Some(name) => write!(f, "unreachable {name}"),
                None => write!(f, "unreachable code {code}"),
            },
            Icmpv4Kind::Redirect { code, gateway } => {
                write!(f, "redirect code {code} to {gateway}")
            }
            Icmpv4Kind::TimeExceeded { code: 0 } => f.write_str("time exceeded in-transit"),
            Icmpv4Kind::TimeExceeded { code: 1 } => f.write_str("time exceeded reassembly"),
            Icmpv4Kind::TimeExceeded { code } => write!(f, "time exceeded code {code}"),
            Icmpv4Kind::ParameterProblem { code, pointer } => {
                write!(f, "parameter problem code {code} pointer {pointer}")
            }
            Icmpv4Kind::Other { icmp_type, code } => write!(f, "type {icmp_type} code {code}"),
        }
    }
}

impl fmt::Display for Icmpv4Message {
    /// `ICMP echo request, id 1, seq 2, length 8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ICMP {}, length {}", self.kind(), self.payload.len())?;
        if !self.checksum_valid {
            write!(f, " [bad icmp cksum {:04x}]", self.checksum)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_timestamp_of_the_wrong_size_is_named() {
        let mut long = vec![13, 0, 0, 0, 0, 1, 0, 1];
        long.resize(40, 0);
        let err = parse(&long, 34).unwrap_err();
        assert_eq!(
            err.kind,
            crate::wire::ErrorKind::Content(
                "a timestamp message is 20 bytes (RFC 792), this one is 40".into()
            )
        );
        let err = parse(&long[..12], 34).unwrap_err();
        assert_eq!(
            err.kind,
            crate::wire::ErrorKind::Length {
                needed: 20,
                present: 12
            }
        );
    }
    use super::*;

    #[test]
    fn echo_round_trip_and_kinds() {
        let m = Icmpv4Message::echo_request(7, 1, b"ping".to_vec());
        let bytes = m.emit(&Faults::default());
        let p = parse(&bytes, 34).unwrap();
        assert!(p.checksum_valid);
        assert_eq!(p.kind(), Icmpv4Kind::EchoRequest { id: 7, seq: 1 });
        assert_eq!(p.to_string(), "ICMP echo request, id 7, seq 1, length 4");
        let u = Icmpv4Message::dest_unreachable(3, vec![0x45; 28]);
        assert_eq!(u.kind().to_string(), "unreachable port");
        assert_eq!(
            Icmpv4Message::time_exceeded(0, vec![]).kind().to_string(),
            "time exceeded in-transit"
        );
        assert_eq!(
            parse(&bytes[..5], 34),
            Err(ParseError::length(Layer::Icmpv4, 34, 8, 5))
        );
    }
}
