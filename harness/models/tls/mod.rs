//! TLS key schedules and record protection: a pure model of what both ends of a TLS 1.2 or
//! TLS 1.3 connection must derive from their inputs, used as an oracle against the stack under
//! test (rustls) and its key log.
//!
//! Read first:
//! - RFC 8446 §7.1 (the TLS 1.3 key schedule, with its diagram, copied below), §7.3 (traffic
//!   keys), §7.5 (exporters), §4.4.1 (the transcript hash, `message_hash` after a
//!   HelloRetryRequest), §4.4.4 (Finished), §4.2.11.2 (PSK binders), §4.6.3 (KeyUpdate), §5.2–5.3
//!   (record protection and the per-record nonce);
//! - RFC 5246 §5 (the TLS 1.2 PRF), §6.3 (key block), §7.4.9 (Finished), §8.1 (master secret);
//!   RFC 7627 §4 (extended master secret); RFC 5288 §3 (AES-GCM records); RFC 7905 §2
//!   (ChaCha20-Poly1305 records);
//! - RFC 8448 (example traces; the vectors under `fixtures/tls/` come from §3 and §4).
//!
//! # TLS 1.3 key schedule (RFC 8446 §7.1)
//!
//! ```text
//!                  0
//!                  |
//!                  v
//!    PSK ->  HKDF-Extract = Early Secret            (EarlySecret)
//!                  |
//!                  +-----> Derive-Secret(., "ext binder" | "res binder", "") = binder_key
//!                  +-----> Derive-Secret(., "c e traffic", ClientHello)
//!                  +-----> Derive-Secret(., "e exp master", ClientHello)
//!                  v
//!            Derive-Secret(., "derived", "")
//!                  |
//!                  v
//! (EC)DHE -> HKDF-Extract = Handshake Secret        (HandshakeSecret)
//!                  |
//!                  +-----> Derive-Secret(., "c hs traffic", ClientHello...ServerHello)
//!                  +-----> Derive-Secret(., "s hs traffic", ClientHello...ServerHello)
//!                  v
//!            Derive-Secret(., "derived", "")
//!                  |
//!                  v
//!       0 -> HKDF-Extract = Master Secret           (MasterSecret)
//!                  |
//!                  +-----> Derive-Secret(., "c ap traffic", ClientHello...server Finished)
//!                  +-----> Derive-Secret(., "s ap traffic", ClientHello...server Finished)
//!                  +-----> Derive-Secret(., "exp master", ClientHello...server Finished)
//!                  +-----> Derive-Secret(., "res master", ClientHello...client Finished)
//!                                                   (ResumptionMasterSecret)
//! ```
//!
//! Each stage is its own type and each `into_*` consumes the previous stage, so secrets can only
//! be derived in the RFC's order. Functions take *transcript hashes* (see [`Transcript`]), not
//! message lists, so a caller can feed hashes taken from a key log or computed from the wire.
//!
//! # Totality
//!
//! Nothing here panics on any input. Where the RFC's encodings cannot express an input
//! (`HkdfLabel` with more than 255·Hash.length output bytes, a label longer than 249 bytes, a
//! context longer than 255 bytes), the `try_*` functions return a [`TlsModelError`] and their
//! infallible counterparts (kept for the common case, where the length is a constant) return an
//! **empty vector**, which can never be mistaken for a key. Record functions return errors for
//! short, oversized or unauthentic records.
//!
//! # What this model does not do
//!
//! No handshake state machine, no parsing of handshake messages (the transcript takes their bytes
//! as they were sent), no signatures, no key exchange (the (EC)DHE output is an input; tests use
//! `x25519-dalek` for RFC 8448's keys). The crypto is RustCrypto, deliberately not the library
//! of the stack under test.

mod record;
mod tls12;
mod tls13;

#[cfg(test)]
mod tests;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::models::profile::{Deviation, Profile};

pub use record::{RecordProtection12, RecordProtection13, record_nonce};
pub use tls12::{KeyBlock, MasterSecret12, Sender, prf};
pub use tls13::{
    EarlySecret, HandshakeSecret, MasterSecret, PskKind, ResumptionMasterSecret, SecretKind,
    TrafficKeys, TrafficSecret, derive_secret, export_keying_material, hkdf_expand_label,
    hkdf_extract, hkdf_label, try_export_keying_material, try_hkdf_expand_label,
};

/// Where a TLS implementation departs from RFC 8446 or RFC 5246 in what this model derives:
/// nowhere. A key schedule leaves an implementation no latitude (a secret that differs is
/// wrong, not a reading of the text), so the enum has no variant and the TLS profile
/// ([`TlsProfile`]) is empty under either [`ProfileName`](crate::models::profile::ProfileName).
/// The derivation functions are pure functions of their inputs and take none; the type is
/// there so that the TLS suite states its (empty) deviations like every other suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsDeviation {}

impl Deviation for TlsDeviation {
    const MODEL: &'static str = "tls";
    const ALL: &'static [TlsDeviation] = &[];
    const LINUX: &'static [TlsDeviation] = &[];

    fn section(self) -> &'static str {
        match self {}
    }

    fn instead(self) -> &'static str {
        match self {}
    }
}

/// The TLS model's profile: the one profile type ([`Profile`]) over [`TlsDeviation`],
/// always empty.
pub type TlsProfile = Profile<TlsDeviation>;

/// The hash function of a cipher suite (RFC 8446 §B.4, RFC 5246 §5 / RFC 5288 §3 for the PRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HashAlg {
    /// SHA-256 (32-byte output).
    Sha256,
    /// SHA-384 (48-byte output).
    Sha384,
}

impl HashAlg {
    /// Hash.length: the output size in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }

    /// The hash of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
        }
    }

    /// HMAC (RFC 2104) of `data` under `key`; any key length is valid.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => hmac_with::<sha2::Sha256>(key, data),
            HashAlg::Sha384 => hmac_with::<sha2::Sha384>(key, data),
        }
    }
}

impl HashAlg {
    /// HMAC keyed once with `key`: [`HmacKey::mac`] then costs the message's blocks only,
    /// not the two blocks of the key's pads (what PRF and HKDF chains do block after block).
    pub fn hmac_key(self, key: &[u8]) -> HmacKey {
        match self {
            HashAlg::Sha256 => HmacKey::Sha256(keyed(key)),
            HashAlg::Sha384 => HmacKey::Sha384(keyed(key)),
        }
    }
}

/// An HMAC key with its pads already hashed (see [`HashAlg::hmac_key`]).
#[derive(Clone)]
pub enum HmacKey {
    /// HMAC-SHA256.
    Sha256(Option<hmac::Hmac<sha2::Sha256>>),
    /// HMAC-SHA384.
    Sha384(Option<hmac::Hmac<sha2::Sha384>>),
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key's state is secret material; its algorithm is enough to tell keys apart.
        match self {
            HmacKey::Sha256(_) => f.write_str("HmacKey(SHA-256)"),
            HmacKey::Sha384(_) => f.write_str("HmacKey(SHA-384)"),
        }
    }
}

impl HmacKey {
    /// HMAC (RFC 2104) of `data` under this key: the same bytes as [`HashAlg::hmac`].
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        match self {
            HmacKey::Sha256(m) => mac_from(m, data),
            HmacKey::Sha384(m) => mac_from(m, data),
        }
    }
}

fn keyed<D>(key: &[u8]) -> Option<hmac::Hmac<D>>
where
    D: hmac::EagerHash,
    hmac::Hmac<D>: KeyInit + Mac,
{
    // Every key length is valid (see `hmac_with`): `None` never happens.
    <hmac::Hmac<D> as KeyInit>::new_from_slice(key).ok()
}

fn mac_from<D>(keyed: &Option<hmac::Hmac<D>>, data: &[u8]) -> Vec<u8>
where
    D: hmac::EagerHash,
    hmac::Hmac<D>: KeyInit + Mac + Clone,
{
    let Some(mut mac) = keyed.clone() else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_with<D>(key: &[u8], data: &[u8]) -> Vec<u8>
where
    D: hmac::EagerHash,
    hmac::Hmac<D>: KeyInit + Mac,
{
    // HMAC takes keys of every length (long keys are hashed, short ones padded), so this
    // constructor cannot fail; the `else` arm only keeps the function free of `unwrap`.
    let Ok(mut mac) = <hmac::Hmac<D> as KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The record protection algorithm of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Aead {
    /// AES-128 in Galois/Counter Mode (RFC 5116 §5.1).
    Aes128Gcm,
    /// AES-256 in Galois/Counter Mode (RFC 5116 §5.2).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439 §2.8).
    ChaCha20Poly1305,
}

impl Aead {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha20Poly1305 => 32,
        }
    }

    /// The authentication tag length in bytes (16 for all three).
    pub fn tag_len(self) -> usize {
        16
    }

    /// The TLS 1.2 key-block IV length (RFC 5288 §3: a 4-byte implicit salt for GCM; RFC 7905
    /// §2: a 12-byte IV for ChaCha20-Poly1305).
    pub fn tls12_iv_len(self) -> usize {
        match self {
            Aead::Aes128Gcm | Aead::Aes256Gcm => 4,
            Aead::ChaCha20Poly1305 => 12,
        }
    }
}

/// Protocol version of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Version {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

/// A cipher suite the model knows: its IANA code point and name, version, hash and AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CipherSuite {
    /// IANA code point.
    pub id: u16,
    /// IANA name (e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    pub name: &'static str,
    /// TLS 1.2 or TLS 1.3.
    pub version: Version,
    /// The suite's hash (TLS 1.3: HKDF and transcript; TLS 1.2: PRF and Finished).
    pub hash: HashAlg,
    /// The record protection algorithm.
    pub aead: Aead,
}

const fn suite(
    id: u16,
    name: &'static str,
    version: Version,
    hash: HashAlg,
    aead: Aead,
) -> CipherSuite {
    CipherSuite {
        id,
        name,
        version,
        hash,
        aead,
    }
}

impl CipherSuite {
    /// Every suite the model supports: the three TLS 1.3 suites (RFC 8446 §B.4) and the TLS 1.2
    /// AEAD suites (RFC 5289 §3.2, RFC 5288 §3, RFC 7905 §2).
    pub const ALL: &'static [CipherSuite] = &[
        suite(
            0x1301,
            "TLS_AES_128_GCM_SHA256",
            Version::Tls13,
            HashAlg::Sha256,
            Aead::Aes128Gcm,
        ),
        suite(
            0x1302,
            "TLS_AES_256_GCM_SHA384",
            Version::Tls13,
            HashAlg::Sha384,
            Aead::Aes256Gcm,
        ),
        suite(
            0x1303,
            "TLS_CHACHA20_POLY1305_SHA256",
            Version::Tls13,
            HashAlg::Sha256,
            Aead::ChaCha20Poly1305,
        ),
        suite(
            0xc02b,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::Aes128Gcm,
        ),
        suite(
            0xc02f,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::Aes128Gcm,
        ),
        suite(
            0xc02c,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Version::Tls12,
            HashAlg::Sha384,
            Aead::Aes256Gcm,
        ),
        suite(
            0xc030,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            Version::Tls12,
            HashAlg::Sha384,
            Aead::Aes256Gcm,
        ),
        suite(
            0xcca9,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::ChaCha20Poly1305,
        ),
        suite(
            0xcca8,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::ChaCha20Poly1305,
        ),
        suite(
            0x009e,
            "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::Aes128Gcm,
        ),
        suite(
            0x009f,
            "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
            Version::Tls12,
            HashAlg::Sha384,
            Aead::Aes256Gcm,
        ),
        suite(
            0x009c,
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
            Version::Tls12,
            HashAlg::Sha256,
            Aead::Aes128Gcm,
        ),
        suite(
            0x009d,
            "TLS_RSA_WITH_AES_256_GCM_SHA384",
            Version::Tls12,
            HashAlg::Sha384,
            Aead::Aes256Gcm,
        ),
    ];

    /// The suite with IANA code point `id`, if the model supports it.
    pub fn from_id(id: u16) -> Option<CipherSuite> {
        Self::ALL.iter().copied().find(|s| s.id == id)
    }

    /// The suite with IANA name `name` (exact spelling), if the model supports it.
    pub fn from_name(name: &str) -> Option<CipherSuite> {
        Self::ALL.iter().copied().find(|s| s.name == name)
    }
}

/// Errors of the TLS model. Each variant is one violated rule or one input the model cannot
/// represent.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsModelError {
    /// A key whose length does not fit the AEAD.
    #[error("{aead:?} needs a {expected}-byte key, got {got} bytes")]
    BadKeyLength {
        /// The AEAD the key was given for.
        aead: Aead,
        /// The key length the AEAD takes.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An IV (or TLS 1.2 implicit salt) whose length does not fit the AEAD and version.
    #[error("{aead:?} needs a {expected}-byte IV, got {got} bytes")]
    BadIvLength {
        /// The AEAD the IV was given for.
        aead: Aead,
        /// The IV length expected.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A protected record too short to hold its explicit nonce and tag.
    #[error("record too short: needs at least {needed} bytes, has {got}")]
    BadRecord {
        /// The minimum length of the protected fragment.
        needed: usize,
        /// Its actual length.
        got: usize,
    },
    /// A protected record longer than the RFC allows (RFC 8446 §5.2: 2^14 + 256; RFC 5246
    /// §6.2.3: 2^14 + 2048).
    #[error("record overflow: {got} bytes, limit {limit}")]
    RecordOverflow {
        /// The limit for this version.
        limit: usize,
        /// The record's length.
        got: usize,
    },
    /// The record header's length field disagrees with the ciphertext given.
    #[error("record header says {header} bytes, ciphertext has {actual}")]
    HeaderLengthMismatch {
        /// The length field of the header.
        header: usize,
        /// The ciphertext length.
        actual: usize,
    },
    /// A TLS 1.3 protected record whose outer type is not `application_data` (RFC 8446 §5.2).
    #[error("protected TLS 1.3 record has outer content type {content_type}, not 23")]
    NotApplicationData {
        /// The outer content type found.
        content_type: u8,
    },
    /// The AEAD tag did not verify (wrong key, wrong sequence number, or tampering).
    #[error("record {seq} failed authentication")]
    Authentication {
        /// The sequence number the record was opened with.
        seq: u64,
    },
    /// A TLS 1.3 inner plaintext of only zeros: no content type (RFC 8446 §5.4).
    #[error("record {seq} has no non-zero content type (all padding)")]
    NoContentType {
        /// The record's sequence number.
        seq: u64,
    },
    /// The 64-bit sequence number is exhausted (RFC 8446 §5.3, RFC 5246 §6.1: it must not wrap).
    #[error("sequence number exhausted")]
    SequenceExhausted,
    /// A value of the wrong length (e.g. a logged TLS 1.2 master secret that is not 48 bytes).
    #[error("{what}: expected {expected} bytes, got {got}")]
    WrongLength {
        /// What the value is.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// HKDF-Expand cannot produce this many bytes (RFC 5869 §2.3: at most 255·Hash.length), or
    /// `HkdfLabel.length` (a `u16`) cannot carry it.
    #[error("cannot expand {requested} bytes, at most {max}")]
    OutputTooLong {
        /// The output length asked for.
        requested: usize,
        /// The most this hash can give.
        max: usize,
    },
    /// A label that does not fit `HkdfLabel.label` (`opaque label<7..255>` including the
    /// `"tls13 "` prefix, RFC 8446 §7.1).
    #[error("label of {len} bytes does not fit HkdfLabel (at most 249)")]
    LabelTooLong {
        /// The label length given.
        len: usize,
    },
    /// A context that does not fit `HkdfLabel.context` (`opaque context<0..255>`).
    #[error("context of {len} bytes does not fit HkdfLabel (at most 255)")]
    ContextTooLong {
        /// The context length given.
        len: usize,
    },
}

#[derive(Clone)]
enum TranscriptState {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
}

/// A running transcript hash (RFC 8446 §4.4.1; RFC 5246 §7.4.9 `handshake_messages`): the hash
/// of every handshake message added so far, each with its 4-byte header, as sent on the wire
/// (no record headers, no ChangeCipherSpec). Cloning is cheap (a hash state), so a caller can
/// take the hash at every point the key schedule needs one.
#[derive(Clone)]
pub struct Transcript {
    alg: HashAlg,
    state: TranscriptState,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Transcript({:?}, {})",
            self.alg,
            hex::encode(self.hash())
        )
    }
}

impl Transcript {
    /// An empty transcript over `alg`.
    pub fn new(alg: HashAlg) -> Self {
        let state = match alg {
            HashAlg::Sha256 => TranscriptState::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => TranscriptState::Sha384(sha2::Sha384::new()),
        };
        Transcript { alg, state }
    }

    /// The transcript's hash function.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Append one handshake message (type, 3-byte length, body) exactly as sent. Fragments may
    /// also be added one after the other: the hash only sees the concatenation.
    pub fn add(&mut self, handshake_message_with_header: &[u8]) {
        match &mut self.state {
            TranscriptState::Sha256(h) => h.update(handshake_message_with_header),
            TranscriptState::Sha384(h) => h.update(handshake_message_with_header),
        }
    }

    /// Transcript-Hash of everything added so far (the state is not consumed).
    pub fn hash(&self) -> Vec<u8> {
        match &self.state {
            TranscriptState::Sha256(h) => h.clone().finalize().to_vec(),
            TranscriptState::Sha384(h) => h.clone().finalize().to_vec(),
        }
    }

    /// RFC 8446 §4.4.1: after a HelloRetryRequest, ClientHello1 is replaced by the synthetic
    /// `message_hash` message `0xFE 00 00 Hash.length ‖ Hash(ClientHello1)`. Call this when the
    /// transcript holds exactly ClientHello1, then add the HelloRetryRequest and ClientHello2.
    pub fn into_message_hash(self) -> Transcript {
        let ch1_hash = self.hash();
        let mut next = Transcript::new(self.alg);
        // Hash.length is 32 or 48: it fits the one-byte low end of the 24-bit length.
        let len = u8::try_from(ch1_hash.len()).unwrap_or(u8::MAX);
        next.add(&[0xfe, 0, 0, len]);
        next.add(&ch1_hash);
        next
    }
}
