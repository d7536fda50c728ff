//! Whatever a stack sends back or reports — garbage frames, cut or corrupted ARP, replies to
//! nobody, a neighbour table full of nonsense — the ARP runner ends in agreement or a
//! disagreement with the model, never a panic and never a harness error.
//!
//! A scripted target answers every frame the harness sends with frames proptest chose, and
//! answers every neighbour dump with entries proptest chose.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use netconform::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery,
};
use netconform::engine::{CheckError, Session};
use netconform::models::arp::{ArpAccept, ArpIgnore, ArpPolicy, ArpProfile};
use netconform::sandbox::{NeighbourEntry, NeighbourParams, NeighbourTableInfo, NudState};
use netconform::suites::arp::scenario::{
    ArpKind, ArpScenario, BadArp, PeerSpec, Step, Timers, run_arp_scenario,
};
use netconform::wire::{Frame, MacAddr};

const STACK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

struct Scripted {
    endpoints: Endpoints,
    answers: VecDeque<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
    tables: VecDeque<Vec<NeighbourEntry>>,
}

impl Dut for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn netconform::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl netconform::dut::Link for Scripted {
    fn send_frame(&mut self, _frame: &[u8]) -> Result<(), DutError> {
        for _ in 0..2 {
            if let Some(a) = self.answers.pop_front() {
                self.queue.push_back(a);
            }
        }
        Ok(())
    }

    fn recv_frame(&mut self, _deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.queue.pop_front())
    }
}

impl netconform::dut::Sockets for Scripted {
    fn call(&mut self, _call: &SocketCall) -> Result<CallOutcome, DutError> {
        Ok(CallOutcome::Ok)
    }
}

impl netconform::dut::Tables for Scripted {
    fn control(&mut self, _control: &Control) -> Result<(), DutError> {
        Ok(())
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        Ok(match query {
            StateQuery::NeighbourParams => StateAnswer::NeighbourParams(NeighbourParams {
                ifindex: 2,
                reachable_ms: 120,
                base_reachable_ms: 160,
                retrans_ms: 60,
                delay_probe_ms: 60,
                gc_stale_ms: 3_600_000,
                locktime_ms: 100,
                ucast_probes: 3,
                mcast_probes: 3,
                app_probes: 0,
                mcast_reprobes: 0,
            }),
            StateQuery::NeighbourTableInfo => StateAnswer::NeighbourTableInfo(NeighbourTableInfo {
                entries: 1,
                gc_thresh1: 128,
                periodic_gc_runs: 0,
            }),
            _ => StateAnswer::Neighbours(self.tables.pop_front().unwrap_or_default()),
        })
    }
}

fn peer_mac(octet: u8) -> MacAddr {
    MacAddr([0x02, 0x6e, 0x63, 0, 0, octet])
}

/// Frames a stack might send: ARP requests and replies that are right, cut or corrupted,
/// and arbitrary bytes.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    let arp = (any::<bool>(), 0u8..6, any::<bool>()).prop_map(|(request, octet, bcast)| {
        let ip = Ipv4Addr::new(10, 77, 0, octet);
        let frame = if request {
            let mut f = Frame::arp_request(STACK_MAC, STACK, ip);
            if !bcast {
                f.ethernet.dst = peer_mac(octet);
            }
            f
        } else {
            Frame::arp_reply(STACK_MAC, STACK, peer_mac(octet), ip)
        };
        frame.emit()
    });
    let damaged = (
        arp.clone(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(mut bytes, at, byte, cut)| {
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
            } else {
                bytes[i] ^= byte | 1;
            }
            bytes
        });
    prop_oneof![
        3 => arp,
        2 => damaged,
        1 => proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

fn table() -> impl Strategy<Value = Vec<NeighbourEntry>> {
    let state = proptest::sample::select(vec![
        NudState::Incomplete,
        NudState::Reachable,
        NudState::Stale,
        NudState::Delay,
        NudState::Probe,
        NudState::Failed,
        NudState::Noarp,
        NudState::Other(0x80),
    ]);
    let entry = (0u8..6, state, any::<bool>(), proptest::option::of(0u32..8)).prop_map(
        |(octet, state, mac, probes)| NeighbourEntry {
            ifindex: 2,
            dst: IpAddr::V4(Ipv4Addr::new(10, 77, 0, octet)),
            lladdr: mac.then_some(peer_mac(octet)),
            state,
            probes,
            cacheinfo: None,
        },
    );
    proptest::collection::vec(entry, 0..4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..3).prop_map(|from| Step::Ping { from }),
        (0usize..3, 0usize..3).prop_map(|(from, to)| Step::Forward { from, to }),
        (
            0usize..3,
            proptest::sample::select(vec![
                ArpKind::RequestForStack,
                ArpKind::Reply,
                ArpKind::GratuitousRequest,
                ArpKind::Probe,
            ])
        )
            .prop_map(|(from, kind)| Step::Arp {
                from,
                kind,
                alt_mac: false,
                unicast: false
            }),
        (0usize..3, proptest::sample::select(BadArp::ALL.to_vec()))
            .prop_map(|(from, bad)| Step::Malformed { from, bad }),
        Just(Step::Wait { ms: 70 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_arp_runner_survives_any_answer(
        steps in proptest::collection::vec(step(), 1..6),
        answers in proptest::collection::vec(answer(), 0..12),
        tables in proptest::collection::vec(table(), 0..8),
        forwarding in any::<bool>(),
    ) {
        let mut target = Scripted {
            endpoints: Endpoints {
                harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                stack_mac: STACK_MAC,
                stack_ipv4: Some((STACK, 24)),
                peer_ipv4: Some(Ipv4Addr::new(10, 77, 0, 1)),
                stack_ipv6: None,
                peer_ipv6: None,
                mtu: 1500,
            },
            answers: answers.into(),
            queue: VecDeque::new(),
            tables: tables.into(),
        };
        let scenario = ArpScenario {
            name: "robustness".into(),
            policy: ArpPolicy { accept: ArpAccept::Always, ignore: ArpIgnore::Any },
            forwarding,
            gateway: None,
            peers: [1u8, 3, 4]
                .iter()
                .map(|o| PeerSpec { octet: *o, answers: true, off_link: false })
                .collect(),
            steps,
            timers: Timers::FAST,
        };
        let mut session = Session::new(&mut target);
        let result = run_arp_scenario(&mut session, &scenario, &ArpProfile::linux());
        // The trace renders whatever was recorded.
        let names = session.host_names().clone();
        let _ = session.into_trace().render(&names);
        match result {
            Ok(_) | Err(CheckError::Mismatch { .. }) | Err(CheckError::WrongAnswer { .. }) => {}
            Err(other) => prop_assert!(false, "the runner itself failed: {other}"),
        }
    }
}
