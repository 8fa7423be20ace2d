//! A test peer: a legacy IEEE 802.1D-1998 (clause 8) bridge that behaves
//! like the Linux kernel bridge with `stp_state 1` — it drops RST BPDUs
//! (version != 0), sends Configuration BPDUs from its designated ports every
//! hello time (root or not), relays on receipt at its root port, answers a
//! TCN with a TC-ack, sends TCNs toward the root until acknowledged, and
//! walks blocking → listening → learning → forwarding on forward-delay
//! timers. Written from the 1998 procedures (8.6–8.8); no code of the
//! kernel's. Used by the simulator to check interoperation.

use super::PortId;
use super::vector::{BridgeId, port_identifier};
use crate::wire::Mac;
use crate::wire::bpdu::{Bpdu, BpduBody, Flags, SECOND};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LState {
    Disabled,
    Blocking,
    Listening,
    Learning,
    Forwarding,
}

#[derive(Clone, Debug)]
struct LPort {
    id: PortId,
    port_id: u16,
    cost: u32,
    state: LState,
    droot: BridgeId,
    dcost: u32,
    dbridge: BridgeId,
    dport: u16,
    /// TC-ack to send in the next Config BPDU.
    tc_ack: bool,
    /// Seconds until the recorded information expires.
    message_age_timer: Option<u16>,
    /// Recorded message age (1/256 s).
    message_age: u16,
    /// Seconds since the information was recorded: the message age this
    /// bridge sends is the recorded one plus the time it held it.
    held: u16,
    forward_delay_timer: Option<u16>,
}

/// A legacy STP bridge (see the module comment).
#[derive(Clone, Debug)]
pub struct Legacy {
    pub id: BridgeId,
    mac: [u8; 6],
    root: BridgeId,
    root_path_cost: u32,
    root_port: Option<usize>,
    /// Times in use (learned from the root).
    max_age: u16,
    hello_time: u16,
    forward_delay: u16,
    bridge_max_age: u16,
    bridge_hello: u16,
    bridge_fd: u16,
    topology_change: bool,
    topology_change_detected: bool,
    tc_timer: Option<u16>,
    tcn_timer: Option<u16>,
    hello_timer: u16,
    ports: Vec<LPort>,
    /// Frames to send: (port, frame).
    pub out: Vec<(PortId, Vec<u8>)>,
    /// TCNs sent and TC-acks received, for tests.
    pub tcns_sent: u64,
    pub acks_received: u64,
}

impl Legacy {
    pub fn new(priority: u16, mac: [u8; 6]) -> Legacy {
        let id = BridgeId::new(priority, mac);
        Legacy {
            id,
            mac,
            root: id,
            root_path_cost: 0,
            root_port: None,
            max_age: 20,
            hello_time: 2,
            forward_delay: 15,
            bridge_max_age: 20,
            bridge_hello: 2,
            bridge_fd: 15,
            topology_change: false,
            topology_change_detected: false,
            tc_timer: None,
            tcn_timer: None,
            hello_timer: 0,
            ports: Vec::new(),
            out: Vec::new(),
            tcns_sent: 0,
            acks_received: 0,
        }
    }

    fn idx(&self, id: PortId) -> Option<usize> {
        self.ports.iter().position(|p| p.id == id)
    }

    pub fn add_port(&mut self, id: PortId) {
        self.ports.push(LPort {
            id,
            // The kernel's port identifier: 6 bits of priority (32) and a
            // 10-bit port number.
            port_id: (32 << 10) | (id + 1),
            cost: 2000,
            state: LState::Disabled,
            droot: self.id,
            dcost: 0,
            dbridge: self.id,
            dport: 0,
            tc_ack: false,
            message_age_timer: None,
            message_age: 0,
            held: 0,
            forward_delay_timer: None,
        });
        let _ = port_identifier;
    }

    pub fn state(&self, id: PortId) -> LState {
        self.ports[self.idx(id).expect("port")].state
    }

    /// One line per port, for debugging tests.
    #[allow(dead_code)]
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} root {} cost {} rp {:?}\n",
            self.id, self.root, self.root_path_cost, self.root_port
        );
        for p in &self.ports {
            out += &format!(
                "  port {} {:?} d=({}, {}, {}, {:04x}) mat {:?} age {}\n",
                p.id,
                p.state,
                p.droot,
                p.dcost,
                p.dbridge,
                p.dport,
                p.message_age_timer,
                p.message_age
            );
        }
        out
    }

    pub fn root(&self) -> BridgeId {
        self.root
    }

    pub fn is_root(&self) -> bool {
        self.root == self.id
    }

    fn is_designated(&self, i: usize) -> bool {
        let p = &self.ports[i];
        p.dbridge == self.id && p.dport == p.port_id
    }

    fn become_designated(&mut self, i: usize) {
        let (root, cost, id) = (self.root, self.root_path_cost, self.id);
        let p = &mut self.ports[i];
        p.droot = root;
        p.dcost = cost;
        p.dbridge = id;
        p.dport = p.port_id;
    }

    pub fn set_link(&mut self, id: PortId, up: bool) {
        let Some(i) = self.idx(id) else { return };
        let was_root = self.is_root();
        if up {
            self.become_designated(i);
            self.ports[i].state = LState::Blocking;
            self.ports[i].tc_ack = false;
            self.ports[i].message_age_timer = None;
            self.ports[i].forward_delay_timer = None;
            self.port_state_selection();
        } else {
            self.become_designated(i);
            let p = &mut self.ports[i];
            p.state = LState::Disabled;
            p.message_age_timer = None;
            p.forward_delay_timer = None;
            self.configuration_update();
            self.port_state_selection();
            if self.is_root() && !was_root {
                self.become_root();
            }
        }
    }

    fn root_selection(&mut self) {
        let mut best: Option<usize> = None;
        for i in 0..self.ports.len() {
            let p = &self.ports[i];
            if p.state == LState::Disabled || self.is_designated(i) || p.droot >= self.id {
                continue;
            }
            let key = |q: &LPort| (q.droot, q.dcost + q.cost, q.dbridge, q.dport, q.port_id);
            if best.is_none_or(|b| key(p) < key(&self.ports[b])) {
                best = Some(i);
            }
        }
        self.root_port = best;
        match best {
            Some(b) => {
                self.root = self.ports[b].droot;
                self.root_path_cost = self.ports[b].dcost + self.ports[b].cost;
            }
            None => {
                self.root = self.id;
                self.root_path_cost = 0;
            }
        }
    }

    fn should_become_designated(&self, i: usize) -> bool {
        let p = &self.ports[i];
        if self.is_designated(i) || p.droot != self.root {
            return true;
        }
        if self.root_path_cost != p.dcost {
            return self.root_path_cost < p.dcost;
        }
        if self.id != p.dbridge {
            return self.id < p.dbridge;
        }
        p.port_id < p.dport
    }

    fn configuration_update(&mut self) {
        self.root_selection();
        for i in 0..self.ports.len() {
            if self.ports[i].state != LState::Disabled && self.should_become_designated(i) {
                self.become_designated(i);
            }
        }
    }

    fn port_state_selection(&mut self) {
        for i in 0..self.ports.len() {
            if self.ports[i].state == LState::Disabled {
                continue;
            }
            if Some(i) == self.root_port || self.is_designated(i) {
                if self.is_designated(i) {
                    self.ports[i].message_age_timer = None;
                }
                let p = &mut self.ports[i];
                if p.state == LState::Blocking {
                    p.state = LState::Listening;
                    p.forward_delay_timer = Some(self.forward_delay);
                }
            } else {
                let p = &mut self.ports[i];
                p.tc_ack = false;
                let was = p.state;
                p.state = LState::Blocking;
                p.forward_delay_timer = None;
                if matches!(was, LState::Forwarding | LState::Learning) {
                    self.topology_change_detection();
                }
            }
        }
    }

    fn topology_change_detection(&mut self) {
        if self.is_root() {
            self.topology_change = true;
            self.tc_timer = Some(self.bridge_max_age + self.bridge_fd);
        } else if !self.topology_change_detected {
            self.transmit_tcn();
            self.tcn_timer = Some(self.bridge_hello);
        }
        self.topology_change_detected = true;
    }

    fn transmit_tcn(&mut self) {
        if let Some(r) = self.root_port {
            let f = Bpdu::Tcn.to_frame(Mac(self.mac));
            self.tcns_sent += 1;
            self.out.push((self.ports[r].id, f));
        }
    }

    fn transmit_config(&mut self, i: usize) {
        let age = match self.root_port {
            None => 0,
            Some(r) => {
                let p = &self.ports[r];
                p.message_age
                    .saturating_add(p.held.saturating_mul(SECOND))
                    .saturating_add(1)
            }
        };
        let p = &mut self.ports[i];
        let flags = Flags(0)
            .with(Flags::TC, self.topology_change)
            .with(Flags::TC_ACK, p.tc_ack);
        p.tc_ack = false;
        let body = BpduBody {
            flags,
            root_id: self.root.0,
            root_path_cost: self.root_path_cost,
            bridge_id: self.id.0,
            port_id: p.port_id,
            message_age: age,
            max_age: self.max_age * SECOND,
            hello_time: self.hello_time * SECOND,
            forward_delay: self.forward_delay * SECOND,
        };
        let f = Bpdu::Config(body).to_frame(Mac(self.mac));
        self.out.push((p.id, f));
    }

    fn config_bpdu_generation(&mut self) {
        for i in 0..self.ports.len() {
            if self.ports[i].state != LState::Disabled && self.is_designated(i) {
                self.transmit_config(i);
            }
        }
    }

    fn become_root(&mut self) {
        self.max_age = self.bridge_max_age;
        self.hello_time = self.bridge_hello;
        self.forward_delay = self.bridge_fd;
        self.topology_change_detection();
        self.tcn_timer = None;
        self.config_bpdu_generation();
        self.hello_timer = self.bridge_hello;
    }

    /// A frame arrived on `id`. Anything but a version-0 Config or TCN BPDU
    /// is dropped, like the kernel does.
    pub fn receive(&mut self, id: PortId, frame: &[u8]) {
        let Some(i) = self.idx(id) else { return };
        if self.ports[i].state == LState::Disabled || frame.len() < 20 || frame[19] != 0 {
            return;
        }
        match Bpdu::parse_frame(frame) {
            Ok(Bpdu::Config(b)) => self.received_config(i, &b),
            Ok(Bpdu::Tcn) if self.is_designated(i) => {
                self.topology_change_detection();
                self.ports[i].tc_ack = true;
                self.transmit_config(i);
            }
            _ => {}
        }
    }

    fn supersedes(&self, i: usize, b: &BpduBody) -> bool {
        let p = &self.ports[i];
        let key = (BridgeId(b.root_id), b.root_path_cost, BridgeId(b.bridge_id));
        let mine = (p.droot, p.dcost, p.dbridge);
        if key != mine {
            return key < mine;
        }
        BridgeId(b.bridge_id) != self.id || b.port_id <= p.dport
    }

    fn received_config(&mut self, i: usize, b: &BpduBody) {
        let was_root = self.is_root();
        if self.supersedes(i, b) {
            let p = &mut self.ports[i];
            p.droot = BridgeId(b.root_id);
            p.dcost = b.root_path_cost;
            p.dbridge = BridgeId(b.bridge_id);
            p.dport = b.port_id;
            p.message_age = b.message_age;
            p.held = 0;
            p.message_age_timer = Some((b.max_age.saturating_sub(b.message_age)) / SECOND);
            self.configuration_update();
            self.port_state_selection();
            if !self.is_root() && was_root {
                self.hello_timer = self.bridge_hello;
                if self.topology_change_detected {
                    self.tc_timer = None;
                    self.transmit_tcn();
                    self.tcn_timer = Some(self.bridge_hello);
                }
            }
            if Some(i) == self.root_port {
                self.max_age = b.max_age / SECOND;
                self.hello_time = b.hello_time / SECOND;
                self.forward_delay = b.forward_delay / SECOND;
                self.topology_change = b.flags.tc();
                self.config_bpdu_generation();
                if b.flags.tc_ack() {
                    self.acks_received += 1;
                    self.topology_change_detected = false;
                    self.tcn_timer = None;
                }
            }
        } else if self.is_designated(i) {
            self.transmit_config(i);
        }
    }

    pub fn tick(&mut self) {
        // Hello: every bridge, from its designated ports.
        self.hello_timer = self.hello_timer.saturating_sub(1);
        if self.hello_timer == 0 {
            self.config_bpdu_generation();
            self.hello_timer = self.hello_time;
        }
        if expired(&mut self.tcn_timer) {
            self.transmit_tcn();
            self.tcn_timer = Some(self.bridge_hello);
        }
        if expired(&mut self.tc_timer) {
            self.tc_timer = None;
            self.topology_change = false;
            self.topology_change_detected = false;
        }
        for i in 0..self.ports.len() {
            self.ports[i].held = self.ports[i].held.saturating_add(1);
            if expired(&mut self.ports[i].message_age_timer) {
                self.ports[i].message_age_timer = None;
                let was_root = self.is_root();
                self.become_designated(i);
                self.configuration_update();
                self.port_state_selection();
                if self.is_root() && !was_root {
                    self.become_root();
                }
            }
            {
                if expired(&mut self.ports[i].forward_delay_timer) {
                    let p = &mut self.ports[i];
                    match p.state {
                        LState::Listening => {
                            p.state = LState::Learning;
                            p.forward_delay_timer = Some(self.forward_delay);
                        }
                        LState::Learning => {
                            p.state = LState::Forwarding;
                            p.forward_delay_timer = None;
                            if (0..self.ports.len()).any(|j| self.is_designated(j)) {
                                self.topology_change_detection();
                            }
                        }
                        _ => p.forward_delay_timer = None,
                    }
                }
            }
        }
    }
}

/// Counts a timer down; true when it reaches zero.
fn expired(t: &mut Option<u16>) -> bool {
    match t {
        Some(v) => {
            *v = v.saturating_sub(1);
            *v == 0
        }
        None => false,
    }
}
