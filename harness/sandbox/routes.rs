//! Typed routes over rtnetlink, in the route model's terms.
//!
//! - [`Rtnl::install_routes`]: many `RTM_NEWROUTE` requests, pipelined (64 per `send`), each
//!   with its own outcome; [`Rtnl::flush_static_routes`] removes them again (a dump of the
//!   main table, then pipelined `RTM_DELROUTE`s of every route with protocol `static`).
//! - [`Rtnl::lookup`], [`Rtnl::lookup_many`]: `ip route get D [from S]` (`RTM_GETROUTE`
//!   without `NLM_F_DUMP`), one at a time or pipelined, answered in the route model's terms
//!   ([`RouteAnswer`] or [`RouteError`]) so the two compare directly.
//!
//! The lab they run in is [`super::RouterLab`] with [`super::RouterConfig::dual_stack`].

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::{Rtnl, SandboxError};
use crate::models::route::{AnswerKind, Route, RouteAnswer, RouteError, RouteKind};

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
