//! The TLS checks through the engine on a DUT whose "TLS implementation" answers with a
//! fixed capture: RFC 8448 §3's handshake (whose X25519 keys are the ones every live run
//! uses), rebuilt into TCP frames, with or without KeyUpdates appended. No namespace, no
//! network: what is tested is the verdict, not the implementation.
//!
//! A scenario that asks for a KeyUpdate must see one on each side: a capture without one
//! fails the check; a KeyUpdate with no record after it leaves the KeyUpdate clause not
//! checked, and the check ends in an error listing it, never a pass.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::*;
use crate::dut::service::ServiceImpl;
use crate::dut::tls::LoggedSecret;
use crate::dut::{Dut, DutError, Endpoints, Services};
use crate::engine::runner::run_one;
use crate::engine::{CheckReport, Verdict};
use crate::models::profile::ProfileName;
use crate::models::tls::{CipherSuite, RecordProtection13, TrafficSecret};
use crate::wire::tls::TlsRecord;
use crate::wire::{Frame, MacAddr, TcpFlags, TcpSegment};

fn fixture() -> Value {
    let path = format!(
        "{}/fixtures/tls/rfc8448-3-simple-1rtt.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
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

/// The RFC's two streams, then `client_extra` and `server_extra` appended.
fn streams(f: &Value, client_extra: &[u8], server_extra: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut client = plain_record(0x0301, &hex(&f["messages"]["client_hello"]));
    let mut server = plain_record(0x0303, &hex(&f["messages"]["server_hello"]));
    for r in f["records"].as_array().expect("records") {
        let bytes = hex(&r["record"]);
        if r["keys"].as_str().expect("keys").starts_with("client") {
            client.extend_from_slice(&bytes);
        } else {
            server.extend_from_slice(&bytes);
        }
    }
    client.extend_from_slice(client_extra);
    server.extend_from_slice(server_extra);
    (client, server)
}

/// Records sealed under `secret` (hex in the fixture's key schedule) from sequence number
/// `seq` on: `(inner content type, content)` each.
fn sealed(f: &Value, secret: &str, next: bool, seq: u64, records: &[(u8, &[u8])]) -> Vec<u8> {
    let suite = CipherSuite::from_id(0x1301).expect("suite");
    let mut secret = TrafficSecret::new(suite.hash, hex(&f["key_schedule"][secret]));
    if next {
        secret = secret.next();
    }
    let mut p = RecordProtection13::new(suite.aead, &secret.keys(suite.aead)).expect("keys");
    for _ in 0..seq {
        p.seal(23, b"skipped", 0);
    }
    records.iter().flat_map(|(t, c)| p.seal(*t, c, 0)).collect()
}

/// KeyUpdate(update_not_requested).
const KEY_UPDATE_MSG: &[u8] = &[24, 0, 0, 1, 0];

const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// One whole TCP connection carrying the two streams: handshake, data in 1000-byte
/// segments, both FINs.
fn frames_of(client: &[u8], server: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let (cport, sport, ciss, siss) = (40000, 443, 1000u32, 5000u32);
    let mut frames = Vec::new();
    let mut push = |from_client: bool, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]| {
        let (sm, dm, si, di, sp, dp) = if from_client {
            (CLIENT_MAC, SERVER_MAC, CLIENT_IP, SERVER_IP, cport, sport)
        } else {
            (SERVER_MAC, CLIENT_MAC, SERVER_IP, CLIENT_IP, sport, cport)
        };
        let mut seg = TcpSegment::new(sp, dp, seq, ack, flags);
        seg.payload = payload.to_vec();
        let at = frames.len() as u64 * 100;
        frames.push((at, Frame::tcp_v4(sm, dm, si, di, seg).emit()));
    };
    push(true, ciss, 0, TcpFlags::SYN, &[]);
    push(false, siss, ciss + 1, TcpFlags::SYN_ACK, &[]);
    push(true, ciss + 1, siss + 1, TcpFlags::ACK, &[]);
    let (cend, send) = (
        ciss + 1 + client.len() as u32,
        siss + 1 + server.len() as u32,
    );
    for (i, chunk) in client.chunks(1000).enumerate() {
        let seq = ciss + 1 + (i * 1000) as u32;
        push(true, seq, siss + 1, TcpFlags::PSH_ACK, chunk);
    }
    for (i, chunk) in server.chunks(1000).enumerate() {
        let seq = siss + 1 + (i * 1000) as u32;
        push(false, seq, cend, TcpFlags::PSH_ACK, chunk);
    }
    push(true, cend, send, TcpFlags::FIN_ACK, &[]);
    push(false, send, cend + 1, TcpFlags::FIN_ACK, &[]);
    push(true, cend + 1, send + 1, TcpFlags::ACK, &[]);
    frames
}

/// The run a DUT answering with the RFC's exchange reports for `scenario`.
fn run_of(f: &Value, scenario: TlsScenario, client: &[u8], server: &[u8]) -> TlsRun {
    let ch = hex(&f["messages"]["client_hello"]);
    let random: [u8; 32] = ch[6..38].try_into().expect("random");
    let log: Vec<LoggedSecret> = [
        ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "c_hs_traffic"),
        ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "s_hs_traffic"),
        ("CLIENT_TRAFFIC_SECRET_0", "c_ap_traffic"),
        ("SERVER_TRAFFIC_SECRET_0", "s_ap_traffic"),
        ("EXPORTER_SECRET", "exp_master"),
    ]
    .into_iter()
    .map(|(label, key)| LoggedSecret {
        label: label.into(),
        client_random: random,
        secret: hex(&f["key_schedule"][key]),
    })
    .collect();
    TlsRun {
        scenario,
        implementation: "rfc8448".into(),
        keys_known: true,
        frames: frames_of(client, server),
        client_mac: CLIENT_MAC,
        client_keylog: log.clone(),
        server_keylog: log,
        app_data: None,
        negotiated: Some((0x0304, 0x1301)),
        exported: None,
        key_updates: None,
    }
}

/// A DUT whose one TLS implementation answers every exchange with `run` (its scenario
/// replaced by the one asked for).
struct Canned {
    run: TlsRun,
    endpoints: Endpoints,
}

impl Canned {
    fn new(run: TlsRun) -> Canned {
        Canned {
            run,
            endpoints: Endpoints {
                harness_mac: CLIENT_MAC,
                stack_mac: SERVER_MAC,
                stack_ipv4: Some((SERVER_IP, 24)),
                peer_ipv4: Some(CLIENT_IP),
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
        }
    }
}

impl Dut for Canned {
    fn name(&self) -> &str {
        "canned"
    }
    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
    fn services(&mut self) -> Option<&mut dyn Services> {
        Some(self)
    }
}

impl Services for Canned {
    fn offered(&self) -> Vec<ServiceImpl> {
        vec![ServiceImpl {
            kind: ServiceKind::Tls,
            id: "rfc8448".into(),
            description: "RFC 8448 §3, replayed".into(),
        }]
    }
    fn exchange(&mut self, request: &ServiceRequest) -> Result<ServiceAnswer, DutError> {
        let ServiceRequest::TlsExchange { scenario, .. } = request;
        let mut run = self.run.clone();
        run.scenario = scenario.clone();
        Ok(ServiceAnswer::TlsExchange(Box::new(run)))
    }
}

/// The TLS 1.3 AES-128 check (its scenario asks for a KeyUpdate each way) on a DUT that
/// answers with `run`.
fn check_on(run: TlsRun) -> CheckReport {
    let spec = CHECKS
        .iter()
        .find(|c| c.id == "tls.1.3.aes-128-gcm-sha256")
        .expect("the check");
    let factory = move |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(Canned::new(run.clone())))
    };
    run_one(spec, &factory, ProfileName::Rfc)
}

/// The scenario of the check, without its key update.
fn no_update() -> TlsScenario {
    TlsScenario {
        key_update: false,
        ..scenario(0x0304, 0x1301)
    }
}

/// Positive control: the RFC's exchange passes a check that asks for no KeyUpdate.
#[test]
fn the_rfc_exchange_passes_without_a_key_update() {
    let f = fixture();
    let (c, s) = streams(&f, &[], &[]);
    let run = run_of(&f, no_update(), &c, &s);
    let conn = verify_run(&run).expect("one connection");
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Pass,
        "{:#?}\n{:?}",
        conn.findings,
        conn.problems
    );
}

/// The scenario asked both sides to update their keys; the capture, read to its end,
/// holds no KeyUpdate: the implementation did not do what it was told, and the check
/// fails naming both sides (it passed before: no KeyUpdate, no finding).
#[test]
fn a_key_update_asked_for_and_absent_fails_the_check() {
    let f = fixture();
    let (c, s) = streams(&f, &[], &[]);
    let report = check_on(run_of(&f, no_update(), &c, &s));
    match &report.verdict {
        Verdict::Fail { differences, .. } => {
            for side in ["client", "server"] {
                assert!(
                    differences.iter().any(|d| d.contains(&format!(
                        "the {side} was asked to send 1 KeyUpdate(s); its stream, read to its end, holds 0"
                    )) && d.contains(crate::tls::verify::clause::KEY_UPDATE)),
                    "{side}: {differences:#?}"
                );
            }
        }
        other => panic!("a missing KeyUpdate must fail the check: {other:?}"),
    }

    // The implementation's own count raises what the capture must show.
    let mut run = run_of(&f, no_update(), &c, &s);
    run.key_updates = Some((2, 0));
    assert_eq!(key_updates_required(&run), (2, 0));
    run.scenario.key_update = true;
    assert_eq!(key_updates_required(&run), (2, 1));
}

/// Both sides updated their keys, and no record followed either KeyUpdate: nothing shows
/// the next traffic secret is right. The KeyUpdate clause is not checked, the check is an
/// error naming it, and the report lists it (it passed before).
#[test]
fn a_key_update_with_no_record_after_it_leaves_the_clause_not_checked() {
    let f = fixture();
    // The client's application records so far: data (0), close_notify (1); the server's:
    // NewSessionTicket (0), data (1), close_notify (2).
    let cku = sealed(&f, "c_ap_traffic", false, 2, &[(22, KEY_UPDATE_MSG)]);
    let sku = sealed(&f, "s_ap_traffic", false, 3, &[(22, KEY_UPDATE_MSG)]);
    let (c, s) = streams(&f, &cku, &sku);
    let run = run_of(&f, scenario(0x0304, 0x1301), &c, &s);
    let conn = verify_run(&run).expect("one connection");
    assert_eq!(
        conn.verdict(),
        ConnectionVerdict::Incomplete,
        "{:#?}",
        conn.findings
    );
    let not_checked = conn.not_checked();
    assert_eq!(not_checked.len(), 2, "{not_checked:?}");

    let report = check_on(run);
    match &report.verdict {
        Verdict::Error { reason } => {
            assert!(reason.starts_with("not checked"), "{reason}");
            assert!(reason.contains("rfc8446-4.6.3-key-update"), "{reason}");
            assert!(
                reason.contains("no client record after its last KeyUpdate"),
                "{reason}"
            );
        }
        other => panic!("a KeyUpdate nothing followed must not pass: {other:?}"),
    }
    assert_eq!(report.not_checked.len(), 2, "{:?}", report.not_checked);
    assert!(
        report
            .not_checked
            .iter()
            .all(|n| n.clause == crate::tls::verify::clause::KEY_UPDATE
                && n.reason.starts_with("rfc8448: ")),
        "{:?}",
        report.not_checked
    );

    // Positive control: a record after each KeyUpdate, under the next secret, and the
    // check passes.
    let cku = [cku, sealed(&f, "c_ap_traffic", true, 0, &[(23, b"after")])].concat();
    let sku = [sku, sealed(&f, "s_ap_traffic", true, 0, &[(23, b"after")])].concat();
    let (c, s) = streams(&f, &cku, &sku);
    let report = check_on(run_of(&f, scenario(0x0304, 0x1301), &c, &s));
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.not_checked);
    assert!(report.not_checked.is_empty());
}

/// `judge` on a connection whose checks all passed but one that could not be made: the
/// check goes on, and the clause is not checked.
#[test]
fn judge_hands_not_checked_findings_to_the_session() {
    use crate::tls::verify::{Connection, Finding, Outcome};
    let mut conn = Connection::default();
    conn.findings.push(Finding {
        check: "server Finished".into(),
        clause: crate::tls::verify::clause::FINISHED_13,
        outcome: Outcome::Pass,
    });
    let (not_checked, result) = judge(&conn, "step");
    assert!(not_checked.is_empty());
    assert!(result.is_ok());
    conn.findings.push(Finding {
        check: "client logged CLIENT_TRAFFIC_SECRET_0".into(),
        clause: crate::tls::verify::clause::KEY_SCHEDULE,
        outcome: Outcome::NotChecked("no client record decrypted under it".into()),
    });
    let (not_checked, result) = judge(&conn, "step");
    assert!(result.is_ok());
    assert_eq!(
        not_checked,
        vec![(
            crate::tls::verify::clause::KEY_SCHEDULE,
            "client logged CLIENT_TRAFFIC_SECRET_0: no client record decrypted under it".into()
        )]
    );
    // A problem as well: the connection could not be checked to its end, an error.
    conn.problems.push("a hole".into());
    let (not_checked, result) = judge(&conn, "step");
    assert_eq!(not_checked.len(), 1);
    assert!(matches!(result, Err(CheckError::Dut { .. })), "{result:?}");
}
