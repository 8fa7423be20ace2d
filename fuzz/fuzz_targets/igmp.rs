//! IGMP and MLD: `wire::igmp::parse` on any IPv4 or IPv6 payload (the
//! first byte picks the EtherType), and the multicast database fed what
//! parses through the forwarding core.
//!
//! Checked: no panic on any input; a frame the core decides is never sent
//! back to its ingress port (no hairpin) and only to ports that exist.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::switch::{PortConfig, Switch, SwitchConfig};
use vswitch::wire::EtherType;
use vswitch::wire::igmp;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let (et, code) = if sel & 1 == 0 {
        (EtherType::Ipv4, 0x0800u16)
    } else {
        (EtherType::Ipv6, 0x86dd)
    };
    let _ = igmp::parse(et, payload);
    // The same payload in a multicast frame through the switch, from
    // either of three ports, with time moving on.
    let sw = Switch::new(&SwitchConfig::default());
    for i in 0..3 {
        let id = sw.add_port(PortConfig::new(format!("p{i}"))).unwrap();
        sw.set_port_up(id, true);
    }
    let dst: [u8; 6] = if sel & 1 == 0 {
        [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01]
    } else {
        [0x33, 0x33, 0x00, 0x00, 0x00, 0x01]
    };
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, sel | 1]);
    f.extend_from_slice(&code.to_be_bytes());
    f.extend_from_slice(payload);
    for (t, ingress) in [(0u64, 0u16), (1_000, 1), (300_000, 2)] {
        let _ = sw.mcast_tick(t);
        let d = sw.decide(ingress, &f, t);
        if let Some(e) = d.egress() {
            assert!(!e.ports.contains(ingress), "sent back to its ingress port");
            assert!(
                e.ports.iter().all(|p| p < 3),
                "to a port that does not exist"
            );
        }
    }
});
