//! IPv6 packets (RFC 8200) and their extension headers.
//!
//! Parsing never panics. A payload length beyond the bytes present gives a [`ParseError`]
//! with [`Layer::Ipv6`] (`needed` = 40 + payload length); an extension header that does not
//! fit gives [`Layer::Ipv6Ext`] at its own offset. Extension headers (hop-by-hop 0, routing
//! 43, fragment 44, authentication 51, destination options 60) are kept raw, in order.
//! Fragments carry [`Transport::Fragment`] and are not reassembled. The upper-layer
//! checksum uses the IPv6 destination field, even when a routing header is present.

use std::fmt;
use std::net::Ipv6Addr;

use etherparse::{
    IpAuthHeader, IpNumber, Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
};
use serde::{Deserialize, Serialize};

use super::builder::Faults;
use super::error::{Layer, ParseError};
use super::{Pseudo, Transport};

/// One IPv6 extension header, kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv6ExtHeader {
    /// The IP protocol number naming this header (0, 43, 44, 51 or 60).
    pub protocol: u8,
    /// The header after its next-header and length bytes. Emit pads it with zeros to the
    /// header's granularity (8 bytes; 4 for authentication, at least 12 in all; exactly 8
    /// for fragment headers, whose reserved second byte is written as zero).
    pub data: Vec<u8>,
}

impl Ipv6ExtHeader {
    /// True for the protocol numbers parsed as extension headers.
    pub fn is_extension(protocol: u8) -> bool {
        matches!(protocol, 0 | 43 | 44 | 51 | 60)
    }

    /// A fragment header: offset in 8-byte units, more-fragments flag, identification.
    pub fn fragment(offset: u16, more: bool, id: u32) -> Self {
        let [a, b] = ((offset << 3) | u16::from(more)).to_be_bytes();
        let mut data = vec![a, b];
        data.extend_from_slice(&id.to_be_bytes());
        Ipv6ExtHeader { protocol: 44, data }
    }

    /// For a fragment header: (offset in 8-byte units, more fragments, identification).
    pub fn fragment_info(&self) -> Option<(u16, bool, u32)> {
        match (self.protocol, self.data.as_slice()) {
            (44, [a, b, c, d, e, f, ..]) => {
                let word = u16::from_be_bytes([*a, *b]);
                Some((
                    word >> 3,
                    word & 1 == 1,
                    u32::from_be_bytes([*c, *d, *e, *f]),
                ))
            }
            _ => None,
        }
    }

    fn emit(&self, next_header: u8, out: &mut Vec<u8>) {
        let mut data = self.data.clone();
        let len_byte = match self.protocol {
            44 => {
                data.resize(6, 0);
                0
            }
            51 => {
                data.truncate(1020);
                data.resize(((2 + data.len()).div_ceil(4) * 4).max(12) - 2, 0);
                ((2 + data.len()) / 4 - 2) as u8
            }
            _ => {
                data.truncate(2046);
                data.resize(((2 + data.len()).div_ceil(8) * 8) - 2, 0);
                ((2 + data.len()) / 8 - 1) as u8
            }
        };
        out.extend_from_slice(&[next_header, len_byte]);
        out.extend_from_slice(&data);
    }
}

/// An IPv6 packet and its payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv6Packet {
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Extension headers in wire order.
    pub extensions: Vec<Ipv6ExtHeader>,
    /// The payload after the extension headers; its variant gives the protocol number.
    pub transport: Transport,
}

impl Ipv6Packet {
    /// Fixed header length.
    pub const HEADER_LEN: usize = 40;

    /// A packet with hop limit 64 and no extension headers.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, transport: Transport) -> Self {
        Ipv6Packet {
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 64,
            src,
            dst,
            extensions: Vec::new(),
            transport,
        }
    }

    pub(crate) fn pseudo(&self) -> Pseudo {
        Pseudo::V6 {
            src: self.src.octets(),
            dst: self.dst.octets(),
        }
    }

    /// Sets the transport's checksum to what emit writes.
    pub(crate) fn fill_computed(&mut self) {
        let pseudo = self.pseudo();
        self.transport.fill_computed(&pseudo);
    }

    pub(crate) fn emit(&self, faults: &Faults, out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        for (i, ext) in self.extensions.iter().enumerate() {
            let next = self
                .extensions
                .get(i + 1)
                .map_or_else(|| self.transport.protocol(), |e| e.protocol);
            ext.emit(next, &mut payload);
        }
        payload.extend(self.transport.emit(&self.pseudo(), faults));
        let header = Ipv6Header {
            traffic_class: self.traffic_class,
            flow_label: Ipv6FlowLabel::try_new(self.flow_label & 0xf_ffff).unwrap_or_default(),
            payload_length: faults
                .ipv6_payload_len
                .unwrap_or_else(|| u16::try_from(payload.len()).unwrap_or(u16::MAX)),
            next_header: IpNumber(
                self.extensions
                    .first()
                    .map_or_else(|| self.transport.protocol(), |e| e.protocol),
            ),
            hop_limit: self.hop_limit,
            source: self.src.octets(),
            destination: self.dst.octets(),
        };
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&payload);
    }
}

/// Parses the IPv6 packet at the start of `bytes` (at `offset` in the frame); returns it and
/// the number of bytes its payload length covers.
pub(crate) fn parse(bytes: &[u8], offset: usize) -> Result<(Ipv6Packet, usize), ParseError> {
    use etherparse::err::ipv6::{HeaderError, HeaderSliceError};
    let (h, _) = Ipv6Header::from_slice(bytes).map_err(|e| match e {
        HeaderSliceError::Len(l) => ParseError::from_len(Layer::Ipv6, offset, &l),
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number }) => {
            ParseError::content(
                Layer::Ipv6,
                offset,
                format!("version {version_number}, expected 6"),
            )
        }
    })?;
    let total = Ipv6Packet::HEADER_LEN + usize::from(h.payload_length);
    let Some(mut rest) = bytes.get(Ipv6Packet::HEADER_LEN..total) else {
        return Err(ParseError::length(Layer::Ipv6, offset, total, bytes.len()));
    };
    let mut at = offset + Ipv6Packet::HEADER_LEN;
    let mut next = h.next_header.0;
    let mut extensions = Vec::new();
    let mut fragment = false;
    while Ipv6ExtHeader::is_extension(next) {
        let len_err = |e: etherparse::err::LenError| ParseError::from_len(Layer::Ipv6Ext, at, &e);
        let (following, len) = match next {
            44 => {
                let (f, _) = Ipv6FragmentHeader::from_slice(rest).map_err(len_err)?;
                fragment |= f.is_fragmenting_payload();
                (f.next_header.0, f.header_len())
            }
            51 => {
                use etherparse::err::ip_auth::HeaderSliceError as E;
                let (a, _) = IpAuthHeader::from_slice(rest).map_err(|e| match e {
                    E::Len(l) => len_err(l),
                    E::Content(c) => ParseError::content(Layer::Ipv6Ext, at, c.to_string()),
                })?;
                (a.next_header.0, a.header_len())
            }
            _ => {
                let (r, _) = Ipv6RawExtHeader::from_slice(rest).map_err(len_err)?;
                (r.next_header.0, r.header_len())
            }
        };
        extensions.push(Ipv6ExtHeader {
            protocol: next,
            data: rest.get(2..len).unwrap_or_default().to_vec(),
        });
        rest = rest.get(len..).unwrap_or_default();
        at += len;
        next = following;
    }
    let mut packet = Ipv6Packet {
        traffic_class: h.traffic_class,
        flow_label: h.flow_label.value(),
        hop_limit: h.hop_limit,
        src: Ipv6Addr::from(h.source),
        dst: Ipv6Addr::from(h.destination),
        extensions,
        transport: Transport::Unknown {
            protocol: next,
            payload: Vec::new(),
        },
    };
    packet.transport = Transport::parse(next, rest, at, &packet.pseudo(), fragment)?;
    Ok((packet, total))
}

impl fmt::Display for Ipv6Packet {
    /// `IP6 fe80::1 > fe80::2: hlim 64, <transport>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IP6 {} > {}: hlim {}",
            self.src, self.dst, self.hop_limit
        )?;
        for e in &self.extensions {
            write!(f, ", ext {}", e.protocol)?;
        }
        write!(f, ", {}", self.transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UdpDatagram;

    #[test]
    fn extensions_round_trip_and_errors() {
        let mut p = Ipv6Packet::new(
            "fe80::1".parse().unwrap(),
            "fe80::2".parse().unwrap(),
            Transport::Udp(UdpDatagram::new(1, 2, vec![7; 3])),
        );
        p.extensions = vec![
            Ipv6ExtHeader {
                protocol: 0,
                data: vec![1, 4, 0, 0, 0, 0],
            },
            Ipv6ExtHeader {
                protocol: 51,
                data: vec![0; 10],
            },
            Ipv6ExtHeader::fragment(0, false, 99),
        ];
        let mut bytes = Vec::new();
        p.emit(&Faults::default(), &mut bytes);
        assert_eq!(bytes.len(), 40 + 8 + 12 + 8 + 11);
        let (q, len) = parse(&bytes, 14).unwrap();
        assert_eq!(len, bytes.len());
        assert_eq!(q.extensions, p.extensions);
        assert_eq!(q.extensions[2].fragment_info(), Some((0, false, 99)));
        assert!(matches!(q.transport, Transport::Udp(ref u) if u.checksum_valid == Some(true)));
        // Lie about the hop-by-hop length: it now runs past the payload.
        let mut bad = bytes.clone();
        bad[41] = 20;
        assert_eq!(
            parse(&bad, 14),
            Err(ParseError::length(Layer::Ipv6Ext, 54, 168, 39))
        );
        assert_eq!(
            parse(&bytes[..50], 14),
            Err(ParseError::length(Layer::Ipv6, 14, 79, 50))
        );
    }
}
