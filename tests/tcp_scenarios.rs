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
