//! The wire plane: an AF_PACKET `SOCK_RAW` socket bound to one interface.
//!
//! Created inside the harness namespace (through [`super::Namespace::run`]) and bound to the
//! harness end of the veth by ifindex, with `ETH_P_ALL` and `PACKET_IGNORE_OUTGOING`, so it
//! sees every frame the stack under test sends and never its own.
//!
//! Every frame received carries the kernel's receive timestamp (`SO_TIMESTAMPNS`), taken
//! when the frame reached the harness end of the veth, that is when the stack sent it.
//! [`PacketSocket::last_received_at`] gives it on the monotonic clock, so a frame's time
//! does not include how long the harness took to read it (on a loaded machine, tens of
//! milliseconds): timer checks measure the stack's clock, not the harness's scheduling.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use super::SandboxError;

/// Receive buffer per frame: a 64 KiB frame (GSO off, but a lying stack may still send one)
/// plus the Ethernet header.
const FRAME_BUF: usize = 65536 + 64;

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    interface: String,
    ifindex: u32,
    /// When the kernel received the last frame returned, on the monotonic clock.
    last_received_at: Cell<Option<Instant>>,
}

impl PacketSocket {
    /// Opens the socket in the **calling thread's** namespace and binds it to `ifindex`
    /// (`interface` is its name, for errors).
    pub fn open(interface: &str, ifindex: u32) -> Result<PacketSocket, SandboxError> {
        Self::open_with(interface, ifindex, true)
    }

    /// Opens a capture socket in the **calling thread's** namespace, bound to `ifindex`:
    /// unlike [`PacketSocket::open`] it also sees the frames the interface sends, so it
    /// records both directions of a conversation between two stacks.
    pub fn open_sniffer(interface: &str, ifindex: u32) -> Result<PacketSocket, SandboxError> {
        Self::open_with(interface, ifindex, false)
    }

    fn open_with(
        interface: &str,
        ifindex: u32,
        ignore_outgoing: bool,
    ) -> Result<PacketSocket, SandboxError> {
        let err = |op: &'static str| SandboxError::Packet {
            interface: interface.to_string(),
            op,
            source: std::io::Error::last_os_error(),
        };
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(err("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one = libc::c_int::from(ignore_outgoing);
        // SAFETY: setsockopt reads an int from a valid pointer with the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(err("setsockopt(PACKET_IGNORE_OUTGOING)"));
        }
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads an int from a valid pointer with the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(err("setsockopt(SO_TIMESTAMPNS)"));
        }
        let rcvbuf: libc::c_int = 8 << 20;
        // SAFETY: as above; SO_RCVBUFFORCE needs CAP_NET_ADMIN, fall back to SO_RCVBUF.
        unsafe {
            let p = (&rcvbuf as *const libc::c_int).cast();
            let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                p,
                len,
            ) < 0
            {
                libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
            }
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: bind reads a sockaddr_ll of the size passed from a valid pointer.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(err("bind"));
        }
        let s = PacketSocket {
            fd,
            interface: interface.to_string(),
            ifindex,
            last_received_at: Cell::new(None),
        };
        // Frames from before the bind (any interface) may be queued: drop them.
        s.drain()?;
        Ok(s)
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn err(&self, op: &'static str, source: std::io::Error) -> SandboxError {
        SandboxError::Packet {
            interface: self.interface.clone(),
            op,
            source,
        }
    }

    /// Sends one Ethernet frame (destination MAC first) out of the interface.
    pub fn send(&self, frame: &[u8]) -> Result<(), SandboxError> {
        loop {
            // SAFETY: send reads `frame.len()` bytes from a valid slice.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    self.poll(libc::POLLOUT, 10)?;
                }
                _ => return Err(self.err("send", e)),
            }
        }
    }

    fn poll(&self, events: libc::c_short, timeout_ms: i32) -> Result<bool, SandboxError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: poll reads and writes exactly one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(self.err("poll", e));
        }
        Ok(rc > 0)
    }

    /// When the kernel received the frame last returned by [`PacketSocket::try_recv`] or
    /// [`PacketSocket::recv`], on the monotonic clock (`None` if it carried no timestamp).
    ///
    /// The kernel stamps frames on the real-time clock; the stamp is turned into a
    /// monotonic instant by its age (real time now minus the stamp) taken at once, so a
    /// step of the real-time clock between the two readings is the only error. A stamp from
    /// the future or more than a minute old (a clock step) counts as none.
    pub fn last_received_at(&self) -> Option<Instant> {
        self.last_received_at.get()
    }

    /// The next frame already queued, or `None` at once when there is none.
    pub fn try_recv(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        let mut buf = vec![0u8; FRAME_BUF];
        // Room for one SCM_TIMESTAMPNS control message (a timespec), 8-byte aligned.
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg writes at most `iov_len` bytes into the buffer and at most
        // `msg_controllen` bytes into the control buffer, both valid for those sizes.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
                _ => Err(self.err("recv", e)),
            };
        }
        let (mono_now, real_now) = (Instant::now(), SystemTime::now());
        buf.truncate(n as usize);
        let mut stamp = None;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel filled in, within
        // `msg_controllen`; a timespec is read unaligned from a message of its type.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    stamp = Some(ts);
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        let at = stamp.and_then(|ts| {
            let when = SystemTime::UNIX_EPOCH.checked_add(Duration::new(
                u64::try_from(ts.tv_sec).ok()?,
                ts.tv_nsec as u32,
            ))?;
            let age = real_now.duration_since(when).ok()?;
            (age < Duration::from_secs(60)).then(|| mono_now.checked_sub(age))?
        });
        self.last_received_at.set(at);
        Ok(Some(buf))
    }

    /// The next frame the interface received, or `None` once `deadline` has passed.
    pub fn recv(&self, deadline: Instant) -> Result<Option<Vec<u8>>, SandboxError> {
        loop {
            if let Some(frame) = self.try_recv()? {
                return Ok(Some(frame));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let left = deadline - now;
            // Round up so we never wake just before the deadline and spin.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            self.poll(libc::POLLIN, ms)?;
        }
    }

    /// Drops every frame already queued; returns how many.
    pub fn drain(&self) -> Result<usize, SandboxError> {
        let mut n = 0;
        while self.try_recv()?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

impl AsFd for PacketSocket {
    /// The socket, e.g. to poll several packet sockets at once.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
