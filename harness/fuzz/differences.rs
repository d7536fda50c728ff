//! The one list of legitimate differences between the harness's parsers and the reference
//! parsers they are fuzzed against. Each entry says who differs and why; a differential
//! target may only excuse a disagreement by naming an entry here, and it records which
//! entries it used, so a test shows with a concrete input that each one is still needed
//! (`tests/fuzz_differences.rs`; DNS and HTTP in `tests/wire_dns.rs`, `tests/wire_http.rs`). Anything else is a finding.
//!
//! The harness's parsers are an observer's: they read whatever is structurally there and
//! report it, because a conformance report must show what a stack sent. A stack's own
//! receive path (smoltcp's `*Repr::parse`) may refuse more; those refusals are listed here
//! as differences, not as bugs on either side.

/// A known, legitimate difference between two parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Difference {
    // Link layer (etherparse, smoltcp).
    /// etherparse's lax slicer holds at most three link extensions.
    EtherparseLinkExtLimit,
    /// etherparse reads MACsec as a link extension.
    MacsecNotParsed,
    // ARP.
    /// smoltcp's `ArpRepr` knows Ethernet/IPv4 only.
    ArpSmoltcpEthernetIpv4Only,
    // IPv4 and IPv6.
    /// smoltcp's `Ipv4Repr` refuses fragments.
    Ipv4SmoltcpNoFragments,
    /// etherparse refuses a hop-by-hop header that is not first.
    Ipv6HopByHopNotFirst,
    /// etherparse reads payload length 0 as a jumbogram.
    Ipv6Jumbogram,
    // ICMPv4.
    /// etherparse wants exactly the 20 bytes of a timestamp message.
    Icmpv4TimestampLength,
    // ICMPv6.
    /// smoltcp refuses unknown ICMPv6 types and short fixed parts.
    Icmpv6SmoltcpFixedPart,
    // TCP and UDP.
    /// smoltcp's `TcpRepr`/`UdpRepr` refuse port 0.
    SmoltcpRejectsPortZero,
    /// smoltcp's `TcpRepr` refuses more than one of SYN, FIN, RST.
    TcpSmoltcpRejectsFlagCombination,
    /// smoltcp's `TcpRepr` refuses a segment whose options it cannot read.
    TcpSmoltcpRejectsMalformedOptions,
    /// smoltcp clamps a window scale above 14.
    TcpSmoltcpClampsWindowScale,
    /// smoltcp keeps three SACK blocks.
    TcpSmoltcpSackThreeBlocks,
    /// A timestamps option of the wrong length.
    TcpTimestampsLength,
    // DNS (hickory-proto)
    /// Hickory stops after the counted records and ignores what follows.
    HickoryIgnoresTrailingBytes,
    /// Hickory decodes RDATA of every type it knows (SRV, CAA, SVCB, HINFO, TLSA, NAPTR, ...) and rejects meta types (0, ANY, AXFR, IXFR) in records.
    HickoryChecksOpaqueRdata,
    /// Hickory reads RDLENGTH 0 as an RFC 2136 update placeholder and rejects it outside UPDATE messages for every type.
    HickoryRejectsEmptyRdata,
    /// Hickory rejects SIG (24) and TSIG (250) records outside the additional section (RFC 2931, RFC 8945 §5.1).
    HickorySigOutsideAdditional,
    /// Hickory stops reading OPT options when the RDATA ends and silently drops an option whose length or data was cut off.
    HickoryDropsTruncatedEdnsOption,
    /// Hickory's Metadata has no field for the header's reserved Z bit, so it is not compared.
    HickoryDropsZBit,
    /// Hickory raises an OPT UDP payload size below 512 to 512 when reading (RFC 6891 §6.2.3 says to treat it so).
    HickoryEdnsPayloadFloor,
    /// Hickory decodes the contents of the Client Subnet (8, RFC 7871) and NSID (3) options.
    HickoryValidatesEdnsOptions,
    // HTTP (httparse)
    /// Httparse accepts LF without CR as a line end (RFC 9112 §2.2 allows a recipient to).
    HttparseAcceptsBareLf,
    /// Httparse skips empty lines before the start line (RFC 9112 §2.2 says a server SHOULD ignore one).
    HttparseSkipsLeadingEmptyLines,
    /// Httparse accepts bytes 0x80 and above in the request-target.
    HttparseObsTextInTarget,
    /// Httparse accepts a status line that ends right after the status code.
    HttparseStatusWithoutReasonSp,
    /// Httparse accepts a reason-phrase with obs-text but returns it as an empty string.
    HttparseObsTextReason,
    /// Httparse parses the head's syntax only: it applies neither RFC 9112 §3.2's Host rule nor §6's framing rules (Content-Length lists, Transfer-Encoding, chunked bodies), which wire::http enforces after a head both accept.
    HttparseHeadOnly,
}

impl Difference {
    /// Every entry, in declaration order.
    pub const ALL: &'static [Difference] = &[
        Difference::EtherparseLinkExtLimit,
        Difference::MacsecNotParsed,
        Difference::ArpSmoltcpEthernetIpv4Only,
        Difference::Ipv4SmoltcpNoFragments,
        Difference::Ipv6HopByHopNotFirst,
        Difference::Ipv6Jumbogram,
        Difference::Icmpv4TimestampLength,
        Difference::Icmpv6SmoltcpFixedPart,
        Difference::SmoltcpRejectsPortZero,
        Difference::TcpSmoltcpRejectsFlagCombination,
        Difference::TcpSmoltcpRejectsMalformedOptions,
        Difference::TcpSmoltcpClampsWindowScale,
        Difference::TcpSmoltcpSackThreeBlocks,
        Difference::TcpTimestampsLength,
        Difference::HickoryIgnoresTrailingBytes,
        Difference::HickoryChecksOpaqueRdata,
        Difference::HickoryRejectsEmptyRdata,
        Difference::HickorySigOutsideAdditional,
        Difference::HickoryDropsTruncatedEdnsOption,
        Difference::HickoryDropsZBit,
        Difference::HickoryEdnsPayloadFloor,
        Difference::HickoryValidatesEdnsOptions,
        Difference::HttparseAcceptsBareLf,
        Difference::HttparseSkipsLeadingEmptyLines,
        Difference::HttparseObsTextInTarget,
        Difference::HttparseStatusWithoutReasonSp,
        Difference::HttparseObsTextReason,
        Difference::HttparseHeadOnly,
    ];

    /// A short stable name (used in summaries and tests).
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// Which parsers differ.
    pub fn between(self) -> &'static str {
        self.entry().1
    }

    /// Why the difference is legitimate.
    pub fn reason(self) -> &'static str {
        self.entry().2
    }

    fn entry(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Difference::EtherparseLinkExtLimit => (
                "etherparse-link-ext-limit",
                "wire::Frame vs etherparse::LaxSlicedPacket",
                "etherparse stops after three link extensions (LINK_EXTS_CAP); the harness \
                 follows any number of 802.1Q/802.1ad tags, since a frame with more is still \
                 something a stack sent and the report must show it",
            ),
            Difference::MacsecNotParsed => (
                "macsec-not-parsed",
                "wire::Frame vs etherparse::LaxSlicedPacket",
                "etherparse parses MACsec (ether type 0x88E5) as a link extension; the harness \
                 tests no MACsec and keeps it as an unknown ether type with its payload whole",
            ),
            Difference::ArpSmoltcpEthernetIpv4Only => (
                "arp-smoltcp-ethernet-ipv4-only",
                "wire ARP vs smoltcp::wire::ArpRepr",
                "smoltcp's ArpRepr only knows hardware type 1 with protocol 0x0800 (6/4-byte \
                 addresses); the harness reads every RFC 826 packet and keeps other types raw",
            ),
            Difference::Ipv4SmoltcpNoFragments => (
                "ipv4-smoltcp-no-fragments",
                "wire IPv4 vs smoltcp::wire::Ipv4Repr",
                "smoltcp built without proto-ipv4-fragmentation refuses fragments in \
                 Ipv4Repr::parse (a receiver's choice); the harness records them as fragments",
            ),
            Difference::Ipv6HopByHopNotFirst => (
                "ipv6-hop-by-hop-not-first",
                "wire IPv6 vs etherparse::Ipv6Slice",
                "RFC 8200 §4.1 puts the hop-by-hop header right after the IPv6 header; \
                 etherparse refuses one later in the chain, the harness reads it so a report \
                 can show the violation",
            ),
            Difference::Ipv6Jumbogram => (
                "ipv6-jumbogram",
                "wire IPv6 vs etherparse::Ipv6Slice",
                "etherparse reads a payload length of 0 as an RFC 2675 jumbogram (whatever \
                 the next header) and takes the rest of the slice; the harness honours the \
                 payload length, since jumbograms need links with an MTU above 65 575 bytes \
                 (RFC 2675 §1) and no tested link has one",
            ),
            Difference::Icmpv4TimestampLength => (
                "icmpv4-timestamp-length",
                "wire ICMPv4 (etherparse's Icmpv4Slice) vs smoltcp::wire::Icmpv4Packet",
                "RFC 792 gives timestamp and timestamp reply messages 20 bytes; etherparse, and \
                 so the harness, refuses one of any other size (naming the size), smoltcp reads \
                 the 8-byte header of any type and leaves the rest to the types it knows",
            ),
            Difference::Icmpv6SmoltcpFixedPart => (
                "icmpv6-smoltcp-fixed-part",
                "wire ICMPv6 vs smoltcp::wire::Icmpv6Packet",
                "smoltcp's check_len refuses ICMPv6 types it does not know (RPL control too, \
                 without its proto-rpl feature) and wants the fixed part of each type it knows (neighbour solicitation 24 bytes, redirect 40, ...); \
                 the harness reads the 8-byte header of RFC 4443 §2.1 of any type and keeps \
                 the rest as payload",
            ),
            Difference::SmoltcpRejectsPortZero => (
                "smoltcp-rejects-port-zero",
                "wire TCP/UDP vs smoltcp::wire::{TcpRepr, UdpRepr}",
                "smoltcp refuses TCP ports 0 and UDP destination port 0 as a receiver would; \
                 port 0 is reserved but parsable, and the harness must show it",
            ),
            Difference::TcpSmoltcpRejectsFlagCombination => (
                "tcp-smoltcp-rejects-flag-combination",
                "wire TCP vs smoltcp::wire::TcpRepr",
                "smoltcp's TcpRepr holds one control (SYN, FIN or RST) and refuses segments \
                 with two; such segments are what RFC 9293 checks probe, so the harness reads \
                 every flag bit",
            ),
            Difference::TcpSmoltcpRejectsMalformedOptions => (
                "tcp-smoltcp-rejects-malformed-options",
                "wire TCP vs smoltcp::wire::TcpRepr",
                "smoltcp refuses a segment whose options it cannot read; the harness keeps the \
                 segment and marks the unreadable rest TcpOption::Malformed (both stop at the \
                 same byte, which the target checks)",
            ),
            Difference::TcpSmoltcpClampsWindowScale => (
                "tcp-smoltcp-clamps-window-scale",
                "wire TCP vs smoltcp::wire::TcpRepr",
                "RFC 7323 §2.3 has a receiver use 14 for a shift above 14; smoltcp applies that \
                 while parsing, the harness records the value sent",
            ),
            Difference::TcpSmoltcpSackThreeBlocks => (
                "tcp-smoltcp-sack-three-blocks",
                "wire TCP vs smoltcp::wire::TcpOption",
                "smoltcp keeps at most three SACK blocks to save memory; the harness keeps all \
                 four that 40 option bytes can carry (RFC 2018 §3)",
            ),
            Difference::TcpTimestampsLength => (
                "tcp-timestamps-length",
                "wire TCP (etherparse options) vs smoltcp::wire::TcpOption",
                "a timestamps option (kind 8) whose length is not 10: smoltcp reads it as an \
                 unknown option and goes on, etherparse's iterator (and so the harness) stops \
                 and keeps the rest as malformed; neither is wrong, RFC 7323 defines length 10",
            ),
            Difference::HickoryIgnoresTrailingBytes => (
                "hickory-ignores-trailing-bytes",
                "wire::dns vs hickory-proto Message::from_vec",
                "hickory stops after the counted records and ignores what follows; wire::dns reads a message as exactly the counted sections (a UDP payload or TCP message with bytes after them is malformed or padded by something in the path, and the harness reports it)",
            ),
            Difference::HickoryChecksOpaqueRdata => (
                "hickory-checks-opaque-rdata",
                "wire::dns vs hickory-proto Message::from_vec",
                "hickory decodes RDATA of every type it knows (SRV, CAA, SVCB, HINFO, TLSA, NAPTR, ...) and rejects meta types (0, ANY, AXFR, IXFR) in records; wire::dns types only A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and OPT and keeps other RDATA raw, as RFC 3597 §5 treats unknown types",
            ),
            Difference::HickoryRejectsEmptyRdata => (
                "hickory-rejects-empty-rdata",
                "wire::dns vs hickory-proto Message::from_vec",
                "hickory reads RDLENGTH 0 as an RFC 2136 update placeholder and rejects it outside UPDATE messages for every type; wire::dns accepts an empty RDATA for types it keeps raw (RFC 3597 allows zero-length RDATA for unknown types) and rejects it only for the types whose RDATA cannot be empty",
            ),
            Difference::HickorySigOutsideAdditional => (
                "hickory-sig-outside-additional",
                "wire::dns vs hickory-proto Message::from_vec",
                "hickory rejects SIG (24) and TSIG (250) records outside the additional section (RFC 2931, RFC 8945 §5.1); wire::dns parses the wire format and leaves message-level TSIG/SIG(0) placement to the caller (only OPT placement changes how the header reads)",
            ),
            Difference::HickoryDropsTruncatedEdnsOption => (
                "hickory-drops-truncated-edns-option",
                "wire::dns vs hickory-proto OPT::read_data",
                "hickory stops reading OPT options when the RDATA ends and silently drops an option whose length or data was cut off; wire::dns requires the options to fill the RDATA exactly (RFC 6891 §6.1.2)",
            ),
            Difference::HickoryDropsZBit => (
                "hickory-drops-z-bit",
                "wire::dns vs hickory-proto Header::read",
                "hickory's Metadata has no field for the header's reserved Z bit, so it is not compared; wire::dns keeps it so that emit reproduces what a stack sent",
            ),
            Difference::HickoryEdnsPayloadFloor => (
                "hickory-edns-payload-floor",
                "wire::dns vs hickory-proto DNSClass::for_opt",
                "hickory raises an OPT UDP payload size below 512 to 512 when reading (RFC 6891 §6.2.3 says to treat it so); wire::dns keeps the value sent, and the comparison applies the floor to it",
            ),
            Difference::HickoryValidatesEdnsOptions => (
                "hickory-validates-edns-options",
                "wire::dns vs hickory-proto OPT::read_data",
                "hickory decodes the contents of the Client Subnet (8, RFC 7871) and NSID (3) options and rejects the whole message when they do not parse; wire::dns keeps EDNS option data raw, as RFC 6891 §6.1.2 frames it",
            ),
            Difference::HttparseAcceptsBareLf => (
                "httparse-accepts-bare-lf",
                "wire::http vs httparse",
                "httparse accepts LF without CR as a line end (RFC 9112 §2.2 allows a recipient to); wire::http is strict and requires CRLF, so a stack's bare LF is reported",
            ),
            Difference::HttparseSkipsLeadingEmptyLines => (
                "httparse-skips-leading-empty-lines",
                "wire::http vs httparse",
                "httparse skips empty lines before the start line (RFC 9112 §2.2 says a server SHOULD ignore one); wire::http rejects them",
            ),
            Difference::HttparseObsTextInTarget => (
                "httparse-obs-text-in-target",
                "wire::http vs httparse",
                "httparse accepts bytes 0x80 and above in the request-target; RFC 3986 and RFC 9112 §3.2 allow only ASCII there, which wire::http enforces",
            ),
            Difference::HttparseStatusWithoutReasonSp => (
                "httparse-status-without-reason-sp",
                "wire::http vs httparse",
                "httparse accepts a status line that ends right after the status code; RFC 9112 §4 requires the SP before the (possibly empty) reason-phrase, which wire::http enforces",
            ),
            Difference::HttparseObsTextReason => (
                "httparse-obs-text-reason",
                "wire::http vs httparse",
                "httparse accepts a reason-phrase with obs-text but returns it as an empty string; wire::http keeps the bytes, so the reasons are not compared then",
            ),
            Difference::HttparseHeadOnly => (
                "httparse-head-only",
                "wire::http vs httparse",
                "httparse parses the head's syntax only: it applies neither RFC 9112 §3.2's Host rule nor §6's framing rules (Content-Length lists, Transfer-Encoding, chunked bodies), which wire::http enforces after a head both accept",
            ),
        }
    }
}

/// The set of known differences one input ran into (a bit per [`Difference`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowed(u64);

impl Allowed {
    /// No difference applied.
    pub const NONE: Allowed = Allowed(0);

    /// This set plus `d`.
    #[must_use]
    pub fn with(self, d: Difference) -> Allowed {
        Allowed(self.0 | 1 << (d as u8))
    }

    /// Both sets.
    #[must_use]
    pub fn union(self, other: Allowed) -> Allowed {
        Allowed(self.0 | other.0)
    }

    /// Whether `d` applied.
    pub fn contains(self, d: Difference) -> bool {
        self.0 & 1 << (d as u8) != 0
    }

    /// The differences that applied.
    pub fn iter(self) -> impl Iterator<Item = Difference> {
        Difference::ALL
            .iter()
            .copied()
            .filter(move |d| self.contains(*d))
    }
}
