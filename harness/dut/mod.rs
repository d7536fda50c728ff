//! Devices under test behind one trait, [`Dut`], built from the planes each has.
//!
//! A DUT offers what it has, plane by plane, and nothing else:
//!
//! | plane | trait | what | who has it |
//! |---|---|---|---|
//! | link | [`Link`] | Ethernet ports: send a frame into one, read the next frame out of any | a host stack (one port), a switch, a router |
//! | sockets | [`Sockets`] | TCP (and UDP, [`Sockets::udp`]) socket calls inside the stack | a host stack |
//! | tables | [`Tables`] | state the stack keeps (TCP sockets, neighbours, routes, FDB, conntrack) and settings a check changes ([`Control`]) | a host stack, a switch, a router |
//! | services | [`Services`] | a process that serves a protocol ([`service`]: TLS) | rustls, OpenSSL |
//!
//! [`LinuxHost`](linux::LinuxHost) drives the running kernel in a network namespace
//! (link, sockets, tables); [`SmoltcpHost`](smoltcp::SmoltcpHost) drives smoltcp
//! in-process on a virtual clock ([`Dut::virtual_now`]); [`ExternalStack`](external::ExternalStack)
//! any stack behind an agent; [`LinuxBridge`](bridge::LinuxBridge) (a switch) and
//! [`LinuxRouter`](router::LinuxRouter) have a link of several ports and tables but no
//! sockets; [`RustlsService`](tls::RustlsService) and [`OpensslService`](openssl::OpensslService)
//! only a service plane. A check states what it needs ([`needs::Needs`]); the engine goes
//! to a plane through the helpers on `dyn Dut` ([`send_frame`](#method.send_frame),
//! [`call`](#method.call), [`query`](#method.query), [`service`](#method.service), ...), and a
//! plane the DUT does not have answers [`DutError::NotSupported`] naming it, which is a
//! verdict of its own (unsupported), not a failure. [`Capabilities`] lists a DUT's planes.
//!
//! A switch's ports are addressed with [`Link::ports`], [`Link::send_frame_on`] and
//! [`Link::recv_frame_any`] (a host stack has one port, port 0, which the defaults map to
//! [`Link::send_frame`] and [`Link::recv_frame`]); its filtering database is read with
//! [`StateQuery::Fdb`] and changed with [`Tables::control`] ([`Control::FlushFdb`],
//! [`Control::SetAgeing`]).
//!
//! What the kernel answers to a socket call (an errno, a timeout, end of stream) is an
//! observation and comes back as a [`CallOutcome`]; a [`DutError`] means the DUT itself
//! could not do what was asked.
//!
//! Sockets are TCP or UDP. The TCP calls ([`SocketCall::Socket`], [`SocketCall::Listen`],
//! [`SocketCall::Connect`]...) are unchanged since before UDP; UDP has calls of its own:
//! [`SocketCall::UdpBind`] makes and binds a UDP socket, [`SocketCall::SendTo`] sends one
//! datagram, [`SocketCall::RecvFrom`] receives one as [`CallOutcome::Datagram`] (its
//! source and payload), and [`SocketCall::Close`] closes either kind. Both kinds share the
//! harness's [`SocketId`]s. A DUT with no UDP answers the UDP calls
//! [`DutError::NotSupported`] ([`SocketCall::is_udp`]).

pub mod agent;
pub mod bridge;
pub mod build;
pub mod external;
pub mod fixed;
pub mod linux;
pub mod lwip;
pub mod needs;
pub mod openssl;
pub mod passt;
pub mod ports;
pub mod pytcp;
pub mod recorder;
pub mod router;
pub mod service;
pub mod slirp;
pub mod smoltcp;
pub mod spoil;
pub mod switch;
pub mod tls;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

pub use crate::models::arp::{ArpAccept, ArpIgnore, ArpPolicy};
use crate::sandbox::{
    MacAddr, NeighbourEntry, NeighbourParams, NeighbourParamsUpdate, NeighbourTableInfo,
    RouteEntry, RouteFailure, RouteLookup, SandboxError,
};

pub use switch::{FdbEntry, FdbState};

/// The device under test, as the check engine sees it: a name, its addresses, and the
/// planes it has. A plane it does not have is `None`; the engine then answers every event
/// of that plane [`DutError::NotSupported`] naming the DUT and the plane (the helpers on
/// `dyn Dut`: [`send_frame`](#method.send_frame), [`call`](#method.call), ...).
pub trait Dut {
    /// Short name used in reports ("linux").
    fn name(&self) -> &str;
    /// Addresses of the two ends (harness-side MAC, stack MAC, stack IPv4/IPv6 addresses, MTU).
    fn endpoints(&self) -> &Endpoints;
    /// The environment the results depend on (pinned sysctls, offloads, congestion
    /// control), one `name = value` line each, for reports.
    fn environment(&self) -> Vec<String> {
        Vec::new()
    }
    /// The DUT's own clock, for a stack that runs on a virtual clock (smoltcp): `None`
    /// (the default) means real time. When it is `Some`, the recorder stamps the trace with
    /// it, and the DUT reads each deadline it is given as that much of its own time from
    /// the moment of the call ([`VirtualDeadlines`]), so waiting costs no real time.
    fn virtual_now(&self) -> Option<crate::time::Instant> {
        None
    }
    /// What the stack does where it cannot be configured, as its profile declares it
    /// (`profiles/<target>.toml`, [`fixed::FixedBehaviour`]): a check whose setting the
    /// stack refuses runs against the declared value instead. `None` (the default): nothing
    /// declared, such a check is unsupported.
    fn fixed_behaviour(&self) -> Option<std::sync::Arc<fixed::FixedBehaviour>> {
        None
    }

    /// How long after its answer to a barrier's echo request the stack may still send the
    /// answers to what came before it. Zero (the default): a stack that handles the frames
    /// of its link in order and answers while it handles them. A stack that sends some
    /// answers on a later turn of its event loop (PyTCP: TCP output from a timer at least
    /// 1 ms after the segment that caused it, an echo reply at once) declares its lag, and
    /// the host barrier keeps reading that long after the echo reply.
    fn answer_lag(&self) -> crate::time::Duration {
        crate::time::Duration::from_micros(0)
    }
    /// The link plane: Ethernet ports the harness sends frames into and reads frames from
    /// (a host stack, a switch, a router). `None`: the DUT has no link of its own (a TLS
    /// service).
    fn link(&mut self) -> Option<&mut dyn Link> {
        None
    }
    /// The socket plane: TCP (and UDP) socket calls made inside the stack. `None`: the DUT
    /// has no sockets the harness can call (a switch, a router).
    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        None
    }
    /// The table plane: the state the stack keeps (its TCP sockets, neighbours, routes,
    /// filtering database, connection tracking) and the settings a check changes while it
    /// runs. `None`: the DUT has no tables the harness can read.
    fn tables(&mut self) -> Option<&mut dyn Tables> {
        None
    }
    /// The service plane: processes that serve a protocol (see [`service`]). `None`: the
    /// DUT serves nothing of its own (a bare stack).
    fn services(&mut self) -> Option<&mut dyn Services> {
        None
    }
}

/// The link plane of a DUT: Ethernet frames in and out of its ports.
pub trait Link {
    /// Send one Ethernet frame to the stack (port 0).
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError>;
    /// The next frame the stack sent (port 0), or None when `deadline` passed.
    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError>;
    /// When the frame last returned by [`Link::recv_frame`] (or [`Link::recv_frame_any`])
    /// left the stack, if the DUT knows it better than the moment the harness read it (the
    /// kernel's receive timestamp on the harness's packet socket). `None` (the default):
    /// the recorder stamps the frame when it reads it.
    fn last_frame_at(&self) -> Option<std::time::Instant> {
        None
    }
    /// How many frames the stack's interface has received so far, where the DUT can count
    /// them (a kernel's interface counters). The harness compares it before and after a
    /// frame of its own machinery that got no answer (a barrier probe) to tell its own loss
    /// (the frame never reached the stack) from the stack's silence. `None` (the default):
    /// not known, and such a loss is never assumed.
    fn frames_delivered(&mut self) -> Option<u64> {
        None
    }
    /// How many ports the stack has, numbered from 0. A host stack has one; a switch has
    /// several.
    fn ports(&self) -> usize {
        1
    }
    /// Send one Ethernet frame into port `port`. The default sends port 0 through
    /// [`Link::send_frame`] and refuses the others.
    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        if port == 0 {
            self.send_frame(frame)
        } else {
            Err(DutError::NotSupported {
                what: format!("port {port}: the DUT has {} port(s)", self.ports()),
            })
        }
    }
    /// The next frame out of any port, with the port, or None when `deadline` passed. The
    /// default reads port 0 through [`Link::recv_frame`].
    fn recv_frame_any(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        Ok(self.recv_frame(deadline)?.map(|frame| (0, frame)))
    }
}

/// The socket plane of a DUT: socket calls made inside the stack.
pub trait Sockets {
    /// One socket call. What the stack answers (an errno, a timeout, end of stream) is the
    /// [`CallOutcome`]; a [`DutError`] means the DUT could not make the call.
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError>;
    /// Whether the DUT has UDP sockets ([`SocketCall::is_udp`]); every socket plane has TCP.
    fn udp(&self) -> bool {
        false
    }
    /// The TCP options the stack offers on its connections ([`TcpStackConfig::ALL`] unless
    /// the DUT says otherwise): an input of the TCP model, as the stack is configured.
    fn tcp_config(&self) -> TcpStackConfig {
        TcpStackConfig::ALL
    }
    /// Whether the stack's answers wait for something off the wire: a user-mode
    /// translator hands the peer's segment to its host side first (a SYN becomes a host
    /// connect, whose completion or refusal makes the SYN-ACK or the RST) and sends what
    /// follows from its next poll, after the barrier's echo reply. The TCP checks then wait
    /// for every predicted answer as for a delayed acknowledgment (at most 0.5 s, MUST-40)
    /// and compare it the same. Default: false (a host stack answers at once).
    fn answers_wait_for_host(&self) -> bool {
        false
    }
    /// For a stack whose answers wait for its host side: after how many more barriers
    /// those answers are known to be out, when its event loop makes that a signal (passt
    /// handles the guest's frames in order and sends what a host socket's event makes from
    /// the next turn of its loop, so two more echo round trips through it follow every such
    /// answer). The TCP checks then run these barriers instead of waiting up to 0.5 s.
    /// Default: 0 (no such signal: wait).
    fn host_answers_within_barriers(&self) -> u8 {
        0
    }
}

/// How a stack is built or configured to send TCP: the options it offers in its SYN and
/// SYN-ACK and the TTL of its segments. The TCP checks take it as the stack's
/// configuration (an input, like `models::tcp::Config`), not as a choice they judge.
/// Linux offers all three options (the harness pins the sysctls that turn them on) and
/// sends TTL 64; a stack built otherwise says so (lwIP's Debian build: no SACK, no
/// timestamps, TTL 255), and the checks then expect that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpStackConfig {
    /// SACK-permitted (RFC 2018).
    pub sack: bool,
    /// Timestamps (RFC 7323).
    pub timestamps: bool,
    /// Window scaling (RFC 7323).
    pub window_scaling: bool,
    /// The IPv4 TTL of its TCP segments (RFC 1122 §3.2.1.7 fixes no value; Linux: 64).
    pub ttl: u8,
}

impl TcpStackConfig {
    /// Every option on, TTL 64 (Linux with the harness's pinned sysctls, smoltcp).
    pub const ALL: TcpStackConfig = TcpStackConfig {
        sack: true,
        timestamps: true,
        window_scaling: true,
        ttl: 64,
    };
}

impl Default for TcpStackConfig {
    fn default() -> Self {
        TcpStackConfig::ALL
    }
}

/// The table plane of a DUT: the state it keeps and the settings a check changes.
pub trait Tables {
    /// Read state (TCP socket states, neighbour table, routes, FDB, conntrack).
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError>;
    /// Change a setting of the stack while a check runs (neighbour timers, ARP policy,
    /// forwarding, a route). A DUT that has no such setting answers
    /// [`DutError::NotSupported`] (the default, for every setting).
    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        Err(DutError::NotSupported {
            what: format!("{control}"),
        })
    }
    /// Why the DUT cannot show the states of its TCP connections, when it cannot (`None`,
    /// the default: it can, through [`StateQuery::TcpSockets`] and
    /// [`Tables::tcp_connection`]). A user-mode translator whose tool exposes no
    /// connection table (slirp4netns) says so here: the TCP checks then compare what it
    /// sends on the wire alone, and note each state they did not read in the trace.
    fn tcp_states_hidden(&self) -> Option<String> {
        None
    }
    /// The TCP socket of one connection, the stack's end at `local` and the peer at
    /// `remote`: the entry of [`StateQuery::TcpSockets`] whose local port is `local`'s and
    /// whose remote address is `remote` (`None`: the stack has no such socket, i.e.
    /// CLOSED). The default reads the whole list and picks it; a DUT that can look one
    /// connection up directly (Linux: an exact sock_diag lookup instead of a dump) answers
    /// the same faster.
    fn tcp_connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        match self.query(&StateQuery::TcpSockets)? {
            StateAnswer::TcpSockets(sockets) => Ok(sockets
                .into_iter()
                .find(|s| is_connection(s, local, remote))),
            other => Err(DutError::Malformed {
                detail: format!("TCP sockets: expected a socket list, the DUT answered {other:?}"),
            }),
        }
    }
}

/// The service plane of a DUT (see [`service`]).
pub trait Services {
    /// The implementations of a protocol service the DUT offers.
    fn offered(&self) -> Vec<service::ServiceImpl>;
    /// One exchange with a service the DUT offers.
    fn exchange(
        &mut self,
        request: &service::ServiceRequest,
    ) -> Result<service::ServiceAnswer, DutError>;
}

/// What a DUT has, plane by plane ([`Dut::capabilities`](#method.capabilities)): what a
/// check's [`needs::Needs`] are compared with before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    /// Ports of its link plane (0: no link plane).
    pub link_ports: usize,
    /// A socket plane (TCP sockets).
    pub tcp: bool,
    /// UDP sockets on its socket plane.
    pub udp: bool,
    /// A table plane.
    pub tables: bool,
    /// The services it offers.
    pub services: Vec<service::ServiceImpl>,
}

/// The engine's way into a DUT's planes: each event goes to its plane, and a plane the
/// DUT does not have answers [`DutError::NotSupported`] naming it.
impl dyn Dut + '_ {
    /// What the DUT has, read from its planes.
    pub fn capabilities(&mut self) -> Capabilities {
        let link_ports = self.link().map_or(0, |l| l.ports());
        let (tcp, udp) = self.sockets().map_or((false, false), |s| (true, s.udp()));
        let tables = self.tables().is_some();
        let services = self.services().map_or_else(Vec::new, |s| s.offered());
        Capabilities {
            link_ports,
            tcp,
            udp,
            tables,
            services,
        }
    }

    fn missing(&self, what: &str, plane: &str) -> DutError {
        DutError::NotSupported {
            what: format!("{what}: the {} DUT has no {plane}", self.name()),
        }
    }

    fn link_plane(&mut self, what: &str) -> Result<&mut dyn Link, DutError> {
        if self.link().is_none() {
            return Err(self.missing(what, "link of its own"));
        }
        self.link()
            .ok_or_else(|| DutError::NotSupported { what: what.into() })
    }

    fn table_plane(&mut self, what: &str) -> Result<&mut dyn Tables, DutError> {
        if self.tables().is_none() {
            return Err(self.missing(what, "tables to read"));
        }
        self.tables()
            .ok_or_else(|| DutError::NotSupported { what: what.into() })
    }

    /// [`Link::send_frame`].
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.link_plane("sending frames")?.send_frame(frame)
    }
    /// [`Link::recv_frame`].
    pub fn recv_frame(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, DutError> {
        self.link_plane("receiving frames")?.recv_frame(deadline)
    }
    /// [`Link::send_frame_on`].
    pub fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        self.link_plane(&format!("sending frames into port {port}"))?
            .send_frame_on(port, frame)
    }
    /// [`Link::recv_frame_any`].
    pub fn recv_frame_any(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        self.link_plane("receiving frames")?
            .recv_frame_any(deadline)
    }
    /// [`Link::ports`] (0 without a link plane).
    pub fn ports(&mut self) -> usize {
        self.link().map_or(0, |l| l.ports())
    }
    /// [`Link::last_frame_at`].
    pub fn last_frame_at(&mut self) -> Option<std::time::Instant> {
        self.link().and_then(|l| l.last_frame_at())
    }
    /// [`Link::frames_delivered`].
    pub fn frames_delivered(&mut self) -> Option<u64> {
        self.link().and_then(|l| l.frames_delivered())
    }
    /// [`Sockets::call`].
    pub fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        if self.sockets().is_none() {
            return Err(self.missing(&call.to_string(), "sockets to call"));
        }
        match self.sockets() {
            Some(s) => s.call(call),
            None => Err(DutError::NotSupported {
                what: call.to_string(),
            }),
        }
    }
    /// [`Sockets::tcp_config`] ([`TcpStackConfig::ALL`] without a socket plane).
    pub fn tcp_config(&mut self) -> TcpStackConfig {
        self.sockets()
            .map_or(TcpStackConfig::ALL, |s| s.tcp_config())
    }
    /// [`Tables::query`].
    pub fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.table_plane(&format!("{query:?}"))?.query(query)
    }
    /// [`Tables::control`].
    pub fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.table_plane(&control.to_string())?.control(control)
    }
    /// [`Tables::tcp_connection`].
    pub fn tcp_connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        self.table_plane("TCP sockets")?
            .tcp_connection(local, remote)
    }
    /// [`Services::offered`] (none without a service plane).
    pub fn offered_services(&mut self) -> Vec<service::ServiceImpl> {
        self.services().map_or_else(Vec::new, |s| s.offered())
    }
    /// [`Services::exchange`].
    pub fn service(
        &mut self,
        request: &service::ServiceRequest,
    ) -> Result<service::ServiceAnswer, DutError> {
        if self.services().is_none() {
            return Err(self.missing(&request.to_string(), "service of its own"));
        }
        match self.services() {
            Some(s) => s.exchange(request),
            None => Err(DutError::NotSupported {
                what: request.to_string(),
            }),
        }
    }
}

/// Whether `s` is the socket of connection `local` ↔ `remote` as
/// [`Tables::tcp_connection`] means it: the local port and the remote address match.
pub fn is_connection(s: &TcpSocketState, local: SocketAddr, remote: SocketAddr) -> bool {
    s.local.port() == local.port()
        && s.remote.port() == remote.port()
        && s.remote.ip() == remote.ip()
}

/// Maps the real deadlines of the [`Dut`] trait to a virtual clock.
///
/// A deadline is read as the real time left until it when it is first seen, rounded up to
/// the millisecond; a deadline seen again (a caller waiting in a loop for a relevant frame)
/// maps to the same virtual instant, so a wait never grows.
#[derive(Debug, Default, Clone)]
pub struct VirtualDeadlines {
    last: Option<(std::time::Instant, crate::time::Instant)>,
}

impl VirtualDeadlines {
    /// The virtual instant `deadline` stands for, the virtual clock reading `now`.
    pub fn map(
        &mut self,
        deadline: std::time::Instant,
        now: crate::time::Instant,
    ) -> crate::time::Instant {
        if let Some((real, virt)) = self.last
            && real == deadline
        {
            return virt;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = left.as_micros().div_ceil(1000) as u64;
        let virt = now + crate::time::Duration::from_millis(millis);
        self.last = Some((deadline, virt));
        virt
    }
}

/// The message a caught panic carries (`"unknown panic"` when it is not text).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A socket of the stack under test, named by the harness (ids below [`SocketId::ACCEPTED_BASE`])
/// or by the target for accepted connections (ids from it upwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SocketId(pub u32);

impl SocketId {
    /// The first id a target hands out for accepted sockets.
    pub const ACCEPTED_BASE: u32 = 1 << 16;
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    /// AF_INET.
    Ipv4,
    /// AF_INET6.
    Ipv6,
}

/// Which direction `shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShutdownHow {
    /// SHUT_RD.
    Read,
    /// SHUT_WR (sends FIN).
    Write,
    /// SHUT_RDWR.
    Both,
}

/// A socket option, applied with a real `setsockopt` and read back where the kernel allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SocketOption {
    /// SO_KEEPALIVE.
    KeepAlive(bool),
    /// TCP_KEEPIDLE, seconds.
    KeepIdle(u32),
    /// TCP_KEEPINTVL, seconds.
    KeepInterval(u32),
    /// TCP_KEEPCNT, probes.
    KeepCount(u32),
    /// TCP_NODELAY (Nagle off).
    NoDelay(bool),
    /// TCP_QUICKACK (the kernel clears it again by itself; the read-back is the current mode).
    QuickAck(bool),
    /// SO_LINGER: `None` off, `Some(secs)` on (`Some(0)`: close sends RST).
    Linger(Option<u32>),
    /// TCP_MAXSEG, bytes.
    MaxSegment(u16),
    /// TCP_USER_TIMEOUT, milliseconds.
    UserTimeout(u32),
    /// TCP_SYNCNT, SYN retransmissions.
    SynCount(u32),
    /// SO_RCVBUF, bytes (the kernel doubles it; the read-back shows what it keeps).
    RecvBuffer(u32),
}

/// One socket call made inside the stack under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SocketCall {
    /// Creates an unbound TCP socket `sock` (so options can be set before listen/connect).
    Socket {
        /// The id the harness gives it.
        sock: SocketId,
        /// Address family.
        family: Family,
    },
    /// Binds `sock` (created first if needed) to `addr:port`.
    Bind {
        /// The socket.
        sock: SocketId,
        /// Local address.
        addr: IpAddr,
        /// Local port (0: the kernel picks).
        port: u16,
    },
    /// Creates `sock` if needed, binds it to `addr:port` (unspecified when `None`) and listens.
    Listen {
        /// The socket.
        sock: SocketId,
        /// Address family.
        family: Family,
        /// Local address (`None`: any).
        addr: Option<IpAddr>,
        /// Local port.
        port: u16,
        /// Backlog.
        backlog: u32,
    },
    /// Accepts one connection; the outcome is [`CallOutcome::NewSocket`] or
    /// [`CallOutcome::TimedOut`].
    Accept {
        /// The listening socket.
        listener: SocketId,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Starts a non-blocking connect (sends the SYN) and returns at once: the harness must
    /// answer the SYN itself. [`SocketCall::WaitConnected`] reports the result.
    Connect {
        /// The socket (created first if needed).
        sock: SocketId,
        /// Address family.
        family: Family,
        /// Remote address.
        addr: IpAddr,
        /// Remote port.
        port: u16,
    },
    /// Waits until the connect started by [`SocketCall::Connect`] finishes: `Ok`, an errno,
    /// or `TimedOut`.
    WaitConnected {
        /// The socket.
        sock: SocketId,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Sends bytes (non-blocking: [`CallOutcome::Sent`] says how many were queued).
    Send {
        /// The socket.
        sock: SocketId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Receives up to `max` bytes, waiting up to `timeout_ms`.
    Recv {
        /// The socket.
        sock: SocketId,
        /// Maximum bytes.
        max: usize,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// shutdown(2).
    Shutdown {
        /// The socket.
        sock: SocketId,
        /// Direction.
        how: ShutdownHow,
    },
    /// close(2); the id is free again afterwards.
    Close {
        /// The socket.
        sock: SocketId,
    },
    /// setsockopt(2) followed by a read-back ([`CallOutcome::OptionValue`]).
    SetOption {
        /// The socket.
        sock: SocketId,
        /// The option and its value.
        option: SocketOption,
    },
    /// Creates a UDP socket `sock` (non-blocking; IPv6-only for an IPv6 address) and binds
    /// it to `addr:port`, the family being `addr`'s (unspecified: any address; port 0: the
    /// stack picks one). The UDP counterpart of [`SocketCall::Listen`]: a datagram to
    /// `addr:port` is queued for [`SocketCall::RecvFrom`] from then on. The id must be free
    /// ([`DutError::SocketExists`]); [`SocketCall::Close`] closes it.
    UdpBind {
        /// The id the harness gives it.
        sock: SocketId,
        /// Local address (unspecified: any).
        addr: IpAddr,
        /// Local port (0: the stack picks).
        port: u16,
    },
    /// Sends one datagram to `addr:port` (non-blocking: [`CallOutcome::Sent`] once the
    /// stack took it, or an errno).
    SendTo {
        /// The UDP socket.
        sock: SocketId,
        /// Remote address.
        addr: IpAddr,
        /// Remote port.
        port: u16,
        /// The payload (may be empty: a datagram of length 0).
        data: Vec<u8>,
    },
    /// Receives one datagram, waiting up to `timeout_ms`: [`CallOutcome::Datagram`] with
    /// its source and at most `max` bytes of its payload (the rest is discarded, as
    /// recvfrom(2) does), or [`CallOutcome::TimedOut`].
    RecvFrom {
        /// The UDP socket.
        sock: SocketId,
        /// Maximum bytes.
        max: usize,
        /// How long to wait.
        timeout_ms: u64,
    },
}

impl SocketCall {
    /// Whether this is one of the UDP calls ([`SocketCall::UdpBind`],
    /// [`SocketCall::SendTo`], [`SocketCall::RecvFrom`]): a target without UDP answers
    /// them [`DutError::NotSupported`].
    pub fn is_udp(&self) -> bool {
        matches!(
            self,
            SocketCall::UdpBind { .. } | SocketCall::SendTo { .. } | SocketCall::RecvFrom { .. }
        )
    }
}

/// What the stack answered to a socket call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallOutcome {
    /// Success without a value.
    Ok,
    /// A new socket (from accept).
    NewSocket(SocketId),
    /// This many bytes were queued.
    Sent(usize),
    /// Bytes received.
    Data(Vec<u8>),
    /// End of stream (the peer's FIN).
    Eof,
    /// The call failed with an errno.
    Errno {
        /// The errno value.
        code: i32,
        /// Its name (`ECONNREFUSED`).
        name: String,
    },
    /// Nothing happened before the timeout.
    TimedOut,
    /// The option's value as read back after setting it.
    OptionValue(SocketOption),
    /// One datagram received ([`SocketCall::RecvFrom`]): its source and payload (empty for
    /// a datagram of length 0, which is not an end of stream).
    Datagram {
        /// The sender's address and port.
        from: SocketAddr,
        /// The payload (at most the call's `max` bytes).
        data: Vec<u8>,
    },
}

impl CallOutcome {
    /// The outcome for an errno value.
    pub fn errno(code: i32) -> CallOutcome {
        CallOutcome::Errno {
            code,
            name: format!("{:?}", nix::errno::Errno::from_raw(code)),
        }
    }
}

/// A state query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateQuery {
    /// Every TCP socket of the stack, held or not (e.g. TIME-WAIT).
    TcpSockets,
    /// TCP_INFO of one held socket.
    TcpInfo(SocketId),
    /// The neighbour table (ARP and ND).
    Neighbours,
    /// The routes (IPv4 and IPv6, all tables).
    Routes,
    /// One route lookup.
    RouteGet(IpAddr),
    /// One route lookup with a source address (`ip route get DST from SRC`), answered like
    /// [`StateQuery::RouteGet`] (agent protocol 1.2).
    RouteGetFrom {
        /// The destination.
        dst: IpAddr,
        /// The source address given.
        src: IpAddr,
    },
    /// The ARP parameters of the stack's interface (timers, probe counts, the reachable
    /// time it drew).
    NeighbourParams,
    /// Table-wide neighbour facts that decide garbage collection.
    NeighbourTableInfo,
    /// A switch's filtering database: the entries it learned, by port.
    Fdb,
    /// A multi-port stack (a router): its interface on every port, in port order.
    Ports,
    /// A NAT: its connection tracking table (every tracked flow, original and reply
    /// direction).
    Conntrack,
}

/// A setting a check changes on the stack under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// ARP timers and probe counts of the stack's interface (times in ms).
    NeighbourParams(NeighbourParamsUpdate),
    /// When ARP creates entries and which requests are answered (RFC 826 leaves both open;
    /// Linux: `arp_accept`, `arp_ignore`).
    ArpPolicy(ArpPolicy),
    /// Forward IPv4 packets not addressed to the stack (with ICMP redirects off and no ICMP
    /// rate limit, so every error a check provokes is sent).
    Forwarding(bool),
    /// The IPv4 route to `dst/prefix_len` is `via` this gateway (`0.0.0.0/0`: the default
    /// route): added, or replacing the route to that prefix already there.
    Route {
        /// Destination prefix.
        dst: Ipv4Addr,
        /// Prefix length.
        prefix_len: u8,
        /// Next hop.
        via: Ipv4Addr,
    },
    /// A typed route in the main table, IPv4 or IPv6, of any type the route model knows
    /// (via a gateway, on-link, local, blackhole, unreachable, prohibit, throw), with its
    /// metric and preferred source; interface indexes are the stack's own.
    AddRoute(crate::models::route::Route),
    /// Forget every dynamic neighbour entry of the stack's interface.
    FlushNeighbours,
    /// A switch: remove every learned entry from the filtering database.
    FlushFdb,
    /// A switch: set the ageing time of the filtering database.
    SetAgeing(crate::time::Duration),
    /// A router: source-NAT (masquerade) everything it sends out of port `port` to its
    /// own address there.
    Masquerade {
        /// The outside port.
        port: usize,
    },
    /// A NAT: forget every tracked connection (and so every mapping).
    FlushConntrack,
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::NeighbourParams(u) => {
                write!(f, "set neighbour parameters")?;
                let ms = [
                    ("base_reachable", u.base_reachable_ms),
                    ("retrans", u.retrans_ms),
                    ("delay_probe", u.delay_probe_ms),
                    ("gc_stale", u.gc_stale_ms),
                    ("locktime", u.locktime_ms),
                ];
                for (name, v) in ms {
                    if let Some(v) = v {
                        write!(f, " {name} {v}ms")?;
                    }
                }
                let counts = [
                    ("ucast_probes", u.ucast_probes),
                    ("mcast_probes", u.mcast_probes),
                    ("app_probes", u.app_probes),
                    ("mcast_reprobes", u.mcast_reprobes),
                ];
                for (name, v) in counts {
                    if let Some(v) = v {
                        write!(f, " {name} {v}")?;
                    }
                }
                Ok(())
            }
            Control::ArpPolicy(p) => write!(
                f,
                "set ARP policy: accept {:?}, ignore {:?}",
                p.accept, p.ignore
            ),
            Control::Forwarding(on) => {
                write!(f, "set IPv4 forwarding {}", if *on { "on" } else { "off" })
            }
            Control::Route {
                dst,
                prefix_len,
                via,
            } => write!(f, "set route {dst}/{prefix_len} via {via}"),
            Control::AddRoute(route) => write!(f, "add route {route}"),
            Control::FlushNeighbours => write!(f, "flush neighbours"),
            Control::FlushFdb => write!(f, "flush fdb"),
            Control::SetAgeing(d) => write!(f, "set ageing time {d}"),
            Control::Masquerade { port } => write!(f, "masquerade out of p{port}"),
            Control::FlushConntrack => write!(f, "flush conntrack"),
        }
    }
}

/// A TCP state, named and displayed as RFC 9293 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpState {
    /// LISTEN.
    Listen,
    /// SYN-SENT.
    SynSent,
    /// SYN-RECEIVED (Linux: SYN_RECV and NEW_SYN_RECV request sockets).
    SynReceived,
    /// ESTABLISHED.
    Established,
    /// FIN-WAIT-1.
    FinWait1,
    /// FIN-WAIT-2.
    FinWait2,
    /// CLOSE-WAIT.
    CloseWait,
    /// CLOSING.
    Closing,
    /// LAST-ACK.
    LastAck,
    /// TIME-WAIT.
    TimeWait,
    /// CLOSED.
    Closed,
}

impl TcpState {
    /// The state for a Linux `TCP_*` state number (`include/net/tcp_states.h`).
    pub fn from_linux(n: u8) -> Option<TcpState> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynReceived,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Closed,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// The RFC spelling (`SYN-RECEIVED`).
    pub fn rfc_name(self) -> &'static str {
        match self {
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Closed => "CLOSED",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())
    }
}

/// One TCP socket of the stack under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSocketState {
    /// Its state.
    pub state: TcpState,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified for a listener).
    pub remote: SocketAddr,
    /// The id when the harness holds the socket (`None`: e.g. TIME-WAIT, request sockets).
    pub sock: Option<SocketId>,
    /// Listener: pending connections; others: bytes in the receive queue.
    pub recv_queue: u32,
    /// Listener: backlog; others: bytes in the send queue.
    pub send_queue: u32,
}

/// TCP_INFO of one socket (the fields a conformance check uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    /// State.
    pub state: Option<TcpState>,
    /// Timestamps negotiated.
    pub timestamps: bool,
    /// SACK negotiated.
    pub sack: bool,
    /// Window scaling negotiated.
    pub window_scaling: bool,
    /// ECN negotiated.
    pub ecn: bool,
    /// Send window scale.
    pub snd_wscale: u8,
    /// Receive window scale.
    pub rcv_wscale: u8,
    /// Retransmissions of the current segment.
    pub retransmits: u8,
    /// Unanswered keepalive or zero-window probes.
    pub probes: u8,
    /// Exponential backoff count.
    pub backoff: u8,
    /// Retransmission timeout, µs.
    pub rto_us: u32,
    /// Delayed-ACK timeout, µs.
    pub ato_us: u32,
    /// Send MSS.
    pub snd_mss: u32,
    /// Receive MSS estimate.
    pub rcv_mss: u32,
    /// Unacknowledged segments.
    pub unacked: u32,
    /// Lost segments.
    pub lost: u32,
    /// Retransmitted segments in flight.
    pub retrans: u32,
    /// Smoothed RTT, µs.
    pub rtt_us: u32,
    /// RTT variance, µs.
    pub rttvar_us: u32,
    /// Slow-start threshold.
    pub snd_ssthresh: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Advertised MSS.
    pub advmss: u32,
    /// Total retransmissions.
    pub total_retrans: u32,
}

/// The answer to a [`StateQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateAnswer {
    /// TCP sockets.
    TcpSockets(Vec<TcpSocketState>),
    /// TCP_INFO.
    TcpInfo(TcpInfo),
    /// Neighbour entries.
    Neighbours(Vec<NeighbourEntry>),
    /// Routes.
    Routes(Vec<RouteEntry>),
    /// A route lookup that found a route; `dev` is the output interface's name.
    Route {
        /// The lookup result.
        lookup: RouteLookup,
        /// The output interface's name.
        dev: Option<String>,
    },
    /// A route lookup that found no usable route.
    NoRoute {
        /// The destination.
        dst: IpAddr,
        /// Why (the errno, typed).
        failure: RouteFailure,
    },
    /// ARP parameters of the stack's interface.
    NeighbourParams(NeighbourParams),
    /// Table-wide neighbour facts.
    NeighbourTableInfo(NeighbourTableInfo),
    /// A switch's learned filtering database entries.
    Fdb(Vec<FdbEntry>),
    /// The stack's interface on every port, in port order.
    Ports(Vec<PortInfo>),
    /// The connection tracking table.
    Conntrack(Vec<crate::sandbox::ConntrackEntry>),
}

/// The stack's interface on one port of a multi-port target (a router).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// The stack's interface index (what its routes and route lookups name).
    pub ifindex: u32,
    /// The stack's interface name.
    pub name: String,
    /// The stack's MAC on this port.
    pub mac: MacAddr,
    /// The harness end's MAC on this port (the source of every frame the harness sends).
    pub harness_mac: MacAddr,
    /// The stack's IPv4 address and prefix length on this port.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// The stack's IPv6 address and prefix length on this port.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// Link MTU.
    pub mtu: u32,
}

/// Addresses of the two ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// MAC of the harness end (the peer the stack talks to).
    pub harness_mac: MacAddr,
    /// MAC of the stack's interface.
    pub stack_mac: MacAddr,
    /// The stack's IPv4 address and prefix length.
    pub stack_ipv4: Option<(Ipv4Addr, u8)>,
    /// The IPv4 address the harness speaks for.
    pub peer_ipv4: Option<Ipv4Addr>,
    /// The stack's IPv6 address and prefix length.
    pub stack_ipv6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 address the harness speaks for.
    pub peer_ipv6: Option<Ipv6Addr>,
    /// Link MTU.
    pub mtu: u32,
}

/// Errors of a target (the target could not do what was asked).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DutError {
    /// This target cannot perform the event (a verdict of its own, not a failure).
    #[error("not supported by this target: {what}")]
    NotSupported {
        /// The event.
        what: String,
    },
    /// The target did not answer in time.
    #[error("target timed out: {what}")]
    Timeout {
        /// What was waited for.
        what: String,
    },
    /// An OS call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Something the target returned could not be understood.
    #[error("malformed answer: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// The stack sent more frames in one check than any check provokes: it floods its
    /// link (a storm of retransmissions, a loop), and the check stops.
    #[error("the stack flooded its link: {frames} frames in one check (at most {limit} expected)")]
    Flood {
        /// Frames received.
        frames: u64,
        /// The limit ([`crate::dut::recorder::FLOOD_LIMIT`]).
        limit: u64,
    },
    /// The target (or its control thread) is gone.
    #[error("target gone: {what}")]
    Gone {
        /// What is gone.
        what: String,
    },
    /// The call names a socket the target does not hold.
    #[error("no socket {0}")]
    UnknownSocket(SocketId),
    /// The call would create a socket whose id is taken.
    #[error("socket {0} already exists")]
    SocketExists(SocketId),
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl fmt::Display for SocketCall {
    /// A compact, deterministic rendering for traces: `listen(1, 10.77.0.2:8080, backlog 8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketCall::Socket { sock, family } => write!(f, "socket({sock}, {family:?})"),
            SocketCall::Bind { sock, addr, port } => {
                write!(f, "bind({sock}, {})", SocketAddr::new(*addr, *port))
            }
            SocketCall::Listen {
                sock,
                addr,
                port,
                backlog,
                ..
            } => match addr {
                Some(a) => write!(
                    f,
                    "listen({sock}, {}, backlog {backlog})",
                    SocketAddr::new(*a, *port)
                ),
                None => write!(f, "listen({sock}, *:{port}, backlog {backlog})"),
            },
            SocketCall::Accept {
                listener,
                timeout_ms,
            } => write!(f, "accept({listener}, {timeout_ms} ms)"),
            SocketCall::Connect {
                sock, addr, port, ..
            } => write!(f, "connect({sock}, {})", SocketAddr::new(*addr, *port)),
            SocketCall::WaitConnected { sock, timeout_ms } => {
                write!(f, "wait_connected({sock}, {timeout_ms} ms)")
            }
            SocketCall::Send { sock, data } => write!(f, "send({sock}, {} bytes)", data.len()),
            SocketCall::Recv {
                sock,
                max,
                timeout_ms,
            } => write!(f, "recv({sock}, {max}, {timeout_ms} ms)"),
            SocketCall::Shutdown { sock, how } => write!(f, "shutdown({sock}, {how:?})"),
            SocketCall::Close { sock } => write!(f, "close({sock})"),
            SocketCall::SetOption { sock, option } => write!(f, "setsockopt({sock}, {option:?})"),
            SocketCall::UdpBind { sock, addr, port } => {
                write!(f, "udp_bind({sock}, {})", SocketAddr::new(*addr, *port))
            }
            SocketCall::SendTo {
                sock,
                addr,
                port,
                data,
            } => write!(
                f,
                "sendto({sock}, {}, {} bytes)",
                SocketAddr::new(*addr, *port),
                data.len()
            ),
            SocketCall::RecvFrom {
                sock,
                max,
                timeout_ms,
            } => write!(f, "recvfrom({sock}, {max}, {timeout_ms} ms)"),
        }
    }
}

impl fmt::Display for CallOutcome {
    /// `ok`, `socket 65536`, `sent 27`, `data 27 bytes`, `eof`, `ECONNREFUSED (111)`, `timed out`,
    /// `datagram 12 bytes from 10.77.0.1:40000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallOutcome::Ok => f.write_str("ok"),
            CallOutcome::NewSocket(id) => write!(f, "socket {id}"),
            CallOutcome::Sent(n) => write!(f, "sent {n}"),
            CallOutcome::Data(d) => write!(f, "data {} bytes", d.len()),
            CallOutcome::Eof => f.write_str("eof"),
            CallOutcome::Errno { code, name } => write!(f, "{name} ({code})"),
            CallOutcome::TimedOut => f.write_str("timed out"),
            CallOutcome::OptionValue(o) => write!(f, "value {o:?}"),
            CallOutcome::Datagram { from, data } => {
                write!(f, "datagram {} bytes from {from}", data.len())
            }
        }
    }
}
