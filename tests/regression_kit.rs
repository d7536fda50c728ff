//! The regression kit itself (`tests/common/regressions.rs`), without namespaces: a case is
//! saved only when every replay disagrees, a replay the harness could not run is never
//! saved, a replay of a missing or empty directory fails, and so does one of a directory
//! that does not hold exactly the cases its suite says it saved (`Fixtures::saved`), every
//! saved file loads as its suite's kind, and every `fixtures/*-regressions` directory has a
//! replay test.

#[macro_use]
mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use proptest::test_runner::Config;

use common::regressions::{self, Fixtures, Regression, Replay};

/// A case whose replays end as it is told, one after the other.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Fake {
    name: String,
    kind: String,
    steps: Vec<u8>,
    /// What a replay of the loaded file gives: `agree`, `disagree` or `broken`.
    outcome: String,
    #[serde(skip)]
    replays: RefCell<VecDeque<Replay>>,
}

impl Fake {
    fn new(replays: Vec<Replay>) -> Fake {
        Fake {
            name: "generated".into(),
            kind: "fake".into(),
            steps: vec![1, 2, 3],
            outcome: "agree".into(),
            replays: RefCell::new(replays.into()),
        }
    }
}

impl Regression for Fake {
    fn load(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
    fn kind(&self) -> &str {
        &self.kind
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn steps(&self) -> usize {
        self.steps.len()
    }
    fn replay(&self) -> Replay {
        if let Some(r) = self.replays.borrow_mut().pop_front() {
            return r;
        }
        match self.outcome.as_str() {
            "agree" => Replay::Agreed("fine".into()),
            "disagree" => Replay::Disagreed("wrong".into()),
            _ => Replay::Broken("no lab".into()),
        }
    }
}

/// A fresh directory of its own under the temp dir, and fixtures that live there (an
/// absolute `dir` replaces `fixtures/`), holding no saved case yet.
fn scratch(name: &str) -> (PathBuf, Fixtures) {
    let dir = std::env::temp_dir().join(format!("ncf-kit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let leaked: &'static str = Box::leak(dir.to_string_lossy().into_owned().into_boxed_str());
    let fixtures = Fixtures {
        dir: leaked,
        what: "fake case",
        kind: "fake",
        replayed_by: None,
        saved: 0,
    };
    (dir, fixtures)
}

/// The panic message of `f`, which must panic.
fn panic_of(f: impl FnOnce()) -> String {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("it panics");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_case_is_saved_only_when_every_replay_disagrees() {
    let (dir, fixtures) = scratch("save");
    let wrong = || Replay::Disagreed("wrong".into());

    // Agrees once in three: a timing artefact, not saved.
    let flaky = Fake::new(vec![wrong(), Replay::Agreed("fine".into()), wrong()]);
    let text = panic_of(|| regressions::save_if_it_reproduces(&fixtures, flaky, "boom"));
    assert!(text.contains("NOT saved"), "{text}");
    assert!(text.contains("agrees on 1 of 3"), "{text}");
    assert!(json_files(&dir).is_empty(), "{:?}", json_files(&dir));

    // Disagrees every time: saved as regression-<hash>.json, named so inside.
    let real = Fake::new(vec![wrong(), wrong(), wrong()]);
    let name = regressions::regression_name(&real);
    let text = panic_of(|| regressions::save_if_it_reproduces(&fixtures, real, "boom"));
    assert!(text.contains("saved as"), "{text}");
    let path = dir.join(format!("{name}.json"));
    assert_eq!(json_files(&dir), vec![path.clone()]);
    let saved = Fake::load(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(saved.name, name);
    assert_eq!(saved.steps, vec![1, 2, 3]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_replay_the_harness_cannot_run_is_never_saved() {
    let (dir, fixtures) = scratch("broken");
    let case = Fake::new(vec![
        Replay::Disagreed("wrong".into()),
        Replay::Broken("the lab could not be built".into()),
        Replay::Disagreed("wrong".into()),
    ]);
    let text = panic_of(|| regressions::save_if_it_reproduces(&fixtures, case, "boom"));
    assert!(text.contains("could not run"), "{text}");
    assert!(text.contains("NOT saved"), "{text}");
    assert!(text.contains("the lab could not be built"), "{text}");
    assert!(json_files(&dir).is_empty(), "{:?}", json_files(&dir));
}

#[test]
fn the_name_is_the_hash_of_the_content_without_the_name() {
    let a = Fake::new(vec![]);
    let mut b = Fake::new(vec![]);
    b.name = "something else".into();
    let name = regressions::regression_name(&a);
    assert_eq!(name, regressions::regression_name(&b));
    assert!(name.starts_with("regression-") && name.len() == "regression-".len() + 8);
    b.steps.push(4);
    assert_ne!(name, regressions::regression_name(&b));
}

/// A replay test must not pass when it replays nothing: a missing or empty directory fails,
/// and so does a suite that says it has saved nothing.
#[test]
fn a_missing_or_empty_fixture_directory_fails_the_replay() {
    let (dir, fixtures) = scratch("empty");
    let fixtures = Fixtures {
        saved: 2,
        ..fixtures
    };
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&fixtures);
    });
    assert!(
        text.contains("the 2 saved fake case regressions to replay are missing"),
        "{text}"
    );

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a case").unwrap();
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&fixtures);
    });
    assert!(
        text.contains(
            "holds 0 saved fake cases (*.json), expected exactly 2 (Fixtures::saved): none"
        ),
        "{text}"
    );

    let nothing = Fixtures {
        saved: 0,
        ..fixtures
    };
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&nothing);
    });
    assert!(
        text.contains("no saved fake case to replay (Fixtures::saved is 0)"),
        "{text}"
    );
    // With nothing saved and no directory, the directory holds exactly its 0 cases.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(nothing.files().is_empty());
}

/// A saved file that goes missing (or one saved without raising the count) fails the
/// replay, naming the files that are there, before anything is replayed.
#[test]
fn a_directory_must_hold_exactly_the_saved_count() {
    let (dir, fixtures) = scratch("count");
    let fixtures = Fixtures {
        saved: 3,
        ..fixtures
    };
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["a.json", "b.json"] {
        std::fs::write(dir.join(file), Fake::new(vec![]).to_json().to_string()).unwrap();
    }
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&fixtures);
    });
    assert!(
        text.contains("holds 2 saved fake cases (*.json), expected exactly 3 (Fixtures::saved): a.json, b.json"),
        "{text}"
    );
    for file in ["c.json", "d.json"] {
        std::fs::write(dir.join(file), Fake::new(vec![]).to_json().to_string()).unwrap();
    }
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&fixtures);
    });
    assert!(
        text.contains("holds 4 saved fake cases (*.json), expected exactly 3"),
        "{text}"
    );
    std::fs::remove_file(dir.join("d.json")).unwrap();
    assert_eq!(regressions::replay_saved::<Fake>(&fixtures), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file is replayed; one that disagrees, cannot run, does not load or holds another
/// kind is named, and the others pass.
#[test]
fn every_saved_file_is_replayed_and_each_failure_named() {
    let (dir, fixtures) = scratch("replay");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |file: &str, kind: &str, outcome: &str| {
        let mut case = Fake::new(vec![]);
        case.kind = kind.into();
        case.outcome = outcome.into();
        std::fs::write(dir.join(file), case.to_json().to_string()).unwrap();
    };
    write("a.json", "fake", "agree");
    write("b.json", "fake", "agree");
    let fixtures = Fixtures {
        saved: 2,
        ..fixtures
    };
    assert_eq!(regressions::replay_saved::<Fake>(&fixtures), 2);
    let fixtures = Fixtures {
        saved: 6,
        ..fixtures
    };

    write("c.json", "fake", "disagree");
    write("d.json", "fake", "broken");
    write("e.json", "another", "agree");
    std::fs::write(dir.join("f.json"), "{ not json").unwrap();
    let text = panic_of(|| {
        regressions::replay_saved::<Fake>(&fixtures);
    });
    assert!(text.starts_with("4 of 6 saved fake cases"), "{text}");
    assert!(text.contains("c.json: fails again: wrong"), "{text}");
    assert!(text.contains("d.json: could not run: no lab"), "{text}");
    assert!(text.contains("e.json: a another, not a fake"), "{text}");
    assert!(text.contains("f.json: "), "{text}");
    assert!(
        !text.contains("a.json") && !text.contains("b.json"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generator is seeded (the same cases every run, other cases from another seed) and
/// hands back proptest's shrunk case with its message.
#[test]
fn generate_is_seeded_and_hands_back_the_shrunk_failure() {
    let cases_of = |seed: u64| {
        let seen = RefCell::new(Vec::new());
        let config = Config {
            cases: 20,
            ..Config::default()
        };
        regressions::generate(config, seed, &(0u32..1_000_000), |n| {
            seen.borrow_mut().push(n);
            Ok(())
        })
        .expect("nothing fails");
        seen.into_inner()
    };
    assert_eq!(cases_of(7).len(), 20);
    assert_eq!(cases_of(7), cases_of(7));
    assert_ne!(cases_of(7), cases_of(8));

    let config = Config {
        cases: 256,
        ..Config::default()
    };
    let found = regressions::generate(config, 7, &(0u32..100_000), |n| {
        if n >= 1234 {
            Err(format!("{n} is too big"))
        } else {
            Ok(())
        }
    })
    .expect_err("one of 256 cases is at least 1234");
    assert_eq!(found.minimal, 1234);
    assert_eq!(found.reason, "1234 is too big");
}

/// Every saved TCP, ARP and route regression loads as its suite's scenario (the old files
/// carry no `kind`), and every route regression holds its table and lookups.
#[test]
fn every_saved_regression_loads_as_its_suites_kind() {
    for fixtures in [regressions::TCP, regressions::ARP, regressions::ROUTE] {
        for path in fixtures.files() {
            let text = std::fs::read_to_string(&path).unwrap();
            let scenario = <Box<dyn netconform::engine::Scenario>>::load(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(scenario.kind(), fixtures.kind, "{}", path.display());
            assert!(!scenario.is_empty(), "{}", path.display());
        }
    }
    for path in regressions::ROUTE.files() {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for field in ["name", "routes", "queries"] {
            assert!(value.get(field).is_some(), "{}: {field}", path.display());
        }
    }
}

/// Findings saved where no test replays them would go unchecked; every suite's directory
/// holds exactly the cases it says it saved (none for the switch suite, which has saved
/// nothing yet), and a suite has a replay test exactly when it has saved something.
#[test]
fn every_regression_directory_has_a_replay_test() {
    regressions::assert_every_directory_is_replayed();
    for fixtures in regressions::SUITES {
        assert_eq!(fixtures.files().len(), fixtures.saved, "{}", fixtures.dir);
        assert_eq!(
            fixtures.replayed_by.is_some(),
            fixtures.saved > 0,
            "{}: a replay test exactly when something is saved",
            fixtures.dir
        );
    }
    let saved: Vec<(&str, usize)> = regressions::SUITES
        .iter()
        .map(|f| (f.dir, f.saved))
        .collect();
    assert_eq!(
        saved,
        vec![
            ("tcp-regressions", 11),
            ("arp-regressions", 1),
            ("switch-regressions", 0),
            ("route-regressions", 1)
        ]
    );
}
