//! A shared HTTP cache (RFC 9111); the module doc comes with the last piece.

pub mod clock;
pub mod control;
pub mod disk;
pub mod freshness;
pub mod key;
pub mod store;
