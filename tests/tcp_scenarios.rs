//! TCP scenarios run against the model and the Linux kernel side by side.

use netconform::check::Session;
use netconform::check::tcp_matrix::{self, STATES};
use netconform::check::tcp_scenario::{
    PeerSegment, ProfileName, SegmentKind, TcpEvent, run_scenario,
};
use netconform::sandbox::{LabConfig, require_netns};
use netconform::target::linux::LinuxTarget;

fn lab(ipv6: bool) -> LabConfig {
    let mut c = LabConfig {
        static_neighbours: true,
        ..LabConfig::default()
    };
    if !ipv6 {
        c.ipv6 = None;
    }
    c
}

/// Every state is reachable by its path, and the model agrees with the kernel all the way.
#[test]
fn every_state_is_reached_in_step_with_the_kernel() {
    if !require_netns("every_state_is_reached_in_step_with_the_kernel") {
        return;
    }
    let mut target = LinuxTarget::new(lab(false)).expect("lab");
    for (i, state) in STATES.iter().enumerate() {
        let mut scenario = tcp_matrix::cell(
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
        let _ = TcpEvent::Listen;
    }
}

/// Triage helper (ignored): runs the whole IPv4 matrix and prints every disagreement.
#[test]
#[ignore]
fn triage_matrix() {
    let mut target = LinuxTarget::new(lab(false)).expect("lab");
    let mut failures = 0;
    for (i, scenario) in tcp_matrix::matrix(ProfileName::Linux, false)
        .iter()
        .enumerate()
    {
        let mut session = Session::new(&mut target);
        if let Err(e) = run_scenario(&mut session, scenario, 10_000 + i as u16) {
            failures += 1;
            let text = e.to_string();
            let first: String = text.split("; scenario:").next().unwrap_or("").to_string();
            println!("FAIL {}: {first}", scenario.name);
        }
    }
    println!("{failures} failures");
}

/// Debug helper (ignored): prints the trace of the scenarios named in NETCONFORM_SCENARIO.
#[test]
#[ignore]
fn debug_scenario() {
    let wanted = std::env::var("NETCONFORM_SCENARIO").unwrap_or_default();
    let mut target = LinuxTarget::new(lab(false)).expect("lab");
    for (i, scenario) in tcp_matrix::matrix(ProfileName::Linux, false)
        .iter()
        .enumerate()
    {
        if !wanted.split(';').any(|w| scenario.name == w) {
            continue;
        }
        let mut session = Session::new(&mut target);
        let r = run_scenario(&mut session, scenario, 10_000 + i as u16);
        println!(
            "== {}: {:?}\n{}",
            scenario.name,
            r.err().map(|e| e.to_string()),
            session.trace().render(session.host_names())
        );
    }
}
