//! HTTP/1.1 messages as they cross the wire (RFC 9112; field syntax from RFC 9110 §5).
//!
//! [`HttpRequest::parse`] and [`HttpResponse::parse`] read one message from the front of a
//! byte stream, head and body, and say how many bytes it took, so pipelined messages are read
//! by calling them again on the rest ([`HttpRequest::parse_all`]). [`HttpRequest::emit`] and
//! [`HttpResponse::emit`] write a message back; parsing what they wrote gives the same value.
//! `parse_head` reads the head alone (no framing rules), for comparisons with head-only
//! parsers.
//!
//! # Strictness
//!
//! What RFC 9112 lets a recipient reject is rejected, each rule with its own
//! [`HttpParseError`] variant:
//! - lines end in CRLF; a bare LF (§2.2 allows recipients to accept it) is an error, and so
//!   is an empty line before the start line (§2.2 lets servers skip it);
//! - the start line has exactly one SP between its parts (§3, §4), the version is `HTTP/1.0`
//!   or `HTTP/1.1` (other `HTTP/d.d` is [`HttpParseError::UnsupportedVersion`]), the request
//!   target is visible ASCII, the status line keeps the SP before an empty reason phrase;
//! - field names are tokens with no whitespace before the colon (§5.1), values are
//!   `field-vchar`s, SP and HTAB with leading and trailing OWS removed (§5.1, RFC 9110
//!   §5.5), obs-fold is rejected (§5.2);
//! - an HTTP/1.1 request has exactly one `Host` field line (§3.2);
//! - framing (§6): `Transfer-Encoding` and `Content-Length` together are rejected (§6.3
//!   item 3), as is `Transfer-Encoding` in an HTTP/1.0 message (§6.1), `chunked` twice or
//!   not last in a request, a `Content-Length` that is not a list of identical decimal
//!   values (§6.3 item 5); chunk sizes, extensions and trailers follow §7.1 exactly.
//!
//! # What may panic
//!
//! Nothing here panics on any input. Every allocation is bounded by bytes already present
//! (a chunk size or Content-Length larger than the input fails with
//! [`HttpParseError::Length`] before anything is copied), and at most [`MAX_FIELDS`] field
//! lines are read per section. Emitting never panics.

use std::fmt;

use serde::Serialize;

/// The most field lines read in a header or trailer section.
pub const MAX_FIELDS: usize = 100;

/// An HTTP/1.x message could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpParseError {
    /// The input ends before `what`, which starts at `offset`, is complete.
    #[error("HTTP {what} at offset {offset}: input ends before it is complete")]
    Incomplete {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A body or chunk needs `needed` bytes from `offset`, only `present` are there.
    #[error("HTTP {what} at offset {offset}: needs {needed} bytes, {present} present")]
    Length {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: u64,
        /// Bytes present.
        present: usize,
    },
    /// A line ends in LF without CR (RFC 9112 §2.2).
    #[error("HTTP line at offset {offset}: LF without CR")]
    BareLf {
        /// Offset of the LF.
        offset: usize,
    },
    /// A CR not followed by LF (RFC 9112 §2.2).
    #[error("HTTP line at offset {offset}: CR without LF")]
    BareCr {
        /// Offset of the CR.
        offset: usize,
    },
    /// An empty line before the start line (RFC 9112 §2.2).
    #[error("HTTP message at offset {offset}: empty line before the start line")]
    LeadingEmptyLine {
        /// Offset of the empty line.
        offset: usize,
    },
    /// The request line or status line does not follow RFC 9112 §3 or §4.
    #[error("HTTP start line at offset {offset}: {reason}")]
    StartLine {
        /// Offset of the offending byte.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An `HTTP/d.d` version other than 1.0 and 1.1.
    #[error("HTTP version at offset {offset}: HTTP/{major}.{minor} is not 1.0 or 1.1")]
    UnsupportedVersion {
        /// Offset of the version.
        offset: usize,
        /// Major digit.
        major: u8,
        /// Minor digit.
        minor: u8,
    },
    /// A field line that starts with whitespace: obs-fold, or whitespace after the start
    /// line (RFC 9112 §5.2, §2.2).
    #[error("HTTP field line at offset {offset}: starts with whitespace (obs-fold)")]
    ObsFold {
        /// Offset of the line.
        offset: usize,
    },
    /// Whitespace between a field name and the colon (RFC 9112 §5.1).
    #[error("HTTP field line at offset {offset}: whitespace before the colon")]
    SpaceBeforeColon {
        /// Offset of the whitespace.
        offset: usize,
    },
    /// A field name that is not a token, or a line without a colon (RFC 9110 §5.1).
    #[error("HTTP field name at offset {offset}: {reason}")]
    FieldName {
        /// Offset of the offending byte.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A byte not allowed in a field value (RFC 9110 §5.5).
    #[error("HTTP field value at offset {offset}: byte 0x{byte:02x} not allowed")]
    FieldValue {
        /// Offset of the byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// More than [`MAX_FIELDS`] field lines.
    #[error("HTTP field section at offset {offset}: more than {MAX_FIELDS} field lines")]
    TooManyFields {
        /// Where the section starts.
        offset: usize,
    },
    /// An HTTP/1.1 request without a Host field (RFC 9112 §3.2).
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// A request with more than one Host field line (RFC 9112 §3.2).
    #[error("HTTP request with {count} Host field lines")]
    DuplicateHost {
        /// How many.
        count: usize,
    },
    /// A Content-Length that is not a decimal number, or a list of them (RFC 9112 §6.3).
    #[error("HTTP Content-Length {value:?}: not a decimal length")]
    InvalidContentLength {
        /// The field value.
        value: String,
    },
    /// Content-Length values that differ (RFC 9112 §6.3 item 5).
    #[error("HTTP Content-Length values {first} and {other} differ")]
    ConflictingContentLength {
        /// The first value.
        first: u64,
        /// A different one.
        other: u64,
    },
    /// Transfer-Encoding and Content-Length both present (RFC 9112 §6.3 item 3).
    #[error("HTTP message with both Transfer-Encoding and Content-Length")]
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    #[error("HTTP/1.0 message with Transfer-Encoding")]
    TransferEncodingInHttp10,
    /// Transfer-Encoding whose codings are not a list ending in a single `chunked`, where
    /// that is required (RFC 9112 §6.1, §6.3 item 4).
    #[error("HTTP Transfer-Encoding {value:?}: {reason}")]
    TransferEncoding {
        /// The combined field value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A chunk-size line that does not follow RFC 9112 §7.1.
    #[error("HTTP chunk at offset {offset}: {reason}")]
    Chunk {
        /// Offset of the offending byte.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The protocol version: this module reads HTTP/1.0 and HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl HttpVersion {
    /// The minor digit.
    pub fn minor(self) -> u8 {
        match self {
            HttpVersion::Http10 => 0,
            HttpVersion::Http11 => 1,
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/1.{}", self.minor())
    }
}

/// One field line: name as sent (case preserved) and value without surrounding OWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HeaderField {
    /// The field name (a token).
    pub name: String,
    /// The value (may hold obs-text bytes, 0x80 and above).
    pub value: Vec<u8>,
}

impl HeaderField {
    /// A field from text.
    pub fn new(name: &str, value: &str) -> Self {
        HeaderField {
            name: name.to_string(),
            value: value.as_bytes().to_vec(),
        }
    }
}

/// One chunk of a chunked body (RFC 9112 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Chunk {
    /// The chunk extensions exactly as after the size (`;name=value...`), or empty.
    pub extensions: Vec<u8>,
    /// The data (never empty: a zero size ends the body).
    pub data: Vec<u8>,
}

/// A message body, by how it was framed (RFC 9112 §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Body {
    /// No body: a request without Content-Length or Transfer-Encoding, a response to HEAD,
    /// or a 1xx, 204 or 304 response.
    None,
    /// A body of Content-Length bytes.
    Length(Vec<u8>),
    /// A chunked body.
    Chunked {
        /// The chunks before the last-chunk.
        chunks: Vec<Chunk>,
        /// The last-chunk's extensions, as after its `0`.
        last_extensions: Vec<u8>,
        /// The trailer section.
        trailers: Vec<HeaderField>,
    },
    /// A response body delimited by the connection closing: everything after the head.
    UntilClose(Vec<u8>),
}

impl Body {
    /// The content: the data of every chunk for a chunked body.
    pub fn content(&self) -> Vec<u8> {
        match self {
            Body::None => Vec::new(),
            Body::Length(b) | Body::UntilClose(b) => b.clone(),
            Body::Chunked { chunks, .. } => chunks.iter().flat_map(|c| c.data.clone()).collect(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Body::None => {}
            Body::Length(b) | Body::UntilClose(b) => out.extend_from_slice(b),
            Body::Chunked {
                chunks,
                last_extensions,
                trailers,
            } => {
                for c in chunks.iter().filter(|c| !c.data.is_empty()) {
                    out.extend_from_slice(format!("{:x}", c.data.len()).as_bytes());
                    out.extend_from_slice(&c.extensions);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&c.data);
                    out.extend_from_slice(b"\r\n");
                }
                out.push(b'0');
                out.extend_from_slice(last_extensions);
                out.extend_from_slice(b"\r\n");
                emit_fields(trailers, out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// An HTTP/1.x request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HttpRequest {
    /// The method (a token, case-sensitive).
    pub method: String,
    /// The request-target as sent.
    pub target: String,
    /// The version.
    pub version: HttpVersion,
    /// The header section, in order.
    pub headers: Vec<HeaderField>,
    /// The body.
    pub body: Body,
}

/// An HTTP/1.x response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HttpResponse {
    /// The version.
    pub version: HttpVersion,
    /// The status code: the three digits as sent (000 to 999; emit caps it at 999).
    pub status: u16,
    /// The reason phrase (may hold obs-text).
    pub reason: Vec<u8>,
    /// The header section, in order.
    pub headers: Vec<HeaderField>,
    /// The body.
    pub body: Body,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The end of the line starting at `from`: the offset of its CR (the LF follows).
fn line_end(bytes: &[u8], from: usize, what: &'static str) -> Result<usize, HttpParseError> {
    let rest = bytes.get(from..).unwrap_or_default();
    // memchr, not a byte-by-byte search: fuzzing traces every comparison the harness's own
    // code makes, and this search reads most of every input (docs/PERFORMANCE.md).
    let Some(lf) = memchr::memchr(b'\n', rest) else {
        // A CR that is not last must be followed by LF; report it even before the end.
        if let Some(cr) = memchr::memchr(b'\r', rest)
            && cr + 1 < rest.len()
        {
            return Err(HttpParseError::BareCr { offset: from + cr });
        }
        return Err(HttpParseError::Incomplete { what, offset: from });
    };
    if let Some(cr) = memchr::memchr(b'\r', &rest[..lf])
        && cr + 1 != lf
    {
        return Err(HttpParseError::BareCr { offset: from + cr });
    }
    if lf == 0 || rest[lf - 1] != b'\r' {
        return Err(HttpParseError::BareLf { offset: from + lf });
    }
    Ok(from + lf - 1)
}

fn parse_version(bytes: &[u8], at: usize) -> Result<HttpVersion, HttpParseError> {
    match bytes {
        b"HTTP/1.0" => Ok(HttpVersion::Http10),
        b"HTTP/1.1" => Ok(HttpVersion::Http11),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(HttpParseError::UnsupportedVersion {
                offset: at,
                major: major - b'0',
                minor: minor - b'0',
            })
        }
        _ => Err(HttpParseError::StartLine {
            offset: at,
            reason: "version is not HTTP/DIGIT.DIGIT",
        }),
    }
}

/// Reads field lines from `pos` up to and including the empty line; returns them and the
/// offset after the empty line.
fn parse_fields(bytes: &[u8], mut pos: usize) -> Result<(Vec<HeaderField>, usize), HttpParseError> {
    let section = pos;
    let mut fields = Vec::new();
    loop {
        let end = line_end(bytes, pos, "field line")?;
        let line = &bytes[pos..end];
        if line.is_empty() {
            return Ok((fields, end + 2));
        }
        if fields.len() == MAX_FIELDS {
            return Err(HttpParseError::TooManyFields { offset: section });
        }
        if matches!(line[0], b' ' | b'\t') {
            return Err(HttpParseError::ObsFold { offset: pos });
        }
        let name_len =
            line.iter()
                .position(|&b| !is_tchar(b))
                .ok_or(HttpParseError::FieldName {
                    offset: end,
                    reason: "no colon",
                })?;
        match line[name_len] {
            b':' if name_len > 0 => {}
            b':' => {
                return Err(HttpParseError::FieldName {
                    offset: pos,
                    reason: "empty name",
                });
            }
            b' ' | b'\t' => {
                return Err(HttpParseError::SpaceBeforeColon {
                    offset: pos + name_len,
                });
            }
            _ => {
                return Err(HttpParseError::FieldName {
                    offset: pos + name_len,
                    reason: "byte not allowed in a token",
                });
            }
        }
        let value_at = pos + name_len + 1;
        let raw = &line[name_len + 1..];
        if let Some(i) = raw
            .iter()
            .position(|&b| !(b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80))
        {
            return Err(HttpParseError::FieldValue {
                offset: value_at + i,
                byte: raw[i],
            });
        }
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let start = raw.iter().position(|b| !ows(b)).unwrap_or(raw.len());
        let stop = raw.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
        fields.push(HeaderField {
            // Tokens are ASCII.
            name: String::from_utf8_lossy(&line[..name_len]).into_owned(),
            value: raw[start..stop].to_vec(),
        });
        pos = end + 2;
    }
}

fn emit_fields(fields: &[HeaderField], out: &mut Vec<u8>) {
    for f in fields {
        out.extend_from_slice(f.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(&f.value);
        out.extend_from_slice(b"\r\n");
    }
}

fn values<'a>(fields: &'a [HeaderField], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
        .map(|f| &f.value[..])
}

/// List elements of every line of field `name`, OWS trimmed, empty elements dropped
/// (RFC 9110 §5.6.1).
fn list<'a>(fields: &'a [HeaderField], name: &'a str) -> Vec<&'a [u8]> {
    values(fields, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|e| e.trim_ascii())
        .filter(|e| !e.is_empty())
        .collect()
}

/// How the body of a message is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// RFC 9112 §6.3 items 3 to 7, for a message that may have a body.
fn framing(
    fields: &[HeaderField],
    version: HttpVersion,
    request: bool,
) -> Result<Framing, HttpParseError> {
    let has_te = values(fields, "transfer-encoding").next().is_some();
    let cl_lines: Vec<&[u8]> = values(fields, "content-length").collect();
    if has_te {
        if !cl_lines.is_empty() {
            return Err(HttpParseError::ContentLengthWithTransferEncoding);
        }
        if version == HttpVersion::Http10 {
            return Err(HttpParseError::TransferEncodingInHttp10);
        }
        let codings = list(fields, "transfer-encoding");
        let te_value = || {
            values(fields, "transfer-encoding")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
        let count = codings.iter().filter(|c| chunked(c)).count();
        let last_chunked = codings.last().is_some_and(|c| chunked(c));
        if count > 1 || (count == 1 && !last_chunked) {
            return Err(HttpParseError::TransferEncoding {
                value: te_value(),
                reason: "chunked more than once or not last",
            });
        }
        if last_chunked {
            return Ok(Framing::Chunked);
        }
        if request {
            return Err(HttpParseError::TransferEncoding {
                value: te_value(),
                reason: "a request's last coding must be chunked",
            });
        }
        return Ok(Framing::UntilClose);
    }
    let mut length: Option<u64> = None;
    for line in &cl_lines {
        for element in line.split(|&b| b == b',') {
            let e = element.trim_ascii();
            let n = (!e.is_empty() && e.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(e).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| HttpParseError::InvalidContentLength {
                    value: String::from_utf8_lossy(line).into_owned(),
                })?;
            match length {
                Some(first) if first != n => {
                    return Err(HttpParseError::ConflictingContentLength { first, other: n });
                }
                _ => length = Some(n),
            }
        }
    }
    Ok(match length {
        Some(n) => Framing::Length(n),
        None if request => Framing::None,
        None => Framing::UntilClose,
    })
}

/// Checks chunk-ext (RFC 9112 §7.1.1): `*( BWS ";" BWS name [ BWS "=" BWS value ] )`, value
/// a token or quoted-string.
fn check_chunk_ext(ext: &[u8], at: usize) -> Result<(), HttpParseError> {
    let bad = |i: usize, reason| HttpParseError::Chunk {
        offset: at + i,
        reason,
    };
    let ws = |b: u8| b == b' ' || b == b'\t';
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while ext.get(*i).is_some_and(|&b| ws(b)) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        match ext.get(i) {
            None => return Ok(()),
            Some(b';') => i += 1,
            Some(_) => return Err(bad(i, "extension does not start with ';'")),
        }
        skip_ws(&mut i);
        let name = i;
        while ext.get(i).copied().is_some_and(is_tchar) {
            i += 1;
        }
        if i == name {
            return Err(bad(i, "extension name is not a token"));
        }
        let before_eq = i;
        skip_ws(&mut i);
        if ext.get(i) != Some(&b'=') {
            i = before_eq;
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        if ext.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match ext.get(i) {
                    None => return Err(bad(i, "unterminated quoted-string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => match ext.get(i + 1) {
                        Some(&b) if b == b'\t' || b == b' ' || b >= 0x21 && b != 0x7f => i += 2,
                        _ => return Err(bad(i, "bad quoted-pair")),
                    },
                    Some(&b) if b == b'\t' || b == b' ' || b >= 0x21 && b != 0x7f => i += 1,
                    Some(_) => return Err(bad(i, "byte not allowed in a quoted-string")),
                }
            }
        } else {
            let value = i;
            while ext.get(i).copied().is_some_and(is_tchar) {
                i += 1;
            }
            if i == value {
                return Err(bad(i, "extension value is neither token nor quoted-string"));
            }
        }
    }
}

/// Reads a chunked body from `pos` (RFC 9112 §7.1); returns it and the offset after it.
fn parse_chunked(bytes: &[u8], mut pos: usize) -> Result<(Body, usize), HttpParseError> {
    let mut chunks = Vec::new();
    loop {
        let end = line_end(bytes, pos, "chunk-size line")?;
        let line = &bytes[pos..end];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(HttpParseError::Chunk {
                offset: pos,
                reason: "chunk-size is not a hexadecimal number",
            });
        }
        // 16 hex digits already exceed any input; leading zeros are allowed.
        let significant = &line[..digits];
        let significant = &significant[significant
            .iter()
            .position(|&b| b != b'0')
            .unwrap_or(digits)..];
        if significant.len() > 15 {
            return Err(HttpParseError::Chunk {
                offset: pos,
                reason: "chunk-size too large",
            });
        }
        let size = significant.iter().fold(0u64, |n, &b| {
            n << 4 | u64::from((b as char).to_digit(16).unwrap_or(0))
        });
        let extensions = &line[digits..];
        check_chunk_ext(extensions, pos + digits)?;
        let data_at = end + 2;
        if size == 0 {
            let (trailers, after) = parse_fields(bytes, data_at)?;
            return Ok((
                Body::Chunked {
                    chunks,
                    last_extensions: extensions.to_vec(),
                    trailers,
                },
                after,
            ));
        }
        let present = bytes.len().saturating_sub(data_at);
        let needed = size + 2;
        if (present as u64) < needed {
            return Err(HttpParseError::Length {
                what: "chunk-data",
                offset: data_at,
                needed,
                present,
            });
        }
        let data_end = data_at + size as usize;
        if &bytes[data_end..data_end + 2] != b"\r\n" {
            return Err(HttpParseError::Chunk {
                offset: data_end,
                reason: "chunk-data not followed by CRLF",
            });
        }
        chunks.push(Chunk {
            extensions: extensions.to_vec(),
            data: bytes[data_at..data_end].to_vec(),
        });
        pos = data_end + 2;
    }
}

fn read_body(bytes: &[u8], pos: usize, framing: Framing) -> Result<(Body, usize), HttpParseError> {
    match framing {
        Framing::None => Ok((Body::None, pos)),
        Framing::Length(n) => {
            let present = bytes.len().saturating_sub(pos);
            if (present as u64) < n {
                return Err(HttpParseError::Length {
                    what: "body",
                    offset: pos,
                    needed: n,
                    present,
                });
            }
            let end = pos + n as usize;
            Ok((Body::Length(bytes[pos..end].to_vec()), end))
        }
        Framing::Chunked => parse_chunked(bytes, pos),
        Framing::UntilClose => Ok((
            Body::UntilClose(bytes.get(pos..).unwrap_or_default().to_vec()),
            bytes.len(),
        )),
    }
}

fn no_leading_empty_line(bytes: &[u8]) -> Result<(), HttpParseError> {
    if bytes.starts_with(b"\r\n") || bytes.starts_with(b"\n") {
        return Err(HttpParseError::LeadingEmptyLine { offset: 0 });
    }
    Ok(())
}

impl HttpRequest {
    /// Reads the request line and header section only, applying no framing or Host rule;
    /// the body is [`Body::None`]. Returns the request and the length of the head.
    pub fn parse_head(bytes: &[u8]) -> Result<(HttpRequest, usize), HttpParseError> {
        no_leading_empty_line(bytes)?;
        let end = line_end(bytes, 0, "request line")?;
        let line = &bytes[..end];
        let method_len = line.iter().position(|&b| !is_tchar(b)).unwrap_or(end);
        if method_len == 0 || line.get(method_len) != Some(&b' ') {
            return Err(HttpParseError::StartLine {
                offset: method_len,
                reason: "method is not a token followed by SP",
            });
        }
        let target_at = method_len + 1;
        let target_len = line[target_at..]
            .iter()
            .position(|&b| !(0x21..=0x7e).contains(&b))
            .unwrap_or(end - target_at);
        if target_len == 0 || line.get(target_at + target_len) != Some(&b' ') {
            return Err(HttpParseError::StartLine {
                offset: target_at + target_len,
                reason: "request-target is not visible ASCII followed by SP",
            });
        }
        let version_at = target_at + target_len + 1;
        let version = parse_version(&line[version_at..], version_at)?;
        let (headers, after) = parse_fields(bytes, end + 2)?;
        Ok((
            HttpRequest {
                method: String::from_utf8_lossy(&line[..method_len]).into_owned(),
                target: String::from_utf8_lossy(&line[target_at..target_at + target_len])
                    .into_owned(),
                version,
                headers,
                body: Body::None,
            },
            after,
        ))
    }

    /// Reads one whole request from the front of `bytes`; returns it and the bytes it took.
    pub fn parse(bytes: &[u8]) -> Result<(HttpRequest, usize), HttpParseError> {
        let (mut request, head_len) = HttpRequest::parse_head(bytes)?;
        let hosts = values(&request.headers, "host").count();
        if hosts > 1 {
            return Err(HttpParseError::DuplicateHost { count: hosts });
        }
        if hosts == 0 && request.version == HttpVersion::Http11 {
            return Err(HttpParseError::MissingHost);
        }
        let framing = framing(&request.headers, request.version, true)?;
        let (body, end) = read_body(bytes, head_len, framing)?;
        request.body = body;
        Ok((request, end))
    }

    /// Reads pipelined requests until the bytes end.
    pub fn parse_all(mut bytes: &[u8]) -> Result<Vec<HttpRequest>, HttpParseError> {
        let mut requests = Vec::new();
        while !bytes.is_empty() {
            let (request, used) = HttpRequest::parse(bytes)?;
            requests.push(request);
            bytes = &bytes[used..];
        }
        Ok(requests)
    }

    /// The request as on the wire (`name: value` field lines, chunk sizes in lowercase hex
    /// without leading zeros).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        emit_fields(&self.headers, &mut out);
        out.extend_from_slice(b"\r\n");
        self.body.emit(&mut out);
        out
    }
}

impl HttpResponse {
    /// Reads the status line and header section only, applying no framing rule; the body is
    /// [`Body::None`]. Returns the response and the length of the head.
    pub fn parse_head(bytes: &[u8]) -> Result<(HttpResponse, usize), HttpParseError> {
        no_leading_empty_line(bytes)?;
        let end = line_end(bytes, 0, "status line")?;
        let line = &bytes[..end];
        let version = parse_version(line.get(..8).unwrap_or(line), 0)?;
        let code = line.get(9..12).unwrap_or_default();
        if line.get(8) != Some(&b' ') || code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(HttpParseError::StartLine {
                offset: 8,
                reason: "version not followed by SP and a 3-digit status code",
            });
        }
        if line.get(12) != Some(&b' ') {
            return Err(HttpParseError::StartLine {
                offset: 12,
                reason: "status code not followed by SP",
            });
        }
        let reason = &line[13..];
        if let Some(i) = reason
            .iter()
            .position(|&b| !(b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80))
        {
            return Err(HttpParseError::StartLine {
                offset: 13 + i,
                reason: "byte not allowed in the reason phrase",
            });
        }
        let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        let (headers, after) = parse_fields(bytes, end + 2)?;
        Ok((
            HttpResponse {
                version,
                status,
                reason: reason.to_vec(),
                headers,
                body: Body::None,
            },
            after,
        ))
    }

    /// Reads one whole response from the front of `bytes`; `to_head` says it answers a HEAD
    /// request (so it has no body, RFC 9112 §6.3 item 1). Returns it and the bytes it took
    /// (all of them for a body delimited by the connection closing).
    pub fn parse(bytes: &[u8], to_head: bool) -> Result<(HttpResponse, usize), HttpParseError> {
        let (mut response, head_len) = HttpResponse::parse_head(bytes)?;
        let framing = if to_head || matches!(response.status, 100..=199 | 204 | 304) {
            Framing::None
        } else {
            framing(&response.headers, response.version, false)?
        };
        let (body, end) = read_body(bytes, head_len, framing)?;
        response.body = body;
        Ok((response, end))
    }

    /// The response as on the wire (see [`HttpRequest::emit`]).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.extend_from_slice(format!(" {:03} ", self.status.min(999)).as_bytes());
        out.extend_from_slice(&self.reason);
        out.extend_from_slice(b"\r\n");
        emit_fields(&self.headers, &mut out);
        out.extend_from_slice(b"\r\n");
        self.body.emit(&mut out);
        out
    }
}

impl fmt::Display for HttpRequest {
    /// `GET /index.html HTTP/1.1, 3 fields, body 12 bytes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}, {} fields, body {} bytes",
            self.method,
            self.target,
            self.version,
            self.headers.len(),
            self.body.content().len()
        )
    }
}

impl fmt::Display for HttpResponse {
    /// `HTTP/1.1 200 OK, 3 fields, body 12 bytes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:03} {}, {} fields, body {} bytes",
            self.version,
            self.status,
            self.reason.escape_ascii(),
            self.headers.len(),
            self.body.content().len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        assert!(check_chunk_ext(b"", 0).is_ok());
        assert!(check_chunk_ext(b";a", 0).is_ok());
        assert!(check_chunk_ext(b" ; a = \"x\\\"y\" ;b=c", 0).is_ok());
        assert!(check_chunk_ext(b"a", 0).is_err());
        assert!(check_chunk_ext(b";", 0).is_err());
        assert!(check_chunk_ext(b";a=", 0).is_err());
        assert!(check_chunk_ext(b";a=\"x", 0).is_err());
    }
}
