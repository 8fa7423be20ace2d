//! The control socket server: a unix socket (mode 0600, or 0660 for the
//! `control-socket-group`) on the control plane's tokio runtime, one JSON
//! request per line, one response per line.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::protocol::{Envelope, ErrorCode, Request, Response, VERSION};
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

/// Serves requests until the task is dropped.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _ = connection(sock, daemon).await;
        });
    }
}

async fn connection(sock: UnixStream, daemon: Arc<Daemon>) -> io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    loop {
        let line = match tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            _ => return Ok(()),
        };
        if line.len() > 1 << 20 {
            return Ok(());
        }
        let resp = match serde_json::from_str::<serde_json::Value>(&line) {
            Err(e) => Response::err(ErrorCode::BadRequest, format!("not JSON: {e}")),
            Ok(v) => match v.get("version").and_then(|x| x.as_u64()) {
                Some(ver) if ver == VERSION as u64 => {
                    match serde_json::from_value::<Envelope<Request>>(v) {
                        Ok(env) => {
                            let d = daemon.clone();
                            tokio::task::spawn_blocking(move || execute(&d, env.body))
                                .await
                                .unwrap_or_else(|e| {
                                    Response::err(
                                        ErrorCode::Internal,
                                        format!("internal error: {e}"),
                                    )
                                })
                        }
                        Err(e) => Response::err(ErrorCode::BadRequest, format!("bad request: {e}")),
                    }
                }
                Some(ver) => Response::err(
                    ErrorCode::BadRequest,
                    format!(
                        "protocol version {ver} is not supported (this vswitchd speaks {VERSION})"
                    ),
                ),
                None => Response::err(ErrorCode::BadRequest, "request has no \"version\""),
            },
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_default();
        out.push(b'\n');
        w.write_all(&out).await?;
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
        Request::Reload => result(d.reload().map(|r| r.to_string())),
        Request::LogLevel { filter } => result(d.log_level(filter.as_deref())),
    }
}
