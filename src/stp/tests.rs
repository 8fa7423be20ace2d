//! Protocol tests on the simulator (src/stp/sim.rs).

use super::sim::{self, Sim, mac, port_mac};
use super::*;
use crate::wire::Mac;
use crate::wire::bpdu::{Bpdu, BpduBody, Flags, SECOND};
use PortRole::{Alternate, Backup, Designated, Root};
use PortState::{Discarding, Forwarding, Learning};

fn rstp() -> BridgeConfig {
    BridgeConfig::default()
}

fn stp() -> BridgeConfig {
    BridgeConfig {
        mode: Mode::Stp,
        ..BridgeConfig::default()
    }
}

fn no_runaways(s: &Sim) {
    for (i, b) in s.bridges.iter().enumerate() {
        assert_eq!(b.runaway_runs, 0, "bridge {i} hit the pass bound");
    }
}

#[test]
fn two_bridges_converge_at_once_with_rstp() {
    let mut s = Sim::new(2, rstp());
    s.link((0, 0), (1, 0));
    let t = s.run_until_converged(10).expect("converges");
    assert!(
        t <= 1,
        "RSTP handshake should not wait for timers, took {t}"
    );
    assert_eq!((s.role((0, 0)), s.state((0, 0))), (Designated, Forwarding));
    assert_eq!((s.role((1, 0)), s.state((1, 0))), (Root, Forwarding));
    let st = s.bridges[1].status();
    assert_eq!(st.root_id, s.bridges[0].status().bridge_id);
    assert_eq!(st.root_port, Some(0));
    assert_eq!(st.root_path_cost, 2000);
    assert_eq!(s.bridges[0].status().root_port, None);
    no_runaways(&s);
}

#[test]
fn parallel_links_give_an_alternate() {
    let mut s = Sim::new(2, rstp());
    s.link((0, 0), (1, 0));
    s.link((0, 1), (1, 1));
    s.run_until_converged(10).expect("converges");
    assert_eq!(s.role((1, 0)), Root);
    assert_eq!((s.role((1, 1)), s.state((1, 1))), (Alternate, Discarding));
    assert_eq!(s.state((0, 1)), Forwarding);
    no_runaways(&s);
}

#[test]
fn shared_lan_gives_a_backup_port() {
    // Bridge 1 has two ports on a shared segment it is designated for;
    // bridge 2 hangs off that segment. Bridge 0 sees a shared segment twice.
    let mut s = Sim::new(3, rstp());
    s.link((0, 0), (1, 0));
    s.lan(&[(1, 1), (1, 2), (2, 0)]);
    s.run_until_converged(60).expect("converges");
    assert_eq!(s.role((1, 0)), Root);
    assert_eq!((s.role((1, 1)), s.state((1, 1))), (Designated, Forwarding));
    assert_eq!((s.role((1, 2)), s.state((1, 2))), (Backup, Discarding));
    assert_eq!((s.role((2, 0)), s.state((2, 0))), (Root, Forwarding));
    no_runaways(&s);
}

/// Ring of `n` bridges: bridge i port 1 to bridge i+1 port 0. Returns the
/// LAN indices (LAN i joins i and i+1).
fn ring(n: usize, cfg: BridgeConfig) -> (Sim, Vec<usize>) {
    ring_with(n, cfg, false, false)
}

fn ring_with(n: usize, cfg: BridgeConfig, delay: bool, duplicate: bool) -> (Sim, Vec<usize>) {
    let mut s = Sim::new(n, cfg);
    s.delay = delay;
    s.duplicate = duplicate;
    s.check_loops = true;
    let lans = (0..n).map(|i| s.link((i, 1), ((i + 1) % n, 0))).collect();
    (s, lans)
}

fn discarding_ports(s: &Sim) -> Vec<(usize, PortId)> {
    let mut v = Vec::new();
    for (i, b) in s.bridges.iter().enumerate() {
        for p in b.status().ports {
            if p.state == Discarding {
                v.push((i, p.port));
            }
        }
    }
    v
}

#[test]
fn ring_of_five_blocks_one_port_and_reconverges_fast() {
    let (mut s, lans) = ring(5, rstp());
    let t0 = s.run_until_converged(60).expect("converges");
    // The port farthest from the root (bridge 0) is blocked: bridges 2 and 3
    // are both 2 hops away; bridge 3's port 0 (towards 2) loses on the
    // designated bridge id.
    assert_eq!(discarding_ports(&s), vec![(3, 0)]);
    assert_eq!(s.role((3, 0)), Alternate);
    // Steady state first: the transmit hold counters (17.26) drain.
    s.run(10);
    // Cut the active link between bridges 0 and 1: 1 must re-root through
    // the ring the other way.
    let before = s.delivered;
    s.set_lan(lans[0], false);
    let after_cut = s.converged();
    let t1 = s.run_until_converged(60).expect("reconverges after a cut");
    assert_eq!(s.state((3, 0)), Forwarding);
    // Restore the link: the old tree comes back.
    s.run(10);
    s.set_lan(lans[0], true);
    let t2 = s.run_until_converged(60).expect("reconverges after repair");
    assert_eq!(discarding_ports(&s), vec![(3, 0)]);
    eprintln!(
        "ring of 5: initial {t0} ticks; after cut {t1} ticks (without a tick: {after_cut:?}); \
         after repair {t2} ticks; {} BPDUs delivered",
        s.delivered - before
    );
    assert!(
        t1 <= 1 && t2 <= 1,
        "RSTP ring reconvergence took {t1}/{t2} ticks"
    );
    no_runaways(&s);
}

#[test]
fn link_failure_moves_root_port_to_alternate_at_once() {
    let mut s = Sim::new(2, rstp());
    let a = s.link((0, 0), (1, 0));
    s.link((0, 1), (1, 1));
    s.run_until_converged(10).unwrap();
    s.set_lan(a, false);
    assert_eq!(s.role((1, 1)), Root);
    assert_eq!(
        s.state((1, 1)),
        Forwarding,
        "alternate takes over without a tick"
    );
    assert_eq!(s.state((1, 0)), PortState::Disabled);
    s.set_lan(a, true);
    let t = s.run_until_converged(10).unwrap();
    assert!(t <= 1);
    assert_eq!(s.role((1, 0)), Root);
    assert_eq!(s.role((1, 1)), Alternate);
    no_runaways(&s);
}

#[test]
fn root_changes_with_priority_and_back() {
    let (mut s, _) = ring(4, rstp());
    s.run_until_converged(60).unwrap();
    let mut c = s.bridges[2].config();
    c.priority = 4096;
    s.bridges[2].set_config(c);
    s.settle();
    let t = s.run_until_converged(60).expect("new root");
    let root = s.bridges[2].status().bridge_id;
    assert!(s.bridges.iter().all(|b| b.status().root_id == root));
    assert_eq!(root.priority(), 4096);
    eprintln!("root change by priority: {t} ticks");
    c.priority = 32768;
    s.bridges[2].set_config(c);
    s.settle();
    s.run_until_converged(60).expect("old root back");
    let root = s.bridges[0].status().bridge_id;
    assert!(s.bridges.iter().all(|b| b.status().root_id == root));
    no_runaways(&s);
}

#[test]
fn duplicated_and_delayed_bpdus_converge_to_the_same_tree() {
    let (mut plain, _) = ring(5, rstp());
    plain.run_until_converged(60).unwrap();
    let (mut s, lans) = ring_with(5, rstp(), true, true);
    let t = s
        .run_until_converged(60)
        .expect("converges with delay and duplicates");
    assert_eq!(discarding_ports(&s), discarding_ports(&plain));
    s.set_lan(lans[0], false);
    let t1 = s.run_until_converged(60).expect("reconverges");
    eprintln!(
        "ring of 5, delayed+duplicated BPDUs: initial {t} ticks, after cut {t1} ticks, loop: {:?}",
        s.loop_seen
    );
    s.set_lan(lans[0], true);
    s.run_until_converged(60).expect("reconverges");
    assert_eq!(discarding_ports(&s), discarding_ports(&plain));
    no_runaways(&s);
}

#[test]
fn stp_bridge_makes_only_its_ports_fall_back() {
    // 0 and 2 speak RSTP, 1 is legacy STP; a triangle.
    let mut s = Sim::new(3, rstp());
    s.bridges[1] = Bridge::new(mac(1), stp());
    s.link((0, 0), (1, 0));
    s.link((1, 1), (2, 0));
    s.link((0, 1), (2, 1));
    let t = s.run_until_converged(120).expect("converges");
    let mode = |b: usize, p: PortId| {
        s.bridges[b]
            .status()
            .ports
            .iter()
            .find(|x| x.port == p)
            .unwrap()
            .mode
    };
    assert_eq!(
        mode(0, 0),
        "stp",
        "bridge 0 falls back toward the STP bridge"
    );
    assert_eq!(mode(2, 0), "stp");
    assert_eq!(mode(0, 1), "rstp", "only that port");
    assert_eq!(mode(2, 1), "rstp");
    assert_eq!(mode(1, 0), "stp");
    // Bridge 2 reaches the root directly; its port towards 1 blocks... or
    // bridge 1's does: exactly one discarding port in the triangle.
    assert_eq!(discarding_ports(&s).len(), 1);
    eprintln!("triangle with one STP bridge: {t} ticks");
    no_runaways(&s);
}

#[test]
fn all_stp_network_converges_with_timers() {
    let (mut s, lans) = ring(4, stp());
    let t = s.run_until_converged(120).expect("converges");
    assert_eq!(discarding_ports(&s).len(), 1);
    // Legacy timing: listening + learning, not a handshake.
    assert!(t >= 15, "STP should wait for forward delay, took {t}");
    s.set_lan(lans[0], false);
    let t1 = s.run_until_converged(120).expect("reconverges");
    eprintln!("ring of 4 in STP mode: initial {t} ticks, after cut {t1} ticks");
    no_runaways(&s);
}

fn tcn_frame() -> Vec<u8> {
    let mut f = Bpdu::Tcn.to_frame(Mac([2, 0, 0, 0, 0, 0x99]));
    f.resize(60, 0);
    f
}

/// A Configuration BPDU as a Linux bridge with priority 0x1000 sends it.
fn kernel_config(flags: u8) -> Vec<u8> {
    let kid = 0x1000_0200_0000_0099u64;
    let mut f = Bpdu::Config(BpduBody {
        flags: Flags(flags),
        root_id: kid,
        root_path_cost: 0,
        bridge_id: kid,
        port_id: 0x8001,
        message_age: 0,
        max_age: 20 * SECOND,
        hello_time: 2 * SECOND,
        forward_delay: 15 * SECOND,
    })
    .to_frame(Mac([2, 0, 0, 0, 0, 0x99]));
    f.resize(60, 0);
    f
}

fn transmitted(evs: &[Event], port: PortId) -> Vec<Bpdu> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Transmit { port: p, frame } if *p == port => Bpdu::parse_frame(frame).ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn kernel_stp_neighbour_tcn_is_acknowledged() {
    // We are root (default priority beats nothing else here); a kernel
    // bridge behind port 0 sends a TCN: our next Config BPDU there carries
    // TC-ack and TC, and the change propagates to port 1.
    let mut b = Bridge::new(mac(0), stp());
    for p in 0..2 {
        b.add_port(p, PortStpConfig::default(), port_mac(0, p));
        b.set_link(p, true);
    }
    for _ in 0..80 {
        b.tick();
    }
    assert_eq!(b.port(0), Some((Designated, Forwarding)));
    b.take_events();
    let tcs = b.status().topology_changes;
    b.receive(0, &tcn_frame()).unwrap();
    let evs = b.take_events();
    let sent = transmitted(&evs, 0);
    let Some(Bpdu::Config(c)) = sent.first() else {
        panic!("no Config BPDU answered the TCN: {evs:?}")
    };
    assert!(c.flags.tc_ack() && c.flags.tc(), "flags {:?}", c.flags);
    assert!(evs.contains(&Event::TopologyChange));
    assert!(evs.contains(&Event::FastAgeing { on: true }), "{evs:?}");
    // The next periodic Config BPDUs carry TC but no more TC-ack.
    for _ in 0..2 {
        b.tick();
    }
    let sent = transmitted(&b.take_events(), 0);
    let Some(Bpdu::Config(c)) = sent.last() else {
        panic!("no hello")
    };
    assert!(c.flags.tc() && !c.flags.tc_ack());
    assert_eq!(b.status().topology_changes, tcs + 1);
}

#[test]
fn kernel_root_is_followed_and_our_tcn_stops_at_its_ack() {
    // A kernel bridge with a better priority is root behind port 0 (STP
    // mode on our side, RSTP falls back the same way).
    for cfg in [stp(), rstp()] {
        let mut b = Bridge::new(mac(0), cfg);
        for p in 0..2 {
            b.add_port(p, PortStpConfig::default(), port_mac(0, p));
            b.set_link(p, true);
        }
        for t in 0..40 {
            b.receive(0, &kernel_config(0)).unwrap();
            if t % 2 == 0 {
                b.tick();
                b.tick();
            }
        }
        let st = b.status();
        assert_eq!(st.root_id.0, 0x1000_0200_0000_0099);
        assert_eq!(st.root_port, Some(0));
        assert_eq!(st.ports[0].mode, "stp");
        assert_eq!(b.port(0), Some((Root, Forwarding)));
        b.take_events();
        // Port 1 now starts forwarding after being down: a topology change
        // that we report to the kernel root with TCNs until acknowledged.
        b.set_link(1, false);
        b.set_link(1, true);
        let mut tcns = 0;
        for _ in 0..60 {
            b.tick();
            tcns += transmitted(&b.take_events(), 0)
                .iter()
                .filter(|x| **x == Bpdu::Tcn)
                .count();
            if tcns > 0 {
                break;
            }
        }
        assert!(tcns > 0, "no TCN toward the STP root ({:?})", cfg.mode);
        // The kernel acknowledges: TCNs stop.
        b.receive(0, &kernel_config(Flags::TC_ACK)).unwrap();
        b.take_events();
        for _ in 0..10 {
            b.tick();
        }
        let more = transmitted(&b.take_events(), 0)
            .iter()
            .filter(|x| **x == Bpdu::Tcn)
            .count();
        assert_eq!(more, 0, "TCNs after the ack ({:?})", cfg.mode);
    }
}

#[test]
fn admin_edge_forwards_at_once_and_auto_edge_soon() {
    let mut s = Sim::new(1, rstp());
    s.host_port(
        (0, 0),
        PortStpConfig {
            admin_edge: true,
            ..PortStpConfig::default()
        },
    );
    assert_eq!(s.state((0, 0)), Forwarding, "admin edge: no tick needed");
    s.host_port((0, 1), PortStpConfig::default());
    assert_eq!(s.state((0, 1)), Discarding);
    let mut t = 0;
    while s.state((0, 1)) != Forwarding && t < 60 {
        s.tick();
        t += 1;
    }
    assert!(t <= 4, "auto edge took {t} ticks");
    assert!(s.bridges[0].status().ports[1].edge);
    eprintln!("auto-edge port forwarding after {t} ticks");
    // Edge ports do not cause topology changes.
    assert_eq!(s.bridges[0].status().topology_changes, 0);
    // A BPDU on the edge port ends its edge status.
    let mut other = Bridge::new(mac(9), rstp());
    other.add_port(0, PortStpConfig::default(), port_mac(9, 0));
    other.set_link(0, true);
    let frame = other
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Transmit { frame, .. } => Some(frame),
            _ => None,
        })
        .expect("a BPDU");
    s.bridges[0].receive(1, &frame).unwrap();
    assert!(!s.bridges[0].status().ports[1].edge);
}

#[test]
fn without_auto_edge_a_lone_port_waits_for_timers() {
    let mut s = Sim::new(1, rstp());
    s.host_port(
        (0, 0),
        PortStpConfig {
            auto_edge: false,
            ..PortStpConfig::default()
        },
    );
    let mut t = 0;
    while s.state((0, 0)) != Forwarding && t < 60 {
        s.tick();
        t += 1;
    }
    // No handshake partner and no edge: max age, then forward delay
    // (HelloTime for an RSTP port, 17.20.5): 20 + 2 s.
    assert_eq!(t, 22);
}

#[test]
fn bpdu_guard_disables_until_reenabled() {
    let mut b = Bridge::new(mac(0), rstp());
    let guarded = PortStpConfig {
        admin_edge: true,
        bpdu_guard: true,
        ..PortStpConfig::default()
    };
    b.add_port(0, guarded, port_mac(0, 0));
    b.set_link(0, true);
    assert_eq!(b.port(0), Some((Designated, Forwarding)));
    b.take_events();
    b.receive(0, &kernel_config(0)).unwrap();
    let evs = b.take_events();
    assert!(evs.contains(&Event::GuardTripped { port: 0 }));
    assert!(evs.contains(&Event::PortState {
        port: 0,
        state: PortState::Disabled
    }));
    let st = b.status();
    assert!(st.ports[0].guard_tripped);
    assert_eq!(st.ports[0].guard_trips, 1);
    assert_eq!(st.root_id, st.bridge_id, "the guarded BPDU changed nothing");
    for _ in 0..5 {
        b.tick();
    }
    assert_eq!(b.port(0).unwrap().1, PortState::Disabled);
    b.enable_port_after_guard(0);
    assert_eq!(b.port(0), Some((Designated, Forwarding)));
    assert!(!b.status().ports[0].guard_tripped);
}

#[test]
fn topology_change_flushes_all_but_edge_and_receiving_ports() {
    // Line 0 - 1 - 2, bridge 1 with an edge port 5; then a new link 0 - 2
    // comes up... in a line every port forwards; use a new leaf bridge 3
    // behind bridge 2 instead.
    let mut s = Sim::new(4, rstp());
    s.link((0, 0), (1, 0));
    s.link((1, 1), (2, 0));
    s.host_port(
        (1, 5),
        PortStpConfig {
            admin_edge: true,
            ..PortStpConfig::default()
        },
    );
    s.run_until_converged(30).unwrap();
    // Let all ports learn something: mark them as having learned.
    s.run(10);
    let from = s.now + 1;
    s.tick();
    s.link((2, 1), (3, 0));
    s.run(3);
    let flushed = s.flushes_since(from);
    // Bridge 2 detected it on its new port 1: flushes port 0. Bridge 1
    // received it on port 1: flushes port 0 only, not the edge port 5, not
    // port 1. Bridge 0 received it on its only port: no flush.
    assert!(flushed.contains(&(2, 0)), "{flushed:?}");
    assert!(flushed.contains(&(1, 0)), "{flushed:?}");
    assert!(!flushed.contains(&(1, 1)), "{flushed:?}");
    assert!(!flushed.contains(&(1, 5)), "{flushed:?}");
    assert!(!flushed.contains(&(0, 0)), "{flushed:?}");
    assert!(s.bridges[1].status().topology_changes >= 1);
}

#[test]
fn malformed_and_looped_bpdus_change_nothing() {
    let (mut s, _) = ring(3, rstp());
    s.run_until_converged(30).unwrap();
    let before: Vec<_> = s.bridges.iter().map(|b| b.status().ports).collect();
    let good = kernel_config(0);
    let mut bad = Vec::new();
    let mut f = good.clone();
    f[18] = 7; // protocol id
    bad.push((f, BpduError::WrongProtocol));
    bad.push((good[..30].to_vec(), BpduError::BadLength));
    let mut f = good.clone();
    f[20] = 0x33;
    bad.push((f, BpduError::UnknownType));
    let mut f = good.clone();
    f[46..48].copy_from_slice(&[0x50, 0]); // max age 80 s
    bad.push((f, BpduError::AbsurdTimers));
    bad.push((vec![0xff; 10], BpduError::Short));
    for (f, e) in &bad {
        assert_eq!(s.bridges[1].receive(0, f), Err(*e));
    }
    // Bridge 1's own BPDU from port 0, looped back to port 0.
    let own = s.bridges[1].clone();
    let mut own = own;
    own.take_events();
    own.tick();
    own.tick();
    own.tick();
    let looped = own
        .take_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Transmit { port: 1, frame } => Some(frame),
            _ => None,
        })
        .expect("bridge 1 sends on port 1");
    assert_eq!(s.bridges[1].receive(1, &looped), Err(BpduError::Looped));
    s.settle();
    let after: Vec<_> = s.bridges.iter().map(|b| b.status().ports).collect();
    let strip = |v: &Vec<Vec<PortStatus>>| {
        v.iter()
            .flatten()
            .map(|p| (p.port, p.role, p.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&before), strip(&after));
    let p = &s.bridges[1].status().ports;
    assert_eq!(p[0].bpdus_bad, bad.len() as u64);
    assert_eq!(p[1].bpdus_bad, 1);
}

#[test]
fn bpdus_on_a_down_link_are_ignored() {
    let mut b = Bridge::new(mac(5), rstp());
    b.add_port(0, PortStpConfig::default(), port_mac(5, 0));
    assert_eq!(b.receive(0, &kernel_config(0)), Ok(()));
    assert_eq!(b.status().ports[0].bpdus_rx, 0);
    b.set_link(0, true);
    let st = b.status();
    assert_eq!(st.root_id, st.bridge_id);
    assert_eq!(b.receive(42, &kernel_config(0)), Ok(()), "unknown port");
}

#[test]
fn cost_change_keeps_or_moves_the_tree() {
    let mut s = Sim::new(2, rstp());
    s.link((0, 0), (1, 0));
    s.link((0, 1), (1, 1));
    s.run_until_converged(10).unwrap();
    s.log.clear();
    // A cheaper cost on the root port: same tree, no state event.
    let cheap = PortStpConfig {
        cost: Some(100),
        ..PortStpConfig::default()
    };
    s.bridges[1].set_port_config(0, cheap);
    s.settle();
    assert_eq!(s.role((1, 0)), Root);
    assert!(
        !s.log
            .iter()
            .any(|(_, b, e)| *b == 1 && matches!(e, Event::PortState { .. })),
        "{:?}",
        s.log
    );
    assert_eq!(s.bridges[1].status().root_path_cost, 100);
    // A cheaper cost on the alternate: it becomes the root port.
    let cheaper = PortStpConfig {
        cost: Some(10),
        ..PortStpConfig::default()
    };
    s.bridges[1].set_port_config(1, cheaper);
    s.settle();
    let t = s.run_until_converged(10).unwrap();
    assert!(t <= 1);
    assert_eq!(s.role((1, 1)), Root);
    assert_eq!(s.role((1, 0)), Alternate);
    // A port priority change on the root's side moves it back.
    let hi = PortStpConfig {
        priority: 16,
        ..PortStpConfig::default()
    };
    s.bridges[0].set_port_config(0, hi);
    s.bridges[1].set_port_config(1, PortStpConfig::default());
    s.bridges[1].set_port_config(0, PortStpConfig::default());
    s.settle();
    s.run_until_converged(10).unwrap();
    assert_eq!(s.role((1, 0)), Root);
}

#[test]
fn status_serializes_for_the_control_socket() {
    let mut s = Sim::new(2, rstp());
    s.link((0, 0), (1, 0));
    s.run_until_converged(10).unwrap();
    let v = serde_json::to_value(s.bridges[1].status()).unwrap();
    assert_eq!(v["bridge_id"], "8000.020000000001");
    assert_eq!(v["root_id"], "8000.020000000000");
    assert_eq!(v["root_port"], 0);
    assert_eq!(v["root_path_cost"], 2000);
    assert_eq!(v["mode"], "rstp");
    let p = &v["ports"][0];
    assert_eq!(p["role"], "root");
    assert_eq!(p["state"], "forwarding");
    assert_eq!(p["edge"], false);
    assert_eq!(p["cost"], 2000);
    assert_eq!(p["designated_bridge"], "8000.020000000000");
    assert_eq!(p["mode"], "rstp");
    assert_eq!(p["port_id"], "8001");
    for r in [Root, Designated, Alternate, Backup, PortRole::Disabled] {
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
    for st in [Discarding, Learning, Forwarding, PortState::Disabled] {
        assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
    }
}

mod random {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Topo {
        n: usize,
        /// Extra LANs: lists of bridges (2 or 3).
        extra: Vec<Vec<usize>>,
        /// Parent of bridge i+1 in a random spanning tree.
        parents: Vec<usize>,
        priorities: Vec<u16>,
        cut: usize,
    }

    fn topo() -> impl Strategy<Value = Topo> {
        (2usize..=8).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(proptest::collection::vec(0..n, 2..=3), 0..=n),
                (1..n).map(|i| 0..i).collect::<Vec<_>>(),
                proptest::collection::vec(0u16..4, n),
                0usize..32,
            )
                .prop_map(|(n, extra, parents, pr, cut)| Topo {
                    n,
                    extra,
                    parents,
                    priorities: pr.into_iter().map(|p| 0x7000 + p * 4096).collect(),
                    cut,
                })
        })
    }

    fn build(t: &Topo, cfg: BridgeConfig) -> Sim {
        build_with(t, cfg, false)
    }

    fn build_with(t: &Topo, cfg: BridgeConfig, delay: bool) -> Sim {
        let mut s = Sim::new(t.n, cfg);
        s.check_loops = true;
        s.delay = delay;
        s.duplicate = delay;
        for (i, &p) in t.priorities.iter().enumerate() {
            s.bridges[i].set_config(BridgeConfig { priority: p, ..cfg });
        }
        let mut next_port = vec![0u16; t.n];
        let mut port = |b: usize| {
            let p = next_port[b];
            next_port[b] += 1;
            (b, p)
        };
        for (i, &parent) in t.parents.iter().enumerate() {
            let (a, b) = (port(i + 1), port(parent));
            s.link(a, b);
        }
        for lan in &t.extra {
            let ports: Vec<_> = lan.iter().map(|&b| port(b)).collect();
            s.lan(&ports);
        }
        s
    }

    /// Like [`build`], but bridges whose flag is set are kernel-like legacy
    /// bridges (src/stp/legacy.rs).
    fn build_with_legacy(t: &Topo, legacy: &[bool]) -> Sim {
        let mut s = Sim::new(0, rstp());
        s.check_loops = true;
        let mut idx = Vec::new();
        for (i, &is_legacy) in legacy.iter().enumerate().take(t.n) {
            if is_legacy {
                idx.push(s.add_legacy(t.priorities[i]));
            } else {
                s.bridges.push(Bridge::new(
                    mac(i),
                    BridgeConfig {
                        priority: t.priorities[i],
                        ..rstp()
                    },
                ));
                idx.push(s.bridges.len() - 1);
            }
        }
        let mut next_port = vec![0u16; t.n];
        let mut port = |b: usize| {
            let p = next_port[b];
            next_port[b] += 1;
            (idx[b], p)
        };
        for (i, &parent) in t.parents.iter().enumerate() {
            let (a, b) = (port(i + 1), port(parent));
            s.link(a, b);
        }
        for lan in &t.extra {
            // Legacy bridges here model point-to-point kernel ports only.
            let ports: Vec<_> = lan.iter().take(2).map(|&b| port(b)).collect();
            s.lan(&ports);
        }
        s
    }

    proptest! {
        // 48 cases unless PROPTEST_CASES says otherwise.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
            // Same cases on every run: a rare case must not make CI flaky.
            // PROPTEST_RNG_SEED picks another fixed seed.
            rng_seed: proptest::test_runner::RngSeed::Fixed(
                std::env::var("PROPTEST_RNG_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_1702),
            ),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn random_topologies_with_kernel_like_bridges(t in topo(), legacy in proptest::collection::vec(any::<bool>(), 8)) {
            let mut s = build_with_legacy(&t, &legacy);
            let r = s.run_until_converged(200);
            prop_assert!(r.is_some(), "not converged: {:?}", s.converged());
            let lan = t.cut % s.lans.len();
            s.set_lan(lan, false);
            let r = s.run_until_converged(200);
            prop_assert!(r.is_some(), "not converged after cut: {:?}", s.converged());
            s.set_lan(lan, true);
            let r = s.run_until_converged(200);
            prop_assert!(r.is_some(), "not converged after repair: {:?}", s.converged());
            // Transient loops are not asserted here: legacy STP's own
            // message-age timers allow them during re-convergence.
        }

        #[test]
        fn random_topologies_converge_loop_free(t in topo()) {
            let mut s = build(&t, rstp());
            let r = s.run_until_converged(120);
            prop_assert!(r.is_some(), "not converged: {:?}", s.converged());
            // Cut one LAN and converge again (the network may split).
            let lan = t.cut % s.lans.len();
            s.set_lan(lan, false);
            let r = s.run_until_converged(120);
            prop_assert!(r.is_some(), "not converged after cut: {:?}", s.converged());
            s.set_lan(lan, true);
            let r = s.run_until_converged(120);
            prop_assert!(r.is_some(), "not converged after repair: {:?}", s.converged());
            for b in &s.bridges {
                prop_assert_eq!(b.runaway_runs, 0);
            }
            // Point-to-point links only: not even a transient loop, BPDU by
            // BPDU. With shared segments (no handshake, forward delay =
            // hello time) RSTP's count-to-infinity after the root is cut
            // off can forward briefly on stale information; only the final
            // state is checked there.
            if t.extra.iter().all(|l| l.len() <= 2) {
                prop_assert!(s.loop_seen.is_none(), "transient loop: {:?}", s.loop_seen);
            }
        }

        #[test]
        fn random_topologies_with_delayed_duplicated_bpdus(t in topo()) {
            let mut s = build_with(&t, rstp(), true);
            let r = s.run_until_converged(120);
            prop_assert!(r.is_some(), "not converged: {:?}", s.converged());
            let lan = t.cut % s.lans.len();
            s.set_lan(lan, false);
            let r = s.run_until_converged(120);
            prop_assert!(r.is_some(), "not converged after cut: {:?}", s.converged());
        }

        #[test]
        fn random_topologies_converge_in_stp_mode(t in topo()) {
            let mut s = build(&t, stp());
            let r = s.run_until_converged(200);
            prop_assert!(r.is_some(), "not converged: {:?}", s.converged());
        }

        #[test]
        fn random_mixed_stp_rstp_converge(t in topo(), legacy in proptest::collection::vec(any::<bool>(), 8)) {
            let mut s = build(&t, rstp());
            for (i, _) in legacy.iter().enumerate().take(t.n).filter(|x| *x.1) {
                {
                    let c = s.bridges[i].config();
                    s.bridges[i].set_config(BridgeConfig { mode: Mode::Stp, ..c });
                }
            }
            let r = s.run_until_converged(200);
            prop_assert!(r.is_some(), "not converged: {:?}", s.converged());
        }
    }
}

mod with_legacy {
    //! Interoperation with a kernel-like 802.1D-1998 bridge (src/stp/legacy.rs).
    use super::*;

    /// vswitch bridge 0 and two legacy bridges in a triangle.
    fn triangle(cfg: BridgeConfig, legacy_prio: [u16; 2]) -> (Sim, [usize; 2], Vec<usize>) {
        let mut s = Sim::new(1, cfg);
        s.check_loops = true;
        let a = s.add_legacy(legacy_prio[0]);
        let b = s.add_legacy(legacy_prio[1]);
        let lans = vec![
            s.link((0, 0), (a, 0)),
            s.link((0, 1), (b, 0)),
            s.link((a, 1), (b, 1)),
        ];
        (s, [a, b], lans)
    }

    fn all_discarding(s: &Sim) -> Vec<(usize, PortId)> {
        s.lans
            .iter()
            .filter(|l| l.up)
            .flat_map(|l| l.ports.iter().copied())
            .filter(|&at| s.state(at) == Discarding)
            .collect()
    }

    #[test]
    fn triangle_with_two_kernel_bridges_converges() {
        for (name, cfg, prio) in [
            ("rstp, kernel root", rstp(), [0x1000, 0x8000]),
            ("stp, kernel root", stp(), [0x1000, 0x8000]),
            ("rstp, vswitch root", rstp(), [0x8000, 0x9000]),
            ("stp, vswitch root", stp(), [0x8000, 0x9000]),
        ] {
            let (mut s, [a, b], lans) = triangle(cfg, prio);
            let t = s
                .run_until_converged(120)
                .unwrap_or_else(|| panic!("{name}: {:?}", s.converged()));
            assert_eq!(
                all_discarding(&s).len(),
                1,
                "{name}: {:?}",
                all_discarding(&s)
            );
            let st = s.bridges[0].status();
            assert!(
                st.ports.iter().all(|p| p.mode == "stp"),
                "{name}: fell back"
            );
            assert_eq!(s.loop_seen, None, "{name}");
            // Fail the forwarding link on the root path: the blocked port
            // takes over after the legacy timers.
            let root_lan = if prio[0] == 0x1000 { lans[0] } else { lans[1] };
            s.set_lan(root_lan, false);
            let t1 = s
                .run_until_converged(120)
                .unwrap_or_else(|| panic!("{name} after cut: {:?}", s.converged()));
            s.run(10);
            assert!(
                all_discarding(&s).is_empty(),
                "{name}: {:?}",
                all_discarding(&s)
            );
            assert_eq!(s.loop_seen, None, "{name}");
            // Topology changes reached the kernel bridges' root port
            // handshake in both directions.
            let tcns: u64 = s.legacy.iter().map(|l| l.tcns_sent).sum();
            let acks: u64 = s.legacy.iter().map(|l| l.acks_received).sum();
            eprintln!(
                "triangle {name}: converged in {t} ticks, after cut {t1}; kernel TCNs {tcns}, acks {acks}; \
                 root {}",
                s.legacy[a - sim::LEGACY].root()
            );
            let _ = b;
            if prio[0] != 0x1000 {
                // vswitch is root.
                assert_eq!(s.legacy[0].root(), s.bridges[0].status().bridge_id);
            }
        }
    }

    #[test]
    fn kernel_tcn_is_acknowledged_by_vswitch_root() {
        let (mut s, _, lans) = triangle(rstp(), [0x8000, 0x9000]);
        s.run_until_converged(120).unwrap();
        s.run(40);
        let before: u64 = s.legacy.iter().map(|l| l.acks_received).sum();
        // Break vswitch's link to kernel bridge b: b re-roots through a; its
        // port starts forwarding after the legacy timers, b sends a TCN to
        // a, a sends one to vswitch, which must acknowledge.
        s.set_lan(lans[1], false);
        s.run(60);
        let tcns: u64 = s.legacy.iter().map(|l| l.tcns_sent).sum();
        let acks: u64 = s.legacy.iter().map(|l| l.acks_received).sum();
        assert!(tcns > 0);
        assert!(acks > before, "no TC-ack from vswitch");
        assert!(s.bridges[0].status().topology_changes > 0);
    }
}

#[test]
fn layered_network_with_shared_segments() {
    // Two core bridges (0 root, 1 backup root by priority), three access
    // bridges dual-homed to both cores, a shared segment joining the
    // access bridges 2, 3, 4 and a hub where bridge 4 has two ports.
    let mut s = Sim::new(5, rstp());
    s.check_loops = true;
    for (i, prio) in [(0, 4096), (1, 8192)] {
        let c = s.bridges[i].config();
        s.bridges[i].set_config(BridgeConfig {
            priority: prio,
            ..c
        });
    }
    s.link((0, 0), (1, 0));
    for a in 2..5 {
        s.link((0, a as PortId), (a, 0));
        s.link((1, a as PortId), (a, 1));
    }
    s.lan(&[(2, 2), (3, 2), (4, 2), (4, 3)]);
    let t = s.run_until_converged(60).expect("converges");
    let root = s.bridges[0].status().bridge_id;
    assert!(s.bridges.iter().all(|b| b.status().root_id == root));
    assert_eq!(
        s.role((1, 0)),
        Root,
        "backup core reaches the root directly"
    );
    for a in 2..5 {
        assert_eq!(s.role((a, 0)), Root, "access {a} uplink to the root core");
        assert_eq!(
            s.role((a, 1)),
            Alternate,
            "access {a} uplink to the other core"
        );
        assert_eq!(s.state((1, a as PortId)), Forwarding);
    }
    // On the shared segment bridge 2 (lowest id, equal cost) is designated;
    // the other bridges' ports there, both of bridge 4's included, are
    // alternates (a backup needs its own bridge designated on the segment).
    assert_eq!(s.role((2, 2)), Designated);
    assert_eq!(s.role((3, 2)), Alternate);
    assert_eq!(s.role((4, 2)), Alternate);
    assert_eq!(s.role((4, 3)), Alternate);
    // Lose the root core: bridge 1 becomes root, every access bridge
    // re-roots through its alternate.
    s.run(10);
    let dead: Vec<usize> = (0..s.lans.len())
        .filter(|&l| s.lans[l].ports.iter().any(|&(b, _)| b == 0))
        .collect();
    s.set_lans(&dead, false);
    // Losing the root bridge itself in a mesh is RSTP's slow case: the dead
    // root's information counts to infinity (message age +1 per hop, a hop
    // per information timeout) until max age kills it. Link failures are
    // the fast case.
    let t1 = s.run_until_converged(60).expect("reconverges");
    for a in 2..5 {
        assert_eq!((s.role((a, 1)), s.state((a, 1))), (Root, Forwarding));
    }
    eprintln!("layered network: {t} ticks, {t1} ticks after the root core died");
    assert_eq!(s.loop_seen, None);
    no_runaways(&s);
}

#[test]
fn two_trees_merge_under_the_better_root() {
    // Two rings converged apart, then joined by one link.
    let mut s = Sim::new(6, rstp());
    s.check_loops = true;
    for (a, b) in [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)] {
        s.link((a, 10 + b as PortId), (b, 20 + a as PortId));
    }
    s.run_until_converged(60).unwrap();
    assert_ne!(s.bridges[3].status().root_id, s.bridges[0].status().root_id);
    s.run(10);
    s.link((2, 1), (4, 1));
    let t = s.run_until_converged(60).expect("merged");
    let root = s.bridges[0].status().bridge_id;
    assert!(s.bridges.iter().all(|b| b.status().root_id == root));
    assert_eq!(discarding_ports(&s).len(), 2, "one blocked port per ring");
    assert_eq!(s.loop_seen, None);
    eprintln!("two trees merged in {t} ticks");
}

#[test]
fn timer_change_keeps_the_tree() {
    let (mut s, _) = ring(4, rstp());
    s.run_until_converged(60).unwrap();
    s.run(10);
    s.log.clear();
    let c = s.bridges[0].config();
    s.bridges[0].set_config(BridgeConfig {
        hello_time: 1,
        max_age: 10,
        forward_delay: 8,
        ..c
    });
    s.settle();
    s.run(5);
    assert!(
        !s.log
            .iter()
            .any(|(_, _, e)| matches!(e, Event::PortState { .. })),
        "{:?}",
        s.log
    );
    // The root's max age and forward delay reach every bridge.
    for b in &s.bridges {
        assert_eq!(b.root_times.max_age, 10);
        assert_eq!(b.root_times.forward_delay, 8);
    }
    assert_eq!(discarding_ports(&s).len(), 1);
}

#[test]
fn ports_come_and_go_on_a_running_bridge() {
    let mut s = Sim::new(2, rstp());
    s.link((0, 0), (1, 0));
    s.link((0, 1), (1, 1));
    s.run_until_converged(10).unwrap();
    assert_eq!(s.role((1, 1)), Alternate);
    // The root port disappears: the alternate takes over.
    s.bridges[1].remove_port(0);
    s.lans[0].ports.retain(|&(b, _)| b != 1);
    s.settle();
    assert_eq!((s.role((1, 1)), s.state((1, 1))), (Root, Forwarding));
    assert!(s.bridges[1].port(0).is_none());
    s.run_until_converged(10).expect("still converged");
}

#[test]
fn mcheck_returns_a_port_to_rstp_after_the_stp_neighbour_upgraded() {
    let mut s = Sim::new(2, rstp());
    s.bridges[1] = Bridge::new(mac(1), stp());
    s.link((0, 0), (1, 0));
    s.run_until_converged(60).unwrap();
    let modes = |s: &Sim| {
        (
            s.bridges[0].status().ports[0].mode,
            s.bridges[1].status().ports[0].mode,
        )
    };
    assert_eq!(modes(&s).0, "stp");
    let c = s.bridges[1].config();
    s.bridges[1].set_config(BridgeConfig {
        mode: Mode::Rstp,
        ..c
    });
    s.settle();
    s.run(10);
    // Depending on timing both ends may now be stuck sending STP BPDUs to
    // each other (802.1D-2004 17.24 leaves that to mcheck). mcheck on one
    // end makes it send RST BPDUs, which brings the other back too.
    s.bridges[0].mcheck(0);
    s.settle();
    s.run(10);
    assert_eq!(modes(&s), ("rstp", "rstp"));
    s.run_until_converged(10).expect("converged");
}
