//! The forwarding database: which port a (MAC, VLAN) was last seen on.
//!
//! # Keys and entries
//! An entry is keyed by (MAC, VLAN) — the same MAC may live on different
//! ports in different VLANs. A VLAN-unaware switch keys everything on VLAN 1.
//! Each entry holds the port (an `AtomicU16`), the time the MAC was last seen
//! as a source (`AtomicU64`, milliseconds on the caller's clock) and whether it
//! is static. Static entries are added by the operator, never age, are never
//! moved by learning and are never evicted.
//!
//! # Thread safety
//! Every port reader calls [`Fdb::lookup`] and [`Fdb::learn`] at once. The map
//! is a `papaya` concurrent hash map whose reads are lock-free (epoch-based
//! reclamation keeps an entry's memory valid while a reader holds a guard).
//! On the hot path — a frame between two known MACs — a reader:
//! 1. looks up the destination (a lock-free read),
//! 2. looks up the source; if it is on the ingress port it stores the new
//!    `seen` time with an atomic `fetch_max`, and only when the millisecond
//!    changed, so two readers of the same MAC do not bounce a cache line on
//!    every frame.
//!
//! Only a new MAC, a moved MAC or a control-plane change takes the learn lock
//! (one short mutex). Under it the learner re-checks the map (another reader
//! may have learned the same MAC first — losing that race is harmless), keeps
//! per-port counts and the eviction/ageing order, and inserts or moves the
//! entry. A move is a single atomic store of the port, so a concurrent reader
//! sees either the old or the new port, both of which were correct at some
//! instant. The lock is one mutex rather than shards because capacity and
//! fair eviction need a switch-wide view; it is taken at the rate new MACs
//! appear, not at the frame rate.
//!
//! # Ageing
//! Each port keeps its learned entries in a `BTreeSet` ordered by the time
//! they were queued. `seen` moves forward without the lock, so the queue is
//! refreshed lazily: [`Fdb::expire`] pops the front, and if the entry was
//! seen since it was queued, re-queues it at its real `seen`. An entry is
//! popped only when `queued == seen`, so it is exactly the least recently
//! seen one. Lookups also treat an entry older than the ageing time as absent,
//! so ageing is exact (to the caller's clock) even between sweeps. The caller sweeps about once a
//! second; each sweep costs O(expired + refreshed) with no full scan.
//!
//! # Capacity and eviction
//! The table holds at most `capacity` entries (static ones included). When it
//! is full and a new MAC arrives, aged entries are swept first; then the port with the most learned entries loses
//! its least recently seen one (the policy of Open vSwitch's
//! `evict_mac_entry_fairly`), so a guest flooding random source MACs mostly
//! evicts its own entries. If nothing learned is left to evict (the table is
//! all static), the MAC is not learned. A per-port limit, when set, refuses
//! new MACs on that port instead (the kernel's `fdb_max_learned`): their frames
//! still flood. Every outcome is counted in [`FdbStats`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::atomic::{
    AtomicU16, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use parking_lot::Mutex;

use super::ports::{MAX_PORTS, PortId};
use crate::wire::Mac;

/// Default ageing time, as the Linux bridge: 300 s.
pub const DEFAULT_AGEING_MS: u64 = 300_000;
/// Default capacity, as Open vSwitch: 8192 entries.
pub const DEFAULT_CAPACITY: usize = 8192;

/// (MAC, VLAN) packed into one word: MAC in the high 48 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Key(u64);

impl Key {
    pub fn new(mac: Mac, vid: u16) -> Key {
        Key((mac.to_u64() << 16) | vid as u64)
    }
    pub fn mac(self) -> Mac {
        Mac::from_u64(self.0 >> 16)
    }
    pub fn vid(self) -> u16 {
        self.0 as u16
    }
}

struct Entry {
    port: AtomicU16,
    seen: AtomicU64,
    /// The time this entry is queued at in its port's ageing order (written
    /// only under the learn lock; atomic only to be shareable).
    queued: AtomicU64,
    is_static: bool,
}

impl Entry {
    /// `seen`, or "never ages" for a static entry (see [`FdbCache`]).
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

/// Lookups and learning under one epoch guard. See [`Fdb::reader`].
///
/// A reader remembers its last lookup and its last fast-path refresh. The
/// next frame with the same key, in the same millisecond, while the table's
/// [generation](Fdb::generation) has not moved, gets the same answer without
/// touching the map: nothing that could change the answer (an insert, a
/// move, a removal, a new ageing time) happened in between. A burst of one
/// flow — the common case inside a batch — costs one hash probe per batch
/// instead of two per frame.
pub struct FdbReader<'a> {
    fdb: &'a Fdb,
    guard: ReaderGuard<'a>,
    cache: Option<&'a FdbCache>,
    last_lookup: Cell<Memo<Option<PortId>>>,
    last_refresh: Cell<Memo<PortId>>,
}

/// An epoch guard a reader keeps across many [`FdbReader`]s
/// ([`Fdb::guard`]).
pub type FdbGuard<'a> = papaya::LocalGuard<'a>;

/// A reader's guard: its own, or one kept by its caller.
enum ReaderGuard<'a> {
    Own(FdbGuard<'a>),
    Kept(&'a FdbGuard<'a>),
}

impl<'a> ReaderGuard<'a> {
    #[inline]
    fn get(&self) -> &FdbGuard<'a> {
        match self {
            ReaderGuard::Own(g) => g,
            ReaderGuard::Kept(g) => g,
        }
    }
}

/// Slots in an [`FdbCache`] (a power of two).
const CACHE_SLOTS: usize = 128;

/// Answers a reader keeps across many [`FdbReader`]s ([`Fdb::reader_cached`]),
/// for a thread that reads the table again and again (a dataplane worker).
///
/// A slot says "`key` is on `port`, seen at `seen` or later", valid while
/// the table's [generation](Fdb::generation) stands (no insert, move,
/// removal or new ageing time since) and only while `seen` is within the
/// ageing time (the entry's real `seen` can only be later). A lookup it
/// answers, and the learning of a source it shows on the same port, touch
/// no shared memory but the generation: after a sleep a frame's way to its
/// port is a few cold loads shorter. Learning a source at a later
/// millisecond still has to move the entry's `seen`: that is put off to
/// [`FdbCache::flush`] (the worker calls it after each pass), which does it
/// the ordinary way (and learns the MAC anew if it went in between).
pub struct FdbCache {
    slots: Vec<Cell<Slot>>,
    /// Sources to refresh at [`FdbCache::flush`].
    pending: RefCell<Vec<Refresh>>,
}

/// A source learned through an [`FdbCache`], its `seen` not moved yet.
struct Refresh {
    key: Key,
    port: PortId,
    now: u64,
    limit: Option<usize>,
}

#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    generation: u64,
    port: PortId,
    /// `u64::MAX` for a static entry (never ages).
    seen: u64,
}

impl Default for FdbCache {
    fn default() -> Self {
        FdbCache::new()
    }
}

impl FdbCache {
    pub fn new() -> FdbCache {
        let empty = Slot {
            key: Key(0),
            // Generations start at 0 and only grow: matches nothing.
            generation: u64::MAX,
            port: 0,
            seen: 0,
        };
        FdbCache {
            slots: (0..CACHE_SLOTS).map(|_| Cell::new(empty)).collect(),
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

    /// Carries out the refreshes put off since the last flush, under
    /// `guard` (from the same `fdb`). No reader of this cache may live.
    pub fn flush(&self, fdb: &Fdb, guard: &FdbGuard<'_>) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        let r = fdb.reader_with(ReaderGuard::Kept(guard), None);
        for p in pending.drain(..) {
            r.learn_key(p.key, p.port, p.now, p.limit);
        }
    }
}

/// One remembered answer: valid for `key` at `now` while the table's
/// generation is still `generation`.
#[derive(Clone, Copy)]
struct Memo<T> {
    key: Key,
    now: u64,
    generation: u64,
    answer: T,
}

impl<T: Copy + PartialEq> Memo<T> {
    /// A memo that matches nothing (generations start at 0 and only grow).
    fn empty(answer: T) -> Memo<T> {
        Memo {
            key: Key(0),
            now: 0,
            generation: u64::MAX,
            answer,
        }
    }

    #[inline]
    fn hit(&self, key: Key, now: u64, generation: u64) -> Option<T> {
        (self.key == key && self.now == now && self.generation == generation).then_some(self.answer)
    }
}

impl FdbReader<'_> {
    /// See [`Fdb::lookup`].
    #[inline]
    pub fn lookup(&self, mac: Mac, vid: u16, now: u64) -> Option<PortId> {
        let key = Key::new(mac, vid);
        let generation = self.fdb.generation();
        if let Some(c) = self.cache
            && let Some(s) = c.get(self.fdb, key, generation, now)
        {
            return Some(s.port);
        }
        if let Some(answer) = self.last_lookup.get().hit(key, now, generation) {
            return answer;
        }
        let answer = self
            .fdb
            .map
            .get(&key, self.guard.get())
            .filter(|e| !self.fdb.expired(e, now))
            .map(|e| {
                let port = e.port.load(Relaxed);
                if let Some(c) = self.cache {
                    c.put(key, generation, port, e.seen_or_max());
                }
                port
            });
        self.last_lookup.set(Memo {
            key,
            now,
            generation,
            answer,
        });
        answer
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
        if let Some(c) = self.cache {
            let generation = self.fdb.generation();
            if let Some(s) = c.get(self.fdb, key, generation, now)
                && s.port == port
            {
                if s.seen < now {
                    // Known here: the entry's `seen` moves at the flush.
                    c.pending.borrow_mut().push(Refresh {
                        key,
                        port,
                        now,
                        limit: port_limit,
                    });
                    c.put(key, generation, port, now);
                }
                return Learn::Refreshed;
            }
        }
        self.learn_key(key, port, now, port_limit)
    }

    fn learn_key(&self, key: Key, port: PortId, now: u64, port_limit: Option<usize>) -> Learn {
        let generation = self.fdb.generation();
        if self.last_refresh.get().hit(key, now, generation) == Some(port) {
            // Refreshed at this very `now` already: nothing to do.
            return Learn::Refreshed;
        }
        if let Some(e) = self.fdb.map.get(&key, self.guard.get()) {
            let refreshed = if e.is_static {
                if e.port.load(Relaxed) != port {
                    self.fdb.stats.refused.fetch_add(1, Relaxed);
                    return Learn::Refused;
                }
                true
            } else if e.port.load(Relaxed) == port && !self.fdb.expired(e, now) {
                if e.seen.load(Relaxed) < now {
                    e.seen.fetch_max(now, Relaxed);
                }
                true
            } else {
                false
            };
            if refreshed {
                if let Some(c) = self.cache {
                    c.put(key, generation, port, e.seen_or_max());
                }
                self.last_refresh.set(Memo {
                    key,
                    now,
                    generation,
                    answer: port,
                });
                return Learn::Refreshed;
            }
        }
        self.fdb.learn_slow(key, port, now, port_limit)
    }
}

/// A snapshot of one entry, for the control plane.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryInfo {
    pub mac: Mac,
    pub vlan: u16,
    pub port: PortId,
    pub is_static: bool,
    /// Milliseconds since the MAC was last seen (0 for static entries).
    pub age_ms: u64,
}

/// Which entries a flush removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flush {
    pub port: Option<PortId>,
    pub vlan: Option<u16>,
    /// Also remove static entries.
    pub include_static: bool,
}

#[derive(Default)]
struct PortOrder {
    /// Learned entries of the port by (queued time, key).
    queue: BTreeSet<(u64, Key)>,
}

struct LearnState {
    ports: Vec<PortOrder>,
}

impl LearnState {
    /// Whether `port` has learned as many MACs as `limit` allows.
    fn at_limit(&self, port: PortId, limit: Option<usize>) -> bool {
        limit.is_some_and(|l| self.ports[port as usize].queue.len() >= l)
    }
}

/// The forwarding database. See the module documentation.
pub struct Fdb {
    map: papaya::HashMap<Key, Entry, foldhash::fast::RandomState>,
    learn: Mutex<LearnState>,
    len: AtomicUsize,
    capacity: AtomicUsize,
    ageing_ms: AtomicU64,
    /// Moves on every change a lookup or a refresh could see (insert, move,
    /// removal, ageing time); readers' memos are valid only while it stands.
    generation: AtomicU64,
    stats: FdbStats,
}

impl Fdb {
    pub fn new(capacity: usize, ageing_ms: u64) -> Fdb {
        Fdb {
            map: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .capacity(capacity.min(1 << 20))
                .build(),
            learn: Mutex::new(LearnState {
                ports: (0..MAX_PORTS).map(|_| PortOrder::default()).collect(),
            }),
            len: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity.max(1)),
            ageing_ms: AtomicU64::new(ageing_ms),
            generation: AtomicU64::new(0),
            stats: FdbStats::default(),
        }
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

    pub fn set_ageing_ms(&self, ms: u64) {
        self.ageing_ms.store(ms, Relaxed);
        self.changed();
    }

    /// See [`FdbReader`]: the count of changes so far.
    #[inline]
    fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// Invalidates every reader's memos (after the change is made).
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
    /// when the MAC is already known on that port.
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

    /// A handle for several lock-free operations under one epoch guard (the
    /// forwarding core takes one per batch).
    pub fn reader(&self) -> FdbReader<'_> {
        self.reader_with(ReaderGuard::Own(self.map.guard()), None)
    }

    /// An epoch guard to keep across many readers ([`Fdb::reader_cached`]):
    /// what is removed from the table while it is held is freed only once
    /// it is refreshed (`papaya::Guard::refresh`) or dropped, so a keeper
    /// refreshes it between readers.
    pub fn guard(&self) -> FdbGuard<'_> {
        self.map.guard()
    }

    /// A reader under `guard` (from [`Fdb::guard`]; taking it costs no
    /// epoch bookkeeping) that answers from `cache` where it can and fills
    /// it. The keeper calls [`FdbCache::flush`] between readers.
    pub fn reader_cached<'a>(
        &'a self,
        guard: &'a FdbGuard<'_>,
        cache: &'a FdbCache,
    ) -> FdbReader<'a> {
        self.reader_with(ReaderGuard::Kept(guard), Some(cache))
    }

    fn reader_with<'a>(
        &'a self,
        guard: ReaderGuard<'a>,
        cache: Option<&'a FdbCache>,
    ) -> FdbReader<'a> {
        FdbReader {
            fdb: self,
            guard,
            cache,
            last_lookup: Cell::new(Memo::empty(None)),
            last_refresh: Cell::new(Memo::empty(0)),
        }
    }

    fn learn_slow(&self, key: Key, port: PortId, now: u64, port_limit: Option<usize>) -> Learn {
        let outcome = self.learn_locked(key, port, now, port_limit);
        self.changed();
        outcome
    }

    fn learn_locked(&self, key: Key, port: PortId, now: u64, port_limit: Option<usize>) -> Learn {
        let mut st = self.learn.lock();
        let map = self.map.pin();
        // At a limit, aged entries not swept yet must not take the place of
        // live ones: sweep first.
        if self.len() >= self.capacity() || st.at_limit(port, port_limit) {
            self.expire_locked(&mut st, &map, now);
        }
        if let Some(e) = map.get(&key) {
            if e.is_static {
                self.stats.refused.fetch_add(1, Relaxed);
                return Learn::Refused;
            }
            let old = e.port.load(Relaxed);
            if old == port {
                // Another reader learned it first, or it had aged but was
                // not swept yet: it stays, refreshed.
                e.seen.fetch_max(now, Relaxed);
                return Learn::Refreshed;
            }
            if st.at_limit(port, port_limit) {
                self.stats.refused.fetch_add(1, Relaxed);
                return Learn::Refused;
            }
            e.seen.fetch_max(now, Relaxed);
            let q = e.queued.load(Relaxed);
            st.ports[old as usize].queue.remove(&(q, key));
            st.ports[port as usize].queue.insert((now, key));
            e.queued.store(now, Relaxed);
            e.port.store(port, Relaxed);
            self.stats.moved.fetch_add(1, Relaxed);
            return Learn::Moved;
        }
        if st.at_limit(port, port_limit) {
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
        map.insert(
            key,
            Entry {
                port: AtomicU16::new(port),
                seen: AtomicU64::new(now),
                queued: AtomicU64::new(now),
                is_static: false,
            },
        );
        st.ports[port as usize].queue.insert((now, key));
        self.len.fetch_add(1, Relaxed);
        self.stats.learned.fetch_add(1, Relaxed);
        outcome
    }

    /// Removes the least recently seen entry of the port with the most
    /// learned entries. False if no learned entry exists.
    fn evict_one<G: papaya::Guard>(
        &self,
        st: &mut LearnState,
        map: &papaya::HashMapRef<'_, Key, Entry, foldhash::fast::RandomState, G>,
    ) -> bool {
        let Some((port, _)) = st
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.queue.is_empty())
            .max_by(|(ia, a), (ib, b)| a.queue.len().cmp(&b.queue.len()).then(ib.cmp(ia)))
        else {
            return false;
        };
        let queue = &mut st.ports[port].queue;
        while let Some((q, key)) = queue.pop_first() {
            let Some(e) = map.get(&key) else { continue };
            let seen = e.seen.load(Relaxed);
            if seen > q {
                queue.insert((seen, key));
                e.queued.store(seen, Relaxed);
                continue;
            }
            map.remove(&key);
            self.changed();
            self.len.fetch_sub(1, Relaxed);
            self.stats.evicted.fetch_add(1, Relaxed);
            return true;
        }
        false
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
        map: &papaya::HashMapRef<'_, Key, Entry, foldhash::fast::RandomState, G>,
        now: u64,
    ) -> usize {
        let ageing = self.ageing_ms();
        let mut aged = 0;
        for order in st.ports.iter_mut() {
            while let Some(&(q, key)) = order.queue.first() {
                if now.saturating_sub(q) < ageing {
                    break;
                }
                order.queue.pop_first();
                let Some(e) = map.get(&key) else { continue };
                let seen = e.seen.load(Relaxed);
                if now.saturating_sub(seen) >= ageing {
                    map.remove(&key);
                    aged += 1;
                } else {
                    order.queue.insert((seen, key));
                    e.queued.store(seen, Relaxed);
                }
            }
        }
        if aged > 0 {
            self.changed();
        }
        self.len.fetch_sub(aged, Relaxed);
        self.stats.aged.fetch_add(aged as u64, Relaxed);
        aged
    }

    /// Adds or replaces a static entry. Returns false if the table is full
    /// and nothing learned can be evicted.
    pub fn add_static(&self, mac: Mac, vid: u16, port: PortId) -> bool {
        let key = Key::new(mac, vid);
        let mut st = self.learn.lock();
        let map = self.map.pin();
        match map.get(&key) {
            Some(e) if !e.is_static => {
                let old = e.port.load(Relaxed);
                st.ports[old as usize]
                    .queue
                    .remove(&(e.queued.load(Relaxed), key));
            }
            Some(_) => {}
            None => {
                if self.len() >= self.capacity() && !self.evict_one(&mut st, &map) {
                    return false;
                }
                self.len.fetch_add(1, Relaxed);
            }
        }
        map.insert(
            key,
            Entry {
                port: AtomicU16::new(port),
                seen: AtomicU64::new(0),
                queued: AtomicU64::new(0),
                is_static: true,
            },
        );
        self.changed();
        true
    }

    /// Removes one entry (static or learned). True if it existed.
    pub fn remove(&self, mac: Mac, vid: u16) -> bool {
        let key = Key::new(mac, vid);
        let mut st = self.learn.lock();
        let map = self.map.pin();
        self.remove_locked(&mut st, &map, key)
    }

    fn remove_locked<G: papaya::Guard>(
        &self,
        st: &mut LearnState,
        map: &papaya::HashMapRef<'_, Key, Entry, foldhash::fast::RandomState, G>,
        key: Key,
    ) -> bool {
        let Some(e) = map.remove(&key) else {
            return false;
        };
        self.changed();
        if !e.is_static {
            st.ports[e.port.load(Relaxed) as usize]
                .queue
                .remove(&(e.queued.load(Relaxed), key));
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
            .filter(|k| self.remove_locked(&mut st, &map, *k))
            .count()
    }

    /// Number of learned (non-static) entries on `port`.
    pub fn learned_on(&self, port: PortId) -> usize {
        self.learn.lock().ports[port as usize].queue.len()
    }

    /// A snapshot of all live entries, sorted by VLAN then MAC.
    pub fn entries(&self, now: u64) -> Vec<EntryInfo> {
        let map = self.map.pin();
        let mut v: Vec<EntryInfo> = map
            .iter()
            .filter(|(_, e)| !self.expired(e, now))
            .map(|(k, e)| EntryInfo {
                mac: k.mac(),
                vlan: k.vid(),
                port: e.port.load(Relaxed),
                is_static: e.is_static,
                age_ms: if e.is_static {
                    0
                } else {
                    now.saturating_sub(e.seen.load(Relaxed))
                },
            })
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
        let (guard, cache) = (fdb.guard(), FdbCache::new());
        assert_eq!(fdb.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.lookup(mac(1), 1, 10), Some(0));
        assert_eq!(r.lookup(mac(1), 1, 11), Some(0), "from the cache");
        drop(r);
        // Another reader moves it: the generation moves, the slot is stale.
        assert_eq!(fdb.learn(mac(1), 1, 1, 20, None), Learn::Moved);
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.lookup(mac(1), 1, 30), Some(1));
        assert_eq!(r.lookup(mac(1), 1, 31), Some(1));
        // Aged by the slot's own time, before any sweep.
        assert_eq!(r.lookup(mac(1), 1, 1020), None);
        assert_eq!(r.lookup(mac(1), 1, 1019), Some(1));
        drop(r);
        assert!(fdb.remove(mac(1), 1));
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.lookup(mac(1), 1, 40), None);
    }

    #[test]
    fn learning_through_the_cache_moves_seen_at_the_flush() {
        let fdb = Fdb::new(16, 1000);
        let (guard, cache) = (fdb.guard(), FdbCache::new());
        assert_eq!(fdb.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        let r = fdb.reader_cached(&guard, &cache);
        // Not cached yet: refreshed in the table at once (and cached).
        assert_eq!(r.learn(mac(1), 1, 0, 500, None), Learn::Refreshed);
        assert_eq!(age(&fdb, mac(1), 500), Some(0));
        // Cached: put off.
        assert_eq!(r.learn(mac(1), 1, 0, 900, None), Learn::Refreshed);
        assert_eq!(r.learn(mac(1), 1, 0, 900, None), Learn::Refreshed);
        assert_eq!(age(&fdb, mac(1), 900), Some(400));
        drop(r);
        cache.flush(&fdb, &guard);
        assert_eq!(age(&fdb, mac(1), 900), Some(0));
        // Alive by the refreshed time, for every reader.
        assert_eq!(fdb.lookup(mac(1), 1, 1800), Some(0));
        // A source on another port than the cache says is a move, at once.
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.learn(mac(1), 1, 2, 1000, None), Learn::Moved);
        assert_eq!(fdb.lookup(mac(1), 1, 1000), Some(2));
    }

    #[test]
    fn a_refresh_put_off_learns_anew_what_went_in_between() {
        let fdb = Fdb::new(16, 1000);
        let (guard, cache) = (fdb.guard(), FdbCache::new());
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.learn(mac(1), 1, 0, 0, None), Learn::Learned);
        assert_eq!(r.lookup(mac(1), 1, 1), Some(0));
        assert_eq!(r.learn(mac(1), 1, 0, 5, None), Learn::Refreshed);
        drop(r);
        // Flushed by the control plane before the refresh is carried out.
        assert_eq!(
            fdb.flush(Flush {
                port: Some(0),
                ..Flush::default()
            }),
            1
        );
        cache.flush(&fdb, &guard);
        assert_eq!(fdb.lookup(mac(1), 1, 6), Some(0));
        assert_eq!(age(&fdb, mac(1), 6), Some(1));
        assert_eq!(fdb.stats().learned.load(Relaxed), 2);
    }

    #[test]
    fn a_cached_static_entry_never_ages_and_is_not_moved() {
        let fdb = Fdb::new(16, 1000);
        let (guard, cache) = (fdb.guard(), FdbCache::new());
        assert!(fdb.add_static(mac(1), 1, 2));
        let r = fdb.reader_cached(&guard, &cache);
        assert_eq!(r.lookup(mac(1), 1, 0), Some(2));
        assert_eq!(r.lookup(mac(1), 1, 1_000_000), Some(2));
        assert_eq!(r.learn(mac(1), 1, 2, 1_000_001, None), Learn::Refreshed);
        assert_eq!(r.learn(mac(1), 1, 0, 1_000_002, None), Learn::Refused);
        assert_eq!(r.lookup(mac(1), 1, 1_000_003), Some(2));
        drop(r);
        cache.flush(&fdb, &guard);
        assert_eq!(fdb.lookup(mac(1), 1, 1_000_004), Some(2));
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

    /// A reader held across changes (as a worker holds one per batch)
    /// never answers from its memo once the table changed, even in the same
    /// millisecond.
    #[test]
    fn a_held_reader_sees_every_change() {
        let f = Fdb::new(8, 1000);
        f.learn(mac(1), 1, 0, 0, None);
        let r = f.reader();
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
}
