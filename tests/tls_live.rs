//! Live TLS: a rustls client and server (tokio) over a veth pair between two namespaces,
//! every suite rustls offers, TLS 1.3 and 1.2, both crypto providers. The frames are
//! captured on the veth, the TCP streams reassembled, and every logged secret, Finished
//! message, record, exporter output and key update checked against the model. Negative
//! controls show that a wrong secret, a damaged record or a wrong key share fail, and that
//! an implementation told to update its keys that does not fails the check.

#[macro_use]
mod common;

use netconform::dut::tls::{TestPki, TlsProvider, TlsRun, run_rustls, rustls_supports};
use netconform::sandbox::HostPair;
use netconform::suites::tls::{keylog_of, scenario, verify_run};
use netconform::tls::verify::{self, ConnectionVerdict, Knowledge, KnownKeys, Outcome};

const SUITES: &[(u16, u16)] = &[
    (0x0304, 0x1301),
    (0x0304, 0x1302),
    (0x0304, 0x1303),
    (0x0303, 0xc02b),
    (0x0303, 0xc02c),
    (0x0303, 0xcca9),
];

fn passed(conn: &verify::Connection, check: &str) -> bool {
    conn.findings
        .iter()
        .any(|f| f.check == check && f.outcome == Outcome::Pass)
}

fn failed(conn: &verify::Connection, check_prefix: &str) -> bool {
    conn.findings
        .iter()
        .any(|f| f.check.starts_with(check_prefix) && matches!(f.outcome, Outcome::Fail(_)))
}

fn run(pair: &HostPair, pki: &TestPki, version: u16, suite: u16, provider: TlsProvider) -> TlsRun {
    run_rustls(pair, pki, &scenario(version, suite), provider)
        .unwrap_or_else(|e| panic!("{version:#06x}/{suite:#06x} {provider:?}: {e}"))
}

#[test]
fn every_rustls_suite_matches_the_model() {
    require_netns!();
    let pair = HostPair::build().expect("host pair");
    let pki = TestPki::generate().expect("certificates");
    let mut runs = 0;
    for provider in TlsProvider::ALL {
        for &(version, suite) in SUITES {
            assert!(
                rustls_supports(provider, suite),
                "{provider:?} lacks {suite:#06x}"
            );
            let r = run(&pair, &pki, version, suite, provider);
            let what = format!("{version:#06x}/{suite:#06x} {provider:?}");
            assert_eq!(r.negotiated, Some((version, suite)), "{what}");
            let conn = verify_run(&r).expect("one connection");
            assert_eq!(
                conn.verdict(),
                ConnectionVerdict::Pass,
                "{what}: {:#?}\n{}",
                conn.failures(),
                conn.problems.join("\n")
            );
            for check in ["server Finished", "client Finished"] {
                assert!(passed(&conn, check), "{what}: {check}");
            }
            for check in [
                "client application data decrypts to what it wrote",
                "server application data decrypts to what it wrote",
                "client's exported keying material",
                "server's exported keying material",
            ] {
                assert!(passed(&conn, check), "{what}: {check}");
            }
            if version == 0x0304 {
                // rustls logs five secrets on each side; each equals the model's.
                for side in ["client", "server"] {
                    for label in [
                        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                        "CLIENT_TRAFFIC_SECRET_0",
                        "SERVER_TRAFFIC_SECRET_0",
                        "EXPORTER_SECRET",
                    ] {
                        assert!(
                            passed(&conn, &format!("{side} logged {label}")),
                            "{what}: {side} {label}"
                        );
                    }
                }
                // The client updated once (and answered none); the server answered the
                // client's request and then updated once more.
                assert_eq!(r.key_updates, Some((1, 1)), "{what}");
                let updates: Vec<_> = conn
                    .findings
                    .iter()
                    .filter(|f| f.clause == verify::clause::KEY_UPDATE)
                    .collect();
                assert_eq!(updates.len(), 2, "{what}: {updates:?}");
                assert!(
                    updates.iter().all(|f| f.outcome == Outcome::Pass),
                    "{what}: {updates:?}"
                );
                assert!(
                    conn.records.iter().any(|r| r.keys == "ap2"),
                    "{what}: the server reached its second update\n{}",
                    conn.trace()
                );
            } else {
                for side in ["client", "server"] {
                    assert!(
                        passed(&conn, &format!("{side} logged CLIENT_RANDOM")),
                        "{what}: {side}"
                    );
                }
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 12);
}

#[test]
fn wrong_secrets_records_and_keys_fail() {
    require_netns!();
    let pair = HostPair::build().expect("host pair");
    let pki = TestPki::generate().expect("certificates");
    for (version, suite) in [(0x0304, 0x1301), (0x0303, 0xc02b)] {
        let r = run(&pair, &pki, version, suite, TlsProvider::AwsLcRs);
        assert_eq!(
            verify_run(&r).expect("one connection").verdict(),
            ConnectionVerdict::Pass
        );

        // A logged secret off by one bit.
        let mut bad = r.clone();
        bad.server_keylog[0].secret[0] ^= 1;
        let label = bad.server_keylog[0].label.clone();
        let conn = verify_run(&bad).expect("one connection");
        assert_eq!(conn.verdict(), ConnectionVerdict::Fail, "{version:#06x}");
        assert!(
            failed(&conn, &format!("server logged {label}")),
            "{:?}",
            conn.failures()
        );

        // One byte of the server's last application-data record flipped on the wire.
        let mut bad = r.clone();
        let (conv, _) = damage_last_server_record(&bad);
        bad.frames = conv;
        let conn = verify_run(&bad).expect("one connection");
        assert_eq!(conn.verdict(), ConnectionVerdict::Fail, "{version:#06x}");
        assert!(
            conn.failures()
                .iter()
                .any(|f| f.contains("does not decrypt")),
            "{:?}",
            conn.failures()
        );

        // The model told the wrong server key: the key share and everything after differ.
        let client_log = keylog_of(&r.client_keylog);
        let convs = netconform::tls::stream::conversations_from_frames(&r.frames);
        let knowledge = Knowledge {
            keylogs: vec![("client".into(), &client_log)],
            known: Some(KnownKeys {
                client_private: r.scenario.client_private,
                server_private: [7; 32],
            }),
            ..Knowledge::default()
        };
        let conn =
            verify::verify_connection(&convs[0].client_data, &convs[0].server_data, &knowledge);
        assert_eq!(conn.verdict(), ConnectionVerdict::Fail);
        assert!(failed(
            &conn,
            "server key share is the controlled X25519 key"
        ));
    }
}

/// Flips one ciphertext byte of the last frame the server sent with TCP payload (its
/// close_notify or last data record), checksums recomputed: TCP carries it as before, but
/// the AEAD tag cannot verify.
fn damage_last_server_record(r: &TlsRun) -> (Vec<(u64, Vec<u8>)>, usize) {
    use netconform::wire::{Frame, Transport};
    let mut frames = r.frames.clone();
    let index = frames
        .iter()
        .rposition(|(_, f)| {
            f.get(6..12) != Some(&r.client_mac.0[..])
                && Frame::parse(f)
                    .ok()
                    .and_then(|fr| fr.as_tcp().map(|t| !t.payload.is_empty()))
                    .unwrap_or(false)
        })
        .expect("a server frame with payload");
    let mut frame = Frame::parse(&frames[index].1).expect("parses");
    let Some(Transport::Tcp(tcp)) = frame.transport_mut() else {
        panic!("a TCP frame")
    };
    let last = tcp.payload.len() - 1;
    tcp.payload[last] ^= 0x80;
    frames[index].1 = frame.emit();
    (frames, index)
}

/// The capture with the server's last stream byte flipped in every frame that carries it
/// (the spoiler's own damage, [`netconform::dut::spoil::damage_last_server_byte`]).
fn damage_last_server_byte_everywhere(r: &TlsRun) -> Vec<(u64, Vec<u8>)> {
    netconform::dut::spoil::damage_last_server_byte(r).expect("a server frame with payload")
}

#[test]
fn handshake_trace_snapshots() {
    require_netns!();
    let pair = HostPair::build().expect("host pair");
    let pki = TestPki::generate().expect("certificates");
    let r13 = run(&pair, &pki, 0x0304, 0x1301, TlsProvider::AwsLcRs);
    let conn = verify_run(&r13).expect("one connection");
    assert_eq!(conn.verdict(), ConnectionVerdict::Pass);
    insta::assert_snapshot!("tls13_aes128_key_update", conn.trace());
    let r12 = run(&pair, &pki, 0x0303, 0xc02b, TlsProvider::AwsLcRs);
    let conn = verify_run(&r12).expect("one connection");
    assert_eq!(conn.verdict(), ConnectionVerdict::Pass);
    insta::assert_snapshot!("tls12_ecdhe_ecdsa_aes128", conn.trace());
}

/// OpenSSL as a DUT: its TLS service runs one exchange per check (`s_server`, `s_client`),
/// checked from the key logs OpenSSL wrote; a damaged record and a wrong logged secret fail
/// the same run. Through the engine, `--target openssl` passes the TLS checks and answers
/// every other check unsupported, with the reason.
#[test]
fn openssl_service_is_checked_from_its_key_logs() {
    use netconform::dut::Services;
    use netconform::dut::build::DutKind;
    use netconform::dut::needs::Needs;
    use netconform::dut::openssl::OpensslService;
    use netconform::dut::service::{ServiceAnswer, ServiceKind, ServiceRequest};
    use netconform::engine::Verdict;
    use netconform::engine::runner::run_one;
    use netconform::models::profile::ProfileName;
    require_netns!();
    let mut dut = OpensslService::new().expect("openssl DUT (ci/deps installs openssl)");
    let services = dut.offered();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0].kind, ServiceKind::Tls);
    assert!(services[0].description.contains("OpenSSL"), "{services:?}");
    for &(version, suite) in SUITES {
        let request = ServiceRequest::TlsExchange {
            implementation: services[0].id.clone(),
            scenario: scenario(version, suite),
        };
        let ServiceAnswer::TlsExchange(r) = dut.exchange(&request).expect("exchange");
        let what = format!("openssl {version:#06x}/{suite:#06x}");
        assert!(!r.keys_known, "{what}: OpenSSL draws its own key shares");
        assert_eq!(r.negotiated, Some((version, suite)), "{what}");
        let conn = verify_run(&r).expect("one connection");
        assert_eq!(
            conn.verdict(),
            ConnectionVerdict::Pass,
            "{what}: {:#?}\n{}",
            conn.failures(),
            conn.problems.join("\n")
        );
        for check in ["server Finished", "client Finished"] {
            assert!(passed(&conn, check), "{what}: {check}");
        }
        if version == 0x0304 {
            for check in ["client KeyUpdate ×1", "server KeyUpdate ×1"] {
                assert!(
                    conn.findings
                        .iter()
                        .any(|f| f.check.starts_with(check) && f.outcome == Outcome::Pass),
                    "{what}: {check}\n{}",
                    conn.trace()
                );
            }
        }

        // Negative controls on the same run: a damaged record, a wrong logged secret.
        let mut bad = (*r).clone();
        bad.frames = damage_last_server_byte_everywhere(&r);
        let conn = verify_run(&bad).expect("one connection");
        assert_eq!(
            conn.verdict(),
            ConnectionVerdict::Fail,
            "{what}: damaged\n{}\n{}",
            conn.problems.join("\n"),
            conn.trace()
        );
        let mut bad = (*r).clone();
        let secret = bad
            .server_keylog
            .iter_mut()
            .find(|l| l.label == "SERVER_HANDSHAKE_TRAFFIC_SECRET" || l.label == "CLIENT_RANDOM")
            .expect("a handshake secret in the server's key log");
        secret.secret[0] ^= 1;
        let conn = verify_run(&bad).expect("one connection");
        assert_eq!(
            conn.verdict(),
            ConnectionVerdict::Fail,
            "{what}: a wrong logged secret passed\n{}",
            conn.trace()
        );
    }
    drop(dut);

    let kind = DutKind::parse("openssl").expect("openssl is a target");
    let factory = |spec: &netconform::engine::CheckSpec| kind.build(&spec.needs);
    let catalogue = netconform::suites::catalogue();
    let tls = catalogue
        .iter()
        .find(|c| c.id == "tls.1.3.aes-128-gcm-sha256")
        .expect("the check");
    let report = run_one(tls, &factory, ProfileName::Rfc);
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.verdict);
    let arp = catalogue
        .iter()
        .find(|c| c.id.starts_with("arp."))
        .expect("an ARP check");
    let report = run_one(arp, &factory, ProfileName::Rfc);
    match &report.verdict {
        Verdict::Unsupported { reason } => {
            assert!(reason.contains("serves TLS only"), "{reason}")
        }
        other => panic!("an ARP check on openssl: {other:?}"),
    }
    assert!(matches!(
        kind.build(&Needs::IPV4),
        Err(netconform::dut::DutError::NotSupported { .. })
    ));
}

/// A DUT whose TLS implementations run every exchange without the key update the scenario
/// asks for, and report the scenario they were given: the implementation did not do what
/// it was told (rustls: no `refresh_traffic_keys`; OpenSSL: s_client never gets `K`).
struct IgnoresKeyUpdate<D>(D);

impl<D: netconform::dut::Dut + netconform::dut::Services> netconform::dut::Dut
    for IgnoresKeyUpdate<D>
{
    fn name(&self) -> &str {
        self.0.name()
    }
    fn endpoints(&self) -> &netconform::dut::Endpoints {
        self.0.endpoints()
    }
    fn services(&mut self) -> Option<&mut dyn netconform::dut::Services> {
        Some(self)
    }
}

impl<D: netconform::dut::Dut + netconform::dut::Services> netconform::dut::Services
    for IgnoresKeyUpdate<D>
{
    fn offered(&self) -> Vec<netconform::dut::service::ServiceImpl> {
        self.0.offered()
    }
    fn exchange(
        &mut self,
        request: &netconform::dut::service::ServiceRequest,
    ) -> Result<netconform::dut::service::ServiceAnswer, netconform::dut::DutError> {
        use netconform::dut::service::{ServiceAnswer, ServiceRequest};
        let ServiceRequest::TlsExchange {
            implementation,
            scenario,
        } = request;
        let ignored = ServiceRequest::TlsExchange {
            implementation: implementation.clone(),
            scenario: netconform::dut::tls::TlsScenario {
                key_update: false,
                ..scenario.clone()
            },
        };
        let ServiceAnswer::TlsExchange(mut run) = self.0.exchange(&ignored)?;
        run.scenario = scenario.clone();
        Ok(ServiceAnswer::TlsExchange(run))
    }
}

/// The TLS 1.3 check asks both sides for a KeyUpdate. On rustls and on OpenSSL that were
/// told and did not do it, it fails, naming the side and the clause (it passed before:
/// the verifier made no finding for a side without a KeyUpdate). The same check on the
/// same implementations doing what they were told passes (`every_rustls_suite_matches_the_model`
/// and `openssl_service_is_checked_from_its_key_logs` above).
#[test]
fn a_key_update_asked_for_and_not_made_fails_the_check() {
    use netconform::dut::openssl::OpensslService;
    use netconform::dut::tls::RustlsService;
    use netconform::engine::runner::run_one;
    use netconform::engine::{CheckSpec, Verdict};
    use netconform::models::profile::ProfileName;
    require_netns!();
    let catalogue = netconform::suites::catalogue();
    let check = catalogue
        .iter()
        .find(|c| c.id == "tls.1.3.aes-128-gcm-sha256")
        .expect("the check");
    let rustls =
        |_: &CheckSpec| -> Result<Box<dyn netconform::dut::Dut>, netconform::dut::DutError> {
            Ok(Box::new(IgnoresKeyUpdate(RustlsService::new()?)))
        };
    let openssl =
        |_: &CheckSpec| -> Result<Box<dyn netconform::dut::Dut>, netconform::dut::DutError> {
            Ok(Box::new(IgnoresKeyUpdate(OpensslService::new()?)))
        };
    let factories: [(&str, &netconform::engine::runner::DutFactory<'_>); 2] =
        [("rustls", &rustls), ("openssl", &openssl)];
    for (what, factory) in factories {
        let report = run_one(check, factory, ProfileName::Rfc);
        match &report.verdict {
            Verdict::Fail { differences, .. } => {
                for side in ["client", "server"] {
                    assert!(
                        differences.iter().any(|d| d.starts_with(&format!(
                            "{side} sent the KeyUpdate it was asked for [rfc8446-4.6.3-key-update]: the {side} was asked to send 1 KeyUpdate(s); its stream, read to its end, holds 0"
                        ))),
                        "{what} {side}: {differences:#?}"
                    );
                }
            }
            other => panic!("{what}: a KeyUpdate told and not made passed: {other:?}"),
        }
    }
    // Positive control on the wrapper itself: a TLS 1.2 check asks for no KeyUpdate, and
    // the same wrapped DUT passes it.
    let t12 = catalogue
        .iter()
        .find(|c| c.id == "tls.1.2.ecdhe-ecdsa-aes-128-gcm-sha256")
        .expect("the check");
    let report = run_one(t12, &rustls, ProfileName::Rfc);
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", report.verdict);
}
