//! The whole TCP state × segment matrix (IPv4 and IPv6) against the Linux kernel, run in
//! parallel across namespaces: every cell must agree with the model's Linux profile.

#[macro_use]
mod common;

use netconform::dut::linux::{LinuxHost, lab_config_for};
use netconform::dut::{
    CallOutcome, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery, TcpSocketState,
    is_connection,
};
use netconform::engine::Needs;
use netconform::suites::tcp::matrix::{matrix, run_parallel};
use netconform::suites::tcp::scenario::ProfileName;
use std::net::SocketAddr;

/// A lab whose stack already knows the peer's MAC, with IPv6 when asked.
pub fn lab_target(ipv6: bool) -> Result<Box<dyn Dut>, DutError> {
    Ok(Box::new(LinuxHost::new(lab_config_for(&Needs::scenario(
        ipv6,
    )))?))
}

#[test]
fn the_whole_matrix_agrees_with_the_linux_profile() {
    require_netns!();
    let mut cells = matrix(ProfileName::Linux, false);
    cells.extend(matrix(ProfileName::Linux, true));
    // Two workers, each with its own namespaces (this machine has two cores).
    let failures = run_parallel(&cells, 2, &lab_target).expect("the targets ran");
    assert!(
        failures.is_empty(),
        "{} of {} cells disagree:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
}

/// The matrix is not a tautology: under the RFC profile the kernel's documented
/// deviations show up as disagreements.
#[test]
fn the_rfc_profile_finds_the_linux_deviations() {
    require_netns!();
    let cells = matrix(ProfileName::Rfc, false);
    let failures = run_parallel(&cells, 2, &lab_target).expect("the targets ran");
    assert!(
        !failures.is_empty(),
        "the RFC profile agreed with Linux on every cell"
    );
    // SYN+FIN to LISTEN: RFC 9293 processes the SYN, Linux drops it (CVE-2012-6638).
    assert!(
        failures.iter().any(|f| f.starts_with("v4 LISTEN SynFin")),
        "{failures:#?}"
    );
}

/// A Linux lab whose every connection lookup is also answered the slow way (a dump of every
/// TCP socket, filtered as `Tables::tcp_connection`'s default does): the two must agree.
struct LookupChecked {
    inner: LinuxHost,
    lookups: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Dut for LookupChecked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }

    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn netconform::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl netconform::dut::Link for LookupChecked {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.inner.send_frame(frame)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        self.inner.recv_frame(deadline)
    }

    fn last_frame_at(&self) -> Option<std::time::Instant> {
        self.inner.last_frame_at()
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        self.inner.frames_delivered()
    }
}

impl netconform::dut::Sockets for LookupChecked {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.inner.call(call)
    }
}

impl netconform::dut::Tables for LookupChecked {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.inner.query(query)
    }

    fn tcp_connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        let exact = self.inner.tcp_connection(local, remote)?;
        let StateAnswer::TcpSockets(all) = self.inner.query(&StateQuery::TcpSockets)? else {
            panic!("the Linux target answered TcpSockets with something else");
        };
        let dumped = all.into_iter().find(|s| is_connection(s, local, remote));
        assert_eq!(
            exact, dumped,
            "{local} <-> {remote}: exact lookup and dump differ"
        );
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(exact)
    }
}

/// The exact sock_diag lookup the matrix reads states with finds, at every step of a cell,
/// the socket a dump of the whole table lists (the dump is what the lookup replaced).
/// Every fifth cell of both IP versions (every state and segment kind, varied numbers): a
/// dump walks the kernel's whole shared hash table and costs milliseconds. All 2,112 cells
/// agreed when the lookup came in (2026-12-07).
#[test]
fn the_exact_state_lookup_agrees_with_a_dump() {
    require_netns!();
    let mut cells = matrix(ProfileName::Linux, false);
    cells.extend(matrix(ProfileName::Linux, true));
    let cells: Vec<_> = cells.into_iter().step_by(5).collect();
    let lookups = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let factory = |ipv6: bool| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LookupChecked {
            inner: LinuxHost::new(lab_config_for(&Needs::scenario(ipv6)))?,
            lookups: lookups.clone(),
        }))
    };
    let failures = run_parallel(&cells, 2, &factory).expect("the targets ran");
    assert!(failures.is_empty(), "{failures:#?}");
    // Every event of every cell reads the state once.
    assert!(
        lookups.load(std::sync::atomic::Ordering::Relaxed) >= cells.len(),
        "{} lookups",
        lookups.load(std::sync::atomic::Ordering::Relaxed)
    );
}
