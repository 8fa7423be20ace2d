//! Faults under load (issue 23): while two hosts ping each other every
//! 10 ms through vswitchd, ports are added and removed 1 000 times, and
//! vswitchd is killed with SIGKILL and started again on the same
//! persistent TAPs. The other ports keep forwarding through the cycles,
//! vswitchd's fds and threads come back to what they were and its RSS
//! stays bounded, and after the restart traffic resumes. A QEMU guest is
//! killed with SIGKILL while iperf3 and 64-byte pings cross the switch
//! between other ports: its port shows gone, its MACs are flushed, the
//! others lose nothing, and it forwards again once booted again.
//!
//! Root: `sudo -E cargo test --release --test e2e_faults`. Addresses:
//! 198.18.133.0/24, 198.18.137.0/24 and 198.18.139.0/24 only. Namespaces,
//! TAPs and processes (QEMU too) go on drop.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use support::cmd::{Bg, names, require_root, vswitchd_bin};
use support::net::At;
use support::net::{Netns, quiet_ipv6};
use support::qemu::{Guest, guest_dir, qemu_required};
use support::state::{dump, fdb_macs, fdb_port_of, port_state};
use support::switchd::Lan;
use support::traffic::{BgPing, iperf3, received_bytes};
use support::wait::wait_for;

/// Open fds, threads other than the control pool's, the control pool's
/// threads (`vswitchd-ctl`, at most 2) and RSS (KiB) of a process.
/// The kernel's io_uring workers (`iou-wrk-*`, made on demand for a
/// ring's blocking requests; the last one lives as long as the ring)
/// are the kernel's, not vswitchd's, and are not counted.
fn footprint(pid: u32) -> (usize, usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let (mut other, mut ctl) = (0, 0);
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap_or_default();
        if comm.trim() == "vswitchd-ctl" {
            ctl += 1;
        } else if comm.starts_with("iou-wrk-") {
            continue;
        } else {
            other += 1;
        }
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    (fds, other, ctl, rss)
}

/// The names of a process's threads, for failure messages.
fn thread_names(pid: u32) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            std::fs::read_to_string(t.unwrap().path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// One control request on an open connection; the answer's `ok`.
fn request(conn: &mut BufReader<UnixStream>, body: serde_json::Value) -> serde_json::Value {
    let mut line = serde_json::to_vec(&body).unwrap();
    line.push(b'\n');
    conn.get_mut().write_all(&line).unwrap();
    let mut answer = String::new();
    conn.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[test]
fn a_thousand_port_add_remove_cycles_under_traffic() {
    require_root();
    let lan = Lan::new("flt", 2, 133);
    let pid = lan.sw.proc.pid();
    assert!(lan.ping_eventually(0, 1));
    let extra = format!("{}x", names("flx"));
    let mut conn = BufReader::new(UnixStream::connect(&lan.sw.socket).unwrap());
    // One cycle first, so lazily made things (a blocking thread of the
    // control plane, buffers) are there before the baseline.
    let add = serde_json::json!({"version": 1, "cmd": "port-add", "port": {"name": extra}});
    let del = serde_json::json!({"version": 1, "cmd": "port-del", "name": extra});
    assert_eq!(request(&mut conn, add.clone())["ok"], true);
    assert_eq!(request(&mut conn, del.clone())["ok"], true);
    std::thread::sleep(Duration::from_millis(500));
    let before = footprint(pid);

    let ping = BgPing::start(&lan.ns[0], &lan.ips[1], 6000, "0.01");
    let t0 = Instant::now();
    let cycles = 1000;
    for i in 0..cycles {
        let a = request(&mut conn, add.clone());
        assert_eq!(a["ok"], true, "cycle {i}: add: {a}");
        let d = request(&mut conn, del.clone());
        assert_eq!(d["ok"], true, "cycle {i}: del: {d}");
    }
    let took = t0.elapsed();
    ping.interrupt();
    let (sent, received, summary) = ping.finish();
    // A port's fd is closed once no worker reads it (within a tick).
    let settled = wait_for(Duration::from_secs(10), || {
        let now = footprint(pid);
        (now.0 == before.0 && now.1 == before.1).then_some(now)
    });
    let after = footprint(pid);
    eprintln!(
        "{cycles} add/remove cycles in {took:?}; ping {received}/{sent} through them; \
         fds {} -> {}, threads {} + {} control -> {} + {} control, RSS {} -> {} KiB",
        before.0, after.0, before.1, before.2, after.1, after.2, before.3, after.3
    );
    assert!(
        settled.is_some(),
        "fds or threads did not come back: {before:?} -> {after:?}"
    );
    assert!(after.2 <= 2, "the control pool is bounded: {after:?}");
    assert!(
        after.3 < before.3 + 16 * 1024,
        "RSS grew by {} KiB",
        after.3 - before.3
    );
    assert!(sent > 100, "{summary}");
    assert!(
        received * 100 >= sent * 99,
        "more than 1% of pings lost while ports came and went: {summary}"
    );
    assert!(!support::net::iface_exists(&extra), "the last TAP is gone");
}

#[test]
fn kill_9_then_restart_and_traffic_resumes() {
    require_root();
    let base = names("fkr");
    // Hosts behind veth pairs whose root ends are vswitchd's raw: ports:
    // the interfaces outlive vswitchd, as a libvirt/QEMU tap or a
    // container's veth does.
    let mut hosts = Vec::new();
    let mut links = Vec::new();
    for i in 0..2 {
        let n = Netns::new(&format!("{base}h{i}"));
        quiet_ipv6(&n);
        let root_end = format!("{base}r{i}");
        links.push(support::net::Link::veth(&root_end, "eth0", Some(&n)));
        n.ip(&[
            "addr",
            "add",
            &format!("198.18.133.{}/24", 10 + i),
            "dev",
            "eth0",
        ]);
        n.ip(&["link", "set", "eth0", "up"]);
        hosts.push(n);
    }
    let ports = links
        .iter()
        .map(|l| format!("raw:{}", l.0))
        .collect::<Vec<_>>()
        .join(",");
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let start = || -> Bg {
        let _ = std::fs::remove_file(dir.path().join("started"));
        let b = support::cmd::spawn(&[
            vswitchd_bin(),
            "--ports",
            &ports,
            "--metrics-addr",
            "off",
            "--control-socket",
            sock.to_str().unwrap(),
        ]);
        assert!(
            wait_for(Duration::from_secs(15), || {
                UnixStream::connect(&sock).is_ok().then_some(())
            })
            .is_some(),
            "vswitchd did not start"
        );
        b
    };
    let ping_ok = |limit| wait_for(limit, || hosts[0].ping("198.18.133.11", 1)).is_some();
    let mut sw = start();
    assert!(
        ping_ok(Duration::from_secs(15)),
        "no traffic before the kill"
    );
    let ping = BgPing::start(&hosts[0], "198.18.133.11", 300, "0.01");
    std::thread::sleep(Duration::from_millis(500));
    support::cmd::signal(sw.pid(), "KILL");
    assert!(
        sw.finish(Duration::from_secs(10)).is_some(),
        "SIGKILL did not stop it"
    );
    let t0 = Instant::now();
    let mut sw = start();
    assert!(
        ping_ok(Duration::from_secs(15)),
        "traffic did not resume after the restart"
    );
    let resumed = t0.elapsed();
    let (sent, received, _) = ping.finish();
    eprintln!(
        "kill -9 and restart: traffic again {resumed:?} after the restart began; \
         ping {received}/{sent} across it (10 ms apart)"
    );
    // A stale control socket from the killed one did not stop the new one.
    let mut conn = BufReader::new(UnixStream::connect(&sock).unwrap());
    let show = request(&mut conn, serde_json::json!({"version": 1, "cmd": "show"}));
    assert_eq!(show["ok"], true, "{show}");
    support::cmd::signal(sw.pid(), "TERM");
    assert!(sw.finish(Duration::from_secs(10)).is_some());
    drop(links);
}

/// A `unix:` peer that stops reading (its socket buffer fills, writes to
/// it fail with EAGAIN) and a `raw:` interface deleted, both while two
/// hosts ping every 10 ms: the other ports keep forwarding, the full
/// queue is counted, the deleted port shows gone.
#[test]
fn a_stuck_receiver_and_a_deleted_interface_under_traffic() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("stuck.sock");
    let unix = format!("unix:{}", sock.display());
    let base = names("fsd");
    let veth = format!("{base}v");
    let _link = support::net::Link::veth(&veth, &format!("{base}p"), None);
    let raw = format!("raw:{veth}");
    let lan = Lan::with_args("fst", 2, 137, |taps| {
        vec!["--ports".into(), format!("{},{unix},{raw}", taps.join(","))]
    });
    let sw = &lan.sw;
    assert!(lan.ping_eventually(0, 1));
    // The stuck peer: connects, never reads.
    let stuck = wait_for(Duration::from_secs(5), || UnixStream::connect(&sock).ok())
        .expect("connect the unix port");
    let ping = BgPing::start(&lan.ns[0], &lan.ips[1], 600, "0.01");
    // Broadcasts (ARP for an address nobody has) flood to the stuck peer
    // until its buffer is full.
    let mut bcast = support::agent::Agent::start(&lan.ns[1], &lan.taps[1]);
    let queue_full = || support::state::drops(&sw.ctl_json(&["show"]), &unix, "queue_full");
    let mut sent = 0;
    while queue_full() == 0 && sent < 200_000 {
        for _ in 0..500 {
            bcast.send(&support::frame::test_frame(
                "ff:ff:ff:ff:ff:ff",
                "02:00:00:00:37:01",
                &[0x5a; 1000],
            ));
        }
        sent += 500;
    }
    assert!(queue_full() > 0, "no queue_full after {sent} broadcasts");
    // Delete the raw port's interface mid-traffic.
    support::cmd::ok(&["ip", "link", "del", &veth]);
    let gone = wait_for(Duration::from_secs(10), || {
        (support::state::port_state(sw, &raw).as_deref() == Some("gone")).then_some(())
    });
    assert!(gone.is_some(), "{}", sw.ctl_ok(&["show"]));
    let (sent_p, received, summary) = ping.finish();
    eprintln!(
        "stuck receiver ({} queue_full drops) and a deleted interface: ping {received}/{sent_p}",
        queue_full()
    );
    assert!(
        received * 100 >= sent_p * 99,
        "other ports lost more than 1%: {summary}"
    );
    drop(stuck);
}

/// Two QEMU guests, one on a tap QEMU created (vswitchd finds it busy
/// and attaches it as `raw:`) and one on a `unix:` stream port, are killed
/// with SIGKILL while iperf3 runs between two namespace ports and a third
/// sends 64-byte pings every 10 ms. The kernel deletes the dead guest's
/// tap, so that port shows `gone`; the unix socket's peer hung up, so
/// that port is down. Both ports' learned MACs are flushed at once, as
/// the kernel bridge flushes a port's dynamic entries when it goes down
/// (`br_stp_disable_port` calls `br_fdb_delete_by_port(br, p, 0, 0)`:
/// static entries stay) — not left to age for 300 s. Nothing else loses
/// a frame; vswitchd stays up; once the two ports are removed its fds and
/// threads are what they were before the guests came. Guests booted again
/// on ports added again forward again.
#[test]
fn qemu_guests_killed_under_load() {
    require_root();
    if !qemu_required() {
        return;
    }
    let gdir = guest_dir();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("rlq", 3, 139);
    let sw = &lan.sw;
    let pid = sw.proc.pid();
    assert!(lan.ping_eventually(0, 1) && lan.ping_eventually(2, 0));
    // One add/remove first, so what a port operation makes lazily is
    // there before the baseline (as in the 1 000 cycles above).
    let warm = format!("{}w", names("rlw"));
    sw.ctl_ok(&["port", "add", &warm]);
    sw.ctl_ok(&["port", "del", &warm]);
    std::thread::sleep(Duration::from_millis(500));
    let before = footprint(pid);

    let qtap = format!("{}g", names("rlg"));
    let sock = tmp.path().join("g.sock");
    let unix = format!("unix:{}", sock.display());
    let id = std::process::id();
    let mac = |n: u32| {
        format!(
            "52:54:00:8b:{:02x}:{:02x}",
            (id >> 8) & 0xff,
            (id + n) & 0xff
        )
    };
    let (tmac, umac) = (mac(0), mac(1));
    // Each guest pings host 0, then waits for a peer that never answers
    // (vs.sync), so it is alive, and known to the FDB, when it is killed.
    let append = |ip: &str| {
        format!(
            "vs.ip={ip}/24 vs.peers={} vs.count=3 vs.wait=90 \
             vs.sync=198.18.139.99 vs.hold=240",
            lan.ips[0]
        )
    };
    let (tip, uip) = ("198.18.139.21", "198.18.139.22");
    let boot = |round: &str| -> (Guest, Guest) {
        let dir = tmp.path().join(round);
        std::fs::create_dir_all(&dir).unwrap();
        // The unix: port listens before QEMU connects (it connects once).
        sw.ctl_ok(&["port", "add", &unix]);
        let mut u = Guest::start_on_unix(&gdir, &sock, "unix", &umac, &append(uip), &dir);
        let mut t = Guest::start_on_tap(&gdir, &qtap, &tmac, &append(tip), &dir);
        let tap = wait_for(Duration::from_secs(30), || At::Root.dev_exists(&qtap));
        assert!(tap.is_some(), "QEMU made no tap {qtap}:\n{}", t.log_text());
        // QEMU holds the tap: vswitchd attaches it as raw:.
        sw.ctl_ok(&["port", "add", &qtap]);
        for g in [&mut t, &mut u] {
            let ping = g.wait_result(&format!("PING {} ", lan.ips[0]), 150);
            assert!(
                ping.contains(" OK "),
                "guest ({round}): {ping}\n{}\n{}",
                g.log_text(),
                dump(sw)
            );
        }
        (t, u)
    };

    let (mut tguest, mut uguest) = boot("first");
    let learned = wait_for(Duration::from_secs(10), || {
        fdb_macs(sw, &qtap).contains(&tmac) && fdb_macs(sw, &unix).contains(&umac)
    });
    assert!(learned.is_some(), "guests not learned: {}", dump(sw));
    let kind = |p: &str| support::state::port_info(sw, p).unwrap()["kind"].clone();
    assert_eq!(kind(&qtap), "raw", "{}", dump(sw));

    // Load between the other ports: TCP host 0 -> host 1, 64-byte frames
    // host 2 -> host 0 every 10 ms; the guests are killed in the middle.
    let small = BgPing::start_sized(&lan.ns[2], &lan.ips[0], 800, "0.01", 18);
    let (tcp, states, flushed) = std::thread::scope(|s| {
        let tcp = s.spawn(|| iperf3(lan.ns[1].at(), &lan.ips[1], lan.ns[0].at(), &["-t", "8"]));
        std::thread::sleep(Duration::from_secs(2));
        assert!(tguest.kill_qemu(), "QEMU (tap) did not die of SIGKILL");
        assert!(uguest.kill_qemu(), "QEMU (unix) did not die of SIGKILL");
        // Neither port is up any more, and neither has learned MACs.
        let states = wait_for(Duration::from_secs(10), || {
            let st = (port_state(sw, &qtap)?, port_state(sw, &unix)?);
            (st.0 != "up" && st.1 != "up").then_some(st)
        });
        // Flushed as the port goes down (within a moment), not aged out
        // (300 s).
        let flushed = wait_for(Duration::from_secs(5), || {
            [(&qtap, &tmac), (&unix, &umac)]
                .iter()
                .all(|(p, m)| fdb_port_of(sw, m).is_none() && fdb_macs(sw, p).is_empty())
        })
        .is_some();
        (tcp.join(), states, flushed)
    });
    let (sent, received, summary) = small.finish();
    let report = tcp.unwrap_or_else(|_| panic!("iperf3 across the kills failed:\n{}", dump(sw)));
    eprintln!(
        "QEMU guests killed under load: ports (tap, unix) {states:?}; \
         64-byte pings {received}/{sent}; TCP {} bytes received",
        received_bytes(&report)
    );
    let answers = || sw.ctl(&["show"]).status.success();
    assert!(answers(), "vswitchd does not answer: {}", sw.log_text());
    let states = states.unwrap_or_else(|| panic!("a killed guest's port stayed up: {}", dump(sw)));
    assert_eq!(states.0, "gone", "the dead guest's tap is deleted");
    assert!(flushed, "a killed guest's MACs stayed: {}", dump(sw));
    assert!(!At::Root.dev_exists(&qtap), "the dead guest's tap is gone");
    assert!(received_bytes(&report) > 0, "{report}");
    assert!(sent >= 100, "{summary}");
    assert!(
        received * 100 >= sent * 99,
        "more than 1% of 64-byte pings lost across the kills: {summary}"
    );
    assert!(
        lan.ping_eventually(0, 1) && lan.ping_eventually(2, 0),
        "{}",
        dump(sw)
    );

    // The ports removed: vswitchd holds what it held before the guests.
    sw.ctl_ok(&["port", "del", &qtap]);
    sw.ctl_ok(&["port", "del", &unix]);
    let settled = wait_for(Duration::from_secs(10), || {
        let now = footprint(pid);
        (now.0 == before.0 && now.1 == before.1).then_some(now)
    });
    let after = footprint(pid);
    eprintln!(
        "before the guests: fds {}, threads {} + {} control; after their ports went: \
         fds {}, threads {} + {} control",
        before.0, before.1, before.2, after.0, after.1, after.2
    );
    assert!(
        settled.is_some(),
        "fds or threads did not come back: {before:?} -> {after:?}; threads: {:?}",
        thread_names(pid)
    );
    assert!(after.2 <= 2, "the control pool is bounded: {after:?}");

    // Booted again on ports added again: both forward again.
    let (mut t2, mut u2) = boot("second");
    for ip in [tip, uip] {
        assert!(
            At::Ns(&lan.ns[0]).ping_after_first(ip, 3, Duration::from_secs(60)),
            "host 0 cannot ping the guest {ip} booted again: {}",
            dump(sw)
        );
    }
    for (p, m) in [(&qtap, &tmac), (&unix, &umac)] {
        assert_eq!(
            fdb_port_of(sw, m).map(|(p, _)| p).as_deref(),
            Some(p.as_str()),
            "{}",
            dump(sw)
        );
    }
    assert!(t2.alive() && u2.alive());
    drop((t2, u2));
    assert!(answers(), "vswitchd does not answer: {}", sw.log_text());
}
