//! TCP scenarios run against the model and the Linux kernel side by side.

#[macro_use]
mod common;

use netconform::dut::linux::LinuxHost;
use netconform::engine::Session;
use netconform::sandbox::LabConfig;
use netconform::suites::tcp::matrix::{self, STATES};
use netconform::suites::tcp::scenario::{PeerSegment, ProfileName, SegmentKind, run_scenario};

fn lab(ipv6: bool) -> LabConfig {
    netconform::dut::linux::lab_config_for(&netconform::engine::Needs::scenario(ipv6))
}

/// Every state is reachable by its path, and the model agrees with the kernel all the way.
#[test]
fn every_state_is_reached_in_step_with_the_kernel() {
    require_netns!();
    let mut target = LinuxHost::new(lab(false)).expect("lab");
    for (i, state) in STATES.iter().enumerate() {
        let mut scenario = matrix::cell(
            ProfileName::Linux,
            false,
            *state,
            PeerSegment::next(SegmentKind::Ack),
        );
        scenario.events.pop();
        let mut session = Session::new(&mut target);
        let result = run_scenario(&mut session, &scenario, 20_000 + i as u16);
        if let Err(e) = result {
            panic!(
                "{state}: {e}\n{}",
                session.trace().render(session.host_names())
            );
        }
    }
}

/// A stack that sends a segment late, once it has gone quiet (the spoiler's `ExtraLate`: a
/// copy of its SYN-ACK after the peer acknowledged it), fails the scenario in its quiet
/// period, naming the segment; the kernel itself passes the same scenario. Before the
/// quiet period, the scenario ended with its last event and passed both.
#[test]
fn a_late_segment_fails_in_the_quiet_period_on_the_kernel() {
    use netconform::dut::spoil::{Spoil, Spoiled};
    use netconform::engine::CheckError;
    use netconform::models::tcp::State;
    require_netns!();
    let s = matrix::cell(
        ProfileName::Linux,
        false,
        State::Established,
        PeerSegment::next(SegmentKind::Ack),
    );
    let mut target = LinuxHost::new(lab(false)).expect("lab");
    let mut session = Session::new(&mut target);
    if let Err(e) = run_scenario(&mut session, &s, 21_000) {
        panic!("{e}\n{}", session.trace().render(session.host_names()));
    }
    let mut spoiled = Spoiled::new(
        Box::new(LinuxHost::new(lab(false)).expect("lab")),
        Spoil::ExtraLate,
        netconform::engine::barrier::host_machinery,
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    );
    let mut session = Session::new(&mut spoiled);
    match run_scenario(&mut session, &s, 21_001) {
        Err(CheckError::Mismatch { step, differences }) => {
            assert_eq!(step, "quiet period after the last event");
            assert!(
                differences[0].starts_with("the stack sent S. 0:0(0) ack 1")
                    && differences[0].contains("the peer acknowledged all of it"),
                "{differences:?}"
            );
        }
        other => panic!(
            "expected a mismatch, got {other:?}\n{}",
            session.trace().render(session.host_names())
        ),
    }
}

/// In FIN-WAIT-1 with its FIN unacknowledged (the peer's ACK is at SND.UNA) the kernel
/// sends the FIN again on its timer within the quiet period: a retransmission, noted in
/// the trace with why, and no failure.
#[test]
fn a_fin_retransmitted_in_the_quiet_period_is_noted() {
    use netconform::models::tcp::State;
    use netconform::suites::tcp::scenario::{AckAt, SeqAt};
    require_netns!();
    let s = matrix::cell(
        ProfileName::Linux,
        false,
        State::FinWait1,
        PeerSegment {
            kind: SegmentKind::Ack,
            seq: SeqAt::RcvNxt,
            ack: AckAt::Una,
            len: 0,
        },
    );
    let mut target = LinuxHost::new(lab(false)).expect("lab");
    let mut session = Session::new(&mut target);
    let result = run_scenario(&mut session, &s, 21_002);
    let trace = session.trace().render(session.host_names());
    if let Err(e) = result {
        panic!("{e}\n{trace}");
    }
    assert!(
        trace.contains(
            "# quiet period after the last event: F. 1:1(0) ack 1 taken as a retransmission: \
             the same sequence space went out"
        ),
        "{trace}"
    );
}

/// The quiet periods of a batch overlap on a real clock: 24 cells cost about one quiet
/// period (0.5 s) of waiting, not 24 (12 s), and each cell's period is still observed.
#[test]
fn quiet_periods_of_a_batch_overlap() {
    use netconform::suites::tcp::scenario::run_scenarios;
    require_netns!();
    let runs: Vec<_> = matrix::matrix(ProfileName::Linux, false)
        .into_iter()
        .filter(|c| c.name.starts_with("v4 ESTABLISHED"))
        .take(24)
        .enumerate()
        .map(|(i, c)| (c, 22_000 + i as u16))
        .collect();
    let mut target = LinuxHost::new(lab(false)).expect("lab");
    let mut session = Session::new(&mut target);
    let started = std::time::Instant::now();
    let results = run_scenarios(&mut session, &runs).expect("the target ran");
    let took = started.elapsed();
    let trace = session.trace().render(session.host_names());
    for ((s, _), r) in runs.iter().zip(&results) {
        if let Err(e) = r {
            panic!("{}: {e}\n{trace}", s.name);
        }
    }
    assert_eq!(
        trace
            .matches("its quiet period, then closing its sockets")
            .count(),
        24,
        "{trace}"
    );
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
}
