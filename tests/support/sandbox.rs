//! A systemd unit's sandbox without systemd: the capability bounding set
//! and the file-system restrictions of a `[Service]` section, read from the
//! unit file itself, applied with `unshare -m` (a private mount namespace
//! whose mounts are remounted read-only as `ProtectSystem=strict`,
//! `ProtectKernelTunables=`, `ProtectHome=` and `ReadWritePaths=` say) and
//! `setpriv` (`CapabilityBoundingSet=`, `NoNewPrivileges=`). So a test
//! follows the unit: tighten the unit and the test runs the tighter one.
//!
//! Not emulated (they need seccomp or a device cgroup):
//! `RestrictNamespaces=`, `RestrictAddressFamilies=`, `DevicePolicy=`,
//! `SystemCallArchitectures=`, `MemoryDenyWriteExecute=`.

use std::path::Path;
use std::process::Command;

/// The sandbox settings of a unit's `[Service]` section.
#[derive(Debug, Default)]
pub struct Unit {
    /// `CapabilityBoundingSet=`, lower case without `cap_` (setpriv's
    /// names), e.g. `net_admin`.
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    pub protect_system_strict: bool,
    pub protect_kernel_tunables: bool,
    pub protect_home: bool,
    pub private_tmp: bool,
    /// `ReadWritePaths=` (a leading `-`, "may be missing", dropped).
    pub read_write: Vec<String>,
    /// `RuntimeDirectory=`, as paths under /run.
    pub runtime_dirs: Vec<String>,
}

impl Unit {
    /// Reads the unit file at `path`.
    pub fn load(path: &Path) -> Unit {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Unit::parse(&text)
    }

    pub fn parse(text: &str) -> Unit {
        let mut u = Unit::default();
        let yes = |v: &str| matches!(v, "yes" | "true" | "1" | "on");
        for line in text.lines() {
            let line = line.trim();
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if line.starts_with('#') {
                continue;
            }
            let value = value.trim();
            match key.trim() {
                "CapabilityBoundingSet" => {
                    assert!(
                        !value.starts_with('~'),
                        "an inverted bounding set is not supported here: {line}"
                    );
                    u.caps.extend(value.split_whitespace().map(|c| {
                        c.strip_prefix("CAP_")
                            .unwrap_or_else(|| panic!("capability {c}"))
                            .to_ascii_lowercase()
                    }));
                }
                "NoNewPrivileges" => u.no_new_privileges = yes(value),
                "ProtectSystem" => u.protect_system_strict = value == "strict",
                "ProtectKernelTunables" => u.protect_kernel_tunables = yes(value),
                "ProtectHome" => u.protect_home = yes(value) || value == "tmpfs",
                "PrivateTmp" => u.private_tmp = yes(value),
                "ReadWritePaths" => u.read_write.extend(
                    value
                        .split_whitespace()
                        .map(|p| p.trim_start_matches('-').to_string()),
                ),
                "RuntimeDirectory" => u
                    .runtime_dirs
                    .extend(value.split_whitespace().map(|d| format!("/run/{d}"))),
                _ => {}
            }
        }
        assert!(!u.caps.is_empty(), "the unit has no CapabilityBoundingSet=");
        u
    }

    /// setpriv's `--bounding-set` argument: everything dropped but the
    /// unit's set.
    pub fn bounding_set(&self) -> String {
        let mut s = String::from("-all");
        for c in &self.caps {
            s.push_str(",+");
            s.push_str(c);
        }
        s
    }

    /// The shell script that sets up the mounts, then execs setpriv with
    /// the command (`"$@"`).
    fn script(&self) -> String {
        let mut s = String::from("set -e\n");
        // Nothing done here leaks to the host.
        s.push_str("mount --make-rslave /\n");
        if self.protect_system_strict {
            // Every mount read-only, except the API file systems (/dev,
            // /proc, /sys: ProtectSystem leaves them to the other
            // settings).
            s.push_str(
                "awk '{print $2}' /proc/self/mounts | while read -r m; do\n  case \"$m\" in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue ;; esac\n  mount -o remount,bind,ro \"$m\" 2>/dev/null || true\ndone\n",
            );
        }
        if self.protect_kernel_tunables {
            s.push_str("mount --bind /proc/sys /proc/sys\nmount -o remount,bind,ro /proc/sys\n");
            s.push_str("mount -o remount,bind,ro /sys\n");
        }
        if self.protect_home {
            for d in ["/home", "/root", "/run/user"] {
                s.push_str(&format!(
                    "if [ -d {d} ]; then mount -t tmpfs -o ro,mode=0755 tmpfs {d}; fi\n"
                ));
            }
        }
        if self.private_tmp {
            s.push_str("mount -t tmpfs tmpfs /tmp\n");
        }
        for p in self.runtime_dirs.iter().chain(&self.read_write) {
            s.push_str(&format!(
                "if [ -e {p} ]; then mount --bind {p} {p}; mount -o remount,bind,rw {p}; fi\n"
            ));
        }
        s.push_str("exec setpriv --bounding-set \"$BOUNDING\" --inh-caps -all");
        if self.no_new_privileges {
            s.push_str(" --no-new-privs");
        }
        s.push_str(" \"$@\"\n");
        s
    }

    /// A command that runs `argv` inside the unit's sandbox (as root, like
    /// the unit). The runtime directories are created first, as systemd
    /// does (mode 0755).
    pub fn command(&self, argv: &[&str]) -> Command {
        for d in &self.runtime_dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "--propagation",
            "slave",
            "sh",
            "-c",
            &self.script(),
            "sandbox",
        ])
        .args(argv)
        .env("BOUNDING", self.bounding_set());
        c
    }
}
