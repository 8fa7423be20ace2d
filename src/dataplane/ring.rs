//! `--io-uring`: a worker's busy TAP ports read through one io_uring instead
//! of readiness polling and a `read()` per frame.
//!
//! A TAP attached to the ring starts *polled*: its fd stays non-blocking in
//! the worker's epoll set and is read with `read()`, the shortest path for
//! a frame reaching an idle switch. The worker counts each TAP's frames
//! over windows of [`WINDOW_MS`]: a TAP that received [`ENTER_FRAMES`] or
//! more in a window moves to the ring — its fd is made blocking (a read
//! finding the queue empty waits in the kernel) and reads are kept pending
//! in the ring — and one that received fewer than [`LEAVE_FRAMES`] goes
//! back to polling: its pending reads are cancelled, and frames they had
//! already taken are forwarded (at the head of the next pass) before it is
//! read again. A completed read is forwarded like any frame — `decide`, then the egress
//! writes — and its slot re-armed. A frame going unchanged to exactly one
//! other ring port (known unicast, no tag change, offloads on both sides)
//! is written through the ring too, hard-linked to the slot's next read, so
//! the buffer is reused only once the write is done; its tx is counted when
//! the write completes. Everything else (floods, tag rewrites, other port
//! kinds, software offloads) is written with ordinary syscalls. The reads
//! and writes of a whole pass go to the kernel in one `io_uring_enter`. The ring's fd is in the worker's
//! epoll set, so a completion wakes the worker like a readable port would.
//!
//! Adaptive depth: a TAP entering the ring keeps [`MIN_ARMED`] reads pending; a TAP
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
use super::{PortMap, Reason, Run};
use crate::port::sys;
use crate::port::uring::{Completion, ForwardRing};
use crate::switch::{MAX_PORTS, PortId, SwitchView};
use crate::wire::vnet::VNET_HDR_LEN;

/// Most reads kept pending per TAP (each with a 64 KiB buffer).
pub const SLOTS: usize = 16;
/// Reads kept pending on a TAP in the ring with little traffic (and on
/// entering it). Every pending read's poll wakes for
/// each frame arriving at an idle TAP: with 16 armed, a ping through an
/// idle switch took ~70 µs instead of ~16 (measured; 2 cost nothing).
const MIN_ARMED: usize = 2;
/// Completions handled per pass before the worker turns to its other ports.
const PER_PASS: usize = 256;
/// The window over which a TAP's frames are counted to choose how it is read.
pub(super) const WINDOW_MS: u64 = 10;
/// Frames in a window that move a polled TAP to the ring (6 400 frames/s).
pub(super) const ENTER_FRAMES: u32 = 64;
/// Fewer frames than this in a window (1 600 frames/s) move a TAP back to
/// polling: for a lone frame, a pending read's wake-up (io_uring's poll,
/// then task work) is slower than `epoll` + `read()`.
pub(super) const LEAVE_FRAMES: u32 = 16;

/// Dataplane settings beyond the number of workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Keep polling this long after the last frame before sleeping.
    pub busy_poll: Duration,
    /// Read busy TAP ports through io_uring.
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

    /// Nothing in flight and nothing kept back: a pass would find nothing
    /// (and would only touch memory a lone frame's pass can do without).
    fn is_idle(&self) -> bool {
        self.backlog.is_empty() && self.ring.is_idle()
    }

    pub(super) fn ring_fd(&self) -> std::os::fd::RawFd {
        self.ring.ring_fd()
    }

    /// Gives port `id` its slots; it is polled (its fd non-blocking) until
    /// [`TapRing::start_reading`].
    pub(super) fn attach(
        &mut self,
        id: PortId,
        fd: std::os::fd::RawFd,
        buf_len: usize,
    ) -> io::Result<()> {
        sys::set_nonblocking(fd, true)?;
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
        self.target[id as usize] = 0;
        Ok(())
    }

    /// Moves port `id` from polling to the ring: its fd is made blocking
    /// and [`MIN_ARMED`] reads are queued.
    pub(super) fn start_reading(&mut self, id: PortId, fd: std::os::fd::RawFd) -> io::Result<()> {
        sys::set_blocking(fd)?;
        let i = id as usize;
        self.target[i] = MIN_ARMED;
        self.seen[i] = 0;
        self.arm(id);
        self.ring.submit()
    }

    /// Moves port `id` from the ring back to polling: cancels its pending
    /// reads and waits for them. Their completions, frames included, wait
    /// in the backlog, which the next [`Run::ring_pass`] handles first —
    /// before the port is read again; the fd is made non-blocking again.
    pub(super) fn stop_reading(&mut self, id: PortId, fd: std::os::fd::RawFd) -> io::Result<()> {
        self.target[id as usize] = 0;
        self.cancel(id, fd, true);
        sys::set_nonblocking(fd, true)
    }

    /// Cancels port `id`'s pending requests and waits for them; other
    /// ports' completions (and, with `keep_own`, its own) go to the backlog.
    fn cancel(&mut self, id: PortId, fd: std::os::fd::RawFd, keep_own: bool) {
        let mine =
            |t: &TapRing| (0..t.port.len()).any(|s| t.port[s] == Some(id) && t.ring.is_pending(s));
        if !mine(self) {
            return;
        }
        if let Err(e) = self.ring.cancel_fd(fd) {
            tracing::error!("io_uring: cannot cancel a port's reads: {e}");
        }
        let mut got = Vec::new();
        while mine(self) {
            got.clear();
            if let Err(e) = self.ring.wait(&mut got) {
                tracing::error!("io_uring: waiting for cancelled reads: {e}");
                break;
            }
            for c in got.drain(..) {
                if keep_own || self.port[c.slot] != Some(id) {
                    self.backlog.push(c);
                }
            }
        }
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
            let seen = std::mem::take(&mut self.seen[i]);
            if self.target[i] == 0 {
                continue;
            }
            if seen >= self.target[i] {
                self.target[i] = (self.target[i] * 2).min(SLOTS);
            } else if seen <= 1 {
                self.target[i] = MIN_ARMED;
            }
            self.arm(id);
        }
    }

    /// Stops reading for port `id`: cancels its pending reads and waits for
    /// them, keeping other ports' completions for the next pass. Frames its
    /// reads had already taken are dropped with the port.
    pub(super) fn detach(&mut self, id: PortId, fd: std::os::fd::RawFd) {
        let i = id as usize;
        self.target[i] = 0;
        self.cancel(id, fd, false);
        for s in 0..self.port.len() {
            if self.port[s] == Some(id) {
                self.port[s] = None;
                self.free.push(s);
            }
        }
        self.spare[i].clear();
        self.armed[i] = 0;
        self.seen[i] = 0;
        // The port may live on elsewhere (polled by another worker).
        let _ = sys::set_nonblocking(fd, true);
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

/// What one pass over the ring's completions did.
#[derive(Default)]
pub(super) struct RingPass {
    /// Frames forwarded.
    pub frames: usize,
    /// Completions handled.
    handled: usize,
    /// Ports that delivered frames.
    touched: Vec<PortId>,
    /// Ports whose device vanished.
    gone: Vec<PortId>,
    /// Completions are left for the next pass.
    pub more: bool,
}

impl Run {
    /// Handles the ring's completions (the backlog first): forwards each
    /// frame read and re-arms its slot.
    pub(super) fn ring_pass(&mut self, view: &SwitchView<'_>, map: &PortMap, now: u64) -> RingPass {
        let mut acc = RingPass::default();
        let Some(mut tr) = self.ring.take_if(|tr| !tr.is_idle()) else {
            return acc;
        };
        while self.ring_batch(&mut tr, view, map, now, &mut acc) && acc.handled < PER_PASS {}
        acc.more = acc.handled >= PER_PASS;
        tr.end_pass(&acc.touched);
        if !acc.touched.is_empty() {
            let _ = tr.ring.submit();
        }
        self.ring = Some(tr);
        acc.gone.sort_unstable();
        acc.gone.dedup();
        for &id in &acc.gone {
            self.port_gone(id);
        }
        acc
    }

    /// Handles the backlog and the completions posted so far, then submits
    /// the re-armed reads and queued writes. Returns whether there were any.
    fn ring_batch(
        &mut self,
        tr: &mut TapRing,
        view: &SwitchView<'_>,
        map: &PortMap,
        now: u64,
        acc: &mut RingPass,
    ) -> bool {
        let mut done = std::mem::take(&mut tr.done);
        done.clear();
        done.append(&mut tr.backlog);
        tr.ring.reap(&mut done);
        let any = !done.is_empty();
        for c in &done {
            acc.handled += 1;
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
                    acc.touched.push(id);
                }
                tr.seen[i] += 1;
                let mut write = None;
                if let Some(h) = self.owned[i].clone()
                    && let Some(buf) = tr.ring.frame(slot, n)
                {
                    self.frame_in(&h);
                    acc.frames += 1;
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
                acc.gone.push(id);
            } else {
                // Link down (or another error): idle until the retry.
                if !sys::is_link_down(&err) {
                    tracing::debug!(port = id, "read failed: {err}");
                    self.counters.count_drop(id, Reason::IoError);
                }
                tr.spare[i].push(slot);
            }
        }
        done.clear();
        tr.done = done;
        if any && let Err(e) = tr.ring.submit() {
            tracing::error!("io_uring: submit failed: {e}");
            return false;
        }
        any
    }
}
