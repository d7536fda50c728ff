//! Neighbour-table parameters (`RTM_GETNEIGHTBL` / `RTM_SETNEIGHTBL`, what
//! `ip ntable show|change` does): per-interface ARP timers in milliseconds, the reachable
//! time the kernel drew at random, and the table-wide counters that decide garbage
//! collection.
//!
//! Netlink takes every time in milliseconds (the sysctls mix seconds and USER_HZ ticks), and
//! the kernel stores them in jiffies: what it reads back is the value it really uses.

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::neighbour_table::{
    NeighbourTableAttribute, NeighbourTableMessage, NeighbourTableParameter,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use super::{Rtnl, SandboxError};

/// The ARP table's name in the kernel.
const ARP_TABLE: &str = "arp_cache";

/// The neighbour parameters of one interface, as the kernel reports them (times in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NeighbourParams {
    /// Interface index.
    pub ifindex: u32,
    /// The reachable time the kernel drew in [base/2, 3·base/2) (`NDTPA_REACHABLE_TIME`).
    pub reachable_ms: u64,
    /// `base_reachable_time`.
    pub base_reachable_ms: u64,
    /// `retrans_time`: spacing of solicitations.
    pub retrans_ms: u64,
    /// `delay_first_probe_time`.
    pub delay_probe_ms: u64,
    /// `gc_stale_time`.
    pub gc_stale_ms: u64,
    /// `locktime`: how long the first answer is kept against a different one.
    pub locktime_ms: u64,
    /// `ucast_solicit`: unicast probes before giving up (PROBE) or before broadcasting.
    pub ucast_probes: u32,
    /// `mcast_solicit`: broadcast solicitations while INCOMPLETE.
    pub mcast_probes: u32,
    /// `app_solicit`: solicitations handed to a user-space daemon.
    pub app_probes: u32,
    /// `mcast_resolicit`: broadcasts after the unicast probes in PROBE.
    pub mcast_reprobes: u32,
}

/// What to change in an interface's neighbour parameters (`None`: leave as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NeighbourParamsUpdate {
    /// `base_reachable_time`, ms (the kernel draws a new reachable time from it).
    pub base_reachable_ms: Option<u64>,
    /// `retrans_time`, ms.
    pub retrans_ms: Option<u64>,
    /// `delay_first_probe_time`, ms.
    pub delay_probe_ms: Option<u64>,
    /// `gc_stale_time`, ms.
    pub gc_stale_ms: Option<u64>,
    /// `locktime`, ms.
    pub locktime_ms: Option<u64>,
    /// `ucast_solicit`.
    pub ucast_probes: Option<u32>,
    /// `mcast_solicit`.
    pub mcast_probes: Option<u32>,
    /// `app_solicit`.
    pub app_probes: Option<u32>,
    /// `mcast_resolicit`.
    pub mcast_reprobes: Option<u32>,
}

/// Table-wide facts of the ARP table: the kernel keeps one table for every namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourTableInfo {
    /// Entries in the table, all namespaces together (`ndtc_entries`).
    pub entries: u32,
    /// `gc_thresh1`: below this many entries the periodic collector removes nothing.
    pub gc_thresh1: u32,
    /// Periodic garbage-collection runs so far (`ndts_periodic_gc_runs`).
    pub periodic_gc_runs: u64,
}

impl Rtnl {
    /// Dumps the ARP table's messages (one for the table, one per interface).
    fn arp_table_dump(&mut self) -> Result<Vec<NeighbourTableMessage>, SandboxError> {
        let mut msg = NeighbourTableMessage::default();
        msg.header.family = AddressFamily::Inet;
        let answers = self.request(
            "dump neighbour tables",
            RouteNetlinkMessage::GetNeighbourTable(msg),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbourTable(t) => Some(t),
                _ => None,
            })
            .filter(|t| {
                t.attributes
                    .iter()
                    .any(|a| matches!(a, NeighbourTableAttribute::Name(n) if n == ARP_TABLE))
            })
            .collect())
    }

    /// The ARP parameters of interface `ifindex`.
    pub fn neighbour_params(&mut self, ifindex: u32) -> Result<NeighbourParams, SandboxError> {
        for table in self.arp_table_dump()? {
            for attr in &table.attributes {
                let NeighbourTableAttribute::Parms(params) = attr else {
                    continue;
                };
                if !params.contains(&NeighbourTableParameter::Ifindex(ifindex)) {
                    continue;
                }
                let mut out = NeighbourParams {
                    ifindex,
                    ..NeighbourParams::default()
                };
                for p in params {
                    use NeighbourTableParameter as P;
                    match *p {
                        P::ReachableTime(v) => out.reachable_ms = v,
                        P::BaseReachableTime(v) => out.base_reachable_ms = v,
                        P::RetransTime(v) => out.retrans_ms = v,
                        P::DelayProbeTime(v) => out.delay_probe_ms = v,
                        P::GcStaletime(v) => out.gc_stale_ms = v,
                        P::Locktime(v) => out.locktime_ms = v,
                        P::UcastProbes(v) => out.ucast_probes = v,
                        P::McastProbes(v) => out.mcast_probes = v,
                        P::AppProbes(v) => out.app_probes = v,
                        P::McastReprobes(v) => out.mcast_reprobes = v,
                        _ => {}
                    }
                }
                return Ok(out);
            }
        }
        Err(SandboxError::NetlinkIo {
            namespace: self.namespace().to_string(),
            op: format!("read ARP parameters of interface {ifindex}"),
            detail: "the kernel reported no parameters for this interface".into(),
        })
    }

    /// Changes the ARP parameters of interface `ifindex` (`ip ntable change name arp_cache
    /// dev …`) and returns them as the kernel now reports them.
    pub fn set_neighbour_params(
        &mut self,
        ifindex: u32,
        update: &NeighbourParamsUpdate,
    ) -> Result<NeighbourParams, SandboxError> {
        use NeighbourTableParameter as P;
        let mut params = vec![P::Ifindex(ifindex)];
        let u = update;
        params.extend(u.base_reachable_ms.map(P::BaseReachableTime));
        params.extend(u.retrans_ms.map(P::RetransTime));
        params.extend(u.delay_probe_ms.map(P::DelayProbeTime));
        params.extend(u.gc_stale_ms.map(P::GcStaletime));
        params.extend(u.locktime_ms.map(P::Locktime));
        params.extend(u.ucast_probes.map(P::UcastProbes));
        params.extend(u.mcast_probes.map(P::McastProbes));
        params.extend(u.app_probes.map(P::AppProbes));
        params.extend(u.mcast_reprobes.map(P::McastReprobes));
        let mut msg = NeighbourTableMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.attributes
            .push(NeighbourTableAttribute::Name(ARP_TABLE.into()));
        msg.attributes.push(NeighbourTableAttribute::Parms(params));
        self.request(
            &format!("set ARP parameters of interface {ifindex}"),
            RouteNetlinkMessage::SetNeighbourTable(msg),
            0,
        )?;
        self.neighbour_params(ifindex)
    }

    /// Table-wide facts of the ARP table (entries of all namespaces, `gc_thresh1`, GC runs).
    pub fn neighbour_table_info(&mut self) -> Result<NeighbourTableInfo, SandboxError> {
        let mut info = None;
        for table in self.arp_table_dump()? {
            let mut entries = None;
            let mut thresh1 = None;
            let mut runs = 0;
            for attr in &table.attributes {
                match attr {
                    NeighbourTableAttribute::Config(c) => entries = Some(c.entries),
                    NeighbourTableAttribute::Threshold1(t) => thresh1 = Some(*t),
                    NeighbourTableAttribute::Stats(s) => runs = s.periodic_gc_runs,
                    _ => {}
                }
            }
            if let (Some(entries), Some(gc_thresh1)) = (entries, thresh1) {
                info = Some(NeighbourTableInfo {
                    entries,
                    gc_thresh1,
                    periodic_gc_runs: runs,
                });
            }
        }
        info.ok_or_else(|| SandboxError::NetlinkIo {
            namespace: self.namespace().to_string(),
            op: "read the ARP table's configuration".into(),
            detail: "no table message with NDTA_CONFIG and NDTA_THRESH1".into(),
        })
    }
}
