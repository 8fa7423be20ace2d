//! vswitchctl: talks to a running vswitchd over its control socket. The
//! command line is [`vswitch::cli::vswitchctl`]; exit status 0 done, 1
//! refused or failed (the error's code with `--json`), 2 bad command line.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use vswitch::cli::vswitchctl::EvpnCmd;
use vswitch::cli::vswitchctl::{Cli, Cmd, FdbCmd, MdbCmd, PortCmd, StpCmd, flag_words};
use vswitch::control::protocol::{
    Envelope, ErrorCode, FdbRow, MdbRouterInfo, MdbRow, Request, Response, ShowInfo, StpInfo,
    VERSION,
};
use vswitch::dataplane::Reading;
use vswitch::evpn::status::EvpnInfo;

/// Why a command failed: vswitchd's answer (with its code), or no answer.
struct Failure {
    code: ErrorCode,
    text: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure {
            code: ErrorCode::Internal,
            text: format!("{e:#}"),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::from(anyhow::Error::from(e))
    }
}

/// Sends one request and returns the answer's data.
fn call(socket: &Path, req: Request) -> Result<serde_json::Value, Failure> {
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => Failure {
            code: ErrorCode::NotRunning,
            text: format!(
                "vswitchd is not running (no control socket at {}); start it, or point --socket at its socket",
                socket.display()
            ),
        },
        std::io::ErrorKind::PermissionDenied => Failure {
            code: ErrorCode::Permission,
            text: format!(
                "permission denied on {}: run as root, or as a member of the control-socket-group vswitchd was given",
                socket.display()
            ),
        },
        _ => Failure {
            code: ErrorCode::NotRunning,
            text: format!("cannot connect to {}: {e}", socket.display()),
        },
    })?;
    let answer = (|| -> anyhow::Result<Response> {
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
        serde_json::from_str(&resp).context("vswitchd's answer is not valid")
    })()?;
    if !answer.ok {
        return Err(Failure {
            code: answer.code.unwrap_or(ErrorCode::Internal),
            text: answer.error.unwrap_or_else(|| "failed".into()),
        });
    }
    Ok(answer.data.unwrap_or(serde_json::Value::Null))
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
    for p in &s.ports {
        if let Some(v) = &p.vxlan {
            print_vxlan(&p.name, v);
        }
    }
}

/// A vxlan port's tunnel and its remotes.
fn print_vxlan(name: &str, v: &vswitch::control::protocol::VxlanInfo) {
    println!(
        "{name}: vni {}  local {}  remote macs {}  no-remote {}  learn-refused {}",
        v.vni, v.local, v.remote_macs, v.no_remote, v.learn_refused
    );
    println!(
        "  {:<40} {:>5} {:>12} {:>12} {:>12} {:>12}  drops",
        "REMOTE", "FLOOD", "RX", "RX-BYTES", "TX", "TX-BYTES"
    );
    for r in &v.remotes {
        let drops: Vec<String> = r.drops.iter().map(|(k, n)| format!("{k}={n}")).collect();
        println!(
            "  {:<40} {:>5} {:>12} {:>12} {:>12} {:>12}  {}",
            r.remote,
            if r.flood { "yes" } else { "-" },
            r.rx_frames,
            r.rx_bytes,
            r.tx_frames,
            r.tx_bytes,
            drops.join(",")
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
        if let Some(v) = &p.vxlan {
            print_vxlan(&p.name, v);
        }
    }
    println!("fdb: {} of {} entries", s.fdb_entries, s.fdb_capacity);
}

fn print_fdb(rows: &[FdbRow]) {
    println!(
        "{:<18} {:>5} {:<18} {:>8}  origin   remote",
        "MAC", "VLAN", "PORT", "AGE(s)"
    );
    for r in rows {
        println!(
            "{:<18} {:>5} {:<18} {:>8.1}  {:<8} {}",
            r.mac.to_string(),
            r.vlan,
            r.port,
            r.age_seconds,
            r.origin,
            r.remote.as_deref().unwrap_or("")
        );
    }
}

fn print_stp(s: &StpInfo) {
    let root = match &s.root_port {
        None => "this bridge is the root".to_string(),
        Some(p) => format!("root port {p}, path cost {}", s.root_path_cost),
    };
    println!(
        "spanning tree {}  bridge {}  root {}  ({root})",
        s.mode, s.bridge_id, s.root_id
    );
    let since = s
        .time_since_topology_change
        .map_or_else(|| "never".to_string(), |t| format!("{t} s ago"));
    println!(
        "topology changes {} (last {since}){}",
        s.topology_changes,
        if s.fast_ageing { "  fast ageing" } else { "" }
    );
    println!(
        "{:<18} {:<11} {:<11} {:<5} {:>9} {:<5} {:<17} {:<5} {:>8} {:>8}",
        "PORT", "ROLE", "STATE", "EDGE", "COST", "ID", "DESIGNATED", "PROTO", "BPDU-RX", "BPDU-TX"
    );
    for p in &s.ports {
        let state = if p.bpdu_guard_tripped {
            "guard-off"
        } else {
            p.state.as_str()
        };
        println!(
            "{:<18} {:<11} {:<11} {:<5} {:>9} {:<5} {:<17} {:<5} {:>8} {:>8}",
            p.port,
            p.role,
            state,
            if p.edge { "yes" } else { "no" },
            p.cost,
            p.port_id,
            p.designated_bridge,
            p.protocol,
            p.bpdus_received,
            p.bpdus_sent
        );
    }
}

fn print_mdb(rows: &[MdbRow]) {
    println!(
        "{:<28} {:>5} {:<18} {:>9}  version",
        "GROUP", "VLAN", "PORT", "LEFT(s)"
    );
    for r in rows {
        println!(
            "{:<28} {:>5} {:<18} {:>9.1}  {}",
            r.group.to_string(),
            r.vlan,
            r.port,
            r.remaining_seconds,
            r.version
        );
    }
}

fn print_mdb_router(i: &MdbRouterInfo) {
    println!(
        "snooping {}, own querier {}",
        if i.snooping { "on" } else { "off" },
        if i.own_querier { "on" } else { "off" }
    );
    for q in &i.queriers {
        let who = match (&q.address, &q.port) {
            (None, _) => "none".to_string(),
            (Some(a), Some(p)) => format!("{a} on {p}"),
            (Some(a), None) => format!("{a} (this switch)"),
        };
        let left = q
            .remaining_seconds
            .map(|s| format!(", {s:.1} s left"))
            .unwrap_or_default();
        let present = if q.present { "present" } else { "not present" };
        println!("querier {:<5} {who}{left} ({present})", q.family);
    }
    println!(
        "{:<18} {:<6} {:<5} {:>9}",
        "PORT", "FAMILY", "MODE", "LEFT(s)"
    );
    for r in &i.routers {
        let left = r
            .remaining_seconds
            .map(|s| format!("{s:.1}"))
            .unwrap_or_else(|| "-".into());
        println!("{:<18} {:<6} {:<5} {:>9}", r.port, r.family, r.mode, left);
    }
}

fn print_evpn(i: &EvpnInfo) {
    let state = if i.connected {
        "connected"
    } else {
        "not connected"
    };
    println!(
        "gobgp {} ({state}, {} connects)  asn {}  router-id {}",
        i.gobgp, i.connects, i.asn, i.router_id
    );
    if let Some(e) = &i.last_error {
        println!("last error: {e}");
    }
    println!(
        "{:<16} {:>8} {:<16} {:<20} {:<14} {:>6} {:>6}  REMOTE VTEPS",
        "PORT", "VNI", "VTEP", "RD", "RT", "MACS>", "MACS<"
    );
    for s in &i.segments {
        let vteps: Vec<String> = s.remote_vteps.iter().map(|v| v.to_string()).collect();
        println!(
            "{:<16} {:>8} {:<16} {:<20} {:<14} {:>6} {:>6}  {}",
            s.port,
            s.vni,
            s.vtep.to_string(),
            s.rd,
            s.rt,
            s.macs_advertised,
            s.macs_received,
            vteps.join(",")
        );
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let data = call(&cli.socket, cli.cmd.request())?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    match &cli.cmd {
        Cmd::Show => print_show(&serde_json::from_value(data)?),
        Cmd::Stats => print_stats(&serde_json::from_value(data)?),
        Cmd::Fdb(FdbCmd::Show { .. }) => {
            let rows: Vec<FdbRow> = serde_json::from_value(data)?;
            print_fdb(&rows);
            println!("{} entries", rows.len());
        }
        Cmd::Mdb(MdbCmd::Show { .. }) => {
            let rows: Vec<MdbRow> = serde_json::from_value(data)?;
            print_mdb(&rows);
            println!("{} memberships", rows.len());
        }
        Cmd::Mdb(MdbCmd::Router) => print_mdb_router(&serde_json::from_value(data)?),
        Cmd::Fdb(FdbCmd::Get { .. }) => print_fdb(&serde_json::from_value::<Vec<FdbRow>>(data)?),
        Cmd::Fdb(FdbCmd::Flush { .. }) => println!("flushed {} entries", data),
        Cmd::Port(PortCmd::Add { spec, .. }) => println!("port {spec} added (id {data})"),
        Cmd::Reload => println!("{}", data.as_str().unwrap_or("reloaded")),
        Cmd::LogLevel { .. } => println!("{}", data.as_str().unwrap_or("")),
        Cmd::Stp(StpCmd::Show) => print_stp(&serde_json::from_value(data)?),
        Cmd::Evpn(EvpnCmd::Show) => print_evpn(&serde_json::from_value(data)?),
        _ => println!("ok"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                let err = serde_json::json!({"ok": false, "code": f.code, "error": f.text});
                println!("{err}");
            }
            eprintln!("vswitchctl: {}", f.text);
            ExitCode::FAILURE
        }
    }
}
