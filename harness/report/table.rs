//! The terminal summary of a report, within 100 columns.
//!
//! ```text
//! netconform 0.1.0 certify: target linux, profile Linux
//!
//! family                            pass  fail  accepted  unsupported  error  total
//! arp                                 13     0         0            0      0     13
//! ...
//! total                              140     1         2            3      0    146
//!
//! Failures (1):
//!   FAIL tcp.matrix.v4.listen  RFC violation (MUST)
//!        clause rfc9293-3.10.7.2 (RFC 9293 §3.10.7.2)
//!        step: LISTEN row of the matrix
//!        - tcp.flags: expected R, observed R.
//!        files: out/tcp.matrix.v4.listen.trace.txt out/tcp.matrix.v4.listen.pcap
//! ```
//!
//! Then accepted deviations (with kind and reason), unsupported and errored checks (with
//! their reasons), stale deviation entries, and one line of totals. A check that left
//! clauses not checked lists each under it: `not checked: clause ID: why`.

use std::fmt::Write as _;
use std::path::Path;

use super::ladder::clip;
use super::{Outcome, Report};

/// Widest line of the summary.
pub const WIDTH: usize = 100;

/// The summary of `report`, with artifact paths under `dir`; `verbose` adds each failure's
/// expected and observed ladders.
pub fn render(report: &Report, dir: &Path, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "netconform {} certify: target {}, profile {}",
        report.netconform_version, report.target, report.profile
    );
    if let Some(file) = &report.deviations_file {
        let _ = writeln!(out, "accepted deviations from {file}");
    }
    let _ = writeln!(out);
    let header = format!(
        "{:<32} {:>5} {:>5} {:>9} {:>12} {:>6} {:>6}",
        "family", "pass", "fail", "accepted", "unsupported", "error", "total"
    );
    let _ = writeln!(out, "{header}");
    let mut families: Vec<(String, [usize; 6])> = Vec::new();
    for c in &report.checks {
        let i = match families.iter().position(|(f, _)| *f == c.family) {
            Some(i) => i,
            None => {
                families.push((c.family.clone(), [0; 6]));
                families.len() - 1
            }
        };
        let row = &mut families[i].1;
        row[slot(c.outcome)] += 1;
        row[5] += 1;
    }
    let line = |name: &str, r: &[usize; 6]| {
        format!(
            "{:<32} {:>5} {:>5} {:>9} {:>12} {:>6} {:>6}",
            clip(name, 32),
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5]
        )
    };
    for (family, row) in &families {
        let _ = writeln!(out, "{}", line(family, row));
    }
    let n = &report.counts;
    let totals = [n.pass, n.fail, n.accepted, n.unsupported, n.error, n.total];
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    let _ = writeln!(out, "{}", line("total", &totals));
    if !report.slow_not_run.is_empty() {
        let _ = writeln!(
            out,
            "slow tier: {} checks not run (they wait out the stack's wall-clock timers; certify --slow runs them): {}",
            report.slow_not_run.len(),
            report.slow_not_run.join(", ")
        );
    }
    if n.other_kind > 0 || n.unsupported > 0 {
        let _ = writeln!(
            out,
            "unsupported: {} of the {} checks of its kind ({:.1} %){}",
            n.unsupported_of_its_kind(),
            n.of_its_kind(),
            n.unsupported_share(),
            match n.other_kind {
                0 => String::new(),
                k => format!(
                    "; {k} more are for another kind of device (switch, router, TLS service)"
                ),
            }
        );
    }

    let path = |name: &str| dir.join(name).display().to_string();
    let failures = report.checks_with(Outcome::Fail);
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures ({}):", failures.len());
        for c in failures {
            let class = c
                .classification
                .as_ref()
                .map(|k| k.label())
                .unwrap_or_default();
            push(&mut out, &format!("  FAIL {}  {class}", c.id));
            if c.clause_cells.iter().any(|cells| !cells.failing.is_empty()) {
                // A check of many cases: each clause with how many of its cases broke it.
                for cells in &c.clause_cells {
                    let verdict = cells
                        .classification
                        .as_ref()
                        .map_or_else(|| "holds".to_string(), |k| k.label());
                    push(
                        &mut out,
                        &format!(
                            "       clause {}: {} of {} cases break it  {verdict}",
                            cells.clause,
                            cells.failing.len(),
                            cells.ran
                        ),
                    );
                }
            } else {
                for clause in &c.clauses {
                    push(
                        &mut out,
                        &format!("       clause {} ({})", clause.id, clause.source),
                    );
                }
            }
            not_checked_lines(&mut out, c);
            if let Some(step) = &c.step {
                push(&mut out, &format!("       step: {step}"));
            }
            if let Some(d) = c.differences.first() {
                push(&mut out, &format!("       - {d}"));
            }
            if c.differences.len() > 1 {
                push(
                    &mut out,
                    &format!("       (and {} more differences)", c.differences.len() - 1),
                );
            }
            if let Some(x) = &c.counterexample {
                push(
                    &mut out,
                    &format!(
                        "       counterexample: {} of {} events{}, {}",
                        x.events.len(),
                        x.original_events,
                        if x.shrunk { " (shrunk)" } else { "" },
                        match &x.replay_file {
                            Some(file) => format!("replay {}", path(file)),
                            None => format!("script: certify --only {}", c.id),
                        }
                    ),
                );
            }
            // Paths are never cut: they are meant to be copied.
            let _ = writeln!(out, "       trace: {}", path(&c.artifacts.trace));
            let _ = writeln!(out, "       pcap:  {}", path(&c.artifacts.pcap));
            if verbose && let Some(l) = &c.ladders {
                let _ = writeln!(out, "       expected:");
                for row in l.expected.to_ascii().lines() {
                    let _ = writeln!(out, "       {}", clip(row, WIDTH - 7));
                }
                let _ = writeln!(out, "       observed:");
                for row in l.observed.to_ascii().lines() {
                    let _ = writeln!(out, "       {}", clip(row, WIDTH - 7));
                }
            }
        }
    }
    let accepted = report.checks_with(Outcome::Accepted);
    if !accepted.is_empty() {
        let _ = writeln!(out, "\nAccepted deviations ({}):", accepted.len());
        for c in accepted {
            let class = c
                .classification
                .as_ref()
                .map(|k| k.label())
                .unwrap_or_default();
            push(&mut out, &format!("  ACCEPTED {}  {class}", c.id));
            if let Some(super::Classification::AcceptedDeviation { reason, .. }) = &c.classification
            {
                push(&mut out, &format!("       reason: {reason}"));
            }
        }
    }
    for (outcome, title) in [
        (Outcome::Unsupported, "Unsupported"),
        (Outcome::Error, "Errors"),
    ] {
        let list = report.checks_with(outcome);
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", list.len());
        for c in list {
            push(
                &mut out,
                &format!(
                    "  {} {}: {}",
                    outcome.label(),
                    c.id,
                    c.reason.as_deref().unwrap_or("")
                ),
            );
            not_checked_lines(&mut out, c);
        }
    }
    if !report.stale_deviations.is_empty() {
        let _ = writeln!(
            out,
            "\nStale deviation entries ({}): they matched nothing in this run",
            report.stale_deviations.len()
        );
        for s in &report.stale_deviations {
            push(
                &mut out,
                &format!(
                    "  STALE {} entry {} ({}): check {:?}",
                    s.file, s.entry.entry, s.entry.kind, s.entry.check
                ),
            );
            push(&mut out, &format!("       {}", s.entry.texts()));
            let ran: Vec<String> = s
                .checks
                .iter()
                .map(|(id, o)| format!("{id} {}", o.label()))
                .collect();
            push(&mut out, &format!("       ran: {}", ran.join(", ")));
        }
    }
    if n.retries > 0 {
        let _ = writeln!(
            out,
            "\nHarness retries ({}): each ruled out the harness's own loss, never a wrong answer",
            n.retries
        );
        for c in report.checks.iter().filter(|c| !c.retries.is_empty()) {
            for r in &c.retries {
                push(&mut out, &format!("  RETRY {}: {r}", c.id));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} accepted, {} unsupported, {} errors, {} stale deviation entries",
        n.pass, n.fail, n.accepted, n.unsupported, n.error, n.stale
    );
    if n.retries > 0 {
        let _ = writeln!(out, "{} harness retries (listed above)", n.retries);
    }
    out
}

fn slot(o: Outcome) -> usize {
    match o {
        Outcome::Pass => 0,
        Outcome::Fail => 1,
        Outcome::Accepted => 2,
        Outcome::Unsupported => 3,
        Outcome::Error => 4,
    }
}

/// One line per clause `c` did not check.
fn not_checked_lines(out: &mut String, c: &super::CheckEntry) {
    for n in &c.not_checked {
        push(
            out,
            &format!("       not checked: clause {}: {}", n.clause, n.reason),
        );
    }
}

fn push(out: &mut String, line: &str) {
    let _ = writeln!(out, "{}", clip(line, WIDTH));
}
