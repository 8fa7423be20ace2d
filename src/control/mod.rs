//! The control plane's socket: protocol types (shared with `vswitchctl`)
//! and the server.

pub mod protocol;
pub mod server;
