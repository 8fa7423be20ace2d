//! What the EVPN agent reports: the connection to GoBGP and, per segment,
//! routes sent and received and remote VTEPs (`vswitchctl evpn show`,
//! `vswitchd_evpn_*` metrics).

use std::net::IpAddr;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// `evpn show` as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvpnInfo {
    /// GoBGP's gRPC address.
    pub gobgp: String,
    /// Connected to GoBGP (its last call succeeded).
    pub connected: bool,
    pub asn: u32,
    pub router_id: String,
    /// The last error talking to GoBGP, while not connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Times the agent (re)connected and advertised everything.
    pub connects: u64,
    pub segments: Vec<SegmentInfo>,
}

/// One EVPN segment (`vxlan:` port with `evpn = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub port: String,
    pub vni: u32,
    /// Our VTEP address.
    pub vtep: IpAddr,
    pub rd: String,
    pub rt: String,
    /// Type-2 routes we advertise (our local MACs).
    pub macs_advertised: usize,
    /// Type-2 routes received and installed (remote MACs).
    pub macs_received: usize,
    /// Type-3 routes received: the VTEPs in the EVPN flood list.
    pub remote_vteps: Vec<IpAddr>,
}

/// Shared between the agent (writes) and the control socket and metrics
/// (read).
#[derive(Debug, Default)]
pub struct EvpnStatus {
    info: Mutex<EvpnInfo>,
}

impl EvpnStatus {
    pub fn new(info: EvpnInfo) -> EvpnStatus {
        EvpnStatus {
            info: Mutex::new(info),
        }
    }

    pub fn get(&self) -> EvpnInfo {
        self.info.lock().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut EvpnInfo)) {
        f(&mut self.info.lock());
    }
}
