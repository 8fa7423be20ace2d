//! Capabilities: vswitchd keeps only what opening and placing ports needs
//! (also later: hot-plug and reload open ports), and its dataplane threads,
//! which read frames from untrusted guests, keep none.
//!
//! Capabilities are per thread on Linux; a thread inherits its creator's.
//! [`reduce_to_needed`] runs on the main thread before any other thread
//! starts, so every thread starts reduced; [`drop_all_in_this_thread`]
//! empties a dataplane thread's own sets.
//!
//! The `caps` crate wraps capget/capset/prctl, so this module needs no
//! `unsafe`.

#![forbid(unsafe_code)]

use caps::{CapSet, Capability, CapsHashSet};

/// What vswitchd keeps, as the systemd unit's `CapabilityBoundingSet`:
/// TAP devices and links (`CAP_NET_ADMIN`), AF_PACKET sockets for `raw:`
/// ports (`CAP_NET_RAW`), entering a namespace to place a TAP
/// (`CAP_SYS_ADMIN`, for `netns =`), and giving a socket to its
/// `socket-group` (`CAP_CHOWN`).
pub const NEEDED: [Capability; 4] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_CHOWN,
];

/// The capabilities this process kept, by name (for the log).
pub fn reduce_to_needed() -> Result<Vec<String>, String> {
    let needed: CapsHashSet = NEEDED.into_iter().collect();
    let err = |what: &str, e: caps::errors::CapsError| format!("{what}: {e}");
    // The bounding set first, while CAP_SETPCAP is still effective.
    let bounding =
        caps::read(None, CapSet::Bounding).map_err(|e| err("reading the bounding set", e))?;
    let can_setpcap = caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)
        .map_err(|e| err("reading the effective set", e))?;
    if can_setpcap {
        for c in bounding.difference(&needed) {
            caps::drop(None, CapSet::Bounding, *c)
                .map_err(|e| err("dropping from the bounding set", e))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| err("clearing the ambient set", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("clearing the inheritable set", e))?;
    let permitted =
        caps::read(None, CapSet::Permitted).map_err(|e| err("reading the permitted set", e))?;
    let kept: CapsHashSet = permitted.intersection(&needed).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| err("setting the effective set", e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| err("setting the permitted set", e))?;
    let mut names: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
    names.sort();
    Ok(names)
}

/// Empties this thread's capabilities (effective and permitted: they
/// cannot come back). For threads that only move frames.
pub fn drop_all_in_this_thread() -> Result<(), String> {
    caps::clear(None, CapSet::Effective).map_err(|e| e.to_string())?;
    caps::clear(None, CapSet::Permitted).map_err(|e| e.to_string())
}

/// This thread's effective capabilities, by name.
pub fn effective() -> Vec<String> {
    let mut v: Vec<String> = caps::read(None, CapSet::Effective)
        .map(|s| s.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
