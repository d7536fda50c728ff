//! Runs checks against fresh targets, in parallel, and collects their verdicts and traces.
//!
//! Every check gets its own target (for Linux: its own pair of namespaces), so checks never
//! see each other's traffic or state and can run side by side. A panic inside a check is
//! caught and reported as an `Error` verdict for that check: one broken check does not
//! take the run down, and the target's guard still cleans up as the panic unwinds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::dut::{Dut, DutError};
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome};
use crate::engine::{CheckError, CheckSpec, Clause, ClauseTally, NotChecked, Session, Verdict};
use crate::models::profile::ProfileName;
use crate::trace::{HostNames, Trace};

/// Makes a fresh target for one check (the check says what it needs, e.g. IPv6).
pub type DutFactory<'a> = dyn Fn(&CheckSpec) -> Result<Box<dyn Dut>, DutError> + Sync + 'a;

/// The outcome of one check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The check's id.
    pub id: &'static str,
    /// What the check does.
    pub title: &'static str,
    /// The clauses it enforces.
    pub clauses: Vec<Clause>,
    /// Its verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wall time the check took, in milliseconds (setting up the target included).
    pub duration_ms: u64,
    /// The recorded exchange.
    #[serde(skip)]
    pub trace: Trace,
    /// Names used to render the trace.
    #[serde(skip)]
    pub names: HostNames,
    /// The environment the target recorded (pinned sysctls and the like).
    pub environment: Vec<String>,
    /// What the failing step expected (a frame's description, `no frame`, a call's outcome);
    /// `None` when the check passed or failed outside a comparison.
    pub expected: Option<String>,
    /// Index in the trace's events of the observation that failed (the frame that did not
    /// match, or the end of the trace when nothing came); `None` when the check did not fail.
    pub failed_at: Option<usize>,
    /// The smallest input known to fail this check (scenario checks only), shrunk against
    /// the same kind of target when the run allowed it.
    pub counterexample: Option<Counterexample>,
    /// The counterexample's last failing run (the shrunk one): its trace and where it
    /// failed. The report draws a scenario check's ladders from it, since the check's own
    /// trace holds many scenarios (a matrix row: 96).
    #[serde(skip)]
    pub counterexample_run: Option<FailedRun>,
    /// The retries the harness made to rule out its own loss (a barrier probe that never
    /// reached the stack), one line each. A retry never turns a wrong answer into a pass:
    /// it is made only when the stack provably did not receive the harness's frame.
    pub retries: Vec<String>,
    /// The clauses no observation checked ([`Session::not_checked`]), with why. A check
    /// with one does not pass: see [`not_checked_verdict`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_checked: Vec<NotChecked>,
    /// Per clause, the cases of the check that exercised it and those that broke it
    /// ([`Session::tally`]); empty for a check that is one case.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clause_tallies: Vec<ClauseTally>,
    /// Unsupported because the check is for another kind of device than the target (a
    /// switch check on a host stack, a TCP check on a TLS service): refused before it ran,
    /// and not counted among the unsupported checks of the target's kind.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other_kind: bool,
}

/// One failing run of a counterexample: its trace, the index of the observation that failed
/// ([`CheckReport::failed_at`]'s meaning), what that step expected, and the differences.
#[derive(Debug, Clone)]
pub struct FailedRun {
    /// The recorded exchange.
    pub trace: Trace,
    /// Index in `trace.events` of the failing observation (`events.len()`: nothing came).
    pub failed_at: usize,
    /// What the failing step expected.
    pub expected: Option<String>,
    /// The failure's differences, as the verdict lists them.
    pub differences: Vec<String>,
}

impl CheckReport {
    /// The trace of the counterexample's last failing run.
    pub fn counterexample_trace(&self) -> Option<&Trace> {
        self.counterexample_run.as_ref().map(|r| &r.trace)
    }

    /// The trace rendered as normalised text.
    pub fn trace_text(&self) -> String {
        self.trace.render(&self.names)
    }

    /// The clauses a failure breaks: those its tallied cases broke, in the check's order
    /// (then the order tallied); when no tallied case broke one, every clause of the check
    /// but those whose tallied cases all held (all of them when that leaves none).
    pub fn broken_clauses(&self) -> Vec<Clause> {
        let broken: Vec<Clause> = self
            .clause_tallies
            .iter()
            .filter(|t| !t.failing.is_empty())
            .map(|t| t.clause)
            .collect();
        if !matches!(self.verdict, Verdict::Fail { .. }) {
            return self.clauses.clone();
        }
        if broken.is_empty() {
            let held = |c: &Clause| {
                self.clause_tallies
                    .iter()
                    .any(|t| t.clause.id == c.id && t.ran > 0 && t.failing.is_empty())
            };
            let rest: Vec<Clause> = self.clauses.iter().filter(|c| !held(c)).copied().collect();
            return if rest.is_empty() {
                self.clauses.clone()
            } else {
                rest
            };
        }
        let mut ordered: Vec<Clause> = self
            .clauses
            .iter()
            .filter(|c| broken.iter().any(|b| b.id == c.id))
            .copied()
            .collect();
        ordered.extend(
            broken
                .into_iter()
                .filter(|b| !self.clauses.iter().any(|c| c.id == b.id)),
        );
        ordered
    }

    /// The verdict label of this check for one of its clauses: a failing check that tallied
    /// its cases holds a clause whose cases all agreed (`PASS`) and fails only the clauses
    /// its cases broke; a clause no case exercised, and every clause of any other check,
    /// takes the check's own label.
    pub fn label_for(&self, clause: &str) -> &'static str {
        if matches!(self.verdict, Verdict::Fail { .. })
            && let Some(t) = self.clause_tallies.iter().find(|t| t.clause.id == clause)
            && t.ran > 0
        {
            return if t.failing.is_empty() { "PASS" } else { "FAIL" };
        }
        self.verdict.label()
    }

    /// The clauses of the check and, after them, any other clause its cases tallied.
    pub fn all_clauses(&self) -> Vec<Clause> {
        let mut all = self.clauses.clone();
        for t in &self.clause_tallies {
            if !all.iter().any(|c| c.id == t.clause.id) {
                all.push(t.clause);
            }
        }
        all
    }
}

/// A clause and the verdicts of the checks that enforce it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClauseVerdict {
    /// The clause.
    pub clause: Clause,
    /// (check id, verdict label) for every check that enforces it.
    pub checks: Vec<(&'static str, &'static str)>,
}

impl ClauseVerdict {
    /// `PASS` when every check passed, else the worst label (`ERROR`, `FAIL`, `UNSUPPORTED`).
    pub fn label(&self) -> &'static str {
        for worst in ["ERROR", "FAIL", "UNSUPPORTED"] {
            if self.checks.iter().any(|(_, l)| *l == worst) {
                return worst;
            }
        }
        "PASS"
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The target's name.
    pub target: String,
    /// The profile the models followed.
    pub profile: ProfileName,
    /// One report per check, in catalogue order.
    pub checks: Vec<CheckReport>,
}

impl RunSummary {
    /// How many checks ended with each verdict: (pass, fail, unsupported, error).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for r in &self.checks {
            match r.verdict {
                Verdict::Pass => c.0 += 1,
                Verdict::Fail { .. } => c.1 += 1,
                Verdict::Unsupported { .. } => c.2 += 1,
                Verdict::Error { .. } => c.3 += 1,
            }
        }
        c
    }

    /// One row per clause, in order of first appearance: the clause and the labels of the
    /// verdicts of the checks that enforce it. A clause holds when every such check passed.
    pub fn by_clause(&self) -> Vec<ClauseVerdict> {
        let mut rows: Vec<ClauseVerdict> = Vec::new();
        for report in &self.checks {
            for clause in &report.all_clauses() {
                let row = match rows.iter_mut().position(|r| r.clause.id == clause.id) {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(ClauseVerdict {
                            clause: *clause,
                            checks: Vec::new(),
                        });
                        rows.last_mut().expect("just pushed")
                    }
                };
                row.checks.push((report.id, report.label_for(clause.id)));
            }
        }
        rows
    }

    /// The run as `summary.json` holds it: every check's verdict (without traces) and a
    /// row per clause.
    pub fn to_json(&self) -> String {
        let clauses: Vec<serde_json::Value> = self
            .by_clause()
            .iter()
            .map(|c| serde_json::json!({ "clause": c.clause, "verdict": c.label(), "checks": c.checks }))
            .collect();
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        value["clauses"] = serde_json::Value::Array(clauses);
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

/// The verdict a check's error stands for.
pub fn verdict_of(error: &CheckError) -> Verdict {
    match error {
        CheckError::Mismatch { step, differences } => Verdict::Fail {
            step: step.clone(),
            differences: differences.clone(),
        },
        CheckError::NothingObserved { step, waited } => Verdict::Fail {
            step: step.clone(),
            differences: vec![format!("nothing arrived within {waited}")],
        },
        CheckError::Unexpected { step, observed } => Verdict::Fail {
            step: step.clone(),
            differences: vec![format!("expected no frame, observed {observed}")],
        },
        CheckError::WrongAnswer {
            step,
            expected,
            observed,
        } => Verdict::Fail {
            step: step.clone(),
            differences: vec![format!("expected {expected}, observed {observed}")],
        },
        CheckError::Dut {
            step,
            source: DutError::NotSupported { what },
        } => Verdict::Unsupported {
            reason: format!("{step}: {what}"),
        },
        CheckError::Dut { step, source } => Verdict::Error {
            reason: format!("{step}: {source}"),
        },
        CheckError::Harness { .. } => Verdict::Error {
            reason: error.to_string(),
        },
    }
}

/// The verdict of a check that otherwise succeeded but left clauses not checked: an error
/// (the harness could not observe what the clauses need), never a pass, naming each clause.
pub fn not_checked_verdict(not_checked: &[NotChecked]) -> Verdict {
    let clauses: Vec<String> = not_checked
        .iter()
        .map(|n| format!("{}: {}", n.clause, n.reason))
        .collect();
    Verdict::Error {
        reason: format!(
            "not checked ({} clause(s) no observation checked): {}",
            not_checked.len(),
            clauses.join("; ")
        ),
    }
}

/// Runs one check on a fresh target from `factory`, its models following `profile`.
pub fn run_one(spec: &CheckSpec, factory: &DutFactory<'_>, profile: ProfileName) -> CheckReport {
    run_one_with(spec, factory, profile, true)
}

/// [`run_one`], shrinking a failing scenario only when `shrink` (mutation analysis needs
/// the verdict, not the minimal counterexample).
pub fn run_one_with(
    spec: &CheckSpec,
    factory: &DutFactory<'_>,
    profile: ProfileName,
    shrink_failures: bool,
) -> CheckReport {
    let started = std::time::Instant::now();
    let mut report = CheckReport {
        id: spec.id,
        title: spec.title,
        clauses: spec.clauses.to_vec(),
        verdict: Verdict::Pass,
        duration_ms: 0,
        trace: Trace::default(),
        names: HostNames::default(),
        environment: Vec::new(),
        expected: None,
        failed_at: None,
        counterexample: None,
        counterexample_run: None,
        retries: Vec::new(),
        not_checked: Vec::new(),
        clause_tallies: Vec::new(),
        other_kind: false,
    };
    let mut other_kind = false;
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), Verdict> {
        // A factory refuses only a check for another kind of device (the openssl target
        // builds nothing but a TLS service).
        let mut target = factory(spec).map_err(|e| match e {
            DutError::NotSupported { what } => {
                other_kind = true;
                Verdict::Unsupported { reason: what }
            }
            e => Verdict::Error {
                reason: format!("setting up the target: {e}"),
            },
        })?;
        report.environment = target.environment();
        // A DUT that lacks a plane the check uses is refused before the check runs.
        let caps = target.capabilities();
        if let Some(reason) = spec.needs.unmet(&caps) {
            other_kind = spec.needs.other_kind(&caps);
            return Err(Verdict::Unsupported { reason });
        }
        let mut session = Session::with_profile(target.as_mut(), profile);
        let result = (spec.run)(&mut session);
        report.names = session.host_names().clone();
        report.retries = session.retries().to_vec();
        report.not_checked = session.clauses_not_checked().to_vec();
        report.clause_tallies = session.clause_tallies().to_vec();
        let not_applicable = session.clauses_not_applicable();
        report.clauses.retain(|c| !not_applicable.contains(&c.id));
        if let Err(e) = &result
            && e.is_disagreement()
        {
            report.expected = expected_of(&session, e);
            report.counterexample = session.counterexample().cloned();
        }
        report.trace = session.into_trace();
        if let Err(e) = &result {
            let at = failure_index(&report.trace, e);
            report.failed_at = Some(at);
            if report.counterexample.is_none() && e.is_disagreement() {
                report.counterexample = Some(script_of(&report.trace, at));
            }
        }
        match result {
            Ok(()) if !report.not_checked.is_empty() => {
                Err(not_checked_verdict(&report.not_checked))
            }
            result => result.map_err(|e| verdict_of(&e)),
        }
    }));
    report.other_kind = other_kind;
    report.verdict = match outcome {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(verdict)) => verdict,
        Err(panic) => {
            let what = crate::dut::panic_message(panic.as_ref());
            Verdict::Error {
                reason: format!("harness bug: the check panicked: {what}"),
            }
        }
    };
    if let Some(Counterexample::Scenario { scenario, .. }) = report.counterexample.clone()
        && matches!(report.verdict, Verdict::Fail { .. })
        && shrink_failures
    {
        let (shrunk, trace) = shrink(spec, factory, profile, scenario.as_ref());
        report.counterexample = Some(shrunk);
        report.counterexample_run = trace;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The harness's own actions in `trace` before event `at`: the script that led to a
/// failure, for a check that has no scenario to shrink.
fn script_of(trace: &Trace, at: usize) -> Counterexample {
    use crate::trace::{Direction, EventKind};
    let steps = trace.events[..at.min(trace.events.len())]
        .iter()
        .filter_map(|e| {
            let when = e.at.total_millis();
            match &e.kind {
                EventKind::Frame {
                    direction: Direction::Sent,
                    bytes,
                    port,
                } => {
                    let what = match crate::wire::Frame::parse(bytes) {
                        Ok(f) => f.summary(),
                        Err(err) => format!("malformed frame ({} bytes): {err}", bytes.len()),
                    };
                    let port = port.map(|p| format!(" into p{p}")).unwrap_or_default();
                    Some(format!("{when} ms: send{port} {what}"))
                }
                EventKind::Call { text, result } => Some(format!("{when} ms: {text} -> {result}")),
                _ => None,
            }
        })
        .collect();
    Counterexample::Script { steps }
}

/// Where in `trace` the failure of `error` was observed: when a frame did not match (or
/// came where silence was expected), the last frame the stack sent, if it came after the
/// harness's last frame (else the stack answered nothing to it); otherwise the end.
fn failure_index(trace: &Trace, error: &CheckError) -> usize {
    use crate::trace::{Direction, EventKind};
    let frame_was_wrong = matches!(
        error,
        CheckError::Mismatch { .. } | CheckError::Unexpected { .. }
    );
    let last = |want: Direction| {
        trace.events.iter().rposition(
            |e| matches!(&e.kind, EventKind::Frame { direction, .. } if *direction == want),
        )
    };
    match (last(Direction::Received), last(Direction::Sent)) {
        (Some(received), sent) if frame_was_wrong && sent.is_none_or(|s| s < received) => received,
        _ => trace.events.len(),
    }
}

/// What the failing step of `session` expected: the expectation it was waiting on, else
/// the expected value of a wrong answer, else the first difference (a scenario's model
/// comparison says `expected ...` there).
fn expected_of(session: &Session<'_>, error: &CheckError) -> Option<String> {
    session
        .expecting()
        .map(str::to_string)
        .or_else(|| match error {
            CheckError::WrongAnswer { expected, .. } => Some(expected.clone()),
            CheckError::Mismatch { differences, .. } => differences
                .first()
                .map(|d| d.strip_prefix("expected ").unwrap_or(d).to_string()),
            _ => None,
        })
}

/// The kind of a scenario's failure, for shrinking: a smaller scenario counts only when it
/// fails the same way (same field first, or same kind of step); errors of the target never
/// count.
fn failure_signature(error: &CheckError) -> Option<String> {
    match error {
        CheckError::Mismatch { differences, .. } => Some(format!(
            "mismatch {}",
            differences
                .first()
                .and_then(|d| d.split(':').next())
                .unwrap_or("")
        )),
        CheckError::NothingObserved { .. } => Some("nothing observed".into()),
        CheckError::Unexpected { .. } => Some("unexpected frame".into()),
        CheckError::WrongAnswer { .. } => Some("wrong answer".into()),
        _ => None,
    }
}

/// Most trial runs a shrink makes (each on a fresh target).
const SHRINK_TRIALS: usize = 40;

/// Shrinks a failing scenario of any suite by deleting steps one at a time (to a fixpoint)
/// while a fresh target still fails it the same way. The scenario is first run again
/// unchanged: a failure that does not come back is reported unshrunk. Returns the
/// counterexample and the trace of its last failing run.
pub fn shrink(
    spec: &CheckSpec,
    factory: &DutFactory<'_>,
    profile: ProfileName,
    scenario: &dyn Scenario,
) -> (Counterexample, Option<FailedRun>) {
    let trial = |candidate: &dyn Scenario| -> Option<(String, FailedRun)> {
        catch_unwind(AssertUnwindSafe(|| {
            let mut target = factory(spec).ok()?;
            let mut session = Session::with_profile(target.as_mut(), profile);
            let error = match candidate.run(&mut session) {
                Err(error) => error,
                Ok(ScenarioOutcome::Agreed { .. } | ScenarioOutcome::Inconclusive { .. }) => {
                    return None;
                }
            };
            let signature = failure_signature(&error)?;
            let expected = expected_of(&session, &error);
            let trace = session.into_trace();
            let differences = match verdict_of(&error) {
                Verdict::Fail { differences, .. } => differences,
                _ => Vec::new(),
            };
            Some((
                signature,
                FailedRun {
                    failed_at: failure_index(&trace, &error),
                    trace,
                    expected,
                    differences,
                },
            ))
        }))
        .ok()
        .flatten()
    };
    let original_steps = scenario.len();
    let Some((signature, mut run)) = trial(scenario) else {
        return (Counterexample::scenario(scenario.clone_box()), None);
    };
    let mut best = shrink_steps(
        scenario,
        &mut |candidate| match trial(candidate) {
            Some((s, r)) if s == signature => {
                run = r;
                true
            }
            _ => false,
        },
        SHRINK_TRIALS - 1,
    );
    let shrunk = best.len() < original_steps;
    if shrunk {
        let name = format!(
            "{} (shrunk to {} of {} steps)",
            scenario.name(),
            best.len(),
            original_steps
        );
        best.set_name(name);
    }
    (
        Counterexample::Scenario {
            scenario: best,
            shrunk,
            original_steps,
        },
        Some(run),
    )
}

/// The generic shrink: deletes the steps of `scenario` one at a time, last first, to a
/// fixpoint, keeping each deletion after which `still_fails` holds, and tries at most
/// `max_trials` candidates. [`shrink`] runs it with "a fresh target fails the same way";
/// the stack fuzz targets (`fuzz::stacks`) with "the same finding group".
pub fn shrink_steps(
    scenario: &dyn Scenario,
    still_fails: &mut dyn FnMut(&dyn Scenario) -> bool,
    max_trials: usize,
) -> Box<dyn Scenario> {
    let mut best = scenario.clone_box();
    let mut trials = 0;
    let mut progress = true;
    while progress && trials < max_trials {
        progress = false;
        let mut i = best.len();
        while i > 0 && trials < max_trials {
            i -= 1;
            let candidate = best.without_step(i);
            trials += 1;
            if still_fails(candidate.as_ref()) {
                best = candidate;
                progress = true;
            }
        }
    }
    best
}

/// Told when each check of a run starts and ends (a progress bar, a log).
pub trait Progress: Sync {
    /// `spec` is about to run.
    fn started(&self, spec: &CheckSpec) {
        let _ = spec;
    }
    /// A check ended with `report`.
    fn finished(&self, report: &CheckReport);
}

/// Progress that nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn finished(&self, _report: &CheckReport) {}
}

impl<F: Fn(&CheckReport) + Sync> Progress for F {
    fn finished(&self, report: &CheckReport) {
        self(report)
    }
}

/// Runs `checks`, up to `parallel` at a time, each on its own target; `progress` is told
/// when each one starts and ends.
pub fn run_checks(
    target_name: &str,
    checks: &[CheckSpec],
    factory: &DutFactory<'_>,
    parallel: usize,
    profile: ProfileName,
    progress: &dyn Progress,
) -> RunSummary {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CheckReport>>> = Mutex::new(vec![None; checks.len()]);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1).min(checks.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(spec) = checks.get(i) else { break };
                    progress.started(spec);
                    let report = run_one(spec, factory, profile);
                    progress.finished(&report);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
                }
            });
        }
    });
    let checks = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    RunSummary {
        target: target_name.to_string(),
        profile,
        checks,
    }
}

#[cfg(test)]
mod tests;
