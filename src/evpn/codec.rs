//! Our routes to GoBGP's API paths and GoBGP's paths back to routes.
//! Pure: values in, values out.
//!
//! GoBGP's API carries an NLRI and each path attribute as a protobuf
//! `Any` (`type.googleapis.com/apipb.<Message>`). What we send, as FRR
//! sends it for an L2 VNI (RFC 8365):
//! - type 2: RD, ESI 0, Ethernet tag 0, the MAC, no IP, label = VNI;
//! - type 3: RD, Ethernet tag 0, our VTEP address; a PMSI tunnel
//!   attribute, ingress replication, label = VNI, tunnel id = our VTEP;
//! - both: origin IGP, next hop = our VTEP, the route target, the VXLAN
//!   encapsulation extended community (tunnel type 8) and, for a MAC with
//!   a sequence number above 0, MAC mobility.

use std::net::{IpAddr, Ipv4Addr};

use prost::Message;
use prost_types::Any;

use super::gobgp as api;
use super::route::{LocalRoute, Rd, RemoteRoute, Rt, Targets};
use crate::wire::Mac;

const PREFIX: &str = "type.googleapis.com/apipb.";
/// Route-target sub-type of the AS-specific extended communities.
const SUBTYPE_ROUTE_TARGET: u32 = 0x02;
/// BGP encapsulation tunnel type VXLAN (RFC 8365 section 5.1.3).
const TUNNEL_VXLAN: u32 = 8;
/// PMSI tunnel type: ingress replication (RFC 6514).
const PMSI_INGRESS_REPLICATION: u32 = 6;

fn any<M: Message>(name: &str, m: &M) -> Any {
    Any {
        type_url: format!("{PREFIX}{name}"),
        value: m.encode_to_vec(),
    }
}

/// The message in `a` if it is a `name`.
fn open<M: Message + Default>(a: &Any, name: &str) -> Option<M> {
    let n = a.type_url.strip_prefix(PREFIX)?;
    (n == name).then(|| M::decode(a.value.as_slice()).ok())?
}

/// The L2VPN EVPN address family.
pub fn family() -> api::Family {
    api::Family {
        afi: api::family::Afi::L2vpn as i32,
        safi: api::family::Safi::Evpn as i32,
    }
}

/// What one of our routes is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// Our VTEP address for the route's VNI.
    pub vtep: IpAddr,
    /// The segment's configured RD and RT, if any.
    pub targets: Targets,
}

impl Origin {
    /// The configured RD, else `router-id:VNI`.
    pub fn rd(&self, vni: u32) -> Rd {
        self.targets
            .rd
            .unwrap_or_else(|| Rd::for_vni(self.router_id, vni))
    }

    /// The configured RT, else `ASN:VNI`.
    pub fn rt(&self, vni: u32) -> Rt {
        self.targets.rt.unwrap_or(Rt {
            asn: self.asn,
            value: vni,
        })
    }
}

fn rd_any(rd: Rd) -> Any {
    any(
        "RouteDistinguisherIPAddress",
        &api::RouteDistinguisherIpAddress {
            admin: rd.ip.to_string(),
            assigned: u32::from(rd.n),
        },
    )
}

fn rt_any(rt: Rt) -> Any {
    if let Ok(asn) = u16::try_from(rt.asn) {
        any(
            "TwoOctetAsSpecificExtended",
            &api::TwoOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: SUBTYPE_ROUTE_TARGET,
                asn: u32::from(asn),
                local_admin: rt.value,
            },
        )
    } else {
        any(
            "FourOctetAsSpecificExtended",
            &api::FourOctetAsSpecificExtended {
                is_transitive: true,
                sub_type: SUBTYPE_ROUTE_TARGET,
                asn: rt.asn,
                local_admin: rt.value & 0xffff,
            },
        )
    }
}

/// The NLRI of one of our routes.
fn nlri(o: &Origin, route: &LocalRoute) -> Any {
    match *route {
        LocalRoute::Imet { vni } => any(
            "EVPNInclusiveMulticastEthernetTagRoute",
            &api::EvpnInclusiveMulticastEthernetTagRoute {
                rd: Some(rd_any(o.rd(vni))),
                ethernet_tag: 0,
                ip_address: o.vtep.to_string(),
            },
        ),
        LocalRoute::Mac { vni, mac } => any(
            "EVPNMACIPAdvertisementRoute",
            &api::EvpnmacipAdvertisementRoute {
                rd: Some(rd_any(o.rd(vni))),
                esi: Some(api::EthernetSegmentIdentifier {
                    r#type: 0,
                    value: vec![0; 9],
                }),
                ethernet_tag: 0,
                mac_address: mac.to_string(),
                ip_address: String::new(),
                labels: vec![vni],
            },
        ),
    }
}

/// The path that advertises `route` with MAC mobility sequence `seq`.
pub fn path(o: &Origin, route: &LocalRoute, seq: u32) -> api::Path {
    let vni = route.vni();
    let mut comms = vec![
        rt_any(o.rt(vni)),
        any(
            "EncapExtended",
            &api::EncapExtended {
                tunnel_type: TUNNEL_VXLAN,
            },
        ),
    ];
    if seq > 0 {
        comms.push(any(
            "MacMobilityExtended",
            &api::MacMobilityExtended {
                is_sticky: false,
                sequence_num: seq,
            },
        ));
    }
    let mut pattrs = vec![
        any("OriginAttribute", &api::OriginAttribute { origin: 0 }),
        any(
            "NextHopAttribute",
            &api::NextHopAttribute {
                next_hop: o.vtep.to_string(),
            },
        ),
        any(
            "ExtendedCommunitiesAttribute",
            &api::ExtendedCommunitiesAttribute { communities: comms },
        ),
    ];
    if let LocalRoute::Imet { .. } = route {
        let id = match o.vtep {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        pattrs.push(any(
            "PmsiTunnelAttribute",
            &api::PmsiTunnelAttribute {
                flags: 0,
                r#type: PMSI_INGRESS_REPLICATION,
                label: vni,
                id,
            },
        ));
    }
    api::Path {
        nlri: Some(nlri(o, route)),
        pattrs,
        family: Some(family()),
        ..Default::default()
    }
}

/// The route targets (as `asn:value`) a path carries, its MAC mobility
/// sequence number and its next hop.
struct Attrs {
    rts: Vec<Rt>,
    seq: u32,
    next_hop: Option<IpAddr>,
    pmsi_id: Option<IpAddr>,
}

fn attrs(p: &api::Path) -> Attrs {
    let mut a = Attrs {
        rts: Vec::new(),
        seq: 0,
        next_hop: None,
        pmsi_id: None,
    };
    for at in &p.pattrs {
        if let Some(m) = open::<api::MpReachNlriAttribute>(at, "MpReachNLRIAttribute") {
            a.next_hop = m.next_hops.first().and_then(|h| h.parse().ok());
        } else if let Some(m) = open::<api::NextHopAttribute>(at, "NextHopAttribute") {
            a.next_hop = m.next_hop.parse().ok();
        } else if let Some(m) = open::<api::PmsiTunnelAttribute>(at, "PmsiTunnelAttribute") {
            a.pmsi_id = match m.id.len() {
                4 => <[u8; 4]>::try_from(m.id.as_slice()).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(m.id.as_slice()).ok().map(IpAddr::from),
                _ => None,
            };
        } else if let Some(m) =
            open::<api::ExtendedCommunitiesAttribute>(at, "ExtendedCommunitiesAttribute")
        {
            for c in &m.communities {
                if let Some(e) =
                    open::<api::TwoOctetAsSpecificExtended>(c, "TwoOctetAsSpecificExtended")
                    && e.sub_type == SUBTYPE_ROUTE_TARGET
                {
                    a.rts.push(Rt {
                        asn: e.asn,
                        value: e.local_admin,
                    });
                } else if let Some(e) =
                    open::<api::FourOctetAsSpecificExtended>(c, "FourOctetAsSpecificExtended")
                    && e.sub_type == SUBTYPE_ROUTE_TARGET
                {
                    a.rts.push(Rt {
                        asn: e.asn,
                        value: e.local_admin,
                    });
                } else if let Some(e) = open::<api::MacMobilityExtended>(c, "MacMobilityExtended") {
                    a.seq = e.sequence_num;
                }
            }
        }
    }
    a
}

/// The route `p` is, placed in the VNI whose route target (`imports`:
/// each VNI with the RT it imports, see [`Origin::rt`]) it carries.
/// `None` for withdrawals, other route types, routes of no VNI of ours,
/// and anything malformed.
pub fn remote_route(p: &api::Path, imports: &[(u32, Rt)]) -> Option<RemoteRoute> {
    if p.is_withdraw {
        return None;
    }
    let nlri = p.nlri.as_ref()?;
    let a = attrs(p);
    let vni = import(imports, &a.rts)?;
    if let Some(m) = open::<api::EvpnmacipAdvertisementRoute>(nlri, "EVPNMACIPAdvertisementRoute") {
        let mac: Mac = m.mac_address.parse().ok()?;
        return Some(RemoteRoute::Mac {
            vni,
            mac,
            ip: m
                .ip_address
                .parse()
                .ok()
                .filter(|ip: &IpAddr| !ip.is_unspecified()),
            vtep: a.next_hop?,
            seq: a.seq,
        });
    }
    if let Some(m) = open::<api::EvpnInclusiveMulticastEthernetTagRoute>(
        nlri,
        "EVPNInclusiveMulticastEthernetTagRoute",
    ) {
        let vtep = a
            .pmsi_id
            .or_else(|| m.ip_address.parse().ok())
            .or(a.next_hop)?;
        return Some(RemoteRoute::Imet { vni, vtep });
    }
    None
}

/// Whether GoBGP originated `p` itself (it came through its API, from
/// us: vswitchd is what adds EVPN routes to its GoBGP), rather than from
/// a BGP peer. GoBGP lists a local path's neighbor as `<nil>`.
pub fn is_local(p: &api::Path) -> bool {
    matches!(p.neighbor_ip.as_str(), "" | "<nil>")
}

/// The VNI of `imports` one of the route targets `rts` names.
fn import(imports: &[(u32, Rt)], rts: &[Rt]) -> Option<u32> {
    imports
        .iter()
        .find(|(_, want)| rts.iter().any(|have| want.matches(have)))
        .map(|(vni, _)| *vni)
}

/// One of our routes as GoBGP holds it (a local path: [`is_local`]), in
/// the VNI its route target names: one of `imports`, or else `asn:VNI`
/// (a VNI no port has any more: the route is withdrawn), with its
/// sequence number.
pub fn own_route(p: &api::Path, imports: &[(u32, Rt)], asn: u32) -> Option<(LocalRoute, u32)> {
    if p.is_withdraw || !is_local(p) {
        return None;
    }
    let nlri = p.nlri.as_ref()?;
    let a = attrs(p);
    let vni = import(imports, &a.rts)
        .or_else(|| a.rts.iter().find(|rt| rt.asn == asn).map(|rt| rt.value))?;
    if let Some(m) = open::<api::EvpnmacipAdvertisementRoute>(nlri, "EVPNMACIPAdvertisementRoute") {
        let mac: Mac = m.mac_address.parse().ok()?;
        return Some((LocalRoute::Mac { vni, mac }, a.seq));
    }
    open::<api::EvpnInclusiveMulticastEthernetTagRoute>(
        nlri,
        "EVPNInclusiveMulticastEthernetTagRoute",
    )
    .map(|_| (LocalRoute::Imet { vni }, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            router_id: Ipv4Addr::new(198, 18, 0, 2),
            asn: 65000,
            vtep: "198.18.0.2".parse().unwrap(),
            targets: Targets::default(),
        }
    }

    /// VNIs importing the derived RT `asn:VNI`.
    fn derived(asn: u32, vnis: &[u32]) -> Vec<(u32, Rt)> {
        vnis.iter().map(|&v| (v, Rt { asn, value: v })).collect()
    }

    #[test]
    fn our_routes_decode_back_as_remote_routes() {
        let o = origin();
        let mac: Mac = "02:00:00:00:00:07".parse().unwrap();
        let p = path(&o, &LocalRoute::Mac { vni: 100, mac }, 3);
        assert_eq!(
            remote_route(&p, &derived(65000, &[5, 100])),
            Some(RemoteRoute::Mac {
                vni: 100,
                mac,
                ip: None,
                vtep: o.vtep,
                seq: 3
            })
        );
        // Another AS's route target, or a VNI we do not have: not ours.
        assert_eq!(remote_route(&p, &derived(65001, &[100])), None);
        assert_eq!(remote_route(&p, &derived(65000, &[200])), None);
        let p = path(&o, &LocalRoute::Imet { vni: 100 }, 0);
        assert_eq!(
            remote_route(&p, &derived(65000, &[100])),
            Some(RemoteRoute::Imet {
                vni: 100,
                vtep: o.vtep
            })
        );
        let mut w = p.clone();
        w.is_withdraw = true;
        assert_eq!(remote_route(&w, &derived(65000, &[100])), None);
    }

    #[test]
    fn a_path_carries_what_frr_expects() {
        let p = path(&origin(), &LocalRoute::Imet { vni: 100 }, 0);
        let nlri = p.nlri.as_ref().unwrap();
        let r: api::EvpnInclusiveMulticastEthernetTagRoute =
            open(nlri, "EVPNInclusiveMulticastEthernetTagRoute").unwrap();
        let rd: api::RouteDistinguisherIpAddress =
            open(r.rd.as_ref().unwrap(), "RouteDistinguisherIPAddress").unwrap();
        assert_eq!((rd.admin.as_str(), rd.assigned), ("198.18.0.2", 100));
        let a = attrs(&p);
        assert_eq!(
            a.rts,
            vec![Rt {
                asn: 65000,
                value: 100
            }]
        );
        assert_eq!(a.pmsi_id, Some("198.18.0.2".parse().unwrap()));
        assert_eq!(p.family, Some(family()));
        // Garbage in an Any is no route.
        let mut bad = p.clone();
        bad.nlri.as_mut().unwrap().value = vec![0xff; 3];
        assert_eq!(remote_route(&bad, &derived(65000, &[100])), None);
    }

    #[test]
    fn our_paths_listed_back_are_recognised_as_ours() {
        let o = origin();
        let mac: Mac = "02:00:00:00:00:07".parse().unwrap();
        let mut p = path(&o, &LocalRoute::Mac { vni: 100, mac }, 2);
        p.neighbor_ip = "<nil>".into();
        assert_eq!(
            own_route(&p, &[], 65000),
            Some((LocalRoute::Mac { vni: 100, mac }, 2))
        );
        assert_eq!(own_route(&p, &[], 65001), None);
        let mut i = path(&o, &LocalRoute::Imet { vni: 7 }, 0);
        i.neighbor_ip = String::new();
        assert_eq!(
            own_route(&i, &[], 65000),
            Some((LocalRoute::Imet { vni: 7 }, 0))
        );
        p.neighbor_ip = "198.18.0.1".into();
        assert_eq!(own_route(&p, &[], 65000), None);
    }

    #[test]
    fn configured_targets_are_sent_and_imported() {
        let mut o = origin();
        o.targets = Targets {
            rd: Some("198.18.0.2:7".parse().unwrap()),
            rt: Some("65000:1100".parse().unwrap()),
        };
        let p = path(&o, &LocalRoute::Imet { vni: 100 }, 0);
        let a = attrs(&p);
        assert_eq!(
            a.rts,
            vec![Rt {
                asn: 65000,
                value: 1100
            }]
        );
        let r: api::EvpnInclusiveMulticastEthernetTagRoute = open(
            p.nlri.as_ref().unwrap(),
            "EVPNInclusiveMulticastEthernetTagRoute",
        )
        .unwrap();
        let rd: api::RouteDistinguisherIpAddress =
            open(r.rd.as_ref().unwrap(), "RouteDistinguisherIPAddress").unwrap();
        assert_eq!(rd.assigned, 7);
        // Imported by the VNI whose configured RT it carries, not by the
        // derived one.
        let imports = [(
            100,
            Rt {
                asn: 65000,
                value: 1100,
            },
        )];
        assert!(remote_route(&p, &imports).is_some());
        assert_eq!(remote_route(&p, &derived(65000, &[100])), None);
        let mut mine = p.clone();
        mine.neighbor_ip = String::new();
        assert_eq!(
            own_route(&mine, &imports, 65000),
            Some((LocalRoute::Imet { vni: 100 }, 0))
        );
    }

    #[test]
    fn a_four_octet_as_uses_the_four_octet_route_target() {
        let mut o = origin();
        o.asn = 4_200_000_000;
        let p = path(&o, &LocalRoute::Imet { vni: 100 }, 0);
        assert!(remote_route(&p, &derived(o.asn, &[100])).is_some());
    }
}
