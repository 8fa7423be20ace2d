//! The virtio-net header and the software offloads a port without them
//! needs: `VnetHdr::parse`/`write`/`shift`, `segment` (TCP GSO) and
//! `finish_checksum`, directly and through the egress path
//! (`dataplane::egress::apply_tag` and `send`).
//!
//! Input: 10 bytes of header, one byte choosing a tag action, the frame.
//! Checked: the header round-trips; each segment is at most the headers
//! plus `gso_size`, all but the last exactly so, and the segments' payloads
//! put together are the frame's; each segment's IPv4 header checksum, IP
//! length, TCP sequence number, flags and TCP checksum are right; a
//! finished checksum verifies; what the egress path sends is what the
//! functions make.
#![no_main]

use std::cell::RefCell;
use std::io;

use libfuzzer_sys::fuzz_target;
use vswitch::dataplane::egress::{self, PortIo, Sink};
use vswitch::switch::TagAction;
use vswitch::wire::vnet::{self, GSO_ECN, GSO_TCPV4, GSO_TCPV6, VNET_HDR_LEN, VnetHdr};

/// Ones'-complement sum, written apart from the library's.
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    for (i, b) in data.iter().enumerate() {
        acc += if i % 2 == 0 {
            (*b as u64) << 8
        } else {
            *b as u64
        };
    }
    acc
}

fn folds_to_zero(acc: u64) -> bool {
    let mut a = acc;
    while a > 0xffff {
        a = (a & 0xffff) + (a >> 16);
    }
    a == 0xffff
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// (L3 offset, L4 offset, header length) of a TCP GSO frame, found apart
/// from the library's parser; None where it must refuse the frame.
fn layout(h: &VnetHdr, f: &[u8]) -> Option<(usize, usize, usize)> {
    let mut at = 12;
    let mut et = 0;
    for i in 0..3 {
        et = u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]);
        if et != 0x8100 && et != 0x88a8 {
            break;
        }
        if i == 2 {
            return None;
        }
        at += 4;
    }
    let l3 = at + 2;
    let gso = h.gso_type & !GSO_ECN;
    let l4 = match (gso, et) {
        (GSO_TCPV4, 0x0800) => {
            let ihl = (*f.get(l3)? & 0xf) as usize * 4;
            if ihl < 20 || *f.get(l3 + 9)? != 6 {
                return None;
            }
            l3 + ihl
        }
        (GSO_TCPV6, 0x86dd) => {
            if h.needs_csum() && h.csum_start as usize > l3 + 40 {
                h.csum_start as usize
            } else {
                l3 + 40
            }
        }
        _ => return None,
    };
    let doff = (*f.get(l4 + 12)? >> 4) as usize * 4;
    if doff < 20 || l4 + doff > f.len() || h.gso_size == 0 {
        return None;
    }
    Some((l3, l4, l4 + doff))
}

fn check_segments(h: &VnetHdr, f: &[u8], segs: &[Vec<u8>]) {
    let gso = h.gso_type & !GSO_ECN;
    let Some((l3, l4, hdrs)) = layout(h, f) else {
        assert!(segs.is_empty(), "segments of a frame that is not TCP GSO");
        return;
    };
    let mss = h.gso_size as usize;
    let payload = &f[hdrs..];
    assert_eq!(
        segs.len(),
        payload.len().div_ceil(mss).max(1),
        "segment count"
    );
    let mut joined = Vec::with_capacity(payload.len());
    let seq0 = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        assert!(
            s.len() <= hdrs + mss,
            "segment {i}: {} > {hdrs} + {mss}",
            s.len()
        );
        assert!(
            last || s.len() == hdrs + mss,
            "short segment {i} before the last"
        );
        assert!(s.len() >= hdrs);
        joined.extend_from_slice(&s[hdrs..]);
        // Ethernet header and tags untouched; TCP ports, ack untouched.
        assert_eq!(s[..l3], f[..l3]);
        assert_eq!(s[l4..l4 + 4], f[l4..l4 + 4]);
        assert_eq!(s[l4 + 8..l4 + 12], f[l4 + 8..l4 + 12]);
        let seq = u32::from_be_bytes(s[l4 + 4..l4 + 8].try_into().unwrap());
        assert_eq!(seq, seq0.wrapping_add((i * mss) as u32), "seq of {i}");
        let (fl0, fl) = (f[l4 + 13], s[l4 + 13]);
        assert_eq!(fl & !0x89, fl0 & !0x89, "flags other than FIN/PSH/CWR");
        assert_eq!(
            fl & 0x09,
            if last { fl0 & 0x09 } else { 0 },
            "FIN/PSH of {i}"
        );
        assert_eq!(fl & 0x80, if i == 0 { fl0 & 0x80 } else { 0 }, "CWR of {i}");
        let tcp_len = (s.len() - l4) as u64;
        let pseudo = if gso == GSO_TCPV4 {
            assert!(
                folds_to_zero(sum(0, &s[l3..l4])),
                "IPv4 header checksum of {i}"
            );
            assert_eq!(be16(s, l3 + 2) as usize, s.len() - l3, "IPv4 total length");
            sum(6 + tcp_len, &s[l3 + 12..l3 + 20])
        } else {
            assert_eq!(
                be16(s, l3 + 4) as usize,
                s.len() - l3 - 40,
                "IPv6 payload length"
            );
            sum(6 + tcp_len, &s[l3 + 8..l3 + 40])
        };
        assert!(folds_to_zero(sum(pseudo, &s[l4..])), "TCP checksum of {i}");
    }
    assert_eq!(joined, payload, "payloads put together");
}

/// A sink that keeps what it is sent.
struct Keep(RefCell<Vec<Vec<u8>>>);

impl Sink for Keep {
    fn send(&self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().push(buf[VNET_HDR_LEN..].to_vec());
        Ok(())
    }
    fn send2(&self, hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        assert_eq!(
            hdr, [0; VNET_HDR_LEN],
            "a port without offloads gets plain frames"
        );
        self.0.borrow_mut().push(frame.to_vec());
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < VNET_HDR_LEN + 1 {
        return;
    }
    let (raw, rest) = data.split_at(VNET_HDR_LEN);
    let (sel, frame) = (rest[0], &rest[1..]);
    let h = VnetHdr::parse(raw);
    let mut back = [0u8; VNET_HDR_LEN];
    h.write(&mut back);
    assert_eq!(back, raw, "header round trip");
    assert_eq!(h.is_plain(), !h.is_gso() && !h.needs_csum());
    let d = (sel as i16) - 128;
    let mut s = h;
    s.shift(d);
    s.shift(-d);
    // (A header length shifted to 0 reads as "none" and stays 0.)
    if h.hdr_len.wrapping_add_signed(d) != 0 {
        assert_eq!(s, h, "shift there and back");
    }

    // segment
    let mut segs = Vec::new();
    let r = vnet::segment(&h, frame, &mut Vec::new(), |s| segs.push(s.to_vec()));
    match r {
        Ok(()) => check_segments(&h, frame, &segs),
        Err(_) => {
            assert!(segs.is_empty());
            let gso = h.gso_type & !GSO_ECN;
            if gso == GSO_TCPV4 || gso == GSO_TCPV6 {
                assert!(layout(&h, frame).is_none(), "refused a TCP GSO frame");
            }
        }
    }

    // finish_checksum
    let mut done = frame.to_vec();
    let start = h.csum_start as usize;
    let at = start + h.csum_offset as usize;
    match vnet::finish_checksum(&h, &mut done) {
        Ok(()) => {
            assert!(start < frame.len() && at + 2 <= frame.len());
            assert_eq!(done[..at], frame[..at]);
            assert_eq!(done[at + 2..], frame[at + 2..]);
            if (at - start) % 2 == 0 {
                // The field held the pseudo-header sum: with it, the
                // finished data sums to zero.
                let field = be16(frame, at) as u64;
                assert!(
                    folds_to_zero(sum(field, &done[start..])),
                    "finished checksum"
                );
            }
        }
        Err(_) => assert!(start >= frame.len() || at + 2 > frame.len()),
    }

    // The egress path: a tag action (only those decide can ask for this
    // frame), then a port without offloads.
    let tagged = frame.len() >= 18 && matches!(be16(frame, 12), 0x8100 | 0x88a8);
    if frame.len() < 14 {
        return;
    }
    let act = match (sel % 4, tagged) {
        (1, _) => TagAction::Push(sel as u16 * 16),
        (2, true) => TagAction::Pop,
        (3, true) => TagAction::Rewrite(sel as u16 * 16),
        _ => TagAction::Keep,
    };
    let mut out = Vec::new();
    let h2 = egress::apply_tag(act, 0x8100, h, frame, &mut out);
    assert_eq!(VnetHdr::parse(&out[..VNET_HDR_LEN]), h2);
    let tagged_frame = out[VNET_HDR_LEN..].to_vec();
    let want_len = match act {
        TagAction::Push(_) => frame.len() + 4,
        TagAction::Pop => frame.len() - 4,
        _ => frame.len(),
    };
    assert_eq!(tagged_frame.len(), want_len);
    let sink = Keep(RefCell::new(Vec::new()));
    let io = PortIo {
        mtu: 65535,
        offloads: false,
    };
    let sent = egress::send(&sink, &io, h2, &out, &mut Vec::new());
    let got = sink.0.into_inner();
    assert_eq!(sent.frames as usize, got.len());
    assert_eq!(sent.bytes as usize, got.iter().map(Vec::len).sum::<usize>());
    if h2.is_plain() {
        assert_eq!(got, [tagged_frame]);
    } else if h2.is_gso() {
        let mut want = Vec::new();
        let r = vnet::segment(&h2, &tagged_frame, &mut Vec::new(), |s| {
            want.push(s.to_vec())
        });
        assert_eq!(got, want);
        assert_eq!(r.is_err(), sent.failure.is_some());
        if r.is_ok() {
            check_segments(&h2, &tagged_frame, &got);
        }
    } else {
        let mut want = tagged_frame.clone();
        match vnet::finish_checksum(&h2, &mut want) {
            Ok(()) => assert_eq!(got, [want]),
            Err(_) => assert!(got.is_empty() && sent.failure.is_some()),
        }
    }
});
