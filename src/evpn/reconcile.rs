//! The EVPN agent's decisions, without I/O: from the switch's local MACs,
//! the routes the fabric holds and what was done so far, the routes to
//! advertise or withdraw and the flood-list and FDB changes to make.
//!
//! The agent calls [`plan`] once a second with a full picture (the FDB's
//! local entries, every EVPN route GoBGP has), so a missed event, a
//! restarted GoBGP or a lost update heals at the next round: nothing here
//! depends on having seen every change.
//!
//! MAC mobility (RFC 7432 section 15): a MAC is ours while it is on a
//! local port and no remote advertisement of it wins over ours
//! ([`route::wins`]). Advertising a MAC that some other VTEP advertises
//! too (it moved here) takes their highest sequence number plus one.
//! When a remote advertisement wins over ours (the MAC moved away) ours is
//! withdrawn and the remote entry installed, which takes the MAC off the
//! local port.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::route::{self, LocalRoute, RemoteRoute};
use crate::wire::Mac;

/// One EVPN segment (a `vxlan:` port with `evpn = true`) as the switch
/// holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vni: u32,
    /// Our VTEP address (the port's `local`).
    pub vtep: IpAddr,
    /// MACs on the switch's local (non-tunnel) ports in the segment.
    pub local_macs: BTreeSet<Mac>,
}

/// What has been done: routes advertised (with their sequence numbers),
/// flood lists set, remote MACs installed. The agent keeps it in step
/// with what succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub advertised: BTreeMap<LocalRoute, u32>,
    pub flood: BTreeMap<u32, BTreeSet<IpAddr>>,
    pub remote_macs: BTreeMap<(u32, Mac), IpAddr>,
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Routes to add (new, or with a new sequence number), with their
    /// MAC mobility sequence number (0 for type 3).
    pub advertise: Vec<(LocalRoute, u32)>,
    pub withdraw: Vec<LocalRoute>,
    /// VNIs whose EVPN flood list changes, with the whole new list.
    pub flood: Vec<(u32, BTreeSet<IpAddr>)>,
    /// Remote MACs to install (new, or moved to another VTEP).
    pub install: Vec<(u32, Mac, IpAddr)>,
    /// Remote MACs to take out.
    pub remove: Vec<(u32, Mac)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

impl Applied {
    /// Records the plan's flood-list and FDB changes as done (routes are
    /// recorded one by one as GoBGP takes them).
    pub fn record_local(&mut self, p: &Plan) {
        for (vni, list) in &p.flood {
            if list.is_empty() {
                self.flood.remove(vni);
            } else {
                self.flood.insert(*vni, list.clone());
            }
        }
        for (vni, mac) in &p.remove {
            self.remote_macs.remove(&(*vni, *mac));
        }
        for (vni, mac, vtep) in &p.install {
            self.remote_macs.insert((*vni, *mac), *vtep);
        }
    }
}

/// The winning remote advertisement of each (VNI, MAC): (seq, VTEP).
fn best_remote_macs(
    remote: &[RemoteRoute],
    ours: &BTreeMap<u32, IpAddr>,
) -> BTreeMap<(u32, Mac), (u32, IpAddr)> {
    let mut best: BTreeMap<(u32, Mac), (u32, IpAddr)> = BTreeMap::new();
    for r in remote {
        let RemoteRoute::Mac {
            vni,
            mac,
            vtep,
            seq,
            ..
        } = *r
        else {
            continue;
        };
        if ours.get(&vni).is_none_or(|v| *v == vtep) {
            continue;
        }
        best.entry((vni, mac))
            .and_modify(|b| {
                if route::wins(seq, vtep, b.0, b.1) {
                    *b = (seq, vtep);
                }
            })
            .or_insert((seq, vtep));
    }
    best
}

/// The plan that brings `applied` to what `segments` and `remote` call
/// for. Remote routes of VNIs without a segment, and our own routes
/// coming back (their VTEP is ours), are ignored.
pub fn plan(segments: &[Segment], remote: &[RemoteRoute], applied: &Applied) -> Plan {
    let ours: BTreeMap<u32, IpAddr> = segments.iter().map(|s| (s.vni, s.vtep)).collect();
    let best = best_remote_macs(remote, &ours);

    // Routes we want out, with their sequence numbers; remote MACs wanted.
    let mut want: BTreeMap<LocalRoute, u32> = BTreeMap::new();
    let mut want_macs: BTreeMap<(u32, Mac), IpAddr> = BTreeMap::new();
    for s in segments {
        want.insert(LocalRoute::Imet { vni: s.vni }, 0);
        for mac in &s.local_macs {
            let key = LocalRoute::Mac {
                vni: s.vni,
                mac: *mac,
            };
            let theirs = best.get(&(s.vni, *mac)).copied();
            let seq = match (applied.advertised.get(&key), theirs) {
                // Advertised, and still winning: keep it as it is.
                (Some(&seq), Some((rs, rv))) if !route::wins(rs, rv, seq, s.vtep) => seq,
                (Some(&seq), None) => seq,
                // Advertised, and a remote one wins: the MAC moved away.
                (Some(_), Some(_)) => continue,
                // New here while a remote VTEP has it: it moved here.
                (None, Some((rs, _))) => rs.saturating_add(1),
                (None, None) => 0,
            };
            want.insert(key, seq);
        }
    }
    for (&(vni, mac), &(_, vtep)) in &best {
        if !want.contains_key(&LocalRoute::Mac { vni, mac }) {
            want_macs.insert((vni, mac), vtep);
        }
    }
    let mut want_flood: BTreeMap<u32, BTreeSet<IpAddr>> = BTreeMap::new();
    for r in remote {
        if let RemoteRoute::Imet { vni, vtep } = *r
            && ours.get(&vni).is_some_and(|v| *v != vtep)
        {
            want_flood.entry(vni).or_default().insert(vtep);
        }
    }

    let mut p = Plan::default();
    for (route, seq) in &want {
        if applied.advertised.get(route) != Some(seq) {
            p.advertise.push((*route, *seq));
        }
    }
    for route in applied.advertised.keys() {
        if !want.contains_key(route) {
            p.withdraw.push(*route);
        }
    }
    let vnis: BTreeSet<u32> = applied
        .flood
        .keys()
        .chain(want_flood.keys())
        .copied()
        .collect();
    for vni in vnis {
        let now = applied.flood.get(&vni);
        let next = want_flood.get(&vni);
        if now != next {
            p.flood.push((vni, next.cloned().unwrap_or_default()));
        }
    }
    for (key, vtep) in &want_macs {
        if applied.remote_macs.get(key) != Some(vtep) {
            p.install.push((key.0, key.1, *vtep));
        }
    }
    for key in applied.remote_macs.keys() {
        if !want_macs.contains_key(key) {
            p.remove.push(*key);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const VNI: u32 = 100;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }
    fn seg(macs: &[u8]) -> Segment {
        Segment {
            vni: VNI,
            vtep: ip("198.18.0.2"),
            local_macs: macs.iter().map(|n| mac(*n)).collect(),
        }
    }
    fn rmac(n: u8, vtep: &str, seq: u32) -> RemoteRoute {
        RemoteRoute::Mac {
            vni: VNI,
            mac: mac(n),
            ip: None,
            vtep: ip(vtep),
            seq,
        }
    }
    fn imet(vtep: &str) -> RemoteRoute {
        RemoteRoute::Imet {
            vni: VNI,
            vtep: ip(vtep),
        }
    }
    /// Applies a plan as the agent does when everything succeeds.
    fn apply(a: &mut Applied, p: &Plan) {
        for (r, seq) in &p.advertise {
            a.advertised.insert(*r, *seq);
        }
        for r in &p.withdraw {
            a.advertised.remove(r);
        }
        a.record_local(p);
    }

    #[test]
    fn advertises_type3_and_local_macs_then_nothing() {
        let mut a = Applied::default();
        let p = plan(&[seg(&[1, 2])], &[], &a);
        assert_eq!(
            p.advertise,
            vec![
                (LocalRoute::Imet { vni: VNI }, 0),
                (
                    LocalRoute::Mac {
                        vni: VNI,
                        mac: mac(1)
                    },
                    0
                ),
                (
                    LocalRoute::Mac {
                        vni: VNI,
                        mac: mac(2)
                    },
                    0
                ),
            ]
        );
        apply(&mut a, &p);
        assert!(plan(&[seg(&[1, 2])], &[], &a).is_empty());
        // A MAC ages out: withdrawn.
        let p = plan(&[seg(&[1])], &[], &a);
        assert_eq!(
            p.withdraw,
            vec![LocalRoute::Mac {
                vni: VNI,
                mac: mac(2)
            }]
        );
        assert!(p.advertise.is_empty());
        // The segment goes: everything is withdrawn.
        apply(&mut a, &p);
        let p = plan(&[], &[], &a);
        assert_eq!(p.withdraw.len(), 2);
    }

    #[test]
    fn remote_routes_set_flood_list_and_macs_ignoring_our_own() {
        let mut a = Applied::default();
        let remote = [
            imet("198.18.0.1"),
            imet("198.18.0.3"),
            imet("198.18.0.2"), // ours, reflected back
            rmac(7, "198.18.0.1", 0),
            rmac(1, "198.18.0.2", 0), // ours
            RemoteRoute::Imet {
                vni: 999,
                vtep: ip("198.18.0.9"),
            },
        ];
        let p = plan(&[seg(&[1])], &remote, &a);
        assert_eq!(
            p.flood,
            vec![(VNI, [ip("198.18.0.1"), ip("198.18.0.3")].into())]
        );
        assert_eq!(p.install, vec![(VNI, mac(7), ip("198.18.0.1"))]);
        apply(&mut a, &p);
        assert!(plan(&[seg(&[1])], &remote, &a).is_empty());
        // VTEP 1 goes away: its flood entry and MAC go.
        let p = plan(&[seg(&[1])], &remote[1..3], &a);
        assert_eq!(p.flood, vec![(VNI, [ip("198.18.0.3")].into())]);
        assert_eq!(p.remove, vec![(VNI, mac(7))]);
        // A MAC moves between remote VTEPs: reinstalled.
        let p = plan(&[seg(&[1])], &[rmac(7, "198.18.0.3", 1)], &a);
        assert_eq!(p.install, vec![(VNI, mac(7), ip("198.18.0.3"))]);
    }

    #[test]
    fn mac_moving_here_takes_the_next_sequence_number() {
        let mut a = Applied::default();
        let remote = [rmac(5, "198.18.0.1", 3)];
        let p = plan(&[seg(&[])], &remote, &a);
        apply(&mut a, &p);
        assert_eq!(a.remote_macs.len(), 1);
        // The MAC shows up on a local port: we advertise seq 4 and drop
        // the remote entry.
        let p = plan(&[seg(&[5])], &remote, &a);
        assert!(p.advertise.contains(&(
            LocalRoute::Mac {
                vni: VNI,
                mac: mac(5)
            },
            4
        )));
        assert_eq!(p.remove, vec![(VNI, mac(5))]);
        apply(&mut a, &p);
        // Stable while the old VTEP still has seq 3 out, and after it
        // withdraws.
        assert!(plan(&[seg(&[5])], &remote, &a).is_empty());
        assert!(plan(&[seg(&[5])], &[], &a).is_empty());
    }

    #[test]
    fn mac_moving_away_withdraws_ours_and_installs_theirs() {
        let mut a = Applied::default();
        let p = plan(&[seg(&[5])], &[], &a);
        apply(&mut a, &p);
        // Another VTEP advertises it with seq 1: it wins over our 0.
        let remote = [rmac(5, "198.18.0.3", 1)];
        let p = plan(&[seg(&[5])], &remote, &a);
        assert_eq!(
            p.withdraw,
            vec![LocalRoute::Mac {
                vni: VNI,
                mac: mac(5)
            }]
        );
        assert_eq!(p.install, vec![(VNI, mac(5), ip("198.18.0.3"))]);
        apply(&mut a, &p);
        // Equal sequence numbers: the lower address wins (198.18.0.1 < ours).
        let mut b = Applied::default();
        let p = plan(&[seg(&[6])], &[], &b);
        apply(&mut b, &p);
        let p = plan(&[seg(&[6])], &[rmac(6, "198.18.0.1", 0)], &b);
        assert_eq!(p.withdraw.len(), 1);
        // ... and a higher one loses to ours.
        let p = plan(&[seg(&[6])], &[rmac(6, "198.18.0.3", 0)], &b);
        assert!(p.is_empty());
    }

    #[test]
    fn highest_sequence_wins_among_remotes() {
        let a = Applied::default();
        let remote = [rmac(9, "198.18.0.1", 2), rmac(9, "198.18.0.3", 5)];
        let p = plan(&[seg(&[])], &remote, &a);
        assert_eq!(p.install, vec![(VNI, mac(9), ip("198.18.0.3"))]);
    }
}
