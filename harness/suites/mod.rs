//! The protocol suites: each holds its checks (with the clauses they enforce), the runner
//! glue between its model in [`crate::models`] and the [engine](crate::engine), and its
//! scenarios. A suite is found by its protocol's name.
//!
//! Every suite takes its models' profiles from the session's one [`ProfileName`], each
//! with [`Deviation::profile`], and says which deviations that accepts
//! ([`Suite::deviations`]: what `certify` prints).
//!
//! | suite | what it checks | model |
//! |---|---|---|
//! | [`arp`] | ARP (RFC 826, 1122, 5227) and the neighbour table | [`crate::models::arp`] |
//! | [`tcp`] | TCP (RFC 9293, 5961, 6298, 7323), its timers and the state matrix | [`crate::models::tcp`] |
//! | [`switch`] | a learning bridge (IEEE 802.1D) | [`crate::models::switch`] |
//! | [`route`] | route lookup (RFC 1812, 4443) | [`crate::models::route`] |
//! | [`forward`] | forwarding, TTL, ICMP errors (RFC 1812, 792) | [`crate::models::forward`] |
//! | [`nat`] | NAT (RFC 4787, 5508) | [`crate::models::nat`] |
//! | [`tls`] | TLS 1.3 (RFC 8446) | [`crate::models::tls`] |

pub mod arp;
pub mod forward;
pub mod nat;
pub mod route;
pub mod switch;
pub mod tcp;
pub mod tls;

use crate::dut::spoil::Machinery;
use crate::engine::barrier::host_machinery;
use crate::engine::{CheckSpec, Scenario};
use crate::models::arp::ArpDeviation;
use crate::models::forward::ForwardDeviation;
use crate::models::nat::NatDeviation;
use crate::models::profile::{Deviation, DeviationLine, ProfileName};
use crate::models::route::RouteDeviation;
use crate::models::switch::SwitchDeviation;
use crate::models::tcp::TcpDeviation;
use crate::models::tcp_timers::TimerDeviation;
use crate::models::tls::TlsDeviation;

/// One protocol's suite, as the engine and the command line find it.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// The protocol's name (`tcp`, `arp`, ...): every check id of the suite starts with it.
    pub name: &'static str,
    /// Its checks, in the order `certify` runs them.
    pub checks: &'static [&'static [CheckSpec]],
    /// The kind of its scenario files (`tcp-scenario`), when it has scenarios.
    pub scenario_kind: Option<&'static str>,
    /// Reads one of its scenario files.
    pub load_scenario: Option<LoadScenario>,
    /// The deviations from the RFC and IEEE texts its models accept under a profile, one
    /// line each (every model the suite's checks use, in that order).
    pub deviations: fn(ProfileName) -> Vec<DeviationLine>,
    /// Which frames the DUT sends in its checks are the harness's own machinery (barrier
    /// answers): a spoiler leaves them alone ([`crate::engine::mutate`]).
    pub machinery: Machinery,
}

/// No frame is machinery: the suite's checks send no probes of their own.
fn no_machinery(_: &[u8]) -> bool {
    false
}

/// The lines of model `D`'s profile `name`.
fn lines<D: Deviation>(name: ProfileName) -> Vec<DeviationLine> {
    D::profile(name).lines()
}

/// Reads a suite's scenario from a file's JSON.
pub type LoadScenario = fn(&serde_json::Value) -> Result<Box<dyn Scenario>, serde_json::Error>;

/// Every suite, in the order `certify` runs them.
pub const SUITES: &[Suite] = &[
    Suite {
        name: "arp",
        checks: &[arp::CHECKS],
        scenario_kind: Some(arp::scenario::ArpScenario::KIND),
        load_scenario: Some(|v| {
            serde_json::from_value::<arp::scenario::ArpScenario>(v.clone())
                .map(|s| Box::new(s) as Box<dyn Scenario>)
        }),
        deviations: lines::<ArpDeviation>,
        machinery: host_machinery,
    },
    Suite {
        name: "tcp",
        checks: &[tcp::basic::CHECKS, tcp::timers::CHECKS, tcp::checks::CHECKS],
        scenario_kind: Some(tcp::scenario::TcpScenarioRun::KIND),
        load_scenario: Some(|v| {
            tcp::scenario::TcpScenarioRun::from_json(v).map(|s| Box::new(s) as Box<dyn Scenario>)
        }),
        deviations: |p| [lines::<TcpDeviation>(p), lines::<TimerDeviation>(p)].concat(),
        machinery: host_machinery,
    },
    Suite {
        name: "switch",
        checks: &[switch::CHECKS],
        scenario_kind: Some(switch::SwitchScenarioRun::KIND),
        load_scenario: Some(|v| {
            switch::SwitchScenarioRun::from_json(v).map(|s| Box::new(s) as Box<dyn Scenario>)
        }),
        deviations: lines::<SwitchDeviation>,
        machinery: switch::machinery,
    },
    Suite {
        name: "route",
        checks: &[route::CHECKS],
        scenario_kind: Some(route::scenario::RouteScenario::KIND),
        load_scenario: Some(|v| {
            route::scenario::RouteScenario::from_json(v).map(|s| Box::new(s) as Box<dyn Scenario>)
        }),
        deviations: lines::<RouteDeviation>,
        machinery: no_machinery,
    },
    Suite {
        name: "forward",
        checks: &[forward::CHECKS],
        scenario_kind: None,
        load_scenario: None,
        deviations: |p| [lines::<RouteDeviation>(p), lines::<ForwardDeviation>(p)].concat(),
        machinery: forward::machinery,
    },
    Suite {
        name: "nat",
        checks: &[nat::CHECKS],
        scenario_kind: None,
        load_scenario: None,
        deviations: lines::<NatDeviation>,
        machinery: nat::machinery,
    },
    Suite {
        name: "tls",
        checks: &[tls::CHECKS],
        scenario_kind: None,
        load_scenario: None,
        deviations: lines::<TlsDeviation>,
        machinery: no_machinery,
    },
];

/// The suite whose checks include `id`.
pub fn suite_of(id: &str) -> Option<&'static Suite> {
    SUITES
        .iter()
        .find(|s| s.checks.iter().any(|c| c.iter().any(|c| c.id == id)))
}

/// Which frames of check `spec` are the harness's machinery (its suite's
/// [`Suite::machinery`]; none for a check of no suite).
pub fn machinery_of(spec: &CheckSpec) -> Machinery {
    suite_of(spec.id).map_or(no_machinery, |s| s.machinery)
}

/// The suite of protocol `name`.
pub fn suite(name: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.name == name)
}

/// The deviations from the RFC and IEEE texts that the suites with a check among `checks`
/// accept under `profile`: each once (a model two suites use, such as the route model of
/// `route` and `forward`, is listed once), in suite order. `certify` prints them.
pub fn accepted_deviations(checks: &[CheckSpec], profile: ProfileName) -> Vec<DeviationLine> {
    let mut out: Vec<DeviationLine> = Vec::new();
    for suite in SUITES {
        let runs = suite
            .checks
            .iter()
            .flat_map(|c| c.iter())
            .any(|c| checks.iter().any(|k| k.id == c.id));
        if !runs {
            continue;
        }
        for line in (suite.deviations)(profile) {
            if !out.contains(&line) {
                out.push(line);
            }
        }
    }
    out
}

/// Every check netconform knows, in the order `certify` runs them.
pub fn catalogue() -> Vec<CheckSpec> {
    SUITES
        .iter()
        .flat_map(|s| s.checks.iter().flat_map(|c| c.iter().copied()))
        .collect()
}

/// A scenario file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioFileError {
    /// Not JSON at all.
    #[error("not a JSON file: {0}")]
    NotJson(serde_json::Error),
    /// The file names a kind no suite reads.
    #[error("unknown scenario kind {kind:?}: expected one of {known}")]
    UnknownKind {
        /// The kind the file names.
        kind: String,
        /// The kinds the suites read.
        known: String,
    },
    /// The file names its kind but does not fit it.
    #[error("not a valid {kind}: {source}")]
    Invalid {
        /// The kind.
        kind: &'static str,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The file names no kind, and no suite's scenario fits it.
    #[error("no suite reads this file (it names no \"kind\"; tried {tried})")]
    NoSuiteFits {
        /// What each suite said, `kind: error` each.
        tried: String,
    },
}

/// Reads a scenario file of any suite: its `"kind"` names the suite; a file without one
/// (regression files written before kinds existed) is tried against each suite in turn.
pub fn load_scenario(text: &str) -> Result<Box<dyn Scenario>, ScenarioFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(ScenarioFileError::NotJson)?;
    let loaders = || {
        SUITES
            .iter()
            .filter_map(|s| Some((s.scenario_kind?, s.load_scenario?)))
    };
    if let Some(kind) = value.get("kind").and_then(serde_json::Value::as_str) {
        let Some((kind, load)) = loaders().find(|(k, _)| *k == kind) else {
            return Err(ScenarioFileError::UnknownKind {
                kind: kind.into(),
                known: loaders().map(|(k, _)| k).collect::<Vec<_>>().join(", "),
            });
        };
        return load(&value).map_err(|source| ScenarioFileError::Invalid { kind, source });
    }
    let mut tried = Vec::new();
    for (kind, load) in loaders() {
        match load(&value) {
            Ok(scenario) => return Ok(scenario),
            Err(e) => tried.push(format!("{kind}: {e}")),
        }
    }
    Err(ScenarioFileError::NoSuiteFits {
        tried: tried.join("; "),
    })
}

#[cfg(test)]
mod tests;
