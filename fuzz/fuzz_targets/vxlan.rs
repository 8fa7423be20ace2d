//! VXLAN: `wire::vxlan::check` and the header view on any datagram.
//!
//! Input: 3 bytes of VNI, then the datagram. Checked: no panic; an
//! accepted datagram has the I flag and the expected VNI and its payload is
//! the datagram after the 8-byte header, at least an Ethernet header long;
//! a header we build for a VNI, before an Ethernet header, is accepted.
//! `coalesce_tcp` (a UDP GRO batch joined into one TCP GSO frame) on the
//! datagram cut at a few sizes: no panic, and a joined frame fits where
//! the batch was and cuts into as many segments as there were datagrams.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch::wire::{vnet, vxlan};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let vni = u32::from_be_bytes([0, data[0], data[1], data[2]]);
    let dgram = &data[3..];
    if let Ok(payload) = vxlan::check(dgram, vni) {
        assert!(dgram.len() >= 8);
        assert_eq!(payload, &dgram[8..]);
        assert!(
            payload.len() >= 14,
            "accepted without an inner Ethernet header"
        );
        assert_ne!(dgram[0] & 0x08, 0, "accepted without the I flag");
        assert_eq!(u32::from_be_bytes([0, dgram[4], dgram[5], dgram[6]]), vni);
    }
    if let Ok(h) = vxlan::Header::new_checked(dgram) {
        let _ = (h.flags(), h.has_vni(), h.vni(), h.payload().len());
    }
    for size in [
        dgram.len() / 2 + 1,
        dgram.len() / 3 + 1,
        64 + usize::from(data[0]),
    ] {
        let mut batch = dgram.to_vec();
        if let Some((len, hdr)) = vxlan::coalesce_tcp(&mut batch, size, vni) {
            assert!(hdr.is_gso() && 8 + len <= dgram.len());
            let mut segs = 0;
            vnet::segment(&hdr, &batch[8..8 + len], &mut Vec::new(), |_| segs += 1)
                .expect("a joined frame segments");
            assert_eq!(segs, dgram.len().div_ceil(size));
        }
    }
    let mut built = vxlan::header(vni).to_vec();
    built.extend_from_slice(&[0u8; 14]);
    assert_eq!(vxlan::check(&built, vni).map(<[u8]>::len), Ok(14));
});
