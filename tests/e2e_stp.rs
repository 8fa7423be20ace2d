//! Spanning tree against the Linux kernel's bridge (issue 17): vswitchd
//! and two kernel bridges running STP, cabled in a triangle, one host on
//! each. The kernel bridges are the reference: every bridge must agree on
//! the root, exactly one port of the triangle must block, a broadcast
//! must arrive exactly once at every other host, every host must reach
//! every other, the tree must heal when the root path's link goes down,
//! vswitchd must become root when its priority is lowest, and its BPDUs
//! must decode cleanly in tshark.
//!
//! ```text
//!        hv (TAP)
//!          |
//!      vswitchd  ---- vA/k1a ----  k1: br0 (kernel STP) -- h1
//!          \                        |
//!           vB/k2a               k1b/k2b
//!             \                     |
//!              `-------------  k2: br0 (kernel STP) -- h2
//! ```
//!
//! vswitchd runs RSTP and falls back to STP BPDUs on both links, as a
//! kernel bridge speaks only 802.1D-1998. Short timers on every bridge
//! (hello 1 s, max age 6 s, forward delay 4 s: the kernel's minimum is 2 s
//! and 802.1D wants 2 x (4 - 1) >= 6 >= 2 x (1 + 1)).
//!
//! Root: `sudo -E cargo test --release --test e2e_stp`. Addresses:
//! 198.18.131.0/24 only. Namespaces, veths and vswitchd go on drop.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::Agent;
use support::cmd::{names, require_root, run};
use support::frame::{config_bpdu, test_frame};
use support::net::{Link, Netns, quiet_ipv6};
use support::switchd::{Switchd, write_config};
use support::wait::wait_for;

/// Longest a convergence may take here: STP's listening and learning
/// (2 x 4 s) after max age (6 s), with room for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(45);

/// A kernel bridge with STP in its own namespace.
struct KernelBridge {
    ns: Netns,
}

impl KernelBridge {
    fn new(name: &str, priority: u16) -> KernelBridge {
        let ns = Netns::new(name);
        quiet_ipv6(&ns);
        let p = priority.to_string();
        ns.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "1",
            "hello_time",
            "100",
            "max_age",
            "600",
            "forward_delay",
            "400",
            "priority",
            &p,
        ]);
        ns.ip(&["link", "set", "br0", "up"]);
        KernelBridge { ns }
    }

    /// Enslaves `dev` (already in the namespace) to br0 and brings it up.
    fn enslave(&self, dev: &str) {
        self.ns.ip(&["link", "set", dev, "master", "br0"]);
        self.ns.ip(&["link", "set", dev, "up"]);
    }

    /// The root the bridge believes in, in vswitchd's form
    /// (`8000.02a0fdbf09e5`): the best root any of its ports has heard
    /// (sysfs `brport/designated_root`). The bridge-wide attribute (`ip
    /// -d link`'s root_id) showed the bridge's own id on a bridge that
    /// was not the root, with its root port set.
    fn root_id(&self) -> String {
        let o = self
            .ns
            .exec(&["sh", "-c", "cat /sys/class/net/br0/brif/*/designated_root"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .min()
            .unwrap_or_default()
    }

    fn bridge_id(&self) -> String {
        let v: Value = serde_json::from_str(&self.ns.ip(&["-j", "-d", "link", "show", "br0"]))
            .expect("ip -j output");
        norm_id(
            v[0]["linkinfo"]["info_data"]["bridge_id"]
                .as_str()
                .unwrap_or(""),
        )
    }

    /// The STP state of port `dev` (`blocking`, `forwarding`, ...).
    fn state(&self, dev: &str) -> String {
        let o = self.ns.exec(&["bridge", "-j", "link", "show", "dev", dev]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        v[0]["state"].as_str().unwrap_or("?").to_string()
    }
}

/// `8000.2:bb:c:dd:ee:ff` (iproute2 drops leading zeros) ->
/// `8000.02bb0cddeeff`.
fn norm_id(s: &str) -> String {
    let Some((prio, mac)) = s.split_once('.') else {
        return s.to_lowercase();
    };
    let bytes: String = mac
        .split(':')
        .map(|b| format!("{:02x}", u8::from_str_radix(b, 16).unwrap_or(0)))
        .collect();
    format!("{}.{bytes}", prio.to_lowercase())
}

/// A host namespace with one veth end `dev` (198.18.131.`n`/24); the
/// other end, `peer`, is moved into `into` (or stays in the root
/// namespace for vswitchd's TAP-less host).
struct Host {
    ns: Netns,
    dev: String,
    ip: String,
}

fn host(name: &str, n: u8, peer: &str, into: &Netns) -> (Host, Link) {
    let ns = Netns::new(name);
    quiet_ipv6(&ns);
    let dev = format!("{name}h");
    // The host end is made in the root namespace and moved.
    let link = Link::veth(&dev, peer, Some(into));
    let ip = format!("198.18.131.{n}");
    ns.take(&dev, &format!("{ip}/24"));
    (Host { ns, dev, ip }, link)
}

/// vswitchd's `stp show --json`.
fn stp(sw: &Switchd) -> Value {
    sw.ctl_json(&["stp", "show"])
}

fn vs_state(v: &Value, port: &str) -> String {
    v["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["port"] == port))
        .map(|p| p["state"].as_str().unwrap_or("?").to_string())
        .unwrap_or_else(|| "absent".into())
}

/// Frames carrying `marker` an agent saw.
fn count(a: &mut Agent, marker: &[u8]) -> usize {
    a.poll();
    a.with_marker(marker).len()
}

#[test]
fn stp_triangle_with_two_kernel_bridges() {
    require_root();
    let t0 = Instant::now();
    let base = names("stp");
    // k1 starts as the root (lowest priority); vswitchd takes over later.
    let k1 = KernelBridge::new(&format!("{base}k1"), 4096);
    let k2 = KernelBridge::new(&format!("{base}k2"), 32768);
    // vswitchd's links into the kernel bridges (raw: ports in the root
    // namespace), and the kernel bridges' link to each other.
    let va = format!("{base}va");
    let vb = format!("{base}vb");
    let _la = Link::veth(&va, "k1a", Some(&k1.ns));
    let _lb = Link::veth(&vb, "k2a", Some(&k2.ns));
    k1.enslave("k1a");
    k2.enslave("k2a");
    let kk = format!("{base}kk");
    let _lk = Link::veth(&kk, "k2b", Some(&k2.ns));
    support::cmd::ok(&["ip", "link", "set", &kk, "netns", &k1.ns.name]);
    k1.ns.ip(&["link", "set", &kk, "name", "k1b"]);
    k1.enslave("k1b");
    k2.enslave("k2b");
    // Hosts: h1 on k1, h2 on k2, hv on vswitchd (a TAP).
    let (h1, _l1) = host(&format!("{base}1"), 2, "k1h", &k1.ns);
    k1.enslave("k1h");
    let (h2, _l2) = host(&format!("{base}2"), 3, "k2h", &k2.ns);
    k2.enslave("k2h");
    let tap = format!("{base}t");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("vswitchd.toml");
    let config = |priority: u32| {
        format!(
            "[switch]\nstp = \"rstp\"\nbridge-priority = {priority}\nhello-time = 1\n\
             max-age = 6\nforward-delay = 4\n\
             [[port]]\nname = \"raw:{va}\"\n[[port]]\nname = \"raw:{vb}\"\n\
             [[port]]\nname = \"{tap}\"\nstp-edge = true\n"
        )
    };
    write_config(&conf, &config(32768));
    let sw = Switchd::start(&["--config", conf.to_str().unwrap()], &[&tap]);
    let hv = Netns::new(&format!("{base}v"));
    quiet_ipv6(&hv);
    hv.take(&tap, "198.18.131.1/24");
    let hv = Host {
        ns: hv,
        dev: tap.clone(),
        ip: "198.18.131.1".into(),
    };

    let roots = || {
        [
            stp(&sw)["root_id"].as_str().unwrap_or("").to_string(),
            k1.root_id(),
            k2.root_id(),
        ]
    };
    let triangle_states = || {
        let v = stp(&sw);
        vec![
            ("vswitchd", va.clone(), vs_state(&v, &format!("raw:{va}"))),
            ("vswitchd", vb.clone(), vs_state(&v, &format!("raw:{vb}"))),
            ("k1", "k1a".into(), k1.state("k1a")),
            ("k1", "k1b".into(), k1.state("k1b")),
            ("k2", "k2a".into(), k2.state("k2a")),
            ("k2", "k2b".into(), k2.state("k2b")),
        ]
    };
    // Converged: one root everywhere, one blocked port, the rest forwarding.
    let converged = |root: &str| {
        let roots = roots();
        let states = triangle_states();
        let blocked = states
            .iter()
            .filter(|(_, _, s)| s == "blocking" || s == "discarding")
            .count();
        let forwarding = states.iter().filter(|(_, _, s)| s == "forwarding").count();
        (roots.iter().all(|r| r == root) && blocked == 1 && forwarding == 5)
            .then_some((roots, states))
    };
    let k1_id = k1.bridge_id();
    let got = wait_for(CONVERGE, || converged(&k1_id));
    assert!(
        got.is_some(),
        "no convergence on k1 ({k1_id}) as root: {:?} {:?}\n{}",
        roots(),
        triangle_states(),
        sw.ctl_ok(&["stp", "show"])
    );
    eprintln!(
        "converged with k1 as root after {:?}: {:?}",
        t0.elapsed(),
        got
    );
    let v = stp(&sw);
    assert_eq!(v["mode"], "rstp");
    for p in v["ports"].as_array().unwrap() {
        if p["port"].as_str().unwrap().starts_with("raw:") {
            assert_eq!(
                p["protocol"], "stp",
                "fell back to STP towards a kernel bridge: {p}"
            );
        }
    }

    // Every host reaches every other.
    let hosts = [&hv, &h1, &h2];
    for a in hosts {
        for b in hosts {
            if a.ip != b.ip {
                assert!(
                    wait_for(Duration::from_secs(10), || a.ns.ping(&b.ip, 1)).is_some(),
                    "{} cannot ping {}",
                    a.ns.name,
                    b.ip
                );
            }
        }
    }

    // One broadcast from each host arrives exactly once at the others.
    let mut agents: Vec<Agent> = hosts.iter().map(|h| Agent::start(&h.ns, &h.dev)).collect();
    for (i, from) in hosts.iter().enumerate() {
        let marker = format!("stp-bcast-{i}-{base}");
        let src = format!("02:00:00:00:31:{i:02x}");
        agents[i].send(&test_frame("ff:ff:ff:ff:ff:ff", &src, marker.as_bytes()));
        std::thread::sleep(Duration::from_secs(1));
        for (j, a) in agents.iter_mut().enumerate() {
            if j != i {
                assert_eq!(
                    count(a, marker.as_bytes()),
                    1,
                    "broadcast from {} seen at {} (not exactly once)",
                    from.ns.name,
                    hosts[j].ns.name
                );
            }
        }
    }

    // vswitchd's BPDUs decode as STP in tshark, on k1's side of the link.
    let cap = k1.ns.exec(&[
        "timeout",
        "10",
        "tshark",
        "-i",
        "k1a",
        "-a",
        "duration:4",
        "-f",
        "ether dst 01:80:c2:00:00:00",
        "-T",
        "fields",
        "-e",
        "stp.protocol",
        "-e",
        "stp.version",
        "-e",
        "stp.type",
        "-e",
        "stp.root.hw",
        "-e",
        "_ws.expert",
    ]);
    let text = String::from_utf8_lossy(&cap.stdout).to_string();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    eprintln!("tshark on k1a:\n{text}");
    assert!(
        !lines.is_empty(),
        "no BPDU captured: {}",
        String::from_utf8_lossy(&cap.stderr)
    );
    for l in &lines {
        assert!(l.starts_with("0x0000\t"), "not an STP BPDU: {l}");
        assert!(!l.to_lowercase().contains("malformed"), "malformed: {l}");
    }

    // vswitchd becomes root when its priority is lowest.
    write_config(&conf, &config(0));
    sw.ctl_ok(&["reload"]);
    let vs_id = stp(&sw)["bridge_id"].as_str().unwrap().to_string();
    assert!(vs_id.starts_with("0000."), "{vs_id}");
    let t1 = Instant::now();
    // The root's ports are all designated and forwarding; the block moves
    // to the kernel bridges' link.
    let got = wait_for(CONVERGE, || {
        converged(&vs_id).filter(|(_, states)| {
            states
                .iter()
                .all(|(who, _, s)| *who != "vswitchd" || s == "forwarding")
        })
    });
    assert!(
        got.is_some(),
        "vswitchd ({vs_id}) did not become root: {:?} {:?}\n{}",
        roots(),
        triangle_states(),
        sw.ctl_ok(&["stp", "show"])
    );
    eprintln!("vswitchd root after {:?}: {:?}", t1.elapsed(), got);
    assert!(stp(&sw)["root_port"].is_null());

    // Failover: the link from vswitchd (root) to k1 goes down; k1 reaches
    // the root through k2 once k2's blocked port (or k1's) forwards.
    run(&["ip", "link", "set", &va, "down"]);
    let t2 = Instant::now();
    let healed = wait_for(CONVERGE, || h1.ns.ping(&hv.ip, 1));
    assert!(
        healed.is_some(),
        "h1 cannot reach hv after the root link failed: {:?}\n{}",
        triangle_states(),
        sw.ctl_ok(&["stp", "show"])
    );
    eprintln!(
        "failover (kernel STP timers: max age 6 s + 2 x forward delay 4 s): {:?}",
        t2.elapsed()
    );
    assert!(h2.ns.ping(&hv.ip, 2) && h1.ns.ping(&h2.ip, 2));
    let v = stp(&sw);
    assert!(v["topology_changes"].as_u64().unwrap_or(0) >= 1, "{v}");
    eprintln!("e2e_stp done in {:?}", t0.elapsed());
}

/// Three vswitchd in a ring (raw: ports on veth pairs), RSTP on all, one
/// host on each: converged with one discarding port, then the root
/// link of one switch goes down while a host pings across it every
/// 10 ms. Reports how long traffic stopped (RSTP's rapid transitions;
/// the kernel's STP needs max age plus twice the forward delay).
#[test]
fn rstp_ring_of_three_reconverges_after_a_link_flap() {
    require_root();
    let base = names("rsr");
    // Links: s0-s1, s1-s2, s2-s0; switch i holds ends `{base}{i}a` (to
    // the next switch) and `{base}{i}b` (from the previous one).
    let links: Vec<Link> = (0..3)
        .map(|i| {
            let a = format!("{base}{i}a");
            let b = format!("{base}{}b", (i + 1) % 3);
            Link::veth(&a, &b, None)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut switches = Vec::new();
    let mut hosts = Vec::new();
    for i in 0..3 {
        let conf = dir.path().join(format!("s{i}.toml"));
        let tap = format!("{base}t{i}");
        // s0 is the root.
        let priority = if i == 0 { 4096 } else { 32768 };
        write_config(
            &conf,
            &format!(
                "[switch]\nstp = \"rstp\"\nbridge-priority = {priority}\n\
                 [[port]]\nname = \"raw:{base}{i}a\"\n[[port]]\nname = \"raw:{base}{i}b\"\n\
                 [[port]]\nname = \"{tap}\"\nstp-edge = true\n"
            ),
        );
        let sw = Switchd::start(&["--config", conf.to_str().unwrap()], &[&tap]);
        let ns = Netns::new(&format!("{base}h{i}"));
        quiet_ipv6(&ns);
        let ip = format!("198.18.131.{}", 10 + i);
        ns.take(&tap, &format!("{ip}/24"));
        switches.push(sw);
        hosts.push(Host { ns, dev: tap, ip });
    }
    let states = || -> Vec<(usize, String, String, String)> {
        let mut v = Vec::new();
        for (i, sw) in switches.iter().enumerate() {
            let s = stp(sw);
            for p in s["ports"].as_array().into_iter().flatten() {
                let port = p["port"].as_str().unwrap_or("").to_string();
                if port.starts_with("raw:") {
                    v.push((
                        i,
                        port,
                        p["role"].as_str().unwrap_or("").to_string(),
                        p["state"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        v
    };
    let one_blocked = || {
        let s = states();
        let roots: Vec<String> = switches
            .iter()
            .map(|sw| stp(sw)["root_id"].as_str().unwrap_or("").to_string())
            .collect();
        let discarding = s.iter().filter(|p| p.3 == "discarding").count();
        let forwarding = s.iter().filter(|p| p.3 == "forwarding").count();
        (roots.iter().all(|r| *r == roots[0]) && discarding == 1 && forwarding == 5).then_some(s)
    };
    let t0 = Instant::now();
    let got = wait_for(CONVERGE, one_blocked);
    assert!(got.is_some(), "ring did not converge: {:?}", states());
    eprintln!("ring converged after {:?}: {:?}", t0.elapsed(), got);
    assert!(
        wait_for(Duration::from_secs(10), || hosts[1]
            .ns
            .ping(&hosts[0].ip, 1))
        .is_some(),
        "h1 cannot reach h0"
    );

    // s1's root port is its link to s0 (`{base}1b`, the far end of s0's
    // `{base}0a`). Take it down while h1 pings h0 every 10 ms.
    let ping = support::traffic::BgPing::start(&hosts[1].ns, &hosts[0].ip, 400, "0.01");
    std::thread::sleep(Duration::from_secs(1));
    run(&["ip", "link", "set", &format!("{base}1b"), "down"]);
    let (sent, received, summary) = ping.finish();
    let lost = sent.saturating_sub(received);
    eprintln!(
        "RSTP ring, link flap: {lost} of {sent} pings lost at 10 ms intervals \
         (about {} ms without traffic); {:?}",
        lost * 10,
        states()
    );
    assert!(received > 0, "no ping came back: {summary}");
    let healed = wait_for(CONVERGE, || {
        let s = states();
        let fwd = s.iter().filter(|p| p.3 == "forwarding").count();
        (fwd == 4).then_some(s)
    });
    assert!(healed.is_some(), "ring did not heal: {:?}", states());
    assert!(hosts[1].ns.ping(&hosts[0].ip, 2) && hosts[2].ns.ping(&hosts[1].ip, 2));
    // The link comes back: one port blocks again.
    run(&["ip", "link", "set", &format!("{base}1b"), "up"]);
    let back = wait_for(CONVERGE, one_blocked);
    assert!(
        back.is_some(),
        "ring did not converge again: {:?}",
        states()
    );
    drop(links);
}

/// BPDU guard and malformed BPDUs, as a guest would send them: a
/// malformed BPDU is counted and changes nothing; a BPDU on a guarded port
/// disables it (state, log, metric) until `vswitchctl stp enable`.
#[test]
fn bpdu_guard_and_malformed_bpdus() {
    require_root();
    let addr = format!("127.0.0.1:{}", support::net::free_port());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("vswitchd.toml");
    let lan = support::switchd::Lan::with_args("sbg", 2, 132, |taps| {
        write_config(
            &conf,
            &format!(
                "[switch]\nstp = \"rstp\"\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\n\
                 [[port]]\nname = \"{}\"\nstp-edge = true\nbpdu-guard = true\n",
                taps[0], taps[1]
            ),
        );
        vec![
            "--config".into(),
            conf.display().to_string(),
            "--metrics-addr".into(),
            addr.clone(),
        ]
    });
    let sw = &lan.sw;
    let (t0, t1) = (lan.taps[0].clone(), lan.taps[1].clone());
    assert!(lan.ping_eventually(0, 1), "{}", sw.ctl_ok(&["stp", "show"]));
    let port = |name: &str| -> Value {
        stp(sw)["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["port"] == name).cloned())
            .unwrap_or(Value::Null)
    };

    // Malformed, on the unguarded port: counted, nothing changes.
    let mut a0 = Agent::start(&lan.ns[0], &t0);
    a0.send(&config_bpdu([2, 0, 0, 0, 0x32, 1], true));
    let bad = wait_for(Duration::from_secs(5), || {
        (port(&t0)["bpdus_bad"].as_u64() == Some(1)).then_some(())
    });
    assert!(bad.is_some(), "malformed BPDU not counted: {}", port(&t0));
    assert_eq!(port(&t0)["state"], "forwarding");
    assert!(lan.ns[0].ping(&lan.ips[1], 2));

    // A valid BPDU on the guarded port: the port is disabled.
    let mut a1 = Agent::start(&lan.ns[1], &t1);
    a1.send(&config_bpdu([2, 0, 0, 0, 0x32, 2], false));
    let tripped = wait_for(Duration::from_secs(5), || {
        let p = port(&t1);
        (p["bpdu_guard_tripped"] == true && p["state"] == "disabled").then_some(p)
    });
    assert!(tripped.is_some(), "guard did not trip: {}", port(&t1));
    assert!(
        !lan.ns[0].ping(&lan.ips[1], 2),
        "a tripped port still forwards"
    );
    assert!(sw.log_text().contains("BPDU guard"), "{}", sw.log_text());
    let (_, _, metrics) = support::state::http(&addr, "GET", "/metrics");
    let s = support::state::Scrape::parse(&metrics);
    assert_eq!(
        s.port("vswitchd_stp_bpdu_guard_trips_total", &t1),
        1.0,
        "{metrics}"
    );
    // Enabling a port that did not trip is refused.
    let o = sw.ctl(&["stp", "enable", &t0]);
    assert!(!o.status.success());

    // Re-enabled: forwarding again (an edge port, at once).
    sw.ctl_ok(&["stp", "enable", &t1]);
    assert!(lan.ping_eventually(0, 1), "{}", sw.ctl_ok(&["stp", "show"]));
    assert_eq!(port(&t1)["bpdu_guard_tripped"], false);

    // Bridge settings at run time: checked like the file's, applied
    // without a reload, and spanning tree turned off and on.
    let o = sw.ctl(&["stp", "set", "--max-age", "40"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && err.contains("2 x (forward-delay - 1) >= max-age"),
        "{err}"
    );
    sw.ctl_ok(&["stp", "set", "--priority", "4096"]);
    assert!(stp(sw)["bridge_id"].as_str().unwrap().starts_with("1000."));
    sw.ctl_ok(&["stp", "set", "--mode", "off"]);
    let o = sw.ctl(&["--json", "stp", "show"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("invalid"),
        "{o:?}"
    );
    assert!(
        lan.ns[0].ping(&lan.ips[1], 2),
        "forwarding with spanning tree off"
    );
    sw.ctl_ok(&["stp", "set", "--mode", "rstp"]);
    assert_eq!(stp(sw)["mode"], "rstp");
    assert!(lan.ping_eventually(0, 1), "{}", sw.ctl_ok(&["stp", "show"]));
}
