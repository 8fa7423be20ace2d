//! Prometheus metrics: a collector that reads the dataplane's per-worker
//! counters and the FDB at scrape time, and a small HTTP endpoint on the
//! control plane's tokio runtime. Scraping never touches the hot path:
//! workers keep writing their own counters; the collector only reads them.
//!
//! Every family is listed in docs/metrics.md.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::dataplane::stats::PortTotals;
use crate::dataplane::{Dataplane, LinkState, Reading};

/// How the configuration last loaded: at start (always a success: a
/// start that fails exits) and at each reload.
#[derive(Debug)]
pub struct ConfigStatus {
    ok: AtomicBool,
    /// Unix time of the last successful load, in seconds.
    success_secs: AtomicU64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Default for ConfigStatus {
    fn default() -> Self {
        ConfigStatus::new()
    }
}

impl ConfigStatus {
    /// Loaded successfully, now.
    pub fn new() -> ConfigStatus {
        ConfigStatus {
            ok: AtomicBool::new(true),
            success_secs: AtomicU64::new(unix_now()),
        }
    }

    /// A (re)load finished, well or not.
    pub fn record(&self, ok: bool) {
        self.record_at(ok, unix_now());
    }

    fn record_at(&self, ok: bool, secs: u64) {
        self.ok.store(ok, Relaxed);
        if ok {
            self.success_secs.store(secs, Relaxed);
        }
    }

    /// Whether the last (re)load worked.
    pub fn last_ok(&self) -> bool {
        self.ok.load(Relaxed)
    }

    /// When the configuration last loaded successfully (Unix seconds).
    pub fn last_success_secs(&self) -> u64 {
        self.success_secs.load(Relaxed)
    }
}

/// Reads the switch's state into metric families at each scrape.
pub struct SwitchCollector {
    dp: Arc<Dataplane>,
    config: Arc<ConfigStatus>,
    descs: Vec<Desc>,
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

/// The families the collector exports, built fresh per scrape.
struct Families {
    rx_frames: IntCounterVec,
    rx_bytes: IntCounterVec,
    tx_frames: IntCounterVec,
    tx_bytes: IntCounterVec,
    drops: IntCounterVec,
    flooded: IntCounterVec,
    forwarded: IntCounterVec,
    punted: IntCounterVec,
    up: IntGaugeVec,
    io_uring: IntGaugeVec,
    fdb_entries: IntGauge,
    fdb_capacity: IntGauge,
    fdb_learned: IntCounter,
    fdb_moved: IntCounter,
    fdb_aged: IntCounter,
    fdb_evicted: IntCounter,
    fdb_refused: IntCounter,
    mdb_groups: IntGauge,
    mdb_full: IntCounter,
    mcast_reports: IntCounter,
    mcast_leaves: IntCounter,
    mcast_queries: IntCounter,
    mcast_queries_sent: IntCounter,
    mcast_malformed: IntCounterVec,
    igmp_querier: IntGauge,
    mld_querier: IntGauge,
    build_info: IntGaugeVec,
    mirror_copied: IntCounterVec,
    mirror_dropped: IntCounterVec,
    config_ok: IntGauge,
    config_success_time: IntGauge,
    vx_rx_frames: IntCounterVec,
    vx_rx_bytes: IntCounterVec,
    vx_tx_frames: IntCounterVec,
    vx_tx_bytes: IntCounterVec,
    vx_drops: IntCounterVec,
    vx_remote_macs: IntGaugeVec,
    vx_no_remote: IntCounterVec,
    vx_learn_refused: IntCounterVec,
}

impl Families {
    fn new() -> Families {
        let port = &["port"];
        Families {
            rx_frames: counter_vec(
                "vswitchd_port_rx_frames_total",
                "Frames received on the port.",
                port,
            ),
            rx_bytes: counter_vec(
                "vswitchd_port_rx_bytes_total",
                "Bytes received on the port (Ethernet frames without the virtio-net header; a GSO frame counts whole).",
                port,
            ),
            tx_frames: counter_vec(
                "vswitchd_port_tx_frames_total",
                "Frames sent on the port.",
                port,
            ),
            tx_bytes: counter_vec(
                "vswitchd_port_tx_bytes_total",
                "Bytes sent on the port.",
                port,
            ),
            drops: counter_vec(
                "vswitchd_port_drops_total",
                "Frames dropped, by port and reason (decisions count on the ingress port, I/O on the port where it happened).",
                &["port", "reason"],
            ),
            flooded: counter_vec(
                "vswitchd_port_flooded_frames_total",
                "Frames received on the port that were flooded (unknown unicast, broadcast, multicast).",
                port,
            ),
            forwarded: counter_vec(
                "vswitchd_port_forwarded_frames_total",
                "Frames received on the port that were forwarded (with the frames dropped on it as ingress and BPDUs taken by spanning tree, they make up its received frames).",
                port,
            ),
            punted: counter_vec(
                "vswitchd_port_punted_frames_total",
                "Frames received on the port that the control plane took (BPDUs while spanning tree runs).",
                port,
            ),
            up: IntGaugeVec::new(
                Opts::new(
                    "vswitchd_port_up",
                    "1 if the port is up and forwarding, else 0.",
                ),
                port,
            )
            .expect("valid metric"),
            io_uring: IntGaugeVec::new(
                Opts::new(
                    "vswitchd_port_io_uring",
                    "1 while the port is read through io_uring (a busy TAP), 0 while it is polled.",
                ),
                port,
            )
            .expect("valid metric"),
            fdb_entries: gauge(
                "vswitchd_fdb_entries",
                "Entries in the forwarding database (static included).",
            ),
            fdb_capacity: gauge(
                "vswitchd_fdb_capacity",
                "Most entries the forwarding database holds.",
            ),
            fdb_learned: counter("vswitchd_fdb_learned_total", "MACs learned."),
            fdb_moved: counter(
                "vswitchd_fdb_moved_total",
                "Learned MACs that moved to another port.",
            ),
            fdb_aged: counter("vswitchd_fdb_aged_total", "Learned MACs removed by ageing."),
            fdb_evicted: counter(
                "vswitchd_fdb_evicted_total",
                "Learned MACs evicted because the table was full.",
            ),
            fdb_refused: counter(
                "vswitchd_fdb_refused_total",
                "MACs not learned: port MAC limit reached or table full of static entries.",
            ),
            mdb_groups: gauge(
                "vswitchd_mdb_groups",
                "(group, VLAN) entries in the multicast database.",
            ),
            mdb_full: counter(
                "vswitchd_mdb_full_total",
                "IGMP/MLD reports for a new group dropped because the multicast database was full (mcast-hash-max).",
            ),
            mcast_reports: counter(
                "vswitchd_mcast_reports_total",
                "IGMP and MLD membership reports received (all versions).",
            ),
            mcast_leaves: counter(
                "vswitchd_mcast_leaves_total",
                "IGMPv2 leaves and MLDv1 dones received.",
            ),
            mcast_queries: counter(
                "vswitchd_mcast_queries_total",
                "IGMP and MLD queries received.",
            ),
            mcast_queries_sent: counter(
                "vswitchd_mcast_queries_sent_total",
                "Queries the switch's own querier sent (one per port and query).",
            ),
            mcast_malformed: counter_vec(
                "vswitchd_mcast_malformed_total",
                "IGMP/MLD frames dropped as malformed, by reason.",
                &["reason"],
            ),
            igmp_querier: gauge(
                "vswitchd_mcast_igmp_querier_present",
                "1 while an IGMP querier is known (IPv4 multicast then follows the multicast database), else 0.",
            ),
            mld_querier: gauge(
                "vswitchd_mcast_mld_querier_present",
                "1 while an MLD querier is known (IPv6 multicast then follows the multicast database), else 0.",
            ),
            build_info: IntGaugeVec::new(
                Opts::new(
                    "vswitchd_build_info",
                    "Always 1; the version label names the build.",
                ),
                &["version"],
            )
            .expect("valid metric"),
            config_ok: gauge(
                "vswitchd_config_last_reload_successful",
                "1 if the last load of the configuration (start, SIGHUP, vswitchctl reload) worked, 0 if the last reload failed (the switch runs on with the configuration before it).",
            ),
            config_success_time: gauge(
                "vswitchd_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful load of the configuration (start or reload).",
            ),
            vx_rx_frames: counter_vec(
                "vswitchd_vxlan_remote_rx_frames_total",
                "Frames received from a remote VTEP on a vxlan port (the first 64 remotes by address; the rest as remote=\"other\").",
                &["port", "remote"],
            ),
            vx_rx_bytes: counter_vec(
                "vswitchd_vxlan_remote_rx_bytes_total",
                "Inner frame bytes received from a remote VTEP.",
                &["port", "remote"],
            ),
            vx_tx_frames: counter_vec(
                "vswitchd_vxlan_remote_tx_frames_total",
                "Frames sent to a remote VTEP (a flooded frame counts once per remote).",
                &["port", "remote"],
            ),
            vx_tx_bytes: counter_vec(
                "vswitchd_vxlan_remote_tx_bytes_total",
                "Inner frame bytes sent to a remote VTEP.",
                &["port", "remote"],
            ),
            vx_drops: counter_vec(
                "vswitchd_vxlan_remote_drops_total",
                "Datagrams from, or frames to, a remote VTEP dropped, by reason (truncated, no_i_flag, wrong_vni, too_big, queue_full, send_error).",
                &["port", "remote", "reason"],
            ),
            vx_remote_macs: IntGaugeVec::new(
                Opts::new(
                    "vswitchd_vxlan_remote_macs",
                    "Entries in a vxlan port's inner MAC to remote VTEP table.",
                ),
                port,
            )
            .expect("valid metric"),
            vx_no_remote: counter_vec(
                "vswitchd_vxlan_no_remote_frames_total",
                "Frames a vxlan port had nowhere to send (unknown destination and an empty flood list).",
                port,
            ),
            vx_learn_refused: counter_vec(
                "vswitchd_vxlan_learn_refused_total",
                "Inner source MACs a vxlan port did not learn because its table was full.",
                port,
            ),
            mirror_copied: counter_vec(
                "vswitchd_mirror_copied_frames_total",
                "Copies a port mirror sent out of its output port.",
                &["mirror"],
            ),
            mirror_dropped: counter_vec(
                "vswitchd_mirror_dropped_frames_total",
                "Copies a port mirror lost because its output port could not take them.",
                &["mirror"],
            ),
        }
    }

    fn all(&self) -> Vec<&dyn Collector> {
        vec![
            &self.rx_frames,
            &self.rx_bytes,
            &self.tx_frames,
            &self.tx_bytes,
            &self.drops,
            &self.flooded,
            &self.forwarded,
            &self.punted,
            &self.up,
            &self.io_uring,
            &self.fdb_entries,
            &self.fdb_capacity,
            &self.fdb_learned,
            &self.fdb_moved,
            &self.fdb_aged,
            &self.fdb_evicted,
            &self.fdb_refused,
            &self.mdb_groups,
            &self.mdb_full,
            &self.mcast_reports,
            &self.mcast_leaves,
            &self.mcast_queries,
            &self.mcast_queries_sent,
            &self.mcast_malformed,
            &self.igmp_querier,
            &self.mld_querier,
            &self.build_info,
            &self.config_ok,
            &self.config_success_time,
            &self.vx_rx_frames,
            &self.vx_rx_bytes,
            &self.vx_tx_frames,
            &self.vx_tx_bytes,
            &self.vx_drops,
            &self.vx_remote_macs,
            &self.vx_no_remote,
            &self.vx_learn_refused,
            &self.mirror_copied,
            &self.mirror_dropped,
        ]
    }
}

impl SwitchCollector {
    pub fn new(dp: Arc<Dataplane>, config: Arc<ConfigStatus>) -> SwitchCollector {
        let descs = Families::new()
            .all()
            .into_iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        SwitchCollector { dp, config, descs }
    }
}

impl Collector for SwitchCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let f = Families::new();
        let counters = self.dp.counters();
        let sw = self.dp.switch();
        for h in self.dp.ports() {
            let name = h.cfg.name.as_str();
            let t = PortTotals::sum(&counters, h.id);
            f.rx_frames.with_label_values(&[name]).inc_by(t.rx_frames);
            f.rx_bytes.with_label_values(&[name]).inc_by(t.rx_bytes);
            f.tx_frames.with_label_values(&[name]).inc_by(t.tx_frames);
            f.tx_bytes.with_label_values(&[name]).inc_by(t.tx_bytes);
            f.flooded.with_label_values(&[name]).inc_by(t.flooded);
            f.forwarded.with_label_values(&[name]).inc_by(t.forwarded);
            f.punted.with_label_values(&[name]).inc_by(t.punted);
            for (reason, n) in &t.drops {
                f.drops.with_label_values(&[name, reason]).inc_by(*n);
            }
            let up = sw.port_up(h.id) && h.device.link_state() == LinkState::Up;
            f.up.with_label_values(&[name]).set(up as i64);
            let ring = h.device.reading() == Reading::Ring;
            f.io_uring.with_label_values(&[name]).set(ring as i64);
            if let crate::port::Port::Vxlan(v) = &h.device.port {
                vxlan_metrics(&f, name, v);
            }
        }
        for tap in &self.dp.taps().load().taps {
            if let Some(name) = &tap.mirror {
                let st = &tap.stats;
                f.mirror_copied
                    .with_label_values(&[name.as_str()])
                    .inc_by(st.copied.load(Relaxed));
                f.mirror_dropped
                    .with_label_values(&[name.as_str()])
                    .inc_by(st.dropped.load(Relaxed));
            }
        }
        let fdb = sw.fdb();
        f.fdb_entries.set(fdb.len() as i64);
        f.fdb_capacity.set(fdb.capacity() as i64);
        let s = fdb.stats();
        f.fdb_learned.inc_by(s.learned.load(Relaxed));
        f.fdb_moved.inc_by(s.moved.load(Relaxed));
        f.fdb_aged.inc_by(s.aged.load(Relaxed));
        f.fdb_evicted.inc_by(s.evicted.load(Relaxed));
        f.fdb_refused.inc_by(s.refused.load(Relaxed));
        let m = sw.mcast_stats(self.dp.clock().now_ms());
        f.mdb_groups.set(m.groups as i64);
        f.mdb_full.inc_by(m.full);
        f.mcast_reports.inc_by(m.reports);
        f.mcast_leaves.inc_by(m.leaves);
        f.mcast_queries.inc_by(m.queries);
        f.mcast_queries_sent.inc_by(m.queries_sent);
        for e in crate::wire::igmp::McastError::ALL {
            f.mcast_malformed
                .with_label_values(&[e.as_str()])
                .inc_by(m.errors[e.index()]);
        }
        f.igmp_querier.set(m.querier[0] as i64);
        f.mld_querier.set(m.querier[1] as i64);
        f.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        f.config_ok.set(self.config.last_ok() as i64);
        f.config_success_time
            .set(self.config.last_success_secs() as i64);
        f.all().into_iter().flat_map(|c| c.collect()).collect()
    }
}

/// A vxlan port's tunnel metrics (per-remote rows are bounded by the
/// port: at most 64 plus `other`).
fn vxlan_metrics(f: &Families, name: &str, v: &crate::port::VxlanPort) {
    for r in v.remote_stats() {
        let l = [name, r.remote.as_str()];
        f.vx_rx_frames.with_label_values(&l).inc_by(r.rx_frames);
        f.vx_rx_bytes.with_label_values(&l).inc_by(r.rx_bytes);
        f.vx_tx_frames.with_label_values(&l).inc_by(r.tx_frames);
        f.vx_tx_bytes.with_label_values(&l).inc_by(r.tx_bytes);
        for (reason, n) in &r.drops {
            f.vx_drops
                .with_label_values(&[name, r.remote.as_str(), reason])
                .inc_by(*n);
        }
    }
    f.vx_remote_macs
        .with_label_values(&[name])
        .set(v.table().len() as i64);
    f.vx_no_remote
        .with_label_values(&[name])
        .inc_by(v.no_remote.load(Relaxed));
    f.vx_learn_refused
        .with_label_values(&[name])
        .inc_by(v.table().stats.refused.load(Relaxed));
}

/// The registry vswitchd serves: the switch collector (with how the
/// configuration last loaded) plus process metrics (CPU, memory, fds)
/// under the `vswitchd_` prefix.
pub fn registry(dp: Arc<Dataplane>, config: Arc<ConfigStatus>) -> Registry {
    let r = Registry::new();
    r.register(Box::new(SwitchCollector::new(dp, config)))
        .expect("switch collector registers once");
    let pc =
        prometheus::process_collector::ProcessCollector::new(std::process::id() as i32, "vswitchd");
    r.register(Box::new(pc))
        .expect("process collector registers once");
    r
}

/// Renders the registry in the Prometheus text format.
pub fn render(r: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut buf)
        .expect("text encoding of gathered metrics");
    String::from_utf8(buf).expect("text format is UTF-8")
}

/// At most this many connections are held (fewer when the fd limit is
/// low, see `control::limit::conn_cap`); past it the oldest idle one is shed, so a
/// scrape always gets in however many idle or slow clients are connected.
const MAX_CONNECTIONS: usize = 1024;
/// The request head (line and headers) must arrive within this time...
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// ...and be at most this long.
const MAX_HEADER: usize = 8192;
/// The response must be taken by the client within this time.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the task is
/// dropped: one request per connection, the head within
/// `HEADER_TIMEOUT` (5 s), at most `MAX_CONNECTIONS` connections, the oldest idle
/// one shed for a newcomer.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let conns = crate::control::limit::Conns::new(crate::control::limit::conn_cap(MAX_CONNECTIONS));
    loop {
        let mut sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors: free one by shedding, then retry.
                if !(crate::control::limit::out_of_fds(&e) && conns.shed_oldest()) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let registry = registry.clone();
        conns.spawn(move |slot| async move {
            let _ = handle(&mut sock, &registry, &slot).await;
        });
    }
}

/// Reads the request head: `None` when the client closes, sends too much
/// or is too slow.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut req = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 || req.len() > MAX_HEADER {
                return None;
            }
            req.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(HEADER_TIMEOUT, read).await.ok()??;
    Some(req)
}

async fn handle(
    sock: &mut tokio::net::TcpStream,
    registry: &Registry,
    slot: &crate::control::limit::Slot,
) -> std::io::Result<()> {
    let Some(req) = read_head(sock).await else {
        return Ok(());
    };
    // Answering now: not to be shed for a newcomer.
    slot.busy(true);
    let line = req.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let get = method == "GET" || method == "HEAD";
    let (status, ctype, body) = match (get, path) {
        (true, "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(registry),
        ),
        (true, "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "vswitchd: metrics at /metrics\n".to_string(),
        ),
        (true, _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            sock.write_all(body.as_bytes()).await?;
        }
        sock.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::Clock;
    use crate::dataplane::stats::{Reason, bump};
    use crate::port::pair;
    use crate::switch::{PortConfig, Switch, SwitchConfig};

    /// Every family the collector registers moves when its source moves
    /// and appears in the text output.
    #[test]
    fn every_family_can_be_incremented_and_is_exported() {
        // The switch's own querier, trusted at once (no response delay),
        // and room for one group: every multicast family can move.
        let sw = Arc::new(Switch::new(&SwitchConfig {
            mcast: crate::mcast::MdbConfig {
                querier: true,
                query_response_interval_ms: 0,
                hash_max: 1,
                ..Default::default()
            },
            ..SwitchConfig::default()
        }));
        let dp =
            Arc::new(Dataplane::start(sw.clone(), 1, Default::default(), Clock::new()).unwrap());
        let (p, _peer) = pair().unwrap();
        let id = dp.add_port(PortConfig::new("p0"), p).unwrap();
        let config = Arc::new(ConfigStatus::new());
        config.record_at(true, 1_000);
        config.record_at(false, 1_500);
        let reg = registry(dp.clone(), config.clone());
        let before = render(&reg);
        config.record_at(true, 2_000);
        // Move every source once.
        let c = &dp.counters()[0];
        let pc = c.port(id);
        for a in [
            &pc.rx_frames,
            &pc.rx_bytes,
            &pc.tx_frames,
            &pc.tx_bytes,
            &pc.flooded,
            &pc.forwarded,
            &pc.punted,
        ] {
            bump(a, 1);
        }
        for r in Reason::all() {
            c.count_drop(id, r);
        }
        let st = sw.fdb().stats();
        for a in [&st.learned, &st.moved, &st.aged, &st.evicted, &st.refused] {
            a.fetch_add(1, Relaxed);
        }
        sw.fdb()
            .add_static("02:00:00:00:00:01".parse().unwrap(), 1, id);
        feed_igmp(&sw, id);
        {
            use crate::dataplane::taps::{Tap, TapOut, TapStats, TapTable};
            let stats = Arc::new(TapStats::default());
            stats.copied.fetch_add(1, Relaxed);
            stats.dropped.fetch_add(1, Relaxed);
            dp.taps().set(TapTable::new(vec![Tap {
                rx: crate::switch::PortSet::single(id),
                tx: crate::switch::PortSet::EMPTY,
                vlans: None,
                snaplen: None,
                out: TapOut::Port(id),
                stats,
                mirror: Some("m0".into()),
            }]));
        }
        let after = render(&reg);
        let families: Vec<String> = Families::new()
            .all()
            .iter()
            .flat_map(|c| {
                c.desc()
                    .into_iter()
                    .map(|d| d.fq_name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(families.len(), 39);
        // The vxlan families need a vxlan port: `vxlan_families_move`.
        for fam in families
            .iter()
            .filter(|f| !f.starts_with("vswitchd_vxlan_"))
        {
            assert!(after.contains(&format!("# TYPE {fam} ")), "{fam} missing");
            let value = |text: &str| -> f64 {
                text.lines()
                    .filter(|l| l.starts_with(fam.as_str()) && !l.starts_with('#'))
                    .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
                    .sum()
            };
            if fam == "vswitchd_port_io_uring" {
                // A pair port is never read through io_uring.
                assert_eq!(value(&after), 0.0, "{fam}");
            } else if fam != "vswitchd_fdb_capacity"
                && fam != "vswitchd_build_info"
                && fam != "vswitchd_port_up"
                && !fam.ends_with("_querier_present")
            {
                assert!(value(&after) > value(&before), "{fam} did not move");
            } else {
                assert!(value(&after) >= 1.0, "{fam}");
            }
        }
        for r in Reason::all() {
            assert!(
                after.contains(&format!(
                    "vswitchd_port_drops_total{{port=\"p0\",reason=\"{}\"}} 1",
                    r.as_str()
                )),
                "reason {}",
                r.as_str()
            );
        }
        assert!(after.contains("vswitchd_process_cpu_seconds_total"));
        assert!(after.contains("vswitchd_build_info{version="));
        assert!(after.contains("vswitchd_config_last_reload_successful 1"));
        assert!(before.contains("vswitchd_config_last_reload_successful 0"));
        assert!(after.contains("vswitchd_config_last_reload_success_timestamp_seconds 2000"));
        // A failed reload keeps the time of the last success.
        config.record_at(false, 3_000);
        let failed = render(&reg);
        assert!(failed.contains("vswitchd_config_last_reload_successful 0"));
        assert!(failed.contains("vswitchd_config_last_reload_success_timestamp_seconds 2000"));
    }

    /// A report, a second group refused (full), a leave (the querier
    /// answers with a query), a group query and a malformed report on port `id`.
    fn feed_igmp(sw: &Switch, id: crate::switch::PortId) {
        use crate::wire::igmp::igmp_frame;
        use std::net::Ipv4Addr;
        sw.set_port_up(id, true);
        let mac = [2, 0, 0, 0, 0, 7];
        let src = Ipv4Addr::new(198, 18, 0, 7);
        let g1 = Ipv4Addr::new(239, 1, 1, 1);
        let g2 = Ipv4Addr::new(239, 1, 1, 2);
        let msg = |t: u8, g: Ipv4Addr| {
            let mut m = vec![t, 0, 0, 0];
            m.extend_from_slice(&g.octets());
            m
        };
        sw.decide(id, &igmp_frame(mac, src, g1, &msg(0x16, g1)), 0);
        sw.decide(id, &igmp_frame(mac, src, g2, &msg(0x16, g2)), 0);
        let all_routers = Ipv4Addr::new(224, 0, 0, 2);
        sw.decide(id, &igmp_frame(mac, src, all_routers, &msg(0x17, g1)), 0);
        // Group-specific: the querier stays the switch itself.
        let mut q = msg(0x11, g1);
        q[1] = 10;
        sw.decide(id, &igmp_frame(mac, src, g1, &q), 0);
        let mut bad = igmp_frame(mac, src, g1, &msg(0x16, g1));
        let n = bad.len();
        bad[n - 1] ^= 1;
        sw.decide(id, &bad, 0);
    }

    /// Every vxlan family moves with a vxlan port's traffic and bad input.
    #[test]
    fn vxlan_families_move() {
        use crate::port::{VxlanOptions, VxlanPort};
        let sw = Arc::new(Switch::new(&SwitchConfig::default()));
        let dp =
            Arc::new(Dataplane::start(sw.clone(), 1, Default::default(), Clock::new()).unwrap());
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pport = peer.local_addr().unwrap().port();
        let local: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        let o = VxlanOptions {
            vni: 5,
            local,
            remotes: vec!["127.0.0.1".parse().unwrap()],
            dstport: pport,
            learning: true,
            statics: vec![],
            evpn: false,
            evpn_targets: Default::default(),
            encap: Default::default(),
        };
        let v = VxlanPort::open("m", &o).unwrap();
        v.table().sweep(0, 1000, 0, |_| true);
        // A frame out (flooded), a good frame in (refused: capacity 0),
        // a bad one in.
        let frame = [[0xffu8; 6], [2, 0, 0, 0, 0, 1]].concat();
        let frame = [&frame[..], &[0x88, 0xb5, 1, 2]].concat();
        v.send2(&[0; 10], &frame).unwrap();
        let good = [&crate::wire::vxlan::header(5)[..], &frame].concat();
        peer.send_to(&good, (local, pport)).unwrap();
        peer.send_to(&good[..3], (local, pport)).unwrap();
        let mut buf = vec![0u8; 70000];
        let mut got = 0;
        for _ in 0..400 {
            match v.recv(&mut buf) {
                Ok(_) | Err(_) if got >= 2 => break,
                Ok(_) => got += 1,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => got += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(got, 2);
        let (p, _peer) = pair().unwrap();
        dp.add_port(PortConfig::new("p0"), p).unwrap();
        dp.add_port(PortConfig::new("vxlan:m"), v).unwrap();
        let text = render(&registry(dp.clone(), Arc::new(ConfigStatus::new())));
        for want in [
            "vswitchd_vxlan_remote_rx_frames_total{port=\"vxlan:m\",remote=\"127.0.0.1\"} 1",
            "vswitchd_vxlan_remote_rx_bytes_total{port=\"vxlan:m\",remote=\"127.0.0.1\"} 16",
            "vswitchd_vxlan_remote_tx_frames_total{port=\"vxlan:m\",remote=\"127.0.0.1\"} 1",
            "vswitchd_vxlan_remote_tx_bytes_total{port=\"vxlan:m\",remote=\"127.0.0.1\"} 16",
            "vswitchd_vxlan_remote_drops_total{port=\"vxlan:m\",reason=\"truncated\",remote=\"127.0.0.1\"} 1",
            "vswitchd_vxlan_remote_macs{port=\"vxlan:m\"} 0",
            "vswitchd_vxlan_no_remote_frames_total{port=\"vxlan:m\"} 0",
            "vswitchd_vxlan_learn_refused_total{port=\"vxlan:m\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
    }
}
