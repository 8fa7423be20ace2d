//! Port mirrors (`[[mirror]]`, `vswitchctl mirror`) and captures
//! (`vswitchctl capture`): the daemon keeps them by name and port name,
//! and publishes them to the dataplane as a [`TapTable`] of port ids
//! whenever they or the ports change.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use super::{Daemon, DaemonError};
use crate::config::MirrorSection;
use crate::dataplane::taps::{Captured, Direction, Tap, TapOut, TapStats, TapTable};
use crate::switch::PortSet;

/// A capture's queue: this many frames wait for the client before more
/// are dropped (and counted).
pub const CAPTURE_QUEUE: usize = 4096;

/// Mirrors and captures in force.
#[derive(Default)]
pub struct Mirrors {
    mirrors: Vec<(MirrorSection, Arc<TapStats>)>,
    captures: Vec<CaptureTap>,
    next_capture: u64,
}

/// A running capture as the daemon keeps it: its tap is made again, by
/// port name, each time the taps are published.
struct CaptureTap {
    id: u64,
    spec: CaptureSpec,
    queue: TapOut,
    stats: Arc<TapStats>,
}

/// What a capture copies.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    pub port: String,
    pub direction: Direction,
    pub snaplen: Option<usize>,
}

/// `mirror show`: one mirror and its counters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MirrorInfo {
    #[serde(flatten)]
    pub section: MirrorSection,
    /// Copies sent out of the output port.
    pub copied: u64,
    /// Copies lost: the output port could not take them.
    pub dropped: u64,
    /// Ports named by the mirror that do not exist (now).
    pub missing: Vec<String>,
}

/// A running capture, for the control server.
pub struct Capture {
    pub id: u64,
    pub frames: tokio::sync::mpsc::Receiver<Captured>,
    pub stats: Arc<TapStats>,
}

impl Daemon {
    /// Adds a mirror (or replaces the one with its name when `replace`).
    pub fn mirror_add(&self, m: MirrorSection) -> Result<(), DaemonError> {
        m.check().map_err(DaemonError::Mirror)?;
        let _op = self.ops.lock();
        self.check_ports(&m)?;
        let mut ms = self.mirrors.lock();
        if ms.mirrors.iter().any(|(o, _)| o.name == m.name) {
            return Err(DaemonError::Mirror(format!(
                "a mirror named `{}` exists (delete it first)",
                m.name
            )));
        }
        if let Some((o, _)) = ms.mirrors.iter().find(|(o, _)| o.output == m.output) {
            return Err(DaemonError::Mirror(format!(
                "port `{}` is already the output of mirror `{}`",
                m.output, o.name
            )));
        }
        tracing::info!(
            mirror = m.name.as_str(),
            output = m.output.as_str(),
            "mirror added"
        );
        ms.mirrors.push((m, Arc::default()));
        drop(ms);
        self.publish_taps();
        Ok(())
    }

    pub fn mirror_del(&self, name: &str) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        let mut ms = self.mirrors.lock();
        let before = ms.mirrors.len();
        ms.mirrors.retain(|(m, _)| m.name != name);
        if ms.mirrors.len() == before {
            return Err(DaemonError::NoSuchMirror(name.to_string()));
        }
        drop(ms);
        tracing::info!(mirror = name, "mirror removed");
        self.publish_taps();
        Ok(())
    }

    pub fn mirror_show(&self) -> Vec<MirrorInfo> {
        let ms = self.mirrors.lock();
        ms.mirrors
            .iter()
            .map(|(m, st)| MirrorInfo {
                section: m.clone(),
                copied: st.copied.load(Relaxed),
                dropped: st.dropped.load(Relaxed),
                missing: m
                    .ports
                    .iter()
                    .chain(std::iter::once(&m.output))
                    .filter(|p| self.dp.switch().port_id(p).is_none())
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    /// Replaces every mirror with `mirrors` (config load and reload):
    /// counters of a mirror that stays as it was are kept.
    pub fn set_mirrors(&self, mirrors: &[MirrorSection]) -> Result<(), DaemonError> {
        let _op = self.ops.lock();
        for m in mirrors {
            self.check_ports(m)?;
        }
        let mut ms = self.mirrors.lock();
        let old: HashMap<String, (MirrorSection, Arc<TapStats>)> = ms
            .mirrors
            .drain(..)
            .map(|(m, s)| (m.name.clone(), (m, s)))
            .collect();
        ms.mirrors = mirrors
            .iter()
            .map(|m| match old.get(&m.name) {
                Some((o, st)) if o == m => (m.clone(), st.clone()),
                _ => (m.clone(), Arc::default()),
            })
            .collect();
        drop(ms);
        self.publish_taps();
        Ok(())
    }

    /// Starts copying `spec.port`'s frames to a bounded queue.
    pub fn capture_start(&self, spec: CaptureSpec) -> Result<Capture, DaemonError> {
        self.port_id(&spec.port)?;
        if let Some(l) = spec.snaplen
            && !(14..=65535).contains(&l)
        {
            return Err(DaemonError::Mirror(format!("snaplen {l}: 14 to 65535")));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(CAPTURE_QUEUE);
        let stats = Arc::new(TapStats::default());
        let mut ms = self.mirrors.lock();
        let cid = ms.next_capture;
        ms.next_capture += 1;
        ms.captures.push(CaptureTap {
            id: cid,
            spec,
            queue: TapOut::Capture(tx),
            stats: stats.clone(),
        });
        drop(ms);
        self.publish_taps();
        Ok(Capture {
            id: cid,
            frames: rx,
            stats,
        })
    }

    pub fn capture_stop(&self, id: u64) {
        self.mirrors.lock().captures.retain(|c| c.id != id);
        self.publish_taps();
    }

    /// Every port a mirror names must exist.
    fn check_ports(&self, m: &MirrorSection) -> Result<(), DaemonError> {
        for p in m.ports.iter().chain(std::iter::once(&m.output)) {
            self.port_id(p)?;
        }
        Ok(())
    }

    /// Gives the dataplane the taps of every mirror and capture, by port
    /// id (call after any change of mirrors, captures or ports). A mirror
    /// naming a port that is gone copies the ports that remain; without
    /// its output port it is idle until the port is back.
    pub(crate) fn publish_taps(&self) {
        let ms = self.mirrors.lock();
        let sw = self.dp.switch();
        let mut taps = Vec::new();
        for (m, stats) in &ms.mirrors {
            let Some(out) = sw.port_id(&m.output) else {
                continue;
            };
            let mut ports = PortSet::EMPTY;
            for p in m.ports.iter().filter_map(|p| sw.port_id(p)) {
                ports.insert(p);
            }
            if m.ports.is_empty() {
                // VLANs only: every port but the output.
                for p in self.dp.ports().iter().map(|r| r.id) {
                    ports.insert(p);
                }
                ports.remove(out);
            }
            let (rx, tx) = m.direction.sides(ports);
            taps.push(Tap {
                rx,
                tx,
                vlans: m.vlans.clone(),
                snaplen: m.snaplen,
                out: TapOut::Port(out),
                stats: stats.clone(),
                mirror: Some(m.name.clone()),
            });
        }
        for c in &ms.captures {
            // The port's id now (it may have been re-added).
            if let Some(id) = sw.port_id(&c.spec.port) {
                let (rx, tx) = c.spec.direction.sides(PortSet::single(id));
                taps.push(Tap {
                    rx,
                    tx,
                    vlans: None,
                    snaplen: c.spec.snaplen,
                    out: c.queue.clone(),
                    stats: c.stats.clone(),
                    mirror: None,
                });
            }
        }
        let table = TapTable::new(taps);
        sw.set_mirror_outputs(table.outputs());
        self.dp.taps().set(table);
    }
}
