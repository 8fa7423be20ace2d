//! Checked views of IGMP (v1, v2, v3) inside IPv4 and MLD (v1, v2) inside
//! IPv6, as a multicast-snooping switch reads them.
//!
//! [`parse`] takes what follows the Ethernet header (and its outer tag) of
//! a frame sent to a multicast MAC and says what the snooping code needs:
//! not IP at all, IP data (with its source and group), or an IGMP/MLD
//! message. Its checks are the kernel's (`ip_mc_check_igmp` in
//! net/ipv4/igmp.c, `ipv6_mc_check_mld` in net/ipv6/mcast_snoop.c), so a
//! frame the Linux bridge drops as malformed is an [`McastError`] here, and
//! one it treats as plain data is [`Snooped::Data`]:
//! - IPv4: version 4, header length at least 20 and inside the frame, a
//!   valid header checksum, a total length inside the frame; protocol 2 is
//!   IGMP, whose checksum covers the IGMP bytes (up to the IP total
//!   length), at least 8 of them. A query is 8 bytes (v1/v2) or at least 12
//!   (v3); a general query must go to 224.0.0.1. IGMP types the bridge does
//!   not know are data.
//! - IPv6: version 6, a payload length inside the frame and not zero. Only a
//!   packet whose first next-header is hop-by-hop is looked at further; its
//!   extension headers are walked (a truncated one is an error) to ICMPv6,
//!   whose checksum covers the IPv6 pseudo-header. Fewer than 24 ICMPv6
//!   bytes or a type other than MLD is data. A query needs a link-local
//!   source, is 24 bytes (v1) or at least 28 (v2), and a general one must go
//!   to ff02::1.
//!
//! Never panics: every length is checked before it is read. Group records
//! of IGMPv3 and MLDv2 reports are read lazily by [`Records`]; a record that
//! does not fit is an error at that record (the kernel acts on the records
//! before it and then drops the frame).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::EtherType;

/// Why an IGMP/MLD message (or the IP header around it) is refused. Each
/// is a metrics label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum McastError {
    /// IPv4 header too short, wrong version or length outside the frame.
    #[error("bad IPv4 header")]
    Ipv4Header,
    /// IPv4 header checksum wrong.
    #[error("bad IPv4 header checksum")]
    Ipv4Checksum,
    /// IPv6 header too short, wrong version or payload length outside the
    /// frame.
    #[error("bad IPv6 header")]
    Ipv6Header,
    /// An IPv6 extension header that does not fit.
    #[error("truncated IPv6 extension header")]
    Ipv6ExtHeader,
    /// Shorter than its fixed header.
    #[error("truncated IGMP/MLD message")]
    Truncated,
    /// IGMP or ICMPv6 checksum wrong.
    #[error("bad IGMP/MLD checksum")]
    Checksum,
    /// A query the kernel refuses (a general query not sent to all hosts,
    /// an MLD query from a source that is not link-local).
    #[error("malformed query")]
    BadQuery,
    /// A group record of an IGMPv3/MLDv2 report that does not fit.
    #[error("truncated group record")]
    BadRecord,
}

impl McastError {
    pub const ALL: [McastError; 8] = [
        McastError::Ipv4Header,
        McastError::Ipv4Checksum,
        McastError::Ipv6Header,
        McastError::Ipv6ExtHeader,
        McastError::Truncated,
        McastError::Checksum,
        McastError::BadQuery,
        McastError::BadRecord,
    ];

    /// Metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            McastError::Ipv4Header => "ipv4_header",
            McastError::Ipv4Checksum => "ipv4_checksum",
            McastError::Ipv6Header => "ipv6_header",
            McastError::Ipv6ExtHeader => "ipv6_ext_header",
            McastError::Truncated => "truncated",
            McastError::Checksum => "checksum",
            McastError::BadQuery => "bad_query",
            McastError::BadRecord => "bad_record",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// IGMP and MLD message types.
pub mod kind {
    pub const IGMP_QUERY: u8 = 0x11;
    pub const IGMP_V1_REPORT: u8 = 0x12;
    pub const IGMP_V2_REPORT: u8 = 0x16;
    pub const IGMP_V2_LEAVE: u8 = 0x17;
    pub const IGMP_V3_REPORT: u8 = 0x22;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_V1_REPORT: u8 = 131;
    pub const MLD_V1_DONE: u8 = 132;
    pub const MLD_V2_REPORT: u8 = 143;
}

/// Group record types of IGMPv3 and MLDv2 (RFC 3376 4.2.12, RFC 3810 5.2.12).
pub mod record {
    pub const MODE_IS_INCLUDE: u8 = 1;
    pub const MODE_IS_EXCLUDE: u8 = 2;
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
    pub const ALLOW_NEW_SOURCES: u8 = 5;
    pub const BLOCK_OLD_SOURCES: u8 = 6;
}

const IPPROTO_IGMP: u8 = 2;
const IPPROTO_PIM: u8 = 103;
const IPPROTO_ICMPV6: u8 = 58;
const IGMP_MRDISC_ADV: u8 = 0x30;
const ICMPV6_MRDISC_ADV: u8 = 151;

/// IGMP or MLD, and which version of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    IgmpV1,
    IgmpV2,
    IgmpV3,
    MldV1,
    MldV2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::IgmpV1 => "igmpv1",
            Version::IgmpV2 => "igmpv2",
            Version::IgmpV3 => "igmpv3",
            Version::MldV1 => "mldv1",
            Version::MldV2 => "mldv2",
        }
    }
}

/// A membership query, as the bridge reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub version: Version,
    /// The group asked about; unspecified for a general query.
    pub group: IpAddr,
    /// Maximum response time in milliseconds, decoded.
    pub max_resp_ms: u64,
    /// Sources listed (v3/v2 queries): a group-and-source query.
    pub nsrcs: u16,
    /// The "suppress router-side processing" flag (v3/v2 queries).
    pub suppress: bool,
}

/// One group record of an IGMPv3 or MLDv2 report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecord {
    /// Record type ([`record`]); other values are kept.
    pub kind: u8,
    pub group: IpAddr,
    pub nsrcs: u16,
}

/// The group records of an IGMPv3 or MLDv2 report, read one at a time.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    /// The message from its first record to its end.
    bytes: &'a [u8],
    count: u16,
    v6: bool,
}

impl<'a> Records<'a> {
    /// How many records the report says it holds.
    pub fn count(&self) -> u16 {
        self.count
    }
}

impl<'a> IntoIterator for Records<'a> {
    type Item = Result<GroupRecord, McastError>;
    type IntoIter = RecordIter<'a>;
    fn into_iter(self) -> RecordIter<'a> {
        RecordIter {
            rest: self.bytes,
            left: self.count,
            v6: self.v6,
        }
    }
}

/// Iterator over [`Records`]: stops after the first error.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    left: u16,
    v6: bool,
}

impl Iterator for RecordIter<'_> {
    type Item = Result<GroupRecord, McastError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // IGMPv3: type, aux len, nsrcs(2), group(4), sources 4 each. The
        // kernel ignores the aux data length; so do we.
        // MLDv2: type, aux len, nsrcs(2), group(16), sources 16 each.
        let (head, addr_len) = if self.v6 { (20, 16) } else { (8, 4) };
        let r = self.rest;
        if r.len() < head {
            self.left = 0;
            return Some(Err(McastError::BadRecord));
        }
        let nsrcs = u16::from_be_bytes([r[2], r[3]]);
        let len = head + nsrcs as usize * addr_len;
        if r.len() < len {
            self.left = 0;
            return Some(Err(McastError::BadRecord));
        }
        let group = if self.v6 {
            IpAddr::V6(ipv6_at(r, 4))
        } else {
            IpAddr::V4(ipv4_at(r, 4))
        };
        self.rest = &r[len..];
        Some(Ok(GroupRecord {
            kind: r[0],
            group,
            nsrcs,
        }))
    }
}

/// An IGMP or MLD message the bridge acts on.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    Query(Query),
    /// IGMPv1/v2 report or MLDv1 report.
    Report {
        version: Version,
        group: IpAddr,
    },
    /// IGMPv2 leave or MLDv1 done.
    Leave {
        version: Version,
        group: IpAddr,
    },
    /// IGMPv3 or MLDv2 report.
    ReportV3 {
        version: Version,
        records: Records<'a>,
    },
}

impl Message<'_> {
    pub fn version(&self) -> Version {
        match self {
            Message::Query(q) => q.version,
            Message::Report { version, .. }
            | Message::Leave { version, .. }
            | Message::ReportV3 { version, .. } => *version,
        }
    }
}

/// What an IP multicast frame is to the snooping code.
#[derive(Debug, Clone, Copy)]
pub enum Snooped<'a> {
    /// Neither IPv4 nor IPv6.
    NotIp,
    /// IP that is not an IGMP/MLD message the bridge acts on.
    Data {
        src: IpAddr,
        dst: IpAddr,
        /// A PIM hello to 224.0.0.13, or a multicast router advertisement
        /// (IGMP type 0x30 to 224.0.0.106, ICMPv6 151 to ff02::6a): its
        /// sender is a multicast router.
        router_hint: bool,
    },
    /// An IGMP or MLD message.
    Message {
        src: IpAddr,
        dst: IpAddr,
        msg: Message<'a>,
    },
}

fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn ipv6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

pub use super::checksum::{fold, sum16};

/// The sum of the IPv6 pseudo-header for an upper-layer packet.
pub fn pseudo6(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, next: u8) -> u32 {
    let mut s = sum16(&src.octets(), 0);
    s = sum16(&dst.octets(), s);
    s = sum16(&len.to_be_bytes(), s);
    sum16(&[0, 0, 0, next], s)
}

/// Whether `a` is in 224.0.0.0/24 (never snooped, always flooded).
pub fn ipv4_local_multicast(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [224, 0, 0]
}

/// ff02::1, the one IPv6 group that always floods.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
const ALL_PIM_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 13);
const ALL_SNOOPERS4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 106);
const ALL_SNOOPERS6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x6a);

/// Reads what follows the Ethernet header (and outer tag) of a frame to a
/// multicast MAC whose EtherType is `ethertype`.
pub fn parse(ethertype: EtherType, payload: &[u8]) -> Result<Snooped<'_>, McastError> {
    match ethertype {
        EtherType::Ipv4 => parse_v4(payload),
        EtherType::Ipv6 => parse_v6(payload),
        _ => Ok(Snooped::NotIp),
    }
}

fn parse_v4(p: &[u8]) -> Result<Snooped<'_>, McastError> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Err(McastError::Ipv4Header);
    }
    let ihl = (p[0] & 0x0f) as usize * 4;
    if ihl < 20 || p.len() < ihl {
        return Err(McastError::Ipv4Header);
    }
    if fold(sum16(&p[..ihl], 0)) != 0 {
        return Err(McastError::Ipv4Checksum);
    }
    let total = u16::from_be_bytes([p[2], p[3]]) as usize;
    if p.len() < total || total < ihl {
        return Err(McastError::Ipv4Header);
    }
    let src = ipv4_at(p, 12);
    let dst = ipv4_at(p, 16);
    let proto = p[9];
    let t = &p[ihl..total];
    let data = |router_hint| {
        Ok(Snooped::Data {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            router_hint,
        })
    };
    if proto != IPPROTO_IGMP {
        // A PIM (v2) hello to all PIM routers marks a router port.
        let hello = proto == IPPROTO_PIM && dst == ALL_PIM_ROUTERS && t.len() >= 4 && t[0] == 0x20;
        return data(hello);
    }
    if t.len() < 8 {
        return Err(McastError::Truncated);
    }
    if fold(sum16(t, 0)) != 0 {
        return Err(McastError::Checksum);
    }
    let group = IpAddr::V4(ipv4_at(t, 4));
    let msg = match t[0] {
        kind::IGMP_V1_REPORT => Message::Report {
            version: Version::IgmpV1,
            group,
        },
        kind::IGMP_V2_REPORT => Message::Report {
            version: Version::IgmpV2,
            group,
        },
        kind::IGMP_V2_LEAVE => Message::Leave {
            version: Version::IgmpV2,
            group,
        },
        kind::IGMP_V3_REPORT => Message::ReportV3 {
            version: Version::IgmpV3,
            records: Records {
                bytes: &t[8..],
                count: u16::from_be_bytes([t[6], t[7]]),
                v6: false,
            },
        },
        kind::IGMP_QUERY => {
            let q = if t.len() == 8 {
                // v1 (code 0) or v2.
                Query {
                    version: if t[1] == 0 {
                        Version::IgmpV1
                    } else {
                        Version::IgmpV2
                    },
                    group,
                    max_resp_ms: t[1] as u64 * 100,
                    nsrcs: 0,
                    suppress: false,
                }
            } else if t.len() >= 12 {
                Query {
                    version: Version::IgmpV3,
                    group,
                    max_resp_ms: igmpv3_mrc(t[1]) * 100,
                    nsrcs: u16::from_be_bytes([t[10], t[11]]),
                    suppress: t[8] & 0x08 != 0,
                }
            } else {
                return Err(McastError::BadQuery);
            };
            if q.group == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && dst != ALL_HOSTS {
                return Err(McastError::BadQuery);
            }
            Message::Query(q)
        }
        other => {
            let mrd = other == IGMP_MRDISC_ADV && dst == ALL_SNOOPERS4;
            return data(mrd);
        }
    };
    Ok(Snooped::Message {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        msg,
    })
}

/// IGMPv3 max response code to tenths of a second (RFC 3376 4.1.1).
pub fn igmpv3_mrc(code: u8) -> u64 {
    if code < 128 {
        code as u64
    } else {
        let mant = (code & 0x0f) as u64;
        let exp = ((code >> 4) & 0x07) as u64;
        (mant | 0x10) << (exp + 3)
    }
}

/// MLDv2 max response code to milliseconds (RFC 3810 5.1.3).
pub fn mldv2_mrc(code: u16) -> u64 {
    if code < 32768 {
        code as u64
    } else {
        let mant = (code & 0x0fff) as u64;
        let exp = ((code >> 12) & 0x07) as u64;
        (mant | 0x1000) << (exp + 3)
    }
}

fn parse_v6(p: &[u8]) -> Result<Snooped<'_>, McastError> {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return Err(McastError::Ipv6Header);
    }
    let plen = u16::from_be_bytes([p[4], p[5]]) as usize;
    if plen == 0 || p.len() < 40 + plen {
        return Err(McastError::Ipv6Header);
    }
    let src = ipv6_at(p, 8);
    let dst = ipv6_at(p, 24);
    let data = |router_hint| {
        Ok(Snooped::Data {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            router_hint,
        })
    };
    let end = 40 + plen;
    if p[6] != 0 {
        // Not hop-by-hop first: not MLD.
        return data(false);
    }
    // Walk the extension headers (ipv6_skip_exthdr) within the payload.
    let mut next = p[6];
    let mut at = 40;
    loop {
        match next {
            // hop-by-hop, routing, destination options, fragment, AH
            0 | 43 | 60 | 44 | 51 => {}
            // no next header
            59 => return Err(McastError::Ipv6ExtHeader),
            _ => break,
        }
        if at + 2 > end {
            return Err(McastError::Ipv6ExtHeader);
        }
        let len = match next {
            44 => {
                if at + 4 > end {
                    return Err(McastError::Ipv6ExtHeader);
                }
                let off = u16::from_be_bytes([p[at + 2], p[at + 3]]);
                if off & !7 != 0 {
                    // A later fragment: stop here, not ICMPv6.
                    break;
                }
                8
            }
            51 => (p[at + 1] as usize + 2) * 4,
            _ => (p[at + 1] as usize + 1) * 8,
        };
        next = p[at];
        at += len;
    }
    if next != IPPROTO_ICMPV6 {
        return data(false);
    }
    if at + 8 > end {
        return Err(McastError::Truncated);
    }
    let t = &p[at..end];
    let sum = pseudo6(&src, &dst, t.len() as u32, IPPROTO_ICMPV6);
    if fold(sum16(t, sum)) != 0 {
        return Err(McastError::Checksum);
    }
    if t.len() < 24 {
        return data(false);
    }
    let group = IpAddr::V6(ipv6_at(t, 8));
    let msg = match t[0] {
        kind::MLD_V1_REPORT => Message::Report {
            version: Version::MldV1,
            group,
        },
        kind::MLD_V1_DONE => Message::Leave {
            version: Version::MldV1,
            group,
        },
        kind::MLD_V2_REPORT => Message::ReportV3 {
            version: Version::MldV2,
            records: Records {
                bytes: &t[8..],
                count: u16::from_be_bytes([t[6], t[7]]),
                v6: true,
            },
        },
        kind::MLD_QUERY => {
            // Link-local unicast source: fe80::/10.
            let s = src.segments()[0];
            if s & 0xffc0 != 0xfe80 {
                return Err(McastError::BadQuery);
            }
            let code = u16::from_be_bytes([t[4], t[5]]);
            let q = if t.len() == 24 {
                Query {
                    version: Version::MldV1,
                    group,
                    max_resp_ms: code as u64,
                    nsrcs: 0,
                    suppress: false,
                }
            } else if t.len() >= 28 {
                Query {
                    version: Version::MldV2,
                    group,
                    max_resp_ms: mldv2_mrc(code),
                    nsrcs: u16::from_be_bytes([t[26], t[27]]),
                    suppress: t[24] & 0x08 != 0,
                }
            } else {
                return Err(McastError::BadQuery);
            };
            if q.group == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && dst != ALL_NODES {
                return Err(McastError::BadQuery);
            }
            Message::Query(q)
        }
        other => return data(other == ICMPV6_MRDISC_ADV && dst == ALL_SNOOPERS6),
    };
    Ok(Snooped::Message {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        msg,
    })
}

/// Writes the IPv4 header checksum of `h` (the header, options included).
fn set_ipv4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let c = fold(sum16(h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The Ethernet MAC of an IPv4 group (01:00:5e + low 23 bits).
pub fn ipv4_group_mac(g: Ipv4Addr) -> [u8; 6] {
    let o = g.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// The Ethernet MAC of an IPv6 group (33:33 + low 32 bits).
pub fn ipv6_group_mac(g: Ipv6Addr) -> [u8; 6] {
    let o = g.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// What [`query_frame`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySpec {
    /// IGMPv2/v3 or MLDv1/v2 (an IGMPv1 query is written as v2).
    pub version: Version,
    /// Source MAC of the frame.
    pub src_mac: [u8; 6],
    /// Source IP address (an IPv4 source for IGMP, IPv6 for MLD; a
    /// mismatched one is written as unspecified).
    pub src: IpAddr,
    /// The group asked about; unspecified for a general query.
    pub group: IpAddr,
    pub max_resp_ms: u64,
    /// Querier's query interval in seconds (v3/v2 only: QQIC).
    pub qqi_secs: u64,
}

/// A whole Ethernet frame holding a membership query as the Linux bridge
/// writes one (br_ip4_multicast_alloc_query, br_ip6_multicast_alloc_query):
/// to 224.0.0.1 / ff02::1, TTL/hop limit 1, router alert, QRV 2.
pub fn query_frame(q: &QuerySpec) -> Vec<u8> {
    let mut f = Vec::with_capacity(96);
    match q.version {
        Version::IgmpV1 | Version::IgmpV2 | Version::IgmpV3 => {
            let v3 = q.version == Version::IgmpV3;
            let src = match q.src {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let group = match q.group {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let igmp_len = if v3 { 12 } else { 8 };
            f.extend_from_slice(&ipv4_group_mac(ALL_HOSTS));
            f.extend_from_slice(&q.src_mac);
            f.extend_from_slice(&[0x08, 0x00]);
            let ip = f.len();
            let total = (24 + igmp_len) as u16;
            f.extend_from_slice(&[0x46, 0xc0]);
            f.extend_from_slice(&total.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0x40, 0, 1, IPPROTO_IGMP, 0, 0]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&ALL_HOSTS.octets());
            f.extend_from_slice(&[0x94, 0x04, 0, 0]);
            set_ipv4_checksum(&mut f[ip..ip + 24]);
            let t = f.len();
            let tenths = q.max_resp_ms / 100;
            let code = if v3 {
                encode_float(tenths, 4, 3) as u8
            } else {
                tenths.min(255) as u8
            };
            f.extend_from_slice(&[kind::IGMP_QUERY, code, 0, 0]);
            f.extend_from_slice(&group.octets());
            if v3 {
                let qqic = encode_float(q.qqi_secs, 4, 3) as u8;
                f.extend_from_slice(&[2, qqic, 0, 0]);
            }
            let c = fold(sum16(&f[t..], 0));
            f[t + 2..t + 4].copy_from_slice(&c.to_be_bytes());
        }
        Version::MldV1 | Version::MldV2 => {
            let v2 = q.version == Version::MldV2;
            let src = match q.src {
                IpAddr::V6(a) => a,
                IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
            };
            let group = match q.group {
                IpAddr::V6(a) => a,
                IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
            };
            let mld_len: usize = if v2 { 28 } else { 24 };
            f.extend_from_slice(&ipv6_group_mac(ALL_NODES));
            f.extend_from_slice(&q.src_mac);
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&((8 + mld_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&ALL_NODES.octets());
            // Hop-by-hop: next ICMPv6, router alert (MLD), PadN.
            f.extend_from_slice(&[IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
            let t = f.len();
            let code = if v2 {
                encode_float(q.max_resp_ms, 12, 3) as u16
            } else {
                q.max_resp_ms.min(0xffff) as u16
            };
            f.extend_from_slice(&[kind::MLD_QUERY, 0, 0, 0]);
            f.extend_from_slice(&code.to_be_bytes());
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(&group.octets());
            if v2 {
                let qqic = encode_float(q.qqi_secs, 4, 3) as u8;
                f.extend_from_slice(&[2, qqic, 0, 0]);
            }
            let sum = pseudo6(&src, &ALL_NODES, mld_len as u32, IPPROTO_ICMPV6);
            let c = fold(sum16(&f[t..], sum));
            f[t + 2..t + 4].copy_from_slice(&c.to_be_bytes());
        }
    }
    f
}

/// Encodes `v` in the exponential form of IGMPv3/MLDv2 codes: values
/// below `2^(mant_bits + exp_bits)` as they are, larger ones as
/// 1|exp|mant (the value is `(mant | 1 << mant_bits) << (exp + 3)`),
/// rounded down; saturates at the largest code.
fn encode_float(v: u64, mant_bits: u32, exp_bits: u32) -> u64 {
    let linear = 1u64 << (mant_bits + exp_bits);
    if v < linear {
        return v;
    }
    let top = 1u64 << mant_bits;
    for exp in 0..(1u64 << exp_bits) {
        let m = v >> (exp + 3);
        if m < 2 * top {
            return linear | (exp << mant_bits) | (m - top);
        }
    }
    (linear << 1) - 1
}

/// A whole Ethernet frame carrying IGMP message `igmp` (its checksum is
/// filled in) from `src` to `dst`, with the router alert option, as
/// hosts send them. For tests and tools.
pub fn igmp_frame(src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, igmp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 24 + igmp.len());
    f.extend_from_slice(&ipv4_group_mac(dst));
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00, 0x46, 0xc0]);
    f.extend_from_slice(&((24 + igmp.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 1, IPPROTO_IGMP, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[0x94, 0x04, 0, 0]);
    set_ipv4_checksum(&mut f[14..38]);
    let t = f.len();
    f.extend_from_slice(igmp);
    if igmp.len() >= 4 {
        f[t + 2] = 0;
        f[t + 3] = 0;
        let c = fold(sum16(&f[t..], 0));
        f[t + 2..t + 4].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// A whole Ethernet frame carrying ICMPv6 message `icmp` (its checksum is
/// filled in) after a hop-by-hop router alert header, as MLD is sent. For
/// tests and tools.
pub fn mld_frame(src_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 48 + icmp.len());
    f.extend_from_slice(&ipv6_group_mac(dst));
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + icmp.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
    let t = f.len();
    f.extend_from_slice(icmp);
    if icmp.len() >= 4 {
        f[t + 2] = 0;
        f[t + 3] = 0;
        let sum = pseudo6(&src, &dst, icmp.len() as u32, IPPROTO_ICMPV6);
        let c = fold(sum16(&f[t..], sum));
        f[t + 2..t + 4].copy_from_slice(&c.to_be_bytes());
    }
    f
}

/// A UDP-less IP data frame to group `dst` (IPv4 protocol 17 / IPv6 next
/// header 17 with `len` zero bytes of payload). For tests and benchmarks.
pub fn data_frame(src_mac: [u8; 6], src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 40 + len);
    let mut payload = len;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&ipv4_group_mac(d));
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + len) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0, 1, 17, 0, 0]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
            set_ipv4_checksum(&mut f[14..34]);
        }
        (s, d) => {
            let s = match s {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let d = match d {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            f.extend_from_slice(&ipv6_group_mac(d));
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            payload = len.max(1);
            f.extend_from_slice(&(payload as u16).to_be_bytes());
            f.extend_from_slice(&[17, 1]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
    }
    f.resize(f.len() + payload, 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8], ra: bool) -> Vec<u8> {
        let ihl = if ra { 24 } else { 20 };
        let mut h = vec![0u8; ihl];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[2..4].copy_from_slice(&((ihl + payload.len()) as u16).to_be_bytes());
        h[8] = 1;
        h[9] = proto;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        if ra {
            h[20..24].copy_from_slice(&[0x94, 4, 0, 0]);
        }
        set_ipv4_checksum(&mut h);
        h.extend_from_slice(payload);
        h
    }

    fn igmp(mut m: Vec<u8>) -> Vec<u8> {
        let c = fold(sum16(&m, 0));
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn ipv6_mld(src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
        let sum = pseudo6(&src, &dst, icmp.len() as u32, 58);
        let c = fold(sum16(&icmp, sum));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((8 + icmp.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
        p.extend_from_slice(&icmp);
        p
    }

    const G: [u8; 4] = [239, 1, 1, 1];

    #[test]
    fn igmpv2_report_and_leave() {
        let m = igmp(vec![0x16, 0, 0, 0, 239, 1, 1, 1]);
        let p = ipv4(2, [198, 18, 0, 1], G, &m, true);
        let Snooped::Message { msg, .. } = parse(EtherType::Ipv4, &p).unwrap() else {
            panic!()
        };
        assert!(
            matches!(msg, Message::Report { version: Version::IgmpV2, group } if group == IpAddr::from(G))
        );
        let m = igmp(vec![0x17, 0, 0, 0, 239, 1, 1, 1]);
        let p = ipv4(2, [198, 18, 0, 1], [224, 0, 0, 2], &m, true);
        let Snooped::Message { msg, .. } = parse(EtherType::Ipv4, &p).unwrap() else {
            panic!()
        };
        assert!(matches!(msg, Message::Leave { .. }));
    }

    #[test]
    fn bad_checksums_are_errors() {
        let mut m = igmp(vec![0x16, 0, 0, 0, 239, 1, 1, 1]);
        m[7] ^= 1;
        let p = ipv4(2, [198, 18, 0, 1], G, &m, true);
        assert_eq!(
            parse(EtherType::Ipv4, &p).unwrap_err(),
            McastError::Checksum
        );
        let mut p = ipv4(17, [198, 18, 0, 1], G, &[0; 8], false);
        p[10] ^= 1;
        assert_eq!(
            parse(EtherType::Ipv4, &p).unwrap_err(),
            McastError::Ipv4Checksum
        );
    }

    #[test]
    fn igmp_queries() {
        let m = igmp(vec![0x11, 100, 0, 0, 0, 0, 0, 0]);
        let p = ipv4(2, [198, 18, 0, 9], [224, 0, 0, 1], &m, true);
        let Snooped::Message {
            msg: Message::Query(q),
            ..
        } = parse(EtherType::Ipv4, &p).unwrap()
        else {
            panic!()
        };
        assert_eq!((q.version, q.max_resp_ms), (Version::IgmpV2, 10_000));
        // A general query not to 224.0.0.1.
        let p = ipv4(2, [198, 18, 0, 9], G, &m, true);
        assert_eq!(
            parse(EtherType::Ipv4, &p).unwrap_err(),
            McastError::BadQuery
        );
        // v3, 12 bytes; 9 bytes is neither.
        let m = igmp(vec![0x11, 0x80, 0, 0, 239, 1, 1, 1, 0x0a, 125, 0, 0]);
        let p = ipv4(2, [198, 18, 0, 9], G, &m, true);
        let Snooped::Message {
            msg: Message::Query(q),
            ..
        } = parse(EtherType::Ipv4, &p).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.version, Version::IgmpV3);
        assert_eq!(q.max_resp_ms, 12_800);
        assert!(q.suppress);
        let m = igmp(vec![0x11, 10, 0, 0, 239, 1, 1, 1, 0, 0]);
        let p = ipv4(2, [198, 18, 0, 9], G, &m, true);
        assert_eq!(
            parse(EtherType::Ipv4, &p).unwrap_err(),
            McastError::BadQuery
        );
    }

    #[test]
    fn igmpv3_records_and_truncation() {
        let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 2];
        m.extend_from_slice(&[4, 0, 0, 0, 239, 1, 1, 1]);
        m.extend_from_slice(&[1, 0, 0, 1, 239, 1, 1, 2, 198, 18, 0, 5]);
        let p = ipv4(2, [198, 18, 0, 1], [224, 0, 0, 22], &igmp(m.clone()), true);
        let Snooped::Message {
            msg: Message::ReportV3 { records, .. },
            ..
        } = parse(EtherType::Ipv4, &p).unwrap()
        else {
            panic!()
        };
        let r: Vec<_> = records.into_iter().collect();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].unwrap().nsrcs, 1);
        // Absurd count: the third record does not fit.
        m[7] = 200;
        let p = ipv4(2, [198, 18, 0, 1], [224, 0, 0, 22], &igmp(m), true);
        let Snooped::Message {
            msg: Message::ReportV3 { records, .. },
            ..
        } = parse(EtherType::Ipv4, &p).unwrap()
        else {
            panic!()
        };
        let r: Vec<_> = records.into_iter().collect();
        assert_eq!(r.len(), 3);
        assert_eq!(r[2], Err(McastError::BadRecord));
    }

    #[test]
    fn data_and_pim() {
        let p = ipv4(17, [198, 18, 0, 1], G, &[0; 8], false);
        assert!(matches!(
            parse(EtherType::Ipv4, &p).unwrap(),
            Snooped::Data {
                router_hint: false,
                ..
            }
        ));
        let p = ipv4(
            103,
            [198, 18, 0, 1],
            [224, 0, 0, 13],
            &[0x20, 0, 0, 0],
            false,
        );
        assert!(matches!(
            parse(EtherType::Ipv4, &p).unwrap(),
            Snooped::Data {
                router_hint: true,
                ..
            }
        ));
        assert!(matches!(
            parse(EtherType::Arp, &[0; 28]).unwrap(),
            Snooped::NotIp
        ));
    }

    #[test]
    fn mld() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let g: Ipv6Addr = "ff05::1:3".parse().unwrap();
        let mut r = vec![131, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&g.octets());
        let p = ipv6_mld(ll, g, r.clone());
        let Snooped::Message { msg, .. } = parse(EtherType::Ipv6, &p).unwrap() else {
            panic!()
        };
        assert!(matches!(
            msg,
            Message::Report {
                version: Version::MldV1,
                ..
            }
        ));
        let mut bad = p.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            parse(EtherType::Ipv6, &bad).unwrap_err(),
            McastError::Checksum
        );
        // A query from a global source is refused.
        let mut q = vec![130, 0, 0, 0, 0x27, 0x10, 0, 0];
        q.extend_from_slice(&[0; 16]);
        let p = ipv6_mld("fd00::1".parse().unwrap(), ALL_NODES, q.clone());
        assert_eq!(
            parse(EtherType::Ipv6, &p).unwrap_err(),
            McastError::BadQuery
        );
        let p = ipv6_mld(ll, ALL_NODES, q);
        let Snooped::Message {
            msg: Message::Query(q),
            ..
        } = parse(EtherType::Ipv6, &p).unwrap()
        else {
            panic!()
        };
        assert_eq!((q.version, q.max_resp_ms), (Version::MldV1, 10_000));
        // MLDv2 report with one record.
        let mut r = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
        r.extend_from_slice(&g.octets());
        let p = ipv6_mld(ll, "ff02::16".parse().unwrap(), r);
        let Snooped::Message {
            msg: Message::ReportV3 { records, .. },
            ..
        } = parse(EtherType::Ipv6, &p).unwrap()
        else {
            panic!()
        };
        let r: Vec<_> = records.into_iter().collect();
        assert_eq!(
            r,
            vec![Ok(GroupRecord {
                kind: 4,
                group: IpAddr::V6(g),
                nsrcs: 0
            })]
        );
    }

    #[test]
    fn built_queries_parse_back() {
        for (version, src, group) in [
            (
                Version::IgmpV2,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ),
            (
                Version::IgmpV3,
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
            ),
            (
                Version::MldV1,
                IpAddr::V6("fe80::1".parse().unwrap()),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ),
            (
                Version::MldV2,
                IpAddr::V6("fe80::1".parse().unwrap()),
                IpAddr::V6("ff05::1".parse().unwrap()),
            ),
        ] {
            let f = query_frame(&QuerySpec {
                version,
                src_mac: [2, 0, 0, 0, 0, 1],
                src,
                group,
                max_resp_ms: 10_000,
                qqi_secs: 125,
            });
            let et = EtherType::from(u16::from_be_bytes([f[12], f[13]]));
            let Snooped::Message {
                msg: Message::Query(q),
                ..
            } = parse(et, &f[14..]).unwrap()
            else {
                panic!("{version:?}")
            };
            assert_eq!(q.version, version);
            assert_eq!(q.group, group);
            assert_eq!(q.max_resp_ms, 10_000, "{version:?}");
        }
    }

    #[test]
    fn float_codes_round_trip_within_precision() {
        for v in [0u64, 5, 127, 128, 200, 1000, 3000, 31744] {
            let c = encode_float(v, 4, 3) as u8;
            let back = igmpv3_mrc(c);
            assert!(
                back <= v && back + (back >> 4) + 8 >= v,
                "{v} -> {c} -> {back}"
            );
        }
        for v in [0u64, 32767, 32768, 40000, 1_000_000] {
            let c = encode_float(v, 12, 3) as u16;
            let back = mldv2_mrc(c);
            assert!(
                back <= v && back + (back >> 12) + 8 >= v,
                "{v} -> {c} -> {back}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(et in prop_oneof![Just(0x0800u16), Just(0x86dd), any::<u16>()],
                        bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Snooped::Message { msg: Message::ReportV3 { records, .. }, .. }) =
                parse(EtherType::from(et), &bytes)
            {
                for _ in records {}
            }
        }

        #[test]
        fn never_panics_on_mutated_messages(flip in 0usize..200, val in any::<u8>(), count in any::<u16>()) {
            let mut m = vec![0x22, 0, 0, 0, 0, 0, (count >> 8) as u8, count as u8];
            m.extend_from_slice(&[4, 0, 0, 0, 239, 1, 1, 1]);
            let mut p = ipv4(2, [198, 18, 0, 1], [224, 0, 0, 22], &igmp(m), true);
            let at = flip % p.len();
            p[at] = val;
            if let Ok(Snooped::Message { msg: Message::ReportV3 { records, .. }, .. }) =
                parse(EtherType::Ipv4, &p)
            {
                prop_assert!(records.into_iter().count() <= count as usize);
            }
        }
    }
}
