//! The control socket protocol: one JSON object per line each way.
//!
//! Request:  `{"version":1,"cmd":"fdb-show","port":"tap0"}`
//! Response: `{"version":1,"ok":true,"data":...}` or
//!           `{"version":1,"ok":false,"error":"..."}`
//!
//! A request with another `version` is refused with an error naming both.

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
    /// Re-read the config file (as SIGHUP does).
    Reload,
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
            error: None,
            data: Some(serde_json::to_value(data).unwrap_or(serde_json::Value::Null)),
        }
    }
    pub fn err(msg: impl Into<String>) -> Response {
        Response {
            version: VERSION,
            ok: false,
            error: Some(msg.into()),
            data: None,
        }
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
    pub vlan: String,
    #[serde(flatten)]
    pub flags: PortFlags,
    pub mtu: usize,
    pub learned_macs: usize,
    pub counters: PortCounters,
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
