//! What crossed the wire: record, normalise, render as text or JSON, read and write pcap.
//!
//! A [`Trace`] is the ordered record of a scenario: frames in both directions, application
//! calls on the stack under test, and notes, each stamped with scenario time
//! ([`time::Instant`](crate::time::Instant)). It is plain data (serde), pure, and never
//! panics on the bytes it holds, however malformed.
//!
//! # Text form
//!
//! [`Trace::render`] writes one line per event, locked by snapshot tests, so it is fully
//! deterministic:
//!
//! ```text
//!     0.000 > peer.40000 > dut.80: S 0:0(0) win 64240 <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 7>
//!     0.120 < dut.80 > peer.40000: S. 0:0(0) ack 1 win 65160 <mss 1460,...>
//!     0.300 * connect(dut:80) = Ok
//!     0.400 # peer closes
//!     0.500 < dut > peer: ICMP unreachable port for proto 17 peer.5000 > dut.9, length 29
//!     0.600 > ARP who-has dut tell peer
//!     0.700 < ARP dut is-at dut
//!     0.800 > malformed frame (40 bytes): IPv4 header at offset 14: needs 60 bytes, 26 present
//! ```
//!
//! - time: milliseconds since the scenario start, fixed width (`time::Instant` Display);
//! - mark: `>` frame sent by the harness, `<` frame received from the stack, `*` a call
//!   (`text = result`), `#` a note;
//! - ports: on a target with several ports (a switch) a frame's mark is followed by its
//!   port, `> p0 A > B: ...` for a frame sent into port 0, `< p2 A > B: ...` for one that
//!   came out of port 2;
//! - hosts: MACs and IPs are replaced by names from [`HostNames`]; an address it does not
//!   know is named `host1`, `host2`, ... in order of first appearance in the trace;
//! - TCP: `src.port > dst.port: FLAGS seq:end(len) [ack N] win W [<options>]`, flags as
//!   tcpdump prints them. Sequence numbers are **relative** per direction of each
//!   connection: the base is the sequence number of the latest SYN sent in that direction
//!   (so SYNs show 0, and a new SYN on the same ports starts again), or, when no SYN was
//!   seen, of the first segment seen. Ack numbers and SACK blocks are relative to the other
//!   direction's base (learned from the ack itself when that direction was never seen).
//!   Timestamp values are relative to the first non-zero TSval of their direction; an ecr
//!   of 0 stays 0, others are relative to the other direction's TSval base;
//! - ICMPv4 errors name the datagram they quote (`for proto 17 peer.5000 > dut.9`);
//! - IPv6 lines start with `IP6 `; VLAN tags show as `vlan 10: ` before the rest;
//! - problems are flagged at the end: `[bad ip cksum]`, `[bad tcp cksum]`,
//!   `[bad udp cksum]`, `[bad icmp cksum]`; a frame that does not parse renders as
//!   `malformed frame (N bytes): <layer> header at offset O: needs X bytes, Y present`.
//!
//! # JSON form
//!
//! [`Trace::to_json_decoded`] gives an array with one object per event: time, direction,
//! the rendered line, and the decoded frame (every layer's fields) or the parse error
//! (layer, offset, needed/present or reason).
//!
//! # Captures
//!
//! [`Trace::write_pcap`] writes frames only (calls and notes have no place in a pcap) as
//! LINKTYPE_ETHERNET with nanosecond-resolution timestamps equal to scenario time.
//! [`Trace::read_capture`] reads pcap and pcapng of every link type [`crate::pcap`] reads
//! (Ethernet, Linux cooked SLL and SLL2, raw IP, loopback). Both go through
//! [`crate::pcap`], netconform's one pcap module.

mod capture;
mod render;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

pub use render::HostNames;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sent by the harness to the stack under test (`>`).
    Sent,
    /// Received by the harness from the stack under test (`<`).
    Received,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A frame crossed the wire.
    Frame {
        /// Its direction.
        direction: Direction,
        /// Its bytes, as sent or captured.
        bytes: Vec<u8>,
        /// The port of the target it went into or came out of, for a target with several
        /// ports (a switch); `None` for a host stack's one link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<usize>,
    },
    /// An application call on the stack under test.
    Call {
        /// The call, e.g. `connect(dut:80)`.
        text: String,
        /// What it returned.
        result: String,
    },
    /// A free-form note.
    Note(String),
}

/// One event at one time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceEvent {
    /// When, in scenario time.
    pub at: Instant,
    /// What.
    pub kind: EventKind,
}

/// The ordered record of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Trace {
    /// Events in the order they happened.
    pub events: Vec<TraceEvent>,
}

/// Reading or showing a trace failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The capture could not be read (not a capture, damaged, an unsupported link type, the
    /// file missing) or written.
    #[error(transparent)]
    Capture(#[from] crate::pcap::CaptureError),
    /// JSON encoding failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace::default()
    }

    /// Records a frame.
    pub fn push_frame(&mut self, at: Instant, direction: Direction, bytes: Vec<u8>) {
        self.events.push(TraceEvent {
            at,
            kind: EventKind::Frame {
                direction,
                bytes,
                port: None,
            },
        });
    }

    /// Records a frame that went into, or came out of, port `port` of a target with several
    /// ports.
    pub fn push_port_frame(
        &mut self,
        at: Instant,
        port: usize,
        direction: Direction,
        bytes: Vec<u8>,
    ) {
        self.events.push(TraceEvent {
            at,
            kind: EventKind::Frame {
                direction,
                bytes,
                port: Some(port),
            },
        });
    }

    /// Records an application call and its result.
    pub fn push_call(&mut self, at: Instant, text: impl Into<String>, result: impl Into<String>) {
        self.events.push(TraceEvent {
            at,
            kind: EventKind::Call {
                text: text.into(),
                result: result.into(),
            },
        });
    }

    /// Records a note.
    pub fn push_note(&mut self, at: Instant, note: impl Into<String>) {
        self.events.push(TraceEvent {
            at,
            kind: EventKind::Note(note.into()),
        });
    }

    /// The frames, with their times and directions.
    pub fn frames(&self) -> impl Iterator<Item = (Instant, Direction, &[u8])> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Frame {
                direction, bytes, ..
            } => Some((e.at, *direction, bytes.as_slice())),
            _ => None,
        })
    }
}

/// What `netconform trace show FILE [--json]` prints: the capture rendered as normalised text
/// (hosts named `host1`, `host2`, ... in order of appearance), or as decoded JSON.
pub fn show(path: &Path, json: bool) -> Result<String, TraceError> {
    let trace = Trace::read_capture(path)?;
    let names = HostNames::new();
    if json {
        Ok(serde_json::to_string_pretty(
            &trace.to_json_decoded(&names),
        )?)
    } else {
        Ok(trace.render(&names))
    }
}

#[cfg(test)]
mod tests;
