//! TAP ports: vswitchd creates (or opens a free persistent) TAP device and
//! owns its fd, with a virtio-net header before every frame and TSO/GSO and
//! checksum offloads granted, so large TCP segments cross the switch whole.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::PortError;
use crate::os::sys::{self, IfReq};
use crate::wire::vnet::VNET_HDR_LEN;

/// Path of the TUN/TAP clone device.
pub const TUN_PATH: &str = "/dev/net/tun";

/// An open TAP device.
pub struct TapPort {
    fd: OwnedFd,
    mtu: usize,
}

impl TapPort {
    /// Creates TAP `name` (or attaches to the persistent TAP of that name),
    /// enables the virtio-net header and offloads, sets the MTU if asked,
    /// and brings it up.
    pub fn open(name: &str, mtu: Option<usize>) -> Result<TapPort, PortError> {
        Self::open_with_mac(name, mtu, None)
    }

    /// [`TapPort::open`], also setting the device's MAC address.
    pub fn open_with_mac(
        name: &str,
        mtu: Option<usize>,
        mac: Option<[u8; 6]>,
    ) -> Result<TapPort, PortError> {
        let fd = sys::open(TUN_PATH, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC).map_err(
            |e| PortError::TunDevice {
                port: name.into(),
                source: e,
            },
        )?;
        let mut ifr = IfReq::new(name);
        ifr.set_short((libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16);
        if let Err(e) = sys::ioctl_ifreq(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) {
            return Err(match e.raw_os_error() {
                Some(libc::EBUSY) => PortError::Busy { port: name.into() },
                Some(libc::EINVAL) if super::interface_exists(name) => {
                    PortError::NotATap { port: name.into() }
                }
                Some(libc::EPERM) | Some(libc::EACCES) => PortError::Permission {
                    port: name.into(),
                    source: e,
                },
                _ => PortError::Io {
                    port: name.into(),
                    step: "TUNSETIFF",
                    source: e,
                },
            });
        }
        let io = |step: &'static str| {
            move |e| PortError::Io {
                port: name.to_string(),
                step,
                source: e,
            }
        };
        let mut sz = VNET_HDR_LEN as libc::c_int;
        sys::ioctl_int_ptr(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &mut sz)
            .map_err(io("TUNSETVNETHDRSZ"))?;
        sys::ioctl_int(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            (libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN).into(),
        )
        .map_err(io("TUNSETOFFLOAD"))?;
        if let Some(m) = mtu {
            sys::set_mtu(name, m).map_err(io("set MTU"))?;
        }
        if let Some(m) = mac {
            sys::set_mac(name, m).map_err(io("set MAC address"))?;
        }
        let mtu = sys::get_mtu(name).map_err(io("read MTU"))?;
        sys::set_up(name).map_err(io("bring up"))?;
        Ok(TapPort { fd, mtu })
    }
}

impl TapPort {
    /// Re-attaches to an existing persistent TAP without ever creating
    /// one: if opening it created a new device (the old one vanished or
    /// moved away in between), that device is closed again (it disappears)
    /// and `Ok(None)` says "not there".
    pub fn reopen_existing(
        name: &str,
        mtu: Option<usize>,
        mac: Option<[u8; 6]>,
    ) -> Result<Option<TapPort>, PortError> {
        let t = Self::open_with_mac(name, mtu, mac)?;
        let mut ifr = IfReq::new(name);
        sys::ioctl_ifreq(t.fd.as_raw_fd(), libc::TUNGETIFF, &mut ifr).map_err(|e| {
            PortError::Io {
                port: name.into(),
                step: "TUNGETIFF",
                source: e,
            }
        })?;
        if i32::from(ifr.short()) & libc::IFF_PERSIST == 0 {
            return Ok(None);
        }
        Ok(Some(t))
    }
}

impl TapPort {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.fd.as_raw_fd(), buf)
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }
}
