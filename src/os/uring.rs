//! Batched TAP I/O through io_uring: reads kept pending in the kernel, each
//! into its own buffer, and a frame's write hard-linked to the next read
//! into the same buffer. One `io_uring_enter` then carries dozens of frames
//! instead of one `read()` and one `write()` syscall each.
//!
//! Used by the dataplane for busy TAP ports (`src/dataplane/ring.rs`) and by
//! `benches/bare_uring.rs` (the benchmark's io_uring ceiling).
//!
//! The fds must be blocking: on an O_NONBLOCK file io_uring completes a read
//! with -EAGAIN instead of waiting ([`super::sys::set_blocking`]). A pending read
//! on a TAP arms an internal poll (the tun driver supports non-blocking
//! kiocbs), so frames do not go through io-wq threads. The kernel still
//! starts a few `iou-wrk-*` threads per ring (for cancellations and the
//! rare request it cannot issue inline): they show in `top -H` but use
//! no CPU to speak of (0-1 ticks each over a 5 s VXLAN TCP run in
//! benches/vxlan.sh, against 490 for the worker).
//!
//! Safety of the buffers: the kernel writes into a slot's buffer while its
//! read is pending, so a slot is either *pending* (only the kernel touches
//! it) or *ready* (its frame can be read here). [`ForwardRing::frame`] only
//! gives out ready slots. Buffers are never freed while the ring may still
//! use them: on drop they are leaked (a process-lifetime forwarder loses
//! nothing; reclaiming them would need every request cancelled and reaped).

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{IoUring, opcode, squeue, types};

/// Marks a write in user_data; the low bits are the slot.
const WRITE: u64 = 1 << 32;
/// The user_data of cancel requests (their completions are not reported).
const CANCEL: u64 = 1 << 33;
/// Marks a write with no read linked after it: its completion frees the slot.
const ALONE: u64 = 1 << 34;

/// One completion: a read (`result` = frame length or -errno) or a write
/// (`result` = bytes or -errno; successful writes post one only if asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub slot: usize,
    pub write: bool,
    pub result: i32,
    /// The slot has nothing pending any more (a read, or a write with no
    /// read linked after it).
    pub idle: bool,
}

/// See the module documentation.
pub struct ForwardRing {
    ring: IoUring,
    bufs: ManuallyDrop<Vec<Box<[u8]>>>,
    /// The fd each slot reads from.
    src: Vec<RawFd>,
    pending: Vec<bool>,
    /// How many slots are pending.
    busy: usize,
}

impl ForwardRing {
    /// A ring with room for `entries` submissions at once.
    pub fn new(entries: u32) -> io::Result<ForwardRing> {
        Ok(ForwardRing {
            ring: IoUring::builder()
                .setup_cqsize(entries * 4)
                .build(entries)?,
            bufs: ManuallyDrop::new(Vec::new()),
            src: Vec::new(),
            pending: Vec::new(),
            busy: 0,
        })
    }

    /// Adds a slot reading from `fd` into a buffer of `len` bytes and
    /// queues its first read. Returns the slot.
    pub fn add_slot(&mut self, fd: RawFd, len: usize) -> io::Result<usize> {
        let slot = self.add_idle_slot(len);
        self.src[slot] = fd;
        self.rearm(slot)?;
        Ok(slot)
    }

    /// The first `len` bytes read into `slot`, if its read has completed
    /// and it was not re-armed since.
    pub fn frame(&self, slot: usize, len: usize) -> Option<&[u8]> {
        if *self.pending.get(slot)? {
            return None;
        }
        self.bufs[slot].get(..len)
    }

    /// Queues the next read into `slot`.
    pub fn rearm(&mut self, slot: usize) -> io::Result<()> {
        self.take(slot)?;
        let e = self.read_entry(slot);
        self.push(&e).inspect_err(|_| self.release(slot))
    }

    /// The read into `slot`'s whole buffer.
    fn read_entry(&mut self, slot: usize) -> squeue::Entry {
        let buf = &mut self.bufs[slot];
        opcode::Read::new(
            types::Fd(self.src[slot]),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .user_data(slot as u64)
    }

    /// Queues the write of the first `len` bytes of `slot` to `to`, then
    /// (hard-linked: once the write is done, even if it failed) the next
    /// read into `slot`. A successful write posts no completion.
    pub fn forward(&mut self, slot: usize, to: RawFd, len: usize) -> io::Result<()> {
        self.forward_with(slot, to, len, false)
    }

    /// [`ForwardRing::forward`], with a completion for every write if
    /// `report` (its result: bytes written or -errno).
    pub fn forward_with(
        &mut self,
        slot: usize,
        to: RawFd,
        len: usize,
        report: bool,
    ) -> io::Result<()> {
        let flags = if report {
            squeue::Flags::IO_HARDLINK
        } else {
            squeue::Flags::IO_HARDLINK | squeue::Flags::SKIP_SUCCESS
        };
        // Room for both first: were the queue to fill between them, the
        // write would reach the kernel without its linked read, and the
        // read could refill the buffer while the write is in flight.
        self.reserve(2)?;
        let w = self.write_entry(slot, to, len, WRITE)?.flags(flags);
        self.push(&w)?;
        let r = self.read_entry(slot);
        self.push(&r)
    }

    /// Makes room for `n` entries in the submission queue, handing what is
    /// queued to the kernel if there is less.
    fn reserve(&mut self, n: usize) -> io::Result<()> {
        let free = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if free < n {
            self.ring.submit()?;
        }
        Ok(())
    }

    /// Entries queued and not yet handed to the kernel.
    pub fn queued(&mut self) -> usize {
        self.ring.submission().len()
    }

    /// Queues the write of the first `len` bytes of `slot` to `to` with no
    /// read after it; its completion (always posted) makes the slot idle.
    pub fn write(&mut self, slot: usize, to: RawFd, len: usize) -> io::Result<()> {
        let w = self.write_entry(slot, to, len, WRITE | ALONE)?;
        self.push(&w).inspect_err(|_| self.release(slot))
    }

    /// Marks `slot` pending and builds the write of its first `len` bytes
    /// to `to` (`kind`: the user_data bits besides the slot).
    fn write_entry(
        &mut self,
        slot: usize,
        to: RawFd,
        len: usize,
        kind: u64,
    ) -> io::Result<squeue::Entry> {
        if len > self.bufs.get(slot).map_or(0, |b| b.len()) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.take(slot)?;
        let buf = &self.bufs[slot];
        Ok(opcode::Write::new(types::Fd(to), buf.as_ptr(), len as u32)
            .build()
            .user_data(kind | slot as u64))
    }

    /// Adds a slot with a buffer of `len` bytes and no read queued; give
    /// it a source with [`ForwardRing::set_source`].
    pub fn add_idle_slot(&mut self, len: usize) -> usize {
        self.bufs.push(vec![0u8; len].into_boxed_slice());
        self.src.push(-1);
        self.pending.push(false);
        self.src.len() - 1
    }

    /// Points a slot that has no read pending at another fd (the next
    /// [`ForwardRing::rearm`] reads from it).
    pub fn set_source(&mut self, slot: usize, fd: RawFd) -> io::Result<()> {
        match self.pending.get(slot) {
            Some(false) => {
                self.src[slot] = fd;
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EBUSY)),
        }
    }

    /// Whether no slot has anything pending: no completion can come but
    /// those of cancellations.
    pub fn is_idle(&self) -> bool {
        self.busy == 0
    }

    /// Whether `slot` has a read pending (its buffer belongs to the kernel).
    pub fn is_pending(&self, slot: usize) -> bool {
        self.pending.get(slot).copied().unwrap_or(false)
    }

    /// Queues the cancellation of every request on `fd`: each pending read
    /// completes with -ECANCELED (or with a frame, if it won the race).
    pub fn cancel_fd(&mut self, fd: RawFd) -> io::Result<()> {
        let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .user_data(CANCEL);
        self.push(&e)
    }

    /// The ring's own fd: readable when completions are waiting.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// [`ForwardRing::submit`] through a shared borrow (e.g. while a frame
    /// in one of the buffers is borrowed): submitting touches no buffer.
    pub fn submit_now(&self) -> io::Result<()> {
        match self.ring.submitter().submit() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands everything queued to the kernel without waiting.
    pub fn submit(&mut self) -> io::Result<()> {
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits everything queued, waits for at least one completion and
    /// appends all available ones to `out`.
    pub fn wait(&mut self, out: &mut Vec<Completion>) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        self.reap(out);
        Ok(())
    }

    /// Appends the completions already posted to `out` (no system call).
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        for c in self.ring.completion() {
            let ud = c.user_data();
            if ud == CANCEL {
                continue;
            }
            let slot = (ud & (WRITE - 1)) as usize;
            let write = ud & WRITE != 0;
            let idle = !write || ud & ALONE != 0;
            if idle {
                Self::unmark(&mut self.pending, &mut self.busy, slot);
            }
            out.push(Completion {
                slot,
                write,
                result: c.result(),
                idle,
            });
        }
    }

    /// Marks `slot` pending; an error if it already is.
    fn take(&mut self, slot: usize) -> io::Result<()> {
        match self.pending.get_mut(slot) {
            Some(p) if !*p => {
                *p = true;
                self.busy += 1;
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EBUSY)),
        }
    }

    /// Undoes [`ForwardRing::take`] for a request that was not queued.
    fn release(&mut self, slot: usize) {
        Self::unmark(&mut self.pending, &mut self.busy, slot);
    }

    /// `slot` has nothing pending any more (by fields, so that `reap` can
    /// call it while it borrows the ring).
    fn unmark(pending: &mut [bool], busy: &mut usize, slot: usize) {
        if std::mem::take(&mut pending[slot]) {
            *busy -= 1;
        }
    }

    fn push(&mut self, e: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry points into `self.bufs`, whose boxes are
            // never moved or freed while the ring lives (and are leaked on
            // drop), and `take` makes each buffer used by one request chain
            // at a time: a read, or a write and the read linked after it.
            // The fds are only numbers to the kernel: a closed fd fails the
            // request with EBADF.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return Ok(());
            }
            // Submission queue full: hand it to the kernel and retry.
            self.ring.submit()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe(2) just returned these fds; nothing else owns them.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn reads_forward_and_guard_pending_buffers() {
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let mut ring = ForwardRing::new(8).unwrap();
        assert!(ring.is_idle());
        let slot = ring.add_slot(in_r.as_raw_fd(), 64).unwrap();
        assert!(!ring.is_idle(), "a read is pending");
        assert_eq!(ring.frame(slot, 1), None, "pending: the kernel owns it");
        assert!(ring.rearm(slot).is_err(), "already pending");
        assert_eq!(
            crate::os::sys::write(in_w.as_raw_fd(), b"hello").unwrap(),
            5
        );
        let mut done = Vec::new();
        while done.is_empty() {
            ring.wait(&mut done).unwrap();
        }
        let c = Completion {
            slot,
            write: false,
            result: 5,
            idle: true,
        };
        assert_eq!(done, vec![c]);
        assert!(ring.is_idle(), "the read completed");
        assert_eq!(ring.frame(slot, 5), Some(&b"hello"[..]));
        assert!(
            ring.forward(slot, out_w.as_raw_fd(), 65).is_err(),
            "too long"
        );
        assert!(ring.is_idle(), "a refused write leaves nothing pending");
        ring.forward(slot, out_w.as_raw_fd(), 5).unwrap();
        assert_eq!(ring.frame(slot, 5), None, "re-armed");
        done.clear();
        // The write posts no completion; the linked read waits for data.
        crate::os::sys::write(in_w.as_raw_fd(), b"x").unwrap();
        while done.is_empty() {
            ring.wait(&mut done).unwrap();
        }
        assert_eq!(done[0].result, 1);
        assert!(ring.is_idle());
        let mut buf = [0u8; 16];
        let n = crate::os::sys::read(out_r.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
    }

    #[test]
    fn a_full_queue_never_splits_a_write_from_its_linked_read() {
        let (a_r, a_w) = pipe();
        let (b_r, _b_w) = pipe();
        let (out_r, out_w) = pipe();
        let mut ring = ForwardRing::new(2).unwrap();
        let a = ring.add_slot(a_r.as_raw_fd(), 64).unwrap();
        crate::os::sys::write(a_w.as_raw_fd(), b"frame").unwrap();
        let mut done = Vec::new();
        while done.is_empty() {
            ring.wait(&mut done).unwrap();
        }
        assert_eq!(ring.frame(a, 5), Some(&b"frame"[..]));
        // One read queued, not submitted: one free entry of two.
        ring.add_slot(b_r.as_raw_fd(), 64).unwrap();
        assert_eq!(ring.queued(), 1);
        ring.forward(a, out_w.as_raw_fd(), 5).unwrap();
        assert_eq!(
            ring.queued(),
            2,
            "the write and its linked read are queued together (the other read went first)"
        );
        ring.submit().unwrap();
        let mut buf = [0u8; 16];
        let mut n = 0;
        for _ in 0..200 {
            match crate::os::sys::read(out_r.as_raw_fd(), &mut buf) {
                Ok(k) => {
                    n = k;
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(&buf[..n], b"frame");
    }
}
