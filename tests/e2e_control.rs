//! End-to-end tests of the control plane against a live vswitchd: the
//! control socket and vswitchctl, the config file and SIGHUP reload with
//! traffic flowing, hot-plug of vanished interfaces, systemd readiness,
//! and the files under dist/.
//!
//! Run as root: `cargo test --release --test e2e_control`. Addresses:
//! 198.18.100.0/24 - 198.18.107.0/24, one /24 per test.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::agent::{Agent, send_frames};
use support::cmd::{
    Bg, names, ok, out3, repo, require_root, run, signal, vswitchctl_bin, vswitchd_bin,
};
use support::frame::{fake_mac, test_frame as frame};
use support::net::{Link, Netns, iface_exists, quiet_ipv6};
use support::state::{fdb, fdb_port_of, port_info, port_names, port_state};
use support::switchd::{Lan, Switchd, write_config};
use support::traffic::BgPing;
use support::wait::{PATIENCE, wait_for};

const BCAST: &str = "ff:ff:ff:ff:ff:ff";

/// Sends `frames` from (ns, dev) followed by a broadcast fence from the same
/// port, and returns an agent per sniffed port holding what it saw. The
/// switch handles one port's frames in order, so a frame that reaches a
/// sniffed port at all arrives before the fence: "not seen" is a real
/// absence, not a race.
fn exchange(
    from: (&Netns, &str, &str),
    frames: Vec<Vec<u8>>,
    sniff: &[(&Netns, &str)],
    tag: &str,
) -> Vec<Agent> {
    let (ns, dev, src_mac) = from;
    let fence = format!("FENCE-{tag}-{}", std::process::id()).into_bytes();
    let mut sniffers: Vec<Agent> = sniff.iter().map(|(n, d)| Agent::start(n, d)).collect();
    let mut all = frames;
    all.push(frame(BCAST, src_mac, &fence));
    send_frames(ns, dev, &all);
    for (i, a) in sniffers.iter_mut().enumerate() {
        assert!(
            a.wait_marker(&fence, PATIENCE),
            "[{tag}] the broadcast fence never reached {}",
            sniff[i].1
        );
    }
    sniffers
}

/// `vswitchctl port add` on a live switch, forwarding through the new
/// port, `fdb show` against the traffic, `fdb flush`, static entries, and
/// `port del`.
#[test]
fn ctl_port_add_fdb_flush_static_and_del() {
    require_root();
    let b = names("ca");
    let t: Vec<String> = (0..3).map(|i| format!("{b}t{i}")).collect();
    let ns: Vec<Netns> = (0..3).map(|i| Netns::new(&format!("{b}n{i}"))).collect();
    for n in &ns {
        quiet_ipv6(n);
    }
    let sw = Switchd::start(&["--ports", &format!("{},{}", t[0], t[1])], &[&t[0], &t[1]]);
    ns[0].take(&t[0], "198.18.100.1/24");
    ns[1].take(&t[1], "198.18.100.2/24");

    // A TAP added while the switch runs, then moved into a namespace.
    let out = sw.ctl_ok(&["port", "add", &t[2]]);
    assert!(out.contains(&t[2]) && out.contains("added"), "{out}");
    assert!(
        wait_for(Duration::from_secs(10), || iface_exists(&t[2])).is_some(),
        "port add did not create TAP {}",
        t[2]
    );
    ns[2].take(&t[2], "198.18.100.3/24");
    assert_eq!(port_state(&sw, &t[2]).as_deref(), Some("up"));
    assert!(
        ns[0].ping("198.18.100.3", 3),
        "no forwarding to the added port"
    );
    assert!(
        ns[1].ping("198.18.100.3", 3),
        "no forwarding to the added port"
    );
    assert!(ns[0].ping("198.18.100.2", 3));

    // The FDB holds exactly the three namespaces' MACs, each on its port.
    let macs: Vec<String> = (0..3).map(|i| ns[i].mac(&t[i]).to_lowercase()).collect();
    let mut want: Vec<(String, String, bool)> = (0..3)
        .map(|i| (macs[i].clone(), t[i].clone(), false))
        .collect();
    want.sort();
    let mut got = fdb(&sw);
    got.sort();
    assert_eq!(got, want, "fdb show --json vs the traffic sent");
    let one = sw.ctl_json(&["fdb", "show", "--port", &t[1]]);
    assert_eq!(one.as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(
        one[0]["mac"].as_str().map(str::to_lowercase),
        Some(macs[1].clone())
    );
    assert_eq!(one[0]["vlan"], 1);
    let table = sw.ctl_ok(&["fdb", "show"]);
    assert!(
        table.lines().next().unwrap_or("").contains("MAC"),
        "{table}"
    );
    for (i, m) in macs.iter().enumerate() {
        assert!(
            table
                .lines()
                .any(|l| l.contains(m.as_str()) && l.contains(&t[i]) && l.contains("learned")),
            "{m} on {} missing from:\n{table}",
            t[i]
        );
    }
    assert!(table.contains("3 entries"), "{table}");

    // A MAC only ns1 uses (so nothing else can re-learn it).
    let m = fake_mac(1);
    send_frames(&ns[1], &t[1], &[frame(BCAST, &m, b"learn me")]);
    assert!(
        wait_for(Duration::from_secs(10), || fdb_port_of(&sw, &m)
            == Some((t[1].clone(), false)))
        .is_some(),
        "{m} not learned on {}",
        t[1]
    );
    // Known unicast goes to t1 only.
    let got = exchange(
        (&ns[0], &t[0], &macs[0]),
        vec![frame(&m, &macs[0], b"MARK-known")],
        &[(&ns[1], &t[1]), (&ns[2], &t[2])],
        "known",
    );
    assert!(got[0].seen(b"MARK-known"), "known unicast did not reach t1");
    assert!(!got[1].seen(b"MARK-known"), "known unicast was flooded");

    // After a flush, the next frame to it floods.
    let out = sw.ctl_ok(&["fdb", "flush"]);
    assert!(out.starts_with("flushed "), "{out}");
    assert_eq!(fdb_port_of(&sw, &m), None, "flush left {m}");
    let got = exchange(
        (&ns[0], &t[0], &macs[0]),
        vec![frame(&m, &macs[0], b"MARK-flooded")],
        &[(&ns[1], &t[1]), (&ns[2], &t[2])],
        "flush",
    );
    assert!(got[0].seen(b"MARK-flooded"), "flooded frame missing on t1");
    assert!(
        got[1].seen(b"MARK-flooded"),
        "after fdb flush the frame was not flooded to t2"
    );

    // A static entry wins over learning.
    let s = fake_mac(2);
    sw.ctl_ok(&["fdb", "add", &s, "--port", &t[2]]);
    assert_eq!(fdb_port_of(&sw, &s), Some((t[2].clone(), true)));
    // Frames from that MAC on t1; the fence from ns1's own MAC proves the
    // switch has read them before we look at the FDB.
    exchange(
        (&ns[1], &t[1], &macs[1]),
        vec![
            frame(BCAST, &s, b"move me"),
            frame(&macs[0], &s, b"move me"),
            frame(BCAST, &s, b"move me"),
        ],
        &[(&ns[0], &t[0])],
        "move",
    );
    assert_eq!(
        fdb_port_of(&sw, &s),
        Some((t[2].clone(), true)),
        "learning moved a static entry"
    );
    let got = exchange(
        (&ns[0], &t[0], &macs[0]),
        vec![frame(&s, &macs[0], b"MARK-static")],
        &[(&ns[1], &t[1]), (&ns[2], &t[2])],
        "static",
    );
    assert!(
        got[1].seen(b"MARK-static"),
        "frame to the static MAC missed t2"
    );
    assert!(
        !got[0].seen(b"MARK-static"),
        "frame to the static MAC reached t1"
    );
    // Flush keeps static entries; del removes them.
    sw.ctl_ok(&["fdb", "flush"]);
    assert_eq!(fdb_port_of(&sw, &s), Some((t[2].clone(), true)));
    let table = sw.ctl_ok(&["fdb", "show"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains(&s) && l.contains("static")),
        "{table}"
    );
    sw.ctl_ok(&["fdb", "del", &s]);
    assert_eq!(fdb_port_of(&sw, &s), None);
    let (ok, _, err) = out3(&sw.ctl(&["fdb", "del", &s]));
    assert!(!ok && err.contains("no FDB entry"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["fdb", "add", "01:00:5e:00:00:01", "--port", &t[0]]));
    assert!(!ok && err.contains("unicast"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["fdb", "add", &s, "--port", "nosuchport"]));
    assert!(!ok && err.contains("no port named"), "{err}");

    // port del: gone from show, its TAP disappears, its MACs are forgotten.
    assert!(ns[0].ping("198.18.100.3", 3));
    assert!(fdb(&sw).iter().any(|(_, p, _)| *p == t[2]));
    sw.ctl_ok(&["port", "del", &t[2]]);
    assert!(port_info(&sw, &t[2]).is_none(), "port del left {}", t[2]);
    assert!(
        wait_for(Duration::from_secs(10), || !ns[2]
            .exec(&["ip", "link", "show", &t[2]])
            .status
            .success())
        .is_some(),
        "TAP {} still exists after port del",
        t[2]
    );
    assert!(
        fdb(&sw).iter().all(|(_, p, _)| *p != t[2]),
        "FDB entries of a deleted port remain"
    );
    let (ok, _, err) = out3(&sw.ctl(&["port", "del", &t[2]]));
    assert!(!ok && err.contains("no port named"), "{err}");
    assert!(
        ns[0].ping("198.18.100.2", 3),
        "remaining ports stopped forwarding"
    );
}

/// `port set` flags and `set ageing` take effect at once; `show` and
/// `stats` tables and their JSON are sane.
#[test]
fn ctl_port_set_ageing_and_tables() {
    require_root();
    // Dropped in reverse: the switch first, then the namespaces.
    let Lan {
        ns, taps: t, sw, ..
    } = Lan::new("cb", 3, 101);
    assert!(ns[0].ping("198.18.101.2", 3));
    assert!(ns[0].ping("198.18.101.3", 3));
    assert!(ns[1].ping("198.18.101.3", 3));
    let macs: Vec<String> = (0..3).map(|i| ns[i].mac(&t[i]).to_lowercase()).collect();

    // Tables.
    let show = sw.ctl_ok(&["show"]);
    let mut lines = show.lines();
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with("vswitchd ") && head.contains("ageing 300 s") && head.contains("/8192"),
        "{show}"
    );
    let cols = lines.next().unwrap_or_default();
    for c in ["ID", "PORT", "KIND", "STATE", "RX", "TX", "DROPS"] {
        assert!(cols.contains(c), "column {c} missing: {show}");
    }
    for p in &t {
        assert!(
            show.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(1) == Some(&p.as_str()) && w.get(2) == Some(&"tap") && w.get(3) == Some(&"up")
            }),
            "{p} not shown as an up tap:\n{show}"
        );
    }
    let stats = sw.ctl_ok(&["stats"]);
    for p in &t {
        assert!(stats.contains(&format!("{p} (tap, up)")), "{stats}");
    }
    assert!(
        stats.contains("  rx ") && stats.contains("  tx "),
        "{stats}"
    );
    assert!(stats.contains(" of 8192 entries"), "{stats}");
    for cmd in ["show", "stats"] {
        let j = sw.ctl_json(&[cmd]);
        assert_eq!(j["fdb_capacity"], 8192, "{j}");
        assert_eq!(j["ageing_seconds"], 300, "{j}");
        assert_eq!(j["vlan_filtering"], false, "{j}");
        let ports = j["ports"].as_array().expect("ports");
        assert_eq!(ports.len(), 3, "{j}");
        for p in ports {
            assert_eq!(p["state"], "up", "{p}");
            assert_eq!(p["kind"], "tap", "{p}");
            let c = &p["counters"];
            assert!(c["rx_frames"].as_u64().unwrap_or(0) > 0, "{p}");
            assert!(c["tx_frames"].as_u64().unwrap_or(0) > 0, "{p}");
            assert!(
                c["rx_bytes"].as_u64().unwrap_or(0) >= 42 * c["rx_frames"].as_u64().unwrap_or(0),
                "{p}"
            );
        }
    }

    // Isolation: t0 and t1 isolated cannot talk; both still reach t2.
    sw.ctl_ok(&["port", "set", &t[0], "--isolated", "on"]);
    sw.ctl_ok(&["port", "set", &t[1], "--isolated", "on"]);
    assert_eq!(port_info(&sw, &t[0]).unwrap()["isolated"], true);
    assert!(
        sw.ctl_ok(&["show"])
            .lines()
            .any(|l| l.contains(&t[1]) && l.contains("isolated")),
        "flags column"
    );
    assert!(!ns[0].ping("198.18.101.2", 3), "isolated ports talk");
    assert!(
        ns[0].ping("198.18.101.3", 3),
        "isolated port cannot reach a normal one"
    );
    assert!(
        ns[1].ping("198.18.101.3", 3),
        "isolated port cannot reach a normal one"
    );
    sw.ctl_ok(&["port", "set", &t[0], "--isolated", "off"]);
    sw.ctl_ok(&["port", "set", &t[1], "--isolated", "off"]);
    assert!(
        ns[0].ping("198.18.101.2", 5),
        "isolation off did not restore traffic"
    );

    // flood off: unknown unicast skips t2, broadcast still reaches it.
    sw.ctl_ok(&["port", "set", &t[2], "--flood", "off"]);
    assert_eq!(port_info(&sw, &t[2]).unwrap()["flood"], false);
    let unknown = fake_mac(9);
    let got = exchange(
        (&ns[0], &t[0], &macs[0]),
        vec![frame(&unknown, &macs[0], b"MARK-unknown")],
        &[(&ns[1], &t[1]), (&ns[2], &t[2])],
        "noflood",
    );
    assert!(got[0].seen(b"MARK-unknown"));
    assert!(!got[1].seen(b"MARK-unknown"), "flood off, yet flooded");
    sw.ctl_ok(&["port", "set", &t[2], "--flood", "on"]);
    let got = exchange(
        (&ns[0], &t[0], &macs[0]),
        vec![frame(&unknown, &macs[0], b"MARK-unknown2")],
        &[(&ns[2], &t[2])],
        "flood",
    );
    assert!(got[0].seen(b"MARK-unknown2"), "flood on, yet not flooded");

    // learning off: new MACs on t1 are not learned; on again: they are.
    let m = fake_mac(3);
    sw.ctl_ok(&["port", "set", &t[1], "--learning", "off"]);
    assert!(
        sw.ctl_ok(&["show"])
            .lines()
            .any(|l| l.contains(&t[1]) && l.contains("no-learning"))
    );
    exchange(
        (&ns[1], &t[1], &m),
        vec![frame(BCAST, &m, b"learn?")],
        &[(&ns[0], &t[0])],
        "nolearn",
    );
    assert_eq!(fdb_port_of(&sw, &m), None, "learned with learning off");
    sw.ctl_ok(&[
        "port",
        "set",
        &t[1],
        "--learning",
        "on",
        "--mac-limit",
        "64",
    ]);
    exchange(
        (&ns[1], &t[1], &m),
        vec![frame(BCAST, &m, b"learn!")],
        &[(&ns[0], &t[0])],
        "learn",
    );
    assert_eq!(fdb_port_of(&sw, &m), Some((t[1].clone(), false)));
    assert_eq!(port_info(&sw, &t[1]).unwrap()["mac_limit"], 64);

    // VLANs: t2 alone in VLAN 10 is cut off; back to no VLAN, it is not.
    sw.ctl_ok(&["port", "set", &t[2], "--access", "10"]);
    let p2 = port_info(&sw, &t[2]).unwrap();
    assert_eq!(p2["vlan"], "access 10", "{p2}");
    assert_eq!(sw.ctl_json(&["show"])["vlan_filtering"], true);
    assert!(!ns[0].ping("198.18.101.3", 3), "VLAN 1 reached VLAN 10");
    sw.ctl_ok(&["port", "set", &t[2], "--no-vlan"]);
    assert!(
        ns[0].ping("198.18.101.3", 5),
        "--no-vlan did not restore traffic"
    );
    let (ok, _, err) = out3(&sw.ctl(&["port", "set", "nosuchport", "--flood", "on"]));
    assert!(!ok && err.contains("no port named"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["port", "set", &t[2], "--access", "5000"]));
    assert!(!ok && err.contains("1-4094"), "{err}");

    // Ageing: a MAC nobody refreshes leaves the table within the new time.
    let (ok, _, err) = out3(&sw.ctl(&["set", "ageing", "5"]));
    assert!(!ok && err.contains("10 to 1000000"), "{err}");
    let m = fake_mac(4);
    exchange(
        (&ns[1], &t[1], &m),
        vec![frame(BCAST, &m, b"age me")],
        &[(&ns[0], &t[0])],
        "age",
    );
    assert_eq!(fdb_port_of(&sw, &m), Some((t[1].clone(), false)));
    sw.ctl_ok(&["set", "ageing", "10"]);
    assert_eq!(sw.ctl_json(&["show"])["ageing_seconds"], 10);
    assert!(sw.ctl_ok(&["show"]).contains("ageing 10 s"));
    assert!(
        wait_for(Duration::from_secs(60), || fdb_port_of(&sw, &m).is_none()).is_some(),
        "{m} did not age out after set ageing 10"
    );
}

/// vswitchctl's errors: no daemon, no permission; the socket's mode; a
/// second daemon on the same socket; the JSON-lines protocol by hand.
#[test]
fn ctl_errors_permissions_and_protocol() {
    require_root();
    // No daemon.
    let o = run(&[
        vswitchctl_bin(),
        "--socket",
        "/nonexistent-vswitchd-test/ctl.sock",
        "show",
    ]);
    let (ok, _, err) = out3(&o);
    assert!(!ok, "vswitchctl succeeded without a daemon");
    assert!(
        err.contains("vswitchd is not running") && err.contains("/nonexistent-vswitchd-test"),
        "{err}"
    );
    // The socket from the environment.
    let o = Command::new(vswitchctl_bin())
        .arg("show")
        .env("VSWITCHD_SOCKET", "/nonexistent-vswitchd-test/env.sock")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (ok, _, err) = out3(&o);
    assert!(!ok && err.contains("env.sock"), "{err}");

    let b = names("cc");
    let t0 = format!("{b}t0");
    let sw = Switchd::start(&["--ports", &t0], &[&t0]);

    // Mode 0600, a socket.
    let meta = std::fs::symlink_metadata(&sw.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "control socket mode"
    );

    // Unprivileged user.
    let o = run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        vswitchctl_bin(),
        "--socket",
        sw.socket.to_str().unwrap(),
        "show",
    ]);
    let (ok, _, err) = out3(&o);
    assert!(!ok, "an unprivileged user used the control socket");
    assert!(err.contains("permission denied"), "{err}");

    // A second vswitchd on the same socket refuses to start and leaves the
    // first one working.
    let t1 = format!("{b}t1");
    let mut second = Bg::new(
        Command::new(vswitchd_bin())
            .args(["--ports", &t1, "--metrics-addr", "off", "--control-socket"])
            .arg(&sw.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let o = second
        .finish(Duration::from_secs(20))
        .expect("second vswitchd did not exit");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("another vswitchd is listening"), "{err}");
    assert!(!iface_exists(&t1), "the refused daemon created its TAP");
    assert_eq!(port_state(&sw, &t0).as_deref(), Some("up"));

    // The protocol by hand: one JSON object per line each way.
    let s = UnixStream::connect(&sw.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ask = |line: &str| -> serde_json::Value {
        w.write_all(line.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        let mut resp = String::new();
        r.read_line(&mut resp).unwrap();
        serde_json::from_str(&resp).unwrap_or_else(|e| panic!("{resp}: {e}"))
    };
    let v = ask(r#"{"version":1,"cmd":"show"}"#);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["data"]["ports"][0]["name"], t0.as_str(), "{v}");
    let v = ask(r#"{"version":1,"cmd":"fdb-show"}"#);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["data"].is_array(), "{v}");
    let v = ask(r#"{"version":99,"cmd":"show"}"#);
    assert_eq!(v["ok"], false);
    let e = v["error"].as_str().unwrap_or_default();
    assert!(e.contains("99") && e.contains('1'), "{v}");
    let v = ask("this is not json");
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().unwrap_or_default().contains("not JSON"),
        "{v}"
    );
    let v = ask(r#"{"cmd":"show"}"#);
    assert!(
        v["error"].as_str().unwrap_or_default().contains("version"),
        "{v}"
    );
    let v = ask(r#"{"version":1,"cmd":"no-such-command"}"#);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("bad request"),
        "{v}"
    );
    let v = ask(r#"{"version":1,"cmd":"port-del","name":"nosuchport"}"#);
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no port named `nosuchport`"),
        "{v}"
    );
    let v = ask(r#"{"version":1,"cmd":"set-ageing","seconds":120}"#);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(sw.ctl_json(&["show"])["ageing_seconds"], 120);

    // Bad port specs from vswitchctl name the problem.
    let (ok, _, err) = out3(&sw.ctl(&["port", "add", "bogus:/tmp/x"]));
    assert!(!ok && err.contains("unknown port kind"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["port", "add", "0123456789abcdef"]));
    assert!(!ok && err.contains("15 bytes"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["port", "add", &format!("raw:{b}nope")]));
    assert!(!ok && err.contains("no interface"), "{err}");
    let (ok, _, err) = out3(&sw.ctl(&["port", "add", &t0]));
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(port_names(&sw), vec![t0.clone()]);
}

fn log_lines_with(sw: &Switchd, needle: &str) -> usize {
    sw.log_text().matches(needle).count()
}

/// Config file + SIGHUP with a ping running between two unchanged ports:
/// no loss; the changed port changes, the new port appears, the removed
/// one goes.
#[test]
fn config_reload_on_sighup_with_traffic() {
    require_root();
    let b = names("cd");
    let [pa, pb, pc, pd, pe] = ["a", "b", "c", "d", "e"].map(|x| format!("{b}{x}"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vswitchd.toml");
    let port = |n: &str, extra: &str| format!("[[port]]\nname = \"{n}\"\n{extra}\n");
    write_config(
        &cfg,
        &format!(
            "[switch]\nageing-time = 300\n\n{}{}{}{}",
            port(&pa, ""),
            port(&pb, ""),
            port(&pc, ""),
            port(&pe, "")
        ),
    );
    let na = Netns::new(&format!("{b}na"));
    let nb = Netns::new(&format!("{b}nb"));
    let sw = Switchd::start(&["--config", cfg.to_str().unwrap()], &[&pa, &pb, &pc, &pe]);
    na.take(&pa, "198.18.102.1/24");
    nb.take(&pb, "198.18.102.2/24");
    assert!(na.ping("198.18.102.2", 3));
    assert_eq!(port_names(&sw).len(), 4);
    let before = port_info(&sw, &pa).unwrap()["counters"]["rx_frames"]
        .as_u64()
        .unwrap();

    let ping = BgPing::start(&na, "198.18.102.2", 300, "0.01");
    // Reload once the ping is under way.
    assert!(
        wait_for(
            Duration::from_secs(30),
            || port_info(&sw, &pa).unwrap()["counters"]["rx_frames"]
                .as_u64()
                .unwrap()
                >= before + 20
        )
        .is_some(),
        "the ping did not start"
    );
    write_config(
        &cfg,
        &format!(
            "[switch]\nageing-time = 200\n\n{}{}{}{}",
            port(&pa, ""),
            port(&pb, ""),
            port(&pc, "isolated = true\nflood = false\nmac-limit = 4"),
            port(&pd, "")
        ),
    );
    signal(sw.proc.pid(), "HUP");
    assert!(
        wait_for(Duration::from_secs(30), || log_lines_with(&sw, "reloaded:")
            >= 1)
        .is_some(),
        "no reload logged: {}",
        sw.log_text()
    );
    let mut ping = ping;
    // Only reported: the loss assert below holds whatever the timing.
    eprintln!(
        "reload finished while the ping was still running: {}",
        ping.running()
    );
    assert!(
        sw.log_text()
            .contains("reloaded: 1 added, 1 changed, 1 removed, 2 unchanged"),
        "{}",
        sw.log_text()
    );
    assert!(
        wait_for(Duration::from_secs(10), || iface_exists(&pd)).is_some(),
        "{pd} not created"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !iface_exists(&pe)).is_some(),
        "{pe} still exists"
    );
    let mut want = vec![pa.clone(), pb.clone(), pc.clone(), pd.clone()];
    want.sort();
    assert_eq!(port_names(&sw), want);
    let c = port_info(&sw, &pc).unwrap();
    assert_eq!(c["isolated"], true, "{c}");
    assert_eq!(c["flood"], false, "{c}");
    assert_eq!(c["mac_limit"], 4, "{c}");
    assert_eq!(port_state(&sw, &pd).as_deref(), Some("up"));
    assert_eq!(sw.ctl_json(&["show"])["ageing_seconds"], 200);
    let table = sw.ctl_ok(&["show"]);
    assert!(table.contains(&pd) && !table.contains(&pe), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&pc) && l.contains("isolated") && l.contains("no-flood")),
        "{table}"
    );

    let (sent, recv, text) = ping.finish();
    assert_eq!(sent, 300, "{text}");
    assert_eq!(recv, sent, "loss during reload: {text}");
    assert!(na.ping("198.18.102.2", 2));
}

/// A bad config on reload: the running config stays, the error names the
/// file and line (logged for SIGHUP, returned by `vswitchctl reload`).
#[test]
fn config_reload_bad_file_keeps_running_config() {
    require_root();
    let b = names("ce");
    let [pa, pb, pc, pz] = ["a", "b", "c", "z"].map(|x| format!("{b}{x}"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vswitchd.toml");
    let cfgs = cfg.to_str().unwrap().to_string();
    let good = format!(
        "[switch]\nageing-time = 300\n\n[[port]]\nname = \"{pa}\"\n\n[[port]]\nname = \"{pb}\"\n"
    );
    write_config(&cfg, &good);
    let na = Netns::new(&format!("{b}na"));
    let nb = Netns::new(&format!("{b}nb"));
    let sw = Switchd::start(&["--config", &cfgs], &[&pa, &pb]);
    na.take(&pa, "198.18.103.1/24");
    nb.take(&pb, "198.18.103.2/24");
    assert!(na.ping("198.18.103.2", 3));
    let before = port_names(&sw);

    // Unknown key at line 10, after a new port: SIGHUP logs it, nothing changes.
    write_config(
        &cfg,
        &format!(
            "[switch]\nageing-time = 100\n\n[[port]]\nname = \"{pa}\"\n\n[[port]]\nname = \"{pz}\"\n\n\
             bogus-key = 1\n"
        ),
    );
    signal(sw.proc.pid(), "HUP");
    assert!(
        wait_for(Duration::from_secs(30), || sw
            .log_text()
            .contains("bogus-key"))
        .is_some(),
        "no error logged: {}",
        sw.log_text()
    );
    let log = sw.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no ERROR line: {log}"));
    assert!(
        line.contains(&cfgs) && line.contains("line 10"),
        "the logged error should name file and line: {line}"
    );
    assert_eq!(port_names(&sw), before);
    assert!(!iface_exists(&pz), "a port of the bad file was created");
    assert_eq!(sw.ctl_json(&["show"])["ageing_seconds"], 300);

    // Syntax error: `vswitchctl reload` returns it.
    write_config(&cfg, &format!("[[port]]\nname = \"{pa}\n"));
    let (ok, _, err) = out3(&sw.ctl(&["reload"]));
    assert!(!ok, "reload of a broken file succeeded");
    assert!(err.contains(&cfgs) && err.contains("line 2"), "{err}");
    // A value out of range: named too.
    write_config(&cfg, &good.replace("ageing-time = 300", "ageing-time = 1"));
    let (ok, _, err) = out3(&sw.ctl(&["reload"]));
    assert!(
        !ok && err.contains(&cfgs) && err.contains("ageing-time"),
        "{err}"
    );
    // A file that is gone.
    std::fs::remove_file(&cfg).unwrap();
    let (ok, _, err) = out3(&sw.ctl(&["reload"]));
    assert!(!ok && err.contains(&cfgs), "{err}");
    assert_eq!(port_names(&sw), before);
    assert_eq!(sw.ctl_json(&["show"])["ageing_seconds"], 300);
    assert!(
        na.ping("198.18.103.2", 3),
        "forwarding broke after bad reloads"
    );

    // A good file again: reload applies it and says what changed.
    write_config(&cfg, &format!("{good}\n[[port]]\nname = \"{pc}\"\n"));
    let out = sw.ctl_ok(&["reload"]);
    assert!(
        out.contains("reloaded: 1 added, 0 changed, 0 removed, 2 unchanged"),
        "{out}"
    );
    assert!(iface_exists(&pc));
    assert_eq!(port_state(&sw, &pc).as_deref(), Some("up"));
}

/// A veth pair: `root` here, `peer` in `ns` with `mac` and `addr`, up.
fn make_veth(root: &str, peer: &str, ns: &Netns, mac: &str, addr: &str) -> Link {
    let link = Link::veth(root, peer, Some(ns));
    ns.ip(&["link", "set", peer, "address", mac]);
    ns.ip(&["addr", "add", addr, "dev", peer]);
    ns.ip(&["link", "set", peer, "up"]);
    link
}

/// A `raw:` veth deleted while two other ports carry a ping: no loss
/// there, the port shows gone and its MACs are flushed; the veth comes back
/// under the same name: the port is re-attached and forwards again.
#[test]
fn hotplug_raw_veth_deleted_and_recreated() {
    require_root();
    let b = names("cf");
    let (t0, t1, v, vp) = (
        format!("{b}t0"),
        format!("{b}t1"),
        format!("{b}v"),
        format!("{b}vp"),
    );
    let ns: Vec<Netns> = (0..3).map(|i| Netns::new(&format!("{b}n{i}"))).collect();
    let vmac = fake_mac(0x42);
    let _veth = make_veth(&v, &vp, &ns[2], &vmac, "198.18.104.3/24");
    let raw = format!("raw:{v}");
    let sw = Switchd::start(&["--ports", &format!("{t0},{t1},{raw}")], &[&t0, &t1]);
    ns[0].take(&t0, "198.18.104.1/24");
    ns[1].take(&t1, "198.18.104.2/24");
    assert!(ns[0].ping("198.18.104.3", 3), "no forwarding through {raw}");
    assert!(ns[0].ping("198.18.104.2", 3));
    assert_eq!(port_state(&sw, &raw).as_deref(), Some("up"));
    assert_eq!(port_info(&sw, &raw).unwrap()["kind"], "raw");
    assert_eq!(fdb_port_of(&sw, &vmac), Some((raw.clone(), false)));

    let ping = BgPing::start(&ns[0], "198.18.104.2", 250, "0.02");
    ok(&["ip", "link", "del", &v]);
    assert!(
        wait_for(Duration::from_secs(20), || port_state(&sw, &raw).as_deref()
            != Some("up"))
        .is_some(),
        "{raw} still up after its veth was deleted"
    );
    let st = port_state(&sw, &raw);
    assert!(
        matches!(
            st.as_deref(),
            Some("gone") | Some("link-down") | Some("down")
        ),
        "{st:?}"
    );
    assert!(
        fdb(&sw).iter().all(|(_, p, _)| *p != raw),
        "MACs of a vanished port stay in the FDB"
    );
    assert_eq!(port_state(&sw, &t0).as_deref(), Some("up"));

    let _veth_again = make_veth(&v, &vp, &ns[2], &vmac, "198.18.104.3/24");
    assert!(
        wait_for(Duration::from_secs(30), || port_state(&sw, &raw).as_deref()
            == Some("up"))
        .is_some(),
        "{raw} not re-attached: {:?}\n{}",
        port_state(&sw, &raw),
        sw.log_text()
    );
    assert!(
        wait_for(Duration::from_secs(30), || ns[0].ping("198.18.104.3", 2)).is_some(),
        "no forwarding through the re-attached {raw}"
    );
    assert!(sw.log_text().contains("re-attached"));
    let (sent, recv, text) = ping.finish();
    assert_eq!(sent, 250, "{text}");
    assert_eq!(
        recv, sent,
        "loss between other ports during hot-plug: {text}"
    );
}

/// A TAP whose netdev (in a namespace) is deleted goes down; the other
/// ports carry on.
#[test]
fn hotplug_tap_deleted_in_namespace() {
    require_root();
    // Dropped in reverse: the switch first, then the namespaces.
    let Lan {
        ns, taps: t, sw, ..
    } = Lan::new("cg", 3, 105);
    assert!(ns[0].ping("198.18.105.2", 3));
    assert!(ns[0].ping("198.18.105.3", 3));
    assert!(fdb(&sw).iter().any(|(_, p, _)| *p == t[2]));

    let ping = BgPing::start(&ns[0], "198.18.105.2", 250, "0.02");
    ns[2].ip(&["link", "del", &t[2]]);
    assert!(
        wait_for(Duration::from_secs(20), || {
            // Traffic towards it (a flood) also reveals the loss.
            let _ = ns[0].exec(&["ping", "-c", "1", "-W", "1", "198.18.105.3"]);
            port_state(&sw, &t[2]).as_deref() != Some("up")
        })
        .is_some(),
        "{} still up after its netdev was deleted",
        t[2]
    );
    let st = port_state(&sw, &t[2]);
    assert!(
        matches!(st.as_deref(), Some("gone") | Some("link-down")),
        "{st:?}"
    );
    assert!(fdb(&sw).iter().all(|(_, p, _)| *p != t[2]));
    let (sent, recv, text) = ping.finish();
    assert_eq!(sent, 250, "{text}");
    assert_eq!(recv, sent, "loss between other ports: {text}");
    assert_eq!(port_state(&sw, &t[0]).as_deref(), Some("up"));
    assert_eq!(port_state(&sw, &t[1]).as_deref(), Some("up"));
    assert!(ns[1].ping("198.18.105.1", 3));
}

/// Starts `cmd` (vswitchd with NOTIFY_SOCKET bound to `sock`, stderr to
/// `log`) and returns it with the first message it sends there (at most
/// 30 s; `what` names the message for the failure).
fn start_notified(mut cmd: Command, sock: &UnixDatagram, log: &Path, what: &str) -> (Bg, String) {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let d = Bg::new(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap_or_else(|e| {
        panic!(
            "no {what}: {e}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (d, String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// vswitchd tells systemd READY=1 (Type=notify) once its ports and control
/// socket are open, to a path or an abstract socket; SIGTERM stops it
/// cleanly: exit 0, TAPs and control socket removed.
#[test]
fn sd_notify_ready_and_graceful_sigterm() {
    require_root();
    for abstract_ns in [false, true] {
        let b = names("ch");
        let tap = format!("{b}t0");
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().join("ctl.sock");
        let (sock, env) = if abstract_ns {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("vswitchd-test-notify-{b}");
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
        } else {
            let p = dir.path().join("notify.sock");
            (
                UnixDatagram::bind(&p).unwrap(),
                p.to_str().unwrap().to_string(),
            )
        };
        let log = dir.path().join("log");
        let mut cmd = Command::new(vswitchd_bin());
        cmd.args(["--ports", &tap, "--metrics-addr", "off", "--control-socket"])
            .arg(&ctl)
            .env("NOTIFY_SOCKET", &env);
        let (mut d, msg) = start_notified(cmd, &sock, &log, &format!("notification on {env}"));
        assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
        assert!(iface_exists(&tap), "READY=1 before the ports were open");
        assert!(ctl.exists(), "READY=1 before the control socket was bound");
        let st = d
            .stop(Duration::from_secs(20))
            .expect("vswitchd ignored SIGTERM");
        assert!(
            st.success(),
            "exit after SIGTERM: {st:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(!ctl.exists(), "control socket left behind");
        assert!(
            wait_for(Duration::from_secs(10), || !iface_exists(&tap)).is_some(),
            "TAP left behind"
        );
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(log.contains("SIGTERM"), "{log}");
    }
}

/// The unit's sandbox in small: root with only CAP_NET_ADMIN and
/// CAP_NET_RAW in the bounding set (as `CapabilityBoundingSet=` leaves it)
/// is enough to open a TAP and a raw: port, notify readiness and forward;
/// with NO_COLOR=1 (as the unit sets) the log has no escape codes.
#[test]
fn service_capabilities_suffice() {
    require_root();
    let b = names("ci");
    let (tap, v, vp) = (format!("{b}t0"), format!("{b}v"), format!("{b}vp"));
    let ns: Vec<Netns> = (0..2).map(|i| Netns::new(&format!("{b}n{i}"))).collect();
    let _veth = make_veth(&v, &vp, &ns[1], &fake_mac(0x51), "198.18.106.2/24");
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl.sock");
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    let log = dir.path().join("log");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", "-all,+net_admin,+net_raw"])
        .arg(vswitchd_bin())
        .args([
            "--ports",
            &format!("{tap},raw:{v}"),
            "--metrics-addr",
            "off",
        ])
        .arg("--control-socket")
        .arg(&ctl)
        .env("NOTIFY_SOCKET", &notify)
        .env("NO_COLOR", "1");
    let what = "READY=1 with the reduced capability set";
    let (_d, msg) = start_notified(cmd, &sock, &log, what);
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    ns[0].take(&tap, "198.18.106.1/24");
    assert!(
        ns[0].ping("198.18.106.2", 3),
        "no forwarding between a TAP and a raw: port with only CAP_NET_ADMIN and CAP_NET_RAW"
    );
    let o = run(&[
        vswitchctl_bin(),
        "--socket",
        ctl.to_str().unwrap(),
        "--json",
        "show",
    ]);
    let show: serde_json::Value = serde_json::from_slice(&o.stdout).expect("show --json");
    for p in show["ports"].as_array().expect("ports") {
        assert_eq!(p["state"], "up", "{p}");
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("vswitchd forwarding"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "NO_COLOR=1 still gave escape codes: {text:?}"
    );
}

/// dist/vswitchd.toml passes --check-config; dist/vswitchd.service passes
/// `systemd-analyze verify` (when installed) with ExecStart pointed at the
/// binary under test.
#[test]
fn dist_files_are_valid() {
    let o = run(&[
        vswitchd_bin(),
        "--check-config",
        "--config",
        repo("dist/vswitchd.toml").to_str().unwrap(),
    ]);
    let (ok, out, err) = out3(&o);
    assert!(ok && out.contains("configuration is valid"), "{out}{err}");

    let unit = std::fs::read_to_string(repo("dist/vswitchd.service")).unwrap();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RuntimeDirectory=vswitchd",
        "Restart=on-failure",
        "WatchdogSec=30s",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == want),
            "unit lacks `{want}`"
        );
    }
    // The bounding set names at least what every port kind needs (the
    // whole set is exercised by tests/e2e_service.rs).
    let caps = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
        .expect("unit lacks CapabilityBoundingSet=");
    for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW"] {
        assert!(caps.split_whitespace().any(|c| c == cap), "{caps}");
    }
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let dir = tempfile::tempdir().unwrap();
        let unit = unit.replace("/usr/sbin/vswitchd", vswitchd_bin()).replace(
            "/etc/vswitchd/vswitchd.toml",
            repo("dist/vswitchd.toml").to_str().unwrap(),
        );
        let path = dir.path().join("vswitchd.service");
        std::fs::write(&path, unit).unwrap();
        let o = run(&[
            "systemd-analyze",
            "verify",
            "--man=no",
            path.to_str().unwrap(),
        ]);
        let (ok, out, err) = out3(&o);
        let text = format!("{out}{err}");
        assert!(ok, "systemd-analyze verify failed:\n{text}");
        // Only complaints about this unit count; the host's own units and a
        // missing running systemd are not the test's business.
        let ours: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("vswitchd.service") && !l.contains("Failed to connect"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify:\n{text}");
    } else {
        eprintln!("systemd-analyze not installed: unit file not verified");
    }
}
