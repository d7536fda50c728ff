//! Typed routes over rtnetlink, and the router lab the route model is checked against.
//!
//! - [`Rtnl::install_routes`]: many `RTM_NEWROUTE` requests, pipelined (64 per `send`), each
//!   with its own outcome; [`Rtnl::flush_static_routes`] removes them again (a dump of the
//!   main table, then pipelined `RTM_DELROUTE`s of every route with protocol `static`).
//! - [`Rtnl::lookup`], [`Rtnl::lookup_many`]: `ip route get D [from S]` (`RTM_GETROUTE`
//!   without `NLM_F_DUMP`), one at a time or pipelined, answered in the route model's terms
//!   ([`RouteAnswer`] or [`RouteError`]) so the two compare directly.
//! - [`RouterLab`]: a router namespace with N veth links (other ends in a harness namespace
//!   without addresses), link `i` holding `10.200.i.1/24` and `fd00:200:i::1/64`, and the
//!   model's view of its interfaces. No traffic is needed for lookups.
//!
//! ```text
//!  ncf-<pid>-<n>-rh (harness)                 ncf-<pid>-<m>-rr (the router)
//!  [ ncf<k>h0 ] ----------- veth ----------- [ ncf<k>r0 ] 10.200.0.1/24 fd00:200:0::1/64
//!  [ ncf<k>h1 ] ----------- veth ----------- [ ncf<k>r1 ] 10.200.1.1/24 fd00:200:1::1/64
//!  [ ncf<k>h2 ] ----------- veth ----------- [ ncf<k>r2 ] 10.200.2.1/24 fd00:200:2::1/64
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::netns::next_id;
use super::{IFNAME_PREFIX, LinkInfo, Namespace, Rtnl, SandboxError, sysctl};
use crate::models::route::{
    AnswerKind, Interface, Route, RouteAnswer, RouteError, RouteKind, RouteProfile, RouteTable,
};

/// Requests per `send` on the pipelined paths.
pub const PIPELINE_WINDOW: usize = 64;

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

fn family(ipv4: bool) -> AddressFamily {
    if ipv4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// The `RTM_NEWROUTE` message for a route in the main table, protocol `static`.
fn route_message(route: &Route) -> RouteMessage {
    let dst = route.dst.trunc();
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(dst.addr().is_ipv4());
    msg.header.destination_prefix_length = dst.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    let (kind, scope) = match route.kind {
        RouteKind::Unicast {
            gateway: Some(_), ..
        } => (RouteType::Unicast, RouteScope::Universe),
        RouteKind::Unicast { gateway: None, .. } => (RouteType::Unicast, RouteScope::Link),
        RouteKind::Local { .. } => (RouteType::Local, RouteScope::Host),
        RouteKind::Broadcast { .. } => (RouteType::Broadcast, RouteScope::Link),
        RouteKind::Blackhole => (RouteType::BlackHole, RouteScope::Universe),
        RouteKind::Unreachable => (RouteType::Unreachable, RouteScope::Universe),
        RouteKind::Prohibit => (RouteType::Prohibit, RouteScope::Universe),
        RouteKind::Throw => (RouteType::Throw, RouteScope::Universe),
    };
    msg.header.kind = kind;
    msg.header.scope = scope;
    if dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(dst.addr())));
    }
    if let RouteKind::Unicast {
        gateway: Some(gw), ..
    } = route.kind
    {
        msg.attributes.push(RouteAttribute::Gateway(route_addr(gw)));
    }
    if let Some(oif) = route.kind.oif() {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(m) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(m));
    }
    if let Some(src) = route.prefsrc {
        msg.attributes
            .push(RouteAttribute::PrefSource(route_addr(src)));
    }
    msg
}

/// The `RTM_GETROUTE` message for `ip route get dst [from src]`.
fn lookup_message(dst: IpAddr, src: Option<IpAddr>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(dst.is_ipv4());
    msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
    msg.attributes
        .push(RouteAttribute::Destination(route_addr(dst)));
    if let Some(s) = src {
        msg.header.source_prefix_length = if s.is_ipv4() { 32 } else { 128 };
        msg.attributes.push(RouteAttribute::Source(route_addr(s)));
    }
    msg
}

/// Maps a `route get` errno to the model's error.
pub fn route_error(errno: Errno) -> RouteError {
    match errno {
        Errno::ENETUNREACH => RouteError::NetUnreachable,
        Errno::EHOSTUNREACH => RouteError::HostUnreachable,
        Errno::EACCES => RouteError::Prohibited,
        Errno::EINVAL => RouteError::Blackhole,
        other => RouteError::Other(other as i32),
    }
}

/// Reads a `route get` answer in the model's terms. The source is `RTA_PREFSRC`, else the
/// `RTA_SRC` the caller gave (IPv4 omits `RTA_PREFSRC` when it equals the given source).
fn answer_of(msg: &RouteNetlinkMessage) -> Result<RouteAnswer, String> {
    let RouteNetlinkMessage::NewRoute(r) = msg else {
        return Err(format!("expected RTM_NEWROUTE, got {msg:?}"));
    };
    let kind = match r.header.kind {
        RouteType::Unicast => AnswerKind::Unicast,
        RouteType::Local => AnswerKind::Local,
        RouteType::Broadcast => AnswerKind::Broadcast,
        other => {
            return Err(format!(
                "answer of route type {other:?}, which the model lacks"
            ));
        }
    };
    let (mut oif, mut gateway, mut prefsrc, mut src) = (None, None, None, None);
    for attr in &r.attributes {
        match attr {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::PrefSource(a) => prefsrc = ip_of(a),
            RouteAttribute::Source(a) => src = ip_of(a),
            _ => {}
        }
    }
    Ok(RouteAnswer {
        kind,
        oif: oif.ok_or("answer without RTA_OIF")?,
        gateway,
        src: prefsrc.or(src),
    })
}

impl Rtnl {
    /// Adds one route to the main table (protocol `static`); a refusal is
    /// [`SandboxError::Netlink`] with the errno.
    pub fn add_typed_route(&mut self, route: &Route) -> Result<(), SandboxError> {
        self.request(
            &format!("add route {route}"),
            RouteNetlinkMessage::NewRoute(route_message(route)),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Adds many routes to the main table, pipelined; one outcome per route, in order
    /// (`Err(errno)`: the kernel refused that route, the others are still added).
    pub fn install_routes(
        &mut self,
        routes: &[Route],
    ) -> Result<Vec<Result<(), Errno>>, SandboxError> {
        let mut out = vec![Ok(()); routes.len()];
        let msgs = routes
            .iter()
            .map(|r| RouteNetlinkMessage::NewRoute(route_message(r)));
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        self.pipeline("install routes", msgs, flags, PIPELINE_WINDOW, |i, a| {
            if let Err(e) = a {
                out[i] = Err(e);
            }
        })?;
        Ok(out)
    }

    /// Removes every route with protocol `static` from the main table (both families): what
    /// [`Rtnl::install_routes`] and [`Rtnl::add_typed_route`] added. Returns how many.
    pub fn flush_static_routes(&mut self) -> Result<usize, SandboxError> {
        let mut doomed = Vec::new();
        for ipv4 in [true, false] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family(ipv4);
            for m in self.request(
                "dump routes",
                RouteNetlinkMessage::GetRoute(msg),
                NLM_F_DUMP,
            )? {
                if let RouteNetlinkMessage::NewRoute(r) = m
                    && r.header.table == RouteHeader::RT_TABLE_MAIN
                    && r.header.protocol == RouteProtocol::Static
                {
                    doomed.push(RouteNetlinkMessage::DelRoute(r));
                }
            }
        }
        let n = doomed.len();
        let mut failed = None;
        self.pipeline("flush static routes", doomed, 0, PIPELINE_WINDOW, |_, a| {
            if let Err(e) = a
                && e != Errno::ESRCH
                && failed.is_none()
            {
                failed = Some(e);
            }
        })?;
        match failed {
            Some(errno) => Err(SandboxError::Netlink {
                namespace: self.namespace().to_string(),
                op: "flush static routes".into(),
                errno,
            }),
            None => Ok(n),
        }
    }

    /// `ip route get dst [from src]`, in the model's terms: `Ok(Err(_))` is the kernel's
    /// answer "no usable route"; the outer error means the request itself failed.
    pub fn lookup(
        &mut self,
        dst: IpAddr,
        src: Option<IpAddr>,
    ) -> Result<Result<RouteAnswer, RouteError>, SandboxError> {
        let op = || format!("route get {dst}");
        match self.request(
            &op(),
            RouteNetlinkMessage::GetRoute(lookup_message(dst, src)),
            0,
        ) {
            Ok(answers) => {
                let first = answers
                    .first()
                    .ok_or_else(|| self.io_err(&op(), "no answer"))?;
                answer_of(first)
                    .map(Ok)
                    .map_err(|detail| self.io_err(&op(), detail))
            }
            Err(SandboxError::Netlink { errno, .. }) => Ok(Err(route_error(errno))),
            Err(e) => Err(e),
        }
    }

    /// Many lookups, [`PIPELINE_WINDOW`] requests in flight per `send`; answers in order.
    pub fn lookup_many(
        &mut self,
        queries: &[(IpAddr, Option<IpAddr>)],
        window: usize,
    ) -> Result<Vec<Result<RouteAnswer, RouteError>>, SandboxError> {
        let mut out = vec![Err(RouteError::Other(0)); queries.len()];
        let mut bad = None;
        let msgs = queries
            .iter()
            .map(|&(d, s)| RouteNetlinkMessage::GetRoute(lookup_message(d, s)));
        self.pipeline("route get (pipelined)", msgs, 0, window, |i, a| {
            out[i] = match a {
                Ok(Some(m)) => match answer_of(&m) {
                    Ok(answer) => Ok(answer),
                    Err(detail) => {
                        bad.get_or_insert((i, detail));
                        Err(RouteError::Other(0))
                    }
                },
                Ok(None) => {
                    bad.get_or_insert((i, "an ACK instead of a route".into()));
                    Err(RouteError::Other(0))
                }
                Err(errno) => Err(route_error(errno)),
            };
        })?;
        if let Some((i, detail)) = bad {
            return Err(self.io_err(&format!("route get {}", queries[i].0), detail));
        }
        Ok(out)
    }
}

/// The router lab: a router namespace with `links` veth links to a harness namespace.
/// Dropping it removes both namespaces.
#[derive(Debug)]
pub struct RouterLab {
    // Field order is drop order: the socket first, namespaces last.
    rtnl: Rtnl,
    interfaces: Vec<Interface>,
    links: Vec<LinkInfo>,
    harness: Namespace,
    router: Namespace,
}

/// The router's IPv4 address on link `i` (`10.200.i.1/24`).
pub fn router_v4(i: usize) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 200, i as u8, 1)), 24).expect("24 <= 32")
}

/// The router's IPv6 address on link `i` (`fd00:200:i::1/64`).
pub fn router_v6(i: usize) -> IpNet {
    IpNet::new(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x200, i as u16, 0, 0, 0, 0, 1)),
        64,
    )
    .expect("64 <= 128")
}

impl RouterLab {
    /// Builds the lab with `links` links (1 to 8).
    pub fn build(links: usize) -> Result<RouterLab, SandboxError> {
        let links_wanted = links.clamp(1, 8);
        let harness = Namespace::create("rh")?;
        let router = Namespace::create("rr")?;
        sysctl::set_all(&harness, &sysctl::harness_defaults())?;
        let mut router_sysctls = Vec::new();
        for (key, value) in [
            ("disable_ipv6", "0"),
            ("accept_dad", "0"),
            ("dad_transmits", "0"),
            ("router_solicitations", "0"),
        ] {
            for which in ["all", "default"] {
                router_sysctls.push((format!("net.ipv6.conf.{which}.{key}"), value.to_string()));
            }
        }
        sysctl::set_all(&router, &router_sysctls)?;
        let hn = harness.name().to_string();
        let mut harness_rtnl = harness.run(move || Rtnl::open(&hn))??;
        let rn = router.name().to_string();
        let mut rtnl = router.run(move || Rtnl::open(&rn))??;
        let k = next_id();
        let lo = rtnl.link_by_name("lo")?;
        rtnl.set_up(lo.index, true)?;
        let mut interfaces = vec![Interface {
            index: lo.index,
            name: "lo".into(),
            loopback: true,
            addrs: vec![
                "127.0.0.1/8".parse().expect("prefix"),
                "::1/128".parse().expect("prefix"),
            ],
        }];
        let mut links = Vec::new();
        for i in 0..links_wanted {
            let (hname, rname) = (
                format!("{IFNAME_PREFIX}{k}h{i}"),
                format!("{IFNAME_PREFIX}{k}r{i}"),
            );
            harness_rtnl.create_veth(&hname, &rname, router.raw_fd(), 1500)?;
            let h = harness_rtnl.link_by_name(&hname)?;
            harness_rtnl.set_up(h.index, true)?;
            let r = rtnl.link_by_name(&rname)?;
            rtnl.set_up(r.index, true)?;
            let addrs = vec![router_v4(i), router_v6(i)];
            for a in &addrs {
                rtnl.add_address(r.index, a.addr(), a.prefix_len())?;
            }
            interfaces.push(Interface {
                index: r.index,
                name: rname,
                loopback: false,
                addrs,
            });
            links.push(r);
        }
        drop(harness_rtnl);
        Ok(RouterLab {
            rtnl,
            interfaces,
            links,
            harness,
            router,
        })
    }

    /// The router's interfaces as the model sees them (lo first).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The router's veth ends, in link order.
    pub fn links(&self) -> &[LinkInfo] {
        &self.links
    }

    /// A fresh model of the router with no added route.
    pub fn model(&self, profile: RouteProfile) -> RouteTable {
        RouteTable::new(profile, self.interfaces.clone())
    }

    /// rtnetlink in the router namespace.
    pub fn rtnl(&mut self) -> &mut Rtnl {
        &mut self.rtnl
    }

    /// Opens another rtnetlink socket in the router namespace (for lookups from several
    /// threads at once).
    pub fn open_rtnl(&self) -> Result<Rtnl, SandboxError> {
        let name = self.router.name().to_string();
        self.router.run(move || Rtnl::open(&name))?
    }

    /// The router namespace.
    pub fn router(&self) -> &Namespace {
        &self.router
    }

    /// The harness namespace.
    pub fn harness(&self) -> &Namespace {
        &self.harness
    }
}
