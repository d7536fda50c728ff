//! Offloads through the legacy `SIOCETHTOOL` ioctls (`ETHTOOL_S*`/`ETHTOOL_G*` with a
//! `struct ethtool_value`) on an AF_INET datagram socket.
//!
//! The socket resolves the interface name in the namespace it was created in, so call these
//! functions from inside the namespace ([`super::Namespace::run`]). veth has TSO/GSO on by
//! default, which would hand the harness 64 KiB super-frames; with TX checksum offload on,
//! frames leave with partial checksums. [`disable_offloads`] switches all four off.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use super::SandboxError;

const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;

/// `struct ethtool_value` from `include/uapi/linux/ethtool.h`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// The offload features the harness cares about, as read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offloads {
    /// TCP segmentation offload.
    pub tso: bool,
    /// Generic segmentation offload.
    pub gso: bool,
    /// Generic receive offload.
    pub gro: bool,
    /// TX checksum offload.
    pub tx_checksum: bool,
}

struct Ctl {
    fd: OwnedFd,
    namespace: String,
    interface: String,
}

impl Ctl {
    fn open(namespace: &str, interface: &str) -> Result<Ctl, SandboxError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(SandboxError::Ethtool {
                namespace: namespace.to_string(),
                interface: interface.to_string(),
                command: "socket",
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Ctl {
            fd,
            namespace: namespace.to_string(),
            interface: interface.to_string(),
        })
    }

    fn value(&self, command: &'static str, cmd: u32, data: u32) -> Result<u32, SandboxError> {
        let err = |source| SandboxError::Ethtool {
            namespace: self.namespace.clone(),
            interface: self.interface.clone(),
            command,
            source,
        };
        let name = self.interface.as_bytes();
        if name.len() >= libc::IFNAMSIZ {
            return Err(err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG)));
        }
        let mut value = EthtoolValue { cmd, data };
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(name) {
            *dst = *src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        // SAFETY: SIOCETHTOOL reads `ifr` and reads/writes the `ethtool_value` it points to;
        // both live on this stack frame for the whole call and have the layouts the kernel
        // expects (`struct ifreq`, `struct ethtool_value`).
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
        if rc < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        Ok(value.data)
    }
}

/// Reads the offloads of `interface` (calling thread's namespace).
pub fn offloads(namespace: &str, interface: &str) -> Result<Offloads, SandboxError> {
    let ctl = Ctl::open(namespace, interface)?;
    Ok(Offloads {
        tso: ctl.value("ETHTOOL_GTSO", ETHTOOL_GTSO, 0)? != 0,
        gso: ctl.value("ETHTOOL_GGSO", ETHTOOL_GGSO, 0)? != 0,
        gro: ctl.value("ETHTOOL_GGRO", ETHTOOL_GGRO, 0)? != 0,
        tx_checksum: ctl.value("ETHTOOL_GTXCSUM", ETHTOOL_GTXCSUM, 0)? != 0,
    })
}

/// Switches TSO, GSO, GRO and TX checksum offload off on `interface` (calling thread's
/// namespace), reads them back and fails with [`SandboxError::OffloadStillOn`] if one is
/// still on. Returns the read-back values.
pub fn disable_offloads(namespace: &str, interface: &str) -> Result<Offloads, SandboxError> {
    let ctl = Ctl::open(namespace, interface)?;
    ctl.value("ETHTOOL_STSO", ETHTOOL_STSO, 0)?;
    ctl.value("ETHTOOL_SGSO", ETHTOOL_SGSO, 0)?;
    ctl.value("ETHTOOL_SGRO", ETHTOOL_SGRO, 0)?;
    ctl.value("ETHTOOL_STXCSUM", ETHTOOL_STXCSUM, 0)?;
    let now = offloads(namespace, interface)?;
    let still_on = [
        ("tso", now.tso),
        ("gso", now.gso),
        ("gro", now.gro),
        ("tx-checksum", now.tx_checksum),
    ];
    if let Some((feature, _)) = still_on.into_iter().find(|(_, on)| *on) {
        return Err(SandboxError::OffloadStillOn {
            namespace: namespace.to_string(),
            interface: interface.to_string(),
            feature,
        });
    }
    Ok(now)
}
