//! `netconform-agent-slirp`: libslirp, as slirp4netns runs it, behind the agent protocol.
//!
//! The harness starts this agent inside the stack namespace of a tap lab
//! (docs/agent-protocol.md, "A user-space stack on a tap"); the agent starts `slirp4netns`
//! on that tap (in the agent's process group, so the harness's kill of the group ends it;
//! and with `--exit-fd`, so it ends when the agent does) and waits until it is ready before
//! answering `hello`. libslirp is a user-mode NAT: the wire the harness speaks on is the
//! *guest* side, where libslirp's own TCP/IP stack answers as the gateway (the stack's
//! address, `network + 2` of `--cidr`), and every connection the guest makes to the gateway
//! is carried on as a host kernel socket to the loopback of this namespace. So:
//!
//! - a **listen** on the stack's address is a kernel listener on `127.0.0.1:port` here: the
//!   peer's SYN to the gateway reaches it through libslirp;
//! - a **connect** from the stack to the peer is a host forward (`add_hostfwd` on the
//!   slirp4netns API socket, from `127.0.0.1:H` to the peer's address and port) and a kernel
//!   connect to `127.0.0.1:H`: libslirp accepts it and opens the guest connection itself;
//! - send, receive, shutdown and close act on those kernel sockets, which libslirp mirrors;
//! - socket options are refused (they would set the host socket on the loopback, not the
//!   guest-side TCP on the wire: libslirp has no per-connection settings), except
//!   `SO_LINGER`: an abort is the application's own, made on the host socket, and libslirp
//!   carries it to the guest as it does any host reset;
//! - state queries and controls are refused: slirp4netns exposes no connection or
//!   neighbour table (libslirp's `slirp_connection_info` is not in its API) and has no
//!   settings to change at run time.
//!
//! If slirp4netns exits or is stopped, every later request is an `error` quoting its
//! status and the last lines it logged (its stderr is this agent's, which the harness
//! quotes too).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "translator.rs"]
mod translator;

use netconform::dut::agent::{AgentEnv, AgentInfo, AgentStack, serve_stdio};
use netconform::dut::linux::KernelSockets;
use netconform::dut::{
    CallOutcome, Control, DutError, Family, SocketCall, SocketId, StateAnswer, StateQuery,
};
use translator::{family_of, loopback};

/// The directory for the API socket, made and removed by the harness.
const DIR_VAR: &str = "NETCONFORM_SLIRP_DIR";
/// The slirp4netns program (default `slirp4netns`, on `PATH`).
const PROGRAM_VAR: &str = "NETCONFORM_SLIRP4NETNS";
/// How long slirp4netns may take to open the tap and say it is ready.
const READY_WAIT: Duration = Duration::from_secs(5);
/// How long one API request may take.
const API_WAIT: Duration = Duration::from_secs(2);
/// Lines of slirp4netns's log kept for error messages.
const LOG_LINES: usize = 8;
/// slirp4netns's pid, in the harness's directory (harness/dut/slirp.rs reads it).
const PID_FILE: &str = "slirp4netns.pid";
/// slirp4netns's log, in the harness's directory.
const LOG_FILE: &str = "slirp4netns.log";

/// slirp4netns, running.
struct Slirp {
    child: Child,
    api: PathBuf,
    log: Arc<Mutex<VecDeque<String>>>,
    version: String,
    /// The write end of the `--exit-fd` pipe: slirp4netns exits when it closes.
    _exit: OwnedFd,
}

impl Slirp {
    /// Why slirp4netns can no longer serve, if it cannot: exited, or stopped.
    fn dead(&mut self) -> Option<String> {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status})")),
            Ok(None) => {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                    .unwrap_or_default();
                // The state is the first field after the command name in parentheses.
                let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
                matches!(state, Some('T' | 't'))
                    .then(|| format!("is stopped (process state {})", state.unwrap_or('?')))
            }
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }?;
        Some(format!(
            "slirp4netns (pid {}) {status}; its log ends: {}",
            self.child.id(),
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.is_empty() {
            "(nothing)".into()
        } else {
            log.iter().cloned().collect::<Vec<_>>().join(" | ")
        }
    }

    /// One request on the API socket; its `return` value, or an error with the reason.
    fn api(&mut self, request: serde_json::Value) -> Result<serde_json::Value, DutError> {
        let what = format!("slirp4netns API {request}");
        let io = |op: &str, source: std::io::Error| DutError::Io {
            op: format!("{what}: {op}"),
            source,
        };
        let mut stream = UnixStream::connect(&self.api).map_err(|e| io("connect", e))?;
        stream
            .set_read_timeout(Some(API_WAIT))
            .map_err(|e| io("set timeout", e))?;
        stream
            .write_all(request.to_string().as_bytes())
            .map_err(|e| io("write", e))?;
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .map_err(|e| io("read", e))?;
        let answer: serde_json::Value =
            serde_json::from_str(text.trim()).map_err(|e| DutError::Malformed {
                detail: format!("{what}: answered `{}`, not JSON ({e})", text.trim()),
            })?;
        if let Some(error) = answer.get("error") {
            return Err(DutError::Io {
                op: what,
                source: std::io::Error::other(error.to_string()),
            });
        }
        answer.get("return").cloned().ok_or(DutError::Malformed {
            detail: format!("{what}: answered `{}`, without `return`", text.trim()),
        })
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection the stack opens: its host forward.
struct Forward {
    id: u64,
}

/// The agent: slirp4netns and the host-side kernel sockets.
struct SlirpAgent {
    slirp: Slirp,
    kernel: KernelSockets,
    gateway: Ipv4Addr,
    guest: Option<Ipv4Addr>,
    gateway6: Option<Ipv6Addr>,
    guest6: Option<Ipv6Addr>,
    cidr: String,
    forwards: HashMap<SocketId, Forward>,
}

/// A port nobody on the loopback uses now, for a host forward.
fn free_port(family: Family) -> Result<u16, DutError> {
    let listener = std::net::TcpListener::bind(SocketAddr::new(loopback(family), 0))
        .and_then(|l| l.local_addr())
        .map_err(|source| DutError::Io {
            op: "pick a free loopback port for a host forward".into(),
            source,
        })?;
    Ok(listener.port())
}

impl SlirpAgent {
    fn not_supported(what: String) -> DutError {
        DutError::NotSupported { what }
    }

    /// The host-side address for the stack's address `addr` (the gateway, or any).
    fn host_side(&self, call: &SocketCall, addr: IpAddr) -> Result<IpAddr, DutError> {
        translator::host_side(addr, self.gateway, self.gateway6, || {
            format!(
                "{call}: libslirp owns no address but its gateway {} (and {}): a host socket on {addr} cannot be reached from the guest",
                self.gateway,
                self.gateway6
                    .map_or("no IPv6".to_string(), |g| g.to_string())
            )
        })
    }

    /// A host forward from a free loopback port to `guest:port`; the loopback address to
    /// connect to.
    fn forward(
        &mut self,
        call: &SocketCall,
        sock: SocketId,
        proto: &str,
        addr: IpAddr,
        port: u16,
    ) -> Result<SocketAddr, DutError> {
        let guest_ok = match addr {
            IpAddr::V4(a) => Some(a) == self.guest,
            IpAddr::V6(a) => Some(a) == self.guest6,
        };
        if !guest_ok {
            return Err(Self::not_supported(format!(
                "{call}: libslirp opens connections to the guest only through a host forward, which names the guest's address ({}); {addr} is not it",
                self.guest.map_or("none".to_string(), |g| g.to_string())
            )));
        }
        if addr.is_ipv6() {
            return Err(Self::not_supported(format!(
                "{call}: slirp4netns's API forwards IPv4 only (add_hostfwd takes IPv4 addresses), so libslirp cannot be made to open an IPv6 connection"
            )));
        }
        let family = family_of(addr);
        let host_port = free_port(family)?;
        let host = loopback(family);
        let answer = self.slirp.api(serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": proto,
                "host_addr": host.to_string(),
                "host_port": host_port,
                "guest_addr": addr.to_string(),
                "guest_port": port,
            }
        }))?;
        let id = answer
            .get("id")
            .and_then(|v| v.as_u64())
            .ok_or(DutError::Malformed {
                detail: format!("slirp4netns add_hostfwd answered {answer} without an id"),
            })?;
        if let Some(old) = self.forwards.insert(sock, Forward { id }) {
            self.unforward(old);
        }
        Ok(SocketAddr::new(host, host_port))
    }

    fn unforward(&mut self, forward: Forward) {
        if let Err(e) = self.slirp.api(serde_json::json!({
            "execute": "remove_hostfwd",
            "arguments": { "id": forward.id }
        })) {
            eprintln!("netconform-agent-slirp: {e}");
        }
    }

    fn translate(&mut self, call: &SocketCall) -> Result<SocketCall, DutError> {
        Ok(match call.clone() {
            SocketCall::Bind { sock, addr, port } => SocketCall::Bind {
                sock,
                addr: self.host_side(call, addr)?,
                port,
            },
            SocketCall::Listen {
                sock,
                family,
                addr,
                port,
                backlog,
            } => {
                if let Some(a) = addr {
                    self.host_side(call, a)?;
                }
                SocketCall::Listen {
                    sock,
                    family,
                    addr: Some(loopback(family)),
                    port,
                    backlog,
                }
            }
            SocketCall::Connect {
                sock,
                family,
                addr,
                port,
            } => {
                let to = self.forward(call, sock, "tcp", addr, port)?;
                SocketCall::Connect {
                    sock,
                    family,
                    addr: to.ip(),
                    port: to.port(),
                }
            }
            SocketCall::UdpBind { sock, addr, port } => SocketCall::UdpBind {
                sock,
                addr: self.host_side(call, addr)?,
                port,
            },
            SocketCall::SendTo {
                sock,
                addr,
                port,
                data,
            } => {
                let to = self.forward(call, sock, "udp", addr, port)?;
                SocketCall::SendTo {
                    sock,
                    addr: to.ip(),
                    port: to.port(),
                    data,
                }
            }
            // An abort (close with SO_LINGER 0) is the application's: made on the host
            // socket, it is libslirp's to carry to the guest, as it would any host reset.
            SocketCall::SetOption {
                option: netconform::dut::SocketOption::Linger(_),
                ..
            } => call.clone(),
            SocketCall::SetOption { option, .. } => {
                return Err(Self::not_supported(format!(
                    "{call}: libslirp's TCP has no per-connection options ({option:?} would set the host socket on the loopback, not the segments libslirp sends on the wire)"
                )));
            }
            other => other,
        })
    }
}

impl AgentStack for SlirpAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            stack: "slirp".into(),
            version: self.slirp.version.clone(),
            environment: vec![
                format!(
                    "slirp4netns = --cidr {} (gateway {}, DNS forwarder at .3), API socket {}",
                    self.cidr,
                    self.gateway,
                    self.slirp.api.display()
                ),
                "application = host kernel sockets on the loopback of the stack namespace (listen: 127.0.0.1:port; connect: a host forward)".into(),
            ],
        }
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        let why = match query {
            StateQuery::TcpSockets | StateQuery::TcpInfo(_) => {
                "slirp4netns exposes no connection table (libslirp's slirp_connection_info is not in its API)"
            }
            StateQuery::Neighbours
            | StateQuery::NeighbourParams
            | StateQuery::NeighbourTableInfo => {
                "slirp4netns exposes no way to read libslirp's ARP and NDP tables (slirp_neighbor_info is not in its API)"
            }
            StateQuery::Routes | StateQuery::RouteGet(_) | StateQuery::RouteGetFrom { .. } => {
                "libslirp has no route table: it is one gateway on one link, and forwards everything else through the host"
            }
            _ => "libslirp is a host stack behind a NAT: it has no such table",
        };
        Err(Self::not_supported(format!(
            "query {}: {why}",
            netconform::dut::agent::query_name(query)
        )))
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        let why = match control {
            Control::NeighbourParams(_) | Control::ArpPolicy(_) | Control::FlushNeighbours => {
                "slirp4netns exposes no setting of libslirp's ARP and NDP tables (no timers, policy or flush to change)"
            }
            Control::Forwarding(_) | Control::Route { .. } | Control::AddRoute(_) => {
                "libslirp has no route table or forwarding switch: it forwards through host sockets"
            }
            _ => "libslirp has no such setting",
        };
        Err(Self::not_supported(format!("{control}: {why}")))
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        if let Some(dead) = self.slirp.dead() {
            return Err(DutError::Gone { what: dead });
        }
        let host_call = match self.translate(call) {
            Ok(c) => c,
            Err(e) => {
                // A refused call leaves no socket behind: the id is free for the next try.
                if let SocketCall::Connect { sock, .. } = call {
                    let _ = self.kernel.call(SocketCall::Close { sock: *sock });
                }
                return Err(e);
            }
        };
        let outcome = self.kernel.call(host_call)?;
        if let SocketCall::Close { sock } = call
            && let Some(f) = self.forwards.remove(sock)
        {
            self.unforward(f);
        }
        Ok(outcome)
    }
}

/// A pipe whose ends are inherited by a child (no close-on-exec on `child_end`).
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))
}

fn clear_cloexec(fd: &OwnedFd) -> Result<(), String> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
        .map(drop)
        .map_err(|e| format!("fcntl: {e}"))
}

fn start(env: &AgentEnv) -> Result<SlirpAgent, String> {
    let (gateway, prefix) = env
        .ipv4
        .ok_or("the slirp agent needs NETCONFORM_IPV4 (the gateway's address)")?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(gateway) & mask);
    if u32::from(gateway) != u32::from(network) + 2 {
        return Err(format!(
            "libslirp's gateway is the second address of its network: {gateway}/{prefix} is not {network} + 2"
        ));
    }
    let cidr = format!("{network}/{prefix}");
    let dir = PathBuf::from(std::env::var(DIR_VAR).map_err(|_| format!("{DIR_VAR} is not set"))?);
    let api = dir.join("api.sock");
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    clear_cloexec(&ready_w)?;
    clear_cloexec(&exit_r)?;
    let program = std::env::var(PROGRAM_VAR).unwrap_or_else(|_| "slirp4netns".into());
    let mut cmd = Command::new(&program);
    cmd.arg("--mtu")
        .arg(env.mtu.to_string())
        .arg("--cidr")
        .arg(&cidr)
        .arg("--api-socket")
        .arg(&api)
        .arg("--ready-fd")
        .arg(ready_w.as_raw_fd().to_string())
        .arg("--exit-fd")
        .arg(exit_r.as_raw_fd().to_string());
    if env.ipv6.is_some() {
        cmd.arg("--enable-ipv6");
        // The lab turned IPv6 off in this namespace (the kernel owns no address on the
        // tap); libslirp carries the guest's IPv6 connections to the host's ::1.
        std::fs::write("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "0")
            .map_err(|e| format!("turn IPv6 on for lo (libslirp's host side of IPv6): {e}"))?;
    }
    // The namespace is this process's own: slirp4netns joins it to open the tap there.
    cmd.arg(std::process::id().to_string())
        .arg(&env.interface)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{program} is not installed (apt-get install slirp4netns)")
        } else {
            format!("start {program}: {e}")
        }
    })?;
    drop(ready_w);
    drop(exit_r);
    // The harness watches slirp4netns itself (a crash or a stop is an error, not a silent
    // stack): its pid, and its log as it goes.
    std::fs::write(dir.join(PID_FILE), child.id().to_string())
        .map_err(|e| format!("write {}: {e}", dir.join(PID_FILE).display()))?;
    let mut log_file = std::fs::File::create(dir.join(LOG_FILE))
        .map_err(|e| format!("create {}: {e}", dir.join(LOG_FILE).display()))?;
    let log = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Passed on: the harness quotes the agent's stderr when the agent dies.
                eprintln!("slirp4netns: {line}");
                let _ = writeln!(log_file, "{line}");
                let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                l.push_back(line);
                while l.len() > LOG_LINES {
                    l.pop_front();
                }
            }
        });
    }
    let mut slirp = Slirp {
        child,
        api,
        log,
        version: slirp_version(&program),
        _exit: exit_w,
    };
    wait_ready(&mut slirp, ready_r)?;
    let kernel = KernelSockets::open_here(&env.namespace).map_err(|e| e.to_string())?;
    Ok(SlirpAgent {
        slirp,
        kernel,
        gateway,
        guest: env.peer_ipv4,
        gateway6: env.ipv6.map(|(a, _)| a),
        guest6: env.peer_ipv6,
        cidr,
        forwards: HashMap::new(),
    })
}

/// Waits until slirp4netns writes to its ready pipe (it has opened the tap).
fn wait_ready(slirp: &mut Slirp, ready: OwnedFd) -> Result<(), String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + READY_WAIT;
    let mut file = std::fs::File::from(ready);
    loop {
        if let Some(dead) = slirp.dead() {
            return Err(dead);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "slirp4netns did not say it was ready within {} s; its log ends: {}",
                READY_WAIT.as_secs(),
                slirp.log_tail()
            ));
        }
        let step = PollTimeout::from(left.min(Duration::from_millis(50)).as_millis() as u16);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, step).map_err(|e| format!("poll: {e}"))? > 0 {
            let mut byte = [0u8; 1];
            return match file.read(&mut byte) {
                Ok(1) => Ok(()),
                _ => {
                    std::thread::sleep(Duration::from_millis(50));
                    Err(slirp.dead().unwrap_or_else(|| {
                        format!(
                            "slirp4netns closed its ready pipe without a word; its log ends: {}",
                            slirp.log_tail()
                        )
                    }))
                }
            };
        }
    }
}

/// `slirp4netns 1.2.0, libslirp 4.7.0`, from `slirp4netns --version`.
fn slirp_version(program: &str) -> String {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "slirp4netns {}, libslirp {}",
        field("slirp4netns version"),
        field("libslirp:")
    )
}

fn main() {
    let env = match AgentEnv::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!(
                "netconform-agent-slirp: {e} (the harness sets it; see docs/agent-protocol.md)"
            );
            std::process::exit(2);
        }
    };
    let mut agent = match start(&env) {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("netconform-agent-slirp: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = serve_stdio(&mut agent) {
        eprintln!("netconform-agent-slirp: {e}");
        std::process::exit(1);
    }
}
