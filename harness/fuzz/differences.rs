//! The one list of legitimate differences between the harness's parsers and the reference
//! parsers they are fuzzed against. Each entry says who differs and why; a differential
//! target may only excuse a disagreement by naming an entry here (and records which entries
//! it used, so a test can show that each one is still needed). Anything else is a finding.

/// A known, legitimate difference between two parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Difference {
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
        match self {
            Difference::HickoryIgnoresTrailingBytes => "hickory-ignores-trailing-bytes",
            Difference::HickoryChecksOpaqueRdata => "hickory-checks-opaque-rdata",
            Difference::HickoryRejectsEmptyRdata => "hickory-rejects-empty-rdata",
            Difference::HickorySigOutsideAdditional => "hickory-sig-outside-additional",
            Difference::HickoryDropsTruncatedEdnsOption => "hickory-drops-truncated-edns-option",
            Difference::HickoryDropsZBit => "hickory-drops-z-bit",
            Difference::HickoryEdnsPayloadFloor => "hickory-edns-payload-floor",
            Difference::HickoryValidatesEdnsOptions => "hickory-validates-edns-options",
            Difference::HttparseAcceptsBareLf => "httparse-accepts-bare-lf",
            Difference::HttparseSkipsLeadingEmptyLines => "httparse-skips-leading-empty-lines",
            Difference::HttparseObsTextInTarget => "httparse-obs-text-in-target",
            Difference::HttparseStatusWithoutReasonSp => "httparse-status-without-reason-sp",
            Difference::HttparseObsTextReason => "httparse-obs-text-reason",
            Difference::HttparseHeadOnly => "httparse-head-only",
        }
    }

    /// Which parsers differ.
    pub fn between(self) -> &'static str {
        match self {
            Difference::HickoryIgnoresTrailingBytes => {
                "wire::dns vs hickory-proto Message::from_vec"
            }
            Difference::HickoryChecksOpaqueRdata => "wire::dns vs hickory-proto Message::from_vec",
            Difference::HickoryRejectsEmptyRdata => "wire::dns vs hickory-proto Message::from_vec",
            Difference::HickorySigOutsideAdditional => {
                "wire::dns vs hickory-proto Message::from_vec"
            }
            Difference::HickoryDropsTruncatedEdnsOption => {
                "wire::dns vs hickory-proto OPT::read_data"
            }
            Difference::HickoryDropsZBit => "wire::dns vs hickory-proto Header::read",
            Difference::HickoryEdnsPayloadFloor => "wire::dns vs hickory-proto DNSClass::for_opt",
            Difference::HickoryValidatesEdnsOptions => "wire::dns vs hickory-proto OPT::read_data",
            Difference::HttparseAcceptsBareLf => "wire::http vs httparse",
            Difference::HttparseSkipsLeadingEmptyLines => "wire::http vs httparse",
            Difference::HttparseObsTextInTarget => "wire::http vs httparse",
            Difference::HttparseStatusWithoutReasonSp => "wire::http vs httparse",
            Difference::HttparseObsTextReason => "wire::http vs httparse",
            Difference::HttparseHeadOnly => "wire::http vs httparse",
        }
    }

    /// Why the difference is legitimate.
    pub fn reason(self) -> &'static str {
        match self {
            Difference::HickoryIgnoresTrailingBytes => {
                "hickory stops after the counted records and ignores what follows; wire::dns reads a message as exactly the counted sections (a UDP payload or TCP message with bytes after them is malformed or padded by something in the path, and the harness reports it)"
            }
            Difference::HickoryChecksOpaqueRdata => {
                "hickory decodes RDATA of every type it knows (SRV, CAA, SVCB, HINFO, TLSA, NAPTR, ...) and rejects meta types (0, ANY, AXFR, IXFR) in records; wire::dns types only A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and OPT and keeps other RDATA raw, as RFC 3597 §5 treats unknown types"
            }
            Difference::HickoryRejectsEmptyRdata => {
                "hickory reads RDLENGTH 0 as an RFC 2136 update placeholder and rejects it outside UPDATE messages for every type; wire::dns accepts an empty RDATA for types it keeps raw (RFC 3597 allows zero-length RDATA for unknown types) and rejects it only for the types whose RDATA cannot be empty"
            }
            Difference::HickorySigOutsideAdditional => {
                "hickory rejects SIG (24) and TSIG (250) records outside the additional section (RFC 2931, RFC 8945 §5.1); wire::dns parses the wire format and leaves message-level TSIG/SIG(0) placement to the caller (only OPT placement changes how the header reads)"
            }
            Difference::HickoryDropsTruncatedEdnsOption => {
                "hickory stops reading OPT options when the RDATA ends and silently drops an option whose length or data was cut off; wire::dns requires the options to fill the RDATA exactly (RFC 6891 §6.1.2)"
            }
            Difference::HickoryDropsZBit => {
                "hickory's Metadata has no field for the header's reserved Z bit, so it is not compared; wire::dns keeps it so that emit reproduces what a stack sent"
            }
            Difference::HickoryEdnsPayloadFloor => {
                "hickory raises an OPT UDP payload size below 512 to 512 when reading (RFC 6891 §6.2.3 says to treat it so); wire::dns keeps the value sent, and the comparison applies the floor to it"
            }
            Difference::HickoryValidatesEdnsOptions => {
                "hickory decodes the contents of the Client Subnet (8, RFC 7871) and NSID (3) options and rejects the whole message when they do not parse; wire::dns keeps EDNS option data raw, as RFC 6891 §6.1.2 frames it"
            }
            Difference::HttparseAcceptsBareLf => {
                "httparse accepts LF without CR as a line end (RFC 9112 §2.2 allows a recipient to); wire::http is strict and requires CRLF, so a stack's bare LF is reported"
            }
            Difference::HttparseSkipsLeadingEmptyLines => {
                "httparse skips empty lines before the start line (RFC 9112 §2.2 says a server SHOULD ignore one); wire::http rejects them"
            }
            Difference::HttparseObsTextInTarget => {
                "httparse accepts bytes 0x80 and above in the request-target; RFC 3986 and RFC 9112 §3.2 allow only ASCII there, which wire::http enforces"
            }
            Difference::HttparseStatusWithoutReasonSp => {
                "httparse accepts a status line that ends right after the status code; RFC 9112 §4 requires the SP before the (possibly empty) reason-phrase, which wire::http enforces"
            }
            Difference::HttparseObsTextReason => {
                "httparse accepts a reason-phrase with obs-text but returns it as an empty string; wire::http keeps the bytes, so the reasons are not compared then"
            }
            Difference::HttparseHeadOnly => {
                "httparse parses the head's syntax only: it applies neither RFC 9112 §3.2's Host rule nor §6's framing rules (Content-Length lists, Transfer-Encoding, chunked bodies), which wire::http enforces after a head both accept"
            }
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
