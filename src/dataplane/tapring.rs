//! A worker's io_uring for its busy TAPs: the bookkeeping of read slots
//! ([`ForwardRing`] does the kernel side). Which TAPs are read here and
//! which are polled is [`super::policy::ReadPolicy`]'s choice.
//!
//! A TAP moved to the ring has its fd made blocking (a read finding the
//! queue empty waits in the kernel) and reads kept pending. A completed
//! read is handed to the worker ([`TapRing::on_read`]), which forwards the
//! frame and gives the slot back: re-armed ([`TapRing::reuse`]) or, for a
//! frame going unchanged to exactly one other ring port, written through
//! the ring hard-linked to the slot's next read ([`TapRing::forward`]), so
//! the buffer is reused only once the write is done; its tx is counted
//! when the write completes ([`TapRing::on_write`]).
//!
//! Adaptive depth: a TAP entering the ring keeps [`MIN_ARMED`] reads
//! pending; a TAP whose pending reads all completed within one pass
//! doubles its depth, up to [`SLOTS`]; a pass in which it delivered at
//! most one frame brings it back to the minimum.
//!
//! Slot lifecycle and frame order: leaving the ring cancels the TAP's
//! pending reads and waits for them; frames they had already taken are
//! kept, in order, in a backlog the worker handles first in its next pass,
//! before the TAP is read again ([`TapRing::stop_reading`]). A port
//! detached (removed, or its device replaced) has its requests cancelled
//! and reaped before its slots are freed, so its file is released and its
//! buffers can serve another port. A read failing with "link down" leaves
//! its slot idle until [`TapRing::rearm_idle`].

use std::io;
use std::os::fd::RawFd;

use crate::os::sys;
use crate::os::uring::{Completion, ForwardRing};
use crate::switch::{MAX_PORTS, PortId};

/// Most reads kept pending per TAP (each with a 64 KiB buffer).
pub const SLOTS: usize = 16;
/// Reads kept pending on a TAP in the ring with little traffic (and on
/// entering it). Every pending read's poll wakes for
/// each frame arriving at an idle TAP: with 16 armed, a ping through an
/// idle switch took ~70 µs instead of ~16 (measured; 2 cost nothing).
const MIN_ARMED: usize = 2;
/// Completions handled per pass before the worker turns to its other ports.
pub(super) const PER_PASS: usize = 256;

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
        })
    }

    /// Nothing in flight and nothing kept back: a pass would find nothing
    /// (and would only touch memory a lone frame's pass can do without).
    pub(super) fn is_idle(&self) -> bool {
        self.backlog.is_empty() && self.ring.is_idle()
    }

    pub(super) fn ring_fd(&self) -> RawFd {
        self.ring.ring_fd()
    }

    /// Gives port `id` its slots; it is polled (its fd non-blocking) until
    /// [`TapRing::start_reading`].
    pub(super) fn attach(&mut self, id: PortId, fd: RawFd, buf_len: usize) -> io::Result<()> {
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
    pub(super) fn start_reading(&mut self, id: PortId, fd: RawFd) -> io::Result<()> {
        sys::set_blocking(fd)?;
        let i = id as usize;
        self.target[i] = MIN_ARMED;
        self.seen[i] = 0;
        self.arm(id);
        self.ring.submit()
    }

    /// Moves port `id` from the ring back to polling: cancels its pending
    /// reads and waits for them. Their completions, frames included, wait
    /// in the backlog, which the worker's next ring pass handles first —
    /// before the port is read again; the fd is made non-blocking again.
    pub(super) fn stop_reading(&mut self, id: PortId, fd: RawFd) -> io::Result<()> {
        self.target[id as usize] = 0;
        self.cancel(id, fd, true);
        sys::set_nonblocking(fd, true)
    }

    /// Cancels port `id`'s pending requests and waits for them; other
    /// ports' completions (and, with `keep_own`, its own) go to the backlog.
    fn cancel(&mut self, id: PortId, fd: RawFd, keep_own: bool) {
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
    pub(super) fn reuse(&mut self, id: PortId, slot: usize) {
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
    pub(super) fn end_pass(&mut self, touched: &[PortId]) {
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
    pub(super) fn detach(&mut self, id: PortId, fd: RawFd) {
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

    /// Takes the completions to handle now: the backlog first (frames of
    /// cancelled reads, in the order they were read), then those posted.
    pub(super) fn collect(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.backlog);
        self.ring.reap(out);
    }

    /// A write completed: its port, frame length and result (bytes or
    /// -errno). Its slot is given back if nothing is linked after it.
    pub(super) fn on_write(&mut self, c: &Completion) -> (PortId, u64, i32) {
        let (out, bytes) = self.writing[c.slot];
        if c.idle
            && let Some(id) = self.port[c.slot]
        {
            self.spare[id as usize].push(c.slot);
        }
        (out, bytes, c.result)
    }

    /// A read completed: what it brought. A frame's slot stays the
    /// caller's until [`TapRing::reuse`] or [`TapRing::forward`].
    pub(super) fn on_read(&mut self, c: &Completion) -> ReadDone {
        let slot = c.slot;
        let Some(id) = self.port[slot] else {
            return ReadDone::Nothing;
        };
        let i = id as usize;
        self.armed[i] = self.armed[i].saturating_sub(1);
        if c.result > 0 {
            self.seen[i] += 1;
            return ReadDone::Frame {
                id,
                len: c.result as usize,
                first: self.seen[i] == 1,
            };
        }
        let err = io::Error::from_raw_os_error(-c.result);
        if c.result == 0 || matches!(-c.result, libc::EAGAIN | libc::EINTR) {
            self.reuse(id, slot);
            ReadDone::Nothing
        } else if -c.result == libc::ECANCELED {
            self.spare[i].push(slot);
            ReadDone::Nothing
        } else if sys::is_gone(&err) {
            self.spare[i].push(slot);
            ReadDone::Gone(id)
        } else {
            // Link down (or another error): idle until the retry.
            self.spare[i].push(slot);
            if sys::is_link_down(&err) {
                ReadDone::Nothing
            } else {
                ReadDone::Failed(id, err)
            }
        }
    }

    /// The frame a completed read left in `slot`.
    pub(super) fn frame(&self, slot: usize, len: usize) -> Option<&[u8]> {
        self.ring.frame(slot, len)
    }

    /// Writes the frame in `slot` (read from port `id`, `len` bytes with
    /// its header) to port `out` through the ring; if `id` is below its
    /// depth the slot's next read is linked after the write. On an error
    /// nothing was queued and the slot is the caller's again.
    pub(super) fn forward(
        &mut self,
        id: PortId,
        slot: usize,
        out: PortId,
        fd: RawFd,
        len: usize,
        frame_len: u64,
    ) -> io::Result<()> {
        self.writing[slot] = (out, frame_len);
        let again = self.keep_armed(id);
        let queued = if again {
            self.ring.forward_with(slot, fd, len, true)
        } else {
            self.ring.write(slot, fd, len)
        };
        if queued.is_err() && again {
            self.armed[id as usize] -= 1;
        }
        queued
    }

    /// Hands what is queued to the kernel (before a frame's ordinary
    /// writes, so frames leave in the order they came).
    pub(super) fn submit(&mut self) -> io::Result<()> {
        self.ring.submit()
    }

    /// [`TapRing::submit`] while a frame in one of the buffers is
    /// borrowed (submitting touches no buffer).
    pub(super) fn submit_now(&self) -> io::Result<()> {
        self.ring.submit_now()
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

/// What a completed read brought ([`TapRing::on_read`]).
#[derive(Debug)]
pub(super) enum ReadDone {
    /// A frame of `len` bytes (header included) from port `id`; `first`:
    /// the port's first in this pass.
    Frame { id: PortId, len: usize, first: bool },
    /// Nothing to forward (cancelled, empty, retried, or link down).
    Nothing,
    /// The port's device vanished.
    Gone(PortId),
    /// Another error: the slot idles until the link-down retry.
    Failed(PortId, io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::Duration;

    /// A socket pair with message boundaries, like a TAP's frames.
    fn wire() -> (OwnedFd, OwnedFd) {
        sys::socketpair(libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC).unwrap()
    }

    /// Handles completions until `want` frames came (or ~2 s): the frames
    /// with their port, in the order handled; every slot is given back.
    fn frames(tr: &mut TapRing, want: usize) -> Vec<(PortId, Vec<u8>)> {
        let mut got = Vec::new();
        let mut done = Vec::new();
        for _ in 0..400 {
            done.clear();
            tr.collect(&mut done);
            for c in &done {
                if c.write {
                    tr.on_write(c);
                } else if let ReadDone::Frame { id, len, .. } = tr.on_read(c) {
                    got.push((id, tr.frame(c.slot, len).unwrap().to_vec()));
                    tr.reuse(id, c.slot);
                }
            }
            tr.submit().unwrap();
            if got.len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    fn send(fd: &OwnedFd, frame: &[u8]) {
        assert_eq!(sys::write(fd.as_raw_fd(), frame).unwrap(), frame.len());
    }

    #[test]
    fn frames_come_in_order_and_leaving_keeps_the_frames_taken() {
        let (port, peer) = wire();
        let fd = port.as_raw_fd();
        let mut tr = TapRing::new().unwrap();
        tr.attach(1, fd, 256).unwrap();
        assert!(tr.is_idle(), "attached but polled: nothing pending");
        tr.start_reading(1, fd).unwrap();
        assert!(!tr.is_idle(), "reads pending");
        for i in 0..6u8 {
            send(&peer, &[i; 20]);
        }
        let got = frames(&mut tr, 6);
        let want: Vec<_> = (0..6u8).map(|i| (1, vec![i; 20])).collect();
        assert_eq!(got, want, "every frame, in order");
        // Frames arrive, then the port leaves the ring at once: what the
        // pending reads took waits in the backlog, the rest in the socket.
        for i in 6..10u8 {
            send(&peer, &[i; 20]);
        }
        tr.stop_reading(1, fd).unwrap();
        let mut all: Vec<Vec<u8>> = frames(&mut tr, 0).into_iter().map(|(_, f)| f).collect();
        let mut buf = [0u8; 64];
        while let Ok(n) = sys::read(fd, &mut buf) {
            all.push(buf[..n].to_vec());
        }
        let want: Vec<_> = (6..10u8).map(|i| vec![i; 20]).collect();
        assert_eq!(all, want, "none lost, order kept across the move");
        assert!(tr.is_idle());
    }

    #[test]
    fn detaching_cancels_the_reads_and_frees_the_slots() {
        let (a, _a_peer) = wire();
        let (b, b_peer) = wire();
        let mut tr = TapRing::new().unwrap();
        tr.attach(1, a.as_raw_fd(), 256).unwrap();
        tr.start_reading(1, a.as_raw_fd()).unwrap();
        assert!(!tr.is_idle());
        tr.detach(1, a.as_raw_fd());
        assert!(tr.is_idle(), "cancelled and reaped");
        let mut buf = [0u8; 8];
        let e = sys::read(a.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "non-blocking again");
        // Its slots serve the next port.
        tr.attach(2, b.as_raw_fd(), 256).unwrap();
        assert_eq!(tr.port.len(), SLOTS, "no new slots made");
        tr.start_reading(2, b.as_raw_fd()).unwrap();
        send(&b_peer, b"after");
        assert_eq!(frames(&mut tr, 1), vec![(2, b"after".to_vec())]);
        tr.detach(2, b.as_raw_fd());
    }

    #[test]
    fn a_frame_written_through_the_ring_is_counted_on_completion() {
        let (a, a_peer) = wire();
        let (b, b_peer) = wire();
        let mut tr = TapRing::new().unwrap();
        tr.attach(1, a.as_raw_fd(), 256).unwrap();
        tr.start_reading(1, a.as_raw_fd()).unwrap();
        send(&a_peer, b"hello");
        let mut done = Vec::new();
        let mut frame = None;
        for _ in 0..400 {
            tr.collect(&mut done);
            if let Some(c) = done.iter().find(|c| !c.write) {
                frame = Some(*c);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let c = frame.expect("a read completed");
        let ReadDone::Frame { id, len, first } = tr.on_read(&c) else {
            panic!("not a frame");
        };
        assert_eq!((id, len, first), (1, 5, true));
        tr.forward(1, c.slot, 2, b.as_raw_fd(), len, 5).unwrap();
        assert!(
            tr.frame(c.slot, len).is_none(),
            "the kernel owns the buffer"
        );
        tr.submit().unwrap();
        let mut buf = [0u8; 16];
        let n = sys::read(b_peer.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let mut write = None;
        for _ in 0..400 {
            done.clear();
            tr.collect(&mut done);
            if let Some(c) = done.iter().find(|c| c.write) {
                write = Some(*c);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let w = write.expect("the write reports its result");
        assert_eq!(tr.on_write(&w), (2, 5, 5));
        tr.detach(1, a.as_raw_fd());
        assert!(tr.is_idle());
    }
}
