//! UDP datagrams (RFC 768).
//!
//! Parsing never panics. A length field larger than the bytes present gives a
//! [`ParseError`] with [`Layer::Udp`] and `needed` = that length; a length field below 8 is a
//! content error; a length field below the bytes present limits the payload (the excess is
//! not kept). A checksum of zero over IPv4 means "none" and gives `checksum_valid == None`.

use std::fmt;

use etherparse::{LenSource, UdpHeader, UdpSlice};
use serde::{Deserialize, Serialize};

use super::builder::{ChecksumFault, Faults};
use super::error::{Layer, ParseError};
use super::{Pseudo, transport_checksum};

/// A UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct UdpDatagram {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: Vec<u8>,
    /// The checksum as on the wire; emit computes its own.
    pub checksum: u16,
    /// Whether it was correct; `None` when absent (zero over IPv4).
    pub checksum_valid: Option<bool>,
}

impl UdpDatagram {
    /// Header length.
    pub const HEADER_LEN: usize = 8;

    /// A datagram with the given ports and payload.
    pub fn new(src_port: u16, dst_port: u16, payload: Vec<u8>) -> Self {
        UdpDatagram {
            src_port,
            dst_port,
            payload,
            ..UdpDatagram::default()
        }
    }

    pub(crate) fn emit(&self, pseudo: &Pseudo, faults: &Faults) -> Vec<u8> {
        let len = u16::try_from(Self::HEADER_LEN + self.payload.len()).unwrap_or(u16::MAX);
        let header = UdpHeader {
            source_port: self.src_port,
            destination_port: self.dst_port,
            length: faults.udp_len.unwrap_or(len),
            checksum: 0,
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&self.payload);
        let sum = match transport_checksum(pseudo, 17, &bytes) {
            0 => 0xffff,
            s => s,
        };
        let sum = ChecksumFault::apply(faults.transport_checksum, sum);
        if let Some(c) = bytes.get_mut(6..8) {
            c.copy_from_slice(&sum.to_be_bytes());
        }
        bytes
    }
}

/// Parses the UDP datagram at the start of `bytes` (the IP payload), at `offset`.
pub(crate) fn parse(
    bytes: &[u8],
    offset: usize,
    pseudo: &Pseudo,
) -> Result<UdpDatagram, ParseError> {
    let s = UdpSlice::from_slice(bytes).map_err(|e| {
        if e.len_source == LenSource::UdpHeaderLen {
            ParseError::content(
                Layer::Udp,
                offset,
                format!("length field {} is below the 8-byte header", e.len),
            )
        } else {
            ParseError::from_len(Layer::Udp, offset, &e)
        }
    })?;
    // etherparse takes a length field of 0 to mean "the rest of the slice" (an RFC 2675 §4
    // jumbogram); without a jumbo payload option, which the harness does not parse, it is a
    // length below the 8-byte header (RFC 768).
    if s.length() == 0 {
        return Err(ParseError::content(
            Layer::Udp,
            offset,
            "length field 0 is below the 8-byte header".to_string(),
        ));
    }
    let datagram = s.slice();
    let checksum = s.checksum();
    let checksum_valid = match (checksum, pseudo) {
        (0, Pseudo::V4 { .. }) => None,
        _ => Some(transport_checksum(pseudo, 17, datagram) == 0),
    };
    Ok(UdpDatagram {
        src_port: s.source_port(),
        dst_port: s.destination_port(),
        payload: s.payload().to_vec(),
        checksum,
        checksum_valid,
    })
}

impl fmt::Display for UdpDatagram {
    /// `5353 > 53: UDP, length 12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {}: UDP, length {}",
            self.src_port,
            self.dst_port,
            self.payload.len()
        )?;
        if self.checksum_valid == Some(false) {
            write!(f, " [bad udp cksum {:04x}]", self.checksum)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSEUDO: Pseudo = Pseudo::V4 {
        src: [10, 0, 0, 1],
        dst: [10, 0, 0, 2],
    };

    #[test]
    fn round_trip_and_checksum() {
        let d = UdpDatagram::new(1000, 53, b"hello".to_vec());
        let bytes = d.emit(&PSEUDO, &Faults::default());
        assert_eq!(&bytes[4..6], &[0, 13]);
        let p = parse(&bytes, 34, &PSEUDO).unwrap();
        assert_eq!(
            (p.payload.as_slice(), p.checksum_valid),
            (&b"hello"[..], Some(true))
        );
        let mut zero = bytes.clone();
        zero[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(
            parse(&zero, 34, &PSEUDO).map(|p| p.checksum_valid),
            Ok(None)
        );
    }

    #[test]
    fn lying_lengths() {
        let d = UdpDatagram::new(1000, 53, b"hello".to_vec());
        let long = d.emit(
            &PSEUDO,
            &Faults {
                udp_len: Some(40),
                ..Faults::default()
            },
        );
        assert_eq!(
            parse(&long, 34, &PSEUDO),
            Err(ParseError::length(Layer::Udp, 34, 40, 13))
        );
        let tiny = d.emit(
            &PSEUDO,
            &Faults {
                udp_len: Some(4),
                ..Faults::default()
            },
        );
        assert_eq!(
            parse(&tiny, 34, &PSEUDO).unwrap_err().to_string(),
            "UDP header at offset 34: length field 4 is below the 8-byte header"
        );
        let short = d.emit(
            &PSEUDO,
            &Faults {
                udp_len: Some(10),
                ..Faults::default()
            },
        );
        let p = parse(&short, 34, &PSEUDO).unwrap();
        assert_eq!((p.payload.len(), p.checksum_valid), (2, Some(false)));
    }
}
