//! The common topology: a harness namespace and a target namespace joined by one veth pair.
//!
//! ```text
//!  ncf-<pid>-<n>-h                         ncf-<pid>-<m>-t
//!  [ ncf<k>h ] ----------- veth ----------- [ ncf<k>t ]  10.77.0.2/24, fd77::2/64
//!   no IP address: the harness alone         the stack under test
//!   speaks for the peer 10.77.0.1 / fd77::1
//! ```
//!
//! Address plan (private test ranges, never routed outside our namespaces): IPv4
//! `10.77.0.0/24` (RFC 1918), IPv6 `fd77::/64` (RFC 4193 ULA). The stack is `.2`/`::2`, the
//! peer the harness impersonates is `.1`/`::1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ethtool::{self, Offloads};
use super::netns::next_id;
use super::sysctl::{self, SysctlRecord};
use super::{IFNAME_PREFIX, LinkInfo, MacAddr, Namespace, Rtnl, SandboxError};

/// IPv4 on the target end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Config {
    /// The stack's address.
    pub stack: Ipv4Addr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
    /// The peer address the harness speaks for.
    pub peer: Ipv4Addr,
}

/// IPv6 on the target end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V6Config {
    /// The stack's address (added with `IFA_F_NODAD`).
    pub stack: Ipv6Addr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
    /// The peer address the harness speaks for.
    pub peer: Ipv6Addr,
}

/// How to build a [`Lab`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// IPv4 on the target end (`None`: no IPv4 address).
    pub ipv4: Option<V4Config>,
    /// IPv6 on the target end (`None`: IPv6 disabled in the target namespace).
    pub ipv6: Option<V6Config>,
    /// MTU of both veth ends.
    pub mtu: u32,
    /// Add PERMANENT neighbour entries on the target for the peer addresses, pointing at the
    /// harness MAC (no ARP/ND exchange needed).
    pub static_neighbours: bool,
    /// Apply the default pinned sysctls ([`sysctl::harness_defaults`],
    /// [`sysctl::target_defaults`]).
    pub pin_defaults: bool,
    /// Further sysctls for the target namespace, applied after the defaults.
    pub target_sysctls: Vec<(String, String)>,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            ipv4: Some(V4Config {
                stack: Ipv4Addr::new(10, 77, 0, 2),
                prefix_len: 24,
                peer: Ipv4Addr::new(10, 77, 0, 1),
            }),
            ipv6: Some(V6Config {
                stack: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2),
                prefix_len: 64,
                peer: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1),
            }),
            mtu: 1500,
            static_neighbours: false,
            pin_defaults: true,
            target_sysctls: Vec::new(),
        }
    }
}

/// A built lab. Dropping it removes both namespaces (and with them the veth pair).
///
/// With IPv6 enabled the target kernel still sends MLD reports for its multicast groups
/// shortly after link up; the harness filters or drains them.
#[derive(Debug)]
pub struct Lab {
    // Field order is drop order: sockets first, namespaces last.
    harness_rtnl: Rtnl,
    target_rtnl: Rtnl,
    config: LabConfig,
    harness_link: LinkInfo,
    target_link: LinkInfo,
    harness_offloads: Offloads,
    target_offloads: Offloads,
    sysctls: Vec<SysctlRecord>,
    congestion_control: String,
    harness: Namespace,
    target: Namespace,
}

impl Lab {
    /// Builds the lab: two namespaces, sysctls pinned, veth created from inside the harness
    /// namespace with its peer placed in the target namespace, offloads off on both ends,
    /// links up (and `lo`), target addresses (and optional neighbours) added.
    pub fn build(config: LabConfig) -> Result<Lab, SandboxError> {
        let harness = Namespace::create("h")?;
        let target = Namespace::create("t")?;
        let k = next_id();
        let hname = format!("{IFNAME_PREFIX}{k}h");
        let tname = format!("{IFNAME_PREFIX}{k}t");

        let mut sysctls = Vec::new();
        let mut congestion_control = sysctl::read(&target, "net.ipv4.tcp_congestion_control")?;
        if config.pin_defaults {
            sysctls.extend(sysctl::set_all(&harness, &sysctl::harness_defaults())?);
            congestion_control = sysctl::choose_congestion_control(&target)?;
            sysctls.extend(sysctl::set_all(
                &target,
                &sysctl::target_defaults(config.ipv6.is_some(), &congestion_control),
            )?);
        }
        sysctls.extend(sysctl::set_all(&target, &config.target_sysctls)?);

        let hn = harness.name().to_string();
        let mut harness_rtnl = harness.run(move || Rtnl::open(&hn))??;
        let tn = target.name().to_string();
        let mut target_rtnl = target.run(move || Rtnl::open(&tn))??;

        harness_rtnl.create_veth(&hname, &tname, target.raw_fd(), config.mtu)?;
        let harness_link = harness_rtnl.link_by_name(&hname)?;
        let target_link = target_rtnl.link_by_name(&tname)?;

        let harness_offloads = {
            let (n, i) = (harness.name().to_string(), hname.clone());
            harness.run(move || ethtool::disable_offloads(&n, &i))??
        };
        let target_offloads = {
            let (n, i) = (target.name().to_string(), tname.clone());
            target.run(move || ethtool::disable_offloads(&n, &i))??
        };

        for rtnl in [&mut harness_rtnl, &mut target_rtnl] {
            let lo = rtnl.link_by_name("lo")?;
            rtnl.set_up(lo.index, true)?;
        }
        harness_rtnl.set_up(harness_link.index, true)?;
        target_rtnl.set_up(target_link.index, true)?;

        let hmac = harness_link.mac.unwrap_or_default();
        if let Some(v4) = &config.ipv4 {
            target_rtnl.add_address(target_link.index, IpAddr::V4(v4.stack), v4.prefix_len)?;
            if config.static_neighbours {
                target_rtnl.add_neighbour(target_link.index, IpAddr::V4(v4.peer), hmac)?;
            }
        }
        if let Some(v6) = &config.ipv6 {
            target_rtnl.add_address(target_link.index, IpAddr::V6(v6.stack), v6.prefix_len)?;
            if config.static_neighbours {
                target_rtnl.add_neighbour(target_link.index, IpAddr::V6(v6.peer), hmac)?;
            }
        }
        // Read back after up (flags, the final MTU), once both ends have an active queue.
        let harness_link = harness_rtnl.wait_queue_active(&hname)?;
        let target_link = target_rtnl.wait_queue_active(&tname)?;
        // And once the stack's addresses are local (IPv6's become so only after the
        // addrconf work the ready link queued: `Rtnl::wait_local_address`).
        let addresses = [
            config.ipv4.as_ref().map(|v4| IpAddr::V4(v4.stack)),
            config.ipv6.as_ref().map(|v6| IpAddr::V6(v6.stack)),
        ];
        for addr in addresses.into_iter().flatten() {
            target_rtnl.wait_local_address(addr, std::time::Duration::from_secs(5))?;
        }

        let mut lab = Lab {
            harness_rtnl,
            target_rtnl,
            config,
            harness_link,
            target_link,
            harness_offloads,
            target_offloads,
            sysctls,
            congestion_control,
            harness,
            target,
        };
        lab.prove_delivery()?;
        Ok(lab)
    }

    /// Proves that a frame the harness sends reaches the stack's end before the lab is
    /// used: sends a frame no stack answers (ether type 0x88B5, IEEE 802 local
    /// experimental, to the stack's MAC; the kernel counts it and drops it) until the stack
    /// end's receive counter moves, resending every 20 ms, for up to 5 s.
    ///
    /// The harness end is set up first, with no carrier, so its queues are turned on only
    /// later, by the kernel's link watch, which sets the operational state a moment before
    /// it activates the queues: a wait on what the kernel reports left a window in which
    /// the first frame (a barrier probe) was dropped. A soak of `cargo test` under a CPU hog
    /// hit it once in four runs ("echo reply to the barrier probe: nothing arrived within
    /// 2 s" on a fresh lab's first barrier). The stack's end needs no such proof: it comes
    /// up second, finds its peer's carrier, and activates its queues as it opens.
    fn prove_delivery(&mut self) -> Result<(), SandboxError> {
        prove_delivery(
            &self.harness,
            &self.harness_link,
            &mut self.target_rtnl,
            &self.target_link,
        )
    }

    /// The configuration the lab was built from.
    pub fn config(&self) -> &LabConfig {
        &self.config
    }
    /// The harness namespace (no IP address on its veth end).
    pub fn harness(&self) -> &Namespace {
        &self.harness
    }
    /// The target namespace (the stack under test).
    pub fn target(&self) -> &Namespace {
        &self.target
    }
    /// The harness veth end (name, ifindex, MAC, MTU, flags at build time).
    pub fn harness_link(&self) -> &LinkInfo {
        &self.harness_link
    }
    /// The target veth end (name, ifindex, MAC, MTU, flags at build time).
    pub fn target_link(&self) -> &LinkInfo {
        &self.target_link
    }
    /// MAC of the harness veth end (the peer's MAC as the stack sees it).
    pub fn harness_mac(&self) -> MacAddr {
        self.harness_link.mac.unwrap_or_default()
    }
    /// MAC of the target veth end.
    pub fn target_mac(&self) -> MacAddr {
        self.target_link.mac.unwrap_or_default()
    }
    /// Offloads read back on the harness end after switching them off.
    pub fn harness_offloads(&self) -> Offloads {
        self.harness_offloads
    }
    /// Offloads read back on the target end after switching them off.
    pub fn target_offloads(&self) -> Offloads {
        self.target_offloads
    }
    /// Every sysctl the lab set, in order (namespace, name, old, new).
    pub fn sysctls(&self) -> &[SysctlRecord] {
        &self.sysctls
    }
    /// The congestion control pinned in the target namespace.
    pub fn congestion_control(&self) -> &str {
        &self.congestion_control
    }
    /// rtnetlink in the harness namespace.
    pub fn harness_rtnl(&mut self) -> &mut Rtnl {
        &mut self.harness_rtnl
    }
    /// rtnetlink in the target namespace.
    pub fn target_rtnl(&mut self) -> &mut Rtnl {
        &mut self.target_rtnl
    }
    /// Opens an AF_PACKET socket on the harness veth end, inside the harness namespace.
    pub fn packet_socket(&self) -> Result<super::PacketSocket, SandboxError> {
        let (name, index) = (self.harness_link.name.clone(), self.harness_link.index);
        self.harness
            .run(move || super::PacketSocket::open(&name, index))?
    }
}

/// Sends a frame no stack answers (ether type 0x88B5, IEEE 802 local experimental) from
/// `from` (an interface of `harness`) to `to` (its veth peer, read through `far`) until
/// `to`'s receive counter moves, resending every 20 ms, for up to 5 s (see
/// [`Lab::prove_delivery`]).
pub(super) fn prove_delivery(
    harness: &Namespace,
    from: &LinkInfo,
    far: &mut Rtnl,
    to: &LinkInfo,
) -> Result<(), SandboxError> {
    let (name, index) = (from.name.clone(), from.index);
    let socket = harness.run(move || super::PacketSocket::open(&name, index))??;
    let before = far.rx_packets(to.index)?.unwrap_or(0);
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&to.mac.unwrap_or_default().0);
    frame.extend_from_slice(&from.mac.unwrap_or_default().0);
    frame.extend_from_slice(&[0x88, 0xb5]);
    frame.extend_from_slice(b"ncf-link-check");
    frame.resize(60, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        socket.send(&frame)?;
        let sent = std::time::Instant::now();
        while sent.elapsed() < std::time::Duration::from_millis(20) {
            if far.rx_packets(to.index)?.unwrap_or(0) > before {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if std::time::Instant::now() > deadline {
            return Err(SandboxError::NotReady {
                what: format!("no frame from {} reached {} within 5 s", from.name, to.name),
            });
        }
    }
}
