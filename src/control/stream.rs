//! The control socket's streams: `monitor` (FDB, port and spanning-tree
//! events) and `capture` (a port's frames). After the usual answer line
//! the server writes one [`StreamLine`] per event or frame until the
//! client closes the connection, the count or duration runs out, or the
//! client stops reading for `WRITE_TIMEOUT` (10 s).
//!
//! Events and frames reach the stream through a bounded queue the switch
//! or the dataplane fills without waiting: a client that reads slowly
//! loses events (a `dropped` line says how many), never slows the switch.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::protocol::{MonitorWhat, Response, StreamLine};
use crate::daemon::Daemon;
use crate::daemon::mirror::CaptureSpec;
use crate::dataplane::taps::Captured;
use crate::switch::{Event, Watcher};

/// A line the client does not take within this time ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting for a `monitor` client before more are dropped.
const MONITOR_QUEUE: usize = 4096;

/// A `monitor` client's queue, as the switch's watcher.
struct Queue {
    tx: tokio::sync::mpsc::Sender<Event>,
    dropped: AtomicU64,
}

impl Watcher for Queue {
    fn offer(&self, event: &Event) {
        if self.tx.try_send(event.clone()).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
    fn closed(&self) -> bool {
        self.tx.is_closed()
    }
}

fn now_secs() -> f64 {
    crate::dataplane::taps::wall_clock_ns() as f64 / 1e9
}

async fn send_line(
    w: &mut (impl AsyncWrite + Unpin),
    line: &impl serde::Serialize,
) -> io::Result<()> {
    let mut out = serde_json::to_vec(line).unwrap_or_default();
    out.push(b'\n');
    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&out))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// Resolves when the client closes its end (or sends anything: a stream
/// takes no further requests).
async fn client_gone(r: &mut (impl AsyncRead + Unpin)) {
    let mut b = [0u8; 256];
    loop {
        match r.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether `monitor WHAT` shows `ev`.
fn selects(what: MonitorWhat, ev: &Event) -> bool {
    match ev {
        Event::Fdb { .. } => what != MonitorWhat::Ports,
        Event::Port { .. } => what != MonitorWhat::Fdb,
        Event::Topology { .. } => what == MonitorWhat::All,
    }
}

/// An event's kind as its JSON word (`learned`, `up`, ...).
fn word(kind: impl serde::Serialize) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(w)) => w,
        _ => "?".into(),
    }
}

/// The stream line for `ev`, if `what` selects it.
fn event_line(d: &Daemon, what: MonitorWhat, ev: Event) -> Option<StreamLine> {
    if !selects(what, &ev) {
        return None;
    }
    let time = now_secs();
    Some(match ev {
        Event::Fdb {
            event,
            mac,
            vlan,
            port,
            from,
        } => StreamLine::Fdb {
            time,
            event: word(event),
            mac,
            vlan,
            port: d.port_name(port),
            from: from.map(|p| d.port_name(p)),
        },
        Event::Port { event, name, .. } => StreamLine::Port {
            time,
            event: word(event),
            port: name,
        },
        Event::Topology { port, what } => StreamLine::Topology { time, port, what },
    })
}

/// When a stream ends by itself: after `count` lines or `duration`
/// seconds (either, both or neither).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub count: Option<u64>,
    pub duration: Option<u64>,
}

impl Limits {
    fn reached(&self, sent: u64) -> bool {
        self.count.is_some_and(|c| sent >= c)
    }

    fn deadline(&self) -> tokio::time::Instant {
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        tokio::time::Instant::now() + self.duration.map_or(far, Duration::from_secs)
    }
}

/// The last line of a stream.
async fn end(
    w: &mut (impl AsyncWrite + Unpin),
    reason: &str,
    sent: u64,
    dropped: u64,
) -> io::Result<()> {
    let line = StreamLine::End {
        reason: reason.into(),
        sent,
        dropped,
    };
    send_line(w, &line).await
}

/// Serves `monitor` on a connection until it ends.
pub async fn monitor(
    d: Arc<Daemon>,
    r: &mut (impl AsyncRead + Unpin),
    w: &mut (impl AsyncWrite + Unpin),
    what: MonitorWhat,
    limits: Limits,
) -> io::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(MONITOR_QUEUE);
    let q = Arc::new(Queue {
        tx,
        dropped: AtomicU64::new(0),
    });
    let events = d.dataplane().switch().events();
    let id = events.watch(q.clone());
    let result = async {
        send_line(w, &Response::ok("monitoring")).await?;
        let deadline = limits.deadline();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let (mut sent, mut told) = (0u64, 0u64);
        let reason = loop {
            if limits.reached(sent) {
                break "count";
            }
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break "closed" };
                    if let Some(line) = event_line(&d, what, ev) {
                        send_line(w, &line).await?;
                        sent += 1;
                    }
                }
                _ = tick.tick() => {
                    let lost = q.dropped.load(Relaxed);
                    if lost != told {
                        told = lost;
                        send_line(w, &StreamLine::Dropped { count: lost }).await?;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break "duration",
                _ = client_gone(r) => return Ok(()),
            }
        };
        end(w, reason, sent, q.dropped.load(Relaxed)).await
    }
    .await;
    events.unwatch(id);
    result
}

/// Serves `capture` on a connection until it ends.
pub async fn capture(
    d: Arc<Daemon>,
    r: &mut (impl AsyncRead + Unpin),
    w: &mut (impl AsyncWrite + Unpin),
    spec: CaptureSpec,
    limits: Limits,
) -> io::Result<()> {
    let port = spec.port.clone();
    let started = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || d.capture_start(spec))
            .await
            .map_err(io::Error::other)?
    };
    let mut cap = match started {
        Ok(c) => c,
        Err(e) => return send_line(w, &Response::err(e.code(), e.to_string())).await,
    };
    let result = async {
        send_line(w, &Response::ok("capturing")).await?;
        let deadline = limits.deadline();
        let mut sent = 0u64;
        let reason = loop {
            if limits.reached(sent) {
                break "count";
            }
            tokio::select! {
                f = cap.frames.recv() => {
                    let Some(f) = f else { break "port gone" };
                    send_line(w, &frame_line(&port, f)).await?;
                    sent += 1;
                }
                _ = tokio::time::sleep_until(deadline) => break "duration",
                _ = client_gone(r) => return Ok(()),
            }
        };
        end(w, reason, sent, cap.stats.dropped.load(Relaxed)).await
    }
    .await;
    let id = cap.id;
    let _ = tokio::task::spawn_blocking(move || d.capture_stop(id)).await;
    result
}

fn frame_line(port: &str, f: Captured) -> StreamLine {
    StreamLine::Frame {
        time_ns: f.time_ns,
        port: port.to_string(),
        direction: f.direction,
        length: f.length,
        data: hex::encode(&f.data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::PortEvent;

    fn ev() -> Event {
        Event::Port {
            event: PortEvent::Down,
            port: 1,
            name: "p1".into(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_a_gone_client_closes_it() {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let q = Queue {
            tx,
            dropped: AtomicU64::new(0),
        };
        for _ in 0..5 {
            q.offer(&ev());
        }
        assert_eq!(q.dropped.load(Relaxed), 3);
        assert!(!q.closed());
        drop(rx);
        assert!(q.closed());
    }

    #[test]
    fn monitor_filters_by_what() {
        let fdb = Event::Fdb {
            event: crate::switch::FdbEvent::Learned,
            mac: crate::wire::Mac([2, 0, 0, 0, 0, 1]),
            vlan: 1,
            port: 0,
            from: None,
        };
        let topo = Event::Topology {
            port: None,
            what: "topology change".into(),
        };
        // Port names come from the daemon; a detached switch has none, so
        // only the kinds are checked here (names: tests/e2e_observe.rs).
        let kinds = |what| {
            [fdb.clone(), ev(), topo.clone()]
                .into_iter()
                .filter(|e| selects(what, e))
                .count()
        };
        assert_eq!(kinds(MonitorWhat::Fdb), 1);
        assert_eq!(kinds(MonitorWhat::Ports), 1);
        assert_eq!(kinds(MonitorWhat::All), 3);
    }
}
