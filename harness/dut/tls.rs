//! TLS stacks under test: rustls (client and server, on tokio) over the kernel's TCP, one
//! in each namespace of a [`HostPair`], with every frame between them captured.
//!
//! The harness must know the key-exchange secret to check the key schedule from its start,
//! so both sides use a controlled X25519 group ([`KnownX25519`]) whose private keys the
//! scenario chooses; everything after the key exchange (randoms, signatures, tickets, the
//! whole key schedule) is rustls's own. Each side's `KeyLog` is recorded; the checks compare
//! every logged secret, every Finished message and every record with the model
//! ([`crate::tls::verify`]).
//!
//! All rustls-facing glue lives in this module (rustls 0.24 will rename most of it).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::NamedGroup;
use rustls::crypto::{ActiveKeyExchange, CryptoProvider, SharedSecret, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DutError;
use super::service::{ServiceAnswer, ServiceImpl, ServiceKind, ServiceRequest};
use crate::sandbox::{HostPair, MacAddr};

/// The server name in the test certificate.
pub const SERVER_NAME: &str = "tls.netconform.test";
/// The TCP port the server listens on.
pub const SERVER_PORT: u16 = 4433;
/// How long one exchange may take before it is abandoned.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Which crypto provider rustls runs with (the model uses neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TlsProvider {
    /// aws-lc-rs, rustls's default.
    AwsLcRs,
    /// ring.
    Ring,
}

impl TlsProvider {
    /// Both providers.
    pub const ALL: [TlsProvider; 2] = [TlsProvider::AwsLcRs, TlsProvider::Ring];

    /// The provider's short name.
    pub fn name(self) -> &'static str {
        match self {
            TlsProvider::AwsLcRs => "aws-lc-rs",
            TlsProvider::Ring => "ring",
        }
    }

    /// The TLS service implementation id of rustls on this provider (`rustls/ring`).
    pub fn implementation_id(self) -> &'static str {
        match self {
            TlsProvider::AwsLcRs => "rustls/aws-lc-rs",
            TlsProvider::Ring => "rustls/ring",
        }
    }

    /// The provider of implementation `id` (`rustls/aws-lc-rs`, `rustls/ring`).
    pub fn of_implementation(id: &str) -> Option<TlsProvider> {
        TlsProvider::ALL
            .into_iter()
            .find(|p| p.implementation_id() == id)
    }

    fn provider(self) -> CryptoProvider {
        match self {
            TlsProvider::AwsLcRs => rustls::crypto::aws_lc_rs::default_provider(),
            TlsProvider::Ring => rustls::crypto::ring::default_provider(),
        }
    }
}

/// One TLS exchange to run: the version and suite both sides are limited to, the X25519
/// private keys (for an implementation that lets the harness choose them), and whether
/// both sides update their keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsScenario {
    /// `0x0304` (TLS 1.3) or `0x0303` (TLS 1.2).
    pub version: u16,
    /// The one cipher suite both sides offer (IANA value).
    pub suite: u16,
    /// TLS 1.3: after the first request and response, the client updates its keys (and
    /// requests the server's update), then the server updates its keys once more.
    pub key_update: bool,
    /// The client's X25519 private key.
    pub client_private: [u8; 32],
    /// The server's X25519 private key.
    pub server_private: [u8; 32],
}

/// One secret a side logged through rustls's `KeyLog` (NSS key-log format fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedSecret {
    /// The label, e.g. `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub label: String,
    /// The ClientHello random of the connection.
    pub client_random: [u8; 32],
    /// The secret.
    pub secret: Vec<u8>,
}

/// Keying material both sides exported (RFC 8446 §7.5, RFC 5705).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The label.
    pub label: String,
    /// The context.
    pub context: Vec<u8>,
    /// What the client exported.
    pub client: Vec<u8>,
    /// What the server exported.
    pub server: Vec<u8>,
}

/// What one exchange produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRun {
    /// The scenario that ran.
    pub scenario: TlsScenario,
    /// The implementation that ran it ([`crate::dut::service::ServiceImpl::id`]).
    pub implementation: String,
    /// Whether the implementation used the scenario's X25519 private keys (rustls does;
    /// OpenSSL draws its own, so its run is checked from its key logs alone).
    pub keys_known: bool,
    /// Every frame on the client's veth end, with its time in microseconds since the
    /// capture started, in order.
    pub frames: Vec<(u64, Vec<u8>)>,
    /// MAC of the client's end: frames with this source went client → server.
    pub client_mac: MacAddr,
    /// What the client logged, in order.
    pub client_keylog: Vec<LoggedSecret>,
    /// What the server logged, in order.
    pub server_keylog: Vec<LoggedSecret>,
    /// Application data each side wrote, concatenated, as (client, server), when the
    /// harness knows it.
    pub app_data: Option<(Vec<u8>, Vec<u8>)>,
    /// The negotiated version and suite, as the client reports them.
    pub negotiated: Option<(u16, u16)>,
    /// Keying material exported by both sides after the handshake, when they export.
    pub exported: Option<Exported>,
    /// Key updates each side initiated, as (client, server), when the implementation says.
    pub key_updates: Option<(u32, u32)>,
}

/// X25519 with a private key the harness chose: the harness can compute the shared secret
/// itself, so the model checks the key schedule from the key exchange on. Test use only.
#[derive(Debug)]
pub struct KnownX25519 {
    private: [u8; 32],
}

impl KnownX25519 {
    /// A group whose every key share uses `private`. Leaked: rustls wants `&'static`
    /// groups, and a test run makes a handful.
    pub fn leak(private: [u8; 32]) -> &'static KnownX25519 {
        Box::leak(Box::new(KnownX25519 { private }))
    }
}

struct KnownX25519Exchange {
    private: [u8; 32],
    public: [u8; 32],
}

impl ActiveKeyExchange for KnownX25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        let peer: [u8; 32] = peer
            .try_into()
            .map_err(|_| rustls::PeerMisbehaved::InvalidKeyShare)?;
        Ok(SharedSecret::from(
            &x25519_dalek::x25519(self.private, peer)[..],
        ))
    }
    fn pub_key(&self) -> &[u8] {
        &self.public
    }
    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl SupportedKxGroup for KnownX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        Ok(Box::new(KnownX25519Exchange {
            private: self.private,
            public: x25519_dalek::x25519(self.private, x25519_dalek::X25519_BASEPOINT_BYTES),
        }))
    }
    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// A key log that records every line.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<LoggedSecret>>);

impl rustls::KeyLog for Recorder {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Ok(client_random) = client_random.try_into() else {
            return;
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(LoggedSecret {
                label: label.to_string(),
                client_random,
                secret: secret.to_vec(),
            });
    }
}

impl Recorder {
    fn take(&self) -> Vec<LoggedSecret> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A test PKI: a CA and a server certificate for [`SERVER_NAME`] with an ECDSA P-256 key,
/// as DER (for rustls) and PEM (for OpenSSL).
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server certificate, DER.
    pub cert_der: Vec<u8>,
    /// The server certificate, PEM.
    pub cert_pem: String,
    /// The server key, PKCS #8 DER.
    pub key_der: Vec<u8>,
    /// The server key, PEM.
    pub key_pem: String,
}

impl TestPki {
    /// Generates a fresh PKI.
    pub fn generate() -> Result<TestPki, DutError> {
        let bad = |e: rcgen::Error| DutError::Malformed {
            detail: format!("generating the test certificates: {e}"),
        };
        let ca_key = rcgen::KeyPair::generate().map_err(bad)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "netconform test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(bad)?;
        let key = rcgen::KeyPair::generate().map_err(bad)?;
        let mut params =
            rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(bad)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, SERVER_NAME);
        let cert = params.signed_by(&key, &ca).map_err(bad)?;
        Ok(TestPki {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> DutError {
    DutError::Malformed {
        detail: format!("rustls: {what}: {e}"),
    }
}

fn io_err(op: &str) -> impl Fn(io::Error) -> DutError + '_ {
    move |source| DutError::Io {
        op: op.to_string(),
        source,
    }
}

fn provider_for(
    which: TlsProvider,
    scenario: &TlsScenario,
    private: [u8; 32],
) -> Result<Arc<CryptoProvider>, DutError> {
    let mut provider = which.provider();
    provider
        .cipher_suites
        .retain(|s| u16::from(s.suite()) == scenario.suite);
    if provider.cipher_suites.is_empty() {
        return Err(DutError::NotSupported {
            what: format!(
                "cipher suite {:#06x} with rustls's {} provider",
                scenario.suite,
                which.name()
            ),
        });
    }
    provider.kx_groups = vec![KnownX25519::leak(private)];
    Ok(Arc::new(provider))
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn versions(
    scenario: &TlsScenario,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], DutError> {
    match scenario.version {
        0x0304 => Ok(TLS13_ONLY),
        0x0303 => Ok(TLS12_ONLY),
        v => Err(DutError::NotSupported {
            what: format!("TLS version {v:#06x} in rustls"),
        }),
    }
}

/// The request the client sends first (and again after each key update): 300 bytes.
pub fn request(n: u8) -> Vec<u8> {
    let mut r = format!("GET /{n} HTTP/1.1\r\nHost: {SERVER_NAME}\r\n").into_bytes();
    r.resize(298, b'x');
    r.extend_from_slice(b"\r\n");
    r
}

/// The response the server sends to each request: 3,000 bytes, so it spans several TCP
/// segments.
pub fn response(n: u8) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nX-Request: {n}\r\n\r\n").into_bytes();
    r.extend((0..3000 - r.len()).map(|i| b'a' + (i % 26) as u8));
    r
}

/// Runs one exchange between a rustls client in the pair's client namespace and a rustls
/// server in its server namespace, both on crypto provider `which`, capturing every frame.
pub fn run_rustls(
    pair: &HostPair,
    pki: &TestPki,
    scenario: &TlsScenario,
    which: TlsProvider,
) -> Result<TlsRun, DutError> {
    let v = versions(scenario)?;
    let client_log = Arc::new(Recorder::default());
    let server_log = Arc::new(Recorder::default());

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca_der.clone()))
        .map_err(|e| tls_err("trust anchor", e))?;
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider_for(
        which,
        scenario,
        scenario.client_private,
    )?)
    .with_protocol_versions(v)
    .map_err(|e| tls_err("client versions", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    client_config.key_log = client_log.clone();
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider_for(
        which,
        scenario,
        scenario.server_private,
    )?)
    .with_protocol_versions(v)
    .map_err(|e| tls_err("server versions", e))?
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(pki.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
    )
    .map_err(|e| tls_err("server certificate", e))?;
    server_config.key_log = server_log.clone();

    let listen_at = pair.server_addr(SERVER_PORT);
    let listener = pair
        .server()
        .run(move || TcpListener::bind(listen_at))?
        .map_err(io_err("bind the TLS server"))?;
    let sniffer = pair.sniff()?;
    let stream = pair
        .client()
        .run(move || TcpStream::connect_timeout(&listen_at.into(), Duration::from_secs(5)))?
        .map_err(io_err("connect to the TLS server"))?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("start the tokio runtime"))?;
    let outcome = runtime.block_on(async {
        tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            exchange(
                scenario,
                Arc::new(client_config),
                Arc::new(server_config),
                listener,
                stream,
            ),
        )
        .await
    });
    // Let the last segments (FIN, final ACK) reach the capture.
    std::thread::sleep(Duration::from_millis(100));
    let frames = sniffer.stop()?;
    let (negotiated, exported, key_updates) = match outcome {
        Ok(result) => result?,
        Err(_) => {
            return Err(DutError::Timeout {
                what: format!(
                    "the rustls exchange did not finish within {}s",
                    EXCHANGE_TIMEOUT.as_secs()
                ),
            });
        }
    };
    let rounds = rounds(scenario);
    Ok(TlsRun {
        scenario: scenario.clone(),
        implementation: which.implementation_id().into(),
        keys_known: true,
        frames: frames
            .into_iter()
            .map(|(at, f)| (at.as_micros() as u64, f))
            .collect(),
        client_mac: pair.client_mac(),
        client_keylog: client_log.take(),
        server_keylog: server_log.take(),
        app_data: Some((
            (1..=rounds).flat_map(request).collect(),
            (1..=rounds).flat_map(response).collect(),
        )),
        negotiated: Some(negotiated),
        exported: Some(exported),
        key_updates: Some(key_updates),
    })
}

/// Request/response rounds of a scenario: one, or three around the key updates (TLS 1.3:
/// the client updates before round 2, the server before its answer in round 3).
fn rounds(scenario: &TlsScenario) -> u8 {
    if scenario.key_update && scenario.version == 0x0304 {
        3
    } else {
        1
    }
}

/// The label and context both sides export with.
const EXPORT_LABEL: &str = "EXPORTER-netconform";
const EXPORT_CONTEXT: &[u8] = b"context";
const EXPORT_LEN: usize = 32;

type ExchangeResult = Result<((u16, u16), Exported, (u32, u32)), DutError>;

async fn exchange(
    scenario: &TlsScenario,
    client_config: Arc<rustls::ClientConfig>,
    server_config: Arc<rustls::ServerConfig>,
    listener: TcpListener,
    stream: TcpStream,
) -> ExchangeResult {
    listener
        .set_nonblocking(true)
        .map_err(io_err("listener non-blocking"))?;
    stream
        .set_nonblocking(true)
        .map_err(io_err("stream non-blocking"))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(io_err("register the listener"))?;
    let stream = tokio::net::TcpStream::from_std(stream).map_err(io_err("register the stream"))?;
    let rounds = rounds(scenario);

    let server = async move {
        let (tcp, _) = listener.accept().await.map_err(io_err("accept"))?;
        let mut tls = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(tcp)
            .await
            .map_err(|e| tls_err("server handshake", e))?;
        let mut exported = vec![0u8; EXPORT_LEN];
        tls.get_ref()
            .1
            .export_keying_material(&mut exported, EXPORT_LABEL.as_bytes(), Some(EXPORT_CONTEXT))
            .map_err(|e| tls_err("server export", e))?;
        let mut updates = 0;
        for n in 1..=rounds {
            let mut buf = vec![0u8; request(n).len()];
            tls.read_exact(&mut buf)
                .await
                .map_err(io_err("server read"))?;
            if n == 3 {
                tls.get_mut()
                    .1
                    .refresh_traffic_keys()
                    .map_err(|e| tls_err("server key update", e))?;
                updates += 1;
            }
            tls.write_all(&response(n))
                .await
                .map_err(io_err("server write"))?;
            tls.flush().await.map_err(io_err("server flush"))?;
        }
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest)
            .await
            .map_err(io_err("server read to close_notify"))?;
        tls.shutdown().await.map_err(io_err("server shutdown"))?;
        Ok::<_, DutError>((exported, updates))
    };

    let client = async move {
        let name = ServerName::try_from(SERVER_NAME).map_err(|e| tls_err("server name", e))?;
        let mut tls = tokio_rustls::TlsConnector::from(client_config)
            .connect(name, stream)
            .await
            .map_err(|e| tls_err("client handshake", e))?;
        let conn = tls.get_ref().1;
        let negotiated = (
            conn.protocol_version().map(u16::from).unwrap_or(0),
            conn.negotiated_cipher_suite()
                .map(|s| u16::from(s.suite()))
                .unwrap_or(0),
        );
        let mut exported = vec![0u8; EXPORT_LEN];
        conn.export_keying_material(&mut exported, EXPORT_LABEL.as_bytes(), Some(EXPORT_CONTEXT))
            .map_err(|e| tls_err("client export", e))?;
        let mut updates = 0;
        for n in 1..=rounds {
            if n == 2 {
                tls.get_mut()
                    .1
                    .refresh_traffic_keys()
                    .map_err(|e| tls_err("client key update", e))?;
                updates += 1;
            }
            tls.write_all(&request(n))
                .await
                .map_err(io_err("client write"))?;
            tls.flush().await.map_err(io_err("client flush"))?;
            let mut buf = vec![0u8; response(n).len()];
            tls.read_exact(&mut buf)
                .await
                .map_err(io_err("client read"))?;
            if buf != response(n) {
                return Err(DutError::Malformed {
                    detail: format!(
                        "the client read a different response {n} than the server wrote"
                    ),
                });
            }
        }
        tls.shutdown().await.map_err(io_err("client shutdown"))?;
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest)
            .await
            .map_err(io_err("client read to close_notify"))?;
        Ok::<_, DutError>((negotiated, exported, updates))
    };

    let (server, client) = tokio::join!(server, client);
    let (server_exported, server_updates) = server?;
    let (negotiated, client_exported, client_updates) = client?;
    Ok((
        negotiated,
        Exported {
            label: EXPORT_LABEL.to_string(),
            context: EXPORT_CONTEXT.to_vec(),
            client: client_exported,
            server: server_exported,
        },
        (client_updates, server_updates),
    ))
}

/// Whether `suite` is one rustls's `provider` implements, for `version`.
pub fn rustls_supports(provider: TlsProvider, suite: u16) -> bool {
    provider
        .provider()
        .cipher_suites
        .iter()
        .any(|s| u16::from(s.suite()) == suite)
}

/// rustls as a DUT: a client and a server over the kernel's TCP in a fresh [`HostPair`],
/// offered as the TLS service (one implementation per crypto provider). It has no wire
/// plane of its own (the harness only watches).
#[derive(Debug)]
pub struct RustlsService {
    pair: HostPair,
    pki: TestPki,
    endpoints: super::Endpoints,
}

impl RustlsService {
    /// Builds the pair and the test certificates.
    pub fn new() -> Result<RustlsService, DutError> {
        let pair = HostPair::build()?;
        let pki = TestPki::generate()?;
        let endpoints = super::Endpoints {
            harness_mac: pair.client_mac(),
            stack_mac: pair.server_mac(),
            stack_ipv4: Some((crate::sandbox::PAIR_SERVER, 24)),
            peer_ipv4: Some(crate::sandbox::PAIR_CLIENT),
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
        };
        Ok(RustlsService {
            pair,
            pki,
            endpoints,
        })
    }
}

impl super::Dut for RustlsService {
    fn name(&self) -> &str {
        "rustls"
    }

    fn endpoints(&self) -> &super::Endpoints {
        &self.endpoints
    }

    fn environment(&self) -> Vec<String> {
        pair_environment(
            &self.pair,
            "rustls 0.23 client and server, known-key X25519, TCP from the kernel",
        )
    }

    fn services(&mut self) -> Option<&mut dyn super::Services> {
        Some(self)
    }
}

impl super::Services for RustlsService {
    fn offered(&self) -> Vec<ServiceImpl> {
        TlsProvider::ALL
            .into_iter()
            .map(|p| ServiceImpl {
                kind: ServiceKind::Tls,
                id: p.implementation_id().into(),
                description: format!(
                    "rustls 0.23 client and server on the {} provider, known-key X25519",
                    p.name()
                ),
            })
            .collect()
    }

    fn exchange(&mut self, request: &ServiceRequest) -> Result<ServiceAnswer, DutError> {
        match request {
            ServiceRequest::TlsExchange {
                implementation,
                scenario,
            } => {
                let which = TlsProvider::of_implementation(implementation).ok_or_else(|| {
                    DutError::NotSupported {
                        what: format!("TLS implementation {implementation:?} in the rustls target"),
                    }
                })?;
                Ok(ServiceAnswer::TlsExchange(Box::new(run_rustls(
                    &self.pair, &self.pki, scenario, which,
                )?)))
            }
        }
    }
}

/// The environment of a TLS DUT on a [`HostPair`]: `what` with the kernel release whose TCP
/// carries it, then the sysctls pinned in the server's namespace.
pub fn pair_environment(pair: &HostPair, what: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "{what} ({})",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown kernel".into())
    )];
    lines.extend(crate::sandbox::sysctl::environment_lines(
        pair.sysctls(),
        pair.server().name(),
        "server",
    ));
    lines
}
