//! The whole TCP state × segment matrix (IPv4 and IPv6) against the Linux kernel, run in
//! parallel across namespaces: every cell must agree with the model's Linux profile.

use netconform::check::Session;
use netconform::check::tcp_matrix::matrix;
use netconform::check::tcp_scenario::{ProfileName, run_scenario};
use netconform::sandbox::{LabConfig, require_netns};
use netconform::target::linux::LinuxTarget;

/// Runs `cells` on one fresh lab; returns the disagreements.
fn run_cells(cells: &[netconform::check::tcp_scenario::TcpScenario], ipv6: bool) -> Vec<String> {
    let mut config = LabConfig {
        static_neighbours: true,
        ..LabConfig::default()
    };
    if !ipv6 {
        config.ipv6 = None;
    }
    let mut target = LinuxTarget::new(config).expect("lab");
    let mut failures = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let mut session = Session::new(&mut target);
        if let Err(e) = run_scenario(&mut session, cell, 10_000 + i as u16) {
            let text = e.to_string();
            failures.push(format!(
                "{}: {}",
                cell.name,
                text.split("; scenario:").next().unwrap_or(&text)
            ));
        }
    }
    failures
}

#[test]
fn the_whole_matrix_agrees_with_the_linux_profile() {
    if !require_netns("the_whole_matrix_agrees_with_the_linux_profile") {
        return;
    }
    let mut cells = matrix(ProfileName::Linux, false);
    cells.extend(matrix(ProfileName::Linux, true));
    let total = cells.len();
    // Two workers, each with its own pair of namespaces (this machine has two cores).
    let workers = 2;
    let chunks: Vec<Vec<_>> = (0..workers)
        .map(|w| cells.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    let (v6, v4): (Vec<_>, Vec<_>) = chunk.iter().cloned().partition(|c| c.ipv6);
                    let mut f = run_cells(&v4, false);
                    f.extend(run_cells(&v6, true));
                    f
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {total} cells disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
