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
    /// Routes GoBGP holds from us for this VNI: the type-3 route and a
    /// type-2 route per local MAC.
    pub routes_advertised: usize,
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

/// The `vswitchd_evpn_*` metrics, read from the status at each scrape.
pub struct EvpnCollector {
    status: std::sync::Arc<EvpnStatus>,
    descs: Vec<prometheus::core::Desc>,
}

struct Families {
    up: prometheus::IntGauge,
    connects: prometheus::IntCounter,
    advertised: prometheus::IntGaugeVec,
    received: prometheus::IntGaugeVec,
    vteps: prometheus::IntGaugeVec,
}

impl Families {
    fn new() -> Families {
        use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts};
        let gv =
            |n: &str, h: &str| IntGaugeVec::new(Opts::new(n, h), &["port"]).expect("valid metric");
        Families {
            up: IntGauge::new(
                "vswitchd_evpn_gobgp_up",
                "1 while the EVPN agent's last call to GoBGP succeeded.",
            )
            .expect("valid metric"),
            connects: IntCounter::new(
                "vswitchd_evpn_gobgp_connects_total",
                "Times the EVPN agent connected to GoBGP and advertised everything.",
            )
            .expect("valid metric"),
            advertised: gv(
                "vswitchd_evpn_routes_advertised",
                "EVPN routes this segment advertises (its type-3 route and a type-2 route per local MAC).",
            ),
            received: gv(
                "vswitchd_evpn_routes_received",
                "EVPN routes in use for this segment (remote VTEPs' type-3 routes and installed type-2 routes).",
            ),
            vteps: gv(
                "vswitchd_evpn_remote_vteps",
                "Remote VTEPs in this segment's flood list from EVPN type-3 routes.",
            ),
        }
    }

    fn all(&self) -> Vec<&dyn prometheus::core::Collector> {
        vec![
            &self.up,
            &self.connects,
            &self.advertised,
            &self.received,
            &self.vteps,
        ]
    }
}

impl EvpnCollector {
    pub fn new(status: std::sync::Arc<EvpnStatus>) -> EvpnCollector {
        let descs = Families::new()
            .all()
            .into_iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        EvpnCollector { status, descs }
    }
}

impl prometheus::core::Collector for EvpnCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let f = Families::new();
        let i = self.status.get();
        f.up.set(i64::from(i.connected));
        f.connects.inc_by(i.connects);
        for s in &i.segments {
            let port = [s.port.as_str()];
            f.advertised
                .with_label_values(&port)
                .set(s.routes_advertised as i64);
            f.received
                .with_label_values(&port)
                .set((s.macs_received + s.remote_vteps.len()) as i64);
            f.vteps
                .with_label_values(&port)
                .set(s.remote_vteps.len() as i64);
        }
        f.all().into_iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_evpn_metric_is_exported_from_the_status() {
        let status = Arc::new(EvpnStatus::new(EvpnInfo {
            connected: true,
            connects: 2,
            segments: vec![SegmentInfo {
                port: "vxlan:vx100".into(),
                vni: 100,
                vtep: "198.18.0.2".parse().unwrap(),
                rd: "198.18.0.2:100".into(),
                rt: "65000:100".into(),
                routes_advertised: 3,
                macs_advertised: 2,
                macs_received: 4,
                remote_vteps: vec!["198.18.0.1".parse().unwrap(), "198.18.0.3".parse().unwrap()],
            }],
            ..EvpnInfo::default()
        }));
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(EvpnCollector::new(status)))
            .unwrap();
        let text = crate::metrics::render(&registry);
        for want in [
            "vswitchd_evpn_gobgp_up 1",
            "vswitchd_evpn_gobgp_connects_total 2",
            "vswitchd_evpn_routes_advertised{port=\"vxlan:vx100\"} 3",
            "vswitchd_evpn_routes_received{port=\"vxlan:vx100\"} 6",
            "vswitchd_evpn_remote_vteps{port=\"vxlan:vx100\"} 2",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }
}
