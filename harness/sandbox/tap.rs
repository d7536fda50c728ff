//! A TAP device bridged to the stack's veth end, for a user-space stack that reads and
//! writes Ethernet frames through `/dev/net/tun`.
//!
//! ```text
//!  ncf-<pid>-<n>-h                ncf-<pid>-<m>-t
//!  [ ncf<k>h ] ---- veth ---- [ ncf<k>t ] --+-- ncf<j>br (bridge) --+-- [ ncf<j>tap ] <=> the stack
//!                                                                       /dev/net/tun, IFF_TAP|IFF_NO_PI
//! ```
//!
//! The tap is created **persistent** (`TUNSETIFF` with `IFF_TAP | IFF_NO_PI`, then
//! `TUNSETPERSIST`) from inside the stack namespace, so that it outlives the harness's file
//! descriptor and the stack opens it by name, as it would any tap. rtnetlink cannot create
//! one (the kernel refuses `RTM_NEWLINK` of kind `tun`). The bridge is built as the switch
//! lab's is (STP off, so ports forward at once, snooping off), with forward delay 0; neither
//! the bridge nor its ports get an address, and IPv6 is off in the namespace (the lab turns
//! it off when the kernel owns no address), so the kernel sends nothing on them.
//!
//! Until the stack opens the tap its carrier is off and the bridge does not forward to it;
//! [`Lab::wait_tap_open`] waits for the stack. Everything goes with the
//! namespace: a tap belongs to the namespace it was created in and is deleted with it, so
//! dropping the [`Lab`] (or `netconform clean`) removes it.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::bridge::BridgeSettings;
use super::netlink::Readiness;
use super::netns::next_id;
use super::{IFNAME_PREFIX, Lab, LinkInfo, Rtnl, SandboxError};

/// The tap and the bridge joining it to the stack's veth end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapBridge {
    /// The tap device the stack opens (as read back after it was enslaved and set up).
    pub tap: LinkInfo,
    /// The bridge.
    pub bridge: LinkInfo,
}

/// Creates the persistent tap `name` in the calling thread's namespace (`namespace` names
/// it for messages).
fn create_persistent_tap(namespace: &str, name: &str) -> Result<(), SandboxError> {
    if name.len() > 15 {
        return Err(SandboxError::InvalidName {
            name: name.to_string(),
            reason: "interface names are at most 15 bytes",
        });
    }
    let err = |op: &str, source: std::io::Error| SandboxError::Namespace {
        namespace: namespace.to_string(),
        op: format!("tap {name}: {op}"),
        source,
    };
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| err("open /dev/net/tun", e))?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which lives for the call.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut ifr) } < 0 {
        return Err(err(
            "ioctl TUNSETIFF (IFF_TAP|IFF_NO_PI)",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: TUNSETPERSIST takes an integer argument.
    if unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) } < 0 {
        return Err(err("ioctl TUNSETPERSIST", std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Lab {
    /// Puts a persistent tap in the target namespace and bridges it to the target veth end
    /// (see the module doc). The tap gets the veth's MTU. Returns at once: the tap's carrier
    /// comes on when the stack opens it.
    pub fn add_tap_bridge(&mut self) -> Result<TapBridge, SandboxError> {
        let k = next_id();
        let tap_name = format!("{IFNAME_PREFIX}{k}tap");
        let bridge_name = format!("{IFNAME_PREFIX}{k}br");
        let (ns, n) = (self.target().name().to_string(), tap_name.clone());
        self.target()
            .run(move || create_persistent_tap(&ns, &n))??;
        let veth = self.target_link().clone();
        let rtnl = self.target_rtnl();
        rtnl.create_bridge(
            &bridge_name,
            &BridgeSettings {
                stp: false,
                ageing_centiseconds: 30000,
                multicast_snooping: false,
                group_forward_mask: 0,
            },
        )?;
        let bridge = rtnl.link_by_name(&bridge_name)?;
        rtnl.set_bridge_forward_delay(bridge.index, 0)?;
        let tap = rtnl.link_by_name(&tap_name)?;
        rtnl.set_mtu(tap.index, veth.mtu)?;
        rtnl.set_master(veth.index, bridge.index)?;
        rtnl.set_master(tap.index, bridge.index)?;
        rtnl.set_up(tap.index, true)?;
        rtnl.set_up(bridge.index, true)?;
        Ok(TapBridge {
            tap: rtnl.link_by_name(&tap_name)?,
            bridge: rtnl.link_by_name(&bridge_name)?,
        })
    }

    /// Waits up to `within` until the stack has opened the tap of `bridge` and the kernel
    /// has caught up with it; false if that has not happened by then.
    ///
    /// Opening the tap turns its carrier on (`IFF_LOWER_UP`) at once, but the device's
    /// queue is activated, its operational state set and its bridge port enabled only when
    /// the kernel's link watch handles the event, up to a second later; until then frames
    /// the bridge hands the tap are dropped. (`IFLA_QDISC` already names a qdisc before
    /// that, and the operational state may still be `unknown`, which the `IFF_RUNNING` flag
    /// counts as up.) So this waits for all three: the carrier, the operational state `up`
    /// (set by the link watch, with the queue activated in the same step), and the port
    /// forwarding (the last thing it does). The same holds for the other port, the veth
    /// end: the bridge enables it only once the link watch has seen its carrier come on,
    /// which may be after the bridge came up; and for the harness's veth end, whose queue
    /// the link watch activates. This waits for all three devices.
    pub fn wait_tap_open(
        &mut self,
        bridge: &TapBridge,
        within: Duration,
    ) -> Result<bool, SandboxError> {
        let deadline = Instant::now() + within;
        let (tap, veth, harness) = (
            bridge.tap.index,
            self.target_link().index,
            self.harness_link().index,
        );
        let ready = |rtnl: &mut Rtnl, index, r: Readiness| {
            rtnl.synced_link(index)
                .map(|l| l.is_some_and(|l| r.missing(&l).is_none()))
        };
        loop {
            let open = ready(self.target_rtnl(), tap, Readiness::BridgePort)?
                && ready(self.target_rtnl(), veth, Readiness::BridgePort)?
                && ready(self.harness_rtnl(), harness, Readiness::Link)?;
            if open {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
