//! Checked, zero-copy views of the headers the switch reads and writes.

#![forbid(unsafe_code)]

pub mod ethernet;
pub mod mac;
pub mod stream;
pub mod vnet;

pub use ethernet::{EtherType, Frame, FrameError, Tag};
pub use mac::Mac;
