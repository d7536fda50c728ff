//! Whatever a stack sends back — garbage, truncated or corrupted frames, segments nobody
//! asked for — the harness reports it as an observation and never panics.
//!
//! A scripted target (`netconform::fuzz::receive::Scripted`, the one the `receive` fuzz
//! target uses) answers every frame the harness sends with frames proptest chose (then, for
//! the barrier's echo request, the echo reply), so the whole receive path — parse,
//! classify, compare, record, render — sees arbitrary input.

use proptest::prelude::*;

use netconform::engine::Session;
use netconform::fuzz::receive::{PEER, PEER_MAC, STACK, STACK_MAC, Scripted};
use netconform::models::tcp::State;
use netconform::suites::tcp::matrix::path_to;
use netconform::suites::tcp::scenario::{ProfileName, TcpScenario, run_scenario};
use netconform::wire::{Frame, TcpFlags, TcpSegment};

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
