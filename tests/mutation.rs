//! Mutation analysis in CI: a subset of the catalogue, at least one check of every family,
//! run against spoiled DUTs (`netconform certify --mutate` runs all of it; see
//! docs/mutation.md). Every check here must be killed by a spoil of what it observes, and
//! a check that asserts nothing must be found vacuous (the analysis's own negative
//! control).

#[macro_use]
mod common;

use netconform::dut::build::DutKind;
use netconform::dut::spoil::{Field, Spoil};
use netconform::engine::mutate::{KillMatrix, mutate};
use netconform::engine::{CheckError, CheckSpec, Needs, Session};
use netconform::models::profile::ProfileName;
use netconform::suites::{catalogue, machinery_of};
use netconform::time::Duration;
use netconform::wire::{Frame, TcpFlags, TcpSegment};

/// The checks CI mutates: one or two of every family, chosen for what they observe
/// (frames, sockets, tables, a service).
const SUBSET: &[&str] = &[
    "arp.resolve-neighbour",
    "arp.unsolicited-reply",
    "tcp.passive-open.active-close",
    "tcp.closed-port.syn",
    "tcp.matrix.v4.established",
    "switch.learning.known-unicast",
    "route.lookup.fixed-table",
    "forward.time-exceeded",
    "nat.reply-translated",
    "tls.1.3.aes-128-gcm-sha256",
];

fn checks(ids: &[&str]) -> Vec<CheckSpec> {
    let all = catalogue();
    ids.iter()
        .map(|id| {
            *all.iter()
                .find(|c| c.id == *id)
                .unwrap_or_else(|| panic!("{id} is not in the catalogue"))
        })
        .collect()
}

fn run(kind: &DutKind, checks: &[CheckSpec], profile: ProfileName) -> KillMatrix {
    let factory = |spec: &CheckSpec| kind.build(&spec.needs);
    let m = mutate(
        &kind.label(),
        checks,
        &factory,
        &machinery_of,
        2,
        profile,
        &|_, _, _| {},
    );
    eprintln!("{}", m.render());
    m
}

fn killers(m: &KillMatrix, id: &str) -> Vec<Spoil> {
    m.rows
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no row for {id}"))
        .killers()
}

/// Every check of the subset passes on the kernel as it is, and a spoil of what it
/// observes makes it fail.
#[test]
fn every_family_is_killed_on_linux() {
    require_netns!();
    let m = run(&DutKind::Linux, &checks(SUBSET), ProfileName::Linux);
    for row in &m.rows {
        assert_eq!(row.baseline, "PASS", "{}: the baseline must pass", row.id);
    }
    assert!(m.vacuous().is_empty(), "vacuous: {:?}", m.vacuous());
    assert!(m.flaky().is_empty(), "flaky: {:?}", m.flaky());
    for (family, f) in m.families() {
        assert_eq!(f.kill_rate(), 100.0, "{family}: {f:?}");
    }
    // What each kind of check notices, by the plane it observes.
    let has = |id: &str, spoil: Spoil| {
        let k = killers(&m, id);
        assert!(k.contains(&spoil), "{id} not killed by {spoil}: {k:?}");
    };
    has("tcp.passive-open.active-close", Spoil::DropFirst);
    has("tcp.passive-open.active-close", Spoil::Field(Field::TcpSeq));
    has("tcp.closed-port.syn", Spoil::Field(Field::TcpFlags));
    // A matrix row compares what comes late (each cell's quiet period) and every call
    // outcome the model has an opinion on (the row's first call is a LISTEN).
    has("tcp.matrix.v4.established", Spoil::ExtraLate);
    has("tcp.matrix.v4.established", Spoil::CallOutcome);
    has("arp.resolve-neighbour", Spoil::Field(Field::ArpSender));
    has("arp.unsolicited-reply", Spoil::TablePhantom);
    has("switch.learning.known-unicast", Spoil::DropFirst);
    has("route.lookup.fixed-table", Spoil::TableEntry);
    has("forward.time-exceeded", Spoil::Field(Field::IcmpCode));
    has("nat.reply-translated", Spoil::Field(Field::TcpAck));
    has("tls.1.3.aes-128-gcm-sha256", Spoil::ServiceByte);
}

/// smoltcp in-process (no privilege needed): its TCP checks are killed too.
#[test]
fn smoltcp_checks_are_killed() {
    let m = run(
        &DutKind::Smoltcp,
        &checks(&[
            "tcp.passive-open.active-close",
            "tcp.passive-open.passive-close",
        ]),
        ProfileName::Rfc,
    );
    assert!(m.rows.iter().all(|r| r.judged()), "{}", m.render());
    assert!(m.vacuous().is_empty(), "{}", m.render());
}

/// smoltcp's ARP and route checks, run against its declared fixed behaviour
/// (profiles/smoltcp.toml) and its cache read on the wire, are killed as well.
#[test]
fn smoltcp_fixed_behaviour_checks_are_killed() {
    let m = run(
        &DutKind::Smoltcp,
        &checks(&[
            "arp.cache-hit",
            "arp.unicast-poll",
            "arp.unicast-poll-fails",
            "arp.conflicting-reply",
            "route.lookup.fixed-table",
        ]),
        ProfileName::Rfc,
    );
    assert!(m.rows.iter().all(|r| r.judged()), "{}", m.render());
    assert!(m.vacuous().is_empty(), "{}", m.render());
}

/// A check that asserts nothing about the stack is found vacuous on the real kernel: the
/// analysis itself can fail a check.
#[test]
fn a_check_that_asserts_nothing_is_vacuous() {
    require_netns!();
    /// Sends a SYN to a closed port (the kernel answers a RST, so spoils have a frame to
    /// act on) and collects the answer with a barrier, asserting nothing about it.
    fn asserts_nothing(s: &mut Session<'_>) -> Result<(), CheckError> {
        let e = s.endpoints().clone();
        let (Some(peer), Some((stack, _))) = (e.peer_ipv4, e.stack_ipv4) else {
            panic!("an IPv4 host");
        };
        let syn = Frame::tcp_v4(
            e.harness_mac,
            e.stack_mac,
            peer,
            stack,
            TcpSegment::new(40000, 9, 1, 0, TcpFlags(0x02)),
        );
        s.send("a SYN to a closed port", &syn)?;
        s.barrier("a barrier", false, Duration::from_millis(2000))?;
        Ok(())
    }
    let vacuous = CheckSpec {
        id: "tcp.asserts-nothing",
        title: "a check that asserts nothing",
        clauses: &[],
        needs: Needs::scenario(false),
        run: asserts_nothing,
    };
    let m = run(&DutKind::Linux, &[vacuous], ProfileName::Linux);
    assert_eq!(m.rows[0].baseline, "PASS");
    assert!(
        m.rows[0]
            .cells
            .iter()
            .any(|c| c.outcome == netconform::engine::mutate::Outcome::Survived),
        "spoils acted and it still passed: {}",
        m.render()
    );
    assert_eq!(m.vacuous(), vec!["tcp.asserts-nothing"], "{}", m.render());
    assert_eq!(m.families()["tcp"].kill_rate(), 0.0);
}
