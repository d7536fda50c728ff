//! Ethernet II headers and 802.1Q / 802.1ad VLAN tags.
//!
//! Parsing never panics; a short frame gives a [`ParseError`] with [`Layer::Ethernet`] or
//! [`Layer::Vlan`].

use std::fmt;
use std::str::FromStr;

use etherparse::{EtherType, Ethernet2Header, SingleVlanHeader, VlanId, VlanPcp};
use serde::{Deserialize, Serialize};

use super::error::{Layer, ParseError};

/// A 48-bit Ethernet MAC address; displays as `aa:bb:cc:dd:ee:ff`, serialises as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00` (the unknown target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for group (multicast and broadcast) addresses.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The string was not six colon-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (expected aa:bb:cc:dd:ee:ff): {0:?}")]
pub struct MacAddrParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacAddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(|| MacAddrParseError(s.into()))?;
            if part.len() != 2 {
                return Err(MacAddrParseError(s.into()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacAddrParseError(s.into()))?;
        }
        if parts.next().is_some() {
            return Err(MacAddrParseError(s.into()));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Ether type numbers the parser knows.
pub mod ether_type {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag.
    pub const QINQ_OLD: u16 = 0x9100;

    /// True when the ether type announces a VLAN tag.
    pub fn is_vlan(value: u16) -> bool {
        matches!(value, VLAN | QINQ | QINQ_OLD)
    }
}

/// The Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EthernetRepr {
    /// Source MAC address.
    pub src: MacAddr,
    /// Destination MAC address.
    pub dst: MacAddr,
    /// The ether type field: a VLAN TPID when tags follow, else the network protocol.
    /// [`Frame::emit`](super::Frame::emit) writes the network protocol's number itself when
    /// there are no tags.
    pub ether_type: u16,
}

impl EthernetRepr {
    /// Header length in bytes.
    pub const LEN: usize = 14;
}

/// One 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VlanTag {
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
    /// The ether type after this tag: the next tag's TPID, or the network protocol (which
    /// [`Frame::emit`](super::Frame::emit) writes itself on the last tag).
    pub ether_type: u16,
}

impl VlanTag {
    /// Tag length in bytes.
    pub const LEN: usize = 4;

    /// A tag with priority 0 for `vid`; the ether type is filled in on emit.
    pub fn new(vid: u16) -> Self {
        VlanTag {
            pcp: 0,
            dei: false,
            vid,
            ether_type: 0,
        }
    }

    pub(crate) fn emit(&self, ether_type: u16, out: &mut Vec<u8>) {
        let header = SingleVlanHeader {
            pcp: VlanPcp::try_new(self.pcp & 0x7).unwrap_or(VlanPcp::ZERO),
            drop_eligible_indicator: self.dei,
            vlan_id: VlanId::try_new(self.vid & 0xfff).unwrap_or(VlanId::ZERO),
            ether_type: EtherType(ether_type),
        };
        out.extend_from_slice(&header.to_bytes());
    }
}

/// Parses the Ethernet header and any VLAN tags: returns them, the ether type of the
/// network layer and the offset where it starts.
pub(crate) fn parse(bytes: &[u8]) -> Result<(EthernetRepr, Vec<VlanTag>, u16, usize), ParseError> {
    let (eth, _) = Ethernet2Header::from_slice(bytes)
        .map_err(|e| ParseError::from_len(Layer::Ethernet, 0, &e))?;
    let ethernet = EthernetRepr {
        src: MacAddr(eth.source),
        dst: MacAddr(eth.destination),
        ether_type: eth.ether_type.0,
    };
    let mut offset = EthernetRepr::LEN;
    let mut next = ethernet.ether_type;
    let mut vlans = Vec::new();
    while ether_type::is_vlan(next) {
        let rest = bytes.get(offset..).unwrap_or_default();
        let (tag, _) = SingleVlanHeader::from_slice(rest)
            .map_err(|e| ParseError::from_len(Layer::Vlan, offset, &e))?;
        next = tag.ether_type.0;
        vlans.push(VlanTag {
            pcp: tag.pcp.value(),
            dei: tag.drop_eligible_indicator,
            vid: tag.vlan_id.value(),
            ether_type: next,
        });
        offset += VlanTag::LEN;
    }
    Ok((ethernet, vlans, next, offset))
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} > {}, ethertype 0x{:04x}",
            self.src, self.dst, self.ether_type
        )
    }
}

impl fmt::Display for VlanTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vlan {}, p {}", self.vid, self.pcp)?;
        if self.dei {
            f.write_str(", dei")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_parse() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0x01, 0x02, 0x03]);
        assert_eq!(m.to_string(), "aa:bb:cc:01:02:03");
        assert_eq!("aa:bb:cc:01:02:03".parse::<MacAddr>(), Ok(m));
        assert!("aa:bb:cc:01:02".parse::<MacAddr>().is_err());
        assert!("aa:bb:cc:01:02:03:04".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
        let json = serde_json::to_string(&m).expect("serialises");
        assert_eq!(json, "\"aa:bb:cc:01:02:03\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).ok(), Some(m));
    }

    #[test]
    fn short_ethernet_and_vlan() {
        let e = parse(&[0u8; 13]).unwrap_err();
        assert_eq!(e, ParseError::length(Layer::Ethernet, 0, 14, 13));
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[0x81, 0x00, 0, 5]);
        let e = parse(&b).unwrap_err();
        assert_eq!(e, ParseError::length(Layer::Vlan, 14, 4, 2));
    }

    #[test]
    fn parses_double_tag() {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&[0x88, 0xa8, 0x20, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
        let (eth, vlans, next, offset) = parse(&b).unwrap();
        assert_eq!(eth.ether_type, ether_type::QINQ);
        assert_eq!(vlans.len(), 2);
        assert_eq!((vlans[0].pcp, vlans[0].vid), (1, 10));
        assert_eq!(vlans[1].vid, 20);
        assert_eq!((next, offset), (ether_type::IPV4, 22));
    }
}
