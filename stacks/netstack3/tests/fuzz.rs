//! Netstack3's stack targets (`netconform_netstack3::fuzz`): the scenarios the fuzzer
//! generates run on Netstack3 and are judged as on smoltcp (agreement, a finding in its
//! group, a crash, with their negative controls), and the pair target compares smoltcp
//! and Netstack3 where both agree with the model. Run with
//! `cargo test -p netconform-netstack3 --ignore-rust-version --test fuzz`.

use netconform::dut::needs::Needs;
use netconform::dut::{Dut, DutError};
use netconform::fuzz::stacks::{
    self, PairVerdict, StackTarget, Verdict, input, judge, pair, run_pair, run_target,
};
use netconform::models::profile::ProfileName;
use netconform::models::tcp::State;
use netconform_netstack3::fuzz::{NETSTACK3, SMOLTCP_NETSTACK3, register};

/// Listen, SYN, ACK: ESTABLISHED (`path_to(Established)`), encoded.
const ESTABLISHED: &[u8] = &[0x00, 0x01, 0x80, 0x00, 0x02, 0x03, 0x02];

/// The seed called `name` (`netconform fuzz stack-seeds`).
fn seed(name: &str) -> Vec<u8> {
    stacks::seeds::seeds(&[])
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {name}"))
        .1
}

#[test]
fn an_established_connection_agrees_on_netstack3() {
    let (scenario, verdict) = judge(&NETSTACK3, ESTABLISHED);
    assert_eq!(scenario.events.len(), 3);
    assert_eq!(verdict, Verdict::Agreed);
    assert!(run_target(&NETSTACK3, ESTABLISHED).is_ok());
}

#[test]
fn a_syn_in_established_is_a_finding_in_the_challenge_ack_group() {
    // Netstack3 answers a SYN at RCV.NXT in ESTABLISHED with a RST, where RFC 5961 §4.2
    // wants a challenge ACK (docs/findings-netstack3.md).
    let data = [ESTABLISHED, &[0x00, 0x02]].concat();
    let (_, verdict) = judge(&NETSTACK3, &data);
    let Verdict::Disagreed(d) = verdict else {
        panic!("expected a disagreement, got {verdict:?}");
    };
    assert_eq!(
        (d.group.clause, d.group.state),
        ("rfc5961-4.2", State::Established)
    );
    assert_eq!(
        d.group.what,
        "flags of challenge ACK (SYN in a synchronized state)"
    );
    // Filed, not a crash: the fuzzer goes on.
    assert!(run_target(&NETSTACK3, &data).is_ok());
}

/// Netstack3 killed by a panic as soon as it is built: every call after says so.
fn panicking(needs: &Needs) -> Result<Box<dyn Dut>, DutError> {
    let mut host = netconform_netstack3::Netstack3Host::new(
        netconform_netstack3::netstack3_config_for(needs),
    )?;
    let _ = host.with_netstack3(|_| panic!("injected for the test"));
    Ok(Box::new(host))
}

#[test]
fn a_netstack3_panic_is_a_crash_of_both_targets() {
    static PANICKING: StackTarget = StackTarget {
        name: "stack_netstack3_panicking",
        build: panicking,
        ..NETSTACK3
    };
    static PAIR: pair::PairTarget = pair::PairTarget {
        name: "stack_smoltcp_netstack3_panicking",
        a: &stacks::SMOLTCP,
        b: &PANICKING,
    };
    let (_, verdict) = judge(&PANICKING, ESTABLISHED);
    assert!(
        matches!(&verdict, Verdict::Crashed(w) if w.contains("netstack3 panicked: injected")),
        "{verdict:?}"
    );
    let outcome = run_target(&PANICKING, ESTABLISHED);
    assert!(outcome.is_err_and(|f| f.what.contains("injected for the test")));
    let outcome = run_pair(&PAIR, ESTABLISHED);
    assert!(outcome.is_err_and(|f| f.what.starts_with("netstack3: ")));
}

#[test]
fn smoltcp_and_netstack3_agree_on_an_established_connection() {
    // The negative control of the pair difference below.
    let scenario = input::decode(ESTABLISHED, ProfileName::Rfc);
    assert_eq!(
        pair::judge_pair(&SMOLTCP_NETSTACK3, &scenario),
        PairVerdict::Same
    );
}

#[test]
fn netstack3_sends_its_fin_again_within_the_quiet_period_where_smoltcp_waits() {
    // FIN-WAIT-1 (the stack closed), then the peer's FIN: both answer as the model says
    // (the ACK of CLOSING), and Netstack3, whose RTO floor is 200 ms, sends its
    // unacknowledged FIN again before the quiet period ends; smoltcp (1 s) does not. The
    // model takes a retransmission either way: a pair difference, not a disagreement.
    let data = seed("cell-v4-fin-wait-1-fin");
    let scenario = input::decode(&data, ProfileName::Rfc);
    for target in [&stacks::SMOLTCP, &NETSTACK3] {
        assert_eq!(stacks::judge_scenario(target, &scenario), Verdict::Agreed);
    }
    let PairVerdict::Differ(d) = pair::judge_pair(&SMOLTCP_NETSTACK3, &scenario) else {
        panic!("expected a pair difference");
    };
    assert_eq!(
        d.group.key(),
        "rfc5961-5.2 in FIN-WAIT-1: pair: segments sent: smoltcp [], netstack3 [F. again]"
    );
    assert!(run_pair(&SMOLTCP_NETSTACK3, &data).is_ok());
    // Shrunk, it still parts the two the same way.
    let shrunk = pair::shrink_pair(&SMOLTCP_NETSTACK3, &scenario, &d.group);
    assert!(shrunk.scenario.events.len() <= scenario.events.len());
    assert!(matches!(
        pair::judge_pair(&SMOLTCP_NETSTACK3, &shrunk.scenario),
        PairVerdict::Differ(again) if again.group == d.group
    ));
}

#[test]
fn the_targets_are_found_by_name_once_registered() {
    register();
    register();
    for name in ["stack_netstack3", "stack_smoltcp_netstack3"] {
        assert!(netconform::fuzz::target(name).is_some(), "{name}");
    }
    assert_eq!(
        stacks::stack("stack_netstack3").map(|s| s.stack),
        Some("netstack3")
    );
    assert!(stacks::pair_target("stack_smoltcp_netstack3").is_some());
    assert!(stacks::stacks().any(|s| s.name == "stack_smoltcp"));
    // The deviation file the target judges with parses.
    netconform::report::Deviations::parse(
        NETSTACK3.deviations,
        std::path::Path::new("deviations/netstack3.toml"),
    )
    .expect("parses");
}
