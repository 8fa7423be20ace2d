//! `vxlan:NAME`: a VXLAN tunnel (RFC 7348) as one port of the switch, the
//! way a kernel `vxlan` device is one port of a bridge, and interoperable
//! with it.
//!
//! **Sockets.** One UDP socket bound to `local:dstport` receives (IPv4 or
//! IPv6 underlay). Sending goes through a small pool of UDP sockets bound
//! to `local:0`: the kernel gives each a port from its ephemeral range
//! (`net.ipv4.ip_local_port_range`, the range its own vxlan picks source
//! ports from), and a hash of the inner flow ([`vxlan::flow_hash`]: MACs,
//! IP addresses, L4 ports) picks the socket, so one flow keeps one outer
//! source port and different flows spread over ECMP paths. The outer
//! IPv4 packets may be fragmented by the kernel (`IP_PMTUDISC_DONT`, like
//! the kernel's vxlan without `df set`), and their UDP checksum is the
//! kernel's.
//!
//! **Receive.** A datagram lands in the worker's buffer so that its
//! 8-byte VXLAN header sits right before the inner frame's place after
//! the 10-byte virtio-net header: no copy. A clear I flag, another VNI or
//! a datagram too short for the headers is dropped and counted against
//! its sender (`Interrupted` tells the worker to read on). The socket
//! takes UDP GRO batches whole (`UDP_GRO`): a sending vswitchd's UDP GSO
//! batch, the segments of one TCP GSO frame, is joined back into that
//! frame ([`vxlan::coalesce_tcp`], every checksum checked first) and
//! goes on as one GSO frame; a batch that is anything else is handed on
//! datagram by datagram. Frames from any
//! sender are accepted, also with `learning = false` (the kernel's vxlan
//! does the same: it accepts and only does not learn). An inner TCP/UDP
//! checksum left for offload by a sender on this host (a kernel VTEP over
//! a veth) goes on with NEEDS_CSUM in the virtio-net header, so it is
//! finished where the frame leaves (by the TAP's kernel, or in software).
//!
//! **Send: the remote table.** Like the kernel's vxlan device, the port
//! keeps its own table inner MAC → remote VTEP ([`RemoteTable`]). A known
//! unicast MAC goes to its remote; an unknown, broadcast or multicast one
//! goes once to each remote of the flood list (head-end replication).
//! With `learning`, each received frame's inner source MAC is learned
//! behind the sender's outer address. Static entries (`static-macs` with
//! a `remote`) never age and are never moved.
//!
//! **Keeping the table in step with the switch's FDB.** The table holds
//! at most as many entries as the switch's FDB (its capacity); when full,
//! new MACs are not learned (counted, their frames flood — the kernel's
//! `maxaddress` behaviour), so a remote flooding source MACs cannot grow
//! it. Once a second the control plane sweeps it
//! ([`VxlanPort::sweep`]) with the switch's clock, ageing time and
//! capacity, and with a test of whether the switch's FDB still holds a
//! MAC on this port: a learned entry the switch no longer holds here
//! (aged, moved to another port, evicted or flushed) is removed, so a
//! stale remote cannot outlive the switch's entry by more than a sweep;
//! one unseen for the ageing time goes too. Time comes only from the
//! sweep (the port reads no clock): entries learned between two sweeps
//! carry the last sweep's time.
//!
//! **Counters.** Per remote (frames and bytes in and out, drops by
//! reason), for the first [`MAX_LABELLED`] remotes seen; the others are
//! summed in one `other` row, so metrics labels stay bounded.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

use super::PortError;
use crate::os::sys;
use crate::wire::Mac;
use crate::wire::vnet::{self, F_NEEDS_CSUM, VNET_HDR_LEN, VnetHdr};
use crate::wire::vxlan::{self, HEADER_LEN, VxlanError};

/// Remotes with their own counter row; the rest share `other`.
pub const MAX_LABELLED: usize = 64;
/// Sending sockets (distinct outer source ports).
const TX_SOCKETS: usize = 8;
/// The switch's default FDB capacity, until the first sweep says.
const DEFAULT_CAPACITY: usize = crate::switch::DEFAULT_CAPACITY;

/// What a `vxlan:` port is opened with (checked by the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanOptions {
    pub vni: u32,
    /// Underlay source address.
    pub local: IpAddr,
    /// The flood list.
    pub remotes: Vec<IpAddr>,
    pub dstport: u16,
    /// Learn inner source MAC → sender.
    pub learning: bool,
    /// Static MAC → remote entries.
    pub statics: Vec<(Mac, IpAddr)>,
    /// BGP EVPN adds remotes and MACs (src/evpn).
    pub evpn: bool,
    /// EVPN's configured route distinguisher and route target, if any.
    pub evpn_targets: crate::evpn::route::Targets,
    /// Who encapsulates.
    pub encap: Encap,
}

/// Who encapsulates a `vxlan:` port's frames (`encap` in its settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    /// vswitchd, through a UDP socket: per-remote counters, the remote in
    /// `fdb show`, BGP EVPN.
    #[default]
    Vswitchd,
    /// A kernel `vxlan` device vswitchd creates (src/port/kvxlan.rs): the
    /// kernel's speed towards kernel VTEPs (UDP-tunnel GSO and GRO).
    Kernel,
}

/// Why a frame did not reach (or come from) a remote, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteDrop {
    /// A received datagram was not for us ([`VxlanError`]).
    Rx(VxlanError),
    /// The inner frame is larger than the underlay carries.
    TooBig,
    /// The socket's queue was full.
    QueueFull,
    /// Another send error (unreachable network...).
    SendError,
}

impl RemoteDrop {
    pub const ALL: [RemoteDrop; 6] = [
        RemoteDrop::Rx(VxlanError::Truncated),
        RemoteDrop::Rx(VxlanError::NoIFlag),
        RemoteDrop::Rx(VxlanError::WrongVni),
        RemoteDrop::TooBig,
        RemoteDrop::QueueFull,
        RemoteDrop::SendError,
    ];

    fn index(self) -> usize {
        match self {
            RemoteDrop::Rx(VxlanError::Truncated) => 0,
            RemoteDrop::Rx(VxlanError::NoIFlag) => 1,
            RemoteDrop::Rx(VxlanError::WrongVni) => 2,
            RemoteDrop::TooBig => 3,
            RemoteDrop::QueueFull => 4,
            RemoteDrop::SendError => 5,
        }
    }

    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteDrop::Rx(e) => e.as_str(),
            RemoteDrop::TooBig => "too_big",
            RemoteDrop::QueueFull => "queue_full",
            RemoteDrop::SendError => "send_error",
        }
    }
}

/// One remote's counters (relaxed atomics, cumulative).
#[derive(Debug, Default)]
pub struct RemoteCounters {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    drops: [AtomicU64; 6],
}

impl RemoteCounters {
    fn count_drop(&self, why: RemoteDrop) {
        self.drops[why.index()].fetch_add(1, Relaxed);
    }

    fn rx_many(&self, frames: usize, bytes: usize) {
        self.rx_frames.fetch_add(frames as u64, Relaxed);
        self.rx_bytes.fetch_add(bytes as u64, Relaxed);
    }

    fn tx(&self, bytes: usize) {
        self.tx_frames.fetch_add(1, Relaxed);
        self.tx_bytes.fetch_add(bytes as u64, Relaxed);
    }
}

/// A remote's counters as shown (`remote` is `other` for the summed row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteStats {
    pub remote: String,
    /// In the flood list.
    pub flood: bool,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Drops by reason label (only reasons that happened).
    pub drops: Vec<(String, u64)>,
}

/// The remotes this port knows: counter rows, bounded.
struct Remotes {
    rows: RwLock<HashMap<IpAddr, Arc<RemoteCounters>>>,
    /// Insertion order, for display.
    order: Mutex<Vec<IpAddr>>,
    other: Arc<RemoteCounters>,
}

impl Remotes {
    fn new() -> Remotes {
        Remotes {
            rows: RwLock::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
            other: Arc::new(RemoteCounters::default()),
        }
    }

    /// The row of `ip`, made if there is room (else `other`).
    fn row(&self, ip: IpAddr) -> Arc<RemoteCounters> {
        if let Some(r) = self.rows.read().get(&ip) {
            return r.clone();
        }
        let mut rows = self.rows.write();
        if let Some(r) = rows.get(&ip) {
            return r.clone();
        }
        if rows.len() >= MAX_LABELLED {
            return self.other.clone();
        }
        let r = Arc::new(RemoteCounters::default());
        rows.insert(ip, r.clone());
        self.order.lock().push(ip);
        r
    }
}

/// An entry of the remote table.
#[derive(Debug)]
struct Entry {
    remote: IpAddr,
    counters: Arc<RemoteCounters>,
    /// Clock of the last frame from it (ms); unused for static entries.
    seen: AtomicU64,
    is_static: bool,
    /// Installed by the EVPN agent (also `is_static`: never aged, never
    /// moved by learning).
    evpn: bool,
}

impl Entry {
    /// An entry that never ages and learning never moves: configured
    /// (`static-macs`), or installed from an EVPN route with `evpn`.
    fn fixed(remote: IpAddr, counters: Arc<RemoteCounters>, evpn: bool) -> Entry {
        Entry {
            remote,
            counters,
            seen: AtomicU64::new(0),
            is_static: true,
            evpn,
        }
    }
}

/// What learning did with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    Known,
    New,
    Moved,
    /// The table is full (or the MAC is static elsewhere): not learned.
    Refused,
    /// Not a unicast source: never learned.
    Invalid,
}

/// Table counters.
#[derive(Debug, Default)]
pub struct TableStats {
    pub learned: AtomicU64,
    pub moved: AtomicU64,
    pub refused: AtomicU64,
    pub removed: AtomicU64,
}

/// Inner MAC → remote VTEP, like the kernel vxlan device's own fdb. Pure:
/// no fds, no clock (time is given).
pub struct RemoteTable {
    map: RwLock<HashMap<Mac, Entry>>,
    capacity: AtomicUsize,
    pub stats: TableStats,
}

/// One row of the table as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    pub mac: Mac,
    pub remote: IpAddr,
    pub is_static: bool,
    /// Installed from a BGP EVPN route.
    pub evpn: bool,
}

impl RemoteTable {
    pub fn new(capacity: usize) -> RemoteTable {
        RemoteTable {
            map: RwLock::new(HashMap::new()),
            capacity: AtomicUsize::new(capacity),
            stats: TableStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remote of `mac`, with its counters.
    fn get(&self, mac: Mac) -> Option<(IpAddr, Arc<RemoteCounters>)> {
        self.map
            .read()
            .get(&mac)
            .map(|e| (e.remote, e.counters.clone()))
    }

    /// The remote of `mac`.
    pub fn lookup(&self, mac: Mac) -> Option<IpAddr> {
        self.map.read().get(&mac).map(|e| e.remote)
    }

    /// Adds a static entry (replacing whatever `mac` had).
    fn add_static(&self, mac: Mac, remote: IpAddr, counters: Arc<RemoteCounters>) {
        self.map
            .write()
            .insert(mac, Entry::fixed(remote, counters, false));
    }

    /// Adds or moves an EVPN entry (replacing a learned one; a
    /// configured static entry stays). False if a static entry holds
    /// `mac`.
    fn add_evpn(&self, mac: Mac, remote: IpAddr, counters: Arc<RemoteCounters>) -> bool {
        let mut map = self.map.write();
        if map.get(&mac).is_some_and(|e| e.is_static && !e.evpn) {
            return false;
        }
        map.insert(mac, Entry::fixed(remote, counters, true));
        true
    }

    /// Removes `mac` if the EVPN agent installed it. True if it did.
    pub fn remove_evpn(&self, mac: Mac) -> bool {
        let mut map = self.map.write();
        if map.get(&mac).is_some_and(|e| e.evpn) {
            map.remove(&mac);
            return true;
        }
        false
    }

    /// `mac` was seen behind `remote` at `now`. A known MAC takes only a
    /// read lock; a new or moved one a short write lock. At capacity a new
    /// MAC is refused; a static entry is never moved.
    fn learn(
        &self,
        mac: Mac,
        remote: IpAddr,
        now: u64,
        counters: impl FnOnce() -> Arc<RemoteCounters>,
    ) -> Learned {
        if !mac.is_valid_source() {
            return Learned::Invalid;
        }
        {
            let map = self.map.read();
            if let Some(e) = map.get(&mac) {
                if e.is_static {
                    return if e.remote == remote {
                        Learned::Known
                    } else {
                        Learned::Refused
                    };
                }
                if e.remote == remote {
                    if e.seen.load(Relaxed) != now {
                        e.seen.store(now, Relaxed);
                    }
                    return Learned::Known;
                }
            }
        }
        let mut map = self.map.write();
        let counters = counters();
        if let Some(e) = map.get_mut(&mac) {
            if e.is_static {
                return Learned::Refused;
            }
            e.remote = remote;
            e.counters = counters;
            e.seen.store(now, Relaxed);
            self.stats.moved.fetch_add(1, Relaxed);
            return Learned::Moved;
        }
        if map.len() >= self.capacity.load(Relaxed) {
            self.stats.refused.fetch_add(1, Relaxed);
            return Learned::Refused;
        }
        map.insert(
            mac,
            Entry {
                remote,
                counters,
                seen: AtomicU64::new(now),
                is_static: false,
                evpn: false,
            },
        );
        self.stats.learned.fetch_add(1, Relaxed);
        Learned::New
    }

    /// Removes learned entries unseen for `ageing_ms` at `now`, and those
    /// `holds` says the switch's FDB no longer has on this port (unless
    /// seen within the last second: the switch learns a frame's source
    /// just after the port does). Sets the capacity; when it shrank,
    /// removes the oldest learned entries down to it. Returns how many
    /// went.
    pub fn sweep(
        &self,
        now: u64,
        ageing_ms: u64,
        capacity: usize,
        holds: impl Fn(Mac) -> bool,
    ) -> usize {
        self.capacity.store(capacity, Relaxed);
        let mut map = self.map.write();
        let before = map.len();
        map.retain(|mac, e| {
            if e.is_static {
                return true;
            }
            let age = now.saturating_sub(e.seen.load(Relaxed));
            age < ageing_ms && (age < 1000 || holds(*mac))
        });
        if map.len() > capacity {
            let mut learned: Vec<(u64, Mac)> = map
                .iter()
                .filter(|(_, e)| !e.is_static)
                .map(|(m, e)| (e.seen.load(Relaxed), *m))
                .collect();
            learned.sort();
            let extra = map.len() - capacity;
            for (_, m) in learned.into_iter().take(extra) {
                map.remove(&m);
            }
        }
        let gone = before - map.len();
        self.stats.removed.fetch_add(gone as u64, Relaxed);
        gone
    }

    /// Every entry, sorted by MAC.
    pub fn entries(&self) -> Vec<RemoteEntry> {
        let mut v: Vec<RemoteEntry> = self
            .map
            .read()
            .iter()
            .map(|(m, e)| RemoteEntry {
                mac: *m,
                remote: e.remote,
                is_static: e.is_static,
                evpn: e.evpn,
            })
            .collect();
        v.sort_by_key(|e| e.mac);
        v
    }
}

/// A socket address for the `libc` calls.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn new(sa: SocketAddr) -> RawAddr {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match sa {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in; we write one whole value into it.
                unsafe {
                    std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin);
                }
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe {
                    std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6);
                }
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn ptr(&self) -> *const libc::sockaddr {
        &self.storage as *const _ as *const libc::sockaddr
    }

    /// The IP address of a sockaddr the kernel filled in.
    fn ip_of(storage: &libc::sockaddr_storage) -> Option<IpAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // and storage is aligned and large enough for one.
                let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                let v6 = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    }
}

fn udp_socket(local: SocketAddr, name: &str) -> Result<OwnedFd, PortError> {
    let io = |step: &'static str| {
        move |e| PortError::Io {
            port: name.to_string(),
            step,
            source: e,
        }
    };
    let domain = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = sys::socket(
        domain,
        libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    )
    .map_err(io("socket(UDP)"))?;
    let one: libc::c_int = 1;
    if local.is_ipv6() {
        sys::setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &one)
            .map_err(io("IPV6_V6ONLY"))?;
        let dont: libc::c_int = libc::IPV6_PMTUDISC_DONT;
        let _ = sys::setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, &dont);
    } else {
        let dont: libc::c_int = libc::IP_PMTUDISC_DONT;
        let _ = sys::setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &dont);
    }
    let big: libc::c_int = 4 << 20;
    // The forced sizes need CAP_NET_ADMIN; the plain ones are capped by
    // net.core.{r,w}mem_max.
    if sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &big).is_err() {
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &big);
    }
    if sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &big).is_err() {
        let _ = sys::setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &big);
    }
    let a = RawAddr::new(local);
    // SAFETY: `a` holds a sockaddr of `a.len` bytes for the call.
    sys::cvt(unsafe { libc::bind(fd.as_raw_fd(), a.ptr(), a.len) }).map_err(|e| {
        let step = if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
            "bind (is `local` an address of this host?)"
        } else if e.raw_os_error() == Some(libc::EADDRINUSE) {
            "bind (another VTEP, e.g. a kernel vxlan device, holds this port)"
        } else {
            "bind"
        };
        PortError::Io {
            port: name.to_string(),
            step,
            source: e,
        }
    })?;
    Ok(fd)
}

/// The largest inner frame payload a tunnel from `local` carries: the
/// underlay interface's MTU less the encapsulation (50 bytes over IPv4, 70
/// over IPv6).
pub(super) fn inner_mtu(local: IpAddr) -> usize {
    let overhead = if local.is_ipv4() {
        vxlan::OVERHEAD_V4
    } else {
        vxlan::OVERHEAD_V6
    };
    underlay_mtu(local).saturating_sub(overhead).max(68)
}

/// The MTU of the interface holding `local` (1500 if none is found).
fn underlay_mtu(local: IpAddr) -> usize {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return 1500;
    }
    let mut name = None;
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getifaddrs returned, not yet
        // freed.
        let ifa = unsafe { &*p };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of the family it
            // names; sockaddr_storage is large enough for any, and we read
            // only the part of it the family defines.
            let st = unsafe {
                let mut st: libc::sockaddr_storage = std::mem::zeroed();
                let fam = (*ifa.ifa_addr).sa_family as libc::c_int;
                let len = match fam {
                    libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
                    libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
                    _ => 0,
                };
                std::ptr::copy_nonoverlapping(
                    ifa.ifa_addr as *const u8,
                    &mut st as *mut _ as *mut u8,
                    len,
                );
                st
            };
            if RawAddr::ip_of(&st) == Some(local) && !ifa.ifa_name.is_null() {
                // SAFETY: ifa_name is a NUL-terminated string in the list.
                let n = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                name = Some(n.to_string_lossy().into_owned());
                break;
            }
        }
        p = ifa.ifa_next;
    }
    // SAFETY: `ifap` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(ifap) };
    name.and_then(|n| sys::get_mtu(&n).ok()).unwrap_or(1500)
}

thread_local! {
    /// A per-thread buffer for software offloads: a frame whose checksum
    /// is finished here, or the datagrams of one GSO frame back to back.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The drop reason of a failed send.
fn send_drop(e: &io::Error) -> RemoteDrop {
    if sys::is_would_block(e) {
        RemoteDrop::QueueFull
    } else if e.raw_os_error() == Some(libc::EMSGSIZE) {
        RemoteDrop::TooBig
    } else {
        RemoteDrop::SendError
    }
}

/// The underlay's trouble is not the port's link: a send error is a drop,
/// never ENETDOWN/EIO (which would take the port down).
fn not_link_down(e: io::Error) -> io::Error {
    if sys::is_link_down(&e) {
        io::Error::from_raw_os_error(libc::EHOSTUNREACH)
    } else {
        e
    }
}

/// One `sendmsg` of the buffers in `parts` to `to`, non-blocking; with
/// `gso`, as UDP GSO datagrams of that size.
fn sendmsg(sock: &OwnedFd, to: SocketAddr, parts: &[&[u8]], gso: Option<u16>) -> io::Result<()> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; 2];
    let n = parts.len().min(2);
    for (v, p) in iov.iter_mut().zip(parts) {
        v.iov_base = p.as_ptr() as *mut libc::c_void;
        v.iov_len = p.len();
    }
    let a = RawAddr::new(to);
    // Room for one cmsg with a u16, aligned as cmsghdr needs.
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = a.ptr() as *mut libc::c_void;
    msg.msg_namelen = a.len;
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n;
    if let Some(size) = gso {
        // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
        let (space, len) = unsafe {
            (
                libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize,
                libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize,
            )
        };
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `cbuf` (32 bytes, 8-aligned),
        // which holds CMSG_SPACE(2) bytes, so CMSG_FIRSTHDR returns a
        // valid, aligned cmsghdr inside it and CMSG_DATA a pointer to 2
        // writable bytes after it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = len;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, size);
        }
    }
    // SAFETY: the message points at `a`, `iov` (and the buffers they
    // describe) and `cbuf`, all live for the call; the kernel only reads
    // them.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `UDP_GRO` from linux/udp.h (the libc crate has it for some targets
/// only): the socket takes UDP GRO batches whole, with their segment size
/// in a control message.
const UDP_GRO: libc::c_int = 104;

/// Where in the worker's buffer a datagram is read: its VXLAN header
/// right before the inner frame's place after the virtio-net header.
const RX_AT: usize = VNET_HDR_LEN - HEADER_LEN;

/// Datagrams of a UDP GRO batch still to be handed on one by one.
#[derive(Default)]
struct Queued {
    data: Vec<u8>,
    src: Option<IpAddr>,
    size: usize,
    next: usize,
}

/// One `recvmsg` into `room`, non-blocking: the length read, the
/// sender's address, and with UDP GRO the size of each datagram the
/// kernel joined into what was read.
fn recvmsg(sock: &OwnedFd, room: &mut [u8]) -> io::Result<(usize, Option<IpAddr>, Option<usize>)> {
    let mut iov = libc::iovec {
        iov_base: room.as_mut_ptr() as *mut libc::c_void,
        iov_len: room.len(),
    };
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // Room for one cmsg with an int, aligned as cmsghdr needs.
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &mut from as *mut _ as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: the message points at `from`, `iov` (describing `room`,
    // writable for its length) and `cbuf`, all live for the call and of
    // the sizes given.
    let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut gro = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR
    // and CMSG_NXTHDR walk only within them, and a UDP_GRO message's data
    // is one int (read unaligned).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                gro = usize::try_from(size).ok().filter(|s| *s > 0);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((r as usize, RawAddr::ip_of(&from), gro))
}

/// `vxlan:NAME`.
pub struct VxlanPort {
    name: String,
    vni: u32,
    dstport: u16,
    learning: bool,
    /// Where the receiving socket is bound.
    local: SocketAddr,
    /// Inner MTU (L3): the underlay's less the encapsulation.
    mtu: usize,
    rx: OwnedFd,
    tx: Vec<OwnedFd>,
    /// The flood list: the configured remotes, then those EVPN adds
    /// ([`VxlanPort::set_evpn_flood`]). Swapped whole; senders load it
    /// without a lock.
    flood: ArcSwap<Vec<(SocketAddr, Arc<RemoteCounters>)>>,
    /// The configured remotes.
    static_flood: Vec<IpAddr>,
    evpn: bool,
    evpn_targets: crate::evpn::route::Targets,
    table: RemoteTable,
    remotes: Remotes,
    /// The switch's clock at the last sweep (ms).
    clock: AtomicU64,
    /// Frames with nowhere to go (no remote known, empty flood list).
    pub no_remote: AtomicU64,
    /// Whether the kernel takes UDP GSO (turned off at the first refusal).
    udp_gso: std::sync::atomic::AtomicBool,
    /// The rest of a UDP GRO batch that is handed on datagram by datagram,
    /// and whether there is any (read without the lock on every receive).
    queued: std::sync::Mutex<Queued>,
    any_queued: std::sync::atomic::AtomicBool,
}

impl VxlanPort {
    pub fn open(name: &str, o: &VxlanOptions) -> Result<VxlanPort, PortError> {
        let port = format!("vxlan:{name}");
        let rx = udp_socket(SocketAddr::new(o.local, o.dstport), &port)?;
        // Take UDP GSO batches from a sending VTEP whole (Linux 5.0+;
        // without it they are split on arrival, which is only slower).
        let one: libc::c_int = 1;
        let _ = sys::setsockopt(&rx, libc::SOL_UDP, UDP_GRO, &one);
        let mut tx = Vec::new();
        for _ in 0..TX_SOCKETS {
            let s = udp_socket(SocketAddr::new(o.local, 0), &port)?;
            // Nothing is sent to these ports; keep their queues tiny.
            let small: libc::c_int = 0;
            let _ = sys::setsockopt(&s, libc::SOL_SOCKET, libc::SO_RCVBUF, &small);
            tx.push(s);
        }
        let mtu = inner_mtu(o.local);
        let remotes = Remotes::new();
        let flood: Vec<_> = o
            .remotes
            .iter()
            .map(|ip| (SocketAddr::new(*ip, o.dstport), remotes.row(*ip)))
            .collect();
        let table = RemoteTable::new(DEFAULT_CAPACITY);
        for (mac, ip) in &o.statics {
            table.add_static(*mac, *ip, remotes.row(*ip));
        }
        Ok(VxlanPort {
            name: port,
            vni: o.vni,
            dstport: o.dstport,
            local: SocketAddr::new(o.local, o.dstport),
            learning: o.learning,
            mtu,
            rx,
            tx,
            flood: ArcSwap::from_pointee(flood),
            static_flood: o.remotes.clone(),
            evpn: o.evpn,
            evpn_targets: o.evpn_targets,
            table,
            remotes,
            clock: AtomicU64::new(0),
            no_remote: AtomicU64::new(0),
            udp_gso: std::sync::atomic::AtomicBool::new(true),
            queued: Default::default(),
            any_queued: Default::default(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    pub fn mtu(&self) -> usize {
        self.mtu
    }

    pub fn vni(&self) -> u32 {
        self.vni
    }

    /// The address the port receives on (`local:dstport`).
    pub fn rx_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn table(&self) -> &RemoteTable {
        &self.table
    }

    /// Reads one datagram as \[zero virtio-net header]\[inner frame].
    /// A datagram that is not ours is counted and `Interrupted` returned
    /// (the worker reads on).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(r) = self.next_queued(buf) {
            return r;
        }
        let room = &mut buf[RX_AT..];
        let (n, from, gro) = recvmsg(&self.rx, room)?;
        let Some(src) = from else {
            return Err(io::ErrorKind::Interrupted.into());
        };
        let Some(size) = gro.filter(|size| n > *size) else {
            return self.deliver(src, n, buf);
        };
        // Several datagrams joined by the kernel's UDP GRO (a sending
        // VTEP's UDP GSO batch): one TCP stream's segments become one GSO
        // frame again, anything else goes on datagram by datagram.
        if let Some((len, hdr)) = vxlan::coalesce_tcp(&mut room[..n], size, self.vni) {
            let count = n.div_ceil(size);
            let row = self.remotes.row(src);
            row.rx_many(count, n - count * HEADER_LEN);
            let frame = &buf[VNET_HDR_LEN..VNET_HDR_LEN + len];
            self.learn(frame, src, &row);
            hdr.write(&mut buf[..VNET_HDR_LEN]);
            return Ok(VNET_HDR_LEN + len);
        }
        // The first datagram is in place: hand it on now, the rest later.
        {
            let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            q.data.clear();
            q.data.extend_from_slice(&buf[RX_AT + size..RX_AT + n]);
            q.src = Some(src);
            q.size = size;
            q.next = 0;
            self.any_queued.store(true, Relaxed);
        }
        self.deliver(src, size, buf)
    }

    /// The next datagram of a UDP GRO batch that could not be joined, as
    /// [`VxlanPort::recv`] returns it; None when none is left.
    fn next_queued(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if !self.any_queued.load(Relaxed) {
            return None;
        }
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let src = q.src?;
        let start = q.next;
        let end = (start + q.size).min(q.data.len());
        if start >= end {
            q.src = None;
            self.any_queued.store(false, Relaxed);
            return None;
        }
        q.next = end;
        let n = (end - start).min(buf.len() - RX_AT);
        buf[RX_AT..RX_AT + n].copy_from_slice(&q.data[start..start + n]);
        drop(q);
        Some(self.deliver(src, n, buf))
    }

    fn learn(&self, frame: &[u8], src: IpAddr, row: &Arc<RemoteCounters>) {
        if self.learning
            && let Some(mac) = vxlan::inner_src(frame)
        {
            let now = self.clock.load(Relaxed);
            self.table.learn(mac, src, now, || row.clone());
        }
    }

    /// Checks, counts and learns one datagram of `n` bytes from `src`
    /// that lies at `buf[RX_AT..]`, and returns it
    /// as \[virtio-net header]\[inner frame].
    fn deliver(&self, src: IpAddr, n: usize, buf: &mut [u8]) -> io::Result<usize> {
        let room = &buf[RX_AT..];
        let row = self.remotes.row(src);
        let inner = match vxlan::check(&room[..n], self.vni) {
            Ok(inner) => inner,
            Err(e) => {
                row.count_drop(RemoteDrop::Rx(e));
                return Err(io::ErrorKind::Interrupted.into());
            }
        };
        row.rx_many(1, inner.len());
        self.learn(inner, src, &row);
        // A sender on this host (a kernel VTEP over a veth) may have left
        // the inner checksum for offload, or handed its socket a whole GSO
        // packet: pass them on as such (see `vxlan::partial_checksum`,
        // `vxlan::oversize_tcp`), finished where the frame leaves.
        let big = inner.len() > self.mtu + crate::wire::ethernet::HEADER_LEN + 4;
        let frame = &mut buf[VNET_HDR_LEN..VNET_HDR_LEN + n - HEADER_LEN];
        let hdr = match big.then(|| vxlan::oversize_tcp(frame, self.mtu)).flatten() {
            Some(h) => h,
            None => match vxlan::partial_checksum(frame) {
                Some((csum_start, csum_offset)) => VnetHdr {
                    flags: F_NEEDS_CSUM,
                    csum_start,
                    csum_offset,
                    ..VnetHdr::default()
                },
                None => VnetHdr::default(),
            },
        };
        hdr.write(&mut buf[..VNET_HDR_LEN]);
        Ok(n - HEADER_LEN + VNET_HDR_LEN)
    }

    /// Sends \[virtio-net header]\[frame]. The port takes offloads (it
    /// reports them to the dataplane): a TCP GSO frame is cut here into
    /// segments no larger than the inner MTU, each behind its VXLAN
    /// header, and all go to a remote in one `sendmsg` with UDP GSO
    /// (`UDP_SEGMENT`): one system call per up to 64 KiB rather than per
    /// segment. A partial checksum is finished in software.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        let hdr = VnetHdr::parse(&buf[..VNET_HDR_LEN]);
        let frame = &buf[VNET_HDR_LEN..];
        if hdr.is_plain() {
            return self.send2(&[], frame);
        }
        SCRATCH.with(|sc| {
            let buf = &mut *sc.borrow_mut();
            if !hdr.is_gso() {
                buf.clear();
                buf.extend_from_slice(frame);
                vnet::finish_checksum(&hdr, buf)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                return self.send2(&[], buf);
            }
            self.send_gso(hdr, frame, buf)
        })
    }

    fn send_gso(&self, mut hdr: VnetHdr, frame: &[u8], batch: &mut Vec<u8>) -> io::Result<()> {
        // Segments no larger than the tunnel carries, whatever MSS the
        // sender's MTU gave.
        let hl = usize::from(hdr.hdr_len).saturating_sub(crate::wire::ethernet::HEADER_LEN);
        if hl > 0 && self.mtu > hl {
            hdr.gso_size = hdr.gso_size.min((self.mtu - hl).min(65535) as u16);
        }
        let vx = vxlan::header(self.vni);
        batch.clear();
        let mut first = 0usize;
        let mut n = 0usize;
        vnet::segment_into(&hdr, frame, batch, &vx, |out, at| {
            if n == 0 {
                first = out.len() - at + HEADER_LEN;
            }
            n += 1;
        })
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if n == 0 {
            return Ok(());
        }
        let too_big = first - HEADER_LEN > self.mtu + crate::wire::ethernet::HEADER_LEN + 4;
        let sock = &self.tx[vxlan::flow_hash(frame) as usize % self.tx.len()];
        let dst = vxlan::inner_dst(frame).unwrap_or(Mac::BROADCAST);
        let unicast = (!dst.is_multicast())
            .then(|| self.table.get(dst))
            .flatten()
            .map(|(ip, row)| (SocketAddr::new(ip, self.dstport), row));
        let flood = self.flood.load();
        let targets: &[(SocketAddr, Arc<RemoteCounters>)] = match &unicast {
            Some(t) => std::slice::from_ref(t),
            None => &flood,
        };
        if targets.is_empty() {
            self.no_remote.fetch_add(n as u64, Relaxed);
            return Ok(());
        }
        let inner_bytes = (batch.len() - n * HEADER_LEN) as u64;
        let mut last = Ok(());
        let mut any = false;
        for (to, row) in targets {
            if too_big {
                row.count_drop(RemoteDrop::TooBig);
                last = Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
                continue;
            }
            match self.send_batch(sock, *to, batch, first) {
                Ok(()) => {
                    any = true;
                    row.tx_frames.fetch_add(n as u64, Relaxed);
                    row.tx_bytes.fetch_add(inner_bytes, Relaxed);
                }
                Err(e) => {
                    row.count_drop(send_drop(&e));
                    last = Err(e);
                }
            }
        }
        if any {
            Ok(())
        } else {
            last.map_err(not_link_down)
        }
    }

    /// Sends `batch`, datagrams of `size` bytes back to back (the last may
    /// be shorter), to `to`: with UDP GSO where the kernel has it (up to
    /// 64 datagrams and 64 KiB a call), one by one where not.
    fn send_batch(
        &self,
        sock: &OwnedFd,
        to: SocketAddr,
        batch: &[u8],
        size: usize,
    ) -> io::Result<()> {
        let per_call = (65_000 / size).clamp(1, 64);
        for chunk in batch.chunks(per_call * size) {
            if chunk.len() > size && self.udp_gso.load(Relaxed) {
                match sendmsg(sock, to, &[chunk], Some(size as u16)) {
                    Ok(()) => continue,
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EINVAL) | Some(libc::ENOPROTOOPT) | Some(libc::EIO)
                        ) =>
                    {
                        tracing::info!(port = %self.name, "no UDP GSO here ({e}); sending datagrams one by one");
                        self.udp_gso.store(false, Relaxed);
                    }
                    Err(e) => return Err(e),
                }
            }
            for d in chunk.chunks(size) {
                sendmsg(sock, to, &[d], None)?;
            }
        }
        Ok(())
    }

    /// Encapsulates `frame` (plain: the dataplane finished offloads) and
    /// sends it to its remote, or to every remote of the flood list.
    pub fn send2(&self, _hdr: &[u8], frame: &[u8]) -> io::Result<()> {
        let hash = vxlan::flow_hash(frame);
        let sock = &self.tx[hash as usize % self.tx.len()];
        let too_big = frame.len() > self.mtu + crate::wire::ethernet::HEADER_LEN + 4;
        let dst = vxlan::inner_dst(frame).unwrap_or(Mac::BROADCAST);
        if !dst.is_multicast()
            && let Some((ip, row)) = self.table.get(dst)
        {
            if too_big {
                row.count_drop(RemoteDrop::TooBig);
                return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
            }
            return self.send_one(sock, SocketAddr::new(ip, self.dstport), &row, frame);
        }
        let flood = self.flood.load();
        if flood.is_empty() {
            self.no_remote.fetch_add(1, Relaxed);
            return Ok(());
        }
        let mut last = Ok(());
        let mut any = false;
        for (sa, row) in flood.iter() {
            if too_big {
                row.count_drop(RemoteDrop::TooBig);
                last = Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
                continue;
            }
            match self.send_one(sock, *sa, row, frame) {
                Ok(()) => any = true,
                Err(e) => last = Err(e),
            }
        }
        if any { Ok(()) } else { last }
    }

    fn send_one(
        &self,
        sock: &OwnedFd,
        to: SocketAddr,
        row: &RemoteCounters,
        frame: &[u8],
    ) -> io::Result<()> {
        let hdr = vxlan::header(self.vni);
        if let Err(e) = sendmsg(sock, to, &[&hdr, frame], None) {
            row.count_drop(send_drop(&e));
            return Err(not_link_down(e));
        }
        row.tx(frame.len());
        Ok(())
    }

    /// The control plane's once-a-second upkeep: the switch's clock
    /// (`now`, ms), its ageing time and FDB capacity, and whether its FDB
    /// still holds a MAC on this port. See the module header.
    pub fn sweep(
        &self,
        now: u64,
        ageing_ms: u64,
        capacity: usize,
        holds: impl Fn(Mac) -> bool,
    ) -> usize {
        self.clock.store(now, Relaxed);
        self.table.sweep(now, ageing_ms, capacity, holds)
    }

    /// Every remote's counters (flood list first, then in order seen), and
    /// the `other` row if it counted anything.
    pub fn remote_stats(&self) -> Vec<RemoteStats> {
        let flood: Vec<IpAddr> = self.flood.load().iter().map(|(sa, _)| sa.ip()).collect();
        let rows = self.remotes.rows.read();
        let show = |name: String, flood: bool, c: &RemoteCounters| RemoteStats {
            remote: name,
            flood,
            rx_frames: c.rx_frames.load(Relaxed),
            rx_bytes: c.rx_bytes.load(Relaxed),
            tx_frames: c.tx_frames.load(Relaxed),
            tx_bytes: c.tx_bytes.load(Relaxed),
            drops: RemoteDrop::ALL
                .iter()
                .map(|d| (d.as_str().to_string(), c.drops[d.index()].load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        };
        let mut v: Vec<RemoteStats> = self
            .remotes
            .order
            .lock()
            .iter()
            .filter_map(|ip| {
                rows.get(ip)
                    .map(|c| show(ip.to_string(), flood.contains(ip), c))
            })
            .collect();
        let o = show("other".into(), false, &self.remotes.other);
        if o.rx_frames + o.tx_frames > 0 || !o.drops.is_empty() {
            v.push(o);
        }
        v
    }

    /// The remote behind `mac`, if the table has one.
    pub fn remote_of(&self, mac: Mac) -> Option<IpAddr> {
        self.table.lookup(mac)
    }

    /// Whether BGP EVPN feeds this port (`evpn = true`).
    pub fn evpn(&self) -> bool {
        self.evpn
    }

    /// EVPN's configured RD and RT (`evpn-rd`, `evpn-rt`).
    pub fn evpn_targets(&self) -> crate::evpn::route::Targets {
        self.evpn_targets
    }

    /// Our VTEP address (`local`).
    pub fn local_ip(&self) -> IpAddr {
        self.local.ip()
    }

    /// Sets the flood list to the configured remotes plus `vteps` (the
    /// EVPN agent's type-3 routes), each once. Senders pick the new list
    /// up at their next frame.
    pub fn set_evpn_flood(&self, vteps: &[IpAddr]) {
        let mut ips = self.static_flood.clone();
        for v in vteps {
            if !ips.contains(v) {
                ips.push(*v);
            }
        }
        let list = ips
            .iter()
            .map(|ip| (SocketAddr::new(*ip, self.dstport), self.remotes.row(*ip)))
            .collect();
        self.flood.store(Arc::new(list));
    }

    /// Installs `mac` behind `remote` from an EVPN type-2 route: never
    /// aged, never moved by learning. False if a configured static entry
    /// holds the MAC.
    pub fn add_evpn_mac(&self, mac: Mac, remote: IpAddr) -> bool {
        self.table.add_evpn(mac, remote, self.remotes.row(remote))
    }

    /// Removes an EVPN-installed `mac`. True if there was one.
    pub fn remove_evpn_mac(&self, mac: Mac) -> bool {
        self.table.remove_evpn(mac)
    }
}

impl std::fmt::Debug for VxlanPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VxlanPort")
            .field("name", &self.name)
            .field("vni", &self.vni)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;

    fn mac(n: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, n])
    }

    fn row() -> Arc<RemoteCounters> {
        Arc::new(RemoteCounters::default())
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn table_learns_moves_and_refuses_at_capacity() {
        let t = RemoteTable::new(2);
        assert_eq!(t.learn(mac(1), A, 0, row), Learned::New);
        assert_eq!(t.learn(mac(1), A, 5, row), Learned::Known);
        assert_eq!(t.learn(mac(1), B, 6, row), Learned::Moved);
        assert_eq!(t.lookup(mac(1)), Some(B));
        assert_eq!(t.learn(mac(2), A, 0, row), Learned::New);
        assert_eq!(t.learn(mac(3), A, 0, row), Learned::Refused);
        assert_eq!(t.len(), 2);
        assert_eq!(t.learn(Mac::BROADCAST, A, 0, row), Learned::Invalid);
        assert_eq!(t.stats.refused.load(Relaxed), 1);
    }

    #[test]
    fn a_remote_flooding_source_macs_stays_bounded() {
        let t = RemoteTable::new(100);
        for i in 0..10_000u64 {
            let m = Mac::from_u64(0x0200_0000_0000 | i);
            t.learn(m, A, 0, row);
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.stats.refused.load(Relaxed), 9_900);
    }

    #[test]
    fn statics_never_move_or_age() {
        let t = RemoteTable::new(16);
        t.add_static(mac(1), A, row());
        assert_eq!(t.learn(mac(1), B, 0, row), Learned::Refused);
        assert_eq!(t.sweep(1_000_000, 1000, 16, |_| false), 0);
        assert_eq!(t.lookup(mac(1)), Some(A));
    }

    #[test]
    fn sweep_follows_the_switch_fdb_and_ageing() {
        let t = RemoteTable::new(16);
        t.learn(mac(1), A, 0, row);
        t.learn(mac(2), A, 0, row);
        t.learn(mac(3), A, 5_000, row);
        // mac(2) is no longer in the switch's FDB on this port.
        assert_eq!(t.sweep(5_500, 300_000, 16, |m| m != mac(2)), 1);
        assert_eq!(t.lookup(mac(2)), None);
        // A fresh entry is kept even if the switch has not learned it yet.
        assert_eq!(t.sweep(5_600, 300_000, 16, |_| false), 1);
        assert_eq!(t.lookup(mac(3)), Some(A));
        // Ageing.
        assert_eq!(t.sweep(400_000, 300_000, 16, |_| true), 1);
        assert!(t.is_empty());
        // A smaller capacity drops the oldest.
        for i in 0..8 {
            t.learn(mac(10 + i), A, 1000 + u64::from(i), row);
        }
        assert_eq!(t.sweep(1500, 300_000, 4, |_| true), 4);
        assert_eq!(t.lookup(mac(10)), None);
        assert_eq!(t.lookup(mac(17)), Some(A));
    }

    fn opts(remotes: Vec<IpAddr>, port: u16) -> VxlanOptions {
        VxlanOptions {
            vni: 100,
            local: A,
            remotes,
            dstport: port,
            learning: true,
            statics: vec![],
            evpn: false,
            evpn_targets: Default::default(),
            encap: Default::default(),
        }
    }

    fn wait_recv(p: &VxlanPort, buf: &mut [u8]) -> io::Result<usize> {
        for _ in 0..200 {
            match p.recv(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                r => return r,
            }
        }
        Err(io::ErrorKind::TimedOut.into())
    }

    fn frame(dst: Mac, src: Mac) -> Vec<u8> {
        let mut f = dst.0.to_vec();
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&[0x88, 0xb5]);
        f.extend_from_slice(b"vxlan test payload");
        f
    }

    #[test]
    fn encapsulates_floods_learns_and_counts_bad_input() {
        // The peer VTEP: a plain UDP socket on 127.0.0.1.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let peer_port = peer.local_addr().unwrap().port();
        // The port sends to dstport; the peer's port must be that, so
        // both ends use the peer's number (port and peer on one host).
        // The peer holds that port on 127.0.0.1: the port binds .2.
        let mut o = opts(vec![A], peer_port);
        o.local = B;
        let p = VxlanPort::open("t", &o).unwrap();
        assert!(p.mtu() >= 68);
        // Unknown destination: flooded to the peer, with the RFC header.
        let f = frame(mac(9), mac(1));
        p.send2(&[0; 10], &f).unwrap();
        let mut got = [0u8; 2048];
        let (n, from) = peer.recv_from(&mut got).unwrap();
        assert_eq!(&got[..8], &vxlan::header(100));
        assert_eq!(&got[8..n], &f[..]);
        let sport = from.port();
        // One flow, one source port.
        p.send2(&[0; 10], &f).unwrap();
        let (_, from2) = peer.recv_from(&mut got).unwrap();
        assert_eq!(from2.port(), sport);

        // The peer sends to the port: it is received and learned.
        let to = SocketAddr::new(p.rx_addr().ip(), p.rx_addr().port());
        let mut d = vxlan::header(100).to_vec();
        d.extend_from_slice(&frame(mac(1), mac(7)));
        peer.send_to(&d, to).unwrap();
        let mut buf = vec![0u8; 65536 + 10];
        let n = wait_recv(&p, &mut buf).unwrap();
        assert_eq!(&buf[..10], &[0; 10]);
        assert_eq!(&buf[10..n], &frame(mac(1), mac(7))[..]);
        assert_eq!(p.remote_of(mac(7)), Some(A));

        // Bad input: wrong VNI, I flag clear, truncated, garbage.
        let mut wrong = d.clone();
        wrong[6] = 101;
        let mut no_i = d.clone();
        no_i[0] = 0;
        for bad in [&wrong[..], &no_i[..], &d[..12], &[0xde, 0xad][..]] {
            peer.send_to(bad, to).unwrap();
            let e = wait_recv(&p, &mut buf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        }
        let s = p.remote_stats();
        let me = s.iter().find(|r| r.remote == "127.0.0.1").unwrap();
        assert!(me.flood);
        assert_eq!(me.rx_frames, 1);
        assert_eq!(me.tx_frames, 2);
        let drop_of = |l: &str| me.drops.iter().find(|(k, _)| k == l).map(|(_, n)| *n);
        assert_eq!(drop_of("wrong_vni"), Some(1));
        assert_eq!(drop_of("no_i_flag"), Some(1));
        assert_eq!(drop_of("truncated"), Some(2));

        // Too big for the underlay: refused and counted, not sent.
        let mut big = frame(mac(7), mac(1));
        big.resize(p.mtu() + 19, 0);
        assert!(p.send2(&[0; 10], &big).is_err());
        let s = p.remote_stats();
        let me = s.iter().find(|r| r.remote == "127.0.0.1").unwrap();
        assert!(me.drops.iter().any(|(k, n)| k == "too_big" && *n == 1));
    }

    #[test]
    fn a_gso_frame_leaves_as_segments_with_udp_gso() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut o = opts(vec![A], peer.local_addr().unwrap().port());
        o.local = B;
        let p = VxlanPort::open("g", &o).unwrap();
        // Ethernet + IPv4 + TCP, 4000 bytes of payload, as a TAP gives it.
        let mut f = frame(mac(9), mac(1));
        f.truncate(12);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(20u16 + 20 + 4000).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..20].copy_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&ip);
        let mut tcp = [0u8; 20];
        tcp[12] = 0x50;
        tcp[13] = 0x18;
        f.extend_from_slice(&tcp);
        f.extend(std::iter::repeat_n(7u8, 4000));
        let mut buf = vec![0u8; 10];
        crate::wire::vnet::VnetHdr::TCP4_GSO_SAMPLE.write(&mut buf);
        buf.extend_from_slice(&f);
        p.send(&buf).unwrap();
        let mut sizes = Vec::new();
        let mut got = [0u8; 4096];
        for _ in 0..3 {
            let n = peer.recv(&mut got).unwrap();
            assert_eq!(&got[..8], &vxlan::header(100));
            sizes.push(n - 8);
        }
        // Cut to the inner MTU (127.0.0.2 is on no interface's address
        // list: the underlay MTU is taken as 1500, so MSS 1410, not 1448).
        assert_eq!(p.mtu(), 1450);
        assert_eq!(sizes, vec![54 + 1410, 54 + 1410, 54 + 1180]);
        let s = p.remote_stats();
        assert_eq!(s[0].tx_frames, 3);
    }

    /// A free UDP port on 127.0.0.1 and 127.0.0.2 (bound, then let go).
    fn free_port() -> u16 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    }

    /// A TCP/IPv4 GSO frame of `payload` bytes from mac(1) to mac(9), as
    /// a TAP hands it over: \[virtio-net header]\[frame].
    fn tcp_gso(payload: usize) -> Vec<u8> {
        let mut f = frame(mac(9), mac(1));
        f.truncate(12);
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&(40 + payload as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51, 0, 0, 0, 9, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x50, 0x18, 1, 0, 0, 0, 0, 0]);
        f.extend((0..payload).map(|i| i as u8));
        let mut buf = vec![0u8; 10];
        crate::wire::vnet::VnetHdr::TCP4_GSO_SAMPLE.write(&mut buf);
        buf.extend_from_slice(&f);
        buf
    }

    /// vswitchd to vswitchd: the sender's UDP GSO batch reaches the
    /// receiver whole (UDP GRO) and leaves it as one TCP GSO frame that
    /// cuts into the segments sent; the remote's counters count segments.
    #[test]
    fn a_udp_gso_batch_of_one_tcp_stream_arrives_as_one_gso_frame() {
        let port = free_port();
        let rx = VxlanPort::open("r", &opts(vec![], port)).unwrap();
        let mut o = opts(vec![A], port);
        o.local = B;
        let tx = VxlanPort::open("s", &o).unwrap();
        let sent = tcp_gso(20_000);
        tx.send(&sent).unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = wait_recv(&rx, &mut buf).unwrap();
        let h = crate::wire::vnet::VnetHdr::parse(&buf[..10]);
        assert!(h.is_gso(), "one GSO frame, not a segment: {h:?}");
        assert_eq!(h.gso_size, 1410);
        assert_eq!(n, sent.len(), "every payload byte, once");
        assert_eq!(&buf[10 + 54..n], &sent[10 + 54..]);
        let mut segs = 0;
        crate::wire::vnet::segment(&h, &buf[10..n], &mut Vec::new(), |_| segs += 1).unwrap();
        let r = rx.remote_stats();
        assert_eq!((r[0].rx_frames, segs), (15, 15));
        assert_eq!(rx.table().lookup(mac(1)), Some(B), "learned");
        assert_eq!(
            rx.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    /// A batch that is not one TCP stream's segments (here: three plain
    /// frames sent with UDP GSO) is handed on datagram by datagram, the
    /// last ones after the socket is empty.
    #[test]
    fn a_udp_gso_batch_of_other_frames_arrives_one_by_one() {
        let port = free_port();
        let rx = VxlanPort::open("r", &opts(vec![], port)).unwrap();
        let peer = OwnedFd::from(UdpSocket::bind("127.0.0.2:0").unwrap());
        let mut batch = Vec::new();
        for i in 1..=3u8 {
            batch.extend_from_slice(&vxlan::header(100));
            batch.extend_from_slice(&frame(mac(9), mac(i)));
        }
        let size = batch.len() / 3;
        let to = SocketAddr::new(A, port);
        sendmsg(&peer, to, &[&batch], Some(size as u16)).unwrap();
        let mut buf = vec![0u8; 70_000];
        for i in 1..=3u8 {
            let n = wait_recv(&rx, &mut buf).unwrap();
            assert_eq!(&buf[10..n], &frame(mac(9), mac(i))[..], "frame {i}");
            assert!(crate::wire::vnet::VnetHdr::parse(&buf[..10]).is_plain());
        }
        assert_eq!(
            rx.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(rx.remote_stats()[0].rx_frames, 3);
    }

    #[test]
    fn without_learning_frames_from_unknown_remotes_are_accepted_not_learned() {
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut o = opts(vec![], peer.local_addr().unwrap().port());
        o.local = B;
        o.learning = false;
        let p = VxlanPort::open("n", &o).unwrap();
        let mut d = vxlan::header(100).to_vec();
        d.extend_from_slice(&frame(mac(1), mac(7)));
        peer.send_to(&d, p.rx_addr()).unwrap();
        let mut buf = vec![0u8; 65536 + 10];
        let n = wait_recv(&p, &mut buf).unwrap();
        assert_eq!(&buf[10..n], &frame(mac(1), mac(7))[..]);
        assert_eq!(p.remote_of(mac(7)), None, "not learned");
        assert!(p.table().is_empty());
        let s = p.remote_stats();
        assert_eq!(
            (s[0].remote.as_str(), s[0].flood, s[0].rx_frames),
            ("127.0.0.1", false, 1)
        );
        // Nowhere to send an unknown destination: counted.
        p.send2(&[0; 10], &frame(mac(9), mac(1))).unwrap();
        assert_eq!(p.no_remote.load(Relaxed), 1);
    }

    #[test]
    fn an_ipv6_underlay_works() {
        let v6: IpAddr = "::1".parse().unwrap();
        let free = UdpSocket::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The port floods to itself: what it sends comes back to it.
        let o = VxlanOptions {
            vni: 7,
            local: v6,
            remotes: vec![v6],
            dstport: free,
            learning: true,
            statics: vec![],
            evpn: false,
            evpn_targets: Default::default(),
            encap: Default::default(),
        };
        let p = VxlanPort::open("v6", &o).unwrap();
        let f = frame(mac(2), mac(3));
        p.send2(&[0; 10], &f).unwrap();
        let mut buf = vec![0u8; 65536 + 10];
        let n = wait_recv(&p, &mut buf).unwrap();
        assert_eq!(&buf[10..n], &f[..]);
        assert_eq!(p.remote_of(mac(3)), Some(v6));
        let s = p.remote_stats();
        assert_eq!(
            (s[0].remote.as_str(), s[0].tx_frames, s[0].rx_frames),
            ("::1", 1, 1)
        );
    }

    #[test]
    fn counter_rows_are_bounded() {
        let r = Remotes::new();
        for i in 0..200u32 {
            r.row(IpAddr::V4(Ipv4Addr::from(0xc613_0000 + i)))
                .rx_many(1, 1);
        }
        assert_eq!(r.rows.read().len(), MAX_LABELLED);
        assert_eq!(r.other.rx_frames.load(Relaxed), 200 - MAX_LABELLED as u64);
    }
}
