//! Daemon tests without root: ports are socket pairs handed out by a
//! [`PortOpener`] the test controls, the configuration a file in a
//! temporary directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::config::{Overrides, VlanSection};
use crate::control::protocol::FlagChanges;
use crate::dataplane::{Clock, Tuning};
use crate::port::{PairPeer, PortError, pair};
use crate::switch::{Switch, VlanSet};

/// Opens socket pairs and keeps their other ends; records every open.
#[derive(Default)]
struct Pairs {
    /// Opens of the port named by the key still to refuse.
    refuse: Mutex<HashMap<String, usize>>,
    /// Every port opened (its name and the MTU asked for), in order.
    opened: Mutex<Vec<(String, Option<usize>)>>,
    peers: Mutex<Vec<PairPeer>>,
}

impl Pairs {
    fn refuse(&self, name: &str, times: usize) {
        self.refuse.lock().insert(name.to_string(), times);
    }

    fn opens_of(&self, name: &str) -> Vec<Option<usize>> {
        let opened = self.opened.lock();
        opened
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, m)| *m)
            .collect()
    }

    fn pair(&self, plan: &PortPlan) -> Result<crate::port::Port, DaemonError> {
        let name = plan.spec.name();
        if let Some(left) = self.refuse.lock().get_mut(&name).filter(|n| **n > 0) {
            *left -= 1;
            return Err(PortError::NoInterface { port: name }.into());
        }
        let (port, peer) = pair().expect("socket pair");
        self.peers.lock().push(peer);
        self.opened.lock().push((name, plan.mtu.map(|m| m.get())));
        Ok(port.into())
    }
}

/// The daemon holds the opener; the test keeps a handle on it.
struct Opener(Arc<Pairs>);

impl PortOpener for Opener {
    fn open(&self, plan: &PortPlan) -> Result<Opened, DaemonError> {
        Ok(Opened {
            port: self.0.pair(plan)?,
            fell_back: false,
        })
    }

    fn reopen(
        &self,
        plan: &PortPlan,
        _fell_back: bool,
    ) -> Result<Option<crate::port::Port>, DaemonError> {
        self.0.pair(plan).map(Some)
    }
}

struct Setup {
    daemon: Daemon,
    pairs: Arc<Pairs>,
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// A daemon started from config file `text`, as vswitchd starts.
    fn new(text: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("vswitchd.toml");
        std::fs::write(&file, text).unwrap();
        let cfg = config::load(Some(&file), &Overrides::default()).unwrap();
        let switch = Arc::new(crate::switch::Switch::new(&cfg.switch));
        let dp = Dataplane::start(switch, 1, Tuning::default(), Clock::new()).unwrap();
        let pairs = Arc::new(Pairs::default());
        let daemon = Daemon::new(Arc::new(dp), Some(file.clone()), Overrides::default())
            .with_opener(Opener(pairs.clone()));
        for plan in cfg.ports {
            daemon.add_port(plan).unwrap();
        }
        Setup {
            daemon,
            pairs,
            file,
            _dir: dir,
        }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.file, text).unwrap();
    }

    fn names(&self) -> Vec<String> {
        self.daemon
            .dataplane()
            .ports()
            .iter()
            .map(|r| r.name().to_string())
            .collect()
    }

    fn record(&self, name: &str) -> PortRecord {
        self.daemon.record(name).unwrap()
    }

    fn switch(&self) -> &Switch {
        self.daemon.dataplane().switch()
    }
}

fn ports(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[port]]\nname = \"{n}\"\n"))
        .collect()
}

fn same_device(a: &PortRecord, b: &PortRecord) -> bool {
    Arc::ptr_eq(&a.device, &b.device)
}

#[test]
fn reload_adds_removes_changes_and_keeps_ports() {
    let s = Setup::new(&ports(&["a", "b", "c"]));
    let (a, b) = (s.record("a"), s.record("b"));
    s.write(&format!(
        "{}[[port]]\nname = \"b\"\nisolated = true\n",
        ports(&["a", "d"])
    ));
    let r = s.daemon.reload().unwrap();
    assert_eq!(
        r,
        Reloaded {
            added: 1,
            changed: 1,
            removed: 1,
            unchanged: 1
        }
    );
    assert_eq!(
        r.to_string(),
        "reloaded: 1 added, 1 changed, 1 removed, 1 unchanged"
    );
    assert_eq!(s.names(), ["a", "b", "d"], "c's id went to d");
    assert!(s.record("b").cfg.flags.isolated);
    assert!(same_device(&a, &s.record("a")), "a untouched");
    assert!(
        same_device(&b, &s.record("b")),
        "a flag is changed in place"
    );
    assert_eq!(s.pairs.opens_of("b").len(), 1);
    // The same file again changes nothing.
    assert_eq!(
        s.daemon.reload().unwrap(),
        Reloaded {
            unchanged: 3,
            ..Reloaded::default()
        }
    );
}

#[test]
fn reload_applies_switch_settings() {
    let s = Setup::new(&ports(&["a"]));
    assert!(!s.switch().vlan_filtering());
    s.write(&format!(
        "[switch]\nageing-time = 60\n{}vlan = {{ mode = \"access\", vid = 10 }}\n",
        ports(&["a"])
    ));
    s.daemon.reload().unwrap();
    assert_eq!(s.switch().fdb().ageing_ms(), 60_000);
    assert!(s.switch().vlan_filtering(), "a port has VLAN settings");
    assert_eq!(s.daemon.show().ports[0].vlan, "access 10");
}

#[test]
fn reload_applies_multicast_settings() {
    let s = Setup::new(&ports(&["a"]));
    assert!(s.switch().mcast_config().snooping);
    assert!(!s.switch().mcast_config().querier);
    s.write(&format!(
        "[switch]\nmcast-querier = true\nmcast-last-member-interval = 0.5\n{}mcast-router = \"on\"\n",
        ports(&["a"])
    ));
    s.daemon.reload().unwrap();
    let m = s.switch().mcast_config();
    assert!(m.querier);
    assert_eq!(m.last_member_interval_ms, 500);
    let now = s.daemon.dataplane().clock().now_ms();
    let (routers, _) = s.switch().mdb_routers(now);
    assert_eq!(
        routers.len(),
        2,
        "port a is a router port for IPv4 and IPv6"
    );
    let r = s.daemon.mdb_router();
    assert!(r.own_querier && r.routers.iter().all(|r| r.port == "a" && r.mode == "on"));
    assert!(s.daemon.mdb_show(None, None).unwrap().is_empty());
}

#[test]
fn a_port_that_cannot_be_opened_leaves_the_configuration_unchanged() {
    let s = Setup::new(&ports(&["a", "b", "c"]));
    let before: Vec<PortRecord> = s.daemon.dataplane().ports();
    // d opens, x does not: d is closed again, and nothing else changes.
    s.write(&format!(
        "[switch]\nageing-time = 60\n{}[[port]]\nname = \"b\"\nhairpin = true\n",
        ports(&["a", "d", "x"])
    ));
    s.pairs.refuse("x", 1);
    let e = s.daemon.reload().unwrap_err().to_string();
    assert!(
        e.contains("reload failed, configuration unchanged") && e.contains("`x`"),
        "{e}"
    );
    assert_eq!(s.names(), ["a", "b", "c"]);
    assert_eq!(s.pairs.opens_of("d").len(), 1, "d was opened, then closed");
    let after = s.daemon.dataplane().ports();
    assert!(before.iter().zip(&after).all(|(b, a)| same_device(b, a)));
    assert!(!s.record("b").cfg.flags.hairpin);
    assert_eq!(
        s.switch().fdb().ageing_ms(),
        crate::switch::DEFAULT_AGEING_MS
    );
}

#[test]
fn a_broken_file_leaves_the_configuration_unchanged() {
    let s = Setup::new(&ports(&["a"]));
    s.write(&format!("{}\nbogus-key = 1\n", ports(&["a", "b"])));
    let e = s.daemon.reload().unwrap_err().to_string();
    let file = s.file.display().to_string();
    assert!(
        e.contains("configuration unchanged") && e.contains(&file) && e.contains("line 6"),
        "{e}"
    );
    assert!(e.contains("[[port]] #2 (`b`)"), "names the section: {e}");
    assert_eq!(s.names(), ["a"]);
    std::fs::remove_file(Path::new(&s.file)).unwrap();
    let e = s.daemon.reload().unwrap_err().to_string();
    assert!(e.contains(&file), "{e}");
}

#[test]
fn a_runtime_port_survives_reloads_until_the_file_names_it() {
    let s = Setup::new(&ports(&["a"]));
    let mut section = PortSection::named("r");
    section.vlan = Some(VlanSection::Access {
        vid: Vid::new(20).unwrap(),
    });
    s.daemon.add_port_section(&section).unwrap();
    assert!(s.record("r").runtime);
    assert!(s.switch().vlan_filtering(), "a runtime port with VLANs");
    assert_eq!(
        s.daemon.reload().unwrap(),
        Reloaded {
            unchanged: 2,
            ..Reloaded::default()
        }
    );
    assert_eq!(s.names(), ["a", "r"]);
    assert!(
        s.switch().vlan_filtering(),
        "still on for the runtime port's VLANs"
    );
    // Named by the file, the file manages it: it takes the file's
    // settings, and goes when the file drops it.
    s.write(&ports(&["a", "r"]));
    let r = s.daemon.reload().unwrap();
    assert_eq!((r.changed, r.unchanged), (1, 1), "{r}");
    let rec = s.record("r");
    assert!(!rec.runtime);
    assert_eq!(rec.cfg.vlan.to_string(), "access 1");
    assert!(!s.switch().vlan_filtering());
    s.write(&ports(&["a"]));
    assert_eq!(s.daemon.reload().unwrap().removed, 1);
    assert_eq!(s.names(), ["a"]);
}

#[test]
fn a_new_mtu_reopens_the_port() {
    let s = Setup::new(&ports(&["a", "b"]));
    let (a, b) = (s.record("a"), s.record("b"));
    s.write(&format!("{}mtu = 9000\n", ports(&["a", "b"])));
    assert_eq!(s.daemon.reload().unwrap().changed, 1);
    assert_eq!(s.pairs.opens_of("b"), [None, Some(9000)]);
    assert!(!same_device(&b, &s.record("b")), "b opened anew");
    assert!(same_device(&a, &s.record("a")));
    assert_eq!(s.names(), ["a", "b"]);
}

#[test]
fn new_tunnel_settings_reopen_a_vxlan_port() {
    let vx = |remote: &str| {
        format!(
            "[[port]]\nname = \"vxlan:v\"\nvni = 100\nlocal = \"198.19.7.1\"\nremote = [\"{remote}\"]\n"
        )
    };
    let s = Setup::new(&format!("{}{}", ports(&["a"]), vx("198.19.7.2")));
    let (a, v) = (s.record("a"), s.record("vxlan:v"));
    // Unchanged: nothing reopened.
    assert_eq!(s.daemon.reload().unwrap().changed, 0);
    s.write(&format!("{}{}", ports(&["a"]), vx("198.19.7.3")));
    assert_eq!(s.daemon.reload().unwrap().changed, 1);
    assert_eq!(s.pairs.opens_of("vxlan:v").len(), 2, "opened anew");
    assert!(!same_device(&v, &s.record("vxlan:v")));
    assert!(same_device(&a, &s.record("a")));
    let plan = s.record("vxlan:v").plan.unwrap();
    assert_eq!(
        plan.vxlan.unwrap().remotes,
        vec!["198.19.7.3".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn a_port_that_cannot_be_reopened_is_put_back() {
    let s = Setup::new(&ports(&["a"]));
    s.write(&format!("{}mtu = 9000\n", ports(&["a"])));
    s.pairs.refuse("a", 1);
    let e = s.daemon.reload().unwrap_err().to_string();
    assert!(e.contains("reload stopped") && e.contains("`a`"), "{e}");
    assert_eq!(s.names(), ["a"]);
    assert_eq!(s.record("a").plan.unwrap().mtu, None, "as it was");
    assert_eq!(s.pairs.opens_of("a"), [None, None]);
}

#[test]
fn set_port_changes_flags_and_checks_vlans() {
    let s = Setup::new(&ports(&["a", "b"]));
    let a = s.record("a");
    let changes = PortChanges {
        flags: FlagChanges {
            flood: Some(false),
            mac_limit: Some(4),
            ..FlagChanges::default()
        },
        ..PortChanges::default()
    };
    s.daemon.set_port("a", &changes).unwrap();
    let now = s.record("a");
    assert!(!now.cfg.flags.flood && now.cfg.flags.learning);
    assert_eq!(now.cfg.flags.mac_limit.map(|l| l.get()), Some(4));
    assert!(same_device(&a, &now));
    // A file that says the same thing sees no change.
    s.write(&format!(
        "{}flood = false\nmac-limit = 4\n{}",
        ports(&["a"]),
        ports(&["b"])
    ));
    assert_eq!(s.daemon.reload().unwrap().unchanged, 2);

    let empty_trunk = PortChanges {
        vlan: Some(VlanSection::Trunk {
            allowed: VlanSet::default(),
            native: None,
        }),
        ..PortChanges::default()
    };
    let e = s
        .daemon
        .set_port("a", &empty_trunk)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "port `a`: vlan: a trunk needs allowed VLANs or a native VLAN"
    );
    let e = s
        .daemon
        .set_port("zz", &PortChanges::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "no port named `zz`");
    assert!(
        !s.switch().vlan_filtering(),
        "a refused change changes nothing"
    );
}

#[test]
fn add_and_remove_at_runtime() {
    let s = Setup::new(&ports(&["a"]));
    let e = s
        .daemon
        .add_port_section(&PortSection::named("a"))
        .unwrap_err();
    assert_eq!(e.to_string(), "port `a` already exists");
    let e = s
        .daemon
        .add_port_section(&PortSection::named("bogus:x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown port kind") && !e.starts_with("port `bogus:x`: port"),
        "{e}"
    );
    s.pairs.refuse("n", 1);
    assert!(s.daemon.add_port_section(&PortSection::named("n")).is_err());
    assert_eq!(s.names(), ["a"], "nothing left behind");
    assert_eq!(
        s.daemon.add_port_section(&PortSection::named("n")).unwrap(),
        1
    );
    s.daemon.del_port("n").unwrap();
    assert_eq!(
        s.daemon.del_port("n").unwrap_err().to_string(),
        "no port named `n`"
    );
}

#[test]
fn a_vanished_port_is_reattached_when_it_returns() {
    let s = Setup::new(&ports(&["a"]));
    let a = s.record("a");
    s.daemon.dataplane().mark_gone(a.id);
    assert_eq!(a.device.link_state(), LinkState::Gone);
    s.daemon.hotplug_tick();
    let now = s.record("a");
    assert!(!same_device(&a, &now));
    assert_eq!(now.id, a.id);
    assert_eq!(now.device.link_state(), LinkState::Up);
    assert!(s.switch().port_up(a.id));
}

#[test]
fn fdb_edits() {
    let s = Setup::new(&format!(
        "{}vlan = {{ mode = \"access\", vid = 10 }}\n",
        ports(&["a"])
    ));
    let m: Mac = "02:00:00:00:00:01".parse().unwrap();
    s.daemon.fdb_add(m, None, "a").unwrap();
    let rows = s.daemon.fdb_show(Some("a"), None).unwrap();
    assert_eq!(
        (rows[0].vlan, rows[0].is_static),
        (10, true),
        "the port's VLAN"
    );
    let e = s.daemon.fdb_add(Mac::BROADCAST, None, "a").unwrap_err();
    assert!(e.to_string().contains("unicast"), "{e}");
    assert!(s.daemon.fdb_add(m, None, "zz").is_err());
    s.daemon.fdb_del(m, None).unwrap();
    let e = s.daemon.fdb_del(m, None).unwrap_err();
    assert_eq!(e.to_string(), format!("no FDB entry for {m}"));
}
