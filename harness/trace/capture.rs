//! pcap output and pcap/pcapng input.
//!
//! Written captures are LINKTYPE_ETHERNET with microsecond timestamps equal to scenario time
//! (so they open at 1970-01-01 in Wireshark, and read back unchanged). Read captures keep
//! their timestamps when the first one is below one day (a scenario capture); otherwise
//! times are made relative to the first packet. Direction: pcap has none, so frames read
//! from pcap are [`Direction::Received`]; in pcapng the EPB flags' direction bits are used
//! (outbound = [`Direction::Sent`], as on the harness's end of a veth pair).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, TsResolution};

use super::{Direction, Trace, TraceError};
use crate::time::Instant;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const ONE_DAY: Duration = Duration::from_secs(86_400);

impl Trace {
    /// Writes the frames as a pcap (LINKTYPE_ETHERNET, timestamps = scenario time).
    pub fn write_pcap(&self, writer: impl Write) -> Result<(), TraceError> {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(writer, header)?;
        for (at, _, bytes) in self.frames() {
            let len = u32::try_from(bytes.len())
                .map_err(|_| TraceError::Write("frame over 4 GiB".into()))?;
            let ts = Duration::from_micros(at.total_micros());
            w.write_packet(&PcapPacket::new(ts, len, bytes))?;
        }
        Ok(())
    }

    /// Reads a pcap or pcapng file.
    pub fn read_capture(path: &Path) -> Result<Trace, TraceError> {
        let file = std::fs::File::open(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Trace::read_capture_from(std::io::BufReader::new(file)).map_err(|e| match e {
            TraceError::Io { source, .. } => TraceError::Io {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Reads a pcap or pcapng capture from a reader.
    pub fn read_capture_from(mut reader: impl Read) -> Result<Trace, TraceError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| TraceError::Io {
                path: "<reader>".into(),
                source,
            })?;
        let magic: [u8; 4] = match bytes.get(..4).map(<[u8; 4]>::try_from) {
            Some(Ok(m)) => m,
            _ => return Err(TraceError::UnknownFormat([0; 4])),
        };
        let mut packets = if magic == PCAPNG_MAGIC {
            read_pcapng(&bytes)?
        } else if matches!(
            u32::from_le_bytes(magic),
            0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1
        ) {
            read_pcap(&bytes)?
        } else {
            return Err(TraceError::UnknownFormat(magic));
        };
        let start = match packets.first() {
            Some((ts, _, _)) if *ts >= ONE_DAY => *ts,
            _ => Duration::ZERO,
        };
        let mut trace = Trace::new();
        for (ts, direction, data) in packets.drain(..) {
            let micros = u64::try_from(ts.saturating_sub(start).as_micros()).unwrap_or(u64::MAX);
            trace.push_frame(Instant::from_micros(micros), direction, data);
        }
        Ok(trace)
    }
}

type Packet = (Duration, Direction, Vec<u8>);

fn read_pcap(bytes: &[u8]) -> Result<Vec<Packet>, TraceError> {
    let mut r = PcapReader::new(bytes)?;
    let link = r.header().datalink;
    if link != DataLink::ETHERNET {
        return Err(TraceError::LinkType(format!("{link:?}")));
    }
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p?;
        out.push((p.timestamp, Direction::Received, p.data.into_owned()));
    }
    Ok(out)
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<Packet>, TraceError> {
    let mut r = PcapNgReader::new(bytes)?;
    let mut out = Vec::new();
    let mut last = Duration::ZERO;
    let mut links = Vec::new();
    while let Some(block) = r.next_block() {
        let (ts, direction, data, link) = match block? {
            Block::EnhancedPacket(epb) => {
                let link = usize::try_from(epb.interface_id)
                    .ok()
                    .and_then(|i| links.get(i).copied());
                let outbound = epb
                    .options
                    .iter()
                    .any(|o| matches!(o, EnhancedPacketOption::Flags(f) if f & 0b11 == 0b10));
                let direction = if outbound {
                    Direction::Sent
                } else {
                    Direction::Received
                };
                (epb.timestamp, direction, epb.data.into_owned(), link)
            }
            Block::SimplePacket(spb) => {
                let link = links.first().copied();
                (last, Direction::Received, spb.data.into_owned(), link)
            }
            Block::InterfaceDescription(idb) => {
                links.push(idb.linktype);
                continue;
            }
            _ => continue,
        };
        match link {
            Some(DataLink::ETHERNET) => {}
            Some(other) => return Err(TraceError::LinkType(format!("{other:?}"))),
            None => return Err(TraceError::LinkType("(no interface description)".into())),
        }
        last = ts;
        out.push((ts, direction, data));
    }
    Ok(out)
}
