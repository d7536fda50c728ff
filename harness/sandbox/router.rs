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
//! Address plan (RFC 1918 and RFC 4193, never routed outside our namespaces): segment `i` is
//! `10.78.<i+1>.0/24` (and `fd00:78:<i+1>::/64` when [`RouterConfig::ipv6`] is set), the
//! router is `.1` (`::1`) on it. The router namespace forwards IPv4, sends no ICMP redirects
//! (a hairpin would otherwise add one) and does not rate-limit ICMP errors (so every error a
//! check provokes is sent). IPv6, when on, has no duplicate address detection and no
//! forwarding (forwarding would add subnet-router anycast routes that the route lookups do
//! not want); the route model's lookups use it.
//!
//! The lab also gives the route model its view of the router ([`RouterLab::interfaces`],
//! [`RouterLab::model`]): no traffic is needed for lookups.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::models::route::{Interface, RouteProfile, RouteTable};

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
    /// IPv6 on the router, with `fd00:78:<i+1>::1/64` on segment `i`.
    pub ipv6: bool,
}

impl RouterConfig {
    /// `segments` segments with IPv4 and IPv6 addresses: the route lookup lab.
    pub fn dual_stack(segments: usize) -> RouterConfig {
        RouterConfig {
            segments,
            ipv6: true,
            ..RouterConfig::default()
        }
    }
}

/// The router's IPv4 address and prefix on segment `i` (`10.78.<i+1>.1/24`).
pub fn router_v4(i: usize) -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 78, i as u8 + 1, 1)), 24).expect("24 <= 32")
}

/// The router's IPv6 address and prefix on segment `i` (`fd00:78:<i+1>::1/64`), when the lab
/// has IPv6.
pub fn router_v6(i: usize) -> IpNet {
    IpNet::new(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x78, i as u16 + 1, 0, 0, 0, 0, 1)),
        64,
    )
    .expect("64 <= 128")
}

impl Default for RouterConfig {
    /// Two segments, MTU 1500: host — router — server.
    fn default() -> Self {
        RouterConfig {
            segments: 2,
            mtu: 1500,
            ipv6: false,
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
    /// The router's IPv6 address on this segment, when the lab has IPv6.
    pub router_ip6: Option<Ipv6Addr>,
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
    interfaces: Vec<Interface>,
    sysctls: Vec<SysctlRecord>,
    harness: Namespace,
    router: Namespace,
}

/// The router namespace's settings: the harness defaults (IPv6 off, no rp_filter, no
/// redirects) plus forwarding and no ICMP rate limit.
fn router_sysctls(ipv6: bool) -> Vec<(String, String)> {
    let mut v = sysctl::harness_defaults();
    if ipv6 {
        v.extend(sysctl::ipv6_on());
    }
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
        sysctls.extend(sysctl::set_all(&router, &router_sysctls(config.ipv6))?);

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
            let v4 = router_v4(i);
            router_rtnl.add_address(router_link.index, v4.addr(), v4.prefix_len())?;
            let router_ip6 = if config.ipv6 {
                let v6 = router_v6(i);
                router_rtnl.add_address(router_link.index, v6.addr(), v6.prefix_len())?;
                match v6.addr() {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                }
            } else {
                None
            };
            let router_ip = match v4.addr() {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => unreachable!("router_v4 is IPv4"),
            };
            segments.push(Segment {
                harness_link,
                router_link,
                router_ip,
                router_ip6,
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
        // And until the router's addresses are local (see `Rtnl::wait_local_address`).
        for s in &segments {
            let addresses = [Some(IpAddr::V4(s.router_ip)), s.router_ip6.map(IpAddr::V6)];
            for addr in addresses.into_iter().flatten() {
                router_rtnl.wait_local_address(addr, std::time::Duration::from_secs(5))?;
            }
        }
        let lo = router_rtnl.link_by_name("lo")?;
        let mut interfaces = vec![Interface {
            index: lo.index,
            name: "lo".into(),
            loopback: true,
            addrs: vec![
                "127.0.0.1/8".parse().expect("prefix"),
                "::1/128".parse().expect("prefix"),
            ],
        }];
        for (i, s) in segments.iter().enumerate() {
            let mut addrs = vec![router_v4(i)];
            if config.ipv6 {
                addrs.push(router_v6(i));
            }
            interfaces.push(Interface {
                index: s.router_link.index,
                name: s.router_link.name.clone(),
                loopback: false,
                addrs,
            });
        }
        // As in the host lab: a frame from each harness end must reach the router before
        // the lab is used (see `Lab::prove_delivery`).
        for s in &segments {
            super::lab::prove_delivery(
                &harness,
                &s.harness_link,
                &mut router_rtnl,
                &s.router_link,
            )?;
        }
        Ok(RouterLab {
            harness_rtnl,
            router_rtnl,
            config,
            segments,
            interfaces,
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
    /// The router's interfaces as the route model sees them (lo first, then one per
    /// segment).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }
    /// A fresh route model of the router with no added route.
    pub fn model(&self, profile: RouteProfile) -> RouteTable {
        RouteTable::new(profile, self.interfaces.clone())
    }
    /// Opens another rtnetlink socket in the router namespace (for lookups from several
    /// threads at once).
    pub fn open_router_rtnl(&self) -> Result<Rtnl, SandboxError> {
        let name = self.router.name().to_string();
        self.router.run(move || Rtnl::open(&name))?
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
