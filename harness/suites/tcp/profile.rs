//! Where a TCP scenario's time goes: per-phase totals over every scenario run while
//! profiling is on (`netconform bench --tcp-matrix --profile`).
//!
//! The runner adds the scenario time each phase took (barriers, the wait for a delayed
//! acknowledgment, socket calls, state reads, ...) to process-wide counters. Off by default:
//! then a phase costs one relaxed atomic load and nothing is added.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The phases of an event (and of a scenario's clean-up) that are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Building the peer's segment and sending it (model step included).
    Send,
    /// Socket calls (listen, connect, close, ...) through the target's control path.
    Call,
    /// The barrier after an event (echo request until its reply).
    Barrier,
    /// Waiting for an acknowledgment the stack may delay (RFC 9293 MUST-40).
    DelayedAck,
    /// The barrier after such a wait.
    SecondBarrier,
    /// Comparing segments and call outcomes with the model.
    Compare,
    /// Accepting a new connection.
    Accept,
    /// Reading the stack's TCP socket states.
    StateRead,
    /// The quiet period after a scenario's last event (what of it is still to run when
    /// the scenario's turn comes: on a stack on a real clock it overlaps the next
    /// scenarios).
    Quiet,
    /// Closing what the scenario left open, with its barrier.
    Cleanup,
}

impl Phase {
    /// Every phase, in report order.
    pub const ALL: [Phase; 10] = [
        Phase::Send,
        Phase::Call,
        Phase::Barrier,
        Phase::DelayedAck,
        Phase::SecondBarrier,
        Phase::Compare,
        Phase::Accept,
        Phase::StateRead,
        Phase::Quiet,
        Phase::Cleanup,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Send => "send peer segment",
            Phase::Call => "socket calls",
            Phase::Barrier => "barrier",
            Phase::DelayedAck => "delayed-ACK wait",
            Phase::SecondBarrier => "barrier after that wait",
            Phase::Compare => "compare with the model",
            Phase::Accept => "accept",
            Phase::StateRead => "state read (sock_diag)",
            Phase::Quiet => "quiet period (last event)",
            Phase::Cleanup => "clean-up (close + barrier)",
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static MICROS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
static COUNTS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
static SCENARIOS: AtomicU64 = AtomicU64::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Turns profiling on (and clears the counters) or off.
pub fn enable(on: bool) {
    for c in MICROS.iter().chain(COUNTS.iter()) {
        c.store(0, Ordering::Relaxed);
    }
    SCENARIOS.store(0, Ordering::Relaxed);
    EVENTS.store(0, Ordering::Relaxed);
    ON.store(on, Ordering::Relaxed);
}

/// Whether profiling is on.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Adds `micros` to `phase`.
pub fn add(phase: Phase, micros: u64) {
    if enabled() {
        let i = phase as usize;
        MICROS[i].fetch_add(micros, Ordering::Relaxed);
        COUNTS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one scenario run with `events` events.
pub fn scenario(events: usize) {
    if enabled() {
        SCENARIOS.fetch_add(1, Ordering::Relaxed);
        EVENTS.fetch_add(events as u64, Ordering::Relaxed);
    }
}

/// The totals so far.
pub fn snapshot() -> ScenarioProfile {
    ScenarioProfile {
        scenarios: SCENARIOS.load(Ordering::Relaxed),
        events: EVENTS.load(Ordering::Relaxed),
        phases: Phase::ALL
            .iter()
            .map(|&p| {
                (
                    p,
                    MICROS[p as usize].load(Ordering::Relaxed),
                    COUNTS[p as usize].load(Ordering::Relaxed),
                )
            })
            .collect(),
    }
}

/// Per-phase totals over the scenarios run while profiling was on.
#[derive(Debug, Clone)]
pub struct ScenarioProfile {
    /// Scenarios run.
    pub scenarios: u64,
    /// Events run, over all scenarios.
    pub events: u64,
    /// Each phase: total microseconds (summed over every worker) and how often it ran.
    pub phases: Vec<(Phase, u64, u64)>,
}

impl fmt::Display for ScenarioProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.phases.iter().map(|(_, us, _)| us).sum();
        let cells = self.scenarios.max(1) as f64;
        writeln!(
            f,
            "profile: {} scenarios, {} events ({:.1} per scenario); time summed over the workers",
            self.scenarios,
            self.events,
            self.events as f64 / cells
        )?;
        writeln!(
            f,
            "  {:<28} {:>10} {:>8} {:>12} {:>10} {:>6}",
            "phase", "total ms", "count", "us per cell", "us each", "share"
        )?;
        for (p, us, n) in &self.phases {
            writeln!(
                f,
                "  {:<28} {:>10.1} {:>8} {:>12.0} {:>10.1} {:>5.1}%",
                p.name(),
                *us as f64 / 1e3,
                n,
                *us as f64 / cells,
                *us as f64 / (*n).max(1) as f64,
                *us as f64 * 100.0 / total.max(1) as f64
            )?;
        }
        writeln!(
            f,
            "  {:<28} {:>10.1} {:>8} {:>12.0}",
            "timed phases together",
            total as f64 / 1e3,
            "",
            total as f64 / cells
        )
    }
}
