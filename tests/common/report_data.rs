//! The hosts, clauses and frames that the report tests (`tests/report.rs`) and the browser
//! test (`tests/report_browser.rs`) build their synthetic runs from.

use std::net::{IpAddr, Ipv4Addr};

use netconform::engine::Clause;
use netconform::trace::HostNames;
use netconform::wire::{Frame, MacAddr, TcpFlags, TcpSegment};

pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const STACK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

pub const LISTEN_RESET: Clause = Clause {
    id: "rfc9293-3.10.7.2",
    source: "RFC 9293 §3.10.7.2",
    url: "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.2",
    text: "Any acknowledgment is bad if it arrives on a connection still in the LISTEN state. \
           An acceptable reset segment MUST be formed for any arriving ACK-bearing segment: \
           <SEQ=SEG.ACK><CTL=RST> & return.",
};
pub const DELAYED_ACK: Clause = Clause {
    id: "rfc1122-4.2.3.2",
    source: "RFC 1122 §4.2.3.2",
    url: "https://www.rfc-editor.org/rfc/rfc1122#page-96",
    text: "A TCP SHOULD implement a delayed ACK, but an ACK should not be excessively delayed.",
};

/// `peer` and `dut`, as the trace names them.
pub fn names() -> HostNames {
    HostNames::new()
        .with_host("peer", Some(PEER_MAC), &[IpAddr::V4(PEER_IP)])
        .with_host("dut", Some(STACK_MAC), &[IpAddr::V4(STACK_IP)])
}

/// A segment from the peer (port 40000) to the stack (port 80) with `len` bytes of data.
pub fn to_stack(seq: u32, ack: u32, flags: TcpFlags, len: usize) -> Vec<u8> {
    let mut seg = TcpSegment::new(40000, 80, seq, ack, flags);
    seg.payload = vec![b'x'; len];
    Frame::tcp_v4(PEER_MAC, STACK_MAC, PEER_IP, STACK_IP, seg).emit()
}

/// A segment from the stack to the peer with `len` bytes of data.
pub fn from_stack(seq: u32, ack: u32, flags: TcpFlags, len: usize) -> Vec<u8> {
    let mut seg = TcpSegment::new(80, 40000, seq, ack, flags);
    seg.payload = vec![b'y'; len];
    Frame::tcp_v4(STACK_MAC, PEER_MAC, STACK_IP, PEER_IP, seg).emit()
}
