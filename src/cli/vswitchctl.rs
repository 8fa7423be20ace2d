//! `vswitchctl`'s command line, and how it turns into a control request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::config::{AgeingTime, DEFAULT_CONTROL_SOCKET, PortSection, VlanSection};
use crate::control::protocol::{FlagChange, FlagChanges, PortChanges, Request};
use crate::switch::{MacLimit, PortFlags, Vid, VlanSet};
use crate::wire::Mac;

/// Control a running vswitchd.
#[derive(Parser, Debug)]
#[command(name = "vswitchctl", version, after_help = EXAMPLES)]
pub struct Cli {
    /// vswitchd's control socket (vswitchd@NAME.service: /run/vswitchd/NAME.sock).
    #[arg(
        short,
        long,
        env = "VSWITCHD_SOCKET",
        default_value = DEFAULT_CONTROL_SOCKET,
        global = true,
        value_name = "PATH"
    )]
    pub socket: PathBuf,
    /// Print JSON instead of tables; on failure print
    /// {"ok":false,"code":CODE,"error":TEXT} on one line to stdout.
    #[arg(short, long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

const EXAMPLES: &str = "Examples:
  vswitchctl show
  vswitchctl -j show
  vswitchctl port add raw:vnet3 --access 10
  vswitchctl port set tap0 --trunk 10,20 --native 1
  vswitchctl fdb show --port tap0
  vswitchctl fdb get 02:00:00:00:00:01 --vlan 10
  vswitchctl log-level debug
  vswitchctl --socket /run/vswitchd/lab.sock reload

Exit status: 0 done; 1 vswitchd refused or failed the request (or is not
running); 2 bad command line. With --json a failure prints its code (exists,
no_such_port, invalid, ...: see vswitchctl(8)).";

fn parse_encap(s: &str) -> Result<crate::port::Encap, String> {
    match s {
        "vswitchd" => Ok(crate::port::Encap::Vswitchd),
        "kernel" => Ok(crate::port::Encap::Kernel),
        _ => Err(format!("`{s}`: use vswitchd or kernel")),
    }
}

// `port add` carries every `[[port]]` key (tunnel settings too): the enum is
// parsed once per run, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Ports, their state, VLANs and counters.
    Show,
    /// Per-port counters and drops by reason (from the same answer as
    /// `show`).
    Stats,
    /// Add, remove or change ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Show and edit the forwarding database.
    #[command(subcommand)]
    Fdb(FdbCmd),
    /// Show the multicast database (IGMP/MLD snooping).
    #[command(subcommand)]
    Mdb(MdbCmd),
    /// Change a switch setting.
    #[command(subcommand)]
    Set(SetCmd),
    /// Spanning tree: roles and states, BPDU guard.
    #[command(subcommand)]
    Stp(StpCmd),
    /// Follow one frame through the forwarding core, as if it arrived on
    /// a port: each step, every candidate port and the tag actions. Dry:
    /// nothing is learned, counted or sent.
    #[command(after_help = "Examples:
  vswitchctl trace tap0 --src 02:00:00:00:00:01 --dst 02:00:00:00:00:02
  vswitchctl trace tap0 --src 02:00:00:00:00:01 --dst ff:ff:ff:ff:ff:ff --vlan 10
  vswitchctl --json trace tap0 --frame ffffffffffff020000000001080600010800060400010200...

Without --frame, the frame is built from the options: IPv4 (or IPv6 for a
33:33:... destination) to the group a multicast MAC stands for, so
snooping routes it as data; other EtherTypes carry zero bytes.")]
    Trace(TraceArgs),
    /// Port mirrors: copies of some ports' (or VLANs') frames out of an
    /// output port, for tcpdump, Wireshark or an IDS.
    #[command(subcommand)]
    Mirror(MirrorCmd),
    /// Write a port's frames to a pcapng file (any port kind, `unix:`
    /// and `vxlan:` too), bounded by --count and --duration.
    #[command(after_help = "Examples:
  vswitchctl capture tap0 --count 100 -w tap0.pcapng
  vswitchctl capture unix:/run/vm1.sock --direction in --duration 10 -w vm1.pcapng
  vswitchctl capture tap0 -w - | wireshark -k -i -

Frames the client cannot take fast enough are dropped (never the
switch's traffic); the count is printed at the end.")]
    Capture {
        #[arg(value_name = "PORT")]
        port: String,
        /// Frames received on the port (in), sent out of it (out), or both.
        #[arg(long, default_value = "both")]
        direction: crate::dataplane::taps::Direction,
        /// Stop after this many frames.
        #[arg(long, short = 'c')]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
        /// Keep at most this many bytes of each frame (14 to 65535).
        #[arg(long)]
        snaplen: Option<usize>,
        /// The pcapng file to write, or `-` for standard output.
        #[arg(short = 'w', value_name = "FILE")]
        write: String,
    },
    /// Watch the switch change: MACs learned, moved, aged, evicted and
    /// flushed; ports added, up, down and gone; spanning-tree changes.
    #[command(after_help = "Examples:
  vswitchctl monitor
  vswitchctl monitor fdb --count 10
  vswitchctl --json monitor ports --duration 60")]
    Monitor {
        /// fdb, ports, or all (spanning tree too).
        #[arg(default_value = "all")]
        what: crate::control::protocol::MonitorWhat,
        /// Stop after this many events.
        #[arg(long, short = 'c')]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
    },
    /// Re-read the config file (like SIGHUP); prints what changed.
    Reload,
    /// Show or change vswitchd's log filter at run time (until it
    /// restarts).
    #[command(after_help = "Examples:
  vswitchctl log-level
  vswitchctl log-level debug
  vswitchctl log-level 'vswitch::daemon=debug,info'")]
    LogLevel {
        /// New filter: error, warn, info, debug, trace, off, or tracing
        /// directives (e.g. `vswitch::daemon=debug,info`); none: print the
        /// current one.
        #[arg(value_name = "FILTER")]
        filter: Option<String>,
    },
    /// BGP EVPN: the connection to GoBGP, routes per VNI, remote VTEPs.
    #[command(subcommand)]
    Evpn(EvpnCmd),
}

#[derive(Subcommand, Debug)]
pub enum EvpnCmd {
    /// GoBGP connection, and per EVPN segment: RD, RT, MACs advertised and
    /// received, remote VTEPs.
    #[command(after_help = "Examples:\n  vswitchctl evpn show\n  vswitchctl --json evpn show")]
    Show,
}

/// `vswitchctl trace`'s frame: built from fields, or given whole.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// The port the frame arrives on.
    #[arg(value_name = "IN_PORT")]
    pub port: String,
    /// Source MAC.
    #[arg(long, required_unless_present = "frame", conflicts_with = "frame")]
    pub src: Option<Mac>,
    /// Destination MAC.
    #[arg(long, required_unless_present = "frame", conflicts_with = "frame")]
    pub dst: Option<Mac>,
    /// Tag the frame with this VLAN (802.1Q); untagged without it.
    #[arg(long, conflicts_with = "frame")]
    pub vlan: Option<Vid>,
    /// EtherType after the tag: a number (0x0806) or ipv4, ipv6, arp.
    #[arg(long, value_parser = parse_ethertype, conflicts_with = "frame")]
    pub ethertype: Option<u16>,
    /// The whole Ethernet frame in hex (from the destination MAC on, no
    /// preamble or FCS), e.g. copied from `tcpdump -xx`.
    #[arg(long, value_name = "HEX")]
    pub frame: Option<String>,
}

fn parse_ethertype(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}`: an EtherType is ipv4, ipv6, arp or a number like 0x88b5");
    match s {
        "ipv4" => Ok(0x0800),
        "ipv6" => Ok(0x86dd),
        "arp" => Ok(0x0806),
        _ => match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u16::from_str_radix(h, 16).map_err(|_| bad()),
            None => s.parse().map_err(|_| bad()),
        },
    }
}

impl TraceArgs {
    /// The frame to trace, in hex.
    pub fn frame_hex(&self) -> String {
        if let Some(f) = &self.frame {
            return f.replace([' ', ':', '\n'], "");
        }
        let src = self.src.unwrap_or(Mac([2, 0, 0, 0, 0, 1]));
        let dst = self.dst.unwrap_or(Mac::BROADCAST);
        hex::encode(trace_frame(src, dst, self.vlan, self.ethertype))
    }
}

/// A frame from `src` to `dst`: for a group MAC (01:00:5e:.., 33:33:..)
/// and an IP EtherType, an IP datagram to the group it stands for; else
/// the header and zeros up to 60 bytes. Tagged with `vlan` if given.
pub fn trace_frame(src: Mac, dst: Mac, vlan: Option<Vid>, ethertype: Option<u16>) -> Vec<u8> {
    use crate::wire::igmp::data_frame;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let d = dst.0;
    let v4 = d[..3] == [0x01, 0x00, 0x5e] && matches!(ethertype, None | Some(0x0800));
    let v6 = d[..2] == [0x33, 0x33] && matches!(ethertype, None | Some(0x86dd));
    let mut f = if v4 {
        let group = Ipv4Addr::new(239, d[3] & 0x7f, d[4], d[5]);
        data_frame(
            src.0,
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            IpAddr::V4(group),
            8,
        )
    } else if v6 {
        let group = Ipv6Addr::from([
            0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, d[2], d[3], d[4], d[5],
        ]);
        let from = Ipv6Addr::from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        data_frame(src.0, IpAddr::V6(from), IpAddr::V6(group), 8)
    } else {
        let mut f = Vec::with_capacity(64);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&ethertype.unwrap_or(0x0800).to_be_bytes());
        f
    };
    if let Some(v) = vlan {
        let tag = [0x81, 0x00, (v.get() >> 8) as u8, v.get() as u8];
        f.splice(12..12, tag);
    }
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

#[derive(Subcommand, Debug)]
pub enum MirrorCmd {
    /// Add a mirror (the settings of a `[[mirror]]` section; until a
    /// reload).
    #[command(after_help = "Examples:
  vswitchctl mirror add m1 --ports tap0,tap1 --output tap9
  vswitchctl mirror add web --vlans 10 --direction in --output tap9 --snaplen 128")]
    Add {
        name: String,
        /// Ports whose frames are copied.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<String>,
        /// Only frames of these VLANs (`10,20-30`); without --ports, on
        /// every port.
        #[arg(long)]
        vlans: Option<VlanSet>,
        /// Frames received (in), sent (out), or both.
        #[arg(long, default_value = "both")]
        direction: crate::dataplane::taps::Direction,
        /// The port the copies go out of; it carries nothing else.
        #[arg(long)]
        output: String,
        /// Copy at most this many bytes of each frame.
        #[arg(long)]
        snaplen: Option<usize>,
    },
    /// Remove a mirror.
    Del { name: String },
    /// Mirrors, with the copies sent and dropped.
    Show,
}

#[derive(Subcommand, Debug)]
pub enum StpCmd {
    /// The bridge, the root, and every port's role, state and cost.
    #[command(after_help = "Examples:\n  vswitchctl stp show\n  vswitchctl --json stp show")]
    Show,
    /// Re-enable a port that BPDU guard disabled (after the bridge or
    /// switch behind it is gone).
    #[command(after_help = "Example:\n  vswitchctl stp enable tap3")]
    Enable {
        /// The port.
        #[arg(value_name = "PORT")]
        port: String,
    },
    /// Change spanning tree's mode, priority or timers at run time (until
    /// a reload or restart: put lasting changes in the config file). A
    /// converged tree is kept unless the new values give another.
    #[command(after_help = "Examples:
  vswitchctl stp set --priority 4096
  vswitchctl stp set --mode rstp --hello-time 1 --max-age 6 --forward-delay 4
  vswitchctl stp set --mode off")]
    Set(StpChanges),
}

/// New spanning-tree settings; those not given stay as they are.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StpChanges {
    /// off, stp or rstp.
    #[arg(long, value_name = "MODE", value_parser = parse_stp_mode)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<crate::config::StpMode>,
    /// Bridge priority, a multiple of 4096 from 0 to 61440.
    #[arg(long, value_name = "N")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Seconds between BPDUs (1-10).
    #[arg(long, value_name = "S")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello_time: Option<u32>,
    /// Seconds received information lives (6-40).
    #[arg(long, value_name = "S")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Seconds in listening and in learning (4-30).
    #[arg(long, value_name = "S")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_delay: Option<u32>,
}

fn parse_stp_mode(s: &str) -> Result<crate::config::StpMode, String> {
    match s {
        "off" => Ok(crate::config::StpMode::Off),
        "stp" => Ok(crate::config::StpMode::Stp),
        "rstp" => Ok(crate::config::StpMode::Rstp),
        _ => Err(format!("`{s}`: use off, stp or rstp")),
    }
}

// `port add` carries every `[[port]]` key: parsed once per run, its size
// does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum PortCmd {
    /// Open and attach a port, with the settings a `[[port]]` section takes.
    #[command(after_help = "Examples:
  vswitchctl port add tap5
  vswitchctl port add raw:vnet3 --access 10
  vswitchctl port add c1 --netns blue --address 198.18.0.2/24 --gateway 198.18.0.1
  vswitchctl port add unix:/run/vswitchd/vm1.sock --socket-group kvm
  vswitchctl port add vxlan:vx100 --vni 100 --local 198.19.7.1 --remote 198.19.7.2 --remote 198.19.7.3")]
    Add {
        /// The port: NAME (a TAP), raw:IFNAME (an existing interface),
        /// unix:PATH or unixgram:PATH (a socket for QEMU), vxlan:NAME (a
        /// VXLAN tunnel).
        #[arg(value_name = "SPEC")]
        spec: String,
        #[command(flatten)]
        opts: PortOpts,
        /// Move the new TAP into this network namespace.
        #[arg(long, value_name = "NS")]
        netns: Option<String>,
        /// Give the new TAP this address (repeatable), e.g. 198.18.0.1/24.
        #[arg(long = "address", value_name = "ADDR/LEN")]
        addresses: Vec<String>,
        /// Default route via this gateway, out of the new TAP.
        #[arg(long, value_name = "IP")]
        gateway: Option<String>,
        /// MAC address of the new TAP, e.g. 02:00:00:00:00:01.
        #[arg(long, value_name = "MAC")]
        mac: Option<Mac>,
        /// MTU of the new TAP, 68 to 65521.
        #[arg(long, value_name = "BYTES", value_parser = parse_mtu)]
        mtu: Option<crate::config::Mtu>,
        /// File mode of a unix:/unixgram: socket, octal, e.g. 660
        /// [default: 600, or 660 with --socket-group].
        #[arg(long, value_name = "MODE", value_parser = crate::config::parse_socket_mode)]
        socket_mode: Option<u32>,
        /// Group of a unix:/unixgram: socket (its users may connect).
        #[arg(long, value_name = "GROUP")]
        socket_group: Option<String>,
        /// raw: ports: take the interface from the host stack
        /// (arp_ignore, disable_ipv6) [default: on].
        #[arg(long, value_name = "on|off", value_parser = <bool as CliFlag>::parse)]
        claim: Option<bool>,
        /// vxlan: ports: the VXLAN network identifier, 0 to 16777215.
        #[arg(long, value_name = "VNI")]
        vni: Option<u32>,
        /// vxlan: ports: the underlay source address on this host.
        #[arg(long, value_name = "IP")]
        local: Option<String>,
        /// vxlan: ports: a remote VTEP of the flood list (repeatable).
        #[arg(long = "remote", value_name = "IP")]
        remotes: Vec<String>,
        /// vxlan: ports: the UDP port [default: 4789].
        #[arg(long, value_name = "PORT")]
        dstport: Option<u16>,
        /// vxlan: ports: who encapsulates, vswitchd or kernel (a Linux
        /// vxlan device vswitchd creates) [default: vswitchd].
        #[arg(long, value_name = "vswitchd|kernel", value_parser = parse_encap)]
        encap: Option<crate::port::Encap>,
        /// vxlan: ports: remotes and remote MACs from BGP EVPN (needs
        /// vswitchd's `[evpn]` section) [default: off].
        #[arg(long, value_name = "on|off", value_parser = <bool as CliFlag>::parse)]
        evpn: Option<bool>,
        /// vxlan: ports with --evpn on: the route distinguisher, IPV4:N
        /// [default: router-id:VNI].
        #[arg(long, value_name = "RD")]
        evpn_rd: Option<String>,
        /// vxlan: ports with --evpn on: the route target sent and imported,
        /// ASN:N [default: ASN:VNI].
        #[arg(long, value_name = "RT")]
        evpn_rt: Option<String>,
    },
    /// Detach and close a port.
    #[command(after_help = "Example:\n  vswitchctl port del raw:vnet3")]
    Del {
        /// The port's name as `show` lists it (tap0, raw:vnet3, unix:/path).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Change settings of a port (those not given stay).
    #[command(after_help = "Examples:
  vswitchctl port set tap0 --access 20
  vswitchctl port set raw:eth1 --trunk 10,20-30 --native 1
  vswitchctl port set tap0 --mac-limit 16 --flood off
  vswitchctl port set tap0 --no-vlan")]
    Set {
        /// The port's name as `show` lists it.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        opts: PortOpts,
        /// Remove VLAN settings (back to access VLAN 1).
        #[arg(long, conflicts_with_all = ["access", "trunk"])]
        no_vlan: bool,
    },
}

fn parse_mtu(s: &str) -> Result<crate::config::Mtu, String> {
    let n: usize = s.parse().map_err(|_| format!("`{s}`: a number"))?;
    crate::config::Mtu::new(n).map_err(|e| e.to_string())
}

/// VLAN and flag options of `port add` and `port set`.
#[derive(Args, Debug, Default)]
pub struct PortOpts {
    /// Access port in this VLAN (1-4094).
    #[arg(long, value_name = "VID", conflicts_with = "trunk")]
    pub access: Option<Vid>,
    /// Trunk carrying these VLANs tagged, e.g. 10,20-30.
    #[arg(long, value_name = "VLANS")]
    pub trunk: Option<VlanSet>,
    /// Native (untagged) VLAN of the trunk.
    #[arg(long, value_name = "VID", requires = "trunk")]
    pub native: Option<Vid>,
    #[command(flatten)]
    pub flags: FlagOpts,
}

/// How a port flag of this type is given on the command line and listed
/// by `show`.
pub trait CliFlag: FlagChange {
    const VALUE_NAME: &'static str;
    fn parse(s: &str) -> Result<Self::Wire, String>;
    /// The flag named `name` at this value, as `show` lists it when it is
    /// not at its default.
    fn word(&self, name: &str) -> String;
}

impl CliFlag for bool {
    const VALUE_NAME: &'static str = "on|off";
    fn parse(s: &str) -> Result<bool, String> {
        match s {
            "on" | "true" | "yes" | "1" => Ok(true),
            "off" | "false" | "no" | "0" => Ok(false),
            _ => Err(format!("`{s}`: use on or off")),
        }
    }
    fn word(&self, name: &str) -> String {
        if *self {
            name.to_string()
        } else {
            format!("no-{name}")
        }
    }
}

impl CliFlag for Option<MacLimit> {
    const VALUE_NAME: &'static str = "N";
    /// 0: no limit.
    fn parse(s: &str) -> Result<usize, String> {
        s.parse()
            .map_err(|_| format!("`{s}`: a number of MACs (0: no limit)"))
    }
    fn word(&self, name: &str) -> String {
        match self {
            Some(l) => format!("{name}={l}"),
            None => format!("no-{name}"),
        }
    }
}

impl CliFlag for Option<crate::switch::StpCost> {
    const VALUE_NAME: &'static str = "COST";
    /// 0: from the link speed.
    fn parse(s: &str) -> Result<u32, String> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("`{s}`: a path cost, 1-200000000 (0: from the link speed)"))?;
        if n != 0 {
            crate::switch::StpCost::new(n).map_err(|e| e.to_string())?;
        }
        Ok(n)
    }
    fn word(&self, name: &str) -> String {
        match self {
            Some(c) => format!("{name}={c}"),
            None => format!("{name}=auto"),
        }
    }
}

impl CliFlag for crate::switch::StpPriority {
    const VALUE_NAME: &'static str = "0-240";
    fn parse(s: &str) -> Result<crate::switch::StpPriority, String> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("`{s}`: a multiple of 16 from 0 to 240"))?;
        crate::switch::StpPriority::new(n).map_err(|e| e.to_string())
    }
    fn word(&self, name: &str) -> String {
        format!("{name}={self}")
    }
}

impl CliFlag for crate::switch::StormControl {
    const VALUE_NAME: &'static str = "CLASS=FPS,...|off";
    /// `broadcast=1000,multicast=1000,unknown-unicast=1000`, or `off`.
    fn parse(s: &str) -> Result<crate::switch::StormControl, String> {
        crate::switch::StormControl::parse(s)
    }
    fn word(&self, name: &str) -> String {
        format!("{name}={self}")
    }
}

impl CliFlag for crate::mcast::RouterMode {
    const VALUE_NAME: &'static str = "off|auto|on";
    fn parse(s: &str) -> Result<crate::mcast::RouterMode, String> {
        s.parse()
    }
    fn word(&self, name: &str) -> String {
        format!("{name}={self}")
    }
}

macro_rules! flag_opts {
    ($( $(#[$doc:meta])* $flag:ident: $ty:ty = $default:expr, )*) => {
        /// An option per port flag (`--mac-limit 0` removes the limit).
        #[derive(Args, Debug, Default)]
        pub struct FlagOpts {
            $(
                $(#[$doc])*
                #[arg(
                    long,
                    value_name = <$ty as CliFlag>::VALUE_NAME,
                    value_parser = <$ty as CliFlag>::parse,
                )]
                pub $flag: Option<<$ty as FlagChange>::Wire>,
            )*
        }

        impl FlagOpts {
            pub fn changes(&self) -> FlagChanges {
                FlagChanges { $( $flag: self.$flag, )* }
            }
        }

        /// A port's flags as `show` lists them: those not at their
        /// defaults.
        pub fn flag_words(flags: &PortFlags) -> Vec<String> {
            let default = PortFlags::default();
            let mut words = Vec::new();
            $(
                if flags.$flag != default.$flag {
                    words.push(flags.$flag.word(&stringify!($flag).replace('_', "-")));
                }
            )*
            words
        }
    };
}
crate::port_flags!(flag_opts);

impl PortOpts {
    pub fn vlan(&self) -> Option<VlanSection> {
        if let Some(vid) = self.access {
            return Some(VlanSection::Access { vid });
        }
        self.trunk.as_ref().map(|allowed| VlanSection::Trunk {
            allowed: allowed.clone(),
            native: self.native,
        })
    }

    pub fn changes(&self, no_vlan: bool) -> PortChanges {
        PortChanges {
            vlan: self.vlan(),
            no_vlan,
            flags: self.flags.changes(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum MdbCmd {
    /// Group memberships: group, VLAN, port, time left, the message that
    /// made it (all, or of one port or VLAN).
    #[command(
        after_help = "Examples:\n  vswitchctl mdb show\n  vswitchctl -j mdb show --port tap0 --vlan 10"
    )]
    Show {
        /// Only memberships of this port.
        #[arg(long, value_name = "NAME")]
        port: Option<String>,
        /// Only memberships in this VLAN.
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
    /// Multicast router ports (learned or configured) and the querier of
    /// IPv4 and IPv6.
    #[command(after_help = "Examples:\n  vswitchctl mdb router\n  vswitchctl -j mdb router")]
    Router,
}

#[derive(Subcommand, Debug)]
pub enum FdbCmd {
    /// List entries (all, or of one port or VLAN).
    #[command(
        after_help = "Examples:\n  vswitchctl fdb show\n  vswitchctl fdb show --port tap0 --vlan 10"
    )]
    Show {
        /// Only entries on this port.
        #[arg(long, value_name = "NAME")]
        port: Option<String>,
        /// Only entries in this VLAN.
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
    /// Look up one MAC: the port it is on, in each VLAN (or one). Fails
    /// (code no_such_entry) when the switch does not know it.
    #[command(
        after_help = "Examples:\n  vswitchctl fdb get 02:00:00:00:00:01\n  vswitchctl -j fdb get 02:00:00:00:00:01 --vlan 10"
    )]
    Get {
        /// The MAC address, e.g. 02:00:00:00:00:01.
        #[arg(value_name = "MAC")]
        mac: Mac,
        /// Only in this VLAN.
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
    /// Add a static entry (never ages, never moves).
    #[command(
        after_help = "Example:\n  vswitchctl fdb add 02:00:00:00:00:01 --port tap0 --vlan 10"
    )]
    Add {
        /// The MAC address (unicast, not all-zero).
        #[arg(value_name = "MAC")]
        mac: Mac,
        /// The port frames to the MAC go out of.
        #[arg(long, value_name = "NAME")]
        port: String,
        /// The VLAN [default: the port's untagged VLAN, or 1].
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
    /// Remove an entry (static or learned).
    #[command(after_help = "Example:\n  vswitchctl fdb del 02:00:00:00:00:01")]
    Del {
        /// The MAC address.
        #[arg(value_name = "MAC")]
        mac: Mac,
        /// Only in this VLAN [default: every VLAN].
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
    /// Forget learned entries (all, or of one port or VLAN).
    #[command(after_help = "Example:\n  vswitchctl fdb flush --port tap0")]
    Flush {
        /// Only entries on this port.
        #[arg(long, value_name = "NAME")]
        port: Option<String>,
        /// Only entries in this VLAN.
        #[arg(long, value_name = "VID")]
        vlan: Option<Vid>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SetCmd {
    /// FDB ageing time in seconds, 10 to 1000000 (until a reload or restart).
    #[command(after_help = "Example:\n  vswitchctl set ageing 600")]
    Ageing {
        /// Seconds an unseen MAC stays learned.
        #[arg(value_name = "SECONDS")]
        seconds: AgeingTime,
    },
}

impl Cmd {
    /// The control request this command sends.
    pub fn request(&self) -> Request {
        match self {
            Cmd::Show => Request::Show,
            // The counters `stats` prints are in `show`'s answer.
            Cmd::Stats => Request::Show,
            Cmd::Reload => Request::Reload,
            Cmd::Mirror(MirrorCmd::Add {
                name,
                ports,
                vlans,
                direction,
                output,
                snaplen,
            }) => Request::MirrorAdd {
                mirror: crate::config::MirrorSection {
                    name: name.clone(),
                    ports: ports.clone(),
                    vlans: vlans.clone(),
                    direction: *direction,
                    output: output.clone(),
                    snaplen: *snaplen,
                },
            },
            Cmd::Mirror(MirrorCmd::Del { name }) => Request::MirrorDel { name: name.clone() },
            Cmd::Mirror(MirrorCmd::Show) => Request::MirrorShow,
            Cmd::Monitor {
                what,
                count,
                duration,
            } => Request::Monitor {
                what: *what,
                count: *count,
                duration: *duration,
            },
            Cmd::Capture {
                port,
                direction,
                count,
                duration,
                snaplen,
                ..
            } => Request::Capture {
                port: port.clone(),
                direction: *direction,
                snaplen: *snaplen,
                count: *count,
                duration: *duration,
            },
            Cmd::Trace(t) => Request::Trace {
                port: t.port.clone(),
                frame: t.frame_hex(),
            },
            Cmd::Stp(StpCmd::Show) => Request::StpShow,
            Cmd::Stp(StpCmd::Enable { port }) => Request::StpEnable { port: port.clone() },
            Cmd::Stp(StpCmd::Set(changes)) => Request::StpSet {
                changes: changes.clone(),
            },
            Cmd::LogLevel { filter } => Request::LogLevel {
                filter: filter.clone(),
            },
            Cmd::Port(PortCmd::Add {
                spec,
                opts,
                netns,
                addresses,
                gateway,
                mac,
                mtu,
                socket_mode,
                socket_group,
                claim,
                vni,
                local,
                remotes,
                dstport,
                encap,
                evpn,
                evpn_rd,
                evpn_rt,
            }) => {
                let mut section = PortSection::named(spec);
                opts.changes(false).apply(&mut section);
                section.netns = netns.clone();
                section.addresses = addresses.clone();
                section.gateway = gateway.clone();
                section.mac = *mac;
                section.mtu = *mtu;
                section.socket_mode = *socket_mode;
                section.socket_group = socket_group.clone();
                section.claim = *claim;
                section.vni = *vni;
                section.local = local.clone();
                section.remote = remotes.clone();
                section.dstport = *dstport;
                section.encap = *encap;
                section.evpn = *evpn;
                section.evpn_rd = evpn_rd.clone();
                section.evpn_rt = evpn_rt.clone();
                Request::PortAdd {
                    port: Box::new(section),
                }
            }
            Cmd::Port(PortCmd::Del { name }) => Request::PortDel { name: name.clone() },
            Cmd::Port(PortCmd::Set {
                name,
                opts,
                no_vlan,
            }) => Request::PortSet {
                name: name.clone(),
                changes: opts.changes(*no_vlan),
            },
            Cmd::Mdb(MdbCmd::Show { port, vlan }) => Request::MdbShow {
                port: port.clone(),
                vlan: *vlan,
            },
            Cmd::Mdb(MdbCmd::Router) => Request::MdbRouter,
            Cmd::Fdb(FdbCmd::Show { port, vlan }) => Request::FdbShow {
                port: port.clone(),
                vlan: *vlan,
            },
            Cmd::Fdb(FdbCmd::Get { mac, vlan }) => Request::FdbGet {
                mac: *mac,
                vlan: *vlan,
            },
            Cmd::Fdb(FdbCmd::Add { mac, port, vlan }) => Request::FdbAdd {
                mac: *mac,
                vlan: *vlan,
                port: port.clone(),
            },
            Cmd::Fdb(FdbCmd::Del { mac, vlan }) => Request::FdbDel {
                mac: *mac,
                vlan: *vlan,
            },
            Cmd::Fdb(FdbCmd::Flush { port, vlan }) => Request::FdbFlush {
                port: port.clone(),
                vlan: *vlan,
            },
            Cmd::Set(SetCmd::Ageing { seconds }) => Request::SetAgeing { seconds: *seconds },
            Cmd::Evpn(EvpnCmd::Show) => Request::EvpnShow,
        }
    }
}
