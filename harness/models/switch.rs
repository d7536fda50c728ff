//! A learning switch: an IEEE 802.1D MAC Bridge without spanning tree, as a pure model.
//!
//! Read first: IEEE Std 802.1D-2004 §7.7 (the Forwarding Process: active topology
//! enforcement in §7.7.1, frame filtering in §7.7.2), §7.8 (the Learning Process), §7.9.2
//! (Dynamic Filtering Entries and the Ageing Time) and §7.12.6 with Table 7-10 (the reserved
//! group addresses). IEEE Std 802.1Q-2018 repeats the same rules in §8.6, §8.7 and §8.8.
//!
//! # Call order
//!
//! [`Switch::receive`] takes one frame header, the port it came in on and the time, and
//! answers where the frame goes ([`Forwarding`]) and what the filtering database learned
//! ([`Switch::receive_within`] when the harness only knows the time as an interval: the
//! start and the end of its `send`).
//! [`Switch::fdb`] lists the entries at a time; [`Switch::next_ageing`] says when the next
//! entry ages out. The model never reads a clock: time is an input, and an entry learned
//! (or refreshed) at `t` is present for every `now < t + ageing` and gone from
//! `t + ageing` on (Linux: `has_expired`, `time_before_eq(updated + hold_time, jiffies)`).
//!
//! # The tolerance window
//!
//! A real switch ages entries on its own clock and removes them some milliseconds after
//! they expired (Linux: the `br_fdb_cleanup` work, at least 10 ms apart; an expired entry
//! that is not collected yet still forwards and is reported STALE). So the model carries a
//! **tolerance**: within `tolerance` either side of an entry's ageing instant, the entry is
//! [`Presence::Uncertain`] in [`Switch::fdb`], and a frame to it may go either way
//! ([`Forwarding::alternative`]). A checker must not compare inside that window; outside it,
//! the model is exact. Learning is never uncertain: a frame from a station puts it on the
//! ingress port whether or not its old entry had aged out.
//!
//! # Order of learning and forwarding
//!
//! The model learns the source before it looks up the destination (as Linux does in
//! `br_handle_frame_finish`). 802.1D runs the two processes side by side without ordering
//! them; the order only shows for a frame whose source and destination are the same
//! station, which then counts as on the ingress port and goes nowhere.
//!
//! # What is not modelled
//!
//! VLANs (one filtering database, untagged frames), spanning tree (every port forwards),
//! static entries, the database's capacity, multicast snooping (groups are flooded, the
//! "Forward All Groups" default of §7.9.4), and the switch's own addresses (frames to or
//! from them). Nothing here panics: a port number out of range is a [`SwitchError`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::models::profile::{Deviation, Profile};
use crate::time::{Duration, Instant};
use crate::wire::MacAddr;

/// A port of the switch, numbered from 0.
pub type Port = usize;

/// One place where a switch implementation departs from the text of 802.1D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SwitchDeviation {
    /// 802.1D §7.8 b) only forbids *learning* a source address that is not a specific
    /// station (a group address); the frame itself is relayed like any other. Linux drops a
    /// frame whose source is a group address or all zeros before learning or forwarding it
    /// (`br_handle_frame`: `if (!is_valid_ether_addr(eth_hdr(skb)->h_source)) goto drop`).
    InvalidSourceDropped,
    /// 802.1D §7.12.6: frames to the Table 7-10 addresses (01-80-C2-00-00-00 to -0F) are
    /// never relayed. With STP off, Linux floods frames to the Bridge Group Address
    /// 01-80-C2-00-00-00 ("If STP is turned off, then must forward to keep loop
    /// detection", `br_handle_frame`); the other reserved addresses stay filtered while
    /// `group_fwd_mask` is 0.
    BridgeGroupAddressFloodedWithoutStp,
    /// 802.1D §7.8 learns from every frame received on a port in a learning state, whatever
    /// its destination. Linux drops frames to 01-80-C2-00-00-01 (MAC Control, PAUSE) before
    /// learning their source (`br_handle_frame`, `case 0x01: goto drop`); frames to the
    /// other reserved addresses are learned from (`__br_handle_local_finish`).
    MacControlAddressNotLearned,
}

impl Deviation for SwitchDeviation {
    const MODEL: &'static str = "switch";
    const ALL: &'static [SwitchDeviation] = &[
        SwitchDeviation::InvalidSourceDropped,
        SwitchDeviation::BridgeGroupAddressFloodedWithoutStp,
        SwitchDeviation::MacControlAddressNotLearned,
    ];
    /// The Linux bridge (6.x) with STP off, `group_fwd_mask` 0 and multicast snooping off:
    /// every deviation.
    const LINUX: &'static [SwitchDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            SwitchDeviation::InvalidSourceDropped
            | SwitchDeviation::MacControlAddressNotLearned => "IEEE 802.1D §7.8",
            SwitchDeviation::BridgeGroupAddressFloodedWithoutStp => "IEEE 802.1D §7.12.6",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            SwitchDeviation::InvalidSourceDropped => {
                "drops a frame whose source is a group address or all zeros"
            }
            SwitchDeviation::BridgeGroupAddressFloodedWithoutStp => {
                "floods frames to 01-80-C2-00-00-00 while STP is off"
            }
            SwitchDeviation::MacControlAddressNotLearned => {
                "learns nothing from frames to 01-80-C2-00-00-01 (MAC Control)"
            }
        }
    }
}

/// Which reading of 802.1D the model follows: the text, or a switch's documented deviations
/// (the one profile type, [`Profile`], over [`SwitchDeviation`]).
pub type SwitchProfile = Profile<SwitchDeviation>;

/// The addresses of a frame, which is all a switch looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameHeader {
    /// Source MAC address.
    pub src: MacAddr,
    /// Destination MAC address.
    pub dst: MacAddr,
}

/// The reserved group addresses of 802.1D Table 7-10: 01-80-C2-00-00-00 to 01-80-C2-00-00-0F.
pub fn is_reserved(mac: MacAddr) -> bool {
    mac.0[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && mac.0[5] <= 0x0f
}

/// The Bridge Group Address, 01-80-C2-00-00-00 (spanning tree BPDUs).
pub const BRIDGE_GROUP_ADDRESS: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0, 0, 0]);
/// The MAC Control address, 01-80-C2-00-00-01 (802.3 PAUSE).
pub const MAC_CONTROL_ADDRESS: MacAddr = MacAddr([0x01, 0x80, 0xc2, 0, 0, 1]);

/// Why a frame goes where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// The destination is a station learned on another port: forwarded to that port only.
    Forwarded {
        /// The port the destination was learned on.
        port: Port,
    },
    /// The destination is a station learned on the ingress port: filtered (a frame never
    /// goes back out of the port it came in on, §7.7.1).
    FilteredSamePort,
    /// The destination is an individual address not in the filtering database: flooded to
    /// every port but the ingress port.
    FloodedUnknown,
    /// Broadcast, or a group address with no filtering entry: flooded to every port but the
    /// ingress port.
    FloodedGroup,
    /// A reserved address of Table 7-10: not relayed (§7.12.6).
    Reserved,
    /// Dropped on arrival, neither learned from nor relayed (a Linux deviation).
    Dropped(DropReason),
}

/// Why a frame was dropped on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DropReason {
    /// The source is a group address or all zeros ([`SwitchDeviation::InvalidSourceDropped`]).
    InvalidSource,
    /// The destination is the MAC Control address
    /// ([`SwitchDeviation::MacControlAddressNotLearned`]).
    MacControl,
}

/// What the filtering database did with the frame's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Learning {
    /// A new entry: the source on the ingress port.
    Created,
    /// The entry was already on the ingress port; its age starts again.
    Refreshed,
    /// The entry was on another port; it now points at the ingress port.
    Moved {
        /// The port it was on.
        from: Port,
    },
    /// The source is a group address: never learned (§7.8 b).
    GroupSource,
    /// The frame was dropped before learning.
    Dropped,
}

/// Where one frame goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarding {
    /// Why.
    pub decision: Decision,
    /// The ports the frame leaves by (never the ingress port).
    pub egress: BTreeSet<Port>,
    /// When the frame arrives within the tolerance of its destination entry's ageing
    /// instant: the egress set the other side of that instant gives. A checker accepts
    /// either set then.
    pub alternative: Option<BTreeSet<Port>>,
    /// What happened to the source's entry.
    pub learning: Learning,
}

impl Forwarding {
    /// True when `observed` is what the model predicts (or, inside the tolerance window, its
    /// alternative).
    pub fn accepts(&self, observed: &BTreeSet<Port>) -> bool {
        *observed == self.egress || self.alternative.as_ref() == Some(observed)
    }
}

/// Whether an entry is certainly there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Presence {
    /// Present, and more than the tolerance away from its ageing instant.
    Present,
    /// Within the tolerance of its ageing instant: present or gone.
    Uncertain,
}

/// One entry of the filtering database, as [`Switch::fdb`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FdbView {
    /// The station.
    pub mac: MacAddr,
    /// The port it was learned on.
    pub port: Port,
    /// When it ages out unless refreshed.
    pub ages_out: Instant,
    /// Whether it is certainly there.
    pub presence: Presence,
}

/// Bad input to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    /// The port number is not one of the switch's ports.
    #[error("port {port} does not exist (the switch has {ports} ports)")]
    NoSuchPort {
        /// The port asked for.
        port: Port,
        /// How many ports the switch has.
        ports: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    port: Port,
    updated: Instant,
}

/// The model of a learning switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    ports: usize,
    ageing: Duration,
    tolerance: Duration,
    profile: SwitchProfile,
    entries: BTreeMap<MacAddr, Entry>,
}

impl Switch {
    /// A switch with `ports` ports and an empty filtering database whose entries age out
    /// after `ageing` (802.1D's Ageing Time; an ageing time of zero learns nothing that
    /// lasts, which makes the switch a hub). 802.1D as written, no tolerance.
    pub fn new(ports: usize, ageing: Duration) -> Self {
        Switch {
            ports,
            ageing,
            tolerance: Duration::ZERO,
            profile: SwitchProfile::rfc(),
            entries: BTreeMap::new(),
        }
    }

    /// The same switch following `profile`.
    pub fn with_profile(mut self, profile: SwitchProfile) -> Self {
        self.profile = profile;
        self
    }

    /// The same switch with a tolerance window around ageing instants (see the module doc).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How many ports.
    pub fn ports(&self) -> usize {
        self.ports
    }

    /// The ageing time.
    pub fn ageing(&self) -> Duration {
        self.ageing
    }

    /// The tolerance window.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The profile.
    pub fn profile(&self) -> &SwitchProfile {
        &self.profile
    }

    fn ages_out(&self, e: &Entry) -> Instant {
        e.updated + self.ageing
    }

    /// True when `instant` is less than the tolerance away from the interval
    /// `[earliest, latest]` (never with a zero tolerance and a single instant: the model is
    /// then exact).
    fn near(&self, earliest: Instant, latest: Instant, instant: Instant) -> bool {
        instant + self.tolerance > earliest && instant < latest + self.tolerance
    }

    /// The port `mac` is learned on at `now`, if its entry has not aged out.
    pub fn lookup(&self, now: Instant, mac: MacAddr) -> Option<Port> {
        self.entries
            .get(&mac)
            .filter(|e| now < self.ages_out(e))
            .map(|e| e.port)
    }

    fn all_but(&self, ingress: Port) -> BTreeSet<Port> {
        (0..self.ports).filter(|p| *p != ingress).collect()
    }

    /// One frame arrives on `ingress` at `now`: learn its source, then decide where it goes.
    pub fn receive(
        &mut self,
        now: Instant,
        ingress: Port,
        header: &FrameHeader,
    ) -> Result<Forwarding, SwitchError> {
        self.receive_within(now, now, ingress, header)
    }

    /// One frame arrives on `ingress` at some instant between `earliest` and `latest` (all a
    /// harness knows when sending takes time): the model learns at `earliest` and decides at
    /// `earliest`, and when the destination's ageing instant is within the tolerance of that
    /// interval the other outcome is [`Forwarding::alternative`].
    pub fn receive_within(
        &mut self,
        earliest: Instant,
        latest: Instant,
        ingress: Port,
        header: &FrameHeader,
    ) -> Result<Forwarding, SwitchError> {
        let now = earliest;
        let latest = latest.max(earliest);
        if ingress >= self.ports {
            return Err(SwitchError::NoSuchPort {
                port: ingress,
                ports: self.ports,
            });
        }
        self.collect(now);
        let dropped = |reason| Forwarding {
            decision: Decision::Dropped(reason),
            egress: BTreeSet::new(),
            alternative: None,
            learning: Learning::Dropped,
        };
        let invalid_source = header.src.is_multicast() || header.src == MacAddr::ZERO;
        if invalid_source && self.profile.has(SwitchDeviation::InvalidSourceDropped) {
            return Ok(dropped(DropReason::InvalidSource));
        }
        if header.dst == MAC_CONTROL_ADDRESS
            && self
                .profile
                .has(SwitchDeviation::MacControlAddressNotLearned)
        {
            return Ok(dropped(DropReason::MacControl));
        }
        let learning = self.learn(now, ingress, header.src);
        let flood = self.all_but(ingress);
        let (decision, egress, alternative) = if is_reserved(header.dst) {
            if header.dst == BRIDGE_GROUP_ADDRESS
                && self
                    .profile
                    .has(SwitchDeviation::BridgeGroupAddressFloodedWithoutStp)
            {
                (Decision::FloodedGroup, flood, None)
            } else {
                (Decision::Reserved, BTreeSet::new(), None)
            }
        } else if header.dst.is_multicast() {
            (Decision::FloodedGroup, flood, None)
        } else {
            let entry = self.entries.get(&header.dst).copied();
            let present = entry.filter(|e| now < self.ages_out(e));
            let unicast = |port: Port| -> (Decision, BTreeSet<Port>) {
                if port == ingress {
                    (Decision::FilteredSamePort, BTreeSet::new())
                } else {
                    (Decision::Forwarded { port }, BTreeSet::from([port]))
                }
            };
            let (decision, egress) = match present {
                Some(e) => unicast(e.port),
                None => (Decision::FloodedUnknown, flood.clone()),
            };
            // Near the ageing instant, the other side of it is as likely.
            let alternative = entry
                .filter(|e| self.near(now, latest, self.ages_out(e)))
                .map(|e| match present {
                    Some(_) => flood.clone(),
                    None => unicast(e.port).1,
                })
                .filter(|alt| *alt != egress);
            (decision, egress, alternative)
        };
        Ok(Forwarding {
            decision,
            egress,
            alternative,
            learning,
        })
    }

    /// The Learning Process (§7.8): a specific station's address is put on the ingress port.
    fn learn(&mut self, now: Instant, ingress: Port, src: MacAddr) -> Learning {
        if src.is_multicast() {
            return Learning::GroupSource;
        }
        let previous = self
            .entries
            .get(&src)
            .filter(|e| now < self.ages_out(e))
            .map(|e| e.port);
        self.entries.insert(
            src,
            Entry {
                port: ingress,
                updated: now,
            },
        );
        match previous {
            None => Learning::Created,
            Some(p) if p == ingress => Learning::Refreshed,
            Some(from) => Learning::Moved { from },
        }
    }

    /// Forgets entries that are past their ageing instant by more than the tolerance (they
    /// can no longer be reported as uncertain).
    fn collect(&mut self, now: Instant) {
        let (ageing, tolerance) = (self.ageing, self.tolerance);
        self.entries
            .retain(|_, e| now <= e.updated + ageing + tolerance);
    }

    /// The filtering database at `now`: every entry that is present or uncertain, by MAC.
    pub fn fdb(&self, now: Instant) -> Vec<FdbView> {
        self.fdb_within(now, now)
    }

    /// The filtering database read at some instant between `earliest` and `latest`: an
    /// entry whose ageing instant is within the tolerance of that interval is uncertain.
    pub fn fdb_within(&self, earliest: Instant, latest: Instant) -> Vec<FdbView> {
        let latest = latest.max(earliest);
        self.entries
            .iter()
            .filter_map(|(mac, e)| {
                let ages_out = self.ages_out(e);
                let presence = if self.near(earliest, latest, ages_out) {
                    Presence::Uncertain
                } else if earliest < ages_out {
                    Presence::Present
                } else {
                    return None;
                };
                Some(FdbView {
                    mac: *mac,
                    port: e.port,
                    ages_out,
                    presence,
                })
            })
            .collect()
    }

    /// The earliest ageing instant after `now` (when time must next be fed in for the
    /// database to change by itself), if any entry is present.
    pub fn next_ageing(&self, now: Instant) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| self.ages_out(e))
            .filter(|t| *t > now)
            .min()
    }
}

impl fmt::Display for Decision {
    /// Why, in a few words: `flooded: destination unknown`, `forwarded: destination on p1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Forwarded { port } => write!(f, "forwarded: destination on p{port}"),
            Decision::FilteredSamePort => f.write_str("filtered: destination on the ingress port"),
            Decision::FloodedUnknown => f.write_str("flooded: destination unknown"),
            Decision::FloodedGroup => f.write_str("flooded: group destination"),
            Decision::Reserved => f.write_str("not relayed: reserved group address"),
            Decision::Dropped(DropReason::InvalidSource) => {
                f.write_str("dropped: the source is not a station address")
            }
            Decision::Dropped(DropReason::MacControl) => {
                f.write_str("dropped: MAC Control address")
            }
        }
    }
}

#[cfg(test)]
mod tests;
