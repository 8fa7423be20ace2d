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

use serde::Deserialize;

use crate::port::{PortError, PortSpec};
use crate::switch::{self, PortConfig, SwitchConfig, VlanMode, VlanSet};
use crate::wire::Mac;

/// Default Prometheus endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9417";
/// Allowed ageing times, in seconds (file, command line and vswitchctl).
pub const AGEING_SECONDS: std::ops::RangeInclusive<u64> = 10..=1_000_000;

/// Default control socket.
/// The longest `busy-poll` (1 s): beyond it a worker is simply always busy.
pub const MAX_BUSY_POLL_US: u64 = 1_000_000;
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vswitchd/vswitchd.sock";

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    #[serde(default)]
    pub switch: SwitchSection,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortSection>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct SwitchSection {
    /// Seconds an unseen MAC is kept (10..=1_000_000).
    pub ageing_time: u64,
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
    /// `HOST:PORT` or `off`.
    pub metrics_addr: String,
    /// Path or `off`.
    pub control_socket: String,
}

impl Default for SwitchSection {
    fn default() -> Self {
        SwitchSection {
            ageing_time: switch::DEFAULT_AGEING_MS / 1000,
            fdb_size: switch::DEFAULT_CAPACITY,
            group_fwd_mask: GroupFwdMask(0),
            vlan_protocol: VlanProtocol::Dot1q,
            workers: 1,
            busy_poll: 0,
            io_uring: true,
            metrics_addr: DEFAULT_METRICS_ADDR.into(),
            control_socket: DEFAULT_CONTROL_SOCKET.into(),
        }
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

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortSection {
    /// `tap0`, `raw:eth0`.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanSection>,
    #[serde(default = "yes")]
    pub learning: bool,
    #[serde(default = "yes")]
    pub flood: bool,
    #[serde(default = "yes")]
    pub mcast_flood: bool,
    #[serde(default = "yes")]
    pub bcast_flood: bool,
    #[serde(default)]
    pub isolated: bool,
    #[serde(default)]
    pub hairpin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_limit: Option<usize>,
    /// MTU to set on a TAP vswitchd creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_macs: Vec<StaticMac>,
    /// File mode of a unix:/unixgram: socket, e.g. 0o660 (default 0o600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_mode: Option<u32>,
    /// Raw ports: take the interface from the host stack (no ARP replies,
    /// no IPv6 on it), as a kernel bridge does with its ports. Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<bool>,
    /// Move the TAP into this network namespace (a name from `ip netns`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// Addresses to give the TAP (in its namespace), e.g. ["198.18.0.1/24"]:
    /// the host's own address on the segment, like an IP on `br0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Default route via this gateway, out of the TAP (in its namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// MAC address of a TAP vswitchd creates (else the kernel picks one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "mode")]
pub enum VlanSection {
    #[serde(rename = "access")]
    Access { vid: u16 },
    #[serde(rename = "trunk")]
    Trunk {
        /// "10,20-30"
        allowed: String,
        native: Option<u16>,
    },
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticMac {
    pub mac: Mac,
    /// Defaults to the port's PVID (1 when VLANs are off).
    pub vlan: Option<u16>,
}

/// A config problem, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Check { path: PathBuf, message: String },
}

/// A checked configuration, ready to apply.
#[derive(Debug, Clone)]
pub struct Config {
    pub switch: SwitchConfig,
    pub workers: usize,
    pub tuning: crate::dataplane::Tuning,
    pub metrics_addr: Option<String>,
    pub control_socket: Option<PathBuf>,
    pub ports: Vec<PortPlan>,
}

/// One port to open, with its switch configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PortPlan {
    /// The section the plan was made from (for edits by the control tool).
    pub section: PortSection,
    pub spec: PortSpec,
    pub cfg: PortConfig,
    /// Namespace to move the TAP into.
    pub netns: Option<String>,
    /// Addresses and default route for the TAP.
    pub placement: crate::os::rtnl::Placement,
    pub mtu: Option<usize>,
    pub static_macs: Vec<(Mac, u16)>,
}

impl File {
    pub fn parse(text: &str, path: &Path) -> Result<File, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<File, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
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
        if !AGEING_SECONDS.contains(&s.ageing_time) {
            return Err(err(format!(
                "[switch] ageing-time = {}: must be 10 to 1000000 seconds",
                s.ageing_time
            )));
        }
        if !(16..=4_000_000).contains(&s.fdb_size) {
            return Err(err(format!(
                "[switch] fdb-size = {}: must be 16 to 4000000 entries",
                s.fdb_size
            )));
        }
        if !(1..=64).contains(&s.workers) {
            return Err(err(format!(
                "[switch] workers = {}: must be 1 to 64",
                s.workers
            )));
        }
        if s.busy_poll > MAX_BUSY_POLL_US {
            return Err(err(format!(
                "[switch] busy-poll = {}: must be 0 to {MAX_BUSY_POLL_US} microseconds",
                s.busy_poll
            )));
        }
        let metrics_addr = parse_metrics_addr(&s.metrics_addr)
            .map_err(|m| err(format!("[switch] metrics-addr: {m}")))?;
        let control_socket = match s.control_socket.as_str() {
            "off" => None,
            "" => {
                return Err(err(
                    "[switch] control-socket: empty (use a path or \"off\")".into(),
                ));
            }
            p => Some(PathBuf::from(p)),
        };
        let vlan_filtering = self.ports.iter().any(|p| p.vlan.is_some());
        let mut ports = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let at = |m: String| err(format!("[[port]] #{} (`{}`): {m}", i + 1, p.name));
            let spec = PortSpec::parse(&p.name).map_err(|e| at(e.to_string()))?;
            if !seen.insert(spec.name()) {
                return Err(at("this port is given twice".into()));
            }
            let plan = p.plan(spec).map_err(at)?;
            ports.push(plan);
        }
        Ok(Config {
            switch: SwitchConfig {
                ageing_ms: s.ageing_time * 1000,
                fdb_capacity: s.fdb_size,
                group_fwd_mask: s.group_fwd_mask.0,
                vlan_filtering,
                vlan_protocol: s.vlan_protocol.tpid(),
            },
            workers: s.workers,
            tuning: crate::dataplane::Tuning {
                busy_poll: std::time::Duration::from_micros(s.busy_poll),
                io_uring: s.io_uring,
            },
            metrics_addr,
            control_socket,
            ports,
        })
    }
}

impl PortSection {
    /// A port section for a spec given on the command line.
    pub fn named(name: &str) -> PortSection {
        PortSection {
            name: name.into(),
            vlan: None,
            learning: true,
            flood: true,
            mcast_flood: true,
            bcast_flood: true,
            isolated: false,
            hairpin: false,
            mac_limit: None,
            mtu: None,
            static_macs: Vec::new(),
            socket_mode: None,
            claim: None,
            netns: None,
            addresses: Vec::new(),
            gateway: None,
            mac: None,
        }
    }

    fn plan(&self, spec: PortSpec) -> Result<PortPlan, String> {
        let vlan = match &self.vlan {
            None => VlanMode::default(),
            Some(VlanSection::Access { vid }) => {
                switch::ports::parse_vid(&vid.to_string()).map_err(|e| format!("vlan.vid: {e}"))?;
                VlanMode::Access { vid: *vid }
            }
            Some(VlanSection::Trunk { allowed, native }) => {
                let allowed = VlanSet::parse(allowed).map_err(|e| format!("vlan.allowed: {e}"))?;
                if let Some(n) = native {
                    switch::ports::parse_vid(&n.to_string())
                        .map_err(|e| format!("vlan.native: {e}"))?;
                }
                if allowed.is_empty() && native.is_none() {
                    return Err("a trunk needs `allowed` VLANs or a `native` VLAN".into());
                }
                VlanMode::Trunk {
                    allowed,
                    native: *native,
                }
            }
        };
        if self.mac_limit == Some(0) {
            return Err("mac-limit = 0 would learn nothing; set learning = false instead".into());
        }
        if let Some(m) = self.mtu {
            if !(68..=65521).contains(&m) {
                return Err(format!("mtu = {m}: must be 68 to 65521"));
            }
            if !matches!(spec, PortSpec::Tap(_)) {
                return Err("mtu applies only to TAP ports vswitchd creates".into());
            }
        }
        if let Some(m) = self.socket_mode {
            if !matches!(spec, PortSpec::Unix(_) | PortSpec::UnixDgram(_)) {
                return Err("socket-mode applies only to unix: and unixgram: ports".into());
            }
            if m & !0o777 != 0 || m & 0o600 != 0o600 || m & 0o007 != 0 {
                return Err(format!(
                    "socket-mode = {m:#o}: the owner needs rw and others get nothing (e.g. 0o600 or 0o660)"
                ));
            }
        }
        let is_tap = matches!(spec, PortSpec::Tap(_));
        if self.claim.is_some() && !matches!(spec, PortSpec::Tap(_) | PortSpec::Raw(_)) {
            return Err("claim applies only to raw: ports (and TAPs attached as raw:)".into());
        }
        if (self.netns.is_some()
            || !self.addresses.is_empty()
            || self.gateway.is_some()
            || self.mac.is_some())
            && !is_tap
        {
            return Err(
                "netns, addresses, gateway and mac apply only to TAP ports vswitchd creates".into(),
            );
        }
        if let Some(m) = self.mac
            && !m.is_valid_source()
        {
            return Err(format!("mac = {m}: must be unicast and not all-zero"));
        }
        let gateways = match &self.gateway {
            Some(g) => vec![
                g.parse::<std::net::IpAddr>()
                    .map_err(|_| format!("gateway = {g:?}: not an IP address (e.g. 198.18.0.1)"))?,
            ],
            None => Vec::new(),
        };
        if let Some(ns) = &self.netns
            && (ns.is_empty() || ns.contains('/') || ns.starts_with('.'))
        {
            return Err(format!(
                "netns = {ns:?}: not a namespace name (see `ip netns list`)"
            ));
        }
        let mut addresses = Vec::new();
        for a in &self.addresses {
            addresses.push(
                a.parse::<crate::os::rtnl::IfAddr>()
                    .map_err(|e| format!("addresses: {e}"))?,
            );
        }
        let mut static_macs = Vec::new();
        for s in &self.static_macs {
            if !s.mac.is_valid_source() {
                return Err(format!(
                    "static MAC {}: must be unicast and not all-zero",
                    s.mac
                ));
            }
            let vid = match s.vlan {
                Some(v) => switch::ports::parse_vid(&v.to_string())
                    .map_err(|e| format!("static MAC {}: {e}", s.mac))?,
                None => vlan.pvid().unwrap_or(1),
            };
            static_macs.push((s.mac, vid));
        }
        let cfg = PortConfig {
            name: spec.name(),
            vlan,
            learning: self.learning,
            flood: self.flood,
            mcast_flood: self.mcast_flood,
            bcast_flood: self.bcast_flood,
            isolated: self.isolated,
            hairpin: self.hairpin,
            mac_limit: self.mac_limit,
        };
        Ok(PortPlan {
            section: self.clone(),
            spec,
            cfg,
            netns: self.netns.clone(),
            placement: crate::os::rtnl::Placement {
                addrs: addresses,
                gateways,
            },
            mtu: self.mtu,
            static_macs,
        })
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
    pub ageing_time: Option<u64>,
    pub fdb_size: Option<usize>,
    pub workers: Option<usize>,
    pub busy_poll: Option<u64>,
    pub io_uring: Option<bool>,
    pub metrics_addr: Option<String>,
    pub control_socket: Option<String>,
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
        if let Some(v) = &self.metrics_addr {
            s.metrics_addr = v.clone();
        }
        if let Some(v) = &self.control_socket {
            s.control_socket = v.clone();
        }
        for spec in &self.ports {
            file.ports.push(PortSection::named(&spec.name()));
        }
    }
}

/// Reads the config file (if any), applies the command line, checks it.
pub fn load(path: Option<&Path>, over: &Overrides) -> Result<Config, ConfigError> {
    let mut file = match path {
        Some(p) => File::load(p)?,
        None => File::default(),
    };
    over.apply(&mut file);
    let shown = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("(command line)"));
    file.check(&shown)
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
    fn empty_file_is_defaults() {
        let c = check("").unwrap();
        assert_eq!(c.switch, SwitchConfig::default());
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
            vec![("02:00:00:00:00:01".parse().unwrap(), 10)]
        );
        assert_eq!(c.ports[1].cfg.name, "raw:veth0");
        assert!(c.ports[1].cfg.isolated);
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
}
