//! The control plane's socket: protocol types (shared with `vswitchctl`)
//! and the server.

#![forbid(unsafe_code)]

pub(crate) mod limit;
pub mod protocol;
pub mod server;
pub mod stream;
