//! End-to-end test of the Prometheus endpoint of a live vswitchd: known
//! traffic through three namespaces, the scrape checked by `promtool check
//! metrics` and against what was sent; then, on a switch with every
//! feature on (spanning tree with BPDU guard, storm control, a `vxlan:`
//! port), every metric name the Grafana dashboard and the alert rules use
//! must be in the scrape, and a real Prometheus (Debian's) scraping the
//! live switch while traffic flows (tests/metrics/prometheus-e2e.sh) must
//! get data for every dashboard expression; and `promtool check rules`
//! and the rules' unit tests.
//!
//! Run as root: `cargo test --release --test e2e_metrics`. Addresses:
//! 198.18.110.0/24, 198.18.111.0/24 and 127.0.0.1 (the vxlan port's
//! underlay). Tools: ping, iperf3, ss, promtool, prometheus, curl (the
//! script uses it; the test itself speaks HTTP with std only).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::agent::send_frames;
use support::cmd::{repo, require_root, run};
use support::frame::{config_bpdu, test_frame};
use support::net::{Netns, free_port};
use support::state::{Scrape, http, scrape};
use support::switchd::{Lan, write_config};
use support::traffic::iperf3;
use support::wait::wait_for;

/// `promtool check metrics` on a scrape, fed on stdin.
fn promtool_check_metrics(text: &str) {
    let mut c = Command::new("timeout")
        .args(["30", "promtool", "check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics on the live scrape:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The kernel's [rx, tx] byte counters of `dev` in `ns`.
fn kernel_bytes(ns: &Netns, dev: &str) -> [f64; 2] {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", dev]);
    let j: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    let st = &j[0]["stats64"];
    [
        st["rx"]["bytes"].as_f64().expect("rx bytes"),
        st["tx"]["bytes"].as_f64().expect("tx bytes"),
    ]
}

/// Asserts `lo <= v <= hi` with a message naming the counter.
fn within(what: &str, v: f64, lo: f64, hi: f64) {
    assert!(
        v >= lo && v <= hi,
        "{what}: {v} not within [{lo}, {hi}] (expected {lo} + at most {} of background traffic)",
        hi - lo
    );
}

/// Tolerance for background frames between two scrapes: ARP requests and
/// replies (42 bytes), and with IPv6 on, neighbour/router solicitations and
/// MLD reports (70-110 bytes), a handful each.
const CHATTER_BYTES: f64 = 8192.0;
const CHATTER_FRAMES: f64 = 64.0;

#[test]
fn metrics_live_counters_promtool_and_prometheus() {
    require_root();
    let addr = format!("127.0.0.1:{}", free_port());
    // Dropped in reverse: the switch first, then the namespaces.
    let Lan {
        ns, taps: t, sw, ..
    } = Lan::with_args("ma", 3, 110, |taps| {
        vec![
            "--ports".into(),
            taps.join(","),
            "--metrics-addr".into(),
            addr.clone(),
        ]
    });
    let ip = |i: usize| format!("198.18.110.{}", i + 1);
    assert!(ns[0].ping(&ip(1), 3));
    assert!(ns[0].ping(&ip(2), 3));
    assert!(ns[1].ping(&ip(2), 3));

    // The endpoint.
    let (code, _, body) = http(&addr, "GET", "/");
    assert_eq!(code, 200);
    assert!(body.contains("/metrics"));
    assert_eq!(http(&addr, "GET", "/nope").0, 404);
    assert_eq!(http(&addr, "POST", "/metrics").0, 405);
    let (code, head, text) = http(&addr, "GET", "/metrics");
    assert_eq!(code, 200);
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    promtool_check_metrics(&text);
    let s = Scrape::parse(&text);
    for p in &t {
        assert_eq!(s.port("vswitchd_port_up", p), 1.0, "{p} up");
    }
    assert_eq!(s.get("vswitchd_fdb_capacity"), 8192.0);
    assert!(s.get("vswitchd_fdb_entries") >= 3.0);
    assert!(s.get("vswitchd_fdb_learned_total") >= 3.0);
    assert_eq!(
        s.get(&format!(
            "vswitchd_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    // 1. ping -s 1000: each echo request and reply is one 1042-byte frame
    //    (14 Ethernet + 20 IPv4 + 8 ICMP + 1000). Counters count the
    //    Ethernet frame without FCS or virtio-net header.
    const N: f64 = 50.0;
    const FRAME: f64 = 1042.0;
    let (_, s0) = scrape(&addr);
    let o = ns[0].exec(&[
        "timeout",
        "60",
        "ping",
        "-c",
        "50",
        "-i",
        "0.02",
        "-s",
        "1000",
        "-W",
        "5",
        "-q",
        &ip(1),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("50 received"), "{out}");
    let (_, s1) = scrape(&addr);
    let d = |f: &str, p: &str| s1.port(f, p) - s0.port(f, p);
    for (what, port) in [
        ("vswitchd_port_rx_bytes_total", &t[0]), // requests in
        ("vswitchd_port_tx_bytes_total", &t[1]), // requests out
        ("vswitchd_port_rx_bytes_total", &t[1]), // replies in
        ("vswitchd_port_tx_bytes_total", &t[0]), // replies out
    ] {
        within(
            &format!("{what}{{port={port}}} after ping"),
            d(what, port),
            N * FRAME,
            N * FRAME + CHATTER_BYTES,
        );
    }
    for (what, port) in [
        ("vswitchd_port_rx_frames_total", &t[0]),
        ("vswitchd_port_tx_frames_total", &t[1]),
        ("vswitchd_port_rx_frames_total", &t[1]),
        ("vswitchd_port_tx_frames_total", &t[0]),
    ] {
        within(
            &format!("{what}{{port={port}}} after ping"),
            d(what, port),
            N,
            N + CHATTER_FRAMES,
        );
    }
    // Known unicast: none of it reached the third port.
    within(
        "vswitchd_port_tx_bytes_total{port=t2} after ping",
        d("vswitchd_port_tx_bytes_total", &t[2]),
        0.0,
        CHATTER_BYTES,
    );

    // 2. iperf3 -n: a TCP transfer of B payload bytes from ns0 to ns1. Both
    //    TAPs have offloads, so the data crosses as GSO frames of up to
    //    64 KiB, each counted whole (payload + one set of headers).
    //    iperf3's `sender` figure is what the client wrote to its socket;
    //    the end of the test can tear the data connection down before all
    //    of it is on the wire (the server stops reading once the client
    //    says it is done), and `receiver` is what the server read. So the
    //    bytes through the switch lie between `receiver` and `sender` plus
    //    headers: at most 66 bytes per 1448-byte segment (4.6%) even
    //    without GSO, plus iperf3's control connection (a few KiB).
    //    Independently, they equal the kernel's own counters of the TAPs
    //    (inside the namespaces), which count frames the same way.
    let (_, s0) = scrape(&addr);
    let k0 = [kernel_bytes(&ns[0], &t[0]), kernel_bytes(&ns[1], &t[1])];
    // The server in ns1 listens before the client starts; it is gone
    // (one test, -1) before the second scrape.
    let j = iperf3(ns[1].at(), &ip(1), ns[0].at(), &["-n", "8M"]);
    let json = j.to_string();
    let sent = j["end"]["sum_sent"]["bytes"]
        .as_f64()
        .expect("sum_sent.bytes");
    let received = j["end"]["sum_received"]["bytes"]
        .as_f64()
        .expect("sum_received.bytes");
    // iperf3 writes whole blocks until it has written at least -n bytes.
    assert!(
        sent >= 8.0 * 1024.0 * 1024.0,
        "iperf3 -n 8M wrote only {sent} bytes"
    );
    assert!(received > 0.0, "{json}");
    let (_, s1) = scrape(&addr);
    let k1 = [kernel_bytes(&ns[0], &t[0]), kernel_bytes(&ns[1], &t[1])];
    eprintln!("iperf3: sender {sent} bytes, receiver {received} bytes");
    let d = |f: &str, p: &str| s1.port(f, p) - s0.port(f, p);
    let slack = sent * 0.05 + 64.0 * 1024.0;
    within(
        "vswitchd_port_rx_bytes_total{port=t0} after iperf3",
        d("vswitchd_port_rx_bytes_total", &t[0]),
        received,
        sent + slack,
    );
    within(
        "vswitchd_port_tx_bytes_total{port=t1} after iperf3",
        d("vswitchd_port_tx_bytes_total", &t[1]),
        received,
        sent + slack,
    );
    // The other direction carries ACKs and iperf3's control messages only.
    within(
        "vswitchd_port_rx_bytes_total{port=t1} after iperf3",
        d("vswitchd_port_rx_bytes_total", &t[1]),
        1.0,
        slack,
    );
    // Against the kernel: what ns0 sent on its TAP is what the switch read;
    // what the switch wrote to t1 is what ns1 received.
    let kd = |i: usize, dir: usize| k1[i][dir] - k0[i][dir];
    // (what, family, port and namespace, kernel direction: 0 rx, 1 tx)
    let (rx, tx) = (
        "vswitchd_port_rx_bytes_total",
        "vswitchd_port_tx_bytes_total",
    );
    for (what, family, i, dir) in [
        ("rx t0 vs kernel tx in ns0", rx, 0, 1),
        ("tx t0 vs kernel rx in ns0", tx, 0, 0),
        ("tx t1 vs kernel rx in ns1", tx, 1, 0),
        ("rx t1 vs kernel tx in ns1", rx, 1, 1),
    ] {
        let (ours, theirs) = (d(family, &t[i]), kd(i, dir));
        within(what, ours, theirs - CHATTER_BYTES, theirs + CHATTER_BYTES);
    }
    // The transfer's frames went t0 -> t1 whole: as many out as in (give or
    // take background frames to t1 from elsewhere).
    let (fin, fout) = (
        d("vswitchd_port_rx_frames_total", &t[0]),
        d("vswitchd_port_tx_frames_total", &t[1]),
    );
    within(
        "tx frames on t1 vs rx frames on t0 during iperf3",
        fout,
        fin - CHATTER_FRAMES,
        fin + CHATTER_FRAMES,
    );

    // 3. Drops: 802.3x pause frames are always dropped and counted on the
    //    ingress port, exactly.
    let (_, s0) = scrape(&addr);
    let mac0 = ns[0].mac(&t[0]);
    let pause = test_frame("01:80:c2:00:00:01", &mac0, b"pause");
    send_frames(&ns[0], &t[0], &vec![pause; 7]);
    assert!(
        wait_for(Duration::from_secs(10), || scrape(&addr)
            .1
            .drops(&t[0], "pause_frame")
            - s0.drops(&t[0], "pause_frame")
            >= 7.0)
        .is_some(),
        "pause frames not counted as drops"
    );
    let (text, s1) = scrape(&addr);
    assert_eq!(
        s1.drops(&t[0], "pause_frame") - s0.drops(&t[0], "pause_frame"),
        7.0
    );
    promtool_check_metrics(&text);
    drop(sw);
}

/// The `vswitchd_*` names a file mentions (its PromQL and its prose).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("vswitchd_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

/// The dashboard and the alert rules against a switch with every feature
/// on: spanning tree (RSTP, edge ports, BPDU guard on one), storm control,
/// a `vxlan:` port with a remote VTEP. A BPDU trips the guard and a short
/// datagram is dropped by the vxlan port, so the families that appear only
/// once something happened are there too. Every `vswitchd_*` name in
/// dashboards/vswitchd.json and dashboards/vswitchd-alerts.yml must be a
/// family of the scrape; then a real Prometheus scrapes the switch while
/// traffic flows and every dashboard expression must return data.
#[test]
fn dashboard_and_alerts_on_a_switch_with_every_feature() {
    require_root();
    let addr = format!("127.0.0.1:{}", free_port());
    let vx_port = free_port();
    let gobgp = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("vswitchd.toml");
    let vx = format!("vxlan:{}", support::cmd::names("rlx"));
    let Lan {
        ns, taps: t, sw, ..
    } = Lan::with_args("rlm", 4, 111, |taps| {
        // A mirror (t1 to t3), and EVPN on the vxlan port with no GoBGP
        // answering (its families are there all the same).
        write_config(
            &conf,
            &format!(
                "[switch]\nstp = \"rstp\"\n\
                 [evpn]\ngobgp = \"127.0.0.1:{gobgp}\"\nasn = 65000\nrouter-id = \"198.18.111.9\"\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\n\
                 storm-control = {{ broadcast = 50, multicast = 50, unknown-unicast = 50 }}\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\nbpdu-guard = true\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\n\
                 [[port]]\nname = \"{vx}\"\nvni = 100\nlocal = \"127.0.0.1\"\n\
                 dstport = {vx_port}\nremote = [\"127.0.0.2\"]\nevpn = true\n\
                 [[mirror]]\nname = \"m1\"\nports = [\"{}\"]\noutput = \"{}\"\n",
                taps[0], taps[1], taps[2], taps[3], taps[1], taps[3]
            ),
        );
        vec![
            "--config".into(),
            conf.display().to_string(),
            "--metrics-addr".into(),
            addr.clone(),
        ]
    });
    let ip = |i: usize| format!("198.18.111.{}", i + 1);
    assert!(ns[0].ping(&ip(1), 3), "{}", sw.ctl_ok(&["stp", "show"]));
    assert!(ns[0].ping(&ip(2), 3));

    // What only appears once it happened: a BPDU guard trip, a vxlan drop.
    send_frames(&ns[2], &t[2], &[config_bpdu([2, 0, 0, 0, 0x6d, 2], false)]);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(&[0x08, 0, 0], ("127.0.0.1", vx_port)).unwrap();
    // Drops: pause frames, and broadcasts over t0's storm-control limit.
    let mac0 = ns[0].mac(&t[0]);
    send_frames(
        &ns[0],
        &t[0],
        &vec![test_frame("01:80:c2:00:00:01", &mac0, b"pause"); 3],
    );
    send_frames(
        &ns[0],
        &t[0],
        &vec![test_frame("ff:ff:ff:ff:ff:ff", &mac0, b"storm"); 200],
    );
    let seen = wait_for(Duration::from_secs(10), || {
        let (text, s) = scrape(&addr);
        (s.port("vswitchd_stp_bpdu_guard_trips_total", &t[2]) >= 1.0
            && text.contains("vswitchd_vxlan_remote_drops_total{")
            && s.drops(&t[0], "storm_broadcast") > 0.0)
            .then_some(text)
    });
    let text = seen.unwrap_or_else(|| {
        panic!(
            "no guard trip, vxlan drop or storm drop in:\n{}",
            scrape(&addr).0
        )
    });
    promtool_check_metrics(&text);
    let families: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    for file in ["dashboards/vswitchd.json", "dashboards/vswitchd-alerts.yml"] {
        let used = metric_names(&std::fs::read_to_string(repo(file)).unwrap());
        assert!(!used.is_empty(), "{file}: no vswitchd_ names");
        let missing: Vec<&String> = used.difference(&families).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics vswitchd does not export: {missing:?}\n\
             (exported: {families:?})"
        );
    }

    // A real Prometheus scrapes the live switch while traffic flows;
    // dashboards' expressions must return data and alert rules evaluate.
    // Pings from ns0 (500-byte payloads) and ns1 (the default 56): ns2's
    // port is disabled by its BPDU guard.
    let ping = |i: usize, j: usize, size: &str| {
        ns[i].spawn(&[
            "timeout",
            "150",
            "ping",
            "-c",
            "1500",
            "-i",
            "0.1",
            "-s",
            size,
            "-q",
            &ip(j),
        ])
    };
    let _flow = [ping(0, 1, "500"), ping(1, 0, "56")];
    let o = Command::new("timeout")
        .arg("300")
        .arg(repo("tests/metrics/prometheus-e2e.sh"))
        .arg(&addr)
        .env("E2E_TIMEOUT", "120")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    eprintln!("{log}");
    assert!(
        o.status.success(),
        "prometheus-e2e.sh {addr} failed ({:?}):\n{log}",
        o.status
    );
    assert!(log.contains("PASS"), "{log}");
    // The switch is still healthy after being scraped every second.
    assert!(ns[1].ping(&ip(0), 2));
    drop(sw);
}

/// The alert rules load, and their unit tests pass.
#[test]
fn alert_rules_check_and_unit_tests() {
    let o = run(&[
        "timeout",
        "60",
        "promtool",
        "check",
        "rules",
        repo("dashboards/vswitchd-alerts.yml").to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("timeout")
        .args(["120", "promtool", "test", "rules", "alerts-test.yml"])
        .current_dir(repo("tests/metrics"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
