//! An in-process network of [`Bridge`]s joined by LANs, driven by ticks:
//! the test bench for the protocol (no sockets, no clock, no root).
//!
//! A LAN is a shared segment joining any number of bridge ports (two for a
//! point-to-point link; more make backup ports possible). Every Transmit
//! event is delivered to every other port on its LAN, at once or (with
//! `delay`) at the next tick, once or (with `duplicate`) twice.

use std::collections::{BTreeMap, VecDeque};

use super::legacy::{LState, Legacy};
use super::{Bridge, BridgeConfig, BridgeId, Event, PortId, PortRole, PortState, PortStpConfig};

/// Bridge indices from here on name [`Sim::legacy`] bridges.
pub const LEGACY: usize = 1000;

/// A bridge port: (bridge index, port id).
pub type At = (usize, PortId);

#[derive(Clone, Debug)]
pub struct Lan {
    pub ports: Vec<At>,
    pub up: bool,
}

pub struct Sim {
    pub bridges: Vec<Bridge>,
    /// Legacy 802.1D-1998 bridges (kernel-like), addressed as LEGACY + k.
    pub legacy: Vec<Legacy>,
    pub lans: Vec<Lan>,
    /// Deliver BPDUs at the next tick instead of at once.
    pub delay: bool,
    /// Deliver every BPDU twice.
    pub duplicate: bool,
    /// Ticks run so far.
    pub now: u64,
    /// Non-transmit events seen, with the tick and bridge.
    pub log: Vec<(u64, usize, Event)>,
    /// Delayed frames: (receiver, frame).
    pending: Vec<(At, Vec<u8>)>,
    /// Frames delivered, in total.
    pub delivered: u64,
    /// Check after every delivered BPDU and every tick that forwarding
    /// ports form no loop; the first violation is kept here.
    pub check_loops: bool,
    /// Print every delivery (debugging).
    pub trace: bool,
    pub loop_seen: Option<String>,
}

pub fn mac(b: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, (b >> 8) as u8, b as u8]
}

pub fn port_mac(b: usize, p: PortId) -> [u8; 6] {
    [0x02, 0, 1, b as u8, (p >> 8) as u8, p as u8]
}

impl Sim {
    /// `n` bridges with the same config; bridge i has MAC 02:00:00:00:00:i,
    /// so with equal priorities bridge 0 is the root.
    pub fn new(n: usize, cfg: BridgeConfig) -> Sim {
        Sim {
            bridges: (0..n).map(|i| Bridge::new(mac(i), cfg)).collect(),
            legacy: Vec::new(),
            lans: Vec::new(),
            delay: false,
            duplicate: false,
            now: 0,
            log: Vec::new(),
            pending: Vec::new(),
            delivered: 0,
            check_loops: false,
            trace: false,
            loop_seen: None,
        }
    }

    /// Adds a legacy STP bridge (MAC 02:00:00:00:01:k); returns its index.
    pub fn add_legacy(&mut self, priority: u16) -> usize {
        let k = self.legacy.len();
        self.legacy.push(Legacy::new(priority, mac(0x100 + k)));
        LEGACY + k
    }

    fn set_link(&mut self, (b, p): At, up: bool) {
        if b >= LEGACY {
            self.legacy[b - LEGACY].set_link(p, up);
        } else {
            self.bridges[b].set_link(p, up);
        }
    }

    fn deliver(&mut self, (b, p): At, frame: &[u8]) {
        self.delivered += 1;
        if self.trace {
            eprintln!(
                "deliver to {:?}: {:?}",
                (b, p),
                crate::wire::bpdu::Bpdu::parse_frame(frame)
            );
        }
        if b >= LEGACY {
            self.legacy[b - LEGACY].receive(p, frame);
        } else {
            self.bridges[b]
                .receive(p, frame)
                .expect("simulated BPDUs are valid");
            if self.trace {
                for q in &self.bridges[b].ports {
                    eprintln!(
                        "      b{b} port {} {:?}/{:?} {:?} info {:?} pp=({},{},{:04x}) agreed {} agree {} sync {} synced {} prop {}/{} {:?} fd {}",
                        q.id,
                        q.role,
                        q.selected_role,
                        q.state(),
                        q.info_is,
                        q.port_priority.root,
                        q.port_priority.root_path_cost,
                        q.port_priority.designated_port,
                        q.agreed,
                        q.agree,
                        q.sync,
                        q.synced,
                        q.proposing,
                        q.proposed,
                        q.sm.role,
                        q.fd_while
                    );
                }
            }
        }
        self.check_forest();
    }

    /// Node index of a bridge: RSTP bridges first, then legacy ones.
    fn node(&self, b: usize) -> usize {
        if b >= LEGACY {
            self.bridges.len() + b - LEGACY
        } else {
            b
        }
    }

    fn nodes(&self) -> usize {
        self.bridges.len() + self.legacy.len()
    }

    fn ids(&self) -> Vec<(BridgeId, BridgeId)> {
        let mut v: Vec<_> = self
            .bridges
            .iter()
            .map(|b| {
                let s = b.status();
                (s.bridge_id, s.root_id)
            })
            .collect();
        v.extend(self.legacy.iter().map(|l| (l.id, l.root())));
        v
    }

    /// Adds a LAN joining the given ports (created if missing, link up).
    /// Ports on a LAN of more than two are not point-to-point. Returns the
    /// LAN's index.
    pub fn lan(&mut self, ports: &[At]) -> usize {
        let p2p = ports.len() <= 2;
        for &(b, p) in ports {
            let cfg = PortStpConfig {
                point_to_point: p2p,
                ..PortStpConfig::default()
            };
            if b >= LEGACY {
                self.legacy[b - LEGACY].add_port(p);
            } else {
                self.bridges[b].add_port(p, cfg, port_mac(b, p));
            }
        }
        self.lans.push(Lan {
            ports: ports.to_vec(),
            up: true,
        });
        for &at in ports {
            self.set_link(at, true);
        }
        self.settle();
        self.lans.len() - 1
    }

    /// A point-to-point link between two bridges' ports.
    pub fn link(&mut self, a: At, b: At) -> usize {
        self.lan(&[a, b])
    }

    /// A port with a host (no bridge) behind it.
    pub fn host_port(&mut self, at: At, cfg: PortStpConfig) {
        let (b, p) = at;
        self.bridges[b].add_port(p, cfg, port_mac(b, p));
        self.bridges[b].set_link(p, true);
        self.settle();
    }

    pub fn set_lan(&mut self, lan: usize, up: bool) {
        self.set_lans(&[lan], up);
    }

    /// Several LANs fail (or return) at the same instant, as when a bridge
    /// dies: every link state changes before any BPDU is delivered.
    pub fn set_lans(&mut self, lans: &[usize], up: bool) {
        for &lan in lans {
            self.lans[lan].up = up;
            for at in self.lans[lan].ports.clone() {
                self.set_link(at, up);
            }
        }
        self.settle();
    }

    fn lan_of(&self, at: At) -> Option<&Lan> {
        self.lans.iter().find(|l| l.ports.contains(&at))
    }

    /// Delivers every queued event until the network is quiet.
    pub fn settle(&mut self) {
        let mut work: VecDeque<(At, Vec<u8>)> = VecDeque::new();
        let mut rounds = 0;
        loop {
            for k in 0..self.legacy.len() {
                for (port, frame) in std::mem::take(&mut self.legacy[k].out) {
                    let from = (LEGACY + k, port);
                    let Some(lan) = self.lan_of(from) else {
                        continue;
                    };
                    if !lan.up {
                        continue;
                    }
                    for to in lan.ports.clone() {
                        if to != from {
                            work.push_back((to, frame.clone()));
                        }
                    }
                }
            }
            for bi in 0..self.bridges.len() {
                for ev in self.bridges[bi].take_events() {
                    match ev {
                        Event::Transmit { port, frame } => {
                            let Some(lan) = self.lan_of((bi, port)) else {
                                continue;
                            };
                            if !lan.up {
                                continue;
                            }
                            for to in lan.ports.clone() {
                                if to == (bi, port) {
                                    continue;
                                }
                                let copies = if self.duplicate { 2 } else { 1 };
                                for _ in 0..copies {
                                    if self.delay {
                                        self.pending.push((to, frame.clone()));
                                    } else {
                                        work.push_back((to, frame.clone()));
                                    }
                                }
                            }
                        }
                        other => self.log.push((self.now, bi, other)),
                    }
                }
            }
            let Some((to, frame)) = work.pop_front() else {
                break;
            };
            self.deliver(to, &frame);
            rounds += 1;
            assert!(rounds < 1_000_000, "BPDU storm");
        }
    }

    fn check_forest(&mut self) {
        if self.check_loops
            && self.loop_seen.is_none()
            && let Err(e) = self.forwarding_forest()
        {
            self.loop_seen = Some(format!("tick {}: {e}", self.now));
            if self.trace {
                eprintln!("LOOP {e}");
            }
        }
    }

    /// One second for every bridge, then delivery.
    pub fn tick(&mut self) {
        self.now += 1;
        for (to, frame) in std::mem::take(&mut self.pending) {
            self.deliver(to, &frame);
        }
        for i in 0..self.bridges.len() {
            self.bridges[i].tick();
            self.check_forest();
        }
        for l in &mut self.legacy {
            l.tick();
        }
        self.check_forest();
        self.settle();
    }

    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick();
        }
    }

    pub fn role(&self, (b, p): At) -> PortRole {
        self.bridges[b].port(p).expect("port exists").0
    }

    pub fn state(&self, (b, p): At) -> PortState {
        if b >= LEGACY {
            return match self.legacy[b - LEGACY].state(p) {
                LState::Disabled => PortState::Disabled,
                LState::Blocking | LState::Listening => PortState::Discarding,
                LState::Learning => PortState::Learning,
                LState::Forwarding => PortState::Forwarding,
            };
        }
        self.bridges[b].port(p).expect("port exists").1
    }

    /// Ticks until [`Sim::converged`] holds (at most `limit`).
    pub fn run_until_converged(&mut self, limit: u64) -> Option<u64> {
        for t in 0..=limit {
            if self.converged().is_ok() {
                return Some(t);
            }
            self.tick();
        }
        None
    }

    /// Physical components: sets of bridges joined by up LANs.
    fn components(&self) -> Vec<usize> {
        let n = self.nodes();
        let mut comp: Vec<usize> = (0..n).collect();
        fn find(c: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while c[r] != r {
                r = c[r];
            }
            c[x] = r;
            r
        }
        for l in self.lans.iter().filter(|l| l.up) {
            for w in l.ports.windows(2) {
                let (x, y) = (self.node(w[0].0), self.node(w[1].0));
                let (a, b) = (find(&mut comp, x), find(&mut comp, y));
                comp[a] = b;
            }
        }
        (0..n).map(|i| find(&mut comp, i)).collect()
    }

    /// Every bridge knows the best bridge of its component as root; no
    /// port is learning; the forwarding ports make a tree over bridges and
    /// up LANs that spans each component.
    pub fn converged(&self) -> Result<(), String> {
        let comp = self.components();
        let ids = self.ids();
        let mut best: BTreeMap<usize, BridgeId> = BTreeMap::new();
        for (i, (id, _)) in ids.iter().enumerate() {
            let e = best.entry(comp[i]).or_insert(*id);
            *e = (*e).min(*id);
        }
        for (i, (_, root)) in ids.iter().enumerate() {
            if *root != best[&comp[i]] {
                return Err(format!("node {i} has root {root} not {}", best[&comp[i]]));
            }
        }
        for l in &self.lans {
            for &at in &l.ports {
                if self.state(at) == PortState::Learning {
                    return Err(format!("{at:?} learning"));
                }
            }
        }
        let mut set = self.forwarding_forest()?;
        let n = self.nodes();
        fn find(c: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while c[r] != r {
                r = c[r];
            }
            c[x] = r;
            r
        }
        for (li, l) in self.lans.iter().enumerate() {
            if !l.up {
                continue;
            }
            for &(b, _) in &l.ports {
                if find(&mut set, self.node(b)) != find(&mut set, n + li) {
                    return Err(format!("LAN {li} not reached from bridge {b}"));
                }
            }
        }
        Ok(())
    }

    /// The forwarding ports joining bridges (nodes 0..n) and up LANs
    /// (nodes n..n+m) must form a forest: Err names the port closing a loop.
    /// Returns the union-find sets.
    pub fn forwarding_forest(&self) -> Result<Vec<usize>, String> {
        // Nodes: bridges 0..n, then LANs n..n+m. Union-find over forwarding
        // attachments; a cycle shows as a union within one set.
        let n = self.nodes();
        let mut set: Vec<usize> = (0..n + self.lans.len()).collect();
        fn find(c: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while c[r] != r {
                r = c[r];
            }
            c[x] = r;
            r
        }
        for (li, l) in self.lans.iter().enumerate() {
            if !l.up {
                continue;
            }
            for &at in &l.ports {
                if self.state(at) == PortState::Forwarding {
                    let (a, b) = (find(&mut set, self.node(at.0)), find(&mut set, n + li));
                    if a == b {
                        return Err(format!("loop through LAN {li} at {at:?}"));
                    }
                    set[a] = b;
                }
            }
        }
        Ok(set)
    }

    /// Flush events logged since tick `from`.
    pub fn flushes_since(&self, from: u64) -> Vec<At> {
        self.log
            .iter()
            .filter(|(t, _, _)| *t >= from)
            .filter_map(|(_, b, e)| match e {
                Event::Flush { port } => Some((*b, *port)),
                _ => None,
            })
            .collect()
    }
}
