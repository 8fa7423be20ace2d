//! Shared harness for the end-to-end tests: network namespaces, a running
//! vswitchd, and the real tools (ip, ping, iperf3, tcpdump, scapy).
//!
//! Rules every test follows:
//! - names are unique per test and per run ([`names`]): tests run in
//!   parallel, and interface names are at most 15 bytes;
//! - addresses come from 198.18.0.0/15 only;
//! - every namespace and process is removed by a `Drop` guard, so a failing
//!   assertion still cleans up;
//! - every traffic command is bounded in count and in time (`timeout`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Panics with a clear message unless running as root (the README's test
/// command runs these tests as root).
pub fn require_root() {
    // SAFETY-free check: /proc/self/status Uid line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("1");
    assert_eq!(
        uid, "0",
        "end-to-end tests need root (network namespaces, TAPs): run `sudo ./scripts/test.sh`"
    );
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this test process and call: `{tag}{pid}{seq}`,
/// at most 12 bytes so a one-digit suffix still fits an interface name.
pub fn names(tag: &str) -> String {
    assert!(tag.len() <= 3, "tag `{tag}` too long");
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}{}", std::process::id() % 100_000, n % 100)
}

/// Runs a command, returning its output (never panics on failure).
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]))
}

/// Runs a command and panics with its stderr if it fails.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "`{}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = run(&["ip", "netns", "del", name]);
        ok(&["ip", "netns", "add", name]);
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        ok(&v)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Starts a command inside the namespace in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }

    /// Moves interface `dev` (in the root namespace) here, with `addr`
    /// (CIDR, may be empty), and brings it up.
    pub fn take(&self, dev: &str, addr: &str) {
        ok(&["ip", "link", "set", dev, "netns", &self.name]);
        if !addr.is_empty() {
            self.ip(&["addr", "add", addr, "dev", dev]);
        }
        self.ip(&["link", "set", dev, "up"]);
    }

    /// One bounded ping; true if any reply came back.
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        self.exec(&[
            "timeout",
            "20",
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            "-q",
            dst,
        ])
        .status
        .success()
    }

    /// The MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", dev]);
        out.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// A background process, killed (TERM, then KILL) and reaped on drop.
pub struct Bg {
    pub child: Option<Child>,
}

impl Bg {
    pub fn new(child: Child) -> Bg {
        Bg { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGTERM and waits up to `limit`; returns the exit status.
    pub fn stop(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        signal(c.id(), "TERM");
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Waits for the process to end by itself, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<Output> {
        let c = self.child.take()?;
        let pid = c.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(Ok(o)) => Some(o),
            _ => {
                signal(pid, "KILL");
                None
            }
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Sends a signal to a pid we started.
pub fn signal(pid: u32, sig: &str) {
    let _ = run(&["kill", &format!("-{sig}"), &pid.to_string()]);
}

/// Path of the vswitchd binary cargo built for the tests.
pub fn vswitchd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vswitchd")
}

pub fn vswitchctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_vswitchctl")
}

/// A running vswitchd with its control socket in a temp dir.
pub struct Switchd {
    pub proc: Bg,
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Switchd {
    /// Starts vswitchd with `args` (metrics off unless given, control
    /// socket in a private directory), and waits until every interface in
    /// `wait_for` exists.
    pub fn start(args: &[&str], wait_for: &[&str]) -> Switchd {
        let dir = std::env::temp_dir().join(format!("vswitchd-test-{}", names("s")));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let log = dir.join("vswitchd.log");
        let mut cmd = Command::new(vswitchd_bin());
        cmd.args(args);
        if !args.contains(&"--metrics-addr") {
            cmd.args(["--metrics-addr", "off"]);
        }
        if !args.contains(&"--control-socket") {
            cmd.args(["--control-socket", socket.to_str().unwrap()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // Info unless the test asks for a level (RUST_LOG would override it).
        if args.contains(&"--log-level") {
            cmd.env_remove("RUST_LOG");
        } else {
            cmd.env("RUST_LOG", "info");
        }
        let proc = Bg::new(cmd.spawn().expect("start vswitchd"));
        let s = Switchd {
            proc,
            socket,
            dir,
            log,
        };
        let t = Instant::now();
        loop {
            if wait_for
                .iter()
                .all(|d| Path::new("/sys/class/net").join(d).exists())
                && (args.contains(&"--control-socket") || s.socket.exists())
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "vswitchd did not come up: {}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs vswitchctl against this switch.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut v = vec![vswitchctl_bin(), "--socket", self.socket.to_str().unwrap()];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Runs vswitchctl and panics unless it succeeds; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "vswitchctl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `vswitchctl --json ARGS` parsed.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut v = vec!["--json"];
        v.extend_from_slice(args);
        serde_json::from_str(&self.ctl_ok(&v)).expect("vswitchctl --json output")
    }
}

impl Drop for Switchd {
    fn drop(&mut self) {
        self.proc.stop(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a scapy script with Debian's python (which has scapy).
pub fn scapy(script: &str, limit_secs: u32) -> Output {
    run(&[
        "timeout",
        &limit_secs.to_string(),
        "/usr/bin/python3",
        "-c",
        script,
    ])
}

/// Runs a scapy script inside a namespace.
pub fn scapy_in(ns: &Netns, script: &str, limit_secs: u32) -> Output {
    ns.exec(&[
        "timeout",
        &limit_secs.to_string(),
        "/usr/bin/python3",
        "-c",
        script,
    ])
}
