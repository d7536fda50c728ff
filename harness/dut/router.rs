//! The Linux kernel as a router under test: a [`RouterLab`] (a namespace with one interface
//! per segment, forwarding on) and one packet socket per segment on the harness side.
//!
//! Port `i` of the target is segment `i`: frames go in with [`Link::send_frame_on`](crate::dut::Link::send_frame_on) and
//! come out of any segment through [`Link::recv_frame_any`](crate::dut::Link::recv_frame_any). [`Dut::endpoints`]
//! describes segment 0 (the router's address there, the harness end's MAC);
//! [`LinuxRouter::segment`] describes the others. State queries (neighbours, routes, route
//! lookups, the conntrack table) and controls (routes, neighbour timers, masquerade, conntrack
//! flush) act on the router namespace.

use std::net::IpAddr;

use super::ports::PortSockets;
use super::{Control, Dut, DutError, Endpoints, PortInfo, StateAnswer, StateQuery};
use crate::dut::needs::Needs;
use crate::sandbox::{RouterConfig, RouterLab, Segment};

/// The router a check runs on, when it needs one: its segments, and IPv6 on them when the
/// check needs it (the route scenarios; forwarding and NAT are IPv4).
pub fn router_config_for(needs: &Needs) -> Option<RouterConfig> {
    needs.router.map(|r| RouterConfig {
        segments: r.segments,
        ipv6: needs.ipv6,
        ..RouterConfig::default()
    })
}

/// The Linux kernel forwarding between segments.
#[derive(Debug)]
pub struct LinuxRouter {
    sockets: PortSockets,
    endpoints: Endpoints,
    lab: RouterLab,
}

impl LinuxRouter {
    /// Builds the lab and opens a packet socket per segment.
    pub fn new(config: RouterConfig) -> Result<LinuxRouter, DutError> {
        let lab = RouterLab::build(config)?;
        let sockets = PortSockets::new(
            (0..lab.segments().len())
                .map(|i| lab.packet_socket(i))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let s0 = &lab.segments()[0];
        let endpoints = Endpoints {
            harness_mac: s0.harness_link.mac.unwrap_or_default(),
            stack_mac: s0.router_link.mac.unwrap_or_default(),
            stack_ipv4: Some((s0.router_ip, s0.prefix_len)),
            peer_ipv4: Some(s0.host(2)),
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: s0.router_link.mtu,
        };
        sockets.drain()?;
        Ok(LinuxRouter {
            sockets,
            endpoints,
            lab,
        })
    }

    /// Segment `i`: the router's interface, MAC and address there.
    pub fn segment(&self, i: usize) -> Option<&Segment> {
        self.lab.segments().get(i)
    }

    /// The lab underneath.
    pub fn lab(&self) -> &RouterLab {
        &self.lab
    }

    /// The lab underneath, to change it between runs that share the router (the generated
    /// route tables flush the previous table's routes).
    pub fn lab_mut(&mut self) -> &mut RouterLab {
        &mut self.lab
    }
}

impl Dut for LinuxRouter {
    fn name(&self) -> &str {
        "linux-router"
    }

    fn environment(&self) -> Vec<String> {
        let lab = &self.lab;
        let mut env =
            crate::sandbox::sysctl::environment_lines(lab.sysctls(), lab.router().name(), "router");
        for (i, s) in lab.segments().iter().enumerate() {
            env.push(format!(
                "segment {i}: router {}/{} on {}",
                s.router_ip, s.prefix_len, s.router_link.name
            ));
        }
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

impl crate::dut::Tables for LinuxRouter {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::Neighbours => {
                Ok(StateAnswer::Neighbours(self.lab_rtnl().neighbours(false)?))
            }
            StateQuery::Routes => Ok(StateAnswer::Routes(self.lab_rtnl().routes(false)?)),
            StateQuery::RouteGet(dst) => self.route_answer(*dst, None),
            StateQuery::RouteGetFrom { dst, src } => self.route_answer(*dst, Some(*src)),
            StateQuery::Ports => Ok(StateAnswer::Ports(
                self.lab
                    .segments()
                    .iter()
                    .map(|s| PortInfo {
                        ifindex: s.router_link.index,
                        name: s.router_link.name.clone(),
                        mac: s.router_link.mac.unwrap_or_default(),
                        harness_mac: s.harness_link.mac.unwrap_or_default(),
                        ipv4: Some((s.router_ip, s.prefix_len)),
                        ipv6: s.router_ip6.map(|a| (a, 64)),
                        mtu: s.router_link.mtu,
                    })
                    .collect(),
            )),
            StateQuery::Conntrack => Ok(StateAnswer::Conntrack(self.lab.conntrack()?)),
            other => Err(DutError::NotSupported {
                what: format!("{other:?} on the router target"),
            }),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::Route {
                dst,
                prefix_len,
                via,
            } => {
                let oif = self
                    .lab
                    .segments()
                    .iter()
                    .find(|s| {
                        let mask = u32::MAX << (32 - u32::from(s.prefix_len));
                        u32::from(*via) & mask == u32::from(s.router_ip) & mask
                    })
                    .map(|s| s.router_link.index);
                self.lab_rtnl().set_route(
                    IpAddr::V4(*dst),
                    *prefix_len,
                    Some(IpAddr::V4(*via)),
                    oif,
                )?;
                Ok(())
            }
            Control::AddRoute(route) => Ok(self.lab_rtnl().add_typed_route(route)?),
            Control::NeighbourParams(update) => {
                for i in self.router_indexes() {
                    self.lab_rtnl().set_neighbour_params(i, update)?;
                }
                Ok(())
            }
            Control::FlushNeighbours => {
                for i in self.router_indexes() {
                    self.lab_rtnl().flush_neighbours(i)?;
                }
                Ok(())
            }
            Control::Masquerade { port } => Ok(self.lab.install_masquerade(*port)?),
            Control::FlushConntrack => Ok(self.lab.flush_conntrack()?),
            other => Err(DutError::NotSupported {
                what: format!("{other} on the router target"),
            }),
        }
    }
}

impl LinuxRouter {
    fn lab_rtnl(&mut self) -> &mut crate::sandbox::Rtnl {
        self.lab.router_rtnl()
    }

    /// `route get dst [from src]` in the router namespace: the lookup with its segment's
    /// interface name (none for the loopback), or the typed failure.
    fn route_answer(&mut self, dst: IpAddr, src: Option<IpAddr>) -> Result<StateAnswer, DutError> {
        match self.lab_rtnl().route_get_from(dst, src) {
            Ok(lookup) => {
                let dev = lookup
                    .oif
                    .and_then(|i| self.lab.segment_of_ifindex(i))
                    .map(|i| self.lab.segments()[i].router_link.name.clone());
                Ok(StateAnswer::Route { lookup, dev })
            }
            Err(crate::sandbox::SandboxError::RouteLookup {
                destination,
                failure,
                ..
            }) => Ok(StateAnswer::NoRoute {
                dst: destination,
                failure,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The router's interface index on every segment.
    fn router_indexes(&self) -> Vec<u32> {
        self.lab
            .segments()
            .iter()
            .map(|s| s.router_link.index)
            .collect()
    }
}
