//! End-to-end: BGP EVPN between vswitchd (through GoBGP) and FRR.
//!
//! Host A is FRR's reference VTEP: a namespace with a kernel bridge
//! `br100`, a kernel `vxlan` device `vx100` (VNI 100, dstport 4789,
//! `nolearning`: its remote MACs come from BGP only), a workload namespace
//! behind a veth, and FRR's zebra and bgpd (`advertise-all-vni`), each
//! with its own config, pid and socket paths in a private directory.
//! Host B is vswitchd (root namespace) with a TAP workload and a `vxlan:`
//! port with `evpn = true`, and gobgpd, which vswitchd drives over gRPC.
//! A and B are iBGP peers (AS 65000) for L2VPN EVPN over a veth underlay
//! (a bridge in its own namespace). The configurations are the ones
//! docs/multihost.md shows.
//!
//! Skipped (passing, with a message) when gobgpd or FRR is not installed;
//! scripts/install-deps.sh installs both, so CI runs it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cmd::{Bg, names, require_root};
use support::net::{Netns, Underlay, free_port, quiet_ipv6};
use support::state::{scrape, wait_ports_up};
use support::switchd::{Switchd, write_config};
use support::wait::{PATIENCE, wait_for};

const GOBGPD: &str = "/usr/bin/gobgpd";
const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";
const ASN: u32 = 65000;

/// Whether GoBGP and FRR are here; says why not.
fn tools_present() -> bool {
    for t in [GOBGPD, ZEBRA, BGPD, "/usr/bin/vtysh"] {
        if !Path::new(t).exists() {
            eprintln!("SKIP e2e_evpn: {t} is missing (apt-get install gobgpd frr)");
            return false;
        }
    }
    true
}

/// FRR's zebra and bgpd in a namespace, with files in their own
/// directory (owned by the `frr` user they drop to); stopped on drop
/// (bgpd first).
struct Frr {
    // Fields drop in order: bgpd, zebra, then their directory.
    bgpd: Option<Bg>,
    _zebra: Bg,
    dir: tempfile::TempDir,
    ns_name: String,
}

impl Frr {
    /// `bgpd.conf` is the BGP configuration (docs/multihost.md).
    fn start(ns: &Netns, bgpd_conf: &str) -> Frr {
        let dir = tempfile::Builder::new().prefix("ev-frr").tempdir().unwrap();
        let d = dir.path();
        support::cmd::ok(&["chown", "frr:frr", d.to_str().unwrap()]);
        std::fs::write(d.join("zebra.conf"), "hostname a\n").unwrap();
        std::fs::write(d.join("bgpd.conf"), bgpd_conf).unwrap();
        let p = |f: &str| d.join(f).to_str().unwrap().to_string();
        let daemon = |bin: &str, name: &str| {
            let (pid, conf, log) = (
                p(&format!("{name}.pid")),
                p(&format!("{name}.conf")),
                format!("file:{}", p(&format!("{name}.log"))),
            );
            let zserv = p("zserv.api");
            let vty = p("");
            ns.spawn(&[
                bin,
                "-u",
                "frr",
                "-g",
                "frr",
                "-i",
                &pid,
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "-f",
                &conf,
                "-P",
                "0",
                "--log",
                &log,
            ])
        };
        let zebra = daemon(ZEBRA, "zebra");
        assert!(
            wait_for(Duration::from_secs(10), || d.join("zserv.api").exists()).is_some(),
            "zebra did not start"
        );
        let bgpd = daemon(BGPD, "bgpd");
        let f = Frr {
            ns_name: ns.name.clone(),
            dir,
            _zebra: zebra,
            bgpd: Some(bgpd),
        };
        assert!(
            wait_for(Duration::from_secs(10), || f
                .dir
                .path()
                .join("bgpd.vty")
                .exists())
            .is_some(),
            "bgpd did not start: {}",
            f.logs()
        );
        f
    }

    /// Stops bgpd (its BGP sessions close).
    fn stop_bgpd(&mut self) {
        if let Some(mut b) = self.bgpd.take() {
            b.stop(Duration::from_secs(5));
        }
    }

    /// `vtysh -c CMD` against these daemons.
    fn vtysh(&self, cmd: &str) -> String {
        let vty = self.dir.path().to_str().unwrap().to_string();
        let o = support::cmd::run(&[
            "ip",
            "netns",
            "exec",
            &self.ns_name,
            "vtysh",
            "--vty_socket",
            &vty,
            "-c",
            cmd,
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let r = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- bgpd.log\n{}\n--- zebra.log\n{}",
            r("bgpd.log"),
            r("zebra.log")
        )
    }
}

/// gobgpd in the root namespace (it talks to vswitchd on loopback),
/// configured from a TOML file; its log in the same directory.
struct Gobgp {
    dir: tempfile::TempDir,
    api: String,
    proc: Option<Bg>,
}

impl Gobgp {
    fn start(conf: &str) -> Gobgp {
        let dir = tempfile::Builder::new()
            .prefix("ev-gobgp")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("gobgpd.toml"), conf).unwrap();
        let mut g = Gobgp {
            api: format!("127.0.0.1:{}", free_port()),
            dir,
            proc: None,
        };
        g.restart();
        g
    }

    /// (Re)starts the daemon (after `stop`).
    fn restart(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("gobgpd.log"))
            .unwrap();
        let child = Command::new(GOBGPD)
            .arg("-f")
            .arg(d.join("gobgpd.toml"))
            .args(["--api-hosts", &self.api, "-l", "info"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start gobgpd");
        self.proc = Some(Bg::new(child));
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(5));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default()
    }
}

/// FRR's bgpd.conf for a VTEP `me` peering with `peers` (all iBGP,
/// L2VPN EVPN only, short timers for the test).
fn frr_conf(me: &str, peers: &[&str], reflect: bool) -> String {
    let mut c = format!(
        "hostname a\nrouter bgp {ASN}\n bgp router-id {me}\n no bgp default ipv4-unicast\n timers bgp 3 9\n"
    );
    for p in peers {
        c.push_str(&format!(
            " neighbor {p} remote-as {ASN}\n neighbor {p} timers connect 1\n"
        ));
    }
    c.push_str(" address-family l2vpn evpn\n");
    for p in peers {
        c.push_str(&format!("  neighbor {p} activate\n"));
        if reflect {
            c.push_str(&format!("  neighbor {p} route-reflector-client\n"));
        }
    }
    c.push_str("  advertise-all-vni\n exit-address-family\n");
    c
}

/// gobgpd's config for router `me` peering with `peers` (it connects out:
/// `port = -1`, it listens on no BGP port of the root namespace).
fn gobgp_conf(me: &str, peers: &[&str]) -> String {
    let mut c = format!("[global.config]\n  as = {ASN}\n  router-id = \"{me}\"\n  port = -1\n");
    for p in peers {
        c.push_str(&format!(
            "[[neighbors]]
  [neighbors.config]
    neighbor-address = \"{p}\"
    peer-as = {ASN}
  [neighbors.transport.config]
    local-address = \"{me}\"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"l2vpn-evpn\"
"
        ));
    }
    c
}

/// Host A: FRR's VTEP `ip` with bridge, nolearning vxlan and a workload
/// namespace `w` with `wl_ip` on `wl`.
struct FrrHost {
    // Fields drop in order: the daemons stop before their namespace goes.
    frr: Frr,
    k: Netns,
    w: Netns,
}

impl FrrHost {
    /// With `reflect`, FRR is also the route reflector of its `peers`.
    fn new(
        base: &str,
        under: &mut Underlay,
        ip: &str,
        wl_ip: &str,
        peers: &[&str],
        reflect: bool,
    ) -> FrrHost {
        FrrHost::new_with(base, under, ip, wl_ip, peers, reflect, "")
    }

    /// [`FrrHost::new`], with `vni_conf` added to bgpd's L2VPN EVPN
    /// address family (a `vni 100` block, say).
    fn new_with(
        base: &str,
        under: &mut Underlay,
        ip: &str,
        wl_ip: &str,
        peers: &[&str],
        reflect: bool,
        vni_conf: &str,
    ) -> FrrHost {
        let k = Netns::new(&format!("{base}a"));
        let w = Netns::new(&format!("{base}aw"));
        quiet_ipv6(&k);
        quiet_ipv6(&w);
        under.attach(&k, "eth0", ip);
        k.ip(&["link", "add", "br100", "type", "bridge"]);
        k.ip(&[
            "link",
            "add",
            "vx100",
            "type",
            "vxlan",
            "id",
            "100",
            "local",
            ip,
            "dstport",
            "4789",
            "nolearning",
        ]);
        k.ip(&["link", "set", "vx100", "master", "br100", "up"]);
        // The bridge learns nothing behind the tunnel either: remote MACs
        // are BGP's (zebra's extern_learn entries), as FRR's EVPN setups do.
        k.at()
            .ok(&["bridge", "link", "set", "dev", "vx100", "learning", "off"]);
        k.ip(&[
            "link", "add", "kw", "type", "veth", "peer", "name", "wl", "netns", &w.name,
        ]);
        k.ip(&["link", "set", "kw", "master", "br100", "up"]);
        k.ip(&["link", "set", "br100", "up"]);
        w.ip(&["link", "set", "wl", "mtu", "1450"]);
        w.ip(&["addr", "add", &format!("{wl_ip}/24"), "dev", "wl"]);
        w.ip(&["link", "set", "wl", "up"]);
        let conf = frr_conf(ip, peers, reflect).replace(
            "  advertise-all-vni\n",
            &format!("  advertise-all-vni\n{vni_conf}"),
        );
        let frr = Frr::start(&k, &conf);
        FrrHost { frr, k, w }
    }

    /// `bridge fdb show dev vx100`.
    fn vx_fdb(&self) -> String {
        self.k.at().ok(&["bridge", "fdb", "show", "dev", "vx100"])
    }
}

/// vswitchd's config: a TAP workload and the EVPN vxlan port.
fn switchd_conf(gobgp: &str, local: &str, tap: &str, netns: &str, ip: &str) -> String {
    format!(
        "[evpn]
gobgp = \"{gobgp}\"
asn = {ASN}
router-id = \"{local}\"

[[port]]
name = \"{tap}\"
netns = \"{netns}\"
addresses = [\"{ip}/24\"]
mtu = 1450

[[port]]
name = \"vxlan:vx100\"
vni = 100
local = \"{local}\"
evpn = true
"
    )
}

fn start_switchd(dir: &Path, conf: &str, tap: &str, metrics: &str) -> Switchd {
    let path: PathBuf = dir.join("vswitchd.toml");
    write_config(&path, conf);
    let sw = Switchd::start(
        &[
            "--config",
            path.to_str().unwrap(),
            "--metrics-addr",
            metrics,
            "--log-level",
            "info,vswitch::evpn=debug",
        ],
        &[],
    );
    let mut sw = sw;
    assert!(
        wait_for(PATIENCE, || sw.ctl(&["show"]).status.success()).is_some() && sw.alive(),
        "vswitchd did not start: {}",
        sw.log_text()
    );
    wait_ports_up(&sw, &[tap.to_string()]);
    sw
}

/// The FDB row of `mac` in `fdb show`.
fn fdb_row(sw: &Switchd, mac: &str) -> Option<Value> {
    sw.ctl_json(&["fdb", "show"])
        .as_array()?
        .iter()
        .find(|e| e["mac"].as_str().map(str::to_lowercase).as_deref() == Some(mac))
        .cloned()
}

/// Waits (bounded) for `mac`'s FDB row of origin `evpn`, and returns it.
fn wait_evpn_row(sw: &Switchd, mac: &str) -> Option<Value> {
    wait_for(PATIENCE, || {
        fdb_row(sw, mac).filter(|r| r["origin"] == "evpn")
    })
}

fn evpn_show(sw: &Switchd) -> Value {
    sw.ctl_json(&["evpn", "show"])
}

fn ping_eventually(from: &Netns, to: &str) -> bool {
    wait_for(PATIENCE, || from.ping(to, 2)).is_some()
}

/// A vswitchd VTEP: gobgpd, vswitchd with one TAP workload (namespace
/// `w`) and the EVPN vxlan port. Fields drop in order: vswitchd first.
struct Vtep {
    sw: Switchd,
    _dir: tempfile::TempDir,
    gobgp: Gobgp,
    w: Netns,
    tap: String,
    metrics: String,
}

impl Vtep {
    /// `ip` on the underlay (a root address), GoBGP peering with `peers`,
    /// the workload at `wl_ip`; `tag` tells its names apart.
    fn new(base: &str, tag: &str, ip: &str, peers: &[&str], wl_ip: &str) -> Vtep {
        Vtep::new_with(base, tag, ip, peers, wl_ip, "")
    }

    /// [`Vtep::new`], with `port_conf` added to the vxlan port's section.
    fn new_with(
        base: &str,
        tag: &str,
        ip: &str,
        peers: &[&str],
        wl_ip: &str,
        port_conf: &str,
    ) -> Vtep {
        let gobgp = Gobgp::start(&gobgp_conf(ip, peers));
        let w = Netns::new(&format!("{base}{tag}w"));
        quiet_ipv6(&w);
        let tap = format!("{base}{tag}t");
        let metrics = format!("127.0.0.1:{}", free_port());
        let dir = tempfile::tempdir().unwrap();
        let sw = start_switchd(
            dir.path(),
            &(switchd_conf(&gobgp.api, ip, &tap, &w.name, wl_ip) + port_conf),
            &tap,
            &metrics,
        );
        Vtep {
            sw,
            _dir: dir,
            gobgp,
            w,
            tap,
            metrics,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- vswitchd\n{}\n--- gobgpd\n{}",
            self.sw.log_text(),
            self.gobgp.log()
        )
    }
}

/// Host A (FRR) and host B (vswitchd + GoBGP) on underlay
/// 198.19.`net`.0/24 (A .1, B .2), workloads in 198.18.`net`.0/24 (A's .1
/// with MAC 02:00:00:00:`net`:01, B's .2). Fields drop in order: B first,
/// the underlay last.
struct Pair {
    b: Vtep,
    a: FrrHost,
    _under: Underlay,
    base: String,
    a_ip: String,
    b_ip: String,
}

impl Pair {
    fn new(net: u8) -> Pair {
        Pair::new_with(net, "", "")
    }

    /// [`Pair::new`], with FRR's `vni_conf` and vswitchd's `port_conf`
    /// (see [`FrrHost::new_with`], [`Vtep::new_with`]).
    fn new_with(net: u8, vni_conf: &str, port_conf: &str) -> Pair {
        let base = names("ev");
        let (a_ip, b_ip) = (format!("198.19.{net}.1"), format!("198.19.{net}.2"));
        let mut under = Underlay::new(&base, &[b_ip.as_str()]);
        let a = FrrHost::new_with(
            &base,
            &mut under,
            &a_ip,
            &format!("198.18.{net}.1"),
            &[b_ip.as_str()],
            false,
            vni_conf,
        );
        a.w.ip(&[
            "link",
            "set",
            "wl",
            "address",
            &format!("02:00:00:00:{net:02x}:01"),
        ]);
        let b = Vtep::new_with(
            &base,
            "b",
            &b_ip,
            &[a_ip.as_str()],
            &format!("198.18.{net}.2"),
            port_conf,
        );
        Pair {
            b,
            a,
            _under: under,
            base,
            a_ip,
            b_ip,
        }
    }

    /// `what`, with every log and FRR's EVPN table.
    fn debug(&self, what: &str) -> String {
        format!(
            "{what}\n{}\n{}\n--- routes\n{}\n--- kernel fdb\n{}",
            self.b.logs(),
            self.a.frr.logs(),
            self.a.frr.vtysh("show bgp l2vpn evpn route"),
            self.a.vx_fdb()
        )
    }
}

#[test]
fn vswitchd_and_frr_exchange_evpn_routes_and_survive_a_gobgp_restart() {
    require_root();
    if !tools_present() {
        return;
    }
    let t0 = Instant::now();
    let mut p = Pair::new(20);
    let (a_ip, b_ip) = (p.a_ip.clone(), p.b_ip.clone());
    let started = t0.elapsed();

    // Workloads on both sides ping: flooding and unicast both follow BGP.
    assert!(
        ping_eventually(&p.a.w, "198.18.20.2"),
        "{}",
        p.debug("A's workload cannot ping B's")
    );
    assert!(
        ping_eventually(&p.b.w, "198.18.20.1"),
        "{}",
        p.debug("B -> A")
    );
    eprintln!(
        "e2e_evpn: hosts up in {started:?}; first ping across after {:?} more",
        t0.elapsed() - started
    );
    let a_mac = p.a.w.mac("wl").to_lowercase();
    let b_mac = p.b.w.mac(&p.b.tap).to_lowercase();

    // FRR holds vswitchd's type-3 and type-2 routes.
    let t3 = format!("[3]:[0]:[32]:[{b_ip}]");
    let t2 = format!("[2]:[0]:[48]:[{b_mac}]");
    let routes = wait_for(PATIENCE, || {
        let r = p.a.frr.vtysh("show bgp l2vpn evpn route");
        (r.contains(&t3) && r.contains(&t2)).then_some(r)
    });
    assert!(
        routes.is_some(),
        "{}",
        p.debug("FRR lacks vswitchd's routes")
    );
    // zebra put vswitchd's MAC and flood entry in the kernel's FDB.
    let kfdb = wait_for(PATIENCE, || {
        let f = p.a.vx_fdb();
        (f.contains(&format!("{b_mac} dst {b_ip}"))
            && f.contains(&format!("00:00:00:00:00:00 dst {b_ip}")))
        .then_some(f)
    });
    assert!(
        kfdb.is_some(),
        "{}",
        p.debug(&format!("kernel fdb: {}", p.a.vx_fdb()))
    );
    // vswitchd holds A's MAC with origin evpn behind A.
    let row = wait_evpn_row(&p.b.sw, &a_mac);
    let row = row.unwrap_or_else(|| panic!("{}", p.debug("no evpn entry for A's MAC")));
    assert_eq!(row["port"], "vxlan:vx100");
    assert_eq!(row["remote"], a_ip);
    let e = evpn_show(&p.b.sw);
    assert_eq!(e["connected"], true, "{e}");
    let seg = &e["segments"][0];
    assert_eq!(seg["vni"], 100);
    assert_eq!(seg["rd"], format!("{b_ip}:100"));
    assert_eq!(seg["rt"], format!("{ASN}:100"));
    assert_eq!(seg["remote_vteps"], serde_json::json!([a_ip]), "{e}");
    assert!(seg["macs_received"].as_u64() >= Some(1), "{e}");
    assert!(seg["macs_advertised"].as_u64() >= Some(1), "{e}");
    let (_, m) = scrape(&p.b.metrics);
    assert_eq!(m.get("vswitchd_evpn_gobgp_up"), 1.0);
    assert_eq!(m.port("vswitchd_evpn_remote_vteps", "vxlan:vx100"), 1.0);
    assert!(m.port("vswitchd_evpn_routes_advertised", "vxlan:vx100") >= 2.0);
    assert!(m.port("vswitchd_evpn_routes_received", "vxlan:vx100") >= 2.0);
    let text = p.b.sw.ctl_ok(&["fdb", "show"]);
    assert!(text.contains("evpn"), "{text}");
    // An evpn entry deleted by hand comes back from the route.
    p.b.sw.ctl_ok(&["fdb", "del", &a_mac]);
    assert!(
        wait_evpn_row(&p.b.sw, &a_mac).is_some(),
        "{}",
        p.debug("the deleted evpn entry did not come back")
    );
    // A local MAC flushed is withdrawn, and advertised again at its next
    // frame.
    p.b.sw.ctl_ok(&["fdb", "flush", "--port", &p.b.tap]);
    assert!(
        wait_for(PATIENCE, || !p
            .a
            .frr
            .vtysh("show bgp l2vpn evpn route")
            .contains(&t2))
        .is_some(),
        "{}",
        p.debug("a flushed MAC's route stayed")
    );
    assert!(
        ping_eventually(&p.b.w, "198.18.20.1"),
        "{}",
        p.debug("B -> A after the flush")
    );
    assert!(
        wait_for(PATIENCE, || p
            .a
            .frr
            .vtysh("show bgp l2vpn evpn route")
            .contains(&t2))
        .is_some(),
        "{}",
        p.debug("the MAC was not advertised again")
    );

    // GoBGP stops: vswitchd goes on (and says so); FRR drops the session.
    p.b.gobgp.stop();
    assert!(
        wait_for(PATIENCE, || evpn_show(&p.b.sw)["connected"] == false).is_some(),
        "{}",
        p.debug("vswitchd did not notice GoBGP stopping")
    );
    assert!(
        wait_for(PATIENCE, || !p
            .a
            .frr
            .vtysh("show bgp l2vpn evpn route")
            .contains(&t3))
        .is_some(),
        "{}",
        p.debug("FRR kept vswitchd's routes without a session")
    );
    // The switch still forwards locally and keeps its remote entries.
    assert!(fdb_row(&p.b.sw, &a_mac).is_some_and(|r| r["origin"] == "evpn"));

    // GoBGP back: vswitchd reconnects and advertises everything again.
    p.b.gobgp.restart();
    let t1 = Instant::now();
    let back = wait_for(PATIENCE * 2, || {
        let r = p.a.frr.vtysh("show bgp l2vpn evpn route");
        r.contains(&t3) && r.contains(&t2)
    });
    eprintln!(
        "e2e_evpn: GoBGP restarted; FRR had vswitchd's routes again after {:?}",
        t1.elapsed()
    );
    assert!(
        back.is_some(),
        "{}",
        p.debug("routes not back after GoBGP restarted")
    );
    let e = evpn_show(&p.b.sw);
    assert_eq!(e["connected"], true, "{e}");
    assert!(e["connects"].as_u64() >= Some(2), "{e}");
    assert!(
        ping_eventually(&p.a.w, "198.18.20.2"),
        "{}",
        p.debug("no ping after GoBGP restarted")
    );

    // A's BGP goes away: GoBGP withdraws A's routes and vswitchd takes
    // A's MAC and flood entry out.
    p.a.frr.stop_bgpd();
    let gone = wait_for(PATIENCE, || {
        evpn_show(&p.b.sw)["segments"][0]["remote_vteps"] == serde_json::json!([])
            && fdb_row(&p.b.sw, &a_mac).is_none_or(|r| r["origin"] != "evpn")
    });
    assert!(
        gone.is_some(),
        "{}",
        p.debug("A's routes outlived its BGP session")
    );
}

/// A fabric whose VNI uses a route target of its own (FRR's `vni 100` with
/// `route-target import/export`), vswitchd's port given the same with
/// `evpn-rt`, and an RD of its choosing: routes cross both ways under that
/// RT, and none under the automatic one.
#[test]
fn configured_route_target_and_distinguisher_interoperate_with_frr() {
    require_root();
    if !tools_present() {
        return;
    }
    let net = 23;
    let rt = "65000:1100";
    let b_ip = format!("198.19.{net}.2");
    let p = Pair::new_with(
        net,
        &format!(
            "  vni 100\n   route-target import {rt}\n   route-target export {rt}\n  exit-vni\n"
        ),
        &format!("evpn-rt = \"{rt}\"\nevpn-rd = \"{b_ip}:7\"\n"),
    );
    let (a_wl, b_wl) = (format!("198.18.{net}.1"), format!("198.18.{net}.2"));
    assert!(ping_eventually(&p.b.w, &a_wl), "{}", p.debug("B -> A"));
    assert!(ping_eventually(&p.a.w, &b_wl), "{}", p.debug("A -> B"));
    let m = p.a.w.mac("wl").to_lowercase();
    assert!(
        wait_evpn_row(&p.b.sw, &m).is_some(),
        "{}",
        p.debug("no evpn entry for A's workload")
    );
    // FRR holds vswitchd's routes under its RD, with the configured RT.
    let routes = wait_for(PATIENCE, || {
        let r = p.a.frr.vtysh("show bgp l2vpn evpn route");
        (r.contains(&format!("Route Distinguisher: {b_ip}:7")) && r.contains(&format!("RT:{rt}")))
            .then_some(r)
    });
    assert!(routes.is_some(), "{}", p.debug("FRR lacks our RD or RT"));
    let show = evpn_show(&p.b.sw);
    assert_eq!(show["segments"][0]["rt"], rt, "{show:#}");
    assert_eq!(show["segments"][0]["rd"], format!("{b_ip}:7"), "{show:#}");
    assert!(
        !p.a.frr
            .vtysh("show bgp l2vpn evpn route")
            .contains(&format!("RT:{ASN}:100")),
        "{}",
        p.debug("a route with the automatic RT")
    );
}

#[test]
fn a_mac_moving_from_frr_to_vswitchd_converges() {
    require_root();
    if !tools_present() {
        return;
    }
    let p = Pair::new(21);
    let (a_wl, b_wl) = ("198.18.21.1", "198.18.21.2");
    assert!(ping_eventually(&p.b.w, a_wl), "{}", p.debug("B -> A"));
    let m = p.a.w.mac("wl").to_lowercase();
    assert!(
        wait_evpn_row(&p.b.sw, &m).is_some(),
        "{}",
        p.debug("no evpn entry for A's workload")
    );

    // The workload moves: silent at A (no address: it answers nothing,
    // its port stays up, so A's bridge still holds the MAC), back at B on
    // a new TAP with its MAC and address.
    p.a.w.ip(&["addr", "flush", "dev", "wl"]);
    let bw2 = Netns::new(&format!("{}m", p.base));
    quiet_ipv6(&bw2);
    let tap2 = format!("{}t2", p.base);
    p.b.sw.ctl_ok(&[
        "port",
        "add",
        &tap2,
        "--netns",
        &bw2.name,
        "--address",
        &format!("{a_wl}/24"),
        "--mac",
        &m,
    ]);
    // Its first frames (an ARP request, as a moved VM's announcement)
    // take the evpn entry over.
    assert!(
        ping_eventually(&bw2, b_wl),
        "{}",
        p.debug("moved workload -> B")
    );
    assert!(
        ping_eventually(&p.b.w, a_wl),
        "{}",
        p.debug("B cannot reach the moved workload")
    );
    let row = wait_for(PATIENCE, || {
        fdb_row(&p.b.sw, &m).filter(|r| r["port"] == tap2.as_str() && r["origin"] == "learned")
    });
    assert!(
        row.is_some(),
        "{}",
        p.debug("vswitchd did not take the MAC over")
    );

    // vswitchd advertises it with sequence number 1 (A's was 0); FRR
    // takes the move and zebra points the kernel's entry at B.
    let t1 = Instant::now();
    let moved = wait_for(PATIENCE, || {
        let f = p.a.vx_fdb();
        f.contains(&format!("{m} dst {}", p.b_ip)).then_some(f)
    });
    eprintln!(
        "e2e_evpn: MAC move: A's kernel FDB pointed at B {:?} after vswitchd took the MAC over",
        t1.elapsed()
    );
    assert!(
        moved.is_some(),
        "{}",
        p.debug("A's kernel FDB did not follow the move")
    );
    let mac_info = p.a.frr.vtysh(&format!("show evpn mac vni 100 mac {m}"));
    assert!(
        mac_info.contains("Remote VTEP") && mac_info.contains(&p.b_ip),
        "{mac_info}\n{}",
        p.debug("FRR does not see the MAC behind B")
    );
    assert!(
        p.a.frr.vtysh("show bgp l2vpn evpn route").contains("MM:1"),
        "{}",
        p.debug("no MAC mobility sequence 1 in FRR's table")
    );
    let _ = &p.a_ip;
}

#[test]
fn a_third_vtep_joins_through_frr_as_route_reflector() {
    require_root();
    if !tools_present() {
        return;
    }
    // A (FRR) reflects between B and C (each vswitchd + its own GoBGP,
    // peering with A only): B's and C's configurations name no other VTEP.
    let base = names("ev");
    let (a_ip, b_ip, c_ip) = ("198.19.22.1", "198.19.22.2", "198.19.22.3");
    let mut under = Underlay::new(&base, &[b_ip, c_ip]);
    let a = FrrHost::new(&base, &mut under, a_ip, "198.18.22.1", &[b_ip, c_ip], true);
    let b = Vtep::new(&base, "b", b_ip, &[a_ip], "198.18.22.2");
    let c = Vtep::new(&base, "c", c_ip, &[a_ip], "198.18.22.3");
    let debug = |what: &str| {
        format!(
            "{what}\n--- B\n{}\n--- C\n{}\n{}\n--- routes\n{}",
            b.logs(),
            c.logs(),
            a.frr.logs(),
            a.frr.vtysh("show bgp l2vpn evpn route")
        )
    };
    for (from, name, to) in [
        (&b.w, "B", "198.18.22.3"),
        (&c.w, "C", "198.18.22.2"),
        (&a.w, "A", "198.18.22.3"),
        (&c.w, "C", "198.18.22.1"),
    ] {
        assert!(
            ping_eventually(from, to),
            "{}",
            debug(&format!("{name} cannot ping {to}"))
        );
    }
    // Each vswitchd floods to the two others, learned from BGP only.
    for (v, others) in [(&b, [a_ip, c_ip]), (&c, [a_ip, b_ip])] {
        let ok = wait_for(PATIENCE, || {
            evpn_show(&v.sw)["segments"][0]["remote_vteps"] == serde_json::json!(others)
        });
        assert!(
            ok.is_some(),
            "{}",
            debug(&format!("flood list: {}", evpn_show(&v.sw)))
        );
    }
    // B reaches C's workload through C's address, from C's type-2 route.
    let c_mac = c.w.mac(&c.tap).to_lowercase();
    let row = wait_evpn_row(&b.sw, &c_mac);
    let row = row.unwrap_or_else(|| panic!("{}", debug("B has no evpn entry for C's MAC")));
    assert_eq!(row["remote"], c_ip);

    // C's vswitchd stops: it withdraws its routes, so A and B stop
    // flooding to it at once (its GoBGP keeps running).
    let Vtep {
        sw: c_sw,
        gobgp: c_gobgp,
        ..
    } = c;
    drop(c_sw);
    let t3 = format!("[3]:[0]:[32]:[{c_ip}]");
    let gone = wait_for(PATIENCE, || {
        !a.frr.vtysh("show bgp l2vpn evpn route").contains(&t3)
            && evpn_show(&b.sw)["segments"][0]["remote_vteps"] == serde_json::json!([a_ip])
    });
    assert!(
        gone.is_some(),
        "C's routes outlived its vswitchd\n{}\n--- C's gobgpd\n{}\n{}",
        b.logs(),
        c_gobgp.log(),
        a.frr.vtysh("show bgp l2vpn evpn route")
    );
    drop((c_gobgp, b, a, under));
}

#[test]
fn vswitchd_starts_without_gobgp_and_says_so() {
    require_root();
    // Nothing listens on GoBGP's address: vswitchd runs, forwards, and
    // reports the segment and the error (no FRR or GoBGP needed).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vswitchd.toml");
    write_config(
        &path,
        &format!(
            "[evpn]\ngobgp = \"127.0.0.1:{}\"\nasn = {ASN}\nrouter-id = \"198.19.23.2\"\n\
             [[port]]\nname = \"vxlan:vx100\"\nvni = 100\nlocal = \"127.0.0.1\"\ndstport = {}\nevpn = true\n",
            free_port(),
            free_port()
        ),
    );
    let metrics = format!("127.0.0.1:{}", free_port());
    let sw = Switchd::start(
        &[
            "--config",
            path.to_str().unwrap(),
            "--metrics-addr",
            &metrics,
        ],
        &[],
    );
    let e = wait_for(PATIENCE, || {
        let e = evpn_show(&sw);
        (e["last_error"].is_string() && e["segments"].as_array().is_some_and(|s| !s.is_empty()))
            .then_some(e)
    })
    .unwrap_or_else(|| panic!("no status: {}", sw.log_text()));
    assert_eq!(e["connected"], false, "{e}");
    assert!(e["last_error"].as_str().unwrap().contains("GoBGP"), "{e}");
    assert_eq!(e["segments"][0]["vni"], 100, "{e}");
    assert_eq!(e["segments"][0]["rd"], "198.19.23.2:100", "{e}");
    let (_, m) = scrape(&metrics);
    assert_eq!(m.get("vswitchd_evpn_gobgp_up"), 0.0);
    assert!(sw.log_text().contains("retrying with backoff"));
    // The rest of the switch answers as usual.
    sw.ctl_ok(&["show"]);

    // EVPN ports at run time: one per VNI, and only with the agent.
    let add = |sw: &Switchd, name: &str, vni: &str| {
        let port = free_port().to_string();
        sw.ctl(&[
            "port",
            "add",
            name,
            "--vni",
            vni,
            "--local",
            "127.0.0.1",
            "--dstport",
            &port,
            "--evpn",
            "on",
        ])
    };
    let o = add(&sw, "vxlan:vx101", "100");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("one EVPN segment per VNI"));
    assert!(add(&sw, "vxlan:vx101", "101").status.success());
    assert!(
        wait_for(PATIENCE, || evpn_show(&sw)["segments"]
            .as_array()
            .is_some_and(|s| s.len() == 2))
        .is_some(),
        "{}",
        evpn_show(&sw)
    );
    let plain = Switchd::start(&[], &[]);
    let o = add(&plain, "vxlan:vx100", "100");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("EVPN is off"));
    assert!(!plain.ctl(&["evpn", "show"]).status.success());
}
