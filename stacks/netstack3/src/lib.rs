//! Fuchsia's Netstack3 as the stack under test, in-process, on a virtual clock.
//!
//! [`Netstack3Host`] = one `netstack3-core` 0.1.0 stack built on the crate's own test
//! bindings (`testutils`: [`FakeCtx`], fake timers, a seeded RNG, frames collected in
//! memory) with one Ethernet device carrying the lab's addresses. Nothing in Netstack3 reads
//! a clock: the target advances the fake clock only while somebody waits (a
//! [`Link::recv_frame`] deadline, a socket call's timeout), from one of Netstack3's timers
//! to the next, so a 2-minute TIME-WAIT costs no real time and traces carry the virtual time
//! ([`Dut::virtual_now`]). The layout follows the smoltcp target
//! (`netconform::dut::smoltcp`).
//!
//! Read first: `netstack3-core` `src/testutil.rs` (`FakeBindingsCtx`, `FakeCtxBuilder`,
//! `TestApi`), `netstack3-tcp` `src/socket.rs` (`TcpApi`) and `src/base.rs`
//! (`SocketOptions`).
//!
//! # What each socket call means here
//!
//! The calls mean what they mean on the Linux target, so every check runs unchanged:
//!
//! - `Socket` creates a Netstack3 TCP socket at once; `Bind`, `Listen` (with SO_REUSEADDR,
//!   as the Linux agent sets it), `Accept`, `Connect` and `Shutdown` are the `TcpApi` calls
//!   of the same name; a port 0 is left to Netstack3's own (seeded) allocator.
//! - Sockets are non-blocking: `Accept`, `WaitConnected` and `Recv` wait on the virtual
//!   clock, firing Netstack3's timers in order, until they can answer or their timeout has
//!   passed.
//! - `Send` appends to the socket's send buffer and asks Netstack3 to send (`do_send`);
//!   `Recv` reads the receive buffer and tells Netstack3 (`on_receive_buffer_read`), which
//!   reopens the window. Errors are Netstack3's own (`get_socket_error`), mapped to the
//!   Linux errno of the same meaning.
//! - `Close` is `TcpApi::close`; with `SO_LINGER` 0 the connection is first aborted
//!   (`disconnect_bound`, which sends the RST, Netstack3's SOCK_DESTROY).
//! - Options are `SocketOptions` fields (keep-alive idle, interval and count, Nagle,
//!   delayed ACK, user timeout, SYN retries) and the receive buffer size; the read-back is
//!   what the socket keeps.
//!
//! # Robustness
//!
//! Every entry into Netstack3 runs under `catch_unwind`: a panic (an assertion of
//! Netstack3's, a bug of the test bindings) becomes [`DutError::Gone`] (`netstack3
//! panicked: ...`) and the target stays dead; every later call says the same. Nothing
//! Netstack3 does can take the harness down, and nothing outlives the target: the stack
//! is memory only (no namespace, device or file).

// Netstack3's lock-ordering traits nest deeper than the default limit (netstack3-core
// sets the same).
#![recursion_limit = "256"]

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::{NonZeroU8, NonZeroU16, NonZeroUsize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use net_types::ethernet::Mac;
use net_types::ip::{AddrSubnetEither, IpAddress as _, Ipv4, Ipv6, Mtu, Subnet, SubnetEither};
use net_types::{SpecifiedAddr, UnicastAddr, Witness as _, ZonedAddr};
use netstack3_core::InstantContext as _;
use netstack3_core::TimerId;
use netstack3_core::device::{
    DeviceId, EthernetCreationProperties, EthernetDeviceId, EthernetLinkDevice, LoopbackDeviceId,
    MaxEthernetFrameSize, WeakDeviceId,
};
use netstack3_core::ip::{
    IpDeviceConfigurationUpdate, Ipv4DeviceConfigurationUpdate, Ipv6DeviceConfigurationUpdate,
};
use netstack3_core::neighbor as nud_api;
use netstack3_core::routes::{AddableEntry, AddableEntryEither, AddableMetric, RawMetric};
use netstack3_core::socket::{IpSocketMatcher, ShutdownType, SocketCookieMatcher};
use netstack3_core::tcp::{
    BindError, ConnectError, ConnectionError, ListenError, TcpSocketDiagnosticTuple,
    TcpSocketDiagnostics, TcpSocketId,
};
use netstack3_core::testutil::{CtxPairExt as _, DispatchedEvent, FakeBindingsCtx, FakeCtx};
use packet_formats::utils::NonZeroDuration;

pub mod fuzz;
pub mod router;

/// Netstack3's neighbour events (`netstack3-ip` `nud::Event`).
mod nud {
    pub use netstack3_core::neighbor::{EventDynamicState, EventKind, EventState};
}

use netconform::dut::build::ExtraTarget;
use netconform::dut::fixed::FixedBehaviour;
use netconform::dut::needs::Needs;
use netconform::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, Family, Link, ShutdownHow, SocketCall,
    SocketId, SocketOption, Sockets, StateAnswer, StateQuery, Tables, TcpSocketState, TcpState,
    VirtualDeadlines,
};
use netconform::models::route::{RouteError, RouteKind};
use netconform::sandbox::{MacAddr, NeighbourEntry, NudState, RouteLookup, V4Config, V6Config};
use netconform::wire::{Frame, Icmpv6Message};

/// The `netstack3-core` release this target is built against (Cargo.lock).
pub const NETSTACK3_VERSION: &str = "0.1.0";

/// The seed of Netstack3's random numbers (initial sequence numbers, ephemeral ports,
/// timer jitter): fixed, so that traces are the same on every run.
pub const DEFAULT_RANDOM_SEED: u128 = 0x6e63_6e73_3300; // "ncns3"

/// The most timers one wait fires before it gives up (a stack that re-arms a timer at the
/// same instant forever would otherwise never let the wait end).
const MAX_TIMERS_PER_WAIT: usize = 1_000_000;

/// The `--target netstack3` of `netconform-netstack3`.
pub const TARGET: ExtraTarget = ExtraTarget {
    name: "netstack3",
    build: build_for,
    deviations: Some(include_str!("../../../deviations/netstack3.toml")),
    needs_netns: false,
};

/// A fresh Netstack3 for a check that needs `needs`.
pub fn build_for(needs: &Needs) -> Result<Box<dyn Dut>, DutError> {
    if let Some(r) = needs.router {
        return Ok(Box::new(router::Netstack3Router::new(
            router::RouterConfig {
                segments: r.segments,
                mtu: Netstack3Config::default().mtu,
                random_seed: DEFAULT_RANDOM_SEED,
                fixed: netstack3_profile(),
            },
        )?));
    }
    Ok(Box::new(Netstack3Host::new(netstack3_config_for(needs))?))
}

/// Facts of `netstack3-core` 0.1.0 the results depend on, as `name = value` lines for
/// reports.
const CONSTANTS: &[&str] = &[
    "netstack3 bindings = netstack3-core testutils (FakeBindingsCtx: fake timers, seeded RNG)",
    "netstack3 TCP buffers = 64 KiB receive (RingBuffer), send buffer grows (TestSendBuffer)",
    "netstack3 IPv4 ACD (RFC 5227 probes) = off, IGMP = off",
    "netstack3 IPv6 DAD = off, router solicitations = off, MLD = off",
];

/// How to build a [`Netstack3Host`]: the Linux lab's address plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netstack3Config {
    /// The stack's MAC (locally administered).
    pub stack_mac: MacAddr,
    /// The MAC of the peer the harness speaks for.
    pub harness_mac: MacAddr,
    /// IPv4 on the stack (`None`: none).
    pub ipv4: Option<V4Config>,
    /// IPv6 on the stack (`None`: IPv6 off).
    pub ipv6: Option<V6Config>,
    /// Link MTU (IP bytes).
    pub mtu: u32,
    /// The seed of the stack's RNG.
    pub random_seed: u128,
    /// Teach the stack the peer's MAC before the session starts (one ARP request and one
    /// neighbour solicitation from the peer, whose answers are dropped).
    pub peer_preresolved: bool,
    /// Settings a check pins that Netstack3 has no equivalent for, as `name = value`: the
    /// first event of the session is then unsupported.
    pub unsupported_settings: Vec<String>,
    /// Netstack3's declared fixed behaviour (`profiles/netstack3.toml`, see
    /// `netconform::dut::fixed`), or why it could not be read (the target then refuses to
    /// start, naming the file).
    pub fixed: Result<Option<Arc<FixedBehaviour>>, String>,
}

/// The profile built into this target (`profiles/netstack3.toml`).
pub const NETSTACK3_PROFILE: &str = include_str!("../../../profiles/netstack3.toml");

/// Netstack3's declared fixed behaviour: `profiles/netstack3.toml` in the working directory
/// when it exists, else the copy built into this binary.
pub fn netstack3_profile() -> Result<Option<Arc<FixedBehaviour>>, String> {
    netconform::dut::fixed::builtin_profile("netstack3", NETSTACK3_PROFILE)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Default for Netstack3Config {
    fn default() -> Self {
        let lab = netconform::sandbox::LabConfig::default();
        Netstack3Config {
            stack_mac: netconform::wire::plan::link_end(2),
            harness_mac: netconform::wire::plan::link_end(1),
            ipv4: lab.ipv4,
            ipv6: lab.ipv6,
            mtu: lab.mtu,
            random_seed: DEFAULT_RANDOM_SEED,
            peer_preresolved: false,
            unsupported_settings: Vec::new(),
            fixed: netstack3_profile(),
        }
    }
}

/// Linux sysctls a check pins that hold on Netstack3 as it is: netstack3-tcp 0.1.0 has no
/// tail loss probe, RACK (RFC 8985) or early retransmit (its `src/state.rs` and
/// `src/congestion.rs`), so its first retransmission is always the RTO's or fast
/// retransmit's. (`net.ipv4.tcp_synack_retries` does not: its SYN-ACK retries are the
/// constant `DEFAULT_MAX_SYNACK_RETRIES` = 5.)
const SETTINGS_THAT_HOLD: &[(&str, &str)] = &[("net.ipv4.tcp_early_retrans", "0")];

/// Whether `fixed` declares the value Netstack3 keeps for the Linux sysctl `name`: a check
/// that pins it then runs against the declared value (it reads it from the session's
/// fixed behaviour), not unsupported.
fn declared_setting(fixed: Option<&FixedBehaviour>, name: &str) -> bool {
    match name {
        "net.ipv4.tcp_synack_retries" => fixed.and_then(FixedBehaviour::synack_retries).is_some(),
        _ => false,
    }
}

/// The configuration a check runs with: the default addresses, IPv6 only when the check
/// uses it, the peer pre-resolved when it asks.
pub fn netstack3_config_for(needs: &Needs) -> Netstack3Config {
    with_fixed(needs, netstack3_profile())
}

/// [`netstack3_config_for`] with the declared fixed behaviour `fixed` (tests declare a
/// wrong one for their negative controls).
pub fn with_fixed(
    needs: &Needs,
    fixed: Result<Option<Arc<FixedBehaviour>>, String>,
) -> Netstack3Config {
    let declared = fixed.as_ref().ok().and_then(|f| f.as_deref());
    let mut config = Netstack3Config {
        peer_preresolved: needs.peer_preresolved,
        unsupported_settings: needs
            .settings
            .iter()
            .filter(|s| !SETTINGS_THAT_HOLD.contains(s) && !declared_setting(declared, s.0))
            .map(|(name, value)| format!("{name} = {value}"))
            .collect(),
        fixed: fixed.clone(),
        ..Netstack3Config::default()
    };
    if !needs.ipv6 {
        config.ipv6 = None;
    }
    config
}

type Bc = FakeBindingsCtx;
type Weak = WeakDeviceId<Bc>;

/// A TCP socket of either IP version.
#[derive(Debug)]
enum Tcp {
    V4(TcpSocketId<Ipv4, Weak, Bc>),
    V6(TcpSocketId<Ipv6, Weak, Bc>),
}

/// `$body` with `$api` the TCP API of `$sock`'s IP version and `$id` its id.
macro_rules! on_tcp {
    ($ctx:expr, $sock:expr, |$api:ident, $id:ident| $body:expr) => {
        match $sock {
            Tcp::V4($id) => {
                #[allow(unused_mut)]
                let mut $api = $ctx.core_api().tcp::<Ipv4>();
                $body
            }
            Tcp::V6($id) => {
                #[allow(unused_mut)]
                let mut $api = $ctx.core_api().tcp::<Ipv6>();
                $body
            }
        }
    };
}

/// Where a socket's data lives (the test bindings' buffers).
#[derive(Debug)]
enum Buffers {
    /// Given at creation; filled in by Netstack3 when the connection starts.
    Provided(tcp_buffers::WriteBackClientBuffers),
    /// Handed back by `accept`.
    Accepted(tcp_buffers::ClientBuffers),
}

mod tcp_buffers {
    pub use netstack3_tcp::testutil::{ClientBuffers, ProvidedBuffers, WriteBackClientBuffers};
}

/// A socket the harness holds.
#[derive(Debug)]
struct Held {
    tcp: Tcp,
    buffers: Buffers,
    /// `listen`'s backlog, once it listens.
    backlog: Option<u32>,
    /// `SO_LINGER` 0: close aborts.
    linger_zero: bool,
}

impl Held {
    fn client(&self) -> Option<tcp_buffers::ClientBuffers> {
        match &self.buffers {
            Buffers::Provided(b) => b.0.lock().clone(),
            Buffers::Accepted(c) => Some(c.clone()),
        }
    }
}

/// Everything that lives inside the `catch_unwind` boundary.
struct Stack {
    ctx: FakeCtx,
    /// The one Ethernet device (`None` once removed, at drop).
    device: Option<EthernetDeviceId<Bc>>,
    /// The loopback device, through which Netstack3 delivers to its own addresses
    /// (`None` once removed, at drop).
    loopback: Option<LoopbackDeviceId<Bc>>,
    /// Set when Netstack3 panicked: its state is not to be trusted, even to tear down.
    poisoned: bool,
    from_stack: VecDeque<Vec<u8>>,
    held: BTreeMap<SocketId, Held>,
    next_accepted: u32,
    /// The neighbour table as Netstack3's neighbour events ([`nud::Event`]) built it, as
    /// its bindings keep it: address → state and MAC.
    neighbours: BTreeMap<IpAddr, (NudState, Option<MacAddr>)>,
}

/// Netstack3 in-process behind the [`Dut`] trait, on a virtual clock.
pub struct Netstack3Host {
    stack: Box<Stack>,
    dead: Option<String>,
    endpoints: Endpoints,
    config: Netstack3Config,
    deadlines: VirtualDeadlines,
}

impl std::fmt::Debug for Netstack3Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstack3Host")
            .field("config", &self.config)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

fn not_supported(what: impl Into<String>) -> DutError {
    DutError::NotSupported { what: what.into() }
}

/// The message a caught panic carries.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn v4(a: Ipv4Addr) -> net_types::ip::Ipv4Addr {
    net_types::ip::Ipv4Addr::new(a.octets())
}

fn v6(a: Ipv6Addr) -> net_types::ip::Ipv6Addr {
    net_types::ip::Ipv6Addr::from_bytes(a.octets())
}

fn std_v4(a: net_types::ip::Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(a.ipv4_bytes())
}

fn std_v6(a: net_types::ip::Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(a.ipv6_bytes())
}

fn tcp_state(s: netstack3_core::tcp::TcpSocketState) -> TcpState {
    use netstack3_core::tcp::TcpSocketState as S;
    match s {
        S::Established => TcpState::Established,
        S::SynSent => TcpState::SynSent,
        S::SynRecv => TcpState::SynReceived,
        S::FinWait1 => TcpState::FinWait1,
        S::FinWait2 => TcpState::FinWait2,
        S::TimeWait => TcpState::TimeWait,
        S::Close => TcpState::Closed,
        S::CloseWait => TcpState::CloseWait,
        S::LastAck => TcpState::LastAck,
        S::Listen => TcpState::Listen,
        S::Closing => TcpState::Closing,
    }
}

/// A neighbour state as Linux names it, and the MAC, from Netstack3's event state.
fn nud_state(state: nud::EventState<Mac>) -> (NudState, Option<MacAddr>) {
    use nud::EventDynamicState as D;
    let mac = |m: UnicastAddr<Mac>| Some(MacAddr(m.get().bytes()));
    match state {
        nud::EventState::Static(m) => (NudState::Permanent, mac(m)),
        nud::EventState::Dynamic(d) => match d {
            D::Incomplete => (NudState::Incomplete, None),
            D::Reachable(m) => (NudState::Reachable, mac(m)),
            D::Stale(m) => (NudState::Stale, mac(m)),
            D::Delay(m) => (NudState::Delay, mac(m)),
            D::Probe(m) => (NudState::Probe, mac(m)),
            D::Unreachable(m) => (NudState::Failed, mac(m)),
        },
    }
}

/// The Linux errno of the same meaning as a connection error Netstack3 reports.
fn connection_errno(e: ConnectionError) -> i32 {
    match e {
        ConnectionError::ConnectionRefused | ConnectionError::PortUnreachable => libc::ECONNREFUSED,
        ConnectionError::ConnectionReset => libc::ECONNRESET,
        ConnectionError::NetworkUnreachable => libc::ENETUNREACH,
        ConnectionError::HostUnreachable => libc::EHOSTUNREACH,
        ConnectionError::ProtocolUnreachable => libc::ENOPROTOOPT,
        ConnectionError::DestinationHostDown => libc::EHOSTDOWN,
        ConnectionError::SourceRouteFailed => libc::EOPNOTSUPP,
        ConnectionError::SourceHostIsolated => libc::ENONET,
        ConnectionError::TimedOut => libc::ETIMEDOUT,
        ConnectionError::PermissionDenied => libc::EPERM,
        ConnectionError::ProtocolError => libc::EPROTO,
        ConnectionError::Aborted => libc::ECONNABORTED,
    }
}

fn bind_errno(e: &BindError) -> i32 {
    use netstack3_core::error::LocalAddressError as L;
    match e {
        BindError::AlreadyBound => libc::EINVAL,
        BindError::LocalAddressError(L::AddressInUse | L::FailedToAllocateLocalPort) => {
            libc::EADDRINUSE
        }
        BindError::LocalAddressError(_) => libc::EADDRNOTAVAIL,
    }
}

fn connect_errno(e: &ConnectError) -> i32 {
    match e {
        ConnectError::NoPort => libc::EADDRNOTAVAIL,
        ConnectError::NoRoute => libc::ENETUNREACH,
        ConnectError::Zone(_) => libc::EINVAL,
        ConnectError::ConnectionExists => libc::EADDRINUSE,
        ConnectError::Listener => libc::EISCONN,
        ConnectError::Pending => libc::EALREADY,
        ConnectError::Completed => libc::EISCONN,
        ConnectError::Aborted => libc::ECONNABORTED,
        ConnectError::ConnectionError(c) => connection_errno(*c),
    }
}

impl Netstack3Host {
    /// Builds the stack (device, addresses, routes, seed) and, when
    /// `config.peer_preresolved`, teaches it the peer's MAC with one ARP request (and one
    /// neighbour solicitation) from the peer, whose answers are dropped.
    pub fn new(config: Netstack3Config) -> Result<Netstack3Host, DutError> {
        if let Err(e) = &config.fixed {
            return Err(DutError::Malformed {
                detail: format!("Netstack3's declared fixed behaviour: {e}"),
            });
        }
        let stack = catch_unwind(AssertUnwindSafe(|| Stack::new(&config))).map_err(|p| {
            DutError::Gone {
                what: format!("netstack3 panicked: {}", panic_message(p.as_ref())),
            }
        })??;
        let endpoints = Endpoints {
            harness_mac: config.harness_mac,
            stack_mac: config.stack_mac,
            stack_ipv4: config.ipv4.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv4: config.ipv4.as_ref().map(|v| v.peer),
            stack_ipv6: config.ipv6.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv6: config.ipv6.as_ref().map(|v| v.peer),
            mtu: config.mtu,
        };
        let mut target = Netstack3Host {
            stack: Box::new(stack),
            dead: None,
            endpoints,
            config,
            deadlines: VirtualDeadlines::default(),
        };
        if target.config.peer_preresolved && target.config.unsupported_settings.is_empty() {
            target.preresolve()?;
        }
        Ok(target)
    }

    /// The configuration the target was built with.
    pub fn config(&self) -> &Netstack3Config {
        &self.config
    }

    /// Runs `f` on Netstack3's context under the guard every call runs under (a panic
    /// kills the target and becomes [`DutError::Gone`]): for tests that drive Netstack3's
    /// API directly, and its negative controls.
    pub fn with_netstack3<T>(&mut self, f: impl FnOnce(&mut FakeCtx) -> T) -> Result<T, DutError> {
        self.guarded(|s| {
            let out = f(&mut s.ctx);
            s.collect();
            Ok(out)
        })
    }

    fn preresolve(&mut self) -> Result<(), DutError> {
        let c = self.config.clone();
        let mut frames = Vec::new();
        if let Some(v4) = &c.ipv4 {
            frames.push(Frame::arp_request(c.harness_mac, v4.peer, v4.stack).emit());
        }
        if let Some(v6) = &c.ipv6 {
            frames.push(
                Frame::icmpv6(
                    c.harness_mac,
                    c.stack_mac,
                    v6.peer,
                    v6.stack,
                    Icmpv6Message::neighbor_solicitation(v6.stack, Some(c.harness_mac)),
                )
                .emit(),
            );
        }
        self.guarded(|s| {
            for frame in frames {
                s.receive(frame);
            }
            s.from_stack.clear();
            Ok(())
        })
    }

    /// Runs `f` on the stack unless Netstack3 panicked before; a panic now kills the target.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Stack) -> Result<T, DutError>,
    ) -> Result<T, DutError> {
        if let Some(what) = &self.dead {
            return Err(DutError::Gone { what: what.clone() });
        }
        if let Some(setting) = self.config.unsupported_settings.first() {
            return Err(not_supported(format!(
                "the check pins {setting}, which has no Netstack3 equivalent"
            )));
        }
        let stack = &mut self.stack;
        match catch_unwind(AssertUnwindSafe(|| f(stack))) {
            Ok(r) => r,
            Err(panic) => {
                let what = format!("netstack3 panicked: {}", panic_message(panic.as_ref()));
                self.stack.poisoned = true;
                self.dead = Some(what.clone());
                Err(DutError::Gone { what })
            }
        }
    }

    fn virtual_deadline(&mut self, deadline: std::time::Instant) -> Duration {
        let now = netconform::time::Instant::from_micros(self.stack.now().as_micros() as u64);
        let at = self.deadlines.map(deadline, now);
        Duration::from_micros(at.total_micros())
    }
}

impl Stack {
    fn new(config: &Netstack3Config) -> Result<Stack, DutError> {
        let mut ctx = FakeCtx::default();
        ctx.bindings_ctx.seed_rng(config.random_seed);
        let mac = UnicastAddr::new(Mac::new(config.stack_mac.0))
            .ok_or_else(|| not_supported("a stack MAC that is not unicast"))?;
        let max_frame_size = MaxEthernetFrameSize::from_mtu(Mtu::new(config.mtu))
            .ok_or_else(|| not_supported(format!("an MTU of {}", config.mtu)))?;
        let device = ctx
            .core_api()
            .device::<EthernetLinkDevice>()
            .add_device_with_default_state(
                EthernetCreationProperties {
                    mac,
                    max_frame_size,
                    tx_offload_spec: Default::default(),
                },
                RawMetric(100),
            );
        let id: DeviceId<Bc> = device.clone().into();
        // Nothing the stack would send unasked before the session (RFC 5227 probes, IGMP
        // and MLD reports, DAD, router solicitations): the Linux lab has them off too.
        let quiet = |enabled: bool| IpDeviceConfigurationUpdate {
            ip_enabled: Some(enabled),
            gmp_enabled: Some(false),
            dad_transmits: Some(None),
            ..Default::default()
        };
        let _ = ctx
            .core_api()
            .device_ip::<Ipv4>()
            .update_configuration(
                &id,
                Ipv4DeviceConfigurationUpdate {
                    ip_config: quiet(config.ipv4.is_some()),
                    ..Default::default()
                },
            )
            .map_err(|e| not_supported(format!("IPv4 device configuration: {e:?}")))?;
        let _ = ctx
            .core_api()
            .device_ip::<Ipv6>()
            .update_configuration(
                &id,
                Ipv6DeviceConfigurationUpdate {
                    max_router_solicitations: Some(None),
                    ip_config: quiet(config.ipv6.is_some()),
                    ..Default::default()
                },
            )
            .map_err(|e| not_supported(format!("IPv6 device configuration: {e:?}")))?;
        let mut subnets = Vec::new();
        if let Some(c) = &config.ipv4 {
            let addr = AddrSubnetEither::new(v4(c.stack).into(), c.prefix_len)
                .map_err(|e| not_supported(format!("IPv4 address {}: {e:?}", c.stack)))?;
            subnets.push(SubnetEither::V4(
                Subnet::new(v4(c.stack).mask(c.prefix_len), c.prefix_len)
                    .map_err(|e| not_supported(format!("IPv4 subnet: {e:?}")))?,
            ));
            ctx.core_api()
                .device_ip_any()
                .add_ip_addr_subnet(&id, addr)
                .map_err(|e| not_supported(format!("IPv4 address {}: {e:?}", c.stack)))?;
        }
        if let Some(c) = &config.ipv6 {
            let addr = AddrSubnetEither::new(v6(c.stack).into(), c.prefix_len)
                .map_err(|e| not_supported(format!("IPv6 address {}: {e:?}", c.stack)))?;
            subnets.push(SubnetEither::V6(
                Subnet::new(v6(c.stack).mask(c.prefix_len), c.prefix_len)
                    .map_err(|e| not_supported(format!("IPv6 subnet: {e:?}")))?,
            ));
            ctx.core_api()
                .device_ip_any()
                .add_ip_addr_subnet(&id, addr)
                .map_err(|e| not_supported(format!("IPv6 address {}: {e:?}", c.stack)))?;
        }
        for subnet in subnets {
            ctx.test_api()
                .add_route(AddableEntryEither::without_gateway(
                    subnet,
                    id.clone(),
                    AddableMetric::ExplicitMetric(RawMetric(0)),
                ))
                .map_err(|e| not_supported(format!("the on-link route {subnet:?}: {e:?}")))?;
        }
        // Every Netstack3 has a loopback device (its bindings add it first); a route lookup
        // of one of its own addresses answers through it.
        let loopback = ctx.test_api().add_loopback();
        let mut stack = Stack {
            ctx,
            device: Some(device),
            loopback: Some(loopback),
            poisoned: false,
            from_stack: VecDeque::new(),
            held: BTreeMap::new(),
            next_accepted: SocketId::ACCEPTED_BASE,
            neighbours: BTreeMap::new(),
        };
        // Whatever enabling the device sent (nothing, with the settings above) is not the
        // session's.
        stack.collect();
        stack.from_stack.clear();
        Ok(stack)
    }

    fn now(&self) -> Duration {
        self.ctx.bindings_ctx.now().offset
    }

    /// Moves the frames Netstack3 sent into the queue the harness reads, and its neighbour
    /// events into the neighbour table.
    fn collect(&mut self) {
        for (_, frame) in self.ctx.bindings_ctx.take_ethernet_frames() {
            self.from_stack.push_back(frame);
        }
        for event in self.ctx.bindings_ctx.take_events() {
            let (addr, kind) = match event {
                DispatchedEvent::NeighborIpv4(e) => (IpAddr::V4(std_v4(e.addr.get())), e.kind),
                DispatchedEvent::NeighborIpv6(e) => (IpAddr::V6(std_v6(e.addr.get())), e.kind),
                _ => continue,
            };
            match kind {
                nud::EventKind::Added(state) | nud::EventKind::Changed(state) => {
                    self.neighbours.insert(addr, nud_state(state));
                }
                nud::EventKind::Removed => {
                    self.neighbours.remove(&addr);
                }
            }
        }
    }

    /// Hands Netstack3 one frame, then collects what it sent in answer.
    fn receive(&mut self, frame: Vec<u8>) {
        let Some(device) = self.device.clone() else {
            return;
        };
        self.ctx
            .test_api()
            .receive_ethernet_frame(&device, packet::Buf::new(frame, ..));
        self.collect();
    }

    /// When Netstack3's next timer is due.
    fn next_timer(&self) -> Option<Duration> {
        self.ctx
            .bindings_ctx
            .timer_ctx()
            .timers
            .peek()
            .map(|t| t.0.offset)
    }

    /// Fires Netstack3's timers in order, advancing the clock to each, until `done` holds
    /// (true) or the next timer lies beyond `deadline` (false; the clock then reads
    /// `deadline`).
    fn wait_until(&mut self, deadline: Duration, mut done: impl FnMut(&mut Stack) -> bool) -> bool {
        for _ in 0..MAX_TIMERS_PER_WAIT {
            self.collect();
            if done(self) {
                return true;
            }
            match self.next_timer() {
                Some(at) if at <= deadline => {
                    let _ = self.ctx.trigger_next_timer::<TimerId<Bc>>();
                }
                _ => {
                    let now = self.now();
                    if deadline > now {
                        self.ctx.bindings_ctx.sleep(deadline - now);
                    }
                    self.collect();
                    return done(self);
                }
            }
        }
        false
    }

    fn held(&self, id: SocketId) -> Result<&Held, DutError> {
        self.held.get(&id).ok_or(DutError::UnknownSocket(id))
    }

    fn create(&mut self, sock: SocketId, family: Family) -> Result<(), DutError> {
        if self.held.contains_key(&sock) {
            return Err(DutError::SocketExists(sock));
        }
        let provided = tcp_buffers::WriteBackClientBuffers::default();
        let extra = tcp_buffers::ProvidedBuffers::Buffers(provided.clone());
        let tcp = match family {
            Family::Ipv4 => Tcp::V4(self.ctx.core_api().tcp::<Ipv4>().create(extra)),
            Family::Ipv6 => Tcp::V6(self.ctx.core_api().tcp::<Ipv6>().create(extra)),
        };
        self.held.insert(
            sock,
            Held {
                tcp,
                buffers: Buffers::Provided(provided),
                backlog: None,
                linger_zero: false,
            },
        );
        Ok(())
    }

    fn ensure(&mut self, sock: SocketId, family: Family) -> Result<(), DutError> {
        if self.held.contains_key(&sock) {
            Ok(())
        } else {
            self.create(sock, family)
        }
    }

    fn state_of(&mut self, sock: SocketId) -> Result<TcpState, DutError> {
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        Ok(on_tcp!(self.ctx, &held.tcp, |api, id| tcp_state(
            api.get_tcp_info(id).state
        )))
    }

    fn socket_error(&mut self, sock: SocketId) -> Result<Option<i32>, DutError> {
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        Ok(on_tcp!(self.ctx, &held.tcp, |api, id| api.get_socket_error(id)).map(connection_errno))
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        if call.is_udp() && !matches!(call, SocketCall::Close { .. }) {
            return Err(not_supported(format!(
                "{call}: the netstack3 target drives TCP sockets only so far (netstack3-core's \
                 test bindings keep a datagram's payload but not its source address)"
            )));
        }
        match *call {
            SocketCall::Socket { sock, family } => {
                self.create(sock, family)?;
                Ok(CallOutcome::Ok)
            }
            SocketCall::Bind { sock, addr, port } => {
                self.ensure(sock, family_of(addr))?;
                Ok(match self.bind(sock, Some(addr), port)? {
                    Ok(()) => CallOutcome::Ok,
                    Err(code) => CallOutcome::errno(code),
                })
            }
            SocketCall::Listen {
                sock,
                family,
                addr,
                port,
                backlog,
            } => self.listen(sock, family, addr, port, backlog),
            SocketCall::Accept {
                listener,
                timeout_ms,
            } => self.accept(listener, timeout_ms),
            SocketCall::Connect {
                sock,
                family,
                addr,
                port,
            } => self.connect(sock, family, addr, port),
            SocketCall::WaitConnected { sock, timeout_ms } => self.wait_connected(sock, timeout_ms),
            SocketCall::Send { sock, ref data } => self.send(sock, data),
            SocketCall::Recv {
                sock,
                max,
                timeout_ms,
            } => self.recv(sock, max, timeout_ms),
            SocketCall::Shutdown { sock, how } => self.shutdown(sock, how),
            SocketCall::Close { sock } => self.close(sock),
            SocketCall::SetOption { sock, option } => self.set_option(sock, option),
            SocketCall::UdpBind { .. }
            | SocketCall::SendTo { .. }
            | SocketCall::RecvFrom { .. } => {
                unreachable!("refused above")
            }
        }
    }

    /// Binds `sock` to `addr` (`None` or unspecified: any) and `port` (0: Netstack3 picks):
    /// the errno of a refusal.
    fn bind(
        &mut self,
        sock: SocketId,
        addr: Option<IpAddr>,
        port: u16,
    ) -> Result<Result<(), i32>, DutError> {
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        let port = NonZeroU16::new(port);
        let addr = addr.filter(|a| !a.is_unspecified());
        let result = match (&held.tcp, addr) {
            (Tcp::V4(id), None) => self.ctx.core_api().tcp::<Ipv4>().bind(id, None, port),
            (Tcp::V4(id), Some(IpAddr::V4(a))) => {
                let a = SpecifiedAddr::new(v4(a)).map(ZonedAddr::Unzoned);
                self.ctx.core_api().tcp::<Ipv4>().bind(id, a, port)
            }
            (Tcp::V6(id), None) => self.ctx.core_api().tcp::<Ipv6>().bind(id, None, port),
            (Tcp::V6(id), Some(IpAddr::V6(a))) => {
                let a = SpecifiedAddr::new(v6(a)).map(ZonedAddr::Unzoned);
                self.ctx.core_api().tcp::<Ipv6>().bind(id, a, port)
            }
            (_, Some(_)) => return Ok(Err(libc::EAFNOSUPPORT)),
        };
        Ok(result.map_err(|e| bind_errno(&e)))
    }

    fn listen(
        &mut self,
        sock: SocketId,
        family: Family,
        addr: Option<IpAddr>,
        port: u16,
        backlog: u32,
    ) -> Result<CallOutcome, DutError> {
        self.ensure(sock, family)?;
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        if held.backlog.is_some() {
            return Ok(CallOutcome::Ok);
        }
        // As the Linux agent does: SO_REUSEADDR, then bind, then listen.
        let _ = on_tcp!(self.ctx, &held.tcp, |api, id| api.set_reuseaddr(id, true));
        if let Err(code) = self.bind(sock, addr, port)? {
            return Ok(CallOutcome::errno(code));
        }
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        let n = NonZeroUsize::new(backlog.max(1) as usize).unwrap_or(NonZeroUsize::MIN);
        let result = on_tcp!(self.ctx, &held.tcp, |api, id| api.listen(id, n));
        match result {
            Ok(()) => {}
            Err(ListenError::ListenerExists) => return Ok(CallOutcome::errno(libc::EADDRINUSE)),
            Err(ListenError::NotSupported) => return Ok(CallOutcome::errno(libc::EINVAL)),
        }
        if let Some(h) = self.held.get_mut(&sock) {
            h.backlog = Some(backlog);
        }
        self.collect();
        Ok(CallOutcome::Ok)
    }

    /// One connection from `listener`'s accept queue, if one is ready.
    fn try_accept(&mut self, listener: SocketId) -> Result<Option<Held>, DutError> {
        let held = self
            .held
            .get(&listener)
            .ok_or(DutError::UnknownSocket(listener))?;
        Ok(match &held.tcp {
            Tcp::V4(id) => self
                .ctx
                .core_api()
                .tcp::<Ipv4>()
                .accept(id)
                .ok()
                .map(|(id, _, b)| (Tcp::V4(id), b)),
            Tcp::V6(id) => self
                .ctx
                .core_api()
                .tcp::<Ipv6>()
                .accept(id)
                .ok()
                .map(|(id, _, b)| (Tcp::V6(id), b)),
        }
        .map(|(tcp, buffers)| Held {
            tcp,
            buffers: Buffers::Accepted(buffers),
            backlog: None,
            linger_zero: held.linger_zero,
        }))
    }

    fn accept(&mut self, listener: SocketId, timeout_ms: u64) -> Result<CallOutcome, DutError> {
        if self.held(listener)?.backlog.is_none() {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        let deadline = self.now() + Duration::from_millis(timeout_ms);
        let mut got = None;
        let mut failed = None;
        self.wait_until(deadline, |s| match s.try_accept(listener) {
            Ok(Some(h)) => {
                got = Some(h);
                true
            }
            Ok(None) => false,
            Err(e) => {
                failed = Some(e);
                true
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(held) = got else {
            return Ok(CallOutcome::TimedOut);
        };
        let mut id = SocketId(self.next_accepted);
        while self.held.contains_key(&id) {
            id = SocketId(id.0.wrapping_add(1));
        }
        self.next_accepted = id.0.wrapping_add(1);
        self.held.insert(id, held);
        Ok(CallOutcome::NewSocket(id))
    }

    fn connect(
        &mut self,
        sock: SocketId,
        family: Family,
        addr: IpAddr,
        port: u16,
    ) -> Result<CallOutcome, DutError> {
        self.ensure(sock, family)?;
        let Some(port) = NonZeroU16::new(port) else {
            return Ok(CallOutcome::errno(libc::ECONNREFUSED));
        };
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        let result = match (&held.tcp, addr) {
            (Tcp::V4(id), IpAddr::V4(a)) => {
                let a = SpecifiedAddr::new(v4(a)).map(ZonedAddr::Unzoned);
                self.ctx.core_api().tcp::<Ipv4>().connect(id, a, port)
            }
            (Tcp::V6(id), IpAddr::V6(a)) => {
                let a = SpecifiedAddr::new(v6(a)).map(ZonedAddr::Unzoned);
                self.ctx.core_api().tcp::<Ipv6>().connect(id, a, port)
            }
            _ => return Ok(CallOutcome::errno(libc::EAFNOSUPPORT)),
        };
        self.collect();
        Ok(match result {
            Ok(()) => CallOutcome::Ok,
            Err(e) => CallOutcome::errno(connect_errno(&e)),
        })
    }

    fn wait_connected(&mut self, sock: SocketId, timeout_ms: u64) -> Result<CallOutcome, DutError> {
        self.held(sock)?;
        let deadline = self.now() + Duration::from_millis(timeout_ms);
        let settled = |s: &mut Stack| {
            !matches!(
                s.state_of(sock),
                Ok(TcpState::SynSent | TcpState::SynReceived)
            )
        };
        if !self.wait_until(deadline, settled) {
            return Ok(CallOutcome::TimedOut);
        }
        if let Some(code) = self.socket_error(sock)? {
            return Ok(CallOutcome::errno(code));
        }
        Ok(match self.state_of(sock)? {
            TcpState::Closed | TcpState::Listen => CallOutcome::errno(libc::ENOTCONN),
            _ => CallOutcome::Ok,
        })
    }

    fn send(&mut self, sock: SocketId, data: &[u8]) -> Result<CallOutcome, DutError> {
        let state = self.state_of(sock)?;
        let outcome = match state {
            TcpState::SynSent | TcpState::SynReceived => CallOutcome::errno(libc::EAGAIN),
            TcpState::Established | TcpState::CloseWait => {
                let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
                match held.client() {
                    Some(client) => {
                        client.send.lock().extend_from_slice(data);
                        on_tcp!(self.ctx, &held.tcp, |api, id| api.do_send(id));
                        CallOutcome::Sent(data.len())
                    }
                    None => CallOutcome::errno(libc::EPIPE),
                }
            }
            TcpState::Closed => match self.socket_error(sock)? {
                Some(code) => CallOutcome::errno(code),
                None => CallOutcome::errno(libc::EPIPE),
            },
            _ => CallOutcome::errno(libc::EPIPE),
        };
        self.collect();
        Ok(outcome)
    }

    /// Bytes waiting in `sock`'s receive buffer.
    fn readable(&self, sock: SocketId) -> usize {
        self.held.get(&sock).and_then(Held::client).map_or(0, |c| {
            use netstack3_core::tcp::Buffer as _;
            c.receive.lock().limits().len
        })
    }

    fn recv(
        &mut self,
        sock: SocketId,
        max: usize,
        timeout_ms: u64,
    ) -> Result<CallOutcome, DutError> {
        if self.held(sock)?.backlog.is_some() {
            return Ok(CallOutcome::errno(libc::ENOTCONN));
        }
        let deadline = self.now() + Duration::from_millis(timeout_ms);
        let ready = |s: &mut Stack| {
            s.readable(sock) > 0
                || !matches!(
                    s.state_of(sock),
                    Ok(TcpState::SynSent
                        | TcpState::SynReceived
                        | TcpState::Established
                        | TcpState::FinWait1
                        | TcpState::FinWait2)
                )
        };
        if !self.wait_until(deadline, ready) {
            return Ok(CallOutcome::TimedOut);
        }
        if self.readable(sock) > 0 {
            let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
            let mut out = Vec::new();
            if let Some(client) = held.client() {
                client.receive.lock().read_with(|slices| {
                    for s in slices {
                        let take = (max - out.len()).min(s.len());
                        out.extend_from_slice(&s[..take]);
                    }
                    out.len()
                });
            }
            on_tcp!(self.ctx, &held.tcp, |api, id| api
                .on_receive_buffer_read(id));
            self.collect();
            return Ok(CallOutcome::Data(out));
        }
        if let Some(code) = self.socket_error(sock)? {
            return Ok(CallOutcome::errno(code));
        }
        Ok(match self.state_of(sock)? {
            TcpState::Closed if max > 0 => CallOutcome::Eof,
            _ if max == 0 => CallOutcome::Data(Vec::new()),
            _ => CallOutcome::Eof,
        })
    }

    fn shutdown(&mut self, sock: SocketId, how: ShutdownHow) -> Result<CallOutcome, DutError> {
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        let how = match how {
            ShutdownHow::Read => ShutdownType::Receive,
            ShutdownHow::Write => ShutdownType::Send,
            ShutdownHow::Both => ShutdownType::SendAndReceive,
        };
        let result = on_tcp!(self.ctx, &held.tcp, |api, id| api.shutdown(id, how));
        self.collect();
        Ok(match result {
            Ok(_) => CallOutcome::Ok,
            Err(_) => CallOutcome::errno(libc::ENOTCONN),
        })
    }

    /// Aborts `sock`'s connection (RST), as Linux's close with `SO_LINGER` 0 does:
    /// Netstack3's `disconnect_bound` on the socket's cookie.
    fn abort(&mut self, held: &Held) {
        let matcher = |cookie| {
            [IpSocketMatcher::<()>::Cookie(SocketCookieMatcher {
                cookie,
                invert: false,
            })]
        };
        match &held.tcp {
            Tcp::V4(id) => {
                let m = matcher(id.socket_cookie().export_value());
                let _ = self.ctx.core_api().tcp::<Ipv4>().disconnect_bound(&m[..]);
            }
            Tcp::V6(id) => {
                let m = matcher(id.socket_cookie().export_value());
                let _ = self.ctx.core_api().tcp::<Ipv6>().disconnect_bound(&m[..]);
            }
        }
    }

    fn close(&mut self, sock: SocketId) -> Result<CallOutcome, DutError> {
        let held = self
            .held
            .remove(&sock)
            .ok_or(DutError::UnknownSocket(sock))?;
        if held.linger_zero {
            self.abort(&held);
        }
        match held.tcp {
            Tcp::V4(id) => self.ctx.core_api().tcp::<Ipv4>().close(id),
            Tcp::V6(id) => self.ctx.core_api().tcp::<Ipv6>().close(id),
        }
        self.collect();
        Ok(CallOutcome::Ok)
    }

    fn set_option(
        &mut self,
        sock: SocketId,
        option: SocketOption,
    ) -> Result<CallOutcome, DutError> {
        let secs = |s: u32, name: &str| {
            NonZeroDuration::from_secs(u64::from(s))
                .ok_or_else(|| not_supported(format!("{name} 0 s: Linux refuses it (EINVAL)")))
        };
        let held = self.held.get(&sock).ok_or(DutError::UnknownSocket(sock))?;
        let tcp = &held.tcp;
        let value = match option {
            SocketOption::KeepAlive(on) => {
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.keep_alive.enabled = on));
                SocketOption::KeepAlive(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| o.keep_alive.enabled)))
            }
            SocketOption::KeepIdle(s) => {
                let d = secs(s, "TCP_KEEPIDLE")?;
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.keep_alive.idle = d));
                SocketOption::KeepIdle(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| o.keep_alive.idle.get().as_secs() as u32)))
            }
            SocketOption::KeepInterval(s) => {
                let d = secs(s, "TCP_KEEPINTVL")?;
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.keep_alive.interval = d));
                SocketOption::KeepInterval(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| o.keep_alive.interval.get().as_secs() as u32)))
            }
            SocketOption::KeepCount(n) => {
                let n = u8::try_from(n)
                    .ok()
                    .and_then(NonZeroU8::new)
                    .ok_or_else(|| {
                        not_supported(format!(
                            "TCP_KEEPCNT {n}: Netstack3 keeps the count in 1..=255"
                        ))
                    })?;
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.keep_alive.count = n));
                SocketOption::KeepCount(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| u32::from(o.keep_alive.count.get()))))
            }
            SocketOption::NoDelay(on) => {
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.nagle_enabled = !on));
                SocketOption::NoDelay(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| !o.nagle_enabled)))
            }
            SocketOption::QuickAck(on) => {
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.delayed_ack = !on));
                SocketOption::QuickAck(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| !o.delayed_ack)))
            }
            SocketOption::UserTimeout(ms) => {
                let d = NonZeroDuration::from_millis(u64::from(ms));
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.user_timeout = d));
                SocketOption::UserTimeout(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| o
                        .user_timeout
                        .map_or(0, |d| d.get().as_millis() as u32))))
            }
            SocketOption::SynCount(n) => {
                let n = u8::try_from(n)
                    .ok()
                    .and_then(NonZeroU8::new)
                    .ok_or_else(|| {
                        not_supported(format!("TCP_SYNCNT {n}: Netstack3 keeps it in 1..=255"))
                    })?;
                on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options_mut(id, |o| o.max_syn_retries = n));
                SocketOption::SynCount(on_tcp!(self.ctx, tcp, |api, id| api
                    .with_socket_options(id, |o| u32::from(o.max_syn_retries.get()))))
            }
            SocketOption::RecvBuffer(_)
                if !matches!(
                    on_tcp!(self.ctx, tcp, |api, id| api.get_tcp_info(id).state),
                    netstack3_core::tcp::TcpSocketState::Close
                        | netstack3_core::tcp::TcpSocketState::Listen
                ) =>
            {
                return Err(not_supported(
                    "SO_RCVBUF on a connection: the receive buffer of netstack3-core's test \
                     bindings (RingBuffer) cannot change size once the connection has it \
                     (request_capacity is unimplemented!)",
                ));
            }
            SocketOption::RecvBuffer(bytes) => {
                on_tcp!(self.ctx, tcp, |api, id| api
                    .set_receive_buffer_size(id, bytes as usize));
                let kept = on_tcp!(self.ctx, tcp, |api, id| api.receive_buffer_size(id));
                SocketOption::RecvBuffer(kept.unwrap_or(bytes as usize) as u32)
            }
            SocketOption::Linger(None) => {
                if let Some(h) = self.held.get_mut(&sock) {
                    h.linger_zero = false;
                }
                SocketOption::Linger(None)
            }
            SocketOption::Linger(Some(0)) => {
                if let Some(h) = self.held.get_mut(&sock) {
                    h.linger_zero = true;
                }
                SocketOption::Linger(Some(0))
            }
            SocketOption::Linger(Some(secs)) => {
                return Err(not_supported(format!(
                    "SO_LINGER {secs} s: Netstack3's close never waits for the data to be sent"
                )));
            }
            SocketOption::MaxSegment(_) => {
                return Err(not_supported(
                    "TCP_MAXSEG: Netstack3 has no per-socket MSS setting (its MSS follows the \
                     route's MTU)",
                ));
            }
        };
        self.collect();
        Ok(CallOutcome::OptionValue(value))
    }

    fn tcp_sockets(&mut self) -> Vec<TcpSocketState> {
        let mut v4: Vec<TcpSocketDiagnostics<Ipv4, _>> = Vec::new();
        let mut v6: Vec<TcpSocketDiagnostics<Ipv6, _>> = Vec::new();
        let all: &[IpSocketMatcher<()>] = &[];
        self.ctx
            .core_api()
            .tcp::<Ipv4>()
            .bound_sockets_diagnostics(all, &mut v4, false);
        self.ctx
            .core_api()
            .tcp::<Ipv6>()
            .bound_sockets_diagnostics(all, &mut v6, false);
        let mut out = Vec::new();
        let mut push = |state, local: SocketAddr, remote: SocketAddr, cookie| {
            let (sock, held) = match self.held.iter().find(|(_, h)| match &h.tcp {
                Tcp::V4(id) => id.socket_cookie() == cookie,
                Tcp::V6(id) => id.socket_cookie() == cookie,
            }) {
                Some((sock, held)) => (Some(*sock), Some(held)),
                None => (None, None),
            };
            if state == TcpState::Closed {
                return;
            }
            let (recv_queue, send_queue) = match held {
                Some(h) if state == TcpState::Listen => (0, h.backlog.unwrap_or(0)),
                Some(h) => h.client().map_or((0, 0), |c| {
                    use netstack3_core::tcp::Buffer as _;
                    (
                        c.receive.lock().limits().len as u32,
                        c.send.lock().len() as u32,
                    )
                }),
                None => (0, 0),
            };
            out.push(TcpSocketState {
                state,
                local,
                remote,
                sock,
                recv_queue,
                send_queue,
            });
        };
        for d in v4 {
            let (local, remote) = match d.tuple {
                TcpSocketDiagnosticTuple::Bound { src_addr, src_port } => (
                    SocketAddr::new(
                        src_addr.map_or(unspecified(Family::Ipv4), |a| IpAddr::V4(std_v4(a))),
                        src_port.get(),
                    ),
                    SocketAddr::new(unspecified(Family::Ipv4), 0),
                ),
                TcpSocketDiagnosticTuple::Connected {
                    src_addr,
                    src_port,
                    dst_addr,
                    dst_port,
                } => (
                    SocketAddr::new(IpAddr::V4(std_v4(src_addr)), src_port.get()),
                    SocketAddr::new(IpAddr::V4(std_v4(dst_addr)), dst_port.get()),
                ),
            };
            push(tcp_state(d.state_machine), local, remote, d.cookie);
        }
        for d in v6 {
            let (local, remote) = match d.tuple {
                TcpSocketDiagnosticTuple::Bound { src_addr, src_port } => (
                    SocketAddr::new(
                        src_addr.map_or(unspecified(Family::Ipv6), |a| IpAddr::V6(std_v6(a))),
                        src_port.get(),
                    ),
                    SocketAddr::new(unspecified(Family::Ipv6), 0),
                ),
                TcpSocketDiagnosticTuple::Connected {
                    src_addr,
                    src_port,
                    dst_addr,
                    dst_port,
                } => (
                    SocketAddr::new(IpAddr::V6(std_v6(src_addr)), src_port.get()),
                    SocketAddr::new(IpAddr::V6(std_v6(dst_addr)), dst_port.get()),
                ),
            };
            push(tcp_state(d.state_machine), local, remote, d.cookie);
        }
        out
    }
}

impl Stack {
    /// Closes every socket and removes the device, as Netstack3 wants before its state is
    /// dropped (it checks that no strong reference outlives what it refers to).
    fn teardown(&mut self) {
        for (_, held) in std::mem::take(&mut self.held) {
            match held.tcp {
                Tcp::V4(id) => self.ctx.core_api().tcp::<Ipv4>().close(id),
                Tcp::V6(id) => self.ctx.core_api().tcp::<Ipv6>().close(id),
            }
        }
        if let Some(device) = self.device.take() {
            self.ctx.test_api().clear_routes_and_remove_device(device);
        }
        if let Some(loopback) = self.loopback.take() {
            self.ctx.test_api().clear_routes_and_remove_device(loopback);
        }
        // What the teardown said (neighbours removed, addresses gone) is nobody's: the
        // test bindings refuse to be dropped with events nobody took.
        let _ = self.ctx.bindings_ctx.take_events();
        let _ = self.ctx.bindings_ctx.take_ethernet_frames();
    }
}

impl Drop for Stack {
    /// Tears the stack down; when Netstack3 panicked before (or panics now), its state is
    /// left unfreed rather than dropped half-consistent (memory only: the stack holds no
    /// file, socket or thread).
    fn drop(&mut self) {
        let clean = !self.poisoned && catch_unwind(AssertUnwindSafe(|| self.teardown())).is_ok();
        if !clean {
            std::mem::forget(std::mem::take(&mut self.held));
            std::mem::forget(self.device.take());
            std::mem::forget(self.loopback.take());
            std::mem::forget(std::mem::take(&mut self.ctx));
        }
    }
}

impl Dut for Netstack3Host {
    fn name(&self) -> &str {
        "netstack3"
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!("netstack3-core version = {NETSTACK3_VERSION}"),
            format!("netstack3 random seed = {:#x}", self.config.random_seed),
            format!("mtu = {}", self.config.mtu),
            format!("peer pre-resolved = {}", self.config.peer_preresolved),
            "clock = virtual (time advances only while the harness waits)".to_string(),
        ];
        env.extend(
            self.config
                .unsupported_settings
                .iter()
                .map(|s| format!("pinned setting without Netstack3 equivalent: {s}")),
        );
        env.extend(CONSTANTS.iter().map(|s| s.to_string()));
        if let Ok(Some(f)) = &self.config.fixed {
            env.push(format!(
                "fixed behaviour declared in {} ({})",
                f.file, f.stack
            ));
        }
        env
    }

    fn fixed_behaviour(&self) -> Option<Arc<FixedBehaviour>> {
        self.config.fixed.clone().ok().flatten()
    }

    fn virtual_now(&self) -> Option<netconform::time::Instant> {
        Some(netconform::time::Instant::from_micros(
            self.stack.now().as_micros() as u64,
        ))
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for Netstack3Host {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        let frame = frame.to_vec();
        self.guarded(|s| {
            s.receive(frame);
            Ok(())
        })
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        let deadline = self.virtual_deadline(deadline);
        self.guarded(|s| {
            if s.wait_until(deadline, |s| !s.from_stack.is_empty()) {
                Ok(s.from_stack.pop_front())
            } else {
                Ok(None)
            }
        })
    }
}

impl Sockets for Netstack3Host {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.guarded(|s| s.call(call))
    }
}

/// The interface index the target reports for its Ethernet device (Netstack3's device
/// ids carry no number; its bindings number them, the loopback first, as Linux does).
pub const IFINDEX: u32 = 2;

/// The name the target reports for its Ethernet device.
pub const DEVICE_NAME: &str = "ns3eth0";

/// The interface index and name the target reports for the loopback device.
pub const LOOPBACK: (u32, &str) = (1, "lo");

impl Stack {
    fn neighbour_entries(&self) -> Vec<NeighbourEntry> {
        self.neighbours
            .iter()
            .map(|(dst, (state, lladdr))| NeighbourEntry {
                ifindex: IFINDEX,
                dst: *dst,
                lladdr: *lladdr,
                state: *state,
                probes: None,
                cacheinfo: None,
            })
            .collect()
    }

    /// `ip route get dst [from src]` on Netstack3's route resolution (the one a socket's
    /// connect runs, `resolve_output_route_to_destination`).
    fn route_get(&mut self, dst: IpAddr, src: Option<IpAddr>) -> Result<StateAnswer, DutError> {
        use netstack3_base::IpDeviceAddr;
        use netstack3_core::routes::{NextHop, RoutableIpAddr};
        let loopback: Option<DeviceId<Bc>> = self.loopback.clone().map(Into::into);
        let found = |kind: &str, device: &DeviceId<Bc>, gateway: Option<IpAddr>, src: IpAddr| {
            let (oif, dev) = if loopback.as_ref() == Some(device) {
                LOOPBACK
            } else {
                (IFINDEX, DEVICE_NAME)
            };
            StateAnswer::Route {
                lookup: RouteLookup {
                    dst,
                    oif: Some(oif),
                    gateway,
                    src: Some(src),
                    kind: kind.to_string(),
                },
                dev: Some(dev.to_string()),
            }
        };
        let none = StateAnswer::NoRoute {
            dst,
            failure: RouteError::NetUnreachable,
        };
        let marks = netstack3_core::routes::Marks::default();
        Ok(match (dst, src) {
            (IpAddr::V4(d), src) => {
                let d = RoutableIpAddr::new(v4(d));
                let r = match src {
                    None => self
                        .ctx
                        .test_api()
                        .resolve_route_with_marks::<Ipv4>(d, &marks),
                    Some(IpAddr::V4(s)) => match IpDeviceAddr::new(v4(s)) {
                        Some(s) => self
                            .ctx
                            .test_api()
                            .resolve_route_with_src_addr::<Ipv4>(s, d),
                        None => return Ok(none),
                    },
                    Some(IpAddr::V6(_)) => return Ok(none),
                };
                match r {
                    Ok(r) => {
                        let src = IpAddr::V4(std_v4(r.src_addr.addr()));
                        let d = &r.device;
                        match (r.local_delivery_device.is_some(), r.next_hop) {
                            (true, _) => found("Local", d, None, src),
                            (false, NextHop::Broadcast(_)) => found("Broadcast", d, None, src),
                            (false, NextHop::Gateway(g)) => {
                                found("Unicast", d, Some(IpAddr::V4(std_v4(g.get()))), src)
                            }
                            (false, NextHop::RemoteAsNeighbor) => found("Unicast", d, None, src),
                        }
                    }
                    Err(_) => none,
                }
            }
            (IpAddr::V6(d), src) => {
                let d = RoutableIpAddr::new(v6(d));
                let r = match src {
                    None => self
                        .ctx
                        .test_api()
                        .resolve_route_with_marks::<Ipv6>(d, &marks),
                    Some(IpAddr::V6(s)) => match IpDeviceAddr::new(v6(s)) {
                        Some(s) => self
                            .ctx
                            .test_api()
                            .resolve_route_with_src_addr::<Ipv6>(s, d),
                        None => return Ok(none),
                    },
                    Some(IpAddr::V4(_)) => return Ok(none),
                };
                match r {
                    Ok(r) => {
                        let src = IpAddr::V6(std_v6(r.src_addr.addr()));
                        let d = &r.device;
                        match (r.local_delivery_device.is_some(), r.next_hop) {
                            (true, _) => found("Local", d, None, src),
                            (false, NextHop::Broadcast(_)) => found("Broadcast", d, None, src),
                            (false, NextHop::Gateway(g)) => {
                                found("Unicast", d, Some(IpAddr::V6(std_v6(g.get()))), src)
                            }
                            (false, NextHop::RemoteAsNeighbor) => found("Unicast", d, None, src),
                        }
                    }
                    Err(_) => none,
                }
            }
        })
    }

    /// Adds a unicast route (through `gateway`, or on-link) to `dst` on the one device.
    fn add_unicast_route(
        &mut self,
        dst: ipnet::IpNet,
        gateway: Option<IpAddr>,
        metric: Option<u32>,
        replace: bool,
    ) -> Result<(), DutError> {
        let Some(device) = self.device.clone() else {
            return Err(DutError::Gone {
                what: "the device was removed".into(),
            });
        };
        let device: DeviceId<Bc> = device.into();
        let bad = |e: String| not_supported(format!("route {dst}: {e}"));
        let metric = AddableMetric::ExplicitMetric(RawMetric(metric.unwrap_or(0)));
        let entry = match (dst.trunc(), gateway) {
            (ipnet::IpNet::V4(n), gw) => {
                let subnet = Subnet::new(v4(n.network()), n.prefix_len())
                    .map_err(|e| bad(format!("{e:?}")))?;
                if replace {
                    let _ = self.ctx.test_api().del_routes_to_subnet(subnet.into());
                }
                match gw {
                    None => AddableEntryEither::without_gateway(subnet.into(), device, metric),
                    Some(IpAddr::V4(g)) => {
                        let g = SpecifiedAddr::new(v4(g))
                            .ok_or_else(|| bad("gateway 0.0.0.0".into()))?;
                        AddableEntry::with_gateway(subnet, device, g, metric).into()
                    }
                    Some(IpAddr::V6(_)) => return Err(bad("an IPv6 gateway for IPv4".into())),
                }
            }
            (ipnet::IpNet::V6(n), gw) => {
                let subnet = Subnet::new(v6(n.network()), n.prefix_len())
                    .map_err(|e| bad(format!("{e:?}")))?;
                if replace {
                    let _ = self.ctx.test_api().del_routes_to_subnet(subnet.into());
                }
                match gw {
                    None => AddableEntryEither::without_gateway(subnet.into(), device, metric),
                    Some(IpAddr::V6(g)) => {
                        let g =
                            SpecifiedAddr::new(v6(g)).ok_or_else(|| bad("gateway ::".into()))?;
                        AddableEntry::with_gateway(subnet, device, g, metric).into()
                    }
                    Some(IpAddr::V4(_)) => return Err(bad("an IPv4 gateway for IPv6".into())),
                }
            }
        };
        self.ctx
            .test_api()
            .add_route(entry)
            .map_err(|e| bad(format!("Netstack3 refused it: {e:?}")))
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::Route {
                dst,
                prefix_len,
                via,
            } => {
                let net = ipnet::Ipv4Net::new(*dst, *prefix_len)
                    .map_err(|e| not_supported(format!("{control}: {e}")))?;
                self.add_unicast_route(net.into(), Some(IpAddr::V4(*via)), None, true)
            }
            Control::AddRoute(route) => match route.kind {
                _ if route.prefsrc.is_some() => Err(not_supported(format!(
                    "{control}: Netstack3's routes carry no preferred source address (it \
                     selects the source per RFC 6724 at lookup)"
                ))),
                RouteKind::Unicast { oif, .. } if oif != IFINDEX => Err(not_supported(format!(
                    "{control}: the netstack3 target has one interface, index {IFINDEX}"
                ))),
                RouteKind::Unicast { gateway, .. } => {
                    self.add_unicast_route(route.dst, gateway, route.metric, false)
                }
                _ => Err(not_supported(format!(
                    "{control}: Netstack3's route table holds unicast routes only (through a \
                     gateway or on-link); it has no local, broadcast, blackhole, unreachable, \
                     prohibit or throw route"
                ))),
            },
            Control::Forwarding(on) => {
                let Some(device) = self.device.clone() else {
                    return Ok(());
                };
                let device: DeviceId<Bc> = device.into();
                self.ctx
                    .test_api()
                    .set_unicast_forwarding_enabled::<Ipv4>(&device, *on);
                Ok(())
            }
            Control::FlushNeighbours => {
                if let Some(device) = self.device.clone() {
                    self.ctx
                        .core_api()
                        .neighbor::<Ipv4, EthernetLinkDevice>()
                        .flush_table(&device);
                    self.ctx
                        .core_api()
                        .neighbor::<Ipv6, EthernetLinkDevice>()
                        .flush_table(&device);
                }
                self.collect();
                Ok(())
            }
            Control::ArpPolicy(p) => {
                use netconform::models::arp::{ArpAccept, ArpIgnore};
                // Netstack3's one ARP policy (netstack3-ip `nud`, `netstack3-device`
                // `arp.rs`): a request for one of its addresses creates an entry, other ARP
                // packets only update one (Linux arp_accept 0); it answers requests for the
                // addresses of the interface they came in on, its only one here (arp_ignore
                // 0 and 1 alike).
                if p.accept == ArpAccept::Never
                    && matches!(p.ignore, ArpIgnore::Any | ArpIgnore::OnInterface)
                {
                    Ok(())
                } else {
                    Err(not_supported(format!(
                        "{control}: Netstack3 has one fixed ARP policy (entries created only by \
                         requests for its own addresses, requests answered for the receiving \
                         interface's addresses)"
                    )))
                }
            }
            Control::NeighbourParams(u) => {
                let mut fixed = Vec::new();
                if u.delay_probe_ms.is_some() {
                    fixed.push("delay_probe (DELAY_FIRST_PROBE_TIME, a constant 5 s)");
                }
                if u.locktime_ms.is_some() {
                    fixed.push("locktime (none: every ARP packet may update an entry)");
                }
                if u.gc_stale_ms.is_some() {
                    fixed.push("gc_stale (garbage collection at most every 30 s, a constant)");
                }
                if u.app_probes.is_some_and(|n| n != 0) {
                    fixed.push("app_probes (no application probes)");
                }
                if u.mcast_reprobes.is_some_and(|n| n != 0) {
                    fixed.push("mcast_reprobes (no multicast re-probes)");
                }
                if !fixed.is_empty() {
                    return Err(not_supported(format!(
                        "{control}: Netstack3's NUD has no setting for {}",
                        fixed.join(", ")
                    )));
                }
                let ms = |v: Option<u64>| v.and_then(NonZeroDuration::from_millis);
                let count = |v: Option<u32>| {
                    v.and_then(|n| u16::try_from(n).ok())
                        .and_then(std::num::NonZeroU16::new)
                };
                let nud = nud_api::NudUserConfigUpdate {
                    max_unicast_solicitations: count(u.ucast_probes),
                    max_multicast_solicitations: count(u.mcast_probes),
                    base_reachable_time: ms(u.base_reachable_ms),
                    retrans_timer: ms(u.retrans_ms),
                };
                let Some(device) = self.device.clone() else {
                    return Ok(());
                };
                let update = netstack3_core::device::DeviceConfigurationUpdate {
                    arp: Some(netstack3_core::device::ArpConfigurationUpdate { nud: Some(nud) }),
                    ndp: None,
                };
                let mut api = self.ctx.core_api().device::<EthernetLinkDevice>();
                let pending = api
                    .new_configuration_update(&device, update)
                    .map_err(|e| not_supported(format!("{control}: {e:?}")))?;
                let _ = api.apply_configuration(pending);
                Ok(())
            }
            Control::FlushFdb | Control::SetAgeing(_) => Err(not_supported(format!(
                "{control}: the netstack3 target is a host, not a switch"
            ))),
            Control::Masquerade { .. } | Control::FlushConntrack => Err(not_supported(format!(
                "{control}: the netstack3 target is a host with one interface; its NAT \
                 (netstack3-filter) is not driven by this target yet"
            ))),
        }
    }
}

impl Tables for Netstack3Host {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::TcpSockets => {
                self.guarded(|s| Ok(StateAnswer::TcpSockets(s.tcp_sockets())))
            }
            StateQuery::Neighbours => {
                self.guarded(|s| Ok(StateAnswer::Neighbours(s.neighbour_entries())))
            }
            StateQuery::RouteGet(dst) => self.guarded(|s| s.route_get(*dst, None)),
            StateQuery::RouteGetFrom { dst, src } => {
                self.guarded(|s| s.route_get(*dst, Some(*src)))
            }
            StateQuery::TcpInfo(_) => Err(not_supported(
                "TCP_INFO as Linux fills it: Netstack3's TcpSocketInfo has the RTT, RTO and \
                 congestion state but no negotiated options, window scales or probe counts",
            )),
            StateQuery::NeighbourParams | StateQuery::NeighbourTableInfo => Err(not_supported(
                "neighbour parameters as Linux reports them: Netstack3 draws its reachable time \
                 inside its NUD state and exposes it to no API, and its delay-probe, locktime \
                 and garbage-collection timers are constants",
            )),
            StateQuery::Routes => Err(not_supported(
                "the route table as Linux reports it: the netstack3 target answers route \
                 lookups (route get) but does not list Netstack3's table",
            )),
            StateQuery::Fdb => Err(not_supported(
                "a filtering database: the netstack3 target is a host, not a switch",
            )),
            StateQuery::Ports => Err(not_supported(
                "ports of a router: the netstack3 target is a host with one interface",
            )),
            StateQuery::Conntrack => Err(not_supported(
                "a conntrack table: the netstack3 target does not drive netstack3-filter yet",
            )),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.guarded(|s| s.control(control))
    }
}
