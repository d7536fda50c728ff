//! `model_arp`: packets to send, ARP frames and the passing of time, through an [`ArpHost`],
//! with the cache's invariants after every event.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use arbitrary::{Arbitrary, Unstructured};

use crate::fuzz::Outcome;
use crate::models::arp::{
    ArpAccept, ArpHost, ArpIgnore, ArpIn, ArpParams, ArpPolicy, ArpProfile, Delivery, EntryView,
    HostConfig, Nud, Output, Packet, PacketId, Timed,
};
use crate::time::{Duration, Instant};
use crate::wire::MacAddr;

const T: &str = "model_arp";

const OWN_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const OWN_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

/// Neighbours, the host itself, the subnet broadcast, 0.0.0.0, an off-link address, a group.
const IPS: [Ipv4Addr; 8] = [
    Ipv4Addr::new(10, 0, 0, 2),
    Ipv4Addr::new(10, 0, 0, 3),
    GATEWAY,
    OWN_IP,
    Ipv4Addr::new(10, 0, 0, 255),
    Ipv4Addr::UNSPECIFIED,
    Ipv4Addr::new(192, 0, 2, 9),
    Ipv4Addr::new(224, 0, 0, 1),
];

const MACS: [MacAddr; 7] = [
    MacAddr([2, 0, 0, 0, 0, 1]),
    MacAddr([2, 0, 0, 0, 0, 2]),
    MacAddr([2, 0, 0, 0, 0, 3]),
    OWN_MAC,
    MacAddr::ZERO,
    MacAddr::BROADCAST,
    MacAddr([1, 0, 0x5e, 0, 0, 1]),
];

#[derive(Debug, Arbitrary)]
struct Setup {
    linux: bool,
    accept: u8,
    ignore: u8,
    forwarding: bool,
    reachable: u8,
    retrans: u8,
    delay_probe: u8,
    locktime: u8,
    probes: [u8; 4],
}

#[derive(Debug, Arbitrary)]
enum Event {
    Advance {
        dt: u8,
    },
    Send {
        dt: u8,
        dst: u8,
        forwarded: bool,
    },
    Receive {
        dt: u8,
        delivery: u8,
        request: bool,
        sha: u8,
        spa: u8,
        tha: u8,
        tpa: u8,
        /// 0: well formed; else one field broken.
        broken: u8,
    },
}

fn config(s: &Setup) -> HostConfig {
    let ms = |m: u64| Duration::from_millis(m);
    let reachable = ms(10 + 10 * u64::from(s.reachable % 8));
    HostConfig {
        mac: OWN_MAC,
        addr: OWN_IP,
        prefix_len: 24,
        gateway: Some(GATEWAY),
        forwarding: s.forwarding,
        policy: ArpPolicy {
            accept: [ArpAccept::Never, ArpAccept::Always, ArpAccept::SameSubnet]
                [usize::from(s.accept % 3)],
            ignore: [
                ArpIgnore::Any,
                ArpIgnore::OnInterface,
                ArpIgnore::SameSubnet,
                ArpIgnore::Never,
            ][usize::from(s.ignore % 4)],
        },
        params: ArpParams {
            reachable,
            base_reachable: reachable,
            retrans: ms(1 + u64::from(s.retrans % 50)),
            delay_probe: ms(1 + u64::from(s.delay_probe % 30)),
            locktime: ms(u64::from(s.locktime % 40)),
            ucast_probes: u32::from(s.probes[0] % 4),
            mcast_probes: u32::from(s.probes[1] % 4),
            app_probes: u32::from(s.probes[2] % 2),
            mcast_reprobes: u32::from(s.probes[3] % 2),
            tick: Duration::from_millis(4),
            timer_floor: Duration::from_millis(8),
        },
        expiring: None,
        rfc4861: None,
        tick_nud: None,
    }
}

/// What the driver has done so far, for the checks that span events.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The latest instant fed in.
    pub(crate) now: Instant,
    /// The instant of the latest output.
    pub(crate) last_output: Instant,
    /// Every address an entry may exist for: next hops of sent packets, ARP senders.
    pub(crate) known: BTreeSet<Ipv4Addr>,
    /// Packets handed to the host, by id.
    pub(crate) sent: BTreeMap<PacketId, Packet>,
    /// Packets that left (each may leave once).
    pub(crate) transmitted: BTreeSet<PacketId>,
    /// The profile caches any sender hardware address
    /// ([`crate::models::arp::ArpDeviation::CachesNonUnicastHardwareAddress`]).
    pub(crate) caches_any_mac: bool,
}

/// The invariants that hold after any event: entries only for addresses the host had a
/// reason to create them for, a MAC exactly in the valid states, probe counts within the
/// profile's bounds, no timer left that is already due, outputs in time order and never
/// after the time fed in, requests never to a zero or group MAC other than broadcast, each
/// packet transmitted at most once and only to the next hop its destination has, every host
/// unreachable about a forwarded packet that was dropped.
pub(crate) fn check_host(
    host: &ArpHost,
    outputs: &[Timed],
    history: &mut History,
) -> Result<(), String> {
    let cfg = host.config();
    let p = cfg.params;
    for e in host.entries() {
        if !history.known.contains(&e.ip) {
            return Err(format!("an entry for {} nothing asked for: {e:?}", e.ip));
        }
        if e.state.is_valid() != e.mac.is_some() {
            return Err(format!("{e:?}: a MAC exactly in the valid states"));
        }
        let max = p.ucast_probes + p.app_probes + p.mcast_probes.max(p.mcast_reprobes);
        let bound = match e.state {
            Nud::Incomplete => p.ucast_probes + p.app_probes + p.mcast_probes,
            Nud::Probe => p.ucast_probes + p.app_probes + p.mcast_reprobes,
            _ => max,
        };
        if e.probes > bound {
            return Err(format!("{e:?}: more than {bound} probes"));
        }
    }
    if let Some(t) = host.next_timer()
        && t <= history.now
    {
        return Err(format!(
            "a timer due at {} ms left after advancing to {} ms",
            t.total_millis(),
            history.now.total_millis()
        ));
    }
    for o in outputs {
        if o.at < history.last_output || o.at > history.now {
            return Err(format!(
                "{} at {} µs: after {} µs, before {} µs",
                o.output,
                o.at.total_micros(),
                history.last_output.total_micros(),
                history.now.total_micros()
            ));
        }
        history.last_output = o.at;
        match &o.output {
            Output::Request {
                target,
                eth_dst,
                sender_ip,
            } => {
                // Only a profile that caches group and zero addresses probes them.
                let unicast_ok = history.caches_any_mac
                    || (*eth_dst != MacAddr::ZERO && !eth_dst.is_multicast());
                if *sender_ip != cfg.addr || !(*eth_dst == MacAddr::BROADCAST || unicast_ok) {
                    return Err(format!("{}", o.output));
                }
                if !history.known.contains(target) {
                    return Err(format!("{}: for an address nothing asked for", o.output));
                }
            }
            Output::Reply { for_ip, .. } if *for_ip != cfg.addr => {
                return Err(format!("{}: not for the host's address", o.output));
            }
            Output::Transmit {
                packet, next_hop, ..
            } => {
                if !history.transmitted.insert(packet.id) {
                    return Err(format!("{}: transmitted twice", o.output));
                }
                if cfg.next_hop(packet.dst) != Some(*next_hop) {
                    return Err(format!("{}: not the next hop of {}", o.output, packet.dst));
                }
                if let PacketId::HostUnreachable(n) = packet.id {
                    let about = history.sent.get(&PacketId::Forwarded(n));
                    if about.is_none_or(|f| f.src != packet.dst)
                        || history.transmitted.contains(&PacketId::Forwarded(n))
                    {
                        return Err(format!("{}: about a packet that was not dropped", o.output));
                    }
                } else if history.sent.get(&packet.id) != Some(packet) {
                    return Err(format!("{}: a packet the host was not given", o.output));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn view(host: &ArpHost, ip: Ipv4Addr) -> Option<EntryView> {
    host.entry(ip)
}

/// One entry of the transcript, for the determinism check.
#[derive(Debug, PartialEq)]
enum Step {
    /// An output and its time.
    Output(crate::models::arp::Timed),
    /// The neighbour table after the last event.
    Entries(Vec<EntryView>),
}

fn transcript(u: &mut Unstructured<'_>) -> Result<Vec<Step>, String> {
    let setup = Setup::arbitrary(u).map_err(|e| e.to_string())?;
    let cfg = config(&setup);
    let profile = if setup.linux {
        ArpProfile::linux()
    } else {
        ArpProfile::rfc()
    };
    let mut host = ArpHost::new(cfg.clone(), profile);
    let mut history = History {
        caches_any_mac: setup.linux,
        ..History::default()
    };
    let mut out = Vec::new();
    let mut next_id = 0u32;
    for ev in super::events::<Event>(u) {
        let outputs = match ev {
            Event::Advance { dt } => {
                history.now = history.now + Duration::from_millis(u64::from(dt));
                host.advance(history.now)
            }
            Event::Send { dt, dst, forwarded } => {
                history.now = history.now + Duration::from_millis(u64::from(dt));
                next_id += 1;
                let dst = IPS[usize::from(dst) % IPS.len()];
                let (id, src) = if forwarded {
                    (PacketId::Forwarded(next_id), Ipv4Addr::new(10, 0, 0, 3))
                } else {
                    (PacketId::Local(next_id), OWN_IP)
                };
                let packet = Packet { id, src, dst };
                history.sent.insert(id, packet);
                let hop = cfg.next_hop(dst);
                history.known.extend(hop);
                // A host unreachable goes back to the source's next hop.
                history.known.extend(cfg.next_hop(src));
                let outputs = host.send(history.now, packet);
                // The packet leaves at once exactly when its next hop ends up valid.
                if let Some(hop) = hop {
                    let entry = view(&host, hop);
                    let sent_now = outputs.iter().any(
                        |o| matches!(&o.output, Output::Transmit { packet: p, .. } if p.id == id),
                    );
                    let valid = entry.is_some_and(|e| e.state.is_valid());
                    if valid != sent_now {
                        return Err(format!(
                            "{id:?} to {dst} via {hop}: entry {entry:?}, transmitted now: {sent_now}"
                        ));
                    }
                    if let (Some(e), Some(Output::Transmit { dst_mac, .. })) =
                        (entry, outputs.last().map(|o| &o.output))
                        && valid
                        && Some(*dst_mac) != e.mac
                    {
                        return Err(format!("{id:?} sent to {dst_mac}, the entry says {e:?}"));
                    }
                }
                outputs
            }
            Event::Receive {
                dt,
                delivery,
                request,
                sha,
                spa,
                tha,
                tpa,
                broken,
            } => {
                history.now = history.now + Duration::from_millis(u64::from(dt));
                let sha = MACS[usize::from(sha) % MACS.len()];
                let spa = IPS[usize::from(spa) % IPS.len()];
                let tpa = IPS[usize::from(tpa) % IPS.len()];
                let op = if request { 1 } else { 2 };
                let mut arp = ArpIn::new(op, sha, spa, MACS[usize::from(tha) % MACS.len()], tpa);
                match broken % 8 {
                    1 => arp.hw_len = 8,
                    2 => arp.proto_type = 0x86dd,
                    3 => arp.op = 3,
                    4 => arp.truncated = true,
                    _ => {}
                }
                let well_formed = broken % 8 == 0 || broken % 8 > 4;
                let delivery = [
                    Delivery::Unicast,
                    Delivery::Broadcast,
                    Delivery::Multicast,
                    Delivery::OtherHost,
                ][usize::from(delivery % 4)];
                history.known.insert(spa);
                let before = view(&host, spa);
                let outputs = host.receive(history.now, delivery, &arp);
                let after = view(&host, spa);
                let unicast_sha = sha != MacAddr::ZERO && !sha.is_multicast();
                let plain = well_formed && delivery != Delivery::OtherHost && unicast_sha;
                // A reply for an entry that holds no address (or the same one) confirms it.
                if plain
                    && !request
                    && delivery == Delivery::Unicast
                    && spa != Ipv4Addr::UNSPECIFIED
                    && !tpa.is_multicast()
                    && before.is_some_and(|b| b.mac.is_none_or(|m| m == sha))
                    && after.is_none_or(|a| a.state != Nud::Reachable || a.mac != Some(sha))
                {
                    return Err(format!(
                        "a reply from {spa} at {sha}: {before:?} -> {after:?}, not REACHABLE"
                    ));
                }
                // A request for the host's address from a neighbour is answered, once.
                let answered = outputs
                    .iter()
                    .filter(|o| matches!(&o.output, Output::Reply { to_mac, .. } if *to_mac == sha))
                    .count();
                let neighbour =
                    cfg.on_link(spa) && ![OWN_IP, Ipv4Addr::new(10, 0, 0, 255)].contains(&spa);
                if plain
                    && request
                    && tpa == OWN_IP
                    && neighbour
                    && cfg.policy.ignore != ArpIgnore::Never
                    && answered != 1
                {
                    return Err(format!(
                        "a request from {spa} for {tpa}: {answered} replies"
                    ));
                }
                if answered > 0 && !(request && tpa == OWN_IP) {
                    return Err(format!(
                        "a reply to {arp:?}, which asks nothing of the host"
                    ));
                }
                outputs
            }
        };
        check_host(&host, &outputs, &mut history)?;
        out.extend(outputs.into_iter().map(Step::Output));
    }
    out.push(Step::Entries(host.entries()));
    Ok(out)
}

/// The target.
pub(super) fn run(data: &[u8]) -> Outcome {
    super::twice(T, data, transcript)
}
