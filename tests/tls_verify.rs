//! `netconform tls verify` on captures the harness did not make the TLS of: OpenSSL's
//! `s_server` and `s_client` (Debian's OpenSSL) over veth, TLS 1.3 with a KeyUpdate and
//! TLS 1.2, with the key log files OpenSSL writes. Then what a user gets wrong: a key log
//! that does not match, a missing secret, a truncated capture, a broken key log, a capture
//! without TLS: each a clear report and a non-zero exit status, never a panic.
//!
//! Negative controls on real captures: one byte flipped in an encrypted application record,
//! in the server's Finished (TLS 1.3) or the client's Finished (TLS 1.2) — re-encrypted with
//! the logged keys, so that only the Finished check can catch it — and in a logged secret.
//! `tls verify`, the library function and the CLI alike, must FAIL each, naming what broke.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use netconform::dut::openssl::{OpensslRun, run_openssl};
use netconform::dut::tls::TestPki;
use netconform::pcap::write_file;
use netconform::sandbox::HostPair;

struct Case {
    dir: PathBuf,
    pcap: PathBuf,
    run: OpensslRun,
}

fn capture(pair: &HostPair, pki: &TestPki, version: u16, name: &str) -> Case {
    let dir = std::env::temp_dir().join(format!("ncf-tls-verify-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = run_openssl(pair, pki, &dir, version, true).expect("openssl exchange");
    let pcap = dir.join("capture.pcap");
    write_file(&pcap, &run.frames).expect("write pcap");
    Case { dir, pcap, run }
}

fn verify(pcap: &Path, keylogs: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netconform"));
    cmd.args(["tls", "verify", "--pcap"]).arg(pcap);
    for k in keylogs {
        cmd.arg("--keylog").arg(k);
    }
    cmd.args(extra);
    let out = cmd.output().expect("run netconform");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn openssl_captures_verify_and_bad_inputs_are_reported() {
    require_netns!();
    let pair = HostPair::build().expect("host pair");
    let pki = TestPki::generate().expect("certificates");

    // TLS 1.3: s_client updates its keys ("k") and requests the server's.
    let t13 = capture(&pair, &pki, 0x0304, "13");
    let (code, out, err) = verify(
        &t13.pcap,
        &[&t13.run.client_keylog, &t13.run.server_keylog],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("TLS 1.3"), "{out}");
    assert!(out.contains("verdict: PASS"), "{out}");
    for line in [
        "ok   server Finished",
        "ok   client Finished",
        "ok   client KeyUpdate ×1",
        "ok   server KeyUpdate ×1",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
    // OpenSSL logs each KeyUpdate's secret; the model's "traffic upd" derivation matches it.
    for label in ["CLIENT_TRAFFIC_SECRET_N", "SERVER_TRAFFIC_SECRET_N"] {
        let want = format!("logged {label} (generation 1) [rfc8446-4.6.3-key-update]");
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("ok ") && l.contains(&want)),
            "{label}:\n{out}"
        );
    }
    assert!(!out.contains("FAIL"), "{out}");

    // JSON output carries the same verdict.
    let (code, json, _) = verify(&t13.pcap, &[&t13.run.client_keylog], &["--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["connections"][0]["verdict"], "Pass", "{json}");

    // TLS 1.2.
    let t12 = capture(&pair, &pki, 0x0303, "12");
    let (code, out, err) = verify(&t12.pcap, &[&t12.run.client_keylog], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("TLS 1.2"), "{out}");
    assert!(
        out.contains("ok   server Finished [rfc5246-7.4.9-finished]"),
        "{out}"
    );
    assert!(
        out.contains("ok   client Finished [rfc5246-7.4.9-finished]"),
        "{out}"
    );

    // A key log whose secret does not match: the records do not decrypt → exit 1.
    for (case, label) in [
        (&t13, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
        (&t12, "CLIENT_RANDOM"),
    ] {
        let text = std::fs::read_to_string(&case.run.client_keylog).expect("key log");
        let wrong: String = text
            .lines()
            .map(|l| {
                if l.starts_with(label) {
                    let mut l = l.to_string();
                    let last = l.pop().expect("a digit");
                    l.push(if last == '0' { '1' } else { '0' });
                    l
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let path = case.dir.join("wrong.keys");
        std::fs::write(&path, wrong).expect("write");
        let (code, out, _) = verify(&case.pcap, &[&path], &[]);
        assert_eq!(code, 1, "{label}: {out}");
        assert!(out.contains("verdict: FAIL"), "{out}");
        assert!(out.contains("does not decrypt"), "{out}");
    }

    // A key log without this connection: exit 2, names the missing secret.
    let empty = t13.dir.join("other.keys");
    std::fs::write(
        &empty,
        format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48)),
    )
    .expect("write");
    let (code, out, _) = verify(&t13.pcap, &[&empty], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the key log has no CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
        "{out}"
    );
    assert!(out.contains("verdict: INCOMPLETE"), "{out}");

    // A broken key log: exit 2, the line named.
    let broken = t13.dir.join("broken.keys");
    std::fs::write(&broken, "# comment\nCLIENT_RANDOM zz 00\n").expect("write");
    let (code, _, err) = verify(&t13.pcap, &[&broken], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");

    // A capture cut in the middle of the handshake (half the frames): exit 2, no panic.
    let cut = t13.dir.join("cut.pcap");
    let half = t13.run.frames.len() / 2;
    write_file(&cut, &t13.run.frames[..half]).expect("write");
    let (code, out, err) = verify(&cut, &[&t13.run.client_keylog], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("problem:"), "{out}");
    // A file cut in the middle of a packet record: still a report or a clear error.
    let bytes = std::fs::read(&t13.pcap).expect("read");
    let torn = t13.dir.join("torn.pcap");
    std::fs::write(&torn, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let (code, out, err) = verify(&torn, &[&t13.run.client_keylog], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("capture problem:"), "{out}");

    // No TLS at all: only the TCP handshake's frames.
    let syn = t13.dir.join("syn.pcap");
    write_file(&syn, &t13.run.frames[..3]).expect("write");
    let (code, out, _) = verify(&syn, &[&t13.run.client_keylog], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no TLS connection"), "{out}");

    // Not a capture at all.
    let (code, _, err) = verify(&t13.run.client_keylog, &[&t13.run.client_keylog], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the capture"), "{err}");

    for case in [t13, t12] {
        let _ = std::fs::remove_dir_all(&case.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Tampering on the `tls verify` path

use netconform::models::tls::{
    CipherSuite, MasterSecret12, RecordProtection12, RecordProtection13, TrafficSecret,
};
use netconform::tls::keylog::KeyLog;
use netconform::tls::report::verify_capture;
use netconform::tls::verify::{ConnectionVerdict, Side};
use netconform::wire::{Frame, TcpFlags, Transport};

/// `(offset, length)` of every record in a TLS byte stream, header included.
fn record_spans(stream: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at + 5 <= stream.len() {
        let len = 5 + usize::from(u16::from_be_bytes([stream[at + 3], stream[at + 4]]));
        spans.push((at, len));
        at += len;
    }
    spans
}

/// The capture with stream bytes `offset..offset + new.len()` of one direction replaced by
/// `new`, in every frame that carries them (a retransmission too); checksums recomputed.
fn patch_stream(
    frames: &[(u64, Vec<u8>)],
    client_mac: netconform::wire::MacAddr,
    side: Side,
    offset: usize,
    new: &[u8],
) -> Vec<(u64, Vec<u8>)> {
    let ours = |f: &[u8]| (f.get(6..12) == Some(&client_mac.0[..])) == (side == Side::Client);
    let isn = frames
        .iter()
        .filter(|(_, f)| ours(f))
        .find_map(|(_, f)| {
            let frame = Frame::parse(f).ok()?;
            let tcp = frame.as_tcp()?;
            tcp.flags.contains(TcpFlags::SYN).then_some(tcp.seq)
        })
        .expect("the side's SYN");
    let mut patched = 0;
    let out = frames
        .iter()
        .map(|(at, bytes)| {
            if !ours(bytes) {
                return (*at, bytes.clone());
            }
            let Ok(mut frame) = Frame::parse(bytes) else {
                return (*at, bytes.clone());
            };
            let Some(Transport::Tcp(tcp)) = frame.transport_mut() else {
                return (*at, bytes.clone());
            };
            let start = tcp.seq.wrapping_sub(isn.wrapping_add(1)) as usize;
            let mut touched = false;
            for (i, b) in tcp.payload.iter_mut().enumerate() {
                if let Some(k) = (start + i).checked_sub(offset)
                    && k < new.len()
                {
                    *b = new[k];
                    touched = true;
                }
            }
            if touched {
                patched += 1;
                (*at, frame.emit())
            } else {
                (*at, bytes.clone())
            }
        })
        .collect();
    assert!(patched > 0, "no frame carries stream offset {offset}");
    out
}

/// `tls verify` of a tampered capture or key log: the library function and the CLI both
/// FAIL the connection, with a failure line holding every one of `names`.
fn must_fail(pcap: &Path, keylogs: &[&Path], names: &[&str], what: &str) {
    let report = verify_capture(pcap, keylogs).expect("the capture reads");
    assert_eq!(report.exit_code(), 1, "{what}:\n{}", report.render());
    let conn = &report.connections[0];
    assert_eq!(conn.verdict, ConnectionVerdict::Fail, "{what}");
    let failures = conn.connection.failures();
    assert!(
        failures.iter().any(|f| names.iter().all(|n| f.contains(n))),
        "{what}: no failure names {names:?}:\n{failures:#?}"
    );
    let (code, out, err) = verify(pcap, keylogs, &[]);
    assert_eq!(code, 1, "{what}: {out}{err}");
    assert!(out.contains("verdict: FAIL"), "{what}: {out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("FAIL") && names.iter().all(|n| l.contains(n))),
        "{what}: no FAIL line names {names:?}:\n{out}"
    );
}

/// A key log with the first byte of `label`'s secret flipped.
fn flipped_keylog(case: &Case, label: &str) -> PathBuf {
    let text = std::fs::read_to_string(&case.run.client_keylog).expect("key log");
    let mut flipped = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            if fields.len() == 3 && fields[0] == label {
                let mut secret = hex::decode(fields[2]).expect("hex");
                secret[0] ^= 0x01;
                flipped += 1;
                format!("{} {} {}", fields[0], fields[1], hex::encode(secret))
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(flipped, 1, "one {label} line");
    let path = case.dir.join(format!("flipped-{label}.keys"));
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    path
}

/// What the untampered capture looked like to `tls verify`: its streams, its records (in
/// protocol order) and its client random.
struct Reading {
    client: Vec<u8>,
    server: Vec<u8>,
    conn: netconform::tls::verify::Connection,
    random: [u8; 32],
    suite: CipherSuite,
}

fn read(case: &Case) -> Reading {
    let report = verify_capture(&case.pcap, &[&case.run.client_keylog]).expect("reads");
    assert_eq!(report.exit_code(), 0, "{}", report.render());
    let conversations = netconform::tls::stream::conversations_from_frames(&case.run.frames);
    let conn = report.connections[0].connection.clone();
    let random = hex::decode(conn.client_random.as_deref().expect("random"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let suite = CipherSuite::from_id(conn.suite.expect("suite")).expect("a known suite");
    Reading {
        client: conversations[0].client_data.clone(),
        server: conversations[0].server_data.clone(),
        conn,
        random,
        suite,
    }
}

/// `(index among the side's records, record line)` of the first record of `side` whose
/// content `matches`.
fn find_record(
    r: &Reading,
    side: Side,
    matches: impl Fn(&netconform::tls::verify::RecordLine) -> bool,
) -> (usize, netconform::tls::verify::RecordLine) {
    r.conn
        .records
        .iter()
        .filter(|l| l.side == side)
        .enumerate()
        .find(|(_, l)| matches(l))
        .map(|(i, l)| (i, l.clone()))
        .unwrap_or_else(|| panic!("no such {side:?} record:\n{}", r.conn.trace()))
}

fn write_capture(case: &Case, name: &str, frames: &[(u64, Vec<u8>)]) -> PathBuf {
    let path = case.dir.join(name);
    write_file(&path, frames).expect("write pcap");
    path
}

#[test]
fn tampered_records_finished_and_secrets_fail_tls_verify() {
    require_netns!();
    let pair = HostPair::build().expect("host pair");
    let pki = TestPki::generate().expect("certificates");

    for (version, name) in [(0x0304, "t13"), (0x0303, "t12")] {
        let case = capture(&pair, &pki, version, &format!("tamper-{name}"));
        let r = read(&case);
        let logs: &[&Path] = &[&case.run.client_keylog];

        // 1. An encrypted application record: the client's first record of application
        // data, its last byte (in the AEAD tag) flipped.
        let (i, line) = find_record(&r, Side::Client, |l| {
            l.keys != "plain" && l.carried.iter().any(|c| c.starts_with("data("))
        });
        let (at, len) = record_spans(&r.client)[i];
        let frames = patch_stream(
            &case.run.frames,
            case.run.client_mac,
            Side::Client,
            at + len - 1,
            &[r.client[at + len - 1] ^ 0x01],
        );
        let pcap = write_capture(&case, "app-record.pcap", &frames);
        must_fail(
            &pcap,
            logs,
            &[
                &format!("the client record #{} ", i + 1),
                &format!("does not decrypt with the keys of `{}`", line.keys),
            ],
            &format!("{name}: application record"),
        );

        // 2. A Finished, its last verify_data byte flipped and the record sealed again with
        // the logged keys: the record decrypts, only the Finished check can catch it.
        let (side, check) = if version == 0x0304 {
            (
                Side::Server,
                "server Finished [rfc8446-4.4.4-finished]: expected ",
            )
        } else {
            (
                Side::Client,
                "client Finished [rfc5246-7.4.9-finished]: expected ",
            )
        };
        let stream = if side == Side::Server {
            &r.server
        } else {
            &r.client
        };
        let (i, line) = find_record(&r, side, |l| {
            l.keys != "plain" && l.carried.iter().any(|c| c == "Finished")
        });
        let (at, len) = record_spans(stream)[i];
        let record = &stream[at..at + len];
        let resealed = if version == 0x0304 {
            assert_eq!(line.keys, "hs");
            // The Finished record's sequence number: the server's earlier records under `hs`.
            let seq = r
                .conn
                .records
                .iter()
                .filter(|l| l.side == Side::Server)
                .take(i)
                .filter(|l| l.keys == "hs")
                .count();
            let log = KeyLog::load(&case.run.client_keylog).expect("key log");
            let secret = TrafficSecret::new(
                r.suite.hash,
                log.secret(&r.random, "SERVER_HANDSHAKE_TRAFFIC_SECRET")
                    .expect("logged")
                    .to_vec(),
            );
            let keys = secret.keys(r.suite.aead);
            let mut open = RecordProtection13::new(r.suite.aead, &keys).expect("keys");
            for _ in 0..seq {
                open.seal(23, b"", 0);
            }
            let mut seal = RecordProtection13::new(r.suite.aead, &keys).expect("keys");
            for _ in 0..seq {
                seal.seal(23, b"", 0);
            }
            let header: [u8; 5] = record[..5].try_into().expect("header");
            let (inner, mut content) = open.open(&header, &record[5..]).expect("decrypts");
            let finished_at = content.len() - 4 - r.suite.hash.output_len();
            assert_eq!(content[finished_at], 20, "Finished ends the record");
            *content.last_mut().expect("verify_data") ^= 0x01;
            let padding = record.len() - 5 - 16 - 1 - content.len();
            seal.seal(inner, &content, padding)
        } else {
            assert_eq!(line.keys, "epoch1");
            let log = KeyLog::load(&case.run.client_keylog).expect("key log");
            let master = MasterSecret12::from_logged(
                r.suite.hash,
                log.secret(&r.random, "CLIENT_RANDOM").expect("logged"),
            )
            .expect("48 bytes");
            // The ServerHello opens the server's stream: header, message header, version.
            let server_random: [u8; 32] = r.server[11..43].try_into().expect("random");
            let kb = master.key_block(&r.suite, &r.random, &server_random);
            let version = u16::from_be_bytes([record[1], record[2]]);
            let mut open =
                RecordProtection12::new(r.suite.aead, &kb.client_key, &kb.client_iv).expect("keys");
            let mut plain = open
                .open(record[0], version, &record[5..])
                .expect("decrypts");
            assert_eq!(plain[0], 20, "a Finished");
            *plain.last_mut().expect("verify_data") ^= 0x01;
            let mut seal =
                RecordProtection12::new(r.suite.aead, &kb.client_key, &kb.client_iv).expect("keys");
            seal.seal(record[0], version, &plain)
        };
        assert_eq!(resealed.len(), record.len());
        assert_ne!(resealed, record);
        let frames = patch_stream(&case.run.frames, case.run.client_mac, side, at, &resealed);
        let pcap = write_capture(&case, "finished.pcap", &frames);
        must_fail(&pcap, logs, &[check], &format!("{name}: Finished"));

        // 3. A logged secret: the one the records after the handshake use.
        let (label, keys) = if version == 0x0304 {
            (
                "SERVER_TRAFFIC_SECRET_0",
                "`ap0` (SERVER_TRAFFIC_SECRET_0 from key log ",
            )
        } else {
            (
                "CLIENT_RANDOM",
                "`epoch1` (the key block of the master secret of CLIENT_RANDOM from key log ",
            )
        };
        let flipped = flipped_keylog(&case, label);
        must_fail(
            &case.pcap,
            &[&flipped],
            &["does not decrypt with the keys of ", keys],
            &format!("{name}: logged {label}"),
        );
        let _ = std::fs::remove_dir_all(&case.dir);
    }
}
