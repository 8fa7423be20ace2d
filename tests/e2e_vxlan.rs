//! End-to-end: `vxlan:` ports interoperating with the Linux kernel's vxlan.
//!
//! The underlay is a kernel bridge in its own namespace (198.19.7.0/24);
//! vswitchd's underlay address sits on a veth in the root namespace. Each
//! kernel VTEP is a namespace with a bridge, a `vxlan` device (VNI 100,
//! dstport 4789, learning, head-end replication by all-zero fdb entries)
//! and a workload namespace behind a veth. vswitchd has two TAP
//! workloads and one vxlan port: vswitchd's own encapsulation in the first
//! test, the same scenario with `encap = "kernel"` (a kernel vxlan device
//! vswitchd creates) in the second. The third joins two vswitchd.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::agent::Agent;
use support::cmd::{names, ok, require_root};
use support::frame::{BCAST, ETH_TEST, contains, frame, mac};
use support::net::{Link, Netns, Underlay, iface_exists, quiet_ipv6};
use support::state::{port_json, wait_ports_up};
use support::switchd::{Switchd, write_config};
use support::traffic::{Capture, iperf3, received_bytes};
use support::wait::{PATIENCE, wait_for};

const VNI: &str = "100";

/// A kernel VTEP: namespace `k` (bridge br0, vx0, the underlay veth) and a
/// workload namespace `w` behind veth `wl`.
struct KernelVtep {
    k: Netns,
    w: Netns,
    ip: String,
    wl_ip: String,
    /// Its veth's name on the underlay bridge.
    uplink: String,
}

impl KernelVtep {
    fn new(
        base: &str,
        i: usize,
        under: &mut Underlay,
        (ip, dstport): (&str, &str),
        wl_ip: &str,
    ) -> KernelVtep {
        let k = Netns::new(&format!("{base}k{i}"));
        let w = Netns::new(&format!("{base}w{i}"));
        quiet_ipv6(&k);
        quiet_ipv6(&w);
        let uplink = under.attach(&k, "eth0", ip);
        k.ip(&["link", "add", "br0", "type", "bridge"]);
        k.ip(&[
            "link", "add", "vx0", "type", "vxlan", "id", VNI, "local", ip, "dstport", dstport,
        ]);
        k.ip(&["link", "set", "vx0", "master", "br0", "up"]);
        k.ip(&[
            "link", "add", "kw", "type", "veth", "peer", "name", "wl", "netns", &w.name,
        ]);
        k.ip(&["link", "set", "kw", "master", "br0", "up"]);
        k.ip(&["link", "set", "br0", "up"]);
        w.ip(&["link", "set", "wl", "mtu", "1450"]);
        w.ip(&["addr", "add", &format!("{wl_ip}/24"), "dev", "wl"]);
        w.ip(&["link", "set", "wl", "up"]);
        KernelVtep {
            k,
            w,
            ip: ip.into(),
            wl_ip: wl_ip.into(),
            uplink,
        }
    }

    /// Head-end replication to `dst`, as the kernel does it.
    fn flood_to(&self, dst: &str) {
        self.k.at().ok(&[
            "bridge",
            "fdb",
            "append",
            "00:00:00:00:00:00",
            "dev",
            "vx0",
            "dst",
            dst,
        ]);
    }

    /// `bridge fdb show dev vx0`.
    fn fdb(&self) -> String {
        self.k.at().ok(&["bridge", "fdb", "show", "dev", "vx0"])
    }
}

/// vswitchd with TAP workloads `hosts` (namespace, address) and one
/// vxlan port, from a config file.
fn start_switchd(dir: &Path, taps: &[(String, &Netns, String)], vxlan: &str) -> Switchd {
    let mut cfg = String::new();
    for (tap, ns, ip) in taps {
        cfg.push_str(&format!(
            "[[port]]\nname = \"{tap}\"\nnetns = \"{}\"\naddresses = [\"{ip}/24\"]\nmtu = 1450\n\n",
            ns.name
        ));
    }
    cfg.push_str(vxlan);
    let path = dir.join(format!("{}.toml", taps[0].0));
    write_config(&path, &cfg);
    let sw = Switchd::start(&["--config", path.to_str().unwrap()], &[]);
    let names: Vec<String> = taps.iter().map(|t| t.0.clone()).collect();
    wait_ports_up(&sw, &names);
    sw
}

fn vxlan_section(port: &str, local: &str, remotes: &[&str]) -> String {
    let r: Vec<String> = remotes.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[[port]]\nname = \"{port}\"\nvni = {VNI}\nlocal = \"{local}\"\nremote = [{}]\n",
        r.join(", ")
    )
}

/// The vxlan port of the tests with vswitchd's own encapsulation.
const PORT: &str = "vxlan:vx100";

/// A remote's row in `show` for the vxlan port.
fn remote_row(sw: &Switchd, remote: &str) -> Value {
    let show = sw.ctl_json(&["show"]);
    let p = port_json(&show, PORT);
    p["vxlan"]["remotes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["remote"] == remote).cloned())
        .unwrap_or(Value::Null)
}

fn drop_count(row: &Value, reason: &str) -> u64 {
    row["drops"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|x| x[0] == reason)
                .and_then(|x| x[1].as_u64())
        })
        .unwrap_or(0)
}

/// The vxlan port's remote for `mac` in `fdb show`.
fn fdb_remote(sw: &Switchd, mac: &str) -> Option<(String, String)> {
    sw.ctl_json(&["fdb", "show"])
        .as_array()?
        .iter()
        .find(|e| e["mac"].as_str().map(str::to_lowercase).as_deref() == Some(mac))
        .map(|e| {
            (
                e["port"].as_str().unwrap_or("").to_string(),
                e["remote"].as_str().unwrap_or("").to_string(),
            )
        })
}

fn ping_eventually(from: &Netns, to: &str) -> bool {
    wait_for(PATIENCE, || from.ping(to, 2)).is_some()
}

/// Frames in a capture whose bytes hold `marker`.
fn with_marker(frames: &[(String, Vec<u8>)], marker: &[u8]) -> usize {
    frames.iter().filter(|(_, b)| contains(b, marker)).count()
}

#[test]
fn vswitchd_and_two_kernel_vteps() {
    with_two_kernel_vteps("vswitchd", 7, "4789");
}

/// The same scenario with `encap = "kernel"`, on its own underlay and UDP
/// port (the kernel device binds the port on every address of vswitchd's
/// namespace, which the first test's vxlan socket shares).
#[test]
fn kernel_encap_and_two_kernel_vteps() {
    with_two_kernel_vteps("kernel", 6, "4790");
}

/// vswitchd (underlay 198.19.NET.1, TAP workloads 198.18.(70+NET).1-2) and
/// two kernel VTEPs (198.19.NET.2-3, workloads .11-12), all on `dstport`;
/// vswitchd's vxlan port encapsulates with `encap`.
fn with_two_kernel_vteps(encap: &str, net: u8, dstport: &str) {
    require_root();
    let base = names("vvx");
    let dir = tempfile::tempdir().unwrap();
    let kernel = encap == "kernel";
    // A kernel device is made in vswitchd's namespace (the root one): its
    // name is the test's own, and it goes at the end even if vswitchd
    // could not delete it.
    let port = if kernel {
        format!("vxlan:{base}x")
    } else {
        PORT.to_string()
    };
    let dev = port["vxlan:".len()..].to_string();
    let _dev = kernel.then(|| Link(dev.clone()));
    let under_ip = |i: usize| format!("198.19.{net}.{i}");
    let wl_ip = |i: usize| format!("198.18.{}.{i}", 70 + net);
    let mut under = Underlay::new(&base, &[&under_ip(1)]);
    let k: Vec<KernelVtep> = (0..2)
        .map(|i| {
            KernelVtep::new(
                &base,
                i,
                &mut under,
                (&under_ip(i + 2), dstport),
                &wl_ip(i + 11),
            )
        })
        .collect();
    k[0].flood_to(&under_ip(1));
    k[0].flood_to(&k[1].ip);
    k[1].flood_to(&under_ip(1));
    k[1].flood_to(&k[0].ip);
    let h: Vec<Netns> = (0..2)
        .map(|i| {
            let n = Netns::new(&format!("{base}h{i}"));
            quiet_ipv6(&n);
            n
        })
        .collect();
    let taps: Vec<(String, &Netns, String)> = (0..2)
        .map(|i| (format!("{base}t{i}"), &h[i], wl_ip(i + 1)))
        .collect();
    let section = format!(
        "{}dstport = {dstport}\nencap = \"{encap}\"\n",
        vxlan_section(&port, &under_ip(1), &[&k[0].ip, &k[1].ip])
    );
    let sw = start_switchd(dir.path(), &taps, &section);

    // Every pair of the four workloads pings.
    let hosts: Vec<(&Netns, String, String)> = vec![
        (&h[0], taps[0].2.clone(), taps[0].0.clone()),
        (&h[1], taps[1].2.clone(), taps[1].0.clone()),
        (&k[0].w, k[0].wl_ip.clone(), "wl".into()),
        (&k[1].w, k[1].wl_ip.clone(), "wl".into()),
    ];
    for (a, (ns, _, _)) in hosts.iter().enumerate() {
        for (b, (_, ip, _)) in hosts.iter().enumerate() {
            if a != b {
                assert!(
                    ping_eventually(ns, ip),
                    "{a} cannot ping {b} ({ip}): {}\n{}",
                    sw.ctl_ok(&["show"]),
                    sw.log_text()
                );
            }
        }
    }

    // The kernel VTEPs learned vswitchd's workloads behind its address,
    // and vswitchd learned theirs behind each VTEP's.
    let h0_mac = h[0].mac(&taps[0].0).to_lowercase();
    for kv in &k {
        let fdb = kv.fdb();
        assert!(
            fdb.lines()
                .any(|l| l.contains(&h0_mac) && l.contains(&format!("dst {}", under_ip(1)))),
            "{} did not learn {h0_mac} behind {}:\n{fdb}",
            kv.ip,
            under_ip(1)
        );
    }
    for kv in &k {
        let m = kv.w.mac("wl").to_lowercase();
        let entry = fdb_remote(&sw, &m);
        if kernel {
            // vswitchd has the MAC on the port; the kernel device, behind
            // which VTEP.
            assert_eq!(entry.map(|e| e.0), Some(port.clone()));
            let fdb = ok(&["bridge", "fdb", "show", "dev", &dev]);
            assert!(
                fdb.lines()
                    .any(|l| l.contains(&m) && l.contains(&format!("dst {}", kv.ip))),
                "{dev} did not learn {m} behind {}:\n{fdb}",
                kv.ip
            );
        } else {
            assert_eq!(
                entry,
                Some((port.clone(), kv.ip.clone())),
                "vswitchd's entry for {m}:\n{}",
                sw.ctl_ok(&["fdb", "show"])
            );
        }
    }

    // A broadcast from a vswitchd workload reaches every other workload
    // exactly once, and each kernel VTEP gets exactly one encapsulated copy.
    let mut agents: Vec<Agent> = hosts
        .iter()
        .map(|(ns, _, dev)| Agent::start(ns, dev))
        .collect();
    let caps: Vec<Capture> = k
        .iter()
        .map(|kv| {
            let filter = format!("udp port {dstport}");
            Capture::start(under.u.at(), &kv.uplink, &filter, 30, dir.path())
        })
        .collect();
    let marker = format!("VXBCAST{base}");
    let src = mac(&h0_mac);
    agents[0].send(&frame(BCAST, src, &[], ETH_TEST, marker.as_bytes()));
    for a in agents.iter_mut().skip(1) {
        assert!(
            a.wait_marker(marker.as_bytes(), PATIENCE),
            "{} never saw the broadcast",
            a.host
        );
    }
    // Then a unicast to the first kernel workload (learned by now).
    let w0_mac = mac(&k[0].w.mac("wl"));
    let umarker = format!("VXUCAST{base}");
    agents[0].send(&frame(w0_mac, src, &[], ETH_TEST, umarker.as_bytes()));
    assert!(agents[2].wait_marker(umarker.as_bytes(), PATIENCE));
    std::thread::sleep(Duration::from_millis(500));
    for a in agents.iter_mut() {
        a.poll();
    }
    for a in agents.iter().skip(1) {
        assert_eq!(
            a.with_marker(marker.as_bytes()).len(),
            1,
            "{}: broadcast not seen exactly once",
            a.host
        );
    }
    assert_eq!(agents[3].with_marker(umarker.as_bytes()).len(), 0);
    let seen: Vec<Vec<(String, Vec<u8>)>> = caps.into_iter().map(|c| c.frames()).collect();
    for (i, f) in seen.iter().enumerate() {
        assert_eq!(
            with_marker(f, marker.as_bytes()),
            1,
            "VTEP {i} got the broadcast encapsulated not exactly once"
        );
        // Outer UDP to 4789 with the VNI in the header (42 bytes in).
        let (_, bytes) = f
            .iter()
            .find(|(_, b)| contains(b, marker.as_bytes()))
            .unwrap();
        assert_eq!(
            &bytes[42..50],
            &[0x08, 0, 0, 0, 0, 0, 100, 0],
            "VXLAN header"
        );
    }
    assert_eq!(with_marker(&seen[0], umarker.as_bytes()), 1);
    assert_eq!(
        with_marker(&seen[1], umarker.as_bytes()),
        0,
        "known unicast went to the wrong VTEP too"
    );
    drop(agents);

    // TCP across the tunnel, both ways, from an offloading TAP.
    for (dir_name, extra) in [("to kernel VTEP", None), ("from kernel VTEP", Some("-R"))] {
        let mut args = vec!["-t", "3"];
        args.extend(extra);
        let report = iperf3(k[0].w.at(), &k[0].wl_ip, h[0].at(), &args);
        let got = received_bytes(&report);
        eprintln!(
            "iperf3 vswitchd TAP {dir_name}: {got} bytes in 3 s = {:.2} Gbit/s",
            got as f64 * 8.0 / 3.0 / 1e9
        );
        assert!(
            got > 1_000_000,
            "iperf3 {dir_name}: only {got} bytes\n{}",
            sw.ctl_ok(&["stats"])
        );
    }

    if kernel {
        kernel_device_lifecycle(sw, &port, &dev, (&under_ip(1), dstport), &k, &h[0]);
        return;
    }

    // Crafted datagrams from a VTEP's address: wrong VNI, I flag clear,
    // truncated. Each is dropped and counted against that remote.
    let before = remote_row(&sw, &k[0].ip);
    let py = "import socket,sys\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
f=bytes.fromhex('ffffffffffff020000000001' '88b5') + b'crafted'\n\
for p in [bytes([8,0,0,0,0,0,101,0])+f, bytes([0,0,0,0,0,0,100,0])+f, bytes([8,0,0,0,0])]: s.sendto(p,('198.19.7.1',4789))\n";
    k[0].k.at().ok(&["/usr/bin/python3", "-c", py]);
    let counted = wait_for(PATIENCE, || {
        let r = remote_row(&sw, &k[0].ip);
        ["wrong_vni", "no_i_flag", "truncated"]
            .iter()
            .all(|d| drop_count(&r, d) == drop_count(&before, d) + 1)
    });
    assert!(
        counted.is_some(),
        "crafted datagrams not counted: {}",
        remote_row(&sw, &k[0].ip)
    );
    let r = remote_row(&sw, &k[0].ip);
    assert!(r["rx_frames"].as_u64().unwrap() > 0, "{r}");
    assert!(r["tx_frames"].as_u64().unwrap() > 0, "{r}");
    assert!(r["flood"].as_bool().unwrap(), "{r}");
    // vswitchctl show lists the remotes for people too.
    let text = sw.ctl_ok(&["show"]);
    assert!(
        text.contains("vni 100") && text.contains("198.19.7.2"),
        "{text}"
    );
    let mut sw = sw;
    assert!(sw.alive());
}

/// With `encap = "kernel"`: the device goes with the port and comes back
/// with `vswitchctl port add --encap kernel`; a device vswitchd did not make
/// is left alone and the port refused, one it made (by its alias) is
/// replaced; the device goes when vswitchd stops.
fn kernel_device_lifecycle(
    sw: Switchd,
    port: &str,
    dev: &str,
    (local, dstport): (&str, &str),
    k: &[KernelVtep],
    h0: &Netns,
) {
    let text = sw.ctl_ok(&["show"]);
    assert!(
        text.contains(&format!("{port}: vni {VNI}")) && text.contains("encap kernel"),
        "{text}"
    );
    let show = sw.ctl_json(&["show"]);
    assert_eq!(port_json(&show, port)["vxlan"]["encap"], "kernel");
    sw.ctl_ok(&["port", "del", port]);
    assert!(
        wait_for(PATIENCE, || (!iface_exists(dev)).then_some(())).is_some(),
        "{dev} outlived its port"
    );
    let add = |extra: &[&str]| {
        let mut a = vec![
            "port",
            "add",
            port,
            "--vni",
            VNI,
            "--local",
            local,
            "--dstport",
            dstport,
        ];
        for kv in k {
            a.extend(["--remote", kv.ip.as_str()]);
        }
        a.extend(extra);
        sw.ctl(&a)
    };
    // Someone else's interface of that name is not taken over.
    ok(&["ip", "link", "add", dev, "type", "bridge"]);
    let refused = add(&["--encap", "kernel"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("vswitchd did not make it"), "{err}");
    assert!(
        ok(&["ip", "-d", "link", "show", dev]).contains("bridge"),
        "the other interface was touched"
    );
    // One left by a vswitchd that was killed (its alias says so) is
    // replaced.
    ok(&["ip", "link", "set", dev, "alias", "vswitchd vxlan port"]);
    let added = add(&["--encap", "kernel"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let link = ok(&["ip", "-d", "link", "show", dev]);
    assert!(
        link.contains(&format!("vxlan id {VNI}")) && link.contains(&format!("dstport {dstport}")),
        "{link}"
    );
    assert!(
        ping_eventually(h0, &k[1].wl_ip),
        "no ping across the re-added port: {}",
        sw.ctl_ok(&["show"])
    );
    drop(sw);
    assert!(!iface_exists(dev), "{dev} outlived vswitchd");
}

#[test]
fn two_vswitchd_hosts() {
    require_root();
    let base = names("vvx");
    let dir = tempfile::tempdir().unwrap();
    // Both daemons' underlay addresses on the root veth; a kernel VTEP on
    // the underlay bridge too, so the segment is mixed.
    let mut under = Underlay::new(&base, &["198.19.8.1", "198.19.8.2"]);
    let kv = KernelVtep::new(&base, 0, &mut under, ("198.19.8.3", "4789"), "198.18.78.21");
    kv.flood_to("198.19.8.1");
    kv.flood_to("198.19.8.2");
    let mk = |i: usize| {
        let n = Netns::new(&format!("{base}h{i}"));
        quiet_ipv6(&n);
        n
    };
    let (ha, hb) = (mk(0), mk(1));
    let ta = vec![(format!("{base}a"), &ha, "198.18.78.1".to_string())];
    let tb = vec![(format!("{base}b"), &hb, "198.18.78.2".to_string())];
    let swa = start_switchd(
        dir.path(),
        &ta,
        &vxlan_section(PORT, "198.19.8.1", &["198.19.8.2", "198.19.8.3"]),
    );
    // B's tunnel comes at run time, by `vswitchctl port add`.
    let swb = start_switchd(dir.path(), &tb, "");
    swb.ctl_ok(&[
        "port",
        "add",
        "vxlan:vx100",
        "--vni",
        VNI,
        "--local",
        "198.19.8.2",
        "--remote",
        "198.19.8.1",
        "--remote",
        "198.19.8.3",
    ]);
    let bad = swb.ctl(&[
        "port",
        "add",
        "vxlan:bad",
        "--vni",
        "16777216",
        "--local",
        "198.19.8.2",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("0 to 16777215"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    for (from, to) in [
        (&ha, "198.18.78.2"),
        (&hb, "198.18.78.1"),
        (&ha, "198.18.78.21"),
        (&kv.w, "198.18.78.2"),
    ] {
        assert!(
            ping_eventually(from, to),
            "{} cannot ping {to}: {}\n{}",
            from.name,
            swa.ctl_ok(&["show"]),
            swb.ctl_ok(&["show"])
        );
    }
    let mb = hb.mac(&tb[0].0).to_lowercase();
    assert_eq!(
        fdb_remote(&swa, &mb),
        Some(("vxlan:vx100".to_string(), "198.19.8.2".to_string()))
    );
    let report = iperf3(hb.at(), "198.18.78.2", ha.at(), &["-t", "3"]);
    let got = received_bytes(&report);
    eprintln!(
        "iperf3 vswitchd -> vswitchd: {got} bytes in 3 s = {:.2} Gbit/s",
        got as f64 * 8.0 / 3.0 / 1e9
    );
    assert!(got > 1_000_000, "only {got} bytes");
}

/// New tunnel settings by reload re-open the port in place: another flood
/// list, then the kernel's encapsulation, then vswitchd's again. (The old
/// port's sockets once outlived it during the re-open: the new ones could
/// not bind, and the port was lost.)
#[test]
fn tunnel_settings_change_by_reload() {
    require_root();
    let base = names("vvx");
    let dir = tempfile::tempdir().unwrap();
    // Its own underlay and UDP port: the kernel device binds the port on
    // every address of the root namespace.
    let _under = Underlay::new(&base, &["198.19.5.1"]);
    let port = format!("vxlan:{base}x");
    let dev = port["vxlan:".len()..].to_string();
    let _dev = Link(dev.clone());
    let path = dir.path().join("vx.toml");
    let write = |remote: &str, encap: &str| {
        write_config(
            &path,
            &format!(
                "{}dstport = 4791\nencap = \"{encap}\"\n",
                vxlan_section(&port, "198.19.5.1", &[remote])
            ),
        )
    };
    write("198.19.5.2", "vswitchd");
    let sw = Switchd::start(&["--config", path.to_str().unwrap()], &[]);
    let remotes = |sw: &Switchd| -> Vec<String> {
        let show = sw.ctl_json(&["show"]);
        port_json(&show, &port)["vxlan"]["remotes"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| r["remote"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(remotes(&sw), ["198.19.5.2"]);
    for (remote, encap) in [
        ("198.19.5.3", "vswitchd"),
        ("198.19.5.3", "kernel"),
        ("198.19.5.2", "vswitchd"),
    ] {
        write(remote, encap);
        let out = sw.ctl(&["reload"]);
        assert!(
            out.status.success(),
            "reload to {remote}, encap {encap}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sw.log_text()
        );
        let show = sw.ctl_json(&["show"]);
        assert_eq!(
            port_json(&show, &port)["vxlan"]["encap"],
            encap,
            "{}",
            sw.ctl_ok(&["show"])
        );
        if encap == "kernel" {
            let fdb = ok(&["bridge", "fdb", "show", "dev", &dev]);
            assert!(fdb.contains(&format!("dst {remote}")), "{fdb}");
        } else {
            assert_eq!(remotes(&sw), [remote]);
            assert!(!iface_exists(&dev), "the kernel device outlived its mode");
        }
    }
    // `port set` re-opens it too (learning is a tunnel setting).
    sw.ctl_ok(&["port", "set", &port, "--learning", "off"]);
    assert_eq!(remotes(&sw), ["198.19.5.2"]);
    let mut sw = sw;
    assert!(sw.alive());
}
