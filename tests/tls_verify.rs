//! `netconform tls verify` on captures the harness did not make the TLS of: OpenSSL's
//! `s_server` and `s_client` (Debian's OpenSSL) over veth, TLS 1.3 with a KeyUpdate and
//! TLS 1.2, with the key log files OpenSSL writes. Then what a user gets wrong: a key log
//! that does not match, a missing secret, a truncated capture, a broken key log, a capture
//! without TLS: each a clear report and a non-zero exit status, never a panic.

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
