//! ARP (RFC 826) packets.
//!
//! Ethernet/IPv4 shaped packets (hardware length 6, protocol length 4, whatever the type
//! fields say) become an [`ArpRepr`] with typed addresses; any other lengths become an
//! [`ArpRaw`] that keeps the raw address bytes, so a check can send and observe ARP with a
//! hardware length of 8. Parsing never panics: a short packet gives a [`ParseError`] with
//! [`Layer::Arp`].

use std::fmt;
use std::net::Ipv4Addr;

use etherparse::{ArpHardwareId, ArpPacket, ArpPacketSlice, EtherType};
use serde::{Deserialize, Serialize};

use super::error::{Layer, ParseError};
use super::ethernet::MacAddr;

/// The ARP operation field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArpOperation {
    /// 1: who has ... ?
    Request,
    /// 2: ... is at ...
    Reply,
    /// Any other operation code, kept as is.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

/// An ARP packet with 6-byte hardware and 4-byte protocol addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArpRepr {
    /// Operation.
    pub operation: ArpOperation,
    /// Hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// Protocol type (0x0800 = IPv4).
    pub proto_type: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;

    /// The hardware address length this representation carries (always 6).
    pub const HW_LEN: u8 = 6;
    /// The protocol address length this representation carries (always 4).
    pub const PROTO_LEN: u8 = 4;

    /// An Ethernet/IPv4 request: who has `target_ip`? tell `sender_ip`.
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: ArpOperation::Request,
            hw_type: 1,
            proto_type: 0x0800,
            sender_mac,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        }
    }

    /// An Ethernet/IPv4 reply: `sender_ip` is at `sender_mac`, to `target`.
    pub fn reply(
        sender_mac: MacAddr,
        sender_ip: Ipv4Addr,
        target_mac: MacAddr,
        target_ip: Ipv4Addr,
    ) -> Self {
        ArpRepr {
            operation: ArpOperation::Reply,
            target_mac,
            ..ArpRepr::request(sender_mac, sender_ip, target_ip)
        }
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        ArpRaw::from(*self).emit(out);
    }
}

/// An ARP packet with address lengths other than 6/4, addresses kept as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArpRaw {
    /// Operation.
    pub operation: ArpOperation,
    /// Hardware type.
    pub hw_type: u16,
    /// Protocol type.
    pub proto_type: u16,
    /// Sender hardware address; its length is the hardware length written on emit.
    pub sender_hw: Vec<u8>,
    /// Sender protocol address; its length is the protocol length written on emit.
    pub sender_proto: Vec<u8>,
    /// Target hardware address (zero-padded or cut to the sender's length on emit).
    pub target_hw: Vec<u8>,
    /// Target protocol address (zero-padded or cut to the sender's length on emit).
    pub target_proto: Vec<u8>,
}

impl ArpRaw {
    /// The hardware address length (at most 255).
    pub fn hw_len(&self) -> u8 {
        u8::try_from(self.sender_hw.len()).unwrap_or(u8::MAX)
    }

    /// The protocol address length (at most 255).
    pub fn proto_len(&self) -> u8 {
        u8::try_from(self.sender_proto.len()).unwrap_or(u8::MAX)
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        let fit = |v: &[u8], len: usize| {
            let mut v = v.to_vec();
            v.resize(len, 0);
            v
        };
        let hw = usize::from(self.hw_len());
        let proto = usize::from(self.proto_len());
        // Lengths are equalised and capped above, so `new` cannot fail.
        if let Ok(packet) = ArpPacket::new(
            ArpHardwareId(self.hw_type),
            EtherType(self.proto_type),
            etherparse::ArpOperation(self.operation.into()),
            &fit(&self.sender_hw, hw),
            &fit(&self.sender_proto, proto),
            &fit(&self.target_hw, hw),
            &fit(&self.target_proto, proto),
        ) {
            out.extend_from_slice(&packet.to_bytes());
        }
    }
}

impl From<ArpRepr> for ArpRaw {
    fn from(a: ArpRepr) -> Self {
        ArpRaw {
            operation: a.operation,
            hw_type: a.hw_type,
            proto_type: a.proto_type,
            sender_hw: a.sender_mac.0.to_vec(),
            sender_proto: a.sender_ip.octets().to_vec(),
            target_hw: a.target_mac.0.to_vec(),
            target_proto: a.target_ip.octets().to_vec(),
        }
    }
}

/// A parsed ARP packet: typed when the lengths are 6/4, raw otherwise.
pub(crate) enum Parsed {
    Eth(ArpRepr),
    Raw(ArpRaw),
}

/// Parses the ARP packet at `offset`; returns it and its length.
pub(crate) fn parse(bytes: &[u8], offset: usize) -> Result<(Parsed, usize), ParseError> {
    let s = ArpPacketSlice::from_slice(bytes)
        .map_err(|e| ParseError::from_len(Layer::Arp, offset, &e))?;
    let len = s.slice().len();
    let operation = ArpOperation::from(s.operation().0);
    let hw_type = s.hw_addr_type().0;
    let proto_type = s.proto_addr_type().0;
    let typed = (
        <[u8; 6]>::try_from(s.sender_hw_addr()),
        <[u8; 4]>::try_from(s.sender_protocol_addr()),
        <[u8; 6]>::try_from(s.target_hw_addr()),
        <[u8; 4]>::try_from(s.target_protocol_addr()),
    );
    let parsed = match typed {
        (Ok(sm), Ok(si), Ok(tm), Ok(ti)) => Parsed::Eth(ArpRepr {
            operation,
            hw_type,
            proto_type,
            sender_mac: MacAddr(sm),
            sender_ip: Ipv4Addr::from(si),
            target_mac: MacAddr(tm),
            target_ip: Ipv4Addr::from(ti),
        }),
        _ => Parsed::Raw(ArpRaw {
            operation,
            hw_type,
            proto_type,
            sender_hw: s.sender_hw_addr().to_vec(),
            sender_proto: s.sender_protocol_addr().to_vec(),
            target_hw: s.target_hw_addr().to_vec(),
            target_proto: s.target_protocol_addr().to_vec(),
        }),
    };
    Ok((parsed, len))
}

impl fmt::Display for ArpRepr {
    /// `who-has 10.0.0.2 tell 10.0.0.1` or `10.0.0.2 is-at aa:bb:cc:dd:ee:ff`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            ArpOperation::Request => {
                write!(f, "ARP who-has {} tell {}", self.target_ip, self.sender_ip)
            }
            ArpOperation::Reply => write!(f, "ARP {} is-at {}", self.sender_ip, self.sender_mac),
            ArpOperation::Unknown(op) => write!(
                f,
                "ARP op {op} sender {} {} target {} {}",
                self.sender_ip, self.sender_mac, self.target_ip, self.target_mac
            ),
        }
    }
}

impl fmt::Display for ArpRaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ARP op {} hw type {} len {} proto 0x{:04x} len {}",
            u16::from(self.operation),
            self.hw_type,
            self.hw_len(),
            self.proto_type,
            self.proto_len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(a: &ArpRaw) -> Vec<u8> {
        let mut out = Vec::new();
        a.emit(&mut out);
        out
    }

    #[test]
    fn request_round_trip() {
        let r = ArpRepr::request(
            MacAddr([2, 0, 0, 0, 0, 1]),
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
        );
        let mut out = Vec::new();
        r.emit(&mut out);
        assert_eq!(out.len(), ArpRepr::LEN);
        assert_eq!(&out[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        match parse(&out, 14) {
            Ok((Parsed::Eth(p), 28)) => assert_eq!(p, r),
            _ => panic!("expected typed ARP"),
        }
        assert_eq!(r.to_string(), "ARP who-has 10.0.0.2 tell 10.0.0.1");
    }

    #[test]
    fn hardware_length_eight_is_kept_raw() {
        let a = ArpRaw {
            operation: ArpOperation::Request,
            hw_type: 1,
            proto_type: 0x0800,
            sender_hw: vec![1, 2, 3, 4, 5, 6, 7, 8],
            sender_proto: vec![10, 0, 0, 1],
            target_hw: vec![],
            target_proto: vec![10, 0, 0, 2],
        };
        let out = emitted(&a);
        assert_eq!(out.len(), 8 + 2 * 8 + 2 * 4);
        assert_eq!(out[4], 8);
        match parse(&out, 14) {
            Ok((Parsed::Raw(p), 32)) => {
                assert_eq!(p.sender_hw, a.sender_hw);
                assert_eq!(p.target_hw, vec![0; 8]);
            }
            _ => panic!("expected raw ARP"),
        }
        // Cut short: the error says how many bytes the lengths call for.
        let e = parse(&out[..28], 14).err();
        assert_eq!(e, Some(ParseError::length(Layer::Arp, 14, 32, 28)));
    }
}
