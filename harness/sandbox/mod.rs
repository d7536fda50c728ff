//! The sandbox: network namespaces, veth pairs, sysctls and raw frames, created from Rust.
//!
//! This module and [`crate::dut`] are the only code that touches the operating system.
//! Everything here is synchronous and runs on plain `std::thread`s: `setns` changes only the
//! calling thread, and sockets remember the namespace they were created in, so namespace work
//! never happens inside async tasks.
//!
//! - [`Namespace`]: one network namespace, named `ncf-<pid>-<n>-<role>`, bind-mounted on
//!   `/run/netns/<name>` (so `ip netns exec` works for debugging) and removed on drop; a
//!   long-lived worker thread inside it runs closures ([`Namespace::run`]).
//! - [`Rtnl`]: a synchronous rtnetlink client bound to one namespace (links, veth pairs,
//!   addresses, routes, `route get`, neighbours).
//! - [`ethtool`]: offloads (TSO, GSO, GRO, TX checksum) switched off and read back.
//! - [`sysctl`]: per-namespace sysctls, each set recorded (name, old, new).
//! - [`Lab`]: the common topology, a harness namespace and a target namespace joined by one
//!   veth pair; the harness end has no IP address.
//! - [`TapBridge`] ([`Lab::add_tap_bridge`]): a persistent TAP device in the target
//!   namespace, bridged to the target veth end, for a user-space stack on `/dev/net/tun`.
//! - [`PacketSocket`]: the wire plane, an AF_PACKET socket on the harness end.
//! - [`BridgeLab`]: the switch topology, a Linux bridge with N ports in a namespace of its
//!   own, each port a veth pair to the harness namespace; the forwarding database read and
//!   flushed over netlink.
//! - [`RouterLab`]: a router namespace with N segments (veth pairs to the harness
//!   namespace), IPv4 and optionally IPv6, forwarding on; typed routes installed, flushed
//!   and looked up (pipelined) over netlink for the route model.
//! - [`nat`]: an nftables masquerade ruleset in a router lab's namespace, and its
//!   connection tracking table read ([`ConntrackEntry`]) and flushed, all from inside it
//!   over nfnetlink (`nfnetlink.rs`: the harness's own client, no `nft` or `conntrack`).
//! - [`clean`]: removes namespaces that killed runs left behind.
//!
//! Nothing here ever touches the host namespace's interfaces, routes or addresses: veth pairs
//! are created from inside a harness namespace with the peer placed directly in the target
//! namespace. The only host-visible artefacts are the files under `/run/netns` (the
//! directory is created if missing, as `ip netns add` does), removed on drop or by [`clean`].

mod bridge;
pub mod ethtool;
mod lab;
pub mod nat;
mod neightbl;
mod netlink;
mod netns;
mod nfnetlink;
mod packet;
mod pair;
mod router;
mod routes;
pub mod sockdir;
pub mod stream;
pub mod sysctl;
mod tap;

use std::net::IpAddr;
use std::path::PathBuf;

pub use bridge::{
    BridgeConfig, BridgeFdbEntry, BridgeLab, BridgePort, BridgeSettings, MAX_BRIDGE_PORTS,
};
pub use lab::{Lab, LabConfig, V4Config, V6Config};
pub use nat::{ConntrackEntry, ConntrackTuple};
pub use neightbl::{NeighbourParams, NeighbourParamsUpdate, NeighbourTableInfo};
pub use netlink::{
    AddressInfo, LinkInfo, MacAddr, NeighbourCacheInfo, NeighbourEntry, NudState, Readiness,
    RouteEntry, RouteFailure, RouteLookup, Rtnl,
};
pub use netns::{Namespace, clean, clean_all, clean_pid, netns_dir};
pub use packet::PacketSocket;
pub use pair::{HostPair, PAIR_CLIENT, PAIR_SERVER, Sniffer};
pub use router::{MAX_SEGMENTS, RouterConfig, RouterLab, Segment, router_v4, router_v6};
pub use routes::{PIPELINE_WINDOW, route_error};
pub use sockdir::SocketDir;
pub use stream::StreamLink;
pub use tap::TapBridge;

/// Prefix of every namespace the harness creates (`ncf-<pid>-<n>-<role>`).
pub const NETNS_PREFIX: &str = "ncf-";

/// Prefix of every interface the harness creates (`ncf<n>h`, `ncf<n>t`).
pub const IFNAME_PREFIX: &str = "ncf";

/// What the harness needs, and how to get it; the text of [`SandboxError::Privileges`].
pub const PRIVILEGES_MESSAGE: &str = "netconform needs CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces: run as root, or under `unshare -rn`";

/// Errors of the sandbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The process lacks the capabilities to create namespaces.
    #[error("{PRIVILEGES_MESSAGE} (missing: {missing})")]
    Privileges {
        /// The capabilities that are missing.
        missing: String,
    },
    /// A namespace operation (unshare, setns, bind mount, umount) failed.
    #[error("namespace {namespace}: {op}: {source}")]
    Namespace {
        /// The namespace name.
        namespace: String,
        /// What was attempted.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file of the harness's own (a socket directory, a UNIX socket a stack serves
    /// frames on) could not be made or used.
    #[error("{path}: {op}: {source}")]
    File {
        /// The file or directory.
        path: String,
        /// What was attempted.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker thread of a namespace is gone (it panicked or the namespace was dropped).
    #[error("namespace {namespace}: worker thread is gone")]
    WorkerGone {
        /// The namespace name.
        namespace: String,
    },
    /// Something the sandbox built did not become ready in time.
    #[error("not ready: {what}")]
    NotReady {
        /// What, and how long the sandbox waited.
        what: String,
    },
    /// The kernel answered a netlink request with an error.
    #[error("namespace {namespace}: netlink {op}: {errno} ({})", errno.desc())]
    Netlink {
        /// The namespace name.
        namespace: String,
        /// The request, with its arguments.
        op: String,
        /// The errno the kernel returned.
        errno: nix::errno::Errno,
    },
    /// A netlink message could not be built, sent, received or decoded.
    #[error("namespace {namespace}: netlink {op}: {detail}")]
    NetlinkIo {
        /// The namespace name.
        namespace: String,
        /// The request, with its arguments.
        op: String,
        /// What went wrong.
        detail: String,
    },
    /// `route get` found no usable route: the kernel's errno as a typed failure.
    #[error("namespace {namespace}: route get {destination}: {failure}")]
    RouteLookup {
        /// The namespace name.
        namespace: String,
        /// The destination looked up.
        destination: IpAddr,
        /// Why there is no route.
        failure: RouteFailure,
    },
    /// An expected interface does not exist.
    #[error("namespace {namespace}: no interface {interface}")]
    NoSuchInterface {
        /// The namespace name.
        namespace: String,
        /// The interface name or index.
        interface: String,
    },
    /// Reading or writing a sysctl failed.
    #[error("namespace {namespace}: sysctl {path}: {source}")]
    Sysctl {
        /// The namespace name.
        namespace: String,
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A sysctl read back a value other than the one written.
    #[error("namespace {namespace}: sysctl {name}: wrote {wanted:?}, reads back {got:?}")]
    SysctlMismatch {
        /// The namespace name.
        namespace: String,
        /// The sysctl name (dotted).
        name: String,
        /// The value written.
        wanted: String,
        /// The value read back.
        got: String,
    },
    /// An ethtool ioctl failed.
    #[error("namespace {namespace}: ethtool {command} on {interface}: {source}")]
    Ethtool {
        /// The namespace name.
        namespace: String,
        /// The interface.
        interface: String,
        /// The ethtool command (`ETHTOOL_STSO`...).
        command: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An offload is still on after being switched off.
    #[error("namespace {namespace}: {feature} still on for {interface}")]
    OffloadStillOn {
        /// The namespace name.
        namespace: String,
        /// The interface.
        interface: String,
        /// The feature (`tso`, `gso`, `gro`, `tx-checksum`).
        feature: &'static str,
    },
    /// An AF_PACKET socket operation failed.
    #[error("packet socket on {interface}: {op}: {source}")]
    Packet {
        /// The interface.
        interface: String,
        /// What was attempted.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A name the harness generates would be invalid (e.g. an interface name over 15 bytes).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// Checks that the process can create network namespaces (CAP_NET_ADMIN and CAP_SYS_ADMIN
/// in its effective set, which both root and `unshare -rn` give).
pub fn check_privileges() -> Result<(), SandboxError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let mut missing = Vec::new();
    if eff & (1 << CAP_NET_ADMIN) == 0 {
        missing.push("CAP_NET_ADMIN");
    }
    if eff & (1 << CAP_SYS_ADMIN) == 0 {
        missing.push("CAP_SYS_ADMIN");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SandboxError::Privileges {
            missing: missing.join(", "),
        })
    }
}

/// For tests that need namespaces: true when the process is privileged.
///
/// When it is not: panics if the environment variable `NETCONFORM_REQUIRE_NETNS=1` (CI sets
/// it, so a lost privilege fails the build), otherwise prints a loud
/// `SKIPPED <test>: <message>` line to stderr and returns false. Never a silent skip.
pub fn require_netns(test_name: &str) -> bool {
    match check_privileges() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("NETCONFORM_REQUIRE_NETNS").as_deref() == Ok("1") {
                panic!("{test_name}: {e} (NETCONFORM_REQUIRE_NETNS=1)");
            }
            report_skip(test_name, &e.to_string());
            false
        }
    }
}

/// Says loudly that test `test_name` skipped, and why: a `SKIPPED <test>: <why>` line on
/// stderr, and the same line appended to the file `NETCONFORM_SKIP_LOG` names, if set.
///
/// The line goes straight to the stderr handle, not through `eprintln!`, which libtest
/// captures for passing tests; a test runner that captures the handle too (nextest, for
/// a passing test) still leaves the file, which `ci/test` reads: a skip is never silent.
pub fn report_skip(test_name: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test_name}: {why}");
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(path) = std::env::var_os("NETCONFORM_SKIP_LOG")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}
