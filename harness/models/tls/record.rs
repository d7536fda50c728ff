//! Record protection, pure AEAD: TLS 1.3 (RFC 8446 §5.2–5.4) and TLS 1.2 AES-GCM (RFC 5288 §3)
//! and ChaCha20-Poly1305 (RFC 7905 §2). Sequence numbers are counted here, one per direction
//! and key; they advance only when a record is sealed or opened successfully.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};

use super::{Aead, TlsModelError, TrafficKeys};

/// TLS 1.3 `TLSCiphertext.length` limit: 2^14 + 256 (RFC 8446 §5.2).
const TLS13_MAX_CIPHERTEXT: usize = (1 << 14) + 256;
/// TLS 1.2 `TLSCiphertext.length` limit: 2^14 + 2048 (RFC 5246 §6.2.3).
const TLS12_MAX_CIPHERTEXT: usize = (1 << 14) + 2048;
/// The AEAD tag length (16 for all three AEADs).
const TAG_LEN: usize = 16;
/// The TLS 1.2 GCM explicit nonce length (RFC 5288 §3).
const EXPLICIT_NONCE_LEN: usize = 8;
/// ContentType application_data (RFC 8446 §5.1).
const APPLICATION_DATA: u8 = 23;

enum Cipher {
    Aes128(Box<aes_gcm::Aes128Gcm>),
    Aes256(Box<aes_gcm::Aes256Gcm>),
    ChaCha(Box<chacha20poly1305::ChaCha20Poly1305>),
}

impl Cipher {
    fn new(aead: Aead, key: &[u8]) -> Result<Self, TlsModelError> {
        let bad = TlsModelError::BadKeyLength {
            aead,
            expected: aead.key_len(),
            got: key.len(),
        };
        if key.len() != aead.key_len() {
            return Err(bad);
        }
        Ok(match aead {
            Aead::Aes128Gcm => Cipher::Aes128(Box::new(
                aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| bad)?,
            )),
            Aead::Aes256Gcm => Cipher::Aes256(Box::new(
                aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| bad)?,
            )),
            Aead::ChaCha20Poly1305 => Cipher::ChaCha(Box::new(
                chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(|_| bad)?,
            )),
        })
    }

    fn seal(&self, nonce: [u8; 12], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload { msg, aad };
        match self {
            Cipher::Aes128(c) => c.encrypt(&nonce.into(), payload).ok(),
            Cipher::Aes256(c) => c.encrypt(&nonce.into(), payload).ok(),
            Cipher::ChaCha(c) => c.encrypt(&nonce.into(), payload).ok(),
        }
    }

    fn open(&self, nonce: [u8; 12], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        let payload = Payload { msg, aad };
        match self {
            Cipher::Aes128(c) => c.decrypt(&nonce.into(), payload).ok(),
            Cipher::Aes256(c) => c.decrypt(&nonce.into(), payload).ok(),
            Cipher::ChaCha(c) => c.decrypt(&nonce.into(), payload).ok(),
        }
    }
}

/// The per-record nonce of RFC 8446 §5.3 (and RFC 7905 §2 for TLS 1.2 ChaCha20-Poly1305): the
/// 64-bit sequence number, big-endian, left-padded with zeros to 12 bytes, XORed with the IV.
pub fn record_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    xor_nonce(iv, seq)
}

fn xor_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

fn iv12(aead: Aead, iv: &[u8]) -> Result<[u8; 12], TlsModelError> {
    iv.try_into().map_err(|_| TlsModelError::BadIvLength {
        aead,
        expected: 12,
        got: iv.len(),
    })
}

/// One direction of TLS 1.3 record protection (RFC 8446 §5.2–5.4) under one traffic key.
pub struct RecordProtection13 {
    aead: Aead,
    cipher: Cipher,
    iv: [u8; 12],
    seq: u64,
}

impl std::fmt::Debug for RecordProtection13 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProtection13")
            .field("aead", &self.aead)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl RecordProtection13 {
    /// Protection with `keys` (from [`super::TrafficSecret::keys`]); the sequence number starts
    /// at 0 (RFC 8446 §5.3: reset at every key change).
    pub fn new(aead: Aead, keys: &TrafficKeys) -> Result<Self, TlsModelError> {
        Ok(RecordProtection13 {
            aead,
            cipher: Cipher::new(aead, &keys.key)?,
            iv: iv12(aead, &keys.iv)?,
            seq: 0,
        })
    }

    /// The sequence number the next record will use.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Open one protected record (RFC 8446 §5.2): `header` is its 5-byte header (the AAD),
    /// `ciphertext` the `encrypted_record` (ciphertext ‖ tag). Returns the inner content type and
    /// the content, zero padding stripped (§5.4). The sequence number advances only on success.
    pub fn open(
        &mut self,
        header: &[u8; 5],
        ciphertext: &[u8],
    ) -> Result<(u8, Vec<u8>), TlsModelError> {
        if header[0] != APPLICATION_DATA {
            return Err(TlsModelError::NotApplicationData {
                content_type: header[0],
            });
        }
        let header_len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if header_len != ciphertext.len() {
            return Err(TlsModelError::HeaderLengthMismatch {
                header: header_len,
                actual: ciphertext.len(),
            });
        }
        if ciphertext.len() > TLS13_MAX_CIPHERTEXT {
            return Err(TlsModelError::RecordOverflow {
                limit: TLS13_MAX_CIPHERTEXT,
                got: ciphertext.len(),
            });
        }
        // At least the tag and the one byte of content type.
        if ciphertext.len() < TAG_LEN + 1 {
            return Err(TlsModelError::BadRecord {
                needed: TAG_LEN + 1,
                got: ciphertext.len(),
            });
        }
        let seq = self.seq;
        let next = seq.checked_add(1).ok_or(TlsModelError::SequenceExhausted)?;
        let mut inner = self
            .cipher
            .open(xor_nonce(&self.iv, seq), header, ciphertext)
            .ok_or(TlsModelError::Authentication { seq })?;
        let Some(type_at) = inner.iter().rposition(|&b| b != 0) else {
            // Authentic, but without a content type: an error like any other, so the sequence
            // number stays (the connection must end with unexpected_message anyway).
            return Err(TlsModelError::NoContentType { seq });
        };
        let content_type = inner[type_at];
        inner.truncate(type_at);
        self.seq = next;
        Ok((content_type, inner))
    }

    /// Protect `content` of `content_type` with `padding` zero bytes (RFC 8446 §5.2, §5.4) and
    /// return the whole record, header included. Deliberately oversized records (beyond
    /// 2^14 + 256) are allowed, to build broken input; a record whose length does not fit the
    /// 16-bit length field, or a sealed-out sequence space, gives an empty vector.
    pub fn seal(&mut self, content_type: u8, content: &[u8], padding: usize) -> Vec<u8> {
        let Some(next) = self.seq.checked_add(1) else {
            return Vec::new();
        };
        let mut inner = Vec::with_capacity(content.len() + 1 + padding);
        inner.extend_from_slice(content);
        inner.push(content_type);
        inner.resize(inner.len() + padding, 0);
        let Ok(length) = u16::try_from(inner.len() + TAG_LEN) else {
            return Vec::new();
        };
        let [hi, lo] = length.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, hi, lo];
        let Some(sealed) = self
            .cipher
            .seal(xor_nonce(&self.iv, self.seq), &header, &inner)
        else {
            return Vec::new();
        };
        self.seq = next;
        let mut record = header.to_vec();
        record.extend_from_slice(&sealed);
        record
    }
}

/// One direction of TLS 1.2 AEAD record protection under one key: AES-GCM with a 4-byte
/// implicit salt and an 8-byte explicit nonce per record (RFC 5288 §3), or ChaCha20-Poly1305
/// with a 12-byte IV XORed with the sequence number (RFC 7905 §2). The additional data is
/// `seq_num ‖ type ‖ version ‖ length` of the plaintext (RFC 5246 §6.2.3.3).
pub struct RecordProtection12 {
    aead: Aead,
    cipher: Cipher,
    iv: Vec<u8>,
    seq: u64,
}

impl std::fmt::Debug for RecordProtection12 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProtection12")
            .field("aead", &self.aead)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl RecordProtection12 {
    /// Protection with a key-block key and IV ([`super::KeyBlock`]): the IV is the 4-byte salt
    /// for GCM, 12 bytes for ChaCha20-Poly1305. The sequence number starts at 0 (RFC 5246 §6.1:
    /// reset by each ChangeCipherSpec).
    pub fn new(aead: Aead, key: &[u8], iv: &[u8]) -> Result<Self, TlsModelError> {
        let expected = aead.tls12_iv_len();
        if iv.len() != expected {
            return Err(TlsModelError::BadIvLength {
                aead,
                expected,
                got: iv.len(),
            });
        }
        Ok(RecordProtection12 {
            aead,
            cipher: Cipher::new(aead, key)?,
            iv: iv.to_vec(),
            seq: 0,
        })
    }

    /// The sequence number the next record will use.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn explicit_len(&self) -> usize {
        match self.aead {
            Aead::Aes128Gcm | Aead::Aes256Gcm => EXPLICIT_NONCE_LEN,
            Aead::ChaCha20Poly1305 => 0,
        }
    }

    /// The nonce for `seq`, with `explicit` as the GCM explicit part (ignored for ChaCha).
    fn nonce(&self, seq: u64, explicit: &[u8]) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        match self.aead {
            Aead::Aes128Gcm | Aead::Aes256Gcm => {
                for (n, b) in nonce.iter_mut().zip(self.iv.iter().chain(explicit)) {
                    *n = *b;
                }
                nonce
            }
            Aead::ChaCha20Poly1305 => {
                for (n, b) in nonce.iter_mut().zip(&self.iv) {
                    *n = *b;
                }
                xor_nonce(&nonce, seq)
            }
        }
    }

    fn aad(seq: u64, content_type: u8, version: u16, plaintext_len: usize) -> Option<[u8; 13]> {
        let len = u16::try_from(plaintext_len).ok()?;
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&seq.to_be_bytes());
        aad[8] = content_type;
        aad[9..11].copy_from_slice(&version.to_be_bytes());
        aad[11..].copy_from_slice(&len.to_be_bytes());
        Some(aad)
    }

    /// Open one record: `content_type` and `version` from its header, `fragment` its payload
    /// (GCM: explicit nonce (8) ‖ ciphertext ‖ tag; ChaCha: ciphertext ‖ tag). Returns the
    /// plaintext; the sequence number advances only on success.
    pub fn open(
        &mut self,
        content_type: u8,
        version: u16,
        fragment: &[u8],
    ) -> Result<Vec<u8>, TlsModelError> {
        if fragment.len() > TLS12_MAX_CIPHERTEXT {
            return Err(TlsModelError::RecordOverflow {
                limit: TLS12_MAX_CIPHERTEXT,
                got: fragment.len(),
            });
        }
        let needed = self.explicit_len() + TAG_LEN;
        if fragment.len() < needed {
            return Err(TlsModelError::BadRecord {
                needed,
                got: fragment.len(),
            });
        }
        let seq = self.seq;
        let next = seq.checked_add(1).ok_or(TlsModelError::SequenceExhausted)?;
        let (explicit, ciphertext) = fragment.split_at(self.explicit_len());
        let plaintext_len = ciphertext.len() - TAG_LEN;
        let aad = Self::aad(seq, content_type, version, plaintext_len).ok_or(
            TlsModelError::RecordOverflow {
                limit: TLS12_MAX_CIPHERTEXT,
                got: fragment.len(),
            },
        )?;
        let plaintext = self
            .cipher
            .open(self.nonce(seq, explicit), &aad, ciphertext)
            .ok_or(TlsModelError::Authentication { seq })?;
        self.seq = next;
        Ok(plaintext)
    }

    /// Protect `plaintext` and return the whole record (header ‖ fragment). For GCM the
    /// explicit nonce is the sequence number (the choice RFC 5288 §3 suggests and most stacks
    /// make). A plaintext too long for the 16-bit length field, or a sealed-out sequence space,
    /// gives an empty vector.
    pub fn seal(&mut self, content_type: u8, version: u16, plaintext: &[u8]) -> Vec<u8> {
        let seq = self.seq;
        let Some(next) = seq.checked_add(1) else {
            return Vec::new();
        };
        let explicit = seq.to_be_bytes();
        let explicit = &explicit[..self.explicit_len()];
        let Some(aad) = Self::aad(seq, content_type, version, plaintext.len()) else {
            return Vec::new();
        };
        let Ok(length) = u16::try_from(explicit.len() + plaintext.len() + TAG_LEN) else {
            return Vec::new();
        };
        let Some(sealed) = self.cipher.seal(self.nonce(seq, explicit), &aad, plaintext) else {
            return Vec::new();
        };
        self.seq = next;
        let mut record = vec![content_type];
        record.extend_from_slice(&version.to_be_bytes());
        record.extend_from_slice(&length.to_be_bytes());
        record.extend_from_slice(explicit);
        record.extend_from_slice(&sealed);
        record
    }
}
