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
//! at 1 ms), but answers an echo request at once, so the barrier's echo reply would overtake
//! the answer it is meant to prove. The agent makes PyTCP's echo reply wait until every
//! timer of the stack due within 2 ms of the request's arrival has run
//! (`echo_waits_for_due_timers` in agents/pytcp.py): an exact signal, so the target needs no
//! [`crate::dut::Dut::answer_lag`] ([`ANSWER_LAG`] is zero) and an answer after the echo
//! reply is late, as on any stack.
//!
//! What PyTCP does where a check pins a setting it cannot take is declared in
//! `profiles/pytcp.toml` ([`profile`]); its neighbour timers are set in whole seconds
//! through its `neighbor.*` sysctls, the ARP checks' timers and waits scaled up to them
//! (`[arp.tick_nud]`, [`crate::models::arp::TickNud`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::dut::external::{ExternalConfig, InterfaceKind};
use crate::dut::fixed::FixedBehaviour;

/// The agent, as shipped in this binary.
pub const AGENT: &str = include_str!("../../agents/pytcp.py");

/// The version of pmd-pytcp the agent was written and checked against.
pub const VERSION: &str = "0.3.8";

/// What to install when it is missing.
pub const INSTALL: &str = "pip install pmd-pytcp==0.3.8";

/// How long after its echo reply PyTCP may still send the answer to what came before: none,
/// since the agent holds the echo reply back until the timers that carry those answers have
/// run (module doc). Without that (`NCF_PYTCP_ECHO_WAITS=0`), the answers trailed the echo
/// reply by 2-4 ms on an idle machine and up to 12 ms on two busy cores, and a fixed lag of
/// 25 ms per barrier made the matrix rows 2.5 times slower.
pub const ANSWER_LAG: Duration = Duration::from_millis(0);

/// How many checks `certify --target pytcp` runs at a time without `-j`. A check spends most
/// of its time waiting on PyTCP's timers and on its start-up; on two busy cores (load 8 to
/// 10 from other work) the default certification took 230 s at 2 at a time and 176 s at
/// 4, with the same verdicts and the same disagreeing cells.
pub const JOBS: usize = 4;

/// PyTCP's declared fixed behaviour, as shipped (`profiles/pytcp.toml`).
pub const PROFILE: &str = include_str!("../../profiles/pytcp.toml");

/// PyTCP's declared fixed behaviour: `profiles/pytcp.toml` in the working directory when it
/// exists (a reviewer's edit applies at once), else the copy built into netconform. A broken
/// file is an error, never silently replaced.
pub fn profile() -> Result<Arc<FixedBehaviour>, String> {
    let here = Path::new("profiles").join("pytcp.toml");
    let parsed = if here.exists() {
        FixedBehaviour::load(&here)
    } else {
        FixedBehaviour::parse(PROFILE, "profiles/pytcp.toml")
    };
    parsed.map(Arc::new).map_err(|e| e.to_string())
}

/// Per request: the hello waits for the daemon to start (about 0.5 s idle, several under
/// load); the agent gives up on the daemon after 8 s itself.
const TIMEOUT: Duration = Duration::from_secs(12);

/// The interpreter that runs the agent.
fn python() -> String {
    std::env::var("NETCONFORM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The installed pmd-pytcp's version, or what to do about it.
pub fn installed_version(python: &str) -> Result<String, String> {
    interpreter(python).map(|(version, _)| version)
}

/// The installed pmd-pytcp's version and the interpreter's own path (`sys.executable`), or
/// what to do about it. The agent is started by that path: a `python3` on `PATH` may be a
/// wrapper (pyenv's shim runs a dozen bash scripts, about 0.25 s, before the interpreter),
/// and every check, and every trial of a shrink, starts an agent.
fn interpreter(python: &str) -> Result<(String, String), String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version('pmd-pytcp')); print(sys.executable)",
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
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(str::trim);
    let version = lines.next().unwrap_or_default().to_string();
    let executable = match lines.next() {
        Some(path) if !path.is_empty() => path.to_string(),
        _ => python.to_string(),
    };
    Ok((version, executable))
}

/// The built-in configuration of `--target pytcp`: the agent run by the interpreter, a tap,
/// the stack owning its addresses. Fails, saying what to install, when pmd-pytcp is not
/// there.
pub fn config() -> Result<ExternalConfig, String> {
    let (version, python) = interpreter(&python())?;
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
        jobs: Some(JOBS),
        fixed: Some(profile()?),
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
    fn the_shipped_profile_parses_and_cites_its_sources() {
        let p = FixedBehaviour::parse(PROFILE, "profiles/pytcp.toml").expect("valid");
        assert_eq!(p.stack, format!("pmd-pytcp {VERSION}"));
        let route = p.route.as_ref().expect("[route]");
        assert!(!route.lookup_api);
        assert!(route.metrics);
        assert!(!p.ip.as_ref().expect("[ip]").forwarding);
        // PyTCP's neighbour cache: Linux's states on a 100 ms pass, timers in whole seconds.
        let arp = p.arp.as_ref().expect("[arp]");
        let tick = arp.tick_nud.as_ref().expect("[arp.tick_nud]");
        assert_eq!(
            (tick.tick_ms, tick.timer_unit_ms, tick.locktime_ms),
            (100, 1000, 0)
        );
        assert!(arp.cache.is_none() && arp.requests.is_none() && arp.nud.is_none());
        for source in [
            &route.source,
            &p.ip.as_ref().expect("[ip]").source,
            &tick.source,
            &arp.policy.as_ref().expect("[arp.policy]").source,
            &arp.waiting_packet
                .as_ref()
                .expect("[arp.waiting_packet]")
                .source,
        ] {
            assert!(source.contains(".py:"), "{source}");
        }
    }

    #[test]
    fn a_missing_interpreter_says_what_to_install() {
        let e = installed_version("/nonexistent/python3").unwrap_err();
        assert!(e.contains(INSTALL), "{e}");
    }
}
