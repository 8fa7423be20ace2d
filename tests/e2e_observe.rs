//! End-to-end: seeing what the switch does (`vswitchctl trace`, `mirror`,
//! `capture`, `monitor`), checked against what the ports really carry.
//!
//! - trace agrees with the dataplane: random frames (sources from a small
//!   pool, so they are learned and move; known, unknown, broadcast and
//!   multicast destinations; tagged and untagged; on access ports and a
//!   trunk) are traced, then sent: each reaches exactly the ports the
//!   trace named, with the tag action it named;
//! - a mirror and a capture deliver exactly the selected frames: a mirror
//!   of the frames one port receives, to an output port with a frame
//!   agent, and a capture of the frames another port sends, read back with
//!   tshark: counts, markers and bytes match what was sent;
//! - monitor shows learn, move, flush, age and port events;
//! - a monitor client that never reads slows nothing.

mod support;

use std::io::Write;
use std::time::Duration;

use support::agent::Agent;
use support::cmd::{require_root, run};
use support::frame::{BCAST, ETH_TEST, fake_mac, frame, hex, mac, outer_tag, tagged};
use support::switchd::{Lan, write_config};
use support::wait::{PATIENCE, wait_for};

/// How long a frame the trace says is dropped gets to show up anyway.
const SETTLE: Duration = Duration::from_millis(300);

/// A LAN of `n` namespaces whose switch reads `extra` config after the
/// ports (p0 access 10, p1 access 20, p2 access 10, p3 trunk 10,20
/// native 1 when `vlans`).
fn lan(
    tag: &str,
    n: usize,
    net: u8,
    vlans: bool,
    extra: impl Fn(&[String]) -> String,
) -> (Lan, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switch.toml");
    let p = path.clone();
    let lan = Lan::with_args(tag, n, net, move |taps| {
        let vlan = |i: usize| match (vlans, i) {
            (false, _) => String::new(),
            (true, 0 | 2) => "vlan = { mode = \"access\", vid = 10 }".into(),
            (true, 1) => "vlan = { mode = \"access\", vid = 20 }".into(),
            (true, _) => "vlan = { mode = \"trunk\", allowed = \"10,20\", native = 1 }".into(),
        };
        let mut text = String::new();
        for (i, t) in taps.iter().enumerate() {
            text.push_str(&format!("[[port]]\nname = \"{t}\"\n{}\n\n", vlan(i)));
        }
        text.push_str(&extra(taps));
        write_config(&p, &text);
        vec!["--config".into(), p.to_str().unwrap().into()]
    });
    (lan, dir)
}

/// A tiny deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the receiving agent saw of a frame, as a tag action word.
fn tag_word(sent: &[u8], got: &[u8]) -> String {
    match (outer_tag(sent), outer_tag(got)) {
        (None, None) => "keep".into(),
        (Some(a), Some(b)) if a == b => "keep".into(),
        (None, Some((_, v))) => format!("push {v}"),
        (Some(_), None) => "pop".into(),
        (Some((_, 0)), Some((_, v))) => format!("rewrite {v}"),
        (Some(a), Some(b)) => format!("changed {a:?} to {b:?}"),
    }
}

#[test]
fn trace_agrees_with_the_dataplane() {
    require_root();
    let (lan, _dir) = lan("otr", 4, 141, true, |_| String::new());
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
        .collect();
    let pool: Vec<[u8; 6]> = (1..=4).map(|i| mac(&fake_mac(0x40 + i))).collect();
    let mut rng = Rng(0x5eed_1234_abcd);
    let mut checked = 0;
    for n in 0..48 {
        let ingress = rng.below(4) as usize;
        let src = pool[rng.below(pool.len() as u64) as usize];
        let dst = match rng.below(6) {
            0 => BCAST,
            1 => mac("01:00:5e:00:00:99"),
            2 => mac(&fake_mac(0x7f)),
            _ => pool[rng.below(pool.len() as u64) as usize],
        };
        let marker = format!("VSTRACE-{n}-{}", lan.taps[0]).into_bytes();
        let untagged = frame(dst, src, &[], ETH_TEST, &marker);
        let f = match rng.below(4) {
            0 => tagged(&untagged, 10),
            1 => tagged(&untagged, 20),
            _ => untagged,
        };
        let f = support::frame::padded(f);
        let t = lan
            .sw
            .ctl_json(&["trace", &lan.taps[ingress], "--frame", &hex(&f)]);
        let mut want: Vec<(String, String)> = t["egress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["port"].as_str().unwrap().to_string(),
                    e["tag"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        want.sort();
        agents[ingress].send(&f);
        // Wait for the ports the trace named, then a little for others.
        let arrived = wait_for(PATIENCE, || {
            want.iter().all(|(p, _)| {
                let i = lan.taps.iter().position(|t| t == p).unwrap();
                agents[i].poll();
                agents[i].seen(&marker)
            })
        });
        assert!(
            arrived.is_some(),
            "frame {n}: not everywhere the trace said: {t:#}"
        );
        std::thread::sleep(SETTLE);
        let mut got = Vec::new();
        for (i, a) in agents.iter_mut().enumerate() {
            if i == ingress {
                continue;
            }
            a.poll();
            let copies = a.with_marker(&marker);
            assert!(
                copies.len() <= 1,
                "frame {n}: {} copies on {}",
                copies.len(),
                lan.taps[i]
            );
            if let Some(c) = copies.first() {
                got.push((lan.taps[i].clone(), tag_word(&f, c)));
            }
        }
        got.sort();
        assert_eq!(got, want, "frame {n} ({}): trace {t:#}", hex(&f));
        checked += 1;
    }
    assert_eq!(checked, 48);
    // The trace itself learned nothing and counted nothing: the FDB holds
    // the pool's MACs only as the frames sent left them.
    let fdb = lan.sw.ctl_json(&["fdb", "show"]);
    assert!(fdb.as_array().unwrap().len() <= pool.len() * 2 + 8);
}

/// `vswitchctl capture ARGS` on `lan`'s switch, in the background.
fn capture(lan: &Lan, args: &[&str]) -> support::cmd::Bg {
    let mut v = vec![
        support::cmd::vswitchctl_bin(),
        "--socket",
        lan.sw.socket.to_str().unwrap(),
        "capture",
    ];
    v.extend_from_slice(args);
    let bg = support::cmd::spawn(&v);
    // The capture is in place once vswitchd answered; give it that long.
    std::thread::sleep(Duration::from_millis(500));
    bg
}

/// tshark's view of a pcapng file: (frame length, captured length,
/// payload hex) per frame.
fn tshark(file: &std::path::Path) -> Vec<(usize, usize, String)> {
    let o = run(&[
        "tshark",
        "-r",
        file.to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "frame.len",
        "-e",
        "frame.cap_len",
        "-e",
        "data.data",
    ]);
    assert!(
        o.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f.get(2).unwrap_or(&"").replace(':', ""),
            )
        })
        .collect()
}

#[test]
fn mirror_and_capture_deliver_exactly_the_selected_frames() {
    require_root();
    // p0..p2 hosts, p3 the mirror's output: frames received on p0.
    let (lan, dir) = lan("omr", 4, 142, false, |taps| {
        format!(
            "[[mirror]]\nname = \"in-p0\"\nports = [\"{}\"]\ndirection = \"in\"\noutput = \"{}\"\n",
            taps[0], taps[3]
        )
    });
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
        .collect();
    let macs: Vec<[u8; 6]> = (0..4).map(|i| mac(&fake_mac(0x50 + i))).collect();
    // The capture: frames sent out of p1, at most 100, at most 60 s.
    let file = dir.path().join("p1.pcapng");
    let mut cap = capture(
        &lan,
        &[
            &lan.taps[1],
            "--direction",
            "out",
            "--duration",
            "60",
            "--count",
            "12",
            "-w",
            file.to_str().unwrap(),
        ],
    );
    let tag = &lan.taps[0];
    let mk = |what: &str, n: usize| format!("VSMIR-{what}-{n}-{tag}").into_bytes();
    // 6 frames p0 -> p1 (mirrored: received on p0; captured: out of p1),
    // 6 frames p2 -> p1 (captured only), 4 frames p1 -> p2 (neither).
    let mut sent_out_p1 = Vec::new();
    for n in 0..6 {
        let f = support::frame::padded(frame(macs[1], macs[0], &[], ETH_TEST, &mk("a", n)));
        agents[0].send(&f);
        sent_out_p1.push(f);
    }
    for n in 0..6 {
        let f = support::frame::padded(frame(macs[1], macs[2], &[], ETH_TEST, &mk("b", n)));
        agents[2].send(&f);
        sent_out_p1.push(f);
    }
    for n in 0..4 {
        let f = support::frame::padded(frame(macs[2], macs[1], &[], ETH_TEST, &mk("c", n)));
        agents[1].send(&f);
    }
    let done = cap
        .finish(Duration::from_secs(30))
        .expect("capture ends at its count");
    assert!(
        done.status.success(),
        "capture: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    // The mirror output carries the 6 frames p0 received, once each, and
    // nothing of the others.
    let ok = wait_for(PATIENCE, || {
        agents[3].poll();
        (0..6).all(|n| agents[3].seen(&mk("a", n)))
    });
    assert!(ok.is_some(), "mirror output missed frames");
    std::thread::sleep(SETTLE);
    agents[3].poll();
    for n in 0..6 {
        assert_eq!(agents[3].with_marker(&mk("a", n)).len(), 1, "mirrored a{n}");
    }
    for n in 0..6 {
        assert!(
            !agents[3].seen(&mk("b", n)),
            "b{n} (received on p2) was mirrored"
        );
    }
    for n in 0..4 {
        assert!(
            !agents[3].seen(&mk("c", n)),
            "c{n} (sent out of p0's peer) was mirrored"
        );
    }
    // The copies: what p0 received since the mirror began (its host may
    // have sent some frames of its own), none lost.
    let m = lan.sw.ctl_json(&["mirror", "show"]);
    let show = lan.sw.ctl_json(&["show"]);
    let rx_p0 = support::state::port_json(&show, &lan.taps[0])["counters"]["rx_frames"].as_u64();
    assert!(m[0]["copied"].as_u64() >= Some(6), "{m:#}");
    assert!(m[0]["copied"].as_u64() <= rx_p0, "{m:#}");
    assert_eq!(m[0]["dropped"].as_u64(), Some(0), "{m:#}");
    // The capture holds the 12 frames sent out of p1, in order, whole.
    let frames = tshark(&file);
    assert_eq!(frames.len(), 12, "{frames:?}");
    for (f, (len, cap_len, data)) in sent_out_p1.iter().zip(&frames) {
        assert_eq!(*len, f.len());
        assert_eq!(*cap_len, f.len());
        assert!(data.contains(&hex(&f[14..20])), "payload {data}");
    }
    let total: usize = frames.iter().map(|f| f.0).sum();
    assert_eq!(total, sent_out_p1.iter().map(Vec::len).sum::<usize>());
    // The output port forwards nothing and takes nothing in.
    let t = lan.sw.ctl_json(&[
        "trace",
        &lan.taps[3],
        "--src",
        "02:00:00:00:00:01",
        "--dst",
        "ff:ff:ff:ff:ff:ff",
    ]);
    assert_eq!(t["reason"], "mirror_output");
    // Removing the mirror makes p3 an ordinary port again.
    lan.sw.ctl_ok(&["mirror", "del", "in-p0"]);
    let f = support::frame::padded(frame(BCAST, macs[0], &[], ETH_TEST, &mk("d", 0)));
    agents[0].send(&f);
    assert!(
        agents[3].wait_marker(&mk("d", 0), PATIENCE),
        "p3 is not a port again"
    );
}

#[test]
fn capture_cuts_at_the_snap_length_and_checks_its_input() {
    require_root();
    let (lan, dir) = lan("ocs", 2, 143, false, |_| String::new());
    let mut a = Agent::start(&lan.ns[0], &lan.taps[0]);
    let bad = lan.sw.ctl(&["capture", "nope0", "-w", "/dev/null"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no port named"));
    let bad = lan
        .sw
        .ctl(&["capture", &lan.taps[0], "--snaplen", "4", "-w", "/dev/null"]);
    assert!(!bad.status.success());
    let file = dir.path().join("cut.pcapng");
    let mut cap = capture(
        &lan,
        &[
            &lan.taps[0],
            "--direction",
            "in",
            "--snaplen",
            "20",
            "--count",
            "3",
            "--duration",
            "60",
            "-w",
            file.to_str().unwrap(),
        ],
    );
    for n in 0..3 {
        let marker = format!("VSCUT-{n}-{}-{}", "x".repeat(100), lan.taps[0]).into_bytes();
        a.send(&frame(BCAST, mac(&fake_mac(0x61)), &[], ETH_TEST, &marker));
    }
    let done = cap.finish(Duration::from_secs(30)).expect("capture ends");
    assert!(done.status.success());
    let frames = tshark(&file);
    assert_eq!(frames.len(), 3, "{frames:?}");
    for (len, cap_len, _) in frames {
        assert!(len > 100);
        assert_eq!(cap_len, 20);
    }
}

/// `vswitchctl --json monitor ...` in the background; its lines.
struct Monitor(support::cmd::Bg);

impl Monitor {
    fn start(lan: &Lan, args: &[&str]) -> Monitor {
        let mut v = vec![
            support::cmd::vswitchctl_bin(),
            "--socket",
            lan.sw.socket.to_str().unwrap(),
            "--json",
            "monitor",
        ];
        v.extend_from_slice(args);
        let m = Monitor(support::cmd::spawn(&v));
        std::thread::sleep(Duration::from_millis(500));
        m
    }

    fn lines(mut self) -> Vec<serde_json::Value> {
        let o = self
            .0
            .finish(Duration::from_secs(60))
            .expect("monitor ends");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

fn has(lines: &[serde_json::Value], f: impl Fn(&serde_json::Value) -> bool) -> bool {
    lines.iter().any(f)
}

#[test]
fn monitor_shows_learn_move_flush_age_and_ports() {
    require_root();
    let (lan, _dir) = lan("omo", 3, 144, false, |_| {
        "[switch]\nageing-time = 10\n".into()
    });
    let mut a0 = Agent::start(&lan.ns[0], &lan.taps[0]);
    let mut a1 = Agent::start(&lan.ns[1], &lan.taps[1]);
    let mon = Monitor::start(&lan, &["all", "--duration", "25"]);
    let x = fake_mac(0x71);
    let y = fake_mac(0x72);
    a0.send(&support::frame::test_frame(
        "ff:ff:ff:ff:ff:ff",
        &x,
        b"VSMON-1",
    ));
    a1.send(&support::frame::test_frame(
        "ff:ff:ff:ff:ff:ff",
        &x,
        b"VSMON-2",
    ));
    a1.send(&support::frame::test_frame(
        "ff:ff:ff:ff:ff:ff",
        &y,
        b"VSMON-3",
    ));
    lan.sw.ctl_ok(&["fdb", "flush", "--port", &lan.taps[1]]);
    a0.send(&support::frame::test_frame(
        "ff:ff:ff:ff:ff:ff",
        &y,
        b"VSMON-4",
    ));
    let extra = support::cmd::names("omx");
    lan.sw.ctl_ok(&["port", "add", &extra]);
    lan.sw.ctl_ok(&["port", "del", &extra]);
    // y on p0 ages after 10 s (the sweep runs every second).
    let lines = mon.lines();
    let fdb = |ev: &str, m: &str, port: &str| {
        has(&lines, |l| {
            l["type"] == "fdb" && l["event"] == ev && l["mac"] == m && l["port"] == port
        })
    };
    let (t0, t1) = (lan.taps[0].as_str(), lan.taps[1].as_str());
    assert!(fdb("learned", &x, t0), "{lines:#?}");
    assert!(fdb("moved", &x, t1), "{lines:#?}");
    assert!(has(&lines, |l| l["event"] == "moved" && l["from"] == t0));
    assert!(fdb("flushed", &x, t1), "{lines:#?}");
    assert!(fdb("learned", &y, t0), "{lines:#?}");
    assert!(fdb("aged", &y, t0), "{lines:#?}");
    for ev in ["added", "gone"] {
        assert!(
            has(&lines, |l| l["type"] == "port"
                && l["event"] == ev
                && l["port"] == extra.as_str()),
            "port {ev}: {lines:#?}"
        );
    }
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["reason"], "duration");
}

#[test]
fn a_stuck_monitor_client_slows_nothing() {
    require_root();
    let (lan, _dir) = lan("ost", 2, 145, false, |_| String::new());
    // A client that asks for events and never reads them.
    let mut stuck = std::os::unix::net::UnixStream::connect(&lan.sw.socket).unwrap();
    stuck
        .write_all(b"{\"version\":1,\"cmd\":\"monitor\",\"what\":\"all\"}\n")
        .unwrap();
    let mut a = Agent::start(&lan.ns[0], &lan.taps[0]);
    for n in 0..400u32 {
        let src = format!("02:5c:00:00:{:02x}:{:02x}", n >> 8, n & 0xff);
        a.send(&support::frame::test_frame(
            "ff:ff:ff:ff:ff:ff",
            &src,
            b"VSSTUCK",
        ));
    }
    for _ in 0..3 {
        lan.sw.ctl_ok(&["fdb", "flush"]);
        assert!(lan.ping_eventually(0, 1), "traffic stopped");
    }
    let show = lan.sw.ctl_json(&["show"]);
    assert_eq!(show["ports"].as_array().unwrap().len(), 2);
    drop(stuck);
}

/// `capture` works where tcpdump cannot: on a `unix:` port (a QEMU
/// `-netdev stream` socket), both directions.
#[test]
fn capture_on_a_unix_port() {
    use std::io::Read;
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vm.sock");
    let unix = format!("unix:{}", sock.display());
    let u = unix.clone();
    let lan = Lan::with_args("ocu", 1, 146, move |taps| {
        vec!["--ports".into(), format!("{},{u}", taps[0])]
    });
    let mut host = Agent::start(&lan.ns[0], &lan.taps[0]);
    let mut peer = wait_for(Duration::from_secs(5), || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    })
    .expect("the unix port takes a peer");
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let file = dir.path().join("vm.pcapng");
    let mut cap = capture(
        &lan,
        &[
            &unix,
            "--count",
            "2",
            "--duration",
            "60",
            "-w",
            file.to_str().unwrap(),
        ],
    );
    // In: the guest's frame, length-prefixed as QEMU sends it.
    let vm = fake_mac(0x81);
    let f = support::frame::test_frame("ff:ff:ff:ff:ff:ff", &vm, b"VSUNIX-in");
    let mut msg = (f.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&f);
    peer.write_all(&msg).unwrap();
    assert!(
        host.wait_marker(b"VSUNIX-in", PATIENCE),
        "the guest's frame did not arrive"
    );
    // Out: the host's answer, to the guest's MAC.
    let back = frame(mac(&vm), mac(&fake_mac(0x82)), &[], ETH_TEST, b"VSUNIX-out");
    host.send(&support::frame::padded(back));
    let mut len = [0u8; 4];
    peer.read_exact(&mut len).unwrap();
    let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
    peer.read_exact(&mut got).unwrap();
    let done = cap
        .finish(Duration::from_secs(30))
        .expect("capture ends at its count");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let frames = tshark(&file);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(frames[0].2.contains(&hex(b"VSUNIX-in")), "{frames:?}");
    assert!(frames[1].2.contains(&hex(b"VSUNIX-out")), "{frames:?}");
}
