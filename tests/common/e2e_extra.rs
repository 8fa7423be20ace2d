//! Extra helpers for the end-to-end tests of the e2e branch (TAP
//! dataplane, VLANs, kernel-bridge differential, CLI): a frame agent that
//! sends and sniffs raw frames inside a namespace, frame builders and
//! bounded waiting. Included with `#[path = "common/e2e_extra.rs"] mod
//! e2e_extra;` next to `mod common;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use super::common::{Netns, Switchd, names, run};

/// Longest a test waits for an "eventually" condition on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `n` namespaces (IPv6 off), each holding one vswitchd TAP with
/// 198.18.`net`.(i+1)/24; returned once vswitchd shows every port up.
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
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let wait: Vec<&str> = taps.iter().map(String::as_str).collect();
        let sw = Switchd::start(&args, &wait);
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
        wait_for(PATIENCE, || self.ns[i].ping(&self.ips[j], 2).then_some(())).is_some()
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
        matches!(
            self.sw.proc.child.as_mut().map(|c| c.try_wait()),
            Some(Ok(None))
        )
    }

    /// Waits until the iperf3 server in namespace `i` listens.
    pub fn wait_iperf_server(&self, i: usize) {
        let up = wait_for(PATIENCE, || {
            let o = self.ns[i].exec(&["ss", "-Hltn", "sport = :5201"]);
            (!String::from_utf8_lossy(&o.stdout).trim().is_empty()).then_some(())
        });
        assert!(
            up.is_some(),
            "iperf3 server in {} never listened",
            self.ns[i].name
        );
    }
}

/// Polls `f` every 50 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Disables IPv6 in a namespace so the hosts send nothing on their own
/// (no router solicitations, DAD or MLD): the switches then only see the
/// frames a test sends. Call before moving interfaces in.
pub fn quiet_ipv6(ns: &Netns) {
    for key in [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ] {
        let o = ns.exec(&["sysctl", "-q", "-w", key]);
        assert!(o.status.success(), "sysctl {key} in {}", ns.name);
    }
}

/// Python agent run in a namespace: an AF_PACKET socket bound to one
/// interface, receiving every frame that is not its own outgoing copy
/// (with the VLAN tag the kernel moved to aux data put back in place), and
/// sending the hex frames it is told to. Commands on stdin: `send HEX`
/// (answers `OK`), `dump` (answers `F HEX` per frame received since the
/// last dump, then `END`).
const AGENT: &str = r#"
import errno, socket, struct, sys, threading, time
ifname = sys.argv[1]
SOL_PACKET, PACKET_AUXDATA = 263, 8
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.bind((ifname, 0))
lock = threading.Lock()
got = []
def rx():
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(262144, socket.CMSG_SPACE(64))
        except OSError as e:
            # ENETDOWN: the link went down for a moment; anything else
            # (the interface or namespace is gone): stop quietly.
            if e.errno == errno.ENETDOWN:
                time.sleep(0.05)
                continue
            return
        if addr[0] != ifname or addr[2] == socket.PACKET_OUTGOING:
            continue
        for level, typ, cd in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cd) >= 20:
                status, _l, _s, _m, _n, tci, tpid = struct.unpack("IIIHHHH", cd[:20])
                if status & 0x10:
                    if not status & 0x40:
                        tpid = 0x8100
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        with lock:
            got.append(data.hex())
threading.Thread(target=rx, daemon=True).start()
print("READY", flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "send":
        s.send(bytes.fromhex(cmd[1]))
        print("OK", flush=True)
    elif cmd[0] == "dump":
        with lock:
            items = got[:]
            got.clear()
        out = "".join("F " + x + "\n" for x in items)
        sys.stdout.write(out + "END\n")
        sys.stdout.flush()
"#;

/// A frame agent in one namespace (see [`AGENT`]); killed on drop.
pub struct Agent {
    pub host: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every frame received so far (dumps accumulate here).
    pub received: Vec<Vec<u8>>,
}

impl Agent {
    /// Starts the agent on `dev` in `ns` and waits until it listens.
    pub fn start(ns: &Netns, dev: &str) -> Agent {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "timeout",
                "900",
                "/usr/bin/python3",
            ])
            .args(["-u", "-c", AGENT, dev])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start frame agent");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut a = Agent {
            host: format!("{}/{dev}", ns.name),
            child: Some(child),
            stdin,
            lines: rx,
            received: Vec::new(),
        };
        let l = a.line();
        assert_eq!(l, "READY", "agent {} did not start", a.host);
        a
    }

    fn line(&mut self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(l) => l,
            Err(e) => panic!("agent {}: no answer ({e})", self.host),
        }
    }

    fn command(&mut self, cmd: &str) {
        let w = self.stdin.as_mut().expect("agent stdin");
        writeln!(w, "{cmd}")
            .and_then(|_| w.flush())
            .unwrap_or_else(|e| panic!("agent {}: {e}", self.host));
    }

    /// Sends one frame out of the agent's interface.
    pub fn send(&mut self, frame: &[u8]) {
        self.command(&format!("send {}", hex(frame)));
        let l = self.line();
        assert_eq!(l, "OK", "agent {}: send failed: {l}", self.host);
    }

    /// Fetches the frames received since the last call, adds them to
    /// [`Agent::received`] and returns how many were new.
    pub fn poll(&mut self) -> usize {
        self.command("dump");
        let mut n = 0;
        loop {
            let l = self.line();
            if l == "END" {
                return n;
            }
            let h = l
                .strip_prefix("F ")
                .unwrap_or_else(|| panic!("agent: `{l}`"));
            self.received.push(unhex(h));
            n += 1;
        }
    }

    /// Received frames containing `marker`.
    pub fn with_marker(&self, marker: &[u8]) -> Vec<&Vec<u8>> {
        self.received
            .iter()
            .filter(|f| contains(f, marker))
            .collect()
    }

    /// Polls until a frame containing `marker` has arrived, at most `limit`.
    pub fn wait_marker(&mut self, marker: &[u8], limit: Duration) -> bool {
        wait_for(limit, || {
            self.poll();
            (!self.with_marker(marker).is_empty()).then_some(())
        })
        .is_some()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // EOF on stdin ends the agent; kill it if it lingers.
        self.stdin.take();
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).expect("mac"))
        .collect();
    v.try_into().expect("6 bytes")
}

pub fn mac_str(m: &[u8]) -> String {
    m.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An experimental EtherType (IEEE 802 local use): no stack answers it.
pub const ETH_TEST: u16 = 0x88b5;

/// Builds an Ethernet frame: dst, src, the given tags (TPID, TCI) outermost
/// first, EtherType and payload. No padding.
pub fn frame(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Parsed outer VLAN tag of a frame as received: (TPID, VID), or None.
pub fn outer_tag(f: &[u8]) -> Option<(u16, u16)> {
    if f.len() < 18 {
        return None;
    }
    let tpid = u16::from_be_bytes([f[12], f[13]]);
    if tpid == 0x8100 || tpid == 0x88a8 {
        Some((tpid, u16::from_be_bytes([f[14], f[15]]) & 0x0fff))
    } else {
        None
    }
}

/// Whether interface `dev` exists in namespace `ns`.
pub fn link_exists(ns: &str, dev: &str) -> bool {
    run(&["ip", "-n", ns, "link", "show", "dev", dev])
        .status
        .success()
}

/// A switch port from `vswitchctl --json show` / `stats` output, by name.
pub fn port_json<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let ports = v
        .get("ports")
        .and_then(|p| p.as_array())
        .unwrap_or_else(|| panic!("no ports in {v}"));
    ports
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {v}"))
}

/// Waits until vswitchd shows every port in `ports` as `up`. A TAP that
/// was down while being moved into its namespace makes writes fail with
/// EIO; vswitchd then marks the port `link-down` and retries about once a
/// second, so a test must not send before this settles.
pub fn wait_ports_up(sw: &Switchd, ports: &[String]) {
    let ok = wait_for(PATIENCE, || {
        let s = sw.ctl_json(&["show"]);
        ports
            .iter()
            .all(|p| port_json(&s, p)["state"] == "up")
            .then_some(())
    });
    assert!(
        ok.is_some(),
        "ports {ports:?} not all up: {}\n{}",
        sw.ctl_json(&["show"]),
        sw.log_text()
    );
}

/// A drop counter of a port (`counters.drops[reason]`), 0 when absent.
pub fn drops(v: &serde_json::Value, port: &str, reason: &str) -> u64 {
    port_json(v, port)["counters"]["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}
