//! A checked, zero-copy view of an Ethernet II frame with at most one outer
//! 802.1Q (0x8100) or 802.1ad (0x88a8) tag.
//!
//! [`Frame::parse`] validates lengths once; after it no accessor can panic.

use super::Mac;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Tag control information when the frame is tagged.
    pub const TCI: Range<usize> = 14..16;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

pub const HEADER_LEN: usize = field::HEADER_LEN;
pub const TAG_LEN: usize = field::TAG_LEN;

/// EtherType values the switch cares about; others are kept losslessly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    /// 802.1Q customer VLAN tag.
    Vlan,
    /// 802.1ad service VLAN tag (QinQ outer).
    QinQ,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(o) => o,
        }
    }
}

/// An outer VLAN tag as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// Tag protocol identifier: 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits); 0 means priority-tagged only.
    pub vid: u16,
}

/// Why a byte string is not a frame the switch can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame shorter than the 14-byte Ethernet header")]
    Runt,
    #[error("VLAN tag truncated")]
    TruncatedTag,
}

/// A validated view of an Ethernet frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    tag: Option<Tag>,
}

impl<'a> Frame<'a> {
    /// Checks the header (and outer tag, if any) fit in `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        if bytes.len() < field::HEADER_LEN {
            return Err(FrameError::Runt);
        }
        let ethertype = u16::from_be_bytes([bytes[12], bytes[13]]);
        let tag = match ethertype {
            0x8100 | 0x88a8 => {
                if bytes.len() < field::HEADER_LEN + field::TAG_LEN {
                    return Err(FrameError::TruncatedTag);
                }
                let tci =
                    u16::from_be_bytes([bytes[field::TCI.start], bytes[field::TCI.start + 1]]);
                Some(Tag {
                    tpid: ethertype,
                    pcp: (tci >> 13) as u8,
                    dei: tci & 0x1000 != 0,
                    vid: tci & 0x0fff,
                })
            }
            _ => None,
        };
        Ok(Frame { bytes, tag })
    }

    pub fn dst(&self) -> Mac {
        Mac::from_slice(&self.bytes[field::DST])
    }

    pub fn src(&self) -> Mac {
        Mac::from_slice(&self.bytes[field::SRC])
    }

    /// The outer tag, if the frame carries an 802.1Q or 802.1ad one.
    pub fn tag(&self) -> Option<Tag> {
        self.tag
    }

    /// The EtherType after the outer tag (or the only one when untagged).
    pub fn inner_ethertype(&self) -> EtherType {
        let at = if self.tag.is_some() {
            field::ETHERTYPE.start + field::TAG_LEN
        } else {
            field::ETHERTYPE.start
        };
        EtherType::from(u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]]))
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Builds a tag's TCI from its parts.
pub fn tci(pcp: u8, dei: bool, vid: u16) -> u16 {
    ((pcp as u16 & 7) << 13) | if dei { 0x1000 } else { 0 } | (vid & 0x0fff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: [u8; 2], rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1];
        v.extend_from_slice(&ethertype);
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn untagged() {
        let b = frame([0x08, 0x06], &[0; 28]);
        let f = Frame::parse(&b).unwrap();
        assert!(f.dst().is_broadcast());
        assert_eq!(f.src(), Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.tag(), None);
        assert_eq!(f.inner_ethertype(), EtherType::Arp);
    }

    #[test]
    fn header_only_frame_is_valid() {
        let b = frame([0x08, 0x00], &[]);
        assert_eq!(b.len(), 14);
        assert!(Frame::parse(&b).is_ok());
    }

    #[test]
    fn dot1q_and_dot1ad() {
        let b = frame([0x81, 0x00], &[0xa0, 0x0a, 0x08, 0x00]);
        let t = Frame::parse(&b).unwrap().tag().unwrap();
        assert_eq!((t.tpid, t.pcp, t.dei, t.vid), (0x8100, 5, false, 10));
        assert_eq!(Frame::parse(&b).unwrap().inner_ethertype(), EtherType::Ipv4);
        let b = frame([0x88, 0xa8], &[0x1f, 0xff, 0x81, 0x00]);
        let t = Frame::parse(&b).unwrap().tag().unwrap();
        assert_eq!((t.tpid, t.dei, t.vid), (0x88a8, true, 4095));
        assert_eq!(tci(5, false, 10), 0xa00a);
        assert_eq!(tci(0, true, 4095), 0x1fff);
    }

    #[test]
    fn runts_and_truncated_tags() {
        assert_eq!(Frame::parse(&[0; 13]).unwrap_err(), FrameError::Runt);
        assert_eq!(Frame::parse(&[]).unwrap_err(), FrameError::Runt);
        let b = frame([0x81, 0x00], &[0x00, 0x0a]);
        assert_eq!(Frame::parse(&b).unwrap_err(), FrameError::TruncatedTag);
        let b = frame([0x88, 0xa8], &[]);
        assert_eq!(Frame::parse(&b).unwrap_err(), FrameError::TruncatedTag);
    }

    #[test]
    fn ethertype_round_trips() {
        for v in [0x0800u16, 0x0806, 0x86dd, 0x8100, 0x88a8, 0x88cc, 0] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
    }
}
