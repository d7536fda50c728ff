//! libslirp (as slirp4netns runs it): `--target slirp`.
//!
//! libslirp is a user-mode NAT: towards its *guest* it is a TCP/IP stack that answers as
//! the gateway (ARP, ICMP echo, TCP and UDP to the gateway's address), and it carries every
//! guest connection on as a host kernel socket. netconform speaks for the guest on the wire
//! and plays the host's application with kernel sockets; the gateway is the stack under
//! test.
//!
//! ```text
//!  harness namespace            stack namespace
//!  [ ncf<k>h ] ---- veth ---- [ ncf<k>t ] -- ncf<j>br -- [ ncf<j>tap ] <=> slirp4netns
//!    the guest 10.77.0.1                                          gateway 10.77.0.2
//!                                                                 |  host sockets on lo
//!                                              netconform-agent-slirp (127.0.0.1:port)
//! ```
//!
//! [`SlirpHost`] is an [`ExternalStack`] with `kind = "tap"` whose agent is
//! `netconform-agent-slirp` (agents/slirp.rs): the agent starts slirp4netns on the tap
//! with `--cidr 10.77.0.0/24`, so that libslirp's gateway is the lab's stack address
//! (`.2`) and the guest the peer (`.1`), and maps the checks' socket calls onto host
//! sockets (listen: a loopback listener; connect: a host forward through the slirp4netns
//! API socket, whose directory this target makes and removes, [`SocketDir`]). The stack's
//! MAC is libslirp's, `52:55` and the gateway's IPv4 address ([`slirp_mac`]), not the tap
//! lab's. A check that wants the peer pre-resolved gets one ARP request from the peer
//! before it starts (libslirp learns its guests from ARP; it has no table to fill).
//!
//! What the agent cannot do is unsupported with the reason: socket options (they would set
//! the host socket, not libslirp's TCP), every state query and control (slirp4netns exposes
//! no connection or neighbour table, and no settings).
//!
//! Where an ARP check would pin a setting, libslirp's fixed behaviour stands in
//! ([`profile`], `profiles/slirp.toml`): its table of 16 entries that are never flushed,
//! replaced round robin, one request per waiting packet, the packet queued for 1 s. The
//! checks run the model on that declaration and read the cache on the wire (pings to the
//! gateway from the peers, from a MAC that is no peer's); the declaration's departure from
//! RFC 1122 §2.3.2.1 (no flush) fails the checks that enforce it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dut::external::{ExternalConfig, ExternalStack, InterfaceKind};
use crate::dut::fixed::FixedBehaviour;
use crate::dut::needs::Needs;
use crate::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, Link, SocketCall, Sockets, StateAnswer,
    StateQuery, Tables, TcpStackConfig,
};
use crate::sandbox::{MacAddr, SocketDir};
use crate::wire::{Frame, Icmpv6Message, Network, Transport};

/// The agent's program name (built with netconform: `cargo build --bin netconform-agent-slirp`).
pub const AGENT: &str = "netconform-agent-slirp";

/// The MAC libslirp answers from for one of its addresses: `52:55` then the IPv4 address
/// (libslirp's `special_ethaddr` with the address copied in).
pub fn slirp_mac(addr: std::net::Ipv4Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x52, 0x55, o[0], o[1], o[2], o[3]])
}

/// Where a built-in target's agent program is: next to the running executable (for a test
/// binary in `target/<profile>/deps`, one directory up).
pub fn agent_beside_executable(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().unwrap_or(Path::new("."));
    let here = dir.join(name);
    if !here.exists()
        && dir.file_name().is_some_and(|d| d == "deps")
        && let Some(up) = dir.parent()
    {
        return up.join(name);
    }
    here
}

/// Whether `program` is an executable on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// libslirp's IPv6 gateway as slirp4netns configures it (no option changes it).
pub const SLIRP_GATEWAY6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
/// The IPv6 address the peer (libslirp's guest) takes in libslirp's prefix.
pub const SLIRP_GUEST6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

/// How to build the slirp target: the agent program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlirpConfig {
    /// The agent (`netconform-agent-slirp`).
    pub agent: PathBuf,
    /// The slirp4netns program the agent runs (`slirp4netns`, looked up on `PATH`).
    pub program: String,
    /// Per-request timeout of the agent.
    pub timeout: Duration,
    /// Its declared fixed behaviour; `None`: [`profile`] (`profiles/slirp.toml`).
    pub fixed: Option<Arc<FixedBehaviour>>,
}

/// The slirp target as `--target slirp` builds it: its declaration read now ([`profile`]),
/// so that a broken `profiles/slirp.toml` is reported before anything runs.
pub fn config() -> Result<SlirpConfig, String> {
    let fixed = profile().map_err(|e| e.to_string())?;
    Ok(SlirpConfig {
        fixed: Some(fixed),
        ..SlirpConfig::default()
    })
}

/// libslirp's declared fixed behaviour: `profiles/slirp.toml` in the working directory when
/// it exists (a reviewer's edit applies at once), else the copy built into netconform
/// ([`crate::dut::fixed::SLIRP_PROFILE`]). A broken file is an error, never silently
/// replaced.
pub fn profile() -> Result<Arc<FixedBehaviour>, crate::dut::fixed::FixedError> {
    crate::dut::fixed::builtin_profile("slirp", crate::dut::fixed::SLIRP_PROFILE)
}

impl Default for SlirpConfig {
    fn default() -> Self {
        SlirpConfig {
            agent: agent_beside_executable(AGENT),
            program: "slirp4netns".into(),
            timeout: Duration::from_secs(5),
            fixed: None,
        }
    }
}

/// libslirp behind slirp4netns, with its agent (see the module doc).
#[derive(Debug)]
pub struct SlirpHost {
    // Field order is drop order: the stack (agent, slirp4netns, lab) before its socket dir.
    inner: ExternalStack,
    endpoints: Endpoints,
    dir: SocketDir,
}

impl SlirpHost {
    /// Builds the lab the check `needs`, starts the agent (which starts slirp4netns) and,
    /// when the check wants it, lets libslirp learn the peer's MAC.
    pub fn new(config: &SlirpConfig, needs: &Needs) -> Result<SlirpHost, DutError> {
        if !on_path(&config.program) {
            return Err(DutError::Io {
                op: "start the slirp target".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} is not on PATH: install it (apt-get install slirp4netns)",
                        config.program
                    ),
                ),
            });
        }
        if !config.agent.exists() {
            return Err(DutError::Io {
                op: "start the slirp target".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "its agent {} is missing (cargo build --bin {AGENT})",
                        config.agent.display()
                    ),
                ),
            });
        }
        let fixed = match &config.fixed {
            Some(f) => f.clone(),
            None => profile().map_err(|e| DutError::Io {
                op: "read the slirp target's declared behaviour".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            })?,
        };
        let dir = SocketDir::create("slirp", 0o700)?;
        let mut env: std::collections::BTreeMap<String, String> = [
            (
                "NETCONFORM_SLIRP_DIR".to_string(),
                dir.path().display().to_string(),
            ),
            ("NETCONFORM_SLIRP4NETNS".to_string(), config.program.clone()),
        ]
        .into();
        if needs.ipv6 {
            // slirp4netns 1.2 has no option for libslirp's IPv6 prefix: the gateway is
            // fd00::2 in fd00::/64, and the guest (the peer) takes fd00::1. These override
            // the lab's plan in the agent's environment (they come after it).
            env.insert("NETCONFORM_IPV6".into(), format!("{SLIRP_GATEWAY6}/64"));
            env.insert("NETCONFORM_PEER_IPV6".into(), SLIRP_GUEST6.to_string());
        }
        let external = ExternalConfig {
            path: PathBuf::from("(built-in slirp target)"),
            stack: "slirp".into(),
            command: vec![config.agent.display().to_string()],
            env,
            timeout: config.timeout,
            interface: InterfaceKind::Tap,
            kernel_addresses: false,
            // Its answers that follow the host side are waited for by the TCP checks
            // (`Sockets::answers_wait_for_host`), not by every barrier.
            answer_lag: Duration::ZERO,
            // No check of the catalogue waits out one of its long timers.
            slow: Vec::new(),
            jobs: None,
            // What it does where the ARP checks would pin a setting (profiles/slirp.toml):
            // they run against it, the cache read on the wire.
            fixed: Some(fixed),
        };
        let inner = ExternalStack::new(&external, needs)?;
        let mut endpoints = inner.endpoints().clone();
        if let Some((gateway, _)) = endpoints.stack_ipv4 {
            endpoints.stack_mac = slirp_mac(gateway);
        }
        if needs.ipv6 {
            // libslirp sends IPv6 from `52:56` and the last four bytes of the address
            // (`in6_compute_ethaddr`); a check that uses IPv6 speaks IPv6 only.
            endpoints.stack_ipv6 = Some((SLIRP_GATEWAY6, 64));
            endpoints.peer_ipv6 = Some(SLIRP_GUEST6);
            let o = SLIRP_GATEWAY6.octets();
            endpoints.stack_mac = MacAddr([0x52, 0x56, o[12], o[13], o[14], o[15]]);
        }
        let mut host = SlirpHost {
            inner,
            endpoints,
            dir,
        };
        if needs.peer_preresolved {
            host.introduce_peer(needs.ipv6)?;
        }
        Ok(host)
    }

    /// Why slirp4netns cannot answer, when it cannot: it exited (or was killed), or it is
    /// stopped; with the last lines it logged. The agent writes its pid and log into this
    /// target's socket directory.
    pub fn slirp_trouble(&self) -> Option<String> {
        let dir = self.dir.path();
        let pid = self.slirp_pid()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        let what = match state {
            None | Some('Z' | 'X') => "is gone",
            Some('T' | 't') => "is stopped",
            _ => return None,
        };
        let log = std::fs::read_to_string(dir.join("slirp4netns.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        Some(format!(
            "slirp4netns (pid {pid}) {what}; its log ends: {}",
            if tail.is_empty() { "(nothing)" } else { &tail }
        ))
    }

    /// slirp4netns's process id (the agent's child), once the agent has started it.
    pub fn slirp_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("slirp4netns.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The socket directory (the API socket, slirp4netns's pid and log).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The target underneath (the agent, the lab).
    pub fn external(&self) -> &ExternalStack {
        &self.inner
    }

    /// One ARP request (or, for a check over IPv6, one neighbour solicitation) from the
    /// peer for the gateway, and its answer: libslirp learns the peer's MAC from it (as it
    /// learns every guest's; it has no table the harness could fill).
    fn introduce_peer(&mut self, ipv6: bool) -> Result<(), DutError> {
        let e = self.endpoints.clone();
        let (request, what) = match (ipv6, e.stack_ipv6, e.peer_ipv6, e.stack_ipv4, e.peer_ipv4) {
            (true, Some((gateway, _)), Some(peer), _, _) => {
                let o = gateway.octets();
                let group = std::net::Ipv6Addr::new(
                    0xff02,
                    0,
                    0,
                    0,
                    0,
                    1,
                    0xff00 | u16::from(o[13]),
                    u16::from_be_bytes([o[14], o[15]]),
                );
                let g = group.octets();
                let frame = Frame::icmpv6(
                    e.harness_mac,
                    MacAddr([0x33, 0x33, g[12], g[13], g[14], g[15]]),
                    peer,
                    group,
                    Icmpv6Message::neighbor_solicitation(gateway, Some(e.harness_mac)),
                );
                (
                    frame,
                    format!("neighbour solicitation for its gateway {gateway}"),
                )
            }
            (false, _, _, Some((gateway, _)), Some(peer)) => (
                Frame::arp_request(e.harness_mac, peer, gateway),
                format!("ARP request for its gateway {gateway}"),
            ),
            _ => return Ok(()),
        };
        self.inner.send_frame(&request.emit())?;
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(bytes) = self.inner.recv_frame(deadline)? {
            let answered = match Frame::parse(&bytes).map(|f| f.network) {
                Ok(Network::Arp(arp)) => Some(arp.target_ip) == e.peer_ipv4,
                Ok(Network::Ipv6(p)) => {
                    matches!(&p.transport, Transport::Icmpv6(m) if m.icmp_type == 136)
                }
                _ => false,
            };
            if answered {
                return Ok(());
            }
        }
        Err(DutError::Timeout {
            what: format!("libslirp did not answer the peer's {what} within 1 s"),
        })
    }
}

impl Dut for SlirpHost {
    fn name(&self) -> &str {
        "slirp"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!(
                "stack MAC = {} (libslirp's, for its gateway address)",
                self.endpoints.stack_mac
            ),
            format!("TCP states = not read: {NO_CONNECTION_TABLE}; the TCP checks compare the wire alone"),
            "TCP extensions = none (no SACK, window scaling or timestamps: libslirp sends and reads the MSS option only)".into(),
        ];
        env.extend(self.inner.environment());
        env
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }

    fn fixed_behaviour(&self) -> Option<Arc<FixedBehaviour>> {
        self.inner.fixed_behaviour()
    }

    fn sockets(&mut self) -> Option<&mut dyn Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for SlirpHost {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.inner.send_frame(frame)
    }

    /// A silence is checked: when slirp4netns is gone or stopped, it is that error (the
    /// check is an ERROR naming it), not a stack that said nothing.
    fn recv_frame(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, DutError> {
        match self.inner.recv_frame(deadline)? {
            Some(frame) => Ok(Some(frame)),
            None => match self.slirp_trouble() {
                Some(what) => Err(DutError::Gone { what }),
                None => Ok(None),
            },
        }
    }
}

impl Sockets for SlirpHost {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.inner.call(call)
    }

    fn udp(&self) -> bool {
        Sockets::udp(&self.inner)
    }

    /// libslirp's TCP (4.4BSD's, as qemu kept it) sends and honours the MSS option only.
    fn tcp_config(&self) -> TcpStackConfig {
        LIBSLIRP_TCP
    }

    /// libslirp answers a guest's SYN only once its connect to the host has completed or
    /// failed (`tcp_fconnect`, then `tcp_input` again from its poll loop): the SYN-ACK (or
    /// the RST) comes after the barrier's echo reply, some 100–250 ms later.
    fn answers_wait_for_host(&self) -> bool {
        true
    }
}

/// How libslirp sends TCP: no optional extension (the MSS option only), TTL 64
/// (`IPDEFTTL`).
pub const LIBSLIRP_TCP: TcpStackConfig = TcpStackConfig {
    sack: false,
    window_scaling: false,
    timestamps: false,
    ttl: 64,
};

/// Why the slirp target shows no TCP states.
pub const NO_CONNECTION_TABLE: &str =
    "slirp4netns exposes no connection table (libslirp's slirp_connection_info is not in its API)";

impl Tables for SlirpHost {
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
    use crate::dut::fixed::{SLIRP_PROFILE, Validation, WaitingPolicy};

    #[test]
    fn the_shipped_profile_declares_what_the_arp_checks_need_each_value_with_its_source() {
        let p = FixedBehaviour::parse(SLIRP_PROFILE, "profiles/slirp.toml").expect("valid");
        assert_eq!(p.stack, "libslirp 4.7.0");
        let arp = p.arp.as_ref().expect("[arp]");
        let cache = arp.cache.as_ref().expect("[arp.cache]");
        assert_eq!(cache.validation, Validation::Never);
        assert_eq!(cache.table_size, Some(16));
        assert_eq!(p.request_target_mac(), Some(MacAddr::ZERO));
        let waiting = arp.waiting_packet.as_ref().expect("[arp.waiting_packet]");
        assert_eq!(waiting.policy, WaitingPolicy::Queue);
        assert!(!p.ip.as_ref().expect("[ip]").forwarding);
        for source in [
            &arp.policy.as_ref().expect("policy").source,
            &cache.source,
            &arp.requests.as_ref().expect("requests").source,
            &waiting.source,
        ] {
            assert!(source.contains(".c:") || source.contains(".h:"), "{source}");
        }
    }

    #[test]
    fn a_never_flushing_cache_with_a_lifetime_or_a_half_declared_table_is_refused() {
        let base = SLIRP_PROFILE.replace(
            "validation = \"never\"",
            "validation = \"never\"\nlifetime_ms = 5",
        );
        let e = FixedBehaviour::parse(&base, "p.toml").expect_err("lifetime with never");
        assert!(e.to_string().contains("lifetime_ms"), "{e}");
        let half = SLIRP_PROFILE.replace("replacement = \"round-robin\"\n", "");
        let e = FixedBehaviour::parse(&half, "p.toml").expect_err("size without replacement");
        assert!(e.to_string().contains("table_size"), "{e}");
    }
}
