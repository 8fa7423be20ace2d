//! Frame endpoints: TAP devices, AF_PACKET attachments, socket pairs.
//! With `src/os/`, the only place `unsafe` is allowed (each block with a
//! `// SAFETY:` comment).
//!
//! Every port moves frames in one layout: a 10-byte virtio-net header
//! followed by the Ethernet frame. Ports with offloads (tap, raw) pass the
//! header to and from the kernel; ports without write a zero header on
//! receive and are only handed plain frames (no GSO, no partial checksum)
//! on send — the dataplane finishes those in software first.

pub mod kvxlan;
pub mod pair;
pub mod raw;
pub mod tap;
pub mod unix;
pub mod vxlan;

use std::io;
use std::os::fd::RawFd;

use crate::os::sys;

pub use kvxlan::KernelVxlanPort;
pub use pair::{PairPeer, PairPort, pair};
pub use raw::RawPort;
pub use tap::TapPort;
pub use unix::{UnixDgramPort, UnixStreamPort};
pub use vxlan::{Encap, VxlanOptions, VxlanPort};

/// What kind of port an open [`Port`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    /// A TAP device vswitchd owns (`NAME`).
    Tap,
    /// An existing interface by AF_PACKET (`raw:IFNAME`, or a TAP QEMU
    /// holds).
    Raw,
    /// A stream socket for QEMU `-netdev stream` (`unix:PATH`).
    Unix,
    /// A datagram socket for QEMU `-netdev dgram` (`unixgram:PATH`).
    UnixDgram,
    /// One end of an in-memory socket pair (tests, embedding programs).
    Pair,
    /// A VXLAN tunnel (`vxlan:NAME`).
    Vxlan,
}

impl PortKind {
    /// The name `vswitchctl show` and the logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            PortKind::Tap => "tap",
            PortKind::Raw => "raw",
            PortKind::Unix => "unix",
            PortKind::UnixDgram => "unixgram",
            PortKind::Pair => "pair",
            PortKind::Vxlan => "vxlan",
        }
    }
}

impl std::fmt::Display for PortKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An open frame endpoint the dataplane polls: one of a closed set of
/// kinds, dispatched with a `match` (no vtable on the frame path). New
/// kinds (tunnels) are new variants.
pub enum Port {
    Tap(TapPort),
    Raw(RawPort),
    Unix(UnixStreamPort),
    UnixDgram(UnixDgramPort),
    Pair(PairPort),
    /// Boxed: its tables would make every `Port` (and `Device`) larger.
    Vxlan(Box<VxlanPort>),
    /// A `vxlan:` port with `encap = "kernel"`.
    KernelVxlan(KernelVxlanPort),
}

/// Runs `$body` with `$p` bound to the port inside whichever variant.
macro_rules! each_kind {
    ($port:expr, $p:ident => $body:expr) => {
        match $port {
            Port::Tap($p) => $body,
            Port::Raw($p) => $body,
            Port::Unix($p) => $body,
            Port::UnixDgram($p) => $body,
            Port::Pair($p) => $body,
            Port::Vxlan($p) => $body,
            Port::KernelVxlan($p) => $body,
        }
    };
}

impl Port {
    pub fn kind(&self) -> PortKind {
        match self {
            Port::Tap(_) => PortKind::Tap,
            Port::Raw(_) => PortKind::Raw,
            Port::Unix(_) => PortKind::Unix,
            Port::UnixDgram(_) => PortKind::UnixDgram,
            Port::Pair(_) => PortKind::Pair,
            Port::Vxlan(_) | Port::KernelVxlan(_) => PortKind::Vxlan,
        }
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        each_kind!(self, p => p.fd())
    }

    /// Reads one frame as \[virtio-net header]\[frame] into `buf`. Returns its
    /// length; `WouldBlock` when nothing is waiting.
    #[inline]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        each_kind!(self, p => p.recv(buf))
    }

    /// Sends one \[virtio-net header]\[frame] buffer.
    #[inline]
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            // The kernel takes the header with the frame.
            Port::Tap(p) => sys::write(p.fd(), buf).map(drop),
            Port::Raw(p) => sys::write(p.fd(), buf).map(drop),
            Port::KernelVxlan(p) => sys::write(p.fd(), buf).map(drop),
            Port::Unix(p) => p.send(buf),
            Port::UnixDgram(p) => p.send(buf),
            Port::Pair(p) => p.send(buf),
            Port::Vxlan(p) => p.send(buf),
        }
    }

    /// Sends a header and a frame held apart (no copy to join them).
    pub fn send2(&self, hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        match self {
            Port::Tap(p) => sys::writev2(p.fd(), hdr, frame).map(drop),
            Port::Raw(p) => sys::writev2(p.fd(), hdr, frame).map(drop),
            Port::KernelVxlan(p) => sys::writev2(p.fd(), hdr, frame).map(drop),
            Port::Unix(p) => p.send2(hdr, frame),
            Port::UnixDgram(p) => p.send2(hdr, frame),
            Port::Pair(p) => p.send2(hdr, frame),
            Port::Vxlan(p) => p.send2(hdr, frame),
        }
    }

    /// Whether the port takes GSO frames and partial checksums (TAP and raw
    /// ports, and a kernel-encapsulated vxlan port, pass the virtio-net
    /// header to and from the kernel; a vxlan port segments for itself and
    /// sends with UDP GSO; the others are only handed plain frames).
    pub fn offloads(&self) -> bool {
        matches!(
            self,
            Port::Tap(_) | Port::Raw(_) | Port::Vxlan(_) | Port::KernelVxlan(_)
        )
    }

    /// Largest frame payload (L3 MTU) the port carries.
    pub fn mtu(&self) -> usize {
        each_kind!(self, p => p.mtu())
    }

    /// False once the device behind the port is known to be gone (checked
    /// by the control plane on link notifications).
    pub fn alive(&self) -> bool {
        match self {
            Port::Raw(p) => p.alive(),
            Port::KernelVxlan(p) => p.alive(),
            _ => true,
        }
    }

    /// Whether the link to the peer is up, where the port can tell (a raw
    /// port's interface carrier; a socket port's connected peer). `None`:
    /// unknown (a TAP's other end may sit in another namespace).
    pub fn carrier(&self) -> Option<bool> {
        match self {
            Port::Raw(p) => p.carrier(),
            Port::Unix(p) => p.carrier(),
            Port::UnixDgram(p) => p.carrier(),
            Port::Tap(_) | Port::Pair(_) | Port::Vxlan(_) | Port::KernelVxlan(_) => None,
        }
    }
}

macro_rules! from_kind {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Port {
            fn from(p: $ty) -> Port {
                Port::$variant(p)
            }
        }
    )*};
}
from_kind!(
    Tap(TapPort),
    Raw(RawPort),
    Unix(UnixStreamPort),
    UnixDgram(UnixDgramPort),
    Pair(PairPort),
    KernelVxlan(KernelVxlanPort)
);

impl From<VxlanPort> for Port {
    fn from(p: VxlanPort) -> Port {
        Port::Vxlan(Box::new(p))
    }
}

/// How the user names a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// `NAME`: a TAP device vswitchd owns.
    Tap(String),
    /// `raw:IFNAME`: an existing interface, by AF_PACKET.
    Raw(String),
    /// `unix:PATH`: a stream socket QEMU connects to (`-netdev stream`).
    Unix(std::path::PathBuf),
    /// `unixgram:PATH`: a datagram socket for QEMU's `-netdev dgram`.
    UnixDgram(std::path::PathBuf),
    /// `vxlan:NAME`: a VXLAN tunnel (its settings come from the config).
    Vxlan(String),
}

impl PortSpec {
    /// Parses `tap0`, `raw:eth0`, `unix:/path`, `unixgram:/path` or
    /// `vxlan:NAME`.
    pub fn parse(s: &str) -> Result<PortSpec, PortError> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("vxlan:") {
            if rest.is_empty()
                || rest.len() > 32
                || !rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(PortError::BadName {
                    port: s.to_string(),
                    why: "a vxlan port's name is 1 to 32 letters, digits, `-`, `_` or `.`".into(),
                });
            }
            return Ok(PortSpec::Vxlan(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("raw:") {
            // Errors name the port as written (`raw:...`).
            check_ifname(rest).map_err(|e| match e {
                PortError::BadName { why, .. } => PortError::BadName {
                    port: s.to_string(),
                    why,
                },
                other => other,
            })?;
            return Ok(PortSpec::Raw(rest.to_string()));
        }
        for (prefix, dgram) in [("unix:", false), ("unixgram:", true)] {
            if let Some(rest) = s.strip_prefix(prefix) {
                if rest.is_empty() || rest.len() > 107 || rest.contains('\0') || rest.contains(',')
                {
                    return Err(PortError::BadName {
                        port: s.to_string(),
                        why: "a socket path is 1 to 107 bytes, without `,`".into(),
                    });
                }
                let p = std::path::PathBuf::from(rest);
                return Ok(if dgram {
                    PortSpec::UnixDgram(p)
                } else {
                    PortSpec::Unix(p)
                });
            }
        }
        if let Some((kind, _)) = s.split_once(':') {
            return Err(PortError::BadName {
                port: s.to_string(),
                why: format!(
                    "unknown port kind `{kind}:` (use NAME for a TAP, raw:IFNAME, unix:PATH, unixgram:PATH or vxlan:NAME)"
                ),
            });
        }
        check_ifname(s)?;
        Ok(PortSpec::Tap(s.to_string()))
    }

    /// The name the switch and metrics use for this port.
    pub fn name(&self) -> String {
        match self {
            PortSpec::Tap(n) => n.clone(),
            PortSpec::Raw(n) => format!("raw:{n}"),
            PortSpec::Unix(p) => format!("unix:{}", p.display()),
            PortSpec::UnixDgram(p) => format!("unixgram:{}", p.display()),
            PortSpec::Vxlan(n) => format!("vxlan:{n}"),
        }
    }

    /// The kernel interface behind the port (none for socket ports).
    pub fn ifname(&self) -> Option<&str> {
        match self {
            PortSpec::Tap(n) | PortSpec::Raw(n) => Some(n),
            PortSpec::Unix(_) | PortSpec::UnixDgram(_) | PortSpec::Vxlan(_) => None,
        }
    }
}

impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Checks a Linux interface name as the kernel's `dev_valid_name` does.
pub fn check_ifname(name: &str) -> Result<(), PortError> {
    let bad = |why: &str| {
        Err(PortError::BadName {
            port: name.to_string(),
            why: why.to_string(),
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() >= sys::IFNAMSIZ {
        return bad("interface names are at most 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not interface names");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad(&format!(
            "interface names cannot contain {c:?} (no `/`, `:` or whitespace)"
        ));
    }
    Ok(())
}

/// Whether an interface of this name exists in vswitchd's namespace.
pub fn interface_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Why a port could not be opened. Each names the port and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port `{port}`: invalid name: {why}")]
    BadName { port: String, why: String },
    #[error(
        "port `{port}`: cannot open {tun}: {source} (run vswitchd as root or with CAP_NET_ADMIN; if the file is missing, load the tun module: modprobe tun)",
        tun = tap::TUN_PATH
    )]
    TunDevice { port: String, source: io::Error },
    #[error(
        "port `{port}`: permission denied: {source} (run vswitchd as root or with CAP_NET_ADMIN, or give the persistent TAP to this user with `ip tuntap add {port} mode tap user USER`)"
    )]
    Permission { port: String, source: io::Error },
    #[error("port `{port}`: the TAP is held by another process (attach to it as raw:{port})")]
    Busy { port: String },
    #[error(
        "port `{port}`: an interface named `{port}` exists and is not a TAP device; pick another name, or attach to it with raw:{port}"
    )]
    NotATap { port: String },
    #[error("port `{port}`: no interface of that name (create it first, or check `ip link show`)")]
    NoInterface { port: String },
    #[error("port `{port}`: {step} failed: {source}")]
    Io {
        port: String,
        step: &'static str,
        source: io::Error,
    },
    #[error("port `{port}` is given twice")]
    Duplicate { port: String },
}

impl PortError {
    /// The same error, told of port `name` (a port opened through
    /// another kind's code names itself).
    pub fn for_port(mut self, name: &str) -> PortError {
        let (PortError::BadName { port, .. }
        | PortError::TunDevice { port, .. }
        | PortError::Permission { port, .. }
        | PortError::Busy { port }
        | PortError::NotATap { port }
        | PortError::NoInterface { port }
        | PortError::Io { port, .. }
        | PortError::Duplicate { port }) = &mut self;
        *port = name.to_string();
        self
    }
}

/// Options that apply when opening a port.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Set the device MTU (TAP ports).
    pub mtu: Option<usize>,
    /// Mode of a unix socket port's file (default 0600).
    pub socket_mode: Option<u32>,
    /// Keep a raw port's interface to the host stack (default: claim it
    /// for the switch, as a kernel bridge does).
    pub no_claim: bool,
    /// MAC address for a TAP vswitchd creates.
    pub mac: Option<[u8; 6]>,
    /// A `vxlan:` port's tunnel settings (required for one).
    pub vxlan: Option<VxlanOptions>,
}

/// Opens the port a spec names. A TAP held by another process (EBUSY, e.g.
/// opened by QEMU) is attached as `raw:` instead, and the returned flag says
/// so.
pub fn open(spec: &PortSpec, opts: &OpenOptions) -> Result<(Port, bool), PortError> {
    match spec {
        PortSpec::Tap(name) => match TapPort::open_with_mac(name, opts.mtu, opts.mac) {
            Ok(t) => Ok((t.into(), false)),
            Err(PortError::Busy { .. }) => Ok((RawPort::open(name, !opts.no_claim)?.into(), true)),
            Err(e) => Err(e),
        },
        PortSpec::Raw(name) => Ok((RawPort::open(name, !opts.no_claim)?.into(), false)),
        PortSpec::Unix(path) => Ok((
            UnixStreamPort::open(path, opts.socket_mode.unwrap_or(0o600))?.into(),
            false,
        )),
        PortSpec::UnixDgram(path) => Ok((
            UnixDgramPort::open(path, opts.socket_mode.unwrap_or(0o600))?.into(),
            false,
        )),
        PortSpec::Vxlan(name) => {
            let o = opts.vxlan.as_ref().ok_or_else(|| PortError::BadName {
                port: spec.name(),
                why: "a vxlan port needs its settings (vni, local, remote) from the config or `vswitchctl port add`".into(),
            })?;
            let port = match o.encap {
                Encap::Vswitchd => VxlanPort::open(name, o)?.into(),
                Encap::Kernel => KernelVxlanPort::open(name, o)?.into(),
            };
            Ok((port, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            PortSpec::parse("tap0").unwrap(),
            PortSpec::Tap("tap0".into())
        );
        assert_eq!(
            PortSpec::parse("raw:veth1").unwrap(),
            PortSpec::Raw("veth1".into())
        );
        assert_eq!(PortSpec::parse("raw:veth1").unwrap().name(), "raw:veth1");
        for bad in [
            "",
            "raw:",
            "a/b",
            "a b",
            "0123456789abcdef",
            "..",
            "foo:bar",
        ] {
            let e = PortSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("port `"), "{bad}: {e}");
        }
        assert!(
            PortSpec::parse("0123456789abcde").is_ok(),
            "15 bytes is fine"
        );
    }

    #[test]
    fn errors_can_name_another_port() {
        let e = PortError::NoInterface {
            port: "raw:vx1".into(),
        }
        .for_port("vxlan:vx1");
        assert!(e.to_string().starts_with("port `vxlan:vx1`"), "{e}");
        let e = PortError::Io {
            port: "raw:vx1".into(),
            step: "bring up",
            source: io::Error::from_raw_os_error(libc::EPERM),
        }
        .for_port("vxlan:vx1");
        assert!(
            e.to_string()
                .starts_with("port `vxlan:vx1`: bring up failed"),
            "{e}"
        );
    }

    #[test]
    fn pair_round_trip() {
        let (port, peer) = pair().unwrap();
        peer.send(&[1, 2, 3]).unwrap();
        let mut buf = [0xffu8; 64];
        let n = port.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
        port.send(&buf[..n]).unwrap();
        let got = peer
            .recv_timeout(std::time::Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(port.recv(&mut buf).is_err(), "nothing left: EAGAIN");
    }
}
