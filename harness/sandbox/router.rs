//! A router in a namespace: N segments, each a veth pair whose router end has an address and
//! whose other end sits in the harness namespace with no address, so the harness plays every
//! host on every segment.
//!
//! ```text
//!  ncf-<pid>-<n>-h                            ncf-<pid>-<m>-r
//!  [ ncf<k>h0 ] ---- veth ---- [ ncf<k>r0 ]  10.78.1.1/24   segment 0
//!  [ ncf<k>h1 ] ---- veth ---- [ ncf<k>r1 ]  10.78.2.1/24   segment 1
//!  ...                                        ip_forward=1
//! ```
//!
//! Address plan (RFC 1918, never routed outside our namespaces): segment `i` is
//! `10.78.<i+1>.0/24`, the router is `.1` on it. The router namespace forwards, sends no
//! ICMP redirects (a hairpin would otherwise add one), does not rate-limit ICMP errors (so
//! every error a check provokes is sent) and has IPv6 off.

use std::net::{IpAddr, Ipv4Addr};

use super::ethtool::{self, Offloads};
use super::netns::next_id;
use super::sysctl::{self, SysctlRecord};
use super::{IFNAME_PREFIX, LinkInfo, Namespace, PacketSocket, Rtnl, SandboxError};

/// The most segments a router lab has.
pub const MAX_SEGMENTS: usize = 8;

/// How to build a [`RouterLab`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// How many segments (1 to [`MAX_SEGMENTS`]).
    pub segments: usize,
    /// MTU of every veth end.
    pub mtu: u32,
}

impl Default for RouterConfig {
    /// Two segments, MTU 1500: host — router — server.
    fn default() -> Self {
        RouterConfig {
            segments: 2,
            mtu: 1500,
        }
    }
}

/// One segment: the harness end and the router end of its veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The harness end (no address).
    pub harness_link: LinkInfo,
    /// The router's interface on this segment.
    pub router_link: LinkInfo,
    /// The router's address on this segment.
    pub router_ip: Ipv4Addr,
    /// The segment's prefix length.
    pub prefix_len: u8,
    /// Offloads read back on the harness end.
    pub harness_offloads: Offloads,
    /// Offloads read back on the router end.
    pub router_offloads: Offloads,
}

impl Segment {
    /// Host `octet` of this segment (`.1` is the router).
    pub fn host(&self, octet: u8) -> Ipv4Addr {
        let o = self.router_ip.octets();
        Ipv4Addr::new(o[0], o[1], o[2], octet)
    }
}

/// A built router lab. Dropping it removes both namespaces (and every veth pair).
#[derive(Debug)]
pub struct RouterLab {
    // Field order is drop order: sockets first, namespaces last.
    harness_rtnl: Rtnl,
    router_rtnl: Rtnl,
    config: RouterConfig,
    segments: Vec<Segment>,
    sysctls: Vec<SysctlRecord>,
    harness: Namespace,
    router: Namespace,
}

/// The router namespace's settings: the harness defaults (IPv6 off, no rp_filter, no
/// redirects) plus forwarding and no ICMP rate limit.
fn router_sysctls() -> Vec<(String, String)> {
    let mut v = sysctl::harness_defaults();
    for (k, val) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.icmp_ratelimit", "0"),
        ("net.ipv4.icmp_msgs_per_sec", "100000"),
        ("net.ipv4.icmp_msgs_burst", "100000"),
    ] {
        v.push((k.to_string(), val.to_string()));
    }
    v
}

impl RouterLab {
    /// Builds the lab: the harness and router namespaces with their settings, one veth pair
    /// per segment created from the harness namespace with its peer placed in the router
    /// namespace, offloads off on both ends, addresses on the router ends, everything up,
    /// and waits until every end has an active queue.
    pub fn build(config: RouterConfig) -> Result<RouterLab, SandboxError> {
        if config.segments == 0 || config.segments > MAX_SEGMENTS {
            return Err(SandboxError::InvalidName {
                name: format!("{} segments", config.segments),
                reason: "a router lab has 1 to 8 segments",
            });
        }
        let harness = Namespace::create("h")?;
        let router = Namespace::create("r")?;
        let k = next_id();
        // Before any interface exists, so that `default` applies to every one of them.
        let mut sysctls = sysctl::set_all(&harness, &sysctl::harness_defaults())?;
        sysctls.extend(sysctl::set_all(&router, &router_sysctls())?);

        let hn = harness.name().to_string();
        let mut harness_rtnl = harness.run(move || Rtnl::open(&hn))??;
        let rn = router.name().to_string();
        let mut router_rtnl = router.run(move || Rtnl::open(&rn))??;
        for rtnl in [&mut harness_rtnl, &mut router_rtnl] {
            let lo = rtnl.link_by_name("lo")?;
            rtnl.set_up(lo.index, true)?;
        }

        let mut segments = Vec::with_capacity(config.segments);
        for i in 0..config.segments {
            let hname = format!("{IFNAME_PREFIX}{k}h{i}");
            let rname = format!("{IFNAME_PREFIX}{k}r{i}");
            harness_rtnl.create_veth(&hname, &rname, router.raw_fd(), config.mtu)?;
            let harness_link = harness_rtnl.link_by_name(&hname)?;
            let router_link = router_rtnl.link_by_name(&rname)?;
            let harness_offloads = {
                let (n, i) = (harness.name().to_string(), hname.clone());
                harness.run(move || ethtool::disable_offloads(&n, &i))??
            };
            let router_offloads = {
                let (n, i) = (router.name().to_string(), rname.clone());
                router.run(move || ethtool::disable_offloads(&n, &i))??
            };
            let router_ip = Ipv4Addr::new(10, 78, i as u8 + 1, 1);
            router_rtnl.add_address(router_link.index, IpAddr::V4(router_ip), 24)?;
            segments.push(Segment {
                harness_link,
                router_link,
                router_ip,
                prefix_len: 24,
                harness_offloads,
                router_offloads,
            });
        }
        for s in &segments {
            harness_rtnl.set_up(s.harness_link.index, true)?;
            router_rtnl.set_up(s.router_link.index, true)?;
        }
        // Read back after up, and wait for active queues (see `Rtnl::wait_queue_active`).
        for s in &mut segments {
            s.harness_link = harness_rtnl.wait_queue_active(&s.harness_link.name)?;
            s.router_link = router_rtnl.wait_queue_active(&s.router_link.name)?;
        }
        Ok(RouterLab {
            harness_rtnl,
            router_rtnl,
            config,
            segments,
            sysctls,
            harness,
            router,
        })
    }

    /// The configuration the lab was built from.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }
    /// The harness namespace.
    pub fn harness(&self) -> &Namespace {
        &self.harness
    }
    /// The router namespace (the stack under test).
    pub fn router(&self) -> &Namespace {
        &self.router
    }
    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    /// The segment whose router interface has index `ifindex`.
    pub fn segment_of_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| s.router_link.index == ifindex)
    }
    /// Every sysctl the lab set (namespace, name, old, new).
    pub fn sysctls(&self) -> &[SysctlRecord] {
        &self.sysctls
    }
    /// rtnetlink in the harness namespace.
    pub fn harness_rtnl(&mut self) -> &mut Rtnl {
        &mut self.harness_rtnl
    }
    /// rtnetlink in the router namespace.
    pub fn router_rtnl(&mut self) -> &mut Rtnl {
        &mut self.router_rtnl
    }
    /// An AF_PACKET socket on the harness end of segment `i`.
    pub fn packet_socket(&self, i: usize) -> Result<PacketSocket, SandboxError> {
        let link = &self
            .segments
            .get(i)
            .ok_or_else(|| SandboxError::NoSuchInterface {
                namespace: self.harness.name().to_string(),
                interface: format!("segment {i}"),
            })?
            .harness_link;
        let (name, index) = (link.name.clone(), link.index);
        self.harness.run(move || PacketSocket::open(&name, index))?
    }
}
