//! The switch topology: a Linux bridge with N ports in a namespace of its own, each port a
//! veth whose other end sits in the harness namespace.
//!
//! ```text
//!  ncf-<pid>-<n>-h (harness)                  ncf-<pid>-<m>-sw (the switch)
//!  [ ncf<k>h0 ] ----------- veth ----------- [ ncf<k>s0 ] --+
//!  [ ncf<k>h1 ] ----------- veth ----------- [ ncf<k>s1 ] --+-- ncf<k>br  bridge
//!  [ ncf<k>h2 ] ----------- veth ----------- [ ncf<k>s2 ] --+
//!   no IP address anywhere: the harness alone speaks for the stations behind each port
//! ```
//!
//! The bridge is built the way the oracle research measured it to be deterministic
//! (`linux-oracle.md` §3 and §6): STP off (ports go straight to forwarding), multicast
//! snooping off (groups are flooded), `group_fwd_mask` 0, IPv6 disabled in both namespaces
//! before any interface exists (no DAD or MLD frame ever fills the forwarding database), and
//! offloads off on every veth end. The ageing time is in the kernel's unit, centiseconds
//! (`ageing_time 0` makes the bridge a hub: it learns nothing).
//!
//! The netlink operations this topology needs (create a bridge, enslave a port, change and
//! read back bridge options, flush and dump the forwarding database with `AF_BRIDGE` and
//! `NDA_MASTER`) extend [`Rtnl`] here. Dropping a [`BridgeLab`] removes both namespaces, and
//! with them the bridge and every veth pair; `netconform clean` removes what a killed run left.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, LinkAttribute, LinkInfo as NlLinkInfo,
    LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use super::ethtool::{self, Offloads};
use super::netlink::{Readiness, mac_from_slice};
use super::netns::next_id;
use super::sysctl::{self, SysctlRecord};
use super::{
    IFNAME_PREFIX, LinkInfo, MacAddr, Namespace, NeighbourCacheInfo, NudState, PacketSocket, Rtnl,
    SandboxError,
};

/// `NTF_SELF`: an entry of the port device's own address list, not of the bridge.
const NTF_SELF: u8 = 1 << 1;
/// `NTF_MASTER`: an entry of the bridge (the port's master).
const NTF_MASTER: u8 = 1 << 2;

/// The most ports a lab gets (interface names stay within 15 bytes, set-up stays quick).
pub const MAX_BRIDGE_PORTS: usize = 16;

/// Bridge options, as set at creation and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeSettings {
    /// Spanning tree (`stp_state`); off in every lab.
    pub stp: bool,
    /// Ageing time in centiseconds (`ageing_time`; 0: learn nothing).
    pub ageing_centiseconds: u32,
    /// Multicast snooping (`mcast_snooping`); off: groups are flooded.
    pub multicast_snooping: bool,
    /// Which reserved group addresses 01-80-C2-00-00-0X are forwarded (`group_fwd_mask`).
    pub group_forward_mask: u16,
}

/// One entry of a bridge's forwarding database, as an `AF_BRIDGE` `RTM_GETNEIGH` dump
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeFdbEntry {
    /// The station's address.
    pub mac: MacAddr,
    /// The port it is on (`ndm_ifindex`).
    pub ifindex: u32,
    /// The bridge the entry belongs to (`NDA_MASTER`), absent for a device's own entries.
    pub master: Option<u32>,
    /// `ndm_state`: REACHABLE = learned and fresh, STALE = aged but not yet collected,
    /// NOARP = static, PERMANENT = the address of a local port.
    pub state: NudState,
    /// `ndm_flags` (`NTF_SELF`, `NTF_MASTER`, ...).
    pub flags: u8,
    /// VLAN (`NDA_VLAN`), when VLAN filtering is on.
    pub vlan: Option<u16>,
    /// Ages in centiseconds (`NDA_CACHEINFO`).
    pub cacheinfo: Option<NeighbourCacheInfo>,
}

impl BridgeFdbEntry {
    /// True for an entry of the port device's own list (`self`), not of the bridge.
    pub fn is_self(&self) -> bool {
        self.flags & NTF_SELF != 0
    }

    /// True for an entry the bridge learned (fresh or aged), as opposed to local, static
    /// and `self` entries.
    pub fn is_learned(&self) -> bool {
        !self.is_self()
            && (self.master.is_some() || self.flags & NTF_MASTER != 0)
            && matches!(self.state, NudState::Reachable | NudState::Stale)
    }
}

impl Rtnl {
    /// Creates a bridge called `name` with `settings`.
    pub fn create_bridge(
        &mut self,
        name: &str,
        settings: &BridgeSettings,
    ) -> Result<(), SandboxError> {
        if name.len() > 15 {
            return Err(SandboxError::InvalidName {
                name: name.to_string(),
                reason: "interface names are at most 15 bytes",
            });
        }
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(bridge_info(bridge_options(
                settings,
            ))));
        self.request(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Changes options of the bridge `index` (`ip link set <br> type bridge ...`: an
    /// `RTM_NEWLINK` on the existing device).
    fn change_bridge(
        &mut self,
        op: &str,
        index: u32,
        options: Vec<InfoBridge>,
    ) -> Result<(), SandboxError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::LinkInfo(bridge_info(options)));
        self.request(op, RouteNetlinkMessage::NewLink(msg), 0)?;
        Ok(())
    }

    /// Sets the ageing time of bridge `index`, in centiseconds.
    pub fn set_bridge_ageing(&mut self, index: u32, centiseconds: u32) -> Result<(), SandboxError> {
        self.change_bridge(
            &format!("set bridge {index} ageing_time {centiseconds}"),
            index,
            vec![InfoBridge::AgeingTime(centiseconds)],
        )
    }

    /// Sets the forward delay of bridge `index`, in centiseconds (0: a port that comes up
    /// forwards at once, whatever the STP state).
    pub fn set_bridge_forward_delay(
        &mut self,
        index: u32,
        centiseconds: u32,
    ) -> Result<(), SandboxError> {
        self.change_bridge(
            &format!("set bridge {index} forward_delay {centiseconds}"),
            index,
            vec![InfoBridge::ForwardDelay(centiseconds)],
        )
    }

    /// Removes every learned (dynamic) entry from the forwarding database of bridge `index`
    /// (`IFLA_BR_FDB_FLUSH`; local and static entries stay).
    pub fn flush_bridge_fdb(&mut self, index: u32) -> Result<(), SandboxError> {
        self.change_bridge(
            &format!("flush bridge {index} fdb"),
            index,
            vec![InfoBridge::FdbFlush],
        )
    }

    /// Reads back the options of bridge `index`.
    pub fn bridge_settings(&mut self, index: u32) -> Result<BridgeSettings, SandboxError> {
        let op = format!("read bridge {index} options");
        let answers = self.request(
            &op,
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let link = answers
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) if l.header.index == index => Some(l),
                _ => None,
            })
            .ok_or_else(|| SandboxError::NoSuchInterface {
                namespace: self.namespace().to_string(),
                interface: index.to_string(),
            })?;
        let options: Vec<InfoBridge> = link
            .attributes
            .iter()
            .filter_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => Some(infos),
                _ => None,
            })
            .flatten()
            .filter_map(|i| match i {
                NlLinkInfo::Data(InfoData::Bridge(v)) => Some(v.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if options.is_empty() {
            return Err(SandboxError::NetlinkIo {
                namespace: self.namespace().to_string(),
                op,
                detail: format!("interface {index} reports no bridge options: not a bridge"),
            });
        }
        let mut s = BridgeSettings {
            stp: false,
            ageing_centiseconds: 0,
            multicast_snooping: false,
            group_forward_mask: 0,
        };
        for o in options {
            match o {
                InfoBridge::StpState(st) => s.stp = st != BridgeStpState::Disabled,
                InfoBridge::AgeingTime(t) => s.ageing_centiseconds = t,
                InfoBridge::MulticastSnooping(on) => s.multicast_snooping = on,
                InfoBridge::GroupFwdMask(m) => s.group_forward_mask = m,
                _ => {}
            }
        }
        Ok(s)
    }

    /// Makes interface `index` a port of bridge `master` (`ip link set <dev> master <br>`).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), SandboxError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        self.request(
            &format!("set link {index} master {master}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )?;
        Ok(())
    }

    /// Dumps every bridge forwarding database entry of the namespace (`RTM_GETNEIGH` with
    /// `ndm_family = AF_BRIDGE`): learned, local, static and `self` entries alike.
    pub fn bridge_fdb(&mut self) -> Result<Vec<BridgeFdbEntry>, SandboxError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        let answers = self.request(
            "dump bridge fdb",
            RouteNetlinkMessage::GetNeighbour(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in answers {
            let RouteNetlinkMessage::NewNeighbour(n) = m else {
                continue;
            };
            if n.header.family != AddressFamily::Bridge {
                continue;
            }
            let mut mac = None;
            let mut e = BridgeFdbEntry {
                mac: MacAddr::ZERO,
                ifindex: n.header.ifindex,
                master: None,
                state: n.header.state.into(),
                flags: n.header.flags.bits(),
                vlan: None,
                cacheinfo: None,
            };
            for attr in &n.attributes {
                match attr {
                    NeighbourAttribute::LinkLayerAddress(l) => mac = mac_from_slice(l),
                    NeighbourAttribute::Controller(i) => e.master = Some(*i),
                    NeighbourAttribute::Vlan(v) => e.vlan = Some(*v),
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
            // An entry without a 6-byte address is not an Ethernet station: skip it.
            if let Some(mac) = mac {
                e.mac = mac;
                out.push(e);
            }
        }
        Ok(out)
    }
}

fn bridge_options(s: &BridgeSettings) -> Vec<InfoBridge> {
    vec![
        InfoBridge::StpState(if s.stp {
            BridgeStpState::KernelStp
        } else {
            BridgeStpState::Disabled
        }),
        InfoBridge::AgeingTime(s.ageing_centiseconds),
        InfoBridge::MulticastSnooping(s.multicast_snooping),
        InfoBridge::GroupFwdMask(s.group_forward_mask),
    ]
}

fn bridge_info(options: Vec<InfoBridge>) -> Vec<NlLinkInfo> {
    vec![
        NlLinkInfo::Kind(InfoKind::Bridge),
        NlLinkInfo::Data(InfoData::Bridge(options)),
    ]
}

/// How to build a [`BridgeLab`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// How many ports (at least 1, at most [`MAX_BRIDGE_PORTS`]).
    pub ports: usize,
    /// The ageing time in centiseconds (the kernel's unit; 30000 = 300 s is its default,
    /// 0 makes the bridge a hub).
    pub ageing_centiseconds: u32,
    /// MTU of every veth end.
    pub mtu: u32,
}

impl Default for BridgeConfig {
    /// Three ports, the kernel's default ageing time (300 s), MTU 1500.
    fn default() -> Self {
        BridgeConfig {
            ports: 3,
            ageing_centiseconds: 30_000,
            mtu: 1500,
        }
    }
}

/// One port of the bridge: the harness end and the bridge end of its veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePort {
    /// The harness end (no address), in the harness namespace.
    pub harness_link: LinkInfo,
    /// The bridge end, a port of the bridge, in the switch namespace.
    pub switch_link: LinkInfo,
    /// Offloads read back on the harness end.
    pub harness_offloads: Offloads,
    /// Offloads read back on the bridge end.
    pub switch_offloads: Offloads,
}

/// A built switch lab. Dropping it removes both namespaces (and the bridge and veth pairs).
#[derive(Debug)]
pub struct BridgeLab {
    // Field order is drop order: sockets first, namespaces last.
    harness_rtnl: Rtnl,
    switch_rtnl: Rtnl,
    config: BridgeConfig,
    bridge: LinkInfo,
    settings: BridgeSettings,
    ports: Vec<BridgePort>,
    sysctls: Vec<SysctlRecord>,
    harness: Namespace,
    switch: Namespace,
}

impl BridgeLab {
    /// Builds the lab: two namespaces with IPv6 off, the bridge (STP off, snooping off, the
    /// configured ageing time), one veth pair per port created from the harness namespace
    /// with its peer placed in the switch namespace and enslaved to the bridge, offloads off
    /// on both ends, everything up; the bridge options are read back.
    pub fn build(config: BridgeConfig) -> Result<BridgeLab, SandboxError> {
        if config.ports == 0 || config.ports > MAX_BRIDGE_PORTS {
            return Err(SandboxError::InvalidName {
                name: format!("{} ports", config.ports),
                reason: "a bridge lab has 1 to 16 ports",
            });
        }
        let harness = Namespace::create("h")?;
        let switch = Namespace::create("sw")?;
        let k = next_id();

        // Before any interface exists, so that `default` applies to every one of them.
        let mut sysctls = sysctl::set_all(&harness, &sysctl::harness_defaults())?;
        sysctls.extend(sysctl::set_all(&switch, &sysctl::harness_defaults())?);

        let hn = harness.name().to_string();
        let mut harness_rtnl = harness.run(move || Rtnl::open(&hn))??;
        let sn = switch.name().to_string();
        let mut switch_rtnl = switch.run(move || Rtnl::open(&sn))??;
        for rtnl in [&mut harness_rtnl, &mut switch_rtnl] {
            let lo = rtnl.link_by_name("lo")?;
            rtnl.set_up(lo.index, true)?;
        }

        let bridge_name = format!("{IFNAME_PREFIX}{k}br");
        switch_rtnl.create_bridge(
            &bridge_name,
            &BridgeSettings {
                stp: false,
                ageing_centiseconds: config.ageing_centiseconds,
                multicast_snooping: false,
                group_forward_mask: 0,
            },
        )?;
        let bridge = switch_rtnl.link_by_name(&bridge_name)?;

        let mut ports = Vec::with_capacity(config.ports);
        for i in 0..config.ports {
            let hname = format!("{IFNAME_PREFIX}{k}h{i}");
            let sname = format!("{IFNAME_PREFIX}{k}s{i}");
            harness_rtnl.create_veth(&hname, &sname, switch.raw_fd(), config.mtu)?;
            let harness_link = harness_rtnl.link_by_name(&hname)?;
            let switch_link = switch_rtnl.link_by_name(&sname)?;
            switch_rtnl.set_master(switch_link.index, bridge.index)?;
            let harness_offloads = {
                let (n, i) = (harness.name().to_string(), hname.clone());
                harness.run(move || ethtool::disable_offloads(&n, &i))??
            };
            let switch_offloads = {
                let (n, i) = (switch.name().to_string(), sname.clone());
                switch.run(move || ethtool::disable_offloads(&n, &i))??
            };
            ports.push(BridgePort {
                harness_link,
                switch_link,
                harness_offloads,
                switch_offloads,
            });
        }
        for p in &ports {
            harness_rtnl.set_up(p.harness_link.index, true)?;
            switch_rtnl.set_up(p.switch_link.index, true)?;
        }
        switch_rtnl.set_up(bridge.index, true)?;

        // Every port must be able to carry a frame before the first one is sent: the
        // harness ends with their queues active, the switch ends forwarding
        // (see `Rtnl::wait_ready`).
        for p in &ports {
            let within = std::time::Duration::from_secs(5);
            harness_rtnl.wait_ready(p.harness_link.index, Readiness::Link, within)?;
            switch_rtnl.wait_ready(p.switch_link.index, Readiness::BridgePort, within)?;
        }

        // Read back after up: flags, MTU, the bridge's MAC (it takes a port's).
        for p in &mut ports {
            p.harness_link = harness_rtnl.link_by_name(&p.harness_link.name)?;
            p.switch_link = switch_rtnl.link_by_name(&p.switch_link.name)?;
        }
        let bridge = switch_rtnl.link_by_name(&bridge_name)?;
        let settings = switch_rtnl.bridge_settings(bridge.index)?;

        Ok(BridgeLab {
            harness_rtnl,
            switch_rtnl,
            config,
            bridge,
            settings,
            ports,
            sysctls,
            harness,
            switch,
        })
    }

    /// The configuration the lab was built from.
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }
    /// The harness namespace (the harness ends of every port, no address).
    pub fn harness(&self) -> &Namespace {
        &self.harness
    }
    /// The switch namespace (the bridge and its ports).
    pub fn switch(&self) -> &Namespace {
        &self.switch
    }
    /// The bridge device (name, ifindex, MAC at build time).
    pub fn bridge(&self) -> &LinkInfo {
        &self.bridge
    }
    /// The bridge options read back after the build (or the last change).
    pub fn settings(&self) -> BridgeSettings {
        self.settings
    }
    /// The ports, in order: port `i` is `ncf<k>h<i>` ↔ `ncf<k>s<i>`.
    pub fn ports(&self) -> &[BridgePort] {
        &self.ports
    }
    /// The port whose bridge end has interface index `ifindex`.
    pub fn port_of_ifindex(&self, ifindex: u32) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.switch_link.index == ifindex)
    }
    /// Every sysctl the lab set, in order (namespace, name, old, new).
    pub fn sysctls(&self) -> &[SysctlRecord] {
        &self.sysctls
    }
    /// rtnetlink in the harness namespace.
    pub fn harness_rtnl(&mut self) -> &mut Rtnl {
        &mut self.harness_rtnl
    }
    /// rtnetlink in the switch namespace.
    pub fn switch_rtnl(&mut self) -> &mut Rtnl {
        &mut self.switch_rtnl
    }

    /// Opens an AF_PACKET socket on the harness end of port `port`, inside the harness
    /// namespace.
    pub fn packet_socket(&self, port: usize) -> Result<PacketSocket, SandboxError> {
        let link = &self
            .ports
            .get(port)
            .ok_or_else(|| SandboxError::NoSuchInterface {
                namespace: self.harness.name().to_string(),
                interface: format!("port {port}"),
            })?
            .harness_link;
        let (name, index) = (link.name.clone(), link.index);
        self.harness.run(move || PacketSocket::open(&name, index))?
    }

    /// The bridge's forwarding database: the entries whose master is this bridge (learned,
    /// local and static; no `self` entries).
    pub fn fdb(&mut self) -> Result<Vec<BridgeFdbEntry>, SandboxError> {
        let bridge = self.bridge.index;
        Ok(self
            .switch_rtnl
            .bridge_fdb()?
            .into_iter()
            .filter(|e| e.master == Some(bridge) && !e.is_self())
            .collect())
    }

    /// Removes every learned entry.
    pub fn flush_fdb(&mut self) -> Result<(), SandboxError> {
        self.switch_rtnl.flush_bridge_fdb(self.bridge.index)
    }

    /// Sets the ageing time (centiseconds) and reads the options back.
    pub fn set_ageing(&mut self, centiseconds: u32) -> Result<BridgeSettings, SandboxError> {
        self.switch_rtnl
            .set_bridge_ageing(self.bridge.index, centiseconds)?;
        self.settings = self.switch_rtnl.bridge_settings(self.bridge.index)?;
        Ok(self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_entries_are_told_from_local_and_self_ones() {
        let e = |state, flags, master| BridgeFdbEntry {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ifindex: 3,
            master,
            state,
            flags,
            vlan: None,
            cacheinfo: None,
        };
        assert!(e(NudState::Reachable, NTF_MASTER, Some(2)).is_learned());
        assert!(e(NudState::Stale, NTF_MASTER, Some(2)).is_learned());
        assert!(!e(NudState::Permanent, NTF_MASTER, Some(2)).is_learned());
        assert!(!e(NudState::Noarp, NTF_MASTER, Some(2)).is_learned());
        assert!(!e(NudState::Permanent, NTF_SELF, None).is_learned());
        assert!(e(NudState::Permanent, NTF_SELF, None).is_self());
    }

    #[test]
    fn options_carry_the_settings() {
        let o = bridge_options(&BridgeSettings {
            stp: false,
            ageing_centiseconds: 100,
            multicast_snooping: false,
            group_forward_mask: 0,
        });
        assert!(o.contains(&InfoBridge::StpState(BridgeStpState::Disabled)));
        assert!(o.contains(&InfoBridge::AgeingTime(100)));
        assert!(o.contains(&InfoBridge::MulticastSnooping(false)));
    }
}
