//! The certification report, from hand-built runs: terminal table and ladders (snapshots),
//! HTML (clause text, escaping, embedded capture, no external resources), JUnit XML
//! (parsed back), report.json (round trip), the artifacts directory, accepted deviations
//! (accepted, partial, stale, not judged, malformed) and the MUST/SHOULD classification,
//! and the comparison page.

mod common;
use common::report_data::*;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use netconform::engine::Counterexample;
use netconform::engine::runner::{CheckReport, FailedRun, RunSummary};
use netconform::engine::{Clause, Verdict};
use netconform::report::{
    self, Classification, DeviationError, DeviationKind, Deviations, Outcome, Report, Status,
    deviations::classify, ladder::RowKind,
};
use netconform::suites::tcp::scenario::{
    PeerSegment, ProfileName, SegmentKind, TcpEvent, TcpScenario, TcpScenarioRun,
};
use netconform::time::Instant;
use netconform::trace::{Direction, Trace};
use netconform::wire::TcpFlags;

const HANDSHAKE: Clause = Clause {
    id: "rfc9293-3.5-handshake",
    source: "RFC 9293 §3.5",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.5",
    text: "The three-way handshake reduces the possibility of false connections.",
};
const NO_SPURIOUS: Clause = Clause {
    id: "rfc6298-5-no-spurious",
    source: "RFC 6298 §5",
    url: "https://www.rfc-editor.org/rfc/rfc6298#section-5",
    text: "A sender MUST NOT retransmit data that the receiver has acknowledged.",
};
const IEEE_SHALL: Clause = Clause {
    id: "ieee802.1d-7.8-learning",
    source: "IEEE 802.1D-2004 §7.8",
    url: "",
    text: "The Learning Process shall create or update a Dynamic Filtering Entry.",
};

const PEER_ISN: u32 = 1000;
const STACK_ISN: u32 = 5000;

/// listen, then the peer's handshake.
fn handshake(t: &mut Trace) {
    t.push_note(Instant::ZERO, "the stack listens on port 80");
    t.push_call(Instant::from_micros(100), "listen(dut:80)", "Ok");
    t.push_frame(
        Instant::from_millis(1),
        Direction::Sent,
        to_stack(PEER_ISN, 0, TcpFlags::SYN, 0),
    );
    t.push_frame(
        Instant::from_millis(2),
        Direction::Received,
        from_stack(STACK_ISN, PEER_ISN + 1, TcpFlags::SYN_ACK, 0),
    );
    t.push_frame(
        Instant::from_millis(3),
        Direction::Sent,
        to_stack(PEER_ISN + 1, STACK_ISN + 1, TcpFlags::ACK, 0),
    );
}

fn base(id: &'static str, clauses: &[Clause], verdict: Verdict) -> CheckReport {
    CheckReport {
        id,
        title: "a check",
        clauses: clauses.to_vec(),
        verdict,
        duration_ms: 12,
        trace: Trace::default(),
        names: names(),
        environment: vec!["net.ipv4.tcp_early_retrans=0".into()],
        expected: None,
        failed_at: None,
        counterexample: None,
        counterexample_run: None,
        retries: Vec::new(),
        not_checked: Vec::new(),
        clause_tallies: Vec::new(),
        other_kind: false,
    }
}

fn passing() -> CheckReport {
    let mut c = base("tcp.passive-open.active-close", &[HANDSHAKE], Verdict::Pass);
    handshake(&mut c.trace);
    c
}

/// An ACK in LISTEN answered with RST-ACK at the wrong sequence number (MUST clause), with
/// a shrunk counterexample.
fn listen_failure() -> CheckReport {
    let mut c = base(
        "tcp.matrix.v4.listen",
        &[LISTEN_RESET],
        Verdict::Fail {
            step: "LISTEN row of the matrix (ACK in LISTEN)".into(),
            differences: vec![
                "tcp.flags: expected R, observed R.".into(),
                "tcp.seq: expected 7777, observed 0".into(),
            ],
        },
    );
    c.title = "TCP matrix row: every segment kind at the boundary numbers, in LISTEN";
    let t = &mut c.trace;
    t.push_note(Instant::ZERO, "the stack listens on port 80");
    t.push_call(Instant::from_micros(100), "listen(dut:80)", "Ok");
    t.push_frame(
        Instant::from_millis(1),
        Direction::Sent,
        to_stack(PEER_ISN, 7777, TcpFlags::ACK, 0),
    );
    t.push_frame(
        Instant::from_millis(2),
        Direction::Received,
        from_stack(0, PEER_ISN, TcpFlags::RST_ACK, 0),
    );
    t.push_note(Instant::from_millis(3), "matrix row ends");
    c.failed_at = Some(3);
    c.expected = Some("RST seq 7777".into());
    let scenario = TcpScenario {
        name: "ack-in-listen".into(),
        profile: ProfileName::Linux,
        ipv6: false,
        peer_mss: Some(1460),
        events: vec![
            TcpEvent::Listen,
            TcpEvent::Peer(PeerSegment::next(SegmentKind::Ack)),
        ],
    };
    c.counterexample = Some(Counterexample::Scenario {
        scenario: Box::new(TcpScenarioRun {
            scenario,
            peer_port: 40000,
        }),
        shrunk: true,
        original_steps: 6,
    });
    let mut ct = Trace::default();
    ct.push_call(Instant::ZERO, "listen(dut:80)", "Ok");
    ct.push_frame(
        Instant::from_millis(1),
        Direction::Sent,
        to_stack(PEER_ISN, 7777, TcpFlags::ACK, 0),
    );
    ct.push_frame(
        Instant::from_millis(2),
        Direction::Received,
        from_stack(0, PEER_ISN, TcpFlags::RST_ACK, 0),
    );
    c.counterexample_run = Some(FailedRun {
        trace: ct,
        failed_at: 2,
        expected: Some("RST seq 7777".into()),
        differences: vec!["tcp.seq: expected 7777, observed 0".into()],
    });
    c
}

/// A long exchange whose 20th data segment is retransmitted after it was acknowledged
/// (MUST NOT clause): the expected step is silence.
fn long_failure() -> CheckReport {
    let mut c = base(
        "tcp.timer.data-retransmission",
        &[NO_SPURIOUS],
        Verdict::Fail {
            step: "after the last ACK (no frame for 500 ms)".into(),
            differences: vec![
                "expected no frame, observed dut.80 > peer.40000: P. 191:201(10) ack 1".into(),
            ],
        },
    );
    handshake(&mut c.trace);
    let mut at = 10;
    for i in 0..10u32 {
        let seq = STACK_ISN + 1 + i * 10;
        c.trace.push_frame(
            Instant::from_millis(at),
            Direction::Received,
            from_stack(seq, PEER_ISN + 1, TcpFlags::PSH_ACK, 10),
        );
        c.trace.push_frame(
            Instant::from_millis(at + 1),
            Direction::Sent,
            to_stack(PEER_ISN + 1, seq + 10, TcpFlags::ACK, 0),
        );
        at += 10;
    }
    let failing = c.trace.events.len();
    c.trace.push_frame(
        Instant::from_millis(400),
        Direction::Received,
        from_stack(STACK_ISN + 91, PEER_ISN + 1, TcpFlags::PSH_ACK, 10),
    );
    c.trace.push_note(Instant::from_millis(500), "check ends");
    c.failed_at = Some(failing);
    c.expected = Some("no frame for 500 ms".into());
    c
}

/// Nothing came where a delayed ACK was due (SHOULD clause): the failure is at the end.
fn silent_failure() -> CheckReport {
    let mut c = base(
        "tcp.timer.delayed-ack",
        &[DELAYED_ACK],
        Verdict::Fail {
            step: "data from the peer (ACK within 500 ms)".into(),
            differences: vec!["nothing arrived within 500.000 ms".into()],
        },
    );
    handshake(&mut c.trace);
    c.trace.push_frame(
        Instant::from_millis(5),
        Direction::Sent,
        to_stack(PEER_ISN + 1, STACK_ISN + 1, TcpFlags::PSH_ACK, 10),
    );
    c.failed_at = Some(c.trace.events.len());
    c.expected = Some("ACK 11".into());
    c
}

fn unsupported() -> CheckReport {
    base(
        "switch.ageing",
        &[IEEE_SHALL],
        Verdict::Unsupported {
            reason: "ports: the target is not a switch".into(),
        },
    )
}

fn errored() -> CheckReport {
    base(
        "arp.probe",
        &[],
        Verdict::Error {
            reason:
                "setting up the target: needs CAP_NET_ADMIN: run as root or under `unshare -rn`"
                    .into(),
        },
    )
}

fn run() -> RunSummary {
    RunSummary {
        target: "smoltcp".into(),
        profile: ProfileName::Linux,
        checks: vec![
            passing(),
            listen_failure(),
            long_failure(),
            silent_failure(),
            unsupported(),
            errored(),
        ],
    }
}

fn deviations(text: &str) -> Deviations {
    Deviations::parse(text, Path::new("deviations/smoltcp.toml")).expect("valid file")
}

/// Accepts the LISTEN failure by its two difference lines (entries 1 and 5); one stale
/// entry (the check passed), one failing differently (stale), one for a check that did not
/// run (not judged).
const FILE: &str = r#"
[[accept]]
check = "tcp.matrix.v4.*"
difference = "tcp.flags: expected R, observed R."
kind = "violation"
reason = "smoltcp answers with RST-ACK; tracked upstream"

[[accept]]
check = "tcp.passive-open.active-close"
difference = "tcp.flags"
kind = "policy"
reason = "was needed before the fix"

[[accept]]
check = "tcp.timer.delayed-ack"
difference = "ack: expected 11"
kind = "policy"
reason = "smoltcp acks late"

[[accept]]
check = "nat.reply-translated"
difference = "anything"
kind = "policy"
reason = "no NAT on this target"

[[accept]]
check = "tcp.matrix.v4.listen"
difference = "tcp.seq: expected 7777, observed 0"
kind = "violation"
reason = "its RST carries sequence number 0"
"#;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

// ---------------------------------------------------------------- model and counts

#[test]
fn counts_and_classification_without_deviations() {
    let r = Report::build(&run(), &Deviations::none());
    assert_eq!(r.format, report::FORMAT);
    let n = r.counts;
    assert_eq!(
        (
            n.total,
            n.pass,
            n.fail,
            n.accepted,
            n.unsupported,
            n.error,
            n.stale
        ),
        (6, 1, 3, 0, 1, 1, 0)
    );
    assert_eq!(n.status(), Status::Error);
    let listen = r.check("tcp.matrix.v4.listen").expect("listen");
    assert_eq!(listen.family, "tcp.matrix");
    assert_eq!(
        listen.classification,
        Some(Classification::RfcViolation {
            keyword: "MUST".into(),
            clause: "rfc9293-3.10.7.2".into()
        })
    );
    assert_eq!(
        r.check("tcp.timer.data-retransmission")
            .and_then(|c| c.classification.clone()),
        Some(Classification::RfcViolation {
            keyword: "MUST NOT".into(),
            clause: "rfc6298-5-no-spurious".into()
        })
    );
    assert_eq!(
        r.check("tcp.timer.delayed-ack")
            .and_then(|c| c.classification.clone()),
        Some(Classification::PolicyChoiceUnreviewed)
    );
    // Artifacts and counterexample.
    assert_eq!(listen.artifacts.pcap, "tcp.matrix.v4.listen.pcap");
    assert_eq!(
        listen.artifacts.counterexample_replay.as_deref(),
        Some("tcp.matrix.v4.listen.counterexample.json")
    );
    assert_eq!(
        listen.artifacts.counterexample_pcap.as_deref(),
        Some("tcp.matrix.v4.listen.counterexample.pcap")
    );
    let x = listen.counterexample.as_ref().expect("counterexample");
    assert_eq!(
        (x.kind.as_str(), x.shrunk, x.events.len(), x.original_events),
        ("tcp-scenario", true, 2, 6)
    );
    assert!(
        r.check("tcp.passive-open.active-close").is_some_and(|c| c
            .artifacts
            .counterexample_replay
            .is_none()
            && c.ladders.is_none())
    );
    // Clause rows carry the worst outcome of their checks.
    let row = r
        .clauses
        .iter()
        .find(|c| c.clause.id == "rfc9293-3.10.7.2")
        .expect("row");
    assert_eq!(row.outcome, Outcome::Fail);
    assert_eq!(r.clauses.len(), 5);
    assert_eq!(r.environment, vec!["net.ipv4.tcp_early_retrans=0"]);
}

#[test]
fn status_order() {
    let mut run = run();
    run.checks.retain(|c| c.id != "arp.probe");
    assert_eq!(
        Report::build(&run, &Deviations::none()).counts.status(),
        Status::Fail
    );
    run.checks
        .retain(|c| !matches!(c.verdict, Verdict::Fail { .. }));
    assert_eq!(
        Report::build(&run, &Deviations::none()).counts.status(),
        Status::Unsupported
    );
    run.checks.retain(|c| c.verdict == Verdict::Pass);
    assert_eq!(
        Report::build(&run, &Deviations::none()).counts.status(),
        Status::Pass
    );
}

#[test]
fn json_round_trips_and_checks_its_format() {
    let r = Report::build(&run(), &deviations(FILE));
    let json = r.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value["format"], "netconform-report/1");
    assert_eq!(value["counts"]["accepted"], 1);
    assert_eq!(value["checks"][1]["outcome"], "accepted");
    assert_eq!(value["checks"][1]["verdict"], "FAIL");
    assert_eq!(
        value["checks"][1]["classification"]["kind"],
        "accepted-deviation"
    );
    assert_eq!(value["checks"][1]["clauses"][0]["text"], LISTEN_RESET.text);
    let back = Report::from_json(&json, Path::new("report.json")).expect("parses");
    assert_eq!(back, r);
    let other = json.replace("netconform-report/1", "netconform-report/9");
    let err = Report::from_json(&other, Path::new("old/report.json")).expect_err("format");
    assert!(err.to_string().contains("old/report.json"), "{err}");
    assert!(err.to_string().contains("netconform-report/9"), "{err}");
}

// ---------------------------------------------------------------- deviations

#[test]
fn deviation_file_accepts_and_flags_stale_entries() {
    let r = Report::build(&run(), &deviations(FILE));
    let listen = r.check("tcp.matrix.v4.listen").expect("listen");
    assert_eq!(listen.outcome, Outcome::Accepted);
    assert_eq!(
        listen.classification,
        Some(Classification::AcceptedDeviation {
            deviation_kind: DeviationKind::Violation,
            reason: "smoltcp answers with RST-ACK; tracked upstream; its RST carries sequence \
                     number 0"
                .into(),
            entries: vec![1, 5],
        })
    );
    assert_eq!(
        (r.counts.fail, r.counts.accepted, r.counts.stale),
        (2, 1, 2)
    );
    // Entry 2: its check passed. Entry 3: its check failed differently. Entry 4: its check
    // did not run, so it is not judged.
    let stale: Vec<usize> = r.stale_deviations.iter().map(|s| s.entry.entry).collect();
    assert_eq!(stale, vec![2, 3]);
    assert_eq!(
        r.stale_deviations[0].checks,
        vec![("tcp.passive-open.active-close".to_string(), Outcome::Pass)]
    );
    assert_eq!(r.stale_deviations[0].file, "deviations/smoltcp.toml");
    assert_eq!(
        r.check("tcp.timer.delayed-ack").map(|c| c.outcome),
        Some(Outcome::Fail)
    );
}

#[test]
fn one_accepted_difference_does_not_hide_another() {
    let partial = deviations(
        r#"
[[accept]]
check = "tcp.matrix.v4.listen"
difference = "tcp.flags: expected R, observed R."
kind = "policy"
reason = "flags only"
"#,
    );
    let r = Report::build(&run(), &partial);
    assert_eq!(
        r.check("tcp.matrix.v4.listen").map(|c| c.outcome),
        Some(Outcome::Fail)
    );
    // It matched a difference, so it is not stale.
    assert!(r.stale_deviations.is_empty());
    let both = deviations(
        r#"
[[accept]]
check = "tcp.matrix.v4.listen"
difference = "tcp.flags: expected R, observed R."
kind = "policy"
reason = "flags"

[[accept]]
check = "tcp.matrix.v4.listen"
difference = "tcp.seq: expected 7777"
kind = "violation"
reason = "seq"
"#,
    );
    let r = Report::build(&run(), &both);
    let c = r.check("tcp.matrix.v4.listen").expect("listen");
    assert_eq!(c.outcome, Outcome::Accepted);
    assert!(matches!(
        &c.classification,
        Some(Classification::AcceptedDeviation { entries, reason, .. })
            if *entries == vec![1, 2] && reason == "flags; seq"
    ));
}

/// An entry matching the failure's step accepts none of its difference lines: with one
/// difference line matched by another entry and one matched by nothing, the check fails.
#[test]
fn an_entry_matching_the_step_does_not_hide_a_difference() {
    let d = deviations(
        r#"
[[accept]]
check = "tcp.matrix.v4.listen"
difference = "ACK in LISTEN"
kind = "violation"
reason = "the whole step"

[[accept]]
check = "tcp.matrix.v4.listen"
difference = "tcp.flags: expected R, observed R."
kind = "policy"
reason = "flags"
"#,
    );
    let r = Report::build(&run(), &d);
    assert_eq!(
        r.check("tcp.matrix.v4.listen").map(|c| c.outcome),
        Some(Outcome::Fail),
        "tcp.seq: expected 7777, observed 0 is accepted by no entry"
    );
    // Both matched something of the failure: neither is stale.
    assert!(r.stale_deviations.is_empty());
}

#[test]
fn exact_check_ids_do_not_match_as_prefixes() {
    let d = deviations(
        r#"
[[accept]]
check = "tcp.matrix.v4"
difference = "tcp.flags: expected R, observed R."
kind = "policy"
reason = "not a prefix without *"

[[accept]]
check = "tcp.matrix.v4"
difference = "tcp.seq: expected 7777"
kind = "policy"
reason = "not a prefix without *"
"#,
    );
    let r = Report::build(&run(), &d);
    assert_eq!(
        r.check("tcp.matrix.v4.listen").map(|c| c.outcome),
        Some(Outcome::Fail)
    );
    // No check called exactly `tcp.matrix.v4` ran: not judged.
    assert!(r.stale_deviations.is_empty());
}

fn parse_err(text: &str) -> String {
    match Deviations::parse(text, Path::new("deviations/bad.toml")) {
        Ok(d) => panic!("accepted: {d:?}"),
        Err(e) => e.to_string(),
    }
}

const GOOD_ENTRY: &str = r#"
[[accept]]
check = "arp.probe"
difference = "x"
kind = "policy"
reason = "fine"
"#;

#[test]
fn malformed_deviation_files_name_the_file_and_the_entry() {
    let e = parse_err("[[accept]\ncheck = ");
    assert!(
        e.starts_with("deviations/bad.toml: not a valid deviation file"),
        "{e}"
    );

    let e = parse_err(&format!(
        "{GOOD_ENTRY}\n[[accept]]\ncheck = \"arp.probe\"\ndifference = \"x\"\nkind = \"polcy\"\nreason = \"r\"\n"
    ));
    assert!(
        e.contains("deviations/bad.toml: entry 2 (check \"arp.probe\"): unknown kind \"polcy\""),
        "{e}"
    );

    let e = parse_err(&format!(
        "{GOOD_ENTRY}\n[[accept]]\ncheck = \"arp.cache-hit\"\ndifference = \"x\"\nkind = \"policy\"\nreason = \"  \"\n"
    ));
    assert!(
        e.contains("entry 2 (check \"arp.cache-hit\"): `reason`"),
        "{e}"
    );

    let e = parse_err("[[accept]]\ncheck = \"arp.probe\"\nkind = \"policy\"\nreason = \"r\"\n");
    assert!(e.contains("entry 1") && e.contains("`difference`"), "{e}");

    let e = parse_err(
        "[[accept]]\ncheck = \"arp.*.x*\"\ndifference = \"d\"\nkind = \"policy\"\nreason = \"r\"\n",
    );
    assert!(e.contains("entry 1") && e.contains("`*`"), "{e}");

    let e = parse_err(
        "[[accept]]\ncheck = \"arp.probe\"\ndifference = \"d\"\nkind = \"policy\"\nreason = \"r\"\nwhy = \"typo\"\n",
    );
    assert!(
        e.contains("deviations/bad.toml") && e.contains("why"),
        "{e}"
    );

    // Unknown check ids, against the catalogue.
    let d = Deviations::parse(
        &format!("{GOOD_ENTRY}\n[[accept]]\ncheck = \"tcp.no-such-check\"\ndifference = \"x\"\nkind = \"policy\"\nreason = \"r\"\n"),
        Path::new("deviations/bad.toml"),
    )
    .expect("syntax fine");
    let ids: Vec<&str> = netconform::suites::catalogue()
        .iter()
        .map(|c| c.id)
        .collect();
    let err = d.check_ids(&ids).expect_err("unknown id");
    assert!(
        matches!(err, DeviationError::Entry { entry: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("deviations/bad.toml: entry 2 (check \"tcp.no-such-check\")"),
        "{err}"
    );
    // A prefix that names catalogue checks is fine.
    deviations("[[accept]]\ncheck = \"tcp.matrix.*\"\ndifference = \"d\"\nkind = \"policy\"\nreason = \"r\"\n")
        .check_ids(&ids)
        .expect("prefix names checks");
}

#[test]
fn deviation_files_load_by_target_name() {
    let dir = scratch("deviations");
    // No file: no deviations.
    assert_eq!(
        Deviations::load_for_target(&dir, "linux").expect("none"),
        Deviations::none()
    );
    assert_eq!(
        report::deviations::file_name_for("external:lwip/agent.toml"),
        "external_lwip_agent.toml.toml"
    );
    std::fs::write(dir.join("linux.toml"), GOOD_ENTRY).expect("write");
    let d = Deviations::load_for_target(&dir, "linux").expect("loads");
    assert_eq!(d.entries.len(), 1);
    assert_eq!(d.origin.as_deref(), Some(dir.join("linux.toml").as_path()));
    std::fs::write(dir.join("smoltcp.toml"), "nonsense = [").expect("write");
    let e = Deviations::load_for_target(&dir, "smoltcp").expect_err("bad");
    assert!(e.to_string().contains("smoltcp.toml"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn classification_by_keyword() {
    assert!(
        matches!(classify(&[LISTEN_RESET]), Classification::RfcViolation { keyword, .. } if keyword == "MUST")
    );
    assert!(
        matches!(classify(&[NO_SPURIOUS]), Classification::RfcViolation { keyword, .. } if keyword == "MUST NOT")
    );
    assert_eq!(
        classify(&[DELAYED_ACK]),
        Classification::PolicyChoiceUnreviewed
    );
    // Normative text without any RFC 2119 keyword (RFC 9293 §3.10.7 is written so).
    assert!(
        matches!(classify(&[HANDSHAKE]), Classification::RfcViolation { keyword, .. } if keyword == "normative text")
    );
    // A SHOULD beside keyword-free text leaves the choice open.
    assert_eq!(
        classify(&[HANDSHAKE, DELAYED_ACK]),
        Classification::PolicyChoiceUnreviewed
    );
    assert_eq!(classify(&[]), Classification::PolicyChoiceUnreviewed);
    // IEEE standards write their requirements in lower case.
    assert!(
        matches!(classify(&[IEEE_SHALL]), Classification::RfcViolation { keyword, .. } if keyword == "SHALL")
    );
    // A lower-case "shall" in an RFC is not an RFC 2119 keyword, nor is "REQUIREDNESS".
    let rfc_lower = Clause {
        text: "the receiver shall use the REQUIREDNESS flag",
        ..DELAYED_ACK
    };
    assert!(
        matches!(classify(&[rfc_lower]), Classification::RfcViolation { keyword, .. } if keyword == "normative text")
    );
    // Any clause with MUST makes the failure a violation.
    assert!(matches!(
        classify(&[DELAYED_ACK, LISTEN_RESET]),
        Classification::RfcViolation { clause, .. } if clause == "rfc9293-3.10.7.2"
    ));
}

// ---------------------------------------------------------------- ladders and table

#[test]
fn ladders_mark_the_failure() {
    let r = Report::build(&run(), &Deviations::none());
    let l = r
        .check("tcp.matrix.v4.listen")
        .and_then(|c| c.ladders.clone())
        .expect("ladders");
    let marked: Vec<_> = l.observed.rows.iter().filter(|r| r.highlight).collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].kind, RowKind::FromStack);
    assert!(marked[0].text.contains("R."), "{}", marked[0].text);
    let last = l.expected.rows.last().expect("expected row");
    assert_eq!(
        (last.kind, last.text.as_str(), last.highlight),
        (RowKind::ExpectedFrame, "RST seq 7777", true)
    );
    // Drawn from the counterexample's own run (call, ACK, the expected RST), not from the
    // row's trace, whose notes ("matrix row ends") belong to other scenarios.
    assert_eq!(l.expected.rows.len(), 3);
    assert!(
        l.observed.rows.iter().all(|r| r.text != "matrix row ends"),
        "{:?}",
        l.observed.rows
    );

    let silent = r
        .check("tcp.timer.delayed-ack")
        .and_then(|c| c.ladders.clone())
        .expect("ladders");
    let last = silent.observed.rows.last().expect("row");
    assert_eq!(last.kind, RowKind::Missing);
    assert_eq!(last.text, "nothing arrived within 500.000 ms");

    let long = r
        .check("tcp.timer.data-retransmission")
        .and_then(|c| c.ladders.clone())
        .expect("ladders");
    // 25 events before the failure, 14 shown; one event after it.
    assert_eq!(long.observed.elided_before, 25 - 14);
    assert_eq!(long.observed.elided_after, 0);
    assert_eq!(long.observed.rows.len(), 14 + 1 + 1);
    assert_eq!(
        long.expected.rows.last().map(|r| r.kind),
        Some(RowKind::ExpectedOutcome)
    );
}

#[test]
fn ascii_ladders() {
    let r = Report::build(&run(), &Deviations::none());
    for id in [
        "tcp.matrix.v4.listen",
        "tcp.timer.data-retransmission",
        "tcp.timer.delayed-ack",
    ] {
        let l = r
            .check(id)
            .and_then(|c| c.ladders.clone())
            .expect("ladders");
        let text = format!(
            "expected:\n{}\nobserved:\n{}",
            l.expected.to_ascii(),
            l.observed.to_ascii()
        );
        assert!(
            text.lines().all(|line| line.chars().count() <= 100),
            "{text}"
        );
        insta::assert_snapshot!(format!("ladder_{}", id.replace('.', "_")), text);
    }
}

#[test]
fn terminal_table() {
    let text = report::table::render(
        &Report::build(&run(), &deviations(FILE)),
        Path::new("out"),
        false,
    );
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    insta::assert_snapshot!("terminal_table", text);
}

#[test]
fn terminal_table_verbose_has_ladders() {
    let r = Report::build(&run(), &Deviations::none());
    let quiet = report::table::render(&r, Path::new("out"), false);
    let verbose = report::table::render(&r, Path::new("out"), true);
    assert!(!quiet.contains("observed:"));
    assert_eq!(verbose.matches("observed:").count(), 3, "{verbose}");
    assert!(verbose.contains(">>"), "{verbose}");
    assert!(
        verbose.lines().all(|l| l.chars().count() <= 100),
        "{verbose}"
    );
}

// ---------------------------------------------------------------- HTML

fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap_or(rest.len())]
        })
        .collect()
}

#[test]
fn html_is_self_contained_and_escaped() {
    let summary = run();
    let r = Report::build(&summary, &deviations(FILE));
    let html = report::html::render(&r, &summary);
    for clause in [
        HANDSHAKE,
        LISTEN_RESET,
        NO_SPURIOUS,
        DELAYED_ACK,
        IEEE_SHALL,
    ] {
        assert!(
            html.contains(&html_escape(clause.text)),
            "missing {}",
            clause.id
        );
    }
    // Escaped, never raw.
    assert!(!html.contains("<SEQ=SEG.ACK>"));
    assert!(html.contains("&lt;SEQ=SEG.ACK&gt;&lt;CTL=RST&gt; &amp; return"));
    assert!(!html.contains("<script"));
    assert!(attribute_values(&html, "src").is_empty());
    let hrefs = attribute_values(&html, "href");
    assert!(
        hrefs
            .iter()
            .any(|h| h.starts_with("https://www.rfc-editor.org/"))
    );
    for href in hrefs {
        assert!(
            href.starts_with('#')
                || href.starts_with("data:application/vnd.tcpdump.pcap;base64,")
                || href.starts_with("https://www.rfc-editor.org/"),
            "external link {href}"
        );
    }
    // The failures have their sections, the unsupported and errored checks their reasons,
    // the accepted deviation its reason, the stale entries their table.
    assert!(html.contains("id=\"check-tcp-timer-delayed-ack\""));
    assert!(html.contains("ports: the target is not a switch"));
    assert!(html.contains("needs CAP_NET_ADMIN: run as root or under `unshare -rn`"));
    assert!(html.contains("smoltcp answers with RST-ACK; tracked upstream"));
    assert!(html.contains("Stale deviation entries"));
    assert!(html.contains("was needed before the fix"));
    assert!(html.contains("2 of 6 events, shrunk"));
    assert_eq!(html.matches("<svg ").count(), 6);
}

fn data_link(html: &str, file: &str) -> Vec<u8> {
    let needle = format!("download=\"{file}\" href=\"data:application/vnd.tcpdump.pcap;base64,");
    let start = html.find(&needle).expect("download link") + needle.len();
    let end = start + html[start..].find('"').expect("end of link");
    base64::engine::general_purpose::STANDARD
        .decode(&html[start..end])
        .expect("base64")
}

#[test]
fn html_embeds_the_captures() {
    let summary = run();
    let r = Report::build(&summary, &Deviations::none());
    let html = report::html::render(&r, &summary);
    let listen = &summary.checks[1];
    let mut pcap = Vec::new();
    listen.trace.write_pcap(&mut pcap).expect("pcap");
    assert_eq!(data_link(&html, "tcp.matrix.v4.listen.pcap"), pcap);
    let mut pcap = Vec::new();
    listen
        .counterexample_trace()
        .expect("trace")
        .write_pcap(&mut pcap)
        .expect("pcap");
    assert_eq!(
        data_link(&html, "tcp.matrix.v4.listen.counterexample.pcap"),
        pcap
    );
    // A passing check's capture is not embedded.
    assert!(!html.contains("download=\"tcp.passive-open.active-close.pcap\""));
}

// ---------------------------------------------------------------- JUnit

#[derive(Default, Debug, PartialEq)]
struct JUnitCounts {
    suites: usize,
    cases: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    system_out: usize,
    suite_attributes: Vec<(String, String)>,
    classnames: Vec<String>,
    failure_text: String,
}

fn parse_junit(xml: &str) -> JUnitCounts {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut c = JUnitCounts::default();
    let mut in_failure = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
                match name.as_str() {
                    "testsuite" => {
                        c.suites += 1;
                        for a in e.attributes().flatten() {
                            c.suite_attributes.push((
                                String::from_utf8_lossy(a.key.as_ref()).to_string(),
                                String::from_utf8_lossy(&a.value).to_string(),
                            ));
                        }
                    }
                    "testcase" => {
                        c.cases += 1;
                        for a in e.attributes().flatten() {
                            if a.key.as_ref() == b"classname" {
                                c.classnames
                                    .push(String::from_utf8_lossy(&a.value).to_string());
                            }
                        }
                    }
                    "failure" => {
                        c.failures += 1;
                        in_failure = true;
                    }
                    "error" => c.errors += 1,
                    "skipped" => c.skipped += 1,
                    "system-out" => c.system_out += 1,
                    _ => {}
                }
            }
            Event::End(e) if e.name().as_ref() == b"failure" => in_failure = false,
            Event::Text(t) if in_failure => {
                c.failure_text.push_str(&t.xml10_content().expect("text"));
            }
            // quick-xml hands entity references over as events of their own.
            Event::GeneralRef(r) if in_failure => {
                let name: &[u8] = &r;
                c.failure_text.push(match name {
                    b"amp" => '&',
                    b"lt" => '<',
                    b"gt" => '>',
                    b"quot" => '"',
                    b"apos" => '\'',
                    other => panic!("unexpected entity {other:?}"),
                });
            }
            _ => {}
        }
    }
    c
}

#[test]
fn junit_counts_failures_errors_and_skips() {
    let r = Report::build(&run(), &deviations(FILE));
    let xml = report::junit::render(&r);
    let c = parse_junit(&xml);
    assert_eq!(c.suites, 1);
    assert_eq!(c.cases, 6);
    // The accepted deviation passes: two failures left.
    assert_eq!((c.failures, c.errors, c.skipped), (2, 1, 1));
    let attr = |k: &str| {
        c.suite_attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr("name").as_deref(), Some("smoltcp"));
    assert_eq!(attr("tests").as_deref(), Some("6"));
    assert_eq!(attr("failures").as_deref(), Some("2"));
    assert_eq!(attr("errors").as_deref(), Some("1"));
    assert_eq!(attr("skipped").as_deref(), Some("1"));
    assert!(c.classnames.contains(&"tcp.matrix".to_string()));
    assert!(c.classnames.contains(&"tcp.timer".to_string()));
    // Accepted case's system-out, and the suite's stale list.
    assert_eq!(c.system_out, 2);
    assert!(xml.contains("accepted deviation (violation"));
    assert!(xml.contains("stale deviation entries"));
    // Failure text carries differences and clause text.
    assert!(c.failure_text.contains("nothing arrived within 500.000 ms"));
    assert!(c.failure_text.contains(DELAYED_ACK.text));
    assert!(c.failure_text.contains(NO_SPURIOUS.text));

    // Without deviations the LISTEN failure is a failure.
    let plain = parse_junit(&report::junit::render(&Report::build(
        &run(),
        &Deviations::none(),
    )));
    assert_eq!(plain.failures, 3);
    assert!(plain.failure_text.contains(LISTEN_RESET.text));
}

// ---------------------------------------------------------------- directory

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netconform-report-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn writes_the_artifacts_directory() {
    let dir = scratch("dir");
    let summary = run();
    let r = Report::build(&summary, &deviations(FILE));
    let written = report::write_dir(&summary, &r, &dir).expect("written");
    for file in [
        "report.json",
        "report.html",
        "junit.xml",
        "summary.json",
        "tcp.matrix.v4.listen.pcap",
        "tcp.matrix.v4.listen.trace.txt",
        "tcp.matrix.v4.listen.counterexample.json",
        "tcp.matrix.v4.listen.counterexample.pcap",
        "arp.probe.pcap",
    ] {
        assert!(written.contains(&dir.join(file)), "{file} not listed");
        assert!(dir.join(file).exists(), "{file} not written");
    }
    assert!(
        !dir.join("tcp.timer.delayed-ack.counterexample.json")
            .exists()
    );
    let listen = &summary.checks[1];
    let read = |f: &str| std::fs::read(dir.join(f)).expect(f);
    let mut pcap = Vec::new();
    listen.trace.write_pcap(&mut pcap).expect("pcap");
    assert_eq!(read("tcp.matrix.v4.listen.pcap"), pcap);
    assert_eq!(
        String::from_utf8(read("tcp.matrix.v4.listen.trace.txt")).expect("utf-8"),
        listen.trace_text()
    );
    let replay =
        String::from_utf8(read("tcp.matrix.v4.listen.counterexample.json")).expect("utf-8");
    assert_eq!(
        Some(replay.clone()),
        listen.counterexample.as_ref().expect("cx").replay_json()
    );
    let scenario: TcpScenario = serde_json::from_str(&replay).expect("a scenario replay reads");
    assert_eq!(scenario.events.len(), 2);
    let loaded = Report::load(&dir.join("report.json")).expect("loads");
    assert_eq!(loaded, r);
    let summary_json: serde_json::Value =
        serde_json::from_slice(&read("summary.json")).expect("JSON");
    assert_eq!(summary_json["checks"].as_array().map(Vec::len), Some(6));
    assert_eq!(summary_json["clauses"].as_array().map(Vec::len), Some(5));
    // The page rendered from the directory embeds the same capture.
    let from_dir = report::html::render_from_dir(&loaded, &dir);
    assert_eq!(data_link(&from_dir, "tcp.matrix.v4.listen.pcap"), pcap);
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------- comparison

#[test]
fn comparison_page() {
    let dir = scratch("compare");
    let linux_run = RunSummary {
        target: "linux".into(),
        ..run()
    };
    let mut linux_run = linux_run;
    // Linux passes the LISTEN row and does not have the switch check.
    linux_run.checks[1] = CheckReport {
        verdict: Verdict::Pass,
        failed_at: None,
        expected: None,
        counterexample: None,
        counterexample_run: None,
        ..listen_failure()
    };
    linux_run.checks.retain(|c| c.id != "switch.ageing");
    let linux = Report::build(&linux_run, &Deviations::none());
    let smoltcp = Report::build(&run(), &deviations(FILE));
    let l = dir.join("linux.json");
    let s = dir.join("smoltcp.json");
    std::fs::write(&l, linux.to_json()).expect("write");
    std::fs::write(&s, smoltcp.to_json()).expect("write");
    let html = report::compare::compare_files(&[
        ("Linux".to_string(), l.clone()),
        ("smoltcp".to_string(), s),
    ])
    .expect("compares");
    assert_eq!(
        html,
        report::compare::compare(&[("Linux".into(), linux), ("smoltcp".into(), smoltcp)])
    );
    assert!(html.contains("<th>Linux</th><th>smoltcp</th>"));
    // Labelled by target name when loaded by path alone; a repeated name is numbered.
    let by_path = report::compare::compare_paths(&[l.clone(), dir.join("smoltcp.json"), l.clone()])
        .expect("compares");
    assert!(
        by_path.contains("<th>linux</th><th>smoltcp</th><th>linux (2)</th>"),
        "{by_path}"
    );
    // The LISTEN row differs: PASS on Linux, ACCEPTED (with its reason) on smoltcp.
    let row = html
        .lines()
        .find(|l| l.contains("<code>tcp.matrix.v4.listen</code>"))
        .expect("row");
    assert!(row.starts_with("<tr class=\"differs\">"), "{row}");
    assert!(row.contains("class=\"cell pass\""), "{row}");
    assert!(row.contains("class=\"cell accepted\""), "{row}");
    assert!(
        row.contains("violation: smoltcp answers with RST-ACK; tracked upstream"),
        "{row}"
    );
    // A check only one target ran.
    let row = html
        .lines()
        .find(|l| l.contains("<code>switch.ageing</code>"))
        .expect("row");
    assert!(row.contains("<td>-</td>"), "{row}");
    // The same outcome on both: not marked.
    let row = html
        .lines()
        .find(|l| l.contains("<code>tcp.timer.delayed-ack</code>"))
        .expect("row");
    assert!(row.starts_with("<tr><td>"), "{row}");
    assert!(row.contains("nothing arrived within 500.000 ms"), "{row}");
    // Clause rows.
    assert!(html.contains("<code title=\""));
    assert!(attribute_values(&html, "src").is_empty());
    for href in attribute_values(&html, "href") {
        assert!(href.starts_with("https://www.rfc-editor.org/"), "{href}");
    }
    // The same table in Markdown: a summary row per target, a row per check and per clause.
    let md = report::compare::markdown_paths(&[l.clone(), dir.join("smoltcp.json")]).expect("md");
    assert!(md.contains("| check | linux | smoltcp |"), "{md}");
    assert!(
        md.contains("| `tcp.matrix.v4.listen` | pass | accepted |"),
        "{md}"
    );
    assert!(md.contains("| `switch.ageing` | - |"), "{md}");
    assert!(md.contains("| clause | source | linux | smoltcp |"), "{md}");
    // A check for another kind of device is `n/a`, and leaves the share of its kind.
    let mut other = run();
    let i = other
        .checks
        .iter()
        .position(|c| c.id == "switch.ageing")
        .expect("switch");
    other.checks[i].other_kind = true;
    let other = Report::build(&other, &Deviations::none());
    assert_eq!(other.counts.other_kind, 1);
    assert_eq!(other.counts.of_its_kind(), other.counts.total - 1);
    assert_eq!(
        other.counts.unsupported_of_its_kind(),
        other.counts.unsupported - 1
    );
    let md = report::compare::markdown(&[("s".into(), other)]);
    assert!(md.contains("| `switch.ageing` | n/a |"), "{md}");
    // A missing file is an error naming it.
    let err = report::compare::compare_files(&[("x".to_string(), dir.join("missing.json"))])
        .expect_err("missing");
    assert!(err.to_string().contains("missing.json"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The harness's retries are in the JSON, the terminal table and the HTML, with their check;
/// a run without any says nothing about them in the table.
#[test]
fn harness_retries_are_shown_with_their_check() {
    let mut summary = run();
    summary.checks[0].retries = vec![
        "barrier after event 2: the barrier probe (echo 3) never reached the stack's interface (its receive counter stayed at 7): sent again".into(),
    ];
    let r = Report::build(&summary, &Deviations::none());
    assert_eq!(r.counts.retries, 1);
    assert_eq!(r.checks[0].retries.len(), 1);
    let json: serde_json::Value = serde_json::to_value(&r).expect("JSON");
    assert_eq!(json["counts"]["retries"], 1);
    assert!(
        json["checks"][0]["retries"][0]
            .as_str()
            .is_some_and(|t| t.contains("never reached"))
    );
    let table = report::table::render(&r, Path::new("out"), false);
    assert!(
        table.contains("RETRY tcp.passive-open.active-close: barrier after event 2"),
        "{table}"
    );
    assert!(table.contains("1 harness retries"), "{table}");
    let html = report::html::render(&r, &summary);
    assert!(html.contains("1 harness retries"), "{html}");
    assert!(html.contains("(echo 3) never reached"));

    let quiet = Report::build(&run(), &Deviations::none());
    assert!(!report::table::render(&quiet, Path::new("out"), false).contains("retries"));
}

/// A clause a check did not check: the check is an error, never a pass; report.json lists
/// the clause with the check and in the clause's row, the table and the page show it.
#[test]
fn clauses_not_checked_are_shown_and_never_pass() {
    use netconform::engine::NotChecked;
    use netconform::engine::runner::not_checked_verdict;
    let mut summary = run();
    let not_checked = vec![NotChecked {
        clause: HANDSHAKE.id,
        reason:
            "rustls/ring: client KeyUpdate ×1: no client record after its last KeyUpdate to decrypt"
                .into(),
    }];
    summary.checks[0].verdict = not_checked_verdict(&not_checked);
    summary.checks[0].not_checked = not_checked;
    let r = Report::build(&summary, &Deviations::none());
    let entry = &r.checks[0];
    assert_eq!(entry.outcome, Outcome::Error);
    assert_eq!(r.counts.pass, 0);
    assert_eq!(entry.not_checked.len(), 1);
    assert_eq!(entry.not_checked[0].clause, HANDSHAKE.id);
    let row = r
        .clauses
        .iter()
        .find(|c| c.clause.id == HANDSHAKE.id)
        .expect("the clause's row");
    assert_ne!(row.outcome, Outcome::Pass);
    assert_eq!(row.not_checked, vec![entry.id.clone()]);

    let json: serde_json::Value = serde_json::to_value(&r).expect("JSON");
    assert_eq!(
        json["checks"][0]["not_checked"][0]["clause"], HANDSHAKE.id,
        "{json}"
    );
    assert_eq!(json["clauses"][0]["not_checked"][0], entry.id.as_str());
    // Read back, the same.
    let back = Report::from_json(&r.to_json(), Path::new("report.json")).expect("reads");
    assert_eq!(back, r);

    let table = report::table::render(&r, Path::new("out"), false);
    assert!(
        table.contains("ERROR tcp.passive-open.active-close: not checked (1 clause(s)"),
        "{table}"
    );
    assert!(
        table.contains(
            "       not checked: clause rfc9293-3.5-handshake: rustls/ring: client KeyUpdate"
        ),
        "{table}"
    );
    let html = report::html::render(&r, &summary);
    assert!(
        html.contains("not checked: clause <code>rfc9293-3.5-handshake</code>"),
        "{html}"
    );
    assert!(html.contains("(not checked)</small>"), "{html}");

    // Nothing not checked: none of it in the JSON, the table or the page.
    let quiet = Report::build(&run(), &Deviations::none());
    let json = quiet.to_json();
    assert!(!json.contains("not_checked"), "{json}");
    assert!(!report::table::render(&quiet, Path::new("out"), false).contains("not checked"));
    assert!(!report::html::render(&quiet, &run()).contains("not checked"));
}

/// A check of many cases (a matrix row) is judged clause by clause: its failure is classified
/// by the clause its cases broke (not its first clause), its cases are grouped by clause in
/// JSON, HTML and the table, and a clause its cases all kept holds in the clause table.
#[test]
fn cells_are_classified_and_grouped_by_the_clause_they_break() {
    use netconform::engine::ClauseTally;
    const SEQ: Clause = Clause {
        id: "rfc9293-3.10.7.4-seq",
        source: "RFC 9293 §3.10.7.4 (first)",
        url: "",
        text: "If an incoming segment is not acceptable, an acknowledgment should be sent in reply.",
    };
    const SYN: Clause = Clause {
        id: "rfc5961-4.2",
        source: "RFC 5961 §4.2",
        url: "",
        text: "If the SYN bit is set, irrespective of the sequence number, TCP MUST send an ACK.",
    };
    const RST: Clause = Clause {
        id: "rfc5961-3.2",
        source: "RFC 5961 §3.2",
        url: "",
        text: "If the RST bit is set and the sequence number exactly matches RCV.NXT, TCP MUST reset the connection.",
    };
    let failing = vec![
        "v4 ESTABLISHED Syn seq RcvNxt: no challenge ACK".to_string(),
        "v4 ESTABLISHED Syn seq WindowEnd: no challenge ACK".to_string(),
    ];
    let mut row = base(
        "tcp.matrix.v4.established",
        &[RST, SEQ, SYN],
        Verdict::Fail {
            step: "ESTABLISHED row of the matrix".into(),
            differences: failing.clone(),
        },
    );
    row.clause_tallies = vec![
        ClauseTally {
            clause: RST,
            ran: 20,
            failing: Vec::new(),
        },
        ClauseTally {
            clause: SEQ,
            ran: 30,
            failing: Vec::new(),
        },
        ClauseTally {
            clause: SYN,
            ran: 12,
            failing: failing.clone(),
        },
    ];
    let summary = RunSummary {
        target: "stack".into(),
        profile: ProfileName::Rfc,
        checks: vec![row.clone()],
    };
    let r = Report::build(&summary, &Deviations::none());
    let c = &r.checks[0];
    // The breach is the SYN clause's MUST, not the check's first MUST clause (RST's).
    assert_eq!(
        c.classification,
        Some(Classification::RfcViolation {
            keyword: "MUST".into(),
            clause: SYN.id.into()
        })
    );
    assert_eq!(c.clause_cells.len(), 3);
    assert_eq!(
        (c.clause_cells[1].ran, c.clause_cells[1].failing.len()),
        (30, 0)
    );
    assert_eq!(c.clause_cells[1].classification, None);
    assert_eq!(c.clause_cells[2].failing, failing);
    let seq_row = r
        .clauses
        .iter()
        .find(|row| row.clause.id == SEQ.id)
        .expect("SEQ row");
    assert_eq!(seq_row.outcome, Outcome::Pass, "its cases all agreed");
    let syn_row = r
        .clauses
        .iter()
        .find(|row| row.clause.id == SYN.id)
        .expect("SYN row");
    assert_eq!(syn_row.outcome, Outcome::Fail);
    let html = report::html::render_with(&r, &|_| None);
    assert!(
        html.contains("2 cases break <code>rfc5961-4.2</code>"),
        "{html}"
    );
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
    assert_eq!(json["checks"][0]["clause_cells"][2]["clause"], SYN.id);
    let table = report::table::render(&r, Path::new("out"), false);
    assert!(
        table.contains("clause rfc5961-4.2: 2 of 12 cases break it  RFC violation (MUST)"),
        "{table}"
    );
    assert!(
        table.contains("clause rfc5961-3.2: 0 of 20 cases break it  holds"),
        "{table}"
    );

    // Negative control: without the tallies the same failure is labelled by the check's
    // first MUST clause, and every clause of the check fails with it.
    row.clause_tallies.clear();
    let plain = Report::build(
        &RunSummary {
            target: "stack".into(),
            profile: ProfileName::Rfc,
            checks: vec![row],
        },
        &Deviations::none(),
    );
    assert_eq!(
        plain.checks[0].classification,
        Some(Classification::RfcViolation {
            keyword: "MUST".into(),
            clause: RST.id.into()
        }),
    );
    assert!(plain.checks[0].clause_cells.is_empty());
    assert!(plain.clauses.iter().all(|row| row.outcome == Outcome::Fail));
}

/// A check whose failure no tallied case names (a basic check: its ARP request held, then
/// the RST came without ACK) is classified by the clauses that did not hold: the request's
/// clause, tallied and kept, is not the one it breaks.
#[test]
fn a_held_clause_is_not_the_one_a_failure_breaks() {
    use netconform::engine::ClauseTally;
    const ARP: Clause = Clause {
        id: "rfc826-request",
        source: "RFC 826",
        url: "",
        text: "It then causes this packet to be broadcast to all stations on the Ethernet cable.",
    };
    const CLOSED: Clause = Clause {
        id: "rfc9293-3.10.7.1",
        source: "RFC 9293 §3.10.7.1",
        url: "",
        text: "If the ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>",
    };
    let mut check = base(
        "tcp.closed-port.syn",
        &[ARP, CLOSED],
        Verdict::Fail {
            step: "stack refuses the SYN (RST-ACK)".into(),
            differences: vec!["flags expected R., observed R".into()],
        },
    );
    check.clause_tallies = vec![ClauseTally {
        clause: ARP,
        ran: 1,
        failing: Vec::new(),
    }];
    let ids = |c: &CheckReport| c.broken_clauses().iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(&check), [CLOSED.id]);
    let r = Report::build(
        &RunSummary {
            target: "stack".into(),
            profile: ProfileName::Rfc,
            checks: vec![check.clone()],
        },
        &Deviations::none(),
    );
    assert!(
        matches!(&r.checks[0].classification,
            Some(Classification::RfcViolation { clause, .. }) if clause == CLOSED.id),
        "{:?}",
        r.checks[0].classification
    );
    // Negative control: untallied, the check's first clause takes the blame.
    check.clause_tallies.clear();
    assert_eq!(ids(&check), [ARP.id, CLOSED.id]);
    // And a tally that held every clause leaves them all (nothing else to blame).
    check.clause_tallies = [ARP, CLOSED]
        .into_iter()
        .map(|clause| ClauseTally {
            clause,
            ran: 1,
            failing: Vec::new(),
        })
        .collect();
    assert_eq!(ids(&check), [ARP.id, CLOSED.id]);
}
