//! The control socket protocol: one JSON object per line each way.
//!
//! Request:  `{"version":1,"cmd":"fdb-show","port":"tap0"}`
//! Response: `{"version":1,"ok":true,"data":...}` or
//!           `{"version":1,"ok":false,"code":"exists","error":"..."}`
//!
//! A failure carries an [`ErrorCode`] for programs (`code`, stable) and
//! a sentence for people (`error`, may change). A request with another
//! `version` is refused with an error naming both.

use serde::{Deserialize, Serialize};

use crate::config::{AgeingTime, PortSection};
use crate::dataplane::stats::PortTotals;
use crate::dataplane::{LinkState, Reading};
use crate::switch::{MacLimit, PortFlags, PortId, Vid};
use crate::wire::Mac;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Ports, their state, VLANs and counters (`stats` is the same
    /// request: `vswitchctl stats` shows the counters of the answer).
    #[serde(alias = "stats")]
    Show,
    /// Open and attach a port (`tap0`, `raw:eth0`, `unix:/path`) with the
    /// same settings a `[[port]]` section takes.
    PortAdd {
        port: Box<PortSection>,
    },
    PortDel {
        name: String,
    },
    /// Change some settings of a port.
    PortSet {
        name: String,
        changes: PortChanges,
    },
    FdbShow {
        port: Option<String>,
        vlan: Option<Vid>,
    },
    /// Where one MAC is: its entries (one per VLAN, or in `vlan`).
    FdbGet {
        mac: Mac,
        vlan: Option<Vid>,
    },
    FdbAdd {
        mac: Mac,
        vlan: Option<Vid>,
        port: String,
    },
    FdbDel {
        mac: Mac,
        vlan: Option<Vid>,
    },
    FdbFlush {
        port: Option<String>,
        vlan: Option<Vid>,
    },
    SetAgeing {
        seconds: AgeingTime,
    },
    /// Multicast group memberships (all, or of one port or VLAN).
    MdbShow {
        #[serde(default)]
        port: Option<String>,
        #[serde(default)]
        vlan: Option<Vid>,
    },
    /// Multicast router ports and the querier of each family.
    MdbRouter,
    /// Re-read the config file (as SIGHUP does).
    Reload,
    /// Replace the log filter (`debug`, `vswitch::daemon=debug,info`);
    /// without one, answer the current filter.
    LogLevel {
        #[serde(default)]
        filter: Option<String>,
    },
    /// Spanning tree: the bridge, the root and every port's role and
    /// state.
    StpShow,
    /// Re-enable a port that BPDU guard disabled.
    StpEnable {
        port: String,
    },
    /// Change spanning tree's mode, priority or timers (until a reload).
    StpSet {
        changes: crate::cli::vswitchctl::StpChanges,
    },
    /// Decide `frame` (hex) as if it arrived on `port`, without side
    /// effects, and explain each step.
    Trace {
        port: String,
        frame: String,
    },
    /// Add a port mirror (the settings of a `[[mirror]]` section).
    MirrorAdd {
        mirror: crate::config::MirrorSection,
    },
    MirrorDel {
        name: String,
    },
    /// Mirrors and their counters.
    MirrorShow,
    /// A stream: after the answer, one [`StreamLine`] per event (FDB,
    /// port and spanning-tree changes) until the client closes, `count`
    /// events or `duration` seconds.
    Monitor {
        #[serde(default)]
        what: MonitorWhat,
        #[serde(default)]
        count: Option<u64>,
        #[serde(default)]
        duration: Option<u64>,
    },
    /// A stream: after the answer, one [`StreamLine::Frame`] per frame
    /// of `port`, until `count` frames, `duration` seconds or the client
    /// closes; then [`StreamLine::End`].
    Capture {
        port: String,
        #[serde(default)]
        direction: crate::dataplane::taps::Direction,
        #[serde(default)]
        snaplen: Option<usize>,
        #[serde(default)]
        count: Option<u64>,
        #[serde(default)]
        duration: Option<u64>,
    },
    /// BGP EVPN: the connection to GoBGP, routes per VNI, remote VTEPs
    /// ([`crate::evpn::status::EvpnInfo`]).
    EvpnShow,
}

/// What `monitor` streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorWhat {
    Fdb,
    Ports,
    #[default]
    All,
}

impl std::str::FromStr for MonitorWhat {
    type Err = String;
    fn from_str(s: &str) -> Result<MonitorWhat, String> {
        match s {
            "fdb" => Ok(MonitorWhat::Fdb),
            "ports" | "port" => Ok(MonitorWhat::Ports),
            "all" => Ok(MonitorWhat::All),
            _ => Err(format!("`{s}`: monitor fdb, ports or all")),
        }
    }
}

/// One line of a `monitor` or `capture` stream, after the first answer.
/// Stable: documented in docs/troubleshooting.md.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamLine {
    /// An FDB entry learned, moved, aged, evicted, flushed, added or
    /// deleted.
    Fdb {
        /// Seconds since the Unix epoch.
        time: f64,
        event: String,
        mac: Mac,
        vlan: u16,
        port: String,
        /// For `moved`: where from.
        from: Option<String>,
    },
    /// A port added, up, down or gone.
    Port {
        time: f64,
        event: String,
        port: String,
    },
    /// Spanning tree: a port's state, BPDU guard, a topology change.
    Topology {
        time: f64,
        port: Option<String>,
        what: String,
    },
    /// One captured frame (`data` in hex, cut at the snap length).
    Frame {
        /// Nanoseconds since the Unix epoch.
        time_ns: u64,
        port: String,
        direction: crate::dataplane::taps::Direction,
        /// Length on the wire.
        length: usize,
        data: String,
    },
    /// Events or frames lost so far because the client read too slowly
    /// (a running total).
    Dropped { count: u64 },
    /// The stream ends: why, what was sent, what was lost.
    End {
        reason: String,
        sent: u64,
        dropped: u64,
    },
}

/// `trace`: one frame through the forwarding core. Stable: documented in
/// docs/troubleshooting.md.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceInfo {
    pub ingress: String,
    /// `forward`, `drop`, or `punt` (to spanning tree).
    pub decision: String,
    /// The drop reason's metrics label (`vlan_ingress`, ...), for a drop.
    pub reason: Option<String>,
    /// What the reason means, for a drop.
    pub explanation: Option<String>,
    /// What learning the source would do.
    pub learn: String,
    /// Where it goes, with the tag action on each port.
    pub egress: Vec<TraceEgress>,
    /// Each step: `{"step": NAME, ...fields, "detail": SENTENCE}`.
    pub steps: Vec<serde_json::Value>,
}

/// One egress port of a trace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TraceEgress {
    pub port: String,
    /// `keep`, `pop`, `push VID` or `rewrite VID`.
    pub tag: String,
}

impl TraceInfo {
    pub fn new(ingress: &str, t: &crate::switch::Trace) -> TraceInfo {
        let steps = t
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("detail".into(), s.detail().into());
                }
                v
            })
            .collect();
        let reason = t.decision.drop_reason();
        TraceInfo {
            ingress: ingress.to_string(),
            decision: t.decision.word().into(),
            reason: reason.map(|r| r.as_str().into()),
            explanation: reason.map(|r| r.meaning().into()),
            learn: t
                .steps
                .iter()
                .find_map(|s| match s {
                    crate::switch::Step::Learn { outcome } => Some(*outcome),
                    _ => None,
                })
                .unwrap_or("not reached (dropped before learning)")
                .into(),
            egress: t
                .egress
                .iter()
                .map(|(port, act)| TraceEgress {
                    port: port.clone(),
                    tag: act.word(),
                })
                .collect(),
            steps,
        }
    }
}

/// `stp show`: the bridge and its ports as spanning tree sees them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StpInfo {
    /// `stp` or `rstp`.
    pub mode: String,
    /// `8000.020000000001`: priority, then MAC (as `ip -d link` and
    /// `ovs-appctl rstp/show` write them).
    pub bridge_id: String,
    pub root_id: String,
    /// The port towards the root; none on the root bridge.
    pub root_port: Option<String>,
    pub root_path_cost: u32,
    pub topology_changes: u64,
    /// Seconds since the last topology change began (none yet: null).
    pub time_since_topology_change: Option<u64>,
    /// A legacy STP topology change holds the FDB's ageing at the forward
    /// delay.
    pub fast_ageing: bool,
    pub ports: Vec<StpPortInfo>,
}

/// One port in `stp show`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StpPortInfo {
    pub port: String,
    /// root, designated, alternate, backup or disabled.
    pub role: String,
    /// discarding, learning, forwarding or disabled.
    pub state: String,
    pub edge: bool,
    pub cost: u32,
    /// The port identifier in BPDUs (priority and number), e.g. `8001`.
    pub port_id: String,
    pub designated_bridge: String,
    /// `stp` while the port talks to an STP-only bridge, else `rstp`.
    pub protocol: String,
    pub bpdu_guard_tripped: bool,
    pub bpdus_received: u64,
    pub bpdus_sent: u64,
    /// Malformed (or our own, looped back) BPDUs, ignored.
    pub bpdus_bad: u64,
}

impl StpInfo {
    /// From the protocol's status, naming ports with `name`.
    pub fn new(s: crate::stp::BridgeStatus, name: impl Fn(PortId) -> String) -> StpInfo {
        StpInfo {
            mode: s.mode.as_str().to_string(),
            bridge_id: s.bridge_id.to_string(),
            root_id: s.root_id.to_string(),
            root_port: s.root_port.map(&name),
            root_path_cost: s.root_path_cost,
            topology_changes: s.topology_changes,
            time_since_topology_change: s.time_since_topology_change,
            fast_ageing: s.fast_ageing,
            ports: s
                .ports
                .into_iter()
                .map(|p| StpPortInfo {
                    port: name(p.port),
                    role: p.role.as_str().to_string(),
                    state: p.state.as_str().to_string(),
                    edge: p.edge,
                    cost: p.cost,
                    port_id: p.port_id,
                    designated_bridge: p.designated_bridge.to_string(),
                    protocol: p.mode.to_string(),
                    bpdu_guard_tripped: p.guard_tripped,
                    bpdus_received: p.bpdus_rx,
                    bpdus_sent: p.bpdus_tx,
                    bpdus_bad: p.bpdus_bad,
                })
                .collect(),
        }
    }
}

/// Why a request failed, for programs (the `code` of a failed response).
/// New codes may be added; a client treats one it does not know as a
/// failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A port of that name is on the switch already.
    Exists,
    /// No port of that name.
    NoSuchPort,
    /// No FDB entry for that MAC (and VLAN).
    NoSuchEntry,
    /// A value or a combination of settings is not allowed.
    Invalid,
    /// The interface a `raw:` port names does not exist.
    NoSuchInterface,
    /// The device is held by another process.
    Busy,
    /// vswitchd lacks a privilege (capability, file permission).
    Permission,
    /// The port was attached by a program, not opened by vswitchd.
    NotOpenedHere,
    /// A system call failed opening or placing a device.
    Io,
    /// The switch is full (ports, or the FDB of static entries).
    Full,
    /// The config file cannot be read or is wrong (a reload).
    Config,
    /// A reload stopped half-way (some ports changed).
    ReloadIncomplete,
    /// The request is not JSON, not a known command, or another protocol
    /// version.
    BadRequest,
    /// Something else failed inside vswitchd.
    Internal,
    /// vswitchctl only: no vswitchd answers on the control socket.
    NotRunning,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Exists => "exists",
            ErrorCode::NoSuchPort => "no_such_port",
            ErrorCode::NoSuchEntry => "no_such_entry",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NoSuchInterface => "no_such_interface",
            ErrorCode::Busy => "busy",
            ErrorCode::Permission => "permission",
            ErrorCode::NotOpenedHere => "not_opened_here",
            ErrorCode::Io => "io",
            ErrorCode::Full => "full",
            ErrorCode::Config => "config",
            ErrorCode::ReloadIncomplete => "reload_incomplete",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Internal => "internal",
            ErrorCode::NotRunning => "not_running",
        }
    }

    /// What the code means, as vswitchctl(8) lists it.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorCode::Exists => {
                "A port of that name (or on that interface) is on the switch already."
            }
            ErrorCode::NoSuchPort => "No port of that name.",
            ErrorCode::NoSuchEntry => "No FDB entry for that MAC (and VLAN).",
            ErrorCode::Invalid => "A value or a combination of settings is not allowed.",
            ErrorCode::NoSuchInterface => "The interface a raw: port names does not exist.",
            ErrorCode::Busy => "The device is held by another process.",
            ErrorCode::Permission => "vswitchd (or vswitchctl, on the socket) lacks a privilege.",
            ErrorCode::NotOpenedHere => {
                "The port was attached by a program, not opened by vswitchd."
            }
            ErrorCode::Io => "A system call failed opening or placing a device.",
            ErrorCode::Full => "The switch has no room (ports, or static FDB entries).",
            ErrorCode::Config => "The config file cannot be read or is wrong (reload).",
            ErrorCode::ReloadIncomplete => {
                "A reload stopped half-way; fix the file and reload again."
            }
            ErrorCode::BadRequest => "The request is malformed or of another protocol version.",
            ErrorCode::Internal => "Something else failed.",
            ErrorCode::NotRunning => "No vswitchd answers on the socket (vswitchctl only).",
        }
    }

    /// Every code (for the man page and the tests).
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::Exists,
        ErrorCode::NoSuchPort,
        ErrorCode::NoSuchEntry,
        ErrorCode::Invalid,
        ErrorCode::NoSuchInterface,
        ErrorCode::Busy,
        ErrorCode::Permission,
        ErrorCode::NotOpenedHere,
        ErrorCode::Io,
        ErrorCode::Full,
        ErrorCode::Config,
        ErrorCode::ReloadIncomplete,
        ErrorCode::BadRequest,
        ErrorCode::Internal,
        ErrorCode::NotRunning,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub version: u32,
    #[serde(flatten)]
    pub body: T,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    /// Why it failed, for programs (absent on success, and from a
    /// vswitchd older than the codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Response {
    pub fn ok(data: impl Serialize) -> Response {
        Response {
            version: VERSION,
            ok: true,
            code: None,
            error: None,
            data: Some(serde_json::to_value(data).unwrap_or(serde_json::Value::Null)),
        }
    }
    pub fn err(code: ErrorCode, msg: impl Into<String>) -> Response {
        Response {
            version: VERSION,
            ok: false,
            code: Some(code),
            error: Some(msg.into()),
            data: None,
        }
    }
}

/// Reads one request line: JSON with this protocol's `version` and a
/// known command. The error is the response to send back. Pure, so the
/// control socket and the fuzz target `control` run the same code.
pub fn parse_request(line: &[u8]) -> Result<Request, Response> {
    let bad = |msg: String| Response::err(ErrorCode::BadRequest, msg);
    let v = serde_json::from_slice::<serde_json::Value>(line)
        .map_err(|e| bad(format!("not JSON: {e}")))?;
    match v.get("version").and_then(|x| x.as_u64()) {
        Some(ver) if ver == VERSION as u64 => serde_json::from_value::<Envelope<Request>>(v)
            .map(|env| env.body)
            .map_err(|e| bad(format!("bad request: {e}"))),
        Some(ver) => Err(bad(format!(
            "protocol version {ver} is not supported (this vswitchd speaks {VERSION})"
        ))),
        None => Err(bad("request has no \"version\"".into())),
    }
}

/// Settings `port set` changes; `None` leaves one as it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<crate::config::VlanSection>,
    /// Go back to no VLAN settings (access VLAN 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_vlan: bool,
    #[serde(flatten)]
    pub flags: FlagChanges,
}

impl PortChanges {
    pub fn apply(&self, s: &mut PortSection) {
        if self.no_vlan {
            s.vlan = None;
        }
        if let Some(v) = &self.vlan {
            s.vlan = Some(v.clone());
        }
        self.flags.apply(s);
    }
}

/// How a request carries a new value of a port flag of this type.
pub trait FlagChange {
    type Wire: Copy;
    fn from_wire(w: Self::Wire) -> Self;
}

impl FlagChange for bool {
    type Wire = bool;
    fn from_wire(on: bool) -> bool {
        on
    }
}

impl FlagChange for Option<MacLimit> {
    /// The new limit; 0 removes it.
    type Wire = usize;
    fn from_wire(n: usize) -> Option<MacLimit> {
        MacLimit::new(n).ok()
    }
}

impl FlagChange for Option<crate::switch::StpCost> {
    /// The new cost; 0: from the link speed again.
    type Wire = u32;
    fn from_wire(n: u32) -> Option<crate::switch::StpCost> {
        crate::switch::StpCost::new(n).ok()
    }
}

impl FlagChange for crate::switch::StpPriority {
    type Wire = crate::switch::StpPriority;
    fn from_wire(p: crate::switch::StpPriority) -> crate::switch::StpPriority {
        p
    }
}

impl FlagChange for crate::switch::StormControl {
    /// The new limits, all three classes (`off` clears them).
    type Wire = crate::switch::StormControl;
    fn from_wire(sc: crate::switch::StormControl) -> crate::switch::StormControl {
        sc
    }
}

impl FlagChange for crate::mcast::RouterMode {
    type Wire = crate::mcast::RouterMode;
    fn from_wire(m: crate::mcast::RouterMode) -> crate::mcast::RouterMode {
        m
    }
}

macro_rules! flag_changes {
    ($( $(#[$doc:meta])* $flag:ident: $ty:ty = $default:expr, )*) => {
        /// New values for some port flags (one field per
        /// [`port_flags!`](crate::port_flags) entry); `None` leaves one as
        /// it is. `mac-limit` 0 removes the limit.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub struct FlagChanges {
            $(
                $(#[$doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $flag: Option<<$ty as FlagChange>::Wire>,
            )*
        }

        impl FlagChanges {
            /// Sets the flags given in `section`.
            pub fn apply(&self, section: &mut PortSection) {
                $(
                    if let Some(v) = self.$flag {
                        section.$flag = Some(<$ty as FlagChange>::from_wire(v));
                    }
                )*
            }
        }
    };
}
crate::port_flags!(flag_changes);

/// One port in `show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortInfo {
    pub id: PortId,
    pub name: String,
    pub kind: String,
    pub state: String,
    /// How the worker reads the port now: `polled`, or `ring` (a busy TAP
    /// read through io_uring).
    #[serde(default = "polled")]
    pub reading: Reading,
    /// VLAN membership for people: `access 10`, `trunk 10,20 native 1`,
    /// `-` when the switch does not filter VLANs.
    pub vlan: String,
    /// VLAN membership for programs, as a `vlan` key of a `[[port]]`
    /// section: `{"mode":"access","vid":10}`, `{"mode":"trunk",
    /// "allowed":"10,20","native":1}`; `null` when the switch does not
    /// filter VLANs.
    #[serde(default)]
    pub vlan_mode: Option<crate::config::VlanSection>,
    #[serde(flatten)]
    pub flags: PortFlags,
    pub mtu: usize,
    pub learned_macs: usize,
    pub counters: PortCounters,
    /// A `vxlan:` port's tunnel: its VNI and per-remote counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanInfo>,
}

/// A `vxlan:` port in `show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VxlanInfo {
    pub vni: u32,
    /// `local:dstport`.
    pub local: String,
    /// Entries in its inner MAC → remote table.
    pub remote_macs: usize,
    /// Frames with nowhere to go (no known remote, empty flood list).
    pub no_remote: u64,
    /// MACs not learned because the table was full.
    pub learn_refused: u64,
    pub remotes: Vec<crate::port::vxlan::RemoteStats>,
    /// Who encapsulates; with `kernel` the table and remotes are the
    /// kernel device's (not shown here).
    #[serde(default)]
    pub encap: crate::port::Encap,
}

fn polled() -> Reading {
    Reading::Polled
}

/// Counters as the control tool shows them.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PortCounters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub flooded: u64,
    /// Frames received on the port that were forwarded. With `punted` and
    /// the drops counted on this port as ingress (forwarding decisions,
    /// storm control, `control_queue_full`), they add up to `rx_frames`.
    #[serde(default)]
    pub forwarded: u64,
    /// Frames received on the port for the switch itself (BPDUs).
    #[serde(default)]
    pub punted: u64,
    pub dropped: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
}

impl From<PortTotals> for PortCounters {
    fn from(t: PortTotals) -> Self {
        PortCounters {
            rx_frames: t.rx_frames,
            rx_bytes: t.rx_bytes,
            tx_frames: t.tx_frames,
            tx_bytes: t.tx_bytes,
            flooded: t.flooded,
            forwarded: t.forwarded,
            punted: t.punted,
            dropped: t.dropped(),
            drops: t
                .drops
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.to_string(), *n))
                .collect(),
        }
    }
}

/// `show` as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShowInfo {
    pub version: String,
    pub vlan_filtering: bool,
    pub ageing_seconds: u64,
    pub fdb_entries: usize,
    pub fdb_capacity: usize,
    pub group_fwd_mask: u16,
    pub ports: Vec<PortInfo>,
}

/// One FDB row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FdbRow {
    pub mac: Mac,
    pub vlan: u16,
    pub port: String,
    #[serde(rename = "static")]
    pub is_static: bool,
    pub age_seconds: f64,
    /// Behind a `vxlan:` port: the remote VTEP the MAC is reached through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Where the entry comes from: `learned`, `static` (configured) or
    /// `evpn` (a BGP EVPN route).
    #[serde(default = "origin_learned")]
    pub origin: String,
}

fn origin_learned() -> String {
    "learned".to_string()
}

/// One multicast group membership (`mdb show`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MdbRow {
    pub group: std::net::IpAddr,
    pub vlan: u16,
    pub port: String,
    /// Seconds until the membership runs out without a report.
    pub remaining_seconds: f64,
    /// The message that last refreshed it: igmpv1, igmpv2, igmpv3, mldv1,
    /// mldv2.
    pub version: String,
}

/// One router port (`mdb router`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MdbRouterRow {
    pub port: String,
    /// ipv4 or ipv6.
    pub family: String,
    /// The port's mcast-router setting: auto (learned) or on.
    pub mode: String,
    /// Seconds a learned router port has left; none when configured on.
    pub remaining_seconds: Option<f64>,
}

/// The querier of one family (`mdb router`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuerierRow {
    pub family: String,
    /// The elected querier's address; none when no querier is known.
    pub address: Option<std::net::IpAddr>,
    /// The port it is heard on; none when it is the switch itself.
    pub port: Option<String>,
    /// Seconds before another querier counts as gone.
    pub remaining_seconds: Option<f64>,
    /// Whether multicast forwarding treats a querier as present (after the
    /// first query's response time).
    pub present: bool,
}

/// `mdb router` as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MdbRouterInfo {
    pub snooping: bool,
    pub own_querier: bool,
    pub routers: Vec<MdbRouterRow>,
    pub queriers: Vec<QuerierRow>,
}

pub fn state_name(up: bool, link: LinkState) -> &'static str {
    match (up, link) {
        (_, LinkState::Gone) => "gone",
        (_, LinkState::LinkDown) => "link-down",
        (true, LinkState::Up) => "up",
        (false, LinkState::Up) => "down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json_lines() {
        let r = Envelope {
            version: VERSION,
            body: Request::FdbShow {
                port: Some("tap0".into()),
                vlan: None,
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"cmd":"fdb-show","port":"tap0","vlan":null}"#
        );
        let back: Envelope<Request> = serde_json::from_str(&line).unwrap();
        assert_eq!(back.body, r.body);
        let add: Envelope<Request> =
            serde_json::from_str(r#"{"version":1,"cmd":"port-add","port":{"name":"tap9","vlan":{"mode":"access","vid":10}}}"#)
                .unwrap();
        assert!(matches!(add.body, Request::PortAdd { .. }));
        assert!(
            serde_json::from_str::<Envelope<Request>>(r#"{"version":1,"cmd":"nope"}"#).is_err()
        );
        let stats: Envelope<Request> =
            serde_json::from_str(r#"{"version":1,"cmd":"stats"}"#).unwrap();
        assert_eq!(stats.body, Request::Show);
        let bad = serde_json::from_str::<Envelope<Request>>(
            r#"{"version":1,"cmd":"fdb-flush","vlan":4095}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("1-4094"));
    }

    #[test]
    fn request_lines_are_checked_for_json_version_and_command() {
        assert_eq!(
            parse_request(br#"{"version":1,"cmd":"show"}"#).ok(),
            Some(Request::Show)
        );
        let code = |line: &[u8]| parse_request(line).unwrap_err().code;
        assert_eq!(code(b"{"), Some(ErrorCode::BadRequest));
        assert_eq!(code(br#"{"cmd":"show"}"#), Some(ErrorCode::BadRequest));
        let other = parse_request(br#"{"version":2,"cmd":"show"}"#).unwrap_err();
        assert!(other.error.unwrap().contains("version 2"));
        assert_eq!(
            code(br#"{"version":1,"cmd":"nope"}"#),
            Some(ErrorCode::BadRequest)
        );
    }

    #[test]
    fn error_codes_are_snake_case_words() {
        for c in ErrorCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), c);
        }
        let r = Response::err(ErrorCode::Exists, "port `x` already exists");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"version":1,"ok":false,"code":"exists","error":"port `x` already exists"}"#
        );
        // An answer without a code (an older vswitchd) still reads.
        let old: Response =
            serde_json::from_str(r#"{"version":1,"ok":false,"error":"x"}"#).unwrap();
        assert_eq!(old.code, None);
    }

    #[test]
    fn port_changes_keep_their_wire_keys() {
        let line = r#"{"vlan":{"mode":"access","vid":10},"mcast-flood":false,"mac-limit":0}"#;
        let c: PortChanges = serde_json::from_str(line).unwrap();
        assert_eq!(c.flags.mcast_flood, Some(false));
        assert_eq!(serde_json::to_string(&c).unwrap(), line);
        assert!(serde_json::from_str::<PortChanges>(r#"{"bogus":1}"#).is_err());
        let mut s = PortSection::named("tap0");
        s.mac_limit = Some(MacLimit::new(4).ok());
        c.apply(&mut s);
        let flags = s.flags();
        assert!(!flags.mcast_flood && flags.flood);
        assert_eq!(flags.mac_limit, None, "mac-limit 0 removes the limit");
        assert!(matches!(
            s.vlan,
            Some(crate::config::VlanSection::Access { .. })
        ));
    }
}
