//! The first end-to-end checks, run against the running Linux kernel in throwaway
//! namespaces: every check must pass, its normalised trace is locked by a snapshot, and a
//! stack configured to differ (a smaller MTU) must make the check fail with the exact field.

use netconform::dut::linux::LinuxHost;
use netconform::dut::{Dut, DutError};
use netconform::engine::runner::run_one;
use netconform::engine::{CheckReport, CheckSpec, Verdict};
use netconform::sandbox::LabConfig;
use netconform::suites::tcp::scenario::ProfileName;

/// Runs check `id` on a Linux lab built from `config` (IPv6 off unless the check uses it).
/// Runs check `id` on a Linux lab set up as the check needs, with `mtu`.
fn run(id: &str, mtu: u32) -> CheckReport {
    let spec = spec(id);
    let config = LabConfig {
        mtu,
        ..netconform::dut::linux::lab_config_for(&spec.needs)
    };
    let factory = move |_: &CheckSpec| -> Result<Box<dyn Dut>, DutError> {
        Ok(Box::new(LinuxHost::new(config.clone())?))
    };
    run_one(&spec, &factory, ProfileName::Linux)
}

#[macro_use]
mod common;

use common::spec;

#[test]
fn passive_open_data_and_active_close() {
    require_netns!();
    let report = run("tcp.passive-open.active-close", 1500);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "trace:\n{}",
        report.trace_text()
    );
    assert_trace_snapshot!("passive_open_active_close", report.trace_text());
}

#[test]
fn passive_open_and_passive_close() {
    require_netns!();
    let report = run("tcp.passive-open.passive-close", 1500);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "trace:\n{}",
        report.trace_text()
    );
    assert_trace_snapshot!("passive_open_passive_close", report.trace_text());
}

#[test]
fn syn_to_closed_port_draws_rst() {
    require_netns!();
    let report = run("tcp.closed-port.syn", 1500);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "trace:\n{}",
        report.trace_text()
    );
    assert_trace_snapshot!("syn_to_closed_port", report.trace_text());
}

/// The check is not a tautology: a stack whose MTU is 1400 announces MSS 1360, and the
/// check that expects 1460 says so, naming the field.
#[test]
fn a_different_stack_fails_with_the_field_that_differs() {
    require_netns!();
    let report = run("tcp.passive-open.active-close", 1400);
    let Verdict::Fail { step, differences } = &report.verdict else {
        panic!(
            "expected a failure, got {:?}\n{}",
            report.verdict,
            report.trace_text()
        );
    };
    assert!(step.contains("SYN-ACK"), "{step}");
    assert_eq!(
        differences,
        &vec!["tcp.option.mss: expected 1460, observed 1360".to_string()]
    );
}
