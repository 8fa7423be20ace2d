//! Linux calls that are not ports: thin checked wrappers over syscalls and
//! ioctls ([`sys`]), netlink route requests for namespaces and addresses
//! ([`rtnl`]), the link-change watch ([`netlink`]) and the io_uring ring
//! busy TAPs are read through ([`uring`]), and the capabilities vswitchd
//! keeps ([`caps`]).
//!
//! With `src/port/`, this is the only place `unsafe` is allowed: every
//! other module of the crate has `#![forbid(unsafe_code)]`. Each block
//! carries a `// SAFETY:` comment (enforced by clippy's
//! `undocumented_unsafe_blocks`).

pub mod caps;
pub mod hugepages;
pub mod netlink;
pub mod rtnl;
pub mod sys;
pub mod uring;
