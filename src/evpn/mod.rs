//! BGP EVPN (RFC 7432, RFC 8365) through GoBGP.

#![forbid(unsafe_code)]

pub mod gobgp;
