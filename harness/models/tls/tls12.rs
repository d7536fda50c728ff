//! The TLS 1.2 PRF, master secret, key block and Finished (RFC 5246 §5, §6.3, §7.4.9, §8.1;
//! RFC 7627 §4 for the extended master secret).

use super::{CipherSuite, HashAlg, TlsModelError};

/// The length of every TLS 1.2 master secret (RFC 5246 §8.1).
const MASTER_SECRET_LEN: usize = 48;

/// `PRF(secret, label, seed) = P_<hash>(secret, label ‖ seed)` truncated to `len` bytes
/// (RFC 5246 §5), with `A(0) = label ‖ seed`, `A(i) = HMAC(secret, A(i-1))` and output
/// `HMAC(secret, A(1) ‖ label ‖ seed) ‖ HMAC(secret, A(2) ‖ label ‖ seed) ‖ …`. The hash is the
/// suite's (SHA-256 unless the suite names SHA-384, RFC 5288 §3 / RFC 5289 §3.2).
pub fn prf(alg: HashAlg, secret: &[u8], label: &str, seed: &[u8], len: usize) -> Vec<u8> {
    let mut label_seed = Vec::with_capacity(label.len() + seed.len());
    label_seed.extend_from_slice(label.as_bytes());
    label_seed.extend_from_slice(seed);
    let mut out = Vec::with_capacity(len);
    // P_hash (RFC 5246 §5): every HMAC is under `secret`, so its pads are hashed once.
    let key = alg.hmac_key(secret);
    let mut a = key.mac(&label_seed);
    while out.len() < len {
        let mut input = a.clone();
        input.extend_from_slice(&label_seed);
        out.extend_from_slice(&key.mac(&input));
        a = key.mac(&a);
    }
    out.truncate(len);
    out
}

/// Which side's Finished message (RFC 5246 §7.4.9 `finished_label`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Sender {
    /// The client: `"client finished"`.
    Client,
    /// The server: `"server finished"`.
    Server,
}

impl Sender {
    /// The PRF label of this side's Finished (RFC 5246 §7.4.9).
    pub fn finished_label(self) -> &'static str {
        match self {
            Sender::Client => "client finished",
            Sender::Server => "server finished",
        }
    }
}

/// A TLS 1.2 master secret (48 bytes, RFC 5246 §8.1). Only obtainable from a pre-master secret
/// (classic or extended) or from a key log, together with the PRF hash it belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterSecret12 {
    alg: HashAlg,
    bytes: [u8; MASTER_SECRET_LEN],
}

impl std::fmt::Debug for MasterSecret12 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MasterSecret12({:?}, {})",
            self.alg,
            hex::encode(self.bytes)
        )
    }
}

impl MasterSecret12 {
    fn from_prf_output(alg: HashAlg, out: &[u8]) -> Self {
        let mut bytes = [0u8; MASTER_SECRET_LEN];
        // `prf` returns exactly the length asked for.
        for (b, o) in bytes.iter_mut().zip(out) {
            *b = *o;
        }
        MasterSecret12 { alg, bytes }
    }

    /// `master_secret = PRF(pre_master_secret, "master secret", ClientHello.random ‖
    /// ServerHello.random)[0..47]` (RFC 5246 §8.1).
    pub fn from_pre_master(
        alg: HashAlg,
        pms: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Self {
        let mut seed = Vec::with_capacity(64);
        seed.extend_from_slice(client_random);
        seed.extend_from_slice(server_random);
        Self::from_prf_output(
            alg,
            &prf(alg, pms, "master secret", &seed, MASTER_SECRET_LEN),
        )
    }

    /// `master_secret = PRF(pre_master_secret, "extended master secret", session_hash)[0..47]`
    /// (RFC 7627 §4), where `session_hash` is the hash of the handshake messages up to and
    /// including ClientKeyExchange (RFC 7627 §3).
    pub fn extended(alg: HashAlg, pms: &[u8], session_hash: &[u8]) -> Self {
        Self::from_prf_output(
            alg,
            &prf(
                alg,
                pms,
                "extended master secret",
                session_hash,
                MASTER_SECRET_LEN,
            ),
        )
    }

    /// A master secret read from a key log (`CLIENT_RANDOM` line); it must be 48 bytes.
    pub fn from_logged(alg: HashAlg, bytes: &[u8]) -> Result<Self, TlsModelError> {
        let bytes: [u8; MASTER_SECRET_LEN] =
            bytes.try_into().map_err(|_| TlsModelError::WrongLength {
                what: "TLS 1.2 master secret",
                expected: MASTER_SECRET_LEN,
                got: bytes.len(),
            })?;
        Ok(MasterSecret12 { alg, bytes })
    }

    /// The PRF hash this master secret belongs to.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The 48 bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `key_block = PRF(master_secret, "key expansion", server_random ‖ client_random)`
    /// (RFC 5246 §6.3), cut into client_write_key, server_write_key, client_write_IV,
    /// server_write_IV (AEAD suites have no MAC keys). The IVs are the 4-byte implicit salt for
    /// AES-GCM (RFC 5288 §3) and 12 bytes for ChaCha20-Poly1305 (RFC 7905 §2). The PRF is this
    /// master secret's hash; the suite only gives the shape.
    pub fn key_block(
        &self,
        suite: &CipherSuite,
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> KeyBlock {
        let key_len = suite.aead.key_len();
        let iv_len = suite.aead.tls12_iv_len();
        let mut seed = Vec::with_capacity(64);
        seed.extend_from_slice(server_random);
        seed.extend_from_slice(client_random);
        let block = prf(
            self.alg,
            &self.bytes,
            "key expansion",
            &seed,
            2 * key_len + 2 * iv_len,
        );
        let (client_key, rest) = block.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_iv, server_iv) = rest.split_at(iv_len);
        KeyBlock {
            client_key: client_key.to_vec(),
            server_key: server_key.to_vec(),
            client_iv: client_iv.to_vec(),
            server_iv: server_iv.to_vec(),
        }
    }

    /// `verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11]`
    /// (RFC 5246 §7.4.9), given that hash.
    pub fn verify_data(&self, sender: Sender, handshake_hash: &[u8]) -> [u8; 12] {
        let out = prf(
            self.alg,
            &self.bytes,
            sender.finished_label(),
            handshake_hash,
            12,
        );
        let mut verify = [0u8; 12];
        for (v, o) in verify.iter_mut().zip(&out) {
            *v = *o;
        }
        verify
    }
}

/// The AEAD part of a TLS 1.2 key block (RFC 5246 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBlock {
    /// client_write_key.
    pub client_key: Vec<u8>,
    /// server_write_key.
    pub server_key: Vec<u8>,
    /// client_write_IV: 4-byte implicit salt (GCM) or 12-byte IV (ChaCha20-Poly1305).
    pub client_iv: Vec<u8>,
    /// server_write_IV: 4-byte implicit salt (GCM) or 12-byte IV (ChaCha20-Poly1305).
    pub server_iv: Vec<u8>,
}
