//! A stack's declared fixed behaviour: the values it uses where it cannot be configured.
//!
//! A check pins the settings it depends on (`Control::ArpPolicy`, `Control::NeighbourParams`,
//! `Control::Forwarding`, ...). A stack that cannot take a setting answers `NotSupported`;
//! when the stack's profile declares the value it uses instead, the check runs against that
//! value (the model gets the declared policy and timers) and the report says so. The
//! declaration is no excuse: the exchange must show the declared behaviour (a stack whose
//! entry lifetime is not the declared one fails), and the RFC clauses still judge it (a
//! declared behaviour that departs from a clause the check enforces is a failure of that
//! clause). A setting that is neither settable nor declared leaves the check unsupported,
//! with a reason naming what to declare.
//!
//! One reviewed file per target, `profiles/<target>.toml` (format: `profiles/README.md`),
//! each value with the source lines it was read from. `certify` reads it at start, like
//! `deviations/<target>.toml`: the file in the working directory when there is one, else the
//! copy built into netconform for the built-in targets; an external target's configuration
//! names its own (`[stack] profile = "FILE"`).

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::models::arp::{ArpAccept, ArpIgnore, ArpPolicy};
use crate::wire::MacAddr;

/// A stack's declared fixed behaviour, as read from its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedBehaviour {
    /// The stack and version the declaration is for (`smoltcp 0.14.0`).
    pub stack: String,
    /// Where the declaration was read from, as reports name it (`profiles/smoltcp.toml`).
    pub file: String,
    /// ARP and the neighbour cache.
    pub arp: Option<ArpFixed>,
    /// IP forwarding.
    pub ip: Option<IpFixed>,
    /// The route table.
    pub route: Option<RouteFixed>,
    /// TCP settings the stack keeps at fixed values.
    pub tcp: Option<TcpFixed>,
}

/// The ARP behaviour a stack cannot be configured away from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpFixed {
    /// When entries are created and which requests are answered.
    pub policy: Option<ArpPolicyFixed>,
    /// How entries are validated and flushed.
    pub cache: Option<ArpCacheFixed>,
    /// When and how the stack asks (requests, their rate limit).
    pub requests: Option<ArpRequestsFixed>,
    /// What happens to a packet that waits for a resolution.
    pub waiting_packet: Option<WaitingPacketFixed>,
    /// A neighbour state machine whose other timers and counts are settable.
    pub nud: Option<ArpNudFixed>,
    /// Linux's neighbour states on one coarse maintenance pass, timers settable in whole
    /// units only.
    pub tick_nud: Option<ArpTickNudFixed>,
    /// One neighbour whose MAC is taken from the frames it sends, never asked for (passt).
    pub one_neighbour: Option<OneNeighbourFixed>,
}

/// `[arp.tick_nud]`: a stack whose neighbour cache runs Linux's states (REACHABLE, STALE,
/// DELAY, PROBE with unicast polls, FAILED) from one periodic maintenance pass, with its
/// timers and probe counts settable but only in whole units of time (PyTCP: whole
/// seconds, a pass every 100 ms; [`crate::models::arp::TickNud`]). The check sets the
/// scenario's timers scaled up to whole units (through `Control::NeighbourParams`: a
/// stack that did not take them shows it on the wire), scales its waits by as much, runs
/// the model with the declared pass period, and dumps the neighbour table as usual.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpTickNudFixed {
    /// The maintenance pass's period, ms: a timer runs on the first pass at or after its
    /// deadline.
    pub tick_ms: u64,
    /// The timers are set in whole multiples of this, ms.
    pub timer_unit_ms: u64,
    /// The pass after the last request of an INCOMPLETE or PROBE run makes the entry
    /// FAILED (true; Linux: a retransmission time after it). The model knows only this.
    pub failed_on_next_tick: bool,
    /// The reachable time is the base itself, not drawn at random. The model knows only
    /// this.
    pub reachable_is_base: bool,
    /// An entry's address is held against a different one for this long after a change,
    /// ms (Linux `locktime`; 0: none). The model knows only 0.
    pub locktime_ms: u64,
    /// The source lines the values were read from.
    pub source: String,
}

/// `[arp.one_neighbour]`: a stack that serves exactly one neighbour on its link (passt's
/// guest) and keeps one entry for it, whatever address a packet is for: the Ethernet source
/// of the last frame it received, of any EtherType, before any check of the frame's
/// content. It sends every frame to that MAC and never sends an ARP request. The checks
/// that expect a resolution expect instead the stack's next frame to go to the MAC the peer
/// sent from (an ARP request, or a frame to another MAC, fails the check).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneNeighbourFixed {
    /// The stack sends ARP requests (false: never).
    pub sends_requests: bool,
    /// The entry's MAC before the stack received any frame.
    pub initial_mac: String,
    /// Which ARP requests the stack answers.
    pub answers: AnswerScope,
    /// A request whose sender address is its target's (an announcement, sender not
    /// 0.0.0.0) is answered.
    pub answers_announcements: bool,
    /// The source lines the values were read from.
    pub source: String,
}

/// Which ARP requests a stack answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerScope {
    /// A request for any IPv4 address but its one neighbour's own (passt: it answers for
    /// every address of the host side, with its own MAC).
    AnyButNeighbour,
}

/// `[arp.nud]`: a stack whose neighbour cache runs RFC 4861 §7.3's state machine for ARP
/// (Netstack3: one NUD for ARP and NDP, [`crate::models::arp::Rfc4861Nud`]), with its
/// retransmission time, base reachable time and probe counts settable and the rest fixed
/// as declared here. The check sets what is settable (through `Control::NeighbourParams`)
/// and runs the model with the declared rest; the neighbour table is dumped as usual.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpNudFixed {
    /// How long a used STALE entry waits in DELAY before probing, ms (RFC 4861
    /// DELAY_FIRST_PROBE_TIME).
    pub delay_probe_ms: u64,
    /// A reply unicast to the stack for a REACHABLE entry confirmed less than this long
    /// ago is ignored, ms (0: never).
    pub override_lock_ms: u64,
    /// The reachable time is the base reachable time itself (true), not drawn at random
    /// in [base/2, 3·base/2).
    pub reachable_is_base: bool,
    /// The target hardware address of a unicast request (a probe of a known neighbour) is
    /// the neighbour's MAC (true), else zero as in a broadcast request.
    pub unicast_request_names_target: bool,
    /// The source lines the values were read from.
    pub source: String,
}

/// `[arp.policy]`: the model's [`ArpPolicy`], Linux's `arp_accept` and `arp_ignore` values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpPolicyFixed {
    /// Creation from unsolicited ARP.
    pub accept: ArpAccept,
    /// Which requests are answered.
    pub ignore: ArpIgnore,
    /// The source lines the values were read from.
    pub source: String,
}

/// How a stack's neighbour entries are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validation {
    /// An entry lives a fixed lifetime from when it was last filled, then is not used
    /// (RFC 1122 §2.3.2.1 mechanism (1), "Timeout"); no unicast poll.
    Expire,
    /// The Linux neighbour state machine (REACHABLE, STALE, DELAY, PROBE: unicast polls).
    UnicastPoll,
    /// Entries are never flushed: no lifetime, no poll; an entry goes only when a new
    /// address takes its slot in a bounded table (libslirp). RFC 1122 §2.3.2.1 requires a
    /// mechanism to flush out-of-date entries: the checks that enforce it fail on it.
    Never,
}

/// Which entry of a full table a new address replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replacement {
    /// The slots in turn, whatever their use (libslirp's `next_victim`).
    RoundRobin,
}

/// `[arp.cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpCacheFixed {
    /// How entries are validated.
    pub validation: Validation,
    /// An entry's lifetime from its last fill, ms (`expire`; absent with `never`).
    #[serde(default)]
    pub lifetime_ms: u64,
    /// An IPv4 packet for the stack from the entry's address and MAC restarts the lifetime
    /// (of an expired entry too).
    pub refreshed_by_traffic: bool,
    /// An entry used to send this long before its expiry or less is asked for again by a
    /// unicast request first (lwIP `ARP_AGE_REREQUEST_USED_UNICAST`); absent: never.
    pub rerequest_unicast_before_ms: Option<u64>,
    /// ... and by a broadcast request from this long before (lwIP
    /// `ARP_AGE_REREQUEST_USED_BROADCAST`).
    pub rerequest_broadcast_before_ms: Option<u64>,
    /// The table holds at most this many resolved entries (absent: no bound a check
    /// reaches); a new address then replaces one as `replacement` says.
    #[serde(default)]
    pub table_size: Option<usize>,
    /// Which entry of a full table a new address replaces (with `table_size`).
    #[serde(default)]
    pub replacement: Option<Replacement>,
    /// The source lines the values were read from.
    pub source: String,
}

/// `[arp.requests]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpRequestsFixed {
    /// Requests are retransmitted on a timer (false: one request per packet that needs the
    /// address, and nothing when no packet does).
    pub retransmit: bool,
    /// With `retransmit`: the period of the timer that sends them, ms (one request per
    /// tick while an address is pending; lwIP `ARP_TMR_INTERVAL`).
    pub tick_ms: Option<u64>,
    /// With `retransmit`: the pending entry is dropped with its waiting packets on this
    /// tick after it was made (lwIP `ARP_MAXPENDING`).
    pub max_pending_ticks: Option<u32>,
    /// At most one request per this interval, ms (RFC 1122 §2.3.2.1's flooding prevention).
    pub min_interval_ms: u64,
    /// `interface`: the interval holds for every address together; `address`: per address.
    pub rate_limit_scope: RateLimitScope,
    /// The target hardware address of a request (RFC 826: "not anything in particular").
    pub target_mac: String,
    /// The source lines the values were read from.
    pub source: String,
}

/// What a request rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitScope {
    /// One interval for the whole interface.
    Interface,
    /// One interval per address.
    Address,
}

/// `[arp.waiting_packet]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingPacketFixed {
    /// `queue` (kept and sent once resolved) or `drop`.
    pub policy: WaitingPolicy,
    /// With `queue`: packets kept per address at most, the oldest dropped for a new one
    /// (absent: no limit a check reaches).
    pub queue_len: Option<usize>,
    /// The source lines the value was read from.
    pub source: String,
}

/// What happens to a packet that waits for a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitingPolicy {
    /// Kept and sent when the address is resolved (RFC 1122 §2.3.2.2 SHOULD).
    Queue,
    /// Dropped.
    Drop,
}

/// `[ip]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpFixed {
    /// The stack forwards packets not addressed to it.
    pub forwarding: bool,
    /// The source lines the value was read from.
    pub source: String,
}

/// A kind of route a stack can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeldRoute {
    /// A prefix via a gateway.
    Gateway,
    /// The subnets of the stack's own addresses (connected routes; not added as routes).
    OnLinkSubnet,
    /// An on-link prefix added as a route.
    OnLink,
    /// Local, blackhole, unreachable, prohibit and throw routes.
    Special,
}

/// `[route]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFixed {
    /// The kinds of route the stack can hold.
    pub kinds: Vec<HeldRoute>,
    /// How many routes it holds at most.
    pub max_routes: usize,
    /// Routes carry metrics.
    pub metrics: bool,
    /// The routes can be read back or looked up through an API (else the lookup is
    /// observed on the wire).
    pub lookup_api: bool,
    /// IPv6 routes.
    pub ipv6: bool,
    /// The source lines the values were read from.
    pub source: String,
}

/// `[tcp]`: TCP settings a check pins (a Linux sysctl) that the stack keeps at a fixed
/// value; a check that pins one runs against the declared value (the model's schedule is
/// the declared count's), and the exchange must show it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpFixed {
    /// How many times an unacknowledged SYN-ACK is retransmitted before the attempt is
    /// dropped (Linux `net.ipv4.tcp_synack_retries`).
    pub synack_retries: Option<u32>,
    /// How many times an unanswered SYN is retransmitted before an active open is given
    /// up, on a stack with no `TCP_SYNCNT` (Linux `net.ipv4.tcp_syn_retries`; lwIP
    /// `TCP_SYNMAXRTX`).
    pub syn_retries: Option<u32>,
    /// The source lines the values were read from.
    pub source: String,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    stack: String,
    arp: Option<ArpFixed>,
    ip: Option<IpFixed>,
    route: Option<RouteFixed>,
    tcp: Option<TcpFixed>,
}

/// A profile that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FixedError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key or value, a missing key.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// What is wrong, as the TOML reader says it.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

impl FixedBehaviour {
    /// Parses a profile; `origin` names it in errors and reports.
    pub fn parse(text: &str, origin: &str) -> Result<FixedBehaviour, FixedError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| FixedError::Syntax {
            path: origin.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |what: String| FixedError::Invalid {
            path: origin.into(),
            what,
        };
        if let Some(arp) = &raw.arp {
            if let Some(r) = &arp.requests {
                r.target_mac.parse::<MacAddr>().map_err(|e| {
                    invalid(format!(
                        "[arp.requests] target_mac {:?}: {e:?}",
                        r.target_mac
                    ))
                })?;
            }
            if let Some(one) = &arp.one_neighbour {
                one.initial_mac.parse::<MacAddr>().map_err(|e| {
                    invalid(format!(
                        "[arp.one_neighbour] initial_mac {:?}: {e:?}",
                        one.initial_mac
                    ))
                })?;
            }
            if let Some(c) = &arp.cache
                && c.validation == Validation::Expire
                && c.lifetime_ms == 0
            {
                return Err(invalid(
                    "[arp.cache] lifetime_ms must be above 0 with validation \"expire\"".into(),
                ));
            }
            if let Some(c) = &arp.cache
                && c.validation == Validation::Never
                && c.lifetime_ms != 0
            {
                return Err(invalid(
                    "[arp.cache] lifetime_ms makes no sense with validation \"never\"".into(),
                ));
            }
            if let Some(c) = &arp.cache
                && (c.table_size == Some(0) || c.table_size.is_some() != c.replacement.is_some())
            {
                return Err(invalid(
                    "[arp.cache] table_size (above 0) and replacement go together".into(),
                ));
            }
        }
        Ok(FixedBehaviour {
            stack: raw.stack,
            file: origin.into(),
            arp: raw.arp,
            ip: raw.ip,
            route: raw.route,
            tcp: raw.tcp,
        })
    }

    /// Reads a profile file.
    pub fn load(path: &Path) -> Result<FixedBehaviour, FixedError> {
        let text = std::fs::read_to_string(path).map_err(|source| FixedError::Io {
            path: path.display().to_string(),
            source,
        })?;
        FixedBehaviour::parse(&text, &path.display().to_string())
    }

    /// The declared ARP policy, if any.
    pub fn arp_policy(&self) -> Option<ArpPolicy> {
        let p = self.arp.as_ref()?.policy.as_ref()?;
        Some(ArpPolicy {
            accept: p.accept,
            ignore: p.ignore,
        })
    }

    /// The declared SYN retry count, if any.
    pub fn syn_retries(&self) -> Option<u32> {
        self.tcp.as_ref()?.syn_retries
    }

    /// The declared SYN-ACK retry count, if any.
    pub fn synack_retries(&self) -> Option<u32> {
        self.tcp.as_ref()?.synack_retries
    }

    /// The declared one-neighbour behaviour (`[arp.one_neighbour]`), if any.
    pub fn one_neighbour(&self) -> Option<&OneNeighbourFixed> {
        self.arp.as_ref()?.one_neighbour.as_ref()
    }

    /// The declared request target hardware address, if any.
    pub fn request_target_mac(&self) -> Option<MacAddr> {
        let r = self.arp.as_ref()?.requests.as_ref()?;
        r.target_mac.parse().ok()
    }
}

/// The profile built into netconform for smoltcp (`profiles/smoltcp.toml`).
pub const SMOLTCP_PROFILE: &str = include_str!("../../profiles/smoltcp.toml");

/// smoltcp's declared fixed behaviour: `profiles/smoltcp.toml` in the working directory when
/// it exists (so a reviewer's edit applies at once), else the copy built into netconform. A
/// broken file in the working directory is an error, never silently replaced.
pub fn smoltcp_profile() -> Result<Arc<FixedBehaviour>, FixedError> {
    builtin_profile("smoltcp", SMOLTCP_PROFILE)
}

/// The profile built into netconform for libslirp (`profiles/slirp.toml`).
pub const SLIRP_PROFILE: &str = include_str!("../../profiles/slirp.toml");

/// Target `name`'s declared fixed behaviour: `profiles/<name>.toml` in the working
/// directory when it exists, else `builtin` (the copy built into the target's binary). A
/// broken file in the working directory is an error, never silently replaced.
///
/// A profile read once is kept for the process while the file stays as it was (its size
/// and modification time; the built-in copy never changes): every DUT of an in-process
/// stack asks for it, and parsing the TOML was a third of a stack fuzz target's time per
/// input (docs/PERFORMANCE.md).
pub fn builtin_profile(name: &str, builtin: &str) -> Result<Arc<FixedBehaviour>, FixedError> {
    type Seen = (String, Option<(Option<std::time::SystemTime>, u64)>);
    static READ: std::sync::Mutex<Vec<(Seen, Arc<FixedBehaviour>)>> =
        std::sync::Mutex::new(Vec::new());
    let here = Path::new("profiles").join(format!("{name}.toml"));
    let file = std::fs::metadata(&here)
        .ok()
        .map(|m| (m.modified().ok(), m.len()));
    let seen: Seen = (name.to_string(), file);
    let mut read = READ.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, profile)) = read.iter().find(|(s, _)| *s == seen) {
        return Ok(Arc::clone(profile));
    }
    let profile = match file {
        Some(_) => FixedBehaviour::load(&here).map(Arc::new)?,
        None => FixedBehaviour::parse(builtin, &format!("profiles/{name}.toml")).map(Arc::new)?,
    };
    read.retain(|(s, _)| s.0 != name);
    read.push((seen, Arc::clone(&profile)));
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_smoltcp_profile_parses_and_declares_what_the_checks_need() {
        let p = FixedBehaviour::parse(SMOLTCP_PROFILE, "profiles/smoltcp.toml").expect("valid");
        assert_eq!(p.stack, "smoltcp 0.14.0");
        let arp = p.arp.as_ref().expect("[arp]");
        assert_eq!(arp.cache.as_ref().expect("cache").lifetime_ms, 60_000);
        assert_eq!(
            arp.requests.as_ref().expect("requests").min_interval_ms,
            1_000
        );
        assert_eq!(p.request_target_mac(), Some(MacAddr::BROADCAST));
        assert!(!p.ip.as_ref().expect("[ip]").forwarding);
        assert_eq!(p.route.as_ref().expect("[route]").max_routes, 2);
        // Every declaration cites the source it was read from.
        for source in [
            &arp.policy.as_ref().expect("policy").source,
            &arp.cache.as_ref().expect("cache").source,
            &arp.requests.as_ref().expect("requests").source,
            &arp.waiting_packet.as_ref().expect("waiting").source,
            &p.ip.as_ref().expect("ip").source,
            &p.route.as_ref().expect("route").source,
        ] {
            assert!(source.contains(".rs:"), "{source}");
        }
    }

    #[test]
    fn a_broken_profile_is_refused_naming_the_file_and_the_key() {
        let e = FixedBehaviour::parse("stack = \"x\"\n[arp.cache]\nlifetime = 3\n", "p.toml")
            .expect_err("unknown key");
        assert!(e.to_string().starts_with("p.toml: "), "{e}");
        assert!(e.to_string().contains("lifetime"), "{e}");
        let e = FixedBehaviour::parse(
            "stack = \"x\"\n[arp.requests]\nretransmit = false\nmin_interval_ms = 1\nrate_limit_scope = \"interface\"\ntarget_mac = \"nope\"\nsource = \"a.rs:1\"\n",
            "p.toml",
        )
        .expect_err("a bad MAC");
        assert!(e.to_string().contains("target_mac"), "{e}");
    }
}
