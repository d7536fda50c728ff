//! Switch checks: a learning switch against the [`Switch`] model, frame by frame, on every
//! port, and its filtering database read back after every step.
//!
//! Read first: IEEE Std 802.1D-2004 §7.7 (the Forwarding Process), §7.8 (the Learning
//! Process), §7.9.2 (Dynamic Filtering Entries, the Ageing Time) and §7.12.6 / Table 7-10
//! (reserved addresses); IEEE Std 802.1Q-2018 §8.6–§8.8 says the same. The clause texts
//! below follow 802.1D-2004 as closely as we could without the standard at hand while
//! writing them (`...` marks words left out): check the wording against the standard before
//! citing it.
//!
//! # How a scenario runs
//!
//! A [`SwitchScenario`] is plain data: stations `A`, `B`, ... behind ports, frames between
//! them, and pauses. For each frame the runner
//! 1. sends it into its ingress port, tagged with a unique number (ether type 0x88B5, IEEE
//!    local experimental, payload `ncsw` + the number), so that no stray frame is ever
//!    mistaken for it;
//! 2. asks the model where it must go, given when it was sent ([`Switch::receive_within`]:
//!    the start and the end of the send), and notes the prediction in the trace;
//! 3. sends a **barrier probe** into the same port: a broadcast from a harness address of
//!    its own. A switch handles the frames of one port in order, so once the probe has come
//!    out of every other port, every copy of the frame has too: "nowhere else" is proven
//!    without a timed window (the probe's own address is learned, and never compared);
//! 4. requires a copy, unaltered, on exactly the ports the model predicts and on no other
//!    port; a copy that turns up later is reported against the frame it belongs to;
//! 5. reads the filtering database ([`StateQuery::Fdb`]) and compares the entries of the
//!    scenario's stations with the model's: same station, same port, fresh.
//!
//! A pause listens on every port (a switch sends nothing by itself), then compares the
//! database again: that is where ageing shows.
//!
//! # Timing
//!
//! The model is exact; the switch ages entries on its own clock and collects them a little
//! later. Within [`AGEING_TOLERANCE`] of an entry's ageing instant the runner accepts either
//! outcome and does not compare the entry (see the model's module doc); it counts those
//! steps ([`ScenarioStats::uncertain`]), and the ageing check refuses to pass when one of
//! its steps fell inside the window (a machine too loaded to tell).

use crate::engine::Uses;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dut::{DutError, FdbEntry, FdbState, StateAnswer, StateQuery};
use crate::engine::barrier::{self, Class, Ended, Entry, Plan, Seen};
use crate::engine::scenario::{Counterexample, Scenario, ScenarioOutcome, with_kind};
use crate::engine::{CheckError, CheckSpec, Clause, Needs, Session, SwitchNeeds};
use crate::models::profile::Deviation as _;
use crate::models::switch::{FdbView, FrameHeader, Port, Presence, Switch, SwitchDeviation};
use crate::time::{Duration, Instant};
use crate::wire::{Frame, MacAddr};

/// The ether type of every frame a switch scenario sends: IEEE 802 local experimental
/// ethertype 1.
pub const ETHER_TYPE: u16 = 0x88b5;
/// The payload of a scenario frame starts with this, then the frame's number (u32, BE).
const FRAME_MAGIC: &[u8; 4] = b"ncsw";
/// The payload of a barrier probe starts with this, then the probe's number (u32, BE).
const PROBE_MAGIC: &[u8; 4] = b"ncpb";
/// Frames are padded to the Ethernet minimum (without FCS).
const FRAME_LEN: usize = 60;

/// Within this much of a predicted ageing instant, either outcome is accepted.
pub const AGEING_TOLERANCE: Duration = Duration::from_millis(150);
/// How long a barrier probe may take to come out of every port.
const BARRIER_TIMEOUT: Duration = Duration::from_millis(2000);

const STD_URL: &str = "https://standards.ieee.org/standard/802_1D-2004.html";

const LEARNING: Clause = Clause {
    id: "ieee802.1d-7.8-learning",
    source: "IEEE 802.1D-2004 §7.8 (802.1Q-2018 §8.7)",
    url: STD_URL,
    text: "The Learning Process shall create or update a Dynamic Filtering Entry in the Filtering \
           Database, associating the MAC Address in the source address field of the frame with the \
           receiving Port, if and only if a) the Port on which the frame was received is in a state \
           that allows learning, and b) the source address field of the frame denotes a specific end \
           station, i.e., is not a group address ...",
};

const GROUP_SOURCE: Clause = Clause {
    id: "ieee802.1d-7.8-group-source",
    source: "IEEE 802.1D-2004 §7.8 b) (802.1Q-2018 §8.7)",
    url: STD_URL,
    text: "... if and only if ... b) the source address field of the frame denotes a specific end \
           station, i.e., is not a group address: a group source address is never learned.",
};

const FORWARD_KNOWN: Clause = Clause {
    id: "ieee802.1d-7.9.2-known-unicast",
    source: "IEEE 802.1D-2004 §7.7.2, §7.9.2 (802.1Q-2018 §8.6.3, §8.8.3)",
    url: STD_URL,
    text: "Dynamic Filtering Entries specify the Ports on which individual MAC Addresses have been \
           learned ... a Port Map ... that specifies forwarding of frames destined for that MAC Address \
           to a single Port; the Forwarding Process filters the frame on every other Port.",
};

const FLOOD: Clause = Clause {
    id: "ieee802.1d-7.9.5-flood",
    source: "IEEE 802.1D-2004 §7.7.2, §7.9.5, §7.9.4 (802.1Q-2018 §8.8.9)",
    url: STD_URL,
    text: "If no Static or Dynamic Filtering Entry exists for an individual destination MAC Address, \
           the frame is forwarded through every potential transmission Port; frames to the broadcast \
           address and to group addresses without a filtering entry are forwarded the same way (the \
           default group filtering behaviour, Forward All Groups).",
};

const NOT_BACK_OUT: Clause = Clause {
    id: "ieee802.1d-7.7.1-not-ingress",
    source: "IEEE 802.1D-2004 §7.7.1 (802.1Q-2018 §8.6.1)",
    url: STD_URL,
    text: "Each Port is selected as a potential transmission Port if, and only if ... the Port \
           considered for transmission is not the same as the Port on which the frame was received.",
};

const AGEING: Clause = Clause {
    id: "ieee802.1d-7.9.2-ageing",
    source: "IEEE 802.1D-2004 §7.9.2, Table 7-5 (802.1Q-2018 §8.8.3)",
    url: STD_URL,
    text: "Dynamic Filtering Entries ... are automatically removed after a specified time, the Ageing \
           Time, has elapsed since the entry was created or last updated by the Learning Process.",
};

const RESERVED: Clause = Clause {
    id: "ieee802.1d-7.12.6-reserved",
    source: "IEEE 802.1D-2004 §7.12.6, Table 7-10 (802.1Q-2018 §8.6.3, Table 8-1)",
    url: STD_URL,
    text: "Frames containing any of the group MAC Addresses specified in Table 7-10 \
           (01-80-C2-00-00-00 to 01-80-C2-00-00-0F) in their destination address field shall not be \
           relayed by the Bridge.",
};

/// A station of a scenario: `Station(0)` is `A`, `Station(1)` is `B`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Station(pub u8);

impl Station {
    /// How many stations a scenario can name.
    pub const COUNT: u8 = 26;

    /// `A`, `B`, ...
    pub fn name(self) -> String {
        char::from(b'A' + self.0 % Self::COUNT).to_string()
    }

    /// The station's address in a run with `nonce`: `02:6e:63:<nonce>:00:<n+1>`, locally
    /// administered, individual.
    pub fn mac(self, nonce: u8) -> MacAddr {
        crate::wire::plan::station(nonce, self.0 % Self::COUNT + 1)
    }
}

/// The source address of a scenario frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// A station.
    Station(Station),
    /// A group address (never a station's): `03:6e:63:<nonce>:00:ff`.
    Group,
    /// All zeros.
    Zero,
}

/// The destination address of a scenario frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// A station.
    Station(Station),
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// A group address no switch filters: `03:6e:63:<nonce>:00:fe`.
    Group,
    /// A reserved address of 802.1D Table 7-10: `01:80:c2:00:00:<n>` (`n` ≤ 0x0f).
    Reserved(u8),
}

/// One event of a switch scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SwitchEvent {
    /// A frame `src > dst` goes into port `port`.
    Frame {
        /// The ingress port.
        port: Port,
        /// Its source.
        src: Source,
        /// Its destination.
        dst: Destination,
    },
    /// Time passes; nothing is sent, nothing may come out.
    Wait {
        /// How long, in milliseconds.
        ms: u32,
    },
}

/// A switch scenario: a switch with `ports` ports whose entries age after `ageing_ms`, and
/// the events run against it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwitchScenario {
    /// A name for reports.
    pub name: String,
    /// How many ports the scenario needs at least (a target with more is modelled with all
    /// of its ports: flooding reaches every one).
    pub ports: usize,
    /// The ageing time the model assumes, in milliseconds.
    pub ageing_ms: u32,
    /// The events, in order.
    pub events: Vec<SwitchEvent>,
}

/// What a scenario run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ScenarioStats {
    /// Frames sent.
    pub frames: usize,
    /// Copies that came out of the switch.
    pub copies: usize,
    /// Filtering database reads compared.
    pub fdb_reads: usize,
    /// Comparisons weakened because they fell within [`AGEING_TOLERANCE`] of an ageing
    /// instant (either outcome accepted, the entry not compared).
    pub uncertain: usize,
}

/// The addresses of one run (they depend on the nonce, so runs on one switch never meet).
#[derive(Debug, Clone, Copy)]
struct Addresses {
    nonce: u8,
}

impl Addresses {
    fn source(self, s: Source) -> MacAddr {
        match s {
            Source::Station(st) => st.mac(self.nonce),
            Source::Group => crate::wire::plan::group(self.nonce, 0, 0xff),
            Source::Zero => MacAddr::ZERO,
        }
    }

    fn destination(self, d: Destination) -> MacAddr {
        match d {
            Destination::Station(st) => st.mac(self.nonce),
            Destination::Broadcast => MacAddr::BROADCAST,
            Destination::Group => crate::wire::plan::group(self.nonce, 0, 0xfe),
            Destination::Reserved(n) => MacAddr([0x01, 0x80, 0xc2, 0x00, 0x00, n & 0x0f]),
        }
    }

    /// The barrier probe's source address for `port`: never a station's (nonce ≠ 0xff).
    fn probe(port: Port) -> MacAddr {
        crate::wire::plan::switch_probe(port as u8)
    }
}

fn source_name(s: Source) -> String {
    match s {
        Source::Station(st) => st.name(),
        Source::Group => "group-source".into(),
        Source::Zero => "zero".into(),
    }
}

fn destination_name(d: Destination) -> String {
    match d {
        Destination::Station(st) => st.name(),
        Destination::Broadcast => "broadcast".into(),
        Destination::Group => "group".into(),
        Destination::Reserved(n) => format!("reserved-{:02x}", n & 0x0f),
    }
}

impl fmt::Display for SwitchEvent {
    /// `A > B into p0`, `wait 500 ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchEvent::Frame { port, src, dst } => write!(
                f,
                "{} > {} into p{port}",
                source_name(*src),
                destination_name(*dst)
            ),
            SwitchEvent::Wait { ms } => write!(f, "wait {ms} ms"),
        }
    }
}

fn tagged(dst: MacAddr, src: MacAddr, magic: &[u8; 4], number: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_LEN);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ETHER_TYPE.to_be_bytes());
    f.extend_from_slice(magic);
    f.extend_from_slice(&number.to_be_bytes());
    f.resize(FRAME_LEN, 0);
    f
}

/// What a frame out of the switch is, to the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// A copy of scenario frame `n`.
    Frame(u32),
    /// A copy of barrier probe `n`.
    Probe(u32),
    /// Not a harness frame (another ether type or payload).
    Stray,
}

/// Classifies a frame out of the switch; a frame that is not even Ethernet, or a harness
/// frame cut short, is an error naming what is wrong.
fn classify(bytes: &[u8]) -> Result<Tag, String> {
    if bytes.len() < 14
        && let Err(e) = Frame::parse(bytes)
    {
        return Err(format!("malformed frame ({} bytes): {e}", bytes.len()));
    }
    if bytes.get(12..14) != Some(&ETHER_TYPE.to_be_bytes()[..]) {
        return Ok(Tag::Stray);
    }
    let payload = &bytes[14..];
    for (magic, make) in [
        (FRAME_MAGIC, Tag::Frame as fn(u32) -> Tag),
        (PROBE_MAGIC, Tag::Probe),
    ] {
        let n = payload.len().min(4);
        if payload[..n] != magic[..n] {
            continue;
        }
        return match payload.get(4..8) {
            Some(b) => Ok(make(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))),
            None => Err(format!(
                "malformed harness frame ({} bytes): a tagged payload needs 8 bytes after the \
                 Ethernet header, {} present",
                bytes.len(),
                payload.len()
            )),
        };
    }
    Ok(Tag::Stray)
}

/// The harness's machinery among the frames a switch sends: copies of its barrier probes
/// (what a spoiler must leave alone, [`crate::dut::spoil`]).
pub fn machinery(bytes: &[u8]) -> bool {
    matches!(classify(bytes), Ok(Tag::Probe(_)))
}

fn port_list(ports: &BTreeSet<Port>) -> String {
    if ports.is_empty() {
        "no port".into()
    } else {
        ports
            .iter()
            .map(|p| format!("p{p}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A switch's barrier probe: a tagged broadcast into the ingress port. Its copies out of
/// the other ports are the evidence, copies of earlier probes machinery; every other frame
/// belongs to the step, and one that is not even Ethernet, or a harness frame cut short,
/// is a problem named in `problems` (in the order read), as is the probe coming back out
/// of its ingress port.
struct SwitchProbe {
    number: u32,
    ingress: Port,
    problems: Vec<String>,
}

impl barrier::Probe for SwitchProbe {
    fn frame(&self) -> Vec<u8> {
        tagged(
            MacAddr::BROADCAST,
            Addresses::probe(self.ingress),
            PROBE_MAGIC,
            self.number,
        )
    }

    fn classify(&mut self, seen: &Seen<'_>) -> Result<Class, CheckError> {
        let port = seen.port;
        Ok(match classify(seen.bytes) {
            Ok(Tag::Probe(n)) if n == self.number => {
                if port == self.ingress && !seen.draining {
                    self.problems.push(format!(
                        "p{port}: the barrier probe (a broadcast) came back out of its ingress port"
                    ));
                }
                Class::Evidence
            }
            Ok(Tag::Probe(_)) => Class::Machinery,
            Ok(_) => Class::Conversation,
            Err(e) => {
                self.problems.push(format!("p{port}: {e}"));
                Class::Conversation
            }
        })
    }
}

/// One frame sent: its number and what it was.
struct Sent {
    number: u32,
    what: String,
}

/// A scenario run in progress.
struct Run<'s, 't> {
    session: &'s mut Session<'t>,
    model: Switch,
    addresses: Addresses,
    ports: usize,
    sent: Vec<Sent>,
    probes: u32,
    stats: ScenarioStats,
    /// The scenario's addresses (only these are compared in the database).
    watched: BTreeSet<MacAddr>,
    names: Vec<(MacAddr, String)>,
}

fn target_err(step: &str, source: DutError) -> CheckError {
    CheckError::Dut {
        step: step.into(),
        source,
    }
}

/// Runs `scenario` on the session's target, every step compared with the model; `nonce`
/// makes the station addresses of this run unique (0..=0xfe). Returns what the run saw.
/// A disagreement offers the scenario as the check's counterexample (the runner shrinks
/// it, and `netconform replay` runs its file).
pub fn run_switch_scenario(
    session: &mut Session<'_>,
    scenario: &SwitchScenario,
    nonce: u8,
) -> Result<ScenarioStats, CheckError> {
    let result = run_compared(session, scenario, nonce);
    if let Err(e) = &result
        && !matches!(e, CheckError::Dut { .. })
    {
        session.offer_counterexample(Counterexample::scenario(Box::new(SwitchScenarioRun {
            scenario: scenario.clone(),
            nonce,
        })));
    }
    result
}

/// A switch scenario with the nonce it ran with: what the engine keeps as a
/// counterexample, shrinks and replays. Its file is the scenario's JSON with
/// `"kind": "switch-scenario"` and `"nonce"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchScenarioRun {
    /// The scenario.
    pub scenario: SwitchScenario,
    /// The nonce of its station addresses.
    pub nonce: u8,
}

impl SwitchScenarioRun {
    /// The kind in files and reports.
    pub const KIND: &'static str = "switch-scenario";

    /// Reads a scenario file (`nonce` defaults to 1).
    pub fn from_json(value: &serde_json::Value) -> Result<SwitchScenarioRun, serde_json::Error> {
        let scenario: SwitchScenario = serde_json::from_value(value.clone())?;
        let nonce = value
            .get("nonce")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(1);
        Ok(SwitchScenarioRun { scenario, nonce })
    }
}

impl Scenario for SwitchScenarioRun {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn name(&self) -> &str {
        &self.scenario.name
    }

    fn set_name(&mut self, name: String) {
        self.scenario.name = name;
    }

    fn needs(&self) -> Needs {
        Needs {
            switch: Some(SwitchNeeds {
                ports: self.scenario.ports,
                ageing_ms: self.scenario.ageing_ms,
            }),
            uses: &[Uses::Link, Uses::Tables],
            ..Needs::IPV4
        }
    }

    fn step_lines(&self) -> Vec<String> {
        self.scenario.events.iter().map(|e| e.to_string()).collect()
    }

    fn len(&self) -> usize {
        self.scenario.events.len()
    }

    fn without_step(&self, index: usize) -> Box<dyn Scenario> {
        let mut copy = self.clone();
        if index < copy.scenario.events.len() {
            copy.scenario.events.remove(index);
        }
        Box::new(copy)
    }

    fn run(&self, session: &mut Session<'_>) -> Result<ScenarioOutcome, CheckError> {
        let stats = run_switch_scenario(session, &self.scenario, self.nonce)?;
        Ok(ScenarioOutcome::Agreed {
            summary: format!(
                "{} frames sent, {} copies and {} FDB reads compared ({} within the ageing \
                 tolerance)",
                stats.frames, stats.copies, stats.fdb_reads, stats.uncertain
            ),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        let mut value = with_kind(
            Self::KIND,
            serde_json::to_value(&self.scenario).unwrap_or_default(),
        );
        if let Some(fields) = value.as_object_mut() {
            fields.insert("nonce".into(), self.nonce.into());
        }
        value
    }

    fn clone_box(&self) -> Box<dyn Scenario> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn run_compared(
    session: &mut Session<'_>,
    scenario: &SwitchScenario,
    nonce: u8,
) -> Result<ScenarioStats, CheckError> {
    let step0 = format!("{}: set-up", scenario.name);
    if nonce == 0xff {
        return Err(target_err(
            &step0,
            DutError::Malformed {
                detail: "nonce 0xff is reserved for the barrier probes".into(),
            },
        ));
    }
    let have = session.ports();
    if have < scenario.ports || scenario.ports < 2 {
        return Err(target_err(
            &step0,
            DutError::NotSupported {
                what: format!(
                    "a switch with {} ports (the target has {have})",
                    scenario.ports
                ),
            },
        ));
    }
    if let Some(bad) = scenario.events.iter().find_map(|e| match e {
        SwitchEvent::Frame { port, .. } if *port >= scenario.ports => Some(*port),
        _ => None,
    }) {
        return Err(target_err(
            &step0,
            DutError::Malformed {
                detail: format!(
                    "the scenario sends into p{bad}, it has {} ports",
                    scenario.ports
                ),
            },
        ));
    }
    let addresses = Addresses { nonce };
    let mut names = Vec::new();
    let mut watched = BTreeSet::new();
    for e in &scenario.events {
        if let SwitchEvent::Frame { src, dst, .. } = *e {
            let s = addresses.source(src);
            let d = addresses.destination(dst);
            names.push((s, source_name(src)));
            names.push((d, destination_name(dst)));
            watched.insert(s);
            if let Destination::Station(_) = dst {
                watched.insert(d);
            }
        }
    }
    // A switch with more ports than the scenario names floods to all of them: the model
    // and the barrier cover every port the target has.
    let ports = have;
    for port in 0..ports {
        names.push((Addresses::probe(port), format!("probe{port}")));
    }
    for (mac, name) in &names {
        if *mac != MacAddr::BROADCAST {
            session.name_host(Some(*mac), None, name);
        }
    }
    let model = Switch::new(ports, Duration::from_millis(u64::from(scenario.ageing_ms)))
        .with_profile(SwitchDeviation::profile(session.profile()))
        .with_tolerance(AGEING_TOLERANCE);
    let mut run = Run {
        session,
        model,
        addresses,
        ports,
        sent: Vec::new(),
        probes: 0,
        stats: ScenarioStats::default(),
        watched,
        names,
    };
    run.session.note(format!(
        "{}: {ports} ports, ageing time {} ms",
        scenario.name, scenario.ageing_ms
    ));
    for (i, event) in scenario.events.iter().enumerate() {
        let step = format!("{}: step {} ({event})", scenario.name, i + 1);
        match *event {
            SwitchEvent::Frame { port, src, dst } => run.frame(&step, port, src, dst)?,
            SwitchEvent::Wait { ms } => run.wait(&step, ms)?,
        }
        run.compare_fdb(&step)?;
    }
    Ok(run.stats)
}

impl Run<'_, '_> {
    fn name(&self, mac: MacAddr) -> String {
        self.names
            .iter()
            .find(|(m, _)| *m == mac)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| mac.to_string())
    }

    fn frame(
        &mut self,
        step: &str,
        port: Port,
        src: Source,
        dst: Destination,
    ) -> Result<(), CheckError> {
        let header = FrameHeader {
            src: self.addresses.source(src),
            dst: self.addresses.destination(dst),
        };
        let number = self.sent.len() as u32 + 1;
        let bytes = tagged(header.dst, header.src, FRAME_MAGIC, number);
        // The switch handles the frame somewhere between these two instants: the model is
        // asked about that interval, after the fact (it never sees what came out).
        let before = self.session.now();
        self.session.send_on(step, port, &bytes)?;
        let after = self.session.now();
        let predicted = self
            .model
            .receive_within(before, after, port, &header)
            .map_err(|e| {
                target_err(
                    step,
                    DutError::Malformed {
                        detail: e.to_string(),
                    },
                )
            })?;
        let what = format!(
            "{} > {} into p{port}",
            source_name(src),
            destination_name(dst)
        );
        let mut note = format!(
            "{what} -> {} ({})",
            port_list(&predicted.egress),
            predicted.decision
        );
        if let Some(alt) = &predicted.alternative {
            note.push_str(&format!(
                " (or {}: within {} of an ageing instant)",
                port_list(alt),
                AGEING_TOLERANCE
            ));
            self.stats.uncertain += 1;
        }
        self.session.note(note);
        self.stats.frames += 1;
        self.sent.push(Sent {
            number,
            what: what.clone(),
        });
        let copies = self.barrier(step, port)?;
        let mut differences = Vec::new();
        let mut observed = BTreeSet::new();
        for (out, copy) in &copies {
            if *copy != bytes {
                differences.push(format!(
                    "p{out}: the copy differs from the frame sent ({} bytes, {} sent)",
                    copy.len(),
                    bytes.len()
                ));
            }
            if !observed.insert(*out) {
                differences.push(format!("p{out}: more than one copy came out"));
            }
        }
        self.stats.copies += copies.len();
        if !predicted.accepts(&observed) {
            for p in 0..self.ports {
                match (predicted.egress.contains(&p), observed.contains(&p)) {
                    (true, false) => {
                        differences.push(format!("p{p}: expected a copy, none came out"))
                    }
                    (false, true) => differences.push(format!(
                        "p{p}: a copy came out, none expected{}",
                        if p == port {
                            " (back out of its ingress port)"
                        } else {
                            ""
                        }
                    )),
                    _ => {}
                }
            }
            differences.push(format!(
                "model: {} ({}); the switch sent it to {}",
                port_list(&predicted.egress),
                predicted.decision,
                port_list(&observed)
            ));
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                step: step.into(),
                differences,
            })
        }
    }

    /// Sends a barrier probe into `ingress` and reads every port until the probe has come
    /// out of all the others; returns the copies of the current frame (port, bytes), and
    /// records every frame read (but the probes) in port order.
    fn barrier(&mut self, step: &str, ingress: Port) -> Result<Vec<(Port, Vec<u8>)>, CheckError> {
        self.probes += 1;
        let mut probe = SwitchProbe {
            number: self.probes,
            ingress,
            problems: Vec::new(),
        };
        let plan = Plan {
            entry: Entry::Port(ingress),
            awaited: (0..self.ports).filter(|p| *p != ingress).collect(),
            timeout: BARRIER_TIMEOUT,
            // Whatever is already queued behind the probe belongs to this step too.
            drain: true,
            // Recorded here, by port.
            record: false,
            retry: false,
        };
        let ended = self.session.run_barrier(step, &plan, &mut probe)?;
        let mut problems = probe.problems;
        let (frames, missing) = match ended {
            Ended::Complete(frames) => (frames, None),
            Ended::TimedOut { frames, missing } => (frames, Some(missing)),
        };
        let read: Vec<(Instant, Port, Vec<u8>)> = frames
            .into_iter()
            .map(|f| (f.at, f.port, f.bytes))
            .collect();
        if let Some(missing) = missing {
            self.record(read);
            if !problems.is_empty() {
                // What came out instead says more than the silence.
                problems.push(format!(
                    "the barrier probe (a broadcast into p{ingress}) never came out of {}",
                    port_list(&missing)
                ));
                return Err(CheckError::Mismatch {
                    step: step.into(),
                    differences: problems,
                });
            }
            return Err(CheckError::NothingObserved {
                step: format!(
                    "{step} (the barrier probe, a broadcast into p{ingress}, on {})",
                    port_list(&missing)
                ),
                waited: BARRIER_TIMEOUT,
            });
        }
        let current = self.sent.last().map(|s| s.number);
        let mut copies = Vec::new();
        for (_, port, bytes) in &read {
            if let Ok(Tag::Frame(n)) = classify(bytes) {
                if Some(n) == current {
                    copies.push((*port, bytes.clone()));
                } else {
                    problems.push(self.late_copy(*port, n));
                }
            }
        }
        self.record(read);
        if problems.is_empty() {
            Ok(copies)
        } else {
            Err(CheckError::Mismatch {
                step: step.into(),
                differences: problems,
            })
        }
    }

    /// A copy of frame `n` out of `port` after its own step was over.
    fn late_copy(&self, port: Port, n: u32) -> String {
        match self.sent.iter().find(|s| s.number == n) {
            Some(s) => format!(
                "p{port}: a late copy of frame {n} ({}) came out after its step was over",
                s.what
            ),
            None => format!("p{port}: a frame numbered {n} came out, which was never sent"),
        }
    }

    /// Records frames read from the switch, by port, then by time.
    fn record(&mut self, mut read: Vec<(Instant, Port, Vec<u8>)>) {
        read.sort_by_key(|(at, port, _)| (*port, *at));
        for (at, port, bytes) in read {
            self.session.record_received_on(at, port, bytes);
        }
    }

    /// Time passes: listen on every port, nothing may come out.
    fn wait(&mut self, step: &str, ms: u32) -> Result<(), CheckError> {
        self.session.note(format!("wait {ms} ms"));
        let deadline = self
            .session
            .deadline_after(Duration::from_millis(u64::from(ms)));
        let mut read = Vec::new();
        let mut problems = Vec::new();
        while let Some((port, bytes, at)) = self.session.recv_any_unrecorded(step, deadline)? {
            match classify(&bytes) {
                // A late copy of a barrier probe is harness machinery: not recorded.
                Ok(Tag::Probe(_)) => continue,
                Ok(Tag::Frame(n)) => problems.push(self.late_copy(port, n)),
                Ok(Tag::Stray) => {}
                Err(e) => problems.push(format!("p{port}: {e}")),
            }
            read.push((at, port, bytes));
        }
        self.record(read);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                step: step.into(),
                differences: problems,
            })
        }
    }

    /// Reads the filtering database and compares the scenario's addresses with the model.
    fn compare_fdb(&mut self, step: &str) -> Result<(), CheckError> {
        let before = self.session.now();
        let answer = self.session.query(step, StateQuery::Fdb)?;
        let after = self.session.now();
        let StateAnswer::Fdb(observed) = answer else {
            return Err(CheckError::WrongAnswer {
                step: format!("{step} (filtering database)"),
                expected: "the filtering database".into(),
                observed: format!("{answer:?}"),
            });
        };
        self.stats.fdb_reads += 1;
        let observed: Vec<FdbEntry> = observed
            .into_iter()
            .filter(|e| self.watched.contains(&e.mac))
            .collect();
        let predicted: Vec<FdbView> = self
            .model
            .fdb_within(before, after)
            .into_iter()
            .filter(|e| self.watched.contains(&e.mac))
            .collect();
        let mut differences = Vec::new();
        for p in &predicted {
            let seen = observed.iter().find(|o| o.mac == p.mac);
            if p.presence == Presence::Uncertain {
                self.stats.uncertain += 1;
                continue;
            }
            let name = self.name(p.mac);
            match seen {
                None => differences.push(format!(
                    "fdb {name}: expected on p{} (ages out at {} ms), not in the database",
                    p.port,
                    p.ages_out.total_millis()
                )),
                Some(o) if o.port != p.port => differences.push(format!(
                    "fdb {name}: expected on p{}, observed on p{}",
                    p.port, o.port
                )),
                Some(o) if o.state != FdbState::Fresh => differences.push(format!(
                    "fdb {name}: expected fresh (ages out at {} ms), observed {}",
                    p.ages_out.total_millis(),
                    o.state
                )),
                Some(_) => {}
            }
        }
        for o in &observed {
            if !predicted.iter().any(|p| p.mac == o.mac) {
                differences.push(format!(
                    "fdb {}: expected no entry, observed {} on p{}",
                    self.name(o.mac),
                    o.state,
                    o.port
                ));
            }
        }
        let mut listed: Vec<String> = observed
            .iter()
            .map(|o| {
                let mut s = format!("{} p{}", self.name(o.mac), o.port);
                if o.state != FdbState::Fresh {
                    s.push_str(&format!(" {}", o.state));
                }
                s
            })
            .collect();
        listed.sort();
        self.session.note(format!(
            "fdb: {}",
            if listed.is_empty() {
                "empty".to_string()
            } else {
                listed.join(", ")
            }
        ));
        if differences.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Mismatch {
                step: format!("{step} (filtering database)"),
                differences,
            })
        }
    }
}

const A: Station = Station(0);
const B: Station = Station(1);
const C: Station = Station(2);
const D: Station = Station(3);

/// The switch every check but the ageing one runs on: three ports, the default ageing
/// time of 802.1D (300 s), so nothing ages during the check.
const SWITCH: Needs = Needs {
    switch: Some(SwitchNeeds {
        ports: 3,
        ageing_ms: 300_000,
    }),
    uses: &[Uses::Link, Uses::Tables],
    ..Needs::IPV4
};

/// The ageing check's switch: entries age after 2 s. (802.1D Table 7-5 allows 10 s to
/// 1 000 000 s; a shorter time keeps the check short, and the rule is the same.)
const SHORT_AGEING: Needs = Needs {
    switch: Some(SwitchNeeds {
        ports: 3,
        ageing_ms: 2000,
    }),
    uses: &[Uses::Link, Uses::Tables],
    ..Needs::IPV4
};

fn frame(port: Port, src: Station, dst: Destination) -> SwitchEvent {
    SwitchEvent::Frame {
        port,
        src: Source::Station(src),
        dst,
    }
}

fn to(s: Station) -> Destination {
    Destination::Station(s)
}

fn scenario(name: &str, needs: Needs, events: Vec<SwitchEvent>) -> SwitchScenario {
    let s = needs.switch.unwrap_or(SwitchNeeds {
        ports: 3,
        ageing_ms: 300_000,
    });
    SwitchScenario {
        name: name.into(),
        ports: s.ports,
        ageing_ms: s.ageing_ms,
        events,
    }
}

/// The seed scenario: a switch learns both hosts and stops flooding.
pub fn learns_both_hosts() -> SwitchScenario {
    scenario(
        "a switch learns both hosts and stops flooding",
        SWITCH,
        vec![frame(0, A, to(B)), frame(1, B, to(A)), frame(0, A, to(B))],
    )
}

fn learning(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &learns_both_hosts(), 1).map(|_| ())
}

/// Unknown unicast, broadcast and group frames from every port.
pub fn flooding_scenario() -> SwitchScenario {
    scenario(
        "unknown unicast, broadcast and groups are flooded",
        SWITCH,
        vec![
            frame(0, A, to(D)),
            frame(1, B, to(D)),
            frame(2, C, to(D)),
            frame(0, A, Destination::Broadcast),
            frame(1, B, Destination::Broadcast),
            frame(2, C, Destination::Broadcast),
            frame(0, A, Destination::Group),
        ],
    )
}

fn flooding(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &flooding_scenario(), 2).map(|_| ())
}

/// A station moves to another port and is followed there.
pub fn station_move_scenario() -> SwitchScenario {
    scenario(
        "a station that moves is followed to its new port",
        SWITCH,
        vec![
            frame(0, A, to(B)),
            frame(1, B, to(A)),
            frame(2, A, to(B)),
            frame(1, B, to(A)),
            frame(0, C, to(A)),
        ],
    )
}

fn station_move(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &station_move_scenario(), 3).map(|_| ())
}

/// Two stations behind one port: frames between them never come back out of it.
pub fn same_port_scenario() -> SwitchScenario {
    scenario(
        "a frame never goes back out of the port it came in on",
        SWITCH,
        vec![
            frame(0, A, to(B)),
            frame(0, C, to(A)),
            frame(0, A, to(C)),
            frame(1, B, to(C)),
            frame(0, A, to(A)),
        ],
    )
}

fn same_port(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &same_port_scenario(), 4).map(|_| ())
}

/// Entries age out after the ageing time unless their station sends again. Every step
/// keeps at least 500 ms from an ageing instant, so a step delayed by up to 350 ms still
/// lands outside the tolerance.
pub fn ageing_scenario() -> SwitchScenario {
    scenario(
        "entries age out unless refreshed, and flooding resumes",
        SHORT_AGEING,
        vec![
            frame(0, A, to(B)),
            frame(1, B, to(A)),
            SwitchEvent::Wait { ms: 1000 },
            // A is refreshed; B is not.
            frame(0, A, to(B)),
            SwitchEvent::Wait { ms: 1500 },
            // B aged out 500 ms ago: flooded again. A ages out in 500 ms.
            frame(2, C, to(B)),
            SwitchEvent::Wait { ms: 1100 },
            // A aged out 600 ms ago.
            frame(2, C, to(A)),
        ],
    )
}

fn ageing(session: &mut Session<'_>) -> Result<(), CheckError> {
    let stats = run_switch_scenario(session, &ageing_scenario(), 5)?;
    if stats.uncertain > 0 {
        return Err(target_err(
            "ageing",
            DutError::Timeout {
                what: format!(
                    "{} comparisons fell within {AGEING_TOLERANCE} of an ageing instant: the \
                     harness was too slow to tell (a loaded machine); run the check again",
                    stats.uncertain
                ),
            },
        ));
    }
    Ok(())
}

/// Frames with a group source address.
pub fn group_source_scenario() -> SwitchScenario {
    scenario(
        "a group source address is never learned",
        SWITCH,
        vec![
            SwitchEvent::Frame {
                port: 0,
                src: Source::Group,
                dst: to(B),
            },
            frame(1, B, Destination::Broadcast),
            SwitchEvent::Frame {
                port: 2,
                src: Source::Group,
                dst: to(B),
            },
            frame(1, B, Destination::Group),
        ],
    )
}

fn group_source(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &group_source_scenario(), 6).map(|_| ())
}

/// Frames to the reserved addresses of Table 7-10.
pub fn reserved_scenario() -> SwitchScenario {
    scenario(
        "reserved group addresses are not relayed",
        SWITCH,
        vec![
            frame(0, A, Destination::Reserved(0x00)),
            frame(0, A, Destination::Reserved(0x0e)),
            frame(1, B, Destination::Reserved(0x01)),
            frame(2, C, Destination::Reserved(0x02)),
            frame(2, C, Destination::Reserved(0x0f)),
            // Learned from a reserved frame (or not): where does a frame to B go?
            frame(0, D, to(B)),
        ],
    )
}

fn reserved(session: &mut Session<'_>) -> Result<(), CheckError> {
    run_switch_scenario(session, &reserved_scenario(), 7).map(|_| ())
}

/// The checks of this module, in the order `certify` runs them.
pub const CHECKS: &[CheckSpec] = &[
    CheckSpec {
        id: "switch.learning.known-unicast",
        title: "a switch learns both hosts and stops flooding: a known unicast goes to its port only",
        clauses: &[LEARNING, FORWARD_KNOWN, FLOOD],
        needs: SWITCH,
        run: learning,
    },
    CheckSpec {
        id: "switch.flooding.unknown-and-broadcast",
        title: "unknown unicast, broadcast and group frames are flooded to every port but the ingress",
        clauses: &[FLOOD, NOT_BACK_OUT],
        needs: SWITCH,
        run: flooding,
    },
    CheckSpec {
        id: "switch.learning.station-move",
        title: "a station that appears on another port is moved there, and frames follow it",
        clauses: &[LEARNING, FORWARD_KNOWN],
        needs: SWITCH,
        run: station_move,
    },
    CheckSpec {
        id: "switch.filtering.not-back-out",
        title: "a frame to a station on its own ingress port goes nowhere",
        clauses: &[NOT_BACK_OUT, FORWARD_KNOWN],
        needs: SWITCH,
        run: same_port,
    },
    CheckSpec {
        id: "switch.ageing",
        title: "entries age out after the ageing time unless refreshed, and flooding resumes",
        clauses: &[AGEING, LEARNING, FLOOD],
        needs: SHORT_AGEING,
        run: ageing,
    },
    CheckSpec {
        id: "switch.learning.group-source",
        title: "a frame with a group source address is never learned",
        clauses: &[GROUP_SOURCE],
        needs: SWITCH,
        run: group_source,
    },
    CheckSpec {
        id: "switch.reserved-addresses",
        title: "frames to the reserved addresses 01-80-C2-00-00-0X are not relayed",
        clauses: &[RESERVED, LEARNING],
        needs: SWITCH,
        run: reserved,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_harness_frames_and_rejects_cut_ones() {
        let f = tagged(MacAddr::BROADCAST, Station(0).mac(1), FRAME_MAGIC, 7);
        assert_eq!(f.len(), FRAME_LEN);
        assert_eq!(classify(&f), Ok(Tag::Frame(7)));
        let p = tagged(MacAddr::BROADCAST, Addresses::probe(2), PROBE_MAGIC, 9);
        assert_eq!(classify(&p), Ok(Tag::Probe(9)));
        // Another ether type, or another payload: not ours.
        let mut other = f.clone();
        other[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(&other), Ok(Tag::Stray));
        let mut other = f.clone();
        other[14..18].copy_from_slice(b"zzzz");
        assert_eq!(classify(&other), Ok(Tag::Stray));
        // Cut short: errors that say what is missing, never a panic.
        for n in 0..f.len() {
            let r = classify(&f[..n]);
            match n {
                0..=13 => assert!(
                    r.as_ref().is_err_and(|e| e.contains("malformed frame")),
                    "{n}: {r:?}"
                ),
                14..=21 => assert!(
                    r.as_ref().is_err_and(|e| e.contains("needs 8 bytes")),
                    "{n}: {r:?}"
                ),
                _ => assert_eq!(r, Ok(Tag::Frame(7))),
            }
        }
    }

    #[test]
    fn addresses_are_what_they_claim() {
        let a = Addresses { nonce: 5 };
        assert!(!a.source(Source::Station(A)).is_multicast());
        assert!(a.source(Source::Group).is_multicast());
        assert!(a.destination(Destination::Group).is_multicast());
        assert!(crate::models::switch::is_reserved(
            a.destination(Destination::Reserved(0x0e))
        ));
        assert_ne!(Station(0).mac(5), Station(1).mac(5));
        assert_ne!(Station(0).mac(5), Station(0).mac(6));
        assert_ne!(Addresses::probe(0), Station(0).mac(0));
        assert_eq!(A.name(), "A");
    }

    #[test]
    fn every_check_has_clauses_and_a_switch() {
        for c in CHECKS {
            assert!(!c.clauses.is_empty(), "{}", c.id);
            assert!(c.needs.switch.is_some_and(|s| s.ports >= 3), "{}", c.id);
            assert!(c.id.starts_with("switch."));
        }
        let mut ids: Vec<_> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
    }

    #[test]
    fn the_ageing_scenario_keeps_clear_of_the_tolerance() {
        // Replay the scenario in the model with the ideal timing (no harness delay): no step
        // may fall within the tolerance, with room to spare for a slow machine.
        let s = ageing_scenario();
        let mut sw = Switch::new(s.ports, Duration::from_millis(u64::from(s.ageing_ms)))
            .with_tolerance(AGEING_TOLERANCE);
        let a = Addresses { nonce: 5 };
        let mut now = 0u64;
        for e in &s.events {
            match *e {
                SwitchEvent::Wait { ms } => now += u64::from(ms),
                SwitchEvent::Frame { port, src, dst } => {
                    let f = sw
                        .receive(
                            Instant::from_millis(now),
                            port,
                            &FrameHeader {
                                src: a.source(src),
                                dst: a.destination(dst),
                            },
                        )
                        .unwrap();
                    assert!(f.alternative.is_none(), "{e}");
                }
            }
            // With up to 350 ms of delay, still clear of the tolerance.
            for later in (now..=now + 350).step_by(50) {
                assert!(
                    sw.fdb(Instant::from_millis(later))
                        .iter()
                        .all(|v| v.presence == Presence::Present),
                    "{e} at {later}"
                );
            }
        }
    }
}
