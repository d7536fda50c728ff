//! OpenSSL as a TLS stack: `openssl s_server` in the server namespace of a [`HostPair`] and
//! `openssl s_client` in its client namespace, each writing an SSLKEYLOGFILE, with every
//! frame between them captured. What another implementation produces for
//! `netconform tls verify`: a capture and a key log the harness did not make itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TargetError;
use super::tls::{SERVER_NAME, SERVER_PORT, TestPki};
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

fn tool_err(what: impl Into<String>) -> TargetError {
    TargetError::Malformed {
        detail: what.into(),
    }
}

fn spawn(args: &[String], stdin: bool) -> Result<Child, TargetError> {
    Command::new("openssl")
        .args(args)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                TargetError::NotSupported {
                    what: format!("`openssl` is not installed: {OPENSSL_PACKAGE}"),
                }
            } else {
                TargetError::Io {
                    op: "start openssl".into(),
                    source: e,
                }
            }
        })
}

/// Waits for `child` until `deadline`, then kills it (it is ours: we spawned it).
fn finish(mut child: Child, deadline: Instant, who: &str) -> Result<(bool, String), TargetError> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let out = child.wait_with_output().map_err(|e| TargetError::Io {
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
                return Err(TargetError::Timeout {
                    what: format!("{who} did not finish"),
                });
            }
            Err(e) => {
                return Err(TargetError::Io {
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
) -> Result<OpensslRun, TargetError> {
    let flag = match version {
        0x0304 => "-tls1_3",
        0x0303 => "-tls1_2",
        v => {
            return Err(TargetError::NotSupported {
                what: format!("TLS version {v:#06x} with openssl"),
            });
        }
    };
    let write = |name: &str, text: &str| -> Result<String, TargetError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| TargetError::Io {
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
    .to_vec();
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
    .to_vec();

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
        return Err(TargetError::Timeout {
            what: "openssl s_server did not print ACCEPT within 10 s".into(),
        });
    }
    let mut client = pair.client().run(move || spawn(&client_args, true))??;
    let mut stdin = client
        .stdin
        .take()
        .ok_or_else(|| tool_err("s_client has no stdin"))?;
    let mut say = |text: &str| -> Result<(), TargetError> {
        // s_client reads its input only after the handshake; give it time to finish.
        std::thread::sleep(Duration::from_millis(400));
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| TargetError::Io {
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
