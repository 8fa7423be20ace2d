//! vswitchd: the switch daemon. Thin: parses the command line
//! ([`vswitch::cli::vswitchd`]), sets up logging, and hands the checked
//! configuration to the library's [`daemon::run()`]; turns its errors into
//! exit codes (0 stopped, 1 failed, 2 bad command line).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use vswitch::cli::vswitchd::Cli;
use vswitch::config::{self, Overrides};
use vswitch::daemon;
use vswitch::os::hugepages;
use vswitch::port::{PortSpec, interface_exists};

/// jemalloc: with its options ([`hugepages::MALLOC_CONF`]) the switch's
/// state sits in one arena on huge pages.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match daemon::log::init(&cli.log_level) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vswitchd: --log-level: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli, log) {
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

fn run(cli: Cli, log: daemon::log::LogControl) -> Result<()> {
    let ports = match &cli.ports {
        Some(p) => config::parse_port_list(p).context("--ports")?,
        None => Vec::new(),
    };
    let overrides = Overrides {
        ageing_time: cli.ageing_time,
        fdb_size: cli.fdb_size,
        workers: cli.workers,
        busy_poll: cli.busy_poll,
        io_uring: on_off(cli.io_uring, cli.no_io_uring),
        huge_pages: on_off(cli.huge_pages, cli.no_huge_pages),
        metrics_addr: cli.metrics_addr.clone(),
        control_socket: cli.control_socket.clone(),
        control_socket_group: cli.control_socket_group.clone(),
        ports,
    };
    let cfg = config::load(cli.config.as_deref(), &overrides)?;
    if cli.check_config {
        // A missing raw: interface does not stop the switch (the port
        // waits for it), but is worth a word before a start.
        for p in &cfg.ports {
            if let PortSpec::Raw(ifname) = &p.spec
                && !interface_exists(ifname)
            {
                eprintln!(
                    "vswitchd: warning: port `{}`: no interface `{ifname}` now; vswitchd will start with the port gone and attach it when it appears",
                    p.spec
                );
            }
        }
        println!("configuration is valid: {} port(s)", cfg.ports.len());
        return Ok(());
    }
    if cfg.ports.is_empty() && cfg.control_socket.is_none() {
        anyhow::bail!(
            "no ports: give --ports tap0,tap1 or a config file with [[port]] sections (or a control socket to add them later)"
        );
    }
    use_huge_pages(cfg.huge_pages);
    Ok(daemon::run(cfg, cli.config, overrides, Some(log))?)
}

/// A `--X`/`--no-X` pair as an override: `--no-X` wins; neither leaves
/// the file's setting.
fn on_off(on: bool, off: bool) -> Option<bool> {
    if off { Some(false) } else { on.then_some(true) }
}

/// Puts the code on huge pages (the heap's are jemalloc's), or turns them
/// off; either way the switch runs, so a failure is only logged.
fn use_huge_pages(on: bool) {
    if !on {
        if let Err(e) = hugepages::disable() {
            tracing::warn!("huge-pages = false: cannot turn transparent huge pages off: {e}");
        }
        return;
    }
    tracing::debug!(
        "jemalloc options: {}",
        String::from_utf8_lossy(&hugepages::MALLOC_CONF[..hugepages::MALLOC_CONF.len() - 1])
    );
    match hugepages::remap_image() {
        Ok(r) => tracing::info!(
            "code and read-only data on huge pages: {} of {} MiB",
            r.huge >> 20,
            r.moved >> 20
        ),
        Err(e) => tracing::info!("code stays on 4 KiB pages: {e}"),
    }
}
