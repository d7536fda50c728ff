//! TLS key-schedule checks: a real exchange between a TLS client and server (rustls over
//! the kernel's TCP, in two namespaces), captured on the veth between them and checked
//! against the key-schedule model ([`crate::models::tls`]) by [`crate::tls::verify`].
//!
//! The harness controls the X25519 key exchange (both private keys), so the model derives
//! every secret from the shared secret on: each side's logged secrets must equal the
//! model's, both Finished messages must verify, every record (handshake and application
//! data, both directions) must decrypt with the model's keys and IVs, the application data
//! must decrypt to what each side wrote, the exported keying material must equal the
//! model's exporter, and after each KeyUpdate the records must decrypt with the model's
//! next traffic secret.
//!
//! Every verdict earns its pass. A TLS 1.3 scenario asks both sides to update their keys:
//! each side's KeyUpdate must be in the capture (and each one the implementation says it
//! sent), with records after it under the next secret. A side that was asked and whose
//! stream, read to its end, holds no KeyUpdate fails the check (the implementation did not
//! do what it was told); a check the connection needs that could not be made (no record
//! after a KeyUpdate, a logged secret no record used) marks its clause not checked
//! ([`Session::not_checked`]), and the check ends in an error listing it, never a pass.

use crate::dut::service::{ServiceAnswer, ServiceKind, ServiceRequest};
use crate::dut::tls::{TlsRun, TlsScenario};
use crate::engine::Uses;
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::tls::verify::{
    self, ConnectionVerdict, ExportCheck, Knowledge, KnownKeys, clause as ids,
};

/// RFC 8446 §7.1: the key schedule.
pub const KEY_SCHEDULE: Clause = Clause {
    id: ids::KEY_SCHEDULE,
    source: "RFC 8446 §7.1",
    url: "https://www.rfc-editor.org/rfc/rfc8446#section-7.1",
    text: "HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, \
           Length) ... Derive-Secret(Secret, Label, Messages) = HKDF-Expand-Label(Secret, Label, \
           Transcript-Hash(Messages), Hash.length) ... Given a set of n InputSecrets, the final \
           \"master secret\" is computed by iteratively invoking HKDF-Extract with InputSecret_1, \
           InputSecret_2, etc.",
};

/// RFC 8446 §7.3 (with §5.3): traffic keys, IVs and the per-record nonce.
pub const TRAFFIC_KEYS: Clause = Clause {
    id: ids::TRAFFIC_KEYS,
    source: "RFC 8446 §7.3, §5.3",
    url: "https://www.rfc-editor.org/rfc/rfc8446#section-7.3",
    text: "[sender]_write_key = HKDF-Expand-Label(Secret, \"key\", \"\", key_length) \
           [sender]_write_iv = HKDF-Expand-Label(Secret, \"iv\", \"\", iv_length) ... (§5.3) The \
           64-bit record sequence number is encoded in network byte order and padded to the left \
           with zeros to iv_length. The padded sequence number is XORed with either the static \
           client_write_iv or server_write_iv (depending on the role).",
};

/// RFC 8446 §4.4.4: Finished.
pub const FINISHED_13: Clause = Clause {
    id: ids::FINISHED_13,
    source: "RFC 8446 §4.4.4",
    url: "https://www.rfc-editor.org/rfc/rfc8446#section-4.4.4",
    text: "finished_key = HKDF-Expand-Label(BaseKey, \"finished\", \"\", Hash.length) ... \
           verify_data = HMAC(finished_key, Transcript-Hash(Handshake Context, Certificate*, \
           CertificateVerify*)). Recipients of Finished messages MUST verify that the contents \
           are correct and if incorrect MUST terminate the connection with a \"decrypt_error\" \
           alert.",
};

/// RFC 8446 §4.6.3 and §7.2: KeyUpdate.
pub const KEY_UPDATE: Clause = Clause {
    id: ids::KEY_UPDATE,
    source: "RFC 8446 §4.6.3, §7.2",
    url: "https://www.rfc-editor.org/rfc/rfc8446#section-7.2",
    text: "application_traffic_secret_N+1 = HKDF-Expand-Label(application_traffic_secret_N, \
           \"traffic upd\", \"\", Hash.length) ... (§4.6.3) After sending a KeyUpdate message, the \
           sender SHALL send all its traffic using the next generation of keys. Upon receiving a \
           KeyUpdate, the receiver MUST update its receiving keys.",
};

/// RFC 8446 §7.5: exporters.
pub const EXPORTER: Clause = Clause {
    id: ids::EXPORTER,
    source: "RFC 8446 §7.5",
    url: "https://www.rfc-editor.org/rfc/rfc8446#section-7.5",
    text: "TLS-Exporter(label, context_value, key_length) = HKDF-Expand-Label(Derive-Secret(Secret, \
           label, \"\"), \"exporter\", Hash(context_value), key_length) Where Secret is either the \
           early_exporter_master_secret or the exporter_master_secret.",
};

/// RFC 5246 §8.1: the master secret.
pub const MASTER_SECRET: Clause = Clause {
    id: ids::MASTER_SECRET,
    source: "RFC 5246 §8.1",
    url: "https://www.rfc-editor.org/rfc/rfc5246#section-8.1",
    text: "master_secret = PRF(pre_master_secret, \"master secret\", ClientHello.random + \
           ServerHello.random) [0..47];",
};

/// RFC 7627 §4: the extended master secret.
pub const EXTENDED_MASTER_SECRET: Clause = Clause {
    id: ids::EXTENDED_MASTER_SECRET,
    source: "RFC 7627 §4",
    url: "https://www.rfc-editor.org/rfc/rfc7627#section-4",
    text: "When the extended master secret extension is negotiated in a full handshake, the \
           \"master_secret\" is computed as master_secret = PRF(pre_master_secret, \"extended \
           master secret\", session_hash) [0..47];",
};

/// RFC 5705 §4: the TLS 1.2 exporter (with the extended master secret, RFC 7627 §5.4).
pub const EXPORTER_12: Clause = Clause {
    id: ids::EXPORTER_12,
    source: "RFC 5705 §4",
    url: "https://www.rfc-editor.org/rfc/rfc5705#section-4",
    text: "PRF(SecurityParameters.master_secret, label, SecurityParameters.client_random + \
           SecurityParameters.server_random + context_value_length + context_value)[length]",
};

/// RFC 5246 §6.3: the key block.
pub const KEY_BLOCK: Clause = Clause {
    id: ids::KEY_BLOCK,
    source: "RFC 5246 §6.3",
    url: "https://www.rfc-editor.org/rfc/rfc5246#section-6.3",
    text: "key_block = PRF(SecurityParameters.master_secret, \"key expansion\", \
           SecurityParameters.server_random + SecurityParameters.client_random); until enough \
           output has been generated. Then, the key_block is partitioned as follows: \
           client_write_MAC_key[...] server_write_MAC_key[...] client_write_key[...] \
           server_write_key[...] client_write_IV[...] server_write_IV[...]",
};

/// RFC 5246 §7.4.9: Finished.
pub const FINISHED_12: Clause = Clause {
    id: ids::FINISHED_12,
    source: "RFC 5246 §7.4.9",
    url: "https://www.rfc-editor.org/rfc/rfc5246#section-7.4.9",
    text: "verify_data PRF(master_secret, finished_label, Hash(handshake_messages)) \
           [0..verify_data_length-1]; ... Recipients of Finished messages MUST verify that the \
           contents are correct.",
};

/// Every TLS clause, for reports that map a finding's clause id to its text.
pub const CLAUSES: &[Clause] = &[
    KEY_SCHEDULE,
    TRAFFIC_KEYS,
    FINISHED_13,
    KEY_UPDATE,
    EXPORTER,
    MASTER_SECRET,
    EXTENDED_MASTER_SECRET,
    KEY_BLOCK,
    FINISHED_12,
    EXPORTER_12,
];

const TLS13: &[Clause] = &[
    KEY_SCHEDULE,
    TRAFFIC_KEYS,
    FINISHED_13,
    KEY_UPDATE,
    EXPORTER,
];
// rustls always negotiates the extended master secret, so the classic RFC 5246 §8.1
// derivation is checked on published vectors (tests/tls_vectors.rs), not here.
const TLS12: &[Clause] = &[EXTENDED_MASTER_SECRET, KEY_BLOCK, FINISHED_12, EXPORTER_12];

const NEEDS: Needs = Needs {
    ipv6: false,
    peer_preresolved: false,
    settings: &[],
    switch: None,
    router: None,
    uses: &[Uses::Service(ServiceKind::Tls)],
};

/// The X25519 private keys of the live runs: RFC 8448 §3's, so the ECDHE shared secret of
/// every run is the one the RFC prints (`8bd4054f…492d`).
pub const CLIENT_PRIVATE: [u8; 32] =
    hex_literal("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005");
/// See [`CLIENT_PRIVATE`].
pub const SERVER_PRIVATE: [u8; 32] =
    hex_literal("b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e");

const fn hex_literal(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

/// The scenario of a check: `version` and `suite`, with a key update in TLS 1.3.
pub fn scenario(version: u16, suite: u16) -> TlsScenario {
    TlsScenario {
        version,
        suite,
        key_update: version == 0x0304,
        client_private: CLIENT_PRIVATE,
        server_private: SERVER_PRIVATE,
    }
}

/// What the model knows about a live run besides its bytes: the key logs always; the
/// key-exchange private keys, the exported keying material and the application data when
/// the implementation let the harness choose or learn them.
pub fn knowledge_of<'a>(
    run: &TlsRun,
    client_log: &'a crate::tls::keylog::KeyLog,
    server_log: &'a crate::tls::keylog::KeyLog,
) -> Knowledge<'a> {
    Knowledge {
        keylogs: vec![
            ("client".to_string(), client_log),
            ("server".to_string(), server_log),
        ],
        known: run.keys_known.then_some(KnownKeys {
            client_private: run.scenario.client_private,
            server_private: run.scenario.server_private,
        }),
        exported: run.exported.as_ref().map(|e| ExportCheck {
            label: e.label.clone(),
            context: e.context.clone(),
            client: e.client.clone(),
            server: e.server.clone(),
        }),
        app_data: run.app_data.clone(),
        key_updates: key_updates_required(run),
    }
}

/// The KeyUpdate messages each side of `run` must have sent, as `(client, server)`: one
/// each when the scenario asks for a key update (TLS 1.3: the client updates and requests
/// the server's), and at least as many as the implementation says it initiated.
pub fn key_updates_required(run: &TlsRun) -> (u32, u32) {
    let asked = u32::from(run.scenario.key_update && run.scenario.version == 0x0304);
    let (client, server) = run.key_updates.unwrap_or((0, 0));
    (asked.max(client), asked.max(server))
}

/// What a checked connection means for its check: the clauses it leaves not checked
/// (`(clause id, why)`, for [`Session::not_checked`]), and whether the check may go on
/// (`Ok`: it passed, or its only shortfall is those clauses; `Err`: it failed, or could not
/// be checked to its end).
pub fn judge(
    conn: &verify::Connection,
    step: &str,
) -> (Vec<(&'static str, String)>, Result<(), CheckError>) {
    let not_checked = conn.not_checked();
    let result = match conn.verdict() {
        ConnectionVerdict::Pass => Ok(()),
        ConnectionVerdict::Fail => Err(CheckError::Mismatch {
            step: step.to_string(),
            differences: conn.failures(),
        }),
        // Checked to its end, but some check it needs could not be made: the session's
        // not-checked clauses keep the check from passing.
        ConnectionVerdict::Incomplete if conn.problems.is_empty() && !not_checked.is_empty() => {
            Ok(())
        }
        ConnectionVerdict::Incomplete => Err(CheckError::Dut {
            step: step.to_string(),
            source: crate::dut::DutError::Malformed {
                detail: format!(
                    "the connection could not be checked to its end: {}",
                    if conn.problems.is_empty() {
                        "no check could be made".to_string()
                    } else {
                        conn.problems.join("; ")
                    }
                ),
            },
        }),
    };
    (not_checked, result)
}

/// One side's key log as the verifier reads it.
pub fn keylog_of(lines: &[crate::dut::tls::LoggedSecret]) -> crate::tls::keylog::KeyLog {
    let mut log = crate::tls::keylog::KeyLog::default();
    for l in lines {
        log.insert(&l.label, l.client_random, l.secret.clone());
    }
    log
}

/// Verifies a live run: one TCP connection in the capture, checked by the model.
pub fn verify_run(run: &TlsRun) -> Result<verify::Connection, String> {
    let conversations = crate::tls::stream::conversations_from_frames(&run.frames);
    let [conversation] = conversations.as_slice() else {
        return Err(format!(
            "expected one TCP connection in the capture, found {}",
            conversations.len()
        ));
    };
    let client_log = keylog_of(&run.client_keylog);
    let server_log = keylog_of(&run.server_keylog);
    let knowledge = knowledge_of(run, &client_log, &server_log);
    let mut conn = verify::verify_connection(
        &conversation.client_data,
        &conversation.server_data,
        &knowledge,
    );
    conn.problems.extend(conversation.problems.iter().cloned());
    match run.negotiated {
        Some(negotiated) if negotiated == (run.scenario.version, run.scenario.suite) => {}
        Some((version, suite)) => conn.problems.push(format!(
            "{} negotiated {version:#06x}/{suite:#06x}, the scenario asked for {:#06x}/{:#06x}",
            run.implementation, run.scenario.version, run.scenario.suite
        )),
        None => conn.problems.push(format!(
            "{} did not say which version and suite it negotiated",
            run.implementation
        )),
    }
    Ok(conn)
}

/// Runs `scenario` on every TLS implementation the DUT offers, each a real exchange
/// checked by the model; the first implementation that disagrees fails the check.
fn exchange(session: &mut Session<'_>, scenario: TlsScenario) -> Result<(), CheckError> {
    let implementations: Vec<_> = session
        .services()
        .into_iter()
        .filter(|s| s.kind == ServiceKind::Tls)
        .collect();
    if implementations.is_empty() {
        return Err(CheckError::Dut {
            step: "TLS service".into(),
            source: crate::dut::DutError::NotSupported {
                what: "this target serves none (a bare host stack)".into(),
            },
        });
    }
    for implementation in implementations {
        session.note(format!(
            "TLS implementation: {}",
            implementation.description
        ));
        exchange_with(session, &implementation.id, scenario.clone())?;
    }
    Ok(())
}

fn exchange_with(
    session: &mut Session<'_>,
    implementation: &str,
    scenario: TlsScenario,
) -> Result<(), CheckError> {
    let step = format!(
        "TLS {} exchange, suite {:#06x}, {implementation}",
        if scenario.version == 0x0304 {
            "1.3"
        } else {
            "1.2"
        },
        scenario.suite,
    );
    let request = ServiceRequest::TlsExchange {
        implementation: implementation.to_string(),
        scenario,
    };
    let ServiceAnswer::TlsExchange(run) = session.service(&step, &request)?;
    session.record_capture(&run.frames, run.client_mac);
    let conn = verify_run(&run).map_err(|e| CheckError::Dut {
        step: step.clone(),
        source: crate::dut::DutError::Malformed { detail: e },
    })?;
    for line in conn.trace().lines() {
        session.note(format!("tls {line}"));
    }
    for f in &conn.findings {
        session.note(format!("{} [{}]: {:?}", f.check, f.clause, f.outcome));
    }
    let (not_checked, result) = judge(&conn, &step);
    for (clause, why) in not_checked {
        session.not_checked(clause, format!("{implementation}: {why}"));
    }
    result
}

macro_rules! tls_checks {
    ($( $fn:ident, $id:literal, $title:literal, $version:literal, $suite:literal, $clauses:ident; )*) => {
        $(
            fn $fn(session: &mut Session<'_>) -> Result<(), CheckError> {
                exchange(session, scenario($version, $suite))
            }
        )*
        /// The TLS checks: TLS 1.3 and 1.2, three suites each, every one run on each TLS
        /// implementation the DUT offers (rustls on both of its crypto providers; OpenSSL).
        pub const CHECKS: &[CheckSpec] = &[
            $( CheckSpec { id: $id, title: $title, clauses: $clauses, needs: NEEDS, run: $fn }, )*
        ];
    };
}

tls_checks! {
    t13_aes128, "tls.1.3.aes-128-gcm-sha256", "TLS 1.3 AES-128-GCM-SHA256 with KeyUpdate, on each TLS implementation of the DUT: secrets, Finished, records and exporter match the model", 0x0304, 0x1301, TLS13;
    t13_aes256, "tls.1.3.aes-256-gcm-sha384", "TLS 1.3 AES-256-GCM-SHA384 with KeyUpdate, on each TLS implementation of the DUT: secrets, Finished, records and exporter match the model", 0x0304, 0x1302, TLS13;
    t13_chacha, "tls.1.3.chacha20-poly1305-sha256", "TLS 1.3 ChaCha20-Poly1305-SHA256 with KeyUpdate, on each TLS implementation of the DUT: secrets, Finished, records and exporter match the model", 0x0304, 0x1303, TLS13;
    t12_aes128, "tls.1.2.ecdhe-ecdsa-aes-128-gcm-sha256", "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256, on each TLS implementation of the DUT: extended master secret, key block, Finished and records match the model", 0x0303, 0xc02b, TLS12;
    t12_aes256, "tls.1.2.ecdhe-ecdsa-aes-256-gcm-sha384", "TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384, on each TLS implementation of the DUT: extended master secret, key block, Finished and records match the model", 0x0303, 0xc02c, TLS12;
    t12_chacha, "tls.1.2.ecdhe-ecdsa-chacha20-poly1305-sha256", "TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305, on each TLS implementation of the DUT: extended master secret, key block, Finished and records match the model", 0x0303, 0xcca9, TLS12;
}

#[cfg(test)]
mod tests;
