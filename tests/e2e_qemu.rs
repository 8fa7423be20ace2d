//! Real QEMU guests on vswitchd: runs the scripts in `tests/qemu/` with the
//! binaries of this build and asserts they pass.
//!
//! - `two-guests.sh`: a guest on a tap (raw: port), a guest on a unix stream
//!   socket (unix: port) and a namespace host on a vswitchd TAP; pings and
//!   TCP both ways between all of them (GSO frames segmented in software on
//!   the way to the unix: guest).
//! - `restart-guest.sh`: the guests of tap, unix: and unixgram: ports power
//!   off and boot again on the running switch; hot-add through
//!   `dist/qemu-ifup`/`dist/qemu-ifdown`.
//!
//! Needs root, `qemu-system-x86_64` and `busybox-static`; the guest is built
//! into `target/qemu-guest` (cached; the first build downloads a Debian
//! kernel package). A script that cannot run exits 77: that is a failure
//! unless `VSWITCH_SKIP_QEMU=1` is set (then the test passes and says why).
//! The scripts boot several guests under TCG; they run one at a time.

use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// Two scripts at once would put 5 TCG guests on the CPUs and time out.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run_script(name: &str, limit_secs: u32) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/tests/qemu/{name}");
    let t0 = Instant::now();
    let out = Command::new("timeout")
        .args(["--kill-after=10", &limit_secs.to_string(), "bash", &script])
        .env("VSWITCHD_BIN", env!("CARGO_BIN_EXE_vswitchd"))
        .env("VSWITCHCTL_BIN", env!("CARGO_BIN_EXE_vswitchctl"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {script}: {e} (are `timeout` and `bash` installed?)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by the test harness on failure, or with --nocapture.
    println!("---- {name} stdout ----\n{stdout}");
    println!("---- {name} stderr ----\n{stderr}");
    println!(
        "{name}: {:?} in {:.1} s",
        out.status,
        t0.elapsed().as_secs_f64()
    );
    match out.status.code() {
        Some(0) => {}
        Some(77) => {
            let why = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(no reason given)");
            if std::env::var("VSWITCH_SKIP_QEMU").as_deref() == Ok("1") {
                eprintln!("{name}: SKIPPED (VSWITCH_SKIP_QEMU=1): {why}");
            } else {
                panic!(
                    "{name} could not run: {why}\n\
                     It needs root, qemu-system-x86_64 (Debian: qemu-system-x86) and \
                     busybox-static. Set VSWITCH_SKIP_QEMU=1 to let this test pass without them."
                );
            }
        }
        Some(124) | Some(137) => panic!("{name} took longer than {limit_secs} s and was stopped"),
        _ => {
            let lines: Vec<&str> = stdout.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            panic!("{name} failed ({:?}); its last lines:\n{tail}", out.status)
        }
    }
}

#[test]
fn two_guests_on_raw_and_unix_ports() {
    run_script("two-guests.sh", 300);
}

#[test]
fn guests_restart_and_hot_add() {
    run_script("restart-guest.sh", 300);
}
