//! IPv4 packets (RFC 791).
//!
//! Parsing never panics. A header or total length that does not fit gives a [`ParseError`]
//! with [`Layer::Ipv4`] (`needed` = the total length field, `present` = the bytes after the
//! Ethernet/VLAN headers); a total length below the header length, a wrong version or an IHL
//! below 5 are content errors. Bytes after the total length (Ethernet padding) are returned
//! to the caller, which keeps them as the frame's trailer. A bad header checksum gives
//! `checksum_valid == false`. Fragments (MF set or a non-zero offset) carry
//! [`Transport::Fragment`] and are not reassembled.

use std::fmt;
use std::net::Ipv4Addr;

use etherparse::{IpFragOffset, IpNumber, Ipv4Header};
use serde::{Deserialize, Serialize};

use super::builder::{ChecksumFault, Faults};
use super::error::{Layer, ParseError};
use super::{Pseudo, Transport, transport_checksum};

/// An IPv4 packet and its payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ipv4Packet {
    /// Differentiated services code point (6 bits).
    pub dscp: u8,
    /// Explicit congestion notification (2 bits).
    pub ecn: u8,
    /// Identification.
    pub identification: u16,
    /// DF flag.
    pub dont_fragment: bool,
    /// MF flag.
    pub more_fragments: bool,
    /// Fragment offset in units of 8 bytes (13 bits).
    pub fragment_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Options, raw; emit zero-pads them to a multiple of 4 and cuts them at 40 bytes.
    pub options: Vec<u8>,
    /// The header checksum as on the wire; emit computes its own.
    pub checksum: u16,
    /// Whether it was correct.
    pub checksum_valid: bool,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The payload; its variant gives the protocol number.
    pub transport: Transport,
}

impl Ipv4Packet {
    /// Header length without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// A packet with TTL 64, DF set and no options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, transport: Transport) -> Self {
        Ipv4Packet {
            dscp: 0,
            ecn: 0,
            identification: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            ttl: 64,
            options: Vec::new(),
            checksum: 0,
            checksum_valid: true,
            src,
            dst,
            transport,
        }
    }

    pub(crate) fn pseudo(&self) -> Pseudo {
        Pseudo::V4 {
            src: self.src.octets(),
            dst: self.dst.octets(),
        }
    }

    fn header(&self, payload_len: usize, faults: &Faults) -> Ipv4Header {
        let mut h = Ipv4Header {
            dscp: etherparse::IpDscp::try_new(self.dscp & 0x3f).unwrap_or_default(),
            ecn: etherparse::IpEcn::try_new(self.ecn & 0x3).unwrap_or_default(),
            identification: self.identification,
            dont_fragment: self.dont_fragment,
            more_fragments: self.more_fragments,
            fragment_offset: IpFragOffset::try_new(self.fragment_offset & 0x1fff)
                .unwrap_or(IpFragOffset::ZERO),
            time_to_live: self.ttl,
            protocol: IpNumber(self.transport.protocol()),
            source: self.src.octets(),
            destination: self.dst.octets(),
            ..Ipv4Header::default()
        };
        let mut options = self.options.clone();
        options.truncate(40);
        options.resize(options.len().div_ceil(4) * 4, 0);
        // A multiple of 4 of at most 40 bytes: cannot fail.
        h.options = etherparse::Ipv4Options::try_from(options.as_slice()).unwrap_or_default();
        let total = h.header_len() + payload_len;
        h.total_len = faults
            .ipv4_total_len
            .unwrap_or_else(|| u16::try_from(total).unwrap_or(u16::MAX));
        h.header_checksum = ChecksumFault::apply(faults.ipv4_checksum, h.calc_header_checksum());
        h
    }

    /// The header checksum emit would write.
    pub fn computed_checksum(&self) -> u16 {
        let payload = self.transport.emit(&self.pseudo(), &Faults::default());
        self.header(payload.len(), &Faults::default())
            .header_checksum
    }

    /// Sets the header checksum and the transport's checksum to what emit writes.
    pub(crate) fn fill_computed(&mut self) {
        let pseudo = self.pseudo();
        self.transport.fill_computed(&pseudo);
        self.checksum = self.computed_checksum();
        self.checksum_valid = true;
    }

    pub(crate) fn emit(&self, faults: &Faults, out: &mut Vec<u8>) {
        let payload = self.transport.emit(&self.pseudo(), faults);
        out.extend_from_slice(&self.header(payload.len(), faults).to_bytes());
        out.extend_from_slice(&payload);
    }
}

/// Parses the IPv4 packet at the start of `bytes` (which sits at `offset` in the frame);
/// returns it and the number of bytes its total length covers.
pub(crate) fn parse(bytes: &[u8], offset: usize) -> Result<(Ipv4Packet, usize), ParseError> {
    use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
    let (h, _) = Ipv4Header::from_slice(bytes).map_err(|e| match e {
        HeaderSliceError::Len(l) => ParseError::from_len(Layer::Ipv4, offset, &l),
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number }) => {
            ParseError::content(
                Layer::Ipv4,
                offset,
                format!("version {version_number}, expected 4"),
            )
        }
        HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { ihl }) => {
            ParseError::content(
                Layer::Ipv4,
                offset,
                format!("IHL {ihl} is below the minimum of 5"),
            )
        }
    })?;
    let header_len = h.header_len();
    let total = usize::from(h.total_len);
    if total < header_len {
        return Err(ParseError::content(
            Layer::Ipv4,
            offset,
            format!("total length {total} is below the header length {header_len}"),
        ));
    }
    let (Some(header), Some(payload)) = (bytes.get(..header_len), bytes.get(header_len..total))
    else {
        return Err(ParseError::length(Layer::Ipv4, offset, total, bytes.len()));
    };
    let mut packet = Ipv4Packet {
        dscp: h.dscp.value(),
        ecn: h.ecn.value(),
        identification: h.identification,
        dont_fragment: h.dont_fragment,
        more_fragments: h.more_fragments,
        fragment_offset: h.fragment_offset.value(),
        ttl: h.time_to_live,
        options: h.options.as_slice().to_vec(),
        checksum: h.header_checksum,
        checksum_valid: transport_checksum(&Pseudo::None, 0, header) == 0,
        src: Ipv4Addr::from(h.source),
        dst: Ipv4Addr::from(h.destination),
        transport: Transport::Unknown {
            protocol: h.protocol.0,
            payload: Vec::new(),
        },
    };
    let fragment = h.is_fragmenting_payload();
    packet.transport = Transport::parse(
        h.protocol.0,
        payload,
        offset + header_len,
        &packet.pseudo(),
        fragment,
    )?;
    Ok((packet, total))
}

impl fmt::Display for Ipv4Packet {
    /// `IP 10.0.0.1 > 10.0.0.2: ttl 64, <transport>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IP {} > {}: ttl {}", self.src, self.dst, self.ttl)?;
        if !self.checksum_valid {
            write!(f, " [bad ip cksum {:04x}]", self.checksum)?;
        }
        write!(f, ", {}", self.transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UdpDatagram;

    fn packet() -> Ipv4Packet {
        Ipv4Packet::new(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            Transport::Udp(UdpDatagram::new(1, 2, vec![9; 4])),
        )
    }

    #[test]
    fn header_errors() {
        let mut bytes = Vec::new();
        packet().emit(&Faults::default(), &mut bytes);
        assert_eq!(bytes.len(), 32);
        let (p, len) = parse(&bytes, 14).unwrap();
        assert_eq!((len, p.checksum_valid), (32, true));
        assert_eq!(
            parse(&bytes[..19], 14),
            Err(ParseError::length(Layer::Ipv4, 14, 20, 19))
        );
        assert_eq!(
            parse(&bytes[..30], 14),
            Err(ParseError::length(Layer::Ipv4, 14, 32, 30))
        );
        let mut v6 = bytes.clone();
        v6[0] = 0x65;
        assert_eq!(
            parse(&v6, 14).unwrap_err().to_string(),
            "IPv4 header at offset 14: version 6, expected 4"
        );
    }

    #[test]
    fn options_and_fragments() {
        let mut p = packet();
        p.options = vec![1, 1, 1];
        p.more_fragments = true;
        let mut bytes = Vec::new();
        p.emit(&Faults::default(), &mut bytes);
        assert_eq!(bytes[0], 0x46);
        let (q, _) = parse(&bytes, 14).unwrap();
        assert_eq!(q.options, vec![1, 1, 1, 0]);
        assert!(matches!(
            q.transport,
            Transport::Fragment { protocol: 17, .. }
        ));
    }
}
