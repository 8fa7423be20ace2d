//! Unit tests for the forwarding rules, one per rule, on a fake clock.

use super::*;
use crate::wire::Mac;

const A: Mac = Mac([2, 0, 0, 0, 0, 0xa]);
const B: Mac = Mac([2, 0, 0, 0, 0, 0xb]);
const C: Mac = Mac([2, 0, 0, 0, 0, 0xc]);

/// A frame of local experimental EtherType 0x88b5: not IP, so multicast
/// snooping (src/switch/mcast.rs, tested there) leaves it alone.
fn eth(dst: Mac, src: Mac) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&[0u8; 46]);
    f
}

fn tagged(dst: Mac, src: Mac, tpid: u16, pcp: u8, vid: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&crate::wire::ethernet::tci(pcp, false, vid).to_be_bytes());
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&[0u8; 46]);
    f
}

fn switch_with(cfg: SwitchConfig, ports: Vec<PortConfig>) -> Switch {
    let sw = Switch::new(&cfg);
    for p in ports {
        let id = sw.add_port(p).unwrap();
        sw.set_port_up(id, true);
    }
    sw
}

fn plain(n: usize) -> Switch {
    switch_with(
        SwitchConfig::default(),
        (0..n).map(|i| PortConfig::new(format!("p{i}"))).collect(),
    )
}

fn out(d: &Decision) -> Vec<PortId> {
    d.egress()
        .map(|e| e.ports.iter().collect())
        .unwrap_or_default()
}

fn dropped(d: &Decision) -> DropReason {
    d.drop_reason().expect("expected a drop")
}

#[test]
fn unknown_unicast_floods_then_learned_goes_direct() {
    let sw = plain(3);
    let d = sw.decide(0, &eth(B, A), 0);
    assert_eq!(out(&d), vec![1, 2]);
    assert!(d.egress().unwrap().flooded);
    assert_eq!(d.learn, Learn::Learned);
    let d = sw.decide(1, &eth(A, B), 1);
    assert_eq!(out(&d), vec![0]);
    assert!(!d.egress().unwrap().flooded);
    let d = sw.decide(0, &eth(B, A), 2);
    assert_eq!(out(&d), vec![1]);
    assert_eq!(d.learn, Learn::Refreshed);
}

#[test]
fn broadcast_and_multicast_flood_all_but_ingress() {
    let sw = plain(4);
    assert_eq!(
        out(&sw.decide(2, &eth(Mac::BROADCAST, A), 0)),
        vec![0, 1, 3]
    );
    let mcast = Mac([0x01, 0, 0x5e, 0, 0, 1]);
    assert_eq!(out(&sw.decide(0, &eth(mcast, A), 0)), vec![1, 2, 3]);
}

#[test]
fn single_port_flood_has_nowhere_to_go() {
    let sw = plain(1);
    assert_eq!(dropped(&sw.decide(0, &eth(B, A), 0)), DropReason::NoEgress);
}

#[test]
fn unicast_to_own_port_dropped_unless_hairpin() {
    let sw = plain(2);
    sw.decide(0, &eth(C, A), 0);
    sw.decide(0, &eth(C, B), 0);
    assert_eq!(
        dropped(&sw.decide(0, &eth(B, A), 1)),
        DropReason::SameSegment
    );
    let mut cfg = sw.port(0).unwrap();
    cfg.flags.hairpin = true;
    sw.set_port(0, cfg).unwrap();
    // set_port keeps entries when VLAN and learning are unchanged.
    assert_eq!(out(&sw.decide(0, &eth(B, A), 2)), vec![0]);
    // Hairpin ports also get their own floods back.
    assert_eq!(out(&sw.decide(0, &eth(Mac::BROADCAST, A), 3)), vec![0, 1]);
}

#[test]
fn runts_truncated_tags_and_bad_sources_are_dropped() {
    let sw = plain(2);
    assert_eq!(dropped(&sw.decide(0, &[0u8; 13], 0)), DropReason::Runt);
    assert_eq!(dropped(&sw.decide(0, &[], 0)), DropReason::Runt);
    let mut f = eth(B, A);
    f[12..14].copy_from_slice(&[0x81, 0x00]);
    f.truncate(16);
    assert_eq!(dropped(&sw.decide(0, &f, 0)), DropReason::TruncatedTag);
    f[12..14].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(dropped(&sw.decide(0, &f, 0)), DropReason::TruncatedTag);
    for bad in [Mac::BROADCAST, Mac::ZERO, Mac([1, 0, 0x5e, 0, 0, 1])] {
        assert_eq!(
            dropped(&sw.decide(0, &eth(B, bad), 0)),
            DropReason::InvalidSource
        );
    }
    assert!(sw.fdb().is_empty(), "nothing learned from dropped frames");
}

#[test]
fn header_only_frame_is_forwarded() {
    let sw = plain(2);
    let f = &eth(B, A)[..14];
    assert_eq!(out(&sw.decide(0, f, 0)), vec![1]);
}

#[test]
fn down_and_unknown_ports() {
    let sw = plain(3);
    sw.set_port_up(2, false);
    assert_eq!(out(&sw.decide(0, &eth(Mac::BROADCAST, A), 0)), vec![1]);
    assert_eq!(
        dropped(&sw.decide(2, &eth(Mac::BROADCAST, B), 0)),
        DropReason::PortDown
    );
    assert_eq!(
        dropped(&sw.decide(9, &eth(Mac::BROADCAST, B), 0)),
        DropReason::PortDown
    );
}

/// Found by the fuzz target frame_decide: an id marked up while free (a
/// reader of the removed port saw a frame after the removal) made the
/// next port added there start up.
#[test]
fn a_new_port_starts_down_even_on_an_id_marked_up() {
    let sw = Switch::new(&SwitchConfig::default());
    sw.set_port_up(0, true);
    let id = sw.add_port(PortConfig::new("p0")).unwrap();
    assert_eq!(id, 0);
    assert!(!sw.port_up(0));
    assert_eq!(dropped(&sw.decide(0, &eth(B, A), 0)), DropReason::PortDown);
    sw.set_port_up(1, true);
    sw.install([Some(PortConfig::new("p0")), Some(PortConfig::new("p1"))]);
    assert!(!sw.port_up(1), "a new port from install starts down");
}

#[test]
fn port_down_flushes_its_entries() {
    let sw = plain(3);
    sw.decide(1, &eth(A, B), 0);
    assert_eq!(sw.fdb().lookup(B, UNAWARE_VID, 0), Some(1));
    sw.set_port_up(1, false);
    assert_eq!(sw.fdb().lookup(B, UNAWARE_VID, 0), None);
}

#[test]
fn mac_moves_between_ports() {
    let sw = plain(3);
    sw.decide(0, &eth(B, A), 0);
    let d = sw.decide(2, &eth(B, A), 1);
    assert_eq!(d.learn, Learn::Moved);
    assert_eq!(out(&sw.decide(1, &eth(A, B), 2)), vec![2]);
}

#[test]
fn ageing_with_fake_clock() {
    let cfg = SwitchConfig {
        ageing_ms: 10_000,
        ..SwitchConfig::default()
    };
    let sw = switch_with(
        cfg,
        vec![
            PortConfig::new("a"),
            PortConfig::new("b"),
            PortConfig::new("c"),
        ],
    );
    sw.decide(0, &eth(B, A), 0);
    assert_eq!(out(&sw.decide(1, &eth(A, B), 9_999)), vec![0]);
    assert_eq!(sw.expire(9_999), 0);
    // A not seen for 10 s: gone, frames to it flood again.
    assert_eq!(out(&sw.decide(1, &eth(A, B), 10_000)), vec![0, 2]);
    assert_eq!(sw.expire(10_000), 1);
    assert_eq!(
        sw.fdb()
            .stats()
            .aged
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn learning_off_port_does_not_learn() {
    let mut p = PortConfig::new("p0");
    p.flags.learning = false;
    let sw = switch_with(SwitchConfig::default(), vec![p, PortConfig::new("p1")]);
    let d = sw.decide(0, &eth(B, A), 0);
    assert_eq!(d.learn, Learn::Skipped);
    assert!(sw.fdb().is_empty());
}

#[test]
fn flood_flags() {
    let mut p1 = PortConfig::new("p1");
    p1.flags.flood = false;
    let mut p2 = PortConfig::new("p2");
    p2.flags.mcast_flood = false;
    let mut p3 = PortConfig::new("p3");
    p3.flags.bcast_flood = false;
    let sw = switch_with(
        SwitchConfig::default(),
        vec![PortConfig::new("p0"), p1, p2, p3],
    );
    assert_eq!(
        out(&sw.decide(0, &eth(B, A), 0)),
        vec![2, 3],
        "unknown unicast"
    );
    let mcast = Mac([0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(
        out(&sw.decide(0, &eth(mcast, A), 0)),
        vec![1, 3],
        "multicast"
    );
    assert_eq!(
        out(&sw.decide(0, &eth(Mac::BROADCAST, A), 0)),
        vec![1, 2],
        "broadcast"
    );
    // Flags do not affect known unicast.
    sw.decide(1, &eth(A, B), 0);
    assert_eq!(out(&sw.decide(0, &eth(B, A), 1)), vec![1]);
}

#[test]
fn isolated_ports_do_not_talk_to_each_other() {
    let iso = |n: &str| {
        let mut p = PortConfig::new(n);
        p.flags.isolated = true;
        p
    };
    let sw = switch_with(
        SwitchConfig::default(),
        vec![iso("i0"), iso("i1"), PortConfig::new("up")],
    );
    assert_eq!(out(&sw.decide(0, &eth(Mac::BROADCAST, A), 0)), vec![2]);
    assert_eq!(out(&sw.decide(2, &eth(Mac::BROADCAST, C), 0)), vec![0, 1]);
    sw.decide(1, &eth(C, B), 0);
    assert_eq!(dropped(&sw.decide(0, &eth(B, A), 1)), DropReason::Isolated);
    assert_eq!(out(&sw.decide(2, &eth(B, C), 1)), vec![1]);
    assert_eq!(out(&sw.decide(1, &eth(C, B), 1)), vec![2]);
}

#[test]
fn link_local_rules() {
    let sw = plain(3);
    let ll = |x: u8| Mac([0x01, 0x80, 0xc2, 0, 0, x]);
    assert_eq!(
        out(&sw.decide(0, &eth(ll(0), A), 0)),
        vec![1, 2],
        "STP forwarded"
    );
    assert_eq!(
        dropped(&sw.decide(0, &eth(ll(1), A), 0)),
        DropReason::PauseFrame
    );
    assert_eq!(
        dropped(&sw.decide(0, &eth(ll(2), A), 0)),
        DropReason::LinkLocal
    );
    assert_eq!(
        dropped(&sw.decide(0, &eth(ll(0xe), A), 0)),
        DropReason::LinkLocal
    );
    sw.set_group_fwd_mask((1 << 0xe) | (1 << 2) | (1 << 1));
    assert_eq!(out(&sw.decide(0, &eth(ll(0xe), A), 0)), vec![1, 2], "LLDP");
    assert_eq!(out(&sw.decide(0, &eth(ll(2), A), 0)), vec![1, 2], "LACP");
    assert_eq!(
        dropped(&sw.decide(0, &eth(ll(1), A), 0)),
        DropReason::PauseFrame
    );
    // Outside the reserved block: ordinary multicast.
    assert_eq!(
        out(&sw.decide(0, &eth(Mac([1, 0x80, 0xc2, 0, 0, 0x10]), A), 0)),
        vec![1, 2]
    );
    // Link-local rules apply to tagged frames too (VLAN-unaware).
    let f = tagged(ll(0xd), A, 0x8100, 0, 10);
    sw.set_group_fwd_mask(0);
    assert_eq!(dropped(&sw.decide(0, &f, 0)), DropReason::LinkLocal);
}

#[test]
fn link_local_sources_are_learned_like_the_kernel() {
    let sw = plain(3);
    sw.decide(1, &eth(Mac([0x01, 0x80, 0xc2, 0, 0, 0xe]), B), 0);
    assert_eq!(out(&sw.decide(0, &eth(B, A), 1)), vec![1]);
}

#[test]
fn vlan_unaware_passes_tags_untouched() {
    let sw = plain(3);
    for (tpid, vid) in [(0x8100, 10), (0x8100, 0), (0x8100, 4095), (0x88a8, 20)] {
        let d = sw.decide(0, &tagged(Mac::BROADCAST, A, tpid, 3, vid), 0);
        let e = d.egress().unwrap();
        assert_eq!(out(&d), vec![1, 2]);
        assert!(e.iter().all(|(_, a)| a == TagAction::Keep));
    }
    // FDB ignores tags: a MAC learned tagged is found untagged.
    assert_eq!(out(&sw.decide(1, &eth(A, B), 1)), vec![0]);
}

fn vlan_switch() -> Switch {
    let cfg = SwitchConfig {
        vlan_filtering: true,
        ..SwitchConfig::default()
    };
    switch_with(
        cfg,
        vec![
            PortConfig::new("a10").access(10),
            PortConfig::new("a20").access(20),
            PortConfig::new("trunk").trunk("10,20", None),
            PortConfig::new("native").trunk("20", Some(10)),
            PortConfig::new("b10").access(10),
        ],
    )
}

#[test]
fn access_ports_in_different_vlans_are_separate() {
    let sw = vlan_switch();
    let d = sw.decide(0, &eth(Mac::BROADCAST, A), 0);
    let e = *d.egress().unwrap();
    assert_eq!(e.vid, 10);
    let actions: Vec<_> = e.iter().collect();
    assert_eq!(
        actions,
        vec![
            (2, TagAction::Push(10)),
            (3, TagAction::Keep),
            (4, TagAction::Keep)
        ]
    );
    let d = sw.decide(1, &eth(Mac::BROADCAST, B), 0);
    let actions: Vec<_> = d.egress().unwrap().iter().collect();
    assert_eq!(
        actions,
        vec![(2, TagAction::Push(20)), (3, TagAction::Push(20))]
    );
    // A learned in VLAN 10 is unknown in VLAN 20.
    assert_eq!(out(&sw.decide(1, &eth(A, B), 1)), vec![2, 3]);
}

#[test]
fn trunk_ingress_tags() {
    let sw = vlan_switch();
    let d = sw.decide(2, &tagged(Mac::BROADCAST, A, 0x8100, 5, 20), 0);
    let actions: Vec<_> = d.egress().unwrap().iter().collect();
    assert_eq!(actions, vec![(1, TagAction::Pop), (3, TagAction::Keep)]);
    // VLAN 30 is not allowed on the trunk.
    assert_eq!(
        dropped(&sw.decide(2, &tagged(Mac::BROADCAST, A, 0x8100, 0, 30), 0)),
        DropReason::VlanIngress
    );
    // Untagged on a trunk with no native VLAN.
    assert_eq!(
        dropped(&sw.decide(2, &eth(Mac::BROADCAST, A), 0)),
        DropReason::VlanIngress
    );
    // VID 4095 is reserved.
    assert_eq!(
        dropped(&sw.decide(2, &tagged(Mac::BROADCAST, A, 0x8100, 0, 4095), 0)),
        DropReason::VlanIngress
    );
    // A tagged frame on an access port for another VLAN.
    assert_eq!(
        dropped(&sw.decide(0, &tagged(Mac::BROADCAST, A, 0x8100, 0, 20), 0)),
        DropReason::VlanIngress
    );
}

#[test]
fn native_vlan_and_priority_tags() {
    let sw = vlan_switch();
    // Untagged on the native trunk: VLAN 10.
    let d = sw.decide(3, &eth(Mac::BROADCAST, C), 0);
    let actions: Vec<_> = d.egress().unwrap().iter().collect();
    assert_eq!(
        actions,
        vec![
            (0, TagAction::Keep),
            (2, TagAction::Push(10)),
            (4, TagAction::Keep)
        ]
    );
    // Priority-tagged on an access port: PVID, VID rewritten for tagged egress.
    let d = sw.decide(0, &tagged(Mac::BROADCAST, A, 0x8100, 6, 0), 0);
    let e = d.egress().unwrap();
    assert_eq!(e.vid, 10);
    let actions: Vec<_> = e.iter().collect();
    assert_eq!(
        actions,
        vec![
            (2, TagAction::Rewrite(10)),
            (3, TagAction::Pop),
            (4, TagAction::Pop)
        ]
    );
    // Tagged with the native VLAN on the native trunk is accepted too.
    let d = sw.decide(3, &tagged(Mac::BROADCAST, C, 0x8100, 0, 10), 1);
    assert_eq!(out(&d), vec![0, 2, 4]);
}

#[test]
fn other_tpid_counts_as_untagged() {
    let sw = vlan_switch();
    // 802.1ad frame on an 802.1Q switch: untagged, takes the PVID; egress to
    // the trunk pushes a C-tag outside it.
    let d = sw.decide(0, &tagged(Mac::BROADCAST, A, 0x88a8, 0, 99), 0);
    let e = d.egress().unwrap();
    assert_eq!(e.vid, 10);
    assert_eq!(e.tag_action(2), TagAction::Push(10));
    // An 802.1ad switch treats 0x88a8 as its tag.
    sw.set_vlan_filtering(true, 0x88a8);
    let d = sw.decide(2, &tagged(Mac::BROADCAST, A, 0x88a8, 0, 20), 0);
    assert_eq!(d.egress().unwrap().vid, 20);
}

#[test]
fn known_unicast_across_vlan_members_only() {
    let sw = vlan_switch();
    sw.decide(4, &eth(A, B), 0); // B on b10, VLAN 10
    let d = sw.decide(2, &tagged(B, A, 0x8100, 0, 10), 1);
    assert_eq!(
        d.egress().unwrap().iter().collect::<Vec<_>>(),
        vec![(4, TagAction::Pop)]
    );
    // The same MAC in VLAN 20 is unknown: flood in VLAN 20 only.
    assert_eq!(
        out(&sw.decide(2, &tagged(B, A, 0x8100, 0, 20), 1)),
        vec![1, 3]
    );
}

#[test]
fn vlan_change_flushes_port_entries() {
    let sw = vlan_switch();
    sw.decide(0, &eth(Mac::BROADCAST, A), 0);
    assert_eq!(sw.fdb().lookup(A, 10, 0), Some(0));
    sw.set_port(0, PortConfig::new("a10").access(30)).unwrap();
    assert_eq!(sw.fdb().lookup(A, 10, 0), None);
}

#[test]
fn port_table_changes() {
    let sw = plain(2);
    assert_eq!(
        sw.add_port(PortConfig::new("p0")),
        Err(TableError::Duplicate("p0".into()))
    );
    assert!(matches!(
        sw.add_port(PortConfig::new("bad").trunk("", None)),
        Err(TableError::Invalid { .. })
    ));
    sw.decide(1, &eth(A, B), 0);
    sw.fdb().add_static(C, UNAWARE_VID, 1);
    let removed = sw.remove_port(1).unwrap();
    assert_eq!(removed.name, "p1");
    assert!(
        sw.fdb().is_empty(),
        "learned and static entries of the port go"
    );
    assert_eq!(
        sw.add_port(PortConfig::new("p2")).unwrap(),
        1,
        "lowest free id"
    );
    assert_eq!(sw.port_id("p2"), Some(1));
    assert!(!sw.port_up(1), "new ports start down");
}

#[test]
fn mac_limit_refuses_but_still_floods() {
    let mut p = PortConfig::new("p0");
    p.flags.mac_limit = Some(MacLimit::new(1).unwrap());
    let sw = switch_with(SwitchConfig::default(), vec![p, PortConfig::new("p1")]);
    assert_eq!(sw.decide(0, &eth(C, A), 0).learn, Learn::Learned);
    let d = sw.decide(0, &eth(C, B), 0);
    assert_eq!(d.learn, Learn::Refused);
    assert_eq!(out(&d), vec![1]);
}

#[test]
fn static_entry_wins_over_learning() {
    let sw = plain(3);
    sw.fdb().add_static(A, UNAWARE_VID, 2);
    let d = sw.decide(0, &eth(B, A), 0);
    assert_eq!(d.learn, Learn::Refused);
    assert_eq!(out(&sw.decide(1, &eth(A, B), 1)), vec![2]);
}

#[test]
fn fdb_capacity_from_config() {
    let cfg = SwitchConfig {
        fdb_capacity: 2,
        ..SwitchConfig::default()
    };
    let sw = switch_with(cfg, vec![PortConfig::new("a"), PortConfig::new("b")]);
    for i in 0..10u8 {
        sw.decide(0, &eth(Mac::BROADCAST, Mac([2, 0, 0, 0, 1, i])), i as u64);
    }
    assert_eq!(sw.fdb().len(), 2);
    assert_eq!(
        sw.fdb()
            .stats()
            .evicted
            .load(std::sync::atomic::Ordering::Relaxed),
        8
    );
}

const STP_GROUP: Mac = Mac([0x01, 0x80, 0xc2, 0, 0, 0]);

#[test]
fn bpdus_are_forwarded_while_spanning_tree_is_off() {
    let sw = plain(3);
    assert_eq!(out(&sw.decide(0, &eth(STP_GROUP, A), 0)), vec![1, 2]);
    assert_eq!(sw.stp_gate(0), StpGate::Forwarding);
}

#[test]
fn bpdus_are_punted_on_every_port_state_while_spanning_tree_runs() {
    let sw = plain(3);
    sw.set_stp(true);
    for gate in [StpGate::Discarding, StpGate::Learning, StpGate::Forwarding] {
        sw.set_stp_gate(0, gate);
        let d = sw.decide(0, &eth(STP_GROUP, A), 0);
        assert_eq!(d.action, Action::Punt, "{gate:?}");
        assert_eq!(d.learn, Learn::Skipped);
    }
    sw.set_port_up(0, false);
    assert_eq!(
        dropped(&sw.decide(0, &eth(STP_GROUP, A), 0)),
        DropReason::PortDown,
        "a port that is down hears nothing"
    );
}

#[test]
fn a_discarding_port_neither_learns_nor_forwards() {
    let sw = plain(3);
    sw.set_stp(true);
    assert_eq!(
        sw.stp_gate(0),
        StpGate::Discarding,
        "ports start discarding"
    );
    let d = sw.decide(0, &eth(Mac::BROADCAST, A), 0);
    assert_eq!(dropped(&d), DropReason::StpBlocked);
    assert_eq!(d.learn, Learn::Skipped);
    assert_eq!(sw.fdb().len(), 0);
}

#[test]
fn a_learning_port_learns_then_drops() {
    let sw = plain(3);
    sw.set_stp(true);
    sw.set_stp_gate(0, StpGate::Learning);
    let d = sw.decide(0, &eth(Mac::BROADCAST, A), 0);
    assert_eq!(dropped(&d), DropReason::StpBlocked);
    assert_eq!(d.learn, Learn::Learned);
}

#[test]
fn only_forwarding_ports_receive() {
    let sw = plain(4);
    sw.set_stp(true);
    sw.set_stp_gate(0, StpGate::Forwarding);
    sw.set_stp_gate(1, StpGate::Forwarding);
    sw.set_stp_gate(2, StpGate::Learning);
    assert_eq!(out(&sw.decide(0, &eth(Mac::BROADCAST, A), 0)), vec![1]);
    // Learned behind a learning port: known, but not sent there.
    sw.decide(2, &eth(Mac::BROADCAST, B), 1);
    assert_eq!(dropped(&sw.decide(0, &eth(B, A), 2)), DropReason::NoEgress);
    sw.set_stp_gate(2, StpGate::Forwarding);
    assert_eq!(out(&sw.decide(0, &eth(B, A), 3)), vec![2]);
}

#[test]
fn turning_spanning_tree_off_forwards_everywhere_again() {
    let sw = plain(3);
    sw.set_stp(true);
    sw.set_stp(false);
    assert_eq!(out(&sw.decide(0, &eth(Mac::BROADCAST, A), 0)), vec![1, 2]);
    sw.set_stp(true);
    assert_eq!(sw.stp_gate(1), StpGate::Discarding, "states start over");
}

#[test]
fn a_removed_port_forgets_its_spanning_tree_state() {
    let sw = plain(3);
    sw.set_stp(true);
    sw.set_stp_gate(2, StpGate::Forwarding);
    sw.remove_port(2).unwrap();
    let id = sw.add_port(PortConfig::new("p9".to_string())).unwrap();
    assert_eq!(id, 2);
    assert_eq!(sw.stp_gate(id), StpGate::Discarding);
}
