//! The smoltcp target: the TCP checks of the catalogue run unchanged against smoltcp
//! 0.14 in-process, on a virtual clock (no namespaces, no privileges, no real waiting).
//!
//! The verdicts asserted here are the ones analysed in the smoltcp report: what passes,
//! which deviations fail and with which difference, and what smoltcp cannot do
//! (UNSUPPORTED, never FAIL). `netconform certify --target smoltcp -v [--profile linux]`
//! prints every verdict and ladder; its report.html and report.json hold every difference.

#[macro_use]
mod common;

use netconform::dut::smoltcp::{SmoltcpHost, smoltcp_config_for};
use netconform::dut::{CallOutcome, Dut, DutError, SocketCall};
use netconform::dut::{Link, Sockets};
use netconform::engine::runner::{run_checks, run_one};
use netconform::engine::{CheckReport, CheckSpec, Verdict};
use netconform::suites::tcp::scenario::ProfileName;

use common::spec;

fn smoltcp(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    Ok(Box::new(SmoltcpHost::new(smoltcp_config_for(&spec.needs))?))
}

fn run(id: &str) -> CheckReport {
    run_one(&spec(id), &smoltcp, ProfileName::Rfc)
}

#[test]
fn peer_preresolved_needs_no_arp() {
    use netconform::wire::{Frame, Icmpv4Message};
    let mut target = host();
    let e = target.endpoints().clone();
    let ping = Frame::icmpv4(
        e.harness_mac,
        e.stack_mac,
        e.peer_ipv4.unwrap(),
        e.stack_ipv4.unwrap().0,
        Icmpv4Message::echo_request(1, 1, b"x".to_vec()),
    );
    target.send_frame(&ping.emit()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    let first = target.recv_frame(deadline).unwrap().expect("an answer");
    let summary = Frame::parse(&first).unwrap().summary();
    assert!(summary.contains("ICMP echo reply"), "{summary}");
    assert_eq!(target.recv_frame(deadline).unwrap(), None);
}

/// Every `tcp.` check of the catalogue on smoltcp, under the RFC profile.
fn tcp_summary() -> netconform::engine::RunSummary {
    let checks: Vec<CheckSpec> = netconform::suites::catalogue()
        .into_iter()
        .filter(|c| c.id.starts_with("tcp."))
        .collect();
    run_checks(
        "smoltcp",
        &checks,
        &smoltcp,
        2,
        ProfileName::Rfc,
        &netconform::engine::runner::Quiet,
    )
}

/// A fresh smoltcp host whose peer is pre-resolved (what a TCP scenario gets).
fn host() -> SmoltcpHost {
    SmoltcpHost::new(smoltcp_config_for(&netconform::engine::Needs::scenario(
        false,
    )))
    .unwrap()
}

/// Listens on the stack's port 8080 (listener s1, backlog 1) and completes the peer's
/// handshake from port 40000: SYN, the SYN-ACK compared, ACK. Returns the peer's flow.
fn handshake(s: &mut netconform::engine::Session<'_>) -> netconform::suites::tcp::basic::TcpFlow {
    use netconform::dut::{Family, SocketId};
    use netconform::wire::TcpFlags;
    let stack = s.ipv4().unwrap().stack;
    s.call_expect(
        "listen",
        SocketCall::Listen {
            sock: SocketId(1),
            family: Family::Ipv4,
            addr: Some(std::net::IpAddr::V4(stack)),
            port: 8080,
            backlog: 1,
        },
        &CallOutcome::Ok,
    )
    .unwrap();
    let mut flow =
        netconform::suites::tcp::basic::TcpFlow::new(s, 40_000, 8080, 1_000_000).unwrap();
    flow.send(s, "SYN", flow.syn()).unwrap();
    let syn_ack = flow.expect("SYN-ACK", TcpFlags::SYN | TcpFlags::ACK, &[]);
    flow.expect_segment(s, "SYN-ACK", &syn_ack).unwrap();
    flow.send(s, "ACK", flow.segment(TcpFlags::ACK, &[]))
        .unwrap();
    flow
}

fn assert_fails_with(report: &CheckReport, step: &str, difference: &str) {
    let (got_step, differences) = common::failure(report);
    assert!(got_step.starts_with(step), "{}: step {got_step}", report.id);
    assert!(
        differences.iter().any(|d| d.contains(difference)),
        "{}: {differences:?}",
        report.id
    );
}

fn assert_unsupported(report: &CheckReport, reason: &str) {
    match &report.verdict {
        Verdict::Unsupported { reason: r } => assert!(r.contains(reason), "{}: {r}", report.id),
        other => panic!("{}: expected UNSUPPORTED, got {other:?}", report.id),
    }
}

/// The TCP checks under the RFC profile: the end-to-end and timer checks pass on the
/// virtual clock, the matrix rows find smoltcp's deviations, and what smoltcp cannot do is
/// UNSUPPORTED, never a failure.
#[test]
fn tcp_checks_under_the_rfc_profile() {
    let v: std::collections::BTreeMap<&str, CheckReport> = tcp_summary()
        .checks
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    for id in [
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.timer.zero-window",
        "tcp.timer.data-retransmission",
        "tcp.timer.user-timeout",
    ] {
        common::assert_pass(&v[id]);
    }
    // smoltcp drops the RST it owes the SYN while it resolves the peer, and does not send
    // it once the ARP reply is in (RFC 1122 §2.3.2.2 SHOULD keep one packet).
    assert_fails_with(
        &v["tcp.closed-port.syn"],
        "stack refuses the SYN",
        "nothing arrived within 1000.000 ms",
    );
    assert_unsupported(&v["tcp.timer.keepalive"], "TCP_KEEPCNT");
    assert_unsupported(&v["tcp.timer.syn-retransmission"], "TCP_SYNCNT");
    assert_unsupported(
        &v["tcp.timer.synack-retransmission"],
        "net.ipv4.tcp_synack_retries = 1",
    );
    for family in ["v4", "v6"] {
        // SYN+FIN is dropped in LISTEN and draws no RST in CLOSED.
        assert_fails_with(
            &v[format!("tcp.matrix.{family}.listen").as_str()],
            "LISTEN row",
            "SynFin seq RcvNxt: event 2 of 2",
        );
        assert_fails_with(
            &v[format!("tcp.matrix.{family}.closed").as_str()],
            "CLOSED row",
            "SynFin seq RcvNxt: event 1 of 1",
        );
        // An unacceptable ACK in SYN-SENT draws no RST (RFC 9293 §3.10.7.3).
        assert_fails_with(
            &v[format!("tcp.matrix.{family}.syn-sent").as_str()],
            "SYN-SENT row",
            "[unacceptable ACK in SYN-SENT], the stack sent nothing",
        );
        // Text after the peer's FIN is acknowledged (RFC 9293 §3.10.7.4: ignore it), after
        // smoltcp's 10 ms ACK delay: seen in the cell's quiet period.
        assert_fails_with(
            &v[format!("tcp.matrix.{family}.close-wait").as_str()],
            "",
            "CLOSE-WAIT Data seq RcvNxt ack Nxt: quiet period after the last event: the stack \
             sent . 1:1(0) ack 12 10.000 ms after the last event",
        );
        // A SYN in a synchronized state is dropped without a challenge ACK.
        for state in ["fin-wait-1", "close-wait", "time-wait"] {
            assert_fails_with(
                &v[format!("tcp.matrix.{family}.{state}").as_str()],
                "",
                "[challenge ACK (SYN in a synchronized state)], the stack sent nothing",
            );
        }
        // A segment straddling the right edge of the receive window trips smoltcp's
        // `debug_assert!(len_written == payload_len)` (socket/tcp.rs): the target reports
        // the panic and stays dead. The row still fails with the disagreements of the cells
        // before it, and says which cell the panic stopped and that the later ones could
        // not run.
        if cfg!(debug_assertions) {
            for state in ["syn-received", "established"] {
                let r = &v[format!("tcp.matrix.{family}.{state}").as_str()];
                let (_, differences) = common::failure(r);
                assert!(
                    differences[0].contains("cells disagree with the Rfc profile; ")
                        && differences[0].ends_with(" could not run"),
                    "{}: {}",
                    r.id,
                    differences[0]
                );
                assert!(
                    differences
                        .iter()
                        .any(|d| d.contains(" Data seq WindowEndMinus1 ")
                            && d.contains(": could not run: event ")
                            && d.ends_with(
                                "target gone: smoltcp panicked: assertion failed: \
                             len_written == payload_len"
                            )),
                    "{}: {differences:?}",
                    r.id
                );
                assert!(
                    differences.iter().any(|d| d.starts_with("the ")
                        && d.ends_with("were not run: the DUT failed there")),
                    "{}: {differences:?}",
                    r.id
                );
            }
        }
    }
    for r in v.values() {
        if let Verdict::Unsupported { reason } = &r.verdict {
            assert!(!reason.is_empty(), "{}", r.id);
        }
    }
}

/// The environment names the smoltcp version the verdicts hold for.
#[test]
fn environment_names_the_version() {
    assert_eq!(
        run("tcp.closed-port.syn")
            .environment
            .first()
            .map(String::as_str),
        Some("smoltcp version = 0.14.0")
    );
}

/// One deterministic trace on the virtual clock, locked with its times: the handshake, data
/// the peer never acknowledges (smoltcp retransmits after 1000 ms, then 2000 ms, then
/// 4000 ms: RTO 1 s, doubled on every expiry), the close, and TIME-WAIT, which smoltcp
/// ends after 10 s. The whole run costs no real time.
#[test]
fn virtual_clock_trace() {
    use netconform::dut::{SocketId, TcpState};
    use netconform::engine::Session;
    use netconform::time::Duration;
    use netconform::wire::TcpFlags;

    let mut target = host();
    let mut s = Session::with_profile(&mut target, ProfileName::Rfc);
    let listener = SocketId(1);
    let mut flow = handshake(&mut s);
    let CallOutcome::NewSocket(conn) = s
        .call(
            "accept",
            SocketCall::Accept {
                listener,
                timeout_ms: 1000,
            },
        )
        .unwrap()
    else {
        panic!("no connection");
    };
    let data = vec![b'd'; 100];
    s.call_expect(
        "send",
        SocketCall::Send {
            sock: conn,
            data: data.clone(),
        },
        &CallOutcome::Sent(100),
    )
    .unwrap();
    let expected = flow.expect("data", TcpFlags::PSH | TcpFlags::ACK, &data);
    flow.expect_segment(&mut s, "data", &expected).unwrap();
    let sent = s.now();
    let mut at = Vec::new();
    for k in 0..3 {
        s.expect(
            &format!("retransmission {k}"),
            Duration::from_millis(10_000),
            &expected,
        )
        .unwrap();
        at.push(s.now().saturating_since(sent).total_millis());
    }
    assert_eq!(at, [1000, 3000, 7000]);
    flow.send(&mut s, "ACK of the data", flow.segment(TcpFlags::ACK, &[]))
        .unwrap();
    s.call_expect("close", SocketCall::Close { sock: conn }, &CallOutcome::Ok)
        .unwrap();
    let fin = flow.expect("FIN", TcpFlags::FIN | TcpFlags::ACK, &[]);
    flow.expect_segment(&mut s, "FIN", &fin).unwrap();
    flow.send(
        &mut s,
        "FIN-ACK",
        flow.segment(TcpFlags::FIN | TcpFlags::ACK, &[]),
    )
    .unwrap();
    let ack = flow.expect("ACK of the FIN", TcpFlags::ACK, &[]);
    flow.expect_segment(&mut s, "ACK of the FIN", &ack).unwrap();
    s.expect_tcp_state("TIME-WAIT", 8080, 40_000, Some(TcpState::TimeWait))
        .unwrap();
    let entered = s.now();
    // The listener waits 11 s for a connection: time passes on the virtual clock.
    s.call_expect(
        "wait",
        SocketCall::Accept {
            listener,
            timeout_ms: 11_000,
        },
        &CallOutcome::TimedOut,
    )
    .unwrap();
    assert_eq!(s.now().saturating_since(entered).total_millis(), 11_000);
    s.expect_tcp_state("TIME-WAIT is over", 8080, 40_000, None)
        .unwrap();
    let names = s.host_names().clone();
    let trace = s.into_trace().render(&names);
    insta::assert_snapshot!("virtual_clock_trace", trace);
}

/// Garbage and truncated frames never take the harness down: smoltcp gets thousands of
/// them, then a check still runs on the same target and passes.
#[test]
fn garbage_frames_never_panic_the_harness() {
    let factory = |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        let mut target = SmoltcpHost::new(smoltcp_config_for(&spec.needs))?;
        let e = target.endpoints().clone();
        // xorshift64: deterministic bytes, the same on every run.
        let mut state: u64 = 0x5eed_5eed_5eed_5eed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let syn = netconform::wire::Frame::tcp_v4(
            e.harness_mac,
            e.stack_mac,
            e.peer_ipv4.unwrap(),
            e.stack_ipv4.unwrap().0,
            netconform::wire::TcpSegment::new(40_000, 8080, 1, 0, netconform::wire::TcpFlags::SYN),
        )
        .emit();
        let mut frames: Vec<Vec<u8>> = (0..syn.len()).map(|n| syn[..n].to_vec()).collect();
        for _ in 0..2000 {
            let mut f = syn.clone();
            let len = (next() % 128) as usize;
            f.resize(len.max(14), 0);
            // Keep the Ethernet header (so smoltcp parses further) half of the time.
            let from = if next() % 2 == 0 { 14 } else { 0 };
            f[from..].iter_mut().for_each(|b| *b = next() as u8);
            frames.push(f);
        }
        for f in &frames {
            match target.send_frame(f) {
                Ok(()) | Err(DutError::Gone { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let deadline = std::time::Instant::now();
        while target.recv_frame(deadline)?.is_some() {}
        Ok(Box::new(target))
    };
    let report = run_one(
        &spec("tcp.passive-open.passive-close"),
        &factory,
        ProfileName::Rfc,
    );
    common::assert_pass(&report);
}

/// A panic inside smoltcp becomes `DutError::Gone`, and the target stays dead.
#[cfg(debug_assertions)]
#[test]
fn a_smoltcp_panic_is_gone_and_stays_gone() {
    use netconform::dut::SocketId;
    use netconform::engine::Session;
    use netconform::wire::TcpFlags;

    let mut target = host();
    {
        let mut s = Session::with_profile(&mut target, ProfileName::Rfc);
        let flow = handshake(&mut s);
        // Ten bytes starting at the last octet of the 65536-byte receive window.
        let mut straddling = flow.segment(TcpFlags::PSH | TcpFlags::ACK, &[b'x'; 10]);
        straddling.seq = straddling.seq.wrapping_add(65_535);
        let err = s
            .send("straddling segment", &flow.frame(straddling))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("target gone: smoltcp panicked: assertion failed"),
            "{err}"
        );
    }
    let again = target.call(&SocketCall::Close { sock: SocketId(1) });
    assert!(
        matches!(&again, Err(DutError::Gone { what }) if what.starts_with("smoltcp panicked")),
        "{again:?}"
    );
}

/// The reviewed deviation file netconform ships for smoltcp still matches what smoltcp
/// does: every entry accepts a failure of a run of the TCP and ARP checks (none is stale),
/// and nothing it accepts is an RFC MUST (policy entries only).
#[test]
fn shipped_deviations_are_not_stale() {
    use netconform::report::{Deviations, Report};
    let checks: Vec<CheckSpec> = netconform::suites::catalogue()
        .into_iter()
        .filter(|c| c.id.starts_with("tcp.") || c.id.starts_with("arp."))
        .collect();
    let summary = run_checks(
        "smoltcp",
        &checks,
        &smoltcp,
        2,
        ProfileName::Rfc,
        &netconform::engine::runner::Quiet,
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deviations/smoltcp.toml");
    let deviations = Deviations::load(&path).expect("deviations/smoltcp.toml loads");
    let ids: Vec<&str> = netconform::suites::catalogue()
        .iter()
        .map(|c| c.id)
        .collect();
    deviations
        .check_ids(&ids)
        .expect("every entry names a check");
    let report = Report::build(&summary, &deviations);
    assert_eq!(
        report.counts.stale, 0,
        "stale entries: {:?}",
        report.stale_deviations
    );
    assert!(report.counts.accepted >= 1, "{:?}", report.counts);
    assert!(report.counts.fail >= 1, "the RFC violations stay failures");
}

/// A failing matrix row's counterexample is one scenario, shrunk on fresh smoltcp targets
/// to fewer events than the cell had, and `netconform replay`'s file (the scenario JSON)
/// fails again on a fresh target.
#[test]
fn matrix_counterexample_is_shrunk_and_replays() {
    use netconform::engine::Counterexample;
    use netconform::engine::Session;
    use netconform::suites::tcp::scenario::{TcpScenario, TcpScenarioRun, run_scenario};
    let report = run("tcp.matrix.v4.last-ack");
    assert_eq!(report.verdict.label(), "FAIL");
    let Some(Counterexample::Scenario {
        scenario,
        shrunk,
        original_steps: original_events,
    }) = &report.counterexample
    else {
        panic!("no scenario counterexample: {:?}", report.counterexample);
    };
    let Some(TcpScenarioRun {
        scenario,
        peer_port,
    }) = scenario.as_any().downcast_ref::<TcpScenarioRun>()
    else {
        panic!("not a TCP scenario: {scenario:?}");
    };
    assert!(*shrunk, "not shrunk");
    assert!(
        scenario.events.len() < *original_events,
        "{} of {original_events} events",
        scenario.events.len()
    );
    // The report's ladders show the counterexample's own run (one scenario), not the
    // row's trace of 96 scenarios: the highlighted observation is in that run.
    let run = report.counterexample_run.as_ref().expect("the shrunk run");
    assert!(run.failed_at <= run.trace.events.len());
    assert!(run.trace.events.len() < report.trace.events.len());
    let ladders = netconform::report::ladder::ladders(&report).expect("ladders");
    let observed = ladders.observed.rows.len()
        + ladders.observed.elided_before
        + ladders.observed.elided_after;
    assert!(
        observed <= run.trace.events.len() + 1,
        "the ladder has {observed} rows, the counterexample run {} events",
        run.trace.events.len()
    );
    let replay: TcpScenario = serde_json::from_str(
        &report
            .counterexample
            .as_ref()
            .expect("counterexample")
            .replay_json()
            .expect("a scenario has a replay file"),
    )
    .expect("the replay file is a scenario");
    let mut target = host();
    let mut session = Session::with_profile(&mut target, ProfileName::Rfc);
    assert!(
        run_scenario(&mut session, &replay, *peer_port).is_err(),
        "the shrunk scenario passes on a fresh target"
    );
}

/// A fixed-script check that fails keeps its script up to the failing observation as its
/// counterexample: here the SYN the peer sent to a closed port (no replay file; `certify
/// --only` runs it again).
#[test]
fn fixed_check_keeps_its_script() {
    use netconform::engine::Counterexample;
    let report = run("tcp.closed-port.syn");
    assert_eq!(report.verdict.label(), "FAIL");
    let Some(Counterexample::Script { steps }) = &report.counterexample else {
        panic!("no script: {:?}", report.counterexample);
    };
    assert!(
        steps
            .iter()
            .any(|s| s.contains("send") && s.contains(" S ")),
        "no SYN among {steps:?}"
    );
    assert_eq!(report.counterexample.as_ref().unwrap().replay_json(), None);
    assert_eq!(
        report.expected.as_deref(),
        Some("RST-ACK"),
        "{:?}",
        report.expected
    );
}

/// A smoltcp target whose declared fixed behaviour (`profiles/smoltcp.toml`) is changed by
/// `edit` (`None`: nothing declared).
fn declaring(
    edit: impl Fn(&mut netconform::dut::fixed::FixedBehaviour) + Sync,
    declared: bool,
) -> impl Fn(&CheckSpec) -> Result<Box<dyn Dut>, DutError> + Sync {
    move |spec: &CheckSpec| {
        let mut config = smoltcp_config_for(&spec.needs);
        config.fixed = match config.fixed {
            Ok(Some(f)) if declared => {
                let mut f = (*f).clone();
                edit(&mut f);
                Ok(Some(std::sync::Arc::new(f)))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        Ok(Box::new(SmoltcpHost::new(config)?) as Box<dyn Dut>)
    }
}

/// The ARP and route checks, which pin settings smoltcp cannot take, run against its
/// declared fixed behaviour: exactly these verdicts (docs/findings-smoltcp.md).
#[test]
fn arp_and_route_checks_run_against_the_declared_fixed_behaviour() {
    let checks: Vec<CheckSpec> = netconform::suites::catalogue()
        .into_iter()
        .filter(|c| c.id.starts_with("arp.") || c.id.starts_with("route."))
        .collect();
    let v: std::collections::BTreeMap<&str, CheckReport> = run_checks(
        "smoltcp",
        &checks,
        &smoltcp,
        2,
        ProfileName::Rfc,
        &netconform::engine::runner::Quiet,
    )
    .checks
    .into_iter()
    .map(|r| (r.id, r))
    .collect();
    assert_eq!(v.len(), 14);
    for id in [
        "arp.resolve-gateway",
        "arp.cache-hit",
        "arp.unicast-poll",
        "arp.unicast-poll-fails",
        "arp.answers-requests",
        "arp.conflicting-reply",
        "arp.unsolicited-reply",
    ] {
        common::assert_pass(&v[id]);
        let trace = v[id].trace_text();
        assert!(
            trace.contains(
                "ran against smoltcp 0.14.0's fixed ARP behaviour (profiles/smoltcp.toml)"
            ),
            "{id}: {trace}"
        );
    }
    common::assert_pass(&v["route.lookup.fixed-table"]);
    let trace = v["route.lookup.fixed-table"].trace_text();
    assert!(
        trace.contains("35 lookups observed on the wire, 0 disagree"),
        "{trace}"
    );
    assert!(
        trace.contains("left out: unreachable 203.0.113.0/24"),
        "{trace}"
    );
    // The declared drop of a waiting packet, seen on the wire, fails the SHOULD it breaks.
    assert_fails_with(
        &v["arp.resolve-neighbour"],
        "end",
        "rfc1122-2.3.2.2-queue (RFC 1122 §2.3.2.2, SHOULD save",
    );
    // An announcement (request not for smoltcp's address) updates nothing.
    assert_fails_with(
        &v["arp.announcement"],
        "step 3 (p0 pings the stack)",
        "unexpected at 40.0 ms: Local(2) to 10.77.0.1 at 02:6e:63:00:00:01",
    );
    // A probe (sender 0.0.0.0) is not answered.
    assert_fails_with(
        &v["arp.probe"],
        "end",
        "expected ARP reply 10.77.0.2 is-at <own MAC> to 0.0.0.0",
    );
    // The subnet's broadcast address as sender is believed and answered.
    assert_fails_with(
        &v["arp.malformed"],
        "step 8 (p0 sends a bad ARP request: SenderIpSubnetBroadcast)",
        "ARP reply 10.77.0.2 is-at <own MAC> to 10.77.0.255",
    );
    // A zero sender MAC is believed and answered.
    assert_fails_with(
        &v["arp.non-unicast-sender-mac"],
        "step 2 (p1 sends a bad ARP request: SenderMacZero)",
        "to 10.77.0.3 (00:00:00:00:00:00)",
    );
    // A host-only stack: its own reply to a neighbour that never answers; the router's
    // ICMP clause and the queue clause (no packet of this exchange can show waiting) are
    // left out of the report, and the trace says why.
    let r = &v["arp.failed-resolution"];
    common::assert_pass(r);
    let ids: Vec<&str> = r.clauses.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        ["rfc1122-2.3.2.1-flooding"],
        "the clauses judged on a host"
    );
    assert!(
        r.trace_text()
            .contains("not applicable: rfc1812-5.2.7.1-host-unreachable"),
        "{}",
        r.trace_text()
    );
}

/// Negative controls: a declaration smoltcp does not live up to fails the check that
/// exercises it (a lifetime shorter or longer than smoltcp's 60 s, no rate limit, queued
/// waiting packets, a request target MAC of zero).
#[test]
fn a_wrong_declaration_fails_on_the_wire() {
    let run_with =
        |id: &str, edit: &(dyn Fn(&mut netconform::dut::fixed::FixedBehaviour) + Sync)| {
            run_one(&spec(id), &declaring(edit, true), ProfileName::Rfc)
        };
    for lifetime in [30_000, 120_000] {
        let r = run_with("arp.unicast-poll", &move |f| {
            f.arp.as_mut().unwrap().cache.as_mut().unwrap().lifetime_ms = lifetime;
        });
        let (step, differences) = common::failure(&r);
        assert!(
            step.starts_with("cache read"),
            "lifetime {lifetime}: {step}"
        );
        assert!(!differences.is_empty());
    }
    let no_rate_limit = |f: &mut netconform::dut::fixed::FixedBehaviour| {
        f.arp
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .min_interval_ms = 0;
    };
    let zero_target_mac = |f: &mut netconform::dut::fixed::FixedBehaviour| {
        f.arp
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .target_mac = "00:00:00:00:00:00".into();
    };
    // Without the limit of one request per second the model expects a request for the
    // cache read's second ping; so it does after a failed resolution on a host, where the
    // limit bounds what a packet that is never answered costs.
    for (id, peer) in [
        ("arp.unicast-poll-fails", "10.77.0.3"),
        ("arp.failed-resolution", "10.77.0.99"),
    ] {
        assert_fails_with(
            &run_with(id, &no_rate_limit),
            "cache read: p0 pings from another MAC (2 of 2)",
            &format!("expected ARP who-has {peer} tell 10.77.0.2 (broadcast)"),
        );
    }
    let r = run_with("arp.resolve-neighbour", &|f| {
        f.arp
            .as_mut()
            .unwrap()
            .waiting_packet
            .as_mut()
            .unwrap()
            .policy = netconform::dut::fixed::WaitingPolicy::Queue;
    });
    assert_fails_with(&r, "step 2 (wait 20 ms)", "nothing observed");
    for id in ["arp.cache-hit", "arp.failed-resolution"] {
        assert_fails_with(
            &run_with(id, &zero_target_mac),
            "step 1",
            "target MAC ff:ff:ff:ff:ff:ff",
        );
    }
    // The unmodified declaration passes the same checks.
    common::assert_pass(&run_with("arp.failed-resolution", &|_| {}));
    common::assert_pass(&run_with("arp.unicast-poll", &|_| {}));
    common::assert_pass(&run_with("arp.cache-hit", &|_| {}));
}

/// Without a declaration a setting smoltcp cannot take leaves the check unsupported, with a
/// reason naming what to declare.
#[test]
fn undeclared_settings_leave_the_checks_unsupported() {
    let none = declaring(|_| {}, false);
    let r = run_one(&spec("arp.cache-hit"), &none, ProfileName::Rfc);
    assert_unsupported(&r, "declare [arp.policy] in profiles/<target>.toml");
    let r = run_one(&spec("route.lookup.fixed-table"), &none, ProfileName::Rfc);
    assert_unsupported(&r, "smoltcp's lookup (Routes::lookup) is not public");
    // A declared policy without timers names the timers.
    let no_timers = declaring(
        |f| {
            f.arp.as_mut().unwrap().cache = None;
        },
        true,
    );
    let r = run_one(&spec("arp.cache-hit"), &no_timers, ProfileName::Rfc);
    assert_unsupported(
        &r,
        "declare [arp.cache], [arp.requests] and [arp.waiting_packet]",
    );
}
