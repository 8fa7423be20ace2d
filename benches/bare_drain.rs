//! A bare TAP-to-TAP forwarder written the way a newcomer would write one:
//! one thread, poll(2) on both TAPs, and for each readable TAP read(2)
//! until EAGAIN (at most `DRAIN` frames per turn, so the other direction
//! is not starved), writing every frame straight to the other TAP with
//! write(2), virtio-net header unchanged. No parsing, no FDB, no counters,
//! no batching beyond draining: one read and one write per frame.
//!
//! The TAPs are opened as vswitchd opens them (`bare_tap.rs`: IFF_VNET_HDR,
//! 10-byte header, checksum/TSO offloads, non-blocking). It differs from
//! `bare_forwarder` in how it waits and how much it reads per turn:
//! level-triggered poll(2) instead of edge-triggered epoll, and a TAP is
//! drained (up to `DRAIN`) before turning to the other instead of 64 frames.
//!
//! Used by `benches/compare.sh` (column "bare drain"):
//!
//! ```sh
//! cargo build --release --example bare_drain
//! target/release/examples/bare_drain tapA tapB
//! ```
//!
//! Stops on SIGTERM/SIGINT (default action). Prints `ready` on stdout once
//! both TAPs exist.

mod bare_tap;

use std::io::{self, Write};

use bare_tap::{Tap, VNET_HDR_LEN};

/// Frames read from one TAP per turn at most ("a few thousand").
const DRAIN: usize = 4096;
/// A 64 KiB GSO frame plus its virtio-net header.
const BUF_LEN: usize = 65536 + VNET_HDR_LEN + 64;

fn die(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bare_drain: {what}: {e}");
    std::process::exit(1);
}

/// Reads `src` until EAGAIN (or `DRAIN` frames) and writes each frame to
/// `dst`. A failed write (the peer's link is down: EIO) drops the frame;
/// a read error other than EAGAIN/EINTR ends the turn.
fn drain(src: &Tap, dst: &Tap, buf: &mut [u8]) {
    let mut n = 0;
    while n < DRAIN {
        match src.read(buf) {
            Ok(len) => {
                n += 1;
                let _ = dst.write(&buf[..len]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        eprintln!("usage: bare_drain TAP_A TAP_B");
        std::process::exit(2);
    }
    let taps: Vec<Tap> = args
        .iter()
        .map(|n| Tap::open(n).unwrap_or_else(|e| die("open", e)))
        .collect();
    println!("ready");
    let _ = io::stdout().flush();

    let mut buf = vec![0u8; BUF_LEN];
    let mut fds = [0, 1].map(|i| libc::pollfd {
        fd: taps[i].fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        // SAFETY: `fds` is an array of `fds.len()` initialised pollfds that
        // outlives the call; poll writes only their `revents`.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            die("poll", e);
        }
        for from in 0..2 {
            let ev = fds[from].revents;
            if ev & (libc::POLLERR | libc::POLLNVAL) != 0 {
                // The TAP was deleted (or the fd is gone): nothing left to
                // forward, and level-triggered poll would spin on it.
                die("poll", format!("{} reports error ({ev:#x})", args[from]));
            }
            if ev & libc::POLLIN != 0 {
                drain(&taps[from], &taps[1 - from], &mut buf);
            }
        }
    }
}
