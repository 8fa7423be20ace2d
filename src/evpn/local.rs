//! The switch side of EVPN: the segments (`vxlan:` ports with `evpn =
//! true`) and the MACs on local ports, read from the dataplane's port
//! snapshot and the FDB's entries; flood lists and remote MACs written
//! back. Called by the agent once a second, off the hot path: a snapshot
//! read, one pass over the FDB, and a few short locks per change.
//!
//! **Which MACs are local.** Every FDB entry not on a `vxlan:` port and
//! not of origin `evpn`, in the segment's VLAN: VLAN 1 when the switch
//! does not filter VLANs, else the tunnel port's PVID (one VNI is one
//! VLAN, EVPN's VLAN-based service).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::reconcile::{Plan, Segment};
use crate::dataplane::{Dataplane, Device};
use crate::port::{Port, VxlanPort};
use crate::switch::PortId;

/// One segment with where it lives in the switch.
pub struct SegmentPort {
    pub name: String,
    pub id: PortId,
    /// The VLAN its MACs are in.
    pub vid: u16,
    pub device: Arc<Device>,
    pub segment: Segment,
    /// The port's configured RD and RT.
    pub targets: super::route::Targets,
    /// The FDB's `evpn` entries on the port now.
    pub evpn_macs: BTreeSet<crate::wire::Mac>,
}

impl SegmentPort {
    pub fn vxlan(&self) -> Option<&VxlanPort> {
        match &self.device.port {
            Port::Vxlan(v) => Some(v),
            _ => None,
        }
    }
}

/// The switch's EVPN segments now, with their local MACs.
pub fn segments(dp: &Dataplane) -> Vec<SegmentPort> {
    let snap = dp.registry().snapshot();
    let switch = dp.switch();
    let filtering = switch.vlan_filtering();
    let mut out = Vec::new();
    let mut tunnels = BTreeSet::new();
    for rec in snap.iter() {
        let Port::Vxlan(v) = &rec.device.port else {
            continue;
        };
        tunnels.insert(rec.id);
        if !v.evpn() {
            continue;
        }
        let vid = if filtering {
            rec.cfg.vlan.pvid().unwrap_or(1)
        } else {
            1
        };
        out.push(SegmentPort {
            name: rec.name().to_string(),
            id: rec.id,
            vid,
            device: rec.device.clone(),
            segment: Segment {
                vni: v.vni(),
                vtep: v.local_ip(),
                local_macs: BTreeSet::new(),
            },
            targets: v.evpn_targets(),
            evpn_macs: BTreeSet::new(),
        });
    }
    if out.is_empty() {
        return out;
    }
    for e in switch.fdb().entries(dp.clock().now_ms()) {
        if e.evpn {
            for s in out.iter_mut().filter(|s| s.id == e.port && s.vid == e.vlan) {
                s.evpn_macs.insert(e.mac);
            }
            continue;
        }
        if tunnels.contains(&e.port) {
            continue;
        }
        for s in out.iter_mut().filter(|s| s.vid == e.vlan) {
            s.segment.local_macs.insert(e.mac);
        }
    }
    out
}

/// Applies the plan's flood-list and FDB changes to the segments there
/// are (changes for a VNI whose port went are dropped).
pub fn apply(dp: &Dataplane, segs: &[SegmentPort], plan: &Plan) {
    let fdb = dp.switch().fdb();
    let find = |vni: u32| segs.iter().find(|s| s.segment.vni == vni);
    for (vni, list) in &plan.flood {
        if let Some(v) = find(*vni).and_then(SegmentPort::vxlan) {
            let list: Vec<IpAddr> = list.iter().copied().collect();
            tracing::info!(vni, remotes = ?list, "evpn: flood list");
            v.set_evpn_flood(&list);
        }
    }
    for (vni, mac) in &plan.remove {
        if let Some(s) = find(*vni) {
            fdb.remove_evpn(*mac, s.vid);
            if let Some(v) = s.vxlan() {
                v.remove_evpn_mac(*mac);
            }
        }
    }
    for (vni, mac, vtep) in &plan.install {
        if let Some(s) = find(*vni)
            && let Some(v) = s.vxlan()
        {
            // The tunnel learns the remote first, so a frame the FDB sends
            // to the port already finds it.
            if !v.add_evpn_mac(*mac, *vtep) {
                tracing::warn!(vni, %mac, "evpn: a static entry holds this MAC; route ignored");
                continue;
            }
            if !fdb.add_evpn(*mac, s.vid, s.id) {
                // The tunnel's table holds no more than the FDB does.
                v.remove_evpn_mac(*mac);
                tracing::warn!(vni, %mac, "evpn: the FDB refused this MAC (static entry, or full)");
            }
        }
    }
}
