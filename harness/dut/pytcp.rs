//! `--target pytcp`: PyTCP (PyPI `pmd-pytcp` 0.3.8), a pure-Python user-space stack on a
//! TAP device, certified through its agent `agents/pytcp.py` as an external target with a
//! built-in configuration ([`config`]).
//!
//! The agent is part of the binary (`include_str!`): it reaches the interpreter through its
//! environment (`NCF_PYTCP_AGENT`, run by `python3 -c`), so nothing is written to disk and
//! nothing has to be found next to an installed binary. The agent starts the PyTCP daemon
//! (pytcpd) in its own process group, in a private directory it removes, and drives it; see
//! its module doc. The interpreter is `python3` on `PATH`, or `NETCONFORM_PYTHON`.
//!
//! PyTCP sends its TCP output from a timer at least 1 ms after the segment that caused it
//! (`protocols/tcp/session/tcp__session__timers.py`: the coalesced service handle is floored
//! at 1 ms), but answers an echo request at once, so the barrier's echo reply overtakes the
//! answer it is meant to prove: the target declares [`ANSWER_LAG`]
//! ([`crate::dut::Dut::answer_lag`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::dut::external::{ExternalConfig, InterfaceKind};

/// The agent, as shipped in this binary.
pub const AGENT: &str = include_str!("../../agents/pytcp.py");

/// The version of pmd-pytcp the agent was written and checked against.
pub const VERSION: &str = "0.3.8";

/// What to install when it is missing.
pub const INSTALL: &str = "pip install pmd-pytcp==0.3.8";

/// How long after its echo reply PyTCP may still send the answer to what came before: its
/// TCP output timer fires 1 ms after the segment at the earliest; measured 2-4 ms on an idle
/// machine, up to 12 ms with two checks at a time on two busy cores.
pub const ANSWER_LAG: Duration = Duration::from_millis(25);

/// Per request: the hello waits for the daemon to start (about 0.5 s idle, several under
/// load); the agent gives up on the daemon after 8 s itself.
const TIMEOUT: Duration = Duration::from_secs(12);

/// The interpreter that runs the agent.
fn python() -> String {
    std::env::var("NETCONFORM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The installed pmd-pytcp's version, or what to do about it.
pub fn installed_version(python: &str) -> Result<String, String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('pmd-pytcp'))",
        ])
        .output()
        .map_err(|e| {
            format!("--target pytcp runs the PyTCP agent with `{python}`, which cannot be started ({e}); install Python 3.9 or later and then: {INSTALL}")
        })?;
    if !out.status.success() {
        return Err(format!(
            "pmd-pytcp is not installed for `{python}`: {INSTALL} (or set NETCONFORM_PYTHON to an interpreter that has it)"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The built-in configuration of `--target pytcp`: the agent run by the interpreter, a tap,
/// the stack owning its addresses. Fails, saying what to install, when pmd-pytcp is not
/// there.
pub fn config() -> Result<ExternalConfig, String> {
    let python = python();
    let version = installed_version(&python)?;
    if version != VERSION {
        eprintln!(
            "netconform: pmd-pytcp {version} is installed; the pytcp target was written for {VERSION} ({INSTALL})"
        );
    }
    Ok(ExternalConfig {
        path: PathBuf::from("(built in: --target pytcp)"),
        stack: "pytcp".into(),
        command: vec![
            python,
            "-c".into(),
            "import os; exec(compile(os.environ['NCF_PYTCP_AGENT'], 'agents/pytcp.py', 'exec'))"
                .into(),
        ],
        env: BTreeMap::from([("NCF_PYTCP_AGENT".to_string(), AGENT.to_string())]),
        timeout: TIMEOUT,
        answer_lag: ANSWER_LAG,
        interface: InterfaceKind::Tap,
        kernel_addresses: false,
        slow: Vec::new(),
        fixed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_speaks_the_current_protocol() {
        assert!(AGENT.contains("MAJOR, MINOR = 1, 2"));
        assert!(AGENT.contains(&format!("WANT_VERSION = \"{VERSION}\"")));
    }

    #[test]
    fn a_missing_interpreter_says_what_to_install() {
        let e = installed_version("/nonexistent/python3").unwrap_err();
        assert!(e.contains(INSTALL), "{e}");
    }
}
