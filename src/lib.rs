//! vswitch: a userspace Ethernet switch for Linux.
//!
//! - [`wire`]: checked, zero-copy frame views.
//! - [`switch`]: the pure forwarding core (FDB, VLANs, flooding rules).
//! - [`mcast`]: the multicast database and querier (IGMP/MLD snooping).

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod evpn;
pub mod mcast;
pub mod metrics;
pub mod os;
pub mod port;
pub mod registry;
pub mod stp;
pub mod switch;
pub mod wire;
