//! The support kit of the end-to-end tests: the one place that sets up
//! namespaces and links, runs vswitchd, waits, builds frames, puts raw
//! frames on a wire and sees them, and reads the switch's state.
//!
//! - [`cmd`]: commands and background processes (`Bg`), unique names;
//! - [`wait`]: the one bounded wait ([`wait::wait_for`]);
//! - [`net`]: network namespaces, veth links, root-namespace addresses,
//!   nft tables and sysctls, each undone by a `Drop` guard;
//! - [`switchd`]: a running vswitchd (`Switchd`) and a LAN of namespaces on
//!   its TAPs (`Lan`);
//! - [`frame`]: the frame builder, MAC and hex helpers;
//! - [`agent`]: raw frames in and out of an interface (`Agent`, driving
//!   `frame_agent.py`), the only way the tests inject and sniff frames;
//! - [`traffic`]: real tools: ping, iperf3, a TCP pair (`tcp_peer.py`) and
//!   tcpdump (`Capture`, the independent decoder);
//! - [`state`]: the switch-state reader: `vswitchctl --json show` / `fdb
//!   show` and the Prometheus scrape, parsed;
//! - [`qemu`]: the QEMU test guest;
//! - [`sandbox`]: a systemd unit's capability bounding set and read-only
//!   mounts, read from the unit file, without systemd.
//!
//! Rules every test follows:
//! - names are unique per test and per run ([`cmd::names`]): tests run in
//!   parallel, and interface names are at most 15 bytes;
//! - addresses come from 198.18.0.0/15 only;
//! - every namespace, link and process is removed by a `Drop` guard, so a
//!   failing assertion still cleans up;
//! - every traffic command and every wait is bounded in count and in time.
//!
//! Each `tests/*.rs` file is a crate of its own that declares `mod support;`
//! and uses a part of the kit; the rest would warn as dead code in every
//! one of them. Hence this one `allow`, for the kit only.
#![allow(dead_code)]

pub mod agent;
pub mod cmd;
pub mod frame;
pub mod net;
pub mod qemu;
pub mod sandbox;
pub mod state;
pub mod switchd;
pub mod traffic;
pub mod wait;
