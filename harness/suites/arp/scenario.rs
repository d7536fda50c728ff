//! ARP scenarios: the harness plays several hosts on the stack's link, and the ARP model
//! and the stack run side by side.
//!
//! A scenario is a list of [`Step`]s: pings from a peer (the stack must answer, so it must
//! resolve the peer), packets the stack forwards, ARP frames of every kind (requests,
//! replies, gratuitous ARP, RFC 5227 probes, from a peer's own or a conflicting MAC), and
//! time passing. The neighbour timers are shortened to tens of milliseconds through the
//! control plane, and the reachable time the stack drew is read back and fed to the model,
//! so the model predicts every frame and every entry exactly, up to the timer tick.
//!
//! The runner compares **every frame** the stack sends with the model's prediction (kind,
//! addresses, time within [`EARLY`]/[`LATE`]), answers the stack's requests for the peers
//! that answer (and tells the model), and compares the **whole neighbour table** read over
//! the control plane with the model's after every step. Inputs are kept at least [`GUARD`]
//! away from any instant where their outcome would race a timer of the entry they touch
//! ([`ArpHost::critical_instants`]), and dumps away from every timer: everything compared
//! is then determined.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::dut::fixed::{FixedBehaviour, RateLimitScope, Validation, WaitingPolicy};
use crate::dut::{Control, DutError, StateAnswer, StateQuery};
use crate::engine::expect::Observed;
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome as Outcome, with_kind};
use crate::engine::{CheckError, Needs, Session};
use crate::models::arp::{
    ArpDeviation, ArpHost, ArpIn, ArpParams, ArpPolicy, ArpProfile, BoundedTable, Delivery,
    ExpiringCache, HostConfig, NEVER, Nud, Output, Packet, PacketId, Rfc4861Nud, TickNud, Timed,
    TimedRequests,
};
use crate::models::profile::Deviation as _;
use crate::sandbox::{NeighbourParams, NeighbourParamsUpdate, NudState};
use crate::time::{Duration, Instant};
use crate::wire::{ArpOperation, Frame, Icmpv4Kind, Icmpv4Message, MacAddr, Network, Transport};

/// How much earlier than predicted a timer-driven frame may appear: the stack's clock runs
/// in ticks, so a deadline lands up to one tick before the model's (plus the model's own
/// skew when it was fed an input a little late).
pub const EARLY: Duration = Duration::from_millis(10);
/// How much later than predicted a frame may appear (scheduling on a loaded machine).
pub const LATE: Duration = Duration::from_millis(40);
/// How far inputs and dumps are kept from the instants where they would race a timer.
pub const GUARD: Duration = Duration::from_millis(15);

/// Echo identifier of the pings the peers send to the stack.
const PING_ID: u16 = 0x6e70; // "np"
/// Echo identifier of the packets the stack forwards.
const FORWARD_ID: u16 = 0x6e66; // "nf"

/// The source MAC of the pings that read a stack's cache without a table dump: no peer's,
/// so a ping neither confirms nor refreshes the entry it reads (smoltcp refreshes an entry
/// from traffic that comes from the entry's own MAC).
pub const PROBE_MAC: MacAddr = MacAddr([0x02, 0x6e, 0x63, 0xfe, 0x00, 0x01]);

/// The neighbour timers a scenario runs with (ms; the stack rounds them to its tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timers {
    /// `base_reachable_time`: the reachable time is drawn in [base/2, 3·base/2).
    pub base_reachable_ms: u64,
    /// Spacing of solicitations.
    pub retrans_ms: u64,
    /// DELAY before probing.
    pub delay_probe_ms: u64,
    /// How long the first answer wins.
    pub locktime_ms: u64,
}

impl Timers {
    /// Fast timers that stay below 256 ms (the first level of a timer wheel at HZ=250, where
    /// a timer runs exactly one tick after its deadline). `delay_probe` is below the
    /// shortest reachable time the stack can draw (base/2 = 80 ms): an entry confirmed (which
    /// also marks it used) then always expires to STALE; were the two close, whether it goes
    /// to DELAY would hang on a tick.
    pub const FAST: Timers = Timers {
        base_reachable_ms: 160,
        retrans_ms: 60,
        delay_probe_ms: 60,
        locktime_ms: 100,
    };

    /// Fast solicitations, but a reachable time of 15 to 45 s: no entry expires during a
    /// short check, so its trace does not depend on the time the stack drew.
    pub const STEADY: Timers = Timers {
        base_reachable_ms: 30_000,
        ..Timers::FAST
    };
}

/// A host the harness plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSpec {
    /// Last octet of its address.
    pub octet: u8,
    /// It answers the stack's requests for its address.
    pub answers: bool,
    /// It sits behind the gateway (198.51.100.x) instead of on the link (10.77.0.x).
    pub off_link: bool,
}

/// The kind of ARP packet a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArpKind {
    /// `who-has STACK tell PEER`.
    RequestForStack,
    /// `who-has NOBODY tell PEER` (an address no host has).
    RequestForOther,
    /// Gratuitous request `who-has PEER tell PEER` (an RFC 5227 announcement).
    GratuitousRequest,
    /// Gratuitous reply `PEER is-at MAC`, addressed to PEER/MAC itself.
    GratuitousReply,
    /// A reply to the stack, `PEER is-at MAC` (solicited or not).
    Reply,
    /// RFC 5227 probe `who-has STACK tell 0.0.0.0`.
    Probe,
}

/// A broken or suspicious ARP request for the stack, sent by a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BadArp {
    /// Hardware address length 8 (not 6).
    HardwareLength8,
    /// Protocol address length 16 (not 4).
    ProtocolLength16,
    /// Operation code 3 (RARP request; neither request nor reply).
    UnknownOperation,
    /// Hardware type 7 (not Ethernet or IEEE 802).
    HardwareType7,
    /// Protocol type 0x86dd (not IPv4).
    ProtocolIpv6,
    /// The body cut to 20 of its 28 bytes.
    Truncated,
    /// Sender protocol address 255.255.255.255.
    SenderIpBroadcast,
    /// Sender protocol address the subnet's broadcast address.
    SenderIpSubnetBroadcast,
    /// Sender protocol address the stack's own.
    SenderIpOwn,
    /// Sender hardware address ff:ff:ff:ff:ff:ff.
    SenderMacBroadcast,
    /// Sender hardware address 00:00:00:00:00:00.
    SenderMacZero,
    /// Sender hardware address a multicast MAC (01:00:5e:00:00:01).
    SenderMacMulticast,
    /// Target protocol address a multicast group (224.0.0.1).
    TargetMulticast,
}

impl BadArp {
    /// Every kind, in a fixed order.
    pub const ALL: [BadArp; 13] = [
        BadArp::HardwareLength8,
        BadArp::ProtocolLength16,
        BadArp::UnknownOperation,
        BadArp::HardwareType7,
        BadArp::ProtocolIpv6,
        BadArp::Truncated,
        BadArp::SenderIpBroadcast,
        BadArp::SenderIpSubnetBroadcast,
        BadArp::SenderIpOwn,
        BadArp::SenderMacBroadcast,
        BadArp::SenderMacZero,
        BadArp::SenderMacMulticast,
        BadArp::TargetMulticast,
    ];
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Peer `from` pings the stack; the stack answers, resolving `from` (or the gateway).
    Ping {
        /// Index into the peers.
        from: usize,
    },
    /// Peer `from` sends a packet through the stack to peer `to` (the stack forwards it
    /// back out on the link; needs forwarding).
    Forward {
        /// Sender.
        from: usize,
        /// Destination.
        to: usize,
    },
    /// Peer `from` sends an ARP packet.
    Arp {
        /// Sender.
        from: usize,
        /// What kind.
        kind: ArpKind,
        /// From a second MAC of the peer's (a conflict, or a new NIC) instead of its own.
        alt_mac: bool,
        /// Unicast to the stack's MAC instead of broadcast.
        unicast: bool,
    },
    /// Peer `from` sends a broken or suspicious ARP frame (the stack must ignore it, or
    /// do what its profile says).
    Malformed {
        /// Sender.
        from: usize,
        /// What is wrong with it.
        bad: BadArp,
    },
    /// Time passes.
    Wait {
        /// How long, ms.
        ms: u64,
    },
}

/// A whole ARP scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpScenario {
    /// A short name (file name of a saved regression).
    pub name: String,
    /// ARP policy of the stack.
    pub policy: ArpPolicy,
    /// The stack forwards packets.
    pub forwarding: bool,
    /// Index of the peer that is the stack's default gateway.
    pub gateway: Option<usize>,
    /// The hosts the harness plays.
    pub peers: Vec<PeerSpec>,
    /// What happens.
    pub steps: Vec<Step>,
    /// Timers.
    pub timers: Timers,
}

/// The address of an unused host on the link (the target of requests for someone else).
pub const NOBODY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);

impl PeerSpec {
    /// The peer's address.
    pub fn ip(&self) -> Ipv4Addr {
        if self.off_link {
            Ipv4Addr::new(198, 51, 100, self.octet)
        } else {
            Ipv4Addr::new(10, 77, 0, self.octet)
        }
    }

    /// The peer's MAC (`alt`: its second MAC).
    pub fn mac(&self, alt: bool) -> MacAddr {
        crate::wire::plan::arp_peer(alt, self.off_link, self.octet)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Ping { from } => write!(f, "p{from} pings the stack"),
            Step::Forward { from, to } => write!(f, "p{from} sends through the stack to p{to}"),
            Step::Arp {
                from,
                kind,
                alt_mac,
                unicast,
            } => write!(
                f,
                "p{from} sends {kind:?}{}{}",
                if *alt_mac { " from its second MAC" } else { "" },
                if *unicast { " unicast" } else { " broadcast" }
            ),
            Step::Malformed { from, bad } => write!(f, "p{from} sends a bad ARP request: {bad:?}"),
            Step::Wait { ms } => write!(f, "wait {ms} ms"),
        }
    }
}

/// What a scenario run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioOutcome {
    /// Every frame and every dump matched.
    Agreed {
        /// Frames compared.
        frames: usize,
        /// Neighbour entries compared (over all dumps, or read on the wire).
        entries: usize,
        /// Packets the stack dropped, as the model predicted, because their next hop was
        /// not resolved (a declared fixed behaviour: [`ExpiringCache::queue`] off).
        dropped_waiting: u32,
    },
    /// The stack drew a new reachable time during the run (Linux does every 300 s): the run
    /// proves nothing and should be repeated.
    Redrawn,
}

/// What the stack was seen doing, in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Out(Output),
    Packet {
        id: PacketId,
        dst: Ipv4Addr,
        dst_mac: MacAddr,
    },
    Other(String),
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Out(o) => write!(f, "{o}"),
            Seen::Packet { id, dst, dst_mac } => write!(f, "{id:?} to {dst} at {dst_mac}"),
            Seen::Other(s) => write!(f, "{s}"),
        }
    }
}

fn seen_of_output(o: &Output) -> Option<Seen> {
    match o {
        Output::Transmit {
            packet, dst_mac, ..
        } => Some(Seen::Packet {
            id: packet.id,
            dst: packet.dst,
            dst_mac: *dst_mac,
        }),
        Output::Discarded { .. } => None,
        other => Some(Seen::Out(other.clone())),
    }
}

/// The echo identifier and sequence of an ICMP error's quoted datagram.
fn quoted_echo(payload: &[u8]) -> Option<(u16, u16)> {
    let ihl = usize::from(*payload.first()? & 0x0f) * 4;
    let icmp = payload.get(ihl..ihl + 8)?;
    if icmp[0] != 8 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

fn ms(d: Instant) -> String {
    format!("{:.1} ms", d.total_micros() as f64 / 1000.0)
}

/// Runs one scenario against the session's target; `Err` carries the first disagreement.
pub fn run_arp_scenario(
    session: &mut Session<'_>,
    scenario: &ArpScenario,
    profile: &ArpProfile,
) -> Result<ScenarioOutcome, CheckError> {
    let result = (|| {
        let mut run = Runner::setup(session, scenario, profile)?;
        for (i, step) in scenario.steps.iter().enumerate() {
            run.step(i, step)?;
        }
        run.finish()
    })();
    if let Err(e) = &result
        && !matches!(e, CheckError::Dut { .. })
    {
        session.offer_counterexample(Counterexample::scenario(Box::new(scenario.clone())));
    }
    result
}

struct Runner<'a, 's> {
    s: &'a mut Session<'s>,
    scenario: &'a ArpScenario,
    model: ArpHost,
    stack_mac: MacAddr,
    stack_ip: Ipv4Addr,
    pending: Vec<Timed>,
    ping_seq: u16,
    forward_seq: u16,
    frames: usize,
    entries: usize,
    step: String,
    /// The latest the stack has run a timer so far in this scenario, measured on its
    /// solicitations (the kernel's timestamp of each against the model's instant, after
    /// the model follows the stack's clock: see [`ArpHost::solicitation_seen`]). A
    /// transition the wire does not show (INCOMPLETE to FAILED) may be as late, so inputs
    /// and dumps keep this much further from the model's timers than [`GUARD`].
    late: Duration,
    /// Set when the stack's ARP settings could not be pinned and its declared fixed
    /// behaviour stands in: the cache is then read on the wire, not dumped.
    fixed: Option<FixedRun>,
    /// The target hardware address of the stack's requests (Linux: zero; a stack's
    /// declaration may say otherwise, RFC 826 leaves it open).
    request_tha: MacAddr,
    /// A unicast request names its target's MAC as target hardware address (declared).
    unicast_request_names_target: bool,
}

/// How a scenario runs against a stack's declared fixed ARP behaviour.
#[derive(Debug, Clone)]
struct FixedRun {
    /// Waits are multiplied by this: the declared entry lifetime over the scenario's base
    /// reachable time, so a wait that outlives a reachable time outlives the lifetime.
    scale: f64,
    /// The neighbour table cannot be dumped: it is read with pings at the end.
    black_box: bool,
    /// The declared cache never flushes an entry (`[arp.cache] validation = "never"`):
    /// waits are not scaled and no expiry is bracketed.
    never_expires: bool,
}

/// Names the scenario's peers in the trace (`p0`, its second MAC `p0'`, ...) and the
/// address nobody has (`nobody`).
pub(crate) fn name_peers(s: &mut Session<'_>, scenario: &ArpScenario) {
    for (i, p) in scenario.peers.iter().enumerate() {
        s.name_host(
            Some(p.mac(false)),
            Some(IpAddr::V4(p.ip())),
            &format!("p{i}"),
        );
        s.name_host(Some(p.mac(true)), None, &format!("p{i}'"));
    }
    s.name_host(None, Some(IpAddr::V4(NOBODY)), "nobody");
}

impl ArpKind {
    /// The ARP packet of this kind that a peer at `ip` sends from `sha` to a stack at
    /// `stack_ip` (MAC `stack_mac`).
    pub(crate) fn packet(
        self,
        sha: MacAddr,
        ip: Ipv4Addr,
        stack_mac: MacAddr,
        stack_ip: Ipv4Addr,
    ) -> ArpIn {
        let zero = MacAddr::ZERO;
        match self {
            ArpKind::RequestForStack => ArpIn::new(1, sha, ip, zero, stack_ip),
            ArpKind::RequestForOther => ArpIn::new(1, sha, ip, zero, NOBODY),
            ArpKind::GratuitousRequest => ArpIn::new(1, sha, ip, zero, ip),
            ArpKind::GratuitousReply => ArpIn::new(2, sha, ip, sha, ip),
            ArpKind::Reply => ArpIn::new(2, sha, ip, stack_mac, stack_ip),
            ArpKind::Probe => ArpIn::new(1, sha, Ipv4Addr::UNSPECIFIED, zero, stack_ip),
        }
    }
}

/// `arp` as it goes on the wire.
pub(crate) fn arp_repr(arp: &ArpIn) -> crate::wire::ArpRepr {
    crate::wire::ArpRepr {
        operation: ArpOperation::from(arp.op),
        hw_type: arp.hw_type,
        proto_type: arp.proto_type,
        sender_mac: arp.sha,
        sender_ip: arp.spa,
        target_mac: arp.tha,
        target_ip: arp.tpa,
    }
}

/// A broken ARP request from `p` (its own MAC, broadcast) for a stack at `stack_ip` on a
/// subnet of `prefix_len` bits: what the model is told it received, and the frame's bytes.
pub(crate) fn bad_arp_request(
    p: &PeerSpec,
    bad: BadArp,
    stack_ip: Ipv4Addr,
    prefix_len: u8,
) -> (ArpIn, Vec<u8>) {
    let (mac, ip) = (p.mac(false), p.ip());
    let mut arp = ArpIn::new(1, mac, ip, MacAddr::ZERO, stack_ip);
    let subnet_broadcast = {
        let len = u32::from(prefix_len.min(32));
        let host = if len == 0 { u32::MAX } else { u32::MAX >> len };
        Ipv4Addr::from(u32::from(stack_ip) | host)
    };
    match bad {
        BadArp::HardwareLength8 => arp.hw_len = 8,
        BadArp::ProtocolLength16 => arp.proto_len = 16,
        BadArp::UnknownOperation => arp.op = 3,
        BadArp::HardwareType7 => arp.hw_type = 7,
        BadArp::ProtocolIpv6 => arp.proto_type = 0x86dd,
        BadArp::Truncated => arp.truncated = true,
        BadArp::SenderIpBroadcast => arp.spa = Ipv4Addr::BROADCAST,
        BadArp::SenderIpSubnetBroadcast => arp.spa = subnet_broadcast,
        BadArp::SenderIpOwn => arp.spa = stack_ip,
        BadArp::SenderMacBroadcast => arp.sha = MacAddr::BROADCAST,
        BadArp::SenderMacZero => arp.sha = MacAddr::ZERO,
        BadArp::SenderMacMulticast => arp.sha = MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]),
        BadArp::TargetMulticast => arp.tpa = Ipv4Addr::new(224, 0, 0, 1),
    }
    let network = if arp.hw_len != 6 || arp.proto_len != 4 {
        let widen = |v: &[u8], len: u8| {
            let mut v = v.to_vec();
            v.resize(usize::from(len), 0);
            v
        };
        Network::ArpRaw(crate::wire::ArpRaw {
            operation: ArpOperation::from(arp.op),
            hw_type: arp.hw_type,
            proto_type: arp.proto_type,
            sender_hw: widen(&arp.sha.0, arp.hw_len),
            sender_proto: widen(&arp.spa.octets(), arp.proto_len),
            target_hw: widen(&arp.tha.0, arp.hw_len),
            target_proto: widen(&arp.tpa.octets(), arp.proto_len),
        })
    } else {
        Network::Arp(arp_repr(&arp))
    };
    let mut bytes = Frame::new(mac, MacAddr::BROADCAST, network).emit();
    if arp.truncated {
        bytes.truncate(14 + 20);
    }
    (arp, bytes)
}

/// Whether `result` is the target's refusal of a control (`Some(why)`), its acceptance
/// (`None`), or another error.
pub(crate) fn refusal(result: Result<(), CheckError>) -> Result<Option<String>, CheckError> {
    match result {
        Ok(()) => Ok(None),
        Err(CheckError::Dut {
            source: DutError::NotSupported { what },
            ..
        }) => Ok(Some(what)),
        Err(e) => Err(e),
    }
}

/// Unsupported: `why` the setting was refused, and what to declare to run anyway.
fn undeclared(step: &str, why: &str, declare: &str, fixed: Option<&FixedBehaviour>) -> CheckError {
    let file = fixed.map_or_else(|| "profiles/<target>.toml".to_string(), |f| f.file.clone());
    CheckError::Dut {
        step: step.into(),
        source: DutError::NotSupported {
            what: format!(
                "{why}; nothing declared in its place: declare {declare} in {file} to run the check against the stack's fixed behaviour"
            ),
        },
    }
}

impl<'a, 's> Runner<'a, 's> {
    fn setup(
        s: &'a mut Session<'s>,
        scenario: &'a ArpScenario,
        profile: &ArpProfile,
    ) -> Result<Self, CheckError> {
        let step = "set-up".to_string();
        let e = s.endpoints().clone();
        let Some((stack_ip, prefix_len)) = e.stack_ipv4 else {
            return Err(CheckError::Dut {
                step,
                source: DutError::NotSupported {
                    what: "ARP needs an IPv4 address on the stack".into(),
                },
            });
        };
        let stack_mac = e.stack_mac;
        let fixed = s.fixed_behaviour();
        let mut declared: Vec<String> = Vec::new();
        let policy = match refusal(s.control(&step, &Control::ArpPolicy(scenario.policy)))? {
            None => scenario.policy,
            Some(why) => match fixed.as_ref().and_then(|f| f.arp_policy()) {
                Some(p) => {
                    declared.push(format!(
                        "ARP policy accept {:?}, ignore {:?} (the scenario's: accept {:?}, ignore {:?})",
                        p.accept, p.ignore, scenario.policy.accept, scenario.policy.ignore
                    ));
                    p
                }
                None => return Err(undeclared(&step, &why, "[arp.policy]", fixed.as_deref())),
            },
        };
        if scenario.forwarding
            && let Some(why) = refusal(s.control(&step, &Control::Forwarding(true)))?
        {
            return Err(match fixed.as_ref().and_then(|f| f.ip.as_ref()) {
                Some(ip) if !ip.forwarding => CheckError::Dut {
                    step,
                    source: DutError::NotSupported {
                        what: format!(
                            "{why}; {} declares that {} does not forward ([ip] forwarding = false), and this check's point is a packet the stack forwards",
                            fixed.as_ref().map_or("", |f| f.file.as_str()),
                            fixed.as_ref().map_or("", |f| f.stack.as_str()),
                        ),
                    },
                },
                _ => undeclared(&step, &why, "[ip] forwarding", fixed.as_deref()),
            });
        }
        let gateway = scenario
            .gateway
            .and_then(|g| scenario.peers.get(g))
            .map(|p| p.ip());
        if let Some(gw) = gateway {
            s.control(
                &step,
                &Control::Route {
                    dst: Ipv4Addr::UNSPECIFIED,
                    prefix_len: 0,
                    via: gw,
                },
            )?;
        }
        let nud = fixed
            .as_ref()
            .and_then(|f| f.arp.as_ref())
            .and_then(|a| a.nud.clone());
        // The stack's tick: ask for 1 ms and read back what it keeps (its clock rounds the
        // time up to a whole tick). More than the coarsest tick is no rounding: the stack
        // did not take the setting. (A stack with a declared state machine reports no
        // parameters: it is set and judged on the wire.)
        let tick_nud = fixed
            .as_ref()
            .and_then(|f| f.arp.as_ref())
            .and_then(|a| a.tick_nud.clone());
        let refused = match &nud {
            Some(_) => None,
            None if tick_nud.is_some() => None,
            None => refusal(s.control(
                &step,
                &Control::NeighbourParams(NeighbourParamsUpdate {
                    retrans_ms: Some(1),
                    ..Default::default()
                }),
            ))?,
        };
        let mut rfc4861 = None;
        let mut tick = None;
        let (params, expiring, fixed_run) = match refused {
            None if tick_nud.is_some() => {
                let (params, n, run) = Self::declared_tick_nud(
                    s,
                    scenario,
                    &step,
                    tick_nud.as_ref().expect("checked"),
                    fixed.as_deref(),
                    &mut declared,
                )?;
                tick = Some(n);
                (params, None, Some(run))
            }
            None if nud.is_some() => {
                let (params, n) = Self::declared_nud(
                    s,
                    scenario,
                    &step,
                    nud.as_ref().expect("checked"),
                    &mut declared,
                )?;
                rfc4861 = Some(n);
                (params, None, None)
            }
            None => (Self::pinned_params(s, scenario, &step)?, None, None),
            Some(why) => {
                let (params, expiring, fixed_run) = Self::declared_params(
                    s,
                    scenario,
                    &step,
                    &why,
                    fixed.as_deref(),
                    &mut declared,
                )?;
                (params, Some(expiring), Some(fixed_run))
            }
        };
        if !declared.is_empty() {
            let f = fixed.as_deref();
            s.note(format!(
                "ran against {}'s fixed ARP behaviour ({}): {}",
                f.map_or("the stack", |f| f.stack.as_str()),
                f.map_or("", |f| f.file.as_str()),
                declared.join("; ")
            ));
        }
        let request_tha = match &fixed_run {
            Some(_) => fixed
                .as_ref()
                .and_then(|f| f.request_target_mac())
                .unwrap_or(MacAddr::ZERO),
            None => MacAddr::ZERO,
        };
        Self::name_hosts(s, scenario);
        let config = HostConfig {
            mac: stack_mac,
            addr: stack_ip,
            prefix_len,
            gateway,
            forwarding: scenario.forwarding,
            policy,
            params,
            expiring,
            rfc4861,
            tick_nud: tick,
        };
        let mut model = ArpHost::new(config, profile.clone());
        if fixed_run.is_some()
            && let Some(size) = fixed
                .as_ref()
                .and_then(|f| f.arp.as_ref())
                .and_then(|a| a.cache.as_ref())
                .and_then(|c| c.table_size)
        {
            model = model.with_bounded_table(BoundedTable { size });
        }
        model.advance(s.now());
        Ok(Runner {
            s,
            scenario,
            model,
            stack_mac,
            stack_ip,
            pending: Vec::new(),
            ping_seq: 0,
            forward_seq: 0,
            frames: 0,
            entries: 0,
            step,
            late: Duration::ZERO,
            fixed: fixed_run,
            request_tha,
            unicast_request_names_target: nud.is_some_and(|n| n.unicast_request_names_target),
        })
    }

    /// The timers of a stack whose neighbour state machine is RFC 4861's with some timers
    /// fixed (`[arp.nud]`): the settable ones set as the scenario wants them (the stack
    /// cannot report them: the exchange shows whether they were taken), the rest as
    /// declared.
    fn declared_nud(
        s: &mut Session<'_>,
        scenario: &ArpScenario,
        step: &str,
        nud: &crate::dut::fixed::ArpNudFixed,
        declared: &mut Vec<String>,
    ) -> Result<(ArpParams, Rfc4861Nud), CheckError> {
        let t = scenario.timers;
        if !nud.reachable_is_base {
            return Err(CheckError::Dut {
                step: step.into(),
                source: DutError::NotSupported {
                    what: "the stack draws its reachable time and reports no neighbour parameters: the model cannot know the time drawn".into(),
                },
            });
        }
        let wanted = NeighbourParamsUpdate {
            base_reachable_ms: Some(t.base_reachable_ms),
            retrans_ms: Some(t.retrans_ms),
            ucast_probes: Some(3),
            mcast_probes: Some(3),
            ..Default::default()
        };
        s.control(step, &Control::NeighbourParams(wanted))?;
        s.control(step, &Control::FlushNeighbours)?;
        let params = ArpParams {
            reachable: Duration::from_millis(t.base_reachable_ms),
            base_reachable: Duration::from_millis(t.base_reachable_ms),
            retrans: Duration::from_millis(t.retrans_ms),
            delay_probe: Duration::from_millis(nud.delay_probe_ms),
            locktime: Duration::ZERO,
            ucast_probes: 3,
            mcast_probes: 3,
            app_probes: 0,
            mcast_reprobes: 0,
            tick: Duration::from_millis(1),
            timer_floor: Duration::ZERO,
        };
        declared.push(format!(
            "RFC 4861's neighbour state machine for ARP; set: base reachable {} ms (the reachable time itself), retrans {} ms, 3 unicast and 3 broadcast probes; fixed: delay before probing {} ms (the scenario's {} ms), override lock {} ms (no locktime; the scenario's {} ms){}",
            t.base_reachable_ms,
            t.retrans_ms,
            nud.delay_probe_ms,
            t.delay_probe_ms,
            nud.override_lock_ms,
            t.locktime_ms,
            if nud.unicast_request_names_target {
                "; a unicast request names its target's MAC"
            } else {
                ""
            }
        ));
        Ok((
            params,
            Rfc4861Nud {
                override_lock: Duration::from_millis(nud.override_lock_ms),
            },
        ))
    }

    /// The timers of a stack that runs Linux's neighbour states on a coarse maintenance
    /// pass with timers in whole units (`[arp.tick_nud]`, PyTCP): the scenario's timers
    /// scaled up until the shortest solicitation timer is at least three quarters of a unit
    /// and the reachable time is whole units, each then rounded up to whole units, set
    /// (the stack reports none back: the exchange shows whether it took them), and every
    /// wait of the scenario scaled by as much. The neighbour table is dumped as usual.
    fn declared_tick_nud(
        s: &mut Session<'_>,
        scenario: &ArpScenario,
        step: &str,
        n: &crate::dut::fixed::ArpTickNudFixed,
        fixed: Option<&FixedBehaviour>,
        declared: &mut Vec<String>,
    ) -> Result<(ArpParams, TickNud, FixedRun), CheckError> {
        let file = fixed.map_or("", |f| f.file.as_str());
        if !n.failed_on_next_tick || !n.reachable_is_base || n.locktime_ms != 0 {
            return Err(CheckError::Dut {
                step: step.into(),
                source: DutError::NotSupported {
                    what: format!(
                        "{file} declares [arp.tick_nud] failed_on_next_tick = {}, reachable_is_base = {}, locktime_ms = {}: the ARP model knows only true, true, 0",
                        n.failed_on_next_tick, n.reachable_is_base, n.locktime_ms
                    ),
                },
            });
        }
        let t = scenario.timers;
        let unit = n.timer_unit_ms.max(1);
        let shortest = t.retrans_ms.min(t.delay_probe_ms).max(1);
        let base = t.base_reachable_ms.max(1);
        let reachable = (base * unit * 3)
            .div_ceil(4 * shortest)
            .div_ceil(unit)
            .max(1)
            * unit;
        let scale = reachable as f64 / base as f64;
        let up = |ms: u64| ((ms as f64 * scale).ceil() as u64).div_ceil(unit).max(1) * unit;
        let (retrans, delay) = (up(t.retrans_ms), up(t.delay_probe_ms));
        let wanted = NeighbourParamsUpdate {
            base_reachable_ms: Some(reachable),
            retrans_ms: Some(retrans),
            delay_probe_ms: Some(delay),
            ucast_probes: Some(3),
            mcast_probes: Some(3),
            ..Default::default()
        };
        s.control(step, &Control::NeighbourParams(wanted))?;
        s.control(step, &Control::FlushNeighbours)?;
        let queue_len = fixed
            .and_then(|f| f.arp.as_ref())
            .and_then(|a| a.waiting_packet.as_ref())
            .and_then(|w| w.queue_len)
            .unwrap_or(usize::MAX);
        let params = ArpParams {
            reachable: Duration::from_millis(reachable),
            base_reachable: Duration::from_millis(reachable),
            retrans: Duration::from_millis(retrans),
            delay_probe: Duration::from_millis(delay),
            locktime: Duration::ZERO,
            ucast_probes: 3,
            mcast_probes: 3,
            app_probes: 0,
            mcast_reprobes: 0,
            tick: Duration::from_millis(n.tick_ms),
            timer_floor: Duration::ZERO,
        };
        declared.push(format!(
            "Linux's neighbour states on a maintenance pass every {} ms (a timer runs on the first pass at or after its deadline; the pass after the last request of a run makes the entry FAILED), timers in whole {} ms; set: reachable {reachable} ms (the reachable time itself), retrans {retrans} ms, delay before probing {delay} ms, 3 unicast and 3 broadcast probes (the scenario's {} / {} / {} ms, scaled by {scale}); no locktime (the scenario's {} ms); waits scaled by {scale}",
            n.tick_ms,
            unit,
            t.base_reachable_ms,
            t.retrans_ms,
            t.delay_probe_ms,
            t.locktime_ms
        ));
        Ok((
            params,
            TickNud { queue_len },
            FixedRun {
                scale,
                black_box: false,
                never_expires: false,
            },
        ))
    }

    /// The timers and probe counts of a stack that takes them: set, read back, compared.
    fn pinned_params(
        s: &mut Session<'_>,
        scenario: &ArpScenario,
        step: &str,
    ) -> Result<ArpParams, CheckError> {
        let step = step.to_string();
        let tick = read_params(s, &step)?.retrans_ms;
        if !(1..=ArpParams::MAX_TICK.total_millis()).contains(&tick) {
            return Err(CheckError::Mismatch {
                step,
                differences: vec![format!(
                    "neighbour_params.retrans_ms: expected 1 (set, rounded up to the stack's tick of at most {} ms), observed {tick}",
                    ArpParams::MAX_TICK.total_millis()
                )],
            });
        }
        let t = scenario.timers;
        let wanted = NeighbourParamsUpdate {
            base_reachable_ms: Some(t.base_reachable_ms),
            retrans_ms: Some(t.retrans_ms),
            delay_probe_ms: Some(t.delay_probe_ms),
            locktime_ms: Some(t.locktime_ms),
            gc_stale_ms: Some(3_600_000),
            ucast_probes: Some(3),
            mcast_probes: Some(3),
            app_probes: Some(0),
            mcast_reprobes: Some(0),
        };
        s.control(&step, &Control::NeighbourParams(wanted))?;
        s.control(&step, &Control::FlushNeighbours)?;
        // The kernel garbage-collects FAILED and old STALE entries only while the table
        // (shared by every namespace) holds at least gc_thresh1 entries; the model leaves
        // collection out, so say when it could happen.
        if let StateAnswer::NeighbourTableInfo(t) =
            s.query(&step, StateQuery::NeighbourTableInfo)?
            && t.entries >= t.gc_thresh1
        {
            s.note(format!(
                "the kernel's ARP table holds {} entries (gc_thresh1 {}): its garbage collector may remove FAILED entries during this run",
                t.entries, t.gc_thresh1
            ));
        }
        let k = read_params(s, &step)?;
        // What was set must be what the stack keeps (to within its tick); only the
        // reachable time is the stack's own, drawn from the base that was set.
        let differences = params_kept(&wanted, &k, Duration::from_millis(tick));
        if !differences.is_empty() {
            return Err(CheckError::Mismatch { step, differences });
        }
        let params = ArpParams {
            reachable: Duration::from_millis(k.reachable_ms),
            base_reachable: Duration::from_millis(k.base_reachable_ms),
            retrans: Duration::from_millis(k.retrans_ms),
            delay_probe: Duration::from_millis(k.delay_probe_ms),
            locktime: Duration::from_millis(k.locktime_ms),
            ucast_probes: k.ucast_probes,
            mcast_probes: k.mcast_probes,
            app_probes: k.app_probes,
            mcast_reprobes: k.mcast_reprobes,
            tick: Duration::from_millis(tick),
            timer_floor: Duration::from_millis(2 * tick),
        };
        s.note(format!(
            "neighbour timers: reachable {} ms (drawn from base {}), retrans {} ms, delay {} ms, locktime {} ms, tick {} ms",
            k.reachable_ms, k.base_reachable_ms, k.retrans_ms, k.delay_probe_ms, k.locktime_ms, tick
        ));
        Ok(params)
    }

    /// The model's timers for a stack that refused them (`why`), from its declared fixed
    /// behaviour: an [`ExpiringCache`] with the declared lifetime, request interval and
    /// waiting-packet policy. Unsupported, naming what to declare, when something is
    /// missing or is a behaviour the model does not know.
    fn declared_params(
        s: &mut Session<'_>,
        scenario: &ArpScenario,
        step: &str,
        why: &str,
        fixed: Option<&FixedBehaviour>,
        declared: &mut Vec<String>,
    ) -> Result<(ArpParams, ExpiringCache, FixedRun), CheckError> {
        let arp = fixed.and_then(|f| f.arp.as_ref());
        let (Some(cache), Some(requests), Some(waiting)) = (
            arp.and_then(|a| a.cache.as_ref()),
            arp.and_then(|a| a.requests.as_ref()),
            arp.and_then(|a| a.waiting_packet.as_ref()),
        ) else {
            return Err(undeclared(
                step,
                why,
                "[arp.cache], [arp.requests] and [arp.waiting_packet]",
                fixed,
            ));
        };
        let unknown = |what: &str| CheckError::Dut {
            step: step.into(),
            source: DutError::NotSupported {
                what: format!(
                    "{why}; {} declares {what}, which the ARP model does not know yet",
                    fixed.map_or("", |f| f.file.as_str())
                ),
            },
        };
        if cache.validation == Validation::UnicastPoll {
            return Err(unknown(
                "a cache validated by unicast polls with fixed timers",
            ));
        }
        let never = cache.validation == Validation::Never;
        let timed = match (
            requests.retransmit,
            requests.tick_ms,
            requests.max_pending_ticks,
        ) {
            (false, _, _) => None,
            (true, Some(tick), Some(max_pending)) if tick > 0 && max_pending > 0 => {
                Some(TimedRequests {
                    tick: Duration::from_millis(tick),
                    max_pending,
                    queue_len: waiting.queue_len.unwrap_or(usize::MAX),
                    rerequest_unicast: cache.rerequest_unicast_before_ms.map(Duration::from_millis),
                    rerequest_broadcast: cache
                        .rerequest_broadcast_before_ms
                        .map(Duration::from_millis),
                })
            }
            (true, _, _) => {
                return Err(unknown(
                    "requests retransmitted on a timer without its period and pending lifetime (tick_ms, max_pending_ticks)",
                ));
            }
        };
        // The cache must start empty; a stack that cannot flush it starts with a fresh one.
        if let Some(why) = refusal(s.control(step, &Control::FlushNeighbours))? {
            s.note(format!(
                "the cache is not flushed ({why}): the stack is fresh"
            ));
        }
        let lifetime = if never {
            NEVER
        } else {
            Duration::from_millis(cache.lifetime_ms)
        };
        let interval = Duration::from_millis(requests.min_interval_ms);
        let expiring = ExpiringCache {
            lifetime,
            refreshed_by_traffic: cache.refreshed_by_traffic,
            request_interval: interval,
            rate_limit_per_address: requests.rate_limit_scope == RateLimitScope::Address,
            queue: waiting.policy == WaitingPolicy::Queue,
            timed,
        };
        let params = ArpParams {
            reachable: lifetime,
            base_reachable: lifetime,
            retrans: interval,
            delay_probe: Duration::ZERO,
            locktime: Duration::ZERO,
            ucast_probes: 0,
            mcast_probes: 1,
            app_probes: 0,
            mcast_reprobes: 0,
            tick: Duration::from_millis(1),
            timer_floor: Duration::from_millis(1),
        };
        let scale = if never {
            // No lifetime to scale to: the waits are the scenario's own.
            1.0
        } else {
            cache.lifetime_ms as f64 / scenario.timers.base_reachable_ms.max(1) as f64
        };
        if never {
            declared.push(format!(
                "entries are never flushed (no lifetime, no unicast poll){}",
                match (cache.table_size, cache.replacement) {
                    (Some(n), Some(_)) =>
                        format!("; a table of {n} entries, a new address taking the slots in turn"),
                    _ => String::new(),
                }
            ));
        } else {
            declared.push(format!(
                "entries expire {} ms after their last fill{}, no unicast poll",
                cache.lifetime_ms,
                if cache.refreshed_by_traffic {
                    " (traffic from the entry's address and MAC refills it)"
                } else {
                    ""
                }
            ));
        }
        match timed {
            Some(t) => declared.push(format!(
                "a broadcast request (target MAC {}) when a packet needs an unknown address, again on every {} ms tick while it is pending, the entry and up to {} waiting packets dropped on tick {}{}",
                requests.target_mac,
                t.tick.total_millis(),
                waiting.queue_len.map_or("any number of".into(), |n| n.to_string()),
                t.max_pending,
                match (t.rerequest_unicast, t.rerequest_broadcast) {
                    (Some(u), Some(b)) => format!(
                        "; a used entry re-requested from {} ms before its expiry (unicast; broadcast from {} ms), at most once per two ticks",
                        u.total_millis(),
                        b.total_millis()
                    ),
                    _ => String::new(),
                }
            )),
            None if requests.min_interval_ms == 0 => declared.push(format!(
                "one broadcast request (target MAC {}) per packet that needs an address, no rate limit",
                requests.target_mac
            )),
            None => declared.push(format!(
                "one broadcast request (target MAC {}) per packet that needs an address, at most one per {} ms {}",
                requests.target_mac,
                requests.min_interval_ms,
                match requests.rate_limit_scope {
                    RateLimitScope::Interface => "on the whole interface",
                    RateLimitScope::Address => "per address",
                }
            )),
        }
        declared.push(format!(
            "a packet waiting for a resolution is {}",
            match waiting.policy {
                WaitingPolicy::Queue => "queued",
                WaitingPolicy::Drop => "dropped",
            }
        ));
        if never {
            declared.push(
                "waits not scaled (no lifetime); the cache is read on the wire at the end".into(),
            );
        } else {
            declared.push(format!(
                "waits scaled by {scale} (the lifetime over the scenario's base reachable time of {} ms); the cache is read on the wire at the end",
                scenario.timers.base_reachable_ms
            ));
        }
        Ok((
            params,
            expiring,
            FixedRun {
                scale,
                black_box: true,
                never_expires: never,
            },
        ))
    }

    fn name_hosts(s: &mut Session<'_>, scenario: &ArpScenario) {
        name_peers(s, scenario);
        s.name_host(Some(PROBE_MAC), None, "probe");
    }

    fn peer(&self, i: usize) -> Result<&'a PeerSpec, CheckError> {
        self.scenario
            .peers
            .get(i)
            .ok_or_else(|| CheckError::WrongAnswer {
                step: self.step.clone(),
                expected: format!("a peer {i}"),
                observed: format!("{} peers in the scenario", self.scenario.peers.len()),
            })
    }

    fn mismatch(&self, differences: Vec<String>) -> CheckError {
        CheckError::Mismatch {
            step: self.step.clone(),
            differences,
        }
    }

    fn step(&mut self, i: usize, step: &Step) -> Result<(), CheckError> {
        self.step = format!("step {} ({step})", i + 1);
        self.s.note(format!("step {}: {step}", i + 1));
        match step {
            Step::Wait { ms } => {
                let ms = match &self.fixed {
                    Some(f) if !f.never_expires => {
                        let scaled = (*ms as f64 * f.scale).round() as u64;
                        self.s.note(format!(
                            "waiting {scaled} ms: {ms} ms scaled {}",
                            if f.black_box {
                                "to the declared lifetime"
                            } else {
                                "as the timers were"
                            }
                        ));
                        scaled
                    }
                    _ => *ms,
                };
                let until = self.s.now() + Duration::from_millis(ms);
                self.pump(until)?;
            }
            Step::Ping { from } => self.ping(*from, None)?,
            Step::Forward { from, to } => {
                let (p, q) = (self.peer(*from)?, self.peer(*to)?);
                let hop_to = self.model.config().next_hop(q.ip());
                let hop_from = self.model.config().next_hop(p.ip());
                self.clear_of(hop_to)?;
                self.clear_of(hop_from)?;
                self.forward_seq += 1;
                let seq = self.forward_seq;
                let (eth_src, ip) = self.eth_source_of(p)?;
                let frame = Frame::icmpv4(
                    eth_src,
                    self.stack_mac,
                    ip,
                    q.ip(),
                    Icmpv4Message::echo_request(FORWARD_ID, seq, b"netconform fwd".to_vec()),
                );
                let at = self.send(&frame)?;
                if self.scenario.forwarding {
                    let out = self.model.send(
                        at,
                        Packet {
                            id: PacketId::Forwarded(u32::from(seq)),
                            src: ip,
                            dst: q.ip(),
                        },
                    );
                    self.pending.extend(out);
                }
                self.settle()?;
            }
            Step::Arp {
                from,
                kind,
                alt_mac,
                unicast,
            } => {
                let p = self.peer(*from)?;
                self.clear_of(Some(p.ip()))?;
                let sha = p.mac(*alt_mac);
                let ip = p.ip();
                let arp = kind.packet(sha, ip, self.stack_mac, self.stack_ip);
                let dst = if *unicast {
                    self.stack_mac
                } else {
                    MacAddr::BROADCAST
                };
                self.send_arp(dst, &arp)?;
                self.settle()?;
            }
            Step::Malformed { from, bad } => {
                let p = self.peer(*from)?;
                self.clear_of(Some(p.ip()))?;
                self.send_bad_arp(p, *bad)?;
                self.settle()?;
            }
        }
        self.compare_table()
    }

    /// Peer `from` pings the stack (from `mac` instead of its own when given), and the
    /// stack's answer is compared with the model's.
    fn ping(&mut self, from: usize, mac: Option<MacAddr>) -> Result<(), CheckError> {
        let p = self.peer(from)?;
        let hop = self.model.config().next_hop(p.ip());
        self.clear_of(hop)?;
        self.clear_of(Some(p.ip()))?;
        self.ping_seq += 1;
        let seq = self.ping_seq;
        let (eth_src, ip) = self.eth_source_of(p)?;
        let eth_src = mac.unwrap_or(eth_src);
        let frame = Frame::icmpv4(
            eth_src,
            self.stack_mac,
            ip,
            self.stack_ip,
            Icmpv4Message::echo_request(PING_ID, seq, b"netconform arp".to_vec()),
        );
        let at = self.send(&frame)?;
        let out = self.model.ip_received(at, ip, eth_src);
        self.pending.extend(out);
        let out = self.model.send(
            at,
            Packet {
                id: PacketId::Local(u32::from(seq)),
                src: self.stack_ip,
                dst: ip,
            },
        );
        self.pending.extend(out);
        self.settle()
    }

    /// Reads a cache that cannot be dumped, on the wire: each on-link peer pings the stack
    /// twice from [`PROBE_MAC`] (which refreshes no entry), so the answer shows the entry:
    /// a reply straight to the cached MAC, or a request (and the second ping, within the
    /// request interval, what the rate limit does). A scenario about expiry (fast timers)
    /// then brackets each live entry's expiry: a ping just before it must be answered from
    /// the cache, one just after it must not.
    fn read_cache_on_wire(&mut self) -> Result<(), CheckError> {
        let margin = GUARD + LATE + Duration::from_millis(1);
        let peers: Vec<usize> = (0..self.scenario.peers.len())
            .filter(|i| !self.scenario.peers[*i].off_link)
            .collect();
        for &i in &peers {
            for n in 1..=2 {
                self.step = format!("cache read: p{i} pings from another MAC ({n} of 2)");
                self.s.note(self.step.clone());
                self.ping(i, Some(PROBE_MAC))?;
                self.entries += 1;
            }
        }
        if self.scenario.timers != Timers::FAST
            || self.fixed.as_ref().is_some_and(|f| f.never_expires)
        {
            return Ok(());
        }
        for &i in &peers {
            let ip = self.scenario.peers[i].ip();
            let Some(expires) = self.model.expires(ip) else {
                continue;
            };
            if expires <= self.s.now() + margin {
                continue;
            }
            self.step = format!(
                "cache read: p{i}'s entry just before it expires at {}",
                ms(expires)
            );
            self.s.note(self.step.clone());
            // A coarse timer may remove the entry up to its period early.
            let before = margin + self.model.timing_window();
            self.pump(Instant::from_micros(
                expires.total_micros().saturating_sub(before.total_micros()),
            ))?;
            self.ping(i, Some(PROBE_MAC))?;
            self.step = format!(
                "cache read: p{i}'s entry just after it expired at {}",
                ms(expires)
            );
            self.s.note(self.step.clone());
            self.pump(expires + margin)?;
            self.ping(i, Some(PROBE_MAC))?;
            self.entries += 1;
        }
        Ok(())
    }

    /// The Ethernet source and IP source of a peer's packet: off-link peers arrive through
    /// the gateway.
    fn eth_source_of(&self, p: &PeerSpec) -> Result<(MacAddr, Ipv4Addr), CheckError> {
        if !p.off_link {
            return Ok((p.mac(false), p.ip()));
        }
        let gw = self
            .scenario
            .gateway
            .ok_or_else(|| self.mismatch(vec!["an off-link peer needs a gateway".into()]))?;
        Ok((self.peer(gw)?.mac(false), p.ip()))
    }

    fn send(&mut self, frame: &Frame) -> Result<Instant, CheckError> {
        let at = self.s.now();
        let step = self.step.clone();
        self.s.send(&step, frame)?;
        Ok(at)
    }

    fn send_arp(&mut self, eth_dst: MacAddr, arp: &ArpIn) -> Result<(), CheckError> {
        let frame = Frame::new(arp.sha, eth_dst, Network::Arp(arp_repr(arp)));
        let at = self.send(&frame)?;
        let delivery = Delivery::classify(eth_dst, self.stack_mac);
        let out = self.model.receive(at, delivery, arp);
        self.pending.extend(out);
        Ok(())
    }

    /// Sends a broken ARP request for the stack and tells the model exactly what was sent.
    fn send_bad_arp(&mut self, p: &PeerSpec, bad: BadArp) -> Result<(), CheckError> {
        let (arp, bytes) = bad_arp_request(p, bad, self.stack_ip, self.model.config().prefix_len);
        let at = self.s.now();
        let step = self.step.clone();
        self.s.send_bytes(&step, &bytes)?;
        let out = self.model.receive(at, Delivery::Broadcast, &arp);
        self.pending.extend(out);
        Ok(())
    }

    /// Reads what the stack does in answer to the last input.
    fn settle(&mut self) -> Result<(), CheckError> {
        let until = self.s.now() + Duration::from_millis(20);
        self.pump(until)
    }

    /// Waits (reading frames) until no critical instant of `ip`'s entry is within GUARD.
    fn clear_of(&mut self, ip: Option<Ipv4Addr>) -> Result<(), CheckError> {
        let Some(ip) = ip else { return Ok(()) };
        // A coarse timer of unknown phase runs anywhere in the window before its instant.
        let window = self.model.timing_window();
        for _ in 0..64 {
            let now = self.s.now();
            let near = self
                .model
                .critical_instants(ip)
                .into_iter()
                .filter(|c| {
                    now.saturating_since(*c) < GUARD + self.lag()
                        && c.saturating_since(now) < GUARD + window
                })
                .max();
            match near {
                Some(c) => self.pump(c + GUARD + self.lag() + Duration::from_millis(1))?,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Reads frames until scenario time `until`, comparing each with the model.
    fn pump(&mut self, until: Instant) -> Result<(), CheckError> {
        loop {
            let step = self.step.clone();
            let Some((_, observed)) = self.s.next_any_frame(&step, until)? else {
                break;
            };
            // Judged by when it left the stack (its own stamp), not by its place in the
            // trace: a frame the stack sent while the harness was late with an answer is
            // read after that answer, and the trace puts it there.
            let at = self.s.last_left();
            self.on_frame(at, &observed)?;
        }
        let out = self.model.advance(until);
        self.pending.extend(out);
        self.check_missing(until)
    }

    /// How much later than predicted a frame may appear: [`LATE`], and for a stack whose
    /// neighbour timers run on a coarse pass ([`TickNud`]: PyTCP, one asyncio loop for its
    /// receive path, its transmit ring and the pass) a pass more: on two busy cores its
    /// request for a ping's sender left 48 ms after the ping.
    fn late_allowance(&self) -> Duration {
        match self.model.config().tick_nud {
            Some(_) => LATE + self.model.config().params.tick,
            None => LATE,
        }
    }

    /// How late the stack's timers may run: as late as they ran so far ([`Runner::late`]),
    /// and for a stack on a coarse pass ([`TickNud`]) a pass more, for a timer the wire
    /// does not show (REACHABLE to STALE, the last request to FAILED).
    fn lag(&self) -> Duration {
        match self.model.config().tick_nud {
            Some(_) => self.late + self.model.config().params.tick,
            None => self.late,
        }
    }

    fn check_missing(&mut self, now: Instant) -> Result<(), CheckError> {
        self.pending.retain(|t| t.output.on_wire());
        if let Some(late) = self
            .pending
            .iter()
            .find(|t| now.saturating_since(t.at) > self.late_allowance())
        {
            return Err(self.mismatch(vec![format!(
                "expected {} at {}, nothing observed by {}",
                late.output,
                ms(late.at),
                ms(now)
            )]));
        }
        Ok(())
    }

    fn seen(&self, observed: &Observed) -> Seen {
        let frame = match &observed.parsed {
            Ok(f) => f,
            Err(e) => return Seen::Other(format!("unparsable frame ({e})")),
        };
        if frame.ethernet.src != self.stack_mac {
            return Seen::Other(format!("frame from another MAC: {}", frame.summary()));
        }
        match &frame.network {
            Network::Arp(a) if a.operation == ArpOperation::Request => {
                let tha = if self.unicast_request_names_target
                    && frame.ethernet.dst != MacAddr::BROADCAST
                {
                    frame.ethernet.dst
                } else {
                    self.request_tha
                };
                if a.sender_mac != self.stack_mac || a.target_mac != tha {
                    return Seen::Other(format!(
                        "ARP request with sender MAC {} and target MAC {}",
                        a.sender_mac, a.target_mac
                    ));
                }
                Seen::Out(Output::Request {
                    target: a.target_ip,
                    eth_dst: frame.ethernet.dst,
                    sender_ip: a.sender_ip,
                })
            }
            Network::Arp(a) if a.operation == ArpOperation::Reply => {
                if a.sender_mac != self.stack_mac || a.target_mac != frame.ethernet.dst {
                    return Seen::Other(format!(
                        "ARP reply with sender MAC {}, target MAC {}, Ethernet destination {}",
                        a.sender_mac, a.target_mac, frame.ethernet.dst
                    ));
                }
                Seen::Out(Output::Reply {
                    to_mac: a.target_mac,
                    to_ip: a.target_ip,
                    for_ip: a.sender_ip,
                })
            }
            Network::Ipv4(p) => {
                let id = match &p.transport {
                    Transport::Icmpv4(m) => match m.kind() {
                        Icmpv4Kind::EchoReply { id: PING_ID, seq } if p.src == self.stack_ip => {
                            Some(PacketId::Local(u32::from(seq)))
                        }
                        Icmpv4Kind::EchoRequest {
                            id: FORWARD_ID,
                            seq,
                        } => Some(PacketId::Forwarded(u32::from(seq))),
                        Icmpv4Kind::DestUnreachable { code: 1, .. } => quoted_echo(&m.payload)
                            .filter(|(id, _)| *id == FORWARD_ID)
                            .map(|(_, seq)| PacketId::HostUnreachable(u32::from(seq))),
                        _ => None,
                    },
                    _ => None,
                };
                match id {
                    Some(id) => Seen::Packet {
                        id,
                        dst: p.dst,
                        dst_mac: frame.ethernet.dst,
                    },
                    None => Seen::Other(frame.summary()),
                }
            }
            _ => Seen::Other(frame.summary()),
        }
    }

    /// Takes the prediction `seen` matches (same output, in time) off the pending list; a
    /// solicitation moves the model's next one to the stack's clock, and its lateness is
    /// measured.
    fn take_pending(&mut self, seen: &Seen, at: Instant) -> bool {
        let early = EARLY + self.model.timing_window();
        let found = self.pending.iter().position(|t| {
            seen_of_output(&t.output).as_ref() == Some(seen)
                && at + early >= t.at
                && at.saturating_since(t.at) <= self.late_allowance()
        });
        let Some(i) = found else { return false };
        let predicted = self.pending.remove(i).at;
        if let Seen::Out(Output::Request { target, .. }) = seen {
            self.late = self.late.max(at.saturating_since(predicted));
            self.model.solicitation_seen(*target, predicted, at);
        }
        true
    }

    fn on_frame(&mut self, at: Instant, observed: &Observed) -> Result<(), CheckError> {
        let seen = self.seen(observed);
        self.frames += 1;
        if !self.take_pending(&seen, at) {
            // A timer the stack ran up to a tick before the model: look ahead.
            let mut ahead = self.model.clone();
            let future = ahead.advance(at + EARLY + self.model.timing_window());
            let hit = future
                .iter()
                .find(|t| seen_of_output(&t.output).as_ref() == Some(&seen))
                .map(|t| t.at);
            match hit {
                Some(when) => {
                    let out = self.model.advance(when);
                    self.pending.extend(out);
                    if !self.take_pending(&seen, at) {
                        return Err(self.unexpected(at, &seen));
                    }
                }
                None => return Err(self.unexpected(at, &seen)),
            }
        }
        // A peer that answers does so at once.
        if let Seen::Out(Output::Request {
            target, eth_dst, ..
        }) = &seen
            && let Some(p) = self
                .scenario
                .peers
                .iter()
                .find(|p| p.ip() == *target && p.answers && !p.off_link)
            && (*eth_dst == MacAddr::BROADCAST
                || *eth_dst == p.mac(false)
                || *eth_dst == p.mac(true))
        {
            let arp = ArpIn::new(2, p.mac(false), p.ip(), self.stack_mac, self.stack_ip);
            self.send_arp(self.stack_mac, &arp)?;
        }
        Ok(())
    }

    fn unexpected(&self, at: Instant, seen: &Seen) -> CheckError {
        let mut differences = vec![format!("unexpected at {}: {seen}", ms(at))];
        let expected: Vec<String> = self
            .pending
            .iter()
            .filter(|t| t.output.on_wire())
            .map(|t| format!("expected at {}: {}", ms(t.at), t.output))
            .collect();
        if expected.is_empty() {
            differences.push("the model expected no frame now".into());
        }
        differences.extend(expected);
        self.mismatch(differences)
    }

    /// Dumps the stack's neighbour table at an instant clear of every timer and compares
    /// it with the model's.
    fn compare_table(&mut self) -> Result<(), CheckError> {
        if self.fixed.as_ref().is_some_and(|f| f.black_box) {
            // No dump: the cache is read on the wire at the end (`read_cache_on_wire`).
            return Ok(());
        }
        for _ in 0..64 {
            let now = self.s.now();
            let near = self
                .model
                .timer_instants()
                .into_iter()
                .filter(|c| {
                    now.saturating_since(*c) < GUARD + self.lag()
                        && c.saturating_since(now) < GUARD + self.model.timing_window()
                })
                .max();
            match near {
                Some(c) => self.pump(c + GUARD + self.lag() + Duration::from_millis(1))?,
                None => break,
            }
        }
        let step = self.step.clone();
        let StateAnswer::Neighbours(kernel) = self.s.query(&step, StateQuery::Neighbours)? else {
            return Err(self.mismatch(vec!["the target answered another query".into()]));
        };
        let now = self.s.now();
        let out = self.model.advance(now);
        self.pending.extend(out);
        let mut observed: Vec<(Ipv4Addr, String)> = kernel
            .iter()
            .filter_map(|e| match e.dst {
                IpAddr::V4(ip) if !matches!(e.state, NudState::Noarp | NudState::Permanent) => {
                    Some((ip, describe_kernel(e.state, e.lladdr, e.probes)))
                }
                _ => None,
            })
            .collect();
        observed.sort();
        let expected: Vec<(Ipv4Addr, String)> = self
            .model
            .entries()
            .into_iter()
            .map(|e| (e.ip, describe_model(e.state, e.mac, e.probes)))
            .collect();
        self.entries += expected.len().max(observed.len());
        if observed == expected {
            return Ok(());
        }
        let mut differences = vec![format!(
            "neighbour table at {} (the stack's timers ran up to {} late so far, measured on its solicitations)",
            ms(now),
            self.late
        )];
        let ips: std::collections::BTreeSet<Ipv4Addr> = observed
            .iter()
            .map(|(ip, _)| *ip)
            .chain(expected.iter().map(|(ip, _)| *ip))
            .collect();
        for ip in ips {
            let find = |v: &[(Ipv4Addr, String)]| {
                v.iter()
                    .find(|(i, _)| *i == ip)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| "no entry".into())
            };
            let (e, o) = (find(&expected), find(&observed));
            if e != o {
                differences.push(format!("{ip}: expected {e}, observed {o}"));
            }
        }
        Err(self.mismatch(differences))
    }

    fn finish(mut self) -> Result<ScenarioOutcome, CheckError> {
        // Let every timer run out (or at most two seconds), then the last comparison.
        self.step = "end".into();
        let mut quiet_until = self.s.now() + Duration::from_millis(50);
        if let Some(last) = self.model.timer_instants().last() {
            quiet_until = quiet_until.max(*last + LATE);
        }
        let mut cap = self.s.now() + Duration::from_millis(2_000);
        if self.model.config().rfc4861.is_some()
            || (self.model.config().tick_nud.is_some()
                && self
                    .model
                    .entries()
                    .iter()
                    .any(|e| matches!(e.state, Nud::Incomplete | Nud::Delay | Nud::Probe)))
        {
            // A fixed delay before probing may outlast two seconds: wait it out and the
            // probes after it (free on a virtual clock).
            let p = self.model.config().params;
            cap = cap
                + p.delay_probe
                + Duration::from_micros(p.retrans.total_micros() * u64::from(p.ucast_probes + 1));
        }
        if self.model.config().tick_nud.is_some() {
            // Only the timers that run within the cap are waited for: a steady scenario's
            // reachable time is minutes on whole-second timers.
            quiet_until = self.s.now() + Duration::from_millis(50);
            for t in self.model.timer_instants() {
                if t <= cap {
                    quiet_until = quiet_until.max(t + LATE);
                }
            }
            // And every frame still expected, for as late as it may come.
            for t in self.pending.iter().filter(|t| t.output.on_wire()) {
                quiet_until =
                    quiet_until.max(t.at + self.late_allowance() + Duration::from_millis(1));
            }
        }
        self.pump(quiet_until.min(cap))?;
        if self.fixed.as_ref().is_some_and(|f| f.black_box) {
            self.read_cache_on_wire()?;
            self.pump(self.s.now() + Duration::from_millis(50))?;
            return Ok(ScenarioOutcome::Agreed {
                frames: self.frames,
                entries: self.entries,
                dropped_waiting: self.model.dropped_waiting(),
            });
        }
        self.compare_table()?;
        if self.model.config().tick_nud.is_some() {
            // The stack did what the model predicted; where that departs from the RFC
            // text, the clause fails.
            let mut differences: Vec<String> = Vec::new();
            for (_, what) in self.model.departures() {
                if !differences.contains(what) {
                    differences.push(what.clone());
                }
            }
            if !differences.is_empty() {
                return Err(self.mismatch(differences));
            }
        }
        if self.model.config().rfc4861.is_some() || self.model.config().tick_nud.is_some() {
            // The reachable time is the base that was set: nothing was drawn.
            return Ok(ScenarioOutcome::Agreed {
                frames: self.frames,
                entries: self.entries,
                dropped_waiting: self.model.dropped_waiting(),
            });
        }
        let step = self.step.clone();
        let k = read_params(self.s, &step)?;
        if Duration::from_millis(k.reachable_ms) != self.model.config().params.reachable {
            self.s.note(format!(
                "the stack drew a new reachable time ({} ms) during the run",
                k.reachable_ms
            ));
            return Ok(ScenarioOutcome::Redrawn);
        }
        Ok(ScenarioOutcome::Agreed {
            frames: self.frames,
            entries: self.entries,
            dropped_waiting: self.model.dropped_waiting(),
        })
    }
}

/// How the neighbour parameters the stack reports (`kept`) depart from what was set
/// (`set`), as `neighbour_params.FIELD: expected X, observed Y`: a time must be kept to
/// within the stack's `tick` ([`ArpParams::time_kept`]), a count exactly; the reachable
/// time, which the stack draws itself, must be one it may draw from the base that was set
/// ([`ArpParams::reachable_may_be_drawn`]). Empty when the stack keeps what was set.
pub fn params_kept(
    set: &NeighbourParamsUpdate,
    kept: &NeighbourParams,
    tick: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    let times = [
        (
            "base_reachable_ms",
            set.base_reachable_ms,
            kept.base_reachable_ms,
        ),
        ("retrans_ms", set.retrans_ms, kept.retrans_ms),
        ("delay_probe_ms", set.delay_probe_ms, kept.delay_probe_ms),
        ("gc_stale_ms", set.gc_stale_ms, kept.gc_stale_ms),
        ("locktime_ms", set.locktime_ms, kept.locktime_ms),
    ];
    for (name, set, kept) in times {
        if let Some(set) = set
            && !ArpParams::time_kept(
                Duration::from_millis(set),
                Duration::from_millis(kept),
                tick,
            )
        {
            out.push(format!(
                "neighbour_params.{name}: expected {set} (set, to within the stack's tick of {} ms), observed {kept}",
                tick.total_millis()
            ));
        }
    }
    let counts = [
        ("ucast_probes", set.ucast_probes, kept.ucast_probes),
        ("mcast_probes", set.mcast_probes, kept.mcast_probes),
        ("app_probes", set.app_probes, kept.app_probes),
        ("mcast_reprobes", set.mcast_reprobes, kept.mcast_reprobes),
    ];
    for (name, set, kept) in counts {
        if let Some(set) = set
            && set != kept
        {
            out.push(format!(
                "neighbour_params.{name}: expected {set} (set), observed {kept}"
            ));
        }
    }
    if let Some(base) = set.base_reachable_ms {
        let base = Duration::from_millis(base);
        let reachable = Duration::from_millis(kept.reachable_ms);
        if !ArpParams::reachable_may_be_drawn(base, reachable, tick) {
            let (low, high) = ArpParams::reachable_range(base);
            out.push(format!(
                "neighbour_params.reachable_ms: expected a time drawn from the base set ({} ms) in [{}, {}) ms, observed {}",
                base.total_millis(),
                low.total_millis(),
                high.total_millis(),
                kept.reachable_ms
            ));
        }
    }
    out
}

fn read_params(s: &mut Session<'_>, step: &str) -> Result<NeighbourParams, CheckError> {
    match s.query(step, StateQuery::NeighbourParams)? {
        StateAnswer::NeighbourParams(p) => Ok(p),
        other => Err(CheckError::WrongAnswer {
            step: step.into(),
            expected: "neighbour parameters".into(),
            observed: format!("{other:?}"),
        }),
    }
}

fn describe_model(state: Nud, mac: Option<MacAddr>, probes: u32) -> String {
    match mac {
        Some(m) => format!("{state} {m} probes {probes}"),
        None => format!("{state} probes {probes}"),
    }
}

fn describe_kernel(state: NudState, mac: Option<MacAddr>, probes: Option<u32>) -> String {
    let name = match state {
        NudState::Incomplete => "INCOMPLETE".to_string(),
        NudState::Reachable => "REACHABLE".into(),
        NudState::Stale => "STALE".into(),
        NudState::Delay => "DELAY".into(),
        NudState::Probe => "PROBE".into(),
        NudState::Failed => "FAILED".into(),
        other => format!("{other:?}").to_uppercase(),
    };
    let probes = probes.unwrap_or(0);
    match mac {
        Some(m) => format!("{name} {m} probes {probes}"),
        None => format!("{name} probes {probes}"),
    }
}

impl ArpScenario {
    /// The kind in files and reports.
    pub const KIND: &'static str = "arp-scenario";
}

impl Scenario for ArpScenario {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn needs(&self) -> Needs {
        super::NEEDS
    }

    fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| serde_json::to_string(s).unwrap_or_else(|e| format!("<{e}>")))
            .collect()
    }

    fn len(&self) -> usize {
        self.steps.len()
    }

    fn without_step(&self, index: usize) -> Box<dyn Scenario> {
        let mut copy = self.clone();
        if index < copy.steps.len() {
            copy.steps.remove(index);
        }
        Box::new(copy)
    }

    fn run(&self, session: &mut Session<'_>) -> Result<Outcome, CheckError> {
        let profile = ArpDeviation::profile(session.profile());
        Ok(match run_arp_scenario(session, self, &profile)? {
            ScenarioOutcome::Agreed {
                frames, entries, ..
            } => Outcome::Agreed {
                summary: format!("{frames} frames and {entries} neighbour entries compared"),
            },
            ScenarioOutcome::Redrawn => Outcome::Inconclusive {
                reason: "the stack drew a new reachable time mid-run; run it again".into(),
            },
        })
    }

    fn to_json(&self) -> serde_json::Value {
        with_kind(Self::KIND, serde_json::to_value(self).unwrap_or_default())
    }

    fn clone_box(&self) -> Box<dyn Scenario> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
