//! End-to-end: the TAP dataplane. vswitchd creates TAPs, each is moved into
//! its own network namespace (the normal way hosts attach), and real tools
//! (ping, iperf3, raw frames) cross the switch.

mod support;

use std::time::Duration;

use support::agent::Agent;
use support::cmd::{ok, require_root};
use support::frame::{BCAST, ETH_TEST, frame, is_arp_for, mac};
use support::net::Link;
use support::state::{fdb_has_port, port_json, wait_ports_up};
use support::switchd::{Lan, Switchd};
use support::traffic::{Capture, iperf3, iperf3_server, received_bytes};
use support::wait::{PATIENCE, wait_for};

/// Runs a 3 s iperf3 TCP test from host 0 to host 1 (`-R`: the other
/// way) and returns the bytes the receiver counted.
fn iperf_3s(lan: &Lan, extra: Option<&str>) -> u64 {
    let mut args = vec!["-t", "3"];
    args.extend(extra);
    let report = iperf3(lan.ns[1].at(), &lan.ips[1], lan.ns[0].at(), &args);
    received_bytes(&report)
}

#[test]
fn all_pairs_ping() {
    require_root();
    let mut lan = Lan::new("tpa", 4, 20);
    lan.assert_all_pairs_ping();
    // Every host was learned on its own port.
    let show = lan.sw.ctl_json(&["show"]);
    for t in &lan.taps {
        let p = port_json(&show, t);
        assert_eq!(p["state"], "up", "{p}");
        assert!(p["learned_macs"].as_u64().unwrap_or(0) >= 1, "{p}");
    }
    assert!(lan.alive());
}

#[test]
fn iperf3_tcp_both_directions() {
    require_root();
    let mut lan = Lan::new("tpi", 2, 21);
    assert!(lan.ping_eventually(0, 1), "no ping before iperf3");
    for (dir, extra) in [("forward", None), ("reverse", Some("-R"))] {
        let got = iperf_3s(&lan, extra);
        eprintln!("iperf3 {dir}: {got} bytes received in 3 s");
        assert!(got > 10_000_000, "iperf3 {dir}: only {got} bytes");
    }
    // Both directions crossed the switch: each port sent and received
    // more than the two transfers' worth of one direction.
    let stats = lan.sw.ctl_json(&["stats"]);
    for t in &lan.taps {
        let c = &port_json(&stats, t)["counters"];
        assert!(c["rx_bytes"].as_u64().unwrap() > 10_000_000, "{t}: {c}");
        assert!(c["tx_bytes"].as_u64().unwrap() > 10_000_000, "{t}: {c}");
    }
    assert!(lan.alive());
}

#[test]
fn broadcast_reaches_every_other_port() {
    require_root();
    let lan = Lan::new("tpb", 4, 22);
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
        .collect();

    // A crafted broadcast with a unique payload.
    let marker = format!("VSBCAST{}", lan.taps[0]);
    let src = mac(&lan.ns[0].mac(&lan.taps[0]));
    let f = frame(BCAST, src, &[], ETH_TEST, marker.as_bytes());
    agents[0].send(&f);
    for a in agents.iter_mut().skip(1) {
        assert!(
            a.wait_marker(marker.as_bytes(), PATIENCE),
            "{} never saw the broadcast: {}",
            a.host,
            lan.sw.log_text()
        );
        let got = a.with_marker(marker.as_bytes());
        assert_eq!(got.len(), 1, "{}: {} copies", a.host, got.len());
        assert_eq!(got[0], &f, "{}: broadcast changed on the way", a.host);
    }

    // An ARP request (ns0 resolving an address nobody has) is flooded too.
    let target = [198, 18, 22, 77];
    let _ = lan.ns[0].exec(&[
        "timeout",
        "10",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        "198.18.22.77",
    ]);
    for a in agents.iter_mut().skip(1) {
        let seen = wait_for(PATIENCE, || {
            a.poll();
            a.received.iter().any(|f| is_arp_for(f, target))
        });
        assert!(seen.is_some(), "{} never saw the ARP request", a.host);
    }
    // Nothing came back to the sender.
    agents[0].poll();
    assert!(
        agents[0].with_marker(marker.as_bytes()).is_empty(),
        "the broadcast was sent back to its ingress port"
    );
}

#[test]
fn learned_unicast_does_not_leak() {
    require_root();
    let lan = Lan::new("tpu", 3, 23);
    assert!(lan.ping_eventually(0, 1), "ns0 cannot ping ns1");
    lan.ns[2].ip(&["link", "set", "dev", &lan.taps[2], "promisc", "on"]);
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
        .collect();
    let m0 = mac(&lan.ns[0].mac(&lan.taps[0]));
    let m1 = mac(&lan.ns[1].mac(&lan.taps[1]));

    // Control: unicast to an unknown MAC floods, so ns2's sniffer works.
    let unknown = format!("VSUNK{}", lan.taps[0]);
    agents[0].send(&frame(
        mac("02:00:5e:00:53:99"),
        m0,
        &[],
        ETH_TEST,
        unknown.as_bytes(),
    ));
    assert!(
        agents[2].wait_marker(unknown.as_bytes(), PATIENCE),
        "unknown unicast did not reach ns2 (flooding or sniffer broken)"
    );

    // Known unicast ns0 -> ns1, then a broadcast barrier: once ns1 and ns2
    // see the barrier, every earlier frame has been forwarded.
    let n = 20;
    let marker = format!("VSUNI{}", lan.taps[0]);
    for i in 0..n {
        let payload = format!("{marker}-{i:03}");
        agents[0].send(&frame(m1, m0, &[], ETH_TEST, payload.as_bytes()));
    }
    let barrier = format!("VSBARRIER{}", lan.taps[0]);
    agents[0].send(&frame(BCAST, m0, &[], ETH_TEST, barrier.as_bytes()));
    for a in &mut agents[1..] {
        assert!(
            a.wait_marker(barrier.as_bytes(), PATIENCE),
            "{}: no barrier",
            a.host
        );
    }
    let to_ns1 = agents[1].with_marker(marker.as_bytes()).len();
    let to_ns2 = agents[2].with_marker(marker.as_bytes()).len();
    assert_eq!(to_ns1, n, "ns1 received {to_ns1} of {n} unicast frames");
    assert_eq!(to_ns2, 0, "ns2 saw {to_ns2} unicast frames meant for ns1");
}

#[test]
fn sigterm_under_load_exits_cleanly() {
    require_root();
    let mut lan = Lan::new("tps", 2, 24);
    assert!(lan.ping_eventually(0, 1), "no ping before iperf3");
    let _server = iperf3_server(lan.ns[1].at(), &lan.ips[1]);
    let _client = lan.ns[0].spawn(&["timeout", "120", "iperf3", "-c", &lan.ips[1], "-t", "60"]);
    // Wait until TCP really flows through the switch.
    let flowing = wait_for(PATIENCE, || {
        let s = lan.sw.ctl_json(&["stats"]);
        let b = port_json(&s, &lan.taps[1])["counters"]["tx_bytes"]
            .as_u64()
            .unwrap_or(0);
        b > 5_000_000
    });
    assert!(
        flowing.is_some(),
        "no iperf3 traffic: {}",
        lan.sw.log_text()
    );

    let status = lan.sw.proc.stop(Duration::from_secs(20));
    let log = lan.sw.log_text();
    let status = status.unwrap_or_else(|| panic!("vswitchd did not stop on SIGTERM: {log}"));
    assert!(status.success(), "vswitchd exited with {status}: {log}");
    // Non-persistent TAPs vanish with their fd, even inside the namespaces.
    for (ns, tap) in lan.ns.iter().zip(&lan.taps) {
        let gone = wait_for(Duration::from_secs(10), || !ns.at().dev_exists(tap));
        assert!(
            gone.is_some(),
            "{tap} still exists in {} after exit",
            ns.name
        );
    }
}

#[test]
fn deleted_netdev_goes_down_and_others_keep_forwarding() {
    require_root();
    let mut lan = Lan::new("tpd", 3, 25);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        assert!(lan.ping_eventually(i, j), "ns{i} cannot ping ns{j}");
    }
    let gone = lan.taps[2].clone();
    assert!(
        fdb_has_port(&lan.sw, &gone),
        "nothing learned on {gone} before the test"
    );
    lan.ns[2].ip(&["link", "del", &gone]);

    // The port goes down (ARP/ICMP to the vanished host keeps flooding
    // towards it meanwhile).
    let state = wait_for(PATIENCE, || {
        let _ = lan.ns[0].exec(&["timeout", "5", "ping", "-c", "1", "-W", "1", &lan.ips[2]]);
        let s = lan.sw.ctl_json(&["show"]);
        let st = port_json(&s, &lan.taps[2])["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (st != "up").then_some(st)
    });
    assert!(
        state.is_some(),
        "port {} still up after its netdev was deleted: {}",
        lan.taps[2],
        lan.sw.log_text()
    );
    eprintln!("deleted port state: {}", state.unwrap());

    // The others keep forwarding, and the daemon keeps running.
    for _ in 0..3 {
        assert!(lan.ns[0].ping(&lan.ips[1], 3), "ns0 -> ns1 broke");
        assert!(lan.ns[1].ping(&lan.ips[0], 3), "ns1 -> ns0 broke");
    }
    assert!(lan.alive(), "vswitchd exited: {}", lan.sw.log_text());
    let s = lan.sw.ctl_json(&["show"]);
    for t in &lan.taps[..2] {
        assert_eq!(port_json(&s, t)["state"], "up", "{t}");
    }
    // Its learned MACs were flushed, like a bridge port whose link goes down.
    assert!(
        !fdb_has_port(&lan.sw, &gone),
        "FDB still points at {gone}: {}",
        lan.sw.ctl_json(&["fdb", "show"])
    );

    assert!(lan.alive());
}

#[test]
fn port_is_reattached_when_its_interface_returns() {
    require_root();
    let lan = Lan::new("tpr", 3, 26);
    assert!(lan.ping_eventually(0, 2), "ns0 cannot ping ns2");
    let name = lan.taps[2].clone();
    lan.ns[2].ip(&["link", "del", &name]);
    let down = wait_for(PATIENCE, || {
        let s = lan.sw.ctl_json(&["show"]);
        port_json(&s, &name)["state"] == "gone"
    });
    assert!(down.is_some(), "{name} not gone: {}", lan.sw.log_text());

    // A persistent TAP of the same name appears in vswitchd's namespace
    // (`ip tuntap add` holds it open for a moment while creating it).
    let _tap = Link(name.clone());
    ok(&["ip", "tuntap", "add", "dev", &name, "mode", "tap"]);
    let back = wait_for(PATIENCE, || {
        let s = lan.sw.ctl_json(&["show"]);
        let p = port_json(&s, &name);
        (p["state"] == "up").then(|| p["kind"].as_str().unwrap_or("").to_string())
    });
    let kind = back.unwrap_or_else(|| panic!("{name} not re-attached: {}", lan.sw.log_text()));
    // vswitchd must own the TAP's fd: attached as raw: to a TAP nobody
    // reads, the port looks up but carries nothing (NO-CARRIER).
    assert_eq!(kind, "tap", "re-attached as {kind}: {}", lan.sw.log_text());
    let link = ok(&["ip", "-d", "link", "show", &name]);
    assert!(!link.contains("NO-CARRIER"), "{link}");

    lan.ns[2].take(&name, &format!("{}/24", lan.ips[2]));
    wait_ports_up(&lan.sw, &lan.taps);
    // The new TAP has a new MAC: forget the old one.
    lan.ns[0].ip(&["neigh", "flush", "all"]);
    assert!(
        lan.ping_eventually(0, 2),
        "ns0 cannot reach ns2 after re-attach: {}",
        lan.sw.log_text()
    );
    // Moving it did not make vswitchd create another TAP of that name.
    assert!(
        !std::path::Path::new("/sys/class/net").join(&name).exists(),
        "a second `{name}` appeared in the root namespace: {}",
        lan.sw.log_text()
    );
}

/// A LAN on vswitchd with io_uring on and debug logs (which tell when a
/// port moves to the ring and back).
fn uring_lan(tag: &str, n: usize, net: u8) -> Lan {
    Lan::with_args(tag, n, net, |taps| {
        vec![
            "--ports".into(),
            taps.join(","),
            "--io-uring".into(),
            "--log-level".into(),
            "debug".into(),
        ]
    })
}

/// `--io-uring`: the same forwarding with busy TAPs read through io_uring,
/// and a port's pending reads cancelled when it is removed or its netdev
/// deleted while it is busy (else the ring would keep the TAP alive).
#[test]
fn io_uring_forwards_and_releases_ports() {
    require_root();
    let mut lan = uring_lan("tpu", 3, 57);
    lan.assert_all_pairs_ping();
    // Bulk TCP (GSO frames through the ring's 64 KiB buffers).
    let got = iperf_3s(&lan, None);
    assert!(
        got > 10_000_000,
        "iperf3 through io_uring: only {got} bytes"
    );

    // A port busy enough to be read through the ring: a flood ping from
    // its namespace (bounded in count and time).
    let flood_from = |lan: &Lan, i: usize| {
        let flood = lan.ns[i].spawn(&[
            "timeout",
            "20",
            "ping",
            "-q",
            "-f",
            "-c",
            "500000",
            &lan.ips[0],
        ]);
        let busy = format!("busy: reading through io_uring port=\"{}\"", lan.taps[i]);
        let seen = wait_for(PATIENCE, || lan.sw.log_text().contains(&busy));
        assert!(
            seen.is_some(),
            "{} never busy: {}",
            lan.taps[i],
            lan.sw.log_text()
        );
        flood
    };

    // Removing a busy port releases its TAP: the netdev vanishes from its
    // namespace although reads were pending on it.
    let removed = lan.taps[2].clone();
    let mut flood = flood_from(&lan, 2);
    let o = lan.sw.ctl(&["port", "del", &removed]);
    assert!(o.status.success(), "port del: {o:?}");
    let vanished = wait_for(PATIENCE, || !lan.ns[2].at().dev_exists(&removed));
    assert!(
        vanished.is_some(),
        "{removed} still exists after `port del`: {}",
        lan.sw.log_text()
    );
    flood.stop(Duration::from_secs(5));
    assert!(
        lan.ns[0].ping(&lan.ips[1], 3),
        "ns0 -> ns1 broke after port del"
    );

    // A busy port's netdev deleted: the port goes down, the others keep
    // forwarding.
    let gone = lan.taps[1].clone();
    let mut flood = flood_from(&lan, 1);
    lan.ns[1].ip(&["link", "del", &gone]);
    flood.stop(Duration::from_secs(5));
    let down = wait_for(PATIENCE, || {
        let _ = lan.ns[0].exec(&["timeout", "5", "ping", "-c", "1", "-W", "1", &lan.ips[1]]);
        let s = lan.sw.ctl_json(&["show"]);
        port_json(&s, &gone)["state"] != "up"
    });
    assert!(down.is_some(), "{gone} still up: {}", lan.sw.log_text());
    assert!(lan.alive(), "vswitchd exited: {}", lan.sw.log_text());
    let s = lan.sw.ctl_json(&["show"]);
    assert_eq!(port_json(&s, &lan.taps[0])["state"], "up");
}

/// Sequence numbers of ICMP echo requests in `tcpdump -n` lines.
fn echo_request_seqs(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter(|l| l.contains("ICMP echo request"))
        .filter_map(|l| {
            l.split("seq ")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

/// `--io-uring` moves a TAP into the ring only while it is busy: a quiet
/// TAP is polled and read with `read()` (the shorter path for a lone
/// frame), sustained traffic (> 6 400 frames/s) moves it to the ring, and
/// it is polled again once quiet. Across those moves no frame is lost or reordered: a flood ping
/// with 64 in flight gets every reply, and the receiver sees the requests'
/// sequence numbers in order.
#[test]
fn io_uring_takes_busy_ports_and_gives_back_quiet_ones() {
    require_root();
    let lan = uring_lan("tpm", 2, 58);
    assert!(lan.ping_eventually(0, 1), "no ping: {}", lan.sw.log_text());
    assert!(
        !lan.sw.log_text().contains("busy: reading through io_uring"),
        "a few pings moved a port to the ring: {}",
        lan.sw.log_text()
    );

    // Bulk TCP queues far more than a burst's worth of frames.
    let got = iperf_3s(&lan, None);
    assert!(got > 10_000_000, "iperf3: only {got} bytes");
    assert!(
        lan.sw.log_text().contains("busy: reading through io_uring"),
        "iperf3 did not move a port to the ring: {}",
        lan.sw.log_text()
    );

    // A flood ping keeps 64 requests in flight, across moves both ways.
    let tmp = tempfile::tempdir().unwrap();
    let dump = Capture::start(
        lan.ns[1].at(),
        &lan.taps[1],
        "icmp[icmptype] == icmp-echo",
        60,
        tmp.path(),
    );
    let o = lan.ns[0].exec(&[
        "timeout",
        "60",
        "ping",
        "-q",
        "-f",
        "-l",
        "64",
        "-c",
        "5000",
        &lan.ips[1],
    ]);
    let summary = String::from_utf8_lossy(&o.stdout).to_string();
    let seen = dump.finish();
    assert!(
        o.status.success() && summary.contains(" 0% packet loss"),
        "flood ping lost replies: {summary}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let seqs = echo_request_seqs(&seen);
    assert!(seqs.len() > 4000, "tcpdump saw {} requests", seqs.len());
    let reordered: Vec<_> = seqs.windows(2).filter(|w| w[1] <= w[0]).collect();
    assert!(
        reordered.is_empty(),
        "requests reordered: {:?}",
        &reordered[..reordered.len().min(10)]
    );

    // Quiet again: the ring gives the ports back to polling.
    let polled = wait_for(PATIENCE, || {
        let _ = lan.ns[0].exec(&["ping", "-q", "-c", "10", "-i", "0.02", &lan.ips[1]]);
        lan.sw.log_text().contains("quiet: polled again")
    });
    assert!(
        polled.is_some(),
        "no port left the ring: {}",
        lan.sw.log_text()
    );
    assert!(lan.ns[0].ping(&lan.ips[1], 3), "ping after the ring");
}

/// Kilobytes of `AnonHugePages` over the mappings of `pid` whose
/// permissions are `perms` and that map no file (vswitchd's moved code is
/// `r-xp` anonymous memory; its file-backed code is not).
fn anon_huge_kib(pid: u32, perms: &str) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut counted = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first()
            .is_some_and(|a| a.contains('-') && !a.ends_with(':'))
        {
            counted = f.get(1) == Some(&perms) && f.len() == 5;
        } else if counted && f.first() == Some(&"AnonHugePages:") {
            kib += f[1].parse::<u64>().unwrap();
        }
    }
    kib
}

/// `huge-pages` (on by default): vswitchd moves its code onto huge pages
/// at start and forwards with it from there; `--no-huge-pages` leaves the
/// code where the kernel mapped it and turns transparent huge pages off
/// for the process.
#[test]
fn huge_pages_hold_the_code_unless_turned_off() {
    require_root();
    let mut lan = Lan::new("tph", 2, 197);
    let pid = lan.sw.proc.pid();
    let log = lan.sw.log_text();
    if vswitch::os::hugepages::available().is_ok() {
        assert!(
            log.contains("code and read-only data on huge pages:"),
            "{log}"
        );
        assert!(
            anon_huge_kib(pid, "r-xp") >= 2048,
            "no code on a huge page: {log}"
        );
    } else {
        assert!(log.contains("code stays on 4 KiB pages"), "{log}");
    }
    // The moved code forwards: pings and a TCP stream both ways.
    lan.assert_all_pairs_ping();
    assert!(iperf_3s(&lan, None) > 10_000_000);
    assert!(iperf_3s(&lan, Some("-R")) > 10_000_000);
    assert!(lan.alive(), "{}", lan.sw.log_text());
    drop(lan);

    let mut lan = Lan::with_args("tpn", 2, 198, |taps| {
        vec!["--ports".into(), taps.join(","), "--no-huge-pages".into()]
    });
    let pid = lan.sw.proc.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("THP_enabled:\t0"), "{status}");
    assert_eq!(anon_huge_kib(pid, "r-xp"), 0, "{}", lan.sw.log_text());
    assert!(!lan.sw.log_text().contains("on huge pages"));
    lan.assert_all_pairs_ping();
    assert!(lan.alive(), "{}", lan.sw.log_text());
    drop(lan);

    // Where the process may not make memory executable (the packaged
    // unit's MemoryDenyWriteExecute=yes; here the kernel's own
    // PR_SET_MDWE, Linux 6.3+, which an exec keeps), the code stays where
    // it is, the log says why, and the switch runs.
    if vswitch::os::hugepages::available().is_err() {
        return;
    }
    let mdwe = "import ctypes, os, sys\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        if libc.prctl(65, 1, 0, 0, 0) != 0: sys.exit(77)\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let probe = std::process::Command::new("python3")
        .args(["-c", mdwe, "/bin/true"])
        .status()
        .unwrap();
    if probe.code() == Some(77) {
        eprintln!("PR_SET_MDWE not supported by this kernel: skipping that part");
        return;
    }
    let base = support::cmd::names("tpw");
    let taps = [format!("{base}t0"), format!("{base}t1")];
    let mut sw = Switchd::start_under(
        &["python3", "-c", mdwe],
        &["--ports", &taps.join(",")],
        &[&taps[0], &taps[1]],
    );
    let log = wait_for(PATIENCE, || {
        let l = sw.log_text();
        l.contains("code stays on 4 KiB pages").then_some(l)
    })
    .unwrap_or_else(|| sw.log_text());
    assert!(
        log.contains("mprotect") && log.contains("may not make memory executable"),
        "{log}"
    );
    assert_eq!(anon_huge_kib(sw.proc.pid(), "r-xp"), 0, "{log}");
    wait_ports_up(&sw, &taps);
    assert!(sw.alive(), "{}", sw.log_text());
}
