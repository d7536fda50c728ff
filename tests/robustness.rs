//! Whatever a stack sends back — garbage, truncated or corrupted frames, segments nobody
//! asked for — the harness reports it as an observation and never panics.
//!
//! A scripted target answers every frame the harness sends with frames proptest chose
//! (then, for the barrier's echo request, the echo reply), so the whole receive path —
//! parse, classify, compare, record, render — sees arbitrary input.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use netconform::check::Session;
use netconform::check::tcp_matrix::path_to;
use netconform::check::tcp_scenario::{ProfileName, TcpScenario, run_scenario};
use netconform::models::tcp::State;
use netconform::target::{
    CallOutcome, Endpoints, SocketCall, SocketId, StateAnswer, StateQuery, Target, TargetError,
};
use netconform::wire::{
    Frame, Icmpv4Kind, Icmpv4Message, MacAddr, TcpFlags, TcpSegment, Transport,
};

const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const STACK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// A stack that answers with whatever it was given.
struct Scripted {
    endpoints: Endpoints,
    answers: VecDeque<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
}

impl Scripted {
    fn new(answers: Vec<Vec<u8>>) -> Self {
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

impl Target for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn send_frame(&mut self, frame: &[u8]) -> Result<(), TargetError> {
        // Two of the scripted answers follow every frame the harness sends.
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

    fn recv_frame(
        &mut self,
        _deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(self.queue.pop_front())
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, TargetError> {
        Ok(match call {
            SocketCall::Accept { .. } => CallOutcome::NewSocket(SocketId(99)),
            SocketCall::Recv { .. } => CallOutcome::TimedOut,
            SocketCall::Send { data, .. } => CallOutcome::Sent(data.len()),
            _ => CallOutcome::Ok,
        })
    }

    fn query(&mut self, _query: &StateQuery) -> Result<StateAnswer, TargetError> {
        Ok(StateAnswer::TcpSockets(Vec::new()))
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
}

/// Frames a stack might send: valid segments of the flow (possibly truncated or with a
/// flipped byte), and arbitrary bytes.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    let segment = (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(flags, seq, ack, payload)| {
            let seg = TcpSegment {
                payload,
                ..TcpSegment::new(5000, 5000, seq, ack, TcpFlags(flags))
            };
            Frame::tcp_v4(STACK_MAC, PEER_MAC, STACK, PEER, seg).emit()
        });
    prop_oneof![
        segment.clone(),
        (segment.clone(), any::<prop::sample::Index>())
            .prop_map(|(b, i)| b[..i.index(b.len())].to_vec()),
        (segment, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut b, i, x)| {
            let at = i.index(b.len());
            b[at] ^= x | 1;
            b
        }),
        proptest::collection::vec(any::<u8>(), 0..120),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any answers: the scenario ends with a verdict (usually a disagreement), never a panic,
    /// and its trace renders.
    #[test]
    fn arbitrary_answers_never_panic(answers in proptest::collection::vec(answer(), 0..24), state in proptest::sample::select(vec![State::Listen, State::Established, State::TimeWait, State::SynSent])) {
        let mut target = Scripted::new(answers);
        let scenario = TcpScenario { name: "robustness".into(), profile: ProfileName::Linux, ipv6: false, peer_mss: Some(1460), events: path_to(state) };
        let mut session = Session::new(&mut target);
        let result = run_scenario(&mut session, &scenario, 5000);
        let text = session.trace().render(session.host_names());
        prop_assert!(!text.is_empty() || scenario.events.is_empty());
        if let Err(e) = result {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// A malformed frame addressed to the peer is named as such in the verdict.
#[test]
fn a_malformed_answer_is_reported_as_an_observation() {
    let seg = TcpSegment::new(5000, 5000, 1, 1, TcpFlags::SYN_ACK);
    let frame = Frame::tcp_v4(STACK_MAC, PEER_MAC, STACK, PEER, seg).emit();
    // Cut inside the TCP header.
    let truncated = frame[..40].to_vec();
    let mut target = Scripted::new(vec![truncated]);
    let scenario = TcpScenario {
        name: "truncated".into(),
        profile: ProfileName::Linux,
        ipv6: false,
        peer_mss: Some(1460),
        events: path_to(State::SynReceived),
    };
    let mut session = Session::new(&mut target);
    let err = run_scenario(&mut session, &scenario, 5000)
        .expect_err("a truncated SYN-ACK is not a SYN-ACK");
    let text = err.to_string();
    assert!(text.contains("malformed frame from the stack"), "{text}");
    let trace = session.trace().render(session.host_names());
    assert!(
        trace.contains("needs"),
        "the trace says what is missing:\n{trace}"
    );
}
