//! Stage 2, exercise 1: who keeps the connection open?
//!
//! With `--features ex-2-1`, the method in this file replaces the reference
//! `RequestHead::wants_keep_alive` in `src/message.rs`, and everything
//! around it is the reference code: this file is a child module of
//! `message`, and an `impl` block may live in any module of the crate.
//! Hints: `exercises/stage2/HINTS.md`; grade it with
//! `cargo run --bin grade -- 2`.

// Until you write it, the import goes unused.
#![allow(unused_imports, dead_code)]

use super::*;

// ANCHOR: wants_keep_alive
impl RequestHead {
    /// Does the client want the connection kept open after this exchange?
    /// HTTP/1.1 is persistent unless it says `close`; HTTP/1.0 only when it
    /// asks for `keep-alive` (RFC 9112 §9.3).
    pub fn wants_keep_alive(&self) -> bool {
        // TODO(exercise 1): the persistence rule of RFC 9112 §9.3.
        //
        // - A `close` token in `Connection` ends the connection after this
        //   exchange, whatever the version.
        // - Otherwise HTTP/1.1 (and later) is persistent by default...
        // - ...and HTTP/1.0 is persistent only when the client asked with a
        //   `keep-alive` token in `Connection`.
        //
        // `Connection` is a list (`Connection: Keep-Alive, X-Foo`), and its
        // tokens are case-insensitive: `self.headers.has_token` handles
        // both. `self.minor_version` is 0 for HTTP/1.0 and 1 for HTTP/1.1.
        todo!("stage 2, exercise 1: wants_keep_alive")
    }
}
// ANCHOR_END: wants_keep_alive
