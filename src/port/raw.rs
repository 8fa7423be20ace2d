//! `raw:IFNAME` ports: attach to an existing interface (a QEMU or libvirt
//! tap, a veth end, a NIC) with an AF_PACKET socket, as the kernel bridge
//! enslaves a device. The socket carries the virtio-net header
//! (PACKET_VNET_HDR) so GSO frames cross whole, ignores its own outgoing
//! copies, and re-inserts VLAN tags the kernel moved into aux data.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::PortError;
use crate::os::sys;
use crate::wire::vnet::{VNET_HDR_LEN, VnetHdr};

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: u16 = 1;
const ETH_P_ALL: u16 = 0x0003;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    ty: u16,
    alen: u16,
    address: [u8; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

/// An AF_PACKET socket bound to one interface.
pub struct RawPort {
    ifname: String,
    ifindex: u32,
    fd: OwnedFd,
    mtu: usize,
    /// Settings changed to claim the interface, with their old values.
    claimed: Vec<(String, String)>,
}

/// Takes an interface away from the host's own network stack, as enslaving
/// it to a kernel bridge does, so the host does not answer ARP on it with
/// the interface's MAC (ARP flux) or send IPv6 link-local traffic on it:
/// `arp_ignore = 8` and `disable_ipv6 = 1` for that interface. Returns the
/// settings changed, with their old values, to restore on close.
pub(super) fn claim(ifname: &str) -> Vec<(String, String)> {
    let mut changed = Vec::new();
    for (path, value) in [
        (format!("/proc/sys/net/ipv4/conf/{ifname}/arp_ignore"), "8"),
        (
            format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
            "1",
        ),
    ] {
        let Ok(old) = std::fs::read_to_string(&path) else {
            continue;
        };
        if old.trim() == value {
            continue;
        }
        match std::fs::write(&path, value) {
            Ok(()) => changed.push((path, old.trim().to_string())),
            // A read-only /proc/sys (a sandbox: ProtectKernelTunables=
            // without the unit's carve-out) leaves the host stack on the
            // interface: say so, the port still works.
            Err(e) => tracing::warn!(
                port = %format!("raw:{ifname}"),
                "cannot claim the interface: writing {value} to {path}: {e} (the host may answer ARP on it; allow writes to /proc/sys/net/ipv4/conf and /proc/sys/net/ipv6/conf, or set claim = false)"
            ),
        }
    }
    changed
}

impl Drop for RawPort {
    fn drop(&mut self) {
        // Give the interface back (it may be gone already: then nothing to do).
        if sys::if_index(&self.ifname).is_ok_and(|i| i == self.ifindex) {
            for (path, old) in &self.claimed {
                let _ = std::fs::write(path, old);
            }
        }
    }
}

impl RawPort {
    /// Attaches to `ifname`; with `claim`, takes it from the host stack
    /// (`arp_ignore` and `disable_ipv6` on it, restored on close).
    pub fn open(ifname: &str, claim_it: bool) -> Result<RawPort, PortError> {
        let io = |step: &'static str| {
            move |e| PortError::Io {
                port: format!("raw:{ifname}"),
                step,
                source: e,
            }
        };
        let ifindex = sys::if_index(ifname).map_err(|_| PortError::NoInterface {
            port: format!("raw:{ifname}"),
        })?;
        let fd = sys::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ETH_P_ALL.to_be() as libc::c_int,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::Permission {
                port: format!("raw:{ifname}"),
                source: e,
            },
            _ => io("socket(AF_PACKET)")(e),
        })?;
        let one: libc::c_int = 1;
        sys::setsockopt(&fd, SOL_PACKET, PACKET_VNET_HDR, &one).map_err(io("PACKET_VNET_HDR"))?;
        sys::setsockopt(&fd, SOL_PACKET, PACKET_AUXDATA, &one).map_err(io("PACKET_AUXDATA"))?;
        sys::setsockopt(&fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one)
            .map_err(io("PACKET_IGNORE_OUTGOING"))?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a live sockaddr_ll and we pass its exact size.
        sys::cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map_err(io("bind"))?;
        let mreq = PacketMreq {
            ifindex: ifindex as libc::c_int,
            ty: PACKET_MR_PROMISC,
            alen: 0,
            address: [0; 8],
        };
        sys::setsockopt(&fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(io("promiscuous mode"))?;
        sys::set_up(ifname).map_err(io("bring up"))?;
        let mtu = sys::get_mtu(ifname).map_err(io("read MTU"))?;
        let claimed = if claim_it { claim(ifname) } else { Vec::new() };
        Ok(RawPort {
            ifname: ifname.to_string(),
            ifindex,
            fd,
            mtu,
            claimed,
        })
    }
}

impl RawPort {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // Leave room to re-insert a 4-byte tag.
        let room = buf.len().saturating_sub(4);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: room,
        };
        let mut cbuf = [0u64; 16];
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: `msg` points at `iov` (into `buf`, `room` bytes) and at
        // `cbuf`, all live and exclusively borrowed for the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > room {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let mut aux = None;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel just
        // filled, bounded by msg_controllen; we copy the payload out with
        // read_unaligned since cmsg data need not be aligned for the type.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                    aux = Some(std::ptr::read_unaligned(
                        libc::CMSG_DATA(c) as *const TpacketAuxdata
                    ));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        match aux {
            Some(a) if a.status & TP_STATUS_VLAN_VALID != 0 && n >= VNET_HDR_LEN + 12 => {
                let tpid = if a.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    a.vlan_tpid
                } else {
                    0x8100
                };
                Ok(reinsert_tag(buf, n, tpid, a.vlan_tci))
            }
            _ => Ok(n),
        }
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    pub fn carrier(&self) -> Option<bool> {
        // EINVAL (admin down) reads as no carrier; a missing file (the
        // interface is gone) is for `alive` to report.
        match std::fs::read_to_string(format!("/sys/class/net/{}/carrier", self.ifname)) {
            Ok(s) => Some(s.trim() == "1"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(_) => Some(false),
        }
    }

    pub fn alive(&self) -> bool {
        // Deleted, or deleted and re-created (a new ifindex): either way
        // this socket no longer sees the device.
        sys::if_index(&self.ifname).is_ok_and(|i| i == self.ifindex)
    }
}

/// Puts a tag stripped by the kernel back after the MAC addresses of the
/// frame in `buf[..n]` (which starts with a virtio-net header). Returns the
/// new length; `buf` must have 4 spare bytes.
fn reinsert_tag(buf: &mut [u8], n: usize, tpid: u16, tci: u16) -> usize {
    let at = VNET_HDR_LEN + 12;
    buf.copy_within(at..n, at + 4);
    buf[at..at + 2].copy_from_slice(&tpid.to_be_bytes());
    buf[at + 2..at + 4].copy_from_slice(&tci.to_be_bytes());
    let mut h = VnetHdr::parse(buf);
    h.shift(4);
    h.write(buf);
    n + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_goes_back_after_the_macs() {
        let mut buf = vec![0u8; 64];
        let frame = [1u8, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00, 0xaa];
        buf[VNET_HDR_LEN..VNET_HDR_LEN + frame.len()].copy_from_slice(&frame);
        let n = reinsert_tag(&mut buf, VNET_HDR_LEN + frame.len(), 0x8100, 0x000a);
        assert_eq!(n, VNET_HDR_LEN + frame.len() + 4);
        assert_eq!(
            &buf[VNET_HDR_LEN..n],
            &[
                1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x81, 0x00, 0x00, 0x0a, 0x08, 0x00, 0xaa
            ]
        );
    }
}
