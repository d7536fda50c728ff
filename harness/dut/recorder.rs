//! A recording wrapper around a target: every frame and every call, with its time.
//!
//! The recorder owns the clock of a scenario: it turns the monotonic clock into scenario
//! time ([`crate::time::Instant`], µs since the recorder was made) so that nothing outside
//! `dut/` and `sandbox/` reads a clock. A target on a virtual clock
//! ([`Dut::virtual_now`]) gives the time instead.

use crate::dut::{CallOutcome, Control, Dut, DutError, SocketCall, StateAnswer, StateQuery};
use crate::time::{Duration, Instant};
use crate::trace::Trace;

/// How many frames a stack may send in one check before the recorder calls it a flood
/// ([`DutError::Flood`]). The busiest checks (a matrix row: 96 connections, a few dozen
/// frames each; a route scenario's probes) stay under a tenth of it; a stack in a
/// retransmission storm or a forwarding loop passes it within a second, and would otherwise
/// fill memory with its trace until the check's deadlines ran out.
pub const FLOOD_LIMIT: u64 = 50_000;

/// Wraps a target and records what crosses it.
pub struct Recorder<'t> {
    target: &'t mut dyn Dut,
    start: std::time::Instant,
    /// The target's virtual clock when the recording started (`None`: real time).
    virtual_start: Option<Instant>,
    trace: Trace,
    /// The scenario time of the last frame received.
    last_received: Instant,
    /// When the last frame received left the stack by the target's own stamp (or when it
    /// was read, for a target without stamps), before the floor of [`Recorder::received_at`].
    last_left: Instant,
    /// Ports of the DUT's link plane (0: none), read once.
    ports: usize,
    /// Frames received from the stack so far, recorded or not.
    received: u64,
}

impl<'t> Recorder<'t> {
    /// Starts recording; scenario time zero is now.
    pub fn new(target: &'t mut dyn Dut) -> Self {
        let ports = target.ports();
        Recorder {
            ports,
            virtual_start: target.virtual_now(),
            target,
            start: std::time::Instant::now(),
            trace: Trace::default(),
            last_received: Instant::ZERO,
            last_left: Instant::ZERO,
            received: 0,
        }
    }

    /// Counts `frame` (when there is one) against [`FLOOD_LIMIT`].
    fn count<T>(&mut self, frame: Option<T>) -> Result<Option<T>, DutError> {
        if frame.is_some() {
            self.received += 1;
            if self.received > FLOOD_LIMIT {
                return Err(DutError::Flood {
                    frames: self.received,
                    limit: FLOOD_LIMIT,
                });
            }
        }
        Ok(frame)
    }

    /// Whether scenario time is the target's virtual clock ([`Dut::virtual_now`]): a wait
    /// then costs no real time.
    pub fn virtual_clock(&self) -> bool {
        self.virtual_start.is_some()
    }

    /// Scenario time now.
    pub fn now(&self) -> Instant {
        if let (Some(start), Some(now)) = (self.virtual_start, self.target.virtual_now()) {
            return Instant::ZERO + now.saturating_since(start);
        }
        Instant::ZERO + Duration::from(self.start.elapsed())
    }

    /// When the frame just received left the stack, in scenario time: the target's own
    /// timestamp of it when it has one ([`Link::last_frame_at`](crate::dut::Link::last_frame_at)), else now. It is never
    /// earlier than the last event already recorded, so the trace stays in order (a frame
    /// the stack sent while the harness was sending its own is placed after it).
    fn received_at(&mut self) -> Instant {
        let now = self.now();
        let stamped = match (self.virtual_start, self.target.last_frame_at()) {
            (None, Some(at)) => at
                .checked_duration_since(self.start)
                .map(|d| Instant::ZERO + Duration::from(d))
                .filter(|at| *at <= now),
            _ => None,
        };
        let floor = self.trace.events.last().map_or(Instant::ZERO, |e| e.at);
        self.last_left = stamped.unwrap_or(now);
        let at = self.last_left.max(floor);
        self.last_received = at;
        at
    }

    /// When the last frame received left the stack, by the target's own stamp where it has
    /// one (the virtual clock, or the kernel's receive timestamp), else when it was read;
    /// unlike [`Recorder::last_received`] it may be earlier than events recorded before the
    /// frame was read (a segment the stack sent while the harness was sending its own).
    pub fn last_left(&self) -> Instant {
        self.last_left
    }

    /// The scenario time of the last frame received (see [`Recorder::recv_frame`]).
    pub fn last_received(&self) -> Instant {
        self.last_received
    }

    /// How many frames the stack's interface has received, if the target counts them
    /// ([`Link::frames_delivered`](crate::dut::Link::frames_delivered)).
    pub fn frames_delivered(&mut self) -> Option<u64> {
        self.target.frames_delivered()
    }

    /// How long the target may answer after a barrier's echo reply ([`Dut::answer_lag`]).
    pub fn answer_lag(&self) -> Duration {
        self.target.answer_lag()
    }

    /// The monotonic deadline `after` from now.
    pub fn deadline_after(&self, after: Duration) -> std::time::Instant {
        std::time::Instant::now() + std::time::Duration::from(after)
    }

    /// Sends a frame and records it.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        let at = self.now();
        self.target.send_frame(frame)?;
        self.trace
            .push_frame(at, crate::trace::Direction::Sent, frame.to_vec());
        Ok(())
    }

    /// Receives a frame (or nothing by `deadline`) and records it.
    pub fn recv_frame(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, DutError> {
        let frame = self.target.recv_frame(deadline)?;
        let frame = self.count(frame)?;
        if let Some(bytes) = &frame {
            let at = self.received_at();
            self.trace
                .push_frame(at, crate::trace::Direction::Received, bytes.clone());
        }
        Ok(frame)
    }

    /// Sends a frame that belongs to the harness's machinery, not to the conversation (a
    /// barrier probe): it is not recorded.
    pub fn send_unrecorded(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.target.send_frame(frame)
    }

    /// Receives a frame without recording it; the caller records it with
    /// [`Recorder::record_received`] if it belongs to the conversation.
    pub fn recv_unrecorded(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<Vec<u8>>, DutError> {
        let frame = self.target.recv_frame(deadline)?;
        self.count(frame)
    }

    /// Records a frame received with [`Recorder::recv_unrecorded`].
    pub fn record_received(&mut self, bytes: Vec<u8>) {
        let at = self.received_at();
        self.trace
            .push_frame(at, crate::trace::Direction::Received, bytes);
    }

    /// How many ports the target has (1 for a host stack).
    pub fn ports(&self) -> usize {
        self.ports
    }

    /// Sends a frame into port `port` and records it with its port.
    pub fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        let at = self.now();
        self.target.send_frame_on(port, frame)?;
        self.trace
            .push_port_frame(at, port, crate::trace::Direction::Sent, frame.to_vec());
        Ok(())
    }

    /// Sends a frame into port `port` that belongs to the harness's machinery (a barrier
    /// probe): it is not recorded.
    pub fn send_unrecorded_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        self.target.send_frame_on(port, frame)
    }

    /// Receives the next frame out of any port without recording it: the port, the bytes
    /// and when it was read. The caller records it with [`Recorder::record_received_on`] if
    /// it belongs to the conversation.
    pub fn recv_any_unrecorded(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<Option<(usize, Vec<u8>, Instant)>, DutError> {
        let frame = self.target.recv_frame_any(deadline)?;
        Ok(self
            .count(frame)?
            .map(|(port, bytes)| (port, bytes, self.now())))
    }

    /// Records a frame that came out of port `port` at `at`.
    pub fn record_received_on(&mut self, at: Instant, port: usize, bytes: Vec<u8>) {
        self.trace
            .push_port_frame(at, port, crate::trace::Direction::Received, bytes);
    }

    /// Makes a socket call and records it with its outcome.
    pub fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        let at = self.now();
        let result = self.target.call(call);
        let text = match &result {
            Ok(outcome) => outcome.to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.trace.push_call(at, call.to_string(), text);
        result
    }

    /// The service implementations the DUT offers.
    pub fn services(&mut self) -> Vec<crate::dut::service::ServiceImpl> {
        self.target.offered_services()
    }

    /// One exchange with a service of the target, recorded like a call with a summary of
    /// its answer (what it captured is recorded by the caller).
    pub fn service(
        &mut self,
        request: &crate::dut::service::ServiceRequest,
    ) -> Result<crate::dut::service::ServiceAnswer, DutError> {
        let at = self.now();
        let result = self.target.service(request);
        let text = match &result {
            Ok(crate::dut::service::ServiceAnswer::TlsExchange(run)) => format!(
                "{} frames captured, {} + {} key log lines",
                run.frames.len(),
                run.client_keylog.len(),
                run.server_keylog.len()
            ),
            Err(e) => format!("error: {e}"),
        };
        self.trace.push_call(at, request.to_string(), text);
        result
    }

    /// Changes a setting of the stack and records it with its outcome.
    pub fn control(&mut self, control: &Control) -> Result<(), DutError> {
        let at = self.now();
        let result = self.target.control(control);
        let text = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        self.trace.push_call(at, control.to_string(), text);
        result
    }

    /// Makes a state query (recorded as a call; the answer is summarised).
    pub fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.target.query(query)
    }

    /// The TCP socket of one connection ([`Tables::tcp_connection`](crate::dut::Tables::tcp_connection); not recorded, like a
    /// query).
    pub fn tcp_connection(
        &mut self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Result<Option<crate::dut::TcpSocketState>, DutError> {
        self.target.tcp_connection(local, remote)
    }

    /// [`Sockets::answers_wait_for_host`](crate::dut::Sockets::answers_wait_for_host) (false without a socket plane).
    pub fn answers_wait_for_host(&mut self) -> bool {
        self.target
            .sockets()
            .is_some_and(|s| s.answers_wait_for_host())
    }

    /// [`Sockets::host_answers_within_barriers`](crate::dut::Sockets::host_answers_within_barriers) (0 without a socket plane).
    pub fn host_answers_within_barriers(&mut self) -> u8 {
        self.target
            .sockets()
            .map_or(0, |s| s.host_answers_within_barriers())
    }

    /// Why the DUT cannot show its TCP states ([`Tables::tcp_states_hidden`](crate::dut::Tables::tcp_states_hidden)).
    pub fn tcp_states_hidden(&mut self) -> Option<String> {
        self.target.tables().and_then(|t| t.tcp_states_hidden())
    }

    /// Adds a note.
    pub fn note(&mut self, text: String) {
        let at = self.now();
        self.trace.push_note(at, text);
    }

    /// Records a capture the target made of its own exchange (two stacks talking, the
    /// harness only watching): frames from `client_mac` as sent (`>`), the others as received
    /// (`<`), in capture order and spacing, the last one now.
    pub fn record_capture(&mut self, frames: &[(u64, Vec<u8>)], client_mac: crate::wire::MacAddr) {
        // The capture ended about now: place its last frame here.
        let last = frames.last().map_or(0, |(m, _)| *m);
        let base = self.now().total_micros().saturating_sub(last);
        for (micros, bytes) in frames {
            let at = Instant::from_micros(base + micros);
            let direction = if bytes.get(6..12) == Some(&client_mac.0[..]) {
                crate::trace::Direction::Sent
            } else {
                crate::trace::Direction::Received
            };
            self.trace.push_frame(at, direction, bytes.clone());
        }
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Ends the recording.
    pub fn into_trace(self) -> Trace {
        self.trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dut::{Endpoints, Link};
    use crate::wire::MacAddr;

    /// A stack that answers every read with another frame (a storm).
    struct Storm(Endpoints);

    impl Link for Storm {
        fn send_frame(&mut self, _: &[u8]) -> Result<(), DutError> {
            Ok(())
        }
        fn recv_frame(&mut self, _: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
            Ok(Some(vec![0xff; 60]))
        }
    }

    impl Dut for Storm {
        fn name(&self) -> &str {
            "storm"
        }
        fn endpoints(&self) -> &Endpoints {
            &self.0
        }
        fn link(&mut self) -> Option<&mut dyn Link> {
            Some(self)
        }
    }

    #[test]
    fn a_stack_that_floods_its_link_is_stopped() {
        let mut storm = Storm(Endpoints {
            harness_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            stack_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            stack_ipv4: None,
            peer_ipv4: None,
            stack_ipv6: None,
            peer_ipv6: None,
            mtu: 1500,
        });
        let mut r = Recorder::new(&mut storm);
        let deadline = std::time::Instant::now();
        for _ in 0..FLOOD_LIMIT / 2 {
            assert!(r.recv_frame(deadline).expect("under the limit").is_some());
            assert!(
                r.recv_unrecorded(deadline)
                    .expect("under the limit")
                    .is_some()
            );
        }
        match r.recv_any_unrecorded(deadline) {
            Err(DutError::Flood { frames, limit }) => {
                assert_eq!((frames, limit), (FLOOD_LIMIT + 1, FLOOD_LIMIT));
            }
            other => panic!("expected a flood, got {other:?}"),
        }
        // Only what was recorded is in the trace (half of it), not the flood's tail.
        assert_eq!(r.trace.events.len() as u64, FLOOD_LIMIT / 2);
    }
}
