//! The port registry: the one owner of every port's record.
//!
//! A port is one [`PortRecord`]: its id, its forwarding settings
//! ([`PortConfig`]), the open device ([`Device`]) and, for ports the daemon
//! opened, the plan it was opened from. Every change — add, remove,
//! reconfigure, re-attach a device that came back — is made on a draft of
//! the current table under one writer lock and published as a new
//! immutable [`Snapshot`]. Everything else is derived from the snapshot,
//! never edited on its own:
//! - the forwarding core's port table ([`Switch::install`]), installed
//!   before the snapshot is published;
//! - each dataplane worker's slot table, rebuilt when the worker is woken
//!   for the new generation.
//!
//! [`PortRegistry::change`] returns once every running worker has taken
//! the new snapshot, so a removed port's fd is closed (no worker holds its
//! device any more) when the call returns and its TAP can be created anew
//! at once. There is no timeout to ignore: a worker takes a snapshot at
//! its next wake-up, which the registry causes; the wait is logged if it
//! takes long.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Release};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mio::Waker;
use parking_lot::Mutex;

use crate::config::PortPlan;
use crate::dataplane::{Device, LinkState};
use crate::switch::{MAX_PORTS, PortConfig, PortId, Switch};

/// One port as the whole switch sees it.
#[derive(Clone)]
pub struct PortRecord {
    pub id: PortId,
    /// Forwarding settings (the name among them).
    pub cfg: PortConfig,
    /// The open device; replaced (same id) when a vanished device returns.
    pub device: Arc<Device>,
    /// How the daemon opened it (`None`: attached by a program or a test).
    pub plan: Option<PortPlan>,
    /// Added through the control socket, not from the config file: a
    /// reload leaves it alone unless the file names it.
    pub runtime: bool,
    /// A TAP spec attached as `raw:` because another process (QEMU) held
    /// the TAP.
    pub fell_back: bool,
}

impl PortRecord {
    pub fn name(&self) -> &str {
        &self.cfg.name
    }
}

/// An immutable view of every port, published on every change.
pub struct Snapshot {
    generation: u64,
    ports: Vec<Option<PortRecord>>,
}

impl Default for Snapshot {
    /// No ports, generation 0.
    fn default() -> Snapshot {
        Snapshot {
            generation: 0,
            ports: vec![None; MAX_PORTS],
        }
    }
}

impl Snapshot {
    /// Moves with every published change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn get(&self, id: PortId) -> Option<&PortRecord> {
        self.ports.get(id as usize)?.as_ref()
    }

    pub fn by_name(&self, name: &str) -> Option<&PortRecord> {
        self.iter().find(|r| r.name() == name)
    }

    /// Every port, by id.
    pub fn iter(&self) -> impl Iterator<Item = &PortRecord> {
        self.ports.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ports being changed: a copy of the current table, published whole
/// when the change succeeds ([`PortRegistry::change`]).
pub struct Draft {
    ports: Vec<Option<PortRecord>>,
}

/// Why a change to the ports was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("the switch already has {MAX_PORTS} ports")]
    Full,
    #[error("port `{0}` already exists")]
    Duplicate(String),
    #[error("no port named `{0}`")]
    NoSuchPort(String),
}

impl Draft {
    pub fn get(&self, id: PortId) -> Option<&PortRecord> {
        self.ports.get(id as usize)?.as_ref()
    }

    pub fn by_name(&self, name: &str) -> Option<&PortRecord> {
        self.ports.iter().flatten().find(|r| r.name() == name)
    }

    /// The id the next added port gets: the lowest free one.
    pub fn free_id(&self) -> Result<PortId, RegistryError> {
        self.ports
            .iter()
            .position(Option::is_none)
            .map(|i| i as PortId)
            .ok_or(RegistryError::Full)
    }

    /// Adds a record (its id must be free, its name unique).
    pub fn add(&mut self, rec: PortRecord) -> Result<PortId, RegistryError> {
        if self.by_name(rec.name()).is_some() {
            return Err(RegistryError::Duplicate(rec.cfg.name));
        }
        let id = rec.id;
        match self.ports.get_mut(id as usize) {
            Some(slot @ None) => *slot = Some(rec),
            _ => return Err(RegistryError::Full),
        }
        Ok(id)
    }

    /// Replaces the record of port `rec.id` (its name must stay unique).
    pub fn replace(&mut self, rec: PortRecord) -> Result<(), RegistryError> {
        if self
            .by_name(rec.name())
            .is_some_and(|other| other.id != rec.id)
        {
            return Err(RegistryError::Duplicate(rec.cfg.name));
        }
        match self.ports.get_mut(rec.id as usize) {
            Some(slot @ Some(_)) => {
                *slot = Some(rec);
                Ok(())
            }
            _ => Err(RegistryError::NoSuchPort(rec.cfg.name)),
        }
    }

    /// The worker with the fewest ports to poll (of `workers`).
    pub fn least_loaded(&self, workers: usize) -> usize {
        let load = |w: usize| {
            self.ports
                .iter()
                .flatten()
                .filter(|r| r.device.worker == w)
                .count()
        };
        (0..workers.max(1)).min_by_key(|w| load(*w)).unwrap_or(0)
    }

    /// Takes every port out.
    pub fn clear(&mut self) {
        self.ports.iter_mut().for_each(|p| *p = None);
    }

    /// Takes the port named `name` out.
    pub fn remove(&mut self, name: &str) -> Result<PortRecord, RegistryError> {
        let id = self
            .by_name(name)
            .map(|r| r.id)
            .ok_or_else(|| RegistryError::NoSuchPort(name.to_string()))?;
        Ok(self.ports[id as usize].take().expect("found above"))
    }
}

/// What the registry knows of one dataplane worker: how to wake it, and
/// the last snapshot generation it took.
pub struct WorkerLink {
    pub(crate) waker: Waker,
    pub(crate) adopted: AtomicU64,
    /// False once the worker's thread has ended (shutdown).
    pub(crate) running: AtomicBool,
}

impl WorkerLink {
    pub(crate) fn new(waker: Waker) -> WorkerLink {
        WorkerLink {
            waker,
            adopted: AtomicU64::new(0),
            running: AtomicBool::new(true),
        }
    }

    /// The worker took snapshot `generation`.
    pub(crate) fn adopted(&self, generation: u64) {
        self.adopted.store(generation, Release);
    }
}

/// See the module documentation.
pub struct PortRegistry {
    switch: Arc<Switch>,
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
    workers: Mutex<Vec<Arc<WorkerLink>>>,
}

/// How long a change waits for the workers before it says so in the log
/// (and goes on waiting).
const SLOW_ADOPTION: Duration = Duration::from_secs(5);

impl PortRegistry {
    pub fn new(switch: Arc<Switch>) -> PortRegistry {
        PortRegistry {
            switch,
            current: ArcSwap::from_pointee(Snapshot::default()),
            writer: Mutex::new(()),
            workers: Mutex::new(Vec::new()),
        }
    }

    pub fn switch(&self) -> &Arc<Switch> {
        &self.switch
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Registers a worker to wake and wait for on every change.
    pub(crate) fn add_worker(&self, link: Arc<WorkerLink>) {
        self.workers.lock().push(link);
    }

    /// Edits a draft of the current table with `edit`; if it succeeds, the
    /// draft becomes the new snapshot: the switch's port table is derived
    /// from it, then every worker takes it (this returns once each has).
    /// If `edit` fails, nothing changes.
    pub fn change<T, E>(&self, edit: impl FnOnce(&mut Draft) -> Result<T, E>) -> Result<T, E> {
        let _w = self.writer.lock();
        let cur = self.current.load_full();
        let mut draft = Draft {
            ports: cur.ports.clone(),
        };
        let out = edit(&mut draft)?;
        let next = Arc::new(Snapshot {
            generation: cur.generation + 1,
            ports: draft.ports,
        });
        // Ports that went (or whose id another port took): a worker still
        // reading one until it takes the snapshot may learn its MACs
        // again after the install's flush; flushed once more below, when
        // no worker reads it any more.
        let gone = self
            .switch
            .install(next.ports.iter().map(|p| p.as_ref().map(|r| r.cfg.clone())));
        // A new device (a port added, or re-attached) is up in the switch
        // unless it knows its link is down.
        for r in next.iter() {
            let new = cur
                .get(r.id)
                .is_none_or(|old| !Arc::ptr_eq(&old.device, &r.device));
            if new {
                self.switch
                    .set_port_up(r.id, r.device.link_state() == LinkState::Up);
            }
        }
        drop(cur);
        self.current.store(next.clone());
        self.wait_for_workers(next.generation);
        for id in gone {
            if next.get(id).is_none() {
                self.switch.forget_port(id);
            }
        }
        Ok(out)
    }

    /// Wakes every running worker and waits until each has taken snapshot
    /// `generation` (and so let go of the devices it no longer holds).
    fn wait_for_workers(&self, generation: u64) {
        let workers = self.workers.lock().clone();
        for w in &workers {
            let _ = w.waker.wake();
        }
        let start = Instant::now();
        let mut warned = false;
        for w in &workers {
            while w.running.load(Acquire) && w.adopted.load(Acquire) < generation {
                std::thread::sleep(Duration::from_micros(50));
                if !warned && start.elapsed() > SLOW_ADOPTION {
                    warned = true;
                    tracing::warn!("a dataplane worker is slow to take the new port table");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::pair;
    use crate::switch::SwitchConfig;

    fn record(d: &Draft, name: &str) -> PortRecord {
        let id = d.free_id().unwrap();
        let (p, _peer) = pair().unwrap();
        PortRecord {
            id,
            cfg: PortConfig::new(name),
            device: Arc::new(Device::new(p.into(), id, name, 0)),
            plan: None,
            runtime: false,
            fell_back: false,
        }
    }

    fn registry() -> PortRegistry {
        PortRegistry::new(Arc::new(Switch::new(&SwitchConfig::default())))
    }

    #[test]
    fn a_change_is_published_whole_and_the_switch_table_follows() {
        let r = registry();
        let ids = r
            .change(|d| {
                let a = d.add(record(d, "a"))?;
                let b = d.add(record(d, "b"))?;
                Ok::<_, RegistryError>((a, b))
            })
            .unwrap();
        assert_eq!(ids, (0, 1), "lowest free ids");
        let s = r.snapshot();
        assert_eq!(s.generation(), 1, "one change, one snapshot");
        assert_eq!(s.by_name("b").map(|p| p.id), Some(1));
        assert_eq!(r.switch().port(1).map(|c| c.name), Some("b".into()));
        assert!(r.switch().port_up(0), "a new device is up");
        r.change(|d| d.remove("a")).unwrap();
        assert_eq!(r.switch().port(0), None, "derived: gone from the table");
        assert!(!r.switch().port_up(0));
        let c = r.change(|d| d.add(record(d, "c"))).unwrap();
        assert_eq!(c, 0, "the freed id is reused");
    }

    #[test]
    fn a_failed_change_changes_nothing() {
        let r = registry();
        r.change(|d| d.add(record(d, "a"))).unwrap();
        let before = r.snapshot().generation();
        let e = r
            .change(|d| {
                d.remove("a")?;
                d.add(record(d, "b"))?;
                d.add(record(d, "b"))
            })
            .unwrap_err();
        assert_eq!(e, RegistryError::Duplicate("b".into()));
        let s = r.snapshot();
        assert_eq!(s.generation(), before);
        assert!(s.by_name("a").is_some() && s.by_name("b").is_none());
        assert_eq!(r.switch().port(0).map(|c| c.name), Some("a".into()));
        assert_eq!(
            r.change(|d| d.remove("zz")).map(|_| ()),
            Err(RegistryError::NoSuchPort("zz".into()))
        );
    }

    #[test]
    fn replacing_keeps_the_id_and_renaming_onto_another_port_is_refused() {
        let r = registry();
        r.change(|d| {
            d.add(record(d, "a"))?;
            d.add(record(d, "b"))
        })
        .unwrap();
        let mut a = r.snapshot().by_name("a").cloned().unwrap();
        a.cfg.flags.learning = false;
        r.change(|d| d.replace(a.clone())).unwrap();
        assert!(!r.switch().port(0).unwrap().flags.learning);
        a.cfg.name = "b".into();
        assert_eq!(
            r.change(|d| d.replace(a)),
            Err(RegistryError::Duplicate("b".into()))
        );
    }

    #[test]
    fn the_least_loaded_worker_gets_the_next_port() {
        let r = registry();
        r.change(|d| {
            let mut a = record(d, "a");
            a.device = Arc::new(Device::new(pair().unwrap().0.into(), 0, "a", 1));
            d.add(a)?;
            assert_eq!(d.least_loaded(2), 0);
            assert_eq!(d.least_loaded(1), 0);
            let mut b = record(d, "b");
            b.device = Arc::new(Device::new(pair().unwrap().0.into(), 1, "b", 0));
            d.add(b)?;
            let mut c = record(d, "c");
            c.device = Arc::new(Device::new(pair().unwrap().0.into(), 2, "c", 0));
            d.add(c)?;
            assert_eq!(d.least_loaded(2), 1);
            Ok::<_, RegistryError>(())
        })
        .unwrap();
    }
}
