//! Spoilers: any DUT, wrapped so that it does one small thing wrong.
//!
//! Mutation analysis of the catalogue (`netconform certify --mutate`, the engine's
//! `mutate` module) runs each check against a DUT spoiled in one way and asks
//! whether the check notices: a check that passes every spoil of what it observes is
//! vacuous. A [`Spoiled`] DUT forwards every plane of the DUT it wraps and changes one
//! thing on the way back to the harness:
//!
//! - **link**: the first frame of the conversation the stack sends is lost, sent twice,
//!   overtaken by the next one (when that one is already there), held back, or sent again
//!   late (once the stack is quiet, or behind its answer to a barrier out of another
//!   port); or the first frame the stack sends on its own (a timer's) is held back (a
//!   timer that fires late);
//!   or one field of every frame that has it is changed (TCP flags, sequence and
//!   acknowledgment numbers, window, options; IP TTL; the transport checksum; a MAC; an
//!   ICMP code; an ARP operation or sender address);
//! - **sockets**: the first call's outcome is misreported;
//! - **tables**: the first entry of every state answer is misreported (a TCP state, a
//!   neighbour's state, a route's gateway, an FDB port, a conntrack port, a timer), the
//!   neighbour table shows entries for addresses the harness only announced, or a setting
//!   is acknowledged and not made;
//! - **services**: one byte of what a service exchange captured is flipped.
//!
//! Frames of the harness's own machinery (barrier probes and their answers, which the
//! suite that runs the check names with a predicate) are never spoiled: a spoil must
//! change what the stack does, not blind the harness. The spoiler counts how often it
//! acted ([`Spoiled::applied`]); a spoil that never acted says nothing about the check.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use serde::Serialize;

use crate::dut::service::{ServiceAnswer, ServiceImpl, ServiceRequest};
use crate::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, Link, SocketCall, Sockets, StateAnswer,
    StateQuery, Tables, TcpSocketState, TcpState,
};
use crate::sandbox::{MacAddr, NudState};
use crate::wire::{Frame, Network, TcpOption, Transport};

/// How long [`Spoil::DelayFirst`] and [`Spoil::DelayTimer`] hold a frame back: longer
/// than any timer check's slack, shorter than any check's patience.
pub const DELAY: StdDuration = StdDuration::from_millis(400);

/// How long the harness must have left the stack alone (no frame sent to it, no call, no
/// setting) for a frame the stack sends to be its own, a timer's ([`Spoil::DelayTimer`]):
/// longer than the stack takes to answer (a frame the harness sent is handled as it is
/// sent; a call's frames leave before it returns), shorter than the shortest timer the
/// timer checks read (Linux's minimum retransmission timeout, 200 ms).
pub const QUIET: StdDuration = StdDuration::from_millis(100);

/// One small way a DUT does something wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Spoil {
    /// Link: the first conversation frame the stack sends is lost.
    DropFirst,
    /// Link: the first conversation frame arrives twice.
    DuplicateFirst,
    /// Link: the first two conversation frames arrive in the other order, when the second
    /// is already there when the first is read (never by holding the first back).
    SwapFirstTwo,
    /// Link: the first conversation frame arrives [`DELAY`] late (an answer that comes
    /// late, or a timer that fires late when the first frame is a timer's).
    DelayFirst,
    /// Link: the first conversation frame the stack sends on its own, after the harness
    /// left it alone for [`QUIET`] (a retransmission, a probe: a timer's), arrives
    /// [`DELAY`] late, stamped so (a timer that fires late). On a DUT with a virtual clock
    /// it never acts: a real delay does not move the stack's clock.
    DelayTimer,
    /// Link: a copy of the first conversation frame arrives again, out of its port, once
    /// the stack has gone quiet, or right after the stack answered the harness's machinery
    /// out of another port (an extra, late frame: behind the barrier reply that was to
    /// prove the other port quiet).
    ExtraLate,
    /// Link: one field of every conversation frame that has it.
    Field(Field),
    /// Sockets: the first call's outcome is misreported.
    CallOutcome,
    /// Tables: the first entry of every state answer is misreported.
    TableEntry,
    /// Tables: every setting is acknowledged and not made.
    IgnoreSettings,
    /// Tables: the neighbour table shows an entry the stack does not have, for each
    /// address the harness announced in its own ARP frames (a stack that learned what it
    /// must not).
    TablePhantom,
    /// Services: one byte of what each exchange captured is flipped.
    ServiceByte,
}

/// A field a [`Spoil::Field`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Field {
    /// TCP: the flags (PSH toggled; on a segment without data, FIN toggled).
    TcpFlags,
    /// TCP: the sequence number, plus one.
    TcpSeq,
    /// TCP: the acknowledgment number, plus one (on a segment with ACK).
    TcpAck,
    /// TCP: the window, halved (or 1 from 0).
    TcpWindow,
    /// TCP: the options, the last one dropped (on a segment with options).
    TcpOptions,
    /// IPv4: the TTL, minus one (IPv6: the hop limit).
    IpTtl,
    /// The TCP, UDP or ICMP checksum, wrong.
    TransportChecksum,
    /// Ethernet: the source MAC, its last octet changed.
    SrcMac,
    /// Ethernet: the destination MAC, its last octet changed.
    DstMac,
    /// ICMPv4/ICMPv6 errors: the code, plus one.
    IcmpCode,
    /// ARP: request and reply swapped.
    ArpOperation,
    /// ARP: the sender's protocol address, its last octet changed.
    ArpSender,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 12] = [
        Field::TcpFlags,
        Field::TcpSeq,
        Field::TcpAck,
        Field::TcpWindow,
        Field::TcpOptions,
        Field::IpTtl,
        Field::TransportChecksum,
        Field::SrcMac,
        Field::DstMac,
        Field::IcmpCode,
        Field::ArpOperation,
        Field::ArpSender,
    ];
}

impl Spoil {
    /// The spoils of the link plane.
    pub fn link() -> Vec<Spoil> {
        let mut v = vec![
            Spoil::DropFirst,
            Spoil::DuplicateFirst,
            Spoil::SwapFirstTwo,
            Spoil::DelayFirst,
            Spoil::DelayTimer,
            Spoil::ExtraLate,
        ];
        v.extend(Field::ALL.map(Spoil::Field));
        v
    }

    /// A short stable name ("drop-first", "field:tcp-seq") for tables and files.
    pub fn name(&self) -> String {
        let kebab = |s: String| {
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if c.is_uppercase() {
                    if i > 0 {
                        out.push('-');
                    }
                    out.extend(c.to_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        };
        match self {
            Spoil::Field(f) => format!("field:{}", kebab(format!("{f:?}"))),
            other => kebab(format!("{other:?}")),
        }
    }
}

impl std::fmt::Display for Spoil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Whether a frame the stack sent is the harness's own machinery (never spoiled).
pub type Machinery = fn(&[u8]) -> bool;

/// A frame read from the DUT and not yet handed to the harness.
struct Held {
    port: usize,
    bytes: Vec<u8>,
    /// When it may be handed over (`None`: at once).
    release: Option<StdInstant>,
    /// When it left the stack: the DUT's own stamp, or the release of a delayed frame.
    left: Option<StdInstant>,
}

/// A DUT spoiled by one [`Spoil`].
pub struct Spoiled {
    inner: Box<dyn Dut>,
    spoil: Spoil,
    machinery: Machinery,
    applied: Arc<AtomicUsize>,
    /// What the inner DUT has (read once: its ports, UDP, services).
    caps: crate::dut::Capabilities,
    /// The TCP options the inner DUT offers (read once).
    tcp_config: crate::dut::TcpStackConfig,
    /// Conversation frames the stack has sent so far (machinery not counted).
    seen: usize,
    /// Frames read and not yet handed over, in the order they go.
    queue: VecDeque<Held>,
    /// The first frame, held by [`Spoil::SwapFirstTwo`] until the next one, or kept by
    /// [`Spoil::ExtraLate`] for the moment the stack goes quiet.
    kept: Option<Held>,
    /// When the frame handed over last left the stack.
    last_left: Option<StdInstant>,
    calls: usize,
    /// The addresses the harness announced in its ARP frames, for [`Spoil::TablePhantom`].
    announced: Vec<(std::net::Ipv4Addr, MacAddr)>,
    /// When the harness did something to the stack lately (sent a frame, made a call or a
    /// setting; at first, when the spoiler was made), oldest first, for
    /// [`Spoil::DelayTimer`].
    pokes: VecDeque<StdInstant>,
    /// Whether [`Spoil::DelayTimer`] has held its frame.
    timer_held: bool,
    /// The wrapped DUT runs on a virtual clock.
    virtual_clock: bool,
    /// What the wrapped DUT says of its TCP (read once): whether its answers wait for its
    /// host side, why it hides its TCP states, after how many barriers its host answers are out.
    tcp: (bool, Option<String>, u8),
}

impl Spoiled {
    /// `inner` spoiled by `spoil`; `applied` counts the times the spoil acted;
    /// `machinery` names the frames it must leave alone.
    pub fn new(
        mut inner: Box<dyn Dut>,
        spoil: Spoil,
        machinery: Machinery,
        applied: Arc<AtomicUsize>,
    ) -> Spoiled {
        let caps = inner.capabilities();
        let tcp_config = inner.tcp_config();
        let virtual_clock = inner.virtual_now().is_some();
        let tcp = (
            inner.sockets().is_some_and(|s| s.answers_wait_for_host()),
            inner.tables().and_then(|t| t.tcp_states_hidden()),
            inner
                .sockets()
                .map_or(0, |s| s.host_answers_within_barriers()),
        );
        Spoiled {
            tcp,
            inner,
            spoil,
            machinery,
            applied,
            caps,
            tcp_config,
            seen: 0,
            queue: VecDeque::new(),
            kept: None,
            last_left: None,
            calls: 0,
            announced: Vec::new(),
            pokes: VecDeque::from([StdInstant::now()]),
            timer_held: false,
            virtual_clock,
        }
    }

    /// The harness did something to the stack just now.
    fn poke(&mut self) {
        if self.pokes.len() >= 64 {
            self.pokes.pop_front();
        }
        self.pokes.push_back(StdInstant::now());
    }

    /// Whether a frame that left the stack at `left` is the stack's own: the harness had
    /// left it alone for [`QUIET`] before (a frame read late is judged against what the
    /// harness did before it left, not after).
    fn own(&self, left: StdInstant) -> bool {
        let last = self.pokes.iter().rev().find(|p| **p <= left);
        last.is_some_and(|p| left.duration_since(*p) >= QUIET)
    }

    /// How often the spoil has acted so far.
    pub fn applied(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }

    fn acted(&self) {
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads the next frame from the DUT into the queue, spoiled; false when none came by
    /// `deadline`.
    fn pull(&mut self, deadline: StdInstant) -> Result<bool, DutError> {
        let Some(link) = self.inner.link() else {
            return Err(DutError::NotSupported {
                what: "receiving frames: the spoiled DUT has no link".into(),
            });
        };
        let Some((port, bytes)) = link.recv_frame_any(deadline)? else {
            return Ok(false);
        };
        let left = link.last_frame_at();
        let held = |bytes: Vec<u8>| Held {
            port,
            bytes,
            release: None,
            left,
        };
        if (self.machinery)(&bytes) {
            // A frame held for a swap goes before the harness's machinery, never after it.
            if self.spoil == Spoil::SwapFirstTwo
                && let Some(first) = self.kept.take()
            {
                self.queue.push_back(first);
            }
            self.queue.push_back(held(bytes));
            // The copy kept for the moment the stack is quiet comes behind an answer to the
            // machinery out of another port: late, after the barrier there.
            if self.spoil == Spoil::ExtraLate
                && self.kept.as_ref().is_some_and(|k| k.port != port)
                && let Some(copy) = self.kept.take()
            {
                self.acted();
                self.queue.push_back(Held { left: None, ..copy });
            }
            return Ok(true);
        }
        self.seen += 1;
        let first = self.seen == 1;
        match self.spoil {
            Spoil::DropFirst if first => self.acted(),
            Spoil::DuplicateFirst if first => {
                self.acted();
                self.queue.push_back(held(bytes.clone()));
                self.queue.push_back(held(bytes));
            }
            Spoil::SwapFirstTwo if first => {
                // Swapped only with a frame the stack has already sent: holding the first
                // until a later one comes would delay it, which is another spoil.
                self.kept = Some(held(bytes));
                if !self.pull(StdInstant::now())?
                    && let Some(first) = self.kept.take()
                {
                    self.queue.push_back(first);
                }
            }
            Spoil::SwapFirstTwo => {
                self.queue.push_back(held(bytes));
                if let Some(first) = self.kept.take() {
                    self.acted();
                    self.queue.push_back(first);
                }
            }
            Spoil::DelayFirst if first => {
                self.acted();
                let release = StdInstant::now() + DELAY;
                self.queue.push_back(Held {
                    release: Some(release),
                    left: Some(release),
                    ..held(bytes)
                });
            }
            Spoil::DelayTimer
                if !self.timer_held
                    && !self.virtual_clock
                    && self.own(left.unwrap_or_else(StdInstant::now)) =>
            {
                // The stack's own frame: the timer that sent it fires DELAY late.
                self.timer_held = true;
                self.acted();
                let late = left.unwrap_or_else(StdInstant::now) + DELAY;
                self.queue.push_back(Held {
                    release: Some(late),
                    left: Some(late),
                    ..held(bytes)
                });
            }
            Spoil::ExtraLate if first => {
                self.kept = Some(held(bytes.clone()));
                self.queue.push_back(held(bytes));
            }
            Spoil::Field(field) => match spoil_field(field, &bytes) {
                Some(spoiled) => {
                    self.acted();
                    self.queue.push_back(held(spoiled));
                }
                None => self.queue.push_back(held(bytes)),
            },
            _ => self.queue.push_back(held(bytes)),
        }
        Ok(true)
    }

    /// The next frame to hand over by `deadline`.
    fn next(&mut self, deadline: StdInstant) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        loop {
            let now = StdInstant::now();
            if let Some(i) = self
                .queue
                .iter()
                .position(|h| h.release.is_none_or(|at| at <= now))
                && let Some(h) = self.queue.remove(i)
            {
                self.last_left = h.left;
                return Ok(Some((h.port, h.bytes)));
            }
            let held = self.queue.iter().filter_map(|h| h.release).min();
            let wait = held.map_or(deadline, |h| h.min(deadline));
            if self.pull(wait)? {
                continue;
            }
            if let Some(h) = held
                && h <= deadline
            {
                // A DUT on a virtual clock answers at once: wait out the real delay.
                std::thread::sleep(h.saturating_duration_since(StdInstant::now()));
                continue;
            }
            // Quiet until the deadline: a frame kept for this moment comes now.
            if let Some(h) = self.kept.take() {
                if self.spoil == Spoil::ExtraLate {
                    self.acted();
                }
                self.last_left = None;
                return Ok(Some((h.port, h.bytes)));
            }
            return Ok(None);
        }
    }
}

/// `bytes` with `field` changed, or `None` when the frame has no such field.
pub fn spoil_field(field: Field, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut frame = Frame::parse(bytes).ok()?;
    match field {
        Field::SrcMac => frame.ethernet.src = other_mac(frame.ethernet.src),
        Field::DstMac => frame.ethernet.dst = other_mac(frame.ethernet.dst),
        Field::ArpOperation => {
            let Network::Arp(a) = &mut frame.network else {
                return None;
            };
            a.operation = match a.operation {
                crate::wire::ArpOperation::Request => crate::wire::ArpOperation::Reply,
                _ => crate::wire::ArpOperation::Request,
            };
        }
        Field::ArpSender => {
            let Network::Arp(a) = &mut frame.network else {
                return None;
            };
            let mut o = a.sender_ip.octets();
            o[3] ^= 1;
            a.sender_ip = o.into();
        }
        Field::IpTtl => match &mut frame.network {
            Network::Ipv4(p) => p.ttl = p.ttl.wrapping_sub(1),
            Network::Ipv6(p) => p.hop_limit = p.hop_limit.wrapping_sub(1),
            _ => return None,
        },
        Field::TransportChecksum => {
            frame.transport()?;
            return Some(
                frame.emit_with(&crate::wire::Faults::default().wrong_transport_checksum()),
            );
        }
        Field::IcmpCode => match frame.transport_mut()? {
            Transport::Icmpv4(m) if !matches!(m.icmp_type, 0 | 8) => m.code += 1,
            Transport::Icmpv6(m) if m.icmp_type < 128 => m.code += 1,
            _ => return None,
        },
        Field::TcpFlags | Field::TcpSeq | Field::TcpAck | Field::TcpWindow | Field::TcpOptions => {
            let Transport::Tcp(s) = frame.transport_mut()? else {
                return None;
            };
            match field {
                Field::TcpFlags if s.payload.is_empty() => s.flags.0 ^= 0x01,
                Field::TcpFlags => s.flags.0 ^= 0x08,
                Field::TcpSeq => s.seq = s.seq.wrapping_add(1),
                Field::TcpAck if s.flags.0 & 0x10 != 0 => s.ack = s.ack.wrapping_add(1),
                Field::TcpWindow => s.window = if s.window == 0 { 1 } else { s.window / 2 },
                Field::TcpOptions => {
                    // The last option that means something (padding is re-made on emit).
                    let i = s
                        .options
                        .iter()
                        .rposition(|o| !matches!(o, TcpOption::Eol | TcpOption::Nop))?;
                    s.options.remove(i);
                }
                _ => return None,
            }
        }
    }
    Some(frame.emit())
}

fn other_mac(mac: MacAddr) -> MacAddr {
    let mut m = mac.0;
    m[5] ^= 0x01;
    MacAddr(m)
}

/// The same outcome, misreported.
fn misreport(outcome: CallOutcome) -> CallOutcome {
    match outcome {
        CallOutcome::Ok => CallOutcome::errno(22),
        CallOutcome::Data(mut d) if !d.is_empty() => {
            d[0] ^= 0xff;
            CallOutcome::Data(d)
        }
        CallOutcome::Sent(n) if n > 0 => CallOutcome::Sent(n - 1),
        CallOutcome::TimedOut => CallOutcome::Ok,
        _ => CallOutcome::TimedOut,
    }
}

fn other_state(state: TcpState) -> TcpState {
    if state == TcpState::Established {
        TcpState::CloseWait
    } else {
        TcpState::Established
    }
}

fn spoil_socket(mut s: TcpSocketState) -> TcpSocketState {
    s.state = other_state(s.state);
    s
}

/// The same answer with its first entry misreported (`None`: nothing to misreport).
fn misreport_answer(answer: &StateAnswer) -> Option<StateAnswer> {
    let mut a = answer.clone();
    match &mut a {
        StateAnswer::TcpSockets(v) => {
            let first = v.first_mut()?;
            *first = spoil_socket(first.clone());
        }
        StateAnswer::TcpInfo(i) => i.state = Some(other_state(i.state?)),
        StateAnswer::Neighbours(v) => {
            let n = v.first_mut()?;
            n.state = if n.state == NudState::Reachable {
                NudState::Stale
            } else {
                NudState::Reachable
            };
        }
        StateAnswer::Routes(v) => {
            v.pop()?;
        }
        StateAnswer::Route { lookup, .. } => {
            lookup.gateway = match lookup.gateway {
                Some(_) => None,
                None => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1))),
            };
        }
        StateAnswer::NoRoute { .. } => return None,
        StateAnswer::NeighbourParams(p) => p.base_reachable_ms += 1000,
        StateAnswer::NeighbourTableInfo(_) => return None,
        StateAnswer::Fdb(v) => {
            let e = v.first_mut()?;
            e.port += 1;
        }
        StateAnswer::Ports(v) => {
            let p = v.first_mut()?;
            p.mac = other_mac(p.mac);
        }
        StateAnswer::Conntrack(v) => {
            let e = v.first_mut()?;
            e.reply.dport = e.reply.dport.wrapping_add(1);
        }
    }
    Some(a)
}

impl Dut for Spoiled {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }

    fn environment(&self) -> Vec<String> {
        let mut env = self.inner.environment();
        env.push(format!("spoiled by = {}", self.spoil));
        env
    }

    fn virtual_now(&self) -> Option<crate::time::Instant> {
        self.inner.virtual_now()
    }

    fn fixed_behaviour(&self) -> Option<std::sync::Arc<crate::dut::fixed::FixedBehaviour>> {
        self.inner.fixed_behaviour()
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        self.inner.link()?;
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        self.inner.sockets()?;
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        self.inner.tables()?;
        Some(self)
    }

    fn services(&mut self) -> Option<&mut dyn crate::dut::Services> {
        self.inner.services()?;
        Some(self)
    }
}

impl Link for Spoiled {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.note_sent(frame);
        let sent = self.inner.send_frame(frame);
        self.poke();
        sent
    }

    fn recv_frame(&mut self, deadline: StdInstant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.next(deadline)?.map(|(_, bytes)| bytes))
    }

    fn last_frame_at(&self) -> Option<StdInstant> {
        self.last_left
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        self.inner.frames_delivered()
    }

    fn ports(&self) -> usize {
        self.caps.link_ports
    }

    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        self.note_sent(frame);
        let sent = self.inner.send_frame_on(port, frame);
        self.poke();
        sent
    }

    fn recv_frame_any(
        &mut self,
        deadline: StdInstant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        self.next(deadline)
    }
}

impl Spoiled {
    /// Remembers the address a frame of the harness announces (ARP), for the phantom.
    fn note_sent(&mut self, frame: &[u8]) {
        if self.spoil == Spoil::TablePhantom
            && let Ok(Frame {
                network: Network::Arp(a),
                ..
            }) = Frame::parse(frame)
            && !a.sender_ip.is_unspecified()
            && !self.announced.iter().any(|(ip, _)| *ip == a.sender_ip)
        {
            self.announced.push((a.sender_ip, a.sender_mac));
        }
    }

    /// `answer` with a phantom neighbour for each announced address it lacks.
    fn with_phantoms(&self, answer: StateAnswer) -> Option<StateAnswer> {
        let StateAnswer::Neighbours(mut entries) = answer else {
            return None;
        };
        let ifindex = entries.first().map_or(0, |e| e.ifindex);
        let before = entries.len();
        for (ip, mac) in &self.announced {
            if !entries.iter().any(|e| e.dst == std::net::IpAddr::V4(*ip)) {
                entries.push(crate::sandbox::NeighbourEntry {
                    ifindex,
                    dst: std::net::IpAddr::V4(*ip),
                    lladdr: Some(*mac),
                    state: NudState::Stale,
                    probes: None,
                    cacheinfo: None,
                });
            }
        }
        (entries.len() > before).then_some(StateAnswer::Neighbours(entries))
    }
}

impl Sockets for Spoiled {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        let outcome = self.inner.call(call);
        self.poke();
        let outcome = outcome?;
        self.calls += 1;
        if self.spoil == Spoil::CallOutcome && self.calls == 1 {
            self.acted();
            return Ok(misreport(outcome));
        }
        Ok(outcome)
    }

    fn answers_wait_for_host(&self) -> bool {
        self.tcp.0
    }

    fn host_answers_within_barriers(&self) -> u8 {
        self.tcp.2
    }

    fn udp(&self) -> bool {
        self.caps.udp
    }

    fn tcp_config(&self) -> crate::dut::TcpStackConfig {
        self.tcp_config
    }
}

impl Tables for Spoiled {
    fn tcp_states_hidden(&self) -> Option<String> {
        self.tcp.1.clone()
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        let answer = self.inner.query(query)?;
        let spoiled = match self.spoil {
            Spoil::TableEntry => misreport_answer(&answer),
            Spoil::TablePhantom => self.with_phantoms(answer.clone()),
            _ => None,
        };
        if let Some(spoiled) = spoiled {
            self.acted();
            return Ok(spoiled);
        }
        Ok(answer)
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        if self.spoil == Spoil::IgnoreSettings {
            self.acted();
            return Ok(());
        }
        let done = self.inner.control(control);
        self.poke();
        done
    }

    fn tcp_connection(
        &mut self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Result<Option<TcpSocketState>, DutError> {
        let socket = self.inner.tcp_connection(local, remote)?;
        if self.spoil == Spoil::TableEntry
            && let Some(s) = socket
        {
            self.acted();
            return Ok(Some(spoil_socket(s)));
        }
        Ok(socket)
    }
}

impl crate::dut::Services for Spoiled {
    fn offered(&self) -> Vec<ServiceImpl> {
        self.caps.services.clone()
    }

    fn exchange(&mut self, request: &ServiceRequest) -> Result<ServiceAnswer, DutError> {
        let mut answer = self.inner.service(request)?;
        if self.spoil == Spoil::ServiceByte {
            match &mut answer {
                ServiceAnswer::TlsExchange(run) => {
                    if let Some(frames) = damage_last_server_byte(run) {
                        run.frames = frames;
                        self.acted();
                    }
                }
            }
        }
        Ok(answer)
    }
}

/// The capture of `run` with the last byte the server sent on its TCP stream (its
/// close_notify or its last data record) flipped in *every* frame that carries it,
/// checksums recomputed: a segment sent twice (a retransmission, or the same packet seen
/// on two interfaces) is damaged the same way in each copy, so the capture stays one
/// consistent stream whose last record cannot verify. `None`: the server sent no data.
pub fn damage_last_server_byte(run: &crate::dut::tls::TlsRun) -> Option<Vec<(u64, Vec<u8>)>> {
    let from_server = |f: &[u8]| f.get(6..12) != Some(&run.client_mac.0[..]);
    let end = run
        .frames
        .iter()
        .filter(|(_, f)| from_server(f))
        .filter_map(|(_, f)| {
            let frame = Frame::parse(f).ok()?;
            let tcp = frame.as_tcp()?;
            (!tcp.payload.is_empty()).then(|| tcp.seq.wrapping_add(tcp.payload.len() as u32))
        })
        // the stream's highest end, in sequence space
        .max_by(|a, b| (a.wrapping_sub(*b) as i32).cmp(&0))?;
    let target = end.wrapping_sub(1);
    let frames = run
        .frames
        .iter()
        .map(|(at, bytes)| {
            let damaged = from_server(bytes)
                .then(|| Frame::parse(bytes).ok())
                .flatten()
                .and_then(|mut frame| {
                    let Some(Transport::Tcp(tcp)) = frame.transport_mut() else {
                        return None;
                    };
                    let offset = target.wrapping_sub(tcp.seq) as usize;
                    let byte = tcp.payload.get_mut(offset)?;
                    *byte ^= 0x80;
                    Some(frame.emit())
                });
            (*at, damaged.unwrap_or_else(|| bytes.clone()))
        })
        .collect();
    Some(frames)
}

#[cfg(test)]
mod tests;
