//! Certification reports: what `netconform certify` hands the user.
//!
//! A run ([`RunSummary`]) and the target's accepted deviations ([`Deviations`]) become one
//! [`Report`]: plain data (serde), saved as `report.json` (format
//! [`FORMAT`] = `netconform-report/1`) and read back by the comparison page. From it come:
//!
//! - [`write_dir`]: the artifacts directory (see its doc for the file list): per check
//!   `<id>.pcap` and `<id>.trace.txt`, per failing check with a counterexample
//!   `<id>.counterexample.json` (the file `netconform replay` runs) and
//!   `<id>.counterexample.pcap`, then `report.json`, `report.html`, `junit.xml` and, as
//!   before, `summary.json`;
//! - [`html::render`]: one self-contained HTML page (inline CSS and SVG, no script; the
//!   only links are the clauses' own, to the RFC text);
//! - [`junit::render`]: JUnit XML, one testsuite per target, one testcase per check;
//! - [`table::render`]: the terminal summary (per check family, totals, failures, stale
//!   deviation entries), within 100 columns;
//! - [`ladder`]: observed and expected ladder diagrams of each failure, as text and SVG;
//! - [`compare`]: one page comparing several saved reports (Linux beside smoltcp).
//!
//! Verdicts in a report are those of the run, except that a failure the deviation file
//! accepts is [`Outcome::Accepted`]: it is not counted as failed.
//!
//! A clause that no observation of a check checked is listed with the check
//! ([`CheckEntry::not_checked`]) and in the clause's row ([`ClauseRow::not_checked`]); the
//! check itself is an error, never a pass (see [`crate::engine::NotChecked`]).

pub mod compare;
pub mod deviations;
pub mod html;
pub mod junit;
pub mod ladder;
pub mod stability;
pub mod table;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::runner::{CheckReport, RunSummary};
use crate::engine::scenario::Counterexample;
use crate::engine::{Clause, Verdict};

pub use deviations::{Classification, Deviation, DeviationError, DeviationKind, Deviations};
pub use ladder::{Ladder, Ladders};

/// The value of `report.json`'s `format` field; a change of the layout that breaks readers
/// bumps the number.
pub const FORMAT: &str = "netconform-report/1";

/// The outcome of one check in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation held.
    Pass,
    /// The stack did something else, and no deviation entry accepts it.
    Fail,
    /// The stack did something else, accepted by the target's deviation file.
    Accepted,
    /// The target cannot perform an event the check needs.
    Unsupported,
    /// The harness could not run the check.
    Error,
}

impl Outcome {
    /// Upper-case label for tables: `PASS`, `FAIL`, `ACCEPTED`, `UNSUPPORTED`, `ERROR`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Accepted => "ACCEPTED",
            Outcome::Unsupported => "UNSUPPORTED",
            Outcome::Error => "ERROR",
        }
    }

    /// Lower-case name, as in JSON and CSS classes.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Accepted => "accepted",
            Outcome::Unsupported => "unsupported",
            Outcome::Error => "error",
        }
    }

    /// Severity for "the worst of": error, fail, unsupported, accepted, pass.
    fn severity(self) -> u8 {
        match self {
            Outcome::Error => 4,
            Outcome::Fail => 3,
            Outcome::Unsupported => 2,
            Outcome::Accepted => 1,
            Outcome::Pass => 0,
        }
    }
}

/// How many checks ended each way, and how many deviation entries are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Checks run.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed, not accepted.
    pub fail: usize,
    /// Failed, accepted by a deviation entry.
    pub accepted: usize,
    /// Unsupported by the target.
    pub unsupported: usize,
    /// The harness could not run them.
    pub error: usize,
    /// Deviation entries that matched nothing among the checks that ran.
    pub stale: usize,
    /// Retries the harness made to rule out its own loss, over all checks (each is listed
    /// with its check: [`CheckEntry::retries`]).
    #[serde(default)]
    pub retries: usize,
    /// Among the unsupported: checks for another kind of device than the target (a switch
    /// check on a host stack; [`CheckEntry::other_kind`]).
    #[serde(default)]
    pub other_kind: usize,
}

/// What the run amounts to, for the exit status: the worst thing that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every check passed or was accepted.
    Pass,
    /// Some checks are unsupported, none failed or errored.
    Unsupported,
    /// Some check failed (not accepted).
    Fail,
    /// The harness could not run some check.
    Error,
}

impl Counts {
    /// The checks of the target's kind: all but those for another kind of device.
    pub fn of_its_kind(&self) -> usize {
        self.total.saturating_sub(self.other_kind)
    }

    /// The unsupported checks of the target's kind (features it lacks).
    pub fn unsupported_of_its_kind(&self) -> usize {
        self.unsupported.saturating_sub(self.other_kind)
    }

    /// The share, in per cent, of the checks of the target's kind that it could not run
    /// (0 when it has none).
    pub fn unsupported_share(&self) -> f64 {
        match self.of_its_kind() {
            0 => 0.0,
            n => 100.0 * self.unsupported_of_its_kind() as f64 / n as f64,
        }
    }

    /// The run's status: error over fail over unsupported over pass (stale entries do not
    /// change it: see [`Counts::stale`]).
    pub fn status(&self) -> Status {
        if self.error > 0 {
            Status::Error
        } else if self.fail > 0 {
            Status::Fail
        } else if self.unsupported > 0 {
            Status::Unsupported
        } else {
            Status::Pass
        }
    }
}

/// A clause as the report quotes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseText {
    /// Stable id.
    pub id: String,
    /// Where it is written (`RFC 9293 §3.5`).
    pub source: String,
    /// Link to the section.
    pub url: String,
    /// The quoted text.
    pub text: String,
}

impl From<&Clause> for ClauseText {
    fn from(c: &Clause) -> Self {
        ClauseText {
            id: c.id.into(),
            source: c.source.into(),
            url: c.url.into(),
            text: c.text.into(),
        }
    }
}

/// The artifact files of one check, by name inside the report's directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Artifacts {
    /// The capture of the run (`<id>.pcap`).
    pub pcap: String,
    /// The normalised trace (`<id>.trace.txt`).
    pub trace: String,
    /// The replay file of the counterexample (`<id>.counterexample.json`), when there is one.
    pub counterexample_replay: Option<String>,
    /// The capture of the counterexample's failing run (`<id>.counterexample.pcap`), when
    /// it was recorded.
    pub counterexample_pcap: Option<String>,
}

/// The minimal failing input of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterexampleEntry {
    /// The scenario's kind (`tcp-scenario`, `arp-scenario`, `switch-scenario`) or `script`
    /// (a fixed check's actions up to the failure).
    pub kind: String,
    /// True when the runner shrank it.
    pub shrunk: bool,
    /// Events of the scenario before shrinking (equal to `events.len()` when not shrunk).
    pub original_events: usize,
    /// The events, one JSON line each.
    pub events: Vec<String>,
    /// The replay file's name in the directory (`None` for a script: `certify --only`
    /// runs the check again).
    pub replay_file: Option<String>,
}

/// One check in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEntry {
    /// The check's id.
    pub id: String,
    /// Its family (see [`family_of`]), e.g. `tcp.matrix`.
    pub family: String,
    /// What it does.
    pub title: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// The run's own verdict label (`PASS`, `FAIL`, `UNSUPPORTED`, `ERROR`): an accepted
    /// check's is `FAIL`.
    pub verdict: String,
    /// The failing step (failures only).
    pub step: Option<String>,
    /// Field-by-field differences (failures only).
    pub differences: Vec<String>,
    /// Why it is unsupported or errored.
    pub reason: Option<String>,
    /// For a failure: accepted deviation, RFC violation or unreviewed policy choice.
    pub classification: Option<Classification>,
    /// The clauses it enforces.
    pub clauses: Vec<ClauseText>,
    /// What the failing step expected.
    pub expected: Option<String>,
    /// Index of the failing observation in the trace's events.
    pub failed_at: Option<usize>,
    /// The minimal failing input.
    pub counterexample: Option<CounterexampleEntry>,
    /// Observed and expected ladders (failures with a known failing observation).
    pub ladders: Option<Ladders>,
    /// The check's files.
    pub artifacts: Artifacts,
    /// Wall time, in ms.
    pub duration_ms: u64,
    /// What the target recorded about its set-up.
    pub environment: Vec<String>,
    /// The retries the harness made in this check to rule out its own loss (a barrier
    /// probe that provably never reached the stack), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// The clauses no observation of this check checked, with why: the check did not pass
    /// on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<NotCheckedClause>,
    /// A check made of many cases (a matrix row): per clause, how many cases exercised it,
    /// the cases that broke it and how that breach is classified, in the check's clause
    /// order. A failure is judged clause by clause from these, not by the check's first
    /// clause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clause_cells: Vec<ClauseCells>,
    /// Unsupported because the check is for another kind of device than the target (a
    /// switch check on a host stack): not counted among the target's unsupported checks
    /// of its kind ([`Counts::unsupported_share`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_kind: bool,
}

/// The cases of one check that exercised one clause ([`CheckEntry::clause_cells`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseCells {
    /// The clause's id.
    pub clause: String,
    /// How many cases exercised it.
    pub ran: usize,
    /// The cases that broke it, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// How the breach is classified (`None` when no case broke it): an RFC violation and
    /// its keyword, a policy choice, or the accepted deviation of the whole check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
}

impl CheckEntry {
    /// This check's outcome for `clause`: a failed (or accepted) check that reports its
    /// cases by clause holds a clause whose cases all agreed; any other check gives every
    /// clause its own outcome.
    pub fn outcome_for(&self, clause: &str) -> Outcome {
        if matches!(self.outcome, Outcome::Fail | Outcome::Accepted)
            && let Some(cells) = self.clause_cells.iter().find(|c| c.clause == clause)
            && cells.ran > 0
            && cells.failing.is_empty()
        {
            return Outcome::Pass;
        }
        self.outcome
    }
}

/// A clause a check did not check: its id and what was not observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCheckedClause {
    /// The clause's id.
    pub clause: String,
    /// What was not observed, and why.
    pub reason: String,
}

/// One clause and the outcomes of the checks that enforce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseRow {
    /// The clause.
    pub clause: ClauseText,
    /// The worst outcome among its checks (a clause holds when it is `pass`).
    pub outcome: Outcome,
    /// (check id, outcome) per check enforcing it.
    pub checks: Vec<(String, Outcome)>,
    /// The checks among them that did not check it (their outcome is not a pass).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<String>,
}

/// A deviation entry that matched nothing among the checks that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleEntry {
    /// The file.
    pub file: String,
    /// The entry.
    pub entry: Deviation,
    /// The checks it covers that ran, with their outcome.
    pub checks: Vec<(String, Outcome)>,
}

/// A certification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`FORMAT`].
    pub format: String,
    /// The version of netconform that ran.
    pub netconform_version: String,
    /// The target's name.
    pub target: String,
    /// The profile the models followed (`Linux`, `Rfc`).
    pub profile: String,
    /// What the targets recorded about their set-up, every distinct line once.
    pub environment: Vec<String>,
    /// The deviation file applied (`None` when there was none).
    pub deviations_file: Option<String>,
    /// Counts per outcome.
    pub counts: Counts,
    /// One entry per check, in the run's order.
    pub checks: Vec<CheckEntry>,
    /// One row per clause, in order of first appearance.
    pub clauses: Vec<ClauseRow>,
    /// Deviation entries that matched nothing.
    pub stale_deviations: Vec<StaleEntry>,
    /// Checks of the target's slow tier that this run left out (`certify --slow` runs
    /// them): they wait out timers the stack runs on the wall clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow_not_run: Vec<String>,
}

/// Reading or writing a report failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A capture could not be written.
    #[error("writing {path}: {message}")]
    Capture {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// `report.json` is not JSON of the report's shape.
    #[error("{path}: not a netconform report: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// `report.json` has another format than [`FORMAT`].
    #[error("{path}: report format {found:?}, this netconform reads {FORMAT:?}")]
    Format {
        /// The file.
        path: String,
        /// The format it has.
        found: String,
    },
}

/// The family of a check id: its first two dot-separated parts when it has three or more
/// (`tcp.matrix.v4.listen` → `tcp.matrix`), else its first (`arp.probe` → `arp`).
pub fn family_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    if parts.len() >= 3 {
        parts[..2].join(".")
    } else {
        parts[0].to_string()
    }
}

fn entry_of(check: &CheckReport, deviations: &Deviations) -> (CheckEntry, Vec<usize>) {
    let mut matched = Vec::new();
    let (outcome, step, differences, reason, classification) = match &check.verdict {
        Verdict::Pass => (Outcome::Pass, None, Vec::new(), None, None),
        Verdict::Fail { step, differences } => {
            let judgement = deviations.judge(check.id, step, differences);
            matched = judgement.matched;
            let (outcome, class) = match judgement.accepted_by {
                Some(entries) => (
                    Outcome::Accepted,
                    Classification::AcceptedDeviation {
                        deviation_kind: entries
                            .first()
                            .map(|e| e.kind)
                            .unwrap_or(DeviationKind::Policy),
                        reason: entries
                            .iter()
                            .map(|e| e.reason.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                        entries: entries.iter().map(|e| e.entry).collect(),
                    },
                ),
                None => (Outcome::Fail, deviations::classify(&check.broken_clauses())),
            };
            (
                outcome,
                Some(step.clone()),
                differences.clone(),
                None,
                Some(class),
            )
        }
        Verdict::Unsupported { reason } => (
            Outcome::Unsupported,
            None,
            Vec::new(),
            Some(reason.clone()),
            None,
        ),
        Verdict::Error { reason } => (Outcome::Error, None, Vec::new(), Some(reason.clone()), None),
    };
    let failed = matches!(check.verdict, Verdict::Fail { .. });
    let counterexample = check.counterexample.as_ref().filter(|_| failed).map(|c| {
        let events = c.event_lines();
        let (shrunk, original_events) = match c {
            Counterexample::Scenario {
                shrunk,
                original_steps,
                ..
            } => (*shrunk, *original_steps),
            Counterexample::Script { .. } => (false, events.len()),
        };
        CounterexampleEntry {
            kind: c.kind().into(),
            shrunk,
            original_events,
            events,
            replay_file: c
                .replay_json()
                .map(|_| format!("{}.counterexample.json", check.id)),
        }
    });
    let artifacts = Artifacts {
        pcap: format!("{}.pcap", check.id),
        trace: format!("{}.trace.txt", check.id),
        counterexample_replay: counterexample.as_ref().and_then(|c| c.replay_file.clone()),
        counterexample_pcap: (failed && check.counterexample.is_some())
            .then_some(())
            .and(check.counterexample_trace())
            .map(|_| format!("{}.counterexample.pcap", check.id)),
    };
    let cells = clause_cells(check, classification.as_ref());
    let entry = CheckEntry {
        id: check.id.into(),
        family: family_of(check.id),
        title: check.title.into(),
        outcome,
        verdict: check.verdict.label().into(),
        step,
        differences,
        reason,
        classification,
        clauses: check.all_clauses().iter().map(ClauseText::from).collect(),
        expected: check.expected.clone().filter(|_| failed),
        failed_at: check.failed_at.filter(|_| failed),
        counterexample,
        ladders: ladder::ladders(check),
        artifacts,
        duration_ms: check.duration_ms,
        environment: check.environment.clone(),
        retries: check.retries.clone(),
        not_checked: check
            .not_checked
            .iter()
            .map(|n| NotCheckedClause {
                clause: n.clause.into(),
                reason: n.reason.clone(),
            })
            .collect(),
        clause_cells: cells,
        other_kind: check.other_kind && matches!(check.verdict, Verdict::Unsupported { .. }),
    };
    (entry, matched)
}

/// [`CheckEntry::clause_cells`] of `check`: each breach classified by the clause it breaks
/// alone (an accepted check's breaches all by its acceptance).
fn clause_cells(check: &CheckReport, classification: Option<&Classification>) -> Vec<ClauseCells> {
    check
        .all_clauses()
        .iter()
        .filter_map(|c| check.clause_tallies.iter().find(|t| t.clause.id == c.id))
        .map(|t| ClauseCells {
            clause: t.clause.id.into(),
            ran: t.ran,
            failing: t.failing.clone(),
            classification: (!t.failing.is_empty()).then(|| match classification {
                Some(accepted @ Classification::AcceptedDeviation { .. }) => accepted.clone(),
                _ => deviations::classify(&[t.clause]),
            }),
        })
        .collect()
}

impl Report {
    /// The checks that ended with `outcome`, in run order.
    pub fn checks_with(&self, outcome: Outcome) -> Vec<&CheckEntry> {
        self.checks
            .iter()
            .filter(|c| c.outcome == outcome)
            .collect()
    }

    /// The report of `summary` with `deviations` applied.
    pub fn build(summary: &RunSummary, deviations: &Deviations) -> Report {
        let mut checks = Vec::with_capacity(summary.checks.len());
        let mut matched: Vec<usize> = Vec::new();
        for check in &summary.checks {
            let (entry, m) = entry_of(check, deviations);
            matched.extend(m);
            checks.push(entry);
        }
        let stale_deviations = deviations
            .entries
            .iter()
            .filter(|e| !matched.contains(&e.entry))
            .filter_map(|e| {
                let ran: Vec<(String, Outcome)> = checks
                    .iter()
                    .filter(|c| e.covers_check(&c.id))
                    .map(|c| (c.id.clone(), c.outcome))
                    .collect();
                (!ran.is_empty()).then(|| StaleEntry {
                    file: deviations.origin_name(),
                    entry: e.clone(),
                    checks: ran,
                })
            })
            .collect::<Vec<_>>();
        let mut counts = Counts {
            total: checks.len(),
            stale: stale_deviations.len(),
            ..Counts::default()
        };
        for c in &checks {
            counts.retries += c.retries.len();
            counts.other_kind += usize::from(c.other_kind);
            match c.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Accepted => counts.accepted += 1,
                Outcome::Unsupported => counts.unsupported += 1,
                Outcome::Error => counts.error += 1,
            }
        }
        let clauses = summary
            .by_clause()
            .into_iter()
            .map(|row| {
                let checks_of: Vec<(String, Outcome)> = row
                    .checks
                    .iter()
                    .map(|(id, _)| {
                        let outcome = checks
                            .iter()
                            .find(|c| c.id == *id)
                            .map(|c| c.outcome_for(row.clause.id))
                            .unwrap_or(Outcome::Error);
                        (id.to_string(), outcome)
                    })
                    .collect();
                let not_checked = checks_of
                    .iter()
                    .filter(|(id, _)| {
                        checks.iter().any(|c| {
                            c.id == *id && c.not_checked.iter().any(|n| n.clause == row.clause.id)
                        })
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                ClauseRow {
                    clause: ClauseText::from(&row.clause),
                    outcome: worst(checks_of.iter().map(|(_, o)| *o)),
                    checks: checks_of,
                    not_checked,
                }
            })
            .collect();
        let mut environment: Vec<String> = Vec::new();
        for line in summary.checks.iter().flat_map(|c| &c.environment) {
            if !environment.contains(line) {
                environment.push(line.clone());
            }
        }
        Report {
            format: FORMAT.into(),
            netconform_version: env!("CARGO_PKG_VERSION").into(),
            target: summary.target.clone(),
            profile: format!("{:?}", summary.profile),
            environment,
            deviations_file: deviations.origin.as_ref().map(|p| p.display().to_string()),
            counts,
            checks,
            clauses,
            stale_deviations,
            slow_not_run: Vec::new(),
        }
    }

    /// The report as pretty JSON (the content of `report.json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Parses `report.json` text; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Report, ReportError> {
        let path = origin.display().to_string();
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ReportError::Json {
                path: path.clone(),
                source,
            })?;
        let found = value["format"].as_str().unwrap_or("").to_string();
        if found != FORMAT {
            return Err(ReportError::Format { path, found });
        }
        serde_json::from_value(value).map_err(|source| ReportError::Json { path, source })
    }

    /// Reads a saved `report.json`.
    pub fn load(path: &Path) -> Result<Report, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Report::from_json(&text, path)
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&CheckEntry> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// The worst of some outcomes (`pass` for none).
pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    outcomes
        .into_iter()
        .max_by_key(|o| o.severity())
        .unwrap_or(Outcome::Pass)
}

/// The files [`write_dir`] wrote.
pub const REPORT_JSON: &str = "report.json";
/// The HTML page's name.
pub const REPORT_HTML: &str = "report.html";
/// The JUnit XML file's name.
pub const JUNIT_XML: &str = "junit.xml";

/// Writes the artifacts directory `dir` (created when missing) and returns the paths
/// written:
///
/// - per check: `<id>.pcap` (its frames) and `<id>.trace.txt` (the normalised trace);
/// - per failing check with a counterexample: `<id>.counterexample.json` (the file
///   `netconform replay` runs) and, when its run was recorded, `<id>.counterexample.pcap`;
/// - `report.json` ([`Report::to_json`]), `report.html` ([`html::render`]), `junit.xml`
///   ([`junit::render`]);
/// - `summary.json`: the run as before (the runner's serialisation plus its `clauses`
///   rows), for readers of the older file; it knows nothing of deviations.
pub fn write_dir(
    summary: &RunSummary,
    report: &Report,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), ReportError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        written.push(path);
        Ok(())
    };
    for (check, entry) in summary.checks.iter().zip(&report.checks) {
        put(
            &entry.artifacts.pcap,
            &pcap_bytes(&check.trace, dir, &entry.artifacts.pcap)?,
        )?;
        put(&entry.artifacts.trace, check.trace_text().as_bytes())?;
        if let (Some(name), Some(json)) = (
            &entry.artifacts.counterexample_replay,
            check.counterexample.as_ref().and_then(|c| c.replay_json()),
        ) {
            put(name, json.as_bytes())?;
        }
        if let (Some(name), Some(t)) = (
            &entry.artifacts.counterexample_pcap,
            check.counterexample_trace(),
        ) {
            put(name, &pcap_bytes(t, dir, name)?)?;
        }
    }
    put(REPORT_JSON, report.to_json().as_bytes())?;
    put(REPORT_HTML, html::render(report, summary).as_bytes())?;
    put(JUNIT_XML, junit::render(report).as_bytes())?;
    put("summary.json", summary.to_json().as_bytes())?;
    Ok(written)
}

fn pcap_bytes(trace: &crate::trace::Trace, dir: &Path, name: &str) -> Result<Vec<u8>, ReportError> {
    let mut bytes = Vec::new();
    trace
        .write_pcap(&mut bytes)
        .map_err(|e| ReportError::Capture {
            path: dir.join(name).display().to_string(),
            message: e.to_string(),
        })?;
    Ok(bytes)
}

/// `text` escaped for HTML and XML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
