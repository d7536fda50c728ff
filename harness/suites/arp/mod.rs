//! ARP checks: fixed scenarios, each run through the ARP model side by side with the stack
//! ([`crate::suites::arp::scenario`]), so every frame the stack sends and its whole neighbour table
//! after every step are compared with the model's prediction.
//!
//! The first four are the seeds' story (a host resolves its neighbour; a host resolves its
//! default gateway before sending off the link; a cache hit sends no request; a failed
//! resolution ends in ICMP host unreachable); the others pin cache validation (the unicast
//! poll), the reception rules of RFC 826 and RFC 5227, and what a stack does with broken or
//! suspicious ARP.

pub mod expect;
pub mod one_neighbour;
pub mod scenario;

use crate::engine::Uses;
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session};
use crate::models::arp::{ArpAccept, ArpDeviation, ArpIgnore, ArpPolicy};
use crate::models::profile::Deviation as _;
use crate::suites::arp::scenario::{
    ArpKind, ArpScenario, BadArp, PeerSpec, ScenarioOutcome, Step, Timers, run_arp_scenario,
};

/// RFC 826, "Packet Generation".
pub const REQUEST: Clause = Clause {
    id: "rfc826-request",
    source: "RFC 826 (Packet Generation)",
    url: "https://www.rfc-editor.org/rfc/rfc826",
    text: "The Address Resolution module then sets ... ar$op to ares_op$REQUEST, ar$sha with the \
           48.bit ethernet address of itself, ar$spa with the protocol address of itself, and ar$tpa \
           with the protocol address of the machine that is trying to be accessed. It does not set \
           ar$tha to anything in particular ... It then causes this packet to be broadcast to all \
           stations on the Ethernet cable.",
};

/// RFC 826, "Packet Reception".
pub const RECEPTION: Clause = Clause {
    id: "rfc826-reception",
    source: "RFC 826 (Packet Reception)",
    url: "https://www.rfc-editor.org/rfc/rfc826",
    text: "If the pair <protocol type, sender protocol address> is already in my translation table, \
           update the sender hardware address field of the entry with the new information in the \
           packet and set Merge_flag to true. ?Am I the target protocol address? Yes: If Merge_flag \
           is false, add the triplet <protocol type, sender protocol address, sender hardware \
           address> to the translation table. ?Is the opcode ares_op$REQUEST? Yes: Swap hardware and \
           protocol fields, putting the local hardware and protocol addresses in the sender fields. \
           Set the ar$op field to ares_op$REPLY. Send the packet to the (new) target hardware address.",
};

/// RFC 826 reception: the checks a receiver makes before anything else.
pub const RECEPTION_CHECKS: Clause = Clause {
    id: "rfc826-reception-checks",
    source: "RFC 826 (Packet Reception)",
    url: "https://www.rfc-editor.org/rfc/rfc826",
    text: "?Do I have the hardware type in ar$hrd? Yes: (almost definitely) [optionally check the \
           hardware length ar$hln] ?Do I speak the protocol in ar$pro? Yes: [optionally check the \
           protocol length ar$pln] ... ?Is the opcode ares_op$REQUEST? (NOW look at the opcode!!)",
};

/// RFC 1122 §2.3.2.1: cache validation and flooding.
pub const CACHE_VALIDATION: Clause = Clause {
    id: "rfc1122-2.3.2.1-cache-validation",
    source: "RFC 1122 §2.3.2.1",
    url: "https://www.rfc-editor.org/rfc/rfc1122#section-2.3.2.1",
    text: "An implementation of the Address Resolution Protocol (ARP) MUST provide a mechanism to \
           flush out-of-date cache entries. ... (2) Unicast Poll -- Actively poll the remote host by \
           periodically sending a point-to-point ARP Request to it, and delete the entry if no ARP \
           Reply is received from N successive polls.",
};

/// RFC 1122 §2.3.2.1: no ARP flooding.
pub const NO_FLOODING: Clause = Clause {
    id: "rfc1122-2.3.2.1-flooding",
    source: "RFC 1122 §2.3.2.1",
    url: "https://www.rfc-editor.org/rfc/rfc1122#section-2.3.2.1",
    text: "A mechanism to prevent ARP flooding (repeatedly sending an ARP Request for the same IP \
           address, at a high rate) MUST be included.",
};

/// RFC 1122 §2.3.2.2: the queue of packets waiting for a resolution.
pub const QUEUE: Clause = Clause {
    id: "rfc1122-2.3.2.2-queue",
    source: "RFC 1122 §2.3.2.2",
    url: "https://www.rfc-editor.org/rfc/rfc1122#section-2.3.2.2",
    text: "The link layer SHOULD save (rather than discard) at least one (the latest) packet of each \
           set of packets destined to the same unresolved IP address, and transmit the saved packet \
           when the address has been resolved.",
};

/// RFC 1122 §3.3.1.1: local or remote.
pub const LOCAL_REMOTE: Clause = Clause {
    id: "rfc1122-3.3.1.1-local-remote",
    source: "RFC 1122 §3.3.1.1",
    url: "https://www.rfc-editor.org/rfc/rfc1122#section-3.3.1.1",
    text: "If the IP destination address bits extracted by the address mask match the IP source \
           address bits extracted by the same mask, then the destination is on the corresponding \
           connected network, and the datagram is to be transmitted directly to the destination \
           host. If not, then the destination is accessible only through a gateway.",
};

/// RFC 5227 §2.1.1: probes.
pub const PROBE: Clause = Clause {
    id: "rfc5227-2.1.1-probe",
    source: "RFC 5227 §2.1.1",
    url: "https://www.rfc-editor.org/rfc/rfc5227#section-2.1.1",
    text: "The 'sender IP address' field MUST be set to all zeroes; this is to avoid polluting ARP \
           caches in other hosts on the same link in the case where the address turns out to be \
           already in use by another host.",
};

/// RFC 5227 §2.3: announcements.
pub const ANNOUNCEMENT: Clause = Clause {
    id: "rfc5227-2.3-announcement",
    source: "RFC 5227 §2.3",
    url: "https://www.rfc-editor.org/rfc/rfc5227#section-2.3",
    text: "An ARP Announcement is identical to the ARP Probe described above, except that now the \
           sender and target IP addresses are both set to the host's newly selected IPv4 address. \
           The purpose of these ARP Announcements is to make sure that other hosts on the link do \
           not have stale ARP cache entries left over from some other host that may previously \
           have been using the same address.",
};

/// RFC 1812 §3.3.2: broadcast and multicast link-layer addresses in ARP.
pub const NO_BROADCAST_MAC: Clause = Clause {
    id: "rfc1812-3.3.2-arp-broadcast-mac",
    source: "RFC 1812 §3.3.2",
    url: "https://www.rfc-editor.org/rfc/rfc1812#section-3.3.2",
    text: "A router MUST not believe any ARP reply that claims that the Link Layer address of another \
           host or router is a broadcast or multicast address.",
};

/// RFC 1812 §5.2.7.1 and RFC 792: host unreachable after a failed resolution.
pub const HOST_UNREACHABLE: Clause = Clause {
    id: "rfc1812-5.2.7.1-host-unreachable",
    source: "RFC 1812 §5.2.7.1, RFC 792",
    url: "https://www.rfc-editor.org/rfc/rfc1812#section-5.2.7.1",
    text: "Host Unreachable (code 1): generated by a router if a forwarding path (route) to the \
           destination host on a directly connected network is not available (RFC 792: the gateway \
           may send a destination unreachable message to the internet source host of the datagram).",
};

/// What every ARP check needs: an IPv4 stack that resolves by ARP.
const NEEDS: Needs = Needs {
    uses: &[Uses::Link, Uses::Tables],
    ..Needs::IPV4
};

/// Peer `from` sends an ARP packet of `kind` (from its second MAC, unicast to the stack).
fn arp(from: usize, kind: ArpKind, alt_mac: bool, unicast: bool) -> Step {
    Step::Arp {
        from,
        kind,
        alt_mac,
        unicast,
    }
}

fn peer(octet: u8, answers: bool) -> PeerSpec {
    PeerSpec {
        octet,
        answers,
        off_link: false,
    }
}

/// A scenario whose entries do not expire while it runs (see [`Timers::STEADY`]).
fn steady(name: &str, peers: Vec<PeerSpec>, steps: Vec<Step>) -> ArpScenario {
    ArpScenario {
        timers: Timers::STEADY,
        ..scenario(name, peers, steps)
    }
}

fn scenario(name: &str, peers: Vec<PeerSpec>, steps: Vec<Step>) -> ArpScenario {
    ArpScenario {
        name: name.into(),
        policy: ArpPolicy {
            accept: ArpAccept::Never,
            ignore: ArpIgnore::Any,
        },
        forwarding: false,
        gateway: None,
        peers,
        steps,
        timers: Timers::FAST,
    }
}

/// Runs `scenario` in `s`; a reachable time drawn anew mid-run repeats it once.
pub fn run(s: &mut Session<'_>, scenario: &ArpScenario) -> Result<(), CheckError> {
    run_judging(s, scenario, &[])
}

/// [`run`], and then the clauses among `judged` (the check's) that a declared fixed
/// behaviour the stack was seen to have departs from: the stack agreed with the model run
/// on its declaration, so the exchange shows the behaviour, and a clause it breaks fails
/// the check. Today: a packet dropped while its next hop was resolved, against
/// [`QUEUE`] (RFC 1122 §2.3.2.2, SHOULD); a cache that never flushes an entry (declared
/// `validation = "never"`, libslirp), against [`CACHE_VALIDATION`] (RFC 1122 §2.3.2.1,
/// MUST). A stack that declares one neighbour and never asks (`[arp.one_neighbour]`,
/// passt) runs in [`one_neighbour::run_judging`], which judges [`REQUEST`], [`RECEPTION`]
/// and [`CACHE_VALIDATION`] on its own exchange.
pub fn run_judging(
    s: &mut Session<'_>,
    scenario: &ArpScenario,
    judged: &[Clause],
) -> Result<(), CheckError> {
    if let Some(result) = one_neighbour::run_judging(s, scenario, judged) {
        return result;
    }
    let profile = ArpDeviation::profile(s.profile());
    for attempt in 0..2 {
        match run_arp_scenario(s, scenario, &profile)? {
            ScenarioOutcome::Agreed {
                frames,
                entries,
                dropped_waiting,
            } => {
                s.note(format!(
                    "model and stack agree: {frames} frames and {entries} neighbour entries compared"
                ));
                if dropped_waiting > 0 && judged.iter().any(|c| c.id == QUEUE.id) {
                    let file = s
                        .fixed_behaviour()
                        .map_or_else(|| "its profile".to_string(), |f| f.file.clone());
                    return Err(CheckError::Mismatch {
                        step: "end".into(),
                        differences: vec![format!(
                            "{} ({}, SHOULD save at least one packet per unresolved address): expected the packet that waited for the resolution sent once it was resolved, observed {dropped_waiting} packet(s) dropped (declared in {file}: [arp.waiting_packet] policy = \"drop\")",
                            QUEUE.id, QUEUE.source
                        )],
                    });
                }
                if judged.iter().any(|c| c.id == CACHE_VALIDATION.id)
                    && let Some(line) = never_flushed(s, scenario)
                {
                    return Err(CheckError::Mismatch {
                        step: "end".into(),
                        differences: vec![line],
                    });
                }
                return Ok(());
            }
            ScenarioOutcome::Redrawn if attempt == 0 => {
                s.note("the stack drew a new reachable time mid-run: running again".to_string());
            }
            ScenarioOutcome::Redrawn => {}
        }
    }
    Err(CheckError::WrongAnswer {
        step: "end".into(),
        expected: "one run with a stable reachable time".into(),
        observed: "the stack drew a new reachable time in two runs in a row".into(),
    })
}

/// The difference line of a stack whose declared cache never flushes an entry
/// (`[arp.cache] validation = "never"`) and which agreed with the model run on that
/// declaration: its entries outlived the scenario's reachable time in use, with no
/// request, against [`CACHE_VALIDATION`] (RFC 1122 §2.3.2.1, MUST). `None` for any other
/// stack.
fn never_flushed(s: &Session<'_>, scenario: &ArpScenario) -> Option<String> {
    let fixed = s.fixed_behaviour()?;
    let cache = fixed.arp.as_ref()?.cache.as_ref()?;
    if cache.validation != crate::dut::fixed::Validation::Never {
        return None;
    }
    let waited: u64 = scenario
        .steps
        .iter()
        .map(|step| match step {
            Step::Wait { ms } => *ms,
            _ => 0,
        })
        .sum();
    Some(format!(
        "{} ({}, MUST provide a mechanism to flush out-of-date cache entries): expected an entry out of date after the scenario's reachable time ({} ms, base) flushed or revalidated (a timeout or a unicast poll), observed every entry still used with no request after {waited} ms of waiting and the cache read at the end (declared in {}: [arp.cache] validation = \"never\", no lifetime, no poll)",
        CACHE_VALIDATION.id, CACHE_VALIDATION.source, scenario.timers.base_reachable_ms, fixed.file
    ))
}

fn resolve_on_link(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_judging(
        s,
        &steady(
            "resolve a neighbour",
            vec![peer(1, true)],
            vec![Step::Ping { from: 0 }, Step::Wait { ms: 20 }],
        ),
        &[REQUEST, RECEPTION, QUEUE],
    )
}

fn resolve_gateway(s: &mut Session<'_>) -> Result<(), CheckError> {
    let mut sc = steady(
        "resolve the gateway",
        vec![
            peer(254, true),
            PeerSpec {
                octet: 7,
                answers: false,
                off_link: true,
            },
        ],
        vec![Step::Ping { from: 1 }, Step::Wait { ms: 20 }],
    );
    sc.gateway = Some(0);
    run_judging(s, &sc, &[LOCAL_REMOTE, REQUEST])
}

fn cache_hit(s: &mut Session<'_>) -> Result<(), CheckError> {
    run(
        s,
        &steady(
            "a cache hit sends no request",
            vec![peer(1, true)],
            vec![
                Step::Ping { from: 0 },
                Step::Wait { ms: 20 },
                Step::Ping { from: 0 },
                Step::Ping { from: 0 },
            ],
        ),
    )
}

fn failed_resolution(s: &mut Session<'_>) -> Result<(), CheckError> {
    let host = s
        .fixed_behaviour()
        .filter(|f| f.ip.as_ref().is_some_and(|ip| !ip.forwarding));
    if let Some(fixed) = host {
        // A host: its own packet (the reply to a ping) to a neighbour that never answers.
        // The requests must stop after the stack's probes and the packet go nowhere; no
        // ICMP is owed, since nothing was forwarded, and whether the packet waited cannot
        // show.
        s.not_applicable(
            HOST_UNREACHABLE.id,
            format!(
                "{} declares [ip] forwarding = false: the stack forwards nothing, so no \
                 ICMP host unreachable is owed (a router's duty); the check judges the stack's \
                 own reply to a neighbour that never answers",
                fixed.file
            ),
        );
        s.not_applicable(
            QUEUE.id,
            "a packet for a neighbour that never answers leaves neither when queued nor when \
             dropped: this exchange cannot tell the two apart (arp.resolve-neighbour judges \
             the queue)",
        );
        return run(
            s,
            &steady(
                "a host's failed resolution gives up after its probes",
                vec![peer(99, false)],
                vec![Step::Ping { from: 0 }, Step::Wait { ms: 300 }],
            ),
        );
    }
    let mut sc = steady(
        "a failed resolution ends in host unreachable",
        vec![peer(1, true), peer(99, false)],
        vec![
            Step::Ping { from: 0 },
            Step::Forward { from: 0, to: 1 },
            Step::Wait { ms: 300 },
        ],
    );
    sc.forwarding = true;
    run(s, &sc)
}

fn unicast_poll(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_judging(
        s,
        &scenario(
            "the unicast poll revalidates a stale entry",
            vec![peer(1, true)],
            vec![
                Step::Ping { from: 0 },
                Step::Wait { ms: 300 },
                Step::Ping { from: 0 },
                Step::Wait { ms: 150 },
            ],
        ),
        &[CACHE_VALIDATION],
    )
}

fn unicast_poll_fails(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_judging(
        s,
        &scenario(
            "an unanswered unicast poll ends the entry",
            vec![peer(3, false)],
            vec![
                arp(0, ArpKind::RequestForStack, false, false),
                Step::Ping { from: 0 },
                Step::Wait { ms: 400 },
            ],
        ),
        &[CACHE_VALIDATION],
    )
}

fn answers_requests(s: &mut Session<'_>) -> Result<(), CheckError> {
    run_judging(
        s,
        &steady(
            "a request for the stack is answered and its sender cached",
            vec![peer(1, true), peer(3, true)],
            vec![
                arp(0, ArpKind::RequestForStack, false, false),
                arp(1, ArpKind::RequestForOther, false, false),
                arp(1, ArpKind::RequestForStack, false, true),
            ],
        ),
        &[RECEPTION],
    )
}

fn announcement_updates(s: &mut Session<'_>) -> Result<(), CheckError> {
    run(
        s,
        &scenario(
            "an announcement from a new MAC updates the entry",
            vec![peer(1, true)],
            vec![
                Step::Ping { from: 0 },
                arp(0, ArpKind::GratuitousRequest, true, false),
                Step::Ping { from: 0 },
                Step::Wait { ms: 150 },
            ],
        ),
    )
}

fn probe_not_cached(s: &mut Session<'_>) -> Result<(), CheckError> {
    run(
        s,
        &steady(
            "a probe is answered and not cached",
            vec![peer(1, true)],
            vec![arp(0, ArpKind::Probe, false, false)],
        ),
    )
}

fn conflicting_reply(s: &mut Session<'_>) -> Result<(), CheckError> {
    run(
        s,
        &scenario(
            "a conflicting reply within and after the locktime",
            vec![peer(1, true)],
            vec![
                Step::Ping { from: 0 },
                arp(0, ArpKind::Reply, true, true),
                Step::Wait { ms: 120 },
                arp(0, ArpKind::Reply, true, true),
            ],
        ),
    )
}

fn unsolicited_reply(s: &mut Session<'_>) -> Result<(), CheckError> {
    run(
        s,
        &scenario(
            "an unsolicited reply to the stack",
            vec![peer(1, true)],
            vec![arp(0, ArpKind::Reply, false, true)],
        ),
    )
}

fn malformed(s: &mut Session<'_>) -> Result<(), CheckError> {
    let steps = BadArp::ALL
        .iter()
        .filter(|b| {
            !matches!(
                b,
                BadArp::SenderMacBroadcast | BadArp::SenderMacZero | BadArp::SenderMacMulticast
            )
        })
        .map(|bad| Step::Malformed { from: 0, bad: *bad })
        .collect();
    run(
        s,
        &steady("broken ARP is ignored", vec![peer(1, true)], steps),
    )
}

fn non_unicast_sender_mac(s: &mut Session<'_>) -> Result<(), CheckError> {
    let steps = [
        BadArp::SenderMacBroadcast,
        BadArp::SenderMacZero,
        BadArp::SenderMacMulticast,
    ]
    .iter()
    .enumerate()
    .map(|(i, bad)| Step::Malformed { from: i, bad: *bad })
    .collect();
    run(
        s,
        &steady(
            "a broadcast, zero or multicast sender MAC is not believed",
            vec![peer(1, true), peer(3, true), peer(4, true)],
            steps,
        ),
    )
}

/// The ARP checks, in the order `certify` runs them.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "arp.resolve-neighbour",
        title: "a host resolves its neighbour before sending (broadcast request, unicast reply, queued packet sent)",
        clauses: &[REQUEST, RECEPTION, QUEUE],
        needs: NEEDS,
        run: resolve_on_link,
    },
    CheckSpec {
        id: "arp.resolve-gateway",
        title: "a host resolves its default gateway, not the remote address, before sending off the link",
        clauses: &[LOCAL_REMOTE, REQUEST],
        needs: NEEDS,
        run: resolve_gateway,
    },
    CheckSpec {
        id: "arp.cache-hit",
        title: "a cache hit sends no request",
        clauses: &[NO_FLOODING, RECEPTION],
        needs: NEEDS,
        run: cache_hit,
    },
    CheckSpec {
        id: "arp.failed-resolution",
        title: "a failed resolution gives up after its probes and ends in ICMP host unreachable (a host that forwards nothing: gives up and drops the packet)",
        clauses: &[NO_FLOODING, QUEUE, HOST_UNREACHABLE],
        needs: NEEDS,
        run: failed_resolution,
    },
    CheckSpec {
        id: "arp.unicast-poll",
        title: "a stale entry in use is revalidated by a unicast poll",
        clauses: &[CACHE_VALIDATION],
        needs: NEEDS,
        run: unicast_poll,
    },
    CheckSpec {
        id: "arp.unicast-poll-fails",
        title: "an entry whose unicast polls go unanswered is dropped",
        clauses: &[CACHE_VALIDATION],
        needs: NEEDS,
        run: unicast_poll_fails,
    },
    CheckSpec {
        id: "arp.answers-requests",
        title: "requests for the stack are answered and their sender cached; others are not",
        clauses: &[RECEPTION],
        needs: NEEDS,
        run: answers_requests,
    },
    CheckSpec {
        id: "arp.announcement",
        title: "an announcement from a new MAC updates the entry at once",
        clauses: &[ANNOUNCEMENT, RECEPTION],
        needs: NEEDS,
        run: announcement_updates,
    },
    CheckSpec {
        id: "arp.probe",
        title: "an address probe (sender 0.0.0.0) is answered and not cached",
        clauses: &[PROBE, RECEPTION],
        needs: NEEDS,
        run: probe_not_cached,
    },
    CheckSpec {
        id: "arp.conflicting-reply",
        title: "a reply with a different MAC updates the entry (Linux: only after the locktime)",
        clauses: &[RECEPTION],
        needs: NEEDS,
        run: conflicting_reply,
    },
    CheckSpec {
        id: "arp.unsolicited-reply",
        title: "an unsolicited reply to the stack adds its sender (Linux: not with arp_accept 0)",
        clauses: &[RECEPTION],
        needs: NEEDS,
        run: unsolicited_reply,
    },
    CheckSpec {
        id: "arp.malformed",
        title: "broken ARP (lengths, operation, types, truncation, martian addresses) changes nothing",
        clauses: &[RECEPTION_CHECKS],
        needs: NEEDS,
        run: malformed,
    },
    CheckSpec {
        id: "arp.non-unicast-sender-mac",
        title: "a broadcast, zero or multicast sender MAC is not cached (Linux caches it)",
        clauses: &[NO_BROADCAST_MAC],
        needs: NEEDS,
        run: non_unicast_sender_mac,
    },
];
