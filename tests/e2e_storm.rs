//! A broadcast storm, and storm control holding it (issue 23): two veth
//! pairs cabled from vswitchd back into vswitchd (four `raw:` ports, two
//! loops, spanning tree off) and one broadcast sent. Every copy that comes
//! back is flooded to three loop ports, so without limits the storm grows
//! until the switch does nothing else. With `storm-control` on the loop
//! ports, two hosts on TAP ports keep pinging each other, `vswitchctl
//! show` and the metrics endpoint keep answering, and the storm shows in
//! the `storm_broadcast` drop counters.
//!
//! Root: `sudo -E cargo test --release --test e2e_storm`. Addresses:
//! 198.18.0.0/15 and 127.0.0.1 only. The storm lives only while vswitchd
//! forwards it: it ends when the test stops vswitchd (also on failure,
//! by drop), and the veths are deleted by drop.

mod support;

use std::time::{Duration, Instant};

use support::agent::send_frames;
use support::cmd::{names, require_root};
use support::frame::test_frame;
use support::net::{Link, free_port};
use support::state::{Scrape, drops, http};
use support::switchd::Lan;
use support::traffic::BgPing;
use support::wait::wait_for;

/// Broadcasts each loop port lets in per second.
const LIMIT: u64 = 1000;

#[test]
fn storm_control_holds_a_broadcast_loop() {
    require_root();
    let base = names("stc");
    let loops: Vec<(Link, String)> = (0..2)
        .map(|i| {
            let a = format!("{base}a{i}");
            let b = format!("{base}b{i}");
            (Link::veth(&a, &b, None), b)
        })
        .collect();
    let loop_ports: Vec<String> = loops
        .iter()
        .flat_map(|(a, b)| [a.0.clone(), b.clone()])
        .collect();
    let addr = format!("127.0.0.1:{}", free_port());
    let lan = Lan::with_args("sth", 2, 120, |taps| {
        vec![
            "--ports".into(),
            taps.join(","),
            "--metrics-addr".into(),
            addr.clone(),
        ]
    });
    let sw = &lan.sw;
    // The hosts resolve each other before the loops are cabled, then keep
    // their neighbours: their own broadcasts would join the storm and
    // move their MACs onto the loop ports (MAC flapping, which storm
    // control does not prevent; spanning tree does). What is measured is
    // forwarding through the storm.
    assert!(lan.ping_eventually(0, 1), "{}", sw.log_text());
    for (i, j) in [(0, 1), (1, 0)] {
        let mac = lan.ns[j].mac(&lan.taps[j]);
        lan.ns[i].ip(&[
            "neigh",
            "replace",
            &lan.ips[j],
            "lladdr",
            &mac,
            "dev",
            &lan.taps[i],
            "nud",
            "permanent",
        ]);
    }
    let raw: Vec<String> = loop_ports.iter().map(|p| format!("raw:{p}")).collect();
    let counter = |v: &serde_json::Value, what: &str| -> u64 {
        raw.iter()
            .map(|p| {
                support::state::port_json(v, p)["counters"][what]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum()
    };
    let storm_drops =
        |v: &serde_json::Value| -> u64 { raw.iter().map(|p| drops(v, p, "storm_broadcast")).sum() };
    let marker = b"vswitch storm test";
    let one_broadcast = || {
        send_frames(
            &lan.ns[0],
            &lan.taps[0],
            &[test_frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:53:01", marker)],
        )
    };

    // Without storm control: cable the loops, send one broadcast, and the
    // storm feeds itself (the loop ports' receive counters keep climbing).
    for p in &raw {
        sw.ctl_ok(&["port", "add", p]);
    }
    support::state::wait_ports_up(sw, &raw);
    one_broadcast();
    let rx0 = counter(&sw.ctl_json(&["show"]), "rx_frames");
    let ping = BgPing::start(&lan.ns[0], &lan.ips[1], 50, "0.02");
    std::thread::sleep(Duration::from_secs(2));
    let rx1 = counter(&sw.ctl_json(&["show"]), "rx_frames");
    let (sent, received, _) = ping.finish();
    eprintln!(
        "no storm control: {} frames/s into the loop ports; ping {received}/{sent}",
        (rx1 - rx0) / 2
    );
    assert!(
        rx1 - rx0 > 20 * LIMIT,
        "no storm without storm control ({rx0} -> {rx1} frames): {}",
        sw.ctl_ok(&["show"])
    );

    // Stop it as an operator would: storm control on the loop ports.
    let limits = format!("broadcast={LIMIT},multicast={LIMIT},unknown-unicast={LIMIT}");
    for p in &raw {
        sw.ctl_ok(&["port", "set", p, "--storm-control", &limits]);
    }
    let v = sw.ctl_json(&["show"]);
    assert_eq!(
        support::state::port_json(&v, &raw[0])["storm_control"]["broadcast"],
        LIMIT,
        "show lists the limits: {v}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || storm_drops(
            &sw.ctl_json(&["show"])
        ) > 0)
        .is_some(),
        "storm control dropped nothing: {}",
        sw.ctl_ok(&["show"])
    );
    // At most the limit gets in per loop port from now on (plus a burst).
    let v0 = sw.ctl_json(&["show"]);
    std::thread::sleep(Duration::from_secs(2));
    let v1 = sw.ctl_json(&["show"]);
    let admitted = (counter(&v1, "rx_frames") - counter(&v0, "rx_frames"))
        - (storm_drops(&v1) - storm_drops(&v0));
    eprintln!("storm control: {admitted} broadcasts admitted in 2 s on 4 loop ports");
    assert!(
        admitted <= raw.len() as u64 * (3 * LIMIT),
        "over the limit: {admitted} admitted in 2 s"
    );

    // A new broadcast into the loops is held from the start.
    one_broadcast();
    // Hosts on other ports keep talking through it.
    let ping = BgPing::start(&lan.ns[0], &lan.ips[1], 300, "0.02");
    let mut slowest_show = Duration::ZERO;
    let mut slowest_scrape = Duration::ZERO;
    let mut probes = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) && probes < 20 {
        let t = Instant::now();
        let v = sw.ctl_json(&["show"]);
        slowest_show = slowest_show.max(t.elapsed());
        assert!(v["ports"].is_array(), "show answered: {v}");
        let t = Instant::now();
        let (code, _, text) = http(&addr, "GET", "/metrics");
        slowest_scrape = slowest_scrape.max(t.elapsed());
        assert_eq!(code, 200);
        let s = Scrape::parse(&text);
        let seen: f64 = raw.iter().map(|p| s.drops(p, "storm_broadcast")).sum();
        assert!(seen > 0.0, "the storm shows in the metrics");
        probes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (sent, received, summary) = ping.finish();
    let v = sw.ctl_json(&["show"]);
    let dropped = storm_drops(&v);
    let rx = counter(&v, "rx_frames");
    eprintln!(
        "storm: {rx} frames received on the loop ports, {dropped} dropped by storm control; \
         ping {received}/{sent}; slowest show {slowest_show:?}, slowest scrape {slowest_scrape:?} \
         over {probes} probes"
    );
    assert_eq!(sent, 300, "{summary}");
    assert!(
        received * 100 >= sent * 99,
        "more than 1% of pings lost through the storm: {summary}"
    );
    assert!(probes >= 5, "show and scrape answered only {probes} times");
}
