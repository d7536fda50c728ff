//! The slirp target: libslirp as slirp4netns runs it (Debian `slirp4netns`), driven on a tap
//! by `netconform-agent-slirp`, certified on a small, fast subset of the catalogue with
//! exact verdicts (docs/findings-slirp.md has the whole run).
//!
//! (a) What passes, what fails and with which difference, what is unsupported and why.
//! (b) The checks bite on this stack too: the check that passes fails when the DUT
//! claims an extension libslirp does not implement (a negative control).
//! (c) slirp4netns killed or stopped mid-check is an ERROR naming it and quoting its log,
//! the next check runs, and nothing is left (process, namespace, tap, socket directory).
//! (d) Without slirp4netns the target says what to install.
//! (e) The ARP checks run against libslirp's declared fixed behaviour (profiles/slirp.toml),
//! and a wrong declaration fails on the wire.

use std::time::{Duration, Instant};

use netconform::dut::fixed::{FixedBehaviour, Validation, WaitingPolicy};
use netconform::dut::slirp::{SlirpConfig, SlirpHost};
use netconform::dut::{Dut, DutError, Link, SocketCall, Sockets, TcpStackConfig};
use netconform::engine::runner::{Quiet, RunSummary, run_checks};
use netconform::engine::{CheckReport, CheckSpec, Needs, Verdict};
use netconform::models::arp::ArpIgnore;
use netconform::suites::tcp::scenario::ProfileName;

#[macro_use]
mod common;
use common::{checks, one_at_a_time, program_installed, report};

const AGENT: &str = env!("CARGO_BIN_EXE_netconform-agent-slirp");

fn config() -> SlirpConfig {
    SlirpConfig {
        agent: AGENT.into(),
        ..SlirpConfig::default()
    }
}

fn certify(ids: &[&str], slirp: &SlirpConfig) -> RunSummary {
    let slirp = slirp.clone();
    let factory = move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(SlirpHost::new(&slirp, &spec.needs)?))
    };
    run_checks("slirp", &checks(ids), &factory, 2, ProfileName::Rfc, &Quiet)
}

fn reason(r: &CheckReport) -> String {
    format!("{:?}", r.verdict)
}

/// Nothing of this process's slirp targets is left: no slirp4netns, no agent, no
/// namespace, no socket directory.
fn assert_nothing_left() {
    let pid = std::process::id();
    let mine = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with(&format!("ncf-{pid}-")))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<String> = mine(netconform::sandbox::netns_dir())
            .into_iter()
            .chain(mine(&netconform::sandbox::sockdir::sockets_root()))
            .collect();
        let children = children_named(pid, &["slirp4netns", "netconform-agen"]);
        if left.is_empty() && children.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "left behind: {left:?}, processes {children:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Descendants of `pid` whose command name starts with one of `names`.
fn children_named(pid: u32, names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ppid == pid && names.iter().any(|n| comm.starts_with(n)) {
            found.push(format!("{comm} ({})", p.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn a_small_certification_has_the_analysed_verdicts() {
    require_netns!();
    let _one = one_at_a_time();
    if !program_installed(test_name!(), "slirp4netns", "apt-get install slirp4netns") {
        return;
    }
    let started = Instant::now();
    let summary = certify(
        &[
            "tcp.passive-open.active-close",
            "tcp.passive-open.passive-close",
            "tcp.closed-port.syn",
            "tcp.timer.keepalive",
            "tcp.matrix.v4.established",
            "tcp.matrix.v6.syn-sent",
            "arp.cache-hit",
            "arp.unicast-poll",
            "arp.failed-resolution",
        ],
        &config(),
    );
    for id in [
        "tcp.passive-open.active-close",
        "tcp.passive-open.passive-close",
        "tcp.closed-port.syn",
        // Against the declared ARP behaviour (profiles/slirp.toml).
        "arp.cache-hit",
    ] {
        let r = report(&summary, id);
        assert!(matches!(r.verdict, Verdict::Pass), "{id}: {}", reason(r));
    }
    let unsupported = |id: &str, why: &str| {
        let r = report(&summary, id);
        match &r.verdict {
            Verdict::Unsupported { reason } => assert!(reason.contains(why), "{id}: {reason}"),
            other => panic!("{id}: expected UNSUPPORTED ({why}), got {other:?}"),
        }
    };
    unsupported(
        "tcp.timer.keepalive",
        "libslirp's TCP has no per-connection options",
    );
    unsupported(
        "tcp.matrix.v6.syn-sent",
        "slirp4netns's API forwards IPv4 only",
    );
    // Forwarding is a feature libslirp lacks (a NAT, not a router): declared, and the check
    // judges libslirp's own reply to a neighbour that never answers (one request per
    // packet, the packet dropped), without the router's ICMP clause.
    let r = report(&summary, "arp.failed-resolution");
    assert!(matches!(r.verdict, Verdict::Pass), "{}", reason(r));
    assert!(
        r.trace_text()
            .contains("not applicable: rfc1812-5.2.7.1-host-unreachable: profiles/slirp.toml declares [ip] forwarding = false"),
        "{}",
        r.trace_text()
    );
    // libslirp's table never flushes an entry: the exchange agrees with the declaration,
    // and RFC 1122 §2.3.2.1's MUST fails on it.
    let r = report(&summary, "arp.unicast-poll");
    let Verdict::Fail { differences, .. } = &r.verdict else {
        panic!("arp.unicast-poll: expected FAIL, got {:?}", r.verdict);
    };
    assert!(
        differences[0].starts_with("rfc1122-2.3.2.1-cache-validation")
            && differences[0].contains("validation = \"never\""),
        "{differences:?}"
    );
    // RFC 5961 §4.2 (RFC 9293 §3.10.7.4, fourth): a SYN in a synchronized state draws a
    // challenge ACK; libslirp (4.4BSD) resets the connection.
    let r = report(&summary, "tcp.matrix.v4.established");
    let Verdict::Fail { differences, .. } = &r.verdict else {
        panic!(
            "tcp.matrix.v4.established: expected FAIL, got {:?}",
            r.verdict
        );
    };
    let text = differences.join("\n");
    assert!(
        text.contains("challenge ACK (SYN in a synchronized state): flags expected ., observed R."),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_nothing_left();
}

#[test]
fn a_check_that_passes_fails_when_the_stack_claims_what_it_does_not_do() {
    require_netns!();
    let _one = one_at_a_time();
    if !program_installed(test_name!(), "slirp4netns", "apt-get install slirp4netns") {
        return;
    }
    // The same slirp, claiming SACK, window scaling and timestamps: the SYN-ACK lacks them.
    struct Claims(SlirpHost);
    impl Dut for Claims {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn endpoints(&self) -> &netconform::dut::Endpoints {
            self.0.endpoints()
        }
        fn link(&mut self) -> Option<&mut dyn Link> {
            self.0.link()
        }
        fn sockets(&mut self) -> Option<&mut dyn Sockets> {
            Some(self)
        }
        fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
            self.0.tables()
        }
    }
    impl Sockets for Claims {
        fn call(&mut self, call: &SocketCall) -> Result<netconform::dut::CallOutcome, DutError> {
            Sockets::call(&mut self.0, call)
        }
        fn tcp_config(&self) -> TcpStackConfig {
            TcpStackConfig::ALL
        }
        fn answers_wait_for_host(&self) -> bool {
            true
        }
    }
    let slirp = config();
    let factory = move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(Claims(SlirpHost::new(&slirp, &spec.needs)?)))
    };
    let summary = run_checks(
        "slirp",
        &checks(&["tcp.passive-open.active-close"]),
        &factory,
        1,
        ProfileName::Rfc,
        &Quiet,
    );
    let r = report(&summary, "tcp.passive-open.active-close");
    let Verdict::Fail { differences, .. } = &r.verdict else {
        panic!("expected FAIL, got {:?}", r.verdict);
    };
    assert!(
        differences
            .iter()
            .any(|d| d == "tcp.option.sackOK: expected present, observed absent"),
        "{differences:?}"
    );
    assert_nothing_left();
}

/// Kills (or stops) slirp4netns of a fresh target, then reads the link and makes a call.
fn broken_slirp(signal: nix::sys::signal::Signal) -> (String, String) {
    let mut host = SlirpHost::new(&config(), &Needs::scenario(false)).expect("a slirp target");
    let pid = host.slirp_pid().expect("slirp4netns's pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
    let link = match host.recv_frame(Instant::now() + Duration::from_millis(300)) {
        Err(e) => e.to_string(),
        Ok(frame) => panic!("a dead slirp4netns read as {frame:?}"),
    };
    let call = Sockets::call(
        &mut host,
        &SocketCall::Listen {
            sock: netconform::dut::SocketId(1),
            family: netconform::dut::Family::Ipv4,
            addr: None,
            port: 8080,
            backlog: 1,
        },
    )
    .expect_err("a call to a dead slirp4netns")
    .to_string();
    if signal == nix::sys::signal::Signal::SIGSTOP {
        // Let it go again so that it can die with the target.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
    }
    drop(host);
    (link, call)
}

#[test]
fn a_killed_or_stopped_slirp4netns_is_an_error_naming_it_and_nothing_is_left() {
    require_netns!();
    let _one = one_at_a_time();
    if !program_installed(test_name!(), "slirp4netns", "apt-get install slirp4netns") {
        return;
    }
    let (link, call) = broken_slirp(nix::sys::signal::Signal::SIGKILL);
    assert!(
        link.contains("slirp4netns (pid") && link.contains("is gone"),
        "{link}"
    );
    assert!(link.contains("its log ends:"), "{link}");
    assert!(
        call.contains("slirp4netns (pid") && call.contains("exited"),
        "{call}"
    );
    let (link, call) = broken_slirp(nix::sys::signal::Signal::SIGSTOP);
    assert!(link.contains("is stopped"), "{link}");
    assert!(call.contains("is stopped"), "{call}");
    assert_nothing_left();
}

#[test]
fn without_slirp4netns_the_target_says_what_to_install() {
    require_netns!();
    let _one = one_at_a_time();
    let missing = SlirpConfig {
        program: "slirp4netns-not-installed".into(),
        ..config()
    };
    let e = SlirpHost::new(&missing, &Needs::scenario(false))
        .expect_err("no slirp4netns")
        .to_string();
    assert!(e.contains("apt-get install slirp4netns"), "{e}");
    assert_nothing_left();
}

#[test]
fn clean_removes_the_socket_directories_of_a_dead_run() {
    require_netns!();
    let _one = one_at_a_time();
    // A pid no process has (above the kernel's pid_max limit of 2^22).
    let dead = 4_194_305u32;
    let root = netconform::sandbox::sockdir::sockets_root();
    let left = root.join(format!("ncf-{dead}-7-slirp"));
    std::fs::create_dir_all(&left).expect("a leftover directory");
    std::fs::write(left.join("api.sock"), b"").expect("a leftover file");
    let removed = netconform::sandbox::clean_pid(dead).expect("clean");
    assert!(!left.exists(), "{} is still there", left.display());
    assert!(
        removed
            .iter()
            .any(|r| r.ends_with(&format!("ncf-{dead}-7-slirp"))),
        "{removed:?}"
    );
}

/// Runs `id` against libslirp with its declared fixed behaviour edited by `edit`.
fn run_declaring(id: &str, edit: &dyn Fn(&mut FixedBehaviour)) -> CheckReport {
    let mut fixed = (*netconform::dut::slirp::profile().expect("profiles/slirp.toml")).clone();
    edit(&mut fixed);
    let slirp = SlirpConfig {
        fixed: Some(fixed.into()),
        ..config()
    };
    let factory = move |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(SlirpHost::new(&slirp, &spec.needs)?))
    };
    netconform::engine::runner::run_one(&common::spec(id), &factory, ProfileName::Rfc)
}

fn cache(f: &mut FixedBehaviour) -> &mut netconform::dut::fixed::ArpCacheFixed {
    f.arp
        .as_mut()
        .expect("[arp]")
        .cache
        .as_mut()
        .expect("[arp.cache]")
}

/// profiles/slirp.toml is checked by the exchange: each declared value, made wrong, fails
/// a check on the wire; as shipped, the same checks pass (or fail only on the clause the
/// declaration breaks).
#[test]
fn a_wrong_declaration_fails_on_the_wire() {
    require_netns!();
    let _one = one_at_a_time();
    if !program_installed(test_name!(), "slirp4netns", "apt-get install slirp4netns") {
        return;
    }
    // Entries that expire (after 100 ms of the scenario's 160 ms reachable time): the
    // model asks again for p0 after the 300 ms wait, libslirp sends from its table.
    let (step, differences) = common::failure(&run_declaring("arp.unicast-poll", &|f| {
        let c = cache(f);
        c.validation = Validation::Expire;
        c.lifetime_ms = 100;
    }));
    assert!(step.starts_with("step 3"), "{step}: {differences:?}");
    assert!(
        differences
            .iter()
            .any(|d| d.contains("unexpected") || d.contains("nothing observed")),
        "{differences:?}"
    );
    // A table of one entry: p1's request would take p0's slot, but libslirp still answers
    // p0 from its table at the cache read.
    let (step, differences) = common::failure(&run_declaring("arp.answers-requests", &|f| {
        cache(f).table_size = Some(1);
    }));
    assert!(
        step.starts_with("cache read: p0"),
        "{step}: {differences:?}"
    );
    // Its requests name no target hardware address (zero), not the broadcast address.
    let (step, differences) = common::failure(&run_declaring("arp.resolve-neighbour", &|f| {
        let arp = f.arp.as_mut().expect("[arp]");
        arp.requests.as_mut().expect("[arp.requests]").target_mac = "ff:ff:ff:ff:ff:ff".into();
    }));
    assert!(step.starts_with("step 1"), "{step}: {differences:?}");
    assert!(
        differences
            .iter()
            .any(|d| d.contains("target MAC 00:00:00:00:00:00")),
        "{differences:?}"
    );
    // The waiting echo reply is queued and sent once p0 answers, not dropped.
    let (step, differences) = common::failure(&run_declaring("arp.resolve-neighbour", &|f| {
        let arp = f.arp.as_mut().expect("[arp]");
        arp.waiting_packet
            .as_mut()
            .expect("[arp.waiting_packet]")
            .policy = WaitingPolicy::Drop;
    }));
    assert!(step.starts_with("step 1"), "{step}: {differences:?}");
    // A request for its address is answered (ignore "Any"), not ignored.
    let (step, differences) = common::failure(&run_declaring("arp.answers-requests", &|f| {
        let arp = f.arp.as_mut().expect("[arp]");
        arp.policy.as_mut().expect("[arp.policy]").ignore = ArpIgnore::Never;
    }));
    assert!(step.starts_with("step 1"), "{step}: {differences:?}");
    // The declaration as shipped passes the same checks (arp.unicast-poll fails on its
    // clause only: see a_small_certification_has_the_analysed_verdicts).
    for id in [
        "arp.answers-requests",
        "arp.resolve-neighbour",
        "arp.unsolicited-reply",
    ] {
        common::assert_pass(&run_declaring(id, &|_| {}));
    }
    assert_nothing_left();
}
