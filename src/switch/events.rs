//! What `vswitchctl monitor` watches: FDB changes (learned, moved, aged,
//! evicted, flushed, added, deleted) and port changes (added, up, down,
//! gone), as they happen.
//!
//! The switch emits an event only where the state really changes, on
//! paths that already take the FDB's learn lock or change the port table:
//! never on the per-frame path of a known MAC. With nobody watching an
//! emit costs one relaxed atomic load. Each watcher is offered every event
//! and keeps what it has room for ([`Watcher::offer`] must not block: a
//! bounded queue that counts what it drops), so a slow or stuck `monitor`
//! client never slows the switch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use serde::Serialize;

use super::ports::PortId;
use crate::wire::Mac;

/// One change in the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Fdb {
        event: FdbEvent,
        mac: Mac,
        vlan: u16,
        /// The port the entry is (or was) on.
        port: PortId,
        /// For `moved`: the port it moved from.
        from: Option<PortId>,
    },
    Port {
        event: PortEvent,
        port: PortId,
        name: String,
    },
    /// Spanning tree changed a port's role or state, or a topology change
    /// began.
    Topology { port: Option<String>, what: String },
}

/// What happened to an FDB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FdbEvent {
    Learned,
    Moved,
    Aged,
    Evicted,
    Flushed,
    /// A static entry added (or a learned one made static).
    Added,
    /// Removed by `fdb del`.
    Deleted,
}

/// What happened to a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortEvent {
    Added,
    Up,
    Down,
    Gone,
}

/// Takes the events a watcher is given.
pub trait Watcher: Send + Sync {
    /// Keeps `event` if there is room (never blocks).
    fn offer(&self, event: &Event);
    /// The watcher is gone: it is dropped at the next event.
    fn closed(&self) -> bool;
}

/// The watchers of one switch.
#[derive(Default)]
pub struct Events {
    watched: AtomicBool,
    next_id: AtomicU64,
    watchers: Mutex<Vec<(u64, Arc<dyn Watcher>)>>,
}

impl Events {
    /// Starts offering events to `w`; returns the id [`Events::unwatch`]
    /// takes.
    pub fn watch(&self, w: Arc<dyn Watcher>) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut ws = self.watchers.lock();
        ws.push((id, w));
        self.watched.store(true, Relaxed);
        id
    }

    pub fn unwatch(&self, id: u64) {
        let mut ws = self.watchers.lock();
        ws.retain(|(i, _)| *i != id);
        self.watched.store(!ws.is_empty(), Relaxed);
    }

    /// Whether anyone watches (an emitter may skip building events).
    #[inline]
    pub fn watched(&self) -> bool {
        self.watched.load(Relaxed)
    }

    /// Offers the event `make` builds to every watcher (built only if
    /// someone watches).
    #[inline]
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if self.watched() {
            self.offer(make());
        }
    }

    fn offer(&self, ev: Event) {
        let mut ws = self.watchers.lock();
        ws.retain(|(_, w)| !w.closed());
        for (_, w) in ws.iter() {
            w.offer(&ev);
        }
        self.watched.store(!ws.is_empty(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count {
        seen: AtomicUsize,
        closed: AtomicBool,
    }

    impl Watcher for Count {
        fn offer(&self, _: &Event) {
            self.seen.fetch_add(1, Relaxed);
        }
        fn closed(&self) -> bool {
            self.closed.load(Relaxed)
        }
    }

    fn ev() -> Event {
        Event::Port {
            event: PortEvent::Up,
            port: 0,
            name: "p0".into(),
        }
    }

    #[test]
    fn events_reach_watchers_until_they_close_or_leave() {
        let e = Events::default();
        let mut built = 0;
        e.emit(|| {
            built += 1;
            ev()
        });
        assert_eq!(built, 0, "built with nobody watching");
        let a = Arc::new(Count::default());
        let b = Arc::new(Count::default());
        let ida = e.watch(a.clone());
        e.watch(b.clone());
        e.emit(ev);
        b.closed.store(true, Relaxed);
        e.emit(ev);
        e.unwatch(ida);
        e.emit(ev);
        assert_eq!(a.seen.load(Relaxed), 2);
        assert_eq!(b.seen.load(Relaxed), 1);
        assert!(!e.watched());
    }
}
