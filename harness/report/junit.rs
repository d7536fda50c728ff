//! JUnit XML (through `quick-junit`): one testsuite per target, one testcase per check.
//!
//! - name: the check id; classname: its family (`tcp.matrix`, see
//!   [`family_of`](super::family_of)); time: its duration;
//! - FAIL: a `<failure>` whose message is the step and first difference, type the
//!   classification (`rfc-violation`, `policy-choice-unreviewed`), and whose text holds every
//!   difference, what was expected, and each clause with its quoted text;
//! - ERROR: an `<error>` with the reason;
//! - UNSUPPORTED: `<skipped>` with the reason;
//! - an **accepted deviation passes**, with its kind, reason and differences in
//!   `<system-out>`: CI dashboards then count it neither as failed nor as skipped (a skip
//!   would read as "not tested", and the check did run);
//! - stale deviation entries are listed in the testsuite's `<system-out>`.
//!
//! No timestamp or UUID is written, so the same report gives the same XML.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use super::{CheckEntry, Classification, Outcome, Report};

/// The JUnit XML of `report`.
pub fn render(report: &Report) -> String {
    render_many(std::slice::from_ref(report))
}

/// One JUnit document with a testsuite per report (per target).
pub fn render_many(reports: &[Report]) -> String {
    let mut junit = JUnit::new("netconform certify");
    for report in reports {
        let mut suite = TestSuite::new(report.target.as_str());
        suite.add_property(("profile", report.profile.as_str()));
        suite.add_property(("netconform", report.netconform_version.as_str()));
        for c in &report.checks {
            suite.add_test_case(case(c));
        }
        if !report.stale_deviations.is_empty() {
            let mut text = String::from("stale deviation entries (matched nothing):\n");
            for s in &report.stale_deviations {
                let _ = writeln!(
                    text,
                    "{} entry {}: check {:?}, {}",
                    s.file,
                    s.entry.entry,
                    s.entry.check,
                    s.entry.texts()
                );
            }
            suite.set_system_out(text);
        }
        let millis: u64 = report.checks.iter().map(|c| c.duration_ms).sum();
        suite.set_time(Duration::from_millis(millis));
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot write JUnit XML: {e} -->\n"))
}

fn clause_text(c: &CheckEntry) -> String {
    let mut text = String::new();
    for clause in &c.clauses {
        let _ = writeln!(
            text,
            "clause {} ({}): {}",
            clause.id, clause.source, clause.text
        );
    }
    text
}

fn case(c: &CheckEntry) -> TestCase {
    let status = match c.outcome {
        Outcome::Pass | Outcome::Accepted => TestCaseStatus::success(),
        Outcome::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let step = c.step.as_deref().unwrap_or("");
            let first = c.differences.first().map(String::as_str).unwrap_or("");
            s.set_message(format!("{step}: {first}"));
            let ty = match &c.classification {
                Some(Classification::RfcViolation { .. }) => "rfc-violation",
                _ => "policy-choice-unreviewed",
            };
            s.set_type(ty);
            let mut text = String::new();
            let _ = writeln!(text, "step: {step}");
            for d in &c.differences {
                let _ = writeln!(text, "- {d}");
            }
            if let Some(e) = &c.expected {
                let _ = writeln!(text, "expected: {e}");
            }
            if let Some(k) = &c.classification {
                let _ = writeln!(text, "classification: {}", k.label());
            }
            text.push_str(&clause_text(c));
            let _ = writeln!(
                text,
                "trace: {}, pcap: {}",
                c.artifacts.trace, c.artifacts.pcap
            );
            if let Some(file) = c
                .counterexample
                .as_ref()
                .and_then(|x| x.replay_file.as_ref())
            {
                let _ = writeln!(text, "replay: {file}");
            }
            s.set_description(text);
            s
        }
        Outcome::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(c.reason.clone().unwrap_or_default());
            s
        }
        Outcome::Unsupported => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!(
                "unsupported: {}",
                c.reason.as_deref().unwrap_or("")
            ));
            s
        }
    };
    let mut case = TestCase::new(c.id.as_str(), status);
    case.set_classname(c.family.as_str());
    case.set_time(Duration::from_millis(c.duration_ms));
    if c.outcome == Outcome::Accepted {
        let mut out = String::new();
        if let Some(Classification::AcceptedDeviation {
            deviation_kind,
            reason,
            entries,
        }) = &c.classification
        {
            let _ = writeln!(
                out,
                "accepted deviation ({deviation_kind}, entries {entries:?}): {reason}"
            );
        }
        if let Some(step) = &c.step {
            let _ = writeln!(out, "step: {step}");
        }
        for d in &c.differences {
            let _ = writeln!(out, "- {d}");
        }
        out.push_str(&clause_text(c));
        case.set_system_out(out);
    }
    case
}
