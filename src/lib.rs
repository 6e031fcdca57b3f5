//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching.
//!
//! - [`cache`]: the shared HTTP cache (RFC 9111): freshness, storage, persistence.
//! - [`headers`]: an ordered, case-insensitive list of header fields.
pub mod cache;
pub mod headers;
