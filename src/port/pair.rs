//! An in-memory port: one end of a `SOCK_SEQPACKET` socket pair. The switch
//! polls one end like any port; a test (or an embedding program) holds the
//! other as a [`PairPeer`] and sends and receives plain Ethernet frames.
//! Needs no privileges, so the dataplane is testable without root.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::os::sys;
use crate::wire::vnet::VNET_HDR_LEN;

/// The switch's end.
pub struct PairPort {
    fd: OwnedFd,
}

/// The other end, for the test.
pub struct PairPeer {
    fd: OwnedFd,
}

/// Creates a connected port and its peer.
pub fn pair() -> io::Result<(PairPort, PairPeer)> {
    let (a, b) = sys::socketpair(libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    Ok((PairPort { fd: a }, PairPeer { fd: b }))
}

impl PairPort {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = sys::read(self.fd.as_raw_fd(), &mut buf[VNET_HDR_LEN..])?;
        buf[..VNET_HDR_LEN].fill(0);
        Ok(VNET_HDR_LEN + n)
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        sys::write(self.fd.as_raw_fd(), &buf[VNET_HDR_LEN..]).map(|_| ())
    }

    pub fn send2(&self, _hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        sys::write(self.fd.as_raw_fd(), frame).map(|_| ())
    }

    pub fn mtu(&self) -> usize {
        1500
    }
}

impl PairPeer {
    /// Sends one frame into the switch.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        sys::write(self.fd.as_raw_fd(), frame).map(|_| ())
    }

    /// Receives one frame from the switch, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one live pollfd, as the count says.
        let r = sys::cvt(unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) })?;
        if r == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; 65536];
        let n = sys::read(self.fd.as_raw_fd(), &mut buf)?;
        buf.truncate(n);
        Ok(Some(buf))
    }
}
