//! vswitchd: the switch daemon. Thin: parses the command line, sets up
//! logging, and hands the checked configuration to the library's
//! [`daemon::run()`]; turns its errors into exit codes.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use vswitch::config::{self, AgeingTime, Overrides};
use vswitch::daemon;

/// A userspace Ethernet switch: joins TAP devices, existing interfaces and
/// QEMU guests into one L2 segment with the Linux bridge's behaviour.
#[derive(Parser, Debug)]
#[command(name = "vswitchd", version, after_help = EXAMPLES)]
struct Cli {
    /// Ports to switch between, comma-separated: NAME (a TAP device vswitchd
    /// creates, or opens if it exists; attached as raw: when QEMU holds it),
    /// raw:IFNAME (an existing interface: veth, QEMU/libvirt tap, NIC).
    #[arg(short, long, value_name = "PORT,...")]
    ports: Option<String>,

    /// TOML config file (switch settings and per-port VLAN/flood/learning
    /// options); see docs/configuration.md. SIGHUP re-reads it.
    #[arg(short, long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Seconds an unseen MAC stays in the FDB, 10 to 1000000 [default: 300].
    #[arg(long, value_name = "SECONDS")]
    ageing_time: Option<AgeingTime>,

    /// Most FDB entries [default: 8192].
    #[arg(long, value_name = "ENTRIES")]
    fdb_size: Option<usize>,

    /// Dataplane threads polling the ports [default: 1].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Keep polling this long after the last frame before sleeping: lower,
    /// steadier latency for a core's worth of CPU while traffic flows
    /// [default: 0, sleep at once].
    #[arg(long, value_name = "MICROSECONDS")]
    busy_poll: Option<u64>,

    /// Read busy TAP ports through io_uring: many frames per system call
    /// (quiet ones are read with read()); where the kernel has no io_uring,
    /// read() is used throughout [default: on].
    #[arg(long, overrides_with = "no_io_uring")]
    io_uring: bool,

    /// Read TAP ports with one read() per frame instead of io_uring.
    #[arg(long)]
    no_io_uring: bool,

    /// Prometheus endpoint address, or `off` [default: 127.0.0.1:9417].
    #[arg(long, value_name = "ADDR|off")]
    metrics_addr: Option<String>,

    /// Control socket for vswitchctl, or `off` [default: /run/vswitchd/vswitchd.sock].
    #[arg(long, value_name = "PATH|off")]
    control_socket: Option<String>,

    /// Log filter: error, warn, info, debug, trace (RUST_LOG overrides).
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    log_level: String,

    /// Check the configuration and exit (0 if valid).
    #[arg(long)]
    check_config: bool,
}

const EXAMPLES: &str = "Examples:
  vswitchd --ports tap0,tap1,tap2
  vswitchd --ports tap0,raw:veth-uplink --metrics-addr 0.0.0.0:9417
  vswitchd --config /etc/vswitchd/vswitchd.toml";

/// Log levels `--log-level` takes (RUST_LOG takes full filter directives).
const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

fn init_logs(level: &str) -> Result<()> {
    // A bare word that is not a level would be read as a target name and
    // silently turn logging off: refuse it. Directives with `=` pass.
    if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) && !level.contains('=') {
        anyhow::bail!(
            "bad log level `{level}` (use error, warn, info, debug, trace or off; RUST_LOG takes filter directives)"
        );
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => tracing_subscriber::EnvFilter::try_new(f),
        _ => tracing_subscriber::EnvFilter::try_new(level),
    }
    .with_context(|| format!("bad log level `{level}` (use error, warn, info, debug or trace)"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal (and never with NO_COLOR set): the
        // journal and log files get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logs(&cli.log_level) {
        eprintln!("vswitchd: {}", error_text(&e));
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vswitchd: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: our error messages already
/// include the OS error they wrap, so a cause already in the text is not
/// repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn run(cli: Cli) -> Result<()> {
    let ports = match &cli.ports {
        Some(p) => config::parse_port_list(p).context("--ports")?,
        None => Vec::new(),
    };
    let overrides = Overrides {
        ageing_time: cli.ageing_time,
        fdb_size: cli.fdb_size,
        workers: cli.workers,
        busy_poll: cli.busy_poll,
        io_uring: if cli.no_io_uring {
            Some(false)
        } else {
            cli.io_uring.then_some(true)
        },
        metrics_addr: cli.metrics_addr.clone(),
        control_socket: cli.control_socket.clone(),
        ports,
    };
    let cfg = config::load(cli.config.as_deref(), &overrides)?;
    if cli.check_config {
        println!("configuration is valid: {} port(s)", cfg.ports.len());
        return Ok(());
    }
    if cfg.ports.is_empty() && cfg.control_socket.is_none() {
        anyhow::bail!(
            "no ports: give --ports tap0,tap1 or a config file with [[port]] sections (or a control socket to add them later)"
        );
    }
    Ok(daemon::run(cfg, cli.config, overrides)?)
}
