//! BGP EVPN (RFC 7432, RFC 8365) through GoBGP: vswitchd's `vxlan:` ports
//! with `evpn = true` join a BGP EVPN fabric. vswitchd speaks no BGP: it
//! drives a GoBGP daemon (`gobgpd`) through its gRPC API, which holds the
//! BGP sessions (with FRR, route reflectors, other vswitchd hosts).
//!
//! - [`route`]: the routes as plain values (type 2 MAC/IP, type 3
//!   inclusive multicast), route distinguisher and target, MAC mobility;
//! - [`reconcile`]: the pure decisions: local MACs, the fabric's routes
//!   and what was done so far in, routes to add or withdraw and flood-list
//!   and FDB changes out;
//! - [`codec`]: routes to and from GoBGP's API paths;
//! - [`gobgp`]: the generated gRPC client (proto/gobgp, build.rs);
//! - [`local`]: the switch side: EVPN segments and local MACs read from
//!   the dataplane, flood lists and remote MACs written to it;
//! - [`agent`]: the tokio task that connects to GoBGP, retries with
//!   backoff, and runs a reconcile round every second;
//! - [`status`]: what `vswitchctl evpn show` and the metrics report.
//!
//! Nothing here touches the dataplane's hot path: the agent reads the
//! FDB's snapshot once a second, swaps flood lists whole and installs
//! remote MACs as FDB entries of origin `evpn`.

#![forbid(unsafe_code)]

pub mod agent;
pub mod codec;
pub mod gobgp;
pub mod local;
pub mod reconcile;
pub mod route;
pub mod status;

use std::net::{Ipv4Addr, SocketAddr};

/// The checked `[evpn]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvpnConfig {
    /// GoBGP's gRPC address.
    pub gobgp: SocketAddr,
    /// Route targets are `asn:VNI`.
    pub asn: u32,
    /// Route distinguishers are `router-id:VNI`.
    pub router_id: Ipv4Addr,
}
