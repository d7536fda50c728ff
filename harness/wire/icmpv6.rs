//! ICMPv6 messages (RFC 4443), neighbour discovery (RFC 4861) and MLD (RFC 2710, 3810).
//!
//! As for ICMPv4 the representation keeps the wire fields so every message round-trips, and
//! [`Icmpv6Message::kind`] gives the typed reading. Parsing never panics: fewer than 8 bytes
//! give a [`ParseError`] with [`Layer::Icmpv6`]; a bad checksum (which covers the IPv6
//! pseudo-header) gives `checksum_valid == false`.

use std::fmt;
use std::net::Ipv6Addr;

use etherparse::Icmpv6Slice;
use serde::{Deserialize, Serialize};

use super::builder::{ChecksumFault, Faults};
use super::error::{Layer, ParseError};
use super::ethernet::MacAddr;
use super::{Pseudo, transport_checksum};

/// An ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Icmpv6Message {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Bytes 4..8 (identifier and sequence, MTU, pointer, NA flags, ...).
    pub rest_of_header: [u8; 4],
    /// The body after the 8-byte header (ND target and options, MLD records, quoted packet).
    pub payload: Vec<u8>,
    /// The checksum as on the wire; emit computes its own.
    pub checksum: u16,
    /// Whether it was correct.
    pub checksum_valid: bool,
}

/// The typed reading of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Icmpv6Kind {
    /// Type 1 with its code (4 = port unreachable).
    DestUnreachable {
        /// Code.
        code: u8,
    },
    /// Type 2.
    PacketTooBig {
        /// MTU of the next hop.
        mtu: u32,
    },
    /// Type 3 (0 = hop limit exceeded in transit).
    TimeExceeded {
        /// Code.
        code: u8,
    },
    /// Type 4.
    ParameterProblem {
        /// Code.
        code: u8,
        /// Offset of the offending octet.
        pointer: u32,
    },
    /// Type 128.
    EchoRequest {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Type 129.
    EchoReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Type 130: MLD query.
    MldQuery,
    /// Type 131: MLDv1 report.
    MldReport,
    /// Type 132: MLDv1 done.
    MldDone,
    /// Type 143: MLDv2 report.
    Mldv2Report,
    /// Type 133.
    RouterSolicitation,
    /// Type 134.
    RouterAdvertisement,
    /// Type 135; `target` is `None` when the body is too short to hold it.
    NeighborSolicitation {
        /// Target address.
        target: Option<Ipv6Addr>,
    },
    /// Type 136.
    NeighborAdvertisement {
        /// Target address.
        target: Option<Ipv6Addr>,
        /// R flag.
        router: bool,
        /// S flag.
        solicited: bool,
        /// O flag.
        override_flag: bool,
    },
    /// Type 137.
    Redirect,
    /// Any other type.
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
}

/// Neighbour discovery option: source link-layer address.
const OPT_SOURCE_LL: u8 = 1;
/// Neighbour discovery option: target link-layer address.
const OPT_TARGET_LL: u8 = 2;

fn ll_option(kind: u8, mac: MacAddr) -> [u8; 8] {
    let m = mac.0;
    [kind, 1, m[0], m[1], m[2], m[3], m[4], m[5]]
}

impl Icmpv6Message {
    /// Header length.
    pub const HEADER_LEN: usize = 8;

    fn new(icmp_type: u8, code: u8, rest_of_header: [u8; 4], payload: Vec<u8>) -> Self {
        Icmpv6Message {
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
        let [a, b] = id.to_be_bytes();
        let [c, d] = seq.to_be_bytes();
        Self::new(128, 0, [a, b, c, d], data)
    }

    /// An echo reply.
    pub fn echo_reply(id: u16, seq: u16, data: Vec<u8>) -> Self {
        Self {
            icmp_type: 129,
            ..Self::echo_request(id, seq, data)
        }
    }

    /// A destination unreachable error quoting `original`.
    pub fn dest_unreachable(code: u8, original: Vec<u8>) -> Self {
        Self::new(1, code, [0; 4], original)
    }

    /// A neighbour solicitation for `target`, with a source link-layer option when given.
    pub fn neighbor_solicitation(target: Ipv6Addr, source_mac: Option<MacAddr>) -> Self {
        let mut body = target.octets().to_vec();
        if let Some(mac) = source_mac {
            body.extend_from_slice(&ll_option(OPT_SOURCE_LL, mac));
        }
        Self::new(135, 0, [0; 4], body)
    }

    /// A neighbour advertisement for `target` with flags R, S, O and a target link-layer option.
    pub fn neighbor_advertisement(
        target: Ipv6Addr,
        router: bool,
        solicited: bool,
        override_flag: bool,
        target_mac: Option<MacAddr>,
    ) -> Self {
        let flags =
            (u8::from(router) << 7) | (u8::from(solicited) << 6) | (u8::from(override_flag) << 5);
        let mut body = target.octets().to_vec();
        if let Some(mac) = target_mac {
            body.extend_from_slice(&ll_option(OPT_TARGET_LL, mac));
        }
        Self::new(136, 0, [flags, 0, 0, 0], body)
    }

    /// A router solicitation, with a source link-layer option when given.
    pub fn router_solicitation(source_mac: Option<MacAddr>) -> Self {
        let body = source_mac
            .map(|m| ll_option(OPT_SOURCE_LL, m).to_vec())
            .unwrap_or_default();
        Self::new(133, 0, [0; 4], body)
    }

    /// The typed reading.
    pub fn kind(&self) -> Icmpv6Kind {
        let r = self.rest_of_header;
        let word = u32::from_be_bytes(r);
        let target = <[u8; 16]>::try_from(self.payload.get(..16).unwrap_or_default())
            .ok()
            .map(Ipv6Addr::from);
        match self.icmp_type {
            1 => Icmpv6Kind::DestUnreachable { code: self.code },
            2 => Icmpv6Kind::PacketTooBig { mtu: word },
            3 => Icmpv6Kind::TimeExceeded { code: self.code },
            4 => Icmpv6Kind::ParameterProblem {
                code: self.code,
                pointer: word,
            },
            128 | 129 => {
                let id = u16::from_be_bytes([r[0], r[1]]);
                let seq = u16::from_be_bytes([r[2], r[3]]);
                if self.icmp_type == 128 {
                    Icmpv6Kind::EchoRequest { id, seq }
                } else {
                    Icmpv6Kind::EchoReply { id, seq }
                }
            }
            130 => Icmpv6Kind::MldQuery,
            131 => Icmpv6Kind::MldReport,
            132 => Icmpv6Kind::MldDone,
            143 => Icmpv6Kind::Mldv2Report,
            133 => Icmpv6Kind::RouterSolicitation,
            134 => Icmpv6Kind::RouterAdvertisement,
            135 => Icmpv6Kind::NeighborSolicitation { target },
            136 => Icmpv6Kind::NeighborAdvertisement {
                target,
                router: r[0] & 0x80 != 0,
                solicited: r[0] & 0x40 != 0,
                override_flag: r[0] & 0x20 != 0,
            },
            137 => Icmpv6Kind::Redirect,
            icmp_type => Icmpv6Kind::Other {
                icmp_type,
                code: self.code,
            },
        }
    }

    pub(crate) fn emit(&self, pseudo: &Pseudo, faults: &Faults) -> Vec<u8> {
        let mut bytes = vec![self.icmp_type, self.code, 0, 0];
        bytes.extend_from_slice(&self.rest_of_header);
        bytes.extend_from_slice(&self.payload);
        let sum = transport_checksum(pseudo, 58, &bytes);
        let sum = ChecksumFault::apply(faults.transport_checksum, sum);
        if let Some(c) = bytes.get_mut(2..4) {
            c.copy_from_slice(&sum.to_be_bytes());
        }
        bytes
    }
}

/// Parses the ICMPv6 message that fills `bytes`, at `offset`.
pub(crate) fn parse(
    bytes: &[u8],
    offset: usize,
    pseudo: &Pseudo,
) -> Result<Icmpv6Message, ParseError> {
    let s = Icmpv6Slice::from_slice(bytes)
        .map_err(|e| ParseError::from_len(Layer::Icmpv6, offset, &e))?;
    Ok(Icmpv6Message {
        icmp_type: s.type_u8(),
        code: s.code_u8(),
        rest_of_header: s.bytes5to8(),
        payload: bytes
            .get(Icmpv6Message::HEADER_LEN..)
            .unwrap_or_default()
            .to_vec(),
        checksum: s.checksum(),
        checksum_valid: transport_checksum(pseudo, 58, bytes) == 0,
    })
}

impl fmt::Display for Icmpv6Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |t: &Option<Ipv6Addr>| t.map_or_else(|| "?".to_string(), |a| a.to_string());
        match self {
            Icmpv6Kind::DestUnreachable { code: 4 } => f.write_str("unreachable port"),
            Icmpv6Kind::DestUnreachable { code } => write!(f, "unreachable code {code}"),
            Icmpv6Kind::PacketTooBig { mtu } => write!(f, "packet too big, mtu {mtu}"),
            Icmpv6Kind::TimeExceeded { code: 0 } => f.write_str("time exceeded in-transit"),
            Icmpv6Kind::TimeExceeded { code } => write!(f, "time exceeded code {code}"),
            Icmpv6Kind::ParameterProblem { code, pointer } => {
                write!(f, "parameter problem code {code} pointer {pointer}")
            }
            Icmpv6Kind::EchoRequest { id, seq } => write!(f, "echo request, id {id}, seq {seq}"),
            Icmpv6Kind::EchoReply { id, seq } => write!(f, "echo reply, id {id}, seq {seq}"),
            Icmpv6Kind::MldQuery => f.write_str("multicast listener query"),
            Icmpv6Kind::MldReport => f.write_str("multicast listener report"),
            Icmpv6Kind::MldDone => f.write_str("multicast listener done"),
            Icmpv6Kind::Mldv2Report => f.write_str("multicast listener report v2"),
            Icmpv6Kind::RouterSolicitation => f.write_str("router solicitation"),
            Icmpv6Kind::RouterAdvertisement => f.write_str("router advertisement"),
            Icmpv6Kind::NeighborSolicitation { target } => {
                write!(f, "neighbor solicitation, who has {}", addr(target))
            }
            Icmpv6Kind::NeighborAdvertisement {
                target,
                router,
                solicited,
                override_flag,
            } => {
                write!(f, "neighbor advertisement, tgt is {}", addr(target))?;
                let flags: String = [(*router, 'R'), (*solicited, 'S'), (*override_flag, 'O')]
                    .iter()
                    .filter(|(set, _)| *set)
                    .map(|(_, c)| *c)
                    .collect();
                if !flags.is_empty() {
                    write!(f, " [{flags}]")?;
                }
                Ok(())
            }
            Icmpv6Kind::Redirect => f.write_str("redirect"),
            Icmpv6Kind::Other { icmp_type, code } => write!(f, "type {icmp_type} code {code}"),
        }
    }
}

impl fmt::Display for Icmpv6Message {
    /// `ICMP6 neighbor solicitation, who has fe80::1, length 24`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ICMP6 {}, length {}", self.kind(), self.payload.len())?;
        if !self.checksum_valid {
            write!(f, " [bad icmp6 cksum {:04x}]", self.checksum)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSEUDO: Pseudo = Pseudo::V6 {
        src: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        dst: [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2],
    };

    #[test]
    fn neighbor_discovery_kinds() {
        let target: Ipv6Addr = "fe80::2".parse().unwrap();
        let ns = Icmpv6Message::neighbor_solicitation(target, Some(MacAddr([2, 0, 0, 0, 0, 1])));
        let p = parse(&ns.emit(&PSEUDO, &Faults::default()), 54, &PSEUDO).unwrap();
        assert!(p.checksum_valid);
        assert_eq!(
            p.kind(),
            Icmpv6Kind::NeighborSolicitation {
                target: Some(target)
            }
        );
        let na = Icmpv6Message::neighbor_advertisement(target, false, true, true, None);
        assert_eq!(
            na.kind().to_string(),
            "neighbor advertisement, tgt is fe80::2 [SO]"
        );
        assert_eq!(
            Icmpv6Message::router_solicitation(None).kind(),
            Icmpv6Kind::RouterSolicitation
        );
        let mld = Icmpv6Message::new(143, 0, [0; 4], vec![]);
        assert_eq!(mld.kind(), Icmpv6Kind::Mldv2Report);
        // The checksum covers the pseudo-header: another destination makes it wrong.
        let other = Pseudo::V6 {
            src: [0; 16],
            dst: [0; 16],
        };
        assert!(
            !parse(&ns.emit(&PSEUDO, &Faults::default()), 54, &other)
                .unwrap()
                .checksum_valid
        );
    }
}
