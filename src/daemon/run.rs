//! vswitchd's main loop: binds the metrics and control endpoints, starts
//! the dataplane, opens the configured ports, then serves until SIGTERM or
//! SIGINT — reloading on SIGHUP, ageing the FDB and checking for vanished
//! or returning devices once a second and on every link notification,
//! keeping systemd informed (status, watchdog) all along.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};

use super::log::LogControl;
use super::notify::Notifier;
use super::{Daemon, DaemonError};
use crate::config::{Config, Overrides};
use crate::control::server::{self as control, ControlError};
use crate::dataplane::{Clock, Dataplane, DataplaneError};
use crate::switch::Switch;

/// Threads for the daemon's blocking operations (control requests,
/// reload, hot-plug).
pub const CONTROL_THREADS: usize = 2;

/// Why vswitchd could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting the control-plane runtime: {0}")]
    Runtime(io::Error),
    #[error("metrics address {addr}: {source} (pick another with --metrics-addr, or `off`)")]
    Metrics { addr: String, source: io::Error },
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    #[error(transparent)]
    Port(#[from] DaemonError),
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
}

/// Runs the switch `cfg` describes until SIGTERM or SIGINT. `config_path`
/// and `overrides` are what a reload reads again. The endpoints are bound
/// before any port is opened, so a taken address fails before a TAP
/// exists; on return every port is closed and the control socket removed.
/// `log`, when given, is the filter `vswitchctl log-level` changes.
pub fn run(
    cfg: Config,
    config_path: Option<PathBuf>,
    overrides: Overrides,
    log: Option<LogControl>,
) -> Result<(), RunError> {
    raise_fd_limit();
    // Before any thread starts (capabilities are per thread, inherited).
    match crate::os::caps::reduce_to_needed() {
        Ok(kept) => tracing::info!(capabilities = kept.join(",").as_str(), "privileges reduced"),
        Err(e) => tracing::warn!("cannot reduce capabilities: {e}"),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Control requests, reloads and hot-plug run on these threads;
        // the daemon serialises its operations anyway, so a small bound
        // keeps the thread count flat however many clients connect.
        .max_blocking_threads(CONTROL_THREADS)
        .thread_name("vswitchd-ctl")
        .build()
        .map_err(RunError::Runtime)?;
    let _guard = rt.enter();
    let metrics = match &cfg.metrics_addr {
        Some(addr) => Some(bind_metrics(addr)?),
        None => None,
    };
    let control = match &cfg.control_socket {
        Some(p) => Some(control::bind(p, cfg.control_socket_group.as_deref())?),
        None => None,
    };

    let clock = Clock::new();
    let switch = Arc::new(Switch::new(&cfg.switch));
    let dp = Arc::new(Dataplane::start(switch, cfg.workers, cfg.tuning, clock)?);
    let notifier = Notifier::from_env();
    // The bridge id tells apart the switches of one machine by their
    // control socket (and config file), and machines by their machine-id.
    let bridge_mac = super::stp::bridge_mac(&format!("{:?}{config_path:?}", cfg.control_socket));
    let mut daemon = Daemon::new(dp.clone(), config_path, overrides)
        .with_notifier(notifier.clone())
        .with_bridge_mac(bridge_mac);
    if let Some(log) = log {
        daemon = daemon.with_log_control(Arc::new(log));
    }
    let evpn = cfg.evpn.map(|e| {
        let status = Arc::new(crate::evpn::status::EvpnStatus::new(
            crate::evpn::agent::initial_status(&e),
        ));
        (e, status)
    });
    if let Some((_, status)) = &evpn {
        daemon = daemon.with_evpn(status.clone());
    }
    let daemon = Arc::new(daemon);
    let stp_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stp_thread = super::stp::spawn(daemon.stp().clone(), stp_stop.clone())
        .map_err(|e| RunError::Dataplane(DataplaneError::Start(e)))?;
    let result = cfg
        .ports
        .iter()
        .try_for_each(|plan| daemon.add_port(plan.clone()).map(|_| ()))
        .map_err(RunError::from)
        .and_then(|()| {
            daemon.stp().configure(cfg.stp);
            daemon.set_mirrors(&cfg.mirrors)?;
            rt.block_on(serve(
                daemon.clone(),
                metrics,
                control,
                cfg.ports.len(),
                &notifier,
                evpn,
            ))
        });
    notifier.stopping();
    stp_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = stp_thread.join();
    dp.shutdown();
    if let Some(p) = &cfg.control_socket {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("stopped");
    result
}

fn bind_metrics(addr: &str) -> Result<TcpListener, RunError> {
    let err = |source| RunError::Metrics {
        addr: addr.to_string(),
        source,
    };
    let l = std::net::TcpListener::bind(addr).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(l).map_err(err)
}

/// Serves metrics and control requests and runs the control plane's
/// chores until SIGTERM or SIGINT.
async fn serve(
    daemon: Arc<Daemon>,
    metrics: Option<TcpListener>,
    control: Option<UnixListener>,
    ports: usize,
    notifier: &Notifier,
    evpn: Option<(
        crate::evpn::EvpnConfig,
        Arc<crate::evpn::status::EvpnStatus>,
    )>,
) -> Result<(), RunError> {
    let dp = daemon.dataplane().clone();
    // The EVPN agent: a task of this runtime; it waits for GoBGP on its
    // own and never blocks forwarding.
    let evpn_agent = evpn.as_ref().map(|(cfg, status)| {
        tracing::info!(gobgp = %cfg.gobgp, "evpn: agent starting");
        tokio::spawn(crate::evpn::agent::run(dp.clone(), *cfg, status.clone()))
    });
    if let Some(l) = metrics {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "metrics at /metrics");
        }
        let registry = crate::metrics::registry(dp.clone(), daemon.config_status().clone());
        registry
            .register(Box::new(super::stp::StpCollector::new(
                daemon.stp().clone(),
            )))
            .expect("spanning-tree collector registers once");
        if let Some((_, status)) = &evpn {
            registry
                .register(Box::new(crate::evpn::status::EvpnCollector::new(
                    status.clone(),
                )))
                .expect("evpn collector registers once");
        }
        let registry = Arc::new(registry);
        tokio::spawn(crate::metrics::serve(l, registry));
    }
    if let Some(l) = control {
        if let Ok(path) = l.local_addr() {
            tracing::info!(path = ?path.as_pathname(), "control socket ready");
        }
        tokio::spawn(control::serve(l, daemon.clone()));
    }
    let (link_tx, mut link_rx) = tokio::sync::mpsc::channel::<()>(1);
    if let Err(e) = crate::os::netlink::watch_links(move || {
        !matches!(
            link_tx.try_send(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_))
        )
    }) {
        tracing::warn!("no link notifications ({e}); checking ports once a second");
    }
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The multicast timers (memberships, queriers) and the querier's
    // frames: 100 ms, so a leave's group-specific query is not late.
    let mut mcast_tick = tokio::time::interval(Duration::from_millis(100));
    mcast_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(ports, "vswitchd forwarding");
    let mut status = daemon.status_line();
    notifier.ready(&status);
    // The watchdog is fed from this loop: if it stops turning (a stuck
    // operation), systemd restarts the service.
    let watchdog_every = notifier.watchdog_interval();
    if let Some(every) = watchdog_every {
        tracing::info!("systemd watchdog: WATCHDOG=1 every {every:?}");
    }
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
    // The daemon's operations block (they wait for the workers): they run
    // off the runtime's thread.
    let blocking = |f: fn(&Daemon)| {
        let d = daemon.clone();
        tokio::task::spawn_blocking(move || f(&d))
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                if let Err(e) = blocking(|d| {
                    if let Err(e) = d.reload() {
                        tracing::error!("{e}");
                    }
                })
                .await
                {
                    tracing::error!("reload: {e}");
                }
            }
            _ = tick.tick() => {
                dp.switch().expire(dp.clock().now_ms());
                dp.sweep_tunnels(dp.clock().now_ms());
                let _ = blocking(Daemon::hotplug_tick).await;
                let now = daemon.status_line();
                if now != status {
                    notifier.status(&now);
                    status = now;
                }
            }
            _ = mcast_tick.tick() => {
                for out in dp.switch().mcast_tick(dp.clock().now_ms()) {
                    dp.send_frame(out.port, &out.frame);
                }
            }
            _ = watchdog.tick(), if watchdog_every.is_some() => notifier.watchdog(),
            Some(()) = link_rx.recv() => {
                let _ = blocking(Daemon::hotplug_tick).await;
            }
        }
    }
    // The agent stops first, so no round re-adds what is withdrawn.
    if let Some(agent) = evpn_agent {
        agent.abort();
        let _ = agent.await;
    }
    if let Some((cfg, _)) = &evpn {
        match tokio::time::timeout(
            Duration::from_secs(3),
            crate::evpn::agent::withdraw_all(cfg),
        )
        .await
        {
            Ok(Ok(())) => tracing::info!("evpn: routes withdrawn"),
            Ok(Err(e)) => tracing::warn!("evpn: cannot withdraw routes: {e}"),
            Err(_) => tracing::warn!("evpn: GoBGP did not answer in time; routes stay"),
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard one, as most daemons
/// do: every port and every metrics or control client holds an fd, and
/// the endpoints' connection caps are a share of the soft limit (a shell's
/// default of 1 024 would leave them at 256).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
    }
}
