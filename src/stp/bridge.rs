//! The bridge: per-bridge variables (17.18), the public API, BPDU
//! transmission (17.21.19–21) and status.

use super::config::{BridgeConfig, Mode, PortStpConfig, default_cost};
use super::machines::{self, selection};
use super::port::{Port, PortRole, PortState, number};
use super::vector::{BridgeId, PriorityVector, Times, from_wire, to_wire};
use super::{Event, PortId};
use crate::wire::Mac;
use crate::wire::bpdu::{Bpdu, BpduBody, BpduError, Flags, WireRole};

/// One spanning-tree bridge.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub(crate) cfg: BridgeConfig,
    pub(crate) mac: [u8; 6],
    /// BridgeIdentifier (17.18.2).
    pub(crate) bridge_id: BridgeId,
    /// BridgeTimes (17.18.4).
    pub(crate) bridge_times: Times,
    /// rootPortId (17.18.5): the root port's identifier, 0 when root.
    pub(crate) root_port_id: u16,
    /// rootPriority (17.18.6).
    pub(crate) root_priority: PriorityVector,
    /// rootTimes (17.18.7).
    pub(crate) root_times: Times,
    /// BEGIN for the bridge machine, held for one pass.
    pub(crate) begin: bool,
    pub(crate) selection: selection::State,
    /// Ports sorted by id.
    pub(crate) ports: Vec<Port>,
    pub(crate) events: Vec<Event>,
    /// Seconds of fast ageing left (legacy STP topology change).
    pub(crate) fast_ageing_while: u16,
    pub(crate) topology_changes: u64,
    pub(crate) since_topology_change: Option<u64>,
    /// Runs that hit the driver's iteration bound (a bug if non-zero).
    pub(crate) runaway_runs: u64,
}

/// A port's status (for `vswitchctl stp show` and metrics).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PortStatus {
    pub port: PortId,
    pub role: PortRole,
    pub state: PortState,
    /// operEdge.
    pub edge: bool,
    pub cost: u32,
    /// The port identifier sent in BPDUs, hex `8001`.
    pub port_id: String,
    /// The designated bridge on this port's segment.
    pub designated_bridge: BridgeId,
    pub guard_tripped: bool,
    pub bpdus_rx: u64,
    pub bpdus_tx: u64,
    /// Malformed or looped BPDUs received (ignored).
    pub bpdus_bad: u64,
    pub guard_trips: u64,
    /// "rstp" or "stp": the BPDUs this port sends (17.24 protocol migration).
    pub mode: &'static str,
}

/// The bridge's status.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BridgeStatus {
    pub mode: Mode,
    pub bridge_id: BridgeId,
    pub root_id: BridgeId,
    /// None when this bridge is the root.
    pub root_port: Option<PortId>,
    pub root_path_cost: u32,
    pub topology_changes: u64,
    /// Seconds (ticks) since the last topology change began.
    pub time_since_topology_change: Option<u64>,
    pub fast_ageing: bool,
    pub ports: Vec<PortStatus>,
}

impl Bridge {
    /// A bridge with no ports. `cfg` should have passed
    /// [`BridgeConfig::validate`]; out-of-range timers are clamped.
    pub fn new(mac: [u8; 6], cfg: BridgeConfig) -> Bridge {
        let mut b = Bridge {
            cfg,
            mac,
            bridge_id: BridgeId::default(),
            bridge_times: Times::default(),
            root_port_id: 0,
            root_priority: PriorityVector::default(),
            root_times: Times::default(),
            begin: true,
            selection: selection::State::InitBridge,
            ports: Vec::new(),
            events: Vec::new(),
            fast_ageing_while: 0,
            topology_changes: 0,
            since_topology_change: None,
            runaway_runs: 0,
        };
        b.apply_bridge_params();
        b.root_priority = b.bridge_priority();
        b.root_times = b.bridge_times;
        machines::run(&mut b);
        b
    }

    fn apply_bridge_params(&mut self) {
        let c = &self.cfg;
        self.bridge_id = BridgeId::new(c.priority & 0xf000, self.mac);
        self.bridge_times = Times {
            message_age: 0,
            max_age: c.max_age.clamp(6, 40) as u16,
            hello_time: c.hello_time.clamp(1, 10) as u16,
            forward_delay: c.forward_delay.clamp(4, 30) as u16,
        };
    }

    /// BridgePriority (17.18.3).
    pub(crate) fn bridge_priority(&self) -> PriorityVector {
        PriorityVector {
            root: self.bridge_id,
            root_path_cost: 0,
            designated_bridge: self.bridge_id,
            designated_port: 0,
        }
    }

    /// rstpVersion (17.20.11).
    pub(crate) fn rstp_version(&self) -> bool {
        self.cfg.mode == Mode::Rstp
    }

    pub fn config(&self) -> BridgeConfig {
        self.cfg
    }

    /// Changes bridge parameters. A priority or timer change reselects roles
    /// (17.13) without restarting the machines; a mode change restarts them
    /// (BEGIN).
    pub fn set_config(&mut self, cfg: BridgeConfig) {
        let old = self.cfg;
        self.cfg = cfg;
        self.apply_bridge_params();
        if old.mode != cfg.mode {
            if self.fast_ageing_while > 0 {
                self.fast_ageing_while = 0;
                self.events.push(Event::FastAgeing { on: false });
            }
            self.begin = true;
            for p in &mut self.ports {
                p.begin = true;
            }
        } else {
            for p in &mut self.ports {
                p.reselect = true;
                p.selected = false;
                if old.tx_hold_count != cfg.tx_hold_count {
                    p.tx_count = 0;
                }
            }
        }
        machines::run(self);
    }

    fn index(&self, id: PortId) -> Option<usize> {
        self.ports.binary_search_by_key(&id, |p| p.id).ok()
    }

    /// Adds a port (its link down until [`Bridge::set_link`]). An existing
    /// port with this id is replaced.
    pub fn add_port(&mut self, id: PortId, cfg: PortStpConfig, port_mac: [u8; 6]) {
        let cost = cfg.cost.unwrap_or_else(|| default_cost(None));
        let port = Port::new(id, cfg, port_mac, cost);
        match self.ports.binary_search_by_key(&id, |p| p.id) {
            Ok(i) => self.ports[i] = port,
            Err(i) => self.ports.insert(i, port),
        }
        machines::run(self);
    }

    /// Adds a port whose cost, when not configured, comes from its speed.
    pub fn add_port_with_speed(
        &mut self,
        id: PortId,
        cfg: PortStpConfig,
        port_mac: [u8; 6],
        speed_mbps: Option<u32>,
    ) {
        let cfg2 = PortStpConfig {
            cost: Some(cfg.cost.unwrap_or_else(|| default_cost(speed_mbps))),
            ..cfg
        };
        self.add_port(id, cfg2, port_mac);
        if let Some(i) = self.index(id) {
            self.ports[i].cfg.cost = cfg.cost;
        }
    }

    pub fn remove_port(&mut self, id: PortId) {
        if let Some(i) = self.index(id) {
            self.ports.remove(i);
            for p in &mut self.ports {
                p.reselect = true;
                p.selected = false;
            }
            machines::run(self);
        }
    }

    /// Changes a port's parameters. Cost and priority changes reselect roles
    /// (17.13) and keep the tree where it stays the same.
    pub fn set_port_config(&mut self, id: PortId, cfg: PortStpConfig) {
        let Some(i) = self.index(id) else { return };
        let p = &mut self.ports[i];
        let old = p.cfg;
        p.cfg = cfg;
        if let Some(c) = cfg.cost {
            p.path_cost = c;
        } else if old.cost.is_some() {
            p.path_cost = default_cost(None);
        }
        p.port_id = super::vector::port_identifier(cfg.priority, number(id));
        if old.cost != cfg.cost || old.priority != cfg.priority {
            p.reselect = true;
            p.selected = false;
        }
        if old.admin_edge != cfg.admin_edge {
            // Restart the Bridge Detection machine (17.25) only.
            machines::detection::restart(self, i);
        }
        if old.bpdu_guard && !cfg.bpdu_guard && self.ports[i].guard_tripped {
            self.ports[i].guard_tripped = false;
            self.update_enabled(i);
        }
        machines::run(self);
    }

    /// Sets the per-port cost from a (new) link speed when no cost is
    /// configured.
    pub fn set_port_speed(&mut self, id: PortId, speed_mbps: Option<u32>) {
        let Some(i) = self.index(id) else { return };
        let p = &mut self.ports[i];
        if p.cfg.cost.is_none() {
            let c = default_cost(speed_mbps);
            if c != p.path_cost {
                p.path_cost = c;
                p.reselect = true;
                p.selected = false;
                machines::run(self);
            }
        }
    }

    fn update_enabled(&mut self, i: usize) {
        let p = &mut self.ports[i];
        p.port_enabled = p.link_up && !p.guard_tripped;
    }

    /// The port's link went up or down (portEnabled, 17.19.18).
    pub fn set_link(&mut self, id: PortId, up: bool) {
        let Some(i) = self.index(id) else { return };
        self.ports[i].link_up = up;
        self.update_enabled(i);
        machines::run(self);
    }

    /// Re-enables a port disabled by BPDU guard.
    pub fn enable_port_after_guard(&mut self, id: PortId) {
        let Some(i) = self.index(id) else { return };
        if self.ports[i].guard_tripped {
            self.ports[i].guard_tripped = false;
            self.update_enabled(i);
            machines::run(self);
        }
    }

    /// Forces the port to try RSTP again (mcheck, 17.19.13): use after an
    /// STP bridge on the port was replaced by an RSTP one.
    pub fn mcheck(&mut self, id: PortId) {
        let Some(i) = self.index(id) else { return };
        if self.rstp_version() {
            self.ports[i].mcheck = true;
            machines::run(self);
        }
    }

    /// A frame sent to 01:80:C2:00:00:00 arrived on `id`. A malformed or
    /// looped BPDU returns Err, is counted on the port and changes nothing.
    /// A BPDU on an unknown port or a port whose link is down is ignored.
    pub fn receive(&mut self, id: PortId, frame: &[u8]) -> Result<(), BpduError> {
        let Some(i) = self.index(id) else {
            return Ok(());
        };
        let bpdu = match Bpdu::parse_frame(frame) {
            Ok(b) => b,
            Err(e) => {
                self.ports[i].bpdus_bad += 1;
                return Err(e);
            }
        };
        let p = &mut self.ports[i];
        if !p.port_enabled {
            return Ok(());
        }
        if p.cfg.bpdu_guard {
            p.guard_tripped = true;
            p.guard_trips += 1;
            p.bpdus_rx += 1;
            self.events.push(Event::GuardTripped { port: id });
            self.update_enabled(i);
            machines::run(self);
            return Ok(());
        }
        // 9.3.4: our own BPDU, looped back to the port that sent it.
        if let Bpdu::Config(b) | Bpdu::Rst(b) = &bpdu
            && b.bridge_id == self.bridge_id.0
            && b.port_id & super::vector::PORT_NUMBER_MASK
                == p.port_id & super::vector::PORT_NUMBER_MASK
        {
            p.bpdus_bad += 1;
            return Err(BpduError::Looped);
        }
        // 9.2.9: an RST BPDU with role Unknown is treated as a Config BPDU.
        let bpdu = match bpdu {
            Bpdu::Rst(b) if b.flags.role() == WireRole::Unknown => Bpdu::Config(b),
            other => other,
        };
        p.bpdus_rx += 1;
        p.rx = Some(bpdu);
        p.rcvd_bpdu = true;
        machines::run(self);
        Ok(())
    }

    /// One second passed.
    pub fn tick(&mut self) {
        for p in &mut self.ports {
            p.tick();
        }
        if self.fast_ageing_while > 0 {
            self.fast_ageing_while -= 1;
            if self.fast_ageing_while == 0 {
                self.events.push(Event::FastAgeing { on: false });
            }
        }
        if let Some(t) = &mut self.since_topology_change {
            *t += 1;
        }
        machines::run(self);
    }

    /// Takes the events produced since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn status(&self) -> BridgeStatus {
        let root_port = self
            .ports
            .iter()
            .find(|p| p.role == PortRole::Root)
            .map(|p| p.id);
        BridgeStatus {
            mode: self.cfg.mode,
            bridge_id: self.bridge_id,
            root_id: self.root_priority.root,
            root_port,
            root_path_cost: self.root_priority.root_path_cost,
            topology_changes: self.topology_changes,
            time_since_topology_change: self.since_topology_change,
            fast_ageing: self.fast_ageing_while > 0,
            ports: self
                .ports
                .iter()
                .map(|p| PortStatus {
                    port: p.id,
                    role: p.role,
                    state: p.state(),
                    edge: p.oper_edge,
                    cost: p.path_cost,
                    port_id: format!("{:04x}", p.port_id),
                    designated_bridge: p.port_priority.designated_bridge,
                    guard_tripped: p.guard_tripped,
                    bpdus_rx: p.bpdus_rx,
                    bpdus_tx: p.bpdus_tx,
                    bpdus_bad: p.bpdus_bad,
                    guard_trips: p.guard_trips,
                    mode: if p.send_rstp { "rstp" } else { "stp" },
                })
                .collect(),
        }
    }

    /// The port's current role and state, if it exists.
    pub fn port(&self, id: PortId) -> Option<(PortRole, PortState)> {
        self.index(id)
            .map(|i| (self.ports[i].role, self.ports[i].state()))
    }

    // ---- transmission (17.21.19, 17.21.20, 17.21.21) ----

    fn body(&self, i: usize) -> BpduBody {
        let p = &self.ports[i];
        let v = p.designated_priority;
        let t = p.designated_times;
        BpduBody {
            flags: Flags(0),
            root_id: v.root.0,
            root_path_cost: v.root_path_cost,
            bridge_id: v.designated_bridge.0,
            port_id: v.designated_port,
            message_age: to_wire(t.message_age),
            max_age: to_wire(t.max_age),
            hello_time: to_wire(t.hello_time),
            forward_delay: to_wire(t.forward_delay),
        }
    }

    fn send(&mut self, i: usize, bpdu: Bpdu) {
        let p = &mut self.ports[i];
        p.bpdus_tx += 1;
        let frame = bpdu.to_frame(Mac(p.mac));
        self.events.push(Event::Transmit { port: p.id, frame });
    }

    /// txConfig() (17.21.19).
    pub(crate) fn tx_config(&mut self, i: usize) {
        let mut b = self.body(i);
        let p = &self.ports[i];
        b.flags = Flags(0)
            .with(Flags::TC, p.tc_while != 0)
            .with(Flags::TC_ACK, p.tc_ack);
        self.send(i, Bpdu::Config(b));
    }

    /// txRstp() (17.21.20).
    pub(crate) fn tx_rstp(&mut self, i: usize) {
        let mut b = self.body(i);
        let p = &self.ports[i];
        let role = match p.role {
            PortRole::Root => WireRole::Root,
            PortRole::Designated => WireRole::Designated,
            PortRole::Alternate | PortRole::Backup => WireRole::AlternateOrBackup,
            PortRole::Disabled => WireRole::Unknown,
        };
        b.flags = Flags(0)
            .with_role(role)
            .with(Flags::AGREEMENT, p.agree)
            .with(Flags::PROPOSAL, p.proposing)
            .with(Flags::TC, p.tc_while != 0)
            .with(Flags::LEARNING, p.learning)
            .with(Flags::FORWARDING, p.forwarding);
        self.send(i, Bpdu::Rst(b));
    }

    /// txTcn() (17.21.21).
    pub(crate) fn tx_tcn(&mut self, i: usize) {
        self.send(i, Bpdu::Tcn);
    }

    /// Times of a received BPDU in whole seconds (17.21.8 msgTimes).
    pub(crate) fn msg_times(b: &BpduBody) -> Times {
        Times {
            message_age: from_wire(b.message_age),
            max_age: from_wire(b.max_age),
            hello_time: from_wire(b.hello_time),
            forward_delay: from_wire(b.forward_delay),
        }
    }

    /// fdbFlush handling (17.19.7): with rstpVersion, or for a port that is
    /// not learning, flush now; with stpVersion, age quickly for FwdDelay.
    pub(crate) fn flush(&mut self, i: usize) {
        let p = &mut self.ports[i];
        p.fdb_flush = false;
        if !p.dirty {
            return;
        }
        if self.cfg.mode == Mode::Rstp || !p.learning {
            p.dirty = p.learning;
            self.events.push(Event::Flush { port: p.id });
        } else {
            if self.fast_ageing_while == 0 {
                self.events.push(Event::FastAgeing { on: true });
            }
            self.fast_ageing_while = self.fast_ageing_while.max(self.root_times.forward_delay);
        }
    }

    /// Called when a port's tcWhile goes from 0 to non-zero: counts a new
    /// topology change when no other port had one running.
    pub(crate) fn note_tc_start(&mut self, i: usize) {
        let others = self
            .ports
            .iter()
            .enumerate()
            .any(|(j, p)| j != i && p.tc_while != 0);
        if !others {
            self.topology_changes += 1;
            self.since_topology_change = Some(0);
            self.events.push(Event::TopologyChange);
        }
    }

    /// Emits PortState events for ports whose state changed, stopping
    /// states first.
    pub(crate) fn report_states(&mut self) {
        let rank = |s: PortState| match s {
            PortState::Disabled | PortState::Discarding => 0,
            PortState::Learning => 1,
            PortState::Forwarding => 2,
        };
        let mut changed: Vec<(u8, PortId, PortState)> = Vec::new();
        for p in &mut self.ports {
            let s = p.state();
            if s != p.reported {
                p.reported = s;
                changed.push((rank(s), p.id, s));
            }
        }
        changed.sort_by_key(|c| (c.0, c.1));
        for (_, port, state) in changed {
            self.events.push(Event::PortState { port, state });
        }
    }
}
