//! OpenSSL as a TLS stack: `openssl s_server` in the server namespace of a [`HostPair`] and
//! `openssl s_client` in its client namespace, each writing an SSLKEYLOGFILE, with every
//! frame between them captured. What another implementation produces for
//! `netconform tls verify`: a capture and a key log the harness did not make itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::DutError;
use super::service::{ServiceAnswer, ServiceImpl, ServiceKind, ServiceRequest};
use super::tls::{LoggedSecret, SERVER_NAME, SERVER_PORT, TestPki, TlsRun, TlsScenario};
use crate::sandbox::{HostPair, MacAddr, PAIR_SERVER};

/// What to install when `openssl` is missing.
pub const OPENSSL_PACKAGE: &str = "install Debian's `openssl` package (apt-get install openssl)";

/// One OpenSSL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpensslRun {
    /// Every frame on the client's veth end, with its time in microseconds since the
    /// capture started.
    pub frames: Vec<(u64, Vec<u8>)>,
    /// MAC of the client's end.
    pub client_mac: MacAddr,
    /// The client's key log file.
    pub client_keylog: PathBuf,
    /// The server's key log file.
    pub server_keylog: PathBuf,
    /// What `s_client` printed (the server's answer).
    pub client_output: String,
}

fn tool_err(what: impl Into<String>) -> DutError {
    DutError::Malformed {
        detail: what.into(),
    }
}

/// `openssl` could not be run: not installed (unsupported, with what to install), or
/// another OS error while doing `op`.
fn openssl_failed(op: &str, e: std::io::Error) -> DutError {
    if e.kind() == std::io::ErrorKind::NotFound {
        DutError::NotSupported {
            what: format!("`openssl` is not installed: {OPENSSL_PACKAGE}"),
        }
    } else {
        DutError::Io {
            op: op.into(),
            source: e,
        }
    }
}

fn spawn(args: &[String], stdin: bool) -> Result<Child, DutError> {
    Command::new("openssl")
        .args(args)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| openssl_failed("start openssl", e))
}

/// Waits for `child` until `deadline`, then kills it (it is ours: we spawned it).
fn finish(mut child: Child, deadline: Instant, who: &str) -> Result<(bool, String), DutError> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().map_err(|e| DutError::Io {
                    op: format!("read {who}'s output"),
                    source: e,
                })?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                return Ok((status.success(), text));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DutError::Timeout {
                    what: format!("{who} did not finish"),
                });
            }
            Err(e) => {
                return Err(DutError::Io {
                    op: format!("wait for {who}"),
                    source: e,
                });
            }
        }
    }
}

/// Runs `openssl s_server` and `s_client` over the pair for `version` (`0x0304` or
/// `0x0303`); with `key_update` (TLS 1.3) the client updates its keys and requests the
/// server's update before it sends its request. Files go to `dir`.
pub fn run_openssl(
    pair: &HostPair,
    pki: &TestPki,
    dir: &Path,
    version: u16,
    key_update: bool,
) -> Result<OpensslRun, DutError> {
    run_openssl_suite(pair, pki, dir, version, None, key_update)
}

/// OpenSSL's name of cipher suite `suite` for `version`, and the option that limits a side
/// to it (`-ciphersuites` in TLS 1.3, `-cipher` in TLS 1.2): the suites the TLS checks use.
pub fn openssl_suite(version: u16, suite: u16) -> Option<(&'static str, &'static str)> {
    let name = match (version, suite) {
        (0x0304, 0x1301) => "TLS_AES_128_GCM_SHA256",
        (0x0304, 0x1302) => "TLS_AES_256_GCM_SHA384",
        (0x0304, 0x1303) => "TLS_CHACHA20_POLY1305_SHA256",
        (0x0303, 0xc02b) => "ECDHE-ECDSA-AES128-GCM-SHA256",
        (0x0303, 0xc02c) => "ECDHE-ECDSA-AES256-GCM-SHA384",
        (0x0303, 0xcca9) => "ECDHE-ECDSA-CHACHA20-POLY1305",
        _ => return None,
    };
    Some((
        name,
        if version == 0x0304 {
            "-ciphersuites"
        } else {
            "-cipher"
        },
    ))
}

/// The version and suite `s_client` reports in its `New, TLSv1.3, Cipher is ...` line.
pub fn negotiated_of(client_output: &str) -> Option<(u16, u16)> {
    let line = client_output
        .lines()
        .find(|l| l.starts_with("New, ") && l.contains("Cipher is "))?;
    let version = if line.contains("TLSv1.3") {
        0x0304
    } else if line.contains("TLSv1.2") {
        0x0303
    } else {
        return None;
    };
    let name = line.split("Cipher is ").nth(1)?.trim();
    [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02c, 0xcca9]
        .into_iter()
        .find(|&suite| openssl_suite(version, suite).is_some_and(|(n, _)| n == name))
        .map(|suite| (version, suite))
}

/// Like [`run_openssl`], with both sides limited to cipher suite `suite` when given.
pub fn run_openssl_suite(
    pair: &HostPair,
    pki: &TestPki,
    dir: &Path,
    version: u16,
    suite: Option<u16>,
    key_update: bool,
) -> Result<OpensslRun, DutError> {
    let limit: Vec<String> = match suite {
        None => Vec::new(),
        Some(suite) => {
            let (name, option) =
                openssl_suite(version, suite).ok_or_else(|| DutError::NotSupported {
                    what: format!(
                        "cipher suite {suite:#06x} of version {version:#06x} with openssl"
                    ),
                })?;
            vec![option.to_string(), name.to_string()]
        }
    };
    let flag = match version {
        0x0304 => "-tls1_3",
        0x0303 => "-tls1_2",
        v => {
            return Err(DutError::NotSupported {
                what: format!("TLS version {v:#06x} with openssl"),
            });
        }
    };
    let write = |name: &str, text: &str| -> Result<String, DutError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| DutError::Io {
            op: format!("write {}", path.display()),
            source: e,
        })?;
        Ok(path.display().to_string())
    };
    let ca = write("ca.pem", &pki.ca_pem)?;
    let cert = write("cert.pem", &pki.cert_pem)?;
    let key = write("key.pem", &pki.key_pem)?;
    let client_keylog = dir.join("client.keys");
    let server_keylog = dir.join("server.keys");
    for f in [&client_keylog, &server_keylog] {
        let _ = std::fs::remove_file(f);
    }
    let server_args: Vec<String> = [
        "s_server",
        "-accept",
        &format!("{PAIR_SERVER}:{SERVER_PORT}"),
        "-cert",
        &cert,
        "-key",
        &key,
        "-keylogfile",
        &server_keylog.display().to_string(),
        flag,
        "-www",
        "-naccept",
        "1",
    ]
    .map(String::from)
    .into_iter()
    .chain(limit.iter().cloned())
    .collect();
    let client_args: Vec<String> = [
        "s_client",
        "-connect",
        &format!("{PAIR_SERVER}:{SERVER_PORT}"),
        "-servername",
        SERVER_NAME,
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-keylogfile",
        &client_keylog.display().to_string(),
        flag,
    ]
    .map(String::from)
    .into_iter()
    .chain(limit)
    .collect();

    let sniffer = pair.sniff()?;
    let mut server = pair.server().run(move || spawn(&server_args, false))??;
    // s_server prints ACCEPT once it listens.
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| tool_err("s_server has no stdout"))?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut sent = false;
        let mut rest = String::new();
        for line in lines.by_ref().map_while(Result::ok) {
            if !sent && line.trim() == "ACCEPT" {
                let _ = ready_tx.send(());
                sent = true;
            } else {
                rest.push_str(&line);
                rest.push('\n');
            }
        }
        rest
    });
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = server.kill();
        let _ = server.wait();
        return Err(DutError::Timeout {
            what: "openssl s_server did not print ACCEPT within 10 s".into(),
        });
    }
    let mut client = pair.client().run(move || spawn(&client_args, true))??;
    let mut stdin = client
        .stdin
        .take()
        .ok_or_else(|| tool_err("s_client has no stdin"))?;
    let mut say = |text: &str| -> Result<(), DutError> {
        // s_client reads its input only after the handshake; give it time to finish.
        std::thread::sleep(Duration::from_millis(400));
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| DutError::Io {
                op: "write to s_client".into(),
                source: e,
            })
    };
    if key_update && version == 0x0304 {
        // `K`: update the client's keys and request the server's update (`k` would not).
        say("K\n")?;
    }
    say("GET / HTTP/1.0\r\n\r\n")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let client_result = finish(client, deadline, "openssl s_client");
    drop(stdin);
    let server_result = finish(server, deadline, "openssl s_server");
    let _ = reader.join();
    std::thread::sleep(Duration::from_millis(50));
    let frames = sniffer.stop()?;
    let (client_ok, client_output) = client_result?;
    let (server_ok, _) = server_result?;
    if !client_ok || !server_ok {
        return Err(tool_err(format!(
            "openssl exited with an error (s_client ok: {client_ok}, s_server ok: {server_ok}); s_client printed: {}",
            client_output
                .lines()
                .take(20)
                .collect::<Vec<_>>()
                .join(" | ")
        )));
    }
    Ok(OpensslRun {
        frames: frames
            .into_iter()
            .map(|(at, f)| (at.as_micros() as u64, f))
            .collect(),
        client_mac: pair.client_mac(),
        client_keylog,
        server_keylog,
        client_output,
    })
}

/// The secrets of key log file `path`, in the form a live run carries them.
fn logged_secrets(path: &Path) -> Result<Vec<LoggedSecret>, DutError> {
    let log = crate::tls::keylog::KeyLog::load(path)
        .map_err(|e| tool_err(format!("openssl's key log {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for random in log.client_randoms() {
        for label in log.labels_for(&random) {
            for secret in log.secrets(&random, label) {
                out.push(LoggedSecret {
                    label: label.to_string(),
                    client_random: random,
                    secret: secret.to_vec(),
                });
            }
        }
    }
    Ok(out)
}

/// OpenSSL as a DUT: `openssl s_server` and `s_client` (Debian's `openssl`) in a fresh
/// [`HostPair`], offered as the TLS service. OpenSSL draws its own key shares and writes
/// SSLKEYLOGFILE lines, so its runs are checked from the key logs the way
/// `netconform tls verify` checks any capture; application data and exporters are not
/// compared (`s_server -www` writes a page of its own).
#[derive(Debug)]
pub struct OpensslService {
    pair: HostPair,
    pki: TestPki,
    dir: PathBuf,
    endpoints: super::Endpoints,
    version: String,
}

impl OpensslService {
    /// Builds the pair, the test certificates and a scratch directory for the key logs;
    /// fails with `NotSupported` (and what to install) when `openssl` is missing.
    pub fn new() -> Result<OpensslService, DutError> {
        let version = Command::new("openssl")
            .arg("version")
            .output()
            .map_err(|e| openssl_failed("run openssl version", e))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let pair = HostPair::build()?;
        let pki = TestPki::generate()?;
        let dir = std::env::temp_dir().join(format!(
            "ncf-{}-openssl-{}",
            std::process::id(),
            pair.client().name()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| DutError::Io {
            op: format!("create {}", dir.display()),
            source: e,
        })?;
        let endpoints = super::Endpoints {
            harness_mac: pair.client_mac(),
            stack_mac: pair.server_mac(),
            stack_ipv4: Some((PAIR_SERVER, 24)),
            peer_ipv4: Some(crate::sandbox::PAIR_CLIENT),
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
        };
        Ok(OpensslService {
            pair,
            pki,
            dir,
            endpoints,
            version,
        })
    }

    fn run_tls(&self, scenario: &TlsScenario) -> Result<TlsRun, DutError> {
        let run = run_openssl_suite(
            &self.pair,
            &self.pki,
            &self.dir,
            scenario.version,
            Some(scenario.suite),
            scenario.key_update,
        )?;
        Ok(TlsRun {
            scenario: scenario.clone(),
            implementation: OPENSSL_ID.into(),
            keys_known: false,
            frames: run.frames,
            client_mac: run.client_mac,
            client_keylog: logged_secrets(&run.client_keylog)?,
            server_keylog: logged_secrets(&run.server_keylog)?,
            app_data: None,
            negotiated: negotiated_of(&run.client_output),
            exported: None,
            key_updates: None,
        })
    }
}

impl Drop for OpensslService {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TLS service implementation id of OpenSSL.
pub const OPENSSL_ID: &str = "openssl";

impl super::Dut for OpensslService {
    fn name(&self) -> &str {
        "openssl"
    }

    fn endpoints(&self) -> &super::Endpoints {
        &self.endpoints
    }

    fn environment(&self) -> Vec<String> {
        super::tls::pair_environment(
            &self.pair,
            &format!(
                "{}: s_server and s_client over the kernel's TCP; key shares drawn by OpenSSL, \
                 checked from its key logs",
                self.version
            ),
        )
    }

    fn services(&mut self) -> Option<&mut dyn super::Services> {
        Some(self)
    }
}

impl super::Services for OpensslService {
    fn offered(&self) -> Vec<ServiceImpl> {
        vec![ServiceImpl {
            kind: ServiceKind::Tls,
            id: OPENSSL_ID.into(),
            description: format!("{} s_server and s_client", self.version),
        }]
    }

    fn exchange(&mut self, request: &ServiceRequest) -> Result<ServiceAnswer, DutError> {
        match request {
            ServiceRequest::TlsExchange {
                implementation,
                scenario,
            } if implementation == OPENSSL_ID => Ok(ServiceAnswer::TlsExchange(Box::new(
                self.run_tls(scenario)?,
            ))),
            ServiceRequest::TlsExchange { implementation, .. } => Err(DutError::NotSupported {
                what: format!("TLS implementation {implementation:?} in the openssl target"),
            }),
        }
    }
}
