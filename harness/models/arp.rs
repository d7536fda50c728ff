//! ARP and the neighbour cache of one IPv4 host on one Ethernet link.
//!
//! The packet rules are RFC 826's ("Packet Reception"), RFC 1122 §2.3.2 (cache flushing and
//! the queue of packets waiting for a resolution) and RFC 5227 (probes with sender address
//! 0.0.0.0, announcements). The life of a cache entry over time follows the Linux neighbour
//! state machine (NUD states INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED, which
//! Linux borrows from IPv6 neighbour unreachability detection, RFC 4861 §7.3.2): RFC 826
//! and RFC 1122 leave cache validation open ("the recommended method is ... unicast poll"),
//! so the state machine is the profile's, and every place where Linux's packet handling
//! departs from the RFC text is a named [`ArpDeviation`].
//!
//! The model is pure. Time is an input ([`Instant`]); the reachable time the kernel drew at
//! random is an input ([`ArpParams::reachable`]), so every prediction is exact up to the
//! timer tick. Timers fire one tick after their deadline, as a timer wheel that never fires
//! early does; [`ArpHost::critical_instants`] tells a driver where an input would race a
//! timer, so it can keep its inputs clear of them.
//!
//! Outputs are what the host puts on the wire (ARP requests and replies, the IPv4 packets it
//! was asked to send, ICMP host unreachable for forwarded packets whose next hop failed) and,
//! for the harness, what it does silently ([`Output::Discarded`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::models::profile::{Deviation, Profile};
use crate::time::{Duration, Instant};
use crate::wire::MacAddr;

mod bounded;
pub use bounded::{BoundedTable, NEVER};
pub mod one_neighbour;

/// A neighbour entry's state (the kernel's NUD states that an ARP entry passes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Nud {
    /// Resolution in progress: broadcast requests, packets queued.
    Incomplete,
    /// Confirmed within the reachable time.
    Reachable,
    /// A link-layer address, not confirmed lately. Used as is; the first use starts DELAY.
    Stale,
    /// Used while STALE: waiting `delay_probe` for a confirmation before probing.
    Delay,
    /// Unicast probes to the cached address.
    Probe,
    /// Resolution failed; queued packets were dropped.
    Failed,
}

impl Nud {
    /// States that hold a usable link-layer address (`NUD_VALID` without NOARP/PERMANENT).
    pub fn is_valid(self) -> bool {
        matches!(self, Nud::Reachable | Nud::Stale | Nud::Delay | Nud::Probe)
    }

    fn in_timer(self) -> bool {
        matches!(
            self,
            Nud::Incomplete | Nud::Reachable | Nud::Delay | Nud::Probe
        )
    }
}

impl fmt::Display for Nud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Nud::Incomplete => "INCOMPLETE",
            Nud::Reachable => "REACHABLE",
            Nud::Stale => "STALE",
            Nud::Delay => "DELAY",
            Nud::Probe => "PROBE",
            Nud::Failed => "FAILED",
        };
        f.write_str(s)
    }
}

/// Timers and probe counts of the interface (Linux: `ip ntable show dev D name arp_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArpParams {
    /// The reachable time in force: drawn by the stack in [base/2, 3·base/2), read back.
    pub reachable: Duration,
    /// `base_reachable_time`: a MAC change on an unconfirmed entry backdates its
    /// confirmation by twice this.
    pub base_reachable: Duration,
    /// Spacing of solicitations (`retrans_time`).
    pub retrans: Duration,
    /// How long a used STALE entry waits for a confirmation before probing.
    pub delay_probe: Duration,
    /// How long the first answer wins over a different one (`locktime`).
    pub locktime: Duration,
    /// Unicast probes in PROBE (and the count INCOMPLETE starts from).
    pub ucast_probes: u32,
    /// Broadcast requests while INCOMPLETE.
    pub mcast_probes: u32,
    /// Solicitations handed to a user-space daemon (nothing on the wire).
    pub app_probes: u32,
    /// Broadcast requests after the unicast probes in PROBE.
    pub mcast_reprobes: u32,
    /// The stack's clock tick (Linux: one jiffy, 4 ms at HZ=250). Timers fire one tick
    /// after their deadline.
    pub tick: Duration,
    /// The shortest timer the stack arms (Linux: HZ/100, two jiffies at HZ=250).
    pub timer_floor: Duration,
}

impl ArpParams {
    /// The coarsest clock tick a stack may have (HZ=100): a stack that reports a longer one
    /// did not take the setting that measures it.
    pub const MAX_TICK: Duration = Duration::from_millis(10);

    /// The reachable times a stack may draw from `base`, `[low, high)`: base times a random
    /// factor of at least 0.5 and below 1.5 (RFC 4861 §6.3.2, MIN_RANDOM_FACTOR and
    /// MAX_RANDOM_FACTOR, "uniformly-distributed random value"; Linux
    /// `neigh_rand_reach_time`: base/2 plus a random value below base, in jiffies).
    pub fn reachable_range(base: Duration) -> (Duration, Duration) {
        let half = Duration::from_micros(base.total_micros() / 2);
        (half, base + half)
    }

    /// Whether `reachable` is a time a stack whose clock ticks every `tick` may have drawn
    /// from `base` ([`ArpParams::reachable_range`], each bound widened by a tick: the
    /// stack draws and reports in its ticks).
    pub fn reachable_may_be_drawn(base: Duration, reachable: Duration, tick: Duration) -> bool {
        let (low, high) = Self::reachable_range(base);
        reachable + tick > low && reachable < high + tick
    }

    /// Whether a stack whose clock ticks every `tick` keeps the time `set` as `kept`: to
    /// within a tick (Linux keeps whole jiffies: it rounds a time up to the next one and
    /// reports that).
    pub fn time_kept(set: Duration, kept: Duration, tick: Duration) -> bool {
        kept + tick > set && kept < set + tick
    }
}

/// When the stack creates an entry from an unsolicited ARP packet (Linux `arp_accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArpAccept {
    /// 0: never; only requests for one of its addresses create entries.
    Never,
    /// 1: from gratuitous ARP and from replies whose sender address is unicast.
    Always,
    /// 2: as 1, when the sender address is in the subnet of the receiving interface.
    SameSubnet,
}

/// Which requests for its addresses the stack answers (Linux `arp_ignore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArpIgnore {
    /// 0: any local address, whatever interface the request came in on.
    Any,
    /// 1: only addresses configured on the receiving interface.
    OnInterface,
    /// 2: as 1, and only when the sender is in that address's subnet.
    SameSubnet,
    /// 8: none.
    Never,
}

/// The stack's ARP policy knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArpPolicy {
    /// Creation from unsolicited ARP.
    pub accept: ArpAccept,
    /// Which requests are answered.
    pub ignore: ArpIgnore,
}

impl Default for ArpPolicy {
    fn default() -> Self {
        ArpPolicy {
            accept: ArpAccept::Never,
            ignore: ArpIgnore::Any,
        }
    }
}

/// The host the model stands for: one interface, one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConfig {
    /// The interface's MAC.
    pub mac: MacAddr,
    /// The interface's IPv4 address.
    pub addr: Ipv4Addr,
    /// Its prefix length (the on-link subnet).
    pub prefix_len: u8,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Forwards packets not addressed to it (a router).
    pub forwarding: bool,
    /// ARP policy.
    pub policy: ArpPolicy,
    /// Timers.
    pub params: ArpParams,
    /// A cache with a fixed entry lifetime instead of the neighbour state machine (a stack
    /// whose cache cannot be configured: smoltcp); `None`: the Linux state machine.
    #[serde(default)]
    pub expiring: Option<ExpiringCache>,
    /// The neighbour state machine of RFC 4861 §7.3 run for ARP instead of Linux's (a stack
    /// that shares one NUD between ARP and NDP: Netstack3); `None`: Linux's.
    #[serde(default)]
    pub rfc4861: Option<Rfc4861Nud>,
    /// Linux's neighbour states run by one coarse maintenance pass, PyTCP's
    /// ([`TickNud`]); `None`: Linux's timers.
    #[serde(default)]
    pub tick_nud: Option<TickNud>,
}

/// RFC 4861 §7.3's neighbour unreachability detection run for ARP, as Netstack3 does
/// (netstack3-ip `src/device/nud.rs`, netstack3-device `src/arp.rs`). It departs from the
/// Linux state machine where RFC 4861 and Linux differ, none of it a rule of RFC 826 or
/// RFC 1122 (which leave cache validation open):
///
/// - the reachable time is the base reachable time itself (no random factor);
/// - a REACHABLE entry whose time ran out becomes STALE (Linux: DELAY when used lately);
/// - STALE turns DELAY on the first packet sent to it (the packet goes out), DELAY turns
///   PROBE after [`ArpParams::delay_probe`], and PROBE sends `ucast_probes` unicast
///   requests (target hardware address the neighbour's MAC), one per retransmission time;
/// - unanswered, a PROBE entry becomes UNREACHABLE (shown as FAILED with its MAC): packets
///   still go to the cached MAC, and the first one restarts broadcast requests with an
///   exponential back-off (RFC 7048 §4: the retransmission time times 3^n, at most 60 s),
///   one more per timer only when a packet was sent since the last;
/// - an INCOMPLETE entry whose `mcast_probes` broadcast requests went unanswered is removed
///   (Linux keeps it FAILED);
/// - an ARP packet that carries a new MAC for an entry (a request, a gratuitous packet, a
///   broadcast reply) makes it STALE with that MAC, one with the same MAC changes nothing;
///   a reply unicast to the host (a solicited confirmation) makes it REACHABLE, unless it
///   is REACHABLE and was confirmed less than [`Rfc4861Nud::override_lock`] ago;
/// - a resolution completed by anything but a solicited confirmation leaves the entry
///   STALE (its waiting packets go out, and no DELAY starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rfc4861Nud {
    /// A reply unicast to the host for a REACHABLE entry confirmed less than this long ago
    /// is ignored (Netstack3 `ARP_OVERRIDE_LOCK_TIME`, 1 s).
    pub override_lock: Duration,
}

/// The longest back-off between the broadcast requests of an UNREACHABLE entry (RFC 7048
/// §4; Netstack3 `MAX_RETRANS_TIMER`).
pub const RFC4861_MAX_BACKOFF: Duration = Duration::from_millis(60_000);

/// A neighbour cache whose entries live a fixed time from their last fill (RFC 1122
/// §2.3.2.1 mechanism (1), "Timeout"), as smoltcp's (`src/iface/neighbor.rs`): no states,
/// no unicast poll, no retransmission timer. A packet for an address without a live entry
/// sends one broadcast request, unless a request went out within `request_interval` (the
/// flooding prevention RFC 1122 §2.3.2.1 requires), and then waits or is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringCache {
    /// How long an entry lives from its last fill.
    pub lifetime: Duration,
    /// An IPv4 packet for the host from the entry's address and MAC restarts the lifetime
    /// (also of an expired entry, which stays stored).
    pub refreshed_by_traffic: bool,
    /// At most one request per this interval.
    pub request_interval: Duration,
    /// The interval counts per address (else one interval for the whole interface).
    pub rate_limit_per_address: bool,
    /// A packet waiting for a resolution is kept and sent once resolved (else dropped).
    pub queue: bool,
    /// Requests retransmitted on a coarse periodic timer (lwIP's `etharp_tmr`); `None`: one
    /// request per packet, as smoltcp.
    #[serde(default)]
    pub timed: Option<TimedRequests>,
}

/// An expiring cache driven by a coarse periodic timer, as lwIP's `etharp` (lwIP 2.1
/// `src/core/ipv4/etharp.c`, `etharp_tmr` every `ARP_TMR_INTERVAL`):
///
/// - the first packet for an address without an entry sends a broadcast request and makes
///   a pending entry; later packets for it wait without a new request (at most
///   [`TimedRequests::queue_len`], the oldest dropped for a new one);
/// - every tick while the entry is pending sends the request again; on the
///   [`TimedRequests::max_pending`]th tick after its creation the entry is removed with
///   its waiting packets (`ARP_MAXPENDING`);
/// - a resolved entry is removed when its lifetime ends (`ARP_MAXAGE`), and is gone: a
///   later ARP packet that may only update an entry creates none;
/// - an entry used to send within [`TimedRequests::rerequest_unicast`] of its expiry is
///   asked for again before the packet goes (a unicast request to the cached MAC, a
///   broadcast one within [`TimedRequests::rerequest_broadcast`]), at most one such
///   request per two ticks (`ETHARP_STATE_STABLE_REREQUESTING_1/2`).
///
/// The timer's phase is the stack's: it ticks every [`TimedRequests::tick`] from when the
/// stack started, not from when an entry was made. The model puts each tick at the latest
/// instant it can be (a full tick after the event that armed it); the stack's may come up
/// to a tick earlier ([`ArpHost::timing_window`]), and a driver that sees it moves the
/// model's next ticks to the stack's ([`ArpHost::solicitation_seen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedRequests {
    /// The timer's period (`ARP_TMR_INTERVAL`).
    pub tick: Duration,
    /// A pending entry is removed on this tick after it was made (`ARP_MAXPENDING`): it
    /// sends `max_pending - 1` retransmissions.
    pub max_pending: u32,
    /// Packets waiting per pending entry (`ARP_QUEUE_LEN`).
    pub queue_len: usize,
    /// A used entry is re-requested (unicast) from this long before its expiry, if at all.
    pub rerequest_unicast: Option<Duration>,
    /// ... and by broadcast from this long before it.
    pub rerequest_broadcast: Option<Duration>,
}

impl HostConfig {
    fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        }
    }

    /// True when `ip` is in the interface's subnet.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    fn subnet_broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The address class of `ip` as the stack's local routing table sees it.
    fn addr_type(&self, ip: Ipv4Addr) -> AddrType {
        if ip == self.addr {
            AddrType::Local
        } else if ip.is_multicast() {
            AddrType::Multicast
        } else if ip.is_broadcast()
            || ip.octets()[0] == 0
            || (self.prefix_len < 31 && ip == self.subnet_broadcast())
        {
            AddrType::Broadcast
        } else {
            AddrType::Unicast
        }
    }

    /// The next hop towards `dst`: itself when on-link, else the gateway.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.on_link(dst) {
            Some(dst)
        } else {
            self.gateway
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrType {
    Local,
    Unicast,
    Broadcast,
    Multicast,
}

/// Where the RFC text and Linux part ways in handling ARP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ArpDeviation {
    /// RFC 826 "Packet Reception": the sender hardware address of an existing entry is
    /// updated from every ARP packet. Linux keeps the first address against a different one
    /// for `locktime` after the entry last changed, unless the packet is gratuitous or a
    /// request for one of its own addresses ("use the FIRST one ... prevents arp
    /// thrashing").
    Locktime,
    /// RFC 826: "?Am I the target protocol address? Yes: If Merge_flag is false, add the
    /// triplet" — for replies too. Linux (with `arp_accept` 0) creates no entry from an
    /// unsolicited reply.
    NoEntryFromUnsolicitedReply,
    /// RFC 1812 §3.3.2: a router "MUST not believe any ARP reply that claims that the Link
    /// Layer address of another host or router is a broadcast or multicast address"; zero
    /// is no station's address either. Linux caches whatever sender hardware address an ARP
    /// packet carries.
    CachesNonUnicastHardwareAddress,
    /// RFC 1122 §3.2.1.3: a directed broadcast address "MUST NOT be used as a source
    /// address", so a request claiming the subnet's broadcast address as its sender is bogus.
    /// Linux answers it (to the sender hardware address, with the broadcast address as target
    /// protocol address) and keeps a NOARP entry, which a dump of learned entries does not
    /// show.
    AnswersSubnetBroadcastSender,
}

/// A profile: the deviations from the RFC text the model accepts (the one profile type,
/// [`Profile`], over [`ArpDeviation`]).
pub type ArpProfile = Profile<ArpDeviation>;

impl Deviation for ArpDeviation {
    const MODEL: &'static str = "arp";
    const ALL: &'static [ArpDeviation] = &[
        ArpDeviation::Locktime,
        ArpDeviation::NoEntryFromUnsolicitedReply,
        ArpDeviation::CachesNonUnicastHardwareAddress,
        ArpDeviation::AnswersSubnetBroadcastSender,
    ];
    /// Linux 6.x: every deviation.
    const LINUX: &'static [ArpDeviation] = Self::ALL;

    fn section(self) -> &'static str {
        match self {
            ArpDeviation::Locktime | ArpDeviation::NoEntryFromUnsolicitedReply => {
                "RFC 826, Packet Reception"
            }
            ArpDeviation::CachesNonUnicastHardwareAddress => "RFC 1812 §3.3.2",
            ArpDeviation::AnswersSubnetBroadcastSender => "RFC 1122 §3.2.1.3",
        }
    }

    fn instead(self) -> &'static str {
        match self {
            ArpDeviation::Locktime => {
                "keeps an entry's address against a different one for locktime after a change"
            }
            ArpDeviation::NoEntryFromUnsolicitedReply => {
                "creates no entry from an unsolicited reply (arp_accept 0)"
            }
            ArpDeviation::CachesNonUnicastHardwareAddress => {
                "caches a broadcast, multicast or zero sender hardware address"
            }
            ArpDeviation::AnswersSubnetBroadcastSender => {
                "answers a request whose sender is the subnet's broadcast address"
            }
        }
    }
}

/// How a frame reached the host (the Ethernet destination as the host classifies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Delivery {
    /// Unicast to the host's MAC.
    Unicast,
    /// To the broadcast address.
    Broadcast,
    /// To a multicast address.
    Multicast,
    /// Unicast to another station's MAC: not for this host.
    OtherHost,
}

impl Delivery {
    /// Classifies an Ethernet destination as seen by a host with MAC `own`.
    pub fn classify(dst: MacAddr, own: MacAddr) -> Delivery {
        if dst == own {
            Delivery::Unicast
        } else if dst == MacAddr::BROADCAST {
            Delivery::Broadcast
        } else if dst.0[0] & 1 == 1 {
            Delivery::Multicast
        } else {
            Delivery::OtherHost
        }
    }
}

/// An ARP packet as it arrived, every field as sent (lengths may be wrong).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArpIn {
    /// Hardware type (1 Ethernet, 6 IEEE 802).
    pub hw_type: u16,
    /// Protocol type (0x0800).
    pub proto_type: u16,
    /// Hardware address length as declared.
    pub hw_len: u8,
    /// Protocol address length as declared.
    pub proto_len: u8,
    /// Operation code.
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
    /// The body was shorter than its declared lengths.
    pub truncated: bool,
}

impl ArpIn {
    /// A well-formed Ethernet/IPv4 ARP packet.
    pub fn new(op: u16, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> ArpIn {
        ArpIn {
            hw_type: 1,
            proto_type: 0x0800,
            hw_len: 6,
            proto_len: 4,
            op,
            sha,
            spa,
            tha,
            tpa,
            truncated: false,
        }
    }
}

/// A packet the host sends, named by the driver so that it can recognise it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PacketId {
    /// The host's own traffic (e.g. an echo reply), numbered by the driver.
    Local(u32),
    /// A packet the host forwards, numbered by the driver.
    Forwarded(u32),
    /// The ICMP host unreachable the host sends about forwarded packet `n`.
    HostUnreachable(u32),
}

/// An IPv4 packet waiting for (or sent with) a link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet {
    /// The driver's name for it.
    pub id: PacketId,
    /// Source address (the original sender for forwarded packets).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
}

/// What the host does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Output {
    /// An ARP request for `target` (Ethernet destination `eth_dst`: broadcast while
    /// resolving, the cached MAC when probing), sender `sender_ip`, target MAC zero.
    Request {
        /// The address asked for.
        target: Ipv4Addr,
        /// Broadcast, or the cached MAC for a unicast probe.
        eth_dst: MacAddr,
        /// The sender protocol address.
        sender_ip: Ipv4Addr,
    },
    /// An ARP reply to `to_mac`/`to_ip` saying `for_ip` is at the host's MAC.
    Reply {
        /// Destination MAC (the request's sender hardware address).
        to_mac: MacAddr,
        /// Target protocol address (the request's sender address; 0.0.0.0 for a probe).
        to_ip: Ipv4Addr,
        /// The address asked for.
        for_ip: Ipv4Addr,
    },
    /// An IPv4 packet leaves for `next_hop` at `dst_mac`.
    Transmit {
        /// The packet.
        packet: Packet,
        /// The neighbour it was sent to.
        next_hop: Ipv4Addr,
        /// Its link-layer address.
        dst_mac: MacAddr,
    },
    /// Nothing on the wire: the host dropped a packet or an ARP frame, or asked a daemon.
    Discarded {
        /// What was dropped or done, and why.
        what: String,
    },
}

impl Output {
    /// True for outputs that put a frame on the wire.
    pub fn on_wire(&self) -> bool {
        !matches!(self, Output::Discarded { .. })
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Request {
                target,
                eth_dst,
                sender_ip,
            } => {
                let how = if *eth_dst == MacAddr::BROADCAST {
                    "broadcast".to_string()
                } else {
                    format!("unicast to {eth_dst}")
                };
                write!(f, "ARP who-has {target} tell {sender_ip} ({how})")
            }
            Output::Reply {
                to_mac,
                to_ip,
                for_ip,
            } => write!(
                f,
                "ARP reply {for_ip} is-at <own MAC> to {to_ip} ({to_mac})"
            ),
            Output::Transmit {
                packet,
                next_hop,
                dst_mac,
            } => write!(
                f,
                "{:?} {} > {} via {next_hop} at {dst_mac}",
                packet.id, packet.src, packet.dst
            ),
            Output::Discarded { what } => write!(f, "(silent) {what}"),
        }
    }
}

/// An output with the time the host produces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// When (for timer-driven outputs: the deadline plus one tick).
    pub at: Instant,
    /// What.
    pub output: Output,
}

/// What a driver can see of an entry (what a neighbour-table dump shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// The neighbour's address.
    pub ip: Ipv4Addr,
    /// Its state.
    pub state: Nud,
    /// Its link-layer address; only shown in valid states.
    pub mac: Option<MacAddr>,
    /// Solicitations sent in the current INCOMPLETE or PROBE run (Linux `NDA_PROBES`;
    /// INCOMPLETE counts from `ucast_probes`).
    pub probes: u32,
}

/// Time inside the model: µs, signed (a confirmation can be backdated before time zero).
type T = i64;

fn t_of(i: Instant) -> T {
    i.total_micros() as T
}

fn d_of(d: Duration) -> T {
    d.total_micros() as T
}

fn instant_of(t: T) -> Instant {
    Instant::from_micros(t.max(0) as u64)
}

#[derive(Debug, Clone)]
struct Entry {
    state: Nud,
    mac: Option<MacAddr>,
    confirmed: T,
    used: T,
    updated: T,
    probes: u32,
    /// The kernel's deadline; the timer runs one tick later.
    timer: Option<T>,
    queue: Vec<Packet>,
    /// The cached link-layer header exists: sends in a connected state bypass the
    /// neighbour code and do not mark the entry used.
    header_cached: bool,
    /// [`ExpiringCache`]: when the entry stops being found.
    expires: Option<T>,
    /// [`Rfc4861Nud`] UNREACHABLE: a packet was sent since the last broadcast request.
    packet_sent: bool,
}

impl Entry {
    /// A fresh entry in `state` at `now`: no MAC, no probes, no timer, nothing waiting.
    fn new(state: Nud, now: T) -> Entry {
        Entry {
            state,
            mac: None,
            confirmed: now,
            used: now,
            updated: now,
            probes: 0,
            timer: None,
            queue: Vec::new(),
            header_cached: false,
            expires: None,
            packet_sent: false,
        }
    }
}

/// The ARP model of one host.
#[derive(Debug, Clone)]
pub struct ArpHost {
    config: HostConfig,
    profile: ArpProfile,
    entries: BTreeMap<Ipv4Addr, Entry>,
    /// When each entry's timer last ran: a transition the wire does not show (REACHABLE
    /// to STALE) is as ambiguous just after its instant as just before it.
    last_runs: BTreeMap<Ipv4Addr, T>,
    now: T,
    /// [`ExpiringCache`]: no request before this instant (per address, or under the
    /// unspecified address for the whole interface).
    silent_until: BTreeMap<Ipv4Addr, T>,
    /// Packets dropped because their next hop was unresolved.
    dropped_waiting: u32,
    /// [`TickNud`]: the departures from the RFC text seen so far (clause id, what).
    departures: Vec<(&'static str, String)>,
    /// A table of a fixed size replaced round robin ([`BoundedTable`]), if the host has one.
    bounded: Option<BoundedTable>,
    /// Its slots.
    slots: bounded::Slots,
}

impl ArpHost {
    /// A host with an empty cache at time zero.
    pub fn new(config: HostConfig, profile: ArpProfile) -> ArpHost {
        ArpHost {
            config,
            profile,
            entries: BTreeMap::new(),
            last_runs: BTreeMap::new(),
            now: 0,
            silent_until: BTreeMap::new(),
            dropped_waiting: 0,
            departures: Vec::new(),
            bounded: None,
            slots: bounded::Slots::default(),
        }
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The cache as a dump shows it, ordered by address.
    ///
    /// With an [`ExpiringCache`] a live entry shows as REACHABLE, an expired one (still
    /// stored) as STALE, one waiting for its first answer as INCOMPLETE.
    pub fn entries(&self) -> Vec<EntryView> {
        self.entries
            .iter()
            .map(|(ip, e)| self.view(*ip, e))
            .collect()
    }

    /// What a dump shows of entry `e`, the entry for `ip`.
    fn view(&self, ip: Ipv4Addr, e: &Entry) -> EntryView {
        if self.config.rfc4861.is_some() || self.config.tick_nud.is_some() {
            // UNREACHABLE keeps its MAC; no probe count is reported.
            return EntryView {
                ip,
                state: e.state,
                mac: e.mac.filter(|_| e.state != Nud::Incomplete),
                probes: 0,
            };
        }
        let state = match e.expires {
            Some(t) if self.now < t => Nud::Reachable,
            Some(_) => Nud::Stale,
            None => e.state,
        };
        EntryView {
            ip,
            state,
            mac: if state.is_valid() { e.mac } else { None },
            probes: e.probes,
        }
    }

    /// [`ExpiringCache`]: when the entry of `ip` stops being found, if it has a MAC.
    pub fn expires(&self, ip: Ipv4Addr) -> Option<Instant> {
        let e = self.entries.get(&ip)?;
        e.mac?;
        e.expires.map(instant_of)
    }

    /// Packets dropped so far because their next hop was not resolved (an
    /// [`ExpiringCache`] without a queue, or one whose requests were rate-limited).
    pub fn dropped_waiting(&self) -> u32 {
        self.dropped_waiting
    }

    /// An IPv4 packet for the host arrives at `now` from `src` at `mac`: with an
    /// [`ExpiringCache`] refreshed by traffic, the entry of `src` holding `mac` lives
    /// another lifetime (smoltcp `reset_expiry_if_existing`). Nothing otherwise: the Linux
    /// state machine takes no confirmation from a received packet.
    pub fn ip_received(&mut self, now: Instant, src: Ipv4Addr, mac: MacAddr) -> Vec<Timed> {
        let out = self.advance(now);
        if let Some(x) = self.config.expiring
            && x.refreshed_by_traffic
            && let Some(e) = self.entries.get_mut(&src)
            && e.mac == Some(mac)
        {
            e.expires = Some(self.now + d_of(x.lifetime));
        }
        out
    }

    /// [`ExpiringCache`]: the first instant a request for `ip` may go out.
    fn silent_key(&self, ip: Ipv4Addr) -> Ipv4Addr {
        match self.config.expiring {
            Some(x) if x.rate_limit_per_address => ip,
            _ => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// How much earlier than the model's instant a timer of the stack may run: the period
    /// of a coarse timer whose phase the model does not know ([`TimedRequests`]), else 0.
    pub fn timing_window(&self) -> Duration {
        if self.config.tick_nud.is_some() {
            return self.config.params.tick;
        }
        match self.config.expiring.and_then(|x| x.timed) {
            Some(t) => t.tick,
            None => Duration::ZERO,
        }
    }

    /// The entry for `ip`, if any (as [`ArpHost::entries`] shows it).
    pub fn entry(&self, ip: Ipv4Addr) -> Option<EntryView> {
        self.entries.get(&ip).map(|e| self.view(ip, e))
    }

    /// When the next timer runs, if one is armed.
    pub fn next_timer(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| e.timer)
            .min()
            .map(|t| instant_of(t + self.tick()))
    }

    /// The instants around which the outcome of an input concerning `ip` depends on
    /// sub-tick timing: its timer, the last time its timer ran, the end of its locktime, and
    /// (while REACHABLE) the last moment a use still turns the expiry into DELAY. A driver
    /// keeps its inputs clear of them by more than the timing uncertainty (a stack's timer
    /// may run after the model's, so the instant just passed counts too).
    pub fn critical_instants(&self, ip: Ipv4Addr) -> Vec<Instant> {
        if self.config.tick_nud.is_some() {
            return self.tick_critical(ip);
        }
        if self.config.expiring.is_some() {
            // The entry's expiry and the end of the request rate limit.
            let mut out: Vec<T> = self
                .entries
                .get(&ip)
                .and_then(|e| e.expires)
                .into_iter()
                .collect();
            out.extend(self.silent_until.get(&self.silent_key(ip)).copied());
            if let Some(t) = self.config.expiring.and_then(|x| x.timed)
                && let Some(e) = self.entries.get(&ip)
            {
                // The pending entry's next tick, and where a use starts re-requesting.
                out.extend(e.timer.map(|t| t + self.tick()));
                if let Some(x) = e.expires {
                    for w in [t.rerequest_unicast, t.rerequest_broadcast]
                        .into_iter()
                        .flatten()
                    {
                        out.push(x - d_of(w));
                    }
                }
            }
            return out
                .into_iter()
                .filter(|t| *t >= 0)
                .map(instant_of)
                .collect();
        }
        let Some(e) = self.entries.get(&ip) else {
            return Vec::new();
        };
        let p = &self.config.params;
        let mut out: Vec<T> = self.last_runs.get(&ip).copied().into_iter().collect();
        if let Some(n) = self.config.rfc4861 {
            // Its timer, and the end of the override lock of a REACHABLE entry.
            out.extend(e.timer.map(|t| t + self.tick()));
            if e.state == Nud::Reachable {
                out.push(e.confirmed + d_of(n.override_lock));
            }
            return out
                .into_iter()
                .filter(|t| *t >= 0)
                .map(instant_of)
                .collect();
        }
        if let Some(t) = e.timer {
            out.push(t + self.tick());
            if e.state == Nud::Reachable {
                out.push(t + self.tick() - d_of(p.delay_probe));
            }
        }
        out.push(e.updated + d_of(p.locktime));
        out.into_iter()
            .filter(|t| *t >= 0)
            .map(instant_of)
            .collect()
    }

    /// When each armed timer runs, and when each entry's timer last ran: the instants
    /// around which a dump of the cache is ambiguous (the model has run a timer the stack
    /// may not have yet).
    pub fn timer_instants(&self) -> Vec<Instant> {
        let tick = self.tick();
        let mut v: Vec<Instant> = self
            .entries
            .values()
            .filter_map(|e| e.timer.map(|t| instant_of(t + tick)))
            .chain(self.last_runs.values().map(|t| instant_of(*t)))
            .collect();
        v.sort();
        v
    }

    fn tick(&self) -> T {
        d_of(self.config.params.tick)
    }

    /// The stack sent the solicitation for `ip` that the model made at `predicted` at
    /// `observed` instead: the entry's next retransmission moves by the same amount.
    ///
    /// A stack arms the next solicitation relative to the moment it sent this one (Linux:
    /// `neigh_timer_handler` and `__neigh_event_send` compute `next` from the `jiffies` they
    /// run at), so a timer that ran late on a loaded machine makes every later one late by
    /// as much. The model follows the stack's clock from the solicitations it sees instead
    /// of letting the lateness add up over a run of probes. It changes nothing outside
    /// INCOMPLETE and PROBE (the only states that solicit), and nothing when no timer is
    /// armed.
    pub fn solicitation_seen(&mut self, ip: Ipv4Addr, predicted: Instant, observed: Instant) {
        let shift = t_of(observed) - t_of(predicted);
        if let Some(e) = self.entries.get_mut(&ip)
            && matches!(e.state, Nud::Incomplete | Nud::Probe)
            && let Some(t) = e.timer.as_mut()
        {
            *t += shift;
        }
    }

    /// Runs every timer due by `now`, in time order, and returns what the host did.
    pub fn advance(&mut self, now: Instant) -> Vec<Timed> {
        let now = t_of(now).max(self.now);
        let mut out = Vec::new();
        loop {
            let tick = self.tick();
            let due = self
                .entries
                .iter()
                .filter_map(|(ip, e)| e.timer.map(|t| (t + tick, *ip)))
                .filter(|(t, _)| *t <= now)
                .min();
            let Some((at, ip)) = due else { break };
            self.now = at;
            self.last_runs.insert(ip, at);
            self.timer_fired(ip, &mut out);
        }
        self.now = now;
        if self.config.expiring.is_some_and(|x| x.timed.is_some()) {
            // lwIP frees an entry whose age reached ARP_MAXAGE: nothing is left to update.
            self.entries
                .retain(|_, e| !(e.mac.is_some() && e.expires.is_some_and(|x| x <= now)));
        }
        out
    }

    /// The host is asked to send `packet` at `now` (its own traffic, or one it forwards).
    pub fn send(&mut self, now: Instant, packet: Packet) -> Vec<Timed> {
        let mut out = self.advance(now);
        self.output_packet(packet, &mut out);
        out
    }

    /// An ARP packet arrives at `now`.
    pub fn receive(&mut self, now: Instant, delivery: Delivery, arp: &ArpIn) -> Vec<Timed> {
        let mut out = self.advance(now);
        self.arp_process(delivery, arp, &mut out);
        out
    }

    fn emit(&self, out: &mut Vec<Timed>, output: Output) {
        out.push(Timed {
            at: instant_of(self.now),
            output,
        });
    }

    fn discard(&self, out: &mut Vec<Timed>, what: String) {
        self.emit(out, Output::Discarded { what });
    }

    // ---- sending -----------------------------------------------------------------------

    fn output_packet(&mut self, packet: Packet, out: &mut Vec<Timed>) {
        let Some(hop) = self.config.next_hop(packet.dst) else {
            self.discard(
                out,
                format!(
                    "{:?} to {}: no route (network unreachable)",
                    packet.id, packet.dst
                ),
            );
            return;
        };
        if let Some(x) = self.config.expiring {
            self.expiring_output(hop, packet, x, out);
            return;
        }
        if self.config.rfc4861.is_some() {
            self.rfc4861_output(hop, packet, out);
            return;
        }
        if let Some(n) = self.config.tick_nud {
            self.tick_output(hop, packet, n, out);
            return;
        }
        let now = self.now;
        let base = d_of(self.config.params.base_reachable);
        let e = self.entries.entry(hop).or_insert_with(|| Entry {
            // Failed stands for NONE: neither valid nor in a timer.
            confirmed: now - 2 * base,
            ..Entry::new(Nud::Failed, now)
        });
        if e.state == Nud::Reachable && e.header_cached {
            // Fast path: the cached header, no neighbour bookkeeping.
            let mac = e.mac.unwrap_or(MacAddr::ZERO);
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: hop,
                    dst_mac: mac,
                },
            );
            return;
        }
        self.resolve_output(hop, packet, out);
    }

    /// [`ExpiringCache`]: send to a live entry; else one broadcast request unless the rate
    /// limit holds, and the packet waits (`queue`) or is dropped.
    fn expiring_output(
        &mut self,
        hop: Ipv4Addr,
        packet: Packet,
        x: ExpiringCache,
        out: &mut Vec<Timed>,
    ) {
        if let Some(t) = x.timed {
            self.timed_output(hop, packet, t, x.queue, out);
            return;
        }
        let now = self.now;
        if let Some(e) = self.entries.get(&hop)
            && let (Some(mac), Some(expires)) = (e.mac, e.expires)
            && now < expires
        {
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: hop,
                    dst_mac: mac,
                },
            );
            return;
        }
        let key = self.silent_key(hop);
        let silent = self.silent_until.get(&key).copied().unwrap_or(T::MIN);
        if now < silent {
            self.discard(
                out,
                format!(
                    "no request for {hop}: one went out less than {} ago",
                    x.request_interval
                ),
            );
        } else {
            self.emit(
                out,
                Output::Request {
                    target: hop,
                    eth_dst: MacAddr::BROADCAST,
                    sender_ip: self.config.addr,
                },
            );
            self.silent_until
                .insert(key, now + d_of(x.request_interval));
        }
        // The entry the answer will fill (a reply to a request is solicited).
        let e = self
            .entries
            .entry(hop)
            .or_insert_with(|| Entry::new(Nud::Incomplete, now));
        if x.queue {
            e.queue.push(packet);
        } else {
            self.dropped_waiting += 1;
            self.discard(
                out,
                format!("{:?} to {hop} dropped: {hop} is not resolved", packet.id),
            );
        }
    }

    /// [`TimedRequests`] (lwIP `etharp_output` and `etharp_query`): a live entry sends at
    /// once, re-requested first near its expiry; a pending one queues; none makes a pending
    /// entry with one broadcast request.
    fn timed_output(
        &mut self,
        hop: Ipv4Addr,
        packet: Packet,
        t: TimedRequests,
        queue: bool,
        out: &mut Vec<Timed>,
    ) {
        let now = self.now;
        let sender_ip = self.config.addr;
        if let Some(e) = self.entries.get(&hop)
            && let (Some(mac), Some(expires)) = (e.mac, e.expires)
            && now < expires
        {
            let silent = self.silent_until.get(&hop).copied().unwrap_or(T::MIN);
            let eth_dst = match (t.rerequest_unicast, t.rerequest_broadcast) {
                (_, Some(b)) if now >= expires - d_of(b) => Some(MacAddr::BROADCAST),
                (Some(u), _) if now >= expires - d_of(u) => Some(mac),
                _ => None,
            };
            if let Some(eth_dst) = eth_dst
                && now >= silent
            {
                self.emit(
                    out,
                    Output::Request {
                        target: hop,
                        eth_dst,
                        sender_ip,
                    },
                );
                self.silent_until.insert(hop, now + 2 * d_of(t.tick));
            }
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: hop,
                    dst_mac: mac,
                },
            );
            return;
        }
        if self.entries.get(&hop).is_none_or(|e| e.mac.is_some()) {
            // No entry (an expired one is gone): a pending entry and its request.
            self.silent_until.remove(&hop);
            self.entries.insert(
                hop,
                Entry {
                    timer: Some(now + d_of(t.tick) - self.tick()),
                    ..Entry::new(Nud::Incomplete, now)
                },
            );
            self.emit(
                out,
                Output::Request {
                    target: hop,
                    eth_dst: MacAddr::BROADCAST,
                    sender_ip,
                },
            );
        }
        let Some(e) = self.entries.get_mut(&hop) else {
            return;
        };
        if !queue {
            self.dropped_waiting += 1;
            self.discard(
                out,
                format!("{:?} to {hop} dropped: {hop} is not resolved", packet.id),
            );
            return;
        }
        e.queue.push(packet);
        if e.queue.len() > t.queue_len {
            let old = e.queue.remove(0);
            self.dropped_waiting += 1;
            self.discard(
                out,
                format!(
                    "{:?} to {hop} dropped: the queue holds {}",
                    old.id, t.queue_len
                ),
            );
        }
    }

    /// [`TimedRequests`] (lwIP `etharp_tmr`): a tick of a pending entry's timer.
    fn timed_tick(&mut self, ip: Ipv4Addr, t: TimedRequests, out: &mut Vec<Timed>) {
        let sender_ip = self.config.addr;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        e.timer = None;
        if e.mac.is_some() {
            return;
        }
        e.probes += 1;
        if e.probes >= t.max_pending {
            let dropped = self.entries.remove(&ip).map_or(0, |e| e.queue.len());
            self.dropped_waiting += dropped as u32;
            self.discard(
                out,
                format!(
                    "{ip} unresolved after {} ticks: entry and {dropped} waiting packet(s) dropped",
                    t.max_pending
                ),
            );
            return;
        }
        e.timer = e.timer.or(Some(
            self.now + d_of(t.tick) - d_of(self.config.params.tick),
        ));
        self.emit(
            out,
            Output::Request {
                target: ip,
                eth_dst: MacAddr::BROADCAST,
                sender_ip,
            },
        );
    }

    /// [`ExpiringCache`]: the entry of `ip` is filled with `mac` for another lifetime (made
    /// if missing); the packets waiting for it leave.
    fn fill(&mut self, ip: Ipv4Addr, mac: MacAddr, x: ExpiringCache, out: &mut Vec<Timed>) {
        self.bounded_admit(ip);
        let now = self.now;
        let e = self
            .entries
            .entry(ip)
            .or_insert_with(|| Entry::new(Nud::Reachable, now));
        e.state = Nud::Reachable;
        e.mac = Some(mac);
        e.updated = now;
        e.confirmed = now;
        e.expires = Some(now + d_of(x.lifetime));
        if x.timed.is_some() {
            // A pending entry stops ticking; a re-requesting one is STABLE again.
            e.timer = None;
            e.probes = 0;
            self.silent_until.remove(&ip);
        }
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        let queue = std::mem::take(&mut e.queue);
        for packet in queue {
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: ip,
                    dst_mac: mac,
                },
            );
        }
    }

    /// `neigh_resolve_output`: mark the entry used, start or continue resolution, send when
    /// the entry is valid, queue while INCOMPLETE.
    fn resolve_output(&mut self, hop: Ipv4Addr, packet: Packet, out: &mut Vec<Timed>) {
        let queued = self.event_send(hop, Some(packet), out);
        if queued {
            return;
        }
        let Some(e) = self.entries.get_mut(&hop) else {
            return;
        };
        e.header_cached = true;
        let mac = e.mac.unwrap_or(MacAddr::ZERO);
        self.emit(
            out,
            Output::Transmit {
                packet,
                next_hop: hop,
                dst_mac: mac,
            },
        );
    }

    /// `neigh_event_send`; true when the packet was queued (not sent now).
    fn event_send(&mut self, hop: Ipv4Addr, packet: Option<Packet>, out: &mut Vec<Timed>) -> bool {
        let now = self.now;
        let p = self.config.params;
        let Some(e) = self.entries.get_mut(&hop) else {
            return true;
        };
        e.used = now;
        match e.state {
            Nud::Reachable | Nud::Delay | Nud::Probe => return false,
            Nud::Stale => {
                e.state = Nud::Delay;
                e.updated = now;
                e.timer = Some(now + d_of(p.delay_probe));
                return false;
            }
            Nud::Failed => {
                if p.mcast_probes + p.app_probes == 0 {
                    self.discard(out, format!("no probes allowed: {hop} fails at once"));
                    return true;
                }
                e.probes = p.ucast_probes;
                e.state = Nud::Incomplete;
                e.updated = now;
                e.timer = Some(now + d_of(p.retrans).max(d_of(p.timer_floor)));
                if let Some(pk) = packet {
                    e.queue.push(pk);
                }
                self.solicit(hop, out);
                return true;
            }
            Nud::Incomplete => {}
        }
        if let Some(pk) = packet {
            e.queue.push(pk);
        }
        true
    }

    /// `neigh_probe` + `arp_solicit`: one solicitation, then the count goes up.
    fn solicit(&mut self, hop: Ipv4Addr, out: &mut Vec<Timed>) {
        let p = self.config.params;
        let sender_ip = self.config.addr;
        let Some(e) = self.entries.get_mut(&hop) else {
            return;
        };
        let probes = e.probes;
        e.probes += 1;
        let mac = e.mac;
        if probes < p.ucast_probes {
            self.emit(
                out,
                Output::Request {
                    target: hop,
                    eth_dst: mac.unwrap_or(MacAddr::ZERO),
                    sender_ip,
                },
            );
        } else if probes < p.ucast_probes + p.app_probes {
            self.discard(out, format!("solicitation for {hop} handed to a daemon"));
        } else {
            self.emit(
                out,
                Output::Request {
                    target: hop,
                    eth_dst: MacAddr::BROADCAST,
                    sender_ip,
                },
            );
        }
    }

    fn max_probes(&self, state: Nud) -> u32 {
        let p = &self.config.params;
        p.ucast_probes
            + p.app_probes
            + if state == Nud::Probe {
                p.mcast_reprobes
            } else {
                p.mcast_probes
            }
    }

    /// `neigh_timer_handler`, at `self.now` (deadline plus one tick).
    fn timer_fired(&mut self, ip: Ipv4Addr, out: &mut Vec<Timed>) {
        if let Some(t) = self.config.expiring.and_then(|x| x.timed) {
            self.timed_tick(ip, t, out);
            return;
        }
        if self.config.rfc4861.is_some() {
            self.rfc4861_timer(ip, out);
            return;
        }
        if self.config.tick_nud.is_some() {
            self.tick_timer(ip, out);
            return;
        }
        let now = self.now;
        let p = self.config.params;
        let floor = d_of(p.timer_floor);
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        e.timer = None;
        let mut next = now + 1_000_000;
        match e.state {
            Nud::Reachable => {
                if now <= e.confirmed + d_of(p.reachable) {
                    next = e.confirmed + d_of(p.reachable);
                } else if now <= e.used + d_of(p.delay_probe) {
                    e.state = Nud::Delay;
                    e.updated = now;
                    next = now + d_of(p.delay_probe);
                } else {
                    e.state = Nud::Stale;
                    e.updated = now;
                }
            }
            Nud::Delay => {
                if now <= e.confirmed + d_of(p.delay_probe) {
                    e.state = Nud::Reachable;
                    e.updated = now;
                    next = e.confirmed + d_of(p.reachable);
                } else {
                    e.state = Nud::Probe;
                    e.updated = now;
                    e.probes = 0;
                    next = now + d_of(p.retrans).max(floor);
                }
            }
            Nud::Incomplete | Nud::Probe => {
                next = now + d_of(p.retrans).max(floor);
            }
            Nud::Stale | Nud::Failed => return,
        }
        let state = e.state;
        let probes = e.probes;
        if matches!(state, Nud::Incomplete | Nud::Probe) && probes >= self.max_probes(state) {
            self.fail(ip, out);
            return;
        }
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        if e.state.in_timer() {
            e.timer = Some(next.max(now + floor));
        }
        if matches!(e.state, Nud::Incomplete | Nud::Probe) {
            self.solicit(ip, out);
        }
    }

    /// Resolution failed (`neigh_invalidate`): queued packets are dropped; a forwarded one
    /// brings an ICMP host unreachable to its source (RFC 1812 §5.2.7.1, RFC 792).
    fn fail(&mut self, ip: Ipv4Addr, out: &mut Vec<Timed>) {
        let now = self.now;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        e.state = Nud::Failed;
        e.updated = now;
        e.timer = None;
        let queue = std::mem::take(&mut e.queue);
        for packet in queue {
            match packet.id {
                PacketId::Forwarded(n) => {
                    self.discard(out, format!("{:?} dropped: {ip} did not answer", packet.id));
                    let error = Packet {
                        id: PacketId::HostUnreachable(n),
                        src: self.config.addr,
                        dst: packet.src,
                    };
                    self.output_packet(error, out);
                }
                _ => self.discard(
                    out,
                    format!(
                        "{:?} dropped: {ip} did not answer (the error goes to the host itself)",
                        packet.id
                    ),
                ),
            }
        }
    }

    // ---- receiving ---------------------------------------------------------------------

    fn arp_process(&mut self, delivery: Delivery, arp: &ArpIn, out: &mut Vec<Timed>) {
        if self.config.tick_nud.is_some() {
            self.tick_arp(delivery, arp, out);
            return;
        }
        let cfg = self.config.clone();
        if delivery == Delivery::OtherHost {
            self.discard(out, "ARP frame for another station's MAC".into());
            return;
        }
        if arp.truncated {
            self.discard(out, "ARP body shorter than its declared lengths".into());
            return;
        }
        if arp.hw_len != 6 || arp.proto_len != 4 {
            self.discard(
                out,
                format!(
                    "ARP with address lengths {}/{} (not 6/4)",
                    arp.hw_len, arp.proto_len
                ),
            );
            return;
        }
        if !matches!(arp.hw_type, 1 | 6) || arp.proto_type != 0x0800 {
            self.discard(
                out,
                format!(
                    "ARP for hardware {} / protocol {:#06x}",
                    arp.hw_type, arp.proto_type
                ),
            );
            return;
        }
        if !matches!(arp.op, 1 | 2) {
            self.discard(out, format!("ARP operation {}", arp.op));
            return;
        }
        if arp.tpa.is_multicast() || arp.tpa.is_loopback() {
            self.discard(out, format!("ARP for {} (multicast or loopback)", arp.tpa));
            return;
        }
        let is_request = arp.op == 1;
        let non_unicast_sha = arp.sha == MacAddr::ZERO || arp.sha.0[0] & 1 == 1;
        if non_unicast_sha
            && !self
                .profile
                .has(ArpDeviation::CachesNonUnicastHardwareAddress)
        {
            self.discard(
                out,
                format!("ARP from {} claiming hardware address {}", arp.spa, arp.sha),
            );
            return;
        }

        // RFC 5227 probe: sender 0.0.0.0. Answer if it asks for us; never cache.
        if arp.spa.is_unspecified() {
            if is_request && arp.tpa == cfg.addr && !self.ignore(arp.spa, arp.tpa) {
                self.emit(
                    out,
                    Output::Reply {
                        to_mac: arp.sha,
                        to_ip: arp.spa,
                        for_ip: arp.tpa,
                    },
                );
            } else {
                self.discard(out, "address probe not for us".into());
            }
            return;
        }

        // The subnet's broadcast address as sender: Linux's source check lets it through.
        let subnet_broadcast_sender = !arp.spa.is_broadcast()
            && arp.spa.octets()[0] != 0
            && cfg.addr_type(arp.spa) == AddrType::Broadcast;
        if is_request
            && subnet_broadcast_sender
            && arp.tpa == cfg.addr
            && self.profile.has(ArpDeviation::AnswersSubnetBroadcastSender)
            && !self.ignore(arp.spa, arp.tpa)
        {
            self.emit(
                out,
                Output::Reply {
                    to_mac: arp.sha,
                    to_ip: arp.spa,
                    for_ip: arp.tpa,
                },
            );
            return;
        }
        // A request for one of our addresses, from a sender that passes the martian checks.
        let martian_sender = arp.spa.is_broadcast()
            || arp.spa.is_multicast()
            || arp.spa.is_loopback()
            || arp.spa.octets()[0] == 0
            || matches!(
                cfg.addr_type(arp.spa),
                AddrType::Broadcast | AddrType::Local
            );
        if is_request && !martian_sender && arp.tpa == cfg.addr {
            if self.ignore(arp.spa, arp.tpa) {
                self.discard(out, format!("request for {} ignored (arp_ignore)", arp.tpa));
                return;
            }
            self.update_or_create(arp.spa, arp.sha, Nud::Stale, true, out);
            self.emit(
                out,
                Output::Reply {
                    to_mac: arp.sha,
                    to_ip: arp.spa,
                    for_ip: arp.tpa,
                },
            );
            return;
        }

        // Everything else only updates (or, by policy, creates) the sender's entry.
        let exists = self.entries.contains_key(&arp.spa);
        let accept = match cfg.policy.accept {
            ArpAccept::Never => false,
            ArpAccept::Always => true,
            ArpAccept::SameSubnet => cfg.on_link(arp.spa),
        };
        let sender_type = cfg.addr_type(arp.spa);
        let is_garp = (exists || accept)
            && arp.spa == arp.tpa
            && (is_request || arp.tha == arp.sha)
            && sender_type == AddrType::Unicast;
        let unsolicited_reply_to_us = !is_request
            && arp.tpa == cfg.addr
            && sender_type == AddrType::Unicast
            && !self.profile.has(ArpDeviation::NoEntryFromUnsolicitedReply);
        let create = !exists
            && ((accept && (is_garp || (!is_request && sender_type == AddrType::Unicast)))
                || unsolicited_reply_to_us);
        if !exists && !create {
            self.discard(out, format!("ARP from {}: no entry, none created", arp.spa));
            return;
        }
        let state = if !is_request && delivery == Delivery::Unicast {
            Nud::Reachable
        } else {
            Nud::Stale
        };
        let locked = self
            .entries
            .get(&arp.spa)
            .is_some_and(|e| self.now <= e.updated + d_of(cfg.params.locktime))
            && self.profile.has(ArpDeviation::Locktime);
        let override_ = !locked || is_garp;
        self.update_or_create(arp.spa, arp.sha, state, override_, out);
    }

    /// `arp_ignore`: true when a request from `sip` for `tip` must not be answered.
    fn ignore(&self, sip: Ipv4Addr, tip: Ipv4Addr) -> bool {
        match self.config.policy.ignore {
            ArpIgnore::Any | ArpIgnore::OnInterface => tip != self.config.addr,
            // A probe's sender 0.0.0.0 matches every subnet (`inet_confirm_addr` with no
            // destination).
            ArpIgnore::SameSubnet => {
                tip != self.config.addr || !(sip.is_unspecified() || self.config.on_link(sip))
            }
            ArpIgnore::Never => true,
        }
    }

    /// `__neigh_update` (non-administrative) on the entry for `ip`, created if missing.
    fn update_or_create(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
        new: Nud,
        override_: bool,
        out: &mut Vec<Timed>,
    ) {
        if self.config.rfc4861.is_some() {
            self.rfc4861_update(ip, mac, new == Nud::Reachable, out);
            return;
        }
        if let Some(x) = self.config.expiring {
            let live = self
                .entries
                .get(&ip)
                .is_some_and(|e| e.mac.is_some() && e.expires.is_some_and(|t| self.now < t));
            let changes_mac = self.entries.get(&ip).and_then(|e| e.mac) != Some(mac);
            if live && changes_mac && !override_ {
                return;
            }
            self.fill(ip, mac, x, out);
            return;
        }
        let now = self.now;
        let p = self.config.params;
        let fresh = !self.entries.contains_key(&ip);
        let e = self.entries.entry(ip).or_insert_with(|| Entry {
            confirmed: now - 2 * d_of(p.base_reachable),
            ..Entry::new(Nud::Failed, now)
        });
        // A fresh entry is NONE: not valid, so whatever arrives is taken.
        let old = e.state;
        let old_valid = !fresh && old.is_valid();
        let changes_mac = !old_valid || e.mac != Some(mac);
        let mut new = new;
        if new == Nud::Reachable {
            // A confirmation also counts as a use on Linux (measured: after a reply the
            // dump's `used` age equals its `confirmed` age, and an entry confirmed within
            // `delay_probe` of its expiry goes to DELAY, not STALE).
            e.confirmed = now;
            e.used = now;
        }
        if old_valid {
            if changes_mac && !override_ {
                return;
            }
            if !changes_mac && new == Nud::Stale {
                new = old;
            }
        }
        if new != old || changes_mac || fresh {
            e.updated = now;
        }
        let state_changes = new != old || fresh;
        if state_changes {
            e.timer = None;
            if new == Nud::Probe {
                e.probes = 0;
            }
            if new.in_timer() {
                e.timer = Some(
                    now + if new == Nud::Reachable {
                        d_of(p.reachable)
                    } else {
                        0
                    },
                );
            }
            e.state = new;
        }
        if changes_mac {
            e.mac = Some(mac);
            if new != Nud::Reachable {
                e.confirmed = now - 2 * d_of(p.base_reachable);
            }
        }
        if !state_changes {
            return;
        }
        if !old_valid {
            let queue = std::mem::take(&mut e.queue);
            for packet in queue {
                self.resolve_output(ip, packet, out);
            }
        }
    }
}

/// [`Rfc4861Nud`]: sending, timers and updates.
impl ArpHost {
    fn new_entry(&self, state: Nud) -> Entry {
        Entry::new(state, self.now)
    }

    fn broadcast_request(&self, hop: Ipv4Addr, out: &mut Vec<Timed>) {
        self.emit(
            out,
            Output::Request {
                target: hop,
                eth_dst: MacAddr::BROADCAST,
                sender_ip: self.config.addr,
            },
        );
    }

    /// A packet to `hop` (RFC 4861 §7.3.3; Netstack3 `handle_packet_queued_to_send`).
    fn rfc4861_output(&mut self, hop: Ipv4Addr, packet: Packet, out: &mut Vec<Timed>) {
        let now = self.now;
        let p = self.config.params;
        if !self.entries.contains_key(&hop) {
            // INCOMPLETE: the first broadcast request now, the next after `retrans`.
            let mut e = self.new_entry(Nud::Incomplete);
            e.probes = 1;
            e.timer = Some(now + d_of(p.retrans));
            e.queue.push(packet);
            self.entries.insert(hop, e);
            self.broadcast_request(hop, out);
            return;
        }
        let Some(e) = self.entries.get_mut(&hop) else {
            return;
        };
        let mac = e.mac.unwrap_or(MacAddr::ZERO);
        let mut request = false;
        match e.state {
            Nud::Incomplete => {
                e.queue.push(packet);
                return;
            }
            Nud::Reachable | Nud::Delay | Nud::Probe => {}
            Nud::Stale => {
                e.state = Nud::Delay;
                e.updated = now;
                e.timer = Some(now + d_of(p.delay_probe));
            }
            Nud::Failed => {
                // UNREACHABLE: the packet goes to the cached MAC; the first one restarts
                // broadcast requests with back-off, later ones are noted for the timer.
                if e.timer.is_none() {
                    e.probes = 1;
                    e.packet_sent = false;
                    e.timer = Some(now + rfc4861_backoff(p.retrans, 1));
                    request = true;
                } else {
                    e.packet_sent = true;
                }
            }
        }
        self.emit(
            out,
            Output::Transmit {
                packet,
                next_hop: hop,
                dst_mac: mac,
            },
        );
        if request {
            self.broadcast_request(hop, out);
        }
    }

    /// The entry's timer ran (Netstack3 `handle_timer`).
    fn rfc4861_timer(&mut self, ip: Ipv4Addr, out: &mut Vec<Timed>) {
        let now = self.now;
        let p = self.config.params;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        e.timer = None;
        match e.state {
            Nud::Incomplete if e.probes < p.mcast_probes => {
                e.probes += 1;
                e.timer = Some(now + d_of(p.retrans));
                self.broadcast_request(ip, out);
            }
            Nud::Incomplete => {
                let queue = std::mem::take(&mut e.queue);
                self.entries.remove(&ip);
                for packet in queue {
                    match packet.id {
                        PacketId::Forwarded(n) => {
                            self.discard(
                                out,
                                format!("{:?} dropped: {ip} did not answer", packet.id),
                            );
                            let error = Packet {
                                id: PacketId::HostUnreachable(n),
                                src: self.config.addr,
                                dst: packet.src,
                            };
                            self.output_packet(error, out);
                        }
                        _ => self.discard(
                            out,
                            format!(
                                "{:?} dropped: {ip} did not answer (entry removed)",
                                packet.id
                            ),
                        ),
                    }
                }
            }
            Nud::Reachable => {
                let until = e.confirmed + d_of(p.reachable);
                if now < until {
                    e.timer = Some(until);
                } else {
                    e.state = Nud::Stale;
                    e.updated = now;
                }
            }
            Nud::Delay => {
                e.state = Nud::Probe;
                e.updated = now;
                e.probes = 1;
                e.timer = Some(now + d_of(p.retrans));
                let mac = e.mac.unwrap_or(MacAddr::ZERO);
                self.emit(
                    out,
                    Output::Request {
                        target: ip,
                        eth_dst: mac,
                        sender_ip: self.config.addr,
                    },
                );
            }
            Nud::Probe if e.probes < p.ucast_probes => {
                e.probes += 1;
                e.timer = Some(now + d_of(p.retrans));
                let mac = e.mac.unwrap_or(MacAddr::ZERO);
                self.emit(
                    out,
                    Output::Request {
                        target: ip,
                        eth_dst: mac,
                        sender_ip: self.config.addr,
                    },
                );
            }
            Nud::Probe => {
                e.state = Nud::Failed;
                e.updated = now;
                e.probes = 0;
                e.packet_sent = false;
            }
            Nud::Failed if e.packet_sent => {
                e.probes += 1;
                e.packet_sent = false;
                e.timer = Some(now + rfc4861_backoff(p.retrans, e.probes));
                self.broadcast_request(ip, out);
            }
            Nud::Failed | Nud::Stale => {}
        }
    }

    /// An ARP packet carrying `mac` for `ip` that RFC 826 lets update (or create) its entry:
    /// `solicited` a reply unicast to the host (a solicited confirmation), else a request,
    /// a gratuitous packet or a broadcast reply (RFC 4861's probe or unsolicited, overriding
    /// confirmation). Netstack3 `handle_probe`, `handle_confirmation`.
    fn rfc4861_update(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
        solicited: bool,
        out: &mut Vec<Timed>,
    ) {
        let now = self.now;
        let p = self.config.params;
        let lock = self.config.rfc4861.map_or(0, |n| d_of(n.override_lock));
        let fresh = !self.entries.contains_key(&ip);
        let mut e = self
            .entries
            .remove(&ip)
            .unwrap_or_else(|| self.new_entry(Nud::Incomplete));
        let same = !fresh && e.state != Nud::Incomplete && e.mac == Some(mac);
        let reachable = if solicited {
            !(e.state == Nud::Reachable && same && now - e.confirmed < lock)
        } else {
            false
        };
        if reachable {
            if e.state == Nud::Reachable && same {
                // Only the confirmation moves; the timer catches up when it runs.
                e.confirmed = now;
            } else {
                e.state = Nud::Reachable;
                e.confirmed = now;
                e.updated = now;
                e.timer = Some(now + d_of(p.reachable));
            }
        } else if fresh || e.state == Nud::Incomplete || !same {
            e.state = Nud::Stale;
            e.updated = now;
            e.timer = None;
        }
        e.mac = Some(mac);
        let queue = std::mem::take(&mut e.queue);
        self.entries.insert(ip, e);
        for packet in queue {
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: ip,
                    dst_mac: mac,
                },
            );
        }
    }
}

/// The `n`th back-off of an UNREACHABLE entry's broadcast requests: `retrans` times 3^n,
/// at most [`RFC4861_MAX_BACKOFF`] (Netstack3 `next_backoff_retransmit_timeout`).
fn rfc4861_backoff(retrans: Duration, n: u32) -> T {
    let t = d_of(retrans).saturating_mul(3i64.saturating_pow(n));
    t.min(d_of(RFC4861_MAX_BACKOFF))
}

#[cfg(test)]
mod tests;
mod tick_nud;
pub use tick_nud::TickNud;
