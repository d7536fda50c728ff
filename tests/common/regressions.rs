//! The regression kit of every suite's generated tests: **generate** cases (proptest, from a
//! fixed seed), **shrink** a failure, **save** it under `fixtures/<suite>-regressions/` only
//! when it reproduces, and **replay** every saved file.
//!
//! A saved case is a [`Regression`]: an engine [`Scenario`] of any suite (TCP, ARP, switch,
//! route tables: saved with its `"kind"`, read back by [`netconform::suites::load_scenario`],
//! run by `netconform replay FILE`), or a case type of a test's own behind the same trait
//! (`tests/regression_kit.rs`' fake).
//!
//! A generated test reads:
//!
//! ```ignore
//! match regressions::generate(config, SEED, &strategy(), |case| run_on_shared_dut(case)) {
//!     Ok(()) => {}
//!     Err(found) => regressions::save_shrunk_scenario(&regressions::TCP, Box::new(found.minimal), &found.reason),
//! }
//! ```
//!
//! and a replay test checks the files first (exactly `Fixtures::saved` of them, with or
//! without namespaces), then replays them all:
//!
//! ```ignore
//! regressions::TCP.files();
//! require_netns!();
//! assert_eq!(regressions::replay_saved::<Box<dyn Scenario>>(&regressions::TCP), regressions::TCP.saved);
//! ```

use std::path::PathBuf;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use netconform::dut::build::DutKind;
use netconform::engine::{CheckSpec, Counterexample, Scenario, ScenarioOutcome};
use netconform::models::profile::ProfileName;

/// One suite's saved regressions: where they live and how they are named.
#[derive(Debug, Clone, Copy)]
pub struct Fixtures {
    /// The directory under `fixtures/`.
    pub dir: &'static str,
    /// What a case is called in messages.
    pub what: &'static str,
    /// The `kind` every file of the directory holds.
    pub kind: &'static str,
    /// The test that replays the directory (`binary::test`); `None` while the suite has
    /// saved nothing yet (a replay test fails on an empty directory).
    pub replayed_by: Option<&'static str>,
    /// How many saved cases (`*.json`) the directory holds, exactly: a file that goes
    /// missing (or one saved without raising this count) fails every test that reads the
    /// directory, with or without namespaces. 0 for a suite that has saved nothing yet.
    pub saved: usize,
}

/// TCP scenarios (`tests/tcp_properties.rs`).
pub const TCP: Fixtures = Fixtures {
    dir: "tcp-regressions",
    what: "TCP scenario",
    kind: netconform::suites::tcp::scenario::TcpScenarioRun::KIND,
    replayed_by: Some("tcp_properties::saved_regressions_replay"),
    saved: 11,
};

/// ARP scenarios (`tests/arp_properties.rs`).
pub const ARP: Fixtures = Fixtures {
    dir: "arp-regressions",
    what: "ARP scenario",
    kind: netconform::suites::arp::scenario::ArpScenario::KIND,
    replayed_by: Some("arp_properties::saved_arp_regressions_replay"),
    saved: 1,
};

/// Switch scenarios (`tests/switch.rs`): none saved yet, so nothing replays them; the first
/// one saved makes every replay test fail until a replay test is added (see
/// [`replay_saved`]).
pub const SWITCH: Fixtures = Fixtures {
    dir: "switch-regressions",
    what: "switch scenario",
    kind: netconform::suites::switch::SwitchScenarioRun::KIND,
    replayed_by: None,
    saved: 0,
};

/// Route tables and lookups (`tests/routes.rs`).
pub const ROUTE: Fixtures = Fixtures {
    dir: "route-regressions",
    what: "route table",
    kind: netconform::suites::route::scenario::RouteScenario::KIND,
    replayed_by: Some("routes::saved_route_regressions_replay"),
    saved: 1,
};

/// Every suite the kit serves.
pub const SUITES: [Fixtures; 4] = [TCP, ARP, SWITCH, ROUTE];

impl Fixtures {
    /// `fixtures/<dir>` in the source tree.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(self.dir)
    }

    /// The `*.json` files of the directory, sorted; panics unless there are exactly
    /// [`Fixtures::saved`] of them (a directory that does not exist holds none), saying
    /// what is there and what was expected.
    pub fn files(&self) -> Vec<PathBuf> {
        let dir = self.path();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.saved == 0 => Vec::new(),
            Err(e) => panic!(
                "{}: {e}: the {} saved {} regressions to replay are missing",
                dir.display(),
                self.saved,
                self.what
            ),
        };
        files.sort();
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        assert!(
            files.len() == self.saved,
            "{} holds {} saved {}s (*.json), expected exactly {} (Fixtures::saved): {}; a \
             file missing is a regression no longer checked, a new one must raise the count",
            dir.display(),
            files.len(),
            self.what,
            self.saved,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        files
    }
}

/// How one run of a saved case on a fresh DUT ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The stack agreed with the model; what was compared.
    Agreed(String),
    /// The stack disagreed: the finding, with its trace.
    Disagreed(String),
    /// The harness could not run it (the DUT could not be built, the target failed, the
    /// run stayed inconclusive): neither a pass nor a finding.
    Broken(String),
}

/// A case the kit can save and replay.
pub trait Regression: Sized {
    /// Reads a saved file.
    fn load(text: &str) -> Result<Self, String>;
    /// Its kind, as [`Fixtures::kind`] names it.
    fn kind(&self) -> &str;
    /// The file's content.
    fn to_json(&self) -> serde_json::Value;
    /// Its name (the file is named after it).
    fn name(&self) -> String;
    /// Renames it.
    fn set_name(&mut self, name: String);
    /// How many steps (events, routes) it has, for messages.
    fn steps(&self) -> usize;
    /// Runs it once on a fresh DUT.
    fn replay(&self) -> Replay;
}

impl Regression for Box<dyn Scenario> {
    fn load(text: &str) -> Result<Self, String> {
        netconform::suites::load_scenario(text).map_err(|e| e.to_string())
    }
    fn kind(&self) -> &str {
        self.as_ref().kind()
    }
    fn to_json(&self) -> serde_json::Value {
        self.as_ref().to_json()
    }
    fn name(&self) -> String {
        self.as_ref().name().to_string()
    }
    fn set_name(&mut self, name: String) {
        self.as_mut().set_name(name);
    }
    fn steps(&self) -> usize {
        self.len()
    }
    fn replay(&self) -> Replay {
        replay_scenario(self.as_ref())
    }
}

/// Runs `scenario` on a fresh Linux DUT built for what it needs, its models following its
/// own profile (else Linux's); an inconclusive run (ARP: the stack drew a new reachable time
/// mid-run) is run once more on another fresh DUT.
pub fn replay_scenario(scenario: &dyn Scenario) -> Replay {
    for _ in 0..2 {
        let mut target = match DutKind::Linux.build(&scenario.needs()) {
            Ok(t) => t,
            Err(e) => return Replay::Broken(format!("building the DUT: {e}")),
        };
        let replayed =
            netconform::engine::scenario::replay(scenario, target.as_mut(), ProfileName::Linux);
        match replayed.result {
            Ok(ScenarioOutcome::Agreed { summary }) => return Replay::Agreed(summary),
            Ok(ScenarioOutcome::Inconclusive { .. }) => continue,
            Err(e @ netconform::engine::CheckError::Dut { .. }) => {
                return Replay::Broken(format!("{e}\ntrace:\n{}", replayed.trace));
            }
            Err(e) => return Replay::Disagreed(format!("{e}\ntrace:\n{}", replayed.trace)),
        }
    }
    Replay::Broken("inconclusive on two fresh DUTs in a row".into())
}

/// A failure a generated test found: proptest's minimal case and what it said.
#[derive(Debug)]
pub struct Found<T> {
    /// The case, shrunk by proptest.
    pub minimal: T,
    /// The failure's message.
    pub reason: String,
}

/// Runs `run` on `config.cases` cases of `strategy`, from the fixed `seed`
/// ([`super::rng`]: `NETCONFORM_PROPTEST_SEED` explores others) and without proptest's own
/// failure files; a failure comes back shrunk by proptest.
pub fn generate<S: Strategy>(
    config: Config,
    seed: u64,
    strategy: &S,
    run: impl Fn(S::Value) -> Result<(), String>,
) -> Result<(), Found<S::Value>> {
    let config = Config {
        failure_persistence: None,
        ..config
    };
    let mut runner = TestRunner::new_with_rng(config, super::rng(seed));
    match runner.run(strategy, |case| run(case).map_err(TestCaseError::fail)) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, minimal)) => Err(Found {
            minimal,
            reason: reason.message().to_string(),
        }),
        Err(e) => panic!("the generator gave up: {e}"),
    }
}

/// Most trial runs [`shrink`] makes: the engine's bound.
pub const SHRINK_TRIALS: usize = 40;

/// Shrinks a failing scenario further with the engine's shrink (the one `certify` uses):
/// steps deleted one at a time while a fresh DUT still fails it the same way. Proptest
/// shrinks the generator's inputs on the DUT the cases share; this removes what those
/// inputs cannot (a TCP scenario's path to its state, say) and proves the failure on fresh
/// DUTs. A failure that does not come back on a fresh DUT is returned as it was (and
/// [`save_if_it_reproduces`] will not save it).
pub fn shrink(scenario: Box<dyn Scenario>) -> Box<dyn Scenario> {
    let spec = CheckSpec {
        id: "regression",
        title: "a generated scenario",
        clauses: &[],
        needs: scenario.needs(),
        run: |_| Ok(()),
    };
    let factory = |spec: &CheckSpec| DutKind::Linux.build(&spec.needs);
    let (counterexample, _) =
        netconform::engine::runner::shrink(&spec, &factory, ProfileName::Linux, scenario.as_ref());
    match counterexample {
        Counterexample::Scenario { scenario, .. } => scenario,
        Counterexample::Script { .. } => scenario,
    }
}

/// `regression-<hash>`: the hash of the case's content without its name, so the same
/// finding is saved under the same name.
pub fn regression_name(case: &impl Regression) -> String {
    use std::hash::{Hash, Hasher};
    let mut json = case.to_json();
    if let Some(fields) = json.as_object_mut() {
        fields.remove("name");
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.to_string().hash(&mut h);
    format!("regression-{:08x}", h.finish() as u32)
}

/// Saves `found` (a shrunk failure) as `fixtures/<dir>/regression-<hash>.json` by the rule of
/// [`super::save_regression_if_it_reproduces`]: only when it disagrees again on every one of
/// [`super::REPLAYS_BEFORE_SAVING`] replays, each on a fresh DUT. A replay the harness could
/// not run counts as neither: the test panics at once and nothing is saved. Panics either
/// way, saying what happened.
pub fn save_if_it_reproduces<R: Regression>(fixtures: &Fixtures, mut found: R, failure: &str) -> ! {
    found.set_name(regression_name(&found));
    let path = fixtures.path().join(format!("{}.json", found.name()));
    let json = found.to_json();
    super::save_regression_if_it_reproduces(fixtures.what, &json, &path, failure, || {
        match found.replay() {
            Replay::Agreed(_) => Ok(()),
            Replay::Disagreed(e) => Err(e),
            Replay::Broken(e) => panic!(
                "a generated {} failed, but a replay of the shrunk case could not run, so it is \
                 NOT saved: {e}\nThe failure:\n{failure}\nThe case:\n{json:#}",
                fixtures.what
            ),
        }
    })
}

/// What a generated scenario test does with a failure: [`shrink`] it on fresh DUTs, then
/// [`save_if_it_reproduces`].
pub fn save_shrunk_scenario(fixtures: &Fixtures, found: Box<dyn Scenario>, reason: &str) -> ! {
    let generated = found.len();
    let shrunk = shrink(found);
    let failure = format!(
        "{generated} steps as proptest shrank it, {} after deleting steps on fresh DUTs:\n{}",
        shrunk.len(),
        reason.replace("; ", "\n")
    );
    save_if_it_reproduces(fixtures, shrunk, &failure)
}

/// Replays every saved file of `fixtures` on a fresh DUT each and requires every one to
/// agree; returns how many ran. Fails when the directory is missing or empty, when it does
/// not hold exactly [`Fixtures::saved`] files, when a file does not load or holds another
/// kind, when a replay disagrees or cannot run, and when a `fixtures/*-regressions`
/// directory has no replay test (its findings would go unchecked).
pub fn replay_saved<R: Regression>(fixtures: &Fixtures) -> usize {
    assert_every_directory_is_replayed();
    assert!(
        fixtures.saved > 0,
        "{}: no saved {} to replay (Fixtures::saved is 0): a replay test that replays nothing \
         must not pass",
        fixtures.path().display(),
        fixtures.what
    );
    let files = fixtures.files();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read regression");
        let case = match R::load(&text) {
            Ok(case) if case.kind() == fixtures.kind => case,
            Ok(case) => {
                failures.push(format!(
                    "{}: a {}, not a {}",
                    path.display(),
                    case.kind(),
                    fixtures.kind
                ));
                continue;
            }
            Err(e) => {
                failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match case.replay() {
            Replay::Agreed(_) => {}
            Replay::Disagreed(e) => failures.push(format!("{}: fails again: {e}", path.display())),
            Replay::Broken(e) => failures.push(format!("{}: could not run: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} saved {}s do not replay as agreed:\n{}",
        failures.len(),
        files.len(),
        fixtures.what,
        failures.join("\n\n")
    );
    files.len()
}

/// Every `fixtures/*-regressions` directory belongs to a suite of [`SUITES`] that has a
/// replay test.
pub fn assert_every_directory_is_replayed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut unreplayed = Vec::new();
    for entry in std::fs::read_dir(&root).expect("fixtures/").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with("-regressions") {
            continue;
        }
        match SUITES.iter().find(|f| f.dir == name) {
            Some(Fixtures {
                replayed_by: Some(_),
                ..
            }) => {}
            Some(_) => unreplayed.push(format!(
                "fixtures/{name} has no replay test: add one that calls \
                 common::regressions::replay_saved and name it in its Fixtures::replayed_by"
            )),
            None => unreplayed.push(format!(
                "fixtures/{name} belongs to no suite of common::regressions::SUITES"
            )),
        }
    }
    assert!(unreplayed.is_empty(), "{}", unreplayed.join("\n"));
}
