//! Any stack reachable through an interface, its socket calls made by an **agent**.
//!
//! [`ExternalStack`] = a [`Lab`] (as for [`super::linux::LinuxHost`]: a harness and a
//! stack namespace joined by a veth pair, built per check) + a [`PacketSocket`] on the
//! harness end (the wire plane) + an agent process started inside the stack namespace,
//! spoken to over its stdin and stdout with the [`super::agent`] protocol (the
//! control plane). The agent is named by a TOML file ([`ExternalConfig`]; on the command
//! line `--target external:CONFIG`).
//!
//! The target never hangs on its agent: stdout is read on a thread of its own and every
//! request has a deadline (the configured timeout, plus the call's own `timeout_ms` for
//! blocking calls). An agent that stays silent past it is a [`DutError::Timeout`], a line
//! that is not protocol JSON a [`DutError::Malformed`] quoting the line, an agent that
//! exited a [`DutError::Gone`] with its exit status and the tail of its stderr, and every
//! later request then fails at once with the same `Gone`. What the agent answers
//! `unsupported` is [`DutError::NotSupported`], and so is a UDP call to an agent whose
//! hello names a minor version before [`agent::UDP_MINOR`] (it is never sent one), and a route
//! lookup from a source ([`StateQuery::RouteGetFrom`]) to one before
//! [`agent::ROUTE_SOURCE_MINOR`]. Dropping
//! the target closes the agent's stdin, kills its process group if it has not exited within
//! a moment, reaps it, and removes the namespaces.
//!
//! With `kind = "tap"` (and `kernel_addresses = false`: a user-space stack) the stack does its
//! I/O through a persistent TAP device the harness bridges to the stack's veth end inside the
//! stack namespace ([`crate::sandbox::TapBridge`]); the agent is told the tap's name
//! (`NETCONFORM_IFNAME`, with `NETCONFORM_INTERFACE_KIND=tap`) and the MAC to use,
//! [`TAP_STACK_MAC`], which is the target's [`Endpoints::stack_mac`]. After the hello the
//! target waits until the stack has opened the tap and the bridge forwards to it (a set-up
//! [`DutError::Timeout`] if it never does), and drops what the stack sent while it started
//! (lwIP's announcement of its address): the check begins after it. The wire plane is the
//! same veth end either way.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::agent::{self, AgentEnv, ReplyBody, Request, RequestBody};
use super::{CallOutcome, Control, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery};
use crate::dut::needs::Needs;
use crate::sandbox::{Lab, MacAddr, PacketSocket, TapBridge};

/// The per-request timeout when the configuration names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many lines of the agent's stderr a `Gone` error quotes.
const STDERR_TAIL_LINES: usize = 12;

/// How long a closed agent may take to exit before its process group is killed.
const EXIT_GRACE: Duration = Duration::from_millis(300);

/// What went wrong reading an external target's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the external target configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown or missing keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said (line, column, key).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: `{key}` {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key (`agent.command`).
        key: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },
}

/// The interface the stack is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterfaceKind {
    /// The stack's end of the veth pair (a kernel stack, or a user-space stack on
    /// AF_PACKET).
    Veth,
    /// A persistent TAP device in the stack namespace, bridged to the stack's veth end: a
    /// user-space stack opens it through `/dev/net/tun` (`IFF_TAP | IFF_NO_PI`) and uses the
    /// MAC [`TAP_STACK_MAC`]. Only with `kernel_addresses = false`.
    Tap,
}

impl InterfaceKind {
    /// Its name in the configuration and in `NETCONFORM_INTERFACE_KIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Veth => "veth",
            InterfaceKind::Tap => "tap",
        }
    }
}

/// The MAC a user-space stack on a tap uses (`NETCONFORM_MAC`): the stack sits behind the
/// tap, so its address is none of the kernel's (the tap's own, the bridge's and the veth
/// end's are the bridge's local addresses, which it would keep for itself).
pub const TAP_STACK_MAC: MacAddr = crate::wire::plan::link_end(2);

/// How long the agent may take, after its hello, until the stack has opened its tap.
const TAP_OPEN_WAIT: Duration = Duration::from_secs(5);

/// An external target's configuration: the stack, how its agent starts, its interface.
///
/// ```toml
/// [stack]
/// name = "linux-agent"                          # the target's name in reports
/// slow = ["tcp.timer.time-wait"]                # the slow tier (optional): see `slow`
/// # jobs = 4                                    # checks at a time without -j (default 2)
/// # profile = "linux-agent.profile.toml"        # optional: its declared fixed behaviour
///
/// [agent]
/// command = ["../../target/release/netconform-agent-linux"]
/// timeout_ms = 5000                             # per request (default 5000)
/// answer_lag_ms = 0                             # see `Dut::answer_lag` (default 0)
/// env = { RUST_BACKTRACE = "1" }                # extra environment (optional)
///
/// [interface]
/// kind = "veth"                                 # or "tap" (a user-space stack on /dev/net/tun)
/// kernel_addresses = true                       # false: a user-space stack owns them
/// ```
///
/// A relative program path with a `/` is read from the configuration file's directory; a
/// bare name is looked up on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalConfig {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// The stack's name in reports.
    pub stack: String,
    /// The agent's argv, the program resolved.
    pub command: Vec<String>,
    /// Extra environment for the agent.
    pub env: BTreeMap<String, String>,
    /// Per-request timeout (blocking calls add their own `timeout_ms`).
    pub timeout: Duration,
    /// How long after its echo reply the stack may still answer what came before
    /// (`agent.answer_lag_ms`, default 0; [`Dut::answer_lag`]).
    pub answer_lag: Duration,
    /// The interface the stack is attached to.
    pub interface: InterfaceKind,
    /// The checks of the slow tier on this stack (ids, or prefixes ending in `*`): those
    /// that wait out timers the stack runs on the wall clock and cannot shorten (lwIP's
    /// 120 s TIME-WAIT). `certify` leaves them out unless given `--slow`.
    pub slow: Vec<String>,
    /// The harness puts the stack's addresses on the interface in the kernel, and pins the
    /// kernel's sysctls there (a kernel stack, like the reference agent). When false the
    /// kernel of the stack namespace gets no address and IPv6 off, and the stack (a
    /// user-space stack on the interface) owns the addresses it is told.
    pub kernel_addresses: bool,
    /// How many checks `certify` runs at a time when `-j` is not given (`[stack] jobs`;
    /// `None`: the command line's default). For a stack that mostly waits on its own wall
    /// clock (PyTCP), more checks at a time than cores cost nothing and change no verdict.
    pub jobs: Option<usize>,
    /// The stack's declared fixed behaviour (`[stack] profile = "FILE"`, relative to this
    /// file's directory; format: profiles/README.md), read at start.
    pub fixed: Option<Arc<crate::dut::fixed::FixedBehaviour>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    stack: RawStack,
    agent: RawAgent,
    #[serde(default)]
    interface: RawInterface,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    name: String,
    #[serde(default)]
    slow: Vec<String>,
    profile: Option<String>,
    jobs: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    timeout_ms: Option<u64>,
    answer_lag_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    #[serde(default = "veth")]
    kind: String,
    #[serde(default = "yes")]
    kernel_addresses: bool,
}

fn veth() -> String {
    "veth".into()
}

fn yes() -> bool {
    true
}

impl Default for RawInterface {
    fn default() -> Self {
        RawInterface {
            kind: veth(),
            kernel_addresses: true,
        }
    }
}

impl ExternalConfig {
    /// Reads and checks the configuration at `path`.
    pub fn load(path: &Path) -> Result<ExternalConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks the configuration `text`, read from `path` (relative program paths are read
    /// from its directory).
    pub fn parse(text: &str, path: &Path) -> Result<ExternalConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let invalid = |key, reason: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            reason: reason.to_string(),
        };
        if raw.stack.name.trim().is_empty() {
            return Err(invalid(
                "stack.name",
                "is empty: name the stack for the report",
            ));
        }
        let mut command = raw.agent.command;
        let Some(program) = command.first_mut() else {
            return Err(invalid(
                "agent.command",
                "is empty: give the agent's program and its arguments, e.g. [\"./my-agent\", \"--verbose\"]",
            ));
        };
        if program.is_empty() {
            return Err(invalid("agent.command", "names an empty program"));
        }
        if program.contains('/') && Path::new(program.as_str()).is_relative() {
            let dir = path.parent().unwrap_or(Path::new("."));
            *program = dir.join(&*program).display().to_string();
        }
        let timeout = match raw.agent.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(0) => {
                return Err(invalid(
                    "agent.timeout_ms",
                    "is 0: give milliseconds, e.g. 5000",
                ));
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let interface = match raw.interface.kind.as_str() {
            "veth" => InterfaceKind::Veth,
            "tap" if raw.interface.kernel_addresses => {
                return Err(invalid(
                    "interface.kind",
                    "is `tap` with `kernel_addresses = true`: a tap is for a user-space stack, which owns its addresses; write `kernel_addresses = false` (or `kind = \"veth\"` for a kernel stack)",
                ));
            }
            "tap" => InterfaceKind::Tap,
            other => {
                return Err(invalid(
                    "interface.kind",
                    &format!("is `{other}`: the kinds are `veth` and `tap`"),
                ));
            }
        };
        if let Some(bad) = raw
            .stack
            .slow
            .iter()
            .find(|p| p.is_empty() || p.strip_suffix('*').unwrap_or(p).contains('*'))
        {
            return Err(invalid(
                "stack.slow",
                &format!("has {bad:?}: give check ids, or prefixes ending in `*` (`tcp.timer.*`)"),
            ));
        }
        if raw.stack.jobs == Some(0) {
            return Err(invalid(
                "stack.jobs",
                "is 0: give how many checks run at a time, e.g. 4",
            ));
        }
        let fixed = match &raw.stack.profile {
            None => None,
            Some(file) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let f = crate::dut::fixed::FixedBehaviour::load(&dir.join(file))
                    .map_err(|e| invalid("stack.profile", &format!("cannot be read: {e}")))?;
                Some(Arc::new(f))
            }
        };
        Ok(ExternalConfig {
            fixed,
            path: path.to_path_buf(),
            slow: raw.stack.slow,
            stack: raw.stack.name,
            command,
            env: raw.agent.env,
            timeout,
            answer_lag: Duration::from_millis(raw.agent.answer_lag_ms.unwrap_or(0)),
            interface,
            kernel_addresses: raw.interface.kernel_addresses,
            jobs: raw.stack.jobs,
        })
    }
}

/// A running agent process and the threads reading its output.
struct Agent {
    child: Child,
    pid: u32,
    program: String,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: Arc<AtomicBool>,
    next_id: u64,
    timeout: Duration,
    /// Set once the agent is gone: every later request fails with it at once.
    gone: Option<String>,
    /// The agent was waited for (its pid may belong to another process now).
    reaped: bool,
}

/// The first `n` characters of `line`, for quoting.
fn prefix(line: &str, n: usize) -> String {
    let mut out: String = line.chars().take(n).collect();
    if line.chars().count() > n {
        out.push('…');
    }
    out
}

impl Agent {
    /// Starts `command` on the calling thread (which is inside the stack namespace).
    fn spawn(
        command: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Agent, DutError> {
        let program = command.first().cloned().unwrap_or_default();
        let mut cmd = Command::new(&program);
        cmd.args(&command[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that dropping the target ends the agent and
            // whatever it started, and nothing else.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            cmd.pre_exec(|| {
                // If the harness dies, so does the agent (no orphan holds the namespace).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| DutError::Io {
            op: format!("start the agent `{program}`"),
            source,
        })?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = stdout {
            std::thread::Builder::new()
                .name(format!("ncf agent {pid} stdout"))
                .spawn(move || {
                    let mut reader = BufReader::new(stdout);
                    let mut buf = Vec::new();
                    loop {
                        buf.clear();
                        match reader.read_until(b'\n', &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                                if tx.send(line).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                })
                .map_err(|source| DutError::Io {
                    op: "start the agent's stdout reader".into(),
                    source,
                })?;
        }
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = Arc::new(AtomicBool::new(stderr.is_none()));
        if let Some(mut stderr) = stderr {
            let (tail, done) = (stderr_tail.clone(), stderr_done.clone());
            std::thread::Builder::new()
                .name(format!("ncf agent {pid} stderr"))
                .spawn(move || {
                    let mut pending = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let push = |tail: &Mutex<VecDeque<String>>, line: &[u8]| {
                        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                        t.push_back(prefix(String::from_utf8_lossy(line).trim_end(), 300));
                        while t.len() > STDERR_TAIL_LINES {
                            t.pop_front();
                        }
                    };
                    while let Ok(n) = stderr.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        pending.extend_from_slice(&chunk[..n]);
                        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=i).collect();
                            push(&tail, &line);
                        }
                    }
                    if !pending.is_empty() {
                        push(&tail, &pending);
                    }
                    done.store(true, Ordering::SeqCst);
                })
                .map_err(|source| DutError::Io {
                    op: "start the agent's stderr reader".into(),
                    source,
                })?;
        }
        Ok(Agent {
            stdin: child.stdin.take(),
            child,
            pid,
            program,
            lines,
            stderr_tail,
            stderr_done,
            next_id: 1,
            timeout,
            gone: None,
            reaped: false,
        })
    }

    fn stderr_tail(&self) -> String {
        // The reader finishes when the agent's stderr closes; give it a moment.
        let until = Instant::now() + Duration::from_millis(200);
        while !self.stderr_done.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            "(nothing on stderr)".into()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }

    /// How the agent ended, without reaping it (`None`: still running). While it is not
    /// reaped its pid, which is also its process group's id, cannot be reused, so killing
    /// the group can only reach processes we started.
    fn peek_exit(&self) -> Option<String> {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        if self.reaped {
            return Some("reaped".into());
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid).ok()?);
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status {code}")),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(format!("killed by {signal}")),
            Ok(_) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// Waits up to `grace` for the agent to exit; its status, or `None`.
    fn wait_exit(&self, grace: Duration) -> Option<String> {
        let until = Instant::now() + grace;
        loop {
            if let Some(status) = self.peek_exit() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The agent closed its stdout or its stdin: wait for its exit status, record it.
    fn mark_gone(&mut self, during: &str) -> DutError {
        let status = self
            .wait_exit(Duration::from_secs(1))
            .unwrap_or_else(|| "closed its output and is still running; killed".into());
        let what = format!(
            "agent `{}` (pid {}) is gone ({status}) during {during}; its stderr ends: {}",
            self.program,
            self.pid,
            self.stderr_tail()
        );
        self.kill();
        self.stdin = None;
        self.gone = Some(what.clone());
        DutError::Gone { what }
    }

    /// Kills the agent's process group (ours: the agent leads it), then reaps the agent.
    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Sends one request and waits for its reply, at most the timeout plus `extra`.
    fn request(
        &mut self,
        body: RequestBody,
        what: &str,
        extra: Duration,
    ) -> Result<ReplyBody, DutError> {
        if let Some(gone) = &self.gone {
            return Err(DutError::Gone { what: gone.clone() });
        }
        let id = self.next_id;
        self.next_id += 1;
        let line =
            serde_json::to_string(&Request { id, body }).map_err(|e| DutError::Malformed {
                detail: format!("cannot encode {what}: {e}"),
            })?;
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.write_all(b"\n"))
                .and_then(|()| stdin.flush()),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        };
        if written.is_err() {
            return Err(self.mark_gone(what));
        }
        let wait = self.timeout + extra;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => match serde_json::from_str::<agent::Reply>(&line) {
                    Err(e) => {
                        return Err(DutError::Malformed {
                            detail: format!(
                                "agent `{}` answered {what} with `{}`, which is not {}/{} JSON ({e})",
                                self.program,
                                prefix(&line, 80),
                                agent::PROTOCOL,
                                agent::MAJOR
                            ),
                        });
                    }
                    // A late reply to an earlier request that timed out.
                    Ok(reply) if reply.id < id => continue,
                    Ok(reply) if reply.id != id => {
                        return Err(DutError::Malformed {
                            detail: format!(
                                "agent `{}` answered request {id} ({what}) with id {}",
                                self.program, reply.id
                            ),
                        });
                    }
                    Ok(reply) => return Ok(reply.body),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(DutError::Timeout {
                        what: format!(
                            "agent `{}` did not answer {what} within {} ms",
                            self.program,
                            wait.as_millis()
                        ),
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.mark_gone(what)),
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // EOF on stdin asks the agent to exit; a moment later its group is killed anyway
        // (also when it exited: something it started may still run in its group).
        self.stdin = None;
        let _ = self.wait_exit(EXIT_GRACE);
        self.kill();
    }
}

/// What the agent said about itself in its `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHello {
    /// The stack's name.
    pub stack: String,
    /// The stack's version.
    pub version: String,
    /// The agent's minor protocol version.
    pub minor: u32,
    /// Facts the results depend on.
    pub environment: Vec<String>,
    /// The TCP options the stack offers (all of them when the hello did not say).
    pub tcp_config: crate::dut::TcpStackConfig,
}

/// A stack behind an agent, in a lab of its own (see the module doc).
pub struct ExternalStack {
    /// The declared fixed behaviour of the configuration, if any.
    fixed: Option<Arc<crate::dut::fixed::FixedBehaviour>>,
    name: String,
    answer_lag: Duration,
    command: Vec<String>,
    kernel_addresses: bool,
    /// The tap and its bridge (`kind = "tap"`).
    tap: Option<TapBridge>,
    hello: AgentHello,
    endpoints: Endpoints,
    // Field order is drop order: the agent first, then the packet socket, the lab last.
    agent: Agent,
    packet: PacketSocket,
    lab: Lab,
}

impl std::fmt::Debug for ExternalStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalStack")
            .field("name", &self.name)
            .field("agent_pid", &self.agent.pid)
            .field("hello", &self.hello)
            .field("lab", &self.lab)
            .finish()
    }
}

impl ExternalStack {
    /// Builds the lab the check `needs` (the address plan of
    /// [`crate::sandbox::LabConfig::default`], IPv6 only when the check uses it), opens the
    /// packet socket, starts the agent inside the stack namespace and shakes hands with it.
    pub fn new(config: &ExternalConfig, needs: &Needs) -> Result<ExternalStack, DutError> {
        // A check for another kind of device (a switch or router check, a TLS check) is
        // refused before namespaces and an agent are set up for nothing: an external stack
        // is a host with one link, sockets and tables, and no service (PyTCP starts in
        // about a second per check, and 23 such checks are in the catalogue).
        let host = super::Capabilities {
            link_ports: 1,
            tcp: true,
            udp: true,
            tables: true,
            services: Vec::new(),
        };
        if needs.other_kind(&host)
            && let Some(what) = needs.unmet(&host)
        {
            return Err(DutError::NotSupported { what });
        }
        let plan = super::linux::lab_config_for(needs);
        let mut lab_config = plan.clone();
        if !config.kernel_addresses {
            // The kernel of the stack namespace stays out of the way: no address, IPv6 off.
            lab_config.ipv4 = None;
            lab_config.ipv6 = None;
            lab_config.static_neighbours = false;
        }
        let mut lab = Lab::build(lab_config)?;
        let tap = match config.interface {
            InterfaceKind::Veth => None,
            InterfaceKind::Tap => Some(lab.add_tap_bridge()?),
        };
        if let Some(t) = &tap {
            let kernel_macs = [t.tap.mac, t.bridge.mac, lab.target_link().mac];
            if kernel_macs.contains(&Some(TAP_STACK_MAC)) {
                return Err(DutError::Malformed {
                    detail: format!(
                        "the kernel gave {TAP_STACK_MAC}, the tap stack's MAC, to one of its own interfaces"
                    ),
                });
            }
        }
        let packet = lab.packet_socket()?;
        let endpoints = Endpoints {
            harness_mac: lab.harness_mac(),
            stack_mac: match &tap {
                None => lab.target_mac(),
                Some(_) => TAP_STACK_MAC,
            },
            stack_ipv4: plan.ipv4.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv4: plan.ipv4.as_ref().map(|v| v.peer),
            stack_ipv6: plan.ipv6.as_ref().map(|v| (v.stack, v.prefix_len)),
            peer_ipv6: plan.ipv6.as_ref().map(|v| v.peer),
            mtu: lab.target_link().mtu,
        };
        let agent_env = AgentEnv {
            namespace: lab.target().name().to_string(),
            interface: match &tap {
                None => lab.target_link().name.clone(),
                Some(t) => t.tap.name.clone(),
            },
            interface_kind: config.interface.as_str().to_string(),
            mac: endpoints.stack_mac,
            peer_mac: endpoints.harness_mac,
            ipv4: endpoints.stack_ipv4,
            peer_ipv4: endpoints.peer_ipv4,
            ipv6: endpoints.stack_ipv6,
            peer_ipv6: endpoints.peer_ipv6,
            mtu: endpoints.mtu,
            kernel_addresses: config.kernel_addresses,
            peer_preresolved: needs.peer_preresolved,
            settings: needs
                .settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let env: Vec<(String, String)> = agent_env
            .vars()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(config.env.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        let (command, timeout) = (config.command.clone(), config.timeout);
        let mut agent = lab
            .target()
            .run(move || Agent::spawn(&command, &env, timeout))??;
        let hello = handshake(&mut agent)?;
        if let Some(t) = &tap
            && !lab.wait_tap_open(t, TAP_OPEN_WAIT)?
        {
            return Err(DutError::Timeout {
                what: format!(
                    "agent `{}` answered hello, but within {} s nothing opened the tap {} (open it with IFF_TAP|IFF_NO_PI before answering hello)",
                    agent.program,
                    TAP_OPEN_WAIT.as_secs(),
                    t.tap.name
                ),
            });
        }
        if tap.is_some() {
            // What a user-space stack said while it started (lwIP announces its address
            // when its interface comes up) was said before the check began: not the
            // check's to judge, nor to trip over.
            packet.drain()?;
        }
        Ok(ExternalStack {
            fixed: config.fixed.clone(),
            name: config.stack.clone(),
            answer_lag: config.answer_lag,
            command: config.command.clone(),
            kernel_addresses: config.kernel_addresses,
            tap,
            hello,
            endpoints,
            agent,
            packet,
            lab,
        })
    }

    /// What the agent said in its `hello`.
    pub fn hello(&self) -> &AgentHello {
        &self.hello
    }

    /// The agent's process id (it leads a process group of its own).
    pub fn agent_pid(&self) -> u32 {
        self.agent.pid
    }

    /// The lab underneath (namespaces, links, recorded sysctls).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    fn unexpected(&self, what: &str, expected: &str, body: &ReplyBody) -> DutError {
        DutError::Malformed {
            detail: format!(
                "agent `{}` answered {what} with {}, expected `{expected}`",
                self.agent.program,
                serde_json::to_string(body)
                    .map(|s| prefix(&s, 80))
                    .unwrap_or_default()
            ),
        }
    }

    fn refused(&self, what: &str, body: ReplyBody) -> DutError {
        match body {
            ReplyBody::Unsupported { what } => DutError::NotSupported { what },
            ReplyBody::Error { message } => DutError::Io {
                op: format!("agent `{}`: {what}", self.agent.program),
                source: std::io::Error::other(message),
            },
            other => self.unexpected(what, "an answer of the right kind", &other),
        }
    }
}

fn handshake(agent: &mut Agent) -> Result<AgentHello, DutError> {
    let body = agent.request(
        RequestBody::Hello {
            protocol: agent::PROTOCOL.into(),
            major: agent::MAJOR,
            minor: agent::MINOR,
        },
        "hello",
        Duration::ZERO,
    )?;
    let harness = format!("{}/{}", agent::PROTOCOL, agent::MAJOR);
    match body {
        ReplyBody::Hello {
            protocol,
            major,
            minor,
            stack,
            version,
            environment,
            tcp_config,
        } => {
            if protocol != agent::PROTOCOL || major != agent::MAJOR {
                return Err(DutError::Malformed {
                    detail: format!(
                        "incompatible agent `{}`: it speaks {protocol}/{major}, the harness {harness}",
                        agent.program
                    ),
                });
            }
            Ok(AgentHello {
                stack,
                version,
                minor,
                environment,
                tcp_config: tcp_config.unwrap_or_default(),
            })
        }
        ReplyBody::Error { message } => Err(DutError::Malformed {
            detail: format!(
                "agent `{}` refused the {harness} handshake: {message}",
                agent.program
            ),
        }),
        other => Err(DutError::Malformed {
            detail: format!(
                "agent `{}` answered hello with {}, expected `hello`",
                agent.program,
                serde_json::to_string(&other).unwrap_or_default()
            ),
        }),
    }
}

/// How long a blocking call may take on its own.
fn call_wait(call: &SocketCall) -> Duration {
    match call {
        SocketCall::Accept { timeout_ms, .. }
        | SocketCall::WaitConnected { timeout_ms, .. }
        | SocketCall::Recv { timeout_ms, .. }
        | SocketCall::RecvFrom { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
        _ => Duration::ZERO,
    }
}

impl Dut for ExternalStack {
    fn name(&self) -> &str {
        &self.name
    }

    fn fixed_behaviour(&self) -> Option<Arc<crate::dut::fixed::FixedBehaviour>> {
        self.fixed.clone()
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!(
                "agent = {} {} ({}/{}.{})",
                self.hello.stack,
                self.hello.version,
                agent::PROTOCOL,
                agent::MAJOR,
                self.hello.minor
            ),
            format!("agent command = {}", self.command.join(" ")),
            format!(
                "answer lag = {} ms (the barrier reads this long after its echo reply)",
                self.answer_lag.as_millis()
            ),
            format!(
                "interface = {}, addresses {}",
                match &self.tap {
                    None => format!("veth {}", self.lab.target_link().name),
                    Some(t) => format!(
                        "tap {} (stack MAC {}), bridged by {} to veth {}",
                        t.tap.name,
                        self.endpoints.stack_mac,
                        t.bridge.name,
                        self.lab.target_link().name
                    ),
                },
                if self.kernel_addresses {
                    "in the kernel"
                } else {
                    "owned by the stack"
                }
            ),
        ];
        env.extend(self.hello.environment.iter().map(|l| format!("agent: {l}")));
        env.extend(super::linux::lab_environment(&self.lab));
        env
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn answer_lag(&self) -> crate::time::Duration {
        crate::time::Duration::from_micros(
            u64::try_from(self.answer_lag.as_micros()).unwrap_or(u64::MAX),
        )
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn crate::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Link for ExternalStack {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        Ok(self.packet.send(frame)?)
    }

    fn recv_frame(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.packet.recv(deadline)?)
    }
}

impl crate::dut::Sockets for ExternalStack {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        if call.is_udp() && self.hello.minor < agent::UDP_MINOR {
            // An agent of an older minor would not know the call: it is never sent one.
            return Err(DutError::NotSupported {
                what: format!(
                    "{call}: agent `{}` speaks {p}/{}.{}; UDP socket calls need {p}/{}.{} (docs/agent-protocol.md)",
                    self.agent.program,
                    agent::MAJOR,
                    self.hello.minor,
                    agent::MAJOR,
                    agent::UDP_MINOR,
                    p = agent::PROTOCOL,
                ),
            });
        }
        let what = format!("call {call}");
        let body = self.agent.request(
            RequestBody::Call { call: call.clone() },
            &what,
            call_wait(call),
        )?;
        match body {
            ReplyBody::Outcome { outcome } => Ok(outcome),
            other => Err(self.refused(&what, other)),
        }
    }

    fn udp(&self) -> bool {
        self.hello.minor >= agent::UDP_MINOR
    }

    fn tcp_config(&self) -> crate::dut::TcpStackConfig {
        self.hello.tcp_config
    }
}

impl crate::dut::Tables for ExternalStack {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        if matches!(query, StateQuery::RouteGetFrom { .. })
            && self.hello.minor < agent::ROUTE_SOURCE_MINOR
        {
            // An agent of an older minor would not know the query: it is never sent one.
            return Err(DutError::NotSupported {
                what: format!(
                    "query RouteGetFrom: agent `{}` speaks {p}/{}.{}; a route lookup from a source needs {p}/{}.{} (docs/agent-protocol.md)",
                    self.agent.program,
                    agent::MAJOR,
                    self.hello.minor,
                    agent::MAJOR,
                    agent::ROUTE_SOURCE_MINOR,
                    p = agent::PROTOCOL,
                ),
            });
        }
        let what = format!("query {}", agent::query_name(query));
        let body = self.agent.request(
            RequestBody::Query {
                query: query.clone(),
            },
            &what,
            Duration::ZERO,
        )?;
        match body {
            ReplyBody::Answer { answer } => Ok(answer),
            other => Err(self.refused(&what, other)),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        let what = format!("control `{control}`");
        let body = self.agent.request(
            RequestBody::Control {
                control: control.clone(),
            },
            &what,
            Duration::ZERO,
        )?;
        match body {
            ReplyBody::Ok => Ok(()),
            other => Err(self.refused(&what, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExternalConfig, ConfigError> {
        ExternalConfig::parse(text, Path::new("/etc/ncf/agent.toml"))
    }

    #[test]
    fn a_full_config_reads_back() {
        let c = parse(
            r#"
            [stack]
            name = "lwip"
            [agent]
            command = ["./bin/lwip-agent", "--tap"]
            timeout_ms = 1500
            env = { LWIP_DEBUG = "1" }
            [interface]
            kind = "veth"
            kernel_addresses = false
            "#,
        )
        .unwrap();
        assert_eq!(c.stack, "lwip");
        assert_eq!(c.command, ["/etc/ncf/./bin/lwip-agent", "--tap"]);
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.env.get("LWIP_DEBUG").map(String::as_str), Some("1"));
        assert_eq!(c.interface, InterfaceKind::Veth);
        assert!(!c.kernel_addresses);
    }

    #[test]
    fn the_example_reads() {
        let c = parse(include_str!("../../examples/external/linux-agent.toml")).unwrap();
        assert_eq!(c.stack, "linux-agent");
        assert_eq!(
            c.command,
            ["/etc/ncf/../../target/release/netconform-agent-linux"]
        );
        assert!(c.kernel_addresses);
    }

    #[test]
    fn defaults_and_path_lookup() {
        let c = parse("[stack]\nname = \"k\"\n[agent]\ncommand = [\"agent\"]\n").unwrap();
        assert_eq!(c.command, ["agent"]);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert!(c.kernel_addresses);
    }

    #[test]
    fn errors_name_the_key() {
        let msg = |t: &str| parse(t).unwrap_err().to_string();
        assert!(msg("[stack]\nname = \"k\"\n").contains("missing field `agent`"));
        assert_eq!(
            msg("[stack]\nname = \"k\"\n[agent]\ncommand = []\n"),
            "/etc/ncf/agent.toml: `agent.command` is empty: give the agent's program and its arguments, e.g. [\"./my-agent\", \"--verbose\"]"
        );
        assert!(
            msg("[stack]\nname = \"k\"\n[agent]\ncommand = [\"a\"]\ntimeot_ms = 3\n")
                .contains("unknown field `timeot_ms`")
        );
        assert!(
            msg("[stack]\nname = \"k\"\n[agent]\ncommand = [\"a\"]\n[interface]\nkind = \"tun\"\n")
                .contains("`interface.kind` is `tun`: the kinds are `veth` and `tap`")
        );
        let tap =
            "[stack]\nname = \"k\"\n[agent]\ncommand = [\"a\"]\n[interface]\nkind = \"tap\"\n";
        assert_eq!(
            msg(tap),
            "/etc/ncf/agent.toml: `interface.kind` is `tap` with `kernel_addresses = true`: a tap is for a user-space stack, which owns its addresses; write `kernel_addresses = false` (or `kind = \"veth\"` for a kernel stack)"
        );
        assert_eq!(
            parse(&format!("{tap}kernel_addresses = false\n"))
                .unwrap()
                .interface,
            InterfaceKind::Tap
        );
        assert!(msg("[stack\n").starts_with("/etc/ncf/agent.toml: "));
        assert!(
            msg("[stack]\nname = \"k\"\nslow = [\"tcp.*.x\"]\n[agent]\ncommand = [\"a\"]\n")
                .contains(
                    "`stack.slow` has \"tcp.*.x\": give check ids, or prefixes ending in `*`"
                )
        );
    }

    /// An external configuration names its declared fixed behaviour ([stack] profile).
    #[test]
    fn an_external_configuration_names_its_profile() {
        let at = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/external/x.toml");
        let config = |profile: &str| {
            ExternalConfig::parse(
                &format!(
                    "[stack]\nname = \"s\"\nprofile = \"{profile}\"\n[agent]\ncommand = [\"a\"]\n"
                ),
                &at,
            )
        };
        let c = config("../../profiles/smoltcp.toml").expect("a valid profile");
        assert_eq!(c.fixed.expect("declared").stack, "smoltcp 0.14.0");
        let e = config("nowhere.toml").expect_err("no such file");
        assert!(e.to_string().contains("stack.profile"), "{e}");
    }
}
