//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching.
//!
//! - [`headers`]: an ordered, case-insensitive list of header fields.
//! - [`filter`]: domain block and allow rules, reloaded while the proxy runs.
//! - [`acl`]: which client addresses may use the proxy.
pub mod acl;
pub mod filter;
pub mod headers;
