//! Which reading of the standards a model follows: the text as written, or a named
//! implementation's documented deviations from it.
//!
//! One type for every model: a [`Profile<D>`] is a [`ProfileName`] and the set of the model's
//! deviations `D` that apply. Each model's deviation enum implements [`Deviation`]: its name,
//! the RFC or IEEE section it departs from, one line saying what the implementation does
//! instead, and which deviations Linux has. Every suite takes its model's profile from the
//! session's one name (`certify --profile`, a scenario file's `profile`) the same way,
//! [`Deviation::profile`]: `TcpDeviation::profile(session.profile())`. The RFC profile has
//! no deviation; a model without deviations (its enum has no variant) still takes a profile,
//! an empty one under either name.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which reading of the RFCs (and IEEE 802.1D) the models follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProfileName {
    /// The RFC and IEEE texts as written.
    Rfc,
    /// Linux 6.x: the text plus each documented Linux deviation.
    Linux,
}

/// One place where an implementation departs from the text a model follows: one variant of
/// a model's deviation enum, a switch the model tests with [`Profile::has`].
pub trait Deviation:
    Copy + Ord + Hash + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The model, as reports name it (`tcp`, `tcp timers`, `route`).
    const MODEL: &'static str;
    /// Every deviation the model knows, in a stable order.
    const ALL: &'static [Self];
    /// The deviations Linux 6.x has (what [`ProfileName::Linux`] switches on).
    const LINUX: &'static [Self];

    /// The RFC or IEEE section it departs from (`RFC 9293 §3.10.7.2`).
    fn section(self) -> &'static str;

    /// One line: what the implementation does instead of what the section says.
    fn instead(self) -> &'static str;

    /// Its name (the variant's: `LocalTableFirst`).
    fn name(self) -> String {
        format!("{self:?}")
    }

    /// The model's profile that `name` stands for: no deviation for the RFC text, every
    /// deviation of [`Deviation::LINUX`] for Linux. The one way a suite gets its model's
    /// profile from a session.
    fn profile(name: ProfileName) -> Profile<Self> {
        let deviations = match name {
            ProfileName::Rfc => BTreeSet::new(),
            ProfileName::Linux => Self::LINUX.iter().copied().collect(),
        };
        Profile { name, deviations }
    }
}

/// What a model follows: a reading of the standards ([`ProfileName`]) and the model's
/// deviations `D` that apply under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound = "D: Deviation")]
pub struct Profile<D: Deviation> {
    name: ProfileName,
    deviations: BTreeSet<D>,
}

impl<D: Deviation> Profile<D> {
    /// The text as written: no deviation ([`Deviation::profile`] of [`ProfileName::Rfc`]).
    pub fn rfc() -> Self {
        D::profile(ProfileName::Rfc)
    }

    /// Linux 6.x ([`Deviation::profile`] of [`ProfileName::Linux`]).
    pub fn linux() -> Self {
        D::profile(ProfileName::Linux)
    }

    /// The same profile with `d` switched on as well (a model test or a fuzz target that
    /// explores other sets; the name stays that of the reading it started from).
    #[must_use]
    pub fn with(mut self, d: D) -> Self {
        self.deviations.insert(d);
        self
    }

    /// The same profile with `d` switched off.
    #[must_use]
    pub fn without(mut self, d: D) -> Self {
        self.deviations.remove(&d);
        self
    }

    /// The reading it stands for.
    pub fn name(&self) -> ProfileName {
        self.name
    }

    /// Whether `d` applies.
    pub fn has(&self, d: D) -> bool {
        self.deviations.contains(&d)
    }

    /// The deviations that apply, in the model's order.
    pub fn deviations(&self) -> impl Iterator<Item = D> + '_ {
        self.deviations.iter().copied()
    }

    /// True when no deviation applies (the text as written).
    pub fn is_empty(&self) -> bool {
        self.deviations.is_empty()
    }

    /// One line per deviation that applies, as reports print them.
    pub fn lines(&self) -> Vec<DeviationLine> {
        self.deviations().map(DeviationLine::of).collect()
    }
}

/// One deviation as reports print it: `model: Name (section): what it does instead`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DeviationLine {
    /// The model ([`Deviation::MODEL`]).
    pub model: &'static str,
    /// The deviation's name.
    pub name: String,
    /// The section it departs from.
    pub section: &'static str,
    /// What the implementation does instead.
    pub instead: &'static str,
}

impl DeviationLine {
    /// The line of `d`.
    pub fn of<D: Deviation>(d: D) -> DeviationLine {
        DeviationLine {
            model: D::MODEL,
            name: d.name(),
            section: d.section(),
            instead: d.instead(),
        }
    }
}

impl fmt::Display for DeviationLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}): {}",
            self.model, self.name, self.section, self.instead
        )
    }
}

#[cfg(test)]
mod tests;
