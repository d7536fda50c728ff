//! The connection verifier on RFC 8448's published handshakes: the two byte streams are
//! rebuilt from the fixture's messages and encrypted records (§3 1-RTT, §4 resumed with
//! 0-RTT data), and the verifier must decrypt every record and verify both Finished
//! messages, from the X25519 private keys alone (§3) or from a key log of the RFC's secrets
//! (§3 and §4, where the early traffic secret opens the 0-RTT data).
//!
//! Missing evidence is never a pass: a logged traffic secret no record decrypted under is
//! not checked, and a KeyUpdate the caller asked for and the streams do not hold fails.

use netconform::tls::keylog::KeyLog;
use netconform::tls::report::check_conversations;
use netconform::tls::stream::TcpConversation;
use netconform::tls::verify::{
    ConnectionVerdict, Knowledge, KnownKeys, Outcome, verify_connection,
};
use netconform::wire::tls::TlsRecord;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

/// A plaintext handshake record around `message`.
fn plain_record(version: u16, message: &[u8]) -> Vec<u8> {
    TlsRecord {
        content_type: 22,
        version,
        fragment: message.to_vec(),
    }
    .emit()
}

/// The client and server streams: the hellos in plaintext records, then the fixture's
/// encrypted records in order, each to its side.
fn streams(f: &Value) -> (Vec<u8>, Vec<u8>) {
    streams_without(f, &[])
}

/// [`streams`] without the records under the keys named in `left_out`
/// (`client_application`, ...).
fn streams_without(f: &Value, left_out: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut client = plain_record(0x0301, &hex(&f["messages"]["client_hello"]));
    let mut server = plain_record(0x0303, &hex(&f["messages"]["server_hello"]));
    for r in f["records"].as_array().expect("records") {
        let keys = r["keys"].as_str().expect("keys");
        if left_out.contains(&keys) {
            continue;
        }
        let bytes = hex(&r["record"]);
        if keys.starts_with("client") {
            client.extend_from_slice(&bytes);
        } else {
            server.extend_from_slice(&bytes);
        }
    }
    (client, server)
}

fn keylog(f: &Value, labels: &[(&str, &str)]) -> KeyLog {
    let ch = hex(&f["messages"]["client_hello"]);
    let random: [u8; 32] = ch[6..38].try_into().expect("random");
    let mut log = KeyLog::default();
    for (label, key) in labels {
        log.insert(label, random, hex(&f["key_schedule"][*key]));
    }
    log
}

const TRAFFIC: &[(&str, &str)] = &[
    ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "c_hs_traffic"),
    ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "s_hs_traffic"),
    ("CLIENT_TRAFFIC_SECRET_0", "c_ap_traffic"),
    ("SERVER_TRAFFIC_SECRET_0", "s_ap_traffic"),
    ("EXPORTER_SECRET", "exp_master"),
];

fn pass(check: &str, conn: &netconform::tls::verify::Connection) {
    assert!(
        conn.findings
            .iter()
            .any(|f| f.check == check && f.outcome == Outcome::Pass),
        "{check}: {:#?}",
        conn.findings
    );
}

#[test]
fn section_3_from_the_private_keys() {
    let f = fixture("rfc8448-3-simple-1rtt.json");
    let (client, server) = streams(&f);
    let log = keylog(&f, TRAFFIC);
    let key = |k: &str| -> [u8; 32] { hex(&f["x25519"][k]).try_into().expect("32 bytes") };
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        known: Some(KnownKeys {
            client_private: key("client_private"),
            server_private: key("server_private"),
        }),
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Pass,
        "{:#?}\n{:?}",
        conn.findings,
        conn.problems
    );
    pass("server Finished", &conn);
    pass("client Finished", &conn);
    // Every secret RFC 8448 prints equals the one the model derived from the key exchange.
    for (label, _) in TRAFFIC {
        pass(&format!("rfc8448 logged {label}"), &conn);
    }
    // Every record decrypted: the 50-byte application data each way and both alerts.
    assert_eq!(conn.decrypted.0.len(), 50);
    assert_eq!(conn.decrypted.1.len(), 50);
    let trace = conn.trace();
    assert!(
        trace.contains("keys=hs     EncryptedExtensions, Certificate, CertificateVerify, Finished"),
        "{trace}"
    );
    assert!(trace.contains("keys=ap0    NewSessionTicket"), "{trace}");
    assert_eq!(trace.matches("alert(close_notify)").count(), 2, "{trace}");
}

#[test]
fn section_3_from_a_key_log_and_a_wrong_key_log() {
    let f = fixture("rfc8448-3-simple-1rtt.json");
    let (client, server) = streams(&f);
    let log = keylog(&f, TRAFFIC);
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Pass,
        "{:#?}",
        conn.findings
    );
    pass("server Finished", &conn);
    pass("client Finished", &conn);

    // The server's handshake secret swapped for the client's: nothing of the server's
    // encrypted flight decrypts.
    let wrong = keylog(
        &f,
        &[
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "c_hs_traffic"),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "c_hs_traffic"),
            ("CLIENT_TRAFFIC_SECRET_0", "c_ap_traffic"),
            ("SERVER_TRAFFIC_SECRET_0", "s_ap_traffic"),
        ],
    );
    let knowledge = Knowledge {
        keylogs: vec![("wrong".into(), &wrong)],
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(conn.verdict(), ConnectionVerdict::Fail);
    assert!(
        conn.failures()
            .iter()
            .any(|f| f.contains("server record #2")),
        "{:?}",
        conn.failures()
    );
}

#[test]
fn section_4_zero_rtt_from_a_key_log() {
    let f = fixture("rfc8448-4-resumed-0rtt.json");
    let (client, server) = streams(&f);
    let mut labels = TRAFFIC.to_vec();
    labels.push(("CLIENT_EARLY_TRAFFIC_SECRET", "c_e_traffic"));
    let log = keylog(&f, &labels);
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Pass,
        "{:#?}\n{:?}",
        conn.findings,
        conn.problems
    );
    pass("server Finished", &conn);
    // The client's Finished covers EndOfEarlyData: it verifies only if the early records
    // decrypted and EndOfEarlyData entered the transcript.
    pass("client Finished", &conn);
    let trace = conn.trace();
    assert!(trace.contains("keys=early  data(6)"), "{trace}");
    assert!(trace.contains("keys=early  EndOfEarlyData"), "{trace}");

    // Without the early traffic secret the check stops with a clear problem.
    let log = keylog(&f, TRAFFIC);
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(conn.verdict(), ConnectionVerdict::Incomplete);
    assert!(
        conn.problems
            .iter()
            .any(|p| p.contains("CLIENT_EARLY_TRAFFIC_SECRET")),
        "{:?}",
        conn.problems
    );
}

fn outcome_of<'a>(conn: &'a netconform::tls::verify::Connection, check: &str) -> &'a Outcome {
    &conn
        .findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no finding {check}: {:#?}", conn.findings))
        .outcome
}

/// A logged application traffic secret counts as verified only when a record decrypted
/// under it: the same key log, with and without the records after the handshake.
#[test]
fn a_logged_traffic_secret_no_record_used_is_not_checked() {
    let f = fixture("rfc8448-3-simple-1rtt.json");
    let log = keylog(&f, TRAFFIC);
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        ..Knowledge::default()
    };

    // Every record there: each logged secret is verified by the records under it.
    let (client, server) = streams(&f);
    let conn = verify_connection(&client, &server, &knowledge);
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Pass,
        "{:#?}",
        conn.findings
    );
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        pass(&format!("rfc8448 logged {label}"), &conn);
    }
    // The exporter secret: no record uses it, the model cannot derive it from a key log;
    // said, and no verdict rests on it.
    assert!(
        matches!(
            outcome_of(&conn, "rfc8448 logged EXPORTER_SECRET"),
            Outcome::Unused(_)
        ),
        "{:#?}",
        conn.findings
    );
    assert!(conn.not_checked().is_empty());

    // The client sent nothing after its Finished: its CLIENT_TRAFFIC_SECRET_0 is taken from
    // the log and proven by nothing. Not checked, and the connection is not a pass.
    let (client, server) = streams_without(&f, &["client_application"]);
    let conn = verify_connection(&client, &server, &knowledge);
    assert!(conn.problems.is_empty(), "{:?}", conn.problems);
    assert!(conn.failures().is_empty(), "{:?}", conn.failures());
    match outcome_of(&conn, "rfc8448 logged CLIENT_TRAFFIC_SECRET_0") {
        Outcome::NotChecked(why) => {
            assert!(why.contains("no client record decrypted under it"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    pass("rfc8448 logged SERVER_TRAFFIC_SECRET_0", &conn);
    assert_eq!(conn.verdict(), ConnectionVerdict::Incomplete);
    assert_eq!(
        conn.not_checked(),
        vec![(
            "rfc8446-7.1-key-schedule",
            "rfc8448 logged CLIENT_TRAFFIC_SECRET_0: no client record decrypted under it: a logged secret counts as verified only when one does".to_string()
        )]
    );

    // Through `tls verify`'s library entry: exit status 2, the finding shown as not checked.
    let conversation = TcpConversation {
        client: "10.0.0.1:40000".parse().expect("address"),
        server: "10.0.0.2:443".parse().expect("address"),
        client_data: client,
        server_data: server,
        complete: true,
        problems: Vec::new(),
        first_frame: 0,
    };
    let report = check_conversations(&[conversation], &[("rfc8448.keys".into(), log.clone())]);
    assert_eq!(report.connections[0].verdict, ConnectionVerdict::Incomplete);
    assert_eq!(report.exit_code(), 2);
    let text = report.render();
    assert!(
        text.contains("--   rfc8448.keys logged CLIENT_TRAFFIC_SECRET_0 [rfc8446-7.1-key-schedule] (not checked: no client record decrypted under it"),
        "{text}"
    );
    assert!(text.contains("verdict: INCOMPLETE"), "{text}");
}

/// A caller that asked both sides for a KeyUpdate: streams without one, read to their end,
/// fail, from the private keys and from a key log alike; asked for none, they pass.
#[test]
fn a_key_update_asked_for_and_not_in_the_streams_fails() {
    let f = fixture("rfc8448-3-simple-1rtt.json");
    let (client, server) = streams(&f);
    let log = keylog(&f, TRAFFIC);
    let key = |k: &str| -> [u8; 32] { hex(&f["x25519"][k]).try_into().expect("32 bytes") };
    for known in [
        None,
        Some(KnownKeys {
            client_private: key("client_private"),
            server_private: key("server_private"),
        }),
    ] {
        let mut knowledge = Knowledge {
            keylogs: vec![("rfc8448".into(), &log)],
            known,
            ..Knowledge::default()
        };
        assert_eq!(
            verify_connection(&client, &server, &knowledge).verdict(),
            ConnectionVerdict::Pass
        );
        knowledge.key_updates = (1, 0);
        let conn = verify_connection(&client, &server, &knowledge);
        assert_eq!(
            conn.verdict(),
            ConnectionVerdict::Fail,
            "{:#?}",
            conn.findings
        );
        assert_eq!(
            conn.failures(),
            vec!["client sent the KeyUpdate it was asked for [rfc8446-4.6.3-key-update]: the client was asked to send 1 KeyUpdate(s); its stream, read to its end, holds 0".to_string()]
        );
    }

    // A stream that stops early (the server's flight cut short): the KeyUpdate was never
    // looked for, which is said, and the connection is not a pass.
    let knowledge = Knowledge {
        keylogs: vec![("rfc8448".into(), &log)],
        key_updates: (1, 1),
        ..Knowledge::default()
    };
    let conn = verify_connection(&client, &server[..200], &knowledge);
    assert_eq!(conn.verdict(), ConnectionVerdict::Incomplete);
    assert_eq!(conn.not_checked().len(), 2, "{:#?}", conn.findings);
    assert!(
        conn.not_checked()
            .iter()
            .all(|(clause, _)| *clause == "rfc8446-4.6.3-key-update")
    );
}
