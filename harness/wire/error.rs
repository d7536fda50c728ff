//! Parse errors: which layer failed, where its header starts, and why.
//!
//! Length problems (the bytes ran out) are kept apart from content problems (the bytes are
//! there but say something impossible), as etherparse does with `err::LenError`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The protocol layer whose header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Layer {
    /// The Ethernet II header.
    Ethernet,
    /// An 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// An ARP packet.
    Arp,
    /// The IPv4 header or packet.
    Ipv4,
    /// The IPv6 header or packet.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    /// A TCP segment.
    Tcp,
    /// A UDP datagram.
    Udp,
    /// An ICMPv4 message.
    Icmpv4,
    /// An ICMPv6 message.
    Icmpv6,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Vlan => "VLAN",
            Layer::Arp => "ARP",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Ipv6Ext => "IPv6 extension",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
            Layer::Icmpv4 => "ICMPv4",
            Layer::Icmpv6 => "ICMPv6",
        })
    }
}

/// What was wrong with the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The layer needs `needed` bytes (counted from its first byte) but only `present` are
    /// available to it: the frame ended, or an enclosing length field (IPv4 total length,
    /// IPv6 payload length) gave it fewer bytes.
    Length {
        /// Bytes the layer needs, from its first byte.
        needed: usize,
        /// Bytes available to the layer.
        present: usize,
    },
    /// The bytes are present but a field holds an impossible value (wrong IP version, data
    /// offset below 5, UDP length below 8, ...).
    Content(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Length { needed, present } => {
                write!(f, "needs {needed} bytes, {present} present")
            }
            ErrorKind::Content(reason) => f.write_str(reason),
        }
    }
}

/// A frame could not be parsed: `TCP header at offset 34: needs 20 bytes, 12 present`.
///
/// Bad checksums are *not* parse errors: they are recorded as `checksum_valid` in the
/// representation so that the harness can observe and report them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
#[error("{layer} header at offset {offset}: {kind}")]
pub struct ParseError {
    /// The layer that failed.
    pub layer: Layer,
    /// Byte offset in the frame where the failing header starts.
    pub offset: usize,
    /// Why it failed.
    pub kind: ErrorKind,
}

impl ParseError {
    /// A length error: the layer at `offset` needs `needed` bytes, `present` are there.
    pub fn length(layer: Layer, offset: usize, needed: usize, present: usize) -> Self {
        ParseError {
            layer,
            offset,
            kind: ErrorKind::Length { needed, present },
        }
    }

    /// A content error with a human-readable reason.
    pub fn content(layer: Layer, offset: usize, reason: impl Into<String>) -> Self {
        ParseError {
            layer,
            offset,
            kind: ErrorKind::Content(reason.into()),
        }
    }

    /// Maps an etherparse length error for a layer that starts at `offset`.
    ///
    /// etherparse counts from the slice it was given, which is where our layer starts.
    pub(crate) fn from_len(layer: Layer, offset: usize, err: &etherparse::err::LenError) -> Self {
        ParseError::length(layer, offset, err.required_len, err.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_layer_offset_and_lengths() {
        let e = ParseError::length(Layer::Tcp, 34, 20, 12);
        assert_eq!(
            e.to_string(),
            "TCP header at offset 34: needs 20 bytes, 12 present"
        );
        let e = ParseError::content(Layer::Ipv4, 14, "version 6, expected 4");
        assert_eq!(
            e.to_string(),
            "IPv4 header at offset 14: version 6, expected 4"
        );
    }
}
