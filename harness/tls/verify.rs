//! One TLS connection checked against the key-schedule model: every record decrypted with
//! the model's keys, both Finished messages verified, every logged secret compared.
//!
//! The input is the two byte streams of one TCP connection (client → server and back) and
//! what is known of its secrets:
//! - [`KnownKeys`]: both X25519 private keys (the live rustls runs, whose key exchange the
//!   harness controls). The model derives every secret from the key exchange on, and each
//!   key log is compared with it line by line.
//! - key logs only (`netconform tls verify`, any implementation): the logged traffic secrets
//!   (TLS 1.3) or master secret (TLS 1.2) are taken as given; the Finished messages, which
//!   MAC the whole transcript, and the AEAD tag of every record then tell whether they are
//!   the secrets this connection used. A logged secret counts as verified only when a
//!   record decrypts under it (or a Finished message made with it verifies); one that no
//!   record used is "not checked", and the connection cannot PASS on it.
//!
//! A caller that told the implementation what to do says what it must see
//! ([`Knowledge::key_updates`]): a side asked to update its keys whose KeyUpdate is not in a
//! stream read to its end fails; one whose stream could not be read that far is "not
//! checked". Missing evidence is never a pass: a [`Outcome::NotChecked`] finding keeps the
//! verdict from [`ConnectionVerdict::Pass`].
//!
//! Nothing here touches the operating system; a damaged stream, a missing secret or a wrong
//! key ends the connection's check with a finding, never a panic.
//!
//! The checks are processed in protocol order, not capture order: first each side's
//! handshake flights (the client's Finished depends on the server's flight), then each
//! direction's records after the handshake. [`Connection::trace`] renders the records in
//! that order, normalised (no randoms, no secrets), for snapshot tests.

use std::fmt::Write as _;

use serde::Serialize;

use super::keylog::KeyLog;
use crate::models::tls::{
    Aead, CipherSuite, EarlySecret, HashAlg, MasterSecret12, RecordProtection12,
    RecordProtection13, Sender, TrafficSecret, Transcript, Version, export_keying_material,
};
use crate::wire::tls::{
    ClientHello, Handshake, HandshakeMessage, HandshakeReader, RecordReader, ServerHello,
    TlsRecord, content_type, handshake_type,
};

/// Clause ids the findings refer to (the clause texts live in `suites::tls`).
pub mod clause {
    /// RFC 8446 §7.1: the key schedule.
    pub const KEY_SCHEDULE: &str = "rfc8446-7.1-key-schedule";
    /// RFC 8446 §7.3: traffic keys and IVs; §5.3 per-record nonce.
    pub const TRAFFIC_KEYS: &str = "rfc8446-7.3-traffic-keys";
    /// RFC 8446 §4.4.4: Finished.
    pub const FINISHED_13: &str = "rfc8446-4.4.4-finished";
    /// RFC 8446 §4.6.3: KeyUpdate.
    pub const KEY_UPDATE: &str = "rfc8446-4.6.3-key-update";
    /// RFC 8446 §7.5: exporters.
    pub const EXPORTER: &str = "rfc8446-7.5-exporters";
    /// RFC 5246 §8.1: master secret.
    pub const MASTER_SECRET: &str = "rfc5246-8.1-master-secret";
    /// RFC 7627 §4: extended master secret.
    pub const EXTENDED_MASTER_SECRET: &str = "rfc7627-4-extended-master-secret";
    /// RFC 5705 §4 (with RFC 7627 §5.4): the TLS 1.2 exporter.
    pub const EXPORTER_12: &str = "rfc5705-4-exporter";
    /// RFC 5246 §6.3: key calculation; RFC 5288 §3 / RFC 7905 §2 record nonces.
    pub const KEY_BLOCK: &str = "rfc5246-6.3-key-block";
    /// RFC 5246 §7.4.9: Finished.
    pub const FINISHED_12: &str = "rfc5246-7.4.9-finished";
}

/// Both X25519 private keys of a connection (the harness chose them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKeys {
    /// The client's private key.
    pub client_private: [u8; 32],
    /// The server's private key.
    pub server_private: [u8; 32],
}

/// Keying material the two sides exported, to compare with the model's exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCheck {
    /// The label.
    pub label: String,
    /// The context.
    pub context: Vec<u8>,
    /// What the client exported.
    pub client: Vec<u8>,
    /// What the server exported.
    pub server: Vec<u8>,
}

/// What is known about one connection besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Knowledge<'a> {
    /// Key logs, each with whose it is (`client`, `server`, or a file name).
    pub keylogs: Vec<(String, &'a KeyLog)>,
    /// The key-exchange private keys, when the harness chose them.
    pub known: Option<KnownKeys>,
    /// Exported keying material to compare with the model.
    pub exported: Option<ExportCheck>,
    /// The application data each side wrote, to compare with what decrypts
    /// (`(client, server)`).
    pub app_data: Option<(Vec<u8>, Vec<u8>)>,
    /// KeyUpdate messages each side must have sent (TLS 1.3), at least, as
    /// `(client, server)`: what the caller told the implementation to do, or what the
    /// implementation says it did. `(0, 0)`: nothing asked.
    pub key_updates: (u32, u32),
}

/// The outcome of one check on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// The check held.
    Pass,
    /// The check failed; why.
    Fail(String),
    /// The check could not be made; why (a missing secret, a truncated capture, a secret no
    /// record used, a KeyUpdate with no record after it). The connection cannot PASS while
    /// a check it needs is not checked.
    NotChecked(String),
    /// A logged value this connection never used and the model cannot check (an exporter
    /// secret from a key log alone, a generation of traffic secret the capture does not
    /// reach): reported, not checked, and no verdict rests on it.
    Unused(String),
}

/// One check on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked, e.g. `server Finished`.
    pub check: String,
    /// The clause id it enforces.
    pub clause: &'static str,
    /// How it went.
    pub outcome: Outcome,
}

/// Direction of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Side {
    /// Client → server.
    Client,
    /// Server → client.
    Server,
}

impl Side {
    fn arrow(self) -> &'static str {
        match self {
            Side::Client => "C>S",
            Side::Server => "S>C",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// One record, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordLine {
    /// Who sent it.
    pub side: Side,
    /// The outer content type.
    pub outer: u8,
    /// The record's length field.
    pub length: usize,
    /// Which keys protect it: `plain`, `early`, `hs`, `ap0`, `ap1`, ... (TLS 1.3), `epoch1`
    /// (TLS 1.2 after ChangeCipherSpec).
    pub keys: String,
    /// What it carried: handshake messages completed in it, `data(N)`, `alert(L,D)`,
    /// `ccs`, or `undecryptable`.
    pub carried: Vec<String>,
}

/// Everything found about one connection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Connection {
    /// The negotiated version (`0x0304`, `0x0303`), once the ServerHello is read.
    pub version: Option<u16>,
    /// The negotiated cipher suite.
    pub suite: Option<u16>,
    /// The ClientHello random, hex.
    pub client_random: Option<String>,
    /// The records, in protocol order.
    pub records: Vec<RecordLine>,
    /// The checks made.
    pub findings: Vec<Finding>,
    /// Why the connection could not be checked to its end (truncated capture, unparsable
    /// bytes, a missing secret).
    pub problems: Vec<String>,
    /// Application data that decrypted, per side.
    #[serde(skip)]
    pub decrypted: (Vec<u8>, Vec<u8>),
}

/// A connection's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConnectionVerdict {
    /// Every check held, every check the verdict needs was made, and the connection was
    /// checked to its end.
    Pass,
    /// A check failed.
    Fail,
    /// Nothing failed, but the connection could not be checked to its end, or a check it
    /// needs was not made (a [`Outcome::NotChecked`] finding).
    Incomplete,
}

impl Connection {
    /// The verdict: a failed check wins over a problem or a check not made; missing
    /// evidence (a problem, a not-checked finding, no passing check at all) is never a pass.
    pub fn verdict(&self) -> ConnectionVerdict {
        if self
            .findings
            .iter()
            .any(|f| matches!(f.outcome, Outcome::Fail(_)))
        {
            ConnectionVerdict::Fail
        } else if !self.problems.is_empty()
            || self
                .findings
                .iter()
                .any(|f| matches!(f.outcome, Outcome::NotChecked(_)))
            || self
                .findings
                .iter()
                .all(|f| !matches!(f.outcome, Outcome::Pass))
        {
            ConnectionVerdict::Incomplete
        } else {
            ConnectionVerdict::Pass
        }
    }

    /// The failed checks, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter_map(|f| match &f.outcome {
                Outcome::Fail(why) => Some(format!("{} [{}]: {why}", f.check, f.clause)),
                _ => None,
            })
            .collect()
    }

    /// The checks the verdict needs that could not be made, as `(clause id, what and why)`.
    pub fn not_checked(&self) -> Vec<(&'static str, String)> {
        self.findings
            .iter()
            .filter_map(|f| match &f.outcome {
                Outcome::NotChecked(why) => Some((f.clause, format!("{}: {why}", f.check))),
                _ => None,
            })
            .collect()
    }

    /// The normalised handshake trace: one line per record, with its direction, outer type,
    /// length (`*` where the content has a randomised length: certificates, signatures),
    /// keys, and what it carried.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            let variable = r.carried.iter().any(|c| {
                c.starts_with("Certificate")
                    || c.starts_with("ServerKeyExchange")
                    || c.starts_with("NewSessionTicket")
            });
            let len = if variable {
                "*".to_string()
            } else {
                r.length.to_string()
            };
            let _ = writeln!(
                out,
                "{} {:<18} len={:<5} keys={:<6} {}",
                r.side.arrow(),
                content_type_name(r.outer),
                len,
                r.keys,
                r.carried.join(", ")
            );
        }
        out
    }

    fn finding(&mut self, check: impl Into<String>, clause: &'static str, outcome: Outcome) {
        self.findings.push(Finding {
            check: check.into(),
            clause,
            outcome,
        });
    }

    fn compare(
        &mut self,
        check: impl Into<String>,
        clause: &'static str,
        expected: &[u8],
        observed: &[u8],
    ) {
        let outcome = if expected == observed {
            Outcome::Pass
        } else {
            Outcome::Fail(format!(
                "expected {}, observed {}",
                hex::encode(expected),
                hex::encode(observed)
            ))
        };
        self.finding(check, clause, outcome);
    }
}

/// The name of a content type.
pub fn content_type_name(t: u8) -> &'static str {
    match t {
        content_type::CHANGE_CIPHER_SPEC => "change_cipher_spec",
        content_type::ALERT => "alert",
        content_type::HANDSHAKE => "handshake",
        content_type::APPLICATION_DATA => "application_data",
        _ => "unknown",
    }
}

/// What reading one direction produced next.
enum Event {
    Handshake(HandshakeMessage),
    ChangeCipherSpec,
    /// Application data (plaintext after decryption).
    Data(Vec<u8>),
    Alert(Vec<u8>),
    /// No more bytes in this direction.
    End,
}

/// Why reading a direction stopped early (already recorded as a finding or problem).
struct Stopped;

enum Protection {
    Plain,
    V13 {
        secret: TrafficSecret,
        alg: Aead,
        aead: RecordProtection13,
        label: String,
        generation: u32,
    },
    V12(RecordProtection12, String),
}

struct Direction {
    side: Side,
    records: Vec<TlsRecord>,
    next: usize,
    handshake: HandshakeReader,
    protection: Protection,
    /// A KeyUpdate completed: switch keys before the next record.
    update_pending: bool,
    events: std::collections::VecDeque<Event>,
    /// Secrets this side moved to through KeyUpdate, in order (a KeyUpdate no record
    /// followed moved to none).
    updates: Vec<TrafficSecret>,
    /// KeyUpdate messages this side sent.
    key_updates_seen: usize,
    /// Records that decrypted since the last KeyUpdate.
    after_update: usize,
    /// A record failed to decrypt after a KeyUpdate.
    failed_after_update: bool,
    /// The client offered 0-RTT data the server did not accept: records that do not
    /// decrypt are its early data, skipped until the first that does (RFC 8446 §4.2.10).
    skip_rejected_early: bool,
    /// Where the current keys come from (`SERVER_TRAFFIC_SECRET_0 from key log client`),
    /// for the finding of a record that does not decrypt.
    source: String,
    /// Records that decrypted, per keys label (`hs`, `ap0`, `epoch1`, ...).
    decrypted_under: Vec<(String, usize)>,
}

impl Direction {
    fn new(side: Side, data: &[u8], conn: &mut Connection) -> Direction {
        let mut reader = RecordReader::new();
        reader.push(data);
        let mut records = Vec::new();
        loop {
            match reader.next_record() {
                Ok(Some(r)) => records.push(r),
                Ok(None) => {
                    if reader.pending() > 0 {
                        conn.problems.push(format!(
                            "{} stream: the capture ends inside a record ({} bytes of it at stream offset {})",
                            side.name(),
                            reader.pending(),
                            reader.offset()
                        ));
                    }
                    break;
                }
                Err(e) => {
                    conn.problems.push(format!(
                        "{} stream: not a TLS record at stream offset {}: {e}",
                        side.name(),
                        reader.offset()
                    ));
                    break;
                }
            }
        }
        Direction {
            side,
            records,
            next: 0,
            handshake: HandshakeReader::new(),
            protection: Protection::Plain,
            update_pending: false,
            events: Default::default(),
            updates: Vec::new(),
            key_updates_seen: 0,
            after_update: 0,
            failed_after_update: false,
            skip_rejected_early: false,
            source: String::new(),
            decrypted_under: Vec::new(),
        }
    }

    /// How many records decrypted under the keys labelled `label`.
    fn records_under(&self, label: &str) -> usize {
        self.decrypted_under
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }

    fn keys_label(&self) -> String {
        match &self.protection {
            Protection::Plain => "plain".into(),
            Protection::V13 { label, .. } => label.clone(),
            Protection::V12(_, label) => label.clone(),
        }
    }

    /// The next event, decrypting as needed; `Err(Stopped)` after a record that does not
    /// decrypt or parse (recorded in `conn`).
    fn next_event(&mut self, conn: &mut Connection) -> Result<Event, Stopped> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            // read_record queued every message its record completed.
            let Some(record) = self.records.get(self.next).cloned() else {
                if self.handshake.pending() > 0 {
                    conn.problems.push(format!(
                        "{} stream ends inside a handshake message ({} bytes of it)",
                        self.side.name(),
                        self.handshake.pending()
                    ));
                }
                return Ok(Event::End);
            };
            self.next += 1;
            if self.update_pending {
                self.update_pending = false;
                self.rotate();
            }
            self.read_record(record, conn)?;
        }
    }

    /// KeyUpdate: the sender's next traffic secret (RFC 8446 §7.2).
    fn rotate(&mut self) {
        if let Protection::V13 {
            secret,
            alg,
            generation,
            aead,
            label,
        } = &mut self.protection
        {
            let next = secret.next();
            if let Ok(p) = RecordProtection13::new(*alg, &next.keys(*alg)) {
                *aead = p;
            }
            *generation += 1;
            self.source = format!(
                "the next traffic secret after `{label}` (RFC 8446 §7.2), after the {} KeyUpdate",
                self.side.name()
            );
            *label = format!("ap{generation}");
            self.updates.push(next.clone());
            self.after_update = 0;
            *secret = next;
        }
    }

    fn read_record(&mut self, record: TlsRecord, conn: &mut Connection) -> Result<(), Stopped> {
        let mut line = RecordLine {
            side: self.side,
            outer: record.content_type,
            length: record.fragment.len(),
            keys: self.keys_label(),
            carried: Vec::new(),
        };
        let index = self.next;
        if record.content_type == content_type::CHANGE_CIPHER_SPEC {
            line.keys = "plain".into();
            line.carried.push("ccs".into());
            conn.records.push(line);
            self.events.push_back(Event::ChangeCipherSpec);
            return Ok(());
        }
        // (inner type, content, whether it was decrypted), or (error, clause, keys).
        let opened = match &mut self.protection {
            Protection::V13 { aead, label, .. }
                if record.content_type == content_type::APPLICATION_DATA =>
            {
                aead.open(&record.header(), &record.fragment)
                    .map(|(t, c)| (t, c, true))
                    .map_err(|e| (e.to_string(), clause::TRAFFIC_KEYS, label.clone()))
            }
            Protection::V12(aead, label) => aead
                .open(record.content_type, record.version, &record.fragment)
                .map(|c| (record.content_type, c, true))
                .map_err(|e| (e.to_string(), clause::KEY_BLOCK, label.clone())),
            // Plaintext; under TLS 1.3 keys, protected records are all application_data on
            // the wire (RFC 8446 §5.2) and a plaintext alert may still come first.
            Protection::Plain | Protection::V13 { .. } => {
                Ok((record.content_type, record.fragment.clone(), false))
            }
        };
        let (inner_type, content) = match opened {
            Ok((t, c, decrypted)) => {
                if decrypted {
                    self.after_update += 1;
                    self.skip_rejected_early = false;
                    match self
                        .decrypted_under
                        .iter_mut()
                        .find(|(l, _)| *l == line.keys)
                    {
                        Some((_, n)) => *n += 1,
                        None => self.decrypted_under.push((line.keys.clone(), 1)),
                    }
                }
                (t, c)
            }
            Err(_) if self.skip_rejected_early => {
                line.carried.push("0-RTT data, rejected (skipped)".into());
                conn.records.push(line);
                return Ok(());
            }
            Err((e, clause, label)) => {
                self.failed_after_update = !self.updates.is_empty();
                line.carried.push("undecryptable".into());
                conn.records.push(line);
                conn.finding(
                    format!("{} record #{index} decrypts", self.side.name()),
                    clause,
                    Outcome::Fail(format!(
                        "the {} record #{index} ({} bytes) does not decrypt with the keys of `{label}` ({}): {e}",
                        self.side.name(),
                        record.fragment.len(),
                        self.source
                    )),
                );
                return Err(Stopped);
            }
        };
        match inner_type {
            content_type::HANDSHAKE => {
                self.handshake.push(&content);
                // Name the messages this record completes, and queue them.
                loop {
                    match self.handshake.next_message() {
                        Ok(Some(m)) => {
                            let mut name = m.type_name().to_string();
                            if m.msg_type == handshake_type::KEY_UPDATE {
                                if let Ok(Handshake::KeyUpdate { update_requested }) =
                                    m.parse_body()
                                {
                                    name = format!(
                                        "KeyUpdate({})",
                                        if update_requested {
                                            "update_requested"
                                        } else {
                                            "update_not_requested"
                                        }
                                    );
                                }
                                self.update_pending = true;
                                self.key_updates_seen += 1;
                            }
                            line.carried.push(name);
                            self.events.push_back(Event::Handshake(m));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            conn.records.push(line);
                            conn.problems
                                .push(format!("{} handshake messages: {e}", self.side.name()));
                            return Err(Stopped);
                        }
                    }
                }
            }
            content_type::APPLICATION_DATA => {
                line.carried.push(format!("data({})", content.len()));
                self.events.push_back(Event::Data(content));
            }
            content_type::ALERT => {
                let name = match content.as_slice() {
                    [1, 0] => "alert(close_notify)".to_string(),
                    [level, desc] => format!("alert({level},{desc})"),
                    _ => format!("alert(? {} bytes)", content.len()),
                };
                line.carried.push(name);
                self.events.push_back(Event::Alert(content));
            }
            other => line.carried.push(format!("content type {other}")),
        }
        conn.records.push(line);
        Ok(())
    }

    fn set_13(
        &mut self,
        suite: &CipherSuite,
        secret: TrafficSecret,
        label: &str,
        source: String,
        conn: &mut Connection,
    ) {
        match RecordProtection13::new(suite.aead, &secret.keys(suite.aead)) {
            Ok(aead) => {
                self.source = source;
                self.protection = Protection::V13 {
                    secret,
                    alg: suite.aead,
                    aead,
                    label: label.to_string(),
                    generation: 0,
                }
            }
            Err(e) => conn
                .problems
                .push(format!("cannot use the {label} keys: {e}")),
        }
    }
}

/// The next handshake message of a direction (ChangeCipherSpec records skipped); the end of
/// the stream, an alert or application data before it stop the check with a problem.
fn next_message(
    dir: &mut Direction,
    conn: &mut Connection,
    before: &str,
) -> Result<HandshakeMessage, Stopped> {
    loop {
        let problem = match dir.next_event(conn)? {
            Event::Handshake(m) => return Ok(m),
            Event::ChangeCipherSpec => continue,
            Event::Alert(a) => format!("alert {a:?} before {before}"),
            Event::Data(_) => format!("application data before {before}"),
            Event::End => format!("the stream ends before {before}"),
        };
        conn.problems
            .push(format!("{}: {problem}", dir.side.name()));
        return Err(Stopped);
    }
}

/// The next handshake message of a direction, which must be `want`.
fn expect_message(
    dir: &mut Direction,
    conn: &mut Connection,
    want: u8,
    what: &str,
) -> Result<HandshakeMessage, Stopped> {
    let m = next_message(dir, conn, what)?;
    if m.msg_type == want {
        return Ok(m);
    }
    conn.problems.push(format!(
        "{}: expected {what}, found {}",
        dir.side.name(),
        m.type_name()
    ));
    Err(Stopped)
}

/// Looks a secret up in every key log that has it; the first one wins, and the others
/// must agree (a finding when they do not).
fn logged(knowledge: &Knowledge<'_>, random: &[u8; 32], label: &str) -> Option<Vec<u8>> {
    knowledge
        .keylogs
        .iter()
        .find_map(|(_, log)| log.secret(random, label).map(<[u8]>::to_vec))
}

/// Where a secret taken from a key log comes from, for findings: `LABEL from key log NAME`.
fn logged_source(knowledge: &Knowledge<'_>, random: &[u8; 32], label: &str) -> String {
    match knowledge
        .keylogs
        .iter()
        .find(|(_, log)| log.secret(random, label).is_some())
    {
        Some((whose, _)) => format!("{label} from key log {whose}"),
        None => format!("{label} from a key log"),
    }
}

/// Checks one connection: `client_data` and `server_data` are the two TCP byte streams.
pub fn verify_connection(
    client_data: &[u8],
    server_data: &[u8],
    knowledge: &Knowledge<'_>,
) -> Connection {
    let mut conn = Connection::default();
    let mut client = Direction::new(Side::Client, client_data, &mut conn);
    let mut server = Direction::new(Side::Server, server_data, &mut conn);
    if run(&mut conn, &mut client, &mut server, knowledge).is_err() {
        // The check stopped before the records after the handshake: a KeyUpdate the caller
        // asked for was never looked for, and says so.
        let (c, s) = knowledge.key_updates;
        for (side, asked) in [(Side::Client, c), (Side::Server, s)] {
            if asked > 0 {
                conn.finding(
                    format!("{} sent the KeyUpdate it was asked for", side.name()),
                    clause::KEY_UPDATE,
                    Outcome::NotChecked(format!(
                        "the {} was asked to send {asked} KeyUpdate(s); the check stopped before its records after the handshake",
                        side.name()
                    )),
                );
            }
        }
    }
    conn
}

/// The next message of `dir`, which must be a ClientHello (`what` names it in problems).
fn client_hello(
    dir: &mut Direction,
    conn: &mut Connection,
    what: &str,
) -> Result<(HandshakeMessage, ClientHello), Stopped> {
    let m = expect_message(dir, conn, handshake_type::CLIENT_HELLO, what)?;
    match m.parse_body() {
        Ok(Handshake::ClientHello(hello)) => Ok((m, hello)),
        other => {
            conn.problems
                .push(format!("{what} does not parse: {:?}", other.err()));
            Err(Stopped)
        }
    }
}

/// The next message of `dir`, which must be a ServerHello (or a HelloRetryRequest).
fn server_hello(
    dir: &mut Direction,
    conn: &mut Connection,
) -> Result<(HandshakeMessage, ServerHello), Stopped> {
    let m = expect_message(dir, conn, handshake_type::SERVER_HELLO, "ServerHello")?;
    match m.parse_body() {
        Ok(Handshake::ServerHello(hello)) => Ok((m, hello)),
        other => {
            conn.problems
                .push(format!("ServerHello does not parse: {:?}", other.err()));
            Err(Stopped)
        }
    }
}

fn run(
    conn: &mut Connection,
    client: &mut Direction,
    server: &mut Direction,
    knowledge: &Knowledge<'_>,
) -> Result<(), Stopped> {
    let (mut ch_msg, mut ch) = client_hello(client, conn, "ClientHello")?;
    conn.client_random = Some(hex::encode(ch.random));
    let (mut sh_msg, mut sh) = server_hello(server, conn)?;
    let Some(suite) = CipherSuite::from_id(sh.cipher_suite) else {
        conn.problems.push(format!(
            "cipher suite {:#06x} is not one the model knows (AEAD suites only)",
            sh.cipher_suite
        ));
        return Err(Stopped);
    };
    conn.suite = Some(suite.id);
    let mut transcript = Transcript::new(suite.hash);
    if sh.is_hello_retry_request() {
        // RFC 8446 §4.4.1: ClientHello1 becomes message_hash, then HRR, then ClientHello2.
        transcript.add(&ch_msg.encoded());
        transcript = transcript.into_message_hash();
        transcript.add(&sh_msg.encoded());
        (ch_msg, ch) = client_hello(client, conn, "the second ClientHello")?;
        (sh_msg, sh) = server_hello(server, conn)?;
    }
    transcript.add(&ch_msg.encoded());
    transcript.add(&sh_msg.encoded());
    let version = sh.selected_version();
    conn.version = Some(version);
    match (version, suite.version) {
        (0x0304, Version::Tls13) => {
            tls13(conn, client, server, knowledge, &ch, &sh, suite, transcript)
        }
        (0x0303, Version::Tls12) => {
            tls12(conn, client, server, knowledge, &ch, &sh, suite, transcript)
        }
        _ => {
            conn.problems.push(format!(
                "version {version:#06x} with suite {} is not checked",
                suite.name
            ));
            Err(Stopped)
        }
    }
}

/// The X25519 shared secret from the controlled keys, checking that the key shares on the
/// wire are the public keys of those private keys.
fn known_ecdhe(
    conn: &mut Connection,
    known: &KnownKeys,
    client_share: Option<&[u8]>,
    server_share: Option<&[u8]>,
    clause: &'static str,
) -> Option<Vec<u8>> {
    let public = |k: [u8; 32]| x25519_dalek::x25519(k, x25519_dalek::X25519_BASEPOINT_BYTES);
    let (Some(cs), Some(ss)) = (client_share, server_share) else {
        conn.finding(
            "X25519 key shares",
            clause,
            Outcome::Fail("no X25519 key share from both sides".into()),
        );
        return None;
    };
    conn.compare(
        "client key share is the controlled X25519 key",
        clause,
        &public(known.client_private),
        cs,
    );
    conn.compare(
        "server key share is the controlled X25519 key",
        clause,
        &public(known.server_private),
        ss,
    );
    let ss: [u8; 32] = ss.try_into().ok()?;
    Some(x25519_dalek::x25519(known.client_private, ss).to_vec())
}

const X25519: u16 = 0x001d;
/// The early_data extension (RFC 8446 §4.2.10).
const EARLY_DATA: u16 = 42;

#[allow(clippy::too_many_arguments)]
fn tls13(
    conn: &mut Connection,
    client: &mut Direction,
    server: &mut Direction,
    knowledge: &Knowledge<'_>,
    ch: &ClientHello,
    sh: &ServerHello,
    suite: CipherSuite,
    mut transcript: Transcript,
) -> Result<(), Stopped> {
    let alg = suite.hash;
    let random = ch.random;
    let ch_sh = transcript.hash();

    // Handshake traffic secrets: derived (known keys) or logged.
    let mut master = None;
    let (chts, shts) = if let Some(known) = &knowledge.known {
        if sh.selected_psk().is_some() {
            conn.problems.push("a PSK handshake: the model needs the PSK, which the controlled key exchange does not give".into());
            return Err(Stopped);
        }
        let client_share = ch
            .key_shares()
            .into_iter()
            .find(|(g, _)| *g == X25519)
            .map(|(_, k)| k);
        let server_share = sh.key_share().filter(|(g, _)| *g == X25519).map(|(_, k)| k);
        let Some(ecdhe) = known_ecdhe(
            conn,
            known,
            client_share.as_deref(),
            server_share.as_deref(),
            clause::KEY_SCHEDULE,
        ) else {
            return Err(Stopped);
        };
        let hs = EarlySecret::new(alg, None).into_handshake(Some(&ecdhe));
        let c = hs.client_handshake_traffic_secret(&ch_sh);
        let s = hs.server_handshake_traffic_secret(&ch_sh);
        master = Some(hs.into_master());
        (c, s)
    } else {
        let get =
            |label: &str| logged(knowledge, &random, label).map(|b| TrafficSecret::new(alg, b));
        match (
            get("CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
            get("SERVER_HANDSHAKE_TRAFFIC_SECRET"),
        ) {
            (Some(c), Some(s)) => (c, s),
            (c, s) => {
                let missing: Vec<&str> = [
                    c.is_none().then_some("CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
                    s.is_none().then_some("SERVER_HANDSHAKE_TRAFFIC_SECRET"),
                ]
                .into_iter()
                .flatten()
                .collect();
                conn.problems.push(format!(
                    "the key log has no {} for client random {}",
                    missing.join(" or "),
                    hex::encode(random)
                ));
                return Err(Stopped);
            }
        }
    };
    let derived = master.is_some();
    let source = |label: &str, model: &str| {
        if derived {
            format!("the model's {model}")
        } else {
            logged_source(knowledge, &random, label)
        }
    };
    server.set_13(
        &suite,
        shts.clone(),
        "hs",
        source(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "server handshake traffic secret",
        ),
        conn,
    );

    // The server's encrypted flight up to its Finished.
    let mut early_accepted = false;
    loop {
        let m = next_message(server, conn, "its Finished")?;
        if let Ok(Handshake::EncryptedExtensions(extensions)) = m.parse_body() {
            early_accepted = extensions.iter().any(|e| e.ext_type == EARLY_DATA);
        }
        if m.msg_type == handshake_type::FINISHED {
            let expected = shts.verify_data(&transcript.hash());
            conn.compare("server Finished", clause::FINISHED_13, &expected, &m.body);
            transcript.add(&m.encoded());
            break;
        }
        transcript.add(&m.encoded());
    }
    let ch_sf = transcript.hash();

    // Application traffic secrets and the exporter.
    let (cats, sats, exporter) = if let Some(master) = &master {
        (
            master.client_application_traffic_secret_0(&ch_sf),
            master.server_application_traffic_secret_0(&ch_sf),
            Some(master.exporter_master_secret(&ch_sf)),
        )
    } else {
        let get =
            |label: &str| logged(knowledge, &random, label).map(|b| TrafficSecret::new(alg, b));
        match (
            get("CLIENT_TRAFFIC_SECRET_0"),
            get("SERVER_TRAFFIC_SECRET_0"),
        ) {
            (Some(c), Some(s)) => (c, s, None),
            _ => {
                conn.problems.push(format!(
                    "the key log has no CLIENT_TRAFFIC_SECRET_0 or SERVER_TRAFFIC_SECRET_0 for client random {}",
                    hex::encode(random)
                ));
                return Err(Stopped);
            }
        }
    };

    // The client's flight: accepted 0-RTT data under the early traffic secret up to
    // EndOfEarlyData (RFC 8446 §4.5), then its handshake-key flight up to Finished.
    if early_accepted {
        let Some(cets) = logged(knowledge, &random, "CLIENT_EARLY_TRAFFIC_SECRET") else {
            conn.problems.push(format!(
                "the server accepted 0-RTT data and the key log has no CLIENT_EARLY_TRAFFIC_SECRET for client random {}",
                hex::encode(random)
            ));
            return Err(Stopped);
        };
        client.set_13(
            &suite,
            TrafficSecret::new(alg, cets),
            "early",
            logged_source(knowledge, &random, "CLIENT_EARLY_TRAFFIC_SECRET"),
            conn,
        );
        loop {
            match client.next_event(conn)? {
                Event::Handshake(m) if m.msg_type == handshake_type::END_OF_EARLY_DATA => {
                    transcript.add(&m.encoded());
                    break;
                }
                Event::ChangeCipherSpec | Event::Data(_) => {}
                _ => {
                    conn.problems
                        .push("client: its 0-RTT data does not end in EndOfEarlyData".into());
                    return Err(Stopped);
                }
            }
        }
    }
    client.set_13(
        &suite,
        chts.clone(),
        "hs",
        source(
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "client handshake traffic secret",
        ),
        conn,
    );
    client.skip_rejected_early = ch.early_data() && !early_accepted;
    loop {
        let m = next_message(client, conn, "its Finished")?;
        if m.msg_type == handshake_type::FINISHED {
            let expected = chts.verify_data(&transcript.hash());
            conn.compare("client Finished", clause::FINISHED_13, &expected, &m.body);
            break;
        }
        transcript.add(&m.encoded());
    }

    // Every logged secret against the model.
    let mut model: Vec<(&str, Vec<u8>)> = vec![
        ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", chts.bytes().to_vec()),
        ("SERVER_HANDSHAKE_TRAFFIC_SECRET", shts.bytes().to_vec()),
        ("CLIENT_TRAFFIC_SECRET_0", cats.bytes().to_vec()),
        ("SERVER_TRAFFIC_SECRET_0", sats.bytes().to_vec()),
    ];
    if let Some(e) = &exporter {
        model.push(("EXPORTER_SECRET", e.clone()));
    }
    if let (Some(master), Some(check)) = (&master, &knowledge.exported) {
        let exp = master.exporter_master_secret(&ch_sf);
        let want =
            export_keying_material(alg, &exp, &check.label, &check.context, check.client.len());
        conn.compare(
            "client's exported keying material",
            clause::EXPORTER,
            &want,
            &check.client,
        );
        conn.compare(
            "server's exported keying material",
            clause::EXPORTER,
            &want,
            &check.server,
        );
    }

    client.set_13(
        &suite,
        cats,
        "ap0",
        source(
            "CLIENT_TRAFFIC_SECRET_0",
            "client application traffic secret",
        ),
        conn,
    );
    server.set_13(
        &suite,
        sats,
        "ap0",
        source(
            "SERVER_TRAFFIC_SECRET_0",
            "server application traffic secret",
        ),
        conn,
    );
    let client_done = post_handshake(conn, client);
    let server_done = post_handshake(conn, server);
    let (client_asked, server_asked) = knowledge.key_updates;
    for (dir, complete, asked) in [
        (&*client, client_done, client_asked),
        (&*server, server_done, server_asked),
    ] {
        let n = dir.key_updates_seen;
        let name = dir.side.name();
        if n < asked as usize {
            // Asked for and absent: the implementation did not do it when its stream was
            // read to its end; otherwise the harness could not see it.
            let outcome = if complete {
                Outcome::Fail(format!(
                    "the {name} was asked to send {asked} KeyUpdate(s); its stream, read to its end, holds {n}"
                ))
            } else {
                Outcome::NotChecked(format!(
                    "the {name} was asked to send {asked} KeyUpdate(s); {n} before its stream could no longer be read"
                ))
            };
            conn.finding(
                format!("{name} sent the KeyUpdate it was asked for"),
                clause::KEY_UPDATE,
                outcome,
            );
        }
        if n == 0 {
            continue;
        }
        let outcome = if dir.failed_after_update {
            Outcome::Fail(format!(
                "a record after the {} KeyUpdate does not decrypt with the model's next traffic secret",
                dir.side.name()
            ))
        } else if complete && !dir.update_pending && dir.after_update > 0 {
            Outcome::Pass
        } else {
            Outcome::NotChecked(format!(
                "no {} record after its last KeyUpdate to decrypt",
                dir.side.name()
            ))
        };
        conn.finding(
            format!(
                "{} KeyUpdate ×{n}: the records after it decrypt with the model's next traffic secret",
                dir.side.name()
            ),
            clause::KEY_UPDATE,
            outcome,
        );
    }
    // The records that decrypted under each secret the connection took as its keys.
    let used = [
        (
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            client.records_under("hs"),
        ),
        (
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            server.records_under("hs"),
        ),
        ("CLIENT_TRAFFIC_SECRET_0", client.records_under("ap0")),
        ("SERVER_TRAFFIC_SECRET_0", server.records_under("ap0")),
        ("CLIENT_EARLY_TRAFFIC_SECRET", client.records_under("early")),
    ];
    compare_logs(
        conn,
        knowledge,
        &random,
        &model,
        &used,
        clause::KEY_SCHEDULE,
        &client.updates,
        &server.updates,
        master.is_some().then_some(clause::KEY_SCHEDULE),
    );
    check_app_data(conn, knowledge, client_done && server_done);
    Ok(())
}

/// After the handshake: decrypt every remaining record of one direction. True when it was
/// read to its end.
fn post_handshake(conn: &mut Connection, dir: &mut Direction) -> bool {
    loop {
        match dir.next_event(conn) {
            Ok(Event::End) => return true,
            Ok(Event::Data(d)) => match dir.side {
                Side::Client => conn.decrypted.0.extend_from_slice(&d),
                Side::Server => conn.decrypted.1.extend_from_slice(&d),
            },
            Ok(Event::Handshake(_) | Event::ChangeCipherSpec | Event::Alert(_)) => {}
            Err(Stopped) => return false,
        }
    }
}

fn check_app_data(conn: &mut Connection, knowledge: &Knowledge<'_>, complete: bool) {
    let Some((client_sent, server_sent)) = &knowledge.app_data else {
        return;
    };
    if !complete {
        return;
    }
    let (c, s) = conn.decrypted.clone();
    for (who, sent, got) in [("client", client_sent, c), ("server", server_sent, s)] {
        let outcome = if *sent == got {
            Outcome::Pass
        } else {
            Outcome::Fail(format!(
                "the {who} wrote {} bytes of application data; {} bytes decrypted, {}",
                sent.len(),
                got.len(),
                if sent.starts_with(&got) {
                    "a prefix"
                } else {
                    "different bytes"
                }
            ))
        };
        conn.finding(
            format!("{who} application data decrypts to what it wrote"),
            clause::TRAFFIC_KEYS,
            outcome,
        );
    }
}

/// Compares every line of every key log for this connection with the model's value.
///
/// `used` says, for each secret the connection took as its keys, how many records
/// decrypted under it. With the model's own derivation (`derived_under`) a logged value is
/// compared with it; taken from a key log, a secret counts as verified only when a record
/// decrypted under it (the Finished messages travel in the handshake records), else it is
/// not checked; those findings are under clause `taken_under` (the key schedule in TLS
/// 1.3, the key block in TLS 1.2).
#[allow(clippy::too_many_arguments)]
fn compare_logs(
    conn: &mut Connection,
    knowledge: &Knowledge<'_>,
    random: &[u8; 32],
    model: &[(&str, Vec<u8>)],
    used: &[(&str, usize)],
    taken_under: &'static str,
    client_updates: &[TrafficSecret],
    server_updates: &[TrafficSecret],
    derived_under: Option<&'static str>,
) {
    let records_under = |label: &str| used.iter().find(|(l, _)| *l == label).map(|(_, n)| *n);
    let whose_records = |label: &str| {
        if label.starts_with("CLIENT_") && label != "CLIENT_RANDOM" {
            "client"
        } else if label.starts_with("SERVER_") {
            "server"
        } else {
            "client or server"
        }
    };
    let derived = derived_under.is_some();
    for (whose, log) in &knowledge.keylogs {
        let labels = log.labels_for(random);
        if labels.is_empty() {
            if !derived {
                continue;
            }
            conn.finding(
                format!("{whose} key log has this connection"),
                clause::KEY_SCHEDULE,
                Outcome::Fail(format!("no line for client random {}", hex::encode(random))),
            );
            continue;
        }
        // A secret the model derived that this log does not hold: said, not passed over.
        if derived {
            for (label, _) in model {
                if !labels.contains(label) {
                    conn.finding(
                        format!("{whose} logged {label}"),
                        derived_under.unwrap_or(clause::KEY_SCHEDULE),
                        Outcome::NotChecked(format!("{whose} did not log {label}")),
                    );
                }
            }
        }
        for label in labels {
            let updates = match label {
                "CLIENT_TRAFFIC_SECRET_N" => Some(client_updates),
                "SERVER_TRAFFIC_SECRET_N" => Some(server_updates),
                _ => None,
            };
            if let Some(updates) = updates {
                // One line per KeyUpdate, in order: generation 1, 2, ...
                for (n, value) in log.secrets(random, label).into_iter().enumerate() {
                    let check = format!("{whose} logged {label} (generation {})", n + 1);
                    match updates.get(n) {
                        Some(w) => conn.compare(check, clause::KEY_UPDATE, w.bytes(), value),
                        None => conn.finding(
                            check,
                            clause::KEY_UPDATE,
                            Outcome::Unused(format!(
                                "the capture shows {} key update(s) of that side: no record used it",
                                updates.len()
                            )),
                        ),
                    }
                }
                continue;
            }
            let Some(value) = log.secret(random, label) else {
                continue;
            };
            let want: Option<Vec<u8>> = model
                .iter()
                .find(|(m, _)| *m == label)
                .map(|(_, v)| v.clone());
            let check = format!("{whose} logged {label}");
            // Taken from a key log as the connection's keys: verified by the records that
            // decrypted under it (a Finished travels in one), never by being logged.
            let evidence = |n: usize| {
                if n > 0 {
                    Outcome::Pass
                } else {
                    Outcome::NotChecked(format!(
                        "no {} record decrypted under it: a logged secret counts as verified only when one does",
                        whose_records(label)
                    ))
                }
            };
            match (want, records_under(label)) {
                (Some(w), _) if derived => conn.compare(
                    check,
                    derived_under.unwrap_or(clause::KEY_SCHEDULE),
                    &w,
                    value,
                ),
                // Another log that disagrees with the one the keys came from.
                (Some(w), _) if w != value => conn.compare(check, taken_under, &w, value),
                (Some(_), Some(n)) => conn.finding(check, taken_under, evidence(n)),
                (Some(_), None) => conn.finding(
                    check,
                    taken_under,
                    Outcome::NotChecked("no record was read under it".into()),
                ),
                // Logged, not in the model, and the connection's keys (0-RTT data).
                (None, Some(n)) if n > 0 => conn.finding(check, taken_under, evidence(n)),
                (None, _) => conn.finding(
                    check,
                    if label.contains("EXPORTER") {
                        clause::EXPORTER
                    } else {
                        clause::KEY_SCHEDULE
                    },
                    Outcome::Unused(format!(
                        "the model has no value for {label} from {}, and no record used it",
                        if derived {
                            "this exchange"
                        } else {
                            "a key log alone"
                        }
                    )),
                ),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn tls12(
    conn: &mut Connection,
    client: &mut Direction,
    server: &mut Direction,
    knowledge: &Knowledge<'_>,
    ch: &ClientHello,
    sh: &ServerHello,
    suite: CipherSuite,
    mut transcript: Transcript,
) -> Result<(), Stopped> {
    let alg: HashAlg = suite.hash;
    let (client_random, server_random) = (ch.random, sh.random);
    let ems = ch.extended_master_secret() && sh.extended_master_secret();

    // The server's first flight: a full handshake ends in ServerHelloDone; an abbreviated
    // one (resumption) goes straight to ChangeCipherSpec.
    let mut server_params = None;
    let mut abbreviated = false;
    loop {
        match server.next_event(conn)? {
            Event::Handshake(m) => {
                transcript.add(&m.encoded());
                if m.msg_type == handshake_type::SERVER_KEY_EXCHANGE {
                    server_params = crate::wire::tls::parse_ecdhe_server_params(&m.body).ok();
                }
                if m.msg_type == handshake_type::SERVER_HELLO_DONE {
                    break;
                }
            }
            Event::ChangeCipherSpec => {
                abbreviated = true;
                break;
            }
            Event::End => {
                conn.problems
                    .push("server: the stream ends in its first flight".into());
                return Err(Stopped);
            }
            Event::Alert(a) => {
                conn.problems
                    .push(format!("server: alert {a:?} in its first flight"));
                return Err(Stopped);
            }
            Event::Data(_) => {
                conn.problems
                    .push("server: application data in its first flight".into());
                return Err(Stopped);
            }
        }
    }
    let master_from_log = |conn: &mut Connection| -> Result<MasterSecret12, Stopped> {
        let Some(bytes) = logged(knowledge, &client_random, "CLIENT_RANDOM") else {
            conn.problems.push(format!(
                "the key log has no CLIENT_RANDOM line for client random {}",
                hex::encode(client_random)
            ));
            return Err(Stopped);
        };
        MasterSecret12::from_logged(alg, &bytes).map_err(|e| {
            conn.problems.push(format!("the logged master secret: {e}"));
            Stopped
        })
    };

    let master;
    let from_log = format!(
        "the master secret of {}",
        logged_source(knowledge, &client_random, "CLIENT_RANDOM")
    );
    let master_source;
    if abbreviated {
        master = master_from_log(conn)?;
        master_source = from_log;
        // Server: ChangeCipherSpec (read), then Finished.
        server_keys(
            server,
            &master,
            &suite,
            &client_random,
            &server_random,
            &master_source,
            conn,
        )?;
        server_finished_12(conn, server, &master, &mut transcript)?;
        client_flight_12(
            conn,
            client,
            &master,
            &suite,
            &client_random,
            &server_random,
            &mut transcript,
            false,
            &master_source,
        )?;
    } else {
        // The client's flight up to its ChangeCipherSpec.
        let mut cke = None;
        loop {
            match client.next_event(conn)? {
                Event::Handshake(m) => {
                    transcript.add(&m.encoded());
                    if m.msg_type == handshake_type::CLIENT_KEY_EXCHANGE {
                        cke = Some((m.body.clone(), transcript.hash()));
                    }
                }
                Event::ChangeCipherSpec => break,
                _ => {
                    conn.problems
                        .push("client: its flight does not reach ChangeCipherSpec".into());
                    return Err(Stopped);
                }
            }
        }
        let Some((cke_body, session_hash)) = cke else {
            conn.problems.push("client: no ClientKeyExchange".into());
            return Err(Stopped);
        };
        master = if let Some(known) = &knowledge.known {
            let client_public = crate::wire::tls::ecdh_public(&cke_body).ok();
            let server_public = server_params
                .as_ref()
                .filter(|(g, _)| *g == X25519)
                .map(|(_, k)| k.clone());
            let clause = if ems {
                clause::EXTENDED_MASTER_SECRET
            } else {
                clause::MASTER_SECRET
            };
            let Some(pms) = known_ecdhe(
                conn,
                known,
                client_public.as_deref(),
                server_public.as_deref(),
                clause,
            ) else {
                return Err(Stopped);
            };
            master_source = "the model's master secret".to_string();
            if ems {
                MasterSecret12::extended(alg, &pms, &session_hash)
            } else {
                MasterSecret12::from_pre_master(alg, &pms, &client_random, &server_random)
            }
        } else {
            master_source = from_log;
            master_from_log(conn)?
        };
        client_flight_12(
            conn,
            client,
            &master,
            &suite,
            &client_random,
            &server_random,
            &mut transcript,
            true,
            &master_source,
        )?;
        // Server: optional NewSessionTicket, ChangeCipherSpec, Finished.
        loop {
            match server.next_event(conn)? {
                Event::Handshake(m) => transcript.add(&m.encoded()),
                Event::ChangeCipherSpec => break,
                _ => {
                    conn.problems
                        .push("server: no ChangeCipherSpec after the client's Finished".into());
                    return Err(Stopped);
                }
            }
        }
        server_keys(
            server,
            &master,
            &suite,
            &client_random,
            &server_random,
            &master_source,
            conn,
        )?;
        server_finished_12(conn, server, &master, &mut transcript)?;
    }
    let model = [("CLIENT_RANDOM", master.bytes().to_vec())];
    let client_done = post_handshake(conn, client);
    let server_done = post_handshake(conn, server);
    let used = [(
        "CLIENT_RANDOM",
        client.records_under("epoch1") + server.records_under("epoch1"),
    )];
    compare_logs(
        conn,
        knowledge,
        &client_random,
        &model,
        &used,
        clause::KEY_BLOCK,
        &[],
        &[],
        (knowledge.known.is_some() && !abbreviated).then_some(if ems {
            clause::EXTENDED_MASTER_SECRET
        } else {
            clause::MASTER_SECRET
        }),
    );
    if let Some(check) = &knowledge.exported {
        // RFC 5705 §4 with RFC 7627 §5.4: PRF(master, label, client_random ‖ server_random ‖ u16 len ‖ context).
        let mut seed = client_random.to_vec();
        seed.extend_from_slice(&server_random);
        seed.extend_from_slice(&(check.context.len() as u16).to_be_bytes());
        seed.extend_from_slice(&check.context);
        let want =
            crate::models::tls::prf(alg, master.bytes(), &check.label, &seed, check.client.len());
        conn.compare(
            "client's exported keying material",
            clause::EXPORTER_12,
            &want,
            &check.client,
        );
        conn.compare(
            "server's exported keying material",
            clause::EXPORTER_12,
            &want,
            &check.server,
        );
    }
    let (client_asked, server_asked) = knowledge.key_updates;
    for (side, asked) in [(Side::Client, client_asked), (Side::Server, server_asked)] {
        if asked > 0 {
            conn.finding(
                format!("{} sent the KeyUpdate it was asked for", side.name()),
                clause::KEY_UPDATE,
                Outcome::NotChecked(format!(
                    "the {} was asked to send {asked} KeyUpdate(s), and TLS 1.2 has none",
                    side.name()
                )),
            );
        }
    }
    check_app_data(conn, knowledge, client_done && server_done);
    Ok(())
}

fn server_keys(
    server: &mut Direction,
    master: &MasterSecret12,
    suite: &CipherSuite,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    source: &str,
    conn: &mut Connection,
) -> Result<(), Stopped> {
    let kb = master.key_block(suite, client_random, server_random);
    match RecordProtection12::new(suite.aead, &kb.server_key, &kb.server_iv) {
        Ok(p) => {
            server.protection = Protection::V12(p, "epoch1".into());
            server.source = format!("the key block of {source}");
            Ok(())
        }
        Err(e) => {
            conn.problems.push(format!("server keys: {e}"));
            Err(Stopped)
        }
    }
}

fn server_finished_12(
    conn: &mut Connection,
    server: &mut Direction,
    master: &MasterSecret12,
    transcript: &mut Transcript,
) -> Result<(), Stopped> {
    let m = expect_message(
        server,
        conn,
        handshake_type::FINISHED,
        "the server's Finished",
    )?;
    let want = master.verify_data(Sender::Server, &transcript.hash());
    conn.compare("server Finished", clause::FINISHED_12, &want, &m.body);
    transcript.add(&m.encoded());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn client_flight_12(
    conn: &mut Connection,
    client: &mut Direction,
    master: &MasterSecret12,
    suite: &CipherSuite,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    transcript: &mut Transcript,
    ccs_read: bool,
    source: &str,
) -> Result<(), Stopped> {
    if !ccs_read {
        loop {
            match client.next_event(conn)? {
                Event::ChangeCipherSpec => break,
                Event::Handshake(m) => transcript.add(&m.encoded()),
                _ => {
                    conn.problems.push("client: no ChangeCipherSpec".into());
                    return Err(Stopped);
                }
            }
        }
    }
    let kb = master.key_block(suite, client_random, server_random);
    match RecordProtection12::new(suite.aead, &kb.client_key, &kb.client_iv) {
        Ok(p) => {
            client.protection = Protection::V12(p, "epoch1".into());
            client.source = format!("the key block of {source}");
        }
        Err(e) => {
            conn.problems.push(format!("client keys: {e}"));
            return Err(Stopped);
        }
    }
    let m = expect_message(
        client,
        conn,
        handshake_type::FINISHED,
        "the client's Finished",
    )?;
    let want = master.verify_data(Sender::Client, &transcript.hash());
    conn.compare("client Finished", clause::FINISHED_12, &want, &m.body);
    transcript.add(&m.encoded());
    Ok(())
}
