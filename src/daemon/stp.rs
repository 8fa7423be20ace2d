//! Spanning tree in the running switch: the pure protocol
//! ([`crate::stp::Bridge`]) fed with the ports of the registry, the BPDUs
//! the forwarding core punts and a one-second tick, and its events applied
//! to the switch (port states, flushes, fast ageing) and the ports (BPDUs
//! sent with [`Dataplane::send_frame`]).
//!
//! One thread (`vswitchd-stp`) owns the timing: it reads punted BPDUs and
//! ticks once a second. Control requests (`stp show`, `stp enable`) and
//! the daemon's operations (reload, port changes, link changes) reach the
//! same [`StpAgent`] under its lock, so the protocol sees one sequence of
//! inputs.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::dataplane::{Dataplane, LinkState, Punted};
use crate::port::PortKind;
use crate::registry::PortRecord;
use crate::stp::{Bridge, BridgeConfig, BridgeStatus, Event, PortState, PortStpConfig};
use crate::switch::{Flush, PortFlags, PortId, StpGate};

/// Shortest Ethernet frame without its FCS: BPDUs are padded to it.
const MIN_FRAME: usize = 60;

/// A port as last given to the protocol.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    name: String,
    cfg: PortStpConfig,
    up: bool,
}

/// Counters the metrics read (they outlive a bridge that is switched off
/// and on again).
#[derive(Debug, Default, Clone)]
pub struct StpCounters {
    /// BPDU-guard trips, by port name.
    pub guard_trips: BTreeMap<String, u64>,
}

struct Inner {
    bridge: Option<Bridge>,
    ports: BTreeMap<PortId, Known>,
    /// The configured ageing time, restored after fast ageing.
    ageing_ms: u64,
    fast_ageing: bool,
    counters: StpCounters,
}

/// Spanning tree for one switch: off until [`StpAgent::configure`] gives
/// it settings.
pub struct StpAgent {
    dp: Arc<Dataplane>,
    mac: [u8; 6],
    inner: Mutex<Inner>,
}

/// What `stp enable` can fail with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StpError {
    #[error("spanning tree is off (set `stp` in [switch])")]
    Off,
    #[error("port `{0}` is not tripped by BPDU guard")]
    NotTripped(String),
}

impl StpAgent {
    /// Spanning tree (off) for `dp`'s switch, whose bridge MAC is `mac`.
    pub fn new(dp: Arc<Dataplane>, mac: [u8; 6], ageing_ms: u64) -> StpAgent {
        StpAgent {
            dp,
            mac,
            inner: Mutex::new(Inner {
                bridge: None,
                ports: BTreeMap::new(),
                ageing_ms,
                fast_ageing: false,
                counters: StpCounters::default(),
            }),
        }
    }

    /// The bridge MAC (part of the bridge id).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Turns spanning tree on (or retunes it: priority and timer changes
    /// keep a converged tree) or off (`None`: every port forwards again
    /// and BPDUs are forwarded like other frames).
    pub fn configure(&self, cfg: Option<BridgeConfig>) {
        let mut inner = self.inner.lock();
        let sw = self.dp.switch();
        match (cfg, inner.bridge.as_mut()) {
            (None, None) => {}
            (None, Some(_)) => {
                inner.bridge = None;
                inner.ports.clear();
                sw.set_stp(false);
                if inner.fast_ageing {
                    inner.fast_ageing = false;
                    sw.fdb().set_ageing_ms(inner.ageing_ms);
                }
                tracing::info!("spanning tree off: every port forwards");
            }
            (Some(cfg), Some(b)) => {
                if b.config() != cfg {
                    b.set_config(cfg);
                    tracing::info!(
                        mode = cfg.mode.as_str(),
                        priority = cfg.priority,
                        "spanning tree settings changed"
                    );
                }
            }
            (Some(cfg), None) => {
                inner.bridge = Some(Bridge::new(self.mac, cfg));
                inner.ports.clear();
                sw.set_stp(true);
                tracing::info!(
                    mode = cfg.mode.as_str(),
                    priority = cfg.priority,
                    "spanning tree on"
                );
            }
        }
        self.sync_locked(&mut inner);
    }

    /// The settings spanning tree runs with; `None` while it is off.
    pub fn config(&self) -> Option<BridgeConfig> {
        self.inner.lock().bridge.as_ref().map(Bridge::config)
    }

    /// The configured ageing time changed (kept for after fast ageing).
    pub fn set_ageing_ms(&self, ms: u64) {
        let mut inner = self.inner.lock();
        inner.ageing_ms = ms;
        if inner.fast_ageing {
            // Fast ageing goes on; the new time applies when it ends.
            return;
        }
        self.dp.switch().fdb().set_ageing_ms(ms);
    }

    /// Whether fast ageing (a legacy STP topology change) holds the FDB's
    /// ageing time at the forward delay now.
    pub fn fast_ageing(&self) -> bool {
        self.inner.lock().fast_ageing
    }

    /// Gives the protocol the registry's ports as they are now: added,
    /// removed, reconfigured, link up or down.
    pub fn sync(&self) {
        let mut inner = self.inner.lock();
        self.sync_locked(&mut inner);
    }

    fn sync_locked(&self, inner: &mut Inner) {
        if inner.bridge.is_none() {
            return;
        }
        let sw = self.dp.switch();
        let wanted: BTreeMap<PortId, (Known, PortRecord)> = self
            .dp
            .ports()
            .into_iter()
            .map(|r| {
                let up = sw.port_up(r.id) && r.device.link_state() == LinkState::Up;
                let known = Known {
                    name: r.cfg.name.clone(),
                    cfg: port_config(&r.cfg.flags),
                    up,
                };
                (r.id, (known, r))
            })
            .collect();
        let Inner { bridge, ports, .. } = inner;
        let Some(bridge) = bridge.as_mut() else {
            return;
        };
        let gone: Vec<PortId> = ports
            .iter()
            .filter(|(id, k)| wanted.get(id).is_none_or(|(w, _)| w.name != k.name))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            bridge.remove_port(id);
            ports.remove(&id);
        }
        for (id, (want, rec)) in wanted {
            match ports.get(&id) {
                None => {
                    let speed = link_speed(&rec);
                    bridge.add_port_with_speed(id, want.cfg, port_mac(self.mac, id), speed);
                    if want.up {
                        bridge.set_link(id, true);
                    }
                }
                Some(have) => {
                    if have.cfg != want.cfg {
                        bridge.set_port_config(id, want.cfg);
                        if want.cfg.cost.is_none() && have.cfg.cost.is_some() {
                            bridge.set_port_speed(id, link_speed(&rec));
                        }
                    }
                    if have.up != want.up {
                        bridge.set_link(id, want.up);
                    }
                }
            }
            ports.insert(id, want);
        }
        self.apply(inner);
    }

    /// One second passed.
    pub fn tick(&self) {
        let mut inner = self.inner.lock();
        self.sync_locked(&mut inner);
        if let Some(b) = inner.bridge.as_mut() {
            b.tick();
        }
        self.apply(&mut inner);
    }

    /// A BPDU the forwarding core punted.
    pub fn receive(&self, p: &Punted) {
        let mut inner = self.inner.lock();
        let Some(b) = inner.bridge.as_mut() else {
            return;
        };
        if let Err(e) = b.receive(p.port, &p.frame) {
            tracing::debug!(port = p.port, "BPDU ignored: {}", e.as_str());
        }
        self.apply(&mut inner);
    }

    /// Re-enables a port BPDU guard disabled.
    pub fn enable(&self, id: PortId, name: &str) -> Result<(), StpError> {
        let mut inner = self.inner.lock();
        let Some(b) = inner.bridge.as_mut() else {
            return Err(StpError::Off);
        };
        let tripped = b
            .status()
            .ports
            .iter()
            .any(|p| p.port == id && p.guard_tripped);
        if !tripped {
            return Err(StpError::NotTripped(name.to_string()));
        }
        b.enable_port_after_guard(id);
        tracing::info!(port = name, "BPDU guard: port enabled again");
        self.apply(&mut inner);
        Ok(())
    }

    /// The protocol's state; `None` while spanning tree is off.
    pub fn status(&self) -> Option<BridgeStatus> {
        self.inner.lock().bridge.as_ref().map(Bridge::status)
    }

    pub fn counters(&self) -> StpCounters {
        self.inner.lock().counters.clone()
    }

    /// Carries out what the protocol asked for, in its order.
    fn apply(&self, inner: &mut Inner) {
        let Some(b) = inner.bridge.as_mut() else {
            return;
        };
        let events = b.take_events();
        let forward_delay_ms = u64::from(b.config().forward_delay) * 1000;
        let sw = self.dp.switch();
        let name = |inner: &Inner, id: PortId| {
            inner
                .ports
                .get(&id)
                .map_or_else(|| format!("#{id}"), |k| k.name.clone())
        };
        for e in events {
            match e {
                Event::Transmit { port, mut frame } => {
                    if frame.len() < MIN_FRAME {
                        frame.resize(MIN_FRAME, 0);
                    }
                    if let Some(sent) = self.dp.send_frame(port, &frame)
                        && let Some(f) = sent.failure
                    {
                        tracing::debug!(port, "BPDU not sent: {f:?}");
                    }
                }
                Event::PortState { port, state } => {
                    sw.set_stp_gate(port, gate(state));
                    let n = name(inner, port);
                    tracing::info!(
                        port = n.as_str(),
                        state = state.as_str(),
                        "spanning tree port state"
                    );
                    sw.events().emit(|| crate::switch::Event::Topology {
                        port: Some(n),
                        what: format!("port state {}", state.as_str()),
                    });
                }
                Event::Flush { port } => {
                    sw.fdb().flush(Flush {
                        port: Some(port),
                        ..Flush::default()
                    });
                }
                Event::FastAgeing { on } => {
                    inner.fast_ageing = on;
                    let ms = if on {
                        forward_delay_ms
                    } else {
                        inner.ageing_ms
                    };
                    sw.fdb().set_ageing_ms(ms);
                }
                Event::GuardTripped { port } => {
                    let n = name(inner, port);
                    tracing::warn!(
                        port = n.as_str(),
                        "BPDU guard: a BPDU arrived, the port is disabled until `vswitchctl stp enable {n}`"
                    );
                    sw.events().emit(|| crate::switch::Event::Topology {
                        port: Some(n.clone()),
                        what: "BPDU guard: disabled".into(),
                    });
                    *inner.counters.guard_trips.entry(n).or_default() += 1;
                }
                Event::TopologyChange => {
                    tracing::info!("spanning tree: topology change");
                    sw.events().emit(|| crate::switch::Event::Topology {
                        port: None,
                        what: "topology change".into(),
                    });
                }
            }
        }
    }
}

/// What the forwarding core lets a port in `state` do.
fn gate(state: PortState) -> StpGate {
    match state {
        PortState::Forwarding => StpGate::Forwarding,
        PortState::Learning => StpGate::Learning,
        PortState::Discarding | PortState::Disabled => StpGate::Discarding,
    }
}

/// A port's spanning-tree settings from its flags.
fn port_config(f: &PortFlags) -> PortStpConfig {
    PortStpConfig {
        cost: f.stp_cost.map(|c| c.get()),
        priority: f.stp_priority.get(),
        admin_edge: f.stp_edge,
        bpdu_guard: f.bpdu_guard,
        ..PortStpConfig::default()
    }
}

/// The source MAC of a port's BPDUs: the bridge MAC with the port id in
/// its last two bytes (locally administered, unicast).
fn port_mac(bridge: [u8; 6], id: PortId) -> [u8; 6] {
    let [hi, lo] = (id + 1).to_be_bytes();
    [bridge[0], bridge[1], bridge[2], bridge[3] ^ 0x80, hi, lo]
}

/// The link speed (Mb/s) of a `raw:` port's interface, for its default
/// path cost; TAP and socket ports report none (see docs/stp.md).
fn link_speed(r: &PortRecord) -> Option<u32> {
    if r.device.port.kind() != PortKind::Raw {
        return None;
    }
    let ifname = r.cfg.name.strip_prefix("raw:")?;
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/speed")).ok()?;
    s.trim()
        .parse::<i64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
}

/// A locally administered unicast MAC for the bridge id, stable for one
/// switch instance on one machine (`seed`: what tells instances apart,
/// e.g. the control socket's path) and different between machines
/// (/etc/machine-id).
pub fn bridge_mac(seed: &str) -> [u8; 6] {
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    // FNV-1a: a fixed, documented hash (std's and foldhash's may change
    // between versions, and the bridge id should not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in machine.trim().bytes().chain([0]).chain(seed.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Runs the agent's thread: punted BPDUs as they come, a tick each
/// second, until `stop`.
pub fn spawn(agent: Arc<StpAgent>, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    let punted = agent.dp.punted().clone();
    std::thread::Builder::new()
        .name("vswitchd-stp".into())
        .spawn(move || {
            let mut next = Instant::now() + Duration::from_secs(1);
            while !stop.load(Relaxed) {
                let wait = next.saturating_duration_since(Instant::now());
                match punted.recv_timeout(wait.min(Duration::from_millis(200))) {
                    Ok(p) => agent.receive(&p),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                if Instant::now() >= next {
                    agent.tick();
                    next += Duration::from_secs(1);
                    // After a stall (a suspended machine), tick once, not
                    // a burst.
                    if next < Instant::now() {
                        next = Instant::now() + Duration::from_secs(1);
                    }
                }
            }
        })
}

/// Spanning tree's metrics (docs/metrics.md), read from the agent at each
/// scrape; nothing while spanning tree is off but the BPDU-guard trips.
pub struct StpCollector {
    agent: Arc<StpAgent>,
    descs: Vec<prometheus::core::Desc>,
}

struct StpFamilies {
    role: prometheus::IntGaugeVec,
    state: prometheus::IntGaugeVec,
    is_root: prometheus::IntGauge,
    root_cost: prometheus::IntGauge,
    topology_changes: prometheus::IntCounter,
    bpdus_rx: prometheus::IntCounterVec,
    bpdus_tx: prometheus::IntCounterVec,
    bpdus_bad: prometheus::IntCounterVec,
    guard_trips: prometheus::IntCounterVec,
}

impl StpFamilies {
    fn new() -> StpFamilies {
        use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
        let gv = |n: &str, h: &str, l: &[&str]| {
            IntGaugeVec::new(Opts::new(n, h), l).expect("valid metric")
        };
        let cv = |n: &str, h: &str| {
            IntCounterVec::new(Opts::new(n, h), &["port"]).expect("valid metric")
        };
        StpFamilies {
            role: gv(
                "vswitchd_stp_port_role",
                "1 for the port's spanning-tree role (root, designated, alternate, backup, disabled), 0 for the others.",
                &["port", "role"],
            ),
            state: gv(
                "vswitchd_stp_port_state",
                "1 for the port's spanning-tree state (discarding, learning, forwarding, disabled), 0 for the others.",
                &["port", "state"],
            ),
            is_root: IntGauge::new(
                "vswitchd_stp_root_bridge",
                "1 if this switch is the spanning-tree root.",
            )
            .expect("valid metric"),
            root_cost: IntGauge::new(
                "vswitchd_stp_root_path_cost",
                "Path cost from this switch to the root.",
            )
            .expect("valid metric"),
            topology_changes: IntCounter::new(
                "vswitchd_stp_topology_changes_total",
                "Spanning-tree topology changes this switch saw begin.",
            )
            .expect("valid metric"),
            bpdus_rx: cv(
                "vswitchd_stp_bpdus_received_total",
                "BPDUs received on the port.",
            ),
            bpdus_tx: cv("vswitchd_stp_bpdus_sent_total", "BPDUs sent on the port."),
            bpdus_bad: cv(
                "vswitchd_stp_bpdus_bad_total",
                "Malformed or looped-back BPDUs received on the port (ignored).",
            ),
            guard_trips: cv(
                "vswitchd_stp_bpdu_guard_trips_total",
                "Times BPDU guard disabled the port.",
            ),
        }
    }

    fn all(&self) -> Vec<&dyn prometheus::core::Collector> {
        vec![
            &self.role,
            &self.state,
            &self.is_root,
            &self.root_cost,
            &self.topology_changes,
            &self.bpdus_rx,
            &self.bpdus_tx,
            &self.bpdus_bad,
            &self.guard_trips,
        ]
    }
}

impl StpCollector {
    pub fn new(agent: Arc<StpAgent>) -> StpCollector {
        let descs = StpFamilies::new()
            .all()
            .into_iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        StpCollector { agent, descs }
    }
}

impl prometheus::core::Collector for StpCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use crate::stp::PortRole;
        let f = StpFamilies::new();
        let names: BTreeMap<PortId, String> = self
            .agent
            .dp
            .ports()
            .into_iter()
            .map(|r| (r.id, r.cfg.name))
            .collect();
        let counters = self.agent.counters();
        for (port, n) in &counters.guard_trips {
            f.guard_trips.with_label_values(&[port.as_str()]).inc_by(*n);
        }
        let mut out: Vec<&dyn prometheus::core::Collector> = vec![&f.guard_trips];
        if let Some(s) = self.agent.status() {
            f.is_root.set(i64::from(s.root_port.is_none()));
            f.root_cost.set(i64::from(s.root_path_cost));
            f.topology_changes.inc_by(s.topology_changes);
            for p in &s.ports {
                let Some(name) = names.get(&p.port) else {
                    continue;
                };
                let name = name.as_str();
                for r in [
                    PortRole::Root,
                    PortRole::Designated,
                    PortRole::Alternate,
                    PortRole::Backup,
                    PortRole::Disabled,
                ] {
                    f.role
                        .with_label_values(&[name, r.as_str()])
                        .set(i64::from(p.role == r));
                }
                for st in [
                    PortState::Discarding,
                    PortState::Learning,
                    PortState::Forwarding,
                    PortState::Disabled,
                ] {
                    f.state
                        .with_label_values(&[name, st.as_str()])
                        .set(i64::from(p.state == st));
                }
                f.bpdus_rx.with_label_values(&[name]).inc_by(p.bpdus_rx);
                f.bpdus_tx.with_label_values(&[name]).inc_by(p.bpdus_tx);
                f.bpdus_bad.with_label_values(&[name]).inc_by(p.bpdus_bad);
            }
            out = f.all();
        }
        out.into_iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_macs_are_unicast_local_and_differ_by_seed() {
        let a = bridge_mac("/run/vswitchd/a.sock");
        let b = bridge_mac("/run/vswitchd/b.sock");
        assert_ne!(a, b);
        for m in [a, b] {
            assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast: {m:02x?}");
        }
        assert_eq!(a, bridge_mac("/run/vswitchd/a.sock"), "stable");
    }

    #[test]
    fn port_macs_differ_from_the_bridge_and_each_other() {
        let b = bridge_mac("x");
        let p0 = port_mac(b, 0);
        let p1 = port_mac(b, 1);
        assert_ne!(p0, b);
        assert_ne!(p0, p1);
        assert_eq!(p0[0] & 0x03, 0x02);
    }
}
