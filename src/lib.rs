//! # webproxy
//!
//! A small HTTP/1.1 forward proxy, built in stages for teaching.
//!
//! - [`headers`]: an ordered, case-insensitive list of header fields.
pub mod headers;
