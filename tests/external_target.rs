//! The external target: a stack behind an agent speaking `netconform-agent/1`.
//!
//! (a) The kernel certified through the reference agent (`netconform-agent-linux`) gets the
//! same verdict as through the built-in Linux target, check by check, over every host-stack
//! check of the catalogue. (b) Misbehaving agents (silent, garbage, wrong version, crashing
//! mid-run; fixtures/agents/) give ERROR verdicts with a reason that names what happened,
//! every check still gets its entry, the run ends, and no namespace or agent process is
//! left behind. (c) A user-space stack on a tap (`kind = "tap"`, fixtures/agents/tap-stack.py)
//! answers ARP and ping through the bridge and the tap with the MAC it is told.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netconform::dut::external::{ConfigError, ExternalConfig, ExternalStack, TAP_STACK_MAC};
use netconform::dut::linux::{LinuxHost, lab_config_for};
use netconform::dut::{
    CallOutcome, Dut, DutError, Family, SocketCall, SocketId, StateAnswer, StateQuery,
};
use netconform::engine::runner::{RunSummary, run_checks};
use netconform::engine::{CheckSpec, Needs, Verdict};
use netconform::suites::catalogue;
use netconform::suites::tcp::scenario::ProfileName;

#[macro_use]
mod common;

const AGENT: &str = env!("CARGO_BIN_EXE_netconform-agent-linux");

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/agents")
        .join(name)
        .display()
        .to_string()
}

/// Writes a configuration for `command` (with `extra` lines in `[agent]`) into a directory
/// of this test's own and reads it back.
fn config(test: &str, command: &[&str], extra: &str) -> ExternalConfig {
    config_with(test, command, extra, true)
}

/// [`config`], the addresses in the kernel or not.
fn config_with(
    test: &str,
    command: &[&str],
    extra: &str,
    kernel_addresses: bool,
) -> ExternalConfig {
    config_of_kind(test, command, extra, "veth", kernel_addresses).unwrap()
}

/// [`config_with`], with the interface `kind`; the configuration error if it is refused.
fn config_of_kind(
    test: &str,
    command: &[&str],
    extra: &str,
    kind: &str,
    kernel_addresses: bool,
) -> Result<ExternalConfig, ConfigError> {
    let dir = std::env::temp_dir().join(format!("ncf-external-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.toml");
    let command: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    let text = format!(
        "[stack]\nname = \"{test}\"\n\n[agent]\ncommand = [{}]\n{extra}\n\n[interface]\nkind = \"{kind}\"\nkernel_addresses = {kernel_addresses}\n",
        command.join(", ")
    );
    std::fs::write(&path, text).unwrap();
    let loaded = ExternalConfig::load(&path);
    // Read once, paths made absolute: the file is not needed again.
    std::fs::remove_dir_all(&dir).ok();
    loaded
}

/// The mark the agents of `test` carry in their environment (`NCF_TEST_MARK`), by which
/// [`Built::leftovers`] finds them: the test and this process, so that the same test run
/// at the same time by another checkout is not taken for a leftover of this one.
fn mark(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// The checks a host stack runs (no switch, router or TLS stack needed).
fn host_checks() -> Vec<CheckSpec> {
    catalogue()
        .into_iter()
        .filter(|c| {
            c.needs.switch.is_none()
                && c.needs.router.is_none()
                && c.needs.uses.contains(&netconform::dut::needs::Uses::Link)
        })
        .collect()
}

/// What a run through agents left behind: the namespaces and agent processes of every
/// target the factory built.
#[derive(Default)]
struct Built {
    namespaces: Mutex<Vec<PathBuf>>,
    agents: Mutex<Vec<u32>>,
}

impl Built {
    fn make(&self, config: &ExternalConfig, needs: &Needs) -> Result<Box<dyn Dut>, DutError> {
        let target = ExternalStack::new(config, needs)?;
        let lab = target.lab();
        let mut ns = self.namespaces.lock().unwrap();
        ns.extend(lab.harness().path().map(Path::to_path_buf));
        ns.extend(lab.target().path().map(Path::to_path_buf));
        self.agents.lock().unwrap().push(target.agent_pid());
        Ok(Box::new(target))
    }

    /// Namespaces still mounted, and agent processes (or processes they started: every one
    /// carries `NCF_TEST_MARK=`[`mark`]`(test)` in its environment) still alive.
    fn leftovers(&self, test: &str) -> (Vec<PathBuf>, Vec<String>) {
        let ns = self
            .namespaces
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.exists())
            .cloned()
            .collect();
        let needle = format!("NCF_TEST_MARK={}", mark(test));
        let mut procs = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.parse::<u32>().is_err() {
                continue;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ
                .split(|&b| b == 0)
                .any(|var| var == needle.as_bytes())
            {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                procs.push(format!(
                    "pid {name}: {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                ));
            }
        }
        (ns, procs)
    }
}

fn run(checks: &[CheckSpec], factory: &netconform::engine::runner::DutFactory<'_>) -> RunSummary {
    run_checks("t", checks, factory, 4, ProfileName::Linux, &quiet)
}

/// Nobody watches the progress of these runs.
fn quiet(_: &netconform::engine::CheckReport) {}

fn linux_factory(spec: &CheckSpec) -> Result<Box<dyn Dut>, DutError> {
    Ok(Box::new(LinuxHost::new(lab_config_for(&spec.needs))?))
}

fn verdict_line(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "PASS".into(),
        Verdict::Fail { step, differences } => format!("FAIL {step}: {differences:?}"),
        Verdict::Unsupported { reason } => format!("UNSUPPORTED {reason}"),
        Verdict::Error { reason } => format!("ERROR {reason}"),
    }
}

/// Most barrier probes the harness may lose on its own (each proven by the stack's receive
/// counter, sent again by the engine and listed with its check) over the two runs of the
/// catalogue before the comparison is not trusted.
const MAX_OWN_LOSS_RETRIES: usize = 2;

/// The checks outside [`host_checks`] a host stack runs all the same: a route lookup asks
/// only the tables plane.
const ALSO_ON_A_HOST: &[&str] = &["route.lookup.fixed-table"];

/// (a) The reference agent and the built-in target give the same verdict on every check of
/// the catalogue, exactly and each run once: every host-stack check passes, the switch,
/// router and TLS checks are unsupported on both (a host stack has one port, no conntrack,
/// no TLS), for the same reason.
#[test]
fn the_reference_agent_certifies_the_kernel_like_the_linux_target() {
    require_netns!();
    let config = config(
        "reference",
        &[AGENT],
        &format!("env = {{ NCF_TEST_MARK = \"{}\" }}", mark("reference")),
    );
    let built = Built::default();
    let external = |spec: &CheckSpec| built.make(&config, &spec.needs);
    let checks = catalogue();
    let started = Instant::now();
    let through_agent = run(&checks, &external);
    let agent_time = started.elapsed();
    let started = Instant::now();
    let built_in = run(&checks, &linux_factory);
    let linux_time = started.elapsed();
    eprintln!(
        "{} checks: through the agent {:.1} s, built-in {:.1} s",
        checks.len(),
        agent_time.as_secs_f64(),
        linux_time.as_secs_f64()
    );

    // Each check runs once on each target and the two verdicts are compared exactly: the
    // label, an unsupported check's reason, a failure's step and differences. Nothing is
    // run again until it agrees. The one retry there is, is the engine's: a barrier probe
    // sent again because the stack's interface provably never received it (the harness's
    // own loss, `Session::MAX_RETRIES` per check), listed with its check; it is shown here,
    // and bounded.
    assert_eq!(through_agent.checks.len(), built_in.checks.len());
    let mut disagreements = Vec::new();
    for (a, b) in through_agent.checks.iter().zip(&built_in.checks) {
        assert_eq!(a.id, b.id);
        if a.verdict != b.verdict {
            disagreements.push(format!(
                "{}:\n  agent:    {}\n  built-in: {}",
                a.id,
                verdict_line(&a.verdict),
                verdict_line(&b.verdict)
            ));
        }
    }
    let retries = |run: &RunSummary| -> Vec<String> {
        run.checks
            .iter()
            .flat_map(|c| c.retries.iter().map(move |r| format!("{}: {r}", c.id)))
            .collect()
    };
    let (agent_retries, linux_retries) = (retries(&through_agent), retries(&built_in));
    eprintln!(
        "own-loss retries (a barrier probe the stack never received, sent again): through \
         the agent {}, built-in {}{}",
        agent_retries.len(),
        linux_retries.len(),
        agent_retries
            .iter()
            .chain(&linux_retries)
            .map(|r| format!("\n  {r}"))
            .collect::<String>()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} verdicts differ:\n{}",
        disagreements.len(),
        through_agent.checks.len(),
        disagreements.join("\n")
    );
    assert!(
        agent_retries.len() + linux_retries.len() <= MAX_OWN_LOSS_RETRIES,
        "the harness lost more than {MAX_OWN_LOSS_RETRIES} of its own barrier probes in the \
         two runs: {agent_retries:?} {linux_retries:?}"
    );
    let (pass, fail, unsupported, error) = through_agent.counts();
    eprintln!(
        "through the agent: {pass} pass, {fail} fail, {unsupported} unsupported, {error} error"
    );
    // Every host check passes (the built-in target agrees, above), and so does the route
    // lookup check (it uses the tables plane only); every other check is unsupported, with
    // the reason compared above.
    let host = host_checks();
    let runs = |id: &str| host.iter().any(|c| c.id == id) || ALSO_ON_A_HOST.contains(&id);
    let unexpected: Vec<String> = through_agent
        .checks
        .iter()
        .filter(|r| match r.verdict {
            Verdict::Pass => !runs(r.id),
            Verdict::Unsupported { .. } => runs(r.id),
            _ => true,
        })
        .map(|r| format!("{} {}", r.id, verdict_line(&r.verdict)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "every host check (and {ALSO_ON_A_HOST:?}) passes through the agent, every other \
         check is unsupported; not so for {} of {}:\n{}",
        unexpected.len(),
        checks.len(),
        unexpected.join("\n")
    );
    assert_eq!(
        (pass, fail, unsupported, error),
        (
            host.len() + ALSO_ON_A_HOST.len(),
            0,
            checks.len() - host.len() - ALSO_ON_A_HOST.len(),
            0
        )
    );
    // The report names the agent.
    let env = &through_agent.checks[0].environment;
    assert!(
        env.iter().any(|l| l.starts_with("agent = linux ")),
        "{env:?}"
    );
    let (ns, procs) = built.leftovers("reference");
    assert!(
        ns.is_empty() && procs.is_empty(),
        "left behind: {ns:?} {procs:?}"
    );
}

/// A few checks that make socket calls and a few that set the ARP policy, for the bad agents
/// (a check that only exchanges frames, such as `tcp.closed-port.syn`, needs no agent after
/// the hello and passes even with a broken one).
fn some_checks() -> Vec<CheckSpec> {
    let ids = [
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.matrix.v6.established",
        "arp.answers-requests",
        "arp.cache-hit",
        "arp.resolve-neighbour",
    ];
    let checks: Vec<CheckSpec> = catalogue()
        .into_iter()
        .filter(|c| ids.contains(&c.id))
        .collect();
    assert_eq!(checks.len(), ids.len());
    checks
}

/// Runs `some_checks` through the agent `command`, whose every answer (the hello included)
/// is awaited `timeout_ms`; every check must end in ERROR with a reason containing each of
/// `reason`, within `limit`, leaving nothing behind. The tests of a timeout give a short
/// one; the others a long one, so that a loaded machine starting python never turns their
/// failure into a timeout.
fn every_check_errors(
    test: &str,
    command: &[&str],
    timeout_ms: u64,
    extra: &str,
    reason: &[&str],
    limit: Duration,
) {
    let config = config(
        test,
        command,
        &format!(
            "timeout_ms = {timeout_ms}\nenv = {{ NCF_TEST_MARK = \"{}\", NETCONFORM_REAL_AGENT = {AGENT:?} {extra} }}",
            mark(test)
        ),
    );
    let built = Built::default();
    let factory = |spec: &CheckSpec| built.make(&config, &spec.needs);
    let checks = some_checks();
    let started = Instant::now();
    let summary = run(&checks, &factory);
    let took = started.elapsed();
    assert_eq!(
        summary.checks.len(),
        checks.len(),
        "every check has its entry"
    );
    for report in &summary.checks {
        let Verdict::Error { reason: got } = &report.verdict else {
            panic!("{test}: {} is {}", report.id, verdict_line(&report.verdict));
        };
        for want in reason {
            assert!(
                got.contains(want),
                "{test}: {}: `{got}` lacks `{want}`",
                report.id
            );
        }
    }
    assert!(took < limit, "{test}: the run took {took:?}");
    let (ns, procs) = built.leftovers(test);
    assert!(ns.is_empty(), "{test}: namespaces left: {ns:?}");
    assert!(procs.is_empty(), "{test}: processes left: {procs:?}");
    eprintln!(
        "{test}: {} checks, all ERROR, {:.1} s; e.g. {}",
        checks.len(),
        took.as_secs_f64(),
        verdict_line(&summary.checks[0].verdict)
    );
}

#[test]
fn an_agent_that_never_says_hello_times_out() {
    require_netns!();
    every_check_errors(
        "silent",
        &[&fixture("silent.sh")],
        1000,
        "",
        &[
            "setting up the target",
            "target timed out",
            "did not answer hello within 1000 ms",
        ],
        Duration::from_secs(20),
    );
}

#[test]
fn an_agent_that_goes_silent_after_hello_times_out() {
    require_netns!();
    every_check_errors(
        "silent-after-hello",
        &[&fixture("silent-after-hello.sh")],
        1000,
        "",
        &["target timed out", "did not answer "],
        Duration::from_secs(30),
    );
}

#[test]
fn an_agent_that_answers_garbage_is_malformed() {
    require_netns!();
    every_check_errors(
        "garbage",
        &[&fixture("garbage.sh")],
        10_000,
        "",
        &[
            "malformed answer",
            "with `OK I did it, trust me`, which is not netconform-agent/1 JSON",
        ],
        Duration::from_secs(20),
    );
}

#[test]
fn an_agent_of_another_major_version_is_refused() {
    require_netns!();
    every_check_errors(
        "wrong-version",
        &[&fixture("wrong-version.sh")],
        10_000,
        "",
        &[
            "setting up the target",
            "it speaks netconform-agent/2, the harness netconform-agent/1",
        ],
        Duration::from_secs(20),
    );
}

#[test]
fn an_agent_that_crashes_mid_run_is_gone() {
    require_netns!();
    // The hello and one more request get through; the next one finds the agent dead.
    every_check_errors(
        "crash-after",
        &["python3", &fixture("crash-after.py")],
        // Python and the real agent it starts answer the hello in well under a second, but
        // on a loaded machine (load 11 on 2 cores) not always: its crash is the point here,
        // not a timeout.
        5000,
        ", CRASH_AFTER = \"2\"",
        &[
            "target gone",
            "exit status 3",
            "crash-after: crashing on purpose",
        ],
        Duration::from_secs(20),
    );
}

/// Once the agent is gone, every later request says so at once.
#[test]
fn after_a_crash_requests_fail_fast() {
    require_netns!();
    let config = config(
        "fail-fast",
        &["python3", &fixture("crash-after.py")],
        &format!(
            "timeout_ms = 10000\nenv = {{ NCF_TEST_MARK = \"{}\", NETCONFORM_REAL_AGENT = {AGENT:?}, CRASH_AFTER = \"2\" }}",
            mark("fail-fast")
        ),
    );
    let built = Built::default();
    let mut target = built.make(&config, &Needs::IPV4).unwrap();
    let listen = SocketCall::Listen {
        sock: SocketId(1),
        family: Family::Ipv4,
        addr: None,
        port: 8080,
        backlog: 4,
    };
    assert_eq!(target.call(&listen).unwrap(), CallOutcome::Ok);
    let close = SocketCall::Close { sock: SocketId(1) };
    let first = target.call(&close).unwrap_err();
    assert!(
        matches!(&first, DutError::Gone { what } if what.contains("during call close(s1)")),
        "{first}"
    );
    let started = Instant::now();
    for _ in 0..3 {
        let again = target.call(&close).unwrap_err();
        assert_eq!(again.to_string(), first.to_string());
    }
    // Three requests in less than 0.9 s, far below the 10 s request timeout: none of them
    // waited for the dead agent (a bound, not a speed target).
    assert!(started.elapsed() < Duration::from_millis(900));
    drop(target);
    let (ns, procs) = built.leftovers("fail-fast");
    assert!(
        ns.is_empty() && procs.is_empty(),
        "left behind: {ns:?} {procs:?}"
    );
}

/// An agent that cannot start is an error of the set-up, naming the program.
#[test]
fn a_missing_agent_program_is_explained() {
    require_netns!();
    let config = config("missing", &["./no-such-agent"], "");
    let err = ExternalStack::new(&config, &Needs::IPV4).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("start the agent") && msg.contains("no-such-agent"),
        "{msg}"
    );
}

/// A user-space stack's set-up: the kernel of the stack namespace gets no address (it
/// answers no ARP request for the stack's), and the agent is told the whole plan.
#[test]
fn a_user_space_stack_is_told_its_addresses_and_the_kernel_keeps_out() {
    require_netns!();
    let config = config_with(
        "user-space",
        &["python3", &fixture("minimal.py")],
        &format!("env = {{ NCF_TEST_MARK = \"{}\" }}", mark("user-space")),
        false,
    );
    let built = Built::default();
    let needs = Needs {
        settings: &[("net.ipv4.tcp_early_retrans", "3")],
        ..Needs::scenario(true)
    };
    let mut target = built.make(&config, &needs).unwrap();
    let ep = target.endpoints().clone();
    assert_eq!(ep.stack_ipv4, Some(("10.77.0.2".parse().unwrap(), 24)));
    assert_eq!(ep.stack_ipv6, Some(("fd77::2".parse().unwrap(), 64)));
    let env = target.environment();
    for want in [
        "agent = minimal 0.1 (netconform-agent/1.0)".to_string(),
        "agent: NETCONFORM_AGENT_PROTOCOL=netconform-agent/1".to_string(),
        "agent: NETCONFORM_IPV4=10.77.0.2/24".to_string(),
        "agent: NETCONFORM_PEER_IPV4=10.77.0.1".to_string(),
        "agent: NETCONFORM_IPV6=fd77::2/64".to_string(),
        "agent: NETCONFORM_PEER_IPV6=fd77::1".to_string(),
        "agent: NETCONFORM_KERNEL_ADDRESSES=0".to_string(),
        "agent: NETCONFORM_PEER_PRERESOLVED=1".to_string(),
        "agent: NETCONFORM_SETTINGS=net.ipv4.tcp_early_retrans=3".to_string(),
        format!("agent: NETCONFORM_MAC={}", ep.stack_mac),
        format!("agent: NETCONFORM_PEER_MAC={}", ep.harness_mac),
        format!("agent: NETCONFORM_MTU={}", ep.mtu),
    ] {
        assert!(env.contains(&want), "{want} not in {env:#?}");
    }
    // Whatever the agent cannot do is unsupported, not an error.
    let err = target
        .call(&SocketCall::Close { sock: SocketId(1) })
        .unwrap_err();
    assert!(
        matches!(&err, DutError::NotSupported { what } if what == "call: this agent drives no stack yet"),
        "{err}"
    );
    // No address in the kernel: an ARP request for the stack's address goes unanswered.
    let request = common::arp_request(
        ep.harness_mac,
        "10.77.0.1".parse().unwrap(),
        "10.77.0.2".parse().unwrap(),
    );
    target.send_frame(&request).unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    while let Some(frame) = target.recv_frame(deadline).unwrap() {
        assert!(
            common::parse_arp_reply(&frame).is_none(),
            "the kernel answered ARP for the stack"
        );
    }
    drop(target);
    let (ns, procs) = built.leftovers("user-space");
    assert!(
        ns.is_empty() && procs.is_empty(),
        "left behind: {ns:?} {procs:?}"
    );
}

/// A user-space stack on a tap (`kind = "tap"`): the harness bridges a persistent tap to the
/// stack's veth end, the stack (fixtures/agents/tap-stack.py, which answers ARP and ping and
/// nothing else) opens it by name, and its replies come back through bridge and tap from the
/// MAC it was told, which is none of the kernel's. A tap with kernel addresses is refused.
#[test]
fn a_user_space_stack_on_a_tap_answers_arp_and_ping() {
    use netconform::wire::{Frame, Icmpv4Kind, Icmpv4Message, Transport};

    let refused = config_of_kind("tap-kernel", &["python3"], "", "tap", true).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`interface.kind` is `tap` with `kernel_addresses = true`"),
        "{refused}"
    );
    require_netns!();
    let config = config_of_kind(
        "tap",
        &["python3", &fixture("tap-stack.py")],
        // Long enough for python to start on a loaded machine: this test is not about timeouts.
        &format!(
            "timeout_ms = 10000\nenv = {{ NCF_TEST_MARK = \"{}\" }}",
            mark("tap")
        ),
        "tap",
        false,
    )
    .unwrap();
    let built = Built::default();
    let started = Instant::now();
    let mut target = built.make(&config, &Needs::IPV4).unwrap();
    let set_up = started.elapsed();
    let ep = target.endpoints().clone();
    assert_eq!(ep.stack_mac, TAP_STACK_MAC);
    let env = target.environment();
    let interface = env
        .iter()
        .find(|l| l.starts_with("interface = tap ncf"))
        .unwrap_or_else(|| panic!("no tap interface line in {env:#?}"));
    assert!(
        interface.contains(&format!("(stack MAC {TAP_STACK_MAC}), bridged by ncf"))
            && interface.ends_with("addresses owned by the stack"),
        "{interface}"
    );
    for want in [
        "agent = tap-stack 0.1 (netconform-agent/1.0)".to_string(),
        format!("agent: mac = {TAP_STACK_MAC}"),
    ] {
        assert!(env.contains(&want), "{want} not in {env:#?}");
    }
    let err = target
        .call(&SocketCall::Close { sock: SocketId(1) })
        .unwrap_err();
    assert!(matches!(err, DutError::NotSupported { .. }), "{err}");

    // The kernel keeps quiet on the bridge, the tap and the veth end (no address, IPv6
    // off, STP off): nothing comes out unasked.
    let quiet_until = Instant::now() + Duration::from_millis(300);
    if let Some(frame) = target.recv_frame(quiet_until).unwrap() {
        panic!("an unasked frame came out of the stack namespace: {frame:02x?}");
    }

    // ARP: the stack answers from its own MAC, through bridge and tap.
    let (peer, stack) = ("10.77.0.1".parse().unwrap(), "10.77.0.2".parse().unwrap());
    target
        .send_frame(&common::arp_request(ep.harness_mac, peer, stack))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut reply = None;
    while let Some(frame) = target.recv_frame(deadline).unwrap() {
        if let Some(r) = common::parse_arp_reply(&frame) {
            assert_eq!(frame[6..12], TAP_STACK_MAC.0, "Ethernet source");
            reply = Some(r);
            break;
        }
    }
    assert_eq!(
        reply,
        Some((TAP_STACK_MAC, stack, ep.harness_mac, peer)),
        "the stack's ARP reply"
    );

    // Ping: three echo requests, three replies.
    let round_trip = Instant::now();
    for seq in 1..=3u16 {
        let echo = Frame::icmpv4(
            ep.harness_mac,
            TAP_STACK_MAC,
            peer,
            stack,
            Icmpv4Message::echo_request(0x6e63, seq, b"through the tap".to_vec()),
        );
        target.send_frame(&echo.emit()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut answered = false;
        while let Some(bytes) = target.recv_frame(deadline).unwrap() {
            let Ok(f) = Frame::parse(&bytes) else {
                continue;
            };
            if matches!(f.transport(), Some(Transport::Icmpv4(m))
                if m.kind() == Icmpv4Kind::EchoReply { id: 0x6e63, seq })
            {
                assert_eq!(f.ethernet.src, TAP_STACK_MAC);
                assert_eq!(f.ethernet.dst, ep.harness_mac);
                answered = true;
                break;
            }
        }
        assert!(answered, "no echo reply to seq {seq}");
    }
    eprintln!(
        "tap: set-up {:.0} ms, 3 pings {:.1} ms",
        set_up.as_secs_f64() * 1000.0,
        round_trip.elapsed().as_secs_f64() * 1000.0
    );
    drop(target);
    let (ns, procs) = built.leftovers("tap");
    assert!(
        ns.is_empty() && procs.is_empty(),
        "left behind: {ns:?} {procs:?}"
    );
    // A namespace goes away asynchronously; the tap and bridge must go with it, never be
    // handed to the host namespace (as the kernel does with devices it cannot delete).
    for _ in 0..10 {
        let host = common::host_ncf_links();
        assert!(
            !host.iter().any(|l| l.ends_with("tap") || l.ends_with("br")),
            "a tap or bridge reached the host namespace: {host:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A stack that never opens its tap is a set-up error that says so.
#[test]
fn a_stack_that_never_opens_its_tap_is_explained() {
    require_netns!();
    let config = config_of_kind(
        "tap-unopened",
        &["python3", &fixture("minimal.py")],
        "",
        "tap",
        false,
    )
    .unwrap();
    let err = ExternalStack::new(&config, &Needs::IPV4).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("nothing opened the tap ncf") && msg.contains("IFF_TAP|IFF_NO_PI"),
        "{msg}"
    );
}

/// A route lookup from a source address (agent protocol 1.2) reaches the reference agent,
/// which answers it as the kernel does; an agent of 1.0 is never sent one: the harness
/// answers it unsupported itself, naming both versions.
#[test]
fn a_route_lookup_from_a_source_needs_protocol_1_2() {
    require_netns!();
    use netconform::dut::Tables as _;
    let reference = config("route-from", &[AGENT], "");
    let mut t = ExternalStack::new(&reference, &Needs::IPV4).unwrap();
    assert_eq!(t.hello().minor, 2);
    let e = t.endpoints().clone();
    let (stack, _) = e.stack_ipv4.unwrap();
    let peer = e.peer_ipv4.unwrap();
    let query = StateQuery::RouteGetFrom {
        dst: peer.into(),
        src: stack.into(),
    };
    match t.query(&query).unwrap() {
        StateAnswer::Route { lookup, .. } => {
            assert_eq!(lookup.kind, "Unicast");
            assert_eq!(lookup.src, Some(stack.into()));
            assert_eq!(lookup.gateway, None);
        }
        other => panic!("{other:?}"),
    }
    drop(t);
    let minimal = config(
        "route-from-minimal",
        &["python3", &fixture("minimal.py")],
        "",
    );
    let mut t = ExternalStack::new(&minimal, &Needs::IPV4).unwrap();
    assert_eq!(t.hello().minor, 0);
    match t.query(&query) {
        Err(DutError::NotSupported { what }) => assert!(
            what.starts_with(
                "query RouteGetFrom: agent `python3` speaks netconform-agent/1.0; a route lookup from a source needs netconform-agent/1.2"
            ),
            "{what}"
        ),
        other => panic!("{other:?}"),
    }
}
