//! The Linux bridge as the switch under test, in a network namespace.
//!
//! [`LinuxBridge`] = a [`BridgeLab`] (a bridge with N ports, each a veth pair to the harness
//! namespace) + one AF_PACKET socket on the harness end of every port. Frames go into a
//! port with [`Link::send_frame_on`](crate::dut::Link::send_frame_on) and come out of any port through
//! [`Link::recv_frame_any`](crate::dut::Link::recv_frame_any), which polls every socket; the forwarding database comes from
//! an `AF_BRIDGE` neighbour dump in the switch namespace ([`StateQuery::Fdb`]), mapped from
//! interface indexes to port numbers. The bridge has no socket API: socket calls and the
//! host queries are [`DutError::NotSupported`].
//!
//! Before a check sees it, the bridge is proven to forward: a broadcast probe from port 0
//! (and from port 1) must come out of every other port, then the forwarding database is
//! flushed and every socket drained.

use std::time::Instant as StdInstant;

use super::ports::PortSockets;
use super::{Control, Dut, DutError, Endpoints, FdbEntry, FdbState, StateAnswer, StateQuery};
use crate::dut::needs::Needs;
use crate::sandbox::{BridgeConfig, BridgeLab, MacAddr, NudState};

/// The ether type of the harness's own frames on a switch: IEEE 802 local experimental
/// ethertype 1 (0x88B5), which no stack answers or forwards specially.
pub const EXPERIMENTAL_ETHER_TYPE: u16 = 0x88b5;

/// How long the bridge gets to prove that its ports forward.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The Linux bridge in a namespace, driven through one veth pair per port.
pub struct LinuxBridge {
    sockets: PortSockets,
    endpoints: Endpoints,
    lab: BridgeLab,
}

impl std::fmt::Debug for LinuxBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxBridge")
            .field("lab", &self.lab)
            .finish_non_exhaustive()
    }
}

/// The source address of the readiness probe sent into `port` (flushed afterwards).
fn ready_probe_mac(port: usize) -> MacAddr {
    crate::wire::plan::ready_probe(port as u8)
}

fn ready_probe(port: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&MacAddr::BROADCAST.0);
    f.extend_from_slice(&ready_probe_mac(port).0);
    f.extend_from_slice(&EXPERIMENTAL_ETHER_TYPE.to_be_bytes());
    f.extend_from_slice(b"ncf-ready");
    f.resize(60, 0);
    f
}

impl LinuxBridge {
    /// Builds the lab, opens a packet socket per port, waits until every port forwards,
    /// flushes the forwarding database and drains the sockets.
    pub fn new(config: BridgeConfig) -> Result<LinuxBridge, DutError> {
        let lab = BridgeLab::build(config)?;
        let sockets = PortSockets::new(
            (0..lab.ports().len())
                .map(|i| lab.packet_socket(i))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let first = &lab.ports()[0];
        let endpoints = Endpoints {
            harness_mac: first.harness_link.mac.unwrap_or_default(),
            stack_mac: lab.bridge().mac.unwrap_or_default(),
            stack_ipv4: None,
            peer_ipv4: None,
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: first.switch_link.mtu,
        };
        let mut bridge = LinuxBridge {
            sockets,
            endpoints,
            lab,
        };
        bridge.wait_until_forwarding()?;
        bridge.lab.flush_fdb()?;
        bridge.sockets.drain()?;
        Ok(bridge)
    }

    /// The lab underneath (namespaces, links, bridge settings).
    pub fn lab(&self) -> &BridgeLab {
        &self.lab
    }

    /// The lab underneath, mutably (its rtnetlink sockets).
    pub fn lab_mut(&mut self) -> &mut BridgeLab {
        &mut self.lab
    }

    /// Sends a broadcast into port 0 (and port 1) until it comes out of every other port.
    fn wait_until_forwarding(&mut self) -> Result<(), DutError> {
        let n = self.sockets.len();
        let deadline = StdInstant::now() + READY_WITHIN;
        let mut ingresses = vec![0];
        if n > 1 {
            ingresses.push(1);
        }
        for ingress in ingresses {
            let probe = ready_probe(ingress);
            let mut seen = vec![false; n];
            seen[ingress] = true;
            while !seen.iter().all(|s| *s) {
                if StdInstant::now() >= deadline {
                    let missing: Vec<String> = (0..n)
                        .filter(|p| !seen[*p])
                        .map(|p| format!("p{p}"))
                        .collect();
                    return Err(DutError::Timeout {
                        what: format!(
                            "the bridge to forward a broadcast from p{ingress} (nothing on {} within {READY_WITHIN:?})",
                            missing.join(", ")
                        ),
                    });
                }
                self.sockets.send_on(ingress, &probe)?;
                let wait = (StdInstant::now() + std::time::Duration::from_millis(50)).min(deadline);
                while let Some((port, frame)) = self.sockets.recv_any(wait)? {
                    if frame == probe {
                        seen[port] = true;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Dut for LinuxBridge {
    fn name(&self) -> &str {
        "linux-bridge"
    }

    fn environment(&self) -> Vec<String> {
        let lab = &self.lab;
        let mut env =
            crate::sandbox::sysctl::environment_lines(lab.sysctls(), lab.switch().name(), "switch");
        let s = lab.settings();
        env.push(format!("bridge ports = {}", lab.ports().len()));
        env.push(format!("bridge stp_state = {}", u8::from(s.stp)));
        env.push(format!("bridge ageing_time = {} cs", s.ageing_centiseconds));
        env.push(format!(
            "bridge mcast_snooping = {}",
            u8::from(s.multicast_snooping)
        ));
        env.push(format!(
            "bridge group_fwd_mask = {:#x}",
            s.group_forward_mask
        ));
        for (i, p) in lab.ports().iter().enumerate() {
            for (side, o) in [
                ("harness", p.harness_offloads),
                ("switch", p.switch_offloads),
            ] {
                env.push(format!(
                    "p{i} {side} offloads: tso {} gso {} gro {} tx-checksum {}",
                    o.tso, o.gso, o.gro, o.tx_checksum
                ));
            }
        }
        env.push(format!("mtu = {}", lab.config().mtu));
        env
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn crate::dut::Link> {
        Some(&mut self.sockets)
    }

    fn tables(&mut self) -> Option<&mut dyn crate::dut::Tables> {
        Some(self)
    }
}

impl crate::dut::Tables for LinuxBridge {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::Fdb => {
                let mut entries: Vec<FdbEntry> = Vec::new();
                for e in self.lab.fdb()? {
                    let state = match e.state {
                        NudState::Reachable => FdbState::Fresh,
                        NudState::Stale => FdbState::Aged,
                        NudState::Noarp => FdbState::Static,
                        // Local port addresses, and states a bridge does not use.
                        _ => continue,
                    };
                    let Some(port) = self.lab.port_of_ifindex(e.ifindex) else {
                        continue;
                    };
                    entries.push(FdbEntry {
                        mac: e.mac,
                        port,
                        state,
                    });
                }
                entries.sort();
                Ok(StateAnswer::Fdb(entries))
            }
            other => Err(DutError::NotSupported {
                what: format!("{other:?}: the Linux bridge target is a switch, not a host"),
            }),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::FlushFdb => Ok(self.lab.flush_fdb()?),
            Control::SetAgeing(d) => {
                let wanted = ageing_centiseconds(d.total_millis());
                let got = self.lab.set_ageing(wanted)?.ageing_centiseconds;
                if got == wanted {
                    Ok(())
                } else {
                    Err(DutError::Malformed {
                        detail: format!("ageing_time set to {wanted} cs, reads back {got} cs"),
                    })
                }
            }
            other => Err(DutError::NotSupported {
                what: format!("{other}: the Linux bridge target is a switch, not a host"),
            }),
        }
    }
}

/// Milliseconds to the kernel's centiseconds (rounded down).
fn ageing_centiseconds(ms: u64) -> u32 {
    u32::try_from(ms / 10).unwrap_or(u32::MAX)
}

/// The bridge a check runs on, when it needs a switch: its ports and ageing time.
pub fn bridge_config_for(needs: &Needs) -> Option<BridgeConfig> {
    needs.switch.map(|s| BridgeConfig {
        ports: s.ports,
        ageing_centiseconds: ageing_centiseconds(u64::from(s.ageing_ms)),
        ..BridgeConfig::default()
    })
}
