//! A trace to and from a capture, through [`crate::pcap`] (which does all the reading and
//! writing).
//!
//! Written captures are the frames with their scenario time as timestamp (so they open at
//! 1970-01-01 in Wireshark, and read back unchanged). Read captures keep their timestamps
//! when the first one is below one day (a scenario capture); otherwise times are made
//! relative to the first packet. Any link type [`crate::pcap`] reads becomes Ethernet frames.
//! Direction: an outbound packet (pcapng EPB flags, or the Linux cooked packet type
//! `PACKET_OUTGOING`) is [`Direction::Sent`], as on the harness's end of a veth pair; every
//! other packet, and every packet of a plain pcap, is [`Direction::Received`].

use std::io::{Read, Write};
use std::path::Path;

use super::{Direction, Trace, TraceError};
use crate::pcap::{self, Capture, PacketDirection, ReadMode};
use crate::time::Instant;

const ONE_DAY_NS: u64 = 86_400 * 1_000_000_000;

impl Trace {
    /// Writes the frames as a pcap ([`pcap::write`]: LINKTYPE_ETHERNET, nanosecond
    /// resolution, timestamps = scenario time).
    pub fn write_pcap(&self, writer: impl Write) -> Result<(), TraceError> {
        let frames = self
            .frames()
            .map(|(at, _, bytes)| (at.total_micros().saturating_mul(1000), bytes));
        Ok(pcap::write(writer, frames)?)
    }

    /// Reads a pcap or pcapng file, strictly ([`ReadMode::Strict`]).
    pub fn read_capture(path: &Path) -> Result<Trace, TraceError> {
        Ok(Trace::from_capture(pcap::read(path, ReadMode::Strict)?))
    }

    /// Reads a pcap or pcapng capture from a reader, strictly ([`ReadMode::Strict`]).
    pub fn read_capture_from(mut reader: impl Read) -> Result<Trace, TraceError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| TraceError::Io {
                path: "<reader>".into(),
                source,
            })?;
        Ok(Trace::from_capture(pcap::parse(&bytes, ReadMode::Strict)?))
    }

    /// The packets of a capture as a trace of frames.
    fn from_capture(capture: Capture) -> Trace {
        let start = match capture.packets.first() {
            Some(p) if p.ts_ns >= ONE_DAY_NS => p.ts_ns,
            _ => 0,
        };
        let mut trace = Trace::new();
        for p in capture.packets {
            let direction = match p.direction {
                PacketDirection::Outbound => Direction::Sent,
                PacketDirection::Inbound | PacketDirection::Unknown => Direction::Received,
            };
            let micros = p.ts_ns.saturating_sub(start) / 1000;
            trace.push_frame(Instant::from_micros(micros), direction, p.frame);
        }
        trace
    }
}
