//! Checked, zero-copy views of the headers the switch reads and writes.

pub mod ethernet;
pub mod mac;
pub mod vnet;

pub use ethernet::{EtherType, Frame, FrameError, Tag};
pub use mac::Mac;
