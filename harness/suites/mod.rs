//! The protocol suites: each holds its checks (with the clauses they enforce), the runner
//! glue between its model in [`crate::models`] and the [engine](crate::engine), and its
//! scenarios. A suite is found by its protocol's name.
//!
//! | suite | what it checks | model |
//! |---|---|---|
//! | [`arp`] | ARP (RFC 826, 1122, 5227) and the neighbour table | [`crate::models::arp`] |
//! | [`tcp`] | TCP (RFC 9293, 5961, 6298, 7323), its timers and the state matrix | [`crate::models::tcp`] |
//! | [`switch`] | a learning bridge (IEEE 802.1D) | [`crate::models::switch`] |
//! | [`route`] | route lookup (RFC 1812, 4443) | [`crate::models::route`] |
//! | [`forward`] | forwarding, TTL, ICMP errors (RFC 1812, 792) | [`crate::models::forward`] |
//! | [`nat`] | NAT (RFC 4787, 5508) | [`crate::models::nat`] |
//! | [`tls`] | TLS 1.3 (RFC 8446) | [`crate::models::tls`] |

pub mod arp;
pub mod forward;
pub mod nat;
pub mod route;
pub mod switch;
pub mod tcp;
pub mod tls;

use crate::engine::CheckSpec;

/// Every check netconform knows, in the order `certify` runs them.
pub fn catalogue() -> Vec<CheckSpec> {
    [
        arp::CHECKS,
        tcp::basic::CHECKS,
        tcp::timers::CHECKS,
        tcp::checks::CHECKS,
        switch::CHECKS,
        route::CHECKS,
        forward::CHECKS,
        nat::CHECKS,
        tls::CHECKS,
    ]
    .concat()
}
