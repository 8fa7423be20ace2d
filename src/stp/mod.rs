//! Spanning tree: IEEE 802.1D-2004 clause 17 (RSTP) with legacy STP mode and
//! per-port fallback to STP BPDUs.
//!
//! Pure protocol code: no clock, no I/O, no threads. The caller
//!
//! - feeds every frame sent to 01:80:C2:00:00:00 to [`Bridge::receive`],
//! - calls [`Bridge::tick`] once a second (the standard's tick, 17.22),
//! - reports link changes with [`Bridge::set_link`],
//! - after each of those calls drains [`Bridge::take_events`] and applies
//!   the events in order: send [`Event::Transmit`] frames, apply
//!   [`Event::PortState`] to the forwarding core, [`Event::Flush`] the port's
//!   learned addresses, switch ageing with [`Event::FastAgeing`].
//!
//! Layout: [`config`] parameters and validation, [`vector`] identifiers and
//! priority vectors (17.5, 17.6), `port` per-port variables (17.17, 17.19),
//! [`bridge`] the [`Bridge`] and its API, `machines` one module per state
//! machine of 17.23–17.31 and the driver that runs them to a fixed point,
//! `sim` an in-process simulator of bridges and LANs for the tests.

#![forbid(unsafe_code)]

pub mod bridge;
pub mod config;
#[cfg(test)]
pub(crate) mod legacy;
pub(crate) mod machines;
pub(crate) mod port;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
pub mod vector;

pub use crate::wire::bpdu::BpduError;
pub use bridge::{Bridge, BridgeStatus, PortStatus};
pub use config::{BridgeConfig, Mode, PortStpConfig, StpConfigError, default_cost};
pub use port::{PortRole, PortState};
pub use vector::BridgeId;

/// The switch's port index.
pub type PortId = crate::switch::PortId;

/// What the caller must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send this whole Ethernet frame (dst 01:80:c2:00:00:00, src the port's
    /// MAC, 802.3 length, LLC, BPDU; not padded) out of `port`.
    Transmit { port: PortId, frame: Vec<u8> },
    /// The port's state changed. Within one batch, states that stop
    /// forwarding come before states that start it.
    PortState { port: PortId, state: PortState },
    /// Remove the addresses learned on this port (RSTP topology change:
    /// every port but edge ports and the one the change came from; also a
    /// port leaving the active topology).
    Flush { port: PortId },
    /// Legacy STP topology change (17.19.1): while `on`, learned addresses
    /// age out after the forward delay instead of the ageing time.
    FastAgeing { on: bool },
    /// A BPDU arrived on a port with BPDU guard: the port is disabled until
    /// [`Bridge::enable_port_after_guard`].
    GuardTripped { port: PortId },
    /// A topology change started (counted in [`BridgeStatus`]).
    TopologyChange,
}
