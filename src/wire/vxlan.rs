//! The 8-byte VXLAN header (RFC 7348 §5) and the inner-flow hash that picks
//! the outer UDP source port.
//!
//! ```text
//!  0               1               2               3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The I flag must be set; the reserved bits are written as zero and
//! ignored on receipt, as the RFC says (and as the kernel's vxlan does for
//! the bits it does not use). [`Header::new_checked`] validates the length
//! once; after it no accessor can panic.

use super::Mac;

mod field {
    use std::ops::Range;
    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
}

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid.
pub const FLAG_I: u8 = 0x08;
/// Largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// IANA's VXLAN port (iproute2 uses 8472 unless told `dstport 4789`).
pub const DEFAULT_PORT: u16 = 4789;
/// Bytes the encapsulation adds around the inner Ethernet frame over IPv4:
/// outer IPv4 (20) + UDP (8) + VXLAN (8), plus the inner Ethernet header
/// (14) that the inner MTU does not count. Inner MTU = underlay MTU - 50.
pub const OVERHEAD_V4: usize = 50;
/// The same over IPv6 (a 40-byte outer header): underlay MTU - 70.
pub const OVERHEAD_V6: usize = 70;

/// Why a datagram does not carry a frame for us. [`as_str`](Self::as_str)
/// is the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VxlanError {
    /// Shorter than the VXLAN header plus an Ethernet header.
    #[error("datagram shorter than the VXLAN and Ethernet headers")]
    Truncated,
    /// The I flag is clear: no valid VNI.
    #[error("VXLAN I flag clear")]
    NoIFlag,
    /// A VNI other than the port's.
    #[error("VXLAN VNI is not the port's")]
    WrongVni,
}

impl VxlanError {
    pub const ALL: [VxlanError; 3] = [
        VxlanError::Truncated,
        VxlanError::NoIFlag,
        VxlanError::WrongVni,
    ];

    /// The label for metrics and `vswitchctl show`.
    pub fn as_str(self) -> &'static str {
        match self {
            VxlanError::Truncated => "truncated",
            VxlanError::NoIFlag => "no_i_flag",
            VxlanError::WrongVni => "wrong_vni",
        }
    }
}

/// A checked view of a VXLAN header at the start of `buffer`.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks that `buffer` holds at least the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Header<T>, VxlanError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(VxlanError::Truncated);
        }
        Ok(Header { buffer })
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag is set.
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VNI (whatever the I flag says).
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The bytes after the header: the inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// Checks a received datagram for port `vni`: I flag set, that VNI, and
/// room for an inner Ethernet header. Reserved bits are ignored. Returns
/// the inner frame.
pub fn check(datagram: &[u8], vni: u32) -> Result<&[u8], VxlanError> {
    let h = Header::new_checked(datagram)?;
    if !h.has_vni() {
        return Err(VxlanError::NoIFlag);
    }
    if h.vni() != vni {
        return Err(VxlanError::WrongVni);
    }
    let inner = &datagram[HEADER_LEN..];
    if inner.len() < super::ethernet::HEADER_LEN {
        return Err(VxlanError::Truncated);
    }
    Ok(inner)
}

/// The header to send for `vni`: the I flag and the VNI, every reserved
/// bit zero. A VNI above 24 bits is cut to its low 24 (config checks it).
pub fn header(vni: u32) -> [u8; HEADER_LEN] {
    let v = (vni & MAX_VNI).to_be_bytes();
    [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// A hash of the inner flow for the outer UDP source port: both MACs and
/// the EtherType, then for IPv4/IPv6 (behind at most one tag) both
/// addresses and the protocol, and for TCP/UDP/SCTP (unfragmented) both
/// ports. Frames of one flow hash alike, so they keep one path and their
/// order; different flows spread over ECMP paths. Never panics.
pub fn flow_hash(frame: &[u8]) -> u32 {
    // FNV-1a: stable across runs and hosts, cheap on these few bytes.
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= u32::from(*x);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    let Some(l2) = frame.get(..12) else {
        eat(frame);
        return h;
    };
    eat(l2);
    let mut at = 12;
    let mut ety = match frame.get(at..at + 2) {
        Some(e) => u16::from_be_bytes([e[0], e[1]]),
        None => return h,
    };
    if ety == 0x8100 || ety == 0x88a8 {
        at += 4;
        ety = match frame.get(at..at + 2) {
            Some(e) => u16::from_be_bytes([e[0], e[1]]),
            None => return h,
        };
    }
    eat(&ety.to_be_bytes());
    let l3 = at + 2;
    let (proto, l4) = match ety {
        0x0800 => {
            let Some(ip) = frame.get(l3..l3 + 20) else {
                return h;
            };
            eat(&ip[12..20]);
            eat(&ip[9..10]);
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if frag {
                return h;
            }
            (ip[9], l3 + usize::from(ip[0] & 0x0f) * 4)
        }
        0x86dd => {
            let Some(ip) = frame.get(l3..l3 + 40) else {
                return h;
            };
            eat(&ip[8..40]);
            eat(&ip[6..7]);
            (ip[6], l3 + 40)
        }
        _ => return h,
    };
    if matches!(proto, 6 | 17 | 132)
        && let Some(ports) = frame.get(l4..l4 + 4)
    {
        eat(ports);
    }
    // Mix the low bits (FNV's are weak for a modulo).
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h
}

/// The kernel's mapping of a flow hash to a source port in `[min, max]`
/// (`udp_flow_src_port`: `(hash * (max - min)) >> 32) + min`).
pub fn source_port(hash: u32, min: u16, max: u16) -> u16 {
    let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
    let span = u64::from(hi - lo);
    lo + ((u64::from(hash) * span) >> 32) as u16
}

/// The transport header of an inner frame, as [`partial_checksum`] and
/// [`oversize_tcp`] read it: IPv4 (unfragmented) or IPv6 without
/// extension headers, behind at most one tag.
struct Transport {
    /// Where the IP header starts.
    l3: usize,
    v6: bool,
    /// IP protocol / next header.
    proto: u8,
    /// Where the transport header starts, and the transport length.
    l4: usize,
    len: usize,
    /// The pseudo-header sum (folded, not inverted).
    pseudo: u16,
}

fn transport(frame: &[u8]) -> Option<Transport> {
    use super::vnet::checksum;
    let mut at = 12;
    let mut ety = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    if ety == 0x8100 || ety == 0x88a8 {
        at += 4;
        ety = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    }
    let l3 = at + 2;
    match ety {
        0x0800 => {
            let ip = frame.get(l3..l3 + 20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || frag {
                return None;
            }
            let len = total - ihl;
            let mut p = [0u8; 12];
            p[..8].copy_from_slice(&ip[12..20]);
            p[9] = ip[9];
            p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
            Some(Transport {
                l3,
                v6: false,
                proto: ip[9],
                l4: l3 + ihl,
                len,
                pseudo: checksum(0, &p),
            })
        }
        0x86dd => {
            let ip = frame.get(l3..l3 + 40)?;
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let mut p = [0u8; 40];
            p[..32].copy_from_slice(&ip[8..40]);
            p[34..36].copy_from_slice(&(len as u16).to_be_bytes());
            p[39] = ip[6];
            Some(Transport {
                l3,
                v6: true,
                proto: ip[6],
                l4: l3 + 40,
                len,
                pseudo: checksum(0, &p),
            })
        }
        _ => None,
    }
}

/// Where a received inner frame's TCP/UDP checksum is still to be done:
/// `(csum_start, csum_offset)` if the checksum field holds exactly the
/// pseudo-header sum, as a Linux sender leaves it for offload
/// (CHECKSUM_PARTIAL). A kernel VTEP on the same host (over a veth)
/// sends such frames as they are: no NIC ever finished them. The port
/// then hands the frame on with NEEDS_CSUM, as a TAP's own partial frames
/// go, so the checksum is finished where the frame leaves. A complete or
/// a wrong checksum is left alone (the receiver judges it). IPv4
/// (unfragmented) and IPv6 without extension headers, behind at most one
/// tag. Never panics.
pub fn partial_checksum(frame: &[u8]) -> Option<(u16, u16)> {
    let Transport {
        proto,
        l4,
        len: l4_len,
        pseudo,
        ..
    } = transport(frame)?;
    let off: usize = match proto {
        6 => 16,
        17 => 6,
        _ => return None,
    };
    if l4_len < off + 2 || frame.len() < l4 + l4_len {
        return None;
    }
    let field = u16::from_be_bytes([frame[l4 + off], frame[l4 + off + 1]]);
    // UDP over IPv4 may send no checksum at all (0).
    if proto == 17 && field == 0 {
        return None;
    }
    (field == !pseudo).then_some((l4 as u16, off as u16))
}

/// A received inner TCP frame larger than the port's MTU (`mtu`, L3): a
/// kernel VTEP on this host hands its UDP socket a GSO packet whole (or
/// the underlay reassembled fragments). Rather than drop it, make it a
/// GSO frame again: the returned virtio-net header cuts it into segments
/// of at most `mtu` (MSS = `mtu` less the IP and TCP headers), and the
/// TCP checksum field is set to the pseudo-header sum, as NEEDS_CSUM
/// expects, so each segment's checksum is computed where it leaves. None
/// for anything else (not TCP, a fragment, IPv6 with extension headers,
/// or within the MTU). Never panics.
pub fn oversize_tcp(frame: &mut [u8], mtu: usize) -> Option<super::vnet::VnetHdr> {
    use super::vnet::{F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, VnetHdr};
    let Transport {
        l3,
        v6,
        proto,
        l4,
        len: l4_len,
        pseudo,
    } = transport(frame)?;
    if proto != 6 {
        return None;
    }
    let gso_type = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    let tcp = frame.get(l4..l4 + 20)?;
    let thl = usize::from(tcp[12] >> 4) * 4;
    let ip_len = l4 - l3 + l4_len;
    if thl < 20 || l4_len < thl || frame.len() < l4 + l4_len || ip_len <= mtu {
        return None;
    }
    let mss = mtu.checked_sub(l4 - l3 + thl).filter(|m| *m > 0)?;
    frame[l4 + 16..l4 + 18].copy_from_slice(&(!pseudo).to_be_bytes());
    Some(VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: (l4 + thl) as u16,
        gso_size: mss as u16,
        csum_start: l4 as u16,
        csum_offset: 16,
    })
}

/// A batch of datagrams the kernel's UDP GRO joined (socket option
/// `UDP_GRO`): `batch` holds them back to back, each `size` bytes but the
/// last, each a VXLAN header and an inner frame. When they are the
/// segments of one TCP stream in order, as a sending VTEP's segmentation
/// of one GSO frame gives them (same headers but for the lengths, IP ID,
/// sequence number and checksums; each sequence number following the
/// last; equal payloads but the last; every IP and TCP checksum valid; no
/// SYN, FIN, RST or URG; PSH on the last only), joins them in place into
/// one inner frame at `batch[HEADER_LEN..HEADER_LEN + len]` and returns
/// `len` with the virtio-net header that cuts it into the same segments
/// again (as [`oversize_tcp`] does). None, with `batch` untouched, for
/// anything else: the caller hands the datagrams on one by one. Never
/// panics.
pub fn coalesce_tcp(
    batch: &mut [u8],
    size: usize,
    vni: u32,
) -> Option<(usize, super::vnet::VnetHdr)> {
    use super::checksum::{fold, sum16};
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const URG: u8 = 0x20;
    const CWR: u8 = 0x80;
    if size <= HEADER_LEN || batch.len() <= size {
        return None;
    }
    let n = batch.len().div_ceil(size);
    let first = check(&batch[..size], vni).ok()?;
    let t = transport(first)?;
    let thl = usize::from(*first.get(t.l4 + 12)? >> 4) * 4;
    let hdrs = t.l4 + thl;
    if t.proto != 6 || thl < 20 || t.len < thl || first.len() != t.l4 + t.len {
        return None;
    }
    let mss = t.len - thl;
    let flags0 = first[t.l4 + 13];
    if mss == 0 || flags0 & (FIN | SYN | RST | URG | PSH) != 0 {
        return None;
    }
    // Header bytes every segment must share: the Ethernet header and tag,
    // the IP header but its length, ID and checksum, the TCP header but
    // its sequence number, flags and checksum.
    let ip_same = if t.v6 {
        [0..t.l3 + 4, t.l3 + 6..t.l4, 0..0]
    } else {
        [0..t.l3 + 2, t.l3 + 6..t.l3 + 10, t.l3 + 12..t.l4]
    };
    let tcp_same = [
        t.l4..t.l4 + 4,
        t.l4 + 8..t.l4 + 13,
        t.l4 + 14..t.l4 + 16,
        t.l4 + 18..hdrs,
    ];
    let same = || ip_same.iter().chain(tcp_same.iter()).cloned();
    let seq = |f: &[u8]| u32::from_be_bytes([f[t.l4 + 4], f[t.l4 + 5], f[t.l4 + 6], f[t.l4 + 7]]);
    let mut next_seq = seq(first);
    let mut total = 0usize;
    let mut last_flags = flags0;
    for i in 0..n {
        let d = &batch[i * size..((i + 1) * size).min(batch.len())];
        let f = check(d, vni).ok()?;
        let ti = transport(f)?;
        if f.len() < hdrs || ti.l4 != t.l4 || f.len() != ti.l4 + ti.len || ti.len <= thl {
            return None;
        }
        if same().any(|r| f[r.clone()] != first[r]) || seq(f) != next_seq {
            return None;
        }
        let payload = ti.len - thl;
        let last = i + 1 == n;
        let flags = f[t.l4 + 13];
        let allowed = if last { PSH } else { 0 } | if i == 0 { CWR } else { 0 };
        if payload > mss || (!last && payload != mss) || (flags & !allowed) != (flags0 & !CWR) {
            return None;
        }
        if !t.v6 && fold(sum16(&f[t.l3..t.l4], 0)) != 0 {
            return None;
        }
        if fold(sum16(&f[ti.l4..], u32::from(!ti.pseudo))) != 0 {
            return None;
        }
        next_seq = next_seq.wrapping_add(payload as u32);
        total += payload;
        last_flags = flags;
    }
    let ip_len = hdrs - t.l3 + total;
    if ip_len > 65535 {
        return None;
    }
    // Valid: join. Each payload moves left (never over one not yet moved).
    let mut at = HEADER_LEN + hdrs + mss;
    for i in 1..n {
        let start = i * size + HEADER_LEN + hdrs;
        let end = ((i + 1) * size).min(batch.len());
        batch.copy_within(start..end, at);
        at += end - start;
    }
    let len = at - HEADER_LEN;
    let f = &mut batch[HEADER_LEN..HEADER_LEN + len];
    if t.v6 {
        f[t.l3 + 4..t.l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
    } else {
        f[t.l3 + 2..t.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        f[t.l3 + 10..t.l3 + 12].copy_from_slice(&[0, 0]);
        let c = fold(sum16(&f[t.l3..t.l4], 0));
        f[t.l3 + 10..t.l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    f[t.l4 + 13] = flags0 | (last_flags & PSH);
    // Segments of `mss` again: the port MTU that gives that MSS.
    // (Cannot refuse: the frame is TCP and longer than that.)
    let hdr = oversize_tcp(f, t.l4 - t.l3 + thl + mss)?;
    Some((len, hdr))
}

/// The inner destination MAC of a frame, if it has one.
pub fn inner_dst(frame: &[u8]) -> Option<Mac> {
    frame
        .get(..6)
        .map(|b| Mac([b[0], b[1], b[2], b[3], b[4], b[5]]))
}

/// The inner source MAC of a frame, if it has one.
pub fn inner_src(frame: &[u8]) -> Option<Mac> {
    frame
        .get(6..12)
        .map(|b| Mac([b[0], b[1], b[2], b[3], b[4], b[5]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
    ];

    fn datagram(hdr: [u8; 8]) -> Vec<u8> {
        let mut d = hdr.to_vec();
        d.extend_from_slice(&FRAME);
        d
    }

    #[test]
    fn builds_the_rfc_header() {
        assert_eq!(header(100), [0x08, 0, 0, 0, 0, 0, 100, 0]);
        assert_eq!(header(MAX_VNI), [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
        let bytes = header(0x123456);
        let h = Header::new_checked(&bytes[..]).unwrap();
        assert!(h.has_vni());
        assert_eq!(h.vni(), 0x123456);
        assert!(h.payload().is_empty());
    }

    #[test]
    fn checks_a_received_datagram() {
        let ok = datagram(header(100));
        assert_eq!(check(&ok, 100), Ok(&FRAME[..]));
        assert_eq!(check(&ok, 101), Err(VxlanError::WrongVni));
        assert_eq!(
            check(&datagram([0, 0, 0, 0, 0, 0, 100, 0]), 100),
            Err(VxlanError::NoIFlag)
        );
        // Reserved bits set by a sender are ignored.
        let noisy = datagram([0xff, 0xff, 0xff, 0xff, 0, 0, 100, 0xff]);
        assert_eq!(check(&noisy, 100), Ok(&FRAME[..]));
        assert_eq!(check(&ok[..7], 100), Err(VxlanError::Truncated));
        assert_eq!(check(&ok[..21], 100), Err(VxlanError::Truncated));
        assert_eq!(check(&[], 100), Err(VxlanError::Truncated));
    }

    #[test]
    fn labels_are_distinct() {
        let mut l: Vec<_> = VxlanError::ALL.iter().map(|e| e.as_str()).collect();
        l.sort();
        l.dedup();
        assert_eq!(l.len(), VxlanError::ALL.len());
    }

    fn tcp4(sport: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[198, 19, 7, 1]);
        ip[16..20].copy_from_slice(&[198, 19, 7, 2]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&5201u16.to_be_bytes());
        f.extend_from_slice(&[0; 16]);
        f
    }

    #[test]
    fn flows_hash_apart_and_a_flow_hashes_alike() {
        let a = flow_hash(&tcp4(40000));
        let mut payload_changed = tcp4(40000);
        *payload_changed.last_mut().unwrap() = 9;
        assert_eq!(a, flow_hash(&payload_changed));
        let ports: std::collections::HashSet<u16> = (0..64)
            .map(|i| source_port(flow_hash(&tcp4(40000 + i)), 32768, 60999))
            .collect();
        assert!(ports.len() > 32, "{} distinct ports", ports.len());
        assert!(ports.iter().all(|p| (32768..=60999).contains(p)));
    }

    #[test]
    fn finds_a_partial_checksum_and_leaves_a_full_one() {
        use crate::wire::vnet::{F_NEEDS_CSUM, VnetHdr, finish_checksum};
        let mut f = tcp4(40000);
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        // The pseudo-header sum, as Linux leaves it for offload.
        let mut p = [0u8; 12];
        p[..8].copy_from_slice(&f[26..34]);
        p[9] = 6;
        p[10..12].copy_from_slice(&(total - 20).to_be_bytes());
        let pseudo = !crate::wire::vnet::checksum(0, &p);
        f[50..52].copy_from_slice(&pseudo.to_be_bytes());
        assert_eq!(partial_checksum(&f), Some((34, 16)));
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        finish_checksum(&h, &mut f).unwrap();
        assert_eq!(
            partial_checksum(&f),
            None,
            "a finished checksum is left alone"
        );
        assert_eq!(partial_checksum(&f[..40]), None);
    }

    #[test]
    fn an_oversize_tcp_frame_becomes_gso_and_segments() {
        use crate::wire::vnet::segment;
        let mut f = tcp4(40000);
        f.truncate(54);
        f.extend(std::iter::repeat_n(0x5a, 4000));
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[46] = 0x50; // data offset 5
        let h = oversize_tcp(&mut f, 1450).unwrap();
        assert_eq!((h.gso_size, h.hdr_len, h.csum_start), (1410, 54, 34));
        let mut segs = Vec::new();
        let mut scratch = Vec::new();
        segment(&h, &f, &mut scratch, |s| segs.push(s.len())).unwrap();
        assert_eq!(segs, vec![1464, 1464, 1234]);
        let mut small = tcp4(1);
        assert!(oversize_tcp(&mut small, 1450).is_none());
    }

    /// A TCP GSO frame (IPv4, or IPv6 with `v6`) with `payload` bytes of
    /// payload and its virtio-net header cutting it at `mss`.
    fn gso_frame(v6: bool, payload: usize, mss: u16) -> (Vec<u8>, crate::wire::vnet::VnetHdr) {
        use crate::wire::vnet::{F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, VnetHdr};
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        let l4 = if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
            f.extend_from_slice(&[6, 64]);
            f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            54
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((40 + payload) as u16).to_be_bytes());
            f.extend_from_slice(&[
                0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
            ]);
            34
        };
        f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]); // ports
        f.extend_from_slice(&0xfffff000u32.to_be_bytes()); // seq (wraps)
        f.extend_from_slice(&77u32.to_be_bytes()); // ack
        f.extend_from_slice(&[0x50, 0x18, 0x01, 0xf6, 0, 0, 0, 0]); // ACK|PSH
        f.extend((0..payload).map(|i| (i * 31 % 251) as u8));
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: (l4 + 20) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        (f, h)
    }

    /// What a sending VTEP puts on the wire for a GSO frame: its segments
    /// behind VXLAN headers, back to back, and the size of each.
    fn gro_batch(frame: &[u8], h: &crate::wire::vnet::VnetHdr, vni: u32) -> (Vec<u8>, usize) {
        let mut b = Vec::new();
        let mut size = 0;
        crate::wire::vnet::segment_into(h, frame, &mut b, &header(vni), |out, at| {
            if size == 0 {
                size = out.len() - at + HEADER_LEN;
            }
        })
        .unwrap();
        (b, size)
    }

    fn segments_of(frame: &[u8], h: &crate::wire::vnet::VnetHdr) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        crate::wire::vnet::segment(h, frame, &mut Vec::new(), |s| v.push(s.to_vec())).unwrap();
        v
    }

    #[test]
    fn a_gro_batch_of_one_streams_segments_joins_into_the_gso_frame() {
        for v6 in [false, true] {
            for payload in [2 * 1398, 20_000, 46 * 1398 + 17] {
                let (f, h) = gso_frame(v6, payload, 1398);
                let (mut batch, size) = gro_batch(&f, &h, 100);
                let (len, h2) = coalesce_tcp(&mut batch, size, 100).expect("joined");
                let joined = batch[HEADER_LEN..HEADER_LEN + len].to_vec();
                assert_eq!(len, f.len(), "v6 {v6} payload {payload}");
                assert_eq!(h2.gso_size, 1398);
                assert_eq!(h2.gso_type, h.gso_type);
                assert_eq!(
                    &joined[usize::from(h.hdr_len)..],
                    &f[usize::from(h.hdr_len)..]
                );
                // Cut again, it gives exactly the segments that were sent.
                assert_eq!(
                    segments_of(&joined, &h2),
                    segments_of(&f, &h),
                    "v6 {v6} payload {payload}"
                );
            }
        }
    }

    /// The fuzz corpus holds one batch that joins, so the fuzzer starts
    /// inside `coalesce_tcp`'s joining path (checked here so it stays so).
    #[test]
    fn the_fuzz_seed_batch_joins() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/vxlan/gro-batch-2-tcp-segments"
        );
        let data = std::fs::read(path).unwrap();
        let mut batch = data[3..].to_vec();
        let size = batch.len() / 2 + 1;
        let (len, h) = coalesce_tcp(&mut batch, size, 100).expect("the seed joins");
        assert_eq!((len, h.gso_size), (54 + 198, 100));
    }

    #[test]
    fn anything_but_one_streams_valid_segments_is_left_alone() {
        let (f, h) = gso_frame(false, 5 * 1398, 1398);
        let (batch, size) = gro_batch(&f, &h, 100);
        let refused = |b: &mut Vec<u8>, size: usize, what: &str| {
            let before = b.clone();
            assert_eq!(coalesce_tcp(b, size, 100), None, "{what}");
            assert_eq!(*b, before, "{what}: the batch must be left untouched");
        };
        // A corrupt payload byte in the third segment: its checksum fails.
        let mut b = batch.clone();
        b[2 * size + 100] ^= 1;
        refused(&mut b, size, "bad checksum");
        // Another VNI in the second datagram.
        let mut b = batch.clone();
        b[size + 6] ^= 1;
        refused(&mut b, size, "wrong vni");
        // A segment missing: the sequence numbers do not follow.
        let mut b = batch[..size].to_vec();
        b.extend_from_slice(&batch[2 * size..]);
        refused(&mut b, size, "gap");
        // Two flows: the second datagram from another port (checksum fixed).
        let mut b = batch.clone();
        let tcp = size + HEADER_LEN + 34;
        b[tcp] ^= 1;
        b[tcp + 16] ^= 1;
        refused(&mut b, size, "other flow");
        // A datagram alone, or a size that cuts no batch.
        let mut b = batch[..size].to_vec();
        refused(&mut b, size, "one datagram");
        let mut b = batch.clone();
        refused(&mut b, 4, "tiny size");
        // Not TCP: the same bytes with UDP as the protocol.
        let mut b = batch.clone();
        for i in 0..b.len().div_ceil(size) {
            b[i * size + HEADER_LEN + 23] = 17;
        }
        refused(&mut b, size, "udp");
        // A SYN: never joined.
        let (mut f2, h2) = gso_frame(false, 3 * 1398, 1398);
        f2[47] = 0x02;
        let (mut b, size2) = gro_batch(&f2, &h2, 100);
        refused(&mut b, size2, "syn");
    }

    proptest! {
        #[test]
        fn never_panics(d in proptest::collection::vec(any::<u8>(), 0..80), vni in 0u32..=MAX_VNI) {
            let _ = check(&d, vni);
            let _ = flow_hash(&d);
            let _ = inner_dst(&d);
            let _ = inner_src(&d);
            let _ = partial_checksum(&d);
            let mut m = d.clone();
            let _ = oversize_tcp(&mut m, 1450);
            let _ = oversize_tcp(&mut m, 0);
            let mut m = d.clone();
            let _ = coalesce_tcp(&mut m, 20, vni);
            let _ = coalesce_tcp(&mut m, 9, vni);
            if let Ok(h) = Header::new_checked(&d[..]) {
                let _ = (h.flags(), h.vni(), h.payload());
            }
        }

        #[test]
        fn header_round_trips(vni in 0u32..=MAX_VNI, frame in proptest::collection::vec(any::<u8>(), 14..64)) {
            let mut d = header(vni).to_vec();
            d.extend_from_slice(&frame);
            prop_assert_eq!(check(&d, vni), Ok(&frame[..]));
            let h = Header::new_checked(&d[..]).unwrap();
            prop_assert_eq!(h.vni(), vni);
            prop_assert!(d[1..4].iter().all(|b| *b == 0) && d[7] == 0);
        }

        #[test]
        fn source_port_stays_in_range(hash: u32, a: u16, b: u16) {
            let p = source_port(hash, a, b);
            prop_assert!(p >= a.min(b) && p <= a.max(b));
        }
    }
}
