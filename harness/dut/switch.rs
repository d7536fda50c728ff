//! What a switch under test has beyond a host stack: several ports (see
//! [`Link::ports`](super::Link::ports)), a filtering database to read
//! ([`StateQuery::Fdb`](super::StateQuery::Fdb)) and controls
//! ([`Control::FlushFdb`](super::Control::FlushFdb),
//! [`Control::SetAgeing`](super::Control::SetAgeing)).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::MacAddr;

/// One learned entry of a switch's filtering database, by port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FdbEntry {
    /// The station's address.
    pub mac: MacAddr,
    /// The port it was learned on (0-based, as the target numbers its ports).
    pub port: usize,
    /// Whether it is fresh or aged.
    pub state: FdbState,
}

/// The state of a filtering database entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FdbState {
    /// Learned and younger than the ageing time (Linux: REACHABLE).
    Fresh,
    /// Older than the ageing time, not yet removed; a switch may still forward to it
    /// (Linux: STALE).
    Aged,
    /// Configured, never ages (Linux: NOARP).
    Static,
}

impl fmt::Display for FdbEntry {
    /// `02:6e:63:01:00:01 p0 fresh`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} p{} {}", self.mac, self.port, self.state)
    }
}

impl fmt::Display for FdbState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FdbState::Fresh => "fresh",
            FdbState::Aged => "aged",
            FdbState::Static => "static",
        })
    }
}
