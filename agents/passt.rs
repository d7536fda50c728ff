//! `netconform-agent-passt`: passt (Debian `passt`) behind the agent protocol.
//!
//! The harness starts this agent inside the stack namespace of a veth lab whose stack end
//! holds the stack's address (`NETCONFORM_IPV4`): that interface is passt's *template*
//! (passt needs one with an address and a default route; the agent adds the route). The
//! agent starts `passt -f -1` (in its process group; passt drops root to `nobody`) with its
//! UNIX socket in the directory the harness made (`NETCONFORM_PASST_DIR`), waits until the
//! socket is there and answers `hello`; the harness then connects to the socket and speaks
//! for the guest in qemu's stream framing (harness/sandbox/stream.rs).
//!
//! passt is a translator: towards the guest it answers as the gateway (the stack's
//! address, `-g`), and every guest connection to the gateway becomes a host kernel socket
//! to the loopback of this namespace. So:
//!
//! - a **listen** on the stack's address is a kernel listener on `127.0.0.1:port`;
//! - a **connect** from the stack to the peer is a kernel connect to a port passt forwards
//!   to the guest (`-t`, fixed at its start: [`FORWARDS`]); other ports are unsupported;
//! - socket options are refused (they would set the host socket, not what passt sends),
//!   except `SO_LINGER`, the application's abort, which passt carries as it carries any
//!   host reset;
//! - state queries and controls are refused: passt exposes no table and no setting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "translator.rs"]
mod translator;

use netconform::dut::agent::{AgentEnv, AgentInfo, AgentStack, serve_stdio};
use netconform::dut::linux::KernelStack;
use netconform::dut::{
    CallOutcome, Control, DutError, SocketCall, SocketOption, StateAnswer, StateQuery,
};
use translator::{family_of, loopback};

/// The directory for passt's socket, pid and log, made (writable by `nobody`) and removed
/// by the harness.
const DIR_VAR: &str = "NETCONFORM_PASST_DIR";
/// The passt program (default `passt`, on `PATH`).
const PROGRAM_VAR: &str = "NETCONFORM_PASST";
/// How long passt may take to make its socket.
const READY_WAIT: Duration = Duration::from_secs(5);

/// The guest ports passt forwards from the host's loopback, as (guest port, host port,
/// count): the peer ports of the catalogue's checks that make the stack connect (the
/// timers' 9000, the matrix's 10000 up, the basic checks' 40000), each from a host port
/// 20000 above (below, for 40000), so that the stack's own listeners on those ports stay
/// free.
pub const FORWARDS: &[(u16, u16, u16)] =
    &[(9000, 29000, 1), (10_000, 30_000, 200), (40_000, 20_000, 1)];

struct Passt {
    child: Child,
    dir: PathBuf,
}

impl Passt {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("passt.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        if tail.is_empty() {
            "(nothing)".into()
        } else {
            tail
        }
    }

    /// Why passt can no longer serve, if it cannot: exited, or stopped.
    fn dead(&mut self) -> Option<String> {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            Ok(None) => {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                    .unwrap_or_default();
                let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
                if !matches!(state, Some('T' | 't')) {
                    return None;
                }
                "is stopped".into()
            }
            Err(e) => format!("cannot be waited for: {e}"),
        };
        Some(format!(
            "passt (pid {}) {status}; its log ends: {}",
            self.child.id(),
            self.log_tail()
        ))
    }
}

impl Drop for Passt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct PasstAgent {
    passt: Passt,
    kernel: KernelStack,
    gateway: Ipv4Addr,
    guest: Ipv4Addr,
    gateway6: Option<Ipv6Addr>,
    guest6: Option<Ipv6Addr>,
    version: String,
}

fn not_supported(what: String) -> DutError {
    DutError::NotSupported { what }
}

impl PasstAgent {
    fn host_side(&self, call: &SocketCall, addr: IpAddr) -> Result<IpAddr, DutError> {
        translator::host_side(addr, self.gateway, self.gateway6, || {
            format!(
                "{call}: passt answers as its gateway {} only: a host socket on {addr} cannot be reached from the guest",
                self.gateway
            )
        })
    }

    /// The loopback address passt forwards to `guest:port`.
    fn forwarded(
        &self,
        call: &SocketCall,
        addr: IpAddr,
        port: u16,
    ) -> Result<SocketAddr, DutError> {
        if addr.is_ipv6() {
            // Not a feature passt lacks: a connect to a forwarded port on ::1 is accepted,
            // and no SYN has reached the guest in this set-up yet. Until that is
            // understood the harness says so rather than fail passt.
            return Err(not_supported(format!(
                "{call}: not yet driven: passt accepted the host connection to its IPv6 port forward, but the harness has not got it to open the guest connection (docs/findings-passt.md)"
            )));
        }
        let guest = match addr {
            IpAddr::V4(a) => a == self.guest,
            IpAddr::V6(a) => Some(a) == self.guest6,
        };
        let host = FORWARDS
            .iter()
            .find(|(g, _, n)| port >= *g && port - g < *n)
            .map(|(g, h, _)| h + (port - g));
        match (guest, host) {
            (true, Some(h)) => Ok(SocketAddr::new(loopback(family_of(addr)), h)),
            _ => Err(not_supported(format!(
                "{call}: passt opens connections to the guest only for the ports it forwards from its start (-t), to the guest's address {}: 9000, 10000-10199, 40000",
                self.guest
            ))),
        }
    }

    fn translate(&self, call: &SocketCall) -> Result<SocketCall, DutError> {
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
                let to = self.forwarded(call, addr, port)?;
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
            SocketCall::SendTo { .. } => {
                return Err(not_supported(format!(
                    "{call}: passt forwards no UDP port to the guest in this set-up (-u none)"
                )));
            }
            SocketCall::SetOption {
                option: SocketOption::Linger(_),
                ..
            } => call.clone(),
            SocketCall::SetOption { option, .. } => {
                return Err(not_supported(format!(
                    "{call}: passt has no per-connection options ({option:?} would set the host socket on the loopback, not the segments passt sends to the guest)"
                )));
            }
            other => other,
        })
    }
}

impl AgentStack for PasstAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            stack: "passt".into(),
            version: self.version.clone(),
            environment: vec![
                format!(
                    "passt = guest {}, gateway {} (mapped to the host's loopback), template {}",
                    self.guest,
                    self.gateway,
                    self.kernel.link().name
                ),
                "application = host kernel sockets on the loopback of the stack namespace (listen: 127.0.0.1:port; connect: a port passt forwards, -t)".into(),
            ],
        }
    }

    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        if let Some(dead) = self.passt.dead() {
            return Err(DutError::Gone { what: dead });
        }
        let host_call = match self.translate(call) {
            Ok(c) => c,
            Err(e) => {
                if let SocketCall::Connect { sock, .. } = call {
                    let _ = self.kernel.call(&SocketCall::Close { sock: *sock });
                }
                return Err(e);
            }
        };
        self.kernel.call(&host_call)
    }

    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        Err(not_supported(format!(
            "query {}: passt exposes no table (it keeps no TCP state machine of its own: it mirrors host sockets)",
            netconform::dut::agent::query_name(query)
        )))
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        Err(not_supported(format!(
            "{control}: passt has no such setting (no ARP table, routes or timers to change at run time)"
        )))
    }
}

fn start(env: &AgentEnv) -> Result<PasstAgent, String> {
    let (gateway, prefix) = env.ipv4.ok_or("the passt agent needs NETCONFORM_IPV4")?;
    let guest = env
        .peer_ipv4
        .ok_or("the passt agent needs NETCONFORM_PEER_IPV4")?;
    let dir = PathBuf::from(std::env::var(DIR_VAR).map_err(|_| format!("{DIR_VAR} is not set"))?);
    let mut kernel =
        KernelStack::open_here(&env.namespace, &env.interface).map_err(|e| e.to_string())?;
    // passt's template interface needs a default route: through the peer's address, which
    // nothing answers (the harness never reads this veth).
    kernel
        .control(&Control::Route {
            dst: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            via: guest,
        })
        .map_err(|e| format!("default route on the template interface: {e}"))?;
    // passt, as `nobody`, answers the guest's ICMP echo requests through ping sockets,
    // which a new namespace allows no group to open.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
        .map_err(|e| format!("allow ping sockets (net.ipv4.ping_group_range): {e}"))?;
    let program = std::env::var(PROGRAM_VAR).unwrap_or_else(|_| "passt".into());
    let socket = dir.join("passt.sock");
    let mut cmd = Command::new(&program);
    cmd.args(["-f", "-1", "-q"])
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(dir.join("passt.pid"))
        .arg("-l")
        .arg(dir.join("passt.log"))
        .arg("-i")
        .arg(&env.interface)
        .arg("-m")
        .arg(env.mtu.to_string())
        .arg("-a")
        .arg(guest.to_string())
        .arg("-n")
        .arg(prefix.to_string())
        .arg("-g")
        .arg(gateway.to_string())
        .args(["--no-dhcp", "--no-dhcpv6", "--no-ra"])
        .args(["-u", "none"]);
    match (env.ipv6, env.peer_ipv6) {
        (Some((gateway6, _)), Some(guest6)) => {
            // The template needs an IPv6 default route too.
            kernel
                .control(&Control::AddRoute(netconform::models::route::Route {
                    dst: "::/0".parse().map_err(|e| format!("{e}"))?,
                    kind: netconform::models::route::RouteKind::Unicast {
                        gateway: Some(IpAddr::V6(guest6)),
                        oif: kernel.link().index,
                    },
                    metric: None,
                    prefsrc: None,
                }))
                .map_err(|e| format!("IPv6 default route on the template interface: {e}"))?;
            cmd.arg("-a")
                .arg(guest6.to_string())
                .arg("-g")
                .arg(gateway6.to_string());
        }
        _ => {
            cmd.arg("-4");
        }
    }
    // On every address of both families (one specifier per port: passt refuses the same
    // port twice): the host ports are none a check listens on.
    for (g, h, n) in FORWARDS {
        cmd.arg("-t").arg(if *n == 1 {
            format!("{h}:{g}")
        } else {
            format!("{h}-{}:{g}-{}", h + n - 1, g + n - 1)
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{program} is not installed (apt-get install passt)")
        } else {
            format!("start {program}: {e}")
        }
    })?;
    let mut passt = Passt { child, dir };
    let deadline = Instant::now() + READY_WAIT;
    while !socket.exists() {
        if let Some(dead) = passt.dead() {
            return Err(dead);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "passt made no socket {} within {} s; its log ends: {}",
                socket.display(),
                READY_WAIT.as_secs(),
                passt.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let version = Command::new(&program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "?".into());
    Ok(PasstAgent {
        passt,
        kernel,
        gateway,
        guest,
        gateway6: env.ipv6.map(|(a, _)| a),
        guest6: env.peer_ipv6,
        version,
    })
}

fn main() {
    let env = match AgentEnv::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!(
                "netconform-agent-passt: {e} (the harness sets it; see docs/agent-protocol.md)"
            );
            std::process::exit(2);
        }
    };
    let mut agent = match start(&env) {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("netconform-agent-passt: {e}");
            std::process::exit(1);
        }
    };
    let served = serve_stdio(&mut agent);
    // Ends passt before the process exits (`exit` runs no destructor): passt drops root to
    // `nobody`, which clears the parent-death signal set at its start, so it would outlive
    // this agent.
    drop(agent);
    if let Err(e) = served {
        eprintln!("netconform-agent-passt: {e}");
        std::process::exit(1);
    }
}
