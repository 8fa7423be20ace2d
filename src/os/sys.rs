//! Thin, checked wrappers over the Linux calls ports and the dataplane
//! need.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub const IFNAMSIZ: usize = 16;

/// `struct ifreq`: a name and a 24-byte union.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IfReq {
    pub name: [u8; IFNAMSIZ],
    pub data: [u8; 24],
}

impl IfReq {
    pub fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; IFNAMSIZ],
            data: [0; 24],
        };
        let n = name.len().min(IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }

    pub fn short(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }

    pub fn set_short(&mut self, v: i16) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }

    pub fn int(&self) -> i32 {
        i32::from_ne_bytes(self.data[..4].try_into().unwrap())
    }

    pub fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
}

/// Turns a -1 return into the thread's errno.
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Clears O_NONBLOCK on `fd` (for io_uring, see [`super::uring`]).
pub fn set_blocking(fd: RawFd) -> io::Result<()> {
    set_nonblocking(fd, false)
}

/// Sets or clears O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL take and return plain integers; no
    // memory is shared.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let want = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if want != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, want) })?;
    }
    Ok(())
}

/// `ioctl(fd, req, &mut ifreq)`.
pub fn ioctl_ifreq(fd: RawFd, req: libc::c_ulong, ifr: &mut IfReq) -> io::Result<()> {
    // SAFETY: `ifr` is a valid, exclusively borrowed `struct ifreq`-sized
    // buffer for the duration of the call; the requests used with it read
    // and write only within it.
    cvt(unsafe { libc::ioctl(fd, req as _, ifr as *mut IfReq) })?;
    Ok(())
}

/// `ioctl(fd, req, int)` for requests that take an integer argument.
pub fn ioctl_int(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the request takes its argument by value; no memory is shared.
    cvt(unsafe { libc::ioctl(fd, req as _, arg) })?;
    Ok(())
}

/// `ioctl(fd, req, &int)` for requests that read an int through a pointer.
pub fn ioctl_int_ptr(fd: RawFd, req: libc::c_ulong, arg: &mut libc::c_int) -> io::Result<()> {
    // SAFETY: `arg` points to a live, exclusively borrowed int for the call.
    cvt(unsafe { libc::ioctl(fd, req as _, arg as *mut libc::c_int) })?;
    Ok(())
}

/// Opens `path` with `flags`, returning an owned fd.
pub fn open(path: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags) })?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socket(domain, ty, proto)` as an owned fd.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty, proto) })?;
    // SAFETY: `socket` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `socketpair(AF_UNIX, ty)`.
pub fn socketpair(ty: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair expects.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair just returned both fds; each gets one owner.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `setsockopt` with a plain value.
pub fn setsockopt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

// The per-frame calls below go through rustix, which makes the system call
// itself (inline `syscall` instruction on Linux) rather than through libc:
// libc's `read`/`write`/`writev` are pthread cancellation points, whose
// bookkeeping (~70 instructions a frame, measured with callgrind) buys
// nothing here, and even libc's `syscall(2)` touches two more 4 KiB pages
// of code (libc's own, not on huge pages) and the thread's `errno` on a
// frame's way after a sleep.

/// The fd of a call. Callers pass fds they own and keep open for the call.
fn fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: `fd` is open for the duration of the call it is passed to
    // (every caller holds the port or socket that owns it); the borrow does
    // not outlive that call.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `read(fd, buf)`.
pub fn read(f: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd(f), buf)?)
}

/// `write(fd, buf)`.
pub fn write(f: RawFd, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::write(fd(f), buf)?)
}

/// `writev(fd, [a, b])`: one frame from two pieces without copying.
pub fn writev2(f: RawFd, a: &[u8], b: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::writev(
        fd(f),
        &[io::IoSlice::new(a), io::IoSlice::new(b)],
    )?)
}

/// The interface index of `name` in this network namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

fn ctl_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
}

/// Sets IFF_UP (and optionally IFF_PROMISC is left alone) on `name`.
pub fn set_up(name: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut ifr = IfReq::new(name);
    ioctl_ifreq(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr)?;
    let flags = ifr.short();
    if flags & libc::IFF_UP as i16 == 0 {
        ifr.set_short(flags | libc::IFF_UP as i16);
        ioctl_ifreq(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut ifr)?;
    }
    Ok(())
}

/// The MTU of `name`.
pub fn get_mtu(name: &str) -> io::Result<usize> {
    let s = ctl_socket()?;
    let mut ifr = IfReq::new(name);
    ioctl_ifreq(s.as_raw_fd(), libc::SIOCGIFMTU, &mut ifr)?;
    Ok(ifr.int() as usize)
}

/// Sets the MTU of `name`.
pub fn set_mtu(name: &str, mtu: usize) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut ifr = IfReq::new(name);
    ifr.set_int(mtu as i32);
    ioctl_ifreq(s.as_raw_fd(), libc::SIOCSIFMTU, &mut ifr)
}

/// Whether `err` means the device behind a port is gone for good.
pub fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EBADFD) | Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EBADF)
    )
}

/// Whether `err` means the peer's link is down (temporary).
pub fn is_link_down(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EIO) | Some(libc::ENETDOWN))
}

/// Whether `err` means "try later": the queue is full or nothing to read.
pub fn is_would_block(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR)
    )
}

/// Sets the process file-creation mask; returns the old one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Sets the MAC address of `name` (an Ethernet device).
pub fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut ifr = IfReq::new(name);
    // struct sockaddr: family ARPHRD_ETHER, then the address bytes.
    ifr.data[..2].copy_from_slice(&1u16.to_ne_bytes());
    ifr.data[2..8].copy_from_slice(&mac);
    ioctl_ifreq(s.as_raw_fd(), libc::SIOCSIFHWADDR, &mut ifr)
}
