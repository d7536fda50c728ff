//! The conformance engine: checks, the clauses they enforce, and their verdicts.
//!
//! A check drives a [`Target`](crate::target::Target) through a [`Session`], which records
//! every frame and call into a [`Trace`](crate::trace::Trace) and compares each frame the
//! stack sends with what the check expected (see [`expect`]). A check ends in one
//! [`Verdict`]:
//!
//! - `Pass`: every expected frame and state was observed;
//! - `Fail`: the stack did something else; the verdict carries the field-by-field
//!   differences, and the trace shows the whole exchange;
//! - `Unsupported`: the target cannot perform an event the check needs (its own verdict,
//!   never counted as a failure: BoGo's exit code 89 idea);
//! - `Error`: the harness could not run the check (no privilege, the target vanished).
//!
//! Every check names the clauses it enforces ([`Clause`]: a stable id, the RFC section and
//! the quoted text), so a report can print the RFC text beside each verdict.

pub mod arp;
pub mod arp_scenario;
pub mod clause;
pub mod expect;
pub mod forward;
pub mod nat;
pub mod route;
pub mod route_table;
pub mod runner;
pub mod session;
pub mod switch;
pub mod tcp_basic;
pub mod tcp_checks;
pub mod tcp_matrix;
pub mod tcp_profile;
pub mod tcp_scenario;
pub mod tcp_timers;
pub mod tls;

pub use clause::Clause;
pub use runner::{CheckReport, Progress, RunSummary, run_checks};
pub use session::{CheckError, Session};

use std::fmt;

/// One check: what it is called, which clauses it enforces, and the code that runs it.
#[derive(Clone, Copy)]
pub struct CheckSpec {
    /// Stable identifier, e.g. `tcp.passive-open.four-way-close`.
    pub id: &'static str,
    /// One line saying what the check does.
    pub title: &'static str,
    /// The clauses this check enforces.
    pub clauses: &'static [Clause],
    /// What the check needs from the target's set-up.
    pub needs: Needs,
    /// Runs the check in a fresh session.
    pub run: fn(&mut Session<'_>) -> Result<(), CheckError>,
}

impl fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckSpec")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a check needs from the set-up of its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Needs {
    /// IPv6 on the stack. Checks that do not need it get a stack with IPv6 off, so its
    /// multicast listener reports never interleave with their traces.
    pub ipv6: bool,
    /// The stack already knows the peer's link-layer address (no ARP or neighbour
    /// discovery exchange before the first answer).
    pub peer_preresolved: bool,
    /// Settings the check pins on the stack, as `(name, value)` (for Linux: per-namespace
    /// sysctls such as `net.ipv4.tcp_early_retrans`); recorded in the report's environment.
    pub settings: &'static [(&'static str, &'static str)],
    /// A switch with this many ports and this ageing time (`None`: a host stack). On a
    /// target that is not such a switch the check's first multi-port event is unsupported.
    pub switch: Option<SwitchNeeds>,
    /// A router with this many segments (`None`: a host stack). On a target that is not a
    /// router the check's first query for its ports is unsupported.
    pub router: Option<RouterNeeds>,
    /// A TLS stack (client and server) rather than a bare host stack. On a target without
    /// one the check's exchange is unsupported.
    pub tls: bool,
}

/// What a router check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouterNeeds {
    /// Segments (ports), at least this many.
    pub segments: usize,
}

/// What a switch check needs: how many ports, and the ageing time its model assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SwitchNeeds {
    /// Ports, at least this many.
    pub ports: usize,
    /// The ageing time of the filtering database, in milliseconds (a multiple of 10: Linux
    /// counts it in centiseconds).
    pub ageing_ms: u32,
}

impl Needs {
    /// IPv4 only, resolution through ARP.
    pub const IPV4: Needs = Needs {
        ipv6: false,
        peer_preresolved: false,
        settings: &[],
        switch: None,
        router: None,
        tls: false,
    };

    /// What a TCP scenario needs: the peer pre-resolved (no ARP between its events), IPv6
    /// when the scenario runs over it.
    pub const fn scenario(ipv6: bool) -> Needs {
        Needs {
            ipv6,
            peer_preresolved: true,
            settings: &[],
            switch: None,
            router: None,
            tls: false,
        }
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// The stack under test did not behave as expected.
    Fail {
        /// What step of the check failed.
        step: String,
        /// Field-by-field differences, or a sentence when nothing was observed.
        differences: Vec<String>,
    },
    /// The target cannot perform an event the check needs.
    Unsupported {
        /// What the target could not do.
        reason: String,
    },
    /// The harness could not run the check.
    Error {
        /// What went wrong and what to do about it.
        reason: String,
    },
}

impl Verdict {
    /// Short upper-case label for summaries.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail { .. } => "FAIL",
            Verdict::Unsupported { .. } => "UNSUPPORTED",
            Verdict::Error { .. } => "ERROR",
        }
    }
}

/// Every check netconform knows, in the order `certify` runs them.
pub fn catalogue() -> Vec<CheckSpec> {
    [
        arp::CHECKS,
        tcp_basic::CHECKS,
        tcp_timers::CHECKS,
        tcp_checks::CHECKS,
        switch::CHECKS,
        route::CHECKS,
        forward::CHECKS,
        nat::CHECKS,
        tls::CHECKS,
    ]
    .concat()
}
