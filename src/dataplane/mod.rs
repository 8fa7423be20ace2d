//! The dataplane: worker threads that poll ports (mio), read frames in
//! batches, ask the forwarding core what to do, and write them out. It is
//! the only part that reads the clock and loops on I/O.
//!
//! - [`device`]: an open port with its link state and reading mode;
//! - `worker`: one thread, its per-port slots derived from the
//!   [registry](crate::registry)'s snapshot;
//! - `policy` and `tapring`: busy TAPs read through io_uring;
//! - [`egress`]: getting a decided frame out of one port;
//! - [`stats`]: per-worker counters.
//!
//! Each port is polled by exactly one worker; any worker may write to any
//! port (a write to a TAP or AF_PACKET fd is one syscall, safe from many
//! threads).

#![forbid(unsafe_code)]

pub mod device;
pub mod egress;
mod policy;
pub mod stats;
mod tapring;
pub mod taps;
mod worker;

pub use device::{Device, LinkState, Reading};
pub use worker::BATCH;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::port::Port;
use crate::registry::{PortRecord, PortRegistry, RegistryError, WorkerLink};
use crate::switch::{PortConfig, PortId, Switch};
use stats::WorkerCounters;

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

/// Dataplane settings beyond the number of workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Keep polling this long after the last frame before sleeping.
    pub busy_poll: Duration,
    /// Read busy TAP ports through io_uring.
    pub io_uring: bool,
}

/// Errors from starting the dataplane or attaching ports.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot start the dataplane: {0}")]
    Start(io::Error),
}

/// A frame the forwarding core handed to the control plane
/// ([`crate::switch::Action::Punt`]): a BPDU while spanning tree runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punted {
    /// The port it arrived on.
    pub port: PortId,
    /// The Ethernet frame (no virtio-net header).
    pub frame: Vec<u8>,
}

/// How many punted frames wait for the control plane before more are
/// dropped (and counted as `control_queue_full`): a few seconds of BPDUs
/// from every port of a busy tree.
pub const PUNT_QUEUE: usize = 1024;

struct WorkerThread {
    link: Arc<WorkerLink>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
    counters: Arc<WorkerCounters>,
}

/// The running dataplane.
pub struct Dataplane {
    registry: Arc<PortRegistry>,
    workers: Vec<WorkerThread>,
    stop: Arc<AtomicBool>,
    clock: Clock,
    punted: crossbeam_channel::Receiver<Punted>,
    taps: Arc<taps::Taps>,
}

impl Dataplane {
    /// Starts `workers` threads (at least one) forwarding for `switch`.
    /// A worker keeps polling for `tuning.busy_poll` after its last frame
    /// before it sleeps (zero: it sleeps as soon as nothing is ready), and
    /// reads its busy TAP ports through io_uring if `tuning.io_uring`.
    pub fn start(
        switch: Arc<Switch>,
        workers: usize,
        tuning: Tuning,
        clock: Clock,
    ) -> Result<Dataplane, DataplaneError> {
        let registry = Arc::new(PortRegistry::new(switch));
        let stop = Arc::new(AtomicBool::new(false));
        let (punt, punted) = crossbeam_channel::bounded(PUNT_QUEUE);
        let taps = Arc::new(taps::Taps::default());
        let settings = worker::Settings {
            stop: stop.clone(),
            clock,
            tuning,
            punt,
            taps: taps.clone(),
        };
        let mut ws = Vec::new();
        for i in 0..workers.max(1) {
            let counters = Arc::new(WorkerCounters::default());
            let w = worker::Worker::new(i, registry.clone(), counters.clone(), settings.clone())
                .map_err(DataplaneError::Start)?;
            let link = w.link();
            let thread = std::thread::Builder::new()
                .name(format!("vswitchd-dp{i}"))
                .spawn(move || {
                    // Frames from guests are parsed here: a dataplane
                    // thread holds no capability.
                    if let Err(e) = crate::os::caps::drop_all_in_this_thread() {
                        tracing::debug!("dataplane thread keeps its capabilities: {e}");
                    }
                    w.run()
                })
                .map_err(DataplaneError::Start)?;
            registry.add_worker(link.clone());
            ws.push(WorkerThread {
                link,
                thread: parking_lot::Mutex::new(Some(thread)),
                counters,
            });
        }
        Ok(Dataplane {
            registry,
            workers: ws,
            stop,
            clock,
            punted,
            taps,
        })
    }

    /// The frames the forwarding core hands to the control plane
    /// ([`Punted`]), in arrival order. Reading them is the control
    /// plane's job; while nobody does, they are dropped once
    /// [`PUNT_QUEUE`] wait.
    /// Mirrors and captures ([`taps`]).
    pub fn taps(&self) -> &taps::Taps {
        &self.taps
    }

    pub fn punted(&self) -> &crossbeam_channel::Receiver<Punted> {
        &self.punted
    }

    /// The port registry: every change to the ports goes through it.
    pub fn registry(&self) -> &Arc<PortRegistry> {
        &self.registry
    }

    pub fn switch(&self) -> &Arc<Switch> {
        self.registry.switch()
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The once-a-second upkeep of tunnel ports' remote tables: the
    /// switch's clock, ageing time and capacity, and which MACs the switch's
    /// FDB still holds on each (see `src/port/vxlan.rs`). Returns the
    /// entries removed.
    pub fn sweep_tunnels(&self, now: u64) -> usize {
        let snap = self.registry.snapshot();
        let fdb = self.switch().fdb();
        let mut gone = 0;
        let mut entries = None;
        for rec in snap.iter() {
            let Port::Vxlan(v) = &rec.device.port else {
                continue;
            };
            let all = entries.get_or_insert_with(|| fdb.entries(now));
            let held: std::collections::HashSet<crate::wire::Mac> = all
                .iter()
                .filter(|e| e.port == rec.id)
                .map(|e| e.mac)
                .collect();
            gone += v.sweep(now, fdb.ageing_ms(), fdb.capacity(), |m| held.contains(&m));
        }
        gone
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Every worker's counters, to be summed at scrape time.
    pub fn counters(&self) -> Vec<Arc<WorkerCounters>> {
        self.workers.iter().map(|w| w.counters.clone()).collect()
    }

    /// Attaches an open port with its configuration (no plan: a program
    /// or a test attaching it); it forwards at once. Returns its id.
    pub fn add_port(
        &self,
        cfg: PortConfig,
        port: impl Into<Port>,
    ) -> Result<PortId, DataplaneError> {
        let port = port.into();
        let workers = self.workers.len();
        Ok(self.registry.change(|d| {
            let id = d.free_id()?;
            let device = Arc::new(Device::new(port, id, &cfg.name, d.least_loaded(workers)));
            d.add(PortRecord {
                id,
                cfg,
                device,
                plan: None,
                runtime: false,
                fell_back: false,
            })
        })?)
    }

    /// Detaches port `id`: it stops forwarding, its FDB entries go, and its
    /// fd is closed (no worker holds it any more) when this returns.
    pub fn remove_port(&self, id: PortId) -> Option<PortRecord> {
        let name = self.port(id)?.cfg.name;
        self.registry.change(|d| d.remove(&name)).ok()
    }

    /// The attached port with this id.
    pub fn port(&self, id: PortId) -> Option<PortRecord> {
        self.registry.snapshot().get(id).cloned()
    }

    /// All attached ports, by id.
    pub fn ports(&self) -> Vec<PortRecord> {
        self.registry.snapshot().iter().cloned().collect()
    }

    /// Replaces the device behind port `id` (re-attached after it vanished)
    /// keeping its id, configuration, worker and counters.
    pub fn replace_port(&self, id: PortId, port: Port) -> Result<(), DataplaneError> {
        self.registry.change(|d| {
            let mut rec = d
                .get(id)
                .cloned()
                .ok_or_else(|| RegistryError::NoSuchPort(format!("#{id}")))?;
            rec.device = Arc::new(Device::new(port, id, &rec.cfg.name, rec.device.worker));
            d.replace(rec)
        })?;
        Ok(())
    }

    /// Sends a frame the control plane made (a BPDU, a multicast query)
    /// out of port `id`, as it is: no tag action, no virtio-net offloads.
    /// Any thread may call it; the port's worker is not involved. `None`
    /// when there is no such port.
    pub fn send_frame(&self, id: PortId, frame: &[u8]) -> Option<egress::Sent> {
        let rec = self.port(id)?;
        let io = egress::PortIo {
            mtu: rec.device.port.mtu(),
            offloads: rec.device.port.offloads(),
        };
        let mut buf = vec![0u8; crate::wire::vnet::VNET_HDR_LEN];
        buf.extend_from_slice(frame);
        let hdr = crate::wire::vnet::VnetHdr::default();
        Some(egress::send(
            &rec.device.port,
            &io,
            hdr,
            &buf,
            &mut Vec::new(),
        ))
    }

    /// Marks a port's link down (its carrier dropped): it stops receiving
    /// frames and its learned MACs are flushed, like a bridge port whose
    /// link goes down. It comes back when the carrier returns.
    pub fn mark_link_down(&self, id: PortId) {
        if let Some(r) = self.port(id) {
            r.device.link_down(self.switch(), "link down");
        }
    }

    /// Marks a port's device as gone (e.g. its interface was deleted): it
    /// goes down and its learned MACs are flushed. The port stays configured
    /// so [`Dataplane::replace_port`] can re-attach it.
    pub fn mark_gone(&self, id: PortId) {
        if let Some(r) = self.port(id) {
            r.device.gone(self.switch());
        }
    }

    /// Stops the workers and closes every port. Idempotent.
    pub fn shutdown(&self) {
        self.stop.store(true, Relaxed);
        for w in &self.workers {
            let _ = w.link.waker.wake();
        }
        for w in &self.workers {
            if let Some(t) = w.thread.lock().take() {
                let _ = t.join();
            }
        }
        let _ = self.registry.change(|d| {
            d.clear();
            Ok::<(), RegistryError>(())
        });
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
