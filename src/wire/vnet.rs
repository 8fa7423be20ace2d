//! The virtio-net header TAP devices (IFF_VNET_HDR) and AF_PACKET sockets
//! (PACKET_VNET_HDR) put before each frame, and what a port without
//! offloads needs done in software: finish a partial checksum, segment a
//! TCP GSO frame into MSS-sized frames.
//!
//! All of it is pure: byte slices in, byte slices out.

use super::ethernet::HEADER_LEN;

/// Size of `struct virtio_net_hdr` (no `num_buffers`), the size vswitchd
/// asks the kernel for.
pub const VNET_HDR_LEN: usize = 10;

pub const F_NEEDS_CSUM: u8 = 1;
pub const F_DATA_VALID: u8 = 2;

pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_UDP: u8 = 3;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
pub const GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header (little-endian on the wire, as on x86 and
/// for virtio 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// Why an offloaded frame cannot be finished in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("checksum offsets point outside the frame")]
    BadChecksumOffsets,
    #[error("GSO frame whose headers are not TCP over IPv4/IPv6")]
    BadGsoHeaders,
    #[error("GSO type {0:#x} is not supported")]
    UnsupportedGso(u8),
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> VnetHdr {
        let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16le(2),
            gso_size: u16le(4),
            csum_start: u16le(6),
            csum_offset: u16le(8),
        }
    }

    pub fn write(&self, b: &mut [u8]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }

    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// Whether a port without offloads can take the frame as it is.
    pub fn is_plain(&self) -> bool {
        !self.is_gso() && !self.needs_csum()
    }

    /// Shifts the L3/L4 offsets after a tag of `delta` bytes was inserted
    /// (positive) or removed (negative) before them.
    pub fn shift(&mut self, delta: i16) {
        if self.needs_csum() {
            self.csum_start = self.csum_start.wrapping_add_signed(delta);
        }
        if self.hdr_len != 0 {
            self.hdr_len = self.hdr_len.wrapping_add_signed(delta);
        }
    }
}

use super::checksum::sum16;

/// Internet checksum of `data` starting from `acc`.
pub fn checksum(acc: u32, data: &[u8]) -> u16 {
    super::checksum::fold(sum16(data, acc))
}

/// Completes a NEEDS_CSUM frame: the kernel left the pseudo-header sum in
/// the checksum field; sum from `csum_start` to the end and store it.
pub fn finish_checksum(h: &VnetHdr, frame: &mut [u8]) -> Result<(), OffloadError> {
    let start = h.csum_start as usize;
    let at = start + h.csum_offset as usize;
    if start >= frame.len() || at + 2 > frame.len() {
        return Err(OffloadError::BadChecksumOffsets);
    }
    let c = checksum(0, &frame[start..]);
    // A computed 0 stays 0 for TCP; UDP would send 0xffff, but 0 is legal
    // ("no checksum") only for UDP/IPv4, so use 0xffff there too.
    let c = if c == 0 { 0xffff } else { c };
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Offset of the L3 header: after the Ethernet header and up to two tags.
fn l3_offset(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = HEADER_LEN - 2;
    for _ in 0..3 {
        let et = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        if et == 0x8100 || et == 0x88a8 {
            at += 4;
        } else {
            return Some((at + 2, et));
        }
    }
    None
}

/// Splits a TCP GSO frame into frames of at most `gso_size` payload bytes,
/// each with correct IP and TCP headers and checksums, calling `emit` for
/// each. `scratch` is reused across calls to avoid allocating.
pub fn segment(
    h: &VnetHdr,
    frame: &[u8],
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<(), OffloadError> {
    scratch.clear();
    segment_into(h, frame, scratch, &[], |out, at| {
        emit(&out[at..]);
        out.truncate(at);
    })
}

/// Like [`segment`], but appends each segment to `out` behind a copy of
/// `prefix` (a tunnel header), so that a batch of them can be handed to
/// the kernel at once without copying them again; `placed(out, at)` is
/// called after each, `at` being where that segment starts in `out`.
pub fn segment_into(
    h: &VnetHdr,
    frame: &[u8],
    out: &mut Vec<u8>,
    prefix: &[u8],
    mut placed: impl FnMut(&mut Vec<u8>, usize),
) -> Result<(), OffloadError> {
    let gso = h.gso_type & !GSO_ECN;
    if gso != GSO_TCPV4 && gso != GSO_TCPV6 {
        return Err(OffloadError::UnsupportedGso(h.gso_type));
    }
    let bad = OffloadError::BadGsoHeaders;
    let (l3, et) = l3_offset(frame).ok_or(bad)?;
    let l4 = match (gso, et) {
        (GSO_TCPV4, 0x0800) => {
            let ihl = (*frame.get(l3).ok_or(bad)? & 0x0f) as usize * 4;
            if ihl < 20 || *frame.get(l3 + 9).ok_or(bad)? != 6 {
                return Err(bad);
            }
            l3 + ihl
        }
        (GSO_TCPV6, 0x86dd) => {
            // Extension headers are rare on GSO frames; csum_start tells
            // where TCP starts when the kernel set it.
            if h.needs_csum() && h.csum_start as usize > l3 + 40 {
                h.csum_start as usize
            } else {
                l3 + 40
            }
        }
        _ => return Err(bad),
    };
    let doff = (*frame.get(l4 + 12).ok_or(bad)? >> 4) as usize * 4;
    let hdrs = l4 + doff;
    if doff < 20 || hdrs > frame.len() {
        return Err(bad);
    }
    let mss = h.gso_size as usize;
    if mss == 0 {
        return Err(bad);
    }
    let payload = &frame[hdrs..];
    let seq0 = u32::from_be_bytes(frame[l4 + 4..l4 + 8].try_into().unwrap());
    let flags0 = frame[l4 + 13];
    let nseg = payload.len().div_ceil(mss).max(1);
    let ip_id0 = u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]);
    for (i, chunk) in payload
        .chunks(mss)
        .chain(
            // A GSO frame with no payload still goes out, as one frame.
            std::iter::once(&payload[..0]).take(usize::from(payload.is_empty())),
        )
        .enumerate()
    {
        out.extend_from_slice(prefix);
        let at = out.len();
        out.extend_from_slice(&frame[..hdrs]);
        out.extend_from_slice(chunk);
        let s = &mut out[at..];
        let l4_len = doff + chunk.len();
        // IP header.
        let pseudo = if gso == GSO_TCPV4 {
            let total = (hdrs - l3 + chunk.len()) as u16;
            s[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            s[l3 + 4..l3 + 6].copy_from_slice(&ip_id0.wrapping_add(i as u16).to_be_bytes());
            s[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let c = checksum(0, &s[l3..l4]);
            s[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            sum16(&s[l3 + 12..l3 + 20], 6 + l4_len as u32)
        } else {
            let plen = (hdrs - l3 - 40 + chunk.len()) as u16;
            s[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
            sum16(&s[l3 + 8..l3 + 40], 6 + l4_len as u32)
        };
        // TCP header.
        let seq = seq0.wrapping_add((i * mss) as u32);
        s[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = flags0;
        if i + 1 < nseg {
            fl &= !(0x01 | 0x08); // FIN, PSH only on the last
        }
        if i > 0 {
            fl &= !0x80; // CWR only on the first
        }
        s[l4 + 13] = fl;
        s[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let c = checksum(pseudo, &s[l4..]);
        s[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        placed(out, at);
    }
    Ok(())
}

#[cfg(test)]
impl VnetHdr {
    /// A TCP/IPv4 GSO header as a guest's stack sends one (tests).
    pub(crate) const TCP4_GSO_SAMPLE: VnetHdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP frame with `payload` bytes of payload.
    fn tcp4(payload: usize, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = (20 + 20 + payload) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0x14, 0x51]); // ports
        f.extend_from_slice(&1000u32.to_be_bytes()); // seq
        f.extend_from_slice(&0u32.to_be_bytes()); // ack
        f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend((0..payload).map(|i| i as u8));
        f
    }

    fn tcp4_valid(seg: &[u8]) -> bool {
        let ip = &seg[14..34];
        if checksum(0, ip) != 0 {
            return false;
        }
        let tcp = &seg[34..];
        let pseudo = sum16(&ip[12..20], 6 + tcp.len() as u32);
        checksum(pseudo, tcp) == 0
    }

    #[test]
    fn header_round_trip() {
        let h = VnetHdr::TCP4_GSO_SAMPLE;
        let mut b = [0u8; VNET_HDR_LEN];
        h.write(&mut b);
        assert_eq!(VnetHdr::parse(&b), h);
        assert!(h.is_gso() && !h.is_plain());
        let mut s = h;
        s.shift(4);
        assert_eq!((s.csum_start, s.hdr_len), (38, 58));
        s.shift(-4);
        assert_eq!(s, h);
    }

    #[test]
    fn segments_tcp4_with_valid_checksums() {
        let f = tcp4(3000, 0x18 | 0x01); // PSH|ACK|FIN
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1400,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut segs = Vec::new();
        segment(&h, &f, &mut Vec::new(), |s| segs.push(s.to_vec())).unwrap();
        assert_eq!(segs.len(), 3);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(tcp4_valid(s), "segment {i} checksums");
            let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
            assert_eq!(seq, 1000 + (i as u32) * 1400);
            let fin = s[47] & 1 != 0;
            assert_eq!(fin, i == 2, "FIN only on the last");
            let total = u16::from_be_bytes([s[16], s[17]]) as usize;
            assert_eq!(total, s.len() - 14);
            payload.extend_from_slice(&s[54..]);
        }
        assert_eq!(payload, f[54..]);
    }

    #[test]
    fn finishes_partial_checksum() {
        let mut f = tcp4(100, 0x10);
        // Kernel style: pseudo-header sum (not inverted) in the field.
        let tcp_len = (f.len() - 34) as u32;
        let pseudo = !crate::wire::checksum::fold(sum16(&f[26..34], 6 + tcp_len));
        f[50..52].copy_from_slice(&pseudo.to_be_bytes());
        let ipc = checksum(0, &f[14..34]);
        f[24..26].copy_from_slice(&ipc.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        finish_checksum(&h, &mut f).unwrap();
        assert!(tcp4_valid(&f));
        let bad = VnetHdr {
            csum_start: 200,
            ..h
        };
        assert_eq!(
            finish_checksum(&bad, &mut f),
            Err(OffloadError::BadChecksumOffsets)
        );
    }

    #[test]
    fn rejects_garbage_gso() {
        let h = VnetHdr {
            gso_type: GSO_TCPV4,
            gso_size: 100,
            ..VnetHdr::default()
        };
        let mut out = 0;
        assert!(segment(&h, &[0u8; 20], &mut Vec::new(), |_| out += 1).is_err());
        let udp = VnetHdr {
            gso_type: GSO_UDP_L4,
            ..h
        };
        assert_eq!(
            segment(&udp, &tcp4(10, 0), &mut Vec::new(), |_| ()),
            Err(OffloadError::UnsupportedGso(GSO_UDP_L4))
        );
        assert_eq!(out, 0);
    }
}
