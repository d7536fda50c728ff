//! A stack with one neighbour that it never asks for (`[arp.one_neighbour]` in its profile:
//! passt, which serves one guest and takes the guest's MAC from the frames the guest sends).
//!
//! Where a check expects the stack to resolve the peer (an ARP request, answered), such a
//! stack sends its frame at once, to the MAC it last received a frame from: the check then
//! expects that frame to go to the MAC the peer sent from, and no ARP request.

use crate::dut::fixed::FixedBehaviour;
use crate::engine::expect::{Expectation, Observed, field, parsed};
use crate::wire::{ArpOperation, Frame, MacAddr, Network};

/// The first frame of a stack that declares it never asks: no ARP request, and sent to
/// the MAC the peer sent its last frame from.
#[derive(Debug, Clone)]
pub struct ExpectToLearnedMac {
    /// The MAC the peer sent its last frame from.
    pub peer_mac: MacAddr,
    /// The stack's MAC (the frame's Ethernet source).
    pub stack_mac: MacAddr,
    /// Where the behaviour is declared, for the report (`profiles/passt.toml`).
    pub file: String,
}

impl ExpectToLearnedMac {
    /// The expectation for `fixed`'s stack, when it declares that it never asks
    /// (`[arp.one_neighbour] sends_requests = false`); `None` otherwise.
    pub fn declared(
        fixed: Option<&FixedBehaviour>,
        peer_mac: MacAddr,
        stack_mac: MacAddr,
    ) -> Option<ExpectToLearnedMac> {
        let fixed = fixed?;
        let one = fixed.one_neighbour()?;
        (!one.sends_requests).then(|| ExpectToLearnedMac {
            peer_mac,
            stack_mac,
            file: fixed.file.clone(),
        })
    }
}

impl Expectation for ExpectToLearnedMac {
    fn describe(&self) -> String {
        format!(
            "no ARP request: the first frame straight to {}, the MAC the peer sent from (declared in {}: [arp.one_neighbour] sends_requests = false)",
            self.peer_mac, self.file
        )
    }

    fn compare(&self, observed: &Observed) -> Result<Frame, Vec<String>> {
        let frame = parsed(observed)?;
        if let Network::Arp(arp) = &frame.network
            && arp.operation == ArpOperation::Request
        {
            return Err(vec![format!(
                "frame: expected no ARP request (declared: the stack never asks), observed {}",
                frame.summary()
            )]);
        }
        let mut d = Vec::new();
        field(&mut d, "eth.destination", self.peer_mac, frame.ethernet.dst);
        field(&mut d, "eth.source", self.stack_mac, frame.ethernet.src);
        if d.is_empty() {
            Ok(frame.clone())
        } else {
            Err(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::expect::Observed;
    use crate::wire::{Icmpv4Message, MacAddr};
    use std::net::Ipv4Addr;

    const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
    const STACK: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);

    fn observed(frame: &Frame) -> Observed {
        let bytes = frame.emit();
        Observed {
            parsed: Frame::parse(&bytes),
            bytes,
        }
    }

    fn reply_to(dst: MacAddr) -> Frame {
        Frame::icmpv4(
            STACK,
            dst,
            Ipv4Addr::new(10, 77, 0, 2),
            Ipv4Addr::new(10, 77, 0, 1),
            Icmpv4Message::echo_reply(1, 1, b"x".to_vec()),
        )
    }

    #[test]
    fn only_a_frame_to_the_mac_the_peer_sent_from_matches() {
        let expect = ExpectToLearnedMac {
            peer_mac: PEER,
            stack_mac: STACK,
            file: "profiles/passt.toml".into(),
        };
        assert!(expect.compare(&observed(&reply_to(PEER))).is_ok());
        // To any other MAC (the broadcast address passt starts with, say): a difference.
        let d = expect
            .compare(&observed(&reply_to(MacAddr::BROADCAST)))
            .expect_err("another MAC");
        assert!(d[0].starts_with("eth.destination"), "{d:?}");
        // An ARP request, when the declaration says the stack never asks.
        let request = Frame::arp_request(
            STACK,
            Ipv4Addr::new(10, 77, 0, 2),
            Ipv4Addr::new(10, 77, 0, 1),
        );
        let d = expect.compare(&observed(&request)).expect_err("a request");
        assert!(d[0].contains("expected no ARP request"), "{d:?}");
    }
}
