//! The dataplane: worker threads that poll ports (mio), read frames in
//! batches, ask the forwarding core what to do, and write them out. It is
//! the only part that reads the clock and loops on I/O.
//!
//! Each port is polled by exactly one worker; any worker may write to any
//! port (a write to a TAP or AF_PACKET fd is one syscall, safe from many
//! threads). The control plane adds and removes ports through a command
//! channel and a waker, so a worker never blocks on it.

pub mod egress;
mod ring;
pub mod stats;

pub use ring::Tuning;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::port::{Port, sys};
use crate::switch::{
    Action, MAX_PORTS, PortConfig, PortError, PortId, Switch, SwitchView, TagAction,
};
use crate::wire::vnet::{VNET_HDR_LEN, VnetHdr};
use egress::Failure;
use stats::{Reason, WorkerCounters, bump};

/// Frames read from one port before the worker turns to the next.
pub const BATCH: usize = 64;
/// Room for a 64 KiB GSO frame, its virtio-net header and a pushed tag.
const BUF_LEN: usize = 65536 + VNET_HDR_LEN + 64;
const WAKER: Token = Token(usize::MAX);
const RING: Token = Token(usize::MAX - 1);
/// How often a worker tries ports whose link went down again (a TAP's peer
/// in another namespace sends no notification when it comes back up).
const RETRY: Duration = Duration::from_millis(250);

/// Milliseconds on a monotonic clock shared by the dataplane and the
/// control plane's ageing sweep.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }
    pub fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Port liveness as the dataplane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    /// Writes fail with EIO: the peer's link is down. Retried.
    LinkDown,
    /// The device disappeared.
    Gone,
}

/// A port attached to the dataplane.
pub struct PortHandle {
    pub id: PortId,
    pub port: Box<dyn Port>,
    /// One of the `ST_*` values.
    state: AtomicU64,
    worker: usize,
}

const ST_UP: u64 = 0;
const ST_LINK_DOWN: u64 = 1;
const ST_GONE: u64 = 2;
/// Link was down and is being tried again: forwards and reports as up; a
/// write that works makes it up, a write that fails makes it down again
/// without logging again.
const ST_PROBING: u64 = 3;

impl PortHandle {
    pub fn link_state(&self) -> LinkState {
        match self.state.load(Relaxed) {
            ST_UP | ST_PROBING => LinkState::Up,
            ST_GONE => LinkState::Gone,
            _ => LinkState::LinkDown,
        }
    }

    fn raw_state(&self) -> u64 {
        self.state.load(Relaxed)
    }

    fn swap_state(&self, v: u64) -> u64 {
        self.state.swap(v, Relaxed)
    }

    /// The link went down (a write failed with EIO/ENETDOWN, or the carrier
    /// dropped): the port stops forwarding and its learned MACs are flushed,
    /// like a bridge port whose link goes down. A gone port stays gone; a
    /// retry that fails again goes down quietly.
    fn link_down(&self, switch: &Switch, what: &str) {
        let prev = self
            .state
            .fetch_update(Relaxed, Relaxed, |s| (s != ST_GONE).then_some(ST_LINK_DOWN));
        match prev {
            Ok(ST_UP) => {
                tracing::info!(port = self.port.name(), "{what}");
                switch.set_port_up(self.id, false);
            }
            Ok(ST_PROBING) => switch.set_port_up(self.id, false),
            _ => {}
        }
    }

    /// A frame came in from the peer: a port that was down is up again
    /// (a gone port stays gone).
    fn frame_received(&self, switch: &Switch) {
        if self.raw_state() != ST_UP && self.raw_state() != ST_GONE {
            self.swap_state(ST_UP);
            switch.set_port_up(self.id, true);
            tracing::info!(port = self.port.name(), "link up");
        }
    }

    /// The device behind the port vanished: the port goes down for good
    /// (until the control plane re-attaches a new device).
    fn gone(&self, switch: &Switch) {
        if self.swap_state(ST_GONE) != ST_GONE {
            tracing::warn!(port = self.port.name(), "port device is gone; port down");
        }
        switch.set_port_up(self.id, false);
    }
}

type PortMap = Vec<Option<Arc<PortHandle>>>;

enum Cmd {
    Add(Arc<PortHandle>),
    Remove(PortId, Sender<()>),
    /// The port map changed: forward with this one from now on (and ack).
    Map(Arc<PortMap>, Sender<()>),
}

struct Worker {
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
    counters: Arc<WorkerCounters>,
}

/// How long the control plane waits for a worker to take a command.
const ACK_WAIT: Duration = Duration::from_secs(5);

impl Worker {
    /// Hands `cmd` to the worker and wakes it. False if it has exited.
    fn send(&self, cmd: Cmd) -> bool {
        self.tx.send(cmd).is_ok() && self.waker.wake().is_ok()
    }

    /// Hands over the command `make` builds around an ack channel; returns
    /// the ack's receiving end (`None` if the worker has exited).
    fn ask(&self, make: impl FnOnce(Sender<()>) -> Cmd) -> Option<Receiver<()>> {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        self.send(make(ack_tx)).then_some(ack_rx)
    }

    /// [`Worker::ask`], then waits (at most [`ACK_WAIT`]) for the ack.
    fn ask_and_wait(&self, make: impl FnOnce(Sender<()>) -> Cmd) {
        if let Some(ack) = self.ask(make) {
            let _ = ack.recv_timeout(ACK_WAIT);
        }
    }
}

/// Errors from attaching or detaching ports.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Switch(#[from] PortError),
    #[error("cannot poll port `{port}`: {source}")]
    Register { port: String, source: io::Error },
    #[error("cannot start the dataplane: {0}")]
    Start(io::Error),
}

/// The running dataplane.
pub struct Dataplane {
    switch: Arc<Switch>,
    /// Every worker has its own copy, renewed through [`Cmd::Map`]
    /// ([`Dataplane::update_map`]).
    ports: ArcSwap<PortMap>,
    map_writer: parking_lot::Mutex<()>,
    workers: Vec<Worker>,
    stop: Arc<AtomicBool>,
    clock: Clock,
}

impl Dataplane {
    /// Starts `workers` threads (at least one) forwarding for `switch`.
    /// A worker keeps polling for `tuning.busy_poll` after its last frame
    /// before it sleeps (zero: it sleeps as soon as nothing is ready), and
    /// reads its TAP ports through io_uring if `tuning.io_uring`.
    pub fn start(
        switch: Arc<Switch>,
        workers: usize,
        tuning: Tuning,
        clock: Clock,
    ) -> Result<Dataplane, DataplaneError> {
        let ports: ArcSwap<PortMap> = ArcSwap::from_pointee(vec![None; MAX_PORTS]);
        let stop = Arc::new(AtomicBool::new(false));
        let mut ws = Vec::new();
        for i in 0..workers.max(1) {
            let poll = Poll::new().map_err(DataplaneError::Start)?;
            let waker =
                Arc::new(Waker::new(poll.registry(), WAKER).map_err(DataplaneError::Start)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            let counters = Arc::new(WorkerCounters::default());
            let ring = if tuning.io_uring {
                match ring::TapRing::new().and_then(|r| {
                    poll.registry()
                        .register(&mut SourceFd(&r.ring_fd()), RING, Interest::READABLE)
                        .map(|()| r)
                }) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        if i == 0 {
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
            let mut run = Run {
                poll,
                rx,
                switch: switch.clone(),
                map: ports.load_full(),
                io: vec![egress::PortIo::default(); MAX_PORTS],
                stop: stop.clone(),
                counters: counters.clone(),
                clock,
                busy_poll: tuning.busy_poll,
                ring,
                ring_port: vec![false; MAX_PORTS],
                ring_ports: Vec::new(),
                in_ring: vec![false; MAX_PORTS],
                window: vec![0; MAX_PORTS],
                window_end: 0,
                owned: vec![None; MAX_PORTS],
                ready: VecDeque::new(),
                queued: vec![false; MAX_PORTS],
                buf: vec![0u8; BUF_LEN],
                scratch: Vec::with_capacity(BUF_LEN),
                seg: Vec::with_capacity(BUF_LEN),
                chase: false,
                unicast_out: None,
            };
            let thread = std::thread::Builder::new()
                .name(format!("vswitchd-dp{i}"))
                .spawn(move || run.run())
                .map_err(DataplaneError::Start)?;
            ws.push(Worker {
                tx,
                waker,
                thread: parking_lot::Mutex::new(Some(thread)),
                counters,
            });
        }
        Ok(Dataplane {
            switch,
            ports,
            map_writer: parking_lot::Mutex::new(()),
            workers: ws,
            stop,
            clock,
        })
    }

    pub fn switch(&self) -> &Arc<Switch> {
        &self.switch
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Every worker's counters, to be summed at scrape time.
    pub fn counters(&self) -> Vec<Arc<WorkerCounters>> {
        self.workers.iter().map(|w| w.counters.clone()).collect()
    }

    /// Attaches an open port with its configuration; it starts forwarding
    /// at once. Returns its id.
    pub fn add_port(&self, cfg: PortConfig, port: Box<dyn Port>) -> Result<PortId, DataplaneError> {
        let id = self.switch.add_port(cfg)?;
        for w in &self.workers {
            w.counters.reset(id);
        }
        let map = self.ports.load();
        let load = |w: usize| map.iter().flatten().filter(|p| p.worker == w).count();
        let worker = (0..self.workers.len())
            .min_by_key(|w| load(*w))
            .unwrap_or(0);
        let down = port.carrier() == Some(false);
        let h = Arc::new(PortHandle {
            id,
            port,
            state: AtomicU64::new(down as u64),
            worker,
        });
        self.update_map(id, Some(h.clone()));
        let w = &self.workers[worker];
        // The worker registers the fd; a closed channel means it has exited.
        if !w.send(Cmd::Add(h)) {
            self.forget(id);
            return Err(DataplaneError::Register {
                port: self.switch.port(id).map(|p| p.name).unwrap_or_default(),
                source: io::Error::other("dataplane stopped"),
            });
        }
        self.switch.set_port_up(id, !down);
        Ok(id)
    }

    fn forget(&self, id: PortId) {
        let _ = self.switch.remove_port(id);
        self.update_map(id, None);
    }

    /// Sets slot `id` of the port map and hands the new map to every
    /// worker; returns once each has taken it (or after 5 s), so no worker
    /// still holds a port taken out (its fd closes with the last holder).
    fn update_map(&self, id: PortId, h: Option<Arc<PortHandle>>) {
        // One update at a time: workers get the maps in the order they
        // were made.
        let _w = self.map_writer.lock();
        let mut map = (**self.ports.load()).clone();
        map[id as usize] = h;
        let map = Arc::new(map);
        self.ports.store(map.clone());
        // Asked all first, then waited for: the workers take it at once.
        let acks: Vec<_> = self
            .workers
            .iter()
            .filter_map(|w| w.ask(|ack| Cmd::Map(map.clone(), ack)))
            .collect();
        for ack in acks {
            let _ = ack.recv_timeout(ACK_WAIT);
        }
    }

    /// Detaches a port: it stops forwarding, its FDB entries go, and its fd
    /// is closed once no worker uses it. Returns the port.
    pub fn remove_port(&self, id: PortId) -> Option<Arc<PortHandle>> {
        let h = self.ports.load().get(id as usize)?.clone()?;
        self.switch.set_port_up(id, false);
        self.workers[h.worker].ask_and_wait(|ack| Cmd::Remove(id, ack));
        self.forget(id);
        Some(h)
    }

    /// The attached port with this id.
    pub fn port(&self, id: PortId) -> Option<Arc<PortHandle>> {
        self.ports.load().get(id as usize)?.clone()
    }

    /// All attached ports.
    pub fn ports(&self) -> Vec<Arc<PortHandle>> {
        self.ports.load().iter().flatten().cloned().collect()
    }

    /// Replaces the device behind port `id` (re-attached after it vanished)
    /// keeping its id, configuration and counters; the port goes up.
    pub fn replace_port(&self, id: PortId, port: Box<dyn Port>) -> Result<(), DataplaneError> {
        let Some(old) = self.port(id) else {
            return Err(DataplaneError::Switch(PortError::NoSuchPort(id)));
        };
        let w = &self.workers[old.worker];
        w.ask_and_wait(|ack| Cmd::Remove(id, ack));
        let h = Arc::new(PortHandle {
            id,
            port,
            state: AtomicU64::new(0),
            worker: old.worker,
        });
        self.update_map(id, Some(h.clone()));
        drop(old);
        if !w.send(Cmd::Add(h)) {
            return Err(DataplaneError::Register {
                port: self.switch.port(id).map(|p| p.name).unwrap_or_default(),
                source: io::Error::other("dataplane stopped"),
            });
        }
        self.switch.set_port_up(id, true);
        Ok(())
    }

    /// Marks a port's link down (its carrier dropped): it stops receiving
    /// frames and its learned MACs are flushed, like a bridge port whose
    /// link goes down. It comes back when the carrier returns.
    pub fn mark_link_down(&self, id: PortId) {
        if let Some(h) = self.port(id) {
            h.link_down(&self.switch, "link down");
        }
    }

    /// Marks a port's device as gone (e.g. its interface was deleted): it
    /// goes down and its learned MACs are flushed. The port stays configured
    /// so [`Dataplane::replace_port`] can re-attach it.
    pub fn mark_gone(&self, id: PortId) {
        if let Some(h) = self.port(id) {
            h.gone(&self.switch);
        }
    }

    /// Stops the workers and closes every port. Idempotent.
    pub fn shutdown(&self) {
        self.stop.store(true, Relaxed);
        for w in &self.workers {
            let _ = w.waker.wake();
        }
        for w in &self.workers {
            if let Some(t) = w.thread.lock().take() {
                let _ = t.join();
            }
        }
        for h in self.ports() {
            self.forget(h.id);
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long a worker may sleep in `epoll_wait`: not at all while a port may
/// still hold frames or while it busy-polls (`busy_poll` since the last
/// frame, `idle_for` ago); otherwise until the next link-down retry.
fn poll_timeout(ready: bool, busy_poll: Duration, idle_for: Duration) -> Duration {
    if ready || idle_for < busy_poll {
        Duration::ZERO
    } else {
        RETRY
    }
}

/// One worker's state.
struct Run {
    poll: Poll,
    rx: Receiver<Cmd>,
    switch: Arc<Switch>,
    /// This worker's copy of the port map ([`Cmd::Map`]).
    map: Arc<PortMap>,
    /// What reading and writing each port of `map` takes, made with it.
    io: Vec<egress::PortIo>,
    stop: Arc<AtomicBool>,
    counters: Arc<WorkerCounters>,
    clock: Clock,
    busy_poll: Duration,
    /// `--io-uring`: the ring the worker's busy TAP ports are read through.
    ring: Option<ring::TapRing>,
    /// Ports attached to `ring` (TAPs; polled while quiet).
    ring_port: Vec<bool>,
    /// The same ports, listed.
    ring_ports: Vec<PortId>,
    /// Ports read through `ring` at the moment rather than polled.
    in_ring: Vec<bool>,
    /// Per port: frames read in the current window (`ring::WINDOW_MS`);
    /// only those of `ring_ports` are read (and reset).
    window: Vec<u32>,
    /// When the current window ends (ms).
    window_end: u64,
    /// Ports this worker polls.
    owned: Vec<Option<Arc<PortHandle>>>,
    /// Ports with frames possibly waiting (edge-triggered polling).
    ready: VecDeque<PortId>,
    queued: Vec<bool>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    seg: Vec<u8>,
    /// This pass follows a sleep: after the first frame, read its egress
    /// port next ([`Run::service`]).
    chase: bool,
    /// The port the last frame forwarded went to, if it went to one port.
    unicast_out: Option<PortId>,
}

enum Drained {
    Empty,
    More,
    /// More here, but read this (polled) port first: the answer to the
    /// frame just forwarded may be waiting there.
    Answer(PortId),
    Gone,
}

impl Run {
    fn run(&mut self) {
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
            // Woken from sleep: chase the first frame's answer (below).
            self.chase = !timeout.is_zero();
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
                    self.commands();
                } else if ev.token() != RING {
                    self.mark_ready(ev.token().0 as PortId);
                }
            }
            // One clock reading (taken after the last pass), one port map
            // and one switch view for the whole pass over the ready ports.
            ring_more = false;
            if !self.ready.is_empty() || self.ring.is_some() {
                let map = self.map.clone();
                let view = switch.view(&mut cache);
                let pass = self.ring_pass(&view, &map, now);
                ring_more = pass.more;
                if !self.busy_poll.is_zero() && (pass.frames > 0 || !self.ready.is_empty()) {
                    last_busy = Instant::now();
                }
                let mut budget = self.ready.len();
                while budget > 0 {
                    let Some(id) = self.ready.pop_front() else {
                        break;
                    };
                    budget -= 1;
                    self.queued[id as usize] = false;
                    match self.service(id, &view, &map, now) {
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
            // The clock is read here, after the pass, for the next one: not
            // between a sleep's wake-up and the first frame's forwarding,
            // where its first touch (the vDSO's code and data pages, cold
            // after a sleep) cost ~2 µs of a round trip. The frames of a
            // pass are stamped with the time the previous pass ended: at
            // most one sleep (RETRY, 250 ms) early, well inside the ageing
            // sweep's one second.
            now = self.clock.now_ms();
            cache.refresh();
            if self.ring.is_some() && now >= self.window_end {
                self.window_end = now + ring::WINDOW_MS;
                self.choose_reading();
            }
            if now >= next_retry {
                next_retry = now + retry_ms;
                self.retry_link_down();
                if let Some(r) = &mut self.ring {
                    r.rearm_idle();
                }
            }
        }
    }

    /// Whether `id` is a polled port of this worker not in the ready queue
    /// yet; if so it is marked queued (the caller queues it).
    fn take_for_queue(&mut self, id: PortId) -> bool {
        let i = id as usize;
        if i >= MAX_PORTS || self.in_ring[i] || self.queued[i] || self.owned[i].is_none() {
            return false;
        }
        self.queued[i] = true;
        true
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

    fn mark_ready(&mut self, id: PortId) {
        if self.take_for_queue(id) {
            self.ready.push_back(id);
        }
    }

    fn commands(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Add(h) => {
                    let fd = h.port.fd();
                    if let Some(r) = &mut self.ring
                        && h.port.kind() == "tap"
                    {
                        match r.attach(h.id, fd, BUF_LEN) {
                            Ok(()) => {
                                self.ring_port[h.id as usize] = true;
                                self.ring_ports.push(h.id);
                                self.window[h.id as usize] = 0;
                            }
                            Err(e) => tracing::warn!(
                                port = h.port.name(),
                                "cannot read port through io_uring (it is polled): {e}"
                            ),
                        }
                    }
                    if let Err(e) = self.poll_port(h.id, fd) {
                        tracing::error!(port = h.port.name(), "cannot poll port: {e}");
                        if self.unlist_ring_port(h.id)
                            && let Some(r) = &mut self.ring
                        {
                            r.detach(h.id, fd);
                        }
                        continue;
                    }
                    let id = h.id;
                    self.owned[id as usize] = Some(h);
                    // Frames may already be waiting: edge-triggered polling
                    // would not report them.
                    self.mark_ready(id);
                }
                Cmd::Remove(id, ack) => {
                    self.deregister(id);
                    let _ = ack.send(());
                }
                Cmd::Map(map, ack) => {
                    self.io = map
                        .iter()
                        .map(|h| h.as_ref().map(|h| egress::PortIo::of(&*h.port)))
                        .map(Option::unwrap_or_default)
                        .collect();
                    self.map = map;
                    let _ = ack.send(());
                }
            }
        }
    }

    fn deregister(&mut self, id: PortId) {
        let i = id as usize;
        if let Some(h) = self.owned[i].take() {
            let fd = h.port.fd();
            if !std::mem::take(&mut self.in_ring[i]) {
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
            if self.unlist_ring_port(id)
                && let Some(r) = &mut self.ring
            {
                r.detach(id, fd);
            }
        }
    }

    /// Port `id` is no longer attached to the ring. Returns whether it was.
    fn unlist_ring_port(&mut self, id: PortId) -> bool {
        self.ring_ports.retain(|&p| p != id);
        std::mem::take(&mut self.ring_port[id as usize])
    }

    /// A polled port found busy: read it through the ring from now on.
    /// Returns false (and keeps polling it) if that fails.
    fn enter_ring(&mut self, id: PortId, fd: std::os::fd::RawFd) -> bool {
        let Some(r) = &mut self.ring else {
            return false;
        };
        if self.poll.registry().deregister(&mut SourceFd(&fd)).is_err() {
            return false;
        }
        if let Err(e) = r.start_reading(id, fd) {
            tracing::debug!(port = id, "io_uring: cannot read the port: {e}");
            // Undo what was done: reads armed, the fd made blocking.
            let _ = r.stop_reading(id, fd);
            if let Err(e) = self.poll_port(id, fd) {
                tracing::error!(port = id, "cannot poll port: {e}");
            }
            return false;
        }
        self.in_ring[id as usize] = true;
        true
    }

    /// At the end of a window: TAPs that were busy in it are read through
    /// the ring from now on, those in the ring that were quiet are polled.
    /// (Only TAPs attached to the ring are looked at: the windows of other
    /// ports are counted but never read.)
    fn choose_reading(&mut self) {
        for k in 0..self.ring_ports.len() {
            let i = self.ring_ports[k] as usize;
            let frames = std::mem::take(&mut self.window[i]);
            let Some(h) = self.owned[i].clone() else {
                continue;
            };
            let (id, fd) = (i as PortId, h.port.fd());
            if self.in_ring[i] {
                if frames < ring::LEAVE_FRAMES {
                    self.leave_ring(id, fd);
                    tracing::debug!(port = h.port.name(), "quiet: polled again");
                }
            } else if frames >= ring::ENTER_FRAMES && self.enter_ring(id, fd) {
                tracing::debug!(port = h.port.name(), "busy: reading through io_uring");
            }
        }
    }

    /// A port gone quiet in the ring: its pending reads are cancelled (the
    /// frames they took are forwarded at the head of the next pass) and it
    /// is polled again (frames may be waiting).
    fn leave_ring(&mut self, id: PortId, fd: std::os::fd::RawFd) {
        let Some(r) = &mut self.ring else {
            return;
        };
        if let Err(e) = r.stop_reading(id, fd) {
            tracing::error!(port = id, "cannot poll the port again: {e}");
        }
        self.in_ring[id as usize] = false;
        if let Err(e) = self.poll_port(id, fd) {
            tracing::error!(port = id, "cannot poll port: {e}");
            return;
        }
        self.mark_ready(id);
    }

    fn poll_port(&self, id: PortId, fd: std::os::fd::RawFd) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(id as usize), Interest::READABLE)
    }

    /// A port's device vanished: stop polling it and mark it down.
    fn port_gone(&mut self, id: PortId) {
        if let Some(h) = self.owned[id as usize].clone() {
            h.gone(&self.switch);
            self.deregister(id);
        }
    }

    fn retry_link_down(&mut self) {
        // Ports marked gone by the control plane or another worker: stop
        // polling them here too.
        let gone: Vec<PortId> = self
            .owned
            .iter()
            .flatten()
            .filter(|h| h.link_state() == LinkState::Gone)
            .map(|h| h.id)
            .collect();
        for id in gone {
            self.deregister(id);
        }
        for h in self.owned.iter().flatten() {
            if h.raw_state() == ST_LINK_DOWN && h.port.carrier() != Some(false) {
                h.swap_state(ST_PROBING);
                self.switch.set_port_up(h.id, true);
            }
        }
    }

    /// Reads up to a batch of frames from one port and forwards them.
    fn service(&mut self, id: PortId, view: &SwitchView<'_>, map: &PortMap, now: u64) -> Drained {
        let i = id as usize;
        // In the map too (it is handed over before a port is added and
        // after it is removed); borrowed from there, no count touched.
        let Some(h) = map[i].as_ref().filter(|_| self.owned[i].is_some()) else {
            return Drained::Empty;
        };
        if self.in_ring[i] {
            // Read through the ring; its fd is blocking.
            return Drained::Empty;
        }
        for _ in 0..BATCH {
            let n = match self.io[i].recv(&*h.port, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_link_down(&e) => return Drained::Empty,
                Err(e) if sys::is_gone(&e) => return Drained::Gone,
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    self.counters.count_drop(id, Reason::TooBig);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(port = h.port.name(), "read failed: {e}");
                    self.counters.count_drop(id, Reason::IoError);
                    return Drained::Empty;
                }
            };
            self.frame_in(h);
            let buf = std::mem::take(&mut self.buf);
            self.forward(view, map, id, &buf[..n], now, false, &mut || {});
            self.buf = buf;
            if std::mem::take(&mut self.chase)
                && let Some(out) = self.unicast_out.take()
            {
                // The first frame after a sleep: a stack answering inside
                // our write (a ping's echo reply, a TCP ACK) has put its
                // answer on the egress port already. Read that port next,
                // before this one's remaining frames (the answer would
                // otherwise wait for another read here and an epoll_wait).
                return Drained::Answer(out);
            }
        }
        Drained::More
    }

    /// A frame was read from port `h`: it is up, and the frame counts in
    /// its window (`choose_reading`).
    fn frame_in(&mut self, h: &PortHandle) {
        h.frame_received(&self.switch);
        let w = &mut self.window[h.id as usize];
        *w = w.wrapping_add(1);
    }

    /// Forwards one frame: `buf` is [virtio-net header][Ethernet frame].
    /// With `ring_write`, a frame going unchanged to exactly one port
    /// attached to the ring is not written here: its (port, fd) is returned
    /// for the caller to queue on the ring (tx is counted on completion).
    /// `before_write` runs before this frame's first ordinary write (the
    /// caller hands its queued ring writes to the kernel there, so frames
    /// leave in the order they came).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        view: &SwitchView<'_>,
        map: &PortMap,
        id: PortId,
        buf: &[u8],
        now: u64,
        ring_write: bool,
        before_write: &mut dyn FnMut(),
    ) -> Option<(PortId, std::os::fd::RawFd)> {
        self.unicast_out = None;
        let n = buf.len();
        let c = self.counters.port(id);
        bump(&c.rx_frames, 1);
        if n < VNET_HDR_LEN {
            self.counters.count_drop(id, Reason::Malformed);
            return None;
        }
        bump(&c.rx_bytes, (n - VNET_HDR_LEN) as u64);
        let d = view.decide(id, &buf[VNET_HDR_LEN..n], now);
        let e = match d.action {
            Action::Drop(r) => {
                self.counters.count_drop(id, Reason::Decision(r));
                return None;
            }
            Action::Forward(e) => e,
        };
        if e.flooded {
            bump(&c.flooded, 1);
        }
        let tpid = view.vlan_protocol();
        let hdr = VnetHdr::parse(&buf[..VNET_HDR_LEN]);
        for (out, act) in e.iter() {
            let Some(oh) = map.get(out as usize).and_then(|o| o.as_ref()) else {
                continue;
            };
            let io = self.io[out as usize];
            if ring_write
                && !e.flooded
                && act == TagAction::Keep
                && self.ring_port[out as usize]
                && io.offloads
                && egress::fits(&io, &hdr, n - VNET_HDR_LEN)
            {
                return Some((out, oh.port.fd()));
            }
            before_write();
            if !e.flooded {
                self.unicast_out = Some(out);
            }
            let sent = if act == TagAction::Keep {
                egress::send(&*oh.port, &io, hdr, &buf[..n], &mut self.seg)
            } else {
                let h = egress::apply_tag(act, tpid, hdr, &buf[VNET_HDR_LEN..n], &mut self.scratch);
                egress::send(&*oh.port, &io, h, &self.scratch, &mut self.seg)
            };
            self.sent(oh, out, sent);
        }
        None
    }

    /// Counts what one egress port sent, and acts on why the rest failed.
    fn sent(&self, oh: &PortHandle, out: PortId, sent: egress::Sent) {
        if sent.frames > 0 {
            let oc = self.counters.port(out);
            bump(&oc.tx_frames, sent.frames);
            bump(&oc.tx_bytes, sent.bytes);
            if oh.raw_state() == ST_PROBING
                && oh
                    .state
                    .compare_exchange(ST_PROBING, ST_UP, Relaxed, Relaxed)
                    .is_ok()
            {
                tracing::info!(port = oh.port.name(), "link up");
            }
        }
        match sent.failure {
            None => {}
            Some(Failure::Dropped(r)) => self.counters.count_drop(out, r),
            Some(Failure::LinkDown) => {
                self.counters
                    .count_drop(out, Reason::Decision(crate::switch::DropReason::PortDown));
                oh.link_down(&self.switch, "peer link is down");
            }
            Some(Failure::Gone) => {
                self.counters.count_drop(out, Reason::IoError);
                oh.gone(&self.switch);
            }
        }
    }
}

#[cfg(test)]
mod tests;
