//! The whole TCP state × segment matrix (IPv4 and IPv6) against the Linux kernel, run in
//! parallel across namespaces: every cell must agree with the model's Linux profile.

use netconform::check::Needs;
use netconform::check::tcp_matrix::{matrix, run_parallel};
use netconform::check::tcp_scenario::ProfileName;
use netconform::sandbox::require_netns;
use netconform::target::linux::{LinuxTarget, lab_config_for};
use netconform::target::{Target, TargetError};

/// A lab whose stack already knows the peer's MAC, with IPv6 when asked.
pub fn lab_target(ipv6: bool) -> Result<Box<dyn Target>, TargetError> {
    Ok(Box::new(LinuxTarget::new(lab_config_for(
        &Needs::scenario(ipv6),
    ))?))
}

#[test]
fn the_whole_matrix_agrees_with_the_linux_profile() {
    if !require_netns("the_whole_matrix_agrees_with_the_linux_profile") {
        return;
    }
    let mut cells = matrix(ProfileName::Linux, false);
    cells.extend(matrix(ProfileName::Linux, true));
    // Two workers, each with its own namespaces (this machine has two cores).
    let failures = run_parallel(&cells, 2, &lab_target).expect("the targets ran");
    assert!(
        failures.is_empty(),
        "{} of {} cells disagree:\n{}",
        failures.len(),
        cells.len(),
        failures.join("\n")
    );
}

/// The matrix is not a tautology: under the RFC profile the kernel's documented
/// deviations show up as disagreements.
#[test]
fn the_rfc_profile_finds_the_linux_deviations() {
    if !require_netns("the_rfc_profile_finds_the_linux_deviations") {
        return;
    }
    let cells = matrix(ProfileName::Rfc, false);
    let failures = run_parallel(&cells, 2, &lab_target).expect("the targets ran");
    assert!(
        !failures.is_empty(),
        "the RFC profile agreed with Linux on every cell"
    );
    // SYN+FIN to LISTEN: RFC 9293 processes the SYN, Linux drops it (CVE-2012-6638).
    assert!(
        failures.iter().any(|f| f.starts_with("v4 LISTEN SynFin")),
        "{failures:#?}"
    );
}
