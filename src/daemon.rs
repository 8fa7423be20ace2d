//! The running switch as the control plane sees it: the dataplane plus the
//! port plans it was built from, and every change an operator can make —
//! add, remove and reconfigure ports, FDB edits, reload, hot-plug.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::ReentrantMutex;

use crate::config::{self, Config, PortPlan, PortSection};
use crate::control::protocol::{FdbRow, PortChanges, PortInfo, ShowInfo, state_name};
use crate::dataplane::stats::PortTotals;
use crate::dataplane::{Dataplane, Device, LinkState};
use crate::port::{self, OpenOptions, PortSpec};
use crate::registry::PortRecord;
use crate::switch::{Flush, PortId};
use crate::wire::Mac;

/// The switch and what it was configured with. Its ports live in the
/// dataplane's [registry](crate::registry); every operation here (add,
/// remove, set, reload, hot-plug, FDB edits) runs under one lock, so two
/// never interleave.
pub struct Daemon {
    dp: Arc<Dataplane>,
    config_path: Option<PathBuf>,
    /// Command-line settings: kept across reloads.
    overrides: config::Overrides,
    /// Serialises operations (re-entrant: a reload adds and removes ports).
    ops: ReentrantMutex<()>,
}

/// Opens the port a plan names, places it (namespace, addresses) and logs
/// how it was attached.
fn open_port(plan: &PortPlan) -> Result<(port::Port, bool), String> {
    let (p, fell_back) = port::open(&plan.spec, &open_options(plan)).map_err(|e| e.to_string())?;
    if fell_back {
        tracing::info!(
            port = %plan.spec,
            "TAP is held by another process (QEMU?); attached to it as raw:{}",
            plan.spec.ifname().unwrap_or_default()
        );
    }
    if !fell_back && (plan.netns.is_some() || plan.placement != Default::default()) {
        place(plan).map_err(|e| format!("port `{}`: {e}", plan.spec))?;
    }
    tracing::info!(port = %plan.spec, kind = p.kind().as_str(), mtu = p.mtu(), "port up");
    Ok((p, fell_back))
}

fn open_options(plan: &PortPlan) -> OpenOptions {
    OpenOptions {
        mtu: plan.mtu,
        socket_mode: plan.section.socket_mode,
        no_claim: plan.section.claim == Some(false),
        mac: plan.section.mac.map(|m| m.0),
    }
}

/// Re-opens a port whose device vanished and came back, the way it was
/// attached before: a TAP vswitchd owned is only re-attached if a
/// persistent TAP of that name exists and is free (never created anew, and
/// a TAP another process holds for a moment — `ip tuntap add` — is tried
/// again on the next check); a TAP QEMU held is attached as raw: again.
/// `Ok(None)`: not (yet) there.
fn reopen_port(plan: &PortPlan, fell_back: bool) -> Result<Option<port::Port>, String> {
    let opts = open_options(plan);
    let p: port::Port = match (&plan.spec, fell_back) {
        (PortSpec::Tap(name), false) => {
            match port::TapPort::reopen_existing(name, opts.mtu, opts.mac) {
                Ok(Some(t)) => {
                    if plan.netns.is_some() || plan.placement != Default::default() {
                        place(plan).map_err(|e| format!("port `{}`: {e}", plan.spec))?;
                    }
                    t.into()
                }
                Ok(None) | Err(port::PortError::Busy { .. }) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
        (PortSpec::Tap(name), true) => port::RawPort::open(name, !opts.no_claim)
            .map_err(|e| e.to_string())?
            .into(),
        _ => port::open(&plan.spec, &opts).map_err(|e| e.to_string())?.0,
    };
    tracing::info!(port = %plan.spec, kind = p.kind().as_str(), "port re-attached");
    Ok(Some(p))
}

/// Moves a new TAP into its namespace and gives it its addresses.
fn place(plan: &PortPlan) -> Result<(), String> {
    let ifname = plan.spec.ifname().unwrap_or_default();
    if let Some(ns) = &plan.netns {
        if !crate::os::rtnl::netns_exists(ns) {
            return Err(format!(
                "network namespace `{ns}` does not exist (create it with `ip netns add {ns}`)"
            ));
        }
        crate::os::rtnl::move_to_netns(ifname, ns)
            .map_err(|e| format!("moving into namespace `{ns}`: {e}"))?;
    }
    crate::os::rtnl::configure(plan.netns.as_deref(), ifname, &plan.placement)
        .map_err(|e| format!("bringing up / adding addresses and routes: {e}"))
}

impl Daemon {
    pub fn new(
        dp: Arc<Dataplane>,
        config_path: Option<PathBuf>,
        overrides: config::Overrides,
    ) -> Daemon {
        Daemon {
            dp,
            config_path,
            overrides,
            ops: ReentrantMutex::new(()),
        }
    }

    pub fn dataplane(&self) -> &Arc<Dataplane> {
        &self.dp
    }

    /// Opens and attaches a port from the configuration. On failure nothing
    /// is left behind.
    pub fn add_port(&self, plan: PortPlan) -> Result<PortId, String> {
        self.attach(plan, false)
    }

    fn attach(&self, plan: PortPlan, runtime: bool) -> Result<PortId, String> {
        let _op = self.ops.lock();
        let name = plan.spec.name();
        if self.dp.registry().snapshot().by_name(&name).is_some() {
            return Err(format!("port `{name}` already exists"));
        }
        let (p, fell_back) = open_port(&plan)?;
        let workers = self.dp.workers();
        let id = self
            .dp
            .registry()
            .change(|d| {
                let id = d.free_id()?;
                let device = Arc::new(Device::new(p, id, &name, d.least_loaded(workers)));
                d.add(PortRecord {
                    id,
                    cfg: plan.cfg.clone(),
                    device,
                    plan: Some(plan.clone()),
                    runtime,
                    fell_back,
                })
            })
            .map_err(|e| e.to_string())?;
        for (mac, vid) in &plan.static_macs {
            if !self.dp.switch().fdb().add_static(*mac, *vid, id) {
                tracing::warn!(port = %name, %mac, "FDB full of static entries; static MAC not added");
            }
        }
        Ok(id)
    }

    /// Detaches and closes a port.
    pub fn del_port(&self, name: &str) -> Result<(), String> {
        let _op = self.ops.lock();
        self.dp
            .registry()
            .change(|d| d.remove(name))
            .map_err(|e| e.to_string())?;
        tracing::info!(port = name, "port removed");
        Ok(())
    }

    /// The record of the port named `name`.
    fn record(&self, name: &str) -> Result<PortRecord, String> {
        self.dp
            .registry()
            .snapshot()
            .by_name(name)
            .cloned()
            .ok_or_else(|| format!("no port named `{name}`"))
    }

    /// Changes some settings of an existing port in place (no reopen
    /// unless the MTU changes).
    pub fn set_port(&self, name: &str, changes: &PortChanges) -> Result<(), String> {
        let _op = self.ops.lock();
        let current = self.record(name)?;
        let Some(cur_plan) = &current.plan else {
            return Err(format!("port `{name}` was not opened by vswitchd"));
        };
        let mut section = cur_plan.section.clone();
        changes.apply(&mut section);
        let plan = Self::plan_one(&section)?;
        self.filter_vlans_for(&plan);
        self.update(&current, plan, current.runtime)
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
    /// origin).
    fn update(&self, cur: &PortRecord, plan: PortPlan, runtime: bool) -> Result<(), String> {
        let name = plan.spec.name();
        let old = cur.plan.clone();
        if old.as_ref() == Some(&plan) && cur.runtime == runtime {
            return Ok(());
        }
        if old.as_ref().is_some_and(|o| o.mtu != plan.mtu) {
            // The device must be recreated with its new MTU.
            self.del_port(&name)?;
            return self.attach(plan, runtime).map(|_| ());
        }
        self.dp
            .registry()
            .change(|d| {
                d.replace(PortRecord {
                    cfg: plan.cfg.clone(),
                    plan: Some(plan.clone()),
                    runtime,
                    ..cur.clone()
                })
            })
            .map_err(|e| e.to_string())?;
        let fdb = self.dp.switch().fdb();
        for (mac, vid) in old.iter().flat_map(|o| &o.static_macs) {
            if !plan.static_macs.contains(&(*mac, *vid)) {
                fdb.remove(*mac, *vid);
            }
        }
        for (mac, vid) in &plan.static_macs {
            fdb.add_static(*mac, *vid, cur.id);
        }
        tracing::info!(port = %name, "port settings changed");
        Ok(())
    }

    fn plan_one(section: &PortSection) -> Result<PortPlan, String> {
        let file = config::File {
            switch: Default::default(),
            ports: vec![section.clone()],
        };
        let cfg = file.check(std::path::Path::new("<request>")).map_err(|e| {
            e.to_string()
                .replace("config file <request>: [[port]] #1 ", "port ")
        })?;
        Ok(cfg.ports.into_iter().next().expect("one port"))
    }

    /// Adds a port from a `port-add` request.
    pub fn add_port_section(&self, section: &PortSection) -> Result<PortId, String> {
        let _op = self.ops.lock();
        let plan = Self::plan_one(section)?;
        self.filter_vlans_for(&plan);
        self.attach(plan, true)
    }

    /// Loads the config file (plus `--ports`) and checks it.
    pub fn load_config(&self) -> Result<Config, String> {
        config::load(self.config_path.as_deref(), &self.overrides).map_err(|e| e.to_string())
    }

    /// Re-reads the config file and applies it. On any error the running
    /// switch keeps its configuration.
    pub fn reload(&self) -> Result<String, String> {
        let _op = self.ops.lock();
        let cfg = self.load_config()?;
        let sw = self.dp.switch();
        let current: BTreeMap<String, PortRecord> = self
            .dp
            .ports()
            .into_iter()
            .map(|r| (r.cfg.name.clone(), r))
            .collect();
        let wanted: BTreeMap<String, PortPlan> = cfg
            .ports
            .iter()
            .map(|p| (p.spec.name(), p.clone()))
            .collect();
        // Open new ports first: if one fails, undo and change nothing.
        let mut added = Vec::new();
        for (name, plan) in &wanted {
            if !current.contains_key(name) {
                match self.add_port(plan.clone()) {
                    Ok(_) => added.push(name.clone()),
                    Err(e) => {
                        for n in &added {
                            let _ = self.del_port(n);
                        }
                        return Err(format!("reload failed, configuration unchanged: {e}"));
                    }
                }
            }
        }
        let runtime_vlans = current.iter().any(|(n, r)| {
            r.runtime
                && !wanted.contains_key(n)
                && r.plan.as_ref().is_some_and(|p| p.section.vlan.is_some())
        });
        sw.set_vlan_filtering(
            cfg.switch.vlan_filtering || runtime_vlans,
            cfg.switch.vlan_protocol,
        );
        sw.fdb().set_ageing_ms(cfg.switch.ageing_ms);
        sw.fdb().set_capacity(cfg.switch.fdb_capacity);
        sw.set_group_fwd_mask(cfg.switch.group_fwd_mask);
        let mut changed = 0;
        let mut removed = 0;
        for (name, cur) in &current {
            match wanted.get(name) {
                None if cur.runtime || cur.plan.is_none() => {}
                None => {
                    self.del_port(name)?;
                    removed += 1;
                }
                Some(plan) if cur.plan.as_ref() != Some(plan) || cur.runtime => {
                    // A port the file now names is managed by the file.
                    self.update(cur, plan.clone(), false)?;
                    changed += 1;
                }
                Some(_) => {}
            }
        }
        let msg = format!(
            "reloaded: {} added, {changed} changed, {removed} removed, {} unchanged",
            added.len(),
            current.len() - changed - removed
        );
        tracing::info!("{msg}");
        Ok(msg)
    }

    /// Re-attaches ports whose device came back and marks down ports whose
    /// device vanished. Called on link notifications and once a second.
    pub fn hotplug_tick(&self) {
        let _op = self.ops.lock();
        for r in self.dp.ports() {
            let Some(plan) = &r.plan else { continue };
            match r.device.link_state() {
                LinkState::Gone => {
                    if plan.spec.ifname().is_some_and(port::interface_exists) {
                        match reopen_port(plan, r.fell_back) {
                            Ok(Some(p)) => {
                                if let Err(e) = self.dp.replace_port(r.id, p) {
                                    tracing::warn!(port = %plan.spec, "re-attach failed: {e}");
                                }
                            }
                            Ok(None) => {}
                            Err(e) => tracing::debug!(port = %plan.spec, "not yet: {e}"),
                        }
                    }
                }
                state => {
                    if !r.device.port.alive() {
                        self.dp.mark_gone(r.id);
                    } else if state == LinkState::Up && r.device.port.carrier() == Some(false) {
                        self.dp.mark_link_down(r.id);
                    }
                }
            }
        }
    }

    fn name_of(&self, id: PortId) -> String {
        self.dp
            .port(id)
            .map(|r| r.cfg.name)
            .unwrap_or_else(|| format!("#{id}"))
    }

    pub fn port_id(&self, name: &str) -> Result<PortId, String> {
        self.record(name).map(|r| r.id)
    }

    pub fn show(&self) -> ShowInfo {
        let sw = self.dp.switch();
        let counters = self.dp.counters();
        let ports = self
            .dp
            .ports()
            .into_iter()
            .map(|h| {
                let cfg = &h.cfg;
                let dev = &h.device;
                let vlan = if sw.vlan_filtering() {
                    match &cfg.vlan {
                        crate::switch::VlanMode::Access { vid } => format!("access {vid}"),
                        crate::switch::VlanMode::Trunk { allowed, native } => match native {
                            Some(n) => format!("trunk {allowed} native {n}"),
                            None => format!("trunk {allowed}"),
                        },
                    }
                } else {
                    "-".to_string()
                };
                PortInfo {
                    id: h.id,
                    name: cfg.name.clone(),
                    kind: dev.port.kind().to_string(),
                    state: state_name(sw.port_up(h.id), dev.link_state()).to_string(),
                    reading: dev.reading(),
                    vlan,
                    learning: cfg.learning,
                    flood: cfg.flood,
                    mcast_flood: cfg.mcast_flood,
                    bcast_flood: cfg.bcast_flood,
                    isolated: cfg.isolated,
                    hairpin: cfg.hairpin,
                    mac_limit: cfg.mac_limit,
                    mtu: dev.port.mtu(),
                    learned_macs: sw.fdb().learned_on(h.id),
                    counters: PortTotals::sum(&counters, h.id).into(),
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

    pub fn fdb_show(&self, port: Option<&str>, vlan: Option<u16>) -> Result<Vec<FdbRow>, String> {
        let pid = port.map(|p| self.port_id(p)).transpose()?;
        let now = self.dp.clock().now_ms();
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
            })
            .collect())
    }

    fn default_vid(&self, id: PortId) -> u16 {
        if !self.dp.switch().vlan_filtering() {
            return crate::switch::UNAWARE_VID;
        }
        self.dp
            .port(id)
            .and_then(|r| r.cfg.vlan.pvid())
            .unwrap_or(1)
    }

    pub fn fdb_add(&self, mac: Mac, vlan: Option<u16>, port: &str) -> Result<(), String> {
        if !mac.is_valid_source() {
            return Err(format!(
                "{mac}: a static entry must be a unicast, non-zero MAC"
            ));
        }
        let id = self.port_id(port)?;
        let vid = vlan.unwrap_or_else(|| self.default_vid(id));
        if !(1..=4094).contains(&vid) {
            return Err(format!("VLAN {vid} is out of range (1-4094)"));
        }
        if self.dp.switch().fdb().add_static(mac, vid, id) {
            Ok(())
        } else {
            Err("the FDB is full of static entries".into())
        }
    }

    pub fn fdb_del(&self, mac: Mac, vlan: Option<u16>) -> Result<(), String> {
        let fdb = self.dp.switch().fdb();
        let removed = match vlan {
            Some(v) => fdb.remove(mac, v) as usize,
            None => (1..=4094).filter(|v| fdb.remove(mac, *v)).count(),
        };
        if removed == 0 {
            Err(format!("no FDB entry for {mac}"))
        } else {
            Ok(())
        }
    }

    pub fn fdb_flush(&self, port: Option<&str>, vlan: Option<u16>) -> Result<usize, String> {
        let pid = port.map(|p| self.port_id(p)).transpose()?;
        Ok(self.dp.switch().fdb().flush(Flush {
            port: pid,
            vlan,
            include_static: false,
        }))
    }

    pub fn set_ageing(&self, seconds: u64) -> Result<(), String> {
        if !config::AGEING_SECONDS.contains(&seconds) {
            return Err(format!(
                "ageing time {seconds}: must be 10 to 1000000 seconds"
            ));
        }
        self.dp.switch().fdb().set_ageing_ms(seconds * 1000);
        Ok(())
    }
}
