//! The forwarding checks against a Linux router namespace: each passes, the routed exchange
//! is locked as a snapshot, and a router that gets the TTL or the errors wrong fails with
//! the exact difference (the comparison bites); a router that sends one frame more out of
//! another port after the last probe fails too (the check proves silence on every port).

#[macro_use]
mod common;

use common::{Faithful, Spoil, assert_pass, failure, run_on_router, run_on_spoiled_router, spec};
use netconform::engine::CheckReport;
use netconform::suites::tcp::scenario::ProfileName;
use netconform::wire::{Frame, Network, Transport};

/// How a spoiled router gets forwarding wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forwarded packets keep the TTL they came with.
    KeepsTtl,
    /// ICMP errors never leave.
    NoErrors,
}

impl Spoil for Fault {
    fn frame(&self, _port: usize, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let Ok(mut f) = Frame::parse(&bytes) else {
            return Some(bytes);
        };
        let Network::Ipv4(p) = &mut f.network else {
            return Some(bytes);
        };
        let error = matches!(&p.transport, Transport::Icmpv4(m) if matches!(m.icmp_type, 3 | 11));
        match self {
            Fault::KeepsTtl if !error && p.ttl < 64 => {
                p.ttl += 1;
                f.fill_computed();
                Some(f.emit())
            }
            Fault::NoErrors if error => None,
            _ => Some(bytes),
        }
    }
}

fn run<S: Spoil>(id: &str, spoil: S) -> CheckReport {
    run_on_router(&spec(id), ProfileName::Linux, spoil)
}

#[test]
fn every_forwarding_check_passes_on_linux_and_two_are_locked() {
    require_netns!();
    for spec in netconform::suites::forward::CHECKS {
        let report = run(spec.id, Faithful);
        assert_pass(&report);
        // The routed exchange and the ICMP errors a router owes (and the ones it must not
        // send), normalised.
        match spec.id {
            "forward.next-hop" => {
                assert_trace_snapshot!("routed_exchange", report.trace_text())
            }
            "forward.unreachable" => {
                assert_trace_snapshot!("icmp_errors", report.trace_text())
            }
            _ => {}
        }
    }
}

/// A router that forwards without decrementing the TTL fails the next-hop check on the TTL
/// field, and one that never sends errors fails the time-exceeded check: the comparison
/// bites on both sides of the router.
#[test]
fn a_router_that_gets_ttl_or_errors_wrong_fails() {
    require_netns!();
    let (_, differences) = failure(&run("forward.next-hop", Fault::KeepsTtl));
    assert!(
        differences
            .iter()
            .any(|d| d == "ip.ttl: expected 63, observed 64"),
        "{differences:?}"
    );
    let (step, _) = failure(&run("forward.time-exceeded", Fault::NoErrors));
    assert!(
        step.contains("UDP with TTL 1") && step.contains("out of port 0"),
        "{step}"
    );
}

/// A router that sends a frame more out of port 1 after it answered the last probe's
/// barrier on port 0 (the spoil `extra-late`: a copy of its first frame, the ARP request
/// for the next hop, behind that reply) fails: after the last probe a barrier on every
/// port reads it. In `forward.discards` the first frame the router sends is the last
/// probe's, so no later probe could have read the copy.
#[test]
fn an_extra_frame_out_of_another_port_after_the_last_probe_fails() {
    require_netns!();
    let (report, applied) = run_on_spoiled_router(
        &spec("forward.discards"),
        netconform::dut::spoil::Spoil::ExtraLate,
    );
    let (step, differences) = failure(&report);
    assert_eq!(applied, 1, "the spoil sent its copy once");
    assert!(
        step.starts_with("after the last probe: nothing else out of any port (barrier on port "),
        "{step}: {differences:?}"
    );
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].starts_with("expected no frame, observed port 1: ")
            && differences[0].ends_with("ARP who-has 10.78.2.2 tell 10.78.2.1"),
        "{differences:?}"
    );
}
