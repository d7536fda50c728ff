//! Scenarios of any protocol: the one trait a suite's scenario implements so that the
//! engine can keep it as a counterexample, shrink it, save it and replay it without
//! knowing its protocol.
//!
//! A scenario is data (serialisable, the file `netconform replay` runs) plus the code that
//! runs it in a [`Session`]. The engine only ever sees `dyn Scenario`: it asks for the
//! steps as text (reports), a copy without one step (shrinking), the DUT it needs
//! (replaying on a fresh DUT), and its JSON (saving). A saved file names its kind
//! (`"kind": "tcp-scenario"`), and the suites' registry finds the suite that reads it.

use std::any::Any;
use std::fmt;

use serde::ser::SerializeMap;

use crate::dut::needs::Needs;
use crate::engine::{CheckError, Session};
use crate::models::profile::ProfileName;

/// How a scenario run ended when no step disagreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioOutcome {
    /// The stack agreed with the model; `summary` says what was compared.
    Agreed {
        /// What was compared, for the trace and the replay command.
        summary: String,
    },
    /// The run proves nothing either way (the stack changed something the run depends on,
    /// e.g. drew a new reachable time) and should be repeated.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// A protocol's scenario, as the engine handles it.
pub trait Scenario: fmt::Debug + Send + Sync + 'static {
    /// The kind written in saved files and reports, e.g. `tcp-scenario`.
    fn kind(&self) -> &'static str;
    /// The scenario's name (reports, file names).
    fn name(&self) -> &str;
    /// Renames it (a shrunk scenario says what it was shrunk from).
    fn set_name(&mut self, name: String);
    /// What a DUT needs to run it.
    fn needs(&self) -> Needs;
    /// Its steps, one line each.
    fn step_lines(&self) -> Vec<String>;
    /// How many steps it has.
    fn len(&self) -> usize;
    /// Whether it has no step.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A copy without step `index`, for shrinking.
    fn without_step(&self, index: usize) -> Box<dyn Scenario>;
    /// The profile it carries, when it carries one (else the session's applies).
    fn profile(&self) -> Option<ProfileName> {
        None
    }
    /// Makes it follow `profile` (`replay --profile`).
    fn set_profile(&mut self, profile: ProfileName) {
        let _ = profile;
    }
    /// Runs it in `session`: `Err` carries the first disagreement.
    fn run(&self, session: &mut Session<'_>) -> Result<ScenarioOutcome, CheckError>;
    /// The replay file: the scenario's JSON with its `kind`.
    fn to_json(&self) -> serde_json::Value;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Scenario>;
    /// For tests and suites that need the concrete type back.
    fn as_any(&self) -> &dyn Any;
}

impl Clone for Box<dyn Scenario> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

impl PartialEq for dyn Scenario {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_json() == other.to_json()
    }
}

/// `value` (a JSON object) with `"kind": kind` added (replacing one it had), for a replay
/// file; anything but an object passes through.
pub fn with_kind(kind: &str, value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(fields) => {
            let mut out = serde_json::Map::new();
            out.insert("kind".into(), kind.into());
            out.extend(fields.into_iter().filter(|(k, _)| k != "kind"));
            serde_json::Value::Object(out)
        }
        other => other,
    }
}

/// The smallest input known to make a check fail, kept by the session for the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Counterexample {
    /// A scenario of some suite (replayable with `netconform replay`).
    Scenario {
        /// The scenario.
        scenario: Box<dyn Scenario>,
        /// True when the runner shrank it (removed steps while the failure stayed the same).
        shrunk: bool,
        /// Steps of the scenario as it came from the check, before shrinking.
        original_steps: usize,
    },
    /// A check with a fixed script (not generated, so not shrinkable): what the harness did,
    /// in order, up to the observation that failed (frames it sent, calls, controls).
    /// `netconform certify --only <check>` runs it again.
    Script {
        /// One line per action.
        steps: Vec<String>,
    },
}

impl Counterexample {
    /// A scenario as it came from a check (not shrunk).
    pub fn scenario(scenario: Box<dyn Scenario>) -> Self {
        let original_steps = scenario.len();
        Counterexample::Scenario {
            scenario,
            shrunk: false,
            original_steps,
        }
    }

    /// `scenario-kind` for a scenario (`tcp-scenario`), `script` for a fixed script.
    pub fn kind(&self) -> &'static str {
        match self {
            Counterexample::Scenario { scenario, .. } => scenario.kind(),
            Counterexample::Script { .. } => "script",
        }
    }

    /// The scenario, if this is one.
    pub fn as_scenario(&self) -> Option<&dyn Scenario> {
        match self {
            Counterexample::Scenario { scenario, .. } => Some(scenario.as_ref()),
            Counterexample::Script { .. } => None,
        }
    }

    /// The events, one line each, for reports.
    pub fn event_lines(&self) -> Vec<String> {
        match self {
            Counterexample::Scenario { scenario, .. } => scenario.step_lines(),
            Counterexample::Script { steps } => steps.clone(),
        }
    }

    /// The file `netconform replay` runs, as JSON (`None` for a fixed script, which
    /// `certify --only` runs again).
    pub fn replay_json(&self) -> Option<String> {
        let scenario = self.as_scenario()?;
        Some(
            serde_json::to_string_pretty(&scenario.to_json())
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
        )
    }
}

impl serde::Serialize for Counterexample {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.kind())?;
        match self {
            Counterexample::Scenario {
                scenario,
                shrunk,
                original_steps,
            } => {
                map.serialize_entry("scenario", &scenario.to_json())?;
                map.serialize_entry("shrunk", shrunk)?;
                map.serialize_entry("original_steps", original_steps)?;
            }
            Counterexample::Script { steps } => map.serialize_entry("steps", steps)?,
        }
        map.end()
    }
}

/// What replaying a scenario on a DUT gave.
#[derive(Debug)]
pub struct Replayed {
    /// The profile its models followed.
    pub profile: ProfileName,
    /// How it ended.
    pub result: Result<ScenarioOutcome, CheckError>,
    /// The recorded exchange, rendered.
    pub trace: String,
}

/// Runs `scenario` once on `target` (a fresh DUT built for [`Scenario::needs`]), its
/// models following its own profile, else `profile`. A DUT that lacks a plane the scenario
/// uses is refused before it runs ([`Needs::unmet`](crate::dut::needs::Needs::unmet)), as
/// `run_one` refuses one for a check.
pub fn replay(
    scenario: &dyn Scenario,
    target: &mut dyn crate::dut::Dut,
    profile: ProfileName,
) -> Replayed {
    let profile = scenario.profile().unwrap_or(profile);
    if let Some(what) = scenario.needs().unmet(&target.capabilities()) {
        return Replayed {
            profile,
            result: Err(CheckError::Dut {
                step: "set-up".into(),
                source: crate::dut::DutError::NotSupported { what },
            }),
            trace: String::new(),
        };
    }
    let mut session = Session::with_profile(target, profile);
    let result = scenario.run(&mut session);
    let trace = session.trace().render(session.host_names());
    Replayed {
        profile,
        result,
        trace,
    }
}
