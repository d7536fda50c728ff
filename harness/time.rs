//! Time as the harness's own value: microseconds since the start of a scenario.
//!
//! Models and traces never read a clock; the code that touches the operating system
//! (`sandbox`, `target`) turns `std::time::Instant` into an [`Instant`] relative to the
//! start of the run, so the same behaviour always renders the same text.

use std::fmt;
use std::ops::{Add, Sub};

/// A point in scenario time, in microseconds since the scenario started.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Instant {
    micros: u64,
}

/// A span of scenario time, in microseconds.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The start of the scenario.
    pub const ZERO: Instant = Instant { micros: 0 };

    /// An instant `micros` microseconds after the start.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the start.
    pub const fn from_millis(millis: u64) -> Self {
        Instant {
            micros: millis * 1000,
        }
    }

    /// Microseconds since the start.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the start (rounded down).
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// The span from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };

    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Duration { micros }
    }

    /// A span of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration {
            micros: millis * 1000,
        }
    }

    /// The span in microseconds.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// The span in milliseconds (rounded down).
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Duration {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_micros(d.micros)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }
}

impl Add<Duration> for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Instant {
    /// Milliseconds with three decimals, fixed width: `   12.345`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>5}.{:03}", self.micros / 1000, self.micros % 1000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03} ms", self.micros / 1000, self.micros % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fixed_width_milliseconds() {
        assert_eq!(Instant::from_micros(12_345).to_string(), "   12.345");
        assert_eq!(Instant::from_micros(7).to_string(), "    0.007");
    }

    #[test]
    fn since_saturates() {
        let a = Instant::from_millis(5);
        let b = Instant::from_millis(9);
        assert_eq!(b - a, Duration::from_millis(4));
        assert_eq!(a - b, Duration::ZERO);
    }
}
