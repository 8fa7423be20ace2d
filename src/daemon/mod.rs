//! The running switch as the control plane sees it: the dataplane plus the
//! port plans it was built from, and every change an operator can make —
//! add, remove and reconfigure ports, FDB edits, reload, hot-plug — and
//! [`run()`], vswitchd's main loop.
//!
//! - [`error`]: [`DaemonError`], what an operation can fail with;
//! - [`open`]: the [`PortOpener`] seam between the daemon and the devices
//!   (tests open socket pairs instead);
//! - [`run`](mod@run): signals, ticks, reload on SIGHUP, link
//!   notifications, the metrics and control servers;
//! - [`log`]: logging, with journal priorities and a filter changed at
//!   run time;
//! - [`notify`]: sd_notify (ready, reloading, status, watchdog);
//! - [`access`]: the groups that may use the control and port sockets;
//! - [`stp`](mod@stp): spanning tree, the protocol fed with the ports and
//!   BPDUs and its events applied to the switch.

#![forbid(unsafe_code)]

pub mod access;
pub mod error;
pub mod log;
pub mod mirror;
pub mod notify;
pub mod open;
pub mod run;
pub mod stp;
#[cfg(test)]
mod tests;

pub use error::{DaemonError, PlaceError};
pub use open::{Opened, PortOpener, SystemPorts};
pub use run::{RunError, run};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, ReentrantMutex};

use crate::config::{self, AgeingTime, Config, PortPlan, PortSection};
use crate::control::protocol::{FdbRow, PortChanges, PortInfo, ShowInfo, state_name};
use crate::dataplane::stats::PortTotals;
use crate::dataplane::{Dataplane, Device, LinkState};
use crate::metrics::ConfigStatus;
use crate::port::{PairPeer, PortError, PortSpec};
use crate::registry::PortRecord;
use crate::switch::{Flush, PortId, Vid};
use crate::wire::Mac;

/// The longest frame `trace` takes (a jumbo frame with two tags).
pub const MAX_TRACE_FRAME: usize = 9216 + 8;

/// The switch and what it was configured with. Its ports live in the
/// dataplane's [registry](crate::registry); every operation here (add,
/// remove, set, reload, hot-plug, FDB edits) runs under one lock, so two
/// never interleave.
pub struct Daemon {
    dp: Arc<Dataplane>,
    config_path: Option<PathBuf>,
    /// Command-line settings: kept across reloads.
    overrides: config::Overrides,
    opener: Box<dyn PortOpener>,
    /// Serialises operations (re-entrant: a reload adds and removes ports).
    ops: ReentrantMutex<()>,
    /// The log filter `log-level` changes (none: it cannot change).
    log: Option<Arc<log::LogControl>>,
    /// systemd, told about reloads.
    notifier: notify::Notifier,
    /// How the configuration last loaded, for the metrics.
    config_status: Arc<ConfigStatus>,
    /// `raw:` ports from the configuration whose interface was missing:
    /// each holds a placeholder device, marked gone, until hot-plug
    /// attaches the interface. The placeholder's other end is kept here
    /// (closing it would make the placeholder readable).
    placeholders: Mutex<HashMap<String, PairPeer>>,
    /// Spanning tree (off until configured).
    stp: Arc<stp::StpAgent>,
    /// Port mirrors and captures.
    mirrors: Mutex<mirror::Mirrors>,
    /// The EVPN agent's status (none: no `[evpn]` section).
    evpn: Option<Arc<crate::evpn::status::EvpnStatus>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reloaded {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reloaded: {} added, {} changed, {} removed, {} unchanged",
            self.added, self.changed, self.removed, self.unchanged
        )
    }
}

/// What a reload is to do to each port: the running ports compared with
/// the file's.
#[derive(Default)]
struct ReloadPlan {
    /// Ports the file names that do not run.
    add: Vec<PortPlan>,
    /// Ports from the file that it no longer names. Ports added at
    /// runtime, and ports no plan opened, stay.
    remove: Vec<String>,
    /// Ports whose settings change, or that the file now names although
    /// they were added at runtime (the file manages them from now on).
    change: Vec<(PortRecord, PortPlan)>,
    unchanged: usize,
}

impl ReloadPlan {
    fn new(current: &[PortRecord], wanted: &[PortPlan]) -> ReloadPlan {
        let running: BTreeMap<&str, &PortRecord> = current.iter().map(|r| (r.name(), r)).collect();
        let wanted: BTreeMap<String, &PortPlan> =
            wanted.iter().map(|p| (p.spec.name(), p)).collect();
        let mut plan = ReloadPlan::default();
        for (name, p) in &wanted {
            if !running.contains_key(name.as_str()) {
                plan.add.push((*p).clone());
            }
        }
        for (name, cur) in running {
            match wanted.get(name) {
                None if cur.runtime || cur.plan.is_none() => plan.unchanged += 1,
                None => plan.remove.push(name.to_string()),
                Some(p) if cur.plan.as_ref() != Some(*p) || cur.runtime => {
                    plan.change.push((cur.clone(), (*p).clone()));
                }
                Some(_) => plan.unchanged += 1,
            }
        }
        plan
    }
}

impl Daemon {
    /// A daemon for `dp` that opens real devices ([`SystemPorts`]).
    pub fn new(
        dp: Arc<Dataplane>,
        config_path: Option<PathBuf>,
        overrides: config::Overrides,
    ) -> Daemon {
        let ageing_ms = dp.switch().fdb().ageing_ms();
        let stp = Arc::new(stp::StpAgent::new(
            dp.clone(),
            stp::bridge_mac(&format!("{config_path:?}")),
            ageing_ms,
        ));
        Daemon {
            stp,
            dp,
            config_path,
            overrides,
            opener: Box::new(SystemPorts),
            ops: ReentrantMutex::new(()),
            log: None,
            notifier: notify::Notifier::default(),
            config_status: Arc::new(ConfigStatus::new()),
            placeholders: Mutex::new(HashMap::new()),
            mirrors: Mutex::default(),
            evpn: None,
        }
    }

    /// Reports the EVPN agent's status in `evpn show`.
    pub fn with_evpn(mut self, status: Arc<crate::evpn::status::EvpnStatus>) -> Daemon {
        self.evpn = Some(status);
        self
    }

    /// An EVPN port added at run time needs the agent, and a VNI no other
    /// EVPN port has (the file's ports are checked with the file).
    fn check_evpn(&self, plan: &PortPlan) -> Result<(), DaemonError> {
        let Some(vni) = plan.vxlan.as_ref().filter(|v| v.evpn).map(|v| v.vni) else {
            return Ok(());
        };
        if self.evpn.is_none() {
            return Err(DaemonError::EvpnOff);
        }
        let taken = self.dp.ports().into_iter().find(
            |r| matches!(&r.device.port, crate::port::Port::Vxlan(v) if v.evpn() && v.vni() == vni),
        );
        match taken {
            Some(r) => Err(DaemonError::EvpnVni {
                vni,
                port: r.cfg.name,
            }),
            None => Ok(()),
        }
    }

    /// `evpn show`.
    pub fn evpn_show(&self) -> Result<crate::evpn::status::EvpnInfo, DaemonError> {
        self.evpn
            .as_ref()
            .map(|s| s.get())
            .ok_or(DaemonError::EvpnOff)
    }

    /// Gives spanning tree the bridge MAC `mac` (before it is turned on).
    pub fn with_bridge_mac(mut self, mac: [u8; 6]) -> Daemon {
        let ageing_ms = self.dp.switch().fdb().ageing_ms();
        self.stp = Arc::new(stp::StpAgent::new(self.dp.clone(), mac, ageing_ms));
        self
    }

    /// Spanning tree.
    pub fn stp(&self) -> &Arc<stp::StpAgent> {
        &self.stp
    }

    /// Lets `log-level` requests change the log filter through `log`.
    pub fn with_log_control(mut self, log: Arc<log::LogControl>) -> Daemon {
        self.log = Some(log);
        self
    }

    /// Tells systemd about reloads through `n`.
    pub fn with_notifier(mut self, n: notify::Notifier) -> Daemon {
        self.notifier = n;
        self
    }

    /// How the configuration last loaded (start, reloads).
    pub fn config_status(&self) -> &Arc<ConfigStatus> {
        &self.config_status
    }

    /// The status line systemd shows: ports, and how many are up.
    pub fn status_line(&self) -> String {
        let sw = self.dp.switch();
        let ports = self.dp.ports();
        let up = ports
            .iter()
            .filter(|r| sw.port_up(r.id) && r.device.link_state() == LinkState::Up)
            .count();
        format!("forwarding: {} ports, {} up", ports.len(), up)
    }

    /// Opens ports with `opener` instead (tests: socket pairs).
    pub fn with_opener(mut self, opener: impl PortOpener + 'static) -> Daemon {
        self.opener = Box::new(opener);
        self
    }

    pub fn dataplane(&self) -> &Arc<Dataplane> {
        &self.dp
    }

    /// Opens and attaches a port from the configuration. On failure nothing
    /// is left behind. A `raw:` port whose interface does not exist (yet)
    /// is attached gone, with a warning: hot-plug attaches the interface
    /// when it appears, so a missing uplink does not stop the switch.
    pub fn add_port(&self, plan: PortPlan) -> Result<PortId, DaemonError> {
        let _op = self.ops.lock();
        let r = match self.attach(plan.clone(), false) {
            Err(DaemonError::Open(PortError::NoInterface { .. }))
                if matches!(plan.spec, PortSpec::Raw(_)) =>
            {
                self.attach_missing(plan)
            }
            r => r,
        };
        self.stp.sync();
        if r.is_ok() {
            self.publish_taps();
        }
        r
    }

    /// Attaches a `raw:` port whose interface is missing: a placeholder
    /// device, marked gone at once.
    fn attach_missing(&self, plan: PortPlan) -> Result<PortId, DaemonError> {
        let name = plan.spec.name();
        let (port, peer) = crate::port::pair().map_err(|source| PortError::Io {
            port: name.clone(),
            step: "placeholder",
            source,
        })?;
        let workers = self.dp.workers();
        let id = self.dp.registry().change(|d| {
            let id = d.free_id()?;
            let device = Arc::new(Device::new(port.into(), id, &name, d.least_loaded(workers)));
            d.add(PortRecord {
                id,
                cfg: plan.cfg.clone(),
                device,
                plan: Some(plan.clone()),
                runtime: false,
                fell_back: false,
            })
        })?;
        self.dp.mark_gone(id);
        self.placeholders.lock().insert(name.clone(), peer);
        tracing::warn!(
            port = %name,
            "no interface `{}` (yet): the port is gone until it appears, then it is attached",
            plan.spec.ifname().unwrap_or_default()
        );
        for (mac, vid) in &plan.static_macs {
            self.dp.switch().fdb().add_static(*mac, vid.get(), id);
        }
        Ok(id)
    }

    /// Adds a port from a `port-add` request.
    pub fn add_port_section(&self, section: &PortSection) -> Result<PortId, DaemonError> {
        let _op = self.ops.lock();
        let plan = section
            .plan()
            .map_err(|e| DaemonError::settings(&section.name, e))?;
        self.check_evpn(&plan)?;
        let id = self.attach(plan.clone(), true)?;
        self.filter_vlans_for(&plan);
        self.stp.sync();
        Ok(id)
    }

    fn attach(&self, plan: PortPlan, runtime: bool) -> Result<PortId, DaemonError> {
        let _op = self.ops.lock();
        let name = plan.spec.name();
        let snap = self.dp.registry().snapshot();
        if snap.by_name(&name).is_some() {
            return Err(DaemonError::Exists(name));
        }
        if let Some(other) = snap.iter().find(|r| {
            r.plan
                .as_ref()
                .is_some_and(|p| config::same_interface(&p.spec, &plan.spec))
        }) {
            return Err(DaemonError::Settings {
                port: name,
                source: config::PortSectionError::SameInterface {
                    ifname: plan.spec.ifname().unwrap_or_default().to_string(),
                    other: other.cfg.name.clone(),
                },
            });
        }
        drop(snap);
        let Opened { port, fell_back } = self.opener.open(&plan)?;
        let workers = self.dp.workers();
        let id = self.dp.registry().change(|d| {
            let id = d.free_id()?;
            let device = Arc::new(Device::new(port, id, &name, d.least_loaded(workers)));
            d.add(PortRecord {
                id,
                cfg: plan.cfg.clone(),
                device,
                plan: Some(plan.clone()),
                runtime,
                fell_back,
            })
        })?;
        for (mac, vid) in &plan.static_macs {
            if !self.dp.switch().fdb().add_static(*mac, vid.get(), id) {
                tracing::warn!(port = %name, %mac, "FDB full of static entries; static MAC not added");
            }
        }
        Ok(id)
    }

    /// Detaches and closes a port.
    pub fn del_port(&self, name: &str) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        self.dp.registry().change(|d| d.remove(name))?;
        self.placeholders.lock().remove(name);
        tracing::info!(port = name, "port removed");
        self.stp.sync();
        self.publish_taps();
        Ok(())
    }

    /// The record of the port named `name`.
    fn record(&self, name: &str) -> Result<PortRecord, DaemonError> {
        self.dp
            .registry()
            .snapshot()
            .by_name(name)
            .cloned()
            .ok_or_else(|| DaemonError::NoSuchPort(name.to_string()))
    }

    /// Changes some settings of an existing port in place (no reopen
    /// unless the MTU changes).
    pub fn set_port(&self, name: &str, changes: &PortChanges) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        let current = self.record(name)?;
        let Some(cur_plan) = &current.plan else {
            return Err(DaemonError::NotOpenedHere(name.to_string()));
        };
        let mut section = cur_plan.section.clone();
        changes.apply(&mut section);
        let plan = section.plan().map_err(|e| DaemonError::settings(name, e))?;
        let runtime = current.runtime;
        self.update(current, plan.clone(), runtime)?;
        self.filter_vlans_for(&plan);
        self.stp.sync();
        Ok(())
    }

    /// A port given VLAN settings at runtime turns VLAN filtering on.
    fn filter_vlans_for(&self, plan: &PortPlan) {
        let sw = self.dp.switch();
        if plan.section.vlan.is_some() && !sw.vlan_filtering() {
            tracing::info!(port = %plan.spec, "port has VLAN settings: VLAN filtering turns on");
            sw.set_vlan_filtering(true, sw.vlan_protocol());
        }
    }

    /// Gives port `cur` the settings of `plan` (and `runtime` as its
    /// origin). A new MTU needs a new device: the port is closed and
    /// opened again; if that fails, it is put back as it was. `cur` is
    /// taken, not borrowed: its device must be let go before the port
    /// opens again (a vxlan port's new sockets bind the old ones' address).
    fn update(&self, cur: PortRecord, plan: PortPlan, runtime: bool) -> Result<(), DaemonError> {
        let name = plan.spec.name();
        let old = cur.plan.clone();
        if old.as_ref() == Some(&plan) && cur.runtime == runtime {
            return Ok(());
        }
        // A new MTU, or new tunnel settings (a vxlan port's sockets and
        // remote table are made when it opens): close and open again.
        if let Some(old) = old
            .as_ref()
            .filter(|o| o.mtu != plan.mtu || o.vxlan != plan.vxlan)
        {
            let was_runtime = cur.runtime;
            drop(cur);
            self.del_port(&name)?;
            return match self.attach(plan, runtime) {
                Ok(_) => Ok(()),
                Err(e) => {
                    if let Err(again) = self.attach(old.clone(), was_runtime) {
                        tracing::error!(port = %name, "port lost: cannot open it again as it was: {again}");
                    }
                    Err(e)
                }
            };
        }
        self.dp.registry().change(|d| {
            d.replace(PortRecord {
                cfg: plan.cfg.clone(),
                plan: Some(plan.clone()),
                runtime,
                ..cur.clone()
            })
        })?;
        let fdb = self.dp.switch().fdb();
        for (mac, vid) in old.iter().flat_map(|o| &o.static_macs) {
            if !plan.static_macs.contains(&(*mac, *vid)) {
                fdb.remove(*mac, vid.get());
            }
        }
        for (mac, vid) in &plan.static_macs {
            fdb.add_static(*mac, vid.get(), cur.id);
        }
        tracing::info!(port = %name, "port settings changed");
        Ok(())
    }

    /// Loads the config file (plus `--ports`) and checks it.
    fn load_config(&self) -> Result<Config, DaemonError> {
        Ok(config::load(self.config_path.as_deref(), &self.overrides)?)
    }

    /// Re-reads the config file and applies it. New ports are opened
    /// first: if the file is wrong or a new port cannot be opened, the
    /// running switch keeps its configuration.
    ///
    /// systemd is told (`RELOADING=1`, then `READY=1` with the status),
    /// and the outcome is kept for the metrics.
    pub fn reload(&self) -> Result<Reloaded, DaemonError> {
        let _op = self.ops.lock();
        self.notifier.reloading();
        let r = self.reload_inner();
        self.config_status.record(r.is_ok());
        self.notifier.ready(&self.status_line());
        r
    }

    fn reload_inner(&self) -> Result<Reloaded, DaemonError> {
        let unchanged = |e| DaemonError::Reload(Box::new(e));
        let cfg = self.load_config().map_err(unchanged)?;
        // [evpn] is read at start: EVPN ports need the agent started then.
        if self.evpn.is_none()
            && cfg
                .ports
                .iter()
                .any(|p| p.vxlan.as_ref().is_some_and(|v| v.evpn))
        {
            return Err(unchanged(DaemonError::EvpnOff));
        }
        let plan = ReloadPlan::new(&self.dp.ports(), &cfg.ports);
        let mut added = Vec::new();
        for p in &plan.add {
            match self.add_port(p.clone()) {
                Ok(_) => added.push(p.spec.name()),
                Err(e) => {
                    for n in &added {
                        let _ = self.del_port(n);
                    }
                    return Err(unchanged(e));
                }
            }
        }
        let sw = self.dp.switch();
        let runtime_vlans = self.dp.ports().iter().any(|r| {
            r.runtime
                && !plan.change.iter().any(|(c, _)| c.id == r.id)
                && r.plan.as_ref().is_some_and(|p| p.section.vlan.is_some())
        });
        sw.set_vlan_filtering(
            cfg.switch.vlan_filtering || runtime_vlans,
            cfg.switch.vlan_protocol,
        );
        self.stp.set_ageing_ms(cfg.switch.ageing_ms);
        sw.fdb().set_capacity(cfg.switch.fdb_capacity);
        sw.set_group_fwd_mask(cfg.switch.group_fwd_mask);
        sw.set_mcast_config(cfg.switch.mcast.clone(), self.dp.clock().now_ms());
        let incomplete = |e| DaemonError::ReloadIncomplete(Box::new(e));
        for name in &plan.remove {
            self.del_port(name).map_err(incomplete)?;
        }
        let changed = plan.change.len();
        for (cur, p) in plan.change {
            self.update(cur, p, false).map_err(incomplete)?;
        }
        self.stp.configure(cfg.stp);
        self.set_mirrors(&cfg.mirrors).map_err(incomplete)?;
        let done = Reloaded {
            added: plan.add.len(),
            changed,
            removed: plan.remove.len(),
            unchanged: plan.unchanged,
        };
        tracing::info!("{done}");
        Ok(done)
    }

    /// Re-attaches ports whose device came back and marks down ports whose
    /// device vanished. Called on link notifications and once a second.
    pub fn hotplug_tick(&self) {
        let _op = self.ops.lock();
        for r in self.dp.ports() {
            let Some(plan) = &r.plan else { continue };
            match r.device.link_state() {
                LinkState::Gone => match self.opener.reopen(plan, r.fell_back) {
                    Ok(Some(p)) => {
                        if let Err(e) = self.dp.replace_port(r.id, p) {
                            tracing::warn!(port = %plan.spec, "re-attach failed: {e}");
                        } else {
                            self.placeholders.lock().remove(r.name());
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(port = %plan.spec, "not yet: {e}"),
                },
                state => {
                    if !r.device.port.alive() {
                        self.dp.mark_gone(r.id);
                    } else if state == LinkState::Up && r.device.port.carrier() == Some(false) {
                        self.dp.mark_link_down(r.id);
                    }
                }
            }
        }
        self.stp.sync();
    }

    /// Port `id`'s name (`#ID` for a port that is gone).
    pub fn port_name(&self, id: PortId) -> String {
        self.name_of(id)
    }

    fn name_of(&self, id: PortId) -> String {
        self.dp
            .port(id)
            .map(|r| r.cfg.name)
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn port_id(&self, name: &str) -> Result<PortId, DaemonError> {
        self.record(name).map(|r| r.id)
    }

    pub fn show(&self) -> ShowInfo {
        let sw = self.dp.switch();
        let counters = self.dp.counters();
        let placeholders = self.placeholders.lock();
        let ports = self
            .dp
            .ports()
            .into_iter()
            .map(|h| {
                let cfg = &h.cfg;
                let dev = &h.device;
                let kind = if placeholders.contains_key(&cfg.name) {
                    "raw".to_string()
                } else {
                    dev.port.kind().to_string()
                };
                PortInfo {
                    id: h.id,
                    name: cfg.name.clone(),
                    kind,
                    state: state_name(sw.port_up(h.id), dev.link_state()).to_string(),
                    reading: dev.reading(),
                    vlan: if sw.vlan_filtering() {
                        cfg.vlan.to_string()
                    } else {
                        "-".to_string()
                    },
                    vlan_mode: sw.vlan_filtering().then(|| vlan_section(&cfg.vlan)),
                    flags: cfg.flags,
                    mtu: dev.port.mtu(),
                    learned_macs: sw.fdb().learned_on(h.id),
                    counters: PortTotals::sum(&counters, h.id).into(),
                    vxlan: vxlan_info(&dev.port),
                }
            })
            .collect();
        ShowInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            vlan_filtering: sw.vlan_filtering(),
            ageing_seconds: sw.fdb().ageing_ms() / 1000,
            fdb_entries: sw.fdb().len(),
            fdb_capacity: sw.fdb().capacity(),
            group_fwd_mask: sw.group_fwd_mask(),
            ports,
        }
    }

    pub fn fdb_show(
        &self,
        port: Option<&str>,
        vlan: Option<Vid>,
    ) -> Result<Vec<FdbRow>, DaemonError> {
        let pid = port.map(|p| self.port_id(p)).transpose()?;
        let vlan = vlan.map(Vid::get);
        let now = self.dp.clock().now_ms();
        let snap = self.dp.registry().snapshot();
        let remote = |port: PortId, mac: Mac| match snap.get(port).map(|r| &r.device.port) {
            Some(crate::port::Port::Vxlan(v)) => v.remote_of(mac).map(|ip| ip.to_string()),
            _ => None,
        };
        Ok(self
            .dp
            .switch()
            .fdb()
            .entries(now)
            .into_iter()
            .filter(|e| pid.is_none_or(|p| e.port == p) && vlan.is_none_or(|v| e.vlan == v))
            .map(|e| FdbRow {
                mac: e.mac,
                vlan: e.vlan,
                port: self.name_of(e.port),
                is_static: e.is_static,
                age_seconds: e.age_ms as f64 / 1000.0,
                remote: remote(e.port, e.mac),
                origin: match (e.evpn, e.is_static) {
                    (true, _) => "evpn",
                    (false, true) => "static",
                    (false, false) => "learned",
                }
                .to_string(),
            })
            .collect())
    }

    /// Multicast memberships, of one port or VLAN or all.
    pub fn mdb_show(
        &self,
        port: Option<&str>,
        vlan: Option<Vid>,
    ) -> Result<Vec<crate::control::protocol::MdbRow>, DaemonError> {
        let pid = port.map(|p| self.port_id(p)).transpose()?;
        let vlan = vlan.map(Vid::get);
        let now = self.dp.clock().now_ms();
        Ok(self
            .dp
            .switch()
            .mdb_entries(now)
            .into_iter()
            .filter(|e| pid.is_none_or(|p| e.port == p) && vlan.is_none_or(|v| e.vid == v))
            .map(|e| crate::control::protocol::MdbRow {
                group: e.group,
                vlan: e.vid,
                port: self.name_of(e.port),
                remaining_seconds: e.remaining_ms as f64 / 1000.0,
                version: e.version,
            })
            .collect())
    }

    /// Multicast router ports and queriers.
    pub fn mdb_router(&self) -> crate::control::protocol::MdbRouterInfo {
        use crate::control::protocol::{MdbRouterInfo, MdbRouterRow, QuerierRow};
        let now = self.dp.clock().now_ms();
        let sw = self.dp.switch();
        let (routers, queriers) = sw.mdb_routers(now);
        let cfg = sw.mcast_config();
        MdbRouterInfo {
            snooping: cfg.snooping,
            own_querier: cfg.querier,
            routers: routers
                .into_iter()
                .map(|r| MdbRouterRow {
                    port: self.name_of(r.port),
                    family: r.family,
                    mode: r.mode,
                    remaining_seconds: r.remaining_ms.map(|ms| ms as f64 / 1000.0),
                })
                .collect(),
            queriers: queriers
                .into_iter()
                .map(|q| QuerierRow {
                    family: q.family,
                    address: q.address,
                    port: q.port.map(|p| self.name_of(p)),
                    remaining_seconds: q.other_remaining_ms.map(|ms| ms as f64 / 1000.0),
                    present: q.present,
                })
                .collect(),
        }
    }

    /// The VLAN a static entry of port `id` goes in when none is given:
    /// the port's untagged VLAN (VLAN 1 when the switch does not filter
    /// VLANs).
    fn default_vid(&self, id: PortId) -> Vid {
        if !self.dp.switch().vlan_filtering() {
            return Vid::ONE;
        }
        self.dp
            .port(id)
            .and_then(|r| r.cfg.vlan.untagged_vlan())
            .unwrap_or(Vid::ONE)
    }

    /// The entries for `mac` (in `vlan`, or in every VLAN); an error when
    /// there is none.
    /// `trace`: decides `frame_hex` as received on `port`, without side
    /// effects, and explains each step.
    pub fn trace(
        &self,
        port: &str,
        frame_hex: &str,
    ) -> Result<crate::control::protocol::TraceInfo, DaemonError> {
        let id = self.port_id(port)?;
        let frame =
            hex::decode(frame_hex.trim()).map_err(|e| DaemonError::BadFrame(e.to_string()))?;
        if frame.len() > MAX_TRACE_FRAME {
            return Err(DaemonError::BadFrame(format!(
                "{} bytes; at most {MAX_TRACE_FRAME}",
                frame.len()
            )));
        }
        let now = self.dp.clock().now_ms();
        let t = self.dp.switch().trace(id, &frame, now);
        Ok(crate::control::protocol::TraceInfo::new(port, &t))
    }

    pub fn fdb_get(&self, mac: Mac, vlan: Option<Vid>) -> Result<Vec<FdbRow>, DaemonError> {
        let rows: Vec<FdbRow> = self
            .fdb_show(None, vlan)?
            .into_iter()
            .filter(|r| r.mac == mac)
            .collect();
        if rows.is_empty() {
            Err(DaemonError::NoFdbEntry(mac))
        } else {
            Ok(rows)
        }
    }

    /// Replaces the log filter (`None`: leaves it); returns the filter in
    /// force.
    pub fn log_level(&self, filter: Option<&str>) -> Result<String, DaemonError> {
        let log = self.log.as_ref().ok_or(DaemonError::NoLogControl)?;
        match filter {
            None => Ok(log.current()),
            Some(f) => {
                let new = log.set(f).map_err(|e| DaemonError::LogFilter {
                    filter: e.filter,
                    why: e.why,
                })?;
                tracing::info!(filter = %new, "log filter changed");
                Ok(new)
            }
        }
    }

    pub fn fdb_add(&self, mac: Mac, vlan: Option<Vid>, port: &str) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        if !mac.is_valid_source() {
            return Err(DaemonError::StaticMac(mac));
        }
        let id = self.port_id(port)?;
        let vid = vlan.unwrap_or_else(|| self.default_vid(id));
        if self.dp.switch().fdb().add_static(mac, vid.get(), id) {
            Ok(())
        } else {
            Err(DaemonError::FdbFull)
        }
    }

    pub fn fdb_del(&self, mac: Mac, vlan: Option<Vid>) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        let fdb = self.dp.switch().fdb();
        let removed = match vlan {
            Some(v) => fdb.remove(mac, v.get()) as usize,
            None => (1..=crate::switch::ports::MAX_VID)
                .filter(|v| fdb.remove(mac, *v))
                .count(),
        };
        if removed == 0 {
            Err(DaemonError::NoFdbEntry(mac))
        } else {
            Ok(())
        }
    }

    pub fn fdb_flush(&self, port: Option<&str>, vlan: Option<Vid>) -> Result<usize, DaemonError> {
        let _op = self.ops.lock();
        let pid = port.map(|p| self.port_id(p)).transpose()?;
        Ok(self.dp.switch().fdb().flush(Flush {
            port: pid,
            vlan: vlan.map(Vid::get),
            include_static: false,
        }))
    }

    pub fn set_ageing(&self, ageing: AgeingTime) {
        self.stp.set_ageing_ms(ageing.ms());
    }

    /// Spanning tree's state (`stp show`).
    pub fn stp_show(&self) -> Result<crate::control::protocol::StpInfo, DaemonError> {
        let status = self.stp.status().ok_or(DaemonError::StpOff)?;
        Ok(crate::control::protocol::StpInfo::new(status, |id| {
            self.name_of(id)
        }))
    }

    /// Changes spanning tree's mode, priority or timers until the next
    /// reload (`stp set`): the settings in force, with `changes` applied,
    /// checked as the config file's are.
    pub fn stp_set(&self, changes: &crate::cli::vswitchctl::StpChanges) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        let mut s = config::SwitchSection::default();
        match self.stp.config() {
            Some(c) => {
                s.stp = match c.mode {
                    crate::stp::Mode::Stp => config::StpMode::Stp,
                    crate::stp::Mode::Rstp => config::StpMode::Rstp,
                };
                s.bridge_priority = c.priority.into();
                s.hello_time = c.hello_time.into();
                s.max_age = c.max_age.into();
                s.forward_delay = c.forward_delay.into();
            }
            None => s.stp = config::StpMode::Off,
        }
        if let Some(m) = changes.mode {
            s.stp = m;
        }
        s.bridge_priority = changes.priority.unwrap_or(s.bridge_priority);
        s.hello_time = changes.hello_time.unwrap_or(s.hello_time);
        s.max_age = changes.max_age.unwrap_or(s.max_age);
        s.forward_delay = changes.forward_delay.unwrap_or(s.forward_delay);
        let cfg = s.stp().map_err(DaemonError::StpSettings)?;
        self.stp.configure(cfg);
        Ok(())
    }

    /// Re-enables a port BPDU guard disabled (`stp enable`).
    pub fn stp_enable(&self, name: &str) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        let id = self.port_id(name)?;
        self.stp.enable(id, name).map_err(DaemonError::Stp)
    }
}

/// A port's VLAN membership as a `vlan` key of a `[[port]]` section.
fn vlan_section(mode: &crate::switch::VlanMode) -> config::VlanSection {
    match mode {
        crate::switch::VlanMode::Access { vid } => config::VlanSection::Access { vid: *vid },
        crate::switch::VlanMode::Trunk { allowed, native } => config::VlanSection::Trunk {
            allowed: allowed.clone(),
            native: *native,
        },
    }
}

/// A `vxlan:` port's part of `show`.
fn vxlan_info(port: &crate::port::Port) -> Option<crate::control::protocol::VxlanInfo> {
    use crate::port::{Encap, Port};
    use std::sync::atomic::Ordering::Relaxed;
    match port {
        Port::Vxlan(v) => Some(crate::control::protocol::VxlanInfo {
            vni: v.vni(),
            local: v.rx_addr().to_string(),
            remote_macs: v.table().len(),
            no_remote: v.no_remote.load(Relaxed),
            learn_refused: v.table().stats.refused.load(Relaxed),
            remotes: v.remote_stats(),
            encap: Encap::Vswitchd,
        }),
        Port::KernelVxlan(v) => Some(crate::control::protocol::VxlanInfo {
            vni: v.vni(),
            local: v.local().to_string(),
            remote_macs: 0,
            no_remote: 0,
            learn_refused: 0,
            remotes: Vec::new(),
            encap: Encap::Kernel,
        }),
        _ => None,
    }
}
