//! What can go wrong in a daemon operation, each naming the port, file or
//! entry and, where there is one, what to do. The control server sends the
//! text to `vswitchctl`; the main loop logs it.

use std::io;

use crate::config::{ConfigError, PortSectionError};
use crate::control::protocol::ErrorCode;
use crate::port::PortError;
use crate::registry::RegistryError;
use crate::wire::Mac;

/// Why a daemon operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no port named `{0}`")]
    NoSuchPort(String),
    #[error("port `{0}` already exists")]
    Exists(String),
    /// A port attached by a program, not from a plan: it has no settings
    /// the daemon could change.
    #[error("port `{0}` was not opened by vswitchd")]
    NotOpenedHere(String),
    /// The settings of a `port-add` or `port-set` request break a rule.
    #[error("port `{port}`: {source}")]
    Settings {
        port: String,
        source: PortSectionError,
    },
    /// Opening the device failed (the error names the port).
    #[error(transparent)]
    Open(#[from] PortError),
    /// The device opened but could not be put in its namespace or given
    /// its addresses.
    #[error("port `{port}`: {source}")]
    Place { port: String, source: PlaceError },
    /// A socket port's file could not be given to its `socket-group`.
    #[error("port `{port}`: {source}")]
    Group {
        port: String,
        source: super::access::GroupError,
    },
    /// The config file could not be read or is wrong (the error names the
    /// file and line).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A reload stopped at `0`; the switch kept its configuration.
    #[error("reload failed, configuration unchanged: {0}")]
    Reload(Box<DaemonError>),
    /// A reload stopped at `0` after it began to change ports (a port
    /// whose new MTU needs a new device could not be opened again).
    #[error("reload stopped, some ports changed, the rest not: {0} (fix it and reload again)")]
    ReloadIncomplete(Box<DaemonError>),
    #[error("{0}: a static entry must be a unicast, non-zero MAC")]
    StaticMac(Mac),
    #[error(
        "the FDB is full of static entries (remove some with `vswitchctl fdb del`, or raise fdb-size)"
    )]
    FdbFull,
    #[error("no FDB entry for {0}")]
    NoFdbEntry(Mac),
    /// `log-level` with a filter that does not parse.
    #[error("bad log filter `{filter}`: {why}")]
    LogFilter { filter: String, why: String },
    /// `log-level` on a daemon whose logging cannot change (embedded,
    /// tests).
    #[error("this vswitchd cannot change its log filter")]
    NoLogControl,
    #[error("spanning tree is off (set `stp = \"rstp\"` or `\"stp\"` in [switch] and reload)")]
    StpOff,
    #[error(transparent)]
    Stp(super::stp::StpError),
    /// `stp set` values out of range or breaking a timer rule.
    #[error("{0}")]
    StpSettings(String),
    /// `trace --frame` that is not a frame's bytes in hex.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// A mirror's or capture's settings break a rule.
    #[error("{0}")]
    Mirror(String),
    #[error("no mirror named `{0}`")]
    NoSuchMirror(String),
    #[error("EVPN is off (add an [evpn] section with gobgp, asn and router-id, and restart)")]
    EvpnOff,
    #[error("port {port} already has evpn = true for vni = {vni}: one EVPN segment per VNI")]
    EvpnVni { vni: u32, port: String },
}

impl DaemonError {
    /// The protocol's code for this error (what a script tests, rather
    /// than the text).
    pub fn code(&self) -> ErrorCode {
        match self {
            DaemonError::NoSuchPort(_) => ErrorCode::NoSuchPort,
            DaemonError::Exists(_) => ErrorCode::Exists,
            DaemonError::NotOpenedHere(_) => ErrorCode::NotOpenedHere,
            DaemonError::Settings { .. }
            | DaemonError::StaticMac(_)
            | DaemonError::LogFilter { .. } => ErrorCode::Invalid,
            DaemonError::Open(e) => match e {
                PortError::BadName { .. } | PortError::Duplicate { .. } => ErrorCode::Invalid,
                PortError::TunDevice { .. } | PortError::Permission { .. } => ErrorCode::Permission,
                PortError::Busy { .. } => ErrorCode::Busy,
                PortError::NotATap { .. } => ErrorCode::Exists,
                PortError::NoInterface { .. } => ErrorCode::NoSuchInterface,
                PortError::Io { .. } => ErrorCode::Io,
            },
            DaemonError::Place { source, .. } => match source {
                PlaceError::NoNamespace(_) => ErrorCode::Invalid,
                PlaceError::Move { .. } | PlaceError::Configure(_) => ErrorCode::Io,
            },
            DaemonError::Group { source, .. } => match source {
                super::access::GroupError::NoSuchGroup(_) => ErrorCode::Invalid,
                super::access::GroupError::Lookup { .. } => ErrorCode::Io,
                super::access::GroupError::Chown { .. } => ErrorCode::Permission,
            },
            DaemonError::Config(_) => ErrorCode::Config,
            DaemonError::Registry(e) => match e {
                RegistryError::Full => ErrorCode::Full,
                RegistryError::Duplicate(_) => ErrorCode::Exists,
                RegistryError::NoSuchPort(_) => ErrorCode::NoSuchPort,
            },
            // The file, or a port it adds: the cause's code, except that
            // the switch kept its configuration.
            DaemonError::Reload(inner) => inner.code(),
            DaemonError::ReloadIncomplete(_) => ErrorCode::ReloadIncomplete,
            DaemonError::FdbFull => ErrorCode::Full,
            DaemonError::NoFdbEntry(_) | DaemonError::NoSuchMirror(_) => ErrorCode::NoSuchEntry,
            DaemonError::NoLogControl => ErrorCode::Internal,
            DaemonError::StpOff
            | DaemonError::StpSettings(_)
            | DaemonError::BadFrame(_)
            | DaemonError::Mirror(_) => ErrorCode::Invalid,
            DaemonError::Stp(e) => match e {
                super::stp::StpError::Off | super::stp::StpError::NotTripped(_) => {
                    ErrorCode::Invalid
                }
            },
            DaemonError::EvpnOff | DaemonError::EvpnVni { .. } => ErrorCode::Invalid,
        }
    }
}

impl DaemonError {
    /// A request's port settings refused by `PortSection::plan`: errors
    /// that already name the port (a bad spec) are kept as they are.
    pub(crate) fn settings(port: &str, e: PortSectionError) -> DaemonError {
        match e {
            PortSectionError::Spec(e) => DaemonError::Open(e),
            source => DaemonError::Settings {
                port: port.to_string(),
                source,
            },
        }
    }
}

/// Why a new TAP could not be placed (moved into its namespace, given its
/// addresses and routes).
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("network namespace `{0}` does not exist (create it with `ip netns add {0}`)")]
    NoNamespace(String),
    #[error("moving into namespace `{netns}`: {source}")]
    Move { netns: String, source: io::Error },
    #[error("bringing up / adding addresses and routes: {0}")]
    Configure(io::Error),
}
