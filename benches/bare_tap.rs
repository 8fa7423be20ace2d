//! A TAP opened the way vswitchd opens one, with `libc` only (the bare
//! forwarders do not depend on the library's port types, so that they
//! measure the syscalls alone and keep building while those change):
//! `/dev/net/tun` non-blocking, `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, a
//! 10-byte virtio-net header (`TUNSETVNETHDRSZ`), checksum and TSO
//! offloads granted (`TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN`), then the link
//! brought up. A frame read from one such TAP can be written unchanged,
//! header included, to another.
//!
//! Shared by the `bare_forwarder` and `bare_drain` examples (`mod bare_tap;`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The virtio-net header without `num_buffers` (what vswitchd sets).
pub const VNET_HDR_LEN: usize = 10;

/// A TAP's file descriptor, closed on drop.
pub struct Tap {
    fd: OwnedFd,
}

/// `err` with `what` (the TAP's name and the step that failed) in front.
fn context(what: String, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// `-1` from a syscall becomes the thread's `errno`.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An `ifreq` holding `name` and nothing else.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?}: not a valid interface name"),
        ));
    }
    // SAFETY: `ifreq` is plain data (a byte array and a union of integers,
    // socket addresses and a pointer); all zeroes is a valid value of it.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// Sets IFF_UP on interface `name` (in this network namespace).
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: socket() takes no pointers; its result is checked below.
    let s =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `s` is a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    let mut ifr = ifreq(name)?;
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into
    // `ifr`, a valid `ifreq` that outlives the call.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) })?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds the flags.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short == 0 {
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: SIOCSIFFLAGS only reads `ifr`, valid for the call.
        check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) })?;
    }
    Ok(())
}

impl Tap {
    /// Creates TAP `name` (or attaches to the persistent TAP of that name)
    /// with the virtio-net header and offloads, and brings it up.
    pub fn open(name: &str) -> io::Result<Tap> {
        const TUN: &CStr = c"/dev/net/tun";
        let mut ifr = ifreq(name)?;
        // SAFETY: `TUN` is a NUL-terminated path; the result is checked.
        let fd = check(unsafe {
            libc::open(
                TUN.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })
        .map_err(|e| context(format!("{name}: open /dev/net/tun"), e))?;
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as _;
        // SAFETY: TUNSETIFF reads and writes `ifr`, a valid `ifreq` that
        // outlives the call.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) })
            .map_err(|e| context(format!("{name}: TUNSETIFF"), e))?;
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which
        // points to `hdr_len`, alive for the call.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len) })
            .map_err(|e| context(format!("{name}: TUNSETVNETHDRSZ"), e))?;
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        // SAFETY: TUNSETOFFLOAD takes its argument by value (no pointer).
        check(unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(offloads),
            )
        })
        .map_err(|e| context(format!("{name}: TUNSETOFFLOAD"), e))?;
        set_up(name).map_err(|e| context(format!("{name}: bring up"), e))?;
        Ok(Tap { fd })
    }

    /// The descriptor, for poll(2) or epoll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// One frame, virtio-net header first, into `buf`; `WouldBlock` when
    /// none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
        let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Sends one frame, virtio-net header first.
    pub fn write(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes for the call.
        let n = unsafe { libc::write(self.fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}
