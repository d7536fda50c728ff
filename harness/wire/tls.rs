//! TLS records and handshake messages, as they cross the wire (RFC 8446 §4 and §5.1,
//! RFC 5246 §6.2 and §7.4, RFC 8422 §5.4 and §5.7, RFC 5077 §3.3).
//!
//! Two incremental readers turn one direction of a byte stream into owned values:
//! [`RecordReader`] cuts [`TlsRecord`]s out of the TCP payload, and [`HandshakeReader`]
//! reassembles [`HandshakeMessage`]s out of the record payloads (peers coalesce several
//! messages in one record and may fragment one message over several records).
//! [`HandshakeMessage::parse_body`] then reads the body into a typed [`Handshake`]. The
//! transcript hash of RFC 8446 §4.4.1 is taken over [`HandshakeMessage::encoded`].
//!
//! # What may panic
//!
//! Nothing here panics on untrusted input: every read is bounds-checked and a failure is a
//! [`TlsParseError`] naming what was being read and the byte offset where it failed (a
//! stream offset for records, an offset into the encoded handshake message for bodies).
//! Only [`fuzz_one`] panics, on purpose, when an invariant it checks is broken.
//!
//! # Versions
//!
//! The record layer is the same for every version from SSL 3.0 to TLS 1.3. Handshake bodies
//! whose layout differs between TLS 1.2 and TLS 1.3 are read as follows by
//! [`HandshakeMessage::parse_body`]: `NewSessionTicket` with the TLS 1.3 layout (RFC 8446
//! §4.6.1; use [`parse_new_session_ticket_tls12`] for RFC 5077's), `Certificate` and
//! `CertificateRequest` kept raw, `ServerKeyExchange` and `ClientKeyExchange` kept raw (see
//! [`parse_ecdhe_server_params`] and [`ecdh_public`] for the ECDHE layouts).

use std::fmt;

use serde::Serialize;

/// Record content types (RFC 8446 §5.1, RFC 6520 for heartbeat).
pub mod content_type {
    /// change_cipher_spec.
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    /// alert.
    pub const ALERT: u8 = 21;
    /// handshake.
    pub const HANDSHAKE: u8 = 22;
    /// application_data.
    pub const APPLICATION_DATA: u8 = 23;
    /// heartbeat (RFC 6520).
    pub const HEARTBEAT: u8 = 24;

    /// The name RFC 8446 gives the content type, or `unknown`.
    pub fn name(content_type: u8) -> &'static str {
        match content_type {
            CHANGE_CIPHER_SPEC => "change_cipher_spec",
            ALERT => "alert",
            HANDSHAKE => "handshake",
            APPLICATION_DATA => "application_data",
            HEARTBEAT => "heartbeat",
            _ => "unknown",
        }
    }
}

/// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
pub mod handshake_type {
    /// hello_request (TLS 1.2 and earlier).
    pub const HELLO_REQUEST: u8 = 0;
    /// client_hello.
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello (also HelloRetryRequest in TLS 1.3).
    pub const SERVER_HELLO: u8 = 2;
    /// new_session_ticket.
    pub const NEW_SESSION_TICKET: u8 = 4;
    /// end_of_early_data.
    pub const END_OF_EARLY_DATA: u8 = 5;
    /// encrypted_extensions.
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    /// certificate.
    pub const CERTIFICATE: u8 = 11;
    /// server_key_exchange (TLS 1.2).
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// certificate_request.
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// server_hello_done (TLS 1.2).
    pub const SERVER_HELLO_DONE: u8 = 14;
    /// certificate_verify.
    pub const CERTIFICATE_VERIFY: u8 = 15;
    /// client_key_exchange (TLS 1.2).
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    /// finished.
    pub const FINISHED: u8 = 20;
    /// key_update.
    pub const KEY_UPDATE: u8 = 24;
    /// message_hash: the synthetic message that replaces ClientHello1 in the transcript
    /// after a HelloRetryRequest (RFC 8446 §4.4.1).
    pub const MESSAGE_HASH: u8 = 254;
}

/// Extension types read by the helpers below (RFC 8446 §4.2, RFC 7627).
pub mod extension_type {
    /// server_name (RFC 6066).
    pub const SERVER_NAME: u16 = 0;
    /// supported_groups (RFC 8422, RFC 7919).
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// signature_algorithms.
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    /// extended_master_secret (RFC 7627).
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    /// pre_shared_key.
    pub const PRE_SHARED_KEY: u16 = 41;
    /// early_data.
    pub const EARLY_DATA: u16 = 42;
    /// supported_versions.
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// psk_key_exchange_modes.
    pub const PSK_KEY_EXCHANGE_MODES: u16 = 45;
    /// key_share.
    pub const KEY_SHARE: u16 = 51;
}

/// The record header is 5 bytes: type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;

/// The largest record length accepted: 2^14 + 2048, the TLS 1.2 ciphertext limit
/// (RFC 5246 §6.2.3), above TLS 1.3's 2^14 + 256 (RFC 8446 §5.2), so any version's
/// records pass and a longer one is an error.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// The largest handshake message body accepted by [`HandshakeReader`]: 1 MiB. The wire
/// allows 2^24 - 1; a real certificate chain is far below this, and a garbage length then
/// fails fast instead of waiting for 16 MiB that never come.
pub const MAX_HANDSHAKE_LEN: usize = 1 << 20;

/// `SHA-256("HelloRetryRequest")`: the ServerHello random that marks a HelloRetryRequest
/// (RFC 8446 §4.1.3).
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A TLS record or handshake message could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsParseError {
    /// The bytes ran out inside a structure: `what` needs `needed` bytes from `offset` but
    /// only `present` are there.
    #[error("TLS {what} at offset {offset}: needs {needed} bytes, {present} present")]
    Length {
        /// What was being read (`ClientHello cipher_suites`, ...).
        what: &'static str,
        /// Offset where it starts.
        offset: u64,
        /// Bytes it needs.
        needed: usize,
        /// Bytes present.
        present: usize,
    },
    /// A record header names a content type that does not exist (RFC 8446 §5.1).
    #[error("TLS record at stream offset {offset}: unknown content type {content_type}")]
    UnknownContentType {
        /// Stream offset of the record header.
        offset: u64,
        /// The content type byte.
        content_type: u8,
    },
    /// A record header's version is not 3.x.
    #[error("TLS record at stream offset {offset}: version 0x{version:04x} is not 3.x")]
    BadVersion {
        /// Stream offset of the record header.
        offset: u64,
        /// The version found (low byte 0 when only the major byte was present).
        version: u16,
    },
    /// A record is longer than [`MAX_RECORD_LEN`] (RFC 5246 §6.2.3, RFC 8446 §5.2).
    #[error("TLS record at stream offset {offset}: length {len} over the limit of {max}")]
    RecordTooLong {
        /// Stream offset of the record header.
        offset: u64,
        /// The length field.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A handshake message is longer than [`MAX_HANDSHAKE_LEN`].
    #[error("TLS handshake message at offset {offset}: length {len} over the limit of {max}")]
    HandshakeTooLong {
        /// Offset of the message header in the handshake byte stream.
        offset: u64,
        /// The length field.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds an impossible value.
    #[error("TLS {what} at offset {offset}: {reason}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Offset of the field.
        offset: u64,
        /// Why it is impossible.
        reason: String,
    },
    /// Bytes are left over after a structure that should have used them all.
    #[error("TLS {what} at offset {offset}: {extra} bytes left over")]
    TrailingBytes {
        /// The structure.
        what: &'static str,
        /// Offset of the first extra byte.
        offset: u64,
        /// How many bytes are extra.
        extra: usize,
    },
}

/// One TLS record: header fields and the (possibly encrypted) fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsRecord {
    /// Content type ([`content_type`]); 23 for every protected TLS 1.3 record.
    pub content_type: u8,
    /// `legacy_record_version` (0x0303 in TLS 1.3 except possibly the first ClientHello).
    pub version: u16,
    /// The fragment: plaintext, or ciphertext with its tag.
    pub fragment: Vec<u8>,
}

impl TlsRecord {
    /// The 5-byte header as on the wire; this is the AEAD additional data in TLS 1.3
    /// (RFC 8446 §5.2). A fragment over 65535 bytes has its length written as 65535.
    pub fn header(&self) -> [u8; 5] {
        let len = u16::try_from(self.fragment.len()).unwrap_or(u16::MAX);
        let [v0, v1] = self.version.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        [self.content_type, v0, v1, l0, l1]
    }

    /// Header and fragment (a fragment over 65535 bytes is cut to 65535).
    pub fn emit(&self) -> Vec<u8> {
        let len = self.fragment.len().min(usize::from(u16::MAX));
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + len);
        out.extend_from_slice(&self.header());
        out.extend_from_slice(&self.fragment[..len]);
        out
    }
}

impl fmt::Display for TlsRecord {
    /// `handshake 0x0303 len 90`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 0x{:04x} len {}",
            content_type::name(self.content_type),
            self.version,
            self.fragment.len()
        )
    }
}

/// A byte buffer consumed from the front, with the stream offset of its first byte.
#[derive(Debug, Default, Clone)]
struct StreamBuffer {
    bytes: Vec<u8>,
    /// Index of the first unread byte in `bytes`.
    start: usize,
    /// Stream offset of `bytes[start]`.
    offset: u64,
}

impl StreamBuffer {
    fn push(&mut self, more: &[u8]) {
        // Compact when the consumed prefix dominates, so the buffer stays small.
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(more);
    }

    fn unread(&self) -> &[u8] {
        self.bytes.get(self.start..).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.unread().len());
        let out = self.unread()[..n].to_vec();
        self.start += n;
        self.offset += n as u64;
        out
    }
}

/// Incremental record reader over one direction of a byte stream.
///
/// [`push`](RecordReader::push) bytes as they arrive, then call
/// [`next_record`](RecordReader::next_record) until it returns `Ok(None)`. The header is
/// checked as soon as its bytes are there, so garbage fails after at most 5 bytes. After an
/// error the stream has lost its framing: the reader stays where it was and returns the
/// same error again.
#[derive(Debug, Default, Clone)]
pub struct RecordReader {
    buffer: StreamBuffer,
}

impl RecordReader {
    /// An empty reader at stream offset 0.
    pub fn new() -> Self {
        RecordReader::default()
    }

    /// Appends bytes received on the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.push(bytes);
    }

    /// The next whole record; `Ok(None)` when more bytes are needed.
    ///
    /// Errors on a record longer than [`MAX_RECORD_LEN`], an unknown content type, or a
    /// version whose major byte is not 3.
    pub fn next_record(&mut self) -> Result<Option<TlsRecord>, TlsParseError> {
        let offset = self.buffer.offset;
        let b = self.buffer.unread();
        let Some(&content_type) = b.first() else {
            return Ok(None);
        };
        if !(content_type::CHANGE_CIPHER_SPEC..=content_type::HEARTBEAT).contains(&content_type) {
            return Err(TlsParseError::UnknownContentType {
                offset,
                content_type,
            });
        }
        if let Some(&major) = b.get(1)
            && major != 3
        {
            let minor = b.get(2).copied().unwrap_or(0);
            return Err(TlsParseError::BadVersion {
                offset,
                version: u16::from_be_bytes([major, minor]),
            });
        }
        let Some(header) = b.get(..RECORD_HEADER_LEN) else {
            return Ok(None);
        };
        let version = u16::from_be_bytes([header[1], header[2]]);
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len > MAX_RECORD_LEN {
            return Err(TlsParseError::RecordTooLong {
                offset,
                len,
                max: MAX_RECORD_LEN,
            });
        }
        if b.len() < RECORD_HEADER_LEN + len {
            return Ok(None);
        }
        let mut whole = self.buffer.consume(RECORD_HEADER_LEN + len);
        let fragment = whole.split_off(RECORD_HEADER_LEN);
        Ok(Some(TlsRecord {
            content_type,
            version,
            fragment,
        }))
    }

    /// Stream offset of the next unread byte (the start of the next record).
    pub fn offset(&self) -> u64 {
        self.buffer.offset
    }

    /// Bytes buffered that do not yet make a whole record; a stream that ends with this
    /// above zero was truncated mid-record.
    pub fn pending(&self) -> usize {
        self.buffer.unread().len()
    }
}

/// One handshake message: type and body, without record framing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandshakeMessage {
    /// [`handshake_type`].
    pub msg_type: u8,
    /// The body (after the 4-byte header).
    pub body: Vec<u8>,
}

impl HandshakeMessage {
    /// The 4-byte header (type, 24-bit length) and the body: the bytes hashed into the
    /// transcript (RFC 8446 §4.4.1). A body over 2^24 - 1 bytes is cut to that length.
    pub fn encoded(&self) -> Vec<u8> {
        let len = self.body.len().min(0x00ff_ffff);
        let mut out = Vec::with_capacity(4 + len);
        out.push(self.msg_type);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&self.body[..len]);
        out
    }

    /// The RFC name of the message type (`ClientHello`, ...), `Unknown` for others.
    pub fn type_name(&self) -> &'static str {
        use handshake_type::*;
        match self.msg_type {
            HELLO_REQUEST => "HelloRequest",
            CLIENT_HELLO => "ClientHello",
            SERVER_HELLO => "ServerHello",
            NEW_SESSION_TICKET => "NewSessionTicket",
            END_OF_EARLY_DATA => "EndOfEarlyData",
            ENCRYPTED_EXTENSIONS => "EncryptedExtensions",
            CERTIFICATE => "Certificate",
            SERVER_KEY_EXCHANGE => "ServerKeyExchange",
            CERTIFICATE_REQUEST => "CertificateRequest",
            SERVER_HELLO_DONE => "ServerHelloDone",
            CERTIFICATE_VERIFY => "CertificateVerify",
            CLIENT_KEY_EXCHANGE => "ClientKeyExchange",
            FINISHED => "Finished",
            KEY_UPDATE => "KeyUpdate",
            MESSAGE_HASH => "message_hash",
            _ => "Unknown",
        }
    }

    /// Reads the body by message type (layouts per the module doc). Error offsets count
    /// from the first byte of [`encoded`](HandshakeMessage::encoded), so the body starts
    /// at offset 4. Unknown types give [`Handshake::Unknown`], not an error.
    pub fn parse_body(&self) -> Result<Handshake, TlsParseError> {
        use handshake_type::*;
        let body = &self.body[..];
        Ok(match self.msg_type {
            CLIENT_HELLO => Handshake::ClientHello(ClientHello::parse(body)?),
            SERVER_HELLO => Handshake::ServerHello(ServerHello::parse(body)?),
            NEW_SESSION_TICKET => Handshake::NewSessionTicket(NewSessionTicket::parse(body)?),
            END_OF_EARLY_DATA => {
                Reader::new(body, "EndOfEarlyData").finish()?;
                Handshake::EndOfEarlyData
            }
            ENCRYPTED_EXTENSIONS => {
                let mut r = Reader::new(body, "EncryptedExtensions");
                let extensions = r.extensions()?;
                r.finish()?;
                Handshake::EncryptedExtensions(extensions)
            }
            CERTIFICATE => Handshake::Certificate(body.to_vec()),
            CERTIFICATE_REQUEST => Handshake::CertificateRequest(body.to_vec()),
            CERTIFICATE_VERIFY => {
                let mut r = Reader::new(body, "CertificateVerify");
                let scheme = r.u16()?;
                let signature = r.vec16()?;
                r.finish()?;
                Handshake::CertificateVerify { scheme, signature }
            }
            SERVER_KEY_EXCHANGE => Handshake::ServerKeyExchange(body.to_vec()),
            SERVER_HELLO_DONE => {
                Reader::new(body, "ServerHelloDone").finish()?;
                Handshake::ServerHelloDone
            }
            CLIENT_KEY_EXCHANGE => Handshake::ClientKeyExchange(body.to_vec()),
            FINISHED => Handshake::Finished(body.to_vec()),
            KEY_UPDATE => {
                let mut r = Reader::new(body, "KeyUpdate");
                let at = r.offset();
                let update_requested = match r.u8()? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(r.invalid(at, format!("request_update {other}, not 0 or 1")));
                    }
                };
                r.finish()?;
                Handshake::KeyUpdate { update_requested }
            }
            msg_type => Handshake::Unknown { msg_type },
        })
    }
}

impl fmt::Display for HandshakeMessage {
    /// `ClientHello len 192`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} len {}", self.type_name(), self.body.len())
    }
}

/// Reassembles handshake messages across records (peers coalesce several messages in one
/// record and may fragment one message over several).
///
/// Push the payload of each handshake record (decrypted, for TLS 1.3's protected ones)
/// then call [`next_message`](HandshakeReader::next_message) until it returns `Ok(None)`.
#[derive(Debug, Default, Clone)]
pub struct HandshakeReader {
    buffer: StreamBuffer,
}

impl HandshakeReader {
    /// An empty reader.
    pub fn new() -> Self {
        HandshakeReader::default()
    }

    /// Appends the payload of one handshake record.
    pub fn push(&mut self, record_payload: &[u8]) {
        self.buffer.push(record_payload);
    }

    /// The next whole message; `Ok(None)` when more bytes are needed. Errors on a message
    /// longer than [`MAX_HANDSHAKE_LEN`] (and keeps returning that error).
    pub fn next_message(&mut self) -> Result<Option<HandshakeMessage>, TlsParseError> {
        let b = self.buffer.unread();
        let Some(header) = b.get(..4) else {
            return Ok(None);
        };
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        if len > MAX_HANDSHAKE_LEN {
            return Err(TlsParseError::HandshakeTooLong {
                offset: self.buffer.offset,
                len,
                max: MAX_HANDSHAKE_LEN,
            });
        }
        if b.len() < 4 + len {
            return Ok(None);
        }
        let msg_type = header[0];
        let mut whole = self.buffer.consume(4 + len);
        let body = whole.split_off(4);
        Ok(Some(HandshakeMessage { msg_type, body }))
    }

    /// Bytes buffered that do not yet make a whole message.
    pub fn pending(&self) -> usize {
        self.buffer.unread().len()
    }

    /// Offset in the handshake byte stream of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.buffer.offset
    }
}

/// A handshake message body, read by type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Handshake {
    /// ClientHello (RFC 8446 §4.1.2).
    ClientHello(ClientHello),
    /// ServerHello, including HelloRetryRequest (see
    /// [`ServerHello::is_hello_retry_request`]).
    ServerHello(ServerHello),
    /// NewSessionTicket, TLS 1.3 layout (RFC 8446 §4.6.1).
    NewSessionTicket(NewSessionTicket),
    /// EndOfEarlyData (empty body).
    EndOfEarlyData,
    /// EncryptedExtensions: the extension list.
    EncryptedExtensions(Vec<Extension>),
    /// Certificate: the raw body (TLS 1.2 and 1.3 layouts differ).
    Certificate(Vec<u8>),
    /// CertificateRequest: the raw body.
    CertificateRequest(Vec<u8>),
    /// CertificateVerify (RFC 8446 §4.4.3; same layout in TLS 1.2).
    CertificateVerify {
        /// SignatureScheme.
        scheme: u16,
        /// The signature.
        signature: Vec<u8>,
    },
    /// ServerKeyExchange (TLS 1.2): the raw body, see [`parse_ecdhe_server_params`].
    ServerKeyExchange(Vec<u8>),
    /// ServerHelloDone (TLS 1.2, empty body).
    ServerHelloDone,
    /// ClientKeyExchange (TLS 1.2): the raw body, see [`ecdh_public`].
    ClientKeyExchange(Vec<u8>),
    /// Finished: verify_data.
    Finished(Vec<u8>),
    /// KeyUpdate (RFC 8446 §4.6.3).
    KeyUpdate {
        /// `request_update == update_requested(1)`.
        update_requested: bool,
    },
    /// A type this reader does not know (its body stays in the [`HandshakeMessage`]).
    Unknown {
        /// The type byte.
        msg_type: u8,
    },
}

/// One extension: type and opaque data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// ExtensionType ([`extension_type`]).
    pub ext_type: u16,
    /// `extension_data`.
    pub data: Vec<u8>,
}

fn find(extensions: &[Extension], ext_type: u16) -> Option<&[u8]> {
    extensions
        .iter()
        .find(|e| e.ext_type == ext_type)
        .map(|e| &e.data[..])
}

/// Encoded length of an extension list with its 2-byte length prefix.
fn extensions_len(extensions: &[Extension]) -> usize {
    2 + extensions.iter().map(|e| 4 + e.data.len()).sum::<usize>()
}

/// ClientHello (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2).
///
/// The helper methods read one extension each; an extension that is absent or malformed
/// reads as absent (empty list, `false`, `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientHello {
    /// `legacy_version` (`client_version` in TLS 1.2).
    pub legacy_version: u16,
    /// Random.
    pub random: [u8; 32],
    /// `legacy_session_id`.
    pub session_id: Vec<u8>,
    /// Cipher suites, in the client's order.
    pub cipher_suites: Vec<u16>,
    /// `legacy_compression_methods`.
    pub compression_methods: Vec<u8>,
    /// Extensions in wire order (empty when the field is absent, as TLS 1.2 allows).
    pub extensions: Vec<Extension>,
}

impl ClientHello {
    fn parse(body: &[u8]) -> Result<ClientHello, TlsParseError> {
        let mut r = Reader::new(body, "ClientHello");
        let legacy_version = r.u16()?;
        let random = r.array32()?;
        let session_id = r.vec8()?;
        let at = r.offset();
        let suites = r.vec16()?;
        if suites.len() % 2 != 0 {
            return Err(r.invalid(at, format!("cipher_suites length {} is odd", suites.len())));
        }
        let cipher_suites = suites
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let compression_methods = r.vec8()?;
        let extensions = if r.is_empty() {
            Vec::new()
        } else {
            r.extensions()?
        };
        r.finish()?;
        Ok(ClientHello {
            legacy_version,
            random,
            session_id,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// The extension's data, if present.
    pub fn extension(&self, ext_type: u16) -> Option<&[u8]> {
        find(&self.extensions, ext_type)
    }

    /// `supported_versions` (RFC 8446 §4.2.1), in the client's order.
    pub fn supported_versions(&self) -> Vec<u16> {
        let Some(data) = self.extension(extension_type::SUPPORTED_VERSIONS) else {
            return Vec::new();
        };
        let mut r = Reader::new(data, "supported_versions");
        match r.vec8() {
            Ok(list) if list.len() % 2 == 0 => list
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `key_share` entries (RFC 8446 §4.2.8): named group and key exchange bytes.
    pub fn key_shares(&self) -> Vec<(u16, Vec<u8>)> {
        let Some(data) = self.extension(extension_type::KEY_SHARE) else {
            return Vec::new();
        };
        let read = || -> Result<Vec<(u16, Vec<u8>)>, TlsParseError> {
            let mut outer = Reader::new(data, "key_share");
            let list = outer.vec16()?;
            outer.finish()?;
            let mut r = Reader::new(&list, "key_share entries");
            let mut out = Vec::new();
            while !r.is_empty() {
                out.push((r.u16()?, r.vec16()?));
            }
            Ok(out)
        };
        read().unwrap_or_default()
    }

    /// The `extended_master_secret` extension is present (RFC 7627).
    pub fn extended_master_secret(&self) -> bool {
        self.extension(extension_type::EXTENDED_MASTER_SECRET)
            .is_some()
    }

    /// The `early_data` extension is present (RFC 8446 §4.2.10).
    pub fn early_data(&self) -> bool {
        self.extension(extension_type::EARLY_DATA).is_some()
    }

    /// RFC 8446 §4.2.11: identities, binders, and the length of the encoded ClientHello
    /// (with 4-byte header) truncated before the binders list (what the binder MACs).
    pub fn pre_shared_key(&self) -> Option<OfferedPsks> {
        let index = self
            .extensions
            .iter()
            .position(|e| e.ext_type == extension_type::PRE_SHARED_KEY)?;
        let data = &self.extensions[index].data;
        let mut r = Reader::new(data, "pre_shared_key");
        let ids = r.vec16().ok()?;
        let binders_at = r.pos;
        let binder_list = r.vec16().ok()?;
        r.finish().ok()?;
        let mut identities = Vec::new();
        let mut ir = Reader::new(&ids, "PskIdentity");
        while !ir.is_empty() {
            identities.push((ir.vec16().ok()?, ir.u32().ok()?));
        }
        let mut binders = Vec::new();
        let mut br = Reader::new(&binder_list, "PskBinderEntry");
        while !br.is_empty() {
            binders.push(br.vec8().ok()?);
        }
        // Encoded message: header, fixed fields, then the extensions up to this one.
        let before_extensions = 4
            + 2
            + 32
            + 1
            + self.session_id.len()
            + 2
            + 2 * self.cipher_suites.len()
            + 1
            + self.compression_methods.len();
        let truncated_len =
            before_extensions + extensions_len(&self.extensions[..index]) + 4 + binders_at;
        Some(OfferedPsks {
            identities,
            binders,
            truncated_len,
        })
    }
}

/// The `pre_shared_key` extension of a ClientHello (RFC 8446 §4.2.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfferedPsks {
    /// Identities with their `obfuscated_ticket_age`.
    pub identities: Vec<(Vec<u8>, u32)>,
    /// Binders, one per identity.
    pub binders: Vec<Vec<u8>>,
    /// Length of the encoded ClientHello (4-byte header included) up to, not including,
    /// the binders list: the prefix that the binder's HMAC covers (RFC 8446 §4.2.11.2).
    pub truncated_len: usize,
}

/// ServerHello, or HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4; RFC 5246 §7.4.1.3).
///
/// The helper methods read one extension each; an absent or malformed one reads as absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerHello {
    /// `legacy_version` (`server_version` in TLS 1.2).
    pub legacy_version: u16,
    /// Random; [`HELLO_RETRY_REQUEST_RANDOM`] for a HelloRetryRequest.
    pub random: [u8; 32],
    /// `legacy_session_id_echo`.
    pub session_id: Vec<u8>,
    /// The selected cipher suite.
    pub cipher_suite: u16,
    /// `legacy_compression_method`.
    pub compression_method: u8,
    /// Extensions in wire order (empty when the field is absent).
    pub extensions: Vec<Extension>,
}

impl ServerHello {
    fn parse(body: &[u8]) -> Result<ServerHello, TlsParseError> {
        let mut r = Reader::new(body, "ServerHello");
        let legacy_version = r.u16()?;
        let random = r.array32()?;
        let session_id = r.vec8()?;
        let cipher_suite = r.u16()?;
        let compression_method = r.u8()?;
        let extensions = if r.is_empty() {
            Vec::new()
        } else {
            r.extensions()?
        };
        r.finish()?;
        Ok(ServerHello {
            legacy_version,
            random,
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// The extension's data, if present.
    pub fn extension(&self, ext_type: u16) -> Option<&[u8]> {
        find(&self.extensions, ext_type)
    }

    fn ext_u16(&self, ext_type: u16) -> Option<u16> {
        match self.extension(ext_type)? {
            [a, b] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }

    /// The random is `SHA-256("HelloRetryRequest")` (RFC 8446 §4.1.3).
    pub fn is_hello_retry_request(&self) -> bool {
        self.random == HELLO_RETRY_REQUEST_RANDOM
    }

    /// The version from `supported_versions` (RFC 8446 §4.2.1), else `legacy_version`.
    pub fn selected_version(&self) -> u16 {
        self.ext_u16(extension_type::SUPPORTED_VERSIONS)
            .unwrap_or(self.legacy_version)
    }

    /// The server's `key_share` (RFC 8446 §4.2.8): group and key; for a HelloRetryRequest
    /// the selected group with an empty key.
    pub fn key_share(&self) -> Option<(u16, Vec<u8>)> {
        let data = self.extension(extension_type::KEY_SHARE)?;
        if self.is_hello_retry_request() {
            return self
                .ext_u16(extension_type::KEY_SHARE)
                .map(|g| (g, Vec::new()));
        }
        let mut r = Reader::new(data, "key_share");
        let group = r.u16().ok()?;
        let key = r.vec16().ok()?;
        r.finish().ok()?;
        Some((group, key))
    }

    /// The `selected_identity` of `pre_shared_key` (RFC 8446 §4.2.11).
    pub fn selected_psk(&self) -> Option<u16> {
        self.ext_u16(extension_type::PRE_SHARED_KEY)
    }

    /// The `extended_master_secret` extension is present (RFC 7627).
    pub fn extended_master_secret(&self) -> bool {
        self.extension(extension_type::EXTENDED_MASTER_SECRET)
            .is_some()
    }
}

/// NewSessionTicket, TLS 1.3 layout (RFC 8446 §4.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSessionTicket {
    /// `ticket_lifetime` in seconds.
    pub lifetime: u32,
    /// `ticket_age_add`.
    pub age_add: u32,
    /// `ticket_nonce`: context for the resumption PSK derivation.
    pub nonce: Vec<u8>,
    /// The ticket (the PSK identity for resumption).
    pub ticket: Vec<u8>,
    /// Extensions (`early_data` carries `max_early_data_size`).
    pub extensions: Vec<Extension>,
}

impl NewSessionTicket {
    fn parse(body: &[u8]) -> Result<NewSessionTicket, TlsParseError> {
        let mut r = Reader::new(body, "NewSessionTicket");
        let lifetime = r.u32()?;
        let age_add = r.u32()?;
        let nonce = r.vec8()?;
        let at = r.offset();
        let ticket = r.vec16()?;
        if ticket.is_empty() {
            return Err(r.invalid(at, "empty ticket"));
        }
        let extensions = r.extensions()?;
        r.finish()?;
        Ok(NewSessionTicket {
            lifetime,
            age_add,
            nonce,
            ticket,
            extensions,
        })
    }
}

/// NewSessionTicket, TLS 1.2 layout (RFC 5077 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSessionTicketTls12 {
    /// `ticket_lifetime_hint` in seconds.
    pub lifetime_hint: u32,
    /// The ticket.
    pub ticket: Vec<u8>,
}

/// Reads a TLS 1.2 NewSessionTicket body (RFC 5077 §3.3: lifetime hint, then the ticket).
/// [`HandshakeMessage::parse_body`] reads the TLS 1.3 layout; call this when the
/// negotiated version is TLS 1.2.
pub fn parse_new_session_ticket_tls12(body: &[u8]) -> Result<NewSessionTicketTls12, TlsParseError> {
    let mut r = Reader::new(body, "NewSessionTicket (TLS 1.2)");
    let lifetime_hint = r.u32()?;
    let ticket = r.vec16()?;
    r.finish()?;
    Ok(NewSessionTicketTls12 {
        lifetime_hint,
        ticket,
    })
}

/// The ECDHE public point of a ClientKeyExchange body (RFC 8422 §5.7:
/// `ClientECDiffieHellmanPublic`, an opaque `point<1..2^8-1>`).
pub fn ecdh_public(body: &[u8]) -> Result<Vec<u8>, TlsParseError> {
    let mut r = Reader::new(body, "ClientKeyExchange");
    let at = r.offset();
    let point = r.vec8()?;
    if point.is_empty() {
        return Err(r.invalid(at, "empty ECDH public point"));
    }
    r.finish()?;
    Ok(point)
}

/// The named group and public point of an ECDHE ServerKeyExchange body (RFC 8422 §5.4:
/// `ServerECDHParams` with `curve_type` 3 = named_curve). The signature that follows is
/// not read; [`ecdhe_server_params_len`] gives where it starts.
pub fn parse_ecdhe_server_params(body: &[u8]) -> Result<(u16, Vec<u8>), TlsParseError> {
    let mut r = Reader::new(body, "ServerKeyExchange");
    let at = r.offset();
    let curve_type = r.u8()?;
    if curve_type != 3 {
        return Err(r.invalid(
            at,
            format!("curve_type {curve_type}, only named_curve (3) is supported"),
        ));
    }
    let group = r.u16()?;
    let at = r.offset();
    let point = r.vec8()?;
    if point.is_empty() {
        return Err(r.invalid(at, "empty ECDH public point"));
    }
    Ok((group, point))
}

/// Length of the `ServerECDHParams` at the start of a ServerKeyExchange body: the bytes the
/// server's signature covers after the two randoms (RFC 8422 §5.4).
pub fn ecdhe_server_params_len(body: &[u8]) -> Result<usize, TlsParseError> {
    parse_ecdhe_server_params(body).map(|(_, point)| 4 + point.len())
}

/// A bounds-checked reader over a handshake body; offsets count from the start of the
/// encoded message (body offset + 4).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    fn offset(&self) -> u64 {
        self.pos as u64 + 4
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn invalid(&self, offset: u64, reason: impl Into<String>) -> TlsParseError {
        TlsParseError::Invalid {
            what: self.what,
            offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsParseError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(TlsParseError::Length {
                what: self.what,
                offset: self.offset(),
                needed: n,
                present: rest.len(),
            }),
        }
    }

    fn u8(&mut self) -> Result<u8, TlsParseError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TlsParseError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TlsParseError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array32(&mut self) -> Result<[u8; 32], TlsParseError> {
        let mut out = [0; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    fn vec8(&mut self) -> Result<Vec<u8>, TlsParseError> {
        let n = usize::from(self.u8()?);
        Ok(self.take(n)?.to_vec())
    }

    fn vec16(&mut self) -> Result<Vec<u8>, TlsParseError> {
        let n = usize::from(self.u16()?);
        Ok(self.take(n)?.to_vec())
    }

    /// An extension list: `Extension extensions<0..2^16-1>`.
    fn extensions(&mut self) -> Result<Vec<Extension>, TlsParseError> {
        let n = usize::from(self.u16()?);
        let start = self.pos;
        let list = self.take(n)?;
        let mut r = Reader {
            bytes: &self.bytes[..start + list.len()],
            pos: start,
            what: "extension",
        };
        let mut out = Vec::new();
        while !r.is_empty() {
            let ext_type = r.u16()?;
            let data = r.vec16()?;
            out.push(Extension { ext_type, data });
        }
        Ok(out)
    }

    fn finish(&self) -> Result<(), TlsParseError> {
        let extra = self.bytes.len().saturating_sub(self.pos);
        if extra == 0 {
            Ok(())
        } else {
            Err(TlsParseError::TrailingBytes {
                what: self.what,
                offset: self.offset(),
                extra,
            })
        }
    }
}

/// Feeds `data` through [`RecordReader`], [`HandshakeReader`] and
/// [`HandshakeMessage::parse_body`] as one direction of a TLS stream, and checks the
/// invariants a fuzzer should hold them to: every record re-emits to the bytes it was read
/// from, every handshake message re-encodes to the bytes it was reassembled from, and
/// offsets and pending counts add up. Never panics on any input unless an invariant is
/// broken (that is what the fuzz target `tls` looks for).
pub fn fuzz_one(data: &[u8]) {
    // Split the input at a data-chosen point to exercise incremental pushes.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut records = RecordReader::new();
    records.push(&data[..split]);
    let mut handshake = HandshakeReader::new();
    let mut handshake_bytes = Vec::new();
    let mut pushed_rest = false;
    loop {
        match records.next_record() {
            Ok(Some(record)) => {
                let start = records.offset() as usize - RECORD_HEADER_LEN - record.fragment.len();
                let emitted = record.emit();
                assert_eq!(
                    emitted,
                    data[start..records.offset() as usize],
                    "emit(record) differs from the bytes it was read from"
                );
                let mut again = RecordReader::new();
                again.push(&emitted);
                assert_eq!(again.next_record(), Ok(Some(record.clone())));
                assert_eq!(again.pending(), 0);
                if record.content_type == content_type::HANDSHAKE {
                    handshake.push(&record.fragment);
                    handshake_bytes.extend_from_slice(&record.fragment);
                }
            }
            Ok(None) if !pushed_rest => {
                records.push(&data[split..]);
                pushed_rest = true;
            }
            Ok(None) | Err(_) => break,
        }
    }
    if !pushed_rest {
        records.push(&data[split..]);
    }
    assert_eq!(records.offset() as usize + records.pending(), data.len());
    while let Ok(Some(message)) = handshake.next_message() {
        let encoded = message.encoded();
        let end = handshake.offset() as usize;
        assert_eq!(encoded, handshake_bytes[end - encoded.len()..end]);
        let body = message.parse_body();
        if let Ok(Handshake::ClientHello(hello)) = &body {
            let _ = (hello.supported_versions(), hello.key_shares());
            if let Some(psks) = hello.pre_shared_key() {
                // The binders list starts at truncated_len with its own length.
                let binders: usize = psks.binders.iter().map(|b| 1 + b.len()).sum();
                let at = psks.truncated_len;
                assert_eq!(
                    encoded.get(at..at + 2),
                    Some(&u16::try_from(binders).unwrap_or(u16::MAX).to_be_bytes()[..])
                );
            }
        } else if let Ok(Handshake::ServerHello(hello)) = &body {
            let _ = (
                hello.selected_version(),
                hello.key_share(),
                hello.selected_psk(),
            );
        }
        let _ = parse_new_session_ticket_tls12(&message.body);
        let _ = ecdh_public(&message.body);
        let _ = parse_ecdhe_server_params(&message.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(content_type: u8, fragment: &[u8]) -> Vec<u8> {
        TlsRecord {
            content_type,
            version: 0x0303,
            fragment: fragment.to_vec(),
        }
        .emit()
    }

    #[test]
    fn header_and_emit() {
        let r = TlsRecord {
            content_type: content_type::ALERT,
            version: 0x0303,
            fragment: vec![1, 0],
        };
        assert_eq!(r.header(), [21, 3, 3, 0, 2]);
        assert_eq!(r.emit(), vec![21, 3, 3, 0, 2, 1, 0]);
        assert_eq!(r.to_string(), "alert 0x0303 len 2");
    }

    #[test]
    fn garbage_fails_at_the_first_byte() {
        let mut r = RecordReader::new();
        r.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            r.next_record(),
            Err(TlsParseError::UnknownContentType {
                offset: 0,
                content_type: b'G'
            })
        );
        // Sticky: the same error again.
        assert!(r.next_record().is_err());
        let mut r = RecordReader::new();
        r.push(&[22, 2]);
        assert_eq!(
            r.next_record(),
            Err(TlsParseError::BadVersion {
                offset: 0,
                version: 0x0200
            })
        );
    }

    #[test]
    fn over_long_record_is_an_error() {
        let mut r = RecordReader::new();
        r.push(&[23, 3, 3, 0x48, 0x01]);
        assert_eq!(
            r.next_record(),
            Err(TlsParseError::RecordTooLong {
                offset: 0,
                len: 0x4801,
                max: MAX_RECORD_LEN
            })
        );
        // Exactly the limit is fine (it waits for the bytes).
        let mut r = RecordReader::new();
        r.push(&[23, 3, 3, 0x48, 0x00]);
        assert_eq!(r.next_record(), Ok(None));
        assert_eq!(r.pending(), 5);
    }

    #[test]
    fn offsets_advance_by_record() {
        let mut r = RecordReader::new();
        let mut bytes = rec(22, &[1, 2, 3]);
        bytes.extend(rec(20, &[1]));
        r.push(&bytes);
        assert_eq!(r.next_record().unwrap().unwrap().fragment, vec![1, 2, 3]);
        assert_eq!(r.offset(), 8);
        assert_eq!(r.next_record().unwrap().unwrap().content_type, 20);
        assert_eq!(r.offset(), 14);
        assert_eq!(r.next_record(), Ok(None));
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn handshake_too_long() {
        let mut h = HandshakeReader::new();
        h.push(&[1, 0x20, 0, 0]);
        assert!(matches!(
            h.next_message(),
            Err(TlsParseError::HandshakeTooLong { offset: 0, .. })
        ));
    }

    #[test]
    fn body_errors_name_offset() {
        let m = HandshakeMessage {
            msg_type: handshake_type::CLIENT_HELLO,
            body: vec![3, 3, 0],
        };
        assert_eq!(
            m.parse_body(),
            Err(TlsParseError::Length {
                what: "ClientHello",
                offset: 6,
                needed: 32,
                present: 1
            })
        );
        let m = HandshakeMessage {
            msg_type: handshake_type::KEY_UPDATE,
            body: vec![2],
        };
        assert!(matches!(
            m.parse_body(),
            Err(TlsParseError::Invalid { offset: 4, .. })
        ));
        let m = HandshakeMessage {
            msg_type: handshake_type::SERVER_HELLO_DONE,
            body: vec![0],
        };
        assert_eq!(
            m.parse_body(),
            Err(TlsParseError::TrailingBytes {
                what: "ServerHelloDone",
                offset: 4,
                extra: 1
            })
        );
        assert_eq!(
            m.parse_body().unwrap_err().to_string(),
            "TLS ServerHelloDone at offset 4: 1 bytes left over"
        );
    }

    #[test]
    fn ecdhe_layouts() {
        // Hand-assembled: ServerECDHParams for x25519 (group 29) with a 32-byte point of
        // 0x11, then a 4-byte stand-in for the signature.
        let mut ske = vec![3, 0, 29, 32];
        ske.extend([0x11; 32]);
        ske.extend([4, 1, 0, 0]);
        assert_eq!(parse_ecdhe_server_params(&ske), Ok((29, vec![0x11; 32])));
        assert_eq!(ecdhe_server_params_len(&ske), Ok(36));
        let mut cke = vec![32];
        cke.extend([0x22; 32]);
        assert_eq!(ecdh_public(&cke), Ok(vec![0x22; 32]));
        assert!(ecdh_public(&[0]).is_err());
        assert!(parse_ecdhe_server_params(&[1, 0, 29]).is_err());
    }

    #[test]
    fn tls12_ticket() {
        // Hand-assembled RFC 5077 body: lifetime hint 7200, 3-byte ticket.
        let body = [0, 0, 0x1c, 0x20, 0, 3, 9, 8, 7];
        assert_eq!(
            parse_new_session_ticket_tls12(&body),
            Ok(NewSessionTicketTls12 {
                lifetime_hint: 7200,
                ticket: vec![9, 8, 7]
            })
        );
    }

    #[test]
    fn hello_retry_request_key_share() {
        // Hand-assembled HelloRetryRequest: HRR random, empty session id, TLS_AES_128_GCM,
        // key_share naming secp256r1 (23), supported_versions 1.3.
        let mut body = vec![3, 3];
        body.extend(HELLO_RETRY_REQUEST_RANDOM);
        body.extend([0, 0x13, 0x01, 0]);
        body.extend([0, 12, 0, 51, 0, 2, 0, 23, 0, 43, 0, 2, 3, 4]);
        let m = HandshakeMessage {
            msg_type: handshake_type::SERVER_HELLO,
            body,
        };
        let Ok(Handshake::ServerHello(sh)) = m.parse_body() else {
            panic!("not a ServerHello: {:?}", m.parse_body())
        };
        assert!(sh.is_hello_retry_request());
        assert_eq!(sh.key_share(), Some((23, vec![])));
        assert_eq!(sh.selected_version(), 0x0304);
        assert_eq!(sh.selected_psk(), None);
    }

    #[test]
    fn fuzz_one_on_small_inputs() {
        fuzz_one(&[]);
        fuzz_one(&[22]);
        let mut bytes = rec(22, &[1, 0, 0, 0, 2, 0, 0, 0]);
        bytes.extend(rec(23, &[0; 10]));
        fuzz_one(&bytes);
    }
}
