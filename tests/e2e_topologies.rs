//! The classic Linux virtual-network recipes with vswitchd in place of a
//! kernel bridge (`br0`), one test per topology; docs/topologies.md shows
//! each one as commands, side by side with the kernel-bridge recipe.
//!
//! 1a. namespaces on one segment, on TAPs vswitchd places (config netns/addresses)
//! 1b. the same with container-style veth pairs attached as `raw:` ports
//! 2.  guests bridged onto the host's LAN ("bridged mode"): `raw:` uplink,
//!     the host's address on a host TAP port, no NAT
//! 3.  containers behind NAT: host TAP port as gateway, ip_forward, nft
//!     masquerade towards an "outside" namespace
//! 4.  mixed: a QEMU guest (tap opened by QEMU, auto-attached as raw:),
//!     a namespace and the host port on one segment
//!
//! Root: `sudo -E cargo test --release --test e2e_topologies`. Addresses
//! come from 198.18.0.0/15 only; whatever a test adds to the root namespace
//! (interfaces, addresses, one nft table named after the test, ip_forward)
//! is undone by Drop guards, even when an assertion fails. The topologies
//! run one at a time (they share the root namespace). The QEMU topology
//! fails when qemu-system-x86_64 is missing, unless VSWITCH_SKIP_QEMU=1.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::cmd::{names, require_root};
use support::net::{At, Link, Netns, NftTable, RootAddr, Sysctl};
use support::qemu::{Guest, guest_dir, qemu_required, vs_serve};
use support::state::{dump, fdb_macs, port_info, port_kinds};
use support::switchd::{Switchd, write_config};
use support::traffic::{Capture, iperf3, received_bytes, tcp_peer};
use support::wait::wait_for;

/// The topologies run one at a time: they share the root namespace (host
/// ports, ip_forward) and the two cores; serial runs keep timings honest.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes vswitchd.toml into `dir`; returns its path.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("vswitchd.toml");
    write_config(&p, text);
    p
}

/// One iperf3 TCP flow (2 s) from `client` to a server on `ip` in `server`;
/// the bytes the receiver counted.
fn iperf(server: At, ip: &str, client: At) -> u64 {
    received_bytes(&iperf3(server, ip, client, &["-t", "2"]))
}

/// Asserts that every namespace pings every other one at `ip(j)` (2 pings
/// each).
fn assert_all_pairs_ping(sw: &Switchd, ns: &[Netns], ip: impl Fn(usize) -> String) {
    let mut fails = Vec::new();
    for (i, from) in ns.iter().enumerate() {
        for j in (0..ns.len()).filter(|j| *j != i) {
            if !from.ping(&ip(j), 2) {
                fails.push(format!("{} -> {}", from.name, ip(j)));
            }
        }
    }
    assert!(fails.is_empty(), "pings failed: {fails:?}\n{}", dump(sw));
}

/// Two iperf3 TCP flows (2 s) at once, `(server, client)` indices into
/// `ns`; asserts both moved data.
fn two_flows(
    sw: &Switchd,
    ns: &[Netns],
    ip: impl Fn(usize) -> String + Sync,
    flows: [(usize, usize); 2],
) {
    let flow = |(srv, cli): (usize, usize)| iperf(ns[srv].at(), &ip(srv), ns[cli].at());
    let (a, b) = std::thread::scope(|s| {
        let f1 = s.spawn(|| flow(flows[0]));
        let f2 = s.spawn(|| flow(flows[1]));
        (f1.join().unwrap(), f2.join().unwrap())
    });
    let [(s1, c1), (s2, c2)] = flows;
    assert!(
        a > 0 && b > 0,
        "iperf3 bytes: ns{c1}->ns{s1} {a}, ns{c2}->ns{s2} {b}\n{}",
        dump(sw)
    );
    eprintln!("  iperf3 TCP (2 s, two flows at once): {a} and {b} bytes");
}

fn pings(tries: &[(At, &str)]) -> Vec<String> {
    tries
        .iter()
        .filter(|(from, dst)| !from.ping(dst, 3))
        .map(|(from, dst)| format!("{} -> {dst}", from.label()))
        .collect()
}

fn wait_placed(sw: &Switchd, at: At, dev: &str, addr: &str) {
    let placed = wait_for(Duration::from_secs(15), || at.dev_has(dev, addr));
    assert!(
        placed.is_some(),
        "timed out waiting for {dev} with {addr} in {}\n{}",
        at.label(),
        sw.log_text()
    );
}

fn done(name: &str, t0: Instant) {
    eprintln!(
        "TOPOLOGY {name}: passed in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Topology 1a: four namespaces on one segment, each on a TAP that vswitchd
/// creates, moves into the namespace and addresses (three from the config
/// file, one added at run time with `vswitchctl port add --netns
/// --address`). Every pair pings; two iperf3 TCP flows run at once.
#[test]
fn t1a_namespaces_on_placed_taps() {
    let _serial = serial();
    require_root();
    let t0 = Instant::now();
    let n = names("sa");
    let tmp = tempfile::tempdir().unwrap();
    let ns: Vec<Netns> = (0..4).map(|i| Netns::new(&format!("{n}n{i}"))).collect();
    let tap = |i: usize| format!("{n}t{i}");
    let ip = |i: usize| format!("198.18.150.{}", i + 1);

    let mut cfg = String::new();
    for (i, nsi) in ns.iter().enumerate().take(3) {
        cfg += &format!(
            "[[port]]\nname = \"{}\"\nnetns = \"{}\"\naddresses = [\"{}/24\"]\n\n",
            tap(i),
            nsi.name,
            ip(i)
        );
    }
    let path = config_file(tmp.path(), &cfg);
    let sw = Switchd::start(&["--config", path.to_str().unwrap()], &[]);
    for (i, nsi) in ns.iter().enumerate().take(3) {
        wait_placed(&sw, At::Ns(nsi), &tap(i), &format!("{}/24", ip(i)));
    }
    sw.ctl_ok(&[
        "port",
        "add",
        &tap(3),
        "--netns",
        &ns[3].name,
        "--address",
        &format!("{}/24", ip(3)),
    ]);
    wait_placed(&sw, At::Ns(&ns[3]), &tap(3), &format!("{}/24", ip(3)));

    let kinds = port_kinds(&sw);
    assert_eq!(kinds.len(), 4, "four ports: {kinds:?}");
    assert!(kinds.iter().all(|(_, k)| k == "tap"), "{kinds:?}");

    assert_all_pairs_ping(&sw, &ns, ip);
    two_flows(&sw, &ns, ip, [(1, 0), (3, 2)]);
    done("1a namespaces on placed TAPs", t0);
}

/// Topology 1b, the container recipe: each namespace gets a veth pair
/// (`eth0` inside, the other end in the root namespace), and the root ends are
/// `raw:` ports of vswitchd instead of bridge ports. Every pair pings; two
/// iperf3 TCP flows run at once (GSO frames through AF_PACKET both ways).
#[test]
fn t1b_namespaces_on_veth_pairs() {
    let _serial = serial();
    require_root();
    let t0 = Instant::now();
    let n = names("sb");
    let ns: Vec<Netns> = (0..4).map(|i| Netns::new(&format!("{n}n{i}"))).collect();
    let ip = |i: usize| format!("198.18.151.{}", i + 1);
    let mut links = Vec::new();
    let mut ports = Vec::new();
    for (i, nsi) in ns.iter().enumerate() {
        let root_end = format!("{n}v{i}");
        links.push(Link::veth(&root_end, "eth0", Some(nsi)));
        nsi.ip(&["addr", "add", &format!("{}/24", ip(i)), "dev", "eth0"]);
        nsi.ip(&["link", "set", "eth0", "up"]);
        ports.push(format!("raw:{root_end}"));
    }
    let sw = Switchd::start(&["--ports", &ports.join(",")], &[]);
    for p in &ports {
        let listed = wait_for(Duration::from_secs(15), || port_info(&sw, p).is_some());
        assert!(
            listed.is_some(),
            "timed out waiting for {p} up in vswitchd\n{}",
            sw.log_text()
        );
    }

    assert_all_pairs_ping(&sw, &ns, ip);
    for (i, nsi) in ns.iter().enumerate() {
        let mac = At::Ns(nsi).mac("eth0");
        let on = fdb_macs(&sw, &ports[i]);
        assert!(
            on.contains(&mac),
            "{mac} (eth0 of {}) not learned on {}: {on:?}",
            nsi.name,
            ports[i]
        );
    }

    two_flows(&sw, &ns, ip, [(1, 0), (2, 3)]);
    drop(sw);
    drop(links);
    done("1b namespaces on veth pairs", t0);
}

/// Topology 2, bridged mode. The physical LAN is simulated by namespace
/// `lan` holding a kernel bridge with two LAN hosts (h1, h2) and the peer of the
/// host's "NIC" (a veth whose root end is the `raw:` uplink). The host's
/// own address sits on a host TAP port in the root namespace (the IP that
/// would be on br0); guests g1, g2 are namespaces on TAP ports.
///
/// Asserts: LAN hosts and guests and the host all ping each other; TCP
/// listeners see the real source addresses (no NAT) in both directions;
/// vswitchd learned the LAN MACs on the uplink; the root namespace still
/// reaches the LAN, through the host port; TCP bulk crosses raw<->tap;
/// the host answers ARP only from the host port's MAC and sends nothing on
/// the claimed uplink (no ARP flux).
#[test]
fn t2_bridged_guests_on_host_lan() {
    let _serial = serial();
    require_root();
    let t0 = Instant::now();
    let n = names("br");
    let tmp = tempfile::tempdir().unwrap();
    let host_ip = "198.18.160.1";
    let lan_ip = ["198.18.160.11", "198.18.160.12"];
    let guest_ip = ["198.18.160.21", "198.18.160.22"];

    // The LAN: a kernel bridge in its own namespace, two hosts on it.
    let lan = Netns::new(&format!("{n}l"));
    let h: Vec<Netns> = (1..=2).map(|i| Netns::new(&format!("{n}h{i}"))).collect();
    let g: Vec<Netns> = (1..=2).map(|i| Netns::new(&format!("{n}g{i}"))).collect();
    lan.ip(&["link", "add", "name", "lanbr", "type", "bridge"]);
    lan.ip(&["link", "set", "lanbr", "up"]);
    for (i, hn) in h.iter().enumerate() {
        let p = format!("lp{i}");
        lan.ip(&[
            "link", "add", &p, "type", "veth", "peer", "name", "eth0", "netns", &hn.name,
        ]);
        lan.ip(&["link", "set", &p, "master", "lanbr", "up"]);
        hn.ip(&["addr", "add", &format!("{}/24", lan_ip[i]), "dev", "eth0"]);
        hn.ip(&["link", "set", "eth0", "up"]);
    }
    // The host's NIC on that LAN: root end `up`, peer plugged into lanbr.
    let up = format!("{n}up");
    let _uplink = Link::veth(&up, "uplink", Some(&lan));
    lan.ip(&["link", "set", "uplink", "master", "lanbr", "up"]);
    // Take the uplink away from the host stack, as enslaving to br0 does.

    let hp = format!("{n}hp");
    let gtap = |i: usize| format!("{n}g{}", i + 1);
    let cfg = format!(
        "# bridged mode: uplink NIC, host port with the host's LAN address, guests\n\
         [[port]]\nname = \"raw:{up}\"\n\n\
         [[port]]\nname = \"{hp}\"\naddresses = [\"{host_ip}/24\"]\n\n\
         [[port]]\nname = \"{g1}\"\nnetns = \"{n1}\"\naddresses = [\"{a1}/24\"]\n\n\
         [[port]]\nname = \"{g2}\"\nnetns = \"{n2}\"\naddresses = [\"{a2}/24\"]\n",
        g1 = gtap(0),
        g2 = gtap(1),
        n1 = g[0].name,
        n2 = g[1].name,
        a1 = guest_ip[0],
        a2 = guest_ip[1],
    );
    let path = config_file(tmp.path(), &cfg);
    let _host_addr = RootAddr::expect(&hp, &format!("{host_ip}/24"));
    let up_mac = At::Root.mac(&up);
    // The ARP answers LAN host h1 gets.
    let cap_arp = Capture::start(At::Ns(&h[0]), "eth0", "arp", 120, tmp.path());
    let sw = Switchd::start(&["--config", path.to_str().unwrap()], &[&hp]);
    wait_placed(&sw, At::Root, &hp, &format!("{host_ip}/24"));
    for i in 0..2 {
        wait_placed(&sw, At::Ns(&g[i]), &gtap(i), &format!("{}/24", guest_ip[i]));
    }
    // What the host sends on the uplink itself (there should be nothing);
    // the raw: port has brought the uplink up by now.
    let cap_up = Capture::start(
        At::Root,
        &up,
        &format!("ether src {up_mac}"),
        120,
        tmp.path(),
    );
    let host_mac = At::Root.mac(&hp);

    // LAN hosts reach guests and the host directly; guests reach the LAN.
    let (h1, h2, g1, g2) = (At::Ns(&h[0]), At::Ns(&h[1]), At::Ns(&g[0]), At::Ns(&g[1]));
    let fails = pings(&[
        (h1, guest_ip[0]),
        (h1, guest_ip[1]),
        (h1, host_ip),
        (h2, guest_ip[0]),
        (h2, host_ip),
        (g1, lan_ip[0]),
        (g1, lan_ip[1]),
        (g1, host_ip),
        (g2, lan_ip[1]),
        (g2, guest_ip[0]),
    ]);
    assert!(fails.is_empty(), "pings failed: {fails:?}\n{}", dump(&sw));

    // The host keeps its connectivity, through the host port.
    let route = At::Root.ip(&["route", "get", lan_ip[0]]);
    assert!(
        route.contains(&format!("dev {hp} ")),
        "root reaches the LAN through {hp}? {route}"
    );
    let fails = pings(&[
        (At::Root, lan_ip[0]),
        (At::Root, lan_ip[1]),
        (At::Root, guest_ip[1]),
    ]);
    assert!(
        fails.is_empty(),
        "host lost the LAN: {fails:?}\n{}",
        dump(&sw)
    );

    // No NAT: receivers see the senders' own addresses.
    let (peer, _) = tcp_peer(g1, guest_ip[0], 7001, h1, guest_ip[0]);
    assert_eq!(peer, lan_ip[0], "guest g1 saw LAN host h1 as {peer}");
    let root_port = 20_000 + (std::process::id() % 20_000) as u16;
    let (peer, _) = tcp_peer(At::Root, host_ip, root_port, h2, host_ip);
    assert_eq!(peer, lan_ip[1], "the host saw LAN host h2 as {peer}");
    let (peer, _) = tcp_peer(h1, lan_ip[0], 7002, g2, lan_ip[0]);
    assert_eq!(peer, guest_ip[1], "LAN host h1 saw guest g2 as {peer}");

    // The switch learned the LAN's MACs on the uplink, guests on theirs.
    let on_up = fdb_macs(&sw, &format!("raw:{up}"));
    for (i, hn) in h.iter().enumerate() {
        let m = At::Ns(hn).mac("eth0");
        assert!(
            on_up.contains(&m),
            "LAN host h{} ({m}) not learned on raw:{up}: {on_up:?}",
            i + 1
        );
    }
    for (i, gn) in g.iter().enumerate() {
        let m = At::Ns(gn).mac(&gtap(i));
        let on = fdb_macs(&sw, &gtap(i));
        assert!(on.contains(&m), "guest {m} not on {}: {on:?}", gtap(i));
    }
    let on_hp = fdb_macs(&sw, &hp);
    assert!(
        on_hp.contains(&host_mac),
        "host {host_mac} not on {hp}: {on_hp:?}"
    );

    // TCP bulk between LAN and guests (raw -> tap and tap -> raw).
    let a = iperf(g1, guest_ip[0], h1);
    let b = iperf(h2, lan_ip[1], g2);
    assert!(a > 0 && b > 0, "iperf3 bytes: h1->g1 {a}, g2->h2 {b}");
    eprintln!("  iperf3 TCP 2 s: LAN->guest {a} bytes, guest->LAN {b} bytes");

    // No ARP flux: the host answered for its address only from the host
    // port, and never transmitted on the uplink itself.
    let arp = cap_arp.finish();
    let replies: Vec<&String> = arp
        .iter()
        .filter(|l| l.contains(&format!("Reply {host_ip} is-at")))
        .collect();
    assert!(
        !replies.is_empty(),
        "h1 saw no ARP reply for {host_ip}: {arp:#?}"
    );
    for r in &replies {
        assert!(
            r.contains(&format!("is-at {host_mac}")),
            "ARP flux: {host_ip} answered with a MAC other than the host port's \
             ({host_mac}); uplink is {up_mac}: {r}"
        );
    }
    let neigh = h1.ip(&["neigh", "show", host_ip, "dev", "eth0"]);
    assert!(
        neigh.contains(&host_mac),
        "h1 has {host_ip} at {neigh}, not {host_mac}"
    );
    let sent = cap_up.finish();
    assert!(
        sent.is_empty(),
        "the host stack transmitted on the claimed uplink: {sent:#?}"
    );
    done("2 bridged guests on the host's LAN", t0);
}

/// Source addresses of ICMP echo requests in `tcpdump -n -e` lines.
fn echo_request_sources(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains("ICMP echo request"))
        .filter_map(|l| {
            let ip_part = l.split(" > ").nth(1)?;
            ip_part.split_whitespace().last().map(str::to_string)
        })
        .collect()
}

/// Topology 3, containers behind NAT: namespaces c1, c2 on TAP ports in a
/// private subnet, the host's gateway address on a host TAP port,
/// ip_forward on, an nft masquerade rule (in this test's own table) out of
/// a veth to the "outside" namespace, which has no route back to the
/// private subnet.
///
/// Asserts: outside has no route to the containers; containers reach the
/// gateway and each other; they reach the outside (ping, TCP, iperf3); the
/// outside sees only the host's outside address (tcpdump and a TCP
/// listener); afterwards ip_forward is back and the nft table is gone.
#[test]
fn t3_containers_behind_nat() {
    let _serial = serial();
    require_root();
    let t0 = Instant::now();
    let n = names("nt");
    let tmp = tempfile::tempdir().unwrap();
    let gw = "198.18.170.1";
    let cip = ["198.18.170.11", "198.18.170.12"];
    let (host_out, far) = ("198.19.170.1", "198.19.170.2");
    let forward_before = Sysctl::read("net.ipv4.ip_forward");

    let c: Vec<Netns> = (1..=2).map(|i| Netns::new(&format!("{n}c{i}"))).collect();
    let out = Netns::new(&format!("{n}o"));
    let wan = format!("{n}w");
    let _wan = Link::veth(&wan, "eth0", Some(&out));
    let _wan_addr = RootAddr::add(&wan, &format!("{host_out}/24"));
    At::Root.ip(&["link", "set", &wan, "up"]);
    out.ip(&["addr", "add", &format!("{far}/24"), "dev", "eth0"]);
    out.ip(&["link", "set", "eth0", "up"]);

    let gwp = format!("{n}gw");
    let ctap = |i: usize| format!("{n}c{}", i + 1);
    let cfg = format!(
        "[[port]]\nname = \"{gwp}\"\naddresses = [\"{gw}/24\"]\n\n\
         [[port]]\nname = \"{t1}\"\nnetns = \"{n1}\"\naddresses = [\"{a1}/24\"]\n\n\
         [[port]]\nname = \"{t2}\"\nnetns = \"{n2}\"\naddresses = [\"{a2}/24\"]\n",
        t1 = ctap(0),
        t2 = ctap(1),
        n1 = c[0].name,
        n2 = c[1].name,
        a1 = cip[0],
        a2 = cip[1],
    );
    let path = config_file(tmp.path(), &cfg);
    let _gw_addr = RootAddr::expect(&gwp, &format!("{gw}/24"));
    let sw = Switchd::start(&["--config", path.to_str().unwrap()], &[&gwp]);
    wait_placed(&sw, At::Root, &gwp, &format!("{gw}/24"));
    for i in 0..2 {
        wait_placed(&sw, At::Ns(&c[i]), &ctap(i), &format!("{}/24", cip[i]));
        c[i].ip(&["route", "add", "default", "via", gw]);
    }

    let fwd = Sysctl::set("net.ipv4.ip_forward", "1");
    let nat = NftTable::new("ip", &n);
    nat.chain(
        "postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
    );
    nat.rule(
        "postrouting",
        &format!("ip saddr 198.18.170.0/24 oifname \"{wan}\" masquerade"),
    );
    nat.chain(
        "forward",
        "type filter hook forward priority filter; policy accept;",
    );
    nat.rule(
        "forward",
        &format!("iifname \"{gwp}\" oifname \"{wan}\" accept"),
    );
    nat.rule(
        "forward",
        &format!("iifname \"{wan}\" oifname \"{gwp}\" ct state established,related accept"),
    );

    let (c1, c2, o) = (At::Ns(&c[0]), At::Ns(&c[1]), At::Ns(&out));
    let r = out.exec(&["ip", "route", "get", cip[0]]);
    assert!(
        !r.status.success(),
        "the outside must not have a route back to the containers: {}",
        String::from_utf8_lossy(&r.stdout)
    );
    let fails = pings(&[(c1, gw), (c2, gw), (c1, cip[1]), (c2, cip[0])]);
    assert!(fails.is_empty(), "pings failed: {fails:?}\n{}", dump(&sw));

    // Out through the NAT; the outside sees the host's address only.
    let cap = Capture::start(o, "eth0", "icmp", 60, tmp.path());
    let fails = pings(&[(c1, far), (c2, far)]);
    let seen = echo_request_sources(&cap.finish());
    assert!(
        fails.is_empty(),
        "containers cannot reach the outside: {fails:?}\nnft: {}\n{}",
        nat.list(),
        dump(&sw)
    );
    assert!(
        seen.len() >= 6,
        "outside saw {} echo requests: {seen:?}",
        seen.len()
    );
    assert!(
        seen.iter().all(|s| s == host_out),
        "outside saw sources other than the host's {host_out}: {seen:?}"
    );
    for (i, cn) in [c1, c2].into_iter().enumerate() {
        let (peer, local) = tcp_peer(o, far, 8001 + i as u16, cn, far);
        assert_eq!(local, cip[i], "container's own source address");
        assert_eq!(
            peer, host_out,
            "outside saw container {} as {peer}, not as the host",
            cip[i]
        );
    }
    let bytes = iperf(o, far, c1);
    assert!(bytes > 0, "iperf3 through the NAT: {bytes} bytes");
    eprintln!("  iperf3 TCP 2 s container->outside through NAT: {bytes} bytes");

    // Cleanup is exact: the table goes, ip_forward comes back.
    drop(nat);
    drop(fwd);
    assert!(!NftTable::exists("ip", &n), "nft table {n} left behind");
    assert_eq!(
        Sysctl::read("net.ipv4.ip_forward"),
        forward_before,
        "ip_forward not restored"
    );
    done("3 containers behind NAT", t0);
}

/// Topology 4, mixed: one segment holding a QEMU guest (QEMU opens its tap
/// itself with script=no; `--ports TAP` finds it busy and attaches it as
/// raw:), a namespace on a placed TAP and the host port.
///
/// Asserts: the tap is attached as raw; the guest pings the namespace and
/// the host address and moves 8 MiB each way over TCP to the namespace
/// (virtio-net GSO frames through raw -> tap); the namespace pings the host
/// and the guest; the host pings the guest; the guest's MAC is learned on
/// the tap's port; the host stack sends nothing on the claimed QEMU tap.
#[test]
fn t4_mixed_qemu_namespace_host() {
    let _serial = serial();
    require_root();
    if !qemu_required() {
        return;
    }
    let t0 = Instant::now();
    let gdir = guest_dir();
    let n = names("mx");
    let tmp = tempfile::tempdir().unwrap();
    let (host_ip, ns_ip, guest_ip) = ("198.18.180.1", "198.18.180.11", "198.18.180.21");
    let ns = Netns::new(&format!("{n}n"));
    let qtap = format!("{n}q");
    let nstap = format!("{n}t");
    let hp = format!("{n}h");
    let pid = std::process::id();
    let gmac = format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        (pid >> 16) & 0xff,
        (pid >> 8) & 0xff,
        pid & 0xff
    );

    // The guest's TCP peer, and the guest itself on a tap QEMU creates.
    let serve = vs_serve();
    let _serve = At::Ns(&ns).spawn(&[
        "timeout",
        "280",
        "busybox",
        "nc",
        "-ll",
        "-p",
        "5201",
        "-e",
        serve.to_str().unwrap(),
    ]);
    let append = format!(
        "vs.ip={guest_ip}/24 vs.peers={ns_ip},{host_ip} vs.count=5 vs.wait=90 \
         vs.tcp={ns_ip}:5201 vs.tcpbytes=8388608 vs.tcptime=90 vs.sync={ns_ip} vs.hold=150"
    );
    let mut guest = Guest::start_on_tap(&gdir, &qtap, &gmac, &append, tmp.path());
    let tap_up = wait_for(Duration::from_secs(30), || At::Root.dev_exists(&qtap));
    assert!(
        tap_up.is_some(),
        "timed out waiting for QEMU's tap {qtap}\n{}",
        guest.log_text()
    );
    let qmac = At::Root.mac(&qtap);

    let cfg = format!(
        "[[port]]\nname = \"{hp}\"\naddresses = [\"{host_ip}/24\"]\n\n\
         [[port]]\nname = \"{nstap}\"\nnetns = \"{nsn}\"\naddresses = [\"{ns_ip}/24\"]\n",
        nsn = ns.name
    );
    let path = config_file(tmp.path(), &cfg);
    let _host_addr = RootAddr::expect(&hp, &format!("{host_ip}/24"));
    let sw = Switchd::start(
        &["--config", path.to_str().unwrap(), "--ports", &qtap],
        &[&hp],
    );
    wait_placed(&sw, At::Root, &hp, &format!("{host_ip}/24"));
    wait_placed(&sw, At::Ns(&ns), &nstap, &format!("{ns_ip}/24"));
    let attached = wait_for(Duration::from_secs(10), || {
        sw.log_text()
            .contains(&format!("attached to it as raw:{qtap}"))
    });
    assert!(
        attached.is_some(),
        "timed out waiting for {qtap} attached as raw\n{}",
        sw.log_text()
    );
    let show = sw.ctl_json(&["show"]);
    let kind = port_info(&sw, &qtap).map(|p| p["kind"].as_str().unwrap_or_default().to_string());
    assert_eq!(kind.as_deref(), Some("raw"), "{show}");
    // What the host stack sends on the QEMU tap (there should be nothing);
    // QEMU left the tap down (script=no), the raw: port brought it up.
    let cap = Capture::start(
        At::Root,
        &qtap,
        &format!("ether src {qmac}"),
        280,
        tmp.path(),
    );

    let net = guest.wait_result("NET ", 120);
    assert!(net.contains(" UP "), "guest NIC: {net}");
    let nsa = At::Ns(&ns);
    let mut fails = Vec::new();
    if !nsa.ping(host_ip, 3) {
        fails.push(format!("ns -> host {host_ip}"));
    }
    if !nsa.ping_after_first(guest_ip, 3, Duration::from_secs(60)) {
        fails.push(format!("ns -> guest {guest_ip}"));
    }
    if !At::Root.ping(guest_ip, 3) {
        fails.push(format!("host -> guest {guest_ip}"));
    }
    // Let the guest finish: its barrier waits for "DONE" on ns:5200.
    let done_sh = tmp.path().join("done.sh");
    std::fs::write(&done_sh, "#!/bin/sh\necho DONE\n").unwrap();
    ok_chmod(&done_sh);
    let _done_srv = nsa.spawn(&[
        "timeout",
        "200",
        "busybox",
        "nc",
        "-ll",
        "-p",
        "5200",
        "-e",
        done_sh.to_str().unwrap(),
    ]);
    // Before the guest powers off: its tap vanishes then, and the port's
    // entries are flushed.
    let on_q = fdb_macs(&sw, &qtap);
    let exited = guest.wait_exit(240);
    let results = guest.results();
    let state = dump(&sw);
    assert!(
        fails.is_empty(),
        "pings failed: {fails:?}\nguest: {results:#?}\n{state}"
    );
    assert!(
        exited,
        "guest did not power off in time:\n{}",
        guest.log_text()
    );
    for want in [
        format!("PING {ns_ip} OK"),
        format!("PING {host_ip} OK"),
        format!("TCPTX {ns_ip}:5201 OK"),
        format!("TCPRX {ns_ip}:5201 OK"),
        "SYNC OK".to_string(),
    ] {
        assert!(
            results.iter().any(|l| l.starts_with(&want)),
            "guest: no `{want}`:\n{}\n{state}",
            guest.log_text()
        );
    }
    assert!(
        results
            .iter()
            .any(|l| l.starts_with("DONE") && l.ends_with("fail=0")),
        "guest: {results:#?}"
    );
    assert!(
        on_q.contains(&gmac),
        "guest {gmac} not learned on {qtap}: {on_q:?}"
    );
    for l in results.iter().filter(|l| l.starts_with("TCP")) {
        eprintln!("  guest {l}");
    }
    let sent = cap.finish();
    assert!(
        sent.is_empty(),
        "the host stack transmitted on the claimed QEMU tap: {sent:#?}"
    );
    done("4 mixed: QEMU guest, namespace, host port", t0);
}

fn ok_chmod(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}
