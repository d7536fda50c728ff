//! The receive path: frames a stack under test might send, through everything the harness
//! does with them. A [`Scripted`] stack answers each frame the harness sends with the next
//! frames of the input; a TCP scenario runs against it (parse, classify, compare with the
//! model and the expectations), and its outcome is turned into a report: the verdict, the
//! rendered and JSON-decoded trace, the pcap (which must read back to the same frames).
//!
//! Input layout: byte 0 picks the state the scenario drives the stack to; then frames, each
//! a 2-byte big-endian length and that many bytes (a short last frame is taken as it is).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Allowed, Outcome, ensure};
use crate::dut::{
    CallOutcome, Dut, DutError, Endpoints, SocketCall, SocketId, StateAnswer, StateQuery,
};
use crate::engine::runner::verdict_of;
use crate::engine::{Session, Verdict};
use crate::models::profile::ProfileName;
use crate::models::tcp::State;
use crate::suites::tcp::matrix::path_to;
use crate::suites::tcp::scenario::{TcpScenario, run_scenario};
use crate::trace::Trace;
use crate::wire::{Frame, Icmpv4Kind, Icmpv4Message, MacAddr, Transport};

/// The harness side's MAC address in a [`Scripted`] set-up.
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The scripted stack's MAC address.
pub const STACK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// The harness side's IPv4 address.
pub const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The scripted stack's IPv4 address.
pub const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// A stack that answers with whatever it was given: after each frame the harness sends, the
/// next two scripted frames arrive (then, for an ICMP echo request — the harness's barrier —
/// the echo reply). Socket calls succeed; a receive times out. No clock, no sockets.
#[derive(Debug)]
pub struct Scripted {
    endpoints: Endpoints,
    answers: VecDeque<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
}

impl Scripted {
    /// A stack that will answer with `answers`, in order.
    pub fn new(answers: Vec<Vec<u8>>) -> Self {
        Scripted {
            endpoints: Endpoints {
                harness_mac: PEER_MAC,
                stack_mac: STACK_MAC,
                stack_ipv4: Some((STACK, 24)),
                peer_ipv4: Some(PEER),
                stack_ipv6: Some((Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2), 64)),
                peer_ipv6: Some(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1)),
                mtu: 1500,
            },
            answers: answers.into(),
            queue: VecDeque::new(),
        }
    }
}

impl Dut for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn crate::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Link for Scripted {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        for _ in 0..2 {
            if let Some(a) = self.answers.pop_front() {
                self.queue.push_back(a);
            }
        }
        if let Ok(f) = Frame::parse(frame)
            && let Some(Transport::Icmpv4(m)) = f.transport()
            && let Icmpv4Kind::EchoRequest { id, seq } = m.kind()
        {
            let reply = Frame::icmpv4(
                STACK_MAC,
                PEER_MAC,
                STACK,
                PEER,
                Icmpv4Message::echo_reply(id, seq, m.payload.clone()),
            );
            self.queue.push_back(reply.emit());
        }
        Ok(())
    }

    fn recv_frame(&mut self, _deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.queue.pop_front())
    }
}

impl crate::dut::Sockets for Scripted {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        Ok(match call {
            SocketCall::Accept { .. } => CallOutcome::NewSocket(SocketId(99)),
            SocketCall::Recv { .. } => CallOutcome::TimedOut,
            SocketCall::Send { data, .. } => CallOutcome::Sent(data.len()),
            _ => CallOutcome::Ok,
        })
    }
}

impl crate::dut::Tables for Scripted {
    fn query(&mut self, _query: &StateQuery) -> Result<StateAnswer, DutError> {
        Ok(StateAnswer::TcpSockets(Vec::new()))
    }
}

/// The states a receive-path input can drive the scenario to (byte 0, modulo).
const STATES: [State; 6] = [
    State::Listen,
    State::SynReceived,
    State::Established,
    State::FinWait1,
    State::TimeWait,
    State::SynSent,
];

/// Splits the input into frames: 2-byte big-endian length, then the bytes.
fn frames(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        out.push(rest[..len].to_vec());
        data = &rest[len..];
    }
    out
}

/// Encodes frames in the layout the `receive` target reads (for seeds and tests).
pub fn encode(state_selector: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![state_selector];
    for f in frames {
        let len = u16::try_from(f.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&f[..usize::from(len)]);
    }
    out
}

/// The receive-path target.
pub(super) fn receive(data: &[u8]) -> Outcome {
    const T: &str = "receive";
    let Some((selector, rest)) = data.split_first() else {
        return Ok(Allowed::NONE);
    };
    let state = STATES[usize::from(*selector) % STATES.len()];
    let frames = frames(rest);
    // Every frame that parses survives emit → parse (once its computed fields are set).
    for bytes in &frames {
        if let Ok(mut frame) = Frame::parse(bytes) {
            super::display(&frame);
            frame.fill_computed();
            let again = Frame::parse(&frame.emit());
            ensure!(
                again.as_ref() == Ok(&frame),
                T,
                "parse(emit(frame)) = {again:?}, not {frame:?}"
            );
        }
    }
    let mut target = Scripted::new(frames);
    let scenario = TcpScenario {
        name: "receive path".into(),
        profile: ProfileName::Linux,
        ipv6: false,
        peer_mss: Some(1460),
        events: path_to(state),
    };
    let mut session = Session::new(&mut target);
    let result = run_scenario(&mut session, &scenario, 5000);
    // The report of the run, as `certify` makes it.
    let verdict = match &result {
        Ok(()) => Verdict::Pass,
        Err(e) => {
            ensure!(!e.to_string().is_empty(), T, "an error with no text: {e:?}");
            verdict_of(e)
        }
    };
    let json = serde_json::to_string(&verdict);
    ensure!(json.is_ok(), T, "the verdict does not serialise: {json:?}");
    let names = session.host_names().clone();
    let trace = session.into_trace();
    let text = trace.render(&names);
    ensure!(!text.is_empty(), T, "the trace renders to nothing");
    // The decoded JSON the report and `trace show --json` give, streamed (building the
    // value was half of this target's time).
    let json = trace.write_json_decoded(&names, std::io::sink());
    ensure!(
        json.is_ok(),
        T,
        "the decoded trace does not serialise: {json:?}"
    );
    // The pcap the report carries reads back to the same frames.
    let mut pcap = Vec::new();
    if let Err(e) = trace.write_pcap(&mut pcap) {
        return Err(super::Finding::new(T, format!("pcap not written: {e}")));
    }
    let back = Trace::read_capture_from(pcap.as_slice());
    let sent: Vec<&[u8]> = trace.frames().map(|(_, _, b)| b).collect();
    let read: Option<Vec<Vec<u8>>> = back
        .as_ref()
        .ok()
        .map(|t| t.frames().map(|(_, _, b)| b.to_vec()).collect());
    ensure!(
        read.as_ref()
            .is_some_and(|r| r.iter().map(Vec::as_slice).eq(sent.iter().copied())),
        T,
        "the report's pcap does not read back to its {} frames: {:?}",
        sent.len(),
        back.err()
    );
    Ok(Allowed::NONE)
}
