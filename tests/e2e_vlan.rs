//! End-to-end: VLANs from a config file, checked with raw frames against
//! 802.1Q (the kernel here has no bridge VLAN filtering to compare with).
//!
//! Topology of every test: p0 access VLAN 10, p1 access VLAN 20, p2 access
//! VLAN 10, p3 trunk allowed 10,20 with native VLAN 1. Each TAP sits in its
//! own namespace; the access hosts share one IPv4 subnet so only the VLANs
//! keep them apart.

mod support;

use std::net::Ipv4Addr;

use support::agent::Agent;
use support::cmd::require_root;
use support::frame::{BCAST, ETH_TEST, contains, frame, hex, is_arp_for, mac, outer_tag, tagged};
use support::state::{drops, port_json};
use support::switchd::{Lan, write_config};
use support::traffic::Capture;
use support::wait::{PATIENCE, wait_for};

const TRUNK: usize = 3;
const ACCESS10: [usize; 2] = [0, 2];
const ACCESS20: usize = 1;

/// The VLAN switch and one frame agent per host.
struct Vlans {
    lan: Lan,
    agents: Vec<Agent>,
    _dir: tempfile::TempDir,
}

impl Vlans {
    fn new(tag: &str, net: u8) -> Vlans {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vlans.toml");
        let p = path.clone();
        let lan = Lan::with_args(tag, 4, net, move |taps| {
            let text = format!(
                r#"[switch]
ageing-time = 300

[[port]]
name = "{}"
vlan = {{ mode = "access", vid = 10 }}

[[port]]
name = "{}"
vlan = {{ mode = "access", vid = 20 }}

[[port]]
name = "{}"
vlan = {{ mode = "access", vid = 10 }}

[[port]]
name = "{}"
vlan = {{ mode = "trunk", allowed = "10,20", native = 1 }}
"#,
                taps[0], taps[1], taps[2], taps[3]
            );
            write_config(&p, &text);
            vec!["--config".into(), p.to_str().unwrap().into()]
        });
        let agents = (0..4)
            .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
            .collect();
        Vlans {
            lan,
            agents,
            _dir: dir,
        }
    }

    fn mac(&self, i: usize) -> [u8; 6] {
        mac(&self.lan.ns[i].mac(&self.lan.taps[i]))
    }

    /// A unique payload for this test run.
    fn marker(&self, what: &str) -> Vec<u8> {
        format!("VSVLAN-{what}-{}", self.lan.taps[0]).into_bytes()
    }

    /// Waits until every frame sent so far has been forwarded and has
    /// arrived wherever it was going. vswitchd handles each ingress port's
    /// frames in order, so: first a broadcast from each access host, seen
    /// by the trunk (a member of every VLAN); then from the trunk one per
    /// VLAN, seen by every access host. Whatever a frame sent earlier was
    /// written to had it before these barriers arrived.
    fn barrier(&mut self, n: u32) {
        for h in [0, ACCESS20, 2] {
            let m = self.marker(&format!("barrier{n}h{h}"));
            let f = frame(BCAST, self.mac(h), &[], ETH_TEST, &m);
            self.agents[h].send(&f);
            assert!(
                self.agents[TRUNK].wait_marker(&m, PATIENCE),
                "the trunk never saw host {h}'s barrier: {}",
                self.lan.sw.log_text()
            );
        }
        let src = self.mac(TRUNK);
        for (vid, hosts) in [(10u16, vec![0, 2]), (20, vec![ACCESS20])] {
            let m = self.marker(&format!("barrier{n}v{vid}"));
            let f = frame(BCAST, src, &[(0x8100, vid)], ETH_TEST, &m);
            self.agents[TRUNK].send(&f);
            for h in hosts {
                assert!(
                    self.agents[h].wait_marker(&m, PATIENCE),
                    "host {h} never saw the VLAN {vid} barrier: {}",
                    self.lan.sw.log_text()
                );
            }
        }
    }

    fn count(&self, host: usize, marker: &[u8]) -> usize {
        self.agents[host].with_marker(marker).len()
    }
}

#[test]
fn access_ports_in_different_vlans_are_isolated() {
    require_root();
    let mut v = Vlans::new("vli", 30);
    // Same VLAN: IP works.
    assert!(v.lan.ping_eventually(0, 2), "VLAN 10 hosts cannot ping");
    // Different VLANs, same subnet: nothing gets through.
    for (i, j) in [(0, 1), (1, 0), (1, 2)] {
        let o = v.lan.ns[i].exec(&[
            "timeout",
            "15",
            "ping",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "1",
            "-q",
            &v.lan.ips[j],
        ]);
        assert!(
            !o.status.success(),
            "ns{i} (VLAN {}) reached ns{j}",
            if i == 1 { 20 } else { 10 }
        );
    }

    // Raw broadcasts stay in their VLAN.
    let m10 = v.marker("from10");
    let m20 = v.marker("from20");
    let f10 = frame(BCAST, v.mac(0), &[], ETH_TEST, &m10);
    let f20 = frame(BCAST, v.mac(ACCESS20), &[], ETH_TEST, &m20);
    v.agents[0].send(&f10);
    v.agents[ACCESS20].send(&f20);
    assert!(
        v.agents[2].wait_marker(&m10, PATIENCE),
        "VLAN 10 broadcast lost"
    );
    assert!(
        v.agents[TRUNK].wait_marker(&m20, PATIENCE),
        "VLAN 20 broadcast lost"
    );
    v.barrier(0);
    assert_eq!(
        v.count(ACCESS20, &m10),
        0,
        "VLAN 10 broadcast leaked into VLAN 20"
    );
    for h in ACCESS10 {
        assert_eq!(v.count(h, &m20), 0, "VLAN 20 broadcast leaked to host {h}");
    }
    // ARP from the pings above: no VLAN 20 host saw a VLAN 10 ARP request
    // for ns2's address, and the reverse.
    let arp_for = |a: &Agent, ip: &str| {
        let ip: Ipv4Addr = ip.parse().unwrap();
        a.received
            .iter()
            .filter(|f| is_arp_for(f, ip.octets()))
            .count()
    };
    assert_eq!(arp_for(&v.agents[ACCESS20], &v.lan.ips[2]), 0);
}

#[test]
fn trunk_receives_each_vlan_tagged() {
    require_root();
    let mut v = Vlans::new("vlt", 31);
    let m10 = v.marker("t10");
    let m20 = v.marker("t20");
    let f10 = frame(BCAST, v.mac(0), &[], ETH_TEST, &m10);
    let f20 = frame(BCAST, v.mac(ACCESS20), &[], ETH_TEST, &m20);

    // Cross-check with tcpdump's own decoding of the VLAN 20 frame (libpcap
    // reads the tag from aux data, independently of the frame agent).
    let tmp = tempfile::tempdir().unwrap();
    let dump = Capture::start(v.lan.ns[TRUNK].at(), &v.lan.taps[TRUNK], "", 90, tmp.path());

    v.agents[0].send(&f10);
    v.agents[ACCESS20].send(&f20);
    assert!(
        v.agents[TRUNK].wait_marker(&m10, PATIENCE),
        "trunk: no VLAN 10 frame"
    );
    assert!(
        v.agents[TRUNK].wait_marker(&m20, PATIENCE),
        "trunk: no VLAN 20 frame"
    );
    let got10 = v.agents[TRUNK].with_marker(&m10);
    let got20 = v.agents[TRUNK].with_marker(&m20);
    assert_eq!(got10.len(), 1);
    assert_eq!(got20.len(), 1);
    assert_eq!(outer_tag(got10[0]), Some((0x8100, 10)), "{}", hex(got10[0]));
    assert_eq!(outer_tag(got20[0]), Some((0x8100, 20)), "{}", hex(got20[0]));
    // Exactly the frame plus a tag (PCP 0, DEI 0): nothing else changed.
    assert_eq!(got10[0], &tagged(&f10, 10));
    assert_eq!(got20[0], &tagged(&f20, 20));
    // The other access port of VLAN 10 got it untagged and unchanged.
    assert!(v.agents[2].wait_marker(&m10, PATIENCE));
    assert_eq!(v.agents[2].with_marker(&m10)[0], &f10);

    let frames = dump.frames();
    let said = frames
        .iter()
        .find(|(_, bytes)| contains(bytes, &m20))
        .map(|(line, _)| line.clone());
    assert!(
        said.as_deref().is_some_and(|l| l.contains("vlan 20,")),
        "tcpdump saw: {said:?} in {frames:?}"
    );

    // Known unicast from the trunk side: learned per (MAC, VLAN), the reply
    // comes back tagged with the VLAN it was learned in.
    let s = mac("02:00:5e:10:00:31");
    let hello = v.marker("hello");
    let hf = frame(v.mac(0), s, &[(0x8100, 10)], ETH_TEST, &hello);
    v.agents[TRUNK].send(&hf);
    assert!(v.agents[0].wait_marker(&hello, PATIENCE));
    let reply = v.marker("reply");
    let r = frame(s, v.mac(0), &[], ETH_TEST, &reply);
    v.agents[0].send(&r);
    assert!(
        v.agents[TRUNK].wait_marker(&reply, PATIENCE),
        "reply did not reach the trunk"
    );
    assert_eq!(v.agents[TRUNK].with_marker(&reply)[0], &tagged(&r, 10));
    v.barrier(0);
    assert_eq!(
        v.count(2, &reply),
        0,
        "learned unicast flooded to the other VLAN 10 port"
    );
    assert_eq!(v.count(ACCESS20, &reply), 0);
}

#[test]
fn tagged_from_trunk_reaches_the_right_access_port_untagged() {
    require_root();
    let mut v = Vlans::new("vla", 32);
    let src = mac("02:00:5e:10:00:32");
    let m10 = v.marker("to10");
    let m20 = v.marker("to20");
    let u10 = frame(BCAST, src, &[], ETH_TEST, &m10);
    let u20 = frame(BCAST, src, &[], ETH_TEST, &m20);
    v.agents[TRUNK].send(&tagged(&u10, 10));
    v.agents[TRUNK].send(&tagged(&u20, 20));
    for h in ACCESS10 {
        assert!(
            v.agents[h].wait_marker(&m10, PATIENCE),
            "host {h}: no VLAN 10 frame"
        );
        assert_eq!(
            v.agents[h].with_marker(&m10),
            vec![&u10],
            "host {h}: not untagged"
        );
    }
    assert!(
        v.agents[ACCESS20].wait_marker(&m20, PATIENCE),
        "no VLAN 20 frame"
    );
    assert_eq!(v.agents[ACCESS20].with_marker(&m20), vec![&u20]);
    v.barrier(0);
    assert_eq!(v.count(ACCESS20, &m10), 0, "VLAN 10 frame reached VLAN 20");
    for h in ACCESS10 {
        assert_eq!(v.count(h, &m20), 0, "VLAN 20 frame reached host {h}");
    }
    // Priority tag (VID 0, PCP 5) from the trunk belongs to the native
    // VLAN 1, where no access port is: nobody gets it.
    let prio = v.marker("prio");
    v.agents[TRUNK].send(&frame(BCAST, src, &[(0x8100, 0xa000)], ETH_TEST, &prio));
    v.barrier(1);
    for h in 0..3 {
        assert_eq!(
            v.count(h, &prio),
            0,
            "priority-tagged frame reached host {h}"
        );
    }
}

#[test]
fn disallowed_vlans_are_dropped_and_counted() {
    require_root();
    let mut v = Vlans::new("vld", 33);
    let trunk = v.lan.taps[TRUNK].clone();
    let access = v.lan.taps[0].clone();
    let before = v.lan.sw.ctl_json(&["stats"]);
    let (t0, a0) = (
        drops(&before, &trunk, "vlan_ingress"),
        drops(&before, &access, "vlan_ingress"),
    );

    // VLAN 30 is not allowed on the trunk.
    let n = 5;
    let src = mac("02:00:5e:10:00:33");
    let m30 = v.marker("v30");
    for _ in 0..n {
        v.agents[TRUNK].send(&frame(BCAST, src, &[(0x8100, 30)], ETH_TEST, &m30));
    }
    // A VLAN 20 tagged frame on the VLAN 10 access port is not allowed
    // either (ingress filtering).
    let m20 = v.marker("v20on10");
    let f = frame(BCAST, v.mac(0), &[(0x8100, 20)], ETH_TEST, &m20);
    v.agents[0].send(&f);
    // VID 4095 is reserved: never a member.
    let m4095 = v.marker("v4095");
    let f = frame(BCAST, src, &[(0x8100, 4095)], ETH_TEST, &m4095);
    v.agents[TRUNK].send(&f);
    // Untagged on the trunk: native VLAN 1, which no access port carries.
    let m1 = v.marker("native");
    v.agents[TRUNK].send(&frame(BCAST, src, &[], ETH_TEST, &m1));
    v.barrier(0);
    for h in 0..4 {
        assert_eq!(v.count(h, &m30), 0, "VLAN 30 frame reached host {h}");
        assert_eq!(
            v.count(h, &m20),
            0,
            "VLAN 20 frame from an access-10 port reached host {h}"
        );
        assert_eq!(v.count(h, &m1), 0, "native-VLAN frame reached host {h}");
        assert_eq!(v.count(h, &m4095), 0, "VID 4095 frame reached host {h}");
    }
    let counted = wait_for(PATIENCE, || {
        let s = v.lan.sw.ctl_json(&["stats"]);
        let t = drops(&s, &trunk, "vlan_ingress") - t0;
        let a = drops(&s, &access, "vlan_ingress") - a0;
        (t > n && a >= 1).then_some((t, a, s))
    });
    let (t, a, s) = counted.unwrap_or_else(|| {
        panic!(
            "vlan_ingress drops not counted: {}",
            v.lan.sw.ctl_json(&["stats"])
        )
    });
    assert_eq!(t, n + 1, "trunk vlan_ingress drops (VLAN 30 and 4095)");
    assert_eq!(a, 1, "access vlan_ingress drops");
    assert!(
        port_json(&s, &trunk)["counters"]["drops"]["no_egress"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn priority_and_pvid_tagged_frames_on_an_access_port() {
    require_root();
    let mut v = Vlans::new("vlp", 34);
    let src = v.mac(0);
    // Priority-tagged (VID 0, PCP 5): classified into the PVID (10); the
    // access peer gets it untagged, the trunk tagged 10 with PCP 5 kept
    // (like the kernel's br_vlan: only the VID field is filled in).
    let mp = v.marker("prio");
    let untagged = frame(BCAST, src, &[], ETH_TEST, &mp);
    let prio = frame(BCAST, src, &[(0x8100, 0xa000)], ETH_TEST, &mp);
    v.agents[0].send(&prio);
    assert!(
        v.agents[2].wait_marker(&mp, PATIENCE),
        "access peer: no frame"
    );
    assert!(
        v.agents[TRUNK].wait_marker(&mp, PATIENCE),
        "trunk: no frame"
    );
    assert_eq!(v.agents[2].with_marker(&mp), vec![&untagged]);
    let t = v.agents[TRUNK].with_marker(&mp)[0].clone();
    assert_eq!(t, tagged(&untagged, 0xa00a), "trunk got {}", hex(&t));

    // Tagged with its own PVID (10): accepted (the port is a member of
    // VLAN 10), untagged towards the access peer, tagged 10 on the trunk.
    let m10 = v.marker("own-vid");
    let u10 = frame(BCAST, src, &[], ETH_TEST, &m10);
    v.agents[0].send(&tagged(&u10, 10));
    assert!(
        v.agents[2].wait_marker(&m10, PATIENCE),
        "access peer: no frame"
    );
    assert!(
        v.agents[TRUNK].wait_marker(&m10, PATIENCE),
        "trunk: no frame"
    );
    assert_eq!(v.agents[2].with_marker(&m10), vec![&u10]);
    assert_eq!(v.agents[TRUNK].with_marker(&m10), vec![&tagged(&u10, 10)]);
    v.barrier(0);
    assert_eq!(v.count(ACCESS20, &mp) + v.count(ACCESS20, &m10), 0);
}

#[test]
fn learning_is_per_vlan() {
    require_root();
    let mut v = Vlans::new("vll", 35);
    // The same MAC S lives behind the trunk in VLAN 10 and behind the
    // VLAN 20 access port (independent VLAN learning: the FDB key is
    // (MAC, VLAN)).
    let s = mac("02:00:5e:10:00:35");
    let l10 = v.marker("learn10");
    let l20 = v.marker("learn20");
    let f = frame(BCAST, s, &[(0x8100, 10)], ETH_TEST, &l10);
    v.agents[TRUNK].send(&f);
    assert!(v.agents[0].wait_marker(&l10, PATIENCE));
    let f = frame(BCAST, s, &[], ETH_TEST, &l20);
    v.agents[ACCESS20].send(&f);
    assert!(v.agents[TRUNK].wait_marker(&l20, PATIENCE));

    // VLAN 10 to S: only the trunk, tagged 10.
    let to10 = v.marker("to-s-10");
    let f10 = frame(s, v.mac(0), &[], ETH_TEST, &to10);
    v.agents[0].send(&f10);
    // VLAN 20 to S from the trunk: only the VLAN 20 access port, untagged.
    let to20 = v.marker("to-s-20");
    let f20 = frame(s, v.mac(TRUNK), &[], ETH_TEST, &to20);
    v.agents[TRUNK].send(&tagged(&f20, 20));
    v.barrier(0);
    let fdb = v.lan.sw.ctl_json(&["fdb", "show"]);
    let why = format!("\nFDB: {fdb}\nstats: {}", v.lan.sw.ctl_json(&["stats"]));
    assert_eq!(
        v.agents[TRUNK].with_marker(&to10),
        vec![&tagged(&f10, 10)],
        "trunk{why}"
    );
    assert_eq!(
        v.agents[ACCESS20].with_marker(&to20),
        vec![&f20],
        "access 20"
    );
    assert_eq!(
        v.count(ACCESS20, &to10),
        0,
        "VLAN 10 unicast crossed into VLAN 20"
    );
    assert_eq!(v.count(2, &to10), 0, "known unicast flooded in VLAN 10");
    for h in ACCESS10 {
        assert_eq!(v.count(h, &to20), 0, "VLAN 20 unicast reached host {h}");
    }
    let rows = fdb.as_array().cloned().unwrap_or_default();
    let s_rows: Vec<_> = rows
        .iter()
        .filter(|r| r["mac"] == "02:00:5e:10:00:35")
        .map(|r| {
            (
                r["vlan"].as_u64().unwrap_or(0),
                r["port"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(s_rows.contains(&(10, v.lan.taps[TRUNK].clone())), "{fdb}");
    assert!(
        s_rows.contains(&(20, v.lan.taps[ACCESS20].clone())),
        "{fdb}"
    );
}
