//! A stack with one neighbour that it never asks for (`[arp.one_neighbour]` in its profile:
//! passt, which serves one guest and takes the guest's MAC from the frames the guest sends).
//!
//! Where a check expects the stack to resolve the peer (an ARP request, answered), such a
//! stack sends its frame at once, to the MAC it last received a frame from: the check then
//! expects that frame to go to the MAC the peer sent from, and no ARP request
//! ([`ExpectToLearnedMac`]).
//!
//! The ARP checks run their scenarios against the declared model
//! ([`crate::models::arp::one_neighbour`]) with [`run_judging`]: every frame the stack sends
//! is predicted (an echo reply to the neighbour, an ARP reply, or nothing), and after every
//! step (and before the first) the one entry is **read on the wire** without sending it a
//! frame: the stack's host side opens a connection to a port passt forwards to its guest, so
//! passt sends a SYN to the MAC and address it holds, which the harness refuses with a RST
//! from that same MAC and address (which leaves both as they were). The RFC clauses of the
//! check then judge what the exchange showed: a packet sent before any frame gave the stack
//! a MAC, to its initial MAC without asking, breaks RFC 826's packet generation; a reply to a
//! request for an address that is not the stack's breaks RFC 826's reception (`?Am I the
//! target protocol address?`); and an entry that nothing ever validates or flushes breaks
//! RFC 1122 §2.3.2.1's MUST.

use std::net::{IpAddr, Ipv4Addr};

use crate::dut::fixed::FixedBehaviour;
use crate::dut::{CallOutcome, Control, DutError, Family, SocketCall, SocketId};
use crate::engine::expect::{Expectation, Observed, field, parsed};
use crate::engine::scenario::Counterexample;
use crate::engine::{CheckError, Clause, Session};
use crate::models::arp::ArpIn;
use crate::models::arp::one_neighbour::{NextHop, OneNeighbour, OneNeighbourConfig};
use crate::suites::arp::scenario::{self, ArpScenario, BadArp, PeerSpec, Step};
use crate::suites::arp::{CACHE_VALIDATION, RECEPTION, REQUEST};
use crate::time::{Duration, Instant};
use crate::wire::{
    ArpOperation, Frame, Icmpv4Kind, Icmpv4Message, MacAddr, Network, TcpFlags, TcpSegment,
    Transport,
};

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

/// How long after an input the stack's answer may come (passt answers an echo request
/// through a host ping socket, in a later turn of its loop).
const ANSWER: Duration = Duration::from_millis(1000);
/// How long nothing more may come after an input's predicted answers.
const QUIET: Duration = Duration::from_millis(60);
/// Echo identifier of the pings the peers send (as [`crate::suites::arp::scenario`]'s).
const PING_ID: u16 = 0x6e70;
/// The guest ports passt forwards from its host side (agents/passt.rs `FORWARDS`:
/// 10000-10199); the cache reads use the upper half.
const READ_PORTS: (u16, u16) = (10_100, 100);

/// Runs `scenario` against a stack that declares one neighbour (`[arp.one_neighbour]` with
/// `sends_requests = false`), judging `judged` (the check's clauses) on what it showed;
/// `None` when the stack declares no such thing (the ordinary runner then runs it).
pub fn run_judging(
    s: &mut Session<'_>,
    scenario: &ArpScenario,
    judged: &[Clause],
) -> Option<Result<(), CheckError>> {
    let fixed = s.fixed_behaviour()?;
    let one = fixed.one_neighbour()?;
    if one.sends_requests {
        return None;
    }
    let result = OneRun::run(s, scenario, &fixed, judged);
    if let Err(e) = &result
        && !matches!(e, CheckError::Dut { .. })
    {
        s.offer_counterexample(Counterexample::scenario(Box::new(scenario.clone())));
    }
    Some(result)
}

/// One scenario against a one-neighbour stack.
struct OneRun<'a, 's> {
    s: &'a mut Session<'s>,
    scenario: &'a ArpScenario,
    model: OneNeighbour,
    stack_mac: MacAddr,
    stack_ip: Ipv4Addr,
    /// The address the stack's host side connects to (the guest's: passt's `-a`).
    guest: Ipv4Addr,
    file: String,
    step: String,
    ping_seq: u16,
    reads: u16,
    frames: usize,
    /// Requests for an address that is not the stack's that it answered, as predicted.
    replies_for_others: Vec<String>,
    /// Packets it sent, as predicted, before any frame gave it a MAC (and without asking).
    sent_unresolved: Vec<String>,
    /// When a frame last came from the MAC the entry holds, and the longest the entry was
    /// then read on the wire, still used, with no frame from that MAC in between.
    last_from_entry: Instant,
    longest_unvalidated: Duration,
}

impl<'a, 's> OneRun<'a, 's> {
    fn run(
        s: &'a mut Session<'s>,
        scenario: &'a ArpScenario,
        fixed: &FixedBehaviour,
        judged: &[Clause],
    ) -> Result<(), CheckError> {
        let mut run = OneRun::setup(s, scenario, fixed)?;
        run.read_entry("the entry before any frame")?;
        for (i, step) in scenario.steps.iter().enumerate() {
            run.step(i, step)?;
            run.read_entry(&format!("the entry after step {}", i + 1))?;
        }
        run.judge(judged)
    }

    fn setup(
        s: &'a mut Session<'s>,
        scenario: &'a ArpScenario,
        fixed: &FixedBehaviour,
    ) -> Result<Self, CheckError> {
        let step = "set-up".to_string();
        let one = fixed
            .one_neighbour()
            .ok_or_else(|| harness(&step, "no [arp.one_neighbour] declared"))?;
        let e = s.endpoints().clone();
        let (Some((stack_ip, _)), Some(guest)) = (e.stack_ipv4, e.peer_ipv4) else {
            return Err(CheckError::Dut {
                step,
                source: DutError::NotSupported {
                    what: "ARP needs an IPv4 address on the stack and on its neighbour".into(),
                },
            });
        };
        // The stack takes no setting: the declaration stands in for each one it refuses.
        let mut declared = Vec::new();
        if scenario::refusal(s.control(&step, &Control::ArpPolicy(scenario.policy)))?.is_none() {
            return Err(harness(
                &step,
                "the stack took an ARP policy, but declares one neighbour and no table",
            ));
        }
        declared.push(format!(
            "no ARP policy: it answers a request for any address but its neighbour's {guest} (the scenario's: accept {:?}, ignore {:?})",
            scenario.policy.accept, scenario.policy.ignore
        ));
        if scenario.forwarding
            && let Some(why) = scenario::refusal(s.control(&step, &Control::Forwarding(true)))?
        {
            let what = match fixed.ip.as_ref() {
                Some(ip) if !ip.forwarding => format!(
                    "{why}; {} declares that {} does not forward ([ip] forwarding = false), and this check's point is a packet the stack forwards",
                    fixed.file, fixed.stack
                ),
                _ => format!(
                    "{why}; nothing declared in its place: declare [ip] forwarding in {} to run the check against the stack's fixed behaviour",
                    fixed.file
                ),
            };
            return Err(CheckError::Dut {
                step,
                source: DutError::NotSupported { what },
            });
        }
        if let Some(gw) = scenario.gateway.and_then(|g| scenario.peers.get(g)) {
            let route = Control::Route {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                via: gw.ip(),
            };
            if scenario::refusal(s.control(&step, &route))?.is_some() {
                declared.push(format!(
                    "no route table: the default route via {} is not set, every frame goes to the one neighbour",
                    gw.ip()
                ));
            }
        }
        let initial_mac = one
            .initial_mac
            .parse::<MacAddr>()
            .map_err(|e| harness(&step, &format!("initial_mac: {e:?}")))?;
        declared.push(format!(
            "one neighbour, never asked for: its MAC the source of the last frame received (before any: {initial_mac}), its address the source of the last IPv4 packet (before any: {guest}); announcements {}",
            if one.answers_announcements {
                "answered"
            } else {
                "not answered"
            }
        ));
        s.note(format!(
            "ran against {}'s fixed ARP behaviour ({}): {}",
            fixed.stack,
            fixed.file,
            declared.join("; ")
        ));
        scenario::name_peers(s, scenario);
        let model = OneNeighbour::new(OneNeighbourConfig {
            mac: e.stack_mac,
            neighbour_addr: guest,
            initial_mac,
            answers_announcements: one.answers_announcements,
        });
        let now = s.now();
        Ok(OneRun {
            s,
            scenario,
            model,
            stack_mac: e.stack_mac,
            stack_ip,
            guest,
            file: fixed.file.clone(),
            step,
            ping_seq: 0,
            reads: 0,
            frames: 0,
            replies_for_others: Vec::new(),
            sent_unresolved: Vec::new(),
            last_from_entry: now,
            longest_unvalidated: Duration::ZERO,
        })
    }

    fn mismatch(&self, differences: Vec<String>) -> CheckError {
        CheckError::Mismatch {
            step: self.step.clone(),
            differences,
        }
    }

    fn peer(&self, i: usize) -> Result<&'a PeerSpec, CheckError> {
        self.scenario
            .peers
            .get(i)
            .ok_or_else(|| harness(&self.step, &format!("no peer {i}")))
    }

    /// Sends `bytes` from `eth_src`, telling the model (every frame moves its entry).
    fn send(&mut self, eth_src: MacAddr, bytes: &[u8]) -> Result<(), CheckError> {
        let step = self.step.clone();
        self.s.send_bytes(&step, bytes)?;
        self.model.handle_frame(eth_src);
        self.last_from_entry = self.s.now();
        Ok(())
    }

    fn step(&mut self, i: usize, step: &Step) -> Result<(), CheckError> {
        self.step = format!("step {} ({step})", i + 1);
        self.s.note(format!("step {}: {step}", i + 1));
        match step {
            Step::Wait { ms } => {
                let until = self.s.now() + Duration::from_millis(*ms);
                self.silence_until(until)
            }
            Step::Ping { from } => self.ping(*from),
            Step::Forward { .. } => Err(harness(
                &self.step,
                "a forwarded packet in a scenario without forwarding",
            )),
            Step::Arp {
                from,
                kind,
                alt_mac,
                unicast,
            } => {
                let p = self.peer(*from)?;
                let sha = p.mac(*alt_mac);
                let ip = p.ip();
                let arp = kind.packet(sha, ip, self.stack_mac, self.stack_ip);
                let dst = if *unicast {
                    self.stack_mac
                } else {
                    MacAddr::BROADCAST
                };
                let frame = Frame::new(sha, dst, Network::Arp(scenario::arp_repr(&arp)));
                self.send(sha, &frame.emit())?;
                self.arp_answer(sha, &arp)
            }
            Step::Malformed { from, bad } => {
                let p = self.peer(*from)?;
                let (mac, arp, bytes) = self.bad_arp(p, *bad);
                self.send(mac, &bytes)?;
                self.arp_answer(mac, &arp)
            }
        }
    }

    /// Peer `from` pings the stack (an off-link peer through the gateway's MAC); the echo
    /// reply goes to the one neighbour, at the address the stack sends to.
    fn ping(&mut self, from: usize) -> Result<(), CheckError> {
        let p = self.peer(from)?;
        let (eth_src, ip) = if p.off_link {
            let gw = self
                .scenario
                .gateway
                .ok_or_else(|| harness(&self.step, "an off-link peer needs a gateway"))?;
            (self.peer(gw)?.mac(false), p.ip())
        } else {
            (p.mac(false), p.ip())
        };
        self.ping_seq += 1;
        let seq = self.ping_seq;
        let frame = Frame::icmpv4(
            eth_src,
            self.stack_mac,
            ip,
            self.stack_ip,
            Icmpv4Message::echo_request(PING_ID, seq, b"netconform arp".to_vec()),
        );
        self.send(eth_src, &frame.emit())?;
        self.model.handle_ipv4(ip);
        let hop = self.model.handle_echo_request();
        let observed = self.next_frame(&format!("an echo reply to {} at {}", hop.addr, hop.mac))?;
        let frame = self.parsed(&observed)?;
        let mut d = Vec::new();
        self.compare_ip(&mut d, &frame, hop);
        match ip_transport(&frame) {
            Some(Transport::Icmpv4(m)) => match m.kind() {
                Icmpv4Kind::EchoReply { id, seq: got } => {
                    field(&mut d, "icmp.id", PING_ID, id);
                    field(&mut d, "icmp.seq", seq, got);
                }
                other => d.push(format!("icmp: expected an echo reply, observed {other:?}")),
            },
            _ => d.push(format!(
                "frame: expected an echo reply, observed {}",
                frame.summary()
            )),
        }
        if !d.is_empty() {
            return Err(self.mismatch(d));
        }
        self.quiet()
    }

    /// What the stack answers to `arp` (sent from `eth_src`): the model's reply, or nothing.
    fn arp_answer(&mut self, eth_src: MacAddr, arp: &ArpIn) -> Result<(), CheckError> {
        let Some(reply) = self.model.handle_arp(eth_src, arp) else {
            return self.quiet();
        };
        let observed =
            self.next_frame(&format!("an ARP reply {} is-at {}", reply.spa, reply.sha))?;
        let frame = self.parsed(&observed)?;
        let mut d = Vec::new();
        field(&mut d, "eth.destination", reply.eth_dst, frame.ethernet.dst);
        field(&mut d, "eth.source", self.stack_mac, frame.ethernet.src);
        match &frame.network {
            Network::Arp(a) => {
                field(
                    &mut d,
                    "arp.operation",
                    format!("{:?}", ArpOperation::Reply),
                    format!("{:?}", a.operation),
                );
                field(&mut d, "arp.sender_mac", reply.sha, a.sender_mac);
                field(&mut d, "arp.sender_ip", reply.spa, a.sender_ip);
                field(&mut d, "arp.target_mac", reply.tha, a.target_mac);
                field(&mut d, "arp.target_ip", reply.tpa, a.target_ip);
            }
            _ => d.push(format!(
                "frame: expected an ARP reply, observed {}",
                frame.summary()
            )),
        }
        if !d.is_empty() {
            return Err(self.mismatch(d));
        }
        if reply.spa != self.stack_ip {
            self.replies_for_others.push(format!(
                "{}: who-has {} tell {} answered {} is-at {}",
                self.step, reply.spa, reply.tpa, reply.spa, reply.sha
            ));
        }
        self.quiet()
    }

    /// Reads the one entry on the wire: the stack's host side connects to a port passt
    /// forwards to its guest, passt sends the SYN to the MAC and address it holds, and the
    /// harness refuses it with a RST from that MAC and address (which moves nothing).
    fn read_entry(&mut self, what: &str) -> Result<(), CheckError> {
        self.step = format!("cache read: {what}");
        self.s.note(self.step.clone());
        self.reads += 1;
        let sock = SocketId(0x6e00 + u32::from(self.reads));
        let port = READ_PORTS.0 + self.reads % READ_PORTS.1;
        let hop = self.model.next_hop();
        let step = self.step.clone();
        let outcome = self.s.call(
            &step,
            SocketCall::Connect {
                sock,
                family: Family::Ipv4,
                addr: IpAddr::V4(self.guest),
                port,
            },
        )?;
        if let CallOutcome::Errno { .. } = outcome {
            return Err(CheckError::WrongAnswer {
                step,
                expected: "a connection under way".into(),
                observed: format!("{outcome:?}"),
            });
        }
        let observed = self.next_frame(&format!("a SYN to {}:{port} at {}", hop.addr, hop.mac))?;
        let frame = self.parsed(&observed)?;
        let mut d = Vec::new();
        self.compare_ip(&mut d, &frame, hop);
        let syn = match ip_transport(&frame) {
            Some(Transport::Tcp(t)) => {
                field(
                    &mut d,
                    "tcp.flags",
                    TcpFlags::SYN.to_string(),
                    t.flags.to_string(),
                );
                field(&mut d, "tcp.dst_port", port, t.dst_port);
                Some(t.clone())
            }
            _ => {
                d.push(format!(
                    "frame: expected a SYN, observed {}",
                    frame.summary()
                ));
                None
            }
        };
        let (Some(syn), true, Network::Ipv4(ip)) = (syn, d.is_empty(), &frame.network) else {
            return Err(self.mismatch(d));
        };
        if !self.model.learned() {
            self.sent_unresolved.push(format!(
                "{}: a SYN to {} sent to {} before any frame came from it, no ARP request",
                self.step, hop.addr, hop.mac
            ));
        }
        let unvalidated = self.s.now().saturating_since(self.last_from_entry);
        self.longest_unvalidated = self.longest_unvalidated.max(unvalidated);
        let rst = TcpSegment::new(
            port,
            syn.src_port,
            0,
            syn.seq.wrapping_add(1),
            TcpFlags::RST | TcpFlags::ACK,
        );
        let rst = Frame::tcp_v4(hop.mac, self.stack_mac, hop.addr, ip.src, rst);
        let step = self.step.clone();
        self.s.send(&step, &rst)?;
        self.model.handle_frame(hop.mac);
        self.model.handle_ipv4(hop.addr);
        self.last_from_entry = self.s.now();
        self.s.call(&step, SocketCall::Close { sock })?;
        self.quiet()
    }

    /// The IPv4 frame's addresses against the model's next hop.
    fn compare_ip(&self, d: &mut Vec<String>, frame: &Frame, hop: NextHop) {
        field(d, "eth.destination", hop.mac, frame.ethernet.dst);
        field(d, "eth.source", self.stack_mac, frame.ethernet.src);
        if let Network::Ipv4(ip) = &frame.network {
            field(d, "ip.source", self.stack_ip, ip.src);
            field(d, "ip.destination", hop.addr, ip.dst);
        }
    }

    fn parsed(&self, observed: &Observed) -> Result<Frame, CheckError> {
        parsed(observed).cloned().map_err(|d| self.mismatch(d))
    }

    /// The stack's next frame, which the model predicts as `expected`.
    fn next_frame(&mut self, expected: &str) -> Result<Observed, CheckError> {
        let step = self.step.clone();
        let until = self.s.now() + ANSWER;
        match self.s.next_any_frame(&step, until)? {
            Some((_, observed)) => {
                self.frames += 1;
                Ok(observed)
            }
            None => Err(self.mismatch(vec![format!(
                "expected {expected}, nothing observed within {ANSWER}"
            )])),
        }
    }

    /// Nothing more for a while: the model predicts nothing.
    fn quiet(&mut self) -> Result<(), CheckError> {
        let until = self.s.now() + QUIET;
        self.silence_until(until)
    }

    fn silence_until(&mut self, until: Instant) -> Result<(), CheckError> {
        let step = self.step.clone();
        match self.s.next_any_frame(&step, until)? {
            None => Ok(()),
            Some((_, observed)) => Err(self.mismatch(vec![format!(
                "unexpected {} (the model predicts nothing)",
                observed.summary()
            )])),
        }
    }

    /// A broken ARP request from `p` ([`scenario::bad_arp_request`]): the Ethernet source,
    /// what the model is told, and the bytes.
    fn bad_arp(&self, p: &PeerSpec, bad: BadArp) -> (MacAddr, ArpIn, Vec<u8>) {
        let prefix_len = self.s.endpoints().stack_ipv4.map_or(24, |(_, l)| l);
        let (arp, bytes) = scenario::bad_arp_request(p, bad, self.stack_ip, prefix_len);
        (p.mac(false), arp, bytes)
    }

    /// The check's clauses against what the stack was seen to do.
    fn judge(self, judged: &[Clause]) -> Result<(), CheckError> {
        self.s.note(format!(
            "model and stack agree: {} frames compared, the entry read on the wire {} times",
            self.frames, self.reads
        ));
        let judges = |c: &Clause| judged.iter().any(|j| j.id == c.id);
        let mut d = Vec::new();
        if judges(&REQUEST) && !self.sent_unresolved.is_empty() {
            d.push(format!(
                "{} ({}: a packet whose address pair is not in the table is not sent: an ARP request is broadcast): expected an ARP request before the first packet to an address whose MAC the stack does not know, observed {} (declared in {}: [arp.one_neighbour] sends_requests = false, initial_mac = \"{}\")",
                REQUEST.id,
                REQUEST.source,
                self.sent_unresolved.join("; "),
                self.file,
                self.model.config().initial_mac
            ));
        }
        if judges(&RECEPTION) && !self.replies_for_others.is_empty() {
            d.push(format!(
                "{} ({}: \"?Am I the target protocol address? ... Yes: ... Send the packet\"): expected no reply to a request for an address that is not the stack's, observed {} (declared in {}: [arp.one_neighbour] answers = \"any-but-neighbour\")",
                RECEPTION.id,
                RECEPTION.source,
                self.replies_for_others.join("; "),
                self.file
            ));
        }
        if judges(&CACHE_VALIDATION) {
            d.push(format!(
                "{} ({}, MUST provide a mechanism to flush out-of-date cache entries): expected the entry flushed or revalidated (a timeout, or unicast polls), observed it used {} after the last frame from its MAC with no request, and nothing that would ever flush it (declared in {}: [arp.one_neighbour], the entry changes only when a frame arrives)",
                CACHE_VALIDATION.id,
                CACHE_VALIDATION.source,
                self.longest_unvalidated,
                self.file
            ));
        }
        if d.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                step: "end".into(),
                differences: d,
            })
        }
    }
}

/// The IP layer's transport of `frame`, if it is IPv4.
fn ip_transport(frame: &Frame) -> Option<&Transport> {
    match &frame.network {
        Network::Ipv4(ip) => Some(&ip.transport),
        _ => None,
    }
}

fn harness(step: &str, bug: &str) -> CheckError {
    CheckError::Harness {
        step: step.into(),
        bug: bug.into(),
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
