//! The normalised text and JSON forms of a trace (format documented in the module above).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;

use super::{Direction, EventKind, Trace};
use crate::wire::{
    ArpOperation, ErrorKind, Frame, Icmpv4Kind, Icmpv6Kind, MacAddr, Network, ParseError, TcpFlags,
    TcpOption, TcpSegment, Transport,
};

/// Names for hosts, by MAC and IP address. Unknown addresses get `host1`, `host2`, ... in
/// order of first appearance when a trace is rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNames {
    macs: BTreeMap<MacAddr, String>,
    ips: BTreeMap<IpAddr, String>,
    next: usize,
}

impl HostNames {
    /// No names yet.
    pub fn new() -> Self {
        HostNames::default()
    }

    /// Names a host by its MAC and any of its IP addresses.
    pub fn with_host(mut self, name: &str, mac: Option<MacAddr>, ips: &[IpAddr]) -> Self {
        if let Some(mac) = mac {
            self.macs.insert(mac, name.to_string());
        }
        for ip in ips {
            self.ips.insert(*ip, name.to_string());
        }
        self
    }

    /// Names one MAC address.
    pub fn insert_mac(&mut self, mac: MacAddr, name: &str) {
        self.macs.insert(mac, name.to_string());
    }

    /// Names one IP address.
    pub fn insert_ip(&mut self, ip: IpAddr, name: &str) {
        self.ips.insert(ip, name.to_string());
    }

    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("host{}", self.next)
    }

    /// The name of `mac`, assigning the next `hostN` when unknown; `broadcast` for ff:..:ff.
    pub fn mac(&mut self, mac: MacAddr) -> String {
        if mac == MacAddr::BROADCAST {
            return "broadcast".into();
        }
        if let Some(n) = self.macs.get(&mac) {
            return n.clone();
        }
        let n = self.fresh();
        self.macs.insert(mac, n.clone());
        n
    }

    /// Records that `mac` and `ip` belong to one host (an ARP sender speaks for both): an
    /// unnamed one takes the other's name, two unnamed ones share a fresh name. Names given
    /// explicitly are never changed.
    pub fn link(&mut self, mac: MacAddr, ip: IpAddr) {
        if mac == MacAddr::BROADCAST || mac == MacAddr::ZERO || ip.is_unspecified() {
            return;
        }
        match (self.macs.get(&mac).cloned(), self.ips.get(&ip).cloned()) {
            (Some(_), Some(_)) => {}
            (Some(name), None) => {
                self.ips.insert(ip, name);
            }
            (None, Some(name)) => {
                self.macs.insert(mac, name);
            }
            (None, None) => {
                let name = self.fresh();
                self.macs.insert(mac, name.clone());
                self.ips.insert(ip, name);
            }
        }
    }

    /// The name of `ip`, assigning the next `hostN` when unknown.
    pub fn ip(&mut self, ip: impl Into<IpAddr>) -> String {
        let ip = ip.into();
        if let Some(n) = self.ips.get(&ip) {
            return n.clone();
        }
        let n = self.fresh();
        self.ips.insert(ip, n.clone());
        n
    }
}

/// One direction of a TCP connection: (source address, source port, destination, port).
type Flow = (IpAddr, u16, IpAddr, u16);

/// Per-direction bases for relative numbers.
#[derive(Default)]
struct Bases {
    seq: HashMap<Flow, u32>,
    tsval: HashMap<Flow, u32>,
}

struct Renderer {
    names: HostNames,
    bases: Bases,
}

impl Renderer {
    fn frame_line(&mut self, bytes: &[u8]) -> String {
        match Frame::parse(bytes) {
            Ok(frame) => self.frame(&frame),
            Err(e) => malformed(bytes.len(), &e),
        }
    }

    fn frame(&mut self, f: &Frame) -> String {
        let mut out = String::new();
        for tag in &f.vlans {
            let _ = write!(out, "vlan {}: ", tag.vid);
        }
        match &f.network {
            Network::Arp(a) => {
                self.names.link(a.sender_mac, IpAddr::V4(a.sender_ip));
                let _ = match a.operation {
                    ArpOperation::Request => write!(
                        out,
                        "ARP who-has {} tell {}",
                        self.names.ip(a.target_ip),
                        self.names.ip(a.sender_ip)
                    ),
                    ArpOperation::Reply => write!(
                        out,
                        "ARP {} is-at {}",
                        self.names.ip(a.sender_ip),
                        self.names.mac(a.sender_mac)
                    ),
                    ArpOperation::Unknown(op) => write!(
                        out,
                        "ARP op {op} from {} ({}) to {} ({})",
                        self.names.ip(a.sender_ip),
                        self.names.mac(a.sender_mac),
                        self.names.ip(a.target_ip),
                        self.names.mac(a.target_mac)
                    ),
                };
            }
            Network::ArpRaw(a) => {
                let _ = write!(out, "{a}");
            }
            Network::Ipv4(p) => {
                let (src, dst) = (IpAddr::V4(p.src), IpAddr::V4(p.dst));
                self.transport(&mut out, src, dst, &p.transport);
                if !p.checksum_valid {
                    out.push_str(" [bad ip cksum]");
                }
            }
            Network::Ipv6(p) => {
                out.push_str("IP6 ");
                self.transport(&mut out, IpAddr::V6(p.src), IpAddr::V6(p.dst), &p.transport);
            }
            Network::Unknown {
                ether_type,
                payload,
            } => {
                let _ = write!(
                    out,
                    "{} > {}: ethertype 0x{ether_type:04x}, length {}",
                    self.names.mac(f.ethernet.src),
                    self.names.mac(f.ethernet.dst),
                    payload.len()
                );
            }
        }
        out
    }

    fn transport(&mut self, out: &mut String, src: IpAddr, dst: IpAddr, t: &Transport) {
        let (s, d) = (self.names.ip(src), self.names.ip(dst));
        let _ = match t {
            Transport::Tcp(seg) => {
                let _ = write!(out, "{s}.{} > {d}.{}: ", seg.src_port, seg.dst_port);
                self.tcp(out, (src, seg.src_port, dst, seg.dst_port), seg);
                Ok(())
            }
            Transport::Udp(u) => {
                let _ = write!(
                    out,
                    "{s}.{} > {d}.{}: UDP, length {}",
                    u.src_port,
                    u.dst_port,
                    u.payload.len()
                );
                if u.checksum_valid == Some(false) {
                    out.push_str(" [bad udp cksum]");
                }
                Ok(())
            }
            Transport::Icmpv4(m) => {
                let _ = write!(out, "{s} > {d}: ICMP {}", m.kind());
                if let Some(quoted) = self.quoted_ipv4(&m.kind(), &m.payload) {
                    let _ = write!(out, " for {quoted}");
                }
                let _ = write!(out, ", length {}", m.payload.len());
                if !m.checksum_valid {
                    out.push_str(" [bad icmp cksum]");
                }
                Ok(())
            }
            Transport::Icmpv6(m) => {
                let kind = match m.kind() {
                    Icmpv6Kind::NeighborSolicitation { target: Some(t) } => {
                        format!("neighbor solicitation, who has {}", self.names.ip(t))
                    }
                    Icmpv6Kind::NeighborAdvertisement {
                        target: Some(t), ..
                    } => format!("neighbor advertisement, tgt is {}", self.names.ip(t)),
                    k => k.to_string(),
                };
                let _ = write!(out, "{s} > {d}: ICMP6 {kind}, length {}", m.payload.len());
                if !m.checksum_valid {
                    out.push_str(" [bad icmp6 cksum]");
                }
                Ok(())
            }
            Transport::Fragment { protocol, payload } => write!(
                out,
                "{s} > {d}: fragment of proto {protocol}, length {}",
                payload.len()
            ),
            Transport::Unknown { protocol, payload } => {
                write!(out, "{s} > {d}: proto {protocol}, length {}", payload.len())
            }
        };
    }

    /// For ICMPv4 errors, the quoted datagram as `proto 17 peer.5000 > dut.9`.
    fn quoted_ipv4(&mut self, kind: &Icmpv4Kind, payload: &[u8]) -> Option<String> {
        if !matches!(
            kind,
            Icmpv4Kind::DestUnreachable { .. }
                | Icmpv4Kind::TimeExceeded { .. }
                | Icmpv4Kind::ParameterProblem { .. }
        ) {
            return None;
        }
        let h = etherparse::Ipv4HeaderSlice::from_slice(payload).ok()?;
        let (src, dst) = (
            self.names.ip(h.source_addr()),
            self.names.ip(h.destination_addr()),
        );
        let proto = h.protocol().0;
        let ports = payload
            .get(h.slice().len()..h.slice().len() + 4)
            .filter(|_| matches!(proto, 6 | 17));
        Some(match ports {
            Some(p) => format!(
                "proto {proto} {src}.{} > {dst}.{}",
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]])
            ),
            None => format!("proto {proto} {src} > {dst}"),
        })
    }

    fn tcp(&mut self, out: &mut String, flow: Flow, seg: &TcpSegment) {
        let reverse = (flow.2, flow.3, flow.0, flow.1);
        if seg.flags.contains(TcpFlags::SYN) {
            self.bases.seq.insert(flow, seg.seq);
        }
        let base = *self.bases.seq.entry(flow).or_insert(seg.seq);
        let rel = seg.seq.wrapping_sub(base);
        let len = seg.payload.len();
        let _ = write!(
            out,
            "{} {rel}:{}({len})",
            seg.flags,
            rel.wrapping_add(len as u32)
        );
        let has_ack = seg.flags.contains(TcpFlags::ACK);
        if has_ack {
            let rbase = *self.bases.seq.entry(reverse).or_insert(seg.ack);
            let _ = write!(out, " ack {}", seg.ack.wrapping_sub(rbase));
        }
        let _ = write!(out, " win {}", seg.window);
        if !seg.options.is_empty() {
            let opts: Vec<String> = seg
                .options
                .iter()
                .map(|o| self.option(o, flow, reverse))
                .collect();
            let _ = write!(out, " <{}>", opts.join(","));
        }
        if seg.checksum_valid == Some(false) {
            out.push_str(" [bad tcp cksum]");
        }
    }

    fn option(&mut self, o: &TcpOption, flow: Flow, reverse: Flow) -> String {
        match o {
            TcpOption::Timestamps { val, ecr } => {
                let vbase = *self.bases.tsval.entry(flow).or_insert(*val);
                let ecr = match *ecr {
                    0 => 0,
                    e => e.wrapping_sub(*self.bases.tsval.entry(reverse).or_insert(e)),
                };
                format!("TS val {} ecr {ecr}", val.wrapping_sub(vbase))
            }
            TcpOption::Sack(blocks) => {
                let rbase = self.bases.seq.get(&reverse).copied().unwrap_or(0);
                let rel: Vec<(u32, u32)> = blocks
                    .iter()
                    .map(|(l, r)| (l.wrapping_sub(rbase), r.wrapping_sub(rbase)))
                    .collect();
                TcpOption::Sack(rel).to_string()
            }
            other => other.to_string(),
        }
    }
}

fn malformed(len: usize, e: &ParseError) -> String {
    format!("malformed frame ({len} bytes): {e}")
}

impl Trace {
    fn lines(&self, names: &HostNames) -> Vec<(String, Option<Result<Frame, ParseError>>)> {
        let mut r = Renderer {
            names: names.clone(),
            bases: Bases::default(),
        };
        self.events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Frame {
                    direction,
                    bytes,
                    port,
                } => {
                    let mark = match direction {
                        Direction::Sent => '>',
                        Direction::Received => '<',
                    };
                    let body = r.frame_line(bytes);
                    let line = match port {
                        None => format!("{} {mark} {body}", e.at),
                        Some(p) => format!("{} {mark} p{p} {body}", e.at),
                    };
                    (line, Some(Frame::parse(bytes)))
                }
                EventKind::Call { text, result } => (format!("{} * {text} = {result}", e.at), None),
                EventKind::Note(note) => (format!("{} # {note}", e.at), None),
            })
            .collect()
    }

    /// The normalised text form: one line per event, each ending in a newline.
    pub fn render(&self, names: &HostNames) -> String {
        self.lines(names)
            .into_iter()
            .map(|(line, _)| line + "\n")
            .collect()
    }

    /// The decoded form: one JSON object per event, with the rendered line, and for frames
    /// the decoded layers or the parse error.
    pub fn to_json_decoded(&self, names: &HostNames) -> Value {
        serde_json::to_value(self.decoded(names)).unwrap_or(Value::Null)
    }

    /// [`Trace::to_json_decoded`] written to `w` as compact JSON (the same value; a
    /// frame's keys in its fields' order), without building the value first (a frame's
    /// payload is one `Value` per byte there: most of the cost of a trace of many frames).
    pub fn write_json_decoded<W: std::io::Write>(
        &self,
        names: &HostNames,
        w: W,
    ) -> serde_json::Result<()> {
        serde_json::to_writer(w, &self.decoded(names))
    }

    fn decoded(&self, names: &HostNames) -> Decoded<'_> {
        Decoded {
            trace: self,
            lines: self.lines(names),
        }
    }
}

/// The decoded form of a trace, serialised event by event (an event's keys sorted, as a
/// `serde_json::Map` keeps them).
struct Decoded<'a> {
    trace: &'a Trace,
    lines: Vec<(String, Option<Result<Frame, ParseError>>)>,
}

impl serde::Serialize for Decoded<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.lines.len()))?;
        for ((line, parsed), event) in self.lines.iter().zip(&self.trace.events) {
            seq.serialize_element(&DecodedEvent {
                line,
                parsed: parsed.as_ref(),
                event,
            })?;
        }
        seq.end()
    }
}

struct DecodedEvent<'a> {
    line: &'a str,
    parsed: Option<&'a Result<Frame, ParseError>>,
    event: &'a super::TraceEvent,
}

impl serde::Serialize for DecodedEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.event;
        let time = e.at.to_string();
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("at_us", &e.at.total_micros())?;
        match (&e.kind, self.parsed) {
            (
                EventKind::Frame {
                    direction,
                    bytes,
                    port,
                },
                Some(parsed),
            ) => {
                m.serialize_entry("direction", direction)?;
                match parsed {
                    Ok(frame) => {
                        m.serialize_entry("frame", frame)?;
                        m.serialize_entry("kind", "frame")?;
                    }
                    Err(err) => {
                        m.serialize_entry("error", &ErrorJson(err))?;
                        m.serialize_entry("kind", "frame")?;
                    }
                }
                m.serialize_entry("length", &bytes.len())?;
                m.serialize_entry("line", self.line)?;
                if let Some(p) = port {
                    m.serialize_entry("port", p)?;
                }
            }
            (EventKind::Call { text, result }, _) => {
                m.serialize_entry("kind", "call")?;
                m.serialize_entry("line", self.line)?;
                m.serialize_entry("result", result)?;
                m.serialize_entry("text", text)?;
            }
            (EventKind::Note(note), _) => {
                m.serialize_entry("kind", "note")?;
                m.serialize_entry("line", self.line)?;
                m.serialize_entry("text", note)?;
            }
            (EventKind::Frame { .. }, None) => {
                m.serialize_entry("line", self.line)?;
            }
        }
        m.serialize_entry("time_ms", time.trim())?;
        m.end()
    }
}

/// A parse error as the decoded trace gives it (keys sorted, as in a `serde_json::Map`).
struct ErrorJson<'a>(&'a ParseError);

impl serde::Serialize for ErrorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.0;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("layer", &e.layer.to_string())?;
        m.serialize_entry("message", &e.to_string())?;
        if let ErrorKind::Length { needed, .. } = &e.kind {
            m.serialize_entry("needed", needed)?;
        }
        m.serialize_entry("offset", &e.offset)?;
        match &e.kind {
            ErrorKind::Length { present, .. } => m.serialize_entry("present", present)?,
            ErrorKind::Content(reason) => m.serialize_entry("reason", reason)?,
        }
        m.end()
    }
}
