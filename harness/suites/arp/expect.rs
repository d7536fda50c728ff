//! What an ARP frame from the stack is expected to be.

use crate::engine::expect::{Expectation, Observed, field, parsed};
use crate::wire::{ArpOperation, Frame, MacAddr, Network};

/// An ARP request or reply from the stack.
#[derive(Debug, Clone)]
pub struct ExpectArp {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Ethernet destination (broadcast for a request).
    pub eth_destination: MacAddr,
    /// Sender hardware address (and Ethernet source).
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: std::net::Ipv4Addr,
    /// Target hardware address; `None`: not compared (RFC 826 on a request: "It does not
    /// set ar$tha to anything in particular": Linux sends zeros, smoltcp broadcast).
    pub target_mac: Option<MacAddr>,
    /// Target protocol address.
    pub target_ip: std::net::Ipv4Addr,
}

impl Expectation for ExpectArp {
    fn describe(&self) -> String {
        match self.operation {
            ArpOperation::Request => format!("ARP request for {}", self.target_ip),
            _ => format!("ARP reply for {}", self.sender_ip),
        }
    }

    fn compare(&self, observed: &Observed) -> Result<Frame, Vec<String>> {
        let frame = parsed(observed)?;
        let mut d = Vec::new();
        let Network::Arp(arp) = &frame.network else {
            return Err(vec![format!(
                "frame: expected ARP, observed {}",
                frame.summary()
            )]);
        };
        field(
            &mut d,
            "eth.destination",
            self.eth_destination,
            frame.ethernet.dst,
        );
        field(&mut d, "eth.source", self.sender_mac, frame.ethernet.src);
        field(
            &mut d,
            "arp.operation",
            format!("{:?}", self.operation),
            format!("{:?}", arp.operation),
        );
        field(&mut d, "arp.sender_mac", self.sender_mac, arp.sender_mac);
        field(&mut d, "arp.sender_ip", self.sender_ip, arp.sender_ip);
        if let Some(target_mac) = self.target_mac {
            field(&mut d, "arp.target_mac", target_mac, arp.target_mac);
        }
        field(&mut d, "arp.target_ip", self.target_ip, arp.target_ip);
        if d.is_empty() {
            Ok(frame.clone())
        } else {
            Err(d)
        }
    }
}
