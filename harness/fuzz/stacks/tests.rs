//! Stack targets on smoltcp: agreement, a finding in its group, the deviation file
//! applied, a known panic filed and the same panic a crash without its entry, the
//! findings directory, the shrink.

use super::*;
use crate::suites::tcp::scenario::{AckAt, PeerSegment, SegmentKind, SeqAt};

/// Listen, SYN, ACK: ESTABLISHED (`path_to(Established)`), encoded.
const ESTABLISHED: &[u8] = &[0x00, 0x01, 0x80, 0x00, 0x02, 0x03, 0x02];

fn with(events: &[u8]) -> Vec<u8> {
    [ESTABLISHED, events].concat()
}

fn peer(kind: SegmentKind, seq: SeqAt, ack: AckAt, len: u16) -> TcpEvent {
    TcpEvent::Peer(PeerSegment {
        kind,
        seq,
        ack,
        len,
    })
}

#[test]
fn an_established_connection_agrees() {
    let (scenario, verdict) = judge(&SMOLTCP, ESTABLISHED);
    assert_eq!(scenario.events.len(), 3);
    assert_eq!(verdict, Verdict::Agreed);
    assert!(run_target(&SMOLTCP, ESTABLISHED).is_ok());
}

#[test]
fn a_syn_in_established_is_filed_under_the_challenge_ack_clause() {
    // A SYN at RCV.NXT (op 0, ack Nxt): RFC 5961 §4.2 wants a challenge ACK; smoltcp 0.14
    // drops it (docs/findings-smoltcp.md).
    let (_, verdict) = judge(&SMOLTCP, &with(&[0x00, 0x02]));
    let Verdict::Disagreed(d) = verdict else {
        panic!("expected a disagreement, got {verdict:?}");
    };
    assert_eq!(d.group.clause, "rfc5961-4.2");
    assert_eq!(d.group.state, State::Established);
    assert_eq!(
        d.group.what,
        "no segment where the model sends challenge ACK (SYN in a synchronized state)"
    );
    assert_eq!(d.event, 3);
    assert!(d.ladder.contains("expected (model)"), "{}", d.ladder);
    // Not a crash: the fuzzer goes on.
    assert!(run_target(&SMOLTCP, &with(&[0x00, 0x02])).is_ok());
}

#[test]
fn the_state_before_is_the_models_not_the_paths() {
    // Close in ESTABLISHED (FIN-WAIT-1), then a SYN: filed under FIN-WAIT-1.
    let (_, verdict) = judge(&SMOLTCP, &with(&[0x85, 0x00, 0x02]));
    let Verdict::Disagreed(d) = verdict else {
        panic!("expected a disagreement, got {verdict:?}");
    };
    assert_eq!(
        (d.group.clause, d.group.state),
        ("rfc5961-4.2", State::FinWait1)
    );
}

#[test]
fn the_deviation_file_accepts_what_it_names_and_nothing_else() {
    static ACCEPTING: StackTarget = StackTarget {
        name: "stack_smoltcp_accepting",
        deviations: "[[accept]]\ncheck = \"tcp.matrix.*\"\ndifference = \"challenge ACK (SYN\"\n\
                     kind = \"violation\"\nreason = \"test\"\n",
        ..SMOLTCP
    };
    let syn = with(&[0x00, 0x02]);
    assert_eq!(judge(&ACCEPTING, &syn).1, Verdict::Accepted(vec![1]));
    // An in-window RST (RCV.NXT + 1 is not exact: op 7 + 9 * 2, the window's last octet)
    // wants another challenge ACK, which the entry does not name.
    let rst = with(&[7 + 9 * 2, 0x02]);
    assert!(matches!(judge(&ACCEPTING, &rst).1, Verdict::Disagreed(_)));
}

#[test]
fn smoltcps_window_edge_panic_is_filed_and_without_its_entry_a_crash() {
    // Ten bytes at the last octet of the window in ESTABLISHED trip smoltcp's
    // `debug_assert!(len_written == payload_len)` (debug builds, cargo-fuzz's too).
    let data = with(&[4 + 9 * 2, 0x02 | 1 << 2]);
    let scenario = input::decode(&data, ProfileName::Rfc);
    assert_eq!(
        scenario.events[3],
        peer(SegmentKind::Data, SeqAt::WindowEndMinus1, AckAt::Nxt, 10)
    );
    if !cfg!(debug_assertions) {
        return;
    }
    let (_, verdict) = judge(&SMOLTCP, &data);
    assert!(
        matches!(&verdict, Verdict::KnownPanic(w) if w.contains("len_written == payload_len")),
        "{verdict:?}"
    );
    assert!(run_target(&SMOLTCP, &data).is_ok());
    // The negative control: the same panic on a target that does not list it is a crash,
    // which libFuzzer must see.
    static UNLISTED: StackTarget = StackTarget {
        name: "stack_smoltcp_unlisted",
        known_panics: &[],
        ..SMOLTCP
    };
    let (_, verdict) = judge(&UNLISTED, &data);
    assert!(
        matches!(&verdict, Verdict::Crashed(w) if w.contains("smoltcp panicked")),
        "{verdict:?}"
    );
    let outcome = run_target(&UNLISTED, &data);
    assert!(
        outcome.is_err_and(|f| f.what.contains("len_written == payload_len")),
        "the crash is the target's finding"
    );
}

#[test]
fn the_findings_directory_keeps_the_first_and_the_smallest_with_counts() {
    let dir = std::env::temp_dir().join(format!("ncf-stack-findings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut recorder = findings::Recorder::new(&dir);
    let about = || "g in ESTABLISHED: x\nmore".to_string();
    recorder.record("stack_t", "g in ESTABLISHED: x", &about, b"longer input");
    recorder.record("stack_t", "g in ESTABLISHED: x", &about, b"short");
    recorder.record(
        "stack_t",
        "g in ESTABLISHED: x",
        &about,
        b"longest input of all",
    );
    recorder.record(
        "stack_t",
        "h in LISTEN: y",
        &|| "h in LISTEN: y".into(),
        b"h",
    );
    let groups = findings::summarise(&dir).expect("summary");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(groups.len(), 2);
    let g = &groups[0];
    assert_eq!((g.key.as_str(), g.count), ("g in ESTABLISHED: x", 3));
    assert_eq!((g.first_len, g.smallest_len), (12, 5));
    assert_eq!(g.about, "more");
    assert_eq!(
        (groups[1].key.as_str(), groups[1].count),
        ("h in LISTEN: y", 1)
    );
    let text = render_findings(&groups, None, false);
    assert!(text.contains("netconform fuzz run stack_t"), "{text}");
}

#[test]
fn a_shrunk_finding_keeps_its_group_and_replays() {
    // Receives and sends that change nothing, then the SYN in ESTABLISHED.
    let scenario = TcpScenario {
        name: "t".into(),
        profile: ProfileName::Rfc,
        ipv6: false,
        peer_mss: Some(1460),
        events: vec![
            TcpEvent::Listen,
            peer(SegmentKind::Syn, SeqAt::RcvNxt, AckAt::Nxt, 0),
            peer(SegmentKind::Ack, SeqAt::RcvNxt, AckAt::Nxt, 0),
            TcpEvent::Receive(0),
            peer(SegmentKind::Data, SeqAt::RcvNxt, AckAt::Nxt, 10),
            TcpEvent::Receive(100),
            peer(SegmentKind::Syn, SeqAt::RcvNxt, AckAt::Nxt, 0),
        ],
    };
    let Verdict::Disagreed(d) = judge_scenario(&SMOLTCP, &scenario) else {
        panic!("expected a disagreement");
    };
    let shrunk = shrink(&SMOLTCP, &scenario, &d.group);
    assert_eq!(
        shrunk.scenario.events.len(),
        4,
        "{:?}",
        shrunk.scenario.events
    );
    let Verdict::Disagreed(again) = judge_scenario(&SMOLTCP, &shrunk.scenario) else {
        panic!("the shrunk scenario must still disagree");
    };
    assert_eq!(again.group, d.group);
    // What `netconform replay` reads back.
    let back = TcpScenarioRun::from_json(&shrunk.to_json()).expect("replay file");
    assert_eq!(back.scenario.events, shrunk.scenario.events);
}

#[test]
fn the_built_in_deviation_files_parse() {
    for t in STACKS {
        let origin = std::path::Path::new("deviations").join(format!("{}.toml", t.stack));
        Deviations::parse(t.deviations, &origin).expect("parses");
        assert!(
            crate::fuzz::target(t.name).is_some(),
            "{} is a fuzz target",
            t.name
        );
    }
}

#[test]
fn every_seed_is_a_scenario_the_vocabulary_holds() {
    let seeds = seeds::seeds(&[]);
    assert_eq!(seeds.len(), 2 * 11 * 10);
    for (name, bytes) in &seeds {
        let s = input::decode(bytes, ProfileName::Rfc);
        assert_eq!(input::encode(&s).as_ref(), Some(bytes), "{name}");
    }
}

#[test]
fn a_finding_the_matrix_shows_is_told_from_one_beyond_it() {
    // The SYN in ESTABLISHED is a matrix cell; a CLOSE in SYN-SENT is no cell.
    let cell = matrix_cell(&SMOLTCP, &with(&[0x00, 0x02])).expect("a matrix cell");
    assert!(cell.starts_with("v4 ESTABLISHED Syn seq RcvNxt"), "{cell}");
    let close_in_syn_sent = [0x00, 0x01, 0x81, 0x85];
    if let (_, Verdict::Disagreed(_)) = judge(&SMOLTCP, &close_in_syn_sent) {
        assert_eq!(matrix_cell(&SMOLTCP, &close_in_syn_sent), None);
    }
    assert_eq!(
        matrix_cell(&SMOLTCP, ESTABLISHED),
        None,
        "no finding, no cell"
    );
}
