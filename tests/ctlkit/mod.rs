//! Helpers for the control-plane and metrics end-to-end tests (on top of
//! `tests/common`): raw Ethernet frames sent and captured with AF_PACKET
//! from Debian's python (no scapy start-up cost), bounded waits, and
//! readers for `vswitchctl --json` output and Prometheus text.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{Bg, Netns, Switchd};

/// Polls `f` every 100 ms until it returns true or `limit` passes.
/// Returns whether it became true.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A locally administered unicast MAC unique to this process and `n`.
pub fn fake_mac(n: u8) -> String {
    let pid = std::process::id();
    format!(
        "02:5e:{:02x}:{:02x}:{:02x}:{:02x}",
        (pid >> 16) & 0xff,
        (pid >> 8) & 0xff,
        pid & 0xff,
        n
    )
}

pub fn mac_bytes(mac: &str) -> [u8; 6] {
    let v: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex MAC"))
        .collect();
    v.try_into().expect("6-byte MAC")
}

/// An Ethernet frame with EtherType 0x88b5 (local experimental) and
/// `payload` (padded to the 60-byte minimum).
pub fn frame(dst: &str, src: &str, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac_bytes(dst));
    f.extend_from_slice(&mac_bytes(src));
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(payload);
    while f.len() < 60 {
        f.push(0);
    }
    f
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

/// Writes each frame once to `dev` in `ns` through an AF_PACKET socket.
pub fn send_frames(ns: &Netns, dev: &str, frames: &[Vec<u8>]) {
    let list: Vec<String> = frames.iter().map(|f| format!("'{}'", hex(f))).collect();
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(('{dev}', 0))\n\
         for h in [{}]:\n    s.send(bytes.fromhex(h))\n",
        list.join(",")
    );
    let o = ns.exec(&["timeout", "20", "/usr/bin/python3", "-c", &script]);
    assert!(
        o.status.success(),
        "sending frames on {dev} in {}: {}",
        ns.name,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Captures the frames arriving on `dev` (not the ones the namespace
/// sends) until a frame containing the fence bytes arrives, or 20 s pass.
pub struct Sniffer {
    proc: Bg,
    lines: mpsc::Receiver<String>,
    dev: String,
}

impl Sniffer {
    /// Starts the capture and returns once its socket is bound.
    pub fn start(ns: &Netns, dev: &str, fence: &[u8]) -> Sniffer {
        let script = format!(
            "import socket, sys, time\n\
             s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))\n\
             s.bind(('{dev}', 0))\n\
             s.settimeout(0.2)\n\
             print('READY', flush=True)\n\
             fence = bytes.fromhex('{fence}')\n\
             end = time.monotonic() + 20\n\
             while time.monotonic() < end:\n\
             \x20   try:\n\
             \x20       data, addr = s.recvfrom(65535)\n\
             \x20   except socket.timeout:\n\
             \x20       continue\n\
             \x20   if addr[2] == socket.PACKET_OUTGOING:\n\
             \x20       continue\n\
             \x20   print('F ' + data.hex(), flush=True)\n\
             \x20   if fence in data:\n\
             \x20       break\n\
             print('END', flush=True)\n",
            fence = hex(fence)
        );
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "timeout",
                "30",
                "/usr/bin/python3",
                "-c",
            ])
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sniffer");
        let out = child.stdout.take().expect("sniffer stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let s = Sniffer {
            proc: Bg::new(child),
            lines: rx,
            dev: dev.to_string(),
        };
        match s.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == "READY" => s,
            other => panic!("sniffer on {dev} did not start: {other:?}"),
        }
    }

    /// Waits (at most 25 s) for the fence or the capture's end and returns
    /// the frames seen.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(25) {
            match self.lines.recv_timeout(Duration::from_millis(500)) {
                Ok(l) if l == "END" => break,
                Ok(l) => {
                    if let Some(h) = l.strip_prefix("F ") {
                        frames.push(unhex(h));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.proc.stop(Duration::from_secs(2));
        frames
    }
}

/// Whether any frame contains `needle`.
pub fn seen(frames: &[Vec<u8>], needle: &[u8]) -> bool {
    frames
        .iter()
        .any(|f| f.windows(needle.len()).any(|w| w == needle))
}

/// The `show` entry of port `name`, if the switch lists it.
pub fn port_info(sw: &Switchd, name: &str) -> Option<serde_json::Value> {
    let show = sw.ctl_json(&["show"]);
    show["ports"]
        .as_array()
        .expect("show: ports array")
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

/// The state (`up`, `down`, `link-down`, `gone`) of port `name`.
pub fn port_state(sw: &Switchd, name: &str) -> Option<String> {
    port_info(sw, name).map(|p| p["state"].as_str().unwrap_or_default().to_string())
}

/// `fdb show --json` as (mac, port, static) triples.
pub fn fdb(sw: &Switchd) -> Vec<(String, String, bool)> {
    sw.ctl_json(&["fdb", "show"])
        .as_array()
        .expect("fdb show: array")
        .iter()
        .map(|e| {
            (
                e["mac"].as_str().unwrap_or_default().to_lowercase(),
                e["port"].as_str().unwrap_or_default().to_string(),
                e["static"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Where the FDB puts `mac`, if anywhere.
pub fn fdb_port_of(sw: &Switchd, mac: &str) -> Option<(String, bool)> {
    let mac = mac.to_lowercase();
    fdb(sw)
        .into_iter()
        .find(|(m, _, _)| *m == mac)
        .map(|(_, p, s)| (p, s))
}

/// A ping run in the background, bounded by `timeout`.
pub struct BgPing {
    proc: Bg,
    count: u32,
}

impl BgPing {
    /// `ping -c count -i interval dst` from `ns`.
    pub fn start(ns: &Netns, dst: &str, count: u32, interval: &str) -> BgPing {
        let c = count.to_string();
        let child = ns.spawn(&[
            "timeout", "120", "ping", "-c", &c, "-i", interval, "-W", "5", "-q", dst,
        ]);
        BgPing {
            proc: Bg::new(child),
            count,
        }
    }

    /// Whether the ping is still running.
    pub fn running(&mut self) -> bool {
        self.proc
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the ping to end; returns (sent, received, summary).
    pub fn finish(mut self) -> (u32, u32, String) {
        let o = self
            .proc
            .wait(Duration::from_secs(150))
            .expect("background ping did not end");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (mut sent, mut recv) = (0, 0);
        for l in text.lines() {
            if l.contains("packets transmitted") {
                let nums: Vec<u32> = l.split([',', ' ']).filter_map(|w| w.parse().ok()).collect();
                if nums.len() >= 2 {
                    sent = nums[0];
                    recv = nums[1];
                }
            }
        }
        let _ = self.count;
        (sent, recv, text)
    }
}

/// Disables IPv6 in a namespace (before interfaces move in), so idle
/// interfaces stay quiet: no router solicitations or MLD reports.
pub fn quiet_ipv6(ns: &Netns) {
    for k in [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ] {
        let o = ns.exec(&["sysctl", "-qw", k]);
        assert!(o.status.success(), "sysctl {k} in {}", ns.name);
    }
}

/// Output of a command as (success, stdout, stderr).
pub fn out3(o: &std::process::Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
