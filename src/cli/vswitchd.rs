//! `vswitchd`'s command line.

use std::path::PathBuf;

use clap::Parser;

use crate::config::AgeingTime;

/// A userspace Ethernet switch: joins TAP devices, existing interfaces and
/// QEMU guests into one L2 segment with the Linux bridge's behaviour.
#[derive(Parser, Debug)]
#[command(name = "vswitchd", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Ports to switch between, comma-separated: NAME (a TAP device vswitchd
    /// creates, or opens if it exists; attached as raw: when QEMU holds it),
    /// raw:IFNAME (an existing interface: veth, QEMU/libvirt tap, NIC),
    /// unix:PATH (a stream socket for QEMU -netdev stream), unixgram:PATH
    /// (a datagram socket for QEMU -netdev dgram).
    #[arg(short, long, value_name = "PORT,...")]
    pub ports: Option<String>,

    /// TOML config file (switch settings and per-port VLAN/flood/learning
    /// options); see vswitchd.toml(5). SIGHUP re-reads it.
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Seconds an unseen MAC stays in the FDB, 10 to 1000000 [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub ageing_time: Option<AgeingTime>,

    /// Most FDB entries, 16 to 4000000 [default: 8192].
    #[arg(long, value_name = "ENTRIES")]
    pub fdb_size: Option<usize>,

    /// Dataplane threads polling the ports, 1 to 64 [default: 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Keep polling this long after the last frame before sleeping: lower,
    /// steadier latency for a core's worth of CPU while traffic flows
    /// [default: 0, sleep at once].
    #[arg(long, value_name = "MICROSECONDS")]
    pub busy_poll: Option<u64>,

    /// Read busy TAP ports through io_uring: many frames per system call
    /// (quiet ones are read with read()); where the kernel has no io_uring,
    /// read() is used throughout [default: on].
    #[arg(long, overrides_with = "no_io_uring")]
    pub io_uring: bool,

    /// Read TAP ports with one read() per frame instead of io_uring.
    #[arg(long)]
    pub no_io_uring: bool,

    /// Keep code, read-only data and heap on 2 MiB transparent huge pages:
    /// fewer TLB misses on a frame's way after a sleep, for ~10 MiB more
    /// resident memory [default: on].
    #[arg(long, overrides_with = "no_huge_pages")]
    pub huge_pages: bool,

    /// Use 4 KiB pages only (transparent huge pages off for vswitchd).
    #[arg(long)]
    pub no_huge_pages: bool,

    /// Prometheus endpoint address, or `off` [default: 127.0.0.1:9417].
    #[arg(long, value_name = "ADDR|off")]
    pub metrics_addr: Option<String>,

    /// Control socket for vswitchctl, or `off` [default: /run/vswitchd/vswitchd.sock].
    #[arg(long, value_name = "PATH|off")]
    pub control_socket: Option<String>,

    /// Group that may use the control socket: it is given to this group
    /// with mode 0660 (default: root only, mode 0600).
    #[arg(long, value_name = "GROUP")]
    pub control_socket_group: Option<String>,

    /// Log filter: error, warn, info, debug, trace (RUST_LOG overrides);
    /// `vswitchctl log-level` changes it at run time.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// Check the configuration and exit (0 if valid, 1 if not); warns about
    /// raw: interfaces that do not exist (yet).
    #[arg(long)]
    pub check_config: bool,
}

const EXAMPLES: &str = "Examples:
  vswitchd --ports tap0,tap1,tap2
  vswitchd --ports tap0,raw:veth-uplink --metrics-addr 0.0.0.0:9417
  vswitchd --ports unix:/run/vswitchd/vm1.sock,tap0
  vswitchd --config /etc/vswitchd/vswitchd.toml
  vswitchd --check-config --config /etc/vswitchd/vswitchd.toml

Exit status: 0 stopped by SIGTERM/SIGINT (or --check-config: valid);
1 the configuration or a port failed; 2 bad command line.";
