//! Opening the ports a plan names: the seam between the daemon's
//! bookkeeping and the system. [`SystemPorts`] opens real devices;
//! a test gives the daemon its own [`PortOpener`] (socket pairs), so
//! add, remove, set and reload run without root.

use crate::config::PortPlan;
use crate::port::{self, OpenOptions, Port, PortSpec};

use super::error::{DaemonError, PlaceError};

/// A port just opened.
pub struct Opened {
    pub port: Port,
    /// A TAP spec attached as `raw:` because another process (QEMU) held
    /// the TAP.
    pub fell_back: bool,
}

/// Opens the devices behind port plans.
pub trait PortOpener: Send + Sync {
    /// Opens the port `plan` names, placed as it says (namespace,
    /// addresses).
    fn open(&self, plan: &PortPlan) -> Result<Opened, DaemonError>;

    /// Opens again a port whose device vanished and came back, the way it
    /// was attached before (`fell_back`: as `raw:`). `Ok(None)`: it is not
    /// (yet) there.
    fn reopen(&self, plan: &PortPlan, fell_back: bool) -> Result<Option<Port>, DaemonError>;
}

/// The real thing: TAPs, AF_PACKET sockets, unix sockets.
pub struct SystemPorts;

fn open_options(plan: &PortPlan) -> OpenOptions {
    OpenOptions {
        mtu: plan.mtu.map(|m| m.get()),
        socket_mode: Some(super::access::socket_mode(
            plan.section.socket_mode,
            plan.section.socket_group.as_deref(),
        )),
        no_claim: plan.section.claim == Some(false),
        mac: plan.section.mac.map(|m| m.0),
        vxlan: plan.vxlan.clone(),
    }
}

/// Gives a socket port's file to its `socket-group`, if it has one.
fn give_socket(plan: &PortPlan) -> Result<(), DaemonError> {
    let (Some(group), PortSpec::Unix(path) | PortSpec::UnixDgram(path)) =
        (&plan.section.socket_group, &plan.spec)
    else {
        return Ok(());
    };
    let mode = super::access::socket_mode(plan.section.socket_mode, Some(group));
    super::access::give_to_group(path, group, mode).map_err(|source| DaemonError::Group {
        port: plan.spec.name(),
        source,
    })
}

/// Whether a new TAP is to be moved or given addresses.
fn to_place(plan: &PortPlan) -> bool {
    plan.netns.is_some() || plan.placement != Default::default()
}

/// Moves a new TAP into its namespace and gives it its addresses.
fn place(plan: &PortPlan) -> Result<(), DaemonError> {
    let ifname = plan.spec.ifname().unwrap_or_default();
    let placed = (|| {
        if let Some(ns) = &plan.netns {
            if !crate::os::rtnl::netns_exists(ns) {
                return Err(PlaceError::NoNamespace(ns.clone()));
            }
            crate::os::rtnl::move_to_netns(ifname, ns).map_err(|source| PlaceError::Move {
                netns: ns.clone(),
                source,
            })?;
        }
        crate::os::rtnl::configure(plan.netns.as_deref(), ifname, &plan.placement)
            .map_err(PlaceError::Configure)
    })();
    placed.map_err(|source| DaemonError::Place {
        port: plan.spec.name(),
        source,
    })
}

impl PortOpener for SystemPorts {
    fn open(&self, plan: &PortPlan) -> Result<Opened, DaemonError> {
        let (port, fell_back) = port::open(&plan.spec, &open_options(plan))?;
        give_socket(plan)?;
        if fell_back {
            tracing::info!(
                port = %plan.spec,
                "TAP is held by another process (QEMU?); attached to it as raw:{}",
                plan.spec.ifname().unwrap_or_default()
            );
        } else if to_place(plan) {
            place(plan)?;
        }
        tracing::info!(port = %plan.spec, kind = port.kind().as_str(), mtu = port.mtu(), "port up");
        Ok(Opened { port, fell_back })
    }

    /// A TAP vswitchd owned is only re-attached if a persistent TAP of
    /// that name exists and is free (never created anew, and a TAP
    /// another process holds for a moment — `ip tuntap add` — is tried
    /// again on the next check); a TAP QEMU held is attached as raw:
    /// again.
    fn reopen(&self, plan: &PortPlan, fell_back: bool) -> Result<Option<Port>, DaemonError> {
        if !plan.spec.ifname().is_some_and(port::interface_exists) {
            return Ok(None);
        }
        let opts = open_options(plan);
        let p: Port = match (&plan.spec, fell_back) {
            (PortSpec::Tap(name), false) => {
                match port::TapPort::reopen_existing(name, opts.mtu, opts.mac) {
                    Ok(Some(t)) => {
                        if to_place(plan) {
                            place(plan)?;
                        }
                        t.into()
                    }
                    Ok(None) | Err(port::PortError::Busy { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            (PortSpec::Tap(name), true) => port::RawPort::open(name, !opts.no_claim)?.into(),
            _ => {
                let p = port::open(&plan.spec, &opts)?.0;
                give_socket(plan)?;
                p
            }
        };
        tracing::info!(port = %plan.spec, kind = p.kind().as_str(), "port re-attached");
        Ok(Some(p))
    }
}
