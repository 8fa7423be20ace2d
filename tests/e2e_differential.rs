//! Differential end-to-end test: the same crafted frames go through a
//! kernel bridge (veth pairs, STP off, VLAN-unaware, default settings) and
//! through vswitchd (TAPs), and "who receives which frame, with which
//! bytes" must be the same on both — and what the Linux bridge rules say.
//!
//! Each scenario is a list of steps (sender host, frame, expected
//! receivers). After every step the sender floods a barrier broadcast and
//! the test waits until every other host has seen it, so each frame has
//! been forwarded (and its source learned) before the next one: no sleeps.
//! Frames are matched by a payload marker (`VSD#nnnn#`), or by their exact
//! bytes for header-only frames.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use support::agent::Agent;
use support::cmd::{names, require_root};
use support::frame::{BCAST, ETH_TEST, contains, frame, hex};
use support::net::{Netns, quiet_ipv6};
use support::switchd::Lan;
use support::wait::{PATIENCE, wait_for};

const HOSTS: usize = 4;
const HOST_NAMES: [char; HOSTS] = ['A', 'B', 'C', 'D'];

/// One frame sent in a scenario.
struct Step {
    from: usize,
    frame: Vec<u8>,
    /// Payload marker that identifies the frame, if it has one.
    marker: Option<Vec<u8>>,
    what: String,
    /// Hosts that should receive it, per the Linux bridge rules: "BCD".
    expect: &'static str,
    /// Why the number of frames each switch sent out may differ (the
    /// receivers must still agree).
    fwd_differs: Option<&'static str>,
}

/// Builds the steps of a scenario, giving each frame its marker.
struct Script {
    scenario: u8,
    steps: Vec<Step>,
}

impl Script {
    fn new(scenario: u8) -> Script {
        Script {
            scenario,
            steps: Vec::new(),
        }
    }

    /// A MAC owned by this scenario: 02:d1:ff:00:<scenario>:<n>.
    fn mac(&self, n: u8) -> [u8; 6] {
        [0x02, 0xd1, 0xff, 0x00, self.scenario, n]
    }

    fn marker(&self) -> Vec<u8> {
        format!("VSD#{:02x}{:02x}#", self.scenario, self.steps.len()).into_bytes()
    }

    /// A frame with a marker payload (`tags` outermost first).
    fn send(
        &mut self,
        from: usize,
        dst: [u8; 6],
        src: [u8; 6],
        tags: &[(u16, u16)],
        what: &str,
        expect: &'static str,
    ) {
        let m = self.marker();
        let f = frame(dst, src, tags, ETH_TEST, &m);
        self.push(from, f, Some(m), what, expect);
    }

    /// A frame given byte for byte, identified by its bytes.
    fn raw(&mut self, from: usize, frame: Vec<u8>, what: &str, expect: &'static str) {
        self.push(from, frame, None, what, expect);
    }

    fn push(
        &mut self,
        from: usize,
        frame: Vec<u8>,
        marker: Option<Vec<u8>>,
        what: &str,
        expect: &'static str,
    ) {
        assert!(
            self.steps.iter().all(|s| s.frame != frame),
            "duplicate frame: {what}"
        );
        self.steps.push(Step {
            from,
            frame,
            marker,
            what: what.into(),
            expect,
            fwd_differs: None,
        });
    }

    /// Marks the last step: the switches may send it out of a different
    /// number of ports, for the reason given.
    fn fwd_differs(&mut self, why: &'static str) {
        self.steps.last_mut().unwrap().fwd_differs = Some(why);
    }
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

fn ll(group: u8) -> [u8; 6] {
    [0x01, 0x80, 0xc2, 0x00, 0x00, group]
}

/// (a) learning, moves.
fn learning() -> Script {
    let mut s = Script::new(1);
    let (a, b, c) = (s.mac(0xa), s.mac(0xb), s.mac(0xc));
    s.send(A, b, a, &[], "A->b, b unknown", "BCD");
    s.send(B, a, b, &[], "B->a, a learned on A", "A");
    s.send(A, b, a, &[], "A->b, b learned on B", "B");
    s.send(C, b, c, &[], "C->b", "B");
    s.send(D, a, b, &[], "D: src b (b moves to D) ->a", "A");
    s.send(A, b, a, &[], "A->b after the move", "D");
    s.send(B, c, a, &[], "B: src a (a moves to B) ->c", "C");
    s.send(C, a, c, &[], "C->a after the move", "B");
    s
}

/// (b) broadcast and multicast flooding.
fn flooding() -> Script {
    let mut s = Script::new(2);
    let a = s.mac(0xa);
    s.send(A, BCAST, a, &[], "broadcast", "BCD");
    s.send(
        A,
        [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03],
        a,
        &[],
        "01:00:5e:01:02:03 (IPv4 mcast)",
        "BCD",
    );
    s.send(
        A,
        [0x33, 0x33, 0, 0, 0, 1],
        a,
        &[],
        "33:33:00:00:00:01 (IPv6 all-nodes)",
        "BCD",
    );
    s.send(
        A,
        [0x33, 0x33, 0xff, 0, 0, 1],
        a,
        &[],
        "33:33:ff:00:00:01 (solicited-node)",
        "BCD",
    );
    s.send(
        B,
        [0x01, 0x1b, 0x19, 0, 0, 0],
        s.mac(0xb),
        &[],
        "B->01:1b:19:00:00:00 (PTP)",
        "ACD",
    );
    s.send(
        C,
        [0x03, 0, 0, 0, 0, 1],
        s.mac(0xc),
        &[],
        "C->03:00:00:00:00:01 (local mcast)",
        "ABD",
    );
    s.send(A, s.mac(0x99), a, &[], "unknown unicast", "BCD");
    s
}

/// (c) unicast back to the ingress port.
fn same_port() -> Script {
    let mut s = Script::new(3);
    let (x, y, z, w) = (s.mac(1), s.mac(2), s.mac(3), s.mac(4));
    s.send(A, x, x, &[], "A: x->x (own MAC)", "");
    s.send(A, BCAST, y, &[], "A: y->broadcast (learn y on A)", "BCD");
    s.send(A, y, z, &[], "A: z->y (y behind A too)", "");
    s.send(B, y, w, &[], "B: w->y (control)", "A");
    s.send(A, w, y, &[], "A: y->w", "B");
    s.send(B, w, x, &[], "B: x->w (x moves to B, w on B)", "");
    s
}

/// (d) link-local groups 01:80:c2:00:00:0X, STP off, default mask.
fn link_local() -> Script {
    let mut s = Script::new(4);
    let a = s.mac(0xa);
    s.send(A, ll(0x00), a, &[], ":00 STP", "BCD");
    s.send(A, ll(0x01), a, &[], ":01 pause", "");
    s.send(A, ll(0x02), a, &[], ":02 LACP", "");
    s.send(A, ll(0x03), a, &[], ":03 802.1X", "");
    s.send(A, ll(0x0e), a, &[], ":0E LLDP", "");
    s.send(A, ll(0x0f), a, &[], ":0F", "");
    s.send(A, ll(0x10), a, &[], ":10 (not link-local)", "BCD");
    s.send(A, ll(0x00), a, &[(0x8100, 10)], ":00 tagged VID 10", "BCD");
    s.send(A, ll(0x0e), a, &[(0x8100, 10)], ":0E tagged VID 10", "");
    s.send(A, ll(0x02), a, &[(0x88a8, 5)], ":02 802.1ad tag", "");
    // Source learned from a dropped link-local frame?
    s.send(A, ll(0x0e), s.mac(0xe), &[], ":0E from e", "");
    s.send(
        B,
        s.mac(0xe),
        s.mac(0xb),
        &[],
        "B->e (learned from :0E?)",
        "A",
    );
    s
}

/// (e) header-only and truncated frames.
fn short_frames() -> Script {
    let mut s = Script::new(5);
    let (e1, e2) = (s.mac(1), s.mac(2));
    let hdr = |dst: [u8; 6], src: [u8; 6], ty: u16| frame(dst, src, &[], ty, &[]);
    s.raw(
        A,
        hdr(BCAST, e1, ETH_TEST),
        "14-byte header-only broadcast",
        "BCD",
    );
    s.raw(
        B,
        hdr(e1, e2, ETH_TEST),
        "14-byte header-only to a known MAC",
        "A",
    );
    s.raw(
        A,
        hdr(s.mac(0x99), e1, 0x0800),
        "14-byte IPv4 ethertype, unknown dst",
        "BCD",
    );
    // A tag but no EtherType after it (16 bytes).
    let mut t = hdr(BCAST, e1, 0x8100);
    t.extend_from_slice(&[0x00, 0x0a]);
    s.raw(A, t, "16-byte: 802.1Q tag, no EtherType", "");
    // 18 bytes: tag + EtherType, no payload.
    // The receiving kernels drop it (skb_vlan_untag wants 2 bytes past the
    // tag), so no host can see it; the kernel already drops it on the
    // bridge port's receive path, vswitchd forwards it.
    s.raw(
        A,
        frame(BCAST, e1, &[(0x8100, 10)], ETH_TEST, &[]),
        "18-byte tagged header-only",
        "",
    );
    s.fwd_differs("18-byte tagged frame: the kernel's receive path drops it before the bridge (skb_vlan_untag needs 2 bytes after the tag); vswitchd forwards it and the receiving kernels drop it");
    s.send(A, BCAST, e1, &[], "23-byte (9-byte payload)", "BCD");
    let m = s.marker();
    let mut p = m.clone();
    p.resize(1500, 0x5a);
    s.push(
        A,
        frame(BCAST, e1, &[], ETH_TEST, &p),
        Some(m),
        "1514-byte (MTU) broadcast",
        "BCD",
    );
    s
}

/// (f) tags pass through a VLAN-unaware switch untouched; the FDB
/// ignores them.
fn tags() -> Script {
    let mut s = Script::new(6);
    let (a, t1) = (s.mac(0xa), s.mac(0x71));
    s.send(A, BCAST, a, &[(0x8100, 10)], "802.1Q VID 10", "BCD");
    s.send(
        A,
        BCAST,
        a,
        &[(0x8100, 0xa000)],
        "802.1Q VID 0 PCP 5 (priority)",
        "BCD",
    );
    s.send(A, BCAST, a, &[(0x8100, 0x0fff)], "802.1Q VID 4095", "BCD");
    s.send(
        A,
        BCAST,
        a,
        &[(0x8100, 0x3001)],
        "802.1Q VID 1 PCP 1 DEI 1",
        "BCD",
    );
    s.send(
        A,
        BCAST,
        a,
        &[(0x88a8, 100), (0x8100, 10)],
        "802.1ad 100 + 802.1Q 10",
        "BCD",
    );
    s.send(
        A,
        BCAST,
        a,
        &[(0x8100, 20), (0x8100, 30)],
        "802.1Q 20 + 802.1Q 30",
        "BCD",
    );
    s.send(A, BCAST, a, &[(0x9100, 7)], "TPID 0x9100 VID 7", "BCD");
    s.send(
        B,
        s.mac(0x99),
        t1,
        &[(0x8100, 10)],
        "B: t1 tagged 10 -> unknown",
        "ACD",
    );
    s.send(A, t1, a, &[], "A->t1 untagged", "B");
    s.send(C, t1, s.mac(0xc), &[(0x8100, 20)], "C->t1 tagged 20", "B");
    s.send(D, t1, s.mac(0xd), &[(0x88a8, 20)], "D->t1 802.1ad 20", "B");
    s
}

/// (g) invalid source addresses.
fn bad_sources() -> Script {
    let mut s = Script::new(7);
    s.send(
        A,
        BCAST,
        [0x01, 0x00, 0x5e, 0, 0, 1],
        &[],
        "multicast source",
        "",
    );
    s.send(A, BCAST, BCAST, &[], "broadcast source", "");
    s.send(A, BCAST, [0; 6], &[], "all-zero source", "");
    s.send(
        A,
        s.mac(0x99),
        [0; 6],
        &[],
        "all-zero source, unicast dst",
        "",
    );
    s
}

/// Hosts on a switch: one namespace and frame agent each.
struct Fabric {
    kind: &'static str,
    agents: Vec<Agent>,
    barriers: u32,
    /// Kernel: the bridge's namespace and its port devices.
    bridge: Option<(Netns, Vec<String>)>,
    // Dropped after the agents: the switch, then the namespaces.
    lan: Option<Lan>,
    _ns: Vec<Netns>,
}

/// Frames a switch sent out of its ports, and (vswitchd) drops by reason.
#[derive(Default, Clone, PartialEq)]
struct Counts {
    tx: u64,
    drops: BTreeMap<String, u64>,
}

impl Fabric {
    /// A kernel bridge with default settings (STP off, VLAN-unaware,
    /// ageing 300 s) in its own namespace, and one veth pair per host.
    /// br_netfilter is switched off in that namespace (it is built in here
    /// and on by default): the bridge alone is the reference.
    fn kernel(base: &str) -> Fabric {
        let sw = Netns::new(&format!("{base}sw"));
        quiet_ipv6(&sw);
        for k in ["iptables", "ip6tables", "arptables"] {
            sw.at()
                .sysctl(&format!("net.bridge.bridge-nf-call-{k}"), "0");
        }
        let br = "br0";
        sw.ip(&["link", "add", br, "type", "bridge", "ageing_time", "30000"]);
        sw.ip(&["link", "set", br, "up"]);
        let mut ns = Vec::new();
        let mut devs = Vec::new();
        for i in 0..HOSTS {
            let n = Netns::new(&format!("{base}k{i}"));
            quiet_ipv6(&n);
            let (vr, vn) = (format!("sw{i}"), format!("{base}h{i}"));
            sw.ip(&[
                "link", "add", &vr, "type", "veth", "peer", "name", &vn, "netns", &n.name,
            ]);
            sw.ip(&["link", "set", &vr, "master", br]);
            sw.ip(&["link", "set", &vr, "up"]);
            n.ip(&["link", "set", &vn, "up"]);
            ns.push(n);
            devs.push((vr, vn));
        }
        // Without STP, ports forward as soon as their link is up.
        for (vr, _) in &devs {
            let fwd = wait_for(PATIENCE, || {
                let o = sw.exec(&["cat", &format!("/sys/class/net/{vr}/brport/state")]);
                String::from_utf8_lossy(&o.stdout).trim() == "3"
            });
            assert!(fwd.is_some(), "bridge port {vr} never forwarding");
        }
        // With multicast snooping on (the default) the bridge device joins
        // 224.0.0.106 when it comes up and sends two IGMPv3 reports about
        // a second apart, flooded to every port: let them pass before the
        // test counts frames (at most a few seconds).
        let _ = wait_for(Duration::from_secs(5), || {
            let o = sw.exec(&["cat", "/sys/class/net/br0/statistics/tx_packets"]);
            let n: u64 = String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            n >= 2
        });
        let agents = (0..HOSTS)
            .map(|i| Agent::start(&ns[i], &devs[i].1))
            .collect();
        let ports = devs.into_iter().map(|(vr, _)| vr).collect();
        Fabric {
            kind: "kernel",
            agents,
            barriers: 0,
            bridge: Some((sw, ports)),
            lan: None,
            _ns: ns,
        }
    }

    /// vswitchd with one TAP per host, moved into the host's namespace.
    fn vswitchd(tag: &str, net: u8) -> Fabric {
        let lan = Lan::with_args(tag, HOSTS, net, |taps| {
            vec![
                "--ports".into(),
                taps.join(","),
                "--ageing-time".into(),
                "300".into(),
            ]
        });
        let agents = (0..HOSTS)
            .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
            .collect();
        Fabric {
            kind: "vswitchd",
            agents,
            barriers: 0,
            bridge: None,
            lan: Some(lan),
            _ns: Vec::new(),
        }
    }

    fn counts_once(&self) -> Counts {
        let mut c = Counts::default();
        if let Some((sw, ports)) = &self.bridge {
            let o = sw.exec(&["ip", "-j", "-s", "link", "show"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("ip -j");
            for l in v.as_array().expect("links") {
                if ports.iter().any(|p| l["ifname"] == p.as_str()) {
                    c.tx += l["stats64"]["tx"]["packets"].as_u64().expect("tx packets");
                }
            }
        }
        if let Some(lan) = &self.lan {
            let v = lan.sw.ctl_json(&["stats"]);
            for p in v["ports"].as_array().expect("ports") {
                c.tx += p["counters"]["tx_frames"].as_u64().unwrap_or(0);
                if let Some(d) = p["counters"]["drops"].as_object() {
                    for (k, n) in d {
                        *c.drops.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
                    }
                }
            }
        }
        c
    }

    /// Counters once two reads at least 100 ms apart agree (a worker may
    /// be between a write and its counter update); at most 5 s.
    fn counts(&self) -> Counts {
        let mut last = self.counts_once();
        let _ = wait_for(Duration::from_secs(5), || {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.counts_once();
            let stable = now == last;
            last = now;
            stable
        });
        last
    }

    /// Floods a barrier from `from` and waits until every other host saw it.
    fn barrier(&mut self, from: usize) {
        self.barriers += 1;
        let m = format!("VSDBAR{:08x}", self.barriers).into_bytes();
        let f = frame(BCAST, [0x02, 0xbb, 0, 0, 0, from as u8], &[], 0x88b6, &m);
        self.agents[from].send(&f);
        for h in (0..HOSTS).filter(|h| *h != from) {
            let kind = self.kind;
            assert!(
                self.agents[h].wait_marker(&m, PATIENCE),
                "{kind}: host {h} never saw barrier {} from {from}",
                self.barriers
            );
        }
    }

    /// Runs the steps; returns, per step, each receiver with what it got.
    fn run(&mut self, script: &Script) -> Vec<Observed> {
        for a in &mut self.agents {
            a.poll();
            a.received.clear();
        }
        let mut obs: Vec<Observed> = script.steps.iter().map(|_| Observed::default()).collect();
        let mut before = self.counts();
        for (i, st) in script.steps.iter().enumerate() {
            self.agents[st.from].send(&st.frame);
            self.barrier(st.from);
            let after = self.counts();
            // The barrier itself went out of the HOSTS - 1 other ports.
            obs[i].forwarded = after.tx as i64 - before.tx as i64 - (HOSTS as i64 - 1);
            for (k, n) in &after.drops {
                let d = n - before.drops.get(k).copied().unwrap_or(0);
                if d > 0 {
                    obs[i].drops.push(k.clone());
                }
            }
            before = after;
        }
        // Anything sent back to a sender arrives before these.
        self.barrier(A);
        self.barrier(B);
        for (h, a) in self.agents.iter_mut().enumerate() {
            a.poll();
            for f in &a.received {
                if contains(f, b"VSDBAR") {
                    continue;
                }
                let id = script.steps.iter().position(|st| match &st.marker {
                    Some(m) => contains(f, m),
                    None => is_same_or_padded(f, &st.frame),
                });
                match id {
                    Some(i) => obs[i]
                        .rx
                        .entry(h)
                        .or_default()
                        .push(describe(f, &script.steps[i].frame)),
                    None if f.len() >= 12 && f[6..9] == [0x02, 0xd1, 0xff] => {
                        panic!("{}: host {h} got an unknown frame {}", self.kind, hex(f))
                    }
                    None => {}
                }
            }
        }
        obs
    }
}

fn is_same_or_padded(got: &[u8], sent: &[u8]) -> bool {
    got == sent
        || (got.len() == 60 && got.starts_with(sent) && got[sent.len()..].iter().all(|b| *b == 0))
}

/// How a received copy relates to the frame sent.
fn describe(got: &[u8], sent: &[u8]) -> String {
    if got == sent {
        "same".into()
    } else if is_same_or_padded(got, sent) {
        format!("padded {}->{}", sent.len(), got.len())
    } else {
        format!("CHANGED {}", hex(got))
    }
}

/// What became of one frame.
#[derive(Default, PartialEq, Debug)]
struct Observed {
    /// Receivers: host -> one description per copy.
    rx: BTreeMap<usize, Vec<String>>,
    /// Frames the switch sent out of its ports for it.
    forwarded: i64,
    /// vswitchd: drop reasons counted for it.
    drops: Vec<String>,
}

impl Observed {
    fn hosts(&self) -> String {
        self.rx.keys().map(|h| HOST_NAMES[*h]).collect()
    }

    /// "BCD" plus any copy that is not byte-identical or duplicated.
    fn summary(&self) -> String {
        let mut s = if self.rx.is_empty() {
            "-".to_string()
        } else {
            self.hosts()
        };
        for (h, copies) in &self.rx {
            if copies.len() != 1 || copies[0] != "same" {
                let _ = write!(s, " [{}: {}]", HOST_NAMES[*h], copies.join(", "));
            }
        }
        s
    }
}

/// Runs `script` on a kernel bridge and on vswitchd and compares.
fn differential(tag: &str, net: u8, script: fn() -> Script, title: &str) {
    require_root();
    let s = script();
    let kernel = {
        let mut f = Fabric::kernel(&names(tag));
        f.run(&s)
    };
    let vsw = {
        let mut f = Fabric::vswitchd(tag, net);
        f.run(&s)
    };
    let mut table = format!(
        "\n== {title}\n{:<3} {:<46} {:<6} {:<18} {:<32} {}\n",
        "#",
        "sender: frame (length)",
        "expect",
        "kernel rx (fwd)",
        "vswitchd rx (fwd, drop reason)",
        "agree"
    );
    let mut bad = Vec::new();
    let mut notes = String::new();
    for (i, st) in s.steps.iter().enumerate() {
        let (k, v) = (&kernel[i], &vsw[i]);
        let same_rx = k.rx == v.rx;
        let same_fwd = k.forwarded == v.forwarded;
        let expected = k.hosts() == st.expect && v.hosts() == st.expect;
        let agree = same_rx && (same_fwd || st.fwd_differs.is_some());
        let vs = if v.drops.is_empty() {
            format!("{} ({})", v.summary(), v.forwarded)
        } else {
            format!("{} ({}, {})", v.summary(), v.forwarded, v.drops.join(","))
        };
        let _ = writeln!(
            table,
            "{:<3} {:<46} {:<6} {:<18} {:<32} {}",
            i,
            format!("{}: {} ({})", HOST_NAMES[st.from], st.what, st.frame.len()),
            if st.expect.is_empty() { "-" } else { st.expect },
            format!("{} ({})", k.summary(), k.forwarded),
            vs,
            match (agree, expected) {
                (true, true) if !same_fwd => "yes*",
                (true, true) => "yes",
                (true, false) => "yes, not as expected",
                _ => "NO",
            }
        );
        if let (false, Some(why)) = (same_fwd, st.fwd_differs) {
            let _ = writeln!(notes, "    * step {i}: {why}");
        }
        if !agree || !expected {
            bad.push(i);
        }
    }
    table.push_str(&notes);
    eprintln!("{table}");
    assert!(
        bad.is_empty(),
        "kernel bridge and vswitchd differ (or differ from the rules) at steps {bad:?}:{table}"
    );
}

#[test]
fn learning_and_moves() {
    differential("dfa", 40, learning, "(a) learning and MAC moves");
}

#[test]
fn broadcast_and_multicast_flood() {
    differential(
        "dfb",
        41,
        flooding,
        "(b) broadcast, multicast, unknown unicast",
    );
}

#[test]
fn unicast_to_the_ingress_port_is_dropped() {
    differential("dfc", 42, same_port, "(c) unicast to the ingress port");
}

#[test]
fn link_local_groups() {
    differential("dfd", 43, link_local, "(d) link-local 01:80:c2:00:00:0X");
}

#[test]
fn header_only_and_truncated_frames() {
    differential(
        "dfe",
        44,
        short_frames,
        "(e) header-only, truncated, MTU-sized frames",
    );
}

#[test]
fn tags_pass_through_untouched() {
    differential("dff", 45, tags, "(f) VLAN tags on a VLAN-unaware switch");
}

#[test]
fn invalid_source_addresses_are_dropped() {
    differential("dfg", 46, bad_sources, "(g) invalid source addresses");
}
