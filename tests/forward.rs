//! The forwarding checks against a Linux router namespace: each passes, the routed exchange
//! is locked as a snapshot, and a router that gets the TTL or the errors wrong fails with
//! the exact difference (the comparison bites).

use std::time::Instant as StdInstant;

#[macro_use]
mod common;

use netconform::check::runner::run_one;
use netconform::check::tcp_scenario::ProfileName;
use netconform::check::{self as check_mod, CheckReport, CheckSpec, Verdict};
use netconform::sandbox::require_netns;
use netconform::target::router::{LinuxRouter, router_config_for};
use netconform::target::{
    CallOutcome, Control, Endpoints, SocketCall, StateAnswer, StateQuery, Target, TargetError,
};
use netconform::wire::{Frame, Network, Transport};

fn spec(id: &str) -> CheckSpec {
    check_mod::catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// How a [`Tampered`] router spoils what comes out of it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forwarded packets keep the TTL they came with.
    KeepsTtl,
    /// ICMP errors never leave.
    NoErrors,
}

/// A Linux router whose output is spoiled, for the negative controls.
struct Tampered {
    inner: LinuxRouter,
    fault: Fault,
}

impl Tampered {
    fn spoil(&self, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let Ok(mut f) = Frame::parse(&bytes) else {
            return Some(bytes);
        };
        let Network::Ipv4(p) = &mut f.network else {
            return Some(bytes);
        };
        let error = matches!(&p.transport, Transport::Icmpv4(m) if matches!(m.icmp_type, 3 | 11));
        match self.fault {
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

impl Target for Tampered {
    fn name(&self) -> &str {
        "tampered-router"
    }
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), TargetError> {
        self.inner.send_frame(frame)
    }
    fn recv_frame(&mut self, deadline: StdInstant) -> Result<Option<Vec<u8>>, TargetError> {
        self.inner.recv_frame(deadline)
    }
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        self.inner.call(call)
    }
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, TargetError> {
        self.inner.query(query)
    }
    fn control(&mut self, control: &Control) -> Result<(), TargetError> {
        self.inner.control(control)
    }
    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }
    fn ports(&self) -> usize {
        self.inner.ports()
    }
    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), TargetError> {
        self.inner.send_frame_on(port, frame)
    }
    fn recv_frame_any(
        &mut self,
        deadline: StdInstant,
    ) -> Result<Option<(usize, Vec<u8>)>, TargetError> {
        while let Some((port, bytes)) = self.inner.recv_frame_any(deadline)? {
            if let Some(b) = self.spoil(bytes) {
                return Ok(Some((port, b)));
            }
        }
        Ok(None)
    }
}

fn run(id: &str, fault: Option<Fault>) -> CheckReport {
    let spec = spec(id);
    let config = router_config_for(&spec.needs).expect("a router check");
    let factory = move |_: &CheckSpec| -> Result<Box<dyn Target>, TargetError> {
        let inner = LinuxRouter::new(config.clone())?;
        Ok(match fault {
            None => Box::new(inner),
            Some(fault) => Box::new(Tampered { inner, fault }),
        })
    };
    run_one(&spec, &factory, ProfileName::Linux)
}

#[test]
fn every_forwarding_check_passes_on_linux_and_two_are_locked() {
    if !require_netns("every_forwarding_check_passes_on_linux_and_two_are_locked") {
        return;
    }
    for spec in netconform::check::forward::CHECKS {
        let report = run(spec.id, None);
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{}\ntrace:\n{}",
            report.id,
            report.trace_text()
        );
        // The routed exchange and the ICMP errors a router owes (and the ones it must not
        // send), normalised.
        match spec.id {
            "route.forward.next-hop" => {
                assert_trace_snapshot!("routed_exchange", report.trace_text())
            }
            "route.forward.unreachable" => {
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
    if !require_netns("a_router_that_gets_ttl_or_errors_wrong_fails") {
        return;
    }
    let report = run("route.forward.next-hop", Some(Fault::KeepsTtl));
    match &report.verdict {
        Verdict::Fail { differences, .. } => assert!(
            differences
                .iter()
                .any(|d| d == "TTL: expected 63, observed 64"),
            "{differences:?}"
        ),
        other => panic!("expected a failure, got {other:?}\n{}", report.trace_text()),
    }
    let report = run("route.forward.time-exceeded", Some(Fault::NoErrors));
    match &report.verdict {
        Verdict::Fail { step, .. } => assert!(
            step.contains("UDP with TTL 1") && step.contains("out of port 0"),
            "{step}"
        ),
        other => panic!("expected a failure, got {other:?}\n{}", report.trace_text()),
    }
}
