//! The forwarding database: which port a (MAC, VLAN) was last seen on.
//!
//! This header is the one account of how the FDB works and why it is
//! correct with every worker reading and learning at once;
//! docs/architecture.md points here, and docs/dev/fdb-cache.md has the
//! measurements behind the cache.
//!
//! # Keys and entries
//! An entry is keyed by (MAC, VLAN) — the same MAC may live on different
//! ports in different VLANs. A VLAN-unaware switch keys everything on VLAN 1.
//! Each entry holds the port (an `AtomicU16`), the time the MAC was last seen
//! as a source (`AtomicU64`, milliseconds on the caller's clock) and whether it
//! is static. Static entries are added by the operator, never age, are never
//! moved by learning and are never evicted. EVPN entries (origin `evpn`,
//! installed by the BGP EVPN agent for MACs behind a remote VTEP) are static
//! entries with one difference: learning on *another* port takes them over
//! (the MAC moved here, as the kernel bridge does with `extern_learn`
//! entries), and the agent then advertises the move.
//!
//! # Reading and refreshing: no lock
//! The map is a `papaya` concurrent hash map whose reads are lock-free:
//! epoch-based reclamation keeps a removed entry's memory valid while a
//! reader that could have seen it holds a guard. For a frame between two
//! known MACs a reader ([`FdbReader`]):
//! 1. looks up the destination (a lock-free read),
//! 2. looks up the source; if it is on the ingress port it moves the entry's
//!    `seen` forward with an atomic `fetch_max`, and only when the millisecond
//!    changed, so two readers of the same MAC do not bounce a cache line on
//!    every frame.
//!
//! # Learning: one short lock
//! A new MAC, a moved MAC or a control-plane change takes the learn lock.
//! Under it the learner re-checks the map (another reader may have learned
//! the same MAC first — losing that race is harmless), keeps per-port counts
//! and the ageing order, and inserts or moves the entry. A move is a single
//! atomic store of the port. It is one mutex rather than shards because
//! capacity and fair eviction need a switch-wide view; it is taken at the
//! rate new MACs appear, not at the frame rate.
//!
//! A port at its MAC limit fed ever new sources would take it at the frame
//! rate, so that refusal is decided without the lock when the locked path
//! could only refuse too: the port's learned count (an atomic copy, written
//! under the lock) is at the limit and no learned entry can have aged yet
//! (`sweep_due`: the earliest time one can, lowered by every insert and move,
//! recomputed by every sweep), so the sweep the locked path would run first
//! would free nothing. Such a refusal costs one map probe and two atomic
//! loads, and is counted like any other.
//!
//! # The worker's cache and the generation
//! A dataplane worker keeps an [`FdbCache`] ([`Fdb::cache`]) across its
//! passes: its epoch guard and 128 slots, each saying "(MAC, VLAN) is on
//! port P, seen at S or later" from an answer the map gave it. A slot is
//! used only while the table's generation is the one it was filled under
//! and S is within the ageing time (judged with the current ageing time; the
//! entry's real `seen` can only be later, so a slot never calls live an
//! entry that has aged). A lookup it answers, and a known source on the same
//! port, touch no FDB entry. A known source at a later millisecond still has
//! to move the entry's `seen`: that refresh is put off to
//! [`FdbCache::refresh`], which the worker calls after each pass, after the
//! frames are written. Measured per frame (docs/dev/fdb-cache.md): bursts
//! of a few flows cost ~80 instructions less (two map probes per flow and
//! pass instead of per frame); a frame after a sleep meets 6 cache misses
//! fewer before it is written (and 5 more after); more flows than slots
//! cost ~20 instructions more. A memo of each reader's last answer in
//! front of the map (there was one) saves nothing the slots do not.
//!
//! The cache's guard is held across passes, so what is removed from the map
//! is freed only once every worker has refreshed it: after its next pass,
//! at most a few hundred milliseconds later while it sleeps. A cache holds
//! `Cell`s and a thread-local guard: it belongs to the thread that made it.
//!
//! The generation is a counter that moves, after the change, whenever a
//! slot's claim can stop being true: an entry moved, removed (deleted,
//! flushed, aged, evicted) or replaced by a static one. Nothing else moves
//! it: not an insert (the MAC was absent, so its slots were already stale:
//! the removal moved the generation, under the lock, before any insert of
//! the MAC could take it), not a refresh (`seen` only grows, a slot holds a
//! lower bound), not a refusal (nothing changed) and not a new ageing time
//! (slots are judged with the current one). So neither frames from known
//! MACs nor a port refusing new ones at its limit ever invalidate the other
//! workers' caches.
//!
//! # Races
//! Each is a reader acting on what was true an instant earlier:
//! - a lookup racing a move sees the old or the new port, both true at some
//!   instant, as with the kernel's RCU FDB; so does a slot read between a
//!   change and the generation moving;
//! - sweep against refresh: a lock-free refresh of an entry that a sweep or
//!   an eviction is removing can land on the removed entry and be lost. That
//!   needs the entry at the very end of its ageing time (or the least
//!   recently seen of the largest port); the MAC's next frame learns it
//!   again, and frames to it flood until then, as after any ageing;
//! - flush against a deferred refresh: a put-off refresh only moves `seen`
//!   of the entry still on that port; one deleted, flushed, aged, evicted or
//!   moved in between is left alone, so a flushed MAC does not come back
//!   from a refresh put off before the flush (nor is a MAC moved back by a
//!   stale one). The price: an entry aged or evicted during the pass that saw
//!   it loses that refresh, and is learned again at its next frame;
//! - flush against a learn: a frame decided while a flush runs can learn its
//!   source again, as on any bridge (the MAC was seen there). Whoever needs
//!   a port's entries gone for good (removing the port) flushes after
//!   nothing reads from that port any more;
//! - a refusal decided without the lock reads the count and `sweep_due`
//!   apart: against a concurrent flush or sweep it refuses as if the frame
//!   had come just before it.
//!
//! # Ageing
//! Each port keeps its learned entries in a `BTreeSet` ordered by the time
//! they were queued. `seen` moves forward without the lock, so the queue is
//! refreshed lazily: [`Fdb::expire`] pops the front, and if the entry was
//! seen since it was queued, re-queues it at its real `seen`. An entry is
//! popped only when `queued == seen`, so it is exactly the least recently
//! seen one. Lookups also treat an entry older than the ageing time as
//! absent, so ageing is exact (to the caller's clock) even between sweeps.
//! The caller sweeps about once a second; each sweep costs
//! O(ports + expired + refreshed) with no scan of the entries.
//!
//! # Capacity and eviction
//! The table holds at most `capacity` entries (static ones included). When it
//! is full and a new MAC arrives, aged entries are swept first; then the port
//! with the most learned entries loses its least recently seen one (the
//! policy of Open vSwitch's `evict_mac_entry_fairly`), so a guest flooding
//! random source MACs mostly evicts its own entries. If nothing learned is
//! left to evict (the table is all static), the MAC is not learned. A
//! per-port limit, when set, refuses new MACs on that port instead (the
//! kernel's `fdb_max_learned`): their frames still flood. Every outcome is
//! counted in [`FdbStats`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::atomic::{
    AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};

use papaya::LocalGuard;
use parking_lot::Mutex;

use super::events::{Event, Events, FdbEvent};
use super::ports::{MAX_PORTS, PortId};
use crate::wire::Mac;

/// Default ageing time, as the Linux bridge: 300 s.
pub const DEFAULT_AGEING_MS: u64 = 300_000;
/// Default capacity, as Open vSwitch: 8192 entries.
pub const DEFAULT_CAPACITY: usize = 8192;

/// (MAC, VLAN) packed into one word: MAC in the high 48 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
struct Key(u64);

impl Key {
    fn new(mac: Mac, vid: u16) -> Key {
        Key((mac.to_u64() << 16) | vid as u64)
    }
    fn mac(self) -> Mac {
        Mac::from_u64(self.0 >> 16)
    }
    fn vid(self) -> u16 {
        self.0 as u16
    }
}

/// The map as the learn-locked helpers see it (pinned with any guard).
type MapRef<'a, G> = papaya::HashMapRef<'a, Key, Entry, foldhash::fast::RandomState, G>;

struct Entry {
    port: AtomicU16,
    seen: AtomicU64,
    /// The time this entry is queued at in its port's ageing order (written
    /// only under the learn lock; atomic only to be shareable).
    queued: AtomicU64,
    is_static: bool,
    /// Installed by the EVPN agent (with `is_static`).
    evpn: bool,
}

impl Entry {
    /// A learned entry: `port`, seen (and queued for ageing) at `now`.
    fn learned(port: PortId, now: u64) -> Entry {
        Entry {
            port: AtomicU16::new(port),
            seen: AtomicU64::new(now),
            queued: AtomicU64::new(now),
            is_static: false,
            evpn: false,
        }
    }

    /// `seen`, or "never ages" for a static entry (a cache slot's `seen`).
    fn seen_or_max(&self) -> u64 {
        if self.is_static {
            u64::MAX
        } else {
            self.seen.load(Relaxed)
        }
    }
}

/// What learning a source did (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Learning is off on the port, or the frame is not learnable.
    Skipped,
    /// The MAC was already known on this port; its time was refreshed.
    Refreshed,
    /// A new entry was added.
    Learned,
    /// A new entry was added after evicting another (table full).
    LearnedEvicting,
    /// The MAC moved here from another port.
    Moved,
    /// Not learned: a static entry owns the MAC, the port is at its MAC
    /// limit, or the table is full of static entries.
    Refused,
}

/// Cumulative FDB event counts.
#[derive(Default, Debug)]
pub struct FdbStats {
    pub learned: AtomicU64,
    pub moved: AtomicU64,
    pub aged: AtomicU64,
    pub evicted: AtomicU64,
    pub refused: AtomicU64,
}

/// Lookups and learning under one epoch guard: its own ([`Fdb::reader`]),
/// or an [`FdbCache`]'s, answering from the cache where it can
/// ([`FdbCache::reader`]).
pub struct FdbReader<'a> {
    fdb: &'a Fdb,
    guard: ReaderGuard<'a>,
    slots: Option<&'a Slots>,
}

/// A reader's guard: its own, or one kept by an [`FdbCache`].
enum ReaderGuard<'a> {
    Own(LocalGuard<'a>),
    Kept(&'a LocalGuard<'a>),
}

impl<'a> ReaderGuard<'a> {
    #[inline]
    fn get(&self) -> &LocalGuard<'a> {
        match self {
            ReaderGuard::Own(g) => g,
            ReaderGuard::Kept(g) => g,
        }
    }
}

/// What a thread that reads the FDB again and again (a dataplane worker)
/// keeps between readers: an epoch guard and the answers it has seen. See
/// "The worker's cache and the generation" in the module documentation.
/// It belongs to the thread that made it.
pub struct FdbCache<'a> {
    fdb: &'a Fdb,
    guard: LocalGuard<'a>,
    slots: Slots,
}

/// Slots in an [`FdbCache`] (a power of two).
const CACHE_SLOTS: usize = 128;

/// An [`FdbCache`]'s answers and its put-off refreshes.
struct Slots {
    slots: Box<[Cell<Slot>; CACHE_SLOTS]>,
    /// Sources seen at a later millisecond than their slot says: their
    /// entry's `seen` moves at [`FdbCache::refresh`].
    pending: RefCell<Vec<Refresh>>,
}

/// A put-off refresh: `key` was seen on `port` at `now`.
struct Refresh {
    key: Key,
    port: PortId,
    now: u64,
}

/// "`key` is on `port`, seen at `seen` or later", while the generation is
/// `generation`.
#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    generation: u64,
    port: PortId,
    /// `u64::MAX` for a static entry (never ages).
    seen: u64,
}

impl Slots {
    fn new() -> Slots {
        let empty = Slot {
            key: Key(0),
            // Generations start at 0 and only grow: matches nothing.
            generation: u64::MAX,
            port: 0,
            seen: 0,
        };
        Slots {
            slots: Box::new(std::array::from_fn(|_| Cell::new(empty))),
            pending: RefCell::new(Vec::new()),
        }
    }

    #[inline]
    fn slot(&self, key: Key) -> &Cell<Slot> {
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57;
        &self.slots[h as usize & (CACHE_SLOTS - 1)]
    }

    /// What this cache knows of `key` for `generation`, if it has not aged
    /// by `now`.
    #[inline]
    fn get(&self, fdb: &Fdb, key: Key, generation: u64, now: u64) -> Option<Slot> {
        let s = self.slot(key).get();
        (s.key == key && s.generation == generation && !fdb.aged(s.seen, now)).then_some(s)
    }

    #[inline]
    fn put(&self, key: Key, generation: u64, port: PortId, seen: u64) {
        self.slot(key).set(Slot {
            key,
            generation,
            port,
            seen,
        });
    }
}

impl<'a> FdbCache<'a> {
    /// A reader that answers from this cache where it can and fills it.
    pub fn reader(&self) -> FdbReader<'_> {
        FdbReader {
            fdb: self.fdb,
            guard: ReaderGuard::Kept(&self.guard),
            slots: Some(&self.slots),
        }
    }

    /// Carries out the refreshes put off since the last call (each moves
    /// the `seen` of the entry only if it is still on the same port), then
    /// lets the FDB free what was removed from it since the guard was taken
    /// or last refreshed. Call it between readers: after each pass, and at
    /// least every few hundred milliseconds.
    pub fn refresh(&mut self) {
        let pending = self.slots.pending.get_mut();
        for p in pending.drain(..) {
            if let Some(e) = self.fdb.map.get(&p.key, &self.guard)
                && !e.is_static
                && e.port.load(Relaxed) == p.port
            {
                e.seen.fetch_max(p.now, Relaxed);
            }
        }
        papaya::Guard::refresh(&mut self.guard);
    }
}

impl FdbReader<'_> {
    /// The table's generation, if this reader has a cache to check it
    /// against.
    #[inline]
    fn generation(&self) -> u64 {
        match self.slots {
            Some(_) => self.fdb.generation(),
            None => 0,
        }
    }

    /// See [`Fdb::lookup`].
    #[inline]
    pub fn lookup(&self, mac: Mac, vid: u16, now: u64) -> Option<PortId> {
        let key = Key::new(mac, vid);
        // Read before the map: a change after it moves the generation past
        // what the slot filled below records.
        let generation = self.generation();
        if let Some(c) = self.slots
            && let Some(s) = c.get(self.fdb, key, generation, now)
        {
            return Some(s.port);
        }
        let e = self
            .fdb
            .map
            .get(&key, self.guard.get())
            .filter(|e| !self.fdb.expired(e, now))?;
        let port = e.port.load(Relaxed);
        if let Some(c) = self.slots {
            c.put(key, generation, port, e.seen_or_max());
        }
        Some(port)
    }

    /// See [`Fdb::learn`].
    #[inline]
    pub fn learn(
        &self,
        mac: Mac,
        vid: u16,
        port: PortId,
        now: u64,
        port_limit: Option<usize>,
    ) -> Learn {
        let key = Key::new(mac, vid);
        let generation = self.generation();
        if let Some(c) = self.slots
            && let Some(s) = c.get(self.fdb, key, generation, now)
            && s.port == port
        {
            if s.seen < now {
                // Known here: the entry's `seen` moves at the refresh.
                c.pending.borrow_mut().push(Refresh { key, port, now });
                c.put(key, generation, port, now);
            }
            return Learn::Refreshed;
        }
        if let Some(e) = self.fdb.map.get(&key, self.guard.get()) {
            let here = e.port.load(Relaxed) == port;
            if e.is_static && !here {
                if !e.evpn {
                    self.fdb.stats.refused.fetch_add(1, Relaxed);
                    return Learn::Refused;
                }
                // An EVPN entry is taken over by the locked path.
            } else if e.is_static || (here && !self.fdb.expired(e, now)) {
                if !e.is_static && e.seen.load(Relaxed) < now {
                    e.seen.fetch_max(now, Relaxed);
                }
                if let Some(c) = self.slots {
                    c.put(key, generation, port, e.seen_or_max());
                }
                return Learn::Refreshed;
            }
        }
        self.fdb.learn_slow(key, port, now, port_limit)
    }
}

impl FdbReader<'_> {
    /// The live entry of `mac` in `vid` (for `trace`: reads the map, not
    /// the cache, and changes nothing).
    pub fn entry(&self, mac: Mac, vid: u16, now: u64) -> Option<EntryInfo> {
        let e = self
            .fdb
            .map
            .get(&Key::new(mac, vid), self.guard.get())
            .filter(|e| !self.fdb.expired(e, now))?;
        Some(EntryInfo::of(Key::new(mac, vid), e, now))
    }

    /// What [`FdbReader::learn`] would do with these arguments at `now`,
    /// changing nothing (for `trace`). Where learning would sweep aged
    /// entries first (the table full, or the port at its limit), the
    /// prediction counts the entries that sweep would remove: it walks
    /// the whole map, which is fine for a trace and never done per frame.
    pub fn predict(
        &self,
        mac: Mac,
        vid: u16,
        port: PortId,
        now: u64,
        port_limit: Option<usize>,
    ) -> Prediction {
        let fdb = self.fdb;
        let key = Key::new(mac, vid);
        let learn = |learn| Prediction {
            learn,
            evicts: None,
        };
        let guard = self.guard.get();
        let entry = fdb.map.get(&key, guard);
        // The lock-free paths of `learn`.
        if let Some(e) = entry {
            let here = e.port.load(Relaxed) == port;
            if e.is_static && !here {
                if !e.evpn {
                    return learn(Learn::Refused);
                }
            } else if e.is_static || (here && !fdb.expired(e, now)) {
                return learn(Learn::Refreshed);
            }
        }
        if fdb.at_limit(port, port_limit) && now < fdb.sweep_due.load(Relaxed) {
            return learn(Learn::Refused);
        }
        // `learn_slow`, after the sweep it would run.
        let mut len = fdb.len();
        let mut learned_here = fdb.learned_on(port);
        let mut learned_all: usize = fdb.learned.iter().map(|n| n.load(Relaxed) as usize).sum();
        let mut entry = entry;
        if len >= fdb.capacity() || fdb.at_limit(port, port_limit) {
            for (k, e) in fdb.map.iter(guard) {
                if fdb.expired(e, now) {
                    len = len.saturating_sub(1);
                    learned_all = learned_all.saturating_sub(1);
                    if e.port.load(Relaxed) == port {
                        learned_here = learned_here.saturating_sub(1);
                    }
                    if *k == key {
                        entry = None;
                    }
                }
            }
        }
        let at_limit = port_limit.is_some_and(|l| learned_here >= l);
        match entry {
            // An EVPN entry elsewhere: the MAC moved here from a remote VTEP.
            Some(e) if e.evpn && e.port.load(Relaxed) != port && at_limit => learn(Learn::Refused),
            Some(e) if e.evpn && e.port.load(Relaxed) != port => learn(Learn::Moved),
            Some(e) if e.is_static => learn(Learn::Refused),
            Some(e) if e.port.load(Relaxed) == port => learn(Learn::Refreshed),
            Some(_) if at_limit => learn(Learn::Refused),
            Some(_) => learn(Learn::Moved),
            None if at_limit => learn(Learn::Refused),
            None if len >= fdb.capacity() && learned_all == 0 => learn(Learn::Refused),
            None if len >= fdb.capacity() => Prediction {
                learn: Learn::LearnedEvicting,
                evicts: self.victim(now).map(|k| (k.mac(), k.vid())),
            },
            None => learn(Learn::Learned),
        }
    }

    /// The entry an eviction at `now` would remove (after the sweep that
    /// comes first): the least recently seen of the port with the most
    /// live learned entries, the lowest port id among equals.
    fn victim(&self, now: u64) -> Option<Key> {
        let fdb = self.fdb;
        let live = || {
            fdb.map
                .iter(self.guard.get())
                .filter(|(_, e)| !e.is_static && !fdb.expired(e, now))
        };
        let mut counts = vec![0usize; MAX_PORTS];
        for (_, e) in live() {
            counts[e.port.load(Relaxed) as usize] += 1;
        }
        let port = (0..MAX_PORTS)
            .filter(|&p| counts[p] > 0)
            .max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a)))?;
        live()
            .filter(|(_, e)| e.port.load(Relaxed) as usize == port)
            .map(|(k, e)| (e.seen.load(Relaxed), *k))
            .min()
            .map(|(_, k)| k)
    }
}

/// What learning a source would do ([`FdbReader::predict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    pub learn: Learn,
    /// The (MAC, VLAN) an eviction would remove to make room.
    pub evicts: Option<(Mac, u16)>,
}

/// A snapshot of one entry, for the control plane.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    pub mac: Mac,
    pub vlan: u16,
    pub port: PortId,
    pub is_static: bool,
    /// Installed by the EVPN agent (also `is_static`).
    pub evpn: bool,
    /// Milliseconds since the MAC was last seen (0 for static entries).
    pub age_ms: u64,
}

impl EntryInfo {
    /// The snapshot of entry `e` of `key` at `now`.
    fn of(key: Key, e: &Entry, now: u64) -> EntryInfo {
        EntryInfo {
            mac: key.mac(),
            vlan: key.vid(),
            port: e.port.load(Relaxed),
            is_static: e.is_static,
            evpn: e.evpn,
            age_ms: if e.is_static {
                0
            } else {
                now.saturating_sub(e.seen.load(Relaxed))
            },
        }
    }
}

/// Which entries a flush removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flush {
    pub port: Option<PortId>,
    pub vlan: Option<u16>,
    /// Also remove static entries.
    pub include_static: bool,
}

/// What the learn lock guards: each port's learned entries by (queued
/// time, key), its ageing order.
struct LearnState {
    queues: Vec<BTreeSet<(u64, Key)>>,
}

/// The forwarding database. See the module documentation.
pub struct Fdb {
    map: papaya::HashMap<Key, Entry, foldhash::fast::RandomState>,
    learn: Mutex<LearnState>,
    /// Each port's learned entries: its queue's length, stored under the
    /// learn lock after every change of the queue.
    learned: Box<[AtomicU32]>,
    /// No learned entry can age before this time: a lower bound of every
    /// queued time plus the ageing time, written under the learn lock.
    sweep_due: AtomicU64,
    len: AtomicUsize,
    capacity: AtomicUsize,
    ageing_ms: AtomicU64,
    /// Moves after every change that can make a cache slot wrong (a move or
    /// a removal); see the module documentation.
    generation: AtomicU64,
    stats: FdbStats,
    /// `vswitchctl monitor`'s watchers (see [`super::events`]).
    events: Events,
}

impl Fdb {
    pub fn new(capacity: usize, ageing_ms: u64) -> Fdb {
        Fdb {
            map: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .capacity(capacity.min(1 << 20))
                .build(),
            learn: Mutex::new(LearnState {
                queues: (0..MAX_PORTS).map(|_| BTreeSet::new()).collect(),
            }),
            learned: (0..MAX_PORTS).map(|_| AtomicU32::new(0)).collect(),
            sweep_due: AtomicU64::new(u64::MAX),
            len: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity.max(1)),
            ageing_ms: AtomicU64::new(ageing_ms),
            generation: AtomicU64::new(0),
            stats: FdbStats::default(),
            events: Events::default(),
        }
    }

    /// The switch's event watchers (FDB and port changes).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Tells the watchers about `key` on `port`.
    fn emit(&self, event: FdbEvent, key: Key, port: PortId, from: Option<PortId>) {
        self.events.emit(|| Event::Fdb {
            event,
            mac: key.mac(),
            vlan: key.vid(),
            port,
            from,
        });
    }

    pub fn stats(&self) -> &FdbStats {
        &self.stats
    }

    /// Number of entries, static ones included.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// Changes the capacity; when shrinking, entries are evicted fairly.
    pub fn set_capacity(&self, capacity: usize) {
        let capacity = capacity.max(1);
        let mut st = self.learn.lock();
        self.capacity.store(capacity, Relaxed);
        let map = self.map.pin();
        while self.len() > capacity && self.evict_one(&mut st, &map) {}
    }

    pub fn ageing_ms(&self) -> u64 {
        self.ageing_ms.load(Relaxed)
    }

    /// Changes the ageing time. Cache slots need no invalidation (they are
    /// judged with the current ageing time); `sweep_due` is recomputed.
    pub fn set_ageing_ms(&self, ms: u64) {
        let st = self.learn.lock();
        self.ageing_ms.store(ms, Relaxed);
        self.set_sweep_due(&st);
    }

    /// See the module documentation: the count of changes that can make a
    /// cache slot wrong.
    #[inline]
    fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// Makes every cache slot filled before stale (after the change).
    fn changed(&self) {
        self.generation.fetch_add(1, Release);
    }

    fn expired(&self, e: &Entry, now: u64) -> bool {
        !e.is_static && self.aged(e.seen.load(Relaxed), now)
    }

    /// Whether an entry last seen at `seen` has aged by `now`.
    #[inline]
    fn aged(&self, seen: u64, now: u64) -> bool {
        now.saturating_sub(seen) >= self.ageing_ms()
    }

    /// The port `mac` in `vid` was last seen on, if it has not aged out.
    /// Lock-free.
    pub fn lookup(&self, mac: Mac, vid: u16, now: u64) -> Option<PortId> {
        self.reader().lookup(mac, vid, now)
    }

    /// Learns that `mac` in `vid` was seen on `port` at `now`. Lock-free
    /// when the MAC is already known on that port, and when `port` is at
    /// `port_limit` with nothing aged.
    pub fn learn(
        &self,
        mac: Mac,
        vid: u16,
        port: PortId,
        now: u64,
        port_limit: Option<usize>,
    ) -> Learn {
        self.reader().learn(mac, vid, port, now, port_limit)
    }

    /// A reader with its own epoch guard and no cache, for a few
    /// operations.
    pub fn reader(&self) -> FdbReader<'_> {
        FdbReader {
            fdb: self,
            guard: ReaderGuard::Own(self.map.guard()),
            slots: None,
        }
    }

    /// A cache for a thread that reads the table again and again (see
    /// [`FdbCache`]).
    pub fn cache(&self) -> FdbCache<'_> {
        FdbCache {
            fdb: self,
            guard: self.map.guard(),
            slots: Slots::new(),
        }
    }

    /// Stores `port`'s learned count where readers see it (under the lock).
    fn recount(&self, st: &LearnState, port: usize) {
        self.learned[port].store(st.queues[port].len() as u32, Relaxed);
    }

    /// Whether `port` has learned as many MACs as `limit` allows.
    #[inline]
    fn at_limit(&self, port: PortId, limit: Option<usize>) -> bool {
        limit.is_some_and(|l| self.learned[port as usize].load(Relaxed) as usize >= l)
    }

    /// Recomputes `sweep_due` from the queues' fronts (under the lock).
    fn set_sweep_due(&self, st: &LearnState) {
        let ageing = self.ageing_ms();
        let due = st
            .queues
            .iter()
            .filter_map(|q| q.first())
            .map(|&(q, _)| q.saturating_add(ageing))
            .min()
            .unwrap_or(u64::MAX);
        self.sweep_due.store(due, Relaxed);
    }

    /// Puts `key` at the back of `port`'s ageing order at `now` (under the
    /// lock).
    fn enqueue(&self, st: &mut LearnState, port: PortId, key: Key, now: u64) {
        st.queues[port as usize].insert((now, key));
        self.recount(st, port as usize);
        self.sweep_due
            .fetch_min(now.saturating_add(self.ageing_ms()), Relaxed);
    }

    /// Takes `key`, queued at `queued`, out of `port`'s ageing order (under
    /// the lock).
    fn dequeue(&self, st: &mut LearnState, port: PortId, key: Key, queued: u64) {
        st.queues[port as usize].remove(&(queued, key));
        self.recount(st, port as usize);
    }

    fn learn_slow(&self, key: Key, port: PortId, now: u64, port_limit: Option<usize>) -> Learn {
        // The locked path would sweep first, free nothing and refuse.
        if self.at_limit(port, port_limit) && now < self.sweep_due.load(Relaxed) {
            self.stats.refused.fetch_add(1, Relaxed);
            return Learn::Refused;
        }
        let mut st = self.learn.lock();
        let map = self.map.pin();
        // At a limit, aged entries not swept yet must not take the place of
        // live ones: sweep first.
        if self.len() >= self.capacity() || self.at_limit(port, port_limit) {
            self.expire_locked(&mut st, &map, now);
        }
        if let Some(e) = map.get(&key) {
            if e.is_static && !(e.evpn && e.port.load(Relaxed) != port) {
                self.stats.refused.fetch_add(1, Relaxed);
                return Learn::Refused;
            }
            if e.is_static {
                // An EVPN entry: the MAC moved here from a remote VTEP.
                if self.at_limit(port, port_limit) {
                    self.stats.refused.fetch_add(1, Relaxed);
                    return Learn::Refused;
                }
                let from = e.port.load(Relaxed);
                map.insert(key, Entry::learned(port, now));
                self.enqueue(&mut st, port, key, now);
                self.changed();
                self.stats.moved.fetch_add(1, Relaxed);
                self.emit(FdbEvent::Moved, key, port, Some(from));
                return Learn::Moved;
            }
            let old = e.port.load(Relaxed);
            if old == port {
                // Another reader learned it first, or it had aged but was
                // not swept yet: it stays, refreshed.
                e.seen.fetch_max(now, Relaxed);
                return Learn::Refreshed;
            }
            if self.at_limit(port, port_limit) {
                self.stats.refused.fetch_add(1, Relaxed);
                return Learn::Refused;
            }
            e.seen.fetch_max(now, Relaxed);
            self.dequeue(&mut st, old, key, e.queued.load(Relaxed));
            self.enqueue(&mut st, port, key, now);
            e.queued.store(now, Relaxed);
            e.port.store(port, Relaxed);
            self.changed();
            self.stats.moved.fetch_add(1, Relaxed);
            self.emit(FdbEvent::Moved, key, port, Some(old));
            return Learn::Moved;
        }
        if self.at_limit(port, port_limit) {
            self.stats.refused.fetch_add(1, Relaxed);
            return Learn::Refused;
        }
        let mut outcome = Learn::Learned;
        if self.len() >= self.capacity() {
            if !self.evict_one(&mut st, &map) {
                self.stats.refused.fetch_add(1, Relaxed);
                return Learn::Refused;
            }
            outcome = Learn::LearnedEvicting;
        }
        map.insert(key, Entry::learned(port, now));
        self.enqueue(&mut st, port, key, now);
        self.len.fetch_add(1, Relaxed);
        self.stats.learned.fetch_add(1, Relaxed);
        self.emit(FdbEvent::Learned, key, port, None);
        outcome
    }

    /// Removes the least recently seen entry of the port with the most
    /// learned entries. False if no learned entry exists.
    fn evict_one<G: papaya::Guard>(&self, st: &mut LearnState, map: &MapRef<'_, G>) -> bool {
        let Some((port, _)) = st
            .queues
            .iter()
            .enumerate()
            .filter(|(_, q)| !q.is_empty())
            .max_by(|(ia, a), (ib, b)| a.len().cmp(&b.len()).then(ib.cmp(ia)))
        else {
            return false;
        };
        let queue = &mut st.queues[port];
        let mut evicted = false;
        while let Some((q, key)) = queue.pop_first() {
            let Some(e) = map.get(&key) else { continue };
            let seen = e.seen.load(Relaxed);
            if seen > q {
                queue.insert((seen, key));
                e.queued.store(seen, Relaxed);
                continue;
            }
            map.remove(&key);
            self.emit(FdbEvent::Evicted, key, port as PortId, None);
            evicted = true;
            break;
        }
        self.recount(st, port);
        if evicted {
            self.changed();
            self.len.fetch_sub(1, Relaxed);
            self.stats.evicted.fetch_add(1, Relaxed);
        }
        evicted
    }

    /// Removes learned entries not seen for the ageing time. Returns how many.
    pub fn expire(&self, now: u64) -> usize {
        let mut st = self.learn.lock();
        let map = self.map.pin();
        self.expire_locked(&mut st, &map, now)
    }

    fn expire_locked<G: papaya::Guard>(
        &self,
        st: &mut LearnState,
        map: &MapRef<'_, G>,
        now: u64,
    ) -> usize {
        let ageing = self.ageing_ms();
        let mut aged = 0;
        for port in 0..st.queues.len() {
            let queue = &mut st.queues[port];
            let before = aged;
            while let Some(&(q, key)) = queue.first() {
                if now.saturating_sub(q) < ageing {
                    break;
                }
                queue.pop_first();
                let Some(e) = map.get(&key) else { continue };
                let seen = e.seen.load(Relaxed);
                if now.saturating_sub(seen) >= ageing {
                    map.remove(&key);
                    self.emit(FdbEvent::Aged, key, port as PortId, None);
                    aged += 1;
                } else {
                    queue.insert((seen, key));
                    e.queued.store(seen, Relaxed);
                }
            }
            if aged > before {
                self.recount(st, port);
            }
        }
        if aged > 0 {
            self.changed();
        }
        self.set_sweep_due(st);
        self.len.fetch_sub(aged, Relaxed);
        self.stats.aged.fetch_add(aged as u64, Relaxed);
        aged
    }

    /// Adds or replaces a static entry. Returns false if the table is full
    /// and nothing learned can be evicted.
    pub fn add_static(&self, mac: Mac, vid: u16, port: PortId) -> bool {
        self.add_fixed(mac, vid, port, false)
    }

    /// Adds or replaces an EVPN entry (see the module documentation): a
    /// learned entry is replaced, an operator's static entry is left
    /// alone. Returns false if it was not added (a static entry holds the
    /// MAC, or the table is full of static entries).
    pub fn add_evpn(&self, mac: Mac, vid: u16, port: PortId) -> bool {
        {
            let map = self.map.pin();
            if let Some(e) = map.get(&Key::new(mac, vid)) {
                if e.is_static && !e.evpn {
                    return false;
                }
                if e.evpn && e.port.load(Relaxed) == port {
                    return true;
                }
            }
        }
        self.add_fixed(mac, vid, port, true)
    }

    /// Removes an EVPN entry (only: a learned or static entry for the
    /// MAC stays). True if there was one.
    pub fn remove_evpn(&self, mac: Mac, vid: u16) -> bool {
        let key = Key::new(mac, vid);
        let mut st = self.learn.lock();
        let map = self.map.pin();
        if !map.get(&key).is_some_and(|e| e.evpn) {
            return false;
        }
        self.remove_locked(&mut st, &map, key, FdbEvent::Deleted)
    }

    fn add_fixed(&self, mac: Mac, vid: u16, port: PortId, evpn: bool) -> bool {
        let key = Key::new(mac, vid);
        let mut st = self.learn.lock();
        let map = self.map.pin();
        let replaced = match map.get(&key) {
            Some(e) if !e.is_static => {
                self.dequeue(&mut st, e.port.load(Relaxed), key, e.queued.load(Relaxed));
                true
            }
            Some(_) => true,
            None => {
                if self.len() >= self.capacity() && !self.evict_one(&mut st, &map) {
                    return false;
                }
                self.len.fetch_add(1, Relaxed);
                false
            }
        };
        map.insert(
            key,
            Entry {
                port: AtomicU16::new(port),
                seen: AtomicU64::new(0),
                queued: AtomicU64::new(0),
                is_static: true,
                evpn,
            },
        );
        if replaced {
            self.changed();
        }
        self.emit(FdbEvent::Added, key, port, None);
        true
    }

    /// Removes one entry (static or learned). True if it existed.
    pub fn remove(&self, mac: Mac, vid: u16) -> bool {
        let key = Key::new(mac, vid);
        let mut st = self.learn.lock();
        let map = self.map.pin();
        self.remove_locked(&mut st, &map, key, FdbEvent::Deleted)
    }

    fn remove_locked<G: papaya::Guard>(
        &self,
        st: &mut LearnState,
        map: &MapRef<'_, G>,
        key: Key,
        why: FdbEvent,
    ) -> bool {
        let Some(e) = map.remove(&key) else {
            return false;
        };
        self.changed();
        self.emit(why, key, e.port.load(Relaxed), None);
        if !e.is_static {
            self.dequeue(st, e.port.load(Relaxed), key, e.queued.load(Relaxed));
        }
        self.len.fetch_sub(1, Relaxed);
        true
    }

    /// Removes the entries `f` selects. Returns how many.
    pub fn flush(&self, f: Flush) -> usize {
        let mut st = self.learn.lock();
        let map = self.map.pin();
        let doomed: Vec<Key> = map
            .iter()
            .filter(|(k, e)| {
                (f.include_static || !e.is_static)
                    && f.port.is_none_or(|p| e.port.load(Relaxed) == p)
                    && f.vlan.is_none_or(|v| k.vid() == v)
            })
            .map(|(k, _)| *k)
            .collect();
        doomed
            .into_iter()
            .filter(|k| self.remove_locked(&mut st, &map, *k, FdbEvent::Flushed))
            .count()
    }

    /// Number of learned (non-static) entries on `port`.
    pub fn learned_on(&self, port: PortId) -> usize {
        self.learned[port as usize].load(Relaxed) as usize
    }

    /// A snapshot of all live entries, sorted by VLAN then MAC.
    pub fn entries(&self, now: u64) -> Vec<EntryInfo> {
        let map = self.map.pin();
        let mut v: Vec<EntryInfo> = map
            .iter()
            .filter(|(_, e)| !self.expired(e, now))
            .map(|(k, e)| EntryInfo::of(*k, e, now))
            .collect();
        v.sort_by_key(|e| (e.vlan, e.mac));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    /// The age of `m`'s entry at `now`, if it is there.
    fn age(fdb: &Fdb, m: Mac, now: u64) -> Option<u64> {
        fdb.entries(now)
            .iter()
            .find(|e| e.mac == m)
            .map(|e| e.age_ms)
    }

    #[test]
    fn a_cached_reader_follows_moves_removals_and_ageing() {
        let fdb = Fdb::new(16, 1000);
        let mut cache = fdb.cache();
        assert_eq!(fdb.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        let r = cache.reader();
        assert_eq!(r.lookup(mac(1), 1, 10), Some(0));
        assert_eq!(r.lookup(mac(1), 1, 11), Some(0), "from the cache");
        drop(r);
        cache.refresh();
        // Another reader moves it: the generation moves, the slot is stale.
        assert_eq!(fdb.learn(mac(1), 1, 1, 20, None), Learn::Moved);
        let r = cache.reader();
        assert_eq!(r.lookup(mac(1), 1, 30), Some(1));
        assert_eq!(r.lookup(mac(1), 1, 31), Some(1));
        // Aged by the slot's own time, before any sweep.
        assert_eq!(r.lookup(mac(1), 1, 1020), None);
        assert_eq!(r.lookup(mac(1), 1, 1019), Some(1));
        // Judged with the current ageing time, which moves no generation.
        fdb.set_ageing_ms(500);
        assert_eq!(r.lookup(mac(1), 1, 520), None);
        fdb.set_ageing_ms(1000);
        assert_eq!(r.lookup(mac(1), 1, 520), Some(1));
        drop(r);
        assert!(fdb.remove(mac(1), 1));
        let r = cache.reader();
        assert_eq!(r.lookup(mac(1), 1, 40), None);
    }

    #[test]
    fn learning_through_the_cache_moves_seen_at_the_refresh() {
        let fdb = Fdb::new(16, 1000);
        let mut cache = fdb.cache();
        assert_eq!(fdb.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        let r = cache.reader();
        // Not cached yet: refreshed in the table at once (and cached).
        assert_eq!(r.learn(mac(1), 1, 0, 500, None), Learn::Refreshed);
        assert_eq!(age(&fdb, mac(1), 500), Some(0));
        // Cached: put off.
        assert_eq!(r.learn(mac(1), 1, 0, 900, None), Learn::Refreshed);
        assert_eq!(r.learn(mac(1), 1, 0, 900, None), Learn::Refreshed);
        assert_eq!(age(&fdb, mac(1), 900), Some(400));
        drop(r);
        cache.refresh();
        assert_eq!(age(&fdb, mac(1), 900), Some(0));
        // Alive by the refreshed time, for every reader.
        assert_eq!(fdb.lookup(mac(1), 1, 1800), Some(0));
        // A source on another port than the cache says is a move, at once.
        let r = cache.reader();
        assert_eq!(r.learn(mac(1), 1, 2, 1000, None), Learn::Moved);
        assert_eq!(fdb.lookup(mac(1), 1, 1000), Some(2));
    }

    /// A put-off refresh only moves `seen` of the entry still on its port:
    /// it neither brings back a flushed MAC nor moves back a moved one.
    #[test]
    fn a_refresh_put_off_leaves_what_changed_in_between() {
        let fdb = Fdb::new(16, 1000);
        let mut cache = fdb.cache();
        for m in [1, 2, 3] {
            assert_eq!(fdb.learn(mac(m), 1, 0, 0, None), Learn::Learned);
        }
        let r = cache.reader();
        for m in [1, 2, 3] {
            assert_eq!(r.lookup(mac(m), 1, 1), Some(0));
            assert_eq!(r.learn(mac(m), 1, 0, 5, None), Learn::Refreshed);
        }
        drop(r);
        // While the pass's refreshes wait: mac 1 is flushed with its port,
        // mac 2 moves away, mac 3 is left alone.
        assert!(fdb.remove(mac(1), 1));
        assert_eq!(fdb.learn(mac(2), 1, 1, 3, None), Learn::Moved);
        cache.refresh();
        assert_eq!(fdb.lookup(mac(1), 1, 6), None, "not brought back");
        assert_eq!(fdb.lookup(mac(2), 1, 6), Some(1), "not moved back");
        assert_eq!(age(&fdb, mac(2), 6), Some(3));
        assert_eq!(age(&fdb, mac(3), 6), Some(1), "refreshed");
        assert_eq!(fdb.stats().learned.load(Relaxed), 3);
    }

    #[test]
    fn a_cached_static_entry_never_ages_and_is_not_moved() {
        let fdb = Fdb::new(16, 1000);
        let mut cache = fdb.cache();
        assert!(fdb.add_static(mac(1), 1, 2));
        let r = cache.reader();
        assert_eq!(r.lookup(mac(1), 1, 0), Some(2));
        assert_eq!(r.lookup(mac(1), 1, 1_000_000), Some(2));
        assert_eq!(r.learn(mac(1), 1, 2, 1_000_001, None), Learn::Refreshed);
        assert_eq!(r.learn(mac(1), 1, 0, 1_000_002, None), Learn::Refused);
        assert_eq!(r.lookup(mac(1), 1, 1_000_003), Some(2));
        drop(r);
        cache.refresh();
        assert_eq!(fdb.lookup(mac(1), 1, 1_000_004), Some(2));
        assert_eq!(fdb.stats().refused.load(Relaxed), 1);
    }

    /// Refreshes and refusals, inserts and a new ageing time leave every
    /// cache slot valid; moves, removals and static replacements do not.
    #[test]
    fn only_moves_and_removals_move_the_generation() {
        let f = Fdb::new(16, 1000);
        let g = f.generation();
        assert_eq!(f.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        assert!(f.add_static(mac(2), 1, 3));
        assert_eq!(f.learn(mac(1), 1, 0, 5, None), Learn::Refreshed);
        assert_eq!(f.learn(mac(2), 1, 0, 6, None), Learn::Refused, "static");
        assert_eq!(f.learn(mac(3), 1, 0, 7, Some(1)), Learn::Refused, "limit");
        // Aged but not swept: learned again on its port, the slow way.
        assert_eq!(f.learn(mac(1), 1, 0, 2000, None), Learn::Refreshed);
        f.set_ageing_ms(500);
        f.set_ageing_ms(1000);
        assert_eq!(f.expire(2001), 0);
        assert_eq!(f.generation(), g);
        assert_eq!(f.flush(Flush::default()), 1, "mac 1");
        assert_ne!(f.generation(), g, "a flush removes");
        let mut last = f.generation();
        let mut moved = |what: &str| {
            assert!(f.generation() > last, "{what}");
            last = f.generation();
        };
        assert_eq!(f.learn(mac(1), 1, 0, 2001, None), Learn::Learned);
        assert_eq!(f.learn(mac(1), 1, 1, 2002, None), Learn::Moved);
        moved("move");
        assert!(f.add_static(mac(1), 1, 2));
        moved("static replacing learned");
        assert!(f.add_static(mac(2), 1, 2));
        moved("static replacing static");
        assert!(f.remove(mac(1), 1));
        moved("remove");
        assert_eq!(f.learn(mac(4), 1, 0, 2003, None), Learn::Learned);
        assert_eq!(f.expire(5000), 1);
        moved("ageing");
        f.set_capacity(2);
        assert_eq!(f.learn(mac(5), 1, 0, 5001, None), Learn::Learned);
        assert_eq!(f.learn(mac(6), 1, 0, 5002, None), Learn::LearnedEvicting);
        moved("eviction");
    }

    /// A port at its MAC limit fed new sources refuses them without the
    /// learn lock while nothing can have aged, counting each; once an
    /// entry can have aged the locked path sweeps and learns.
    #[test]
    fn mac_limit_refusals_take_no_lock_until_something_can_age() {
        let f = Fdb::new(16, 1000);
        assert_eq!(f.learn(mac(1), 1, 0, 0, Some(2)), Learn::Learned);
        assert_eq!(f.learn(mac(2), 1, 0, 100, Some(2)), Learn::Learned);
        assert_eq!(f.learn(mac(9), 1, 1, 100, None), Learn::Learned);
        let refusals = std::thread::scope(|s| {
            let held = f.learn.lock();
            let (tx, rx) = std::sync::mpsc::channel();
            let f = &f;
            s.spawn(move || {
                let mut outcomes = Vec::new();
                for m in 10..20 {
                    outcomes.push(f.learn(mac(m), 1, 0, 500 + m as u64, Some(2)));
                }
                // A move onto the full port is refused the same way.
                outcomes.push(f.learn(mac(9), 1, 0, 600, Some(2)));
                tx.send(outcomes).unwrap();
            });
            let got = rx.recv_timeout(std::time::Duration::from_secs(10));
            drop(held);
            got.expect("a refusal at the limit waited for the learn lock")
        });
        assert!(
            refusals.iter().all(|&r| r == Learn::Refused),
            "{refusals:?}"
        );
        assert_eq!(f.stats().refused.load(Relaxed), 11);
        assert_eq!(f.learned_on(0), 2);
        assert_eq!(f.lookup(mac(9), 1, 600), Some(1));
        // At 1000 mac 1 has aged: swept (counted), and mac 10 takes its place.
        assert_eq!(f.learn(mac(10), 1, 0, 1000, Some(2)), Learn::Learned);
        assert_eq!(f.stats().aged.load(Relaxed), 1);
        assert_eq!(f.learn(mac(11), 1, 0, 1001, Some(2)), Learn::Refused);
        assert_eq!(f.stats().refused.load(Relaxed), 12);
        // A shorter ageing time applies at once: mac 2 (seen at 100) has aged.
        f.set_ageing_ms(500);
        assert_eq!(f.learn(mac(11), 1, 0, 1002, Some(2)), Learn::Learned);
        assert_eq!(f.stats().aged.load(Relaxed), 3, "macs 2 and 9");
    }

    #[test]
    fn learn_lookup_refresh() {
        let f = Fdb::new(16, 1000);
        assert_eq!(f.lookup(mac(1), 1, 0), None);
        assert_eq!(f.learn(mac(1), 1, 3, 0, None), Learn::Learned);
        assert_eq!(f.lookup(mac(1), 1, 10), Some(3));
        assert_eq!(f.lookup(mac(1), 2, 10), None, "keyed by VLAN");
        assert_eq!(f.learn(mac(1), 1, 3, 500, None), Learn::Refreshed);
        assert_eq!(
            f.lookup(mac(1), 1, 1400),
            Some(3),
            "refresh pushed ageing out"
        );
        assert_eq!(f.lookup(mac(1), 1, 1500), None, "aged exactly at 1000 ms");
        assert_eq!(f.stats().learned.load(Relaxed), 1);
    }

    #[test]
    fn ageing_sweep_counts_and_requeues_refreshed() {
        let f = Fdb::new(16, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        f.learn(mac(2), 1, 0, 100, None);
        f.learn(mac(1), 1, 0, 900, None);
        assert_eq!(f.expire(999), 0);
        assert_eq!(f.expire(1100), 1, "mac 2 aged, mac 1 refreshed");
        assert_eq!(f.lookup(mac(1), 1, 1100), Some(0));
        assert_eq!(f.lookup(mac(2), 1, 1100), None);
        assert_eq!(f.expire(1900), 1);
        assert!(f.is_empty());
        assert_eq!(f.stats().aged.load(Relaxed), 2);
    }

    #[test]
    fn move_between_ports() {
        let f = Fdb::new(16, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        assert_eq!(f.learn(mac(1), 1, 1, 5, None), Learn::Moved);
        assert_eq!(f.lookup(mac(1), 1, 5), Some(1));
        assert_eq!(f.learned_on(0), 0);
        assert_eq!(f.learned_on(1), 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f.stats().moved.load(Relaxed), 1);
    }

    #[test]
    fn static_entries_never_age_or_move() {
        let f = Fdb::new(16, 1000);
        assert!(f.add_static(mac(1), 1, 2));
        assert_eq!(f.learn(mac(1), 1, 0, 10, None), Learn::Refused);
        assert_eq!(f.lookup(mac(1), 1, 1_000_000), Some(2));
        assert_eq!(f.expire(1_000_000), 0);
        assert_eq!(f.flush(Flush::default()), 0, "plain flush keeps static");
        assert_eq!(
            f.flush(Flush {
                include_static: true,
                ..Flush::default()
            }),
            1
        );
        assert!(f.is_empty());
    }

    #[test]
    fn static_replaces_learned() {
        let f = Fdb::new(16, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        assert!(f.add_static(mac(1), 1, 4));
        assert_eq!(f.len(), 1);
        assert_eq!(f.learned_on(0), 0);
        assert_eq!(f.lookup(mac(1), 1, 5000), Some(4));
    }

    #[test]
    fn fair_eviction_hits_the_biggest_port_oldest_entry() {
        let f = Fdb::new(4, 100_000);
        f.learn(mac(1), 1, 0, 0, None);
        f.learn(mac(2), 1, 1, 1, None);
        f.learn(mac(3), 1, 1, 2, None);
        f.learn(mac(4), 1, 1, 3, None);
        // mac 2 is refreshed, so mac 3 is port 1's least recently seen.
        f.learn(mac(2), 1, 1, 4, None);
        assert_eq!(f.learn(mac(5), 1, 0, 5, None), Learn::LearnedEvicting);
        assert_eq!(f.len(), 4);
        assert_eq!(f.lookup(mac(3), 1, 5), None);
        for m in [1, 2, 4, 5] {
            assert!(f.lookup(mac(m), 1, 5).is_some(), "mac {m}");
        }
        assert_eq!(f.stats().evicted.load(Relaxed), 1);
    }

    #[test]
    fn aged_entries_go_before_live_ones_are_evicted() {
        let f = Fdb::new(3, 10);
        f.learn(mac(1), 1, 0, 1, None);
        f.learn(mac(2), 1, 1, 20, None);
        f.learn(mac(3), 1, 1, 21, None);
        // mac 1 aged at 11 but was not swept: it goes, not a live entry.
        assert_eq!(f.learn(mac(4), 1, 2, 22, None), Learn::Learned);
        assert_eq!(f.stats().aged.load(Relaxed), 1);
        assert_eq!(f.stats().evicted.load(Relaxed), 0);
        assert!(f.lookup(mac(2), 1, 22).is_some());
    }

    #[test]
    fn static_owner_refusal_is_counted() {
        let f = Fdb::new(16, 1000);
        f.add_static(mac(1), 1, 2);
        assert_eq!(f.learn(mac(1), 1, 0, 10, None), Learn::Refused);
        assert_eq!(f.stats().refused.load(Relaxed), 1);
    }

    #[test]
    fn full_of_static_refuses() {
        let f = Fdb::new(1, 1000);
        assert!(f.add_static(mac(1), 1, 0));
        assert_eq!(f.learn(mac(2), 1, 0, 0, None), Learn::Refused);
        assert!(!f.add_static(mac(3), 1, 0));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn per_port_limit_refuses_new_macs() {
        let f = Fdb::new(16, 1000);
        assert_eq!(f.learn(mac(1), 1, 0, 0, Some(1)), Learn::Learned);
        assert_eq!(f.learn(mac(2), 1, 0, 0, Some(1)), Learn::Refused);
        assert_eq!(f.learn(mac(1), 1, 0, 1, Some(1)), Learn::Refreshed);
        assert_eq!(f.learn(mac(2), 1, 1, 1, Some(1)), Learn::Learned);
        assert_eq!(f.stats().refused.load(Relaxed), 1);
    }

    #[test]
    fn flush_by_port_and_vlan() {
        let f = Fdb::new(16, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        f.learn(mac(2), 2, 0, 0, None);
        f.learn(mac(3), 2, 1, 0, None);
        f.add_static(mac(4), 2, 0);
        let by = |port, vlan| Flush {
            port,
            vlan,
            include_static: false,
        };
        assert_eq!(f.flush(by(Some(0), Some(2))), 1);
        assert_eq!(f.flush(by(None, Some(2))), 1);
        assert_eq!(f.flush(by(Some(0), None)), 1);
        assert_eq!(f.len(), 1);
        assert!(f.entries(0)[0].is_static);
    }

    #[test]
    fn shrinking_capacity_evicts() {
        let f = Fdb::new(8, 1000);
        for m in 0..8 {
            f.learn(mac(m), 1, 0, m as u64, None);
        }
        f.set_capacity(3);
        assert_eq!(f.len(), 3);
        assert_eq!(f.lookup(mac(7), 1, 10), Some(0));
        assert_eq!(f.lookup(mac(0), 1, 10), None);
    }

    #[test]
    fn expired_unswept_entry_relearned_on_other_port_moves() {
        let f = Fdb::new(8, 100);
        f.learn(mac(1), 1, 0, 0, None);
        assert_eq!(f.learn(mac(1), 1, 1, 500, None), Learn::Moved);
        assert_eq!(f.lookup(mac(1), 1, 500), Some(1));
        assert_eq!(f.learn(mac(1), 1, 1, 1000, None), Learn::Refreshed);
        assert_eq!(f.lookup(mac(1), 1, 1000), Some(1));
    }

    /// A reader held across changes (as a worker holds one per pass)
    /// never answers from before a change, even in the same millisecond.
    fn sees_every_change(f: &Fdb, r: &FdbReader<'_>) {
        assert_eq!(r.lookup(mac(1), 1, 5), Some(0));
        assert_eq!(r.learn(mac(1), 1, 0, 5, None), Learn::Refreshed);
        // Moved by another reader (another worker).
        assert_eq!(f.learn(mac(1), 1, 2, 5, None), Learn::Moved);
        assert_eq!(r.lookup(mac(1), 1, 5), Some(2));
        assert_eq!(r.learn(mac(1), 1, 0, 5, None), Learn::Moved);
        assert_eq!(r.lookup(mac(1), 1, 5), Some(0));
        // Flushed.
        assert_eq!(f.flush(Flush::default()), 1);
        assert_eq!(r.lookup(mac(1), 1, 5), None);
        // Static: refused moves are counted every time.
        assert!(f.add_static(mac(1), 1, 3));
        assert_eq!(r.lookup(mac(1), 1, 5), Some(3));
        assert_eq!(r.learn(mac(1), 1, 3, 5, None), Learn::Refreshed);
        assert_eq!(r.learn(mac(1), 1, 4, 5, None), Learn::Refused);
        assert_eq!(r.learn(mac(1), 1, 4, 5, None), Learn::Refused);
        assert_eq!(f.stats().refused.load(Relaxed), 2);
        // Removed.
        assert!(f.remove(mac(1), 1));
        assert_eq!(r.lookup(mac(1), 1, 5), None);
        assert_eq!(r.learn(mac(1), 1, 4, 5, None), Learn::Learned);
        // A shorter ageing time.
        assert_eq!(r.lookup(mac(1), 1, 900), Some(4));
        f.set_ageing_ms(100);
        assert_eq!(r.lookup(mac(1), 1, 900), None);
        // Ageing swept it, then relearned at the same millisecond.
        assert_eq!(f.expire(900), 1);
        assert_eq!(r.learn(mac(1), 1, 4, 900, None), Learn::Learned);
        assert_eq!(r.lookup(mac(1), 1, 900), Some(4));
        // Evicted to make room.
        f.set_capacity(1);
        assert_eq!(f.learn(mac(2), 1, 5, 900, None), Learn::LearnedEvicting);
        assert_eq!(r.lookup(mac(1), 1, 900), None);
        assert_eq!(r.lookup(mac(2), 1, 900), Some(5));
    }

    #[test]
    fn a_held_reader_sees_every_change() {
        let f = Fdb::new(8, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        sees_every_change(&f, &f.reader());
    }

    #[test]
    fn a_held_cached_reader_sees_every_change() {
        let f = Fdb::new(8, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        let cache = f.cache();
        sees_every_change(&f, &cache.reader());
    }

    #[test]
    fn evpn_entries_never_age_and_only_local_learning_takes_them() {
        let fdb = Fdb::new(16, 1000);
        let m = mac(9);
        assert!(fdb.add_evpn(m, 1, 3));
        assert!(fdb.entries(0)[0].evpn);
        // Not aged; learning on the tunnel port itself changes nothing.
        assert_eq!(fdb.expire(1_000_000), 0);
        assert_eq!(fdb.learn(m, 1, 3, 5, None), Learn::Refreshed);
        assert!(fdb.entries(5)[0].evpn);
        // An operator's static entry is not replaced by EVPN.
        assert!(fdb.add_static(mac(8), 1, 1));
        assert!(!fdb.add_evpn(mac(8), 1, 3));
        assert!(!fdb.remove_evpn(mac(8), 1));
        // Learning on a local port takes it over: a learned entry again.
        assert_eq!(fdb.learn(m, 1, 1, 10, None), Learn::Moved);
        let e = fdb.entries(10).into_iter().find(|e| e.mac == m).unwrap();
        assert_eq!((e.port, e.evpn, e.is_static), (1, false, false));
        assert!(!fdb.remove_evpn(m, 1));
        // It ages like any learned entry.
        assert_eq!(fdb.expire(2000), 1);
        assert!(fdb.add_evpn(m, 1, 3));
        assert!(fdb.remove_evpn(m, 1));
        assert_eq!(fdb.len(), 1);
    }
}
