//! The forwarding core: a pure function of (ingress port, frame, now) plus
//! the FDB it keeps. No fds, no clock, no `unsafe`, no allocation per frame.
//!
//! Rules follow the Linux bridge (net/bridge/br_input.c, br_forward.c,
//! br_vlan.c); see docs/architecture.md for the list.

#![forbid(unsafe_code)]

pub mod decision;
pub mod events;
pub mod fdb;
pub mod mcast;
pub mod ports;
pub mod storm;
pub mod trace;

use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use arc_swap::ArcSwap;

pub use decision::{Action, Decision, DropReason, Egress, IngressTag, TagAction};
pub use fdb::{
    DEFAULT_AGEING_MS, DEFAULT_CAPACITY, EntryInfo, Fdb, FdbCache, FdbReader, FdbStats, Flush,
    Learn, Prediction,
};
pub use ports::{
    AtomicPortSet, MAX_PORTS, MacLimit, PortConfig, PortFlags, PortId, PortSet, StpCost,
    StpPriority, Vid, VlanError, VlanMode, VlanSet,
};

pub use events::{Event, Events, FdbEvent, PortEvent, Watcher};
pub use storm::{StormClass, StormControl, StormMeter};
pub use trace::{Candidate, Step, Trace};

use crate::wire::{Frame, FrameError};

/// Switch-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// Milliseconds after which an unseen learned MAC is forgotten.
    pub ageing_ms: u64,
    /// Most FDB entries (static included).
    pub fdb_capacity: usize,
    /// Bit X set: forward 01:80:C2:00:00:0X. Bits 0 (STP, always forwarded
    /// without STP), 1 (pause) and 2 (LACP) behave as in the kernel: bit 1
    /// is ignored.
    pub group_fwd_mask: u16,
    /// Filter VLANs per port (else every frame is in VLAN 1 and tags pass
    /// through untouched, like a VLAN-unaware Linux bridge).
    pub vlan_filtering: bool,
    /// The tag the switch treats as its VLAN tag: 0x8100 (802.1Q) or 0x88a8
    /// (802.1ad). Frames with the other TPID count as untagged.
    pub vlan_protocol: u16,
    /// IGMP/MLD snooping and the querier.
    pub mcast: crate::mcast::MdbConfig,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            ageing_ms: DEFAULT_AGEING_MS,
            fdb_capacity: DEFAULT_CAPACITY,
            group_fwd_mask: 0,
            vlan_filtering: false,
            vlan_protocol: 0x8100,
            mcast: crate::mcast::MdbConfig::default(),
        }
    }
}

/// The VLAN used for every frame when the switch does not filter VLANs.
pub const UNAWARE_VID: u16 = 1;

/// Immutable port table, swapped whole when the configuration changes.
struct PortTable {
    ports: Vec<Option<PortConfig>>,
    present: PortSet,
    flood: PortSet,
    mcast_flood: PortSet,
    bcast_flood: PortSet,
    isolated: PortSet,
    /// Members of each VLAN (index = VID).
    members: Box<[PortSet]>,
    /// Members that send the VLAN untagged.
    untagged: Box<[PortSet]>,
    filtering: bool,
    vlan_protocol: u16,
}

impl PortTable {
    /// Port `p`'s name (`port P` for an id no port holds).
    fn name(&self, p: PortId) -> String {
        match self.ports.get(p as usize) {
            Some(Some(c)) => c.name.clone(),
            _ => format!("port {p}"),
        }
    }

    fn build(ports: Vec<Option<PortConfig>>, filtering: bool, vlan_protocol: u16) -> PortTable {
        let mut t = PortTable {
            present: PortSet::EMPTY,
            flood: PortSet::EMPTY,
            mcast_flood: PortSet::EMPTY,
            bcast_flood: PortSet::EMPTY,
            isolated: PortSet::EMPTY,
            members: vec![PortSet::EMPTY; 4096].into_boxed_slice(),
            untagged: vec![PortSet::EMPTY; 4096].into_boxed_slice(),
            filtering,
            vlan_protocol,
            ports: Vec::new(),
        };
        for (id, cfg) in ports.iter().enumerate() {
            let Some(c) = cfg else { continue };
            let id = id as PortId;
            t.present.insert(id);
            for (flag, set) in [
                (c.flags.flood, &mut t.flood),
                (c.flags.mcast_flood, &mut t.mcast_flood),
                (c.flags.bcast_flood, &mut t.bcast_flood),
                (c.flags.isolated, &mut t.isolated),
            ] {
                if flag {
                    set.insert(id);
                }
            }
            if filtering {
                match &c.vlan {
                    VlanMode::Access { vid } => {
                        t.members[vid.get() as usize].insert(id);
                        t.untagged[vid.get() as usize].insert(id);
                    }
                    VlanMode::Trunk { allowed, native } => {
                        for v in allowed.iter() {
                            t.members[v as usize].insert(id);
                        }
                        if let Some(n) = native {
                            t.members[n.get() as usize].insert(id);
                            t.untagged[n.get() as usize].insert(id);
                        }
                    }
                }
            } else {
                t.members[UNAWARE_VID as usize].insert(id);
            }
        }
        t.ports = ports;
        t
    }
}

/// Why [`Switch::add_port`], [`Switch::set_port`] or
/// [`Switch::remove_port`] refused a change to the port table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("the switch already has {MAX_PORTS} ports")]
    Full,
    #[error("a port named `{0}` already exists")]
    Duplicate(String),
    #[error("no port with id {0}")]
    NoSuchPort(PortId),
    #[error("port `{port}`: {what}")]
    Invalid { port: String, what: VlanError },
}

/// The forwarding core, shared by every port reader.
pub struct Switch {
    table: ArcSwap<PortTable>,
    /// Moves after every change of `table` ([`TableCache`]).
    table_generation: AtomicU64,
    /// Serialises port-table writers (control plane only).
    writer: parking_lot::Mutex<()>,
    up: AtomicPortSet,
    fdb: Fdb,
    group_fwd_mask: AtomicU16,
    mcast: mcast::McastShared,
    /// Spanning tree runs: BPDUs are punted, and [`Switch::stp`]'s port
    /// states gate learning and forwarding.
    stp_on: AtomicBool,
    /// Ports spanning tree lets learn (learning or forwarding state).
    stp_learning: AtomicPortSet,
    /// Ports spanning tree lets forward.
    stp_forwarding: AtomicPortSet,
    /// Mirror output ports: they carry copies only, no forwarded frame,
    /// and what they receive is dropped.
    mirror_out: AtomicPortSet,
}

/// What spanning tree lets a port do, as the forwarding core sees it
/// (802.1D's port states: discarding covers disabled, blocking and
/// listening).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StpGate {
    /// Neither learns nor forwards (BPDUs still reach the protocol).
    Discarding,
    /// Learns source addresses; forwards nothing.
    Learning,
    /// Learns and forwards.
    Forwarding,
}

impl Switch {
    pub fn new(cfg: &SwitchConfig) -> Switch {
        Switch {
            table: ArcSwap::from_pointee(PortTable::build(
                Vec::new(),
                cfg.vlan_filtering,
                cfg.vlan_protocol,
            )),
            table_generation: AtomicU64::new(0),
            writer: parking_lot::Mutex::new(()),
            up: AtomicPortSet::empty(),
            fdb: Fdb::new(cfg.fdb_capacity, cfg.ageing_ms),
            group_fwd_mask: AtomicU16::new(cfg.group_fwd_mask),
            mcast: mcast::McastShared::new(cfg.mcast.clone()),
            stp_on: AtomicBool::new(false),
            stp_learning: AtomicPortSet::empty(),
            stp_forwarding: AtomicPortSet::empty(),
            mirror_out: AtomicPortSet::empty(),
        }
    }

    /// Turns the spanning-tree gate on or off. On: every port starts
    /// discarding until [`Switch::set_stp_gate`] says otherwise, and
    /// BPDUs (01:80:C2:00:00:00) are punted to the control plane instead
    /// of forwarded. Off: ports forward as their link allows, BPDUs are
    /// forwarded (like a Linux bridge with `stp_state 0`).
    pub fn set_stp(&self, on: bool) {
        if self.stp_on.load(Relaxed) == on {
            return;
        }
        self.stp_learning.store(PortSet::EMPTY);
        self.stp_forwarding.store(PortSet::EMPTY);
        self.stp_on.store(on, Release);
    }

    /// Makes `ports` the mirror output ports: nothing is forwarded to
    /// them, and what they receive is dropped (`mirror_output`). A port
    /// that becomes one loses its learned entries.
    pub fn set_mirror_outputs(&self, ports: PortSet) {
        let old = self.mirror_out.load();
        self.mirror_out.store(ports);
        for p in ports.and_not(old).iter() {
            self.fdb.flush(Flush {
                port: Some(p),
                ..Flush::default()
            });
        }
    }

    pub fn mirror_outputs(&self) -> PortSet {
        self.mirror_out.load()
    }

    pub fn stp(&self) -> bool {
        self.stp_on.load(Relaxed)
    }

    /// Sets what spanning tree lets port `id` do (meaningful while
    /// [`Switch::set_stp`] is on).
    pub fn set_stp_gate(&self, id: PortId, gate: StpGate) {
        self.stp_learning.set(id, gate != StpGate::Discarding);
        self.stp_forwarding.set(id, gate == StpGate::Forwarding);
    }

    /// Port `id`'s spanning-tree gate (Forwarding while spanning tree is off).
    pub fn stp_gate(&self, id: PortId) -> StpGate {
        if !self.stp() || self.stp_forwarding.load().contains(id) {
            StpGate::Forwarding
        } else if self.stp_learning.load().contains(id) {
            StpGate::Learning
        } else {
            StpGate::Discarding
        }
    }

    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    pub fn vlan_filtering(&self) -> bool {
        self.table.load().filtering
    }

    pub fn vlan_protocol(&self) -> u16 {
        self.table.load().vlan_protocol
    }

    pub fn group_fwd_mask(&self) -> u16 {
        self.group_fwd_mask.load(Relaxed)
    }

    pub fn set_group_fwd_mask(&self, mask: u16) {
        self.group_fwd_mask.store(mask, Relaxed);
    }

    /// Turns VLAN filtering on or off (and sets the VLAN protocol).
    pub fn set_vlan_filtering(&self, on: bool, vlan_protocol: u16) {
        let _w = self.writer.lock();
        let cur = self.table.load();
        if cur.filtering != on || cur.vlan_protocol != vlan_protocol {
            self.set_table(PortTable::build(cur.ports.clone(), on, vlan_protocol));
            self.fdb.flush(Flush::default());
        }
    }

    /// Puts a new port table in place (writers hold `writer`).
    fn set_table(&self, table: PortTable) {
        self.mcast.set_ports(&table.ports);
        self.table.store(Arc::new(table));
        self.table_generation.fetch_add(1, Release);
    }

    /// The VLAN ids are valid by their type; the rest of the VLAN rules
    /// are [`VlanMode::check`]'s.
    fn validate(cfg: &PortConfig) -> Result<(), TableError> {
        cfg.vlan.check().map_err(|what| TableError::Invalid {
            port: cfg.name.clone(),
            what,
        })
    }

    /// Adds a port (down until [`Switch::set_port_up`]). Returns its id: the
    /// lowest free one.
    pub fn add_port(&self, cfg: PortConfig) -> Result<PortId, TableError> {
        Self::validate(&cfg)?;
        let _w = self.writer.lock();
        let cur = self.table.load();
        if cur.ports.iter().flatten().any(|p| p.name == cfg.name) {
            return Err(TableError::Duplicate(cfg.name));
        }
        let mut ports = cur.ports.clone();
        let id = match ports.iter().position(Option::is_none) {
            Some(i) => i,
            None if ports.len() < MAX_PORTS => {
                ports.push(None);
                ports.len() - 1
            }
            None => return Err(TableError::Full),
        };
        ports[id] = Some(cfg);
        // A free id may still be marked up (a reader of the port that held
        // it came up after its removal): the new port starts down.
        self.up.set(id as PortId, false);
        self.set_table(PortTable::build(ports, cur.filtering, cur.vlan_protocol));
        self.port_event(id as PortId, PortEvent::Added);
        Ok(id as PortId)
    }

    /// Replaces a port's configuration in place. Learned entries in VLANs
    /// the port left are flushed.
    pub fn set_port(&self, id: PortId, cfg: PortConfig) -> Result<(), TableError> {
        Self::validate(&cfg)?;
        let _w = self.writer.lock();
        let cur = self.table.load();
        let Some(Some(old)) = cur.ports.get(id as usize) else {
            return Err(TableError::NoSuchPort(id));
        };
        if cur
            .ports
            .iter()
            .enumerate()
            .any(|(i, p)| i != id as usize && p.as_ref().is_some_and(|p| p.name == cfg.name))
        {
            return Err(TableError::Duplicate(cfg.name));
        }
        let vlan_changed = old.vlan != cfg.vlan;
        let learning_off = old.flags.learning && !cfg.flags.learning;
        let mut ports = cur.ports.clone();
        ports[id as usize] = Some(cfg);
        self.set_table(PortTable::build(ports, cur.filtering, cur.vlan_protocol));
        if vlan_changed || learning_off {
            self.fdb.flush(Flush {
                port: Some(id),
                ..Flush::default()
            });
        }
        Ok(())
    }

    /// Removes a port and every FDB entry (static too) pointing at it.
    pub fn remove_port(&self, id: PortId) -> Result<PortConfig, TableError> {
        let _w = self.writer.lock();
        let cur = self.table.load();
        let Some(Some(old)) = cur.ports.get(id as usize) else {
            return Err(TableError::NoSuchPort(id));
        };
        let old = old.clone();
        let mut ports = cur.ports.clone();
        ports[id as usize] = None;
        self.up.set(id, false);
        self.set_stp_gate(id, StpGate::Discarding);
        self.set_table(PortTable::build(ports, cur.filtering, cur.vlan_protocol));
        self.forget_port(id);
        self.port_event_named(id, &old.name, PortEvent::Gone);
        Ok(old)
    }

    /// Puts a whole port table in place (index = port id), as the port
    /// registry derives it from each snapshot. Learned entries of a port
    /// whose VLANs changed or that stopped learning are flushed; a port
    /// that is gone (or whose id another port took) goes down and loses
    /// every entry, static ones too; their ids are returned. A new port
    /// starts down (the registry sets it up from its link). A port's
    /// settings are checked where they are made (config, control
    /// requests), not here.
    pub fn install(&self, ports: impl IntoIterator<Item = Option<PortConfig>>) -> Vec<PortId> {
        let _w = self.writer.lock();
        let cur = self.table.load();
        let ports: Vec<Option<PortConfig>> = ports.into_iter().take(MAX_PORTS).collect();
        let mut gone = Vec::new();
        let mut changed = Vec::new();
        for (i, old) in cur.ports.iter().enumerate() {
            let Some(old) = old else { continue };
            match ports.get(i).and_then(Option::as_ref) {
                Some(new) if new.name == old.name => {
                    if new.vlan != old.vlan || (old.flags.learning && !new.flags.learning) {
                        changed.push(i as PortId);
                    }
                }
                _ => gone.push(i as PortId),
            }
        }
        for &id in &gone {
            self.up.set(id, false);
            self.set_stp_gate(id, StpGate::Discarding);
        }
        let mut added = Vec::new();
        for (i, new) in ports.iter().enumerate() {
            let Some(new) = new else { continue };
            let old = cur.ports.get(i).and_then(Option::as_ref);
            // As in add_port: a free id may still be marked up.
            if old.is_none() {
                self.up.set(i as PortId, false);
            }
            if old.is_none_or(|o| o.name != new.name) {
                added.push((i as PortId, new.name.clone()));
            }
        }
        self.set_table(PortTable::build(ports, cur.filtering, cur.vlan_protocol));
        for &id in &gone {
            self.forget_port(id);
            if let Some(Some(old)) = cur.ports.get(id as usize) {
                self.port_event_named(id, &old.name, PortEvent::Gone);
            }
        }
        for (id, name) in added {
            self.port_event_named(id, &name, PortEvent::Added);
        }
        for id in changed {
            self.fdb.flush(Flush {
                port: Some(id),
                ..Flush::default()
            });
        }
        gone
    }

    /// Removes every FDB entry (static ones too) of port `id`, which is no
    /// longer in the table (the port registry calls it again once no
    /// worker reads the port: a reader still using the old table may have
    /// learned for it after [`Switch::install`] flushed it).
    pub fn forget_port(&self, id: PortId) {
        self.fdb.flush(Flush {
            port: Some(id),
            vlan: None,
            include_static: true,
        });
    }

    /// Marks a port up or down. Going down flushes its learned entries,
    /// like the kernel does when a bridge port's link goes down.
    pub fn set_port_up(&self, id: PortId, up: bool) {
        let was = self.up.swap(id, up);
        if was != up {
            self.port_event(id, if up { PortEvent::Up } else { PortEvent::Down });
        }
        self.mcast.set_port_up(id, up);
        if !up {
            self.fdb.flush(Flush {
                port: Some(id),
                ..Flush::default()
            });
        }
    }

    /// The switch's event watchers ([`events`]).
    pub fn events(&self) -> &Events {
        self.fdb.events()
    }

    fn port_event(&self, id: PortId, event: PortEvent) {
        self.events().emit(|| Event::Port {
            event,
            port: id,
            name: self.table.load().name(id),
        });
    }

    fn port_event_named(&self, id: PortId, name: &str, event: PortEvent) {
        self.events().emit(|| Event::Port {
            event,
            port: id,
            name: name.to_string(),
        });
    }

    pub fn port_up(&self, id: PortId) -> bool {
        self.up.load().contains(id)
    }

    /// The configuration of port `id`.
    pub fn port(&self, id: PortId) -> Option<PortConfig> {
        self.table.load().ports.get(id as usize)?.clone()
    }

    pub fn port_id(&self, name: &str) -> Option<PortId> {
        self.table
            .load()
            .ports
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.name == name))
            .map(|i| i as PortId)
    }

    /// Ages out learned MACs; call about once a second. Returns how many.
    pub fn expire(&self, now: u64) -> usize {
        self.fdb.expire(now)
    }

    /// Runs the multicast timers (memberships, routers, queriers); call
    /// every 100 ms to 1 s. Returns the frames the switch's own querier
    /// wants sent, each out of one port as it is.
    pub fn mcast_tick(&self, now: u64) -> Vec<crate::mcast::Outgoing> {
        self.mcast.tick(now)
    }

    /// Applies new snooping and querier settings.
    pub fn set_mcast_config(&self, cfg: crate::mcast::MdbConfig, now: u64) {
        self.mcast.set_config(cfg, now);
    }

    pub fn mcast_config(&self) -> crate::mcast::MdbConfig {
        self.mcast.config()
    }

    /// Every group membership (`mdb show`).
    pub fn mdb_entries(&self, now: u64) -> Vec<crate::mcast::MemberInfo> {
        self.mcast.entries(now)
    }

    /// Router ports and queriers (`mdb router`).
    pub fn mdb_routers(
        &self,
        now: u64,
    ) -> (
        Vec<crate::mcast::RouterInfo>,
        Vec<crate::mcast::QuerierInfo>,
    ) {
        self.mcast.routers(now)
    }

    /// Snooping counters and gauges for metrics.
    pub fn mcast_stats(&self, now: u64) -> mcast::McastStats {
        self.mcast.stats(now)
    }

    /// Decides what to do with `frame`, received on `ingress` at `now`
    /// (milliseconds on any monotonic clock the caller keeps).
    ///
    /// For a frame now and then: it allocates and keeps nothing. A reader
    /// of many frames keeps a [`ViewCache`] and takes [`Switch::view`]s.
    pub fn decide(&self, ingress: PortId, frame: &[u8], now: u64) -> Decision {
        let table = self.table.load();
        self.view_with(&table, self.fdb.reader())
            .decide(ingress, frame, now)
    }

    /// Decides `frame` as [`Switch::decide`] would, without its side
    /// effects (no learning, no counters, no multicast state), and says
    /// how: see [`trace`].
    pub fn trace(&self, ingress: PortId, frame: &[u8], now: u64) -> Trace {
        let table = self.table.load();
        let mut steps = trace::Steps::default();
        let decision = self
            .view_with(&table, self.fdb.reader())
            .decide_with(ingress, frame, now, &mut steps);
        let egress = decision
            .egress()
            .map(|e| e.iter().map(|(p, act)| (table.name(p), act)).collect())
            .unwrap_or_default();
        Trace {
            decision,
            steps: steps.0,
            egress,
        }
    }

    /// What a reader keeps between views: see [`Switch::view`].
    pub fn view_cache(&self) -> ViewCache<'_> {
        // The generation first: a table stored after it is seen as a
        // change by the next view, never missed.
        let generation = self.table_generation.load(Acquire);
        ViewCache {
            generation,
            table: self.table.load_full(),
            fdb: self.fdb.cache(),
        }
    }

    /// A view for deciding a batch of frames: it reads the port states
    /// once, instead of per frame, and takes the port table and the FDB
    /// cache ([`FdbCache`]) from `cache` — the table renewed first if it
    /// changed since. A reader that keeps its cache (a dataplane worker)
    /// touches no shared count and no epoch per view while the table stays
    /// as it is; it calls [`ViewCache::refresh`] between views. Port
    /// changes made while a view lives apply to the next view.
    pub fn view<'v>(&'v self, cache: &'v mut ViewCache<'_>) -> SwitchView<'v> {
        let generation = self.table_generation.load(Acquire);
        if generation != cache.generation {
            cache.generation = generation;
            cache.table = self.table.load_full();
        }
        let cache: &'v ViewCache<'_> = cache;
        self.view_with(&cache.table, cache.fdb.reader())
    }

    fn view_with<'v>(&'v self, table: &'v PortTable, fdb: FdbReader<'v>) -> SwitchView<'v> {
        let stp = self.stp_on.load(Acquire).then(|| StpView {
            learning: self.stp_learning.load(),
            forwarding: self.stp_forwarding.load(),
        });
        let mirror_out = self.mirror_out.load();
        SwitchView {
            mcast: &self.mcast,
            table,
            up: std::cell::Cell::new(self.up.load().and_not(mirror_out)),
            mirror_out,
            fdb,
            group_fwd_mask: self.group_fwd_mask.load(Relaxed),
            stp,
        }
    }
}

/// What a reader of the switch keeps between views ([`Switch::view`]): a
/// copy of the port table and an [`FdbCache`]. It belongs to the thread
/// that made it.
pub struct ViewCache<'s> {
    generation: u64,
    table: Arc<PortTable>,
    fdb: FdbCache<'s>,
}

impl ViewCache<'_> {
    /// [`FdbCache::refresh`]. Call it between views (not while one lives):
    /// after each batch, and at least every few hundred milliseconds.
    pub fn refresh(&mut self) {
        self.fdb.refresh();
    }
}

/// See [`Switch::view`].
pub struct SwitchView<'a> {
    mcast: &'a mcast::McastShared,
    table: &'a PortTable,
    /// The ports up when the view was made, plus those that came up since
    /// ([`SwitchView::port_came_up`]), less the mirror outputs.
    up: std::cell::Cell<PortSet>,
    mirror_out: PortSet,
    fdb: FdbReader<'a>,
    group_fwd_mask: u16,
    /// The spanning-tree port states when the view was made; `None` while
    /// spanning tree is off.
    stp: Option<StpView>,
}

/// Spanning-tree port states as a view reads them.
#[derive(Clone, Copy)]
struct StpView {
    learning: PortSet,
    forwarding: PortSet,
}

impl SwitchView<'_> {
    /// Port `id` came up while this view lives (a frame arrived on a link
    /// that was down): the frame that brought it up is decided as from an
    /// up port, not dropped as `port_down`.
    pub fn port_came_up(&self, id: PortId) {
        if self.mirror_out.contains(id) {
            return;
        }
        let mut up = self.up.get();
        up.insert(id);
        self.up.set(up);
    }

    /// Port `id`'s storm-control limits (none for an unknown port).
    #[inline]
    pub fn storm_control(&self, id: PortId) -> StormControl {
        match self.table.ports.get(id as usize) {
            Some(Some(p)) => p.flags.storm_control,
            _ => StormControl::OFF,
        }
    }

    /// The VLAN protocol (TPID) pushed tags use.
    pub fn vlan_protocol(&self) -> u16 {
        self.table.vlan_protocol
    }

    /// See [`Switch::decide`].
    pub fn decide(&self, ingress: PortId, frame: &[u8], now: u64) -> Decision {
        self.decide_with(ingress, frame, now, &mut trace::Live)
    }

    /// The forwarding core, telling `obs` each step (see [`trace`]).
    #[inline(always)]
    fn decide_with<O: trace::Observer>(
        &self,
        ingress: PortId,
        frame: &[u8],
        now: u64,
        obs: &mut O,
    ) -> Decision {
        use trace::Step;
        let table = self.table;
        let up = self.up.get();
        let Some(Some(port)) = table.ports.get(ingress as usize) else {
            return Decision::drop(DropReason::PortDown);
        };
        obs.note(|| Step::Ingress {
            port: port.name.clone(),
            up: up.contains(ingress),
        });
        if !up.contains(ingress) {
            return Decision::drop(if self.mirror_out.contains(ingress) {
                DropReason::MirrorOutput
            } else {
                DropReason::PortDown
            });
        }
        let f = match Frame::parse(frame) {
            Ok(f) => f,
            Err(e) => {
                obs.note(|| Step::Parse {
                    src: None,
                    dst: None,
                    ethertype: None,
                    tag_vid: None,
                    length: frame.len(),
                    error: Some(match e {
                        FrameError::Runt => "runt",
                        FrameError::TruncatedTag => "truncated_tag",
                    }),
                });
                return Decision::drop(match e {
                    FrameError::Runt => DropReason::Runt,
                    FrameError::TruncatedTag => DropReason::TruncatedTag,
                });
            }
        };
        let src = f.src();
        let dst = f.dst();
        obs.note(|| Step::Parse {
            src: Some(src),
            dst: Some(dst),
            ethertype: Some(f.inner_ethertype().into()),
            tag_vid: f.tag().map(|t| t.vid),
            length: frame.len(),
            error: None,
        });
        obs.note(|| Step::Source {
            valid: src.is_valid_source(),
        });
        if !src.is_valid_source() {
            return Decision::drop(DropReason::InvalidSource);
        }
        let link_local = dst.link_local_group();
        if link_local == Some(1) {
            obs.note(|| Step::LinkLocal {
                group: 1,
                verdict: "pause frames are never forwarded",
            });
            return Decision::drop(DropReason::PauseFrame);
        }
        // With spanning tree on, BPDUs go to the protocol whatever the
        // port's state; other frames need a state that learns
        // (br_handle_frame).
        if let Some(stp) = &self.stp {
            if link_local == Some(0) {
                obs.note(|| Step::LinkLocal {
                    group: 0,
                    verdict: "a BPDU: to spanning tree, not forwarded",
                });
                return Decision {
                    action: Action::Punt,
                    learn: Learn::Skipped,
                };
            }
            obs.note(|| Step::SpanningTree {
                state: if stp.forwarding.contains(ingress) {
                    "forwarding"
                } else if stp.learning.contains(ingress) {
                    "learning"
                } else {
                    "discarding"
                },
            });
            if !stp.learning.contains(ingress) {
                return Decision::drop(DropReason::StpBlocked);
            }
        }

        // Ingress VLAN classification and filtering.
        let (vid, ingress_tag) = if table.filtering {
            let tag = f.tag().filter(|t| t.tpid == table.vlan_protocol);
            let (vid, kind) = match tag {
                None => (port.vlan.pvid(), IngressTag::Untagged),
                Some(t) if t.vid == 0 => (port.vlan.pvid(), IngressTag::Priority),
                Some(t) => (Some(t.vid), IngressTag::Tagged),
            };
            let member =
                vid.filter(|&v| v <= ports::MAX_VID && table.members[v as usize].contains(ingress));
            obs.note(|| Step::Vlan {
                filtering: true,
                vid,
                arrived: match kind {
                    IngressTag::Untagged => "untagged",
                    IngressTag::Priority => "priority",
                    IngressTag::Tagged => "tagged",
                },
                member: member.is_some(),
            });
            match member {
                Some(v) => (v, kind),
                None => return Decision::drop(DropReason::VlanIngress),
            }
        } else {
            obs.note(|| Step::Vlan {
                filtering: false,
                vid: Some(UNAWARE_VID),
                arrived: "untagged",
                member: true,
            });
            (UNAWARE_VID, IngressTag::Untagged)
        };

        let fdb = &self.fdb;
        // A dry run learns nothing, so its lookup below is told what the
        // learning would have changed: the source is on this port now, and
        // an evicted entry is gone.
        let mut dry_learned = None;
        let learn = if port.flags.learning {
            let limit = port.flags.mac_limit.map(MacLimit::get);
            if O::DRY {
                let p = fdb.predict(src, vid, ingress, now, limit);
                dry_learned = Some(p);
                p.learn
            } else {
                fdb.learn(src, vid, ingress, now, limit)
            }
        } else {
            Learn::Skipped
        };
        obs.note(|| Step::Learn {
            outcome: learn.trace_word(),
        });
        let decided = |action| Decision { action, learn };
        // A learning port learns, then drops (br_handle_frame_finish).
        let link_up = up;
        let mut up = up;
        if let Some(stp) = &self.stp {
            if !stp.forwarding.contains(ingress) {
                return decided(Action::Drop(DropReason::StpBlocked));
            }
            up = up.and(stp.forwarding);
        }

        if let Some(group) = link_local {
            // :00 (STP) is forwarded while the switch runs no STP; the others
            // only when the group forward mask allows them.
            let allowed = group == 0 || self.group_fwd_mask & (1 << group) != 0;
            obs.note(|| Step::LinkLocal {
                group,
                verdict: match (group, allowed) {
                    (0, _) => "a BPDU, forwarded: spanning tree is off",
                    (_, true) => "forwarded: the group forward mask allows it",
                    (_, false) => "dropped: not in the group forward mask",
                },
            });
            if !allowed {
                return decided(Action::Drop(DropReason::LinkLocal));
            }
        }

        let hairpin = port.flags.hairpin;
        let ingress_isolated = port.flags.isolated;
        let usable = table.members[vid as usize].and(up);
        let egress = |ports: PortSet, flooded| {
            Action::Forward(Egress {
                ports,
                untagged: table.untagged[vid as usize],
                vid,
                ingress_tag,
                filtering: table.filtering,
                flooded,
            })
        };
        let name = |p: PortId| table.name(p);
        let why = |to, to_is, kept| trace::Why {
            ports: &table.ports,
            ingress,
            vid,
            up: link_up,
            mirror_out: self.mirror_out,
            stp_forwarding: self.stp.map(|s| s.forwarding),
            members: table.members[vid as usize],
            isolated: table.isolated,
            to,
            to_is,
            kept,
        };

        if !dst.is_multicast() {
            let mut out = fdb.lookup(dst, vid, now);
            if let Some(p) = dry_learned {
                if p.evicts == Some((dst, vid)) {
                    out = None;
                }
                if dst == src && !matches!(p.learn, Learn::Refused | Learn::Skipped) {
                    out = Some(ingress);
                }
            }
            obs.note(|| {
                let e = out.and_then(|_| fdb.entry(dst, vid, now));
                Step::Lookup {
                    dst,
                    vid,
                    result: if out.is_some() { "hit" } else { "miss" },
                    port: out.map(name),
                    age_ms: e.as_ref().map(|e| e.age_ms),
                    is_static: e.as_ref().map(|e| e.is_static),
                }
            });
            if let Some(out) = out {
                let verdict = if out == ingress && !hairpin {
                    Some(DropReason::SameSegment)
                } else if ingress_isolated && table.isolated.contains(out) {
                    Some(DropReason::Isolated)
                } else if !usable.contains(out) {
                    Some(DropReason::NoEgress)
                } else {
                    None
                };
                let kept = if verdict.is_none() {
                    PortSet::single(out)
                } else {
                    PortSet::EMPTY
                };
                obs.note(|| Step::Candidates {
                    ports: why(PortSet::single(out), "the FDB's port", kept).explain(),
                });
                return match verdict {
                    Some(r) => decided(Action::Drop(r)),
                    None => decided(egress(kept, false)),
                };
            }
        } else {
            obs.note(|| Step::Lookup {
                dst,
                vid,
                result: "multicast",
                port: None,
                age_ms: None,
                is_static: None,
            });
        }

        // Flooded, or sent to a multicast group's ports: to those of
        // `to` that can take it, never back to the ingress port (unless
        // hairpin), never from an isolated port to another.
        let spread = |obs: &mut O, to: PortSet, to_is: &'static str| {
            let mut out = usable.and(to);
            if !hairpin {
                out.remove(ingress);
            }
            if ingress_isolated {
                out = out.and_not(table.isolated);
            }
            obs.note(|| Step::Candidates {
                ports: why(to, to_is, out).explain(),
            });
            if out.is_empty() {
                return decided(Action::Drop(DropReason::NoEgress));
            }
            decided(egress(out, true))
        };

        if dst.is_multicast() && !dst.is_broadcast() {
            let route = if O::DRY {
                self.mcast.route::<true>(ingress, &f, vid, now)
            } else {
                self.mcast.route::<false>(ingress, &f, vid, now)
            };
            obs.note(|| Step::Multicast {
                route: match route {
                    mcast::Route::Flood => "flood",
                    mcast::Route::Ports(_) => "ports",
                    mcast::Route::Malformed => "malformed",
                    mcast::Route::Full => "mdb_full",
                },
                ports: match route {
                    mcast::Route::Ports(to) => to.iter().map(name).collect(),
                    _ => Vec::new(),
                },
            });
            match route {
                mcast::Route::Flood => {}
                mcast::Route::Ports(to) => {
                    return spread(obs, to, "a member or router port of the group");
                }
                mcast::Route::Malformed => {
                    return decided(Action::Drop(DropReason::McastMalformed));
                }
                mcast::Route::Full => return decided(Action::Drop(DropReason::MdbFull)),
            }
        }

        let (allowed, class, flag, to_is) = if dst.is_broadcast() {
            (
                table.bcast_flood,
                "broadcast",
                "bcast-flood",
                "a bcast-flood port",
            )
        } else if dst.is_multicast() {
            (
                table.mcast_flood,
                "multicast",
                "mcast-flood",
                "a mcast-flood port",
            )
        } else {
            (table.flood, "unknown_unicast", "flood", "a flood port")
        };
        obs.note(|| Step::Flood { class, flag });
        spread(obs, allowed, to_is)
    }
}

#[cfg(test)]
mod tests;
