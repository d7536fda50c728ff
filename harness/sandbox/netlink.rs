//! A synchronous rtnetlink client for one namespace: a `netlink-sys` socket opened inside the
//! namespace plus `netlink-packet-route` messages.
//!
//! Open it with `ns.run(|| Rtnl::open(name))`; afterwards it may be used from any thread and
//! still talks to the namespace it was opened in. Every request carries `NLM_F_ACK` (or
//! `NLM_F_DUMP`), and an error answer becomes [`SandboxError::Netlink`] with the errno.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    BridgePortState, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo as NlLinkInfo, LinkMessage, State,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use serde::{Deserialize, Serialize};

use super::SandboxError;

pub use crate::wire::MacAddr;

/// A MAC address from a netlink attribute (None unless it is 6 bytes long).
pub(super) fn mac_from_slice(b: &[u8]) -> Option<MacAddr> {
    b.try_into().ok().map(MacAddr)
}

/// One interface, as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MAC address (absent for interfaces without one).
    pub mac: Option<MacAddr>,
    /// MTU in bytes.
    pub mtu: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The device's queue is active (`IFLA_QDISC` is no longer `noop`): until the kernel
    /// activates it (on carrier), every frame sent through the device is dropped.
    pub queue_active: bool,
}

impl LinkInfo {
    /// True when `IFF_UP` is set.
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// What "ready to carry frames" means for a device (see [`Rtnl::wait_ready`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Carrier on, operational state up, an active queue.
    Link,
    /// [`Readiness::Link`], and forwarding as a bridge port.
    BridgePort,
}

impl Readiness {
    /// What `l` still lacks to be ready, or `None`.
    pub fn missing(self, l: &LinkMessage) -> Option<&'static str> {
        if !l.header.flags.contains(LinkFlags::LowerUp) {
            return Some("carrier");
        }
        if !l
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
        {
            return Some("operational state up");
        }
        if !l
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Qdisc(q) if q != "noop"))
        {
            return Some("active queue");
        }
        if self == Readiness::BridgePort
            && !l.attributes.iter().any(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| {
                    matches!(i, NlLinkInfo::PortData(InfoPortData::BridgePort(opts))
                        if opts.contains(&InfoBridgePort::State(BridgePortState::Forwarding)))
                }),
                _ => false,
            })
        {
            return Some("forwarding bridge port");
        }
        None
    }
}

/// One address, as `RTM_GETADDR` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_F_*` flags (`IFA_FLAGS` when present, else the header flags).
    pub flags: u32,
}

/// Neighbour entry state (NUD), as `include/uapi/linux/neighbour.h` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NudState {
    /// Resolution in progress.
    Incomplete,
    /// Confirmed reachable.
    Reachable,
    /// Valid but unconfirmed.
    Stale,
    /// Waiting before probing.
    Delay,
    /// Probing.
    Probe,
    /// Resolution failed.
    Failed,
    /// No ARP needed.
    Noarp,
    /// Static entry.
    Permanent,
    /// No state.
    None,
    /// A state value this crate does not know.
    Other(u16),
}

impl From<NeighbourState> for NudState {
    fn from(s: NeighbourState) -> Self {
        match s {
            NeighbourState::Incomplete => NudState::Incomplete,
            NeighbourState::Reachable => NudState::Reachable,
            NeighbourState::Stale => NudState::Stale,
            NeighbourState::Delay => NudState::Delay,
            NeighbourState::Probe => NudState::Probe,
            NeighbourState::Failed => NudState::Failed,
            NeighbourState::Noarp => NudState::Noarp,
            NeighbourState::Permanent => NudState::Permanent,
            NeighbourState::None => NudState::None,
            other => NudState::Other(u16::from(other)),
        }
    }
}

/// `NDA_CACHEINFO`: ages in USER_HZ ticks (1/100 s) and the reference count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourCacheInfo {
    /// Ticks since the entry was last confirmed.
    pub confirmed: u32,
    /// Ticks since the entry was last used.
    pub used: u32,
    /// Ticks since the entry was last updated.
    pub updated: u32,
    /// Reference count.
    pub refcnt: u32,
}

/// One neighbour (ARP or ND) entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourEntry {
    /// Interface index.
    pub ifindex: u32,
    /// The neighbour's IP address.
    pub dst: IpAddr,
    /// Its link-layer address (absent when not NUD_VALID, e.g. FAILED).
    pub lladdr: Option<MacAddr>,
    /// NUD state.
    pub state: NudState,
    /// Probes sent (`NDA_PROBES`).
    pub probes: Option<u32>,
    /// Cache info (`NDA_CACHEINFO`).
    pub cacheinfo: Option<NeighbourCacheInfo>,
}

/// One route, as a `RTM_GETROUTE` dump reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// Destination prefix (`None` = default route).
    pub dst: Option<IpAddr>,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// Routing table.
    pub table: u32,
    /// Route type (`Unicast`, `Local`, `Unreachable`...).
    pub kind: String,
    /// Scope (`Universe`, `Link`, `Host`...).
    pub scope: String,
    /// Metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
}

/// The answer to one `route get` (`RTM_GETROUTE` lookup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLookup {
    /// The destination looked up.
    pub dst: IpAddr,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Gateway, when the route has one.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would use.
    pub src: Option<IpAddr>,
    /// Route type (`Unicast`, `Local`...).
    pub kind: String,
}

/// Why `route get` found no usable route: the errno, typed in the route model's terms (one
/// type for the sandbox, the targets and the model, so an answer compares directly).
pub type RouteFailure = crate::models::route::RouteError;

fn ip_of_route(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// A synchronous rtnetlink socket bound to one namespace.
pub struct Rtnl {
    namespace: String,
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rtnl")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Rtnl {
    /// Opens a NETLINK_ROUTE socket in the **calling thread's** namespace; `namespace` is
    /// the name used in errors. Call it through [`super::Namespace::run`].
    pub fn open(namespace: &str) -> Result<Rtnl, SandboxError> {
        let io = |op: &str, e: std::io::Error| SandboxError::NetlinkIo {
            namespace: namespace.to_string(),
            op: op.to_string(),
            detail: e.to_string(),
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io("socket", e))?;
        socket.bind_auto().map_err(|e| io("bind", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| io("connect", e))?;
        Ok(Rtnl {
            namespace: namespace.to_string(),
            socket,
            seq: 1,
            buf: vec![0; 1 << 16],
        })
    }

    /// The namespace this socket talks to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(super) fn io_err(&self, op: &str, detail: impl ToString) -> SandboxError {
        SandboxError::NetlinkIo {
            namespace: self.namespace.clone(),
            op: op.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Sends one request and collects the answers: until `NLMSG_DONE` for a dump, the one
    /// answer for a single `RTM_GETROUTE`, until the ACK (or error) otherwise.
    pub(super) fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, SandboxError> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        // A single GET (`route get`) is answered by one message, or an error: no ACK needed,
        // which halves the messages on the hot lookup path.
        let single_get = !dump && matches!(msg, RouteNetlinkMessage::GetRoute(_));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags | if dump || single_get { 0 } else { NLM_F_ACK };
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .map_err(|e| self.io_err(op, format!("send: {e}")))?;
        let mut answers = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0).map_err(|e| {
                SandboxError::NetlinkIo {
                    namespace: self.namespace.clone(),
                    op: op.to_string(),
                    detail: format!("recv: {e}"),
                }
            })?;
            let mut off = 0;
            while off < n.min(self.buf.len()) {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| SandboxError::NetlinkIo {
                        namespace: self.namespace.clone(),
                        op: op.to_string(),
                        detail: format!("decode: {e}"),
                    })?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(answers),
                        Some(code) => {
                            return Err(SandboxError::Netlink {
                                namespace: self.namespace.clone(),
                                op: op.to_string(),
                                errno: nix::errno::Errno::from_raw(-code.get()),
                            });
                        }
                    },
                    NetlinkPayload::InnerMessage(m) => {
                        answers.push(m);
                        if single_get {
                            return Ok(answers);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends requests (with `flags` besides `NLM_F_REQUEST`) that each get exactly one answer
    /// (a change with `NLM_F_ACK`: the ACK or its error; a single `RTM_GETROUTE`: the route
    /// or its error), `window` of them per
    /// `send`, and hands every answer to `on_answer` with the request's position. The kernel
    /// handles the requests of one `send` in order and goes on after an error, so one batch
    /// costs one system call out and one per answer back.
    pub(super) fn pipeline(
        &mut self,
        op: &str,
        msgs: impl IntoIterator<Item = RouteNetlinkMessage>,
        flags: u16,
        window: usize,
        mut on_answer: impl FnMut(usize, Result<Option<RouteNetlinkMessage>, nix::errno::Errno>),
    ) -> Result<(), SandboxError> {
        let window = window.clamp(1, 256);
        let mut msgs = msgs.into_iter();
        let mut out = Vec::with_capacity(window * 128);
        let mut first = 0usize;
        loop {
            out.clear();
            let base = self.seq.wrapping_add(1);
            let mut n = 0usize;
            for msg in msgs.by_ref().take(window) {
                let get = matches!(msg, RouteNetlinkMessage::GetRoute(_));
                self.seq = self.seq.wrapping_add(1);
                let flags = NLM_F_REQUEST | flags | if get { 0 } else { NLM_F_ACK };
                append_message(&mut out, self.seq, flags, msg);
                n += 1;
            }
            if n == 0 {
                return Ok(());
            }
            self.socket
                .send(&out, 0)
                .map_err(|e| self.io_err(op, format!("send: {e}")))?;
            let mut answered = vec![false; n];
            let mut got = 0;
            while got < n {
                let len = self
                    .socket
                    .recv(&mut &mut self.buf[..], 0)
                    .map_err(|e| self.io_err(op, format!("recv: {e}")))?;
                let len = len.min(self.buf.len());
                let mut off = 0;
                while off < len {
                    let msg =
                        NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..len])
                            .map_err(|e| SandboxError::NetlinkIo {
                                namespace: self.namespace.clone(),
                                op: op.to_string(),
                                detail: format!("decode: {e}"),
                            })?;
                    let mlen = msg.header.length as usize;
                    if mlen == 0 {
                        break;
                    }
                    off += (mlen + 3) & !3;
                    let i = msg.header.sequence_number.wrapping_sub(base) as usize;
                    if i >= n || answered[i] {
                        continue;
                    }
                    let answer = match msg.payload {
                        NetlinkPayload::Error(e) => match e.code {
                            None => Ok(None),
                            Some(code) => Err(nix::errno::Errno::from_raw(-code.get())),
                        },
                        NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
                        _ => continue,
                    };
                    answered[i] = true;
                    got += 1;
                    on_answer(first + i, answer);
                }
            }
            first += n;
        }
    }

    /// Creates a veth pair: `name` in this namespace, `peer_name` in the namespace whose fd
    /// is `peer_netns_fd` (`IFLA_NET_NS_FD` on the peer), both with MTU `mtu`. The host
    /// namespace is never involved.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer_name: &str,
        peer_netns_fd: std::os::fd::RawFd,
        mtu: u32,
    ) -> Result<(), SandboxError> {
        for n in [name, peer_name] {
            if n.len() > 15 {
                return Err(SandboxError::InvalidName {
                    name: n.to_string(),
                    reason: "interface names are at most 15 bytes",
                });
            }
        }
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_string()));
        peer.attributes.push(LinkAttribute::Mtu(mtu));
        peer.attributes.push(LinkAttribute::NetNsFd(peer_netns_fd));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::Veth),
            NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            &format!("create veth {name} <-> {peer_name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Lists the interfaces.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, SandboxError> {
        let answers = self.request(
            "dump links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_info(&l)),
                _ => None,
            })
            .collect())
    }

    /// The interface called `name`.
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkInfo, SandboxError> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| SandboxError::NoSuchInterface {
                namespace: self.namespace.clone(),
                interface: name.to_string(),
            })
    }

    fn set_link(
        &mut self,
        op: &str,
        index: u32,
        f: impl FnOnce(&mut LinkMessage),
    ) -> Result<(), SandboxError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        f(&mut msg);
        self.request(op, RouteNetlinkMessage::SetLink(msg), 0)?;
        Ok(())
    }

    /// Waits (up to 5 s) until interface `name` is ready to carry frames, and returns it as
    /// read then (see [`Rtnl::wait_ready`]).
    pub fn wait_queue_active(&mut self, name: &str) -> Result<LinkInfo, SandboxError> {
        let index = self.link_by_name(name)?.index;
        self.wait_ready(index, Readiness::Link, std::time::Duration::from_secs(5))?;
        self.link_by_name(name)
    }

    /// Interface `index` as the kernel reports it to a single `RTM_GETLINK` (not a dump):
    /// before answering one, the kernel runs the device's pending link watch work
    /// (`linkwatch_sync_dev`), so what it reports is what it will honour. A dump does not,
    /// and may report a device whose carrier came on before its queue is activated.
    pub fn synced_link(&mut self, index: u32) -> Result<Option<LinkMessage>, SandboxError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let answers = self.request(
            &format!("read link {index}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        )?;
        Ok(answers.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if l.header.index == index => Some(l),
            _ => None,
        }))
    }

    /// How many frames interface `index` has received (`rx_packets` of its 64-bit counters,
    /// read through [`Rtnl::synced_link`]). On a veth end it counts the frames its peer
    /// handed it: a frame the harness sent that never got there leaves it unchanged.
    pub fn rx_packets(&mut self, index: u32) -> Result<Option<u64>, SandboxError> {
        Ok(self.synced_link(index)?.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Stats64(s) => Some(s.rx_packets),
                _ => None,
            })
        }))
    }

    /// Waits up to `within` until interface `index` is `ready`; an error names the device
    /// and what it still lacked.
    ///
    /// Setting a device up turns its carrier on at once, but its queue is activated and its
    /// operational state set only when the kernel's link watch handles the event (at once
    /// for an urgent event, otherwise up to a second later, and later still on a loaded
    /// machine); until then every frame sent through it is silently dropped. A bridge port
    /// forwards only after that (STP off). So this waits, through [`Rtnl::synced_link`], for
    /// the carrier, the operational state `up` (set in the same step as the queue is
    /// activated), a queue that is not `noop`, and for a bridge port, the forwarding state.
    /// A dump-based wait lost the first frame of about one lab in forty.
    pub fn wait_ready(
        &mut self,
        index: u32,
        ready: Readiness,
        within: std::time::Duration,
    ) -> Result<(), SandboxError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let missing = match self.synced_link(index)? {
                Some(l) => ready.missing(&l),
                None => Some("the device"),
            };
            let Some(missing) = missing else {
                return Ok(());
            };
            if std::time::Instant::now() > deadline {
                return Err(SandboxError::NotReady {
                    what: format!(
                        "interface {index} in {} is not ready after {within:?}: no {missing}",
                        self.namespace
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Waits up to `within` until `addr` is a local address of the namespace: `route get`
    /// answers a `local` route, so a packet to it is delivered; an error names the address
    /// and what the lookup answered last.
    ///
    /// An IPv4 address is local as soon as it is added. An IPv6 address, even with
    /// `IFA_F_NODAD`, gets its local route only when the kernel's addrconf work, which
    /// adding it queues (`addrconf_dad_start`), runs and completes its (skipped) duplicate
    /// address detection (`addrconf_dad_completed`, which inserts the route): until then
    /// a packet to it is not delivered, and on a loaded machine that work ran up to 22 ms
    /// after the lab's links were ready. A soak under load lost a fresh lab's first
    /// barrier probe that way about once in two hundred IPv6 labs ("echo reply to the
    /// barrier probe: nothing arrived within 2 s": the interface counted the probe, so no
    /// retry, and the stack's multicast listener reports came only after it).
    pub fn wait_local_address(
        &mut self,
        addr: IpAddr,
        within: std::time::Duration,
    ) -> Result<(), SandboxError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let answer = match self.route_get(addr) {
                Ok(r) if r.kind == "Local" => return Ok(()),
                Ok(r) => format!("a {} route", r.kind.to_lowercase()),
                Err(SandboxError::RouteLookup { failure, .. }) => format!("{failure:?}"),
                Err(e) => return Err(e),
            };
            if std::time::Instant::now() > deadline {
                return Err(SandboxError::NotReady {
                    what: format!(
                        "{addr} in {} is not a local address after {within:?}: route get \
                         answers {answer}",
                        self.namespace
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Sets interface `index` up (or down).
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), SandboxError> {
        self.set_link(&format!("set link {index} up={up}"), index, |m| {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        })
    }

    /// Sets the MTU of interface `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), SandboxError> {
        self.set_link(&format!("set link {index} mtu {mtu}"), index, |m| {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        })
    }

    /// Adds `addr/prefix_len` to interface `index`; IPv6 addresses get `IFA_F_NODAD`, so
    /// they are usable at once and the kernel sends no DAD probe.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<(), SandboxError> {
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(addr);
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        if addr.is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.request(
            &format!("add address {addr}/{prefix_len} on {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Lists the addresses of all interfaces.
    pub fn addresses(&mut self) -> Result<Vec<AddressInfo>, SandboxError> {
        let answers = self.request(
            "dump addresses",
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in answers {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            let mut addr = None;
            let mut flags = u32::from(a.header.flags.bits());
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Address(ip) => addr = Some(*ip),
                    AddressAttribute::Local(ip) if addr.is_none() => addr = Some(*ip),
                    AddressAttribute::Flags(f) => flags = f.bits(),
                    _ => {}
                }
            }
            if let Some(addr) = addr {
                out.push(AddressInfo {
                    index: a.header.index,
                    addr,
                    prefix_len: a.header.prefix_len,
                    flags,
                });
            }
        }
        Ok(out)
    }

    /// Adds a route in the main table: `dst/dst_len` via `gateway` (or directly on `oif`);
    /// `EEXIST` when the table already has a route to `dst/dst_len`.
    pub fn add_route(
        &mut self,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), SandboxError> {
        self.change_route(dst, dst_len, gateway, oif, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Sets the route to `dst/dst_len` in the main table: adds it, or replaces the one there
    /// (so a scenario that sets up twice in one namespace gets the same table).
    pub fn set_route(
        &mut self,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), SandboxError> {
        self.change_route(dst, dst_len, gateway, oif, NLM_F_CREATE | NLM_F_REPLACE)
    }

    fn change_route(
        &mut self,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
        flags: u16,
    ) -> Result<(), SandboxError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(dst);
        msg.header.destination_prefix_length = dst_len;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        msg.header.kind = RouteType::Unicast;
        if dst_len > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(route_addr(dst)));
        }
        if let Some(gw) = gateway {
            msg.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
        }
        if let Some(oif) = oif {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        self.request(
            &format!(
                "{} route {dst}/{dst_len} via {gateway:?} oif {oif:?}",
                if flags & NLM_F_REPLACE != 0 {
                    "set"
                } else {
                    "add"
                }
            ),
            RouteNetlinkMessage::NewRoute(msg),
            flags,
        )?;
        Ok(())
    }

    /// Dumps the routes of one family (all tables).
    pub fn routes(&mut self, ipv6: bool) -> Result<Vec<RouteEntry>, SandboxError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let answers = self.request(
            "dump routes",
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in answers {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let mut e = RouteEntry {
                dst: None,
                dst_len: r.header.destination_prefix_length,
                gateway: None,
                oif: None,
                prefsrc: None,
                table: u32::from(r.header.table),
                kind: format!("{:?}", r.header.kind),
                scope: format!("{:?}", r.header.scope),
                metric: None,
            };
            for attr in &r.attributes {
                match attr {
                    RouteAttribute::Destination(a) => e.dst = ip_of_route(a),
                    RouteAttribute::Gateway(a) => e.gateway = ip_of_route(a),
                    RouteAttribute::PrefSource(a) => e.prefsrc = ip_of_route(a),
                    RouteAttribute::Oif(i) => e.oif = Some(*i),
                    RouteAttribute::Table(t) => e.table = *t,
                    RouteAttribute::Priority(p) => e.metric = Some(*p),
                    _ => {}
                }
            }
            out.push(e);
        }
        Ok(out)
    }

    /// `ip route get dst`: one FIB lookup. No usable route becomes
    /// [`SandboxError::RouteLookup`] with the errno typed as a [`RouteFailure`].
    pub fn route_get(&mut self, dst: IpAddr) -> Result<RouteLookup, SandboxError> {
        self.route_get_from(dst, None)
    }

    /// `ip route get dst [from src]`: one FIB lookup, with a source address when one is
    /// given. The answer's source is `RTA_PREFSRC`, else (with a source given) the `RTA_SRC`
    /// the kernel echoes: IPv4 omits `RTA_PREFSRC` when it equals the given source. No usable
    /// route becomes [`SandboxError::RouteLookup`] with the errno typed as a [`RouteFailure`].
    pub fn route_get_from(
        &mut self,
        dst: IpAddr,
        src: Option<IpAddr>,
    ) -> Result<RouteLookup, SandboxError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(dst);
        msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(dst)));
        if let Some(s) = src {
            msg.header.source_prefix_length = if s.is_ipv4() { 32 } else { 128 };
            msg.attributes.push(RouteAttribute::Source(route_addr(s)));
        }
        let op = match src {
            Some(s) => format!("route get {dst} from {s}"),
            None => format!("route get {dst}"),
        };
        let answers = match self.request(&op, RouteNetlinkMessage::GetRoute(msg), 0) {
            Ok(a) => a,
            Err(SandboxError::Netlink {
                namespace, errno, ..
            }) => {
                return Err(SandboxError::RouteLookup {
                    namespace,
                    destination: dst,
                    failure: super::routes::route_error(errno),
                });
            }
            Err(e) => return Err(e),
        };
        let r = answers
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .ok_or_else(|| self.io_err(&op, "no RTM_NEWROUTE in the answer"))?;
        let mut out = RouteLookup {
            dst,
            oif: None,
            gateway: None,
            src: None,
            kind: format!("{:?}", r.header.kind),
        };
        let mut echoed = None;
        for attr in &r.attributes {
            match attr {
                RouteAttribute::Oif(i) => out.oif = Some(*i),
                RouteAttribute::Gateway(a) => out.gateway = ip_of_route(a),
                RouteAttribute::PrefSource(a) => out.src = ip_of_route(a),
                RouteAttribute::Source(a) if src.is_some() => echoed = ip_of_route(a),
                _ => {}
            }
        }
        out.src = out.src.or(echoed);
        Ok(out)
    }

    /// Dumps the neighbour table of one family (ARP for IPv4, ND for IPv6).
    pub fn neighbours(&mut self, ipv6: bool) -> Result<Vec<NeighbourEntry>, SandboxError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let answers = self.request(
            "dump neighbours",
            RouteNetlinkMessage::GetNeighbour(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in answers {
            let RouteNetlinkMessage::NewNeighbour(n) = m else {
                continue;
            };
            let mut dst = None;
            let mut e = NeighbourEntry {
                ifindex: n.header.ifindex,
                dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                lladdr: None,
                state: n.header.state.into(),
                probes: None,
                cacheinfo: None,
            };
            for attr in &n.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        dst = Some(IpAddr::V4(*a))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        dst = Some(IpAddr::V6(*a))
                    }
                    NeighbourAttribute::LinkLayerAddress(l) => e.lladdr = mac_from_slice(l),
                    NeighbourAttribute::Probes(p) => e.probes = Some(*p),
                    NeighbourAttribute::CacheInfo(c) => {
                        e.cacheinfo = Some(NeighbourCacheInfo {
                            confirmed: c.confirmed,
                            used: c.used,
                            updated: c.updated,
                            refcnt: c.refcnt,
                        })
                    }
                    _ => {}
                }
            }
            if let Some(dst) = dst {
                e.dst = dst;
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Adds (or replaces) a PERMANENT neighbour entry `dst -> lladdr` on interface `index`.
    pub fn add_neighbour(
        &mut self,
        index: u32,
        dst: IpAddr,
        lladdr: MacAddr,
    ) -> Result<(), SandboxError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family_of(dst);
        msg.header.ifindex = index;
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(match dst {
                IpAddr::V4(a) => NeighbourAddress::Inet(a),
                IpAddr::V6(a) => NeighbourAddress::Inet6(a),
            }));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(lladdr.0.to_vec()));
        self.request(
            &format!("add neighbour {dst} lladdr {lladdr} on {index}"),
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// Deletes the neighbour entry `dst` on interface `index`.
    pub fn delete_neighbour(&mut self, index: u32, dst: IpAddr) -> Result<(), SandboxError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family_of(dst);
        msg.header.ifindex = index;
        msg.attributes
            .push(NeighbourAttribute::Destination(match dst {
                IpAddr::V4(a) => NeighbourAddress::Inet(a),
                IpAddr::V6(a) => NeighbourAddress::Inet6(a),
            }));
        self.request(
            &format!("delete neighbour {dst} on {index}"),
            RouteNetlinkMessage::DelNeighbour(msg),
            0,
        )?;
        Ok(())
    }

    /// `ip neigh flush dev <index>`: deletes every non-permanent, non-NOARP entry on the
    /// interface (both families); returns how many were deleted.
    pub fn flush_neighbours(&mut self, index: u32) -> Result<usize, SandboxError> {
        let mut n = 0;
        for v6 in [false, true] {
            for e in self.neighbours(v6)? {
                if e.ifindex != index || matches!(e.state, NudState::Permanent | NudState::Noarp) {
                    continue;
                }
                match self.delete_neighbour(index, e.dst) {
                    Ok(()) => n += 1,
                    Err(SandboxError::Netlink {
                        errno: nix::errno::Errno::ENOENT,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }
}

/// Appends `msg` to `out` as one netlink message with `flags` and sequence number `seq`, at
/// the next 4-byte boundary: the kernel reads every message of a datagram built this way,
/// in order (a pipeline of requests, an nfnetlink batch).
pub(super) fn append_message<T>(out: &mut Vec<u8>, seq: u32, flags: u16, msg: T)
where
    T: netlink_packet_core::NetlinkSerializable + std::fmt::Debug,
{
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let start = (out.len() + 3) & !3;
    out.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut out[start..]);
}

fn link_info(l: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: l.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        flags: l.header.flags.bits(),
        queue_active: false,
    };
    for attr in &l.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name = n.clone(),
            LinkAttribute::Address(a) => info.mac = mac_from_slice(a),
            LinkAttribute::Mtu(m) => info.mtu = *m,
            LinkAttribute::Qdisc(q) => info.queue_active = q != "noop",
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display() {
        assert_eq!(
            MacAddr([0, 1, 0xab, 3, 4, 0xff]).to_string(),
            "00:01:ab:03:04:ff"
        );
    }

    #[test]
    fn errno_maps_to_route_failure() {
        use nix::errno::Errno;
        assert_eq!(
            super::super::routes::route_error(Errno::ENETUNREACH),
            RouteFailure::NetUnreachable
        );
        assert_eq!(
            super::super::routes::route_error(Errno::EACCES),
            RouteFailure::Prohibited
        );
    }
}
