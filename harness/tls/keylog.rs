//! SSLKEYLOGFILE: the NSS key log format (RFC 9850, "The SSLKEYLOGFILE Format for TLS").
//!
//! One secret per line: `LABEL SP client_random_hex SP secret_hex`. Lines starting with `#`
//! and blank lines are skipped. The labels this crate's TLS checks read are in [`label`];
//! other labels are kept (and written back) without being understood. A line whose second
//! field is not a 32-byte client random (the historic `RSA` label keys by the first 8 bytes
//! of the encrypted pre-master secret) is kept verbatim in [`KeyLog::other_lines`].
//!
//! Parsing never panics. A malformed line (wrong field count, bad hex, a client random of
//! the wrong length, an empty secret) is an error naming its line number; so is a line that
//! repeats a label and client random with a *different* secret (the same secret twice is
//! fine: OpenSSL and rustls both may log a line again).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// The labels of RFC 9850 §3 (and the NSS documentation).
pub mod label {
    /// TLS 1.2 and earlier: the 48-byte master secret.
    pub const CLIENT_RANDOM: &str = "CLIENT_RANDOM";
    /// TLS 1.3 `client_early_traffic_secret`.
    pub const CLIENT_EARLY_TRAFFIC_SECRET: &str = "CLIENT_EARLY_TRAFFIC_SECRET";
    /// TLS 1.3 `client_handshake_traffic_secret`.
    pub const CLIENT_HANDSHAKE_TRAFFIC_SECRET: &str = "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
    /// TLS 1.3 `server_handshake_traffic_secret`.
    pub const SERVER_HANDSHAKE_TRAFFIC_SECRET: &str = "SERVER_HANDSHAKE_TRAFFIC_SECRET";
    /// TLS 1.3 `client_application_traffic_secret_0`.
    pub const CLIENT_TRAFFIC_SECRET_0: &str = "CLIENT_TRAFFIC_SECRET_0";
    /// TLS 1.3 `server_application_traffic_secret_0`.
    pub const SERVER_TRAFFIC_SECRET_0: &str = "SERVER_TRAFFIC_SECRET_0";
    /// TLS 1.3 `exporter_master_secret`.
    pub const EXPORTER_SECRET: &str = "EXPORTER_SECRET";
    /// TLS 1.3 `early_exporter_master_secret`.
    pub const EARLY_EXPORTER_SECRET: &str = "EARLY_EXPORTER_SECRET";

    /// Every label above.
    pub const ALL: [&str; 8] = [
        CLIENT_RANDOM,
        CLIENT_EARLY_TRAFFIC_SECRET,
        CLIENT_HANDSHAKE_TRAFFIC_SECRET,
        SERVER_HANDSHAKE_TRAFFIC_SECRET,
        CLIENT_TRAFFIC_SECRET_0,
        SERVER_TRAFFIC_SECRET_0,
        EXPORTER_SECRET,
        EARLY_EXPORTER_SECRET,
    ];
}

/// A key log could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLogError {
    /// The file could not be read.
    #[error("key log {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `LABEL client_random_hex secret_hex`.
    #[error("key log line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A label and client random already seen with another secret.
    #[error(
        "key log line {line}: {label} for client random {client_random} conflicts with line {first_line} (different secret)"
    )]
    Conflict {
        /// 1-based line number of the conflicting line.
        line: usize,
        /// 1-based line number where the first secret was given.
        first_line: usize,
        /// The label.
        label: String,
        /// The client random, hex.
        client_random: String,
    },
}

/// One entry: label, client random, secret.
#[derive(Debug, Clone)]
struct Entry {
    label: String,
    client_random: [u8; 32],
    secret: Vec<u8>,
    /// 1-based line it came from (0 when inserted by code).
    line: usize,
}

/// Entries are equal when label, client random and secret are (not the line they came from).
impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (&self.label, &self.client_random, &self.secret)
            == (&other.label, &other.client_random, &other.secret)
    }
}

impl Eq for Entry {}

/// The secrets of an SSLKEYLOGFILE, by client random and label, in file order. Two logs
/// are equal when they hold the same entries in the same order (line numbers aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLog {
    entries: Vec<Entry>,
    index: HashMap<([u8; 32], String), usize>,
    other: Vec<String>,
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Parses the text of a key log (LF or CRLF line ends).
    pub fn parse(text: &str) -> Result<KeyLog, KeyLogError> {
        let mut log = KeyLog::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let malformed = |reason: String| KeyLogError::Malformed { line, reason };
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [label, random_hex, secret_hex] = fields[..] else {
                return Err(malformed(format!(
                    "{} fields, expected 3 (label, client random, secret)",
                    fields.len()
                )));
            };
            let random = hex::decode(random_hex)
                .map_err(|e| malformed(format!("client random is not hex: {e}")))?;
            let secret = hex::decode(secret_hex)
                .map_err(|e| malformed(format!("secret is not hex: {e}")))?;
            if secret.is_empty() {
                return Err(malformed("empty secret".into()));
            }
            let Ok(client_random) = <[u8; 32]>::try_from(&random[..]) else {
                if label::ALL.contains(&label) {
                    return Err(malformed(format!(
                        "client random is {} bytes, expected 32",
                        random.len()
                    )));
                }
                log.other.push(content.to_string());
                continue;
            };
            let key = (client_random, label.to_string());
            if is_repeatable(label) {
                // OpenSSL logs each KeyUpdate's secret under the same `_N` label: every
                // distinct line is a further generation, in file order.
                let seen = log.entries.iter().any(|e| {
                    e.client_random == client_random && e.label == label && e.secret == secret
                });
                if !seen {
                    log.index.entry(key).or_insert(log.entries.len());
                    log.entries.push(Entry {
                        label: label.to_string(),
                        client_random,
                        secret,
                        line,
                    });
                }
                continue;
            }
            if let Some(&at) = log.index.get(&key) {
                let first = &log.entries[at];
                if first.secret != secret {
                    return Err(KeyLogError::Conflict {
                        line,
                        first_line: first.line,
                        label: label.to_string(),
                        client_random: hex::encode(client_random),
                    });
                }
                continue;
            }
            log.index.insert(key, log.entries.len());
            log.entries.push(Entry {
                label: label.to_string(),
                client_random,
                secret,
                line,
            });
        }
        Ok(log)
    }

    /// Reads and parses a key log file.
    pub fn load(path: &Path) -> Result<KeyLog, KeyLogError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyLogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        KeyLog::parse(&text)
    }

    /// The secret logged under `label` for `client_random`.
    pub fn secret(&self, client_random: &[u8; 32], label: &str) -> Option<&[u8]> {
        self.index
            .get(&(*client_random, label.to_string()))
            .map(|&i| &self.entries[i].secret[..])
    }

    /// Every secret logged under `label` for `client_random`, in file order: one, except
    /// for the repeatable `*_TRAFFIC_SECRET_N` labels (one line per KeyUpdate).
    pub fn secrets(&self, client_random: &[u8; 32], label: &str) -> Vec<&[u8]> {
        self.entries
            .iter()
            .filter(|e| &e.client_random == client_random && e.label == label)
            .map(|e| &e.secret[..])
            .collect()
    }

    /// The distinct labels logged for `client_random`, in order of first appearance.
    pub fn labels_for(&self, client_random: &[u8; 32]) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| &e.client_random == client_random)
        {
            if !out.contains(&e.label.as_str()) {
                out.push(e.label.as_str());
            }
        }
        out
    }

    /// The distinct client randoms, in order of first appearance.
    pub fn client_randoms(&self) -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.client_random) {
                out.push(e.client_random);
            }
        }
        out
    }

    /// Number of (label, client random) entries; [`other_lines`](KeyLog::other_lines)
    /// are not counted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lines kept verbatim because they do not key by a 32-byte client random (`RSA`).
    pub fn other_lines(&self) -> &[String] {
        &self.other
    }

    /// Adds an entry; an existing entry with the same label and client random has its
    /// secret replaced (use [`secret`](KeyLog::secret) first to detect a conflict).
    pub fn insert(&mut self, label: &str, client_random: [u8; 32], secret: Vec<u8>) {
        let key = (client_random, label.to_string());
        if let Some(&at) = self.index.get(&key) {
            self.entries[at].secret = secret;
            return;
        }
        self.index.insert(key, self.entries.len());
        self.entries.push(Entry {
            label: label.to_string(),
            client_random,
            secret,
            line: 0,
        });
    }

    /// The log in NSS format, one line per entry in order (lowercase hex), then the
    /// [`other_lines`](KeyLog::other_lines); [`parse`](KeyLog::parse) reads it back equal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let _ = writeln!(
                out,
                "{} {} {}",
                e.label,
                hex::encode(e.client_random),
                hex::encode(&e.secret)
            );
        }
        for line in &self.other {
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// Labels an implementation may log several times for one connection with different
/// secrets: OpenSSL's `CLIENT_TRAFFIC_SECRET_N` / `SERVER_TRAFFIC_SECRET_N`, one per
/// KeyUpdate.
pub fn is_repeatable(label: &str) -> bool {
    label.ends_with("_TRAFFIC_SECRET_N")
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";

    #[test]
    fn parses_and_writes_back() {
        let text = format!(
            "# comment\n\r\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {}\r\nRSA 0102030405060708 {}\nFUTURE_LABEL {R1} 00\n",
            "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
            "aa".repeat(48)
        );
        let log = KeyLog::parse(&text).unwrap();
        assert_eq!(log.len(), 2);
        let random: [u8; 32] = hex::decode(R1).unwrap().try_into().unwrap();
        assert_eq!(
            log.labels_for(&random),
            vec![label::CLIENT_HANDSHAKE_TRAFFIC_SECRET, "FUTURE_LABEL"]
        );
        assert_eq!(log.secret(&random, "FUTURE_LABEL"), Some(&[0u8][..]));
        assert_eq!(log.other_lines().len(), 1);
        assert_eq!(
            KeyLog::parse(&log.to_text()).unwrap().to_text(),
            log.to_text()
        );
    }

    #[test]
    fn wrong_random_length_for_a_known_label() {
        let e = KeyLog::parse("\nCLIENT_RANDOM 0102 0304\n").unwrap_err();
        assert!(
            matches!(&e, KeyLogError::Malformed { line: 2, reason } if reason.contains("2 bytes")),
            "{e}"
        );
    }
}
