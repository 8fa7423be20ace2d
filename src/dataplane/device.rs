//! An open port as the dataplane drives it: the [`Port`], its link state
//! and how its worker reads it.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::port::Port;
use crate::switch::{PortId, Switch};

/// Port liveness as the dataplane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    /// Writes fail with EIO: the peer's link is down. Retried.
    LinkDown,
    /// The device disappeared.
    Gone,
}

/// The link states a device goes through (`LinkState` plus the retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Up = 0,
    Down = 1,
    Gone = 2,
    /// Link was down and is being tried again: forwards and reports as up;
    /// a write that works makes it up, a write that fails makes it down
    /// again without logging again.
    Probing = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Up,
            1 => Phase::Down,
            2 => Phase::Gone,
            _ => Phase::Probing,
        }
    }
}

/// How a worker reads a port at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// Readiness from epoll, then `read()` until empty (or a batch).
    Polled,
    /// Reads kept pending in the worker's io_uring (a busy TAP).
    Ring,
}

/// An open port attached to the switch. Shared by the registry's
/// snapshots and the workers' slots; its fd closes with the last holder.
///
/// Laid out by hand, aligned to a cache line: what a frame's way in and
/// out reads (the link state, then the port's kind and fd) sits in the
/// device's first 64 bytes, so a frame after a sleep touches one cold
/// line per port here, not two (the name, for logs only, comes last).
#[repr(C, align(64))]
pub struct Device {
    link: AtomicU8,
    reading: AtomicU8,
    /// The switch's id of the port (fixed for the device's life).
    pub id: PortId,
    /// The worker that polls it.
    pub worker: usize,
    pub port: Port,
    /// The port's name, for logs.
    pub name: String,
}

impl Device {
    /// A device for port `id`, polled by `worker`; its link starts down if
    /// the port can tell its peer is missing.
    pub fn new(port: Port, id: PortId, name: &str, worker: usize) -> Device {
        let down = port.carrier() == Some(false);
        Device {
            link: AtomicU8::new(if down { Phase::Down } else { Phase::Up } as u8),
            reading: AtomicU8::new(Reading::Polled as u8),
            id,
            worker,
            port,
            name: name.to_string(),
        }
    }

    pub fn link_state(&self) -> LinkState {
        match self.link() {
            Phase::Up | Phase::Probing => LinkState::Up,
            Phase::Gone => LinkState::Gone,
            Phase::Down => LinkState::LinkDown,
        }
    }

    /// How its worker reads it now.
    pub fn reading(&self) -> Reading {
        if self.reading.load(Relaxed) == Reading::Ring as u8 {
            Reading::Ring
        } else {
            Reading::Polled
        }
    }

    pub(super) fn set_reading(&self, r: Reading) {
        self.reading.store(r as u8, Relaxed);
    }

    fn link(&self) -> Phase {
        Phase::from_u8(self.link.load(Relaxed))
    }

    fn swap_link(&self, l: Phase) -> Phase {
        Phase::from_u8(self.link.swap(l as u8, Relaxed))
    }

    /// The link went down (a write failed with EIO/ENETDOWN, or the carrier
    /// dropped): the port stops forwarding and its learned MACs are flushed,
    /// like a bridge port whose link goes down. A gone port stays gone; a
    /// retry that fails again goes down quietly.
    pub fn link_down(&self, switch: &Switch, what: &str) {
        let prev = self.link.fetch_update(Relaxed, Relaxed, |s| {
            (s != Phase::Gone as u8).then_some(Phase::Down as u8)
        });
        match prev.map(Phase::from_u8) {
            Ok(Phase::Up) => {
                tracing::info!(port = self.name.as_str(), "{what}");
                switch.set_port_up(self.id, false);
            }
            Ok(Phase::Probing) => switch.set_port_up(self.id, false),
            _ => {}
        }
    }

    /// A frame came in from the peer: a port that was down is up again
    /// (a gone port stays gone). Returns whether it just came up.
    #[inline]
    pub(super) fn frame_received(&self, switch: &Switch) -> bool {
        let l = self.link();
        if l != Phase::Up && l != Phase::Gone {
            self.swap_link(Phase::Up);
            switch.set_port_up(self.id, true);
            tracing::info!(port = self.name.as_str(), "link up");
            return true;
        }
        false
    }

    /// A write went out: a link being retried is up again.
    #[inline]
    pub(super) fn frame_sent(&self) {
        if self.link() == Phase::Probing
            && self
                .link
                .compare_exchange(Phase::Probing as u8, Phase::Up as u8, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::info!(port = self.name.as_str(), "link up");
        }
    }

    /// Link down, and the port no longer says its peer is missing: try it
    /// again (forward to it; the next write decides).
    pub(super) fn retry(&self, switch: &Switch) {
        if self.link() == Phase::Down && self.port.carrier() != Some(false) {
            self.swap_link(Phase::Probing);
            switch.set_port_up(self.id, true);
        }
    }

    /// The device behind the port vanished: the port goes down for good
    /// (until the control plane re-attaches a new device).
    pub fn gone(&self, switch: &Switch) {
        if self.swap_link(Phase::Gone) != Phase::Gone {
            tracing::warn!(port = self.name.as_str(), "port device is gone; port down");
        }
        switch.set_port_up(self.id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_fields_and_a_small_ports_fd_share_the_first_line() {
        let dev = Device::new(crate::port::pair().unwrap().0.into(), 0, "p", 0);
        let base = &dev as *const Device as usize;
        assert_eq!(base % 64, 0, "aligned to a cache line");
        let Port::Pair(p) = &dev.port else {
            unreachable!()
        };
        let fd_at = p as *const _ as usize - base;
        assert!(fd_at + std::mem::size_of_val(p) <= 64, "fd at {fd_at}");
        assert!((&dev.link as *const _ as usize) - base < 8);
    }
}
