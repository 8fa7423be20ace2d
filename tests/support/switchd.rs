//! A running vswitchd ([`Switchd`]), and a LAN of namespaces on its TAPs
//! ([`Lan`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::cmd::{Bg, names, run, strs, vswitchctl_bin, vswitchd_bin};
use super::net::{Netns, iface_exists, quiet_ipv6};
use super::state::wait_ports_up;
use super::wait::{PATIENCE, wait_for};

/// A running vswitchd with its control socket and log in a temp dir;
/// stopped (SIGTERM) and its directory removed on drop.
pub struct Switchd {
    pub proc: Bg,
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Switchd {
    /// Starts vswitchd with `args` (metrics off unless given, control
    /// socket in a private directory), and waits until every interface in
    /// `wait_for` exists in the root namespace.
    pub fn start(args: &[&str], wait_for_ifaces: &[&str]) -> Switchd {
        Switchd::start_under(&[], args, wait_for_ifaces)
    }

    /// [`Switchd::start`], with vswitchd run by `wrapper` (a command that
    /// takes vswitchd's path and arguments after its own, and execs them).
    pub fn start_under(wrapper: &[&str], args: &[&str], wait_for_ifaces: &[&str]) -> Switchd {
        let dir = std::env::temp_dir().join(format!("vswitchd-test-{}", names("s")));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let log = dir.join("vswitchd.log");
        let mut cmd = match wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = Command::new(prog);
                c.args(rest).arg(vswitchd_bin());
                c
            }
            None => Command::new(vswitchd_bin()),
        };
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
        let up = wait_for(Duration::from_secs(15), || {
            wait_for_ifaces.iter().all(|d| iface_exists(d))
                && (args.contains(&"--control-socket") || s.socket.exists())
        });
        assert!(up.is_some(), "vswitchd did not come up: {}", s.log_text());
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the daemon is still running.
    pub fn alive(&mut self) -> bool {
        self.proc.alive()
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

/// Writes a config file the way an editor or config management would:
/// a new file renamed over the old one.
pub fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `n` namespaces (IPv6 off), each holding one vswitchd TAP with
/// 198.18.`net`.(i+1)/24; made once vswitchd shows every port up.
pub struct Lan {
    pub sw: Switchd,
    pub ns: Vec<Netns>,
    pub taps: Vec<String>,
    pub ips: Vec<String>,
}

impl Lan {
    pub fn new(tag: &str, n: usize, net: u8) -> Lan {
        Lan::with_args(tag, n, net, |taps| vec!["--ports".into(), taps.join(",")])
    }

    /// Like [`Lan::new`], with vswitchd's arguments made from the TAP
    /// names (e.g. to write a config file naming them).
    pub fn with_args(
        tag: &str,
        n: usize,
        net: u8,
        args: impl FnOnce(&[String]) -> Vec<String>,
    ) -> Lan {
        let base = names(tag);
        let taps: Vec<String> = (0..n).map(|i| format!("{base}t{i}")).collect();
        let args = args(&taps);
        let sw = Switchd::start(&strs(&args), &strs(&taps));
        let mut ns = Vec::new();
        let mut ips = Vec::new();
        for (i, tap) in taps.iter().enumerate() {
            let n = Netns::new(&format!("{base}n{i}"));
            quiet_ipv6(&n);
            let ip = format!("198.18.{net}.{}", i + 1);
            n.take(tap, &format!("{ip}/24"));
            ns.push(n);
            ips.push(ip);
        }
        wait_ports_up(&sw, &taps);
        Lan { sw, ns, taps, ips }
    }

    /// Pings from `i` to `j` until a reply comes back (bounded).
    pub fn ping_eventually(&self, i: usize, j: usize) -> bool {
        wait_for(PATIENCE, || self.ns[i].ping(&self.ips[j], 2)).is_some()
    }

    /// Asserts that every host pings every other one (each pair bounded).
    pub fn assert_all_pairs_ping(&self) {
        for i in 0..self.ns.len() {
            for j in 0..self.ns.len() {
                if i != j {
                    assert!(
                        self.ping_eventually(i, j),
                        "ns{i} cannot ping ns{j} ({}): {}",
                        self.ips[j],
                        self.sw.log_text()
                    );
                }
            }
        }
    }

    pub fn alive(&mut self) -> bool {
        self.sw.alive()
    }
}
