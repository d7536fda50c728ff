//! The TLS 1.3 key schedule (RFC 8446 §7.1–7.3, §7.5, §4.4.4, §4.2.11.2, §4.6.3) as typestates.

use super::{Aead, HashAlg, TlsModelError};

/// The label prefix every TLS 1.3 `HkdfLabel` carries (RFC 8446 §7.1).
const LABEL_PREFIX: &[u8] = b"tls13 ";

/// HKDF-Extract(salt, IKM) (RFC 5869 §2.2, used by RFC 8446 §7.1). An empty salt is the same as
/// a salt of Hash.length zeros (HMAC pads its key with zeros).
pub fn hkdf_extract(alg: HashAlg, salt: &[u8], ikm: &[u8]) -> Vec<u8> {
    match alg {
        HashAlg::Sha256 => hkdf::Hkdf::<sha2::Sha256>::extract(Some(salt), ikm)
            .0
            .to_vec(),
        HashAlg::Sha384 => hkdf::Hkdf::<sha2::Sha384>::extract(Some(salt), ikm)
            .0
            .to_vec(),
    }
}

/// The encoded `HkdfLabel` structure (RFC 8446 §7.1): `u16 length ‖ opaque label<7..255>
/// ("tls13 " + label) ‖ opaque context<0..255>`. RFC 8448 prints it as `info`.
pub fn hkdf_label(len: usize, label: &str, context: &[u8]) -> Result<Vec<u8>, TlsModelError> {
    let length = u16::try_from(len).map_err(|_| TlsModelError::OutputTooLong {
        requested: len,
        max: usize::from(u16::MAX),
    })?;
    let full_label_len = u8::try_from(LABEL_PREFIX.len() + label.len())
        .map_err(|_| TlsModelError::LabelTooLong { len: label.len() })?;
    let context_len = u8::try_from(context.len())
        .map_err(|_| TlsModelError::ContextTooLong { len: context.len() })?;
    let mut info = Vec::with_capacity(4 + usize::from(full_label_len) + context.len());
    info.extend_from_slice(&length.to_be_bytes());
    info.push(full_label_len);
    info.extend_from_slice(LABEL_PREFIX);
    info.extend_from_slice(label.as_bytes());
    info.push(context_len);
    info.extend_from_slice(context);
    Ok(info)
}

fn hkdf_expand(
    alg: HashAlg,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Vec<u8>, TlsModelError> {
    let max = 255 * alg.output_len();
    let too_long = TlsModelError::OutputTooLong {
        requested: len,
        max,
    };
    if len > max {
        return Err(too_long);
    }
    let mut okm = vec![0u8; len];
    // `from_prk` only rejects a PRK shorter than Hash.length; RFC 5869 §2.3 asks for "at least
    // HashLen octets", and every secret of the schedule has exactly that length. A shorter
    // secret (e.g. a truncated key-log line) is still expanded, by HMAC directly.
    let expanded = match alg {
        HashAlg::Sha256 => hkdf::Hkdf::<sha2::Sha256>::from_prk(prk)
            .map(|h| h.expand(info, &mut okm).is_ok())
            .ok(),
        HashAlg::Sha384 => hkdf::Hkdf::<sha2::Sha384>::from_prk(prk)
            .map(|h| h.expand(info, &mut okm).is_ok())
            .ok(),
    };
    match expanded {
        Some(true) => Ok(okm),
        Some(false) => Err(too_long),
        None => Ok(expand_by_hmac(alg, prk, info, len)),
    }
}

/// HKDF-Expand written out (RFC 5869 §2.3), for PRKs the `hkdf` crate refuses as too short.
fn expand_by_hmac(alg: HashAlg, prk: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut okm = Vec::with_capacity(len);
    let mut previous: Vec<u8> = Vec::new();
    let mut counter: u8 = 1;
    let key = alg.hmac_key(prk);
    while okm.len() < len {
        let mut input = previous.clone();
        input.extend_from_slice(info);
        input.push(counter);
        previous = key.mac(&input);
        okm.extend_from_slice(&previous);
        counter = counter.wrapping_add(1);
    }
    okm.truncate(len);
    okm
}

/// HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1); the `"tls13 "` prefix is
/// added here. Errors when the `HkdfLabel` cannot encode the request or HKDF cannot produce
/// `len` bytes (more than 255·Hash.length).
pub fn try_hkdf_expand_label(
    alg: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Result<Vec<u8>, TlsModelError> {
    let info = hkdf_label(len, label, context)?;
    hkdf_expand(alg, secret, &info, len)
}

/// HKDF-Expand-Label (RFC 8446 §7.1), infallible form of [`try_hkdf_expand_label`]: returns an
/// empty vector where that one returns an error (see the module doc, "Totality").
pub fn hkdf_expand_label(
    alg: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    try_hkdf_expand_label(alg, secret, label, context, len).unwrap_or_default()
}

/// Derive-Secret(Secret, Label, Messages) = HKDF-Expand-Label(Secret, Label,
/// Transcript-Hash(Messages), Hash.length) (RFC 8446 §7.1), taking the transcript hash.
pub fn derive_secret(alg: HashAlg, secret: &[u8], label: &str, transcript_hash: &[u8]) -> Vec<u8> {
    hkdf_expand_label(alg, secret, label, transcript_hash, alg.output_len())
}

/// `Derive-Secret(., label, "")`: the hash of the empty transcript as context.
fn derive_secret_empty(alg: HashAlg, secret: &[u8], label: &str) -> Vec<u8> {
    derive_secret(alg, secret, label, &alg.hash(b""))
}

/// TLS-Exporter(label, context_value, key_length) (RFC 8446 §7.5):
/// `HKDF-Expand-Label(Derive-Secret(Secret, label, ""), "exporter", Hash(context_value),
/// key_length)`; `exporter_master_secret` is `exp master` (or `e exp master` for early
/// exporters).
pub fn try_export_keying_material(
    alg: HashAlg,
    exporter_master_secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Result<Vec<u8>, TlsModelError> {
    // The label is checked before use in Derive-Secret, whose own length is fixed.
    hkdf_label(alg.output_len(), label, b"")?;
    let secret = derive_secret_empty(alg, exporter_master_secret, label);
    try_hkdf_expand_label(alg, &secret, "exporter", &alg.hash(context), len)
}

/// TLS-Exporter (RFC 8446 §7.5), infallible form of [`try_export_keying_material`]: an empty
/// vector where that one errs.
pub fn export_keying_material(
    alg: HashAlg,
    exporter_master_secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    try_export_keying_material(alg, exporter_master_secret, label, context, len).unwrap_or_default()
}

/// Every secret the RFC 8446 §7.1 schedule derives with Derive-Secret, with its label and (for
/// the ones key logs carry) its SSLKEYLOGFILE label (RFC 9850; NSS key-log format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SecretKind {
    /// `ext binder`: binder key for an external PSK.
    ExternalBinderKey,
    /// `res binder`: binder key for a resumption PSK.
    ResumptionBinderKey,
    /// `c e traffic`: client_early_traffic_secret.
    ClientEarlyTraffic,
    /// `e exp master`: early_exporter_master_secret.
    EarlyExporterMaster,
    /// `c hs traffic`: client_handshake_traffic_secret.
    ClientHandshakeTraffic,
    /// `s hs traffic`: server_handshake_traffic_secret.
    ServerHandshakeTraffic,
    /// `c ap traffic`: client_application_traffic_secret_0.
    ClientApplicationTraffic,
    /// `s ap traffic`: server_application_traffic_secret_0.
    ServerApplicationTraffic,
    /// `exp master`: exporter_master_secret.
    ExporterMaster,
    /// `res master`: resumption_master_secret.
    ResumptionMaster,
}

impl SecretKind {
    /// The Derive-Secret label, without the `"tls13 "` prefix (RFC 8446 §7.1).
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::ExternalBinderKey => "ext binder",
            SecretKind::ResumptionBinderKey => "res binder",
            SecretKind::ClientEarlyTraffic => "c e traffic",
            SecretKind::EarlyExporterMaster => "e exp master",
            SecretKind::ClientHandshakeTraffic => "c hs traffic",
            SecretKind::ServerHandshakeTraffic => "s hs traffic",
            SecretKind::ClientApplicationTraffic => "c ap traffic",
            SecretKind::ServerApplicationTraffic => "s ap traffic",
            SecretKind::ExporterMaster => "exp master",
            SecretKind::ResumptionMaster => "res master",
        }
    }

    /// The key-log label (RFC 9850 §5 / the NSS format), for the secrets key logs carry.
    pub fn log_label(self) -> Option<&'static str> {
        match self {
            SecretKind::ClientEarlyTraffic => Some("CLIENT_EARLY_TRAFFIC_SECRET"),
            SecretKind::EarlyExporterMaster => Some("EARLY_EXPORTER_SECRET"),
            SecretKind::ClientHandshakeTraffic => Some("CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
            SecretKind::ServerHandshakeTraffic => Some("SERVER_HANDSHAKE_TRAFFIC_SECRET"),
            SecretKind::ClientApplicationTraffic => Some("CLIENT_TRAFFIC_SECRET_0"),
            SecretKind::ServerApplicationTraffic => Some("SERVER_TRAFFIC_SECRET_0"),
            SecretKind::ExporterMaster => Some("EXPORTER_SECRET"),
            SecretKind::ExternalBinderKey
            | SecretKind::ResumptionBinderKey
            | SecretKind::ResumptionMaster => None,
        }
    }
}

/// Which kind of PSK a binder is for (RFC 8446 §7.1: the binder key label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PskKind {
    /// A resumption PSK from a NewSessionTicket (`res binder`).
    Resumption,
    /// An externally established PSK (`ext binder`).
    External,
}

impl PskKind {
    fn secret_kind(self) -> SecretKind {
        match self {
            PskKind::Resumption => SecretKind::ResumptionBinderKey,
            PskKind::External => SecretKind::ExternalBinderKey,
        }
    }
}

/// `Debug` for a secret: its type, its hash and the secret in hex (the model's secrets are
/// test data, never keys worth hiding).
macro_rules! debug_secret {
    ($($ty:ident . $field:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?}, {})", stringify!($ty), self.alg, hex::encode(&self.$field))
            }
        }
    )*};
}

debug_secret!(
    EarlySecret.secret,
    HandshakeSecret.secret,
    MasterSecret.secret,
    ResumptionMasterSecret.secret,
    TrafficSecret.bytes
);

/// The Early Secret (RFC 8446 §7.1): `HKDF-Extract(0, PSK)`.
#[derive(Clone, PartialEq, Eq)]
pub struct EarlySecret {
    alg: HashAlg,
    secret: Vec<u8>,
}

impl EarlySecret {
    /// `HKDF-Extract(salt = 0, IKM = PSK)`; without a PSK the IKM is Hash.length zeros
    /// (RFC 8446 §7.1).
    pub fn new(alg: HashAlg, psk: Option<&[u8]>) -> Self {
        let zeros = vec![0u8; alg.output_len()];
        let ikm = psk.unwrap_or(&zeros);
        EarlySecret {
            alg,
            secret: hkdf_extract(alg, &zeros, ikm),
        }
    }

    /// The schedule's hash.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The Early Secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// `binder_key = Derive-Secret(Early Secret, "ext binder" | "res binder", "")` (RFC 8446 §7.1).
    pub fn binder_key(&self, kind: PskKind) -> Vec<u8> {
        derive_secret_empty(self.alg, &self.secret, kind.secret_kind().label())
    }

    /// The PSK binder (RFC 8446 §4.2.11.2): computed like Finished.verify_data (§4.4.4) with
    /// `finished_key = HKDF-Expand-Label(binder_key, "finished", "", Hash.length)` over the hash
    /// of the ClientHello truncated before the binders list (after a HelloRetryRequest: of the
    /// `message_hash`, the HelloRetryRequest and the truncated ClientHello2).
    pub fn binder(&self, kind: PskKind, truncated_client_hello_hash: &[u8]) -> Vec<u8> {
        TrafficSecret::new(self.alg, self.binder_key(kind)).verify_data(truncated_client_hello_hash)
    }

    /// `client_early_traffic_secret = Derive-Secret(., "c e traffic", ClientHello)`.
    pub fn client_early_traffic_secret(&self, client_hello_hash: &[u8]) -> TrafficSecret {
        self.traffic(SecretKind::ClientEarlyTraffic, client_hello_hash)
    }

    /// `early_exporter_master_secret = Derive-Secret(., "e exp master", ClientHello)`.
    pub fn early_exporter_master_secret(&self, client_hello_hash: &[u8]) -> Vec<u8> {
        derive_secret(
            self.alg,
            &self.secret,
            SecretKind::EarlyExporterMaster.label(),
            client_hello_hash,
        )
    }

    fn traffic(&self, kind: SecretKind, hash: &[u8]) -> TrafficSecret {
        TrafficSecret::new(
            self.alg,
            derive_secret(self.alg, &self.secret, kind.label(), hash),
        )
    }

    /// The Derive-Secret(., "derived", "") salt for the next stage (printed by RFC 8448).
    pub fn derived(&self) -> Vec<u8> {
        derive_secret_empty(self.alg, &self.secret, "derived")
    }

    /// `Handshake Secret = HKDF-Extract(Derive-Secret(., "derived", ""), (EC)DHE)`; without an
    /// (EC)DHE share (psk_ke) the IKM is Hash.length zeros.
    pub fn into_handshake(self, ecdhe: Option<&[u8]>) -> HandshakeSecret {
        let zeros = vec![0u8; self.alg.output_len()];
        let ikm = ecdhe.unwrap_or(&zeros);
        HandshakeSecret {
            alg: self.alg,
            secret: hkdf_extract(self.alg, &self.derived(), ikm),
        }
    }
}

/// The Handshake Secret (RFC 8446 §7.1).
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeSecret {
    alg: HashAlg,
    secret: Vec<u8>,
}

impl HandshakeSecret {
    /// The schedule's hash.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The Handshake Secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// `client_handshake_traffic_secret = Derive-Secret(., "c hs traffic", ClientHello...ServerHello)`.
    pub fn client_handshake_traffic_secret(&self, ch_sh_hash: &[u8]) -> TrafficSecret {
        self.traffic(SecretKind::ClientHandshakeTraffic, ch_sh_hash)
    }

    /// `server_handshake_traffic_secret = Derive-Secret(., "s hs traffic", ClientHello...ServerHello)`.
    pub fn server_handshake_traffic_secret(&self, ch_sh_hash: &[u8]) -> TrafficSecret {
        self.traffic(SecretKind::ServerHandshakeTraffic, ch_sh_hash)
    }

    fn traffic(&self, kind: SecretKind, hash: &[u8]) -> TrafficSecret {
        TrafficSecret::new(
            self.alg,
            derive_secret(self.alg, &self.secret, kind.label(), hash),
        )
    }

    /// The Derive-Secret(., "derived", "") salt for the Master Secret (printed by RFC 8448).
    pub fn derived(&self) -> Vec<u8> {
        derive_secret_empty(self.alg, &self.secret, "derived")
    }

    /// `Master Secret = HKDF-Extract(Derive-Secret(., "derived", ""), 0)` (RFC 8446 §7.1).
    pub fn into_master(self) -> MasterSecret {
        let zeros = vec![0u8; self.alg.output_len()];
        MasterSecret {
            alg: self.alg,
            secret: hkdf_extract(self.alg, &self.derived(), &zeros),
        }
    }
}

/// The Master Secret (RFC 8446 §7.1).
#[derive(Clone, PartialEq, Eq)]
pub struct MasterSecret {
    alg: HashAlg,
    secret: Vec<u8>,
}

impl MasterSecret {
    /// The schedule's hash.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The Master Secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// `client_application_traffic_secret_0 = Derive-Secret(., "c ap traffic", ClientHello...server Finished)`.
    pub fn client_application_traffic_secret_0(&self, ch_sf_hash: &[u8]) -> TrafficSecret {
        self.traffic(SecretKind::ClientApplicationTraffic, ch_sf_hash)
    }

    /// `server_application_traffic_secret_0 = Derive-Secret(., "s ap traffic", ClientHello...server Finished)`.
    pub fn server_application_traffic_secret_0(&self, ch_sf_hash: &[u8]) -> TrafficSecret {
        self.traffic(SecretKind::ServerApplicationTraffic, ch_sf_hash)
    }

    /// `exporter_master_secret = Derive-Secret(., "exp master", ClientHello...server Finished)`.
    pub fn exporter_master_secret(&self, ch_sf_hash: &[u8]) -> Vec<u8> {
        derive_secret(
            self.alg,
            &self.secret,
            SecretKind::ExporterMaster.label(),
            ch_sf_hash,
        )
    }

    /// `resumption_master_secret = Derive-Secret(., "res master", ClientHello...client Finished)`.
    pub fn resumption_master_secret(&self, ch_cf_hash: &[u8]) -> ResumptionMasterSecret {
        ResumptionMasterSecret {
            alg: self.alg,
            secret: derive_secret(
                self.alg,
                &self.secret,
                SecretKind::ResumptionMaster.label(),
                ch_cf_hash,
            ),
        }
    }

    fn traffic(&self, kind: SecretKind, hash: &[u8]) -> TrafficSecret {
        TrafficSecret::new(
            self.alg,
            derive_secret(self.alg, &self.secret, kind.label(), hash),
        )
    }
}

/// The resumption_master_secret (RFC 8446 §7.1), from which each ticket's PSK is derived.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumptionMasterSecret {
    alg: HashAlg,
    secret: Vec<u8>,
}

impl ResumptionMasterSecret {
    /// The secret's bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The PSK of the ticket with `ticket_nonce` (RFC 8446 §4.6.1):
    /// `HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length)`.
    /// The nonce is `opaque ticket_nonce<0..255>`; a longer one gives an empty vector.
    pub fn psk(&self, ticket_nonce: &[u8]) -> Vec<u8> {
        hkdf_expand_label(
            self.alg,
            &self.secret,
            "resumption",
            ticket_nonce,
            self.alg.output_len(),
        )
    }
}

/// One traffic secret (handshake, application or early; RFC 8446 §7.1), from the schedule or
/// from a key log. `Debug` prints the hash and the secret in hex.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficSecret {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl TrafficSecret {
    /// A traffic secret given as bytes (e.g. from a key-log line).
    pub fn new(alg: HashAlg, bytes: Vec<u8>) -> Self {
        TrafficSecret { alg, bytes }
    }

    /// The schedule's hash.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The secret's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The record key and IV (RFC 8446 §7.3): `HKDF-Expand-Label(secret, "key", "", key_length)`
    /// and `HKDF-Expand-Label(secret, "iv", "", 12)` (iv_length is 12 for all three AEADs,
    /// RFC 8446 §5.3 / RFC 5116 §5).
    pub fn keys(&self, aead: Aead) -> TrafficKeys {
        TrafficKeys {
            key: hkdf_expand_label(self.alg, &self.bytes, "key", b"", aead.key_len()),
            iv: hkdf_expand_label(self.alg, &self.bytes, "iv", b"", 12),
        }
    }

    /// `finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)` (RFC 8446 §4.4.4).
    pub fn finished_key(&self) -> Vec<u8> {
        hkdf_expand_label(
            self.alg,
            &self.bytes,
            "finished",
            b"",
            self.alg.output_len(),
        )
    }

    /// `Finished.verify_data = HMAC(finished_key, Transcript-Hash(Handshake Context,
    /// Certificate*, CertificateVerify*))` (RFC 8446 §4.4.4), given that transcript hash.
    pub fn verify_data(&self, transcript_hash: &[u8]) -> Vec<u8> {
        self.alg.hmac(&self.finished_key(), transcript_hash)
    }

    /// The next generation after a KeyUpdate (RFC 8446 §7.2):
    /// `application_traffic_secret_N+1 = HKDF-Expand-Label(application_traffic_secret_N,
    /// "traffic upd", "", Hash.length)`.
    pub fn next(&self) -> TrafficSecret {
        TrafficSecret {
            alg: self.alg,
            bytes: hkdf_expand_label(
                self.alg,
                &self.bytes,
                "traffic upd",
                b"",
                self.alg.output_len(),
            ),
        }
    }
}

/// A record protection key and IV (RFC 8446 §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// The AEAD key.
    pub key: Vec<u8>,
    /// The 12-byte IV the per-record nonce is built from (RFC 8446 §5.3).
    pub iv: Vec<u8>,
}
