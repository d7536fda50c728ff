//! smoltcp as the stack under test, in-process, on a virtual clock.
//!
//! [`SmoltcpHost`] = one smoltcp [`Interface`] + a virtual [`phy::Device`] (two queues of
//! Ethernet frames, one per direction) + a [`SocketSet`] + the clock. smoltcp never reads a
//! clock of its own: the target hands it the virtual time at every poll, and advances that
//! time only while somebody waits (a [`Link::recv_frame`](crate::dut::Link::recv_frame) deadline, a socket call's
//! timeout), straight to the next instant smoltcp asks to be polled at
//! ([`Interface::poll_delay`]). Waiting therefore costs no real time: a 10 s TIME-WAIT or a
//! minute of retransmission backoff runs in microseconds, and traces carry the virtual
//! time ([`Dut::virtual_now`]).
//!
//! Read first: smoltcp `src/iface/interface/mod.rs` (`poll`, `poll_ingress_single`,
//! `poll_egress`, `poll_at`) and `src/socket/tcp.rs` (the socket API and its constants).
//!
//! # What each socket call means here
//!
//! The calls mean what they mean on the Linux target ([`super::linux`]), so every check
//! runs unchanged; where smoltcp lacks a feature the call answers
//! [`DutError::NotSupported`] with the reason, and the check's verdict is UNSUPPORTED.
//!
//! - A smoltcp socket is one connection: there is no backlog and no accept queue. `Listen`
//!   with backlog *n* keeps up to *n* smoltcp sockets on the port (what an application on
//!   smoltcp does): one in LISTEN, and after every poll a fresh one in LISTEN whenever none
//!   is left and fewer than *n* are there, so each frame meets a listening socket until *n*
//!   connections are open (made as needed, not all at once: each socket costs its two
//!   buffers, 128 KiB to zero, which made listening most of a scenario's cost); `Accept`
//!   hands out the one that got furthest past SYN-RECEIVED first, and a fresh listening
//!   socket takes its place when none is left.
//! - smoltcp has no ephemeral port allocator: `Connect` on an unbound socket takes the next
//!   port of a deterministic counter from 49152.
//! - smoltcp reports no error on a socket: the target watches each poll. A connection that
//!   turns CLOSED while smoltcp handles an incoming frame was reset (`ECONNRESET`, or
//!   `ECONNREFUSED` in SYN-SENT); one that turns CLOSED on a timer timed out (`ETIMEDOUT`).
//!   The error is reported once, as Linux reports `so_error`.
//! - `Close` calls `close()` (with `SO_LINGER` 0: `abort()`); the socket stays in the set,
//!   not held (`sock: None` in [`StateQuery::TcpSockets`]), until smoltcp has forgotten the
//!   connection (CLOSED, no reset left to send).
//! - `UdpBind` makes one smoltcp UDP socket ([`UDP_PACKETS`] datagrams and
//!   [`DEFAULT_BUFFER`] bytes each way; port 0 takes the next port of the same counter as
//!   `Connect`); `SendTo` queues one datagram and polls, so it leaves at once (smoltcp
//!   computes the checksum; it cannot fragment, so a datagram larger than one frame is
//!   unsupported); `RecvFrom` waits on the virtual clock like `Recv`; `Close` closes and
//!   removes the socket. A datagram to a port no socket is bound to draws ICMP port
//!   unreachable from smoltcp's interface itself. On a UDP socket only these calls are
//!   made; the TCP calls on it, and the UDP calls on a TCP socket, are unsupported.
//!
//! # Frames
//!
//! Every frame the harness sends is handed to smoltcp on its own poll, ingress then egress,
//! so what smoltcp sends in answer to one frame leaves before the next frame is read (the
//! session's echo barrier relies on that). Malformed frames are fed
//! to smoltcp like any other.
//!
//! # Robustness
//!
//! Every entry into smoltcp runs under `catch_unwind`: a panic inside smoltcp becomes
//! [`DutError::Gone`] (`smoltcp panicked: ...`) and the target stays dead; every later
//! call says the same. Nothing smoltcp does can take the harness down.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration as SmolDuration, Instant as SmolInstant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint,
};

use super::{
    CallOutcome, Control, Dut, DutError, Endpoints, Family, ShutdownHow, SocketCall, SocketId,
    SocketOption, StateAnswer, StateQuery, TcpSocketState, TcpState, VirtualDeadlines,
};
use crate::sandbox::{MacAddr, V4Config, V6Config};
use crate::wire::{Frame, Icmpv6Message};

/// The smoltcp release this target is built against (Cargo.lock).
pub const SMOLTCP_VERSION: &str = "0.14.0";

/// The seed of smoltcp's random numbers (initial sequence numbers): fixed, so that traces
/// are the same on every run.
pub const DEFAULT_RANDOM_SEED: u64 = 0x6e63_736d_6f6c_7463; // "ncsmoltc"

/// Bytes in each socket's receive and transmit buffer unless `SO_RCVBUF` says otherwise.
pub const DEFAULT_BUFFER: usize = 65_536;

/// The first port the ephemeral counter hands out (the IANA dynamic range, RFC 6335).
pub const EPHEMERAL_FIRST: u16 = 49_152;

/// The most listening smoltcp sockets one `Listen` creates, whatever its backlog.
pub const MAX_BACKLOG: u32 = 64;

/// Datagrams each UDP socket's receive (and transmit) queue holds, within
/// [`SmoltcpConfig::buffer_size`] bytes.
pub const UDP_PACKETS: usize = 64;

thread_local! {
    /// The virtual clock in ms, for smoltcp's timestamp generator (a plain `fn() -> u32`
    /// with no context): set before every poll on the thread that drives the target.
    static TSVAL_MS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// TSval for RFC 7323 timestamps: the virtual clock in ms. smoltcp sends the option only
/// when the application gives it a generator, as an application with a clock does (Linux
/// sends it by default).
fn tsval() -> u32 {
    TSVAL_MS.with(|t| t.get())
}

/// Constants of smoltcp 0.14 the results depend on (`src/socket/tcp.rs`,
/// `src/iface/neighbor.rs`, `build.rs`), as `name = value` lines for reports.
const CONSTANTS: &[&str] = &[
    "smoltcp TCP timestamps = on (TSval = virtual clock in ms)",
    "smoltcp TIME-WAIT (CLOSE_DELAY) = 10 s",
    "smoltcp RTO initial = 1 s, minimum = 1 s, maximum = 60 s",
    "smoltcp delayed ACK (ACK_DELAY_DEFAULT) = 10 ms",
    "smoltcp default remote MSS = 536",
    "smoltcp neighbour entry lifetime = 60 s, neighbour requests at most 1/s",
    "smoltcp neighbour cache = 8 entries, route table = 2 entries, addresses = 2",
    "smoltcp out-of-order segments kept = 4 (ASSEMBLER_MAX_SEGMENT_COUNT)",
    "smoltcp UDP socket queues = 64 datagrams each way; no IP fragmentation",
];

/// How to build a [`SmoltcpHost`]: the same address plan as the Linux lab
/// ([`crate::sandbox::LabConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmoltcpConfig {
    /// The stack's MAC (locally administered).
    pub stack_mac: MacAddr,
    /// The MAC of the peer the harness speaks for (locally administered).
    pub harness_mac: MacAddr,
    /// IPv4 on the stack (`None`: no IPv4 address).
    pub ipv4: Option<V4Config>,
    /// IPv6 on the stack (`None`: no IPv6 address).
    pub ipv6: Option<V6Config>,
    /// Link MTU (IP bytes; the Ethernet header comes on top).
    pub mtu: u32,
    /// `Config::random_seed` of the interface.
    pub random_seed: u64,
    /// Bytes in each socket buffer unless `SO_RCVBUF` sets the receive buffer.
    pub buffer_size: usize,
    /// Teach the stack the peer's MAC before the session starts (one ARP request and one
    /// neighbour solicitation from the peer, whose answers are dropped).
    pub peer_preresolved: bool,
    /// Settings a check pins that smoltcp has no equivalent for, as `name = value`: the
    /// target then answers [`DutError::NotSupported`] to the session's first event, so
    /// the check's verdict is UNSUPPORTED rather than a failure against a schedule smoltcp
    /// was never given.
    pub unsupported_settings: Vec<String>,
    /// smoltcp's declared fixed behaviour (`profiles/smoltcp.toml`, see
    /// [`crate::dut::fixed`]), or why it could not be read (the target then refuses to
    /// start, naming the file).
    pub fixed: Result<Option<std::sync::Arc<crate::dut::fixed::FixedBehaviour>>, String>,
}

impl Default for SmoltcpConfig {
    fn default() -> Self {
        SmoltcpConfig {
            stack_mac: crate::wire::plan::link_end(2),
            harness_mac: crate::wire::plan::link_end(1),
            // The Linux lab's address plan, so traces read the same on both targets.
            ipv4: crate::sandbox::LabConfig::default().ipv4,
            ipv6: crate::sandbox::LabConfig::default().ipv6,
            mtu: crate::sandbox::LabConfig::default().mtu,
            random_seed: DEFAULT_RANDOM_SEED,
            buffer_size: DEFAULT_BUFFER,
            peer_preresolved: false,
            unsupported_settings: Vec::new(),
            fixed: crate::dut::fixed::smoltcp_profile()
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

/// Settings (Linux sysctls a check pins) that hold on smoltcp as they are: smoltcp 0.14 has
/// no tail loss probe or RACK (RFC 8985), so its first retransmission is always the RTO's.
const SETTINGS_THAT_HOLD: &[(&str, &str)] = &[("net.ipv4.tcp_early_retrans", "0")];

/// The configuration a check runs with on smoltcp: the default addresses, IPv6 only when
/// the check uses it, the peer pre-resolved when it asks. The settings a check pins
/// ([`crate::dut::needs::Needs::settings`]) are Linux sysctls: those smoltcp behaves as already
/// are accepted, the others listed in [`SmoltcpConfig::unsupported_settings`].
pub fn smoltcp_config_for(needs: &crate::dut::needs::Needs) -> SmoltcpConfig {
    let mut config = SmoltcpConfig {
        peer_preresolved: needs.peer_preresolved,
        unsupported_settings: needs
            .settings
            .iter()
            .filter(|s| !SETTINGS_THAT_HOLD.contains(s))
            .map(|(name, value)| format!("{name} = {value}"))
            .collect(),
        ..SmoltcpConfig::default()
    };
    if !needs.ipv6 {
        config.ipv6 = None;
    }
    config
}

/// The virtual link: frames for smoltcp and frames from it.
#[derive(Debug)]
struct Wire {
    to_stack: VecDeque<Vec<u8>>,
    from_stack: VecDeque<Vec<u8>>,
    mtu: usize,
}

/// One frame handed to smoltcp.
struct RxFrame(Vec<u8>);

/// Where smoltcp puts one frame it sends.
struct TxFrame<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for RxFrame {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl phy::TxToken for TxFrame<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Wire {
    type RxToken<'a>
        = RxFrame
    where
        Self: 'a;
    type TxToken<'a>
        = TxFrame<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: SmolInstant) -> Option<(RxFrame, TxFrame<'_>)> {
        let frame = self.to_stack.pop_front()?;
        Some((RxFrame(frame), TxFrame(&mut self.from_stack)))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<TxFrame<'_>> {
        Some(TxFrame(&mut self.from_stack))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // smoltcp counts the Ethernet header in the MTU of an Ethernet device.
        caps.max_transmission_unit = self.mtu + 14;
        caps
    }
}

/// Socket options as the application set them (applied to every smoltcp socket the held
/// socket stands for, and to the ones it creates later).
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    recv_buffer: Option<usize>,
    no_delay: bool,
    keep_alive: bool,
    keep_idle: Option<u32>,
    keep_interval: Option<u32>,
    user_timeout_ms: Option<u32>,
    quick_ack: bool,
    linger: Option<u32>,
}

impl Options {
    /// The keep-alive interval smoltcp gets: idle time and probe interval are one value
    /// there; Linux's default idle time (7200 s) when the application set neither.
    fn keep_alive(&self) -> Option<SmolDuration> {
        self.keep_alive.then(|| {
            let secs = self.keep_idle.or(self.keep_interval).unwrap_or(7200);
            SmolDuration::from_secs(u64::from(secs))
        })
    }

    fn apply(&self, s: &mut tcp::Socket<'_>) {
        s.set_nagle_enabled(!self.no_delay);
        s.set_keep_alive(self.keep_alive());
        s.set_timeout(
            self.user_timeout_ms
                .filter(|ms| *ms > 0)
                .map(|ms| SmolDuration::from_millis(u64::from(ms))),
        );
        s.set_ack_delay(if self.quick_ack {
            None
        } else {
            Some(SmolDuration::from_millis(10))
        });
    }
}

/// What a socket the harness holds stands for in smoltcp.
#[derive(Debug)]
enum Kind {
    /// Created (maybe bound), no smoltcp socket yet.
    Fresh,
    /// One connection.
    Connection(SocketHandle),
    /// A listener: up to `backlog` smoltcp sockets on `endpoint`, one of them in LISTEN
    /// while there are fewer ([`Stack::top_up_listeners`]).
    Listener {
        endpoint: IpListenEndpoint,
        backlog: u32,
        pool: Vec<SocketHandle>,
    },
    /// A bound UDP socket.
    Udp(SocketHandle),
}

/// A socket the harness holds.
#[derive(Debug)]
struct Held {
    family: Family,
    bound: Option<(Option<IpAddr>, u16)>,
    options: Options,
    kind: Kind,
}

/// Which half of a poll a state change happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Application calls between polls (no error is inferred).
    Application,
    /// smoltcp handled incoming frames.
    Ingress,
    /// smoltcp ran its timers and sent.
    Egress,
}

/// Everything that lives inside the `catch_unwind` boundary.
struct Stack {
    iface: Interface,
    wire: Wire,
    sockets: SocketSet<'static>,
    now: SmolInstant,
    held: BTreeMap<SocketId, Held>,
    /// Connections the application closed that smoltcp still runs (FIN-WAIT, TIME-WAIT...).
    orphans: Vec<SocketHandle>,
    last_state: BTreeMap<SocketHandle, tcp::State>,
    /// The error smoltcp's last transition to CLOSED stands for, until the application
    /// reads it.
    errors: BTreeMap<SocketHandle, i32>,
    /// When (in order) a listening socket's connection got past SYN-RECEIVED.
    established: BTreeMap<SocketHandle, u64>,
    established_count: u64,
    next_accepted: u32,
    next_ephemeral: u16,
    buffer_size: usize,
    stack_ips: Vec<IpAddr>,
}

/// smoltcp in-process behind the [`Dut`] trait, on a virtual clock.
pub struct SmoltcpHost {
    stack: Box<Stack>,
    /// Set once smoltcp panicked: what every later call answers.
    dead: Option<String>,
    endpoints: Endpoints,
    config: SmoltcpConfig,
    deadlines: VirtualDeadlines,
}

impl std::fmt::Debug for SmoltcpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmoltcpHost")
            .field("config", &self.config)
            .field("now_us", &self.stack.now.total_micros())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

/// smoltcp has one keep-alive interval, both the idle time and the probe interval: setting
/// one of TCP_KEEPIDLE and TCP_KEEPINTVL to a value other than the other's is unsupported.
fn one_keep_alive_interval(
    (name, secs): (&str, u32),
    (other, other_secs): (&str, Option<u32>),
) -> Result<(), DutError> {
    match other_secs {
        Some(o) if o != secs => Err(not_supported(format!(
            "{name} {secs} s with {other} {o} s: smoltcp has one keep-alive interval, which is \
             both the idle time and the probe interval"
        ))),
        _ => Ok(()),
    }
}

fn tcp_state(s: tcp::State) -> TcpState {
    match s {
        tcp::State::Closed => TcpState::Closed,
        tcp::State::Listen => TcpState::Listen,
        tcp::State::SynSent => TcpState::SynSent,
        tcp::State::SynReceived => TcpState::SynReceived,
        tcp::State::Established => TcpState::Established,
        tcp::State::FinWait1 => TcpState::FinWait1,
        tcp::State::FinWait2 => TcpState::FinWait2,
        tcp::State::CloseWait => TcpState::CloseWait,
        tcp::State::Closing => TcpState::Closing,
        tcp::State::LastAck => TcpState::LastAck,
        tcp::State::TimeWait => TcpState::TimeWait,
    }
}

/// States in which a connection has been synchronized (past the handshake).
fn past_handshake(s: tcp::State) -> bool {
    !matches!(
        s,
        tcp::State::Closed | tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived
    )
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

fn not_supported(what: impl Into<String>) -> DutError {
    DutError::NotSupported { what: what.into() }
}

impl SmoltcpHost {
    /// Builds the interface (addresses from `config`, MAC, MTU, random seed), and, when
    /// `config.peer_preresolved`, teaches it the peer's MAC with one ARP request (and one
    /// neighbour solicitation for IPv6) from the peer, whose answers are dropped before
    /// the session starts.
    pub fn new(config: SmoltcpConfig) -> Result<SmoltcpHost, DutError> {
        if let Err(e) = &config.fixed {
            return Err(DutError::Malformed {
                detail: format!("smoltcp's declared fixed behaviour: {e}"),
            });
        }
        let stack = catch_unwind(AssertUnwindSafe(|| Stack::new(&config))).map_err(|p| {
            DutError::Gone {
                what: format!("smoltcp panicked: {}", super::panic_message(p.as_ref())),
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
        let mut target = SmoltcpHost {
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
    pub fn config(&self) -> &SmoltcpConfig {
        &self.config
    }

    /// Feeds smoltcp one ARP request (and one neighbour solicitation) from the peer and
    /// drops what it answers: smoltcp fills its neighbour cache from both (its neighbour
    /// cache has no public API), so its first answer in the session needs no resolution.
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
                s.wire.to_stack.push_back(frame);
                s.poll();
            }
            s.wire.from_stack.clear();
            Ok(())
        })
    }

    /// Runs `f` on the stack unless smoltcp panicked before; a panic now kills the target.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Stack) -> Result<T, DutError>,
    ) -> Result<T, DutError> {
        if let Some(what) = &self.dead {
            return Err(DutError::Gone { what: what.clone() });
        }
        if let Some(setting) = self.config.unsupported_settings.first() {
            return Err(not_supported(format!(
                "the check pins {setting}, which has no smoltcp equivalent"
            )));
        }
        let stack = &mut self.stack;
        match catch_unwind(AssertUnwindSafe(|| f(stack))) {
            Ok(r) => r,
            Err(panic) => {
                let what = format!("smoltcp panicked: {}", super::panic_message(panic.as_ref()));
                self.dead = Some(what.clone());
                Err(DutError::Gone { what })
            }
        }
    }

    fn virtual_deadline(&mut self, deadline: std::time::Instant) -> SmolInstant {
        let now = crate::time::Instant::from_micros(self.stack.now.total_micros().max(0) as u64);
        let at = self.deadlines.map(deadline, now);
        SmolInstant::from_micros(at.total_micros() as i64)
    }
}

impl Stack {
    fn new(config: &SmoltcpConfig) -> Result<Stack, DutError> {
        let mut wire = Wire {
            to_stack: VecDeque::new(),
            from_stack: VecDeque::new(),
            mtu: config.mtu as usize,
        };
        let now = SmolInstant::ZERO;
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(
            config.stack_mac.0,
        )));
        iface_config.random_seed = config.random_seed;
        let mut iface = Interface::new(iface_config, &mut wire, now);
        let mut stack_ips = Vec::new();
        let mut full = false;
        iface.update_ip_addrs(|addrs| {
            if let Some(v4) = &config.ipv4 {
                full |= addrs
                    .push(IpCidr::new(IpAddress::Ipv4(v4.stack), v4.prefix_len))
                    .is_err();
                stack_ips.push(IpAddr::V4(v4.stack));
            }
            if let Some(v6) = &config.ipv6 {
                full |= addrs
                    .push(IpCidr::new(IpAddress::Ipv6(v6.stack), v6.prefix_len))
                    .is_err();
                stack_ips.push(IpAddr::V6(v6.stack));
            }
        });
        if full {
            return Err(not_supported(
                "more addresses than smoltcp's interface holds (IFACE_MAX_ADDR_COUNT)",
            ));
        }
        Ok(Stack {
            iface,
            wire,
            sockets: SocketSet::new(Vec::new()),
            now,
            held: BTreeMap::new(),
            orphans: Vec::new(),
            last_state: BTreeMap::new(),
            errors: BTreeMap::new(),
            established: BTreeMap::new(),
            established_count: 0,
            next_accepted: SocketId::ACCEPTED_BASE,
            next_ephemeral: EPHEMERAL_FIRST,
            buffer_size: config.buffer_size,
            stack_ips,
        })
    }

    fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    fn state(&self, h: SocketHandle) -> tcp::State {
        self.sockets.get::<tcp::Socket>(h).state()
    }

    /// One poll at the current virtual time: the queued frames, then timers and output.
    fn poll(&mut self) {
        let now = self.now;
        TSVAL_MS.with(|t| t.set(now.total_millis() as u32));
        self.observe(Phase::Application);
        self.iface.poll_maintenance(now);
        while self
            .iface
            .poll_ingress_single(now, &mut self.wire, &mut self.sockets)
            != PollIngressSingleResult::None
        {}
        self.observe(Phase::Ingress);
        while self
            .iface
            .poll_egress(now, &mut self.wire, &mut self.sockets)
            != PollResult::None
        {}
        self.observe(Phase::Egress);
        self.tidy();
    }

    /// Records every socket's state; a connection that turned CLOSED during a poll gets
    /// the error that stands for it.
    fn observe(&mut self, phase: Phase) {
        let states: Vec<(SocketHandle, tcp::State)> = self
            .sockets
            .iter()
            .filter_map(|(h, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => Some((h, t.state())),
                #[allow(unreachable_patterns)]
                _ => None,
            })
            .collect();
        for (h, state) in states {
            let before = self.last_state.insert(h, state);
            if before == Some(state) {
                continue;
            }
            if past_handshake(state) && !self.established.contains_key(&h) {
                self.established_count += 1;
                self.established.insert(h, self.established_count);
            }
            if state != tcp::State::Closed {
                continue;
            }
            let code = match (phase, before) {
                (Phase::Ingress, Some(tcp::State::SynSent)) => libc::ECONNREFUSED,
                (
                    Phase::Ingress,
                    Some(
                        tcp::State::SynReceived
                        | tcp::State::Established
                        | tcp::State::FinWait1
                        | tcp::State::FinWait2
                        | tcp::State::CloseWait
                        | tcp::State::Closing,
                    ),
                ) => libc::ECONNRESET,
                (
                    Phase::Egress,
                    Some(
                        s @ (tcp::State::SynSent
                        | tcp::State::SynReceived
                        | tcp::State::Established
                        | tcp::State::FinWait1
                        | tcp::State::FinWait2
                        | tcp::State::CloseWait
                        | tcp::State::Closing
                        | tcp::State::LastAck),
                    ),
                ) if s != tcp::State::TimeWait => libc::ETIMEDOUT,
                _ => continue,
            };
            self.errors.insert(h, code);
        }
    }

    /// Forgets orphans smoltcp is done with, and puts listening sockets whose connection
    /// died before it was accepted back in LISTEN.
    fn tidy(&mut self) {
        let done =
            |s: &tcp::Socket<'_>| s.state() == tcp::State::Closed && s.local_endpoint().is_none();
        let mut gone = Vec::new();
        self.orphans.retain(|h| {
            if done(self.sockets.get::<tcp::Socket>(*h)) {
                gone.push(*h);
                false
            } else {
                true
            }
        });
        for h in gone {
            self.forget(h);
        }
        let mut relisten = Vec::new();
        for held in self.held.values() {
            if let Kind::Listener { endpoint, pool, .. } = &held.kind {
                for h in pool {
                    if done(self.sockets.get::<tcp::Socket>(*h)) {
                        relisten.push((*h, *endpoint));
                    }
                }
            }
        }
        for (h, endpoint) in relisten {
            self.errors.remove(&h);
            self.established.remove(&h);
            self.last_state.remove(&h);
            // Cannot fail: the socket is CLOSED and the port non-zero.
            let _ = self.tcp(h).listen(endpoint);
        }
        self.top_up_listeners();
    }

    /// Puts a fresh socket in LISTEN on every listener that has none left and fewer
    /// sockets than its backlog (at most [`MAX_BACKLOG`]), so the next frame meets one.
    fn top_up_listeners(&mut self) {
        let mut wanted = Vec::new();
        for (id, held) in &self.held {
            if let Kind::Listener {
                endpoint,
                backlog,
                pool,
            } = &held.kind
            {
                let listening = pool.iter().any(|h| self.state(*h) == tcp::State::Listen);
                if !listening && pool.len() < (*backlog).clamp(1, MAX_BACKLOG) as usize {
                    wanted.push((*id, *endpoint, held.options));
                }
            }
        }
        for (id, endpoint, options) in wanted {
            let mut fresh = self.new_socket(&options);
            // Cannot fail: a new socket is CLOSED and the endpoint's port non-zero.
            let _ = fresh.listen(endpoint);
            let fresh = self.sockets.add(fresh);
            if let Some(Held {
                kind: Kind::Listener { pool, .. },
                ..
            }) = self.held.get_mut(&id)
            {
                pool.push(fresh);
            }
        }
    }

    fn forget(&mut self, h: SocketHandle) {
        self.sockets.remove(h);
        self.last_state.remove(&h);
        self.errors.remove(&h);
        self.established.remove(&h);
    }

    /// Polls, advancing the virtual clock to each instant smoltcp asks for, until `done`
    /// holds (true) or `deadline` has passed (false; the clock then reads `deadline`).
    fn wait_until(
        &mut self,
        deadline: SmolInstant,
        mut done: impl FnMut(&mut Stack) -> bool,
    ) -> bool {
        loop {
            self.poll();
            if done(self) {
                return true;
            }
            if self.now >= deadline {
                return false;
            }
            let next = match self.iface.poll_delay(self.now, &self.sockets) {
                Some(d) => self.now + d,
                None => deadline,
            };
            // A poll that left smoltcp wanting another one at once: step a millisecond so
            // that the loop always ends.
            let next = if next <= self.now {
                self.now + SmolDuration::from_millis(1)
            } else {
                next
            };
            self.now = next.min(deadline);
        }
    }

    fn deadline_in(&self, timeout_ms: u64) -> SmolInstant {
        self.now + SmolDuration::from_millis(timeout_ms)
    }

    fn new_socket(&mut self, options: &Options) -> tcp::Socket<'static> {
        let rx = options.recv_buffer.unwrap_or(self.buffer_size);
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; self.buffer_size]),
        );
        options.apply(&mut s);
        s.set_tsval_generator(Some(tsval));
        s
    }

    fn ephemeral_port(&mut self) -> u16 {
        loop {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.port_in_use(port) {
                return port;
            }
        }
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.held
            .values()
            .any(|h| h.bound.is_some_and(|(_, p)| p == port))
            || self.sockets.iter().any(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    t.local_endpoint().is_some_and(|e| e.port == port)
                        || (t.is_listening() && t.listen_endpoint().port == port)
                }
                #[allow(unreachable_patterns)]
                _ => false,
            })
    }

    fn held(&mut self, id: SocketId) -> Result<&mut Held, DutError> {
        self.held.get_mut(&id).ok_or(DutError::UnknownSocket(id))
    }

    fn ensure(&mut self, id: SocketId, family: Family) {
        self.held.entry(id).or_insert(Held {
            family,
            bound: None,
            options: Options::default(),
            kind: Kind::Fresh,
        });
    }

    fn connection(&mut self, id: SocketId) -> Result<Option<SocketHandle>, DutError> {
        Ok(match self.held(id)?.kind {
            Kind::Connection(h) => Some(h),
            _ => None,
        })
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        let on_udp = |s: &Stack, sock: &SocketId| {
            matches!(s.held.get(sock).map(|h| &h.kind), Some(Kind::Udp(_)))
        };
        match call {
            SocketCall::Bind { sock, .. }
            | SocketCall::Listen { sock, .. }
            | SocketCall::Connect { sock, .. }
            | SocketCall::WaitConnected { sock, .. }
            | SocketCall::Send { sock, .. }
            | SocketCall::Recv { sock, .. }
            | SocketCall::Shutdown { sock, .. }
            | SocketCall::SetOption { sock, .. }
            | SocketCall::Accept { listener: sock, .. }
                if on_udp(self, sock) =>
            {
                return Err(not_supported(format!(
                    "{call}: {sock} is a UDP socket; the smoltcp target makes only sendto, \
                     recvfrom and close on one"
                )));
            }
            SocketCall::SendTo { sock, .. } | SocketCall::RecvFrom { sock, .. }
                if self.held.contains_key(sock) && !on_udp(self, sock) =>
            {
                return Err(not_supported(format!(
                    "{call}: {sock} is a TCP socket; the smoltcp target sends and receives \
                     datagrams on UDP sockets (udp_bind) only"
                )));
            }
            _ => {}
        }
        match *call {
            SocketCall::Socket { sock, family } => {
                if self.held.contains_key(&sock) {
                    return Err(DutError::SocketExists(sock));
                }
                self.ensure(sock, family);
                Ok(CallOutcome::Ok)
            }
            SocketCall::Bind { sock, addr, port } => self.bind(sock, addr, port),
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
            SocketCall::UdpBind { sock, addr, port } => self.udp_bind(sock, addr, port),
            SocketCall::SendTo {
                sock,
                addr,
                port,
                ref data,
            } => self.send_to(sock, addr, port, data),
            SocketCall::RecvFrom {
                sock,
                max,
                timeout_ms,
            } => self.recv_from(sock, max, timeout_ms),
        }
    }

    fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
    }

    fn udp_bind(
        &mut self,
        sock: SocketId,
        addr: IpAddr,
        port: u16,
    ) -> Result<CallOutcome, DutError> {
        if self.held.contains_key(&sock) {
            return Err(DutError::SocketExists(sock));
        }
        if !addr.is_unspecified() && !self.stack_ips.contains(&addr) {
            return Ok(CallOutcome::errno(libc::EADDRNOTAVAIL));
        }
        let family = family_of(addr);
        let addr = (!addr.is_unspecified()).then_some(addr);
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        // Linux: one UDP socket per port and address, a wildcard overlapping every address
        // of its family (without SO_REUSEADDR, which the harness never sets on UDP).
        let clash = self.held.values().any(|h| {
            matches!(h.kind, Kind::Udp(_))
                && h.family == family
                && h.bound
                    .is_some_and(|(a, p)| p == port && (a.is_none() || addr.is_none() || a == addr))
        });
        if clash {
            return Ok(CallOutcome::errno(libc::EADDRINUSE));
        }
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0u8; self.buffer_size],
            )
        };
        let mut s = udp::Socket::new(buffer(), buffer());
        let endpoint = IpListenEndpoint {
            addr: addr.map(IpAddress::from),
            port,
        };
        if s.bind(endpoint).is_err() {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        let h = self.sockets.add(s);
        self.held.insert(
            sock,
            Held {
                family,
                bound: Some((addr, port)),
                options: Options::default(),
                kind: Kind::Udp(h),
            },
        );
        self.poll();
        Ok(CallOutcome::Ok)
    }

    fn udp_socket(&mut self, sock: SocketId) -> Result<(SocketHandle, Family), DutError> {
        let held = self.held(sock)?;
        match held.kind {
            Kind::Udp(h) => Ok((h, held.family)),
            _ => Err(DutError::UnknownSocket(sock)),
        }
    }

    fn send_to(
        &mut self,
        sock: SocketId,
        addr: IpAddr,
        port: u16,
        data: &[u8],
    ) -> Result<CallOutcome, DutError> {
        let (h, family) = self.udp_socket(sock)?;
        // What Linux answers: an IPv4 socket cannot reach an IPv6 address, an IPv6-only
        // socket an IPv4 one, and port 0 is no destination.
        match (family, family_of(addr)) {
            (Family::Ipv4, Family::Ipv6) => return Ok(CallOutcome::errno(libc::EAFNOSUPPORT)),
            (Family::Ipv6, Family::Ipv4) => return Ok(CallOutcome::errno(libc::ENETUNREACH)),
            _ => {}
        }
        if port == 0 {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        let headers = match family {
            Family::Ipv4 => 20 + 8,
            Family::Ipv6 => 40 + 8,
        };
        if data.len() + headers > self.wire.mtu {
            return Err(not_supported(format!(
                "sendto of {} bytes: more than one {}-byte frame holds, and smoltcp is built \
                 without IP fragmentation",
                data.len(),
                self.wire.mtu
            )));
        }
        let to = IpEndpoint::new(IpAddress::from(addr), port);
        let outcome = match self.udp(h).send_slice(data, to) {
            Ok(()) => CallOutcome::Sent(data.len()),
            Err(udp::SendError::BufferFull) => CallOutcome::errno(libc::EAGAIN),
            Err(udp::SendError::Unaddressable) => {
                return Err(not_supported(format!(
                    "sendto {}: smoltcp sends to no unspecified address",
                    SocketAddr::new(addr, port)
                )));
            }
        };
        self.poll();
        Ok(outcome)
    }

    fn recv_from(
        &mut self,
        sock: SocketId,
        max: usize,
        timeout_ms: u64,
    ) -> Result<CallOutcome, DutError> {
        let (h, _) = self.udp_socket(sock)?;
        let deadline = self.deadline_in(timeout_ms);
        if !self.wait_until(deadline, |s| s.udp(h).can_recv()) {
            return Ok(CallOutcome::TimedOut);
        }
        let outcome = match self.udp(h).recv() {
            Ok((payload, meta)) => CallOutcome::Datagram {
                from: SocketAddr::new(IpAddr::from(meta.endpoint.addr), meta.endpoint.port),
                data: payload[..payload.len().min(max)].to_vec(),
            },
            Err(_) => CallOutcome::TimedOut,
        };
        self.poll();
        Ok(outcome)
    }

    fn bind(&mut self, sock: SocketId, addr: IpAddr, port: u16) -> Result<CallOutcome, DutError> {
        self.ensure(sock, family_of(addr));
        let held = self.held(sock)?;
        if held.bound.is_some() || !matches!(held.kind, Kind::Fresh) {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        if held.family != family_of(addr) {
            return Ok(CallOutcome::errno(libc::EAFNOSUPPORT));
        }
        if !addr.is_unspecified() && !self.stack_ips.contains(&addr) {
            return Ok(CallOutcome::errno(libc::EADDRNOTAVAIL));
        }
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        let held = self.held(sock)?;
        held.bound = Some(((!addr.is_unspecified()).then_some(addr), port));
        Ok(CallOutcome::Ok)
    }

    fn listen(
        &mut self,
        sock: SocketId,
        family: Family,
        addr: Option<IpAddr>,
        port: u16,
        backlog: u32,
    ) -> Result<CallOutcome, DutError> {
        self.ensure(sock, family);
        let addr = addr.filter(|a| !a.is_unspecified());
        let held = self.held(sock)?;
        match &held.kind {
            Kind::Listener { endpoint, .. } => {
                return Ok(if endpoint.port == port {
                    CallOutcome::Ok
                } else {
                    CallOutcome::errno(libc::EINVAL)
                });
            }
            Kind::Connection(_) => return Ok(CallOutcome::errno(libc::EINVAL)),
            // As Linux answers listen(2) on a datagram socket (`call` refuses it first).
            Kind::Udp(_) => return Ok(CallOutcome::errno(libc::EOPNOTSUPP)),
            Kind::Fresh => {}
        }
        // The Linux target binds before it listens: a socket bound already fails there.
        if held.bound.is_some() {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        if let Some(a) = addr
            && (family_of(a) != family || !self.stack_ips.contains(&a))
        {
            return Ok(CallOutcome::errno(libc::EADDRNOTAVAIL));
        }
        let port = if port == 0 {
            self.ephemeral_port()
        } else {
            port
        };
        let taken = self.held.values().any(|h| match &h.kind {
            Kind::Listener { endpoint, .. } => endpoint.port == port,
            _ => false,
        });
        if taken {
            return Ok(CallOutcome::errno(libc::EADDRINUSE));
        }
        let endpoint = IpListenEndpoint {
            addr: addr.map(IpAddress::from),
            port,
        };
        let options = self.held(sock)?.options;
        let mut pool = Vec::new();
        let mut s = self.new_socket(&options);
        if s.listen(endpoint).is_err() {
            return Ok(CallOutcome::errno(libc::EINVAL));
        }
        pool.push(self.sockets.add(s));
        let held = self.held(sock)?;
        held.bound = Some((addr, port));
        held.kind = Kind::Listener {
            endpoint,
            backlog,
            pool,
        };
        self.poll();
        Ok(CallOutcome::Ok)
    }

    /// The listening socket of `listener` whose connection got past SYN-RECEIVED first.
    fn ready(&self, listener: SocketId) -> Option<SocketHandle> {
        let Kind::Listener { pool, .. } = &self.held.get(&listener)?.kind else {
            return None;
        };
        pool.iter()
            .copied()
            .filter(|h| past_handshake(self.state(*h)))
            .min_by_key(|h| self.established.get(h).copied().unwrap_or(u64::MAX))
    }

    fn accept(&mut self, listener: SocketId, timeout_ms: u64) -> Result<CallOutcome, DutError> {
        let held = self.held(listener)?;
        let Kind::Listener { .. } = held.kind else {
            return Ok(CallOutcome::errno(libc::EINVAL));
        };
        let (options, family) = (held.options, held.family);
        let deadline = self.deadline_in(timeout_ms);
        if !self.wait_until(deadline, |s| s.ready(listener).is_some()) {
            return Ok(CallOutcome::TimedOut);
        }
        let Some(h) = self.ready(listener) else {
            return Ok(CallOutcome::TimedOut);
        };
        if let Some(Held {
            kind: Kind::Listener { pool, .. },
            ..
        }) = self.held.get_mut(&listener)
        {
            pool.retain(|p| *p != h);
        }
        // A fresh listening socket in its place when none is left.
        self.top_up_listeners();
        let mut id = SocketId(self.next_accepted);
        while self.held.contains_key(&id) {
            id = SocketId(id.0.wrapping_add(1));
        }
        self.next_accepted = id.0.wrapping_add(1);
        let local = self.sockets.get::<tcp::Socket>(h).local_endpoint();
        self.held.insert(
            id,
            Held {
                family,
                bound: local.map(|e| (Some(IpAddr::from(e.addr)), e.port)),
                options,
                kind: Kind::Connection(h),
            },
        );
        Ok(CallOutcome::NewSocket(id))
    }

    fn connect(
        &mut self,
        sock: SocketId,
        family: Family,
        addr: IpAddr,
        port: u16,
    ) -> Result<CallOutcome, DutError> {
        self.ensure(sock, family);
        let held = self.held(sock)?;
        match held.kind {
            Kind::Fresh => {}
            Kind::Connection(h) => {
                return Ok(CallOutcome::errno(
                    if self.state(h) == tcp::State::SynSent {
                        libc::EALREADY
                    } else {
                        libc::EISCONN
                    },
                ));
            }
            Kind::Listener { .. } => return Ok(CallOutcome::errno(libc::EISCONN)),
            Kind::Udp(_) => {
                return Err(not_supported(
                    "connect on a UDP socket: the smoltcp target has no connected UDP sockets",
                ));
            }
        }
        if held.family != family_of(addr) {
            return Ok(CallOutcome::errno(libc::EAFNOSUPPORT));
        }
        let (local_addr, local_port) = match held.bound {
            Some(b) => b,
            None => (None, self.ephemeral_port()),
        };
        let options = self.held(sock)?.options;
        let mut s = self.new_socket(&options);
        let remote = IpEndpoint::new(IpAddress::from(addr), port);
        let local = IpListenEndpoint {
            addr: local_addr.map(IpAddress::from),
            port: local_port,
        };
        if let Err(e) = s.connect(self.iface.context(), remote, local) {
            return Ok(CallOutcome::errno(match e {
                tcp::ConnectError::InvalidState => libc::EISCONN,
                tcp::ConnectError::Unaddressable => libc::EADDRNOTAVAIL,
            }));
        }
        let h = self.sockets.add(s);
        let held = self.held(sock)?;
        held.bound = Some((local_addr, local_port));
        held.kind = Kind::Connection(h);
        self.poll();
        Ok(CallOutcome::Ok)
    }

    fn wait_connected(&mut self, sock: SocketId, timeout_ms: u64) -> Result<CallOutcome, DutError> {
        let Some(h) = self.connection(sock)? else {
            return Ok(CallOutcome::errno(libc::ENOTCONN));
        };
        let deadline = self.deadline_in(timeout_ms);
        let settled =
            |s: &mut Stack| !matches!(s.state(h), tcp::State::SynSent | tcp::State::SynReceived);
        if !self.wait_until(deadline, settled) {
            return Ok(CallOutcome::TimedOut);
        }
        Ok(match self.errors.remove(&h) {
            Some(code) => CallOutcome::errno(code),
            None => CallOutcome::Ok,
        })
    }

    fn send(&mut self, sock: SocketId, data: &[u8]) -> Result<CallOutcome, DutError> {
        let Some(h) = self.connection(sock)? else {
            // Linux: a socket that is not connecting fails with EPIPE.
            return Ok(CallOutcome::errno(libc::EPIPE));
        };
        if let Some(code) = self.errors.remove(&h) {
            return Ok(CallOutcome::errno(code));
        }
        let outcome = match self.state(h) {
            tcp::State::SynSent | tcp::State::SynReceived => CallOutcome::errno(libc::EAGAIN),
            tcp::State::Established | tcp::State::CloseWait => match self.tcp(h).send_slice(data) {
                Ok(0) if !data.is_empty() => CallOutcome::errno(libc::EAGAIN),
                Ok(n) => CallOutcome::Sent(n),
                Err(_) => CallOutcome::errno(libc::EPIPE),
            },
            _ => CallOutcome::errno(libc::EPIPE),
        };
        self.poll();
        Ok(outcome)
    }

    fn recv(
        &mut self,
        sock: SocketId,
        max: usize,
        timeout_ms: u64,
    ) -> Result<CallOutcome, DutError> {
        let h = match self.held(sock)?.kind {
            Kind::Connection(h) => h,
            _ => return Ok(CallOutcome::errno(libc::ENOTCONN)),
        };
        let deadline = self.deadline_in(timeout_ms);
        let ready = |s: &mut Stack| {
            s.errors.contains_key(&h)
                || s.sockets.get::<tcp::Socket>(h).can_recv()
                || !matches!(
                    s.state(h),
                    tcp::State::SynSent
                        | tcp::State::SynReceived
                        | tcp::State::Established
                        | tcp::State::FinWait1
                        | tcp::State::FinWait2
                )
        };
        if !self.wait_until(deadline, ready) {
            return Ok(CallOutcome::TimedOut);
        }
        if let Some(code) = self.errors.remove(&h) {
            return Ok(CallOutcome::errno(code));
        }
        let s = self.tcp(h);
        if s.can_recv() {
            let mut buf = vec![0u8; max];
            let n = s.recv_slice(&mut buf).unwrap_or(0);
            buf.truncate(n);
            self.poll();
            return Ok(CallOutcome::Data(buf));
        }
        Ok(if max == 0 {
            CallOutcome::Data(Vec::new())
        } else {
            CallOutcome::Eof
        })
    }

    fn shutdown(&mut self, sock: SocketId, how: ShutdownHow) -> Result<CallOutcome, DutError> {
        if how == ShutdownHow::Read {
            return Err(not_supported(
                "shutdown(SHUT_RD): smoltcp has no way to shut the receive half of a connection",
            ));
        }
        let Some(h) = self.connection(sock)? else {
            return Ok(CallOutcome::errno(libc::ENOTCONN));
        };
        // A connection that is gone (reset, timed out, or past its FIN exchange): Linux's
        // socket is in TCP_CLOSE then and shutdown(2) fails with ENOTCONN; smoltcp's
        // close() says nothing either way (found by the stack_smoltcp fuzz target).
        if matches!(self.state(h), tcp::State::Closed | tcp::State::TimeWait) {
            return Ok(CallOutcome::errno(libc::ENOTCONN));
        }
        self.tcp(h).close();
        self.poll();
        Ok(CallOutcome::Ok)
    }

    fn close(&mut self, sock: SocketId) -> Result<CallOutcome, DutError> {
        let held = self
            .held
            .remove(&sock)
            .ok_or(DutError::UnknownSocket(sock))?;
        match held.kind {
            Kind::Fresh => {}
            Kind::Udp(h) => {
                self.udp(h).close();
                self.sockets.remove(h);
            }
            Kind::Connection(h) => {
                if held.options.linger == Some(0) {
                    self.tcp(h).abort();
                } else {
                    self.tcp(h).close();
                }
                self.orphans.push(h);
            }
            Kind::Listener { pool, .. } => {
                for h in pool {
                    match self.state(h) {
                        // Nothing to tell anybody: the listening sockets and the
                        // handshakes in progress go silently (as Linux drops request
                        // sockets when the listener closes).
                        tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed => {
                            self.forget(h)
                        }
                        // Connections nobody accepted are reset (as Linux does).
                        _ => {
                            self.tcp(h).abort();
                            self.orphans.push(h);
                        }
                    }
                }
            }
        }
        self.poll();
        Ok(CallOutcome::Ok)
    }

    fn set_option(
        &mut self,
        sock: SocketId,
        option: SocketOption,
    ) -> Result<CallOutcome, DutError> {
        let held = self.held(sock)?;
        let o = &mut held.options;
        let value = match option {
            SocketOption::KeepAlive(on) => {
                o.keep_alive = on;
                SocketOption::KeepAlive(on)
            }
            SocketOption::KeepIdle(s) => {
                one_keep_alive_interval(("TCP_KEEPIDLE", s), ("TCP_KEEPINTVL", o.keep_interval))?;
                o.keep_idle = Some(s);
                SocketOption::KeepIdle(s)
            }
            SocketOption::KeepInterval(s) => {
                one_keep_alive_interval(("TCP_KEEPINTVL", s), ("TCP_KEEPIDLE", o.keep_idle))?;
                o.keep_interval = Some(s);
                SocketOption::KeepInterval(s)
            }
            SocketOption::KeepCount(_) => {
                return Err(not_supported(
                    "TCP_KEEPCNT: smoltcp has no keep-alive probe count (it drops a connection \
                     only through its timeout, set_timeout)",
                ));
            }
            SocketOption::NoDelay(on) => {
                o.no_delay = on;
                SocketOption::NoDelay(on)
            }
            SocketOption::QuickAck(on) => {
                o.quick_ack = on;
                SocketOption::QuickAck(on)
            }
            SocketOption::Linger(None) => {
                o.linger = None;
                SocketOption::Linger(None)
            }
            SocketOption::Linger(Some(0)) => {
                o.linger = Some(0);
                SocketOption::Linger(Some(0))
            }
            SocketOption::Linger(Some(secs)) => {
                return Err(not_supported(format!(
                    "SO_LINGER {secs} s: smoltcp's close never waits for the data to be sent"
                )));
            }
            SocketOption::MaxSegment(_) => {
                return Err(not_supported(
                    "TCP_MAXSEG: smoltcp announces the MSS its MTU gives and has no per-socket limit",
                ));
            }
            SocketOption::UserTimeout(ms) => {
                o.user_timeout_ms = Some(ms);
                SocketOption::UserTimeout(ms)
            }
            SocketOption::SynCount(_) => {
                return Err(not_supported(
                    "TCP_SYNCNT: smoltcp retransmits a SYN until the socket's timeout \
                     (set_timeout), with no count",
                ));
            }
            SocketOption::RecvBuffer(bytes) => {
                if !matches!(held.kind, Kind::Fresh) {
                    return Err(not_supported(
                        "SO_RCVBUF after listen or connect: smoltcp's buffers are fixed when the \
                         socket is made",
                    ));
                }
                o.recv_buffer = Some(bytes as usize);
                SocketOption::RecvBuffer(bytes)
            }
        };
        let options = held.options;
        let handles: Vec<SocketHandle> = match &held.kind {
            Kind::Fresh | Kind::Udp(_) => Vec::new(),
            Kind::Connection(h) => vec![*h],
            Kind::Listener { pool, .. } => pool.clone(),
        };
        for h in handles {
            options.apply(self.tcp(h));
        }
        self.poll();
        Ok(CallOutcome::OptionValue(value))
    }

    fn tcp_sockets(&self) -> Vec<TcpSocketState> {
        let mut out = Vec::new();
        let mut shown = std::collections::BTreeSet::new();
        let entry = |s: &tcp::Socket<'_>, sock: Option<SocketId>, family: Family| {
            let local = s
                .local_endpoint()
                .map(|e| SocketAddr::new(IpAddr::from(e.addr), e.port))
                .unwrap_or_else(|| SocketAddr::new(unspecified(family), 0));
            let remote = s
                .remote_endpoint()
                .map(|e| SocketAddr::new(IpAddr::from(e.addr), e.port))
                .unwrap_or_else(|| SocketAddr::new(unspecified(family), 0));
            TcpSocketState {
                state: tcp_state(s.state()),
                local,
                remote,
                sock,
                recv_queue: s.recv_queue() as u32,
                send_queue: s.send_queue() as u32,
            }
        };
        for (id, held) in &self.held {
            match &held.kind {
                Kind::Fresh | Kind::Udp(_) => {}
                Kind::Connection(h) => {
                    shown.insert(*h);
                    let s = self.sockets.get::<tcp::Socket>(*h);
                    if s.state() != tcp::State::Closed {
                        out.push(entry(s, Some(*id), held.family));
                    }
                }
                Kind::Listener {
                    endpoint,
                    backlog,
                    pool,
                } => {
                    let waiting = pool
                        .iter()
                        .filter(|h| past_handshake(self.state(**h)))
                        .count();
                    out.push(TcpSocketState {
                        state: TcpState::Listen,
                        local: SocketAddr::new(
                            endpoint
                                .addr
                                .map(IpAddr::from)
                                .unwrap_or_else(|| unspecified(held.family)),
                            endpoint.port,
                        ),
                        remote: SocketAddr::new(unspecified(held.family), 0),
                        sock: Some(*id),
                        recv_queue: waiting as u32,
                        send_queue: *backlog,
                    });
                    for h in pool {
                        shown.insert(*h);
                        let s = self.sockets.get::<tcp::Socket>(*h);
                        if !matches!(s.state(), tcp::State::Listen | tcp::State::Closed) {
                            out.push(entry(s, None, held.family));
                        }
                    }
                }
            }
        }
        for (h, s) in self.sockets.iter() {
            if shown.contains(&h) {
                continue;
            }
            if let smoltcp::socket::Socket::Tcp(t) = s
                && t.state() != tcp::State::Closed
            {
                let family = t
                    .local_endpoint()
                    .map_or(Family::Ipv4, |e| family_of(IpAddr::from(e.addr)));
                out.push(entry(t, None, family));
            }
        }
        out
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::Route {
                dst,
                prefix_len,
                via,
            } => {
                let full = || {
                    not_supported(format!(
                        "{control}: smoltcp's route table is full (IFACE_MAX_ROUTE_COUNT = 2)"
                    ))
                };
                if *prefix_len == 0 {
                    self.iface
                        .routes_mut()
                        .add_default_ipv4_route(*via)
                        .map_err(|_| full())?;
                } else {
                    let cidr = IpCidr::new(IpAddress::Ipv4(*dst), *prefix_len);
                    let mut ok = true;
                    self.iface.routes_mut().update(|routes| {
                        routes.retain(|r| r.cidr != cidr);
                        ok = routes
                            .push(smoltcp::iface::Route {
                                cidr,
                                via_router: IpAddress::Ipv4(*via),
                                preferred_until: None,
                                expires_at: None,
                            })
                            .is_ok();
                    });
                    if !ok {
                        return Err(full());
                    }
                }
                self.poll();
                Ok(())
            }
            Control::NeighbourParams(_) => Err(not_supported(format!(
                "{control}: smoltcp's neighbour timers are constants (entry lifetime 60 s, one \
                 request per second)"
            ))),
            Control::ArpPolicy(_) => Err(not_supported(format!(
                "{control}: smoltcp has one fixed ARP policy (it fills its cache from any ARP \
                 packet for its address, and answers requests for its addresses)"
            ))),
            Control::Forwarding(_) => Err(not_supported(format!(
                "{control}: smoltcp does not forward packets"
            ))),
            Control::AddRoute(_) => Err(not_supported(format!(
                "{control}: smoltcp's routes are gateway routes only, with no types, metrics \
                 or preferred sources"
            ))),
            Control::FlushNeighbours => {
                // Setting the addresses flushes the neighbour cache
                // (src/iface/interface/mod.rs:398-400); they are set to what they are.
                self.iface.update_ip_addrs(|_| {});
                self.poll();
                Ok(())
            }
            Control::FlushFdb | Control::SetAgeing(_) => Err(not_supported(format!(
                "{control}: the smoltcp target is a host, not a switch"
            ))),
            Control::Masquerade { .. } | Control::FlushConntrack => Err(not_supported(format!(
                "{control}: the smoltcp target is a host, not a NAT"
            ))),
        }
    }
}

impl Dut for SmoltcpHost {
    fn name(&self) -> &str {
        "smoltcp"
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!("smoltcp version = {SMOLTCP_VERSION}"),
            format!("smoltcp random seed = {:#x}", self.config.random_seed),
            format!(
                "smoltcp socket buffers = {} bytes receive, {} bytes transmit",
                self.config.buffer_size, self.config.buffer_size
            ),
            format!("mtu = {}", self.config.mtu),
            format!("peer pre-resolved = {}", self.config.peer_preresolved),
            "clock = virtual (time advances only while the harness waits)".to_string(),
        ];
        env.extend(
            self.config
                .unsupported_settings
                .iter()
                .map(|s| format!("pinned setting without smoltcp equivalent: {s}")),
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

    fn fixed_behaviour(&self) -> Option<std::sync::Arc<crate::dut::fixed::FixedBehaviour>> {
        self.config.fixed.clone().ok().flatten()
    }

    fn virtual_now(&self) -> Option<crate::time::Instant> {
        Some(crate::time::Instant::from_micros(
            self.stack.now.total_micros().max(0) as u64,
        ))
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn crate::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Link for SmoltcpHost {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        let frame = frame.to_vec();
        self.guarded(|s| {
            s.wire.to_stack.push_back(frame);
            s.poll();
            Ok(())
        })
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        let deadline = self.virtual_deadline(deadline);
        self.guarded(|s| {
            if s.wait_until(deadline, |s| !s.wire.from_stack.is_empty()) {
                Ok(s.wire.from_stack.pop_front())
            } else {
                Ok(None)
            }
        })
    }
}

impl crate::dut::Sockets for SmoltcpHost {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.guarded(|s| s.call(call))
    }

    fn udp(&self) -> bool {
        true
    }
}

impl crate::dut::Tables for SmoltcpHost {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::TcpSockets => {
                self.guarded(|s| Ok(StateAnswer::TcpSockets(s.tcp_sockets())))
            }
            StateQuery::TcpInfo(_) => Err(not_supported(
                "TCP_INFO: smoltcp exposes no RTT estimate, retransmission counters or \
                 negotiated options of a socket",
            )),
            StateQuery::Neighbours => Err(not_supported(
                "the neighbour table: smoltcp's neighbour cache has no public API",
            )),
            StateQuery::NeighbourParams | StateQuery::NeighbourTableInfo => Err(not_supported(
                "neighbour parameters: smoltcp's neighbour timers are constants and its cache \
                 has no public API",
            )),
            StateQuery::Routes => Err(not_supported(
                "the route table as Linux reports it: smoltcp has gateway routes only, with no \
                 tables, types, scopes, metrics or interface indexes",
            )),
            StateQuery::RouteGet(_) | StateQuery::RouteGetFrom { .. } => Err(not_supported(
                "a route lookup: smoltcp's lookup (Routes::lookup) is not public",
            )),
            StateQuery::Fdb => Err(not_supported(
                "a filtering database: the smoltcp target is a host, not a switch",
            )),
            StateQuery::Ports => Err(not_supported(
                "ports of a router: the smoltcp target is a host with one interface",
            )),
            StateQuery::Conntrack => Err(not_supported(
                "a conntrack table: the smoltcp target is a host, not a NAT",
            )),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.guarded(|s| s.control(control))
    }
}
