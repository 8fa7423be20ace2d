//! The config file: TOML parsing into `config::File`, its checks into a
//! `Config`, and the value parsers the file and the command line share
//! (MACs, VLAN lists, port lists, socket modes, addresses, ageing times).
//!
//! Checked: nothing panics; a file that checks round-trips: its `[[port]]`
//! sections, written back out as TOML (as `vswitchctl` and reloads do with
//! `PortSection`), read and check to the same port plans; MACs and VLAN
//! lists print as text that parses to the same value.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use vswitch::config::{self, AgeingTime, File, PortSection};
use vswitch::switch::{Vid, VlanSet};
use vswitch::wire::Mac;

#[derive(Serialize)]
struct Ports<'a> {
    port: Vec<&'a PortSection>,
}

fn values(s: &str) {
    if let Ok(m) = s.parse::<Mac>() {
        assert_eq!(m.to_string().parse::<Mac>(), Ok(m), "MAC {s:?}");
    }
    if let Ok(set) = VlanSet::parse(s) {
        let text = set.to_string();
        assert_eq!(
            VlanSet::parse(&text).as_ref(),
            Ok(&set),
            "VLAN list {s:?} -> {text:?}"
        );
        assert!(!set.contains(0) && !set.contains(4095));
    }
    if let Ok(v) = s.parse::<Vid>() {
        assert!((1..=4094).contains(&v.get()));
    }
    if let Ok(a) = s.parse::<AgeingTime>() {
        assert_eq!(a.ms(), a.secs() * 1000);
    }
    if let Ok(list) = config::parse_port_list(s) {
        for spec in &list {
            let again = vswitch::port::PortSpec::parse(&spec.name()).expect("a port's name parses");
            assert_eq!(again.name(), spec.name());
        }
    }
    if let Ok(m) = config::parse_socket_mode(s) {
        assert!(m <= 0o777);
    }
    let _ = config::parse_metrics_addr(s);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines().take(4) {
        values(line);
        if let Some((_, v)) = line.split_once('=') {
            values(v.trim().trim_matches('"'));
        }
    }
    let path = Path::new("fuzz.toml");
    let Ok(file) = File::parse(text, path) else {
        return;
    };
    let Ok(cfg) = file.check(path) else {
        return;
    };
    assert_eq!(cfg.ports.len(), file.ports.len());
    assert!(cfg.switch.fdb_capacity > 0 && cfg.workers > 0);
    assert_eq!(
        cfg.switch.group_fwd_mask & 2,
        0,
        "pause frames are never forwarded"
    );
    for p in &cfg.ports {
        p.cfg.vlan.check().expect("a checked port has valid VLANs");
        for (mac, _) in &p.static_macs {
            assert!(mac.is_valid_source());
        }
    }
    // Round trip of the port sections.
    let out = toml::to_string(&Ports {
        port: cfg.ports.iter().map(|p| &p.section).collect(),
    })
    .expect("port sections serialise");
    let again = File::parse(&out, path)
        .unwrap_or_else(|e| panic!("written sections do not parse: {e}\n{out}"));
    let again = again
        .check(path)
        .unwrap_or_else(|e| panic!("written sections do not check: {e}\n{out}"));
    assert_eq!(
        again.ports, cfg.ports,
        "port plans after a round trip\n{out}"
    );
    assert_eq!(again.switch.vlan_filtering, cfg.switch.vlan_filtering);
});
