//! Mutation analysis of the catalogue: does each check notice a stack that does one small
//! thing wrong?
//!
//! Every check first runs on the DUT as it is (its baseline). A check that passes it then
//! runs once per spoil of the planes it uses ([`spoils_for`]: frame spoils for a check that
//! uses the link, a misreported call for one that uses sockets, a misreported entry or an
//! ignored setting for one that uses tables, a flipped byte for one that uses a service),
//! each time on a fresh DUT wrapped in a [`Spoiled`]. The outcome of each run is a cell of
//! the **kill matrix** ([`Outcome`]):
//!
//! - **killed**: the check failed, and the spoil acted: the check noticed;
//! - **survived**: the check passed although the spoil acted;
//! - **not applied**: the spoil never acted (nothing it could change crossed it), so the run
//!   says nothing about the check;
//! - **flaky**: the check failed although the spoil never acted: the DUT was as it was in
//!   the baseline, so the verdict flipped on its own;
//! - **error** or **unsupported**: the run had no verdict on the stack.
//!
//! A check that passed its baseline and that no spoil killed is **vacuous**: nothing the
//! analysis did to what it observes made it fail. Checks that did not pass their baseline
//! are not judged (a failing check cannot show that it can fail).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::dut::needs::Uses;
use crate::dut::spoil::{Machinery, Spoil, Spoiled};
use crate::dut::{Dut, DutError};
use crate::engine::runner::{DutFactory, run_one_with};
use crate::engine::{CheckSpec, Needs, Verdict};
use crate::models::profile::ProfileName;

/// The spoils that touch what a check that needs `needs` observes, in a fixed order.
pub fn spoils_for(needs: &Needs) -> Vec<Spoil> {
    let mut out = Vec::new();
    if needs.uses.contains(&Uses::Link) {
        out.extend(Spoil::link());
    }
    if needs.uses.contains(&Uses::TcpSockets) || needs.uses.contains(&Uses::UdpSockets) {
        out.push(Spoil::CallOutcome);
    }
    if needs.uses.contains(&Uses::Tables) {
        out.push(Spoil::TableEntry);
        out.push(Spoil::TablePhantom);
        out.push(Spoil::IgnoreSettings);
    }
    if needs.uses.iter().any(|u| matches!(u, Uses::Service(_))) {
        out.push(Spoil::ServiceByte);
    }
    out
}

/// What one spoiled run of a check said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The check failed, and the spoil acted.
    Killed {
        /// The failing step.
        step: String,
    },
    /// The check passed although the spoil acted.
    Survived,
    /// The spoil never acted.
    NotApplied,
    /// The check failed although the spoil never acted: its verdict flipped on its own.
    Flaky {
        /// The failing step.
        step: String,
    },
    /// The run ended in an error.
    Error {
        /// Why.
        reason: String,
    },
    /// The DUT could not perform an event of the spoiled run.
    Unsupported {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// One character for the matrix.
    pub fn mark(&self) -> char {
        match self {
            Outcome::Killed { .. } => 'K',
            Outcome::Survived => '.',
            Outcome::NotApplied => '-',
            Outcome::Flaky { .. } => '!',
            Outcome::Error { .. } => 'E',
            Outcome::Unsupported { .. } => 'U',
        }
    }

    fn of(verdict: &Verdict, acted: usize) -> Outcome {
        match (verdict, acted) {
            (Verdict::Fail { step, .. }, 0) => Outcome::Flaky { step: step.clone() },
            (Verdict::Fail { step, .. }, _) => Outcome::Killed { step: step.clone() },
            (Verdict::Pass, 0) => Outcome::NotApplied,
            (Verdict::Pass, _) => Outcome::Survived,
            (Verdict::Error { reason }, _) => Outcome::Error {
                reason: reason.clone(),
            },
            (Verdict::Unsupported { reason }, _) => Outcome::Unsupported {
                reason: reason.clone(),
            },
        }
    }
}

/// One spoiled run.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The spoil.
    pub spoil: Spoil,
    /// What the check said.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One check's row of the kill matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The check.
    pub id: &'static str,
    /// Its verdict on the DUT as it is (`PASS`, `FAIL`, ...).
    pub baseline: &'static str,
    /// Why the baseline did not pass (its failing step and first difference, or its
    /// reason); empty when it passed.
    pub baseline_detail: String,
    /// Its spoiled runs, in [`spoils_for`] order (none when the baseline did not pass).
    pub cells: Vec<Cell>,
}

impl Row {
    /// Whether the row is judged: the check passed its baseline.
    pub fn judged(&self) -> bool {
        self.baseline == "PASS"
    }

    /// The spoils that killed the check.
    pub fn killers(&self) -> Vec<Spoil> {
        self.cells
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Killed { .. }))
            .map(|c| c.spoil)
            .collect()
    }

    /// Whether the check passed its baseline and no spoil killed it.
    pub fn vacuous(&self) -> bool {
        self.judged() && self.killers().is_empty()
    }

    /// The check's family: its id up to the first dot (`tcp`, `arp`, `switch`, ...).
    pub fn family(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

/// A family's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Family {
    /// Checks that passed their baseline.
    pub judged: usize,
    /// Of those, checks some spoil killed.
    pub killed: usize,
    /// Checks that did not pass their baseline (not judged).
    pub not_judged: usize,
}

impl Family {
    /// Killed checks per judged check, in percent (100 when none was judged).
    pub fn kill_rate(&self) -> f64 {
        if self.judged == 0 {
            100.0
        } else {
            100.0 * self.killed as f64 / self.judged as f64
        }
    }
}

/// The kill matrix of a run.
#[derive(Debug, Clone, Serialize)]
pub struct KillMatrix {
    /// The DUT's name.
    pub target: String,
    /// The profile the models followed.
    pub profile: ProfileName,
    /// One row per check, in catalogue order.
    pub rows: Vec<Row>,
}

impl KillMatrix {
    /// The figures of each family, by name.
    pub fn families(&self) -> BTreeMap<&'static str, Family> {
        let mut out: BTreeMap<&'static str, Family> = BTreeMap::new();
        for row in &self.rows {
            let f = out.entry(row.family()).or_default();
            if !row.judged() {
                f.not_judged += 1;
            } else {
                f.judged += 1;
                if !row.vacuous() {
                    f.killed += 1;
                }
            }
        }
        out
    }

    /// The vacuous checks.
    pub fn vacuous(&self) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|r| r.vacuous())
            .map(|r| r.id)
            .collect()
    }

    /// The runs whose verdict flipped with no spoil acting, as `check: spoil`.
    pub fn flaky(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|r| {
                r.cells
                    .iter()
                    .filter(|c| matches!(c.outcome, Outcome::Flaky { .. }))
                    .map(move |c| format!("{}: {}", r.id, c.spoil))
            })
            .collect()
    }

    /// The matrix as text: a legend of the spoils, one line per check (a mark per spoil,
    /// then what killed it), the vacuous checks, and the kill rate of each family.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut spoils: Vec<Spoil> = Vec::new();
        for row in &self.rows {
            for c in &row.cells {
                if !spoils.contains(&c.spoil) {
                    spoils.push(c.spoil);
                }
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kill matrix of {} ({:?} profile): K killed, . survived, - not applied, ! flaky, E error, U unsupported",
            self.target, self.profile
        );
        for (i, s) in spoils.iter().enumerate() {
            let _ = writeln!(out, "  {:>2} {s}", i + 1);
        }
        let width = self.rows.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for row in &self.rows {
            if !row.judged() {
                let _ = writeln!(
                    out,
                    "{:width$}  not judged: {} ({})",
                    row.id, row.baseline, row.baseline_detail
                );
                continue;
            }
            let marks: String = spoils
                .iter()
                .map(|s| {
                    row.cells
                        .iter()
                        .find(|c| c.spoil == *s)
                        .map_or(' ', |c| c.outcome.mark())
                })
                .collect();
            let verdict = if row.vacuous() {
                "VACUOUS".to_string()
            } else {
                format!("killed by {}", row.killers().len())
            };
            let _ = writeln!(out, "{:width$}  {marks}  {verdict}", row.id);
        }
        let vacuous = self.vacuous();
        if vacuous.is_empty() {
            let _ = writeln!(out, "no vacuous check");
        } else {
            let _ = writeln!(
                out,
                "vacuous checks (no spoil of what they observe made them fail): {}",
                vacuous.join(", ")
            );
        }
        let flaky = self.flaky();
        if !flaky.is_empty() {
            let _ = writeln!(
                out,
                "verdicts that flipped with no spoil acting: {}",
                flaky.join(", ")
            );
        }
        for (name, f) in self.families() {
            let _ = writeln!(
                out,
                "{name}: {} of {} judged checks killed ({:.0} %){}",
                f.killed,
                f.judged,
                f.kill_rate(),
                if f.not_judged > 0 {
                    format!(", {} not judged", f.not_judged)
                } else {
                    String::new()
                }
            );
        }
        out
    }
}

/// Runs the mutation analysis of `checks` on DUTs from `factory`, `parallel` runs at a
/// time; `machinery` says which frames of a check are the harness's own. `progress` is
/// told each run's check, its spoil (`None`: the baseline) and, as it ends, its mark: the
/// outcome's ([`Outcome::mark`]) for a spoiled run, the verdict's label for a baseline.
pub fn mutate(
    target: &str,
    checks: &[CheckSpec],
    factory: &DutFactory<'_>,
    machinery: &(dyn Fn(&CheckSpec) -> Machinery + Sync),
    parallel: usize,
    profile: ProfileName,
    progress: &(dyn Fn(&CheckSpec, Option<Spoil>, &str) + Sync),
) -> KillMatrix {
    // The baselines first, then every spoil of every check that passed its own.
    let baselines = run_jobs(
        checks.iter().map(|c| (c, None)).collect(),
        factory,
        machinery,
        parallel,
        profile,
        progress,
    );
    let jobs: Vec<(&CheckSpec, Option<Spoil>)> = checks
        .iter()
        .zip(&baselines)
        .filter(|(_, (verdict, _, _))| *verdict == "PASS")
        .flat_map(|(c, _)| spoils_for(&c.needs).into_iter().map(move |s| (c, Some(s))))
        .collect();
    let spoiled = run_jobs(
        jobs.clone(),
        factory,
        machinery,
        parallel,
        profile,
        progress,
    );
    let mut rows: Vec<Row> = checks
        .iter()
        .zip(&baselines)
        .map(|(c, (verdict, _, detail))| Row {
            id: c.id,
            baseline: verdict,
            baseline_detail: detail.clone(),
            cells: Vec::new(),
        })
        .collect();
    for ((check, spoil), (_, outcome, _)) in jobs.iter().zip(spoiled) {
        if let (Some(row), Some(spoil), Some(outcome)) =
            (rows.iter_mut().find(|r| r.id == check.id), spoil, outcome)
        {
            row.cells.push(Cell {
                spoil: *spoil,
                outcome,
            });
        }
    }
    KillMatrix {
        target: target.to_string(),
        profile,
        rows,
    }
}

/// Runs each job (a check, spoiled or not) and returns, in job order, the verdict's label,
/// the outcome of a spoiled run (`None` for a baseline, which is judged by its verdict) and
/// what the verdict said when it was not a pass.
fn run_jobs(
    jobs: Vec<(&CheckSpec, Option<Spoil>)>,
    factory: &DutFactory<'_>,
    machinery: &(dyn Fn(&CheckSpec) -> Machinery + Sync),
    parallel: usize,
    profile: ProfileName,
    progress: &(dyn Fn(&CheckSpec, Option<Spoil>, &str) + Sync),
) -> Vec<(&'static str, Option<Outcome>, String)> {
    let next = AtomicUsize::new(0);
    type Done = (&'static str, Option<Outcome>, String);
    let results: Mutex<Vec<Option<Done>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(spec, spoil)) = jobs.get(i) else {
                        break;
                    };
                    let acted = Arc::new(AtomicUsize::new(0));
                    let spoiled = |s: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
                        let dut = factory(s)?;
                        Ok(match spoil {
                            Some(spoil) => {
                                Box::new(Spoiled::new(dut, spoil, machinery(s), Arc::clone(&acted)))
                            }
                            None => dut,
                        })
                    };
                    let report = run_one_with(spec, &spoiled, profile, false);
                    let outcome =
                        spoil.map(|_| Outcome::of(&report.verdict, acted.load(Ordering::SeqCst)));
                    let mark = outcome
                        .as_ref()
                        .map_or(report.verdict.label().to_string(), |o| o.mark().to_string());
                    progress(spec, spoil, &mark);
                    let detail = match &report.verdict {
                        Verdict::Pass => String::new(),
                        Verdict::Fail { step, differences } => match differences.first() {
                            Some(first) => format!("{step}: {first}"),
                            None => step.clone(),
                        },
                        Verdict::Error { reason } | Verdict::Unsupported { reason } => {
                            reason.clone()
                        }
                    };
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some((report.verdict.label(), outcome, detail));
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            r.unwrap_or((
                "ERROR",
                Some(Outcome::Error {
                    reason: "the run never ended".into(),
                }),
                "the run never ended".into(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
