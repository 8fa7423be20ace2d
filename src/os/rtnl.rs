//! Placing a TAP vswitchd created: move it into a network namespace, bring
//! it up and give it addresses there (rtnetlink), so a host attaches with one
//! line of config instead of a series of `ip` commands. And the kernel
//! `vxlan` device behind a `vxlan:` port with `encap = "kernel"`: created,
//! given its flood list and static MACs, deleted.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use crate::os::sys;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWNEIGH: u16 = 28;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_VXLAN_LOCAL6: u16 = 17;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NTF_SELF: u8 = 0x02;
/// `bridge fdb add/append` without a state: NUD_NOARP | NUD_PERMANENT.
const NUD_STATIC: u16 = 0x40 | 0x80;
const AF_BRIDGE: u8 = 7;
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

/// A kernel `vxlan` device's settings (`ip link add NAME type vxlan id VNI
/// local LOCAL dstport PORT [nolearning]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelVxlan {
    pub vni: u32,
    pub local: IpAddr,
    pub dstport: u16,
    pub learning: bool,
    pub mtu: u32,
}

/// The alias vswitchd gives the kernel devices it creates, so that after a
/// crash it knows a leftover device as its own.
pub const OWN_ALIAS: &str = "vswitchd vxlan port";

fn new_vxlan_msg(ifname: &str, v: &KernelVxlan) -> Vec<u8> {
    let mut data = Vec::new();
    push_attr(&mut data, IFLA_VXLAN_ID, &v.vni.to_ne_bytes());
    match v.local {
        IpAddr::V4(a) => push_attr(&mut data, IFLA_VXLAN_LOCAL, &a.octets()),
        IpAddr::V6(a) => push_attr(&mut data, IFLA_VXLAN_LOCAL6, &a.octets()),
    }
    push_attr(&mut data, IFLA_VXLAN_PORT, &v.dstport.to_be_bytes());
    push_attr(&mut data, IFLA_VXLAN_LEARNING, &[v.learning as u8]);
    let mut info = Vec::new();
    push_attr(&mut info, IFLA_INFO_KIND, b"vxlan");
    push_attr(&mut info, IFLA_INFO_DATA, &data);
    let mut body = ifinfo(0);
    push_attr(&mut body, IFLA_IFNAME, &c_string(ifname));
    push_attr(&mut body, IFLA_MTU, &v.mtu.to_ne_bytes());
    push_attr(&mut body, IFLA_LINKINFO, &info);
    body
}

fn c_string(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

/// Creates kernel vxlan device `ifname` (down) in vswitchd's namespace,
/// with alias [`OWN_ALIAS`]; returns its index. `EEXIST` if a device of
/// that name exists.
pub fn add_vxlan(ifname: &str, v: &KernelVxlan) -> io::Result<u32> {
    request(
        RTM_NEWLINK,
        NLM_F_CREATE | NLM_F_EXCL,
        &new_vxlan_msg(ifname, v),
    )?;
    // The kernel takes an alias only on a change, not with the creation.
    let index = sys::if_index(ifname)?;
    let mut body = ifinfo(index);
    push_attr(&mut body, IFLA_IFALIAS, OWN_ALIAS.as_bytes());
    request(RTM_NEWLINK, 0, &body).inspect_err(|_| {
        let _ = del_link(index);
    })?;
    Ok(index)
}

/// Deletes the interface with index `index`.
pub fn del_link(index: u32) -> io::Result<()> {
    request(RTM_DELLINK, 0, &ifinfo(index))
}

fn fdb_msg(index: u32, mac: [u8; 6], dst: IpAddr) -> Vec<u8> {
    // struct ndmsg: family, 3 pad, ifindex, state, flags, type.
    let mut body = vec![AF_BRIDGE, 0, 0, 0];
    body.extend_from_slice(&(index as i32).to_ne_bytes());
    body.extend_from_slice(&NUD_STATIC.to_ne_bytes());
    body.extend_from_slice(&[NTF_SELF, 0]);
    push_attr(&mut body, NDA_LLADDR, &mac);
    match dst {
        IpAddr::V4(a) => push_attr(&mut body, NDA_DST, &a.octets()),
        IpAddr::V6(a) => push_attr(&mut body, NDA_DST, &a.octets()),
    }
    body
}

/// Adds a static entry `mac -> dst` to vxlan device `index`'s forwarding
/// table; `append` adds another destination to an existing MAC (the
/// all-zero MAC's list is the flood list), as `bridge fdb append` does.
pub fn add_vxlan_fdb(index: u32, mac: [u8; 6], dst: IpAddr, append: bool) -> io::Result<()> {
    let flags = NLM_F_CREATE | if append { NLM_F_APPEND } else { NLM_F_EXCL };
    request(RTM_NEWNEIGH, flags, &fdb_msg(index, mac, dst))
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

    /// Walks netlink attributes: (type, payload) pairs.
    fn attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while b.len() >= 4 {
            let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
            out.push((u16::from_ne_bytes([b[2], b[3]]), b[4..len].to_vec()));
            b = &b[len.next_multiple_of(4).min(b.len())..];
        }
        out
    }

    #[test]
    fn vxlan_device_request() {
        let v = KernelVxlan {
            vni: 100,
            local: "198.19.7.2".parse().unwrap(),
            dstport: 4789,
            learning: false,
            mtu: 1450,
        };
        let m = new_vxlan_msg("vx100", &v);
        assert_eq!(&m[..16], &ifinfo(0)[..]);
        let top = attrs(&m[16..]);
        assert_eq!(top[0], (IFLA_IFNAME, b"vx100\0".to_vec()));
        assert_eq!(top[1], (IFLA_MTU, 1450u32.to_ne_bytes().to_vec()));
        assert_eq!(top[2].0, IFLA_LINKINFO);
        let info = attrs(&top[2].1);
        assert_eq!(info[0], (IFLA_INFO_KIND, b"vxlan".to_vec()));
        let data = attrs(&info[1].1);
        assert_eq!(
            data,
            vec![
                (IFLA_VXLAN_ID, 100u32.to_ne_bytes().to_vec()),
                (IFLA_VXLAN_LOCAL, vec![198, 19, 7, 2]),
                (IFLA_VXLAN_PORT, vec![0x12, 0xb5]),
                (IFLA_VXLAN_LEARNING, vec![0]),
            ]
        );
        let v6 = KernelVxlan {
            local: "fd00::2".parse().unwrap(),
            ..v
        };
        let m = new_vxlan_msg("vx100", &v6);
        let top = attrs(&m[16..]);
        let data = attrs(&attrs(&top[2].1)[1].1);
        assert_eq!(data[1].0, IFLA_VXLAN_LOCAL6);
        assert_eq!(data[1].1.len(), 16);
    }

    #[test]
    fn fdb_entry_request() {
        let m = fdb_msg(7, [0; 6], "198.19.7.1".parse().unwrap());
        assert_eq!(m[0], AF_BRIDGE);
        assert_eq!(&m[4..8], &7i32.to_ne_bytes());
        assert_eq!(u16::from_ne_bytes([m[8], m[9]]), 0xc0);
        assert_eq!(m[10], NTF_SELF);
        assert_eq!(
            attrs(&m[12..]),
            vec![(NDA_LLADDR, vec![0; 6]), (NDA_DST, vec![198, 19, 7, 1])]
        );
    }

    #[test]
    fn attributes_are_aligned() {
        let mut m = Vec::new();
        push_attr(&mut m, 1, &[1, 2, 3, 4, 5]);
        assert_eq!(m.len(), 12);
        assert_eq!(u16::from_ne_bytes([m[0], m[1]]), 9);
    }
}
