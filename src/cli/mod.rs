//! The command lines of `vswitchd` and `vswitchctl`, as clap definitions
//! the binaries parse with and `vswitch-gen` turns into man pages and
//! shell completions (so the three never disagree).

#![forbid(unsafe_code)]

pub mod vswitchctl;
pub mod vswitchd;
