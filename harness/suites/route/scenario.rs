//! Route scenarios: a route table and the lookups to check, run on a DUT through a
//! [`Session`] and compared with the route model ([`crate::models::route`]).
//!
//! A [`RouteScenario`] is data: typed routes whose `oif` is a **port number** of the DUT (the
//! run maps it to the DUT's own interface index), and lookups (a destination, optionally a
//! source). Its run learns the DUT's interfaces, gives the model the same table, installs
//! every route with [`Control::AddRoute`], looks every destination up with
//! [`StateQuery::RouteGet`] ([`StateQuery::RouteGetFrom`] with a source) and compares each
//! answer with the model's. Its steps are its routes, then its lookups: the engine's shrink
//! ([`crate::engine::runner::shrink`]) deletes them one at a time.
//!
//! It runs on a host stack with one interface ([`RouteDut::Host`]: `certify`'s fixed table,
//! [`super::fixed_scenario`]) or on a router ([`RouteDut::Router`]: the generated tables of
//! `tests/routes.rs`, three segments). Its file is its JSON with `"kind": "route-scenario"`;
//! `netconform replay FILE` runs it. A file without `kind` and `dut` (the regressions saved
//! before route tables were scenarios) is a router scenario of three segments.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::dut::needs::{Needs, RouterNeeds, Uses};
use crate::dut::{Control, DutError, StateAnswer, StateQuery};
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome, with_kind};
use crate::engine::{CheckError, Session};
use crate::models::profile::{Deviation as _, ProfileName};
use crate::models::route::{
    AnswerKind, Interface, Route, RouteAnswer, RouteDeviation, RouteError, RouteKind, RouteTable,
};
use crate::sandbox::SandboxError;

use super::table::Query;
use super::{lookup, lookup_from, show, unsupported};

/// The segments of the router the generated tables run on, and of a scenario file that names
/// no DUT.
pub const DEFAULT_SEGMENTS: usize = 3;

/// The most differences a failed run lists (the rest are counted).
const MAX_DIFFERENCES: usize = 50;

/// The DUT a route scenario runs on: what port `i` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteDut {
    /// A host stack with one interface, port 0, addressed as the session's endpoints say
    /// (IPv4 and IPv6): the fixed table's DUT.
    Host,
    /// A router: port `i` is segment `i` ([`StateQuery::Ports`]), IPv4 and IPv6 on each.
    Router {
        /// How many segments it needs.
        segments: usize,
    },
}

impl Default for RouteDut {
    /// A router of [`DEFAULT_SEGMENTS`] segments.
    fn default() -> Self {
        RouteDut::Router {
            segments: DEFAULT_SEGMENTS,
        }
    }
}

/// A route table and the lookups to check: what the engine keeps as a counterexample,
/// shrinks and replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteScenario {
    /// Its name (reports, file names).
    pub name: String,
    /// The DUT it runs on.
    #[serde(default)]
    pub dut: RouteDut,
    /// The profile its model follows, when it carries one (else the session's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileName>,
    /// The routes, installed in order; `oif` is a port number, not an interface index.
    pub routes: Vec<Route>,
    /// The lookups, in order: a destination and optionally a source.
    pub queries: Vec<Query>,
}

/// One lookup the DUT answered differently from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The lookup.
    pub query: Query,
    /// The model's answer.
    pub expected: Result<RouteAnswer, RouteError>,
    /// The DUT's answer.
    pub observed: Result<RouteAnswer, RouteError>,
    /// The route that decides the lookup in the model.
    pub deciding: Option<Route>,
}

impl fmt::Display for Disagreement {
    /// `route get D [from S]: expected X, observed Y (deciding route: R)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, observed {} (deciding route: {})",
            lookup_step(self.query),
            show(&self.expected),
            show(&self.observed),
            self.deciding
                .map(|r| r.to_string())
                .unwrap_or_else(|| "none".into())
        )
    }
}

/// What a run compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRun {
    /// Routes installed (every route of the scenario).
    pub routes: usize,
    /// Lookups compared (every lookup of the scenario).
    pub lookups: usize,
    /// The lookups the DUT answered differently, in order.
    pub disagreements: Vec<Disagreement>,
}

/// `route get D` or `route get D from S`: a lookup's step name.
fn lookup_step((dst, src): Query) -> String {
    match src {
        Some(s) => format!("route get {dst} from {s}"),
        None => format!("route get {dst}"),
    }
}

fn malformed(step: &str, detail: String) -> CheckError {
    CheckError::Dut {
        step: step.into(),
        source: DutError::Malformed { detail },
    }
}

fn prefix(a: IpAddr, len: u8) -> Result<IpNet, CheckError> {
    IpNet::new(a, len).map_err(|_| unsupported("bad prefix length"))
}

fn loopback(index: u32) -> Interface {
    Interface {
        index,
        name: "lo".into(),
        loopback: true,
        addrs: vec![
            "127.0.0.1/8".parse().expect("a valid prefix"),
            "::1/128".parse().expect("a valid prefix"),
        ],
    }
}

/// The DUT as the model sees it: its interfaces (the loopback first) and the interface
/// index of each port.
struct View {
    interfaces: Vec<Interface>,
    ports: Vec<u32>,
}

/// A host: its one interface learned from a lookup of the peer, its loopback from a lookup
/// of its own address, its addresses from the endpoints.
fn host_view(s: &mut Session<'_>) -> Result<View, CheckError> {
    let e = s.endpoints().clone();
    let (Some((stack4, len4)), Some(peer4)) = (e.stack_ipv4, e.peer_ipv4) else {
        return Err(unsupported("the target has no IPv4 address"));
    };
    let Some((stack6, len6)) = e.stack_ipv6 else {
        return Err(unsupported("the target has no IPv6 address"));
    };
    let oif = match lookup(s, "learn the interface", IpAddr::V4(peer4))? {
        Ok(a) => a.oif,
        Err(err) => {
            return Err(CheckError::WrongAnswer {
                step: "learn the interface".into(),
                expected: format!("a connected route to the peer {peer4}"),
                observed: err.to_string(),
            });
        }
    };
    let lo = match lookup(s, "learn the loopback", IpAddr::V4(stack4))? {
        // A stack without a loopback interface (lwIP: its own addresses loop back on the
        // link's interface) has none of the model's host shape.
        Ok(a) if a.kind == AnswerKind::Local && a.oif == oif => {
            return Err(unsupported(
                "the stack has no loopback interface (its own addresses are local on its link interface); the route model of a host needs one",
            ));
        }
        Ok(a) if a.kind == AnswerKind::Local => a.oif,
        other => {
            return Err(CheckError::WrongAnswer {
                step: "learn the loopback".into(),
                expected: format!("a local answer for the stack's own {stack4}"),
                observed: show(&other),
            });
        }
    };
    Ok(View {
        interfaces: vec![
            loopback(lo),
            Interface {
                index: oif,
                name: "stack".into(),
                loopback: false,
                addrs: vec![
                    prefix(IpAddr::V4(stack4), len4)?,
                    prefix(IpAddr::V6(stack6), len6)?,
                ],
            },
        ],
        ports: vec![oif],
    })
}

/// A router: its ports ([`StateQuery::Ports`]), its loopback from a lookup of its address
/// on port 0.
fn router_view(s: &mut Session<'_>) -> Result<View, CheckError> {
    let step = "read the router's ports";
    let ports = match s.query(step, StateQuery::Ports)? {
        StateAnswer::Ports(p) if !p.is_empty() => p,
        other => {
            return Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: "the router's ports".into(),
                observed: format!("{other:?}"),
            });
        }
    };
    let mut interfaces = Vec::new();
    for p in &ports {
        let mut addrs = Vec::new();
        if let Some((a, len)) = p.ipv4 {
            addrs.push(prefix(IpAddr::V4(a), len)?);
        }
        if let Some((a, len)) = p.ipv6 {
            addrs.push(prefix(IpAddr::V6(a), len)?);
        }
        interfaces.push(Interface {
            index: p.ifindex,
            name: p.name.clone(),
            loopback: false,
            addrs,
        });
    }
    let Some(own) = interfaces[0].addrs.first().map(IpNet::addr) else {
        return Err(unsupported("port 0 of the router has no address"));
    };
    let step = "learn the loopback";
    let lo = match lookup(s, step, own)? {
        Ok(a) if a.kind == AnswerKind::Local => a.oif,
        other => {
            return Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: format!("a local answer for the router's own {own}"),
                observed: show(&other),
            });
        }
    };
    interfaces.insert(0, loopback(lo));
    Ok(View {
        interfaces,
        ports: ports.iter().map(|p| p.ifindex).collect(),
    })
}

/// `route` with its port number turned into the DUT's interface index.
fn on_ports(route: &Route, ports: &[u32]) -> Result<Route, CheckError> {
    let index = |port: u32| {
        ports.get(port as usize).copied().ok_or_else(|| {
            unsupported(&format!(
                "{route}: port {port}, the DUT has {} (oif is a port number)",
                ports.len()
            ))
        })
    };
    let kind = match route.kind {
        RouteKind::Unicast { gateway, oif } => RouteKind::Unicast {
            gateway,
            oif: index(oif)?,
        },
        RouteKind::Local { oif } => RouteKind::Local { oif: index(oif)? },
        RouteKind::Broadcast { oif } => RouteKind::Broadcast { oif: index(oif)? },
        k => k,
    };
    Ok(Route { kind, ..*route })
}

/// Runs `scenario` on the session's DUT and compares every lookup; the disagreements come
/// back in [`RouteRun::disagreements`]. `Err` when the DUT refused a route the model accepts
/// ([`CheckError::WrongAnswer`]), when the scenario is not valid (a route the model refuses
/// or a lookup out of its scope: [`DutError::Malformed`]), or when the DUT could not answer.
pub fn compare(s: &mut Session<'_>, scenario: &RouteScenario) -> Result<RouteRun, CheckError> {
    let view = match scenario.dut {
        RouteDut::Host => host_view(s)?,
        RouteDut::Router { .. } => router_view(s)?,
    };
    let profile = scenario.profile.unwrap_or(s.profile());
    let mut model = RouteTable::new(RouteDeviation::profile(profile), view.interfaces);
    let mut routes = Vec::with_capacity(scenario.routes.len());
    for route in &scenario.routes {
        let route = on_ports(route, &view.ports)?;
        model.add(route).map_err(|e| {
            malformed(
                "build the model",
                format!("the scenario holds a route the model refuses: {e}"),
            )
        })?;
        routes.push(route);
    }
    for &query in &scenario.queries {
        if model.lookup(query.0, query.1) == Err(RouteError::OutOfScope) {
            return Err(malformed(
                "build the model",
                format!("{} is out of the model's scope", lookup_step(query)),
            ));
        }
    }
    let step = "install the table";
    for route in &routes {
        match s.control(step, &Control::AddRoute(*route)) {
            Ok(()) => {}
            Err(CheckError::Dut {
                source: DutError::Sandbox(SandboxError::Netlink { errno, .. }),
                ..
            }) => {
                return Err(CheckError::WrongAnswer {
                    step: format!("add {route}"),
                    expected: "the route added (the model accepts it)".into(),
                    observed: format!("refused: {errno} ({})", errno.desc()),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let mut disagreements = Vec::new();
    for &(dst, src) in &scenario.queries {
        let step = lookup_step((dst, src));
        let expected = model.lookup(dst, src);
        let observed = lookup_from(s, &step, dst, src)?;
        s.note(format!("{step}: {}", show(&observed)));
        if observed != expected {
            disagreements.push(Disagreement {
                query: (dst, src),
                expected,
                observed,
                deciding: model.matching_route(dst).map(|(r, _)| r),
            });
        }
    }
    Ok(RouteRun {
        routes: routes.len(),
        lookups: scenario.queries.len(),
        disagreements,
    })
}

/// Runs `scenario` on the session's DUT: [`compare`], with the disagreements as a
/// [`CheckError::Mismatch`] (one difference per lookup, the first 50, then a count). A
/// failure offers the scenario as the check's counterexample (the runner shrinks it, and
/// `netconform replay` runs its file).
pub fn run_route_scenario(
    s: &mut Session<'_>,
    scenario: &RouteScenario,
) -> Result<RouteRun, CheckError> {
    let result = compare(s, scenario).and_then(|run| {
        if run.disagreements.is_empty() {
            return Ok(run);
        }
        let mut differences: Vec<String> = run
            .disagreements
            .iter()
            .take(MAX_DIFFERENCES)
            .map(Disagreement::to_string)
            .collect();
        if run.disagreements.len() > MAX_DIFFERENCES {
            differences.push(format!(
                "and {} more lookups disagree",
                run.disagreements.len() - MAX_DIFFERENCES
            ));
        }
        Err(CheckError::Mismatch {
            step: "route lookups".into(),
            differences,
        })
    });
    if let Err(e) = &result
        && !matches!(e, CheckError::Dut { .. })
    {
        s.offer_counterexample(Counterexample::scenario(Box::new(scenario.clone())));
    }
    result
}

impl RouteScenario {
    /// The kind in files and reports.
    pub const KIND: &'static str = "route-scenario";

    /// Reads a scenario file (with or without `kind`, `dut` and `profile`).
    pub fn from_json(value: &serde_json::Value) -> Result<RouteScenario, serde_json::Error> {
        serde_json::from_value(value.clone())
    }
}

impl Scenario for RouteScenario {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn needs(&self) -> Needs {
        Needs {
            ipv6: true,
            router: match self.dut {
                RouteDut::Host => None,
                RouteDut::Router { segments } => Some(RouterNeeds { segments }),
            },
            uses: &[Uses::Tables],
            ..Needs::IPV4
        }
    }

    /// `route R` for each route (`oif` a port number), then `lookup D [from S]` for each
    /// lookup.
    fn step_lines(&self) -> Vec<String> {
        let routes = self.routes.iter().map(|r| format!("route {r}"));
        let lookups = self.queries.iter().map(|&(dst, src)| match src {
            Some(s) => format!("lookup {dst} from {s}"),
            None => format!("lookup {dst}"),
        });
        routes.chain(lookups).collect()
    }

    fn len(&self) -> usize {
        self.routes.len() + self.queries.len()
    }

    /// Without route `index`, or without lookup `index - routes`.
    fn without_step(&self, index: usize) -> Box<dyn Scenario> {
        let mut copy = self.clone();
        if index < copy.routes.len() {
            copy.routes.remove(index);
        } else if index - copy.routes.len() < copy.queries.len() {
            copy.queries.remove(index - self.routes.len());
        }
        Box::new(copy)
    }

    fn profile(&self) -> Option<ProfileName> {
        self.profile
    }

    fn set_profile(&mut self, profile: ProfileName) {
        self.profile = Some(profile);
    }

    fn run(&self, session: &mut Session<'_>) -> Result<ScenarioOutcome, CheckError> {
        let run = run_route_scenario(session, self)?;
        Ok(ScenarioOutcome::Agreed {
            summary: format!(
                "{} routes installed, {} lookups compared",
                run.routes, run.lookups
            ),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        with_kind(Self::KIND, serde_json::to_value(self).unwrap_or_default())
    }

    fn clone_box(&self) -> Box<dyn Scenario> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests;
