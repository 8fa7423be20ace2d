//! Port identities, port sets, VLAN sets and per-port configuration as the
//! forwarding core sees them.

use std::fmt;

/// Most ports one switch holds. Port sets are fixed-size bitmaps so a
/// decision never allocates.
pub const MAX_PORTS: usize = 256;

/// Index of a port in the switch (0..MAX_PORTS).
pub type PortId = u16;

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

/// A set of VLAN ids 1..=4094 as a bitmap.
#[derive(Clone, PartialEq, Eq)]
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
    pub fn parse(s: &str) -> Result<VlanSet, String> {
        let mut set = VlanSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (parse_vid(a)?, parse_vid(b)?),
                None => {
                    let v = parse_vid(part)?;
                    (v, v)
                }
            };
            if lo > hi {
                return Err(format!("VLAN range `{part}` is backwards"));
            }
            for v in lo..=hi {
                set.insert(v);
            }
        }
        Ok(set)
    }
}

/// Parses one VLAN id, 1..=4094.
pub fn parse_vid(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(v) if (1..=MAX_VID).contains(&v) => Ok(v),
        _ => Err(format!("`{}` is not a VLAN id (1-4094)", s.trim())),
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
    Access { vid: u16 },
    /// Tagged frames of the `allowed` VLANs. With `native`, untagged ingress
    /// frames take that VLAN and its frames leave untagged.
    Trunk {
        allowed: VlanSet,
        native: Option<u16>,
    },
}

impl Default for VlanMode {
    fn default() -> Self {
        VlanMode::Access { vid: 1 }
    }
}

impl VlanMode {
    /// The VLAN untagged and priority-tagged ingress frames are put in.
    pub fn pvid(&self) -> Option<u16> {
        match self {
            VlanMode::Access { vid } => Some(*vid),
            VlanMode::Trunk { native, .. } => *native,
        }
    }

    /// Whether the port is a member of `vid`.
    pub fn allows(&self, vid: u16) -> bool {
        match self {
            VlanMode::Access { vid: v } => *v == vid,
            VlanMode::Trunk { allowed, native } => allowed.contains(vid) || *native == Some(vid),
        }
    }

    /// Whether frames of `vid` leave this port untagged.
    pub fn egress_untagged(&self, vid: u16) -> bool {
        self.pvid() == Some(vid)
    }
}

/// Per-port behaviour, mirroring the Linux bridge port flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Name used in logs, metrics and the control tool.
    pub name: String,
    /// VLAN membership (used only when the switch filters VLANs).
    pub vlan: VlanMode,
    /// Learn source MACs of frames received here.
    pub learning: bool,
    /// Receive flooded unknown-unicast frames.
    pub flood: bool,
    /// Receive flooded multicast frames.
    pub mcast_flood: bool,
    /// Receive flooded broadcast frames.
    pub bcast_flood: bool,
    /// Isolated ports never forward to other isolated ports.
    pub isolated: bool,
    /// Frames may go back out of the port they came in on.
    pub hairpin: bool,
    /// Most MACs this port may learn; beyond it new MACs are not learned
    /// (their frames still flood), like the kernel's `fdb_max_learned`.
    pub mac_limit: Option<usize>,
}

impl PortConfig {
    pub fn new(name: impl Into<String>) -> PortConfig {
        PortConfig {
            name: name.into(),
            vlan: VlanMode::default(),
            learning: true,
            flood: true,
            mcast_flood: true,
            bcast_flood: true,
            isolated: false,
            hairpin: false,
            mac_limit: None,
        }
    }

    pub fn access(mut self, vid: u16) -> Self {
        self.vlan = VlanMode::Access { vid };
        self
    }

    pub fn trunk(mut self, allowed: &str, native: Option<u16>) -> Self {
        self.vlan = VlanMode::Trunk {
            allowed: VlanSet::parse(allowed).expect("valid VLAN list"),
            native,
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
        let a = VlanMode::Access { vid: 10 };
        assert_eq!(a.pvid(), Some(10));
        assert!(a.allows(10) && !a.allows(20));
        assert!(a.egress_untagged(10));
        let t = PortConfig::new("t").trunk("10,20", Some(30)).vlan;
        assert_eq!(t.pvid(), Some(30));
        assert!(t.allows(10) && t.allows(30) && !t.allows(40));
        assert!(!t.egress_untagged(10) && t.egress_untagged(30));
        let t = PortConfig::new("t").trunk("10", None).vlan;
        assert_eq!(t.pvid(), None);
    }
}
