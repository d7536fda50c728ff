//! The logic behind every cargo-fuzz target, in the library so that `cargo test` replays
//! seeds and regressions through exactly what the fuzzer runs, and `ci/fuzz-bench` measures it.
//!
//! Each target is one function `fn(&[u8]) -> Outcome` listed by [`targets`]; the files in
//! `fuzz/fuzz_targets/` are a few lines that call [`run`] with their name. A target returns
//! `Err(Finding)` when an invariant breaks or when two parsers disagree in a way that
//! [`differences`] does not list; libFuzzer then records the input as a crash.
//!
//! Kinds of target:
//! - **parser** targets feed bytes at one layer to the harness's parser (`crate::wire`), to a
//!   reference parser (etherparse, smoltcp::wire, hickory-proto, httparse) where they
//!   overlap, and check parse → emit → parse identity;
//! - **model** targets read an event sequence from the bytes (`arbitrary`) and drive a model
//!   with it, asserting the model's invariants after every step;
//! - the **receive-path** target runs a frame through everything the harness does with a
//!   frame a stack sent (parse, trace, compare, report);
//! - the **bare** target parses with etherparse alone: the speed baseline;
//! - the **stack** targets ([`stacks`]) run a real in-process stack (smoltcp) against the
//!   TCP model, scenario by scenario.
//!
//! Nothing here touches the operating system, a clock or a random source, but the stack
//! targets' findings directory ([`stacks::findings`], only when its variable is set).

mod app;
pub mod differences;
mod layers;
mod models;
pub mod receive;
pub mod seeds;
pub mod stacks;

use std::fmt;
use std::sync::OnceLock;

pub use differences::{Allowed, Difference};

/// What a target found: a broken invariant, or a disagreement no known difference explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The target that found it.
    pub target: &'static str,
    /// What went wrong, with the values involved.
    pub what: String,
}

impl Finding {
    /// A finding of `target`.
    pub fn new(target: &'static str, what: impl Into<String>) -> Self {
        Finding {
            target,
            what: what.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fuzz target {}: {}", self.target, self.what)
    }
}

impl std::error::Error for Finding {}

/// The result of one input: the known differences that applied, or a finding.
pub type Outcome = Result<Allowed, Finding>;

/// Returns `Err(Finding)` from the enclosing function when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $target:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::fuzz::Finding::new($target, format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// What a target exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// etherparse alone: the speed baseline of `ci/fuzz-bench`.
    Bare,
    /// A parser of `crate::wire`: differential and round trip.
    Parser,
    /// A model driven by an arbitrary event sequence.
    Model,
    /// The whole receive path of the harness.
    ReceivePath,
    /// A real stack in-process against the TCP model ([`stacks`]).
    Stack,
}

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct FuzzTarget {
    /// Its name: the file `fuzz/fuzz_targets/<name>.rs`, `corpora/<name>/`,
    /// `corpora/<name>.dict` and `fuzz/regressions/<name>/`.
    pub name: &'static str,
    /// What it exercises.
    pub kind: Kind,
    /// One line on what it checks.
    pub about: &'static str,
    /// The logic.
    pub run: fn(&[u8]) -> Outcome,
}

/// The targets defined in this file.
static BASE: &[FuzzTarget] = &[FuzzTarget {
    name: "tls",
    kind: Kind::Parser,
    about: "TLS records, handshake reassembly and bodies: never panic, re-emit byte for byte",
    run: tls,
}];

/// The targets a crate that links this one added ([`add_targets`]).
static ADDED: OnceLock<&'static [FuzzTarget]> = OnceLock::new();

/// Adds the fuzz targets of a crate that links this one (`netconform-netstack3`'s stack
/// targets, [`stacks::add`]): [`targets`] and [`target`] list them after this crate's. Once
/// per process; a second call changes nothing.
pub fn add_targets(targets: &'static [FuzzTarget]) {
    let _ = ADDED.set(targets);
}

/// Every fuzz target, in the order `ci/fuzz-bench` reports them (the bare baseline first),
/// then the added ones.
pub fn targets() -> impl Iterator<Item = &'static FuzzTarget> {
    [
        layers::TARGETS,
        BASE,
        app::TARGETS,
        models::TARGETS,
        stacks::TARGETS,
        ADDED.get().copied().unwrap_or_default(),
    ]
    .into_iter()
    .flatten()
}

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static FuzzTarget> {
    targets().find(|t| t.name == name)
}

/// Runs target `name` on `data` and panics with its finding, for libFuzzer to record the
/// input: what a file in `fuzz/fuzz_targets/` calls.
///
/// # Panics
///
/// On a finding, and when no target is called `name`.
pub fn run(name: &str, data: &[u8]) {
    // A fuzz binary calls this with the same literal for every input: the target found for
    // it the first time is kept with the literal's address, so later calls skip the search
    // by name (string comparisons that libFuzzer traces, on every input).
    static FIRST: OnceLock<(usize, usize, &'static FuzzTarget)> = OnceLock::new();
    let key = (name.as_ptr() as usize, name.len());
    let t = match FIRST.get() {
        Some(&(ptr, len, t)) if (ptr, len) == key => t,
        _ => {
            let Some(t) = target(name) else {
                panic!("no fuzz target called {name:?}");
            };
            let _ = FIRST.set((key.0, key.1, t));
            t
        }
    };
    if let Err(finding) = (t.run)(data) {
        panic!("{finding}");
    }
}

/// Formats `value` with `Display` into nothing: the formatting code runs (a panic in it is a
/// finding) without a `String` to grow and free on every input.
pub(crate) fn display<T: fmt::Display + ?Sized>(value: &T) {
    struct Sink;
    impl fmt::Write for Sink {
        fn write_str(&mut self, _: &str) -> fmt::Result {
            Ok(())
        }
    }
    let _ = fmt::write(&mut Sink, format_args!("{value}"));
}

fn tls(data: &[u8]) -> Outcome {
    crate::wire::tls::fuzz_one(data);
    Ok(Allowed::NONE)
}
