//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching.
//!
//! - [`headers`]: an ordered, case-insensitive list of header fields.
//! - [`tunnel`]: CONNECT tunnels: the byte relay, the port policy and the tunnel limit.
pub mod headers;
pub mod tunnel;
