//! ARP against the Linux kernel: the ARP checks pass and their traces are locked by
//! snapshots (the seeds' stories), the `arp_accept`/`arp_ignore` table holds frame by frame,
//! and the comparison bites (the RFC profile fails where Linux deviates, with the field).

#[macro_use]
mod common;

use netconform::dut::linux::{LinuxHost, lab_config_for};
use netconform::dut::{Dut, DutError};
use netconform::engine::runner::run_one;
use netconform::engine::{CheckReport, CheckSpec, Needs, Session, Verdict};
use netconform::models::arp::{ArpAccept, ArpIgnore, ArpPolicy, ArpProfile};
use netconform::suites::arp::scenario::{
    ArpKind, ArpScenario, BadArp, PeerSpec, ScenarioOutcome, Step, Timers, run_arp_scenario,
};
use netconform::suites::arp::{self as arp_checks};
use netconform::suites::tcp::scenario::ProfileName;

fn run_check(id: &str, profile: ProfileName) -> CheckReport {
    let spec = arp_checks::CHECKS
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    let factory = |spec: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LinuxHost::new(lab_config_for(&spec.needs))?))
    };
    run_one(spec, &factory, profile)
}

/// Times and the drawn reachable time differ from run to run; the snapshot locks the rest.
/// When the stack redrew its reachable time mid-run the runner runs the scenario again (the
/// trace keeps both runs); the snapshot locks the last run, which starts after that note.
macro_rules! assert_trace_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({ filters => vec![
            (r"(?s)\A.*mid-run: running again\n", ""),
            (r"(?m)^ *\d+\.\d{3}", "[ms]"),
            (r"reachable \d+ ms", "reachable [drawn] ms"),
        ] }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

fn passes_with_snapshot(id: &str, snapshot: &str) {
    let report = run_check(id, ProfileName::Linux);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "trace:\n{}",
        report.trace_text()
    );
    assert_trace_snapshot!(snapshot, report.trace_text());
}

#[test]
fn seed_host_resolves_its_neighbour() {
    require_netns!();
    passes_with_snapshot("arp.resolve-neighbour", "arp_resolve_neighbour");
}

#[test]
fn seed_host_resolves_its_gateway_before_sending_off_link() {
    require_netns!();
    passes_with_snapshot("arp.resolve-gateway", "arp_resolve_gateway");
}

#[test]
fn seed_cache_hit_sends_no_request() {
    require_netns!();
    passes_with_snapshot("arp.cache-hit", "arp_cache_hit");
}

#[test]
fn seed_failed_resolution_ends_in_host_unreachable() {
    require_netns!();
    passes_with_snapshot("arp.failed-resolution", "arp_failed_resolution");
}

#[test]
fn broken_arp_changes_nothing() {
    require_netns!();
    passes_with_snapshot("arp.malformed", "arp_malformed");
}

/// Every other ARP check passes under the Linux profile.
#[test]
fn every_arp_check_passes_on_linux() {
    require_netns!();
    let failed: Vec<String> = arp_checks::CHECKS
        .iter()
        .map(|c| run_check(c.id, ProfileName::Linux))
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| format!("{}: {:?}\n{}", r.id, r.verdict, r.trace_text()))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// The comparison bites: under the RFC profile the checks where Linux deviates fail, each
/// with the exact difference.
#[test]
fn the_rfc_profile_fails_where_linux_deviates() {
    require_netns!();
    let expect_fail = |id: &str, needle: &str| {
        let report = run_check(id, ProfileName::Rfc);
        let Verdict::Fail { differences, .. } = &report.verdict else {
            panic!("{id} under the RFC profile: {:?}", report.verdict);
        };
        assert!(
            differences.iter().any(|d| d.contains(needle)),
            "{id}: {differences:?}"
        );
    };
    // RFC 826: "Am I the target protocol address? ... add the triplet"; Linux does not.
    expect_fail(
        "arp.unsolicited-reply",
        "10.77.0.1: expected REACHABLE 02:6e:63:00:00:01 probes 0, observed no entry",
    );
    // RFC 826 merges every packet; Linux keeps the first MAC for the locktime.
    expect_fail(
        "arp.conflicting-reply",
        "expected REACHABLE 02:6e:63:01:00:01 probes 4, observed REACHABLE 02:6e:63:00:00:01",
    );
    // RFC 1812 §3.3.2: a broadcast link-layer address is not believed; Linux answers and caches.
    expect_fail("arp.non-unicast-sender-mac", "unexpected at");
    // The checks that do not touch a deviation pass under either profile.
    for id in [
        "arp.resolve-neighbour",
        "arp.failed-resolution",
        "arp.probe",
    ] {
        assert_eq!(
            run_check(id, ProfileName::Rfc).verdict,
            Verdict::Pass,
            "{id}"
        );
    }
}

fn peer(octet: u8) -> PeerSpec {
    PeerSpec {
        octet,
        answers: true,
        off_link: false,
    }
}

fn run_scenario(scenario: &ArpScenario) -> Result<ScenarioOutcome, String> {
    let mut target = LinuxHost::new(lab_config_for(&Needs::IPV4)).map_err(|e| e.to_string())?;
    let mut session = Session::new(&mut target);
    let result = run_arp_scenario(&mut session, scenario, &ArpProfile::linux());
    let names = session.host_names().clone();
    let trace = session.into_trace().render(&names);
    result.map_err(|e| format!("{e}\n{trace}"))
}

/// research/linux-oracle.md §1.2: which frames create an entry under each `arp_accept`, and
/// which requests are answered under each `arp_ignore`, model and kernel side by side.
#[test]
fn arp_accept_and_arp_ignore_table() {
    require_netns!();
    let arp = |kind, unicast| Step::Arp {
        from: 0,
        kind,
        alt_mac: false,
        unicast,
    };
    let frames = [
        arp(ArpKind::GratuitousRequest, false),
        arp(ArpKind::GratuitousReply, false),
        arp(ArpKind::Reply, true),
        arp(ArpKind::Reply, false),
        arp(ArpKind::RequestForStack, false),
        arp(ArpKind::RequestForOther, false),
    ];
    let mut runs = 0;
    for accept in [ArpAccept::Never, ArpAccept::Always, ArpAccept::SameSubnet] {
        for ignore in [
            ArpIgnore::Any,
            ArpIgnore::OnInterface,
            ArpIgnore::SameSubnet,
            ArpIgnore::Never,
        ] {
            // One peer on the link, one claiming an address off the subnet.
            for off in [false, true] {
                let p = PeerSpec {
                    off_link: off,
                    ..peer(5)
                };
                let scenario = ArpScenario {
                    name: format!("{accept:?} {ignore:?} off-subnet {off}"),
                    policy: ArpPolicy { accept, ignore },
                    forwarding: false,
                    gateway: None,
                    peers: vec![p],
                    steps: frames.to_vec(),
                    timers: Timers::FAST,
                };
                match run_scenario(&scenario) {
                    Ok(_) => runs += 1,
                    Err(e) => panic!("{}: {e}", scenario.name),
                }
            }
        }
    }
    assert_eq!(runs, 24);
}

/// Broken ARP from a peer the stack already knows leaves its entry as it was.
#[test]
fn broken_arp_leaves_a_known_entry_alone() {
    require_netns!();
    let mut steps = vec![Step::Ping { from: 0 }];
    steps.extend(
        BadArp::ALL
            .iter()
            .map(|bad| Step::Malformed { from: 0, bad: *bad }),
    );
    let scenario = ArpScenario {
        name: "known entry".into(),
        policy: ArpPolicy {
            accept: ArpAccept::Never,
            ignore: ArpIgnore::Any,
        },
        forwarding: false,
        gateway: None,
        peers: vec![peer(1)],
        steps,
        timers: Timers::FAST,
    };
    if let Err(e) = run_scenario(&scenario) {
        panic!("{e}");
    }
}
