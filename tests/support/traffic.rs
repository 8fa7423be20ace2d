//! Real traffic through real tools, each bounded: a background ping, a TCP
//! connection that reports both ends' addresses (`tcp_peer.py`), iperf3,
//! and tcpdump as the independent decoder of what crossed a wire.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::cmd::{Bg, python, run, strs, text};
use super::frame::unhex;
use super::net::{At, Netns};
use super::wait::{PATIENCE, wait_for};

/// A ping run in the background, bounded by `timeout`.
pub struct BgPing {
    proc: Bg,
}

impl BgPing {
    /// `ping -c count -i interval dst` from `ns`.
    pub fn start(ns: &Netns, dst: &str, count: u32, interval: &str) -> BgPing {
        BgPing::start_sized(ns, dst, count, interval, 56)
    }

    /// Like [`BgPing::start`] with `data` bytes of ICMP data (`-s`); 18
    /// makes 64-byte Ethernet frames (60 + FCS).
    pub fn start_sized(ns: &Netns, dst: &str, count: u32, interval: &str, data: u32) -> BgPing {
        let c = count.to_string();
        let s = data.to_string();
        let proc = ns.spawn(&[
            "timeout", "120", "ping", "-c", &c, "-i", interval, "-s", &s, "-W", "5", "-q", dst,
        ]);
        BgPing { proc }
    }

    /// Ends the ping early, as Ctrl-C would (it still prints its summary
    /// for [`BgPing::finish`]).
    pub fn interrupt(&self) {
        super::cmd::signal(self.proc.pid(), "INT");
    }

    /// Whether the ping is still running.
    pub fn running(&mut self) -> bool {
        self.proc.alive()
    }

    /// Waits for the ping to end; returns (sent, received, summary).
    pub fn finish(mut self) -> (u32, u32, String) {
        let o = self
            .proc
            .finish(Duration::from_secs(150))
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
        (sent, recv, text)
    }
}

/// `tcp_peer.py MODE ADDR PORT`, bounded.
fn tcp_peer_argv(mode: &str, addr: &str, port: u16) -> Vec<String> {
    let mut v = python("tcp_peer.py", 20);
    v.extend([mode.to_string(), addr.to_string(), port.to_string()]);
    v
}

/// A TCP listener on `bind:port` in `server` accepting one connection, and
/// a client in `client` connecting to `dst:port` (retrying, bounded).
/// Returns (peer address the listener saw, client's own source address).
pub fn tcp_peer(server: At, bind: &str, port: u16, client: At, dst: &str) -> (String, String) {
    let mut srv = server.spawn(&strs(&tcp_peer_argv("listen", bind, port)));
    let c = client.run(&strs(&tcp_peer_argv("connect", dst, port)));
    let so = srv
        .finish(Duration::from_secs(20))
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

/// A one-shot iperf3 server (`-s -1`) on `ip`:5201 in `at`, bounded;
/// returned once it listens.
pub fn iperf3_server(at: At, ip: &str) -> Bg {
    iperf3_server_for(at, ip, 120)
}

/// [`iperf3_server`] that lives at most `secs` seconds. Without
/// per-second reports (`-i 0`): nobody reads its stdout pipe until it
/// ends, and a line a second fills the 64 KiB pipe in about a quarter of
/// an hour; the server then blocks writing, stops reading its socket, and
/// the stream stalls (the first 30-minute soak lost its TCP so).
pub fn iperf3_server_for(at: At, ip: &str, secs: u64) -> Bg {
    let limit = secs.to_string();
    let srv = at.spawn(&[
        "timeout", &limit, "iperf3", "-s", "-1", "-i", "0", "-B", ip, "-p", "5201",
    ]);
    let listening = wait_for(PATIENCE, || {
        let o = at.run(&["ss", "-Hltn", "sport = :5201"]);
        String::from_utf8_lossy(&o.stdout).contains(&format!("{ip}:5201"))
    });
    assert!(
        listening.is_some(),
        "iperf3 server on {ip} in {} never listened",
        at.label()
    );
    srv
}

/// One bounded iperf3 TCP test from `client` to a fresh server on `ip` in
/// `server`, with `args` (`-t 3`, `-R`, `-n 8M`...). Panics unless it ran;
/// returns its `-J` report.
pub fn iperf3(server: At, ip: &str, client: At, args: &[&str]) -> Value {
    let mut srv = iperf3_server(server, ip);
    let mut v = vec![
        "timeout",
        "60",
        "iperf3",
        "-c",
        ip,
        "-p",
        "5201",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    v.extend_from_slice(args);
    let o = client.run(&v);
    let srv_out = srv
        .finish(Duration::from_secs(20))
        .map(|o| text(&o))
        .unwrap_or_default();
    // iperf3 -J can exit 0 although it failed: read "error" too.
    let report: Option<Value> = serde_json::from_slice(&o.stdout).ok();
    let error = report.as_ref().and_then(|r| r["error"].as_str());
    assert!(
        o.status.success() && report.is_some() && error.is_none(),
        "iperf3 {args:?} {} -> {ip} ({}) failed:\nclient: {}\nserver: {srv_out}",
        client.label(),
        server.label(),
        text(&o)
    );
    report.unwrap()
}

/// The bytes the receiving side counted, from an iperf3 `-J` report.
pub fn received_bytes(report: &Value) -> u64 {
    report["end"]["sum_received"]["bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no end.sum_received.bytes in {report}"))
}

/// A bounded tcpdump on one interface writing a pcap file, decoded when it
/// is finished. 64 MiB of kernel buffer, so a flood is not dropped, and
/// immediate mode: tcpdump stops at SIGTERM without reading what is left
/// in its ring, and without immediate mode that can be the last second.
pub struct Capture {
    proc: Bg,
    pcap: PathBuf,
}

impl Capture {
    /// Starts capturing on `dev` in `at` (BPF `filter`, may be empty; at
    /// most `secs`)
    /// into a file in `dir`; returns once tcpdump listens.
    pub fn start(at: At, dev: &str, filter: &str, secs: u32, dir: &Path) -> Capture {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!("{}-{dev}-{}", at.label(), N.fetch_add(1, Ordering::Relaxed));
        let pcap = dir.join(format!("{tag}.pcap"));
        let err = dir.join(format!("{tag}.err"));
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!("'{filter}'")
        };
        let cmd = format!(
            "exec timeout {secs} tcpdump -n --immediate-mode -B 65536 -i {dev} -w {} {filter} 2>{}",
            pcap.display(),
            err.display()
        );
        let proc = at.spawn(&["sh", "-c", &cmd]);
        let listening = wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("listening on")
        });
        assert!(
            listening.is_some(),
            "tcpdump on {dev} in {} did not start: {}",
            at.label(),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        Capture { proc, pcap }
    }

    /// Stops the capture (after letting the last frames reach it) and
    /// decodes the file with `tcpdump -r` and `flags`.
    fn decode(mut self, flags: &[&str]) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.proc.stop(Duration::from_secs(5));
        let mut v = vec!["tcpdump", "-r", self.pcap.to_str().unwrap()];
        v.extend_from_slice(flags);
        String::from_utf8_lossy(&run(&v).stdout).into_owned()
    }

    /// Stops the capture; returns its lines as `tcpdump -n -e` prints them.
    pub fn finish(self) -> Vec<String> {
        self.decode(&["-n", "-e"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Stops the capture; returns each frame as tcpdump's `-n -e` text and
    /// the frame's bytes (as captured, VLAN tag included).
    pub fn frames(self) -> Vec<(String, Vec<u8>)> {
        let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
        for l in self.decode(&["-n", "-e", "-xx"]).lines() {
            let indented = l.starts_with(char::is_whitespace);
            match (frames.last_mut(), l.trim_start().strip_prefix("0x")) {
                (Some((_, bytes)), Some(dump)) if indented => {
                    let words = dump.split_once(':').map_or("", |(_, w)| w);
                    for w in words.split_whitespace() {
                        bytes.extend(unhex(w));
                    }
                }
                (Some((head, _)), None) if indented => {
                    head.push('\n');
                    head.push_str(l);
                }
                _ => frames.push((l.to_string(), Vec::new())),
            }
        }
        frames
    }
}
