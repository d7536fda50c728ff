//! NAT: the masquerade checks against the Linux kernel (a router namespace with an nftables
//! masquerade ruleset, conntrack read from inside it), negative controls that show the
//! comparison bites, the RFC profile seeing Linux's deviation, and a locked trace.
//!
//! Namespace tests start with `require_netns!()` (SKIPPED, or fatal with
//! NETCONFORM_REQUIRE_NETNS=1).

#[macro_use]
mod common;

use common::{Faithful, Spoil, assert_pass, failure, run_on_router, run_on_spoiled_router, spec};
use netconform::dut::linux::LinuxHost;
use netconform::dut::{Control, Dut, DutError, StateAnswer};
use netconform::engine::runner::run_one;
use netconform::engine::{CheckReport, CheckSpec, Verdict};
use netconform::sandbox::nat as nat_sandbox;
use netconform::sandbox::{LabConfig, RouterConfig, RouterLab};
use netconform::suites::nat;
use netconform::suites::tcp::scenario::ProfileName;
use netconform::wire::Frame;

fn run(spec: &CheckSpec, profile: ProfileName) -> CheckReport {
    run_on_router(spec, profile, Faithful)
}

/// Every NAT check of the catalogue passes on Linux with the Linux profile.
#[test]
fn every_nat_check_passes_on_linux() {
    require_netns!();
    let started = std::time::Instant::now();
    for c in nat::CHECKS {
        let report = run(c, ProfileName::Linux);
        eprintln!("{}: {} ms", c.id, report.duration_ms);
        assert_pass(&report);
    }
    eprintln!(
        "FIGURE {} NAT checks in {:?}",
        nat::CHECKS.len(),
        started.elapsed()
    );
}

/// The deterministic exchanges (no clash, so no random port) are locked as normalised
/// traces: UDP, TCP and echo out and back, and ICMP errors about each.
#[test]
fn nat_exchanges_are_locked_as_traces() {
    require_netns!();
    let report = run(&spec("nat.reply-translated"), ProfileName::Linux);
    assert_pass(&report);
    assert_trace_snapshot!("reply_translated", report.trace_text());
    let report = run(&spec("nat.icmp-error-translated"), ProfileName::Linux);
    assert_pass(&report);
    assert_trace_snapshot!("icmp_error_translated", report.trace_text());
}

/// What a wrapped router does wrong on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// Accepts `Control::Masquerade` and installs nothing: a plain router.
    NoMasquerade,
    /// Reports every conntrack reply tuple with its destination port plus one.
    ConntrackOffByOne,
    /// Flips a bit of the quoted transport checksum of every ICMP error it forwards inside.
    QuotedChecksum,
}

impl Spoil for Fault {
    fn answer(&self, answer: StateAnswer) -> StateAnswer {
        match (self, answer) {
            (Fault::ConntrackOffByOne, StateAnswer::Conntrack(mut entries)) => {
                for e in &mut entries {
                    e.reply.dport = e.reply.dport.wrapping_add(1);
                }
                StateAnswer::Conntrack(entries)
            }
            (_, a) => a,
        }
    }
    fn performs(&self, control: &Control) -> bool {
        !(*self == Fault::NoMasquerade && matches!(control, Control::Masquerade { .. }))
    }
    fn frame(&self, port: usize, mut bytes: Vec<u8>) -> Option<Vec<u8>> {
        // Ethernet 14 + outer IPv4 20 + ICMP 8 + quoted IPv4 20, then UDP's checksum at 6.
        if *self == Fault::QuotedChecksum
            && port == 0
            && bytes.len() >= 70
            && bytes[12..14] == [0x08, 0x00]
            && bytes[23] == 1
            && bytes[34] == 3
            && bytes[42 + 9] == 17
        {
            bytes[62 + 6] ^= 0x01;
            // Keep the outer ICMP checksum right, so only the quote is wrong.
            let mut m = Frame::parse(&bytes).expect("a frame the router sent");
            m.fill_computed();
            bytes = m.emit();
        }
        Some(bytes)
    }
}

fn run_faulty(id: &str, fault: Fault) -> CheckReport {
    run_on_router(&spec(id), ProfileName::Linux, fault)
}

/// Without the masquerade rule the router forwards untranslated: the first outbound packet
/// fails, naming the source address.
#[test]
fn a_router_without_masquerade_fails() {
    require_netns!();
    let (step, differences) = failure(&run_faulty("nat.masquerade.port-kept", Fault::NoMasquerade));
    assert!(step.starts_with("A:40000 > S:7000"), "{step}");
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("ip.source: expected 10.78.2.1, observed 10.78.1.10")),
        "{differences:?}"
    );
    // And no conntrack entry would have matched either: the reply check fails too.
    let (_, differences) = failure(&run_faulty("nat.reply-translated", Fault::NoMasquerade));
    assert!(!differences.is_empty());
}

/// A conntrack table that disagrees with the wire (reply port off by one) is named.
#[test]
fn a_conntrack_table_that_disagrees_fails() {
    require_netns!();
    let (step, differences) = failure(&run_faulty(
        "nat.masquerade.port-kept",
        Fault::ConntrackOffByOne,
    ));
    assert!(step.ends_with(": conntrack"), "{step}");
    assert!(
        differences
            .iter()
            .any(|d| d.contains("expected reply 10.78.2.2:7000 > 10.78.2.1:40000")),
        "{differences:?}"
    );
}

/// A quoted UDP checksum left wrong is named, field by field.
#[test]
fn a_wrong_quoted_checksum_fails() {
    require_netns!();
    let (step, differences) = failure(&run_faulty(
        "nat.icmp-error-translated",
        Fault::QuotedChecksum,
    ));
    assert!(step.contains("port unreachable"), "{step}");
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("quoted.udp.checksum")),
        "{differences:?}"
    );
}

/// Under the RFC 4787 profile the model insists on endpoint-independent mapping without port
/// overloading (REQ-1, REQ-3): Linux keeping B's port 6000 towards S2 while A holds 6000
/// towards S is overloading, the first step the RFC profile fails (its second external port
/// after the clash would fail REQ-1 next); the checks without that case pass.
#[test]
fn the_rfc_profile_sees_the_endpoint_dependent_mapping() {
    require_netns!();
    let report = run(
        &spec("nat.masquerade.endpoint-dependent-after-clash"),
        ProfileName::Rfc,
    );
    let (step, differences) = failure(&report);
    assert!(
        step.starts_with("B:6000 > S2:7000"),
        "{step} {differences:?}"
    );
    assert!(
        differences
            .iter()
            .any(|d| d.contains("other than 6000, observed port 6000")),
        "{differences:?}"
    );
    for id in [
        "nat.masquerade.mapping-reused",
        "nat.masquerade.clash-same-class",
    ] {
        assert_pass(&run(&spec(id), ProfileName::Rfc));
    }
}

/// A host target has no ports to NAT between: unsupported, not failed.
#[test]
fn a_host_target_is_unsupported_for_nat_checks() {
    require_netns!();
    let spec = spec("nat.reply-translated");
    let factory = |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LinuxHost::new(LabConfig::default())?))
    };
    let report = run_one(&spec, &factory, ProfileName::Linux);
    assert!(
        matches!(report.verdict, Verdict::Unsupported { .. }),
        "{:?}",
        report.verdict
    );
}

/// The ruleset lives in the lab's router namespace only, and conntrack is read and flushed
/// there.
#[test]
fn the_ruleset_and_conntrack_stay_in_the_router_namespace() {
    require_netns!();
    let lab = RouterLab::build(RouterConfig::default()).expect("router lab");
    lab.install_masquerade(1)
        .expect("the ruleset in the router namespace");
    let tables = nat_sandbox::nft_tables(lab.router()).expect("list tables");
    assert!(
        tables
            .iter()
            .any(|t| t.family == 2 && t.name == nat_sandbox::NFT_TABLE),
        "{tables:?}"
    );
    let rules = nat_sandbox::nft_rules(lab.router(), nat_sandbox::NFT_TABLE).expect("list rules");
    let want = format!(
        "oifname \"{}\" masquerade",
        lab.segments()[1].router_link.name
    );
    assert!(
        rules
            .iter()
            .any(|r| r.chain == "postrouting" && r.text == want),
        "{rules:?}"
    );
    let host = nat_sandbox::nft_tables_here().expect("list the host's tables");
    assert!(
        !host.iter().any(|t| t.name == nat_sandbox::NFT_TABLE),
        "the host namespace has no table of ours: {host:?}"
    );
    assert!(lab.conntrack().expect("read").is_empty());
    lab.flush_conntrack().expect("flush");
    assert!(lab.install_masquerade(7).is_err(), "no segment 7");
}

/// The ctnetlink dump reads as `/proc/net/nf_conntrack` prints the same table (the router's
/// own UDP, TCP and ICMP echo over its loopback: unreplied, replied, established), and the
/// flush empties it. (The `/proc` file is the kernel's own rendering, so this checks the
/// decoding of every field the NAT checks read, and the rest.)
#[test]
fn the_conntrack_dump_agrees_with_proc() {
    require_netns!();
    let lab = RouterLab::build(RouterConfig::default()).expect("router lab");
    // The namespace tracks connections only once something needs conntrack: the nat chain.
    lab.install_masquerade(1).expect("masquerade");
    let ns = lab.router();
    // The TCP connection is kept open until the table is read, so it stays ESTABLISHED.
    let _tcp = ns
        .run(|| {
            use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
            let lo = Ipv4Addr::LOCALHOST;
            // UDP answered, UDP unanswered.
            let a = UdpSocket::bind((lo, 0)).expect("udp a");
            let b = UdpSocket::bind((lo, 0)).expect("udp b");
            a.send_to(b"ping", b.local_addr().expect("b"))
                .expect("a to b");
            let mut buf = [0u8; 16];
            let (_, from) = b.recv_from(&mut buf).expect("b hears a");
            b.send_to(b"pong", from).expect("b answers");
            a.recv_from(&mut buf).expect("a hears b");
            a.send_to(b"lost", (lo, 9)).ok();
            // TCP established.
            let l = TcpListener::bind((lo, 0)).expect("listen");
            let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
            let (s, _) = l.accept().expect("accept");
            // ICMP echo, identifier 4660, answered by the kernel.
            let raw = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::ICMPV4),
            )
            .expect("raw icmp");
            let mut echo = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
            let sum = !echo
                .chunks(2)
                .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])))
                .rem_euclid(0xffff) as u16;
            echo[2..4].copy_from_slice(&sum.to_be_bytes());
            raw.send_to(&echo, &SocketAddr::from((lo, 0)).into())
                .expect("echo");
            (c, s)
        })
        .expect("traffic in the router namespace");
    let mut dump = lab.conntrack().expect("ctnetlink dump");
    let mut proc = nat_sandbox::conntrack_proc_entries(ns).expect("/proc text");
    for e in dump.iter_mut().chain(proc.iter_mut()) {
        // A second may tick between the two reads.
        e.timeout_s = 0;
    }
    dump.sort_by_key(|e| (e.protocol, e.original));
    proc.sort_by_key(|e| (e.protocol, e.original));
    assert_eq!(dump, proc);
    let has = |proto: u8, state: Option<&str>, flags: &[&str]| {
        dump.iter()
            .any(|e| e.protocol == proto && e.state.as_deref() == state && e.flags == flags)
    };
    assert!(has(17, None, &["UNREPLIED"]), "{dump:#?}");
    assert!(has(17, None, &[]), "{dump:#?}");
    assert!(has(6, Some("ESTABLISHED"), &["ASSURED"]), "{dump:#?}");
    assert!(
        dump.iter()
            .any(|e| e.protocol == 1 && e.original.sport == 0x1234 && e.reply.dport == 0x1234),
        "{dump:#?}"
    );
    lab.flush_conntrack().expect("flush");
    assert!(lab.conntrack().expect("dump").is_empty());
}

/// A router that sends a frame more out of port 1 after the last step (the spoil
/// `extra-late`: a copy of its first frame out of p1, behind its first answer to the
/// barrier on p0) fails every NAT check: after the last step a barrier on every port reads
/// it. Each step reads only the one frame it expects, so before, nothing did.
#[test]
fn an_extra_frame_out_of_another_port_after_the_last_step_fails() {
    require_netns!();
    for check in nat::CHECKS {
        let (report, applied) =
            run_on_spoiled_router(check, netconform::dut::spoil::Spoil::ExtraLate);
        let (step, differences) = failure(&report);
        assert_eq!(applied, 1, "{}: the spoil sent its copy once", check.id);
        // Read by the first barrier after it: on p0 when the copy came behind the router's
        // ARP request for the barrier host there, else on p1.
        assert!(
            step.starts_with("after the last step: nothing else out of any port (barrier on p"),
            "{}: {step}: {differences:?}",
            check.id
        );
        assert!(
            differences.len() == 1
                && differences[0].starts_with("expected no frame, observed p1: "),
            "{}: {differences:?}",
            check.id
        );
    }
}
