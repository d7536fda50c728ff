//! A host with exactly one neighbour and no ARP table (`[arp.one_neighbour]`: passt).
//!
//! Read first: RFC 826 (Packet Reception), RFC 1122 §2.3.2.1, RFC 5227 §2.1.1 and §2.3; then
//! passt's `tap.c` (`tap_handler_passt`, `tap4_handler`, `tap_push_l2h`) and `arp.c`.
//!
//! Such a host keeps one MAC, its neighbour's: the Ethernet source of the last frame it
//! received, of any EtherType and before it looks at the frame's content; and one IPv4
//! address to send to, the source of the last IPv4 packet it took (not 0.0.0.0). Every
//! frame it sends goes to that MAC, every packet it originates to that address; it never
//! asks. It answers an Ethernet/IPv4 ARP request for any address but its neighbour's own,
//! with its own MAC, unicast to the request's Ethernet source; it discards an announcement
//! (sender address equal to the target, not 0.0.0.0) when declared so; every other ARP
//! packet (a reply, another operation, hardware type, protocol or length, a truncated body)
//! changes nothing but the MAC, as every frame does.
//!
//! Sans-IO: inputs are what arrived (`handle_*`), outputs what the host sends; no time (the
//! host has no ARP timer).

use std::net::Ipv4Addr;

use crate::models::arp::ArpIn;
use crate::wire::MacAddr;

/// What the host is and what it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneNeighbourConfig {
    /// The host's MAC (passt: its template interface's).
    pub mac: MacAddr,
    /// The neighbour's configured address (passt: `-a`, `c->ip4.addr`): the one address
    /// whose requests are not answered, and the address to send to until an IPv4 packet
    /// arrived.
    pub neighbour_addr: Ipv4Addr,
    /// The neighbour's MAC before any frame arrived (passt: broadcast).
    pub initial_mac: MacAddr,
    /// Announcements are answered (passt: no).
    pub answers_announcements: bool,
}

/// An ARP reply the host sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpReplyOut {
    /// Ethernet destination: the request's Ethernet source.
    pub eth_dst: MacAddr,
    /// Sender hardware address: the host's MAC.
    pub sha: MacAddr,
    /// Sender protocol address: the request's target.
    pub spa: Ipv4Addr,
    /// Target hardware address: the request's sender hardware address.
    pub tha: MacAddr,
    /// Target protocol address: the request's sender protocol address.
    pub tpa: Ipv4Addr,
}

/// Where a packet the host originates goes: its one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// The Ethernet destination.
    pub mac: MacAddr,
    /// The IPv4 destination of a packet the host itself addresses to its neighbour (a
    /// connection from its host side, an echo reply).
    pub addr: Ipv4Addr,
}

/// The host's state: one MAC, one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneNeighbour {
    config: OneNeighbourConfig,
    mac: MacAddr,
    addr: Ipv4Addr,
    /// A frame has arrived: the MAC is one the neighbour sent from, not the initial one.
    learned: bool,
}

impl OneNeighbour {
    /// The host before any frame arrived.
    pub fn new(config: OneNeighbourConfig) -> OneNeighbour {
        OneNeighbour {
            mac: config.initial_mac,
            addr: config.neighbour_addr,
            learned: false,
            config,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &OneNeighbourConfig {
        &self.config
    }

    /// Where the next packet it originates goes.
    pub fn next_hop(&self) -> NextHop {
        NextHop {
            mac: self.mac,
            addr: self.addr,
        }
    }

    /// A frame arrived from `eth_src` (any frame of a valid length: passt looks at nothing
    /// else first).
    pub fn handle_frame(&mut self, eth_src: MacAddr) {
        self.mac = eth_src;
        self.learned = true;
    }

    /// Whether a frame has arrived: until then the host sends to its initial MAC, which
    /// no frame from the neighbour gave it (it never asks).
    pub fn learned(&self) -> bool {
        self.learned
    }

    /// A well-formed IPv4 packet from `src` arrived (after [`OneNeighbour::handle_frame`]).
    pub fn handle_ipv4(&mut self, src: Ipv4Addr) {
        if !src.is_unspecified() {
            self.addr = src;
        }
    }

    /// An ICMP echo request arrived (after [`OneNeighbour::handle_ipv4`]): the reply goes
    /// to the neighbour, at the address the host sends to.
    pub fn handle_echo_request(&self) -> NextHop {
        self.next_hop()
    }

    /// An ARP packet arrived from `eth_src` (after [`OneNeighbour::handle_frame`]): the
    /// reply it sends, if any.
    pub fn handle_arp(&self, eth_src: MacAddr, arp: &ArpIn) -> Option<ArpReplyOut> {
        if arp.truncated
            || arp.hw_type != 1
            || arp.proto_type != 0x0800
            || arp.hw_len != 6
            || arp.proto_len != 4
            || arp.op != 1
        {
            return None;
        }
        let announcement = !arp.spa.is_unspecified() && arp.spa == arp.tpa;
        if announcement && !self.config.answers_announcements {
            return None;
        }
        if arp.tpa == self.config.neighbour_addr {
            return None;
        }
        Some(ArpReplyOut {
            eth_dst: eth_src,
            sha: self.config.mac,
            spa: arp.tpa,
            tha: arp.sha,
            tpa: arp.spa,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);
    const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
    const GUEST: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    fn passt() -> OneNeighbour {
        OneNeighbour::new(OneNeighbourConfig {
            mac: HOST,
            neighbour_addr: GUEST,
            initial_mac: MacAddr::BROADCAST,
            answers_announcements: false,
        })
    }

    #[test]
    fn the_one_entry_is_the_source_of_the_last_frame_and_never_asked_for() {
        let mut h = passt();
        assert!(!h.learned());
        assert_eq!(
            h.next_hop(),
            NextHop {
                mac: MacAddr::BROADCAST,
                addr: GUEST
            }
        );
        h.handle_frame(A);
        assert!(h.learned());
        h.handle_ipv4(Ipv4Addr::new(10, 77, 0, 3));
        assert_eq!(h.handle_echo_request().mac, A);
        assert_eq!(h.next_hop().addr, Ipv4Addr::new(10, 77, 0, 3));
        // Any frame moves it, an ARP reply as much as a request; 0.0.0.0 is no address.
        h.handle_frame(B);
        h.handle_ipv4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(h.next_hop().mac, B);
        assert_eq!(h.next_hop().addr, Ipv4Addr::new(10, 77, 0, 3));
    }

    #[test]
    fn requests_are_answered_for_every_address_but_the_neighbours() {
        let h = passt();
        let request = |spa, tpa| ArpIn::new(1, A, spa, MacAddr::ZERO, tpa);
        let r = h
            .handle_arp(B, &request(GUEST, GATEWAY))
            .expect("for the gateway");
        assert_eq!(
            r,
            ArpReplyOut {
                eth_dst: B,
                sha: HOST,
                spa: GATEWAY,
                tha: A,
                tpa: GUEST
            }
        );
        let nobody = Ipv4Addr::new(10, 77, 0, 200);
        assert!(h.handle_arp(A, &request(GUEST, nobody)).is_some());
        assert!(h.handle_arp(A, &request(GATEWAY, GUEST)).is_none());
        // An announcement is not answered, a probe is.
        assert!(h.handle_arp(A, &request(nobody, nobody)).is_none());
        assert!(
            h.handle_arp(A, &request(Ipv4Addr::UNSPECIFIED, GATEWAY))
                .is_some()
        );
        // Only an Ethernet/IPv4 request of full length.
        for bad in [
            ArpIn {
                op: 2,
                ..request(GUEST, GATEWAY)
            },
            ArpIn {
                hw_type: 7,
                ..request(GUEST, GATEWAY)
            },
            ArpIn {
                proto_type: 0x86dd,
                ..request(GUEST, GATEWAY)
            },
            ArpIn {
                hw_len: 8,
                ..request(GUEST, GATEWAY)
            },
            ArpIn {
                proto_len: 16,
                ..request(GUEST, GATEWAY)
            },
            ArpIn {
                truncated: true,
                ..request(GUEST, GATEWAY)
            },
        ] {
            assert!(h.handle_arp(A, &bad).is_none(), "{bad:?}");
        }
    }
}
