//! `--target lwip`: lwIP 2.1.3 (Debian's `liblwip0`) through its agent,
//! `netconform-agent-lwip` (agents/lwip.rs), as a built-in external target.
//!
//! The target is an [`ExternalStack`](super::external::ExternalStack) with a configuration
//! of its own instead of a TOML file: the agent found next to the netconform executable, a
//! tap (lwIP's unix port drives one, `tapif`), addresses owned by the stack, and the name
//! `lwip` in reports (so `deviations/lwip.toml` is its file of accepted deviations).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::external::{DEFAULT_TIMEOUT, ExternalConfig, InterfaceKind};

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

/// The built-in configuration of `--target lwip`, with the agent at `agent`.
pub fn config_with(agent: &Path) -> ExternalConfig {
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
        // No check of the catalogue waits out one of lwIP's long timers (each lwIP lives
        // as long as its check); tests/lwip_target.rs measures its TIME-WAIT.
        slow: Vec::new(),
        fixed: None,
    }
}

/// The built-in configuration of `--target lwip` ([`agent_path`]).
pub fn config() -> Result<ExternalConfig, String> {
    Ok(config_with(&agent_path()?))
}
