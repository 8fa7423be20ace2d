//! The MDB on a fake clock: joins, leaves, fast leave, timeouts, querier
//! election and takeover, router ports learned and expired, the bound,
//! the own querier's frames.

use super::*;
use crate::wire::EtherType;
use crate::wire::igmp::{Snooped, igmp_frame, mld_frame, parse};

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Feeds a whole frame's IGMP/MLD message to the MDB.
fn feed(m: &mut Mdb, port: PortId, frame: &[u8], now: u64) -> Result<(), Refused> {
    let et = EtherType::from(u16::from_be_bytes([frame[12], frame[13]]));
    match parse(et, &frame[14..]).unwrap() {
        Snooped::Message { src, msg, .. } => m.message(port, 1, src, &msg, now),
        other => panic!("not a message: {other:?}"),
    }
}

fn report(g: &str) -> Vec<u8> {
    let g = v4(g);
    let mut m = vec![0x16, 0, 0, 0];
    m.extend_from_slice(&g.octets());
    igmp_frame(MAC, v4("198.18.0.2"), g, &m)
}

fn leave(g: &str) -> Vec<u8> {
    let mut m = vec![0x17, 0, 0, 0];
    m.extend_from_slice(&v4(g).octets());
    igmp_frame(MAC, v4("198.18.0.2"), v4("224.0.0.2"), &m)
}

fn query(src: &str, group: &str, code: u8) -> Vec<u8> {
    let g = v4(group);
    let mut m = vec![0x11, code, 0, 0];
    m.extend_from_slice(&g.octets());
    let dst = if g.is_unspecified() {
        igmp::ALL_HOSTS
    } else {
        g
    };
    igmp_frame(MAC, v4(src), dst, &m)
}

fn key(g: &str) -> GroupKey {
    GroupKey {
        group: ip(g),
        vid: 1,
    }
}

fn mdb(cfg: MdbConfig) -> Mdb {
    let mut m = Mdb::new(cfg, 0);
    for p in 0..4 {
        m.set_port_up(p, true, 0);
    }
    m
}

fn ports(s: &[PortId]) -> PortSet {
    s.iter().copied().collect()
}

#[test]
fn join_refresh_and_timeout() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 1, &report("239.1.1.1"), 1000).unwrap();
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[1]));
    assert_eq!(m.take_changes(), vec![key("239.1.1.1")]);
    // Refreshed at 100 s: still there at 1000 + 260 000.
    feed(&mut m, 1, &report("239.1.1.1"), 100_000).unwrap();
    assert!(m.take_changes().is_empty(), "a refresh changes no members");
    m.tick(261_000);
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[1]));
    m.tick(360_000);
    assert!(m.is_empty());
    assert_eq!(m.take_changes(), vec![key("239.1.1.1")]);
}

#[test]
fn link_local_groups_are_never_entered() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 1, &report("224.0.0.251"), 0).unwrap();
    assert!(m.is_empty());
}

#[test]
fn leave_without_querier_shortens_to_last_member_time() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 1, &report("239.1.1.1"), 0).unwrap();
    feed(&mut m, 2, &report("239.1.1.1"), 0).unwrap();
    feed(&mut m, 1, &leave("239.1.1.1"), 10_000).unwrap();
    m.tick(11_999);
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[1, 2]));
    m.tick(12_000);
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[2]));
    assert!(m.take_outbox().is_empty(), "no querier, no query");
}

#[test]
fn leave_with_other_querier_changes_nothing_until_its_query() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 0, &query("198.18.0.1", "0.0.0.0", 100), 0).unwrap();
    feed(&mut m, 1, &report("239.1.1.1"), 1000).unwrap();
    feed(&mut m, 1, &leave("239.1.1.1"), 2000).unwrap();
    m.tick(5000);
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[1]));
    // The querier's group-specific query (1 s max response): gone after
    // last-member-count × 1 s.
    feed(&mut m, 0, &query("198.18.0.1", "239.1.1.1", 10), 6000).unwrap();
    m.tick(7999);
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[1]));
    m.tick(8000);
    assert!(m.members(&key("239.1.1.1")).is_empty());
}

#[test]
fn fast_leave_removes_at_once() {
    let mut m = mdb(MdbConfig::default());
    m.set_port(1, RouterMode::Auto, true);
    feed(&mut m, 0, &query("198.18.0.1", "0.0.0.0", 100), 0).unwrap();
    feed(&mut m, 1, &report("239.1.1.1"), 0).unwrap();
    feed(&mut m, 2, &report("239.1.1.1"), 0).unwrap();
    feed(&mut m, 1, &leave("239.1.1.1"), 10).unwrap();
    assert_eq!(m.members(&key("239.1.1.1")), ports(&[2]));
}

#[test]
fn querier_election_lowest_wins_and_delay() {
    let mut m = mdb(MdbConfig::default());
    let fwd = m.forwarding(0);
    assert!(!fwd.querier_exists(0, 0));
    feed(&mut m, 0, &query("198.18.0.5", "0.0.0.0", 100), 1000).unwrap();
    // Flooding goes on for the query's max response time (10 s).
    assert!(!m.querier_exists(0, 10_999));
    assert!(m.querier_exists(0, 11_000));
    assert_eq!(m.routers(0, 11_000), ports(&[0]));
    // A higher address on port 1 loses while the first is present...
    feed(&mut m, 1, &query("198.18.0.9", "0.0.0.0", 100), 12_000).unwrap();
    assert_eq!(m.routers(0, 12_000), ports(&[0]));
    // ...a lower one wins and its port becomes a router port too.
    feed(&mut m, 2, &query("198.18.0.3", "0.0.0.0", 100), 13_000).unwrap();
    assert_eq!(m.routers(0, 13_000), ports(&[0, 2]));
    assert_eq!(m.queriers(13_000)[0].port, Some(2));
    // IPv6 is separate.
    assert!(!m.querier_exists(1, 13_000));
    // Everything runs out after the querier interval (255 s).
    let end = 13_000 + 255_000;
    m.tick(end);
    assert!(!m.querier_exists(0, end));
    assert!(m.routers(0, end).is_empty());
}

#[test]
fn routers_configured_and_from_pim() {
    let mut m = mdb(MdbConfig::default());
    m.set_port(3, RouterMode::On, false);
    m.set_port(2, RouterMode::Off, false);
    m.router_hint(1, 0, 0);
    m.router_hint(2, 0, 0);
    assert_eq!(m.routers(0, 1), ports(&[1, 3]));
    assert_eq!(m.routers(1, 1), ports(&[3]));
    m.tick(255_000);
    assert_eq!(m.routers(0, 255_000), ports(&[3]));
    let r = m.router_entries(255_000);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].remaining_ms, None);
}

#[test]
fn bounded_and_counted() {
    let mut m = mdb(MdbConfig {
        hash_max: 3,
        ..MdbConfig::default()
    });
    for i in 1..=3 {
        feed(&mut m, 1, &report(&format!("239.1.1.{i}")), 0).unwrap();
    }
    assert_eq!(feed(&mut m, 1, &report("239.1.1.9"), 0), Err(Refused::Full));
    // An existing group is still refreshed and joined by other ports.
    feed(&mut m, 2, &report("239.1.1.1"), 0).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m.stats().full, 1);
}

#[test]
fn igmpv3_records_join_and_leave() {
    let mut m = mdb(MdbConfig::default());
    let mut r = vec![0x22, 0, 0, 0, 0, 0, 0, 3];
    r.extend_from_slice(&[4, 0, 0, 0, 239, 1, 1, 1]); // TO_EX {}: join
    r.extend_from_slice(&[5, 0, 0, 1, 239, 1, 1, 2, 198, 18, 0, 7]); // ALLOW {S}: join
    r.extend_from_slice(&[9, 0, 0, 0, 239, 1, 1, 3]); // unknown type: skipped
    let f = igmp_frame(MAC, v4("198.18.0.2"), v4("224.0.0.22"), &r);
    feed(&mut m, 1, &f, 0).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m.entries(0)[0].version, "igmpv3");
    let mut r = vec![0x22, 0, 0, 0, 0, 0, 0, 1];
    r.extend_from_slice(&[3, 0, 0, 0, 239, 1, 1, 1]); // TO_IN {}: leave
    let f = igmp_frame(MAC, v4("198.18.0.2"), v4("224.0.0.22"), &r);
    feed(&mut m, 1, &f, 1000).unwrap();
    m.tick(3000);
    assert_eq!(m.len(), 1);
    // A record count past the end: the first is acted on, then refused.
    let mut r = vec![0x22, 0, 0, 0, 0, 0, 0, 50];
    r.extend_from_slice(&[2, 0, 0, 0, 239, 1, 1, 7]);
    let f = igmp_frame(MAC, v4("198.18.0.2"), v4("224.0.0.22"), &r);
    assert_eq!(feed(&mut m, 1, &f, 3000), Err(Refused::BadRecord));
    assert_eq!(m.members(&key("239.1.1.7")), ports(&[1]));
}

#[test]
fn mld_join_query_and_done() {
    let mut m = mdb(MdbConfig::default());
    let ll: Ipv6Addr = "fe80::2".parse().unwrap();
    let g: Ipv6Addr = "ff05::1:3".parse().unwrap();
    let mut r = vec![131, 0, 0, 0, 0, 0, 0, 0];
    r.extend_from_slice(&g.octets());
    feed(&mut m, 1, &mld_frame(MAC, ll, g, &r), 0).unwrap();
    assert_eq!(m.members(&key("ff05::1:3")), ports(&[1]));
    // ff02::1 is never entered.
    let mut r = vec![131, 0, 0, 0, 0, 0, 0, 0];
    r.extend_from_slice(&igmp::ALL_NODES.octets());
    feed(&mut m, 1, &mld_frame(MAC, ll, igmp::ALL_NODES, &r), 0).unwrap();
    assert_eq!(m.len(), 1);
    // A general MLDv1 query from fe80::1 makes port 0 the v6 router port.
    let mut q = vec![130, 0, 0, 0, 0x03, 0xe8, 0, 0];
    q.extend_from_slice(&[0; 16]);
    feed(
        &mut m,
        0,
        &mld_frame(MAC, "fe80::1".parse().unwrap(), igmp::ALL_NODES, &q),
        0,
    )
    .unwrap();
    assert_eq!(m.routers(1, 1), ports(&[0]));
    assert!(m.routers(0, 1).is_empty());
    assert!(m.querier_exists(1, 1000));
}

#[test]
fn own_querier_startup_then_interval_and_takeover() {
    let cfg = MdbConfig {
        querier: true,
        query_interval_ms: 8_000,
        startup_query_interval_ms: 2_000,
        ..MdbConfig::default()
    };
    let mut m = Mdb::new(cfg, 0);
    m.set_port_up(0, true, 0);
    m.set_port_up(1, true, 0);
    // Floods for a query response interval after the querier starts.
    assert!(!m.querier_exists(0, 9_999));
    assert!(m.querier_exists(0, 10_000));
    m.tick(0);
    let out = m.take_outbox();
    // One IGMP and one MLD query per port.
    assert_eq!(out.len(), 4);
    for o in &out {
        let et = EtherType::from(u16::from_be_bytes([o.frame[12], o.frame[13]]));
        assert!(matches!(
            parse(et, &o.frame[14..]).unwrap(),
            Snooped::Message {
                msg: Message::Query(_),
                ..
            }
        ));
    }
    m.tick(1_999);
    assert!(m.take_outbox().is_empty());
    m.tick(2_000);
    assert_eq!(m.take_outbox().len(), 4, "second startup query");
    m.tick(9_999);
    assert!(m.take_outbox().is_empty());
    m.tick(10_000);
    assert_eq!(m.take_outbox().len(), 4, "then every query interval");
    // Another querier (any address beats our 0.0.0.0): we stop, for IPv4.
    feed(&mut m, 1, &query("198.18.0.1", "0.0.0.0", 100), 11_000).unwrap();
    m.tick(18_000);
    let out = m.take_outbox();
    assert_eq!(out.len(), 2, "only MLD queries: {out:?}");
    // It goes quiet: ours starts again at once.
    m.tick(11_000 + 255_000);
    let out = m.take_outbox();
    assert!(out.iter().any(|o| o.frame[12..14] == [0x08, 0x00]));
}

#[test]
fn own_querier_with_higher_source_keeps_a_lower_one_out() {
    let cfg = MdbConfig {
        querier: true,
        source4: v4("198.18.0.2"),
        ..MdbConfig::default()
    };
    let mut m = Mdb::new(cfg, 0);
    m.set_port_up(0, true, 0);
    m.tick(0);
    m.take_outbox();
    // A higher address is ignored (no router port, no takeover)...
    feed(&mut m, 0, &query("198.18.0.9", "0.0.0.0", 100), 100).unwrap();
    assert!(m.routers(0, 100).is_empty());
    // ...a lower one takes over.
    feed(&mut m, 0, &query("198.18.0.1", "0.0.0.0", 100), 200).unwrap();
    assert_eq!(m.routers(0, 200), ports(&[0]));
}

#[test]
fn own_querier_sends_group_query_on_leave() {
    let cfg = MdbConfig {
        querier: true,
        ..MdbConfig::default()
    };
    let mut m = mdb(cfg);
    m.tick(0);
    m.take_outbox();
    feed(&mut m, 2, &report("239.1.1.1"), 100).unwrap();
    feed(&mut m, 2, &leave("239.1.1.1"), 200).unwrap();
    let out = m.take_outbox();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].port, 2);
    let Snooped::Message {
        msg: Message::Query(q),
        ..
    } = parse(EtherType::Ipv4, &out[0].frame[14..]).unwrap()
    else {
        panic!()
    };
    assert_eq!(q.group, ip("239.1.1.1"));
    assert_eq!(q.max_resp_ms, 1000);
    m.tick(2200);
    assert!(m.is_empty());
}

#[test]
fn port_down_forgets_its_state() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 1, &report("239.1.1.1"), 0).unwrap();
    m.router_hint(1, 0, 0);
    m.set_port_up(1, false, 10);
    assert!(m.is_empty());
    assert!(m.routers(0, 10).is_empty());
}

#[test]
fn snooping_off_forgets_and_ignores() {
    let mut m = mdb(MdbConfig::default());
    feed(&mut m, 1, &report("239.1.1.1"), 0).unwrap();
    m.set_config(
        MdbConfig {
            snooping: false,
            ..MdbConfig::default()
        },
        1,
    );
    assert!(m.is_empty());
    feed(&mut m, 1, &report("239.1.1.1"), 2).unwrap();
    assert!(m.is_empty());
}

#[test]
fn link_local_of_mac() {
    assert_eq!(
        link_local_of(Mac([0x02, 0, 0, 0, 0, 1])),
        "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap()
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Report(PortId, u8),
        Leave(PortId, u8),
        Query(PortId, u8, bool),
        Tick(u64),
        Down(PortId),
        Up(PortId),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4u16, 0..20u8).prop_map(|(p, g)| Op::Report(p, g)),
            (0..4u16, 0..20u8).prop_map(|(p, g)| Op::Leave(p, g)),
            (0..4u16, 1..9u8, any::<bool>()).prop_map(|(p, s, gen_)| Op::Query(p, s, gen_)),
            (1..200_000u64).prop_map(Op::Tick),
            (0..4u16).prop_map(Op::Down),
            (0..4u16).prop_map(Op::Up),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever happens: the MDB never passes its bound, members are
        /// only up ports, nothing outlives the membership interval, and the
        /// changes reported cover every group whose members changed.
        #[test]
        fn invariants(ops in proptest::collection::vec(op(), 1..120), querier in any::<bool>()) {
            let cfg = MdbConfig { hash_max: 8, querier, ..MdbConfig::default() };
            let mut m = mdb(cfg);
            let mut now = 0;
            let mut shadow: HashMap<GroupKey, PortSet> = HashMap::new();
            for op in ops {
                now += 1;
                match op {
                    Op::Report(p, g) => { let _ = feed(&mut m, p, &report(&format!("239.0.0.{g}")), now); }
                    Op::Leave(p, g) => { let _ = feed(&mut m, p, &leave(&format!("239.0.0.{g}")), now); }
                    Op::Query(p, s, general) => {
                        let g = if general { "0.0.0.0".to_string() } else { "239.0.0.1".to_string() };
                        let _ = feed(&mut m, p, &query(&format!("198.18.0.{s}"), &g, 10), now);
                    }
                    Op::Tick(d) => { now += d; m.tick(now); }
                    Op::Down(p) => m.set_port_up(p, false, now),
                    Op::Up(p) => m.set_port_up(p, true, now),
                }
                prop_assert!(m.len() <= 8);
                for k in m.take_changes() {
                    shadow.insert(k, m.members(&k));
                }
                for e in m.entries(now) {
                    prop_assert!(m.up.contains(e.port));
                    prop_assert!(e.remaining_ms <= 260_000);
                    let k = GroupKey { group: e.group, vid: e.vid };
                    prop_assert!(shadow.get(&k).is_some_and(|s| s.contains(e.port)));
                }
                for (k, s) in &shadow {
                    prop_assert_eq!(*s, m.members(k));
                }
                m.take_outbox();
            }
        }
    }
}
