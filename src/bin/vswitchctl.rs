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

use vswitch::cli::vswitchctl::{
    Cli, Cmd, EvpnCmd, FdbCmd, MdbCmd, MirrorCmd, PortCmd, StpCmd, flag_words,
};
use vswitch::control::protocol::{
    Envelope, ErrorCode, FdbRow, MdbRouterInfo, MdbRow, Request, Response, ShowInfo, StpInfo,
    StreamLine, TraceInfo, VERSION,
};
use vswitch::daemon::mirror::MirrorInfo;
use vswitch::dataplane::Reading;
use vswitch::dataplane::taps::Direction;
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
    let (_, data) = open(socket, req, Some(Duration::from_secs(30)))?;
    Ok(data)
}

/// Sends one request; returns the connection (for a stream's lines) and
/// the answer's data.
fn open(
    socket: &Path,
    req: Request,
    timeout: Option<Duration>,
) -> Result<(BufReader<UnixStream>, serde_json::Value), Failure> {
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
    let mut reader = None;
    let answer = (|| -> anyhow::Result<Response> {
        s.set_read_timeout(timeout)?;
        let mut line = serde_json::to_vec(&Envelope {
            version: VERSION,
            body: req,
        })?;
        line.push(b'\n');
        s.write_all(&line)?;
        let mut resp = String::new();
        let r = reader.insert(BufReader::new(s));
        r.read_line(&mut resp)
            .context("reading vswitchd's answer")?;
        serde_json::from_str(&resp).context("vswitchd's answer is not valid")
    })()?;
    if !answer.ok {
        return Err(Failure {
            code: answer.code.unwrap_or(ErrorCode::Internal),
            text: answer.error.unwrap_or_else(|| "failed".into()),
        });
    }
    let data = answer.data.unwrap_or(serde_json::Value::Null);
    match reader {
        Some(r) => Ok((r, data)),
        None => Err(Failure::from(anyhow::anyhow!("no connection"))),
    }
}

/// Reads a stream's lines, handing each to `each`, until its `end` line
/// (returned) or the connection closes.
fn read_stream(
    mut r: BufReader<UnixStream>,
    mut each: impl FnMut(&StreamLine, &str) -> anyhow::Result<()>,
) -> Result<Option<StreamLine>, Failure> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).context("reading from vswitchd")? == 0 {
            return Ok(None);
        }
        let l: StreamLine = serde_json::from_str(&line).context("a stream line is not valid")?;
        if matches!(l, StreamLine::End { .. }) {
            return Ok(Some(l));
        }
        each(&l, line.trim_end())?;
    }
}

fn clock(secs: f64) -> String {
    let s = secs as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ((secs - s as f64) * 1000.0) as u64
    )
}

/// `vswitchctl monitor`: prints events as they come.
fn monitor(cli: &Cli) -> Result<(), Failure> {
    let (r, _) = open(&cli.socket, cli.cmd.request(), None)?;
    let json = cli.json;
    let end = read_stream(r, |l, raw| {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{raw}")?;
        } else {
            match l {
                StreamLine::Fdb {
                    time,
                    event,
                    mac,
                    vlan,
                    port,
                    from,
                } => {
                    let from = from
                        .as_ref()
                        .map(|f| format!(" from {f}"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{} fdb  {event:<8} {mac} vlan {vlan} on {port}{from}",
                        clock(*time)
                    )?;
                }
                StreamLine::Port { time, event, port } => {
                    writeln!(out, "{} port {event:<8} {port}", clock(*time))?;
                }
                StreamLine::Topology { time, port, what } => {
                    let p = port
                        .as_deref()
                        .map(|p| format!("{p}: "))
                        .unwrap_or_default();
                    writeln!(out, "{} stp  {p}{what}", clock(*time))?;
                }
                StreamLine::Dropped { count } => {
                    writeln!(
                        out,
                        "(lost {count} events so far: this client reads too slowly)"
                    )?;
                }
                _ => {}
            }
        }
        out.flush()?;
        Ok(())
    })?;
    if json && let Some(end) = &end {
        println!("{}", serde_json::to_string(end)?);
    }
    if let Some(StreamLine::End { dropped, .. }) = end
        && dropped > 0
    {
        eprintln!("vswitchctl: {dropped} events lost (the client read too slowly)");
    }
    Ok(())
}

/// `vswitchctl capture`: writes the frames to a pcapng file.
fn capture(cli: &Cli, port: &str, file: &str, snaplen: Option<usize>) -> Result<(), Failure> {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    let (r, _) = open(&cli.socket, cli.cmd.request(), None)?;
    let out: Box<dyn Write> = if file == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(file).with_context(|| format!("cannot create {file}"))?,
        ))
    };
    let pcap = |e: pcap_file::PcapError| Failure::from(anyhow::anyhow!("writing {file}: {e}"));
    let mut w = PcapNgWriter::new(out).map_err(pcap)?;
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: snaplen.unwrap_or(0) as u32,
        options: vec![
            InterfaceDescriptionOption::IfName(port.into()),
            // Timestamps in nanoseconds.
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    })
    .map_err(pcap)?;
    let to_stdout = file == "-";
    let end = read_stream(r, |l, _| {
        if let StreamLine::Frame {
            time_ns,
            direction,
            length,
            data,
            ..
        } = l
        {
            let data = hex::decode(data)?;
            // epb_flags: inbound 1, outbound 2.
            let flags = match direction {
                Direction::In => 1,
                Direction::Out => 2,
                Direction::Both => 0,
            };
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(*time_ns),
                original_len: *length as u32,
                data: data.into(),
                options: vec![EnhancedPacketOption::Flags(flags)],
            })?;
            if to_stdout {
                w.get_mut().flush()?;
            }
        }
        Ok(())
    })?;
    w.get_mut().flush().context("writing the capture")?;
    if let Some(StreamLine::End { sent, dropped, .. }) = end {
        let lost = if dropped > 0 {
            format!(", {dropped} lost (the capture could not keep up)")
        } else {
            String::new()
        };
        eprintln!("vswitchctl: {sent} frames captured{lost}");
    }
    Ok(())
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
    if v.encap == vswitch::port::Encap::Kernel {
        let dev = name.strip_prefix("vxlan:").unwrap_or(name);
        println!(
            "{name}: vni {}  local {}  encap kernel (remotes and their MACs: bridge fdb show dev {dev})",
            v.vni, v.local
        );
        return;
    }
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

fn print_trace(t: &TraceInfo) {
    for s in &t.steps {
        let name = s.get("step").and_then(|v| v.as_str()).unwrap_or("?");
        let detail = s.get("detail").and_then(|v| v.as_str()).unwrap_or("");
        println!("{name:<14} {detail}");
    }
    match (&t.reason, &t.explanation) {
        (Some(r), Some(why)) => println!("{:<14} drop: {r} ({why})", "decision"),
        _ if t.decision == "punt" => println!("{:<14} to spanning tree (a BPDU)", "decision"),
        _ => {
            let out: Vec<String> = t
                .egress
                .iter()
                .map(|e| format!("{} (tag {})", e.port, e.tag))
                .collect();
            println!("{:<14} forward to {}", "decision", out.join(", "));
        }
    }
}

fn print_mirrors(ms: &[MirrorInfo]) {
    println!(
        "{:<16} {:<9} {:<24} {:<12} {:<12} {:>8} {:>12} {:>10}",
        "NAME", "DIRECTION", "PORTS", "VLANS", "OUTPUT", "SNAPLEN", "COPIED", "DROPPED"
    );
    for m in ms {
        let s = &m.section;
        let ports = if s.ports.is_empty() {
            "(all)".to_string()
        } else {
            s.ports.join(",")
        };
        println!(
            "{:<16} {:<9} {:<24} {:<12} {:<12} {:>8} {:>12} {:>10}",
            s.name,
            format!("{:?}", s.direction).to_lowercase(),
            ports,
            s.vlans
                .as_ref()
                .map_or("(all)".to_string(), |v| v.to_string()),
            s.output,
            s.snaplen.map_or("-".to_string(), |n| n.to_string()),
            m.copied,
            m.dropped
        );
        if !m.missing.is_empty() {
            println!("  (ports missing now: {})", m.missing.join(", "));
        }
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
    match &cli.cmd {
        Cmd::Monitor { .. } => return monitor(cli),
        Cmd::Capture {
            port,
            write,
            snaplen,
            ..
        } => return capture(cli, port, write, *snaplen),
        _ => {}
    }
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
        Cmd::Trace(_) => print_trace(&serde_json::from_value(data)?),
        Cmd::Mirror(MirrorCmd::Show) => {
            print_mirrors(&serde_json::from_value::<Vec<MirrorInfo>>(data)?)
        }
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
