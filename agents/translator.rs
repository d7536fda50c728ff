//! What the agents of user-mode translators (libslirp, passt) share: the guest reaches
//! the host's sockets through the translator's gateway address, which the host side sees as
//! its loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netconform::dut::{DutError, Family};

/// The loopback address of `family`, where the host side of a translator listens.
pub fn loopback(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// The family of `addr`.
pub fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

/// The host-side address for the stack's address `addr`: the loopback when `addr` is any
/// address or one of the translator's gateways; else `refused` (why a host socket there
/// cannot be reached from the guest), unsupported.
pub fn host_side(
    addr: IpAddr,
    gateway: Ipv4Addr,
    gateway6: Option<Ipv6Addr>,
    refused: impl FnOnce() -> String,
) -> Result<IpAddr, DutError> {
    if addr.is_unspecified()
        || addr == IpAddr::V4(gateway)
        || gateway6.map(IpAddr::V6) == Some(addr)
    {
        return Ok(loopback(family_of(addr)));
    }
    Err(DutError::NotSupported { what: refused() })
}
