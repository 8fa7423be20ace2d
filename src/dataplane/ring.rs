//! `--io-uring`: a worker's TAP ports read through one io_uring instead of
//! readiness polling and a `read()` per frame.
//!
//! Each TAP keeps [`SLOTS`] reads pending in the ring (its fd is made
//! blocking, so a read finding the queue empty waits in the kernel). A
//! completed read is forwarded like any frame — `decide`, then the egress
//! writes — and its slot re-armed. A frame going unchanged to exactly one
//! other ring port (known unicast, no tag change, offloads on both sides)
//! is written through the ring too, hard-linked to the slot's next read, so
//! the buffer is reused only once the write is done; its tx is counted when
//! the write completes. Everything else (floods, tag rewrites, other port
//! kinds, software offloads) is written with ordinary syscalls. The reads
//! and writes of a whole pass go to the kernel in one `io_uring_enter`. The ring's fd is in the worker's
//! epoll set, so a completion wakes the worker like a readable port would.
//!
//! Slot lifecycle: a port's slots are cancelled and reaped before the port
//! is detached (so its file is released and its buffers can serve another
//! port); a read failing with "link down" parks the slot until the
//! link-down retry; "gone" marks the port gone.

use std::io;
use std::time::Duration;

use super::egress::{self, Sent};
use super::{PortMap, Reason, Run, ST_GONE, ST_UP};
use crate::port::sys;
use crate::port::uring::{Completion, ForwardRing};
use crate::switch::{PortId, SwitchView};
use crate::wire::vnet::VNET_HDR_LEN;

/// Reads kept pending per TAP.
pub const SLOTS: usize = 16;
/// Completions handled per pass before the worker turns to its other ports.
const PER_PASS: usize = 256;

/// Dataplane settings beyond the number of workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Keep polling this long after the last frame before sleeping.
    pub busy_poll: Duration,
    /// Read TAP ports through io_uring.
    pub io_uring: bool,
}

/// One worker's ring and the bookkeeping of its slots.
pub(super) struct TapRing {
    ring: ForwardRing,
    /// The port each slot reads for (None: free).
    port: Vec<Option<PortId>>,
    /// The port and frame length of each slot's write in flight.
    writing: Vec<(PortId, u64)>,
    free: Vec<usize>,
    /// Slots whose read failed with "link down": re-armed on the retry tick.
    parked: Vec<usize>,
    /// Completions reaped but not handled yet (while cancelling a port).
    backlog: Vec<Completion>,
    done: Vec<Completion>,
}

impl TapRing {
    pub(super) fn new() -> io::Result<TapRing> {
        Ok(TapRing {
            ring: ForwardRing::new(256)?,
            port: Vec::new(),
            writing: Vec::new(),
            free: Vec::new(),
            parked: Vec::new(),
            backlog: Vec::new(),
            done: Vec::new(),
        })
    }

    pub(super) fn ring_fd(&self) -> std::os::fd::RawFd {
        self.ring.ring_fd()
    }

    /// Starts reading `fd` for port `id` (the fd is made blocking).
    pub(super) fn attach(
        &mut self,
        id: PortId,
        fd: std::os::fd::RawFd,
        buf_len: usize,
    ) -> io::Result<()> {
        sys::set_blocking(fd)?;
        for _ in 0..SLOTS {
            let slot = match self.free.pop() {
                Some(s) => s,
                None => {
                    self.port.push(None);
                    self.writing.push((0, 0));
                    self.ring.add_idle_slot(buf_len)
                }
            };
            self.ring.set_source(slot, fd)?;
            self.port[slot] = Some(id);
            self.ring.rearm(slot)?;
        }
        self.ring.submit()
    }

    /// Stops reading for port `id`: cancels its pending reads and waits for
    /// them, keeping other ports' completions for the next pass. Frames its
    /// reads had already taken are dropped with the port.
    pub(super) fn detach(&mut self, id: PortId, fd: std::os::fd::RawFd) {
        self.parked.retain(|&s| self.port[s] != Some(id));
        let mine =
            |t: &TapRing| (0..t.port.len()).any(|s| t.port[s] == Some(id) && t.ring.is_pending(s));
        if mine(self) {
            if let Err(e) = self.ring.cancel_fd(fd) {
                tracing::error!("io_uring: cannot cancel reads on a removed port: {e}");
            }
            let mut got = Vec::new();
            while mine(self) {
                got.clear();
                if let Err(e) = self.ring.wait(&mut got) {
                    tracing::error!("io_uring: waiting for cancelled reads: {e}");
                    break;
                }
                for c in got.drain(..) {
                    if self.port[c.slot] != Some(id) {
                        self.backlog.push(c);
                    }
                }
            }
        }
        for s in 0..self.port.len() {
            if self.port[s] == Some(id) {
                self.port[s] = None;
                self.free.push(s);
            }
        }
    }

    /// Re-arms parked reads (link-down retry).
    pub(super) fn retry_parked(&mut self) {
        for slot in std::mem::take(&mut self.parked) {
            if self.port[slot].is_some()
                && let Err(e) = self.ring.rearm(slot)
            {
                tracing::debug!("io_uring: re-arming a parked read: {e}");
                self.parked.push(slot);
            }
        }
        let _ = self.ring.submit();
    }
}

impl Run {
    /// Handles the ring's completions: forwards each frame read and re-arms
    /// its slot. Returns (frames forwarded, whether completions are left).
    pub(super) fn ring_pass(
        &mut self,
        view: &SwitchView<'_>,
        map: &PortMap,
        now: u64,
    ) -> (usize, bool) {
        let Some(mut tr) = self.ring.take() else {
            return (0, false);
        };
        let mut frames = 0;
        let mut handled = 0;
        let mut gone = Vec::new();
        let mut done = std::mem::take(&mut tr.done);
        loop {
            done.clear();
            done.append(&mut tr.backlog);
            tr.ring.reap(&mut done);
            if done.is_empty() {
                break;
            }
            for c in &done {
                handled += 1;
                if c.write {
                    let (out, bytes) = tr.writing[c.slot];
                    if let Some(oh) = map.get(out as usize).and_then(|o| o.as_ref()) {
                        let sent = if c.result >= 0 {
                            Sent::ok(bytes as usize)
                        } else {
                            let e = io::Error::from_raw_os_error(-c.result);
                            Sent::failed(egress::classify(&e))
                        };
                        self.sent(oh, out, sent);
                    }
                    continue;
                }
                let Some(id) = tr.port[c.slot] else { continue };
                let slot = c.slot;
                if c.result >= 0 {
                    let n = c.result as usize;
                    let mut write = None;
                    if let Some(h) = self.owned[id as usize].clone()
                        && let Some(buf) = tr.ring.frame(slot, n)
                    {
                        if n > 0 && h.raw_state() != ST_UP && h.raw_state() != ST_GONE {
                            h.swap_state(ST_UP);
                            self.switch.set_port_up(id, true);
                            tracing::info!(port = h.port.name(), "link up");
                        }
                        if n > 0 {
                            frames += 1;
                            write = self.forward(view, map, id, buf, now, true);
                        }
                    }
                    if let Some((out, fd)) = write {
                        tr.writing[slot] = (out, (n - VNET_HDR_LEN) as u64);
                        match tr.ring.forward_with(slot, fd, n, true) {
                            Ok(()) => continue,
                            Err(e) => {
                                tracing::debug!("io_uring: queueing a write: {e}");
                                self.counters.count_drop(out, Reason::IoError);
                            }
                        }
                    }
                    if let Err(e) = tr.ring.rearm(slot) {
                        tracing::debug!("io_uring: re-arming a read: {e}");
                        tr.parked.push(slot);
                    }
                    continue;
                }
                let err = io::Error::from_raw_os_error(-c.result);
                if matches!(-c.result, libc::EAGAIN | libc::EINTR) {
                    if tr.ring.rearm(slot).is_err() {
                        tr.parked.push(slot);
                    }
                } else if -c.result == libc::ECANCELED {
                    tr.parked.push(slot);
                } else if sys::is_gone(&err) {
                    tr.parked.push(slot);
                    gone.push(id);
                } else {
                    if !sys::is_link_down(&err) {
                        tracing::debug!(port = id, "read failed: {err}");
                        self.counters.count_drop(id, Reason::IoError);
                    }
                    tr.parked.push(slot);
                }
            }
            if let Err(e) = tr.ring.submit() {
                tracing::error!("io_uring: submit failed: {e}");
                break;
            }
            if handled >= PER_PASS {
                break;
            }
        }
        done.clear();
        tr.done = done;
        let more = handled >= PER_PASS;
        self.ring = Some(tr);
        gone.sort_unstable();
        gone.dedup();
        for id in gone {
            self.port_gone(id);
        }
        (frames, more)
    }
}
