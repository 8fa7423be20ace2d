//! vswitchd as a service: run under exactly the systemd unit's capability
//! bounding set and read-only mounts (read from dist/vswitchd.service, see
//! `support::sandbox`), every documented feature works (a TAP placed in a
//! namespace, claim on a raw: port, a unix: socket under /tmp seen from
//! outside, sockets given to a group, a raw: port waiting for its
//! interface); the sd_notify protocol (READY/STATUS, RELOADING, WATCHDOG,
//! STOPPING), journal priorities, the reload metrics; and the control
//! protocol's error codes as vswitchctl and the QEMU ifup/ifdown scripts
//! use them.
//!
//! Run as root: `cargo test --release --test e2e_service`. Addresses:
//! 198.18.120.0/24 - 198.18.121.0/24.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::cmd::{
    Bg, names, out3, repo, require_root, run, signal, vswitchctl_bin, vswitchd_bin,
};
use support::net::{Link, Netns, free_port, iface_exists, quiet_ipv6};
use support::sandbox::Unit;
use support::state::{port_info, port_state, scrape};
use support::switchd::{Switchd, write_config};
use support::wait::{PATIENCE, wait_for};

/// The group the tests give sockets to: nobody's own (no group to create).
fn nobody_group() -> (String, u32) {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    for name in ["nogroup", "nobody"] {
        if let Some(gid) = groups
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .and_then(|l| l.split(':').nth(2))
            .and_then(|g| g.parse().ok())
        {
            return (name.to_string(), gid);
        }
    }
    ("65534".to_string(), 65534)
}

/// Runs `argv` as nobody (uid and gid 65534, no other groups).
fn as_nobody(argv: &[&str]) -> Output {
    let mut v = vec![
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    v.extend_from_slice(argv);
    run(&v)
}

/// The notifications vswitchd sends to `$NOTIFY_SOCKET`, one datagram
/// each.
struct Notifications {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl Notifications {
    fn bind(path: &Path) -> Notifications {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Notifications {
            sock,
            seen: Vec::new(),
        }
    }

    /// Reads (and forgets) what is queued: vswitchd drops notifications
    /// while the queue is full (as it would for a systemd that does not
    /// read), so a test drains it before waiting for the next one.
    fn drain(&mut self) {
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.sock.set_nonblocking(false).unwrap();
        self.sock
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }

    /// Waits (at most `limit`) for a message with a line `line`; returns
    /// that message.
    fn wait_line(&mut self, line: &str, limit: Duration, log: &Path) -> String {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(m.clone());
                if m.lines().any(|l| l == line) {
                    return m;
                }
            }
        }
        panic!(
            "no `{line}` notification in {limit:?}; got {:?}\n{}",
            self.seen,
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// `JOURNAL_STREAM` for a log file: its device and inode, as systemd
/// names the journal stream it connects stderr to.
fn journal_stream(file: &Path) -> String {
    let m = std::fs::metadata(file).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

fn read_sysctl(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// vswitchctl against `socket`.
fn ctl(socket: &Path, args: &[&str]) -> Output {
    let mut v = vec![vswitchctl_bin(), "--socket", socket.to_str().unwrap()];
    v.extend_from_slice(args);
    run(&v)
}

#[test]
fn unit_settings_are_read_from_the_unit_file() {
    let u = Unit::parse(
        "[Service]\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n# ReadWritePaths=/nope\nReadWritePaths=/tmp -/proc/sys/net/ipv6/conf\nProtectSystem=strict\nRuntimeDirectory=vswitchd\nNoNewPrivileges=yes\n",
    );
    assert_eq!(u.caps, ["net_admin", "net_raw"]);
    assert_eq!(u.bounding_set(), "-all,+net_admin,+net_raw");
    assert_eq!(u.read_write, ["/tmp", "/proc/sys/net/ipv6/conf"]);
    assert_eq!(u.runtime_dirs, ["/run/vswitchd"]);
    assert!(u.protect_system_strict && u.no_new_privileges && !u.private_tmp);
    // The shipped units agree on the sandbox.
    let plain = Unit::load(&repo("dist/vswitchd.service"));
    let template = Unit::load(&repo("dist/vswitchd@.service"));
    assert_eq!(plain.caps, template.caps);
    assert_eq!(plain.read_write, template.read_write);
    assert!(plain.protect_system_strict && plain.protect_kernel_tunables);
}

/// vswitchd under dist/vswitchd.service's bounding set and mounts, with
/// every feature the docs promise there:
/// - a TAP moved into a namespace with an address (setns: CAP_SYS_ADMIN),
///   forwarding to a raw: veth;
/// - claim on the raw: port (arp_ignore = 8, disable_ipv6 = 1 through the
///   unit's writable /proc/sys/net/*/conf);
/// - a unix: socket under /tmp, seen from outside the sandbox, given to a
///   group (CAP_CHOWN), which nobody can connect to; the control socket the
///   same;
/// - a raw: port whose interface is missing at start: gone, then attached
///   (and claimed) when it appears;
/// - READY=1 with STATUS, WATCHDOG=1, RELOADING=1 + MONOTONIC_USEC then
///   READY=1 around reloads, STOPPING=1; journal priorities; the reload
///   metrics and a runtime log-level change.
#[test]
fn unit_sandbox_permits_every_feature() {
    require_root();
    let unit = Unit::load(&repo("dist/vswitchd.service"));
    let b = names("sv");
    let (tap, v, vp, late, latep) = (
        format!("{b}t0"),
        format!("{b}v"),
        format!("{b}vp"),
        format!("{b}l"),
        format!("{b}lp"),
    );
    let nst = Netns::new(&format!("{b}n0"));
    let nsr = Netns::new(&format!("{b}n1"));
    quiet_ipv6(&nsr);
    let _veth = Link::veth(&v, &vp, Some(&nsr));
    nsr.ip(&["addr", "add", "198.18.120.2/24", "dev", &vp]);
    nsr.ip(&["link", "set", &vp, "up"]);
    // Deletes the late interface at the end (it is created later).
    let _late_link = Link(late.clone());
    // Not claimed yet, whatever the host's defaults, so a claim shows.
    std::fs::write(format!("/proc/sys/net/ipv4/conf/{v}/arp_ignore"), "0").unwrap();

    let dir = tempfile::Builder::new()
        .prefix("vswitchd-svc")
        .tempdir_in("/tmp")
        .unwrap();
    // Others (nobody, below) reach the sockets in it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let unix_sock = dir.path().join("vm.sock");
    let ctl_sock = PathBuf::from(format!("/run/vswitchd/test-{b}.sock"));
    let (group, gid) = nobody_group();
    let metrics = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("vswitchd.toml");
    let good = format!(
        r#"[switch]
metrics-addr = "{metrics}"
control-socket = "{ctl}"
control-socket-group = "{group}"

[[port]]
name = "{tap}"
netns = "{ns}"
addresses = ["198.18.120.1/24"]

[[port]]
name = "raw:{v}"

[[port]]
name = "raw:{late}"

[[port]]
name = "unix:{sock}"
socket-group = "{group}"
"#,
        ctl = ctl_sock.display(),
        ns = nst.name,
        sock = unix_sock.display(),
    );
    write_config(&config, &good);
    let log = dir.path().join("log");
    std::fs::File::create(&log).unwrap();
    let mut notes = Notifications::bind(&dir.path().join("notify"));

    let mut cmd = unit.command(&[vswitchd_bin(), "--config", config.to_str().unwrap()]);
    cmd.env("NOTIFY_SOCKET", dir.path().join("notify"))
        .env("WATCHDOG_USEC", "4000000")
        .env("JOURNAL_STREAM", journal_stream(&log))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
    let mut d = Bg::new(cmd.spawn().expect("start vswitchd in the sandbox"));
    let ready = notes.wait_line("READY=1", Duration::from_secs(30), &log);
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=forwarding: 4 ports, ")),
        "{ready:?}"
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // The TAP in its namespace, with its address, forwarding to the raw:
    // veth.
    assert!(
        nst.at().dev_has(&tap, "198.18.120.1/24"),
        "TAP not placed: {}",
        log_text()
    );
    assert!(
        wait_for(PATIENCE, || nst.ping("198.18.120.2", 1)).is_some(),
        "no forwarding from the placed TAP to the raw: port: {}",
        log_text()
    );
    // Claim through the unit's writable /proc/sys/net/*/conf.
    assert_eq!(
        read_sysctl(&format!("/proc/sys/net/ipv4/conf/{v}/arp_ignore")),
        "8",
        "{}",
        log_text()
    );
    assert_eq!(
        read_sysctl(&format!("/proc/sys/net/ipv6/conf/{v}/disable_ipv6")),
        "1"
    );
    assert!(!log_text().contains("cannot claim"), "{}", log_text());

    // The unix: socket, seen from outside the sandbox, is the group's.
    let meta = std::fs::metadata(&unix_sock).expect("unix: socket not visible outside");
    assert_eq!(
        (meta.gid(), meta.permissions().mode() & 0o777),
        (gid, 0o660)
    );
    let connect = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?})",
        unix_sock.to_str().unwrap()
    );
    let (ok, _, err) = out3(&as_nobody(&["/usr/bin/python3", "-c", &connect]));
    assert!(
        ok,
        "a member of {group} cannot connect to the unix: port: {err}"
    );
    // The control socket too: nobody (in the group) may use vswitchctl.
    let meta = std::fs::metadata(&ctl_sock).unwrap();
    assert_eq!(
        (meta.gid(), meta.permissions().mode() & 0o777),
        (gid, 0o660)
    );
    // A copy nobody can run wherever the build tree is (/root is 0700).
    let ctl_copy = dir.path().join("vswitchctl");
    std::fs::copy(vswitchctl_bin(), &ctl_copy).unwrap();
    std::fs::set_permissions(&ctl_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, out, err) = out3(&as_nobody(&[
        ctl_copy.to_str().unwrap(),
        "--socket",
        ctl_sock.to_str().unwrap(),
        "-j",
        "show",
    ]));
    assert!(ok, "group member refused: {err}");
    let show: serde_json::Value = serde_json::from_str(&out).unwrap();

    // The raw: port whose interface is missing: gone, a warning; attached
    // (and claimed) when the interface appears.
    let p = show["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == format!("raw:{late}").as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no raw:{late} in {show}"));
    assert_eq!(
        (p["state"].as_str(), p["kind"].as_str()),
        (Some("gone"), Some("raw")),
        "{p}"
    );
    assert!(
        log_text()
            .lines()
            .any(|l| l.starts_with("<4>") && l.contains(&format!("no interface `{late}`"))),
        "no warning at priority 4: {}",
        log_text()
    );
    // `_late_link` deletes it.
    std::mem::forget(Link::veth(&late, &latep, None));
    // Its far end up, so it has carrier.
    assert!(run(&["ip", "link", "set", &latep, "up"]).status.success());
    let state = || {
        let o = ctl(&ctl_sock, &["-j", "show"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["ports"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|p| p["name"] == format!("raw:{late}").as_str())
                    .cloned()
            })
            .map(|p| p["state"].as_str().unwrap_or("").to_string())
    };
    assert!(
        wait_for(Duration::from_secs(15), || state().as_deref() == Some("up")).is_some(),
        "raw:{late} not attached when it appeared: {:?}\n{}",
        state(),
        log_text()
    );
    assert_eq!(
        read_sysctl(&format!("/proc/sys/net/ipv4/conf/{late}/arp_ignore")),
        "8"
    );

    // The watchdog is fed (every 2 s for WATCHDOG_USEC=4 s).
    notes.drain();
    notes.wait_line("WATCHDOG=1", Duration::from_secs(8), &log);

    // Journal priorities: info lines carry <6>.
    assert!(
        log_text()
            .lines()
            .any(|l| l.starts_with("<6>") && l.contains("vswitchd forwarding")),
        "{}",
        log_text()
    );
    // log-level at run time.
    let o = ctl(&ctl_sock, &["log-level", "debug"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ctl(&ctl_sock, &["log-level"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "debug");

    // A failed reload: an error at priority 3, the metrics say so,
    // RELOADING=1 then READY=1 around it.
    let (_, m) = scrape(&metrics);
    assert_eq!(m.get("vswitchd_config_last_reload_successful"), 1.0);
    let loaded_at = m.get("vswitchd_config_last_reload_success_timestamp_seconds");
    assert!(loaded_at > 1.0e9, "{loaded_at}");
    write_config(&config, &format!("bogus-key = 1\n{good}"));
    notes.drain();
    signal(d.pid(), "HUP");
    let reloading = notes.wait_line("RELOADING=1", Duration::from_secs(10), &log);
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|u| u.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "{reloading:?}");
    notes.wait_line("READY=1", Duration::from_secs(10), &log);
    assert!(
        wait_for(Duration::from_secs(5), || log_text()
            .lines()
            .any(|l| l.starts_with("<3>") && l.contains("reload failed")))
        .is_some(),
        "a failed reload is not logged at priority 3: {}",
        log_text()
    );
    assert!(
        log_text()
            .lines()
            .any(|l| l.starts_with("<3>") && l.contains("bogus-key")),
        "every line of the error has its priority: {}",
        log_text()
    );
    let (_, m) = scrape(&metrics);
    assert_eq!(m.get("vswitchd_config_last_reload_successful"), 0.0);
    assert_eq!(
        m.get("vswitchd_config_last_reload_success_timestamp_seconds"),
        loaded_at
    );
    // vswitchctl reload: exit 1, the code on stdout with --json.
    let (ok, out, _) = out3(&ctl(&ctl_sock, &["-j", "reload"]));
    assert!(!ok && out.contains(r#""code":"config""#), "{out}");
    // Fixed: success again.
    write_config(&config, &good);
    let (ok, out, err) = out3(&ctl(&ctl_sock, &["reload"]));
    assert!(ok, "{out}{err}");
    let (_, m) = scrape(&metrics);
    assert_eq!(m.get("vswitchd_config_last_reload_successful"), 1.0);

    // Stop: STOPPING=1, exit 0, sockets removed.
    notes.drain();
    signal(d.pid(), "TERM");
    notes.wait_line("STOPPING=1", Duration::from_secs(20), &log);
    let st = d
        .stop(Duration::from_secs(20))
        .expect("vswitchd did not stop");
    assert!(st.success(), "{st:?}: {}", log_text());
    assert!(
        !unix_sock.exists() && !ctl_sock.exists(),
        "sockets left behind"
    );
    assert!(!log_text().contains('\x1b'));
}

/// `--check-config` warns about a raw: port whose interface is missing
/// but passes; vswitchd then starts with it gone (and --ports naming one
/// interface twice is refused, naming --ports).
#[test]
fn missing_raw_interface_is_a_warning() {
    require_root();
    let b = names("sm");
    let (t0, missing) = (format!("{b}t0"), format!("{b}x"));
    let ports = format!("{t0},raw:{missing}");
    let o = run(&[vswitchd_bin(), "--ports", &ports, "--check-config"]);
    let (ok, out, err) = out3(&o);
    assert!(ok, "{err}");
    assert!(out.contains("valid: 2 port"), "{out}");
    assert!(
        err.contains("warning") && err.contains(&format!("no interface `{missing}`")),
        "{err}"
    );
    let o = run(&[
        vswitchd_bin(),
        "--ports",
        &format!("{t0},raw:{t0}"),
        "--check-config",
    ]);
    let (ok, _, err) = out3(&o);
    assert!(
        !ok && err.contains("--ports") && err.contains("already port"),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(1));
}

/// The control protocol's codes through vswitchctl (exit 1, the code with
/// --json; exit 2 for usage), fdb get, vlan_mode, log-level, one interface
/// one port, and the QEMU ifup/ifdown scripts deciding by the codes.
#[test]
fn ctl_codes_fdb_get_and_ifup_scripts() {
    require_root();
    let b = names("sc");
    let (t0, v, vp) = (format!("{b}t0"), format!("{b}v"), format!("{b}vp"));
    let ns = Netns::new(&format!("{b}n"));
    let _veth = Link::veth(&v, &vp, Some(&ns));
    let sw = Switchd::start(&["--ports", &t0], &[&t0]);
    let json_fail = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        let o = sw.ctl(&a);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stderr.is_empty(), "{args:?}: no message on stderr");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)));
        assert_eq!(v["ok"], false);
        v
    };
    assert_eq!(json_fail(&["port", "add", &t0])["code"], "exists");
    assert_eq!(json_fail(&["port", "del", "nope"])["code"], "no_such_port");
    assert_eq!(
        json_fail(&["port", "add", &format!("raw:{b}zz")])["code"],
        "no_such_interface"
    );
    let same = json_fail(&["port", "add", &format!("raw:{t0}")]);
    assert_eq!(same["code"], "invalid", "{same}");
    assert!(
        same["error"].as_str().unwrap().contains("already port"),
        "{same}"
    );
    assert_eq!(json_fail(&["log-level", "verbose"])["code"], "invalid");
    let gone = Command::new(vswitchctl_bin())
        .args([
            "-j",
            "--socket",
            "/nonexistent-vswitchd-test/x.sock",
            "show",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&gone.stdout).contains(r#""code":"not_running""#));
    // Usage errors: 2, before anything is sent.
    for args in [
        &["port", "add"][..],
        &["fdb", "get", "not-a-mac"],
        &["set", "ageing", "5"],
    ] {
        assert_eq!(sw.ctl(args).status.code(), Some(2), "{args:?}");
    }

    // vlan_mode beside vlan.
    sw.ctl_ok(&["port", "set", &t0, "--access", "10"]);
    let p = port_info(&sw, &t0).unwrap();
    assert_eq!(p["vlan"], "access 10");
    assert_eq!(
        p["vlan_mode"],
        serde_json::json!({"mode": "access", "vid": 10})
    );
    sw.ctl_ok(&["port", "set", &t0, "--trunk", "10,20-22", "--native", "1"]);
    let p = port_info(&sw, &t0).unwrap();
    assert_eq!(
        p["vlan_mode"],
        serde_json::json!({"mode": "trunk", "allowed": "10,20-22", "native": 1})
    );

    // fdb get.
    let mac = "02:00:00:00:12:01";
    sw.ctl_ok(&["fdb", "add", mac, "--port", &t0, "--vlan", "20"]);
    let rows = sw.ctl_json(&["fdb", "get", mac]);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["port"], t0.as_str());
    assert_eq!(rows[0]["vlan"], 20);
    assert!(
        sw.ctl_ok(&["fdb", "get", mac, "--vlan", "20"])
            .contains(&t0)
    );
    assert_eq!(
        json_fail(&["fdb", "get", mac, "--vlan", "21"])["code"],
        "no_such_entry"
    );
    assert_eq!(
        json_fail(&["fdb", "get", "02:00:00:00:12:02"])["code"],
        "no_such_entry"
    );

    // log-level.
    assert_eq!(sw.ctl_ok(&["log-level"]).trim(), "info");
    assert_eq!(sw.ctl_ok(&["log-level", "warn"]).trim(), "warn");
    assert_eq!(sw.ctl_ok(&["log-level", "info"]).trim(), "info");

    // The ifup/ifdown scripts: added, already there, removed, not there,
    // and a real failure.
    let script = |name: &str, ifname: &str| -> Output {
        Command::new(repo(&format!("dist/{name}")))
            .arg(ifname)
            .env("VSWITCHCTL", vswitchctl_bin())
            .env("VSWITCHD_SOCKET", &sw.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let raw = format!("raw:{v}");
    for (name, want) in [
        ("qemu-ifup", "added"),
        ("qemu-ifup", "already on the switch"),
        ("qemu-ifdown", "removed"),
        ("qemu-ifdown", "was not on the switch"),
    ] {
        let (ok, _, err) = out3(&script(name, &v));
        assert!(ok && err.contains(want), "{name}: {err}");
        let present = port_state(&sw, &raw).is_some();
        assert_eq!(present, name == "qemu-ifup", "{name}: {err}");
    }
    let (ok, _, err) = out3(&script("qemu-ifup", &format!("{b}zz")));
    assert!(!ok && err.contains("no interface"), "{err}");
    assert!(iface_exists(&v));
}
