//! The fixed table on a stack whose lookup is no API (smoltcp: `Routes::lookup` is
//! `pub(crate)`): the routes it can hold, as its profile declares them
//! ([`crate::dut::fixed::RouteFixed`]), installed with `Control::Route`, and every lookup
//! observed on the wire. For each destination the harness pings the stack from that
//! address; the stack's echo reply must go to the next hop the route model predicts: it asks
//! for that next hop by ARP (the harness answers with the next hop's own MAC, and pings
//! again), or sends straight to its MAC, and its source must be the one the model selects.
//! A next hop is then seen, not reported: a stronger check than `route get`.
//!
//! Routes of kinds the stack cannot hold, beyond its route count, or of a family the check
//! leaves out are left out of the table with a note; the lookups still run at every edge of
//! every prefix of the full table, against the model of the table the stack holds.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::dut::Control;
use crate::dut::fixed::{FixedBehaviour, HeldRoute, RouteFixed, WaitingPolicy};
use crate::engine::{CheckError, Session};
use crate::models::profile::Deviation as _;
use crate::models::route::{AnswerKind, Interface, Route, RouteDeviation, RouteKind, RouteTable};
use crate::suites::route::fixed_routes;
use crate::suites::route::table::edge_destinations;
use crate::time::Duration;
use crate::wire::{
    ArpOperation, ArpRepr, Frame, Icmpv4Kind, Icmpv4Message, MacAddr, Network, Transport,
};

/// Echo identifier of the pings that make the stack look a route up.
const LOOKUP_ID: u16 = 0x6e72; // "nr"

/// The interface index the model gives the stack's one interface.
const OIF: u32 = 1;

/// How long the stack gets to answer one ping (its clock may be virtual: then it is free; a
/// user-space stack in Python on a loaded machine took up to 30 ms).
const ANSWER: Duration = Duration::from_millis(500);

/// The MAC the harness answers for next hop `ip` with: its own per address, so the
/// Ethernet destination of the stack's frame names the next hop it chose.
pub fn next_hop_mac(ip: Ipv4Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x02, 0x6e, 0x63, 0x72, o[2], o[3]])
}

/// Whether a route of `kind` is one the declared stack can hold.
fn held(kind: &RouteKind, f: &RouteFixed) -> bool {
    let want = match kind {
        RouteKind::Unicast {
            gateway: Some(_), ..
        } => HeldRoute::Gateway,
        RouteKind::Unicast { gateway: None, .. } => HeldRoute::OnLink,
        _ => HeldRoute::Special,
    };
    f.kinds.contains(&want)
}

/// The routes of `full` a declared stack whose lookup is an API can hold, as they are, and
/// a line for each route left out: a kind it cannot hold, an IPv6 route when it holds none,
/// a second route to a prefix when it has no metrics, and any beyond its route count.
pub fn held_routes(full: &[Route], f: &RouteFixed) -> (Vec<Route>, Vec<String>) {
    let mut kept: Vec<Route> = Vec::new();
    let mut left_out = Vec::new();
    for r in full {
        let why = if !held(&r.kind, f) {
            Some("a kind the stack cannot hold".to_string())
        } else if !f.ipv6 && r.dst.addr().is_ipv6() {
            Some("IPv6 (the stack holds IPv4 routes only)".to_string())
        } else if !f.metrics && kept.iter().any(|c| c.dst == r.dst) {
            Some("a second route to the same prefix (the stack has no metrics)".to_string())
        } else if kept.len() >= f.max_routes {
            Some(format!(
                "beyond the {} routes the stack holds",
                f.max_routes
            ))
        } else {
            None
        };
        match why {
            Some(why) => left_out.push(format!("{r}: {why}")),
            None => kept.push(*r),
        }
    }
    (kept, left_out)
}

/// The table a declared stack holds out of `full`, and a line for each route left out.
///
/// IPv4 only (the wire lookup pings over IPv4); one route per prefix (no metrics: a second
/// would replace the first); then, within `max_routes`, the default route and the most
/// specific routes. Each kept route but the first gets a gateway of its own (an on-link
/// host, `.250` down), so that which route decided a lookup shows in the next hop.
pub fn held_table(full: &[Route], f: &RouteFixed, peer: Ipv4Addr) -> (Vec<Route>, Vec<String>) {
    let mut left_out = Vec::new();
    let mut candidates: Vec<Route> = Vec::new();
    for r in full {
        let why = if !r.dst.addr().is_ipv4() {
            Some("IPv6 (the lookup is observed over IPv4)")
        } else if !held(&r.kind, f) {
            Some("a kind the stack cannot hold")
        } else if candidates.iter().any(|c| c.dst == r.dst) {
            Some(if f.metrics {
                "a second route to the same prefix (`Control::Route` installs no metric)"
            } else {
                "a second route to the same prefix (the stack has no metrics)"
            })
        } else {
            None
        };
        match why {
            Some(why) => left_out.push(format!("{r}: {why}")),
            None => candidates.push(*r),
        }
    }
    // The default route first, then the longest prefixes.
    candidates.sort_by_key(|r| {
        (
            r.dst.prefix_len() != 0,
            std::cmp::Reverse(r.dst.prefix_len()),
        )
    });
    let mut kept = Vec::new();
    for (i, r) in candidates.into_iter().enumerate() {
        if kept.len() >= f.max_routes {
            left_out.push(format!(
                "{r}: beyond the {} routes the stack holds",
                f.max_routes
            ));
            continue;
        }
        let gateway = if i == 0 {
            peer
        } else {
            Ipv4Addr::new(10, 77, 0, 251 - i as u8)
        };
        let kind = match r.kind {
            RouteKind::Unicast { oif, .. } => RouteKind::Unicast {
                gateway: Some(IpAddr::V4(gateway)),
                oif,
            },
            other => other,
        };
        kept.push(Route {
            kind,
            metric: None,
            ..r
        });
    }
    (kept, left_out)
}

/// Runs the fixed table on the wire against `fixed`'s declared route table.
pub fn fixed_table_on_wire(
    s: &mut Session<'_>,
    fixed: &FixedBehaviour,
    f: &RouteFixed,
) -> Result<(), CheckError> {
    let step = "install the routes the stack can hold".to_string();
    let e = s.endpoints().clone();
    let (Some((stack4, len4)), Some(peer4)) = (e.stack_ipv4, e.peer_ipv4) else {
        return Err(super::unsupported("the target has no IPv4 address"));
    };
    let full = fixed_routes(
        OIF,
        IpAddr::V4(peer4),
        IpAddr::V6(e.peer_ipv6.unwrap_or(std::net::Ipv6Addr::LOCALHOST)),
        IpAddr::V6(
            e.stack_ipv6
                .map_or(std::net::Ipv6Addr::LOCALHOST, |(a, _)| a),
        ),
    );
    let (table, left_out) = held_table(&full, f, peer4);
    s.note(format!(
        "ran against {}'s fixed route table ({}): routes via a gateway{}, at most {}, {}; the lookup is no API, so it is observed on the wire (the next hop the stack sends an echo reply to); {} of the fixed table's {} routes held, gateways made distinct",
        fixed.stack,
        fixed.file,
        if f.kinds.contains(&HeldRoute::OnLinkSubnet) {
            " and the subnets of its addresses"
        } else {
            ""
        },
        f.max_routes,
        if f.metrics {
            "metrics (installed without: one route per prefix)"
        } else {
            "no metrics"
        },
        table.len(),
        full.len()
    ));
    for line in &left_out {
        s.note(format!("left out: {line}"));
    }
    let mut interfaces = vec![Interface {
        index: OIF,
        name: "stack".into(),
        loopback: false,
        addrs: vec![
            IpNet::new(IpAddr::V4(stack4), len4).map_err(|e| CheckError::Harness {
                step: step.clone(),
                bug: format!("the stack's address: {e}"),
            })?,
        ],
    }];
    if let Some((a6, l6)) = e.stack_ipv6
        && let Ok(net) = IpNet::new(IpAddr::V6(a6), l6)
    {
        interfaces[0].addrs.push(net);
    }
    let mut model = RouteTable::new(RouteDeviation::profile(s.profile()), interfaces);
    for r in &table {
        model.add(*r).map_err(|e| CheckError::Harness {
            step: step.clone(),
            bug: format!("the held table does not fit the model: {r}: {e:?}"),
        })?;
        let (
            IpNet::V4(dst),
            RouteKind::Unicast {
                gateway: Some(IpAddr::V4(via)),
                ..
            },
        ) = (r.dst, r.kind)
        else {
            continue;
        };
        s.control(
            &step,
            &Control::Route {
                dst: dst.network(),
                prefix_len: dst.prefix_len(),
                via,
            },
        )?;
    }
    let interval = fixed
        .arp
        .as_ref()
        .and_then(|a| a.requests.as_ref())
        .map_or(Duration::ZERO, |r| Duration::from_millis(r.min_interval_ms));
    // A stack that queues the packet waiting for its next hop (RFC 1122 §2.3.2.2) sends the
    // echo reply once the request is answered: that reply is the lookup's answer, and a
    // second ping would read it as the answer to itself. One that drops it is pinged again.
    let waiting = fixed.arp.as_ref().and_then(|a| a.waiting_packet.as_ref());
    let queues = waiting.is_some_and(|w| w.policy == WaitingPolicy::Queue);
    // A stack that declares no policy is judged by what it does: a reply that comes once
    // the request is answered is the lookup's answer, else the next ping's.
    let declared = waiting.is_some();
    let mut dsts: Vec<IpAddr> = edge_destinations(&full)
        .into_iter()
        .filter(|d| d.is_ipv4())
        .collect();
    dsts.push(IpAddr::V4(peer4));
    dsts.sort();
    dsts.dedup();
    let mut macs: BTreeMap<MacAddr, Ipv4Addr> = BTreeMap::new();
    let mut differences = Vec::new();
    let mut observed = 0;
    let mut seq = 0u16;
    for dst in dsts {
        let IpAddr::V4(dst4) = dst else { continue };
        let expected = match model.lookup(dst, None) {
            Ok(a) if a.kind == AnswerKind::Unicast => a,
            Ok(a) => {
                s.note(format!(
                    "{dst}: skipped ({:?}: no echo reply to observe)",
                    a.kind
                ));
                continue;
            }
            Err(e) => {
                s.note(format!("{dst}: skipped ({e}: no packet to observe)"));
                continue;
            }
        };
        let hop = match expected.gateway {
            Some(IpAddr::V4(g)) => g,
            _ => dst4,
        };
        let step = format!("lookup {dst}");
        // Clear of the stack's request rate limit, so that a request it owes is sent.
        let until = s.now() + interval;
        while let Some((_, o)) = s.next_any_frame(&step, until)? {
            if is_ipv6(&o) {
                continue;
            }
            differences.push(format!(
                "route {dst}: expected nothing before the lookup, observed {}",
                o.summary()
            ));
        }
        let mut seen = None;
        for _ in 0..2 {
            seq = seq.wrapping_add(1);
            let ping = Frame::icmpv4(
                e.harness_mac,
                e.stack_mac,
                dst4,
                stack4,
                Icmpv4Message::echo_request(LOOKUP_ID, seq, b"netconform route".to_vec()),
            );
            s.send(&step, &ping)?;
            match answer(s, &step, seq, &mut macs)? {
                Answer::Asked(nh) => {
                    macs.insert(next_hop_mac(nh), nh);
                    let reply = Frame::new(
                        next_hop_mac(nh),
                        e.stack_mac,
                        Network::Arp(ArpRepr {
                            operation: ArpOperation::Reply,
                            hw_type: 1,
                            proto_type: 0x0800,
                            sender_mac: next_hop_mac(nh),
                            sender_ip: nh,
                            target_mac: e.stack_mac,
                            target_ip: stack4,
                        }),
                    );
                    s.name_host(
                        Some(next_hop_mac(nh)),
                        None,
                        &format!("nh{}", nh.octets()[3]),
                    );
                    s.send(&step, &reply)?;
                    seen = Some(Answer::Asked(nh));
                    if queues {
                        // The queued reply to this ping, and nothing else, comes now.
                        seen = Some(match answer(s, &step, seq, &mut macs)? {
                            Answer::Nothing => Answer::Other(format!(
                                "no echo reply within {ANSWER} of the ARP answer for {nh} (the declared waiting-packet policy queues it)"
                            )),
                            other => other,
                        });
                        break;
                    } else if !declared {
                        // Nothing declared: a stack that queues the waiting packet (RFC 1122
                        // §2.3.2.2) sends the reply now; one that dropped it answers the
                        // next ping.
                        match answer(s, &step, seq, &mut macs)? {
                            Answer::Nothing => {}
                            other => {
                                seen = Some(other);
                                break;
                            }
                        }
                    }
                }
                other => {
                    seen = Some(other);
                    break;
                }
            }
        }
        observed += 1;
        let want_src = expected.src;
        match seen {
            Some(Answer::Sent { next_hop, src }) => {
                if next_hop != Some(hop) {
                    differences.push(format!(
                        "route {dst}: expected next hop {hop}, observed an echo reply to {}",
                        next_hop.map_or_else(|| "an unknown MAC".to_string(), |h| h.to_string())
                    ));
                } else if want_src.is_some_and(|w| w != IpAddr::V4(src)) {
                    differences.push(format!(
                        "route {dst}: expected source {}, observed {src}",
                        want_src.map_or_else(String::new, |w| w.to_string())
                    ));
                }
            }
            Some(Answer::Asked(nh)) => differences.push(format!(
                "route {dst}: expected an echo reply to next hop {hop} once it was resolved, observed another request for {nh}"
            )),
            Some(Answer::Other(what)) => {
                differences.push(format!("route {dst}: expected next hop {hop}, observed {what}"))
            }
            Some(Answer::Nothing) | None => differences.push(format!(
                "route {dst}: expected next hop {hop}, observed nothing within {ANSWER}"
            )),
        }
    }
    s.note(format!(
        "{observed} lookups observed on the wire, {} disagree",
        differences.len()
    ));
    if differences.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Mismatch {
            step: "lookups".into(),
            differences,
        })
    }
}

/// An IPv6 frame: no answer to an IPv4 ping (a host with IPv6 announces its multicast
/// groups, RFC 3810 §6.1, and checks its link-local address, RFC 4862 §5.4, on its own
/// schedule); left in the trace, not judged by the IPv4 lookups.
fn is_ipv6(o: &crate::engine::expect::Observed) -> bool {
    matches!(&o.parsed, Ok(frame) if matches!(frame.network, Network::Ipv6(_)))
}

/// What the stack did with one ping.
enum Answer {
    /// It asked for this next hop (ARP request).
    Asked(Ipv4Addr),
    /// It sent the echo reply to the MAC of this next hop (`None`: a MAC no next hop has),
    /// from `src`.
    Sent {
        next_hop: Option<Ipv4Addr>,
        src: Ipv4Addr,
    },
    /// Something else.
    Other(String),
    /// Nothing.
    Nothing,
}

fn answer(
    s: &mut Session<'_>,
    step: &str,
    seq: u16,
    macs: &mut BTreeMap<MacAddr, Ipv4Addr>,
) -> Result<Answer, CheckError> {
    let until = s.now() + ANSWER;
    let observed = loop {
        let Some((_, observed)) = s.next_any_frame(step, until)? else {
            return Ok(Answer::Nothing);
        };
        if !is_ipv6(&observed) {
            break observed;
        }
    };
    let Ok(frame) = &observed.parsed else {
        return Ok(Answer::Other(observed.summary()));
    };
    Ok(match &frame.network {
        Network::Arp(a) if a.operation == ArpOperation::Request => Answer::Asked(a.target_ip),
        Network::Ipv4(p) => match &p.transport {
            Transport::Icmpv4(m) if m.kind() == (Icmpv4Kind::EchoReply { id: LOOKUP_ID, seq }) => {
                Answer::Sent {
                    next_hop: macs.get(&frame.ethernet.dst).copied(),
                    src: p.src,
                }
            }
            _ => Answer::Other(frame.summary()),
        },
        _ => Answer::Other(frame.summary()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoltcp_like() -> RouteFixed {
        RouteFixed {
            kinds: vec![HeldRoute::Gateway, HeldRoute::OnLinkSubnet],
            max_routes: 2,
            metrics: false,
            lookup_api: false,
            ipv6: true,
            source: "route.rs:1".into(),
        }
    }

    #[test]
    fn the_held_table_keeps_the_default_and_the_most_specific_gateway_route() {
        let peer = Ipv4Addr::new(10, 77, 0, 1);
        let full = fixed_routes(
            1,
            IpAddr::V4(peer),
            "fd77::1".parse().expect("address"),
            "fd77::2".parse().expect("address"),
        );
        let (kept, left_out) = held_table(&full, &smoltcp_like(), peer);
        let shown: Vec<String> = kept.iter().map(|r| r.to_string()).collect();
        assert_eq!(kept.len(), 2, "{shown:?}");
        assert_eq!(kept[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(kept[1].dst.to_string(), "203.0.113.224/27");
        assert_eq!(
            kept[1].kind,
            RouteKind::Unicast {
                gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 250))),
                oif: 1
            }
        );
        assert_eq!(left_out.len(), full.len() - 2);
        assert!(
            left_out
                .iter()
                .any(|l| l.contains("a kind the stack cannot hold"))
        );
        assert!(left_out.iter().any(|l| l.contains("beyond the 2 routes")));
    }
}
