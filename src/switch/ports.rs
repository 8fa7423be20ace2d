//! Port identities, port sets, VLAN sets and per-port configuration as the
//! forwarding core sees them.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Most ports one switch holds. Port sets are fixed-size bitmaps so a
/// decision never allocates.
pub const MAX_PORTS: usize = 256;

/// Index of a port in the switch (0..MAX_PORTS).
pub type PortId = u16;

/// A [`PortSet`] held as atomics, for flags that readers test per frame
/// while the control plane changes them (port up/down, spanning-tree
/// states, mirror outputs, tapped ports). Each word is read and written
/// with relaxed ordering.
pub struct AtomicPortSet([AtomicU64; MAX_PORTS / 64]);

impl AtomicPortSet {
    pub fn empty() -> AtomicPortSet {
        AtomicPortSet(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    pub fn load(&self) -> PortSet {
        PortSet::from_words(std::array::from_fn(|i| self.0[i].load(Relaxed)))
    }

    /// Replaces the whole set (word by word: a reader may see a mix of
    /// the old and the new set for an instant).
    pub fn store(&self, set: PortSet) {
        for (w, v) in self.0.iter().zip(set.0) {
            w.store(v, Relaxed);
        }
    }

    /// Whether `p` is in the set: one load.
    #[inline]
    pub fn contains(&self, p: PortId) -> bool {
        (p as usize) < MAX_PORTS && self.0[p as usize / 64].load(Relaxed) & (1 << (p % 64)) != 0
    }

    pub fn set(&self, p: PortId, on: bool) {
        self.swap(p, on);
    }

    /// Sets `p`'s flag; returns what it was.
    pub fn swap(&self, p: PortId, on: bool) -> bool {
        let bit = 1u64 << (p % 64);
        let old = if on {
            self.0[p as usize / 64].fetch_or(bit, Relaxed)
        } else {
            self.0[p as usize / 64].fetch_and(!bit, Relaxed)
        };
        old & bit != 0
    }
}

impl Default for AtomicPortSet {
    fn default() -> AtomicPortSet {
        AtomicPortSet::empty()
    }
}

/// A set of ports as a fixed bitmap.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PortSet([u64; MAX_PORTS / 64]);

impl PortSet {
    pub const EMPTY: PortSet = PortSet([0; MAX_PORTS / 64]);

    pub fn single(p: PortId) -> PortSet {
        let mut s = PortSet::EMPTY;
        s.insert(p);
        s
    }

    pub fn insert(&mut self, p: PortId) {
        self.0[p as usize / 64] |= 1 << (p % 64);
    }

    pub fn remove(&mut self, p: PortId) {
        self.0[p as usize / 64] &= !(1 << (p % 64));
    }

    pub fn contains(&self, p: PortId) -> bool {
        (p as usize) < MAX_PORTS && self.0[p as usize / 64] & (1 << (p % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn and(self, o: PortSet) -> PortSet {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= b;
        }
        r
    }

    pub fn or(self, o: PortSet) -> PortSet {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a |= b;
        }
        r
    }

    pub fn and_not(self, o: PortSet) -> PortSet {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
        r
    }

    /// Ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = PortId> + '_ {
        self.0.iter().enumerate().flat_map(|(i, w)| {
            let mut w = *w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some((i * 64) as PortId + b as PortId)
            })
        })
    }

    pub(crate) fn from_words(w: [u64; MAX_PORTS / 64]) -> PortSet {
        PortSet(w)
    }
}

impl FromIterator<PortId> for PortSet {
    fn from_iter<I: IntoIterator<Item = PortId>>(it: I) -> Self {
        let mut s = PortSet::EMPTY;
        for p in it {
            s.insert(p);
        }
        s
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Highest usable VLAN id (4095 is reserved).
pub const MAX_VID: u16 = 4094;

/// A VLAN id a port can be a member of: 1 to 4094 (0 in a tag means "no
/// VLAN", 4095 is reserved). Checked where it is made — from a config
/// file or a request ([`TryFrom<u16>`], serde), a command line
/// ([`FromStr`](std::str::FromStr)) — so nothing past that checks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Vid(u16);

/// A number that is not a VLAN id, as it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a VLAN id (1-4094)")]
pub struct VidError(String);

impl Vid {
    /// VLAN 1, the default VLAN of every port.
    pub const ONE: Vid = Vid(1);

    pub fn new(vid: u16) -> Result<Vid, VidError> {
        if (1..=MAX_VID).contains(&vid) {
            Ok(Vid(vid))
        } else {
            Err(VidError(vid.to_string()))
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for Vid {
    type Error = VidError;
    fn try_from(vid: u16) -> Result<Vid, VidError> {
        Vid::new(vid)
    }
}

impl From<Vid> for u16 {
    fn from(vid: Vid) -> u16 {
        vid.0
    }
}

impl std::str::FromStr for Vid {
    type Err = VidError;
    fn from_str(s: &str) -> Result<Vid, VidError> {
        let s = s.trim();
        s.parse::<u16>()
            .ok()
            .and_then(|v| Vid::new(v).ok())
            .ok_or_else(|| VidError(s.to_string()))
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why VLAN settings are refused: the one wording of the VLAN rules, for
/// config files, requests and programs alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VlanError {
    #[error(transparent)]
    Vid(#[from] VidError),
    #[error("VLAN range `{0}` is backwards")]
    Backwards(String),
    #[error("a trunk needs allowed VLANs or a native VLAN")]
    EmptyTrunk,
}

/// A set of VLAN ids 1..=4094 as a bitmap. Written (config, requests)
/// as a list of ids and ranges: "10,20-30".
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VlanSet(Box<[u64; 64]>);

impl Default for VlanSet {
    fn default() -> Self {
        VlanSet(Box::new([0; 64]))
    }
}

impl VlanSet {
    pub fn insert(&mut self, vid: u16) {
        self.0[(vid as usize & 0xfff) / 64] |= 1 << (vid % 64);
    }

    pub fn contains(&self, vid: u16) -> bool {
        self.0[(vid as usize & 0xfff) / 64] & (1 << (vid % 64)) != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=MAX_VID).filter(|v| self.contains(*v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Parses "10,20-30,100" (ids 1..=4094).
    pub fn parse(s: &str) -> Result<VlanSet, VlanError> {
        let mut set = VlanSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<Vid>()?, b.parse::<Vid>()?),
                None => {
                    let v = part.parse::<Vid>()?;
                    (v, v)
                }
            };
            if lo > hi {
                return Err(VlanError::Backwards(part.to_string()));
            }
            for v in lo.get()..=hi.get() {
                set.insert(v);
            }
        }
        Ok(set)
    }
}

impl std::str::FromStr for VlanSet {
    type Err = VlanError;
    fn from_str(s: &str) -> Result<VlanSet, VlanError> {
        VlanSet::parse(s)
    }
}

impl TryFrom<String> for VlanSet {
    type Error = VlanError;
    fn try_from(s: String) -> Result<VlanSet, VlanError> {
        VlanSet::parse(&s)
    }
}

impl From<VlanSet> for String {
    fn from(s: VlanSet) -> String {
        s.to_string()
    }
}

impl fmt::Display for VlanSet {
    /// Compact range form, e.g. "10,20-30".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut v = 1u16;
        while v <= MAX_VID {
            if self.contains(v) {
                let start = v;
                while v < MAX_VID && self.contains(v + 1) {
                    v += 1;
                }
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                if start == v {
                    write!(f, "{start}")?;
                } else {
                    write!(f, "{start}-{v}")?;
                }
            }
            v += 1;
        }
        Ok(())
    }
}

impl fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VlanSet({self})")
    }
}

/// How a port takes part in VLANs when the switch filters VLANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// One VLAN, untagged on the wire: ingress frames take `vid`, egress
    /// frames leave untagged.
    Access { vid: Vid },
    /// Tagged frames of the `allowed` VLANs. With `native`, untagged ingress
    /// frames take that VLAN and its frames leave untagged.
    Trunk {
        allowed: VlanSet,
        native: Option<Vid>,
    },
}

impl Default for VlanMode {
    fn default() -> Self {
        VlanMode::Access { vid: Vid::ONE }
    }
}

impl VlanMode {
    /// A trunk of `allowed` VLANs and an optional native VLAN; it needs
    /// one or the other.
    pub fn trunk(allowed: VlanSet, native: Option<Vid>) -> Result<VlanMode, VlanError> {
        let mode = VlanMode::Trunk { allowed, native };
        mode.check()?;
        Ok(mode)
    }

    /// The rule the VLAN ids themselves do not carry: a trunk carries
    /// some VLAN.
    pub fn check(&self) -> Result<(), VlanError> {
        match self {
            VlanMode::Trunk { allowed, native } if allowed.is_empty() && native.is_none() => {
                Err(VlanError::EmptyTrunk)
            }
            _ => Ok(()),
        }
    }

    /// The VLAN untagged and priority-tagged ingress frames are put in.
    pub fn untagged_vlan(&self) -> Option<Vid> {
        match self {
            VlanMode::Access { vid } => Some(*vid),
            VlanMode::Trunk { native, .. } => *native,
        }
    }

    /// [`VlanMode::untagged_vlan`] as the number frames carry.
    pub fn pvid(&self) -> Option<u16> {
        self.untagged_vlan().map(Vid::get)
    }

    /// Whether the port is a member of `vid`.
    pub fn allows(&self, vid: u16) -> bool {
        match self {
            VlanMode::Access { vid: v } => v.get() == vid,
            VlanMode::Trunk { allowed, native } => {
                allowed.contains(vid) || native.is_some_and(|n| n.get() == vid)
            }
        }
    }

    /// Whether frames of `vid` leave this port untagged.
    pub fn egress_untagged(&self, vid: u16) -> bool {
        self.pvid() == Some(vid)
    }
}

impl fmt::Display for VlanMode {
    /// As `vswitchctl show` lists it: `access 10`, `trunk 10,20-30 native 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VlanMode::Access { vid } => write!(f, "access {vid}"),
            VlanMode::Trunk { allowed, native } => {
                write!(f, "trunk {allowed}")?;
                match native {
                    Some(n) => write!(f, " native {n}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Most MACs one port may learn: at least one (a port that should learn
/// nothing has `learning` off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct MacLimit(NonZeroUsize);

/// A MAC limit of zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a mac-limit of 0 would learn nothing; set learning = false instead")]
pub struct MacLimitError;

impl MacLimit {
    pub fn new(n: usize) -> Result<MacLimit, MacLimitError> {
        NonZeroUsize::new(n).map(MacLimit).ok_or(MacLimitError)
    }

    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl TryFrom<usize> for MacLimit {
    type Error = MacLimitError;
    fn try_from(n: usize) -> Result<MacLimit, MacLimitError> {
        MacLimit::new(n)
    }
}

impl From<MacLimit> for usize {
    fn from(l: MacLimit) -> usize {
        l.get()
    }
}

impl fmt::Display for MacLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A port's spanning-tree path cost: 1 to 200 000 000 (802.1D-2004
/// 17.14). Unset, the cost comes from the link speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct StpCost(u32);

/// A path cost out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stp-cost {0}: must be 1 to 200000000 (802.1D-2004 17.14)")]
pub struct StpCostError(pub u32);

impl StpCost {
    pub fn new(n: u32) -> Result<StpCost, StpCostError> {
        if (1..=200_000_000).contains(&n) {
            Ok(StpCost(n))
        } else {
            Err(StpCostError(n))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for StpCost {
    type Error = StpCostError;
    fn try_from(n: u32) -> Result<StpCost, StpCostError> {
        StpCost::new(n)
    }
}

impl From<StpCost> for u32 {
    fn from(c: StpCost) -> u32 {
        c.0
    }
}

impl fmt::Display for StpCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A port's spanning-tree priority: 0 to 240 in steps of 16 (802.1D-2004
/// 17.13.10); 128 by default. Lower wins a tie between two ports of one
/// bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct StpPriority(u8);

/// A port priority out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stp-priority {0}: must be a multiple of 16 from 0 to 240")]
pub struct StpPriorityError(pub u32);

impl StpPriority {
    pub const DEFAULT: StpPriority = StpPriority(128);

    pub fn new(n: u32) -> Result<StpPriority, StpPriorityError> {
        if n <= 240 && n.is_multiple_of(16) {
            Ok(StpPriority(n as u8))
        } else {
            Err(StpPriorityError(n))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u32> for StpPriority {
    type Error = StpPriorityError;
    fn try_from(n: u32) -> Result<StpPriority, StpPriorityError> {
        StpPriority::new(n)
    }
}

impl From<StpPriority> for u32 {
    fn from(p: StpPriority) -> u32 {
        u32::from(p.0)
    }
}

impl fmt::Display for StpPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Calls the macro `$then` with every port flag: its field, type, default
/// and what it does, as `/// doc  field: Type = default,` entries.
///
/// This is the one list of port flags. [`PortFlags`], the `[[port]]` keys
/// of a config file (`config::PortSection`), the changes `port set` sends
/// (`control::protocol::FlagChanges`) and vswitchctl's options and its
/// listing in `show` are all made from it: a new flag is one entry here,
/// plus what it does in the forwarding core.
#[macro_export]
macro_rules! port_flags {
    ($then:ident) => {
        $then! {
            /// Learn source MACs of frames received here.
            learning: bool = true,
            /// Receive flooded unknown-unicast frames.
            flood: bool = true,
            /// Receive flooded multicast frames.
            mcast_flood: bool = true,
            /// Receive flooded broadcast frames.
            bcast_flood: bool = true,
            /// Isolated ports never forward to other isolated ports.
            isolated: bool = false,
            /// Frames may go back out of the port they came in on.
            hairpin: bool = false,
            /// Most MACs this port may learn; beyond it new MACs are not
            /// learned (their frames still flood), like the kernel's
            /// `fdb_max_learned`. None by default; a change to 0 removes it.
            mac_limit: Option<$crate::switch::MacLimit> = None,
            /// Rate limits, frames per second, on broadcast, multicast and
            /// unknown unicast received here (none by default).
            storm_control: $crate::switch::StormControl = $crate::switch::StormControl::OFF,
            /// Spanning-tree path cost (none: from the link speed).
            stp_cost: Option<$crate::switch::StpCost> = None,
            /// Spanning-tree port priority.
            stp_priority: $crate::switch::StpPriority = $crate::switch::StpPriority::DEFAULT,
            /// An edge port (a host, not a bridge): forwards at once when
            /// spanning tree runs, until a BPDU arrives on it.
            stp_edge: bool = false,
            /// A BPDU received on this port disables it (until `vswitchctl
            /// stp enable`).
            bpdu_guard: bool = false,
            /// Whether the port leads to a multicast router: `off`, `auto`
            /// (while queries or PIM hellos arrive on it) or `on`, like the
            /// kernel's `multicast_router` 0 / 1 / 2.
            mcast_router: $crate::mcast::RouterMode = $crate::mcast::RouterMode::Auto,
            /// A leave or done removes the port from the group at once
            /// (one host behind the port), like the kernel's
            /// `mcast_fast_leave`.
            mcast_fast_leave: bool = false,
        }
    };
}

macro_rules! define_port_flags {
    ($( $(#[$doc:meta])* $flag:ident: $ty:ty = $default:expr, )*) => {
        /// How a port forwards beyond its VLANs, mirroring the Linux
        /// bridge's port flags. The flags are listed once, in
        /// [`port_flags!`](crate::port_flags).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct PortFlags {
            $( $(#[$doc])* pub $flag: $ty, )*
        }

        impl Default for PortFlags {
            fn default() -> PortFlags {
                PortFlags { $( $flag: $default, )* }
            }
        }
    };
}
crate::port_flags!(define_port_flags);

/// A port as the forwarding core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Name used in logs, metrics and the control tool.
    pub name: String,
    /// VLAN membership (used only when the switch filters VLANs).
    pub vlan: VlanMode,
    pub flags: PortFlags,
}

impl PortConfig {
    pub fn new(name: impl Into<String>) -> PortConfig {
        PortConfig {
            name: name.into(),
            vlan: VlanMode::default(),
            flags: PortFlags::default(),
        }
    }

    /// An access port of VLAN `vid` (panics if `vid` is not 1..=4094:
    /// for tests and programs with fixed settings).
    pub fn access(mut self, vid: u16) -> Self {
        self.vlan = VlanMode::Access {
            vid: Vid::new(vid).expect("valid VLAN id"),
        };
        self
    }

    /// A trunk (panics on a bad VLAN list or id, like
    /// [`PortConfig::access`]).
    pub fn trunk(mut self, allowed: &str, native: Option<u16>) -> Self {
        self.vlan = VlanMode::Trunk {
            allowed: VlanSet::parse(allowed).expect("valid VLAN list"),
            native: native.map(|n| Vid::new(n).expect("valid VLAN id")),
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_set_ops() {
        let mut s: PortSet = [0u16, 3, 64, 255].into_iter().collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 64, 255]);
        assert_eq!(s.len(), 4);
        s.remove(3);
        assert!(!s.contains(3));
        assert!(s.contains(255));
        assert!(!s.contains(300));
        let t = PortSet::single(64);
        assert_eq!(s.and(t), t);
        assert_eq!(s.and_not(t).iter().collect::<Vec<_>>(), vec![0, 255]);
    }

    #[test]
    fn vlan_set_parse_and_display() {
        let s = VlanSet::parse("10, 20-22,4094").unwrap();
        assert!(s.contains(10) && s.contains(21) && s.contains(4094));
        assert!(!s.contains(11));
        assert_eq!(s.to_string(), "10,20-22,4094");
        assert!(VlanSet::parse("0").is_err());
        assert!(VlanSet::parse("4095").is_err());
        assert!(VlanSet::parse("30-20").is_err());
        assert!(VlanSet::parse("x").is_err());
    }

    #[test]
    fn vlan_modes() {
        let a = PortConfig::new("a").access(10).vlan;
        assert_eq!(a.pvid(), Some(10));
        assert!(a.allows(10) && !a.allows(20));
        assert!(a.egress_untagged(10));
        let t = PortConfig::new("t").trunk("10,20", Some(30)).vlan;
        assert_eq!(t.pvid(), Some(30));
        assert!(t.allows(10) && t.allows(30) && !t.allows(40));
        assert!(!t.egress_untagged(10) && t.egress_untagged(30));
        let t = PortConfig::new("t").trunk("10", None).vlan;
        assert_eq!(t.pvid(), None);
        assert_eq!(
            VlanMode::trunk(VlanSet::default(), None),
            Err(VlanError::EmptyTrunk)
        );
        assert_eq!(a.to_string(), "access 10");
        assert_eq!(
            PortConfig::new("t")
                .trunk("10,20-22", Some(1))
                .vlan
                .to_string(),
            "trunk 10,20-22 native 1"
        );
    }

    #[test]
    fn vlan_ids_are_checked_where_they_are_made() {
        assert_eq!(Vid::new(4094).map(Vid::get), Ok(4094));
        for bad in [0, 4095, 5000] {
            let e = Vid::new(bad).unwrap_err().to_string();
            assert!(e.contains(&bad.to_string()) && e.contains("1-4094"), "{e}");
        }
        assert_eq!(" 10 ".parse::<Vid>().map(Vid::get), Ok(10));
        assert!("x".parse::<Vid>().unwrap_err().to_string().contains("`x`"));
        assert_eq!(
            serde_json::from_str::<Vid>("20").map(Vid::get).ok(),
            Some(20)
        );
        assert!(serde_json::from_str::<Vid>("4095").is_err());
        assert_eq!(serde_json::to_string(&Vid::ONE).unwrap(), "1");
        assert!(
            VlanSet::parse("30-20")
                .unwrap_err()
                .to_string()
                .contains("backwards")
        );
    }

    #[test]
    fn mac_limits_are_at_least_one() {
        assert_eq!(MacLimit::new(5).map(MacLimit::get), Ok(5));
        assert!(
            MacLimit::new(0)
                .unwrap_err()
                .to_string()
                .contains("learning = false")
        );
        assert!(serde_json::from_str::<MacLimit>("0").is_err());
        let f: PortFlags = serde_json::from_str(r#"{"mac_limit": 3}"#).unwrap();
        assert_eq!(f.mac_limit.map(MacLimit::get), Some(3));
        assert!(f.learning && f.flood && !f.isolated, "the rest at defaults");
    }
}
