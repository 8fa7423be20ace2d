//! vswitchctl: talks to a running vswitchd over its control socket.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use vswitch::config::{AgeingTime, DEFAULT_CONTROL_SOCKET, PortSection, VlanSection};
use vswitch::control::protocol::{
    Envelope, FdbRow, FlagChange, FlagChanges, PortChanges, Request, Response, ShowInfo, VERSION,
};
use vswitch::dataplane::Reading;
use vswitch::switch::{MacLimit, PortFlags, Vid, VlanSet};
use vswitch::wire::Mac;

/// Control a running vswitchd.
#[derive(Parser, Debug)]
#[command(name = "vswitchctl", version)]
struct Cli {
    /// vswitchd's control socket.
    #[arg(long, env = "VSWITCHD_SOCKET", default_value = DEFAULT_CONTROL_SOCKET, global = true)]
    socket: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
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
    /// Change a switch setting.
    #[command(subcommand)]
    Set(SetCmd),
    /// Re-read the config file (like SIGHUP).
    Reload,
}

#[derive(Subcommand, Debug)]
enum PortCmd {
    /// Open and attach a port: NAME (TAP) or raw:IFNAME.
    Add {
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
        /// MAC address of the new TAP.
        #[arg(long)]
        mac: Option<Mac>,
    },
    /// Detach and close a port.
    Del { name: String },
    /// Change settings of a port.
    Set {
        name: String,
        #[command(flatten)]
        opts: PortOpts,
        /// Remove VLAN settings (back to access VLAN 1).
        #[arg(long, conflicts_with_all = ["access", "trunk"])]
        no_vlan: bool,
    },
}

#[derive(Args, Debug, Default)]
struct PortOpts {
    /// Access port in this VLAN.
    #[arg(long, value_name = "VID", conflicts_with = "trunk")]
    access: Option<Vid>,
    /// Trunk carrying these VLANs tagged, e.g. 10,20-30.
    #[arg(long, value_name = "VLANS")]
    trunk: Option<VlanSet>,
    /// Native (untagged) VLAN of the trunk.
    #[arg(long, value_name = "VID", requires = "trunk")]
    native: Option<Vid>,
    #[command(flatten)]
    flags: FlagOpts,
}

/// How a port flag of this type is given on the command line and listed
/// by `show`.
trait CliFlag: FlagChange {
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

macro_rules! flag_opts {
    ($( $(#[$doc:meta])* $flag:ident: $ty:ty = $default:expr, )*) => {
        /// An option per port flag (`--mac-limit 0` removes the limit).
        #[derive(Args, Debug, Default)]
        struct FlagOpts {
            $(
                $(#[$doc])*
                #[arg(
                    long,
                    value_name = <$ty as CliFlag>::VALUE_NAME,
                    value_parser = <$ty as CliFlag>::parse,
                )]
                $flag: Option<<$ty as FlagChange>::Wire>,
            )*
        }

        impl FlagOpts {
            fn changes(&self) -> FlagChanges {
                FlagChanges { $( $flag: self.$flag, )* }
            }
        }

        /// A port's flags as `show` lists them: those not at their
        /// defaults.
        fn flag_words(flags: &PortFlags) -> Vec<String> {
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
vswitch::port_flags!(flag_opts);

impl PortOpts {
    fn vlan(&self) -> Option<VlanSection> {
        if let Some(vid) = self.access {
            return Some(VlanSection::Access { vid });
        }
        self.trunk.as_ref().map(|allowed| VlanSection::Trunk {
            allowed: allowed.clone(),
            native: self.native,
        })
    }

    fn changes(&self, no_vlan: bool) -> PortChanges {
        PortChanges {
            vlan: self.vlan(),
            no_vlan,
            flags: self.flags.changes(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum FdbCmd {
    /// List entries.
    Show {
        #[arg(long)]
        port: Option<String>,
        #[arg(long)]
        vlan: Option<Vid>,
    },
    /// Add a static entry (never ages, never moves).
    Add {
        mac: Mac,
        #[arg(long)]
        port: String,
        #[arg(long)]
        vlan: Option<Vid>,
    },
    /// Remove an entry (static or learned).
    Del {
        mac: Mac,
        #[arg(long)]
        vlan: Option<Vid>,
    },
    /// Forget learned entries (all, or of one port or VLAN).
    Flush {
        #[arg(long)]
        port: Option<String>,
        #[arg(long)]
        vlan: Option<Vid>,
    },
}

#[derive(Subcommand, Debug)]
enum SetCmd {
    /// FDB ageing time in seconds (10 to 1000000).
    Ageing { seconds: AgeingTime },
}

fn call(socket: &PathBuf, req: Request) -> Result<serde_json::Value> {
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "vswitchd is not running (no control socket at {}); start it, or point --socket at its socket",
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "permission denied on {}: the control socket is mode 0600; run as the user vswitchd runs as (usually root)",
            socket.display()
        ),
        _ => anyhow::anyhow!("cannot connect to {}: {e}", socket.display()),
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&Envelope {
        version: VERSION,
        body: req,
    })?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut resp = String::new();
    BufReader::new(&s)
        .read_line(&mut resp)
        .context("reading vswitchd's answer")?;
    let r: Response = serde_json::from_str(&resp).context("vswitchd's answer is not valid")?;
    if !r.ok {
        bail!("{}", r.error.unwrap_or_else(|| "failed".into()));
    }
    Ok(r.data.unwrap_or(serde_json::Value::Null))
}

fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// How `show` names a port's reading mode.
fn reading(r: Reading) -> &'static str {
    match r {
        Reading::Polled => "polled",
        Reading::Ring => "ring",
    }
}

fn print_show(s: &ShowInfo) {
    println!(
        "vswitchd {}  vlan-filtering {}  ageing {} s  fdb {}/{}  group-fwd-mask {:#06x}",
        s.version,
        if s.vlan_filtering { "on" } else { "off" },
        s.ageing_seconds,
        s.fdb_entries,
        s.fdb_capacity,
        s.group_fwd_mask
    );
    println!(
        "{:<4} {:<18} {:<5} {:<10} {:<6} {:<22} {:>5} {:>6} {:>12} {:>12} {:>10}  flags",
        "ID", "PORT", "KIND", "STATE", "READ", "VLAN", "MTU", "MACS", "RX", "TX", "DROPS"
    );
    for p in &s.ports {
        println!(
            "{:<4} {:<18} {:<5} {:<10} {:<6} {:<22} {:>5} {:>6} {:>12} {:>12} {:>10}  {}",
            p.id,
            p.name,
            p.kind,
            p.state,
            reading(p.reading),
            p.vlan,
            p.mtu,
            p.learned_macs,
            p.counters.rx_frames,
            p.counters.tx_frames,
            p.counters.dropped,
            flag_words(&p.flags).join(",")
        );
    }
}

fn print_stats(s: &ShowInfo) {
    for p in &s.ports {
        let c = &p.counters;
        println!(
            "{} ({}, {})  read {}",
            p.name,
            p.kind,
            p.state,
            reading(p.reading)
        );
        println!(
            "  rx {:>12} frames {:>12}",
            c.rx_frames,
            human_bytes(c.rx_bytes)
        );
        println!(
            "  tx {:>12} frames {:>12}",
            c.tx_frames,
            human_bytes(c.tx_bytes)
        );
        println!("  flooded {:>7}", c.flooded);
        for (r, n) in &c.drops {
            println!("  drop {r:<16} {n}");
        }
    }
    println!("fdb: {} of {} entries", s.fdb_entries, s.fdb_capacity);
}

fn run(cli: Cli) -> Result<()> {
    let req = match &cli.cmd {
        Cmd::Show => Request::Show,
        // The counters `stats` prints are in `show`'s answer.
        Cmd::Stats => Request::Show,
        Cmd::Reload => Request::Reload,
        Cmd::Port(PortCmd::Add {
            spec,
            opts,
            netns,
            addresses,
            gateway,
            mac,
        }) => {
            let mut section = PortSection::named(spec);
            opts.changes(false).apply(&mut section);
            section.netns = netns.clone();
            section.addresses = addresses.clone();
            section.gateway = gateway.clone();
            section.mac = *mac;
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
        Cmd::Fdb(FdbCmd::Show { port, vlan }) => Request::FdbShow {
            port: port.clone(),
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
    };
    let data = call(&cli.socket, req)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    match &cli.cmd {
        Cmd::Show => print_show(&serde_json::from_value(data)?),
        Cmd::Stats => print_stats(&serde_json::from_value(data)?),
        Cmd::Fdb(FdbCmd::Show { .. }) => {
            let rows: Vec<FdbRow> = serde_json::from_value(data)?;
            println!(
                "{:<18} {:>5} {:<18} {:>8}  type",
                "MAC", "VLAN", "PORT", "AGE(s)"
            );
            for r in &rows {
                println!(
                    "{:<18} {:>5} {:<18} {:>8.1}  {}",
                    r.mac.to_string(),
                    r.vlan,
                    r.port,
                    r.age_seconds,
                    if r.is_static { "static" } else { "learned" }
                );
            }
            println!("{} entries", rows.len());
        }
        Cmd::Fdb(FdbCmd::Flush { .. }) => println!("flushed {} entries", data),
        Cmd::Port(PortCmd::Add { spec, .. }) => println!("port {spec} added (id {data})"),
        Cmd::Reload => println!("{}", data.as_str().unwrap_or("reloaded")),
        _ => println!("ok"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vswitchctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
