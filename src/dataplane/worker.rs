//! One dataplane worker thread: it polls the ports it owns (mio), reads
//! frames in batches, asks the forwarding core what to do and writes them
//! out. Its table of per-port [`Slot`]s is derived from the registry's
//! snapshot, taken again whenever the registry wakes it for a new one.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::device::{Device, Reading};
use super::egress::{self, Failure, Sent};
use super::policy::{Move, ReadPolicy, WINDOW_MS};
use super::stats::{Reason, WorkerCounters, bump};
use super::tapring::{PER_PASS, ReadDone, TapRing};
use super::taps::{self, Captured, Direction, Tap, TapOut, Taps};
use super::{Clock, Punted, Tuning};
use crate::os::sys;
use crate::os::uring::Completion;
use crate::port::PortKind;
use crate::registry::{PortRegistry, Snapshot, WorkerLink};
use crate::switch::{
    Action, Egress, MAX_PORTS, PortId, StormClass, StormMeter, Switch, SwitchView, TagAction,
};
use crate::wire::vnet::{VNET_HDR_LEN, VnetHdr};

/// Frames read from one port before the worker turns to the next.
pub const BATCH: usize = 64;
/// Room for a 64 KiB GSO frame, its virtio-net header and a pushed tag.
pub(super) const BUF_LEN: usize = 65536 + VNET_HDR_LEN + 64;
pub(super) const WAKER: Token = Token(usize::MAX);
pub(super) const RING: Token = Token(usize::MAX - 1);
/// How often a worker tries ports whose link went down again (a TAP's peer
/// in another namespace sends no notification when it comes back up).
pub(super) const RETRY: Duration = Duration::from_millis(250);

/// What a worker knows of one port (every port: any worker writes to any
/// port; it polls only those it owns).
struct Slot {
    dev: Arc<Device>,
    /// Read once from the port, not per frame.
    mtu: usize,
    offloads: bool,
    /// This worker polls it (or reads it through its ring).
    owned: bool,
    /// In the ready queue.
    queued: bool,
    /// Read through this worker's ring now (mirrors the ring's policy, so
    /// a frame's way in touches only this slot and the device).
    in_ring: bool,
    /// Frames read in the current window (for the ring's policy).
    frames: u32,
    /// Storm-control meters of frames received here.
    storm: StormMeter,
}

/// A worker's io_uring for its busy TAPs, with the policy that picks them.
struct RingReader {
    tr: TapRing,
    policy: ReadPolicy,
    /// When the current counting window ends (ms).
    window_end: u64,
    moves: Vec<Move>,
    done: Vec<Completion>,
    touched: Vec<PortId>,
    gone: Vec<PortId>,
}

/// Buffers a frame is read into and rewritten in.
struct Buffers {
    frame: Vec<u8>,
    /// A frame with its tag changed.
    tagged: Vec<u8>,
    /// Software segmentation and checksums.
    soft: Vec<u8>,
    /// A mirror's copy cut at its snap length.
    copy: Vec<u8>,
}

/// What reading one port left behind.
enum Drained {
    Empty,
    More,
    /// More here, but read this (polled) port first: the answer to the
    /// frame just forwarded may be waiting there.
    Answer(PortId),
    Gone,
}

/// Where a forwarded frame went, for the next read ([`Worker::service`]).
#[derive(Default)]
struct LastOut {
    /// This pass follows a sleep: after the first frame, read its egress
    /// port next.
    chase: bool,
    /// The port the last frame went to, if it went to one port.
    unicast: Option<PortId>,
}

pub(super) struct Worker {
    index: usize,
    poll: Poll,
    link: Arc<WorkerLink>,
    registry: Arc<PortRegistry>,
    switch: Arc<Switch>,
    /// The snapshot the slots were derived from (keeps its devices open).
    snapshot: Arc<Snapshot>,
    slots: Vec<Option<Slot>>,
    /// Owned ports with frames possibly waiting (edge-triggered polling).
    ready: VecDeque<PortId>,
    /// Boxed: the worker's own fields stay on a few cache lines.
    ring: Option<Box<RingReader>>,
    counters: Arc<WorkerCounters>,
    stop: Arc<AtomicBool>,
    clock: Clock,
    busy_poll: Duration,
    bufs: Buffers,
    last: LastOut,
    /// Where frames for the control plane go ([`super::Punted`]).
    punt: crossbeam_channel::Sender<Punted>,
    /// Mirrors and captures.
    taps: Arc<Taps>,
}

/// Clears the worker's `running` flag when its thread ends, however.
struct Running(Arc<WorkerLink>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0
            .running
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// What every worker of a dataplane shares.
#[derive(Clone)]
pub(super) struct Settings {
    pub stop: Arc<AtomicBool>,
    pub clock: Clock,
    pub tuning: Tuning,
    pub punt: crossbeam_channel::Sender<Punted>,
    pub taps: Arc<Taps>,
}

impl Worker {
    /// Worker `index` of `registry`'s dataplane, with its own poll set and
    /// the link through which the registry wakes it.
    pub(super) fn new(
        index: usize,
        registry: Arc<PortRegistry>,
        counters: Arc<WorkerCounters>,
        settings: Settings,
    ) -> io::Result<Worker> {
        let Settings {
            stop,
            clock,
            tuning,
            punt,
            taps,
        } = settings;
        let poll = Poll::new()?;
        let link = Arc::new(WorkerLink::new(mio::Waker::new(poll.registry(), WAKER)?));
        let ring = if tuning.io_uring {
            match TapRing::new().and_then(|r| {
                poll.registry()
                    .register(&mut SourceFd(&r.ring_fd()), RING, Interest::READABLE)
                    .map(|()| r)
            }) {
                Ok(tr) => Some(Box::new(RingReader {
                    tr,
                    policy: ReadPolicy::default(),
                    window_end: 0,
                    moves: Vec::new(),
                    done: Vec::new(),
                    touched: Vec::new(),
                    gone: Vec::new(),
                })),
                Err(e) => {
                    if index == 0 {
                        tracing::warn!(
                            "io_uring is not available ({e}): TAP ports are read with read()"
                        );
                    }
                    None
                }
            }
        } else {
            None
        };
        Ok(Worker {
            index,
            poll,
            link,
            switch: registry.switch().clone(),
            snapshot: Arc::new(Snapshot::default()),
            registry,
            slots: (0..MAX_PORTS).map(|_| None).collect(),
            ready: VecDeque::new(),
            ring,
            counters,
            stop,
            clock,
            busy_poll: tuning.busy_poll,
            bufs: Buffers {
                frame: vec![0u8; BUF_LEN],
                tagged: Vec::with_capacity(BUF_LEN),
                soft: Vec::with_capacity(BUF_LEN),
                copy: Vec::new(),
            },
            last: LastOut::default(),
            punt,
            taps,
        })
    }

    /// How the registry reaches this worker.
    pub(super) fn link(&self) -> Arc<WorkerLink> {
        self.link.clone()
    }

    pub(super) fn run(mut self) {
        let _running = Running(self.link.clone());
        self.adopt();
        let mut events = Events::with_capacity(256);
        let retry_ms = RETRY.as_millis() as u64;
        let mut now = self.clock.now_ms();
        let mut next_retry = now + retry_ms;
        // Busy polling: the last time a port had something to read.
        let mut last_busy = Instant::now();
        let mut ring_more = false;
        // Held for the worker's life: no reference count touched per pass.
        let switch = self.switch.clone();
        // The worker's copy of the port table, renewed when it changes, and
        // its FDB epoch guard, refreshed after each pass.
        let mut cache = switch.view_cache();
        while !self.stop.load(Relaxed) {
            let idle_for = if self.busy_poll.is_zero() {
                Duration::MAX
            } else {
                last_busy.elapsed()
            };
            let timeout = poll_timeout(
                !self.ready.is_empty() || ring_more,
                self.busy_poll,
                idle_for,
            );
            let poll = self.poll.poll(&mut events, Some(timeout));
            // Woken from sleep: chase the first frame's answer.
            self.last.chase = !timeout.is_zero();
            if let Err(e) = poll {
                // EINTR also comes from io_uring waking this thread to
                // complete a read: carry on to the ring's completions.
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                events.clear();
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    self.adopt();
                } else if ev.token() != RING {
                    self.mark_ready(ev.token().0 as PortId);
                }
            }
            // One clock reading (taken after the last pass) and one switch
            // view for the whole pass over the ready ports.
            ring_more = false;
            if !self.ready.is_empty() || self.ring.is_some() {
                let view = switch.view(&mut cache);
                let (frames, more) = self.ring_pass(&view, now);
                ring_more = more;
                if !self.busy_poll.is_zero() && (frames > 0 || !self.ready.is_empty()) {
                    last_busy = Instant::now();
                }
                self.polled_pass(&view, now);
            }
            // The clock is read here, after the pass, for the next one: not
            // between a sleep's wake-up and the first frame's forwarding,
            // where its first touch (the vDSO's pages, cold after a sleep)
            // cost ~2 µs of a round trip. Frames are stamped with the time
            // the previous pass ended: at most one sleep (RETRY) early, well
            // inside the ageing sweep's one second.
            now = self.clock.now_ms();
            cache.refresh();
            self.end_window(now);
            if now >= next_retry {
                next_retry = now + retry_ms;
                self.retry_link_down();
            }
        }
    }

    /// Reads each ready polled port once (a batch), in queue order.
    fn polled_pass(&mut self, view: &SwitchView<'_>, now: u64) {
        let mut budget = self.ready.len();
        while budget > 0 {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            budget -= 1;
            if let Some(s) = self.slots[id as usize].as_mut() {
                s.queued = false;
            }
            match self.service(id, view, now) {
                Drained::Empty => {}
                Drained::More => self.mark_ready(id),
                Drained::Answer(out) => {
                    self.mark_ready(id);
                    if self.ready_first(out) {
                        budget += 1;
                    }
                }
                Drained::Gone => self.port_gone(id),
            }
        }
    }

    /// Takes the registry's current snapshot: slots of ports that went (or
    /// whose device was replaced) are let go — their fds leave the poll
    /// set and the ring first — and new ones are made. Then tells the
    /// registry.
    fn adopt(&mut self) {
        let snap = self.registry.snapshot();
        if snap.generation() != self.snapshot.generation() {
            for i in 0..MAX_PORTS {
                let id = i as PortId;
                let rec = snap.get(id);
                let old = self.slots[i].as_ref().map(|s| &s.dev);
                if let (Some(o), Some(r)) = (old, rec)
                    && Arc::ptr_eq(o, &r.device)
                {
                    continue;
                }
                // A port new at this id, not a device re-attached under
                // the same name: its counters start from zero.
                let fresh = rec.is_some_and(|r| old.is_none_or(|o| o.name != r.cfg.name));
                if old.is_some() {
                    self.drop_slot(id);
                }
                if let Some(r) = rec {
                    if fresh {
                        self.counters.reset(id);
                    }
                    self.add_slot(r.device.clone());
                }
            }
            self.snapshot = snap;
        }
        self.link.adopted(self.snapshot.generation());
    }

    fn add_slot(&mut self, dev: Arc<Device>) {
        let id = dev.id;
        let owned = dev.worker == self.index;
        let fd = dev.port.fd();
        self.slots[id as usize] = Some(Slot {
            mtu: dev.port.mtu(),
            offloads: dev.port.offloads(),
            owned,
            queued: false,
            in_ring: false,
            frames: 0,
            storm: StormMeter::default(),
            dev,
        });
        if !owned {
            return;
        }
        let is_tap = self.slot(id).dev.port.kind() == PortKind::Tap;
        if let Some(r) = &mut self.ring
            && is_tap
        {
            match r.tr.attach(id, fd, BUF_LEN) {
                Ok(()) => r.policy.attach(id),
                Err(e) => tracing::warn!(
                    port = self.slot(id).dev.name.as_str(),
                    "cannot read port through io_uring (it is polled): {e}"
                ),
            }
        }
        if let Err(e) = self.poll_fd(id, fd) {
            tracing::error!(
                port = self.slot(id).dev.name.as_str(),
                "cannot poll port: {e}"
            );
            self.stop_reading(id);
            return;
        }
        // Frames may already be waiting: edge-triggered polling would not
        // report them.
        self.mark_ready(id);
    }

    /// The slot of a port known to be in the table.
    fn slot(&self, id: PortId) -> &Slot {
        self.slots[id as usize].as_ref().expect("slot in use")
    }

    /// Stops reading port `id` (its fd leaves the poll set and the ring)
    /// and forgets its slot.
    fn drop_slot(&mut self, id: PortId) {
        self.stop_reading(id);
        self.slots[id as usize] = None;
    }

    /// Stops reading port `id`: out of the poll set and the ring; the slot
    /// stays for writes.
    fn stop_reading(&mut self, id: PortId) {
        let Some(s) = self.slots[id as usize].as_mut() else {
            return;
        };
        if !std::mem::take(&mut s.owned) {
            return;
        }
        let fd = s.dev.port.fd();
        s.dev.set_reading(Reading::Polled);
        if !std::mem::take(&mut s.in_ring) {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        if let Some(r) = &mut self.ring
            && r.policy.is_attached(id)
        {
            r.tr.detach(id, fd);
            r.policy.detach(id);
        }
    }

    fn poll_fd(&self, id: PortId, fd: RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE)
    }

    /// Whether `id` is a polled port of this worker not in the ready queue
    /// yet; if so it is marked queued (the caller queues it).
    fn take_for_queue(&mut self, id: PortId) -> bool {
        match self.slots.get_mut(id as usize).and_then(Option::as_mut) {
            Some(s) if s.owned && !s.queued && !s.in_ring => {
                s.queued = true;
                true
            }
            _ => false,
        }
    }

    fn mark_ready(&mut self, id: PortId) {
        if self.take_for_queue(id) {
            self.ready.push_back(id);
        }
    }

    /// Puts polled port `id` at the head of the ready queue (unless it is
    /// queued already). Returns whether it was queued.
    fn ready_first(&mut self, id: PortId) -> bool {
        let queued = self.take_for_queue(id);
        if queued {
            self.ready.push_front(id);
        }
        queued
    }

    /// A port's device vanished: stop reading it and mark it down.
    fn port_gone(&mut self, id: PortId) {
        if let Some(s) = &self.slots[id as usize] {
            s.dev.gone(&self.switch);
            self.stop_reading(id);
        }
    }

    fn retry_link_down(&mut self) {
        for i in 0..MAX_PORTS {
            let Some(s) = &self.slots[i] else { continue };
            if !s.owned {
                continue;
            }
            if s.dev.link_state() == super::LinkState::Gone {
                // Marked gone by the control plane or another worker.
                self.stop_reading(i as PortId);
            } else {
                s.dev.retry(&self.switch);
            }
        }
        if let Some(r) = &mut self.ring {
            r.tr.rearm_idle();
        }
    }

    /// At the end of a window: TAPs that were busy in it are read through
    /// the ring from now on, those in the ring that were quiet are polled.
    fn end_window(&mut self, now: u64) {
        let Some(r) = &mut self.ring else { return };
        if now < r.window_end {
            return;
        }
        r.window_end = now + WINDOW_MS;
        let mut moves = std::mem::take(&mut r.moves);
        moves.clear();
        let slots = &mut self.slots;
        let frames = |id: PortId| {
            slots[id as usize]
                .as_mut()
                .map_or(0, |s| std::mem::take(&mut s.frames))
        };
        r.policy.end_window(frames, &mut moves);
        for m in &moves {
            match *m {
                Move::Enter(id) => self.enter_ring(id),
                Move::Leave(id) => self.leave_ring(id),
            }
        }
        if let Some(r) = &mut self.ring {
            r.moves = moves;
        }
    }

    /// A polled port found busy: read it through the ring from now on (or
    /// keep polling it if that fails).
    fn enter_ring(&mut self, id: PortId) {
        let Some(s) = &self.slots[id as usize] else {
            return;
        };
        let (fd, dev) = (s.dev.port.fd(), s.dev.clone());
        let Some(r) = &mut self.ring else { return };
        if self.poll.registry().deregister(&mut SourceFd(&fd)).is_err() {
            return;
        }
        if let Err(e) = r.tr.start_reading(id, fd) {
            tracing::debug!(
                port = dev.name.as_str(),
                "io_uring: cannot read the port: {e}"
            );
            // Undo what was done: reads armed, the fd made blocking.
            let _ = r.tr.stop_reading(id, fd);
            if let Err(e) = self.poll_fd(id, fd) {
                tracing::error!(port = dev.name.as_str(), "cannot poll port: {e}");
            }
            return;
        }
        r.policy.moved(id, true);
        dev.set_reading(Reading::Ring);
        if let Some(s) = self.slots[id as usize].as_mut() {
            s.in_ring = true;
        }
        tracing::debug!(port = dev.name.as_str(), "busy: reading through io_uring");
    }

    /// A port gone quiet in the ring: its pending reads are cancelled (the
    /// frames they took are forwarded at the head of the next pass) and it
    /// is polled again (frames may be waiting).
    fn leave_ring(&mut self, id: PortId) {
        let Some(s) = &self.slots[id as usize] else {
            return;
        };
        let (fd, dev) = (s.dev.port.fd(), s.dev.clone());
        let Some(r) = &mut self.ring else { return };
        if let Err(e) = r.tr.stop_reading(id, fd) {
            tracing::error!(port = dev.name.as_str(), "cannot poll the port again: {e}");
        }
        r.policy.moved(id, false);
        dev.set_reading(Reading::Polled);
        if let Some(s) = self.slots[id as usize].as_mut() {
            s.in_ring = false;
        }
        tracing::debug!(port = dev.name.as_str(), "quiet: polled again");
        if let Err(e) = self.poll_fd(id, fd) {
            tracing::error!(port = dev.name.as_str(), "cannot poll port: {e}");
            return;
        }
        self.mark_ready(id);
    }

    /// Reads up to a batch of frames from one polled port and forwards them.
    fn service(&mut self, id: PortId, view: &SwitchView<'_>, now: u64) -> Drained {
        let i = id as usize;
        for _ in 0..BATCH {
            // The slot is borrowed only up to the read (no reference count
            // touched per frame). A port read through the ring is not read
            // here (its fd is blocking).
            let Some(s) = self.slots[i].as_mut().filter(|s| s.owned && !s.in_ring) else {
                return Drained::Empty;
            };
            let n = match s.dev.port.recv(&mut self.bufs.frame) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_link_down(&e) => return Drained::Empty,
                Err(e) if sys::is_gone(&e) => return Drained::Gone,
                // A peer's framing we cannot read (a `unix:` stream's
                // bad length prefix): the port dropped the connection.
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidData
                        || e.raw_os_error() == Some(libc::EPROTO) =>
                {
                    self.counters.count_drop(id, Reason::Malformed);
                    return Drained::Empty;
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    self.counters.count_drop(id, Reason::TooBig);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(port = s.dev.name.as_str(), "read failed: {e}");
                    self.counters.count_drop(id, Reason::IoError);
                    return Drained::Empty;
                }
            };
            if s.dev.frame_received(&self.switch) {
                // A frame is the link coming up: forward it (the view was
                // made while the port was down).
                view.port_came_up(id);
            }
            s.frames = s.frames.saturating_add(1);
            let buf = std::mem::take(&mut self.bufs.frame);
            if let Some(e) = self.receive(view, id, &buf[..n], now) {
                self.send_out(view, &e, &buf[..n]);
            }
            self.bufs.frame = buf;
            if std::mem::take(&mut self.last.chase)
                && let Some(out) = self.last.unicast.take()
            {
                // The first frame after a sleep: a stack answering inside
                // our write (a ping's echo reply, a TCP ACK) has put its
                // answer on the egress port already. Read that port next,
                // before this one's remaining frames.
                return Drained::Answer(out);
            }
        }
        Drained::More
    }

    /// Counts a frame `buf` ([virtio-net header][Ethernet frame]) received
    /// on port `id` and decides it: where it goes, or `None` (dropped and
    /// counted).
    fn receive(
        &mut self,
        view: &SwitchView<'_>,
        id: PortId,
        buf: &[u8],
        now: u64,
    ) -> Option<Egress> {
        self.last.unicast = None;
        let n = buf.len();
        let c = self.counters.port(id);
        bump(&c.rx_frames, 1);
        if n < VNET_HDR_LEN {
            self.counters.count_drop(id, Reason::Malformed);
            return None;
        }
        bump(&c.rx_bytes, (n - VNET_HDR_LEN) as u64);
        let d = view.decide(id, &buf[VNET_HDR_LEN..], now);
        if self.taps.tapped_rx(id) {
            self.copy(id, true, buf, d.egress().map(|e| e.vid));
        }
        let c = self.counters.port(id);
        match d.action {
            Action::Drop(r) => {
                self.counters.count_drop(id, Reason::Decision(r));
                None
            }
            Action::Forward(e) => {
                let dst: &[u8; 6] = buf[VNET_HDR_LEN..VNET_HDR_LEN + 6].try_into().ok()?;
                if let Some(class) = StormClass::of(dst, e.flooded) {
                    let limits = view.storm_control(id);
                    if !limits.is_off()
                        && let Some(s) = self.slots[id as usize].as_mut()
                        && !s.storm.admit(&limits, class, now)
                    {
                        self.counters.count_drop(id, Reason::Storm(class));
                        return None;
                    }
                }
                if e.flooded {
                    bump(&c.flooded, 1);
                }
                bump(&c.forwarded, 1);
                Some(e)
            }
            Action::Punt => {
                let frame = buf[VNET_HDR_LEN..].to_vec();
                if self.punt.try_send(Punted { port: id, frame }).is_err() {
                    self.counters.count_drop(id, Reason::ControlQueueFull);
                } else {
                    bump(&self.counters.port(id).punted, 1);
                }
                None
            }
        }
    }

    /// Writes a decided frame to each of its egress ports, with the tag
    /// action and software offloads each one needs.
    fn send_out(&mut self, view: &SwitchView<'_>, e: &Egress, buf: &[u8]) {
        let hdr = VnetHdr::parse(&buf[..VNET_HDR_LEN]);
        let tpid = view.vlan_protocol();
        for (out, act) in e.iter() {
            let Some(s) = self.slots[out as usize].as_ref() else {
                continue;
            };
            let io = egress::PortIo {
                mtu: s.mtu,
                offloads: s.offloads,
            };
            let b = &mut self.bufs;
            let sent = if act == TagAction::Keep {
                egress::send(&s.dev.port, &io, hdr, buf, &mut b.soft)
            } else {
                let h = egress::apply_tag(act, tpid, hdr, &buf[VNET_HDR_LEN..], &mut b.tagged);
                egress::send(&s.dev.port, &io, h, &b.tagged, &mut b.soft)
            };
            if !e.flooded {
                self.last.unicast = Some(out);
            }
            self.count_sent(out, sent);
            if sent.frames > 0 && self.taps.tapped_tx(out) {
                if act == TagAction::Keep {
                    self.copy(out, false, buf, Some(e.vid));
                } else {
                    let tagged = std::mem::take(&mut self.bufs.tagged);
                    self.copy(out, false, &tagged, Some(e.vid));
                    self.bufs.tagged = tagged;
                }
            }
        }
    }

    /// Gives a copy of `buf` ([virtio-net header][frame]), received on
    /// (`rx`) or sent out of port `port` in VLAN `vid`, to every tap that
    /// selects it (the caller checked `Taps::tapped_rx`/`tapped_tx`).
    /// Never waits: a copy with no room is dropped and counted in its
    /// tap's stats.
    fn copy(&mut self, port: PortId, rx: bool, buf: &[u8], vid: Option<u16>) {
        if buf.len() < VNET_HDR_LEN {
            return;
        }
        let taps = self.taps.clone();
        let table = taps.load();
        let frame = &buf[VNET_HDR_LEN..];
        for tap in table.matching(port, rx, vid) {
            let kept = match &tap.out {
                TapOut::Capture(q) => q
                    .try_send(Captured {
                        port,
                        direction: if rx { Direction::In } else { Direction::Out },
                        time_ns: taps::wall_clock_ns(),
                        length: frame.len(),
                        data: tap.cut(frame).to_vec(),
                    })
                    .is_ok(),
                TapOut::Port(out) => self.mirror_to(*out, tap, buf),
            };
            let counter = if kept {
                &tap.stats.copied
            } else {
                &tap.stats.dropped
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Writes a mirror's copy of `buf` to its output port `out`. True if
    /// it left.
    fn mirror_to(&mut self, out: PortId, tap: &Tap, buf: &[u8]) -> bool {
        let Some(s) = self.slots[out as usize].as_ref() else {
            return false;
        };
        let io = egress::PortIo {
            mtu: s.mtu,
            offloads: s.offloads,
        };
        let frame = &buf[VNET_HDR_LEN..];
        let cut = tap.cut(frame);
        let b = &mut self.bufs;
        let sent = if cut.len() < frame.len() {
            // Cut short: a plain frame (no offload in its header).
            b.copy.clear();
            b.copy.resize(VNET_HDR_LEN, 0);
            b.copy.extend_from_slice(cut);
            let hdr = VnetHdr::parse(&b.copy[..VNET_HDR_LEN]);
            egress::send(&s.dev.port, &io, hdr, &b.copy, &mut b.soft)
        } else {
            let hdr = VnetHdr::parse(&buf[..VNET_HDR_LEN]);
            egress::send(&s.dev.port, &io, hdr, buf, &mut b.soft)
        };
        let ok = sent.failure.is_none();
        self.count_sent(out, sent);
        ok
    }

    /// Counts what one egress port sent, and acts on why the rest failed.
    fn count_sent(&self, out: PortId, sent: Sent) {
        let Some(s) = self.slots[out as usize].as_ref() else {
            return;
        };
        if sent.frames > 0 {
            let oc = self.counters.port(out);
            bump(&oc.tx_frames, sent.frames);
            bump(&oc.tx_bytes, sent.bytes);
            s.dev.frame_sent();
        }
        match sent.failure {
            None => {}
            Some(Failure::Dropped(r)) => self.counters.count_drop(out, r),
            Some(Failure::LinkDown) => {
                self.counters.count_drop(out, Reason::LinkDown);
                s.dev.link_down(&self.switch, "peer link is down");
            }
            Some(Failure::Gone) => {
                self.counters.count_drop(out, Reason::IoError);
                s.dev.gone(&self.switch);
            }
        }
    }

    /// The port a frame can be written to through the ring, with its fd:
    /// known unicast, unchanged (no tag action), to a TAP attached to this
    /// worker's ring, offloads on, and within its MTU.
    fn ring_target(&self, policy: &ReadPolicy, e: &Egress, buf: &[u8]) -> Option<(PortId, RawFd)> {
        if e.flooded {
            return None;
        }
        let (out, act) = e.iter().next()?;
        let s = self.slots[out as usize].as_ref()?;
        let hdr = VnetHdr::parse(&buf[..VNET_HDR_LEN]);
        let io = egress::PortIo {
            mtu: s.mtu,
            offloads: s.offloads,
        };
        let tapped = self.taps.tapped_tx(out);
        (act == TagAction::Keep
            && !tapped
            && policy.is_attached(out)
            && s.offloads
            && egress::fits(&io, &hdr, buf.len() - VNET_HDR_LEN))
        .then(|| (out, s.dev.port.fd()))
    }

    /// Handles the ring's completions (the backlog first): forwards each
    /// frame read and gives its slot back. Returns the frames forwarded and
    /// whether completions are left for the next pass.
    fn ring_pass(&mut self, view: &SwitchView<'_>, now: u64) -> (usize, bool) {
        let Some(mut r) = self.ring.take_if(|r| !r.tr.is_idle()) else {
            return (0, false);
        };
        let (mut frames, mut handled) = (0, 0);
        let mut done = std::mem::take(&mut r.done);
        loop {
            done.clear();
            r.tr.collect(&mut done);
            if done.is_empty() {
                break;
            }
            for c in &done {
                handled += 1;
                if c.write {
                    let (out, bytes, result) = r.tr.on_write(c);
                    let sent = if result >= 0 {
                        Sent::ok(bytes as usize)
                    } else {
                        Sent::failed(egress::classify(&io::Error::from_raw_os_error(-result)))
                    };
                    self.count_sent(out, sent);
                    continue;
                }
                match r.tr.on_read(c) {
                    ReadDone::Frame { id, len, first } => {
                        if first {
                            r.touched.push(id);
                        }
                        frames += 1;
                        if !self.ring_frame(&mut r, view, id, c.slot, len, now) {
                            r.tr.reuse(id, c.slot);
                        }
                    }
                    ReadDone::Gone(id) => r.gone.push(id),
                    ReadDone::Failed(id, err) => {
                        tracing::debug!(port = id, "read failed: {err}");
                        self.counters.count_drop(id, Reason::IoError);
                    }
                    ReadDone::Nothing => {}
                }
            }
            if let Err(e) = r.tr.submit() {
                tracing::error!("io_uring: submit failed: {e}");
                break;
            }
            if handled >= PER_PASS {
                break;
            }
        }
        r.done = done;
        let mut touched = std::mem::take(&mut r.touched);
        r.tr.end_pass(&touched);
        if !touched.is_empty() {
            // Reads armed for the new depths.
            let _ = r.tr.submit();
        }
        touched.clear();
        r.touched = touched;
        let mut gone = std::mem::take(&mut r.gone);
        self.ring = Some(r);
        gone.sort_unstable();
        gone.dedup();
        for &id in &gone {
            self.port_gone(id);
        }
        gone.clear();
        if let Some(r) = &mut self.ring {
            r.gone = gone;
        }
        (frames, handled >= PER_PASS)
    }

    /// Forwards the frame a ring read left in `slot`. Returns true if the
    /// slot went on to a ring write (else the caller gives it back).
    fn ring_frame(
        &mut self,
        r: &mut RingReader,
        view: &SwitchView<'_>,
        id: PortId,
        slot: usize,
        len: usize,
        now: u64,
    ) -> bool {
        let (Some(s), Some(buf)) = (self.slots[id as usize].as_mut(), r.tr.frame(slot, len)) else {
            return false;
        };
        if s.dev.frame_received(&self.switch) {
            // A frame is the link coming up: forward it (the view was
            // made while the port was down).
            view.port_came_up(id);
        }
        s.frames = s.frames.saturating_add(1);
        let Some(e) = self.receive(view, id, buf, now) else {
            return false;
        };
        let Some((out, fd)) = self.ring_target(&r.policy, &e, buf) else {
            // Ring writes queued so far go first: frames leave in the
            // order they came.
            if let Err(e) = r.tr.submit_now() {
                tracing::debug!("io_uring: submit before a write: {e}");
            }
            self.send_out(view, &e, buf);
            return false;
        };
        match r
            .tr
            .forward(id, slot, out, fd, len, (len - VNET_HDR_LEN) as u64)
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("io_uring: queueing a write: {e}");
                self.counters.count_drop(out, Reason::IoError);
                false
            }
        }
    }
}

/// How long a worker may sleep in `epoll_wait`: not at all while a port may
/// still hold frames or while it busy-polls (`busy_poll` since the last
/// frame, `idle_for` ago); otherwise until the next link-down retry.
pub(super) fn poll_timeout(ready: bool, busy_poll: Duration, idle_for: Duration) -> Duration {
    if ready || idle_for < busy_poll {
        Duration::ZERO
    } else {
        RETRY
    }
}
