//! The EVPN agent: a tokio task on the control plane's runtime that
//! keeps GoBGP's routes and the switch in step.
//!
//! Every second it reads the switch's segments and local MACs
//! ([`local::segments`]), lists every L2VPN EVPN route in GoBGP's global
//! RIB (`ListPath`), plans ([`reconcile::plan`]), sends the plan's
//! routes (`AddPath`, `DeletePath`) and applies its flood-list and FDB
//! changes ([`local::apply`]).
//!
//! Polling the whole RIB rather than watching events keeps the agent
//! stateless towards GoBGP: our own routes are among those listed (GoBGP's
//! local paths: vswitchd is what adds routes to its GoBGP), so a route of
//! ours GoBGP no longer holds (it restarted) is simply sent again at the
//! next round, one it holds that we no longer want (left from an earlier
//! run of vswitchd) is withdrawn, and a missed event cannot leave a stale
//! entry. The cost is one RIB listing a second, proportional to the
//! fabric's MACs.
//!
//! **Stopping.** vswitchd withdraws its routes when it stops
//! ([`withdraw_all`]); one killed leaves them in GoBGP until it runs
//! again (its first round withdraws what it no longer has) or GoBGP
//! restarts.
//!
//! **GoBGP unreachable.** vswitchd starts and forwards without it: the
//! agent warns once, retries with backoff (1 s doubling to 10 s), and on
//! every (re)connection advertises everything again. Remote entries stay
//! as they were while GoBGP is away (the tunnel keeps forwarding to the
//! last known VTEPs); the BGP sessions' hold timers, in GoBGP and its
//! peers, are what withdraws a lost VTEP's routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::EvpnConfig;
use super::codec::{self, Origin};
use super::gobgp::{self as api, gobgp_api_client::GobgpApiClient};
use super::local::{self, SegmentPort};
use super::reconcile::{self, Applied};
use super::route::{LocalRoute, RemoteRoute, Rt};
use super::status::{EvpnInfo, EvpnStatus, SegmentInfo};
use crate::dataplane::Dataplane;

/// Seconds between rounds.
const ROUND: Duration = Duration::from_secs(1);
/// A local daemon's API is cheap to try: back within 10 s of GoBGP.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A GoBGP call that takes longer fails (and the agent reconnects).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a round with GoBGP failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `reason`: the transport error with its causes (tonic's own
    /// message is only "transport error").
    #[error("connecting to GoBGP at {addr}: {reason} (is gobgpd running with --api-hosts {addr}?)")]
    Connect {
        addr: std::net::SocketAddr,
        reason: String,
    },
    #[error("GoBGP {call}: {status}")]
    Call {
        call: &'static str,
        status: Box<tonic::Status>,
    },
}

fn call(name: &'static str) -> impl Fn(tonic::Status) -> AgentError {
    move |s| AgentError::Call {
        call: name,
        status: Box::new(s),
    }
}

/// The status an agent for `cfg` starts with.
pub fn initial_status(cfg: &EvpnConfig) -> EvpnInfo {
    EvpnInfo {
        gobgp: cfg.gobgp.to_string(),
        asn: cfg.asn,
        router_id: cfg.router_id.to_string(),
        ..EvpnInfo::default()
    }
}

/// Runs the agent until the runtime stops.
pub async fn run(dp: Arc<Dataplane>, cfg: EvpnConfig, status: Arc<EvpnStatus>) {
    let mut applied = Applied::default();
    let mut seen = Seen::default();
    let mut backoff = ROUND;
    let mut warned = false;
    loop {
        match connect(&cfg).await {
            Ok(client) => {
                tracing::info!(gobgp = %cfg.gobgp, "evpn: connected to GoBGP; advertising");
                status.update(|s| {
                    s.connected = true;
                    s.connects += 1;
                    s.last_error = None;
                });
                let e = serve(&dp, &cfg, client, &mut applied, &mut seen, &status).await;
                tracing::warn!("evpn: {e}; reconnecting");
                status.update(|s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                warned = true;
                backoff = ROUND;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!("evpn: {e}; retrying with backoff (forwarding goes on)");
                    warned = true;
                } else {
                    tracing::debug!("evpn: {e}");
                }
                status.update(|s| {
                    s.connected = false;
                    s.last_error = Some(e.to_string());
                });
                // Segments and counts stay visible while GoBGP is away.
                report(&status, &cfg, &local::segments(&dp), &applied);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Withdraws every route vswitchd put in GoBGP (all its local EVPN
/// paths: a `DeletePath` without a path), for a clean stop: the other
/// VTEPs stop sending to this one at once rather than never.
pub async fn withdraw_all(cfg: &EvpnConfig) -> Result<(), AgentError> {
    let mut client = connect(cfg).await?;
    client
        .delete_path(api::DeletePathRequest {
            table_type: api::TableType::Global as i32,
            family: Some(codec::family()),
            ..Default::default()
        })
        .await
        .map_err(call("DeletePath"))?;
    Ok(())
}

async fn connect(cfg: &EvpnConfig) -> Result<GobgpApiClient<Channel>, AgentError> {
    let err = |e: tonic::transport::Error| {
        let mut parts = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let c_text = c.to_string();
            if parts.last() != Some(&c_text) {
                parts.push(c_text);
            }
            cause = c.source();
        }
        let reason = parts.join(": ");
        AgentError::Connect {
            addr: cfg.gobgp,
            reason,
        }
    };
    let ch = Endpoint::from_shared(format!("http://{}", cfg.gobgp))
        .map_err(err)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(err)?;
    let mut client = GobgpApiClient::new(ch);
    // A first call: the port may answer without being GoBGP.
    client
        .get_bgp(api::GetBgpRequest {})
        .await
        .map_err(call("GetBgp"))?;
    Ok(client)
}

/// Rounds until a call fails.
async fn serve(
    dp: &Dataplane,
    cfg: &EvpnConfig,
    mut client: GobgpApiClient<Channel>,
    applied: &mut Applied,
    seen: &mut Seen,
    status: &EvpnStatus,
) -> AgentError {
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let segs = local::segments(dp);
        if let Err(e) = round(dp, cfg, &mut client, applied, seen, &segs).await {
            return e;
        }
        report(status, cfg, &segs, applied);
    }
}

/// One reconcile round.
async fn round(
    dp: &Dataplane,
    cfg: &EvpnConfig,
    client: &mut GobgpApiClient<Channel>,
    applied: &mut Applied,
    seen: &mut Seen,
    segs: &[SegmentPort],
) -> Result<(), AgentError> {
    seen.note(segs, applied);
    let imports: Vec<(u32, Rt)> = segs
        .iter()
        .map(|s| (s.segment.vni, origin_of(cfg, s).rt(s.segment.vni)))
        .collect();
    let Listing { routes, mine } = list(client, cfg.asn, &imports).await?;
    // What is out is what GoBGP holds from us: a route it lost (it
    // restarted) goes out again, one left from an earlier run of
    // vswitchd (a MAC gone meanwhile, a port removed) is withdrawn.
    applied.advertised = mine.iter().map(|(r, (seq, _))| (*r, *seq)).collect();
    let segments: Vec<reconcile::Segment> = segs.iter().map(|s| s.segment.clone()).collect();
    let plan = reconcile::plan(&segments, &routes, applied);
    if plan.is_empty() {
        return Ok(());
    }
    tracing::debug!(?plan, "evpn: round");
    let origin = |vni: u32| {
        segs.iter()
            .find(|s| s.segment.vni == vni)
            .map(|s| origin_of(cfg, s))
    };
    for route in &plan.withdraw {
        // Withdrawn as GoBGP listed it (whatever RD and VTEP it was sent
        // with).
        let Some((_, path)) = mine.get(route) else {
            continue;
        };
        client
            .delete_path(api::DeletePathRequest {
                table_type: api::TableType::Global as i32,
                family: Some(codec::family()),
                path: Some(path.clone()),
                ..Default::default()
            })
            .await
            .map_err(call("DeletePath"))?;
        applied.advertised.remove(route);
    }
    for (route, seq) in &plan.advertise {
        let Some(o) = origin(route.vni()) else {
            continue;
        };
        client
            .add_path(api::AddPathRequest {
                table_type: api::TableType::Global as i32,
                path: Some(codec::path(&o, route, *seq)),
                ..Default::default()
            })
            .await
            .map_err(call("AddPath"))?;
        applied.advertised.insert(*route, *seq);
    }
    local::apply(dp, segs, &plan);
    applied.record_local(&plan);
    Ok(())
}

/// What the agent remembers of each segment's port.
#[derive(Default)]
struct Seen {
    /// The device each VNI's flood list and MACs were written to.
    devices: BTreeMap<u32, usize>,
}

impl Seen {
    /// Notes the segments' ports; a port opened anew (a reload changed
    /// it, hot-plug re-attached it) has none of the EVPN state written
    /// to the old one: it is forgotten, so the plan writes it again. So
    /// is a remote MAC the FDB no longer holds as `evpn` (deleted by
    /// `fdb del`, or taken over by a local port: then it is ours).
    fn note(&mut self, segs: &[SegmentPort], applied: &mut Applied) {
        applied.remote_macs.retain(|(vni, mac), _| {
            segs.iter()
                .find(|s| s.segment.vni == *vni)
                .is_none_or(|s| s.evpn_macs.contains(mac))
        });
        for s in segs {
            let vni = s.segment.vni;
            let dev = Arc::as_ptr(&s.device) as usize;
            if self.devices.insert(vni, dev).is_some_and(|d| d != dev) {
                applied.flood.remove(&vni);
                applied.remote_macs.retain(|(v, _), _| *v != vni);
            }
        }
    }
}

/// GoBGP's EVPN routes, split.
struct Listing {
    /// From peers, placed in one of our VNIs (the best path of each
    /// destination).
    routes: Vec<RemoteRoute>,
    /// Ours (local paths), with their sequence numbers and the paths as
    /// listed.
    mine: BTreeMap<LocalRoute, (u32, api::Path)>,
}

/// What our routes for segment `s` are sent with.
fn origin_of(cfg: &EvpnConfig, s: &SegmentPort) -> Origin {
    Origin {
        router_id: cfg.router_id,
        asn: cfg.asn,
        vtep: s.segment.vtep,
        targets: s.targets,
    }
}

/// Every EVPN route in GoBGP's global RIB; remote ones placed in the VNI
/// whose route target they carry (`imports`).
async fn list(
    client: &mut GobgpApiClient<Channel>,
    asn: u32,
    imports: &[(u32, Rt)],
) -> Result<Listing, AgentError> {
    let mut stream = client
        .list_path(api::ListPathRequest {
            table_type: api::TableType::Global as i32,
            family: Some(codec::family()),
            ..Default::default()
        })
        .await
        .map_err(call("ListPath"))?
        .into_inner();
    let mut out = Listing {
        routes: Vec::new(),
        mine: BTreeMap::new(),
    };
    while let Some(r) = stream.message().await.map_err(call("ListPath"))? {
        let Some(d) = r.destination else { continue };
        for p in d.paths.iter().filter(|p| codec::is_local(p)) {
            if let Some((route, seq)) = codec::own_route(p, imports, asn) {
                out.mine.insert(route, (seq, p.clone()));
            }
        }
        let theirs: Vec<&api::Path> = d.paths.iter().filter(|p| !codec::is_local(p)).collect();
        let best = theirs.iter().find(|p| p.best).or(theirs.first());
        if let Some(route) = best.and_then(|p| codec::remote_route(p, imports)) {
            out.routes.push(route);
        }
    }
    Ok(out)
}

/// Publishes the per-segment figures.
fn report(status: &EvpnStatus, cfg: &EvpnConfig, segs: &[SegmentPort], applied: &Applied) {
    let info: Vec<SegmentInfo> = segs
        .iter()
        .map(|s| {
            let vni = s.segment.vni;
            let o = origin_of(cfg, s);
            SegmentInfo {
                port: s.name.clone(),
                vni,
                vtep: s.segment.vtep,
                rd: o.rd(vni).to_string(),
                rt: o.rt(vni).to_string(),
                routes_advertised: applied.advertised.keys().filter(|r| r.vni() == vni).count(),
                macs_advertised: applied
                    .advertised
                    .keys()
                    .filter(|r| matches!(r, LocalRoute::Mac { vni: v, .. } if *v == vni))
                    .count(),
                macs_received: applied
                    .remote_macs
                    .keys()
                    .filter(|(v, _)| *v == vni)
                    .count(),
                remote_vteps: applied
                    .flood
                    .get(&vni)
                    .map(|l| l.iter().copied().collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    status.update(|s| s.segments = info);
}
