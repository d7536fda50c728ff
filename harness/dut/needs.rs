//! What a check needs from the device under test: the planes it uses ([`Uses`]: a link,
//! TCP or UDP sockets, tables, a service), its set-up (IPv6, a pre-resolved peer, pinned
//! settings) and its topology (a host, a switch with N ports, a router with N segments).
//! A DUT whose [`Capabilities`] lack a plane the check uses makes the check unsupported
//! before it runs ([`Needs::unmet`]), with the reason.
//!
//! The checks state their needs in these terms and each device under test builds itself
//! from them, so the type lives with the devices, not with the checks.

use crate::dut::Capabilities;
use crate::dut::service::ServiceKind;

/// What a check needs from the DUT: the planes it uses, its set-up and its topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Needs {
    /// IPv6 on the stack. Checks that do not need it get a stack with IPv6 off, so its
    /// multicast listener reports never interleave with their traces.
    pub ipv6: bool,
    /// The stack already knows the peer's link-layer address (no ARP or neighbour
    /// discovery exchange before the first answer).
    pub peer_preresolved: bool,
    /// Settings the check pins on the stack, as `(name, value)` (for Linux: per-namespace
    /// sysctls such as `net.ipv4.tcp_early_retrans`); recorded in the report's environment.
    pub settings: &'static [(&'static str, &'static str)],
    /// A switch with this many ports and this ageing time (`None`: a host stack). On a
    /// target that is not such a switch the check's first multi-port event is unsupported.
    pub switch: Option<SwitchNeeds>,
    /// A router with this many segments (`None`: a host stack). On a target that is not a
    /// router the check's first query for its ports is unsupported.
    pub router: Option<RouterNeeds>,
    /// The planes of the DUT the check uses. A DUT without one of them makes the check
    /// unsupported before it runs ([`Needs::unmet`]).
    pub uses: &'static [Uses],
}

/// A plane of the DUT (or a part of one) that a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Uses {
    /// The link plane, with at least as many ports as the check's topology has (one for a
    /// host, [`SwitchNeeds::ports`], [`RouterNeeds::segments`]).
    Link,
    /// TCP sockets.
    TcpSockets,
    /// UDP sockets.
    UdpSockets,
    /// The table plane (state and settings).
    Tables,
    /// A service of this kind.
    Service(ServiceKind),
}

impl std::fmt::Display for Uses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uses::Link => write!(f, "a link"),
            Uses::TcpSockets => write!(f, "TCP sockets"),
            Uses::UdpSockets => write!(f, "UDP sockets"),
            Uses::Tables => write!(f, "tables to read and set"),
            Uses::Service(kind) => write!(f, "a {kind} service"),
        }
    }
}

impl Needs {
    /// What the check needs, in a few words, for an unsupported verdict's reason.
    pub fn describe(&self) -> String {
        if self.uses_service(ServiceKind::Tls) {
            "a TLS service".into()
        } else if let Some(s) = self.switch {
            format!("a switch with {} ports", s.ports)
        } else if let Some(r) = self.router {
            format!("a router with {} segments", r.segments)
        } else {
            "an IP host on an Ethernet link".into()
        }
    }
}

impl Needs {
    /// Whether the check uses a service of `kind`.
    pub fn uses_service(&self, kind: ServiceKind) -> bool {
        self.uses.contains(&Uses::Service(kind))
    }

    /// How many link ports the check's topology has (1: a host).
    pub fn ports(&self) -> usize {
        match (self.switch, self.router) {
            (Some(s), _) => s.ports,
            (None, Some(r)) => r.segments,
            (None, None) => 1,
        }
    }

    /// Whether a DUT that has `caps` is another kind of device than the check is for: a
    /// switch or router check (more than one port) on a one-port host, a service check (TLS)
    /// on a DUT that serves none of it, a host check on a DUT that only serves. Such a check
    /// is not counted among the unsupported checks *of the DUT's kind* (the share a
    /// certification reports): it tests a device the DUT does not claim to be.
    pub fn other_kind(&self, caps: &Capabilities) -> bool {
        let wants_service = self.uses.iter().any(|u| matches!(u, Uses::Service(_)));
        let only_serves = caps.link_ports == 0 && !caps.tcp && !caps.tables;
        (self.ports() > 1 && caps.link_ports < self.ports())
            || (wants_service
                && !self.uses.iter().all(|u| match u {
                    Uses::Service(kind) => caps.services.iter().any(|s| s.kind == *kind),
                    _ => true,
                }))
            || (!wants_service && only_serves && !caps.services.is_empty())
    }

    /// Why a DUT that has `caps` cannot run a check that needs this: the first plane the
    /// check uses that the DUT lacks (`None`: it has them all). The reason does not name
    /// the DUT (the report does), so two DUTs that lack the same plane give the same one.
    pub fn unmet(&self, caps: &Capabilities) -> Option<String> {
        let lacks = |what: String| Some(format!("{}: the DUT {what}", self.describe()));
        for uses in self.uses {
            match uses {
                Uses::Link if caps.link_ports == 0 => {
                    return lacks("has no link of its own".into());
                }
                Uses::Link if caps.link_ports < self.ports() => {
                    return lacks(format!(
                        "has a link of {} port(s), the check needs {}",
                        caps.link_ports,
                        self.ports()
                    ));
                }
                Uses::TcpSockets if !caps.tcp => return lacks("has no sockets to call".into()),
                Uses::UdpSockets if !caps.udp => {
                    return lacks(if caps.tcp {
                        "has TCP sockets only, the check needs UDP sockets".into()
                    } else {
                        "has no sockets to call".into()
                    });
                }
                Uses::Tables if !caps.tables => return lacks("has no tables to read".into()),
                Uses::Service(kind) if !caps.services.iter().any(|s| s.kind == *kind) => {
                    return lacks(format!("serves no {kind}"));
                }
                _ => {}
            }
        }
        None
    }
}

/// What a router check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouterNeeds {
    /// Segments (ports), at least this many.
    pub segments: usize,
}

/// What a switch check needs: how many ports, and the ageing time its model assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SwitchNeeds {
    /// Ports, at least this many.
    pub ports: usize,
    /// The ageing time of the filtering database, in milliseconds (a multiple of 10: Linux
    /// counts it in centiseconds).
    pub ageing_ms: u32,
}

impl Needs {
    /// IPv4 only, resolution through ARP.
    pub const IPV4: Needs = Needs {
        ipv6: false,
        peer_preresolved: false,
        settings: &[],
        switch: None,
        router: None,
        uses: &[Uses::Link],
    };

    /// What a TCP scenario needs: the peer pre-resolved (no ARP between its events), IPv6
    /// when the scenario runs over it.
    pub const fn scenario(ipv6: bool) -> Needs {
        Needs {
            ipv6,
            peer_preresolved: true,
            settings: &[],
            switch: None,
            router: None,
            uses: &[Uses::Link, Uses::TcpSockets],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::service::{ServiceImpl, ServiceRequest};
    use crate::dut::{Dut, DutError, Endpoints, SocketCall, SocketId, StateQuery};
    use crate::sandbox::MacAddr;

    /// A DUT with no plane at all.
    struct Bare(Endpoints);

    impl Dut for Bare {
        fn name(&self) -> &str {
            "bare"
        }
        fn endpoints(&self) -> &Endpoints {
            &self.0
        }
    }

    fn bare() -> Bare {
        Bare(Endpoints {
            harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            stack_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            stack_ipv4: None,
            peer_ipv4: None,
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
        })
    }

    fn refused<T: std::fmt::Debug>(r: Result<T, DutError>) -> String {
        match r {
            Err(DutError::NotSupported { what }) => what,
            other => panic!("expected not supported, got {other:?}"),
        }
    }

    /// Every event of a plane a DUT does not have is refused naming the DUT and the plane.
    #[test]
    fn a_missing_plane_refuses_its_events_by_name() {
        let mut b = bare();
        let dut: &mut dyn Dut = &mut b;
        assert_eq!(dut.capabilities(), Capabilities::default());
        assert_eq!(
            refused(dut.send_frame(&[0; 60])),
            "sending frames: the bare DUT has no link of its own"
        );
        assert_eq!(
            refused(dut.recv_frame_any(std::time::Instant::now())),
            "receiving frames: the bare DUT has no link of its own"
        );
        assert_eq!(dut.ports(), 0);
        assert_eq!(dut.frames_delivered(), None);
        assert_eq!(
            refused(dut.call(&SocketCall::Close { sock: SocketId(1) })),
            "close(s1): the bare DUT has no sockets to call"
        );
        assert_eq!(
            refused(dut.query(&StateQuery::Routes)),
            "Routes: the bare DUT has no tables to read"
        );
        let request = ServiceRequest::TlsExchange {
            implementation: "x".into(),
            scenario: crate::dut::tls::TlsScenario {
                version: 0x0304,
                suite: 0x1301,
                key_update: false,
                client_private: [1; 32],
                server_private: [2; 32],
            },
        };
        let what = refused(dut.service(&request));
        assert!(
            what.ends_with(": the bare DUT has no service of its own"),
            "{what}"
        );
        assert!(dut.offered_services().is_empty());
    }

    fn caps(link_ports: usize, tcp: bool, udp: bool, tables: bool, tls: bool) -> Capabilities {
        Capabilities {
            link_ports,
            tcp,
            udp,
            tables,
            services: if tls {
                vec![ServiceImpl {
                    kind: ServiceKind::Tls,
                    id: "t".into(),
                    description: "t".into(),
                }]
            } else {
                Vec::new()
            },
        }
    }

    /// `unmet` names the first plane a check uses that the DUT lacks, and nothing when it
    /// has them all.
    /// A switch, router or TLS check on a host is for another kind of device; a host check
    /// a host cannot run (no UDP, no tables) is a missing feature of its own kind.
    #[test]
    fn other_kind_tells_a_device_from_a_feature() {
        let host = caps(1, true, false, false, false);
        let switch = Needs {
            uses: &[Uses::Link, Uses::Tables],
            switch: Some(SwitchNeeds {
                ports: 3,
                ageing_ms: 3000,
            }),
            ..Needs::IPV4
        };
        assert!(switch.other_kind(&host));
        assert!(!switch.other_kind(&caps(3, false, false, true, false)));
        let udp = Needs {
            uses: &[Uses::Link, Uses::UdpSockets],
            ..Needs::IPV4
        };
        assert!(udp.unmet(&host).is_some() && !udp.other_kind(&host));
        let tls = Needs {
            uses: &[Uses::Service(crate::dut::service::ServiceKind::Tls)],
            ..Needs::IPV4
        };
        assert!(tls.other_kind(&host));
        assert!(!tls.other_kind(&caps(0, false, false, false, true)));
        let tcp = Needs {
            uses: &[Uses::Link, Uses::TcpSockets],
            ..Needs::IPV4
        };
        assert!(tcp.other_kind(&caps(0, false, false, false, true)));
        assert!(!tcp.other_kind(&host));
    }

    #[test]
    fn unmet_names_the_first_missing_plane() {
        let host = Needs {
            uses: &[Uses::Link, Uses::TcpSockets, Uses::UdpSockets, Uses::Tables],
            ..Needs::IPV4
        };
        assert_eq!(host.unmet(&caps(1, true, true, true, false)), None);
        assert_eq!(
            host.unmet(&caps(0, true, true, true, false)).as_deref(),
            Some("an IP host on an Ethernet link: the DUT has no link of its own")
        );
        assert_eq!(
            host.unmet(&caps(1, false, false, true, false)).as_deref(),
            Some("an IP host on an Ethernet link: the DUT has no sockets to call")
        );
        assert_eq!(
            host.unmet(&caps(1, true, false, true, false)).as_deref(),
            Some(
                "an IP host on an Ethernet link: the DUT has TCP sockets only, the check needs UDP sockets"
            )
        );
        assert_eq!(
            host.unmet(&caps(1, true, true, false, false)).as_deref(),
            Some("an IP host on an Ethernet link: the DUT has no tables to read")
        );
        let router = Needs {
            router: Some(RouterNeeds { segments: 2 }),
            uses: &[Uses::Link, Uses::Tables],
            ..Needs::IPV4
        };
        assert_eq!(router.unmet(&caps(2, false, false, true, false)), None);
        assert_eq!(
            router.unmet(&caps(1, true, true, true, false)).as_deref(),
            Some("a router with 2 segments: the DUT has a link of 1 port(s), the check needs 2")
        );
        let tls = Needs {
            uses: &[Uses::Service(ServiceKind::Tls)],
            ..Needs::IPV4
        };
        assert!(tls.uses_service(ServiceKind::Tls));
        assert!(!host.uses_service(ServiceKind::Tls));
        assert_eq!(tls.unmet(&caps(0, false, false, false, true)), None);
        assert_eq!(
            tls.unmet(&caps(1, true, true, true, false)).as_deref(),
            Some("a TLS service: the DUT serves no TLS")
        );
    }
}
