//! A wire plane over a UNIX stream socket in qemu's stream framing: each Ethernet frame is
//! preceded by its length, a 32-bit big-endian number (qemu `-netdev stream`, passt,
//! libkrun). It stands where a [`super::PacketSocket`] on a veth end stands for the other
//! targets: send one frame, read the next one by a deadline; a closed socket is an error,
//! never a silence.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use super::SandboxError;

/// The largest frame a peer may announce (a jumbo frame and its headers; passt's own
/// limit is 65535).
pub const MAX_FRAME: usize = 65_535 + 14;

/// A connected qemu-stream socket.
#[derive(Debug)]
pub struct StreamLink {
    stream: UnixStream,
    path: String,
    pending: Vec<u8>,
}

fn io(path: &str, op: &str, source: std::io::Error) -> SandboxError {
    SandboxError::File {
        path: path.to_string(),
        op: format!("qemu stream socket: {op}"),
        source,
    }
}

impl StreamLink {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<StreamLink, SandboxError> {
        let name = path.display().to_string();
        let stream = UnixStream::connect(path).map_err(|e| io(&name, "connect", e))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| io(&name, "set non-blocking", e))?;
        Ok(StreamLink {
            stream,
            path: name,
            pending: Vec::new(),
        })
    }

    /// Connects to the socket at `path`, trying again until `within` has passed while
    /// nobody listens there yet (a server binds its socket before it listens on it).
    pub fn connect_within(
        path: &Path,
        within: std::time::Duration,
    ) -> Result<StreamLink, SandboxError> {
        let until = Instant::now() + within;
        loop {
            match Self::connect(path) {
                Err(SandboxError::File { source, .. })
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                    ) && Instant::now() < until =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    /// Sends one frame (its length first).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SandboxError> {
        let len = u32::try_from(frame.len()).map_err(|_| {
            io(
                &self.path,
                "send",
                std::io::Error::other(format!("a frame of {} bytes", frame.len())),
            )
        })?;
        let mut out = Vec::with_capacity(frame.len() + 4);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(frame);
        let mut sent = 0;
        while sent < out.len() {
            match self.stream.write(&out[sent..]) {
                Ok(0) => {
                    return Err(io(&self.path, "send", std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.wait(
                        nix::poll::PollFlags::POLLOUT,
                        Some(Instant::now() + std::time::Duration::from_secs(1)),
                    )?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(&self.path, "send", e)),
            }
        }
        Ok(())
    }

    /// A whole frame from what was read, if one is there.
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, SandboxError> {
        let Some(head) = self.pending.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(io(
                &self.path,
                "receive",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the peer announced a frame of {len} bytes (at most {MAX_FRAME}): not qemu stream framing"
                    ),
                ),
            ));
        }
        if self.pending.len() < 4 + len {
            return Ok(None);
        }
        let frame = self.pending[4..4 + len].to_vec();
        self.pending.drain(..4 + len);
        Ok(Some(frame))
    }

    /// Waits until the socket is ready for `flags`, or `deadline` passed (false).
    fn wait(
        &self,
        flags: nix::poll::PollFlags,
        deadline: Option<Instant>,
    ) -> Result<bool, SandboxError> {
        use nix::poll::{PollFd, PollTimeout, poll};
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = match left {
            None => PollTimeout::NONE,
            Some(l) => PollTimeout::from(l.as_millis().min(60_000) as u16),
        };
        let mut fds = [PollFd::new(self.stream.as_fd(), flags)];
        match poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(io(&self.path, "poll", e.into())),
        }
    }

    /// The next frame, or `None` when `deadline` passed. The peer closing the socket is an
    /// error ([`std::io::ErrorKind::UnexpectedEof`]).
    pub fn recv(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, SandboxError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 65_536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io(
                        &self.path,
                        "receive",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the peer closed the socket",
                        ),
                    ));
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(&self.path, "receive", e)),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.wait(nix::poll::PollFlags::POLLIN, Some(deadline))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_a_socket_pair_in_qemu_framing() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut link = StreamLink {
            stream: a,
            path: "pair".into(),
            pending: Vec::new(),
        };
        link.send(b"abc").unwrap();
        let mut got = [0u8; 7];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\0\0\0\x03abc");
        // Two frames in one write, the second cut in the middle, then its rest.
        b.write_all(b"\0\0\0\x02hi\0\0\0\x05wo").unwrap();
        let soon = || Instant::now() + std::time::Duration::from_millis(200);
        assert_eq!(link.recv(soon()).unwrap(), Some(b"hi".to_vec()));
        assert_eq!(link.recv(soon()).unwrap(), None);
        b.write_all(b"rld").unwrap();
        assert_eq!(link.recv(soon()).unwrap(), Some(b"world".to_vec()));
        // A length no frame has is garbage, said so.
        b.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        let e = link.recv(soon()).unwrap_err().to_string();
        assert!(e.contains("not qemu stream framing"), "{e}");
        // A closed socket is an error, not a silence.
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut link = StreamLink {
            stream: a,
            path: "pair".into(),
            pending: Vec::new(),
        };
        drop(b);
        let e = link.recv(soon()).unwrap_err().to_string();
        assert!(e.contains("closed the socket"), "{e}");
    }
}
