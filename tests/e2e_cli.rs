//! End-to-end: vswitchd's command line on bad input (no traffic). Every
//! error exits non-zero, names the port (or file, address) and says what
//! to do, and leaves nothing half-created: a valid port listed before the
//! bad one must not exist afterwards.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

use support::cmd::{names, repo, require_root, run, vswitchd_bin};
use support::net::{Link, iface_exists};
use support::state::port_state;
use support::switchd::Switchd;
use support::wait::wait_for;

/// Runs vswitchd (bounded) with the metrics endpoint and control socket
/// off unless `args` sets them; returns (exit code, stdout, stderr).
fn vswitchd(args: &[&str]) -> (i32, String, String) {
    vswitchd_as(&[], vswitchd_bin(), args)
}

fn vswitchd_as(prefix: &[&str], bin: &str, args: &[&str]) -> (i32, String, String) {
    let mut v: Vec<&str> = vec!["timeout", "-s", "KILL", "30"];
    v.extend_from_slice(prefix);
    v.push(bin);
    v.extend_from_slice(args);
    if !args.contains(&"--metrics-addr") {
        v.extend(["--metrics-addr", "off"]);
    }
    if !args.contains(&"--control-socket") {
        v.extend(["--control-socket", "off"]);
    }
    let o: Output = run(&v);
    let code = o.status.code().unwrap_or(-1);
    assert_ne!(
        code, 137,
        "vswitchd {args:?} did not exit by itself within 30 s"
    );
    (
        code,
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Asserts that no interface `name` is left in the root namespace (a TAP
/// goes away when its last fd closes, i.e. when vswitchd has exited).
fn assert_absent(name: &str, case: &str) {
    let gone = wait_for(Duration::from_secs(5), || !iface_exists(name));
    if gone.is_none() {
        let _ = run(&["ip", "link", "del", name]);
        panic!("{case}: `{name}` was left behind");
    }
}

fn assert_mentions(stderr: &str, case: &str, words: &[&str]) {
    for w in words {
        assert!(
            stderr.contains(w),
            "{case}: stderr does not mention `{w}`:\n{stderr}"
        );
    }
}

#[test]
fn unknown_option_is_rejected() {
    let (code, _, err) = vswitchd(&["--bogus-option"]);
    assert_eq!(code, 2, "{err}");
    assert_mentions(&err, "unknown option", &["--bogus-option", "--help"]);
}

#[test]
fn bad_port_lists_are_rejected_before_anything_is_created() {
    require_root();
    let base = names("clp");
    let first = format!("{base}a");
    let long = "abcdefghijklmnop"; // 16 bytes
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("{first},,{base}b"), vec!["--ports", "empty"]),
        (format!("{first},{first}"), vec![&first, "twice"]),
        (format!("{first},{long}"), vec![long, "15 bytes"]),
        (format!("{first},raw:{long}"), vec![long, "15 bytes"]),
        (format!("{first},a/b"), vec!["a/b", "/"]),
        (format!("{first},a b"), vec!["a b", "whitespace"]),
        (format!("{first},foo:bar"), vec!["foo:bar", "raw:IFNAME"]),
    ];
    for (list, words) in &cases {
        let case = format!("--ports {list}");
        let (code, _, err) = vswitchd(&["--ports", list]);
        assert_ne!(code, 0, "{case}: accepted");
        assert_mentions(&err, &case, words);
        assert_absent(&first, &case);
    }
}

#[test]
fn empty_raw_port_is_named() {
    require_root();
    let first = format!("{}a", names("cle"));
    let case = "--ports X,raw:";
    let (code, _, err) = vswitchd(&["--ports", &format!("{first},raw:")]);
    assert_ne!(code, 0, "{case}: accepted");
    assert_mentions(&err, case, &["`raw:`", "empty"]);
    assert_absent(&first, case);
}

#[test]
fn tap_name_taken_by_another_interface() {
    require_root();
    let base = names("clv");
    let (first, taken, peer) = (format!("{base}a"), format!("{base}v"), format!("{base}w"));
    let _veth = Link::veth(&taken, &peer, None);
    let case = "TAP name used by a veth";
    let (code, _, err) = vswitchd(&["--ports", &format!("{first},{taken}")]);
    assert_ne!(code, 0, "{case}: accepted");
    assert_mentions(&err, case, &[&taken, "not a TAP", &format!("raw:{taken}")]);
    assert_absent(&first, case);
    assert!(
        iface_exists(&taken),
        "vswitchd removed the veth it refused to use"
    );
}

/// A raw: port whose interface is missing does not stop vswitchd (it
/// used to): the switch starts, the port is `gone` with a warning naming
/// the interface, and it is attached when the interface appears.
#[test]
fn raw_port_of_a_missing_interface() {
    require_root();
    let base = names("clr");
    let first = format!("{base}a");
    let missing = format!("{base}x");
    let sw = Switchd::start(&["--ports", &format!("{first},raw:{missing}")], &[&first]);
    let raw = format!("raw:{missing}");
    assert_eq!(port_state(&sw, &raw).as_deref(), Some("gone"));
    let log = sw.log_text();
    assert!(
        log.contains(&format!("no interface `{missing}`")) && log.contains("WARN"),
        "{log}"
    );
    let peer = format!("{base}y");
    let _veth = Link::veth(&missing, &peer, None);
    // The far end up: the port has carrier.
    assert!(run(&["ip", "link", "set", &peer, "up"]).status.success());
    assert!(
        wait_for(Duration::from_secs(15), || port_state(&sw, &raw).as_deref()
            == Some("up"))
        .is_some(),
        "not attached when it appeared: {:?}\n{}",
        port_state(&sw, &raw),
        sw.log_text()
    );
}

#[test]
fn metrics_address_in_use() {
    require_root();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let first = format!("{}a", names("clm"));
    let case = "metrics address in use";
    let (code, _, err) = vswitchd(&["--ports", &first, "--metrics-addr", &addr]);
    assert_ne!(code, 0, "{case}: accepted");
    assert_mentions(&err, case, &[&addr, "--metrics-addr"]);
    assert_absent(&first, case);
}

/// A copy of vswitchd that user nobody can run (the build directory may
/// not be reachable for it), in a directory removed on drop.
struct NobodyBin(tempfile::TempDir);

impl NobodyBin {
    fn new() -> NobodyBin {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("vswitchd");
        std::fs::copy(vswitchd_bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        NobodyBin(dir)
    }

    fn path(&self) -> String {
        self.0.path().join("vswitchd").to_str().unwrap().into()
    }
}

const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

#[test]
fn no_permission_on_dev_net_tun() {
    require_root();
    let bin = NobodyBin::new();
    let first = format!("{}a", names("cln"));
    let case = "unprivileged user";
    let (code, _, err) = vswitchd_as(&AS_NOBODY, &bin.path(), &["--ports", &first]);
    assert_ne!(code, 0, "{case}: accepted");
    assert_mentions(
        &err,
        case,
        &[
            &first,
            "/dev/net/tun",
            "Permission denied",
            "root or with CAP_NET_ADMIN",
        ],
    );
    assert_absent(&first, case);
}

#[test]
fn unwritable_control_socket_says_what_to_do() {
    require_root();
    let bin = NobodyBin::new();
    let dir = tempfile::tempdir().unwrap(); // 0700 root: nobody cannot create in it
    let sock = dir.path().join("ctl.sock");
    let sock = sock.to_str().unwrap();
    let first = format!("{}a", names("clc"));
    let case = "control socket in a directory nobody cannot write";
    let (code, _, err) = vswitchd_as(
        &AS_NOBODY,
        &bin.path(),
        &["--ports", &first, "--control-socket", sock],
    );
    assert_ne!(code, 0, "{case}: accepted");
    assert_mentions(&err, case, &[sock, "--control-socket"]);
    assert_eq!(
        err.matches("Permission denied").count(),
        1,
        "{case}: the OS error is repeated:\n{err}"
    );
    assert_absent(&first, case);
}

#[test]
fn bad_log_level_is_rejected() {
    let example = repo("examples/config/basic.toml");
    let cases: [(&str, &str, &str, &[&str]); 2] = [
        (
            "--log-level",
            "inof",
            "bad log level",
            &["inof", "error, warn, info, debug"],
        ),
        (
            "--busy-poll",
            "5000000",
            "busy-poll out of range",
            &["busy-poll", "1000000"],
        ),
    ];
    for (flag, value, case, words) in cases {
        let config = example.to_str().unwrap();
        let (code, _, err) = vswitchd(&[flag, value, "--check-config", "--config", config]);
        assert_ne!(code, 0, "{flag} {value} accepted");
        assert_mentions(&err, case, words);
    }
}

#[test]
fn help_lists_every_setting() {
    let o = run(&[vswitchd_bin(), "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--ports",
        "raw:IFNAME",
        "--config",
        "--ageing-time",
        "--fdb-size",
        "--workers",
        "--busy-poll",
        "--io-uring",
        "--no-io-uring",
        "--log-level",
        "--metrics-addr",
        "--control-socket",
        "--check-config",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}:\n{help}");
    }
}

#[test]
fn check_config_accepts_the_examples() {
    let dir = repo("examples/config");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let (code, out, err) = vswitchd(&["--check-config", "--config", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", p.display());
        assert!(out.contains("valid"), "{}: {out}", p.display());
        n += 1;
    }
    assert!(n >= 2, "examples/config has {n} configs");
}

#[test]
fn check_config_creates_nothing_and_rejects_bad_files() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let base = names("clk");
    let (a, b) = (format!("{base}a"), format!("{base}b"));
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[[port]]\nname = \"{a}\"\nvlan = {{ mode = \"access\", vid = 10 }}\n\n[[port]]\nname = \"{b}\"\nvlan = {{ mode = \"trunk\", allowed = \"10,20\" }}\n"
        ),
    )
    .unwrap();
    let (code, out, err) = vswitchd(&["--check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 port"), "{out}");
    assert_absent(&a, "--check-config");
    assert_absent(&b, "--check-config");

    let bad = dir.path().join("bad.toml");
    let bad_s = bad.to_str().unwrap();
    for (text, words) in [
        (
            format!("[switch]\nageing-time = 300\nbogus-key = 1\n[[port]]\nname = \"{a}\"\n"),
            vec![bad_s, "line 3", "bogus-key"],
        ),
        (
            format!("[[port]]\nname = \"{a}\"\nvlan = {{ mode = \"access\", vid = 4095 }}\n"),
            vec![bad_s, a.as_str(), "1-4094"],
        ),
        (
            format!("[[port]]\nname = \"{a}\"\n[[port]]\nname = \"{a}\"\n"),
            vec![bad_s, a.as_str(), "twice"],
        ),
    ] {
        std::fs::write(&bad, &text).unwrap();
        // Without --check-config too: nothing may be created.
        for check in [true, false] {
            let mut args = vec!["--config", bad_s];
            if check {
                args.push("--check-config");
            }
            let case = format!("config {text:?} (check {check})");
            let (code, _, err) = vswitchd(&args);
            assert_ne!(code, 0, "{case}: accepted");
            assert_mentions(&err, &case, &words);
            assert_absent(&a, &case);
        }
    }
    let missing = dir.path().join("missing.toml");
    let (code, _, err) = vswitchd(&["--config", missing.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_mentions(&err, "missing config", &[missing.to_str().unwrap()]);
}

#[test]
fn missing_config_error_is_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, _, err) = vswitchd(&["--config", missing.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the OS error is repeated:\n{err}"
    );
}
