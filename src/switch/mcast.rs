//! Multicast snooping in the forwarding core: what `decide` does with a
//! frame to a multicast (not broadcast) MAC, as the Linux bridge's
//! br_handle_frame_finish, br_multicast_rcv and br_multicast_flood do it
//! with `mcast_snooping 1`.
//!
//! 1. IGMP and MLD are snooped in the input path: the message goes to the
//!    [`Mdb`] (under its mutex: these frames come at control-plane rates)
//!    and the frame is then forwarded like the bridge forwards it: IGMPv1/v2
//!    and MLDv1 reports to router ports only once a querier is known, every
//!    other message (v3/v2 reports, leaves, dones, queries) flooded. A
//!    malformed one (bad checksums, truncated records, a general query not
//!    to all hosts…) is dropped, also when no querier is known; so is a
//!    report refused because the MDB is full.
//! 2. IP data: while no querier is known for its family, flooded. Once one
//!    is, a registered group goes to its members and the router ports; an
//!    unregistered group to router ports only, except 224.0.0.0/24 and
//!    ff02::1, which always flood.
//! 3. Anything else (non-IP L2 multicast) floods.
//!
//! The flood is the ordinary one (the `mcast-flood` port flag applies);
//! delivery to members and routers is not a flood (the flag does not apply,
//! as in the kernel); both keep VLAN egress, hairpin and isolation rules.
//!
//! Readers take no lock: group members are in a `papaya` map (lock-free
//! reads) updated from the MDB after each change, and what forwarding needs
//! besides (querier timers, router ports) is an `ArcSwap`'d copy.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use arc_swap::ArcSwap;

use super::ports::{MAX_PORTS, PortConfig, PortId, PortSet};
use crate::mcast::{
    Forwarding, GroupKey, MdbConfig, MemberInfo, Outgoing, QuerierInfo, Refused, RouterInfo,
    always_flooded, family,
};
use crate::wire::Frame;
use crate::wire::igmp::{self, McastError, Message, Snooped};

pub use crate::mcast::Mdb;

/// Where a multicast frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The ordinary multicast flood.
    Flood,
    /// To these ports (members and routers), not a flood.
    Ports(PortSet),
    /// Dropped: malformed IGMP/MLD, or the MDB was full.
    Malformed,
    Full,
}

/// Counters of snooped messages (cumulative, relaxed).
#[derive(Debug, Default)]
pub struct McastCounters {
    /// IGMP/MLD reports received (v1/v2 reports and v3/v2 reports).
    pub reports: AtomicU64,
    /// IGMPv2 leaves and MLD dones received.
    pub leaves: AtomicU64,
    /// Queries received.
    pub queries: AtomicU64,
    /// Malformed IGMP/MLD, by [`McastError::index`].
    pub errors: [AtomicU64; McastError::ALL.len()],
}

/// What the metrics endpoint reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct McastStats {
    pub groups: usize,
    pub reports: u64,
    pub leaves: u64,
    pub queries: u64,
    pub errors: [u64; McastError::ALL.len()],
    /// Reports refused because the MDB was full.
    pub full: u64,
    pub queries_sent: u64,
    /// A querier is known, per family (IPv4, IPv6).
    pub querier: [bool; 2],
}

type GroupMap = papaya::HashMap<GroupKey, PortSet, foldhash::fast::RandomState>;

/// The switch's multicast state, shared by every reader.
pub struct McastShared {
    mdb: parking_lot::Mutex<Mdb>,
    groups: GroupMap,
    fwd: ArcSwap<Forwarding>,
    counters: McastCounters,
}

impl McastShared {
    pub(crate) fn new(cfg: MdbConfig) -> McastShared {
        let mdb = Mdb::new(cfg, 0);
        let fwd = mdb.forwarding(0);
        McastShared {
            mdb: parking_lot::Mutex::new(mdb),
            groups: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            fwd: ArcSwap::from_pointee(fwd),
            counters: McastCounters::default(),
        }
    }

    /// Puts the MDB's changes where readers see them. Called with the MDB
    /// locked, after every change.
    fn publish(&self, mdb: &mut Mdb, now: u64) {
        let changes = mdb.take_changes();
        if !changes.is_empty() {
            let map = self.groups.pin();
            for k in changes {
                let s = mdb.members(&k);
                if s.is_empty() {
                    map.remove(&k);
                } else {
                    map.insert(k, s);
                }
            }
        }
        if mdb.take_forwarding_changed() {
            self.fwd.store(Arc::new(mdb.forwarding(now)));
        }
    }

    fn with_mdb<R>(&self, now: u64, f: impl FnOnce(&mut Mdb) -> R) -> R {
        let mut mdb = self.mdb.lock();
        let r = f(&mut mdb);
        self.publish(&mut mdb, now);
        r
    }

    pub(crate) fn set_config(&self, cfg: MdbConfig, now: u64) {
        self.with_mdb(now, |m| m.set_config(cfg, now));
    }

    pub(crate) fn config(&self) -> MdbConfig {
        self.mdb.lock().config().clone()
    }

    /// Port settings from the port table; ports not in it are down.
    pub(crate) fn set_ports(&self, ports: &[Option<PortConfig>]) {
        self.with_mdb(0, |m| {
            for id in 0..MAX_PORTS {
                match ports.get(id).and_then(Option::as_ref) {
                    Some(c) => {
                        m.set_port(id as PortId, c.flags.mcast_router, c.flags.mcast_fast_leave)
                    }
                    None => m.set_port_up(id as PortId, false, 0),
                }
            }
        });
    }

    /// A port went up (its startup queries are due at the next tick) or
    /// down (its memberships go).
    pub(crate) fn set_port_up(&self, id: PortId, up: bool) {
        self.with_mdb(0, |m| m.set_port_up(id, up, 0));
    }

    /// Runs the MDB's timers; returns the frames its querier wants sent.
    pub(crate) fn tick(&self, now: u64) -> Vec<Outgoing> {
        self.with_mdb(now, |m| {
            m.tick(now);
            m.take_outbox()
        })
    }

    pub(crate) fn entries(&self, now: u64) -> Vec<MemberInfo> {
        self.mdb.lock().entries(now)
    }

    pub(crate) fn routers(&self, now: u64) -> (Vec<RouterInfo>, Vec<QuerierInfo>) {
        let m = self.mdb.lock();
        (m.router_entries(now), m.queriers(now))
    }

    pub(crate) fn stats(&self, now: u64) -> McastStats {
        let (groups, st) = {
            let m = self.mdb.lock();
            (m.len(), m.stats())
        };
        let fwd = self.fwd.load();
        let c = &self.counters;
        McastStats {
            groups,
            reports: c.reports.load(Relaxed),
            leaves: c.leaves.load(Relaxed),
            queries: c.queries.load(Relaxed),
            errors: std::array::from_fn(|i| c.errors[i].load(Relaxed)),
            full: st.full,
            queries_sent: st.queries_sent,
            querier: [fwd.querier_exists(0, now), fwd.querier_exists(1, now)],
        }
    }

    /// Where a frame to a multicast MAC goes (see the module header).
    /// `DRY` (for `trace`) changes nothing: no counter, no membership or
    /// router learned from the frame; a report or leave is routed by the
    /// state before it.
    pub(crate) fn route<const DRY: bool>(
        &self,
        ingress: PortId,
        f: &Frame<'_>,
        vid: u16,
        now: u64,
    ) -> Route {
        let fwd = self.fwd.load();
        if !fwd.snooping {
            return Route::Flood;
        }
        let at = if f.tag().is_some() { 18 } else { 14 };
        let payload = f.bytes().get(at..).unwrap_or(&[]);
        let snooped = match igmp::parse(f.inner_ethertype(), payload) {
            Ok(s) => s,
            Err(e) => {
                if !DRY {
                    self.counters.errors[e.index()].fetch_add(1, Relaxed);
                }
                return Route::Malformed;
            }
        };
        match snooped {
            Snooped::NotIp => Route::Flood,
            Snooped::Data {
                dst, router_hint, ..
            } => {
                let fam = family(&dst);
                let fwd = if router_hint && !DRY {
                    self.with_mdb(now, |m| m.router_hint(ingress, fam, now));
                    self.fwd.load()
                } else {
                    fwd
                };
                // Unregistered groups go to routers only, except the ones
                // never snooped.
                let mrouters_only = !always_flooded(&dst);
                let members = self
                    .groups
                    .pin()
                    .get(&GroupKey { group: dst, vid })
                    .copied();
                if (members.is_some() || mrouters_only) && fwd.querier_exists(fam, now) {
                    let mut out = fwd.routers[fam];
                    if let Some(m) = members {
                        out = out.or(m);
                    }
                    Route::Ports(out)
                } else {
                    Route::Flood
                }
            }
            Snooped::Message { src, msg, .. } => {
                let fam = family(&src);
                if !DRY {
                    let c = &self.counters;
                    match msg {
                        Message::Query(_) => c.queries.fetch_add(1, Relaxed),
                        Message::Leave { .. } => c.leaves.fetch_add(1, Relaxed),
                        Message::Report { .. } | Message::ReportV3 { .. } => {
                            c.reports.fetch_add(1, Relaxed)
                        }
                    };
                    let res = self.with_mdb(now, |m| m.message(ingress, vid, src, &msg, now));
                    match res {
                        Err(Refused::BadRecord) => {
                            c.errors[McastError::BadRecord.index()].fetch_add(1, Relaxed);
                            return Route::Malformed;
                        }
                        Err(Refused::Full) => return Route::Full,
                        Ok(()) => {}
                    }
                }
                // IGMPv1/v2 and MLDv1 reports go to routers only.
                let fwd = self.fwd.load();
                if matches!(msg, Message::Report { .. }) && fwd.querier_exists(fam, now) {
                    Route::Ports(fwd.routers[fam])
                } else {
                    Route::Flood
                }
            }
        }
    }
}

/// The group an IP address is, for callers that print it.
pub fn group_family(g: &IpAddr) -> &'static str {
    if family(g) == 0 { "ipv4" } else { "ipv6" }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::*;
    use crate::mcast::MdbConfig;
    use crate::wire::igmp::McastError;
    use crate::wire::igmp::{ALL_NODES, data_frame, igmp_frame, mld_frame};

    const H: [[u8; 6]; 4] = [
        [2, 0, 0, 0, 0, 0xa],
        [2, 0, 0, 0, 0, 0xb],
        [2, 0, 0, 0, 0, 0xc],
        [2, 0, 0, 0, 0, 0xd],
    ];

    fn sw4(flags: impl Fn(usize, &mut PortConfig)) -> Switch {
        let sw = Switch::new(&SwitchConfig::default());
        for i in 0..4 {
            let mut c = PortConfig::new(format!("p{i}"));
            flags(i, &mut c);
            let id = sw.add_port(c).unwrap();
            sw.set_port_up(id, true);
        }
        sw
    }

    fn out(d: &Decision) -> Vec<PortId> {
        d.egress()
            .map(|e| e.ports.iter().collect())
            .unwrap_or_default()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn data(port: usize, g: &str) -> Vec<u8> {
        let g: IpAddr = g.parse().unwrap();
        let src: IpAddr = match g {
            IpAddr::V4(_) => "198.18.0.1".parse().unwrap(),
            IpAddr::V6(_) => "fd00::1".parse().unwrap(),
        };
        data_frame(H[port], src, g, 20)
    }

    fn report(port: usize, g: &str) -> Vec<u8> {
        let mut m = vec![0x16, 0, 0, 0];
        m.extend_from_slice(&v4(g).octets());
        igmp_frame(H[port], v4("198.18.0.9"), v4(g), &m)
    }

    fn report3(port: usize, g: &str) -> Vec<u8> {
        let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        m.extend_from_slice(&v4(g).octets());
        igmp_frame(H[port], v4("198.18.0.9"), v4("224.0.0.22"), &m)
    }

    fn leave(port: usize, g: &str) -> Vec<u8> {
        let mut m = vec![0x17, 0, 0, 0];
        m.extend_from_slice(&v4(g).octets());
        igmp_frame(H[port], v4("198.18.0.9"), v4("224.0.0.2"), &m)
    }

    fn query4(port: usize) -> Vec<u8> {
        igmp_frame(
            H[port],
            v4("198.18.0.1"),
            v4("224.0.0.1"),
            &[0x11, 10, 0, 0, 0, 0, 0, 0],
        )
    }

    fn query6(port: usize) -> Vec<u8> {
        let mut q = vec![130, 0, 0, 0, 0x03, 0xe8, 0, 0];
        q.extend_from_slice(&[0; 16]);
        mld_frame(H[port], v6("fe80::1"), ALL_NODES, &q)
    }

    fn mld_report(port: usize, g: &str) -> Vec<u8> {
        let mut r = vec![131, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&v6(g).octets());
        mld_frame(H[port], v6("fe80::2"), v6(g), &r)
    }

    #[test]
    fn without_querier_everything_floods() {
        let sw = sw4(|_, _| {});
        assert_eq!(
            out(&sw.decide(1, &report(1, "239.1.1.1"), 0)),
            vec![0, 2, 3]
        );
        assert_eq!(out(&sw.decide(0, &data(0, "239.1.1.1"), 1)), vec![1, 2, 3]);
        assert_eq!(out(&sw.decide(0, &data(0, "239.9.9.9"), 1)), vec![1, 2, 3]);
    }

    #[test]
    fn bad_checksum_dropped_even_without_querier() {
        let sw = sw4(|_, _| {});
        let mut f = report(1, "239.1.1.1");
        let n = f.len();
        f[n - 1] ^= 1;
        assert_eq!(
            sw.decide(1, &f, 0).drop_reason(),
            Some(DropReason::McastMalformed)
        );
        assert_eq!(sw.mcast_stats(0).errors[McastError::Checksum.index()], 1);
        assert!(sw.mdb_entries(0).is_empty());
    }

    #[test]
    fn with_a_querier_groups_go_to_members_and_routers() {
        let sw = sw4(|_, _| {});
        // Querier on port 0; the delay (1 s max response) runs out at 1000.
        assert_eq!(out(&sw.decide(0, &query4(0), 0)), vec![1, 2, 3]);
        assert_eq!(
            out(&sw.decide(0, &data(0, "239.9.9.9"), 999)),
            vec![1, 2, 3]
        );
        // A v2 report goes to the router port only...
        assert_eq!(out(&sw.decide(2, &report(2, "239.1.1.1"), 1000)), vec![0]);
        // ...a v3 report and a leave flood.
        assert_eq!(
            out(&sw.decide(3, &report3(3, "239.1.1.2"), 1000)),
            vec![0, 1, 2]
        );
        // Registered: members and routers.
        assert_eq!(out(&sw.decide(1, &data(1, "239.1.1.1"), 1001)), vec![0, 2]);
        assert_eq!(out(&sw.decide(1, &data(1, "239.1.1.2"), 1001)), vec![0, 3]);
        // Unregistered: routers only; from the router port itself: nowhere.
        assert_eq!(out(&sw.decide(1, &data(1, "239.9.9.9"), 1001)), vec![0]);
        assert_eq!(
            sw.decide(0, &data(0, "239.9.9.9"), 1001).drop_reason(),
            Some(DropReason::NoEgress)
        );
        // Link-local groups always flood.
        assert_eq!(
            out(&sw.decide(1, &data(1, "224.0.0.251"), 1001)),
            vec![0, 2, 3]
        );
        // Non-IP L2 multicast floods.
        let mut f = vec![0x01, 0x00, 0x5e, 0x01, 0x01, 0x01];
        f.extend_from_slice(&H[1]);
        f.extend_from_slice(&[0x88, 0xb5]);
        f.resize(60, 0);
        assert_eq!(out(&sw.decide(1, &f, 1001)), vec![0, 2, 3]);
        // Groups are keyed by IP: 239.129.1.1 shares 239.1.1.1's MAC.
        assert_eq!(out(&sw.decide(1, &data(1, "239.129.1.1"), 1001)), vec![0]);
        // IPv6 has no querier yet: floods.
        assert_eq!(out(&sw.decide(1, &data(1, "ff05::1"), 1001)), vec![0, 2, 3]);
        assert_eq!(
            out(&sw.decide(2, &leave(2, "239.1.1.1"), 1002)),
            vec![0, 1, 3]
        );
    }

    #[test]
    fn ipv6_only_all_nodes_always_floods() {
        let sw = sw4(|_, _| {});
        sw.decide(0, &query6(0), 0);
        assert_eq!(
            out(&sw.decide(2, &mld_report(2, "ff05::1:3"), 1000)),
            vec![0]
        );
        assert_eq!(out(&sw.decide(1, &data(1, "ff05::1:3"), 1001)), vec![0, 2]);
        assert_eq!(out(&sw.decide(1, &data(1, "ff02::fb"), 1001)), vec![0]);
        assert_eq!(out(&sw.decide(1, &data(1, "ff02::1"), 1001)), vec![0, 2, 3]);
    }

    #[test]
    fn mcast_flood_flag_applies_to_floods_only() {
        let sw = sw4(|i, c| c.flags.mcast_flood = i != 2);
        assert_eq!(out(&sw.decide(0, &data(0, "239.1.1.1"), 0)), vec![1, 3]);
        sw.decide(0, &query4(0), 0);
        sw.decide(2, &report(2, "239.1.1.1"), 1000);
        assert_eq!(out(&sw.decide(1, &data(1, "239.1.1.1"), 1001)), vec![0, 2]);
    }

    #[test]
    fn static_router_port_and_fast_leave() {
        let sw = sw4(|i, c| {
            if i == 3 {
                c.flags.mcast_router = crate::mcast::RouterMode::On;
            }
            if i == 2 {
                c.flags.mcast_fast_leave = true;
            }
        });
        sw.decide(0, &query4(0), 0);
        sw.decide(2, &report(2, "239.1.1.1"), 1000);
        assert_eq!(
            out(&sw.decide(1, &data(1, "239.1.1.1"), 1001)),
            vec![0, 2, 3]
        );
        assert_eq!(out(&sw.decide(1, &data(1, "239.9.9.9"), 1001)), vec![0, 3]);
        sw.decide(2, &leave(2, "239.1.1.1"), 1002);
        assert_eq!(out(&sw.decide(1, &data(1, "239.1.1.1"), 1003)), vec![0, 3]);
    }

    #[test]
    fn groups_are_per_vlan() {
        let sw = Switch::new(&SwitchConfig {
            vlan_filtering: true,
            ..SwitchConfig::default()
        });
        for i in 0..4 {
            let id = sw
                .add_port(PortConfig::new(format!("p{i}")).trunk("10,20", None))
                .unwrap();
            sw.set_port_up(id, true);
        }
        let tag = |mut f: Vec<u8>, vid: u16| {
            let t = [0x81, 0x00, (vid >> 8) as u8, vid as u8];
            f.splice(12..12, t);
            f
        };
        // Router port 0 in VLAN 10 (queries are global, as the kernel's).
        sw.decide(0, &tag(query4(0), 10), 0);
        sw.decide(1, &tag(report(1, "239.1.1.1"), 10), 1000);
        let e = sw.mdb_entries(1000);
        assert_eq!((e.len(), e[0].vid), (1, 10));
        assert_eq!(
            out(&sw.decide(2, &tag(data(2, "239.1.1.1"), 10), 1001)),
            vec![0, 1]
        );
        // The same group in VLAN 20 is not registered: routers only.
        assert_eq!(
            out(&sw.decide(2, &tag(data(2, "239.1.1.1"), 20), 1001)),
            vec![0]
        );
    }

    #[test]
    fn own_querier_ticks_out_queries() {
        let sw = Switch::new(&SwitchConfig {
            mcast: MdbConfig {
                querier: true,
                ..MdbConfig::default()
            },
            ..SwitchConfig::default()
        });
        for i in 0..2 {
            let id = sw.add_port(PortConfig::new(format!("p{i}"))).unwrap();
            sw.set_port_up(id, true);
        }
        let out = sw.mcast_tick(100);
        assert_eq!(out.len(), 4);
        assert!(
            !sw.mcast_stats(100).querier[0],
            "still in the startup delay"
        );
        assert!(sw.mcast_stats(10_000).querier[0]);
    }

    #[test]
    fn a_join_flood_stays_bounded() {
        let sw = Switch::new(&SwitchConfig {
            mcast: MdbConfig {
                hash_max: 64,
                ..MdbConfig::default()
            },
            ..SwitchConfig::default()
        });
        for i in 0..2 {
            let id = sw.add_port(PortConfig::new(format!("p{i}"))).unwrap();
            sw.set_port_up(id, true);
        }
        let mut refused = 0;
        for i in 0..100_000u32 {
            let g = Ipv4Addr::from(0xef00_0000 | i);
            let mut m = vec![0x16, 0, 0, 0];
            m.extend_from_slice(&g.octets());
            let f = igmp_frame(H[1], v4("198.18.0.9"), g, &m);
            if sw.decide(1, &f, i as u64).drop_reason() == Some(DropReason::MdbFull) {
                refused += 1;
            }
        }
        let st = sw.mcast_stats(100_000);
        assert_eq!(
            (st.groups, st.full, refused),
            (64, 100_000 - 64, 100_000 - 64)
        );
    }

    #[test]
    fn known_unicast_is_untouched() {
        let sw = sw4(|_, _| {});
        let mut a = vec![0u8; 60];
        a[..6].copy_from_slice(&H[1]);
        a[6..12].copy_from_slice(&H[0]);
        let mut b = a.clone();
        b[..6].copy_from_slice(&H[0]);
        b[6..12].copy_from_slice(&H[1]);
        sw.decide(1, &b, 0);
        assert_eq!(out(&sw.decide(0, &a, 1)), vec![1]);
    }
}
