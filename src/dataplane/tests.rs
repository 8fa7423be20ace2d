//! Dataplane tests over socket-pair ports: real fds, real threads, no root.

use std::sync::Arc;
use std::time::Duration;

use super::worker::{RETRY, poll_timeout};
use super::*;
use crate::port::{PairPeer, pair};
use crate::switch::{PortConfig, SwitchConfig};

const WAIT: Duration = Duration::from_secs(2);
const QUIET: Duration = Duration::from_millis(200);

fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(len, 0x5a);
    f
}

fn setup(cfgs: Vec<PortConfig>, sw: SwitchConfig, workers: usize) -> (Dataplane, Vec<PairPeer>) {
    setup_polling(cfgs, sw, workers, Duration::ZERO)
}

fn setup_polling(
    cfgs: Vec<PortConfig>,
    sw: SwitchConfig,
    workers: usize,
    busy_poll: Duration,
) -> (Dataplane, Vec<PairPeer>) {
    let switch = Arc::new(Switch::new(&sw));
    let dp = Dataplane::start(
        switch,
        workers,
        Tuning {
            busy_poll,
            io_uring: false,
        },
        Clock::new(),
    )
    .unwrap();
    let mut peers = Vec::new();
    for c in cfgs {
        let (p, peer) = pair().unwrap();
        dp.add_port(c, p).unwrap();
        peers.push(peer);
    }
    (dp, peers)
}

fn ports(n: usize) -> Vec<PortConfig> {
    (0..n).map(|i| PortConfig::new(format!("p{i}"))).collect()
}

const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const BCAST: [u8; 6] = [0xff; 6];

#[test]
fn floods_then_switches() {
    for workers in [1, 2] {
        let (dp, peers) = setup(ports(3), SwitchConfig::default(), workers);
        let f = frame(BCAST, A, 60);
        peers[0].send(&f).unwrap();
        assert_eq!(peers[1].recv_timeout(WAIT).unwrap(), Some(f.clone()));
        assert_eq!(peers[2].recv_timeout(WAIT).unwrap(), Some(f.clone()));
        assert_eq!(
            peers[0].recv_timeout(QUIET).unwrap(),
            None,
            "not back to sender"
        );
        let reply = frame(A, B, 60);
        peers[1].send(&reply).unwrap();
        assert_eq!(peers[0].recv_timeout(WAIT).unwrap(), Some(reply));
        assert_eq!(
            peers[2].recv_timeout(QUIET).unwrap(),
            None,
            "known unicast only to A"
        );
        let totals = stats::PortTotals::sum(&dp.counters(), 0);
        assert_eq!(totals.rx_frames, 1);
        assert_eq!(totals.tx_frames, 1);
        assert_eq!(totals.flooded, 1);
    }
}

#[test]
fn vlan_push_and_pop_on_the_wire() {
    let sw = SwitchConfig {
        vlan_filtering: true,
        ..SwitchConfig::default()
    };
    let (_dp, peers) = setup(
        vec![
            PortConfig::new("a10").access(10),
            PortConfig::new("a20").access(20),
            PortConfig::new("trunk").trunk("10,20", None),
        ],
        sw,
        1,
    );
    let f = frame(BCAST, A, 60);
    peers[0].send(&f).unwrap();
    let got = peers[2].recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(&got[12..16], &[0x81, 0x00, 0x00, 10]);
    assert_eq!(&got[16..], &f[12..]);
    assert_eq!(
        peers[1].recv_timeout(QUIET).unwrap(),
        None,
        "VLAN 20 sees nothing"
    );
    // Tagged VLAN 20 from the trunk arrives untagged on a20.
    peers[2]
        .send(
            &got.iter()
                .enumerate()
                .map(|(i, b)| if i == 15 { 20 } else { *b })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let got = peers[1].recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(got, f);
}

#[test]
fn drops_are_counted_by_reason() {
    let (dp, peers) = setup(ports(2), SwitchConfig::default(), 1);
    peers[0].send(&[0u8; 10]).unwrap();
    peers[0].send(&frame(BCAST, BCAST, 60)).unwrap();
    // A frame over the MTU (1500 + 14 + 4).
    peers[0].send(&frame(BCAST, A, 1600)).unwrap();
    peers[0].send(&frame(BCAST, A, 60)).unwrap();
    assert!(peers[1].recv_timeout(WAIT).unwrap().is_some());
    let t = stats::PortTotals::sum(&dp.counters(), 0);
    let by = |r: &str| t.drops.iter().find(|(n, _)| *n == r).unwrap().1;
    assert_eq!(by("runt"), 1);
    assert_eq!(by("invalid_source"), 1);
    let t1 = stats::PortTotals::sum(&dp.counters(), 1);
    assert_eq!(t1.drops.iter().find(|(n, _)| *n == "too_big").unwrap().1, 1);
}

#[test]
fn removed_port_stops_and_id_is_reused() {
    let (dp, peers) = setup(ports(3), SwitchConfig::default(), 2);
    let h = dp.remove_port(1).unwrap();
    assert_eq!(h.cfg.name, "p1");
    drop(h);
    peers[0].send(&frame(BCAST, A, 60)).unwrap();
    assert!(peers[2].recv_timeout(WAIT).unwrap().is_some());
    // The removed port's socket is closed: its peer reads end-of-file.
    assert_eq!(peers[1].recv_timeout(QUIET).unwrap(), Some(vec![]));
    let (p, peer) = pair().unwrap();
    assert_eq!(dp.add_port(PortConfig::new("new"), p).unwrap(), 1);
    peer.send(&frame(BCAST, B, 60)).unwrap();
    assert!(peers[0].recv_timeout(WAIT).unwrap().is_some());
}

#[test]
fn peer_closing_marks_port_gone_and_switch_keeps_running() {
    let (dp, mut peers) = setup(ports(3), SwitchConfig::default(), 1);
    let gone = peers.remove(1);
    drop(gone);
    peers[0].send(&frame(BCAST, A, 60)).unwrap();
    assert!(peers[1].recv_timeout(WAIT).unwrap().is_some());
    // The first flood hit the closed socket (EPIPE/ECONNREFUSED count as
    // I/O errors); the switch goes on.
    peers[1].send(&frame(A, B, 60)).unwrap();
    assert!(peers[0].recv_timeout(WAIT).unwrap().is_some());
    assert!(dp.switch().port_up(0));
}

#[test]
fn shutdown_joins_workers() {
    let (dp, _peers) = setup(ports(2), SwitchConfig::default(), 2);
    dp.shutdown();
    assert!(dp.ports().is_empty());
}

#[test]
fn busy_polling_worker_forwards_every_frame() {
    let (dp, peers) = setup_polling(
        ports(2),
        SwitchConfig::default(),
        1,
        Duration::from_millis(5),
    );
    for i in 0..50u8 {
        let f = frame(B, [2, 0, 0, 0, 1, i], 60);
        peers[0].send(&f).unwrap();
        assert_eq!(peers[1].recv_timeout(WAIT).unwrap(), Some(f));
        if i % 10 == 0 {
            // Past the busy-poll window: the worker slept and must wake.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    dp.shutdown();
}

#[test]
fn poll_timeout_sleeps_only_when_idle_past_the_busy_window() {
    let z = Duration::ZERO;
    let ms = Duration::from_millis;
    assert_eq!(poll_timeout(true, z, Duration::MAX), z, "frames waiting");
    assert_eq!(poll_timeout(false, z, Duration::MAX), RETRY, "no busy poll");
    assert_eq!(poll_timeout(false, z, z), RETRY, "no busy poll, just busy");
    assert_eq!(poll_timeout(false, ms(20), ms(3)), z, "inside the window");
    assert_eq!(poll_timeout(false, ms(20), ms(20)), RETRY, "window over");
    assert_eq!(poll_timeout(true, ms(20), ms(50)), z);
}

/// After a sleep the worker reads the first frame's egress port next (to
/// pick up an immediate answer) before the rest of the first port's
/// frames: each port's frames still leave in the order they came, and none
/// is lost, when both ports have frames queued at once.
#[test]
fn reading_the_egress_port_first_keeps_each_ports_order() {
    let (_dp, peers) = setup(ports(2), SwitchConfig::default(), 1);
    // Learn both MACs (the first frames flood).
    peers[0].send(&frame(BCAST, A, 60)).unwrap();
    assert!(peers[1].recv_timeout(WAIT).unwrap().is_some());
    peers[1].send(&frame(BCAST, B, 60)).unwrap();
    assert!(peers[0].recv_timeout(WAIT).unwrap().is_some());
    let numbered = |dst, src, k: u8| {
        let mut f = frame(dst, src, 60);
        f[20] = k;
        f
    };
    for round in 0..20 {
        // Let the worker go to sleep, then queue on both ports at once.
        std::thread::sleep(Duration::from_millis(5));
        for k in 0..5 {
            peers[0].send(&numbered(B, A, k)).unwrap();
            peers[1].send(&numbered(A, B, k)).unwrap();
        }
        for k in 0..5 {
            let to_b = peers[1].recv_timeout(WAIT).unwrap();
            assert_eq!(to_b, Some(numbered(B, A, k)), "round {round}: A->B #{k}");
            let to_a = peers[0].recv_timeout(WAIT).unwrap();
            assert_eq!(to_a, Some(numbered(A, B, k)), "round {round}: B->A #{k}");
        }
    }
    assert_eq!(peers[0].recv_timeout(QUIET).unwrap(), None);
    assert_eq!(peers[1].recv_timeout(QUIET).unwrap(), None);
}

/// The first frame a `unix:` peer sends right after connecting is the link
/// coming up: it is forwarded, not dropped as `port_down` (a guest's first
/// ARP or DHCP request).
#[test]
fn the_frame_that_brings_a_link_up_is_forwarded() {
    use std::io::Write;
    let (dp, peers) = setup(ports(1), SwitchConfig::default(), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.sock");
    let port = crate::port::UnixStreamPort::open(&path, 0o600).unwrap();
    let id = dp.add_port(PortConfig::new("vm"), port).unwrap();
    assert!(!dp.switch().port_up(id), "no peer yet: down");
    let mut guest = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let f = frame(BCAST, A, 60);
    let mut framed = (f.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&f);
    guest.write_all(&framed).unwrap();
    assert_eq!(peers[0].recv_timeout(WAIT).unwrap(), Some(f), "first frame");
    assert!(dp.switch().port_up(id));
    let t = stats::PortTotals::sum(&dp.counters(), id);
    assert_eq!(t.dropped(), 0, "{:?}", t.drops);
}

/// A vxlan port's remote table follows the switch's FDB: a MAC the switch
/// no longer holds on the port leaves the table at the next sweep; one it
/// holds stays. Frames from the tunnel reach a pair port, encapsulated
/// frames back reach the sender.
#[test]
fn vxlan_remote_table_follows_the_switch_fdb() {
    use crate::port::{VxlanOptions, VxlanPort};
    use crate::switch::fdb::Flush;
    let (dp, peers) = setup(ports(1), SwitchConfig::default(), 1);
    let vtep = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    vtep.set_read_timeout(Some(WAIT)).unwrap();
    let port = vtep.local_addr().unwrap().port();
    let o = VxlanOptions {
        vni: 42,
        local: "127.0.0.4".parse().unwrap(),
        remotes: vec!["127.0.0.1".parse().unwrap()],
        dstport: port,
        learning: true,
        statics: vec![],
        evpn: false,
        evpn_targets: Default::default(),
        encap: Default::default(),
    };
    let id = dp
        .add_port(
            PortConfig::new("vxlan:t"),
            VxlanPort::open("t", &o).unwrap(),
        )
        .unwrap();
    let vx_ip: std::net::IpAddr = "127.0.0.4".parse().unwrap();
    // A frame from the far VTEP: from A to B.
    let mut d = crate::wire::vxlan::header(42).to_vec();
    d.extend_from_slice(&frame(B, A, 60));
    vtep.send_to(&d, (vx_ip, port)).unwrap();
    let got = peers[0]
        .recv_timeout(WAIT)
        .unwrap()
        .expect("frame out of p0");
    assert_eq!(&got[..12], &d[8..20]);
    // B answers: known unicast to A, encapsulated to the VTEP.
    peers[0].send(&frame(A, B, 60)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = vtep.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..8], &crate::wire::vxlan::header(42));
    assert_eq!(&buf[8..n], &frame(A, B, 60)[..]);
    let remote_of = |m: [u8; 6]| {
        let p = dp.port(id).unwrap();
        let crate::port::Port::Vxlan(v) = &p.device.port else {
            unreachable!()
        };
        v.remote_of(crate::wire::Mac(m))
    };
    assert!(remote_of(A).is_some());
    let now = dp.clock().now_ms() + 5_000;
    assert_eq!(dp.sweep_tunnels(now), 0, "the FDB holds A on the port");
    assert!(remote_of(A).is_some());
    dp.switch().fdb().flush(Flush {
        port: Some(id),
        vlan: None,
        include_static: false,
    });
    assert_eq!(dp.sweep_tunnels(now), 1, "gone from the FDB, gone here");
    assert!(remote_of(A).is_none());
}
