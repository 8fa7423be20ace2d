//! Unix-socket ports for QEMU guests that need no TAP and no root.
//!
//! - `unix:PATH` listens on a stream socket; QEMU connects with
//!   `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH`. Each
//!   frame is preceded by its length as a 4-byte big-endian number. One
//!   peer at a time: a new connection replaces the old one (QEMU restarted).
//! - `unixgram:PATH` binds a datagram socket; QEMU sends one frame per
//!   datagram with `-netdev dgram,id=n0,local.type=unix,local.path=Q,
//!   remote.type=unix,remote.path=PATH`; vswitchd answers the last sender.
//!
//! The socket file is created with mode 0600 (or the configured mode, e.g.
//! 0660 for a group of QEMU users). The port polls through a private epoll
//! instance holding the listener and the connection, so the dataplane sees
//! one stable fd while peers come and go.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::PortError;
use crate::os::sys;
use crate::wire::stream::{MAX_FRAME, StreamDecoder};
use crate::wire::vnet::VNET_HDR_LEN;

const LISTENER: u64 = 1;
const CONN: u64 = 2;

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_encoded_bytes();
    if b.is_empty() || b.len() >= sa.sun_path.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in sa.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + b.len() + 1;
    Ok((sa, len as libc::socklen_t))
}

/// A socket's file, removed when the port that bound it closes.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Creates and binds a unix socket at `path` with `mode`, replacing a stale
/// socket file (but never a live one or a non-socket file).
fn bind_unix(path: &Path, ty: libc::c_int, mode: u32, name: &str) -> Result<OwnedFd, PortError> {
    let io = |step: &'static str| {
        move |e| PortError::Io {
            port: name.to_string(),
            step,
            source: e,
        }
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(PortError::BadName {
                port: name.into(),
                why: format!("{} exists and is not a socket", path.display()),
            });
        }
        if ty == libc::SOCK_STREAM && std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(PortError::BadName {
                port: name.into(),
                why: format!("another process is listening on {}", path.display()),
            });
        }
        std::fs::remove_file(path).map_err(io("remove stale socket"))?;
    }
    let fd = sys::socket(
        libc::AF_UNIX,
        ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    )
    .map_err(io("socket(AF_UNIX)"))?;
    let (sa, len) = sockaddr(path).map_err(|_| PortError::BadName {
        port: name.into(),
        why: "socket paths are 1 to 107 bytes".into(),
    })?;
    let old = sys::umask(0o177);
    // SAFETY: `sa` is a live sockaddr_un and `len` covers its used part.
    let r = sys::cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    });
    sys::umask(old);
    r.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => PortError::Io {
            port: name.into(),
            step: "bind (does the directory exist?)",
            source: e,
        },
        _ => io("bind")(e),
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
    Ok(fd)
}

fn epoll_add(ep: &OwnedFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` is a live epoll_event for the duration of the call.
    sys::cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    Ok(())
}

/// Takes `fd` out of the epoll set (a connection replaced or closed).
fn epoll_del(ep: &OwnedFd, fd: RawFd) {
    // SAFETY: removing an fd from an epoll set; no memory is shared (the
    // event pointer may be null for EPOLL_CTL_DEL).
    unsafe {
        libc::epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            std::ptr::null_mut(),
        );
    }
}

fn epoll_ready(ep: &OwnedFd) -> io::Result<(bool, bool)> {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
    // SAFETY: `evs` has room for the 4 events we ask for.
    let n = sys::cvt(unsafe { libc::epoll_wait(ep.as_raw_fd(), evs.as_mut_ptr(), 4, 0) })? as usize;
    let (mut l, mut c) = (false, false);
    for e in &evs[..n] {
        match e.u64 {
            LISTENER => l = true,
            CONN => c = true,
            _ => {}
        }
    }
    Ok((l, c))
}

/// `unix:PATH`.
pub struct UnixStreamPort {
    name: String,
    /// Removed when the port closes.
    _file: SocketFile,
    epoll: OwnedFd,
    listener: OwnedFd,
    conn: Mutex<Option<std::sync::Arc<OwnedFd>>>,
    /// Reassembly of the connection's frames; only the polling worker
    /// touches it.
    rx: Mutex<StreamDecoder>,
    /// Serialises writers so length prefix and frame stay together.
    tx: Mutex<()>,
}

impl UnixStreamPort {
    pub fn open(path: &Path, mode: u32) -> Result<UnixStreamPort, PortError> {
        let name = format!("unix:{}", path.display());
        let listener = bind_unix(path, libc::SOCK_STREAM, mode, &name)?;
        let io = |step: &'static str| {
            let name = name.clone();
            move |e| PortError::Io {
                port: name,
                step,
                source: e,
            }
        };
        // SAFETY: plain syscall with an integer argument.
        sys::cvt(unsafe { libc::listen(listener.as_raw_fd(), 4) }).map_err(io("listen"))?;
        // SAFETY: plain syscall; the fd is owned right after.
        let ep = sys::cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(io("epoll_create1"))?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        epoll_add(&epoll, listener.as_raw_fd(), LISTENER).map_err(io("epoll_ctl"))?;
        Ok(UnixStreamPort {
            name,
            _file: SocketFile(path.to_path_buf()),
            epoll,
            listener,
            conn: Mutex::new(None),
            rx: Mutex::new(StreamDecoder::new()),
            tx: Mutex::new(()),
        })
    }

    fn accept(&self) -> io::Result<()> {
        // SAFETY: accept4 with null address pointers is allowed.
        let fd = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        let fd = sys::cvt(fd)?;
        // SAFETY: accept4 just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let big: libc::c_int = 4 << 20;
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &big);
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &big);
        let mut conn = self.conn.lock();
        if let Some(old) = conn.take() {
            tracing::info!(port = %self.name, "new peer replaces the connected one");
            epoll_del(&self.epoll, old.as_raw_fd());
        } else {
            tracing::info!(port = %self.name, "peer connected");
        }
        epoll_add(&self.epoll, fd.as_raw_fd(), CONN)?;
        *conn = Some(std::sync::Arc::new(fd));
        self.rx.lock().clear();
        Ok(())
    }

    fn disconnect(&self) {
        let mut conn = self.conn.lock();
        if let Some(old) = conn.take() {
            epoll_del(&self.epoll, old.as_raw_fd());
            tracing::info!(port = %self.name, "peer disconnected");
        }
    }

    /// Takes one complete frame out of the reassembly buffer into `buf`
    /// (after a zero virtio-net header; a frame longer than `buf` is cut).
    fn take_frame(rx: &mut StreamDecoder, buf: &mut [u8]) -> Option<io::Result<usize>> {
        match rx.next_frame()? {
            Ok(frame) => {
                let n = frame.len().min(buf.len() - VNET_HDR_LEN);
                buf[..VNET_HDR_LEN].fill(0);
                buf[VNET_HDR_LEN..VNET_HDR_LEN + n].copy_from_slice(&frame[..n]);
                Some(Ok(VNET_HDR_LEN + n))
            }
            Err(_) => Some(Err(io::Error::from_raw_os_error(libc::EPROTO))),
        }
    }
}

impl UnixStreamPort {
    pub fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rx = self.rx.lock();
        loop {
            match Self::take_frame(&mut rx, buf) {
                Some(Ok(n)) => return Ok(n),
                Some(Err(e)) => {
                    // The stream cannot be resynchronised: drop what is
                    // buffered with the connection, so the next peer's
                    // frames are read (not this error again).
                    rx.clear();
                    drop(rx);
                    tracing::warn!(port = %self.name, "bad frame length from peer; disconnecting");
                    self.disconnect();
                    return Err(e);
                }
                None => {}
            }
            let (listener_ready, conn_ready) = epoll_ready(&self.epoll)?;
            if listener_ready {
                drop(rx);
                if let Err(e) = self.accept() {
                    tracing::warn!(port = %self.name, "accept failed: {e}");
                }
                rx = self.rx.lock();
                continue;
            }
            let conn = self.conn.lock().clone();
            let Some(conn) = conn.filter(|_| conn_ready) else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            match rx.read_from(|room| sys::read(conn.as_raw_fd(), room)) {
                Ok(0) => {
                    drop(rx);
                    self.disconnect();
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(_) => {}
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted
                    {
                        continue;
                    }
                    drop(rx);
                    self.disconnect();
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
        }
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        self.send2(&buf[..VNET_HDR_LEN], &buf[VNET_HDR_LEN..])
    }

    pub fn send2(&self, _hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        let Some(conn) = self.conn.lock().clone() else {
            return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
        };
        let len = (frame.len() as u32).to_be_bytes();
        let _tx = self.tx.lock();
        let n = match sys::writev2(conn.as_raw_fd(), &len, frame) {
            Ok(n) => n,
            Err(e)
                if e.raw_os_error() == Some(libc::EPIPE)
                    || e.raw_os_error() == Some(libc::ECONNRESET) =>
            {
                return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
            }
            Err(e) => return Err(e),
        };
        let total = 4 + frame.len();
        if n == total {
            return Ok(());
        }
        // A partial write: the rest must follow or the stream is corrupt.
        // Wait for room, bounded; give up on the peer if it stays full.
        let mut done = n;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while done < total {
            let mut pfd = libc::pollfd {
                fd: conn.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one live pollfd, as the count says.
            unsafe { libc::poll(&mut pfd, 1, 50) };
            let (a, b): (&[u8], &[u8]) = if done < 4 {
                (&len[done..], frame)
            } else {
                (&[], &frame[done - 4..])
            };
            match sys::writev2(conn.as_raw_fd(), a, b) {
                Ok(k) => done += k,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
            if std::time::Instant::now() > deadline {
                break;
            }
        }
        if done < total {
            drop(_tx);
            tracing::warn!(port = %self.name, "peer stopped reading mid-frame; disconnecting");
            self.disconnect();
            return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
        }
        Ok(())
    }

    pub fn carrier(&self) -> Option<bool> {
        Some(self.conn.lock().is_some())
    }

    pub fn mtu(&self) -> usize {
        // QEMU's stream/dgram backends carry up to 64 KiB frames; the guest
        // sets its own MTU.
        MAX_FRAME - 18
    }
}

/// `unixgram:PATH`.
pub struct UnixDgramPort {
    name: String,
    /// Removed when the port closes.
    _file: SocketFile,
    fd: OwnedFd,
    peer: Mutex<Option<(libc::sockaddr_un, libc::socklen_t)>>,
}

impl UnixDgramPort {
    pub fn open(path: &Path, mode: u32) -> Result<UnixDgramPort, PortError> {
        let name = format!("unixgram:{}", path.display());
        let fd = bind_unix(path, libc::SOCK_DGRAM, mode, &name)?;
        let big: libc::c_int = 4 << 20;
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &big);
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &big);
        Ok(UnixDgramPort {
            name,
            _file: SocketFile(path.to_path_buf()),
            fd,
            peer: Mutex::new(None),
        })
    }
}

impl UnixDgramPort {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let room = &mut buf[VNET_HDR_LEN..];
        // SAFETY: `room` is writable for its length; `sa`/`len` are live and
        // describe a buffer of the size we pass.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                room.as_mut_ptr() as *mut libc::c_void,
                room.len(),
                0,
                &mut sa as *mut _ as *mut libc::sockaddr,
                &mut len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize > std::mem::size_of::<libc::sa_family_t>() {
            let mut peer = self.peer.lock();
            let changed = peer
                .map(|(p, l)| l != len || p.sun_path != sa.sun_path)
                .unwrap_or(true);
            if changed {
                tracing::info!(port = %self.name, "peer is now sending");
                *peer = Some((sa, len));
            }
        }
        buf[..VNET_HDR_LEN].fill(0);
        Ok(VNET_HDR_LEN + n as usize)
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        self.send2(&buf[..VNET_HDR_LEN], &buf[VNET_HDR_LEN..])
    }

    pub fn send2(&self, _hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        let Some((sa, len)) = *self.peer.lock() else {
            return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
        };
        // SAFETY: `frame` is readable for its length; `sa` is a live address
        // of `len` bytes.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                len,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // The peer's socket is gone (QEMU exited): link down until it
            // sends again.
            if matches!(
                e.raw_os_error(),
                Some(libc::ECONNREFUSED) | Some(libc::ENOENT)
            ) {
                *self.peer.lock() = None;
                return Err(io::Error::from_raw_os_error(libc::ENETDOWN));
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn carrier(&self) -> Option<bool> {
        Some(self.peer.lock().is_some())
    }

    pub fn mtu(&self) -> usize {
        MAX_FRAME - 18
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    fn wait_recv(recv: impl Fn(&mut [u8]) -> io::Result<usize>, buf: &mut [u8]) -> usize {
        for _ in 0..200 {
            match recv(buf) {
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no frame");
    }

    fn assert_mode(path: &Path, mode: u32) {
        let m = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "socket file mode");
    }

    #[test]
    fn stream_port_frames_both_ways_and_reconnects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.sock");
        let port = UnixStreamPort::open(&path, 0o600).unwrap();
        assert_mode(&path, 0o600);
        assert_eq!(
            port.send2(&[0; 10], &[1, 2, 3]).unwrap_err().raw_os_error(),
            Some(libc::ENETDOWN),
            "no peer yet: link down"
        );
        let mut peer = std::os::unix::net::UnixStream::connect(&path).unwrap();
        // Two frames in one write, the second split across writes.
        peer.write_all(&[0, 0, 0, 3, 9, 8, 7, 0, 0, 0, 2, 5])
            .unwrap();
        let mut buf = vec![0u8; 70000];
        let n = wait_recv(|b| port.recv(b), &mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..n], &[9, 8, 7]);
        peer.write_all(&[6]).unwrap();
        let n = wait_recv(|b| port.recv(b), &mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..n], &[5, 6]);
        port.send2(&[0; 10], &[1, 2, 3]).unwrap();
        let mut got = [0u8; 7];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, [0, 0, 0, 3, 1, 2, 3]);
        // QEMU restarts: a new connection takes over.
        let mut peer2 = std::os::unix::net::UnixStream::connect(&path).unwrap();
        peer2.write_all(&[0, 0, 0, 1, 42]).unwrap();
        let n = wait_recv(|b| port.recv(b), &mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..n], &[42]);
        drop(port);
        assert!(!path.exists(), "socket file removed on close");
    }

    #[test]
    fn a_length_over_the_limit_drops_the_peer_not_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.sock");
        let port = UnixStreamPort::open(&path, 0o600).unwrap();
        let mut bad = std::os::unix::net::UnixStream::connect(&path).unwrap();
        bad.write_all(&[0, 1, 0, 0, 1, 2, 3]).unwrap();
        let mut buf = vec![0u8; 70000];
        let mut err = None;
        for _ in 0..200 {
            match port.recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                r => {
                    err = Some(r);
                    break;
                }
            }
        }
        let err = err.expect("an answer").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPROTO));
        let mut n = [0u8; 1];
        assert_eq!(bad.read(&mut n).unwrap(), 0, "the bad peer is disconnected");
        // The next peer is served.
        let mut good = std::os::unix::net::UnixStream::connect(&path).unwrap();
        good.write_all(&[0, 0, 0, 1, 42]).unwrap();
        let n = wait_recv(|b| port.recv(b), &mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..n], &[42]);
    }

    #[test]
    fn live_socket_is_not_stolen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.sock");
        let _a = UnixStreamPort::open(&path, 0o600).unwrap();
        let e = UnixStreamPort::open(&path, 0o600)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("another process"), "{e}");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = UnixStreamPort::open(&file, 0o600)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a socket"), "{e}");
    }

    #[test]
    fn dgram_port_answers_the_last_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vs.sock");
        let port = UnixDgramPort::open(&path, 0o660).unwrap();
        assert_mode(&path, 0o660);
        let qpath = dir.path().join("qemu.sock");
        let q = std::os::unix::net::UnixDatagram::bind(&qpath).unwrap();
        q.send_to(&[1, 2, 3, 4], &path).unwrap();
        let mut buf = vec![0u8; 70000];
        let n = wait_recv(|b| port.recv(b), &mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..n], &[1, 2, 3, 4]);
        port.send2(&[0; 10], &[7, 7]).unwrap();
        let mut got = [0u8; 16];
        let k = q.recv(&mut got).unwrap();
        assert_eq!(&got[..k], &[7, 7]);
    }
}
