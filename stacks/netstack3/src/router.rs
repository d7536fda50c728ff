//! Netstack3 as a router: one `netstack3-core` stack (the same test bindings as
//! [`crate::Netstack3Host`]) with one Ethernet device per segment, IPv4 unicast forwarding
//! on every one, built when a check's needs ask for a router (`Needs::router`).
//!
//! Segment `i` carries the Linux router lab's plan (`10.78.<i+1>.1/24`, the lab's
//! `router_v4`), so the forward.* and nat.* checks run unchanged. Frames the stack sends
//! are queued with the port of the device they left (`take_ethernet_frames` names it);
//! the clock is virtual, advanced only while the harness waits, as on the host target.
//!
//! Every entry into Netstack3 runs under `catch_unwind`, as on the host target: a panic
//! becomes [`DutError::Gone`] and the target stays dead.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use net_types::ethernet::Mac;
use net_types::ip::{AddrSubnetEither, IpAddress as _, Ipv4, Mtu, Subnet, SubnetEither};
use net_types::{SpecifiedAddr, UnicastAddr, Witness as _};
use netstack3_core::InstantContext as _;
use netstack3_core::TimerId;
use netstack3_core::device::{
    DeviceId, EthernetCreationProperties, EthernetDeviceId, EthernetLinkDevice, LoopbackDeviceId,
    MaxEthernetFrameSize,
};
use netstack3_core::ip::{IpDeviceConfigurationUpdate, Ipv4DeviceConfigurationUpdate};
use netstack3_core::routes::{AddableEntry, AddableEntryEither, AddableMetric, RawMetric};
use netstack3_core::testutil::{CtxPairExt as _, FakeCtx};

use netconform::dut::fixed::FixedBehaviour;
use netconform::dut::{
    Control, Dut, DutError, Endpoints, Link, PortInfo, StateAnswer, StateQuery, Tables,
    VirtualDeadlines,
};
use netconform::models::route::{RouteError, RouteKind};
use netconform::sandbox::{ConntrackEntry, ConntrackTuple, MacAddr, RouteLookup};

use crate::{Bc, MAX_TIMERS_PER_WAIT, not_supported, panic_message, std_v4, v4};

/// The interface index of the loopback (the router's devices follow it, segment `i` at
/// `FIRST_IFINDEX + i`).
const LOOPBACK_IFINDEX: u32 = 1;
/// The interface index of segment 0's device.
const FIRST_IFINDEX: u32 = 2;

/// How to build a [`Netstack3Router`].
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How many segments (ports), at least 2.
    pub segments: usize,
    /// Link MTU of every segment.
    pub mtu: u32,
    /// The seed of the stack's RNG.
    pub random_seed: u128,
    /// Netstack3's declared fixed behaviour (see [`crate::Netstack3Config::fixed`]).
    pub fixed: Result<Option<Arc<FixedBehaviour>>, String>,
}

/// The router's MAC on segment `i` (locally administered, the harness's plan).
pub fn router_mac(i: usize) -> MacAddr {
    netconform::wire::plan::played(0, 0x10 + i as u8, 2)
}

/// The harness end's MAC on segment `i`.
pub fn harness_mac(i: usize) -> MacAddr {
    netconform::wire::plan::played(0, 0x10 + i as u8, 1)
}

/// The router's IPv4 address on segment `i` (`10.78.<i+1>.1`, prefix 24: the Linux router
/// lab's plan).
pub fn router_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 78, i as u8 + 1, 1)
}

/// The prefix length of every segment.
pub const PREFIX_LEN: u8 = 24;

struct RouterStack {
    ctx: FakeCtx,
    devices: Vec<EthernetDeviceId<Bc>>,
    loopback: Option<LoopbackDeviceId<Bc>>,
    poisoned: bool,
    /// Frames Netstack3 sent, with the port they left.
    from_stack: VecDeque<(usize, Vec<u8>)>,
    /// The port masquerade is on, once on.
    masquerade: Option<usize>,
    /// Ports some route sends a prefix off their own segment out of.
    off_link_out: Vec<usize>,
}

/// Netstack3 forwarding between several segments, on a virtual clock.
pub struct Netstack3Router {
    stack: Box<RouterStack>,
    dead: Option<String>,
    endpoints: Endpoints,
    config: RouterConfig,
    deadlines: VirtualDeadlines,
}

impl std::fmt::Debug for Netstack3Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstack3Router")
            .field("config", &self.config)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl Netstack3Router {
    /// Builds the router: `config.segments` devices, their addresses and on-link routes,
    /// IPv4 forwarding on every one.
    pub fn new(config: RouterConfig) -> Result<Netstack3Router, DutError> {
        if let Err(e) = &config.fixed {
            return Err(DutError::Malformed {
                detail: format!("Netstack3's declared fixed behaviour: {e}"),
            });
        }
        if config.segments < 2 || config.segments > 200 {
            return Err(not_supported(format!(
                "a router of {} segments (the netstack3 router has 2 to 200)",
                config.segments
            )));
        }
        let stack =
            catch_unwind(AssertUnwindSafe(|| RouterStack::new(&config))).map_err(|p| {
                DutError::Gone {
                    what: format!("netstack3 panicked: {}", panic_message(p.as_ref())),
                }
            })??;
        let endpoints = Endpoints {
            harness_mac: harness_mac(0),
            stack_mac: router_mac(0),
            stack_ipv4: Some((router_ip(0), PREFIX_LEN)),
            peer_ipv4: Some(Ipv4Addr::new(10, 78, 1, 2)),
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: config.mtu,
        };
        Ok(Netstack3Router {
            stack: Box::new(stack),
            dead: None,
            endpoints,
            config,
            deadlines: VirtualDeadlines::default(),
        })
    }

    /// Runs `f` on Netstack3's context under the target's guard (tests, negative controls).
    pub fn with_netstack3<T>(&mut self, f: impl FnOnce(&mut FakeCtx) -> T) -> Result<T, DutError> {
        self.guarded(|s| {
            let out = f(&mut s.ctx);
            s.collect();
            Ok(out)
        })
    }

    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut RouterStack) -> Result<T, DutError>,
    ) -> Result<T, DutError> {
        if let Some(what) = &self.dead {
            return Err(DutError::Gone { what: what.clone() });
        }
        let stack = &mut self.stack;
        match catch_unwind(AssertUnwindSafe(|| f(stack))) {
            Ok(r) => r,
            Err(panic) => {
                let what = format!("netstack3 panicked: {}", panic_message(panic.as_ref()));
                self.stack.poisoned = true;
                self.dead = Some(what.clone());
                Err(DutError::Gone { what })
            }
        }
    }

    fn virtual_deadline(&mut self, deadline: std::time::Instant) -> Duration {
        let now = netconform::time::Instant::from_micros(self.stack.now().as_micros() as u64);
        let at = self.deadlines.map(deadline, now);
        Duration::from_micros(at.total_micros())
    }

    fn port_infos(&self) -> Vec<PortInfo> {
        (0..self.config.segments)
            .map(|i| PortInfo {
                ifindex: FIRST_IFINDEX + i as u32,
                name: format!("ns3eth{i}"),
                mac: router_mac(i),
                harness_mac: harness_mac(i),
                ipv4: Some((router_ip(i), PREFIX_LEN)),
                ipv6: None,
                mtu: self.config.mtu,
            })
            .collect()
    }
}

impl RouterStack {
    fn new(config: &RouterConfig) -> Result<RouterStack, DutError> {
        let mut ctx = FakeCtx::default();
        ctx.bindings_ctx.seed_rng(config.random_seed);
        let max_frame_size = MaxEthernetFrameSize::from_mtu(Mtu::new(config.mtu))
            .ok_or_else(|| not_supported(format!("an MTU of {}", config.mtu)))?;
        let mut devices = Vec::new();
        for i in 0..config.segments {
            let mac = UnicastAddr::new(Mac::new(router_mac(i).0))
                .ok_or_else(|| not_supported("a router MAC that is not unicast"))?;
            let device = ctx
                .core_api()
                .device::<EthernetLinkDevice>()
                .add_device_with_default_state(
                    EthernetCreationProperties {
                        mac,
                        max_frame_size,
                        tx_offload_spec: Default::default(),
                    },
                    RawMetric(100),
                );
            let id: DeviceId<Bc> = device.clone().into();
            // Nothing sent unasked (RFC 5227 probes, IGMP reports), as in the Linux lab;
            // IPv4 unicast forwarding on.
            let _ = ctx
                .core_api()
                .device_ip::<Ipv4>()
                .update_configuration(
                    &id,
                    Ipv4DeviceConfigurationUpdate {
                        ip_config: IpDeviceConfigurationUpdate {
                            ip_enabled: Some(true),
                            gmp_enabled: Some(false),
                            dad_transmits: Some(None),
                            unicast_forwarding_enabled: Some(true),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                )
                .map_err(|e| not_supported(format!("IPv4 device configuration: {e:?}")))?;
            let ip = router_ip(i);
            let addr = AddrSubnetEither::new(v4(ip).into(), PREFIX_LEN)
                .map_err(|e| not_supported(format!("IPv4 address {ip}: {e:?}")))?;
            ctx.core_api()
                .device_ip_any()
                .add_ip_addr_subnet(&id, addr)
                .map_err(|e| not_supported(format!("IPv4 address {ip}: {e:?}")))?;
            let subnet = Subnet::new(v4(ip).mask(PREFIX_LEN), PREFIX_LEN)
                .map_err(|e| not_supported(format!("IPv4 subnet: {e:?}")))?;
            ctx.test_api()
                .add_route(AddableEntryEither::without_gateway(
                    SubnetEither::V4(subnet),
                    id,
                    AddableMetric::ExplicitMetric(RawMetric(0)),
                ))
                .map_err(|e| not_supported(format!("the on-link route {subnet:?}: {e:?}")))?;
            devices.push(device);
        }
        let loopback = ctx.test_api().add_loopback();
        let mut stack = RouterStack {
            ctx,
            devices,
            loopback: Some(loopback),
            poisoned: false,
            from_stack: VecDeque::new(),
            masquerade: None,
            off_link_out: Vec::new(),
        };
        stack.collect();
        stack.from_stack.clear();
        Ok(stack)
    }

    fn now(&self) -> Duration {
        self.ctx.bindings_ctx.now().offset
    }

    fn port_of(&self, device: &DeviceId<Bc>) -> Option<usize> {
        self.devices
            .iter()
            .position(|d| &DeviceId::<Bc>::from(d.clone()) == device)
    }

    fn collect(&mut self) {
        for (device, frame) in self.ctx.bindings_ctx.take_ethernet_frames() {
            let port = self.devices.iter().position(|d| d.downgrade() == device);
            // A frame of a device the router does not have cannot happen; were it to, it
            // goes to port 0 rather than vanish.
            self.from_stack.push_back((port.unwrap_or(0), frame));
        }
        // Neighbour and other events: the router target keeps no table of them, but the
        // test bindings refuse to be dropped with events nobody took.
        let _ = self.ctx.bindings_ctx.take_events();
    }

    fn receive(&mut self, port: usize, frame: Vec<u8>) -> Result<(), DutError> {
        let device = self.devices.get(port).cloned().ok_or_else(|| {
            not_supported(format!(
                "port {port}: the router has {}",
                self.devices.len()
            ))
        })?;
        self.ctx
            .test_api()
            .receive_ethernet_frame(&device, packet::Buf::new(frame, ..));
        self.collect();
        Ok(())
    }

    fn next_timer(&self) -> Option<Duration> {
        self.ctx
            .bindings_ctx
            .timer_ctx()
            .timers
            .peek()
            .map(|t| t.0.offset)
    }

    /// Fires timers in order until `done` holds or the next one lies beyond `deadline`.
    fn wait_until(
        &mut self,
        deadline: Duration,
        mut done: impl FnMut(&mut RouterStack) -> bool,
    ) -> bool {
        for _ in 0..MAX_TIMERS_PER_WAIT {
            self.collect();
            if done(self) {
                return true;
            }
            match self.next_timer() {
                Some(at) if at <= deadline => {
                    let _ = self.ctx.trigger_next_timer::<TimerId<Bc>>();
                }
                _ => {
                    let now = self.now();
                    if deadline > now {
                        self.ctx.bindings_ctx.sleep(deadline - now);
                    }
                    self.collect();
                    return done(self);
                }
            }
        }
        false
    }

    fn ifindex(&self, device: &DeviceId<Bc>) -> (u32, String) {
        match self.port_of(device) {
            Some(i) => (FIRST_IFINDEX + i as u32, format!("ns3eth{i}")),
            None => (LOOPBACK_IFINDEX, "lo".into()),
        }
    }

    /// `ip route get dst` (IPv4) on Netstack3's output route resolution.
    fn route_get(&mut self, dst: IpAddr, src: Option<IpAddr>) -> Result<StateAnswer, DutError> {
        use netstack3_base::IpDeviceAddr;
        use netstack3_core::routes::{NextHop, RoutableIpAddr};
        let none = StateAnswer::NoRoute {
            dst,
            failure: RouteError::NetUnreachable,
        };
        let IpAddr::V4(d) = dst else {
            return Err(not_supported(
                "IPv6 route lookups on the netstack3 router (its segments are IPv4 only)",
            ));
        };
        let d = RoutableIpAddr::new(v4(d));
        let marks = netstack3_core::routes::Marks::default();
        let r = match src {
            None => self
                .ctx
                .test_api()
                .resolve_route_with_marks::<Ipv4>(d, &marks),
            Some(IpAddr::V4(s)) => match IpDeviceAddr::new(v4(s)) {
                Some(s) => self
                    .ctx
                    .test_api()
                    .resolve_route_with_src_addr::<Ipv4>(s, d),
                None => return Ok(none),
            },
            Some(IpAddr::V6(_)) => return Ok(none),
        };
        let Ok(r) = r else {
            return Ok(none);
        };
        let (oif, dev) = self.ifindex(&r.device);
        let (kind, gateway) = match (r.local_delivery_device.is_some(), r.next_hop) {
            (true, _) => ("Local", None),
            (false, NextHop::Broadcast(_)) => ("Broadcast", None),
            (false, NextHop::Gateway(g)) => ("Unicast", Some(IpAddr::V4(std_v4(g.get())))),
            (false, NextHop::RemoteAsNeighbor) => ("Unicast", None),
        };
        Ok(StateAnswer::Route {
            lookup: RouteLookup {
                dst,
                oif: Some(oif),
                gateway,
                src: Some(IpAddr::V4(std_v4(r.src_addr.addr()))),
                kind: kind.to_string(),
            },
            dev: Some(dev),
        })
    }

    fn device_of_ifindex(&self, ifindex: u32) -> Option<DeviceId<Bc>> {
        let i = ifindex.checked_sub(FIRST_IFINDEX)? as usize;
        self.devices.get(i).cloned().map(Into::into)
    }

    /// The device whose segment holds `addr`.
    fn device_on_link(&self, addr: Ipv4Addr) -> Option<DeviceId<Bc>> {
        let i = (0..self.devices.len()).find(|&i| {
            let mask = u32::MAX << (32 - u32::from(PREFIX_LEN));
            u32::from(addr) & mask == u32::from(router_ip(i)) & mask
        })?;
        self.devices.get(i).cloned().map(Into::into)
    }

    fn add_v4_route(
        &mut self,
        dst: ipnet::Ipv4Net,
        gateway: Option<Ipv4Addr>,
        device: DeviceId<Bc>,
        metric: Option<u32>,
        replace: bool,
    ) -> Result<(), DutError> {
        let bad = |e: String| not_supported(format!("route {dst}: {e}"));
        let n = dst.trunc();
        let port = self.port_of(&device).unwrap_or(0);
        let on_link = n.prefix_len() >= PREFIX_LEN
            && u32::from(n.network()) & (u32::MAX << (32 - u32::from(PREFIX_LEN)))
                == u32::from(router_ip(port)) & (u32::MAX << (32 - u32::from(PREFIX_LEN)));
        if !on_link && self.masquerade.is_some_and(|m| m != port) {
            return Err(bad(format!(
                "with masquerade on, a prefix off segment {port} out of port {port}: \
                     the masquerade rule tells the egress port by destination (see \
                     masquerade), which such a route would make wrong"
            )));
        }
        let subnet =
            Subnet::new(v4(n.network()), n.prefix_len()).map_err(|e| bad(format!("{e:?}")))?;
        if replace {
            let _ = self.ctx.test_api().del_routes_to_subnet(subnet.into());
        }
        let metric = AddableMetric::ExplicitMetric(RawMetric(metric.unwrap_or(0)));
        let entry: AddableEntryEither<DeviceId<Bc>> = match gateway {
            None => AddableEntryEither::without_gateway(subnet.into(), device, metric),
            Some(g) => {
                let g = SpecifiedAddr::new(v4(g)).ok_or_else(|| bad("gateway 0.0.0.0".into()))?;
                AddableEntry::with_gateway(subnet, device, g, metric).into()
            }
        };
        self.ctx
            .test_api()
            .add_route(entry)
            .map_err(|e| bad(format!("Netstack3 refused it: {e:?}")))?;
        if !on_link {
            self.off_link_out.push(port);
        }
        Ok(())
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        match control {
            Control::Route {
                dst,
                prefix_len,
                via,
            } => {
                let net = ipnet::Ipv4Net::new(*dst, *prefix_len)
                    .map_err(|e| not_supported(format!("{control}: {e}")))?;
                let device = self.device_on_link(*via).ok_or_else(|| {
                    not_supported(format!("{control}: {via} is on none of the segments"))
                })?;
                self.add_v4_route(net, Some(*via), device, None, true)
            }
            Control::AddRoute(route) => match (route.dst, route.kind) {
                _ if route.prefsrc.is_some() => Err(not_supported(format!(
                    "{control}: Netstack3's routes carry no preferred source address"
                ))),
                (ipnet::IpNet::V4(dst), RouteKind::Unicast { gateway, oif }) => {
                    let device = self.device_of_ifindex(oif).ok_or_else(|| {
                        not_supported(format!("{control}: the router has no interface {oif}"))
                    })?;
                    let gateway = match gateway {
                        None => None,
                        Some(IpAddr::V4(g)) => Some(g),
                        Some(IpAddr::V6(_)) => {
                            return Err(not_supported(format!(
                                "{control}: an IPv6 gateway for IPv4"
                            )));
                        }
                    };
                    self.add_v4_route(dst, gateway, device, route.metric, false)
                }
                (ipnet::IpNet::V6(_), _) => Err(not_supported(format!(
                    "{control}: the netstack3 router's segments are IPv4 only"
                ))),
                _ => Err(not_supported(format!(
                    "{control}: Netstack3's route table holds unicast routes only (through a \
                     gateway or on-link); it has no unreachable, prohibit or blackhole route"
                ))),
            },
            Control::Forwarding(on) => {
                for d in self.devices.clone() {
                    self.ctx
                        .test_api()
                        .set_unicast_forwarding_enabled::<Ipv4>(&d.into(), *on);
                }
                Ok(())
            }
            Control::FlushNeighbours => {
                for d in self.devices.clone() {
                    self.ctx
                        .core_api()
                        .neighbor::<Ipv4, EthernetLinkDevice>()
                        .flush_table(&d);
                }
                self.collect();
                Ok(())
            }
            Control::Masquerade { port } => self.masquerade(*port),
            Control::FlushConntrack => Err(not_supported(format!(
                "{control}: netstack3-filter 0.1.0's FilterApi has no call that empties the \
                 conntrack table (only set_filter_state and inspect_state)"
            ))),
            other => Err(not_supported(format!("{other} on the netstack3 router"))),
        }
    }

    /// Masquerade out of `port`: one rule in the EGRESS NAT hook, `Action::Masquerade`
    /// (netstack3-filter's `masquerade`, the source becomes the outgoing interface's
    /// address).
    ///
    /// The rule cannot name the outgoing interface: the test bindings' device identifiers
    /// (`MonotonicIdentifier`) answer `id_matches` and `name_matches` with
    /// `unimplemented!()` (a rule that names one panics on the first packet; the device
    /// class matcher of their `()` class is `unimplemented!()` too). So on a two-segment
    /// router the rule matches what leaves by `port` by its destination: every packet whose
    /// destination is not on the other segment. That is exact while no route sends another
    /// prefix out of the other port; such a route, before or after, is refused. With more
    /// segments the destination no longer says which port a packet leaves by: refused.
    fn masquerade(&mut self, port: usize) -> Result<(), DutError> {
        use netstack3_core::filter::{
            Action, Hook, NatRoutines, PacketMatcher, Routine, Routines, Rule,
        };
        use netstack3_core::ip::{AddressMatcher, AddressMatcherType, SubnetMatcher};
        if self.devices.len() != 2 || port > 1 {
            return Err(not_supported(format!(
                "masquerade out of port {port} of {} segments: the test bindings' devices \
                 cannot be matched by interface (id_matches and name_matches are \
                 unimplemented!()), so the netstack3 router tells the egress port by \
                 destination, which it can only on two segments",
                self.devices.len()
            )));
        }
        if self.off_link_out.iter().any(|&p| p != port) {
            return Err(not_supported(format!(
                "masquerade out of port {port}: a route sends a prefix off segment {} out of \
                 port {}, and the masquerade rule tells the egress port by destination (the \
                 test bindings' devices cannot be matched by interface)",
                1 - port,
                1 - port
            )));
        }
        let other = router_ip(1 - port);
        let subnet = Subnet::new(v4(other).mask(PREFIX_LEN), PREFIX_LEN)
            .map_err(|e| not_supported(format!("the subnet of {other}: {e:?}")))?;
        let rule = Rule {
            matcher: PacketMatcher {
                dst_address: Some(AddressMatcher {
                    matcher: AddressMatcherType::Subnet(SubnetMatcher(subnet)),
                    invert: true,
                }),
                ..Default::default()
            },
            action: Action::Masquerade { src_port: None },
            validation_info: (),
        };
        let v4_routines: Routines<Ipv4, Bc, ()> = Routines {
            nat: NatRoutines {
                egress: Hook {
                    routines: vec![Routine { rules: vec![rule] }],
                },
                ..Default::default()
            },
            ..Default::default()
        };
        self.ctx
            .core_api()
            .filter()
            .set_filter_state(v4_routines, Routines::default())
            .map_err(|e| not_supported(format!("masquerade: Netstack3 refused the rule: {e:?}")))?;
        self.masquerade = Some(port);
        Ok(())
    }

    /// The IPv4 conntrack table, read through `FilterApi::inspect_state` (the only reader
    /// netstack3-filter 0.1.0 has): every connection's original and reply tuple.
    fn conntrack(&mut self) -> Result<Vec<ConntrackEntry>, DutError> {
        let mut out = Vec::new();
        self.ctx.core_api().filter().inspect_state(&mut Flat {
            path: String::new(),
            out: &mut out,
            unnamed: 0,
        });
        conntrack_entries(&out)
    }

    fn teardown(&mut self) {
        for device in std::mem::take(&mut self.devices) {
            self.ctx.test_api().clear_routes_and_remove_device(device);
        }
        if let Some(loopback) = self.loopback.take() {
            self.ctx.test_api().clear_routes_and_remove_device(loopback);
        }
        let _ = self.ctx.bindings_ctx.take_events();
        let _ = self.ctx.bindings_ctx.take_ethernet_frames();
    }
}

impl Drop for RouterStack {
    /// Tears the stack down; after a panic its state is left unfreed (memory only).
    fn drop(&mut self) {
        let clean = !self.poisoned && catch_unwind(AssertUnwindSafe(|| self.teardown())).is_ok();
        if !clean {
            std::mem::forget(std::mem::take(&mut self.devices));
            std::mem::forget(self.loopback.take());
            std::mem::forget(std::mem::take(&mut self.ctx));
        }
    }
}

impl Dut for Netstack3Router {
    fn name(&self) -> &str {
        "netstack3"
    }

    fn environment(&self) -> Vec<String> {
        let mut env = vec![
            format!("netstack3-core version = {}", crate::NETSTACK3_VERSION),
            format!("netstack3 random seed = {:#x}", self.config.random_seed),
            format!("mtu = {}", self.config.mtu),
            "clock = virtual (time advances only while the harness waits)".to_string(),
            "netstack3 router = one FakeCtx, one Ethernet device per segment, IPv4 unicast \
             forwarding on"
                .to_string(),
        ];
        for i in 0..self.config.segments {
            env.push(format!(
                "segment {i}: router {}/{PREFIX_LEN} on ns3eth{i}",
                router_ip(i)
            ));
        }
        env
    }

    fn fixed_behaviour(&self) -> Option<Arc<FixedBehaviour>> {
        self.config.fixed.clone().ok().flatten()
    }

    fn virtual_now(&self) -> Option<netconform::time::Instant> {
        Some(netconform::time::Instant::from_micros(
            self.stack.now().as_micros() as u64,
        ))
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn link(&mut self) -> Option<&mut dyn Link> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn Tables> {
        Some(self)
    }
}

impl Link for Netstack3Router {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.send_frame_on(0, frame)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        let deadline = self.virtual_deadline(deadline);
        self.guarded(|s| {
            let on_0 = |s: &mut RouterStack| s.from_stack.iter().any(|(p, _)| *p == 0);
            if !s.wait_until(deadline, on_0) {
                return Ok(None);
            }
            let i = s.from_stack.iter().position(|(p, _)| *p == 0);
            Ok(i.and_then(|i| s.from_stack.remove(i)).map(|(_, f)| f))
        })
    }

    fn ports(&self) -> usize {
        self.config.segments
    }

    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        let frame = frame.to_vec();
        self.guarded(|s| s.receive(port, frame))
    }

    fn recv_frame_any(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        let deadline = self.virtual_deadline(deadline);
        self.guarded(|s| {
            if s.wait_until(deadline, |s| !s.from_stack.is_empty()) {
                Ok(s.from_stack.pop_front())
            } else {
                Ok(None)
            }
        })
    }
}

impl Tables for Netstack3Router {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        match query {
            StateQuery::Ports => {
                let ports = self.port_infos();
                self.guarded(|_| Ok(StateAnswer::Ports(ports)))
            }
            StateQuery::RouteGet(dst) => self.guarded(|s| s.route_get(*dst, None)),
            StateQuery::RouteGetFrom { dst, src } => {
                self.guarded(|s| s.route_get(*dst, Some(*src)))
            }
            StateQuery::Conntrack => self.guarded(|s| Ok(StateAnswer::Conntrack(s.conntrack()?))),
            other => Err(not_supported(format!("{other:?} on the netstack3 router"))),
        }
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.guarded(|s| s.control(control))
    }
}

/// An inspector that writes every value Netstack3 records as `(path, value)`, the path the
/// names of its children joined by `/` (unnamed children numbered from 0).
struct Flat<'a> {
    path: String,
    out: &'a mut Vec<(String, String)>,
    unnamed: usize,
}

impl netstack3_core::inspect::Inspector for Flat<'_> {
    type ChildInspector<'l> = Flat<'l>;

    fn record_child<F: FnOnce(&mut Flat<'_>)>(&mut self, name: &str, f: F) {
        let mut child = Flat {
            path: format!("{}/{name}", self.path),
            out: &mut *self.out,
            unnamed: 0,
        };
        f(&mut child);
    }

    fn record_unnamed_child<F: FnOnce(&mut Flat<'_>)>(&mut self, f: F) {
        let n = self.unnamed;
        self.unnamed += 1;
        self.record_child(&n.to_string(), f);
    }

    fn record_usize<T: Into<usize>>(&mut self, name: &str, value: T) {
        self.record_string(name, value.into().to_string());
    }

    fn record_uint<T: Into<u64>>(&mut self, name: &str, value: T) {
        self.record_string(name, value.into().to_string());
    }

    fn record_int<T: Into<i64>>(&mut self, name: &str, value: T) {
        self.record_string(name, value.into().to_string());
    }

    fn record_double<T: Into<f64>>(&mut self, name: &str, value: T) {
        self.record_string(name, value.into().to_string());
    }

    fn record_str(&mut self, name: &str, value: &str) {
        self.record_string(name, value.to_string());
    }

    fn record_string(&mut self, name: &str, value: String) {
        self.out.push((format!("{}/{name}", self.path), value));
    }

    fn record_bool(&mut self, name: &str, value: bool) {
        self.record_string(name, value.to_string());
    }
}

/// The IPv4 connections in an inspection of the filter state
/// (`/IPv4/conntrack/connections/<n>/{original,reply}_tuple/<field>`).
fn conntrack_entries(values: &[(String, String)]) -> Result<Vec<ConntrackEntry>, DutError> {
    use std::collections::BTreeMap;
    const PREFIX: &str = "/IPv4/conntrack/connections/";
    let mut connections: BTreeMap<usize, BTreeMap<&str, &str>> = BTreeMap::new();
    for (path, value) in values {
        let Some(rest) = path.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((n, field)) = rest.split_once('/') else {
            continue;
        };
        let n: usize = n.parse().map_err(|_| malformed(path, value))?;
        connections.entry(n).or_default().insert(field, value);
    }
    let mut entries = Vec::new();
    for fields in connections.values() {
        let get = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| DutError::Malformed {
                    detail: format!("netstack3 conntrack inspection: a connection without {name}"),
                })
        };
        let tuple = |dir: &str| -> Result<ConntrackTuple, DutError> {
            let addr = |f: &str| -> Result<IpAddr, DutError> {
                let v = get(&format!("{dir}/{f}"))?;
                v.parse().map_err(|_| malformed(f, v))
            };
            let port = |f: &str| -> Result<u16, DutError> {
                let v = get(&format!("{dir}/{f}"))?;
                v.parse().map_err(|_| malformed(f, v))
            };
            Ok(ConntrackTuple {
                src: addr("src_addr")?,
                dst: addr("dst_addr")?,
                sport: port("src_port_or_id")?,
                dport: port("dst_port_or_id")?,
            })
        };
        let proto = get("original_tuple/protocol")?;
        let protocol = match proto {
            "TCP" => 6,
            "UDP" => 17,
            "ICMP" => 1,
            other => other
                .strip_prefix("Other(")
                .and_then(|p| p.strip_suffix(')'))
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| malformed("protocol", other))?,
        };
        entries.push(ConntrackEntry {
            protocol,
            timeout_s: 0,
            state: None,
            original: tuple("original_tuple")?,
            reply: tuple("reply_tuple")?,
            flags: Vec::new(),
        });
    }
    Ok(entries)
}

fn malformed(what: &str, value: &str) -> DutError {
    DutError::Malformed {
        detail: format!("netstack3 conntrack inspection: {what} = {value:?}"),
    }
}
