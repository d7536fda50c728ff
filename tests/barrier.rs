//! The barrier's retry: made only when the harness's own probe provably never reached the
//! stack (its interface's receive counter did not move), counted, and never when the stack
//! got the probe and stayed silent.

#[macro_use]
mod common;

use netconform::dut::linux::LinuxHost;
use netconform::dut::{
    CallOutcome, Control, Dut, DutError, Endpoints, SocketCall, StateAnswer, StateQuery,
};
use netconform::engine::{CheckError, Session};
use netconform::sandbox::LabConfig;
use netconform::time::Duration;

/// The Linux target, with frames of the harness's machinery lost on the way in (the first
/// `drop_sent` frames the harness sends never leave it) or the stack's answers lost on the
/// way out (`drop_received`).
struct Lossy {
    inner: LinuxHost,
    drop_sent: usize,
    drop_received: usize,
}

impl Dut for Lossy {
    fn name(&self) -> &str {
        "lossy linux"
    }

    fn endpoints(&self) -> &Endpoints {
        self.inner.endpoints()
    }

    fn link(&mut self) -> Option<&mut dyn netconform::dut::Link> {
        Some(self)
    }

    fn sockets(&mut self) -> Option<&mut dyn netconform::dut::Sockets> {
        Some(self)
    }

    fn tables(&mut self) -> Option<&mut dyn netconform::dut::Tables> {
        Some(self)
    }
}

impl netconform::dut::Link for Lossy {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        if self.drop_sent > 0 {
            self.drop_sent -= 1;
            return Ok(());
        }
        self.inner.send_frame(frame)
    }

    fn recv_frame(&mut self, deadline: std::time::Instant) -> Result<Option<Vec<u8>>, DutError> {
        loop {
            let frame = self.inner.recv_frame(deadline)?;
            if frame.is_some() && self.drop_received > 0 {
                self.drop_received -= 1;
                continue;
            }
            return Ok(frame);
        }
    }

    fn frames_delivered(&mut self) -> Option<u64> {
        self.inner.frames_delivered()
    }
}

impl netconform::dut::Sockets for Lossy {
    fn call(&mut self, call: &SocketCall) -> Result<CallOutcome, DutError> {
        self.inner.call(call)
    }
}

impl netconform::dut::Tables for Lossy {
    fn query(&mut self, query: &StateQuery) -> Result<StateAnswer, DutError> {
        self.inner.query(query)
    }

    fn control(&mut self, control: &Control) -> Result<(), DutError> {
        self.inner.control(control)
    }
}

fn lossy(drop_sent: usize, drop_received: usize) -> Lossy {
    let config = LabConfig {
        static_neighbours: true,
        ipv6: None,
        ..LabConfig::default()
    };
    Lossy {
        inner: LinuxHost::new(config).expect("lab"),
        drop_sent,
        drop_received,
    }
}

#[test]
fn a_probe_that_never_reached_the_stack_is_sent_again_and_counted() {
    require_netns!();
    let mut target = lossy(1, 0);
    let mut session = Session::new(&mut target);
    let observed = session
        .barrier("barrier", false, Duration::from_millis(300))
        .expect("the second probe is answered");
    assert!(observed.is_empty(), "{observed:?}");
    assert_eq!(session.retries().len(), 1, "{:?}", session.retries());
    assert!(
        session.retries()[0].contains("never reached the stack's interface"),
        "{:?}",
        session.retries()
    );
    let text = session.trace().render(session.host_names());
    assert!(text.contains("harness retry:"), "{text}");
}

#[test]
fn a_probe_the_stack_received_is_never_retried() {
    require_netns!();
    // The stack answers, but its answer is lost: from the harness's side exactly what a
    // stack that stays silent looks like. Its interface received the probe, so this is not
    // the harness's loss, and the barrier fails without a retry.
    let mut target = lossy(0, 1);
    let mut session = Session::new(&mut target);
    let err = session
        .barrier("barrier", false, Duration::from_millis(300))
        .expect_err("no reply came");
    assert!(matches!(err, CheckError::NothingObserved { .. }), "{err:?}");
    assert!(session.retries().is_empty(), "{:?}", session.retries());
}

#[test]
fn retries_are_bounded() {
    require_netns!();
    let mut target = lossy(100, 0);
    let mut session = Session::new(&mut target);
    let err = session
        .barrier("barrier", false, Duration::from_millis(100))
        .expect_err("every probe is lost");
    assert!(matches!(err, CheckError::NothingObserved { .. }), "{err:?}");
    assert_eq!(session.retries().len(), Session::MAX_RETRIES);
}
