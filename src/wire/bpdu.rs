//! Spanning-tree BPDUs as they appear in an Ethernet frame (IEEE 802.1D-2004
//! clause 9): destination 01:80:C2:00:00:00, an 802.3 length field, the LLC
//! header 42 42 03, then the BPDU.
//!
//! Three BPDU types are understood (9.3):
//!
//! | type | version | octets | what |
//! |---|---|---|---|
//! | 0x00 Configuration | 0 (any is accepted) | 35 | legacy STP, also sent by RSTP to an STP neighbour |
//! | 0x80 Topology Change Notification | 0 (any) | 4 | legacy STP, sent toward the root |
//! | 0x02 Rapid Spanning Tree | 2 (≥ 2 accepted, so MSTP is read as RSTP) | 36 | RSTP |
//!
//! [`BpduFrame::parse`] validates a whole frame once (9.3.4 plus the timer
//! sanity checks of [`BpduError::AbsurdTimers`]); after it no accessor can
//! panic. [`Bpdu`] is the plain representation with [`Bpdu::parse_frame`] and
//! [`Bpdu::to_frame`]. Timers on the wire are in 1/256 s (9.2.8); the
//! representation keeps that unit.

use super::Mac;

/// The destination of every BPDU: the Bridge Group Address (7.12.3).
pub const BRIDGE_GROUP: Mac = Mac([0x01, 0x80, 0xc2, 0x00, 0x00, 0x00]);

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    /// 802.3 length of the LLC PDU (header and BPDU).
    pub const LENGTH: Range<usize> = 12..14;
    pub const LLC: Range<usize> = 14..17;
    /// First octet of the BPDU.
    pub const BPDU: usize = 17;

    // Offsets inside the BPDU (9.3.1, 9.3.2, 9.3.3).
    pub const PROTOCOL: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const TYPE: usize = 3;
    pub const FLAGS: usize = 4;
    pub const ROOT_ID: Range<usize> = 5..13;
    pub const ROOT_PATH_COST: Range<usize> = 13..17;
    pub const BRIDGE_ID: Range<usize> = 17..25;
    pub const PORT_ID: Range<usize> = 25..27;
    pub const MESSAGE_AGE: Range<usize> = 27..29;
    pub const MAX_AGE: Range<usize> = 29..31;
    pub const HELLO_TIME: Range<usize> = 31..33;
    pub const FORWARD_DELAY: Range<usize> = 33..35;
    pub const VERSION1_LENGTH: usize = 35;
}

/// The LLC header of a BPDU: DSAP 0x42, SSAP 0x42, UI (7.12.3).
pub const LLC: [u8; 3] = [0x42, 0x42, 0x03];
/// Octets of a Configuration BPDU (9.3.1).
pub const CONFIG_LEN: usize = 35;
/// Octets of a Topology Change Notification BPDU (9.3.2).
pub const TCN_LEN: usize = 4;
/// Octets of an RST BPDU (9.3.3), Version 1 Length included.
pub const RST_LEN: usize = 36;
/// Ethernet header plus LLC header.
pub const HEADER_LEN: usize = field::BPDU;

/// One second in the wire's timer unit (9.2.8).
pub const SECOND: u16 = 256;

/// Received timers outside these are refused as absurd: the ranges
/// 802.1D-1998 and the Linux bridge accept (hello at most 10 s, max age
/// 6..=40 s, forward delay at most 30 s, message age at most 40 s), in
/// 1/256 s. A message age at or above max age is not absurd: the
/// information is expired and ages out at once (17.21.23), which is how
/// stale root information dies after a root change.
pub const MAX_HELLO: u16 = 10 * SECOND;
pub const MIN_MAX_AGE: u16 = 6 * SECOND;
pub const MAX_MAX_AGE: u16 = 40 * SECOND;
pub const MAX_FORWARD_DELAY: u16 = 30 * SECOND;
pub const MAX_MESSAGE_AGE: u16 = 40 * SECOND;

/// The BPDU types of 9.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpduType {
    Config,
    Tcn,
    Rst,
}

impl BpduType {
    pub fn code(self) -> u8 {
        match self {
            BpduType::Config => 0x00,
            BpduType::Tcn => 0x80,
            BpduType::Rst => 0x02,
        }
    }
}

/// Why a frame is not a BPDU this bridge accepts. [`BpduError::as_str`]
/// gives a short name fit for a metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BpduError {
    #[error("frame shorter than an Ethernet header, LLC header and TCN BPDU")]
    Short,
    #[error("destination is not the bridge group address 01:80:c2:00:00:00")]
    NotBridgeGroup,
    #[error("not an 802.3/LLC frame with DSAP/SSAP 0x42 and UI control")]
    NotLlc,
    #[error("802.3 length field disagrees with the frame or the BPDU type")]
    BadLength,
    #[error("protocol identifier is not 0 (spanning tree)")]
    WrongProtocol,
    #[error("RST BPDU with a protocol version below 2")]
    WrongVersion,
    #[error("unknown BPDU type")]
    UnknownType,
    #[error("timer values outside any bridge's range")]
    AbsurdTimers,
    #[error("the BPDU is this port's own, looped back")]
    Looped,
}

impl BpduError {
    /// A short stable name (metric label value).
    pub fn as_str(self) -> &'static str {
        match self {
            BpduError::Short => "short",
            BpduError::NotBridgeGroup => "not_bridge_group",
            BpduError::NotLlc => "not_llc",
            BpduError::BadLength => "bad_length",
            BpduError::WrongProtocol => "wrong_protocol",
            BpduError::WrongVersion => "wrong_version",
            BpduError::UnknownType => "unknown_type",
            BpduError::AbsurdTimers => "absurd_timers",
            BpduError::Looped => "looped",
        }
    }

    /// Every variant, for metric pre-registration and tests.
    pub const ALL: [BpduError; 9] = [
        BpduError::Short,
        BpduError::NotBridgeGroup,
        BpduError::NotLlc,
        BpduError::BadLength,
        BpduError::WrongProtocol,
        BpduError::WrongVersion,
        BpduError::UnknownType,
        BpduError::AbsurdTimers,
        BpduError::Looped,
    ];
}

/// The flags octet (9.3.1 for Config: bits 1 and 8; 9.3.3 for RST: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

/// The port role encoded in an RST BPDU's flags (9.2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireRole {
    Unknown,
    AlternateOrBackup,
    Root,
    Designated,
}

impl Flags {
    pub const TC: u8 = 0x01;
    pub const PROPOSAL: u8 = 0x02;
    pub const ROLE_MASK: u8 = 0x0c;
    pub const LEARNING: u8 = 0x10;
    pub const FORWARDING: u8 = 0x20;
    pub const AGREEMENT: u8 = 0x40;
    pub const TC_ACK: u8 = 0x80;

    pub fn tc(self) -> bool {
        self.0 & Self::TC != 0
    }
    pub fn proposal(self) -> bool {
        self.0 & Self::PROPOSAL != 0
    }
    pub fn learning(self) -> bool {
        self.0 & Self::LEARNING != 0
    }
    pub fn forwarding(self) -> bool {
        self.0 & Self::FORWARDING != 0
    }
    pub fn agreement(self) -> bool {
        self.0 & Self::AGREEMENT != 0
    }
    pub fn tc_ack(self) -> bool {
        self.0 & Self::TC_ACK != 0
    }
    pub fn role(self) -> WireRole {
        match (self.0 & Self::ROLE_MASK) >> 2 {
            0 => WireRole::Unknown,
            1 => WireRole::AlternateOrBackup,
            2 => WireRole::Root,
            _ => WireRole::Designated,
        }
    }
    /// Returns the flags with the role bits replaced.
    pub fn with_role(self, role: WireRole) -> Flags {
        let bits = match role {
            WireRole::Unknown => 0,
            WireRole::AlternateOrBackup => 1,
            WireRole::Root => 2,
            WireRole::Designated => 3,
        };
        Flags((self.0 & !Self::ROLE_MASK) | (bits << 2))
    }
    /// Returns the flags with `bit` set or cleared.
    pub fn with(self, bit: u8, on: bool) -> Flags {
        if on {
            Flags(self.0 | bit)
        } else {
            Flags(self.0 & !bit)
        }
    }
}

/// A checked view of an Ethernet frame carrying a BPDU.
#[derive(Debug, Clone, Copy)]
pub struct BpduFrame<'a> {
    frame: &'a [u8],
    /// The BPDU octets (LLC payload), at least as long as its type needs.
    bpdu: &'a [u8],
    kind: BpduType,
}

fn be16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

impl<'a> BpduFrame<'a> {
    /// Validates a whole received frame (9.3.4). Trailing padding after the
    /// 802.3 length is ignored.
    pub fn parse(frame: &'a [u8]) -> Result<BpduFrame<'a>, BpduError> {
        if frame.len() < field::BPDU + TCN_LEN {
            return Err(BpduError::Short);
        }
        if frame[field::DST] != BRIDGE_GROUP.0 {
            return Err(BpduError::NotBridgeGroup);
        }
        let length = be16(frame, field::LENGTH) as usize;
        if length >= 0x600 || frame[field::LLC] != LLC {
            return Err(BpduError::NotLlc);
        }
        // The length covers the LLC header and the BPDU.
        if length < LLC.len() + TCN_LEN || field::LLC.start + length > frame.len() {
            return Err(BpduError::BadLength);
        }
        let bpdu = &frame[field::BPDU..field::LLC.start + length];
        if be16(bpdu, field::PROTOCOL) != 0 {
            return Err(BpduError::WrongProtocol);
        }
        let kind = match bpdu[field::TYPE] {
            0x00 => BpduType::Config,
            0x80 => BpduType::Tcn,
            0x02 => {
                if bpdu[field::VERSION] < 2 {
                    return Err(BpduError::WrongVersion);
                }
                BpduType::Rst
            }
            _ => return Err(BpduError::UnknownType),
        };
        let need = match kind {
            BpduType::Config => CONFIG_LEN,
            BpduType::Tcn => TCN_LEN,
            BpduType::Rst => RST_LEN,
        };
        if bpdu.len() < need {
            return Err(BpduError::BadLength);
        }
        let v = BpduFrame { frame, bpdu, kind };
        if kind != BpduType::Tcn {
            let (age, max_age) = (v.message_age(), v.max_age());
            if age > MAX_MESSAGE_AGE
                || !(MIN_MAX_AGE..=MAX_MAX_AGE).contains(&max_age)
                || v.hello_time() > MAX_HELLO
                || v.forward_delay() > MAX_FORWARD_DELAY
            {
                return Err(BpduError::AbsurdTimers);
            }
        }
        Ok(v)
    }

    pub fn kind(&self) -> BpduType {
        self.kind
    }
    pub fn src(&self) -> Mac {
        Mac::from_slice(&self.frame[field::SRC])
    }
    pub fn version(&self) -> u8 {
        self.bpdu[field::VERSION]
    }
    /// The whole BPDU, from the protocol identifier on.
    pub fn bpdu(&self) -> &'a [u8] {
        self.bpdu
    }

    // The accessors below read the Config/RST body; on a TCN they return 0.

    fn body(&self) -> Option<&'a [u8]> {
        (self.kind != BpduType::Tcn).then_some(self.bpdu)
    }
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        self.body().map_or(0, |b| be16(b, r))
    }
    fn u64_at(&self, r: std::ops::Range<usize>) -> u64 {
        self.body().map_or(0, |b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[r]);
            u64::from_be_bytes(a)
        })
    }
    pub fn flags(&self) -> Flags {
        Flags(self.body().map_or(0, |b| b[field::FLAGS]))
    }
    pub fn root_id(&self) -> u64 {
        self.u64_at(field::ROOT_ID)
    }
    pub fn root_path_cost(&self) -> u32 {
        self.body().map_or(0, |b| {
            let r = field::ROOT_PATH_COST;
            u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
        })
    }
    pub fn bridge_id(&self) -> u64 {
        self.u64_at(field::BRIDGE_ID)
    }
    pub fn port_id(&self) -> u16 {
        self.u16_at(field::PORT_ID)
    }
    pub fn message_age(&self) -> u16 {
        self.u16_at(field::MESSAGE_AGE)
    }
    pub fn max_age(&self) -> u16 {
        self.u16_at(field::MAX_AGE)
    }
    pub fn hello_time(&self) -> u16 {
        self.u16_at(field::HELLO_TIME)
    }
    pub fn forward_delay(&self) -> u16 {
        self.u16_at(field::FORWARD_DELAY)
    }
}

/// The priority vector and timers carried by Config and RST BPDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BpduBody {
    pub flags: Flags,
    /// Root bridge identifier: priority (16 bits) then MAC (9.2.5).
    pub root_id: u64,
    pub root_path_cost: u32,
    /// Transmitting (designated) bridge identifier.
    pub bridge_id: u64,
    /// Transmitting (designated) port identifier (9.2.7).
    pub port_id: u16,
    /// Timers in 1/256 s.
    pub message_age: u16,
    pub max_age: u16,
    pub hello_time: u16,
    pub forward_delay: u16,
}

/// A BPDU's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bpdu {
    /// Configuration BPDU (protocol version 0): only the TC and TC-ack flags
    /// are meaningful.
    Config(BpduBody),
    /// Topology Change Notification.
    Tcn,
    /// RST BPDU (version 2).
    Rst(BpduBody),
}

impl Bpdu {
    /// Parses and validates a whole Ethernet frame.
    pub fn parse_frame(frame: &[u8]) -> Result<Bpdu, BpduError> {
        let v = BpduFrame::parse(frame)?;
        let body = BpduBody {
            flags: v.flags(),
            root_id: v.root_id(),
            root_path_cost: v.root_path_cost(),
            bridge_id: v.bridge_id(),
            port_id: v.port_id(),
            message_age: v.message_age(),
            max_age: v.max_age(),
            hello_time: v.hello_time(),
            forward_delay: v.forward_delay(),
        };
        Ok(match v.kind() {
            BpduType::Config => Bpdu::Config(body),
            BpduType::Tcn => Bpdu::Tcn,
            BpduType::Rst => Bpdu::Rst(body),
        })
    }

    pub fn kind(&self) -> BpduType {
        match self {
            Bpdu::Config(_) => BpduType::Config,
            Bpdu::Tcn => BpduType::Tcn,
            Bpdu::Rst(_) => BpduType::Rst,
        }
    }

    /// Octets of the BPDU itself (LLC payload).
    pub fn bpdu_len(&self) -> usize {
        match self {
            Bpdu::Config(_) => CONFIG_LEN,
            Bpdu::Tcn => TCN_LEN,
            Bpdu::Rst(_) => RST_LEN,
        }
    }

    /// Writes the BPDU (not the Ethernet/LLC headers) into `out`, which must
    /// hold [`Bpdu::bpdu_len`] octets.
    pub fn emit(&self, out: &mut [u8]) {
        let out = &mut out[..self.bpdu_len()];
        out.fill(0);
        out[field::TYPE] = self.kind().code();
        let body = match self {
            Bpdu::Tcn => return,
            Bpdu::Config(b) => {
                // Only TC and TC-ack exist in a Configuration BPDU.
                let mut b = *b;
                b.flags = Flags(b.flags.0 & (Flags::TC | Flags::TC_ACK));
                b
            }
            Bpdu::Rst(b) => {
                out[field::VERSION] = 2;
                // Version 1 Length is 0 (9.3.3).
                out[field::VERSION1_LENGTH] = 0;
                *b
            }
        };
        out[field::FLAGS] = body.flags.0;
        out[field::ROOT_ID].copy_from_slice(&body.root_id.to_be_bytes());
        out[field::ROOT_PATH_COST].copy_from_slice(&body.root_path_cost.to_be_bytes());
        out[field::BRIDGE_ID].copy_from_slice(&body.bridge_id.to_be_bytes());
        out[field::PORT_ID].copy_from_slice(&body.port_id.to_be_bytes());
        out[field::MESSAGE_AGE].copy_from_slice(&body.message_age.to_be_bytes());
        out[field::MAX_AGE].copy_from_slice(&body.max_age.to_be_bytes());
        out[field::HELLO_TIME].copy_from_slice(&body.hello_time.to_be_bytes());
        out[field::FORWARD_DELAY].copy_from_slice(&body.forward_delay.to_be_bytes());
    }

    /// A whole Ethernet frame: bridge group destination, `src`, 802.3 length,
    /// LLC, the BPDU. Not padded to 60 octets (the port or the kernel pads).
    pub fn to_frame(&self, src: Mac) -> Vec<u8> {
        let n = self.bpdu_len();
        let mut f = vec![0u8; HEADER_LEN + n];
        f[field::DST].copy_from_slice(&BRIDGE_GROUP.0);
        f[field::SRC].copy_from_slice(&src.0);
        f[field::LENGTH].copy_from_slice(&((LLC.len() + n) as u16).to_be_bytes());
        f[field::LLC].copy_from_slice(&LLC);
        self.emit(&mut f[field::BPDU..]);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Mac = Mac([0x02, 0, 0, 0, 0, 0x11]);

    fn body() -> BpduBody {
        BpduBody {
            flags: Flags(0),
            root_id: 0x8000_0200_0000_0001,
            root_path_cost: 4,
            bridge_id: 0x8000_0200_0000_0011,
            port_id: 0x8002,
            message_age: SECOND,
            max_age: 20 * SECOND,
            hello_time: 2 * SECOND,
            forward_delay: 15 * SECOND,
        }
    }

    /// A Configuration BPDU as a Linux bridge sends it (bytes from a capture
    /// layout: 802.3 length 0x0026, LLC 42 42 03, 35 octets, padded to 60).
    fn kernel_config() -> Vec<u8> {
        let mut f = vec![
            0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x11, // src
            0x00, 0x26, // length 38
            0x42, 0x42, 0x03, // LLC
            0x00, 0x00, 0x00, 0x00, // protocol, version 0, type config
            0x81, // flags: TC-ack, TC
            0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // root
            0x00, 0x00, 0x00, 0x04, // cost
            0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x11, // bridge
            0x80, 0x02, // port
            0x01, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00, // timers
        ];
        f.resize(60, 0);
        f
    }

    #[test]
    fn kernel_config_bpdu_decodes() {
        let b = Bpdu::parse_frame(&kernel_config()).unwrap();
        let mut want = body();
        want.flags = Flags(0x81);
        assert_eq!(b, Bpdu::Config(want));
        let Bpdu::Config(got) = b else { unreachable!() };
        assert!(got.flags.tc() && got.flags.tc_ack());
    }

    #[test]
    fn config_round_trips_byte_exact() {
        let mut b = body();
        b.flags = Flags(0x81);
        let f = Bpdu::Config(b).to_frame(SRC);
        assert_eq!(f.len(), 17 + 35);
        assert_eq!(f[..], kernel_config()[..52]);
    }

    #[test]
    fn rst_layout() {
        let mut b = body();
        b.flags = Flags(0)
            .with_role(WireRole::Designated)
            .with(Flags::PROPOSAL, true)
            .with(Flags::LEARNING, true);
        let f = Bpdu::Rst(b).to_frame(SRC);
        assert_eq!(f.len(), 17 + 36);
        assert_eq!(&f[12..14], &[0x00, 39]);
        assert_eq!(&f[17..21], &[0, 0, 2, 2]);
        assert_eq!(f[21], 0x1e);
        assert_eq!(f[52], 0, "Version 1 Length");
        assert_eq!(Bpdu::parse_frame(&f).unwrap(), Bpdu::Rst(b));
        let fl = b.flags;
        assert_eq!(fl.role(), WireRole::Designated);
        assert!(fl.proposal() && fl.learning() && !fl.forwarding() && !fl.agreement());
    }

    #[test]
    fn tcn_layout() {
        let f = Bpdu::Tcn.to_frame(SRC);
        assert_eq!(f.len(), 21);
        assert_eq!(&f[12..], &[0, 7, 0x42, 0x42, 3, 0, 0, 0, 0x80]);
        let mut padded = f.clone();
        padded.resize(60, 0);
        assert_eq!(Bpdu::parse_frame(&padded).unwrap(), Bpdu::Tcn);
    }

    #[test]
    fn mstp_bpdu_reads_as_rst() {
        let mut f = Bpdu::Rst(body()).to_frame(SRC);
        f[19] = 3; // MSTP version
        f.extend_from_slice(&[0; 64]);
        let len = (f.len() - 14) as u16;
        f[12..14].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(Bpdu::parse_frame(&f), Ok(Bpdu::Rst(_))));
    }

    #[test]
    fn malformed_frames() {
        let good = kernel_config();
        let e = |f: &[u8]| Bpdu::parse_frame(f).unwrap_err();
        assert_eq!(e(&good[..20]), BpduError::Short);
        assert_eq!(e(&[]), BpduError::Short);
        let mut f = good.clone();
        f[5] = 0x0e;
        assert_eq!(e(&f), BpduError::NotBridgeGroup);
        let mut f = good.clone();
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(e(&f), BpduError::NotLlc);
        let mut f = good.clone();
        f[16] = 0x13;
        assert_eq!(e(&f), BpduError::NotLlc);
        // Length beyond the frame; length too short for a config BPDU.
        let mut f = good.clone();
        f[12..14].copy_from_slice(&[0x00, 0x60]);
        assert_eq!(e(&f), BpduError::BadLength);
        let mut f = good.clone();
        f[13] = 20;
        assert_eq!(e(&f), BpduError::BadLength);
        // Truncated body with a truthful length.
        let mut f = good[..40].to_vec();
        f[13] = (40 - 14) as u8;
        assert_eq!(e(&f), BpduError::BadLength);
        let mut f = good.clone();
        f[18] = 1;
        assert_eq!(e(&f), BpduError::WrongProtocol);
        let mut f = good.clone();
        f[20] = 0x33;
        assert_eq!(e(&f), BpduError::UnknownType);
        let mut f = Bpdu::Rst(body()).to_frame(SRC);
        f[19] = 1;
        assert_eq!(e(&f), BpduError::WrongVersion);
        // Message age at max age is expired information, not absurd; a
        // message age beyond any max age and an absurd max age are.
        let mut f = good.clone();
        f[44..46].copy_from_slice(&[0x14, 0x00]);
        assert!(Bpdu::parse_frame(&f).is_ok());
        let mut f = good.clone();
        f[44..46].copy_from_slice(&[0x29, 0x00]);
        assert_eq!(e(&f), BpduError::AbsurdTimers);
        let mut f = good.clone();
        f[46..48].copy_from_slice(&[0x05, 0x00]);
        assert_eq!(e(&f), BpduError::AbsurdTimers);
        let mut f = good.clone();
        f[46..48].copy_from_slice(&[0xff, 0x00]);
        assert_eq!(e(&f), BpduError::AbsurdTimers);
    }

    #[test]
    fn error_names_are_distinct_labels() {
        let mut names: Vec<_> = BpduError::ALL.iter().map(|e| e.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), BpduError::ALL.len());
    }

    #[test]
    fn every_truncation_and_byte_flip_is_handled() {
        let frames = [
            kernel_config(),
            Bpdu::Rst(body()).to_frame(SRC),
            Bpdu::Tcn.to_frame(SRC),
        ];
        for f in &frames {
            for n in 0..=f.len() {
                let _ = Bpdu::parse_frame(&f[..n]);
            }
            for i in 0..f.len() {
                for v in [0u8, 0x7f, 0x80, 0xff] {
                    let mut g = f.clone();
                    g[i] = v;
                    let _ = Bpdu::parse_frame(&g);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = Bpdu::parse_frame(&bytes);
        }

        #[test]
        fn parse_never_panics_on_bpdu_like(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..60), len in 0u16..0x700) {
            let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1];
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&LLC);
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(&tail);
            let _ = Bpdu::parse_frame(&f);
        }

        #[test]
        fn body_round_trips(flags in 0u8.., root in 0u64.., cost in 0u32.., br in 0u64.., port in 0u16..,
                            age in 0u16..(19 * SECOND), hello in 0u16..MAX_HELLO, fd in 0u16..MAX_FORWARD_DELAY) {
            let b = BpduBody { flags: Flags(flags), root_id: root, root_path_cost: cost, bridge_id: br,
                port_id: port, message_age: age, max_age: 20 * SECOND, hello_time: hello, forward_delay: fd };
            proptest::prop_assert_eq!(Bpdu::parse_frame(&Bpdu::Rst(b).to_frame(SRC)).unwrap(), Bpdu::Rst(b));
        }
    }
}
