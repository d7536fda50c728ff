//! Verdict stability over repeated certifications (`netconform certify --repeat N`).
//!
//! A conformance verdict must not depend on the machine's load: the same stack gets the
//! same verdict every time. This takes the reports of N runs of the same checks and says,
//! for each check, which outcome most runs gave (the majority) and how many runs gave
//! another (its flips), with the reasons the minority runs gave, so a flip can be traced to
//! its run's report (`run-K/`). Harness retries (each ruling out the harness's own loss) are
//! counted beside it: they are allowed, and shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Outcome, Report};

/// One run's outcome of a check: the outcome, what it said, its harness retries.
type RunOutcome = (Outcome, String, usize);

/// One check over all runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStability {
    /// The check's id.
    pub id: String,
    /// The outcome most runs gave (ties go to the earliest run's).
    pub majority: Outcome,
    /// How many runs gave another outcome.
    pub flips: usize,
    /// Each run's outcome, in run order (`None`: the check did not run in that run).
    pub outcomes: Vec<Option<Outcome>>,
    /// For every run that differed from the majority: its number (1-based) and what it
    /// said (the failing step, or the reason of an error or unsupported verdict).
    pub minority: Vec<(usize, String)>,
    /// Harness retries in this check, over all runs.
    pub retries: usize,
}

/// The stability of a series of runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stability {
    /// How many runs.
    pub runs: usize,
    /// Every check that ran in any run, in the first run's order.
    pub checks: Vec<CheckStability>,
}

impl Stability {
    /// Compares the outcomes of `reports` (one per run) check by check.
    pub fn of(reports: &[Report]) -> Stability {
        let mut order: Vec<String> = Vec::new();
        let mut by_id: BTreeMap<String, Vec<Option<RunOutcome>>> = BTreeMap::new();
        for (k, report) in reports.iter().enumerate() {
            for c in &report.checks {
                let slot = by_id.entry(c.id.clone()).or_insert_with(|| {
                    order.push(c.id.clone());
                    vec![None; reports.len()]
                });
                let why = c
                    .step
                    .clone()
                    .or_else(|| c.reason.clone())
                    .unwrap_or_default();
                slot[k] = Some((c.outcome, why, c.retries.len()));
            }
        }
        let checks = order
            .into_iter()
            .map(|id| {
                let runs = &by_id[&id];
                let mut tally: Vec<(Outcome, usize)> = Vec::new();
                for (o, _, _) in runs.iter().flatten() {
                    match tally.iter_mut().find(|(t, _)| t == o) {
                        Some((_, n)) => *n += 1,
                        None => tally.push((*o, 1)),
                    }
                }
                // The largest count; the first outcome seen wins a tie.
                let majority = tally
                    .iter()
                    .fold(None::<(Outcome, usize)>, |best, &(o, n)| match best {
                        Some((_, m)) if m >= n => best,
                        _ => Some((o, n)),
                    })
                    .map_or(Outcome::Error, |(o, _)| o);
                let minority: Vec<(usize, String)> = runs
                    .iter()
                    .enumerate()
                    .filter_map(|(k, r)| match r {
                        Some((o, why, _)) if *o != majority => {
                            Some((k + 1, format!("{}: {why}", o.label())))
                        }
                        None => Some((k + 1, "did not run".to_string())),
                        _ => None,
                    })
                    .collect();
                CheckStability {
                    flips: minority.len(),
                    majority,
                    outcomes: runs
                        .iter()
                        .map(|r| r.as_ref().map(|(o, _, _)| *o))
                        .collect(),
                    retries: runs.iter().flatten().map(|(_, _, n)| n).sum(),
                    minority,
                    id,
                }
            })
            .collect();
        Stability {
            runs: reports.len(),
            checks,
        }
    }

    /// Checks whose outcome differed from their majority in some run.
    pub fn flipped(&self) -> Vec<&CheckStability> {
        self.checks.iter().filter(|c| c.flips > 0).collect()
    }

    /// Flips over all checks.
    pub fn total_flips(&self) -> usize {
        self.checks.iter().map(|c| c.flips).sum()
    }

    /// Harness retries over all checks and runs.
    pub fn total_retries(&self) -> usize {
        self.checks.iter().map(|c| c.retries).sum()
    }

    /// The table printed at the end of `certify --repeat`: one line per check with its
    /// majority, flips and retries, then every minority run with what it said, and a
    /// closing line of totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self
            .checks
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:>5}  {:>7}",
            "check", "majority", "flips", "retries"
        );
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{:<width$}  {:<11}  {:>5}  {:>7}",
                c.id,
                c.majority.label(),
                c.flips,
                c.retries
            );
        }
        for c in self.flipped() {
            let _ = writeln!(out, "\n{} differed from {}:", c.id, c.majority.label());
            for (run, what) in &c.minority {
                let _ = writeln!(out, "  run {run}: {what}");
            }
        }
        let _ = writeln!(
            out,
            "\n{} runs of {} checks: {} checks flipped ({} flips in all), {} harness retries",
            self.runs,
            self.checks.len(),
            self.flipped().len(),
            self.total_flips(),
            self.total_retries()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckEntry, Counts};

    fn entry(id: &str, outcome: Outcome, step: Option<&str>, retries: usize) -> CheckEntry {
        let json = serde_json::json!({
            "id": id, "family": "tcp", "title": "t", "outcome": outcome,
            "verdict": outcome.label(), "step": step, "differences": [], "reason": null,
            "classification": null, "clauses": [], "expected": null, "failed_at": null,
            "counterexample": null, "ladders": null,
            "artifacts": {"pcap": "", "trace": "", "counterexample_replay": null, "counterexample_pcap": null},
            "duration_ms": 1, "environment": [],
            "retries": vec!["lost probe"; retries],
        });
        serde_json::from_value(json).expect("a check entry")
    }

    fn report(checks: Vec<CheckEntry>) -> Report {
        let json = serde_json::json!({
            "format": "x", "netconform_version": "0", "target": "linux", "profile": "linux",
            "environment": [], "deviations_file": null, "counts": Counts::default(),
            "checks": [], "clauses": [], "stale_deviations": [],
        });
        let mut r: Report = serde_json::from_value(json).expect("a report");
        r.checks = checks;
        r
    }

    #[test]
    fn a_stable_series_has_no_flips() {
        let runs: Vec<Report> = (0..3)
            .map(|_| report(vec![entry("a", Outcome::Pass, None, 0)]))
            .collect();
        let s = Stability::of(&runs);
        assert_eq!(s.total_flips(), 0);
        assert!(s.flipped().is_empty());
        assert!(s.render().contains("3 runs of 1 checks: 0 checks flipped"));
    }

    #[test]
    fn a_minority_outcome_is_a_flip_with_its_run_and_reason() {
        let runs = vec![
            report(vec![
                entry("a", Outcome::Pass, None, 1),
                entry("b", Outcome::Fail, Some("s"), 0),
            ]),
            report(vec![
                entry("a", Outcome::Fail, Some("step 3: late"), 0),
                entry("b", Outcome::Fail, Some("s"), 0),
            ]),
            report(vec![entry("a", Outcome::Pass, None, 0)]),
        ];
        let s = Stability::of(&runs);
        let a = &s.checks[0];
        assert_eq!((a.majority, a.flips, a.retries), (Outcome::Pass, 1, 1));
        assert_eq!(a.minority, vec![(2, "FAIL: step 3: late".to_string())]);
        let b = &s.checks[1];
        assert_eq!((b.majority, b.flips), (Outcome::Fail, 1));
        assert_eq!(b.minority, vec![(3, "did not run".to_string())]);
        assert_eq!(s.total_flips(), 2);
        assert_eq!(s.total_retries(), 1);
        let text = s.render();
        assert!(text.contains("run 2: FAIL: step 3: late"), "{text}");
        assert!(
            text.contains("2 checks flipped (2 flips in all), 1 harness retries"),
            "{text}"
        );
    }
}
