//! Stack targets: differential fuzzing of a real stack that runs in-process, against the TCP
//! model, through exactly what `netconform replay` runs.
//!
//! An input is a TCP scenario ([`input`]: IPv4 or IPv6, the peer's MSS, then up to 24
//! events: a passive or active open, the peer's segments of every kind at the boundary
//! sequence and acknowledgment numbers with a payload, and application calls). It runs on a
//! fresh DUT of the target's stack, built as `--target <stack>` builds it for a scenario,
//! in a session whose model follows the stack's profile, through the scenario runner
//! ([`TcpScenarioRun`], the runner of `certify` and `netconform replay`): every segment,
//! call outcome and state compared event by event, then the quiet period. Its verdict
//! ([`Verdict`]):
//!
//! - the stack **panicked** (or died, or the harness failed): a crash. The target's
//!   function returns a [`Finding`], which the fuzz target turns into a panic, so libFuzzer
//!   saves the input. A panic the stack's documentation already lists
//!   ([`KnownPanic`], e.g. smoltcp's window-edge assertion) is filed as a finding instead
//!   when [`KNOWN_PANICS_ENV`] is not `crash`: hitting it again must not stop every run;
//! - the stack **disagreed** with the model: unless the stack's deviation file accepts
//!   every difference (judged as the matrix row of the model's state would be), it is a
//!   finding, filed in the findings directory ([`findings`]) under its [`Group`] (the
//!   clause it breaks, the model's state before the failing event, what differed), and the
//!   fuzzer goes on: a stack with many known RFC violations must not stop it;
//! - otherwise (agreed, accepted, an event the stack cannot perform) nothing.
//!
//! `netconform fuzz run <target> FILE` prints the verdict of one input, `netconform fuzz
//! scenario <target> FILE --out X.json` shrinks a disagreement to the fewest events that
//! still fall in its group and writes the scenario that `netconform replay --target <stack>
//! X.json` replays, and `netconform fuzz findings DIR` summarises a findings directory.
//!
//! **Another stack** is one more [`StackTarget`]: its name, its `--target`, its profile,
//! deviation file and known panics, and a function that builds its DUT for a scenario's
//! needs. The input and everything above are the stack's no more than the scenario runner
//! is, so a stack in another crate (Netstack3's adapter) defines its target there and
//! adds it ([`add`], [`crate::fuzz::add_targets`]) so that its binary's `netconform fuzz`
//! runs it. Two stacks compared on the same input ([`pair`], a [`PairTarget`]) see the
//! same scenario; where both agree with the model, their exchanges are compared where the
//! model leaves the answer open (a SHUTDOWN outcome in FIN-WAIT, an errno, PSH, a zero
//! window, the kinds of options), a difference being a finding of its own kind.

pub mod findings;
pub mod input;
pub mod pair;
pub mod seeds;

use std::sync::{Once, OnceLock};

use crate::dut::needs::Needs;
use crate::dut::{Dut, DutError};
use crate::engine::CheckError;
use crate::engine::scenario::Scenario;
use crate::models::profile::ProfileName;
use crate::models::tcp::State;
use crate::report::Deviations;
use crate::suites::tcp::checks::clause_in_state;
use crate::suites::tcp::scenario::{
    FRESH_TCB_NOTE, REPLAY_PEER_PORT, TcpEvent, TcpScenario, TcpScenarioRun,
};
use crate::trace::{EventKind, Trace};

use super::{Allowed, Finding, FuzzTarget, Kind, Outcome};
pub use pair::{PairTarget, PairVerdict};

/// The environment variable that turns a known panic back into a crash (`crash`).
pub const KNOWN_PANICS_ENV: &str = "NETCONFORM_KNOWN_PANICS";

/// A panic of the stack that its findings document already lists: its message (a
/// substring) and where it is raised (the end of the file's path, and the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPanic {
    /// A substring of the panic message.
    pub message: &'static str,
    /// The end of the path of the file that panics.
    pub file: &'static str,
    /// The line that panics.
    pub line: u32,
    /// Where it is documented.
    pub documented: &'static str,
}

/// One stack under differential fuzzing.
#[derive(Debug, Clone, Copy)]
pub struct StackTarget {
    /// The fuzz target's name (`stack_<stack>`).
    pub name: &'static str,
    /// The stack, as `--target` names it.
    pub stack: &'static str,
    /// The profile its models follow (what `certify --target <stack>` uses).
    pub profile: ProfileName,
    /// Its deviation file (`deviations/<stack>.toml`), as text.
    pub deviations: &'static str,
    /// Its documented panics.
    pub known_panics: &'static [KnownPanic],
    /// A fresh DUT for a scenario with these needs.
    pub build: fn(&Needs) -> Result<Box<dyn Dut>, DutError>,
}

/// smoltcp, in-process on its virtual clock, as `--target smoltcp` builds it.
pub static SMOLTCP: StackTarget = StackTarget {
    name: "stack_smoltcp",
    stack: "smoltcp",
    profile: ProfileName::Rfc,
    deviations: include_str!("../../../deviations/smoltcp.toml"),
    known_panics: &[KnownPanic {
        message: "assertion failed: len_written == payload_len",
        file: "src/socket/tcp.rs",
        line: 2233,
        documented: "docs/findings-smoltcp.md, \"A panic on data at the right edge of the window\"",
    }],
    build: |needs| crate::dut::build::DutKind::Smoltcp.build(needs),
};

/// The stack targets of this crate.
pub static STACKS: &[&StackTarget] = &[&SMOLTCP];

pub(super) static TARGETS: &[FuzzTarget] = &[FuzzTarget {
    name: "stack_smoltcp",
    kind: Kind::Stack,
    about: "smoltcp in-process against the TCP model (rfc profile), scenario by scenario: a \
            panic is a crash, a disagreement outside deviations/smoltcp.toml a finding filed \
            by clause and state in $NETCONFORM_FINDINGS",
    run: |data| run_target(&SMOLTCP, data),
}];

/// The stack and pair targets a crate that links this one added ([`add`]).
static ADDED: OnceLock<(&'static [&'static StackTarget], &'static [PairTarget])> = OnceLock::new();

/// Adds the stack targets and pair targets of a crate that links this one (Netstack3's, in
/// `netconform-netstack3`, whose crates need a newer toolchain than this one's): `stack`,
/// `stacks` and `pair_target` find them, and `netconform fuzz` in that crate's binary runs
/// them. Once per process; a second call changes nothing. Their fuzz targets are added
/// with [`crate::fuzz::add_targets`].
pub fn add(stacks: &'static [&'static StackTarget], pairs: &'static [PairTarget]) {
    let _ = ADDED.set((stacks, pairs));
}

/// Every stack target: this crate's, then the added ones.
pub fn stacks() -> impl Iterator<Item = &'static StackTarget> {
    let added = ADDED.get().map_or(&[][..], |a| a.0);
    STACKS.iter().chain(added).copied()
}

/// The stack target called `name`.
pub fn stack(name: &str) -> Option<&'static StackTarget> {
    stacks().find(|t| t.name == name)
}

/// The pair target called `name` (one that [`add`] added).
pub fn pair_target(name: &str) -> Option<&'static PairTarget> {
    ADDED
        .get()
        .and_then(|a| a.1.iter().find(|p| p.name == name))
}

/// The pair target `pair`'s function: a crash of either stack is the [`Finding`], a
/// difference where both agree with the model is filed ([`findings::record`]) and the
/// fuzzer goes on.
pub fn run_pair(pair: &'static PairTarget, data: &[u8]) -> Outcome {
    install_panic_filter();
    let scenario = input::decode(data, pair.a.profile);
    match pair::judge_pair(pair, &scenario) {
        PairVerdict::Crashed(what) => Err(Finding::new(pair.name, what)),
        PairVerdict::Differ(d) => {
            let key = d.group.key();
            let about = || pair_about(pair, &key, &scenario, &d);
            findings::record(pair.name, &key, &about, data);
            Ok(Allowed::NONE)
        }
        PairVerdict::Same | PairVerdict::NotCompared(_) => Ok(Allowed::NONE),
    }
}

/// What `group.txt` says of a pair difference.
fn pair_about(
    pair: &PairTarget,
    key: &str,
    scenario: &TcpScenario,
    d: &pair::PairDifference,
) -> String {
    let mut text = format!(
        "{key}\n\nstacks: {} and {} ({:?} profile), both agreeing with the model\nstep: {}\n",
        pair.a.stack, pair.b.stack, pair.a.profile, d.step
    );
    for line in &d.differences {
        text.push_str(&format!("answer of {line}\n"));
    }
    text.push_str(&format!(
        "scenario: {}\n",
        serde_json::to_string(scenario).unwrap_or_default()
    ));
    text
}

/// What a disagreement is filed under: the clause the failing event exercises in the
/// model's state before it ([`clause_in_state`]), that state, and what differed (the kind
/// of the first difference and the model's reason for the segment it concerns).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// The clause's id (`rfc5961-4.2`).
    pub clause: &'static str,
    /// The model's state before the failing event.
    pub state: State,
    /// What differed: `no segment where the model sends <reason>`, `flags of <reason>`,
    /// `a segment where the model sends nothing`, `state`, `call outcome`, ...
    pub what: String,
}

impl Group {
    /// `clause in STATE: what`, the key of its findings directory.
    pub fn key(&self) -> String {
        format!("{} in {}: {}", self.clause, self.state, self.what)
    }
}

/// A disagreement with the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// Its group.
    pub group: Group,
    /// The failing step (`event 3 of 4 (Peer(...))`, `quiet period after the last event`).
    pub step: String,
    /// The differences, as the runner reports them (the scenario and the ladder apart).
    pub differences: Vec<String>,
    /// The exchange, expected and observed side by side.
    pub ladder: String,
    /// The failing event, from 0.
    pub event: usize,
}

/// What one input gave on one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The stack did what the model says, to the end of the quiet period.
    Agreed,
    /// The stack disagreed, and its deviation file accepts every difference (the entries).
    Accepted(Vec<usize>),
    /// The stack disagreed outside its accepted deviations.
    Disagreed(Disagreement),
    /// The stack cannot perform one of the events (nothing to compare).
    Refused(String),
    /// The stack panicked where its documentation says it does.
    KnownPanic(String),
    /// The stack panicked or died, or the harness failed: a crash.
    Crashed(String),
}

impl Verdict {
    /// One line: `agreed`, `FINDING <group>`, `CRASH <what>`, ...
    pub fn line(&self) -> String {
        match self {
            Verdict::Agreed => "agreed with the model".into(),
            Verdict::Accepted(entries) => format!("disagreed, accepted by entries {entries:?}"),
            Verdict::Disagreed(d) => format!("FINDING {}", d.group.key()),
            Verdict::Refused(why) => format!("refused: {why}"),
            Verdict::KnownPanic(what) => format!("FINDING known panic: {what}"),
            Verdict::Crashed(what) => format!("CRASH {what}"),
        }
    }
}

/// Runs `scenario` on a fresh DUT of `target` and judges it.
pub fn judge_scenario(target: &StackTarget, scenario: &TcpScenario) -> Verdict {
    run_scenario(target, scenario).0
}

/// Runs `scenario` on a fresh DUT of `target`: its verdict, and what the session recorded
/// (empty when no DUT was built).
pub fn run_scenario(target: &StackTarget, scenario: &TcpScenario) -> (Verdict, Trace) {
    let (result, trace) = match pair::traced_run(target, scenario, target.known_panics) {
        Ok(run) => run,
        Err(DutError::NotSupported { what }) => return (Verdict::Refused(what), Trace::default()),
        Err(e) => {
            let what = format!("building the {} DUT: {e}", target.stack);
            return (Verdict::Crashed(what), Trace::default());
        }
    };
    let error = match result {
        Ok(()) => return (Verdict::Agreed, trace),
        Err(e) => e,
    };
    let verdict = match error {
        CheckError::Dut {
            source: DutError::NotSupported { what },
            ..
        } => Verdict::Refused(what),
        CheckError::Dut {
            step,
            source: DutError::Gone { what },
        } => {
            if target.known_panics.iter().any(|k| what.contains(k.message)) && !panics_crash() {
                Verdict::KnownPanic(what)
            } else {
                Verdict::Crashed(format!("{step}: {what}"))
            }
        }
        e if !e.is_disagreement() => Verdict::Crashed(e.to_string()),
        e => {
            let d = disagreement(scenario, &e, &trace);
            let check = format!(
                "tcp.matrix.{}.{}",
                if scenario.ipv6 { "v6" } else { "v4" },
                d.group.state.to_string().to_lowercase()
            );
            let judged = with_deviations(target, |dev| {
                dev.judge(&check, &d.step, &d.differences).accepted_by
            });
            match judged {
                Some(entries) => Verdict::Accepted(entries.iter().map(|e| e.entry).collect()),
                None => Verdict::Disagreed(d),
            }
        }
    };
    (verdict, trace)
}

/// Runs `f` on the deviations of `target`, parsed once per thread. A file that does not
/// parse accepts nothing (`tests` holds every built-in file to parsing).
fn with_deviations<T>(target: &StackTarget, f: impl FnOnce(&Deviations) -> T) -> T {
    thread_local! {
        static PARSED: std::cell::RefCell<Vec<(&'static str, Deviations)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    PARSED.with(|parsed| {
        let mut parsed = parsed.borrow_mut();
        let i = match parsed.iter().position(|(name, _)| *name == target.name) {
            Some(i) => i,
            None => {
                let origin = format!("deviations/{}.toml", target.stack);
                let dev = Deviations::parse(target.deviations, std::path::Path::new(&origin))
                    .unwrap_or_default();
                parsed.push((target.name, dev));
                parsed.len() - 1
            }
        };
        f(&parsed[i].1)
    })
}

/// Decodes `data` for `target` and judges it.
pub fn judge(target: &StackTarget, data: &[u8]) -> (TcpScenario, Verdict) {
    install_panic_filter();
    let scenario = input::decode(data, target.profile);
    let verdict = judge_scenario(target, &scenario);
    (scenario, verdict)
}

/// A stack target's function: a crash is the [`Finding`] (libFuzzer saves the input), a
/// disagreement or a known panic is filed ([`findings::record`]) and the fuzzer goes on.
pub fn run_target(target: &'static StackTarget, data: &[u8]) -> Outcome {
    let (scenario, verdict) = judge(target, data);
    match &verdict {
        Verdict::Crashed(what) => Err(Finding::new(target.name, what.clone())),
        Verdict::Disagreed(d) => {
            let key = d.group.key();
            let about = || about(target, &key, &scenario, &verdict);
            findings::record(target.name, &key, &about, data);
            Ok(Allowed::NONE)
        }
        Verdict::KnownPanic(what) => {
            let key = format!("known panic: {}", first_line(what));
            let about = || about(target, &key, &scenario, &verdict);
            findings::record(target.name, &key, &about, data);
            Ok(Allowed::NONE)
        }
        Verdict::Agreed | Verdict::Accepted(_) | Verdict::Refused(_) => Ok(Allowed::NONE),
    }
}

/// What `group.txt` says: the key, the clause, the stack, the scenario, the differences.
fn about(target: &StackTarget, key: &str, scenario: &TcpScenario, verdict: &Verdict) -> String {
    let mut text = format!(
        "{key}\n\nstack: {} ({:?} profile)\n",
        target.stack, target.profile
    );
    if let Verdict::Disagreed(d) = verdict {
        let clause = crate::suites::catalogue()
            .iter()
            .flat_map(|c| c.clauses.iter())
            .find(|c| c.id == d.group.clause);
        if let Some(c) = clause {
            text.push_str(&format!("clause: {} ({}): {}\n", c.id, c.source, c.text));
        }
        text.push_str(&format!("step: {}\n", d.step));
        for line in &d.differences {
            text.push_str(&format!("difference: {line}\n"));
        }
        text.push_str(&format!("\nfirst input:\n{}\n", d.ladder));
    } else {
        text.push_str(&format!("{}\n", verdict.line()));
    }
    text.push_str(&format!(
        "scenario: {}\n",
        serde_json::to_string(scenario).unwrap_or_default()
    ));
    text
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The disagreement `error` of `scenario` stands for, its group read from the run's trace.
fn disagreement(scenario: &TcpScenario, error: &CheckError, trace: &Trace) -> Disagreement {
    let step = error.step().to_string();
    let all = match crate::engine::runner::verdict_of(error) {
        crate::engine::Verdict::Fail { differences, .. } => differences,
        _ => vec![error.to_string()],
    };
    let (ladder, differences): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|d| d.starts_with("scenario: ") || d.starts_with("expected (model)"));
    let ladder = ladder
        .into_iter()
        .filter(|l| l.starts_with("expected (model)"))
        .collect::<Vec<_>>()
        .join("\n");
    let events = scenario.events.len();
    let event = failing_event(&step, events);
    let state = state_before(trace, event);
    let clause = scenario
        .events
        .get(event)
        .map_or("rfc9293-3.10.1", |e| clause_in_state(state, e).id);
    let quiet = step.starts_with("quiet period");
    let what = what_differed(differences.first().map(String::as_str).unwrap_or(""), quiet);
    Disagreement {
        group: Group {
            clause,
            state,
            what,
        },
        step,
        differences,
        ladder,
        event,
    }
}

/// The failing event (from 0) of a failure at `step`: `event K of N (...)` is K - 1; a
/// failure after the events (the quiet period, the clean-up) is about the last one.
fn failing_event(step: &str, events: usize) -> usize {
    step.strip_prefix("event ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|k| (1..=events).contains(k))
        .map_or(events.saturating_sub(1), |k| k - 1)
}

/// The model's state before event `index` (from 0), from the notes of the runner in
/// `trace`: the last `state: model X, ...` note before the event's own note (CLOSED when
/// none), LISTEN when the event met a fresh TCB ([`FRESH_TCB_NOTE`]).
pub(crate) fn state_before(trace: &Trace, index: usize) -> State {
    let marker = format!(": event {} of ", index + 1);
    let notes: Vec<&str> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let Some(at) = notes
        .iter()
        .position(|n| n.starts_with("scenario ") && n.contains(&marker))
    else {
        return State::Closed;
    };
    if notes[at..]
        .iter()
        .skip(1)
        .take_while(|n| !n.starts_with("scenario "))
        .any(|n| *n == FRESH_TCB_NOTE)
    {
        return State::Listen;
    }
    notes[..at]
        .iter()
        .rev()
        .find_map(|n| n.strip_prefix("state: model "))
        .and_then(|rest| rest.split(',').next())
        .and_then(|name| State::ALL.iter().copied().find(|s| s.to_string() == name))
        .unwrap_or(State::Closed)
}

/// What the first difference line says differed, without its numbers: the kind of
/// difference and the model's reason for the segment it concerns.
fn what_differed(first: &str, quiet: bool) -> String {
    // `<reason>: flags expected ...`, `<reason>: seq expected ...`
    for (field, name) in [
        (": flags expected", "flags"),
        (": seq expected", "seq"),
        (": ack expected", "ack"),
        (": length expected", "length"),
        (": MSS option expected", "MSS option"),
        (": SACK-permitted option expected", "SACK-permitted option"),
        (": window scale option expected", "window scale option"),
        (": timestamps option expected", "timestamps option"),
        (": SACK blocks expected", "SACK blocks"),
        (
            ": an MSS option on a segment without SYN",
            "MSS option without SYN",
        ),
    ] {
        if let Some(at) = first.find(field) {
            return format!("{name} of {}", &first[..at]);
        }
    }
    if first.ends_with("the stack sent nothing") || first.contains(", the stack sent nothing") {
        let reason = first
            .rsplit_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map_or("a segment", |(r, _)| r);
        return format!("no segment where the model sends {reason}");
    }
    if first.contains("in the quiet period") || (quiet && first.starts_with("the stack sent")) {
        return "a segment in the quiet period, where the model expects nothing".into();
    }
    if first.contains("the model expected nothing") {
        return "a segment where the model expects nothing".into();
    }
    if first.starts_with("state: expected") {
        return format!(
            "state {}",
            first
                .split_once(", observed")
                .map_or("", |(e, _)| e)
                .trim_start_matches("state: ")
        );
    }
    if first.contains("malformed frame") || first.contains("bad checksum") {
        return "a malformed segment".into();
    }
    if let Some((call, _)) = first.split_once(": expected") {
        let call = call.split('(').next().unwrap_or(call);
        return format!("outcome of {call}");
    }
    "other".into()
}

thread_local! {
    /// The known panics of the stack target running on this thread, while it runs.
    static IN_STACK_TARGET: std::cell::Cell<Option<&'static [KnownPanic]>> =
        const { std::cell::Cell::new(None) };
}

fn panics_crash() -> bool {
    std::env::var(KNOWN_PANICS_ENV).is_ok_and(|v| v == "crash")
}

/// Installs, once, a panic hook in front of the one in place (libFuzzer's aborts the
/// process): a known panic of the stack target running on this thread unwinds quietly to
/// the DUT's own guard, which reports it; every other panic goes to the hook before.
fn install_panic_filter() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if panics_crash() {
            return;
        }
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let known = IN_STACK_TARGET.with(|k| k.get()).is_some_and(|known| {
                let message = crate::dut::panic_message(info.payload());
                let at = info.location();
                known.iter().any(|k| {
                    message.contains(k.message)
                        && at.is_some_and(|l| l.file().ends_with(k.file) && l.line() == k.line)
                })
            });
            if !known {
                before(info);
            }
        }));
    });
}

/// The same input on two stacks: each one's verdict. Two verdicts of a different kind
/// (one agrees, the other disagrees; two groups) say where the stacks part on one input;
/// where both agree, [`pair::judge_pair`] compares the exchanges where the model leaves
/// the answer open.
pub fn compare(a: &StackTarget, b: &StackTarget, data: &[u8]) -> (Verdict, Verdict) {
    let (_, va) = judge(a, data);
    let (_, vb) = judge(b, data);
    (va, vb)
}

/// Shrinks `scenario`, which disagrees on `target` in `group`, by deleting events while a
/// fresh DUT still disagrees in the same group (the engine's step shrink,
/// [`crate::engine::runner::shrink_steps`]); the result is what `netconform replay
/// --target <stack>` replays.
pub fn shrink(target: &StackTarget, scenario: &TcpScenario, group: &Group) -> TcpScenarioRun {
    let mut best = shrink_events(
        scenario,
        2000,
        |c| matches!(judge_scenario(target, c), Verdict::Disagreed(d) if d.group == *group),
    );
    let original = scenario.events.len();
    best.scenario.name = format!(
        "{} on {}: {} (shrunk to {} of {original} events)",
        scenario.name,
        target.stack,
        group.key(),
        best.scenario.events.len()
    );
    best
}

/// Shrinks `scenario` by deleting events while `still` holds of what is left (the
/// engine's step shrink, [`crate::engine::runner::shrink_steps`], within `budget` tries),
/// as a scenario `netconform replay` runs.
fn shrink_events(
    scenario: &TcpScenario,
    budget: usize,
    mut still: impl FnMut(&TcpScenario) -> bool,
) -> TcpScenarioRun {
    let run = TcpScenarioRun {
        scenario: scenario.clone(),
        peer_port: REPLAY_PEER_PORT,
    };
    let mut same = |candidate: &dyn Scenario| {
        candidate
            .as_any()
            .downcast_ref::<TcpScenarioRun>()
            .is_some_and(|c| still(&c.scenario))
    };
    let best = crate::engine::runner::shrink_steps(&run, &mut same, budget);
    best.as_any()
        .downcast_ref::<TcpScenarioRun>()
        .cloned()
        .unwrap_or(run)
}

/// Whether a group's smallest input, shrunk, is a cell of the TCP matrix (the path into a
/// state, then one segment at the boundary numbers), which `certify` runs too: `Some(cell)`
/// then (the finding is one the matrix shows), `None` when it shrinks to anything else (a
/// call, another path into the state, a payload: what only the fuzzer reaches, though the
/// same violation may also show in another cell), or the input no longer disagrees.
pub fn matrix_cell(target: &StackTarget, data: &[u8]) -> Option<String> {
    let (scenario, verdict) = judge(target, data);
    let Verdict::Disagreed(d) = verdict else {
        return None;
    };
    let shrunk = shrink(target, &scenario, &d.group).scenario;
    let (probe, path) = shrunk.events.split_last()?;
    let TcpEvent::Peer(p) = probe else {
        return None;
    };
    let state = crate::suites::tcp::matrix::STATES
        .into_iter()
        .find(|s| crate::suites::tcp::matrix::path_to(*s) == path)?;
    let cell = crate::suites::tcp::matrix::cell(target.profile, shrunk.ipv6, state, *p);
    (cell.events == shrunk.events && cell.peer_mss == shrunk.peer_mss).then_some(cell.name)
}

/// A findings directory's groups as text (or Markdown tables): first per clause (groups and
/// findings), then per group its count, its key, the sizes of its first and smallest
/// inputs, and the commands that reproduce it and turn it into a replayable scenario.
/// `cells` gives, per group (same order), what [`matrix_cell`] said, when it was asked.
pub fn render_findings(
    groups: &[findings::GroupOnDisk],
    cells: Option<&[Option<String>]>,
    markdown: bool,
) -> String {
    let mut out = String::new();
    if groups.is_empty() {
        out.push_str("no findings\n");
        return out;
    }
    let total: u64 = groups.iter().map(|g| g.count).sum();
    out.push_str(&format!(
        "{} finding group(s), {total} finding(s) counted\n\n",
        groups.len()
    ));
    let mut by_clause: Vec<(String, usize, u64)> = Vec::new();
    for g in groups {
        let clause = format!(
            "{} {}",
            g.target,
            g.key.split(" in ").next().unwrap_or(&g.key)
        );
        match by_clause.iter_mut().find(|(c, _, _)| *c == clause) {
            Some((_, n, count)) => {
                *n += 1;
                *count += g.count;
            }
            None => by_clause.push((clause, 1, g.count)),
        }
    }
    by_clause.sort_by_key(|c| std::cmp::Reverse(c.2));
    if markdown {
        out.push_str("| target and clause | groups | findings |\n|---|---:|---:|\n");
    } else {
        out.push_str("by clause:\n");
    }
    for (clause, n, count) in &by_clause {
        if markdown {
            out.push_str(&format!("| {clause} | {n} | {count} |\n"));
        } else {
            out.push_str(&format!("{count:>10}  {clause} ({n} group(s))\n"));
        }
    }
    out.push('\n');
    if markdown {
        out.push_str("| target | count | group (clause in state: what differed) | matrix | smallest | reproduce |\n");
        out.push_str("|---|---:|---|---|---:|---|\n");
    }
    for (i, g) in groups.iter().enumerate() {
        let matrix = match cells.and_then(|c| c.get(i)) {
            None => "",
            Some(_) if g.key.starts_with("known panic") => "a documented panic",
            Some(Some(cell)) => cell.as_str(),
            Some(None) => "not a matrix cell",
        };
        let smallest = g.dir.join("smallest");
        let replay = match (pair_target(&g.target), stack(&g.target)) {
            (Some(p), _) => format!(
                "netconform replay --target {} finding.json; netconform replay --target {} finding.json",
                p.a.stack, p.b.stack
            ),
            (None, s) => format!(
                "netconform replay --target {} finding.json",
                s.map_or_else(|| g.target.trim_start_matches("stack_"), |s| s.stack)
            ),
        };
        let run = format!("netconform fuzz run {} {}", g.target, smallest.display());
        let scenario = format!(
            "netconform fuzz scenario {} {} --out finding.json && {replay}",
            g.target,
            smallest.display()
        );
        if markdown {
            out.push_str(&format!(
                "| {} | {} | {} | {matrix} | {} B | `{run}`; `{scenario}` |\n",
                g.target,
                g.count,
                g.key.replace('|', "\\|"),
                g.smallest_len
            ));
        } else {
            let matrix = if matrix.is_empty() {
                String::new()
            } else {
                format!("\n          matrix:    {matrix}")
            };
            out.push_str(&format!(
                "{:>10}  {}: {}\n          first {} B, smallest {} B{matrix}\n          reproduce: {run}\n          scenario:  {scenario}\n",
                g.count, g.target, g.key, g.first_len, g.smallest_len
            ));
        }
    }
    out
}

/// The events of `scenario` the way `netconform replay` lists them, one per line.
pub fn event_lines(scenario: &TcpScenario) -> Vec<String> {
    scenario
        .events
        .iter()
        .map(|e: &TcpEvent| serde_json::to_string(e).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests;
