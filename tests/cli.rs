//! The command line as a user meets it: help for every subcommand, `trace show` on a
//! capture, exit statuses, and `clean` after a run killed with SIGKILL.

#[macro_use]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn netconform() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netconform"))
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["certify", "--help"],
        vec!["checks", "--help"],
        vec!["trace", "--help"],
        vec!["trace", "show", "--help"],
        vec!["clean", "--help"],
        vec!["bench", "--help"],
        vec!["report", "compare", "--help"],
    ] {
        let out = netconform().args(&args).output().expect("run netconform");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Usage:"),
            "{args:?} printed no usage:\n{text}"
        );
    }
}

#[test]
fn checks_lists_every_check_with_its_clauses() {
    let out = netconform().arg("checks").output().expect("run netconform");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for spec in netconform::suites::catalogue() {
        assert!(text.contains(spec.id), "{} missing from:\n{text}", spec.id);
        for clause in spec.clauses {
            assert!(text.contains(clause.id), "{} missing", clause.id);
        }
    }
}

#[test]
fn trace_show_reports_a_missing_or_broken_file_without_panicking() {
    let out = netconform()
        .args(["trace", "show", "/nonexistent/capture.pcap"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/capture.pcap"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = std::env::temp_dir().join(format!("netconform-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all").expect("write");
    let out = netconform()
        .args(["trace", "show"])
        .arg(&garbage)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A capture made with `tcpdump -i any` is Linux cooked (SLL2 since libpcap 1.10, SLL
/// before), in pcap or pcapng: `trace show` prints its frames, outgoing packets marked `>`,
/// incoming `<`.
#[test]
fn trace_show_reads_linux_cooked_captures() {
    use std::borrow::Cow;
    use std::net::Ipv4Addr;

    use netconform::wire::{Frame, MacAddr, TcpFlags, TcpSegment};
    use pcap_file::DataLink;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };

    let (a_mac, b_mac) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
    let (a, b) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2));
    let frames = [
        Frame::tcp_v4(
            a_mac,
            b_mac,
            a,
            b,
            TcpSegment::new(40000, 443, 7000, 0, TcpFlags::SYN),
        )
        .emit(),
        Frame::tcp_v4(
            b_mac,
            a_mac,
            b,
            a,
            TcpSegment::new(443, 40000, 9000, 7001, TcpFlags::SYN_ACK),
        )
        .emit(),
        Frame::tcp_v4(
            a_mac,
            b_mac,
            a,
            b,
            TcpSegment::new(40000, 443, 7001, 9001, TcpFlags::ACK),
        )
        .emit(),
    ];
    // The capturing host is A: its packets are outgoing (packet type 4), B's are to it (0).
    let packet_types = [4u8, 0, 4];
    let sll = |f: &[u8], packet_type: u8| {
        let mut p = vec![0, packet_type, 0, 1, 0, 6];
        p.extend(&f[6..12]);
        p.extend([0, 0]);
        p.extend(&f[12..]);
        p
    };
    let sll2 = |f: &[u8], packet_type: u8| {
        let mut p = f[12..14].to_vec();
        p.extend([0, 0, 0, 0, 0, 2, 0, 1, packet_type, 6]);
        p.extend(&f[6..12]);
        p.extend([0, 0]);
        p.extend(&f[14..]);
        p
    };
    let pcap = |link: DataLink, packets: &[Vec<u8>]| {
        let header = PcapHeader {
            datalink: link,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).expect("writer");
        for (i, p) in packets.iter().enumerate() {
            let ts = Duration::from_micros(1_700_000_000_000_000 + i as u64 * 1500);
            w.write_packet(&PcapPacket::new(ts, p.len() as u32, p))
                .expect("packet");
        }
        w.into_writer()
    };
    let pcapng = |link: DataLink, packets: &[Vec<u8>]| {
        let mut w = PcapNgWriter::new(Vec::new()).expect("writer");
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        })
        .expect("idb");
        for (i, p) in packets.iter().enumerate() {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(1_700_000_000_000_000_000 + i as u64 * 1_500_000),
                original_len: p.len() as u32,
                data: Cow::Borrowed(p),
                options: vec![],
            })
            .expect("epb");
        }
        w.into_inner()
    };
    let as_sll: Vec<Vec<u8>> = frames
        .iter()
        .zip(packet_types)
        .map(|(f, t)| sll(f, t))
        .collect();
    let as_sll2: Vec<Vec<u8>> = frames
        .iter()
        .zip(packet_types)
        .map(|(f, t)| sll2(f, t))
        .collect();
    let dir = temp_dir("trace-show-cooked");
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, bytes) in [
        ("sll.pcap", pcap(DataLink::LINUX_SLL, &as_sll)),
        ("sll2.pcap", pcap(DataLink::LINUX_SLL2, &as_sll2)),
        ("sll2.pcapng", pcapng(DataLink::LINUX_SLL2, &as_sll2)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write capture");
        let out = netconform()
            .args(["trace", "show"])
            .arg(&path)
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "    0.000 > host1.40000 > host2.443: S 0:0(0) win 64240",
                "    1.500 < host2.443 > host1.40000: S. 0:0(0) ack 1 win 64240",
                "    3.000 > host1.40000 > host2.443: . 1:1(0) ack 1 win 64240",
            ],
            "{name}"
        );
        let json = netconform()
            .args(["trace", "show", "--json"])
            .arg(&path)
            .output()
            .expect("run");
        let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
        assert_eq!(value.as_array().map(Vec::len), Some(3), "{name}: {value}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `certify` against the kernel passes with every check run (none in error, none
/// unsupported) on a machine with no other program at all: it runs with `PATH` pointing
/// at an empty directory, so a check that needed `nft`, `conntrack`, `ip`, `tc` or any
/// other tool would error. It writes its report, and `trace show` renders the capture it
/// wrote (as text and as JSON).
#[test]
fn certify_writes_a_report_that_trace_show_reads() {
    require_netns!();
    let dir = std::env::temp_dir().join(format!("netconform-certify-{}", std::process::id()));
    let empty = std::env::temp_dir().join(format!("netconform-no-tools-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("an empty PATH directory");
    let out = netconform()
        .arg("certify")
        .arg("--out")
        .arg(&dir)
        .env("PATH", &empty)
        .output()
        .expect("run certify");
    std::fs::remove_dir_all(&empty).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "certify failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(stdout.contains(" 0 unsupported, 0 errors"), "{stdout}");
    let pcap = dir.join("tcp.passive-open.active-close.pcap");
    assert!(pcap.exists());
    let shown = netconform()
        .args(["trace", "show"])
        .arg(&pcap)
        .output()
        .expect("trace show");
    assert!(shown.status.success());
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("S. 0:0(0) ack 1"), "{text}");
    let json = netconform()
        .args(["trace", "show", "--json"])
        .arg(&pcap)
        .output()
        .expect("trace show --json");
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert!(value.as_array().is_some_and(|a| a.len() >= 10), "{value}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json"))
            .expect("JSON");
    assert_eq!(
        summary["checks"].as_array().map(Vec::len),
        Some(netconform::suites::catalogue().len())
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("ncf-{pid}-");
    std::fs::read_dir(Path::new("/run/netns"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A certify run killed with SIGKILL leaves its namespaces behind; `netconform clean`
/// removes them (and only dead runs' namespaces).
#[test]
fn clean_removes_what_a_killed_certify_left() {
    require_netns!();
    let dir = std::env::temp_dir().join(format!("netconform-killed-{}", std::process::id()));
    // Many rounds of the checks, one at a time, so the run is surely mid-way when killed.
    let mut child = netconform()
        .args(["certify", "-j", "1", "--out"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn certify");
    let pid = child.id();
    let started = Instant::now();
    while namespaces_of(pid).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Child::kill sends SIGKILL to the child this test started.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let left = namespaces_of(pid);
    assert!(
        !left.is_empty(),
        "the run was not caught mid-way; nothing to clean"
    );

    // `--pid`: this run's leftovers only, so that a clean of another test running beside
    // it cannot take them first (`clean` alone is tested in tests/sandbox.rs).
    let out = netconform()
        .args(["clean", "--pid", &pid.to_string()])
        .output()
        .expect("run clean");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for name in &left {
        assert!(
            text.contains(name.as_str()),
            "clean did not report {name}:\n{text}"
        );
    }
    assert!(
        namespaces_of(pid).is_empty(),
        "left after clean: {:?}",
        namespaces_of(pid)
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netconform-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

/// `certify --target smoltcp --only ONLY --out DIR`.
fn certify_smoltcp(only: &str, dir: &Path) -> std::process::Output {
    certify_smoltcp_with(only, dir, &[])
}

/// `certify --target smoltcp --only ONLY EXTRA... --out DIR`.
fn certify_smoltcp_with(only: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    netconform()
        .args(["certify", "--target", "smoltcp", "--only", only])
        .args(extra)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("run certify")
}

/// `certify --target smoltcp` needs no privilege (smoltcp runs in-process), and its exit
/// status tells CI pass (0) from fail (1); the report is written either way, and
/// `report compare` puts two reports side by side.
#[test]
fn certify_smoltcp_exit_status_and_report_files() {
    let pass = temp_dir("smoltcp-pass");
    let out = certify_smoltcp("tcp.passive-open", &pass);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for file in ["report.json", "report.html", "junit.xml", "summary.json"] {
        assert!(pass.join(file).exists(), "{file} missing");
    }
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");

    let fail = temp_dir("smoltcp-fail");
    let out = certify_smoltcp("tcp.matrix.v4.listen", &fail);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let html = std::fs::read_to_string(fail.join("report.html")).expect("report.html");
    // The clause's RFC text, the counterexample's replay file and the pcap are in the page.
    assert!(html.contains("If the state is LISTEN"), "no clause text");
    assert!(html.contains("tcp.matrix.v4.listen.counterexample.json"));
    assert!(
        html.contains("data:application/vnd.tcpdump.pcap;base64,")
            || html.contains("data:application/octet-stream;base64,")
    );
    let replay = fail.join("tcp.matrix.v4.listen.counterexample.json");
    let out = netconform()
        .args(["replay", "--target", "smoltcp"])
        .arg(&replay)
        .output()
        .expect("run replay");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the counterexample does not fail on replay: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let page = fail.join("comparison.html");
    let out = netconform()
        .args(["report", "compare"])
        .arg(&pass)
        .arg(fail.join("report.json"))
        .arg("--out")
        .arg(&page)
        .output()
        .expect("run report compare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&page).expect("comparison page");
    assert!(
        page.contains("tcp.matrix.v4.listen") && page.contains("tcp.passive-open.active-close")
    );
    std::fs::remove_dir_all(&pass).ok();
    std::fs::remove_dir_all(&fail).ok();
}

/// A target the CLI does not know, or an external target without its config, is an
/// error (exit 2) that says what is expected, never a panic.
#[test]
fn certify_refuses_unknown_targets() {
    for target in ["bogus", "external:", "external:/nonexistent/agent.toml"] {
        let out = netconform()
            .args([
                "certify",
                "--target",
                target,
                "--only",
                "tcp.passive-open",
                "--out",
            ])
            .arg(temp_dir("bad-target"))
            .output()
            .expect("run certify");
        let err = String::from_utf8_lossy(&out.stderr);
        let all = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(2), "{target}: {all}");
        assert!(!all.contains("panicked"), "{target}: {all}");
    }
}

/// `certify --repeat N` runs the certification N times, keeps each run's report in
/// `run-K/`, and ends with the stability of every verdict (`stability.json`); a series with
/// no flip exits as its runs do (0 when they pass, 1 when a row fails), and `--hog` keeps the cores busy
/// meanwhile.
#[test]
fn certify_repeat_reports_verdict_stability() {
    let dir = temp_dir("repeat");
    let out = netconform()
        .args([
            "certify",
            "--target",
            "smoltcp",
            "--only",
            "tcp.passive-open.active-close",
            "--repeat",
            "3",
            "--hog",
            "--out",
        ])
        .arg(&dir)
        .output()
        .expect("run certify --repeat");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("keeping"), "{stdout}");
    assert!(
        stdout.contains("3 runs of 1 checks: 0 checks flipped (0 flips in all), 0 harness retries"),
        "{stdout}"
    );
    for k in 1..=3 {
        assert!(dir.join(format!("run-{k}/report.json")).exists(), "run {k}");
    }
    let stability: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("stability.json")).expect("stability"))
            .expect("JSON");
    assert_eq!(stability["runs"], 3);
    assert_eq!(stability["checks"][0]["majority"], "pass");
    assert_eq!(stability["checks"][0]["flips"], 0);

    let failing = temp_dir("repeat-fail");
    let out = certify_smoltcp_with("tcp.matrix.v4.listen", &failing, &["--repeat", "2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&failing).ok();
}

/// A stack's slow tier (checks that wait out its wall-clock timers) is left out of a
/// certification unless `--slow` is given, and the report lists what it left out.
#[test]
fn the_slow_tier_runs_only_with_slow() {
    require_netns!();
    let dir = std::env::temp_dir().join(format!("ncf-slow-tier-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/agents/minimal.py");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[stack]\nname = \"slowpoke\"\nslow = [\"arp.cache-hit\"]\n[agent]\ncommand = [\"python3\", \"{}\"]\ntimeout_ms = 10000\n[interface]\nkernel_addresses = false\n",
            agent.display()
        ),
    )
    .expect("config");
    let target = format!("external:{}", config.display());
    let run = |extra: &[&str], out: &str| {
        let out_dir = dir.join(out);
        let mut args = vec!["certify", "--target", &target, "--only", "arp.c"];
        args.extend_from_slice(extra);
        let out_arg = out_dir.display().to_string();
        args.extend(["--out", &out_arg]);
        let output = netconform().args(&args).output().expect("run");
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join("report.json")).expect("report.json"),
        )
        .expect("json");
        (String::from_utf8_lossy(&output.stdout).to_string(), json)
    };
    let (text, json) = run(&[], "default");
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["arp.conflicting-reply"], "{text}");
    assert_eq!(json["slow_not_run"], serde_json::json!(["arp.cache-hit"]));
    assert!(
        text.contains("slow tier: 1 checks not run") && text.contains("arp.cache-hit"),
        "{text}"
    );
    // With --slow it runs, and nothing is listed as left out.
    let (_, json) = run(&["--slow"], "slow");
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(2));
    assert!(json.get("slow_not_run").is_none(), "{json}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--target netstack3` is the sibling binary's (stacks/netstack3, built with
/// `--ignore-rust-version`): without it next to `netconform`, one line says how to build it
/// (exit 2); with it, `netconform` runs it with the same arguments.
#[test]
fn netstack3_target_is_handed_to_its_sibling_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("sibling-netstack3");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = dir.join("netconform");
    std::fs::copy(env!("CARGO_BIN_EXE_netconform"), &exe).expect("copy netconform");
    let args = [
        "certify",
        "--target",
        "netstack3",
        "--only",
        "tcp.closed-port",
    ];
    let out = Command::new(&exe)
        .args(args)
        .output()
        .expect("run netconform");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cargo build --release -p netconform-netstack3 --ignore-rust-version"),
        "{err}"
    );
    // A stand-in sibling that prints what it was given.
    let sibling = dir.join("netconform-netstack3");
    std::fs::write(&sibling, "#!/bin/sh\necho \"sibling: $*\"\nexit 7\n").expect("write");
    std::fs::set_permissions(&sibling, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new(&exe)
        .args(args)
        .output()
        .expect("run netconform");
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sibling: {}", args.join(" "))
    );
    // Other targets stay with netconform itself.
    let out = Command::new(&exe)
        .args(["certify", "--target=nosuch"])
        .output()
        .expect("run netconform");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown target"));
    let _ = std::fs::remove_dir_all(&dir);
}
