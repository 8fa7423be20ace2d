//! Copies of frames for port mirrors and `vswitchctl capture`.
//!
//! The control plane publishes a [`TapTable`]: which ports' received and
//! sent frames are copied, and where each copy goes (a mirror's output
//! port, or a capture's queue to a control-socket client). Workers look at
//! it only while [`Taps::active`] says a tap exists, so a switch with no
//! mirror and no capture pays one relaxed load per frame, and a port that
//! no tap selects pays one bit test more.
//!
//! A copy never waits: a mirror's output port is written like any egress
//! (non-blocking; a full queue drops the copy), and a capture's queue is
//! bounded (a full queue drops the copy). Either way the drop is counted
//! in the tap's [`TapStats`], never the mirrored traffic's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::switch::{AtomicPortSet, PortId, PortSet, VlanSet};

/// Which frames of a port a tap copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received on the port.
    In,
    /// Sent out of the port.
    Out,
    #[default]
    Both,
}

impl Direction {
    pub fn rx(self) -> bool {
        self != Direction::Out
    }
    pub fn tx(self) -> bool {
        self != Direction::In
    }

    /// The (`rx`, `tx`) port sets of a tap in this direction on `ports`.
    pub fn sides(self, ports: PortSet) -> (PortSet, PortSet) {
        let side = |on: bool| if on { ports } else { PortSet::EMPTY };
        (side(self.rx()), side(self.tx()))
    }
}

impl std::str::FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Direction, String> {
        match s {
            "in" | "rx" => Ok(Direction::In),
            "out" | "tx" => Ok(Direction::Out),
            "both" => Ok(Direction::Both),
            _ => Err(format!("`{s}`: a direction is in, out or both")),
        }
    }
}

/// What a tap copied and what it lost.
#[derive(Debug, Default)]
pub struct TapStats {
    pub copied: AtomicU64,
    /// Copies lost: the output port or the capture queue was full.
    pub dropped: AtomicU64,
}

/// One frame a capture took.
#[derive(Debug, Clone)]
pub struct Captured {
    pub port: PortId,
    /// `In` or `Out`.
    pub direction: Direction,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// The frame's length on the wire (before the snap length).
    pub length: usize,
    pub data: Vec<u8>,
}

/// Where a tap's copies go.
#[derive(Clone)]
pub enum TapOut {
    /// A mirror's output port.
    Port(PortId),
    /// A capture's bounded queue to its client.
    Capture(tokio::sync::mpsc::Sender<Captured>),
}

/// One mirror or capture.
#[derive(Clone)]
pub struct Tap {
    /// Frames received on these ports are copied.
    pub rx: PortSet,
    /// Frames sent out of these ports are copied.
    pub tx: PortSet,
    /// Only frames of these VLANs (none: every VLAN; a frame dropped
    /// before its VLAN is known matches only a tap without VLANs).
    pub vlans: Option<VlanSet>,
    /// Copy at most this many bytes of each frame.
    pub snaplen: Option<usize>,
    pub out: TapOut,
    pub stats: Arc<TapStats>,
    /// The mirror's name (none for a capture), for the metrics.
    pub mirror: Option<String>,
}

impl Tap {
    fn wants(&self, vid: Option<u16>) -> bool {
        match (&self.vlans, vid) {
            (None, _) => true,
            (Some(v), Some(vid)) => v.contains(vid),
            (Some(_), None) => false,
        }
    }

    /// The copy's bytes: `frame` cut at the snap length.
    pub fn cut<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        match self.snaplen {
            Some(n) if n < frame.len() => &frame[..n],
            _ => frame,
        }
    }
}

/// Every tap, as the workers read it.
#[derive(Clone, Default)]
pub struct TapTable {
    pub taps: Vec<Tap>,
    /// Union of the taps' `rx` and `tx`.
    rx: PortSet,
    tx: PortSet,
    /// Mirror output ports (they carry nothing but copies).
    outputs: PortSet,
}

impl TapTable {
    pub fn new(taps: Vec<Tap>) -> TapTable {
        let mut t = TapTable {
            taps,
            ..TapTable::default()
        };
        for tap in &t.taps {
            t.rx = t.rx.or(tap.rx);
            t.tx = t.tx.or(tap.tx);
            if let TapOut::Port(p) = tap.out {
                t.outputs.insert(p);
            }
        }
        t
    }

    pub fn outputs(&self) -> PortSet {
        self.outputs
    }

    /// The taps that copy a frame received on (`rx`) or sent out of port
    /// `p` in VLAN `vid`.
    pub fn matching(&self, p: PortId, rx: bool, vid: Option<u16>) -> impl Iterator<Item = &Tap> {
        self.taps.iter().filter(move |t| {
            (if rx {
                t.rx.contains(p)
            } else {
                t.tx.contains(p)
            }) && t.wants(vid)
        })
    }
}

/// The taps of a dataplane, shared by its workers and the control plane.
#[derive(Default)]
pub struct Taps {
    active: AtomicBool,
    /// The table's `rx` and `tx` port sets, so that a worker learns
    /// whether a port is tapped with one relaxed load, without touching
    /// the table.
    rx: AtomicPortSet,
    tx: AtomicPortSet,
    table: ArcSwap<TapTable>,
}

impl Taps {
    /// Whether any tap exists (the workers' per-frame check).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Whether frames received on `p` are copied (per frame: one load).
    #[inline]
    pub fn tapped_rx(&self, p: PortId) -> bool {
        self.active() && self.rx.contains(p)
    }

    /// Whether frames sent out of `p` are copied.
    #[inline]
    pub fn tapped_tx(&self, p: PortId) -> bool {
        self.active() && self.tx.contains(p)
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<TapTable>> {
        self.table.load()
    }

    /// Puts `table` in place.
    pub fn set(&self, table: TapTable) {
        let active = !table.taps.is_empty();
        self.rx.store(table.rx);
        self.tx.store(table.tx);
        self.table.store(Arc::new(table));
        self.active.store(active, Relaxed);
    }
}

/// A capture's timestamp: now, in nanoseconds since the Unix epoch.
pub fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(rx: &[PortId], tx: &[PortId], vlans: Option<&[u16]>) -> Tap {
        let mut r = PortSet::EMPTY;
        rx.iter().for_each(|&p| r.insert(p));
        let mut t = PortSet::EMPTY;
        tx.iter().for_each(|&p| t.insert(p));
        Tap {
            rx: r,
            tx: t,
            vlans: vlans.map(|v| {
                let mut s = VlanSet::default();
                v.iter().for_each(|&x| s.insert(x));
                s
            }),
            snaplen: Some(4),
            out: TapOut::Port(9),
            stats: Arc::default(),
            mirror: None,
        }
    }

    #[test]
    fn taps_select_by_port_direction_and_vlan() {
        let t = TapTable::new(vec![tap(&[1], &[], None), tap(&[2], &[2], Some(&[10]))]);
        let taps = Taps::default();
        taps.set(t.clone());
        assert!(taps.tapped_rx(1) && !taps.tapped_tx(1));
        assert!(taps.tapped_rx(2) && taps.tapped_tx(2));
        assert_eq!(t.matching(1, true, None).count(), 1);
        assert_eq!(t.matching(1, false, None).count(), 0);
        assert_eq!(t.matching(2, true, Some(10)).count(), 1);
        assert_eq!(t.matching(2, true, Some(20)).count(), 0);
        assert_eq!(t.matching(2, true, None).count(), 0);
        assert!(t.outputs().contains(9));
        assert_eq!(t.taps[0].cut(&[1, 2, 3, 4, 5, 6]), &[1, 2, 3, 4]);
    }

    #[test]
    fn an_empty_table_is_inactive() {
        let taps = Taps::default();
        assert!(!taps.active());
        taps.set(TapTable::new(vec![tap(&[1], &[], None)]));
        assert!(taps.active());
        assert!(taps.tapped_rx(1) && !taps.tapped_tx(1) && !taps.tapped_rx(2));
        taps.set(TapTable::default());
        assert!(!taps.active());
        assert!(!taps.tapped_rx(1));
    }
}
