//! The one list of legitimate differences between the harness's parsers and the reference
//! parsers they are fuzzed against. Each entry says who differs and why; a differential
//! target may only excuse a disagreement by naming an entry here (and records which entries
//! it used, so a test can show that each one is still needed). Anything else is a finding.

/// A known, legitimate difference between two parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Difference {
    /// Placeholder removed once the first real entry lands.
    _Reserved,
}

impl Difference {
    /// Every entry, in declaration order.
    pub const ALL: &'static [Difference] = &[Difference::_Reserved];

    /// A short stable name (used in summaries and tests).
    pub fn name(self) -> &'static str {
        match self {
            Difference::_Reserved => "reserved",
        }
    }

    /// Which parsers differ.
    pub fn between(self) -> &'static str {
        match self {
            Difference::_Reserved => "",
        }
    }

    /// Why the difference is legitimate.
    pub fn reason(self) -> &'static str {
        match self {
            Difference::_Reserved => "",
        }
    }
}

/// The set of known differences one input ran into (a bit per [`Difference`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowed(u64);

impl Allowed {
    /// No difference applied.
    pub const NONE: Allowed = Allowed(0);

    /// This set plus `d`.
    #[must_use]
    pub fn with(self, d: Difference) -> Allowed {
        Allowed(self.0 | 1 << (d as u8))
    }

    /// Both sets.
    #[must_use]
    pub fn union(self, other: Allowed) -> Allowed {
        Allowed(self.0 | other.0)
    }

    /// Whether `d` applied.
    pub fn contains(self, d: Difference) -> bool {
        self.0 & 1 << (d as u8) != 0
    }

    /// The differences that applied.
    pub fn iter(self) -> impl Iterator<Item = Difference> {
        Difference::ALL
            .iter()
            .copied()
            .filter(move |d| self.contains(*d))
    }
}
