//! `model_switch`: frames into a [`Switch`], against a reference filtering database written
//! from the module's documentation.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};

use crate::fuzz::Outcome;
use crate::models::switch::{
    BRIDGE_GROUP_ADDRESS, Decision, DropReason, FdbView, Forwarding, Learning, MAC_CONTROL_ADDRESS,
    Port, Presence, Switch, SwitchDeviation, SwitchProfile, is_reserved,
};
use crate::time::{Duration, Instant};
use crate::wire::MacAddr;

const T: &str = "model_switch";

/// The addresses frames carry: five stations, broadcast, an IPv4 multicast group, all
/// zeros, and three reserved group addresses.
const MACS: [MacAddr; 11] = [
    MacAddr([2, 0, 0, 0, 0, 1]),
    MacAddr([2, 0, 0, 0, 0, 2]),
    MacAddr([2, 0, 0, 0, 0, 3]),
    MacAddr([2, 0, 0, 0, 0, 4]),
    MacAddr([2, 0, 0, 0, 0, 5]),
    MacAddr::BROADCAST,
    MacAddr([1, 0, 0x5e, 0, 0, 1]),
    MacAddr::ZERO,
    BRIDGE_GROUP_ADDRESS,
    MAC_CONTROL_ADDRESS,
    MacAddr([1, 0x80, 0xc2, 0, 0, 0x0e]),
];

#[derive(Debug, Arbitrary)]
struct Setup {
    ports: u8,
    ageing: u8,
    tolerance: u8,
    linux: bool,
}

#[derive(Debug, Arbitrary)]
enum Event {
    Frame {
        /// Milliseconds since the previous event.
        dt: u8,
        port: u8,
        src: u8,
        dst: u8,
    },
    /// Time passes and the database is read.
    Read { dt: u16 },
}

fn mac(i: u8) -> MacAddr {
    MACS[usize::from(i) % MACS.len()]
}

/// The reference: where each station was last seen, and when.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reference {
    pub(crate) ports: usize,
    pub(crate) ageing: Duration,
    pub(crate) tolerance: Duration,
    pub(crate) linux: bool,
    pub(crate) seen: BTreeMap<MacAddr, (Port, Instant)>,
}

impl Reference {
    fn present(&self, now: Instant, mac: MacAddr) -> Option<Port> {
        self.seen
            .get(&mac)
            .filter(|(_, t)| now < *t + self.ageing)
            .map(|(p, _)| *p)
    }

    /// What the module doc says a frame does: (egress, learning, decision).
    pub(crate) fn frame(
        &mut self,
        now: Instant,
        ingress: Port,
        src: MacAddr,
        dst: MacAddr,
    ) -> (BTreeSet<Port>, Learning, Decision) {
        let flood: BTreeSet<Port> = (0..self.ports).filter(|p| *p != ingress).collect();
        if self.linux && (src.is_multicast() || src == MacAddr::ZERO) {
            let d = Decision::Dropped(DropReason::InvalidSource);
            return (BTreeSet::new(), Learning::Dropped, d);
        }
        if self.linux && dst == MAC_CONTROL_ADDRESS {
            let d = Decision::Dropped(DropReason::MacControl);
            return (BTreeSet::new(), Learning::Dropped, d);
        }
        let learning = if src.is_multicast() {
            Learning::GroupSource
        } else {
            let before = self.present(now, src);
            self.seen.insert(src, (ingress, now));
            match before {
                None => Learning::Created,
                Some(p) if p == ingress => Learning::Refreshed,
                Some(from) => Learning::Moved { from },
            }
        };
        let (egress, decision) = if is_reserved(dst) {
            if dst == BRIDGE_GROUP_ADDRESS && self.linux {
                (flood, Decision::FloodedGroup)
            } else {
                (BTreeSet::new(), Decision::Reserved)
            }
        } else if dst.is_multicast() {
            (flood, Decision::FloodedGroup)
        } else {
            match self.present(now, dst) {
                Some(p) if p == ingress => (BTreeSet::new(), Decision::FilteredSamePort),
                Some(port) => (BTreeSet::from([port]), Decision::Forwarded { port }),
                None => (flood, Decision::FloodedUnknown),
            }
        };
        (egress, learning, decision)
    }

    /// The database the module doc describes at `now` (tolerance window included).
    pub(crate) fn fdb(&self, now: Instant) -> Vec<FdbView> {
        self.seen
            .iter()
            .filter_map(|(mac, (port, t))| {
                let ages_out = *t + self.ageing;
                let near = ages_out + self.tolerance > now && ages_out < now + self.tolerance;
                let presence = if near {
                    Presence::Uncertain
                } else if now < ages_out {
                    Presence::Present
                } else {
                    return None;
                };
                Some(FdbView {
                    mac: *mac,
                    port: *port,
                    ages_out,
                    presence,
                })
            })
            .collect()
    }
}

/// Checks one frame's forwarding against the reference's answer.
pub(crate) fn check_frame(
    ingress: Port,
    tolerance: Duration,
    want: &(BTreeSet<Port>, Learning, Decision),
    got: &Forwarding,
) -> Result<(), String> {
    if got.egress.contains(&ingress)
        || got
            .alternative
            .as_ref()
            .is_some_and(|a| a.contains(&ingress))
    {
        return Err(format!("{got:?}: back out of the ingress port {ingress}"));
    }
    if (&got.egress, got.learning, got.decision) != (&want.0, want.1, want.2) {
        return Err(format!("{got:?}, the reference {want:?}"));
    }
    if let Some(alt) = &got.alternative
        && (tolerance == Duration::ZERO || *alt == got.egress)
    {
        return Err(format!(
            "{got:?}: an alternative with tolerance {} ms",
            tolerance.total_millis()
        ));
    }
    Ok(())
}

/// Checks the database at `now` against the reference.
pub(crate) fn check_fdb(sw: &Switch, reference: &Reference, now: Instant) -> Result<(), String> {
    let got = sw.fdb(now);
    if let Some(e) = got.iter().find(|e| e.mac.is_multicast()) {
        return Err(format!("a group address in the database: {e:?}"));
    }
    let want = reference.fdb(now);
    if got != want {
        return Err(format!(
            "fdb at {} ms: {got:?}, the reference {want:?}",
            now.total_millis()
        ));
    }
    for mac in MACS {
        let (l, r) = (sw.lookup(now, mac), reference.present(now, mac));
        if l != r {
            return Err(format!("lookup {mac} = {l:?}, the reference {r:?}"));
        }
    }
    let next = sw.next_ageing(now);
    let want_next = reference
        .seen
        .values()
        .map(|(_, t)| *t + reference.ageing)
        .filter(|t| *t > now)
        .min();
    if next != want_next {
        return Err(format!(
            "next_ageing = {next:?}, the reference {want_next:?}"
        ));
    }
    Ok(())
}

/// One entry of the transcript, for the determinism check.
#[derive(Debug, PartialEq)]
enum Step {
    Refused(crate::models::switch::SwitchError),
    Forwarded(crate::models::switch::Forwarding),
    Fdb(Vec<crate::models::switch::FdbView>),
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Step>, String> {
    let setup = Setup::arbitrary(u).map_err(|e| e.to_string())?;
    let ports = usize::from(setup.ports % 5) + 1;
    let ageing = Duration::from_millis([0, 10, 50, 300][usize::from(setup.ageing % 4)]);
    let tolerance = Duration::from_millis([0, 0, 2, 20][usize::from(setup.tolerance % 4)]);
    let profile = if setup.linux {
        SwitchProfile::linux()
    } else {
        SwitchProfile::rfc()
    };
    let linux = profile.has(SwitchDeviation::InvalidSourceDropped);
    let mut sw = Switch::new(ports, ageing)
        .with_profile(profile)
        .with_tolerance(tolerance);
    let mut reference = Reference {
        ports,
        ageing,
        tolerance,
        linux,
        seen: BTreeMap::new(),
    };
    let mut now = Instant::ZERO;
    let mut out = Vec::new();
    for ev in super::events::<Event>(u) {
        match ev {
            Event::Frame { dt, port, src, dst } => {
                now = now + Duration::from_millis(u64::from(dt));
                let ingress = usize::from(port % 7);
                let header = crate::models::switch::FrameHeader {
                    src: mac(src),
                    dst: mac(dst),
                };
                let before = sw.clone();
                match sw.receive(now, ingress, &header) {
                    Err(e) => {
                        if ingress < ports || sw != before {
                            return Err(format!(
                                "port {ingress} of {ports}: {e}, or state changed"
                            ));
                        }
                        out.push(Step::Refused(e));
                    }
                    Ok(got) => {
                        if ingress >= ports {
                            return Err(format!("port {ingress} of {ports} accepted"));
                        }
                        let want = reference.frame(now, ingress, header.src, header.dst);
                        check_frame(ingress, tolerance, &want, &got)?;
                        out.push(Step::Forwarded(got));
                    }
                }
            }
            Event::Read { dt } => {
                now = now + Duration::from_millis(u64::from(dt));
                out.push(Step::Fdb(sw.fdb(now)));
            }
        }
        check_fdb(&sw, &reference, now)?;
    }
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
