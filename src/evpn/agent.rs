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
//! stateless towards GoBGP: our own routes are among those listed, so a
//! route of ours GoBGP no longer holds (it restarted, or dropped it) is
//! simply sent again at the next round, and a missed event cannot leave
//! a stale entry. The cost is one RIB listing a second, proportional to
//! the fabric's MACs.
//!
//! **GoBGP unreachable.** vswitchd starts and forwards without it: the
//! agent warns once, retries with backoff (1 s doubling to 30 s), and on
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
use super::route::{LocalRoute, RemoteRoute};
use super::status::{EvpnInfo, EvpnStatus, SegmentInfo};
use crate::dataplane::Dataplane;

/// Seconds between rounds.
const ROUND: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A GoBGP call that takes longer fails (and the agent reconnects).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a round with GoBGP failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("connecting to GoBGP at {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: tonic::transport::Error,
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
                // Whatever GoBGP had from us may be gone: send it all.
                applied.advertised.clear();
                let e = serve(&dp, &cfg, client, &mut applied, &status).await;
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

async fn connect(cfg: &EvpnConfig) -> Result<GobgpApiClient<Channel>, AgentError> {
    let err = |source| AgentError::Connect {
        addr: cfg.gobgp,
        source,
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
    status: &EvpnStatus,
) -> AgentError {
    // The VTEP address each VNI's routes were sent from.
    let mut vteps = BTreeMap::new();
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = round(dp, cfg, &mut client, applied, &mut vteps).await {
            return e;
        }
        report(status, cfg, &local::segments(dp), applied);
    }
}

/// One reconcile round.
async fn round(
    dp: &Dataplane,
    cfg: &EvpnConfig,
    client: &mut GobgpApiClient<Channel>,
    applied: &mut Applied,
    vteps: &mut BTreeMap<u32, std::net::IpAddr>,
) -> Result<(), AgentError> {
    let segs = local::segments(dp);
    let vnis: Vec<u32> = segs.iter().map(|s| s.segment.vni).collect();
    let routes = list(client, cfg.asn, &vnis).await?;
    // Ours as GoBGP holds them: anything we think is out but is not (or
    // not with that sequence number) goes out again.
    let mine: BTreeMap<LocalRoute, u32> =
        routes.iter().filter_map(|r| own_route(r, &segs)).collect();
    applied
        .advertised
        .retain(|route, seq| !vnis.contains(&route.vni()) || mine.get(route) == Some(seq));
    let segments: Vec<reconcile::Segment> = segs.iter().map(|s| s.segment.clone()).collect();
    let plan = reconcile::plan(&segments, &routes, applied);
    if plan.is_empty() {
        return Ok(());
    }
    tracing::debug!(?plan, "evpn: round");
    for s in &segs {
        vteps.insert(s.segment.vni, s.segment.vtep);
    }
    // A segment whose port went is withdrawn with the VTEP address its
    // routes were sent with.
    let origin = |vni: u32| {
        vteps.get(&vni).map(|vtep| Origin {
            router_id: cfg.router_id,
            asn: cfg.asn,
            vtep: *vtep,
        })
    };
    for route in &plan.withdraw {
        let Some(o) = origin(route.vni()) else {
            applied.advertised.remove(route);
            continue;
        };
        let seq = applied.advertised.get(route).copied().unwrap_or(0);
        let path = codec::path(&o, route, seq);
        client
            .delete_path(api::DeletePathRequest {
                table_type: api::TableType::Global as i32,
                family: Some(codec::family()),
                path: Some(path),
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
    local::apply(dp, &segs, &plan);
    applied.record_local(&plan);
    Ok(())
}

/// Every EVPN route in GoBGP's global RIB placed in one of `vnis` (the
/// best path of each destination), ours included.
async fn list(
    client: &mut GobgpApiClient<Channel>,
    asn: u32,
    vnis: &[u32],
) -> Result<Vec<RemoteRoute>, AgentError> {
    let mut stream = client
        .list_path(api::ListPathRequest {
            table_type: api::TableType::Global as i32,
            family: Some(codec::family()),
            ..Default::default()
        })
        .await
        .map_err(call("ListPath"))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await.map_err(call("ListPath"))? {
        let Some(d) = r.destination else { continue };
        let best = d.paths.iter().find(|p| p.best).or(d.paths.first());
        if let Some(route) = best.and_then(|p| codec::remote_route(p, asn, vnis)) {
            out.push(route);
        }
    }
    Ok(out)
}

/// `r` as one of our routes (its VTEP is the segment's own), with its
/// sequence number.
fn own_route(r: &RemoteRoute, segs: &[SegmentPort]) -> Option<(LocalRoute, u32)> {
    let s = segs.iter().find(|s| s.segment.vni == r.vni())?;
    if r.vtep() != s.segment.vtep {
        return None;
    }
    Some(match *r {
        RemoteRoute::Imet { vni, .. } => (LocalRoute::Imet { vni }, 0),
        RemoteRoute::Mac { vni, mac, seq, .. } => (LocalRoute::Mac { vni, mac }, seq),
    })
}

/// Publishes the per-segment figures.
fn report(status: &EvpnStatus, cfg: &EvpnConfig, segs: &[SegmentPort], applied: &Applied) {
    let info: Vec<SegmentInfo> = segs
        .iter()
        .map(|s| {
            let vni = s.segment.vni;
            let o = Origin {
                router_id: cfg.router_id,
                asn: cfg.asn,
                vtep: s.segment.vtep,
            };
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
