//! The QEMU test guest (tests/qemu/): whether QEMU tests must run, the
//! guest image, and a guest booted on a tap with its serial log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::cmd::{Bg, repo, run, signal, text};
use super::wait::wait_for;

pub const QEMU: &str = "qemu-system-x86_64";

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

/// Builds (or finds, cached) the test guest with tests/qemu/build-guest.sh
/// in `target/qemu-guest`, where scripts/test.sh and the scripts under
/// tests/qemu/ build it too.
pub fn guest_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp");
    let dir = target.join("qemu-guest");
    let script = repo("tests/qemu/build-guest.sh");
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

/// The guest's TCP test peer (run with `busybox nc -e`).
pub fn vs_serve() -> PathBuf {
    repo("tests/qemu/guest/vs-serve")
}

/// A QEMU test guest (tests/qemu/run-guest.sh) with its serial log.
pub struct Guest {
    pub proc: Bg,
    pub log: PathBuf,
}

impl Guest {
    /// Boots a guest whose NIC is a tap QEMU opens itself (`script=no`).
    pub fn start_on_tap(dir: &Path, tap: &str, mac: &str, append: &str, logdir: &Path) -> Guest {
        let netdev = format!("tap,id=n0,ifname={tap},script=no,downscript=no");
        Guest::start(dir, &netdev, tap, mac, append, logdir)
    }

    /// Boots a guest whose NIC is a `-netdev stream` client of the unix
    /// socket `path` (a vswitchd `unix:` port, which must already listen:
    /// QEMU connects once). Its logs are named after `label`.
    pub fn start_on_unix(
        dir: &Path,
        path: &Path,
        label: &str,
        mac: &str,
        append: &str,
        logdir: &Path,
    ) -> Guest {
        let netdev = format!(
            "stream,id=n0,server=off,addr.type=unix,addr.path={}",
            path.display()
        );
        Guest::start(dir, &netdev, label, mac, append, logdir)
    }

    /// Boots a guest on `-netdev NETDEV`; its serial log is
    /// `logdir/guest-LABEL.log`.
    pub fn start(
        dir: &Path,
        netdev: &str,
        label: &str,
        mac: &str,
        append: &str,
        logdir: &Path,
    ) -> Guest {
        let log = logdir.join(format!("guest-{label}.log"));
        let errlog = logdir.join(format!("guest-{label}.err"));
        let child = Command::new(repo("tests/qemu/run-guest.sh"))
            .args(["--guest-dir", dir.to_str().unwrap()])
            .args(["--netdev", netdev, "--mac", mac])
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
        self.proc.alive()
    }

    /// The pid of QEMU itself: run-guest.sh execs `timeout`, whose one
    /// child QEMU is (None until it is forked, or once it is gone).
    pub fn qemu_pid(&self) -> Option<u32> {
        let t = self.proc.pid();
        std::fs::read_to_string(format!("/proc/{t}/task/{t}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// `kill -9` of QEMU, as a crashing or OOM-killed VM ends: no
    /// shutdown, its tap and sockets closed by the kernel. Waits (bounded)
    /// for the wrapper to see it exit; returns whether it did.
    pub fn kill_qemu(&mut self) -> bool {
        let pid = self
            .qemu_pid()
            .unwrap_or_else(|| panic!("no QEMU process under {}", self.proc.pid()));
        signal(pid, "KILL");
        self.wait_exit(20)
    }

    /// Waits until a VSGUEST line starts with `prefix` (bounded; fails
    /// early if QEMU exits).
    pub fn wait_result(&mut self, prefix: &str, secs: u64) -> String {
        let found = wait_for(Duration::from_secs(secs), || {
            // Looked at before the log, so the log is read once more after
            // QEMU is gone.
            let alive = self.alive();
            let line = self.results().into_iter().find(|l| l.starts_with(prefix));
            assert!(
                line.is_some() || alive,
                "guest exited before `VSGUEST {prefix}`:\n{}",
                self.log_text()
            );
            line
        });
        found
            .unwrap_or_else(|| panic!("no `VSGUEST {prefix}` after {secs} s:\n{}", self.log_text()))
    }

    /// Waits (bounded) for QEMU to exit after the guest powers off.
    pub fn wait_exit(&mut self, secs: u64) -> bool {
        self.proc.finish(Duration::from_secs(secs)).is_some()
    }
}
