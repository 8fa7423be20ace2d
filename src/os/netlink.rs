//! Link notifications from rtnetlink: a thread that wakes the control plane
//! whenever an interface appears, disappears or changes state, so hot-plug
//! reacts at once instead of on the next poll.

use std::io;
use std::os::fd::AsRawFd;

use crate::os::sys;

const NETLINK_ROUTE: libc::c_int = 0;
const RTMGRP_LINK: u32 = 1;

/// Starts a thread that calls `notify` after each batch of link messages.
/// Returns an error if the socket cannot be opened (the caller then relies
/// on its periodic check alone).
pub fn watch_links(mut notify: impl FnMut() -> bool + Send + 'static) -> io::Result<()> {
    let fd = sys::socket(
        libc::AF_NETLINK,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        NETLINK_ROUTE,
    )?;
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = RTMGRP_LINK;
    // SAFETY: `sa` is a live sockaddr_nl and we pass its exact size.
    sys::cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    std::thread::Builder::new()
        .name("vswitchd-links".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16384];
            loop {
                match sys::read(fd.as_raw_fd(), &mut buf) {
                    Ok(_) => {
                        if !notify() {
                            return;
                        }
                    }
                    // ENOBUFS: we missed messages; a check covers them.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        if !notify() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("link notifications stopped: {e}");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}
