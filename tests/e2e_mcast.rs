//! Differential end-to-end test of IGMP/MLD snooping: the same scenario —
//! crafted reports, leaves, queries and marked multicast data, and hosts
//! joining with `ip addr add GROUP dev X autojoin` — runs on a kernel
//! bridge (`mcast_snooping 1`, shortened timers) and on vswitchd (the same
//! timers), and "which hosts receive each frame" must be the same on both
//! and what the bridge's rules (br_multicast.c, br_input.c) say.
//!
//! Scenarios: no querier; an external querier host (IGMPv2 and MLDv1
//! queries, IGMPv2/v3 and MLDv1/v2 reports, registered / unregistered /
//! link-local / same-MAC groups, non-IP L2 multicast, a leave with and then
//! without the querier's group-specific query, bad checksums, a host that
//! autojoins); the switch's own querier (fast leave, a static router port,
//! leave then traffic, membership timeout); the switch's IGMPv3 querier
//! with real host stacks joining, answering queries and leaving; the
//! switch's IGMPv2 querier with hosts forced to IGMPv2 (and a static router
//! port); the switch's MLDv1 querier (the kernel bridge then needs an IPv6
//! address).
//! At the end of each, both MDBs must hold the same (group, port) pairs,
//! and vswitchd's router ports and querier state are checked.
//!
//! Run as root, one at a time: `flock /tmp/vswitch-e2e.lock cargo test
//! --test e2e_mcast -- --test-threads 1` (about 95 s).
//!
//! After every frame the sender floods a barrier and the test waits until
//! every other host saw it (no sleeps for forwarding); sleeps only let the
//! protocol timers of both switches run out, with margins of 0.5 s or more.

mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use support::agent::Agent;
use support::cmd::{names, require_root};
use support::frame::{BCAST, ETH_TEST, contains, frame, hex};
use support::net::{Netns, quiet_ipv6};
use support::switchd::{Lan, write_config};
use support::wait::{PATIENCE, wait_for};
use vswitch::wire::igmp::{fold, igmp_frame, mld_frame, sum16};

const HOSTS: usize = 4;
const HOST_NAMES: [char; HOSTS] = ['A', 'B', 'C', 'D'];
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

/// Timers and settings both switches get (milliseconds).
#[derive(Clone, Copy)]
struct Setup {
    querier: bool,
    query_interval: u64,
    response_interval: u64,
    membership_interval: u64,
    querier_interval: u64,
    last_member_interval: u64,
    /// The querier's IGMP version (2 or 3).
    igmp_version: u8,
    /// The kernel bridge gets an IPv6 link-local address (its MLD querier
    /// needs one; vswitchd's does not).
    bridge_ipv6: bool,
    /// Per host: fast leave, static router port.
    fast_leave: [bool; HOSTS],
    router_on: [bool; HOSTS],
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            querier: false,
            query_interval: 30_000,
            response_interval: 1_000,
            membership_interval: 60_000,
            querier_interval: 60_000,
            last_member_interval: 1_000,
            igmp_version: 2,
            bridge_ipv6: false,
            fast_leave: [false; HOSTS],
            router_on: [false; HOSTS],
        }
    }
}

/// One thing a scenario does.
enum Action {
    Send {
        from: usize,
        frame: Vec<u8>,
        marker: Option<Vec<u8>>,
        what: String,
        expect: &'static str,
    },
    /// Let protocol timers run (both switches).
    Sleep(u64, &'static str),
    /// `ip addr add GROUP/32 dev X autojoin` on a host (its stack reports).
    Join(usize, &'static str),
    /// `ip addr del GROUP/32 dev X` (its stack reports the leave).
    Part(usize, &'static str),
    /// Makes a host's stack speak IGMPv2 (`force_igmp_version 2`).
    IgmpV2(usize),
}

struct Script {
    scenario: u8,
    actions: Vec<Action>,
    n: u16,
}

fn host_mac(scenario: u8, h: usize) -> [u8; 6] {
    [0x02, 0x6d, 0x63, 0x00, scenario, 0xa + h as u8]
}

fn host_ip(h: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 77, 1 + h as u8)
}

fn host_ll(h: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa + h as u16)
}

impl Script {
    fn new(scenario: u8) -> Script {
        Script {
            scenario,
            actions: Vec::new(),
            n: 0,
        }
    }

    fn mac(&self, h: usize) -> [u8; 6] {
        host_mac(self.scenario, h)
    }

    fn marker(&mut self) -> Vec<u8> {
        self.n += 1;
        format!("VMC#{:02x}{:04x}#", self.scenario, self.n).into_bytes()
    }

    fn raw(&mut self, from: usize, frame: Vec<u8>, what: &str, expect: &'static str) {
        assert!(
            self.actions
                .iter()
                .all(|a| !matches!(a, Action::Send { frame: f, .. } if *f == frame)),
            "duplicate frame: {what}"
        );
        self.actions.push(Action::Send {
            from,
            frame,
            marker: None,
            what: what.into(),
            expect,
        });
    }

    /// Marked IP data to `group` (UDP-less: the switches do not read it).
    fn data(&mut self, from: usize, group: &str, expect: &'static str) {
        let m = self.marker();
        let g: IpAddr = group.parse().unwrap();
        let f = match g {
            IpAddr::V4(g) => ipv4_data(self.mac(from), host_ip(from), g, &m),
            IpAddr::V6(g) => ipv6_data(self.mac(from), host_ll(from), g, &m),
        };
        self.actions.push(Action::Send {
            from,
            frame: f,
            marker: Some(m),
            what: format!("data to {group}"),
            expect,
        });
    }

    /// Marked non-IP frame to a multicast MAC.
    fn l2(&mut self, from: usize, dst: [u8; 6], expect: &'static str) {
        let m = self.marker();
        let f = frame(dst, self.mac(from), &[], ETH_TEST, &m);
        self.actions.push(Action::Send {
            from,
            frame: f,
            marker: Some(m),
            what: format!("non-IP to {}", hex(&dst)),
            expect,
        });
    }

    fn igmp(&mut self, from: usize, dst: &str, msg: Vec<u8>, what: &str, expect: &'static str) {
        let f = igmp_frame(self.mac(from), host_ip(from), dst.parse().unwrap(), &msg);
        self.raw(from, f, what, expect);
    }

    fn mld(&mut self, from: usize, dst: &str, msg: Vec<u8>, what: &str, expect: &'static str) {
        let f = mld_frame(self.mac(from), host_ll(from), dst.parse().unwrap(), &msg);
        self.raw(from, f, what, expect);
    }

    fn report2(&mut self, from: usize, g: &str, expect: &'static str) {
        self.igmp(
            from,
            g,
            igmp_msg(0x16, 0, g),
            &format!("IGMPv2 report {g}"),
            expect,
        );
    }

    fn report3(&mut self, from: usize, g: &str, expect: &'static str) {
        let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        m.extend_from_slice(&g.parse::<Ipv4Addr>().unwrap().octets());
        self.igmp(
            from,
            "224.0.0.22",
            m,
            &format!("IGMPv3 report TO_EX {g}"),
            expect,
        );
    }

    fn leave(&mut self, from: usize, g: &str, expect: &'static str) {
        self.igmp(
            from,
            "224.0.0.2",
            igmp_msg(0x17, 0, g),
            &format!("IGMPv2 leave {g}"),
            expect,
        );
    }

    fn mld1_report(&mut self, from: usize, g: &str, expect: &'static str) {
        self.mld(
            from,
            g,
            mld_msg(131, 0, g),
            &format!("MLDv1 report {g}"),
            expect,
        );
    }

    fn mld2_report(&mut self, from: usize, g: &str, expect: &'static str) {
        let mut m = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        m.extend_from_slice(&g.parse::<Ipv6Addr>().unwrap().octets());
        self.mld(
            from,
            "ff02::16",
            m,
            &format!("MLDv2 report TO_EX {g}"),
            expect,
        );
    }

    fn sleep(&mut self, ms: u64, why: &'static str) {
        self.actions.push(Action::Sleep(ms, why));
    }
}

fn igmp_msg(t: u8, code: u8, g: &str) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(&g.parse::<Ipv4Addr>().unwrap().octets());
    m
}

fn mld_msg(t: u8, delay_ms: u16, g: &str) -> Vec<u8> {
    let mut m = vec![t, 0, 0, 0];
    m.extend_from_slice(&delay_ms.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&g.parse::<Ipv6Addr>().unwrap().octets());
    m
}

fn ipv4_data(mac: [u8; 6], src: Ipv4Addr, g: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let o = g.octets();
    let dst = [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]];
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 8, 17, 0, 0];
    let total = (20 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&o);
    let c = fold(sum16(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(payload);
    frame(dst, mac, &[], 0x0800, &ip)
}

fn ipv6_data(mac: [u8; 6], src: Ipv6Addr, g: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let o = g.octets();
    let dst = [0x33, 0x33, o[12], o[13], o[14], o[15]];
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[17, 8]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&o);
    ip.extend_from_slice(payload);
    frame(dst, mac, &[], 0x86dd, &ip)
}

/// A switch (kernel bridge or vswitchd) with four hosts.
struct Fabric {
    kind: &'static str,
    agents: Vec<Agent>,
    barriers: u32,
    /// Kernel: the bridge's namespace.
    bridge: Option<Netns>,
    /// Host namespaces and their devices.
    hosts: Vec<(String, String)>,
    lan: Option<Lan>,
    _ns: Vec<Netns>,
    _dir: Option<tempfile::TempDir>,
}

fn cs(ms: u64) -> String {
    (ms / 10).to_string()
}

impl Fabric {
    fn kernel(base: &str, s: &Setup) -> Fabric {
        let sw = Netns::new(&format!("{base}sw"));
        quiet_ipv6(&sw);
        for k in ["iptables", "ip6tables", "arptables"] {
            sw.at()
                .sysctl(&format!("net.bridge.bridge-nf-call-{k}"), "0");
        }
        let (qi, qri, mi, qui, lmi) = (
            cs(s.query_interval),
            cs(s.response_interval),
            cs(s.membership_interval),
            cs(s.querier_interval),
            cs(s.last_member_interval),
        );
        let sqi = cs(s.query_interval / 4);
        let igmp_version = s.igmp_version.to_string();
        sw.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "ageing_time",
            "30000",
            "mcast_snooping",
            "1",
            "mcast_query_interval",
            &qi,
            "mcast_query_response_interval",
            &qri,
            "mcast_membership_interval",
            &mi,
            "mcast_querier_interval",
            &qui,
            "mcast_last_member_interval",
            &lmi,
            "mcast_last_member_count",
            "2",
            "mcast_startup_query_interval",
            &sqi,
            "mcast_igmp_version",
            &igmp_version,
        ]);
        if s.bridge_ipv6 {
            sw.at().sysctl("net.ipv6.conf.br0.accept_dad", "0");
            sw.at().sysctl("net.ipv6.conf.br0.disable_ipv6", "0");
        }
        if s.querier {
            // Apart, after the intervals: the kernel starts the querier's
            // delay (frames still flood) with the response interval in
            // force when the querier is turned on, and `ip link add`
            // applies mcast_querier before the intervals.
            sw.ip(&["link", "set", "br0", "type", "bridge", "mcast_querier", "1"]);
        }
        sw.ip(&["link", "set", "br0", "up"]);
        let mut ns = Vec::new();
        let mut hosts = Vec::new();
        for i in 0..HOSTS {
            let n = Netns::new(&format!("{base}k{i}"));
            quiet_ipv6(&n);
            let (vr, vn) = (format!("sw{i}"), format!("{base}h{i}"));
            sw.ip(&[
                "link", "add", &vr, "type", "veth", "peer", "name", &vn, "netns", &n.name,
            ]);
            sw.ip(&["link", "set", &vr, "master", "br0"]);
            if s.fast_leave[i] {
                sw.at()
                    .ok(&["bridge", "link", "set", "dev", &vr, "fastleave", "on"]);
            }
            if s.router_on[i] {
                sw.at()
                    .ok(&["bridge", "link", "set", "dev", &vr, "mcast_router", "2"]);
            }
            sw.ip(&["link", "set", &vr, "up"]);
            n.ip(&["link", "set", &vn, "up"]);
            hosts.push((n.name.clone(), vn.clone()));
            ns.push(n);
        }
        for i in 0..HOSTS {
            let fwd = wait_for(PATIENCE, || {
                let o = sw.exec(&["cat", &format!("/sys/class/net/sw{i}/brport/state")]);
                String::from_utf8_lossy(&o.stdout).trim() == "3"
            });
            assert!(fwd.is_some(), "bridge port sw{i} never forwarding");
        }
        // The bridge's own IGMPv3 reports for 224.0.0.106 (two, about a
        // second apart) go out first.
        let _ = wait_for(Duration::from_secs(5), || {
            let o = sw.exec(&["cat", "/sys/class/net/br0/statistics/tx_packets"]);
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                >= 2
        });
        let agents = (0..HOSTS)
            .map(|i| Agent::start(&ns[i], &hosts[i].1))
            .collect();
        Fabric {
            kind: "kernel",
            agents,
            barriers: 0,
            bridge: Some(sw),
            hosts,
            lan: None,
            _ns: ns,
            _dir: None,
        }
    }

    fn vswitchd(tag: &str, net: u8, s: &Setup) -> Fabric {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vswitchd.toml");
        let secs = |ms: u64| format!("{}", ms as f64 / 1000.0);
        let s = *s;
        let lan = Lan::with_args(tag, HOSTS, net, |taps| {
            let mut text = format!(
                "[switch]\nageing-time = 300\nmcast-snooping = true\nmcast-querier = {}\n\
                 mcast-query-interval = {}\nmcast-query-response-interval = {}\n\
                 mcast-membership-interval = {}\nmcast-querier-interval = {}\n\
                 mcast-last-member-interval = {}\nmcast-last-member-count = 2\n\
                 mcast-igmp-version = {}\n",
                s.querier,
                secs(s.query_interval),
                secs(s.response_interval),
                secs(s.membership_interval),
                secs(s.querier_interval),
                secs(s.last_member_interval),
                s.igmp_version,
            );
            for (i, t) in taps.iter().enumerate() {
                let _ = write!(
                    text,
                    "\n[[port]]\nname = \"{t}\"\nmcast-fast-leave = {}\nmcast-router = \"{}\"\n",
                    s.fast_leave[i],
                    if s.router_on[i] { "on" } else { "auto" }
                );
            }
            write_config(&path, &text);
            vec!["--config".into(), path.to_str().unwrap().into()]
        });
        let agents = (0..HOSTS)
            .map(|i| Agent::start(&lan.ns[i], &lan.taps[i]))
            .collect();
        let hosts = (0..HOSTS)
            .map(|i| (lan.ns[i].name.clone(), lan.taps[i].clone()))
            .collect();
        Fabric {
            kind: "vswitchd",
            agents,
            barriers: 0,
            bridge: None,
            hosts,
            lan: Some(lan),
            _ns: Vec::new(),
            _dir: Some(dir),
        }
    }

    /// Floods a barrier from `from` and waits until every other host saw it.
    fn barrier(&mut self, from: usize) {
        self.barriers += 1;
        let m = format!("VMCBAR{:08x}", self.barriers).into_bytes();
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

    /// The groups each host's port is a member of: (group, host).
    fn mdb(&self) -> Vec<(String, usize)> {
        let mut v = Vec::new();
        if let Some(sw) = &self.bridge {
            let o = sw.exec(&["bridge", "-j", "mdb", "show"]);
            let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            for dev in j.as_array().into_iter().flatten() {
                for e in dev["mdb"].as_array().into_iter().flatten() {
                    let port = e["port"].as_str().unwrap_or("");
                    if let Some(i) = port.strip_prefix("sw").and_then(|n| n.parse().ok()) {
                        v.push((e["grp"].as_str().unwrap_or("").to_string(), i));
                    }
                }
            }
        }
        if let Some(lan) = &self.lan {
            let j = lan.sw.ctl_json(&["mdb", "show"]);
            for e in j.as_array().into_iter().flatten() {
                let port = e["port"].as_str().unwrap_or("");
                if let Some(i) = lan.taps.iter().position(|t| t == port) {
                    v.push((e["group"].as_str().unwrap_or("").to_string(), i));
                }
            }
        }
        // vswitchd's TAPs start in the root namespace with IPv6 on and
        // report their solicited-node groups before they move: not part
        // of any scenario.
        v.retain(|(g, _)| !g.starts_with("ff02::1:ff"));
        v.sort();
        v
    }

    /// Runs the actions; returns, per action, who received it (or "" for
    /// actions that send nothing), and the MDB at the end.
    fn run(&mut self, script: &Script) -> (Vec<String>, Vec<(String, usize)>) {
        for a in &mut self.agents {
            a.poll();
            a.received.clear();
        }
        for act in &script.actions {
            match act {
                Action::Send { from, frame, .. } => {
                    self.agents[*from].send(frame);
                    self.barrier(*from);
                }
                Action::Sleep(ms, _) => std::thread::sleep(Duration::from_millis(*ms)),
                Action::Join(h, g) => {
                    let (ns, dev) = &self.hosts[*h];
                    let addr = format!("{g}/32");
                    support::cmd::ok(&[
                        "ip", "netns", "exec", ns, "ip", "addr", "add", &addr, "dev", dev,
                        "autojoin",
                    ]);
                    // Its report goes out at once; let it cross.
                    std::thread::sleep(Duration::from_millis(500));
                    self.barrier(*h);
                }
                Action::IgmpV2(h) => {
                    let (ns, dev) = &self.hosts[*h];
                    for conf in ["all", dev.as_str()] {
                        let key = format!("net.ipv4.conf.{conf}.force_igmp_version=2");
                        support::cmd::ok(&["ip", "netns", "exec", ns, "sysctl", "-q", "-w", &key]);
                    }
                }
                Action::Part(h, g) => {
                    let (ns, dev) = &self.hosts[*h];
                    let addr = format!("{g}/32");
                    support::cmd::ok(&[
                        "ip", "netns", "exec", ns, "ip", "addr", "del", &addr, "dev", dev,
                    ]);
                    std::thread::sleep(Duration::from_millis(500));
                    self.barrier(*h);
                }
            }
        }
        self.barrier(A);
        self.barrier(B);
        let mut rx: Vec<String> = vec![String::new(); script.actions.len()];
        for (h, a) in self.agents.iter_mut().enumerate() {
            a.poll();
            for f in &a.received {
                if contains(f, b"VMCBAR") {
                    continue;
                }
                let id = script.actions.iter().position(|act| match act {
                    Action::Send {
                        marker: Some(m), ..
                    } => contains(f, m),
                    Action::Send { frame, .. } => {
                        f == frame
                            || (f.len() == 60
                                && f.starts_with(frame)
                                && f[frame.len()..].iter().all(|b| *b == 0))
                    }
                    _ => false,
                });
                if let Some(i) = id
                    && !rx[i].contains(HOST_NAMES[h])
                {
                    rx[i].push(HOST_NAMES[h]);
                }
            }
        }
        for r in &mut rx {
            let mut c: Vec<char> = r.chars().collect();
            c.sort();
            *r = c.into_iter().collect();
        }
        (rx, self.mdb())
    }
}

/// vswitchd's router ports at the end, as (family, host), from
/// `vswitchctl -j mdb router`, and whether it counts a querier present per
/// family.
fn routers(f: &Fabric) -> (Vec<(String, usize)>, Vec<bool>) {
    let lan = f.lan.as_ref().expect("vswitchd fabric");
    let j = lan.sw.ctl_json(&["mdb", "router"]);
    let mut r: Vec<(String, usize)> = j["routers"]
        .as_array()
        .expect("routers")
        .iter()
        .map(|e| {
            let port = e["port"].as_str().unwrap();
            let h = lan.taps.iter().position(|t| t == port).expect("a tap");
            (e["family"].as_str().unwrap().to_string(), h)
        })
        .collect();
    r.sort();
    let present = j["queriers"]
        .as_array()
        .expect("queriers")
        .iter()
        .map(|q| q["present"].as_bool().unwrap())
        .collect();
    (r, present)
}

/// Runs `script` on a kernel bridge and on vswitchd and compares; checks
/// vswitchd's router ports (family, host) and querier presence at the end.
fn differential(
    tag: &str,
    net: u8,
    setup: Setup,
    script: fn() -> Script,
    title: &str,
    want_routers: &[(&str, usize)],
    want_present: [bool; 2],
) {
    require_root();
    let s = script();
    let (kernel, kmdb) = {
        let mut f = Fabric::kernel(&names(tag), &setup);
        if setup.querier {
            // Frames flood for a query response interval after the
            // querier starts.
            std::thread::sleep(Duration::from_millis(setup.response_interval + 500));
        }
        f.run(&s)
    };
    let (vsw, vmdb, vrouters) = {
        let mut f = Fabric::vswitchd(tag, net, &setup);
        if setup.querier {
            std::thread::sleep(Duration::from_millis(setup.response_interval + 500));
        }
        let (rx, mdb) = f.run(&s);
        (rx, mdb, routers(&f))
    };
    let mut table = format!(
        "\n== {title}\n{:<3} {:<40} {:<7} {:<7} {:<8} {}\n",
        "#", "action", "expect", "kernel", "vswitchd", "agree"
    );
    let mut bad = Vec::new();
    for (i, act) in s.actions.iter().enumerate() {
        let (what, expect) = match act {
            Action::Send {
                from, what, expect, ..
            } => (format!("{}: {what}", HOST_NAMES[*from]), *expect),
            Action::Sleep(ms, why) => (format!("sleep {ms} ms: {why}"), ""),
            Action::Join(h, g) => (format!("{} joins {g} (autojoin)", HOST_NAMES[*h]), ""),
            Action::Part(h, g) => (format!("{} leaves {g} (addr del)", HOST_NAMES[*h]), ""),
            Action::IgmpV2(h) => (format!("{} speaks IGMPv2", HOST_NAMES[*h]), ""),
        };
        let is_send = matches!(act, Action::Send { .. });
        let agree = kernel[i] == vsw[i];
        let expected = !is_send || (kernel[i] == expect && vsw[i] == expect);
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        let _ = writeln!(
            table,
            "{:<3} {:<40} {:<7} {:<7} {:<8} {}",
            i,
            what,
            if is_send { dash(expect) } else { String::new() },
            if is_send {
                dash(&kernel[i])
            } else {
                String::new()
            },
            if is_send {
                dash(&vsw[i])
            } else {
                String::new()
            },
            match (agree, expected) {
                (true, true) => "yes",
                (true, false) => "yes, not as expected",
                _ => "NO",
            }
        );
        if !agree || !expected {
            bad.push(i);
        }
    }
    let _ = writeln!(
        table,
        "MDB at the end: kernel {kmdb:?}\n                vswitchd {vmdb:?}"
    );
    eprintln!("{table}");
    assert!(
        bad.is_empty(),
        "kernel bridge and vswitchd differ (or differ from the rules) at {bad:?}:{table}"
    );
    assert_eq!(kmdb, vmdb, "the MDBs differ:{table}");
    let mut want: Vec<(String, usize)> = want_routers
        .iter()
        .map(|(f, h)| (f.to_string(), *h))
        .collect();
    want.sort();
    assert_eq!(vrouters.0, want, "vswitchd's router ports");
    assert_eq!(
        vrouters.1, want_present,
        "vswitchd's querier present (v4, v6)"
    );
}

const G1: &str = "239.1.1.1";
const G2: &str = "239.1.1.2";
/// Shares G1's MAC (01:00:5e:01:01:01).
const G1_TWIN: &str = "239.129.1.1";

/// No querier anywhere: everything floods; malformed IGMP/MLD is dropped.
fn no_querier() -> Script {
    let mut s = Script::new(1);
    s.report2(B, G1, "ACD");
    s.data(A, G1, "BCD");
    s.data(A, "239.9.9.9", "BCD");
    // The frame builder fills the checksum in: spoil the group after it.
    let mut f = igmp_frame(
        s.mac(C),
        host_ip(C),
        G2.parse().unwrap(),
        &igmp_msg(0x16, 0, G2),
    );
    let n = f.len();
    f[n - 1] ^= 0xff;
    s.raw(C, f, "IGMPv2 report, bad checksum", "");
    s.mld1_report(B, "ff05::1:3", "ACD");
    s.data(A, "ff05::1:3", "BCD");
    s.report3(C, G2, "ABD");
    s.leave(C, G1, "ABD");
    s.data(D, G1, "ABC");
    s
}

/// Host A is the querier (IGMPv2 and MLDv1 general queries).
fn external_querier() -> Script {
    let mut s = Script::new(2);
    s.igmp(
        A,
        "224.0.0.1",
        igmp_msg(0x11, 10, "0.0.0.0"),
        "IGMPv2 general query (1 s)",
        "BCD",
    );
    s.mld(
        A,
        "ff02::1",
        mld_msg(130, 1000, "::"),
        "MLDv1 general query (1 s)",
        "BCD",
    );
    s.data(D, "239.9.9.9", "ABC");
    s.sleep(1500, "the query's response time: flooding stops");
    s.report2(B, G1, "A");
    s.report3(C, G2, "ABD");
    s.data(D, G1, "AB");
    s.data(D, G2, "AC");
    s.data(D, "239.9.9.9", "A");
    s.data(A, "239.9.9.9", "");
    s.data(D, "224.0.0.251", "ABC");
    s.data(D, G1_TWIN, "A");
    s.l2(D, [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01], "ABC");
    s.mld1_report(B, "ff05::1:3", "A");
    s.mld2_report(C, "ff05::1:4", "ABD");
    s.data(D, "ff05::1:3", "AB");
    s.data(D, "ff05::1:4", "AC");
    s.data(D, "ff02::fb", "A");
    s.data(D, "ff02::1", "ABC");
    s.leave(B, G1, "ACD");
    s.data(D, G1, "AB");
    s.igmp(
        A,
        G1,
        igmp_msg(0x11, 2, G1),
        "IGMPv2 group query G1 (0.2 s)",
        "BCD",
    );
    s.sleep(1000, "2 x 0.2 s: B's membership runs out");
    s.data(D, G1, "A");
    let mut bad = mld_msg(131, 0, "ff05::1:5");
    bad[4] = 1;
    let mut f = mld_frame(s.mac(C), host_ll(C), "ff05::1:5".parse().unwrap(), &bad);
    f[14 + 48 + 4] = 0; // after the checksum was computed
    s.raw(C, f, "MLDv1 report, bad checksum", "");
    s.actions.push(Action::Join(D, "239.1.2.3"));
    s.data(A, "239.1.2.3", "D");
    s
}

/// The switch is the querier; C has fast leave, D is a static router port.
fn own_querier() -> Script {
    let mut s = Script::new(3);
    s.report2(B, G1, "D");
    s.report2(C, G2, "D");
    s.data(A, G1, "BD");
    s.data(A, "239.9.9.9", "D");
    s.data(A, "224.0.0.251", "BCD");
    s.leave(C, G2, "ABD");
    s.data(A, G2, "D");
    s.leave(B, G1, "ACD");
    s.data(A, G1, "BD");
    s.sleep(1500, "the switch's group query: 2 x 0.5 s");
    s.data(A, G1, "D");
    s.report2(B, "239.1.1.3", "D");
    s.data(A, "239.1.1.3", "BD");
    s.sleep(4500, "the membership interval (4 s)");
    s.data(A, "239.1.1.3", "D");
    s
}

fn own_querier_setup() -> Setup {
    Setup {
        querier: true,
        membership_interval: 4_000,
        last_member_interval: 500,
        fast_leave: [false, false, true, false],
        router_on: [false, false, false, true],
        ..Setup::default()
    }
}

/// The switch queries with IGMPv3; real host stacks join, answer the
/// queries (so memberships outlive the membership interval) and leave.
fn own_querier_v3_hosts() -> Script {
    let mut s = Script::new(4);
    s.actions.push(Action::Join(B, "239.3.3.3"));
    s.actions.push(Action::Join(C, "239.3.3.4"));
    s.data(A, "239.3.3.3", "B");
    s.data(D, "239.3.3.4", "C");
    s.data(A, "239.9.9.9", "");
    s.sleep(
        6000,
        "past the membership interval (4 s): hosts answered queries",
    );
    s.data(A, "239.3.3.3", "B");
    s.data(A, "239.3.3.4", "C");
    s.actions.push(Action::Part(B, "239.3.3.3"));
    s.sleep(2500, "the last member time (2 x 1 s) after B's leave");
    s.data(A, "239.3.3.3", "");
    s.data(A, "239.3.3.4", "C");
    s
}

/// The switch's MLDv1 querier: MLD reports and dones, IPv6 data.
fn own_querier_mld() -> Script {
    let mut s = Script::new(5);
    s.mld1_report(B, "ff05::1:3", "");
    s.data(A, "ff05::1:3", "B");
    s.data(A, "ff05::9", "");
    s.data(A, "ff02::fb", "");
    s.data(A, "ff02::1", "BCD");
    s.mld2_report(C, "ff05::1:4", "ABD");
    s.data(D, "ff05::1:4", "C");
    s.mld(
        B,
        "ff02::2",
        mld_msg(132, 0, "ff05::1:3"),
        "MLDv1 done ff05::1:3",
        "ACD",
    );
    s.data(A, "ff05::1:3", "B");
    s.sleep(2500, "the last member time (2 x 1 s)");
    s.data(A, "ff05::1:3", "");
    s.data(A, "ff05::1:4", "C");
    s
}

#[test]
fn switch_mld_querier() {
    differential(
        "vmc",
        75,
        Setup {
            querier: true,
            bridge_ipv6: true,
            ..Setup::default()
        },
        own_querier_mld,
        "(5) the switch's MLDv1 querier",
        &[],
        [true, true],
    );
}

/// The switch queries with IGMPv2; real host stacks forced to IGMPv2
/// join (v2 reports: to router ports only), answer and leave (v2 leaves).
fn own_querier_v2_hosts() -> Script {
    let mut s = Script::new(6);
    s.actions.push(Action::IgmpV2(B));
    s.actions.push(Action::IgmpV2(C));
    s.actions.push(Action::Join(B, "239.4.4.4"));
    s.actions.push(Action::Join(C, "239.4.4.5"));
    s.data(A, "239.4.4.4", "BD");
    s.data(A, "239.4.4.5", "CD");
    s.sleep(
        6000,
        "past the membership interval (4 s): hosts answered queries",
    );
    s.data(A, "239.4.4.4", "BD");
    s.actions.push(Action::Part(B, "239.4.4.4"));
    s.sleep(2500, "the last member time (2 x 1 s) after B's leave");
    s.data(A, "239.4.4.4", "D");
    s.data(A, "239.4.4.5", "CD");
    s
}

#[test]
fn switch_querier_v2_with_real_hosts() {
    differential(
        "vmc",
        76,
        Setup {
            querier: true,
            query_interval: 2_000,
            membership_interval: 4_000,
            router_on: [false, false, false, true],
            ..Setup::default()
        },
        own_querier_v2_hosts,
        "(6) the switch's IGMPv2 querier, IGMPv2 hosts, static router port D",
        &[("ipv4", D), ("ipv6", D)],
        [true, true],
    );
}

#[test]
fn switch_querier_v3_with_real_hosts() {
    differential(
        "vmc",
        74,
        Setup {
            querier: true,
            igmp_version: 3,
            query_interval: 2_000,
            membership_interval: 4_000,
            ..Setup::default()
        },
        own_querier_v3_hosts,
        "(4) the switch's IGMPv3 querier, hosts joining with autojoin",
        &[],
        [true, true],
    );
}

#[test]
fn no_querier_floods() {
    differential(
        "vmc",
        71,
        Setup::default(),
        no_querier,
        "(1) no querier",
        &[],
        [false, false],
    );
}

#[test]
fn external_querier_host() {
    differential(
        "vmc",
        72,
        Setup::default(),
        external_querier,
        "(2) an external querier host",
        &[("ipv4", A), ("ipv6", A)],
        [true, true],
    );
}

#[test]
fn switch_is_the_querier() {
    differential(
        "vmc",
        73,
        own_querier_setup(),
        own_querier,
        "(3) the switch's own querier, fast leave, static router port",
        &[("ipv4", D), ("ipv6", D)],
        [true, true],
    );
}
