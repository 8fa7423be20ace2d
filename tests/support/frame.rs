//! The frame builder, and MAC and hex helpers.

/// An experimental EtherType (IEEE 802 local use): no stack answers it.
pub const ETH_TEST: u16 = 0x88b5;

pub const BCAST: [u8; 6] = [0xff; 6];

/// Builds an Ethernet frame: dst, src, the given tags (TPID, TCI) outermost
/// first, EtherType and payload. No padding.
pub fn frame(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An [`ETH_TEST`] frame between MACs written as text, padded to 60 bytes.
pub fn test_frame(dst: &str, src: &str, payload: &[u8]) -> Vec<u8> {
    padded(frame(mac(dst), mac(src), &[], ETH_TEST, payload))
}

/// The frame padded with zeros to the 60-byte minimum (without FCS).
pub fn padded(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// The frame with an 802.1Q tag (TCI `tci`) inserted after the MACs.
pub fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// Parsed outer VLAN tag of a frame as received: (TPID, VID), or None.
pub fn outer_tag(f: &[u8]) -> Option<(u16, u16)> {
    if f.len() < 18 {
        return None;
    }
    let tpid = u16::from_be_bytes([f[12], f[13]]);
    if tpid == 0x8100 || tpid == 0x88a8 {
        Some((tpid, u16::from_be_bytes([f[14], f[15]]) & 0x0fff))
    } else {
        None
    }
}

/// Whether `f` is an ARP packet asking or telling about IPv4 `target`.
pub fn is_arp_for(f: &[u8], target: [u8; 4]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[38..42] == target
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).expect("hex MAC"))
        .collect();
    v.try_into().expect("6-byte MAC")
}

/// A locally administered unicast MAC unique to this process and `n`.
pub fn fake_mac(n: u8) -> String {
    let pid = std::process::id();
    format!(
        "02:5e:{:02x}:{:02x}:{:02x}:{:02x}",
        (pid >> 16) & 0xff,
        (pid >> 8) & 0xff,
        pid & 0xff,
        n
    )
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// An 802.1D Configuration BPDU from `src` claiming to be the root
/// (priority 0x8000), padded to 60 bytes, or with a wrong protocol
/// identifier when `malformed`.
pub fn config_bpdu(src: [u8; 6], malformed: bool) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0];
    f.extend_from_slice(&src);
    f.extend_from_slice(&38u16.to_be_bytes()); // 802.3 length: LLC + 35
    f.extend_from_slice(&[0x42, 0x42, 0x03]);
    f.extend_from_slice(&[0, u8::from(malformed), 0, 0, 0]); // protocol, version, type, flags
    let id = [0x80, 0x00, src[0], src[1], src[2], src[3], src[4], src[5]];
    f.extend_from_slice(&id); // root
    f.extend_from_slice(&0u32.to_be_bytes()); // root path cost
    f.extend_from_slice(&id); // bridge
    f.extend_from_slice(&0x8001u16.to_be_bytes());
    for t in [0u16, 20, 2, 15] {
        f.extend_from_slice(&(t * 256).to_be_bytes()); // age, max age, hello, forward delay
    }
    f.resize(60, 0);
    f
}
