//! The one address plan of the hosts the harness plays.
//!
//! Every MAC address the harness puts on the wire for a host it plays is
//! `02:6e:63:<space>:<a>:<b>` (`02`: locally administered and individual; `6e:63`: "nc"), or
//! the same with `03` for a group address. The fourth byte names the *space* the address
//! belongs to, so two suites never hand out the same address by accident, and a MAC in a
//! trace says who played it. Suites ask this module instead of writing bytes by hand.
//!
//! | space | who | `a` | `b` |
//! |---|---|---|---|
//! | `0x00`..=`0x01` | ARP peers ([`arp_peer`]) | off-link (0/1) | host octet |
//! | `0x00`..=`0xfe` | switch stations of one run ([`station`]), the space is the run's nonce | 0 | station |
//! | `0x00` | the ends of an in-process link ([`link_end`]) | 0 | 1: harness, 2: stack |
//! | [`NAT_HOSTS`] | hosts around a NAT ([`nat_host`]) | port | host |
//! | [`FORWARD_HOSTS`] | hosts on a router's segments ([`forward_host`]) | port | octet |
//! | [`FOREIGN`] | an address nobody on the link has ([`foreign`]) | 0 | 1 |
//! | [`PROBES`] | harness machinery: switch barrier probes (`a = 0xfe`), bridge readiness probes (`a = 0xfd`) | kind | port |
//!
//! The spaces overlap only where the two users never share a link (an ARP lab, a switch
//! run, a smoltcp link are each a DUT of their own).

use crate::wire::MacAddr;

/// The first three bytes of every individual address the harness plays.
pub const PREFIX: [u8; 3] = [0x02, 0x6e, 0x63];
/// The space of the hosts around a NAT.
pub const NAT_HOSTS: u8 = 0x4e;
/// The space of the hosts on a router's segments.
pub const FORWARD_HOSTS: u8 = 0xf0;
/// The space of an address nobody on the link has.
pub const FOREIGN: u8 = 0xee;
/// The space of the harness's own machinery (probes that are never compared).
pub const PROBES: u8 = 0xff;

/// `02:6e:63:<space>:<a>:<b>`.
pub const fn played(space: u8, a: u8, b: u8) -> MacAddr {
    MacAddr([PREFIX[0], PREFIX[1], PREFIX[2], space, a, b])
}

/// `03:6e:63:<space>:<a>:<b>`: a group (multicast) address in the same plan.
pub const fn group(space: u8, a: u8, b: u8) -> MacAddr {
    MacAddr([PREFIX[0] | 1, PREFIX[1], PREFIX[2], space, a, b])
}

/// ARP peer `octet` (on the link, or off it behind the gateway); `alt`: its second MAC.
pub const fn arp_peer(alt: bool, off_link: bool, octet: u8) -> MacAddr {
    played(alt as u8, off_link as u8, octet)
}

/// Switch station `n` in a run with `nonce`.
pub const fn station(nonce: u8, n: u8) -> MacAddr {
    played(nonce, 0, n)
}

/// An end of an in-process link: 1 the harness's, 2 the stack's.
pub const fn link_end(n: u8) -> MacAddr {
    played(0, 0, n)
}

/// Host `host` on port `port` around a NAT.
pub const fn nat_host(port: u8, host: u8) -> MacAddr {
    played(NAT_HOSTS, port, host)
}

/// Host `octet` on a router's segment `port`.
pub const fn forward_host(port: u8, octet: u8) -> MacAddr {
    played(FORWARD_HOSTS, port, octet)
}

/// An address nobody on the link has.
pub const fn foreign() -> MacAddr {
    played(FOREIGN, 0, 1)
}

/// The source of a switch barrier probe sent into `port`.
pub const fn switch_probe(port: u8) -> MacAddr {
    played(PROBES, 0xfe, port)
}

/// The source of a bridge readiness probe sent into `port`.
pub const fn ready_probe(port: u8) -> MacAddr {
    played(PROBES, 0xfd, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan gives the addresses the suites used before it existed, byte for byte
    /// (traces and snapshots name them), and every played address is locally
    /// administered and individual, every group address a group.
    #[test]
    fn the_plan_is_the_addresses_on_the_wire() {
        assert_eq!(arp_peer(true, false, 7).0, [0x02, 0x6e, 0x63, 1, 0, 7]);
        assert_eq!(arp_peer(false, true, 9).0, [0x02, 0x6e, 0x63, 0, 1, 9]);
        assert_eq!(station(5, 3).0, [0x02, 0x6e, 0x63, 5, 0, 3]);
        assert_eq!(link_end(2).0, [0x02, 0x6e, 0x63, 0, 0, 2]);
        assert_eq!(nat_host(1, 4).0, [0x02, 0x6e, 0x63, 0x4e, 1, 4]);
        assert_eq!(forward_host(2, 9).0, [0x02, 0x6e, 0x63, 0xf0, 2, 9]);
        assert_eq!(foreign().0, [0x02, 0x6e, 0x63, 0xee, 0, 1]);
        assert_eq!(switch_probe(1).0, [0x02, 0x6e, 0x63, 0xff, 0xfe, 1]);
        assert_eq!(ready_probe(0).0, [0x02, 0x6e, 0x63, 0xff, 0xfd, 0]);
        assert_eq!(group(5, 0, 0xff).0, [0x03, 0x6e, 0x63, 5, 0, 0xff]);
        for mac in [
            arp_peer(false, false, 1),
            station(0, 1),
            nat_host(0, 1),
            foreign(),
        ] {
            assert_eq!(
                mac.0[0] & 0x03,
                0x02,
                "{mac}: locally administered, individual"
            );
        }
        assert_eq!(group(0, 0, 0).0[0] & 0x01, 1);
    }
}
