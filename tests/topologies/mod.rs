//! Helpers for tests/e2e_topologies.rs: guards for what a topology changes
//! in the root namespace (interfaces, nft tables, sysctls, addresses), the
//! place a command runs (root or a namespace), bounded traffic checks
//! (ping, iperf3, a TCP listener that reports its peer, tcpdump) and the
//! QEMU test guest.
//!
//! Every guard undoes exactly what it did, on drop, so a failing assertion
//! still cleans up. Every command is bounded by `timeout` or a count.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::{Bg, Netns, Switchd, ok, run};

/// The topologies run one at a time: they share the root namespace (host
/// ports, ip_forward) and the two cores; serial runs keep timings honest.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Where a command runs: the root namespace or a named one.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Root,
    Ns(&'a Netns),
}

impl At<'_> {
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = match self {
            At::Root => Vec::new(),
            At::Ns(ns) => s(&["ip", "netns", "exec", &ns.name]),
        };
        v.extend(s(args));
        v
    }

    pub fn label(&self) -> String {
        match self {
            At::Root => "root".into(),
            At::Ns(ns) => ns.name.clone(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let v = self.argv(args);
        let r: Vec<&str> = v.iter().map(String::as_str).collect();
        run(&r)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let v = self.argv(args);
        let r: Vec<&str> = v.iter().map(String::as_str).collect();
        ok(&r)
    }

    /// Starts a command in the background (stdout/stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Bg {
        let v = self.argv(args);
        Bg::new(
            Command::new(&v[0])
                .args(&v[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {v:?}: {e}")),
        )
    }

    /// `ip ARGS` here.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip"];
        v.extend_from_slice(args);
        self.ok(&v)
    }

    /// A bounded ping: true if every one of `count` replies came back.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        let c = count.to_string();
        self.run(&[
            "timeout", "20", "ping", "-n", "-c", &c, "-i", "0.2", "-W", "2", "-q", dst,
        ])
        .status
        .success()
    }

    /// Like `ping`, but first waits (bounded) for one reply: for peers that
    /// are still coming up.
    pub fn ping_after_first(&self, dst: &str, count: u32, wait: Duration) -> bool {
        let t = Instant::now();
        while !self
            .run(&[
                "timeout", "5", "ping", "-n", "-c", "1", "-W", "1", "-q", dst,
            ])
            .status
            .success()
        {
            if t.elapsed() > wait {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.ping(dst, count)
    }

    pub fn dev_exists(&self, dev: &str) -> bool {
        self.run(&["ip", "link", "show", "dev", dev])
            .status
            .success()
    }

    /// Whether `dev` is up and holds `addr` (CIDR).
    pub fn dev_has(&self, dev: &str, addr: &str) -> bool {
        let o = self.run(&["ip", "-br", "addr", "show", "dev", dev]);
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        o.status.success() && t.split_whitespace().any(|w| w == addr)
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    }

    /// Writes a sysctl (only for interfaces this test created).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.ok(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }
}

/// Waits at most `limit` for a background command to end by itself and
/// returns its output; if it does not, stops it with SIGTERM (which the
/// `timeout` wrapping every command forwards to its child, unlike the
/// SIGKILL `Bg::wait` sends, which would orphan that child).
pub fn finish(bg: &mut Bg, limit: Duration) -> Option<Output> {
    let t = Instant::now();
    loop {
        let c = bg.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if t.elapsed() >= limit => {
                bg.stop(Duration::from_secs(5));
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    bg.child.take()?.wait_with_output().ok()
}

/// Polls `f` every 50 ms for at most `secs`; panics with `what` (and
/// `extra()`, e.g. the switch's log) when it never becomes true.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool, extra: impl Fn() -> String) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}\n{}",
            extra()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An interface in the root namespace this test created (e.g. the root end
/// of a veth pair); deleted on drop (with its peer and its addresses).
pub struct Link(pub String);

impl Link {
    /// `ip link add NAME type veth peer name PEER [netns NS]`
    pub fn veth(name: &str, peer: &str, peer_ns: Option<&Netns>) -> Link {
        assert!(
            name.len() <= 15 && peer.len() <= 15,
            "{name}/{peer}: > 15 bytes"
        );
        let _ = run(&["ip", "link", "del", name]);
        let mut v = vec![
            "ip", "link", "add", name, "type", "veth", "peer", "name", peer,
        ];
        if let Some(ns) = peer_ns {
            v.extend_from_slice(&["netns", &ns.name]);
        }
        ok(&v);
        Link(name.into())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.0]);
    }
}

/// An address this test added to an interface it created in the root
/// namespace; removed on drop (if the interface still exists).
pub struct RootAddr {
    pub dev: String,
    pub addr: String,
}

impl RootAddr {
    /// Only records it: for addresses vswitchd adds (host ports).
    pub fn expect(dev: &str, addr: &str) -> RootAddr {
        assert_net(addr);
        RootAddr {
            dev: dev.into(),
            addr: addr.into(),
        }
    }

    pub fn add(dev: &str, addr: &str) -> RootAddr {
        assert_net(addr);
        ok(&["ip", "addr", "add", addr, "dev", dev]);
        RootAddr::expect(dev, addr)
    }
}

impl Drop for RootAddr {
    fn drop(&mut self) {
        let _ = run(&["ip", "addr", "del", &self.addr, "dev", &self.dev]);
    }
}

/// Addresses in these tests come from 198.18.0.0/15 only.
pub fn assert_net(cidr: &str) {
    assert!(
        cidr.starts_with("198.18.") || cidr.starts_with("198.19."),
        "{cidr} is outside 198.18.0.0/15"
    );
}

/// An nft table of this test's own (named after it), deleted on drop: all
/// the test's rules live in it, so removing it removes exactly them.
pub struct NftTable {
    pub family: String,
    pub name: String,
}

impl NftTable {
    pub fn new(family: &str, name: &str) -> NftTable {
        let _ = run(&["nft", "delete", "table", family, name]);
        ok(&["nft", "add", "table", family, name]);
        NftTable {
            family: family.into(),
            name: name.into(),
        }
    }

    /// `nft add chain FAMILY NAME CHAIN { SPEC }`
    pub fn chain(&self, chain: &str, spec: &str) {
        ok(&[
            "nft",
            &format!(
                "add chain {} {} {chain} {{ {spec} }}",
                self.family, self.name
            ),
        ]);
    }

    /// `nft add rule FAMILY NAME CHAIN RULE`
    pub fn rule(&self, chain: &str, rule: &str) {
        ok(&[
            "nft",
            &format!("add rule {} {} {chain} {rule}", self.family, self.name),
        ]);
    }

    pub fn list(&self) -> String {
        String::from_utf8_lossy(&run(&["nft", "list", "table", &self.family, &self.name]).stdout)
            .into_owned()
    }

    pub fn exists(family: &str, name: &str) -> bool {
        run(&["nft", "list", "table", family, name])
            .status
            .success()
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let _ = run(&["nft", "delete", "table", &self.family, &self.name]);
    }
}

/// A root-namespace sysctl set for the test; the old value comes back on
/// drop.
pub struct Sysctl {
    path: PathBuf,
    old: String,
}

impl Sysctl {
    pub fn set(key: &str, value: &str) -> Sysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let old = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string();
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        Sysctl { path, old }
    }

    pub fn read(key: &str) -> String {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.old);
    }
}

/// A TCP listener on `bind:port` in `server` accepting one connection, and
/// a client in `client` connecting to `dst:port` (retrying, bounded).
/// Returns (peer address the listener saw, client's own source address).
pub fn tcp_peer(server: At, bind: &str, port: u16, client: At, dst: &str) -> (String, String) {
    let listen = format!(
        "import socket\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{bind}', {port})); s.listen(1); s.settimeout(15)\n\
         c,a=s.accept(); print('PEER', a[0], flush=True); c.sendall(b'hi\\n'); c.close()\n"
    );
    let connect = format!(
        "import socket, sys, time\n\
         d=time.time()+12\n\
         while True:\n\
         \x20 try:\n\
         \x20\x20 s=socket.create_connection(('{dst}', {port}), timeout=2); break\n\
         \x20 except OSError as e:\n\
         \x20\x20 if time.time()>d: print('FAIL', e); sys.exit(1)\n\
         \x20\x20 time.sleep(0.2)\n\
         print('LOCAL', s.getsockname()[0]); print('GOT', s.recv(64).decode().strip())\n"
    );
    let mut srv = server.spawn(&["timeout", "20", "/usr/bin/python3", "-c", &listen]);
    let c = client.run(&["timeout", "20", "/usr/bin/python3", "-c", &connect]);
    let so = finish(&mut srv, Duration::from_secs(20))
        .map(|o| text(&o))
        .unwrap_or_else(|| "(listener did not finish)".into());
    let ct = text(&c);
    assert!(
        c.status.success() && ct.contains("GOT hi"),
        "TCP {} -> {dst}:{port} (listener in {}) failed: client: {ct} listener: {so}",
        client.label(),
        server.label()
    );
    let peer = so
        .lines()
        .find_map(|l| l.strip_prefix("PEER "))
        .unwrap_or_else(|| panic!("listener in {} printed no peer: {so}", server.label()))
        .trim()
        .to_string();
    let local = ct
        .lines()
        .find_map(|l| l.strip_prefix("LOCAL "))
        .unwrap_or_default()
        .trim()
        .to_string();
    (peer, local)
}

/// One bounded iperf3 TCP flow (`secs` long) from `client` to an iperf3
/// server on `ip` in `server`. Returns the bytes the receiver counted.
pub fn iperf(server: At, ip: &str, client: At, secs: u32) -> u64 {
    let port = "5201";
    let mut srv = server.spawn(&["timeout", "40", "iperf3", "-s", "-1", "-B", ip, "-p", port]);
    let t = secs.to_string();
    let mut last = String::new();
    for _ in 0..25 {
        let o = client.run(&[
            "timeout",
            "30",
            "iperf3",
            "-c",
            ip,
            "-p",
            port,
            "-t",
            &t,
            "-J",
            "--connect-timeout",
            "3000",
        ]);
        last = text(&o);
        // iperf3 -J exits 0 even when it could not connect: read "error".
        let v: Option<serde_json::Value> = serde_json::from_slice(&o.stdout).ok();
        let error = v
            .as_ref()
            .and_then(|v| v["error"].as_str().map(str::to_string));
        match (&v, error) {
            (_, Some(e)) if e.contains("refused") => {
                // The server is not listening yet.
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            (Some(v), None) if o.status.success() => {
                let got = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
                let srv_out = finish(&mut srv, Duration::from_secs(5))
                    .map(|o| text(&o))
                    .unwrap_or_default();
                assert!(
                    got > 0,
                    "iperf3 {} -> {ip} ({}) moved 0 bytes:\nclient: {last}\nserver: {srv_out}",
                    client.label(),
                    server.label()
                );
                return got;
            }
            _ => break,
        }
    }
    panic!(
        "iperf3 {} -> {ip} ({}) failed: {last}",
        client.label(),
        server.label()
    );
}

/// A bounded tcpdump (`-n -e`, line-buffered) writing to a file.
pub struct Capture {
    proc: Bg,
    out: PathBuf,
    err: PathBuf,
}

impl Capture {
    /// Starts capturing on `dev` in `at` and waits until tcpdump listens.
    pub fn start(at: At, dev: &str, filter: &str, secs: u32, dir: &Path) -> Capture {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!("{}-{dev}-{}", at.label(), N.fetch_add(1, Ordering::Relaxed));
        let out = dir.join(format!("{tag}.txt"));
        let err = dir.join(format!("{tag}.err"));
        let cmd = format!(
            "exec timeout {secs} tcpdump -l -n -e -i {dev} {filter} >{} 2>{}",
            out.display(),
            err.display()
        );
        let proc = at.spawn(&["sh", "-c", &cmd]);
        let c = Capture { proc, out, err };
        wait_for(
            &format!("tcpdump on {dev} in {}", at.label()),
            10,
            || {
                std::fs::read_to_string(&c.err)
                    .unwrap_or_default()
                    .contains("listening on")
            },
            || std::fs::read_to_string(&c.err).unwrap_or_default(),
        );
        c
    }

    /// Stops the capture; returns the lines it printed.
    pub fn finish(mut self) -> Vec<String> {
        // Let the last frames reach tcpdump before it stops.
        std::thread::sleep(Duration::from_millis(300));
        self.proc.stop(Duration::from_secs(5));
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// MACs the switch has in its FDB on `port`.
pub fn fdb_macs(sw: &Switchd, port: &str) -> Vec<String> {
    let v = sw.ctl_json(&["fdb", "show", "--port", port]);
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["mac"].as_str().map(str::to_lowercase))
        .collect()
}

/// What the switch says about itself, for failure messages.
pub fn switch_state(sw: &Switchd) -> String {
    let show = sw.ctl(&["show"]);
    let fdb = sw.ctl(&["fdb", "show"]);
    format!(
        "--- vswitchctl show\n{}--- vswitchctl fdb show\n{}--- vswitchd log\n{}",
        text(&show),
        text(&fdb),
        sw.log_text()
    )
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("vswitchd.toml");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    p
}

// ---------------------------------------------------------------- QEMU

pub const QEMU: &str = "qemu-system-x86_64";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether QEMU tests must run: fails (panics) when QEMU is missing,
/// unless VSWITCH_SKIP_QEMU=1, in which case the test is skipped (false).
pub fn qemu_required() -> bool {
    let have = run(&["sh", "-c", &format!("command -v {QEMU}")])
        .status
        .success();
    if have {
        return true;
    }
    if std::env::var("VSWITCH_SKIP_QEMU").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {QEMU} not found and VSWITCH_SKIP_QEMU=1");
        return false;
    }
    panic!(
        "{QEMU} not found: install qemu-system-x86 (apt-get install qemu-system-x86), \
         or set VSWITCH_SKIP_QEMU=1 to skip the QEMU topologies"
    );
}

/// Builds (or finds, cached) the test guest: tests/qemu/build-guest.sh.
pub fn guest_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-guest");
    let script = repo().join("tests/qemu/build-guest.sh");
    let o = run(&[
        "timeout",
        "600",
        script.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "building the test guest failed ({}): {}",
        script.display(),
        text(&o)
    );
    dir
}

pub fn vs_serve() -> PathBuf {
    repo().join("tests/qemu/guest/vs-serve")
}

/// A QEMU test guest (tests/qemu/run-guest.sh) with its serial log.
pub struct Guest {
    pub proc: Bg,
    pub log: PathBuf,
}

impl Guest {
    /// Boots a guest whose NIC is a tap QEMU opens itself (`script=no`).
    pub fn start_on_tap(dir: &Path, tap: &str, mac: &str, append: &str, logdir: &Path) -> Guest {
        let log = logdir.join(format!("guest-{tap}.log"));
        let errlog = logdir.join(format!("guest-{tap}.err"));
        let netdev = format!("tap,id=n0,ifname={tap},script=no,downscript=no");
        let run_guest = repo().join("tests/qemu/run-guest.sh");
        let child: Child = Command::new(run_guest)
            .args(["--guest-dir", dir.to_str().unwrap()])
            .args(["--netdev", &netdev, "--mac", mac])
            .args(["--log", log.to_str().unwrap()])
            .args(["--timeout", "300", "--append", append])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(errlog).unwrap())
            .spawn()
            .expect("start run-guest.sh");
        Guest {
            proc: Bg::new(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .replace('\r', "")
    }

    /// The `VSGUEST ...` lines, without the prefix.
    pub fn results(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("VSGUEST ").map(|(_, r)| r.to_string()))
            .collect()
    }

    pub fn alive(&mut self) -> bool {
        match self.proc.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until a VSGUEST line starts with `prefix` (bounded; fails
    /// early if QEMU exits).
    pub fn wait_result(&mut self, prefix: &str, secs: u64) -> String {
        let t = Instant::now();
        loop {
            // Looked at before the log, so the log is read once more after
            // QEMU is gone.
            let alive = self.alive();
            if let Some(l) = self.results().into_iter().find(|l| l.starts_with(prefix)) {
                return l;
            }
            assert!(
                alive,
                "guest exited before `VSGUEST {prefix}`:\n{}",
                self.log_text()
            );
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "no `VSGUEST {prefix}` after {secs} s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (bounded) for QEMU to exit after the guest powers off.
    pub fn wait_exit(&mut self, secs: u64) -> bool {
        finish(&mut self.proc, Duration::from_secs(secs)).is_some()
    }
}
