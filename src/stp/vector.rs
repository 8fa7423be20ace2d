//! Bridge and port identifiers, priority vectors and timer sets
//! (IEEE 802.1D-2004 9.2.5, 9.2.7, 17.5, 17.6).

use std::cmp::Ordering;
use std::fmt;

/// The 48 address bits of a bridge identifier.
pub const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_ffff;
/// The 12 port-number bits of a port identifier (9.2.7).
pub const PORT_NUMBER_MASK: u16 = 0x0fff;

/// A bridge identifier (9.2.5): 4 bits of priority, 12 bits of system id
/// extension (always 0 here), 48 bits of MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BridgeId(pub u64);

impl BridgeId {
    pub fn new(priority: u16, mac: [u8; 6]) -> BridgeId {
        let m = mac.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        BridgeId(((priority as u64) << 48) | m)
    }
    pub fn priority(self) -> u16 {
        (self.0 >> 48) as u16
    }
    pub fn address(self) -> u64 {
        self.0 & ADDRESS_MASK
    }
}

/// `8000.020000000001`: priority in hex, a dot, the address in hex (the
/// form Open vSwitch and most switches print).
impl fmt::Display for BridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}.{:012x}", self.priority(), self.address())
    }
}

impl fmt::Debug for BridgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for BridgeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A port identifier (9.2.7): priority in the top 4 bits, port number below.
pub fn port_identifier(priority: u8, number: u16) -> u16 {
    ((priority as u16 >> 4) << 12) | (number & PORT_NUMBER_MASK)
}

/// A priority vector (17.5) without its fifth component (the receiving
/// port), which only root selection uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PriorityVector {
    pub root: BridgeId,
    pub root_path_cost: u32,
    pub designated_bridge: BridgeId,
    pub designated_port: u16,
}

/// How a message priority vector relates to a port priority vector (17.6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cmp {
    Superior,
    Same,
    Inferior,
}

impl PriorityVector {
    fn key(&self) -> (BridgeId, u32, BridgeId, u16) {
        (
            self.root,
            self.root_path_cost,
            self.designated_bridge,
            self.designated_port,
        )
    }

    /// Lexicographic order, lower is better.
    pub fn order(&self, other: &PriorityVector) -> Ordering {
        self.key().cmp(&other.key())
    }

    /// 17.6: `self` (a message priority vector) is the same as, superior to,
    /// or inferior to `port` (a port priority vector). A message from the
    /// same designated bridge address and port number replaces the port's
    /// information even when worse: it is superior.
    pub fn compare(&self, port: &PriorityVector) -> Cmp {
        if self == port {
            Cmp::Same
        } else if self.order(port) == Ordering::Less
            || (self.designated_bridge.address() == port.designated_bridge.address()
                && self.designated_port & PORT_NUMBER_MASK
                    == port.designated_port & PORT_NUMBER_MASK)
        {
            Cmp::Superior
        } else {
            Cmp::Inferior
        }
    }
}

/// Timer values carried with a priority vector (17.19.15, 17.19.22), in
/// whole seconds as the state machines use them (17.13).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Times {
    pub message_age: u16,
    pub max_age: u16,
    pub hello_time: u16,
    pub forward_delay: u16,
}

/// A wire timer (1/256 s) to whole seconds, rounded to the nearest.
pub fn from_wire(v: u16) -> u16 {
    ((v as u32 + 128) / 256) as u16
}

/// Whole seconds to a wire timer (1/256 s), saturating.
pub fn to_wire(secs: u16) -> u16 {
    secs.saturating_mul(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(root: u64, cost: u32, bridge: u64, port: u16) -> PriorityVector {
        PriorityVector {
            root: BridgeId(root),
            root_path_cost: cost,
            designated_bridge: BridgeId(bridge),
            designated_port: port,
        }
    }

    #[test]
    fn ids() {
        let id = BridgeId::new(0x8000, [2, 0, 0, 0, 0, 1]);
        assert_eq!(id.0, 0x8000_0200_0000_0001);
        assert_eq!(id.to_string(), "8000.020000000001");
        assert_eq!(port_identifier(128, 1), 0x8001);
        assert_eq!(port_identifier(0, 256), 0x0100);
        assert_eq!(port_identifier(240, 0xfff), 0xffff);
    }

    #[test]
    fn comparisons() {
        let port = v(1, 10, 5, 0x8001);
        assert_eq!(v(1, 10, 5, 0x8001).compare(&port), Cmp::Same);
        assert_eq!(v(0, 99, 9, 0x8009).compare(&port), Cmp::Superior);
        assert_eq!(v(1, 9, 9, 0x8009).compare(&port), Cmp::Superior);
        assert_eq!(v(1, 11, 4, 0x8001).compare(&port), Cmp::Inferior);
        // Same designated bridge address and port number: replaces.
        assert_eq!(v(2, 11, 5, 0x8001).compare(&port), Cmp::Superior);
        assert_eq!(
            v(2, 11, 0x9000_0000_0000_0005, 0x4001).compare(&port),
            Cmp::Superior
        );
    }

    #[test]
    fn wire_times() {
        assert_eq!(from_wire(512), 2);
        assert_eq!(from_wire(383), 1);
        assert_eq!(from_wire(384), 2);
        assert_eq!(from_wire(5), 0);
        assert_eq!(to_wire(15), 0x0f00);
        assert_eq!(to_wire(u16::MAX), u16::MAX);
    }
}
