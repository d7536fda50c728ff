//! Runs checks against fresh targets, in parallel, and collects their verdicts and traces.
//!
//! Every check gets its own target (for Linux: its own pair of namespaces), so checks never
//! see each other's traffic or state and can run side by side. A panic inside a check is
//! caught and reported as an `Error` verdict for that check: one broken check does not
//! take the run down, and the target's guard still cleans up as the panic unwinds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::check::tcp_scenario::ProfileName;
use crate::check::{CheckError, CheckSpec, Clause, Session, Verdict};
use crate::target::{Target, TargetError};
use crate::trace::{HostNames, Trace};

/// Makes a fresh target for one check (the check says what it needs, e.g. IPv6).
pub type TargetFactory<'a> = dyn Fn(&CheckSpec) -> Result<Box<dyn Target>, TargetError> + Sync + 'a;

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
}

impl CheckReport {
    /// The trace rendered as normalised text.
    pub fn trace_text(&self) -> String {
        self.trace.render(&self.names)
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
            for clause in &report.clauses {
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
                row.checks.push((report.id, report.verdict.label()));
            }
        }
        rows
    }

    /// True when every check passed.
    pub fn all_passed(&self) -> bool {
        self.checks.iter().all(|r| r.verdict == Verdict::Pass)
    }

    /// Writes, per check, `<id>.pcap` and `<id>.trace.txt`, and `summary.json` for the run.
    pub fn write_artifacts(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for report in &self.checks {
            let mut pcap = std::fs::File::create(dir.join(format!("{}.pcap", report.id)))?;
            report
                .trace
                .write_pcap(&mut pcap)
                .map_err(std::io::Error::other)?;
            std::fs::write(
                dir.join(format!("{}.trace.txt", report.id)),
                report.trace_text(),
            )?;
        }
        let clauses: Vec<serde_json::Value> = self
            .by_clause()
            .iter()
            .map(|c| serde_json::json!({ "clause": c.clause, "verdict": c.label(), "checks": c.checks }))
            .collect();
        let mut value = serde_json::to_value(self).map_err(std::io::Error::other)?;
        value["clauses"] = serde_json::Value::Array(clauses);
        let json = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("summary.json"), json)
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
        CheckError::Target {
            step,
            source: TargetError::NotSupported { what },
        } => Verdict::Unsupported {
            reason: format!("{step}: {what}"),
        },
        CheckError::Target { step, source } => Verdict::Error {
            reason: format!("{step}: {source}"),
        },
    }
}

/// Runs one check on a fresh target from `factory`, its models following `profile`.
pub fn run_one(spec: &CheckSpec, factory: &TargetFactory<'_>, profile: ProfileName) -> CheckReport {
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
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), Verdict> {
        let mut target = factory(spec).map_err(|e| Verdict::Error {
            reason: format!("setting up the target: {e}"),
        })?;
        report.environment = target.environment();
        let mut session = Session::with_profile(target.as_mut(), profile);
        let result = (spec.run)(&mut session);
        report.names = session.host_names().clone();
        report.trace = session.into_trace();
        result.map_err(|e| verdict_of(&e))
    }));
    report.verdict = match outcome {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(verdict)) => verdict,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Verdict::Error {
                reason: format!("harness bug: the check panicked: {what}"),
            }
        }
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// Runs `checks`, up to `parallel` at a time, each on its own target; `progress` is told
/// when each one ends.
pub fn run_checks(
    target_name: &str,
    checks: &[CheckSpec],
    factory: &TargetFactory<'_>,
    parallel: usize,
    profile: ProfileName,
    progress: &(dyn Fn(&CheckReport) + Sync),
) -> RunSummary {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CheckReport>>> = Mutex::new(vec![None; checks.len()]);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1).min(checks.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(spec) = checks.get(i) else { break };
                    let report = run_one(spec, factory, profile);
                    progress(&report);
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
