//! Two stacks talking to each other: a client namespace and a server namespace joined by one
//! veth pair, both with addresses, and a capture of every frame that crosses the pair.
//!
//! ```text
//!  ncf-<pid>-<n>-c                          ncf-<pid>-<m>-s
//!  [ ncf<k>c ] 10.79.0.1/24 ---- veth ---- 10.79.0.2/24 [ ncf<k>s ]
//!   client (captured here, both directions)   server
//! ```
//!
//! Used where the stack under test runs a protocol above TCP on both ends (TLS: rustls or
//! OpenSSL as client and server over the kernel's TCP). Address plan: `10.79.0.0/24`
//! (RFC 1918), never routed outside the two namespaces. IPv6 is off in both, so no multicast
//! listener report interleaves with the capture; offloads are off on both ends, so the
//! capture holds the segments the kernel really sent, not GSO super-packets.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ethtool;
use super::netns::next_id;
use super::sysctl::{self, SysctlRecord};
use super::{IFNAME_PREFIX, LinkInfo, MacAddr, Namespace, PacketSocket, Rtnl, SandboxError};

/// The client's address.
pub const PAIR_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
/// The server's address.
pub const PAIR_SERVER: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);

/// A built pair. Dropping it removes both namespaces (and with them the veth pair).
#[derive(Debug)]
pub struct HostPair {
    // Field order is drop order: sockets first, namespaces last.
    client_link: LinkInfo,
    server_link: LinkInfo,
    sysctls: Vec<SysctlRecord>,
    client: Namespace,
    server: Namespace,
}

impl HostPair {
    /// Builds the pair: two namespaces, IPv6 off, veth with offloads off, links and `lo` up,
    /// one IPv4 address on each end.
    pub fn build() -> Result<HostPair, SandboxError> {
        let client = Namespace::create("c")?;
        let server = Namespace::create("s")?;
        let k = next_id();
        let cname = format!("{IFNAME_PREFIX}{k}c");
        let sname = format!("{IFNAME_PREFIX}{k}s");
        let mut sysctls = sysctl::set_all(&client, &sysctl::harness_defaults())?;
        sysctls.extend(sysctl::set_all(&server, &sysctl::harness_defaults())?);

        let cn = client.name().to_string();
        let mut client_rtnl = client.run(move || Rtnl::open(&cn))??;
        let sn = server.name().to_string();
        let mut server_rtnl = server.run(move || Rtnl::open(&sn))??;
        client_rtnl.create_veth(&cname, &sname, server.raw_fd(), 1500)?;
        for (ns, rtnl, ifname, addr) in [
            (&client, &mut client_rtnl, &cname, PAIR_CLIENT),
            (&server, &mut server_rtnl, &sname, PAIR_SERVER),
        ] {
            let (n, i) = (ns.name().to_string(), ifname.clone());
            ns.run(move || ethtool::disable_offloads(&n, &i))??;
            let lo = rtnl.link_by_name("lo")?;
            rtnl.set_up(lo.index, true)?;
            let link = rtnl.link_by_name(ifname)?;
            rtnl.set_up(link.index, true)?;
            rtnl.add_address(link.index, addr.into(), 24)?;
        }
        let client_link = client_rtnl.wait_queue_active(&cname)?;
        let server_link = server_rtnl.wait_queue_active(&sname)?;
        Ok(HostPair {
            client_link,
            server_link,
            sysctls,
            client,
            server,
        })
    }

    /// The client namespace.
    pub fn client(&self) -> &Namespace {
        &self.client
    }
    /// The server namespace.
    pub fn server(&self) -> &Namespace {
        &self.server
    }
    /// MAC of the client's veth end: frames with this source went client → server.
    pub fn client_mac(&self) -> MacAddr {
        self.client_link.mac.unwrap_or_default()
    }
    /// MAC of the server's veth end.
    pub fn server_mac(&self) -> MacAddr {
        self.server_link.mac.unwrap_or_default()
    }
    /// Every sysctl the pair set (namespace, name, old, new).
    pub fn sysctls(&self) -> &[SysctlRecord] {
        &self.sysctls
    }
    /// The server's address with `port`.
    pub fn server_addr(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(PAIR_SERVER, port)
    }

    /// Starts capturing every frame on the client's veth end, both directions, on a thread
    /// of its own until [`Sniffer::stop`].
    pub fn sniff(&self) -> Result<Sniffer, SandboxError> {
        let (name, index) = (self.client_link.name.clone(), self.client_link.index);
        let socket = self
            .client
            .run(move || PacketSocket::open_sniffer(&name, index))??;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("ncf-sniffer".into())
            .spawn(move || -> Result<Captured, SandboxError> {
                let mut frames = Vec::new();
                loop {
                    let stopping = flag.load(Ordering::SeqCst);
                    // After the stop flag, take what is queued and end.
                    let deadline = Instant::now() + Duration::from_millis(20);
                    match socket.recv(deadline)? {
                        Some(frame) => frames.push((started.elapsed(), frame)),
                        None if stopping => return Ok(frames),
                        None => {}
                    }
                }
            })
            .map_err(|e| SandboxError::Packet {
                interface: self.client_link.name.clone(),
                op: "spawn the capture thread",
                source: e,
            })?;
        Ok(Sniffer {
            stop,
            thread: Some(thread),
        })
    }
}

/// Captured frames, each with its time since the capture started.
pub type Captured = Vec<(Duration, Vec<u8>)>;

/// A running capture (see [`HostPair::sniff`]).
#[derive(Debug)]
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Captured, SandboxError>>>,
}

impl Sniffer {
    /// Stops the capture and returns every frame, with its time since the capture started,
    /// in the order the interface saw them.
    pub fn stop(mut self) -> Result<Captured, SandboxError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(Vec::new()),
        }
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
