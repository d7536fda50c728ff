//! The harness ends of a multi-port target: one AF_PACKET socket per port, sent to by port
//! number and read round robin, so that a busy port never hides the others.

use std::os::fd::AsFd;
use std::time::Instant as StdInstant;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::DutError;
use crate::sandbox::PacketSocket;

/// One packet socket per port.
#[derive(Debug)]
pub struct PortSockets {
    sockets: Vec<PacketSocket>,
    /// The port [`PortSockets::recv_any`] looks at first.
    next: usize,
}

impl PortSockets {
    /// Port `i` is `sockets[i]`.
    pub fn new(sockets: Vec<PacketSocket>) -> PortSockets {
        PortSockets { sockets, next: 0 }
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// True when there is no port.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The socket of port `port`.
    pub fn get(&self, port: usize) -> Result<&PacketSocket, DutError> {
        let n = self.sockets.len();
        self.sockets
            .get(port)
            .ok_or_else(|| DutError::NotSupported {
                what: format!("port {port}: the target has {n} ports"),
            })
    }

    /// Sends `frame` into port `port`.
    pub fn send_on(&self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        Ok(self.get(port)?.send(frame)?)
    }

    /// Drops every frame already queued on every port.
    pub fn drain(&self) -> Result<(), DutError> {
        for s in &self.sockets {
            s.drain()?;
        }
        Ok(())
    }

    /// The next frame out of any port, with the port, or None once `deadline` passed.
    pub fn recv_any(&mut self, deadline: StdInstant) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        let n = self.sockets.len();
        loop {
            for k in 0..n {
                let port = (self.next + k) % n;
                if let Some(frame) = self.sockets[port].try_recv()? {
                    self.next = (port + 1) % n;
                    return Ok(Some((port, frame)));
                }
            }
            let now = StdInstant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Round up so we never wake just before the deadline and spin.
            let ms = (deadline - now).as_micros().div_ceil(1000);
            let ms = u16::try_from(ms).unwrap_or(u16::MAX);
            let mut fds: Vec<PollFd<'_>> = self
                .sockets
                .iter()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
                .collect();
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(DutError::Io {
                        op: "poll the packet sockets of the ports".into(),
                        source: std::io::Error::from_raw_os_error(e as i32),
                    });
                }
            }
        }
    }
}

/// The link plane of a DUT with several ports (the bridge, the router): port `i` is
/// socket `i`; a host-style read or write is port 0's.
impl crate::dut::Link for PortSockets {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), DutError> {
        self.send_on(0, frame)
    }

    /// The next frame out of port 0 only (the other ports keep theirs).
    fn recv_frame(&mut self, deadline: StdInstant) -> Result<Option<Vec<u8>>, DutError> {
        Ok(self.get(0)?.recv(deadline)?)
    }

    fn ports(&self) -> usize {
        self.len()
    }

    fn send_frame_on(&mut self, port: usize, frame: &[u8]) -> Result<(), DutError> {
        self.send_on(port, frame)
    }

    fn recv_frame_any(
        &mut self,
        deadline: StdInstant,
    ) -> Result<Option<(usize, Vec<u8>)>, DutError> {
        self.recv_any(deadline)
    }
}
