//! The EVPN routes vswitchd deals in (RFC 7432 section 7, RFC 8365), as
//! plain values: what it advertises for one VNI, what it takes from the
//! fabric, and the MAC mobility order between two routes for one MAC
//! (RFC 7432 section 15).
//!
//! **Route distinguisher.** Ours is type 1, `router-id:N` with N the VNI
//! (its low 16 bits: the assigned-number field of a type-1 RD has 16).
//! FRR's automatic RD has the same form, `router-id:N`, with N an index
//! bgpd hands out per VNI (`bgp_evpn_derive_auto_rd`, `rd_id`), so its N
//! is not the VNI. Nothing matches on the RD: it only keeps the routes of
//! one VTEP and VNI apart from everyone else's, which the router id and
//! the VNI do.
//!
//! **Route target.** `ASN:VNI`, FRR's automatic RT (`autort`, without the
//! RFC 8365 type bits): a 2-octet AS-specific extended community when the
//! AS fits in 16 bits, else a 4-octet AS-specific one (VNI then below
//! 65536). Routes are imported into the VNI whose RT they carry.

use std::net::{IpAddr, Ipv4Addr};

use crate::wire::Mac;

/// A type-1 route distinguisher: `ip:n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rd {
    pub ip: Ipv4Addr,
    pub n: u16,
}

impl Rd {
    /// Ours for `vni`: `router-id:VNI` (low 16 bits).
    pub fn for_vni(router_id: Ipv4Addr, vni: u32) -> Rd {
        Rd {
            ip: router_id,
            n: (vni & 0xffff) as u16,
        }
    }
}

impl std::fmt::Display for Rd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ip, self.n)
    }
}

/// A route target `asn:vni`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rt {
    pub asn: u32,
    pub value: u32,
}

impl std::fmt::Display for Rt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.asn, self.value)
    }
}

/// A segment's route distinguisher and route target when the port sets
/// them (`evpn-rd`, `evpn-rt`); `None`: derived from the router id, the
/// AS and the VNI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    pub rd: Option<Rd>,
    pub rt: Option<Rt>,
}

impl std::str::FromStr for Rd {
    type Err = String;
    /// `A.B.C.D:N` (a type-1 RD: an IPv4 address, N 0 to 65535).
    fn from_str(s: &str) -> Result<Rd, String> {
        let bad = || {
            format!("`{s}`: a route distinguisher is IPV4:N, N 0 to 65535 (e.g. 198.19.7.2:100)")
        };
        let (ip, n) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        Ok(Rd {
            ip: ip.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }
}

impl std::str::FromStr for Rt {
    type Err = String;
    /// `ASN:N`: a 2-octet AS with a 32-bit N, or a 4-octet AS with a
    /// 16-bit N (the two AS-specific route-target forms).
    fn from_str(s: &str) -> Result<Rt, String> {
        let bad = || {
            format!(
                "`{s}`: a route target is ASN:N (e.g. 65000:100; N up to 65535 when the ASN is above 65535)"
            )
        };
        let (asn, n) = s.trim().split_once(':').ok_or_else(bad)?;
        let rt = Rt {
            asn: asn.parse().map_err(|_| bad())?,
            value: n.parse().map_err(|_| bad())?,
        };
        if rt.asn == 0 || (rt.asn > 0xffff && rt.value > 0xffff) {
            return Err(bad());
        }
        Ok(rt)
    }
}

impl Rt {
    /// Whether a route target a path carries, `have`, is this one. A
    /// 4-octet AS's route target keeps only 16 bits of the value.
    pub fn matches(&self, have: &Rt) -> bool {
        have.asn == self.asn
            && (have.value == self.value
                || (self.asn > 0xffff && have.value == self.value & 0xffff))
    }
}

/// One of our routes, by what makes it distinct (its NLRI: the RD, the
/// VTEP and the route target follow from the VNI and the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalRoute {
    /// Type 3, inclusive multicast Ethernet tag: "send me the VNI's
    /// broadcast, unknown unicast and multicast" (ingress replication).
    Imet { vni: u32 },
    /// Type 2, MAC/IP advertisement of a MAC on one of our ports.
    Mac { vni: u32, mac: Mac },
}

impl LocalRoute {
    pub fn vni(&self) -> u32 {
        match *self {
            LocalRoute::Imet { vni } | LocalRoute::Mac { vni, .. } => vni,
        }
    }
}

/// A route from the fabric, decoded and placed in a VNI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RemoteRoute {
    /// Type 3: `vtep` floods for `vni` and wants our floods.
    Imet { vni: u32, vtep: IpAddr },
    /// Type 2: `mac` is behind `vtep`, with its mobility sequence number
    /// (0 without the extended community).
    Mac {
        vni: u32,
        mac: Mac,
        ip: Option<IpAddr>,
        vtep: IpAddr,
        seq: u32,
    },
}

impl RemoteRoute {
    pub fn vni(&self) -> u32 {
        match *self {
            RemoteRoute::Imet { vni, .. } | RemoteRoute::Mac { vni, .. } => vni,
        }
    }

    pub fn vtep(&self) -> IpAddr {
        match *self {
            RemoteRoute::Imet { vtep, .. } | RemoteRoute::Mac { vtep, .. } => vtep,
        }
    }
}

/// RFC 7432 section 15: of two advertisements of one MAC, the one with
/// the higher sequence number wins; at equal numbers, the one from the
/// lower VTEP address (its 15.1 tie-break, for lack of anything better).
/// True when (`seq_a`, `vtep_a`) wins over (`seq_b`, `vtep_b`).
pub fn wins(seq_a: u32, vtep_a: IpAddr, seq_b: u32, vtep_b: IpAddr) -> bool {
    seq_a > seq_b || (seq_a == seq_b && vtep_a < vtep_b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd_is_router_id_and_vni() {
        let rd = Rd::for_vni(Ipv4Addr::new(198, 19, 7, 2), 100);
        assert_eq!(rd.to_string(), "198.19.7.2:100");
        assert_eq!(Rd::for_vni(Ipv4Addr::LOCALHOST, 0x12_3456).n, 0x3456);
    }

    #[test]
    fn configured_rd_and_rt_parse_and_bad_ones_say_why() {
        let rd: Rd = "198.19.7.2:7".parse().unwrap();
        assert_eq!(
            rd,
            Rd {
                ip: Ipv4Addr::new(198, 19, 7, 2),
                n: 7
            }
        );
        let rt: Rt = "65000:1100".parse().unwrap();
        assert_eq!((rt.asn, rt.value), (65000, 1100));
        let rt4: Rt = "4200000000:5".parse().unwrap();
        assert!(rt4.matches(&Rt {
            asn: 4_200_000_000,
            value: 5
        }));
        for bad in ["198.19.7.2", "x:1", "198.19.7.2:70000"] {
            assert!(bad.parse::<Rd>().unwrap_err().contains("IPV4:N"), "{bad}");
        }
        for bad in ["65000", "0:1", "4200000000:70000", "a:b"] {
            assert!(bad.parse::<Rt>().unwrap_err().contains("ASN:N"), "{bad}");
        }
    }

    #[test]
    fn mobility_higher_sequence_then_lower_address_wins() {
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let b: IpAddr = "198.18.0.2".parse().unwrap();
        assert!(wins(2, b, 1, a));
        assert!(!wins(1, a, 2, b));
        assert!(wins(3, a, 3, b));
        assert!(!wins(3, b, 3, a));
        assert!(!wins(3, a, 3, a));
    }
}
