//! The control socket server: a unix socket (mode 0600, or 0660 for the
//! `control-socket-group`) on the control plane's tokio runtime, one JSON
//! request per line, one response per line.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::limit::{self, Conns, Slot};
use super::protocol::{ErrorCode, Request, Response, parse_request};
use crate::daemon::{Daemon, DaemonError};

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "control socket {path}: another vswitchd is listening there (stop it, or pick another path with --control-socket)"
    )]
    InUse { path: PathBuf },
    #[error(
        "control socket {path}: {step}: {source} (pick a path vswitchd can create with --control-socket PATH, or --control-socket off)"
    )]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("control socket: {0} (fix control-socket-group / --control-socket-group)")]
    Group(#[from] crate::daemon::access::GroupError),
    /// Its directory lets others replace it.
    #[error("{message}")]
    Unsafe { path: PathBuf, message: String },
}

/// Binds the control socket at `path` with mode 0600 (0660 and owned by
/// `group`, when given), replacing a stale socket file left by a vswitchd
/// that died.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, ControlError> {
    let io = |step| {
        move |e| ControlError::Io {
            path: path.to_path_buf(),
            step,
            source: e,
        }
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(io("create directory"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io("set directory mode"))?;
    }
    crate::config::check_private_dir(path, "the control socket").map_err(|message| {
        ControlError::Unsafe {
            path: path.to_path_buf(),
            message,
        }
    })?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(io("remove stale socket"))?;
    }
    // Create the socket with no access for others from the start.
    let old = crate::os::sys::umask(0o177);
    let l = UnixListener::bind(path);
    crate::os::sys::umask(old);
    let l = l.map_err(io("bind"))?;
    match group {
        Some(g) => {
            if let Err(e) = crate::daemon::access::give_to_group(path, g, 0o660) {
                let _ = std::fs::remove_file(path);
                return Err(e.into());
            }
        }
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("chmod 0600"))?,
    }
    Ok(l)
}

/// At most this many clients are connected (fewer when the fd limit is
/// low, see `limit::conn_cap`); past it the oldest idle one is shed.
const MAX_CONNECTIONS: usize = 1024;
/// A request line longer than this is refused (and the connection closed).
pub const MAX_LINE: usize = 1 << 20;
/// A client that sends no request for this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A response the client does not take within this time closes it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves requests until the task is dropped: at most `MAX_CONNECTIONS`
/// clients, the oldest idle one shed for a newcomer, lines of at most
/// [`MAX_LINE`] bytes.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    let conns = Conns::new(limit::conn_cap(MAX_CONNECTIONS));
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // Out of descriptors: free one by shedding, then retry.
                if !(limit::out_of_fds(&e) && conns.shed_oldest()) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let daemon = daemon.clone();
        conns.spawn(move |slot| async move {
            let _ = connection(sock, daemon, &slot).await;
        });
    }
}

/// One request line read: the line, the end of the stream, or a line
/// over [`MAX_LINE`] (whose bytes are not kept past the limit).
enum Line {
    Text(Vec<u8>),
    Eof,
    TooLong,
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Line> {
    buf.clear();
    // One byte more than the limit (plus the newline) tells "too long".
    let n = (&mut *r)
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', buf)
        .await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > MAX_LINE {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(std::mem::take(buf)))
}

async fn respond(w: &mut (impl AsyncWriteExt + Unpin), resp: &Response) -> io::Result<()> {
    let mut out = serde_json::to_vec(resp).unwrap_or_default();
    out.push(b'\n');
    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&out))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

async fn connection(sock: UnixStream, daemon: Arc<Daemon>, slot: &Slot) -> io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        slot.busy(false);
        let line = match tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut r, &mut buf)).await {
            Ok(Ok(Line::Text(l))) => l,
            Ok(Ok(Line::TooLong)) => {
                slot.busy(true);
                let resp = Response::err(
                    ErrorCode::BadRequest,
                    format!("request line over {MAX_LINE} bytes; closing the connection"),
                );
                respond(&mut w, &resp).await?;
                return w.shutdown().await;
            }
            _ => return Ok(()),
        };
        slot.busy(true);
        let resp = match parse_request(&line) {
            Ok(Request::Monitor {
                what,
                count,
                duration,
            }) => {
                let limits = super::stream::Limits { count, duration };
                return super::stream::monitor(daemon, &mut r, &mut w, what, limits).await;
            }
            Ok(Request::Capture {
                port,
                direction,
                snaplen,
                count,
                duration,
            }) => {
                let spec = crate::daemon::mirror::CaptureSpec {
                    port,
                    direction,
                    snaplen,
                };
                let limits = super::stream::Limits { count, duration };
                return super::stream::capture(daemon, &mut r, &mut w, spec, limits).await;
            }
            Ok(req) => {
                let d = daemon.clone();
                tokio::task::spawn_blocking(move || execute(&d, req))
                    .await
                    .unwrap_or_else(|e| {
                        Response::err(ErrorCode::Internal, format!("internal error: {e}"))
                    })
            }
            Err(resp) => resp,
        };
        respond(&mut w, &resp).await?;
    }
}

fn result<T: serde::Serialize>(r: Result<T, DaemonError>) -> Response {
    match r {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(e.code(), e.to_string()),
    }
}

/// Runs one request against the daemon (blocking; off the async threads).
fn execute(d: &Daemon, req: Request) -> Response {
    match req {
        Request::Show => Response::ok(d.show()),
        Request::PortAdd { port } => result(d.add_port_section(&port)),
        Request::PortDel { name } => result(d.del_port(&name)),
        Request::PortSet { name, changes } => result(d.set_port(&name, &changes)),
        Request::FdbShow { port, vlan } => result(d.fdb_show(port.as_deref(), vlan)),
        Request::FdbGet { mac, vlan } => result(d.fdb_get(mac, vlan)),
        Request::FdbAdd { mac, vlan, port } => result(d.fdb_add(mac, vlan, &port)),
        Request::FdbDel { mac, vlan } => result(d.fdb_del(mac, vlan)),
        Request::FdbFlush { port, vlan } => result(d.fdb_flush(port.as_deref(), vlan)),
        Request::SetAgeing { seconds } => {
            d.set_ageing(seconds);
            Response::ok(())
        }
        Request::MdbShow { port, vlan } => result(d.mdb_show(port.as_deref(), vlan)),
        Request::MdbRouter => Response::ok(d.mdb_router()),
        Request::Reload => result(d.reload().map(|r| r.to_string())),
        Request::LogLevel { filter } => result(d.log_level(filter.as_deref())),
        Request::StpShow => result(d.stp_show()),
        Request::StpEnable { port } => result(d.stp_enable(&port)),
        Request::StpSet { changes } => result(d.stp_set(&changes)),
        Request::Trace { port, frame } => result(d.trace(&port, &frame)),
        Request::MirrorAdd { mirror } => result(d.mirror_add(mirror)),
        Request::MirrorDel { name } => result(d.mirror_del(&name)),
        Request::MirrorShow => Response::ok(d.mirror_show()),
        // Streams: `connection` serves them and never passes them here.
        Request::Monitor { .. } | Request::Capture { .. } => Response::err(
            ErrorCode::Internal,
            "monitor and capture are streams, served by the connection",
        ),
        Request::EvpnShow => result(d.evpn_show()),
    }
}
