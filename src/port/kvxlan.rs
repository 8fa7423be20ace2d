//! `vxlan:NAME` ports with `encap = "kernel"`: vswitchd creates a Linux
//! `vxlan` device named NAME (VNI, local address, UDP port and learning
//! from the port's settings, the flood list and static MACs in its
//! forwarding table) and attaches to it as it attaches a `raw:` port. The
//! kernel encapsulates and decapsulates: a TCP GSO frame from a TAP leaves
//! as one UDP-tunnel GSO packet, segmented (if at all) by the underlay
//! device, and the kernel's VXLAN GRO hands received segments over joined.
//! That is the kernel VTEP's own data path, with vswitchd's switching in
//! front of it. What it gives up against vswitchd's own encapsulation
//! (src/port/vxlan.rs): per-remote counters, the remote in `fdb show` (the
//! kernel device keeps MAC -> remote: `bridge fdb show dev NAME`), and BGP
//! EVPN. The device goes when the port goes.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::raw::{RawPort, claim};
use super::vxlan::{VxlanOptions, inner_mtu};
use super::{PortError, check_ifname};
use crate::os::rtnl::{self, KernelVxlan};
use crate::os::sys;

/// A kernel vxlan device vswitchd made, deleted on drop (unless it was
/// deleted, or deleted and made again by someone, meanwhile).
struct OwnedDevice {
    ifname: String,
    ifindex: u32,
}

impl Drop for OwnedDevice {
    fn drop(&mut self) {
        if sys::if_index(&self.ifname).is_ok_and(|i| i == self.ifindex)
            && let Err(e) = rtnl::del_link(self.ifindex)
        {
            tracing::warn!(
                device = self.ifname.as_str(),
                "cannot delete the kernel vxlan device: {e}"
            );
        }
    }
}

/// A `vxlan:` port whose encapsulation is the kernel's.
pub struct KernelVxlanPort {
    // Declared first, dropped first: the socket closes before the device
    // goes.
    raw: RawPort,
    _device: OwnedDevice,
    vni: u32,
    local: SocketAddr,
}

impl KernelVxlanPort {
    pub fn open(name: &str, o: &VxlanOptions) -> Result<KernelVxlanPort, PortError> {
        let port = format!("vxlan:{name}");
        // The name is the kernel device's.
        check_ifname(name).map_err(|e| e.for_port(&port))?;
        let io = |step: &'static str| {
            let port = port.clone();
            move |source| PortError::Io { port, step, source }
        };
        let settings = KernelVxlan {
            vni: o.vni,
            local: o.local,
            dstport: o.dstport,
            learning: o.learning,
            mtu: inner_mtu(o.local) as u32,
        };
        let ifindex = create(name, &settings).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => PortError::Io {
                port: port.clone(),
                step: "creating the kernel vxlan device (another vxlan device has this VNI, local address and port)",
                source: e,
            },
            _ => io("creating the kernel vxlan device")(e),
        })?;
        let device = OwnedDevice {
            ifname: name.to_string(),
            ifindex,
        };
        for r in &o.remotes {
            rtnl::add_vxlan_fdb(ifindex, [0; 6], *r, true)
                .map_err(io("adding a remote to the device's flood list"))?;
        }
        for (mac, r) in &o.statics {
            rtnl::add_vxlan_fdb(ifindex, mac.0, *r, false)
                .map_err(io("adding a static MAC to the device"))?;
        }
        // The host's stack stays off the device from the start (no IPv6
        // link-local address, no router solicitations into the segment).
        let _ = claim(name);
        let raw = RawPort::open(name, false).map_err(|e| match e {
            // Only bringing the device up binds its UDP port.
            PortError::Io { source, .. } if source.raw_os_error() == Some(libc::EADDRINUSE) => {
                PortError::Io {
                    port: port.clone(),
                    step: "bringing the kernel vxlan device up (the UDP port is taken on this address: another vxlan: port, or a program bound to it)",
                    source,
                }
            }
            // Told of this port, not of `raw:NAME`.
            other => other.for_port(&port),
        })?;
        Ok(KernelVxlanPort {
            raw,
            _device: device,
            vni: o.vni,
            local: SocketAddr::new(o.local, o.dstport),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.raw.fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.raw.recv(buf)
    }

    pub fn mtu(&self) -> usize {
        self.raw.mtu()
    }

    pub fn vni(&self) -> u32 {
        self.vni
    }

    /// `local:dstport`.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn alive(&self) -> bool {
        self.raw.alive()
    }
}

/// Creates the device and returns its index; a leftover of an earlier
/// vswitchd (known by its alias) is replaced, any other device of that
/// name is refused.
fn create(name: &str, settings: &KernelVxlan) -> io::Result<u32> {
    if let Ok(index) = sys::if_index(name) {
        let alias =
            std::fs::read_to_string(format!("/sys/class/net/{name}/ifalias")).unwrap_or_default();
        if alias.trim() != rtnl::OWN_ALIAS {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "an interface named `{name}` exists and vswitchd did not make it; delete it or name the port otherwise"
                ),
            ));
        }
        tracing::info!(
            device = name,
            "replacing a kernel vxlan device left by an earlier vswitchd"
        );
        rtnl::del_link(index)?;
    }
    rtnl::add_vxlan(name, settings)
}
