//! Per-worker counters. Each dataplane worker writes only its own block
//! (single writer: a relaxed load and store, no shared atomics on the hot
//! path); the metrics endpoint sums the blocks of all workers at scrape.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::switch::{DropReason, MAX_PORTS, PortId, StormClass};

/// Why a frame was dropped: a forwarding decision or an I/O outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Decision(DropReason),
    /// The egress queue was full (EAGAIN/ENOBUFS on send).
    QueueFull,
    /// Larger than the egress port's MTU (and not a GSO frame).
    TooBig,
    /// Could not be parsed or finished in software (bad virtio-net header,
    /// truncated read, GSO we cannot segment).
    Malformed,
    /// Any other I/O error on the port.
    IoError,
    /// Not sent: the egress port's link went down (EIO/ENETDOWN on
    /// write). An egress outcome, unlike the ingress decision `port_down`,
    /// so a port's received frames still add up.
    LinkDown,
    /// A frame for the control plane (a BPDU) found its queue full.
    ControlQueueFull,
    /// Over the ingress port's storm-control rate for its class.
    Storm(StormClass),
}

pub const N_REASONS: usize = DropReason::ALL.len() + 6 + StormClass::ALL.len();

impl Reason {
    pub fn all() -> impl Iterator<Item = Reason> {
        DropReason::ALL
            .iter()
            .map(|r| Reason::Decision(*r))
            .chain([
                Reason::QueueFull,
                Reason::TooBig,
                Reason::Malformed,
                Reason::IoError,
                Reason::ControlQueueFull,
                Reason::LinkDown,
            ])
            .chain(StormClass::ALL.map(Reason::Storm))
    }

    pub fn index(self) -> usize {
        let n = DropReason::ALL.len();
        match self {
            Reason::Decision(r) => r.index(),
            Reason::QueueFull => n,
            Reason::TooBig => n + 1,
            Reason::Malformed => n + 2,
            Reason::IoError => n + 3,
            Reason::ControlQueueFull => n + 4,
            Reason::LinkDown => n + 5,
            Reason::Storm(c) => n + 6 + c as usize,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Decision(r) => r.as_str(),
            Reason::QueueFull => "queue_full",
            Reason::TooBig => "too_big",
            Reason::Malformed => "malformed",
            Reason::IoError => "io_error",
            Reason::ControlQueueFull => "control_queue_full",
            Reason::LinkDown => "link_down",
            Reason::Storm(StormClass::Broadcast) => "storm_broadcast",
            Reason::Storm(StormClass::Multicast) => "storm_multicast",
            Reason::Storm(StormClass::UnknownUnicast) => "storm_unknown_unicast",
        }
    }
}

/// Counters of one port, written by one worker.
#[derive(Default)]
pub struct PortCounters {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub flooded: AtomicU64,
    /// Frames received here that the switch forwarded (to one port or
    /// flooded).
    pub forwarded: AtomicU64,
    /// Frames received here for the switch's own control plane (BPDUs).
    pub punted: AtomicU64,
    pub drops: [AtomicU64; N_REASONS],
}

/// Adds `n` to a counter that only this thread writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl PortCounters {
    fn reset(&self) {
        for c in [
            &self.rx_frames,
            &self.rx_bytes,
            &self.tx_frames,
            &self.tx_bytes,
            &self.flooded,
            &self.forwarded,
            &self.punted,
        ]
        .into_iter()
        .chain(self.drops.iter())
        {
            c.store(0, Relaxed);
        }
    }
}

/// One worker's counters for every port id.
pub struct WorkerCounters {
    ports: Box<[PortCounters]>,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            ports: (0..MAX_PORTS).map(|_| PortCounters::default()).collect(),
        }
    }
}

impl WorkerCounters {
    #[inline]
    pub fn port(&self, id: PortId) -> &PortCounters {
        &self.ports[id as usize]
    }

    #[inline]
    pub fn count_drop(&self, id: PortId, r: Reason) {
        bump(&self.ports[id as usize].drops[r.index()], 1);
    }

    /// Zeroes a port's counters (its id is being reused).
    pub fn reset(&self, id: PortId) {
        self.ports[id as usize].reset();
    }
}

/// The totals of one port over all workers.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortTotals {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub flooded: u64,
    pub forwarded: u64,
    pub punted: u64,
    pub drops: Vec<(&'static str, u64)>,
}

impl PortTotals {
    pub fn sum(workers: &[std::sync::Arc<WorkerCounters>], id: PortId) -> PortTotals {
        let mut t = PortTotals {
            drops: Reason::all().map(|r| (r.as_str(), 0)).collect(),
            ..PortTotals::default()
        };
        for w in workers {
            let p = w.port(id);
            t.rx_frames += p.rx_frames.load(Relaxed);
            t.rx_bytes += p.rx_bytes.load(Relaxed);
            t.tx_frames += p.tx_frames.load(Relaxed);
            t.tx_bytes += p.tx_bytes.load(Relaxed);
            t.flooded += p.flooded.load(Relaxed);
            t.forwarded += p.forwarded.load(Relaxed);
            t.punted += p.punted.load(Relaxed);
            for (i, d) in p.drops.iter().enumerate() {
                t.drops[i].1 += d.load(Relaxed);
            }
        }
        t
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_dense_and_distinct() {
        let all: Vec<_> = Reason::all().collect();
        assert_eq!(all.len(), N_REASONS);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = all.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), N_REASONS);
    }

    #[test]
    fn totals_sum_workers() {
        let a = std::sync::Arc::new(WorkerCounters::default());
        let b = std::sync::Arc::new(WorkerCounters::default());
        bump(&a.port(3).rx_frames, 2);
        bump(&b.port(3).rx_frames, 5);
        b.count_drop(3, Reason::TooBig);
        let t = PortTotals::sum(&[a.clone(), b], 3);
        assert_eq!(t.rx_frames, 7);
        assert_eq!(t.dropped(), 1);
        a.reset(3);
        assert_eq!(a.port(3).rx_frames.load(Relaxed), 0);
    }
}
