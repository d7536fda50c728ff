//! What a check expects a frame to be, and the field-by-field comparison.
//!
//! Expectations compare only what the clause pins down. Fields the profile leaves open
//! (the advertised window, the IP ID, timestamp values, the order of TCP options) are not
//! compared; every difference is reported as `field: expected X, observed Y` so a report
//! can show it without the reader decoding hex.

use crate::wire::{Frame, ParseError};

/// A frame the stack sent, with its parse result (a malformed frame is an observation too).
#[derive(Debug, Clone)]
pub struct Observed {
    /// The bytes as received.
    pub bytes: Vec<u8>,
    /// The parsed frame, or what is wrong with it.
    pub parsed: Result<Frame, ParseError>,
}

impl Observed {
    /// One line for messages.
    pub fn summary(&self) -> String {
        match &self.parsed {
            Ok(frame) => frame.summary(),
            Err(e) => format!("malformed frame ({} bytes): {e}", self.bytes.len()),
        }
    }
}

/// Something a frame from the stack is compared with.
pub trait Expectation {
    /// What is expected, in a few words (`SYN-ACK`, `ARP request for peer`).
    fn describe(&self) -> String;
    /// The frame if it matches, or one entry per difference.
    fn compare(&self, observed: &Observed) -> Result<Frame, Vec<String>>;
}

/// The parsed frame of `observed`, or the one difference `frame: malformed (...)`.
pub fn parsed(observed: &Observed) -> Result<&Frame, Vec<String>> {
    observed
        .parsed
        .as_ref()
        .map_err(|e| vec![format!("frame: malformed ({e})")])
}

/// Notes `name: expected X, observed Y` in `diffs` when the two differ: the one shape of
/// a difference in every report (`name` is dotted, layer first: `ip.ttl`, `tcp.flags`).
pub fn field<T: PartialEq + std::fmt::Display>(
    diffs: &mut Vec<String>,
    name: &str,
    expected: T,
    observed: T,
) {
    if expected != observed {
        diffs.push(format!("{name}: expected {expected}, observed {observed}"));
    }
}
