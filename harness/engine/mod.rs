//! The conformance engine: sessions, runners, verdicts. It names no protocol: each
//! protocol is a suite in [`crate::suites`] whose checks the engine runs.
//!
//! A check drives a [`Dut`](crate::dut::Dut) through a [`Session`], which records
//! every frame and call into a [`Trace`](crate::trace::Trace) and compares each frame the
//! stack sends with what the check expected (see [`expect`]). A check ends in one
//! [`Verdict`]:
//!
//! - `Pass`: every expected frame and state was observed;
//! - `Fail`: the stack did something else; the verdict carries the field-by-field
//!   differences, and the trace shows the whole exchange;
//! - `Unsupported`: the target cannot perform an event the check needs (its own verdict,
//!   never counted as a failure: BoGo's exit code 89 idea);
//! - `Error`: the harness could not run the check (no privilege, the target vanished, or
//!   a harness bug such as a check with nothing to check: `CheckError::Harness`), or
//!   could not observe what a clause needs: a check that marks a clause not checked
//!   ([`Session::not_checked`]) and otherwise succeeds ends here, its report listing the
//!   clauses not checked ([`CheckReport::not_checked`]). It is never a pass.
//!
//! Every check names the clauses it enforces ([`Clause`]: a stable id, the RFC section and
//! the quoted text), so a report can print the RFC text beside each verdict.

pub mod barrier;
pub mod clause;
pub mod expect;
pub mod mutate;
pub mod runner;
pub mod scenario;
pub mod session;

#[cfg(test)]
pub(crate) mod tests;

pub use clause::{Clause, ClauseTally, NotChecked};
pub use runner::{CheckReport, Progress, RunSummary, run_checks};
pub use scenario::{Counterexample, Scenario, ScenarioOutcome};
pub use session::{CheckError, Session};

pub use crate::dut::needs::{Needs, RouterNeeds, SwitchNeeds, Uses};

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
