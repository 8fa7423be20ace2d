//! Commands, background processes and names.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::wait::wait_for;

/// Panics with a clear message unless running as root (the README's test
/// command runs these tests as root).
pub fn require_root() {
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
/// at most 12 bytes so a three-byte suffix still fits an interface name.
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

/// Runs a command and panics with its output if it fails; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        text(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stdout followed by its stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command's output as (success, stdout, stderr).
pub fn out3(o: &Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Starts a command in the background: stdin closed, stdout and stderr
/// piped.
pub fn spawn(args: &[&str]) -> Bg {
    Bg::new(
        Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}")),
    )
}

/// A background process, stopped (TERM, then KILL) and reaped on drop.
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

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and waits up to `limit` (then SIGKILL); returns the
    /// exit status if it ended within `limit`.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        signal(c.id(), "TERM");
        let status = wait_for(limit, || c.try_wait().ok().flatten());
        if status.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        status
    }

    /// Waits at most `limit` for the process to end by itself and returns
    /// its output (stdout and stderr are read meanwhile, so a chatty
    /// process does not block). If it does not end, stops it with SIGTERM
    /// (which the `timeout` wrapping every command forwards to its child;
    /// SIGKILL would orphan that child), then SIGKILL, and returns None.
    pub fn finish(&mut self, limit: Duration) -> Option<Output> {
        let c = self.child.take()?;
        let pid = c.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait_with_output());
        });
        if let Ok(Ok(o)) = rx.recv_timeout(limit) {
            return Some(o);
        }
        signal(pid, "TERM");
        if rx.recv_timeout(Duration::from_secs(5)).is_err() {
            signal(pid, "KILL");
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
        None
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Sends a signal to a pid this test started.
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

/// A path inside the repository.
pub fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `argv` running one of the kit's Python scripts (tests/support/NAME) with
/// Debian's python, bounded by `timeout secs`.
pub fn python(name: &str, secs: u32) -> Vec<String> {
    let script = repo("tests/support").join(name);
    vec![
        "timeout".into(),
        secs.to_string(),
        "/usr/bin/python3".into(),
        "-u".into(),
        script.to_str().expect("UTF-8 path").into(),
    ]
}

/// The `&str`s of owned arguments.
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
