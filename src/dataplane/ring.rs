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
//! Adaptive depth: a quiet TAP keeps [`MIN_ARMED`] reads pending; a TAP
//! whose pending reads all completed within one pass doubles its depth, up
//! to [`SLOTS`]; a pass in which it delivered at most one frame brings it
//! back to the minimum (slots beyond the depth are not re-armed).
//!
//! Slot lifecycle: a port's slots are cancelled and reaped before the port
//! is detached (so its file is released and its buffers can serve another
//! port); a read failing with "link down" leaves its slot idle until the
//! link-down retry re-arms it; "gone" marks the port gone.

use std::io;
use std::time::Duration;

use super::egress::{self, Sent};
use super::{PortMap, Reason, Run, ST_GONE, ST_UP};
use crate::port::sys;
use crate::port::uring::{Completion, ForwardRing};
use crate::switch::{MAX_PORTS, PortId, SwitchView};
use crate::wire::vnet::VNET_HDR_LEN;

/// Most reads kept pending per TAP (each with a 64 KiB buffer).
pub const SLOTS: usize = 16;
/// Reads kept pending on a quiet TAP. Every pending read's poll wakes for
/// each frame arriving at an idle TAP: with 16 armed, a ping through an
/// idle switch took ~70 µs instead of ~16 (measured; 2 cost nothing).
const MIN_ARMED: usize = 2;
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
    /// Per port: its slots with nothing pending.
    spare: Vec<Vec<usize>>,
    /// Per port: reads pending, and how many to keep pending (0: detached).
    armed: Vec<usize>,
    target: Vec<usize>,
    /// Per port: frames read in the current pass.
    seen: Vec<usize>,
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
            spare: vec![Vec::new(); MAX_PORTS],
            armed: vec![0; MAX_PORTS],
            target: vec![0; MAX_PORTS],
            seen: vec![0; MAX_PORTS],
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
            self.spare[id as usize].push(slot);
        }
        self.target[id as usize] = MIN_ARMED;
        self.arm(id);
        self.ring.submit()
    }

    /// Arms spare slots of port `id` up to its depth.
    fn arm(&mut self, id: PortId) {
        let i = id as usize;
        while self.armed[i] < self.target[i] {
            let Some(slot) = self.spare[i].pop() else {
                break;
            };
            if let Err(e) = self.ring.rearm(slot) {
                tracing::debug!("io_uring: arming a read: {e}");
                self.spare[i].push(slot);
                break;
            }
            self.armed[i] += 1;
        }
    }

    /// A read of port `id` completed: whether its slot should be re-armed
    /// (the port is below its depth); if so it is counted as armed again.
    fn keep_armed(&mut self, id: PortId) -> bool {
        let i = id as usize;
        if self.armed[i] < self.target[i] {
            self.armed[i] += 1;
            true
        } else {
            false
        }
    }

    /// A completed slot of port `id` with nothing queued: re-armed if the
    /// port is below its depth, else kept idle.
    fn reuse(&mut self, id: PortId, slot: usize) {
        if self.keep_armed(id) {
            if let Err(e) = self.ring.rearm(slot) {
                tracing::debug!("io_uring: re-arming a read: {e}");
                self.armed[id as usize] -= 1;
                self.spare[id as usize].push(slot);
            }
        } else {
            self.spare[id as usize].push(slot);
        }
    }

    /// Adapts each port's depth to what the pass saw.
    fn end_pass(&mut self, touched: &[PortId]) {
        for &id in touched {
            let i = id as usize;
            if self.target[i] == 0 {
                continue;
            }
            if self.seen[i] >= self.target[i] {
                self.target[i] = (self.target[i] * 2).min(SLOTS);
            } else if self.seen[i] <= 1 {
                self.target[i] = MIN_ARMED;
            }
            self.seen[i] = 0;
            self.arm(id);
        }
    }

    /// Stops reading for port `id`: cancels its pending reads and waits for
    /// them, keeping other ports' completions for the next pass. Frames its
    /// reads had already taken are dropped with the port.
    pub(super) fn detach(&mut self, id: PortId, fd: std::os::fd::RawFd) {
        let i = id as usize;
        self.target[i] = 0;
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
        self.spare[i].clear();
        self.armed[i] = 0;
        self.seen[i] = 0;
    }

    /// Re-arms reads left idle by errors (link-down retry).
    pub(super) fn rearm_idle(&mut self) {
        for id in 0..MAX_PORTS {
            if self.target[id] > 0 {
                self.arm(id as PortId);
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
        let mut touched = Vec::new();
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
                let slot = c.slot;
                if c.write {
                    let (out, bytes) = tr.writing[slot];
                    if let Some(oh) = map.get(out as usize).and_then(|o| o.as_ref()) {
                        let sent = if c.result >= 0 {
                            Sent::ok(bytes as usize)
                        } else {
                            let e = io::Error::from_raw_os_error(-c.result);
                            Sent::failed(egress::classify(&e))
                        };
                        self.sent(oh, out, sent);
                    }
                    if c.idle
                        && let Some(id) = tr.port[slot]
                    {
                        tr.spare[id as usize].push(slot);
                    }
                    continue;
                }
                let Some(id) = tr.port[slot] else { continue };
                let i = id as usize;
                tr.armed[i] = tr.armed[i].saturating_sub(1);
                if c.result > 0 {
                    let n = c.result as usize;
                    if tr.seen[i] == 0 {
                        touched.push(id);
                    }
                    tr.seen[i] += 1;
                    let mut write = None;
                    if let Some(h) = self.owned[i].clone()
                        && let Some(buf) = tr.ring.frame(slot, n)
                    {
                        if h.raw_state() != ST_UP && h.raw_state() != ST_GONE {
                            h.swap_state(ST_UP);
                            self.switch.set_port_up(id, true);
                            tracing::info!(port = h.port.name(), "link up");
                        }
                        frames += 1;
                        let ring = &tr.ring;
                        write = self.forward(view, map, id, buf, now, true, &mut || {
                            if let Err(e) = ring.submit_now() {
                                tracing::debug!("io_uring: submit before a write: {e}");
                            }
                        });
                    }
                    if let Some((out, fd)) = write {
                        tr.writing[slot] = (out, (n - VNET_HDR_LEN) as u64);
                        let again = tr.keep_armed(id);
                        let queued = if again {
                            tr.ring.forward_with(slot, fd, n, true)
                        } else {
                            tr.ring.write(slot, fd, n)
                        };
                        match queued {
                            Ok(()) => continue,
                            Err(e) => {
                                tracing::debug!("io_uring: queueing a write: {e}");
                                self.counters.count_drop(out, Reason::IoError);
                                if again {
                                    tr.armed[i] -= 1;
                                }
                            }
                        }
                    }
                    tr.reuse(id, slot);
                    continue;
                }
                let err = io::Error::from_raw_os_error(-c.result);
                if c.result == 0 || matches!(-c.result, libc::EAGAIN | libc::EINTR) {
                    tr.reuse(id, slot);
                } else if -c.result == libc::ECANCELED {
                    tr.spare[i].push(slot);
                } else if sys::is_gone(&err) {
                    tr.spare[i].push(slot);
                    gone.push(id);
                } else {
                    // Link down (or another error): idle until the retry.
                    if !sys::is_link_down(&err) {
                        tracing::debug!(port = id, "read failed: {err}");
                        self.counters.count_drop(id, Reason::IoError);
                    }
                    tr.spare[i].push(slot);
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
        tr.end_pass(&touched);
        if !touched.is_empty() {
            let _ = tr.ring.submit();
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
