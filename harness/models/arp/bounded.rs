//! A neighbour table that never flushes an entry and holds a fixed number of them, a new
//! address taking the slots in turn (round robin), as libslirp's (`src/arp_table.c`,
//! `ARP_TABLE_SIZE` 16 and `next_victim`).
//!
//! It runs on top of an [`ExpiringCache`] whose lifetime is [`NEVER`] (requests, their rate
//! limit and the waiting packets are the expiring cache's): an entry, once filled, is found
//! until an address that is not in the table is added while every slot is taken and the
//! round robin points at its slot. Nothing ages an entry, so nothing flushes an
//! out-of-date one: RFC 1122 §2.3.2.1 requires "a mechanism to flush out-of-date cache
//! entries", and such a table has none (the ARP suite fails the clause on it).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{ArpHost, ExpiringCache};
use crate::time::Duration;

/// The lifetime of an [`ExpiringCache`] whose entries are never flushed: longer than any
/// run (about 35 years), so an entry never expires in the model.
pub const NEVER: Duration = Duration::from_millis(1 << 40);

/// A table of at most [`BoundedTable::size`] resolved entries, replaced in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedTable {
    /// How many entries the table holds.
    pub size: usize,
}

/// The slots of a [`BoundedTable`] and where the round robin points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Slots {
    /// The addresses in the slots, in slot order (fewer than `size` until the table fills).
    taken: Vec<Ipv4Addr>,
    /// The slot the next new address takes (libslirp `next_victim`).
    next_victim: usize,
}

impl ExpiringCache {
    /// Whether the entries of this cache are never flushed (lifetime [`NEVER`]).
    pub fn never_expires(&self) -> bool {
        self.lifetime >= NEVER
    }
}

impl ArpHost {
    /// The host with its resolved entries kept in `table` (see the module doc).
    pub fn with_bounded_table(mut self, table: BoundedTable) -> ArpHost {
        self.bounded = Some(table);
        self
    }

    /// The bounded table, if the host has one.
    pub fn bounded_table(&self) -> Option<BoundedTable> {
        self.bounded
    }

    /// `ip` is about to be filled: when it has no slot, it takes the round robin's, and the
    /// entry that held that slot (if any) is gone (libslirp `arp_table_add`).
    pub(super) fn bounded_admit(&mut self, ip: Ipv4Addr) {
        let Some(table) = self.bounded else { return };
        let size = table.size.max(1);
        let slots = &mut self.slots;
        if slots.taken.contains(&ip) {
            return;
        }
        let victim = slots.next_victim;
        slots.next_victim = (victim + 1) % size;
        if victim < slots.taken.len() {
            // A slotted entry is resolved, so no packet waits on it: it simply goes.
            let old = std::mem::replace(&mut slots.taken[victim], ip);
            self.entries.remove(&old);
        } else {
            slots.taken.push(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::arp::{
        ArpAccept, ArpIgnore, ArpIn, ArpParams, ArpPolicy, Delivery, HostConfig, Nud,
    };
    use crate::models::profile::Deviation as _;
    use crate::time::Instant;
    use crate::wire::MacAddr;

    fn host(size: usize) -> ArpHost {
        let lifetime = NEVER;
        let config = HostConfig {
            mac: MacAddr([0x52, 0x55, 10, 77, 0, 2]),
            addr: Ipv4Addr::new(10, 77, 0, 2),
            prefix_len: 24,
            gateway: None,
            forwarding: false,
            policy: ArpPolicy {
                accept: ArpAccept::Always,
                ignore: ArpIgnore::Any,
            },
            params: ArpParams {
                reachable: lifetime,
                base_reachable: lifetime,
                retrans: Duration::ZERO,
                delay_probe: Duration::ZERO,
                locktime: Duration::ZERO,
                ucast_probes: 0,
                mcast_probes: 1,
                app_probes: 0,
                mcast_reprobes: 0,
                tick: Duration::from_millis(1),
                timer_floor: Duration::from_millis(1),
            },
            expiring: Some(ExpiringCache {
                lifetime,
                refreshed_by_traffic: false,
                request_interval: Duration::ZERO,
                rate_limit_per_address: true,
                queue: true,
                timed: None,
            }),
            rfc4861: None,
            tick_nud: None,
        };
        ArpHost::new(
            config,
            crate::models::arp::ArpDeviation::profile(crate::models::profile::ProfileName::Rfc),
        )
        .with_bounded_table(BoundedTable { size })
    }

    fn reply_from(h: &mut ArpHost, at_ms: u64, octet: u8) {
        let arp = ArpIn::new(
            2,
            MacAddr([2, 0, 0, 0, 0, octet]),
            Ipv4Addr::new(10, 77, 0, octet),
            h.config().mac,
            h.config().addr,
        );
        h.receive(Instant::from_millis(at_ms), Delivery::Unicast, &arp);
    }

    fn cached(h: &ArpHost) -> Vec<u8> {
        h.entries()
            .into_iter()
            .filter(|e| e.state == Nud::Reachable)
            .map(|e| e.ip.octets()[3])
            .collect()
    }

    #[test]
    fn entries_never_expire() {
        let mut h = host(16);
        reply_from(&mut h, 0, 1);
        h.advance(Instant::from_millis(10 * 24 * 3600 * 1000));
        assert_eq!(cached(&h), vec![1]);
        assert!(h.config().expiring.expect("expiring").never_expires());
    }

    #[test]
    fn a_full_table_replaces_its_slots_in_turn_whatever_their_use() {
        let mut h = host(3);
        for (t, octet) in [1u8, 3, 4].into_iter().enumerate() {
            reply_from(&mut h, t as u64, octet);
        }
        assert_eq!(cached(&h), vec![1, 3, 4]);
        // An update of a known address takes no slot and moves no victim.
        reply_from(&mut h, 5, 1);
        assert_eq!(cached(&h), vec![1, 3, 4]);
        // The fourth address takes slot 0 (the first made, however recently updated).
        reply_from(&mut h, 6, 5);
        assert_eq!(cached(&h), vec![3, 4, 5]);
        reply_from(&mut h, 7, 6);
        assert_eq!(cached(&h), vec![4, 5, 6]);
    }
}
