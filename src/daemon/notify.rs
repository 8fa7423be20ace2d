//! Telling systemd how the service is doing (sd_notify(3), `Type=notify`):
//! `READY=1` with a `STATUS=` line once forwarding, `RELOADING=1` (with
//! `MONOTONIC_USEC=`) while a reload runs and `READY=1` after it,
//! `STOPPING=1` on the way out, and `WATCHDOG=1` at half the unit's
//! `WatchdogSec=`. Without `$NOTIFY_SOCKET` (not under systemd) every call
//! does nothing.

use std::time::Duration;

/// Where the notifications go: `$NOTIFY_SOCKET`, a path or an `@abstract`
/// name. The variable is read once, when vswitchd starts.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// The notifier systemd asked for, if any.
    pub fn from_env() -> Notifier {
        Notifier {
            socket: std::env::var_os("NOTIFY_SOCKET")
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| !p.is_empty()),
        }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); failures are
    /// logged, never fatal. Never blocks: the control loop sends these,
    /// and a receiver that does not read (its queue full) must not stop
    /// it; such a message is dropped.
    pub fn send(&self, state: &str) {
        let Some(path) = &self.socket else { return };
        match send_to(path, state) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!("sd_notify to {path}: queue full, dropped {state:?}");
            }
            Err(e) => tracing::warn!("sd_notify to {path} failed: {e}"),
        }
    }

    /// `READY=1` and the status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload begins (systemd shows the unit as reloading until the
    /// next `READY=1`).
    pub fn reloading(&self) {
        match monotonic_usec() {
            Some(us) => self.send(&format!("RELOADING=1\nMONOTONIC_USEC={us}")),
            None => self.send("RELOADING=1"),
        }
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it
    /// is set for this process (`$WATCHDOG_PID` absent or ours).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
    }
}

fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(p) = pid
        && p.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// CLOCK_MONOTONIC in microseconds, as systemd compares `MONOTONIC_USEC`.
fn monotonic_usec() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    Some(t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
}

fn send_to(path: &str, state: &str) -> std::io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    if let Some(abs) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let a = std::os::unix::net::SocketAddr::from_abstract_name(abs.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &a)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_at_half_the_interval_for_this_process_only() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn messages_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(path.to_str().unwrap().to_string()),
        };
        let recv = || {
            let mut buf = [0u8; 512];
            let len = rx.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..len]).into_owned()
        };
        n.reloading();
        let m = recv();
        let us: u64 = m
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{m:?}"))
            .parse()
            .unwrap();
        assert!(us > 0);
        n.ready("forwarding: 2 ports");
        let m = recv();
        assert_eq!(m, "READY=1\nSTATUS=forwarding: 2 ports");
        Notifier::default().ready("nobody listens");
        // A receiver that does not read: sends are dropped, never block.
        let start = std::time::Instant::now();
        for _ in 0..2000 {
            n.watchdog();
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
