//! `netconform tls verify`: every TLS connection of a capture checked against the model
//! with the secrets of a key log, and a verdict per connection.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::keylog::KeyLog;
use super::stream::{TcpConversation, conversations_from_frames};
use super::verify::{Connection, ConnectionVerdict, Knowledge, Outcome, verify_connection};
use crate::pcap::ReadMode;

/// Why a capture could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureCheckError {
    /// The capture could not be read.
    #[error("cannot read the capture {path}: {reason}")]
    Capture {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A key log could not be read or parsed.
    #[error("cannot use the key log {path}: {reason}")]
    KeyLog {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// One connection of the capture and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedConnection {
    /// `client → server` addresses.
    pub endpoints: String,
    /// Reassembly problems (holes, no SYN, a reset).
    pub reassembly: Vec<String>,
    /// The model's findings.
    pub connection: Connection,
    /// The verdict (reassembly problems make it incomplete unless a check failed).
    pub verdict: ConnectionVerdict,
}

/// The result of checking a whole capture.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    /// TLS connections, in capture order.
    pub connections: Vec<CheckedConnection>,
    /// TCP connections that do not start with a TLS record (not checked).
    pub skipped: Vec<String>,
    /// What was wrong with the capture file itself (a torn last packet, packets cut by the
    /// snap length); what could be read was checked.
    pub capture_problems: Vec<String>,
}

impl CaptureReport {
    /// The exit status: 0 when every TLS connection passed, 1 when a check failed, 2 when
    /// nothing failed but a connection could not be checked to its end or a check it needs
    /// was not made (a secret no record decrypted under), or the capture holds no TLS
    /// connection.
    pub fn exit_code(&self) -> u8 {
        if self
            .connections
            .iter()
            .any(|c| c.verdict == ConnectionVerdict::Fail)
        {
            1
        } else if self.connections.is_empty()
            || !self.capture_problems.is_empty()
            || self
                .connections
                .iter()
                .any(|c| c.verdict == ConnectionVerdict::Incomplete)
        {
            2
        } else {
            0
        }
    }

    /// The report as text: one block per connection, its checks, its problems, its verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.capture_problems {
            let _ = writeln!(out, "capture problem: {p}");
        }
        if self.connections.is_empty() {
            let _ = writeln!(out, "no TLS connection in the capture");
        }
        for (i, c) in self.connections.iter().enumerate() {
            let conn = &c.connection;
            let _ = writeln!(
                out,
                "connection {} {}: {}",
                i + 1,
                c.endpoints,
                match (conn.version, conn.suite) {
                    (Some(v), Some(s)) => format!(
                        "{} {}",
                        if v == 0x0304 {
                            "TLS 1.3"
                        } else if v == 0x0303 {
                            "TLS 1.2"
                        } else {
                            "TLS ?"
                        },
                        crate::models::tls::CipherSuite::from_id(s)
                            .map_or_else(|| format!("{s:#06x}"), |s| s.name.to_string())
                    ),
                    _ => "handshake not read".to_string(),
                }
            );
            if let Some(r) = &conn.client_random {
                let _ = writeln!(out, "  client random {r}");
            }
            let decrypted = conn.records.iter().filter(|r| r.keys != "plain").count();
            let _ = writeln!(
                out,
                "  {} records, {} protected and decrypted",
                conn.records.len(),
                decrypted
            );
            for f in &conn.findings {
                let (mark, detail) = match &f.outcome {
                    Outcome::Pass => ("ok  ", String::new()),
                    Outcome::Fail(why) => ("FAIL", format!(": {why}")),
                    Outcome::NotChecked(why) => ("--  ", format!(" (not checked: {why})")),
                    Outcome::Unused(why) => (
                        "..  ",
                        format!(" (not used by this connection, not checked: {why})"),
                    ),
                };
                let _ = writeln!(out, "  {mark} {} [{}]{detail}", f.check, f.clause);
            }
            for p in c.reassembly.iter().chain(&conn.problems) {
                let _ = writeln!(out, "  problem: {p}");
            }
            let not_checked = conn.not_checked();
            if !not_checked.is_empty() {
                let _ = writeln!(
                    out,
                    "  {} check(s) not checked: the verdict cannot be PASS",
                    not_checked.len()
                );
            }
            let _ = writeln!(
                out,
                "  verdict: {}",
                match c.verdict {
                    ConnectionVerdict::Pass => "PASS",
                    ConnectionVerdict::Fail => "FAIL",
                    ConnectionVerdict::Incomplete => "INCOMPLETE",
                }
            );
        }
        for s in &self.skipped {
            let _ = writeln!(out, "not TLS, skipped: {s}");
        }
        out
    }
}

/// Whether a conversation starts like TLS: a handshake record from the client.
fn looks_like_tls(c: &TcpConversation) -> bool {
    matches!(c.client_data.as_slice(), [0x16, 0x03, ..])
}

/// Checks every TLS connection of `conversations` with the secrets of `keylogs`.
pub fn check_conversations(
    conversations: &[TcpConversation],
    keylogs: &[(String, KeyLog)],
) -> CaptureReport {
    let knowledge = Knowledge {
        keylogs: keylogs.iter().map(|(n, l)| (n.clone(), l)).collect(),
        ..Knowledge::default()
    };
    let mut report = CaptureReport {
        connections: Vec::new(),
        skipped: Vec::new(),
        capture_problems: Vec::new(),
    };
    for c in conversations {
        let endpoints = format!("{} → {}", c.client, c.server);
        if !looks_like_tls(c) {
            report.skipped.push(endpoints);
            continue;
        }
        let connection = verify_connection(&c.client_data, &c.server_data, &knowledge);
        let mut reassembly = c.problems.clone();
        if !c.complete && reassembly.is_empty() {
            reassembly.push(
                "the capture does not hold the whole connection (its opening SYNs or its closing FINs are missing): records after the capture's end were not checked"
                    .into(),
            );
        }
        let mut verdict = connection.verdict();
        if verdict == ConnectionVerdict::Pass && !reassembly.is_empty() {
            verdict = ConnectionVerdict::Incomplete;
        }
        report.connections.push(CheckedConnection {
            endpoints,
            reassembly,
            connection,
            verdict,
        });
    }
    report
}

/// Reads `pcap` and the key logs and checks every TLS connection in it.
pub fn verify_capture(
    pcap: &Path,
    keylog_paths: &[&Path],
) -> Result<CaptureReport, CaptureCheckError> {
    let mut capture =
        crate::pcap::read(pcap, ReadMode::Lenient).map_err(|e| CaptureCheckError::Capture {
            path: pcap.display().to_string(),
            reason: e.to_string(),
        })?;
    let mut keylogs = Vec::new();
    for path in keylog_paths {
        let log = KeyLog::load(path).map_err(|e| CaptureCheckError::KeyLog {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        keylogs.push((path.display().to_string(), log));
    }
    let problems = std::mem::take(&mut capture.problems);
    let frames = capture.into_frames();
    let mut report = check_conversations(&conversations_from_frames(&frames), &keylogs);
    report.capture_problems = problems;
    Ok(report)
}
