//! What a switch under test has beyond a host stack: several ports (see
//! [`Target::ports`](super::Target::ports)), a filtering database to read
//! ([`StateQuery::Fdb`](super::StateQuery::Fdb)) and controls ([`SwitchControl`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Duration;
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

/// A control operation on a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SwitchControl {
    /// Remove every learned entry from the filtering database.
    FlushFdb,
    /// Set the ageing time.
    SetAgeing(Duration),
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

impl fmt::Display for SwitchControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchControl::FlushFdb => f.write_str("flush fdb"),
            SwitchControl::SetAgeing(d) => write!(f, "set ageing time {d}"),
        }
    }
}
