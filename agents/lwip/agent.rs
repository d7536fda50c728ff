//! The agent proper: lwIP through agents/lwip/shim.c (see the crate doc in agents/lwip.rs).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::FromRawFd;
use std::os::raw::{c_char, c_int};

use netconform::dut::agent::{AgentEnv, AgentInfo, AgentStack, serve};
use netconform::dut::{
    CallOutcome, Control, DutError, Family, ShutdownHow, SocketCall, SocketId, SocketOption,
    StateAnswer, StateQuery, TcpInfo, TcpSocketState, TcpStackConfig, TcpState,
};
use netconform::sandbox::{MacAddr, NeighbourEntry, NudState, RouteEntry, RouteLookup};

/// What the C side returns for a wait that ran out.
const TIMEDOUT: c_int = -100_000;

/// An address as the C side takes it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Addr {
    family: u8,
    bytes: [u8; 16],
}

impl Addr {
    fn none() -> Addr {
        Addr::default()
    }
    fn of(ip: IpAddr) -> Addr {
        let mut a = Addr::default();
        match ip {
            IpAddr::V4(v) => {
                a.family = 4;
                a.bytes[..4].copy_from_slice(&v.octets());
            }
            IpAddr::V6(v) => {
                a.family = 6;
                a.bytes = v.octets();
            }
        }
        a
    }
    fn ip(&self) -> IpAddr {
        if self.family == 6 {
            IpAddr::V6(Ipv6Addr::from(self.bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.bytes[0],
                self.bytes[1],
                self.bytes[2],
                self.bytes[3],
            ))
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Pcb {
    state: c_int,
    local: Addr,
    remote: Addr,
    local_port: u16,
    remote_port: u16,
    recv_queue: u32,
    send_queue: u32,
    held: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawTcpInfo {
    state: c_int,
    window_scaling: c_int,
    snd_wscale: u8,
    rcv_wscale: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    rto_us: u32,
    snd_mss: u32,
    unacked: u32,
    rtt_us: u32,
    rttvar_us: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ArpEntry {
    ip: [u8; 4],
    mac: [u8; 6],
    ifindex: c_int,
}

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn ncf_start(
        tap: *const c_char,
        mac: *const u8,
        v4: *const Addr,
        prefix4: u8,
        v6: *const Addr,
        prefix6: u8,
        peer_mac: *const u8,
        peer_v4: *const Addr,
        peer_v6: *const Addr,
        preresolve: c_int,
        mtu: c_int,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    fn ncf_netif_index() -> c_int;
    fn ncf_socket(family: c_int, udp: c_int) -> c_int;
    fn ncf_bind(fd: c_int, a: *const Addr, port: u16) -> c_int;
    fn ncf_reuseaddr(fd: c_int) -> c_int;
    fn ncf_listen(fd: c_int, backlog: c_int) -> c_int;
    fn ncf_accept(fd: c_int, timeout_ms: c_int) -> c_int;
    fn ncf_connect(fd: c_int, a: *const Addr, port: u16) -> c_int;
    fn ncf_wait_connected(fd: c_int, timeout_ms: c_int) -> c_int;
    fn ncf_send(fd: c_int, buf: *const u8, len: usize) -> c_int;
    fn ncf_recv(fd: c_int, buf: *mut u8, max: usize, timeout_ms: c_int) -> c_int;
    fn ncf_sendto(fd: c_int, a: *const Addr, port: u16, buf: *const u8, len: usize) -> c_int;
    fn ncf_recvfrom(
        fd: c_int,
        buf: *mut u8,
        max: usize,
        timeout_ms: c_int,
        from: *mut Addr,
        port: *mut u16,
    ) -> c_int;
    fn ncf_shutdown(fd: c_int, how: c_int) -> c_int;
    fn ncf_close(fd: c_int) -> c_int;
    fn ncf_setopt(fd: c_int, which: c_int, value: c_int, out: *mut c_int) -> c_int;
    fn ncf_tcp_pcbs(out: *mut Pcb, max: c_int, fds: *const c_int, nfds: c_int) -> c_int;
    fn ncf_tcp_info(fd: c_int, info: *mut RawTcpInfo) -> c_int;
    fn ncf_arp_entries(out: *mut ArpEntry, max: c_int) -> c_int;
    fn ncf_arp_flush() -> c_int;
    fn ncf_route(
        dst: *const Addr,
        ifindex: *mut c_int,
        gateway: *mut Addr,
        has_gateway: *mut c_int,
        src: *mut Addr,
        kind: *mut c_int,
    ) -> c_int;
    fn ncf_set_gateway(gw: *const u8) -> c_int;
    fn ncf_ipv4(addr: *mut u8, mask: *mut u8, gw: *mut u8);
}

/// The C side's option numbers (`enum ncf_option` in shim.c).
mod opt {
    pub const KEEPALIVE: i32 = 0;
    pub const KEEPIDLE: i32 = 1;
    pub const KEEPINTVL: i32 = 2;
    pub const KEEPCNT: i32 = 3;
    pub const NODELAY: i32 = 4;
    pub const LINGER: i32 = 5;
    pub const RCVBUF: i32 = 6;
}

/// lwIP's `enum tcp_state` (lwip/tcpbase.h) as the protocol spells it.
fn tcp_state(n: c_int) -> Option<TcpState> {
    Some(match n {
        0 => TcpState::Closed,
        1 => TcpState::Listen,
        2 => TcpState::SynSent,
        3 => TcpState::SynReceived,
        4 => TcpState::Established,
        5 => TcpState::FinWait1,
        6 => TcpState::FinWait2,
        7 => TcpState::CloseWait,
        8 => TcpState::Closing,
        9 => TcpState::LastAck,
        10 => TcpState::TimeWait,
        _ => return None,
    })
}

/// A socket the agent holds: lwIP's descriptor and its kind.
#[derive(Clone, Copy)]
struct Held {
    fd: c_int,
    udp: bool,
}

/// lwIP, started on its tap, and the sockets the harness holds.
struct LwipAgent {
    env: AgentEnv,
    sockets: BTreeMap<SocketId, Held>,
    next_accepted: u32,
}

fn errno(r: c_int) -> CallOutcome {
    CallOutcome::errno(-r)
}

fn unsupported(what: impl Into<String>) -> DutError {
    DutError::NotSupported { what: what.into() }
}

fn timeout(ms: u64) -> c_int {
    c_int::try_from(ms).unwrap_or(c_int::MAX)
}

impl LwipAgent {
    fn held(&self, sock: SocketId) -> Result<Held, DutError> {
        self.sockets
            .get(&sock)
            .copied()
            .ok_or(DutError::UnknownSocket(sock))
    }

    /// The TCP socket `sock`, created (unbound) when the harness does not hold it yet.
    fn tcp_or_new(&mut self, sock: SocketId, family: Family) -> Result<c_int, CallOutcome> {
        if let Some(h) = self.sockets.get(&sock) {
            return Ok(h.fd);
        }
        // SAFETY: plain C call, no pointers.
        let fd = unsafe { ncf_socket(family_number(family), 0) };
        if fd < 0 {
            return Err(errno(fd));
        }
        self.sockets.insert(sock, Held { fd, udp: false });
        Ok(fd)
    }

    fn set_option(&mut self, fd: c_int, option: SocketOption) -> Result<CallOutcome, DutError> {
        let (which, value) = match option {
            SocketOption::KeepAlive(on) => (opt::KEEPALIVE, c_int::from(on)),
            SocketOption::KeepIdle(s) => (opt::KEEPIDLE, s as c_int),
            SocketOption::KeepInterval(s) => (opt::KEEPINTVL, s as c_int),
            SocketOption::KeepCount(n) => (opt::KEEPCNT, n as c_int),
            SocketOption::NoDelay(on) => (opt::NODELAY, c_int::from(on)),
            SocketOption::Linger(l) => (opt::LINGER, l.map_or(-1, |s| s as c_int)),
            SocketOption::RecvBuffer(b) => (opt::RCVBUF, b as c_int),
            other => {
                return Err(unsupported(format!(
                    "setsockopt {other:?}: lwIP 2.1 has no such option (it has SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, TCP_NODELAY, SO_LINGER, SO_RCVBUF)"
                )));
            }
        };
        let mut out: c_int = 0;
        // SAFETY: `out` outlives the call.
        let r = unsafe { ncf_setopt(fd, which, value, &mut out) };
        if r < 0 {
            return Ok(errno(r));
        }
        let u = |v: c_int| u32::try_from(v).unwrap_or(0);
        Ok(CallOutcome::OptionValue(match option {
            SocketOption::KeepAlive(_) => SocketOption::KeepAlive(out != 0),
            SocketOption::KeepIdle(_) => SocketOption::KeepIdle(u(out)),
            SocketOption::KeepInterval(_) => SocketOption::KeepInterval(u(out)),
            SocketOption::KeepCount(_) => SocketOption::KeepCount(u(out)),
            SocketOption::NoDelay(_) => SocketOption::NoDelay(out != 0),
            SocketOption::Linger(_) => SocketOption::Linger((out >= 0).then(|| u(out))),
            _ => SocketOption::RecvBuffer(u(out)),
        }))
    }

    fn tcp_sockets(&self) -> Vec<TcpSocketState> {
        let held: Vec<(SocketId, c_int)> = self
            .sockets
            .iter()
            .filter(|(_, h)| !h.udp)
            .map(|(id, h)| (*id, h.fd))
            .collect();
        let fds: Vec<c_int> = held.iter().map(|(_, fd)| *fd).collect();
        let mut pcbs = vec![Pcb::default(); 64];
        loop {
            // SAFETY: both buffers outlive the call and their lengths are passed.
            let n = unsafe {
                ncf_tcp_pcbs(
                    pcbs.as_mut_ptr(),
                    pcbs.len() as c_int,
                    fds.as_ptr(),
                    fds.len() as c_int,
                )
            } as usize;
            if n <= pcbs.len() {
                pcbs.truncate(n);
                break;
            }
            pcbs = vec![Pcb::default(); n + 16];
        }
        pcbs.iter()
            .filter_map(|p| {
                let state = tcp_state(p.state)?;
                let unspecified = |family| match family {
                    6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                };
                let remote = if p.remote.family == 0 {
                    unspecified(p.local.family)
                } else {
                    p.remote.ip()
                };
                Some(TcpSocketState {
                    state,
                    local: SocketAddr::new(p.local.ip(), p.local_port),
                    remote: SocketAddr::new(remote, p.remote_port),
                    sock: usize::try_from(p.held).ok().map(|i| held[i].0),
                    recv_queue: p.recv_queue,
                    send_queue: p.send_queue,
                })
            })
            .collect()
    }

    fn route_get(&self, dst: IpAddr) -> StateAnswer {
        let (mut ifindex, mut has_gw, mut kind) = (0, 0, 0);
        let (mut gw, mut src) = (Addr::none(), Addr::none());
        let d = Addr::of(dst);
        // SAFETY: every pointer is to a local that outlives the call.
        let r = unsafe { ncf_route(&d, &mut ifindex, &mut gw, &mut has_gw, &mut src, &mut kind) };
        if r < 0 {
            return StateAnswer::NoRoute {
                dst,
                failure: netconform::sandbox::RouteFailure::NetUnreachable,
            };
        }
        StateAnswer::Route {
            lookup: RouteLookup {
                dst,
                oif: u32::try_from(ifindex).ok(),
                gateway: (has_gw != 0).then(|| gw.ip()),
                src: (src.family != 0).then(|| src.ip()),
                kind: if kind == 1 { "Local" } else { "Unicast" }.into(),
            },
            dev: Some(self.env.interface.clone()),
        }
    }

    fn routes(&self) -> Vec<RouteEntry> {
        let (mut a, mut m, mut g) = ([0u8; 4], [0u8; 4], [0u8; 4]);
        // SAFETY: three 4-byte buffers, as the C side writes.
        unsafe { ncf_ipv4(a.as_mut_ptr(), m.as_mut_ptr(), g.as_mut_ptr()) };
        // SAFETY: plain C call.
        let oif = u32::try_from(unsafe { ncf_netif_index() }).ok();
        let (addr, mask, gw) = (Ipv4Addr::from(a), Ipv4Addr::from(m), Ipv4Addr::from(g));
        let mut out = Vec::new();
        if !addr.is_unspecified() {
            let len = u32::from(mask).count_ones() as u8;
            out.push(RouteEntry {
                dst: Some(IpAddr::V4(Ipv4Addr::from(
                    u32::from(addr) & u32::from(mask),
                ))),
                dst_len: len,
                gateway: None,
                oif,
                prefsrc: Some(IpAddr::V4(addr)),
                table: 254,
                kind: "Unicast".into(),
                scope: "Link".into(),
                metric: None,
            });
        }
        if !gw.is_unspecified() {
            out.push(RouteEntry {
                dst: None,
                dst_len: 0,
                gateway: Some(IpAddr::V4(gw)),
                oif,
                prefsrc: None,
                table: 254,
                kind: "Unicast".into(),
                scope: "Universe".into(),
                metric: None,
            });
        }
        if let Some((v6, len)) = self.env.ipv6 {
            let bits = u128::from(v6) & (u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0));
            out.push(RouteEntry {
                dst: Some(IpAddr::V6(Ipv6Addr::from(bits))),
                dst_len: len,
                gateway: None,
                oif,
                prefsrc: None,
                table: 254,
                kind: "Unicast".into(),
                scope: "Universe".into(),
                metric: None,
            });
        }
        out
    }
}

fn family_number(f: Family) -> c_int {
    match f {
        Family::Ipv4 => 4,
        Family::Ipv6 => 6,
    }
}

fn family_of(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    }
}

impl AgentStack for LwipAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            stack: "lwip".into(),
            version: "2.1.3 (Debian liblwip0)".into(),
            environment: vec![
                format!("tap = {}", self.env.interface),
                "lwipopts = Debian's (NO_SYS 0, core locking, IP_FORWARD 1, LWIP_WND_SCALE 1 rcv scale 1, TCP_WND 65535, TCP_MSS 1460, no timestamps, no SACK)".into(),
                "start-up = no DAD, no router solicitation (as the Linux labs)".into(),
            ],
        }
    }

    fn tcp_config(&self) -> Option<TcpStackConfig> {
        // Debian's lwipopts.h: LWIP_WND_SCALE 1; LWIP_TCP_SACK_OUT and LWIP_TCP_TIMESTAMPS
        // are left at lwIP's default, 0; TCP_TTL is IP_DEFAULT_TTL, 255.
        Some(TcpStackConfig {
            sack: false,
            timestamps: false,
            window_scaling: true,
            ttl: 255,
        })
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        // SAFETY (every unsafe block below): plain C calls; every pointer passed is to a
        // local or a buffer that outlives the call, with its length.
        match call {
            SocketCall::Socket { sock, family } => {
                if self.sockets.contains_key(sock) {
                    return Err(DutError::SocketExists(*sock));
                }
                Ok(match self.tcp_or_new(*sock, *family) {
                    Ok(_) => CallOutcome::Ok,
                    Err(e) => e,
                })
            }
            SocketCall::Bind { sock, addr, port } => {
                let fd = match self.tcp_or_new(*sock, family_of(*addr)) {
                    Ok(fd) => fd,
                    Err(e) => return Ok(e),
                };
                let a = Addr::of(*addr);
                let r = unsafe { ncf_bind(fd, &a, *port) };
                Ok(if r < 0 { errno(r) } else { CallOutcome::Ok })
            }
            SocketCall::Listen {
                sock,
                family,
                addr,
                port,
                backlog,
            } => {
                let existed = self.sockets.contains_key(sock);
                let fd = match self.tcp_or_new(*sock, *family) {
                    Ok(fd) => fd,
                    Err(e) => return Ok(e),
                };
                if !existed {
                    let any = match family {
                        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    };
                    let a = Addr::of(addr.unwrap_or(any));
                    let r = unsafe { ncf_reuseaddr(fd) };
                    if r < 0 {
                        return Ok(errno(r));
                    }
                    let r = unsafe { ncf_bind(fd, &a, *port) };
                    if r < 0 {
                        return Ok(errno(r));
                    }
                }
                let r = unsafe { ncf_listen(fd, c_int::try_from(*backlog).unwrap_or(255)) };
                Ok(if r < 0 { errno(r) } else { CallOutcome::Ok })
            }
            SocketCall::Accept {
                listener,
                timeout_ms,
            } => {
                let h = self.held(*listener)?;
                let r = unsafe { ncf_accept(h.fd, timeout(*timeout_ms)) };
                if r == TIMEDOUT {
                    return Ok(CallOutcome::TimedOut);
                }
                if r < 0 {
                    return Ok(errno(r));
                }
                let id = SocketId(SocketId::ACCEPTED_BASE + self.next_accepted);
                self.next_accepted += 1;
                self.sockets.insert(id, Held { fd: r, udp: false });
                Ok(CallOutcome::NewSocket(id))
            }
            SocketCall::Connect {
                sock,
                family,
                addr,
                port,
            } => {
                let fd = match self.tcp_or_new(*sock, *family) {
                    Ok(fd) => fd,
                    Err(e) => return Ok(e),
                };
                let a = Addr::of(*addr);
                let r = unsafe { ncf_connect(fd, &a, *port) };
                Ok(if r < 0 { errno(r) } else { CallOutcome::Ok })
            }
            SocketCall::WaitConnected { sock, timeout_ms } => {
                let h = self.held(*sock)?;
                let r = unsafe { ncf_wait_connected(h.fd, timeout(*timeout_ms)) };
                Ok(match r {
                    TIMEDOUT => CallOutcome::TimedOut,
                    r if r < 0 => errno(r),
                    _ => CallOutcome::Ok,
                })
            }
            SocketCall::Send { sock, data } => {
                let h = self.held(*sock)?;
                let r = unsafe { ncf_send(h.fd, data.as_ptr(), data.len()) };
                Ok(if r < 0 {
                    errno(r)
                } else {
                    CallOutcome::Sent(r as usize)
                })
            }
            SocketCall::Recv {
                sock,
                max,
                timeout_ms,
            } => {
                let h = self.held(*sock)?;
                let mut buf = vec![0u8; (*max).max(1)];
                let r = unsafe { ncf_recv(h.fd, buf.as_mut_ptr(), *max, timeout(*timeout_ms)) };
                Ok(match r {
                    TIMEDOUT => CallOutcome::TimedOut,
                    r if r < 0 => errno(r),
                    0 if *max > 0 => CallOutcome::Eof,
                    n => {
                        buf.truncate(n as usize);
                        CallOutcome::Data(buf)
                    }
                })
            }
            SocketCall::Shutdown { sock, how } => {
                let h = self.held(*sock)?;
                let how = match how {
                    ShutdownHow::Read => 0,
                    ShutdownHow::Write => 1,
                    ShutdownHow::Both => 2,
                };
                let r = unsafe { ncf_shutdown(h.fd, how) };
                Ok(if r < 0 { errno(r) } else { CallOutcome::Ok })
            }
            SocketCall::Close { sock } => {
                let h = self.held(*sock)?;
                self.sockets.remove(sock);
                let r = unsafe { ncf_close(h.fd) };
                Ok(if r < 0 { errno(r) } else { CallOutcome::Ok })
            }
            SocketCall::SetOption { sock, option } => {
                let h = self.held(*sock)?;
                self.set_option(h.fd, *option)
            }
            SocketCall::UdpBind { sock, addr, port } => {
                if self.sockets.contains_key(sock) {
                    return Err(DutError::SocketExists(*sock));
                }
                let fd = unsafe { ncf_socket(family_number(family_of(*addr)), 1) };
                if fd < 0 {
                    return Ok(errno(fd));
                }
                let a = Addr::of(*addr);
                let r = unsafe { ncf_bind(fd, &a, *port) };
                if r < 0 {
                    unsafe { ncf_close(fd) };
                    return Ok(errno(r));
                }
                self.sockets.insert(*sock, Held { fd, udp: true });
                Ok(CallOutcome::Ok)
            }
            SocketCall::SendTo {
                sock,
                addr,
                port,
                data,
            } => {
                let h = self.held(*sock)?;
                let a = Addr::of(*addr);
                let r = unsafe { ncf_sendto(h.fd, &a, *port, data.as_ptr(), data.len()) };
                Ok(if r < 0 {
                    errno(r)
                } else {
                    CallOutcome::Sent(r as usize)
                })
            }
            SocketCall::RecvFrom {
                sock,
                max,
                timeout_ms,
            } => {
                let h = self.held(*sock)?;
                let mut buf = vec![0u8; (*max).max(1)];
                let (mut from, mut port) = (Addr::none(), 0u16);
                let r = unsafe {
                    ncf_recvfrom(
                        h.fd,
                        buf.as_mut_ptr(),
                        *max,
                        timeout(*timeout_ms),
                        &mut from,
                        &mut port,
                    )
                };
                Ok(match r {
                    TIMEDOUT => CallOutcome::TimedOut,
                    r if r < 0 => errno(r),
                    n => {
                        buf.truncate(n as usize);
                        CallOutcome::Datagram {
                            from: SocketAddr::new(from.ip(), port),
                            data: buf,
                        }
                    }
                })
            }
        }
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::TcpSockets => Ok(StateAnswer::TcpSockets(self.tcp_sockets())),
            StateQuery::TcpInfo(sock) => {
                let h = self.held(*sock)?;
                let mut raw = RawTcpInfo::default();
                // SAFETY: `raw` outlives the call.
                let r = unsafe { ncf_tcp_info(h.fd, &mut raw) };
                if r < 0 {
                    return Err(DutError::Io {
                        op: format!("TCP_INFO of {sock}"),
                        source: std::io::Error::from_raw_os_error(-r),
                    });
                }
                // lwIP keeps no timestamps, SACK or ECN (Debian's build), no delayed-ACK
                // timeout, receive MSS estimate, loss or retransmission counters: those
                // fields are 0.
                Ok(StateAnswer::TcpInfo(TcpInfo {
                    state: tcp_state(raw.state),
                    timestamps: false,
                    sack: false,
                    window_scaling: raw.window_scaling != 0,
                    ecn: false,
                    snd_wscale: raw.snd_wscale,
                    rcv_wscale: raw.rcv_wscale,
                    retransmits: raw.retransmits,
                    probes: raw.probes,
                    backoff: raw.backoff,
                    rto_us: raw.rto_us,
                    ato_us: 0,
                    snd_mss: raw.snd_mss,
                    rcv_mss: 0,
                    unacked: raw.unacked,
                    lost: 0,
                    retrans: 0,
                    rtt_us: raw.rtt_us,
                    rttvar_us: raw.rttvar_us,
                    snd_ssthresh: raw.snd_ssthresh,
                    snd_cwnd: raw.snd_cwnd,
                    advmss: raw.snd_mss,
                    total_retrans: 0,
                }))
            }
            StateQuery::Neighbours => {
                let mut entries = [ArpEntry::default(); 64];
                // SAFETY: the buffer and its length.
                let n = unsafe { ncf_arp_entries(entries.as_mut_ptr(), entries.len() as c_int) };
                Ok(StateAnswer::Neighbours(
                    entries[..n.max(0) as usize]
                        .iter()
                        .map(|e| NeighbourEntry {
                            ifindex: u32::try_from(e.ifindex).unwrap_or(0),
                            dst: IpAddr::V4(Ipv4Addr::from(e.ip)),
                            lladdr: Some(MacAddr(e.mac)),
                            // lwIP's API shows only stable entries: it keeps no
                            // reachability state beyond "resolved" (ETHARP_STATE_STABLE
                            // and its re-requesting variants).
                            state: NudState::Reachable,
                            probes: None,
                            cacheinfo: None,
                        })
                        .collect(),
                ))
            }
            StateQuery::Routes => Ok(StateAnswer::Routes(self.routes())),
            StateQuery::RouteGet(dst) => Ok(self.route_get(*dst)),
            StateQuery::RouteGetFrom { .. } => Err(unsupported(
                "query RouteGetFrom: lwIP's route lookup takes no source address (ip4_route(dst))",
            )),
            StateQuery::NeighbourParams | StateQuery::NeighbourTableInfo => {
                Err(unsupported(format!(
                    "query {}: lwIP's ARP timers and table are compile-time constants (ARP_MAXAGE, ARP_TABLE_SIZE), not readable parameters",
                    netconform::dut::agent::query_name(query)
                )))
            }
            other => Err(unsupported(format!(
                "query {}: a host stack has none",
                netconform::dut::agent::query_name(other)
            ))),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::FlushNeighbours => {
                // SAFETY: plain C call.
                unsafe { ncf_arp_flush() };
                Ok(())
            }
            Control::Route {
                dst,
                prefix_len: 0,
                via,
            } if dst.is_unspecified() => {
                // SAFETY: a 4-byte buffer.
                unsafe { ncf_set_gateway(via.octets().as_ptr()) };
                Ok(())
            }
            Control::Forwarding(_) => Err(unsupported(
                "set IPv4 forwarding: lwIP is built with IP_FORWARD 1 (always on, not a run-time setting) and never forwards back out of the interface a packet came in on; with one interface it forwards nothing",
            )),
            Control::Route { .. } | Control::AddRoute(_) => Err(unsupported(format!(
                "{control}: lwIP has no route table (a subnet and one default gateway per interface)"
            ))),
            Control::NeighbourParams(_) | Control::ArpPolicy(_) => Err(unsupported(format!(
                "{control}: lwIP's ARP timers and policy are compile-time constants (docs/findings-lwip.md)"
            ))),
            other => Err(unsupported(format!("{other}: a host stack has none"))),
        }
    }
}

/// Runs the agent; the process's exit status.
pub fn main() -> i32 {
    let env = match AgentEnv::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!(
                "netconform-agent-lwip: {e} (the harness sets it; see docs/agent-protocol.md)"
            );
            return 2;
        }
    };
    if env.interface_kind != "tap" {
        eprintln!(
            "netconform-agent-lwip: lwIP's unix port drives a tap; run it with `kind = \"tap\"` (NETCONFORM_INTERFACE_KIND is {})",
            env.interface_kind
        );
        return 2;
    }
    // The protocol keeps a private copy of stdout; descriptor 1 becomes stderr, where
    // lwIP's own printf (its assertion messages) lands.
    // SAFETY: dup and dup2 on the process's own standard descriptors.
    let protocol = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            eprintln!(
                "netconform-agent-lwip: cannot move stdout aside: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        File::from_raw_fd(fd)
    };
    let v4 = env
        .ipv4
        .map_or(Addr::none(), |(a, _)| Addr::of(IpAddr::V4(a)));
    let v6 = env
        .ipv6
        .map_or(Addr::none(), |(a, _)| Addr::of(IpAddr::V6(a)));
    let peer_v4 = env
        .peer_ipv4
        .map_or(Addr::none(), |a| Addr::of(IpAddr::V4(a)));
    let peer_v6 = env
        .peer_ipv6
        .map_or(Addr::none(), |a| Addr::of(IpAddr::V6(a)));
    let Ok(tap) = std::ffi::CString::new(env.interface.clone()) else {
        eprintln!("netconform-agent-lwip: the interface name has a NUL byte");
        return 2;
    };
    let mut err = [0 as c_char; 256];
    // SAFETY: every pointer is to a local that outlives the call; `err` with its length.
    let r = unsafe {
        ncf_start(
            tap.as_ptr(),
            env.mac.0.as_ptr(),
            &v4,
            env.ipv4.map_or(0, |(_, p)| p),
            &v6,
            env.ipv6.map_or(0, |(_, p)| p),
            env.peer_mac.0.as_ptr(),
            &peer_v4,
            &peer_v6,
            c_int::from(env.peer_preresolved),
            c_int::try_from(env.mtu).unwrap_or(1500),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if r < 0 {
        // SAFETY: the C side wrote a NUL-terminated message into `err`.
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        eprintln!(
            "netconform-agent-lwip: starting lwIP on {}: {}",
            env.interface,
            msg.to_string_lossy()
        );
        return 1;
    }
    eprintln!(
        "netconform-agent-lwip: lwIP up on {} as {}",
        env.interface, env.mac
    );
    let mut agent = LwipAgent {
        env,
        sockets: BTreeMap::new(),
        next_accepted: 0,
    };
    match serve(&mut agent, BufReader::new(std::io::stdin()), protocol) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("netconform-agent-lwip: {e}");
            1
        }
    }
}
