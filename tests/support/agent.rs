//! Raw frames in and out of one interface: [`Agent`] runs
//! `tests/support/frame_agent.py` inside a namespace (an AF_PACKET socket
//! bound to the interface, VLAN tags put back from aux data) and speaks
//! its line protocol. The only way the tests inject and sniff frames.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::cmd::{Bg, python};
use super::frame::{contains, hex, unhex};
use super::net::Netns;
use super::wait::{PATIENCE, wait_for};

/// A frame agent on one interface; stopped on drop.
pub struct Agent {
    pub host: String,
    // Dropped first: EOF ends the agent, then `proc` reaps it.
    stdin: Option<ChildStdin>,
    proc: Bg,
    lines: Receiver<String>,
    /// Every frame received so far (each poll adds to it).
    pub received: Vec<Vec<u8>>,
}

impl Agent {
    /// Starts the agent on `dev` in `ns` and waits until it listens.
    pub fn start(ns: &Netns, dev: &str) -> Agent {
        let argv = python("frame_agent.py", 900);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(&argv)
            .arg(dev)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start frame agent");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("agent stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut a = Agent {
            host: format!("{}/{dev}", ns.name),
            stdin,
            proc: Bg::new(child),
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

    /// Whether a frame containing `marker` has been received.
    pub fn seen(&self, marker: &[u8]) -> bool {
        self.received.iter().any(|f| contains(f, marker))
    }

    /// Polls until a frame containing `marker` has arrived, at most `limit`.
    pub fn wait_marker(&mut self, marker: &[u8], limit: Duration) -> bool {
        wait_for(limit, || {
            self.poll();
            self.seen(marker)
        })
        .is_some()
    }
}

/// Sends each frame once out of `dev` in `ns`.
pub fn send_frames(ns: &Netns, dev: &str, frames: &[Vec<u8>]) {
    let mut a = Agent::start(ns, dev);
    for f in frames {
        a.send(f);
    }
}
