//! The neighbour state machine of a stack that runs Linux's NUD states on one coarse
//! periodic maintenance pass, with timers in whole seconds: PyTCP (pmd-pytcp 0.3.8,
//! `lib/neighbor.py`, `runtime/packet_handler/packet_handler__arp__rx.py`). See
//! [`TickNud`] for the rules and where they part from Linux's and from the RFCs.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{
    ArpDeviation, ArpHost, ArpIn, Delivery, Entry, Nud, Output, Packet, Timed, d_of, instant_of,
};
use crate::time::Instant;
use crate::wire::MacAddr;

/// Linux's neighbour states run by one maintenance pass every [`crate::models::arp::ArpParams::tick`]
/// (PyTCP `NeighborCache.run_maintenance_once`, every 100 ms: `runtime/subsystem.py:42`),
/// each transition on the first pass at which the entry's age in its state reached the
/// timer (`lib/neighbor.py:448-507`). The timers are the params' (`reachable` is the base
/// itself: no random factor, `lib/neighbor__constants.py:65-71`):
///
/// - a packet for an address without an entry makes it INCOMPLETE and sends a broadcast
///   request at once (probe 1); the packet waits (at most [`TickNud::queue_len`], the
///   oldest dropped). Each pass at least `retrans` after the last request sends another,
///   while fewer than `mcast_probes` went; the pass after the last one makes the entry
///   FAILED and drops its waiting packets (`:485-488`: Linux waits a retransmission time
///   more). A FAILED entry stays (no garbage collection below 128 entries); the next
///   packet for it starts over (`:245-263`);
/// - REACHABLE becomes STALE `reachable` after it was entered; a packet sent to a STALE
///   entry makes it DELAY (the packet goes); DELAY becomes PROBE `delay_probe` later with
///   a unicast request to the cached MAC (target hardware address zero), then one per
///   `retrans` while fewer than `ucast_probes` went, and the pass after the last makes it
///   FAILED (it keeps its MAC); REACHABLE, DELAY and PROBE entries are used as they are;
/// - every ARP packet that passes the parser's checks, from a sender on one of the
///   stack's subnets that is not the stack itself, sent to the stack's MAC or broadcast,
///   makes the sender's entry REACHABLE with its MAC, new or not, whatever the packet
///   (a request, for the stack or not, a gratuitous packet, a reply solicited or not),
///   and sends what waited for it (`packet_handler__arp__rx.py:93-128`,
///   `lib/neighbor.py:267-313`): no locktime;
/// - a request for the stack's address is answered (`arp.ignore` 0), a probe (sender
///   0.0.0.0) too; the parser drops a packet whose sender MAC is zero, multicast or
///   broadcast, whose sender address is loopback, multicast or 255.255.255.255 (or 0.0.0.0
///   in a reply), and whose target address is multicast or 255.255.255.255
///   (`pmd_net_proto/protocols/arp/arp__parser.py:77-170`).
///
/// Where this departs from the RFC text the model judges by (its [`ArpHost`] profile), the
/// model notes it ([`ArpHost::departures`]) and the driver fails the check on that clause
/// once the exchange has shown the stack doing it: an entry made for a sender by a packet
/// whose target protocol address is not the stack's (RFC 826 adds the triplet only when
/// "Am I the target protocol address? Yes"), and a request from the subnet's broadcast
/// address answered and its sender cached (RFC 1122 §3.2.1.3, unless the profile accepts
/// [`ArpDeviation::AnswersSubnetBroadcastSender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickNud {
    /// Packets kept per unresolved address (PyTCP `neighbor.unres_qlen`, 64).
    pub queue_len: usize,
}

/// What RFC text a departure breaks: the clause id of `harness/suites/arp` and its source.
pub const RECEPTION_ID: &str = "rfc826-reception";

impl ArpHost {
    /// The departures from the RFC text the model saw the host make so far (clause id,
    /// what it did), in order. Only [`TickNud`] notes them; the driver fails on them once
    /// the stack agreed with the model.
    pub fn departures(&self) -> &[(&'static str, String)] {
        &self.departures
    }

    /// [`TickNud`]: `find_entry` and the send path around it.
    pub(super) fn tick_output(
        &mut self,
        hop: Ipv4Addr,
        packet: Packet,
        n: TickNud,
        out: &mut Vec<Timed>,
    ) {
        let now = self.now;
        let p = self.config.params;
        let Some(e) = self.entries.get_mut(&hop) else {
            let mut e = self.new_entry(Nud::Incomplete);
            e.probes = 1;
            e.timer = Some(now + d_of(p.retrans));
            e.queue.push(packet);
            self.entries.insert(hop, e);
            self.broadcast_request(hop, out);
            return;
        };
        match e.state {
            Nud::Incomplete => {
                if e.queue.len() >= n.queue_len.max(1) {
                    e.queue.remove(0);
                    self.dropped_waiting += 1;
                }
                e.queue.push(packet);
            }
            Nud::Failed => {
                e.state = Nud::Incomplete;
                e.updated = now;
                e.probes = 1;
                e.mac = None;
                e.timer = Some(now + d_of(p.retrans));
                e.queue.push(packet);
                self.broadcast_request(hop, out);
            }
            state => {
                if state == Nud::Stale {
                    e.state = Nud::Delay;
                    e.updated = now;
                    e.timer = Some(now + d_of(p.delay_probe));
                }
                let mac = e.mac.unwrap_or(MacAddr::ZERO);
                self.emit(
                    out,
                    Output::Transmit {
                        packet,
                        next_hop: hop,
                        dst_mac: mac,
                    },
                );
            }
        }
    }

    /// [`TickNud`]: the maintenance pass that found the entry's timer run out, at
    /// `self.now`.
    pub(super) fn tick_timer(&mut self, ip: Ipv4Addr, out: &mut Vec<Timed>) {
        let now = self.now;
        let p = self.config.params;
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        e.timer = None;
        let (max, eth_dst) = match e.state {
            Nud::Reachable => {
                e.state = Nud::Stale;
                e.updated = now;
                return;
            }
            Nud::Delay => {
                e.state = Nud::Probe;
                e.updated = now;
                e.probes = 0;
                (p.ucast_probes, e.mac.unwrap_or(MacAddr::ZERO))
            }
            Nud::Probe => (p.ucast_probes, e.mac.unwrap_or(MacAddr::ZERO)),
            Nud::Incomplete => (p.mcast_probes, MacAddr::BROADCAST),
            _ => return,
        };
        if e.probes >= max {
            // The pass after the last request: FAILED, the waiting packets dropped.
            let dropped = e.queue.len() as u32;
            e.queue.clear();
            e.state = Nud::Failed;
            e.updated = now;
            self.dropped_waiting += dropped;
            return;
        }
        e.probes += 1;
        e.updated = now;
        // The pass after the last request fails the entry; before it, the next request
        // goes a retransmission time after this one.
        e.timer = Some(if e.probes >= max {
            now
        } else {
            now + d_of(p.retrans)
        });
        self.emit(
            out,
            Output::Request {
                target: ip,
                eth_dst,
                sender_ip: self.config.addr,
            },
        );
    }

    /// [`TickNud`]: an ARP packet arrives (PyTCP's parser, then `_phrx_arp`).
    pub(super) fn tick_arp(&mut self, delivery: Delivery, arp: &ArpIn, out: &mut Vec<Timed>) {
        let cfg = self.config.clone();
        if delivery == Delivery::OtherHost || delivery == Delivery::Multicast {
            self.discard(out, "ARP frame for another station's MAC".into());
            return;
        }
        let bad = if arp.truncated {
            Some("ARP body shorter than 28 bytes".to_string())
        } else if arp.hw_type != 1 || arp.proto_type != 0x0800 {
            Some(format!(
                "ARP for hardware {} / protocol {:#06x}",
                arp.hw_type, arp.proto_type
            ))
        } else if arp.hw_len != 6 || arp.proto_len != 4 {
            Some(format!(
                "ARP with address lengths {}/{}",
                arp.hw_len, arp.proto_len
            ))
        } else if !matches!(arp.op, 1 | 2) {
            Some(format!("ARP operation {}", arp.op))
        } else if arp.sha == MacAddr::ZERO || arp.sha.0[0] & 1 == 1 {
            Some(format!("ARP sender hardware address {}", arp.sha))
        } else if (arp.op == 2 && arp.spa.is_unspecified())
            || arp.spa.is_loopback()
            || arp.spa.is_multicast()
            || arp.spa.is_broadcast()
        {
            Some(format!("ARP sender address {}", arp.spa))
        } else if arp.tpa.is_multicast() || arp.tpa.is_broadcast() {
            Some(format!("ARP target address {}", arp.tpa))
        } else {
            None
        };
        if let Some(why) = bad {
            self.discard(out, format!("{why}: dropped by the parser"));
            return;
        }
        let own_sender = arp.spa == cfg.addr;
        let is_request = arp.op == 1;
        if arp.sha == cfg.mac && (own_sender || (is_request && arp.spa.is_unspecified())) {
            self.discard(out, "our own ARP looped back".into());
            return;
        }
        let subnet_broadcast = arp.spa == cfg.subnet_broadcast() && !arp.spa.is_unspecified();
        let gratuitous = is_request
            && delivery == Delivery::Broadcast
            && arp.spa == arp.tpa
            && arp.tha == MacAddr::ZERO;
        if is_request && !gratuitous && arp.tpa == cfg.addr && !self.ignore(arp.spa, arp.tpa) {
            self.emit(
                out,
                Output::Reply {
                    to_mac: arp.sha,
                    to_ip: arp.spa,
                    for_ip: arp.tpa,
                },
            );
            if subnet_broadcast && !self.profile.has(ArpDeviation::AnswersSubnetBroadcastSender) {
                self.departures.push((
                    "rfc1122-3.2.1.3-broadcast-source",
                    format!(
                        "RFC 1122 §3.2.1.3 (a directed broadcast address MUST NOT be used as a source address): answered a request from {} (the subnet's broadcast address) at {}",
                        arp.spa, arp.sha
                    ),
                ));
            }
        }
        // `__update_arp_cache`: a sender on our subnet, not ourselves, to our MAC or
        // broadcast.
        if !cfg.on_link(arp.spa) || own_sender {
            self.discard(out, format!("ARP from {}: not cached", arp.spa));
            return;
        }
        let existed = self.entries.contains_key(&arp.spa);
        if !existed && arp.tpa != cfg.addr {
            self.departures.push((
                RECEPTION_ID,
                format!(
                    "RFC 826 Packet Reception (the sender is added only when \"Am I the target protocol address? Yes\"): an {} from {} at {} for {}, not the stack's address, created an entry",
                    if is_request { "ARP request" } else { "ARP reply" },
                    arp.spa,
                    arp.sha,
                    arp.tpa
                ),
            ));
        }
        if subnet_broadcast && !existed {
            self.departures.push((
                "rfc1122-3.2.1.3-broadcast-source",
                format!(
                    "RFC 1122 §3.2.1.3: cached {} (the subnet's broadcast address) at {}",
                    arp.spa, arp.sha
                ),
            ));
        }
        self.tick_add(arp.spa, arp.sha, out);
    }

    /// [`TickNud`]: `_add_entry`: REACHABLE with `mac`, created or not, and what waited
    /// for it sent.
    fn tick_add(&mut self, ip: Ipv4Addr, mac: MacAddr, out: &mut Vec<Timed>) {
        let now = self.now;
        let p = self.config.params;
        let e = self
            .entries
            .entry(ip)
            .or_insert_with(|| Entry::new(Nud::Reachable, now));
        e.state = Nud::Reachable;
        e.mac = Some(mac);
        e.probes = 0;
        e.updated = now;
        e.confirmed = now;
        e.timer = Some(now + d_of(p.reachable));
        let queue = std::mem::take(&mut e.queue);
        for packet in queue {
            self.emit(
                out,
                Output::Transmit {
                    packet,
                    next_hop: ip,
                    dst_mac: mac,
                },
            );
        }
    }

    /// [`TickNud`]: the instants where an input concerning `ip` races a pass: its timer,
    /// and when its timer last ran.
    pub(super) fn tick_critical(&self, ip: Ipv4Addr) -> Vec<Instant> {
        let mut out: Vec<Instant> = self
            .last_runs
            .get(&ip)
            .map(|t| instant_of(*t))
            .into_iter()
            .collect();
        if let Some(t) = self.entries.get(&ip).and_then(|e| e.timer) {
            out.push(instant_of(t + self.tick()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ArpHost, ArpIn, ArpParams, ArpProfile, Delivery, HostConfig, Nud};
    use super::super::{ArpPolicy, Output, Packet, PacketId, Timed};
    use super::*;
    use crate::time::Duration;

    const A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
    const C: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 3);
    const OWN: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const B_MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x22]);

    fn s(v: u64) -> Duration {
        Duration::from_millis(v * 1000)
    }

    fn host() -> ArpHost {
        let params = ArpParams {
            reachable: s(2),
            base_reachable: s(2),
            retrans: s(1),
            delay_probe: s(1),
            locktime: Duration::ZERO,
            ucast_probes: 3,
            mcast_probes: 3,
            app_probes: 0,
            mcast_reprobes: 0,
            tick: Duration::from_millis(100),
            timer_floor: Duration::ZERO,
        };
        ArpHost::new(
            HostConfig {
                mac: OWN,
                addr: A,
                prefix_len: 24,
                gateway: None,
                forwarding: false,
                policy: ArpPolicy::default(),
                params,
                expiring: None,
                rfc4861: None,
                tick_nud: Some(TickNud { queue_len: 2 }),
            },
            ArpProfile::rfc(),
        )
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn wire(out: &[Timed]) -> Vec<(u64, Output)> {
        out.iter()
            .filter(|t| t.output.on_wire())
            .map(|t| (t.at.total_millis(), t.output.clone()))
            .collect()
    }

    fn echo(n: u32, to: Ipv4Addr) -> Packet {
        Packet {
            id: PacketId::Local(n),
            src: A,
            dst: to,
        }
    }

    fn request(target: Ipv4Addr, eth_dst: MacAddr) -> Output {
        Output::Request {
            target,
            eth_dst,
            sender_ip: A,
        }
    }

    #[test]
    fn an_unanswered_resolution_fails_on_the_pass_after_its_third_request() {
        let mut h = host();
        let mut out = h.send(at(0), echo(1, B));
        out.extend(h.send(at(10), echo(2, B)));
        out.extend(h.send(at(20), echo(3, B)));
        out.extend(h.advance(at(2_250)));
        // At once, then on a pass at most 100 ms after each retransmission time.
        assert_eq!(
            wire(&out),
            vec![
                (0, request(B, MacAddr::BROADCAST)),
                (1_100, request(B, MacAddr::BROADCAST)),
                (2_200, request(B, MacAddr::BROADCAST)),
            ]
        );
        assert_eq!(h.entry(B).map(|e| e.state), Some(Nud::Incomplete));
        // The pass after the third request, not a retransmission time later (Linux: 3.3 s).
        h.advance(at(2_300));
        assert_eq!(h.entry(B).map(|e| e.state), Some(Nud::Failed));
        // Three waited, the queue holds two: one dropped at the third, two at FAILED.
        assert_eq!(h.dropped_waiting(), 3);
    }

    #[test]
    fn an_unanswered_poll_fails_keeping_the_mac() {
        let mut h = host();
        let req = ArpIn::new(1, B_MAC, B, MacAddr::ZERO, A);
        let out = h.receive(at(0), Delivery::Broadcast, &req);
        assert_eq!(wire(&out).len(), 1, "the reply");
        assert_eq!(h.entry(B).map(|e| e.state), Some(Nud::Reachable));
        h.advance(at(2_100));
        assert_eq!(h.entry(B).map(|e| e.state), Some(Nud::Stale));
        let out = h.send(at(3_000), echo(1, B));
        assert_eq!(wire(&out).len(), 1, "sent to the cached MAC");
        let out = h.advance(at(7_000));
        assert_eq!(
            wire(&out),
            vec![
                (4_100, request(B, B_MAC)),
                (5_200, request(B, B_MAC)),
                (6_300, request(B, B_MAC)),
            ]
        );
        let e = h.entry(B).expect("kept");
        assert_eq!((e.state, e.mac), (Nud::Failed, Some(B_MAC)));
        assert!(h.departures().is_empty(), "{:?}", h.departures());
    }

    #[test]
    fn any_arp_from_the_subnet_makes_the_sender_reachable_with_no_locktime() {
        let mut h = host();
        h.send(at(0), echo(1, B));
        let reply = ArpIn::new(2, B_MAC, B, OWN, A);
        let out = h.receive(at(5), Delivery::Unicast, &reply);
        assert_eq!(wire(&out).len(), 1, "the queued packet");
        // A different MAC 10 ms later is taken at once.
        let reply = ArpIn::new(2, B_MAC2, B, OWN, A);
        h.receive(at(15), Delivery::Unicast, &reply);
        assert_eq!(h.entry(B).and_then(|e| e.mac), Some(B_MAC2));
        assert!(h.departures().is_empty());
        // A request for another address creates an entry: a departure from RFC 826.
        let other = ArpIn::new(1, B_MAC, C, MacAddr::ZERO, Ipv4Addr::new(10, 9, 0, 200));
        let out = h.receive(at(20), Delivery::Broadcast, &other);
        assert!(wire(&out).is_empty());
        assert_eq!(h.entry(C).map(|e| e.state), Some(Nud::Reachable));
        assert_eq!(h.departures().len(), 1);
        assert_eq!(h.departures()[0].0, RECEPTION_ID);
        // The parser drops a broadcast sender MAC.
        let bad = ArpIn::new(1, MacAddr::BROADCAST, B, MacAddr::ZERO, A);
        assert!(wire(&h.receive(at(30), Delivery::Broadcast, &bad)).is_empty());
        assert_eq!(h.entry(B).and_then(|e| e.mac), Some(B_MAC2));
    }
}
