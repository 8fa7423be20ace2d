//! A bare TAP-to-TAP forwarder: the practical ceiling for a userspace
//! switch built on TAP fds. It opens two TAPs exactly as vswitchd does
//! (`bare_tap.rs`: IFF_VNET_HDR, 10-byte header, TSO/checksum offloads),
//! polls both with mio (edge-triggered, like vswitchd's dataplane) and
//! writes every frame read from one to the other, virtio-net header
//! unchanged. No parsing, no FDB, no counters: only the syscalls.
//!
//! Used by `benches/compare.sh`:
//!
//! ```sh
//! cargo build --release --example bare_forwarder
//! target/release/examples/bare_forwarder tapA tapB
//! ```
//!
//! Stops on SIGTERM/SIGINT (default action). Prints `ready` on stdout once
//! both TAPs exist.

use std::io::{self, Write};
use std::time::Duration;

mod bare_tap;

use bare_tap::{Tap, VNET_HDR_LEN};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

/// Frames read from one TAP before turning to the other (as vswitchd).
const BATCH: usize = 64;
/// A 64 KiB GSO frame plus its virtio-net header.
const BUF_LEN: usize = 65536 + VNET_HDR_LEN + 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        eprintln!("usage: bare_forwarder TAP_A TAP_B");
        std::process::exit(2);
    }
    let ports: Vec<Tap> = args
        .iter()
        .map(|n| {
            Tap::open(n).unwrap_or_else(|e| {
                eprintln!("bare_forwarder: {e}");
                std::process::exit(1);
            })
        })
        .collect();
    let mut poll = Poll::new().expect("epoll");
    for (i, p) in ports.iter().enumerate() {
        poll.registry()
            .register(&mut SourceFd(&p.fd()), Token(i), Interest::READABLE)
            .expect("register tap fd");
    }
    println!("ready");
    let _ = io::stdout().flush();

    let mut buf = vec![0u8; BUF_LEN];
    let mut events = Events::with_capacity(8);
    // Edge-triggered: a port stays "pending" until a read says WouldBlock.
    let mut pending = [true, true];
    loop {
        let timeout = if pending.iter().any(|p| *p) {
            Some(Duration::ZERO)
        } else {
            None
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("bare_forwarder: poll: {e}");
            std::process::exit(1);
        }
        for ev in events.iter() {
            pending[ev.token().0] = true;
        }
        for from in 0..2 {
            if !pending[from] {
                continue;
            }
            let (src, dst) = (&ports[from], &ports[1 - from]);
            let mut drained = false;
            for _ in 0..BATCH {
                match src.read(&mut buf) {
                    // Errors on send (peer link down: EIO) drop the frame.
                    Ok(n) => drop(dst.write(&buf[..n])),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // EIO while the netdev is down: wait for the next edge.
                    Err(_) => {
                        drained = true;
                        break;
                    }
                }
            }
            pending[from] = !drained;
        }
    }
}
