//! The Linux kernel as the stack under test, in a network namespace.
//!
//! [`LinuxHost`] = a [`Lab`] + a [`PacketSocket`] on the harness end + a control thread
//! that lives in the target namespace (`setns` on a dedicated `std::thread`, never an async
//! task). The control thread owns the sockets (a table [`SocketId`] → socket, TCP and UDP
//! alike: [`SocketCall::UdpBind`] makes a real `SOCK_DGRAM` socket there) and a
//! `NETLINK_SOCK_DIAG` socket; TCP states come from an inet_diag dump (AF_INET and
//! AF_INET6), which also shows sockets nobody holds any more (TIME-WAIT, request sockets),
//! and from TCP_INFO for a held socket. Neighbours and routes come from the sandbox's
//! rtnetlink socket in the target namespace. Dropping the target closes the sockets, stops
//! the thread and removes both namespaces.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;
use std::thread::JoinHandle;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, SocketId as DiagSocketId, StateFlags,
};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlSocketAddr, protocols::NETLINK_SOCK_DIAG};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{
    ArpAccept, ArpIgnore, CallOutcome, Control, Dut, DutError, Endpoints, Family, ShutdownHow,
    SocketCall, SocketId, SocketOption, StateAnswer, StateQuery, TcpInfo, TcpSocketState, TcpState,
};
use crate::sandbox::{Lab, LabConfig, LinkInfo, PacketSocket, Rtnl};

type Reply<T> = mpsc::SyncSender<Result<T, DutError>>;

enum Request {
    Call(SocketCall, Reply<CallOutcome>),
    TcpSockets(Reply<Vec<TcpSocketState>>),
    TcpConnection(SocketAddr, SocketAddr, Reply<Option<TcpSocketState>>),
    TcpInfo(SocketId, Reply<TcpInfo>),
}

/// The Linux kernel in a namespace, driven through a veth pair and a control thread.
pub struct LinuxHost {
    packet: PacketSocket,
    control: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    endpoints: Endpoints,
    lab: Lab,
}

impl std::fmt::Debug for LinuxHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxHost")
            .field("lab", &self.lab)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl LinuxHost {
    /// Builds the lab (see [`LabConfig::default`] for the address plan: 10.77.0.2/24 and
    /// fd77::2/64 for the stack, .1/::1 for the peer the harness speaks for, MTU 1500), opens
    /// the packet socket and starts the control thread.
    pub fn new(config: LabConfig) -> Result<LinuxHost, DutError> {
        let lab = Lab::build(config)?;
        let packet = lab.packet_socket()?;
        let (tx, rx) = mpsc::channel();
        let ns_name = lab.target().name().to_string();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = lab
            .target()
            .spawn("ncf linux control", move || match open_diag() {
                Ok(diag) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(KernelSockets::with_diag(diag, ns_name), rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(DutError::Io {
                    op: "open NETLINK_SOCK_DIAG in the target namespace".into(),
                    source: std::io::Error::other(e),
                });
            }
            Err(_) => {
                return Err(DutError::Gone {
                    what: "control thread".into(),
                });
            }
        }
        let cfg = lab.config();
        let endpoints = Endpoints {
            harness_mac: lab.harness_mac(),
            stack_mac: lab.target_mac(),
            stack_ipv4: cfg.ipv4.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv4: cfg.ipv4.as_ref().map(|v| v.peer),
            stack_ipv6: cfg.ipv6.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv6: cfg.ipv6.as_ref().map(|v| v.peer),
            mtu: lab.target_link().mtu,
        };
        Ok(LinuxHost {
            packet,
            control: Some(tx),
            thread: Some(thread),
            endpoints,
            lab,
        })
    }

    /// The lab underneath (namespaces, links, recorded sysctls).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab underneath, mutably (its rtnetlink sockets).
    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }

    /// Drops every frame already queued on the harness end; returns how many.
    pub fn drain_frames(&mut self) -> Result<usize, DutError> {
        Ok(self.packet.drain()?)
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, DutError> {
        let gone = || DutError::Gone {
            what: "control thread".into(),
        };
        let (tx, rx) = mpsc::sync_channel(1);
        self.control
            .as_ref()
            .ok_or_else(gone)?
            .send(make(tx))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for LinuxHost {
    fn drop(&mut self) {
        drop(self.control.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Then the fields: packet socket, lab (rtnetlink sockets, namespaces).
    }
}

impl Dut for LinuxHost {
    fn name(&self) -> &str {
        "linux"
    }

    fn environment(&self) -> Vec<String> {
        lab_environment(&self.lab)
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

impl crate::dut::Link for LinuxHost {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        Ok(self.packet.send(frame)?)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.packet.recv(deadline)?)
    }

    fn last_frame_at(&self) -> Option<std::time::Instant> {
        self.packet.last_received_at()
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        let index = self.lab.target_link().index;
        self.lab.target_rtnl().rx_packets(index).ok().flatten()
    }
}

impl crate::dut::Sockets for LinuxHost {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        let call = call.clone();
        self.ask(move |r| Request::Call(call, r))
    }

    fn udp(&self) -> bool {
        true
    }
}

impl crate::dut::Tables for LinuxHost {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::TcpSockets => Ok(StateAnswer::TcpSockets(self.ask(Request::TcpSockets)?)),
            StateQuery::TcpInfo(id) => {
                let id = *id;
                Ok(StateAnswer::TcpInfo(
                    self.ask(move |r| Request::TcpInfo(id, r))?,
                ))
            }
            other => {
                let link = self.lab.target_link().clone();
                query_tables(self.lab.target_rtnl(), &link, other)
            }
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        let link = self.lab.target_link().clone();
        match sysctls_for(control, &link.name) {
            Some(values) => self.set_sysctls(&values),
            None => control_tables(self.lab.target_rtnl(), &link, control),
        }
    }

    fn tcp_connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        self.ask(move |r| Request::TcpConnection(local, remote, r))
    }
}

impl LinuxHost {
    fn set_sysctls(&mut self, values: &[(String, String)]) -> Result<(), DutError> {
        // The trace records the control call; the values are read back by `set_all`.
        crate::sandbox::sysctl::set_all(self.lab.target(), values)?;
        Ok(())
    }
}

/// The environment lines of a lab (pinned sysctls, congestion control, offloads, MTU), as
/// [`Dut::environment`] reports them for a kernel stack in it.
pub fn lab_environment(lab: &Lab) -> Vec<String> {
    let mut env =
        crate::sandbox::sysctl::environment_lines(lab.sysctls(), lab.target().name(), "target");
    env.push(format!(
        "target congestion control = {}",
        lab.congestion_control()
    ));
    for (side, o) in [
        ("harness", lab.harness_offloads()),
        ("target", lab.target_offloads()),
    ] {
        env.push(format!(
            "{side} offloads: tso {} gso {} gro {} tx-checksum {}",
            o.tso, o.gso, o.gro, o.tx_checksum
        ));
    }
    env.push(format!("mtu = {}", lab.config().mtu));
    env
}

/// Answers a query about the kernel's tables (neighbours, routes, ARP parameters) through
/// `rtnl`, for the stack's interface `link`. The socket queries are [`KernelSockets`]'.
fn query_tables(
    rtnl: &mut Rtnl,
    link: &LinkInfo,
    query: &StateQuery,
) -> Result<StateAnswer, DutError> {
    match query {
        StateQuery::TcpSockets | StateQuery::TcpInfo(_) => Err(DutError::NotSupported {
            what: "TCP sockets: the socket table answers them, not rtnetlink".into(),
        }),
        StateQuery::Neighbours => {
            let mut v = rtnl.neighbours(false)?;
            v.extend(rtnl.neighbours(true)?);
            Ok(StateAnswer::Neighbours(v))
        }
        StateQuery::Routes => {
            let mut v = rtnl.routes(false)?;
            v.extend(rtnl.routes(true)?);
            Ok(StateAnswer::Routes(v))
        }
        StateQuery::NeighbourParams => {
            let index = link.index;
            Ok(StateAnswer::NeighbourParams(rtnl.neighbour_params(index)?))
        }
        StateQuery::NeighbourTableInfo => Ok(StateAnswer::NeighbourTableInfo(
            rtnl.neighbour_table_info()?,
        )),
        StateQuery::RouteGet(dst) => route_answer(rtnl, *dst, None),
        StateQuery::RouteGetFrom { dst, src } => route_answer(rtnl, *dst, Some(*src)),
        StateQuery::Fdb => Err(DutError::NotSupported {
            what: "a filtering database: this Linux target is a host, not a switch".into(),
        }),
        StateQuery::Ports => Err(DutError::NotSupported {
            what: "ports of a router: this Linux target is a host with one interface".into(),
        }),
        StateQuery::Conntrack => Err(DutError::NotSupported {
            what: "a conntrack table: this Linux target is a host, not a NAT".into(),
        }),
    }
}

/// The sysctls that make `control` true on interface `dev`, for the controls that are
/// sysctls (ARP policy, forwarding); `None` for the others.
/// `route get dst [from src]` as a [`StateAnswer`]: the lookup with its interface's name, or
/// the typed failure.
fn route_answer(
    rtnl: &mut Rtnl,
    dst: IpAddr,
    src: Option<IpAddr>,
) -> Result<StateAnswer, DutError> {
    match rtnl.route_get_from(dst, src) {
        Ok(lookup) => {
            let dev = match lookup.oif {
                Some(i) => rtnl
                    .links()?
                    .into_iter()
                    .find(|l| l.index == i)
                    .map(|l| l.name),
                None => None,
            };
            Ok(StateAnswer::Route { lookup, dev })
        }
        Err(crate::sandbox::SandboxError::RouteLookup {
            destination,
            failure,
            ..
        }) => Ok(StateAnswer::NoRoute {
            dst: destination,
            failure,
        }),
        Err(e) => Err(e.into()),
    }
}

fn sysctls_for(control: &Control, dev: &str) -> Option<Vec<(String, String)>> {
    match control {
        Control::ArpPolicy(policy) => {
            let accept = match policy.accept {
                ArpAccept::Never => "0",
                ArpAccept::Always => "1",
                ArpAccept::SameSubnet => "2",
            };
            let ignore = match policy.ignore {
                ArpIgnore::Any => "0",
                ArpIgnore::OnInterface => "1",
                ArpIgnore::SameSubnet => "2",
                ArpIgnore::Never => "8",
            };
            // The kernel uses the larger of `all` and the interface's value: pin both.
            Some(vec![
                ("net.ipv4.conf.all.arp_accept".into(), "0".into()),
                (format!("net.ipv4.conf.{dev}.arp_accept"), accept.into()),
                ("net.ipv4.conf.all.arp_ignore".into(), "0".into()),
                (format!("net.ipv4.conf.{dev}.arp_ignore"), ignore.into()),
            ])
        }
        Control::Forwarding(on) => {
            let v = if *on { "1" } else { "0" };
            Some(vec![
                ("net.ipv4.ip_forward".into(), v.into()),
                ("net.ipv4.conf.all.send_redirects".into(), "0".into()),
                (format!("net.ipv4.conf.{dev}.send_redirects"), "0".into()),
                ("net.ipv4.icmp_ratelimit".into(), "0".into()),
            ])
        }
        _ => None,
    }
}

/// Applies a control that is not a sysctl ([`sysctls_for`]) through `rtnl`, on the stack's
/// interface `link`.
fn control_tables(rtnl: &mut Rtnl, link: &LinkInfo, control: &Control) -> Result<(), DutError> {
    let index = link.index;
    match control {
        Control::NeighbourParams(update) => {
            rtnl.set_neighbour_params(index, update)?;
        }
        Control::ArpPolicy(_) | Control::Forwarding(_) => {
            return Err(DutError::NotSupported {
                what: format!("{control}: a sysctl, not an rtnetlink request"),
            });
        }
        Control::Route {
            dst,
            prefix_len,
            via,
        } => {
            rtnl.set_route(
                IpAddr::V4(*dst),
                *prefix_len,
                Some(IpAddr::V4(*via)),
                Some(index),
            )?;
        }
        Control::AddRoute(route) => {
            rtnl.add_typed_route(route)?;
        }
        Control::FlushNeighbours => {
            rtnl.flush_neighbours(index)?;
        }
        Control::FlushFdb | Control::SetAgeing(_) => {
            return Err(DutError::NotSupported {
                what: format!("{control}: this Linux target is a host, not a switch"),
            });
        }
        Control::Masquerade { .. } | Control::FlushConntrack => {
            return Err(DutError::NotSupported {
                what: format!("{control}: this Linux target is a host, not a NAT"),
            });
        }
    }
    Ok(())
}

/// The whole kernel stack of the calling thread's network namespace, as one value: the
/// socket table ([`KernelSockets`]), rtnetlink for the tables, and the stack's interface.
/// It answers every call, query and control [`LinuxHost`] does, the same way; it is what
/// the reference agent (`netconform-agent-linux`) runs inside the stack's namespace.
pub struct KernelStack {
    sockets: KernelSockets,
    rtnl: Rtnl,
    link: LinkInfo,
    namespace: String,
}

impl std::fmt::Debug for KernelStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelStack")
            .field("namespace", &self.namespace)
            .field("link", &self.link)
            .finish()
    }
}

impl KernelStack {
    /// Opens the stack of the calling thread's namespace, for interface `interface`;
    /// `namespace` names the namespace in error messages and sysctl records.
    pub fn open_here(namespace: &str, interface: &str) -> Result<KernelStack, DutError> {
        let sockets = KernelSockets::open_here(namespace)?;
        let mut rtnl = Rtnl::open(namespace)?;
        let link = rtnl.link_by_name(interface)?;
        Ok(KernelStack {
            sockets,
            rtnl,
            link,
            namespace: namespace.to_string(),
        })
    }

    /// The stack's interface (name, index, MAC, MTU).
    pub fn link(&self) -> &LinkInfo {
        &self.link
    }

    /// One socket call.
    pub fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.sockets.call(call.clone())
    }

    /// One state query: TCP sockets and TCP_INFO from the socket table, the rest from
    /// rtnetlink; the queries a host has no answer to are [`DutError::NotSupported`].
    pub fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::TcpSockets => Ok(StateAnswer::TcpSockets(self.sockets.tcp_sockets()?)),
            StateQuery::TcpInfo(id) => Ok(StateAnswer::TcpInfo(self.sockets.tcp_info(*id)?)),
            other => query_tables(&mut self.rtnl, &self.link, other),
        }
    }

    /// One control: sysctls for the ARP policy and forwarding (read back), rtnetlink for
    /// the rest.
    pub fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match sysctls_for(control, &self.link.name) {
            Some(values) => {
                crate::sandbox::sysctl::set_all_here(&self.namespace, &values)?;
                Ok(())
            }
            None => control_tables(&mut self.rtnl, &self.link, control),
        }
    }
}

fn open_diag() -> std::io::Result<NlSocket> {
    let mut s = NlSocket::new(NETLINK_SOCK_DIAG)?;
    s.bind_auto()?;
    s.connect(&NlSocketAddr::new(0, 0))?;
    Ok(s)
}

/// The kernel's socket layer in one network namespace: a table [`SocketId`] → socket (the
/// sockets the harness created or accepted) and a `NETLINK_SOCK_DIAG` socket for the TCP
/// states. Every socket is created in the namespace of the thread that makes the call, so
/// the value lives on one thread inside the namespace (or in a process started there).
pub struct KernelSockets {
    sockets: HashMap<SocketId, Socket>,
    next_accepted: u32,
    diag: NlSocket,
    namespace: String,
    seq: u32,
}

fn errno_of(e: &std::io::Error) -> CallOutcome {
    CallOutcome::errno(e.raw_os_error().unwrap_or(libc::EIO))
}

fn poll_one(sock: &Socket, flags: PollFlags, timeout_ms: u64) -> std::io::Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = u16::try_from(left.as_millis().min(u128::from(u16::MAX))).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(sock.as_fd(), flags)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from_raw_os_error(e as i32)),
        }
    }
}

fn set_int(sock: &Socket, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: setsockopt reads one int from a valid pointer with the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn get_int(sock: &Socket, level: i32, name: i32) -> std::io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a valid int and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

fn apply_option(sock: &Socket, option: SocketOption) -> std::io::Result<SocketOption> {
    use libc::{IPPROTO_TCP as TCP, SOL_SOCKET as SOL};
    let as_i32 =
        |v: u32| i32::try_from(v).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL));
    Ok(match option {
        SocketOption::KeepAlive(on) => {
            set_int(sock, SOL, libc::SO_KEEPALIVE, on.into())?;
            SocketOption::KeepAlive(get_int(sock, SOL, libc::SO_KEEPALIVE)? != 0)
        }
        SocketOption::KeepIdle(s) => {
            set_int(sock, TCP, libc::TCP_KEEPIDLE, as_i32(s)?)?;
            SocketOption::KeepIdle(get_int(sock, TCP, libc::TCP_KEEPIDLE)? as u32)
        }
        SocketOption::KeepInterval(s) => {
            set_int(sock, TCP, libc::TCP_KEEPINTVL, as_i32(s)?)?;
            SocketOption::KeepInterval(get_int(sock, TCP, libc::TCP_KEEPINTVL)? as u32)
        }
        SocketOption::KeepCount(n) => {
            set_int(sock, TCP, libc::TCP_KEEPCNT, as_i32(n)?)?;
            SocketOption::KeepCount(get_int(sock, TCP, libc::TCP_KEEPCNT)? as u32)
        }
        SocketOption::NoDelay(on) => {
            set_int(sock, TCP, libc::TCP_NODELAY, on.into())?;
            SocketOption::NoDelay(get_int(sock, TCP, libc::TCP_NODELAY)? != 0)
        }
        SocketOption::QuickAck(on) => {
            set_int(sock, TCP, libc::TCP_QUICKACK, on.into())?;
            SocketOption::QuickAck(get_int(sock, TCP, libc::TCP_QUICKACK)? != 0)
        }
        SocketOption::Linger(l) => {
            let want = libc::linger {
                l_onoff: i32::from(l.is_some()),
                l_linger: as_i32(l.unwrap_or(0))?,
            };
            let size = std::mem::size_of::<libc::linger>() as libc::socklen_t;
            // SAFETY: setsockopt reads one `struct linger` from a valid pointer.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    SOL,
                    libc::SO_LINGER,
                    (&want as *const libc::linger).cast(),
                    size,
                )
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut got = libc::linger {
                l_onoff: 0,
                l_linger: 0,
            };
            let mut len = size;
            // SAFETY: getsockopt writes at most `len` bytes into a valid `struct linger`.
            let rc = unsafe {
                libc::getsockopt(
                    sock.as_raw_fd(),
                    SOL,
                    libc::SO_LINGER,
                    (&mut got as *mut libc::linger).cast(),
                    &mut len,
                )
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            SocketOption::Linger((got.l_onoff != 0).then_some(got.l_linger as u32))
        }
        SocketOption::MaxSegment(m) => {
            set_int(sock, TCP, libc::TCP_MAXSEG, i32::from(m))?;
            SocketOption::MaxSegment(get_int(sock, TCP, libc::TCP_MAXSEG)? as u16)
        }
        SocketOption::UserTimeout(ms) => {
            set_int(sock, TCP, libc::TCP_USER_TIMEOUT, as_i32(ms)?)?;
            SocketOption::UserTimeout(get_int(sock, TCP, libc::TCP_USER_TIMEOUT)? as u32)
        }
        SocketOption::SynCount(n) => {
            set_int(sock, TCP, libc::TCP_SYNCNT, as_i32(n)?)?;
            SocketOption::SynCount(get_int(sock, TCP, libc::TCP_SYNCNT)? as u32)
        }
        SocketOption::RecvBuffer(b) => {
            set_int(sock, SOL, libc::SO_RCVBUF, as_i32(b)?)?;
            SocketOption::RecvBuffer(get_int(sock, SOL, libc::SO_RCVBUF)? as u32)
        }
    })
}

fn tcp_info(sock: &Socket) -> std::io::Result<TcpInfo> {
    // SAFETY: tcp_info is plain old data; all-zero is valid.
    let mut i: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a valid `struct tcp_info`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut i as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // include/uapi/linux/tcp.h: TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4, ECN 8.
    Ok(TcpInfo {
        state: TcpState::from_linux(i.tcpi_state),
        timestamps: i.tcpi_options & 1 != 0,
        sack: i.tcpi_options & 2 != 0,
        window_scaling: i.tcpi_options & 4 != 0,
        ecn: i.tcpi_options & 8 != 0,
        snd_wscale: i.tcpi_snd_rcv_wscale & 0x0f,
        rcv_wscale: i.tcpi_snd_rcv_wscale >> 4,
        retransmits: i.tcpi_retransmits,
        probes: i.tcpi_probes,
        backoff: i.tcpi_backoff,
        rto_us: i.tcpi_rto,
        ato_us: i.tcpi_ato,
        snd_mss: i.tcpi_snd_mss,
        rcv_mss: i.tcpi_rcv_mss,
        unacked: i.tcpi_unacked,
        lost: i.tcpi_lost,
        retrans: i.tcpi_retrans,
        rtt_us: i.tcpi_rtt,
        rttvar_us: i.tcpi_rttvar,
        snd_ssthresh: i.tcpi_snd_ssthresh,
        snd_cwnd: i.tcpi_snd_cwnd,
        advmss: i.tcpi_advmss,
        total_retrans: i.tcpi_total_retrans,
    })
}

/// One inet_diag answer as a [`TcpSocketState`] (`None` for a state Linux has and TCP does
/// not name); `held` maps an inode to the id of the socket the harness holds.
fn socket_state(
    r: &netlink_packet_sock_diag::inet::InetResponse,
    held: impl Fn(u64) -> Option<SocketId>,
) -> Option<TcpSocketState> {
    let h = &r.header;
    let state = TcpState::from_linux(h.state)?;
    let sid = &h.socket_id;
    Some(TcpSocketState {
        state,
        local: SocketAddr::new(sid.source_address, sid.source_port),
        remote: SocketAddr::new(sid.destination_address, sid.destination_port),
        sock: (h.inode != 0).then(|| held(u64::from(h.inode))).flatten(),
        recv_queue: h.recv_queue,
        send_queue: h.send_queue,
    })
}

fn inode_of(sock: &Socket) -> Option<u64> {
    nix::sys::stat::fstat(sock.as_fd()).ok().map(|s| s.st_ino)
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

impl std::fmt::Debug for KernelSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSockets")
            .field("namespace", &self.namespace)
            .field("sockets", &self.sockets.len())
            .finish()
    }
}

/// The control thread of a [`LinuxHost`]: answers requests until the target hangs up.
fn serve(mut sockets: KernelSockets, rx: mpsc::Receiver<Request>) {
    while let Ok(req) = rx.recv() {
        match req {
            Request::Call(call, reply) => {
                let _ = reply.send(sockets.call(call));
            }
            Request::TcpSockets(reply) => {
                let _ = reply.send(sockets.tcp_sockets());
            }
            Request::TcpConnection(local, remote, reply) => {
                let _ = reply.send(sockets.tcp_connection(local, remote));
            }
            Request::TcpInfo(id, reply) => {
                let _ = reply.send(sockets.tcp_info(id));
            }
        }
    }
    // Dropping `sockets` closes every socket still held.
}

impl KernelSockets {
    /// Opens the socket layer of the calling thread's namespace (its sock_diag socket);
    /// `namespace` names it in error messages.
    pub fn open_here(namespace: &str) -> Result<KernelSockets, DutError> {
        let diag = open_diag().map_err(|source| DutError::Io {
            op: format!("open NETLINK_SOCK_DIAG in {namespace}"),
            source,
        })?;
        Ok(KernelSockets::with_diag(diag, namespace.to_string()))
    }

    fn with_diag(diag: NlSocket, namespace: String) -> KernelSockets {
        KernelSockets {
            sockets: HashMap::new(),
            next_accepted: SocketId::ACCEPTED_BASE,
            diag,
            namespace,
            seq: 0,
        }
    }

    /// TCP_INFO of held socket `id`.
    pub fn tcp_info(&self, id: SocketId) -> Result<TcpInfo, DutError> {
        self.get(id).and_then(|s| {
            tcp_info(s).map_err(|source| DutError::Io {
                op: format!("getsockopt(TCP_INFO) on {id}"),
                source,
            })
        })
    }

    fn get(&self, id: SocketId) -> Result<&Socket, DutError> {
        self.sockets.get(&id).ok_or(DutError::UnknownSocket(id))
    }

    /// Creates socket `id` (non-blocking TCP) unless it exists already.
    fn ensure(
        &mut self,
        id: SocketId,
        family: Family,
    ) -> Result<Result<&Socket, CallOutcome>, DutError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.sockets.entry(id) {
            let domain = match family {
                Family::Ipv4 => Domain::IPV4,
                Family::Ipv6 => Domain::IPV6,
            };
            let s = match Socket::new(
                domain,
                Type::STREAM.nonblocking().cloexec(),
                Some(Protocol::TCP),
            ) {
                Ok(s) => s,
                Err(e) => return Ok(Err(errno_of(&e))),
            };
            if family == Family::Ipv6 {
                let _ = s.set_only_v6(true);
            }
            slot.insert(s);
        }
        Ok(Ok(self.get(id)?))
    }

    /// One socket call; what the kernel answers (an errno, a timeout) is the outcome.
    pub fn call(&mut self, call: SocketCall) -> Result<CallOutcome, DutError> {
        let io = |r: std::io::Result<()>| match r {
            Ok(()) => CallOutcome::Ok,
            Err(e) => errno_of(&e),
        };
        Ok(match call {
            SocketCall::Socket { sock, family } => {
                if self.sockets.contains_key(&sock) {
                    return Err(DutError::SocketExists(sock));
                }
                match self.ensure(sock, family)? {
                    Ok(_) => CallOutcome::Ok,
                    Err(o) => o,
                }
            }
            SocketCall::Bind { sock, addr, port } => {
                let family = if addr.is_ipv4() {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                };
                match self.ensure(sock, family)? {
                    Ok(s) => io(s.bind(&SockAddr::from(SocketAddr::new(addr, port)))),
                    Err(o) => o,
                }
            }
            SocketCall::Listen {
                sock,
                family,
                addr,
                port,
                backlog,
            } => match self.ensure(sock, family)? {
                Ok(s) => {
                    let addr = SocketAddr::new(addr.unwrap_or_else(|| unspecified(family)), port);
                    let _ = s.set_reuse_address(true);
                    match s.bind(&SockAddr::from(addr)) {
                        Err(e) => errno_of(&e),
                        Ok(()) => io(s.listen(i32::try_from(backlog).unwrap_or(i32::MAX))),
                    }
                }
                Err(o) => o,
            },
            SocketCall::Accept {
                listener,
                timeout_ms,
            } => {
                let l = self.get(listener)?;
                match poll_one(l, PollFlags::POLLIN, timeout_ms) {
                    Err(e) => errno_of(&e),
                    Ok(false) => CallOutcome::TimedOut,
                    Ok(true) => match l.accept() {
                        Err(e) => errno_of(&e),
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(true);
                            let mut id = SocketId(self.next_accepted);
                            while self.sockets.contains_key(&id) {
                                id = SocketId(id.0.wrapping_add(1));
                            }
                            self.next_accepted = id.0.wrapping_add(1);
                            self.sockets.insert(id, s);
                            CallOutcome::NewSocket(id)
                        }
                    },
                }
            }
            SocketCall::Connect {
                sock,
                family,
                addr,
                port,
            } => match self.ensure(sock, family)? {
                Ok(s) => match s.connect(&SockAddr::from(SocketAddr::new(addr, port))) {
                    Ok(()) => CallOutcome::Ok,
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => CallOutcome::Ok,
                    Err(e) => errno_of(&e),
                },
                Err(o) => o,
            },
            SocketCall::WaitConnected { sock, timeout_ms } => {
                let s = self.get(sock)?;
                match poll_one(s, PollFlags::POLLOUT, timeout_ms) {
                    Err(e) => errno_of(&e),
                    Ok(false) => CallOutcome::TimedOut,
                    Ok(true) => match s.take_error() {
                        Ok(None) => CallOutcome::Ok,
                        Ok(Some(e)) | Err(e) => errno_of(&e),
                    },
                }
            }
            SocketCall::Send { sock, data } => {
                let s = self.get(sock)?;
                match s.send_with_flags(&data, libc::MSG_NOSIGNAL) {
                    Ok(n) => CallOutcome::Sent(n),
                    Err(e) => errno_of(&e),
                }
            }
            SocketCall::Recv {
                sock,
                max,
                timeout_ms,
            } => {
                let s = self.get(sock)?;
                match poll_one(s, PollFlags::POLLIN, timeout_ms) {
                    Err(e) => errno_of(&e),
                    Ok(false) => CallOutcome::TimedOut,
                    Ok(true) => {
                        let mut buf = vec![0u8; max];
                        // SAFETY: recv writes at most `buf.len()` bytes into a valid buffer.
                        let n = unsafe {
                            libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                        };
                        if n < 0 {
                            errno_of(&std::io::Error::last_os_error())
                        } else if n == 0 && max > 0 {
                            CallOutcome::Eof
                        } else {
                            buf.truncate(n as usize);
                            CallOutcome::Data(buf)
                        }
                    }
                }
            }
            SocketCall::Shutdown { sock, how } => {
                let how = match how {
                    ShutdownHow::Read => std::net::Shutdown::Read,
                    ShutdownHow::Write => std::net::Shutdown::Write,
                    ShutdownHow::Both => std::net::Shutdown::Both,
                };
                io(self.get(sock)?.shutdown(how))
            }
            SocketCall::Close { sock } => {
                let s = self
                    .sockets
                    .remove(&sock)
                    .ok_or(DutError::UnknownSocket(sock))?;
                drop(s);
                CallOutcome::Ok
            }
            SocketCall::SetOption { sock, option } => match apply_option(self.get(sock)?, option) {
                Ok(v) => CallOutcome::OptionValue(v),
                Err(e) => errno_of(&e),
            },
            SocketCall::UdpBind { sock, addr, port } => {
                if self.sockets.contains_key(&sock) {
                    return Err(DutError::SocketExists(sock));
                }
                let domain = if addr.is_ipv4() {
                    Domain::IPV4
                } else {
                    Domain::IPV6
                };
                let s = match Socket::new(
                    domain,
                    Type::DGRAM.nonblocking().cloexec(),
                    Some(Protocol::UDP),
                ) {
                    Ok(s) => s,
                    Err(e) => return Ok(errno_of(&e)),
                };
                if addr.is_ipv6() {
                    let _ = s.set_only_v6(true);
                }
                // A socket that could not be bound is closed again: the id stays free.
                match s.bind(&SockAddr::from(SocketAddr::new(addr, port))) {
                    Err(e) => errno_of(&e),
                    Ok(()) => {
                        self.sockets.insert(sock, s);
                        CallOutcome::Ok
                    }
                }
            }
            SocketCall::SendTo {
                sock,
                addr,
                port,
                data,
            } => {
                let to = SockAddr::from(SocketAddr::new(addr, port));
                match self
                    .get(sock)?
                    .send_to_with_flags(&data, &to, libc::MSG_NOSIGNAL)
                {
                    Ok(n) => CallOutcome::Sent(n),
                    Err(e) => errno_of(&e),
                }
            }
            SocketCall::RecvFrom {
                sock,
                max,
                timeout_ms,
            } => {
                let s = self.get(sock)?;
                match poll_one(s, PollFlags::POLLIN, timeout_ms) {
                    Err(e) => errno_of(&e),
                    Ok(false) => CallOutcome::TimedOut,
                    Ok(true) => {
                        let mut buf = vec![0u8; max];
                        // SAFETY: initialised bytes are valid `MaybeUninit<u8>`s, and
                        // recvfrom only ever writes initialised bytes into the buffer.
                        let uninit = unsafe {
                            &mut *(buf.as_mut_slice() as *mut [u8]
                                as *mut [std::mem::MaybeUninit<u8>])
                        };
                        match s.recv_from(uninit) {
                            Err(e) => errno_of(&e),
                            Ok((n, from)) => {
                                buf.truncate(n);
                                match from.as_socket() {
                                    Some(from) => CallOutcome::Datagram { from, data: buf },
                                    // A stream socket: recvfrom(2) names no source there.
                                    None => CallOutcome::Data(buf),
                                }
                            }
                        }
                    }
                }
            }
        })
    }

    /// Every TCP socket of the namespace (an inet_diag dump), held or not.
    ///
    /// A dump walks every bucket of the kernel's established hash table, which all
    /// namespaces share unless `tcp_child_ehash_entries` is set (262,144 buckets on a
    /// 24 GiB machine): milliseconds per family. [`KernelSockets::tcp_connection`] looks
    /// one connection up instead.
    pub fn tcp_sockets(&mut self) -> Result<Vec<TcpSocketState>, DutError> {
        let by_inode: HashMap<u64, SocketId> = self
            .sockets
            .iter()
            .filter_map(|(id, s)| inode_of(s).map(|ino| (ino, *id)))
            .collect();
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let id = if family == AF_INET {
                DiagSocketId::new_v4()
            } else {
                DiagSocketId::new_v6()
            };
            for r in self.diag_request(family, id, true)? {
                out.extend(socket_state(&r, |ino| by_inode.get(&ino).copied()));
            }
        }
        Ok(out)
    }

    /// The TCP socket of connection `local` ↔ `remote`, the way [`Tables::tcp_connection`](crate::dut::Tables::tcp_connection)
    /// means it, from an exact inet_diag lookup: one hash lookup in the kernel (established
    /// and TIME-WAIT sockets, request sockets, then the listener of `local`, which
    /// [`super::is_connection`] drops as a dump's reader would), where a dump walks the
    /// whole shared hash table. It finds the same socket a dump lists: the lab's sockets
    /// are bound to the stack's address, so `local` is exact.
    pub fn tcp_connection(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        let family = if local.is_ipv4() { AF_INET } else { AF_INET6 };
        let id = DiagSocketId {
            source_port: local.port(),
            destination_port: remote.port(),
            source_address: local.ip(),
            destination_address: remote.ip(),
            interface_id: 0,
            // INET_DIAG_NOCOOKIE: any socket with this address pair.
            cookie: [0xff; 8],
        };
        let answers = self.diag_request(family, id, false)?;
        let held = |ino: u64| {
            self.sockets
                .iter()
                .find(|(_, s)| inode_of(s) == Some(ino))
                .map(|(id, _)| *id)
        };
        Ok(answers
            .iter()
            .filter_map(|r| socket_state(r, held))
            .find(|s| super::is_connection(s, local, remote)))
    }

    /// One inet_diag request for `family`: a dump (every socket) or an exact lookup of
    /// `id` (no socket: an empty list).
    fn diag_request(
        &mut self,
        family: u8,
        id: DiagSocketId,
        dump: bool,
    ) -> Result<Vec<netlink_packet_sock_diag::inet::InetResponse>, DutError> {
        let op = format!(
            "sock_diag {} (family {family}) in {}",
            if dump { "dump" } else { "lookup" },
            self.namespace
        );
        let io = |e: std::io::Error| DutError::Io {
            op: op.clone(),
            source: e,
        };
        let mut header = NetlinkHeader::default();
        header.flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST
        };
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: id,
            })
            .into(),
        );
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.diag.send(&buf, 0).map_err(io)?;
        let mut rbuf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        loop {
            let n = self.diag.recv(&mut &mut rbuf[..], 0).map_err(io)?;
            let mut off = 0;
            while off < n.min(rbuf.len()) {
                let m =
                    NetlinkMessage::<SockDiagMessage>::deserialize(&rbuf[off..n]).map_err(|e| {
                        DutError::Malformed {
                            detail: format!("{op}: {e}"),
                        }
                    })?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        match e.code.map(|c| -c.get()) {
                            // An exact lookup that found no socket.
                            Some(libc::ENOENT) if !dump => {}
                            Some(code) => return Err(io(std::io::Error::from_raw_os_error(code))),
                            None => {}
                        }
                        return Ok(out);
                    }
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        out.push(*r);
                        // An exact lookup answers with one message and no end marker.
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The lab a check runs in on the Linux target: the default addresses, IPv6 only when the
/// check uses it, the peer pre-resolved when it asks, and the settings it pins.
pub fn lab_config_for(needs: &crate::dut::needs::Needs) -> LabConfig {
    let mut config = LabConfig {
        static_neighbours: needs.peer_preresolved,
        ..LabConfig::default()
    };
    if !needs.ipv6 {
        config.ipv6 = None;
    }
    config.target_sysctls = needs
        .settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config
}
