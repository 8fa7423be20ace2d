//! Checked, zero-copy views of the headers the switch reads and writes.

#![forbid(unsafe_code)]

pub mod bpdu;
pub mod checksum;
pub mod ethernet;
pub mod igmp;
pub mod mac;
pub mod stream;
pub mod vnet;
pub mod vxlan;

pub use ethernet::{EtherType, Frame, FrameError, Tag};
pub use mac::Mac;
