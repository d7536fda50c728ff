//! passt (Debian `passt`): `--target passt`.
//!
//! passt connects a guest to the host's network without a TAP: it speaks Ethernet frames
//! over a UNIX stream socket in qemu's framing and translates the guest's connections into
//! host kernel sockets ("doesn't implement a full TCP stack": it mirrors host sockets).
//! netconform speaks for the guest on that socket ([`StreamLink`], the link of this target:
//! the engine sees a [`Link`] as from any other DUT) and plays the host's application with
//! kernel sockets in passt's namespace.
//!
//! ```text
//!  stack namespace
//!  [ ncf<k>t ] 10.77.0.2/24, default route   <- passt's template interface (the veth's other
//!      |                                        end, in the harness namespace, stays unused)
//!    passt -f -1 -a 10.77.0.1 -g 10.77.0.2  <=> /run/netconform/ncf-<pid>-<n>-passt/passt.sock
//!      |  host sockets on lo                                   ^ netconform, the guest 10.77.0.1
//!  netconform-agent-passt (127.0.0.1:port)
//! ```
//!
//! [`PasstHost`] is an [`ExternalStack`] (a veth lab with the stack's address in the kernel,
//! passt's template) whose agent is `netconform-agent-passt` (agents/passt.rs), with the
//! socket link in place of the veth's packet socket. The socket directory is this target's
//! ([`SocketDir`], writable by `nobody`, to whom passt drops), removed with it and by
//! `netconform clean` after a killed run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dut::external::{ExternalConfig, ExternalStack, InterfaceKind};
use crate::dut::fixed::{FixedBehaviour, FixedError, builtin_profile};
use crate::dut::needs::Needs;
use crate::dut::slirp::{agent_beside_executable, on_path};
use crate::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, Link, SocketCall, Sockets, StateAnswer,
    StateQuery, Tables, TcpStackConfig,
};
use crate::sandbox::{SocketDir, StreamLink};

/// The agent's program name (built with netconform: `cargo build --bin netconform-agent-passt`).
pub const AGENT: &str = "netconform-agent-passt";

/// Why the passt target shows no TCP states.
pub const NO_CONNECTION_TABLE: &str = "passt exposes no connection table (it keeps no TCP state machine of its own: it mirrors host sockets)";

/// passt's declared fixed behaviour, as shipped (`profiles/passt.toml`).
pub const PROFILE: &str = include_str!("../../profiles/passt.toml");

/// passt's declared fixed behaviour: `profiles/passt.toml` in the working directory when it
/// exists (a reviewer's edit applies at once), else the copy built into netconform. A broken
/// file is an error, never silently replaced.
pub fn profile() -> Result<Arc<FixedBehaviour>, FixedError> {
    builtin_profile("passt", PROFILE)
}

/// How to build the passt target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasstConfig {
    /// The agent (`netconform-agent-passt`).
    pub agent: PathBuf,
    /// The passt program the agent runs (`passt`, looked up on `PATH`).
    pub program: String,
    /// Per-request timeout of the agent.
    pub timeout: Duration,
    /// The declared fixed behaviour to run with; `None`: passt's own ([`profile`]).
    pub fixed: Option<Arc<FixedBehaviour>>,
}

impl Default for PasstConfig {
    fn default() -> Self {
        PasstConfig {
            agent: agent_beside_executable(AGENT),
            program: "passt".into(),
            timeout: Duration::from_secs(5),
            fixed: None,
        }
    }
}

/// passt with its agent, reached through its socket (see the module doc).
#[derive(Debug)]
pub struct PasstHost {
    // Field order is drop order: the socket, then the stack (agent, passt, lab), then the
    // socket directory.
    link: StreamLink,
    inner: ExternalStack,
    dir: SocketDir,
}

fn missing(what: String) -> DutError {
    DutError::Io {
        op: "start the passt target".into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, what),
    }
}

impl PasstHost {
    /// Builds the lab the check `needs`, starts the agent (which starts passt) and
    /// connects to passt's socket.
    pub fn new(config: &PasstConfig, needs: &Needs) -> Result<PasstHost, DutError> {
        if !on_path(&config.program) {
            return Err(missing(format!(
                "{} is not on PATH: install it (apt-get install passt)",
                config.program
            )));
        }
        if !config.agent.exists() {
            return Err(missing(format!(
                "its agent {} is missing (cargo build --bin {AGENT})",
                config.agent.display()
            )));
        }
        // passt drops root to `nobody`: it must be able to make its socket and log here.
        let dir = SocketDir::create("passt", 0o1777)?;
        let external = ExternalConfig {
            path: PathBuf::from("(built-in passt target)"),
            stack: "passt".into(),
            command: vec![config.agent.display().to_string()],
            env: [
                (
                    "NETCONFORM_PASST_DIR".to_string(),
                    dir.path().display().to_string(),
                ),
                ("NETCONFORM_PASST".to_string(), config.program.clone()),
            ]
            .into(),
            timeout: config.timeout,
            interface: InterfaceKind::Veth,
            kernel_addresses: true,
            // Its answers that follow the host side are waited for by the TCP checks
            // (`Sockets::answers_wait_for_host`), not by every barrier.
            answer_lag: Duration::ZERO,
            // No check of the catalogue waits out one of its long timers.
            slow: Vec::new(),
            jobs: None,
            fixed: Some(match &config.fixed {
                Some(fixed) => fixed.clone(),
                None => profile().map_err(|e| DutError::Io {
                    op: "read passt's declared behaviour".into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                })?,
            }),
        };
        let inner = ExternalStack::new(&external, needs)?;
        let link =
            StreamLink::connect_within(&dir.path().join("passt.sock"), Duration::from_secs(2))?;
        Ok(PasstHost { link, inner, dir })
    }

    /// passt's process id, once it wrote it.
    pub fn passt_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("passt.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The socket directory (passt's socket, pid and log).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Why passt cannot answer, when it cannot (gone or stopped), with its last log lines.
    pub fn passt_trouble(&self) -> Option<String> {
        let pid = self.passt_pid()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        let what = match state {
            None | Some('Z' | 'X') => "is gone",
            Some('T' | 't') => "is stopped",
            _ => return None,
        };
        Some(format!(
            "passt (pid {pid}) {what}; its log ends: {}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("passt.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        if tail.is_empty() {
            "(nothing)".into()
        } else {
            tail
        }
    }

    /// A link error, with passt's state and log when it is the cause.
    fn link_error(&self, e: crate::sandbox::SandboxError) -> DutError {
        // A killed passt resets the socket a moment before its process is seen to end.
        let until = Instant::now() + Duration::from_millis(300);
        while self.passt_trouble().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        match self.passt_trouble() {
            Some(what) => DutError::Gone {
                what: format!("{what} ({e})"),
            },
            None => DutError::Gone {
                what: format!("{e}; passt's log ends: {}", self.log_tail()),
            },
        }
    }
}

impl Dut for PasstHost {
    fn name(&self) -> &str {
        "passt"
    }

    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }

    fn fixed_behaviour(&self) -> Option<Arc<FixedBehaviour>> {
        self.inner.fixed_behaviour()
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!(
                "link = qemu stream framing on {}",
                self.dir.path().join("passt.sock").display()
            ),
            format!(
                "TCP states = not read: {NO_CONNECTION_TABLE}; the TCP checks compare the wire alone"
            ),
        ];
        env.extend(self.inner.environment());
        env
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for PasstHost {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        match self.link.send(frame) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.link_error(e)),
        }
    }

    /// A silence is checked: when passt is gone or stopped, it is that error.
    fn recv_frame(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, DutError> {
        match self.link.recv(deadline) {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => match self.passt_trouble() {
                Some(what) => Err(DutError::Gone { what }),
                None => Ok(None),
            },
            Err(e) => Err(self.link_error(e)),
        }
    }
}

impl Sockets for PasstHost {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.inner.call(call)
    }

    fn udp(&self) -> bool {
        Sockets::udp(&self.inner)
    }

    fn tcp_config(&self) -> TcpStackConfig {
        PASST_TCP
    }

    /// passt answers a guest's SYN once its host connect completes (or fails).
    fn answers_wait_for_host(&self) -> bool {
        true
    }

    /// passt reads the guest's frames in order and sends what a host socket's event makes
    /// (the SYN-ACK after its host connect, the FIN after the application's close) from the
    /// next turn of its epoll loop; an echo request is answered through its ping socket,
    /// also from the next turn. So two more echo round trips after the barrier's follow
    /// every answer that waits for the host (measured: docs/findings-passt.md).
    fn host_answers_within_barriers(&self) -> u8 {
        2
    }
}

/// How passt sends TCP to the guest: window scaling, no SACK, no timestamps, TTL 255 (as
/// every segment it sent showed).
pub const PASST_TCP: TcpStackConfig = TcpStackConfig {
    sack: false,
    window_scaling: true,
    timestamps: false,
    ttl: 255,
};

impl Tables for PasstHost {
    fn tcp_states_hidden(&self) -> Option<String> {
        Some(NO_CONNECTION_TABLE.into())
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.inner.query(query)
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.inner.control(control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::fixed::AnswerScope;

    #[test]
    fn the_shipped_profile_parses_and_cites_its_sources() {
        let p = FixedBehaviour::parse(PROFILE, "profiles/passt.toml").expect("valid");
        assert_eq!(p.stack, "passt 0.0~git20230309.7c7625d");
        let one = p.one_neighbour().expect("[arp.one_neighbour]");
        assert!(!one.sends_requests);
        assert_eq!(
            one.initial_mac.parse::<crate::wire::MacAddr>(),
            Ok(crate::wire::MacAddr::BROADCAST)
        );
        assert_eq!(one.answers, AnswerScope::AnyButNeighbour);
        assert!(!one.answers_announcements);
        for cited in ["tap.c:", "arp.c:"] {
            assert!(one.source.contains(cited), "{}", one.source);
        }
        let ip = p.ip.as_ref().expect("[ip]");
        assert!(!ip.forwarding);
        assert!(ip.source.contains("tap.c:"), "{}", ip.source);
    }
}
