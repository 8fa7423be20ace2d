//! Placing a TAP vswitchd created: move it into a network namespace, bring
//! it up and give it addresses there (rtnetlink), so a host attaches with one
//! line of config instead of a series of `ip` commands.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use crate::os::sys;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// An interface address with its prefix length, e.g. `198.18.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for IfAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<IfAddr, String> {
        let err = || format!("`{s}` is not an address with a prefix (e.g. 198.18.0.1/24)");
        let (a, p) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        let prefix: u8 = p.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err());
        }
        Ok(IfAddr { addr, prefix })
    }
}

impl std::fmt::Display for IfAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn push_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    while !msg.len().is_multiple_of(4) {
        msg.push(0);
    }
}

/// Sends one request on a fresh NETLINK_ROUTE socket (in the calling
/// thread's namespace) and waits for its acknowledgement.
fn request(ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
    let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    msg.extend_from_slice(body);
    sys::write(fd.as_raw_fd(), &msg)?;
    let mut buf = [0u8; 4096];
    let n = sys::read(fd.as_raw_fd(), &mut buf)?;
    if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
        let code = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
        if code != 0 {
            return Err(io::Error::from_raw_os_error(-code));
        }
        return Ok(());
    }
    Err(io::Error::other("unexpected rtnetlink answer"))
}

fn ifinfo(index: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    b
}

/// Runs `f` in a thread that has entered network namespace `netns` (a name
/// under /run/netns, as `ip netns` makes), or in the current one if None.
fn in_netns<T: Send + 'static>(
    netns: Option<&str>,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let Some(ns) = netns else { return f() };
    let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on a namespace fd we opened; it changes only this
        // short-lived thread's network namespace.
        sys::cvt(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Moves interface `ifname` (in vswitchd's namespace) into `netns`.
pub fn move_to_netns(ifname: &str, netns: &str) -> io::Result<()> {
    let index = sys::if_index(ifname)?;
    let ns = std::fs::File::open(format!("/run/netns/{netns}"))?;
    let mut body = ifinfo(index);
    push_attr(
        &mut body,
        IFLA_NET_NS_FD,
        &(ns.as_raw_fd() as u32).to_ne_bytes(),
    );
    request(RTM_NEWLINK, 0, &body)
}

/// How to set up a placed TAP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub addrs: Vec<IfAddr>,
    /// Default route(s) via these gateways, out of the TAP.
    pub gateways: Vec<IpAddr>,
}

/// Brings `ifname` up, adds its addresses and default routes, inside
/// `netns` (or here).
pub fn configure(netns: Option<&str>, ifname: &str, p: &Placement) -> io::Result<()> {
    let ifname = ifname.to_string();
    let addrs = p.addrs.clone();
    let gateways = p.gateways.clone();
    in_netns(netns, move || {
        let index = sys::if_index(&ifname)?;
        sys::set_up(&ifname)?;
        for a in &addrs {
            let (family, bytes) = match a.addr {
                IpAddr::V4(v) => (libc::AF_INET as u8, v.octets().to_vec()),
                IpAddr::V6(v) => (libc::AF_INET6 as u8, v.octets().to_vec()),
            };
            let mut body = vec![family, a.prefix, 0, 0];
            body.extend_from_slice(&index.to_ne_bytes());
            push_attr(&mut body, IFA_LOCAL, &bytes);
            push_attr(&mut body, IFA_ADDRESS, &bytes);
            match request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        for gw in &gateways {
            let (family, bytes) = match gw {
                IpAddr::V4(v) => (libc::AF_INET as u8, v.octets().to_vec()),
                IpAddr::V6(v) => (libc::AF_INET6 as u8, v.octets().to_vec()),
            };
            // struct rtmsg: family, dst_len, src_len, tos, table (main),
            // protocol (boot), scope (universe), type (unicast), flags.
            let mut body = vec![family, 0, 0, 0, 254, 3, 0, 1];
            body.extend_from_slice(&0u32.to_ne_bytes());
            push_attr(&mut body, RTA_GATEWAY, &bytes);
            push_attr(&mut body, RTA_OIF, &index.to_ne_bytes());
            match request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &body) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

/// Whether namespace `netns` exists (as `ip netns add` makes them).
pub fn netns_exists(netns: &str) -> bool {
    std::path::Path::new("/run/netns").join(netns).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let a: IfAddr = "198.18.0.1/24".parse().unwrap();
        assert_eq!(a.prefix, 24);
        assert_eq!(a.to_string(), "198.18.0.1/24");
        assert!("fd00::1/64".parse::<IfAddr>().is_ok());
        for bad in ["198.18.0.1", "198.18.0.1/33", "x/24", "fd00::1/129"] {
            assert!(bad.parse::<IfAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_are_aligned() {
        let mut m = Vec::new();
        push_attr(&mut m, 1, &[1, 2, 3, 4, 5]);
        assert_eq!(m.len(), 12);
        assert_eq!(u16::from_ne_bytes([m[0], m[1]]), 9);
    }
}
