//! The multicast database (MDB) and the switch's own querier: IGMP and
//! MLD snooping as the Linux bridge does it (net/bridge/br_multicast.c),
//! as a pure state machine.
//!
//! # What it holds
//! - Groups: (group IP address, VLAN) to member ports, each with the time
//!   its membership runs out (`mcast-membership-interval` after the last
//!   report). Keyed by IP address, not MAC: two groups sharing a MAC are
//!   two entries. 224.0.0.0/24 and ff02::1 are never entered (always
//!   flooded). At most `hash_max` entries (4096 by default, the kernel's
//!   `hash_max`); a report for a new group beyond it is refused and
//!   counted. (The kernel turns snooping off for the whole bridge there;
//!   a guest could then undo everyone's snooping, so this refuses instead.)
//! - Router ports per family (IPv4, IPv6): a port where a querier was
//!   elected, or a PIM hello or multicast router advertisement arrived,
//!   for `querier-interval`; or configured (`mcast-router`: off / auto /
//!   on, the kernel's `multicast_router` 0 / 1 / 2).
//! - The querier per family: the elected address (lowest wins; an IPv4
//!   querier of 0.0.0.0 loses to anyone, as in the kernel), the
//!   other-querier-present timer and the delay after the first query during
//!   which frames still flood (hosts have not answered yet).
//! - The switch's own querier (`mcast-querier`): per port, a general query
//!   when the port comes up, `startup-query-count` of them
//!   `query-interval / 4` apart, then every `query-interval`; silent while
//!   another querier is present; on a leave (no fast leave, no other
//!   querier) one group-specific query out of that port.
//!
//! # Pure
//! No clock and no I/O: every call takes `now` (milliseconds on the
//! caller's monotonic clock). Frames the querier wants sent are queued
//! ([`Mdb::take_outbox`]); the groups whose members changed are queued too
//! ([`Mdb::take_changes`]) so the forwarding core can publish them.
//!
//! # Simplifications
//! IGMPv3 and MLDv2 reports are handled as the kernel does with
//! `mcast_igmp_version 2` / `mcast_mld_version 1` (its default): each
//! record joins the group (any-source), except an empty INCLUDE, which is
//! a leave. Source lists are not kept, also when the querier speaks v3/v2.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::switch::{MAX_PORTS, PortId, PortSet};
use crate::wire::Mac;
use crate::wire::igmp::{self, Message, Query, QuerySpec, Version, record};

/// The kernel's BR_MULTICAST_DEFAULT_HASH_MAX.
pub const DEFAULT_HASH_MAX: usize = 4096;

/// A multicast group in one VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub group: IpAddr,
    pub vid: u16,
}

/// Whether a port leads to a multicast router (`mcast-router`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterMode {
    /// Never a router port.
    Off,
    /// A router port while queries (or PIM hellos) arrive on it.
    #[default]
    Auto,
    /// Always a router port.
    On,
}

impl RouterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RouterMode::Off => "off",
            RouterMode::Auto => "auto",
            RouterMode::On => "on",
        }
    }
}

impl std::str::FromStr for RouterMode {
    type Err = String;
    fn from_str(s: &str) -> Result<RouterMode, String> {
        match s {
            "off" | "0" => Ok(RouterMode::Off),
            "auto" | "1" => Ok(RouterMode::Auto),
            "on" | "2" => Ok(RouterMode::On),
            _ => Err(format!("`{s}`: use off, auto or on")),
        }
    }
}

impl std::fmt::Display for RouterMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Snooping and querier settings; defaults are the kernel's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdbConfig {
    pub snooping: bool,
    pub querier: bool,
    pub query_interval_ms: u64,
    pub query_response_interval_ms: u64,
    pub membership_interval_ms: u64,
    /// Other-querier-present interval, and how long a learned router port
    /// lasts.
    pub querier_interval_ms: u64,
    pub startup_query_count: u32,
    pub startup_query_interval_ms: u64,
    pub last_member_count: u32,
    pub last_member_interval_ms: u64,
    /// 2 or 3.
    pub igmp_version: u8,
    /// 1 or 2.
    pub mld_version: u8,
    /// Source of the switch's IGMP queries (the kernel's: 0.0.0.0).
    pub source4: Ipv4Addr,
    /// Source of the switch's MLD queries: link-local; by default the
    /// EUI-64 address of `mac`.
    pub source6: Option<Ipv6Addr>,
    /// Source MAC of the switch's queries.
    pub mac: Mac,
    pub hash_max: usize,
}

impl Default for MdbConfig {
    fn default() -> Self {
        MdbConfig {
            snooping: true,
            querier: false,
            query_interval_ms: 125_000,
            query_response_interval_ms: 10_000,
            membership_interval_ms: 260_000,
            querier_interval_ms: 255_000,
            startup_query_count: 2,
            startup_query_interval_ms: 125_000 / 4,
            last_member_count: 2,
            last_member_interval_ms: 1_000,
            igmp_version: 2,
            mld_version: 1,
            source4: Ipv4Addr::UNSPECIFIED,
            source6: None,
            mac: Mac([0x02, 0, 0, 0, 0, 1]),
            hash_max: DEFAULT_HASH_MAX,
        }
    }
}

impl MdbConfig {
    /// The MLD query source in use.
    pub fn source6(&self) -> Ipv6Addr {
        self.source6.unwrap_or_else(|| link_local_of(self.mac))
    }

    fn lmqt(&self) -> u64 {
        self.last_member_count as u64 * self.last_member_interval_ms
    }
}

/// fe80::/64 with the modified EUI-64 interface id of `mac`.
pub fn link_local_of(mac: Mac) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 2, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// 0 for IPv4, 1 for IPv6.
pub fn family(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => 1,
    }
}

/// Groups that are never snooped: 224.0.0.0/24 and ff02::1.
pub fn always_flooded(g: &IpAddr) -> bool {
    match g {
        IpAddr::V4(a) => igmp::ipv4_local_multicast(*a),
        IpAddr::V6(a) => *a == igmp::ALL_NODES,
    }
}

#[derive(Debug, Clone, Copy)]
struct Member {
    port: PortId,
    expires: u64,
    version: Version,
}

#[derive(Debug, Clone, Copy, Default)]
struct PortState {
    mode: RouterMode,
    fast_leave: bool,
    /// Learned router port until then (0: not).
    router_until: [u64; 2],
    /// The port's next own general query.
    next_query: [Option<u64>; 2],
    startup_sent: [u32; 2],
}

#[derive(Debug, Clone, Copy)]
struct Querier {
    addr: IpAddr,
    port: Option<PortId>,
    /// Another querier is present until then (0: none).
    other_until: u64,
    /// Until then frames flood although a querier is known.
    delay_until: u64,
}

/// A frame the querier wants sent out of `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub port: PortId,
    pub frame: Vec<u8>,
}

/// Why a message was refused (the frame carrying it is dropped, as the
/// kernel drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A new group would pass `hash_max`.
    Full,
    /// A group record that does not fit.
    BadRecord,
}

/// Counters the MDB keeps (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MdbStats {
    /// Reports refused because the MDB was full.
    pub full: u64,
    /// Queries the switch's querier sent (frames).
    pub queries_sent: u64,
}

/// What forwarding needs to know beyond group members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forwarding {
    pub snooping: bool,
    pub own_querier: bool,
    pub other_until: [u64; 2],
    pub delay_until: [u64; 2],
    pub routers: [PortSet; 2],
}

impl Forwarding {
    /// The kernel's br_multicast_querier_exists for family `f`.
    pub fn querier_exists(&self, f: usize, now: u64) -> bool {
        now >= self.delay_until[f] && (self.own_querier || now < self.other_until[f])
    }
}

/// One membership as `mdb show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub group: IpAddr,
    pub vid: u16,
    pub port: PortId,
    pub remaining_ms: u64,
    /// The message that last refreshed it: igmpv2, igmpv3, mldv1…
    pub version: String,
}

/// One router port as `mdb router` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInfo {
    pub port: PortId,
    /// "ipv4" or "ipv6".
    pub family: String,
    /// off / auto / on.
    pub mode: String,
    /// Time left of a learned router port; none when configured on.
    pub remaining_ms: Option<u64>,
}

/// The querier of one family as `mdb router` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerierInfo {
    pub family: String,
    /// The elected querier's address (the switch's own source when it
    /// queries itself).
    pub address: Option<IpAddr>,
    /// The port it was heard on; none for the switch itself.
    pub port: Option<PortId>,
    /// Time left of the other-querier-present timer.
    pub other_remaining_ms: Option<u64>,
    /// Whether forwarding treats a querier as present.
    pub present: bool,
}

/// The multicast database. See the module documentation.
#[derive(Debug)]
pub struct Mdb {
    cfg: MdbConfig,
    groups: HashMap<GroupKey, Vec<Member>>,
    ports: Vec<PortState>,
    up: PortSet,
    querier: [Querier; 2],
    outbox: Vec<Outgoing>,
    changes: Vec<GroupKey>,
    fwd_changed: bool,
    stats: MdbStats,
}

const ZERO4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const ZERO6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

impl Mdb {
    pub fn new(cfg: MdbConfig, now: u64) -> Mdb {
        let mut m = Mdb {
            cfg: MdbConfig::default(),
            groups: HashMap::new(),
            ports: vec![PortState::default(); MAX_PORTS],
            up: PortSet::EMPTY,
            querier: [
                Querier {
                    addr: ZERO4,
                    port: None,
                    other_until: 0,
                    delay_until: 0,
                },
                Querier {
                    addr: ZERO6,
                    port: None,
                    other_until: 0,
                    delay_until: 0,
                },
            ],
            outbox: Vec::new(),
            changes: Vec::new(),
            fwd_changed: true,
            stats: MdbStats::default(),
        };
        m.cfg.querier = false;
        m.set_config(cfg, now);
        m
    }

    pub fn config(&self) -> &MdbConfig {
        &self.cfg
    }

    pub fn stats(&self) -> MdbStats {
        self.stats
    }

    /// Number of (group, VLAN) entries.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Applies new settings. Turning snooping off forgets every group and
    /// learned router; turning the querier on starts it as the kernel's
    /// br_multicast_set_querier does (frames keep flooding for a query
    /// response interval first, unless another querier is present).
    pub fn set_config(&mut self, cfg: MdbConfig, now: u64) {
        let querier_on = cfg.querier && !self.cfg.querier;
        let snooping_off = !cfg.snooping && self.cfg.snooping;
        self.cfg = cfg;
        if snooping_off {
            self.flush(now);
        }
        if querier_on {
            for f in 0..2 {
                if !self.other_present(f, now) {
                    self.querier[f].delay_until = now + self.cfg.query_response_interval_ms;
                }
                self.start_querier(f, now);
            }
        }
        self.fwd_changed = true;
    }

    fn flush(&mut self, _now: u64) {
        self.changes.extend(self.groups.keys().copied());
        self.groups.clear();
        for p in self.ports.iter_mut() {
            p.router_until = [0; 2];
        }
        for q in self.querier.iter_mut() {
            q.other_until = 0;
            q.delay_until = 0;
        }
        self.fwd_changed = true;
    }

    /// Sets a port's router mode and fast leave.
    pub fn set_port(&mut self, port: PortId, mode: RouterMode, fast_leave: bool) {
        let Some(p) = self.ports.get_mut(port as usize) else {
            return;
        };
        if p.mode != mode {
            p.mode = mode;
            if mode != RouterMode::Auto {
                p.router_until = [0; 2];
            }
            self.fwd_changed = true;
        }
        p.fast_leave = fast_leave;
    }

    /// A port came up or went down. Up: its own startup queries begin.
    /// Down (or removed): its memberships and learned router state go.
    pub fn set_port_up(&mut self, port: PortId, up: bool, now: u64) {
        if port as usize >= MAX_PORTS || self.up.contains(port) == up {
            return;
        }
        let p = &mut self.ports[port as usize];
        if up {
            self.up.insert(port);
            p.next_query = [Some(now); 2];
            p.startup_sent = [0; 2];
        } else {
            self.up.remove(port);
            p.next_query = [None; 2];
            p.router_until = [0; 2];
            self.groups.retain(|k, members| {
                let before = members.len();
                members.retain(|m| m.port != port);
                if members.len() != before {
                    self.changes.push(*k);
                }
                !members.is_empty()
            });
        }
        self.fwd_changed = true;
    }

    fn other_present(&self, f: usize, now: u64) -> bool {
        now < self.querier[f].other_until
    }

    /// Whether a querier is known for family `f` (forwarding's view).
    pub fn querier_exists(&self, f: usize, now: u64) -> bool {
        self.forwarding(now).querier_exists(f, now)
    }

    /// The members of a group (empty when it has none).
    pub fn members(&self, key: &GroupKey) -> PortSet {
        self.groups
            .get(key)
            .map(|ms| ms.iter().map(|m| m.port).collect())
            .unwrap_or(PortSet::EMPTY)
    }

    /// Router ports of family `f` at `now`.
    pub fn routers(&self, f: usize, now: u64) -> PortSet {
        let mut s = PortSet::EMPTY;
        for (i, p) in self.ports.iter().enumerate() {
            let on = match p.mode {
                RouterMode::Off => false,
                RouterMode::On => self.up.contains(i as PortId),
                RouterMode::Auto => now < p.router_until[f],
            };
            if on {
                s.insert(i as PortId);
            }
        }
        s
    }

    /// What forwarding needs besides the members.
    pub fn forwarding(&self, now: u64) -> Forwarding {
        Forwarding {
            snooping: self.cfg.snooping,
            own_querier: self.cfg.querier,
            other_until: [self.querier[0].other_until, self.querier[1].other_until],
            delay_until: [self.querier[0].delay_until, self.querier[1].delay_until],
            routers: [self.routers(0, now), self.routers(1, now)],
        }
    }

    /// Whether [`Mdb::forwarding`] may have changed since the last call.
    pub fn take_forwarding_changed(&mut self) -> bool {
        std::mem::take(&mut self.fwd_changed)
    }

    /// Groups whose members changed since the last call.
    pub fn take_changes(&mut self) -> Vec<GroupKey> {
        std::mem::take(&mut self.changes)
    }

    /// Frames the querier wants sent since the last call.
    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// Acts on an IGMP/MLD message received on `port` in VLAN `vid` from
    /// IP address `src`, as br_multicast_ipv4_rcv / _ipv6_rcv do.
    pub fn message(
        &mut self,
        port: PortId,
        vid: u16,
        src: IpAddr,
        msg: &Message<'_>,
        now: u64,
    ) -> Result<(), Refused> {
        if !self.cfg.snooping || port as usize >= MAX_PORTS {
            return Ok(());
        }
        // A frame came in: the port is up, whatever we were told.
        self.set_port_up(port, true, now);
        match *msg {
            Message::Report { version, group } => self.join(port, vid, group, version, now),
            Message::Leave { group, .. } => {
                self.leave(port, vid, group, now);
                Ok(())
            }
            Message::ReportV3 { version, records } => {
                for r in records {
                    let r = r.map_err(|_| Refused::BadRecord)?;
                    match r.kind {
                        record::MODE_IS_INCLUDE..=record::BLOCK_OLD_SOURCES => {}
                        _ => continue,
                    }
                    let empty_include = r.nsrcs == 0
                        && (r.kind == record::CHANGE_TO_INCLUDE
                            || r.kind == record::MODE_IS_INCLUDE);
                    if empty_include {
                        self.leave(port, vid, r.group, now);
                    } else {
                        self.join(port, vid, r.group, version, now)?;
                    }
                }
                Ok(())
            }
            Message::Query(q) => {
                self.query(port, vid, src, &q, now);
                Ok(())
            }
        }
    }

    /// A PIM hello or multicast router advertisement arrived on `port`.
    pub fn router_hint(&mut self, port: PortId, f: usize, now: u64) {
        if self.cfg.snooping && (port as usize) < MAX_PORTS {
            self.set_port_up(port, true, now);
            self.mark_router(port, f, now);
        }
    }

    fn join(
        &mut self,
        port: PortId,
        vid: u16,
        group: IpAddr,
        version: Version,
        now: u64,
    ) -> Result<(), Refused> {
        if always_flooded(&group) {
            return Ok(());
        }
        let key = GroupKey { group, vid };
        let expires = now + self.cfg.membership_interval_ms;
        let len = self.groups.len();
        let members = match self.groups.get_mut(&key) {
            Some(m) => m,
            None if len >= self.cfg.hash_max => {
                self.stats.full += 1;
                return Err(Refused::Full);
            }
            None => self.groups.entry(key).or_default(),
        };
        if let Some(m) = members.iter_mut().find(|m| m.port == port) {
            m.expires = expires;
            m.version = version;
        } else {
            members.push(Member {
                port,
                expires,
                version,
            });
            self.changes.push(key);
        }
        Ok(())
    }

    fn leave(&mut self, port: PortId, vid: u16, group: IpAddr, now: u64) {
        if always_flooded(&group) {
            return;
        }
        let key = GroupKey { group, vid };
        let f = family(&group);
        let Some(members) = self.groups.get_mut(&key) else {
            return;
        };
        if self.ports[port as usize].fast_leave {
            let before = members.len();
            members.retain(|m| m.port != port);
            if members.len() != before {
                self.changes.push(key);
            }
            if members.is_empty() {
                self.groups.remove(&key);
            }
            return;
        }
        if now < self.querier[f].other_until {
            return;
        }
        let time = now + self.cfg.lmqt();
        if let Some(m) = members.iter_mut().find(|m| m.port == port)
            && m.expires > time
        {
            m.expires = time;
        }
        if self.cfg.querier {
            let frame = self.query_frame(f, group, self.cfg.last_member_interval_ms);
            self.send(port, frame);
            self.ports[port as usize].next_query[f] = Some(time);
        }
    }

    fn query(&mut self, port: PortId, vid: u16, src: IpAddr, q: &Query, now: u64) {
        let f = family(&src);
        let (group, max_delay) = match q.version {
            Version::IgmpV1 | Version::IgmpV2 => {
                if q.max_resp_ms == 0 {
                    (Some(ZERO4), 10_000)
                } else {
                    (Some(q.group), q.max_resp_ms)
                }
            }
            Version::IgmpV3 => {
                let group_specific = q.group != ZERO4;
                if q.nsrcs != 0 || (self.cfg.igmp_version == 3 && group_specific && q.suppress) {
                    return;
                }
                (Some(q.group), q.max_resp_ms.max(1))
            }
            Version::MldV1 => {
                if q.max_resp_ms == 0 {
                    (None, 0)
                } else {
                    (Some(q.group), q.max_resp_ms)
                }
            }
            Version::MldV2 => {
                if self.cfg.mld_version == 2 && q.group != ZERO6 && q.suppress {
                    return;
                }
                let g = (q.nsrcs == 0).then_some(q.group);
                (g, q.max_resp_ms.max(1))
            }
        };
        let Some(group) = group else { return };
        if group.is_unspecified() {
            self.query_received(port, f, src, max_delay, now);
            return;
        }
        let Some(members) = self.groups.get_mut(&GroupKey { group, vid }) else {
            return;
        };
        let time = now + max_delay * self.cfg.last_member_count as u64;
        for m in members.iter_mut() {
            if m.expires > time {
                m.expires = time;
            }
        }
    }

    /// br_multicast_select_querier and what follows a win.
    fn query_received(&mut self, port: PortId, f: usize, src: IpAddr, max_delay: u64, now: u64) {
        let cur = self.querier[f].addr;
        let wins = match (src, cur) {
            (IpAddr::V4(s), IpAddr::V4(c)) => c.is_unspecified() || u32::from(s) <= u32::from(c),
            (IpAddr::V6(s), IpAddr::V6(c)) => s <= c,
            _ => true,
        };
        let own_pending = self.cfg.querier && !self.other_present(f, now);
        if !wins && (own_pending || self.other_present(f, now)) {
            return;
        }
        let q = &mut self.querier[f];
        q.addr = src;
        q.port = Some(port);
        if now >= q.other_until {
            q.delay_until = now + max_delay;
        }
        q.other_until = now + self.cfg.querier_interval_ms;
        self.fwd_changed = true;
        self.mark_router(port, f, now);
    }

    fn mark_router(&mut self, port: PortId, f: usize, now: u64) {
        let Some(p) = self.ports.get_mut(port as usize) else {
            return;
        };
        if p.mode != RouterMode::Auto {
            return;
        }
        if now >= p.router_until[f] {
            self.fwd_changed = true;
        }
        p.router_until[f] = now + self.cfg.querier_interval_ms;
    }

    /// br_multicast_start_querier: every up port queries again from the
    /// start.
    fn start_querier(&mut self, f: usize, now: u64) {
        let up = self.up;
        for id in up.iter() {
            let p = &mut self.ports[id as usize];
            p.next_query[f] = Some(now);
            p.startup_sent[f] = 0;
        }
    }

    fn query_frame(&self, f: usize, group: IpAddr, max_resp_ms: u64) -> Vec<u8> {
        let (version, src) = if f == 0 {
            let v = if self.cfg.igmp_version == 3 {
                Version::IgmpV3
            } else {
                Version::IgmpV2
            };
            (v, IpAddr::V4(self.cfg.source4))
        } else {
            let v = if self.cfg.mld_version == 2 {
                Version::MldV2
            } else {
                Version::MldV1
            };
            (v, IpAddr::V6(self.cfg.source6()))
        };
        igmp::query_frame(&QuerySpec {
            version,
            src_mac: self.cfg.mac.0,
            src,
            group,
            max_resp_ms,
            qqi_secs: self.cfg.query_interval_ms / 1000,
        })
    }

    fn send(&mut self, port: PortId, frame: Vec<u8>) {
        self.stats.queries_sent += 1;
        self.outbox.push(Outgoing { port, frame });
    }

    /// Runs the timers: memberships and learned routers run out, another
    /// querier times out (the switch's own querier starts again), own
    /// queries fall due. Call it every 100 ms to 1 s.
    pub fn tick(&mut self, now: u64) {
        // Memberships.
        let changes = &mut self.changes;
        self.groups.retain(|k, members| {
            let before = members.len();
            members.retain(|m| m.expires > now);
            if members.len() != before {
                changes.push(*k);
            }
            !members.is_empty()
        });
        // Learned routers.
        for p in self.ports.iter_mut() {
            for f in 0..2 {
                if p.router_until[f] != 0 && now >= p.router_until[f] {
                    p.router_until[f] = 0;
                    self.fwd_changed = true;
                }
            }
        }
        if !self.cfg.snooping {
            return;
        }
        for f in 0..2 {
            // The other querier went quiet: ours starts again.
            let q = &mut self.querier[f];
            if q.other_until != 0 && now >= q.other_until {
                q.other_until = 0;
                q.port = None;
                self.fwd_changed = true;
                self.start_querier(f, now);
            }
            let zero = if f == 0 { ZERO4 } else { ZERO6 };
            let up = self.up;
            for id in up.iter() {
                let p = self.ports[id as usize];
                let Some(at) = p.next_query[f] else { continue };
                if at > now {
                    continue;
                }
                if !self.cfg.querier || self.other_present(f, now) {
                    self.ports[id as usize].next_query[f] = None;
                    continue;
                }
                let p = &mut self.ports[id as usize];
                if p.startup_sent[f] < self.cfg.startup_query_count {
                    p.startup_sent[f] += 1;
                }
                let next = if p.startup_sent[f] < self.cfg.startup_query_count {
                    self.cfg.startup_query_interval_ms
                } else {
                    self.cfg.query_interval_ms
                };
                p.next_query[f] = Some(now + next.max(1));
                // We are the querier: as the kernel's bridge-level query does.
                self.querier[f].addr = if f == 0 {
                    IpAddr::V4(self.cfg.source4)
                } else {
                    IpAddr::V6(self.cfg.source6())
                };
                self.querier[f].port = None;
                let frame = self.query_frame(f, zero, self.cfg.query_response_interval_ms);
                self.send(id, frame);
            }
        }
    }

    /// Every membership, sorted by group, VLAN and port.
    pub fn entries(&self, now: u64) -> Vec<MemberInfo> {
        let mut v: Vec<MemberInfo> = self
            .groups
            .iter()
            .flat_map(|(k, ms)| {
                ms.iter().map(move |m| MemberInfo {
                    group: k.group,
                    vid: k.vid,
                    port: m.port,
                    remaining_ms: m.expires.saturating_sub(now),
                    version: m.version.as_str().to_string(),
                })
            })
            .collect();
        v.sort_by_key(|a| (a.group, a.vid, a.port));
        v
    }

    /// Router ports of both families.
    pub fn router_entries(&self, now: u64) -> Vec<RouterInfo> {
        let mut v = Vec::new();
        for f in 0..2 {
            for id in self.routers(f, now).iter() {
                let p = &self.ports[id as usize];
                v.push(RouterInfo {
                    port: id,
                    family: if f == 0 { "ipv4" } else { "ipv6" }.to_string(),
                    mode: p.mode.as_str().to_string(),
                    remaining_ms: (p.mode == RouterMode::Auto)
                        .then(|| p.router_until[f].saturating_sub(now)),
                });
            }
        }
        v
    }

    /// The querier of each family.
    pub fn queriers(&self, now: u64) -> Vec<QuerierInfo> {
        let fwd = self.forwarding(now);
        (0..2)
            .map(|f| {
                let q = &self.querier[f];
                let other = self.other_present(f, now);
                let known = other || self.cfg.querier;
                QuerierInfo {
                    family: if f == 0 { "ipv4" } else { "ipv6" }.to_string(),
                    address: known.then_some(if other || q.port.is_some() {
                        q.addr
                    } else if f == 0 {
                        IpAddr::V4(self.cfg.source4)
                    } else {
                        IpAddr::V6(self.cfg.source6())
                    }),
                    port: if other { q.port } else { None },
                    other_remaining_ms: other.then(|| q.other_until - now),
                    present: fwd.querier_exists(f, now),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
