//! Whatever a stack sends back or reports — garbage frames, cut or corrupted ARP, replies to
//! nobody, a neighbour table full of nonsense — the ARP runner ends in agreement or a
//! disagreement with the model, never a panic and never a harness error.
//!
//! A scripted target answers every frame the harness sends with frames proptest chose, and
//! answers every neighbour dump with entries proptest chose; it keeps the neighbour
//! parameters it is given, as a kernel does (to a 4 ms tick), so the runner gets past its
//! set-up.
//!
//! The same target shows that the runner's failures are reachable: a stack that stays
//! silent where the model expects a frame fails with the frame it owed, and a stack that
//! does not keep the neighbour timers it was given (it ignores a setting, misreports one,
//! or draws its reachable time from another base) fails at set-up, naming the parameter,
//! with the spoilers of `certify --mutate` and with the fake itself.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use netconform::dut::spoil::{Spoil, Spoiled};
use netconform::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery,
};
use netconform::engine::{CheckError, Session};
use netconform::models::arp::{ArpAccept, ArpIgnore, ArpPolicy, ArpProfile};
use netconform::sandbox::{
    NeighbourEntry, NeighbourParams, NeighbourParamsUpdate, NeighbourTableInfo, NudState,
};
use netconform::suites::arp::scenario::{
    ArpKind, ArpScenario, BadArp, PeerSpec, ScenarioOutcome, Step, Timers, run_arp_scenario,
};
use netconform::wire::{Frame, MacAddr};

const STACK_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

struct Scripted {
    endpoints: Endpoints,
    answers: VecDeque<Vec<u8>>,
    queue: VecDeque<Vec<u8>>,
    tables: VecDeque<Vec<NeighbourEntry>>,
    /// The neighbour parameters it keeps (at first, a kernel's defaults).
    params: NeighbourParams,
    /// The settings it does not take (by field name), for a stack that ignores one.
    ignores: &'static [&'static str],
    /// The reachable time it draws from a base (ms).
    draw: fn(u64) -> u64,
}

/// The 4 ms tick of the scripted stack's clock (a kernel at HZ=250).
const TICK_MS: u64 = 4;

impl Scripted {
    /// A stack that answers the harness's frames with `answers`, two at a time, and keeps
    /// every setting.
    fn new(answers: Vec<Vec<u8>>, tables: Vec<Vec<NeighbourEntry>>) -> Scripted {
        Scripted {
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
            params: NeighbourParams {
                ifindex: 2,
                reachable_ms: 21_000,
                base_reachable_ms: 30_000,
                retrans_ms: 1000,
                delay_probe_ms: 5000,
                gc_stale_ms: 60_000,
                locktime_ms: 1000,
                ucast_probes: 3,
                mcast_probes: 3,
                app_probes: 0,
                mcast_reprobes: 0,
            },
            ignores: &[],
            // Three quarters of the base: in [base/2, 3·base/2).
            draw: |base| base * 3 / 4,
        }
    }

    /// Takes `update` as a kernel does: each time rounded up to the tick, the reachable
    /// time drawn anew from a new base; the settings it ignores are left as they were.
    fn set(&mut self, update: &NeighbourParamsUpdate) {
        let ignores = self.ignores;
        let tick = |ms: u64| ms.div_ceil(TICK_MS) * TICK_MS;
        let p = &mut self.params;
        let time = |name: &str, value: Option<u64>, field: &mut u64| {
            if let Some(v) = value
                && !ignores.contains(&name)
            {
                *field = tick(v);
            }
        };
        time(
            "base_reachable_ms",
            update.base_reachable_ms,
            &mut p.base_reachable_ms,
        );
        time("retrans_ms", update.retrans_ms, &mut p.retrans_ms);
        time(
            "delay_probe_ms",
            update.delay_probe_ms,
            &mut p.delay_probe_ms,
        );
        time("gc_stale_ms", update.gc_stale_ms, &mut p.gc_stale_ms);
        time("locktime_ms", update.locktime_ms, &mut p.locktime_ms);
        let count = |name: &str, value: Option<u32>, field: &mut u32| {
            if let Some(v) = value
                && !ignores.contains(&name)
            {
                *field = v;
            }
        };
        count("ucast_probes", update.ucast_probes, &mut p.ucast_probes);
        count("mcast_probes", update.mcast_probes, &mut p.mcast_probes);
        count("app_probes", update.app_probes, &mut p.app_probes);
        count(
            "mcast_reprobes",
            update.mcast_reprobes,
            &mut p.mcast_reprobes,
        );
        if update.base_reachable_ms.is_some() {
            p.reachable_ms = tick((self.draw)(p.base_reachable_ms));
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
    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        if let Control::NeighbourParams(update) = control {
            self.set(update);
        }
        Ok(())
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        Ok(match query {
            StateQuery::NeighbourParams => StateAnswer::NeighbourParams(self.params),
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
        let mut target = Scripted::new(answers, tables);
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

/// A scenario of `steps` with three peers that answer, on the fast timers.
fn scenario(name: &str, steps: Vec<Step>) -> ArpScenario {
    ArpScenario {
        name: name.into(),
        policy: ArpPolicy {
            accept: ArpAccept::Never,
            ignore: ArpIgnore::Any,
        },
        forwarding: false,
        gateway: None,
        peers: [1u8, 3, 4]
            .iter()
            .map(|o| PeerSpec {
                octet: *o,
                answers: true,
                off_link: false,
            })
            .collect(),
        steps,
        timers: Timers::FAST,
    }
}

/// Peer 0 probes for the stack's address (RFC 5227), then time passes: the model expects
/// the stack's reply, and no entry.
fn probe_then_wait() -> ArpScenario {
    scenario(
        "a probe is answered",
        vec![
            Step::Arp {
                from: 0,
                kind: ArpKind::Probe,
                alt_mac: false,
                unicast: false,
            },
            Step::Wait { ms: 100 },
        ],
    )
}

/// Runs `scenario` on `dut`: the outcome, or the failing step and its differences.
fn run(
    dut: &mut dyn Dut,
    scenario: &ArpScenario,
) -> Result<ScenarioOutcome, (String, Vec<String>)> {
    let mut session = Session::new(dut);
    match run_arp_scenario(&mut session, scenario, &ArpProfile::linux()) {
        Ok(outcome) => Ok(outcome),
        Err(CheckError::Mismatch { step, differences }) => Err((step, differences)),
        Err(other) => panic!("expected a disagreement, got {other}"),
    }
}

/// The reply the stack owes peer 0's probe (to 0.0.0.0, at the prober's MAC).
fn reply_to_the_probe() -> Vec<u8> {
    let prober = scenario("", vec![]).peers[0].mac(false);
    Frame::arp_reply(STACK_MAC, STACK, prober, Ipv4Addr::UNSPECIFIED).emit()
}

/// A stack that answers the probe agrees with the model: the control for the next test.
#[test]
fn a_stack_that_answers_the_probe_agrees() {
    let mut dut = Scripted::new(vec![reply_to_the_probe()], vec![]);
    let outcome = run(&mut dut, &probe_then_wait());
    assert!(
        matches!(outcome, Ok(ScenarioOutcome::Agreed { frames: 1, .. })),
        "{outcome:?}"
    );
}

/// A stack that stays silent where the model expects a frame fails, once the frame is
/// later than the runner's window, with the frame it owed, when it was due and when the
/// runner gave up on it.
#[test]
fn a_stack_that_stays_silent_where_a_frame_is_due_fails_with_that_frame() {
    let mut dut = Scripted::new(vec![], vec![]);
    let (step, differences) = run(&mut dut, &probe_then_wait()).expect_err("silence must fail");
    assert_eq!(step, "step 2 (wait 100 ms)");
    assert_eq!(differences.len(), 1, "{differences:?}");
    let owed = format!(
        "expected ARP reply {STACK} is-at <own MAC> to 0.0.0.0 ({}) at ",
        scenario("", vec![]).peers[0].mac(false)
    );
    assert!(
        differences[0].starts_with(&owed) && differences[0].contains(" ms, nothing observed by "),
        "{differences:?}"
    );
}

/// The set-up's failure, on `dut`: its differences.
fn set_up_fails(dut: &mut dyn Dut) -> Vec<String> {
    let (step, differences) =
        run(dut, &scenario("set-up", vec![Step::Wait { ms: 20 }])).expect_err("must fail");
    assert_eq!(step, "set-up", "{differences:?}");
    differences
}

fn spoiled(spoil: Spoil) -> Spoiled {
    Spoiled::new(
        Box::new(Scripted::new(vec![], vec![])),
        spoil,
        netconform::engine::barrier::host_machinery,
        Arc::new(AtomicUsize::new(0)),
    )
}

/// A stack that keeps what it is set agrees at set-up (the control for the tests below).
#[test]
fn a_stack_that_keeps_its_settings_agrees() {
    let mut dut = Scripted::new(vec![], vec![]);
    let outcome = run(&mut dut, &scenario("set-up", vec![Step::Wait { ms: 20 }]));
    assert!(
        matches!(outcome, Ok(ScenarioOutcome::Agreed { .. })),
        "{outcome:?}"
    );
}

/// A stack that acknowledges every setting and makes none (the spoil `ignore-settings`)
/// fails at set-up: the 1 ms it was asked for is its default retransmission time, no
/// tick.
#[test]
fn a_stack_that_ignores_its_settings_fails_at_set_up() {
    let mut dut = spoiled(Spoil::IgnoreSettings);
    assert_eq!(
        set_up_fails(&mut dut),
        vec![
            "neighbour_params.retrans_ms: expected 1 (set, rounded up to the stack's tick of at most 10 ms), observed 1000"
                .to_string()
        ]
    );
}

/// A stack that reports a base reachable time other than the one it was set (the spoil
/// `table-entry`: 1 s more) fails at set-up, naming it.
#[test]
fn a_stack_that_misreports_its_base_reachable_time_fails_at_set_up() {
    let mut dut = spoiled(Spoil::TableEntry);
    assert_eq!(
        set_up_fails(&mut dut),
        vec![
            "neighbour_params.base_reachable_ms: expected 160 (set, to within the stack's tick of 4 ms), observed 1160"
                .to_string()
        ]
    );
}

/// A stack that ignores one setting fails naming it; one that draws its reachable time
/// from another base fails naming the range it should have drawn from.
#[test]
fn a_stack_that_keeps_another_timer_fails_at_set_up() {
    let mut dut = Scripted::new(vec![], vec![]);
    dut.ignores = &["delay_probe_ms", "locktime_ms"];
    assert_eq!(
        set_up_fails(&mut dut),
        vec![
            "neighbour_params.delay_probe_ms: expected 60 (set, to within the stack's tick of 4 ms), observed 5000"
                .to_string(),
            "neighbour_params.locktime_ms: expected 100 (set, to within the stack's tick of 4 ms), observed 1000"
                .to_string(),
        ]
    );
    let mut dut = Scripted::new(vec![], vec![]);
    dut.draw = |_| 30_000;
    assert_eq!(
        set_up_fails(&mut dut),
        vec![
            "neighbour_params.reachable_ms: expected a time drawn from the base set (160 ms) in [80, 240) ms, observed 30000"
                .to_string()
        ]
    );
}
