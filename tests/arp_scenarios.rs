//! ARP scenarios run against the Linux kernel: model and kernel side by side.

use netconform::check::Session;
use netconform::check::arp_scenario::{
    ArpKind, ArpScenario, PeerSpec, ScenarioOutcome, Step, Timers, run_arp_scenario,
};
use netconform::models::arp::{ArpAccept, ArpIgnore, ArpPolicy, ArpProfile};
use netconform::sandbox::require_netns;
use netconform::target::linux::{LinuxTarget, lab_config_for};

fn run(
    scenario: &ArpScenario,
) -> (
    Result<ScenarioOutcome, netconform::check::CheckError>,
    String,
) {
    let mut target =
        LinuxTarget::new(lab_config_for(&netconform::check::Needs::IPV4)).expect("lab");
    let mut session = Session::new(&mut target);
    let result = run_arp_scenario(&mut session, scenario, &ArpProfile::linux());
    let names = session.host_names().clone();
    let text = session.into_trace().render(&names);
    (result, text)
}

fn peer(octet: u8, answers: bool) -> PeerSpec {
    PeerSpec {
        octet,
        answers,
        off_link: false,
    }
}

#[test]
fn smoke() {
    if !require_netns("smoke") {
        return;
    }
    let scenario = ArpScenario {
        name: "smoke".into(),
        policy: ArpPolicy {
            accept: ArpAccept::Never,
            ignore: ArpIgnore::Any,
        },
        forwarding: true,
        gateway: None,
        peers: vec![peer(1, true), peer(9, false)],
        steps: vec![
            Step::Ping { from: 0 },
            Step::Ping { from: 0 },
            Step::Wait { ms: 300 },
            Step::Ping { from: 0 },
            Step::Wait { ms: 150 },
            Step::Forward { from: 0, to: 1 },
            Step::Wait { ms: 400 },
            Step::Arp {
                from: 1,
                kind: ArpKind::GratuitousRequest,
                alt_mac: false,
                unicast: false,
            },
            Step::Arp {
                from: 0,
                kind: ArpKind::RequestForStack,
                alt_mac: true,
                unicast: false,
            },
            Step::Wait { ms: 300 },
        ],
        timers: Timers::FAST,
    };
    let (result, trace) = run(&scenario);
    println!("{trace}");
    let outcome = result.unwrap_or_else(|e| panic!("{e}\n{trace}"));
    println!("{outcome:?}");
}
