//! `--target lwip`: lwIP 2.1.3 (Debian's `liblwip0`) through its agent,
//! `netconform-agent-lwip` (agents/lwip.rs), as a built-in external target.
//!
//! The target is an [`ExternalStack`](super::external::ExternalStack) with a configuration
//! of its own instead of a TOML file: the agent found next to the netconform executable, a
//! tap (lwIP's unix port drives one, `tapif`), addresses owned by the stack, the name
//! `lwip` in reports (so `deviations/lwip.toml` is its file of accepted deviations) and the
//! fixed behaviour declared in `profiles/lwip.toml` ([`profile`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::external::{DEFAULT_TIMEOUT, ExternalConfig, InterfaceKind};
use super::fixed::FixedBehaviour;

/// The agent's file name.
pub const AGENT: &str = "netconform-agent-lwip";

/// Where the agent is: `NETCONFORM_LWIP_AGENT` when set, else next to the running
/// executable (or one folder up, for a test binary in `target/<profile>/deps/`).
pub fn agent_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NETCONFORM_LWIP_AGENT") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("lwip: where is netconform? {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join(AGENT), dir.join("..").join(AGENT)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "lwip: the agent {AGENT} is not next to {} (build it: cargo build --bin {AGENT}; it needs liblwip-dev: apt-get install liblwip-dev)",
                exe.display()
            )
        })
}

/// lwIP's declared fixed behaviour as built into netconform (`profiles/lwip.toml`).
pub const PROFILE: &str = include_str!("../../profiles/lwip.toml");

/// lwIP's declared fixed behaviour: `profiles/lwip.toml` in the working directory when it
/// exists (a reviewer's edit applies at once), else the copy built into netconform.
pub fn profile() -> Result<Arc<FixedBehaviour>, String> {
    let here = Path::new("profiles").join("lwip.toml");
    let parsed = if here.exists() {
        FixedBehaviour::load(&here)
    } else {
        FixedBehaviour::parse(PROFILE, "profiles/lwip.toml")
    };
    parsed.map(Arc::new).map_err(|e| format!("lwip: {e}"))
}

/// The checks of lwIP's slow tier (`certify --slow`): the ARP scenarios with fast timers,
/// whose waits scale to lwIP's 300 s entry lifetime.
pub const LWIP_SLOW: &[&str] = &[
    "arp.unicast-poll",
    "arp.unicast-poll-fails",
    "arp.announcement",
    "arp.conflicting-reply",
    "arp.unsolicited-reply",
];

/// The built-in configuration of `--target lwip`, with the agent at `agent` and the
/// declared fixed behaviour `fixed`.
pub fn config_with(agent: &Path, fixed: Option<Arc<FixedBehaviour>>) -> ExternalConfig {
    ExternalConfig {
        path: PathBuf::from("(built in: --target lwip)"),
        stack: "lwip".into(),
        command: vec![agent.display().to_string()],
        env: BTreeMap::new(),
        timeout: DEFAULT_TIMEOUT,
        // lwIP answers on its tcpip thread in the order frames arrive, an echo request
        // like any segment: no lag behind the barrier's echo reply.
        answer_lag: std::time::Duration::ZERO,
        interface: InterfaceKind::Tap,
        kernel_addresses: false,
        // The ARP checks about timers (fast timers, waits scaled by ARP_MAXAGE over their
        // base reachable time of 160 ms) wait out lwIP's 300 s entry lifetime on the wall
        // clock, several times: minutes each. The other ARP checks and the rest of the
        // catalogue wait out no long lwIP timer (each lwIP lives as long as its check);
        // tests/lwip_target.rs measures its TIME-WAIT.
        slow: LWIP_SLOW.iter().map(|s| s.to_string()).collect(),
        jobs: None,
        fixed,
    }
}

/// The built-in configuration of `--target lwip` ([`agent_path`]).
pub fn config() -> Result<ExternalConfig, String> {
    Ok(config_with(&agent_path()?, Some(profile()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profile_reads() {
        let p = FixedBehaviour::parse(PROFILE, "profiles/lwip.toml").expect("a valid profile");
        assert!(p.stack.starts_with("lwIP 2.1.3"));
        assert_eq!(
            p.request_target_mac(),
            Some(crate::sandbox::MacAddr([0; 6]))
        );
    }

    #[test]
    fn the_configuration_is_a_tap_stack_with_its_profile() {
        let c = config_with(Path::new("/x/netconform-agent-lwip"), None);
        assert_eq!(c.stack, "lwip");
        assert_eq!(c.interface, InterfaceKind::Tap);
        assert!(!c.kernel_addresses);
        assert_eq!(c.command, ["/x/netconform-agent-lwip"]);
    }
}
