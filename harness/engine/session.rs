//! A check's session with one target: send, expect, call, query, all recorded.
//!
//! The session speaks for the *peer* host: the harness end of the veth has no address, so
//! every frame the stack under test sees from the peer is one the check built. Frames the
//! stack sends are read one at a time; frames that have nothing to do with the peer (IPv6
//! chatter of the stack's own, multicast listener reports) are recorded in the trace and
//! passed over, everything else is compared with what the check expected.

use std::net::IpAddr;

use crate::dut::recorder::Recorder;
use crate::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery,
    TcpSocketState, TcpState,
};
use crate::engine::expect::{Expectation, Observed};
use crate::engine::scenario::Counterexample;
use crate::models::profile::ProfileName;
use crate::time::Duration;
use crate::trace::{HostNames, Trace};
use crate::wire::{Frame, MacAddr, Network};

/// Why a check stopped before it passed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The stack sent something other than what the check expected.
    #[error("{step}: {}", differences.join("; "))]
    Mismatch {
        /// The step of the check.
        step: String,
        /// One entry per field that differed: `tcp.flags: expected S., observed R.`.
        differences: Vec<String>,
    },
    /// Nothing relevant arrived before the deadline.
    #[error("{step}: nothing arrived within {waited}")]
    NothingObserved {
        /// The step of the check.
        step: String,
        /// How long the check waited.
        waited: Duration,
    },
    /// A frame arrived where the check expects silence.
    #[error("{step}: expected no frame, observed {observed}")]
    Unexpected {
        /// The step of the check.
        step: String,
        /// The frame, summarised.
        observed: String,
    },
    /// A socket call or state query gave an answer the check did not expect.
    #[error("{step}: expected {expected}, observed {observed}")]
    WrongAnswer {
        /// The step of the check.
        step: String,
        /// What the check expected.
        expected: String,
        /// What the target answered.
        observed: String,
    },
    /// The target failed (or cannot perform the event: see [`DutError::NotSupported`]).
    #[error("{step}: {source}")]
    Dut {
        /// The step of the check.
        step: String,
        /// The target's error.
        source: DutError,
    },
    /// The harness itself is wrong (a check with nothing to check): an error of the
    /// harness, never a verdict on the DUT.
    #[error("{step}: harness bug: {bug}")]
    Harness {
        /// The step of the check.
        step: String,
        /// What is wrong with the harness.
        bug: String,
    },
}

impl CheckError {
    /// Whether this error is a disagreement of the DUT with what the check expected (a
    /// failure), rather than an event the DUT could not perform or a harness bug.
    pub fn is_disagreement(&self) -> bool {
        !matches!(self, CheckError::Dut { .. } | CheckError::Harness { .. })
    }

    /// The step of the check it happened at.
    pub fn step(&self) -> &str {
        match self {
            CheckError::Mismatch { step, .. }
            | CheckError::NothingObserved { step, .. }
            | CheckError::Unexpected { step, .. }
            | CheckError::WrongAnswer { step, .. }
            | CheckError::Dut { step, .. }
            | CheckError::Harness { step, .. } => step,
        }
    }
}

/// One check's conversation with one target.
pub struct Session<'t> {
    recorder: Recorder<'t>,
    endpoints: Endpoints,
    names: HostNames,
    barrier_seq: u16,
    /// Every retry the harness made to rule out its own loss, described.
    retries: Vec<String>,
    profile: ProfileName,
    /// What the step being checked expects, while it waits (`None` between steps).
    expecting: Option<String>,
    counterexample: Option<Counterexample>,
    /// Clauses no observation of this session checked.
    not_checked: Vec<super::NotChecked>,
    /// Clauses of the check that do not apply to this target ([`Session::not_applicable`]).
    not_applicable: Vec<&'static str>,
    /// The TCP options the stack offers ([`crate::dut::Sockets::tcp_config`]).
    tcp_config: crate::dut::TcpStackConfig,
    /// Per clause, the cases that exercised it and those that broke it.
    tallies: Vec<super::ClauseTally>,
    /// The target's declared fixed behaviour ([`Dut::fixed_behaviour`]).
    fixed: Option<std::sync::Arc<crate::dut::fixed::FixedBehaviour>>,
    /// A frame [`Session::expect_and_keep`] compared and left for the next wait.
    kept: Option<Observed>,
}

impl<'t> Session<'t> {
    /// A session on `target` whose models follow the Linux profile; scenario time starts now.
    pub fn new(target: &'t mut dyn Dut) -> Self {
        Session::with_profile(target, ProfileName::Linux)
    }

    /// A session on `target` whose models follow `profile`.
    pub fn with_profile(target: &'t mut dyn Dut, profile: ProfileName) -> Self {
        let endpoints = target.endpoints().clone();
        let tcp_config = target.tcp_config();
        let names = host_names(&endpoints);
        let fixed = target.fixed_behaviour();
        Session {
            recorder: Recorder::new(target),
            endpoints,
            names,
            barrier_seq: 0,
            retries: Vec::new(),
            profile,
            expecting: None,
            counterexample: None,
            not_checked: Vec::new(),
            not_applicable: Vec::new(),
            tcp_config,
            tallies: Vec::new(),
            fixed,
            kept: None,
        }
    }

    /// The TCP options the stack offers on its connections (its configuration, an input of
    /// the TCP model: [`crate::dut::Sockets::tcp_config`]).
    pub fn tcp_config(&self) -> crate::dut::TcpStackConfig {
        self.tcp_config
    }

    /// What the target declares it does where it cannot be configured (its profile,
    /// `profiles/<target>.toml`); `None` when it declares nothing.
    pub fn fixed_behaviour(&self) -> Option<std::sync::Arc<crate::dut::fixed::FixedBehaviour>> {
        self.fixed.clone()
    }

    /// What the step that failed expected (set while a step waits for a frame; a failing
    /// check leaves it set), for the report's expected ladder.
    pub fn expecting(&self) -> Option<&str> {
        self.expecting.as_deref()
    }

    /// Offers the input that made this check fail; the first one offered is kept (a check
    /// that runs many scenarios reports its first failing one).
    pub fn offer_counterexample(&mut self, counterexample: Counterexample) {
        if self.counterexample.is_none() {
            self.counterexample = Some(counterexample);
        }
    }

    /// Marks clause `clause` of this check as not checked: the evidence it needs was not
    /// observed (`reason` says what). The check then cannot pass: the runner turns a run
    /// that otherwise succeeds into an error naming the clause, and the report lists it.
    pub fn not_checked(&mut self, clause: &'static str, reason: impl Into<String>) {
        let reason = reason.into();
        self.note(format!("not checked: {clause}: {reason}"));
        self.not_checked.push(super::NotChecked { clause, reason });
    }

    /// Takes clause `clause` out of this check's report: it does not apply to this target
    /// (`why` says why: a router's duty on a stack that declares it forwards nothing). The
    /// check judges its other clauses; the trace says what was left out and why, and the
    /// report names only the clauses that were judged.
    pub fn not_applicable(&mut self, clause: &'static str, why: impl Into<String>) {
        self.note(format!("not applicable: {clause}: {}", why.into()));
        if !self.not_applicable.contains(&clause) {
            self.not_applicable.push(clause);
        }
    }

    /// The clauses taken out of the check so far ([`Session::not_applicable`]).
    pub fn clauses_not_applicable(&self) -> &[&'static str] {
        &self.not_applicable
    }

    /// The clauses marked not checked so far ([`Session::not_checked`]).
    pub fn clauses_not_checked(&self) -> &[super::NotChecked] {
        &self.not_checked
    }

    /// Counts one case of a check made of many (a matrix cell) against `clause`, the clause
    /// it exercised: `failure` is its difference line when it broke the clause. See
    /// [`super::ClauseTally`]; clauses keep the order in which they were first tallied.
    pub fn tally(&mut self, clause: super::Clause, failure: Option<String>) {
        let i = match self.tallies.iter().position(|t| t.clause.id == clause.id) {
            Some(i) => i,
            None => {
                self.tallies.push(super::ClauseTally {
                    clause,
                    ran: 0,
                    failing: Vec::new(),
                });
                self.tallies.len() - 1
            }
        };
        let tally = &mut self.tallies[i];
        tally.ran += 1;
        tally.failing.extend(failure);
    }

    /// The clauses tallied so far ([`Session::tally`]).
    pub fn clause_tallies(&self) -> &[super::ClauseTally] {
        &self.tallies
    }

    /// The counterexample offered, if any.
    pub fn counterexample(&self) -> Option<&Counterexample> {
        self.counterexample.as_ref()
    }

    /// The profile the models of this session follow (RFC text, or a stack's documented
    /// deviations).
    pub fn profile(&self) -> ProfileName {
        self.profile
    }

    /// The addresses of the peer (spoken for by the harness) and of the stack.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The IPv4 addresses of the peer and the stack, or `Unsupported` when the target has
    /// no IPv4 address.
    pub fn ipv4(&self) -> Result<Ipv4Pair, CheckError> {
        match (self.endpoints.peer_ipv4, self.endpoints.stack_ipv4) {
            (Some(peer), Some((stack, _))) => Ok(Ipv4Pair {
                peer_mac: self.endpoints.harness_mac,
                stack_mac: self.endpoints.stack_mac,
                peer,
                stack,
            }),
            _ => Err(CheckError::Dut {
                step: "addressing".into(),
                source: DutError::NotSupported {
                    what: "the target has no IPv4 address".into(),
                },
            }),
        }
    }

    /// The retries the harness made in this session to rule out its own loss (a barrier
    /// probe that never reached the stack), one line each; the report shows them.
    pub fn retries(&self) -> &[String] {
        &self.retries
    }

    /// Host names used when rendering this session's trace.
    pub fn host_names(&self) -> &HostNames {
        &self.names
    }

    /// When the last frame received left the stack by the target's own stamp (virtual
    /// clock, kernel timestamp), else when it was read. The trace's time of that frame
    /// ([`Session::last_received`]) is never earlier than the event recorded before it; this
    /// one is, when the stack sent the frame while the harness was making that event.
    pub fn last_left(&self) -> crate::time::Instant {
        self.recorder.last_left()
    }

    /// Whether the target runs on a virtual clock (smoltcp): waiting then costs no real
    /// time, so a check need not overlap its waits with other work.
    pub fn virtual_clock(&self) -> bool {
        self.recorder.virtual_clock()
    }

    /// Scenario time now.
    pub fn now(&self) -> crate::time::Instant {
        self.recorder.now()
    }

    /// When the last frame received left the stack, in scenario time: the kernel's receive
    /// timestamp where the target has one, so that a timer is judged by the stack's clock
    /// and not by how late the harness read the frame.
    pub fn last_received(&self) -> crate::time::Instant {
        self.recorder.last_received()
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        self.recorder.trace()
    }

    /// Ends the session and hands back its trace.
    pub fn into_trace(self) -> Trace {
        self.recorder.into_trace()
    }

    /// Adds a note to the trace (what the check is about to do).
    pub fn note(&mut self, text: impl Into<String>) {
        self.recorder.note(text.into());
    }

    /// Sends `frame` to the stack, as the peer.
    pub fn send(&mut self, step: &str, frame: &Frame) -> Result<(), CheckError> {
        self.send_bytes(step, &frame.emit())
    }

    /// Sends raw bytes (a deliberately broken frame, say) to the stack.
    pub fn send_bytes(&mut self, step: &str, bytes: &[u8]) -> Result<(), CheckError> {
        self.recorder
            .send_frame(bytes)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// Waits up to `timeout` for the next frame the stack sends to the peer (or broadcasts),
    /// passing over unrelated frames.
    pub fn next_frame(
        &mut self,
        step: &str,
        timeout: Duration,
    ) -> Result<Option<Observed>, CheckError> {
        if let Some(kept) = self.kept.take() {
            return Ok(Some(kept));
        }
        let deadline = self.recorder.deadline_after(timeout);
        loop {
            let bytes = self
                .recorder
                .recv_frame(deadline)
                .map_err(|source| CheckError::Dut {
                    step: step.into(),
                    source,
                })?;
            let Some(bytes) = bytes else { return Ok(None) };
            let parsed = Frame::parse(&bytes);
            if let Ok(frame) = &parsed
                && !self.is_relevant(frame)
            {
                continue;
            }
            return Ok(Some(Observed { bytes, parsed }));
        }
    }

    /// Waits for the next relevant frame and compares it with `expected`.
    pub fn expect(
        &mut self,
        step: &str,
        timeout: Duration,
        expected: &dyn Expectation,
    ) -> Result<Frame, CheckError> {
        self.expect_observed(step, timeout, expected)
            .map(|(frame, _)| frame)
    }

    /// [`Session::expect`], and the frame is kept for the next wait (the next
    /// [`Session::next_frame`] returns it at once): for a property of a frame that a later
    /// step also expects (the first frame of a stack that does not resolve its neighbour
    /// goes to the MAC the peer sent from, and is the answer the check then waits for).
    pub fn expect_and_keep(
        &mut self,
        step: &str,
        timeout: Duration,
        expected: &dyn Expectation,
    ) -> Result<(), CheckError> {
        let (_, observed) = self.expect_observed(step, timeout, expected)?;
        self.kept = Some(observed);
        Ok(())
    }

    /// The next frame within `timeout`, compared with `expected`: the parsed frame and
    /// what was observed when it matches.
    fn expect_observed(
        &mut self,
        step: &str,
        timeout: Duration,
        expected: &dyn Expectation,
    ) -> Result<(Frame, Observed), CheckError> {
        self.expecting = Some(expected.describe());
        let Some(observed) = self.next_frame(step, timeout)? else {
            return Err(CheckError::NothingObserved {
                step: format!("{step} ({})", expected.describe()),
                waited: timeout,
            });
        };
        match expected.compare(&observed) {
            Ok(frame) => {
                self.expecting = None;
                Ok((frame, observed))
            }
            Err(differences) => Err(CheckError::Mismatch {
                step: format!("{step} ({})", expected.describe()),
                differences,
            }),
        }
    }

    /// How many times one session may retry harness machinery before it gives up.
    pub const MAX_RETRIES: usize = 3;

    /// The recorder and the list of retries, for [`Session::run_barrier`].
    pub(super) fn barrier_parts(&mut self) -> (&mut Recorder<'t>, &mut Vec<String>) {
        (&mut self.recorder, &mut self.retries)
    }

    /// The sequence number of the last host barrier probe (see [`Session::barrier`]).
    pub(super) fn barrier_seq_mut(&mut self) -> &mut u16 {
        &mut self.barrier_seq
    }

    /// Expects no relevant frame during `window`.
    pub fn expect_silence(&mut self, step: &str, window: Duration) -> Result<(), CheckError> {
        self.expecting = Some(format!("no frame for {window}"));
        match self.next_frame(step, window)? {
            None => {
                self.expecting = None;
                Ok(())
            }
            Some(observed) => Err(CheckError::Unexpected {
                step: step.into(),
                observed: observed.summary(),
            }),
        }
    }

    /// How many ports the target has (1 for a host stack, several for a switch).
    pub fn ports(&self) -> usize {
        self.recorder.ports()
    }

    /// Sends raw bytes into port `port` of the target (recorded with the port).
    pub fn send_on(&mut self, step: &str, port: usize, bytes: &[u8]) -> Result<(), CheckError> {
        self.recorder
            .send_frame_on(port, bytes)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// Sends raw bytes into port `port` without recording them (harness machinery, such as
    /// a barrier probe).
    pub fn send_on_unrecorded(
        &mut self,
        step: &str,
        port: usize,
        bytes: &[u8],
    ) -> Result<(), CheckError> {
        self.recorder
            .send_unrecorded_on(port, bytes)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// The next frame out of any port before `timeout`, not recorded: the port, the bytes
    /// and when it was read. Record it with [`Session::record_received_on`].
    pub fn recv_any_unrecorded(
        &mut self,
        step: &str,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>, crate::time::Instant)>, CheckError> {
        self.recorder
            .recv_any_unrecorded(deadline)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// Records a capture the target made of an exchange between its own two ends (see
    /// [`crate::dut::recorder::Recorder::record_capture`]).
    pub fn record_capture(&mut self, frames: &[(u64, Vec<u8>)], client_mac: MacAddr) {
        self.recorder.record_capture(frames, client_mac);
    }

    /// Records a frame that came out of port `port` at `at`.
    pub fn record_received_on(&mut self, at: crate::time::Instant, port: usize, bytes: Vec<u8>) {
        self.recorder.record_received_on(at, port, bytes);
    }

    /// The monotonic deadline `after` from now.
    pub fn deadline_after(&self, after: Duration) -> std::time::Instant {
        self.recorder.deadline_after(after)
    }

    /// Makes one socket call on the stack.
    pub fn call(&mut self, step: &str, call: SocketCall) -> Result<CallOutcome, CheckError> {
        self.recorder.call(&call).map_err(|source| CheckError::Dut {
            step: step.into(),
            source,
        })
    }

    /// Makes one socket call and requires `expected` as its outcome.
    pub fn call_expect(
        &mut self,
        step: &str,
        call: SocketCall,
        expected: &CallOutcome,
    ) -> Result<(), CheckError> {
        let outcome = self.call(step, call)?;
        if &outcome == expected {
            Ok(())
        } else {
            self.expecting = Some(format!("{step}: {expected}"));
            Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: format!("{expected:?}"),
                observed: format!("{outcome:?}"),
            })
        }
    }

    /// Changes a setting of the stack (recorded in the trace).
    pub fn control(&mut self, step: &str, control: &Control) -> Result<(), CheckError> {
        self.recorder
            .control(control)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// The next frame the stack sends, whatever it is and whoever it is for, with the
    /// scenario time it arrived; `None` once scenario time `until` has passed.
    pub fn next_any_frame(
        &mut self,
        step: &str,
        until: crate::time::Instant,
    ) -> Result<Option<(crate::time::Instant, Observed)>, CheckError> {
        let left = until.saturating_since(self.recorder.now());
        let deadline = self.recorder.deadline_after(left);
        let bytes = self
            .recorder
            .recv_frame(deadline)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })?;
        Ok(bytes.map(|bytes| {
            let at = self.recorder.last_received();
            let parsed = Frame::parse(&bytes);
            (at, Observed { bytes, parsed })
        }))
    }

    /// Names hosts in the trace beyond the lab's two (extra peers a check plays).
    pub fn name_host(&mut self, mac: Option<MacAddr>, ip: Option<IpAddr>, name: &str) {
        if let Some(mac) = mac {
            self.names.insert_mac(mac, name);
        }
        if let Some(ip) = ip {
            self.names.insert_ip(ip, name);
        }
    }

    /// Reads state from the stack.
    pub fn query(&mut self, step: &str, query: StateQuery) -> Result<StateAnswer, CheckError> {
        self.recorder
            .query(&query)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// The service implementations the DUT offers (its service plane).
    pub fn services(&mut self) -> Vec<crate::dut::service::ServiceImpl> {
        self.recorder.services()
    }

    /// One exchange with a service of the DUT, recorded.
    pub fn service(
        &mut self,
        step: &str,
        request: &crate::dut::service::ServiceRequest,
    ) -> Result<crate::dut::service::ServiceAnswer, CheckError> {
        self.recorder
            .service(request)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// Whether the DUT's SYN-ACK waits for its host side
    /// ([`crate::dut::Sockets::answers_wait_for_host`]).
    pub fn answers_wait_for_host(&mut self) -> bool {
        self.recorder.answers_wait_for_host()
    }

    /// After how many more barriers the DUT's host-side answers are out
    /// ([`crate::dut::Sockets::host_answers_within_barriers`]).
    pub fn host_answers_within_barriers(&mut self) -> u8 {
        self.recorder.host_answers_within_barriers()
    }

    /// Why the DUT cannot show its TCP states, when it cannot
    /// ([`crate::dut::Tables::tcp_states_hidden`]): the TCP checks then compare the wire
    /// alone.
    pub fn tcp_states_hidden(&mut self) -> Option<String> {
        self.recorder.tcp_states_hidden()
    }

    /// The stack's TCP socket of connection `local` ↔ `remote`, if it has one
    /// ([`crate::dut::Tables::tcp_connection`]).
    pub fn tcp_connection(
        &mut self,
        step: &str,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Result<Option<TcpSocketState>, CheckError> {
        self.recorder
            .tcp_connection(local, remote)
            .map_err(|source| CheckError::Dut {
                step: step.into(),
                source,
            })
    }

    /// Requires the stack's TCP socket `local_port` ↔ `remote_port` to be in `state`
    /// (`None`: no such socket, i.e. CLOSED).
    pub fn expect_tcp_state(
        &mut self,
        step: &str,
        local_port: u16,
        remote_port: u16,
        state: Option<TcpState>,
    ) -> Result<(), CheckError> {
        if let Some(why) = self.tcp_states_hidden() {
            self.recorder.note(format!(
                "state {local_port}<->{remote_port}: not read ({why}); the wire alone is compared"
            ));
            return Ok(());
        }
        let answer = self.query(step, StateQuery::TcpSockets)?;
        let StateAnswer::TcpSockets(sockets) = answer else {
            return Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: "a TCP socket list".into(),
                observed: format!("{answer:?}"),
            });
        };
        let found: Option<&TcpSocketState> = sockets
            .iter()
            .find(|s| s.local.port() == local_port && s.remote.port() == remote_port);
        let observed = found.map(|s| s.state);
        self.recorder.note(format!(
            "state {local_port}<->{remote_port}: {}",
            observed.map_or("CLOSED".to_string(), |s| s.to_string())
        ));
        if observed == state {
            Ok(())
        } else {
            Err(CheckError::WrongAnswer {
                step: step.into(),
                expected: state.map_or("CLOSED (no socket)".to_string(), |s| s.to_string()),
                observed: observed.map_or("CLOSED (no socket)".to_string(), |s| s.to_string()),
            })
        }
    }

    /// Whether a frame from the stack concerns the peer: ARP, or IP to or from one of the
    /// peer's addresses, or anything unicast to the peer's MAC.
    pub(super) fn is_relevant(&self, frame: &Frame) -> bool {
        let to_peer = frame.ethernet.dst == self.endpoints.harness_mac;
        match &frame.network {
            Network::Arp(_) | Network::ArpRaw(_) => true,
            Network::Ipv4(p) => to_peer || self.endpoints.peer_ipv4 == Some(p.dst),
            Network::Ipv6(p) => to_peer || self.endpoints.peer_ipv6 == Some(p.dst),
            _ => to_peer,
        }
    }
}

/// Names for the two hosts of a lab: `peer` (the harness) and `dut` (the stack under test).
pub fn host_names(endpoints: &Endpoints) -> HostNames {
    let mut names = HostNames::default();
    names.insert_mac(endpoints.harness_mac, "peer");
    names.insert_mac(endpoints.stack_mac, "dut");
    for ip in [
        endpoints.peer_ipv4.map(IpAddr::V4),
        endpoints.peer_ipv6.map(IpAddr::V6),
    ]
    .into_iter()
    .flatten()
    {
        names.insert_ip(ip, "peer");
    }
    for ip in [
        endpoints.stack_ipv4.map(|(a, _)| IpAddr::V4(a)),
        endpoints.stack_ipv6.map(|(a, _)| IpAddr::V6(a)),
    ]
    .into_iter()
    .flatten()
    {
        names.insert_ip(ip, "dut");
    }
    names
}

/// The IPv4 side of a lab: who the harness speaks for, and the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Pair {
    /// The peer's MAC (the harness end of the link).
    pub peer_mac: MacAddr,
    /// The stack's MAC.
    pub stack_mac: MacAddr,
    /// The peer's address.
    pub peer: std::net::Ipv4Addr,
    /// The stack's address.
    pub stack: std::net::Ipv4Addr,
}
