//! Property tests of the forwarding core.
//!
//! 1. The FDB against a sequential reference model (a `BTreeMap`) under
//!    random sequences of learn, lookup, expire, flush, add_static, remove
//!    and set_capacity, on a fake clock that moves forward by at least 1 ms
//!    per operation (so last-seen times are unique and "least recently
//!    seen" is never a tie).
//! 2. The FDB shared by several threads learning and looking up at once:
//!    the invariants that tie its counters, per-port queues and map together
//!    hold afterwards.
//! 3. `Switch::decide` on random bytes and on structured frames with random
//!    tags and MACs, with and without VLAN filtering: it never panics, never
//!    floods back out of the ingress port (without hairpin) and never sends
//!    to a port that is down or outside the frame's VLAN.
//! 4. Neither `Switch::decide` nor a worker's views allocate once warm
//!    (a counting allocator, per thread).
//!
//! Case counts are kept small so the whole file runs in a few seconds in a
//! debug build. No timing is asserted anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, LazyLock};

use proptest::prelude::*;
use proptest::test_runner::Config;
use vswitch::switch::{
    Action, DropReason, EntryInfo, Fdb, FdbCache, FdbReader, Flush, Learn, MacLimit, PortConfig,
    PortFlags, PortId, Switch, SwitchConfig, Vid, VlanMode, VlanSet,
};
use vswitch::wire::Mac;

/// Proptest settings: `cases` cases, no regression files (a failure found
/// here is turned into a named `#[test]` below instead).
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A locally administered unicast MAC from a small pool.
fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

// ---------------------------------------------------------------------------
// 1. The FDB against a reference model
// ---------------------------------------------------------------------------

/// Ports the model test uses (0..PORTS).
const PORTS: PortId = 4;
/// Size of the MAC pool: small, so the same MACs come back, move and collide.
const MAC_POOL: u8 = 12;

#[derive(Debug, Clone)]
enum FdbOp {
    Learn { mac: u8, vid: u16, port: PortId },
    Lookup { mac: u8, vid: u16 },
    Expire,
    Flush(Flush),
    AddStatic { mac: u8, vid: u16, port: PortId },
    Remove { mac: u8, vid: u16 },
    SetCapacity(usize),
}

/// What one operation returned, from either implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Learn(Learn),
    Lookup(Option<PortId>),
    Count(usize),
    Bool(bool),
    Unit,
}

#[derive(Debug, Clone, Copy)]
struct ModelEntry {
    port: PortId,
    seen: u64,
    is_static: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    learned: u64,
    moved: u64,
    aged: u64,
    evicted: u64,
    refused: u64,
}

/// The FDB as the module documentation of `fdb.rs` describes it, written
/// the simplest way: a sorted map and linear scans.
#[derive(Debug)]
struct Model {
    capacity: usize,
    ageing: u64,
    /// Per-port MAC limit (what the switch passes from `PortConfig`).
    limits: [Option<usize>; PORTS as usize],
    /// Keyed (VLAN, MAC) so iteration order is the order of `entries()`.
    map: BTreeMap<(u16, Mac), ModelEntry>,
    stats: Counters,
}

impl Model {
    fn new(capacity: usize, ageing: u64, limits: [Option<usize>; PORTS as usize]) -> Model {
        Model {
            capacity: capacity.max(1),
            ageing,
            limits,
            map: BTreeMap::new(),
            stats: Counters::default(),
        }
    }

    /// Aged but not necessarily swept: lookups and snapshots ignore it, but
    /// it still occupies the table (capacity, per-port counts, flush).
    fn expired(&self, e: &ModelEntry, now: u64) -> bool {
        !e.is_static && now.saturating_sub(e.seen) >= self.ageing
    }

    fn learned_on(&self, port: PortId) -> usize {
        self.map
            .values()
            .filter(|e| !e.is_static && e.port == port)
            .count()
    }

    fn at_limit(&self, port: PortId) -> bool {
        self.limits[port as usize].is_some_and(|l| self.learned_on(port) >= l)
    }

    /// The port with the most learned entries (ties: lowest index) loses its
    /// least recently seen entry. False if nothing learned exists.
    fn evict_one(&mut self) -> bool {
        let victim_port = (0..PORTS)
            .map(|p| (p, self.learned_on(p)))
            .filter(|&(_, n)| n > 0)
            .max_by(|(pa, na), (pb, nb)| na.cmp(nb).then(pb.cmp(pa)));
        let Some((port, _)) = victim_port else {
            return false;
        };
        let key = self
            .map
            .iter()
            .filter(|(_, e)| !e.is_static && e.port == port)
            // Least recently seen; a tie (same millisecond) goes to the
            // lowest (MAC, VLAN), as in the FDB's ageing order.
            .min_by_key(|((vid, mac), e)| (e.seen, *mac, *vid))
            .map(|(k, _)| *k)
            .expect("the port has learned entries");
        self.map.remove(&key);
        self.stats.evicted += 1;
        true
    }

    fn learn(&mut self, mac: Mac, vid: u16, port: PortId, now: u64) -> Learn {
        let key = (vid, mac);
        if let Some(e) = self.map.get(&key).copied() {
            if e.is_static {
                // A static entry owns the MAC: refused (and counted).
                return if e.port == port {
                    Learn::Refreshed
                } else {
                    self.stats.refused += 1;
                    Learn::Refused
                };
            }
            if e.port == port && !self.expired(&e, now) {
                self.map.get_mut(&key).unwrap().seen = e.seen.max(now);
                return Learn::Refreshed;
            }
        }
        // Slow path: at the capacity or the port's limit, aged entries are
        // swept before anything is decided.
        if self.map.len() >= self.capacity || self.at_limit(port) {
            self.expire(now);
        }
        if let Some(e) = self.map.get(&key).copied() {
            if e.port == port {
                // Known here (possibly aged but not yet swept): refreshed.
                self.map.get_mut(&key).unwrap().seen = e.seen.max(now);
                return Learn::Refreshed;
            }
            if self.at_limit(port) {
                self.stats.refused += 1;
                return Learn::Refused;
            }
            let m = self.map.get_mut(&key).unwrap();
            m.port = port;
            m.seen = e.seen.max(now);
            self.stats.moved += 1;
            return Learn::Moved;
        }
        if self.at_limit(port) {
            self.stats.refused += 1;
            return Learn::Refused;
        }
        let mut outcome = Learn::Learned;
        if self.map.len() >= self.capacity {
            if !self.evict_one() {
                self.stats.refused += 1;
                return Learn::Refused;
            }
            outcome = Learn::LearnedEvicting;
        }
        self.map.insert(
            key,
            ModelEntry {
                port,
                seen: now,
                is_static: false,
            },
        );
        self.stats.learned += 1;
        outcome
    }

    fn lookup(&self, mac: Mac, vid: u16, now: u64) -> Option<PortId> {
        let e = self.map.get(&(vid, mac))?;
        (!self.expired(e, now)).then_some(e.port)
    }

    fn expire(&mut self, now: u64) -> usize {
        let before = self.map.len();
        let ageing = self.ageing;
        self.map
            .retain(|_, e| e.is_static || now.saturating_sub(e.seen) < ageing);
        let aged = before - self.map.len();
        self.stats.aged += aged as u64;
        aged
    }

    fn flush(&mut self, f: Flush) -> usize {
        let before = self.map.len();
        self.map.retain(|(vid, _), e| {
            let doomed = (f.include_static || !e.is_static)
                && f.port.is_none_or(|p| e.port == p)
                && f.vlan.is_none_or(|v| *vid == v);
            !doomed
        });
        before - self.map.len()
    }

    fn add_static(&mut self, mac: Mac, vid: u16, port: PortId) -> bool {
        let key = (vid, mac);
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity && !self.evict_one() {
            return false;
        }
        self.map.insert(
            key,
            ModelEntry {
                port,
                seen: 0,
                is_static: true,
            },
        );
        true
    }

    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.map.len() > self.capacity && self.evict_one() {}
    }

    fn entries(&self, now: u64) -> Vec<EntryInfo> {
        self.map
            .iter()
            .filter(|(_, e)| !self.expired(e, now))
            .map(|(&(vlan, mac), e)| EntryInfo {
                mac,
                vlan,
                port: e.port,
                is_static: e.is_static,
                evpn: false,
                age_ms: if e.is_static {
                    0
                } else {
                    now.saturating_sub(e.seen)
                },
            })
            .collect()
    }

    fn apply(&mut self, op: &FdbOp, now: u64) -> Outcome {
        match *op {
            FdbOp::Learn { mac: m, vid, port } => {
                Outcome::Learn(self.learn(mac(m), vid, port, now))
            }
            FdbOp::Lookup { mac: m, vid } => Outcome::Lookup(self.lookup(mac(m), vid, now)),
            FdbOp::Expire => Outcome::Count(self.expire(now)),
            FdbOp::Flush(f) => Outcome::Count(self.flush(f)),
            FdbOp::AddStatic { mac: m, vid, port } => {
                Outcome::Bool(self.add_static(mac(m), vid, port))
            }
            FdbOp::Remove { mac: m, vid } => {
                Outcome::Bool(self.map.remove(&(vid, mac(m))).is_some())
            }
            FdbOp::SetCapacity(c) => {
                self.set_capacity(c);
                Outcome::Unit
            }
        }
    }
}

/// `reader` may be held across many ops, as a dataplane worker holds one
/// across a pass: it must never answer from before a change.
fn apply_fdb(
    fdb: &Fdb,
    reader: &FdbReader<'_>,
    limits: &[Option<usize>],
    op: &FdbOp,
    now: u64,
) -> Outcome {
    match *op {
        FdbOp::Learn { mac: m, vid, port } => {
            Outcome::Learn(reader.learn(mac(m), vid, port, now, limits[port as usize]))
        }
        FdbOp::Lookup { mac: m, vid } => Outcome::Lookup(reader.lookup(mac(m), vid, now)),
        FdbOp::Expire => Outcome::Count(fdb.expire(now)),
        FdbOp::Flush(f) => Outcome::Count(fdb.flush(f)),
        FdbOp::AddStatic { mac: m, vid, port } => Outcome::Bool(fdb.add_static(mac(m), vid, port)),
        FdbOp::Remove { mac: m, vid } => Outcome::Bool(fdb.remove(mac(m), vid)),
        FdbOp::SetCapacity(c) => {
            fdb.set_capacity(c);
            Outcome::Unit
        }
    }
}

fn fdb_counters(fdb: &Fdb) -> Counters {
    let s = fdb.stats();
    Counters {
        learned: s.learned.load(Relaxed),
        moved: s.moved.load(Relaxed),
        aged: s.aged.load(Relaxed),
        evicted: s.evicted.load(Relaxed),
        refused: s.refused.load(Relaxed),
    }
}

fn fdb_op() -> impl Strategy<Value = FdbOp> {
    let m = 0..MAC_POOL;
    let vid = 1..=3u16;
    let port = 0..PORTS;
    let flush = (
        prop::option::of(0..PORTS),
        prop::option::of(1..=3u16),
        any::<bool>(),
    )
        .prop_map(|(port, vlan, include_static)| {
            FdbOp::Flush(Flush {
                port,
                vlan,
                include_static,
            })
        });
    prop_oneof![
        12 => (m.clone(), vid.clone(), port.clone())
            .prop_map(|(mac, vid, port)| FdbOp::Learn { mac, vid, port }),
        4 => (m.clone(), vid.clone()).prop_map(|(mac, vid)| FdbOp::Lookup { mac, vid }),
        2 => Just(FdbOp::Expire),
        1 => flush,
        2 => (m.clone(), vid.clone(), port)
            .prop_map(|(mac, vid, port)| FdbOp::AddStatic { mac, vid, port }),
        1 => (m, vid).prop_map(|(mac, vid)| FdbOp::Remove { mac, vid }),
        1 => (1..=8usize).prop_map(FdbOp::SetCapacity),
    ]
}

/// Runs `ops` (each after advancing the clock by its delay) on a fresh
/// `Fdb` and on the model, comparing every outcome and the whole state
/// after every step.
/// With `cached`, every op goes through a new reader over one kept
/// [`FdbCache`], refreshed after it, as a dataplane worker keeps one across
/// its passes (and refreshes it after each): the cache must never answer
/// from before a change, and its put-off refreshes must leave the table as
/// the model's. Without, one uncached reader is held across the whole
/// sequence.
fn check_against_model(
    capacity: usize,
    ageing: u64,
    limits: [Option<usize>; PORTS as usize],
    ops: &[(u64, FdbOp)],
    cached: bool,
) -> Result<(), TestCaseError> {
    let fdb = Fdb::new(capacity, ageing);
    let reader = fdb.reader();
    let mut cache: FdbCache = fdb.cache();
    let mut model = Model::new(capacity, ageing, limits);
    let mut now = 0;
    for (step, (dt, op)) in ops.iter().enumerate() {
        now += dt;
        let got = if cached {
            let pass = cache.reader();
            let got = apply_fdb(&fdb, &pass, &limits, op, now);
            drop(pass);
            cache.refresh();
            got
        } else {
            apply_fdb(&fdb, &reader, &limits, op, now)
        };
        let want = model.apply(op, now);
        prop_assert_eq!(got, want, "step {} at {} ms: {:?}", step, now, op);
        prop_assert_eq!(
            fdb.entries(now),
            model.entries(now),
            "entries after step {} at {} ms: {:?}",
            step,
            now,
            op
        );
        prop_assert_eq!(fdb.len(), model.map.len(), "len after step {}", step);
        for p in 0..PORTS {
            prop_assert_eq!(
                fdb.learned_on(p),
                model.learned_on(p),
                "learned on port {} after step {}",
                p,
                step
            );
        }
        prop_assert_eq!(fdb_counters(&fdb), model.stats, "stats after step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(768))]

    /// Half the cases through a reader held across the whole sequence,
    /// half through a kept cache (`cached`, see `check_against_model`).
    #[test]
    fn fdb_matches_reference_model(
        capacity in 1..=8usize,
        ageing in 50..=400u64,
        limits in prop::array::uniform4(prop::option::weighted(0.3, 1..=4usize)),
        // A third of the steps happen in the same millisecond as the one
        // before: a cache slot then answers a refresh without putting one
        // off.
        ops in prop::collection::vec((prop_oneof![1 => Just(0u64), 2 => 1..=40u64], fdb_op()), 1..120),
        cached in any::<bool>(),
    ) {
        check_against_model(capacity, ageing, limits, &ops, cached)?;
    }
}

/// Fixed sequences for the corners the model test is meant to reach, so a
/// regression shows up even if the random search stops finding it.
#[test]
fn model_corners() {
    use FdbOp::*;
    let learn = |mac, port| Learn { mac, vid: 1, port };
    type Case = (usize, u64, [Option<usize>; 4], Vec<(u64, FdbOp)>);
    let cases: Vec<Case> = vec![
        // Eviction between entries seen in the same millisecond: the lowest
        // (MAC, VLAN) goes, whatever order they were learned in.
        (
            5,
            97,
            [None; 4],
            vec![
                (
                    0,
                    AddStatic {
                        mac: 5,
                        vid: 1,
                        port: 0,
                    },
                ),
                (
                    0,
                    Learn {
                        mac: 0,
                        vid: 2,
                        port: 1,
                    },
                ),
                (
                    0,
                    Learn {
                        mac: 2,
                        vid: 1,
                        port: 0,
                    },
                ),
                (
                    0,
                    Learn {
                        mac: 6,
                        vid: 1,
                        port: 0,
                    },
                ),
                (
                    0,
                    Learn {
                        mac: 1,
                        vid: 2,
                        port: 0,
                    },
                ),
                (
                    0,
                    AddStatic {
                        mac: 3,
                        vid: 1,
                        port: 0,
                    },
                ),
                (0, Lookup { mac: 1, vid: 2 }),
                (0, Lookup { mac: 2, vid: 1 }),
            ],
        ),
        // Fair eviction: port 1 holds most, its least recently seen goes.
        (
            3,
            1000,
            [None; 4],
            vec![
                (1, learn(0, 0)),
                (1, learn(1, 1)),
                (1, learn(2, 1)),
                (1, learn(1, 1)),
                (1, learn(3, 2)),
            ],
        ),
        // Tie on counts: the lowest port index loses.
        (
            2,
            1000,
            [None; 4],
            vec![(1, learn(0, 2)), (1, learn(1, 1)), (1, learn(2, 3))],
        ),
        // A per-port limit refuses a move onto the full port.
        (
            8,
            1000,
            [None, Some(1), None, None],
            vec![(1, learn(0, 1)), (1, learn(1, 0)), (1, learn(1, 1))],
        ),
        // At capacity, aged but unswept entries are swept before a live
        // one is evicted; relearning one on its port refreshes it.
        (
            2,
            10,
            [None; 4],
            vec![
                (1, learn(0, 0)),
                (1, learn(1, 1)),
                (20, learn(0, 0)),
                (1, learn(2, 2)),
                (1, Expire),
            ],
        ),
        // All static: learning is refused, add_static fails.
        (
            1,
            10,
            [None; 4],
            vec![
                (
                    1,
                    AddStatic {
                        mac: 0,
                        vid: 1,
                        port: 0,
                    },
                ),
                (1, learn(1, 0)),
                (1, learn(0, 1)),
                (1, learn(0, 0)),
                (
                    1,
                    AddStatic {
                        mac: 1,
                        vid: 1,
                        port: 0,
                    },
                ),
            ],
        ),
    ];
    for (capacity, ageing, limits, ops) in cases {
        for cached in [false, true] {
            check_against_model(capacity, ageing, limits, &ops, cached).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The FDB shared by several threads
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SharedOp {
    /// Learn on one of the thread's own two ports.
    Learn {
        mac: u8,
        vid: u16,
        second: bool,
    },
    Lookup {
        mac: u8,
        vid: u16,
    },
    Remove {
        mac: u8,
        vid: u16,
    },
    /// Flush the thread's first port.
    FlushOwn,
}

fn shared_op() -> impl Strategy<Value = SharedOp> {
    prop_oneof![
        12 => (0..16u8, 1..=2u16, any::<bool>())
            .prop_map(|(mac, vid, second)| SharedOp::Learn { mac, vid, second }),
        6 => (0..16u8, 1..=2u16).prop_map(|(mac, vid)| SharedOp::Lookup { mac, vid }),
        1 => (0..16u8, 1..=2u16).prop_map(|(mac, vid)| SharedOp::Remove { mac, vid }),
        1 => Just(SharedOp::FlushOwn),
    ]
}

/// What one thread did that the invariants need.
#[derive(Default)]
struct ThreadLog {
    /// (MAC, VLAN, port) this thread inserted or moved.
    placed: BTreeSet<(Mac, u16, PortId)>,
    flushed: usize,
    removed: usize,
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn shared_fdb_keeps_its_invariants(
        capacity in 2..=24usize,
        limit in prop::option::weighted(0.3, 1..=6usize),
        threads in prop::collection::vec(prop::collection::vec(shared_op(), 50..300), 2..=4),
    ) {
        // Nothing ages during the test: every entry is live at any `now`
        // the test uses.
        const AGEING: u64 = 1 << 40;
        let fdb = Fdb::new(capacity, AGEING);
        let clock = AtomicU64::new(1);
        let start = Barrier::new(threads.len());
        let logs: Vec<ThreadLog> = std::thread::scope(|s| {
            let handles: Vec<_> = threads
                .iter()
                .enumerate()
                .map(|(t, ops)| {
                    let (fdb, clock, start) = (&fdb, &clock, &start);
                    s.spawn(move || {
                        let mut log = ThreadLog::default();
                        let own = 2 * t as PortId;
                        start.wait();
                        for op in ops {
                            let now = clock.fetch_add(1, Relaxed);
                            match *op {
                                SharedOp::Learn { mac: m, vid, second } => {
                                    let port = own + second as PortId;
                                    let r = fdb.learn(mac(m), vid, port, now, limit);
                                    if matches!(
                                        r,
                                        Learn::Learned | Learn::LearnedEvicting | Learn::Moved
                                    ) {
                                        log.placed.insert((mac(m), vid, port));
                                    }
                                }
                                SharedOp::Lookup { mac: m, vid } => {
                                    if let Some(p) = fdb.lookup(mac(m), vid, now) {
                                        assert!((p as usize) < 2 * 4, "port {p} never used");
                                    }
                                }
                                SharedOp::Remove { mac: m, vid } => {
                                    log.removed += fdb.remove(mac(m), vid) as usize;
                                }
                                SharedOp::FlushOwn => {
                                    log.flushed += fdb.flush(Flush {
                                        port: Some(own),
                                        ..Flush::default()
                                    });
                                }
                            }
                        }
                        log
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let now = clock.load(Relaxed);
        let entries = fdb.entries(now);
        prop_assert_eq!(fdb.len(), entries.len());
        prop_assert!(fdb.len() <= capacity, "len {} > capacity {}", fdb.len(), capacity);

        let learned_total: usize = (0..8).map(|p| fdb.learned_on(p)).sum();
        prop_assert_eq!(learned_total, entries.iter().filter(|e| !e.is_static).count());
        for p in 0..8 {
            prop_assert_eq!(
                fdb.learned_on(p),
                entries.iter().filter(|e| e.port == p).count(),
                "port {}", p
            );
        }

        let placed: BTreeSet<_> = logs.iter().flat_map(|l| l.placed.iter().copied()).collect();
        for e in &entries {
            prop_assert!(
                placed.contains(&(e.mac, e.vlan, e.port)),
                "{:?} is on a port no thread learned it on", e
            );
            prop_assert_eq!(fdb.lookup(e.mac, e.vlan, now), Some(e.port));
        }
        let mut keys: Vec<_> = entries.iter().map(|e| (e.vlan, e.mac)).collect();
        keys.dedup();
        prop_assert_eq!(keys.len(), entries.len(), "duplicate keys");

        // Every insert is counted once and every removal once.
        let s = fdb_counters(&fdb);
        let flushed: usize = logs.iter().map(|l| l.flushed).sum();
        let removed: usize = logs.iter().map(|l| l.removed).sum();
        prop_assert_eq!(
            s.learned as usize,
            fdb.len() + s.evicted as usize + flushed + removed,
            "learned = live + evicted + flushed + removed ({:?})", s
        );

        // The per-port ageing queues hold exactly the live entries: a sweep
        // far in the future removes all of them and leaves nothing behind.
        let live = fdb.len();
        prop_assert_eq!(fdb.expire(now + AGEING), live);
        prop_assert_eq!(fdb.len(), 0);
        prop_assert!(fdb.entries(now).is_empty());
        for p in 0..8 {
            prop_assert_eq!(fdb.learned_on(p), 0);
        }
    }
}

// ---------------------------------------------------------------------------
// 3. decide() on random frames
// ---------------------------------------------------------------------------

/// VLANs the generated ports and tags draw from.
const VIDS: [u16; 4] = [1, 10, 20, 30];

fn vlan_mode() -> impl Strategy<Value = VlanMode> {
    let vid = prop::sample::select(&VIDS[..]);
    prop_oneof![
        vid.clone().prop_map(|vid| VlanMode::Access {
            vid: Vid::new(vid).unwrap()
        }),
        (
            prop::sample::subsequence(&VIDS[..], 0..=VIDS.len()),
            prop::option::of(vid),
        )
            .prop_map(|(allowed, native)| {
                let mut set = VlanSet::default();
                for v in &allowed {
                    set.insert(*v);
                }
                // A trunk needs something; add_port rejects an empty one.
                let native = if allowed.is_empty() && native.is_none() {
                    Some(1)
                } else {
                    native
                };
                VlanMode::Trunk {
                    allowed: set,
                    native: native.map(|n| Vid::new(n).unwrap()),
                }
            }),
    ]
}

/// One port: its configuration and whether it starts up. Most ports learn
/// and flood, as in real configurations.
fn port_config() -> impl Strategy<Value = (PortConfig, bool)> {
    let often = || prop::bool::weighted(0.85);
    let rarely = || prop::bool::weighted(0.2);
    (
        vlan_mode(),
        (often(), often(), often(), often(), rarely(), rarely()),
        prop::option::weighted(0.2, 1..=3usize),
        often(),
    )
        .prop_map(|(vlan, flags, mac_limit, up)| {
            let (learning, flood, mcast_flood, bcast_flood, isolated, hairpin) = flags;
            let cfg = PortConfig {
                name: String::new(),
                vlan,
                flags: PortFlags {
                    learning,
                    flood,
                    mcast_flood,
                    bcast_flood,
                    isolated,
                    hairpin,
                    mac_limit: mac_limit.map(|n| MacLimit::new(n).unwrap()),
                    // Storm control is the dataplane's (per-port meters),
                    // not the core's decision.
                    ..PortFlags::default()
                },
            };
            (cfg, up)
        })
}

/// A MAC for either end of a structured frame: from the pool with weight
/// `pool`, else broadcast, zero, multicast, link-local or random (1 each).
fn frame_mac(pool: u32) -> impl Strategy<Value = Mac> {
    prop_oneof![
        pool => (0..6u8).prop_map(mac),
        1 => Just(Mac::BROADCAST),
        1 => Just(Mac::ZERO),
        1 => any::<[u8; 3]>().prop_map(|b| Mac([0x01, 0x00, 0x5e, b[0] & 0x7f, b[1], b[2]])),
        1 => (0..16u8).prop_map(|x| Mac([0x01, 0x80, 0xc2, 0, 0, x])),
        1 => any::<[u8; 6]>().prop_map(Mac),
    ]
}

fn vid_on_wire() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(&[0u16, 1, 10, 20, 30, 40, 4095][..]),
        1 => 0..4096u16,
    ]
}

/// An Ethernet frame with random MACs, maybe one tag (of either TPID or an
/// unknown one) and maybe cut short, so truncated tags and runts occur.
fn structured_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        frame_mac(8),
        frame_mac(30),
        prop::option::of((
            prop::sample::select(&[0x8100u16, 0x88a8, 0x9100][..]),
            0..8u8,
            any::<bool>(),
            vid_on_wire(),
        )),
        prop::sample::select(&[0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88cc][..]),
        prop::collection::vec(any::<u8>(), 0..60),
        prop::option::weighted(0.15, 0..=20usize),
    )
        .prop_map(|(dst, src, tag, ethertype, payload, cut)| {
            let mut f = Vec::with_capacity(18 + payload.len());
            f.extend_from_slice(&dst.0);
            f.extend_from_slice(&src.0);
            if let Some((tpid, pcp, dei, vid)) = tag {
                let tci = (u16::from(pcp) << 13) | (u16::from(dei) << 12) | vid;
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&tci.to_be_bytes());
            }
            f.extend_from_slice(&ethertype.to_be_bytes());
            f.extend_from_slice(&payload);
            if let Some(n) = cut {
                f.truncate(n);
            }
            f
        })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        3 => structured_frame(),
    ]
}

#[derive(Debug, Clone)]
enum SwitchOp {
    /// A frame on an ingress id (which may be past the last port).
    Frame {
        ingress: PortId,
        bytes: Vec<u8>,
    },
    SetUp {
        port: PortId,
        up: bool,
    },
    Expire,
}

fn switch_op(ports: usize) -> impl Strategy<Value = SwitchOp> {
    let p = ports as PortId;
    prop_oneof![
        12 => (
            prop_oneof![9 => 0..p, 1 => Just(p)],
            any_frame()
        )
            .prop_map(|(ingress, bytes)| SwitchOp::Frame { ingress, bytes }),
        1 => (0..p, prop::bool::weighted(0.7)).prop_map(|(port, up)| SwitchOp::SetUp { port, up }),
        1 => Just(SwitchOp::Expire),
    ]
}

/// A switch with 2..=5 random ports, a few static entries (which may point
/// at a down port or a port outside their VLAN) and a run of operations.
#[derive(Debug, Clone)]
struct Scenario {
    vlan_protocol: u16,
    group_fwd_mask: u16,
    fdb_capacity: usize,
    ports: Vec<(PortConfig, bool)>,
    statics: Vec<(u8, u16, PortId)>,
    ops: Vec<(u64, SwitchOp)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::collection::vec(port_config(), 2..=5).prop_flat_map(|ports| {
        let n = ports.len();
        (
            prop::sample::select(&[0x8100u16, 0x88a8][..]),
            any::<u16>(),
            1..=16usize,
            Just(ports),
            prop::collection::vec(
                (0..6u8, prop::sample::select(&VIDS[..]), 0..n as PortId),
                0..3,
            ),
            prop::collection::vec((0..=30u64, switch_op(n)), 1..60),
        )
            .prop_map(
                |(vlan_protocol, group_fwd_mask, fdb_capacity, ports, statics, ops)| Scenario {
                    vlan_protocol,
                    group_fwd_mask,
                    fdb_capacity,
                    ports,
                    statics,
                    ops,
                },
            )
    })
}

/// Runs a scenario and checks every decision against the port table.
fn run_scenario(sc: &Scenario, vlan_filtering: bool) -> Result<(), TestCaseError> {
    let sw = Switch::new(&SwitchConfig {
        ageing_ms: 200,
        fdb_capacity: sc.fdb_capacity,
        group_fwd_mask: sc.group_fwd_mask,
        vlan_filtering,
        vlan_protocol: sc.vlan_protocol,
        ..SwitchConfig::default()
    });
    let mut cfgs = Vec::new();
    let mut up = Vec::new();
    for (i, (cfg, is_up)) in sc.ports.iter().enumerate() {
        let cfg = PortConfig {
            name: format!("p{i}"),
            ..cfg.clone()
        };
        let id = sw.add_port(cfg.clone()).expect("valid port");
        prop_assert_eq!(id as usize, i);
        sw.set_port_up(id, *is_up);
        cfgs.push(cfg);
        up.push(*is_up);
    }
    for (i, &(m, vid, port)) in sc.statics.iter().enumerate() {
        let vid = if vlan_filtering { vid } else { 1 };
        // Every other one an EVPN entry (a MAC behind a remote VTEP, which
        // local learning takes over).
        if i % 2 == 0 {
            sw.fdb().add_static(mac(m), vid, port);
        } else {
            sw.fdb().add_evpn(mac(m), vid, port);
        }
    }

    let mut now = 0;
    for (dt, op) in &sc.ops {
        now += dt;
        let (ingress, bytes) = match op {
            SwitchOp::SetUp { port, up: u } => {
                sw.set_port_up(*port, *u);
                up[*port as usize] = *u;
                continue;
            }
            SwitchOp::Expire => {
                sw.expire(now);
                continue;
            }
            SwitchOp::Frame { ingress, bytes } => (*ingress, bytes),
        };
        // A trace says what decide will do, and changes nothing.
        let before = sw.fdb().entries(now);
        let t = sw.trace(ingress, bytes, now);
        prop_assert_eq!(&sw.fdb().entries(now), &before, "trace changed the FDB");
        let d = sw.decide(ingress, bytes, now);
        prop_assert_eq!(t.decision, d, "trace disagrees: {:?}", t.steps);
        prop_assert_eq!(
            t.egress.len(),
            d.egress().map_or(0, |e| e.ports.len()),
            "trace's egress list"
        );
        let i = ingress as usize;
        if i >= cfgs.len() || !up[i] {
            prop_assert_eq!(d.drop_reason(), Some(DropReason::PortDown));
            continue;
        }
        if bytes.len() < 14 {
            prop_assert_eq!(d.drop_reason(), Some(DropReason::Runt));
            continue;
        }
        let cfg = &cfgs[i];
        if !cfg.flags.learning {
            prop_assert_eq!(d.learn, Learn::Skipped);
        }
        let Action::Forward(e) = d.action else {
            continue;
        };
        let dst = Mac::from_slice(&bytes[..6]);
        prop_assert!(!e.ports.is_empty(), "forward to nobody: {:?}", d);
        if !cfg.flags.hairpin {
            prop_assert!(
                !e.ports.contains(ingress),
                "back out of the ingress: {:?}",
                d
            );
        }
        if vlan_filtering {
            prop_assert!(cfg.vlan.allows(e.vid), "ingress port not in VLAN {}", e.vid);
        } else {
            prop_assert_eq!(e.vid, 1);
        }
        for p in e.ports.iter() {
            let pi = p as usize;
            prop_assert!(pi < cfgs.len(), "no port {}: {:?}", p, d);
            prop_assert!(up[pi], "port {} is down: {:?}", p, d);
            if vlan_filtering {
                prop_assert!(
                    cfgs[pi].vlan.allows(e.vid),
                    "port {} not in VLAN {}",
                    p,
                    e.vid
                );
                prop_assert_eq!(
                    e.untagged.contains(p),
                    cfgs[pi].vlan.egress_untagged(e.vid),
                    "untagged egress of port {} in VLAN {}",
                    p,
                    e.vid
                );
            }
            if cfg.flags.isolated {
                prop_assert!(!cfgs[pi].flags.isolated, "isolated to isolated: {:?}", d);
            }
            if e.flooded {
                let allowed = if dst.is_broadcast() {
                    cfgs[pi].flags.bcast_flood
                } else if dst.is_multicast() {
                    cfgs[pi].flags.mcast_flood
                } else {
                    cfgs[pi].flags.flood
                };
                prop_assert!(allowed, "flooded to port {} which refuses it", p);
            }
        }
        if !e.flooded {
            prop_assert!(!dst.is_multicast());
            prop_assert_eq!(e.ports.len(), 1);
        }
        // Tag actions are computable for every egress port.
        prop_assert_eq!(e.iter().count(), e.ports.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(160))]

    #[test]
    fn decide_vlan_unaware(sc in scenario()) {
        run_scenario(&sc, false)?;
    }

    #[test]
    fn decide_vlan_filtering(sc in scenario()) {
        run_scenario(&sc, true)?;
    }
}

/// Four fixed ports (access 10, access 20, trunk 10,20 native 30, trunk 20
/// with hairpin), all up, both with and without VLAN filtering.
/// Shared by every case (building a switch per case is slow in debug).
static FIXED: LazyLock<[Switch; 2]> = LazyLock::new(|| {
    [false, true].map(|vlan_filtering| {
        let sw = Switch::new(&SwitchConfig {
            vlan_filtering,
            ..SwitchConfig::default()
        });
        let mut hairpin = PortConfig::new("p3").trunk("20", None);
        hairpin.flags.hairpin = true;
        for cfg in [
            PortConfig::new("p0").access(10),
            PortConfig::new("p1").access(20),
            PortConfig::new("p2").trunk("10,20", Some(30)),
            hairpin,
        ] {
            let id = sw.add_port(cfg).unwrap();
            sw.set_port_up(id, true);
        }
        sw
    })
});

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes: `decide` returns (never panics) and never floods
    /// back out of a non-hairpin ingress.
    #[test]
    fn decide_never_panics_on_bytes(
        ingress in 0..5 as PortId,
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        now in any::<u64>(),
    ) {
        for sw in FIXED.iter() {
            let d = sw.decide(ingress, &bytes, now);
            if let Some(e) = d.egress() {
                prop_assert!(ingress == 3 || !e.ports.contains(ingress));
                prop_assert!(e.ports.iter().all(|p| p < 4));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 4. No allocation per frame
// ---------------------------------------------------------------------------

// The system allocator, which counts an allocation made inside
// `assert_no_alloc(...)` on the calling thread (a maintained crate: no
// `unsafe` allocator of our own).
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

/// Allocations `f` made on this thread.
fn allocations_in(f: impl FnOnce()) -> u32 {
    assert_no_alloc::reset_violation_count();
    assert_no_alloc::assert_no_alloc(f);
    assert_no_alloc::violation_count()
}

/// A 64-byte frame from `src` to `dst`.
fn plain_frame(dst: Mac, src: Mac) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A switch with three ports up, and frames between its hosts (known
/// unicast both ways, a broadcast) once each has been learned.
fn three_hosts() -> (Switch, Vec<(PortId, Vec<u8>)>) {
    let sw = Switch::new(&SwitchConfig::default());
    for p in 0..3 {
        let id = sw.add_port(PortConfig::new(format!("p{p}"))).unwrap();
        sw.set_port_up(id, true);
    }
    let frames = vec![
        (0, plain_frame(mac(2), mac(1))),
        (1, plain_frame(mac(1), mac(2))),
        (2, plain_frame(Mac::BROADCAST, mac(3))),
    ];
    (sw, frames)
}

/// The one-shot `Switch::decide` allocates nothing once the thread has
/// used the switch (and its MACs are learned: learning a new MAC may).
#[test]
fn switch_decide_allocates_nothing() {
    let (sw, frames) = three_hosts();
    for (ingress, f) in &frames {
        sw.decide(*ingress, f, 1);
    }
    let n = allocations_in(|| {
        for now in 2..200 {
            for (ingress, f) in &frames {
                assert!(sw.decide(*ingress, f, now).egress().is_some());
            }
        }
    });
    assert_eq!(n, 0);
}

/// Nor do a worker's views and refreshes, once its cache is made and warm.
#[test]
fn worker_views_allocate_nothing() {
    let (sw, frames) = three_hosts();
    let mut cache = sw.view_cache();
    for now in 1..3 {
        let view = sw.view(&mut cache);
        for (ingress, f) in &frames {
            view.decide(*ingress, f, now);
        }
        drop(view);
        cache.refresh();
    }
    let n = allocations_in(|| {
        for now in 3..200 {
            let view = sw.view(&mut cache);
            for (ingress, f) in &frames {
                assert!(view.decide(*ingress, f, now).egress().is_some());
            }
            drop(view);
            cache.refresh();
        }
    });
    assert_eq!(n, 0);
}
