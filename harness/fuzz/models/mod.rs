//! Model targets: an arbitrary event sequence drives a model, and the model's invariants are
//! asserted after every step.
//!
//! Each target reads at most [`MAX_EVENTS`] events from its input with
//! `arbitrary::Unstructured` (fuzz-local event enums that map to model calls, over small
//! address and port spaces so that events collide), runs them on a fresh model and checks,
//! after every event, what the model's documentation promises. Every target also runs the
//! same events a second time on a fresh model and requires the same outputs (models are
//! pure, so they must be deterministic).
//!
//! The invariant checks are functions of this module's submodules (`check_*`), so that the
//! unit tests in `tests.rs` can show each of them failing on a hand-built bad state.

use arbitrary::{Arbitrary, Unstructured};

use super::{Allowed, Finding, FuzzTarget, Kind, Outcome, ensure};

mod arp;
mod forward;
mod nat;
mod route;
mod switch;
mod tcp;
mod tls;

#[cfg(test)]
mod tests;

/// The most events one input drives a model with.
pub(crate) const MAX_EVENTS: usize = 64;

pub(super) static TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "model_tcp",
        kind: Kind::Model,
        about: "TCP endpoint model: transitions along RFC 9293's diagram, SND.UNA <= SND.NXT, \
                RCV.NXT forward only, segments consistent with the state, determinism",
        run: tcp::run,
    },
    FuzzTarget {
        name: "model_arp",
        kind: Kind::Model,
        about: "ARP neighbour cache: legal states, timers never run late or backwards, an \
                answered request is REACHABLE with its MAC, no packet sent twice, determinism",
        run: arp::run,
    },
    FuzzTarget {
        name: "model_route",
        kind: Kind::Model,
        about: "route lookup against a brute-force longest-prefix match over the same routes; \
                add/EEXIST/EINVAL against a reference; source address rules; determinism",
        run: route::run,
    },
    FuzzTarget {
        name: "model_switch",
        kind: Kind::Model,
        about: "learning switch against a reference filtering database: never back out of the \
                ingress port, last port wins, ageing, group sources never learned, determinism",
        run: switch::run,
    },
    FuzzTarget {
        name: "model_forward",
        kind: Kind::Model,
        about: "IPv4 forwarding: TTL minus exactly one, time exceeded only at TTL <= 1, never an \
                ICMP error about an ICMP error, fragment or broadcast, quotes within 576 bytes",
        run: forward::run,
    },
    FuzzTarget {
        name: "model_nat",
        kind: Kind::Model,
        about: "NAPT table: reply tuples unique (a bijection), predictions honoured, out then \
                in returns the original, ICMP error quotes reverted with valid checksums",
        run: nat::run,
    },
    FuzzTarget {
        name: "model_tls",
        kind: Kind::Model,
        about: "TLS record protection and key schedules: seal/open round trips for every suite, \
                a flipped bit never opens, KeyUpdate chains, PRF lengths and prefixes, \
                transcript splits",
        run: tls::run,
    },
];

/// A model target's outcome: `transcript` drives fresh models with the events read from
/// `data` and checks the invariants after every step (its `Err` is the broken one); it runs
/// twice, and the two transcripts must be the same (the model is deterministic).
///
/// A transcript is the model's own output values (`O`: decisions, segments, answers), compared
/// with `==` and formatted only when the two runs differ; formatting every output of every run
/// cost more than the models themselves (docs/PERFORMANCE.md, "Fuzz targets").
pub(crate) fn twice<O: PartialEq + std::fmt::Debug>(
    target: &'static str,
    data: &[u8],
    transcript: fn(&mut Unstructured<'_>) -> Result<Vec<O>, String>,
) -> Outcome {
    let first = transcript(&mut Unstructured::new(data)).map_err(|w| Finding::new(target, w))?;
    let again = transcript(&mut Unstructured::new(data)).unwrap_or_default();
    same_transcripts(target, &first, &again)
}

/// The determinism check of [`twice`]: both runs gave the same outputs, in the same order.
pub(crate) fn same_transcripts<O: PartialEq + std::fmt::Debug>(
    target: &'static str,
    first: &[O],
    again: &[O],
) -> Outcome {
    ensure!(
        first == again,
        target,
        "not deterministic: {first:?} then {again:?}"
    );
    Ok(Allowed::NONE)
}

/// Up to [`MAX_EVENTS`] events of type `E` from what is left of `u`.
pub(crate) fn events<'a, E: Arbitrary<'a>>(u: &mut Unstructured<'a>) -> Vec<E> {
    let mut v = Vec::new();
    while v.len() < MAX_EVENTS && !u.is_empty() {
        match E::arbitrary(u) {
            Ok(e) => v.push(e),
            Err(_) => break,
        }
    }
    v
}

/// One's complement sum of `data` as 16-bit big-endian words (RFC 1071), not inverted.
pub(crate) fn ones_sum(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}
