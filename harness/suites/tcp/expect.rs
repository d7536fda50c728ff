//! What a TCP segment from the stack is expected to be: the fields a clause pins, and
//! nothing the profile leaves open (window, IP ID, timestamp values, option order).

use std::net::IpAddr;

use crate::engine::expect::{Expectation, Observed, field, parsed};
use crate::wire::{Frame, MacAddr, Network, TcpFlags, TcpOption, TcpSegment, Transport};

/// Whether a TCP option must, must not, or may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence<T> {
    /// Not compared.
    Any,
    /// Must be absent.
    Absent,
    /// Must be present, with any value.
    Present,
    /// Must be present with this value.
    Equal(T),
}

/// A TCP segment from the stack: addresses, ports, flags, sequence and acknowledgment
/// numbers, payload and the options a clause pins.
#[derive(Debug, Clone)]
pub struct ExpectTcp {
    /// What this segment is, e.g. `SYN-ACK`.
    pub name: String,
    /// Ethernet source and destination.
    pub eth: (MacAddr, MacAddr),
    /// IP source and destination.
    pub ip: (IpAddr, IpAddr),
    /// IPv4 TTL / IPv6 hop limit, when pinned.
    pub ttl: Option<u8>,
    /// Source and destination ports.
    pub ports: (u16, u16),
    /// Exactly these flags.
    pub flags: TcpFlags,
    /// Sequence number, absolute; `None` when it is being learned (a SYN's ISN).
    pub seq: Option<u32>,
    /// Acknowledgment number, absolute, compared when ACK is set.
    pub ack: Option<u32>,
    /// Exactly this payload.
    pub payload: Vec<u8>,
    /// Maximum segment size option.
    pub mss: Presence<u16>,
    /// SACK-permitted option.
    pub sack_permitted: Presence<()>,
    /// Window scale option.
    pub window_scale: Presence<u8>,
    /// Timestamps option.
    pub timestamps: Presence<()>,
    /// Base values for rendering sequence/ack numbers relatively in differences
    /// (the stack's ISN and the peer's ISN), when known.
    pub relative_to: (Option<u32>, Option<u32>),
}

impl ExpectTcp {
    fn compare_options(&self, seg: &TcpSegment, d: &mut Vec<String>) {
        let mss = seg.options.iter().find_map(|o| {
            if let TcpOption::Mss(v) = o {
                Some(*v)
            } else {
                None
            }
        });
        let sack = seg
            .options
            .iter()
            .any(|o| matches!(o, TcpOption::SackPermitted))
            .then_some(());
        let ws = seg.options.iter().find_map(|o| {
            if let TcpOption::WindowScale(v) = o {
                Some(*v)
            } else {
                None
            }
        });
        let ts = seg
            .options
            .iter()
            .any(|o| matches!(o, TcpOption::Timestamps { .. }))
            .then_some(());
        presence(d, "tcp.option.mss", self.mss, mss);
        presence(d, "tcp.option.sackOK", self.sack_permitted, sack);
        presence(d, "tcp.option.wscale", self.window_scale, ws);
        presence(d, "tcp.option.timestamps", self.timestamps, ts);
    }

    fn rel(value: u32, base: Option<u32>) -> String {
        match base {
            Some(b) => format!("{} (relative)", value.wrapping_sub(b)),
            None => value.to_string(),
        }
    }
}

fn presence<T: PartialEq + std::fmt::Debug>(
    d: &mut Vec<String>,
    name: &str,
    expected: Presence<T>,
    observed: Option<T>,
) {
    let ok = match (&expected, &observed) {
        (Presence::Any, _) => true,
        (Presence::Absent, None) => true,
        (Presence::Present, Some(_)) => true,
        (Presence::Equal(e), Some(o)) => e == o,
        _ => false,
    };
    if !ok {
        let exp = match &expected {
            Presence::Any => "anything".to_string(),
            Presence::Absent => "absent".to_string(),
            Presence::Present => "present".to_string(),
            Presence::Equal(v) => format!("{v:?}"),
        };
        let obs = observed.map_or("absent".to_string(), |v| format!("{v:?}"));
        d.push(format!("{name}: expected {exp}, observed {obs}"));
    }
}

impl Expectation for ExpectTcp {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn compare(&self, observed: &Observed) -> Result<Frame, Vec<String>> {
        let frame = parsed(observed)?;
        let mut d = Vec::new();
        field(&mut d, "eth.source", self.eth.0, frame.ethernet.src);
        field(&mut d, "eth.destination", self.eth.1, frame.ethernet.dst);
        let (src, dst, ttl, transport): (IpAddr, IpAddr, u8, &Transport) = match &frame.network {
            Network::Ipv4(p) => (p.src.into(), p.dst.into(), p.ttl, &p.transport),
            Network::Ipv6(p) => (p.src.into(), p.dst.into(), p.hop_limit, &p.transport),
            _ => {
                return Err(vec![format!(
                    "frame: expected TCP/IP, observed {}",
                    frame.summary()
                )]);
            }
        };
        field(&mut d, "ip.source", self.ip.0, src);
        field(&mut d, "ip.destination", self.ip.1, dst);
        if let Some(t) = self.ttl {
            field(&mut d, "ip.ttl", t, ttl);
        }
        let Transport::Tcp(seg) = transport else {
            d.push(format!(
                "ip.payload: expected TCP, observed {}",
                frame.summary()
            ));
            return Err(d);
        };
        field(&mut d, "tcp.source_port", self.ports.0, seg.src_port);
        field(&mut d, "tcp.destination_port", self.ports.1, seg.dst_port);
        field(&mut d, "tcp.flags", self.flags, seg.flags);
        if let Some(seq) = self.seq
            && seq != seg.seq
        {
            d.push(format!(
                "tcp.seq: expected {}, observed {}",
                Self::rel(seq, self.relative_to.0),
                Self::rel(seg.seq, self.relative_to.0)
            ));
        }
        if let Some(ack) = self.ack
            && seg.flags.contains(TcpFlags::ACK)
            && ack != seg.ack
        {
            d.push(format!(
                "tcp.ack: expected {}, observed {}",
                Self::rel(ack, self.relative_to.1),
                Self::rel(seg.ack, self.relative_to.1)
            ));
        }
        if seg.payload != self.payload {
            d.push(format!(
                "tcp.payload: expected {} bytes {:?}, observed {} bytes {:?}",
                self.payload.len(),
                String::from_utf8_lossy(&self.payload),
                seg.payload.len(),
                String::from_utf8_lossy(&seg.payload)
            ));
        }
        if seg.checksum_valid == Some(false) {
            d.push("tcp.checksum: expected valid, observed invalid".to_string());
        }
        self.compare_options(seg, &mut d);
        if d.is_empty() {
            Ok(frame.clone())
        } else {
            Err(d)
        }
    }
}
