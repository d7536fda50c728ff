//! The lwIP target (`--target lwip`): lwIP 2.1.3 from Debian's liblwip0, driven by
//! `netconform-agent-lwip` on a tap (agents/lwip.rs).
//!
//! A small certification with exact verdicts (docs/findings-lwip.md analyses the whole
//! run): what passes, which RFC violation fails with which difference, what lwIP cannot do
//! (UNSUPPORTED, never FAIL). Then the robustness of the driving: an lwIP that aborts
//! mid-check is an ERROR quoting its stderr, and nothing is left running. The slow tier
//! (`--ignored`, ci/test-slow) waits out lwIP's TIME-WAIT, 2·TCP_MSL = 120 s of wall clock.
//!
//! Needs liblwip-dev at build time (ci/deps installs it); without it the agent is built
//! without lwIP and the first test says so.

use std::path::Path;
use std::time::{Duration, Instant};

use netconform::dut::external::ExternalStack;
use netconform::dut::{
    CallOutcome, Dut, DutError, Family, SocketCall, SocketId, Sockets, StateAnswer, StateQuery,
    Tables, TcpState,
};
use netconform::engine::runner::{Quiet, run_checks};
use netconform::engine::{CheckReport, CheckSpec, Needs, Verdict};
use netconform::suites::tcp::scenario::ProfileName;

#[macro_use]
mod common;
use common::one_at_a_time;

const AGENT: &str = env!("CARGO_BIN_EXE_netconform-agent-lwip");

fn lwip_installed() {
    let found = std::process::Command::new("pkg-config")
        .args(["--exists", "lwip"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "liblwip-dev is not installed (apt-get install liblwip-dev; ci/deps installs it), so netconform-agent-lwip has no lwIP"
    );
}

fn config() -> netconform::dut::external::ExternalConfig {
    netconform::dut::lwip::config_with(
        Path::new(AGENT),
        Some(netconform::dut::lwip::profile().expect("profiles/lwip.toml")),
    )
}

fn lwip(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    Ok(Box::new(ExternalStack::new(&config(), &spec.needs)?))
}

fn certify(ids: &[&str]) -> Vec<CheckReport> {
    let checks: Vec<CheckSpec> = ids.iter().map(|id| common::spec(id)).collect();
    run_checks("lwip", &checks, &lwip, 2, ProfileName::Rfc, &Quiet).checks
}

fn verdict<'a>(reports: &'a [CheckReport], id: &str) -> &'a Verdict {
    &reports
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no report for {id}"))
        .verdict
}

fn failure(reports: &[CheckReport], id: &str) -> (String, Vec<String>) {
    match verdict(reports, id) {
        Verdict::Fail { step, differences } => (step.clone(), differences.clone()),
        other => panic!("{id}: expected FAIL, got {other:?}"),
    }
}

/// No agent of ours is left running (each lwIP lives only as long as its check).
fn no_agent_left() {
    let ours = std::process::id().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).ok()?;
            // ppid is the 4th field of /proc/PID/stat, after the parenthesised name.
            let ppid = stat.rsplit(") ").next()?.split(' ').nth(1)?.to_string();
            (cmd.contains("netconform-agent-lwip") && ppid == ours).then_some(cmd)
        })
        .collect();
    assert!(left.is_empty(), "agents left running: {left:?}");
}

/// The fixed subset: every verdict exact.
#[test]
fn a_small_certification_gives_exact_verdicts() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let started = Instant::now();
    let reports = certify(&[
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.closed-port.syn",
        "tcp.matrix.v4.established",
        "tcp.timer.user-timeout",
        "tcp.timer.zero-window",
        "arp.resolve-neighbour",
        "arp.malformed",
        "route.lookup.fixed-table",
    ]);
    for r in &reports {
        eprintln!("{} {:?}", r.id, r.verdict);
    }
    // The handshake without SACK or timestamps (lwIP offers neither; the SYN-ACK is judged
    // by what the stack says it offers), both ways of closing.
    assert_eq!(
        *verdict(&reports, "tcp.passive-open.active-close"),
        Verdict::Pass
    );
    assert_eq!(
        *verdict(&reports, "tcp.passive-open.passive-close"),
        Verdict::Pass
    );
    assert_eq!(*verdict(&reports, "tcp.closed-port.syn"), Verdict::Pass);
    // RFC 5961 §5.2 / RFC 9293 §3.10.7.4: an ACK beyond SND.NXT is answered with an ACK
    // and dropped; lwIP does that, but also acknowledges acceptable segments the model
    // drops in silence, and 17 cells of the ESTABLISHED row disagree.
    let (step, differences) = failure(&reports, "tcp.matrix.v4.established");
    assert_eq!(step, "ESTABLISHED row of the matrix");
    assert_eq!(
        differences[0],
        "17 of 96 cells disagree with the Rfc profile"
    );
    // The first zero-window probe is the whole unsent segment (100 bytes, with PSH), not
    // one octet: RFC 9293 §3.8.6.1 asks for "at least one octet of new data".
    let (step, differences) = failure(&reports, "tcp.timer.zero-window");
    assert_eq!(step, "zero-window probe 1 (zero-window probe)");
    assert_eq!(differences[0], "tcp.flags: expected ., observed P.");
    assert!(
        differences[1].starts_with("tcp.payload: expected 1 bytes \"z\", observed 100 bytes"),
        "{differences:?}"
    );
    // ARP and the route lookup run against profiles/lwip.toml: the queued packet goes
    // out once the peer answers; the lookup's next hops are the route model's.
    assert_eq!(*verdict(&reports, "arp.resolve-neighbour"), Verdict::Pass);
    assert_eq!(
        *verdict(&reports, "route.lookup.fixed-table"),
        Verdict::Pass
    );
    // A request from the limited broadcast address is answered (RFC 826's reception
    // checks; RFC 1122 §3.2.1.3: a broadcast address is never a source).
    let (step, differences) = failure(&reports, "arp.malformed");
    assert_eq!(
        step,
        "step 7 (p0 sends a bad ARP request: SenderIpBroadcast)"
    );
    assert!(
        differences[0].contains("ARP reply 10.77.0.2 is-at <own MAC> to 255.255.255.255"),
        "{differences:?}"
    );
    // What lwIP has no interface for.
    for (id, why) in [("tcp.timer.user-timeout", "lwIP 2.1 has no such option")] {
        match verdict(&reports, id) {
            Verdict::Unsupported { reason } => assert!(reason.contains(why), "{id}: {reason}"),
            other => panic!("{id}: expected UNSUPPORTED, got {other:?}"),
        }
    }
    no_agent_left();
    eprintln!("the subset took {:?}", started.elapsed());
}

/// The state lwIP reports is its own: a listener and an established connection, held by
/// the harness's ids, with the bytes lwIP has not handed to the application yet.
#[test]
fn lwip_reports_its_pcbs_and_arp_table() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let mut target = ExternalStack::new(&config(), &Needs::scenario(false)).expect("lwIP");
    let e = target.endpoints().clone();
    let listen = SocketCall::Listen {
        sock: SocketId(1),
        family: Family::Ipv4,
        addr: None,
        port: 7000,
        backlog: 4,
    };
    assert_eq!(target.call(&listen).unwrap(), CallOutcome::Ok);
    let StateAnswer::TcpSockets(sockets) = target.query(&StateQuery::TcpSockets).unwrap() else {
        panic!("not a socket list");
    };
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert_eq!(sockets[0].state, TcpState::Listen);
    assert_eq!(sockets[0].local.port(), 7000);
    assert_eq!(sockets[0].sock, Some(SocketId(1)));
    // The peer was pre-resolved (a scenario's needs): lwIP's ARP table has it, stable.
    let StateAnswer::Neighbours(neighbours) = target.query(&StateQuery::Neighbours).unwrap() else {
        panic!("not a neighbour list");
    };
    assert_eq!(neighbours.len(), 1, "{neighbours:?}");
    assert_eq!(
        neighbours[0].dst,
        std::net::IpAddr::V4(e.peer_ipv4.unwrap())
    );
    assert_eq!(neighbours[0].lladdr, Some(e.harness_mac));
    // The route lookup is lwIP's own: the peer is on the link, from the stack's address.
    match target
        .query(&StateQuery::RouteGet(e.peer_ipv4.unwrap().into()))
        .unwrap()
    {
        StateAnswer::Route { lookup, .. } => {
            assert_eq!(lookup.gateway, None);
            assert_eq!(lookup.src, Some(e.stack_ipv4.unwrap().0.into()));
        }
        other => panic!("{other:?}"),
    }
    // Negative control: a socket the harness does not hold is an error, not a state.
    assert!(matches!(
        target.query(&StateQuery::TcpInfo(SocketId(9))),
        Err(DutError::Io { .. })
    ));
}

/// lwIP killed by an abort (what its LWIP_ASSERT does) in the middle of a check: the
/// next request is `Gone` with the signal, and dropping the target leaves nothing.
#[test]
fn an_aborting_lwip_is_an_error_and_leaves_nothing() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let mut target = ExternalStack::new(&config(), &Needs::IPV4).expect("lwIP");
    let pid = target.agent_pid();
    let namespace = target.lab().target().name().to_string();
    // SAFETY: the agent is our child (we have not reaped it), so its pid is its own.
    unsafe { libc::kill(pid as i32, libc::SIGABRT) };
    let err = target
        .call(&SocketCall::Socket {
            sock: SocketId(1),
            family: Family::Ipv4,
        })
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DutError::Gone { .. }), "{text}");
    assert!(text.contains("SIGABRT"), "{text}");
    assert!(
        text.contains("lwIP up on"),
        "the stderr tail is quoted: {text}"
    );
    drop(target);
    assert!(
        !Path::new("/proc").join(pid.to_string()).exists(),
        "the agent {pid} is still there"
    );
    assert!(
        !Path::new("/run/netns").join(&namespace).exists(),
        "namespace {namespace} left behind"
    );
    no_agent_left();
}

/// The slow tier: lwIP keeps a connection in TIME-WAIT for 2·TCP_MSL (TCP_MSL is 60 s in
/// lwIP 2.1, `lwip/priv/tcp_priv.h`), on its wall clock.
#[test]
#[ignore = "slow tier: lwIP's TIME-WAIT lasts 120 s of wall clock"]
fn time_wait_lasts_two_msl() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    use netconform::engine::Session;
    use netconform::models::tcp::State;
    use netconform::suites::tcp::matrix::path_to;
    use netconform::suites::tcp::scenario::{TcpScenario, run_scenario};
    let mut target = ExternalStack::new(&config(), &Needs::scenario(false)).expect("lwIP");
    let scenario = TcpScenario {
        name: "to TIME-WAIT".into(),
        profile: ProfileName::Rfc,
        ipv6: false,
        peer_mss: Some(1460),
        events: path_to(State::TimeWait),
    };
    let port = 6000;
    {
        let mut session = Session::with_profile(&mut target, ProfileName::Rfc);
        run_scenario(&mut session, &scenario, port).expect("reach TIME-WAIT");
    }
    let entered = Instant::now();
    let in_time_wait = |target: &mut ExternalStack| {
        let StateAnswer::TcpSockets(sockets) = target.query(&StateQuery::TcpSockets).unwrap()
        else {
            panic!("not a socket list");
        };
        sockets
            .iter()
            .any(|s| s.local.port() == port && s.state == TcpState::TimeWait)
    };
    assert!(in_time_wait(&mut target), "not in TIME-WAIT");
    while in_time_wait(&mut target) {
        assert!(
            entered.elapsed() < Duration::from_secs(135),
            "still in TIME-WAIT after {:?}",
            entered.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let lasted = entered.elapsed();
    // lwIP's slow timer ticks every 500 ms and counts from the last segment it received.
    assert!(
        lasted >= Duration::from_millis(119_000) && lasted <= Duration::from_millis(121_500),
        "TIME-WAIT lasted {lasted:?}, lwIP's 2·TCP_MSL is 120 s"
    );
}

/// lwIP with its TCP configuration hidden: the harness then takes it for Linux's (SACK
/// and timestamps offered, TTL 64), and the passive open fails on exactly that. The
/// negative control of `tcp_config`: the configuration the agent declares is what lets
/// the check pass.
struct AsIfLinux(ExternalStack);

impl Dut for AsIfLinux {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn endpoints(&self) -> &netconform::dut::Endpoints {
        self.0.endpoints()
    }
    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        self.0.link()
    }
    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }
    fn tables(&mut self) -> Option<&mut dyn Tables> {
        self.0.tables()
    }
}

impl Sockets for AsIfLinux {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.0.call(call)
    }
    // tcp_config: the default, Linux's.
}

#[test]
fn the_declared_tcp_configuration_is_what_passes() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let factory = |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(AsIfLinux(ExternalStack::new(
            &config(),
            &spec.needs,
        )?)))
    };
    let report = netconform::engine::runner::run_one(
        &common::spec("tcp.passive-open.active-close"),
        &factory,
        ProfileName::Rfc,
    );
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!("expected FAIL, got {:?}", report.verdict);
    };
    assert_eq!(step, "stack answers the SYN (SYN-ACK)");
    assert!(
        differences
            .iter()
            .any(|d| d == "ip.ttl: expected 64, observed 255"),
        "{differences:?}"
    );
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("tcp.option.sackOK")),
        "{differences:?}"
    );
}

/// Runs `id` against lwIP with its declared fixed behaviour edited by `edit`.
fn run_declaring(
    id: &str,
    edit: &(dyn Fn(&mut netconform::dut::fixed::FixedBehaviour) + Sync),
) -> CheckReport {
    let mut fixed = (*netconform::dut::lwip::profile().expect("profiles/lwip.toml")).clone();
    edit(&mut fixed);
    let config = netconform::dut::lwip::config_with(Path::new(AGENT), Some(fixed.into()));
    let factory = move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(ExternalStack::new(&config, &spec.needs)?))
    };
    netconform::engine::runner::run_one(&common::spec(id), &factory, ProfileName::Rfc)
}

fn waiting_dropped(f: &mut netconform::dut::fixed::FixedBehaviour) {
    let arp = f.arp.as_mut().expect("[arp]");
    arp.waiting_packet
        .as_mut()
        .expect("[arp.waiting_packet]")
        .policy = netconform::dut::fixed::WaitingPolicy::Drop;
}

/// profiles/lwip.toml is checked by the exchange: the ARP checks and the route check pass
/// with it, and a wrong value fails them on the wire.
#[test]
fn a_wrong_declaration_fails_on_the_wire() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    // lwIP queues the packet that waits for ARP (ARP_QUEUEING): declared dropped, the echo
    // reply it sends once the peer answers is one the model did not expect.
    let (step, differences) =
        common::failure(&run_declaring("arp.resolve-neighbour", &waiting_dropped));
    assert!(step.starts_with("step 1"), "{step}: {differences:?}");
    assert!(
        differences.iter().any(|d| d.contains("unexpected")),
        "{differences:?}"
    );
    // lwIP's requests name no target hardware address (zero), not the broadcast address.
    let (step, differences) = common::failure(&run_declaring("arp.cache-hit", &|f| {
        f.arp
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .target_mac = "ff:ff:ff:ff:ff:ff".into();
    }));
    assert!(step.starts_with("step 1"), "{step}: {differences:?}");
    assert!(
        differences
            .iter()
            .any(|d| d.contains("target MAC 00:00:00:00:00:00")),
        "{differences:?}"
    );
    // The route lookup on the wire: declared dropping, the queued echo reply is read as
    // the answer to the second ping, a wrong next hop.
    let (_, differences) =
        common::failure(&run_declaring("route.lookup.fixed-table", &waiting_dropped));
    assert!(
        differences.iter().any(|d| d.starts_with("route ")),
        "{differences:?}"
    );
    // The declaration as shipped passes the same checks.
    for id in [
        "arp.resolve-neighbour",
        "arp.cache-hit",
        "route.lookup.fixed-table",
    ] {
        common::assert_pass(&run_declaring(id, &|_| {}));
    }
    no_agent_left();
}

/// lwIP has no `TCP_SYNCNT`: `tcp.timer.syn-retransmission` runs against the declared
/// `TCP_SYNMAXRTX` (profiles/lwip.toml `[tcp] syn_retries`) and finds the first SYN
/// retransmission at about 2.75 s (lwIP's initial RTO of 3 s on its 500 ms slow timer), not
/// 1 s. Negative control: without the declaration the check is unsupported, naming what
/// lwIP lacks.
#[test]
fn the_syn_check_runs_against_the_declared_syn_retries() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let r = run_declaring("tcp.timer.syn-retransmission", &|_| {});
    let (step, differences) = common::failure(&r);
    assert_eq!(step, "retransmission 1 of the SYN", "{differences:?}");
    assert!(
        differences[0].starts_with("expected at 1000 ms (window 996..=1100 ms), observed at 27"),
        "{differences:?}"
    );
    assert!(
        r.trace_text().contains("fixed SYN retries") && r.trace_text().contains("): 6 ("),
        "{}",
        r.trace_text()
    );
    let r = run_declaring("tcp.timer.syn-retransmission", &|f| f.tcp = None);
    match &r.verdict {
        Verdict::Unsupported { reason } => {
            assert!(reason.contains("lwIP 2.1 has no such option"), "{reason}")
        }
        other => panic!("without [tcp] syn_retries: expected UNSUPPORTED, got {other:?}"),
    }
    no_agent_left();
}

/// The timer declaration (a pending request every 1 s tick, the entry dropped on the 5th)
/// against the wall clock: an unanswered resolution. Slow tier: the scenario's waits scale
/// to lwIP's 300 s entry lifetime.
#[test]
#[ignore = "slow tier: the ARP timer checks wait out lwIP's 300 s entry lifetime"]
fn the_declared_arp_timers_are_what_lwip_does() {
    require_netns!();
    lwip_installed();
    let _one = one_at_a_time();
    let (step, differences) = common::failure(&run_declaring("arp.unicast-poll-fails", &|f| {
        f.arp
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .max_pending_ticks = Some(3);
    }));
    assert!(
        differences.iter().any(|d| d.contains("who-has")),
        "{step}: {differences:?}"
    );
    common::assert_pass(&run_declaring("arp.unicast-poll-fails", &|_| {}));
    no_agent_left();
}
