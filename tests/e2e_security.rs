//! What vswitchd gives up and refuses (issue 23, docs/security.md): once
//! running it keeps only CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN and
//! CAP_CHOWN (its bounding set too), its dataplane threads, which parse
//! guests' frames, keep none; it refuses to start with a config file
//! others may write or a control socket in a directory others may write.
//!
//! Root: `sudo -E cargo test --release --test e2e_security`. No traffic.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use support::cmd::{names, require_root, vswitchd_bin};
use support::switchd::Switchd;

/// A capability set from /proc/.../status (`CapEff`, `CapBnd`...).
fn caps(status: &str, field: &str) -> u64 {
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in status"));
    u64::from_str_radix(v.trim().trim_start_matches(':').trim(), 16).unwrap()
}

/// CAP_CHOWN (0), CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_SYS_ADMIN (21).
const KEPT: u64 = (1 << 0) | (1 << 12) | (1 << 13) | (1 << 21);

#[test]
fn vswitchd_keeps_four_capabilities_and_its_dataplane_none() {
    require_root();
    let tap = format!("{}t", names("sec"));
    let sw = Switchd::start(&["--ports", &tap], &[&tap]);
    let pid = sw.proc.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // What vswitchd was given: this test's own sets (root's, or less in
    // a container), of which it keeps the four.
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let given = caps(&mine, "CapEff:") & caps(&mine, "CapBnd:");
    assert_eq!(caps(&status, "CapEff:"), KEPT & given, "{status}");
    assert_eq!(caps(&status, "CapPrm:"), KEPT & given);
    assert_eq!(caps(&status, "CapBnd:") & !KEPT, 0, "{status}");
    assert_eq!(caps(&status, "CapInh:"), 0);
    let mut dataplane = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        if comm.trim().starts_with("vswitchd-dp") {
            let s = std::fs::read_to_string(t.join("status")).unwrap();
            assert_eq!(caps(&s, "CapEff:"), 0, "{comm}: {s}");
            assert_eq!(caps(&s, "CapPrm:"), 0, "{comm}");
            dataplane += 1;
        }
    }
    assert!(dataplane >= 1, "no dataplane thread found");
    assert!(
        sw.log_text().contains("privileges reduced"),
        "{}",
        sw.log_text()
    );
    // It still does its job: a port added at run time (CAP_NET_ADMIN).
    let extra = format!("{}u", names("sec"));
    sw.ctl_ok(&["port", "add", &extra]);
    assert!(support::net::iface_exists(&extra));
}

/// Runs vswitchd with `args`; returns (exit success, stderr).
fn start_fails(args: &[&str]) -> (bool, String) {
    let o = Command::new(vswitchd_bin())
        .args(args)
        .args(["--metrics-addr", "off"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_config_or_socket_others_may_write_is_refused() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("vswitchd.toml");
    std::fs::write(&conf, "").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o666)).unwrap();
    let sock = dir.path().join("ctl.sock");
    let (ok, err) = start_fails(&[
        "--config",
        conf.to_str().unwrap(),
        "--control-socket",
        sock.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("world-writable"), "{err}");
    // --check-config says the same.
    let (ok, err) = start_fails(&["--check-config", "--config", conf.to_str().unwrap()]);
    assert!(!ok && err.contains("world-writable"), "{err}");

    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, err) = start_fails(&[
        "--config",
        conf.to_str().unwrap(),
        "--control-socket",
        open.join("ctl.sock").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("sticky"), "{err}");
}
