//! The TOML configuration file and its checks.
//!
//! ```toml
//! [switch]
//! ageing-time = 300          # seconds
//! fdb-size = 8192
//! group-fwd-mask = ["lldp"]  # or a number, e.g. 0x4004
//!
//! [[port]]
//! name = "tap0"
//! vlan = { mode = "access", vid = 10 }
//! ```
//!
//! See docs/configuration.md for every key. Unknown keys are errors; a bad
//! value names the file, line and key and says what is allowed.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::port::{PortError, PortSpec};
use crate::switch::{self, PortConfig, PortFlags, SwitchConfig, Vid, VlanError, VlanMode, VlanSet};
use crate::wire::Mac;

/// Default Prometheus endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9417";
/// The longest `busy-poll` (1 s): beyond it a worker is simply always busy.
pub const MAX_BUSY_POLL_US: u64 = 1_000_000;
/// Default control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vswitchd/vswitchd.sock";

/// How long an unseen MAC stays in the FDB: 10 to 1 000 000 seconds.
/// Checked where it is given (config file, `--ageing-time`, `vswitchctl
/// set ageing`, a `set-ageing` request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct AgeingTime(u64);

/// An ageing time out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ageing time {0}: must be 10 to 1000000 seconds")]
pub struct AgeingTimeError(String);

impl AgeingTime {
    pub const MIN: u64 = 10;
    pub const MAX: u64 = 1_000_000;

    pub fn from_secs(secs: u64) -> Result<AgeingTime, AgeingTimeError> {
        if (Self::MIN..=Self::MAX).contains(&secs) {
            Ok(AgeingTime(secs))
        } else {
            Err(AgeingTimeError(secs.to_string()))
        }
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn ms(self) -> u64 {
        self.0 * 1000
    }
}

impl Default for AgeingTime {
    fn default() -> AgeingTime {
        AgeingTime(switch::DEFAULT_AGEING_MS / 1000)
    }
}

impl TryFrom<u64> for AgeingTime {
    type Error = AgeingTimeError;
    fn try_from(secs: u64) -> Result<AgeingTime, AgeingTimeError> {
        AgeingTime::from_secs(secs)
    }
}

impl From<AgeingTime> for u64 {
    fn from(a: AgeingTime) -> u64 {
        a.0
    }
}

impl std::str::FromStr for AgeingTime {
    type Err = AgeingTimeError;
    fn from_str(s: &str) -> Result<AgeingTime, AgeingTimeError> {
        let s = s.trim();
        let secs = s.parse().map_err(|_| AgeingTimeError(format!("`{s}`")))?;
        AgeingTime::from_secs(secs)
    }
}

/// The MTU of a TAP vswitchd creates: 68 to 65521.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "usize", into = "usize")]
pub struct Mtu(u16);

/// An MTU out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mtu = {0}: must be 68 to 65521")]
pub struct MtuError(usize);

impl Mtu {
    pub fn new(mtu: usize) -> Result<Mtu, MtuError> {
        if (68..=65521).contains(&mtu) {
            Ok(Mtu(mtu as u16))
        } else {
            Err(MtuError(mtu))
        }
    }

    pub fn get(self) -> usize {
        self.0.into()
    }
}

impl TryFrom<usize> for Mtu {
    type Error = MtuError;
    fn try_from(mtu: usize) -> Result<Mtu, MtuError> {
        Mtu::new(mtu)
    }
}

impl From<Mtu> for usize {
    fn from(m: Mtu) -> usize {
        m.get()
    }
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    #[serde(default)]
    pub switch: SwitchSection,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<MirrorSection>,
    /// BGP EVPN through GoBGP (src/evpn).
    #[serde(default)]
    pub evpn: Option<EvpnSection>,
}

/// A `[[mirror]]` section (and `vswitchctl mirror add`): copies of the
/// frames of some ports and/or VLANs, sent out of one output port.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorSection {
    pub name: String,
    /// Ports whose frames are copied (none: every port, for `vlans`).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Only frames of these VLANs.
    #[serde(default)]
    pub vlans: Option<VlanSet>,
    /// Frames received (`in`), sent (`out`) or `both` (the default).
    #[serde(default)]
    pub direction: crate::dataplane::taps::Direction,
    /// The port the copies go out of; it carries nothing else.
    pub output: String,
    /// Copy at most this many bytes of each frame (14 to 65535).
    #[serde(default)]
    pub snaplen: Option<usize>,
}

impl MirrorSection {
    /// The rules a mirror's settings must follow by themselves.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n.len() > 64 || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("mirror name `{n}`: 1 to 64 characters, no spaces"));
        }
        if self.ports.is_empty() && self.vlans.is_none() {
            return Err(format!("mirror `{n}`: give `ports`, `vlans` or both"));
        }
        if self.ports.contains(&self.output) {
            return Err(format!(
                "mirror `{n}`: the output port `{}` cannot also be mirrored",
                self.output
            ));
        }
        if let Some(l) = self.snaplen
            && !(14..=65535).contains(&l)
        {
            return Err(format!("mirror `{n}`: snaplen {l}: 14 to 65535"));
        }
        Ok(())
    }
}

/// `[evpn]`: the GoBGP daemon vswitchd drives, and what its routes carry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvpnSection {
    /// GoBGP's gRPC address (`gobgpd --api-hosts`), default
    /// 127.0.0.1:50051.
    #[serde(default = "default_gobgp")]
    pub gobgp: String,
    /// Our AS: the route targets are `asn:VNI`.
    pub asn: u32,
    /// Our BGP router id: the route distinguishers are `router-id:VNI`.
    pub router_id: String,
}

fn default_gobgp() -> String {
    "127.0.0.1:50051".to_string()
}

impl EvpnSection {
    /// Checks the section against the ports' EVPN segments (VNIs).
    fn check(&self, vnis: &[u32]) -> Result<crate::evpn::EvpnConfig, String> {
        let gobgp: std::net::SocketAddr = self.gobgp.parse().map_err(|_| {
            format!(
                "[evpn] gobgp = {:?}: not HOST:PORT (e.g. 127.0.0.1:50051, GoBGP's --api-hosts)",
                self.gobgp
            )
        })?;
        if self.asn == 0 || self.asn == 23456 {
            return Err(format!(
                "[evpn] asn = {}: not a usable AS number (1 to 4294967295, not 23456)",
                self.asn
            ));
        }
        let router_id: std::net::Ipv4Addr = self.router_id.trim().parse().map_err(|_| {
            format!(
                "[evpn] router-id = {:?}: not an IPv4 address (e.g. 198.19.7.2, as gobgpd's router-id)",
                self.router_id
            )
        })?;
        if router_id.is_unspecified() {
            return Err("[evpn] router-id = 0.0.0.0: give the BGP router id".to_string());
        }
        if self.asn > 0xffff
            && let Some(v) = vnis.iter().find(|v| **v > 0xffff)
        {
            return Err(format!(
                "[evpn] asn = {}: a 4-byte AS leaves 16 bits for the VNI in route targets; vni = {v} does not fit",
                self.asn
            ));
        }
        Ok(crate::evpn::EvpnConfig {
            gobgp,
            asn: self.asn,
            router_id,
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SwitchSection {
    /// Seconds an unseen MAC is kept.
    pub ageing_time: AgeingTime,
    pub fdb_size: usize,
    pub group_fwd_mask: GroupFwdMask,
    pub vlan_protocol: VlanProtocol,
    pub workers: usize,
    /// Microseconds a worker keeps polling after its last frame before it
    /// sleeps (0: sleep at once).
    pub busy_poll: u64,
    /// Read busy TAP ports through io_uring (falls back to read() where the
    /// kernel has none).
    pub io_uring: bool,
    /// Code, read-only data and heap on transparent huge pages
    /// ([`crate::os::hugepages`]).
    pub huge_pages: bool,
    /// `HOST:PORT` or `off`.
    pub metrics_addr: String,
    /// Path or `off`.
    pub control_socket: String,
    /// Group given the control socket (mode 0660); none: root only (0600).
    pub control_socket_group: Option<String>,
    /// Spanning tree: `off`, `stp` (802.1D-1998 BPDUs) or `rstp`.
    pub stp: StpMode,
    /// Bridge priority (multiple of 4096); the lowest becomes root.
    pub bridge_priority: u32,
    /// Seconds between BPDUs.
    pub hello_time: u32,
    /// Seconds a root's information is kept without hearing it again.
    pub max_age: u32,
    /// Seconds in each of listening and learning (STP), or before a
    /// non-edge port without an agreement forwards (RSTP).
    pub forward_delay: u32,
    /// IGMP/MLD snooping (the Linux bridge's `mcast_snooping`).
    pub mcast_snooping: bool,
    /// The switch's own querier (`mcast_querier`).
    pub mcast_querier: bool,
    /// Seconds between general queries.
    pub mcast_query_interval: McastSecs,
    /// Max response time of general queries, seconds.
    pub mcast_query_response_interval: McastSecs,
    /// Seconds a membership lasts without a report.
    pub mcast_membership_interval: McastSecs,
    /// Seconds another querier (and a learned router port) is remembered.
    pub mcast_querier_interval: McastSecs,
    /// Group-specific queries' count: the last member time is this times
    /// `mcast-last-member-interval`.
    pub mcast_last_member_count: u32,
    /// Seconds between group-specific queries (their max response time).
    pub mcast_last_member_interval: McastSecs,
    /// General queries sent at startup, `mcast-startup-query-interval`
    /// apart.
    pub mcast_startup_query_count: u32,
    /// Default: a quarter of `mcast-query-interval`.
    pub mcast_startup_query_interval: Option<McastSecs>,
    /// 2 or 3.
    pub mcast_igmp_version: u8,
    /// 1 or 2.
    pub mcast_mld_version: u8,
    /// Source address of IGMP queries (default 0.0.0.0, as the kernel).
    pub mcast_querier_source: std::net::Ipv4Addr,
    /// Source address of MLD queries (link-local; default the EUI-64
    /// address of `mcast-querier-mac`).
    pub mcast_querier_source6: Option<std::net::Ipv6Addr>,
    /// Source MAC of queries (default: a locally administered MAC made from
    /// the host name).
    pub mcast_querier_mac: Option<Mac>,
    /// Most (group, VLAN) entries in the multicast database.
    pub mcast_hash_max: usize,
}

/// A time in seconds (a whole or fractional number, at least 0.01 and at
/// most a day), kept in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastSecs(pub u64);

impl McastSecs {
    pub fn secs(s: u64) -> McastSecs {
        McastSecs(s * 1000)
    }
    pub fn ms(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for McastSecs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
        }
        use serde::de::Error;
        let secs = match Raw::deserialize(d)? {
            Raw::Int(n) => n as f64,
            Raw::Float(f) => f,
        };
        if !(0.01..=86_400.0).contains(&secs) {
            return Err(D::Error::custom(format!(
                "{secs} seconds: use 0.01 to 86400"
            )));
        }
        Ok(McastSecs((secs * 1000.0).round() as u64))
    }
}

/// The querier's default source MAC: locally administered, from a hash of
/// the host name, so two hosts' switches differ and a restart keeps it.
pub fn default_querier_mac() -> Mac {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host.trim().bytes().chain(*b"vswitchd") {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let b = h.to_be_bytes();
    Mac([0x02, b[1], b[2], b[3], b[4], b[5]])
}

/// `[switch] stp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StpMode {
    #[default]
    Off,
    Stp,
    Rstp,
}

impl Default for SwitchSection {
    fn default() -> Self {
        SwitchSection {
            ageing_time: AgeingTime::default(),
            fdb_size: switch::DEFAULT_CAPACITY,
            group_fwd_mask: GroupFwdMask(0),
            vlan_protocol: VlanProtocol::Dot1q,
            workers: 1,
            busy_poll: 0,
            io_uring: true,
            huge_pages: true,
            metrics_addr: DEFAULT_METRICS_ADDR.into(),
            control_socket: DEFAULT_CONTROL_SOCKET.into(),
            control_socket_group: None,
            stp: StpMode::Off,
            bridge_priority: 32768,
            hello_time: 2,
            max_age: 20,
            forward_delay: 15,
            mcast_snooping: true,
            mcast_querier: false,
            mcast_query_interval: McastSecs::secs(125),
            mcast_query_response_interval: McastSecs::secs(10),
            mcast_membership_interval: McastSecs::secs(260),
            mcast_querier_interval: McastSecs::secs(255),
            mcast_last_member_count: 2,
            mcast_last_member_interval: McastSecs::secs(1),
            mcast_startup_query_count: 2,
            mcast_startup_query_interval: None,
            mcast_igmp_version: 2,
            mcast_mld_version: 1,
            mcast_querier_source: std::net::Ipv4Addr::UNSPECIFIED,
            mcast_querier_source6: None,
            mcast_querier_mac: None,
            mcast_hash_max: crate::mcast::DEFAULT_HASH_MAX,
        }
    }
}

impl SwitchSection {
    /// The spanning-tree settings, checked (also while `stp = "off"`, so a
    /// later switch-on cannot fail); `None` when spanning tree is off.
    pub fn stp(&self) -> Result<Option<crate::stp::BridgeConfig>, String> {
        let byte = |key: &str, v: u32| {
            u8::try_from(v).map_err(|_| format!("[switch] {key} = {v}: out of range"))
        };
        let cfg = crate::stp::BridgeConfig {
            mode: match self.stp {
                StpMode::Stp => crate::stp::Mode::Stp,
                StpMode::Off | StpMode::Rstp => crate::stp::Mode::Rstp,
            },
            priority: u16::try_from(self.bridge_priority).map_err(|_| {
                format!(
                    "[switch] bridge-priority = {}: must be a multiple of 4096 from 0 to 61440",
                    self.bridge_priority
                )
            })?,
            hello_time: byte("hello-time", self.hello_time)?,
            max_age: byte("max-age", self.max_age)?,
            forward_delay: byte("forward-delay", self.forward_delay)?,
            ..crate::stp::BridgeConfig::default()
        };
        cfg.validate()
            .map_err(|e| format!("[switch] spanning tree: {e}"))?;
        Ok((self.stp != StpMode::Off).then_some(cfg))
    }

    /// The snooping settings, checked.
    pub fn mcast(&self) -> Result<crate::mcast::MdbConfig, String> {
        if !matches!(self.mcast_igmp_version, 2 | 3) {
            return Err(format!(
                "mcast-igmp-version = {}: use 2 or 3",
                self.mcast_igmp_version
            ));
        }
        if !matches!(self.mcast_mld_version, 1 | 2) {
            return Err(format!(
                "mcast-mld-version = {}: use 1 or 2",
                self.mcast_mld_version
            ));
        }
        if self.mcast_last_member_count == 0 || self.mcast_startup_query_count == 0 {
            return Err("mcast-last-member-count and mcast-startup-query-count: at least 1".into());
        }
        if self.mcast_hash_max == 0 {
            return Err("mcast-hash-max: at least 1".into());
        }
        if self.mcast_query_response_interval.ms() >= self.mcast_query_interval.ms() {
            return Err(format!(
                "mcast-query-response-interval ({} ms) must be shorter than mcast-query-interval ({} ms)",
                self.mcast_query_response_interval.ms(),
                self.mcast_query_interval.ms()
            ));
        }
        if let Some(s) = self.mcast_querier_source6
            && s.segments()[0] & 0xffc0 != 0xfe80
        {
            return Err(format!(
                "mcast-querier-source6 = {s}: MLD queries need a link-local (fe80::/10) source"
            ));
        }
        let qi = self.mcast_query_interval.ms();
        Ok(crate::mcast::MdbConfig {
            snooping: self.mcast_snooping,
            querier: self.mcast_querier,
            query_interval_ms: qi,
            query_response_interval_ms: self.mcast_query_response_interval.ms(),
            membership_interval_ms: self.mcast_membership_interval.ms(),
            querier_interval_ms: self.mcast_querier_interval.ms(),
            startup_query_count: self.mcast_startup_query_count,
            startup_query_interval_ms: self
                .mcast_startup_query_interval
                .map(McastSecs::ms)
                .unwrap_or(qi / 4),
            last_member_count: self.mcast_last_member_count,
            last_member_interval_ms: self.mcast_last_member_interval.ms(),
            igmp_version: self.mcast_igmp_version,
            mld_version: self.mcast_mld_version,
            source4: self.mcast_querier_source,
            source6: self.mcast_querier_source6,
            mac: self.mcast_querier_mac.unwrap_or_else(default_querier_mac),
            hash_max: self.mcast_hash_max,
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum VlanProtocol {
    #[serde(rename = "802.1q")]
    Dot1q,
    #[serde(rename = "802.1ad")]
    Dot1ad,
}

impl VlanProtocol {
    pub fn tpid(self) -> u16 {
        match self {
            VlanProtocol::Dot1q => 0x8100,
            VlanProtocol::Dot1ad => 0x88a8,
        }
    }
}

/// Link-local groups to forward: a number (bit X = 01:80:C2:00:00:0X) or
/// a list of names/numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupFwdMask(pub u16);

impl<'de> Deserialize<'de> for GroupFwdMask {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            List(Vec<Item>),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Num(u64),
            Name(String),
        }
        use serde::de::Error;
        let bit = |n: u64| {
            if n == 1 || n > 15 {
                Err(D::Error::custom(format!(
                    "group {n} cannot be forwarded (groups 0 and 2-15 can; 1 is MAC pause)"
                )))
            } else {
                Ok(1u16 << n)
            }
        };
        match Raw::deserialize(d)? {
            Raw::Num(n) if n <= 0xffff && n & 2 == 0 => Ok(GroupFwdMask(n as u16)),
            Raw::Num(n) => Err(D::Error::custom(format!(
                "group-fwd-mask {n:#x} must fit 16 bits without bit 1 (MAC pause)"
            ))),
            Raw::List(items) => {
                let mut m = 0;
                for it in items {
                    m |= match it {
                        Item::Num(n) => bit(n)?,
                        Item::Name(s) => match s.as_str() {
                            "stp" => bit(0)?,
                            "lacp" => bit(2)?,
                            "8021x" | "eapol" => bit(3)?,
                            "lldp" => bit(0xe)?,
                            other => {
                                return Err(D::Error::custom(format!(
                                    "unknown link-local group `{other}` (use stp, lacp, eapol, lldp or a number 0, 2-15)"
                                )));
                            }
                        },
                    };
                }
                Ok(GroupFwdMask(m))
            }
        }
    }
}

/// Defines [`PortSection`] with a key for each port flag
/// ([`port_flags!`](crate::port_flags)): `None` where the section does
/// not set it.
macro_rules! port_section {
    ($( $(#[$doc:meta])* $flag:ident: $ty:ty = $default:expr, )*) => {
        /// One `[[port]]` section of the config file, and the body of a
        /// `port-add` request: the settings of one port as the user wrote
        /// them.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct PortSection {
            /// `tap0`, `raw:eth0`.
            pub name: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub vlan: Option<VlanSection>,
            $(
                $(#[$doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $flag: Option<$ty>,
            )*
            /// MTU to set on a TAP vswitchd creates.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub mtu: Option<Mtu>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub static_macs: Vec<StaticMac>,
            /// File mode of a unix:/unixgram: socket, e.g. 0o660 (default
            /// 0o600, or 0o660 with `socket-group`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub socket_mode: Option<u32>,
            /// Group of a unix:/unixgram: socket: its members may connect.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub socket_group: Option<String>,
            /// Raw ports: take the interface from the host stack (no ARP replies,
            /// no IPv6 on it), as a kernel bridge does with its ports. Default true.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub claim: Option<bool>,
            /// Move the TAP into this network namespace (a name from `ip netns`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub netns: Option<String>,
            /// Addresses to give the TAP (in its namespace), e.g. ["198.18.0.1/24"]:
            /// the host's own address on the segment, like an IP on `br0`.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub addresses: Vec<String>,
            /// Default route via this gateway, out of the TAP (in its namespace).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub gateway: Option<String>,
            /// MAC address of a TAP vswitchd creates (else the kernel picks one).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub mac: Option<Mac>,
            /// `vxlan:` ports: the VXLAN network identifier (0 to 16777215).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub vni: Option<u32>,
            /// `vxlan:` ports: the underlay source address on this host.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub local: Option<String>,
            /// `vxlan:` ports: the flood list, one copy of every broadcast,
            /// multicast and unknown-unicast frame to each.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub remote: Vec<String>,
            /// `vxlan:` ports: the UDP port (default 4789).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dstport: Option<u16>,
            /// `vxlan:` ports: who encapsulates, `vswitchd` (default) or
            /// `kernel` (a Linux vxlan device vswitchd creates).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub encap: Option<crate::port::Encap>,
            /// `vxlan:` ports: BGP EVPN adds remotes and remote MACs
            /// (needs an `[evpn]` section).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub evpn: Option<bool>,
            /// `vxlan:` ports with `evpn = true`: the route distinguisher
            /// (`IPV4:N`; default `router-id:VNI`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub evpn_rd: Option<String>,
            /// `vxlan:` ports with `evpn = true`: the route target, sent
            /// and imported (`ASN:N`; default `ASN:VNI`, FRR's automatic
            /// one).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub evpn_rt: Option<String>,
        }

        impl PortSection {
            /// The port's flags: those the section sets, the others at
            /// their defaults.
            pub fn flags(&self) -> PortFlags {
                let default = PortFlags::default();
                PortFlags {
                    $( $flag: self.$flag.unwrap_or(default.$flag), )*
                }
            }

            /// Sets every flag of the section (none left to a default).
            pub fn set_flags(&mut self, flags: PortFlags) {
                $( self.$flag = Some(flags.$flag); )*
            }
        }
    };
}
crate::port_flags!(port_section);

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "mode")]
pub enum VlanSection {
    #[serde(rename = "access")]
    Access { vid: Vid },
    #[serde(rename = "trunk")]
    Trunk {
        /// "10,20-30"
        allowed: VlanSet,
        native: Option<Vid>,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticMac {
    pub mac: Mac,
    /// Defaults to the port's PVID (1 when VLANs are off).
    pub vlan: Option<Vid>,
    /// `vxlan:` ports: the remote VTEP behind this MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// What is wrong with one port's settings (a `[[port]]` section or a
/// `port-add`/`port-set` request). Values out of range are refused when
/// the section is read; these are the rules between keys.
#[derive(Debug, thiserror::Error)]
pub enum PortSectionError {
    #[error(transparent)]
    Spec(#[from] PortError),
    #[error("vlan: {0}")]
    Vlan(#[from] VlanError),
    #[error("mtu applies only to TAP ports vswitchd creates")]
    MtuNotTap,
    #[error("socket-mode applies only to unix: and unixgram: ports")]
    SocketModeNotUnix,
    #[error("socket-group applies only to unix: and unixgram: ports")]
    SocketGroupNotUnix,
    #[error("socket-group = {0:?}: {1}")]
    SocketGroup(String, String),
    #[error(
        "socket-mode = {0:#o}: the owner needs rw and others get nothing (e.g. 0o600 or 0o660)"
    )]
    SocketMode(u32),
    #[error("claim applies only to raw: ports (and TAPs attached as raw:)")]
    ClaimNotRaw,
    #[error("netns, addresses, gateway and mac apply only to TAP ports vswitchd creates")]
    PlacementNotTap,
    #[error("mac = {0}: must be unicast and not all-zero")]
    Mac(Mac),
    #[error("gateway = {0:?}: not an IP address (e.g. 198.18.0.1)")]
    Gateway(String),
    #[error("netns = {0:?}: not a namespace name (see `ip netns list`)")]
    Netns(String),
    #[error("addresses: {0}")]
    Address(String),
    #[error("static MAC {0}: must be unicast and not all-zero")]
    StaticMac(Mac),
    #[error("this port is given twice")]
    Twice,
    #[error(
        "vni, local, remote, dstport, encap, evpn, evpn-rd and evpn-rt apply only to vxlan: ports"
    )]
    VxlanKeysNotVxlan,
    #[error("evpn-rd and evpn-rt need evpn = true")]
    EvpnTargetsWithoutEvpn,
    #[error(
        "evpn = true needs encap = \"vswitchd\" (EVPN programs vswitchd's own remote table; a kernel vxlan device has its own)"
    )]
    EvpnWithKernelEncap,
    #[error(
        "encap = \"kernel\" names the kernel device after the port: `{0}` is longer than 15 characters"
    )]
    KernelEncapName(String),
    /// `evpn-rd` or `evpn-rt` that does not parse (the text says which).
    #[error("{0}")]
    EvpnTarget(String),
    #[error("static MAC {0}: remote applies only to vxlan: ports")]
    StaticRemoteNotVxlan(Mac),
    #[error("a vxlan port needs `{0}` (e.g. vni = 100, local = \"198.19.7.1\")")]
    VxlanMissing(&'static str),
    #[error("vni = {0}: must be 0 to 16777215 (24 bits)")]
    Vni(u32),
    #[error("dstport = 0: must be a UDP port 1 to 65535 (default 4789)")]
    Dstport,
    #[error("{key} = {value:?}: not an IP address (e.g. 198.19.7.1 or fd00::1)")]
    VxlanAddress { key: &'static str, value: String },
    #[error("{key} = {value}: local is {local}; a vxlan port's addresses are all IPv4 or all IPv6")]
    MixedFamilies {
        key: &'static str,
        value: String,
        local: String,
    },
    #[error("{key} = {value}: not a unicast address of a VTEP")]
    VxlanNotUnicast { key: &'static str, value: String },
    #[error(
        "interface `{ifname}` is already port `{other}` (a TAP and raw: of one interface would loop)"
    )]
    SameInterface { ifname: String, other: String },
}

/// A config problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, an unknown key or a value out of range: `message` gives
    /// the line (and the `[[port]]` section it is in).
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A `[switch]` setting out of range.
    #[error("config file {path}: {message}")]
    Check { path: PathBuf, message: String },
    #[error("config file {path}: [[port]] #{number} (`{name}`): {source}")]
    Port {
        path: PathBuf,
        /// Counted from 1, in file order.
        number: usize,
        name: String,
        source: PortSectionError,
    },
    /// A command-line setting is wrong: the error names the flag (and
    /// the value given).
    #[error("{flag}: {message}")]
    Flag { flag: String, message: String },
}

/// A checked configuration, ready to apply.
#[derive(Debug, Clone)]
pub struct Config {
    pub switch: SwitchConfig,
    pub workers: usize,
    pub tuning: crate::dataplane::Tuning,
    /// Code, read-only data and heap on transparent huge pages (read at
    /// start only).
    pub huge_pages: bool,
    pub metrics_addr: Option<String>,
    pub control_socket: Option<PathBuf>,
    /// Group given the control socket (a name or a number).
    pub control_socket_group: Option<String>,
    /// Spanning tree's settings; `None`: off.
    pub stp: Option<crate::stp::BridgeConfig>,
    pub ports: Vec<PortPlan>,
    pub mirrors: Vec<MirrorSection>,
    /// BGP EVPN (`[evpn]`); `None`: off.
    pub evpn: Option<crate::evpn::EvpnConfig>,
}

/// One port to open, with its switch configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PortPlan {
    /// The section the plan was made from, every flag set (for edits by
    /// the control tool).
    pub section: PortSection,
    pub spec: PortSpec,
    pub cfg: PortConfig,
    /// Namespace to move the TAP into.
    pub netns: Option<String>,
    /// Addresses and default route for the TAP.
    pub placement: crate::os::rtnl::Placement,
    pub mtu: Option<Mtu>,
    pub static_macs: Vec<(Mac, Vid)>,
    /// A `vxlan:` port's tunnel settings.
    pub vxlan: Option<crate::port::VxlanOptions>,
}

impl File {
    pub fn parse(text: &str, path: &Path) -> Result<File, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let mut message = e.to_string().trim_end().to_string();
            if let Some(hint) = e.span().and_then(|at| hint(text, at)) {
                message.push('\n');
                message.push_str(hint);
            }
            let within = e.span().and_then(|at| port_section_at(text, at.start));
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: match within {
                    Some((number, name)) => format!("[[port]] #{number} (`{name}`): {message}"),
                    None => message,
                },
            }
        })
    }

    pub fn load(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        check_private(path, "config file").map_err(|message| ConfigError::Check {
            path: path.to_path_buf(),
            message,
        })?;
        File::parse(&text, path)
    }

    /// Cross-field checks; turns the file into a [`Config`].
    pub fn check(&self, path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError::Check {
            path: path.to_path_buf(),
            message,
        };
        let s = &self.switch;
        check_fdb_size(s.fdb_size)
            .map_err(|m| err(format!("[switch] fdb-size = {}: {m}", s.fdb_size)))?;
        check_workers(s.workers)
            .map_err(|m| err(format!("[switch] workers = {}: {m}", s.workers)))?;
        check_busy_poll(s.busy_poll)
            .map_err(|m| err(format!("[switch] busy-poll = {}: {m}", s.busy_poll)))?;
        let metrics_addr = parse_metrics_addr(&s.metrics_addr)
            .map_err(|m| err(format!("[switch] metrics-addr: {m}")))?;
        let control_socket = parse_control_socket(&s.control_socket)
            .map_err(|m| err(format!("[switch] control-socket: {m}")))?;
        if let Some(g) = &s.control_socket_group {
            check_group_name(g).map_err(|m| err(format!("[switch] control-socket-group: {m}")))?;
        }
        let stp = s.stp().map_err(err)?;
        let mcast = s.mcast().map_err(|m| err(format!("[switch] {m}")))?;
        let vlan_filtering = self.ports.iter().any(|p| p.vlan.is_some());
        let mut ports = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let at = |source| ConfigError::Port {
                path: path.to_path_buf(),
                number: i + 1,
                name: p.name.clone(),
                source,
            };
            let plan = p.plan().map_err(at)?;
            if !seen.insert(plan.spec.name()) {
                return Err(at(PortSectionError::Twice));
            }
            if let Some(other) = ports
                .iter()
                .find(|o: &&PortPlan| same_interface(&o.spec, &plan.spec))
            {
                return Err(at(PortSectionError::SameInterface {
                    ifname: plan.spec.ifname().unwrap_or_default().to_string(),
                    other: other.spec.name(),
                }));
            }
            ports.push(plan);
        }
        let evpn_vnis: Vec<(u32, String)> = ports
            .iter()
            .filter_map(|p| {
                p.vxlan
                    .as_ref()
                    .filter(|v| v.evpn)
                    .map(|v| (v.vni, p.spec.name()))
            })
            .collect();
        for (i, (vni, name)) in evpn_vnis.iter().enumerate() {
            if let Some((_, other)) = evpn_vnis[..i].iter().find(|(v, _)| v == vni) {
                return Err(err(format!(
                    "ports {other} and {name} both have evpn = true for vni = {vni}: one EVPN segment per VNI"
                )));
            }
        }
        let vnis: Vec<u32> = evpn_vnis.iter().map(|(v, _)| *v).collect();
        let evpn = match &self.evpn {
            Some(e) => Some(e.check(&vnis).map_err(err)?),
            None if !evpn_vnis.is_empty() => {
                return Err(err(format!(
                    "port {} has evpn = true but there is no [evpn] section (gobgp, asn, router-id)",
                    evpn_vnis[0].1
                )));
            }
            None => None,
        };
        if let Some(e) = &evpn {
            // Each segment imports the routes carrying its route target:
            // two segments with one target would take each other's.
            let rts: Vec<(crate::evpn::route::Rt, String)> = ports
                .iter()
                .filter_map(|p| {
                    let v = p.vxlan.as_ref().filter(|v| v.evpn)?;
                    let rt = v.evpn_targets.rt.unwrap_or(crate::evpn::route::Rt {
                        asn: e.asn,
                        value: v.vni,
                    });
                    Some((rt, p.spec.name()))
                })
                .collect();
            for (i, (rt, name)) in rts.iter().enumerate() {
                if let Some((_, other)) = rts[..i].iter().find(|(r, _)| r == rt) {
                    return Err(err(format!(
                        "ports {other} and {name} both use route target {rt}: give each EVPN port its own evpn-rt"
                    )));
                }
            }
        }
        Ok(Config {
            switch: SwitchConfig {
                ageing_ms: s.ageing_time.ms(),
                fdb_capacity: s.fdb_size,
                group_fwd_mask: s.group_fwd_mask.0,
                vlan_filtering,
                vlan_protocol: s.vlan_protocol.tpid(),
                mcast,
            },
            workers: s.workers,
            tuning: crate::dataplane::Tuning {
                busy_poll: std::time::Duration::from_micros(s.busy_poll),
                io_uring: s.io_uring,
            },
            huge_pages: s.huge_pages,
            metrics_addr,
            control_socket,
            control_socket_group: s.control_socket_group.clone(),
            stp,
            ports,
            mirrors: self.check_mirrors().map_err(err)?,
            evpn,
        })
    }

    fn check_mirrors(&self) -> Result<Vec<MirrorSection>, String> {
        let mut names = std::collections::HashSet::new();
        for m in &self.mirrors {
            m.check().map_err(|e| format!("[[mirror]] {e}"))?;
            if !names.insert(&m.name) {
                return Err(format!("[[mirror]] `{}` is given twice", m.name));
            }
        }
        Ok(self.mirrors.clone())
    }
}

/// Refuses a file others may write, or one in a directory others may
/// write without the sticky bit (they could replace it): anyone could
/// then rewrite the switch's configuration or take its control socket.
/// `what` names the file in the message.
pub fn check_private(path: &Path, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.is_file()
        && m.mode() & 0o002 != 0
    {
        return Err(format!(
            "{what} {} is world-writable (mode {:04o}): anyone could change it; `chmod o-w {}`",
            path.display(),
            m.mode() & 0o7777,
            path.display()
        ));
    }
    check_private_dir(path, what)
}

/// Refuses a path whose directory others may write without the sticky
/// bit (like /tmp, whose sticky bit keeps others from replacing files).
pub fn check_private_dir(path: &Path, what: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(m) = std::fs::metadata(dir)
        && m.mode() & 0o002 != 0
        && m.mode() & 0o1000 == 0
    {
        return Err(format!(
            "the directory of {what} {}, {}, is world-writable without the sticky bit (mode {:04o}): \
             anyone could replace the file; `chmod o-w {}` or use another directory",
            path.display(),
            dir.display(),
            m.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// Whether two ports would use one kernel interface (a TAP `vm1` and
/// `raw:vm1`).
pub fn same_interface(a: &PortSpec, b: &PortSpec) -> bool {
    a.ifname().is_some() && a.ifname() == b.ifname()
}

/// What to write instead, for the mistakes TOML's own message does not
/// explain: `[port]` for `[[port]]`, `0660` for `0o660`.
fn hint(text: &str, at: std::ops::Range<usize>) -> Option<&'static str> {
    let line_start = text[..at.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim();
    let key_value = line.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
    if let Some(("socket-mode", v)) = key_value
        && v.len() > 1
        && v.starts_with('0')
        && v[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        return Some(
            "hint: write a file mode in octal as 0o660 (TOML reads 0660 as an error, 660 as decimal)",
        );
    }
    if text.lines().any(|l| l.trim_start().starts_with("[port]")) {
        return Some(
            "hint: each port is a [[port]] section (double brackets: an array of tables), not [port]",
        );
    }
    None
}

/// `[switch] fdb-size` / `--fdb-size`.
fn check_fdb_size(n: usize) -> Result<(), String> {
    if (16..=4_000_000).contains(&n) {
        Ok(())
    } else {
        Err("must be 16 to 4000000 entries".into())
    }
}

/// `[switch] workers` / `--workers`.
fn check_workers(n: usize) -> Result<(), String> {
    if (1..=64).contains(&n) {
        Ok(())
    } else {
        Err("must be 1 to 64".into())
    }
}

/// `[switch] busy-poll` / `--busy-poll`.
fn check_busy_poll(us: u64) -> Result<(), String> {
    if us <= MAX_BUSY_POLL_US {
        Ok(())
    } else {
        Err(format!("must be 0 to {MAX_BUSY_POLL_US} microseconds"))
    }
}

/// `[switch] control-socket` / `--control-socket`: a path or `off`.
fn parse_control_socket(s: &str) -> Result<Option<PathBuf>, String> {
    match s {
        "off" => Ok(None),
        "" => Err("empty (use a path or \"off\")".into()),
        p => Ok(Some(PathBuf::from(p))),
    }
}

/// A group as `control-socket-group` and `socket-group` take it: a name
/// or a number (whether it exists is checked when the socket is made).
fn check_group_name(g: &str) -> Result<(), String> {
    if g.is_empty() || g.contains(|c: char| c.is_whitespace() || c == ':' || c == ',') {
        Err(format!(
            "{g:?} is not a group name or number (see `getent group`)"
        ))
    } else {
        Ok(())
    }
}

/// A file mode as the command line takes it: octal, with or without a
/// leading `0` or `0o` (`660`, `0660`, `0o660`).
pub fn parse_socket_mode(s: &str) -> Result<u32, String> {
    let digits = s
        .strip_prefix("0o")
        .or_else(|| s.strip_prefix("0O"))
        .unwrap_or(s);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("`{s}`: an octal file mode, e.g. 660"))
}

/// The `[[port]]` section (its number from 1, and its name) that byte
/// `at` of a config file falls in, if any: a section runs from its header
/// to the next table's.
fn port_section_at(text: &str, at: usize) -> Option<(usize, String)> {
    use toml::de::{DeTable, DeValue};
    let file = DeTable::parse(text).ok()?;
    let mut ports = &[][..];
    // Where each top-level table starts, and which port it is.
    let mut starts = Vec::new();
    for (key, value) in file.get_ref() {
        match (key.get_ref().as_ref(), value.get_ref()) {
            ("port", DeValue::Array(a)) => {
                ports = a;
                starts.extend(a.iter().enumerate().map(|(i, t)| (t.span().start, Some(i))));
            }
            _ => starts.push((key.span().start, None)),
        }
    }
    let (_, port) = starts.into_iter().filter(|(s, _)| *s <= at).max()?;
    let i = port?;
    let name = match ports[i].get_ref() {
        DeValue::Table(t) => t
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == "name")
            .and_then(|(_, v)| v.get_ref().as_str())
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    Some((i + 1, name))
}

impl PortSection {
    /// A port section for a spec given on the command line.
    pub fn named(name: &str) -> PortSection {
        PortSection {
            name: name.into(),
            ..PortSection::default()
        }
    }

    /// Checks the rules between the section's keys and turns it into the
    /// plan to open the port by.
    pub fn plan(&self) -> Result<PortPlan, PortSectionError> {
        let spec = PortSpec::parse(&self.name)?;
        let vlan = match &self.vlan {
            None => VlanMode::default(),
            Some(VlanSection::Access { vid }) => VlanMode::Access { vid: *vid },
            Some(VlanSection::Trunk { allowed, native }) => {
                VlanMode::trunk(allowed.clone(), *native)?
            }
        };
        if self.mtu.is_some() && !matches!(spec, PortSpec::Tap(_)) {
            return Err(PortSectionError::MtuNotTap);
        }
        let is_socket = matches!(spec, PortSpec::Unix(_) | PortSpec::UnixDgram(_));
        if let Some(g) = &self.socket_group {
            if !is_socket {
                return Err(PortSectionError::SocketGroupNotUnix);
            }
            check_group_name(g).map_err(|m| PortSectionError::SocketGroup(g.clone(), m))?;
        }
        if let Some(m) = self.socket_mode {
            if !is_socket {
                return Err(PortSectionError::SocketModeNotUnix);
            }
            if m & !0o777 != 0 || m & 0o600 != 0o600 || m & 0o007 != 0 {
                return Err(PortSectionError::SocketMode(m));
            }
        }
        let is_tap = matches!(spec, PortSpec::Tap(_));
        if self.claim.is_some() && !matches!(spec, PortSpec::Tap(_) | PortSpec::Raw(_)) {
            return Err(PortSectionError::ClaimNotRaw);
        }
        if (self.netns.is_some()
            || !self.addresses.is_empty()
            || self.gateway.is_some()
            || self.mac.is_some())
            && !is_tap
        {
            return Err(PortSectionError::PlacementNotTap);
        }
        if let Some(m) = self.mac
            && !m.is_valid_source()
        {
            return Err(PortSectionError::Mac(m));
        }
        let gateways = match &self.gateway {
            Some(g) => vec![
                g.parse::<std::net::IpAddr>()
                    .map_err(|_| PortSectionError::Gateway(g.clone()))?,
            ],
            None => Vec::new(),
        };
        if let Some(ns) = &self.netns
            && (ns.is_empty() || ns.contains('/') || ns.starts_with('.'))
        {
            return Err(PortSectionError::Netns(ns.clone()));
        }
        let mut addresses = Vec::new();
        for a in &self.addresses {
            addresses.push(
                a.parse::<crate::os::rtnl::IfAddr>()
                    .map_err(PortSectionError::Address)?,
            );
        }
        let mut static_macs = Vec::new();
        for s in &self.static_macs {
            if !s.mac.is_valid_source() {
                return Err(PortSectionError::StaticMac(s.mac));
            }
            let vid = s.vlan.or(vlan.untagged_vlan()).unwrap_or(Vid::ONE);
            static_macs.push((s.mac, vid));
        }
        let flags = self.flags();
        let vxlan = self.vxlan_options(&spec, flags.learning)?;
        let mut section = self.clone();
        section.set_flags(flags);
        Ok(PortPlan {
            section,
            cfg: PortConfig {
                name: spec.name(),
                vlan,
                flags,
            },
            spec,
            netns: self.netns.clone(),
            placement: crate::os::rtnl::Placement {
                addrs: addresses,
                gateways,
            },
            mtu: self.mtu,
            static_macs,
            vxlan,
        })
    }

    /// A `vxlan:` port's settings, checked; none for other kinds (which
    /// must not set them).
    fn vxlan_options(
        &self,
        spec: &PortSpec,
        learning: bool,
    ) -> Result<Option<crate::port::VxlanOptions>, PortSectionError> {
        use std::net::IpAddr;
        if !matches!(spec, PortSpec::Vxlan(_)) {
            if self.vni.is_some()
                || self.local.is_some()
                || !self.remote.is_empty()
                || self.dstport.is_some()
                || self.encap.is_some()
                || self.evpn.is_some()
                || self.evpn_rd.is_some()
                || self.evpn_rt.is_some()
            {
                return Err(PortSectionError::VxlanKeysNotVxlan);
            }
            if let Some(s) = self.static_macs.iter().find(|s| s.remote.is_some()) {
                return Err(PortSectionError::StaticRemoteNotVxlan(s.mac));
            }
            return Ok(None);
        }
        let vni = self.vni.ok_or(PortSectionError::VxlanMissing("vni"))?;
        if vni > crate::wire::vxlan::MAX_VNI {
            return Err(PortSectionError::Vni(vni));
        }
        let local_s = self
            .local
            .as_ref()
            .ok_or(PortSectionError::VxlanMissing("local"))?;
        let addr = |key: &'static str, v: &str| -> Result<IpAddr, PortSectionError> {
            let ip = v
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| PortSectionError::VxlanAddress {
                    key,
                    value: v.to_string(),
                })?;
            if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255])
            {
                return Err(PortSectionError::VxlanNotUnicast {
                    key,
                    value: v.to_string(),
                });
            }
            Ok(ip)
        };
        let local = addr("local", local_s)?;
        let same = |key: &'static str, ip: IpAddr| {
            if ip.is_ipv4() == local.is_ipv4() {
                Ok(ip)
            } else {
                Err(PortSectionError::MixedFamilies {
                    key,
                    value: ip.to_string(),
                    local: local.to_string(),
                })
            }
        };
        let mut remotes = Vec::new();
        for r in &self.remote {
            let ip = same("remote", addr("remote", r)?)?;
            if !remotes.contains(&ip) {
                remotes.push(ip);
            }
        }
        let mut statics = Vec::new();
        for s in &self.static_macs {
            if let Some(r) = &s.remote {
                statics.push((s.mac, same("remote", addr("remote", r)?)?));
            }
        }
        let dstport = self.dstport.unwrap_or(crate::wire::vxlan::DEFAULT_PORT);
        if dstport == 0 {
            return Err(PortSectionError::Dstport);
        }
        let evpn = self.evpn.unwrap_or(false);
        if !evpn && (self.evpn_rd.is_some() || self.evpn_rt.is_some()) {
            return Err(PortSectionError::EvpnTargetsWithoutEvpn);
        }
        let encap = self.encap.unwrap_or_default();
        if encap == crate::port::Encap::Kernel {
            if evpn {
                return Err(PortSectionError::EvpnWithKernelEncap);
            }
            if let PortSpec::Vxlan(name) = spec
                && name.len() >= crate::os::sys::IFNAMSIZ
            {
                return Err(PortSectionError::KernelEncapName(name.clone()));
            }
        }
        let target = |key: &str, v: &str, e: String| {
            PortSectionError::EvpnTarget(format!("{key} = {v:?}: {e}"))
        };
        let evpn_targets = crate::evpn::route::Targets {
            rd: match &self.evpn_rd {
                Some(v) => Some(v.parse().map_err(|e| target("evpn-rd", v, e))?),
                None => None,
            },
            rt: match &self.evpn_rt {
                Some(v) => Some(v.parse().map_err(|e| target("evpn-rt", v, e))?),
                None => None,
            },
        };
        Ok(Some(crate::port::VxlanOptions {
            vni,
            local,
            remotes,
            dstport,
            learning,
            statics,
            evpn,
            evpn_targets,
            encap,
        }))
    }
}

/// `off` or a socket address.
pub fn parse_metrics_addr(s: &str) -> Result<Option<String>, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse::<std::net::SocketAddr>()
        .map(|_| Some(s.to_string()))
        .map_err(|_| format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:9417) or \"off\""))
}

/// Settings given on the command line; they win over the file, also
/// across reloads.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub ageing_time: Option<AgeingTime>,
    pub fdb_size: Option<usize>,
    pub workers: Option<usize>,
    pub busy_poll: Option<u64>,
    pub io_uring: Option<bool>,
    pub huge_pages: Option<bool>,
    pub metrics_addr: Option<String>,
    pub control_socket: Option<String>,
    pub control_socket_group: Option<String>,
    /// Ports from `--ports`, added to the file's.
    pub ports: Vec<PortSpec>,
}

impl Overrides {
    pub fn apply(&self, file: &mut File) {
        let s = &mut file.switch;
        if let Some(v) = self.ageing_time {
            s.ageing_time = v;
        }
        if let Some(v) = self.fdb_size {
            s.fdb_size = v;
        }
        if let Some(v) = self.workers {
            s.workers = v;
        }
        if let Some(v) = self.busy_poll {
            s.busy_poll = v;
        }
        if let Some(v) = self.io_uring {
            s.io_uring = v;
        }
        if let Some(v) = self.huge_pages {
            s.huge_pages = v;
        }
        if let Some(v) = &self.metrics_addr {
            s.metrics_addr = v.clone();
        }
        if let Some(v) = &self.control_socket {
            s.control_socket = v.clone();
        }
        if let Some(v) = &self.control_socket_group {
            s.control_socket_group = Some(v.clone());
        }
        for spec in &self.ports {
            file.ports.push(PortSection::named(&spec.name()));
        }
    }
}

impl Overrides {
    /// Checks each command-line value on its own, so that an error names
    /// the flag rather than the file.
    pub fn check(&self) -> Result<(), ConfigError> {
        let flag = |flag: &str, value: &dyn std::fmt::Display, m: String| ConfigError::Flag {
            flag: format!("{flag} {value}"),
            message: m,
        };
        if let Some(n) = self.fdb_size {
            check_fdb_size(n).map_err(|m| flag("--fdb-size", &n, m))?;
        }
        if let Some(n) = self.workers {
            check_workers(n).map_err(|m| flag("--workers", &n, m))?;
        }
        if let Some(n) = self.busy_poll {
            check_busy_poll(n).map_err(|m| flag("--busy-poll", &n, m))?;
        }
        if let Some(a) = &self.metrics_addr {
            parse_metrics_addr(a).map_err(|m| ConfigError::Flag {
                flag: "--metrics-addr".into(),
                message: m,
            })?;
        }
        if let Some(p) = &self.control_socket {
            parse_control_socket(p).map_err(|m| ConfigError::Flag {
                flag: "--control-socket".into(),
                message: m,
            })?;
        }
        if let Some(g) = &self.control_socket_group {
            check_group_name(g).map_err(|m| ConfigError::Flag {
                flag: "--control-socket-group".into(),
                message: m,
            })?;
        }
        Ok(())
    }
}

/// Reads the config file (if any), applies the command line, checks it.
/// An error in a command-line setting names the flag (`--fdb-size`,
/// `--ports`), one in the file names the file.
pub fn load(path: Option<&Path>, over: &Overrides) -> Result<Config, ConfigError> {
    over.check()?;
    let mut file = match path {
        Some(p) => File::load(p)?,
        None => File::default(),
    };
    let from_file = file.ports.len();
    over.apply(&mut file);
    let shown = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("(command line)"));
    file.check(&shown).map_err(|e| match e {
        ConfigError::Port {
            number,
            name,
            source,
            ..
        } if number > from_file => ConfigError::Flag {
            flag: "--ports".into(),
            message: match source {
                // A port in the file and on the command line.
                PortSectionError::Twice => {
                    format!("port `{name}` is given twice (it is in the config file too)")
                }
                source => format!("port `{name}`: {source}"),
            },
        },
        e => e,
    })
}

/// Splits a `--ports` list, rejecting empty and duplicated names.
pub fn parse_port_list(s: &str) -> Result<Vec<PortSpec>, PortError> {
    let mut out: Vec<PortSpec> = Vec::new();
    for part in s.split(',') {
        let spec = PortSpec::parse(part)?;
        if out.iter().any(|p| p.name() == spec.name()) {
            return Err(PortError::Duplicate { port: spec.name() });
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        let p = Path::new("test.toml");
        File::parse(text, p)?.check(p)
    }

    #[test]
    fn mcast_keys() {
        let c = check(
            "[switch]\nmcast-querier = true\nmcast-query-interval = 4\nmcast-query-response-interval = 0.5\n\
             mcast-igmp-version = 3\nmcast-querier-source = \"198.18.0.1\"\n\
             [[port]]\nname = \"tap0\"\nmcast-router = \"on\"\nmcast-fast-leave = true\n",
        )
        .unwrap();
        let m = &c.switch.mcast;
        assert!(m.querier && m.snooping);
        assert_eq!(
            (m.query_interval_ms, m.query_response_interval_ms),
            (4000, 500)
        );
        assert_eq!(m.startup_query_interval_ms, 1000);
        assert_eq!(m.igmp_version, 3);
        assert_eq!(
            m.source4,
            "198.18.0.1".parse::<std::net::Ipv4Addr>().unwrap()
        );
        let f = c.ports[0].section.flags();
        assert_eq!(f.mcast_router, crate::mcast::RouterMode::On);
        assert!(f.mcast_fast_leave);
        for bad in [
            "mcast-igmp-version = 1",
            "mcast-mld-version = 3",
            "mcast-query-interval = 0",
            "mcast-querier-source6 = \"fd00::1\"",
            "mcast-query-response-interval = 200",
        ] {
            assert!(check(&format!("[switch]\n{bad}\n")).is_err(), "{bad}");
        }
        assert!(check("[[port]]\nname = \"t\"\nmcast-router = \"yes\"\n").is_err());
    }

    #[test]
    fn evpn_section_and_port_key() {
        let port =
            "[[port]]\nname = \"vxlan:vx100\"\nvni = 100\nlocal = \"198.19.7.2\"\nevpn = true\n";
        let evpn = "[evpn]\nasn = 65000\nrouter-id = \"198.19.7.2\"\n";
        let c = check(&format!("{evpn}{port}")).unwrap();
        let e = c.evpn.unwrap();
        assert_eq!(e.gobgp.to_string(), "127.0.0.1:50051");
        assert_eq!(
            (e.asn, e.router_id.to_string()),
            (65000, "198.19.7.2".into())
        );
        assert!(c.ports[0].vxlan.as_ref().unwrap().evpn);
        // Each mistake is an error that names the key.
        let err = |text: &str| check(text).unwrap_err().to_string();
        assert!(err(port).contains("no [evpn] section"), "{}", err(port));
        for (bad, says) in [
            ("[evpn]\nasn = 0\nrouter-id = \"198.19.7.2\"\n", "asn = 0"),
            (
                "[evpn]\nasn = 65000\nrouter-id = \"fd00::1\"\n",
                "router-id",
            ),
            (
                "[evpn]\nasn = 65000\nrouter-id = \"198.19.7.2\"\ngobgp = \"localhost\"\n",
                "gobgp",
            ),
            ("[evpn]\nasn = 65000\n", "router-id"),
            (
                "[evpn]\nasn = 65000\nrouter-id = \"198.19.7.2\"\nbogus = 1\n",
                "bogus",
            ),
            (
                "[evpn]\nasn = 4200000000\nrouter-id = \"198.19.7.2\"\n[[port]]\nname = \"vxlan:v\"\nvni = 70000\nlocal = \"198.19.7.2\"\nevpn = true\n",
                "vni = 70000",
            ),
        ] {
            assert!(err(bad).contains(says), "{bad}: {}", err(bad));
        }
        let twice = format!("{evpn}{port}{}", port.replace("vx100", "vx101"));
        assert!(
            err(&twice).contains("one EVPN segment per VNI"),
            "{}",
            err(&twice)
        );
        let not_vxlan = "[[port]]\nname = \"tap0\"\nevpn = true\n";
        assert!(
            err(not_vxlan).contains("apply only to vxlan"),
            "{}",
            err(not_vxlan)
        );
    }

    #[test]
    fn vxlan_encap() {
        use crate::port::Encap;
        let port = "[[port]]\nname = \"vxlan:vx100\"\nvni = 100\nlocal = \"198.19.7.2\"\n";
        let encap = |text: &str| check(text).map(|c| c.ports[0].vxlan.as_ref().unwrap().encap);
        assert_eq!(encap(port).unwrap(), Encap::Vswitchd);
        assert_eq!(
            encap(&format!("{port}encap = \"kernel\"\n")).unwrap(),
            Encap::Kernel
        );
        assert_eq!(
            encap(&format!("{port}encap = \"vswitchd\"\n")).unwrap(),
            Encap::Vswitchd
        );
        let err = |text: &str| check(text).unwrap_err().to_string();
        let bad = format!("{port}encap = \"both\"\n");
        assert!(err(&bad).contains("kernel"), "{}", err(&bad));
        let evpn = format!(
            "[evpn]\nasn = 65000\nrouter-id = \"198.19.7.2\"\n{port}evpn = true\nencap = \"kernel\"\n"
        );
        assert!(
            err(&evpn).contains("evpn = true needs encap = \"vswitchd\""),
            "{}",
            err(&evpn)
        );
        let not_vxlan = "[[port]]\nname = \"tap0\"\nencap = \"kernel\"\n";
        assert!(err(not_vxlan).contains("apply only to vxlan"));
        let long = format!("{port}encap = \"kernel\"\n").replace("vx100", "vx0123456789abcd");
        assert!(err(&long).contains("longer than 15"), "{}", err(&long));
        assert!(check(&long.replace("encap = \"kernel\"\n", "")).is_ok());
    }

    #[test]
    fn evpn_route_distinguisher_and_target_are_checked() {
        let base = "[evpn]\nasn = 65000\nrouter-id = \"198.19.7.2\"\n\
                    [[port]]\nname = \"vxlan:vx100\"\nvni = 100\nlocal = \"198.19.7.2\"\nevpn = true\n";
        let load = |extra: &str| {
            let text = format!("{base}{extra}");
            File::parse(&text, Path::new("t.toml")).and_then(|f| f.check(Path::new("t.toml")))
        };
        let cfg = load("evpn-rd = \"198.19.7.2:7\"\nevpn-rt = \"65000:1100\"\n").unwrap();
        let t = cfg.ports[0].vxlan.as_ref().unwrap().evpn_targets;
        assert_eq!(t.rt.unwrap().value, 1100);
        assert_eq!(t.rd.unwrap().n, 7);
        let e = load("evpn-rt = \"65000\"\n").unwrap_err().to_string();
        assert!(e.contains("evpn-rt") && e.contains("ASN:N"), "{e}");
        let e = load("evpn-rd = \"x:1\"\n").unwrap_err().to_string();
        assert!(e.contains("evpn-rd"), "{e}");
        // Two segments, one route target.
        let two = "evpn-rt = \"65000:200\"\n[[port]]\nname = \"vxlan:vx200\"\nvni = 200\n\
                   local = \"198.19.7.2\"\ndstport = 4790\nevpn = true\n";
        let e = load(two).unwrap_err().to_string();
        assert!(e.contains("route target 65000:200"), "{e}");
        // Without evpn = true.
        let text = "[[port]]\nname = \"vxlan:vx9\"\nvni = 9\nlocal = \"198.19.7.2\"\nevpn-rt = \"65000:9\"\n";
        let e = File::parse(text, Path::new("t.toml"))
            .and_then(|f| f.check(Path::new("t.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("need evpn = true"), "{e}");
    }

    #[test]
    fn empty_file_is_defaults() {
        let c = check("").unwrap();
        let mut want = SwitchConfig::default();
        want.mcast.mac = default_querier_mac();
        assert_eq!(c.switch, want);
        assert_eq!(c.metrics_addr.as_deref(), Some(DEFAULT_METRICS_ADDR));
        assert!(c.ports.is_empty());
    }

    #[test]
    fn full_example() {
        let c = check(
            r#"
[switch]
ageing-time = 60
fdb-size = 1000
group-fwd-mask = ["lldp", "lacp"]
metrics-addr = "off"
control-socket = "/tmp/x.sock"

[[port]]
name = "tap0"
vlan = { mode = "access", vid = 10 }
mac-limit = 5
mtu = 9000
static-macs = [{ mac = "02:00:00:00:00:01" }]

[[port]]
name = "raw:veth0"
vlan = { mode = "trunk", allowed = "10,20-22", native = 1 }
isolated = true
claim = false

[[port]]
name = "c1"
netns = "ns1"
addresses = ["198.18.170.2/24"]
gateway = "198.18.170.1"
mac = "02:00:00:00:17:02"
"#,
        )
        .unwrap();
        assert_eq!(c.switch.ageing_ms, 60_000);
        assert_eq!(c.switch.group_fwd_mask, (1 << 14) | (1 << 2));
        assert!(c.switch.vlan_filtering);
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.ports.len(), 3);
        assert_eq!(c.ports[2].placement.gateways.len(), 1);
        assert_eq!(c.ports[2].placement.addrs[0].to_string(), "198.18.170.2/24");
        assert_eq!(
            c.ports[0].static_macs,
            vec![("02:00:00:00:00:01".parse().unwrap(), Vid::new(10).unwrap())]
        );
        assert_eq!(c.ports[1].cfg.name, "raw:veth0");
        assert!(c.ports[1].cfg.flags.isolated);
    }

    #[test]
    fn vxlan_ports() {
        let c = check(
            r#"
[[port]]
name = "vxlan:vx100"
vni = 100
local = "198.19.7.2"
remote = ["198.19.7.1", "198.19.7.3", "198.19.7.1"]
learning = false
static-macs = [{ mac = "02:00:00:00:00:01", remote = "198.19.7.9" }, { mac = "02:00:00:00:00:02" }]
"#,
        )
        .unwrap();
        let v = c.ports[0].vxlan.as_ref().unwrap();
        assert_eq!(v.vni, 100);
        assert_eq!(v.dstport, 4789);
        assert_eq!(v.remotes.len(), 2, "duplicates folded");
        assert!(!v.learning);
        assert_eq!(v.statics.len(), 1);
        assert_eq!(c.ports[0].static_macs.len(), 2, "switch FDB entries too");
        let v6 = check(
            "[[port]]\nname = \"vxlan:v6\"\nvni = 7\nlocal = \"fd00::1\"\nremote = [\"fd00::2\"]\ndstport = 8472\n",
        )
        .unwrap();
        assert_eq!(v6.ports[0].vxlan.as_ref().unwrap().dstport, 8472);
        for (body, want) in [
            ("local = \"198.19.7.2\"", "needs `vni`"),
            ("vni = 1", "needs `local`"),
            ("vni = 16777216\nlocal = \"198.19.7.2\"", "0 to 16777215"),
            ("vni = 1\nlocal = \"nope\"", "not an IP address"),
            (
                "vni = 1\nlocal = \"198.19.7.2\"\nremote = [\"fd00::1\"]",
                "all IPv4 or all IPv6",
            ),
            (
                "vni = 1\nlocal = \"198.19.7.2\"\nremote = [\"239.1.1.1\"]",
                "not a unicast",
            ),
            (
                "vni = 1\nlocal = \"198.19.7.2\"\ndstport = 0",
                "dstport = 0",
            ),
        ] {
            let e = check(&format!("[[port]]\nname = \"vxlan:x\"\n{body}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
        let e = check("[[port]]\nname = \"tap0\"\nvni = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only to vxlan"), "{e}");
        let e = check(
            "[[port]]\nname = \"tap0\"\nstatic-macs = [{ mac = \"02:00:00:00:00:01\", remote = \"198.19.7.1\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("remote applies only"), "{e}");
        let e = check("[[port]]\nname = \"vxlan:a/b\"\nvni = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("vxlan port's name"), "{e}");
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = check("[switch]\nageing-time = 60\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("test.toml") && e.contains("line 3") && e.contains("bogus"),
            "{e}"
        );
        let e = check("[[port]]\nname = \"tap0\"\nvlan = { mode = \"access\", vid = 5000 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tap0") && e.contains("1-4094"), "{e}");
        let e = check("[switch]\nageing-time = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ageing-time"), "{e}");
        let e = check("[[port]]\nname = \"a\"\n[[port]]\nname = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        let e = check("[switch]\ngroup-fwd-mask = [\"pause\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pause") && e.contains("line 2"), "{e}");
        let e = check("[switch]\nmetrics-addr = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics-addr"), "{e}");
        let e = check("[[port]]\nname = \"raw:x\"\nmtu = 9000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mtu"), "{e}");
        let e = check("[switch]\nbusy-poll = 5000000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("busy-poll") && e.contains("1000000"), "{e}");
        let c = check("[switch]\nbusy-poll = 20000\n").unwrap();
        assert_eq!(c.tuning.busy_poll, std::time::Duration::from_millis(20));
        assert!(c.tuning.io_uring, "on by default");
        assert!(
            !check("[switch]\nio-uring = false\n")
                .unwrap()
                .tuning
                .io_uring
        );
    }

    #[test]
    fn values_are_checked_as_the_file_is_read() {
        let e = check("[[port]]\nname = \"tap0\"\n[[port]]\nname = \"tap1\"\nmac-limit = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[port]] #2 (`tap1`)")
                && e.contains("line 5")
                && e.contains("learning = false"),
            "{e}"
        );
        let e = check("[[port]]\nname = \"tap0\"\nmtu = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tap0") && e.contains("68 to 65521"), "{e}");
        let e =
            check("[[port]]\nname = \"t\"\nvlan = { mode = \"trunk\", allowed = \"10,5000\" }\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("`t`") && e.contains("`5000`"), "{e}");
        // Only a key inside a port section is said to be in one.
        let e = check("[[port]]\nname = \"tap0\"\n[switch]\nageing-time = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("[[port]]") && e.contains("10 to 1000000"),
            "{e}"
        );
        let e = check("[[port]]\nname = \"tap0\"\n[bogus]\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("[[port]]") && e.contains("bogus"), "{e}");
        let e = check("[[port]]\nname = \"tap0\"\nvlan = { mode = \"trunk\", allowed = \"\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a trunk needs"), "{e}");
    }

    #[test]
    fn sections_keep_their_flags_keys() {
        let c = check("[[port]]\nname = \"tap0\"\nmcast-flood = false\nmac-limit = 3\n").unwrap();
        let f = c.ports[0].cfg.flags;
        assert!(!f.mcast_flood && f.flood && f.learning);
        assert_eq!(f.mac_limit.map(|l| l.get()), Some(3));
        // A port-add request carries the section as JSON with the same keys.
        let mut s = PortSection::named("tap0");
        s.mcast_flood = Some(false);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"name":"tap0","mcast-flood":false}"#);
        assert_eq!(serde_json::from_str::<PortSection>(&json).unwrap(), s);
    }

    #[test]
    fn hints_flags_and_one_interface_per_port() {
        let e = check("[port]\nname = \"tap0\"\n").unwrap_err().to_string();
        assert!(e.contains("[[port]] section (double brackets"), "{e}");
        let e = check("[[port]]\nname = \"unix:/tmp/x\"\nsocket-mode = 0660\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("0o660"), "{e}");
        let e = check("[[port]]\nname = \"vm1\"\n[[port]]\nname = \"raw:vm1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("#2") && e.contains("already port `vm1`"), "{e}");
        let c = check("[[port]]\nname = \"unix:/tmp/x\"\nsocket-group = \"kvm\"\n").unwrap();
        assert_eq!(c.ports[0].section.socket_group.as_deref(), Some("kvm"));
        assert!(check("[[port]]\nname = \"t\"\nsocket-group = \"kvm\"\n").is_err());
        assert!(check("[switch]\ncontrol-socket-group = \"a b\"\n").is_err());
        assert_eq!(parse_socket_mode("660"), Ok(0o660));
        assert_eq!(parse_socket_mode("0o640"), Ok(0o640));
        assert_eq!(parse_socket_mode("0600"), Ok(0o600));
        assert!(parse_socket_mode("999").is_err());
        let over = Overrides {
            fdb_size: Some(5),
            ..Overrides::default()
        };
        let e = load(None, &over).unwrap_err().to_string();
        assert_eq!(e, "--fdb-size 5: must be 16 to 4000000 entries");
        let over = Overrides {
            ports: parse_port_list("vm1,raw:vm1").unwrap(),
            ..Overrides::default()
        };
        let e = load(None, &over).unwrap_err().to_string();
        assert!(
            e.starts_with("--ports: port `raw:vm1`") && !e.contains("config file"),
            "{e}"
        );
    }

    #[test]
    fn port_lists() {
        assert_eq!(parse_port_list("tap0,raw:v1").unwrap().len(), 2);
        assert!(
            parse_port_list("tap0,,tap1")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            parse_port_list("tap0,tap0")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(parse_port_list("waytoolongname123").is_err());
    }

    #[test]
    fn example_configs_in_repo_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                File::load(&p).and_then(|f| f.check(&p)).unwrap();
                n += 1;
            }
        }
        assert!(n > 0, "no example configs in {}", dir.display());
    }

    #[test]
    fn spanning_tree_keys() {
        let c = check(
            "[switch]\nstp = \"rstp\"\nbridge-priority = 4096\nhello-time = 1\n\
             max-age = 6\nforward-delay = 4\n[[port]]\nname = \"tap0\"\nstp-cost = 100\n\
             stp-priority = 64\nstp-edge = true\nbpdu-guard = true\n",
        )
        .unwrap();
        let stp = c.stp.unwrap();
        assert_eq!(
            (stp.priority, stp.hello_time, stp.max_age, stp.forward_delay),
            (4096, 1, 6, 4)
        );
        let f = c.ports[0].cfg.flags;
        assert_eq!(f.stp_cost.map(switch::StpCost::get), Some(100));
        assert_eq!(f.stp_priority.get(), 64);
        assert!(f.stp_edge && f.bpdu_guard);
        assert!(check("").unwrap().stp.is_none(), "off by default");
    }

    #[test]
    fn spanning_tree_settings_out_of_range_say_which_rule() {
        let e = check("[switch]\nstp = \"stp\"\nmax-age = 40\nforward-delay = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 x (forward-delay - 1) >= max-age"), "{e}");
        let e = check("[switch]\nhello-time = 10\nmax-age = 20\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max-age >= 2 x (hello-time + 1)"), "{e}");
        let e = check("[switch]\nbridge-priority = 1000\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("4096"), "{e}");
        let e = check("[switch]\nstp = \"mstp\"\n").unwrap_err().to_string();
        assert!(e.contains("rstp"), "{e}");
        let e = check("[[port]]\nname = \"tap0\"\nstp-priority = 100\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("multiple of 16"), "{e}");
        let e = check("[[port]]\nname = \"tap0\"\nstp-cost = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("200000000"), "{e}");
    }

    #[test]
    fn a_config_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vswitchd.toml");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = File::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("world-writable") && e.contains("chmod o-w"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        File::load(&p).unwrap();
        // A directory others may write, without the sticky bit.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = File::load(&p).unwrap_err().to_string();
        assert!(e.contains("without the sticky bit"), "{e}");
        // With it (like /tmp): others cannot replace the file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        File::load(&p).unwrap();
    }
}
